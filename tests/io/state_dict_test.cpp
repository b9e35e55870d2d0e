// Loading state dicts into a parameter table (io/state_dict.hpp): a VasoMIM-like checkpoint saved by
// torch.save and converted by tools/convert_torch_checkpoint.py (tests/data/checkpoint/, made by
// tools/make_checkpoint_fixtures.py) loads its segmentor through the prefix "seg_model.", its I64
// num_batches_tracked ignored and noted once; DDP's "module." is stripped; a file that does not fit
// raises one checkpoint_mismatch_error listing every mismatch and leaves the buffer untouched.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "test_backends.hpp"
#include "vasomim/io/safetensors.hpp"
#include "vasomim/io/state_dict.hpp"
#include "vasomim/nn/parameters.hpp"

namespace {

using namespace vasomim;
using mismatch = checkpoint_mismatch_error::mismatch;

const std::string toy = VASOMIM_TEST_DATA_DIR "/checkpoint/toy_vasomim.safetensors";
const std::string toy_ddp = VASOMIM_TEST_DATA_DIR "/checkpoint/toy_vasomim_ddp.safetensors";

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("vasomim_state_dict_" + name)).string();
}

/// The tiny segmentor of the fixture, as a model would declare it (no num_batches_tracked).
nn::parameter_table segmentor_table() {
    nn::parameter_table t;
    t.add("encoder1.weight", shape{2, 1, 3, 3});
    t.add("encoder1.bias", shape{2});
    for (const char* bn : {"ebn1", "dbn1"}) {
        const std::string n = bn;
        t.add(n + ".weight", shape{2});
        t.add(n + ".bias", shape{2});
        t.add(n + ".running_mean", shape{2}, false, false);
        t.add(n + ".running_var", shape{2}, false, false);
        if (n == "ebn1") t.add("decoder1.weight", shape{2, 2, 3, 3}), t.add("decoder1.bias", shape{2});
    }
    t.add("final.weight", shape{1, 2, 1, 1});
    t.add("final.bias", shape{1});
    return t;
}

template <class B>
std::vector<float> parameter(const nn::parameter_table& table, const tensor<float, B>& flat, const std::string& name) {
    const auto host = flat.to_host();
    const auto& e = table.find(name);
    return {host.begin() + e.offset, host.begin() + e.offset + e.numel()};
}

std::size_t count(const std::string& s, const std::string& what) {
    std::size_t n = 0;
    for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
    return n;
}

template <class B>
class StateDict : public ::testing::Test {};
TYPED_TEST_SUITE(StateDict, vasomim::test::all_backends, vasomim::test::backend_name);

TYPED_TEST(StateDict, PyTorchCheckpointLoadsThroughThePrefix) {
    using B = TypeParam;
    const auto table = segmentor_table();
    tensor<float, B> flat(shape{table.size()}, 0.0f);
    std::ostringstream notes;
    io::load_parameters(toy, table, flat, io::state_dict_options{"seg_model.", true, &notes});
    EXPECT_EQ(parameter(table, flat, "encoder1.bias"), (std::vector<float>{0.25f, -0.5f}));
    EXPECT_EQ(parameter(table, flat, "ebn1.running_var"), (std::vector<float>{0.1f, 3.0f}));  // F64 in the file
    const auto file = io::read_state_dict(toy, "seg_model.");
    EXPECT_EQ(file.metadata.at("source_key"), "model");
    EXPECT_EQ(file.tensors.size(), table.entries().size() + 2);  // + 2 num_batches_tracked
    EXPECT_EQ(file.find("ebn1.weight")->dtype, "F64");
    EXPECT_EQ(file.find("dbn1.num_batches_tracked")->data, (std::vector<float>{3.0f}));
    for (const auto& e : table.entries()) EXPECT_EQ(parameter(table, flat, e.name), file.find(e.name)->data) << e.name;
    // The integer buffers are said once, in one line.
    const auto said = notes.str();
    EXPECT_EQ(count(said, "ignored"), 1u) << said;
    EXPECT_EQ(count(said, "\n"), 1u) << said;
    EXPECT_NE(said.find("ignored 2 integer tensors such as 'ebn1.num_batches_tracked' (I64), "
                        "'dbn1.num_batches_tracked' (I64)"),
              std::string::npos)
        << said;
    EXPECT_NE(said.find(toy), std::string::npos) << said;
}

