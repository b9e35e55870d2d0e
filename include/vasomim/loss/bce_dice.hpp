#pragma once
// Segmentation losses on logits z against targets t in [0, 1]:
//   BCEWithLogits (mean over all elements, torch's stable form max(z,0) - z t + log(1 + e^-|z|)),
//   soft Dice on sigmoid(z) per sample (smooth 1e-5, as UNeXt's losses.py), 1 - mean Dice,
//   and the segmentor's training loss 0.5 * BCE + 0.5 * (1 - Dice) (DESIGN 4.4).
// Each returns the loss and, when dz is given, writes (or adds, `accumulate`) weight * dL/dz.
// Under data parallelism global_bce_dice_loss and hard_dice take their sums over every rank's
// elements (a cross_rank_sum), so that they equal one process's over the global batch.

#include <cstdint>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/cross_rank_sum.hpp"
#include "vasomim/core/functional.hpp"
#include "vasomim/core/scalar_math.hpp"

namespace vasomim::loss {

inline constexpr double dice_smooth = 1e-5;

/// Mean BCEWithLogits over n elements; scratch holds n elements. dz (may be null) gets
/// weight * (sigmoid(z) - t) / n.
template <backend_policy B, class T>
T bce_with_logits(const T* z, const T* t, index_t n, T* scratch, T* dz = nullptr, T weight = T(1),
                  bool accumulate = false) {
    parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        const T v = z[i], a = v < T(0) ? -v : v;
        scratch[i] = (v > T(0) ? v : T(0)) - v * t[i] + scalar::log1p_(scalar::exp_(-a));
    });
    const T total = backend_traits<B>::reduce(scratch, static_cast<std::size_t>(n), T(0), plus{});
    if (dz) {
        const T s = weight / static_cast<T>(n);
        parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
            const T g = s * (scalar::sigmoid(z[i]) - t[i]);
            dz[i] = accumulate ? dz[i] + g : g;
        });
    }
    return total / static_cast<T>(n);
}

/// 1 - mean over `batch` samples of (2 sum(p t) + s) / (sum p + sum t + s), p = sigmoid(z), each
/// sample `per` elements. scratch holds 3 * batch elements. dz (may be null) gets weight * dL/dz.
template <backend_policy B, class T>
T dice_loss(const T* z, const T* t, index_t batch, index_t per, T* scratch, T* dz = nullptr, T weight = T(1),
            bool accumulate = false) {
    T* inter = scratch;
    T* denom = scratch + batch;
    T* dice = scratch + 2 * batch;
    const T sm = static_cast<T>(dice_smooth);
    parallel_for<B>(batch, [=] VASOMIM_HOST_DEVICE(std::int64_t b) {
        T si = T(0), sd = T(0);
        for (index_t k = 0; k < per; ++k) {
            const T p = scalar::sigmoid(z[b * per + k]), tt = t[b * per + k];
            si += p * tt;
            sd += p + tt;
        }
        inter[b] = T(2) * si + sm;
        denom[b] = sd + sm;
        dice[b] = inter[b] / denom[b];
    });
    const T mean_dice = backend_traits<B>::reduce(dice, static_cast<std::size_t>(batch), T(0), plus{}) /
                        static_cast<T>(batch);
    if (dz) {
        const T s = weight / static_cast<T>(batch);
        parallel_for<B>(batch * per, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
            const index_t b = i / per;
            const T p = scalar::sigmoid(z[i]);
            // d dice_b / d p_i = (2 t_i denom - inter) / denom^2
            const T dd = (T(2) * t[i] * denom[b] - inter[b]) / (denom[b] * denom[b]);
            const T g = -s * dd * p * (T(1) - p);
            dz[i] = accumulate ? dz[i] + g : g;
        });
    }
    return T(1) - mean_dice;
}

/// 0.5 * BCEWithLogits + 0.5 * (1 - Dice); scratch holds batch * per + 3 * batch elements.
template <backend_policy B, class T>
T bce_dice_loss(const T* z, const T* t, index_t batch, index_t per, T* scratch, T* dz = nullptr) {
    const index_t n = batch * per;
    const T bce = bce_with_logits<B>(z, t, n, scratch, dz, T(0.5));
    const T dice = dice_loss<B>(z, t, batch, per, scratch + n, dz, T(0.5), true);
    return T(0.5) * bce + T(0.5) * dice;
}

/// The segmentor's loss as released (bce_dice_loss with ONE Dice over the whole batch) when the
/// batch is split across ranks: this rank holds n of its elements, and `across` sums over every
/// rank the BCE total and count and the Dice's intersection and p + t sums. The loss, and dz (this
/// rank's part of the global loss's gradient), are then those of one process with the whole batch,
/// so the parameter gradients are to be summed across ranks, not averaged. Empty `across`: one
/// process (sums in double, unlike bce_dice_loss). scratch holds n elements.
template <backend_policy B, class T>
T global_bce_dice_loss(const T* z, const T* t, index_t n, T* scratch, T* dz, const cross_rank_sum& across) {
    const auto count = static_cast<std::size_t>(n);
    auto total = [&] { return backend_traits<B>::transform_reduce(scratch, count, 0.0, identity{}, plus{}); };
    double v[4];
    parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        const T u = z[i], a = u < T(0) ? -u : u;
        scratch[i] = (u > T(0) ? u : T(0)) - u * t[i] + scalar::log1p_(scalar::exp_(-a));
    });
    v[0] = total();
    parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) { scratch[i] = scalar::sigmoid(z[i]) * t[i]; });
    v[1] = total();
    parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) { scratch[i] = scalar::sigmoid(z[i]) + t[i]; });
    v[2] = total();
    v[3] = static_cast<double>(n);
    if (across) across(v, 4);
    const double inter = 2 * v[1] + dice_smooth, denom = v[2] + dice_smooth;
    if (dz) {
        const T sb = static_cast<T>(0.5 / v[3]), ti = static_cast<T>(inter), td = static_cast<T>(denom);
        parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
            const T p = scalar::sigmoid(z[i]);
            const T dd = (T(2) * t[i] * td - ti) / (td * td);
            dz[i] = sb * (p - t[i]) - T(0.5) * dd * p * (T(1) - p);
        });
    }
    return static_cast<T>(0.5 * (v[0] / v[3]) + 0.5 * (1 - inter / denom));
}

/// Hard Dice of (sigmoid(z) > 0.5, i.e. z > 0) against a binary target, over n elements (host
/// value); with `across`, over every rank's elements.
template <backend_policy B, class T>
double hard_dice(const T* z, const T* t, index_t n, T* scratch, const cross_rank_sum& across = {}) {
    parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) { scratch[i] = (z[i] > T(0) ? T(1) : T(0)) * t[i]; });
    double v[2];
    v[0] = backend_traits<B>::reduce(scratch, static_cast<std::size_t>(n), T(0), plus{});
    parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) { scratch[i] = (z[i] > T(0) ? T(1) : T(0)) + t[i]; });
    v[1] = backend_traits<B>::reduce(scratch, static_cast<std::size_t>(n), T(0), plus{});
    if (across) across(v, 2);
    return v[1] > 0 ? 2 * v[0] / v[1] : 1.0;
}

}  // namespace vasomim::loss
