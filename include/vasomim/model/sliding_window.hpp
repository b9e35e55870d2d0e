#pragma once
// Whole-image inference of a segmentation model with a fixed input side S (GitHub issue 17):
//   1. the 8-bit grey image (H x W) is resampled by `scale` (model pixels per image pixel; PIL's
//      bicubic, data/transforms.hpp) to h x w = round(H scale) x round(W scale);
//   2. tiles of S x S cover it, along each axis at evenly spaced offsets from 0 to h - S whose gaps
//      are at most S (1 - overlap); an image smaller than one tile is refused (shape_error naming it);
//   3. each tile's probabilities sigmoid(logit) are blended with a Gaussian window (sigma S / 8 about
//      the tile's centre, floor 1e-3, as MONAI's sliding_window_inference) and normalised by the
//      summed weights;
//   4. the map is resampled back to H x W (bicubic, clamped to [0, 1]) when scale != 1.
// Tiles go through the model `batch` at a time (evaluation forwards: no drop path).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "vasomim/core/error.hpp"
#include "vasomim/core/tensor.hpp"
#include "vasomim/data/transforms.hpp"

namespace vasomim::model {

struct sliding_window_options {
    double scale = 1.0;    ///< model pixels per image pixel
    double overlap = 0.25;  ///< least share of a tile shared with its neighbour
    index_t batch = 4;      ///< tiles per forward
};

namespace detail {
/// A scale as %g writes it (0.5, not 0.500000).
inline std::string short_number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}
}  // namespace detail

/// Offsets of the tiles of side `tile` along an axis of `length` (length >= tile).
inline std::vector<index_t> tile_offsets(index_t length, index_t tile, double overlap) {
    if (length < tile || tile <= 0)
        throw shape_error("tile_offsets: an axis of " + std::to_string(length) + " pixels is shorter than one tile of " +
                          std::to_string(tile));
    if (!(overlap >= 0 && overlap < 1)) throw config_error("sliding window: overlap must lie in [0, 1)");
    const double stride = std::max(1.0, double(tile) * (1.0 - overlap));
    const auto count = static_cast<index_t>(std::ceil(double(length - tile) / stride)) + 1;
    std::vector<index_t> out;
    for (index_t i = 0; i < count; ++i)
        out.push_back(count == 1 ? 0 : static_cast<index_t>(std::lround(double(i) * double(length - tile) / double(count - 1))));
    return out;
}

/// The blending window of a tile (tile x tile, row-major).
inline std::vector<float> gaussian_window(index_t tile) {
    const double sigma = double(tile) / 8.0, c = (double(tile) - 1.0) / 2.0;
    std::vector<double> g(static_cast<std::size_t>(tile));
    for (index_t i = 0; i < tile; ++i) g[std::size_t(i)] = std::exp(-(double(i) - c) * (double(i) - c) / (2 * sigma * sigma));
    std::vector<float> w(static_cast<std::size_t>(tile * tile));
    for (index_t y = 0; y < tile; ++y)
        for (index_t x = 0; x < tile; ++x)
            w[std::size_t(y * tile + x)] = static_cast<float>(std::max(g[std::size_t(y)] * g[std::size_t(x)], 1e-3));
    return w;
}

/// The size of `h x w` after resampling by `scale` (at least 1 x 1).
inline std::pair<index_t, index_t> scaled_size(index_t h, index_t w, double scale) {
    return {std::max<index_t>(1, std::lround(double(h) * scale)), std::max<index_t>(1, std::lround(double(w) * scale))};
}

