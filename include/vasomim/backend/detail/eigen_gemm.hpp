#pragma once
// Row-major strided batched GEMM over host memory through Eigen maps (no copies); a single large
// product goes to OpenBLAS instead where the build has it (blas_gemm.hpp). Shared by the cpu
// backend and the host systems (cpp, omp) of the Thrust backend, so they compute alike.

#include <algorithm>
#include <cstdint>

#include <omp.h>

#include <Eigen/Core>

#include "vasomim/backend/detail/blas_gemm.hpp"
#include "vasomim/backend/traits.hpp"

namespace vasomim::detail {

template <class T>
using row_major_matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <class T>
using const_row_map = Eigen::Map<const row_major_matrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

template <class T>
using row_map = Eigen::Map<row_major_matrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

/// C = alpha * op(A) * op(B) + beta * C for one matrix triple; op(A) is m x k, op(B) k x n.
/// beta == 0 overwrites C without reading it (NaN in C does not propagate), as BLAS does.
template <class T>
void eigen_gemm(transpose ta, transpose tb, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
                const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c,
                std::int64_t ldc) {
    row_map<T> cm(c, m, n, Eigen::OuterStride<>(ldc));
    if (k == 0 || alpha == T(0)) {
        if (beta == T(0)) cm.setZero();
        else cm *= beta;
        return;
    }
    const bool at = ta == transpose::yes, bt = tb == transpose::yes;
    const_row_map<T> am(a, at ? k : m, at ? m : k, Eigen::OuterStride<>(lda));
    const_row_map<T> bm(b, bt ? n : k, bt ? k : n, Eigen::OuterStride<>(ldb));
    if (beta == T(0)) cm.setZero();
    else if (beta != T(1)) cm *= beta;
    // Each branch is one Eigen GEMM kernel call with the transposition folded into the map.
    if (!at && !bt) cm.noalias() += alpha * am * bm;
    else if (!at && bt) cm.noalias() += alpha * am * bm.transpose();
    else if (at && !bt) cm.noalias() += alpha * am.transpose() * bm;
    else cm.noalias() += alpha * am.transpose() * bm.transpose();
}

/// One product over the OpenMP threads on Eigen alone: the rows of C split into one panel per
/// thread (or its columns, when C has few rows), each a serial Eigen GEMM; small products, and any
/// inside a parallel region, in one call. Each Eigen GEMM is serial: the build defines
/// EIGEN_DONT_PARALLELIZE (CMakeLists.txt), because Eigen's own parallel GEMM spin-waits between
/// its threads and stalls for hundreds of milliseconds when the cores are shared (the panels
/// measured faster: no shared packed blocks to wait on).
template <class T>
void eigen_gemm_panels(transpose ta, transpose tb, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
                       const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c,
                       std::int64_t ldc) {
    const std::int64_t threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    const bool big = 2.0 * double(m) * double(n) * double(k) >= 4e6;
    if (threads > 1 && big && m < 64 && n >= 64) {
        // Few rows, many columns (e.g. a narrow weight times a long activation): split the
        // columns of C instead, one panel per thread.
        const std::int64_t cpanel = ((n + threads - 1) / threads + 15) / 16 * 16;
        const std::int64_t cpanels = (n + cpanel - 1) / cpanel;
#pragma omp parallel for schedule(static) num_threads(static_cast<int>(cpanels))
        for (std::int64_t p = 0; p < cpanels; ++p) {
            const std::int64_t c0 = p * cpanel, cols = std::min(cpanel, n - c0);
            const T* bp = tb == transpose::yes ? b + c0 * ldb : b + c0;
            eigen_gemm(ta, tb, m, cols, k, alpha, a, lda, bp, ldb, beta, c + c0, ldc);
        }
        return;
    }
    if (threads == 1 || m < 64 || !big) {
        eigen_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    const std::int64_t panel = ((m + threads - 1) / threads + 15) / 16 * 16;
    const std::int64_t panels = (m + panel - 1) / panel;
#pragma omp parallel for schedule(static) num_threads(static_cast<int>(panels))
    for (std::int64_t p = 0; p < panels; ++p) {
        const std::int64_t r0 = p * panel, rows = std::min(panel, m - r0);
        const T* ap = ta == transpose::yes ? a + r0 : a + r0 * lda;
        eigen_gemm(ta, tb, rows, n, k, alpha, ap, lda, b, ldb, beta, c + r0 * ldc, ldc);
    }
}

/// Batched version: one product over all threads, on OpenBLAS where the build has it and the
/// product is large (over 4 MFLOP) and not inside a parallel region (blas_gemm.hpp; OpenBLAS's
/// OpenMP build would run it on one thread there), on Eigen otherwise (eigen_gemm_panels); many
/// products one per thread, each a serial Eigen GEMM.
template <class T>
void eigen_gemm_batched(transpose ta, transpose tb, std::int64_t m, std::int64_t n, std::int64_t k,
                        T alpha, const T* a, std::int64_t lda, std::int64_t stride_a, const T* b,
                        std::int64_t ldb, std::int64_t stride_b, T beta, T* c, std::int64_t ldc,
                        std::int64_t stride_c, std::int64_t batch) {
    if (batch == 1) {
        const bool big = 2.0 * double(m) * double(n) * double(k) >= 4e6;
        if (big && !omp_in_parallel() && blas_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)) return;
        eigen_gemm_panels(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < batch; ++i)
        eigen_gemm(ta, tb, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta,
                   c + i * stride_c, ldc);
}

}  // namespace vasomim::detail
