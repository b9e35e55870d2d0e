// The PNG reader (io/png_decode.hpp) against tools/make_png_fixtures.py's files (expected pixels
// computed there from the unfiltered samples) and against stb_image on the same bytes.
// Host-only (files live on the host).
#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <random>
#include <string>

#include <xtensor/xtensor.hpp>

#include "vasomim/io.hpp"

namespace {

namespace fs = std::filesystem;
using namespace vasomim;

const fs::path png_dir = fs::path(VASOMIM_TEST_DATA_DIR) / "png";

std::string bytes_of(const std::string& name) {
    return io::detail::read_file_bytes(png_dir / (name + ".png"), "png_decode_test");
}

xt::xtensor<std::uint8_t, 2> expected(const std::string& name) {
    return xt::xtensor<std::uint8_t, 2>(io::read_npy<std::uint8_t>(png_dir / (name + ".npy")));
}

/// stb_image's reading of the same bytes, converted as read_gray8 converts it.
xt::xtensor<std::uint8_t, 2> stb_gray(const std::string& bytes) {
    int w = 0, h = 0, ch = 0;
    std::unique_ptr<stbi_uc, io::detail::stbi_deleter> p(stbi_load_from_memory(
        reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()), &w, &h, &ch, 0));
    if (!p) throw std::runtime_error("stb_image could not read the fixture");
    auto out = xt::xtensor<std::uint8_t, 2>::from_shape({std::size_t(h), std::size_t(w)});
    io::detail::samples_to_gray(p.get(), out.size(), ch, out.data());
    return out;
}

TEST(PngDecode, EveryFilterAndSampleLayoutMatchesTheFixtureAndStb) {
    for (const char* name : {"gray_filters", "gray_split_idat", "gray_1x1", "gray_tall_column", "gray_paeth_runs",
                             "gray_paeth_narrow", "gray_paeth_long", "gray_alpha", "rgb", "rgba"}) {
        SCOPED_TRACE(name);
        const std::string bytes = bytes_of(name);
        const auto fast = io::detail::decode_png8(bytes, name);
        ASSERT_TRUE(fast.has_value()) << "8-bit non-interlaced PNGs take the ISA-L path";
        EXPECT_EQ(*fast, expected(name));
        EXPECT_EQ(*fast, stb_gray(bytes));
        EXPECT_EQ(io::read_gray8(png_dir / (std::string(name) + ".png")), expected(name));
    }
}

// `count` random Paeth rows (any bytes are valid filtered data; a third zeros, for ties) of every
// width in `widths`, a few bytes apart, unfiltered by `together(rows, stride, prev, n)` equal the
// same rows unfiltered one by one.
template <class Together>
void expect_paeth_rows_as_one_by_one(std::size_t count, std::initializer_list<std::size_t> widths, unsigned seed,
                                     Together together) {
    std::mt19937 gen(seed);
    for (std::size_t n : widths) {
        SCOPED_TRACE("width " + std::to_string(n));
        const std::size_t stride = n + 3;  // rows apart by more than their bytes
        std::vector<std::uint8_t> prev(n), rows(count * stride);
        for (auto& v : prev) v = static_cast<std::uint8_t>(gen());
        for (auto& v : rows) v = static_cast<std::uint8_t>(gen() % 3 == 0 ? 0 : gen());
        auto one_by_one = rows;
        for (std::size_t k = 0; k < count; ++k)
            ASSERT_TRUE(io::detail::unfilter_row(4, one_by_one.data() + k * stride,
                                                 k == 0 ? prev.data() : one_by_one.data() + (k - 1) * stride, n, 1));
        together(rows.data(), stride, prev.data(), n);
        EXPECT_EQ(rows, one_by_one);
    }
}

// Four Paeth rows interleaved, widths below, at and above the group.
TEST(PngDecode, PaethRowsTogetherEqualOneByOne) {
    expect_paeth_rows_as_one_by_one(4, {1, 2, 3, 4, 5, 8, 17, 64}, 7, [](auto... a) { io::detail::unpaeth_gray_rows<4>(a...); });
}

#if VASOMIM_PNG_PAETH_LANES
// Sixteen Paeth rows in the lanes of a vector (the rows a byte apart), widths around the tile and
// the vector.
TEST(PngDecode, SixteenPaethRowsInVectorLanesEqualOneByOne) {
    std::vector<std::uint8_t> work;
    expect_paeth_rows_as_one_by_one(16, {1, 2, 3, 15, 16, 17, 31, 33, 64, 100, 512}, 8,
                                    [&work](auto... a) { io::detail::unpaeth_gray_rows16(a..., work); });
}
#endif

TEST(PngDecode, PaletteAndSixteenBitGoToStb) {
    for (const char* name : {"palette", "gray16"}) {
        SCOPED_TRACE(name);
        EXPECT_FALSE(io::detail::decode_png8(bytes_of(name), name).has_value());
        EXPECT_EQ(io::read_gray8(png_dir / (std::string(name) + ".png")), expected(name));
    }
    EXPECT_FALSE(io::detail::decode_png8("GIF89a", "x.gif").has_value()) << "not a PNG: stb's";
}

TEST(PngDecode, DamagedFilesNameTheFileAndTheDamage) {
    const std::pair<const char*, const char*> cases[] = {
        {"bad_crc", "CRC mismatch in chunk IDAT"},
        {"bad_truncated", "past the end of the file"},
        {"bad_no_iend", "no IEND chunk"},
        {"bad_adler", "Adler-32"},
        {"bad_short_data", "image data ends after"},
        {"bad_long_data", "more image data than 13 x 11"},
        {"bad_filter", "unknown filter type 5 in row 3"},
        {"bad_no_idat", "no IDAT chunk"},
        {"bad_zero_width", "0 x 11 image"},
        {"bad_not_zlib", "corrupt zlib stream"},
        {"bad_huge_claim", "IHDR claims 20000 x 20000 pixels"},
    };
    for (const auto& [name, why] : cases) {
        SCOPED_TRACE(name);
        const fs::path path = png_dir / (std::string(name) + ".png");
        try {
            io::read_gray8(path);
            ADD_FAILURE() << "no exception";
        } catch (const format_error& e) {
            const std::string msg = e.what();
            EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
            EXPECT_NE(msg.find(why), std::string::npos) << msg;
        }
    }
}

}  // namespace

#endif  // !VASOMIM_HAS_CUDA
