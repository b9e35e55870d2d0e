#pragma once
// The one collective that layers and losses need under data parallelism, without depending on
// dist/: a callable that sums a few host doubles in place across the ranks of a job (SyncBN's
// per-channel sums, the Dice of the global batch). The trainers build it from their communicator
// (allreduce_sum_host); an empty one means one process, whose sums are already the global ones.
// Every rank must make the same calls in the same order, as with any collective.

#include <functional>

#include "vasomim/core/shape.hpp"

namespace vasomim {

using cross_rank_sum = std::function<void(double* values, index_t n)>;

}  // namespace vasomim
