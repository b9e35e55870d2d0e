#pragma once
// The masked autoencoder of He et al. (MAE) as released: a ViT encoder on the visible patches only
// and a light decoder that predicts the pixels of every patch, trained with the masked (norm-pix)
// reconstruction loss. Parameters live in one flat buffer with timm/MAE names; activations and
// their gradients in one arena sized per batch (reserve), so a training step does not allocate.
//
// The masking itself is an input: ids_keep [n, len_keep] (visible patch indices, in the order the
// encoder sees them) and ids_restore [n, L] (the inverse of the shuffle), as MAE's random_masking
// returns them. mask[n, l] = ids_restore[n, l] >= len_keep.

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/tensor.hpp"
#include "vasomim/loss/masked_reconstruction.hpp"
#include "vasomim/model/mae_config.hpp"
#include "vasomim/model/patchify.hpp"
#include "vasomim/nn.hpp"

namespace vasomim::model {

namespace detail {

/// x[b, 0] = cls + pos[0]; x[b, 1 + j] = emb[b, ids_keep[b, j]] (emb already holds pos[1 + l]).
template <backend_policy B, class T>
void gather_visible(T* x, const T* emb, const T* cls, const T* pos, const std::int64_t* ids_keep, index_t n,
                    index_t L, index_t keep, index_t c) {
    parallel_for<B>(n * (1 + keep) * c, [=] VASOMIM_HOST_DEVICE(std::int64_t o) {
        const index_t e = o % c, j = (o / c) % (1 + keep), b = o / (c * (1 + keep));
        x[o] = j == 0 ? cls[e] + pos[e] : emb[(b * L + ids_keep[b * keep + j - 1]) * c + e];
    });
}

/// Backward of gather_visible: demb (zero where masked) and dcls += sum_b dx[b, 0].
template <backend_policy B, class T>
void gather_visible_backward(T* demb, T* dcls, const T* dx, const std::int64_t* ids_keep, index_t n, index_t L,
                             index_t keep, index_t c) {
    backend_traits<B>::fill(demb, static_cast<std::size_t>(n * L * c), T(0));
    parallel_for<B>(n * keep * c, [=] VASOMIM_HOST_DEVICE(std::int64_t o) {
        const index_t e = o % c, j = (o / c) % keep, b = o / (c * keep);
        demb[(b * L + ids_keep[b * keep + j]) * c + e] = dx[(b * (1 + keep) + 1 + j) * c + e];
    });
    parallel_for<B>(c, [=] VASOMIM_HOST_DEVICE(std::int64_t e) {
        T s = T(0);
        for (index_t b = 0; b < n; ++b) s += dx[b * (1 + keep) * c + e];
        dcls[e] += s;
    });
}

/// Decoder input: y[b, 0] = x[b, 0] + pos[0]; y[b, 1 + l] = (r = ids_restore[b, l]) < keep ?
/// x[b, 1 + r] : mask_token, plus pos[1 + l] (mask tokens appended, then unshuffled).
template <backend_policy B, class T>
void unshuffle(T* y, const T* x, const T* mask_token, const T* pos, const std::int64_t* ids_restore, index_t n,
               index_t L, index_t keep, index_t c) {
    parallel_for<B>(n * (1 + L) * c, [=] VASOMIM_HOST_DEVICE(std::int64_t o) {
        const index_t e = o % c, l = (o / c) % (1 + L), b = o / (c * (1 + L));
        T v;
        if (l == 0) {
            v = x[b * (1 + keep) * c + e];
        } else {
            const index_t r = ids_restore[b * L + l - 1];
            v = r < keep ? x[(b * (1 + keep) + 1 + r) * c + e] : mask_token[e];
        }
        y[o] = v + pos[l * c + e];
    });
}

/// Backward of unshuffle: dx [n, 1 + keep, c] overwritten, dmask_token accumulated.
template <backend_policy B, class T>
void unshuffle_backward(T* dx, T* dmask_token, const T* dy, const std::int64_t* ids_restore, index_t n, index_t L,
                        index_t keep, index_t c) {
    parallel_for<B>(n * (1 + L) * c, [=] VASOMIM_HOST_DEVICE(std::int64_t o) {
        const index_t e = o % c, l = (o / c) % (1 + L), b = o / (c * (1 + L));
        if (l == 0) {
            dx[b * (1 + keep) * c + e] = dy[o];
        } else {
            const index_t r = ids_restore[b * L + l - 1];
            if (r < keep) dx[(b * (1 + keep) + 1 + r) * c + e] = dy[o];
        }
    });
    parallel_for<B>(c, [=] VASOMIM_HOST_DEVICE(std::int64_t e) {
        T s = T(0);
        for (index_t b = 0; b < n; ++b)
            for (index_t l = 0; l < L; ++l)
                if (ids_restore[b * L + l] >= keep) s += dy[(b * (1 + L) + 1 + l) * c + e];
        dmask_token[e] += s;
    });
}

/// g[b, 1 + l, k] += extra[b, l, k]: a gradient over the patch predictions (no cls row) added to the
/// decoder head's output gradient (which has one).
template <backend_policy B, class T>
void add_patch_gradient(T* g, const T* extra, index_t n, index_t L, index_t ppc) {
    parallel_for<B>(n * L * ppc, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        const index_t k = i % ppc, r = i / ppc, b = r / L, l = r % L;
        g[(b * (1 + L) + 1 + l) * ppc + k] += extra[i];
    });
}

/// Copies the patch predictions without the cls row: out[b, l, k] = pred[b, 1 + l, k].
template <backend_policy B, class T>
void patch_predictions(T* out, const T* pred, index_t n, index_t L, index_t ppc) {
    parallel_for<B>(n * L * ppc, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        const index_t k = i % ppc, r = i / ppc, b = r / L, l = r % L;
        out[i] = pred[(b * (1 + L) + 1 + l) * ppc + k];
    });
}

