#pragma once
// Weak-to-strong schedules for the guided fraction beta_e: the share of the masked patches that the
// anatomy-guided sampler draws from the patch distribution. The released code passes
// `epoch_ratio = (epoch + 1) / epochs` and uses beta_e = beta_0 + epoch_ratio * (beta_E - beta_0);
// a schedule here maps that training progress to beta_e, so the sampler does not care whether the
// trainer counts epochs or global steps.

#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>

#include "vasomim/core/error.hpp"

namespace vasomim::masking {

/// Training progress in (0, 1], as the released code's `epoch_ratio`.
class progress {
public:
    /// Progress after epoch `epoch` (0-based) of `epochs`: (epoch + 1) / epochs.
    /// Throws value_error for epochs <= 0 or epoch outside [0, epochs).
    static progress from_epoch(std::int64_t epoch, std::int64_t epochs) {
        vasomim::detail::require(epochs > 0, "masking::progress: epochs must be > 0, got " + std::to_string(epochs));
        vasomim::detail::require(epoch >= 0 && epoch < epochs, "masking::progress: epoch " + std::to_string(epoch) +
                                                          " outside [0, " + std::to_string(epochs) + ")");
        return progress(static_cast<double>(epoch + 1) / static_cast<double>(epochs));
    }

    /// Progress after global step `step` (0-based) of `total_steps`: (step + 1) / total_steps, so a
    /// per-iteration schedule reaches the same end point as the per-epoch one.
    static progress from_step(std::int64_t step, std::int64_t total_steps) {
        vasomim::detail::require(total_steps > 0,
                        "masking::progress: total_steps must be > 0, got " + std::to_string(total_steps));
        vasomim::detail::require(step >= 0 && step < total_steps, "masking::progress: step " + std::to_string(step) +
                                                             " outside [0, " + std::to_string(total_steps) + ")");
        return progress(static_cast<double>(step + 1) / static_cast<double>(total_steps));
    }

    /// A raw ratio in [0, 1] (the released code's `epoch_ratio` argument).
    static progress from_ratio(double ratio) {
        vasomim::detail::require(ratio >= 0.0 && ratio <= 1.0,
                        "masking::progress: ratio must lie in [0, 1], got " + std::to_string(ratio));
        return progress(ratio);
    }

    double ratio() const { return ratio_; }

private:
    explicit progress(double r) : ratio_(r) {}
    double ratio_;
};

namespace detail {
inline void check_beta(double b, const char* who) {
    vasomim::detail::require(b >= 0.0 && b <= 1.0, std::string(who) + ": beta must lie in [0, 1], got " + std::to_string(b));
}
}  // namespace detail

namespace schedule {

/// The released schedule: beta_e = beta_0 + t * (beta_E - beta_0), t = (epoch + 1) / epochs;
/// defaults 0 -> 0.5 as in the released pre-training script.
struct linear {
    double beta_0 = 0.0;
    double beta_E = 0.5;

    double operator()(progress t) const {
        masking::detail::check_beta(beta_0, "schedule::linear");
        masking::detail::check_beta(beta_E, "schedule::linear");
        return beta_0 + t.ratio() * (beta_E - beta_0);
    }
    double operator()(std::int64_t epoch, std::int64_t epochs) const {
        return (*this)(progress::from_epoch(epoch, epochs));
    }
};

/// beta_e = beta for every epoch (the paper's "fixed ratio" ablation).
struct constant {
    double beta = 0.5;

    double operator()(progress) const {
        masking::detail::check_beta(beta, "schedule::constant");
        return beta;
    }
    double operator()(std::int64_t epoch, std::int64_t epochs) const {
        return (*this)(progress::from_epoch(epoch, epochs));
    }
};

/// Half-cosine ramp: beta_e = beta_0 + (beta_E - beta_0) * (1 - cos(pi t)) / 2; slow at both ends.
struct cosine {
    double beta_0 = 0.0;
    double beta_E = 0.5;

    double operator()(progress t) const {
        masking::detail::check_beta(beta_0, "schedule::cosine");
        masking::detail::check_beta(beta_E, "schedule::cosine");
        return beta_0 + (beta_E - beta_0) * 0.5 * (1.0 - std::cos(std::numbers::pi * t.ratio()));
    }
    double operator()(std::int64_t epoch, std::int64_t epochs) const {
        return (*this)(progress::from_epoch(epoch, epochs));
    }
};

}  // namespace schedule
}  // namespace vasomim::masking
