#pragma once
// The pre-norm transformer block of timm as used by MAE:
//   x = x + attn(norm1(x));  x = x + mlp(norm2(x)),
// LayerNorm eps 1e-6, MLP ratio 4, exact GELU. Parameters carry timm names under a prefix.

#include <cstddef>
#include <string>
#include <type_traits>

#include "vasomim/nn/arena.hpp"
#include "vasomim/nn/attention.hpp"
#include "vasomim/nn/layer_norm.hpp"
#include "vasomim/nn/mlp.hpp"
#include "vasomim/nn/parameters.hpp"

namespace vasomim::nn {

/// n samples x t tokens x width c, `heads` heads, MLP hidden width.
struct block_dims {
    index_t n, t, c, heads, hidden;
    index_t rows() const { return n * t; }
    attention_dims attn() const { return {n, t, c, heads}; }
    mlp_dims mlp() const { return {n * t, c, hidden}; }
};

/// Offsets of one block's tensors in a parameter table.
struct vit_block_layout {
    index_t norm1_w, norm1_b, qkv_w, qkv_b, proj_w, proj_b, norm2_w, norm2_b, fc1_w, fc1_b, fc2_w, fc2_b;

    /// Registers the block's parameters as `<prefix>norm1.weight`, `<prefix>attn.qkv.weight`, ...
    static vit_block_layout add(parameter_table& table, const std::string& prefix, index_t c, index_t hidden) {
        vit_block_layout l{};
        l.norm1_w = table.add(prefix + "norm1.weight", {c}, true, false);
        l.norm1_b = table.add(prefix + "norm1.bias", {c}, true, false);
        l.qkv_w = table.add(prefix + "attn.qkv.weight", {3 * c, c});
        l.qkv_b = table.add(prefix + "attn.qkv.bias", {3 * c}, true, false);
        l.proj_w = table.add(prefix + "attn.proj.weight", {c, c});
        l.proj_b = table.add(prefix + "attn.proj.bias", {c}, true, false);
        l.norm2_w = table.add(prefix + "norm2.weight", {c}, true, false);
        l.norm2_b = table.add(prefix + "norm2.bias", {c}, true, false);
        l.fc1_w = table.add(prefix + "mlp.fc1.weight", {hidden, c});
        l.fc1_b = table.add(prefix + "mlp.fc1.bias", {hidden}, true, false);
        l.fc2_w = table.add(prefix + "mlp.fc2.weight", {c, hidden});
        l.fc2_b = table.add(prefix + "mlp.fc2.bias", {c}, true, false);
        return l;
    }
};

/// Pointers to a block's tensors inside a flat buffer (values or gradients).
template <class T>
struct vit_block_tensors {
    T *norm1_w, *norm1_b, *qkv_w, *qkv_b, *proj_w, *proj_b, *norm2_w, *norm2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;

    static vit_block_tensors at(T* base, const vit_block_layout& l) {
        return {base + l.norm1_w, base + l.norm1_b, base + l.qkv_w, base + l.qkv_b,
                base + l.proj_w,  base + l.proj_b,  base + l.norm2_w, base + l.norm2_b,
                base + l.fc1_w,   base + l.fc1_b,   base + l.fc2_w,  base + l.fc2_b};
    }
    using value_type = std::remove_const_t<T>;
    attention_params<value_type> attn_p() const { return {qkv_w, qkv_b, proj_w, proj_b}; }
    attention_grads<value_type> attn_g() const { return {qkv_w, qkv_b, proj_w, proj_b}; }
    mlp_params<value_type> mlp_p() const { return {fc1_w, fc1_b, fc2_w, fc2_b}; }
    mlp_grads<value_type> mlp_g() const { return {fc1_w, fc1_b, fc2_w, fc2_b}; }
};

/// Activations one block keeps for its backward pass (the block input is owned by the caller).
/// The LayerNorm outputs are not kept: backward recomputes them from the block input / res1 and
/// the saved row statistics (one cheap pass each; saves 2 rows * c values per block).
template <class T>
struct vit_block_acts {
    T *ln1_mean, *ln1_rstd;
    attention_acts<T> attn;
    T* res1;  ///< x + attn(norm1(x))
    T *ln2_mean, *ln2_rstd;
    mlp_acts<T> mlp;

