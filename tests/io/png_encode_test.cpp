// The fast gray PNG writer: what it writes decodes to the same pixels through stb_image and
// through vasomim's own reader (png_decode.hpp, which also checks the CRCs and the Adler-32).
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
#include "vasomim/io/png_encode.hpp"

namespace {

namespace fs = std::filesystem;
using namespace vasomim;

void expect_round_trip(const xt::xtensor<std::uint8_t, 2>& img, const std::string& name) {
    const fs::path p = fs::path(::testing::TempDir()) / ("vasomim_png_encode_" + name + ".png");
    io::write_png_gray8(p, img);
    const std::string bytes = io::detail::read_file_bytes(p, "png_encode_test");
    fs::remove(p);
    const auto ours = io::detail::decode_png8(bytes, p.string());
    ASSERT_TRUE(ours.has_value()) << name;
    EXPECT_EQ(*ours, img) << name;
    int w = 0, h = 0, ch = 0;
    std::unique_ptr<stbi_uc, io::detail::stbi_deleter> stb(stbi_load_from_memory(
        reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()), &w, &h, &ch, 0));
    ASSERT_TRUE(stb) << name;
    ASSERT_EQ(std::size_t(h), img.shape(0));
    ASSERT_EQ(std::size_t(w), img.shape(1));
    ASSERT_EQ(ch, 1);
    for (std::size_t i = 0; i < img.size(); ++i) ASSERT_EQ(stb.get()[i], img.data()[i]) << name << " pixel " << i;
}

TEST(PngEncode, MasksAndArbitraryPixelsDecodeUnchanged) {
    const philox gen(3, 0);
    // A 0/255 mask with runs of every length from 1 to beyond 258 (the longest deflate match).
    auto mask = xt::xtensor<std::uint8_t, 2>::from_shape({37, 600});
    for (std::size_t i = 0; i < 37; ++i)
        for (std::size_t j = 0; j < 600; ++j) mask(i, j) = ((j / (i * 7 + 1)) % 2) ? 255 : 0;
    expect_round_trip(mask, "mask");
    // Random bytes (small, and 350 KB: incompressible, stored blocks), a constant image, one pixel,
    // runs of 258 +- 2.
    auto big = xt::xtensor<std::uint8_t, 2>::from_shape({500, 700});
    for (std::size_t i = 0; i < big.size(); ++i) big.data()[i] = static_cast<std::uint8_t>(gen.bits(i) >> 24);
    expect_round_trip(big, "random_large");
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

TEST(PngEncode, EmptyImageIsRefused) {
    const xt::xtensor<std::uint8_t, 2> none = xt::xtensor<std::uint8_t, 2>::from_shape({0, 4});
    EXPECT_THROW(io::write_png_gray8(fs::path(::testing::TempDir()) / "vasomim_png_encode_empty.png", none), shape_error);
}

}  // namespace

#endif  // !VASOMIM_HAS_CUDA
