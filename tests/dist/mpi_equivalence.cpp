// Data parallelism is equivalent to one process with the global batch (issue 18). Run under
// `mpirun -np 2` (tests/CMakeLists.txt registers it so when MPI is found); not part of
// vasomim_tests (its name does not end in _test.cpp). Checks, for MAE and VasoMIM on tiny configs:
//   - the distributed sampler: rank r's batch k is slice r of one process's batch k of size N b;
//   - 2 ranks x batch b give, step for step, the losses of 1 process x batch 2b (1e-5 relative)
//     and after several steps the same parameters (within 1e-4 of the largest one);
//   - a checkpoint of 2 ranks resumed on 1, and one of 1 process resumed on 2 ranks, give the
//     parameters of an uninterrupted run;
//   - the same for the UNeXt-S segmentor's training (SyncBatchNorm, the Dice of the global batch)
//     and for fine-tuning (a tiny ViT + linear decoder; the last global batch leaves rank 1 empty);
//   - ranks with different configurations fail together, with the same error on every rank.
// The single-process references run on every rank (dist::single) and each rank compares.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "vasomim/backend/cpu.hpp"
#include "vasomim/data/folder_dataset.hpp"
#include "vasomim/data/synthetic_angiogram.hpp"
#include "vasomim/dist.hpp"
#include "vasomim/dist/overlapped_gradient_sum.hpp"
#include "vasomim/model/masked_image_model.hpp"
#include "vasomim/train/pretrain_loop.hpp"
#include "vasomim/train/finetune.hpp"
#include "vasomim/train/segmentor_training.hpp"

#if !VASOMIM_HAS_MPI
#error "mpi_equivalence.cpp needs MPI (VASOMIM_HAS_MPI)"
#endif

namespace {

using namespace vasomim;
namespace fs = std::filesystem;
using B = backend::cpu;

dist::mpi* world_comm = nullptr;
fs::path shared_dir;  // same path on every rank (rank 0's pid)

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

model::mae_pretraining<B> make_mae() { return {small_config(), masking::random{0.75, 77}}; }
model::vasomim_pretraining<B> make_vasomim() {
    return {small_config(), masking::anatomy_guided<masking::schedule::linear>{0.75, {0.0, 0.5}, 77}};
}

const data::synthetic_dataset& dataset() {
    static const data::synthetic_dataset d = [] {
        data::synthetic_angiogram_options so;
        so.height = so.width = 40;
        return data::synthetic_dataset(16, 5, so);
    }();
    return d;
}

data::loader_options loader_opts(std::size_t batch, std::size_t rank, std::size_t world) {
    data::loader_options lo;
    lo.batch_size = batch;
    lo.workers = 1;
    lo.seed = 77;
    lo.augment.size = 32;
    lo.rank = rank;
    lo.world = world;
    return lo;
}

struct run_result {
    std::vector<double> losses;  // indexed by step - first step
    std::vector<float> params;
};

/// Trains a fresh model (init 77; segmentor weights of seed 5 where there is one) to `max_steps`,
/// on `comm` with batch `batch` per rank, writing to `out`, optionally resuming from `resume`.
template <class Model, dist::communicator C>
run_result train(Model make(), C& comm, std::size_t batch, const fs::path& out, std::uint64_t max_steps,
                 std::optional<fs::path> resume = std::nullopt, bool overlap = true) {
    data::prefetch_loader<data::synthetic_dataset> loader(
        dataset(), loader_opts(batch, std::size_t(comm.rank()), std::size_t(comm.size())));
    Model m = make();
    m.init(77 + std::uint64_t(comm.rank()));  // ranks differ: the broadcast from rank 0 must fix it
    if constexpr (requires { m.segmentor(); }) m.segmentor().init(5);
    train::pretrain_options o;
    o.epochs = 3;
    o.warmup_epochs = 1;
    o.blr = 0.05;
    o.seed = 77;
    o.output = out;
    o.checkpoint_every = 3;
    o.signature = "dist-test";
    o.max_steps = max_steps;
    o.show_progress = false;
    o.resume_from = resume;
    o.overlap_gradients = overlap;  // buckets summed during the backward pass, or one sum after it
    run_result r;
    o.on_step = [&](std::uint64_t, const model::step_losses& l) { r.losses.push_back(l.loss); };
    std::ostringstream log;
    train::pretrain(m, loader, o, log, comm);
    r.params = m.network().params().to_host();
    return r;
}

void expect_same_losses(const std::vector<double>& a, const std::vector<double>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i)
        EXPECT_NEAR(a[i], b[i], 1e-5 * std::abs(b[i])) << "step " << i;
}

