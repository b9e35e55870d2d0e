#pragma once
// 2 x 2 max pooling with stride 2 (F.max_pool2d(x, 2, 2)): odd trailing rows/columns are dropped;
// ties go to the first maximum in scan order, as PyTorch's CPU kernel.

#include <cstdint>

#include "vasomim/backend/algorithms.hpp"

namespace vasomim::nn {

/// planes = n * c planes of h x w; out is planes x (h/2) x (w/2); arg keeps the winner (0..3).
template <backend_policy B, class T>
void max_pool2x2_forward(T* out, std::int32_t* arg, const T* x, index_t planes, index_t h, index_t w) {
    const index_t oh = h / 2, ow = w / 2;
    parallel_for<B>(planes * oh * ow, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        const index_t ox = i % ow, oy = (i / ow) % oh, pl = i / (ow * oh);
        const T* src = x + (pl * h + 2 * oy) * w + 2 * ox;
        T best = src[0];
        std::int32_t a = 0;
        const T v1 = src[1], v2 = src[w], v3 = src[w + 1];
        if (v1 > best) { best = v1; a = 1; }
        if (v2 > best) { best = v2; a = 2; }
        if (v3 > best) { best = v3; a = 3; }
        out[i] = best;
        arg[i] = a;
    });
}

/// dx[planes, h, w] = dout routed to the winning element of each window (0 elsewhere).
template <backend_policy B, class T>
void max_pool2x2_backward(T* dx, const T* dout, const std::int32_t* arg, index_t planes, index_t h, index_t w) {
    const index_t oh = h / 2, ow = w / 2;
    parallel_for<B>(planes * h * w, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        const index_t x = i % w, y = (i / w) % h, pl = i / (w * h);
        const index_t oy = y / 2, ox = x / 2;
        T g = T(0);
        if (oy < oh && ox < ow) {
            const index_t o = (pl * oh + oy) * ow + ox;
            if (arg[o] == static_cast<std::int32_t>((y % 2) * 2 + x % 2)) g = dout[o];
        }
        dx[i] = g;
    });
}

}  // namespace vasomim::nn
