#pragma once
// decoder::unetr of the segmentation model (model/segmentation_model.hpp): the decoder of UNETR
// (Hatamizadeh et al. 2022) in 2-D, as MONAI's UNETR(spatial_dims=2, norm_name="instance",
// conv_block=True, res_block=True) builds it on top of its ViT; the ViT is this project's encoder
// (timm's, with a cls token, whose row the decoder drops).
//
// With patch 16 (MONAI's UNETR fixes it to 16), f = feature_size:
//   hidden states  MONAI reads hidden_states_out[3], [6], [9] of its 12 blocks (the outputs of blocks
//                  3, 6, 9 counted from 0) and the final output x, which its ViT has passed through
//                  the final LayerNorm (hidden states are not normed). For depth D this decoder reads
//                  the outputs of blocks k * D / 4 (k = 1, 2, 3; integer division: 3, 6, 9 for D = 12,
//                  1, 2, 3 for D = 4; the four states evenly spaced) and the final normed tokens.
//   proj_feat      patch tokens [n, L, E] -> [n, E, g, g] (row-major patches; the cls row dropped)
//   encoder1       UnetrBasicBlock: UnetResBlock(in_chans -> f) on the image
//   encoder2/3/4   UnetrPrUpBlock on hidden states 1/2/3: transp_conv_init (E -> 2f / 4f / 8f) then
//                  2 / 1 / 0 times (transposed conv, UnetResBlock) at that width
//   decoder5..2    UnetrUpBlock: transposed conv (in -> out), cat(up, skip) on channels,
//                  UnetResBlock(2 out -> out): decoder5 (final tokens E -> 8f, skip encoder4),
//                  decoder4 (8f -> 4f, encoder3), decoder3 (4f -> 2f, encoder2), decoder2 (2f -> f,
//                  encoder1)
//   out            UnetOutBlock: 1x1 convolution f -> classes with bias
// Other patch sizes p = 2^m (m >= 2; MONAI has none): the same construction with m x2 stages
// instead of 4 - hidden states k * D / m (k = 1..m-1), encoder{k+1} = UnetrPrUpBlock(E -> 2^k f)
// with m-1-k layers, decoder{m+1}..decoder2 - so patch 8 (the tiny presets) has encoder2 (1 layer),
// encoder3 (0 layers), decoder4 (E -> 4f), decoder3, decoder2 and reads blocks D/3, 2D/3 and the
// final tokens; at m = 4 it is MONAI's exactly. D >= m - 1, so that the hidden states differ.
// UnetResBlock: conv3x3 - norm - LeakyReLU(0.01) - conv3x3 - norm, plus the input (or, when the
// channel counts differ, conv1x1 - norm of it), then LeakyReLU(0.01); convolutions without bias
// (MONAI's get_conv_layer default), padding 1. Transposed convolutions: kernel 2, stride 2, no bias.
// Norm: InstanceNorm2d, eps 1e-5, affine only with unetr_config::norm_affine (MONAI's "instance" is
// torch's default, affine=False, so by default the decoder has no norm parameters).
//
// Parameter names are MONAI's UNETR state-dict names under "decoder." (e.g.
// decoder.encoder1.layer.conv1.conv.weight, decoder.encoder2.blocks.0.0.conv.weight,
// decoder.decoder5.transp_conv.conv.weight, decoder.out.conv.conv.bias), in MONAI's module order,
// so that a converter of a MONAI checkpoint maps names 1:1 (strip "decoder.", MONAI's "vit.*" maps
// to the encoder separately). Transposed-convolution weights are [in, out, 2, 2] as torch's.
//
// Initialisation (segmentation_model::init) is torch's default for Conv2d / ConvTranspose2d, which
// MONAI leaves in place: kaiming_uniform(a = sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
// fan_in = numel / shape[0] of the weight (so out * 2 * 2 for the [in, out, 2, 2] transposed
// convolutions, as torch computes it), the output convolution's bias from the same bound; affine
// norm weights 1, biases 0.
//
// The decoder is a short tape of operations over nodes (feature maps, each with a value and a
// gradient buffer in the model's arena); backward runs the tape in reverse, the first contribution
// to a gradient overwriting it and later ones accumulating (no buffer is cleared first).
// The residual sum and the LeakyReLU after it run in place on the second norm's output, in one
// pass; the first LeakyReLU runs in its norm's pass (nn::instance_norm_leaky_relu_*).

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/error.hpp"
#include "vasomim/model/segmentation_config.hpp"
#include "vasomim/nn/channel_concat.hpp"
#include "vasomim/nn/conv2d.hpp"
#include "vasomim/nn/conv_transpose2d.hpp"
#include "vasomim/nn/instance_norm2d.hpp"
#include "vasomim/nn/leaky_relu.hpp"
#include "vasomim/nn/parameters.hpp"

