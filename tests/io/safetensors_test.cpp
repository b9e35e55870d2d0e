// safetensors: the parameter set round-trips on every backend; a file PyTorch's side wrote by hand
// (tools/make_mae_fixtures.py) loads; every dtype a converted PyTorch checkpoint may hold
// (tools/make_checkpoint_fixtures.py) reads to the right floats; I64 is written and read back;
// malformed files raise errors that name the file, the tensor and the problem.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "test_backends.hpp"
#include "vasomim/io/safetensors.hpp"
#include "vasomim/model/mae.hpp"

namespace {

using namespace vasomim;

model::mae_config small_config() {
    model::mae_config c;
    c.img_size = 16;
    c.patch_size = 4;
    c.embed_dim = 16;
    c.depth = 2;
    c.num_heads = 2;
    c.decoder_embed_dim = 8;
    c.decoder_depth = 1;
    c.decoder_num_heads = 2;
    return c;
}

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("vasomim_" + name)).string();
}

template <class B>
class Safetensors : public ::testing::Test {};
TYPED_TEST_SUITE(Safetensors, vasomim::test::all_backends, vasomim::test::backend_name);

TYPED_TEST(Safetensors, ParameterSetRoundTrips) {
    using B = TypeParam;
    model::mae<B, float> a(small_config()), b(small_config());
    a.init(11);
    b.init(12);
    ASSERT_NE(a.params().to_host(), b.params().to_host());
    const auto path = temp_path(std::string("roundtrip_") + backend_traits<B>::name + ".safetensors");
    io::save_parameters(path, a.table(), a.params(), {{"arch", "mae_test"}});
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp")) << "the temporary file is renamed into place";
    io::load_parameters(path, b.table(), b.params());
    EXPECT_EQ(b.params().to_host(), a.params().to_host());
    const auto f = io::read_safetensors(path);
    EXPECT_EQ(f.metadata.at("arch"), "mae_test");
    ASSERT_EQ(f.tensors.size(), a.table().entries().size());
    EXPECT_EQ(f.tensors.front().name, "cls_token");
    EXPECT_EQ(f.find("blocks.1.attn.qkv.weight")->shape, (shape{48, 16}));
    EXPECT_EQ(f.find("decoder_pred.bias")->shape, (shape{48}));
    EXPECT_EQ(f.find("patch_embed.proj.weight")->shape, (shape{16, 3, 4, 4}));
    // A model of another shape refuses the file, naming the tensor.
    auto other = small_config();
    other.embed_dim = 32;
    model::mae<B, float> c(other);
    EXPECT_THROW(io::load_parameters(path, c.table(), c.params()), config_error);
    std::filesystem::remove(path);
}

TYPED_TEST(Safetensors, LoadsTheFileWrittenByPyTorchSide) {
    using B = TypeParam;
    const std::string path = VASOMIM_TEST_DATA_DIR "/nn/params_init.safetensors";
    const auto f = io::read_safetensors(path);
    EXPECT_EQ(f.metadata.at("format"), "pt");
    const auto* w = f.find("patch_embed.proj.weight");
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->shape, (shape{64, 3, 8, 8}));
    model::mae_config cfg;
    cfg.img_size = 32;
    cfg.patch_size = 8;
    cfg.embed_dim = 64;
    cfg.depth = 2;
    cfg.num_heads = 4;
    cfg.decoder_embed_dim = 32;
    cfg.decoder_depth = 2;
    cfg.decoder_num_heads = 4;
    model::mae<B, float> m(cfg);
    io::load_parameters(path, m.table(), m.params());
    for (const auto& t : f.tensors) EXPECT_EQ(m.parameter(t.name), t.data) << t.name;
    // MAE's fixed position embeddings in the file are the table computed here.
    EXPECT_EQ(f.find("decoder_pos_embed")->data, nn::sincos_pos_embed_2d<float>(32, 4, 4, true));
}

#if !VASOMIM_HAS_CUDA
void write_raw(const std::string& path, const std::string& header, const std::string& data) {
    std::ofstream out(path, std::ios::binary);
    const std::uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << header << data;
}

