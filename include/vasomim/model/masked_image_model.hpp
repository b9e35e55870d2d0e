#pragma once
// The composed pre-training model (DESIGN section 3):
//   masked_image_model<Backend, Encoder, Masking, Guidance, Objective>
// One training step = guidance -> mask -> encoder -> decoder -> loss -> backward -> optimiser step.
// MAE and the paper's ablations are type aliases (bottom of this file), not flags.

#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <type_traits>

#include <xtensor/xtensor.hpp>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/error.hpp"
#include "vasomim/io/safetensors.hpp"
#include "vasomim/io/state_dict.hpp"
#include "vasomim/loss/consistency.hpp"
#include "vasomim/masking/anatomy_guided.hpp"
#include "vasomim/masking/random.hpp"
#include "vasomim/model/guidance.hpp"
#include "vasomim/model/mae.hpp"
#include "vasomim/nn/unext.hpp"
#include "vasomim/nn/unext_weights.hpp"
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
/// L = L_rec + weight * L_cons with the anatomical consistency loss
/// BCEWithLogits(S(I_hat), sigmoid(S(I))) through the frozen segmentor S (VasoMIM: weight 1).
struct reconstruction_plus_consistency {
    static constexpr bool uses_consistency = true;
    double weight = 1.0;
};
}  // namespace objective

namespace model {

namespace detail {
/// x^2 in double (the gradient norm). At namespace scope, not private: nvcc's generated kernel
/// stubs must be able to name every functor a Thrust algorithm is instantiated with.
struct square_to_double {
    VASOMIM_HOST_DEVICE double operator()(float x) const { return double(x) * double(x); }
};
}  // namespace detail

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
    /// Position of the batch's first sample in the step's global batch (data parallelism: rank r
    /// of b samples passes r * b); keys the masks, see masking::step_info.
    std::int64_t first_sample = 0;
    /// Called on the accumulated gradient buffer (backend memory, `n` floats) after the backward
    /// pass of an update step, before clipping and the optimiser step: data parallelism averages
    /// it across ranks here (dist::gradient_averager). Empty: nothing.
    std::function<void(float* grads, index_t n)> reduce_gradients{};
    /// Called during the backward pass of an update step whenever the gradients at offsets
    /// [from, n) of the buffer are final (from decreasing to 0), so that their average can start
    /// while the backward pass goes on (dist::overlapped_gradient_sum); reduce_gradients then
    /// waits for it. Empty: nothing.
    std::function<void(float* grads, index_t from, index_t n)> gradients_final_from{};
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

    using segmentor_type = nn::unext<B, float>;

    masked_image_model(const mae_config& config, Masking masking, optim::adamw_options optimiser = {},
                       Objective objective = {})
        : net_(config), masking_(masking), objective_(objective), opt_(net_.table(), optimiser) {
        if constexpr (Guidance::uses_segmentor) {
            if (config.img_size % 32 != 0)
                throw config_error("segmentor guidance: UNeXt-S needs an image size that is a multiple of 32, got " +
                                   std::to_string(config.img_size));
            // as released: S takes the encoder's channels (3: the ImageNet-normalised image)
            configure_segmentor(nn::unext_config{.in_channels = config.in_chans});
        }
    }
    // The consistency loss keeps a reference to the segmentor member: the model stays in place.
    masked_image_model(const masked_image_model&) = delete;
    masked_image_model& operator=(const masked_image_model&) = delete;

    network_type& network() { return net_; }
    const network_type& network() const { return net_; }
    optim::adamw<B, float>& optimiser() { return opt_; }
    const optim::adamw<B, float>& optimiser() const { return opt_; }
    const Masking& masking_policy() const { return masking_; }
    const masking::patch_mask<B>& last_mask() const { return mask_; }
    const tensor<float, B>& last_guidance() const { return guidance_; }
    const mae_config& config() const { return net_.config(); }
    const Objective& objective_policy() const { return objective_; }

