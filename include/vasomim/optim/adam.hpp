#pragma once
// Minimal Adam (Kingma & Ba; torch.optim.Adam without weight decay or amsgrad) over a flat parameter
// buffer, one kernel per step, plus the poly learning-rate decay lr * (1 - t / T)^0.9 the UNeXt
// segmentor uses. (The transformer issue's optim/adamw.hpp was not on this branch when this was
// written; the two can merge: Adam is AdamW with weight decay 0.)

#include <cmath>
#include <cstdint>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/tensor.hpp"
#include "vasomim/core/scalar_math.hpp"
#include "vasomim/nn/parameters.hpp"

namespace vasomim::optim {

struct adam_config {
    double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};

/// poly schedule: base * (1 - step / total)^power (0 at and after total).
inline double poly_lr(double base, std::int64_t step, std::int64_t total, double power = 0.9) {
    if (step >= total) return 0.0;
    return base * std::pow(1.0 - static_cast<double>(step) / static_cast<double>(total), power);
}

/// Adam state (first and second moments) for the trainable entries of a parameter table; entries
/// marked not trainable (BatchNorm running statistics) are left untouched.
template <backend_policy B, class T>
class adam {
public:
    adam(const nn::parameter_table& table, adam_config cfg = {}) : cfg_(cfg) {
        const index_t n = table.size();
        m_ = tensor<T, B>(shape{n});
        v_ = tensor<T, B>(shape{n});
        std::vector<T> mask(static_cast<std::size_t>(n), T(0));
        for (const auto& e : table.entries())
            if (e.trainable)
                for (index_t j = 0; j < e.numel(); ++j) mask[static_cast<std::size_t>(e.offset + j)] = T(1);
        mask_ = tensor<T, B>::from_host(mask, shape{n});
    }

    /// One step at learning rate lr: p -= lr * m_hat / (sqrt(v_hat) + eps).
    void step(tensor<T, B>& params, const tensor<T, B>& grads, double lr) {
        ++t_;
        const T b1 = static_cast<T>(cfg_.beta1), b2 = static_cast<T>(cfg_.beta2), eps = static_cast<T>(cfg_.eps);
        const T c1 = static_cast<T>(1.0 - std::pow(cfg_.beta1, static_cast<double>(t_)));
        const T c2 = static_cast<T>(1.0 - std::pow(cfg_.beta2, static_cast<double>(t_)));
        const T a = static_cast<T>(lr);
        T* p = params.data();
        const T* g = grads.data();
        T* m = m_.data();
        T* v = v_.data();
        const T* mk = mask_.data();
        parallel_for<B>(params.numel(), [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
            if (mk[i] == T(0)) return;
            const T gi = g[i];
            m[i] = b1 * m[i] + (T(1) - b1) * gi;
            v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
            p[i] -= a * (m[i] / c1) / (scalar::sqrt_(v[i] / c2) + eps);
        });
    }
    std::int64_t steps() const { return t_; }

private:
    adam_config cfg_;
    tensor<T, B> m_, v_, mask_;
    std::int64_t t_ = 0;
};

}  // namespace vasomim::optim