TEST(SafetensorsErrors, MalformedFilesAreFormatErrors) {
    const auto path = temp_path("bad.safetensors");
    EXPECT_THROW(io::read_safetensors(path + ".missing"), io_error);
    write_raw(path, "{not json", "");
    EXPECT_THROW(io::read_safetensors(path), format_error);
    write_raw(path, R"({"a":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}})", "abcd");
    EXPECT_THROW(io::read_safetensors(path), format_error);  // a dtype vasomim does not read
    write_raw(path, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcd");
    EXPECT_THROW(io::read_safetensors(path), format_error);  // 2 floats need 8 bytes
    write_raw(path, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}})", "abcd");
    EXPECT_THROW(io::read_safetensors(path), format_error);  // beyond the data
    {
        std::ofstream out(path, std::ios::binary);
        const std::uint64_t n = 1000;
        out.write(reinterpret_cast<const char*>(&n), 8);
    }
    EXPECT_THROW(io::read_safetensors(path), format_error);
    // A well-formed file with two tensors, data in file order.
    const float v[3] = {1.5f, -2.0f, 3.25f};
    write_raw(path, R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
              std::string(reinterpret_cast<const char*>(v), 12));
    const auto f = io::read_safetensors(path);
    ASSERT_EQ(f.tensors.size(), 2u);
    EXPECT_EQ(f.tensors[0].name, "a");
    EXPECT_EQ(f.tensors[0].data, (std::vector<float>{1.5f, -2.0f}));
    EXPECT_EQ(f.tensors[1].data, (std::vector<float>{3.25f}));
    std::filesystem::remove(path);
}

// The message of the format_error that reading `path` raises ("" if none).
std::string read_error(const std::string& path) {
    try {
        io::read_safetensors(path);
    } catch (const format_error& e) {
        return e.what();
    }
    return "";
}