void expect_same_params(const std::vector<float>& a, const std::vector<float>& b) {
    ASSERT_EQ(a.size(), b.size());
    float largest = 0, worst = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        largest = std::max(largest, std::abs(b[i]));
        worst = std::max(worst, std::abs(a[i] - b[i]));
    }
    EXPECT_LE(worst, 1e-4f * largest) << "largest parameter " << largest;
    EXPECT_GT(worst + largest, 0.0f);
}

/// Prints (rank 0) the largest relative loss difference and parameter difference of two runs.
void report_differences(const char* what, const run_result& parallel, const run_result& reference) {
    double loss_diff = 0;
    float param_diff = 0, largest = 0;
    for (std::size_t i = 0; i < std::min(parallel.losses.size(), reference.losses.size()); ++i)
        loss_diff = std::max(loss_diff, std::abs(parallel.losses[i] - reference.losses[i]) / std::abs(reference.losses[i]));
    for (std::size_t i = 0; i < std::min(parallel.params.size(), reference.params.size()); ++i) {
        param_diff = std::max(param_diff, std::abs(parallel.params[i] - reference.params[i]));
        largest = std::max(largest, std::abs(reference.params[i]));
    }
    if (world_comm->rank() == 0)
        std::printf("%s, %zu steps: largest relative loss difference %.3g; largest parameter difference %.3g "
                    "(largest parameter %.3g)\n",
                    what, reference.losses.size(), loss_diff, double(param_diff), double(largest));
}

/// Every rank holds the same parameters, bit for bit.
void expect_ranks_agree(const std::vector<float>& params) {
    const auto all = world_comm->allgather_host(
        dist::text_hash(std::string(reinterpret_cast<const char*>(params.data()), params.size() * sizeof(float))));
    EXPECT_TRUE(std::all_of(all.begin(), all.end(), [&](auto h) { return h == all[0]; }));
}

fs::path local_dir(const std::string& name) {  // this rank's own folder
    return shared_dir / ("rank" + std::to_string(world_comm->rank())) / name;
}

TEST(DistributedSampler, RanksTakeContiguousSlicesOfTheGlobalBatch) {
    const std::size_t world = 2, b = 3;
    data::prefetch_loader<data::synthetic_dataset> one(dataset(), loader_opts(world * b, 0, 1));
    EXPECT_EQ(one.batches_per_epoch(), 2u);
    for (std::size_t r = 0; r < world; ++r) {
        data::prefetch_loader<data::synthetic_dataset> part(dataset(), loader_opts(b, r, world));
        EXPECT_EQ(part.batches_per_epoch(), one.batches_per_epoch());
        for (std::int64_t epoch : {0, 1}) {
            one.start_epoch(epoch);
            part.start_epoch(epoch);
            while (auto whole = one.next()) {
                const auto mine = part.next();
                ASSERT_TRUE(mine);
                EXPECT_EQ(mine->first_sample, r * b);
                const std::vector<std::size_t> slice(whole->indices.begin() + std::ptrdiff_t(r * b),
                                                     whole->indices.begin() + std::ptrdiff_t((r + 1) * b));
                EXPECT_EQ(mine->indices, slice);
                for (std::size_t j = 0; j < b * 3 * 32 * 32; ++j)  // the same augmentation too
                    ASSERT_EQ(mine->images.data()[j], whole->images.data()[r * b * 3 * 32 * 32 + j]);
            }
        }
    }
    EXPECT_THROW(data::prefetch_loader<data::synthetic_dataset>(dataset(), loader_opts(9, 0, 2)), config_error);
}

template <class Model>
void check_equivalence(Model make()) {
    dist::single one;
    const auto reference = train(make, one, 4, local_dir("reference"), 6);
    const auto parallel = train(make, *world_comm, 2, shared_dir / "parallel", 6);
    world_comm->barrier();
    expect_same_losses(parallel.losses, reference.losses);
    expect_same_params(parallel.params, reference.params);
    expect_ranks_agree(parallel.params);

    // The same with the gradient sum after the backward pass instead of overlapped with it.
    const auto after = train(make, *world_comm, 2, shared_dir / "after", 6, std::nullopt, false);
    world_comm->barrier();
    expect_same_losses(after.losses, reference.losses);
    expect_same_params(after.params, reference.params);

    // 2 ranks -> 1: resume the parallel run's checkpoint of step 3 in one process with batch 4.
    const auto ckpt = shared_dir / "parallel" / "checkpoint-0000000003.safetensors";
    ASSERT_TRUE(fs::exists(ckpt));
    fs::create_directories(local_dir("resumed1"));
    const auto on_one = train(make, one, 4, local_dir("resumed1"), 6, ckpt);
    expect_same_losses(on_one.losses, std::vector<double>(reference.losses.begin() + 3, reference.losses.end()));
    expect_same_params(on_one.params, reference.params);

    // 1 -> 2 ranks: resume the reference's (rank 0's) checkpoint of step 3 on both ranks with batch 2.
    const auto ref0 = shared_dir / "rank0" / "reference" / "checkpoint-0000000003.safetensors";
    const auto on_two = train(make, *world_comm, 2, shared_dir / "resumed2", 6, ref0);
    world_comm->barrier();
    expect_same_losses(on_two.losses, std::vector<double>(reference.losses.begin() + 3, reference.losses.end()));
    expect_same_params(on_two.params, reference.params);
    world_comm->barrier();
    if (world_comm->rank() == 0)
        for (const char* d : {"parallel", "after", "resumed2"}) fs::remove_all(shared_dir / d);
    world_comm->barrier();
}

