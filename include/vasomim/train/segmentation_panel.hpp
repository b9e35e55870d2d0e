#pragma once
// A PNG panel of one segmented image: image | ground truth | prediction, the prediction coloured
// by agreement with the ground truth: true positive green, false positive red, false negative
// blue, true negative the image dimmed to 40%. Panels narrower than 192 pixels are enlarged
// (nearest) to stay legible.

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>

#include <xtensor/xtensor.hpp>

#include "vasomim/core/error.hpp"
#include "vasomim/io/image.hpp"

namespace vasomim::train {

/// image: 8-bit grey H x W; truth, prediction: H x W, nonzero = vessel.
template <class M, class P>
void write_segmentation_panel(const std::filesystem::path& path, const xt::xtensor<std::uint8_t, 2>& image,
                              const xt::xtensor<M, 2>& truth, const xt::xtensor<P, 2>& prediction) {
    const std::size_t h = image.shape()[0], w = image.shape()[1], gap = 4;
    if (truth.shape()[0] != h || truth.shape()[1] != w || prediction.shape()[0] != h || prediction.shape()[1] != w)
        throw shape_error("segmentation panel " + path.string() + ": image, ground truth and prediction differ in size");
    const std::size_t zoom = std::max<std::size_t>(1, 192 / std::max<std::size_t>(h, 1));
    const std::size_t W = (3 * w + 2 * gap) * zoom, H = h * zoom;
    xt::xtensor<std::uint8_t, 3> out = xt::zeros<std::uint8_t>({H, W, std::size_t(3)});
    auto put = [&](std::size_t y, std::size_t x, std::uint8_t r, std::uint8_t g, std::uint8_t b) {
        for (std::size_t dy = 0; dy < zoom; ++dy)
            for (std::size_t dx = 0; dx < zoom; ++dx) {
                out(y * zoom + dy, x * zoom + dx, 0) = r;
                out(y * zoom + dy, x * zoom + dx, 1) = g;
                out(y * zoom + dy, x * zoom + dx, 2) = b;
            }
    };
    for (std::size_t y = 0; y < h; ++y)
        for (std::size_t x = 0; x < w; ++x) {
            const std::uint8_t v = image(y, x);
            const bool t = truth(y, x) != M(0), p = prediction(y, x) != P(0);
            put(y, x, v, v, v);
            const std::uint8_t g = t ? 255 : 0;
            put(y, w + gap + x, g, g, g);
            const auto dim = static_cast<std::uint8_t>(v * 2 / 5);
            if (t && p) put(y, 2 * (w + gap) + x, 0, 200, 0);
            else if (p) put(y, 2 * (w + gap) + x, 230, 0, 0);
            else if (t) put(y, 2 * (w + gap) + x, 40, 90, 255);
            else put(y, 2 * (w + gap) + x, dim, dim, dim);
        }
    io::write_png(path, out);
}

}  // namespace vasomim::train
