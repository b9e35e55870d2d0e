#pragma once
// The 2-D Hessian of an image at scale sigma, as scikit-image >= 0.20 computes it with
// hessian_matrix(use_gaussian_derivatives=True): two successive first-order Gaussian-derivative
// passes of scipy.ndimage.gaussian_filter, each at sigma / sqrt(2), with truncate 8 when sigma > 1
// and 100 otherwise. Hrr = d_r(d_r I), Hrc = d_c(d_r I), Hcc = d_c(d_c I); no sigma^2 factor.
//
// Per axis the passes compose in scipy's order (axis 0 before axis 1 inside each gaussian_filter
// call; operators on different axes commute exactly), so the planes need 11 one-dimensional passes:
//   axis 0: A = D I, B = G I, then D A (-> Hrr), G A (-> Hrc), G B (-> Hcc)
//   axis 1: Hrr = G G (D A), Hrc = D G (G A), Hcc = D D (G B)
// where D / G are the first-order / smoothing kernels at sigma / sqrt(2). Passes along different
// axes commute exactly when the boundary handling is linear (every mode but constant with
// cval != 0). On the cpu backend the second axis-0 pass and the three pairs of row passes are then
// fused row by row (one OpenMP loop over rows, cache-resident row buffers); other backends, and
// constant mode with cval != 0, run scikit-image's exact call order (12 passes), each pass a
// parallel_for over pixels.

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/backend/backends.hpp"
#include "vasomim/core/tensor.hpp"
#include "vasomim/vessel/boundary.hpp"
#include "vasomim/vessel/gaussian.hpp"

