// Fine-tuning (issue 17, train/finetune.hpp) on a tiny ViT + linear decoder over synthetic
// angiograms: deterministic for a seed, resume continues bit for bit, best.safetensors is the epoch
// of the highest validation Dice, and bad input (non-binary masks, mismatched sizes, an empty
// validation set, an image too small for one tile, a previous run in the output folder, an
// initialisation of another configuration) is refused by name. Also the joint augmentation, the
// selection specs and the sliding window's tiling.
#include <gtest/gtest.h>

#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "vasomim/backend/cpu.hpp"
#include "vasomim/data/synthetic_angiogram.hpp"
#include "vasomim/train/finetune.hpp"
#include "vasomim/train/finetune_presets.hpp"

namespace {

using namespace vasomim;
namespace fs = std::filesystem;
using B = backend::cpu;
using tuner = train::finetuner<B, model::decoder::linear>;

model::segmentation_config small_config() {
    model::segmentation_config c;
    c.encoder = {32, 8, 3, 32, 2, 4, 4};  // img, patch, chans, width, depth, heads, mlp
    return c;
}

std::vector<data::segmentation_sample> synthetic(std::size_t n, std::uint64_t seed, std::int64_t side = 48) {
    data::synthetic_angiogram_options o;
    o.height = o.width = side;
    std::vector<data::segmentation_sample> out;
    for (std::size_t i = 0; i < n; ++i) {
        auto a = data::make_synthetic_angiogram(o, seed, i);
        std::string name = "s";  // appended, not "s" + ...: GCC 12 -O3 warns falsely (-Wrestrict)
        name += std::to_string(i);
        out.push_back({name, a.image, a.mask});
    }
    return out;
}

struct finetune_fixture : ::testing::Test {
    void SetUp() override {
        dir = fs::temp_directory_path() / ("vasomim_finetune_" + std::to_string(::getpid()) + "_" +
                                           ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir);
        train_set = synthetic(5, 1);
        val_set = synthetic(2, 2);
    }
    void TearDown() override { fs::remove_all(dir); }

    train::finetune_options options(const fs::path& out) const {
        train::finetune_options o;
        o.epochs = 3;
        o.warmup_epochs = 1;
        o.lr = 2e-3;
        o.batch_size = 2;  // 3 steps per epoch, the last of one image
        o.drop_path = 0.1;
        o.seed = 7;
        o.augment.size = 32;
        o.output = out;
        o.signature = train::finetune_signature("linear", small_config(), 1.0);
        o.show_progress = false;
        return o;
    }

