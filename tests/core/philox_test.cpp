#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <set>

#include "vasomim/core/philox.hpp"

using vasomim::philox;

TEST(Philox, MatchesRandom123KnownAnswer) {
    // Known-answer vector of Philox4x32-10 from Random123's kat_vectors: counter and key all ones.
    r123::Philox4x32 g;
    r123::Philox4x32::ctr_type c = {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}};
    r123::Philox4x32::key_type k = {{0xffffffffu, 0xffffffffu}};
    const auto r = g(c, k);
    EXPECT_EQ(r.v[0], 0x408f276du);
    EXPECT_EQ(r.v[1], 0x41c83b0eu);
    EXPECT_EQ(r.v[2], 0xa20bc7c6u);
    EXPECT_EQ(r.v[3], 0x6d5451fdu);
}

TEST(Philox, ValueDependsOnlyOnSeedStreamAndIndex) {
    const philox a(42, 7), b(42, 7), c(43, 7), d(42, 8);
    for (std::uint64_t i : {0ull, 1ull, 5ull, 1000003ull}) {
        EXPECT_EQ(a.bits(i), b.bits(i));
        EXPECT_NE(a.bits(i), c.bits(i));
        EXPECT_NE(a.bits(i), d.bits(i));
    }
    // Words of one block are the block's four outputs in order.
    const auto blk = a.block(3);
    for (unsigned w = 0; w < 4; ++w) EXPECT_EQ(a.bits(12 + w), blk.v[w]);
}

TEST(Philox, UniformIsInUnitIntervalWithCorrectMoments) {
    const philox g(1234, 0);
    const int n = 200000;
    double sum = 0, sum2 = 0;
    float lo = 1, hi = 0;
    for (int i = 0; i < n; ++i) {
        const float u = g.uniform(static_cast<std::uint64_t>(i));
        ASSERT_GE(u, 0.0f);
        ASSERT_LT(u, 1.0f);
        lo = std::min(lo, u);
        hi = std::max(hi, u);
        sum += u;
        sum2 += double(u) * u;
    }
    const double mean = sum / n, var = sum2 / n - mean * mean;
    // Standard error of the mean is sqrt(1/12/n) ~ 6.5e-4; 5 sigma bounds.
    EXPECT_NEAR(mean, 0.5, 5 * std::sqrt(1.0 / 12 / n));
    EXPECT_NEAR(var, 1.0 / 12, 0.002);
    EXPECT_LT(lo, 1e-3f);
    EXPECT_GT(hi, 1 - 1e-3f);
}

TEST(Philox, NormalHasZeroMeanUnitVariance) {
    const philox g(99, 3);
    const int n = 200000;
    double sum = 0, sum2 = 0;
    for (int i = 0; i < n; ++i) {
        const double x = g.normal(static_cast<std::uint64_t>(i));
        ASSERT_TRUE(std::isfinite(x));
        sum += x;
        sum2 += x * x;
    }
    const double mean = sum / n, var = sum2 / n - mean * mean;
    EXPECT_NEAR(mean, 0.0, 5 / std::sqrt(double(n)));
    EXPECT_NEAR(var, 1.0, 0.02);
}

TEST(Philox, StreamIdsOfDistinctPairsDiffer) {
    std::set<std::uint64_t> ids;
    for (std::uint64_t step = 0; step < 50; ++step)
        for (std::uint64_t item = 0; item < 50; ++item) ids.insert(vasomim::stream_id(step, item));
    EXPECT_EQ(ids.size(), 2500u);
}
