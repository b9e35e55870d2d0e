#include <gtest/gtest.h>

#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA
#include <cmath>

#include "vasomim/data/synthetic_angiogram.hpp"
#include "vasomim/data/transforms.hpp"

namespace {

using namespace vasomim;
using namespace vasomim::data;

TEST(RandomResizedCrop, BoxesLieInsideTheImageWithinScaleAndRatio) {
    random_stream rng(1, 2);
    int in_range = 0;
    for (int k = 0; k < 2000; ++k) {
        const auto b = random_resized_crop_box(rng, 300, 220);
        ASSERT_GE(b.top, 0);
        ASSERT_GE(b.left, 0);
        ASSERT_GT(b.height, 0);
        ASSERT_GT(b.width, 0);
        ASSERT_LE(b.top + b.height, 300);
        ASSERT_LE(b.left + b.width, 220);
        const double area = double(b.height) * double(b.width) / (300.0 * 220.0);
        const double ratio = double(b.width) / double(b.height);
        // Rounding to whole pixels moves area and ratio by a little.
        if (area > 0.19 && area < 1.01 && ratio > 0.74 && ratio < 1.35) ++in_range;
    }
    EXPECT_EQ(in_range, 2000);
}

TEST(RandomResizedCrop, FallsBackToAClampedCentreCrop) {
    random_stream rng(3, 0);
    random_resized_crop_options o;
    o.scale_min = o.scale_max = 1.0;  // the whole image at ratio 3/4..4/3 cannot fit a 100 x 10 image
    const auto b = random_resized_crop_box(rng, 100, 10, o);
    EXPECT_EQ(b.width, 10);
    EXPECT_EQ(b.height, 13);  // 10 / (3/4)
    EXPECT_EQ(b.top, (100 - 13) / 2);
}

TEST(Resize, BicubicIsTheIdentityAtScaleOneAndKeepsConstants) {
    const auto s = make_synthetic_angiogram({}, 5, 0);
    const auto same = resize_bicubic(s.image, {0, 0, 224, 224}, 224, 224);
    for (std::size_t i = 0; i < same.size(); ++i) ASSERT_NEAR(same.data()[i], float(s.image.data()[i]), 1e-3f);
    xt::xtensor<std::uint8_t, 2> flat = xt::xtensor<std::uint8_t, 2>::from_shape({50, 70});
    flat.fill(77);
    for (auto [oh, ow] : {std::pair{20, 30}, std::pair{111, 97}}) {
        const auto r = resize_bicubic(flat, {5, 3, 40, 60}, oh, ow);
        for (float v : r) ASSERT_NEAR(v, 77.0f, 1e-3f);
    }
}

TEST(Resize, BicubicMatchesPilOnADownscaledRamp) {
    // PIL: Image.fromarray(np.tile(np.arange(0, 200, 2, dtype=np.uint8), (10, 1))).resize((25, 5),
    // Image.BICUBIC) gives, in its first row, the antialiased ramp 3 11 19 ... 195 (step 8) with 3
    // at the clamped left edge; interior values are exact multiples of the input step.
    xt::xtensor<std::uint8_t, 2> ramp = xt::xtensor<std::uint8_t, 2>::from_shape({10, 100});
    for (std::size_t i = 0; i < 10; ++i)
        for (std::size_t j = 0; j < 100; ++j) ramp(i, j) = std::uint8_t(2 * j);
    const auto r = resize_bicubic(ramp, {0, 0, 10, 100}, 5, 25);
    for (std::size_t j = 2; j < 23; ++j) EXPECT_NEAR(r(0, j), 8.0f * float(j) + 3.0f, 1e-3f) << j;
}

TEST(Resize, NearestPicksTheSourcePixelUnderEachCentre) {
    xt::xtensor<std::uint8_t, 2> img = xt::xtensor<std::uint8_t, 2>::from_shape({4, 4});
    for (std::size_t i = 0; i < 16; ++i) img.data()[i] = std::uint8_t(i);
    const auto up = resize_nearest(img, {0, 0, 4, 4}, 8, 8);
    EXPECT_EQ(up(0, 0), 0);
    EXPECT_EQ(up(1, 1), 0);
    EXPECT_EQ(up(2, 3), 5);
    EXPECT_EQ(up(7, 7), 15);
    const auto down = resize_nearest(img, {1, 1, 2, 2}, 1, 1);
    EXPECT_EQ(down(0, 0), 10);  // centre of the box (2, 2)
}

TEST(Augment, IsDeterministicPerStreamAndKeepsImageAndMaskAligned) {
    const auto s = make_synthetic_angiogram({}, 9, 1);
    augment_options o;
    o.size = 96;
    random_stream a(4, 17), b(4, 17);
    const auto x = augment(s.image, s.mask, o, a), y = augment(s.image, s.mask, o, b);
    EXPECT_EQ(x.image, y.image);
    EXPECT_EQ(x.mask, y.mask);
    ASSERT_EQ(x.image.shape()[0], 3u);
    ASSERT_EQ(x.image.shape()[1], 96u);
    // Vessel pixels stay darker than the background after the crop (alignment of the two).
    double in = 0, out = 0, n_in = 0, n_out = 0;
    for (std::size_t i = 0; i < x.mask.size(); ++i) {
        const double v = x.image.data()[i];  // channel 0
        (x.mask.data()[i] > 0 ? in : out) += v;
        (x.mask.data()[i] > 0 ? n_in : n_out) += 1;
    }
    ASSERT_GT(n_in, 20) << "the crop should contain vessel pixels for this seed";
    EXPECT_LT(in / n_in, out / n_out);
    // Channels are the same grey level under different normalisations.
    const float g0 = x.image(0, 10, 10) * imagenet_std[0] + imagenet_mean[0];
    const float g2 = x.image(2, 10, 10) * imagenet_std[2] + imagenet_mean[2];
    EXPECT_NEAR(g0, g2, 1e-5f);
    xt::xtensor<std::uint8_t, 2> small_mask = xt::zeros<std::uint8_t>({10, 10});
    EXPECT_THROW(augment(s.image, small_mask, o, a), shape_error);
}

}  // namespace
#endif
