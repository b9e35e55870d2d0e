#pragma once
// Optimisation: AdamW with parameter groups, MAE's warmup + half-cycle cosine schedule, and the
// segmentor's Adam with poly decay.

#include "vasomim/optim/adam.hpp"
#include "vasomim/optim/adamw.hpp"
#include "vasomim/optim/layer_decay.hpp"
#include "vasomim/optim/lr_schedule.hpp"
