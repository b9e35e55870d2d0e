#pragma once
// Umbrella header: the whole public library.

#include "vasomim/core/config.hpp"
#include "vasomim/core/error.hpp"
#include "vasomim/core/functional.hpp"
#include "vasomim/core/philox.hpp"
#include "vasomim/core/shape.hpp"
#include "vasomim/core/tensor.hpp"
#include "vasomim/core/tensor_view.hpp"

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/backend/backends.hpp"
