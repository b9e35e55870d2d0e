#pragma once
// Training-time image transforms of MAE / VasoMIM pre-training (DESIGN 4.5): RandomResizedCrop
// (scale 0.2-1.0, ratio 3/4-4/3; torchvision's sampling of the box), bicubic resampling for images
// and nearest for masks (PIL's filters: antialiased convolution whose support widens when
// downscaling, as torchvision applies them to PIL images), horizontal flip, grey to 3 channels and
// ImageNet normalisation. All randomness comes from a random_stream, so a sample's augmentation
// depends only on its (seed, stream).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "vasomim/core/error.hpp"
#include "vasomim/data/random_stream.hpp"

namespace vasomim::data {

/// A crop rectangle in pixels.
struct crop_box {
    std::int64_t top = 0, left = 0, height = 0, width = 0;
};

struct random_resized_crop_options {
    double scale_min = 0.2, scale_max = 1.0;       ///< crop area as a fraction of the image
    double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;  ///< crop aspect ratio w/h
};

/// torchvision's RandomResizedCrop.get_params: up to 10 draws of (area, log-uniform ratio); if none
/// fits, a centre crop with the ratio clamped to the allowed range.
inline crop_box random_resized_crop_box(random_stream& rng, std::int64_t height, std::int64_t width,
                                        const random_resized_crop_options& o = {}) {
    vasomim::detail::require(height > 0 && width > 0, "random_resized_crop: empty image " + std::to_string(height) +
                                                 " x " + std::to_string(width));
    const double area = double(height) * double(width);
    const double log_lo = std::log(o.ratio_min), log_hi = std::log(o.ratio_max);
    for (int attempt = 0; attempt < 10; ++attempt) {
        const double target = area * rng.uniform(o.scale_min, o.scale_max);
        const double ratio = std::exp(rng.uniform(log_lo, log_hi));
        const auto w = static_cast<std::int64_t>(std::lround(std::sqrt(target * ratio)));
        const auto h = static_cast<std::int64_t>(std::lround(std::sqrt(target / ratio)));
        if (w > 0 && w <= width && h > 0 && h <= height)
            return {rng.integer(0, height - h), rng.integer(0, width - w), h, w};
    }
    const double in_ratio = double(width) / double(height);
    std::int64_t w = width, h = height;
    if (in_ratio < o.ratio_min) h = std::lround(double(w) / o.ratio_min);
    else if (in_ratio > o.ratio_max) w = std::lround(double(h) * o.ratio_max);
    return {(height - h) / 2, (width - w) / 2, h, w};
}

namespace detail {

/// PIL's bicubic kernel (a = -0.5).
inline double pil_bicubic(double x) {
    constexpr double a = -0.5;
    x = std::abs(x);
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
}

/// One output coordinate's taps: first input index and normalised weights.
struct resample_taps {
    std::vector<std::int64_t> first;
    std::vector<std::int64_t> count;
    std::vector<double> weights;  // out_size x max_taps
    std::int64_t max_taps = 0;
};

/// PIL's precompute_coeffs for the box [start, start + length) of an axis of `in_size` pixels.
inline resample_taps bicubic_taps(std::int64_t in_size, double start, double length, std::int64_t out_size) {
    const double scale = length / double(out_size);
    const double filterscale = std::max(scale, 1.0);
    const double support = 2.0 * filterscale;
    resample_taps t;
    t.max_taps = static_cast<std::int64_t>(std::ceil(support)) * 2 + 1;
    t.first.resize(std::size_t(out_size));
    t.count.resize(std::size_t(out_size));
    t.weights.assign(std::size_t(out_size * t.max_taps), 0.0);
    for (std::int64_t x = 0; x < out_size; ++x) {
        const double center = start + (double(x) + 0.5) * scale;
        auto lo = static_cast<std::int64_t>(center - support + 0.5);
        auto hi = static_cast<std::int64_t>(center + support + 0.5);
        lo = std::max<std::int64_t>(lo, 0);
        hi = std::min<std::int64_t>(hi, in_size);
        double total = 0;
        double* w = &t.weights[std::size_t(x * t.max_taps)];
        for (std::int64_t i = lo; i < hi; ++i) {
            w[i - lo] = pil_bicubic((double(i) - center + 0.5) / filterscale);
            total += w[i - lo];
        }
        if (total != 0)
            for (std::int64_t i = 0; i < hi - lo; ++i) w[i] /= total;
        t.first[std::size_t(x)] = lo;
        t.count[std::size_t(x)] = hi - lo;
    }
    return t;
}

}  // namespace detail

/// Resamples the box of a 2-D image to out_h x out_w with PIL's antialiased bicubic filter
/// (separable: rows, then columns), in floating point.
template <class T>
xt::xtensor<float, 2> resize_bicubic(const xt::xtensor<T, 2>& src, const crop_box& box, std::int64_t out_h,
                                     std::int64_t out_w) {
    const auto in_h = static_cast<std::int64_t>(src.shape()[0]), in_w = static_cast<std::int64_t>(src.shape()[1]);
    vasomim::detail::require<shape_error>(out_h > 0 && out_w > 0 && box.height > 0 && box.width > 0 && box.top >= 0 &&
                                     box.left >= 0 && box.top + box.height <= in_h && box.left + box.width <= in_w,
                                 "resize_bicubic: crop box outside the " + std::to_string(in_h) + " x " +
                                     std::to_string(in_w) + " image or empty output");
    const auto tx = detail::bicubic_taps(in_w, double(box.left), double(box.width), out_w);
    const auto ty = detail::bicubic_taps(in_h, double(box.top), double(box.height), out_h);
    // Horizontal pass over the rows the vertical pass will read.
    const std::int64_t row_lo = ty.first.front();
    std::int64_t row_hi = 0;
    for (std::int64_t y = 0; y < out_h; ++y) row_hi = std::max(row_hi, ty.first[std::size_t(y)] + ty.count[std::size_t(y)]);
    std::vector<double> mid(std::size_t((row_hi - row_lo) * out_w));
    for (std::int64_t r = row_lo; r < row_hi; ++r)
        for (std::int64_t x = 0; x < out_w; ++x) {
            const double* w = &tx.weights[std::size_t(x * tx.max_taps)];
            double acc = 0;
            for (std::int64_t k = 0; k < tx.count[std::size_t(x)]; ++k)
                acc += w[k] * double(src(std::size_t(r), std::size_t(tx.first[std::size_t(x)] + k)));
            mid[std::size_t((r - row_lo) * out_w + x)] = acc;
        }
    xt::xtensor<float, 2> out = xt::xtensor<float, 2>::from_shape({std::size_t(out_h), std::size_t(out_w)});
    for (std::int64_t y = 0; y < out_h; ++y) {
        const double* w = &ty.weights[std::size_t(y * ty.max_taps)];
        for (std::int64_t x = 0; x < out_w; ++x) {
            double acc = 0;
            for (std::int64_t k = 0; k < ty.count[std::size_t(y)]; ++k)
                acc += w[k] * mid[std::size_t((ty.first[std::size_t(y)] + k - row_lo) * out_w + x)];
            out(std::size_t(y), std::size_t(x)) = static_cast<float>(acc);
        }
    }
    return out;
}

/// Nearest-neighbour resampling of a box (PIL's NEAREST: source = floor(start + (x + 0.5) * scale)).
template <class T>
xt::xtensor<T, 2> resize_nearest(const xt::xtensor<T, 2>& src, const crop_box& box, std::int64_t out_h,
                                 std::int64_t out_w) {
    const auto in_h = static_cast<std::int64_t>(src.shape()[0]), in_w = static_cast<std::int64_t>(src.shape()[1]);
    vasomim::detail::require<shape_error>(out_h > 0 && out_w > 0 && box.height > 0 && box.width > 0 && box.top >= 0 &&
                                     box.left >= 0 && box.top + box.height <= in_h && box.left + box.width <= in_w,
                                 "resize_nearest: crop box outside the image or empty output");
    xt::xtensor<T, 2> out = xt::xtensor<T, 2>::from_shape({std::size_t(out_h), std::size_t(out_w)});
    const double sy = double(box.height) / double(out_h), sx = double(box.width) / double(out_w);
    for (std::int64_t y = 0; y < out_h; ++y) {
        const auto r = std::min(in_h - 1, box.top + static_cast<std::int64_t>((double(y) + 0.5) * sy));
        for (std::int64_t x = 0; x < out_w; ++x) {
            const auto c = std::min(in_w - 1, box.left + static_cast<std::int64_t>((double(x) + 0.5) * sx));
            out(std::size_t(y), std::size_t(x)) = src(std::size_t(r), std::size_t(c));
        }
    }
    return out;
}

/// Mirrors a 2-D image left-right in place.
template <class T>
void flip_horizontal(xt::xtensor<T, 2>& img) {
    const auto h = img.shape()[0], w = img.shape()[1];
    for (std::size_t i = 0; i < h; ++i)
        for (std::size_t j = 0; j < w / 2; ++j) std::swap(img(i, j), img(i, w - 1 - j));
}

/// ImageNet channel statistics (torchvision).
inline constexpr float imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
inline constexpr float imagenet_std[3] = {0.229f, 0.224f, 0.225f};

/// Grey levels 0..255 -> 3 x H x W, replicated to three channels and ImageNet-normalised.
inline xt::xtensor<float, 3> to_normalised_rgb(const xt::xtensor<float, 2>& grey255) {
    const auto h = grey255.shape()[0], w = grey255.shape()[1];
    xt::xtensor<float, 3> out = xt::xtensor<float, 3>::from_shape({3, h, w});
    for (std::size_t c = 0; c < 3; ++c)
        for (std::size_t i = 0; i < h; ++i)
            for (std::size_t j = 0; j < w; ++j) {
                // ToTensor rounds the resampled image to 8 bits first (PIL images are 8-bit).
                const float v = std::clamp(std::round(grey255(i, j)), 0.0f, 255.0f) / 255.0f;
                out(c, i, j) = (v - imagenet_mean[c]) / imagenet_std[c];
            }
    return out;
}

struct augment_options {
    std::int64_t size = 224;  ///< output side in pixels
    random_resized_crop_options crop{};
    double flip_probability = 0.5;
};

/// One augmented training sample: the normalised 3-channel image and its guidance mask in {0, 1}.
struct augmented_sample {
    xt::xtensor<float, 3> image;  ///< 3 x size x size
    xt::xtensor<float, 2> mask;   ///< size x size, 1 = vessel (pseudo-label)
};

/// The pre-training augmentation applied jointly to an angiogram and its (pseudo-)label mask: one
/// crop box and one flip decision for both.
inline augmented_sample augment(const xt::xtensor<std::uint8_t, 2>& image, const xt::xtensor<std::uint8_t, 2>& mask,
                                const augment_options& o, random_stream& rng) {
    vasomim::detail::require<shape_error>(image.shape() == mask.shape(),
                                 "augment: image " + std::to_string(image.shape()[0]) + " x " +
                                     std::to_string(image.shape()[1]) + " and mask " +
                                     std::to_string(mask.shape()[0]) + " x " + std::to_string(mask.shape()[1]) +
                                     " differ in size");
    const auto box = random_resized_crop_box(rng, std::int64_t(image.shape()[0]), std::int64_t(image.shape()[1]), o.crop);
    auto grey = resize_bicubic(image, box, o.size, o.size);
    auto m = resize_nearest(mask, box, o.size, o.size);
    if (rng.bernoulli(o.flip_probability)) {
        flip_horizontal(grey);
        flip_horizontal(m);
    }
    augmented_sample s{to_normalised_rgb(grey), xt::xtensor<float, 2>::from_shape(m.shape())};
    for (std::size_t i = 0; i < m.size(); ++i) s.mask.data()[i] = m.data()[i] >= 128 ? 1.0f : 0.0f;
    return s;
}

}  // namespace vasomim::data
