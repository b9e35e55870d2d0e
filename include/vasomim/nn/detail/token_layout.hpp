#pragma once
// Moves between the image layout [n, c, h*w] of convolutions and the token layout [n, h*w, c] of
// linears and LayerNorm (x.flatten(2).transpose(1, 2) and its inverse).

#include "vasomim/backend/algorithms.hpp"

namespace vasomim::nn::detail {

/// tokens[b, l, ch] = img[b, ch, l]; acc adds instead of overwriting. One work item per
/// (image, block of 16 tokens): the strided reads of a block share cache lines.
template <backend_policy B, class T>
void image_to_tokens(T* tokens, const T* img, index_t n, index_t c, index_t l, bool acc = false) {
    constexpr index_t tb = 16;
    const index_t blocks = (l + tb - 1) / tb;
    parallel_for<B>(n * blocks, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
        const index_t b = r / blocks, t0 = (r % blocks) * tb, t1 = t0 + tb < l ? t0 + tb : l;
        const T* src = img + b * c * l;
        for (index_t t = t0; t < t1; ++t) {
            T* dst = tokens + (b * l + t) * c;
            if (acc)
                for (index_t ch = 0; ch < c; ++ch) dst[ch] += src[ch * l + t];
            else
                for (index_t ch = 0; ch < c; ++ch) dst[ch] = src[ch * l + t];
        }
    });
}

/// img[b, ch, l] = tokens[b, l, ch]; acc adds instead of overwriting. One work item per
/// (image, channel): a strided read of the token column.
template <backend_policy B, class T>
void tokens_to_image(T* img, const T* tokens, index_t n, index_t c, index_t l, bool acc = false) {
    parallel_for<B>(n * c, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
        const index_t ch = r % c, b = r / c;
        const T* src = tokens + b * l * c + ch;
        T* dst = img + r * l;
        if (acc)
            for (index_t t = 0; t < l; ++t) dst[t] += src[t * c];
        else
            for (index_t t = 0; t < l; ++t) dst[t] = src[t * c];
    });
}

}  // namespace vasomim::nn::detail
