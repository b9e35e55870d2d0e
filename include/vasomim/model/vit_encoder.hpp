#pragma once
// The ViT encoder of a pre-training configuration on every patch (no masking), with forward and
// backward, for fine-tuning (model/segmentation_model.hpp): timm's VisionTransformer.forward_features
//   x = [cls + pos[0]; patch_embed(img) + pos[1:]] -> blocks -> LayerNorm,
// the same layers and the same timm names as the MAE encoder (cls_token, pos_embed,
// patch_embed.proj.*, blocks.i.*, norm.*), but the position embedding is a trainable parameter (as in
// MAE's fine-tuning models_vit.py) and may be resampled to another grid (resample_abs_pos_embed).
// The encoder registers its tensors in a caller's parameter table and carves its activations from a
// caller's arena, so that a model keeps one flat parameter buffer and one arena (DESIGN section 6).
// Drop path (stochastic depth, timm's DropPath with scale_by_keep): set_drop_path(rate, seed) gives
// block i the rate rate * i / (depth - 1) (timm's torch.linspace(0, drop_path_rate, depth)); a
// forward with a drop_path_key drops each residual branch (attention, MLP) of each sample with that
// rate and scales kept ones by 1 / (1 - rate). The draws come from Philox stream `step` of the seed at
// position (sample * depth + block) * 2 + branch, sample = first_sample + b (the global sample index:
// the same masks whatever the number of ranks). Without a key (evaluation) nothing is dropped.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/error.hpp"
#include "vasomim/core/philox.hpp"
#include "vasomim/model/export.hpp"
#include "vasomim/nn.hpp"

