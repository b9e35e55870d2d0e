#pragma once
// The element of every data set: an angiogram and its vessel mask.

#include <cstdint>

#include <xtensor/xtensor.hpp>

namespace vasomim::data {

/// An angiogram and its vessel mask (pseudo-label or exact), both H x W, mask 0/255.
struct labelled_image {
    xt::xtensor<std::uint8_t, 2> image;
    xt::xtensor<std::uint8_t, 2> mask;
};

}  // namespace vasomim::data
