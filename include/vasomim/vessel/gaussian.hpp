#pragma once
// Gaussian (derivative) filtering as scipy.ndimage.gaussian_filter(order=...) does it: kernels
// sampled and normalised like scipy's _gaussian_kernel1d, radius int(truncate * sigma + 0.5),
// one 1-D pass per axis (axis 0 first), each pass extending the line by the boundary mode.

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/error.hpp"
#include "vasomim/core/tensor.hpp"
#include "vasomim/vessel/boundary.hpp"

namespace vasomim::vessel {

/// The floating type computations on pixels of type T run in, as scikit-image chooses it: float
/// stays float, everything else (uint8, integers, double) becomes double.
template <class T>
using compute_t = std::conditional_t<std::is_same_v<T, float>, float, double>;

/// How much of each kernel is applied. `exact` keeps scipy's full radius except taps whose weight
/// is below 1e-30 of the largest (they cannot change a double result); `fast` also drops taps below
/// 2^-24 of the largest (float precision), which shortens sigma <= 1 kernels (truncate 100) and
/// the tails of the others. Only `exact` is held to the parity bar against scikit-image.
enum class kernel_precision { exact, fast };

/// scipy's radius rule: int(truncate * sigma + 0.5).
inline int gaussian_radius(double sigma, double truncate) {
    if (!(sigma >= 0) || !std::isfinite(sigma))
        throw value_error("gaussian_radius: sigma must be finite and >= 0, got " + std::to_string(sigma));
    if (!(truncate >= 0) || !std::isfinite(truncate))
        throw value_error("gaussian_radius: truncate must be finite and >= 0, got " + std::to_string(truncate));
    const double r = truncate * sigma + 0.5;
    if (r > 1e7) throw value_error("gaussian_radius: kernel radius " + std::to_string(r) + " is too large");
    return static_cast<int>(r);
}

/// The 2r+1 weights of scipy's _gaussian_kernel1d(sigma, order, radius) for x = -r..r, in
/// convolution orientation (out[i] = sum_x w[x + r] * in[i - x]): phi(x) = exp(-x^2 / (2 sigma^2))
/// normalised to sum 1, times the polynomial q(x) with (q phi)^(order) = derivative of phi.
inline std::vector<double> gaussian_kernel1d(double sigma, int order, int radius) {
    if (order < 0) throw value_error("gaussian_kernel1d: order must be >= 0, got " + std::to_string(order));
    if (!(sigma > 0)) throw value_error("gaussian_kernel1d: sigma must be > 0, got " + std::to_string(sigma));
    if (radius < 0) throw value_error("gaussian_kernel1d: radius must be >= 0");
    const double sigma2 = sigma * sigma;
    const std::size_t n = static_cast<std::size_t>(2 * radius + 1);
    std::vector<double> phi(n);
    double sum = 0;
    for (int x = -radius; x <= radius; ++x) {
        phi[static_cast<std::size_t>(x + radius)] = std::exp(-0.5 / sigma2 * double(x) * double(x));
        sum += phi[static_cast<std::size_t>(x + radius)];
    }
    for (auto& v : phi) v /= sum;
    if (order == 0) return phi;
    // q'(x) + q(x) p'(x) with p'(x) = -x / sigma^2, applied `order` times to q = 1 (coefficients of
    // the powers of x).
    std::vector<double> q(static_cast<std::size_t>(order + 1), 0.0);
    q[0] = 1;
    for (int it = 0; it < order; ++it) {
        std::vector<double> next(q.size(), 0.0);
        for (std::size_t i = 0; i + 1 < q.size(); ++i) next[i] += double(i + 1) * q[i + 1];  // derivative
        for (std::size_t i = 1; i < q.size(); ++i) next[i] += q[i - 1] * (-1.0 / sigma2);    // times p'
        q = next;
    }
    std::vector<double> w(n);
    for (int x = -radius; x <= radius; ++x) {
        double poly = 0, xp = 1;
        for (std::size_t i = 0; i < q.size(); ++i) {
            poly += q[i] * xp;
            xp *= double(x);
        }
        w[static_cast<std::size_t>(x + radius)] = poly * phi[static_cast<std::size_t>(x + radius)];
    }
    return w;
}

/// Correlation taps of a kernel (tap o at index o + r, out[i] = sum_o tap[o] * in[i + o]), trimmed
/// symmetrically where |weight| <= rel * max|weight|.
template <class R>
struct kernel_taps {
    std::vector<R> taps;
    int radius = 0;
};

/// Taps -keep..keep of the 2r+1 weights w (convolution orientation) in correlation orientation.
template <class R>
kernel_taps<R> taps_from_weights(const std::vector<double>& w, int r, int keep) {
    kernel_taps<R> k;
    k.radius = keep;
    k.taps.resize(static_cast<std::size_t>(2 * keep + 1));
    for (int o = -keep; o <= keep; ++o) k.taps[static_cast<std::size_t>(o + keep)] = static_cast<R>(w[static_cast<std::size_t>(r - o)]);
    return k;
}

/// scipy's kernel without the outermost tap pairs whose weights are both at most rel times the
/// largest.
template <class R>
kernel_taps<R> make_taps_rel(double sigma, int order, double truncate, double rel) {
    const int r = gaussian_radius(sigma, truncate);
    const auto w = gaussian_kernel1d(sigma, order, r);
    double peak = 0;
    for (double v : w) peak = std::max(peak, std::abs(v));
    int keep = r;
    while (keep > 0 && std::abs(w[static_cast<std::size_t>(r - keep)]) <= rel * peak &&
           std::abs(w[static_cast<std::size_t>(r + keep)]) <= rel * peak)
        --keep;
    return taps_from_weights<R>(w, r, keep);
}

template <class R>
kernel_taps<R> make_taps(double sigma, int order, double truncate, kernel_precision precision) {
    return make_taps_rel<R>(sigma, order, truncate, precision == kernel_precision::exact ? 1e-30 : std::ldexp(1.0, -24));
}

/// The taps of the ridge filters' exact mode: scipy's kernel without the outermost tap pairs
/// whose absolute weights add up to at most rel_l1 (1e-12 there) of the kernel's L1 norm. Bound:
/// every Hessian entry differentiates along some axis, so constants drop out and a pass changes
/// by at most rel_l1 * L1 * max|x - c| (any c); through the four passes of an entry that is at
/// most 4e-12 * L1(g)^2 L1(d)^2 * (half the image's range): seven orders of magnitude below the
/// parity bar (1e-5 of the filter's maximum) for any image with visible ridges, and on a par with
/// the double rounding of the sums (sigma 9 drops 4-6 of 51 taps a side, sigma 1 3 of 8).
/// The radius make_taps_l1 keeps of the weights w (radius r).
inline int kept_radius_l1(const std::vector<double>& w, int r, double rel_l1) {
    double l1 = 0;
    for (double v : w) l1 += std::abs(v);
    int keep = r;
    double dropped = 0;
    while (keep > 0) {
        const double pair = std::abs(w[static_cast<std::size_t>(r - keep)]) + std::abs(w[static_cast<std::size_t>(r + keep)]);
        if (dropped + pair > rel_l1 * l1) break;
        dropped += pair;
        --keep;
    }
    return keep;
}

template <class R>
kernel_taps<R> make_taps_l1(double sigma, int order, double truncate, double rel_l1) {
    const int r = gaussian_radius(sigma, truncate);
    const auto w = gaussian_kernel1d(sigma, order, r);
    return taps_from_weights<R>(w, r, kept_radius_l1(w, r, rel_l1));
}

namespace detail {

/// One 1-D correlation pass along `axis` of an H x W plane with arbitrary source strides:
/// dst[i, j] = sum_o taps[o] * x(i + o, j) (axis 0) or x(i, j + o) (axis 1), where x is `scale`
/// times the source inside and cval outside (mode constant), the source at the mapped index
/// otherwise. Runs as a parallel_for over pixels on any backend.
template <class In, class R>
struct axis_pass {
    const In* src;
    std::int64_t stride0, stride1;
    R* dst;
    const R* taps;
    int radius;
    std::int64_t rows, cols;
    int axis;
    boundary_mode mode;
    R cval, scale;

