#pragma once
// One large row-major GEMM through OpenBLAS, where the build links OpenBLAS's OpenMP build
// (VASOMIM_HAS_OPENBLAS=1, set by CMake's VASOMIM_WITH_OPENBLAS; Debian: libopenblas-openmp-dev).
// Used by eigen_gemm_batched for single products outside a parallel region: on the 2-core machine
// of benchmarks/README.md OpenBLAS's kernels ran the ViT-B/16 GEMMs 10-20 % faster than Eigen's
// with two threads (the same speed with one). Only the OpenMP build: its threads are the
// program's own OpenMP team, while the pthread build's threads spin beside that team
// (the fine-tuning step was slower with it than with Eigen alone).

#include <cstdint>
#include <limits>
#include <type_traits>

#include "vasomim/backend/traits.hpp"

#ifndef VASOMIM_HAS_OPENBLAS
#define VASOMIM_HAS_OPENBLAS 0
#endif
#if VASOMIM_HAS_OPENBLAS
#include <cblas.h>
#endif

namespace vasomim::detail {

/// Whether the host backends' large GEMMs run on OpenBLAS (else on Eigen alone), in words.
inline constexpr bool gemm_uses_openblas = VASOMIM_HAS_OPENBLAS != 0;
inline constexpr const char* host_gemm_engine =
    gemm_uses_openblas ? "OpenBLAS (OpenMP build) for single products over 4 MFLOP, Eigen otherwise" : "Eigen";

/// C = alpha op(A) op(B) + beta C through cblas_sgemm / cblas_dgemm; false (nothing done) where
/// the build has no OpenBLAS, T is neither float nor double, or a size exceeds BLAS's int.
template <class T>
bool blas_gemm([[maybe_unused]] transpose ta, [[maybe_unused]] transpose tb, std::int64_t m, std::int64_t n,
               std::int64_t k, [[maybe_unused]] T alpha, [[maybe_unused]] const T* a, std::int64_t lda,
               [[maybe_unused]] const T* b, std::int64_t ldb, [[maybe_unused]] T beta, [[maybe_unused]] T* c,
               std::int64_t ldc) {
#if VASOMIM_HAS_OPENBLAS
    constexpr bool blas_type = std::is_same_v<T, float> || std::is_same_v<T, double>;
    if constexpr (blas_type) {
        for (const std::int64_t v : {m, n, k, lda, ldb, ldc})
            if (v > std::numeric_limits<blasint>::max()) return false;
        const auto opa = ta == transpose::yes ? CblasTrans : CblasNoTrans;
        const auto opb = tb == transpose::yes ? CblasTrans : CblasNoTrans;
        const auto i = [](std::int64_t v) { return static_cast<blasint>(v); };
        if constexpr (std::is_same_v<T, float>)
            cblas_sgemm(CblasRowMajor, opa, opb, i(m), i(n), i(k), alpha, a, i(lda), b, i(ldb), beta, c, i(ldc));
        else
            cblas_dgemm(CblasRowMajor, opa, opb, i(m), i(n), i(k), alpha, a, i(lda), b, i(ldb), beta, c, i(ldc));
        return true;
    }
#endif
    (void)m, (void)n, (void)k, (void)lda, (void)ldb, (void)ldc;
    return false;
}

}  // namespace vasomim::detail