namespace vasomim::model {

/// Offsets of the encoder's tensors in a parameter table.
struct vit_encoder_offsets {
    index_t cls = 0, pos = 0, patch_w = 0, patch_b = 0, norm_w = 0, norm_b = 0;
    std::vector<nn::vit_block_layout> blocks;
};

/// Registers the encoder's tensors in timm's order and names. pos_embed is trainable; weight decay
/// follows the released add_weight_decay rule (DESIGN 4.5: not for 1-D tensors and biases).
inline vit_encoder_offsets add_vit_encoder(const vit_encoder_config& c, nn::parameter_table& t) {
    vit_encoder_offsets o;
    const index_t E = c.embed_dim, p = c.patch_size;
    o.cls = t.add("cls_token", {1, 1, E});
    o.pos = t.add("pos_embed", {1, 1 + c.num_patches(), E});
    o.patch_w = t.add("patch_embed.proj.weight", {E, c.in_chans, p, p});
    o.patch_b = t.add("patch_embed.proj.bias", {E}, true, false);
    for (index_t i = 0; i < c.depth; ++i)
        o.blocks.push_back(nn::vit_block_layout::add(t, "blocks." + std::to_string(i) + ".", E, c.mlp_ratio * E));
    o.norm_w = t.add("norm.weight", {E}, true, false);
    o.norm_b = t.add("norm.bias", {E}, true, false);
    return o;
}

/// Throws config_error naming the first field of `c` that cannot make a ViT.
inline void validate(const vit_encoder_config& c, const std::string& what) {
    auto req = [&](bool ok, const std::string& s) {
        if (!ok) throw config_error(what + ": " + s);
    };
    req(c.img_size > 0 && c.patch_size > 0 && c.in_chans > 0 && c.embed_dim > 0 && c.depth >= 0 && c.mlp_ratio > 0,
        "sizes must be positive");
    req(c.img_size % c.patch_size == 0, "patch size " + std::to_string(c.patch_size) + " does not divide image size " +
                                            std::to_string(c.img_size));
    req(c.num_heads > 0 && c.embed_dim % c.num_heads == 0, "embed_dim " + std::to_string(c.embed_dim) +
                                                               " is not divisible by num_heads " +
                                                               std::to_string(c.num_heads));
    req(c.embed_dim % 4 == 0, "embed_dim must be divisible by 4 for the 2-D sin-cos position embeddings");
}

/// Bicubic resampling of an absolute position embedding [prefix + old_h * old_w, dim] (host, row
/// major) to [prefix + new_h * new_w, dim], the prefix (cls) rows kept: torch's
/// F.interpolate(mode='bicubic', align_corners=False) on the grid as MAE's interpolate_pos_embed and
/// timm's resample_abs_pos_embed (antialias=False) do it: a = -0.75, source coordinate
/// (x + 0.5) * in / out - 0.5, taps clamped to the border. Computed in double.
template <class T>
std::vector<T> resample_abs_pos_embed(const std::vector<T>& pos, index_t dim, index_t old_h, index_t old_w,
                                      index_t new_h, index_t new_w, index_t prefix = 1) {
    vasomim::detail::require<shape_error>(
        dim > 0 && old_h > 0 && old_w > 0 && new_h > 0 && new_w > 0 && prefix >= 0 &&
            static_cast<index_t>(pos.size()) == (prefix + old_h * old_w) * dim,
        "resample_abs_pos_embed: " + std::to_string(pos.size()) + " values are not " + std::to_string(prefix) + " + " +
            std::to_string(old_h) + " x " + std::to_string(old_w) + " rows of width " + std::to_string(dim));
    struct taps {
        index_t at[4];
        double w[4];
    };
    auto axis = [](index_t in, index_t out) {
        constexpr double A = -0.75;
        auto near = [](double x) { return ((A + 2) * x - (A + 3)) * x * x + 1; };       // |x| <= 1
        auto far = [](double x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; };  // 1 < |x| < 2
        std::vector<taps> r(static_cast<std::size_t>(out));
        const double scale = static_cast<double>(in) / static_cast<double>(out);
        for (index_t x = 0; x < out; ++x) {
            const double src = scale * (static_cast<double>(x) + 0.5) - 0.5;  // not clamped (cubic)
            const double f = std::floor(src), t = src - f;
            const auto i0 = static_cast<index_t>(f);
            auto& k = r[static_cast<std::size_t>(x)];
            k.w[0] = far(t + 1);
            k.w[1] = near(t);
            k.w[2] = near(1 - t);
            k.w[3] = far(2 - t);
            for (index_t j = 0; j < 4; ++j) k.at[j] = std::clamp<index_t>(i0 - 1 + j, 0, in - 1);
        }
        return r;
    };
    const auto ty = axis(old_h, new_h), tx = axis(old_w, new_w);
    std::vector<T> out(static_cast<std::size_t>((prefix + new_h * new_w) * dim));
    std::copy(pos.begin(), pos.begin() + prefix * dim, out.begin());
    std::vector<double> row(static_cast<std::size_t>(dim));
    for (index_t y = 0; y < new_h; ++y)
        for (index_t x = 0; x < new_w; ++x) {
            std::fill(row.begin(), row.end(), 0.0);
            const auto& ky = ty[static_cast<std::size_t>(y)];
            const auto& kx = tx[static_cast<std::size_t>(x)];
            for (int i = 0; i < 4; ++i) {
                for (int j = 0; j < 4; ++j) {
                    const double w = ky.w[i] * kx.w[j];
                    const T* src = pos.data() + (prefix + ky.at[i] * old_w + kx.at[j]) * dim;
                    for (index_t e = 0; e < dim; ++e) row[static_cast<std::size_t>(e)] += w * static_cast<double>(src[e]);
                }
            }
            T* dst = out.data() + (prefix + y * new_w + x) * dim;
            for (index_t e = 0; e < dim; ++e) dst[e] = static_cast<T>(row[static_cast<std::size_t>(e)]);
        }
    return out;
}

namespace detail {

/// x[b, 0] = cls + pos[0]; x[b, 1 + l] = emb[b, l] (emb already holds pos[1 + l]).
template <backend_policy B, class T>
void prepend_cls(T* x, const T* emb, const T* cls, const T* pos, index_t n, index_t L, index_t c) {
    parallel_for<B>(n * (1 + L) * c, [=] VASOMIM_HOST_DEVICE(std::int64_t o) {
        const index_t e = o % c, j = (o / c) % (1 + L), b = o / (c * (1 + L));
        x[o] = j == 0 ? cls[e] + pos[e] : emb[(b * L + j - 1) * c + e];
    });
}

/// Backward of prepend_cls and of the position embedding added in the patch embedding: demb[b, l] =
/// dx[b, 1 + l]; dcls += sum_b dx[b, 0]; dpos[j] += sum_b dx[b, j] for every row j.
template <backend_policy B, class T>
void prepend_cls_backward(T* demb, T* dcls, T* dpos, const T* dx, index_t n, index_t L, index_t c) {
    parallel_for<B>(n * L * c, [=] VASOMIM_HOST_DEVICE(std::int64_t o) {
        const index_t e = o % c, l = (o / c) % L, b = o / (c * L);
        demb[o] = dx[(b * (1 + L) + 1 + l) * c + e];
    });
    parallel_for<B>((1 + L) * c, [=] VASOMIM_HOST_DEVICE(std::int64_t o) {
        T s = T(0);
        for (index_t b = 0; b < n; ++b) s += dx[b * (1 + L) * c + o];
        dpos[o] += s;
        if (o < c) dcls[o] += s;
    });
}

/// y[r, :] = scale[r / per] * x[r, :] over rows of width c (per rows per sample); y may alias x.
template <backend_policy B, class T>
void scale_rows_by_sample(T* y, const T* x, const T* scale, index_t rows, index_t per, index_t c) {
    parallel_for<B>(rows * c, [=] VASOMIM_HOST_DEVICE(std::int64_t i) { y[i] = scale[(i / c) / per] * x[i]; });
}

/// y[r, :] = x[r, :] + scale[r / per] * v[r, :] (y may alias x).
template <backend_policy B, class T>
void add_scaled_by_sample(T* y, const T* x, const T* v, const T* scale, index_t rows, index_t per, index_t c) {
    parallel_for<B>(rows * c, [=] VASOMIM_HOST_DEVICE(std::int64_t i) { y[i] = x[i] + scale[(i / c) / per] * v[i]; });
}

/// y[i] += x[i].
template <backend_policy B, class T>
void add_into(T* y, const T* x, index_t count) {
    parallel_for<B>(count, [=] VASOMIM_HOST_DEVICE(std::int64_t i) { y[i] += x[i]; });
}

}  // namespace detail

/// Which random draws a training forward's drop path uses (see the top of this file).
struct drop_path_key {
    std::uint64_t step = 0;          ///< Philox stream: one per optimiser step
    std::uint64_t first_sample = 0;  ///< global index of the batch's first sample
};

/// The encoder on backend B with element type T. Parameters are read from (and gradients written
/// to) the caller's flat buffers at the offsets registered by the constructor.
template <backend_policy B, class T = float>
class vit_encoder {
public:
    /// Activations of one batch (pointers into the caller's arena).
    struct activations {
        T *cols = nullptr, *emb = nullptr;       // [n, L, c*p*p], [n, L, E]
        std::vector<T*> x;                       // depth + 1 residual streams [n, 1 + L, E]; x[i + 1] = block i's output
        std::vector<nn::vit_block_acts<T>> blocks;
        T *tokens = nullptr, *mean = nullptr, *rstd = nullptr;  // final LayerNorm output [n, 1 + L, E]
        nn::vit_block_scratch<T> scratch{};
        T *g_x = nullptr, *g_emb = nullptr;      // [n, 1 + L, E], [n, L, E]
        T* branch = nullptr;                     // [n, 1 + L, E]: a residual branch's output or gradient (drop path)
        T* keep = nullptr;                       // [depth, 2, n]: drop path factors of the last forward (0 or 1 / (1 - rate))
    };