    VASOMIM_HOST_DEVICE void operator()(std::int64_t idx) const {
        const std::int64_t i = idx / cols, j = idx % cols;
        R acc = 0;
        const std::int64_t pos = axis == 0 ? i : j, len = axis == 0 ? rows : cols;
        if (pos - radius >= 0 && pos + radius < len) {  // interior: no boundary mapping
            const std::int64_t step = axis == 0 ? stride0 : stride1;
            const In* p = src + i * stride0 + j * stride1 - radius * step;
            for (int o = 0; o <= 2 * radius; ++o) acc += taps[o] * (scale * static_cast<R>(p[o * step]));
            dst[idx] = acc;
            return;
        }
        for (int o = -radius; o <= radius; ++o) {
            std::int64_t ii = i, jj = j;
            if (axis == 0) ii = map_index(i + o, rows, mode);
            else jj = map_index(j + o, cols, mode);
            const R v = (ii < 0 || jj < 0) ? cval : scale * static_cast<R>(src[ii * stride0 + jj * stride1]);
            acc += taps[o + radius] * v;
        }
        dst[idx] = acc;
    }
};

template <class T>
struct is_finite_value {
    VASOMIM_HOST_DEVICE int operator()(const T& v) const {
        if constexpr (std::is_floating_point_v<T>) {
            const double d = static_cast<double>(v);
            return (d - d == 0.0) ? 0 : 1;  // inf - inf and nan - nan are nan
        } else {
            return 0;
        }
    }
};

/// Throws value_error when a floating-point image holds NaN or Inf (`what` names the caller).
template <class T, class B>
void require_finite(const T* data, index_t n, const std::string& what) {
    if constexpr (std::is_floating_point_v<T>) {
        const long long bad = backend_traits<B>::transform_reduce(data, static_cast<std::size_t>(n), 0LL,
                                                                  is_finite_value<T>{}, plus{});
        if (bad > 0)
            throw value_error(what + ": the image holds " + std::to_string(bad) +
                              " NaN or infinite pixel(s)");
    }
}

template <class T, class B>
void require_image(const tensor_view<const T, B>& image, const std::string& what) {
    if (image.rank() != 2)
        throw shape_error(what + ": expected a 2-D image, got shape " + image.shape().to_string());
    if (image.dim(0) < 2 || image.dim(1) < 2)
        throw shape_error(what + ": the image must be at least 2 x 2 pixels, got " + image.shape().to_string());
}

}  // namespace detail

/// scipy.ndimage.gaussian_filter of a 2-D image with per-axis sigma and derivative order, in the
/// floating type R (the output type). Axes with sigma <= 1e-15 are skipped, as scipy does.
template <class R = void, class T, class B,
          class Out = std::conditional_t<std::is_void_v<R>, compute_t<std::remove_const_t<T>>, R>>
tensor<Out, B> gaussian_filter(tensor_view<T, B> image, const double (&sigma)[2], const int (&order)[2],
                               boundary_mode mode = boundary_mode::reflect, double cval = 0.0,
                               double truncate = 4.0) {
    using In = std::remove_const_t<T>;
    if (image.rank() != 2 || image.numel() == 0)
        throw shape_error("gaussian_filter: expected a non-empty 2-D image, got shape " + image.shape().to_string());
    for (int axis = 0; axis < 2; ++axis) {
        if (!(sigma[axis] >= 0) || !std::isfinite(sigma[axis]))
            throw value_error("gaussian_filter: sigma must be finite and >= 0, got " + std::to_string(sigma[axis]));
        if (order[axis] < 0) throw value_error("gaussian_filter: order must be >= 0, got " + std::to_string(order[axis]));
    }
    detail::require_finite<In, B>(image.data(), image.is_contiguous() ? image.numel() : 0, "gaussian_filter");
    const std::int64_t rows = image.dim(0), cols = image.dim(1);
    tensor<Out, B> a(shape{rows, cols}), b(shape{rows, cols});
    const In* src = image.data();
    std::int64_t s0 = image.stride(0), s1 = image.stride(1);
    bool first = true;
    tensor<Out, B>* cur = &a;
    for (int axis = 0; axis < 2; ++axis) {
        if (!(sigma[axis] > 1e-15)) continue;
        const auto k = make_taps<Out>(sigma[axis], order[axis], truncate, kernel_precision::exact);
        auto taps = tensor<Out, B>::from_host(k.taps, shape{static_cast<index_t>(k.taps.size())});
        if (first) {
            parallel_for<B>(rows * cols, detail::axis_pass<In, Out>{src, s0, s1, a.data(), taps.data(), k.radius, rows,
                                                                     cols, axis, mode, Out(cval), Out(1)});
            cur = &a;
        } else {
            tensor<Out, B>& dst = (cur == &a) ? b : a;
            parallel_for<B>(rows * cols, detail::axis_pass<Out, Out>{cur->data(), cols, 1, dst.data(), taps.data(),
                                                                      k.radius, rows, cols, axis, mode, Out(cval), Out(1)});
            cur = &dst;
        }
        first = false;
    }
    if (first) {  // no axis filtered: a plain cast, as a one-tap pass
        auto one = tensor<Out, B>::from_host(std::vector<Out>{Out(1)}, shape{1});
        parallel_for<B>(rows * cols, detail::axis_pass<In, Out>{src, s0, s1, a.data(), one.data(), 0, rows, cols, 0,
                                                                 mode, Out(cval), Out(1)});
        return a;
    }
    return std::move(*cur);
}

}  // namespace vasomim::vessel
