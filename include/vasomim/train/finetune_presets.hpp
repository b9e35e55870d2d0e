#pragma once
// Fine-tuning presets (GitHub issue 17): the encoder of a pre-training preset (train/presets.hpp,
// so that `--init` takes that preset's checkpoints) at a fine-tuning input side and working scale,
// with the hyper-parameters that go with it.
//   tiny  - the tiny pre-training encoder (width 128, depth 4, patch 8) on 128 px tiles of images
//           seen at half size, batch 4, 60 epochs: about a second per epoch of 30 images on 2 idle cores
// The layer-wise decay protects pre-trained lower layers; vasomim-finetune uses 1 (none) for a
// model trained from scratch unless --layer-decay says otherwise.
//   small - ViT-S/16 on 224 px tiles at full size
//   base  - ViT-B/16 on 224 px tiles at full size; layer decay 0.65, drop path 0.1 as MAE's ViT-B
//           fine-tuning
// And the one place where a decoder's name becomes its type (dispatch_decoder).

#include <string>

#include "vasomim/core/error.hpp"
#include "vasomim/model/segmentation_model.hpp"
#include "vasomim/model/unetr_decoder.hpp"
#include "vasomim/train/presets.hpp"

namespace vasomim::train {

struct finetune_preset {
    model::segmentation_config model;
    double scale = 1.0;  ///< model pixels per image pixel
    std::size_t batch_size = 8;
    std::int64_t epochs = 50;
    double warmup_epochs = 5;
    double lr = 5e-4, min_lr = 1e-6;
    double layer_decay = 0.75, weight_decay = 0.05, drop_path = 0.1;
};

inline finetune_preset finetune_preset_by_name(const std::string& name) {
    finetune_preset p;
    if (name != "tiny" && name != "small" && name != "base")
        throw config_error("fine-tuning preset '" + name + "' is unknown (tiny, small, base)");
    p.model = model::segmentation_config_of(preset_by_name(name).model);
    if (name == "tiny") {
        p.model.encoder.img_size = 128;
        p.scale = 0.5;
        p.batch_size = 4;
        p.epochs = 60;
        p.warmup_epochs = 3;
        p.lr = 1e-3;
        p.drop_path = 0.0;
    } else if (name == "small") {
        p.model.encoder.img_size = 224;
    } else {
        p.model.encoder.img_size = 224;
        p.epochs = 100;
        p.lr = 2.5e-4;
        p.layer_decay = 0.65;
    }
    return p;
}

/// Calls f.template operator()<Decoder>() with the decoder policy named `name` (linear: the
/// per-patch linear head; unetr: MONAI's 2-D UNETR decoder, model/unetr_decoder.hpp) and returns
/// its result; a new decoder gets its line here.
template <class F>
decltype(auto) dispatch_decoder(const std::string& name, F&& f) {
    if (name == "linear") return f.template operator()<model::decoder::linear>();
    if (name == "unetr") return f.template operator()<model::decoder::unetr>();
    throw config_error("decoder '" + name + "' is unknown (linear, unetr)");
}

}  // namespace vasomim::train
