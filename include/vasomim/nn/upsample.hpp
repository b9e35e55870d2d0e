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
/// Bilinear blend of rows s0 (weight by) and s1 (weight ay) at columns x0, x1 (weight 1 - ax, ax).
template <class T>
VASOMIM_HOST_DEVICE inline T bilerp(const T* s0, const T* s1, index_t x0, index_t x1, T ax, T ay, T by) {
    return by * ((T(1) - ax) * s0[x0] + ax * s0[x1]) + ay * ((T(1) - ax) * s1[x0] + ax * s1[x1]);
}
}  // namespace detail

/// out[planes, 2h, 2w] from x[planes, h, w]. One work item per output row; along the row the
/// source columns and weights of scale 2 are i-1, i (3/4 on i) and i, i+1 (1/4 on i+1), clamped.
template <backend_policy B, class T>
void upsample2x_forward(T* out, const T* x, index_t planes, index_t h, index_t w) {
    const index_t oh = 2 * h, ow = 2 * w;
    parallel_for<B>(planes * oh, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
        const index_t oy = r % oh, pl = r / oh;
        index_t y0, y1;
        double ly;
        detail::bilinear_src(oy, h, y0, y1, ly);
        const T* s0 = x + (pl * h + y0) * w;
        const T* s1 = x + (pl * h + y1) * w;
        T* o = out + r * ow;
        const T ay = static_cast<T>(ly), by = T(1) - ay;
        const T q = T(0.25), t = T(0.75);
        o[0] = detail::bilerp(s0, s1, 0, w > 1 ? 1 : 0, T(0), ay, by);
        for (index_t i = 1; i < w; ++i) o[2 * i] = detail::bilerp(s0, s1, i - 1, i, t, ay, by);
        for (index_t i = 0; i + 1 < w; ++i) o[2 * i + 1] = detail::bilerp(s0, s1, i, i + 1, q, ay, by);
        o[2 * w - 1] = detail::bilerp(s0, s1, w - 1, w - 1, q, ay, by);
    });
}

/// dx[planes, h, w] = adjoint of upsample2x_forward applied to dout[planes, 2h, 2w] (overwrites).
/// One work item per input row, gathering the <= 6 output rows that read it: no atomics.
template <backend_policy B, class T>
void upsample2x_backward(T* dx, const T* dout, index_t planes, index_t h, index_t w) {
    const index_t oh = 2 * h, ow = 2 * w;
    parallel_for<B>(planes * h, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
        const index_t y = r % h, pl = r / h;
        const T* g = dout + pl * oh * ow;
        T* d = dx + r * w;
        for (index_t x = 0; x < w; ++x) d[x] = T(0);
        const index_t ylo = 2 * y - 2 > 0 ? 2 * y - 2 : 0, yhi = 2 * y + 3 < oh - 1 ? 2 * y + 3 : oh - 1;
        const T q = T(0.25), t = T(0.75);
        for (index_t oy = ylo; oy <= yhi; ++oy) {
            const T wy = static_cast<T>(detail::bilinear_weight(oy, y, h));
            if (wy == T(0)) continue;
            const T* gr = g + oy * ow;
            // interior columns: outputs 2x-1 .. 2x+2 with weights 1/4, 3/4, 3/4, 1/4
            for (index_t x = 1; x + 1 < w; ++x)
                d[x] += wy * (((q * gr[2 * x - 1] + t * gr[2 * x]) + t * gr[2 * x + 1]) + q * gr[2 * x + 2]);
            // border columns: the general weights (clamped neighbours)
            for (index_t x = 0; x < w; x += (w > 1 ? w - 1 : 1)) {
                const index_t xlo = 2 * x - 2 > 0 ? 2 * x - 2 : 0, xhi = 2 * x + 3 < ow - 1 ? 2 * x + 3 : ow - 1;
                T row = T(0);
                for (index_t ox = xlo; ox <= xhi; ++ox) {
                    const T wx = static_cast<T>(detail::bilinear_weight(ox, x, w));
                    if (wx != T(0)) row += wx * gr[ox];
                }
                d[x] += wy * row;
            }
        }
    });
}

}  // namespace vasomim::nn
