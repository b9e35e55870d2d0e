// Time per image of the released pseudo-label pipeline (vessel::pseudo_label) and the
// field-of-view-aware variant (vessel::fov_pseudo_label, defaults) on the same images, in the
// same run, one thread, alternating, best of `reps`; the pipelines only (images decoded first).
// Built and run by tools/fov_pseudo_label_table.sh:
//   c++ -O3 -march=native -mprefer-vector-width=512 -fno-math-errno -fopenmp -std=gnu++20 -Iinclude
//       -isystem /usr/include/eigen3 tools/fov_pseudo_label_timing.cpp -o timing -lstb -lisal
//   ./timing IMAGE...
#include <malloc.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <span>
#include <vector>

#include "vasomim/io/image.hpp"
#include "vasomim/vessel/fov_pseudo_label.hpp"
#include "vasomim/vessel/pseudo_label.hpp"

int main(int argc, char** argv) {
    using namespace vasomim;
    using B = backend::cpu;
    omp_set_num_threads(1);
    // As vasomim-vesselness does: keep freed 256 KB+ buffers in the heap instead of giving them back
    // to the system and faulting their pages in again for the next image.
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    std::vector<tensor<std::uint8_t, B>> images;
    for (int i = 1; i < argc; ++i) {
        const auto g = io::read_gray8(argv[i]);
        images.push_back(tensor<std::uint8_t, B>::from_host(std::span<const std::uint8_t>(g.data(), g.size()),
                                                            shape{index_t(g.shape(0)), index_t(g.shape(1))}));
    }
    if (images.empty()) {
        std::fprintf(stderr, "usage: %s IMAGE...\n", argv[0]);
        return 2;
    }
    double best_r = 1e30, best_f = 1e30, best_v = 1e30;
    std::size_t on = 0, fallbacks = 0;
    for (int rep = 0; rep < 5; ++rep) {
        auto t0 = std::chrono::steady_clock::now();
        for (const auto& im : images) on += vessel::pseudo_label(im).data()[0];
        auto t1 = std::chrono::steady_clock::now();
        for (const auto& im : images) fallbacks += vessel::fov_pseudo_label(im).fallback();
        auto t2 = std::chrono::steady_clock::now();
        for (const auto& im : images) on += vessel::field_of_view(im).data()[0];
        auto t3 = std::chrono::steady_clock::now();
        best_v = std::min(best_v, std::chrono::duration<double>(t3 - t2).count());
        best_r = std::min(best_r, std::chrono::duration<double>(t1 - t0).count());
        best_f = std::min(best_f, std::chrono::duration<double>(t2 - t1).count());
    }
    const double n = double(images.size());
    std::printf("time per %lld x %lld image, one thread, pipeline only, best of 5 over %zu images: released %.2f ms, "
                "FOV-aware %.2f ms, ratio %.2f (fallbacks %zu; the field of view alone %.2f ms; check %zu)\n",
                static_cast<long long>(images[0].dim(0)), static_cast<long long>(images[0].dim(1)), images.size(),
                1000 * best_r / n, 1000 * best_f / n, best_f / best_r, fallbacks / 5, 1000 * best_v / n, on);
}
