#pragma once
// Procedural X-ray angiograms with exact vessel masks: the embedded default data set for demos and
// for tests that need many images. Each image is a textured, softly lit background in which one or
// more coronary-like vessel trees (curving, tapering, branching by Murray's law) absorb X-rays by
// Beer-Lambert over their chord length, plus quantum-like noise. Vessels are dark on a brighter
// background, as in real angiograms. An image depends only on (seed, index).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "vasomim/core/error.hpp"
#include "vasomim/data/random_stream.hpp"

namespace vasomim::data {

struct synthetic_angiogram_options {
    std::int64_t height = 224;
    std::int64_t width = 224;
    int trees_min = 1, trees_max = 2;             ///< vessel trees entering the field of view
    double root_radius_min = 2.5, root_radius_max = 5.0;  ///< px, trunk radius (for 224 px images)
    double min_radius = 0.6;                      ///< branches end below this radius (px)
    int max_depth = 5;                            ///< branching generations
    double branch_rate = 0.015;                   ///< branching probability per px of centre line
    double attenuation_min = 0.04, attenuation_max = 0.10;  ///< contrast: absorption per px of chord
    double background_min = 130, background_max = 200;      ///< mean background grey level
    double noise_sigma = 3.0;                     ///< additive Gaussian noise (grey levels)

