#pragma once
// Training module: the pre-training loop, checkpoints, panels, presets, interrupt handling.

#include "vasomim/train/checkpoint.hpp"
#include "vasomim/train/interrupt.hpp"
#include "vasomim/train/panel.hpp"
#include "vasomim/train/presets.hpp"
#include "vasomim/train/pretrain_loop.hpp"
