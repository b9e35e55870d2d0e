#pragma once
// UNeXt-S (Valanarasu & Patel, MICCAI 2022; released archs.py, class UNext_S) restated:
//   encoder   3 conv stages  conv3x3 -> BN -> max-pool 2 -> ReLU, widths in -> 8 -> 16 -> 32
//   tokens    OverlapPatchEmbed(3x3, stride 2) + shifted-MLP block + LayerNorm, widths 64 and 128
//   decoder   conv3x3 -> BN -> bilinear x2 -> ReLU, + skip; shifted-MLP blocks after the first two
//             (widths 128 -> 64 -> 32 -> 16 -> 8 -> 8; the last stage has no BN and no skip)
//   head      1x1 conv to num_classes logits at the input resolution.
// LayerNorms use eps 1e-5 (torch default), BN momentum 0.1. Parameter names equal the PyTorch
// state_dict keys (running statistics included; num_batches_tracked, an int64 counter unused with
// momentum 0.1, is not stored). The released class hard-codes 3 input channels (the default here:
// VasoMIM applies it to the 3-channel ImageNet-normalised image and reconstruction); in_channels 1
// is a configuration for users who segment the gray image alone.
// Input height and width must be multiples of 32.
// Under data parallelism the BatchNorms can be synchronised across ranks (synchronise_batch_norm:
// SyncBatchNorm, nn/batch_norm.hpp), so that N ranks x batch b train as one process x batch N b.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "vasomim/core/philox.hpp"
#include "vasomim/core/tensor.hpp"
#include "vasomim/nn/arena.hpp"
#include "vasomim/nn/batch_norm.hpp"
#include "vasomim/nn/conv2d.hpp"
#include "vasomim/nn/overlap_patch_embed.hpp"
#include "vasomim/nn/parameters.hpp"
#include "vasomim/nn/pooling.hpp"
#include "vasomim/nn/relu.hpp"
#include "vasomim/nn/shifted_mlp.hpp"
#include "vasomim/nn/upsample.hpp"

namespace vasomim::nn {

struct unext_config {
    index_t in_channels = 3;  ///< 3 as released; 1 for a gray-image segmentor
    index_t num_classes = 1;
};

namespace detail {
/// out[i] = a[i] + b[i] (skip connections); out may alias a.
template <backend_policy B, class T>
void add(T* out, const T* a, const T* b, index_t n) {
    parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) { out[i] = a[i] + b[i]; });
}
}  // namespace detail

/// The UNeXt-S network on backend B: named parameters and gradients in two flat buffers, activations
/// of the last forward in one arena (reallocated when the batch geometry changes).
template <backend_policy B, class T = float>
class unext {
public:
    static constexpr index_t enc[3] = {8, 16, 32};   ///< conv stage widths
    static constexpr index_t tok[2] = {64, 128};     ///< tokenised stage widths

    explicit unext(unext_config cfg = {}) : cfg_(cfg) {
        auto conv = [&](const std::string& n, index_t co, index_t ci, index_t k) {
            table_.add_auto(n + ".weight", shape{co, ci, k, k});
            table_.add_auto(n + ".bias", shape{co});
        };
        auto vec = [&](const std::string& n, index_t c) {
            table_.add_auto(n + ".weight", shape{c});
            table_.add_auto(n + ".bias", shape{c});
        };
        auto bn = [&](const std::string& n, index_t c) {
            vec(n, c);
            table_.add(n + ".running_mean", shape{c}, false, false);
            table_.add(n + ".running_var", shape{c}, false, false);
        };
        auto block = [&](const std::string& n, index_t c) {
            vec(n + ".norm2", c);
            table_.add_auto(n + ".mlp.fc1.weight", shape{c, c});
            table_.add_auto(n + ".mlp.fc1.bias", shape{c});
            conv(n + ".mlp.dwconv.dwconv", c, 1, 3);
            table_.add_auto(n + ".mlp.fc2.weight", shape{c, c});
            table_.add_auto(n + ".mlp.fc2.bias", shape{c});
        };
        // state_dict order of the released module
        conv("encoder1", 8, cfg.in_channels, 3);
        conv("encoder2", 16, 8, 3);
        conv("encoder3", 32, 16, 3);
        bn("ebn1", 8);
        bn("ebn2", 16);
        bn("ebn3", 32);
        vec("norm3", 64);
        vec("norm4", 128);
        vec("dnorm3", 64);
        vec("dnorm4", 32);
        block("block1.0", 64);
        block("block2.0", 128);
        block("dblock1.0", 64);
        block("dblock2.0", 32);
        conv("patch_embed3.proj", 64, 32, 3);
        vec("patch_embed3.norm", 64);
        conv("patch_embed4.proj", 128, 64, 3);
        vec("patch_embed4.norm", 128);
        conv("decoder1", 64, 128, 3);
        conv("decoder2", 32, 64, 3);
        conv("decoder3", 16, 32, 3);
        conv("decoder4", 8, 16, 3);
        conv("decoder5", 8, 8, 3);
        bn("dbn1", 64);
        bn("dbn2", 32);
        bn("dbn3", 16);
        bn("dbn4", 8);
        conv("final", cfg.num_classes, 8, 1);
        params_ = tensor<T, B>(shape{table_.size()});
        grads_ = tensor<T, B>(shape{table_.size()});
        resolve();
        init(0);
    }

