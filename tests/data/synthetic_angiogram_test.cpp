#include <gtest/gtest.h>

#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA
#include <xtensor/xadapt.hpp>
#include <xtensor/xmath.hpp>

#include "vasomim/data/synthetic_angiogram.hpp"

namespace {

using namespace vasomim;
using data::make_synthetic_angiogram;
using data::synthetic_angiogram_options;

TEST(SyntheticAngiogram, SameSeedAndIndexGiveTheSameImage) {
    const synthetic_angiogram_options o;
    const auto a = make_synthetic_angiogram(o, 7, 3), b = make_synthetic_angiogram(o, 7, 3);
    EXPECT_EQ(a.image, b.image);
    EXPECT_EQ(a.mask, b.mask);
    const auto c = make_synthetic_angiogram(o, 7, 4), d = make_synthetic_angiogram(o, 8, 3);
    EXPECT_NE(a.mask, c.mask);
    EXPECT_NE(a.mask, d.mask);
}

TEST(SyntheticAngiogram, VesselsAreDarkThinStructuresCoveringAFewPercent) {
    const synthetic_angiogram_options o;
    double fraction_sum = 0;
    for (std::uint64_t k = 0; k < 20; ++k) {
        const auto s = make_synthetic_angiogram(o, 2026, k);
        ASSERT_EQ(s.image.shape()[0], 224u);
        ASSERT_EQ(s.image.shape()[1], 224u);
        double in = 0, out = 0, n_in = 0, n_out = 0;
        for (std::size_t i = 0; i < s.image.size(); ++i) {
            const auto m = s.mask.data()[i];
            ASSERT_TRUE(m == 0 || m == 255);
            (m ? in : out) += s.image.data()[i];
            (m ? n_in : n_out) += 1;
        }
        ASSERT_GT(n_in, 0) << "image " << k << " has no vessel";
        const double fraction = n_in / double(s.image.size());
        fraction_sum += fraction;
        EXPECT_LT(fraction, 0.35) << "image " << k;
        EXPECT_LT(in / n_in, out / n_out - 5) << "vessels must be darker than background, image " << k;
    }
    // Real coronary angiograms: vessels cover roughly 3-11% of the image (coronary80 README).
    const double mean_fraction = fraction_sum / 20;
    EXPECT_GT(mean_fraction, 0.02);
    EXPECT_LT(mean_fraction, 0.20);
}

TEST(SyntheticAngiogram, HonoursSizeAndRejectsBadOptions) {
    synthetic_angiogram_options o;
    o.height = 64;
    o.width = 96;
    const auto s = make_synthetic_angiogram(o, 1, 0);
    EXPECT_EQ(s.image.shape()[0], 64u);
    EXPECT_EQ(s.image.shape()[1], 96u);
    o.height = 8;
    EXPECT_THROW(make_synthetic_angiogram(o, 1, 0), value_error);
    o = {};
    o.attenuation_min = 0;
    EXPECT_THROW(make_synthetic_angiogram(o, 1, 0), value_error);
}

}  // namespace
#endif
