#pragma once
// A sequential view of one counter-based Philox stream for host-side procedural code (synthetic
// images, augmentation parameters): draw i is the stream's value at counter i, so a sample's
// randomness depends only on (seed, stream), never on which thread or worker produced it.

#include <cmath>
#include <cstdint>
#include <numbers>

#include "vasomim/core/philox.hpp"

namespace vasomim::data {

class random_stream {
public:
    random_stream(std::uint64_t seed, std::uint64_t stream) : gen_(seed, stream) {}

    /// Uniform in [0, 1).
    double uniform() { return gen_.uniform_double(next_++); }
    /// Uniform in [lo, hi).
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
    /// Integer uniform in [lo, hi] (inclusive).
    std::int64_t integer(std::int64_t lo, std::int64_t hi) {
        const auto span = static_cast<double>(hi - lo + 1);
        const auto v = lo + static_cast<std::int64_t>(std::floor(uniform() * span));
        return v > hi ? hi : v;
    }
    /// Standard normal (Box-Muller on two uniforms).
    double normal() {
        const double u1 = 1.0 - uniform();  // (0, 1]
        const double u2 = uniform();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
    }
    bool bernoulli(double p) { return uniform() < p; }

    std::uint64_t position() const { return next_; }

private:
    philox gen_;
    std::uint64_t next_ = 0;
};

}  // namespace vasomim::data
