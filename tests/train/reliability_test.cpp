// Reliability under hostile input (issue 19). The fuzz corpora of tests/data/fuzz (seeds and the
// inputs of fixed findings) replayed through their readers: each is read or refused with vasomim's
// own error, never anything else. Checkpoints as data that can rot or be torn: the CRC32C per
// tensor that write_safetensors records and read_safetensors verifies, files without checksums
// still read, truncated files refused, and --resume DIR falling back to the newest intact checkpoint.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

#include "vasomim/core/config.hpp"
#include "vasomim/io/image.hpp"
#include "vasomim/io/npy.hpp"
#include "vasomim/io/png_decode.hpp"
#include "vasomim/io/safetensors.hpp"

namespace {

namespace fs = std::filesystem;
using namespace vasomim;

fs::path scratch(const std::string& name) {
    const auto d = fs::temp_directory_path() / ("vasomim_integrity_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void spit(const fs::path& p, const std::string& bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// Offset in the file of the data section (8 + header length).
std::size_t data_start(const std::string& bytes) {
    std::uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    return static_cast<std::size_t>(8 + n);
}

/// Flips one bit of the byte at `offset` of the data section.
void flip_data_byte(const fs::path& p, std::size_t offset) {
    auto bytes = slurp(p);
    bytes[data_start(bytes) + offset] ^= 0x10;
    spit(p, bytes);
}

std::string message_of(const fs::path& p) {
    try {
        io::read_safetensors(p.string());
    } catch (const format_error& e) {
        return e.what();
    }
    return "";
}

/// Every file of tests/data/fuzz/<target>; `read` must return or throw vasomim::error.
template <class Read>
void replay(const char* target, Read read) {
    const fs::path dir = fs::path(VASOMIM_TEST_DATA_DIR) / "fuzz" / target;
    ASSERT_TRUE(fs::is_directory(dir)) << dir;
    int files = 0;
    for (const auto& e : fs::directory_iterator(dir)) {
        if (!e.is_regular_file() || e.path().filename().string().starts_with(".")) continue;
        ++files;
        try {
            read(e.path());
        } catch (const vasomim::error&) {
        } catch (const std::exception& x) {
            ADD_FAILURE() << e.path() << " escaped the reader as " << x.what();
        }
    }
    EXPECT_GT(files, 0);
}

TEST(FuzzCorpora, EveryInputIsReadOrRefusedWithVasomimsOwnError) {
    replay("png_decode", [](const fs::path& p) { (void)io::detail::decode_png8(slurp(p), p.string()); });
    replay("image", [](const fs::path& p) { (void)io::read_gray8(p); });
    replay("npy", [](const fs::path& p) { (void)io::read_npy_as<float>(p); });
    replay("safetensors", [](const fs::path& p) { (void)io::read_safetensors(p.string()); });
}

TEST(FuzzRegressions, AJpegHuffmanTableOfMoreThan256CodesIsRefusedBeforeStb) {
    // Debian's stb_image 2.27 wrote past its Huffman tables on this file.
    // The second one starts with a 0xFF fill byte before SOI, which stb accepts.
    for (const char* name : {"regression-stb-jpeg-dht-257-codes.jpg", "regression-stb-jpeg-fill-before-soi-dht.jpg"}) {
        try {
            (void)io::read_gray8(fs::path(VASOMIM_TEST_DATA_DIR) / "fuzz/image" / name);
            ADD_FAILURE() << name << " was read";
        } catch (const format_error& e) {
            EXPECT_NE(std::string(e.what()).find("Huffman table"), std::string::npos) << e.what();
        }
    }
}

TEST(FuzzRegressions, AJpegScanWithAnUndefinedHuffmanTableIsRefusedBeforeStb) {
    // stb_image decodes it with an AC table no DHT defined (heap garbage): its assertion aborted the
    // process or not, depending on earlier allocations.
    try {
        (void)io::read_gray8(fs::path(VASOMIM_TEST_DATA_DIR) / "fuzz/image/regression-stb-jpeg-undefined-huffman-table.jpg");
        ADD_FAILURE() << "read";
    } catch (const format_error& e) {
        EXPECT_NE(std::string(e.what()).find("uses AC Huffman table 0, which no DHT segment defines"), std::string::npos)
            << e.what();
    }
}

TEST(FuzzRegressions, AnImageWithoutPixelsIsRefused) {
    // stb_image takes this BMP of height 0 as a 32 x 0 image.
    EXPECT_THROW((void)io::read_gray8(fs::path(VASOMIM_TEST_DATA_DIR) / "fuzz/image/regression-bmp-height-0.bmp"),
                 format_error);
}

TEST(FuzzRegressions, NpyBoolBytesOtherThanZeroAndOneReadAsTrue) {
    const auto a = io::read_npy_as<float>(fs::path(VASOMIM_TEST_DATA_DIR) / "fuzz/npy/regression-bool-byte-255.npy");
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a(0, 0), 1.0f);
}

TEST(FuzzRegressions, AnImageClaimingMorePixelsThanItsBytesCanHoldIsRefusedBeforeDecoding) {
    // A 767-byte TGA claiming a huge image kept stb_image busy for seconds.
    const auto p = fs::path(VASOMIM_TEST_DATA_DIR) / "fuzz/image/regression-stb-tga-claims-huge-size.tga";
    try {
        (void)io::read_gray8(p);
        ADD_FAILURE() << "read";
    } catch (const format_error& e) {
        EXPECT_NE(std::string(e.what()).find("bytes can hold"), std::string::npos) << e.what();
    }
}

TEST(FuzzRegressions, NpyHeadersAreParsedStrictlyAndClaimsCheckedBeforeAllocating) {
    // xtensor's header parser read before an empty string's start on this one.
    EXPECT_THROW((void)io::read_npy_as<float>(fs::path(VASOMIM_TEST_DATA_DIR) / "fuzz/npy/regression-xtensor-empty-shape-value.npy"),
                 format_error);
    const auto d = scratch("npy");
    auto header = [](const std::string& dict) {
        std::string h = dict;
        h.append((64 - (10 + h.size() + 1) % 64) % 64, ' ');
        h += '\n';
        std::string out = "\x93NUMPY\x01";
        out += '\0';
        out += char(h.size() & 0xff);
        out += char(h.size() >> 8);
        return out + h;
    };
    // A header claiming 2^40 elements over 8 data bytes: refused as truncated, nothing allocated.
    spit(d / "huge.npy", header("{'descr': '<f4', 'fortran_order': False, 'shape': (1048576, 1048576), }") + std::string(8, '\0'));
    try {
        (void)io::read_npy_as<float>(d / "huge.npy");
        ADD_FAILURE() << "read";
    } catch (const format_error& e) {
        EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
    }
    // Keys in any order, as the format allows; values as numpy writes them.
    std::string data(2 * 3 * 4, '\0');
    spit(d / "order.npy", header("{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}") + data);
    const auto a = io::read_npy_as<float>(d / "order.npy");
    EXPECT_EQ(a.shape(0), 2u);
    EXPECT_EQ(a.shape(1), 3u);
    for (const char* broken : {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'shape': (6,), }",
                               "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 3), }",
                               "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }",
                               "{'descr': 'f4', 'fortran_order': False, 'shape': (2, 3), }", "{", ""}) {
        spit(d / "broken.npy", header(broken) + data);
        EXPECT_THROW((void)io::read_npy_as<float>(d / "broken.npy"), format_error) << broken;
    }
    fs::remove_all(d);
}

TEST(Crc32c, IsTheCastagnoliChecksum) {
    // The CRC-32C check value (RFC 3720's polynomial, reflected, init and final xor ~0).
    EXPECT_EQ(io::crc32c("123456789", 9), 0xe3069283u);
    EXPECT_EQ(io::crc32c("", 0), 0u);
}

TEST(SafetensorsChecksums, RoundTripRecordsAndHidesTheChecksums) {
    const auto d = scratch("roundtrip");
    io::write_safetensors((d / "a.safetensors").string(),
                          {{"w", shape{2, 3}, {1, 2, 3, 4, 5, 6}}, {"n", shape{}, {7}, "I64"}}, {{"step", "3"}});
    const auto bytes = slurp(d / "a.safetensors");
    EXPECT_NE(bytes.find("\"crc32c\""), std::string::npos);
    const auto f = io::read_safetensors((d / "a.safetensors").string());
    ASSERT_EQ(f.tensors.size(), 2u);
    EXPECT_EQ(f.metadata.size(), 1u);  // step; the checksums are the reader's business
    EXPECT_EQ(f.metadata.at("step"), "3");
    EXPECT_EQ(f.tensors[1].data[0], 7.0f);
    fs::remove_all(d);
}

TEST(SafetensorsChecksums, AFlippedByteIsRefusedNamingTheTensor) {
    const auto d = scratch("flip");
    const auto p = d / "a.safetensors";
    io::write_safetensors(p.string(), {{"first", shape{4}, {1, 2, 3, 4}}, {"second", shape{2, 2}, {5, 6, 7, 8}}});
    flip_data_byte(p, 16 + 5);  // inside "second"
    const std::string msg = message_of(p);
    EXPECT_NE(msg.find("'second' is damaged"), std::string::npos) << msg;
    EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
    // The header's checksum entry itself damaged: refused too (not silently ignored).
    io::write_safetensors(p.string(), {{"first", shape{4}, {1, 2, 3, 4}}});
    auto bytes = slurp(p);
    const auto at = bytes.find("\\\"first\\\":\\\"");
    ASSERT_NE(at, std::string::npos);
    bytes[at + 12] = bytes[at + 12] == '0' ? '1' : '0';
    spit(p, bytes);
    EXPECT_NE(message_of(p).find("'first' is damaged"), std::string::npos) << message_of(p);
    fs::remove_all(d);
}

TEST(SafetensorsChecksums, ATruncatedFileIsRefused) {
    const auto d = scratch("truncate");
    const auto p = d / "a.safetensors";
    io::write_safetensors(p.string(), {{"first", shape{4}, {1, 2, 3, 4}}, {"second", shape{2, 2}, {5, 6, 7, 8}}});
    const auto bytes = slurp(p);
    for (const std::size_t keep : {bytes.size() - 1, bytes.size() - 16, data_start(bytes), std::size_t(40), std::size_t(3)}) {
        spit(p, bytes.substr(0, keep));
        EXPECT_THROW(io::read_safetensors(p.string()), format_error) << "kept " << keep << " bytes";
    }
    spit(p, bytes.substr(0, bytes.size() - 4));
    EXPECT_NE(message_of(p).find("tensor 'second'"), std::string::npos) << message_of(p);
    fs::remove_all(d);
}

TEST(SafetensorsChecksums, FilesWithoutChecksumsStillRead) {
    // Converted PyTorch files carry no checksums.
    const auto f = io::read_safetensors(VASOMIM_TEST_DATA_DIR "/checkpoint/toy_vasomim.safetensors");
    EXPECT_FALSE(f.tensors.empty());
    EXPECT_EQ(f.metadata.count("crc32c"), 0u);
}

}  // namespace

