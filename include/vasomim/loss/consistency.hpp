#pragma once
// The anatomical consistency loss of VasoMIM:
//   L_cons = BCEWithLogits(S(I_hat), sigmoid(S(I))), mean over pixels, target detached,
// with S the segmentor frozen in eval mode (BatchNorm running statistics) and
//   I_hat = unpatchify(P * sqrt(var + 1e-6) + mean),
// P the decoder's patch predictions [n, L, p*p*c] in MAE order (row, column, channel inside a
// patch) and mean / var (unbiased) the per-patch statistics of the target image I (norm-pix
// de-normalisation). The segmentor takes one channel: both I and I_hat are reduced to their
// channel mean before S (the replicated grayscale angiogram gives back its gray values), so the
// gradient of the gray image reaches every channel with weight 1/c. The gradient flows through S
// into I_hat and from there into P.

#include <cstdint>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/error.hpp"
#include "vasomim/core/tensor.hpp"
#include "vasomim/loss/bce_dice.hpp"
#include "vasomim/loss/masked_reconstruction.hpp"
#include "vasomim/core/scalar_math.hpp"
#include "vasomim/nn/unext.hpp"

namespace vasomim::loss {

/// n images of c x h x w cut into p x p patches; norm_pix: the predictions are per-patch normalised
/// (MAE's norm_pix_loss) and are de-normalised with the target image's patch statistics.
struct consistency_dims {
    index_t n, c, h, w, p;
    bool norm_pix = true;
    index_t grid_w() const { return w / p; }
    index_t patches() const { return (h / p) * (w / p); }
    index_t patch_size() const { return p * p * c; }
};

/// Per-patch mean and sqrt(unbiased var + 1e-6) of img [n, c, h, w] (MAE patch order).
template <backend_policy B, class T>
void patch_stats(T* mean, T* stdv, const T* img, const consistency_dims& d) {
    const index_t L = d.patches(), gw = d.grid_w(), p = d.p, c = d.c, h = d.h, w = d.w, ps = d.patch_size();
    parallel_for<B>(d.n * L, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
        const index_t b = r / L, l = r % L, y0 = (l / gw) * p, x0 = (l % gw) * p;
        T s = T(0);
        for (index_t ch = 0; ch < c; ++ch)
            for (index_t i = 0; i < p; ++i)
                for (index_t j = 0; j < p; ++j) s += img[((b * c + ch) * h + y0 + i) * w + x0 + j];
        const T mu = s / static_cast<T>(ps);
        T v = T(0);
        for (index_t ch = 0; ch < c; ++ch)
            for (index_t i = 0; i < p; ++i)
                for (index_t j = 0; j < p; ++j) {
                    const T e = img[((b * c + ch) * h + y0 + i) * w + x0 + j] - mu;
                    v += e * e;
                }
        mean[r] = mu;
        stdv[r] = scalar::sqrt_(v / static_cast<T>(ps - 1) + static_cast<T>(norm_pix_eps));
    });
}

/// gray[b, y, x] = mean over channels of unpatchify(pred * std + mean) (pred may be null: then the
/// channel mean of img itself).
template <backend_policy B, class T>
void gray_reconstruction(T* gray, const T* pred, const T* mean, const T* stdv, const T* img, const consistency_dims& d) {
    const index_t L = d.patches(), gw = d.grid_w(), p = d.p, c = d.c, h = d.h, w = d.w, ps = d.patch_size();
    parallel_for<B>(d.n * h * w, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        const index_t x = i % w, y = (i / w) % h, b = i / (w * h);
        T s = T(0);
        if (pred) {
            const index_t r = b * L + (y / p) * gw + x / p, k0 = ((y % p) * p + x % p) * c;
            for (index_t ch = 0; ch < c; ++ch) s += pred[r * ps + k0 + ch] * stdv[r] + mean[r];
        } else {
            for (index_t ch = 0; ch < c; ++ch) s += img[((b * c + ch) * h + y) * w + x];
        }
        gray[i] = s / static_cast<T>(c);
    });
}

