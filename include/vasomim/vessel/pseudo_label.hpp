#pragma once
// The released VasoMIM pseudo-label pipeline and its reusable steps:
//   sato(uint8 image, sigmas 1..4, dark ridges)      -> response (double, as scikit-image)
//   to_uint8: truncation toward zero, clamped to [0, 255]
//   zero_border(20)                                   -> v
//   threshold: values below numpy percentile(v, 92) (linear interpolation) set to 0
//   region_grow: the 4-connected region of nonzero pixels holding the first maximum (row-major)
//   output 0 / 255.
// The flood fill and the percentile run on the host (they are sequential by nature and touch one
// 8-bit image); on a device backend the 8-bit image is copied over and the mask copied back.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/tensor.hpp"
#include "vasomim/vessel/byte_histogram.hpp"
#include "vasomim/vessel/checked_sato.hpp"
#include "vasomim/vessel/sato.hpp"

namespace vasomim::vessel {

struct pseudo_label_options {
    std::vector<double> sigmas{1, 2, 3, 4};
    bool black_ridges = true;
    boundary_mode mode = boundary_mode::reflect;
    double cval = 0.0;
    /// fast: trimmed kernels and float arithmetic even for uint8 images (not held to the parity bar).
    /// On the host, integer images take the checked float path in either mode (exact, and faster).
    kernel_precision precision = kernel_precision::exact;
    index_t border = 20;       ///< pixels zeroed on each side (0: none)
    double percentile = 92.0;  ///< in [0, 100]

