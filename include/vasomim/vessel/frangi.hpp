#pragma once
// Frangi vesselness (scikit-image >= 0.20, 2-D): per sigma, eigenvalues sorted by magnitude
// (|l1| <= |l2|, ties keep the decreasing order), r_b = |l1| / max(l2, 1e-10),
// s = sqrt(l1^2 + l2^2), v = exp(-r_b^2 / (2 beta^2)) * (1 - exp(-s^2 / (2 gamma^2))); gamma
// defaults to max(s)/2 of the FIRST sigma (1 if that is 0) and is reused for the later sigmas; the
// output is the pixel-wise maximum over sigmas (from 0). alpha only weighs the plate term of 3-D
// volumes; in 2-D that term is 1, so alpha is accepted and checked but does not change the result.

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/vessel/ridge_filter.hpp"

namespace vasomim::vessel {

struct frangi_options : ridge_options {
    double alpha = 0.5;
    double beta = 0.5;
    std::optional<double> gamma;  ///< unset: max(s)/2 at the first sigma
};

namespace detail {

template <class R>
VASOMIM_HOST_DEVICE inline void frangi_sorted(R rr, R rc, R cc, R& small, R& large) {
    R e0, e1;
    eigenvalues2(rr, rc, cc, e0, e1);
    const R a0 = e0 < 0 ? -e0 : e0, a1 = e1 < 0 ? -e1 : e1;
    if (a1 < a0) {
        small = e1;
        large = e0;
    } else {
        small = e0;
        large = e1;
    }
}

template <class R>
struct frangi_s_kernel {
    const R *rr, *rc, *cc;
    R* s;
    VASOMIM_HOST_DEVICE void operator()(std::int64_t i) const {
        using std::sqrt;
        R a, b;
        frangi_sorted(rr[i], rc[i], cc[i], a, b);
        s[i] = sqrt(a * a + b * b);
    }
};

template <class R>
struct frangi_kernel {
    const R *rr, *rc, *cc;
    R* out;
    R two_beta2, two_gamma2;
    VASOMIM_HOST_DEVICE void operator()(std::int64_t i) const {
        using std::exp;
        using std::sqrt;
        R a, b;
        frangi_sorted(rr[i], rc[i], cc[i], a, b);
        const R l2 = b < R(1e-10) ? R(1e-10) : b;
        const R rb = (a < 0 ? -a : a) / l2;
        const R s = sqrt(a * a + b * b);
        R v = exp(-(rb * rb) / two_beta2);
        v *= R(1) - exp(-(s * s) / two_gamma2);
        if (v > out[i]) out[i] = v;
    }
};

}  // namespace detail

/// Frangi vesselness of a 2-D image (at least 2 x 2, finite pixels). The result has the image's
/// shape and type response_t<T>. Throws value_error for an empty or non-positive sigma list,
/// beta <= 0, gamma <= 0, negative truncate or NaN/Inf pixels; shape_error for a bad shape.
template <class T, class B>
tensor<response_t<T>, B> frangi(tensor_view<T, B> image, const frangi_options& o = {}) {
    using R = response_t<T>;
    const std::string what = "frangi";
    if (!(o.beta > 0) || !std::isfinite(o.beta)) throw value_error("frangi: beta must be finite and > 0, got " + std::to_string(o.beta));
    if (!std::isfinite(o.alpha)) throw value_error("frangi: alpha must be finite, got " + std::to_string(o.alpha));
    if (o.gamma && (!(*o.gamma > 0) || !std::isfinite(*o.gamma)))
        throw value_error("frangi: gamma must be finite and > 0, got " + std::to_string(*o.gamma));
    const auto img = detail::as_const(image);
    tensor<R, B> out(img.shape());
    tensor<R, B> s;
    std::optional<R> gamma;
    if (o.gamma) gamma = static_cast<R>(*o.gamma);
    detail::for_each_scale(img, o, what, [&](double, const hessian_planes<R, B>& h) {
        const index_t n = h.rr.numel();
        if (!gamma) {
            s = tensor<R, B>(h.rr.shape());
            parallel_for<B>(n, detail::frangi_s_kernel<R>{h.rr.data(), h.rc.data(), h.cc.data(), s.data()});
            const R smax = reduce(s, R(0), maximum{});
            gamma = smax / R(2);
            if (*gamma == R(0)) gamma = R(1);
        }
        const R beta = static_cast<R>(o.beta);
        parallel_for<B>(n, detail::frangi_kernel<R>{h.rr.data(), h.rc.data(), h.cc.data(), out.data(), R(2) * beta * beta,
                                                    R(2) * *gamma * *gamma});
    });
    return out;
}

template <class T, class B>
tensor<response_t<T>, B> frangi(const tensor<T, B>& image, const frangi_options& o = {}) {
    return frangi(image.view(), o);
}

}  // namespace vasomim::vessel
