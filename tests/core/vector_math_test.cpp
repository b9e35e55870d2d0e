// vmath::exp, vmath::erf (float) and vmath::exp_nonpositive (double, float) against libm over
// dense grids, at the edges of float's range and for non-finite inputs.
#include <algorithm>
#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "vasomim/core/vector_math.hpp"

namespace {

namespace vm = vasomim::vmath;  // not using-declarations: they would make ::exp(double) ambiguous

TEST(VectorMath, ExpIsWithin3e7RelativeOverTheNormalRange) {
    double worst = 0;
    float at = 0;
    for (float x = -87.3f; x <= 88.7f; x = std::nextafter(x + 1e-3f * std::abs(x) + 1e-6f, 100.0f)) {
        const double ref = std::exp(double(x));
        const double err = std::abs(double(vm::exp(x)) - ref) / ref;
        if (err > worst) worst = err, at = x;
    }
    EXPECT_LT(worst, 3e-7) << "at x = " << at;
    EXPECT_EQ(vm::exp(0.0f), 1.0f);
}

TEST(VectorMath, ExpEdges) {
    const float inf = std::numeric_limits<float>::infinity();
    EXPECT_EQ(vm::exp(-87.4f), 0.0f);
    EXPECT_EQ(vm::exp(-1e30f), 0.0f);
    EXPECT_EQ(vm::exp(-inf), 0.0f);
    EXPECT_EQ(vm::exp(88.8f), inf);
    EXPECT_EQ(vm::exp(inf), inf);
    EXPECT_TRUE(std::isnan(vm::exp(std::numeric_limits<float>::quiet_NaN())));
    // The top of the range, where 2^n alone would overflow, stays finite and accurate.
    const float top = 88.72f;
    EXPECT_NEAR(double(vm::exp(top)) / std::exp(double(top)), 1.0, 3e-7);
    const float bottom = -87.33f;
    EXPECT_NEAR(double(vm::exp(bottom)) / std::exp(double(bottom)), 1.0, 3e-7);
}

TEST(VectorMath, ErfIsWithin2p5e7Absolute) {
    double worst = 0;
    float at = 0;
    for (float x = -10.0f; x <= 10.0f; x += 1.0f / 4096) {
        const double err = std::abs(double(vm::erf(x)) - std::erf(double(x)));
        if (err > worst) worst = err, at = x;
    }
    EXPECT_LT(worst, 2.5e-7) << "at x = " << at;
    // Odd, saturating, NaN in -> NaN out.
    EXPECT_EQ(vm::erf(-0.75f), -vm::erf(0.75f));
    const float inf = std::numeric_limits<float>::infinity();
    EXPECT_EQ(vm::erf(inf), 1.0f);
    EXPECT_EQ(vm::erf(-inf), -1.0f);
    EXPECT_TRUE(std::isnan(vm::erf(std::numeric_limits<float>::quiet_NaN())));
}

TEST(VectorMath, ExpNonpositiveDoubleIsWithin1e15Relative) {
    EXPECT_EQ(vm::exp_nonpositive(0.0), 1.0);
    EXPECT_EQ(vm::exp_nonpositive(-0.0), 1.0);
    double worst = 0;
    for (int i = 0; i <= 2000000; ++i) {
        const double x = -708.0 * (i / 2000000.0);
        const double ref = std::exp(x);
        worst = std::max(worst, std::abs(vm::exp_nonpositive(x) - ref) / ref);
    }
    for (double x : {-1e-300, -1e-17, -0.34657359, -0.34657360, -0.6931471805599453, -1.0, -707.9})
        worst = std::max(worst, std::abs(vm::exp_nonpositive(x) - std::exp(x)) / std::exp(x));
    EXPECT_LT(worst, 1e-15);
    EXPECT_EQ(vm::exp_nonpositive(-709.0), 0.0);
    EXPECT_EQ(vm::exp_nonpositive(-1e30), 0.0);
    EXPECT_EQ(vm::exp_nonpositive(-HUGE_VAL), 0.0);
}

TEST(VectorMath, ExpNonpositiveFloatIsWithin1e6Relative) {
    EXPECT_EQ(vm::exp_nonpositive(0.0f), 1.0f);
    double worst = 0;
    for (int i = 0; i <= 1000000; ++i) {
        const float x = -87.0f * static_cast<float>(i / 1000000.0);
        const double ref = std::exp(static_cast<double>(x));
        worst = std::max(worst, std::abs(static_cast<double>(vm::exp_nonpositive(x)) - ref) / ref);
    }
    EXPECT_LT(worst, 1e-6);
    EXPECT_EQ(vm::exp_nonpositive(-88.0f), 0.0f);
    EXPECT_EQ(vm::exp_nonpositive(-HUGE_VALF), 0.0f);
}

TEST(VectorMath, DoubleOverloadsAreLibm) {
    EXPECT_EQ(vm::exp(0.3), std::exp(0.3));
    EXPECT_EQ(vm::erf(0.3), std::erf(0.3));
}

}  // namespace
