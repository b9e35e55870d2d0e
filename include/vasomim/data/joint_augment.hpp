#pragma once
// Joint image / mask augmentation for fine-tuning a segmenter (GitHub issue 17): one random draw of
// geometry for both, intensity jitter for the image only.
//
//   1. random resized crop at a fixed working scale: the image is seen at `scale` model pixels per
//      image pixel (the scale the sliding-window inference of train/sliding_window.hpp uses); the
//      crop's side in model pixels is size * zoom with zoom log-uniform in [1 / zoom_max, zoom_max]
//      and aspect ratio log-uniform in [ratio_min, ratio_max] (clamped to the image); resampled to
//      size x size with PIL's bicubic (image) and nearest (mask) filters (data/transforms.hpp)
//   2. horizontal flip, vertical flip (each with flip_probability), k x 90 degree rotation (k
//      uniform in 0..3 when rotate90)
//   3. intensity on grey levels 0..255: gamma g (log-uniform in [1/(1+gamma), 1+gamma]) on v/255,
//      contrast c (uniform in [1 - contrast, 1 + contrast]) about the crop's mean, brightness b
//      (uniform in [-brightness, brightness] * 255) added; clamped to 0..255
//   4. grey -> 3 channels, ImageNet-normalised (to_normalised_rgb); mask >= 128 -> 1
//
// Every draw comes from the random_stream given, in a fixed order, so a sample's augmentation is a
// function of its stream alone.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include <xtensor/xtensor.hpp>

#include "vasomim/core/error.hpp"
#include "vasomim/data/random_stream.hpp"
#include "vasomim/data/transforms.hpp"

namespace vasomim::data {

struct joint_augment_options {
    std::int64_t size = 224;      ///< output side in model pixels
    double scale = 1.0;           ///< model pixels per image pixel
    double zoom_max = 1.25;       ///< crop side = size * zoom / scale, zoom in [1/zoom_max, zoom_max]
    double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;
    double flip_probability = 0.5;
    bool rotate90 = true;
    double brightness = 0.1, contrast = 0.1, gamma = 0.1;

    void validate() const {
        if (size <= 0) throw config_error("augmentation: size must be positive, got " + std::to_string(size));
        if (!(scale > 0)) throw config_error("augmentation: scale must be positive");
        if (!(zoom_max >= 1)) throw config_error("augmentation: zoom_max must be >= 1");
        if (!(ratio_min > 0 && ratio_min <= ratio_max)) throw config_error("augmentation: need 0 < ratio_min <= ratio_max");
        if (!(flip_probability >= 0 && flip_probability <= 1))
            throw config_error("augmentation: flip probability must lie in [0, 1]");
        if (!(brightness >= 0 && contrast >= 0 && contrast < 1 && gamma >= 0))
            throw config_error("augmentation: brightness, gamma >= 0 and contrast in [0, 1) required");
    }
};

/// The crop box of step 1 for an image of height x width pixels.
inline crop_box joint_crop_box(random_stream& rng, std::int64_t height, std::int64_t width,
                               const joint_augment_options& o) {
    const double zoom = std::exp(rng.uniform(-std::log(o.zoom_max), std::log(o.zoom_max)));
    const double ratio = std::exp(rng.uniform(std::log(o.ratio_min), std::log(o.ratio_max)));
    const double side = double(o.size) * zoom / o.scale;  // in image pixels
    const auto w = std::clamp<std::int64_t>(std::lround(side * std::sqrt(ratio)), 1, width);
    const auto h = std::clamp<std::int64_t>(std::lround(side / std::sqrt(ratio)), 1, height);
    const std::int64_t top = rng.integer(0, height - h), left = rng.integer(0, width - w);
    return {top, left, h, w};
}

/// Rotates a square 2-D array by k x 90 degrees counter-clockwise (numpy's rot90).
template <class T>
xt::xtensor<T, 2> rotate90(const xt::xtensor<T, 2>& a, int k) {
    k = ((k % 4) + 4) % 4;
    const std::size_t n = a.shape()[0];
    if (k == 0 || a.shape()[1] != n) return a;
    xt::xtensor<T, 2> out = xt::xtensor<T, 2>::from_shape({n, n});
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            if (k == 1) out(i, j) = a(j, n - 1 - i);
            else if (k == 2) out(i, j) = a(n - 1 - i, n - 1 - j);
            else out(i, j) = a(n - 1 - j, i);
        }
    return out;
}

/// Mirrors a 2-D array top-bottom in place.
template <class T>
void flip_vertical(xt::xtensor<T, 2>& img) {
    const auto h = img.shape()[0], w = img.shape()[1];
    for (std::size_t i = 0; i < h / 2; ++i)
        for (std::size_t j = 0; j < w; ++j) std::swap(img(i, j), img(h - 1 - i, j));
}

/// Step 3 on grey levels 0..255 in place.
inline void jitter_intensity(xt::xtensor<float, 2>& grey, const joint_augment_options& o, random_stream& rng) {
    const double lg = std::log(1.0 + o.gamma);
    const double g = std::exp(rng.uniform(-lg, lg));
    const double c = rng.uniform(1.0 - o.contrast, 1.0 + o.contrast);
    const double b = rng.uniform(-o.brightness, o.brightness) * 255.0;
    double mean = 0;
    for (auto& v : grey) {
        v = static_cast<float>(255.0 * std::pow(std::clamp(double(v), 0.0, 255.0) / 255.0, g));
        mean += v;
    }
    mean /= double(std::max<std::size_t>(grey.size(), 1));
    for (auto& v : grey) v = static_cast<float>(std::clamp(mean + (double(v) - mean) * c + b, 0.0, 255.0));
}

/// The augmentation of the header comment applied to an 8-bit image and its mask (0 / 255, or any
/// value >= 128 for vessel). Returns the normalised 3 x size x size image and the size x size mask
/// in {0, 1}.
inline augmented_sample joint_augment(const xt::xtensor<std::uint8_t, 2>& image, const xt::xtensor<std::uint8_t, 2>& mask,
                                      const joint_augment_options& o, random_stream& rng) {
    vasomim::detail::require<shape_error>(image.shape() == mask.shape(),
                                          "joint_augment: image " + std::to_string(image.shape()[0]) + " x " +
                                              std::to_string(image.shape()[1]) + " and mask " +
                                              std::to_string(mask.shape()[0]) + " x " + std::to_string(mask.shape()[1]) +
                                              " differ in size");
    const auto box = joint_crop_box(rng, std::int64_t(image.shape()[0]), std::int64_t(image.shape()[1]), o);
    auto grey = resize_bicubic(image, box, o.size, o.size);
    auto m = resize_nearest(mask, box, o.size, o.size);
    if (rng.bernoulli(o.flip_probability)) {
        flip_horizontal(grey);
        flip_horizontal(m);
    }
    if (rng.bernoulli(o.flip_probability)) {
        flip_vertical(grey);
        flip_vertical(m);
    }
    if (o.rotate90) {
        const int k = static_cast<int>(rng.integer(0, 3));
        grey = rotate90(grey, k);
        m = rotate90(m, k);
    }
    jitter_intensity(grey, o, rng);
    augmented_sample s{to_normalised_rgb(grey), xt::xtensor<float, 2>::from_shape(m.shape())};
    for (std::size_t i = 0; i < m.size(); ++i) s.mask.data()[i] = m.data()[i] >= 128 ? 1.0f : 0.0f;
    return s;
}

}  // namespace vasomim::data