    const unext_config& config() const { return cfg_; }
    const parameter_table& table() const { return table_; }
    tensor<T, B>& parameters() { return params_; }
    const tensor<T, B>& parameters() const { return params_; }
    tensor<T, B>& gradients() { return grads_; }
    T* param(const std::string& name) { return params_.data() + table_.find(name).offset; }
    T* grad(const std::string& name) { return grads_.data() + table_.find(name).offset; }
    void zero_grad() { grads_.fill(T(0)); }

    /// Data parallelism: in training, every BatchNorm takes its statistics over the batches of all
    /// ranks, reducing its per-channel sums through `sum` in forward and backward (SyncBatchNorm).
    /// Empty (the default): each process's own batch.
    void synchronise_batch_norm(cross_rank_sum sum) {
        bn_sum_ = std::move(sum);
        if (bn_sum_ && bn_sums_.numel() == 0) bn_sums_ = tensor<double, B>(shape{sync_batch_norm_scratch(64)});
    }

    /// The released initialisation: PyTorch's default Conv2d init (uniform +-1/sqrt(fan_in), weight
    /// and bias) for the encoder/decoder/head convolutions; timm-style _init_weights inside the
    /// shifted blocks and patch embeddings (Linear: truncated normal std 0.02, bias 0; Conv2d:
    /// normal(0, sqrt(2 / fan_out)), bias 0); norms 1 / 0; running statistics 0 / 1.
    void init(std::uint64_t seed) {
        std::vector<T> host(static_cast<std::size_t>(table_.size()), T(0));
        const philox gen(seed, 0x0e7e);
        std::uint64_t counter = 0;
        for (const auto& e : table_.entries()) {
            const auto& n = e.name;
            auto ends = [&](const std::string& s) { return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0; };
            const bool timm = n.find("block") != std::string::npos || n.find("patch_embed") != std::string::npos;
            const index_t cnt = e.numel();
            T* p = host.data() + e.offset;
            if (ends("running_var")) {
                for (index_t i = 0; i < cnt; ++i) p[i] = T(1);
            } else if (ends("running_mean")) {
            } else if (e.shape.rank() == 1 && !timm && n.find("norm") == std::string::npos &&
                       n.find("bn") == std::string::npos) {
                // conv bias under PyTorch's default init: bound 1/sqrt(fan_in) of its weight
                const auto& wshape = table_.find(n.substr(0, n.size() - 4) + "weight").shape;
                const double bound = 1.0 / std::sqrt(static_cast<double>(wshape.numel() / wshape[0]));
                for (index_t i = 0; i < cnt; ++i) p[i] = static_cast<T>(bound * (2 * gen.uniform(counter++) - 1));
            } else if (e.shape.rank() == 1) {
                const bool weight = ends("weight");
                for (index_t i = 0; i < cnt; ++i) p[i] = T(weight ? 1 : 0);
            } else if (e.shape.rank() == 2) {
                for (index_t i = 0; i < cnt; ++i) {
                    double v = 0.02 * gen.normal(counter++);
                    while (v < -2 || v > 2) v = 0.02 * gen.normal(counter++);
                    p[i] = static_cast<T>(v);
                }
            } else if (timm) {
                const double groups = n.find("dwconv") != std::string::npos ? static_cast<double>(e.shape[0]) : 1.0;
                const double fan_out = static_cast<double>(e.shape[0] * e.shape[2] * e.shape[3]) / groups;
                for (index_t i = 0; i < cnt; ++i) p[i] = static_cast<T>(std::sqrt(2.0 / fan_out) * gen.normal(counter++));
            } else {
                const double bound = 1.0 / std::sqrt(static_cast<double>(cnt / e.shape[0]));
                for (index_t i = 0; i < cnt; ++i) p[i] = static_cast<T>(bound * (2 * gen.uniform(counter++) - 1));
            }
        }
        params_ = tensor<T, B>::from_host(host, shape{table_.size()});
    }

