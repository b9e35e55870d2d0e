// The pieces of data parallelism that need no MPI (issue 18): the loader's shard of each global
// batch, masks keyed by the position in the global batch, the buckets of the stream-ordered
// gradient sum (dist::nccl's way, here with a stand-in communicator), and dist::single (the 2-rank equivalence
// itself is tests/dist/mpi_equivalence.cpp, run under mpirun).
#include <gtest/gtest.h>

#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA
#include <vector>

#include "vasomim/backend/cpu.hpp"
#include "vasomim/data/folder_dataset.hpp"
#include "vasomim/data/loader.hpp"
#include "vasomim/dist/data_parallel.hpp"
#include "vasomim/dist/overlapped_gradient_sum.hpp"
#include "vasomim/dist/single.hpp"
#include "vasomim/masking/anatomy_guided.hpp"
#include "vasomim/masking/random.hpp"

namespace {

using namespace vasomim;
using B = backend::cpu;

TEST(Sharding, RankTakesItsSliceOfEveryGlobalBatch) {
    data::synthetic_angiogram_options so;
    so.height = so.width = 40;
    const data::synthetic_dataset d(20, 3, so);
    auto opts = [](std::size_t batch, std::size_t rank, std::size_t world) {
        data::loader_options lo;
        lo.batch_size = batch;
        lo.workers = 0;
        lo.seed = 9;
        lo.augment.size = 32;
        lo.rank = rank;
        lo.world = world;
        return lo;
    };
    data::prefetch_loader<data::synthetic_dataset> whole(d, opts(6, 0, 1));
    for (std::size_t r = 0; r < 3; ++r) {
        data::prefetch_loader<data::synthetic_dataset> part(d, opts(2, r, 3));
        ASSERT_EQ(part.batches_per_epoch(), whole.batches_per_epoch());  // 20 / 6 = 3
        whole.start_epoch(4);
        part.start_epoch(4, 1);  // resuming inside the epoch: from global batch 1
        whole.next();
        while (auto w = whole.next()) {
            const auto p = part.next();
            ASSERT_TRUE(p);
            EXPECT_EQ(p->first_sample, 2 * r);
            EXPECT_EQ(p->indices, std::vector<std::size_t>(w->indices.begin() + long(2 * r), w->indices.begin() + long(2 * r + 2)));
        }
        EXPECT_FALSE(part.next());
    }
    EXPECT_THROW(data::prefetch_loader<data::synthetic_dataset>(d, opts(2, 3, 3)), config_error);   // rank >= world
    EXPECT_THROW(data::prefetch_loader<data::synthetic_dataset>(d, opts(7, 0, 3)), config_error);   // 21 > 20 images
}

TEST(Sharding, MasksAreKeyedByThePositionInTheGlobalBatch) {
    const index_t n = 6, l = 16, half = 3;
    const masking::random random{0.75, 11};
    const auto all = random.sample<B>(n, l, {5, masking::progress::from_ratio(0.5), 0});
    const auto second = random.sample<B>(half, l, {5, masking::progress::from_ratio(0.5), half});
    const auto a = all.ids_shuffle.to_host(), b = second.ids_shuffle.to_host();
    EXPECT_EQ(std::vector<std::int64_t>(a.begin() + half * l, a.end()), b);

    tensor<float, B> w(shape{n, l});
    fill_normal(w, philox(3));
    float* p = w.data();
    for (index_t i = 0; i < n * l; ++i) p[i] = p[i] * p[i];  // non-negative weights
    tensor<float, B> w2(shape{half, l});
    std::copy(p + half * l, p + n * l, w2.data());
    const masking::anatomy_guided<> guided{0.75, {0.0, 0.5}, 11};
    const auto ga = guided.sample(w, {7, masking::progress::from_ratio(1.0), 0}).ids_shuffle.to_host();
    const auto gb = guided.sample(w2, {7, masking::progress::from_ratio(1.0), half}).ids_shuffle.to_host();
    EXPECT_EQ(std::vector<std::int64_t>(ga.begin() + half * l, ga.end()), gb);
}

TEST(Sharding, SingleIsOneRankAndTheConfigurationCheckPasses) {
    dist::single one;
    EXPECT_EQ(one.rank(), 0);
    EXPECT_EQ(one.size(), 1);
    EXPECT_NO_THROW(dist::check_same_configuration(one, "anything"));
    std::vector<float> g{1, 2, 3};
    dist::gradient_averager<B, dist::single> average(one);
    average(g.data(), 3);
    EXPECT_EQ(g, (std::vector<float>{1, 2, 3}));
    EXPECT_NE(dist::text_hash("a"), dist::text_hash("b"));
}

/// A stream-ordered stand-in for dist::nccl: "two ranks" with the same gradients, whose queued sums
/// run (double the span) only at wait_enqueued, as NCCL's run when the stream gets to them.
struct queued_pair {
    static constexpr bool device_memory = true;
    std::vector<std::pair<float*, index_t>> queued;
    std::vector<index_t> waited_with;  // how many sums were queued at each wait
    int rank() const { return 0; }
    int size() const { return 2; }
    void broadcast(float*, index_t, int) {}
    void allreduce_sum(float* p, index_t n) {
        for (index_t i = 0; i < n; ++i) p[i] *= 2;
    }
    void allreduce_sum_enqueue(float* p, index_t n) { queued.emplace_back(p, n); }
    void wait_enqueued() {
        waited_with.push_back(static_cast<index_t>(queued.size()));
        for (auto [p, n] : queued) allreduce_sum(p, n);
        queued.clear();
    }
    void allreduce_sum_host(double*, index_t) {}
    std::vector<std::uint64_t> allgather_host(std::uint64_t v) { return {v, v}; }
    void barrier() {}
    [[noreturn]] void abort(int) { std::abort(); }
};
static_assert(dist::stream_ordered_communicator<queued_pair>);
static_assert(!dist::stream_ordered_communicator<dist::single>);

TEST(OverlappedGradientSum, StreamOrderedQueuesEachFinishedBucketDuringTheBackwardPass) {
    queued_pair comm;
    dist::overlapped_gradient_sum<queued_pair> sum(comm, 100);
    const index_t n = 1000;
    for (int step = 0; step < 2; ++step) {  // twice: the state is reset between steps
        std::vector<float> g(static_cast<std::size_t>(n));
        for (index_t i = 0; i < n; ++i) g[std::size_t(i)] = float(i) * 0.5f + 1;
        const std::vector<float> before = g;
        for (index_t from : {950, 800, 790, 500, 120}) sum.final_from(g.data(), from, n);
        // Queued as the backward pass finishes them, none summed yet: [800, 1000) [500, 800) [120, 500).
        ASSERT_EQ(comm.queued.size(), 3u);
        EXPECT_EQ(comm.queued[0], std::make_pair(g.data() + 800, index_t(200)));
        EXPECT_EQ(comm.queued[2], std::make_pair(g.data() + 120, index_t(380)));
        EXPECT_EQ(g, before);
        sum.final_from(g.data(), 0, n);
        sum(g.data(), n);  // [0, 120) went at from 0; one wait for all four
        EXPECT_EQ(comm.waited_with.back(), 4);
        for (std::size_t i = 0; i < g.size(); ++i) ASSERT_EQ(g[i], 2 * before[i]) << i;  // each float once
    }
    EXPECT_EQ(sum.buckets(), 8u);
}

}  // namespace
#endif
