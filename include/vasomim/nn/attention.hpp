#pragma once
// Multi-head self-attention as in timm's Attention (qkv with bias, scale head_dim^-0.5, output
// projection). The q, k, v of every (sample, head) are laid out contiguously so that QK^T and PV
// are each one strided batched GEMM over batch * heads.

#include "vasomim/core/scalar_math.hpp"
#include "vasomim/backend/algorithms.hpp"
#include "vasomim/nn/linear.hpp"
#include "vasomim/nn/softmax.hpp"

namespace vasomim::nn {

/// Sizes of one attention call: n samples of t tokens of width c = heads * head_dim.
struct attention_dims {
    index_t n, t, c, heads;
    index_t head_dim() const { return c / heads; }
    index_t rows() const { return n * t; }
};

/// Parameters of attention (read-only) and their gradients.
template <class T>
struct attention_params {
    const T* qkv_w;   ///< [3c, c]
    const T* qkv_b;   ///< [3c]
    const T* proj_w;  ///< [c, c]
    const T* proj_b;  ///< [c]
};
template <class T>
struct attention_grads {
    T *qkv_w, *qkv_b, *proj_w, *proj_b;
};

/// Activations kept for backward.
template <class T>
struct attention_acts {
    T* qkvh;  ///< [3, n, heads, t, head_dim]: q, k, v per (sample, head)
    T* att;   ///< [n, heads, t, t]: attention probabilities
    T* y;     ///< [n, t, c]: heads concatenated, the input of the projection
};

/// Scratch (overwritten by forward and backward; not needed between them).
template <class T>
struct attention_scratch {
    T* qkv;   ///< [n, t, 3c]
    T* yh;    ///< [n, heads, t, head_dim]
    T* datt;  ///< [n, heads, t, t]
    T* dy;    ///< [n, t, c]
    T* dqkvh; ///< [3, n, heads, t, head_dim]
};

namespace detail {

// The head (un)permutations copy rows of head_dim contiguous values: one task per row, no
// per-element index division, a vectorisable inner loop.

/// qkvh[s, b, h, i, :] = qkv[b, i, s*c + h*hd : ...] (forward).
template <backend_policy B, class T>
void split_heads(T* qkvh, const T* qkv, const attention_dims& a) {
    const index_t t = a.t, c = a.c, hd = a.head_dim(), nh = a.heads, n = a.n;
    parallel_for<B>(3 * n * nh * t, [=] VASOMIM_HOST_DEVICE(std::int64_t row) {
        const index_t i = row % t, h = (row / t) % nh, b = (row / (t * nh)) % n, s = row / (t * nh * n);
        const T* src = qkv + (b * t + i) * 3 * c + s * c + h * hd;
        T* dst = qkvh + row * hd;
        for (index_t d = 0; d < hd; ++d) dst[d] = src[d];
    });
}
/// qkv[b, i, s*c + h*hd : ...] = qkvh[s, b, h, i, :] (backward).
template <backend_policy B, class T>
void merge_heads_qkv(T* qkv, const T* qkvh, const attention_dims& a) {
    const index_t t = a.t, c = a.c, hd = a.head_dim(), nh = a.heads, n = a.n;
    parallel_for<B>(3 * n * nh * t, [=] VASOMIM_HOST_DEVICE(std::int64_t row) {
        const index_t i = row % t, h = (row / t) % nh, b = (row / (t * nh)) % n, s = row / (t * nh * n);
        T* dst = qkv + (b * t + i) * 3 * c + s * c + h * hd;
        const T* src = qkvh + row * hd;
        for (index_t d = 0; d < hd; ++d) dst[d] = src[d];
    });
}
/// y[b, i, h*hd : ...] = yh[b, h, i, :]
template <backend_policy B, class T>
void merge_heads(T* y, const T* yh, const attention_dims& a) {
    const index_t t = a.t, c = a.c, hd = a.head_dim(), nh = a.heads;
    parallel_for<B>(a.n * nh * t, [=] VASOMIM_HOST_DEVICE(std::int64_t row) {
        const index_t i = row % t, h = (row / t) % nh, b = row / (t * nh);
        T* dst = y + (b * t + i) * c + h * hd;
        const T* src = yh + row * hd;
        for (index_t d = 0; d < hd; ++d) dst[d] = src[d];
    });
}
/// yh[b, h, i, :] = y[b, i, h*hd : ...]
template <backend_policy B, class T>
void split_heads_single(T* yh, const T* y, const attention_dims& a) {
    const index_t t = a.t, c = a.c, hd = a.head_dim(), nh = a.heads;
    parallel_for<B>(a.n * nh * t, [=] VASOMIM_HOST_DEVICE(std::int64_t row) {
        const index_t i = row % t, h = (row / t) % nh, b = row / (t * nh);
        const T* src = y + (b * t + i) * c + h * hd;
        T* dst = yh + row * hd;
        for (index_t d = 0; d < hd; ++d) dst[d] = src[d];
    });
}

}  // namespace detail

/// out = residual + proj(attention(x)) for x [n, t, c]; residual may be null (then out = attn(x))
/// and may alias out.
template <backend_policy B, class T>
void attention_forward(T* out, const T* x, const T* residual, const attention_params<T>& p,
                       const attention_acts<T>& acts, const attention_scratch<T>& s,
                       const attention_dims& a) {
    const index_t t = a.t, c = a.c, hd = a.head_dim(), bh = a.n * a.heads, m = a.rows();
    const T scale = T(1) / scalar::sqrt_(static_cast<T>(hd));
    linear_forward<B>(s.qkv, x, p.qkv_w, p.qkv_b, m, c, 3 * c);
    detail::split_heads<B>(acts.qkvh, s.qkv, a);
    const T* q = acts.qkvh;
    const T* k = acts.qkvh + m * c;
    const T* v = acts.qkvh + 2 * m * c;
    gemm_batched<B>(transpose::no, transpose::yes, t, t, hd, scale, q, hd, t * hd, k, hd, t * hd, T(0),
                    acts.att, t, t * t, bh);
    softmax_forward<B>(acts.att, bh * t, t);
    gemm_batched<B>(transpose::no, transpose::no, t, hd, t, T(1), acts.att, t, t * t, v, hd, t * hd,
                    T(0), s.yh, hd, t * hd, bh);
    detail::merge_heads<B>(acts.y, s.yh, a);
    linear_forward<B>(out, acts.y, p.proj_w, p.proj_b, m, c, c, residual);
}

/// Backward from dout [n, t, c] (the gradient of out): parameter gradients accumulate; dx [n, t, c]
/// is overwritten with the gradient of x (not of the residual: the caller keeps dout for that).
template <backend_policy B, class T>
void attention_backward(T* dx, const attention_grads<T>& g, const T* dout, const T* x,
                        const attention_params<T>& p, const attention_acts<T>& acts,
                        const attention_scratch<T>& s, const attention_dims& a) {
    const index_t t = a.t, c = a.c, hd = a.head_dim(), bh = a.n * a.heads, m = a.rows();
    const T scale = T(1) / scalar::sqrt_(static_cast<T>(hd));
    linear_backward<B>(s.dy, g.proj_w, g.proj_b, dout, acts.y, p.proj_w, m, c, c);
    T* dyh = s.yh;
    detail::split_heads_single<B>(dyh, s.dy, a);
    const T* q = acts.qkvh;
    const T* k = acts.qkvh + m * c;
    const T* v = acts.qkvh + 2 * m * c;
    T* dq = s.dqkvh;
    T* dk = s.dqkvh + m * c;
    T* dv = s.dqkvh + 2 * m * c;
    gemm_batched<B>(transpose::no, transpose::yes, t, t, hd, T(1), dyh, hd, t * hd, v, hd, t * hd, T(0),
                    s.datt, t, t * t, bh);
    gemm_batched<B>(transpose::yes, transpose::no, t, hd, t, T(1), acts.att, t, t * t, dyh, hd, t * hd,
                    T(0), dv, hd, t * hd, bh);
    softmax_backward<B>(s.datt, acts.att, bh * t, t, scale);
    gemm_batched<B>(transpose::no, transpose::no, t, hd, t, T(1), s.datt, t, t * t, k, hd, t * hd, T(0),
                    dq, hd, t * hd, bh);
    gemm_batched<B>(transpose::yes, transpose::no, t, hd, t, T(1), s.datt, t, t * t, q, hd, t * hd, T(0),
                    dk, hd, t * hd, bh);
    detail::merge_heads_qkv<B>(s.qkv, s.dqkvh, a);
    linear_backward<B>(dx, g.qkv_w, g.qkv_b, s.qkv, x, p.qkv_w, m, c, 3 * c);
}

}  // namespace vasomim::nn
