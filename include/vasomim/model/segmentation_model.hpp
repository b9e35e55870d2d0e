#pragma once
// The fine-tuning model for vessel segmentation (GitHub issue 17, DESIGN 4.6), composed through
// policies as the pre-training model is (DESIGN section 3):
//
//   segmentation_model<Backend, Encoder, Decoder, T>
//     Encoder  encoder::vit     the ViT of a pre-training configuration on every patch
//                               (model/vit_encoder.hpp), timm names
//     Decoder  decoder::linear  per-patch linear head E -> p*p*classes on the final normed patch
//                               tokens, unpatchified to the image (the cheap probe); names
//                               decoder.head.weight / decoder.head.bias (model/linear_decoder.hpp)
//              decoder::unetr   UNETR's decoder in 2-D as MONAI's UNETR(spatial_dims=2): the final
//                               tokens and evenly spaced block outputs as grids, transposed
//                               convolutions and residual conv blocks up to the image, a conv stem
//                               skip from the image; MONAI's names under decoder.; patch 16 as
//                               MONAI's, any power of two >= 4 by the same construction
//                               (model/unetr_decoder.hpp; settings in segmentation_config::unetr)
//
// forward(imgs) gives logits [n, classes, H, W]; loss() is the project's BCE + Dice
// (loss/bce_dice.hpp: 0.5 BCEWithLogits + 0.5 (1 - mean per-image Dice)); backward() runs through
// the decoder and the whole encoder. Parameters live in one flat buffer (encoder first, in timm's
// order, then the decoder), activations in one arena sized per batch.
//
// Initialisation: init(seed) is MAE's (xavier_uniform linears and patch embedding, zero biases,
// LayerNorm 1/0, cls token N(0, 0.02^2), sin-cos position embedding), except the decoder's
// convolutions (decoder::unetr), which get torch's Conv2d / ConvTranspose2d default as MONAI leaves
// it: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = numel / shape[0] of the weight; load_encoder() takes the
// encoder from a pre-training checkpoint, a timm encoder export or any state dict with timm/MAE
// encoder names ("module." stripped), resampling the position embedding bicubically when the
// pre-training grid differs, and reports every mismatch at once with the dimensions that differ.
// Drop path: set_drop_path(rate, seed), then forward(imgs, n, &key) for training (model/vit_encoder.hpp).

#include <cmath>
#include <cstdint>
#include <ostream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/error.hpp"
#include "vasomim/core/tensor.hpp"
#include "vasomim/io/safetensors.hpp"
#include "vasomim/io/state_dict.hpp"
#include "vasomim/loss/bce_dice.hpp"
#include "vasomim/model/export.hpp"
#include "vasomim/model/linear_decoder.hpp"
#include "vasomim/model/mae_config.hpp"
#include "vasomim/model/patchify.hpp"
#include "vasomim/model/segmentation_config.hpp"
#include "vasomim/model/unetr_decoder.hpp"
#include "vasomim/model/vit_encoder.hpp"
#include "vasomim/nn.hpp"

namespace vasomim::model {

namespace encoder {
/// The ViT encoder of the pre-training configuration on all patches.
struct vit {
    template <backend_policy B, class T>
    using type = vit_encoder<B, T>;
};
}  // namespace encoder

/// The dimensions in which an encoder state dict differs from a configuration, read from its
/// tensors; "" when none can be told apart.
inline std::string encoder_dimension_report(const std::vector<io::named_tensor>& ts, const vit_encoder_config& c) {
    const auto* w = detail::find_tensor(ts, "patch_embed.proj.weight");
    const auto* fc1 = detail::find_tensor(ts, "blocks.0.mlp.fc1.weight");
    const index_t depth = detail::count_blocks(ts);
    std::string differ, file = "depth " + std::to_string(depth), model = "depth " + std::to_string(c.depth);
    if (depth != c.depth) differ += "depth";
    if (w && w->shape.rank() == 4) {
        file = "width " + std::to_string(w->shape[0]) + ", " + file + ", patch " + std::to_string(w->shape[2]) +
               ", " + std::to_string(w->shape[1]) + " channels";
        auto add = [&](bool d, const char* what) {
            if (d) differ += (differ.empty() ? "" : ", ") + std::string(what);
        };
        add(w->shape[0] != c.embed_dim, "width");
        add(w->shape[2] != c.patch_size || w->shape[3] != c.patch_size, "patch size");
        add(w->shape[1] != c.in_chans, "input channels");
        if (fc1 && fc1->shape.rank() == 2 && w->shape[0] > 0 && fc1->shape[0] != c.mlp_ratio * w->shape[0])
            add(true, "mlp ratio");
    }
    model = "width " + std::to_string(c.embed_dim) + ", " + model + ", patch " + std::to_string(c.patch_size) + ", " +
            std::to_string(c.in_chans) + " channels";
    return "the file's encoder has " + file + ", the model's " + model +
           (differ.empty() ? std::string() : " (" + differ + " differ)");
}

/// The segmentation model (see the top of this file).
template <backend_policy B, class Encoder = encoder::vit, class Decoder = decoder::linear, class T = float>
class segmentation_model {
public:
    using value_type = T;
    using encoder_type = typename Encoder::template type<B, T>;
    using decoder_type = typename Decoder::template type<B, T>;

