#pragma once
// The anatomical consistency loss of VasoMIM:
//   L_cons = BCEWithLogits(S(I_hat), sigmoid(S(I))), mean over pixels, target detached,
// with S the segmentor frozen in eval mode (BatchNorm running statistics) and
//   I_hat = unpatchify(P * sqrt(var + 1e-6) + mean),
// P the decoder's patch predictions [n, L, p*p*c] in MAE order (row, column, channel inside a
// patch) and mean / var (unbiased) the per-patch statistics of the target image I (norm-pix
// de-normalisation). As released, S takes the c channels of I and I_hat themselves (UNeXt-S with
// in_channels 3; after ImageNet normalisation the channels of I differ, and those of I_hat always
// do), so the gradient reaches each channel of I_hat through its own weights. A 1-channel
// segmentor (in_channels 1, a configuration) sees the channel mean of both instead, and the gray
// gradient reaches every channel with weight 1/c. The gradient flows through S into I_hat and from
// there into P.

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

/// out[b, ch, y, x] = unpatchify(pred * std + mean): the reconstruction I_hat [n, c, h, w].
template <backend_policy B, class T>
void reconstruction(T* out, const T* pred, const T* mean, const T* stdv, const consistency_dims& d) {
    const index_t L = d.patches(), gw = d.grid_w(), p = d.p, c = d.c, h = d.h, w = d.w, ps = d.patch_size();
    parallel_for<B>(d.n * c * h * w, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
        const index_t x = i % w, y = (i / w) % h, ch = (i / (w * h)) % c, b = i / (w * h * c);
        const index_t r = b * L + (y / p) * gw + x / p;
        out[i] = pred[r * ps + ((y % p) * p + x % p) * c + ch] * stdv[r] + mean[r];
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
    explicit consistency_loss(nn::unext<B, T>& segmentor) : s_(segmentor) {}

    /// S(I): the frozen segmentor's logits [n, 1, h, w] for img [n, c, h, w] (its channel mean for a
    /// 1-channel segmentor).
    void segment(T* logits, const T* img, const consistency_dims& d) {
        check(d);
        if (gray_input(d)) {
            resize(d.n * d.h * d.w, d.n * d.patches());
            T* gray = buf_.data();
            gray_reconstruction<B>(gray, static_cast<const T*>(nullptr), static_cast<const T*>(nullptr),
                                   static_cast<const T*>(nullptr), img, d);
            s_.forward(logits, gray, d.n, d.h, d.w, false);
        } else {
            s_.forward(logits, img, d.n, d.h, d.w, false);
        }
    }

    /// Returns L_cons; dpred [n, L, p*p*c] (may be null) is overwritten with weight * dL/dP.
    /// target_logits: S(I) when the caller already has it (e.g. from segment() for the guidance
    /// map); null: computed here.
    T operator()(const T* pred, const T* img, const consistency_dims& d, T* dpred = nullptr, T weight = T(1),
                 const T* target_logits = nullptr) {
        check(d);
        const bool gray_in = gray_input(d);
        const index_t npix = d.n * d.h * d.w, nl = d.n * d.patches();
        resize(npix, nl);
        T* in = buf_.data();  // the segmentor's input: gray [n, h, w] or I_hat [n, c, h, w]
        T* target = in + npix * (gray_in ? 1 : d.c);
        T* logits = target + npix;
        T* dlogits = logits + npix;
        T* mean = dlogits + npix;
        T* stdv = mean + nl;
        if (target_logits) {
            parallel_for<B>(npix, [=] VASOMIM_HOST_DEVICE(std::int64_t i) { target[i] = scalar::sigmoid(target_logits[i]); });
        } else {
            segment(target, img, d);
            parallel_for<B>(npix, [=] VASOMIM_HOST_DEVICE(std::int64_t i) { target[i] = scalar::sigmoid(target[i]); });
        }
        if (d.norm_pix) {
            patch_stats<B>(mean, stdv, img, d);
        } else {
            backend_traits<B>::fill(mean, static_cast<std::size_t>(nl), T(0));
            backend_traits<B>::fill(stdv, static_cast<std::size_t>(nl), T(1));
        }
        if (gray_in)
            gray_reconstruction<B>(in, pred, mean, stdv, img, d);
        else
            reconstruction<B>(in, pred, mean, stdv, d);
        s_.forward(logits, in, d.n, d.h, d.w, false);
        // bce_with_logits uses `in` as scratch: I_hat is not needed after the forward
        const T loss = bce_with_logits<B>(logits, target, npix, in, dpred ? dlogits : nullptr, weight);
        if (dpred) {
            s_.backward(in, dlogits);  // in <- dL/dI_hat (or dL/d gray(I_hat))
            const index_t L = d.patches(), gw = d.grid_w(), p = d.p, c = d.c, h = d.h, w = d.w, ps = d.patch_size();
            const T* g = in;
            if (gray_in) {
                parallel_for<B>(nl * ps, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
                    const index_t k = i % ps, r = i / ps, b = r / L, l = r % L;
                    const index_t y = (l / gw) * p + k / (p * c), x = (l % gw) * p + (k / c) % p;
                    dpred[i] = g[(b * h + y) * w + x] * stdv[r] / static_cast<T>(c);
                });
            } else {
                parallel_for<B>(nl * ps, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
                    const index_t k = i % ps, r = i / ps, b = r / L, l = r % L;
                    const index_t y = (l / gw) * p + k / (p * c), x = (l % gw) * p + (k / c) % p, ch = k % c;
                    dpred[i] = g[((b * c + ch) * h + y) * w + x] * stdv[r];
                });
            }
        }
        return loss;
    }

private:
    /// true: a 1-channel segmentor on c-channel images (channel means); false: S takes the c channels.
    bool gray_input(const consistency_dims& d) const { return s_.config().in_channels != d.c; }

    void check(const consistency_dims& d) const {
        if (s_.config().num_classes != 1)
            throw config_error("consistency_loss: the segmentor must give 1 logit map, it gives " +
                               std::to_string(s_.config().num_classes));
        if (s_.config().in_channels != d.c && s_.config().in_channels != 1)
            throw shape_error("consistency_loss: the segmentor takes " + std::to_string(s_.config().in_channels) +
                              " channels, the images have " + std::to_string(d.c) + " (it must take " +
                              std::to_string(d.c) + ", or 1 for their channel mean)");
        if (d.n < 1 || d.c < 1 || d.p < 1 || d.h % d.p || d.w % d.p)
            throw shape_error("consistency_loss: " + std::to_string(d.n) + " image(s) of " + std::to_string(d.c) + " x " +
                              std::to_string(d.h) + " x " + std::to_string(d.w) + " are not cut evenly into patches of " +
                              std::to_string(d.p));
        if (d.h % 32 || d.w % 32)
            throw shape_error("consistency_loss: UNeXt-S needs image sides that are multiples of 32, got " +
                              std::to_string(d.h) + " x " + std::to_string(d.w));
    }
    void resize(index_t npix, index_t nl) {
        const index_t need = (3 + s_.config().in_channels) * npix + 2 * nl;
        if (buf_.numel() < need) buf_ = tensor<T, B>(shape{need});
    }
    nn::unext<B, T>& s_;
    tensor<T, B> buf_;
};

}  // namespace vasomim::loss