/// mask[b, l] = 1 if ids_restore[b, l] >= keep (patch removed), else 0.
template <backend_policy B, class T>
void mask_from_restore(T* mask, const std::int64_t* ids_restore, index_t count, index_t keep) {
    parallel_for<B>(count, [=] VASOMIM_HOST_DEVICE(std::int64_t i) { mask[i] = ids_restore[i] >= keep ? T(1) : T(0); });
}

}  // namespace detail

/// Offsets of MAE's tensors in its parameter table.
struct mae_offsets {
    index_t cls, pos, patch_w, patch_b, norm_w, norm_b, mask_token, dec_pos, dec_embed_w, dec_embed_b, dec_norm_w,
        dec_norm_b, pred_w, pred_b;
    std::vector<nn::vit_block_layout> enc, dec;
};

/// Registers MAE's parameters in the reference (state dict) order and names.
inline mae_offsets build_mae_table(const mae_config& cfg, nn::parameter_table& t) {
    mae_offsets off{};
    const index_t E = cfg.embed_dim, D = cfg.decoder_embed_dim, L = cfg.num_patches(), p = cfg.patch_size;
    off.cls = t.add("cls_token", {1, 1, E});  // 3-D: decayed, as released (add_weight_decay)
    off.pos = t.add("pos_embed", {1, 1 + L, E}, false, false);
    off.patch_w = t.add("patch_embed.proj.weight", {E, cfg.in_chans, p, p});
    off.patch_b = t.add("patch_embed.proj.bias", {E}, true, false);
    for (index_t i = 0; i < cfg.depth; ++i)
        off.enc.push_back(nn::vit_block_layout::add(t, "blocks." + std::to_string(i) + ".", E, cfg.mlp_ratio * E));
    off.norm_w = t.add("norm.weight", {E}, true, false);
    off.norm_b = t.add("norm.bias", {E}, true, false);
    off.dec_embed_w = t.add("decoder_embed.weight", {D, E});
    off.dec_embed_b = t.add("decoder_embed.bias", {D}, true, false);
    off.mask_token = t.add("mask_token", {1, 1, D});  // decayed, as cls_token
    off.dec_pos = t.add("decoder_pos_embed", {1, 1 + L, D}, false, false);
    for (index_t i = 0; i < cfg.decoder_depth; ++i)
        off.dec.push_back(
            nn::vit_block_layout::add(t, "decoder_blocks." + std::to_string(i) + ".", D, cfg.mlp_ratio * D));
    off.dec_norm_w = t.add("decoder_norm.weight", {D}, true, false);
    off.dec_norm_b = t.add("decoder_norm.bias", {D}, true, false);
    off.pred_w = t.add("decoder_pred.weight", {cfg.patch_values(), D});
    off.pred_b = t.add("decoder_pred.bias", {cfg.patch_values()}, true, false);
    return off;
}

