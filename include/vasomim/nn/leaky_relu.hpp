#pragma once
// LeakyReLU (PyTorch nn.LeakyReLU semantics; MONAI's UnetResBlock uses negative_slope 0.01). With a
// positive slope the output has the sign of the input, so the backward reads the forward output and
// the layer may run in place.

#include "vasomim/backend/algorithms.hpp"

namespace vasomim::nn {

inline constexpr double leaky_relu_default_slope = 0.01;

/// out[i] = x[i] > 0 ? x[i] : slope * x[i]; out may alias x.
template <backend_policy B, class T>
void leaky_relu_forward(T* out, const T* x, index_t n, double slope = leaky_relu_default_slope) {
    const T s = static_cast<T>(slope);
    parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        const T v = x[i];
        out[i] = v > T(0) ? v : s * v;
    });
}

/// dx[i] (+)= (y[i] > 0 ? 1 : slope) * dout[i], y the forward output (slope > 0); overwritten, or
/// accumulated when `accumulate`. dx may alias dout when not accumulating.
template <backend_policy B, class T>
void leaky_relu_backward(T* dx, const T* dout, const T* y, index_t n, double slope = leaky_relu_default_slope,
                         bool accumulate = false) {
    const T s = static_cast<T>(slope);
    if (accumulate)
        parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) { dx[i] += y[i] > T(0) ? dout[i] : s * dout[i]; });
    else
        parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) { dx[i] = y[i] > T(0) ? dout[i] : s * dout[i]; });
}

}  // namespace vasomim::nn
