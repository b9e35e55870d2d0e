#pragma once
// Finite-difference gradient checks in double precision. A case is a function that, given host
// copies of its tensors (inputs and parameters), runs the layer on backend B and returns the scalar
// loss = sum(out * r) for a fixed random r; when asked it also returns the analytic gradients of
// every tensor (from the layer's backward with dout = r). Central differences then check them.

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "vasomim/core/philox.hpp"
#include "vasomim/core/tensor.hpp"

namespace vasomim::test {

using host_tensors = std::vector<std::vector<double>>;
/// loss(tensors); fills grads (same shapes) when grads != nullptr.
using loss_fn = std::function<double(const host_tensors&, host_tensors*)>;

/// A host vector as a 1-D double tensor on backend B.
template <class B>
tensor<double, B> up(const std::vector<double>& v) {
    return tensor<double, B>::from_host(v, shape{static_cast<index_t>(v.size())});
}
/// n zeros on backend B (one element when n is 0, so that data() is a valid pointer).
template <class B>
tensor<double, B> zeros(index_t n) {
    return tensor<double, B>(shape{n > 0 ? n : 1});
}
/// sum a[i] b[i]: the scalar loss sum(out * r) of a gradient-check case.
inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

inline std::vector<double> random_vector(std::size_t n, std::uint64_t seed, double scale = 1.0) {
    const philox g(seed, 7);
    std::vector<double> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = scale * static_cast<double>(g.normal(i));
    return v;
}

/// Checks the analytic gradient of every tensor listed in `which` at up to `per_tensor` evenly spread
/// elements: |analytic - numeric| <= tol * (|numeric| + 1e-3 * max|numeric|_tensor) + 1e-9, the last
/// term being the round-off floor of a central difference of an O(1) loss with h = 1e-5.
inline void check_gradients(const loss_fn& f, host_tensors x, const std::vector<std::size_t>& which,
                            const std::vector<std::string>& names, std::size_t per_tensor = 40,
                            double h = 1e-5, double tol = 1e-6) {
    host_tensors grads;
    f(x, &grads);
    ASSERT_EQ(grads.size(), x.size());
    for (std::size_t t : which) {
        ASSERT_EQ(grads[t].size(), x[t].size()) << names[t];
        const std::size_t n = x[t].size();
        const std::size_t step = n > per_tensor ? n / per_tensor : 1;
        std::vector<double> num, ana;
        for (std::size_t i = 0; i < n; i += step) {
            const double orig = x[t][i];
            x[t][i] = orig + h;
            const double lp = f(x, nullptr);
            x[t][i] = orig - h;
            const double lm = f(x, nullptr);
            x[t][i] = orig;
            num.push_back((lp - lm) / (2 * h));
            ana.push_back(grads[t][i]);
        }
        double scale = 0;
        for (double v : num) scale = std::max(scale, std::abs(v));
        ASSERT_GT(scale, 0.0) << names[t] << ": numeric gradient vanishes everywhere; the check would be empty";
        for (std::size_t k = 0; k < num.size(); ++k)
            EXPECT_NEAR(ana[k], num[k], tol * (std::abs(num[k]) + 1e-3 * scale) + 1e-9)
                << names[t] << " element " << k * step;
    }
}

}  // namespace vasomim::test
