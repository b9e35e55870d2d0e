#pragma once
// The composed pre-training model (DESIGN section 3):
//   masked_image_model<Backend, Encoder, Masking, Guidance, Objective>
// One training step = guidance -> mask -> encoder -> decoder -> loss -> backward -> optimiser step.
// MAE and the paper's ablations are type aliases (bottom of this file), not flags.

#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include <xtensor/xtensor.hpp>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/error.hpp"
#include "vasomim/masking/anatomy_guided.hpp"
#include "vasomim/masking/random.hpp"
#include "vasomim/model/guidance.hpp"
#include "vasomim/model/mae.hpp"
#include "vasomim/optim/adamw.hpp"

namespace vasomim {

/// Encoder families (the network of the composed model).
namespace encoder {
/// ViT encoder + MAE decoder (model::mae), configured at run time by a model::mae_config.
struct vit {
    template <class B, class T>
    using network = model::mae<B, T>;
};
}  // namespace encoder

/// Training objectives.
namespace objective {
/// L = L_rec: the masked reconstruction loss (norm-pix targets when the config says so).
struct reconstruction {
    static constexpr bool uses_consistency = false;
};
}  // namespace objective

namespace model {

/// Losses of one step (for logging).
struct step_losses {
    double loss = 0, rec = 0, cons = 0;
};

/// What a training step needs besides the images: where training stands and the learning rate.
struct step_context {
    std::uint64_t step = 0;                          ///< global iteration (keys the masks)
    masking::progress at = masking::progress::from_ratio(1.0);  ///< drives beta_e
    double lr = 0;                                   ///< learning rate of this iteration
    bool apply_update = true;                        ///< false inside a gradient-accumulation cycle
    double accumulation_scale = 1.0;                 ///< 1 / accumulation steps
    double clip_grad_norm = 0;                       ///< 0: no clipping
};

template <backend_policy B, class Encoder, class Masking, class Guidance, class Objective>
class masked_image_model {
    static_assert(!Objective::uses_consistency || Guidance::uses_segmentor,
                  "vasomim: the consistency objective needs a guidance policy with a segmentor "
                  "(guidance::segmentor or guidance::filter_and_segmentor)");
    static_assert(!Masking::needs_guidance || Guidance::uses_filter || Guidance::uses_segmentor,
                  "vasomim: anatomy-guided masking needs a guidance policy other than guidance::none");

public:
    using backend_type = B;
    using network_type = typename Encoder::template network<B, float>;

    masked_image_model(const mae_config& config, Masking masking, optim::adamw_options optimiser = {})
        : net_(config), masking_(masking), opt_(net_.table(), optimiser) {}

    network_type& network() { return net_; }
    const network_type& network() const { return net_; }
    optim::adamw<B, float>& optimiser() { return opt_; }
    const optim::adamw<B, float>& optimiser() const { return opt_; }
    const Masking& masking_policy() const { return masking_; }
    const masking::patch_mask<B>& last_mask() const { return mask_; }
    const tensor<float, B>& last_guidance() const { return guidance_; }
    const mae_config& config() const { return net_.config(); }

    /// MAE initialisation of every parameter from `seed`.
    void init(std::uint64_t seed) { net_.init(seed); }

