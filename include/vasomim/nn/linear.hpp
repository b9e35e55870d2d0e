#pragma once
// Fully connected layer y = x W^T + b with PyTorch's weight layout W[out, in]. Rows of x are
// independent samples (tokens); every product is one GEMM on the backend (Eigen or cuBLAS).

#include "vasomim/backend/algorithms.hpp"

namespace vasomim::nn {

/// out[m, n] = residual[m, n] + bias[n] (either may be null, then 0); the initial value a
/// GEMM with beta = 1 accumulates onto, which fuses bias and residual adds into one pass.
template <backend_policy B, class T>
void init_rows(T* out, const T* bias, const T* residual, index_t m, index_t n) {
    // One task per row with a contiguous inner loop: no index division, vectorisable.
    parallel_for<B>(m, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
        T* o = out + r * n;
        if (residual && bias) {
            const T* x = residual + r * n;
            for (index_t j = 0; j < n; ++j) o[j] = x[j] + bias[j];
        } else if (residual) {
            const T* x = residual + r * n;
            for (index_t j = 0; j < n; ++j) o[j] = x[j];
        } else if (bias) {
            for (index_t j = 0; j < n; ++j) o[j] = bias[j];
        } else {
            for (index_t j = 0; j < n; ++j) o[j] = T(0);
        }
    });
}

/// Forward: out[m, n] = in[m, k] * w[n, k]^T + bias[n] (+ residual[m, n] when given).
/// bias and residual may be null; residual may alias out.
template <backend_policy B, class T>
void linear_forward(T* out, const T* in, const T* w, const T* bias, index_t m, index_t k, index_t n,
                    const T* residual = nullptr) {
    const bool init = bias || residual;
    if (init && !(residual == out && !bias)) init_rows<B>(out, bias, residual, m, n);
    gemm<B>(transpose::no, transpose::yes, m, n, k, T(1), in, w, init ? T(1) : T(0), out);
}

/// Column sums accumulated into db[n] += sum_r dout[r, n]. One task per block of 16 columns reads
/// rows contiguously (a task per column would stride through memory).
template <backend_policy B, class T>
void accumulate_column_sums(T* db, const T* dout, index_t m, index_t n) {
    constexpr index_t w = 16;
    parallel_for<B>((n + w - 1) / w, [=] VASOMIM_HOST_DEVICE(std::int64_t blk) {
        const index_t j0 = blk * w, cols = n - j0 < w ? n - j0 : w;
        T acc[w] = {};
        for (index_t r = 0; r < m; ++r) {
            const T* row = dout + r * n + j0;
            for (index_t j = 0; j < cols; ++j) acc[j] += row[j];
        }
        for (index_t j = 0; j < cols; ++j) db[j0 + j] += acc[j];
    });
}

/// Backward of linear_forward. Parameter gradients accumulate (dw += dout^T in, db += colsum);
/// din (if not null) is overwritten with dout * w, or accumulated when accumulate_din is set.
template <backend_policy B, class T>
void linear_backward(T* din, T* dw, T* db, const T* dout, const T* in, const T* w, index_t m,
                     index_t k, index_t n, bool accumulate_din = false) {
    if (din) gemm<B>(transpose::no, transpose::no, m, k, n, T(1), dout, w, accumulate_din ? T(1) : T(0), din);
    if (dw) gemm<B>(transpose::yes, transpose::no, n, k, m, T(1), dout, in, T(1), dw);
    if (db) accumulate_column_sums<B>(db, dout, m, n);
}

}  // namespace vasomim::nn
