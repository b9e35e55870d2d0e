// Frangi's trimmed kernels (vessel/frangi_trim.hpp): the response stays within `tolerance` times
// its maximum of the untrimmed one (scipy's kernels less taps below 1e-12), on noise, synthetic
// vessels and coronary80 training images, for tolerances from the default up to 1e-3, where many
// taps go and pixels the bound does not cover are recomputed in double.
#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "vasomim/io/image.hpp"
#include "vasomim/vessel/frangi.hpp"
#include "vessel_fixture.hpp"

namespace {

using namespace vasomim;
using namespace vasomim::vessel;
using vasomim::test::close_to_reference;
using B = backend::cpu;

struct trimmed_run {
    std::vector<double> response;
    std::size_t rechecked = 0;
};

trimmed_run run(const tensor<std::uint8_t, B>& img, frangi_options o) {
    tensor<double, B> out(img.shape());
    trimmed_run r;
    vessel::detail::frangi_fused(vessel::detail::as_const(img.view()), o, out, &r.rechecked);
    r.response = out.to_host();
    return r;
}

/// Checks every tolerance against the untrimmed response; returns the recheck count at 1e-3.
std::size_t check_image(const tensor<std::uint8_t, B>& img, frangi_options o, const std::string& what) {
    o.tolerance = 0;
    const auto exact = run(img, o);
    EXPECT_EQ(exact.rechecked, 0u) << what;
    std::size_t at_loose = 0;
    for (double tol : {1e-7, 1e-5, 1e-3}) {
        o.tolerance = tol;
        const auto r = run(img, o);
        // Both sides carry the untrimmed path's own error (~1e-12 of the maximum).
        EXPECT_TRUE(close_to_reference(r.response, exact.response, tol + 1e-11)) << what << ", tolerance " << tol;
        if (tol == 1e-3) at_loose = r.rechecked;
    }
    return at_loose;
}

tensor<std::uint8_t, B> noise(std::int64_t rows, std::int64_t cols, std::uint32_t seed) {
    std::vector<std::uint8_t> px(static_cast<std::size_t>(rows * cols));
    std::uint32_t s = seed;
    for (auto& p : px) {
        s = s * 1664525u + 1013904223u;
        p = static_cast<std::uint8_t>(s >> 24);
    }
    return tensor<std::uint8_t, B>::from_host(px, shape{rows, cols});
}

TEST(FrangiTrim, WithinToleranceOnNoiseAndVessels) {
    std::size_t rechecked = 0;
    frangi_options o;
    rechecked += check_image(noise(97, 83, 1), o, "noise");
    o.black_ridges = false;
    rechecked += check_image(noise(64, 130, 2), o, "noise, white ridges");
    o = {};
    o.mode = boundary_mode::wrap;
    o.gamma = 15;
    rechecked += check_image(vasomim::test::load_tensor<std::uint8_t, B>("synthetic_input"), o, "synthetic, wrap, gamma 15");
    o = {};
    o.sigmas = {2, 1, 4};
    o.beta = 0.8;
    rechecked += check_image(vasomim::test::load_tensor<std::uint8_t, B>("synthetic_input"), o, "synthetic, sigmas 2 1 4");
    // The loose tolerance leaves pixels to the double recomputation; the bound above holds with them.
    EXPECT_GT(rechecked, 0u);
}

TEST(FrangiTrim, FlatImagesStayCheap) {
    // A flat image's Hessian is rounding noise, which gamma = max(s) / 2 scales up: most pixels are
    // beyond the bound's reach, and the trimmed sigmas fall back to the untrimmed kernels rather
    // than recomputing pixel by pixel. (Both sides are noise there; they still agree within the
    // bound, the fallback being the untrimmed path itself.)
    std::vector<std::uint8_t> flat(40 * 50, 200);
    const auto img = tensor<std::uint8_t, B>::from_host(flat, shape{40, 50});
    frangi_options exact;
    exact.tolerance = 0;
    const auto r = run(img, frangi_options{});
    EXPECT_LE(r.rechecked, 4u * 40 * 50 / 64);
    EXPECT_TRUE(close_to_reference(r.response, run(img, exact).response, 1e-7 + 1e-11));
    // One dark bar off the image's symmetry axes. (An exactly symmetric pattern can put pixels on
    // the zero-trace line where the eigenvalue order, and so v, is decided by rounding alone.)
    for (int t = 0; t < 9; ++t) flat[static_cast<std::size_t>((13 + t) * 50 + 21 + t / 2)] = 90;
    const auto bar = tensor<std::uint8_t, B>::from_host(flat, shape{40, 50});
    EXPECT_TRUE(close_to_reference(run(bar, frangi_options{}).response, run(bar, exact).response, 1e-7 + 1e-11));
}

TEST(FrangiTrim, CoronaryTrainingImages) {
    const std::string dir = vasomim::test::coronary80_dir();
    if (dir.empty()) GTEST_SKIP() << "coronary80 not found (../shared/data/coronary80 or VASOMIM_CORONARY80)";
    for (const char* name : {"training_01.png", "training_07.png"}) {
        const auto g = io::read_gray8(dir + "/images/" + name);
        const auto img = tensor<std::uint8_t, B>::from_host(std::vector<std::uint8_t>(g.begin(), g.end()),
                                                            shape{index_t(g.shape(0)), index_t(g.shape(1))});
        check_image(img, frangi_options{}, name);
    }
}

TEST(FrangiTrim, RejectsBadTolerance) {
    const auto img = noise(8, 8, 3);
    for (double bad : {-1e-9, 0.5, std::nan("")}) {
        frangi_options o;
        o.tolerance = bad;
        EXPECT_THROW(frangi(img, o), value_error) << bad;
    }
}

}  // namespace

#endif  // !VASOMIM_HAS_CUDA
