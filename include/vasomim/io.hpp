#pragma once
// File formats: safetensors checkpoints.

#include "vasomim/io/safetensors.hpp"
