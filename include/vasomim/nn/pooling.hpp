#pragma once
// 2 x 2 max pooling with stride 2 (F.max_pool2d(x, 2, 2)): odd trailing rows/columns are dropped;
// ties go to the first maximum in scan order, as PyTorch's CPU kernel.

#include <cstdint>

#include "vasomim/backend/algorithms.hpp"

namespace vasomim::nn {

/// planes = n * c planes of h x w; out is planes x (h/2) x (w/2); arg keeps the winner (0..3).
/// One work item per output row.
template <backend_policy B, class T>
void max_pool2x2_forward(T* out, std::int32_t* arg, const T* x, index_t planes, index_t h, index_t w) {
    const index_t oh = h / 2, ow = w / 2;
    parallel_for<B>(planes * oh, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
        const index_t oy = r % oh, pl = r / oh;
        const T* r0 = x + (pl * h + 2 * oy) * w;
        const T* r1 = r0 + w;
        T* o = out + r * ow;
        std::int32_t* a = arg + r * ow;
        for (index_t ox = 0; ox < ow; ++ox) {
            const T v0 = r0[2 * ox], v1 = r0[2 * ox + 1], v2 = r1[2 * ox], v3 = r1[2 * ox + 1];
            T best = v0;
            std::int32_t k = 0;
            if (v1 > best) { best = v1; k = 1; }
            if (v2 > best) { best = v2; k = 2; }
            if (v3 > best) { best = v3; k = 3; }
            o[ox] = best;
            a[ox] = k;
        }
    });
}

/// dx[planes, h, w] = dout routed to the winning element of each window (0 elsewhere). One work
/// item per output row, writing its two input rows (and an odd trailing row or column as zeros).
template <backend_policy B, class T>
void max_pool2x2_backward(T* dx, const T* dout, const std::int32_t* arg, index_t planes, index_t h, index_t w) {
    const index_t oh = h / 2, ow = w / 2;
    parallel_for<B>(planes * oh, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
        const index_t oy = r % oh, pl = r / oh;
        T* r0 = dx + (pl * h + 2 * oy) * w;
        T* r1 = r0 + w;
        const T* g = dout + r * ow;
        const std::int32_t* a = arg + r * ow;
        for (index_t ox = 0; ox < ow; ++ox) {
            const T v = g[ox];
            const std::int32_t k = a[ox];
            r0[2 * ox] = k == 0 ? v : T(0);
            r0[2 * ox + 1] = k == 1 ? v : T(0);
            r1[2 * ox] = k == 2 ? v : T(0);
            r1[2 * ox + 1] = k == 3 ? v : T(0);
        }
        if (w % 2) r0[w - 1] = r1[w - 1] = T(0);
        if (h % 2 && oy == oh - 1)
            for (index_t x = 0; x < w; ++x) r1[w + x] = T(0);
    });
    if (oh == 0)
        parallel_for<B>(planes * h * w, [=] VASOMIM_HOST_DEVICE(std::int64_t i) { dx[i] = T(0); });
}

}  // namespace vasomim::nn