/// Number of values in MAE's state dict for cfg (fixed position embeddings included).
inline index_t mae_parameter_count(const mae_config& cfg) {
    nn::parameter_table t;
    build_mae_table(cfg, t);
    return t.count();
}

/// MAE on backend B with element type T (float for training, double for gradient checks).
template <backend_policy B, class T = float>
class mae {
public:
    using value_type = T;
    using index_tensor = tensor<std::int64_t, B>;

    /// Activations (and their gradients) of one batch; pointers into the arena.
    struct activations {
        T *cols, *emb;                          // [n, L, c*p*p], [n, L, E]
        std::vector<T*> enc_x;                  // depth + 1 residual streams [n, 1 + keep, E]
        std::vector<nn::vit_block_acts<T>> enc_blocks;
        T *latent, *enc_mean, *enc_rstd;        // encoder norm output [n, 1 + keep, E]
        T* dec_in;                              // decoder_embed output [n, 1 + keep, D]
        std::vector<T*> dec_x;                  // decoder_depth + 1 streams [n, 1 + L, D]
        std::vector<nn::vit_block_acts<T>> dec_blocks;
        T *dec_norm, *dec_mean, *dec_rstd;      // [n, 1 + L, D]
        T* pred;                                // decoder_pred output incl. cls row [n, 1 + L, p*p*c]
        T *patches, *target, *patch_loss, *mask, *loss_tmp;  // [n, L, ppc] x2, [n, L] x3
        nn::vit_block_scratch<T> scratch;
        // gradients of activations
        T *g_pred, *g_dec_norm, *g_dec, *g_dec_in, *g_latent, *g_enc, *g_emb;
    };

    explicit mae(const mae_config& cfg) : cfg_(cfg) {
        cfg_.validate();
        off_ = build_mae_table(cfg_, table_);
        params_ = tensor<T, B>(shape{table_.size()});
        grads_ = tensor<T, B>(shape{table_.size()});
    }

    const mae_config& config() const { return cfg_; }
    const nn::parameter_table& table() const { return table_; }
    tensor<T, B>& params() { return params_; }
    const tensor<T, B>& params() const { return params_; }
    tensor<T, B>& grads() { return grads_; }
    const tensor<T, B>& grads() const { return grads_; }
    const activations& acts() const { return acts_; }
    index_t batch() const { return n_; }
    index_t len_keep() const { return keep_; }
    /// Bytes of the activation arena for the reserved batch.
    std::size_t arena_bytes() const { return arena_.size() * sizeof(T); }

    /// MAE's initialisation: xavier_uniform for every linear weight and for the patch-embedding
    /// weight viewed as [embed, c*p*p]; zero biases; LayerNorm weight 1, bias 0; cls and mask tokens
    /// N(0, 0.02^2); fixed sin-cos position embeddings. Tensor k draws from Philox stream k of seed.
    void init(std::uint64_t seed) {
        params_.fill(T(0));
        grads_.fill(T(0));
        index_t k = 0;
        for (const auto& e : table_.entries()) {
            T* p = params_.data() + e.offset;
            const auto n = static_cast<std::size_t>(e.numel());
            const philox gen(seed, static_cast<std::uint64_t>(k++));
            const bool is_bias = e.name.ends_with(".bias");
            const bool is_norm = e.name.find("norm") != std::string::npos;
            if (e.name == "pos_embed" || e.name == "decoder_pos_embed") {
                const index_t w = e.shape[2];
                const auto host = nn::sincos_pos_embed_2d<T>(w, cfg_.grid(), cfg_.grid(), true);
                backend_traits<B>::copy_from_host(host.data(), n, p);
            } else if (e.name == "cls_token" || e.name == "mask_token") {
                fill_normal<B>(p, n, gen, 0, T(0), T(0.02));
            } else if (is_bias) {
                backend_traits<B>::fill(p, n, T(0));
            } else if (is_norm) {
                backend_traits<B>::fill(p, n, T(1));
            } else {  // weight matrix [out, in...]: fan_out = shape[0], fan_in = the rest
                const double fan_out = static_cast<double>(e.shape[0]);
                const double fan_in = static_cast<double>(e.numel()) / fan_out;
                const T a = static_cast<T>(std::sqrt(6.0 / (fan_in + fan_out)));
                fill_uniform<B>(p, n, gen, 0, -a, a);
            }
        }
    }

