#pragma once
// MAE configurations: the ViT encoder presets of the MAE paper (base/16, large/16, huge/14), small
// and tiny encoders for tests and CPU demos, all with MAE's 512-wide, 8-block, 16-head decoder,
// and custom configurations validated up front.

#include <string>

#include "vasomim/core/error.hpp"
#include "vasomim/core/shape.hpp"

namespace vasomim::model {

struct mae_config {
    index_t img_size = 224, patch_size = 16, in_chans = 3;
    index_t embed_dim = 768, depth = 12, num_heads = 12;
    index_t decoder_embed_dim = 512, decoder_depth = 8, decoder_num_heads = 16;
    index_t mlp_ratio = 4;
    bool norm_pix_loss = true;

    index_t grid() const { return img_size / patch_size; }
    index_t num_patches() const { return grid() * grid(); }
    index_t patch_values() const { return patch_size * patch_size * in_chans; }

    /// Throws config_error naming the first inconsistent field.
    void validate() const {
        auto req = [](bool ok, const std::string& what) {
            if (!ok) throw config_error("mae_config: " + what);
        };
        req(img_size > 0 && patch_size > 0 && in_chans > 0, "sizes must be positive");
        req(img_size % patch_size == 0, "patch size " + std::to_string(patch_size) + " does not divide image size " +
                                            std::to_string(img_size));
        req(depth >= 0 && decoder_depth >= 0 && mlp_ratio > 0, "depths must be >= 0 and mlp_ratio > 0");
        req(num_heads > 0 && embed_dim % num_heads == 0,
            "embed_dim " + std::to_string(embed_dim) + " is not divisible by num_heads " + std::to_string(num_heads));
        req(decoder_num_heads > 0 && decoder_embed_dim % decoder_num_heads == 0,
            "decoder_embed_dim " + std::to_string(decoder_embed_dim) + " is not divisible by decoder_num_heads " +
                std::to_string(decoder_num_heads));
        req(embed_dim % 4 == 0 && decoder_embed_dim % 4 == 0,
            "embedding widths must be divisible by 4 for the 2-D sin-cos position embeddings");
    }
};

namespace presets {
/// MAE's decoder (512 wide, 8 blocks, 16 heads) under an encoder of width/depth/heads.
inline mae_config with_encoder(index_t width, index_t depth, index_t heads, index_t patch = 16, index_t img = 224) {
    mae_config c;
    c.img_size = img;
    c.patch_size = patch;
    c.embed_dim = width;
    c.depth = depth;
    c.num_heads = heads;
    return c;
}
inline mae_config mae_vit_tiny_patch16() { return with_encoder(192, 12, 3); }
inline mae_config mae_vit_small_patch16() { return with_encoder(384, 12, 6); }
inline mae_config mae_vit_base_patch16() { return with_encoder(768, 12, 12); }
inline mae_config mae_vit_large_patch16() { return with_encoder(1024, 24, 16); }
inline mae_config mae_vit_huge_patch14() { return with_encoder(1280, 32, 16, 14); }

/// A preset by name ("tiny", "small", "base", "large", "huge"); throws config_error otherwise.
inline mae_config by_name(const std::string& name) {
    if (name == "tiny") return mae_vit_tiny_patch16();
    if (name == "small") return mae_vit_small_patch16();
    if (name == "base") return mae_vit_base_patch16();
    if (name == "large") return mae_vit_large_patch16();
    if (name == "huge") return mae_vit_huge_patch14();
    throw config_error("mae preset '" + name + "' is unknown (tiny, small, base, large, huge)");
}
}  // namespace presets

}  // namespace vasomim::model