    /// The frozen co-guidance segmentor (guidance::segmentor and guidance::filter_and_segmentor
    /// only): load trained weights before training, e.g. with load_segmentor().
    segmentor_type& segmentor() requires Guidance::uses_segmentor { return segmentor_; }
    const segmentor_type& segmentor() const requires Guidance::uses_segmentor { return segmentor_; }
    /// Replaces the co-guidance segmentor by a freshly initialised one of configuration `cfg`:
    /// in_channels = the images' channels (the released layout, the default) or 1 (a segmentor of
    /// the channel mean, for users who trained one on gray images). Load its weights afterwards.
    void configure_segmentor(nn::unext_config cfg) requires Guidance::uses_segmentor {
        const index_t c = net_.config().in_chans;
        if (cfg.num_classes != 1)
            throw config_error("configure_segmentor: the co-guidance segmentor gives 1 logit map, not " +
                               std::to_string(cfg.num_classes));
        if (cfg.in_channels != c && cfg.in_channels != 1)
            throw config_error("configure_segmentor: a segmentor of " + std::to_string(cfg.in_channels) +
                               " input channels for images of " + std::to_string(c) + " (use " + std::to_string(c) +
                               ", as released, or 1)");
        segmentor_ = segmentor_type(cfg);
        segmentor_.init(0);
    }

    /// Loads the co-guidance segmentor's weights from a safetensors state dict (any float dtype):
    /// a UNeXt-S file (state_dict names, running statistics included, e.g. the released
    /// segmodel/unext.pth converted by tools/convert_torch_checkpoint.py), or the segmentor inside
    /// a released VasoMIM state dict ("seg_model.") or inside this library's pre-training checkpoint
    /// ("segmentor."), told apart by their names; "module." prefixes are stripped and integer
    /// buffers (num_batches_tracked) ignored, said on `notes`. Every mismatch is reported at once
    /// (checkpoint_mismatch_error); a file for the other channel count is refused saying which it
    /// is. Nothing is loaded when anything does not fit.
    void load_segmentor(const std::string& path, std::ostream* notes = nullptr) requires Guidance::uses_segmentor {
        nn::load_unext(segmentor_, io::read_safetensors(path), path, std::nullopt, notes, [](std::int64_t c) {
            const auto n = std::to_string(c);
            return c == 1 ? "to use it on the channel mean of the images, configure a 1-channel segmentor "
                            "(configure_segmentor({.in_channels = 1}); vasomim-pretrain --segmentor-channels 1)"
                          : "configure a " + n + "-channel segmentor (configure_segmentor({.in_channels = " + n +
                                "}); vasomim-pretrain --segmentor-channels " + n + ")";
        });
    }

    /// Loads the network's parameters (MAE/timm names) from a safetensors state dict, e.g. a
    /// released MAE or VasoMIM checkpoint converted by tools/convert_torch_checkpoint.py: every
    /// parameter must be there with its shape ("module." stripped); tensors the network does not
    /// have (a VasoMIM state dict's seg_model.*, integer buffers) are ignored and said on `notes`.
    /// The optimiser state is not touched. Nothing is loaded when anything does not fit.
    void load_weights(const std::string& path, std::ostream* notes = nullptr) {
        io::load_parameters(path, net_.table(), net_.params(), io::state_dict_options{{}, false, notes});
    }

    /// S(I) of the last step [n, 1, S, S] (empty without a segmentor).
    const tensor<float, B>& last_segmentor_logits() const { return logits_; }

    /// MAE initialisation of every parameter from `seed`.
    void init(std::uint64_t seed) { net_.init(seed); }

    /// One training step on a batch: images N x 3 x S x S (normalised), pseudo-label masks
    /// N x S x S in {0, 1} (ignored without filter guidance). Throws numeric_error, before any
    /// parameter changes, if a loss is not finite.
    step_losses train_step(const xt::xtensor<float, 4>& images, const xt::xtensor<float, 3>& masks,
                           const step_context& ctx) {
        prepare(images, masks);
        const index_t n = images_.dim(0);
        const masking::step_info info{ctx.step, ctx.at, ctx.first_sample};
        if constexpr (Masking::needs_guidance)
            mask_ = masking_.sample_maps(guidance_, net_.config().patch_size, info);
        else
            mask_ = masking_.template sample<B>(n, net_.config().num_patches(), info);
        return optimise(ctx);
    }