    void zero_grad() { grads_.fill(T(0)); }

    /// Sizes the activation arena for batch n with len_keep visible patches (no-op if unchanged).
    void reserve(index_t n, index_t len_keep) {
        if (n == n_ && len_keep == keep_ && !arena_.empty()) return;
        detail_require(n > 0 && len_keep > 0 && len_keep <= cfg_.num_patches(),
                       "mae::reserve: batch " + std::to_string(n) + " / len_keep " + std::to_string(len_keep) +
                           " invalid for " + std::to_string(cfg_.num_patches()) + " patches");
        n_ = n;
        keep_ = len_keep;
        nn::arena_counter counter;
        carve(counter);
        arena_ = tensor<T, B>(shape{counter.layout.size()});
        nn::arena_cursor<T> cur(arena_.data());
        acts_ = carve(cur);
    }

    /// Forward pass on backend pointers: imgs [n, c, H, W], ids_keep [n, len_keep], ids_restore
    /// [n, L]. Returns the loss (also kept for backward).
    T forward(const T* imgs, const std::int64_t* ids_keep, const std::int64_t* ids_restore, index_t n,
              index_t len_keep) {
        reserve(n, len_keep);
        ids_keep_ = ids_keep;
        ids_restore_ = ids_restore;
        const auto& a = acts_;
        const index_t L = cfg_.num_patches(), E = cfg_.embed_dim, D = cfg_.decoder_embed_dim, keep = keep_;
        const index_t te = 1 + keep, td = 1 + L, ppc = cfg_.patch_values();
        const T* P = params_.data();
        // encoder: patch embedding + pos, keep the visible tokens, prepend cls
        nn::patch_embed_forward<B>(a.emb, a.cols, imgs, P + off_.patch_w, P + off_.patch_b, P + off_.pos + E,
                                   pdims(), E);
        detail::gather_visible<B>(a.enc_x[0], a.emb, P + off_.cls, P + off_.pos, ids_keep, n, L, keep, E);
        for (std::size_t i = 0; i < off_.enc.size(); ++i)
            nn::vit_block_forward<B>(a.enc_x[i + 1], a.enc_x[i], nn::vit_block_tensors<const T>::at(P, off_.enc[i]),
                                     a.enc_blocks[i], a.scratch, enc_dims());
        nn::layer_norm_forward<B>(a.latent, a.enc_mean, a.enc_rstd, a.enc_x.back(), P + off_.norm_w, P + off_.norm_b,
                                  n * te, E);
        // decoder
        nn::linear_forward<B>(a.dec_in, a.latent, P + off_.dec_embed_w, P + off_.dec_embed_b, n * te, E, D);
        detail::unshuffle<B>(a.dec_x[0], a.dec_in, P + off_.mask_token, P + off_.dec_pos, ids_restore, n, L, keep, D);
        for (std::size_t i = 0; i < off_.dec.size(); ++i)
            nn::vit_block_forward<B>(a.dec_x[i + 1], a.dec_x[i], nn::vit_block_tensors<const T>::at(P, off_.dec[i]),
                                     a.dec_blocks[i], a.scratch, dec_dims());
        nn::layer_norm_forward<B>(a.dec_norm, a.dec_mean, a.dec_rstd, a.dec_x.back(), P + off_.dec_norm_w,
                                  P + off_.dec_norm_b, n * td, D);
        nn::linear_forward<B>(a.pred, a.dec_norm, P + off_.pred_w, P + off_.pred_b, n * td, D, ppc);
        // loss
        patchify<B>(a.patches, imgs, pdims());
        detail::mask_from_restore<B>(a.mask, ids_restore, n * L, keep);
        loss::reconstruction_forward<B>(a.patch_loss, a.target, a.patches, a.pred, {n, L, ppc, 1}, cfg_.norm_pix_loss);
        mask_sum_ = static_cast<T>(n * (L - keep));
        loss_ = loss::masked_mean<B>(a.loss_tmp, a.patch_loss, a.mask, n * L, mask_sum_);
        return loss_;
    }

