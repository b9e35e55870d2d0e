#pragma once
// Segmentation metrics: skeletons exactly as scikit-image's skeletonize (2-D), Dice, clDice,
// sensitivity and precision per image, and their mean / standard deviation.

#include "vasomim/metrics/segmentation_metrics.hpp"
#include "vasomim/metrics/skeletonize.hpp"
