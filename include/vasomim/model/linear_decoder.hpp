#pragma once
// decoder::linear of the segmentation model (model/segmentation_model.hpp): a per-patch linear head
// E -> p*p*classes on the final normed patch tokens, unpatchified to the image (the cheap probe);
// parameters decoder.head.weight / decoder.head.bias.

#include <vector>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/model/patchify.hpp"
#include "vasomim/model/segmentation_config.hpp"
#include "vasomim/nn/linear.hpp"
#include "vasomim/nn/parameters.hpp"

namespace vasomim::model {

/// The per-patch linear decoder (see decoder::linear).
template <backend_policy B, class T>
class linear_decoder {
public:
    struct activations {
        T *head = nullptr;    // [n, 1 + L, p*p*k] (the cls row computed and ignored, as MAE's decoder_pred)
        T *g_head = nullptr;  // same
        T *g_tokens = nullptr;  // [n, 1 + L, E]
    };

    linear_decoder(const segmentation_config& c, nn::parameter_table& table) : cfg_(c) {
        const index_t p = c.encoder.patch_size;
        w_ = table.add("decoder.head.weight", {p * p * c.num_classes, c.encoder.embed_dim});
        b_ = table.add("decoder.head.bias", {p * p * c.num_classes}, true, false);
    }

    template <class Cursor>
    activations carve(Cursor& cur, index_t n) const {
        const index_t t = 1 + cfg_.encoder.num_patches();
        activations a;
        a.head = cur.take(n * t * out());
        a.g_head = cur.take(n * t * out());
        a.g_tokens = cur.take(n * t * cfg_.encoder.embed_dim);
        return a;
    }
    void bind(const activations& a) { acts_ = a; }

    /// logits [n, k, H, W] from the encoder's tokens.
    void forward(const T* P, const encoder_outputs<T>& e, T* logits) {
        const index_t t = 1 + cfg_.encoder.num_patches();
        nn::linear_forward<B>(acts_.head, e.tokens, P + w_, P + b_, e.n * t, cfg_.encoder.embed_dim, out());
        unpatchify<B>(logits, acts_.head, pdims(e.n), 1);  // the cls row skipped
    }

    /// Gradients from dlogits: parameter gradients accumulate into G; g_tokens (returned) holds the
    /// gradient of the final tokens; g_hidden is left empty (this decoder reads no inner block).
    const T* backward(const T* P, T* G, const encoder_outputs<T>& e, const T* dlogits, std::vector<const T*>& g_hidden) {
        const index_t t = 1 + cfg_.encoder.num_patches();
        g_hidden.clear();
        patchify<B>(acts_.g_head, dlogits, pdims(e.n), 1);  // the cls row's gradient 0
        nn::linear_backward<B>(acts_.g_tokens, G + w_, G + b_, acts_.g_head, e.tokens, P + w_, e.n * t,
                               cfg_.encoder.embed_dim, out());
        return acts_.g_tokens;
    }

private:
    index_t out() const { return cfg_.encoder.patch_size * cfg_.encoder.patch_size * cfg_.num_classes; }
    nn::patch_dims pdims(index_t n) const {
        return {n, cfg_.num_classes, cfg_.encoder.img_size, cfg_.encoder.img_size, cfg_.encoder.patch_size};
    }

    segmentation_config cfg_;
    index_t w_ = 0, b_ = 0;
    activations acts_;
};

namespace decoder {
/// Per-patch linear head on the final normed patch tokens, unpatchified (the cheap probe).
struct linear {
    template <backend_policy B, class T>
    using type = linear_decoder<B, T>;
};
}  // namespace decoder

}  // namespace vasomim::model