    /// Tensor form: shapes are checked and n, len_keep taken from them.
    T forward(const tensor<T, B>& imgs, const index_tensor& ids_keep, const index_tensor& ids_restore) {
        const index_t L = cfg_.num_patches();
        detail_require(imgs.rank() == 4 && imgs.dim(1) == cfg_.in_chans && imgs.dim(2) == cfg_.img_size &&
                           imgs.dim(3) == cfg_.img_size,
                       "mae::forward: images " + imgs.shape().to_string() + " do not match the configuration");
        const index_t n = imgs.dim(0);
        detail_require(ids_keep.rank() == 2 && ids_keep.dim(0) == n && ids_restore.rank() == 2 &&
                           ids_restore.dim(0) == n && ids_restore.dim(1) == L,
                       "mae::forward: ids_keep " + ids_keep.shape().to_string() + " / ids_restore " +
                           ids_restore.shape().to_string() + " do not match " + std::to_string(n) + " images of " +
                           std::to_string(L) + " patches");
        return forward(imgs.data(), ids_keep.data(), ids_restore.data(), n, ids_keep.dim(1));
    }

    /// The encoder alone on every patch, unmasked (ids_keep = 0..L-1 in order), as timm's
    /// VisionTransformer.forward_features: the final normed tokens [n, 1 + L, E], cls token first.
    /// imgs [n, c, H, W] on the backend. Uses the arena (reserve(n, L)); backward() then needs a
    /// new forward().
    tensor<T, B> encode_all(const T* imgs, index_t n) {
        const index_t L = cfg_.num_patches(), E = cfg_.embed_dim;
        reserve(n, L);
        ids_keep_ = ids_restore_ = nullptr;
        std::vector<std::int64_t> order(static_cast<std::size_t>(n * L));
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i) % L;
        const auto ids = index_tensor::from_host(order, shape{n, L});
        const auto& a = acts_;
        const T* P = params_.data();
        nn::patch_embed_forward<B>(a.emb, a.cols, imgs, P + off_.patch_w, P + off_.patch_b, P + off_.pos + E,
                                   pdims(), E);
        detail::gather_visible<B>(a.enc_x[0], a.emb, P + off_.cls, P + off_.pos, ids.data(), n, L, L, E);
        for (std::size_t i = 0; i < off_.enc.size(); ++i)
            nn::vit_block_forward<B>(a.enc_x[i + 1], a.enc_x[i], nn::vit_block_tensors<const T>::at(P, off_.enc[i]),
                                     a.enc_blocks[i], a.scratch, enc_dims());
        tensor<T, B> out(shape{n, 1 + L, E});
        nn::layer_norm_forward<B>(out.data(), a.enc_mean, a.enc_rstd, a.enc_x.back(), P + off_.norm_w, P + off_.norm_b,
                                  n * (1 + L), E);
        return out;
    }

    /// Backward of the last forward with d(loss) = dloss; parameter gradients accumulate.
    /// dpred_extra (optional, [n, L, p*p*c] on the backend) is a further gradient with respect to
    /// the patch predictions, added to the reconstruction loss's (the consistency loss uses it).
    /// `final_from(k)`, when given, is called as the backward pass goes, each time the gradients at
    /// offsets [k, size) of the buffer are final (k decreasing to 0): data parallelism starts
    /// averaging them while the rest of the backward pass runs (dist::overlapped_gradient_sum).
    void backward(T dloss = T(1), const T* dpred_extra = nullptr, const std::function<void(index_t)>& final_from = {}) {
        auto mark_final = [&](index_t k) {
            if (final_from) final_from(k);
        };
        detail_require(ids_keep_ != nullptr, "mae::backward called before forward");
        const auto& a = acts_;
        const index_t n = n_, L = cfg_.num_patches(), E = cfg_.embed_dim, D = cfg_.decoder_embed_dim, keep = keep_;
        const index_t te = 1 + keep, td = 1 + L, ppc = cfg_.patch_values();
        const T* P = params_.data();
        T* G = grads_.data();
        loss::reconstruction_backward<B>(a.g_pred, a.pred, a.target, a.mask, {n, L, ppc, 1}, mask_sum_, dloss);
        if (dpred_extra) detail::add_patch_gradient<B>(a.g_pred, dpred_extra, n, L, ppc);
        nn::linear_backward<B>(a.g_dec_norm, G + off_.pred_w, G + off_.pred_b, a.g_pred, a.dec_norm, P + off_.pred_w,
                               n * td, D, ppc);
        backend_traits<B>::fill(a.g_dec, static_cast<std::size_t>(n * td * D), T(0));
        nn::layer_norm_backward<B>(a.g_dec, G + off_.dec_norm_w, G + off_.dec_norm_b, a.g_dec_norm, a.dec_x.back(),
                                   a.dec_mean, a.dec_rstd, P + off_.dec_norm_w, n * td, D);
        mark_final(off_.dec_norm_w);
        for (std::size_t i = off_.dec.size(); i-- > 0;) {
            nn::vit_block_backward<B>(a.g_dec, nn::vit_block_tensors<T>::at(G, off_.dec[i]), a.dec_x[i],
                                      nn::vit_block_tensors<const T>::at(P, off_.dec[i]), a.dec_blocks[i], a.scratch,
                                      dec_dims());
            mark_final(off_.dec[i].norm1_w);
        }
        detail::unshuffle_backward<B>(a.g_dec_in, G + off_.mask_token, a.g_dec, ids_restore_, n, L, keep, D);
        nn::linear_backward<B>(a.g_latent, G + off_.dec_embed_w, G + off_.dec_embed_b, a.g_dec_in, a.latent,
                               P + off_.dec_embed_w, n * te, E, D);
        mark_final(off_.dec_embed_w);
        backend_traits<B>::fill(a.g_enc, static_cast<std::size_t>(n * te * E), T(0));
        nn::layer_norm_backward<B>(a.g_enc, G + off_.norm_w, G + off_.norm_b, a.g_latent, a.enc_x.back(), a.enc_mean,
                                   a.enc_rstd, P + off_.norm_w, n * te, E);
        mark_final(off_.norm_w);
        for (std::size_t i = off_.enc.size(); i-- > 0;) {
            nn::vit_block_backward<B>(a.g_enc, nn::vit_block_tensors<T>::at(G, off_.enc[i]), a.enc_x[i],
                                      nn::vit_block_tensors<const T>::at(P, off_.enc[i]), a.enc_blocks[i], a.scratch,
                                      enc_dims());
            mark_final(off_.enc[i].norm1_w);
        }
        detail::gather_visible_backward<B>(a.g_emb, G + off_.cls, a.g_enc, ids_keep_, n, L, keep, E);
        nn::patch_embed_backward<B>(G + off_.patch_w, G + off_.patch_b, a.g_emb, a.cols, pdims(), E);
        mark_final(0);
    }

    T last_loss() const { return loss_; }

    /// Host copy of the prediction without the cls row, [n, L, p*p*c] as MAE returns it.
    std::vector<T> prediction() const {
        const index_t L = cfg_.num_patches(), ppc = cfg_.patch_values();
        const auto full = host_copy(acts_.pred, n_ * (1 + L) * ppc);
        std::vector<T> out;
        out.reserve(static_cast<std::size_t>(n_ * L * ppc));
        for (index_t b = 0; b < n_; ++b)
            out.insert(out.end(), full.begin() + (b * (1 + L) + 1) * ppc, full.begin() + (b + 1) * (1 + L) * ppc);
        return out;
    }
    /// Host copy of `count` values of an activation pointer.
    std::vector<T> host_copy(const T* p, index_t count) const {
        std::vector<T> h(static_cast<std::size_t>(count));
        backend_traits<B>::copy_to_host(p, h.size(), h.data());
        return h;
    }
    /// Host copy of one named parameter (or of its gradient).
    std::vector<T> parameter(const std::string& name, bool gradient = false) const {
        const auto& e = table_.find(name);
        return host_copy((gradient ? grads_.data() : params_.data()) + e.offset, e.numel());
    }
    /// Overwrites one named parameter from host values (sizes must agree).
    void set_parameter(const std::string& name, const std::vector<T>& values) {
        const auto& e = table_.find(name);
        detail_require(static_cast<index_t>(values.size()) == e.numel(),
                       "mae::set_parameter: " + std::to_string(values.size()) + " values for '" + name + "' of shape " +
                           e.shape.to_string());
        backend_traits<B>::copy_from_host(values.data(), values.size(), params_.data() + e.offset);
    }

    nn::block_dims enc_dims() const {
        return {n_, 1 + keep_, cfg_.embed_dim, cfg_.num_heads, cfg_.mlp_ratio * cfg_.embed_dim};
    }
    nn::block_dims dec_dims() const {
        return {n_, 1 + cfg_.num_patches(), cfg_.decoder_embed_dim, cfg_.decoder_num_heads,
                cfg_.mlp_ratio * cfg_.decoder_embed_dim};
    }
    nn::patch_dims pdims() const { return {n_, cfg_.in_chans, cfg_.img_size, cfg_.img_size, cfg_.patch_size}; }

