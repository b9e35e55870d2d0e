#pragma once
// What a segmentation model (model/segmentation_model.hpp) is built for, and what its decoder sees
// of the encoder: shared by the model and its decoders (model/linear_decoder.hpp,
// model/unetr_decoder.hpp).

#include <vector>

#include "vasomim/core/tensor.hpp"
#include "vasomim/model/mae_config.hpp"
#include "vasomim/model/vit_encoder.hpp"

namespace vasomim::model {

/// decoder::unetr's own settings (model/unetr_decoder.hpp), MONAI UNETR's arguments of the same
/// meaning; other decoders ignore them.
struct unetr_config {
    index_t feature_size = 16;  ///< MONAI's feature_size (default 16): channels of the image-scale stage
    bool norm_affine = false;   ///< InstanceNorm2d affine; MONAI's norm_name "instance" is torch's default, false
};

/// What a segmentation model is built for: the encoder (img_size = the fine-tuning image size), the
/// number of output channels (1: vessel logits) and the UNETR decoder's settings.
struct segmentation_config {
    vit_encoder_config encoder;
    index_t num_classes = 1;
    unetr_config unetr{};

    index_t img_size() const { return encoder.img_size; }
    index_t grid() const { return encoder.img_size / encoder.patch_size; }
};

/// The encoder of a pre-training configuration at fine-tuning image size img_size (0: the same).
inline segmentation_config segmentation_config_of(const mae_config& c, index_t img_size = 0) {
    segmentation_config s;
    s.encoder = encoder_config_of(c);
    if (img_size > 0) s.encoder.img_size = img_size;
    return s;
}

/// What a decoder sees of the encoder's forward pass.
template <class T>
struct encoder_outputs {
    const T* imgs;               ///< [n, c, H, W]
    const T* tokens;             ///< final normed tokens [n, 1 + L, E]
    std::vector<T*> hidden;      ///< block outputs [n, 1 + L, E], one per block
    index_t n;
};

}  // namespace vasomim::model
