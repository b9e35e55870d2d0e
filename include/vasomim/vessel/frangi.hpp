#pragma once
// Frangi vesselness (scikit-image >= 0.20, 2-D): per sigma, eigenvalues sorted by magnitude
// (|l1| <= |l2|, ties keep the decreasing order), r_b = |l1| / max(l2, 1e-10),
// s = sqrt(l1^2 + l2^2), v = exp(-r_b^2 / (2 beta^2)) * (1 - exp(-s^2 / (2 gamma^2))); gamma
// defaults to max(s)/2 of the FIRST sigma (1 if that is 0) and is reused for the later sigmas; the
// output is the pixel-wise maximum over sigmas (from 0). alpha only weighs the plate term of 3-D
// volumes; in 2-D that term is 1, so alpha is accepted and checked but does not change the result.
// On the host, double images in exact mode take a fused path whose later sigmas use kernels
// trimmed within a proven bound of `tolerance` times the response's maximum (frangi_trim.hpp).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/vector_math.hpp"
#include "vasomim/vessel/ridge_filter.hpp"

#if !VASOMIM_HAS_CUDA
#include "vasomim/vessel/frangi_trim.hpp"
#include "vasomim/vessel/pixel_hessian.hpp"
#endif

namespace vasomim::vessel {

struct frangi_options : ridge_options {
    double alpha = 0.5;
    double beta = 0.5;
    std::optional<double> gamma;  ///< unset: max(s)/2 at the first sigma
    /// Exact mode on the host, double images: the kernels of the sigmas after the first are
    /// trimmed as far as a proven bound keeps the response within tolerance * its maximum of
    /// scikit-image's (vessel/frangi_trim.hpp; the parity bar is 1e-5). 0: scipy's kernels less
    /// taps below 1e-12 of their L1 norm. In [0, 0.01].
    double tolerance = 1e-7;
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
/// still unknown) or out row = max(out row, v). With `trim` (double, trimmed kernels), pixels
/// whose v the trim bound does not cover are left out of the maximum and listed in
/// suspects[row] as k * cols + column (frangi_trim.hpp).
template <class R>
struct frangi_row_sink {
    R *out, *small, *large;
    std::int64_t cols;
    R inv_two_beta2, inv_two_gamma2;
    bool store;
    const frangi_trim* trim = nullptr;
    std::vector<std::int64_t>* suspects = nullptr;
    std::int64_t k = 0;

