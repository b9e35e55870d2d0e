// The run-length PNG writer: what it writes decodes (stb's reader) to the same pixels.
#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include <xtensor/xbuilder.hpp>
#include <xtensor/xtensor.hpp>

#include "vasomim/core/philox.hpp"
#include "vasomim/io/image.hpp"
#include "vasomim/io/png_runs.hpp"

namespace {

namespace fs = std::filesystem;
using namespace vasomim;

void expect_round_trip(const xt::xtensor<std::uint8_t, 2>& img, const std::string& name) {
    const fs::path p = fs::path(::testing::TempDir()) / ("vasomim_png_runs_" + name + ".png");
    io::write_png_runs(p, img);
    const auto back = io::read_gray8(p);
    fs::remove(p);
    ASSERT_EQ(back.shape(0), img.shape(0));
    ASSERT_EQ(back.shape(1), img.shape(1));
    for (std::size_t i = 0; i < img.size(); ++i) ASSERT_EQ(back.data()[i], img.data()[i]) << name << " pixel " << i;
}

TEST(PngRuns, MasksAndArbitraryPixelsDecodeUnchanged) {
    const philox gen(3, 0);
    // A 0/255 mask with runs of every length from 1 to beyond 258 (the longest deflate match).
    auto mask = xt::xtensor<std::uint8_t, 2>::from_shape({37, 600});
    for (std::size_t i = 0; i < 37; ++i)
        for (std::size_t j = 0; j < 600; ++j) mask(i, j) = ((j / (i * 7 + 1)) % 2) ? 255 : 0;
    expect_round_trip(mask, "mask");
    // Random bytes (no runs), a constant image, one pixel, runs of 258 +- 2.
    auto rnd = xt::xtensor<std::uint8_t, 2>::from_shape({13, 17});
    for (std::size_t i = 0; i < rnd.size(); ++i) rnd.data()[i] = static_cast<std::uint8_t>(gen.bits(i) & 0xffu);
    expect_round_trip(rnd, "random");
    xt::xtensor<std::uint8_t, 2> flat = xt::zeros<std::uint8_t>({5, 1000});
    expect_round_trip(flat, "flat");
    xt::xtensor<std::uint8_t, 2> one = {{42}};
    expect_round_trip(one, "one");
    for (std::size_t w : {258u, 259u, 260u, 261u, 262u, 517u}) {
        auto row = xt::xtensor<std::uint8_t, 2>::from_shape({std::size_t(2), w});
        row.fill(255);
        row(1, 0) = 3;
        expect_round_trip(row, "run" + std::to_string(w));
    }
}

TEST(PngRuns, EmptyImageIsRefused) {
    const xt::xtensor<std::uint8_t, 2> none = xt::xtensor<std::uint8_t, 2>::from_shape({0, 4});
    EXPECT_THROW(io::write_png_runs(fs::path(::testing::TempDir()) / "vasomim_png_runs_empty.png", none), shape_error);
}

}  // namespace

#endif  // !VASOMIM_HAS_CUDA
