#pragma once
// Row softmax (numerically stable: the row maximum is subtracted) and its backward, in place, as
// attention uses them on its (batch * heads * tokens) x tokens score matrix.

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/lane_reduce.hpp"
#include "vasomim/core/vector_math.hpp"

namespace vasomim::nn {

/// x[r, :] = softmax(x[r, :]) for m rows of width n. Maximum and sum in lanes (core/lane_reduce.hpp)
/// and vmath::exp, so the row loops vectorise.
template <backend_policy B, class T>
void softmax_forward(T* x, index_t m, index_t n) {
    parallel_for<B>(m, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
        T* row = x + r * n;
        const T mx = lanes::max(row, n);
        for (index_t i = 0; i < n; ++i) row[i] = vmath::exp(row[i] - mx);
        const T inv = T(1) / lanes::sum<T>(n, [=](index_t i) { return row[i]; });
        for (index_t i = 0; i < n; ++i) row[i] *= inv;
    });
}

/// In place: d[r, :] <- scale * p * (d - <d, p>), the gradient of the softmax input (times the
/// score scale that preceded the softmax) from the gradient d of its output p.
template <backend_policy B, class T>
void softmax_backward(T* d, const T* p, index_t m, index_t n, T scale = T(1)) {
    parallel_for<B>(m, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
        T* dr = d + r * n;
        const T* pr = p + r * n;
        const T dot = lanes::sum<T>(n, [=](index_t i) { return dr[i] * pr[i]; });
        for (index_t i = 0; i < n; ++i) dr[i] = scale * pr[i] * (dr[i] - dot);
    });
}

}  // namespace vasomim::nn
