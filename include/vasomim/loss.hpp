#pragma once
// Losses: segmentation (BCE, Dice) and the anatomical consistency loss.

#include "vasomim/loss/bce_dice.hpp"
#include "vasomim/loss/consistency.hpp"
