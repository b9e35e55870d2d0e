#pragma once
// Fully connected layer y = x W^T + b with PyTorch's weight layout W[out, in]. Rows of x are
// independent samples (tokens); every product is one GEMM on the backend (Eigen or cuBLAS).

#include "vasomim/backend/algorithms.hpp"

namespace vasomim::nn {

/// out[m, n] = residual[m, n] + bias[n] (either may be null, then 0); the initial value a
/// GEMM with beta = 1 accumulates onto, which fuses bias and residual adds into one pass.
template <backend_policy B, class T>
void init_rows(T* out, const T* bias, const T* residual, index_t m, index_t n) {
    parallel_for<B>(m * n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        T v = residual ? residual[i] : T(0);
        if (bias) v += bias[i % n];
        out[i] = v;
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

/// Column sums accumulated into db[n] += sum_r dout[r, n].
template <backend_policy B, class T>
void accumulate_column_sums(T* db, const T* dout, index_t m, index_t n) {
    parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t j) {
        T s = T(0);
        for (index_t r = 0; r < m; ++r) s += dout[r * n + j];
        db[j] += s;
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
