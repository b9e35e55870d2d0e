#pragma once
// Exact GELU, x * Phi(x) with the error function (torch.nn.GELU(approximate='none')). Float goes
// through vmath's branch-free erf / exp (absolute error of erf < 2.5e-7) so the loops vectorise;
// double uses libm.

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/vector_math.hpp"

namespace vasomim::nn {

/// out[i] = 0.5 x (1 + erf(x / sqrt 2)); out may alias x.
template <backend_policy B, class T>
void gelu_forward(T* out, const T* x, index_t n) {
    parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        const T v = x[i];
        out[i] = T(0.5) * v * (T(1) + vmath::erf(v * T(0.70710678118654752440)));
    });
}

/// dx[i] = dout[i] * gelu'(x[i]), gelu'(x) = Phi(x) + x phi(x); dx may alias dout.
template <backend_policy B, class T>
void gelu_backward(T* dx, const T* dout, const T* x, index_t n) {
    parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        const T v = x[i];
        const T cdf = T(0.5) * (T(1) + vmath::erf(v * T(0.70710678118654752440)));
        const T pdf = T(0.39894228040143267794) * vmath::exp(T(-0.5) * v * v);
        dx[i] = dout[i] * (cdf + v * pdf);
    });
}

}  // namespace vasomim::nn