/// Evaluates L_cons and its gradient with respect to the patch predictions with a frozen UNeXt-S
/// (run in eval mode; its parameter gradients are touched as scratch and must be ignored).
template <backend_policy B, class T>
class consistency_loss {
public:
    explicit consistency_loss(nn::unext<B, T>& segmentor) : s_(segmentor) {
        if (segmentor.config().in_channels != 1 || segmentor.config().num_classes != 1)
            throw config_error("consistency_loss: the segmentor must map 1 channel to 1 logit map");
    }

    /// S(I): the frozen segmentor's logits [n, 1, h, w] for the channel mean of img [n, c, h, w].
    void segment(T* logits, const T* img, const consistency_dims& d) {
        check(d);
        const index_t npix = d.n * d.h * d.w;
        resize(npix, d.n * d.patches());
        T* gray = buf_.data();
        gray_reconstruction<B>(gray, static_cast<const T*>(nullptr), static_cast<const T*>(nullptr),
                               static_cast<const T*>(nullptr), img, d);
        s_.forward(logits, gray, d.n, d.h, d.w, false);
    }

    /// Returns L_cons; dpred [n, L, p*p*c] (may be null) is overwritten with weight * dL/dP.
    /// target_logits: S(I) when the caller already has it (e.g. from segment() for the guidance
    /// map); null: computed here.
    T operator()(const T* pred, const T* img, const consistency_dims& d, T* dpred = nullptr, T weight = T(1),
                 const T* target_logits = nullptr) {
        check(d);
        const index_t npix = d.n * d.h * d.w, nl = d.n * d.patches();
        resize(npix, nl);
        T* gray = buf_.data();
        T* target = gray + npix;
        T* logits = target + npix;
        T* dlogits = logits + npix;
        T* mean = dlogits + npix;
        T* stdv = mean + nl;
        if (target_logits) {
            parallel_for<B>(npix, [=] VASOMIM_HOST_DEVICE(std::int64_t i) { target[i] = scalar::sigmoid(target_logits[i]); });
        } else {
            gray_reconstruction<B>(gray, static_cast<const T*>(nullptr), mean, stdv, img, d);
            s_.forward(target, gray, d.n, d.h, d.w, false);
            parallel_for<B>(npix, [=] VASOMIM_HOST_DEVICE(std::int64_t i) { target[i] = scalar::sigmoid(target[i]); });
        }
        if (d.norm_pix) {
            patch_stats<B>(mean, stdv, img, d);
        } else {
            backend_traits<B>::fill(mean, static_cast<std::size_t>(nl), T(0));
            backend_traits<B>::fill(stdv, static_cast<std::size_t>(nl), T(1));
        }
        gray_reconstruction<B>(gray, pred, mean, stdv, img, d);
        s_.forward(logits, gray, d.n, d.h, d.w, false);
        const T loss = bce_with_logits<B>(logits, target, npix, gray, dpred ? dlogits : nullptr, weight);
        if (dpred) {
            s_.backward(gray, dlogits);  // gray <- dL/d gray(I_hat)
            const index_t L = d.patches(), gw = d.grid_w(), p = d.p, c = d.c, h = d.h, w = d.w, ps = d.patch_size();
            parallel_for<B>(nl * ps, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
                const index_t k = i % ps, r = i / ps, b = r / L, l = r % L;
                const index_t y = (l / gw) * p + k / (p * c), x = (l % gw) * p + (k / c) % p;
                dpred[i] = gray[(b * h + y) * w + x] * stdv[r] / static_cast<T>(c);
            });
        }
        return loss;
    }

private:
    static void check(const consistency_dims& d) {
        if (d.n < 1 || d.c < 1 || d.p < 1 || d.h % d.p || d.w % d.p)
            throw shape_error("consistency_loss: " + std::to_string(d.n) + " image(s) of " + std::to_string(d.c) + " x " +
                              std::to_string(d.h) + " x " + std::to_string(d.w) + " are not cut evenly into patches of " +
                              std::to_string(d.p));
        if (d.h % 32 || d.w % 32)
            throw shape_error("consistency_loss: UNeXt-S needs image sides that are multiples of 32, got " +
                              std::to_string(d.h) + " x " + std::to_string(d.w));
    }
    void resize(index_t npix, index_t nl) {
        const index_t need = 4 * npix + 2 * nl;
        if (buf_.numel() < need) buf_ = tensor<T, B>(shape{need});
    }
    nn::unext<B, T>& s_;
    tensor<T, B> buf_;
};

}  // namespace vasomim::loss
