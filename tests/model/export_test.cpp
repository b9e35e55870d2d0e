// Encoder export (model/export.hpp, GitHub issue 16). tools/make_export_fixture.py restates timm's
// VisionTransformer (num_classes=0, global_pool='token'), loads the encoder weights of
// tests/data/vasomim_step/params.safetensors into it with load_state_dict(strict=True) and writes
// its state_dict keys and forward_features on the step's images (float64). Here a pre-training
// checkpoint with those weights is exported: the file must hold exactly timm's keys and shapes,
// and the library's encoder on all patches, loaded back from the file, must give timm's features.
// The released-state-dict export and the errors for files that are not checkpoints are checked too.
#include <gtest/gtest.h>

#include "parity_check.hpp"
#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "nn/npy.hpp"
#include "model/vasomim_step_fixture.hpp"
#include "test_backends.hpp"
#include "vasomim/io/safetensors.hpp"
#include "vasomim/model/export.hpp"
#include "vasomim/model/masked_image_model.hpp"
#include "vasomim/train/checkpoint.hpp"

namespace {

using namespace vasomim;
namespace fs = std::filesystem;

const std::string step_dir = VASOMIM_TEST_DATA_DIR "/vasomim_step/";
const std::string export_dir = VASOMIM_TEST_DATA_DIR "/export/";

model::mae_config fixture_config() { return test::vasomim_step_config(); }
// As vasomim-pretrain writes it (the export reads the heads from "enc=WxD/H").
const std::string signature = "method=mae img=64 patch=8 chans=3 enc=64x2/4 dec=32x1/4 mlp=4 norm_pix=1";

/// A fresh folder under the system's temporary directory, removed at the end of the test.
struct temp_dir {
    fs::path path;
    explicit temp_dir(const std::string& tag)
        : path(fs::temp_directory_path() / ("vasomim-export-test-" + tag + "-" + std::to_string(::getpid()))) {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

/// A checkpoint of `Model` holding the fixture's MAE weights.
template <class Model, class... Args>
fs::path fixture_checkpoint(const fs::path& dir, Args&&... args) {
    Model m(fixture_config(), std::forward<Args>(args)...);
    io::load_parameters(step_dir + "params.safetensors", m.network().table(), m.network().params());
    return train::save_checkpoint(dir, m, {7, 3, signature});
}

std::vector<std::pair<std::string, std::string>> timm_keys() {
    std::ifstream in(export_dir + "timm_keys.txt");
    std::vector<std::pair<std::string, std::string>> out;
    std::string name, dims;
    while (in >> name >> dims) out.emplace_back(name, dims);
    return out;
}

std::string dims_of(const shape& s) {
    std::string d;
    for (int i = 0; i < s.rank(); ++i) {
        if (i) d += ',';  // appended apart: GCC 12's -Wrestrict misfires on "," + std::string at -O3
        d += std::to_string(s[i]);
    }
    return d;
}

template <class B>
class Export : public ::testing::Test {};
TYPED_TEST_SUITE(Export, vasomim::test::all_backends, vasomim::test::backend_name);

TYPED_TEST(Export, EncoderIsTimmVisionTransformerWithItsFeatures) {
    using B = TypeParam;
    const temp_dir tmp(backend_traits<B>::name);
    fixture_checkpoint<model::mae_pretraining<B>>(tmp.path / "run", masking::random{});
    const auto ck = model::read_pretrain_checkpoint(tmp.path / "run");  // a folder: its latest checkpoint
    EXPECT_EQ(ck.path.filename().string(), "checkpoint-0000000007.safetensors");
    const auto ex = model::timm_encoder(ck);
    const auto out = (tmp.path / "encoder.safetensors").string();
    io::write_safetensors(out, ex.tensors, ex.metadata);

    const auto file = io::read_safetensors(out);
    const auto keys = timm_keys();
    ASSERT_EQ(keys.size(), 4u + 12u * 2u + 2u);
    ASSERT_EQ(file.tensors.size(), keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
        EXPECT_EQ(file.tensors[i].name, keys[i].first) << "entry " << i;
        EXPECT_EQ(dims_of(file.tensors[i].shape), keys[i].second) << keys[i].first;
    }
    EXPECT_EQ(file.metadata.at("format"), model::timm_encoder_format);
    EXPECT_EQ(file.metadata.at("img_size"), "64");
    EXPECT_EQ(file.metadata.at("patch_size"), "8");
    EXPECT_EQ(file.metadata.at("embed_dim"), "64");
    EXPECT_EQ(file.metadata.at("depth"), "2");
    EXPECT_EQ(file.metadata.at("num_heads"), "4");
    EXPECT_EQ(file.metadata.at("source_step"), "7");
    EXPECT_EQ(file.metadata.at("source"), ck.path.string());

    // The library's encoder on all patches, from the exported file, against timm's forward_features.
    const auto cfg = model::encoder_config_from_metadata(file.metadata, out);
    auto net = model::mae_with_encoder<B>(file.tensors, cfg);
    const auto imgs = test::load_npy(step_dir + "imgs.npy");
    const auto x = tensor<float, B>::from_host(imgs.as<float>(), shape{2, 3, 64, 64});
    const auto feats = net.encode_all(x.data(), 2);
    EXPECT_EQ(feats.shape(), (shape{2, 65, 64}));
    test::expect_close("features", feats.to_host(), test::load_npy(export_dir + "features.npy").as<float>());
}

TYPED_TEST(Export, ReleasedStateDictHasSegModelNamesAndBatchCounts) {
    using B = TypeParam;
    const temp_dir tmp(std::string(backend_traits<B>::name) + "-sd");
    const auto path = fixture_checkpoint<model::vasomim_pretraining<B>>(tmp.path, masking::anatomy_guided<>{});
    const auto ck = model::read_pretrain_checkpoint(path);
    ASSERT_TRUE(ck.has_segmentor());
    const auto ex = model::released_state_dict(ck);
    const auto out = (tmp.path / "released.safetensors").string();
    io::write_safetensors(out, ex.tensors, ex.metadata);
    const auto file = io::read_safetensors(out);

    std::size_t seg = 0, counts = 0;
    for (std::size_t i = 0; i < file.tensors.size(); ++i) {
        const auto& t = file.tensors[i];
        EXPECT_FALSE(t.name.starts_with(train::segmentor_prefix)) << t.name;
        if (t.name.starts_with("seg_model.")) ++seg;
        if (t.name.ends_with(".num_batches_tracked")) {
            ++counts;
            EXPECT_EQ(t.dtype, "I64") << t.name;
            EXPECT_EQ(t.shape.rank(), 0) << t.name;
            ASSERT_GT(i, 0u);
            EXPECT_EQ(file.tensors[i - 1].name,
                      t.name.substr(0, t.name.size() - std::string(".num_batches_tracked").size()) + ".running_var");
        } else {
            EXPECT_EQ(t.dtype, "F32") << t.name;
        }
    }
    EXPECT_EQ(counts, 7u) << "ebn1-3, dbn1-4";
    for (const char* bn : {"ebn1", "ebn2", "ebn3", "dbn1", "dbn2", "dbn3", "dbn4"})
        EXPECT_NE(file.find(std::string("seg_model.") + bn + ".num_batches_tracked"), nullptr) << bn;
    // every tensor of the checkpoint is there, MAE names unchanged
    EXPECT_EQ(file.tensors.size(), ck.file.tensors.size() + 7);
    std::size_t ck_seg = 0;
    for (const auto& t : ck.file.tensors) ck_seg += t.name.starts_with(train::segmentor_prefix);
    EXPECT_EQ(seg, ck_seg + 7);
    for (const char* name : {"cls_token", "decoder_pred.bias", "mask_token", "blocks.1.mlp.fc2.weight",
                             "seg_model.encoder1.weight", "seg_model.ebn1.running_var"})
        EXPECT_NE(file.find(name), nullptr) << name;
    EXPECT_EQ(file.metadata.at("format"), model::released_state_dict_format);
    // an export is not a pre-training checkpoint
    EXPECT_THROW(model::read_pretrain_checkpoint(out), format_error);
}

TEST(ExportErrors, NotACheckpointListsWhatIsMissing) {
    const temp_dir tmp("errors");
    // the fixture's weights without the checkpoint's metadata: the metadata is what is missing
    try {
        model::read_pretrain_checkpoint(step_dir + "params.safetensors");
        FAIL() << "params.safetensors was taken for a checkpoint";
    } catch (const format_error& e) {
        const std::string w = e.what();
        for (const char* s : {"not a vasomim pre-training checkpoint", "'format'", "'step'", "'seed'", "'signature'"})
            EXPECT_NE(w.find(s), std::string::npos) << s << " in: " << w;
        EXPECT_EQ(w.find("'cls_token'"), std::string::npos) << w;
    }
    // a file of other tensors: every encoder tensor is named
    const auto other = (tmp.path / "other.safetensors").string();
    io::write_safetensors(other, {{"encoder1.weight", shape{8, 3, 3, 3}, std::vector<float>(216)}}, {{"format", "pt"}});
    try {
        model::read_pretrain_checkpoint(other);
        FAIL();
    } catch (const format_error& e) {
        const std::string w = e.what();
        for (const char* s : {"it says 'pt'", "'cls_token'", "'pos_embed'", "'patch_embed.proj.weight'",
                              "'blocks.0.attn.qkv.weight'", "'blocks.0.mlp.fc2.bias'", "'norm.bias'"})
            EXPECT_NE(w.find(s), std::string::npos) << s << " in: " << w;
    }
    EXPECT_THROW(model::read_pretrain_checkpoint(tmp.path / "nothing-here"), io_error);
    EXPECT_THROW(model::read_pretrain_checkpoint(tmp.path), io_error);  // a folder without checkpoints
}

TEST(ExportErrors, MissingEncoderTensorsAreAllListed) {
    using B = backend::cpu;
    const temp_dir tmp("missing");
    const auto path = fixture_checkpoint<model::mae_pretraining<B>>(tmp.path, masking::random{});
    auto ck = model::read_pretrain_checkpoint(path);
    auto& ts = ck.file.tensors;
    std::erase_if(ts, [](const io::named_tensor& t) { return t.name == "norm.weight" || t.name == "blocks.1.attn.qkv.bias"; });
    for (auto& t : ts)
        if (t.name == "blocks.0.mlp.fc1.bias") t.shape = shape{128}, t.data.resize(128);
    try {
        model::timm_encoder(ck);
        FAIL();
    } catch (const checkpoint_mismatch_error& e) {
        ASSERT_EQ(e.mismatches().size(), 3u) << e.what();
        ASSERT_NE(e.find("norm.weight"), nullptr);
        EXPECT_EQ(e.find("norm.weight")->what, checkpoint_mismatch_error::mismatch::kind::missing);
        ASSERT_NE(e.find("blocks.1.attn.qkv.bias"), nullptr);
        ASSERT_NE(e.find("blocks.0.mlp.fc1.bias"), nullptr);
        EXPECT_EQ(e.find("blocks.0.mlp.fc1.bias")->what, checkpoint_mismatch_error::mismatch::kind::shape);
    }
    // no heads in the signature and none given
    ck = model::read_pretrain_checkpoint(path);
    ck.file.metadata["signature"] = "custom";
    EXPECT_THROW(model::timm_encoder(ck), config_error);
    EXPECT_EQ(model::timm_encoder(ck, 4).metadata.at("num_heads"), "4");
    EXPECT_THROW(model::timm_encoder(ck, 3), config_error);  // 64 not divisible by 3
}

}  // namespace
#endif  // !VASOMIM_HAS_CUDA