    explicit segmentation_model(const segmentation_config& c)
        : cfg_(c), enc_(c.encoder, table_), dec_(c, table_) {
        detail_require<config_error>(c.num_classes > 0, "segmentation_model: num_classes must be positive");
        params_ = tensor<T, B>(shape{table_.size()});
        grads_ = tensor<T, B>(shape{table_.size()});
    }

    const segmentation_config& config() const { return cfg_; }
    const nn::parameter_table& table() const { return table_; }
    tensor<T, B>& params() { return params_; }
    const tensor<T, B>& params() const { return params_; }
    tensor<T, B>& grads() { return grads_; }
    const tensor<T, B>& grads() const { return grads_; }
    const encoder_type& encoder() const { return enc_; }
    index_t batch() const { return n_; }
    /// logits of the last forward [n, k, H, W] on the backend.
    const T* logits() const { return logits_; }
    index_t logits_size() const { return n_ * cfg_.num_classes * cfg_.img_size() * cfg_.img_size(); }
    void zero_grad() { grads_.fill(T(0)); }

    /// MAE's initialisation (see the top of this file); tensor k draws from Philox stream k of seed.
    void init(std::uint64_t seed) {
        params_.fill(T(0));
        grads_.fill(T(0));
        std::uint64_t k = 0;
        for (const auto& e : table_.entries()) {
            T* p = params_.data() + e.offset;
            const auto n = static_cast<std::size_t>(e.numel());
            const philox gen(seed, k++);
            if (e.name == "pos_embed") {
                const auto host = nn::sincos_pos_embed_2d<T>(cfg_.encoder.embed_dim, cfg_.grid(), cfg_.grid(), true);
                backend_traits<B>::copy_from_host(host.data(), n, p);
            } else if (e.name == "cls_token") {
                fill_normal<B>(p, n, gen, 0, T(0), T(0.02));
            } else if (const double fan_in = torch_conv_fan_in(e.name); fan_in > 0) {
                // decoder convolutions: torch's default Conv2d / ConvTranspose2d init, which MONAI
                // keeps: kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the
                // weight, the same bound for the bias; fan_in = numel / shape[0] of the weight (for
                // [in, out, kh, kw] transposed weights that is out * kh * kw, as torch computes it)
                const T a = static_cast<T>(1.0 / std::sqrt(fan_in));
                fill_uniform<B>(p, n, gen, 0, -a, a);
            } else if (e.name.ends_with(".bias")) {
                backend_traits<B>::fill(p, n, T(0));
            } else if (e.name.find("norm") != std::string::npos && e.shape.rank() == 1) {
                backend_traits<B>::fill(p, n, T(1));
            } else {  // [out, in...]: xavier_uniform with fan_in = the rest
                const double fan_out = static_cast<double>(e.shape[0]);
                const double fan_in = static_cast<double>(e.numel()) / fan_out;
                const T a = static_cast<T>(std::sqrt(6.0 / (fan_in + fan_out)));
                fill_uniform<B>(p, n, gen, 0, -a, a);
            }
        }
    }

