// DICOM input (io/dicom.hpp): frame addressing and selection everywhere; the DCMTK reader where the
// build has it (VASOMIM_WITH_DICOM) and the compiler is not nvcc. The fixtures in tests/data/dicom
// and their expected frames (.npy: pydicom's pixel_array + the same windowing in numpy) are made by
// tools/make_dicom_fixtures.py.
#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <functional>
#include <string>
#include <vector>

#include <unistd.h>

#include <xtensor/xarray.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

#include "vasomim/io/dicom.hpp"
#include "vasomim/io/image.hpp"
#include "vasomim/io/npy.hpp"

namespace {

namespace fs = std::filesystem;
using namespace vasomim;

TEST(DicomFrameSelection, ParsesAllStepsRangesAndLists) {
    using v = std::vector<std::size_t>;
    EXPECT_EQ(io::frame_selection().resolve(4), (v{0, 1, 2, 3}));
    EXPECT_TRUE(io::frame_selection::parse("all").is_all());
    EXPECT_EQ(io::frame_selection::parse("*").resolve(3), (v{0, 1, 2}));
    EXPECT_EQ(io::frame_selection::parse("*/4").resolve(10), (v{0, 4, 8}));
    EXPECT_EQ(io::frame_selection::parse("all/3").resolve(7), (v{0, 3, 6}));
    EXPECT_EQ(io::frame_selection::parse("2-5").resolve(10), (v{2, 3, 4, 5}));
    EXPECT_EQ(io::frame_selection::parse("10-40/10").resolve(50), (v{10, 20, 30, 40}));
    EXPECT_EQ(io::frame_selection::parse("7-").resolve(10), (v{7, 8, 9}));
    EXPECT_EQ(io::frame_selection::parse("5, 1,9,1").resolve(10), (v{5, 1, 9}));
    EXPECT_EQ(io::frame_selection::parse("0,2-3,8-/2").resolve(12), (v{0, 2, 3, 8, 10}));
    EXPECT_TRUE(io::frame_selection::parse("*/4").resolve(0).empty());
}

TEST(DicomFrameSelection, RefusesBadSpecsAndFramesPastTheEnd) {
    for (const char* bad : {"", "x", "3-1", "*/0", "1,,2", "-4", "2-x", "1/"})
        EXPECT_THROW(io::frame_selection::parse(bad), value_error) << bad;
    try {
        io::frame_selection::parse("1,12").resolve(10, "run.dcm");
        FAIL() << "frame 12 of 10 accepted";
    } catch (const value_error& e) {
        EXPECT_NE(std::string(e.what()).find("run.dcm"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("frame 12"), std::string::npos) << e.what();
    }
    EXPECT_THROW(io::frame_selection::parse("8-12").resolve(10), value_error);
}

TEST(DicomFrameRef, SplitsAndFormatsFrameAddresses) {
    const auto r = io::split_frame_ref("runs/cine.dcm#17");
    EXPECT_EQ(r.file, fs::path("runs/cine.dcm"));
    ASSERT_TRUE(r.frame.has_value());
    EXPECT_EQ(*r.frame, 17u);
    EXPECT_FALSE(io::split_frame_ref("runs/cine.dcm").frame.has_value());
    EXPECT_FALSE(io::split_frame_ref("runs/cine.dcm#").frame.has_value());
    EXPECT_FALSE(io::split_frame_ref("runs/cine.dcm#1a").frame.has_value());
    EXPECT_EQ(io::frame_ref_string("cine.dcm", 17), "cine.dcm#17");
    EXPECT_EQ(io::frame_suffix(17), "_f017");
    EXPECT_EQ(io::frame_suffix(0), "_f000");
    EXPECT_EQ(io::frame_suffix(1234), "_f1234");
}

#if VASOMIM_DICOM_READER

const fs::path dicom_dir = fs::path(VASOMIM_TEST_DATA_DIR) / "dicom";

std::string what_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "(nothing thrown)";
}

xt::xtensor<std::uint8_t, 2> frame_of(const xt::xarray<std::uint8_t>& frames, std::size_t k) {
    return xt::view(frames, k, xt::all(), xt::all());
}

struct fixture_case {
    const char* name;
    std::size_t frames;
    const char* transfer_syntax;  // a part of DCMTK's name
};

class DicomFixture : public ::testing::TestWithParam<fixture_case> {};

// Every frame equals the reference exactly: 8-bit and, where written, float and the min-max option.
TEST_P(DicomFixture, FramesEqualPydicomReference) {
    const auto& c = GetParam();
    const fs::path file = dicom_dir / (std::string(c.name) + ".dcm");
    io::dicom_reader r(file);
    EXPECT_EQ(r.frames(), c.frames);
    EXPECT_NE(r.info().transfer_syntax.find(c.transfer_syntax), std::string::npos) << r.info().transfer_syntax;
    const auto ref = io::read_npy<std::uint8_t>(dicom_dir / (std::string(c.name) + ".npy"));
    ASSERT_EQ(ref.dimension(), 3u);
    ASSERT_EQ(ref.shape(0), c.frames);
    for (std::size_t k = 0; k < c.frames; ++k) {
        const auto got = r.frame_gray8(k);
        const xt::xtensor<std::uint8_t, 2> want = xt::view(ref, k, xt::all(), xt::all());
        ASSERT_EQ(got.shape(), want.shape()) << c.name << " frame " << k;
        EXPECT_EQ(got, want) << c.name << " frame " << k;
    }
    // Random access (last frame first) decodes the same as the sequential pass.
    const xt::xtensor<std::uint8_t, 2> last = xt::view(ref, c.frames - 1, xt::all(), xt::all());
    io::dicom_reader again(file);
    EXPECT_EQ(again.frame_gray8(c.frames - 1), last) << c.name;
    const fs::path float_ref = dicom_dir / (std::string(c.name) + "_float.npy");
    if (fs::exists(float_ref)) {
        const auto f = io::read_npy<float>(float_ref);
        const xt::xtensor<float, 2> want = xt::view(f, 0, xt::all(), xt::all());
        EXPECT_EQ(r.frame_float(0), want) << c.name;
    }
    const fs::path minmax_ref = dicom_dir / (std::string(c.name) + "_minmax.npy");
    if (fs::exists(minmax_ref)) {
        const auto m = io::read_npy<std::uint8_t>(minmax_ref);
        io::dicom_reader mm(file, {.window = io::dicom_window::min_max});
        for (std::size_t k = 0; k < c.frames; ++k) {
            const xt::xtensor<std::uint8_t, 2> want = xt::view(m, k, xt::all(), xt::all());
            EXPECT_EQ(mm.frame_gray8(k), want) << c.name << " min-max frame " << k;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, DicomFixture,
    ::testing::Values(fixture_case{"mono8", 1, "Little Endian Explicit"},                // 8 bit as is
                      fixture_case{"mono8_multiframe", 5, "Little Endian Explicit"},     // + min-max option
                      fixture_case{"mono16_minmax", 1, "Little Endian Explicit"},        // 12 of 16 bits, min-max
                      fixture_case{"mono16_rescale", 1, "Little Endian Explicit"},       // slope 2, intercept -1024, window
                      fixture_case{"mono16_window", 1, "Little Endian Explicit"},        // first of two windows
                      fixture_case{"mono16_voilut", 1, "Little Endian Explicit"},        // VOI LUT, clamped below
                      fixture_case{"monochrome1", 1, "Little Endian Explicit"},          // inverted
                      fixture_case{"signed16", 1, "Little Endian Explicit"},             // PixelRepresentation 1
                      fixture_case{"rgb", 2, "Little Endian Explicit"},                  // luminance as PIL
                      fixture_case{"rgb_planar", 1, "Little Endian Explicit"},           // PlanarConfiguration 1
                      fixture_case{"rgb_rle", 2, "RLE"},                             //
                      fixture_case{"multi16", 3, "Little Endian Explicit"},              //
                      fixture_case{"multi16_rle", 3, "RLE"},                         //
                      fixture_case{"multi16_jpeg_lossless", 3, "1st Order Prediction"}, // process 14 SV1
                      fixture_case{"multi16_jpeg_lossless_p14", 3, "Process 14"},    // predictor 2
                      fixture_case{"multi16_jpeg_lossless_sv3", 3, "Process 14"},    // predictors 3-7
                      fixture_case{"multi16_jpeg_lossless_sv4", 3, "Process 14"},    //
                      fixture_case{"multi16_jpeg_lossless_sv5", 3, "Process 14"},    //
                      fixture_case{"multi16_jpeg_lossless_sv6", 3, "Process 14"},    //
                      fixture_case{"multi16_jpeg_lossless_sv7", 3, "Process 14"},    //
                      fixture_case{"multi16_jpeg_lossless_fragments", 3, "1st Order Prediction"}, // 2 fragments a frame
                      fixture_case{"multi16_jpeg_lossless_fragments_no_table", 3, "1st Order Prediction"}, // 3, no BOT
                      fixture_case{"rgb_jpeg_lossless", 2, "1st Order Prediction"},  // three components (DCMTK)
                      fixture_case{"mono8_jpeg_lossless", 5, "1st Order Prediction"}, // 8 bit, as cine runs
                      fixture_case{"mono12_jpeg_lossless_restart", 3, "Process 14"}, // restarts, Pt 1 (tools/)
                      fixture_case{"full16_jpeg_lossless_restart", 2, "Process 14"}, // SSSS 16, long codes (tools/)
                      fixture_case{"multi16_jpegls", 3, "JPEG-LS Lossless"},         //
                      fixture_case{"multi16_bigendian", 3, "Big Endian"},            //
                      fixture_case{"multi16_implicit", 3, "Little Endian Implicit"},            //
                      fixture_case{"mono8_jpeg_baseline", 5, "Baseline"},            // lossy; pydicom via Pillow
                      fixture_case{"mono8_jpegls", 5, "JPEG-LS Lossless"}),
    [](const ::testing::TestParamInfo<fixture_case>& info) { return std::string(info.param.name); });

// The builtin lossless JPEG decoder (io/jpeg_lossless.hpp) takes every one-component fixture (one
// fragment per frame, or several found by the offset table or by their SOI) and decodes the
// samples DCMTK does (as float: no rounding hides a difference); colour goes to DCMTK. The streams tools/make_dicom_fixtures.py encodes itself (restart
// intervals, point transform, SSSS 16) are decoded by DCMTK here too: the check on that encoder.
TEST(DicomReader, BuiltinLosslessJpegEqualsDcmtk) {
    std::size_t compared = 0;
    for (const auto& entry : fs::directory_iterator(dicom_dir)) {
        const std::string name = entry.path().stem().string();
        if (entry.path().extension() != ".dcm" || name.find("jpeg_lossless") == std::string::npos) continue;
        io::dicom_reader builtin(entry.path());
        io::dicom_reader dcmtk(entry.path(), {.lossless_jpeg = io::dicom_lossless_jpeg::dcmtk});
        const bool colour = name.starts_with("rgb");
        for (std::size_t k = 0; k < builtin.frames(); ++k) {
            EXPECT_EQ(builtin.frame_float(k), dcmtk.frame_float(k)) << name << " frame " << k;
            EXPECT_STREQ(builtin.last_decoder(), colour ? "DCMTK" : "builtin") << name;
            EXPECT_STREQ(dcmtk.last_decoder(), "DCMTK");
            ++compared;
        }
    }
    EXPECT_EQ(compared, 39u);  // every frame of the 13 fixtures
}

// Found by the dicom fuzz target: a DHT with three codes of one bit was written into the builtin
// decoder's lookup past its end before the table was refused. Both decoders refuse it now, and the
// error gives both reasons.
TEST(DicomReader, RefusesAnOverflowingHuffmanTableGivingBothReasons) {
    io::dicom_reader r(dicom_dir / "huffman_code_overflow.dcm");
    const std::string m = what_of([&] { (void)r.frame_gray8(0); });
    EXPECT_NE(m.find("huffman_code_overflow.dcm#0' cannot be decoded"), std::string::npos) << m;
    EXPECT_NE(m.find("(and by the builtin decoder: lossless JPEG: a Huffman table whose codes overflow 1 bits)"),
              std::string::npos)
        << m;
}

// read_dicom_gray8 keeps the thread's reader of the last file for its next frame; a file replaced
// in between (another size, or the same size and a new modification time) is opened anew.
TEST(DicomReader, KeptReaderFollowsAReplacedFile) {
    const fs::path tmp = fs::temp_directory_path() / ("vasomim_kept_reader_" + std::to_string(::getpid()) + ".dcm");
    const auto first = io::read_npy<std::uint8_t>(dicom_dir / "multi16_jpeg_lossless.npy");
    const auto eight = io::read_npy<std::uint8_t>(dicom_dir / "mono8_jpeg_lossless.npy");
    fs::copy_file(dicom_dir / "multi16_jpeg_lossless.dcm", tmp, fs::copy_options::overwrite_existing);
    EXPECT_EQ(io::read_dicom_gray8(tmp.string() + "#1"), frame_of(first, 1));
    EXPECT_EQ(io::read_dicom_gray8(tmp.string() + "#2"), frame_of(first, 2));
    fs::copy_file(dicom_dir / "mono8_jpeg_lossless.dcm", tmp, fs::copy_options::overwrite_existing);  // other size
    EXPECT_EQ(io::read_dicom_gray8(tmp.string() + "#2"), frame_of(eight, 2));
    fs::copy_file(dicom_dir / "multi16_jpeg_lossless.dcm", tmp, fs::copy_options::overwrite_existing);
    EXPECT_EQ(io::read_dicom_gray8(tmp.string() + "#0"), frame_of(first, 0));
    // The same size, another window centre (1200 -> 1900), a later modification time.
    const auto t = fs::last_write_time(tmp);
    {
        std::fstream f(tmp, std::ios::in | std::ios::out | std::ios::binary);
        const std::string all((std::istreambuf_iterator<char>(f)), {});
        const auto at = all.find("1200");
        ASSERT_NE(at, std::string::npos);
        f.seekp(static_cast<std::streamoff>(at));
        f.write("1900", 4);
    }
    fs::last_write_time(tmp, t + std::chrono::seconds(2));
    const auto now = io::read_dicom_gray8(tmp.string() + "#0");
    EXPECT_EQ(now, io::dicom_reader(tmp).frame_gray8(0));
    EXPECT_NE(now, frame_of(first, 0));
    fs::remove(tmp);
}

TEST(DicomReader, ReadGray8TakesDicomFilesAndFrameAddresses) {
    const auto ref = io::read_npy<std::uint8_t>(dicom_dir / "multi16_jpeg_lossless.npy");
    const xt::xtensor<std::uint8_t, 2> f0 = xt::view(ref, 0, xt::all(), xt::all());
    const xt::xtensor<std::uint8_t, 2> f2 = xt::view(ref, 2, xt::all(), xt::all());
    EXPECT_EQ(io::read_gray8(dicom_dir / "multi16_jpeg_lossless.dcm"), f0);
    EXPECT_EQ(io::read_gray8((dicom_dir / "multi16_jpeg_lossless.dcm").string() + "#2"), f2);
    EXPECT_EQ(io::read_dicom_gray8((dicom_dir / "multi16_jpeg_lossless.dcm").string() + "#2"), f2);
    const xt::xtensor<float, 2> as_float = io::read_image_any((dicom_dir / "multi16.dcm").string() + "#2");
    const xt::xtensor<float, 2> f2_float = xt::cast<float>(f2);
    EXPECT_EQ(as_float, f2_float);
}

TEST(DicomReader, RecognisesDicomWithoutTheExtension) {
    const fs::path dir = fs::path(::testing::TempDir()) / "vasomim_dicom_noext";
    fs::create_directories(dir);
    fs::copy_file(dicom_dir / "mono8.dcm", dir / "IM000001", fs::copy_options::overwrite_existing);
    const auto ref = io::read_npy<std::uint8_t>(dicom_dir / "mono8.npy");
    EXPECT_EQ(io::read_gray8(dir / "IM000001"), frame_of(ref, 0));
    fs::remove_all(dir);
}

TEST(DicomReader, RefusesJpeg2000NamingTheTransferSyntax) {
    const fs::path file = dicom_dir / "jpeg2000_refused.dcm";
    EXPECT_THROW(io::dicom_reader{file}, format_error);
    const std::string m = what_of([&] { io::read_gray8(file); });
    EXPECT_NE(m.find("JPEG 2000"), std::string::npos) << m;
    EXPECT_NE(m.find("jpeg2000_refused.dcm"), std::string::npos) << m;
    EXPECT_NE(m.find("1.2.840.10008.1.2.4.90"), std::string::npos) << m;
}

TEST(DicomReader, RefusesGarbageMissingPixelsAndMissingFiles) {
    const std::string garbage = what_of([] { io::dicom_reader r(dicom_dir / "garbage.dcm"); });
    EXPECT_NE(garbage.find("garbage.dcm' is not a DICOM file"), std::string::npos) << garbage;
    EXPECT_THROW(io::read_gray8(dicom_dir / "garbage.dcm"), format_error);
    const std::string nopix = what_of([] { io::dicom_reader r(dicom_dir / "no_pixel_data.dcm"); });
    EXPECT_NE(nopix.find("no_pixel_data.dcm' holds no pixel data"), std::string::npos) << nopix;
    EXPECT_THROW(io::dicom_reader{dicom_dir / "missing.dcm"}, io_error);
    EXPECT_THROW(io::read_gray8(dicom_dir / "missing.dcm#3"), io_error);
}

// Found by tests/fuzz/dicom_fuzz.cpp: frame 1's second RLE segment offset (2,687,352) lies past its
// 1,168-byte fragment; DCMTK 3.6.7's RLE decoder read out of bounds on it. Refused before DCMTK.
TEST(DicomReader, RefusesRleSegmentOffsetsPastTheFragment) {
    const fs::path file = dicom_dir / "rle_segment_offset_past_fragment.dcm";
    io::dicom_reader r(file);
    EXPECT_NO_THROW((void)r.frame_gray8(0));
    const std::string m = what_of([&] { (void)r.frame_gray8(1); });
    EXPECT_NE(m.find("rle_segment_offset_past_fragment.dcm#1' is damaged RLE data"), std::string::npos) << m;
    EXPECT_NE(m.find("segment 1 starts at byte 2687352 of a 1168-byte fragment"), std::string::npos) << m;
    EXPECT_THROW((void)io::read_gray8(file.string() + "#1"), format_error);
}

// DCMTK's JPEG decoder loops forever on a TEM marker before the frame header (fuzz finding): the
// frame is refused first. Fragment 3 (frame 2) has TEM right after its APP0 segment.
TEST(DicomReader, RefusesJpegTemMarkerBeforeTheFrameHeader) {
    const fs::path file = dicom_dir / "jpeg_tem_before_frame_header.dcm";
    io::dicom_reader r(file);
    const std::string m = what_of([&] { (void)r.frame_gray8(2); });
    EXPECT_NE(m.find("jpeg_tem_before_frame_header.dcm#2' is damaged JPEG data"), std::string::npos) << m;
    EXPECT_NE(m.find("a TEM marker at byte 20 of fragment 3 before the frame header"), std::string::npos) << m;
    EXPECT_THROW((void)io::read_gray8(file.string() + "#2"), format_error);
}

TEST(DicomReader, RefusesFramesPastTheEndNamingFileAndFrame) {
    io::dicom_reader r(dicom_dir / "multi16_rle.dcm");
    EXPECT_THROW(r.frame_gray8(3), value_error);
    const std::string m = what_of([] { io::read_gray8((dicom_dir / "multi16_rle.dcm").string() + "#7"); });
    EXPECT_NE(m.find("frame 7"), std::string::npos) << m;
    EXPECT_NE(m.find("multi16_rle.dcm"), std::string::npos) << m;
    EXPECT_NE(m.find("3 frames"), std::string::npos) << m;
}

TEST(DicomReader, FramesOfARunFollowTheSelection) {
    io::dicom_reader r(dicom_dir / "mono8_multiframe.dcm");
    const auto ref = io::read_npy<std::uint8_t>(dicom_dir / "mono8_multiframe.npy");
    const auto frames = io::frame_selection::parse("*/2").resolve(r.frames(), r.path().string());
    ASSERT_EQ(frames, (std::vector<std::size_t>{0, 2, 4}));
    for (auto k : frames)
        EXPECT_EQ(r.frame_gray8(k), frame_of(ref, k)) << k;
}

// Real files no one here wrote: pydicom's test files with references made by
// `tools/make_dicom_fixtures.py --pydicom-files DIR`; run with VASOMIM_PYDICOM_REFS=DIR, as
// tools/test-all.sh (CI) does (skipped otherwise). Files the library refuses are listed with the reason.
TEST(DicomReader, MatchesPydicomTestFiles) {
    const char* dir = std::getenv("VASOMIM_PYDICOM_REFS");
    if (dir == nullptr || !fs::is_directory(dir)) GTEST_SKIP() << "VASOMIM_PYDICOM_REFS not set";
    std::size_t compared = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.path().extension() != ".dcm") continue;
        const fs::path npy = fs::path(entry.path()).replace_extension(".npy");
        if (!fs::exists(npy)) continue;
        const auto ref = io::read_npy<std::uint8_t>(npy);
        try {
            io::dicom_reader r(entry.path());
            ASSERT_EQ(r.frames(), ref.shape(0)) << entry.path();
            for (std::size_t k = 0; k < r.frames(); ++k)
                EXPECT_EQ(r.frame_gray8(k), frame_of(ref, k)) << entry.path() << " frame " << k;
            std::cout << "  same as pydicom: " << entry.path().filename().string() << " (" << r.frames()
                      << " frames, " << r.info().transfer_syntax << ")\n";
            ++compared;
        } catch (const format_error& e) {
            std::cout << "  refused: " << e.what() << '\n';
        }
    }
    EXPECT_GT(compared, 0u);
}

#else

TEST(DicomReader, SkippedWithoutDcmtk) {
    GTEST_SKIP() << "built without DICOM (VASOMIM_WITH_DICOM=OFF or DCMTK not found)";
}

#endif  // VASOMIM_DICOM_READER

}  // namespace

#endif  // !VASOMIM_HAS_CUDA