    sato_options sato() const {
        sato_options o;
        o.sigmas = sigmas;
        o.black_ridges = black_ridges;
        o.mode = mode;
        o.cval = cval;
        o.precision = precision;
        return o;
    }
};

namespace detail {
template <class R>
struct to_uint8_kernel {
    const R* in;
    std::uint8_t* out;
    VASOMIM_HOST_DEVICE void operator()(std::int64_t i) const {
        const R v = in[i];
        out[i] = v >= R(255) ? std::uint8_t(255) : (v > R(0) ? static_cast<std::uint8_t>(v) : std::uint8_t(0));
    }
};
template <class T>
struct border_kernel {  // one row per call
    T* p;
    std::int64_t rows, cols, border;
    VASOMIM_HOST_DEVICE void operator()(std::int64_t i) const {
        T* row = p + i * cols;
        if (i < border || i >= rows - border) {
            for (std::int64_t j = 0; j < cols; ++j) row[j] = T(0);
            return;
        }
        for (std::int64_t j = 0; j < cols && j < border; ++j) row[j] = T(0);
        for (std::int64_t j = cols - border > 0 ? cols - border : 0; j < cols; ++j) row[j] = T(0);
    }
};
template <class T>
struct below_to_zero_kernel {
    T* p;
    double t;
    VASOMIM_HOST_DEVICE void operator()(std::int64_t i) const {
        if (!(static_cast<double>(p[i]) >= t)) p[i] = T(0);
    }
};
/// Integer pixels: v >= t exactly when v >= ceil(t) (as a wider integer); a branch-free select
/// that vectorises, where the double comparison above did not.
template <class T>
struct below_to_zero_int_kernel {
    T* p;
    long long t;
    VASOMIM_HOST_DEVICE void operator()(std::int64_t i) const {
        const T v = p[i];
        p[i] = static_cast<long long>(v) >= t ? v : T(0);
    }
};

template <class T, class U>
struct strided_cast_kernel {
    const T* src;
    std::int64_t s0, s1, cols;
    U* dst;
    VASOMIM_HOST_DEVICE void operator()(std::int64_t idx) const {
        dst[idx] = static_cast<U>(src[(idx / cols) * s0 + (idx % cols) * s1]);
    }
};
template <class U>
struct cast_to {
    template <class T>
    VASOMIM_HOST_DEVICE U operator()(const T& v) const { return static_cast<U>(v); }
};

/// The 4-connected region around `seed` (a kept pixel) of the pixels that `keep` accepts, written
/// as `value` (nonzero) into `out`, which holds 0 on the region on entry (other regions' labels
/// may stand elsewhere: regions never touch). Filled by spans, maximal runs of kept pixels along
/// a row, so a run is filled whole or not at all and each run enters the stack once per
/// neighbouring run.
template <class T, class Keep, class L>
void fill_spans4(const T* v, std::int64_t rows, std::int64_t cols, std::int64_t seed, Keep keep, L* out, L value) {
    std::vector<std::int64_t> stack{seed};  // pixels of unfilled runs
    while (!stack.empty()) {
        const std::int64_t p = stack.back();
        stack.pop_back();
        if (out[p] != L(0)) continue;
        const std::int64_t i = p / cols, row = i * cols;
        std::int64_t l = p - row, r = l;
        const T* vr = v + row;
        while (l > 0 && keep(vr[l - 1])) --l;
        while (r + 1 < cols && keep(vr[r + 1])) ++r;
        std::fill(out + row + l, out + row + r + 1, value);
        for (const std::int64_t ii : {i - 1, i + 1}) {
            if (ii < 0 || ii >= rows) continue;
            const T* nv = v + ii * cols;
            const L* no = out + ii * cols;
            for (std::int64_t j = l; j <= r; ++j) {
                if (!keep(nv[j])) continue;
                if (no[j] == L(0)) stack.push_back(ii * cols + j);
                while (j + 1 <= r && keep(nv[j + 1])) ++j;  // one entry per run
            }
        }
    }
}

/// fill_spans4 of the nonzero pixels (NaN counts as nonzero).
template <class T, class L>
void fill_nonzero4(const T* v, std::int64_t rows, std::int64_t cols, std::int64_t seed, L* out, L value) {
    fill_spans4(v, rows, cols, seed, [](const T& x) { return x != T(0); }, out, value);
}

template <class T, class B>
std::vector<T> host_copy(const tensor<T, B>& t) {
    return t.to_host();
}
}  // namespace detail

/// Response -> uint8 by truncation toward zero (numpy astype), clamped to [0, 255].
template <class R, class B>
tensor<std::uint8_t, B> to_uint8(const tensor<R, B>& response) {
    tensor<std::uint8_t, B> out(response.shape());
    parallel_for<B>(response.numel(), detail::to_uint8_kernel<R>{response.data(), out.data()});
    return out;
}

/// Sets `border` pixels on each side of a 2-D image to 0 (border >= 0; 0 changes nothing).
template <class T, class B>
void zero_border(tensor<T, B>& image, index_t border) {
    if (image.rank() != 2) throw shape_error("zero_border: expected a 2-D image, got " + image.shape().to_string());
    if (border < 0) throw value_error("zero_border: border must be >= 0, got " + std::to_string(border));
    if (border == 0) return;
    parallel_for<B>(image.dim(0), detail::border_kernel<T>{image.data(), image.dim(0), image.dim(1), border});
}

namespace detail {
/// numpy's linear interpolation between the sorted values a = x[lo] and b = x[lo + 1] at virtual
/// index lo + frac (numpy's _lerp: from the upper value when the fraction is >= 0.5).
inline double percentile_lerp(double a, double b, double frac) {
    const double diff = b - a;
    return frac >= 0.5 ? b - diff * (1.0 - frac) : a + diff * frac;
}
inline void check_percentile(std::size_t n, double q) {
    if (n == 0) throw value_error("percentile: no values");
    if (!(q >= 0 && q <= 100)) throw value_error("percentile: q must lie in [0, 100], got " + std::to_string(q));
}
}  // namespace detail

namespace detail {
/// numpy.percentile's virtual index (n - 1) q / 100 of n sorted values: the positions lo and hi of
/// the two values it interpolates between, and the fraction.
struct percentile_position {
    std::size_t lo, hi;
    double frac;
};
inline percentile_position percentile_position_of(std::size_t n, double q) {
    check_percentile(n, q);
    const double virt = static_cast<double>(n - 1) * (q / 100.0);
    const auto lo = static_cast<std::size_t>(std::floor(virt));
    return {lo, std::min(lo + 1, n - 1), virt - static_cast<double>(lo)};
}
/// The k-th smallest (from 0) of the uint8 values counted by hist.
inline int nth_of_histogram(const std::array<std::size_t, 256>& hist, std::size_t k) {
    std::size_t acc = 0;
    for (int v = 0; v < 256; ++v) {
        acc += hist[static_cast<std::size_t>(v)];
        if (acc > k) return v;
    }
    return 255;
}
inline std::size_t histogram_count(const std::array<std::size_t, 256>& hist) {
    std::size_t n = 0;
    for (std::size_t c : hist) n += c;
    return n;
}
}  // namespace detail

/// numpy.percentile(q) of n uint8 values given by their histogram (hist[v]: how many equal v).
inline double percentile_of_histogram(const std::array<std::size_t, 256>& hist, double q) {
    const auto at = detail::percentile_position_of(detail::histogram_count(hist), q);
    return detail::percentile_lerp(detail::nth_of_histogram(hist, at.lo), detail::nth_of_histogram(hist, at.hi), at.frac);
}

/// numpy.percentile(values, q) with the default linear interpolation: virtual index (n-1) q/100
/// between the sorted values a[lo] and a[lo+1], interpolated as numpy's _lerp does (from the upper
/// value when the fraction is >= 0.5). q in [0, 100]; at least one value.
template <class T>
double percentile(const T* host_values, std::size_t n, double q) {
    detail::check_percentile(n, q);
    if constexpr (std::is_same_v<T, std::uint8_t>) {  // counting sort: exact and O(n)
        detail::byte_histograms h{};
        detail::count_bytes(host_values, n, h);
        return percentile_of_histogram(detail::merged(h), q);
    } else {
        const auto [lo, hi, frac] = detail::percentile_position_of(n, q);
        std::vector<T> v(host_values, host_values + n);
        for (const T& x : v)
            if (!std::isfinite(static_cast<double>(x))) throw value_error("percentile: NaN or infinite value");
        std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(lo), v.end());
        const T a = v[lo];
        const T b = hi == lo ? a : *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(lo) + 1, v.end());
        return detail::percentile_lerp(static_cast<double>(a), static_cast<double>(b), frac);
    }
}

