#pragma once
// UNeXt's OverlapPatchEmbed: a k x k convolution with stride s and padding k / 2 (3, 2, 1 in
// UNeXt-S), flattened to tokens and layer-normalised (eps 1e-5). Output tokens [n, oh*ow, cout].

#include "vasomim/nn/conv2d.hpp"
#include "vasomim/nn/detail/token_layout.hpp"
#include "vasomim/nn/layer_norm.hpp"
#include "vasomim/nn/shifted_mlp.hpp"

namespace vasomim::nn {

template <class T>
struct overlap_embed_params {
    const T *proj_w, *proj_b, *norm_w, *norm_b;
};
template <class T>
struct overlap_embed_grads {
    T *proj_w, *proj_b, *norm_w, *norm_b;
};
/// conv: [n, cout, L] conv output; tok: its tokens [n, L, cout]; mean, rstd: [n * L].
template <class T>
struct overlap_embed_acts {
    T *conv, *tok, *mean, *rstd;
    template <class Take>
    void carve(Take&& take, const conv2d_dims& d) {
        const index_t L = d.oh() * d.ow();
        conv = take(d.n * d.cout * L); tok = take(d.n * d.cout * L); mean = take(d.n * L); rstd = take(d.n * L);
    }
};

/// Scratch elements for forward and backward: the convolution's plus one token-sized buffer.
inline index_t overlap_embed_scratch(const conv2d_dims& d) {
    const index_t conv = conv2d_backward_scratch(d) > conv2d_forward_scratch(d) ? conv2d_backward_scratch(d)
                                                                                : conv2d_forward_scratch(d);
    return conv + 2 * d.n * d.cout * d.oh() * d.ow();
}

template <backend_policy B, class T>
void overlap_embed_forward(T* out, const T* x, const overlap_embed_params<T>& p, const overlap_embed_acts<T>& a,
                           const conv2d_dims& d, T* scratch) {
    const index_t L = d.oh() * d.ow();
    conv2d_forward<B>(a.conv, x, p.proj_w, p.proj_b, d, scratch);
    detail::image_to_tokens<B>(a.tok, a.conv, d.n, d.cout, L);
    layer_norm_forward<B>(out, a.mean, a.rstd, a.tok, p.norm_w, p.norm_b, d.n * L, d.cout, unext_layer_norm_eps);
}

/// dx (may be null) overwritten, or accumulated when `accumulate_dx`; parameter gradients accumulate.
template <backend_policy B, class T>
void overlap_embed_backward(T* dx, const overlap_embed_grads<T>& g, const T* dout, const T* x,
                            const overlap_embed_params<T>& p, const overlap_embed_acts<T>& a, const conv2d_dims& d,
                            T* scratch, bool accumulate_dx = false) {
    const index_t L = d.oh() * d.ow(), N = d.n * d.cout * L;
    T* dtok = scratch;
    T* dimg = scratch + N;
    backend_traits<B>::fill(dtok, static_cast<std::size_t>(N), T(0));
    layer_norm_backward<B>(dtok, g.norm_w, g.norm_b, dout, a.tok, a.mean, a.rstd, p.norm_w, d.n * L, d.cout);
    detail::tokens_to_image<B>(dimg, dtok, d.n, d.cout, L);
    conv2d_backward<B>(dx, g.proj_w, g.proj_b, dimg, x, p.proj_w, d, scratch + 2 * N, accumulate_dx);
}

}  // namespace vasomim::nn
