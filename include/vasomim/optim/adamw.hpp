#pragma once
// AdamW (Loshchilov & Hutter) with decoupled weight decay, following torch.optim.AdamW step for
// step (same update order and bias corrections in double), over a model's flat parameter buffer.
// Parameter groups come from the parameter table: fixed tensors are skipped, and weight decay
// applies only to entries marked `decay`: by default the released add_weight_decay groups (no decay
// for 1-D parameters and biases; cls_token and mask_token, 3-D, are decayed); exempt_tokens
// offers the rule of timm's no_weight_decay() lists, which also spare the *_token tensors.
// Runs of consecutive entries with the same group are updated by one kernel each.

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/io/safetensors.hpp"
#include "vasomim/core/scalar_math.hpp"
#include "vasomim/nn/parameters.hpp"

namespace vasomim::optim {

struct adamw_options {
    double lr = 1e-3, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.05;
    bool exempt_tokens = false;  ///< true: no decay for tensors named *_token (not as released)
};

template <backend_policy B, class T = float>
class adamw {
public:
    /// lr_scales (optional): one learning-rate factor per table entry, in table order (layer-wise
    /// decay, optim/layer_decay.hpp); an entry's lr is options().lr times its factor, as MAE's
    /// param_group["lr"] = lr * param_group["lr_scale"]. Empty: 1 for every entry.
    adamw(const nn::parameter_table& table, adamw_options opt = {}, const std::vector<double>& lr_scales = {})
        : table_(table), opt_(opt), m_(shape{table.size()}), v_(shape{table.size()}) {
        if (!lr_scales.empty() && lr_scales.size() != table.entries().size())
            throw shape_error("adamw: " + std::to_string(lr_scales.size()) + " lr scales for " +
                              std::to_string(table.entries().size()) + " parameter entries");
        // Consecutive trainable entries of one group share a span (the alignment padding between
        // them is zero and stays zero); a fixed tensor or a group change starts a new span.
        bool extend = false;
        std::size_t k = 0;
        for (const auto& e : table.entries()) {
            const double scale = lr_scales.empty() ? 1.0 : lr_scales[k];
            ++k;
            if (!e.trainable) {
                extend = false;
                continue;
            }
            const bool decay = e.decay && !(opt.exempt_tokens && e.name.ends_with("_token"));
            if (extend && spans_.back().decay == decay && spans_.back().lr_scale == scale)
                spans_.back().end = e.offset + e.numel();
            else
                spans_.push_back({e.offset, e.offset + e.numel(), decay, scale});
            extend = true;
        }
    }

    adamw_options& options() { return opt_; }
    const adamw_options& options() const { return opt_; }
    void set_lr(double lr) { opt_.lr = lr; }
    std::int64_t steps() const { return step_; }
    const tensor<T, B>& exp_avg() const { return m_; }
    const tensor<T, B>& exp_avg_sq() const { return v_; }

    /// One update of `params` from `grads` (flat buffers laid out by the table).
    void step(tensor<T, B>& params, const tensor<T, B>& grads) {
        if (params.size() != m_.size() || grads.size() != m_.size())
            throw shape_error("adamw::step: parameter buffer of " + std::to_string(params.size()) + " / gradient of " +
                              std::to_string(grads.size()) + " values, the table has " + std::to_string(m_.size()));
        ++step_;
        const double bc1 = 1.0 - std::pow(opt_.beta1, static_cast<double>(step_));
        const double bc2 = 1.0 - std::pow(opt_.beta2, static_cast<double>(step_));
        const T bc2_sqrt = static_cast<T>(std::sqrt(bc2));
        const T b1 = static_cast<T>(opt_.beta1), b2 = static_cast<T>(opt_.beta2), eps = static_cast<T>(opt_.eps);
        const T omb1 = static_cast<T>(1.0 - opt_.beta1), omb2 = static_cast<T>(1.0 - opt_.beta2);
        for (const auto& s : spans_) {
            const double lr = opt_.lr * s.lr_scale;
            const T step_size = static_cast<T>(lr / bc1);
            const T keep = static_cast<T>(1.0 - lr * (s.decay ? opt_.weight_decay : 0.0));
            T* p = params.data() + s.begin;
            const T* g = grads.data() + s.begin;
            T* m = m_.data() + s.begin;
            T* v = v_.data() + s.begin;
            parallel_for<B>(s.end - s.begin, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
                const T gi = g[i];
                T pi = p[i] * keep;
                const T mi = m[i] * b1 + gi * omb1;
                const T vi = v[i] * b2 + omb2 * gi * gi;
                m[i] = mi;
                v[i] = vi;
                const T denom = scalar::sqrt_(vi) / bc2_sqrt + eps;
                p[i] = pi - step_size * (mi / denom);
            });
        }
    }

    /// Saves the moments (as exp_avg.<name>, exp_avg_sq.<name>) and the step count to a
    /// safetensors file.
    void save(const std::string& path) const {
        const auto m = m_.to_host(), v = v_.to_host();
        std::vector<io::named_tensor> ts;
        for (const auto& e : table_.entries()) {
            if (!e.trainable) continue;
            for (int k = 0; k < 2; ++k) {
                const auto& src = k == 0 ? m : v;
                io::named_tensor t{(k == 0 ? "exp_avg." : "exp_avg_sq.") + e.name, e.shape, {}};
                t.data.assign(src.begin() + e.offset, src.begin() + e.offset + e.numel());
                ts.push_back(std::move(t));
            }
        }
        io::write_safetensors(path, ts, {{"step", std::to_string(step_)}, {"optimizer", "adamw"}});
    }

    /// Restores what save() wrote; throws config_error if a tensor is missing or differs in shape.
    void load(const std::string& path) {
        const auto f = io::read_safetensors(path);
        auto m = m_.to_host(), v = v_.to_host();
        for (const auto& e : table_.entries()) {
            if (!e.trainable) continue;
            for (int k = 0; k < 2; ++k) {
                const std::string name = (k == 0 ? "exp_avg." : "exp_avg_sq.") + e.name;
                const auto* t = f.find(name);
                if (!t || !(t->shape == e.shape))
                    throw config_error("adamw::load: '" + path + "' lacks '" + name + "' of shape " + e.shape.to_string());
                auto& dst = k == 0 ? m : v;
                for (index_t i = 0; i < e.numel(); ++i) dst[e.offset + i] = static_cast<T>(t->data[i]);
            }
        }
        const auto it = f.metadata.find("step");
        if (it == f.metadata.end()) throw config_error("adamw::load: '" + path + "' has no step count");
        step_ = std::stoll(it->second);
        m_ = tensor<T, B>::from_host(m, m_.shape());
        v_ = tensor<T, B>::from_host(v, v_.shape());
    }

private:
    struct span {
        index_t begin, end;
        bool decay;
        double lr_scale = 1.0;
    };

    const nn::parameter_table& table_;
    adamw_options opt_;
    tensor<T, B> m_, v_;
    std::vector<span> spans_;
    std::int64_t step_ = 0;
};

}  // namespace vasomim::optim
