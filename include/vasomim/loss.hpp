#pragma once
// Training objectives: masked reconstruction (norm-pix), segmentation (BCE, Dice) and the
// anatomical consistency loss.

#include "vasomim/loss/bce_dice.hpp"
#include "vasomim/loss/consistency.hpp"
#include "vasomim/loss/masked_reconstruction.hpp"
