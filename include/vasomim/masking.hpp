#pragma once
// Umbrella header of the masking module: patch weights and distribution, schedules, the random and
// anatomy-guided samplers, and the token gather / unshuffle used by the encoder and decoder.

#include "vasomim/masking/anatomy_guided.hpp"
#include "vasomim/masking/apply.hpp"
#include "vasomim/masking/patch_mask.hpp"
#include "vasomim/masking/patch_weights.hpp"
#include "vasomim/masking/random.hpp"
#include "vasomim/masking/schedule.hpp"
#include "vasomim/masking/token_gather.hpp"