template <class T, class B>
double percentile(const tensor<T, B>& values, double q) {
    if constexpr (backend_traits<B>::host_accessible) {
        return percentile(values.data(), values.size(), q);
    } else {
        const auto h = values.to_host();
        return percentile(h.data(), h.size(), q);
    }
}

/// Sets every value below `threshold` to 0 (the released threshold step keeps values >= it).
template <class T, class B>
void zero_below(tensor<T, B>& values, double threshold) {
    if constexpr (std::is_integral_v<T> && sizeof(T) <= 4) {
        if (std::isfinite(threshold)) {  // |ceil(t)| beyond 2^40 behaves like +-inf for these types
            const auto c = static_cast<long long>(std::ceil(std::min(std::max(threshold, -1e12), 1e12)));
#if !VASOMIM_HAS_CUDA
            if constexpr (std::is_same_v<B, backend::cpu>) {
                // A plain loop comparing in T (full-width vectors): through the functor, every
                // 8-bit store may alias the functor's own members, which keeps the compiler from
                // vectorising.
                if (c <= static_cast<long long>(std::numeric_limits<T>::min())) return;  // keeps all
                T* p = values.data();
                const std::int64_t n = values.numel();
                if (c > static_cast<long long>(std::numeric_limits<T>::max())) {
                    std::fill(p, p + n, T(0));
                    return;
                }
                const T ct = static_cast<T>(c);
                for (std::int64_t i = 0; i < n; ++i) p[i] = p[i] >= ct ? p[i] : T(0);
                return;
            }
#endif
            parallel_for<B>(values.numel(), detail::below_to_zero_int_kernel<T>{values.data(), c});
            return;
        }
    }
    parallel_for<B>(values.numel(), detail::below_to_zero_kernel<T>{values.data(), threshold});
}