TEST(DataParallel, MaeTwoRanksEqualOneProcessWithTheGlobalBatch) { check_equivalence(make_mae); }

TEST(DataParallel, VasomimTwoRanksEqualOneProcessWithTheGlobalBatch) { check_equivalence(make_vasomim); }

TEST(DataParallel, OverlappedSumInBucketsEqualsOneAllreduce) {
    ASSERT_TRUE(world_comm->threads_serialized());
    const index_t n = 1000;
    auto values = [](int rank) {
        std::vector<float> g(static_cast<std::size_t>(n));
        for (index_t i = 0; i < n; ++i) g[std::size_t(i)] = float(rank + 1) * 0.37f + float(i) * 1e-3f;
        return g;
    };
    std::vector<float> want = values(0);
    for (int r = 1; r < world_comm->size(); ++r) {
        const auto other = values(r);
        for (std::size_t i = 0; i < want.size(); ++i) want[i] += other[i];
    }
    auto g = values(world_comm->rank());
    dist::overlapped_gradient_sum<dist::mpi> sum(*world_comm, 100);
    for (int step = 0; step < 2; ++step) {  // twice: the state is reset between steps
        g = values(world_comm->rank());
        for (index_t from : {950, 800, 790, 500, 120, 0}) sum.final_from(g.data(), from, n);
        sum(g.data(), n);
        if (world_comm->size() == 2) EXPECT_EQ(g, want);  // a + b in any split
        else
            for (std::size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g[i], want[i], 1e-5f * std::abs(want[i]));
    }
    EXPECT_EQ(sum.buckets(), 2u * 4u);  // [800, 1000) [500, 800) [120, 500) [0, 120): 950 and 790 add < 100
}

/// Trains a fresh UNeXt-S (init 1 on rank 0, 2 on rank 1: the broadcast must fix it) for
/// `iterations` on `comm` with batch `batch` per rank; the losses of every step and the parameters
/// (running statistics included) at the end.
template <dist::communicator C>
run_result train_unext(C& comm, std::size_t batch, std::int64_t iterations) {
    nn::unext<B, float> net(nn::unext_config{.in_channels = 3});
    net.init(1 + std::uint64_t(comm.rank()));
    data::prefetch_loader<data::synthetic_dataset> loader(
        dataset(), loader_opts(batch, std::size_t(comm.rank()), std::size_t(comm.size())));
    run_result r;
    train::segmentor_training_options o;
    o.iterations = iterations;  // over two epochs of 4 global batches: the poly factor changes
    o.log_every = 0;
    o.on_step = [&](std::int64_t, const train::segmentor_step& s) { r.losses.push_back(s.loss); };
    std::ostringstream log;
    train::train_segmentor(net, loader, o, log, comm);
    r.params = net.parameters().to_host();
    return r;
}

TEST(DataParallel, SegmentorTwoRanksEqualOneProcessWithTheGlobalBatch) {
    // SyncBatchNorm and the Dice of the global batch (train/segmentor_training.hpp)
    const std::int64_t steps = 7;
    dist::single one;
    const auto reference = train_unext(one, 4, steps);
    const auto parallel = train_unext(*world_comm, 2, steps);
    expect_same_losses(parallel.losses, reference.losses);
    ASSERT_EQ(parallel.params.size(), reference.params.size());
    // the parameters and running statistics after `steps` steps: within 1e-4 of the largest (the
    // biases of the convolutions before a BatchNorm, whose gradient is zero in exact arithmetic,
    // keep their initial values: nn/unext.hpp, bn_fed_bias_grad)
    expect_same_params(parallel.params, reference.params);
    nn::unext<B, float> start(nn::unext_config{.in_channels = 3});
    start.init(1);
    report_differences("segmentor", parallel, reference);
    // every rank ends with the same weights and running statistics, bit for bit
    expect_ranks_agree(parallel.params);
    EXPECT_NE(parallel.params, start.parameters().to_host());
}