TYPED_TEST(StateDict, DdpModulePrefixIsStripped) {
    using B = TypeParam;
    const auto table = segmentor_table();
    tensor<float, B> plain(shape{table.size()}, 0.0f), ddp(shape{table.size()}, 0.0f);
    io::load_parameters(toy, table, plain, io::state_dict_options{"seg_model.", true, nullptr});
    io::load_parameters(toy_ddp, table, ddp, io::state_dict_options{"seg_model.", true, nullptr});
    EXPECT_EQ(ddp.to_host(), plain.to_host());
    const auto file = io::read_state_dict(toy_ddp);
    EXPECT_EQ(io::read_safetensors(toy_ddp).tensors.front().name, "module.cls_token");
    EXPECT_EQ(file.tensors.front().name, "cls_token");
    EXPECT_NE(file.find("seg_model.final.bias"), nullptr);
    EXPECT_EQ(io::strip_ddp_prefix("module.module.x"), "module.x");  // one DDP wrapper, one prefix
    EXPECT_EQ(io::strip_ddp_prefix("modules.x"), "modules.x");
}

TYPED_TEST(StateDict, MismatchesAreAllListedAndNothingIsHalfLoaded) {
    using B = TypeParam;
    // A 3-channel first convolution (the file has 1 channel), a tensor the file lacks, and no
    // final.bias (which the file has).
    const auto seg = segmentor_table();
    nn::parameter_table table;
    for (const auto& e : seg.entries()) {
        if (e.name == "final.bias") continue;
        table.add(e.name, e.name == "encoder1.weight" ? shape{2, 3, 3, 3} : e.shape);
    }
    table.add("head.weight", shape{5});
    const std::vector<float> sentinel(static_cast<std::size_t>(table.size()), 7.0f);
    auto flat = tensor<float, B>::from_host(sentinel, shape{table.size()});
    try {
        io::load_parameters(toy, table, flat, io::state_dict_options{"seg_model.", true, nullptr});
        ADD_FAILURE() << "a file that does not fit was loaded";
    } catch (const checkpoint_mismatch_error& e) {
        const auto& m = e.mismatches();
        ASSERT_EQ(m.size(), 3u) << e.what();
        const auto* conv = e.find("encoder1.weight");
        ASSERT_NE(conv, nullptr);
        EXPECT_EQ(conv->what, mismatch::kind::shape);
        EXPECT_EQ(conv->file_shape, (std::vector<std::int64_t>{2, 1, 3, 3}));
        EXPECT_EQ(conv->model_shape, (std::vector<std::int64_t>{2, 3, 3, 3}));
        const auto* missing = e.find("head.weight");
        ASSERT_NE(missing, nullptr);
        EXPECT_EQ(missing->what, mismatch::kind::missing);
        EXPECT_TRUE(missing->file_shape.empty());
        EXPECT_EQ(missing->model_shape, (std::vector<std::int64_t>{5}));
        const auto* extra = e.find("final.bias");
        ASSERT_NE(extra, nullptr);
        EXPECT_EQ(extra->what, mismatch::kind::unexpected);
        EXPECT_EQ(extra->file_shape, (std::vector<std::int64_t>{1}));
        EXPECT_TRUE(extra->model_shape.empty());
        const std::string msg = e.what();
        for (const char* s : {"3 mismatches", "seg_model.", "'encoder1.weight' is (2, 1, 3, 3) in the file, the model expects (2, 3, 3, 3)",
                              "missing:    'head.weight' (5)", "unexpected: 'final.bias' (1)"})
            EXPECT_NE(msg.find(s), std::string::npos) << "no \"" << s << "\" in:\n" << msg;
        EXPECT_NE(msg.find(toy), std::string::npos) << msg;
        EXPECT_EQ(msg.find("num_batches_tracked"), std::string::npos) << "integer buffers are no mismatch";
    }
    EXPECT_EQ(flat.to_host(), sentinel) << "a failed load leaves the buffer as it was";
    // The error is a config_error for callers that do not care about the details.
    EXPECT_THROW(io::load_parameters(toy, table, flat, io::state_dict_options{"seg_model.", true, nullptr}), config_error);
}

