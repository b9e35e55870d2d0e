#pragma once
// Fixed 2-D sine-cosine position embeddings exactly as MAE's get_2d_sincos_pos_embed: half the
// channels encode the width coordinate, half the height coordinate (the grid is built with
// np.meshgrid(w, h), so the first half uses w), each as [sin(pos * omega), cos(pos * omega)] with
// omega_k = 1 / 10000^(k / (D/4)). With a cls token the first row is zero.

#include <cmath>
#include <vector>

#include "vasomim/core/error.hpp"
#include "vasomim/core/shape.hpp"

namespace vasomim::nn {

/// Host table of (cls ? 1 : 0) + grid_h * grid_w rows of width `dim` (dim divisible by 4).
/// Computed in double as numpy does, then rounded to T.
template <class T>
std::vector<T> sincos_pos_embed_2d(index_t dim, index_t grid_h, index_t grid_w, bool cls_token) {
    vasomim::detail::require<config_error>(dim % 4 == 0, "sincos_pos_embed_2d: embedding width " + std::to_string(dim) +
                                                    " is not divisible by 4");
    const index_t rows = grid_h * grid_w + (cls_token ? 1 : 0);
    std::vector<T> out(static_cast<std::size_t>(rows * dim), T(0));
    const index_t quarter = dim / 4;
    auto put = [&](T* row, double pos) {  // one coordinate into dim/2 channels: sin then cos
        for (index_t k = 0; k < quarter; ++k) {
            const double omega = 1.0 / std::pow(10000.0, static_cast<double>(k) / static_cast<double>(quarter));
            row[k] = static_cast<T>(std::sin(pos * omega));
            row[quarter + k] = static_cast<T>(std::cos(pos * omega));
        }
    };
    for (index_t y = 0; y < grid_h; ++y)
        for (index_t x = 0; x < grid_w; ++x) {
            T* row = out.data() + ((cls_token ? 1 : 0) + y * grid_w + x) * dim;
            put(row, static_cast<double>(x));             // emb_h in MAE is built from grid[0] = w
            put(row + dim / 2, static_cast<double>(y));
        }
    return out;
}

}  // namespace vasomim::nn
