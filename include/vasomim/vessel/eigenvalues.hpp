#pragma once
// Eigenvalues of the symmetric 2 x 2 Hessian at every pixel, in decreasing order:
// (Hrr + Hcc)/2 +- sqrt(Hrc^2 + ((Hrr - Hcc)/2)^2), the closed form scikit-image uses.

#include <cmath>
#include <cstdint>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/tensor.hpp"
#include "vasomim/vessel/hessian.hpp"

namespace vasomim::vessel {

/// l1 >= l2 of [[rr, rc], [rc, cc]].
template <class R>
VASOMIM_HOST_DEVICE inline void eigenvalues2(R rr, R rc, R cc, R& l1, R& l2) {
    using std::sqrt;
    const R mean = (rr + cc) / R(2);
    const R half_diff = (rr - cc) / R(2);
    const R h = sqrt(rc * rc + half_diff * half_diff);
    l1 = mean + h;
    l2 = mean - h;
}

template <class R, class B>
struct eigen_planes {
    tensor<R, B> l1, l2;  ///< decreasing: l1 >= l2
};

namespace detail {
template <class R>
struct eigen_kernel {
    const R *rr, *rc, *cc;
    R *l1, *l2;
    VASOMIM_HOST_DEVICE void operator()(std::int64_t i) const { eigenvalues2(rr[i], rc[i], cc[i], l1[i], l2[i]); }
};
}  // namespace detail

/// Per-pixel eigenvalues of Hessian planes.
template <class R, class B>
eigen_planes<R, B> hessian_eigenvalues(const hessian_planes<R, B>& h) {
    eigen_planes<R, B> e{tensor<R, B>(h.rr.shape()), tensor<R, B>(h.rr.shape())};
    parallel_for<B>(h.rr.numel(), detail::eigen_kernel<R>{h.rr.data(), h.rc.data(), h.cc.data(), e.l1.data(), e.l2.data()});
    return e;
}

}  // namespace vasomim::vessel
