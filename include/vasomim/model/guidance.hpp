#pragma once
// Guidance policies for the composed model: which anatomical prior steers the masking and
// whether the consistency loss (which needs the segmentor) is on.
//   none                  uniform random masking (MAE), no consistency loss
//   filter                G = B (the ridge-filter pseudo-label)
//   segmentor             G = sigmoid(S(I))
//   filter_and_segmentor  G = w_b * B + w_m * sigmoid(S(I)), 0.5 / 0.5 (VasoMIM)

#include <cstdint>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/scalar_math.hpp"

namespace vasomim::guidance {

struct none {
    static constexpr bool uses_filter = false, uses_segmentor = false;
    static constexpr double w_b = 0, w_m = 0;
};
struct filter {
    static constexpr bool uses_filter = true, uses_segmentor = false;
    static constexpr double w_b = 1, w_m = 0;
};
struct segmentor {
    static constexpr bool uses_filter = false, uses_segmentor = true;
    static constexpr double w_b = 0, w_m = 1;
};
struct filter_and_segmentor {
    static constexpr bool uses_filter = true, uses_segmentor = true;
    static constexpr double w_b = 0.5, w_m = 0.5;
};

/// The consistency loss is defined only when a segmentor is present.
template <class Policy>
inline constexpr bool has_consistency = Policy::uses_segmentor;

/// g[i] = w_b * mask[i] + w_m * sigmoid(logits[i]) over n pixels (mask / logits may be null when
/// their weight is 0); for guidance::none g = 1 everywhere (uniform patch weights).
template <backend_policy B, class T>
void guidance_map(T* g, const T* mask, const T* logits, index_t n, double w_b, double w_m) {
    const T wb = static_cast<T>(w_b), wm = static_cast<T>(w_m);
    const bool none = w_b == 0 && w_m == 0;
    parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        T v = none ? T(1) : T(0);
        if (mask && wb != T(0)) v += wb * mask[i];
        if (logits && wm != T(0)) v += wm * scalar::sigmoid(logits[i]);
        g[i] = v;
    });
}

/// guidance_map with the weights of a policy.
template <class Policy, backend_policy B, class T>
void guidance_map(T* g, const T* mask, const T* logits, index_t n) {
    guidance_map<B>(g, mask, logits, n, Policy::w_b, Policy::w_m);
}

}  // namespace vasomim::guidance
