#pragma once
// A one-line progress bar with ETA for training loops, redrawn in place on a terminal:
//   " epoch 3/20 [=========               ]  38%  loss 0.4123  lr 1.20e-04  5.1 img/s  ETA 0:04:10 "

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>

namespace vasomim::train {

/// h:mm:ss of a number of seconds (negative: 0).
inline std::string format_clock(double seconds) {
    const auto s = static_cast<long>(std::max(0.0, seconds));
    char buf[32];
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    return buf;
}

/// Redraws the bar on `out` (carriage return, no newline): `done` of `total` units, at `rate`
/// images/s with `images_per_unit` images per unit.
inline void draw_progress(std::FILE* out, std::int64_t epoch, std::int64_t epochs, std::uint64_t done, std::uint64_t total,
                          double loss, double lr, double rate, double images_per_unit) {
    const double share = total ? double(done) / double(total) : 1.0;
    const int width = 24, filled = std::clamp(static_cast<int>(share * width), 0, width);
    const double eta = rate > 0 ? double(total - std::min(done, total)) * images_per_unit / rate : 0;
    std::fprintf(out, "\r epoch %lld/%lld [%-*s] %3.0f%%  loss %.4f  lr %.2e  %.1f img/s  ETA %s ",
                 static_cast<long long>(epoch), static_cast<long long>(epochs), width,
                 std::string(static_cast<std::size_t>(filled), '=').c_str(), 100 * share, loss, lr, rate,
                 format_clock(eta).c_str());
    std::fflush(out);
}

}  // namespace vasomim::train
