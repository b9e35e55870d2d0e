#pragma once
// Moves between the image layout [n, c, h*w] of convolutions and the token layout [n, h*w, c] of
// linears and LayerNorm (x.flatten(2).transpose(1, 2) and its inverse).

#include "vasomim/backend/algorithms.hpp"

namespace vasomim::nn::detail {

/// tokens[b, l, ch] = img[b, ch, l]; acc adds instead of overwriting.
template <backend_policy B, class T>
void image_to_tokens(T* tokens, const T* img, index_t n, index_t c, index_t l, bool acc = false) {
    parallel_for<B>(n * l * c, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        const index_t ch = i % c, t = (i / c) % l, b = i / (c * l);
        const T v = img[(b * c + ch) * l + t];
        tokens[i] = acc ? tokens[i] + v : v;
    });
}

/// img[b, ch, l] = tokens[b, l, ch]; acc adds instead of overwriting.
template <backend_policy B, class T>
void tokens_to_image(T* img, const T* tokens, index_t n, index_t c, index_t l, bool acc = false) {
    parallel_for<B>(n * c * l, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        const index_t t = i % l, ch = (i / l) % c, b = i / (l * c);
        const T v = tokens[(b * l + t) * c + ch];
        img[i] = acc ? img[i] + v : v;
    });
}

}  // namespace vasomim::nn::detail
