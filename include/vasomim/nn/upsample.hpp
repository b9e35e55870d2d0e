#pragma once
// Bilinear x2 upsampling, F.interpolate(scale_factor=2, mode='bilinear', align_corners=False):
// source coordinate (o + 0.5) / 2 - 0.5 clamped below at 0, neighbours clamped at the border.
// The backward is a gather (each input pixel sums the <= 6 x 6 outputs that read it): no atomics.

#include "vasomim/backend/algorithms.hpp"

namespace vasomim::nn {

namespace detail {
/// Lower source index and weight of the upper neighbour for output coordinate o (input size n).
VASOMIM_HOST_DEVICE inline void bilinear_src(index_t o, index_t n, index_t& i0, index_t& i1, double& lam) {
    double s = (static_cast<double>(o) + 0.5) * 0.5 - 0.5;
    if (s < 0) s = 0;
    i0 = static_cast<index_t>(s);
    if (i0 > n - 1) i0 = n - 1;
    i1 = i0 + 1 < n ? i0 + 1 : n - 1;
    lam = s - static_cast<double>(i0);
}
/// Weight with which output coordinate o reads input coordinate i.
VASOMIM_HOST_DEVICE inline double bilinear_weight(index_t o, index_t i, index_t n) {
    index_t i0, i1;
    double lam;
    bilinear_src(o, n, i0, i1, lam);
    return (i0 == i ? 1.0 - lam : 0.0) + (i1 == i ? lam : 0.0);
}
}  // namespace detail

/// out[planes, 2h, 2w] from x[planes, h, w].
template <backend_policy B, class T>
void upsample2x_forward(T* out, const T* x, index_t planes, index_t h, index_t w) {
    const index_t oh = 2 * h, ow = 2 * w;
    parallel_for<B>(planes * oh * ow, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        const index_t ox = i % ow, oy = (i / ow) % oh, pl = i / (ow * oh);
        index_t y0, y1, x0, x1;
        double ly, lx;
        detail::bilinear_src(oy, h, y0, y1, ly);
        detail::bilinear_src(ox, w, x0, x1, lx);
        const T* s = x + pl * h * w;
        const T ay = static_cast<T>(ly), ax = static_cast<T>(lx);
        out[i] = (T(1) - ay) * ((T(1) - ax) * s[y0 * w + x0] + ax * s[y0 * w + x1]) +
                 ay * ((T(1) - ax) * s[y1 * w + x0] + ax * s[y1 * w + x1]);
    });
}

/// dx[planes, h, w] = adjoint of upsample2x_forward applied to dout[planes, 2h, 2w] (overwrites).
template <backend_policy B, class T>
void upsample2x_backward(T* dx, const T* dout, index_t planes, index_t h, index_t w) {
    const index_t oh = 2 * h, ow = 2 * w;
    parallel_for<B>(planes * h * w, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        const index_t x = i % w, y = (i / w) % h, pl = i / (w * h);
        const T* g = dout + pl * oh * ow;
        const index_t ylo = 2 * y - 2 > 0 ? 2 * y - 2 : 0, yhi = 2 * y + 3 < oh - 1 ? 2 * y + 3 : oh - 1;
        const index_t xlo = 2 * x - 2 > 0 ? 2 * x - 2 : 0, xhi = 2 * x + 3 < ow - 1 ? 2 * x + 3 : ow - 1;
        T acc = T(0);
        for (index_t oy = ylo; oy <= yhi; ++oy) {
            const T wy = static_cast<T>(detail::bilinear_weight(oy, y, h));
            if (wy == T(0)) continue;
            T row = T(0);
            for (index_t ox = xlo; ox <= xhi; ++ox) {
                const T wx = static_cast<T>(detail::bilinear_weight(ox, x, w));
                if (wx != T(0)) row += wx * g[oy * ow + ox];
            }
            acc += wy * row;
        }
        dx[i] = acc;
    });
}

}  // namespace vasomim::nn