namespace vasomim::model {

/// The x2 stages from the token grid to the image: log2(patch) (4 for MONAI's patch 16); 0 when the
/// patch is not a power of two >= 4.
inline index_t unetr_stages(index_t patch) {
    index_t m = 0;
    while ((index_t{1} << m) < patch) ++m;
    return (index_t{1} << m) == patch && m >= 2 ? m : 0;
}

/// The blocks (0-based) whose outputs UNETR reads besides the final tokens: k * depth / m for
/// k = 1..m-1, m = unetr_stages(patch); {3, 6, 9} for MONAI's depth 12, patch 16.
inline std::vector<index_t> unetr_hidden_blocks(index_t depth, index_t patch = 16) {
    std::vector<index_t> h;
    const index_t m = unetr_stages(patch);
    for (index_t k = 1; k < m; ++k) h.push_back(k * depth / m);
    return h;
}

namespace detail {

/// grid[b, e, l] = tokens[b, 1 + l, e]: MONAI's proj_feat of the patch tokens (cls row dropped).
template <backend_policy B, class T>
void tokens_to_grid(T* grid, const T* tokens, index_t n, index_t L, index_t E) {
    parallel_for<B>(n * E, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
        const index_t e = r % E, b = r / E;
        const T* src = tokens + (b * (1 + L) + 1) * E + e;
        T* dst = grid + r * L;
        for (index_t l = 0; l < L; ++l) dst[l] = src[l * E];
    });
}

/// The adjoint: tokens[b, 1 + l, e] = grid[b, e, l], the cls row 0 (overwritten).
template <backend_policy B, class T>
void grid_to_tokens(T* tokens, const T* grid, index_t n, index_t L, index_t E) {
    parallel_for<B>(n * (1 + L), [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
        const index_t t = r % (1 + L), b = r / (1 + L);
        T* dst = tokens + r * E;
        if (t == 0) {
            for (index_t e = 0; e < E; ++e) dst[e] = T(0);
            return;
        }
        const T* src = grid + b * E * L + (t - 1);
        for (index_t e = 0; e < E; ++e) dst[e] = src[e * L];
    });
}

/// The residual sum and its LeakyReLU in one pass: y[i] = leaky_relu(y[i] + x[i]).
template <backend_policy B, class T>
void add_leaky_relu_forward(T* y, const T* x, index_t count, double slope = nn::leaky_relu_default_slope) {
    const T s = static_cast<T>(slope);
    parallel_for<B>(count, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        const T v = y[i] + x[i];
        y[i] = v > T(0) ? v : s * v;
    });
}

/// Its backward in one pass: g (the gradient of the output y, in place) becomes that of the sum,
/// which is also the gradient of the second summand: copied to gx, added to it (`accumulate`), or
/// not kept (gx null).
template <backend_policy B, class T>
void add_leaky_relu_backward(T* g, T* gx, const T* y, index_t count, bool accumulate,
                             double slope = nn::leaky_relu_default_slope) {
    const T s = static_cast<T>(slope);
    if (!gx)
        nn::leaky_relu_backward<B>(g, g, y, count, slope);
    else if (accumulate)
        parallel_for<B>(count, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
            const T v = y[i] > T(0) ? g[i] : s * g[i];
            g[i] = v;
            gx[i] += v;
        });
    else
        parallel_for<B>(count, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
            const T v = y[i] > T(0) ? g[i] : s * g[i];
            g[i] = v;
            gx[i] = v;
        });
}

}  // namespace detail

/// The UNETR decoder (see the top of this file).
template <backend_policy B, class T>
class unetr_decoder {
    enum class kind { conv, tconv, norm, add_lrelu, concat };
    struct node {
        index_t c, s;  // channels, side
    };
    struct op {
        kind k;
        int a, b, out;                // input nodes (b: second input of add_lrelu / concat), output node
        index_t w = -1, bias = -1;    // parameter offsets (-1: none)
        index_t ksize = 0, pad = 0;   // conv
        int stat = -1;                // norm: index of its statistics
        bool lrelu = false;           // norm: LeakyReLU(0.01) on the output, in the same pass
    };

public:
    struct activations {
        std::vector<T*> v, g;                // per node; node 0 (the image) has none
        std::vector<T*> mean, rstd;          // per norm
        std::vector<T*> g_hidden;            // token gradients of the hidden states read [n, 1 + L, E]
        T* g_tokens = nullptr;               // of the final tokens
        T* scratch = nullptr;
    };

