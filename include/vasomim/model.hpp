#pragma once
// Models: MAE (encoder on visible patches, decoder, norm-pix loss), presets, patchify, guidance
// policies and the composed masked image model.

#include "vasomim/model/guidance.hpp"
#include "vasomim/model/mae.hpp"
#include "vasomim/model/mae_config.hpp"
#include "vasomim/model/masked_image_model.hpp"
#include "vasomim/model/patchify.hpp"
#include "vasomim/model/segmentation_model.hpp"
#include "vasomim/model/vit_encoder.hpp"