    vit_encoder(const vit_encoder_config& c, nn::parameter_table& table) : cfg_(c) {
        validate(c, "vit_encoder");
        off_ = add_vit_encoder(c, table);
    }

    const vit_encoder_config& config() const { return cfg_; }
    const vit_encoder_offsets& offsets() const { return off_; }
    const activations& acts() const { return acts_; }
    index_t batch() const { return n_; }
    index_t tokens_per_image() const { return 1 + cfg_.num_patches(); }

    /// Stochastic depth for training forwards (rate 0: none); block i gets rate * i / (depth - 1).
    void set_drop_path(double rate, std::uint64_t seed) {
        vasomim::detail::require<config_error>(rate >= 0.0 && rate < 1.0, "vit_encoder: drop path rate " +
                                                                              std::to_string(rate) + " not in [0, 1)");
        drop_rate_ = rate;
        drop_seed_ = seed;
    }
    double drop_path_rate() const { return drop_rate_; }
    /// Block i's drop path rate.
    double block_drop_rate(index_t i) const {
        return cfg_.depth > 1 ? drop_rate_ * static_cast<double>(i) / static_cast<double>(cfg_.depth - 1) : 0.0;
    }
    /// Host copy of the factors the last forward applied, [depth][branch][sample] flattened (all 1
    /// without drop path).
    std::vector<T> drop_path_factors() const {
        std::vector<T> h(static_cast<std::size_t>(cfg_.depth * 2 * n_));
        if (!h.empty()) backend_traits<B>::copy_to_host(acts_.keep, h.size(), h.data());
        return h;
    }