    unetr_decoder(const segmentation_config& c, nn::parameter_table& table) : cfg_(c) {
        const auto& e = c.encoder;
        const index_t f = c.unetr.feature_size, E = e.embed_dim, S = e.img_size;
        const index_t m = unetr_stages(e.patch_size);
        if (m == 0 || S % e.patch_size != 0 || S < e.patch_size)
            throw config_error("decoder::unetr: UNETR climbs x2 stages from the token grid to the image, so it needs "
                               "a patch size that is a power of two >= 4 (MONAI's: 16) and an image side divisible "
                               "by it; the encoder has patch " + std::to_string(e.patch_size) + " and image " +
                               std::to_string(S));
        if (e.depth < m - 1)
            throw config_error("decoder::unetr: patch " + std::to_string(e.patch_size) + " reads " + std::to_string(m - 1) +
                               " hidden states and needs an encoder of depth >= " + std::to_string(m - 1) + ", not " +
                               std::to_string(e.depth));
        if (f < 1) throw config_error("decoder::unetr: feature_size must be positive");
        hidden_ = unetr_hidden_blocks(e.depth, e.patch_size);
        const index_t g = S / e.patch_size;
        nodes_.push_back({e.in_chans, S});  // 0: the image
        auto& t = table;
        const int enc1 = res_block(t, "encoder1.layer", 0, f);
        std::vector<int> skips;  // encoder2.. at widths 2f, 4f, ...
        for (index_t k = 1; k < m; ++k) {
            const std::string pre = "encoder" + std::to_string(k + 1);
            const index_t width = f << k;
            grid_.push_back(add_node(E, g));
            int x = tconv(t, pre + ".transp_conv_init.conv.weight", grid_.back(), width);
            for (index_t i = 0; i < m - 1 - k; ++i) {
                const std::string bp = pre + ".blocks." + std::to_string(i);
                x = tconv(t, bp + ".0.conv.weight", x, width);
                x = res_block(t, bp + ".1", x, width);
            }
            skips.push_back(x);
        }
        grid_.push_back(add_node(E, g));  // the final tokens
        int x = grid_.back();
        for (index_t k = m - 1; k >= 1; --k)
            x = up_block(t, "decoder" + std::to_string(k + 2), x, skips[static_cast<std::size_t>(k - 1)], f << k);
        last_ = up_block(t, "decoder2", x, enc1, f);
        out_w_ = t.add("decoder.out.conv.conv.weight", vasomim::shape{c.num_classes, f, 1, 1});
        out_b_ = t.add("decoder.out.conv.conv.bias", vasomim::shape{c.num_classes}, true, false);
    }

    template <class Cursor>
    activations carve(Cursor& cur, index_t n) const {
        activations a;
        a.v.assign(nodes_.size(), nullptr);
        a.g.assign(nodes_.size(), nullptr);
        for (std::size_t i = 1; i < nodes_.size(); ++i) {
            a.v[i] = cur.take(count(static_cast<int>(i), n));
            a.g[i] = cur.take(count(static_cast<int>(i), n));
        }
        for (const auto& o : ops_)
            if (o.k == kind::norm) {
                a.mean.push_back(cur.take(n * nodes_[static_cast<std::size_t>(o.out)].c));
                a.rstd.push_back(cur.take(n * nodes_[static_cast<std::size_t>(o.out)].c));
            }
        const index_t tok = n * (1 + cfg_.encoder.num_patches()) * cfg_.encoder.embed_dim;
        for (std::size_t k = 0; k < hidden_.size(); ++k) a.g_hidden.push_back(cur.take(tok));
        a.g_tokens = cur.take(tok);
        index_t sc = nn::conv2d_backward_scratch(out_dims(n));
        for (const auto& o : ops_) {
            if (o.k == kind::conv) sc = std::max(sc, nn::conv2d_backward_scratch(conv_dims(o, n)));
            if (o.k == kind::tconv) sc = std::max(sc, nn::conv_transpose2d_backward_scratch(tconv_dims(o, n)));
        }
        a.scratch = cur.take(sc);
        return a;
    }
    void bind(const activations& a) { acts_ = a; }

