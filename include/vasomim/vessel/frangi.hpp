#pragma once
// Frangi vesselness (scikit-image >= 0.20, 2-D): per sigma, eigenvalues sorted by magnitude
// (|l1| <= |l2|, ties keep the decreasing order), r_b = |l1| / max(l2, 1e-10),
// s = sqrt(l1^2 + l2^2), v = exp(-r_b^2 / (2 beta^2)) * (1 - exp(-s^2 / (2 gamma^2))); gamma
// defaults to max(s)/2 of the FIRST sigma (1 if that is 0) and is reused for the later sigmas; the
// output is the pixel-wise maximum over sigmas (from 0). alpha only weighs the plate term of 3-D
// volumes; in 2-D that term is 1, so alpha is accepted and checked but does not change the result.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/vector_math.hpp"
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

/// v = exp(-rb^2 / (2 beta^2)) (1 - exp(-s^2 / (2 gamma^2))) of the sorted eigenvalues.
template <class R>
VASOMIM_HOST_DEVICE inline R frangi_value(R small, R large, R inv_two_beta2, R inv_two_gamma2) {
    const R l2 = large < R(1e-10) ? R(1e-10) : large;
    const R rb = (small < 0 ? -small : small) / l2;
    // Branch-free exp: per-pixel loops vectorise on the host (core/vector_math.hpp).
    return vmath::exp_nonpositive(-(rb * rb) * inv_two_beta2) *
           (R(1) - vmath::exp_nonpositive(-(small * small + large * large) * inv_two_gamma2));
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
    R inv_two_beta2, inv_two_gamma2;
    VASOMIM_HOST_DEVICE void operator()(std::int64_t i) const {
        R a, b;
        frangi_sorted(rr[i], rc[i], cc[i], a, b);
        const R v = frangi_value(a, b, inv_two_beta2, inv_two_gamma2);
        const R o = out[i];
        out[i] = v > o ? v : o;
    }
};

#if !VASOMIM_HAS_CUDA
/// cpu: from the Hessian rows, either the sorted eigenvalues into planes (first sigma with gamma
/// still unknown) or out row = max(out row, v).
template <class R>
struct frangi_row_sink {
    R *out, *small, *large;
    std::int64_t cols;
    R inv_two_beta2, inv_two_gamma2;
    bool store;
    void operator()(std::int64_t i, const R* __restrict rr, const R* __restrict rc, const R* __restrict cc) const {
        R* __restrict o = out + i * cols;
        if (store) {
            R* __restrict ps = small + i * cols;
            R* __restrict pl = large + i * cols;
            for (std::int64_t j = 0; j < cols; ++j) frangi_sorted(rr[j], rc[j], cc[j], ps[j], pl[j]);
            return;
        }
        for (std::int64_t j = 0; j < cols; ++j) {
            R a, b;
            frangi_sorted(rr[j], rc[j], cc[j], a, b);
            const R v = frangi_value(a, b, inv_two_beta2, inv_two_gamma2);
            o[j] = v > o[j] ? v : o[j];
        }
    }
};
#endif

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
    const R beta = static_cast<R>(o.beta);
    const R inv_two_beta2 = R(1) / (R(2) * beta * beta);
#if !VASOMIM_HAS_CUDA
    if constexpr (std::is_same_v<B, backend::cpu>) {
        if (detail::reorderable(o.hessian())) {  // fused rows, no Hessian planes
            detail::check_ridge_input(img, o, what);
            const std::int64_t n = img.numel();
            tensor<R, B> small, large;
            if (!gamma) {
                small = tensor<R, B>(img.shape());
                large = tensor<R, B>(img.shape());
            }
            detail::for_each_scale_rows(
                img, o,
                [&](std::size_t) {
                    const R g = gamma ? *gamma : R(1);
                    return detail::frangi_row_sink<R>{out.data(), small.data(), large.data(), img.dim(1), inv_two_beta2,
                                                      R(1) / (R(2) * g * g), !gamma};
                },
                [&](std::size_t) {
                    if (gamma) return;
                    // gamma = max(s) / 2 of this (first) sigma, then v from the stored eigenvalues.
                    const R* ps = small.data();
                    const R* pl = large.data();
                    R s2max = 0;
#pragma omp parallel for simd reduction(max : s2max)
                    for (std::int64_t p = 0; p < n; ++p) s2max = std::max(s2max, ps[p] * ps[p] + pl[p] * pl[p]);
                    using std::sqrt;
                    gamma = sqrt(s2max) / R(2);
                    if (*gamma == R(0)) gamma = R(1);
                    const R inv_two_gamma2 = R(1) / (R(2) * *gamma * *gamma);
                    R* po = out.data();
#pragma omp parallel for simd
                    for (std::int64_t p = 0; p < n; ++p) {
                        const R v = detail::frangi_value(ps[p], pl[p], inv_two_beta2, inv_two_gamma2);
                        po[p] = v > po[p] ? v : po[p];
                    }
                });
            return out;
        }
    }
#endif
    detail::for_each_scale(img, o, what, [&](double, const hessian_planes<R, B>& h) {
        const index_t n = h.rr.numel();
        if (!gamma) {
            s = tensor<R, B>(h.rr.shape());
            parallel_for<B>(n, detail::frangi_s_kernel<R>{h.rr.data(), h.rc.data(), h.cc.data(), s.data()});
            const R smax = reduce(s, R(0), maximum{});
            gamma = smax / R(2);
            if (*gamma == R(0)) gamma = R(1);
        }
        parallel_for<B>(n, detail::frangi_kernel<R>{h.rr.data(), h.rc.data(), h.cc.data(), out.data(), inv_two_beta2,
                                                    R(1) / (R(2) * *gamma * *gamma)});
    });
    return out;
}

template <class T, class B>
tensor<response_t<T>, B> frangi(const tensor<T, B>& image, const frangi_options& o = {}) {
    return frangi(image.view(), o);
}

}  // namespace vasomim::vessel
