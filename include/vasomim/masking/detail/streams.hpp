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

/// Both of patch j's numbers from one Philox block: {race_uniform, order_noise}, bit-identical to
/// the two functions above.
struct patch_uniforms {
    double race;   ///< in (0, 1]
    double noise;  ///< in [0, 1)
};
VASOMIM_HOST_DEVICE inline patch_uniforms uniforms_of_patch(const philox& g, std::int64_t j) {
    const auto b = g.block(static_cast<std::uint64_t>(j));
    const std::uint64_t lo = (static_cast<std::uint64_t>(b.v[0]) << 32) | b.v[1];
    const std::uint64_t hi = (static_cast<std::uint64_t>(b.v[2]) << 32) | b.v[3];
    return {1.0 - static_cast<double>(lo >> 11) * 0x1p-53, static_cast<double>(hi >> 11) * 0x1p-53};
}

}  // namespace vasomim::masking::detail