    /// The same step on a given mask (e.g. one made by a reference implementation, see
    /// masking::patch_mask_from_shuffle); the guidance map is still computed (last_guidance()) but
    /// does not choose the mask. Throws shape_error for a mask of another batch or patch count and
    /// value_error when its parts disagree (masking::check_consistent).
    step_losses train_step(const xt::xtensor<float, 4>& images, const xt::xtensor<float, 3>& masks,
                           const masking::patch_mask<B>& mask, const step_context& ctx) {
        const auto n = static_cast<index_t>(images.shape()[0]);
        if (mask.batch() != n || mask.num_patches() != net_.config().num_patches())
            throw shape_error("train_step: the given mask is for " + std::to_string(mask.batch()) + " x " +
                              std::to_string(mask.num_patches()) + " patches, the batch has " + std::to_string(n) +
                              " x " + std::to_string(net_.config().num_patches()));
        masking::check_consistent(mask);
        prepare(images, masks);
        mask_ = mask;
        return optimise(ctx);
    }

    /// A step on a given mask without pseudo-labels: for guidance policies that do not read them
    /// (guidance::none, guidance::segmentor).
    step_losses train_step(const xt::xtensor<float, 4>& images, const masking::patch_mask<B>& mask,
                           const step_context& ctx)
        requires(!Guidance::uses_filter)
    {
        return train_step(images, xt::xtensor<float, 3>{}, mask, ctx);
    }

