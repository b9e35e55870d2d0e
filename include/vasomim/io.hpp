#pragma once
// File formats: NumPy .npy arrays and 8-bit images (PNG/JPEG/BMP read, PNG write).

#include "vasomim/io/image.hpp"
#include "vasomim/io/npy.hpp"