    void validate() const {
        vasomim::detail::require(height >= 16 && width >= 16,
                        "synthetic_angiogram: images must be at least 16 x 16, got " +
                            std::to_string(height) + " x " + std::to_string(width));
        vasomim::detail::require(trees_min >= 1 && trees_max >= trees_min,
                        "synthetic_angiogram: need 1 <= trees_min <= trees_max");
        vasomim::detail::require(root_radius_min > min_radius && root_radius_max >= root_radius_min && min_radius > 0,
                        "synthetic_angiogram: need 0 < min_radius < root_radius_min <= root_radius_max");
        vasomim::detail::require(attenuation_min > 0 && attenuation_max >= attenuation_min,
                        "synthetic_angiogram: need 0 < attenuation_min <= attenuation_max");
        vasomim::detail::require(noise_sigma >= 0, "synthetic_angiogram: noise_sigma must be >= 0");
    }
};

/// An 8-bit angiogram and its vessel mask (0 = background, 255 = vessel), both H x W.
struct angiogram {
    xt::xtensor<std::uint8_t, 2> image;
    xt::xtensor<std::uint8_t, 2> mask;
};

namespace detail {

/// One disc of a vessel's centre line: position and radius in pixels.
struct vessel_stamp {
    double x, y, r;
};

struct branch_state {
    double x, y, angle, radius;
    int depth;
    double length;  ///< remaining centre-line length in px
};

/// Grows the centre lines of one tree from a point on the border, pointing inwards.
inline void grow_tree(random_stream& rng, const synthetic_angiogram_options& o, std::vector<vessel_stamp>& out) {
    const double h = double(o.height), w = double(o.width), scale = std::min(h, w) / 224.0;
    // Entry point on a random border, heading roughly to the centre.
    double x, y;
    switch (rng.integer(0, 3)) {
        case 0: x = rng.uniform(0.1, 0.9) * w; y = 0; break;
        case 1: x = rng.uniform(0.1, 0.9) * w; y = h - 1; break;
        case 2: x = 0; y = rng.uniform(0.1, 0.9) * h; break;
        default: x = w - 1; y = rng.uniform(0.1, 0.9) * h; break;
    }
    const double to_centre = std::atan2(h / 2 - y, w / 2 - x);
    std::vector<branch_state> stack{{x, y, to_centre + rng.uniform(-0.5, 0.5),
                                     rng.uniform(o.root_radius_min, o.root_radius_max) * scale, 0,
                                     rng.uniform(0.9, 1.6) * std::max(h, w)}};
    const double step = 0.5;
    while (!stack.empty()) {
        branch_state b = stack.back();
        stack.pop_back();
        double curvature = rng.normal() * 0.006;
        for (double travelled = 0; travelled < b.length; travelled += step) {
            if (b.radius < o.min_radius * scale || b.x < -8 || b.y < -8 || b.x > w + 8 || b.y > h + 8) break;
            out.push_back({b.x, b.y, b.radius});
            // Smoothly varying curvature: an Ornstein-Uhlenbeck walk of the turning rate.
            curvature = 0.985 * curvature + 0.0018 * rng.normal();
            b.angle += curvature;
            b.x += step * std::cos(b.angle);
            b.y += step * std::sin(b.angle);
            b.radius *= 1.0 - 0.0009 / scale;  // gentle taper
            if (b.depth < o.max_depth && rng.bernoulli(o.branch_rate * step / scale)) {
                // Murray's law r^3 = r1^3 + r2^3: the child takes a fraction of the parent's flow.
                const double child = b.radius * rng.uniform(0.45, 0.8);
                b.radius = std::cbrt(std::max(b.radius * b.radius * b.radius - child * child * child,
                                              0.125 * b.radius * b.radius * b.radius));
                const double side = rng.bernoulli(0.5) ? 1.0 : -1.0;
                stack.push_back({b.x, b.y, b.angle + side * rng.uniform(0.45, 1.2), child, b.depth + 1,
                                 (b.length - travelled) * rng.uniform(0.4, 0.9)});
            }
        }
    }
}

/// Smooth random field in [-1, 1]: bilinear (smoothstep) interpolation of a cells x cells grid.
inline void add_value_noise(random_stream& rng, xt::xtensor<double, 2>& field, int cells, double amplitude) {
    const auto h = field.shape()[0], w = field.shape()[1];
    std::vector<double> grid(static_cast<std::size_t>((cells + 1) * (cells + 1)));
    for (auto& g : grid) g = rng.uniform(-1.0, 1.0);
    auto smooth = [](double t) { return t * t * (3 - 2 * t); };
    for (std::size_t i = 0; i < h; ++i)
        for (std::size_t j = 0; j < w; ++j) {
            const double gy = double(i) / double(h) * cells, gx = double(j) / double(w) * cells;
            const int y0 = int(gy), x0 = int(gx);
            const double ty = smooth(gy - y0), tx = smooth(gx - x0);
            auto at = [&](int yy, int xx) { return grid[static_cast<std::size_t>(yy * (cells + 1) + xx)]; };
            const double top = at(y0, x0) * (1 - tx) + at(y0, x0 + 1) * tx;
            const double bottom = at(y0 + 1, x0) * (1 - tx) + at(y0 + 1, x0 + 1) * tx;
            field(i, j) += amplitude * (top * (1 - ty) + bottom * ty);
        }
}

}  // namespace detail

/// Generates angiogram `index` of the synthetic data set with seed `seed`.
inline angiogram make_synthetic_angiogram(const synthetic_angiogram_options& o, std::uint64_t seed,
                                          std::uint64_t index) {
    o.validate();
    random_stream rng(seed, index);
    const auto h = static_cast<std::size_t>(o.height), w = static_cast<std::size_t>(o.width);

    // Vessel centre lines, then chord length through the tubes (max over overlapping stamps).
    std::vector<detail::vessel_stamp> stamps;
    const auto trees = rng.integer(o.trees_min, o.trees_max);
    for (std::int64_t t = 0; t < trees; ++t) detail::grow_tree(rng, o, stamps);
    xt::xtensor<double, 2> chord = xt::zeros<double>({h, w});
    for (const auto& s : stamps) {
        const auto y0 = std::max<std::int64_t>(0, std::int64_t(std::floor(s.y - s.r)));
        const auto y1 = std::min<std::int64_t>(o.height - 1, std::int64_t(std::ceil(s.y + s.r)));
        const auto x0 = std::max<std::int64_t>(0, std::int64_t(std::floor(s.x - s.r)));
        const auto x1 = std::min<std::int64_t>(o.width - 1, std::int64_t(std::ceil(s.x + s.r)));
        for (auto i = y0; i <= y1; ++i)
            for (auto j = x0; j <= x1; ++j) {
                const double d2 = (double(i) - s.y) * (double(i) - s.y) + (double(j) - s.x) * (double(j) - s.x);
                if (d2 <= s.r * s.r) {
                    double& c = chord(std::size_t(i), std::size_t(j));
                    c = std::max(c, 2.0 * std::sqrt(s.r * s.r - d2));
                }
            }
    }

    // Background: mean level, large-scale lighting and finer anatomical texture.
    xt::xtensor<double, 2> background = xt::zeros<double>({h, w});
    detail::add_value_noise(rng, background, 2, 25.0);
    detail::add_value_noise(rng, background, 6, 10.0);
    detail::add_value_noise(rng, background, 20, 3.0);
    const double level = rng.uniform(o.background_min, o.background_max);
    const double attenuation = rng.uniform(o.attenuation_min, o.attenuation_max);

    angiogram out{xt::xtensor<std::uint8_t, 2>::from_shape({h, w}), xt::zeros<std::uint8_t>({h, w})};
    std::uint64_t noise_counter = 0;
    const philox noise(seed ^ 0x6e6f697365ull, index);  // separate stream: noise never shifts geometry
    for (std::size_t i = 0; i < h; ++i)
        for (std::size_t j = 0; j < w; ++j) {
            const double c = chord(i, j);
            double v = (level + background(i, j)) * std::exp(-attenuation * c);
            v += o.noise_sigma * noise.normal(noise_counter++);
            out.image(i, j) = static_cast<std::uint8_t>(std::clamp(std::lround(v), 0L, 255L));
            out.mask(i, j) = c > 0 ? 255 : 0;
        }
    return out;
}

}  // namespace vasomim::data