    /// L2 norm of the accumulated gradient.
    double gradient_norm() const {
        return std::sqrt(backend_traits<B>::transform_reduce(net_.grads().data(), net_.grads().size(), 0.0,
                                                             detail::square_to_double{}, plus{}));
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
    /// Uploads the batch and computes the guidance map G (and S(I) with a segmentor).
    void prepare(const xt::xtensor<float, 4>& images, const xt::xtensor<float, 3>& masks) {
        const mae_config& cfg = net_.config();
        const auto n = static_cast<index_t>(images.shape()[0]);
        if (n < 1 || images.shape()[1] != std::size_t(cfg.in_chans) || images.shape()[2] != std::size_t(cfg.img_size) ||
            images.shape()[3] != std::size_t(cfg.img_size))
            throw shape_error("train_step: images are " + std::to_string(n) + " x " + std::to_string(images.shape()[1]) +
                              " x " + std::to_string(images.shape()[2]) + " x " + std::to_string(images.shape()[3]) +
                              ", the model expects N x " + std::to_string(cfg.in_chans) + " x " +
                              std::to_string(cfg.img_size) + " x " + std::to_string(cfg.img_size));
        upload(images_, images.data(), shape{n, cfg.in_chans, cfg.img_size, cfg.img_size});
        const shape map_shape{n, cfg.img_size, cfg.img_size};
        if constexpr (Guidance::uses_filter) {
            if (masks.shape()[0] != std::size_t(n) || masks.shape()[1] != std::size_t(cfg.img_size) ||
                masks.shape()[2] != std::size_t(cfg.img_size))
                throw shape_error("train_step: the pseudo-label masks (" + std::to_string(masks.shape()[0]) + " x " +
                                  std::to_string(masks.shape()[1]) + " x " + std::to_string(masks.shape()[2]) +
                                  ") do not match the batch of images");
            upload(labels_, masks.data(), map_shape);
        }
        if constexpr (Guidance::uses_segmentor) {
            if (logits_.shape() != map_shape) logits_ = tensor<float, B>(map_shape);
            consistency_.segment(logits_.data(), images_.data(), dims());
        }
        if constexpr (Guidance::uses_filter || Guidance::uses_segmentor) {
            if (guidance_.shape() != map_shape) guidance_ = tensor<float, B>(map_shape);
            guidance::guidance_map<Guidance, B>(guidance_.data(), Guidance::uses_filter ? labels_.data() : nullptr,
                                                Guidance::uses_segmentor ? logits_.data() : nullptr, guidance_.numel());
        }
    }

    /// Forward, losses, backward and (at the end of an accumulation cycle) the optimiser step.
    step_losses optimise(const step_context& ctx) {
        const mae_config& cfg = net_.config();
        const index_t n = images_.dim(0), L = cfg.num_patches(), ppc = cfg.patch_values();
        if (accumulated_ == 0) net_.zero_grad();
        const float rec = net_.forward(images_, mask_.ids_keep, mask_.ids_restore);
        float cons = 0;
        const float* dpred = nullptr;
        if constexpr (Objective::uses_consistency) {
            if (pred_.numel() != n * L * ppc) {
                pred_ = tensor<float, B>(shape{n, L, ppc});
                dpred_ = tensor<float, B>(shape{n, L, ppc});
            }
            detail::patch_predictions<B>(pred_.data(), static_cast<const float*>(net_.acts().pred), n, L, ppc);
            const auto w = static_cast<float>(objective_.weight * ctx.accumulation_scale);
            cons = consistency_(pred_.data(), images_.data(), dims(), dpred_.data(), w, logits_.data());
            dpred = dpred_.data();
        }
        double total = rec;
        if constexpr (Objective::uses_consistency) total += objective_.weight * double(cons);
        if (!std::isfinite(total))
            throw numeric_error("non-finite loss at step " + std::to_string(ctx.step) + " (reconstruction " +
                                std::to_string(rec) + ", consistency " + std::to_string(cons) +
                                "); parameters left unchanged");
        std::function<void(index_t)> final_from;
        if (ctx.apply_update && ctx.gradients_final_from)
            final_from = [&](index_t from) { ctx.gradients_final_from(net_.grads().data(), from, net_.grads().numel()); };
        net_.backward(static_cast<float>(ctx.accumulation_scale), dpred, final_from);
        ++accumulated_;
        if (ctx.apply_update) {
            if (ctx.reduce_gradients) ctx.reduce_gradients(net_.grads().data(), net_.grads().numel());
            if (ctx.clip_grad_norm > 0) clip_gradients(ctx.clip_grad_norm);
            opt_.set_lr(ctx.lr);
            opt_.step(net_.params(), net_.grads());
            accumulated_ = 0;
        }
        return {total, rec, cons};
    }

    loss::consistency_dims dims() const {
        const mae_config& cfg = net_.config();
        return {images_.dim(0), cfg.in_chans, cfg.img_size, cfg.img_size, cfg.patch_size, cfg.norm_pix_loss};
    }

    static void upload(tensor<float, B>& dst, const float* host, const shape& s) {
        if (dst.shape() != s) dst = tensor<float, B>(s);
        backend_traits<B>::copy_from_host(host, dst.size(), dst.data());
    }

    /// Placeholder for the segmentor and consistency members of models without a segmentor.
    struct no_segmentor {
        no_segmentor() = default;
        template <class A>
        explicit no_segmentor(A&) {}
    };
    using segmentor_member = std::conditional_t<Guidance::uses_segmentor, segmentor_type, no_segmentor>;
    using consistency_member = std::conditional_t<Guidance::uses_segmentor, loss::consistency_loss<B, float>, no_segmentor>;

    network_type net_;
    Masking masking_;
    Objective objective_;
    optim::adamw<B, float> opt_;
    segmentor_member segmentor_{};
    consistency_member consistency_{segmentor_};
    tensor<float, B> images_, labels_, guidance_, logits_, pred_, dpred_;
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

/// VasoMIM as released: anatomy-guided masking (linear beta schedule) steered by
/// G = 0.5 B + 0.5 sigmoid(S(I)), and L = L_rec + L_cons.
template <backend_policy B>
using vasomim_pretraining = masked_image_model<B, encoder::vit, masking::anatomy_guided<masking::schedule::linear>,
                                               guidance::filter_and_segmentor, objective::reconstruction_plus_consistency>;

/// Ablation "guided masking only": VasoMIM's masking and guidance, reconstruction loss only.
template <backend_policy B>
using guided_masking_pretraining = masked_image_model<B, encoder::vit, masking::anatomy_guided<masking::schedule::linear>,
                                                      guidance::filter_and_segmentor, objective::reconstruction>;

/// Ablation "consistency only": MAE's random masking plus the anatomical consistency loss.
template <backend_policy B>
using consistency_pretraining = masked_image_model<B, encoder::vit, masking::random, guidance::segmentor,
                                                   objective::reconstruction_plus_consistency>;

}  // namespace model
}  // namespace vasomim