    /// Copies the encoder tensors of a state dict (timm / MAE names, "module." already stripped)
    /// into the model; decoder tensors keep their values. pos_embed of another square grid (another
    /// pre-training image size) is resampled bicubically (resample_abs_pos_embed) and said on
    /// `notes`. Every missing or misshapen encoder tensor and every block the model does not have is
    /// reported at once in a checkpoint_mismatch_error whose message says which dimensions differ;
    /// nothing is changed then. Other tensors (MAE decoder, mask token, segmentor) are ignored and
    /// counted on `notes`.
    void load_encoder(const std::vector<io::named_tensor>& tensors, const std::string& source,
                      std::ostream* notes = nullptr) {
        using mm = checkpoint_mismatch_error::mismatch;
        std::unordered_map<std::string, const io::named_tensor*> by_name;
        for (const auto& t : tensors) by_name.emplace(t.name, &t);
        const index_t E = cfg_.encoder.embed_dim, g = cfg_.grid();
        std::vector<mm> bad;
        index_t old_grid = 0;
        auto host = params_.to_host();
        std::vector<std::pair<const nn::parameter_entry*, const io::named_tensor*>> take;
        for (const auto& e : table_.entries()) {
            if (e.name.starts_with("decoder.")) continue;
            const auto it = by_name.find(e.name);
            const std::vector<std::int64_t> want(e.shape.begin(), e.shape.end());
            if (it == by_name.end()) {
                bad.push_back({e.name, {}, want, mm::kind::missing});
                continue;
            }
            const auto& s = it->second->shape;
            if (e.name == "pos_embed" && s.rank() == 3 && s[0] == 1 && s[2] == E && !(s == e.shape)) {
                index_t q = 0;
                while ((q + 1) * (q + 1) <= s[1] - 1) ++q;
                if (q > 0 && q * q == s[1] - 1) {
                    old_grid = q;
                    take.emplace_back(&e, it->second);
                    continue;
                }
            }
            if (!(s == e.shape)) bad.push_back({e.name, std::vector<std::int64_t>(s.begin(), s.end()), want, mm::kind::shape});
            else take.emplace_back(&e, it->second);
        }
        std::size_t ignored = 0;
        for (const auto& t : tensors) {
            if (table_.contains(t.name)) continue;
            if (t.name.starts_with("blocks."))
                bad.push_back({t.name, std::vector<std::int64_t>(t.shape.begin(), t.shape.end()), {}, mm::kind::unexpected});
            else
                ++ignored;
        }
        if (!bad.empty())
            throw checkpoint_mismatch_error("init '" + source + "': " + encoder_dimension_report(tensors, cfg_.encoder),
                                            std::move(bad));
        for (const auto& [e, t] : take) {
            std::vector<T> v(t->data.begin(), t->data.end());
            if (e->name == "pos_embed" && old_grid > 0) {
                v = resample_abs_pos_embed(v, E, old_grid, old_grid, g, g, 1);
                if (notes)
                    *notes << "init '" << source << "': pos_embed resampled bicubically from a " << old_grid << " x "
                           << old_grid << " to a " << g << " x " << g << " grid\n";
            }
            std::copy(v.begin(), v.end(), host.begin() + e->offset);
        }
        if (notes && ignored)
            *notes << "init '" << source << "': ignored " << ignored << " tensors outside the encoder (MAE decoder, "
                   << "mask token, segmentor, ...)\n";
        params_ = tensor<T, B>::from_host(host, params_.shape());
    }

    /// load_encoder from a safetensors file: a pre-training checkpoint, an encoder export
    /// (vasomim-export) or a converted PyTorch state dict.
    void load_encoder(const std::string& path, std::ostream* notes = nullptr) {
        load_encoder(io::read_state_dict(path).tensors, path, notes);
    }

    /// Sizes the arena for batch n (no-op if unchanged).
    void reserve(index_t n) {
        if (n == n_ && !arena_.empty()) return;
        detail_require<shape_error>(n > 0, "segmentation_model::reserve: batch " + std::to_string(n));
        nn::arena_counter counter;
        carve(counter, n);
        arena_ = tensor<T, B>(shape{counter.layout.size()});
        nn::arena_cursor<T> cur(arena_.data());
        auto parts = carve(cur, n);
        enc_.bind(parts.enc, n);
        dec_.bind(parts.dec);
        logits_ = parts.logits;
        dlogits_ = parts.dlogits;
        loss_scratch_ = parts.loss_scratch;
        n_ = n;
        const auto& a = enc_.acts();  // what the decoder reads, fixed for the batch size
        outs_ = {nullptr, a.tokens, std::vector<T*>(a.x.begin() + 1, a.x.end()), n};
    }

    /// Stochastic depth of the encoder for training forwards (vit_encoder::set_drop_path).
    void set_drop_path(double rate, std::uint64_t seed) { enc_.set_drop_path(rate, seed); }

    /// Forward on imgs [n, c, S, S] (backend pointer); returns the logits [n, k, S, S] (in the arena).
    /// A drop_path_key makes it a training forward (drop path with the draws it names); without, the
    /// encoder runs whole (evaluation).
    const T* forward(const T* imgs, index_t n, const drop_path_key* key = nullptr) {
        reserve(n);
        imgs_ = imgs;
        const T* P = params_.data();
        enc_.forward(P, imgs, key);
        outs_.imgs = imgs;
        dec_.forward(P, outs_, logits_);
        return logits_;
    }
    /// Tensor form with the shape checked.
    const T* forward(const tensor<T, B>& imgs, const drop_path_key* key = nullptr) {
        const index_t S = cfg_.img_size();
        detail_require<shape_error>(imgs.rank() == 4 && imgs.dim(1) == cfg_.encoder.in_chans && imgs.dim(2) == S &&
                                        imgs.dim(3) == S,
                                    "segmentation_model::forward: images " + imgs.shape().to_string() + " are not [n, " +
                                        std::to_string(cfg_.encoder.in_chans) + ", " + std::to_string(S) + ", " +
                                        std::to_string(S) + "]");
        return forward(imgs.data(), imgs.dim(0), key);
    }

