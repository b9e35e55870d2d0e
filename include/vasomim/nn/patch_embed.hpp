#pragma once
// Patch embedding: a p x p convolution with stride p, computed as patch extraction followed by
// one GEMM with the conv weight viewed as [embed, channels * p * p] (row order c, i, j).

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/nn/linear.hpp"

namespace vasomim::nn {

/// Image geometry: n images of `channels` x h x w, square patches of side p.
struct patch_dims {
    index_t n, channels, h, w, p;
    index_t grid_h() const { return h / p; }
    index_t grid_w() const { return w / p; }
    index_t patches() const { return grid_h() * grid_w(); }
    index_t patch_size() const { return channels * p * p; }
};

/// cols[b, l, (c*p + i)*p + j] = img[b, c, gy*p + i, gx*p + j] with l = gy * grid_w + gx: the
/// im2col of the stride-p convolution (channel-major inside a patch, as the conv weight).
template <backend_policy B, class T>
void patch_columns(T* cols, const T* img, const patch_dims& d) {
    const index_t p = d.p, gw = d.grid_w(), L = d.patches(), ps = d.patch_size(), h = d.h, w = d.w,
                  ch = d.channels;
    parallel_for<B>(d.n * L * ps, [=] VASOMIM_HOST_DEVICE(std::int64_t o) {
        const index_t k = o % ps, l = (o / ps) % L, b = o / (ps * L);
        const index_t c = k / (p * p), i = (k / p) % p, j = k % p;
        const index_t y = (l / gw) * p + i, x = (l % gw) * p + j;
        cols[o] = img[((b * ch + c) * h + y) * w + x];
    });
}

/// Forward: out[b, l, :] = conv(img)[b, :, l] + pos[l, :] (pos may be null). cols is kept for
/// backward ([n, L, channels * p * p]).
template <backend_policy B, class T>
void patch_embed_forward(T* out, T* cols, const T* img, const T* w, const T* bias, const T* pos,
                         const patch_dims& d, index_t embed) {
    patch_columns<B>(cols, img, d);
    const index_t L = d.patches(), rows = d.n * L;
    parallel_for<B>(rows * embed, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        const index_t e = i % embed, l = (i / embed) % L;
        out[i] = bias[e] + (pos ? pos[l * embed + e] : T(0));
    });
    gemm<B>(transpose::no, transpose::yes, rows, embed, d.patch_size(), T(1), cols, w, T(1), out);
}

/// Backward to the weight and bias (the image needs no gradient); both accumulate.
template <backend_policy B, class T>
void patch_embed_backward(T* dw, T* db, const T* dout, const T* cols, const patch_dims& d, index_t embed) {
    linear_backward<B>(static_cast<T*>(nullptr), dw, db, dout, cols, static_cast<const T*>(nullptr),
                       d.n * d.patches(), d.patch_size(), embed);
}

}  // namespace vasomim::nn
