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

#if defined(__AVX512F__) && !defined(__CUDACC__)
#include <immintrin.h>
#endif

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

/// The blocks of patches 0..n-1 as two 64-bit halves, lo[j] (race) and hi[j] (noise), which
/// uniforms_of_patch turns into doubles. On AVX-512 hosts eight blocks at a time (Philox4x32-10 in
/// 64-bit lanes with the same integer arithmetic as Random123, so the same bits); elsewhere block
/// by block.
VASOMIM_HOST_DEVICE inline void patch_blocks(const philox& g, std::int32_t n, std::uint64_t* lo, std::uint64_t* hi) {
    std::int32_t j = 0;
#if defined(__AVX512F__) && !defined(__CUDACC__)
    const auto key = g.key();
    const std::uint64_t stream = g.stream();
    const __m512i m0 = _mm512_set1_epi64(0xD2511F53), m1 = _mm512_set1_epi64(0xCD9E8D57);
    const __m512i low32 = _mm512_set1_epi64(0xFFFFFFFF), lanes = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    const __m512i s0 = _mm512_set1_epi64(static_cast<std::uint32_t>(stream));
    const __m512i s1 = _mm512_set1_epi64(static_cast<std::uint32_t>(stream >> 32));
    for (; j + 8 <= n; j += 8) {
        // Counter (j, 0, stream low, stream high), key (seed low, seed high); each word in the low
        // half of a 64-bit lane, where _mm512_mul_epu32 reads it.
        __m512i c0 = _mm512_add_epi64(_mm512_set1_epi64(j), lanes), c1 = _mm512_setzero_si512(), c2 = s0, c3 = s1;
        std::uint32_t k0 = key.v[0], k1 = key.v[1];
        for (int round = 0; round < 10; ++round) {
            if (round > 0) k0 += 0x9E3779B9u, k1 += 0xBB67AE85u;
            const __m512i p0 = _mm512_mul_epu32(c0, m0), p1 = _mm512_mul_epu32(c2, m1);
            c0 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(p1, 32), c1), _mm512_set1_epi64(k0));
            c1 = _mm512_and_si512(p1, low32);
            c2 = _mm512_xor_si512(_mm512_xor_si512(_mm512_srli_epi64(p0, 32), c3), _mm512_set1_epi64(k1));
            c3 = _mm512_and_si512(p0, low32);
        }
        _mm512_storeu_si512(lo + j, _mm512_or_si512(_mm512_slli_epi64(c0, 32), c1));
        _mm512_storeu_si512(hi + j, _mm512_or_si512(_mm512_slli_epi64(c2, 32), c3));
    }
#endif
    for (; j < n; ++j) {
        const auto b = g.block(static_cast<std::uint64_t>(j));
        lo[j] = (static_cast<std::uint64_t>(b.v[0]) << 32) | b.v[1];
        hi[j] = (static_cast<std::uint64_t>(b.v[2]) << 32) | b.v[3];
    }
}

/// race_uniform of a block's low half, as in uniforms_of_patch.
VASOMIM_HOST_DEVICE inline double race_uniform_of(std::uint64_t lo) {
    return 1.0 - static_cast<double>(lo >> 11) * 0x1p-53;
}

}  // namespace vasomim::masking::detail
