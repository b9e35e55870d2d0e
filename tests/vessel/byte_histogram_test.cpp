// count_bytes (vessel/byte_histogram.hpp) against a plain count, on the distributions it meets:
// mostly zeros and ones (a Sato response), uniform bytes, and mixtures chunk by chunk, with lengths
// and offsets that leave partial 64-byte chunks. Host-only.
#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <vector>

#include "vasomim/core/philox.hpp"
#include "vasomim/vessel/byte_histogram.hpp"

namespace {

using namespace vasomim;

TEST(ByteHistogram, CountBytesEqualsAPlainCount) {
    const philox gen(11, 0);
    std::vector<std::uint8_t> data(5000);
    for (int kind = 0; kind < 3; ++kind) {
        for (std::size_t q = 0; q < data.size(); ++q) {
            const std::uint32_t r = gen.bits(q + 10000 * static_cast<std::size_t>(kind));
            if (kind == 0) data[q] = (r % 100 < 74) ? 0 : (r % 100 < 94 ? 1 : static_cast<std::uint8_t>(r >> 24));
            else if (kind == 1) data[q] = static_cast<std::uint8_t>(r >> 24);
            else data[q] = ((q / 64) % 2) ? static_cast<std::uint8_t>(r >> 24) : static_cast<std::uint8_t>(r % 2);
        }
        for (std::size_t off : {0u, 3u, 61u})
            for (std::size_t n : {0u, 1u, 63u, 64u, 65u, 200u, 4900u}) {
                SCOPED_TRACE("kind " + std::to_string(kind) + " offset " + std::to_string(off) + " n " +
                             std::to_string(n));
                std::array<std::size_t, 256> expected{};
                for (std::size_t q = off; q < off + n; ++q) ++expected[data[q]];
                vessel::detail::byte_histograms h{};
                vessel::detail::count_bytes(data.data() + off, n, h);
                EXPECT_EQ(vessel::detail::merged(h), expected);
            }
    }
}

}  // namespace

#endif  // !VASOMIM_HAS_CUDA