#if !VASOMIM_HAS_CUDA
#include "vasomim/backend/cpu.hpp"
#include "vasomim/data/folder_dataset.hpp"
#include "vasomim/model/masked_image_model.hpp"
#include "vasomim/train/pretrain_loop.hpp"

namespace {

using B = backend::cpu;

model::mae_pretraining<B> make_tiny_mae() {
    model::mae_config c;
    c.img_size = 32;
    c.patch_size = 8;
    c.embed_dim = 16;
    c.depth = 1;
    c.num_heads = 2;
    c.decoder_embed_dim = 8;
    c.decoder_depth = 1;
    c.decoder_num_heads = 2;
    return {c, masking::random{0.5, 3}};
}

/// Trains the tiny MAE to `max_steps` (checkpoints every 2 steps) in `out`, resuming from it
/// when asked; returns the parameters, the summary and the log.
std::vector<float> run(const fs::path& out, std::uint64_t max_steps, bool resume, train::pretrain_summary& summary,
                       std::string& log_text) {
    data::synthetic_angiogram_options so;
    so.height = so.width = 40;
    const data::synthetic_dataset dataset(8, 5, so);
    data::loader_options lo;
    lo.batch_size = 4;
    lo.workers = 0;
    lo.seed = 3;
    lo.augment.size = 32;
    data::prefetch_loader<data::synthetic_dataset> loader(dataset, lo);
    auto m = make_tiny_mae();
    m.init(3);
    train::pretrain_options o;
    o.epochs = 4;
    o.warmup_epochs = 1;
    o.seed = 3;
    o.output = out;
    o.checkpoint_every = 2;
    o.keep_checkpoints = 5;
    o.panel_every = 100;
    o.signature = "integrity";
    o.max_steps = max_steps;
    o.show_progress = false;
    if (resume) o.resume_from = out;
    std::ostringstream log;
    summary = train::pretrain(m, loader, o, log);
    log_text = log.str();
    return m.network().params().to_host();
}

TEST(ResumeFallback, SkipsADamagedNewestCheckpointAndContinuesFromThePreviousOne) {
    const auto d = scratch("resume");
    train::pretrain_summary s;
    std::string log;
    const auto straight = run(d / "straight", 6, false, s, log);
    run(d / "split", 4, false, s, log);
    const auto newest = train::checkpoint_path(d / "split", 4);
    ASSERT_TRUE(fs::exists(newest));
    flip_data_byte(newest, 100);
    const auto resumed = run(d / "split", 6, true, s, log);
    EXPECT_EQ(s.first_step, 2u) << log;
    EXPECT_NE(log.find("skipping damaged checkpoint " + newest.string()), std::string::npos) << log;
    EXPECT_NE(log.find("is damaged"), std::string::npos) << log;
    EXPECT_NE(log.find("resumed from " + train::checkpoint_path(d / "split", 2).string()), std::string::npos) << log;
    EXPECT_TRUE(straight == resumed) << "resuming from the previous checkpoint is not exact";
    fs::remove_all(d);
}

TEST(ResumeFallback, ATruncatedOptimiserFileCountsAsDamageAndNoIntactOneIsAnError) {
    const auto d = scratch("resume_none");
    train::pretrain_summary s;
    std::string log;
    run(d, 2, false, s, log);
    const auto only = train::checkpoint_path(d, 2);
    const auto optim = train::optimiser_path(only);
    const auto bytes = slurp(optim);
    spit(optim, bytes.substr(0, bytes.size() / 2));
    try {
        run(d, 4, true, s, log);
        ADD_FAILURE() << "resumed from a damaged checkpoint";
    } catch (const config_error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("no intact checkpoint"), std::string::npos) << msg;
        EXPECT_NE(msg.find(only.filename().string()), std::string::npos) << msg;
    }
    fs::remove_all(d);
}

}  // namespace
#endif
