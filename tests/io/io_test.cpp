// The file I/O layer: .npy and 8-bit images. Host-only (files live on the host).
#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include <xtensor/xarray.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

#include "vasomim/io.hpp"

namespace {

namespace fs = std::filesystem;
using namespace vasomim;

class IoTest : public ::testing::Test {
protected:
    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ = fs::path(::testing::TempDir()) / (std::string("vasomim_io_") + info->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    fs::path file(const std::string& name) const { return dir_ / name; }
    void write_bytes(const fs::path& p, const std::string& bytes) const {
        std::ofstream(p, std::ios::binary) << bytes;
    }
    /// Number of entries in the test folder (checks that no temporary file is left behind).
    std::size_t entries() const {
        std::size_t n = 0;
        for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_)) ++n;
        return n;
    }

    fs::path dir_;
};

/// Runs f, expects exception E, and returns its message.
template <class E, class F>
std::string message_of(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    } catch (const std::exception& e) {
        ADD_FAILURE() << "wrong exception type: " << e.what();
        return {};
    }
    ADD_FAILURE() << "no exception";
    return {};
}

TEST_F(IoTest, NpyRoundTripKeepsShapeValuesAndDtype) {
    xt::xarray<float> a = xt::xarray<float>::from_shape({3, 4, 5});
    for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = 0.25f * static_cast<float>(i) - 7.0f;
    io::write_npy(file("a.npy"), a);
    const auto b = io::read_npy<float>(file("a.npy"));
    EXPECT_EQ(b.shape(), a.shape());
    EXPECT_EQ(b, a);

    xt::xtensor<std::uint8_t, 2> u = {{0, 1, 255}, {7, 128, 3}};
    io::write_npy(file("u.npy"), u);
    EXPECT_EQ(io::read_npy<std::uint8_t>(file("u.npy")), u);
    // An expression is evaluated on write.
    io::write_npy(file("e.npy"), xt::view(a, 1) * 2.0f);
    // (Compared with an xarray built from the expression: this xtensor's xt::eval of it reports
    // the shape {2^64-1, 2^64-1, 4, 5}, which write_npy once wrote into the file.)
    const xt::xarray<float> expected = xt::view(a, 1) * 2.0f;
    EXPECT_EQ(io::read_npy<float>(file("e.npy")), expected);
    EXPECT_EQ(entries(), 3u) << "no temporary files are left behind";
}

TEST_F(IoTest, NpyConvertingReaderAcceptsOtherDtypes) {
    xt::xarray<double> d = {{1.5, -2.0}, {3.25, 4.0}};
    io::write_npy(file("d.npy"), d);
    const auto f = io::read_npy_as<float>(file("d.npy"));
    EXPECT_EQ(f, (xt::xarray<float>{{1.5f, -2.0f}, {3.25f, 4.0f}}));
    xt::xarray<std::int16_t> s = {-3, 0, 9};
    io::write_npy(file("s.npy"), s);
    EXPECT_EQ(io::read_npy_as<float>(file("s.npy")), (xt::xarray<float>{-3.0f, 0.0f, 9.0f}));
}

TEST_F(IoTest, NpyWrongDtypeNamesFileAndBothDtypes) {
    io::write_npy(file("d.npy"), xt::xarray<double>{1.0, 2.0});
    const auto msg = message_of<format_error>([&] { io::read_npy<float>(file("d.npy")); });
    EXPECT_NE(msg.find("d.npy"), std::string::npos) << msg;
    EXPECT_NE(msg.find("<f8"), std::string::npos) << msg;
    EXPECT_NE(msg.find("<f4"), std::string::npos) << msg;
}

