#pragma once
// cuBLAS strided batched GEMM for row-major operands (nvcc only). Row-major C = op(A) op(B) is
// column-major C^T = op(B)^T op(A)^T, so the operands are passed swapped and nothing is copied.

#include <cstdint>
#include <string>
#include <type_traits>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "vasomim/backend/traits.hpp"
#include "vasomim/core/error.hpp"

namespace vasomim::detail {

inline void cuda_check(cudaError_t status, const char* what) {
    if (status != cudaSuccess)
        throw backend_error(std::string(what) + " failed: " + cudaGetErrorString(status));
}

inline void cublas_check(cublasStatus_t status, const char* what) {
    if (status != CUBLAS_STATUS_SUCCESS)
        throw backend_error(std::string(what) + " failed with cuBLAS status " +
                            std::to_string(static_cast<int>(status)));
}

/// One handle per host thread, created on first use.
inline cublasHandle_t cublas_handle() {
    struct holder {
        cublasHandle_t h = nullptr;
        holder() { cublas_check(cublasCreate(&h), "cublasCreate"); }
        ~holder() { cublasDestroy(h); }
    };
    thread_local holder handle;
    return handle.h;
}

template <class T>
void cublas_gemm_batched(transpose ta, transpose tb, std::int64_t m, std::int64_t n, std::int64_t k,
                         T alpha, const T* a, std::int64_t lda, std::int64_t sa, const T* b,
                         std::int64_t ldb, std::int64_t sb, T beta, T* c, std::int64_t ldc,
                         std::int64_t sc, std::int64_t batch) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "vasomim: cuBLAS GEMM supports float and double");
    if (m == 0 || n == 0 || batch == 0) return;
    const cublasOperation_t opa = ta == transpose::yes ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t opb = tb == transpose::yes ? CUBLAS_OP_T : CUBLAS_OP_N;
    const auto i = [](std::int64_t v) { return static_cast<int>(v); };
    if constexpr (std::is_same_v<T, float>)
        cublas_check(cublasSgemmStridedBatched(cublas_handle(), opb, opa, i(n), i(m), i(k), &alpha, b,
                                               i(ldb), sb, a, i(lda), sa, &beta, c, i(ldc), sc, i(batch)),
                     "cublasSgemmStridedBatched");
    else
        cublas_check(cublasDgemmStridedBatched(cublas_handle(), opb, opa, i(n), i(m), i(k), &alpha, b,
                                               i(ldb), sb, a, i(lda), sa, &beta, c, i(ldc), sc, i(batch)),
                     "cublasDgemmStridedBatched");
}

}  // namespace vasomim::detail