    /// Forward of x [n, in_channels, h, w] into logits [n, num_classes, h, w]. Training uses batch
    /// statistics and updates the running ones; eval uses the running statistics. Keeps the
    /// activations for backward.
    void forward(T* logits, const T* x, index_t n, index_t h, index_t w, bool training) {
        if (h % 32 != 0 || w % 32 != 0 || n < 1)
            throw shape_error("unext: input " + std::to_string(n) + " x " + std::to_string(h) + " x " +
                              std::to_string(w) + " needs height and width divisible by 32");
        plan(n, h, w);
        training_ = training;
        x_ = x;
        const index_t H = h, W = w;
        // encoder conv stages
        const T* in = x;
        index_t cin = cfg_.in_channels, hh = H, ww = W;
        for (int s = 0; s < 3; ++s) {
            const conv2d_dims d{n, cin, hh, ww, enc[s], 3, 3, 1, 1, 1};
            conv2d_forward<B>(a_.ec[s], in, P(r_.enc[s].w), P(r_.enc[s].b), d, scratch_);
            bn_forward(r_.ebn[s], a_.eb[s], a_.ebs[s], a_.ec[s], enc[s], hh * ww);
            max_pool2x2_forward<B>(a_.ep[s], arg_[s].data(), a_.eb[s], n * enc[s], hh, ww);
            hh /= 2;
            ww /= 2;
            relu_forward<B>(a_.t[s], a_.ep[s], n * enc[s] * hh * ww);
            in = a_.t[s];
            cin = enc[s];
        }
        // tokenised stages: t3 [n,32,H/8] -> t4 [n,64,H/16] -> bottleneck [n,128,H/32]
        for (int s = 0; s < 2; ++s) {
            const conv2d_dims d = embed_dims(s);
            const token_dims td{n, d.oh(), d.ow(), tok[s]};
            overlap_embed_forward<B>(a_.etok[s], s == 0 ? a_.t[2] : a_.t4, embed_params(r_.pe[s]), a_.pe[s], d, scratch_);
            shifted_block_forward<B>(a_.eblk[s], a_.etok[s], block_params(r_.eblk[s]), a_.eba[s], td);
            layer_norm_forward<B>(a_.enorm[s], a_.enm[s], a_.ens[s], a_.eblk[s], P(r_.norm[s].w), P(r_.norm[s].b),
                                  td.rows(), tok[s], unext_layer_norm_eps);
            detail::tokens_to_image<B>(s == 0 ? a_.t4 : a_.bott, a_.enorm[s], n, tok[s], td.h * td.w);
        }
        // decoder
        const T* cur = a_.bott;
        index_t ch = 128;
        hh = H / 32;
        ww = W / 32;
        for (int s = 0; s < 5; ++s) {
            const index_t co = dec_out(s);
            const conv2d_dims d{n, ch, hh, ww, co, 3, 3, 1, 1, 1};
            conv2d_forward<B>(a_.dc[s], cur, P(r_.dec[s].w), P(r_.dec[s].b), d, scratch_);
            const T* pre = a_.dc[s];
            if (s < 4) {
                bn_forward(r_.dbn[s], a_.db[s], a_.dbs[s], a_.dc[s], co, hh * ww);
                pre = a_.db[s];
            }
            upsample2x_forward<B>(a_.du[s], pre, n * co, hh, ww);
            hh *= 2;
            ww *= 2;
            const index_t m = n * co * hh * ww;
            relu_forward<B>(a_.dr[s], a_.du[s], m);
            ch = co;
            if (s == 4) break;
            detail::add<B>(a_.ds[s], a_.dr[s], skip(s), m);
            cur = a_.ds[s];
            if (s < 2) {
                const token_dims td{n, hh, ww, co};
                detail::image_to_tokens<B>(a_.dtok[s], a_.ds[s], n, co, hh * ww);
                shifted_block_forward<B>(a_.dblk[s], a_.dtok[s], block_params(r_.dblk[s]), a_.dba[s], td);
                layer_norm_forward<B>(a_.dnorm[s], a_.dnm[s], a_.dns[s], a_.dblk[s], P(r_.dnorm[s].w),
                                      P(r_.dnorm[s].b), td.rows(), co, unext_layer_norm_eps);
                detail::tokens_to_image<B>(a_.dimg[s], a_.dnorm[s], n, co, hh * ww);
                cur = a_.dimg[s];
            }
        }
        const conv2d_dims fd{n, 8, H, W, cfg_.num_classes, 1, 1, 1, 0, 1};
        conv2d_forward<B>(logits, a_.dr[4], P(r_.fin.w), P(r_.fin.b), fd, scratch_);
    }

