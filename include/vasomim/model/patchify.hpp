#pragma once
// MAE's patchify / unpatchify: images [n, c, h, w] <-> patches [n, L, p*p*c] with the pixel order
// (i, j, channel) inside a patch ('nchpwq->nhwpqc' in the reference), L = (h/p) * (w/p) row-major.
// (The patch embedding uses the conv order (channel, i, j) instead; see nn/patch_embed.hpp.)

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/nn/patch_embed.hpp"

namespace vasomim::model {

/// out[b, lead + l, (i*p + j)*c + ch] = img[b, ch, gy*p + i, gx*p + j]. `lead` rows per image come
/// before the patches (1 for a cls token row, as the token rows of a ViT); they are set to 0.
template <backend_policy B, class T>
void patchify(T* out, const T* img, const nn::patch_dims& d, index_t lead = 0) {
    const index_t p = d.p, gw = d.grid_w(), L = d.patches(), ps = d.patch_size(), h = d.h, w = d.w,
                  ch = d.channels, rows = lead + L;
    parallel_for<B>(d.n * rows * ps, [=] VASOMIM_HOST_DEVICE(std::int64_t o) {
        const index_t k = o % ps, r = (o / ps) % rows, b = o / (ps * rows);
        if (r < lead) {
            out[o] = T(0);
            return;
        }
        const index_t l = r - lead, c = k % ch, j = (k / ch) % p, i = k / (ch * p);
        out[o] = img[((b * ch + c) * h + (l / gw) * p + i) * w + (l % gw) * p + j];
    });
}

/// The inverse of patchify: img[b, ch, y, x] from patches [n, lead + L, p*p*c] (the `lead` rows of
/// each image skipped).
template <backend_policy B, class T>
void unpatchify(T* img, const T* patches, const nn::patch_dims& d, index_t lead = 0) {
    const index_t p = d.p, gw = d.grid_w(), L = d.patches(), ps = d.patch_size(), h = d.h, w = d.w,
                  ch = d.channels;
    parallel_for<B>(d.n * ch * h * w, [=] VASOMIM_HOST_DEVICE(std::int64_t o) {
        const index_t x = o % w, y = (o / w) % h, c = (o / (w * h)) % ch, b = o / (w * h * ch);
        const index_t l = (y / p) * gw + x / p, i = y % p, j = x % p;
        img[o] = patches[(b * (lead + L) + lead + l) * ps + (i * p + j) * ch + c];
    });
}

}  // namespace vasomim::model