/// Fine-tunes a tiny ViT + linear decoder for two epochs on 5 synthetic angiograms (global batch 4:
/// steps of 4 and 1 images) with batch `batch` per rank of `comm`; losses of every step, parameters.
template <dist::communicator C>
run_result finetune(C& comm, std::size_t batch, const fs::path& out) {
    model::segmentation_config c;
    c.encoder = {32, 8, 3, 32, 2, 4, 4};  // img, patch, chans, width, depth, heads, mlp
    auto samples = [](std::size_t n, std::uint64_t seed) {
        data::synthetic_angiogram_options so;
        so.height = so.width = 48;
        std::vector<data::segmentation_sample> v;
        for (std::size_t i = 0; i < n; ++i) {
            auto a = data::make_synthetic_angiogram(so, seed, i);
            std::string name = "s";  // appended: GCC 12 -O3 warns falsely on "s" + ... (-Wrestrict)
            name += std::to_string(i);
            v.push_back({name, a.image, a.mask});
        }
        return v;
    };
    train::finetune_options o;
    o.epochs = 2;
    o.warmup_epochs = 1;
    o.lr = 2e-3;
    o.batch_size = batch;
    o.drop_path = 0.5;  // high: the draws, keyed by the global position, matter
    o.seed = 7;
    o.augment.size = 32;
    o.output = out;
    o.signature = train::finetune_signature("linear", c, 1.0);
    o.show_progress = false;
    o.panels = false;
    run_result r;
    o.on_step = [&](std::uint64_t, double loss) { r.losses.push_back(loss); };
    train::finetuner<B, model::decoder::linear> t(c, o);
    t.network().init(7 + std::uint64_t(comm.rank()));  // ranks differ: the broadcast must fix it
    std::ostringstream log;
    t.run(samples(5, 1), samples(1, 2), log, comm);
    r.params = t.network().params().to_host();
    return r;
}

TEST(DataParallel, FinetuneTwoRanksEqualOneProcessWithTheGlobalBatch) {
    dist::single one;
    const auto reference = finetune(one, 4, local_dir("finetune_reference"));
    const auto parallel = finetune(*world_comm, 2, shared_dir / "finetune_parallel");
    world_comm->barrier();
    EXPECT_EQ(reference.losses.size(), 4u);
    expect_same_losses(parallel.losses, reference.losses);
    expect_same_params(parallel.params, reference.params);
    report_differences("fine-tuning", parallel, reference);
    expect_ranks_agree(parallel.params);
    // rank 0 wrote the logs and checkpoints: one row per step
    if (world_comm->rank() == 0) {
        std::ifstream steps(shared_dir / "finetune_parallel" / "steps.csv");
        std::string line;
        int rows = -1;
        while (std::getline(steps, line)) ++rows;
        EXPECT_EQ(rows, 4);
        EXPECT_TRUE(fs::exists(shared_dir / "finetune_parallel" / "best.safetensors"));
    }
}

TEST(DataParallel, DifferentConfigurationsFailOnEveryRank) {
    const std::string mine = world_comm->rank() == 0 ? "a" : "b";
    try {
        dist::check_same_configuration(*world_comm, mine);
        FAIL() << "no error";
    } catch (const dist::collective_error& e) {
        EXPECT_NE(std::string(e.what()).find("differs from rank 0"), std::string::npos) << e.what();
    }
    EXPECT_NO_THROW(dist::check_same_configuration(*world_comm, "same"));
}

}  // namespace

int main(int argc, char** argv) {
    vasomim::dist::mpi_environment env(argc, argv);
    int status = 0;
    {
        vasomim::dist::mpi comm;
        world_comm = &comm;
        ::testing::InitGoogleTest(&argc, argv);
        if (comm.rank() != 0) {  // one report: rank 0's (failures of others still count, below)
            auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
            delete listeners.Release(listeners.default_result_printer());
        }
        const auto id = comm.allgather_host(static_cast<std::uint64_t>(::getpid()));
        shared_dir = fs::temp_directory_path() / ("vasomim_dist_" + std::to_string(id[0]));
        for (int r = 0; r < comm.size(); ++r) fs::create_directories(shared_dir / ("rank" + std::to_string(r)));
        comm.barrier();
        double failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
        comm.allreduce_sum_host(&failed, 1);
        comm.barrier();
        if (comm.rank() == 0) fs::remove_all(shared_dir);
        if (failed > 0 && comm.rank() == 0) std::fprintf(stderr, "%g rank(s) failed\n", failed);
        status = failed > 0 ? 1 : 0;
    }
    return status;
}