namespace vasomim::vessel {

/// Options shared by the Hessian and every ridge filter.
struct hessian_options {
    boundary_mode mode = boundary_mode::reflect;
    double cval = 0.0;  ///< outside value for mode constant
    kernel_precision precision = kernel_precision::exact;
    /// Kernel truncation in units of sigma/sqrt(2); unset = scikit-image's rule (8 if sigma > 1
    /// else 100). Must be >= 0.
    std::optional<double> truncate;
};

/// The truncation used at `sigma`.
inline double hessian_truncate(double sigma, const hessian_options& o) {
    return o.truncate ? *o.truncate : (sigma > 1 ? 8.0 : 100.0);
}

/// The three distinct Hessian entries, each an H x W plane.
template <class R, class B>
struct hessian_planes {
    tensor<R, B> rr, rc, cc;
};

namespace detail {

/// Scratch planes reused across sigmas.
template <class R, class B>
struct hessian_workspace {
    tensor<R, B> x, a, b, t;
};

inline void check_sigma(double sigma, const std::string& what) {
    if (!(sigma > 0) || !std::isfinite(sigma))
        throw value_error(what + ": sigma must be finite and > 0, got " + std::to_string(sigma));
}

inline void check_hessian_options(const hessian_options& o, const std::string& what) {
    if (o.truncate && (!(*o.truncate >= 0) || !std::isfinite(*o.truncate)))
        throw value_error(what + ": truncate must be finite and >= 0, got " + std::to_string(*o.truncate));
    if (!std::isfinite(o.cval)) throw value_error(what + ": cval must be finite, got " + std::to_string(o.cval));
    const int m = static_cast<int>(o.mode);
    if (m < 0 || m > 4) throw config_error(what + ": unknown boundary mode " + std::to_string(m));
}

#if !VASOMIM_HAS_CUDA
// ---- cpu: fused, vectorisable row loops -----------------------------------------------------------

/// out = column (axis-0) correlation at row i of a contiguous rows x cols plane.
template <class R>
inline void column_pass_row(const R* plane, std::int64_t rows, std::int64_t cols, std::int64_t i,
                            const kernel_taps<R>& k, bool antisymmetric, boundary_mode mode,
                            const R* cval_row, R* __restrict out) {
    const R* c = k.taps.data() + k.radius;
    auto row = [&](std::int64_t ii) -> const R* {
        const std::int64_t m = map_index(ii, rows, mode);
        return m < 0 ? cval_row : plane + m * cols;
    };
    const R* p0 = row(i);
    const R c0 = c[0];
    for (std::int64_t j = 0; j < cols; ++j) out[j] = c0 * p0[j];
    // Four taps per sweep: the output row is loaded and stored once per four taps, not per tap.
    const R sg = antisymmetric ? R(-1) : R(1);
    int o = 1;
    for (; o + 3 <= k.radius; o += 4) {
        const R* __restrict p1 = row(i + o);
        const R* __restrict m1 = row(i - o);
        const R* __restrict p2 = row(i + o + 1);
        const R* __restrict m2 = row(i - o - 1);
        const R* __restrict p3 = row(i + o + 2);
        const R* __restrict m3 = row(i - o - 2);
        const R* __restrict p4 = row(i + o + 3);
        const R* __restrict m4 = row(i - o - 3);
        const R w1 = c[o], w2 = c[o + 1], w3 = c[o + 2], w4 = c[o + 3];
        for (std::int64_t j = 0; j < cols; ++j)
            out[j] += (w1 * (p1[j] + sg * m1[j]) + w2 * (p2[j] + sg * m2[j])) +
                      (w3 * (p3[j] + sg * m3[j]) + w4 * (p4[j] + sg * m4[j]));
    }
    for (; o <= k.radius; ++o) {
        const R* __restrict pp = row(i + o);
        const R* __restrict pm = row(i - o);
        const R w = c[o];
        for (std::int64_t j = 0; j < cols; ++j) out[j] += w * (pp[j] + sg * pm[j]);
    }
}

/// In-place row (axis-1) correlation of `row` (cols samples) using `buf` (cols + 2r samples).
template <class R>
inline void row_pass(R* row, std::int64_t cols, const kernel_taps<R>& k, bool antisymmetric, boundary_mode mode,
                     R cval, R* __restrict buf) {
    const int r = k.radius;
    for (std::int64_t t = -r; t < 0; ++t) {
        const std::int64_t m = map_index(t, cols, mode);
        buf[t + r] = m < 0 ? cval : row[m];
    }
    for (std::int64_t t = 0; t < cols; ++t) buf[t + r] = row[t];
    for (std::int64_t t = cols; t < cols + r; ++t) {
        const std::int64_t m = map_index(t, cols, mode);
        buf[t + r] = m < 0 ? cval : row[m];
    }
    const R* c = k.taps.data() + r;
    const R* __restrict centre = buf + r;
    const R c0 = c[0];
    for (std::int64_t j = 0; j < cols; ++j) row[j] = c0 * centre[j];
    const R sg = antisymmetric ? R(-1) : R(1);
    int o = 1;
    for (; o + 3 <= r; o += 4) {
        const R w1 = c[o], w2 = c[o + 1], w3 = c[o + 2], w4 = c[o + 3];
        for (std::int64_t j = 0; j < cols; ++j)
            row[j] += (w1 * (centre[j + o] + sg * centre[j - o]) + w2 * (centre[j + o + 1] + sg * centre[j - o - 1])) +
                      (w3 * (centre[j + o + 2] + sg * centre[j - o - 2]) + w4 * (centre[j + o + 3] + sg * centre[j - o - 3]));
    }
    for (; o <= r; ++o) {
        const R w = c[o];
        for (std::int64_t j = 0; j < cols; ++j) row[j] += w * (centre[j + o] + sg * centre[j - o]);
    }
}

template <class T, class R>
void hessian_cpu(const tensor_view<const T, backend::cpu>& image, const kernel_taps<R>& g, const kernel_taps<R>& d,
                 boundary_mode mode, R cval, R sign, hessian_planes<R, backend::cpu>& h,
                 hessian_workspace<R, backend::cpu>& ws) {
    const std::int64_t rows = image.dim(0), cols = image.dim(1);
    const R* x = nullptr;
    if constexpr (std::is_same_v<T, R>) {
        if (sign == R(1) && image.is_contiguous()) x = image.data();
    }
    if (!x) {
        if (ws.x.numel() != rows * cols) ws.x = tensor<R, backend::cpu>(shape{rows, cols});
        R* xd = ws.x.data();
        const T* src = image.data();
        const std::int64_t s0 = image.stride(0), s1 = image.stride(1);
#pragma omp parallel for schedule(static)
        for (std::int64_t i = 0; i < rows; ++i)
            for (std::int64_t j = 0; j < cols; ++j) xd[i * cols + j] = sign * static_cast<R>(src[i * s0 + j * s1]);
        x = xd;
    }
    const std::vector<R> cval_row(static_cast<std::size_t>(cols), cval);
    R* a = ws.a.data();
    R* b = ws.b.data();
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < rows; ++i) {
        column_pass_row(x, rows, cols, i, d, true, mode, cval_row.data(), a + i * cols);
        column_pass_row(x, rows, cols, i, g, false, mode, cval_row.data(), b + i * cols);
    }
    R* rr = h.rr.data();
    R* rc = h.rc.data();
    R* cc = h.cc.data();
#pragma omp parallel
    {
        std::vector<R> buf(static_cast<std::size_t>(cols + 2 * std::max(g.radius, d.radius)));
#pragma omp for schedule(static)
        for (std::int64_t i = 0; i < rows; ++i) {
            R* prr = rr + i * cols;
            R* prc = rc + i * cols;
            R* pcc = cc + i * cols;
            column_pass_row(a, rows, cols, i, d, true, mode, cval_row.data(), prr);
            column_pass_row(a, rows, cols, i, g, false, mode, cval_row.data(), prc);
            column_pass_row(b, rows, cols, i, g, false, mode, cval_row.data(), pcc);
            row_pass(prr, cols, g, false, mode, cval, buf.data());
            row_pass(prr, cols, g, false, mode, cval, buf.data());
            row_pass(prc, cols, g, false, mode, cval, buf.data());
            row_pass(prc, cols, d, true, mode, cval, buf.data());
            row_pass(pcc, cols, d, true, mode, cval, buf.data());
            row_pass(pcc, cols, d, true, mode, cval, buf.data());
        }
    }
}
#endif

/// Computes the Hessian planes of sign * image at sigma into `h` (allocated by the caller).
template <class T, class R, class B>
void hessian_into(const tensor_view<const T, B>& image, double sigma, const hessian_options& o, R sign,
                  hessian_planes<R, B>& h, hessian_workspace<R, B>& ws) {
    const std::int64_t rows = image.dim(0), cols = image.dim(1);
    const double s = sigma / std::sqrt(2.0);
    const double truncate = hessian_truncate(sigma, o);
    const auto g = make_taps<R>(s, 0, truncate, o.precision);
    const auto d = make_taps<R>(s, 1, truncate, o.precision);
    const shape sh{rows, cols};
    for (auto* t : {&h.rr, &h.rc, &h.cc, &ws.a, &ws.b})
        if (!(t->shape() == sh)) *t = tensor<R, B>(sh);
    const R cval = static_cast<R>(o.cval);
#if !VASOMIM_HAS_CUDA
    // The fused cpu path reorders passes across axes, which is exact for linear boundary handling;
    // mode constant with cval != 0 is affine, so it takes the call-order path below.
    if constexpr (std::is_same_v<B, backend::cpu>) {
        if (!(o.mode == boundary_mode::constant && o.cval != 0.0)) {
            hessian_cpu(image, g, d, o.mode, cval, sign, h, ws);
            return;
        }
    }
#endif
    if (!(ws.t.shape() == sh)) ws.t = tensor<R, B>(sh);
    auto gt = tensor<R, B>::from_host(g.taps, shape{static_cast<index_t>(g.taps.size())});
    auto dt = tensor<R, B>::from_host(d.taps, shape{static_cast<index_t>(d.taps.size())});
    const std::int64_t n = rows * cols;
    const T* src = image.data();
    const std::int64_t s0 = image.stride(0), s1 = image.stride(1);
    auto pass_in = [&](const kernel_taps<R>& k, const R* taps, R* dst) {
        parallel_for<B>(n, axis_pass<T, R>{src, s0, s1, dst, taps, k.radius, rows, cols, 0, o.mode, cval, sign});
    };
    auto pass = [&](const R* in, const kernel_taps<R>& k, const R* taps, int axis, R* dst) {
        parallel_for<B>(n, axis_pass<R, R>{in, cols, 1, dst, taps, k.radius, rows, cols, axis, o.mode, cval, R(1)});
    };
    // scikit-image's exact call order: gaussian_filter(I, order) runs axis 0 then axis 1, and the
    // second derivative is a second gaussian_filter call on the first one's result.
    pass_in(d, dt.data(), ws.t.data());                 // D_0 I
    pass(ws.t.data(), g, gt.data(), 1, ws.a.data());     // grad_r = G_1 D_0 I
    pass_in(g, gt.data(), ws.t.data());                 // G_0 I
    pass(ws.t.data(), d, dt.data(), 1, ws.b.data());     // grad_c = D_1 G_0 I
    pass(ws.a.data(), d, dt.data(), 0, ws.t.data());
    pass(ws.t.data(), g, gt.data(), 1, h.rr.data());     // Hrr = G_1 D_0 grad_r
    pass(ws.a.data(), g, gt.data(), 0, ws.t.data());
    pass(ws.t.data(), d, dt.data(), 1, h.rc.data());     // Hrc = D_1 G_0 grad_r
    pass(ws.b.data(), g, gt.data(), 0, ws.t.data());
    pass(ws.t.data(), d, dt.data(), 1, h.cc.data());     // Hcc = D_1 G_0 grad_c
}

}  // namespace detail

/// Hessian planes of a 2-D image (at least 2 x 2, finite) at scale sigma > 0, computed in
/// compute_t<T> (float for float images, double otherwise). Throws value_error / shape_error /
/// config_error naming the problem.
template <class T, class B>
hessian_planes<compute_t<std::remove_const_t<T>>, B> hessian(tensor_view<T, B> image, double sigma,
                                                            const hessian_options& options = {}) {
    using In = std::remove_const_t<T>;
    using R = compute_t<In>;
    const tensor_view<const In, B> img(image.data(), image.shape(), image.strides());
    detail::require_image(img, "hessian");
    detail::check_sigma(sigma, "hessian");
    detail::check_hessian_options(options, "hessian");
    if (img.is_contiguous()) detail::require_finite<In, B>(img.data(), img.numel(), "hessian");
    hessian_planes<R, B> h;
    detail::hessian_workspace<R, B> ws;
    detail::hessian_into(img, sigma, options, R(1), h, ws);
    return h;
}

template <class T, class B>
hessian_planes<compute_t<T>, B> hessian(const tensor<T, B>& image, double sigma, const hessian_options& options = {}) {
    return hessian(image.view(), sigma, options);
}

}  // namespace vasomim::vessel
