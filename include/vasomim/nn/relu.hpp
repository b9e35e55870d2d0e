#pragma once
// ReLU; the backward reads the forward output (y > 0 exactly where x > 0).

#include "vasomim/backend/algorithms.hpp"

namespace vasomim::nn {

/// out[i] = max(x[i], 0); out may alias x.
template <backend_policy B, class T>
void relu_forward(T* out, const T* x, index_t n) {
    parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) { out[i] = x[i] > T(0) ? x[i] : T(0); });
}

/// dx[i] = y[i] > 0 ? dout[i] : 0 with y the forward output; dx may alias dout.
template <backend_policy B, class T>
void relu_backward(T* dx, const T* dout, const T* y, index_t n) {
    parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) { dx[i] = y[i] > T(0) ? dout[i] : T(0); });
}

}  // namespace vasomim::nn
