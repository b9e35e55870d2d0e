#pragma once
// The closed-form UNeXt-S parameters of tools/make_unext_fixtures.py (formula / hash_uniform there):
// splitmix64 of (entry index << 32 | element index) mapped to [-1, 1), scaled per tensor kind.

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "vasomim/nn/parameters.hpp"

namespace vasomim::test {

inline double hash_uniform(std::uint64_t t, std::uint64_t j) {
    std::uint64_t z = ((t << 32) + j) * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * std::ldexp(1.0, -52) - 1.0;
}

template <class T>
std::vector<T> unext_fixture_parameters(const nn::parameter_table& table) {
    std::vector<T> host(static_cast<std::size_t>(table.size()), T(0));
    std::uint64_t t = 0;
    for (const auto& e : table.entries()) {
        const auto& nm = e.name;
        auto ends = [&](const std::string& s) {
            return nm.size() >= s.size() && nm.compare(nm.size() - s.size(), s.size(), s) == 0;
        };
        const index_t n = e.numel();
        for (index_t j = 0; j < n; ++j) {
            double v = hash_uniform(t, static_cast<std::uint64_t>(j));
            if (ends("running_var")) v = 1.0 + 0.5 * v * v;
            else if (ends("running_mean")) v = 0.1 * v;
            else if (e.shape.rank() == 1) v = ends("weight") ? 1.0 + 0.1 * v : 0.1 * v;
            else v = v * std::sqrt(3.0 * static_cast<double>(e.shape[0]) / static_cast<double>(n));
            host[static_cast<std::size_t>(e.offset + j)] = static_cast<T>(static_cast<float>(v));
        }
        ++t;
    }
    return host;
}

}  // namespace vasomim::test
