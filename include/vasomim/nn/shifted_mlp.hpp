#pragma once
// UNeXt's tokenised shifted-MLP block: x + shiftmlp(LN(x)) with
//   shiftmlp(t) = fc2(shift_w(GELU(dwconv3x3(fc1(shift_h(t)))))),
// where shift_h / shift_w restate the released pad -> chunk -> roll -> narrow sequence: channels are
// cut into chunks of ceil(C / 5) (torch.chunk), chunk j is moved by j - 2 pixels along the height
// (before fc1) or the width (before fc2), with zeros shifted in (the padding) and nothing wrapping.
// Tokens are [n, h*w, c]; the hidden width equals c (mlp_ratio 1 in UNeXt).

#include "vasomim/nn/conv2d.hpp"
#include "vasomim/nn/detail/token_layout.hpp"
#include "vasomim/nn/gelu.hpp"
#include "vasomim/nn/layer_norm.hpp"
#include "vasomim/nn/linear.hpp"

namespace vasomim::nn {

inline constexpr index_t shift_size = 5;          ///< released default: shifts -2 .. 2
inline constexpr double unext_layer_norm_eps = 1e-5;  ///< torch.nn.LayerNorm default, used by UNeXt

/// Token grid: n images of h x w tokens with c channels.
struct token_dims {
    index_t n, h, w, c;
    index_t rows() const { return n * h * w; }
    index_t numel() const { return n * h * w * c; }
};

/// out[b, y, x, ch] = in[b, y - s, x, ch] (axis 0, height) or in[b, y, x - s, ch] (axis 1, width) with
/// s = ch / ceil(c / 5) - 2, 0 where the source is outside. `adjoint` applies the transpose (shift by -s).
template <backend_policy B, class T>
void token_shift(T* out, const T* in, const token_dims& d, int axis, bool adjoint) {
    const index_t H = d.h, W = d.w, C = d.c, chunk = (d.c + shift_size - 1) / shift_size, pad = shift_size / 2;
    // one work item per token; the channels of one chunk move together
    parallel_for<B>(d.rows(), [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
        const index_t x = r % W, y = (r / W) % H, b = r / (W * H);
        T* dst = out + r * C;
        for (index_t j = 0; j * chunk < C; ++j) {
            const index_t c0 = j * chunk, c1 = c0 + chunk < C ? c0 + chunk : C;
            const index_t s = adjoint ? pad - j : j - pad;
            const index_t sy = axis == 0 ? y - s : y, sx = axis == 1 ? x - s : x;
            if (sy >= 0 && sy < H && sx >= 0 && sx < W) {
                const T* src = in + ((b * H + sy) * W + sx) * C;
                for (index_t ch = c0; ch < c1; ++ch) dst[ch] = src[ch];
            } else {
                for (index_t ch = c0; ch < c1; ++ch) dst[ch] = T(0);
            }
        }
    });
}

template <class T>
struct shifted_block_params {
    const T *norm_w, *norm_b;    ///< norm2: [c]
    const T *fc1_w, *fc1_b;      ///< mlp.fc1: [c, c], [c]
    const T *dw_w, *dw_b;        ///< mlp.dwconv.dwconv: [c, 1, 3, 3], [c]
    const T *fc2_w, *fc2_b;      ///< mlp.fc2: [c, c], [c]
};
template <class T>
struct shifted_block_grads {
    T *norm_w, *norm_b, *fc1_w, *fc1_b, *dw_w, *dw_b, *fc2_w, *fc2_b;
};
/// Activations kept for backward; every buffer has d.numel() elements except mean/rstd (d.rows()).
template <class T>
struct shifted_block_acts {
    T *ln, *mean, *rstd, *s1, *h1, *img, *conv, *pre, *act, *s2;
    static constexpr int buffers = 8;  ///< full-size buffers (besides mean and rstd)
    /// Carves the buffers from `take(count)` (an arena cursor).
    template <class Take>
    void carve(Take&& take, const token_dims& d) {
        ln = take(d.numel()); mean = take(d.rows()); rstd = take(d.rows());
        s1 = take(d.numel()); h1 = take(d.numel()); img = take(d.numel()); conv = take(d.numel());
        pre = take(d.numel()); act = take(d.numel()); s2 = take(d.numel());
    }
};

inline conv2d_dims shifted_block_dwconv_dims(const token_dims& d) {
    return conv2d_dims{d.n, d.c, d.h, d.w, d.c, 3, 3, 1, 1, d.c};
}

/// out = x + shiftmlp(LN(x)); out must not alias x.
template <backend_policy B, class T>
void shifted_block_forward(T* out, const T* x, const shifted_block_params<T>& p, const shifted_block_acts<T>& a,
                           const token_dims& d) {
    const index_t rows = d.rows(), c = d.c, l = d.h * d.w;
    layer_norm_forward<B>(a.ln, a.mean, a.rstd, x, p.norm_w, p.norm_b, rows, c, unext_layer_norm_eps);
    token_shift<B>(a.s1, a.ln, d, 0, false);
    linear_forward<B>(a.h1, a.s1, p.fc1_w, p.fc1_b, rows, c, c);
    detail::tokens_to_image<B>(a.img, a.h1, d.n, c, l);
    conv2d_forward<B>(a.conv, a.img, p.dw_w, p.dw_b, shifted_block_dwconv_dims(d), static_cast<T*>(nullptr));
    detail::image_to_tokens<B>(a.pre, a.conv, d.n, c, l);
    gelu_forward<B>(a.act, a.pre, d.numel());
    token_shift<B>(a.s2, a.act, d, 1, false);
    linear_forward<B>(out, a.s2, p.fc2_w, p.fc2_b, rows, c, c, x);
}

/// Backward: dx (not aliasing dout) is overwritten with dout + d(shiftmlp(LN(x)))/dx; parameter
/// gradients accumulate. scratch holds 2 * d.numel() elements.
template <backend_policy B, class T>
void shifted_block_backward(T* dx, const shifted_block_grads<T>& g, const T* dout, const T* x,
                            const shifted_block_params<T>& p, const shifted_block_acts<T>& a, T* scratch,
                            const token_dims& d) {
    const index_t rows = d.rows(), c = d.c, l = d.h * d.w, N = d.numel();
    T* g1 = scratch;
    T* g2 = scratch + N;
    linear_backward<B>(g1, g.fc2_w, g.fc2_b, dout, a.s2, p.fc2_w, rows, c, c);
    token_shift<B>(g2, g1, d, 1, true);
    gelu_backward<B>(g2, g2, a.pre, N);
    detail::tokens_to_image<B>(g1, g2, d.n, c, l);
    conv2d_backward<B>(g2, g.dw_w, g.dw_b, g1, a.img, p.dw_w, shifted_block_dwconv_dims(d), static_cast<T*>(nullptr));
    detail::image_to_tokens<B>(g1, g2, d.n, c, l);
    linear_backward<B>(g2, g.fc1_w, g.fc1_b, g1, a.s1, p.fc1_w, rows, c, c);
    token_shift<B>(g1, g2, d, 0, true);
    backend_traits<B>::copy(dout, static_cast<std::size_t>(N), dx);
    layer_norm_backward<B>(dx, g.norm_w, g.norm_b, g1, x, a.mean, a.rstd, p.norm_w, rows, c);
}

}  // namespace vasomim::nn