    void operator()(std::int64_t i, const R* __restrict rr, const R* __restrict rc, const R* __restrict cc) const {
        R* __restrict o = out + i * cols;
        if (store) {
            R* __restrict ps = small + i * cols;
            R* __restrict pl = large + i * cols;
            for (std::int64_t j = 0; j < cols; ++j) frangi_sorted(rr[j], rc[j], cc[j], ps[j], pl[j]);
            return;
        }
        if constexpr (std::is_same_v<R, double>) {
            if (trim) {
                checked(i, rr, rc, cc, o);
                return;
            }
        }
        for (std::int64_t j = 0; j < cols; ++j) {
            R a, b;
            frangi_sorted(rr[j], rc[j], cc[j], a, b);
            const R v = frangi_value(a, b, inv_two_beta2, inv_two_gamma2);
            o[j] = v > o[j] ? v : o[j];
        }
    }

private:
    void checked(std::int64_t i, const R* __restrict rr, const R* __restrict rc, const R* __restrict cc,
                 R* __restrict o) const {
        const std::int64_t n = cols;  // a local bound: the byte stores below may alias members
        thread_local std::vector<unsigned char> flags;
        flags.resize(static_cast<std::size_t>(n));
        unsigned char* __restrict f = flags.data();
        const R te = trim->two_eps, lo = te + R(1e-10), th = te + trim->theta, s2l = trim->s2_limit;
        const R ib = inv_two_beta2, ig = inv_two_gamma2;
        for (std::int64_t j = 0; j < n; ++j) {
            R a, b;
            frangi_sorted(rr[j], rc[j], cc[j], a, b);
            const R v = frangi_value(a, b, ib, ig);
            const R tr = rr[j] + cc[j], aa = a < 0 ? -a : a;
            // Bitwise, not short-circuit: the loop stays branch-free and vectorises.
            const bool ok = ((tr > te) & (b > lo)) | ((tr < -te) & (aa > th)) | (a * a + b * b <= s2l);
            f[j] = static_cast<unsigned char>(!ok);
            o[j] = ok & (v > o[j]) ? v : o[j];
        }
        for (std::int64_t j = 0; j < n; ++j)
            if (f[j]) suspects[i].push_back(k * n + j);
    }
};

/// Lowest and highest pixel of a 2-D image, as doubles.
template <class T>
std::pair<double, double> value_range(const tensor_view<const T, backend::cpu>& img) {
    const std::int64_t rows = img.dim(0), cols = img.dim(1), s0 = img.stride(0), s1 = img.stride(1);
    const T* p = img.data();
    T lo = p[0], hi = p[0];  // in T: integer pixels vectorise without conversions
#pragma omp parallel for schedule(static) reduction(min : lo) reduction(max : hi)
    for (std::int64_t i = 0; i < rows; ++i)
        for (std::int64_t j = 0; j < cols; ++j) {
            const T v = p[i * s0 + j * s1];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    return {static_cast<double>(lo), static_cast<double>(hi)};
}

/// The pixels the trimmed sigmas left out: v in double from scipy's full kernels on x (sign *
/// image, the plane the passes read), folded into out. Returns how many (pixel, sigma) pairs were
/// recomputed.
inline std::size_t frangi_recheck(const tensor_view<const double, backend::cpu>& x, const frangi_options& o,
                                  double gamma, const std::vector<std::vector<std::int64_t>>& suspects, double* out) {
    const std::int64_t rows = x.dim(0), cols = x.dim(1);
    std::vector<std::pair<std::int64_t, std::int64_t>> items;  // (pixel, sigma index)
    for (std::int64_t i = 0; i < rows; ++i)
        for (std::int64_t code : suspects[static_cast<std::size_t>(i)]) items.emplace_back(i * cols + code % cols, code / cols);
    if (items.empty()) return 0;
    std::sort(items.begin(), items.end());
    std::vector<std::optional<pixel_hessian>> ph(o.sigmas.size());
    for (const auto& [px, k] : items)
        if (!ph[static_cast<std::size_t>(k)]) ph[static_cast<std::size_t>(k)].emplace(rows, cols, o.sigmas[static_cast<std::size_t>(k)], o.hessian());
    std::vector<std::size_t> starts;  // items of one pixel are consecutive: one thread each
    for (std::size_t q = 0; q < items.size(); ++q)
        if (q == 0 || items[q].first != items[q - 1].first) starts.push_back(q);
    starts.push_back(items.size());
    const double ib = 1 / (2 * o.beta * o.beta), ig = 1 / (2 * gamma * gamma);
    const auto groups = static_cast<std::int64_t>(starts.size()) - 1;
#pragma omp parallel
    {
        std::vector<double> scratch;
#pragma omp for schedule(dynamic, 4)
        for (std::int64_t g = 0; g < groups; ++g)
            for (std::size_t q = starts[static_cast<std::size_t>(g)]; q < starts[static_cast<std::size_t>(g) + 1]; ++q) {
                const auto [px, k] = items[q];
                double h[3];
                ph[static_cast<std::size_t>(k)]->at(x.data(), 0.0, cols, px / cols, px % cols, h, scratch);
                double a, b;
                frangi_sorted(h[0], h[1], h[2], a, b);
                out[px] = std::max(out[px], frangi_value(a, b, ib, ig));
            }
    }
    return items.size();
}

/// The fused cpu frangi (reorderable boundary handling) into `out` (zeroed, the image's shape);
/// `rechecked`, when given, receives the number of (pixel, sigma) pairs recomputed in double.
template <class T, class R = compute_t<T>>
void frangi_fused(const tensor_view<const T, backend::cpu>& img, const frangi_options& o, tensor<R, backend::cpu>& out,
                  std::size_t* rechecked = nullptr) {
    using B = backend::cpu;
    check_ridge_input(img, o, "frangi");
    const std::int64_t n = img.numel(), cols = img.dim(1);
    // sign * image in R once, for the passes of every sigma and for the recomputed pixels.
    hessian_workspace<R, B> local_ws;
    hessian_workspace<R, B>& ws = cached_workspace<R>(n, local_ws);
    const tensor_view<const R, B> x(signed_plane(img, o.black_ridges ? R(1) : R(-1), ws), img.shape());
    frangi_options xo = o;  // the options for x, which is already signed
    xo.black_ridges = true;
    std::optional<R> gamma;
    if (o.gamma) gamma = static_cast<R>(*o.gamma);
    const R beta = static_cast<R>(o.beta);
    const R inv_two_beta2 = R(1) / (R(2) * beta * beta);
    // The first sigma's eigenvalue planes (until gamma is known): kept per calling thread for
    // images up to 2 Mpixels, so that a batch of equal-sized images does not page-fault them in
    // for every image.
    static thread_local tensor<R, B> kept_small, kept_large;
    tensor<R, B> local_small, local_large;
    const bool keep = n <= (std::int64_t(1) << 21);
    tensor<R, B>& small = keep ? kept_small : local_small;
    tensor<R, B>& large = keep ? kept_large : local_large;
    if (!gamma && !(small.shape() == img.shape())) {
        small = tensor<R, B>(img.shape());
        large = tensor<R, B>(img.shape());
    }
    const auto ho = o.hessian();
    const bool trimmed =
        std::is_same_v<R, double> && o.precision == kernel_precision::exact && o.tolerance > 0 && o.sigmas.size() > 1;
    double half_range = 0, magnitude = 0, budget = 0;
    if (trimmed) {
        const auto [lo, hi] = value_range(x);
        half_range = (hi - lo) / 2;
        magnitude = std::max(std::abs(lo), std::abs(hi));
    }
    std::vector<std::vector<std::int64_t>> suspects(trimmed ? static_cast<std::size_t>(img.dim(0)) : 0);
    std::vector<frangi_trim> trims(o.sigmas.size());
    if (rechecked) *rechecked = 0;
    // Degenerate images (flat ones, where rounding noise is all there is) can leave most pixels
    // to the per-pixel recomputation: past 1/64 of the image, sigma k is recomputed instead with
    // the untrimmed kernels over the whole image (its trimmed values already in `out` are within
    // the bound, so the maximum with the untrimmed ones is too).
    auto untrim_if_many = [&](std::size_t k) {
        const auto code_k = static_cast<std::int64_t>(k) * cols;
        std::int64_t count = 0;
        for (const auto& row : suspects)
            for (auto it = row.rbegin(); it != row.rend() && *it >= code_k; ++it) ++count;
        if (count * 64 <= n) return;
        for (auto& row : suspects)
            while (!row.empty() && row.back() >= code_k) row.pop_back();
        const R g = *gamma;
        hessian_rows(x, o.sigmas[k], ho, R(1), ws, nullptr,
                     frangi_row_sink<R>{out.data(), nullptr, nullptr, cols, inv_two_beta2, R(1) / (R(2) * g * g), false});
    };
    for_each_scale_rows(
        x, xo,
        [&](std::size_t k) {
            const R g = gamma ? *gamma : R(1);
            frangi_row_sink<R> sink{out.data(), small.data(), large.data(), cols, inv_two_beta2, R(1) / (R(2) * g * g), !gamma};
            if (trimmed && k > 0) {
                sink.trim = &trims[k];
                sink.suspects = suspects.data();
                sink.k = static_cast<std::int64_t>(k);
            }
            return sink;
        },
        [&](std::size_t k) {
            if (k > 0) {
                if (trimmed) untrim_if_many(k);
                return;
            }
            R* po = out.data();
            if (!gamma) {
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
#pragma omp parallel for simd
                for (std::int64_t p = 0; p < n; ++p) {
                    const R v = frangi_value(ps[p], pl[p], inv_two_beta2, inv_two_gamma2);
                    po[p] = v > po[p] ? v : po[p];
                }
            }
            if (trimmed) {
                R m1 = 0;
#pragma omp parallel for simd reduction(max : m1)
                for (std::int64_t p = 0; p < n; ++p) m1 = std::max(m1, po[p]);
                // M1 is at most the final maximum; the margin covers its own rounding.
                budget = o.tolerance * static_cast<double>(m1) * (1 - 1e-9);
            }
        },
        [&](std::size_t k) -> hessian_kernels<R> {
            if constexpr (std::is_same_v<R, double>) {
                if (trimmed && k > 0) {
                    trims[k] = make_frangi_trim(o.sigmas[k], ho, half_range, magnitude, o.beta,
                                                static_cast<double>(*gamma), budget);
                    return trims[k].kernels;
                }
            }
            return make_hessian_kernels<R>(o.sigmas[k], ho, true);
        });
    if constexpr (std::is_same_v<R, double>) {
        if (trimmed) {
            const std::size_t nr = frangi_recheck(x, o, static_cast<double>(*gamma), suspects, out.data());
            if (rechecked) *rechecked = nr;
        }
    }
}
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
    if (!(o.tolerance >= 0 && o.tolerance <= 0.01))
        throw value_error("frangi: tolerance must be in [0, 0.01], got " + std::to_string(o.tolerance));
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
            detail::frangi_fused(img, o, out);
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
