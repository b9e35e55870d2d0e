// safetensors: the parameter set round-trips on every backend; a file PyTorch's side wrote by hand
// (tools/make_mae_fixtures.py) loads; malformed files raise errors that name the problem.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
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
    write_raw(path, R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", "abcd");
    EXPECT_THROW(io::read_safetensors(path), format_error);
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
#endif

}  // namespace
