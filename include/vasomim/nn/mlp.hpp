#pragma once
// timm's Mlp: fc1 -> exact GELU -> fc2 (hidden width = mlp_ratio * width, 4 in the ViT).

#include "vasomim/nn/gelu.hpp"
#include "vasomim/nn/linear.hpp"

namespace vasomim::nn {

/// n rows of width c, hidden width h.
struct mlp_dims {
    index_t rows, c, hidden;
};

template <class T>
struct mlp_params {
    const T *fc1_w, *fc1_b, *fc2_w, *fc2_b;  ///< [h, c], [h], [c, h], [c]
};
template <class T>
struct mlp_grads {
    T *fc1_w, *fc1_b, *fc2_w, *fc2_b;
};
/// Activations kept for backward: the fc1 output (pre-activation) [rows, h]. The GELU output is
/// not kept: backward recomputes it from `pre` (one vectorised pass; this saves rows * h values per
/// block, ~150 MB in an MAE-B/16 step at batch 8).
template <class T>
struct mlp_acts {
    T* pre;
};

/// out = residual + fc2(gelu(fc1(x))); residual may be null or alias out. hidden [rows, h] is
/// scratch for the GELU output.
template <backend_policy B, class T>
void mlp_forward(T* out, const T* x, const T* residual, const mlp_params<T>& p, const mlp_acts<T>& acts,
                 T* hidden, const mlp_dims& d) {
    linear_forward<B>(acts.pre, x, p.fc1_w, p.fc1_b, d.rows, d.c, d.hidden);
    gelu_forward<B>(hidden, acts.pre, d.rows * d.hidden);
    linear_forward<B>(out, hidden, p.fc2_w, p.fc2_b, d.rows, d.hidden, d.c, residual);
}

/// Backward: dx [rows, c] is overwritten with the gradient of x; hidden and dhidden [rows, h] are
/// scratch.
template <backend_policy B, class T>
void mlp_backward(T* dx, const mlp_grads<T>& g, const T* dout, const T* x, const mlp_params<T>& p,
                  const mlp_acts<T>& acts, T* hidden, T* dhidden, const mlp_dims& d) {
    gelu_forward<B>(hidden, acts.pre, d.rows * d.hidden);
    linear_backward<B>(dhidden, g.fc2_w, g.fc2_b, dout, hidden, p.fc2_w, d.rows, d.hidden, d.c);
    gelu_backward<B>(dhidden, dhidden, acts.pre, d.rows * d.hidden);
    linear_backward<B>(dx, g.fc1_w, g.fc1_b, dhidden, x, p.fc1_w, d.rows, d.c, d.hidden);
}

}  // namespace vasomim::nn
