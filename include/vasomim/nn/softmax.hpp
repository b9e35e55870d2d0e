#pragma once
// Row softmax (numerically stable: the row maximum is subtracted) and its backward, in place, as
// attention uses them on its (batch * heads * tokens) x tokens score matrix.

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/scalar_math.hpp"

namespace vasomim::nn {

/// x[r, :] = softmax(x[r, :]) for m rows of width n.
template <backend_policy B, class T>
void softmax_forward(T* x, index_t m, index_t n) {
    parallel_for<B>(m, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
        T* row = x + r * n;
        T mx = row[0];
        for (index_t i = 1; i < n; ++i) mx = row[i] > mx ? row[i] : mx;
        T s = T(0);
        for (index_t i = 0; i < n; ++i) {
            const T e = scalar::exp_(row[i] - mx);
            row[i] = e;
            s += e;
        }
        const T inv = T(1) / s;
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
        T dot = T(0);
        for (index_t i = 0; i < n; ++i) dot += dr[i] * pr[i];
        for (index_t i = 0; i < n; ++i) dr[i] = scale * pr[i] * (dr[i] - dot);
    });
}

}  // namespace vasomim::nn