    /// Backward of the last forward: parameter gradients accumulate into gradients(); dx (may be
    /// null) is overwritten with the gradient of the input.
    void backward(T* dx, const T* dlogits) {
        const index_t n = n_, H = h_, W = w_;
        T* gA = ga_.data();
        T* gB = gb_.data();
        // head and last decoder stage (no BN, no skip)
        const conv2d_dims fd{n, 8, H, W, cfg_.num_classes, 1, 1, 1, 0, 1};
        conv2d_backward<B>(gA, G(r_.fin.w), G(r_.fin.b), dlogits, a_.dr[4], P(r_.fin.w), fd, scratch_);
        index_t hh = H, ww = W;
        for (int s = 4; s >= 0; --s) {
            const index_t co = dec_out(s), ci = s == 0 ? 128 : dec_out(s - 1);
            // gA holds the gradient of the stage output (after the skip add for s < 4)
            if (s < 4) backend_traits<B>::copy(gA, static_cast<std::size_t>(n * co * hh * ww), gskip(s));
            relu_backward<B>(gA, gA, a_.dr[s], n * co * hh * ww);
            upsample2x_backward<B>(gB, gA, n * co, hh / 2, ww / 2);
            hh /= 2;
            ww /= 2;
            if (s < 4) bn_backward(r_.dbn[s], gB, gB, a_.dc[s], a_.dbs[s], co, hh * ww);
            const T* in = s == 0 ? a_.bott : (s <= 2 ? a_.dimg[s - 1] : a_.ds[s - 1]);
            const conv2d_dims d{n, ci, hh, ww, co, 3, 3, 1, 1, 1};
            conv2d_backward<B>(gA, G(r_.dec[s].w), s < 4 ? bn_fed_bias_grad(r_.dec[s]) : G(r_.dec[s].b), gB, in, P(r_.dec[s].w), d,
                               scratch_);
            if (s >= 1 && s <= 2) {  // through dnorm and dblock of the previous stage
                const int k = s - 1;
                const token_dims td{n, hh, ww, ci};
                tokens_block_backward(gA, gB, r_.dblk[k], r_.dnorm[k], a_.dblk[k], a_.dtok[k], a_.dnm[k], a_.dns[k], a_.dba[k], td);
                detail::tokens_to_image<B>(gA, gB, n, ci, hh * ww);
            }
        }
        // gA: gradient of the bottleneck image [n,128,H/32]; back through the tokenised stages
        for (int s = 1; s >= 0; --s) {
            const conv2d_dims d = embed_dims(s);
            const token_dims td{n, d.oh(), d.ow(), tok[s]};
            T* gimg = s == 1 ? gA : gskip(0);  // gradient of this stage's output image
            tokens_block_backward(gimg, gB, r_.eblk[s], r_.norm[s], a_.eblk[s], a_.etok[s], a_.enm[s], a_.ens[s], a_.eba[s], td);
            // gB now holds the gradient of the embedding tokens; the embedding input's gradient
            // accumulates onto the skip gradient of t4 (s = 1) or t3 (s = 0)
            overlap_embed_backward<B>(gskip(s == 1 ? 0 : 1), embed_grads(r_.pe[s]), gB, s == 0 ? a_.t[2] : a_.t4,
                                      embed_params(r_.pe[s]), a_.pe[s], d, scratch_, true);
        }
        // encoder conv stages; gskip(1) = grad t3, gskip(2) = grad t2, gskip(3) = grad t1
        hh = H / 8;
        ww = W / 8;
        for (int s = 2; s >= 0; --s) {
            T* gt = gskip(3 - s);
            relu_backward<B>(gt, gt, a_.t[s], n * enc[s] * hh * ww);
            max_pool2x2_backward<B>(gA, gt, arg_[s].data(), n * enc[s], hh * 2, ww * 2);
            hh *= 2;
            ww *= 2;
            bn_backward(r_.ebn[s], gA, gA, a_.ec[s], a_.ebs[s], enc[s], hh * ww);
            const index_t ci = s == 0 ? cfg_.in_channels : enc[s - 1];
            const conv2d_dims d{n, ci, hh, ww, enc[s], 3, 3, 1, 1, 1};
            T* din = s == 0 ? dx : gskip(4 - s);
            conv2d_backward<B>(din, G(r_.enc[s].w), bn_fed_bias_grad(r_.enc[s]), gA, s == 0 ? x_ : a_.t[s - 1], P(r_.enc[s].w), d,
                               scratch_, s > 0);
        }
    }

private:
    struct acts {
        T *ec[3], *eb[3], *ep[3], *t[3], *ebs[3];  // ebs: mean then rstd per BN (2 * c)
        T *etok[2], *eblk[2], *enorm[2], *enm[2], *ens[2], *t4, *bott;
        overlap_embed_acts<T> pe[2];
        shifted_block_acts<T> eba[2], dba[2];
        T *dc[5], *db[4], *dbs[4], *du[5], *dr[5], *ds[4];
        T *dtok[2], *dblk[2], *dnorm[2], *dnm[2], *dns[2], *dimg[2];
        T *gs[4];  // skip gradients: t4, t3, t2, t1
    };

