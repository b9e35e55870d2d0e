#pragma once
// Which random numbers a sampler uses. Sample i of global step s draws from the Philox stream
// (seed, stream_id(s, i)); patch j of that sample uses Philox block j only:
//   uniform_double(2j)     -> the exponential-race variate of weighted sampling,
//   uniform_double(2j + 1) -> the uniform order noise (MAE's `noise`).
// Every value depends on (seed, step, sample, patch) alone, so any backend, thread count or batch
// split computes the same masks, and random masking equals anatomy-guided masking of all-zero maps.

#include <cstdint>

#include "vasomim/core/config.hpp"
#include "vasomim/core/philox.hpp"

namespace vasomim::masking::detail {

VASOMIM_HOST_DEVICE inline philox sample_stream(std::uint64_t seed, std::uint64_t step, std::int64_t sample) {
    return philox(seed, stream_id(step, static_cast<std::uint64_t>(sample)));
}

/// Uniform order noise of patch j, in [0, 1) with 53 random bits.
VASOMIM_HOST_DEVICE inline double order_noise(const philox& g, std::int64_t j) {
    return g.uniform_double(2 * static_cast<std::uint64_t>(j) + 1);
}

/// Uniform in (0, 1] for the exponential race, -log of which is a standard exponential.
VASOMIM_HOST_DEVICE inline double race_uniform(const philox& g, std::int64_t j) {
    return 1.0 - g.uniform_double(2 * static_cast<std::uint64_t>(j));
}

}  // namespace vasomim::masking::detail
