#pragma once
// File formats: NumPy .npy arrays, 8-bit images (PNG/JPEG/BMP read, PNG write), safetensors
// checkpoints.

#include "vasomim/io/image.hpp"
#include "vasomim/io/npy.hpp"
#include "vasomim/io/png_encode.hpp"
#include "vasomim/io/safetensors.hpp"