TEST_F(IoTest, NpyMissingCorruptAndTruncatedFiles) {
    const auto missing = message_of<io_error>([&] { io::read_npy<float>(file("nope.npy")); });
    EXPECT_NE(missing.find("nope.npy"), std::string::npos) << missing;
    EXPECT_NE(missing.find("does not exist"), std::string::npos) << missing;
    EXPECT_THROW(io::read_npy<float>(file("nope.npy")), io_error);

    write_bytes(file("junk.npy"), "this is not a numpy file at all, just text\n");
    const auto junk = message_of<format_error>([&] { io::read_npy<float>(file("junk.npy")); });
    EXPECT_NE(junk.find("junk.npy"), std::string::npos) << junk;

    io::write_npy(file("full.npy"), xt::xarray<float>::from_shape({100}));
    std::ifstream in(file("full.npy"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    write_bytes(file("cut.npy"), bytes.substr(0, bytes.size() - 40));
    const auto cut = message_of<format_error>([&] { io::read_npy<float>(file("cut.npy")); });
    EXPECT_NE(cut.find("cut.npy"), std::string::npos) << cut;
    EXPECT_NE(cut.find("truncated"), std::string::npos) << cut;
}

TEST_F(IoTest, WriteIntoMissingFolderFailsCleanly) {
    const auto target = dir_ / "no_such_folder" / "x.npy";
    const auto msg = message_of<io_error>([&] { io::write_npy(target, xt::xarray<float>{1.0f}); });
    EXPECT_NE(msg.find("x.npy"), std::string::npos) << msg;
    EXPECT_THROW(io::write_png(dir_ / "no_such_folder" / "x.png", xt::xtensor<std::uint8_t, 2>({{1}})),
                 io_error);
    EXPECT_EQ(entries(), 0u);
}

TEST_F(IoTest, OverwriteReplacesTheWholeFile) {
    io::write_npy(file("a.npy"), xt::xarray<float>::from_shape({1000}));
    io::write_npy(file("a.npy"), xt::xarray<float>{1.0f, 2.0f});
    EXPECT_EQ(io::read_npy<float>(file("a.npy")), (xt::xarray<float>{1.0f, 2.0f}));
    EXPECT_EQ(entries(), 1u);
}

TEST_F(IoTest, GrayPngRoundTrip) {
    xt::xtensor<std::uint8_t, 2> g = xt::xtensor<std::uint8_t, 2>::from_shape({13, 29});
    for (std::size_t i = 0; i < g.size(); ++i) g.data()[i] = static_cast<std::uint8_t>((i * 37) % 256);
    io::write_png(file("g.png"), g);
    EXPECT_EQ(io::read_gray8(file("g.png")), g);
    const auto f = io::read_image_any(file("g.png"));
    ASSERT_EQ(f.shape(), g.shape());
    for (std::size_t i = 0; i < g.size(); ++i) ASSERT_EQ(f.data()[i], static_cast<float>(g.data()[i]));
    EXPECT_EQ(entries(), 1u);
}

TEST_F(IoTest, RgbPngIsConvertedLikePil) {
    // Expected values from PIL 9.4: Image.fromarray(rgb).convert('L').
    xt::xtensor<std::uint8_t, 3> rgb = {{{255, 0, 0}, {0, 255, 0}, {0, 0, 255}},
                                        {{10, 200, 30}, {128, 128, 128}, {1, 2, 3}}};
    io::write_png(file("c.png"), rgb);
    const auto g = io::read_gray8(file("c.png"));
    const xt::xtensor<std::uint8_t, 2> expected = {{76, 150, 29}, {124, 128, 2}};
    EXPECT_EQ(g, expected);
    // PIL rounds to nearest where the documented 299/587/114 weights would truncate (PIL: 5 and 1).
    EXPECT_EQ(io::detail::pil_luma(3, 5, 7), 5);
    EXPECT_EQ(io::detail::pil_luma(0, 1, 0), 1);
    EXPECT_EQ(io::detail::pil_luma(255, 255, 255), 255);
    EXPECT_THROW(io::write_png(file("bad.png"), xt::xtensor<std::uint8_t, 3>::from_shape({2, 2, 2})), shape_error);
}

TEST_F(IoTest, CorruptAndMissingImagesNameThePath) {
    write_bytes(file("broken.png"), std::string("\x89PNG\r\n\x1a\n", 8) + "garbage garbage");
    const auto broken = message_of<format_error>([&] { io::read_gray8(file("broken.png")); });
    EXPECT_NE(broken.find("broken.png"), std::string::npos) << broken;
    write_bytes(file("empty.png"), "");
    EXPECT_THROW(io::read_gray8(file("empty.png")), format_error);
    const auto missing = message_of<io_error>([&] { io::read_gray8(file("missing.png")); });
    EXPECT_NE(missing.find("missing.png"), std::string::npos) << missing;
    EXPECT_THROW(io::read_gray8(dir_), io_error) << "a folder is not an image";
}

TEST_F(IoTest, ReadImageAnyTakesTwoDimensionalNpy) {
    xt::xarray<std::uint8_t> u = {{1, 2}, {3, 250}};
    io::write_npy(file("u.npy"), u);
    EXPECT_EQ(io::read_image_any(file("u.npy")), (xt::xtensor<float, 2>{{1, 2}, {3, 250}}));
    io::write_npy(file("f.NPY"), xt::xarray<float>{{0.5f, -1.0f}});
    EXPECT_EQ(io::read_image_any(file("f.NPY")), (xt::xtensor<float, 2>{{0.5f, -1.0f}}));
    io::write_npy(file("v.npy"), xt::xarray<float>::from_shape({2, 2, 2}));
    const auto msg = message_of<shape_error>([&] { io::read_image_any(file("v.npy")); });
    EXPECT_NE(msg.find("v.npy"), std::string::npos) << msg;
}

}  // namespace

#endif  // !VASOMIM_HAS_CUDA
