#pragma once
// Per-image segmentation scores of a predicted mask P against a reference mask G (nonzero =
// foreground), and their mean / standard deviation over a set of images:
//   Dice        = 2 |P and G| / (|P| + |G|)
//   sensitivity = |P and G| / |G|            (recall, true-positive rate)
//   precision   = |P and G| / |P|            (positive predictive value)
//   clDice (Shit et al., CVPR 2021), with S the skeleton of metrics/skeletonize.hpp (scikit-image's):
//     topology precision   Tprec = |S(P) and G| / |S(P)|
//     topology sensitivity Tsens = |S(G) and P| / |S(G)|
//     clDice = 2 Tprec Tsens / (Tprec + Tsens)
//
// Empty cases, one rule for every ratio: a ratio whose denominator is 0 is 1 when both P and G are
// empty (a correct "no vessel" answer) and 0 otherwise (an empty reference is matched only by an
// empty prediction, and an empty prediction finds nothing of a non-empty reference). So both
// empty: every score 1; exactly one empty: every score 0. clDice is 0 when Tprec + Tsens = 0.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "vasomim/core/error.hpp"
#include "vasomim/metrics/skeletonize.hpp"

namespace vasomim::metrics {

/// The pixel counts the scores are made of.
struct overlap_counts {
    std::int64_t pred = 0;              ///< |P|
    std::int64_t ref = 0;               ///< |G|
    std::int64_t both = 0;              ///< |P and G|
    std::int64_t pred_skeleton = 0;     ///< |S(P)|
    std::int64_t ref_skeleton = 0;      ///< |S(G)|
    std::int64_t pred_skeleton_in_ref = 0;  ///< |S(P) and G|
    std::int64_t ref_skeleton_in_pred = 0;  ///< |S(G) and P|
};

/// One image's scores (or, in a summary, their mean or standard deviation).
struct segmentation_scores {
    double dice = 0;
    double cldice = 0;
    double sensitivity = 0;
    double precision = 0;
    double topology_precision = 0;    ///< Tprec
    double topology_sensitivity = 0;  ///< Tsens
};

/// Scores over a set of images: the mean and the standard deviation of each score.
struct score_summary {
    std::size_t images = 0;
    segmentation_scores mean;
    segmentation_scores std;  ///< with `ddof` as numpy's std (0: population, the default)
};

namespace detail {

/// num / den with the empty-case rule of the header comment.
inline double ratio(std::int64_t num, std::int64_t den, bool both_empty) {
    if (den == 0) return both_empty ? 1.0 : 0.0;
    return static_cast<double>(num) / static_cast<double>(den);
}

}  // namespace detail

/// The scores from their counts (the header comment's definitions and empty cases).
inline segmentation_scores scores_from_counts(const overlap_counts& n) {
    const bool both_empty = n.pred == 0 && n.ref == 0;
    segmentation_scores s;
    s.dice = detail::ratio(2 * n.both, n.pred + n.ref, both_empty);
    s.sensitivity = detail::ratio(n.both, n.ref, both_empty);
    s.precision = detail::ratio(n.both, n.pred, both_empty);
    s.topology_precision = detail::ratio(n.pred_skeleton_in_ref, n.pred_skeleton, both_empty);
    s.topology_sensitivity = detail::ratio(n.ref_skeleton_in_pred, n.ref_skeleton, both_empty);
    const double t = s.topology_precision + s.topology_sensitivity;
    s.cldice = t > 0 ? 2 * s.topology_precision * s.topology_sensitivity / t : 0.0;
    return s;
}

/// Counts of the rows x cols row-major masks `pred` and `ref` (nonzero = foreground), skeletons
/// included. The skeletons are written to `pred_skeleton` / `ref_skeleton` when given (rows * cols);
/// `ws` (optional) lends skeletonize its buffers across calls.
template <class T, class U>
overlap_counts count_overlap(const T* pred, const U* ref, std::size_t rows, std::size_t cols,
                             std::uint8_t* pred_skeleton = nullptr, std::uint8_t* ref_skeleton = nullptr,
                             skeleton_workspace* ws = nullptr) {
    const std::size_t n = rows * cols;
    std::vector<std::uint8_t> own_p, own_g;
    if (!pred_skeleton) {
        own_p.resize(n);
        pred_skeleton = own_p.data();
    }
    if (!ref_skeleton) {
        own_g.resize(n);
        ref_skeleton = own_g.data();
    }
    skeleton_workspace own_ws;
    if (!ws) ws = &own_ws;
    skeletonize(pred, rows, cols, pred_skeleton, *ws);
    skeletonize(ref, rows, cols, ref_skeleton, *ws);
    overlap_counts c;
    for (std::size_t i = 0; i < n; ++i) {
        const bool p = pred[i] != T(0), g = ref[i] != U(0);
        c.pred += p;
        c.ref += g;
        c.both += p && g;
        c.pred_skeleton += pred_skeleton[i];
        c.ref_skeleton += ref_skeleton[i];
        c.pred_skeleton_in_ref += pred_skeleton[i] && g;
        c.ref_skeleton_in_pred += ref_skeleton[i] && p;
    }
    return c;
}

/// Dice, clDice, sensitivity and precision of `pred` against `ref` (rows x cols, row-major,
/// nonzero = foreground).
template <class T, class U>
segmentation_scores evaluate(const T* pred, const U* ref, std::size_t rows, std::size_t cols) {
    return scores_from_counts(count_overlap(pred, ref, rows, cols));
}

/// As above for 2-D arrays; throws shape_error when the shapes differ.
template <class T, class U>
segmentation_scores evaluate(const xt::xtensor<T, 2>& pred, const xt::xtensor<U, 2>& ref) {
    if (pred.shape(0) != ref.shape(0) || pred.shape(1) != ref.shape(1))
        throw shape_error("metrics::evaluate: prediction is " + std::to_string(pred.shape(0)) + " x " +
                          std::to_string(pred.shape(1)) + " but the reference is " +
                          std::to_string(ref.shape(0)) + " x " + std::to_string(ref.shape(1)));
    return evaluate(pred.data(), ref.data(), pred.shape(0), pred.shape(1));
}

/// Mean and standard deviation (sum of squared deviations / (count - ddof), as numpy's std) of each
/// score over `per_image`. No images: all zeros; fewer than ddof + 1 images: std 0.
inline score_summary summarize(std::span<const segmentation_scores> per_image, int ddof = 0) {
    score_summary out;
    out.images = per_image.size();
    if (per_image.empty()) return out;
    using field = double segmentation_scores::*;
    constexpr field fields[] = {&segmentation_scores::dice,
                                &segmentation_scores::cldice,
                                &segmentation_scores::sensitivity,
                                &segmentation_scores::precision,
                                &segmentation_scores::topology_precision,
                                &segmentation_scores::topology_sensitivity};
    const double n = static_cast<double>(per_image.size());
    for (const field f : fields) {
        double sum = 0;
        for (const auto& s : per_image) sum += s.*f;
        const double mean = sum / n;
        double ss = 0;
        for (const auto& s : per_image) ss += (s.*f - mean) * (s.*f - mean);
        out.mean.*f = mean;
        out.std.*f = n - ddof > 0 ? std::sqrt(ss / (n - ddof)) : 0.0;
    }
    return out;
}

}  // namespace vasomim::metrics
