#pragma once
// Optimisers and learning-rate schedules.

#include "vasomim/optim/adam.hpp"