    /// One training step on a batch: images N x 3 x S x S (normalised), pseudo-label masks
    /// N x S x S in {0, 1} (ignored by guidance::none). Throws numeric_error, before any parameter
    /// changes, if the loss is not finite.
    step_losses train_step(const xt::xtensor<float, 4>& images, const xt::xtensor<float, 3>& masks,
                           const step_context& ctx) {
        const mae_config& cfg = net_.config();
        const auto n = static_cast<index_t>(images.shape()[0]);
        if (images.shape()[1] != std::size_t(cfg.in_chans) || images.shape()[2] != std::size_t(cfg.img_size) ||
            images.shape()[3] != std::size_t(cfg.img_size))
            throw shape_error("train_step: images are " + std::to_string(n) + " x " + std::to_string(images.shape()[1]) +
                              " x " + std::to_string(images.shape()[2]) + " x " + std::to_string(images.shape()[3]) +
                              ", the model expects " + std::to_string(cfg.in_chans) + " x " +
                              std::to_string(cfg.img_size) + " x " + std::to_string(cfg.img_size));
        upload(images_, images.data(), shape{n, cfg.in_chans, cfg.img_size, cfg.img_size});

        const masking::step_info info{ctx.step, ctx.at};
        if constexpr (Masking::needs_guidance) {
            if (masks.shape()[0] != std::size_t(n) || masks.shape()[1] != std::size_t(cfg.img_size) ||
                masks.shape()[2] != std::size_t(cfg.img_size))
                throw shape_error("train_step: guidance masks do not match the batch of images");
            upload(labels_, masks.data(), shape{n, cfg.img_size, cfg.img_size});
            if (guidance_.shape() != labels_.shape()) guidance_ = tensor<float, B>(labels_.shape());
            static_assert(!Guidance::uses_segmentor, "segmentor guidance is composed in model/vasomim_model.hpp");
            guidance::guidance_map<B, float>(guidance_.data(), labels_.data(), nullptr, guidance_.numel(),
                                             Guidance::w_b, Guidance::w_m);
            mask_ = masking_.sample_maps(guidance_, cfg.patch_size, info);
        } else {
            mask_ = masking_.template sample<B>(n, cfg.num_patches(), info);
        }

        if (accumulated_ == 0) net_.zero_grad();
        const float rec = net_.forward(images_, mask_.ids_keep, mask_.ids_restore);
        if (!std::isfinite(rec))
            throw numeric_error("non-finite loss " + std::to_string(rec) + " at step " + std::to_string(ctx.step) +
                                "; parameters left unchanged");
        net_.backward(static_cast<float>(ctx.accumulation_scale));
        ++accumulated_;
        if (ctx.apply_update) {
            if (ctx.clip_grad_norm > 0) clip_gradients(ctx.clip_grad_norm);
            opt_.set_lr(ctx.lr);
            opt_.step(net_.params(), net_.grads());
            accumulated_ = 0;
        }
        return {rec, rec, 0.0};
    }

    /// L2 norm of the accumulated gradient.
    double gradient_norm() const {
        return std::sqrt(backend_traits<B>::transform_reduce(net_.grads().data(), net_.grads().size(), 0.0,
                                                             square_to_double{}, plus{}));
    }

    /// Scales the accumulated gradient so that its L2 norm is at most max_norm (torch's
    /// clip_grad_norm_ with its 1e-6 guard).
    void clip_gradients(double max_norm) {
        const double norm = gradient_norm();
        if (!(norm > max_norm)) return;
        const float s = static_cast<float>(max_norm / (norm + 1e-6));
        float* g = net_.grads().data();
        parallel_for<B>(net_.grads().numel(), [=] VASOMIM_HOST_DEVICE(std::int64_t i) { g[i] *= s; });
    }

private:
    struct square_to_double {
        VASOMIM_HOST_DEVICE double operator()(float x) const { return double(x) * double(x); }
    };

    static void upload(tensor<float, B>& dst, const float* host, const shape& s) {
        if (dst.shape() != s) dst = tensor<float, B>(s);
        backend_traits<B>::copy_from_host(host, dst.size(), dst.data());
    }

    network_type net_;
    Masking masking_;
    optim::adamw<B, float> opt_;
    tensor<float, B> images_, labels_, guidance_;
    masking::patch_mask<B> mask_;
    int accumulated_ = 0;
};

/// MAE: uniform random masking, reconstruction only.
template <backend_policy B>
using mae_pretraining = masked_image_model<B, encoder::vit, masking::random, guidance::none, objective::reconstruction>;

/// Anatomy-guided masking (linear beta schedule, as released) steered by the ridge-filter
/// pseudo-labels, reconstruction only: the paper's "guided masking" ablation with filter guidance.
template <backend_policy B>
using filter_guided_pretraining = masked_image_model<B, encoder::vit, masking::anatomy_guided<masking::schedule::linear>,
                                                     guidance::filter, objective::reconstruction>;

}  // namespace model
}  // namespace vasomim
