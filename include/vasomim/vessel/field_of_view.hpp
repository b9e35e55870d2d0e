#pragma once
// The exposed region (field of view) of an X-ray angiogram, found from the image alone.
//
// Angiograms often hold dark, unexposed areas: the collimator shutters and the corners outside the
// circular image intensifier. A dark-ridge filter answers strongly along their edges, so a
// pseudo-label grown from its strongest response lands on the edge instead of a vessel. The field
// of view removes them:
//   1. dark pixels: value <= dark_level (in the image's units: 8-bit images, or floats on that scale);
//   2. a binary opening of the dark pixels by a (2 opening + 1)^2 square (outside the image counts
//      as dark), so that thin dark structures (vessels, catheters) do not count;
//   3. of the 4-connected dark components, those that touch the image's edge and cover at least
//      min_area of it are outside the field of view;
//   4. the outside grown by a (2 erosion + 1)^2 square (the field of view eroded), so that the
//      edge and the filter's response to it (about its largest scale wide) fall outside too.
// The rest is the field of view (1 inside, 0 outside). An image without dark areas is all inside.
// Runs on the host: sequential labelling of one image; device images are copied over and back.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/tensor.hpp"
#include "vasomim/vessel/pseudo_label.hpp"

namespace vasomim::vessel {

struct field_of_view_options {
    double dark_level = 40;       ///< pixels at or below this are dark (8-bit scale)
    index_t opening = 5;          ///< half-width of the opening square (0: no opening)
    double min_area = 0.005;      ///< share of the image a dark component needs to count
    /// Half-width of the square the outside is grown by; < 0: ceil(2 x the largest sigma) of the
    /// filter (fov_pseudo_label passes its sigmas), 8 for the released sigmas 1..4.
    index_t erosion = -1;
};

namespace detail {
/// m[p] = 1 when any m in the (2r + 1)^2 square around p (clipped at the image) is nonzero;
/// separable running counts, first down the columns (a row of counts updated row by row), then
/// along each row: O(rows x cols) for any r, every pass sequential in memory.
/// `tmp` is scratch space (resized to m's size).
inline void box_any(std::vector<std::uint8_t>& m, std::int64_t rows, std::int64_t cols, std::int64_t r,
                    std::vector<std::uint8_t>& tmp) {
    if (r <= 0 || rows == 0 || cols == 0) return;
    std::vector<std::int32_t> count(static_cast<std::size_t>(cols), 0);
    tmp.resize(m.size());
    const std::uint8_t* src = m.data();
    auto add_row = [&](std::int64_t i, std::int32_t sign) {
        const std::uint8_t* a = src + i * cols;
        for (std::int64_t j = 0; j < cols; ++j) count[static_cast<std::size_t>(j)] += sign * std::int32_t(a[j] != 0);
    };
    for (std::int64_t i = 0; i < std::min(r, rows); ++i) add_row(i, 1);
    for (std::int64_t i = 0; i < rows; ++i) {  // count = column sums over rows i - r .. i + r
        if (i + r < rows) add_row(i + r, 1);
        if (i - r - 1 >= 0) add_row(i - r - 1, -1);
        std::uint8_t* b = tmp.data() + i * cols;
        for (std::int64_t j = 0; j < cols; ++j) b[j] = count[static_cast<std::size_t>(j)] > 0 ? 1 : 0;
    }
    for (std::int64_t i = 0; i < rows; ++i) {  // along the row: distance to the last set pixel
        const std::uint8_t* a = tmp.data() + i * cols;
        std::uint8_t* b = m.data() + i * cols;
        std::int64_t last = -(r + 1) - 1;  // last set column seen at or left of j + r
        for (std::int64_t j = 0; j < std::min(r, cols); ++j)
            if (a[j]) last = j;
        for (std::int64_t j = 0; j < cols; ++j) {
            if (j + r < cols && a[j + r]) last = j + r;
            b[j] = last >= j - r ? 1 : 0;
        }
    }
}
inline void box_any(std::vector<std::uint8_t>& m, std::int64_t rows, std::int64_t cols, std::int64_t r) {
    std::vector<std::uint8_t> tmp;
    box_any(m, rows, cols, r, tmp);
}

/// field_of_view on contiguous host pixels; writes 1 inside / 0 outside into `inside` and
/// returns the number of pixels inside.
template <class P>
std::size_t field_of_view_host(const P* px, std::int64_t rows, std::int64_t cols, const field_of_view_options& o,
                               index_t erosion, std::vector<std::uint8_t>& inside) {
    const std::size_t n = static_cast<std::size_t>(rows * cols);
    inside.assign(n, 1);
    if (n == 0) return 0;
    std::vector<std::uint8_t> dark(n), tmp;
    std::uint8_t any_dark = 0;
    if constexpr (std::is_same_v<P, std::uint8_t>) {  // an integer comparison that vectorises
        if (o.dark_level >= 0) {
            const auto level = static_cast<std::uint8_t>(std::min(o.dark_level, 255.0));
            for (std::size_t i = 0; i < n; ++i) any_dark |= dark[i] = px[i] <= level ? 1 : 0;
        }
    } else {
        for (std::size_t i = 0; i < n; ++i) any_dark |= dark[i] = static_cast<double>(px[i]) <= o.dark_level ? 1 : 0;
    }
    if (!any_dark) return n;
    if (o.opening > 0) {  // erosion of dark = not(any not-dark), then dilation
        for (auto& d : dark) d ^= 1;
        box_any(dark, rows, cols, o.opening, tmp);
        for (auto& d : dark) d ^= 1;
        box_any(dark, rows, cols, o.opening, tmp);
    }
    // The dark components that touch the image's edge (filled from the edge's pixels), their sizes.
    std::vector<std::int32_t> label(n, 0);
    std::int32_t count = 0;
    auto seed = [&](std::int64_t i, std::int64_t j) {
        const auto p = static_cast<std::size_t>(i * cols + j);
        if (dark[p] && label[p] == 0) fill_nonzero4(dark.data(), rows, cols, static_cast<std::int64_t>(p), label.data(), ++count);
    };
    for (std::int64_t j = 0; j < cols; ++j) seed(0, j), seed(rows - 1, j);
    for (std::int64_t i = 0; i < rows; ++i) seed(i, 0), seed(i, cols - 1);
    if (count == 0) return n;
    std::vector<std::size_t> size(static_cast<std::size_t>(count) + 1, 0);
    for (std::size_t p = 0; p < n; ++p) ++size[static_cast<std::size_t>(label[p])];
    // Outside: those with at least min_area of the image (written over `dark`), then grown.
    const double need = o.min_area * static_cast<double>(n);
    std::vector<std::uint8_t> big(size.size(), 0);
    bool any = false;
    for (std::size_t l = 1; l < size.size(); ++l)
        if (static_cast<double>(size[l]) >= need) big[l] = 1, any = true;
    if (!any) return n;
    std::vector<std::uint8_t>& outside = dark;
    for (std::size_t p = 0; p < n; ++p) outside[p] = big[static_cast<std::size_t>(label[p])];
    box_any(outside, rows, cols, erosion, tmp);
    std::size_t in = 0;
    for (std::size_t p = 0; p < n; ++p) in += (inside[p] = outside[p] ^ 1);
    return in;
}

/// The pixels of a 2-D view, contiguous on the host: uint8 stays uint8, any other type becomes float.
template <class T, class B>
auto host_pixels(tensor_view<T, B> image) {
    using V = std::remove_const_t<T>;
    using P = std::conditional_t<std::is_same_v<V, std::uint8_t>, std::uint8_t, float>;
    const std::int64_t rows = image.dim(0), cols = image.dim(1);
    if constexpr (backend_traits<B>::host_accessible) {
        std::vector<P> out(static_cast<std::size_t>(rows * cols));
        for (std::int64_t i = 0; i < rows; ++i)
            for (std::int64_t j = 0; j < cols; ++j)
                out[static_cast<std::size_t>(i * cols + j)] = static_cast<P>(image.data()[i * image.stride(0) + j * image.stride(1)]);
        return out;
    } else {
        tensor<P, B> c(image.shape());
        parallel_for<B>(image.numel(), strided_cast_kernel<V, P>{image.data(), image.stride(0), image.stride(1), cols, c.data()});
        return c.to_host();
    }
}

inline index_t fov_erosion(const field_of_view_options& o, const std::vector<double>& sigmas) {
    if (o.erosion >= 0) return o.erosion;
    double s = 0;
    for (double x : sigmas) s = std::max(s, x);
    return static_cast<index_t>(std::ceil(2 * s));
}

inline void check_fov_options(const field_of_view_options& o) {
    if (!(o.min_area >= 0 && o.min_area <= 1))
        throw value_error("field_of_view: min_area must lie in [0, 1], got " + std::to_string(o.min_area));
    if (o.opening < 0) throw value_error("field_of_view: opening must be >= 0, got " + std::to_string(o.opening));
    if (!std::isfinite(o.dark_level))
        throw value_error("field_of_view: dark_level must be finite, got " + std::to_string(o.dark_level));
}
}  // namespace detail

/// The field of view of a 2-D image (1 inside, 0 outside), see the top of this file; erosion < 0
/// in the options takes 8 (2 x the released pipeline's largest sigma, 4).
template <class T, class B>
tensor<std::uint8_t, B> field_of_view(tensor_view<T, B> image, const field_of_view_options& o = {}) {
    if (image.rank() != 2) throw shape_error("field_of_view: expected a 2-D image, got " + image.shape().to_string());
    detail::check_fov_options(o);
    const auto px = detail::host_pixels(image);
    std::vector<std::uint8_t> inside;
    detail::field_of_view_host(px.data(), image.dim(0), image.dim(1), o, detail::fov_erosion(o, {1, 2, 3, 4}), inside);
    return tensor<std::uint8_t, B>::from_host(inside, image.shape());
}

template <class T, class B>
tensor<std::uint8_t, B> field_of_view(const tensor<T, B>& image, const field_of_view_options& o = {}) {
    return field_of_view(image.view(), o);
}

}  // namespace vasomim::vessel
