#pragma once
// The uint8 cast of the double Sato response (the pseudo-label's first steps), computed in float
// and made exact: per sigma a rigorous bound on the float rounding error is derived from the
// kernels (L1 norms, summation depth, dropped taps); a pixel whose float interval
// [max_s(v_s - e_s), max_s(v_s + e_s)] straddles an integer cut-off is recomputed in double, at
// that pixel only, with scipy's two-stage boundary handling along each axis. The result equals the
// double pipeline's uint8 values; the response is the float one (within float rounding of the
// double response) except at recomputed pixels, which hold the double value. Host (cpu) only, and
// not for mode constant (the offset trick and the per-pixel weights assume linear boundaries).
// For the pipeline (values inside a border, reflect mode) larger sigmas continue from a smaller
// one by the scale cascade (scale_cascade.hpp), whose error terms join the bound.

#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "vasomim/backend/cpu.hpp"
#include "vasomim/core/tensor.hpp"
#include "vasomim/vessel/byte_histogram.hpp"
#include "vasomim/vessel/pixel_hessian.hpp"
#include "vasomim/vessel/sato.hpp"
#include "vasomim/vessel/scale_cascade.hpp"

namespace vasomim::vessel::detail {

/// Rigorous bound on the float error of one Hessian entry computed by the fused cpu passes on an
/// image bounded by m in magnitude (four passes: k[0..3], each a float copy of an exact kernel).
struct pass_kernel {
    double l1;       ///< L1 norm of the kept (float) taps, rounded up
    double dropped;  ///< L1 norm of the taps dropped from scipy's kernel
    int radius;
    int depth = 0;   ///< roundings on the way to one output sample (set by as_column / as_row)
};

/// Depth of one row pass (row_pass_depth: every summation tree of the row passes stays within it).
inline pass_kernel as_row(pass_kernel k) {
    k.depth = row_pass_depth(k.radius);
    return k;
}

/// Depth of one column pass: column_pass_rows4 accumulates its 2r + 4 (zero-padded) taps in two
/// chains of r + 2, each step counted as two roundings (whether or not the compiler fuses the
/// multiply-add), then adds the chains; rows outside full blocks take column_pass_row, whose tree
/// is the row pass's.
inline pass_kernel as_column(pass_kernel k) {
    k.depth = std::max(2 * (k.radius + 2) + 1, row_pass_depth(k.radius));
    return k;
}

inline pass_kernel describe_kernel(double s, int order, double truncate, const kernel_taps<float>& kept) {
    const int r = gaussian_radius(s, truncate);
    const auto w = gaussian_kernel1d(s, order, r);
    double l1_all = 0, l1_kept = 0;
    for (double v : w) l1_all += std::abs(v);
    for (float v : kept.taps) l1_kept += std::abs(static_cast<double>(v));
    const double u = std::ldexp(1.0, -24);
    return {l1_kept * (1 + 4 * u), std::max(0.0, l1_all - l1_kept) + l1_all * 2 * u, kept.radius};
}

inline double chain_error(double m, const pass_kernel (&k)[4]) {
    const double u = std::ldexp(1.0, -24);
    double grow = 1, norm = 1, trim = 0;
    for (int i = 0; i < 4; ++i) {
        const int depth = k[i].depth;
        grow *= 1 + depth * u / (1 - depth * u);
        norm *= k[i].l1;
    }
    for (int i = 0; i < 4; ++i) {
        double others = 1;
        for (int j = 0; j < 4; ++j)
            if (j != i) others *= k[j].l1;
        trim += k[i].dropped * others;
    }
    return m * (norm * (grow - 1) + trim);
}

/// Row sink of hessian_rows: out row = s2 * max(l1, 0) in columns [jb, je), in float (vectorises
/// where math errno is off, as for the project's own targets).
struct sato_scale_f32 {
    float* out;
    std::int64_t cols, jb, je;
    float s2;
    void operator()(std::int64_t i, const float* __restrict rr, const float* __restrict rc,
                    const float* __restrict cc) const {
        float* __restrict o = out + i * cols;
        for (std::int64_t j = jb; j < je; ++j) {
            const float mean = (rr[j] + cc[j]) / 2.0f, half_diff = (rr[j] - cc[j]) / 2.0f;
            const float l1 = mean + std::sqrt(rc[j] * rc[j] + half_diff * half_diff);
            o[j] = s2 * (l1 > 0.0f ? l1 : 0.0f);
        }
    }
};

/// What checked_sato's per-sigma pixel_hessian objects depend on.
struct pixel_hessian_key {
    std::int64_t rows = -1, cols = -1;
    std::vector<double> sigmas;
    boundary_mode mode = boundary_mode::reflect;
    std::optional<double> truncate;
    bool operator==(const pixel_hessian_key&) const = default;
};

/// Which sigmas checked_sato continues by the scale cascade, their steps, and scipy's edge effect at
/// the border for every sigma's entries (used where a sigma is a source or cascaded).
struct cascade_plan {
    std::vector<char> cascade;
    std::vector<cascade_step> steps;
    std::vector<std::array<double, 3>> edge;
};

struct cascade_plan_key {
    pixel_hessian_key base;
    std::int64_t border = -1;
    bool windowed = false;
    bool operator==(const cascade_plan_key&) const = default;
};

/// A pixel whose uint8 value the float pass cannot decide: the cast of its float value is `value`,
/// the exact (double) one lies in [low, high] (low < high).
struct doubtful_pixel {
    std::int64_t index;  ///< row-major pixel index
    std::uint8_t value, low, high;
};

/// checked_sato's default choice of the doubtful pixels to recompute: all of them, so that every
/// value inside the border is exact. A choice is called with the histogram of the values (doubtful
/// pixels counted at `value`, recomputed ones at their exact value) and the doubtful pixels not
/// yet recomputed, and returns the positions in that list to recompute next; checked_sato calls it
/// again after each recomputation until it returns none. A choice that leaves pixels undecided
/// (pseudo_label's mask_recheck) vouches for the result it needs, not for those pixels' values.
struct recheck_all {
    std::vector<std::size_t> operator()(const std::array<std::size_t, 256>&, const std::vector<doubtful_pixel>& pending) const {
        std::vector<std::size_t> all(pending.size());
        for (std::size_t q = 0; q < all.size(); ++q) all[q] = q;
        return all;
    }
};

/// Per-thread scratch and results of combine_row (padded apart: threads write them per row).
struct alignas(64) combine_part {
    std::vector<doubtful_pixel> suspects;
    byte_histograms hist{};
    std::vector<float> best, low, high;
    std::vector<std::uint8_t> flag;
};

struct combine_rows_args {
    std::int64_t rows, cols, border;
    std::size_t ns;
    const float* const* planes;  ///< the sigmas' scaled responses
    const float* errs;           ///< their float error bounds
    double* out;                 ///< response (may be null)
    std::uint8_t* val;
    bool pipeline_tail;
};

/// Row i of checked_sato once every sigma's row is final: the maximum over the sigmas, its uint8
/// cast, and the float bounds that flag the suspects. The arguments come by value: read through
/// pointers or references, every 8-bit store could alias them, which keeps the loops scalar.
inline void combine_row(combine_rows_args a, std::int64_t i, combine_part& tp) {
    const std::int64_t rows = a.rows, cols = a.cols, border = a.border;
    const std::size_t ns = a.ns;
    const std::int64_t jlo = std::min(border, cols), jhi = std::max(cols - border, jlo);  // checked columns
    const bool checked = i >= border && i < rows - border;
    std::uint8_t* __restrict vrow = a.val + i * cols;
    if (a.pipeline_tail && !checked) {  // a border row: all zero
        std::fill(vrow, vrow + cols, std::uint8_t(0));
        tp.hist[0][0] += static_cast<std::size_t>(cols);
        return;
    }
    // The columns with values: the pipeline needs none in its border (hessian_rows computes none
    // there).
    const std::int64_t cb = a.pipeline_tail ? jlo : 0, ce = a.pipeline_tail ? jhi : cols;
    // Float bounds widened by one more float rounding of each (err already has slack).
    // Every sigma at once, a vector of columns at a time, the three maxima in registers (a loop per
    // sigma re-read and re-wrote them for each); a sigma's values v give max(best, v),
    // max(low, v - e), max(high, v + e), as std::max.
    float* __restrict bst = tp.best.data();
    float* __restrict lo_ = tp.low.data();
    float* __restrict hi_ = tp.high.data();
    using V = vec64<float>::type;
    constexpr int L = lanes64<float>;
    std::int64_t jv = cb;
    for (; jv + L <= ce; jv += L) {
        V v, b, lo, hi;
        std::memcpy(&v, a.planes[0] + i * cols + jv, sizeof v);
        b = v;
        lo = v - a.errs[0];
        hi = v + a.errs[0];
        for (std::size_t k = 1; k < ns; ++k) {
            std::memcpy(&v, a.planes[k] + i * cols + jv, sizeof v);
            const V vl = v - a.errs[k], vh = v + a.errs[k];
            b = b < v ? v : b;
            lo = lo < vl ? vl : lo;
            hi = hi < vh ? vh : hi;
        }
        std::memcpy(bst + jv, &b, sizeof b);
        std::memcpy(lo_ + jv, &lo, sizeof lo);
        std::memcpy(hi_ + jv, &hi, sizeof hi);
    }
    for (std::int64_t j = jv; j < ce; ++j) {
        const float v0 = a.planes[0][i * cols + j];
        bst[j] = v0;
        lo_[j] = v0 - a.errs[0];
        hi_[j] = v0 + a.errs[0];
        for (std::size_t k = 1; k < ns; ++k) {
            const float v = a.planes[k][i * cols + j];
            bst[j] = std::max(bst[j], v);
            lo_[j] = std::max(lo_[j], v - a.errs[k]);
            hi_[j] = std::max(hi_[j], v + a.errs[k]);
        }
    }
    if (a.out) {
        double* __restrict orow = a.out + i * cols;
        for (std::int64_t j = cb; j < ce; ++j) orow[j] = static_cast<double>(bst[j]);
    }
    std::uint8_t* __restrict frow = tp.flag.data();
    for (std::int64_t j = cb; j < ce; ++j) {
        const float b = std::min(std::max(bst[j], 0.0f), 255.0f);
        vrow[j] = static_cast<std::uint8_t>(b);
        const float lc = std::min(std::max(lo_[j], 0.0f), 255.0f), hc = std::min(std::max(hi_[j], 0.0f), 255.0f);
        frow[j] = static_cast<int>(lc) != static_cast<int>(hc);
    }
    if (!checked) return;
    if (a.pipeline_tail) {
        std::fill(vrow, vrow + jlo, std::uint8_t(0));
        std::fill(vrow + jhi, vrow + cols, std::uint8_t(0));
        count_bytes(vrow + jlo, static_cast<std::size_t>(jhi - jlo), tp.hist);  // zeros and ones dominate (count_bytes)
        tp.hist[0][0] += static_cast<std::size_t>(cols - (jhi - jlo));
    }
    std::uint8_t any = 0;  // a reduction that vectorises; suspects are rare
    for (std::int64_t j = jlo; j < jhi; ++j) any |= frow[j];
    if (!any) return;
    // In column order, eight flags at a time past the clear ones (a row holds a few suspects).
    for (std::int64_t j = jlo; j < jhi;) {
        if (j + 8 <= jhi) {
            std::uint64_t w;
            std::memcpy(&w, frow + j, sizeof w);
            if (w == 0) {
                j += 8;
                continue;
            }
        }
        if (frow[j]) {
            const auto byte = [](float v) { return static_cast<std::uint8_t>(std::min(std::max(v, 0.0f), 255.0f)); };
            tp.suspects.push_back({i * cols + j, vrow[j], byte(lo_[j]), byte(hi_[j])});
        }
        ++j;
    }
}

struct checked_sato_result {
    tensor<double, backend::cpu> response;
    tensor<std::uint8_t, backend::cpu> value;  ///< to_uint8(response), exact inside the checked region
    std::size_t doubtful = 0;                  ///< pixels whose uint8 cast the float pass left in doubt
    std::size_t rechecked = 0;                 ///< of those, the pixels recomputed in double
    std::size_t cascaded = 0;                  ///< sigmas continued by the scale cascade (scale_cascade.hpp)
    /// With pipeline_tail: the histogram of `value` (counts of 0..255).
    std::array<std::size_t, 256> histogram{};
};

/// Sato response of sign * image (integer pixels) and its exact uint8 cast on the
/// pixels at least `border` from every edge (outside, the cast of the float response). Without
/// with_response only the uint8 values are produced (the response stays empty). With
/// pipeline_tail the pseudo-label's next steps ride along in the same pass over each row: values
/// outside the border are set to 0 and the histogram of the values is counted; then `choose`
/// (recheck_all's interface) may leave doubtful pixels alone that the caller's result does not
/// depend on (they keep the cast of their float value, within one of the exact one). Without
/// pipeline_tail every doubtful pixel is recomputed.
template <class T, class Choose = recheck_all>
    requires std::is_integral_v<T>
checked_sato_result checked_sato(const tensor_view<const T, backend::cpu>& image, const sato_options& o,
                                 std::int64_t border, bool with_response = true, bool pipeline_tail = false,
                                 const Choose& choose = {}) {
    using R = float;
    require_image(image, "pseudo_label");
    check_ridge_options(o, "pseudo_label");
    const std::int64_t rows = image.dim(0), cols = image.dim(1), n = rows * cols;
    const T* src = image.data();
    const std::int64_t s0 = image.stride(0), s1 = image.stride(1);
    const double sign = o.black_ridges ? 1.0 : -1.0;
    border = std::max<std::int64_t>(border, 0);
    // Centre the image: the Hessian ignores constants (every entry differentiates along each axis
    // it smooths, and the boundary modes used here extend constants as constants), and smaller
    // magnitudes mean smaller float rounding.
    T tmin = src[0], tmax = src[0];
    for (std::int64_t i = 0; i < rows; ++i) {
        const T* row = src + i * s0;
        if (s1 == 1) {
            for (std::int64_t j = 0; j < cols; ++j) {
                tmin = std::min(tmin, row[j]);
                tmax = std::max(tmax, row[j]);
            }
        } else {
            for (std::int64_t j = 0; j < cols; ++j) {
                tmin = std::min(tmin, row[j * s1]);
                tmax = std::max(tmax, row[j * s1]);
            }
        }
    }
    const double lo = static_cast<double>(tmin), hi = static_cast<double>(tmax);
    const double centre = static_cast<double>(static_cast<R>(std::round(sign * (lo + hi) / 2)));
    // Planes reused across calls on the same thread (a batch of equal-sized images allocates once).
    struct workspace {
        tensor<R, backend::cpu> xf;
        std::vector<tensor<R, backend::cpu>> per_sigma;
        hessian_workspace<R, backend::cpu> ws;
        std::vector<double> x;
        std::vector<combine_part> parts;
        std::array<tensor<R, backend::cpu>, 4> cplanes;  ///< the scale cascade sources' entries (set 0, and set 1's own plane)
        std::vector<pixel_hessian> sw;                   ///< the recheck's kernels, for sw_key
        pixel_hessian_key sw_key;
        cascade_plan plan;                               ///< for plan_key
        cascade_plan_key plan_key;
    };
    // Kept per thread only for images up to 4 Mpixels (about 50 MB of planes); larger ones use
    // planes freed on return.
    static thread_local workspace kept;
    workspace local;
    workspace& wsp = n <= (std::int64_t(1) << 22) ? kept : local;
    const shape sh{rows, cols};
    if (!(wsp.xf.shape() == sh)) wsp = workspace{};
    if (wsp.xf.numel() != n) wsp.xf = tensor<R, backend::cpu>(sh);
    tensor<R, backend::cpu>& xf = wsp.xf;
    // Bound on |centred image|; the float conversion error (none for 8- and 16-bit pixels) is
    // accounted for in the error bound below.
    const double m = std::max(std::abs(sign * lo - centre), std::abs(sign * hi - centre)) * (1 + std::ldexp(1.0, -23));
    {
        R* p = xf.data();
        const R fc = static_cast<R>(centre);
        // In parallel only for large images: a 512 x 512 conversion takes about 40 us on one
        // thread, less than waking sleeping threads for a parallel region (about 85 us measured
        // with OMP_WAIT_POLICY=passive on a 2-vCPU VM).
#pragma omp parallel for schedule(static) if (n > (std::int64_t(1) << 20))
        for (std::int64_t i = 0; i < rows; ++i) {
            const T* row = src + i * s0;
            R* out = p + i * cols;
            if (sign > 0)
                for (std::int64_t j = 0; j < cols; ++j) out[j] = static_cast<R>(row[j * s1]) - fc;
            else
                for (std::int64_t j = 0; j < cols; ++j) out[j] = -static_cast<R>(row[j * s1]) - fc;
        }
    }
    const std::size_t ns = o.sigmas.size();
    std::vector<double> err(ns);
    auto& per_sigma = wsp.per_sigma;
    while (per_sigma.size() < ns) per_sigma.emplace_back(sh);
    const hessian_options ho = o.hessian();
    // The float passes' kernels: scipy's without the tap pairs below 2^-20 of the peak (the mass
    // they drop joins the error bound). Fewer taps against a few more pixels in doubt: on 16
    // synthetic 512 x 512 images 2^-24 -> 2^-20 drops a tap a side at most sigmas, 325 -> 354
    // pixels rechecked per image (before the chained cascade), 5% faster (2^-19 drops one more and
    // rechecks 460).
    constexpr double float_trim = 0x1p-20;
    const auto float_taps = [&](double sigma, int order) {
        return make_taps_rel<R>(sigma / std::sqrt(2.0), order, hessian_truncate(sigma, ho), float_trim);
    };
    auto& ws = wsp.ws;
    const double u = std::ldexp(1.0, -24);
    // A sigma's error bound from its entries' error bound e (against scipy's entries) and a bound
    // hmax on their magnitude: l1 = mean + sqrt(rc^2 + half_diff^2) is (1 + sqrt 2)-Lipschitz in
    // the entries (max norm); its own float evaluation adds a few roundings of quantities below
    // 2 hmax; then sigma^2.
    auto sato_error = [u](double sigma, double e, double hmax) {
        const double s2 = sigma * sigma;
        return 1.25 * (s2 * ((1 + std::sqrt(2.0)) * e + 24 * u * hmax) + 4 * u * s2 * 2 * hmax);
    };
    // The entries' error bound of the direct passes at sigma, and their magnitude bound.
    auto direct_error = [&](double sigma, double& e, double& hmax) {
        const double s = sigma / std::sqrt(2.0), tr = hessian_truncate(sigma, ho);
        const auto g = describe_kernel(s, 0, tr, float_taps(sigma, 0));
        const auto d = describe_kernel(s, 1, tr, float_taps(sigma, 1));
        // The passes of each entry in hessian_cpu's order (column, row, column, row).
        const pass_kernel rr[4] = {as_column(d), as_row(g), as_column(d), as_row(g)},
                          rc[4] = {as_column(d), as_row(g), as_column(g), as_row(d)},
                          cc[4] = {as_column(g), as_row(d), as_column(g), as_row(d)};
        e = std::max({chain_error(m, rr), chain_error(m, rc), chain_error(m, cc)}) +
            u * (std::max(std::abs(lo), std::abs(hi)) + m) * d.l1 * d.l1 * g.l1 * g.l1;  // to float
        hmax = m * d.l1 * d.l1 * g.l1 * g.l1 + e;  // bound on |entries| (float and exact)
    };

    checked_sato_result res;
    if (with_response) res.response = tensor<double, backend::cpu>(shape{rows, cols});
    res.value = tensor<std::uint8_t, backend::cpu>(shape{rows, cols});
    double* out = with_response ? res.response.data() : nullptr;
    std::uint8_t* val = res.value.data();
    std::vector<const R*> ps(ns);
    for (std::size_t k = 0; k < ns; ++k) ps[k] = per_sigma[k].data();
    std::vector<float> errf(ns);  // filled sigma by sigma, before the last one's pass combines them
    auto& parts = wsp.parts;
    parts.resize(static_cast<std::size_t>(std::max(1, omp_get_max_threads())));
    for (auto& tp : parts) {
        tp.suspects.clear();
        tp.hist = {};
        for (auto* v : {&tp.best, &tp.low, &tp.high}) v->resize(static_cast<std::size_t>(cols));
        tp.flag.resize(static_cast<std::size_t>(cols));
    }
    combine_rows_args args{rows, cols, border, ns, ps.data(), errf.data(), out, val, pipeline_tail};
    const auto xv = as_const(xf.view());
    // The pipeline needs values inside its border only: the Hessians are computed there only.
    const bool windowed = pipeline_tail && border > 0 && rows > 2 * border && cols > 2 * border;
    const hessian_window win{border, rows - border, border, cols - border};
    const hessian_window* pw = windowed ? &win : nullptr;
    const std::int64_t jb = windowed ? border : 0, je = windowed ? cols - border : cols;
    // Sigmas that continue from the previous one by the scale cascade (scale_cascade.hpp): the
    // pipeline's window, reflect mode, increasing sigmas, a source scale whose sampled Gaussians
    // compose (sigma / sqrt 2 >= 1), kernels shorter than the image's sides.
    // The plan depends on the sizes and options only: kept for the next image alike.
    const cascade_plan_key plan_key{{rows, cols, o.sigmas, o.mode, o.truncate}, border, windowed};
    if (!(wsp.plan_key == plan_key)) {
        cascade_plan& pl = wsp.plan;
        pl.cascade.assign(ns, 0);
        pl.steps.assign(ns, cascade_step{});
        pl.edge.assign(ns, std::array<double, 3>{});
        const auto short_enough = [&](int r) { return r < std::min(rows, cols); };
        if (windowed && o.mode == boundary_mode::reflect) {
            for (std::size_t k = 0; k < ns; ++k) pl.edge[k] = edge_bound(entry_kernels(o.sigmas[k], ho), border);
            // Every sigma that can continues from the one before, so the cascade chains: the
            // pipeline's sigma 3 from 2 (a direct source) and 4 from 3. The chain carries each
            // source's error bound on: 16 synthetic 512 x 512 images recheck 463 instead of 354
            // pixels each (of 223k), and take 6.1-6.3 instead of 6.3-6.6 ms (sigma 4 alone from 3).
            for (std::size_t k = 1; k < ns; ++k) {
                const double prev = o.sigmas[k - 1], sigma = o.sigmas[k];
                if (!(sigma > prev && prev / std::sqrt(2.0) >= 1.0)) continue;
                if (!short_enough(std::max(float_taps(prev, 0).radius, float_taps(prev, 1).radius))) continue;
                pl.steps[k] = make_cascade_step(prev, sigma, ho, float_trim);
                if (!short_enough(pl.steps[k].taps.radius)) continue;
                // Negligible next to the float rounding: the identity's error, and scipy's edge
                // effect at the border (a narrow border would flag many pixels for recomputation).
                const auto worst = [](const std::array<double, 3>& a) { return *std::max_element(a.begin(), a.end()); };
                if (worst(pl.steps[k].identity) > 1e-9 || worst(pl.edge[k - 1]) > 1e-9 || worst(pl.edge[k]) > 1e-9)
                    continue;
                pl.cascade[k] = 1;
            }
        }
        wsp.plan_key = plan_key;
    }
    const std::vector<char>& cascade = wsp.plan.cascade;
    const std::vector<cascade_step>& steps = wsp.plan.steps;
    res.cascaded = static_cast<std::size_t>(std::count(cascade.begin(), cascade.end(), 1));
    // The composite entries C of the sources, in two sets: a direct source writes set 0, a
    // cascaded one (a chain) the set it does not read. Set 1 lives only while cascades run, when
    // the direct passes' planes P and Q (ws.a, ws.b) are free: it takes them and one more plane
    // (2 MB less to fault in per thread at 512 x 512).
    bool chained = false;
    for (std::size_t k = 1; k + 1 < ns; ++k) chained = chained || (cascade[k] && cascade[k + 1]);
    std::array<R*, 6> cplane{};
    for (std::size_t q = 0; q < (chained ? 4u : 3u); ++q) {
        auto& t = wsp.cplanes[q];
        if (res.cascaded && !(t.shape() == sh)) t = tensor<R, backend::cpu>(sh);
        cplane[q] = t.data();
    }
    if (chained) {
        for (auto* t : {&ws.a, &ws.b})
            if (!(t->shape() == sh)) *t = tensor<R, backend::cpu>(sh);
        cplane[4] = ws.a.data();
        cplane[5] = ws.b.data();
    }
    int read_set = 0;  // the set the next cascade reads
    std::array<double, 3> e_prev{}, m_prev{};  // the source's error bound and measured max |C|
    // max |C| per entry and thread, taken by the source's sink row by row (a cache line each).
    std::vector<std::array<R, 16>> row_max(parts.size());
    for (std::size_t k = 0; k < ns; ++k) {
        const double sigma = o.sigmas[k];
        const bool source = k + 1 < ns && cascade[k + 1];
        // Error bound of this sigma's entries against scipy's (per entry for the cascade).
        std::array<double, 3> e_now{};
        double e_all = 0, hmax = 0;
        if (!cascade[k]) {
            direct_error(sigma, e_all, hmax);
            e_now = {e_all, e_all, e_all};
            if (source) {  // C differs from scipy's entries near the edges only
                const auto& edge = wsp.plan.edge[k];
                e_all += m * *std::max_element(edge.begin(), edge.end());
                hmax += m * *std::max_element(edge.begin(), edge.end());
            }
        } else {
            const cascade_step& st = steps[k];
            const auto gk = describe_kernel(st.sigma_delta, 0, 8.0, st.taps);
            const double lgf = l1_norm(st.g), lg = gk.l1, lmax = std::max(lg, lgf);
            const auto gamma = [u](int depth) { return depth * u / (1 - depth * u); };
            const double gc = gamma(as_column(gk).depth), gr = gamma(as_row(gk).depth);
            const auto& edge = wsp.plan.edge[k];
            for (std::size_t q = 0; q < 3; ++q) {
                // fl(row(col(C))) against (g (x) g) C exactly, the source C's own error through
                // the float taps, the float taps against scipy's, the identity's error.
                e_now[q] = lg * lg * e_prev[q] + (gc + gr * (1 + gc)) * lg * lg * m_prev[q] +
                           gk.dropped * (lg + lgf) * (m_prev[q] + e_prev[q]) + m * st.identity[q];
                e_now[q] *= 1 + 1e-12;  // slack for the double arithmetic of these bounds
                e_all = std::max(e_all, e_now[q] + m * edge[q]);
                hmax = std::max(hmax, lmax * lmax * (m_prev[q] + e_prev[q]) + m * st.identity[q] + e_now[q] + m * edge[q]);
            }
        }
        err[k] = sato_error(sigma, e_all, hmax);
        errf[k] = static_cast<float>(err[k]);

        const sato_scale_f32 scale{per_sigma[k].data(), cols, jb, je, static_cast<R>(sigma * sigma)};
        auto last = [&](std::int64_t i, const R* rr, const R* rc, const R* cc) {
            scale(i, rr, rc, cc);
            combine_row(args, i, parts[static_cast<std::size_t>(omp_get_thread_num())]);
        };
        // Sources are computed over the whole image (the next step reads around the window).
        const hessian_window* w_k = source ? nullptr : pw;
        const int write_set = cascade[k] ? 1 - read_set : 0;
        R* const* written = cplane.data() + 3 * write_set;
        R* const* read = cplane.data() + 3 * read_set;
        const std::array<R*, 3> outs = source ? std::array<R*, 3>{written[0], written[1], written[2]} : std::array<R*, 3>{};
        auto run = [&](auto&& sink) {
            if (cascade[k]) {
                cascade_cpu<R>({read[0], read[1], read[2]}, rows, cols, steps[k].taps, outs, w_k, sink);
            } else {  // a source as composite entries (see hessian_cpu)
                hessian_cpu(xv, float_taps(sigma, 0), float_taps(sigma, 1), ho.mode, static_cast<R>(ho.cval), R(1), ws,
                            outs[0], outs[1], outs[2], w_k, source, sink);
            }
        };
        if (source) {
            for (auto& t : row_max) t = {};
            run([&](std::int64_t i, const R* rr, const R* rc, const R* cc) {
                scale(i, rr, rc, cc);
                auto& mx = row_max[static_cast<std::size_t>(omp_get_thread_num())];
                mx[0] = std::max(mx[0], max_abs(rr, cols));
                mx[1] = std::max(mx[1], max_abs(rc, cols));
                mx[2] = std::max(mx[2], max_abs(cc, cols));
            });
            m_prev = {};
            for (const auto& t : row_max)
                for (std::size_t q = 0; q < 3; ++q) m_prev[q] = std::max(m_prev[q], static_cast<double>(t[q]));
            for (auto& m_q : m_prev) m_q *= 1 + 1e-6;  // the float maxima, rounded up
            e_prev = e_now;
            read_set = write_set;
        } else if (k + 1 < ns) {
            run(scale);
        } else {
            run(last);
        }
    }
    if (windowed) {  // the border rows, which the last sink did not see
        auto& tp = parts[0];
        for (std::int64_t i = 0; i < rows; ++i) {
            if (i >= border && i < rows - border) continue;
            std::fill(val + i * cols, val + (i + 1) * cols, std::uint8_t(0));
            tp.hist[0][0] += static_cast<std::size_t>(cols);
        }
    }
    std::vector<doubtful_pixel> pending;
    for (const auto& tp : parts) pending.insert(pending.end(), tp.suspects.begin(), tp.suspects.end());
    if (pipeline_tail)
        for (const auto& tp : parts) {
            const auto h = merged(tp.hist);
            for (std::size_t v = 0; v < 256; ++v) res.histogram[v] += h[v];
        }
    res.doubtful = pending.size();
    if (pending.empty()) return res;

    // Exact recomputation in double at the doubtful pixels (as the double pipeline: exact kernels, no
    // centring), only for the sigmas that can hold the maximum. The samples sign * image come from
    // the centred float plane plus its centre where that plane holds them exactly (8- and 16-bit
    // pixels), else from a double copy.
    constexpr bool from_xf = sizeof(T) <= 2;
    double* xd = nullptr;
    if constexpr (!from_xf) {
        wsp.x.resize(static_cast<std::size_t>(n));
        xd = wsp.x.data();
    }
    // scipy's full kernels per sigma, with their interior weights: kept for the next image of the
    // same size and options.
    const pixel_hessian_key key{rows, cols, o.sigmas, o.hessian().mode, o.truncate};
    if (!(wsp.sw_key == key)) {
        wsp.sw.clear();
        for (std::size_t k = 0; k < ns; ++k) wsp.sw.emplace_back(rows, cols, o.sigmas[k], o.hessian());
        wsp.sw_key = key;
    }
    const std::vector<pixel_hessian>& sw = wsp.sw;
    auto cast = [](double v) -> int { return v >= 255 ? 255 : (v > 0 ? static_cast<int>(v) : 0); };
    // Recomputes pending[q] for every q in sel, and fixes the histogram.
    std::vector<std::uint8_t> before;
    auto recheck = [&](const std::vector<std::size_t>& sel) {
        const auto count = static_cast<std::int64_t>(sel.size());
        before.resize(pipeline_tail ? sel.size() : 0);
        const bool copy = !from_xf && res.rechecked == 0;  // the double copy, made once
        // One parallel region for the double copy and the recheck (a barrier between them costs
        // far less than a second fork / join when idle threads sleep, OMP_WAIT_POLICY=passive).
#pragma omp parallel
        {
            if constexpr (!from_xf) {
                if (copy) {
#pragma omp for schedule(static)
                    for (std::int64_t i = 0; i < rows; ++i) copy_signed_row(image, i, sign, xd + i * cols);
                }
            }
            std::vector<double> scratch;
#pragma omp for schedule(dynamic, 4)
            for (std::int64_t q = 0; q < count; ++q) {
                const std::int64_t p = pending[sel[static_cast<std::size_t>(q)]].index;
                const std::int64_t i = p / cols, j = p % cols;
                double low = 0;
                for (std::size_t k = 0; k < ns; ++k) low = std::max(low, static_cast<double>(ps[k][p]) - err[k]);
                double best = 0;
                for (std::size_t k = 0; k < ns; ++k) {
                    if (static_cast<double>(ps[k][p]) + err[k] < low) continue;  // cannot hold the maximum
                    double hh[3];
                    if constexpr (from_xf) sw[k].at(xf.data(), centre, cols, i, j, hh, scratch);
                    else sw[k].at(xd, 0.0, cols, i, j, hh, scratch);
                    const double hrr = hh[0], hrc = hh[1], hcc = hh[2];
                    double l1, l2;
                    eigenvalues2(hrr, hrc, hcc, l1, l2);
                    best = std::max(best, o.sigmas[k] * o.sigmas[k] * std::max(l1, 0.0));
                }
                if (out) out[p] = best;
                if (pipeline_tail) before[static_cast<std::size_t>(q)] = val[p];
                val[p] = static_cast<std::uint8_t>(cast(best));
            }
        }
        if (pipeline_tail)
            for (std::size_t q = 0; q < sel.size(); ++q) {
                --res.histogram[before[q]];
                ++res.histogram[val[pending[sel[q]].index]];
            }
        res.rechecked += sel.size();
    };
    if (!pipeline_tail) {
        recheck(recheck_all{}(res.histogram, pending));
        return res;
    }
    for (;;) {
        auto sel = choose(std::as_const(res.histogram), std::as_const(pending));
        if (sel.empty()) break;
        std::sort(sel.begin(), sel.end());
        sel.erase(std::unique(sel.begin(), sel.end()), sel.end());
        if (sel.back() >= pending.size()) throw std::out_of_range("checked_sato: a choice named a pixel past the list");
        recheck(sel);
        // What is left in doubt, in its order.
        std::vector<char> done(pending.size(), 0);
        for (std::size_t q : sel) done[q] = 1;
        std::size_t w = 0;
        for (std::size_t q = 0; q < pending.size(); ++q)
            if (!done[q]) pending[w++] = pending[q];
        pending.resize(w);
    }
    return res;
}

}  // namespace vasomim::vessel::detail

#endif  // !VASOMIM_HAS_CUDA
