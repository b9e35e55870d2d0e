#pragma once
// Models: MAE (encoder on visible patches, decoder, norm-pix loss), presets, patchify.

#include "vasomim/model/mae.hpp"
#include "vasomim/model/mae_config.hpp"
#include "vasomim/model/patchify.hpp"