/// Labels the 4-connected components of nonzero pixels of a 2-D image: 0 for background, 1..n in
/// row-major order of each component's first pixel. Returns the label image (on B) and n.
template <class T, class B>
std::pair<tensor<std::int32_t, B>, std::int32_t> connected_components(const tensor<T, B>& image) {
    if (image.rank() != 2) throw shape_error("connected_components: expected a 2-D image, got " + image.shape().to_string());
    const auto v = detail::host_copy(image);
    std::vector<std::int32_t> labels(v.size(), 0);
    std::int32_t n = 0;
    for (std::size_t p = 0; p < v.size(); ++p)
        if (v[p] != T(0) && labels[p] == 0)
            detail::fill_nonzero4(v.data(), image.dim(0), image.dim(1), static_cast<std::int64_t>(p), labels.data(), ++n);
    return {tensor<std::int32_t, B>::from_host(labels, image.shape()), n};
}

/// The released region growing: the 4-connected region of nonzero pixels that holds the first
/// maximum in row-major order, as 0 / 255. All zero when the image is.
template <class T, class B>
tensor<std::uint8_t, B> region_grow(const tensor<T, B>& image) {
    if (image.rank() != 2 || image.numel() == 0)
        throw shape_error("region_grow: expected a non-empty 2-D image, got " + image.shape().to_string());
    auto grow = [&](const T* v, std::size_t n, std::uint8_t* mask) {
        // First maximum: the value by a (vectorisable) reduction, then its first occurrence.
        T top = v[0];
        for (std::size_t i = 0; i < n; ++i) top = v[i] > top ? v[i] : top;
        auto seed = static_cast<std::int64_t>(std::find(v, v + n, top) - v);
        if (seed == static_cast<std::int64_t>(n)) seed = 0;  // a NaN first value (as max_element)
        if (v[seed] != T(0)) detail::fill_nonzero4(v, image.dim(0), image.dim(1), seed, mask, std::uint8_t(255));
    };
    if constexpr (backend_traits<B>::host_accessible) {  // in place, no copies
        tensor<std::uint8_t, B> mask(image.shape());
        grow(image.data(), image.size(), mask.data());
        return mask;
    } else {
        const auto v = detail::host_copy(image);
        std::vector<std::uint8_t> mask(v.size(), 0);
        grow(v.data(), v.size(), mask.data());
        return tensor<std::uint8_t, B>::from_host(mask, image.shape());
    }
}

