// map_index (vessel/boundary.hpp) against the extensions spelled out sample by sample, as
// scipy.ndimage pads a line: every mode, lines of 1 to 7 samples, positions several periods out.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "vasomim/vessel/boundary.hpp"

namespace {

using vasomim::vessel::boundary_mode;
using vasomim::vessel::map_index;

// One period of the extension to the right of the line (indices), starting at position n.
std::vector<std::int64_t> period(boundary_mode m, std::int64_t n) {
    std::vector<std::int64_t> p;
    switch (m) {
        case boundary_mode::reflect:  // n-1 .. 0, 0 .. n-1
            for (std::int64_t k = n - 1; k >= 0; --k) p.push_back(k);
            for (std::int64_t k = 0; k < n; ++k) p.push_back(k);
            break;
        case boundary_mode::mirror:  // n-2 .. 0, 1 .. n-1 (n >= 2)
            for (std::int64_t k = n - 2; k >= 0; --k) p.push_back(k);
            for (std::int64_t k = 1; k < n; ++k) p.push_back(k);
            break;
        case boundary_mode::wrap:
            for (std::int64_t k = 0; k < n; ++k) p.push_back(k);
            break;
        default:
            break;
    }
    return p;
}

TEST(Boundary, MapIndexFollowsTheExtensions) {
    for (std::int64_t n = 1; n <= 7; ++n)
        for (auto m : {boundary_mode::reflect, boundary_mode::mirror, boundary_mode::wrap, boundary_mode::nearest,
                       boundary_mode::constant}) {
            if (m == boundary_mode::mirror && n < 2) continue;
            const auto p = period(m, n);
            for (std::int64_t i = -4 * n - 3; i < 5 * n + 3; ++i) {
                std::int64_t want;
                if (i >= 0 && i < n) want = i;
                else if (m == boundary_mode::constant) want = -1;
                else if (m == boundary_mode::nearest) want = i < 0 ? 0 : n - 1;
                else {
                    // The extension is periodic with the period's length and, for the symmetric
                    // modes, mirrored: position i < 0 reads what position -1 - i (reflect) or -i
                    // (mirror) reads; wrap is periodic both ways.
                    const auto len = static_cast<std::int64_t>(p.size());
                    std::int64_t right = i;
                    if (i < 0) right = m == boundary_mode::reflect ? -1 - i : m == boundary_mode::mirror ? -i : i + len * (1 - i / len);
                    want = right < n ? right : p[static_cast<std::size_t>((right - n) % len)];
                }
                EXPECT_EQ(map_index(i, n, m), want) << "mode " << static_cast<int>(m) << " n " << n << " i " << i;
            }
        }
}

}  // namespace