    /// The blocks whose outputs the decoder reads (besides the final tokens).
    const std::vector<index_t>& hidden_blocks() const { return hidden_; }

    /// logits [n, k, H, W] from the image and the encoder's states.
    void forward(const T* P, const encoder_outputs<T>& e, T* logits) {
        const index_t n = e.n, L = cfg_.encoder.num_patches(), E = cfg_.encoder.embed_dim;
        img_ = e.imgs;
        for (std::size_t k = 0; k < hidden_.size(); ++k)
            detail::tokens_to_grid<B>(acts_.v[static_cast<std::size_t>(grid_[k])],
                                      e.hidden[static_cast<std::size_t>(hidden_[k])], n, L, E);
        detail::tokens_to_grid<B>(acts_.v[static_cast<std::size_t>(grid_.back())], e.tokens, n, L, E);
        T* scratch = acts_.scratch;
        for (const auto& o : ops_) {
            T* out = acts_.v[static_cast<std::size_t>(o.out)];
            switch (o.k) {
            case kind::conv:
                nn::conv2d_forward<B>(out, val(o.a), P + o.w, static_cast<const T*>(nullptr), conv_dims(o, n), scratch);
                break;
            case kind::tconv:
                nn::conv_transpose2d_forward<B>(out, val(o.a), P + o.w, static_cast<const T*>(nullptr), tconv_dims(o, n),
                                                scratch);
                break;
            case kind::norm: {
                const auto s = static_cast<std::size_t>(o.stat);
                const T* w = o.w >= 0 ? P + o.w : nullptr;
                const T* b = o.bias >= 0 ? P + o.bias : nullptr;
                if (o.lrelu)
                    nn::instance_norm_leaky_relu_forward<B>(out, acts_.mean[s], acts_.rstd[s], val(o.a), w, b, norm_dims(o, n));
                else
                    nn::instance_norm_forward<B>(out, acts_.mean[s], acts_.rstd[s], val(o.a), w, b, norm_dims(o, n));
                break;
            }
            case kind::add_lrelu:  // in place: out (= a) = leaky_relu(a + b)
                detail::add_leaky_relu_forward<B>(out, val(o.b), count(o.out, n));
                break;
            case kind::concat: {
                const auto& na = nodes_[static_cast<std::size_t>(o.a)];
                nn::channel_concat_forward<B>(out, val(o.a), val(o.b), n, na.c, nodes_[static_cast<std::size_t>(o.b)].c,
                                              na.s * na.s);
                break;
            }
            }
        }
        nn::conv2d_forward<B>(logits, val(last_), P + out_w_, P + out_b_, out_dims(n), scratch);
    }