namespace detail {
#if !VASOMIM_HAS_CUDA
/// region_grow of value with the entries below `threshold` set to 0 (zero_below), for uint8
/// values whose histogram is known: the kept values are those >= max(ceil(threshold), 1), their
/// maximum is the highest such bin, and its first pixel is found by a scan that stops there;
/// neither the thresholded copy nor a full scan for the maximum is needed.
inline tensor<std::uint8_t, backend::cpu> region_grow_above(const tensor<std::uint8_t, backend::cpu>& value,
                                                            const std::array<std::size_t, 256>& hist,
                                                            double threshold) {
    tensor<std::uint8_t, backend::cpu> mask(value.shape());
    const double c = std::ceil(threshold);  // threshold lies in [0, 255] (a percentile of uint8)
    if (!(c <= 255)) return mask;
    const int lowest = std::max(1, static_cast<int>(c));
    int top = 255;
    while (top >= lowest && hist[static_cast<std::size_t>(top)] == 0) --top;
    if (top < lowest) return mask;  // nothing kept
    const std::uint8_t* v = value.data();
    const auto seed = static_cast<std::int64_t>(std::find(v, v + value.size(), static_cast<std::uint8_t>(top)) - v);
    const auto low = static_cast<std::uint8_t>(lowest);
    fill_spans4(v, value.dim(0), value.dim(1), seed, [low](std::uint8_t x) { return x >= low; }, mask.data(),
                std::uint8_t(255));
    return mask;
}

/// checked_sato's choice (recheck_all's interface) for the released mask alone: the doubtful
/// pixels the mask can depend on are recomputed, the others keep a value within one of theirs.
/// The mask depends on (1) the percentile, through its two order statistics: each is bracketed
/// by the histograms with every doubtful pixel at its lowest and at its highest value, and while
/// a bracket is open the pixels whose range reaches into the brackets are recomputed; (2) which pixels are kept
/// (>= max(ceil(threshold), 1)): pixels whose range straddles that cut; (3) the maximum and its
/// first pixel, where the growing starts: pixels that could reach the largest value known to be
/// kept (all that could be kept, when none is known). On real angiograms most doubtful pixels lie
/// far from the threshold and below the maximum (a few percent of them are recomputed).
struct mask_recheck {
    double q;  ///< the percentile
    std::vector<std::size_t> operator()(const std::array<std::size_t, 256>& hist,
                                        const std::vector<doubtful_pixel>& pending) const {
        std::vector<std::size_t> sel;
        if (pending.empty()) return sel;
        auto certain = hist;  // the values known exactly
        for (const auto& d : pending) --certain[d.value];
        auto at_low = certain, at_high = certain;
        for (const auto& d : pending) {
            ++at_low[d.low];
            ++at_high[d.high];
        }
        const auto at = percentile_position_of(histogram_count(hist), q);
        const int lo_min = nth_of_histogram(at_low, at.lo), lo_max = nth_of_histogram(at_high, at.lo);
        const int hi_min = nth_of_histogram(at_low, at.hi), hi_max = nth_of_histogram(at_high, at.hi);
        const auto pick = [&](auto&& needed) {
            for (std::size_t k = 0; k < pending.size(); ++k)
                if (needed(pending[k])) sel.push_back(k);
        };
        if (lo_min != lo_max || hi_min != hi_max) {  // (1)
            // A pixel at or below lo_min whatever its value counts below every value the order
            // statistics can take, one at or above hi_max above them: neither can move them.
            pick([&](const doubtful_pixel& d) { return d.high > lo_min && d.low < hi_max; });
            if (sel.empty()) pick([](const doubtful_pixel&) { return true; });  // (cannot happen)
            return sel;
        }
        const double c = std::ceil(percentile_lerp(lo_min, hi_min, at.frac));
        if (!(c <= 255)) return sel;  // nothing kept
        const int lowest = std::max(1, static_cast<int>(c));
        int top = 255;
        while (top >= lowest && certain[static_cast<std::size_t>(top)] == 0) --top;
        const int reach = std::max(lowest, top);
        pick([&](const doubtful_pixel& d) { return (d.low < lowest && d.high >= lowest) || d.high >= reach; });  // (2), (3)
        return sel;
    }
};
#endif
}  // namespace detail

/// The intermediate results of the pipeline, for inspection and tests.
template <class R, class B>
struct pseudo_label_steps {
    tensor<R, B> response;          ///< sato response
    tensor<std::uint8_t, B> value;  ///< uint8, border zeroed
    double threshold = 0;           ///< percentile of `value`
    tensor<std::uint8_t, B> mask;   ///< 0 / 255
};