private:
    static void detail_require(bool ok, const std::string& what) {
        if (!ok) throw shape_error(what);
    }

    template <class Cursor>
    activations carve(Cursor& cur) const {
        const index_t n = n_, L = cfg_.num_patches(), E = cfg_.embed_dim, D = cfg_.decoder_embed_dim;
        const index_t te = 1 + keep_, td = 1 + L, ppc = cfg_.patch_values();
        activations a{};
        a.cols = cur.take(n * L * ppc);
        a.emb = cur.take(n * L * E);
        for (index_t i = 0; i <= cfg_.depth; ++i) a.enc_x.push_back(cur.take(n * te * E));
        for (index_t i = 0; i < cfg_.depth; ++i) a.enc_blocks.push_back(nn::vit_block_acts<T>::take(cur, enc_dims()));
        a.latent = cur.take(n * te * E);
        a.enc_mean = cur.take(n * te);
        a.enc_rstd = cur.take(n * te);
        a.dec_in = cur.take(n * te * D);
        for (index_t i = 0; i <= cfg_.decoder_depth; ++i) a.dec_x.push_back(cur.take(n * td * D));
        for (index_t i = 0; i < cfg_.decoder_depth; ++i)
            a.dec_blocks.push_back(nn::vit_block_acts<T>::take(cur, dec_dims()));
        a.dec_norm = cur.take(n * td * D);
        a.dec_mean = cur.take(n * td);
        a.dec_rstd = cur.take(n * td);
        a.pred = cur.take(n * td * ppc);
        a.patches = cur.take(n * L * ppc);
        a.target = cur.take(n * L * ppc);
        a.patch_loss = cur.take(n * L);
        a.mask = cur.take(n * L);
        a.loss_tmp = cur.take(n * L);
        a.scratch = nn::vit_block_scratch<T>::take(cur, enc_dims(), dec_dims());
        a.g_pred = cur.take(n * td * ppc);
        a.g_dec_norm = cur.take(n * td * D);
        a.g_dec = cur.take(n * td * D);
        a.g_dec_in = cur.take(n * te * D);
        a.g_latent = cur.take(n * te * E);
        a.g_enc = cur.take(n * te * E);
        a.g_emb = cur.take(n * L * E);
        return a;
    }

    mae_config cfg_;
    nn::parameter_table table_;
    mae_offsets off_{};
    tensor<T, B> params_, grads_, arena_;
    activations acts_{};
    index_t n_ = 0, keep_ = 0;
    const std::int64_t* ids_keep_ = nullptr;
    const std::int64_t* ids_restore_ = nullptr;
    T loss_ = T(0), mask_sum_ = T(0);
};

}  // namespace vasomim::model
