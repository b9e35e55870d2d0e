#pragma once
// The communicator policy of data-parallel training (DESIGN: policies, not flags). A communicator
// is a value with the ranks of one job: dist::single (one process, no dependency), dist::mpi (Open
// MPI, host memory) and dist::nccl (NCCL, GPU memory, bootstrapped through MPI). The trainers take
// one as an argument; everything above it (parameter broadcast, gradient averaging, the sampler's
// shard, the configuration check) is written once against this concept.

#include <concepts>
#include <cstdint>
#include <string>
#include <vector>

#include "vasomim/core/config.hpp"
#include "vasomim/core/shape.hpp"

namespace vasomim::dist {

/// What the trainers need from a communicator. Buffers are host memory unless the communicator
/// says `device_memory` (then they are in the memory of the backend the model runs on).
template <class C>
concept communicator = requires(C& c, const C& cc, float* f, double* d, index_t n, std::uint64_t u, int code) {
    { cc.rank() } -> std::convertible_to<int>;
    { cc.size() } -> std::convertible_to<int>;
    { C::device_memory } -> std::convertible_to<bool>;
    c.broadcast(f, n, 0);        ///< from rank 0 (the root) to every rank
    c.allreduce_sum(f, n);       ///< in place: every rank gets the element-wise sum
    c.allreduce_sum_host(d, n);  ///< small host vectors of doubles (losses, rates, flags)
    { c.allgather_host(u) } -> std::same_as<std::vector<std::uint64_t>>;
    c.barrier();
    c.abort(code);  ///< ends every rank of the job (never returns)
};

/// A communicator whose sums can be queued behind the computation that writes their buffers, in the
/// order of a device's work (dist::nccl: on its own stream, after an event of the default stream):
/// allreduce_sum_enqueue returns at once; wait_enqueued returns when every queued sum is done.
/// overlapped_gradient_sum then needs no thread of its own.
template <class C>
concept stream_ordered_communicator = communicator<C> && requires(C& c, float* f, index_t n) {
    c.allreduce_sum_enqueue(f, n);
    c.wait_enqueued();
};

/// "rank r of N" for messages.
inline std::string rank_text(int rank, int size) {
    return "rank " + std::to_string(rank) + " of " + std::to_string(size);
}

}  // namespace vasomim::dist