    fs::path dir;
    std::vector<data::segmentation_sample> train_set, val_set;
};

TEST_F(finetune_fixture, DeterministicForASeed) {
    std::ostringstream log;
    tuner a(small_config(), options(dir / "a")), b(small_config(), options(dir / "b"));
    const auto sa = a.run(train_set, val_set, log);
    const auto sb = b.run(train_set, val_set, log);
    ASSERT_EQ(sa.steps, 9u);
    ASSERT_EQ(sa.epochs.size(), 3u);
    EXPECT_EQ(a.network().params().to_host(), b.network().params().to_host());
    for (std::size_t e = 0; e < 3; ++e) EXPECT_EQ(sa.epochs[e].validation.mean.dice, sb.epochs[e].validation.mean.dice);
    // another seed trains another model
    auto o = options(dir / "c");
    o.seed = 8;
    tuner c(small_config(), o);
    c.run(train_set, val_set, log);
    EXPECT_NE(a.network().params().to_host(), c.network().params().to_host());
    EXPECT_TRUE(fs::exists(dir / "a" / "log.csv"));
    EXPECT_TRUE(fs::exists(dir / "a" / "steps.csv"));
    EXPECT_TRUE(fs::exists(dir / "a" / "panel-e0001.png"));
}

TEST_F(finetune_fixture, ResumeContinuesExactly) {
    std::ostringstream log;
    tuner straight(small_config(), options(dir / "straight"));
    const auto s = straight.run(train_set, val_set, log);

    // mid-epoch stop (step 4 of 9), then resume from the folder in a fresh model
    auto o = options(dir / "resumed");
    o.max_steps = 4;
    {
        tuner first(small_config(), o);
        const auto f = first.run(train_set, val_set, log);
        ASSERT_EQ(f.steps, 4u);
    }
    o.max_steps = 0;
    o.resume_from = dir / "resumed";
    tuner second(small_config(), o);
    const auto r = second.run(train_set, val_set, log);
    EXPECT_EQ(r.first_step, 4u);
    EXPECT_EQ(r.steps, 5u);
    EXPECT_EQ(straight.network().params().to_host(), second.network().params().to_host());
    EXPECT_EQ(straight.optimiser().exp_avg_sq().to_host(), second.optimiser().exp_avg_sq().to_host());
    EXPECT_EQ(s.best_dice, r.best_dice);
    EXPECT_EQ(s.best_epoch, r.best_epoch);
    // the CSV logs are those of the straight run, row for row, but for the seconds and images/s
    auto rows = [](const fs::path& p, std::size_t drop_last_cols) {
        std::ifstream in(p);
        std::vector<std::string> out;
        std::string line;
        while (std::getline(in, line)) {
            for (std::size_t k = 0; k < drop_last_cols; ++k) line = line.substr(0, line.rfind(','));
            out.push_back(line);
        }
        return out;
    };
    EXPECT_EQ(rows(dir / "straight" / "log.csv", 1), rows(dir / "resumed" / "log.csv", 1));
    EXPECT_EQ(rows(dir / "straight" / "steps.csv", 1), rows(dir / "resumed" / "steps.csv", 1));
    // the log says who wrote the checkpoint; a resume with another batch size says that the
    // schedule changes (steps count global batches)
    EXPECT_NE(log.str().find("(written by 1 rank, global batch 2; now 1 rank x 2)"), std::string::npos) << log.str();
    EXPECT_EQ(log.str().find("note: the global batch"), std::string::npos) << log.str();
    std::ostringstream rebatched_log;
    o.batch_size = 3;
    tuner rebatched(small_config(), o);
    rebatched.run(train_set, val_set, rebatched_log);
    EXPECT_NE(rebatched_log.str().find("note: the global batch was 2 and is now 3"), std::string::npos)
        << rebatched_log.str();
    o.batch_size = 2;
    // a resume with another seed is refused
    o.seed = 9;
    tuner other(small_config(), o);
    EXPECT_THROW(other.run(train_set, val_set, log), config_error);
}

TEST_F(finetune_fixture, BestCheckpointIsTheEpochOfHighestValidationDice) {
    std::ostringstream log;
    tuner t(small_config(), options(dir / "best"));
    const auto s = t.run(train_set, val_set, log);
    ASSERT_EQ(s.epochs.size(), 3u);
    double best = -1;
    std::int64_t best_epoch = 0;
    for (const auto& r : s.epochs)
        if (r.validation.mean.dice > best) {
            best = r.validation.mean.dice;
            best_epoch = r.epoch;
        }
    EXPECT_EQ(s.best_epoch, best_epoch);
    EXPECT_DOUBLE_EQ(s.best_dice, best);
    const auto f = io::read_safetensors((dir / "best" / "best.safetensors").string());
    EXPECT_EQ(f.metadata.at("epoch"), std::to_string(best_epoch));
    // its parameters score the best Dice again
    model::segmentation_model<B> m(small_config());
    io::load_state_dict(f, "best", m.table(), m.params());
    auto o = options(dir / "unused");
    tuner check(small_config(), o);
    check.network().params() = m.params().clone();
    const auto again = metrics::summarize(check.validate(val_set));
    EXPECT_NEAR(again.mean.dice, best, 1e-12);
    // the signature rebuilds the model
    const auto spec = train::read_finetune_spec(dir / "best" / "best.safetensors");
    EXPECT_EQ(spec.decoder, "linear");
    EXPECT_EQ(spec.config.encoder.embed_dim, 32);
    EXPECT_EQ(spec.config.encoder.depth, 2);
    EXPECT_EQ(spec.scale, 1.0);
    // it and the rolling checkpoints say fine-tuning; its fine-tuned encoder exports for timm, the
    // pre-training model's released state dict it does not hold
    EXPECT_EQ(f.metadata.at("format"), train::finetune_checkpoint_format);
    const auto latest = train::latest_checkpoint(dir / "best");
    ASSERT_TRUE(latest.has_value());
    EXPECT_EQ(io::read_safetensors(latest->string()).metadata.at("format"), train::finetune_checkpoint_format);
    const auto ck = model::read_pretrain_checkpoint(dir / "best" / "best.safetensors");
    EXPECT_TRUE(ck.is_finetune());
    const auto ex = model::timm_encoder(ck);
    EXPECT_EQ(ex.metadata.at("format"), model::timm_encoder_format);
    for (const auto& t : ex.tensors) EXPECT_FALSE(t.name.starts_with("decoder")) << t.name;
    EXPECT_THROW(model::released_state_dict(ck), format_error);
}

TEST_F(finetune_fixture, UnetrDecoderTrainsAndResumesExactly) {
    using unetr_tuner = train::finetuner<B, model::decoder::unetr>;
    auto c = small_config();
    c.unetr.feature_size = 4;
    auto o = options(dir / "u1");
    o.epochs = 2;
    o.signature = train::finetune_signature("unetr", c, 1.0);
    std::ostringstream log;
    unetr_tuner straight(c, o);
    const auto s = straight.run(train_set, val_set, log);
    ASSERT_EQ(s.epochs.size(), 2u);
    o.output = dir / "u2";
    o.max_steps = 2;
    unetr_tuner(c, o).run(train_set, val_set, log);
    o.max_steps = 0;
    o.resume_from = dir / "u2";
    unetr_tuner resumed(c, o);
    resumed.run(train_set, val_set, log);
    EXPECT_EQ(straight.network().params().to_host(), resumed.network().params().to_host());
}

TEST_F(finetune_fixture, BadInputIsRefusedByName) {
    std::ostringstream log;
    // empty validation set
    {
        tuner t(small_config(), options(dir / "x"));
        EXPECT_THROW(t.run(train_set, {}, log), config_error);
    }
    // an image too small for one tile
    {
        tuner t(small_config(), options(dir / "y"));
        auto small = synthetic(1, 3, 24);
        try {
            t.run(train_set, small, log);
            ADD_FAILURE() << "no error";
        } catch (const shape_error& e) {
            EXPECT_NE(std::string(e.what()).find("s0"), std::string::npos) << e.what();
        }
    }
    // a previous run is not overwritten without overwrite
    {
        auto o = options(dir / "z");
        o.max_steps = 1;
        tuner t(small_config(), o);
        t.run(train_set, val_set, log);
        tuner u(small_config(), o);
        EXPECT_THROW(u.run(train_set, val_set, log), config_error);
        o.overwrite = true;
        tuner v(small_config(), o);
        EXPECT_NO_THROW(v.run(train_set, val_set, log));
    }
    // an initialisation of another width says which dimension differs
    {
        auto c = small_config();
        c.encoder.embed_dim = 64;
        model::segmentation_model<B> wide(c);
        wide.init(0);
        fs::create_directories(dir);
        io::save_parameters((dir / "wide.safetensors").string(), wide.table(), wide.params());
        tuner t(small_config(), options(dir / "w"));
        try {
            t.network().load_encoder((dir / "wide.safetensors").string());
            ADD_FAILURE() << "no error";
        } catch (const checkpoint_mismatch_error& e) {
            EXPECT_NE(std::string(e.what()).find("width"), std::string::npos) << e.what();
        }
    }
    // augmentation size and model input disagree
    {
        auto o = options(dir / "v");
        o.augment.size = 48;
        EXPECT_THROW(tuner(small_config(), o), config_error);
    }
}

TEST_F(finetune_fixture, MasksMustBeBinaryAndOfTheImageSize) {
    fs::create_directories(dir / "images");
    fs::create_directories(dir / "masks");
    xt::xtensor<std::uint8_t, 2> img = xt::zeros<std::uint8_t>({std::size_t(8), std::size_t(8)});
    io::write_png(dir / "images" / "a_01.png", img);
    io::write_png(dir / "images" / "a_02.png", img);
    io::write_png(dir / "images" / "b_01.png", img);
    auto m = img;
    m(1, 1) = 255;
    io::write_png(dir / "masks" / "a_01_gt.png", m);
    m(2, 2) = 7;
    io::write_png(dir / "masks" / "a_02_gt.png", m);
    xt::xtensor<std::uint8_t, 2> big = xt::zeros<std::uint8_t>({std::size_t(9), std::size_t(8)});
    io::write_png(dir / "masks" / "b_01_gt.png", big);
    const auto files = data::list_labelled_files(dir);
    ASSERT_EQ(files.size(), 3u);
    EXPECT_EQ(files[0].mask.filename(), "a_01_gt.png");
    std::vector<std::string> stems;
    for (const auto& f : files) stems.push_back(f.stem);
    EXPECT_EQ(data::select_stems(stems, "a_"), (std::vector<std::string>{"a_01", "a_02"}));
    EXPECT_EQ(data::select_stems(stems, "a_02..b_01"), (std::vector<std::string>{"a_02", "b_01"}));
    EXPECT_EQ(data::select_stems(stems, "b_01,a_01"), (std::vector<std::string>{"a_01", "b_01"}));
    EXPECT_THROW(data::select_stems(stems, "c_"), config_error);
    const auto ok = data::load_segmentation_samples(files, {"a_01"});
    EXPECT_EQ(ok[0].mask(1, 1), 255);
    try {
        data::load_segmentation_samples(files, {"a_02"});
        ADD_FAILURE() << "no error";
    } catch (const value_error& e) {
        EXPECT_NE(std::string(e.what()).find("a_02_gt.png"), std::string::npos) << e.what();
    }
    try {
        data::load_segmentation_samples(files, {"b_01"});
        ADD_FAILURE() << "no error";
    } catch (const shape_error& e) {
        EXPECT_NE(std::string(e.what()).find("b_01_gt.png"), std::string::npos) << e.what();
    }
    fs::remove(dir / "masks" / "b_01_gt.png");
    EXPECT_THROW(data::list_labelled_files(dir), config_error);
}

TEST(joint_augment, SameStreamSameSampleAndGeometryShared) {
    auto s = synthetic(1, 4, 64)[0];
    data::joint_augment_options o;
    o.size = 32;
    o.brightness = o.contrast = o.gamma = 0;  // geometry only: the mask must follow the image
    data::random_stream r1(1, 2), r2(1, 2);
    const auto a = data::joint_augment(s.image, s.mask, o, r1), b = data::joint_augment(s.image, s.mask, o, r2);
    EXPECT_EQ(a.image, b.image);
    EXPECT_EQ(a.mask, b.mask);
    // with a mask equal to the image, the geometry applied to both is the same
    data::random_stream r3(5, 6);
    xt::xtensor<std::uint8_t, 2> ramp = xt::xtensor<std::uint8_t, 2>::from_shape({64, 64});
    for (std::size_t y = 0; y < 64; ++y)
        for (std::size_t x = 0; x < 64; ++x) ramp(y, x) = (y < 32) != (x < 20) ? 255 : 0;
    o.scale = 0.5;
    const auto c = data::joint_augment(ramp, ramp, o, r3);
    std::size_t agree = 0;
    for (std::size_t i = 0; i < c.mask.size(); ++i) {
        const double v = c.image.data()[i] * data::imagenet_std[0] + data::imagenet_mean[0];
        agree += (v > 0.5) == (c.mask.data()[i] > 0.5f);
    }
    EXPECT_GT(double(agree) / double(c.mask.size()), 0.97);
    EXPECT_EQ(data::rotate90(data::rotate90(ramp, 1), 3), ramp);
}

TEST(finetune_presets, PresetsAndDecoderNames) {
    const auto tiny = train::finetune_preset_by_name("tiny");
    EXPECT_EQ(tiny.model.encoder.embed_dim, train::preset_by_name("tiny").model.embed_dim);  // takes tiny checkpoints
    EXPECT_EQ(tiny.model.encoder.img_size % tiny.model.encoder.patch_size, 0);
    EXPECT_EQ(train::finetune_preset_by_name("base").model.encoder.depth, 12);
    EXPECT_THROW(train::finetune_preset_by_name("huge"), config_error);
    const auto name = train::dispatch_decoder("linear", []<class D>() {
        return std::string(std::is_same_v<D, model::decoder::linear> ? "linear" : "other");
    });
    EXPECT_EQ(name, "linear");
    EXPECT_EQ(train::dispatch_decoder("unetr", []<class D>() { return std::is_same_v<D, model::decoder::unetr>; }), true);
    EXPECT_THROW(train::dispatch_decoder("nope", []<class D>() { return 0; }), config_error);
    const auto sig = train::finetune_signature("linear", tiny.model, 0.5) + " lrd=1";
    const auto spec = train::parse_finetune_signature(sig, "x");
    EXPECT_EQ(spec.scale, 0.5);
    EXPECT_EQ(spec.config.encoder.num_heads, tiny.model.encoder.num_heads);
    auto u = tiny.model;
    u.unetr.feature_size = 8;
    const auto uspec = train::parse_finetune_signature(train::finetune_signature("unetr", u, 0.5), "x");
    EXPECT_EQ(uspec.decoder, "unetr");
    EXPECT_EQ(uspec.config.unetr.feature_size, 8);
    EXPECT_FALSE(uspec.config.unetr.norm_affine);
    EXPECT_THROW(train::parse_finetune_signature("method=mae img=64", "x"), format_error);
    EXPECT_THROW(train::parse_finetune_signature("finetune decoder=linear img=6x4", "x"), format_error);
}

TEST(sliding_window, TilesCoverTheAxisWithTheOverlapAsked) {
    EXPECT_EQ(model::tile_offsets(32, 32, 0.25), (std::vector<index_t>{0}));
    EXPECT_EQ(model::tile_offsets(300, 224, 0.25), (std::vector<index_t>{0, 76}));
    const auto t = model::tile_offsets(1000, 224, 0.5);
    EXPECT_EQ(t.front(), 0);
    EXPECT_EQ(t.back(), 1000 - 224);
    for (std::size_t i = 1; i < t.size(); ++i) EXPECT_LE(t[i] - t[i - 1], 112);
    EXPECT_THROW(model::tile_offsets(100, 224, 0.25), shape_error);
}

}  // namespace
#endif
