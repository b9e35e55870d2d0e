#pragma once
// A PNG panel of one training sample, as in the MAE/VasoMIM figures:
//   original | masked (visible patches) | reconstruction (visible + predicted patches) | guidance
// with the masked patches tinted red.

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "vasomim/data/transforms.hpp"
#include "vasomim/io/image.hpp"

namespace vasomim::train {

/// Inputs of a panel, all host copies of sample 0 of a batch.
struct panel_inputs {
    const float* image;       ///< 3 x S x S, ImageNet-normalised
    const float* prediction;  ///< L x (p*p*3): the decoder's output (norm-pix space if norm_pix)
    const float* mask;        ///< L, 1 = masked
    const float* guidance;    ///< S x S or nullptr
    std::int64_t size, patch;
    bool norm_pix;
};

inline void write_panel(const std::filesystem::path& path, const panel_inputs& in) {
    const std::int64_t s = in.size, p = in.patch, g = s / p, ps = p * p * 3;
    auto pixel = [&](std::int64_t c, std::int64_t y, std::int64_t x) { return in.image[(c * s + y) * s + x]; };
    // Reconstruction in normalised image space; with norm-pix, undo each patch's normalisation
    // using the statistics of the original patch (mean, unbiased variance + 1e-6), as MAE's demo.
    std::vector<float> recon(std::size_t(3 * s * s));
    for (std::int64_t l = 0; l < g * g; ++l) {
        const std::int64_t gy = l / g, gx = l % g;
        double mean = 0, var = 0;
        if (in.norm_pix) {
            for (std::int64_t k = 0; k < ps; ++k) {
                const std::int64_t c = k % 3, j = (k / 3) % p, i = k / (3 * p);
                mean += pixel(c, gy * p + i, gx * p + j);
            }
            mean /= double(ps);
            for (std::int64_t k = 0; k < ps; ++k) {
                const std::int64_t c = k % 3, j = (k / 3) % p, i = k / (3 * p);
                const double d = pixel(c, gy * p + i, gx * p + j) - mean;
                var += d * d;
            }
            var /= double(ps - 1);
        }
        for (std::int64_t k = 0; k < ps; ++k) {
            const std::int64_t c = k % 3, j = (k / 3) % p, i = k / (3 * p);
            double v = in.prediction[l * ps + k];
            if (in.norm_pix) v = v * std::sqrt(var + 1e-6) + mean;
            recon[std::size_t((c * s + gy * p + i) * s + gx * p + j)] = float(v);
        }
    }
    const std::int64_t width = 4 * s + 3 * 4;
    xt::xtensor<std::uint8_t, 3> out = xt::zeros<std::uint8_t>({std::size_t(s), std::size_t(width), std::size_t(3)});
    auto to8 = [](double v) { return static_cast<std::uint8_t>(std::clamp(std::lround(v * 255.0), 0L, 255L)); };
    auto grey = [&](const float* img, std::int64_t y, std::int64_t x) {
        return double(img[y * s + x]) * data::imagenet_std[0] + data::imagenet_mean[0];  // channel 0
    };
    for (std::int64_t y = 0; y < s; ++y)
        for (std::int64_t x = 0; x < s; ++x) {
            const bool masked = in.mask[(y / p) * g + x / p] > 0.5f;
            const double orig = grey(in.image, y, x), rec = grey(recon.data(), y, x);
            const double panels[4] = {orig, masked ? 0.5 : orig, masked ? rec : orig,
                                      in.guidance ? double(in.guidance[y * s + x]) : 0.0};
            for (int k = 0; k < 4; ++k) {
                const std::int64_t col = k * (s + 4) + x;
                for (int c = 0; c < 3; ++c) out(std::size_t(y), std::size_t(col), std::size_t(c)) = to8(panels[k]);
                if (k == 3 && masked) {  // red tint over masked patches
                    out(std::size_t(y), std::size_t(col), 0) = to8(0.45 + 0.55 * panels[k]);
                    out(std::size_t(y), std::size_t(col), 1) = to8(0.55 * panels[k]);
                    out(std::size_t(y), std::size_t(col), 2) = to8(0.55 * panels[k]);
                }
            }
        }
    // Small demo images are enlarged (nearest) so the panel stays legible.
    const std::size_t zoom = static_cast<std::size_t>(std::max<std::int64_t>(1, 192 / s));
    if (zoom == 1) {
        io::write_png(path, out);
        return;
    }
    xt::xtensor<std::uint8_t, 3> big = xt::xtensor<std::uint8_t, 3>::from_shape({out.shape()[0] * zoom, out.shape()[1] * zoom, 3});
    for (std::size_t y = 0; y < big.shape()[0]; ++y)
        for (std::size_t x = 0; x < big.shape()[1]; ++x)
            for (std::size_t c = 0; c < 3; ++c) big(y, x, c) = out(y / zoom, x / zoom, c);
    io::write_png(path, big);
}

}  // namespace vasomim::train
