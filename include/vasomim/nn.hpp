#pragma once
// The transformer layers: each with an explicit forward and backward over raw backend pointers.

#include "vasomim/nn/arena.hpp"
#include "vasomim/nn/attention.hpp"
#include "vasomim/nn/gelu.hpp"
#include "vasomim/nn/layer_norm.hpp"
#include "vasomim/nn/linear.hpp"
#include "vasomim/nn/mlp.hpp"
#include "vasomim/nn/parameters.hpp"
#include "vasomim/nn/patch_embed.hpp"
#include "vasomim/nn/pos_embed.hpp"
#include "vasomim/nn/softmax.hpp"
#include "vasomim/nn/vit_block.hpp"