    /// Carves the activations of a batch of n from `cur` (a counting cursor first, then the arena).
    template <class Cursor>
    activations carve(Cursor& cur, index_t n) const {
        const index_t L = cfg_.num_patches(), E = cfg_.embed_dim, t = 1 + L;
        const auto d = dims(n);
        activations a;
        a.cols = cur.take(n * L * cfg_.in_chans * cfg_.patch_size * cfg_.patch_size);
        a.emb = cur.take(n * L * E);
        for (index_t i = 0; i <= cfg_.depth; ++i) a.x.push_back(cur.take(n * t * E));
        for (index_t i = 0; i < cfg_.depth; ++i) a.blocks.push_back(nn::vit_block_acts<T>::take(cur, d));
        a.tokens = cur.take(n * t * E);
        a.mean = cur.take(n * t);
        a.rstd = cur.take(n * t);
        a.scratch = nn::vit_block_scratch<T>::take(cur, d);
        a.g_x = cur.take(n * t * E);
        a.g_emb = cur.take(n * L * E);
        a.branch = cur.take(n * t * E);
        a.keep = cur.take(cfg_.depth * 2 * n);
        return a;
    }
    /// Takes the activations carved (from the arena) for batch n.
    void bind(const activations& a, index_t n) {
        acts_ = a;
        n_ = n;
    }

    /// Forward on imgs [n, c, H, W] (the bound batch): acts().tokens holds the final normed tokens.
    /// With a key (training) and a drop path rate, residual branches are dropped per sample.
    void forward(const T* P, const T* imgs, const drop_path_key* key = nullptr) {
        const auto& a = acts_;
        const index_t L = cfg_.num_patches(), E = cfg_.embed_dim;
        dropping_ = key != nullptr && drop_rate_ > 0.0 && cfg_.depth > 1;
        draw_drop_path(key);
        nn::patch_embed_forward<B>(a.emb, a.cols, imgs, P + off_.patch_w, P + off_.patch_b, P + off_.pos + E, pdims(),
                                   E);
        detail::prepend_cls<B>(a.x[0], a.emb, P + off_.cls, P + off_.pos, n_, L, E);
        for (std::size_t i = 0; i < off_.blocks.size(); ++i) {
            const auto p = nn::vit_block_tensors<const T>::at(P, off_.blocks[i]);
            if (dropping_) block_forward_dropping(i, p);
            else nn::vit_block_forward<B>(a.x[i + 1], a.x[i], p, a.blocks[i], a.scratch, dims(n_));
        }
        nn::layer_norm_forward<B>(a.tokens, a.mean, a.rstd, a.x.back(), P + off_.norm_w, P + off_.norm_b,
                                  n_ * (1 + L), E);
    }

    /// Backward of the last forward: g_tokens is the gradient of the final tokens; g_hidden (optional,
    /// per block, entries may be null) the gradients of the block outputs x[i + 1] that a decoder
    /// reading intermediate states adds. Parameter gradients accumulate into G.
    void backward(const T* P, T* G, const T* g_tokens, const std::vector<const T*>& g_hidden = {}) {
        const auto& a = acts_;
        const index_t L = cfg_.num_patches(), E = cfg_.embed_dim, rows = n_ * (1 + L);
        backend_traits<B>::fill(a.g_x, static_cast<std::size_t>(rows * E), T(0));
        nn::layer_norm_backward<B>(a.g_x, G + off_.norm_w, G + off_.norm_b, g_tokens, a.x.back(), a.mean, a.rstd,
                                   P + off_.norm_w, rows, E);
        for (std::size_t i = off_.blocks.size(); i-- > 0;) {
            if (i < g_hidden.size() && g_hidden[i]) detail::add_into<B>(a.g_x, g_hidden[i], rows * E);
            const auto g = nn::vit_block_tensors<T>::at(G, off_.blocks[i]);
            const auto p = nn::vit_block_tensors<const T>::at(P, off_.blocks[i]);
            if (dropping_) block_backward_dropping(i, g, p);
            else nn::vit_block_backward<B>(a.g_x, g, a.x[i], p, a.blocks[i], a.scratch, dims(n_));
        }
        detail::prepend_cls_backward<B>(a.g_emb, G + off_.cls, G + off_.pos, a.g_x, n_, L, E);
        nn::patch_embed_backward<B>(G + off_.patch_w, G + off_.patch_b, a.g_emb, a.cols, pdims(), E);
    }

