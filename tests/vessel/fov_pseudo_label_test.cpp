// The field-of-view-aware pseudo-label variant (fov_pseudo_label.hpp, field_of_view.hpp): its parts
// on synthetic angiograms with a drawn collimator edge, the released pipeline as its special case,
// and the fallback on bad input; on every backend of the build.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "test_backends.hpp"
#include "vasomim/io/image.hpp"
#include "vasomim/vessel/field_of_view.hpp"
#include "vasomim/vessel/fov_pseudo_label.hpp"
#include "vasomim/vessel/pseudo_label.hpp"
#include "vessel/vessel_fixture.hpp"

namespace {

using namespace vasomim;
using namespace vasomim::vessel;

constexpr std::int64_t kRows = 160, kCols = 176;

/// A synthetic angiogram: a bright exposed disc (centre (80, 88), radius 92) with a gentle
/// gradient and noise, the dark unexposed corners outside it (value 12), and three dark vessels
/// (depth 60-80, widths 1.2-2.5) inside. `vessel` marks the vessels' centre lines at least 14
/// pixels inside the disc's edge; `edge` marks the pixels within 3 of the edge.
struct synthetic {
    std::vector<std::uint8_t> pixels, vessel, edge;
};

synthetic collimated(std::uint32_t seed = 7, bool with_corners = true) {
    synthetic s;
    const std::size_t n = static_cast<std::size_t>(kRows * kCols);
    s.pixels.resize(n);
    s.vessel.assign(n, 0);
    s.edge.assign(n, 0);
    std::mt19937 rng(seed);
    std::normal_distribution<double> noise(0, 2.0);
    struct line {
        double a, b, f, width, depth;
    };
    const line lines[] = {{0.30, 0.10, 0.07, 1.6, 70}, {0.62, -0.12, 0.05, 2.5, 80}, {0.45, 0.25, 0.11, 1.2, 60}};
    for (std::int64_t i = 0; i < kRows; ++i)
        for (std::int64_t j = 0; j < kCols; ++j) {
            const auto p = static_cast<std::size_t>(i * kCols + j);
            const double r = std::hypot(double(i) - 80.0, double(j) - 88.0);
            double v = 165.0 + 0.15 * double(j);
            for (const line& l : lines) {
                const double centre = l.a * kRows + l.b * double(j) + 6 * std::sin(l.f * double(j));
                const double d = double(i) - centre;
                v -= l.depth * std::exp(-d * d / (2 * l.width * l.width));
                if (std::abs(d) < 0.5 && r < 92.0 - 14.0 && i >= 20 && i < kRows - 20 && j >= 20 && j < kCols - 20)
                    s.vessel[p] = 1;
            }
            if (with_corners && r >= 92.0) v = 12.0;
            if (with_corners && std::abs(r - 92.0) <= 3.0) s.edge[p] = 1;
            v += noise(rng);
            s.pixels[p] = static_cast<std::uint8_t>(std::clamp(std::lround(v), 0L, 255L));
        }
    return s;
}

std::size_t count_on(const std::vector<std::uint8_t>& mask, const std::vector<std::uint8_t>& where) {
    std::size_t c = 0;
    for (std::size_t i = 0; i < mask.size(); ++i) c += mask[i] != 0 && where[i] != 0;
    return c;
}
std::size_t count_all(const std::vector<std::uint8_t>& m) {
    return static_cast<std::size_t>(std::count_if(m.begin(), m.end(), [](std::uint8_t x) { return x != 0; }));
}

TEST(FieldOfView, BoxAnyIsASquareDilation) {
    std::mt19937 rng(5);
    for (const auto [rows, cols, r] : {std::array<std::int64_t, 3>{13, 17, 2}, {9, 31, 5}, {20, 7, 8}, {1, 12, 3}, {6, 1, 0}}) {
        std::vector<std::uint8_t> m(static_cast<std::size_t>(rows * cols));
        for (auto& v : m) v = rng() % 11 == 0 ? 1 : 0;
        auto got = m;
        vasomim::vessel::detail::box_any(got, rows, cols, r);
        for (std::int64_t i = 0; i < rows; ++i)
            for (std::int64_t j = 0; j < cols; ++j) {
                std::uint8_t want = 0;
                for (std::int64_t a = std::max<std::int64_t>(0, i - r); a <= std::min(rows - 1, i + r); ++a)
                    for (std::int64_t b = std::max<std::int64_t>(0, j - r); b <= std::min(cols - 1, j + r); ++b)
                        want |= m[static_cast<std::size_t>(a * cols + b)];
                ASSERT_EQ(got[static_cast<std::size_t>(i * cols + j)], want) << rows << "x" << cols << " r " << r << " at " << i << "," << j;
            }
    }
}

template <class B>
class FovPseudoLabel : public ::testing::Test {};
TYPED_TEST_SUITE(FovPseudoLabel, vasomim::test::all_backends, vasomim::test::backend_name);

TYPED_TEST(FovPseudoLabel, FieldOfViewDropsTheCornersAndTheirEdge) {
    using B = TypeParam;
    const auto s = collimated();
    const auto img = tensor<std::uint8_t, B>::from_host(s.pixels, shape{kRows, kCols});
    const auto fov = field_of_view(img).to_host();
    ASSERT_EQ(fov.size(), s.pixels.size());
    // Checked 10 pixels in from the image's edges: where a corner thins out to a sliver along the
    // image's edge, the opening takes it (the pipeline's border covers that band).
    for (std::int64_t i = 10; i < kRows - 10; ++i)
        for (std::int64_t j = 10; j < kCols - 10; ++j) {
            const auto p = static_cast<std::size_t>(i * kCols + j);
            const double r = std::hypot(double(i) - 80.0, double(j) - 88.0);
            if (r >= 92.0 - 3.0) {
                EXPECT_EQ(fov[p], 0) << "edge or corner pixel in the field of view at " << i << "," << j;
            }
            if (r < 92.0 - 12.0 - 3.0) {  // the 17 x 17 square reaches 8 sqrt(2) < 12 diagonally
                ASSERT_EQ(fov[p], 1) << "exposed pixel left out at " << i << "," << j;
            }
        }
    EXPECT_EQ(count_on(fov, s.vessel), count_all(s.vessel)) << "every vessel centre pixel is exposed";

    // Without dark areas everything is inside; the dark vessels alone never make an outside.
    const auto plain = collimated(7, false);
    const auto fov2 = field_of_view(tensor<std::uint8_t, B>::from_host(plain.pixels, shape{kRows, kCols})).to_host();
    EXPECT_EQ(count_all(fov2), fov2.size());

    // float images give the same field of view.
    std::vector<float> f(s.pixels.begin(), s.pixels.end());
    EXPECT_EQ(field_of_view(tensor<float, B>::from_host(f, shape{kRows, kCols})).to_host(), fov);
}

TYPED_TEST(FovPseudoLabel, VariantKeepsTheVesselsAndNeverTheEdge) {
    using B = TypeParam;
    const auto s = collimated();
    const auto img = tensor<std::uint8_t, B>::from_host(s.pixels, shape{kRows, kCols});
    pseudo_label_options ro;
    ro.border = 10;
    // The released pipeline grows its region on the collimator edge (the failure this variant fixes).
    const auto released = pseudo_label(img, ro).to_host();
    EXPECT_GT(count_on(released, s.edge), 0u);
    EXPECT_LT(count_on(released, s.vessel), count_all(s.vessel) / 4);

    fov_pseudo_label_options o;
    o.released = ro;
    const auto r = fov_pseudo_label(img, o);
    EXPECT_EQ(r.status, fov_status::ok);
    EXPECT_FALSE(r.fallback());
    const auto mask = r.mask.to_host();
    EXPECT_EQ(count_on(mask, s.edge), 0u) << "collimator edge pixels in the mask";
    EXPECT_GE(count_on(mask, s.vessel), count_all(s.vessel) * 9 / 10) << "vessel centre pixels missing";
    for (auto m : mask) ASSERT_TRUE(m == 0 || m == 255);
    EXPECT_GE(r.components, 1);
    EXPECT_LE(r.components, 5);
    EXPECT_EQ(r.fov_pixels, count_all(r.field_of_view.to_host()));

    // Each switch on its own: the field of view alone (one seed) already leaves the edge out;
    // without it but with more seeds the edge stays in.
    auto only_fov = o;
    only_fov.seeds = 1;
    const auto m1 = fov_pseudo_label(img, only_fov).mask.to_host();
    EXPECT_EQ(count_on(m1, s.edge), 0u);
    EXPECT_GT(count_on(m1, s.vessel), 0u);
    auto no_fov = o;
    no_fov.field_of_view = false;
    const auto r2 = fov_pseudo_label(img, no_fov);
    EXPECT_EQ(r2.fov_pixels, s.pixels.size());
    EXPECT_GT(count_on(r2.mask.to_host(), s.edge), 0u);
    // min_component: every component of at least that size, beside the seeds.
    auto by_size = o;
    by_size.seeds = 0;
    by_size.min_component = 30;
    const auto m3 = fov_pseudo_label(img, by_size).mask.to_host();
    EXPECT_EQ(count_on(m3, s.edge), 0u);
    EXPECT_GE(count_on(m3, s.vessel), count_all(s.vessel) * 9 / 10);
}

TYPED_TEST(FovPseudoLabel, AllSwitchesOffIsTheReleasedPipeline) {
    using B = TypeParam;
    fov_pseudo_label_options off;
    off.field_of_view = false;
    off.percentile_in_fov = false;
    off.seeds = 1;
    for (const bool corners : {true, false}) {
        const auto s = collimated(11, corners);
        const auto img = tensor<std::uint8_t, B>::from_host(s.pixels, shape{kRows, kCols});
        const auto r = fov_pseudo_label(img, off);
        EXPECT_EQ(r.mask.to_host(), pseudo_label(img).to_host());
        EXPECT_EQ(r.status, fov_status::ok);
    }
    const std::string dir = vasomim::test::coronary80_dir();
    if (dir.empty()) GTEST_SKIP() << "coronary80 not found (set VASOMIM_CORONARY80 or place it at ../shared/data/coronary80)";
    for (const std::string name : {"training_05", "training_07"}) {
        SCOPED_TRACE(name);
        const auto gray = io::read_gray8(dir + "/images/" + name + ".png");
        const std::vector<std::uint8_t> pixels(gray.begin(), gray.end());
        const auto img = tensor<std::uint8_t, B>::from_host(pixels, shape{index_t(gray.shape(0)), index_t(gray.shape(1))});
        EXPECT_EQ(fov_pseudo_label(img, off).mask.to_host(), pseudo_label(img).to_host());
    }
}

TYPED_TEST(FovPseudoLabel, BadInputFallsBackToTheReleasedMask) {
    using B = TypeParam;
    // All dark: nothing exposed.
    std::vector<std::uint8_t> dark(static_cast<std::size_t>(kRows * kCols));
    std::mt19937 rng(3);
    for (auto& v : dark) v = static_cast<std::uint8_t>(5 + rng() % 6);
    const auto img = tensor<std::uint8_t, B>::from_host(dark, shape{kRows, kCols});
    const auto r = fov_pseudo_label(img);
    EXPECT_EQ(r.status, fov_status::no_field_of_view);
    EXPECT_TRUE(r.fallback());
    EXPECT_EQ(r.fov_pixels, 0u);
    EXPECT_EQ(r.mask.to_host(), pseudo_label(img).to_host());
    EXPECT_STREQ(to_string(r.status), "no exposed region found");

    // Flat and bright: no response, so nothing is kept.
    const std::vector<std::uint8_t> flat(dark.size(), 150);
    const auto img2 = tensor<std::uint8_t, B>::from_host(flat, shape{kRows, kCols});
    const auto r2 = fov_pseudo_label(img2);
    EXPECT_EQ(r2.status, fov_status::empty_mask);
    EXPECT_EQ(r2.mask.to_host(), pseudo_label(img2).to_host());

    // Wrong options and shapes are refused.
    fov_pseudo_label_options bad;
    bad.seeds = -1;
    EXPECT_THROW(fov_pseudo_label(img, bad), value_error);
    bad = {};
    bad.fov.min_area = 2;
    EXPECT_THROW(fov_pseudo_label(img, bad), value_error);
    const auto flat1 = tensor<std::uint8_t, B>::from_host(flat, shape{index_t(flat.size())});
    EXPECT_THROW(fov_pseudo_label(flat1), shape_error);
}

}  // namespace
