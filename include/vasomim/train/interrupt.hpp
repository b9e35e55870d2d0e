#pragma once
// Ctrl-C handling for long runs: the first SIGINT/SIGTERM sets a flag that the training loop polls
// between iterations (it then writes a checkpoint and returns); a second one exits at once.

#include <atomic>
#include <csignal>
#include <cstdlib>

namespace vasomim::train {

namespace detail {
inline std::atomic<int>& interrupt_count() {
    static std::atomic<int> count{0};
    return count;
}
extern "C" inline void on_interrupt(int) {
    if (interrupt_count().fetch_add(1) >= 1) std::_Exit(130);
}
}  // namespace detail

inline void install_interrupt_handler() {
    std::signal(SIGINT, detail::on_interrupt);
    std::signal(SIGTERM, detail::on_interrupt);
}

inline bool interrupted() { return detail::interrupt_count().load() > 0; }

}  // namespace vasomim::train