    nn::block_dims dims(index_t n) const {
        return {n, 1 + cfg_.num_patches(), cfg_.embed_dim, cfg_.num_heads, cfg_.mlp_ratio * cfg_.embed_dim};
    }
    nn::patch_dims pdims() const { return {n_, cfg_.in_chans, cfg_.img_size, cfg_.img_size, cfg_.patch_size}; }

private:
    /// The factors of every (block, branch, sample) into acts().keep.
    void draw_drop_path(const drop_path_key* key) {
        const index_t depth = cfg_.depth, n = n_;
        if (depth == 0) return;
        std::vector<T> h(static_cast<std::size_t>(depth * 2 * n), T(1));
        if (dropping_) {
            const philox gen(drop_seed_, key->step);
            for (index_t i = 0; i < depth; ++i) {
                const double r = block_drop_rate(i);
                for (index_t br = 0; br < 2; ++br)
                    for (index_t b = 0; b < n; ++b) {
                        const auto sample = key->first_sample + static_cast<std::uint64_t>(b);
                        const double u = gen.uniform_double((sample * static_cast<std::uint64_t>(depth) +
                                                             static_cast<std::uint64_t>(i)) * 2 + static_cast<std::uint64_t>(br));
                        h[static_cast<std::size_t>((i * 2 + br) * n + b)] =
                            u < r ? T(0) : static_cast<T>(1.0 / (1.0 - r));
                    }
            }
        }
        backend_traits<B>::copy_from_host(h.data(), h.size(), acts_.keep);
    }

    /// timm's Block with DropPath on both branches: x1 = x + k1 * attn(LN1(x)); out = x1 + k2 * mlp(LN2(x1)).
    void block_forward_dropping(std::size_t i, const nn::vit_block_tensors<const T>& p) {
        const auto& a = acts_;
        const auto& ba = a.blocks[i];
        const auto& s = a.scratch;
        const auto d = dims(n_);
        const index_t m = d.rows(), c = d.c, t = d.t;
        const T* k = a.keep + static_cast<index_t>(i) * 2 * n_;
        nn::layer_norm_forward<B>(s.ln, ba.ln1_mean, ba.ln1_rstd, a.x[i], p.norm1_w, p.norm1_b, m, c);
        nn::attention_forward<B>(a.branch, s.ln, static_cast<const T*>(nullptr), p.attn_p(), ba.attn, s.attn, d.attn());
        detail::add_scaled_by_sample<B>(ba.res1, a.x[i], a.branch, k, m, t, c);
        nn::layer_norm_forward<B>(s.ln, ba.ln2_mean, ba.ln2_rstd, ba.res1, p.norm2_w, p.norm2_b, m, c);
        nn::mlp_forward<B>(a.branch, s.ln, static_cast<const T*>(nullptr), p.mlp_p(), ba.mlp, s.hidden, d.mlp());
        detail::add_scaled_by_sample<B>(a.x[i + 1], ba.res1, a.branch, k + n_, m, t, c);
    }

    /// Backward of block_forward_dropping: a.g_x holds the gradient of the block output on entry and
    /// that of its input on return.
    void block_backward_dropping(std::size_t i, const nn::vit_block_tensors<T>& g, const nn::vit_block_tensors<const T>& p) {
        const auto& a = acts_;
        const auto& ba = a.blocks[i];
        const auto& s = a.scratch;
        const auto d = dims(n_);
        const index_t m = d.rows(), c = d.c, t = d.t;
        const T* k = a.keep + static_cast<index_t>(i) * 2 * n_;
        nn::layer_norm_recompute<B>(s.ln, ba.res1, ba.ln2_mean, ba.ln2_rstd, p.norm2_w, p.norm2_b, m, c);
        detail::scale_rows_by_sample<B>(a.branch, a.g_x, k + n_, m, t, c);
        nn::mlp_backward<B>(s.dln, g.mlp_g(), a.branch, s.ln, p.mlp_p(), ba.mlp, s.hidden, s.dhidden, d.mlp());
        nn::layer_norm_backward<B>(a.g_x, g.norm2_w, g.norm2_b, s.dln, ba.res1, ba.ln2_mean, ba.ln2_rstd, p.norm2_w, m, c);
        nn::layer_norm_recompute<B>(s.ln, a.x[i], ba.ln1_mean, ba.ln1_rstd, p.norm1_w, p.norm1_b, m, c);
        detail::scale_rows_by_sample<B>(a.branch, a.g_x, k, m, t, c);
        nn::attention_backward<B>(s.dln, g.attn_g(), a.branch, s.ln, p.attn_p(), ba.attn, s.attn, d.attn());
        nn::layer_norm_backward<B>(a.g_x, g.norm1_w, g.norm1_b, s.dln, a.x[i], ba.ln1_mean, ba.ln1_rstd, p.norm1_w, m, c);
    }

    vit_encoder_config cfg_;
    vit_encoder_offsets off_;
    activations acts_;
    index_t n_ = 0;
    double drop_rate_ = 0.0;
    std::uint64_t drop_seed_ = 0;
    bool dropping_ = false;
};

}  // namespace vasomim::model
