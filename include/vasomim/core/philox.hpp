#pragma once
// Counter-based random numbers (Random123's Philox4x32-10). A value depends only on
// (seed, stream, index), never on call order or thread count, so every backend and any number of
// threads produce the same stream: the property the masking and initialisation code relies on.

#include <cstdint>

#include <Random123/boxmuller.hpp>
#include <Random123/philox.h>
#include <Random123/uniform.hpp>

#include "vasomim/core/config.hpp"

namespace vasomim {

/// Stateless generator: `bits(i)` is word i%4 of the Philox block at counter
/// (i/4 low, i/4 high, stream low, stream high) under key (seed low, seed high).
class philox {
public:
    using engine = r123::Philox4x32;

    VASOMIM_HOST_DEVICE philox(std::uint64_t seed, std::uint64_t stream = 0)
        : key_{{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}},
          stream_(stream) {}

    /// The four 32-bit words of block `block_index`.
    VASOMIM_HOST_DEVICE engine::ctr_type block(std::uint64_t block_index) const {
        engine::ctr_type ctr = {{static_cast<std::uint32_t>(block_index),
                                 static_cast<std::uint32_t>(block_index >> 32),
                                 static_cast<std::uint32_t>(stream_),
                                 static_cast<std::uint32_t>(stream_ >> 32)}};
        return engine()(ctr, key_);
    }

    /// 32 random bits at position i of the stream.
    VASOMIM_HOST_DEVICE std::uint32_t bits(std::uint64_t i) const { return block(i >> 2).v[i & 3]; }

    /// Uniform float in [0, 1) with 24 random bits: exact integer arithmetic, so identical on
    /// every backend and compiler.
    VASOMIM_HOST_DEVICE float uniform(std::uint64_t i) const {
        return static_cast<float>(bits(i) >> 8) * 0x1p-24f;
    }

    /// Uniform double in [0, 1) with 53 random bits taken from one 64-bit half of a block.
    VASOMIM_HOST_DEVICE double uniform_double(std::uint64_t i) const {
        const auto b = block(i >> 1);
        const unsigned h = static_cast<unsigned>(i & 1) * 2;
        const std::uint64_t x = (static_cast<std::uint64_t>(b.v[h]) << 32) | b.v[h + 1];
        return static_cast<double>(x >> 11) * 0x1p-53;
    }

    /// Standard normal float at position i: Box-Muller (cosine branch) on the word pair
    /// (2*(i%2), 2*(i%2)+1) of block i/2. Bit-identical across host backends; on CUDA it may differ
    /// from the host in the last bits of log/sincos.
    VASOMIM_HOST_DEVICE float normal(std::uint64_t i) const {
        const auto b = block(i >> 1);
        const unsigned k = static_cast<unsigned>(i & 1) * 2;
        return r123::boxmuller(b.v[k], b.v[k + 1]).x;
    }

    VASOMIM_HOST_DEVICE std::uint64_t stream() const { return stream_; }
    /// The Philox key (seed low, seed high), for kernels that evaluate many blocks at once.
    VASOMIM_HOST_DEVICE engine::key_type key() const { return key_; }

private:
    engine::key_type key_;
    std::uint64_t stream_;
};

/// Derives the stream id of a (step, item) pair, e.g. (training step, sample index): distinct
/// pairs give distinct streams for any step < 2^40 and item < 2^24.
VASOMIM_HOST_DEVICE constexpr std::uint64_t stream_id(std::uint64_t step, std::uint64_t item) {
    return (step << 24) ^ item;
}

}  // namespace vasomim
