#pragma once
// A minimal .npy reader for the test fixtures (little-endian <f4, <f8, <i8; C order), kept in the
// tests so the fixture checks also build under nvcc without xtensor.

#include <cstdint>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace vasomim::test {

struct npy_array {
    std::vector<std::int64_t> shape;
    std::string descr;
    std::vector<char> bytes;

    std::size_t numel() const {
        std::size_t n = 1;
        for (auto d : shape) n *= static_cast<std::size_t>(d);
        return n;
    }
    template <class T>
    std::vector<T> as() const {
        std::vector<T> out(numel());
        for (std::size_t i = 0; i < out.size(); ++i) {
            if (descr == "<f4") {
                float v;
                std::memcpy(&v, bytes.data() + 4 * i, 4);
                out[i] = static_cast<T>(v);
            } else if (descr == "<f8") {
                double v;
                std::memcpy(&v, bytes.data() + 8 * i, 8);
                out[i] = static_cast<T>(v);
            } else if (descr == "<i8") {
                std::int64_t v;
                std::memcpy(&v, bytes.data() + 8 * i, 8);
                out[i] = static_cast<T>(v);
            } else {
                throw std::runtime_error("npy: unsupported dtype " + descr);
            }
        }
        return out;
    }
};

inline npy_array load_npy(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("npy: cannot open " + path);
    char magic[8];
    in.read(magic, 8);
    if (std::memcmp(magic, "\x93NUMPY", 6) != 0) throw std::runtime_error("npy: bad magic in " + path);
    std::uint32_t hlen = 0;
    if (magic[6] == 1) {
        std::uint16_t h;
        in.read(reinterpret_cast<char*>(&h), 2);
        hlen = h;
    } else {
        in.read(reinterpret_cast<char*>(&hlen), 4);
    }
    std::string header(hlen, '\0');
    in.read(header.data(), hlen);
    npy_array a;
    const auto d = header.find("'descr': '");
    a.descr = header.substr(d + 10, header.find('\'', d + 10) - d - 10);
    if (header.find("'fortran_order': False") == std::string::npos) throw std::runtime_error("npy: Fortran order in " + path);
    const auto s = header.find('(', header.find("'shape'"));
    const auto e = header.find(')', s);
    std::string dims = header.substr(s + 1, e - s - 1);
    std::size_t pos = 0;
    while (pos < dims.size()) {
        while (pos < dims.size() && (dims[pos] == ' ' || dims[pos] == ',')) ++pos;
        if (pos >= dims.size()) break;
        std::size_t used = 0;
        a.shape.push_back(std::stoll(dims.substr(pos), &used));
        pos += used;
    }
    const std::size_t item = a.descr == "<f4" ? 4 : 8;
    a.bytes.resize(a.numel() * item);
    in.read(a.bytes.data(), static_cast<std::streamsize>(a.bytes.size()));
    if (!in) throw std::runtime_error("npy: truncated data in " + path);
    return a;
}

}  // namespace vasomim::test