/// Vessel probabilities (H x W, in [0, 1]) of an 8-bit grey image, as the header comment says.
/// `name` names the image in errors. Model: a segmentation_model (1 output channel, 3 input channels).
template <class Model>
xt::xtensor<float, 2> sliding_window_probability(Model& model, const xt::xtensor<std::uint8_t, 2>& grey,
                                                 const sliding_window_options& o, const std::string& name) {
    using T = typename Model::value_type;
    using buffer = std::remove_cvref_t<decltype(model.params())>;  // tensor<T, Backend>
    const index_t S = model.config().img_size();
    if (!(o.scale > 0)) throw config_error("sliding window: scale must be positive");
    if (o.batch <= 0) throw config_error("sliding window: batch must be positive");
    const auto H = static_cast<index_t>(grey.shape()[0]), W = static_cast<index_t>(grey.shape()[1]);
    const auto [h, w] = scaled_size(H, W, o.scale);
    if (h < S || w < S)
        throw shape_error("'" + name + "' is " + std::to_string(H) + " x " + std::to_string(W) + " pixels" +
                          (o.scale != 1.0 ? ", " + std::to_string(h) + " x " + std::to_string(w) + " at scale " +
                                                detail::short_number(o.scale)
                                          : std::string()) +
                          ": smaller than one " + std::to_string(S) + " x " + std::to_string(S) + " tile of the model");
    xt::xtensor<float, 2> scaled = (h == H && w == W)
                                       ? xt::xtensor<float, 2>(xt::cast<float>(grey))
                                       : data::resize_bicubic(grey, data::crop_box{0, 0, H, W}, h, w);
    const auto rgb = data::to_normalised_rgb(scaled);  // 3 x h x w
    const auto ys = tile_offsets(h, S, o.overlap), xs = tile_offsets(w, S, o.overlap);
    std::vector<std::pair<index_t, index_t>> tiles;
    for (const index_t y : ys)
        for (const index_t x : xs) tiles.emplace_back(y, x);
    const auto win = gaussian_window(S);
    std::vector<double> acc(static_cast<std::size_t>(h * w), 0.0), wsum(static_cast<std::size_t>(h * w), 0.0);
    const std::size_t plane = static_cast<std::size_t>(S * S);
    for (std::size_t first = 0; first < tiles.size(); first += static_cast<std::size_t>(o.batch)) {
        const std::size_t n = std::min(tiles.size() - first, static_cast<std::size_t>(o.batch));
        std::vector<T> in(n * 3 * plane);
        for (std::size_t t = 0; t < n; ++t) {
            const auto [ty, tx] = tiles[first + t];
            for (std::size_t c = 0; c < 3; ++c)
                for (index_t y = 0; y < S; ++y)
                    for (index_t x = 0; x < S; ++x)
                        in[(t * 3 + c) * plane + std::size_t(y * S + x)] =
                            static_cast<T>(rgb(c, std::size_t(ty + y), std::size_t(tx + x)));
        }
        const auto dev = buffer::from_host(in, shape{static_cast<index_t>(n), 3, S, S});
        model.forward(dev);
        const auto z = model.host_logits();
        for (std::size_t t = 0; t < n; ++t) {
            const auto [ty, tx] = tiles[first + t];
            for (index_t y = 0; y < S; ++y)
                for (index_t x = 0; x < S; ++x) {
                    const double p = 1.0 / (1.0 + std::exp(-double(z[t * plane + std::size_t(y * S + x)])));
                    const double wt = win[std::size_t(y * S + x)];
                    const auto k = static_cast<std::size_t>((ty + y) * w + tx + x);
                    acc[k] += wt * p;
                    wsum[k] += wt;
                }
        }
    }
    xt::xtensor<float, 2> prob = xt::xtensor<float, 2>::from_shape({std::size_t(h), std::size_t(w)});
    for (std::size_t k = 0; k < prob.size(); ++k) prob.data()[k] = static_cast<float>(acc[k] / wsum[k]);
    if (h == H && w == W) return prob;
    auto back = data::resize_bicubic(prob, data::crop_box{0, 0, h, w}, H, W);
    for (auto& v : back) v = std::clamp(v, 0.0f, 1.0f);
    return back;
}

}  // namespace vasomim::model