    /// Gradients from dlogits: parameter gradients accumulate into G; returns the gradient of the
    /// final tokens; g_hidden gets one entry per encoder block, the gradients of the block outputs
    /// read (others null).
    const T* backward(const T* P, T* G, const encoder_outputs<T>& e, const T* dlogits, std::vector<const T*>& g_hidden) {
        const index_t n = e.n, L = cfg_.encoder.num_patches(), E = cfg_.encoder.embed_dim;
        // No gradient buffer is cleared: the first contribution to a node's gradient overwrites
        // it, later ones accumulate (written_); a gradient read before any write is cleared then.
        written_.assign(nodes_.size(), false);
        auto first = [&](int id) {  // whether the next write to node id's gradient is its first
            const bool f = !written_[static_cast<std::size_t>(id)];
            written_[static_cast<std::size_t>(id)] = true;
            return f;
        };
        auto gout_of = [&](int id) {
            if (first(id))
                backend_traits<B>::fill(acts_.g[static_cast<std::size_t>(id)], static_cast<std::size_t>(count(id, n)), T(0));
            return acts_.g[static_cast<std::size_t>(id)];
        };
        T* scratch = acts_.scratch;
        nn::conv2d_backward<B>(acts_.g[static_cast<std::size_t>(last_)], G + out_w_, G + out_b_, dlogits, val(last_),
                               P + out_w_, out_dims(n), scratch, !first(last_));
        for (auto it = ops_.rbegin(); it != ops_.rend(); ++it) {
            const op& o = *it;
            T* gout = gout_of(o.out);
            T* ga = acts_.g[static_cast<std::size_t>(o.a)];
            switch (o.k) {
            case kind::conv:
                nn::conv2d_backward<B>(ga, G + o.w, static_cast<T*>(nullptr), gout, val(o.a), P + o.w, conv_dims(o, n),
                                       scratch, ga && !first(o.a));
                break;
            case kind::tconv:
                nn::conv_transpose2d_backward<B>(ga, G + o.w, static_cast<T*>(nullptr), gout, val(o.a), P + o.w,
                                                 tconv_dims(o, n), scratch, ga && !first(o.a));
                break;
            case kind::norm: {
                const auto s = static_cast<std::size_t>(o.stat);
                T* gw = o.w >= 0 ? G + o.w : nullptr;
                T* gbias = o.bias >= 0 ? G + o.bias : nullptr;
                const T* w = o.w >= 0 ? P + o.w : nullptr;
                const bool acc = ga && !first(o.a);
                if (o.lrelu)  // gout is the gradient of the activated output val(o.out)
                    nn::instance_norm_leaky_relu_backward<B>(ga, gw, gbias, gout, val(o.a), val(o.out), acts_.mean[s],
                                                             acts_.rstd[s], w, norm_dims(o, n),
                                                             nn::leaky_relu_default_slope, acc);
                else
                    nn::instance_norm_backward<B>(ga, gw, gbias, gout, val(o.a), acts_.mean[s], acts_.rstd[s], w,
                                                  norm_dims(o, n), acc);
                break;
            }
            case kind::add_lrelu: {  // gout, in place, becomes the sum's gradient; b gets a copy or a sum
                T* gb = acts_.g[static_cast<std::size_t>(o.b)];
                detail::add_leaky_relu_backward<B>(gout, gb, val(o.out), count(o.out, n), gb && !first(o.b));
                break;
            }
            case kind::concat: {
                const auto& na = nodes_[static_cast<std::size_t>(o.a)];
                const index_t cb = nodes_[static_cast<std::size_t>(o.b)].c, hw = na.s * na.s;
                T* gb = acts_.g[static_cast<std::size_t>(o.b)];
                // each half on its own, overwritten or accumulated as its node needs
                if (ga) nn::channel_concat_backward<B>(ga, static_cast<T*>(nullptr), gout, n, na.c, cb, hw, !first(o.a));
                if (gb) nn::channel_concat_backward<B>(static_cast<T*>(nullptr), gb, gout, n, na.c, cb, hw, !first(o.b));
                break;
            }
            }
        }
        g_hidden.assign(static_cast<std::size_t>(cfg_.encoder.depth), nullptr);
        for (std::size_t k = 0; k < hidden_.size(); ++k) {
            detail::grid_to_tokens<B>(acts_.g_hidden[k], acts_.g[static_cast<std::size_t>(grid_[k])], n, L, E);
            g_hidden[static_cast<std::size_t>(hidden_[k])] = acts_.g_hidden[k];
        }
        detail::grid_to_tokens<B>(acts_.g_tokens, acts_.g[static_cast<std::size_t>(grid_.back())], n, L, E);
        return acts_.g_tokens;
    }

private:
    int add_node(index_t c, index_t s) {
        nodes_.push_back({c, s});
        return static_cast<int>(nodes_.size()) - 1;
    }
    index_t count(int id, index_t n) const {
        const auto& x = nodes_[static_cast<std::size_t>(id)];
        return n * x.c * x.s * x.s;
    }
    const T* val(int id) const { return id == 0 ? img_ : acts_.v[static_cast<std::size_t>(id)]; }

    nn::conv2d_dims conv_dims(const op& o, index_t n) const {
        const auto& a = nodes_[static_cast<std::size_t>(o.a)];
        return {n, a.c, a.s, a.s, nodes_[static_cast<std::size_t>(o.out)].c, o.ksize, o.ksize, 1, o.pad, 1};
    }
    nn::conv_transpose2d_dims tconv_dims(const op& o, index_t n) const {
        const auto& a = nodes_[static_cast<std::size_t>(o.a)];
        return {n, a.c, a.s, a.s, nodes_[static_cast<std::size_t>(o.out)].c, 2, 2, 2, 0, 0};
    }
    nn::instance_norm_dims norm_dims(const op& o, index_t n) const {
        const auto& a = nodes_[static_cast<std::size_t>(o.a)];
        return {n, a.c, a.s * a.s};
    }
    nn::conv2d_dims out_dims(index_t n) const {
        const auto& a = nodes_[static_cast<std::size_t>(last_)];
        return {n, a.c, a.s, a.s, cfg_.num_classes, 1, 1, 1, 0, 1};
    }

    static std::string name(const std::string& s) { return "decoder." + s; }

