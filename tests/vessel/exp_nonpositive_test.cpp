// The branch-free exp of the Frangi kernel against the C library, over its whole domain.
#include <gtest/gtest.h>

#include <cmath>

#include "vasomim/vessel/exp_nonpositive.hpp"

namespace {

using vasomim::vessel::exp_nonpositive;

TEST(VesselExp, DoubleMatchesLibmWithin1e15Relative) {
    EXPECT_EQ(exp_nonpositive(0.0), 1.0);
    EXPECT_EQ(exp_nonpositive(-0.0), 1.0);
    double worst = 0;
    for (int i = 0; i <= 2000000; ++i) {
        const double x = -708.0 * (i / 2000000.0);
        const double ref = std::exp(x);
        worst = std::max(worst, std::abs(exp_nonpositive(x) - ref) / ref);
    }
    for (double x : {-1e-300, -1e-17, -0.34657359, -0.34657360, -0.6931471805599453, -1.0, -707.9})
        worst = std::max(worst, std::abs(exp_nonpositive(x) - std::exp(x)) / std::exp(x));
    EXPECT_LT(worst, 1e-15);
    EXPECT_EQ(exp_nonpositive(-709.0), 0.0);
    EXPECT_EQ(exp_nonpositive(-1e30), 0.0);
    EXPECT_EQ(exp_nonpositive(-HUGE_VAL), 0.0);
}

TEST(VesselExp, FloatMatchesLibmWithin1e6Relative) {
    EXPECT_EQ(exp_nonpositive(0.0f), 1.0f);
    double worst = 0;
    for (int i = 0; i <= 1000000; ++i) {
        const float x = -87.0f * static_cast<float>(i / 1000000.0);
        const double ref = std::exp(static_cast<double>(x));
        worst = std::max(worst, std::abs(static_cast<double>(exp_nonpositive(x)) - ref) / ref);
    }
    EXPECT_LT(worst, 1e-6);
    EXPECT_EQ(exp_nonpositive(-88.0f), 0.0f);
    EXPECT_EQ(exp_nonpositive(-HUGE_VALF), 0.0f);
}

}  // namespace
