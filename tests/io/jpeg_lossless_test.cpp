// io/jpeg_lossless.hpp: lossless JPEG streams decode to the samples they were made from (streams of
// DCMTK's encoder and of tools/make_dicom_fixtures.py's, which DCMTK also decodes: dicom_test.cpp),
// and broken or unsupported streams are refused with the reason, without reading past them.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "vasomim/core/error.hpp"
#include "vasomim/io/jpeg_lossless.hpp"
#include "vasomim/io/npy.hpp"

namespace {

namespace fs = std::filesystem;
using namespace vasomim;

const fs::path dir = fs::path(VASOMIM_TEST_DATA_DIR) / "jpeg_lossless";

std::vector<std::uint8_t> bytes_of(const std::string& name) {
    std::ifstream f(dir / (name + ".jpg"), std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

std::string refusal(const std::vector<std::uint8_t>& stream) {
    std::vector<std::uint16_t> plane;
    try {
        io::decode_jpeg_lossless(stream.data(), stream.size(), plane);
    } catch (const format_error& e) {
        return e.what();
    }
    return "(decoded)";
}

/// Index of the first occurrence of marker 0xFF m.
std::size_t find_marker(const std::vector<std::uint8_t>& s, std::uint8_t m) {
    for (std::size_t i = 0; i + 1 < s.size(); ++i)
        if (s[i] == 0xff && s[i + 1] == m) return i;
    return s.size();
}

struct stream_case {
    const char* name;
    int precision, predictor, point_transform, restart_interval;
};

class JpegLosslessStream : public ::testing::TestWithParam<stream_case> {};

TEST_P(JpegLosslessStream, DecodesToTheSamplesItWasMadeFrom) {
    const auto& c = GetParam();
    const auto stream = bytes_of(c.name);
    ASSERT_FALSE(stream.empty()) << c.name;
    const auto want = io::read_npy<std::uint16_t>(dir / (std::string(c.name) + ".npy"));
    std::vector<std::uint16_t> plane{1, 2, 3};  // resized, every sample written
    const auto info = io::decode_jpeg_lossless(stream.data(), stream.size(), plane);
    EXPECT_EQ(info.rows, 24);
    EXPECT_EQ(info.columns, 32);
    EXPECT_EQ(info.precision, c.precision);
    EXPECT_EQ(info.predictor, c.predictor);
    EXPECT_EQ(info.point_transform, c.point_transform);
    EXPECT_EQ(info.restart_interval, c.restart_interval);
    ASSERT_EQ(plane.size(), want.size());
    for (std::size_t i = 0; i < plane.size(); ++i) ASSERT_EQ(plane[i], want.data()[i]) << c.name << " sample " << i;
}

// Every prefix of a stream lacks its end: each is refused (and, under ASan, read within bounds).
TEST_P(JpegLosslessStream, RefusesEveryTruncation) {
    const auto stream = bytes_of(GetParam().name);
    for (std::size_t n = 0; n < stream.size(); ++n) {
        const std::vector<std::uint8_t> cut(stream.begin(), stream.begin() + static_cast<std::ptrdiff_t>(n));
        EXPECT_NE(refusal(cut), "(decoded)") << GetParam().name << " cut at " << n;
    }
}

// Random damage to the entropy-coded data decodes to something or is refused; it never reads
// outside the stream (ASan) or hangs.
TEST_P(JpegLosslessStream, SurvivesDamagedData) {
    const auto stream = bytes_of(GetParam().name);
    const std::size_t scan = find_marker(stream, 0xda) + 10;
    ASSERT_LT(scan, stream.size());
    std::mt19937 rng(7);
    std::size_t refused = 0;
    for (int trial = 0; trial < 300; ++trial) {
        auto s = stream;
        for (int k = 0; k < 3; ++k)
            s[scan + rng() % (s.size() - scan)] = static_cast<std::uint8_t>(rng());
        refused += refusal(s) != "(decoded)";
    }
    std::cout << "  " << GetParam().name << ": " << refused << " of 300 damaged streams refused\n";
}

INSTANTIATE_TEST_SUITE_P(Streams, JpegLosslessStream,
                         ::testing::Values(stream_case{"p8_pred1_dcmtk", 8, 1, 0, 0},  // DCMTK's, as cine runs
                                           stream_case{"p12_pred5_pt1_restart2", 12, 5, 1, 64},
                                           stream_case{"p16_pred7_restart5", 16, 7, 0, 160}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(JpegLossless, RefusesWhatItDoesNotReadSayingWhy) {
    const auto p12 = bytes_of("p12_pred5_pt1_restart2");
    const std::size_t sof = find_marker(p12, 0xc3), sos = find_marker(p12, 0xda), dri = find_marker(p12, 0xdd);
    auto expect = [](const std::vector<std::uint8_t>& s, const std::string& part) {
        const std::string m = refusal(s);
        EXPECT_NE(m.find("lossless JPEG: "), std::string::npos) << m;
        EXPECT_NE(m.find(part), std::string::npos) << m;
    };
    expect({0x89, 'P', 'N', 'G'}, "does not start with SOI");
    // One byte changed, and what the refusal says.
    struct patch {
        std::size_t at;
        std::uint8_t byte;
        const char* says;
    };
    const std::size_t rst = find_marker(p12, 0xd0);
    for (const patch& p : {patch{sof + 1, 0xc0, "frame header SOF0"},
                           patch{sof + 9, 3, "3 components"},                    // Nf
                           patch{sof + 4, 1, "precision 1"},                     // P
                           patch{sof + 6, 0, "DNL"},                             // 0 rows: a DNL marker gives them
                           patch{sos + 7, 8, "predictor 8"},                     // Ss
                           patch{sos + 6, 0x10, "table 1 is not defined"},       // Td
                           patch{sos + 9, 12, "point transform 12 of precision 12"},  // Al
                           patch{dri + 5, 48, "a restart interval of 48 samples in rows of 32"},
                           patch{rst + 1, 0xd3, "restart marker RST3 out of place"},
                           // the same data as 8-bit samples (Pt 1): values past 7 bits
                           patch{sof + 4, 8, "samples outside 7 bits"}}) {
        auto s = p12;
        s[p.at] = p.byte;
        expect(s, p.says);
    }
    std::vector<std::uint8_t> s;
    // The scan ends (EOI) after RST4: five restart markers where the 24 rows take eleven.
    s.assign(p12.begin(), p12.begin() + static_cast<std::ptrdiff_t>(find_marker(p12, 0xd4) + 2));
    s.insert(s.end(), {0x12, 0x34, 0xff, 0xd9});
    expect(s, "5 restart markers for 12 intervals");
    // Data that ends inside a row: the row's check refuses it.
    s.assign(p12.begin(), p12.begin() + static_cast<std::ptrdiff_t>(find_marker(p12, 0xd0) - 20));
    s.insert(s.end(), {0xff, 0xd0});
    s.insert(s.end(), p12.begin() + static_cast<std::ptrdiff_t>(find_marker(p12, 0xd0) + 2), p12.end());
    expect(s, "ends before the samples do");
}

// Found by the jpeg_lossless fuzz target: a 63,975 x 65,503 frame header over a 100-byte scan made
// the decoder allocate 8 GB before reading a bit. Refused now by the bits the scan has.
TEST(JpegLossless, RefusesAFrameLargerThanItsScanBeforeAllocatingIt) {
    const std::string m = refusal(bytes_of("regression-frame-larger-than-its-scan"));
    EXPECT_NE(m.find("lossless JPEG: a frame of 63975 x 65503 samples from a scan of"), std::string::npos) << m;
}

TEST(JpegLossless, RefusesAHuffmanTableThatCannotBeAPrefixCode) {
    auto s = bytes_of("p8_pred1_dcmtk");
    const std::size_t dht = find_marker(s, 0xc4);
    ASSERT_LT(dht, s.size());
    // `extra` more codes of length 1 (as many fewer of a longer length): with 2, the codes 0 and 1
    // (the all-ones code, which no table may use); with 3, a code 2 of one bit, past the lookup
    // (found by the dicom fuzz target: it was written into the lookup before the check).
    for (int extra : {2, 3}) {
        auto t = s;
        t[dht + 5] = static_cast<std::uint8_t>(t[dht + 5] + extra);
        std::size_t len = 2;
        while (len <= 16 && t[dht + 4 + len] < extra) ++len;
        ASSERT_LE(len, 16u);
        t[dht + 4 + len] = static_cast<std::uint8_t>(t[dht + 4 + len] - extra);
        const std::string m = refusal(t);
        EXPECT_NE(m.find("codes overflow 1 bits"), std::string::npos) << m;
    }
}

}  // namespace
