#pragma once
// Hessian vesselness: Gaussian derivatives, Hessian, eigenvalues, Frangi / Sato / Meijering
// (scikit-image >= 0.20 semantics) and the VasoMIM pseudo-label pipeline.

#include "vasomim/vessel/boundary.hpp"
#include "vasomim/vessel/eigenvalues.hpp"
#include "vasomim/vessel/frangi.hpp"
#include "vasomim/vessel/gaussian.hpp"
#include "vasomim/vessel/hessian.hpp"
#include "vasomim/vessel/image_view.hpp"
#include "vasomim/vessel/meijering.hpp"
#include "vasomim/vessel/pseudo_label.hpp"
#include "vasomim/vessel/ridge_filter.hpp"
#include "vasomim/vessel/sato.hpp"
