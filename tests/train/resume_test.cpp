// Resume is exact: N steps, checkpoint, resume in a fresh model, N more steps gives parameters
// bit-identical to 2N straight steps (cpu backend), for MAE, for anatomy-guided masking and for
// VasoMIM (segmentor guidance and the consistency loss; the segmentor travels in the checkpoint).
#include <gtest/gtest.h>

#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA
#include <filesystem>
#include <sstream>

#include "vasomim/backend/cpu.hpp"
#include "vasomim/data/folder_dataset.hpp"
#include "vasomim/model/masked_image_model.hpp"
#include "vasomim/train/pretrain_loop.hpp"

namespace {

using namespace vasomim;
namespace fs = std::filesystem;
using B = backend::cpu;

model::mae_config small_config() {
    model::mae_config c;
    c.img_size = 32;
    c.patch_size = 8;
    c.embed_dim = 32;
    c.depth = 2;
    c.num_heads = 4;
    c.decoder_embed_dim = 16;
    c.decoder_depth = 1;
    c.decoder_num_heads = 2;
    return c;
}

struct resume_fixture : ::testing::Test {
    void SetUp() override {
        dir = fs::temp_directory_path() / ("vasomim_resume_" + std::to_string(::getpid()) + "_" +
                                           ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir);
    }
    void TearDown() override { fs::remove_all(dir); }

    train::pretrain_options options(const fs::path& out, std::uint64_t max_steps) const {
        train::pretrain_options o;
        o.epochs = 3;
        o.warmup_epochs = 1;
        o.blr = 0.05;
        o.accum_iter = 2;
        o.clip_grad = 1.0;
        o.seed = 77;
        o.output = out;
        o.checkpoint_every = 2;
        o.panel_every = 3;  // panels are part of the run (and read the guidance, if any)
        o.signature = "test";
        o.max_steps = max_steps;
        o.show_progress = false;
        return o;
    }

    template <class Model>
    std::vector<float> train(Model make(), const fs::path& out, std::uint64_t max_steps, bool resume,
                             void (*prepare)(Model&) = nullptr) {
        synthetic_options.height = synthetic_options.width = 40;
        const data::synthetic_dataset dataset(12, 5, synthetic_options);
        data::loader_options lo;
        lo.batch_size = 4;
        lo.workers = 2;
        lo.seed = 77;
        lo.augment.size = 32;
        data::prefetch_loader<data::synthetic_dataset> loader(dataset, lo);
        Model m = make();
        m.init(77);
        if (prepare) prepare(m);
        auto o = options(out, max_steps);
        if (resume) o.resume_from = out;
        std::ostringstream log;
        const auto s = train::pretrain(m, loader, o, log);
        EXPECT_GT(s.steps, 0u);
        return m.network().params().to_host();
    }

    data::synthetic_angiogram_options synthetic_options;
    fs::path dir;
};

model::mae_pretraining<B> make_mae() { return {small_config(), masking::random{0.5, 77}}; }
model::filter_guided_pretraining<B> make_guided() {
    return {small_config(), masking::anatomy_guided<masking::schedule::linear>{0.5, {0.0, 0.5}, 77}};
}

model::vasomim_pretraining<B> make_vasomim() {
    return {small_config(), masking::anatomy_guided<masking::schedule::linear>{0.5, {0.0, 0.5}, 77}};
}
/// Gives the frozen segmentor the weights of seed `s` (standing for trained weights).
template <std::uint64_t s>
void segmentor_from(model::vasomim_pretraining<B>& m) {
    m.segmentor().init(s);
}

TEST_F(resume_fixture, MaeResumeIsBitIdentical) {
    const auto straight = train(make_mae, dir / "straight", 8, false);
    train(make_mae, dir / "split", 4, false);
    const auto resumed = train(make_mae, dir / "split", 8, true);
    ASSERT_EQ(straight.size(), resumed.size());
    EXPECT_TRUE(straight == resumed) << "parameters differ after resuming";
    // And the run did train: the parameters moved away from the initialisation.
    auto fresh = make_mae();
    fresh.init(77);
    EXPECT_FALSE(fresh.network().params().to_host() == straight);
    EXPECT_TRUE(fs::exists(dir / "straight" / "panel-0000000003.png"));
}

TEST_F(resume_fixture, GuidedMaskingResumeAcrossAnEpochIsBitIdentical) {
    // 3 batches per epoch: the split at step 4 lies inside the second epoch.
    const auto straight = train(make_guided, dir / "straight", 8, false);
    train(make_guided, dir / "split", 4, false);
    const auto resumed = train(make_guided, dir / "split", 8, true);
    EXPECT_TRUE(straight == resumed) << "parameters differ after resuming";
}

TEST_F(resume_fixture, VasomimResumeRestoresTheSegmentorAndIsBitIdentical) {
    const auto straight = train(make_vasomim, dir / "straight", 8, false, segmentor_from<5>);
    train(make_vasomim, dir / "split", 4, false, segmentor_from<5>);
    // The resumed model starts with another segmentor: the checkpoint's must replace it.
    const auto resumed = train(make_vasomim, dir / "split", 8, true, segmentor_from<6>);
    EXPECT_TRUE(straight == resumed) << "parameters differ after resuming";
    // The segmentor matters: with the other one throughout, training goes elsewhere.
    const auto other = train(make_vasomim, dir / "other", 8, false, segmentor_from<6>);
    EXPECT_FALSE(straight == other);
}

TEST_F(resume_fixture, CheckpointOfAnotherConfigurationIsRefused) {
    train(make_mae, dir / "a", 2, false);
    synthetic_options.height = synthetic_options.width = 40;
    const data::synthetic_dataset dataset(12, 5, synthetic_options);
    data::loader_options lo;
    lo.batch_size = 4;
    lo.workers = 0;
    lo.augment.size = 32;
    data::prefetch_loader<data::synthetic_dataset> loader(dataset, lo);
    auto m = make_mae();
    auto o = options(dir / "a", 4);
    o.resume_from = dir / "a";
    o.signature = "another";
    std::ostringstream log;
    EXPECT_THROW(train::pretrain(m, loader, o, log), config_error);
    // Keeping the last K: checkpoints every 2 steps, 3 kept.
    train(make_mae, dir / "k", 10, false);
    EXPECT_EQ(train::list_checkpoints(dir / "k").size(), 3u);
}

}  // namespace
#endif