    int tconv(nn::parameter_table& t, const std::string& w, int in, index_t co) {
        const index_t ci = nodes_[static_cast<std::size_t>(in)].c, s = nodes_[static_cast<std::size_t>(in)].s;
        op o{kind::tconv, in, -1, -1};
        o.w = t.add(name(w), vasomim::shape{ci, co, 2, 2});
        o.out = add_node(co, 2 * s);
        ops_.push_back(o);
        return o.out;
    }

    /// MONAI's UnetResBlock under `pre` (parameters in its module order: conv1, conv2, norm1, norm2,
    /// then conv3, norm3 when the channel counts differ).
    int res_block(nn::parameter_table& t, const std::string& pre, int in, index_t co) {
        const index_t ci = nodes_[static_cast<std::size_t>(in)].c, s = nodes_[static_cast<std::size_t>(in)].s;
        const bool proj = ci != co, affine = cfg_.unetr.norm_affine;
        const index_t w1 = t.add(name(pre + ".conv1.conv.weight"), vasomim::shape{co, ci, 3, 3});
        const index_t w2 = t.add(name(pre + ".conv2.conv.weight"), vasomim::shape{co, co, 3, 3});
        std::array<index_t, 6> nw{-1, -1, -1, -1, -1, -1};  // norm1..3 weight, bias
        auto norm_params = [&](int k) {
            if (!affine) return;
            const std::string nn_ = pre + ".norm" + std::to_string(k + 1);
            nw[static_cast<std::size_t>(2 * k)] = t.add(name(nn_ + ".weight"), vasomim::shape{co}, true, false);
            nw[static_cast<std::size_t>(2 * k + 1)] = t.add(name(nn_ + ".bias"), vasomim::shape{co}, true, false);
        };
        norm_params(0);
        norm_params(1);
        index_t w3 = -1;
        if (proj) {
            w3 = t.add(name(pre + ".conv3.conv.weight"), vasomim::shape{co, ci, 1, 1});
            norm_params(2);
        }
        auto conv = [&](int x, index_t w, index_t k) {
            op o{kind::conv, x, -1, add_node(co, s)};
            o.w = w;
            o.ksize = k;
            o.pad = (k - 1) / 2;
            ops_.push_back(o);
            return o.out;
        };
        auto norm = [&](int x, int k, bool lrelu = false) {
            op o{kind::norm, x, -1, add_node(co, s)};
            o.w = nw[static_cast<std::size_t>(2 * k)];
            o.bias = nw[static_cast<std::size_t>(2 * k + 1)];
            o.stat = norms_++;
            o.lrelu = lrelu;
            ops_.push_back(o);
            return o.out;
        };
        const int h1 = norm(conv(in, w1, 3), 0, true);
        const int h2 = norm(conv(h1, w2, 3), 1);
        const int r = proj ? norm(conv(in, w3, 1), 2) : in;
        ops_.push_back(op{kind::add_lrelu, h2, r, h2});
        return h2;
    }

    /// MONAI's UnetrUpBlock: transposed conv, cat with the skip, UnetResBlock(2 co -> co).
    int up_block(nn::parameter_table& t, const std::string& pre, int in, int skip, index_t co) {
        const int up = tconv(t, pre + ".transp_conv.conv.weight", in, co);
        const auto& sk = nodes_[static_cast<std::size_t>(skip)];
        if (sk.s != nodes_[static_cast<std::size_t>(up)].s || sk.c != co)
            throw config_error("decoder::unetr: internal shape mismatch at " + pre);
        const int cat = add_node(2 * co, sk.s);
        ops_.push_back(op{kind::concat, up, skip, cat});
        return res_block(t, pre + ".conv_block", cat, co);
    }

    segmentation_config cfg_;
    std::vector<node> nodes_;
    std::vector<op> ops_;
    std::vector<index_t> hidden_;
    std::vector<int> grid_;  // nodes of the hidden-state grids, then of the final tokens' grid
    int last_ = 0, norms_ = 0;
    index_t out_w_ = 0, out_b_ = 0;
    activations acts_;
    std::vector<bool> written_;  // backward: whether a node's gradient holds a contribution yet
    const T* img_ = nullptr;
};

namespace decoder {
/// UNETR's decoder in 2-D, as MONAI's UNETR(spatial_dims=2) (model/unetr_decoder.hpp).
struct unetr {
    template <backend_policy B, class T>
    using type = unetr_decoder<B, T>;
};
}  // namespace decoder

}  // namespace vasomim::model