    static index_t dec_out(int s) { return s == 0 ? 64 : s == 1 ? 32 : s == 2 ? 16 : 8; }
    const T* skip(int s) const { return s == 0 ? a_.t4 : a_.t[3 - s]; }
    T* gskip(int k) { return a_.gs[k]; }

    conv2d_dims embed_dims(int s) const {
        const index_t div = s == 0 ? 8 : 16;
        return conv2d_dims{n_, s == 0 ? 32 : 64, h_ / div, w_ / div, tok[s], 3, 3, 2, 1, 1};
    }
    // Parameter offsets resolved once from their names (no string lookups in forward/backward).
    struct pair_ref { index_t w = 0, b = 0; };  ///< .weight and .bias
    struct bn_ref { index_t w = 0, b = 0, mean = 0, var = 0; };
    struct embed_ref { pair_ref proj, norm; };
    struct block_ref { pair_ref norm, fc1, dw, fc2; };
    struct refs {
        pair_ref enc[3], dec[5], fin, norm[2], dnorm[2];
        bn_ref ebn[3], dbn[4];
        embed_ref pe[2];
        block_ref eblk[2], dblk[2];
    };

    void resolve() {
        auto off = [&](const std::string& n) { return table_.find(n).offset; };
        auto pr = [&](const std::string& n) { return pair_ref{off(n + ".weight"), off(n + ".bias")}; };
        auto bn = [&](const std::string& n) {
            return bn_ref{off(n + ".weight"), off(n + ".bias"), off(n + ".running_mean"), off(n + ".running_var")};
        };
        auto blk = [&](const std::string& n) {
            return block_ref{pr(n + ".norm2"), pr(n + ".mlp.fc1"), pr(n + ".mlp.dwconv.dwconv"), pr(n + ".mlp.fc2")};
        };
        for (int s = 0; s < 3; ++s) {
            r_.enc[s] = pr("encoder" + std::to_string(s + 1));
            r_.ebn[s] = bn("ebn" + std::to_string(s + 1));
        }
        for (int s = 0; s < 5; ++s) r_.dec[s] = pr("decoder" + std::to_string(s + 1));
        for (int s = 0; s < 4; ++s) r_.dbn[s] = bn("dbn" + std::to_string(s + 1));
        for (int s = 0; s < 2; ++s) {
            r_.norm[s] = pr("norm" + std::to_string(s + 3));
            r_.dnorm[s] = pr("dnorm" + std::to_string(s + 3));
            const std::string pe = "patch_embed" + std::to_string(s + 3);
            r_.pe[s] = embed_ref{pr(pe + ".proj"), pr(pe + ".norm")};
            r_.eblk[s] = blk("block" + std::to_string(s + 1) + ".0");
            r_.dblk[s] = blk("dblock" + std::to_string(s + 1) + ".0");
        }
        r_.fin = pr("final");
    }
    T* P(index_t off) { return params_.data() + off; }
    T* G(index_t off) { return grads_.data() + off; }

