#pragma once
// Optimisation: AdamW with parameter groups, MAE's warmup + half-cycle cosine schedule.

#include "vasomim/optim/adamw.hpp"
#include "vasomim/optim/lr_schedule.hpp"