    /// BCE + Dice of the last forward's logits against masks [n, k, S, S] in {0, 1}; keeps dloss/dlogits.
    T loss(const T* masks) {
        const index_t per = logits_size() / n_;
        return loss::bce_dice_loss<B>(logits_, masks, n_, per, loss_scratch_, dlogits_);
    }

    /// Backward from the loss() gradient.
    void backward() { backward(dlogits_); }
    /// Backward from a given gradient of the logits [n, k, S, S]; parameter gradients accumulate.
    void backward(const T* dlogits) {
        detail_require<config_error>(imgs_ != nullptr, "segmentation_model::backward called before forward");
        const T* P = params_.data();
        T* G = grads_.data();
        std::vector<const T*> g_hidden;
        const auto& e = outs_;
        const T* g_tokens = dec_.backward(P, G, e, dlogits, g_hidden);
        enc_.backward(P, G, g_tokens, g_hidden);
    }

    /// Host copy of one named parameter (or of its gradient).
    std::vector<T> parameter(const std::string& name, bool gradient = false) const {
        const auto& e = table_.find(name);
        std::vector<T> h(static_cast<std::size_t>(e.numel()));
        backend_traits<B>::copy_to_host((gradient ? grads_.data() : params_.data()) + e.offset, h.size(), h.data());
        return h;
    }
    /// Overwrites one named parameter from host values (sizes must agree).
    void set_parameter(const std::string& name, const std::vector<T>& values) {
        const auto& e = table_.find(name);
        detail_require<shape_error>(static_cast<index_t>(values.size()) == e.numel(),
                                    "segmentation_model::set_parameter: " + std::to_string(values.size()) +
                                        " values for '" + name + "' of shape " + e.shape.to_string());
        backend_traits<B>::copy_from_host(values.data(), values.size(), params_.data() + e.offset);
    }
    /// Host copy of the last logits.
    std::vector<T> host_logits() const {
        std::vector<T> h(static_cast<std::size_t>(logits_size()));
        backend_traits<B>::copy_to_host(logits_, h.size(), h.data());
        return h;
    }

private:
    /// fan_in of torch's default initialisation when `name` is a convolution weight of the decoder
    /// (rank 4, under "decoder.") or the bias of one: numel / shape[0] of the weight; 0 otherwise.
    double torch_conv_fan_in(const std::string& name) const {
        if (!name.starts_with("decoder.")) return 0;
        std::string w = name;
        if (name.ends_with(".bias")) w = name.substr(0, name.size() - 5) + ".weight";
        if (!table_.contains(w)) return 0;
        const auto& e = table_.find(w);
        if (e.shape.rank() != 4) return 0;
        return static_cast<double>(e.numel()) / static_cast<double>(e.shape[0]);
    }

    template <class E>
    static void detail_require(bool ok, const std::string& what) {
        if (!ok) throw E(what);
    }

    /// The arena's regions for batch n, handed out by `cur` (a counting cursor first: pointers null).
    struct regions {
        typename encoder_type::activations enc;
        typename decoder_type::activations dec;
        T *logits = nullptr, *dlogits = nullptr, *loss_scratch = nullptr;
    };
    template <class Cursor>
    regions carve(Cursor& cur, index_t n) const {
        const index_t count = n * cfg_.num_classes * cfg_.img_size() * cfg_.img_size();
        regions o;
        o.enc = enc_.carve(cur, n);
        o.dec = dec_.carve(cur, n);
        o.logits = cur.take(count);
        o.dlogits = cur.take(count);
        o.loss_scratch = cur.take(count + 3 * n);  // bce_dice_loss's scratch
        return o;
    }


    segmentation_config cfg_;
    nn::parameter_table table_;
    encoder_type enc_;
    decoder_type dec_;
    tensor<T, B> params_, grads_, arena_;
    T *logits_ = nullptr, *dlogits_ = nullptr, *loss_scratch_ = nullptr;
    const T* imgs_ = nullptr;
    encoder_outputs<T> outs_{};
    index_t n_ = 0;
};

}  // namespace vasomim::model
