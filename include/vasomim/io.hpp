#pragma once
// File formats: NumPy .npy arrays, 8-bit images (PNG/JPEG/BMP/DICOM read, PNG write), folder
// listings of image files and DICOM frames, safetensors checkpoints.

#include "vasomim/io/image.hpp"
#include "vasomim/io/image_files.hpp"
#include "vasomim/io/npy.hpp"
#include "vasomim/io/png_encode.hpp"
#include "vasomim/io/safetensors.hpp"
