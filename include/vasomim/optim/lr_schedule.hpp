#pragma once
// MAE's learning-rate schedule (util/lr_sched.py), applied per iteration with a fractional epoch:
// linear warmup from 0, then a half-cycle cosine from lr down to min_lr.

#include <cmath>

#include "vasomim/core/error.hpp"
#include "vasomim/core/shape.hpp"

namespace vasomim::optim {

/// The absolute learning rate from MAE's base rate: lr = blr * batch / 256.
inline double scaled_lr(double blr, index_t effective_batch) { return blr * static_cast<double>(effective_batch) / 256.0; }

struct warmup_cosine {
    double lr = 1.5e-4, min_lr = 0.0, warmup_epochs = 40, epochs = 800;

    /// Learning rate at fractional epoch e (e.g. iteration / iterations_per_epoch + epoch).
    double operator()(double e) const {
        if (!(epochs > warmup_epochs)) throw config_error("warmup_cosine: epochs must exceed warmup_epochs");
        if (e < warmup_epochs) return lr * e / warmup_epochs;
        const double pi = 3.14159265358979323846;
        return min_lr + (lr - min_lr) * 0.5 * (1.0 + std::cos(pi * (e - warmup_epochs) / (epochs - warmup_epochs)));
    }
    /// Learning rate at global iteration `iter` with `iters_per_epoch` iterations per epoch.
    double at_iteration(index_t iter, index_t iters_per_epoch) const {
        return (*this)(static_cast<double>(iter) / static_cast<double>(iters_per_epoch));
    }
};

}  // namespace vasomim::optim
