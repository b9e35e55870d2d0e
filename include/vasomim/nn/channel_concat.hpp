#pragma once
// Concatenation of two NCHW tensors along the channel axis (torch.cat(dim=1)) and its backward.

#include "vasomim/backend/algorithms.hpp"

namespace vasomim::nn {

/// out[n, ca + cb, hw] = cat(a[n, ca, hw], b[n, cb, hw]) along channels.
template <backend_policy B, class T>
void channel_concat_forward(T* out, const T* a, const T* b, index_t n, index_t ca, index_t cb, index_t hw) {
    const index_t c = ca + cb;
    parallel_for<B>(n * c, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
        const index_t ch = r % c, i = r / c;
        const T* src = ch < ca ? a + (i * ca + ch) * hw : b + (i * cb + ch - ca) * hw;
        T* dst = out + r * hw;
        for (index_t j = 0; j < hw; ++j) dst[j] = src[j];
    });
}

/// da, db (+)= the two channel ranges of dout; either may be null; overwritten, or accumulated onto
/// when `accumulate`.
template <backend_policy B, class T>
void channel_concat_backward(T* da, T* db, const T* dout, index_t n, index_t ca, index_t cb, index_t hw,
                             bool accumulate = false) {
    const index_t c = ca + cb;
    parallel_for<B>(n * c, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
        const index_t ch = r % c, i = r / c;
        T* dst = ch < ca ? (da ? da + (i * ca + ch) * hw : nullptr) : (db ? db + (i * cb + ch - ca) * hw : nullptr);
        if (!dst) return;
        const T* src = dout + r * hw;
        if (accumulate)
            for (index_t j = 0; j < hw; ++j) dst[j] += src[j];
        else
            for (index_t j = 0; j < hw; ++j) dst[j] = src[j];
    });
}

}  // namespace vasomim::nn