namespace detail {
/// What pseudo_label_run must deliver exactly (the host's checked path does less for less).
enum class pseudo_label_parts {
    mask,    ///< the mask and the threshold; `value` may be one off where the mask does not depend on it
    values,  ///< also the uint8 values (border zeroed); no response
    all,     ///< every step, the response included
};

/// The pipeline, delivering `parts`.
template <class T, class B>
pseudo_label_steps<response_t<T>, B> pseudo_label_run(tensor_view<T, B> image, const pseudo_label_options& o,
                                                      [[maybe_unused]] pseudo_label_parts parts) {
    if (!(o.percentile >= 0 && o.percentile <= 100))
        throw value_error("pseudo_label: percentile must lie in [0, 100], got " + std::to_string(o.percentile));
    if (o.border < 0) throw value_error("pseudo_label: border must be >= 0, got " + std::to_string(o.border));
    using R = response_t<T>;
    pseudo_label_steps<R, B> s;
    // The steps after the uint8 values: border, percentile threshold, region growing.
    auto finish = [&o](pseudo_label_steps<R, B>& r) {
        zero_border(r.value, o.border);
        r.threshold = percentile(r.value, o.percentile);
        auto kept = r.value.clone();
        zero_below(kept, r.threshold);
        r.mask = region_grow(kept);
        return std::move(r);
    };
#if !VASOMIM_HAS_CUDA
    // Default on the host for integer pixels: float filtering, double recomputation only where
    // the uint8 cast is in doubt (checked_sato.hpp); the values equal the double pipeline's.
    if constexpr (std::is_same_v<B, backend::cpu> && std::is_integral_v<std::remove_const_t<T>>) {
        if (o.mode != boundary_mode::constant && parts != pseudo_label_parts::all) {
            // Border and histogram folded into checked_sato's last pass over the rows, then the
            // percentile from the histogram and the region grown on the values
            // (pseudo_label_steps_of runs the steps one by one; the tests hold the two equal). For
            // the mask alone only the doubtful pixels it depends on are recomputed.
            auto c = parts == pseudo_label_parts::mask
                         ? detail::checked_sato(detail::as_const(image), o.sato(), o.border, false, true,
                                                detail::mask_recheck{o.percentile})
                         : detail::checked_sato(detail::as_const(image), o.sato(), o.border, false, true);
            s.threshold = percentile_of_histogram(c.histogram, o.percentile);
            s.mask = detail::region_grow_above(c.value, c.histogram, s.threshold);
            s.value = std::move(c.value);
            return s;
        }
        if (o.mode != boundary_mode::constant) {
            auto c = detail::checked_sato(detail::as_const(image), o.sato(), o.border, true);
            s.response = std::move(c.response);
            s.value = std::move(c.value);
            return finish(s);
        }
    }
#endif
    if (o.precision == kernel_precision::fast && !std::is_same_v<R, float>) {
        // Fast mode also filters in float (twice the SIMD width); the response is widened back.
        tensor<float, B> f(image.shape());
        parallel_for<B>(image.numel(), detail::strided_cast_kernel<std::remove_const_t<T>, float>{
                                           image.data(), image.stride(0), image.stride(1), image.dim(1), f.data()});
        const auto rf = sato(f, o.sato());
        s.response = tensor<R, B>(rf.shape());
        transform(rf, s.response, detail::cast_to<R>{});
    } else {
        s.response = sato(image, o.sato());
    }
    s.value = to_uint8(s.response);
    return finish(s);
}
}  // namespace detail

/// The full pipeline with every step kept.
template <class T, class B>
pseudo_label_steps<response_t<T>, B> pseudo_label_steps_of(tensor_view<T, B> image, const pseudo_label_options& o = {}) {
    return detail::pseudo_label_run(image, o, detail::pseudo_label_parts::all);
}

/// The released VasoMIM pseudo-label (0 / 255) of a 2-D image (uint8 in the released pipeline).
template <class T, class B>
tensor<std::uint8_t, B> pseudo_label(tensor_view<T, B> image, const pseudo_label_options& o = {}) {
    return std::move(detail::pseudo_label_run(image, o, detail::pseudo_label_parts::mask).mask);
}

template <class T, class B>
tensor<std::uint8_t, B> pseudo_label(const tensor<T, B>& image, const pseudo_label_options& o = {}) {
    return pseudo_label(image.view(), o);
}

}  // namespace vasomim::vessel
