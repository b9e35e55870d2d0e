#pragma once
// Pre-training presets: a model configuration with the hyper-parameters that go with it.
//   tiny  - a small ViT on 64 px images for the CPU demo (minutes on 2 cores)
//   small - ViT-S/16 encoder, 224 px
//   base  - MAE ViT-B/16 as released by VasoMIM: 224 px, patch 16, mask ratio 0.5,
//           beta 0 -> 0.5, blr 1.5e-4, weight decay 0.05, 800 epochs, warmup 40, norm-pix

#include <string>

#include "vasomim/core/error.hpp"
#include "vasomim/model/mae_config.hpp"

namespace vasomim::train {

struct pretrain_preset {
    model::mae_config model;
    std::size_t batch_size = 64;
    std::int64_t epochs = 800;
    double warmup_epochs = 40;
    double blr = 1.5e-4;
    double weight_decay = 0.05;
    double mask_ratio = 0.5;
    double beta_0 = 0.0, beta_E = 0.5;
    std::size_t synthetic_images = 2048;  ///< size of the synthetic default data set
};

inline pretrain_preset preset_by_name(const std::string& name) {
    pretrain_preset p;
    if (name == "tiny") {
        auto& m = p.model;
        m.img_size = 64;
        m.patch_size = 8;
        m.embed_dim = 128;
        m.depth = 4;
        m.num_heads = 4;
        m.decoder_embed_dim = 64;
        m.decoder_depth = 2;
        m.decoder_num_heads = 4;
        p.batch_size = 32;
        p.epochs = 12;
        p.warmup_epochs = 1;
        p.blr = 1e-2;  // lr 1.25e-3 at batch 32: a short run needs a large step
        p.synthetic_images = 512;
    } else if (name == "small") {
        p.model = model::presets::mae_vit_small_patch16();
    } else if (name == "base") {
        p.model = model::presets::mae_vit_base_patch16();
    } else {
        throw config_error("preset '" + name + "' is unknown (tiny, small, base)");
    }
    return p;
}

}  // namespace vasomim::train