    /// Carves the regions for dims d from an arena (the same sequence sizes and hands out).
    template <class Cursor>
    static vit_block_acts take(Cursor& a, const block_dims& d) {
        const index_t m = d.rows(), c = d.c;
        vit_block_acts r{};
        r.ln1_mean = a.take(m);
        r.ln1_rstd = a.take(m);
        r.attn.qkvh = a.take(3 * m * c);
        r.attn.att = a.take(d.n * d.heads * d.t * d.t);
        r.attn.y = a.take(m * c);
        r.res1 = a.take(m * c);
        r.ln2_mean = a.take(m);
        r.ln2_rstd = a.take(m);
        r.mlp.pre = a.take(m * d.hidden);
        return r;
    }
};

/// Scratch shared by all blocks (forward and backward); sized for the largest block dims.
template <class T>
struct vit_block_scratch {
    attention_scratch<T> attn;
    T* ln;       ///< [rows, c]: a LayerNorm output (forward, and recomputed in backward)
    T* dln;      ///< [rows, c]
    T* hidden;   ///< [rows, hidden]: the GELU output, recomputed in backward
    T* dhidden;  ///< [rows, hidden]

    /// Carves scratch large enough for blocks of dims a and of dims b (encoder and decoder).
    template <class Cursor>
    static vit_block_scratch take(Cursor& cur, const block_dims& a, const block_dims& b) {
        auto mx = [](index_t x, index_t y) { return x > y ? x : y; };
        const index_t mc = mx(a.rows() * a.c, b.rows() * b.c);
        const index_t att = mx(a.n * a.heads * a.t * a.t, b.n * b.heads * b.t * b.t);
        vit_block_scratch s{};
        s.attn.qkv = cur.take(3 * mc);
        s.attn.yh = cur.take(mc);
        s.attn.datt = cur.take(att);
        s.attn.dy = cur.take(mc);
        s.attn.dqkvh = cur.take(3 * mc);
        s.ln = cur.take(mc);
        s.dln = cur.take(mc);
        s.hidden = cur.take(mx(a.rows() * a.hidden, b.rows() * b.hidden));
        s.dhidden = cur.take(mx(a.rows() * a.hidden, b.rows() * b.hidden));
        return s;
    }
    template <class Cursor>
    static vit_block_scratch take(Cursor& cur, const block_dims& d) { return take(cur, d, d); }
};

/// A counting cursor: walks the same take() sequence to size an arena.
struct arena_counter {
    arena_layout layout;
    std::nullptr_t take(index_t count) {
        layout.take(count);
        return nullptr;
    }
};

/// Forward: out [n, t, c] from x [n, t, c]; out must not alias x (x is kept for backward).
template <backend_policy B, class T>
void vit_block_forward(T* out, const T* x, const vit_block_tensors<const T>& p, const vit_block_acts<T>& a,
                       const vit_block_scratch<T>& s, const block_dims& d) {
    const index_t m = d.rows(), c = d.c;
    layer_norm_forward<B>(s.ln, a.ln1_mean, a.ln1_rstd, x, p.norm1_w, p.norm1_b, m, c);
    attention_forward<B>(a.res1, s.ln, x, p.attn_p(), a.attn, s.attn, d.attn());
    layer_norm_forward<B>(s.ln, a.ln2_mean, a.ln2_rstd, a.res1, p.norm2_w, p.norm2_b, m, c);
    mlp_forward<B>(out, s.ln, a.res1, p.mlp_p(), a.mlp, s.hidden, d.mlp());
}

/// Backward: dres [n, t, c] holds the gradient of the block output on entry and that of the block
/// input x on return (updated in place); parameter gradients accumulate into g.
template <backend_policy B, class T>
void vit_block_backward(T* dres, const vit_block_tensors<T>& g, const T* x, const vit_block_tensors<const T>& p,
                        const vit_block_acts<T>& a, const vit_block_scratch<T>& s, const block_dims& d) {
    const index_t m = d.rows(), c = d.c;
    layer_norm_recompute<B>(s.ln, a.res1, a.ln2_mean, a.ln2_rstd, p.norm2_w, p.norm2_b, m, c);
    mlp_backward<B>(s.dln, g.mlp_g(), dres, s.ln, p.mlp_p(), a.mlp, s.hidden, s.dhidden, d.mlp());
    layer_norm_backward<B>(dres, g.norm2_w, g.norm2_b, s.dln, a.res1, a.ln2_mean, a.ln2_rstd, p.norm2_w, m, c);
    layer_norm_recompute<B>(s.ln, x, a.ln1_mean, a.ln1_rstd, p.norm1_w, p.norm1_b, m, c);
    attention_backward<B>(s.dln, g.attn_g(), dres, s.ln, p.attn_p(), a.attn, s.attn, d.attn());
    layer_norm_backward<B>(dres, g.norm1_w, g.norm1_b, s.dln, x, a.ln1_mean, a.ln1_rstd, p.norm1_w, m, c);
}

}  // namespace vasomim::nn