TYPED_TEST(StateDict, NonStrictIgnoresExtraTensorsAndSaysSo) {
    using B = TypeParam;
    const auto seg = segmentor_table();
    nn::parameter_table table;
    for (const auto& e : seg.entries())
        if (e.name != "final.bias") table.add(e.name, e.shape);
    tensor<float, B> flat(shape{table.size()}, 0.0f);
    std::ostringstream notes;
    io::load_parameters(toy, table, flat, io::state_dict_options{"seg_model.", false, &notes});
    EXPECT_EQ(parameter(table, flat, "encoder1.bias"), (std::vector<float>{0.25f, -0.5f}));
    EXPECT_NE(notes.str().find("ignored 1 tensor the model does not have, such as 'final.bias' (F32)"), std::string::npos)
        << notes.str();
    // Missing tensors stay errors without strict.
    table.add("head.weight", shape{5});
    tensor<float, B> more(shape{table.size()}, 0.0f);
    EXPECT_THROW(io::load_parameters(toy, table, more, false), checkpoint_mismatch_error);
}

TYPED_TEST(StateDict, WithoutPrefixTheSegmentorIsUnexpected) {
    using B = TypeParam;
    nn::parameter_table mae;
    mae.add("cls_token", shape{1, 1, 4});
    mae.add("pos_embed", shape{1, 5, 4}, false, false);
    mae.add("patch_embed.proj.weight", shape{4, 3, 2, 2});
    mae.add("patch_embed.proj.bias", shape{4});
    mae.add("blocks.0.norm1.weight", shape{4});
    mae.add("blocks.0.norm1.bias", shape{4});
    mae.add("blocks.0.attn.qkv.weight", shape{12, 4});
    mae.add("blocks.0.attn.qkv.bias", shape{12});
    mae.add("decoder_pred.weight", shape{12, 4});
    mae.add("decoder_pred.bias", shape{12});
    tensor<float, B> flat(shape{mae.size()}, 0.0f);
    try {
        io::load_parameters(toy_ddp, mae, flat);
        ADD_FAILURE() << "the segmentor's tensors were not reported";
    } catch (const checkpoint_mismatch_error& e) {
        EXPECT_EQ(e.mismatches().size(), 14u) << e.what();  // 16 under seg_model., 2 of them integer
        for (const auto& m : e.mismatches()) {
            EXPECT_EQ(m.what, mismatch::kind::unexpected) << m.name;
            EXPECT_EQ(m.name.rfind("seg_model.", 0), 0u) << m.name;
        }
    }
    io::load_parameters(toy_ddp, mae, flat, false);
    const auto file = io::read_state_dict(toy);
    EXPECT_EQ(parameter(mae, flat, "cls_token"), file.find("cls_token")->data);
}

TYPED_TEST(StateDict, ConvertedBareStateDictWithIntegerBuffersLoads) {
    // What a converted segmodel/unext.pth looks like: a bare state dict with I64 buffers; also what
    // vasomim writes for PyTorch's strict load_state_dict.
    using B = TypeParam;
    const auto table = segmentor_table();
    std::vector<io::named_tensor> ts;
    float v = 0.0f;
    for (const auto& e : table.entries()) {
        io::named_tensor t{e.name, e.shape, std::vector<float>(static_cast<std::size_t>(e.numel()))};
        for (auto& x : t.data) x = (v += 0.5f);
        ts.push_back(std::move(t));
        if (e.name.ends_with("running_var"))
            ts.push_back({e.name.substr(0, 4) + ".num_batches_tracked", shape{}, {12.0f}, "I64"});
    }
    const auto path = temp_path(std::string("bare_") + backend_traits<B>::name + ".safetensors");
    io::write_safetensors(path, ts);
    tensor<float, B> flat(shape{table.size()}, 0.0f);
    io::load_parameters(path, table, flat);  // strict, no prefix, the I64 buffers ignored
    for (const auto& t : ts) {
        if (t.dtype == "F32") {
            EXPECT_EQ(parameter(table, flat, t.name), t.data) << t.name;
        }
    }
    std::filesystem::remove(path);
}

#if !VASOMIM_HAS_CUDA
TEST(StateDictSelect, NamesThatCollideAfterStrippingAreRefused) {
    const auto path = temp_path("collide.safetensors");
    io::write_safetensors(path, {{"module.seg_model.a", shape{1}, {1.0f}}, {"seg_model.a", shape{1}, {2.0f}}});
    try {
        io::read_state_dict(path, "seg_model.");
        ADD_FAILURE() << "two tensors named 'a' were accepted";
    } catch (const format_error& e) {
        EXPECT_NE(std::string(e.what()).find("'module.seg_model.a'"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
    std::filesystem::remove(path);
}
#endif

}  // namespace