TEST(SafetensorsErrors, UnknownDtypeNamesFileTensorAndDtype) {
    const auto path = temp_path("unknown_dtype.safetensors");
    write_raw(path, R"({"ok":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"blocks.0.w":{"dtype":"C64","shape":[1],"data_offsets":[4,12]}})",
              std::string(12, '\0'));
    const auto msg = read_error(path);
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("'blocks.0.w'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("C64"), std::string::npos) << msg;
    std::filesystem::remove(path);
}

TEST(SafetensorsErrors, TruncatedFileNamesFileAndTensor) {
    const auto path = temp_path("truncated.safetensors");
    io::write_safetensors(path, {{"a", shape{2}, {1.0f, 2.0f}}, {"b", shape{3}, {3.0f, 4.0f, 5.0f}}});
    ASSERT_EQ(io::read_safetensors(path).tensors.size(), 2u);
    std::filesystem::resize_file(path, std::filesystem::file_size(path) - 4);  // b loses its last value
    const auto msg = read_error(path);
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("tensor 'b'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
    std::filesystem::remove(path);
}

TEST(SafetensorsErrors, BadShapesAreRefused) {
    const auto path = temp_path("bad_shape.safetensors");
    write_raw(path, R"({"neg":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", "");
    auto msg = read_error(path);
    EXPECT_NE(msg.find("tensor 'neg'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("-1"), std::string::npos) << msg;
    // 2^32 * 2^32 elements wrap around to 0 in 64 bits: refused, not read as an empty tensor.
    write_raw(path, R"({"big":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", "");
    msg = read_error(path);
    EXPECT_NE(msg.find("tensor 'big'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("overflows"), std::string::npos) << msg;
    write_raw(path, R"({"big":{"dtype":"I64","shape":[2305843009213693952],"data_offsets":[0,0]}})", "");
    EXPECT_NE(read_error(path).find("overflows"), std::string::npos);  // 2^61 elements fit, 2^64 bytes do not
    write_raw(path, R"({"frac":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", "abcd");
    EXPECT_NE(read_error(path).find("tensor 'frac'"), std::string::npos);
    write_raw(path, R"({"empty":{"dtype":"F32","shape":[3,0],"data_offsets":[0,0]}})", "");
    const auto f = io::read_safetensors(path);  // an empty tensor is fine
    EXPECT_EQ(f.tensors.at(0).shape, (shape{3, 0}));
    EXPECT_TRUE(f.tensors.at(0).data.empty());
    std::filesystem::remove(path);
}

TEST(SafetensorsDtypes, EveryDtypeReadsToTheRightFloats) {
    // Saved by torch.save and converted by tools/convert_torch_checkpoint.py.
    const auto f = io::read_safetensors(VASOMIM_TEST_DATA_DIR "/checkpoint/all_dtypes.safetensors");
    EXPECT_EQ(f.metadata.at("source"), "all_dtypes.pth");
    auto values = [&](const std::string& name, const std::string& dtype) {
        const auto* t = f.find(name);
        if (!t) {
            ADD_FAILURE() << "no tensor " << name;
            return std::vector<float>{};
        }
        EXPECT_EQ(t->dtype, dtype) << name;
        EXPECT_EQ(io::is_integer_dtype(t->dtype), dtype[0] != 'F' && dtype != "BF16") << name;
        return t->data;
    };
    const float inf = std::numeric_limits<float>::infinity();
    EXPECT_EQ(values("f32", "F32"), (std::vector<float>{1.5f, -2.25f, 3.0e38f, 1e-40f}));
    EXPECT_EQ(values("f64", "F64"), (std::vector<float>{0.1f, -inf, 2.5f, 0.0f}));  // -1e300 overflows float
    EXPECT_EQ(f.find("f64")->shape, (shape{2, 2}));
    const auto h = values("f16", "F16");
    EXPECT_EQ(h, (std::vector<float>{1.5f, -2.25f, 65504.0f, std::ldexp(1.0f, -24), inf, -0.0f}));
    ASSERT_EQ(h.size(), 6u);
    EXPECT_TRUE(std::signbit(h[5]));
    EXPECT_EQ(values("bf16", "BF16"), (std::vector<float>{1.5f, -2.25f, std::ldexp(1.0f, 100), -std::ldexp(1.0f, -130)}));
    EXPECT_EQ(values("i64", "I64"), (std::vector<float>{3.0f, -7.0f, 1099511627776.0f}));
    EXPECT_EQ(values("i32", "I32"), (std::vector<float>{-2147483648.0f, 123456.0f}));
    EXPECT_EQ(values("i16", "I16"), (std::vector<float>{-32768.0f, 32767.0f}));
    EXPECT_EQ(values("i8", "I8"), (std::vector<float>{-128.0f, 127.0f, 0.0f}));
    EXPECT_EQ(values("u8", "U8"), (std::vector<float>{0.0f, 255.0f, 17.0f}));
    EXPECT_EQ(values("bool", "BOOL"), (std::vector<float>{1.0f, 0.0f, 1.0f}));
    EXPECT_EQ(values("scalar", "I64"), (std::vector<float>{42.0f}));
    EXPECT_EQ(f.find("scalar")->shape.rank(), 0);
}

TEST(SafetensorsDtypes, I64IsWrittenAndReadBack) {
    const auto path = temp_path("i64.safetensors");
    io::write_safetensors(path, {{"bn.weight", shape{2}, {1.5f, -2.0f}},
                                 {"bn.num_batches_tracked", shape{}, {1234567.0f}, "I64"},
                                 {"counts", shape{3}, {-5.0f, 0.0f, 1099511627776.0f}, "I64"}});
    const auto f = io::read_safetensors(path);
    ASSERT_EQ(f.tensors.size(), 3u);
    EXPECT_EQ(f.tensors[0].dtype, "F32");
    EXPECT_EQ(f.tensors[1].dtype, "I64");
    EXPECT_EQ(f.tensors[1].shape.rank(), 0);
    EXPECT_EQ(f.tensors[1].data, (std::vector<float>{1234567.0f}));
    EXPECT_EQ(f.tensors[2].data, (std::vector<float>{-5.0f, 0.0f, 1099511627776.0f}));
    // 8 header-length bytes + header + 2 floats + 1 + 3 int64
    std::ifstream in(path, std::ios::binary);
    std::uint64_t header_len = 0;
    in.read(reinterpret_cast<char*>(&header_len), 8);
    EXPECT_EQ(header_len % 8, 0u);
    EXPECT_EQ(std::filesystem::file_size(path), 8 + header_len + 2 * 4 + 4 * 8);
    std::filesystem::remove(path);
}

TEST(SafetensorsDtypes, OtherDtypesAreRefusedOnWrite) {
    const auto path = temp_path("refused.safetensors");
    std::filesystem::remove(path);
    try {
        io::write_safetensors(path, {{"a", shape{1}, {1.0f}}, {"w", shape{1}, {1.0f}, "F16"}});
        ADD_FAILURE() << "F16 was written";
    } catch (const value_error& e) {
        EXPECT_NE(std::string(e.what()).find("'w'"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("F16"), std::string::npos) << e.what();
    }
    EXPECT_THROW(io::write_safetensors(path, {{"n", shape{1}, {0.5f}, "I64"}}), value_error);  // not an integer
    EXPECT_FALSE(std::filesystem::exists(path)) << "nothing is written when a tensor is refused";
}
#endif

}  // namespace
