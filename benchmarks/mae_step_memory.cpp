// Peak resident memory of one MAE training step (forward, backward, AdamW) on the cpu backend.
// benchmarks/vit_block_vs_torch.py runs it next to the same step in PyTorch. Prints one line:
//   preset=<name> batch=<n> loss=<l> step_s=<s> peak_rss_kb=<kb> params=<count> arena_mb=<mb>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "vasomim/backend/backends.hpp"
#include "vasomim/model.hpp"
#include "vasomim/optim.hpp"

int main(int argc, char** argv) {
    using namespace vasomim;
    using B = backend::cpu;
    const std::string preset = argc > 1 ? argv[1] : "base";
    const index_t n = argc > 2 ? std::stoll(argv[2]) : 8;
    const auto cfg = model::presets::by_name(preset);
    const index_t L = cfg.num_patches(), keep = static_cast<index_t>(static_cast<double>(L) * (1 - 0.75));

    model::mae<B, float> m(cfg);
    m.init(0);
    optim::adamw<B, float> opt(m.table(), {.lr = 1.5e-4, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.05});
    tensor<float, B> imgs(shape{n, cfg.in_chans, cfg.img_size, cfg.img_size});
    fill_normal(imgs, philox(1));
    // MAE's random masking: argsort of uniform noise per sample.
    std::vector<std::int64_t> keep_ids, restore(static_cast<std::size_t>(n * L));
    const philox g(2);
    for (index_t b = 0; b < n; ++b) {
        std::vector<std::int64_t> ids(static_cast<std::size_t>(L));
        std::iota(ids.begin(), ids.end(), 0);
        std::stable_sort(ids.begin(), ids.end(), [&](auto i, auto j) {
            return g.uniform(static_cast<std::uint64_t>(b * L + i)) < g.uniform(static_cast<std::uint64_t>(b * L + j));
        });
        for (index_t l = 0; l < L; ++l) restore[b * L + ids[l]] = l;
        keep_ids.insert(keep_ids.end(), ids.begin(), ids.begin() + keep);
    }
    auto ids_keep = tensor<std::int64_t, B>::from_host(keep_ids, shape{n, keep});
    auto ids_restore = tensor<std::int64_t, B>::from_host(restore, shape{n, L});

    const auto t0 = std::chrono::steady_clock::now();
    m.zero_grad();
    const float loss = m.forward(imgs, ids_keep, ids_restore);
    m.backward();
    opt.step(m.params(), m.grads());
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    std::printf("preset=%s batch=%lld loss=%.6f step_s=%.3f peak_rss_kb=%ld params=%lld arena_mb=%.1f\n", preset.c_str(),
                static_cast<long long>(n), static_cast<double>(loss), secs, ru.ru_maxrss,
                static_cast<long long>(m.table().count()), static_cast<double>(m.arena_bytes()) / (1 << 20));
    return 0;
}
