#pragma once
// 2-D skeleton of a binary mask, pixel for pixel as scikit-image's
// `skimage.morphology.skeletonize(mask)` (2-D, default method 'zhang'; checked against
// scikit-image 0.19.3 by tests/metrics/segmentation_metrics_test.cpp, tools/make_metrics_fixtures.py).
//
// The method (Zhang & Suen 1984, as scikit-image implements it): the mask is padded with one
// background pixel on every side; each iteration makes two sub-iterations, and each sub-iteration
// removes, all at once, every foreground pixel whose 8-neighbourhood is deletable in that
// sub-iteration (the decision reads the state at the start of the sub-iteration only). Iterations
// stop when one of them removes nothing. Which neighbourhoods are deletable is scikit-image's lookup
// table (detail::skeleton_table below), not the textbook Zhang-Suen conditions: the two disagree on
// 25 of the 256 patterns (e.g. scikit-image removes a pixel whose only neighbours are N and E).
//
// Foreground is any nonzero pixel. (scikit-image refuses masks with values other than 0 and 1 after
// a cast to uint8; on 0/1 and bool masks the two agree.)
//
// Cost: the first sub-iteration looks at every foreground pixel; later ones only at pixels that
// were deletable in some sub-iteration or lost a neighbour since they were last looked at, so the
// work follows the shrinking boundary rather than the image (a 512 x 512 vessel mask: well under
// a millisecond; see benchmarks/README.md).

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

namespace vasomim::metrics {

namespace detail {

/// scikit-image's deletion table, restated by class. A neighbourhood code is the sum of the
/// foreground neighbours' weights
///     NW 1   N 2    NE 4
///     W 128  (P)    E 8
///     SW 64  S 32   SE 16
/// and the entry says in which sub-iteration the centre is removed: bit 0 the first, bit 1 the
/// second (0: never). Every code not listed is 0.
inline constexpr std::array<std::uint8_t, 256> skeleton_table = [] {
    std::array<std::uint8_t, 256> t{};
    constexpr int first_only[] = {3, 6, 11, 12, 14, 131, 134, 143, 159, 161, 194, 198, 207, 227, 231, 243};
    constexpr int second_only[] = {24, 26, 56, 62, 63, 96, 104, 108, 126, 176, 192, 224, 248, 249, 252};
    constexpr int both[] = {7,   10,  15,  28,  30,  31,  40,  60,  112, 120,
                            124, 130, 135, 160, 193, 195, 199, 225, 240, 241};
    for (int c : first_only) t[static_cast<std::size_t>(c)] = 1;
    for (int c : second_only) t[static_cast<std::size_t>(c)] = 2;
    for (int c : both) t[static_cast<std::size_t>(c)] = 3;
    return t;
}();

}  // namespace detail

/// Buffers of skeletonize, reusable across calls (saves their allocation and first-touch page
/// faults when many masks are skeletonised in a row).
struct skeleton_workspace {
    std::vector<std::uint8_t> img;     ///< the padded mask
    std::vector<std::uint8_t> listed;  ///< whether a pixel is in `candidates` (no duplicates)
    std::vector<std::size_t> candidates, kept, removed;
};

/// Skeleton of the rows x cols row-major mask `mask` (nonzero = foreground) written to `out`
/// (rows * cols values, 1 on the skeleton, 0 elsewhere). `out` may be the same buffer as `mask`
/// when T is std::uint8_t. Empty sizes write nothing.
template <class T>
void skeletonize(const T* mask, std::size_t rows, std::size_t cols, std::uint8_t* out, skeleton_workspace& ws) {
    if (rows == 0 || cols == 0) return;
    const std::size_t w = cols + 2, h = rows + 2;
    auto& img = ws.img;
    auto& listed = ws.listed;
    auto& candidates = ws.candidates;
    auto& kept = ws.kept;
    auto& removed = ws.removed;
    img.assign(h * w, 0);
    listed.assign(h * w, 0);
    candidates.clear();
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c)
            if (mask[r * cols + c] != T(0)) {
                const std::size_t i = (r + 1) * w + c + 1;
                img[i] = 1;
                listed[i] = 1;
                candidates.push_back(i);
            }
    // Neighbour offsets in the order of their weights 1, 2, 4, ..., 128.
    const std::ptrdiff_t sw = static_cast<std::ptrdiff_t>(w);
    const std::array<std::ptrdiff_t, 8> offset{-sw - 1, -sw, -sw + 1, 1, sw + 1, sw, sw - 1, -1};
    const std::uint8_t* p = img.data();
    auto code = [&](std::size_t i) {
        const std::uint8_t* q = p + i;
        return (q[offset[0]]) | (q[offset[1]] << 1) | (q[offset[2]] << 2) | (q[offset[3]] << 3) |
               (q[offset[4]] << 4) | (q[offset[5]] << 5) | (q[offset[6]] << 6) | (q[offset[7]] << 7);
    };
    bool changed = true;
    while (changed) {
        changed = false;
        for (int pass = 0; pass < 2; ++pass) {
            const std::uint8_t bit = pass == 0 ? 1 : 2;
            kept.clear();
            removed.clear();
            for (const std::size_t i : candidates) {
                const std::uint8_t v = detail::skeleton_table[static_cast<std::size_t>(code(i))];
                if (v & bit) removed.push_back(i);
                else if (v) kept.push_back(i);  // deletable in the other sub-iteration: look again
                else listed[i] = 0;             // stays unless a neighbour goes
            }
            candidates.swap(kept);
            if (removed.empty()) continue;
            changed = true;
            for (const std::size_t i : removed) {
                img[i] = 0;
                listed[i] = 0;
            }
            for (const std::size_t i : removed)
                for (const std::ptrdiff_t o : offset) {
                    const std::size_t n = static_cast<std::size_t>(static_cast<std::ptrdiff_t>(i) + o);
                    if (img[n] && !listed[n]) {
                        listed[n] = 1;
                        candidates.push_back(n);
                    }
                }
        }
    }
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) out[r * cols + c] = img[(r + 1) * w + c + 1];
}

/// As above with buffers of its own.
template <class T>
void skeletonize(const T* mask, std::size_t rows, std::size_t cols, std::uint8_t* out) {
    skeleton_workspace ws;
    skeletonize(mask, rows, cols, out, ws);
}

/// Skeleton of a 2-D mask (nonzero = foreground) as a 0/1 uint8 array of the same shape.
template <class T>
xt::xtensor<std::uint8_t, 2> skeletonize(const xt::xtensor<T, 2>& mask) {
    xt::xtensor<std::uint8_t, 2> out = xt::xtensor<std::uint8_t, 2>::from_shape(mask.shape());
    skeletonize(mask.data(), mask.shape(0), mask.shape(1), out.data());
    return out;
}

}  // namespace vasomim::metrics