    overlap_embed_params<T> embed_params(const embed_ref& r) {
        return {P(r.proj.w), P(r.proj.b), P(r.norm.w), P(r.norm.b)};
    }
    overlap_embed_grads<T> embed_grads(const embed_ref& r) {
        return {G(r.proj.w), G(r.proj.b), G(r.norm.w), G(r.norm.b)};
    }
    shifted_block_params<T> block_params(const block_ref& r) {
        return {P(r.norm.w), P(r.norm.b), P(r.fc1.w), P(r.fc1.b), P(r.dw.w), P(r.dw.b), P(r.fc2.w), P(r.fc2.b)};
    }
    shifted_block_grads<T> block_grads(const block_ref& r) {
        return {G(r.norm.w), G(r.norm.b), G(r.fc1.w), G(r.fc1.b), G(r.dw.w), G(r.dw.b), G(r.fc2.w), G(r.fc2.b)};
    }

    void bn_forward(const bn_ref& r, T* out, T* stats, const T* x, index_t c, index_t hw) {
        sync_batch_norm_forward<B>(out, stats, stats + c, P(r.mean), P(r.var), x, P(r.w), P(r.b),
                                   batch_norm_dims{n_, c, hw}, training_, bn_sum_, bn_sums_.data());
    }
    /// The bias gradient of a convolution that feeds a BatchNorm: none in training mode, where the
    /// BatchNorm subtracts the batch mean again, so that the gradient is zero in exact arithmetic.
    /// Computed in float it is round-off (~1e-10 against ~1e-3 for the weights) that Adam turns into
    /// steps changing nothing but the running means, different for every order of summation (one
    /// process against several ranks, issue 18); it stays exactly 0 instead.
    T* bn_fed_bias_grad(const pair_ref& conv) { return training_ ? nullptr : G(conv.b); }
    void bn_backward(const bn_ref& r, T* dx, const T* dout, const T* x, const T* stats, index_t c, index_t hw) {
        sync_batch_norm_backward<B>(dx, G(r.w), G(r.b), dout, x, stats, stats + c, P(r.w), batch_norm_dims{n_, c, hw},
                                    training_, bn_sum_, bn_sums_.data());
    }

    /// Backward through tokens -> shifted block -> LayerNorm -> image: gimg (the image gradient,
    /// [n, c, h*w]) in, the gradient of the block input tokens out in gB; gimg is used as scratch.
    void tokens_block_backward(T* gimg, T* gB, const block_ref& blk, const pair_ref& nm, const T* blk_out,
                               const T* blk_in, const T* mean, const T* rstd, const shifted_block_acts<T>& a,
                               const token_dims& td) {
        const index_t N = td.numel();
        detail::image_to_tokens<B>(gB, gimg, td.n, td.c, td.h * td.w);
        backend_traits<B>::fill(gimg, static_cast<std::size_t>(N), T(0));
        layer_norm_backward<B>(gimg, G(nm.w), G(nm.b), gB, blk_out, mean, rstd, P(nm.w), td.rows(), td.c);
        shifted_block_backward<B>(gB, block_grads(blk), gimg, blk_in, block_params(blk), a, scratch_, td);
    }

