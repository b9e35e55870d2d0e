#pragma once
// Training objectives.

#include "vasomim/loss/masked_reconstruction.hpp"
