#pragma once
// dist::single: one process, the behaviour of training without data parallelism. Every collective
// is the identity; no dependency.

#include <cstdlib>
#include <vector>

#include "vasomim/dist/communicator.hpp"

namespace vasomim::dist {

struct single {
    static constexpr bool device_memory = true;  ///< touches no memory at all
    int rank() const { return 0; }
    int size() const { return 1; }
    void broadcast(float*, index_t, int) {}
    void allreduce_sum(float*, index_t) {}
    void allreduce_sum_host(double*, index_t) {}
    std::vector<std::uint64_t> allgather_host(std::uint64_t v) { return {v}; }
    void barrier() {}
    [[noreturn]] void abort(int code) { std::exit(code); }
};
static_assert(communicator<single>);

}  // namespace vasomim::dist
