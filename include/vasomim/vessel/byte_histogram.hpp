#pragma once
// Counting uint8 values into four interleaved histograms: consecutive equal values (runs of zeros
// in a response, flat regions in an image) do not wait on one counter, and there is no branch.

#include <array>
#include <cstddef>
#include <cstdint>

namespace vasomim::vessel::detail {

using byte_histograms = std::array<std::array<std::size_t, 256>, 4>;

/// Adds the n values at p to h (value k of p[q] counted in h[q % 4][k]).
inline void count_bytes(const std::uint8_t* p, std::size_t n, byte_histograms& h) {
    std::size_t q = 0;
    for (; q + 4 <= n; q += 4) {
        ++h[0][p[q]];
        ++h[1][p[q + 1]];
        ++h[2][p[q + 2]];
        ++h[3][p[q + 3]];
    }
    for (; q < n; ++q) ++h[0][p[q]];
}

/// The four histograms summed.
inline std::array<std::size_t, 256> merged(const byte_histograms& h) {
    std::array<std::size_t, 256> out{};
    for (const auto& part : h)
        for (std::size_t v = 0; v < 256; ++v) out[v] += part[v];
    return out;
}

}  // namespace vasomim::vessel::detail