    /// Lays out the activation arena for (n, h, w); reuses it when unchanged.
    void plan(index_t n, index_t h, index_t w) {
        if (n == n_ && h == h_ && w == w_) return;
        n_ = n;
        h_ = h;
        w_ = w;
        arena_layout lay;
        carve([&](index_t c) { lay.take(c); return static_cast<T*>(nullptr); });
        arena_ = tensor<T, B>(shape{lay.size()});
        arena_cursor<T> cur(arena_.data());
        carve([&](index_t c) { return cur.take(c); });
        // scratch: largest conv / block / embedding need; gradient buffers: largest map
        index_t sc = 0, big = n * 8 * h * w;
        auto need = [&](index_t v) { sc = v > sc ? v : sc; };
        index_t ci = cfg_.in_channels, hh = h, ww = w;
        for (int s = 0; s < 3; ++s) {
            need(conv2d_backward_scratch(conv2d_dims{n, ci, hh, ww, enc[s], 3, 3, 1, 1, 1}));
            big = std::max(big, n * enc[s] * hh * ww);
            ci = enc[s];
            hh /= 2;
            ww /= 2;
        }
        for (int s = 0; s < 2; ++s) {
            const conv2d_dims d = embed_dims(s);
            need(overlap_embed_scratch(d));
            need(2 * n * d.oh() * d.ow() * tok[s]);
        }
        ci = 128;
        hh = h / 32;
        ww = w / 32;
        for (int s = 0; s < 5; ++s) {
            need(conv2d_backward_scratch(conv2d_dims{n, ci, hh, ww, dec_out(s), 3, 3, 1, 1, 1}));
            big = std::max(big, n * ci * hh * ww);
            ci = dec_out(s);
            hh *= 2;
            ww *= 2;
            big = std::max(big, n * ci * hh * ww);
        }
        need(conv2d_backward_scratch(conv2d_dims{n, 8, h, w, cfg_.num_classes, 1, 1, 1, 0, 1}));
        scratch_t_ = tensor<T, B>(shape{sc});
        scratch_ = scratch_t_.data();
        ga_ = tensor<T, B>(shape{big});
        gb_ = tensor<T, B>(shape{big});
        index_t hp = h, wp = w;
        for (int s = 0; s < 3; ++s) {
            hp /= 2;
            wp /= 2;
            arg_[s] = tensor<std::int32_t, B>(shape{n * enc[s] * hp * wp});
        }
    }

    template <class Take>
    void carve(Take&& take) {
        const index_t n = n_;
        index_t hh = h_, ww = w_;
        for (int s = 0; s < 3; ++s) {
            const index_t m = n * enc[s] * hh * ww;
            a_.ec[s] = take(m);
            a_.eb[s] = take(m);
            a_.ebs[s] = take(2 * enc[s]);
            a_.ep[s] = take(m / 4);
            a_.t[s] = take(m / 4);
            hh /= 2;
            ww /= 2;
        }
        for (int s = 0; s < 2; ++s) {
            const conv2d_dims d = embed_dims(s);
            const token_dims td{n, d.oh(), d.ow(), tok[s]};
            a_.pe[s].carve(take, d);
            a_.etok[s] = take(td.numel());
            a_.eba[s].carve(take, td);
            a_.eblk[s] = take(td.numel());
            a_.enorm[s] = take(td.numel());
            a_.enm[s] = take(td.rows());
            a_.ens[s] = take(td.rows());
        }
        a_.t4 = take(n * 64 * (h_ / 16) * (w_ / 16));
        a_.bott = take(n * 128 * (h_ / 32) * (w_ / 32));
        hh = h_ / 32;
        ww = w_ / 32;
        for (int s = 0; s < 5; ++s) {
            const index_t co = dec_out(s), m = n * co * hh * ww;
            a_.dc[s] = take(m);
            if (s < 4) {
                a_.db[s] = take(m);
                a_.dbs[s] = take(2 * co);
            }
            hh *= 2;
            ww *= 2;
            a_.du[s] = take(4 * m);
            a_.dr[s] = take(4 * m);
            if (s < 4) {
                a_.ds[s] = take(4 * m);
                a_.gs[s] = take(4 * m);
            }
            if (s < 2) {
                const token_dims td{n, hh, ww, co};
                a_.dtok[s] = take(td.numel());
                a_.dba[s].carve(take, td);
                a_.dblk[s] = take(td.numel());
                a_.dnorm[s] = take(td.numel());
                a_.dnm[s] = take(td.rows());
                a_.dns[s] = take(td.rows());
                a_.dimg[s] = take(td.numel());
            }
        }
    }

    unext_config cfg_;
    parameter_table table_;
    refs r_{};
    tensor<T, B> params_, grads_, arena_, scratch_t_, ga_, gb_;
    tensor<std::int32_t, B> arg_[3];
    T* scratch_ = nullptr;
    acts a_{};
    const T* x_ = nullptr;
    index_t n_ = 0, h_ = 0, w_ = 0;
    bool training_ = false;
    cross_rank_sum bn_sum_;      ///< SyncBatchNorm's reduction (empty: per-process statistics)
    tensor<double, B> bn_sums_;  ///< its per-channel sums (widest BatchNorm: 64 channels)
};

}  // namespace vasomim::nn
