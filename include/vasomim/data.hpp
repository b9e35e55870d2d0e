#pragma once
// Data module: synthetic angiograms, augmentation, data sets on disk and the prefetching loader.

#include "vasomim/data/folder_dataset.hpp"
#include "vasomim/data/loader.hpp"
#include "vasomim/data/random_stream.hpp"
#include "vasomim/data/synthetic_angiogram.hpp"
#include "vasomim/data/transforms.hpp"
