#pragma once
// safetensors checkpoints: an 8-byte little-endian header length, a JSON header
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}} (padded with
// spaces to a multiple of 8 bytes) and the raw little-endian data.
//
// Reading: F32, F64, F16, BF16 and the integer dtypes I64, I32, I16, I8, U64, U32, U16, U8 and
// BOOL, every one converted to float in named_tensor::data (F64 and integers beyond 2^24 round to
// the nearest float); named_tensor::dtype records the file's dtype, so that callers can tell
// integer buffers (BatchNorm's num_batches_tracked) from parameters. Anything else (F8_*, complex)
// and every inconsistency (negative or overflowing shapes, offsets outside the data, a size that
// does not match the shape) is a format_error naming the file and the tensor.
// Writing: F32, and I64 for tensors whose dtype says so (integral values only), so that a PyTorch
// strict load_state_dict finds its num_batches_tracked buffers; writes go to a temporary file
// renamed into place, so a crash never leaves a truncated checkpoint behind.
// Checksums: write_safetensors records a CRC32C of every tensor's stored bytes in the metadata
// entry "crc32c" (one JSON object, name -> 8 hex digits; see crc32c and checksum_key), and
// read_safetensors verifies it when present: a damaged tensor is a format_error naming the file and
// the tensor. Files without the entry (converted PyTorch ones, older checkpoints) read as before.
// Loading a file into a model's parameter table (prefixes, DDP's "module.", the report of every
// mismatch) is io/state_dict.hpp, included at the end of this header.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <isa-l/crc.h>
#include <nlohmann/json.hpp>

#include "vasomim/core/error.hpp"
#include "vasomim/core/shape.hpp"
#include "vasomim/core/tensor.hpp"
#include "vasomim/io/detail/atomic_file.hpp"
#include "vasomim/nn/parameters.hpp"

namespace vasomim::io {

static_assert(std::endian::native == std::endian::little,
              "vasomim: safetensors I/O assumes a little-endian host");

/// One named tensor on the host, its values as float whatever the file's dtype.
struct named_tensor {
    std::string name;
    vasomim::shape shape;
    std::vector<float> data;
    std::string dtype = "F32";  ///< the dtype in the file ("F32", "I64", ...); written as F32 or I64
};

namespace detail {

enum class st_kind { f32, f64, f16, bf16, i64, i32, i16, i8, u64, u32, u16, u8, boolean };

struct st_dtype {
    const char* name;
    st_kind kind;
    std::uint64_t size;  ///< bytes per element
    bool integer;
};

/// The dtypes this reader understands, or nullptr.
inline const st_dtype* find_dtype(const std::string& name) {
    static constexpr st_dtype table[] = {
        {"F32", st_kind::f32, 4, false}, {"F64", st_kind::f64, 8, false}, {"F16", st_kind::f16, 2, false},
        {"BF16", st_kind::bf16, 2, false}, {"I64", st_kind::i64, 8, true}, {"I32", st_kind::i32, 4, true},
        {"I16", st_kind::i16, 2, true},   {"I8", st_kind::i8, 1, true},    {"U64", st_kind::u64, 8, true},
        {"U32", st_kind::u32, 4, true},   {"U16", st_kind::u16, 2, true},  {"U8", st_kind::u8, 1, true},
        {"BOOL", st_kind::boolean, 1, true}};
    for (const auto& d : table)
        if (name == d.name) return &d;
    return nullptr;
}

/// IEEE binary16 to float, exactly (subnormals, infinities and NaN included).
inline float half_to_float(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    if (exp == 0) {
        const float v = std::ldexp(static_cast<float>(mant), -24);
        return sign ? -v : v;
    }
    if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
    return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
}

template <class S>
void convert_as(float* out, const char* in, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        S v;
        std::memcpy(&v, in + i * sizeof(S), sizeof(S));
        out[i] = static_cast<float>(v);
    }
}

/// Converts n little-endian elements of dtype `d` at `in` to float.
inline void convert_to_float(float* out, const char* in, std::size_t n, const st_dtype& d) {
    switch (d.kind) {
    case st_kind::f32: if (n) std::memcpy(out, in, n * 4); break;
    case st_kind::f64:
        for (std::size_t i = 0; i < n; ++i) {
            double v;
            std::memcpy(&v, in + i * 8, 8);
            // Values that round beyond float's range become infinities, as IEEE rounding has them
            // (a plain cast of an out-of-range double is undefined behaviour in C++).
            constexpr double overflow = 0x1.ffffffp+127;  // FLT_MAX + half an ulp
            constexpr float inf = std::numeric_limits<float>::infinity();
            out[i] = v >= overflow ? inf : v <= -overflow ? -inf : static_cast<float>(v);
        }
        break;
    case st_kind::i64: convert_as<std::int64_t>(out, in, n); break;
    case st_kind::i32: convert_as<std::int32_t>(out, in, n); break;
    case st_kind::i16: convert_as<std::int16_t>(out, in, n); break;
    case st_kind::i8: convert_as<std::int8_t>(out, in, n); break;
    case st_kind::u64: convert_as<std::uint64_t>(out, in, n); break;
    case st_kind::u32: convert_as<std::uint32_t>(out, in, n); break;
    case st_kind::u16: convert_as<std::uint16_t>(out, in, n); break;
    case st_kind::u8: convert_as<std::uint8_t>(out, in, n); break;
    case st_kind::boolean:
        for (std::size_t i = 0; i < n; ++i) out[i] = in[i] != 0 ? 1.0f : 0.0f;
        break;
    case st_kind::f16:
    case st_kind::bf16:
        for (std::size_t i = 0; i < n; ++i) {
            std::uint16_t b;
            std::memcpy(&b, in + 2 * i, 2);
            out[i] = d.kind == st_kind::f16 ? half_to_float(b) : std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
        }
        break;
    }
}

}  // namespace detail

/// True for the integer dtypes (I64 ... U8, BOOL): buffers such as num_batches_tracked, not
/// parameters. False for floating-point and unknown dtypes.
inline bool is_integer_dtype(const std::string& dtype) {
    const auto* d = detail::find_dtype(dtype);
    return d && d->integer;
}

/// A checkpoint: tensors in file order plus the string metadata.
struct safetensors_file {
    std::vector<named_tensor> tensors;
    std::map<std::string, std::string> metadata;

    const named_tensor* find(const std::string& name) const {
        for (const auto& t : tensors)
            if (t.name == name) return &t;
        return nullptr;
    }
};

/// CRC32C (Castagnoli, the iSCSI polynomial; "123456789" gives e3069283) of n bytes, through ISA-L.
/// ISA-L's crc32_iscsi neither inverts the initial value nor the result: the standard CRC32C is
/// ~crc32_iscsi(buf, len, ~0), and a running value is passed on uninverted between chunks (its
/// length is an int, so large tensors go in 1 GiB pieces).
inline std::uint32_t crc32c(const void* data, std::size_t n) {
    auto* p = static_cast<unsigned char*>(const_cast<void*>(data));
    unsigned int crc = 0xffffffffu;
    while (n > 0) {
        const std::size_t chunk = std::min<std::size_t>(n, std::size_t(1) << 30);
        crc = crc32_iscsi(p, static_cast<int>(chunk), crc);
        p += chunk;
        n -= chunk;
    }
    return ~crc;
}

namespace detail {
inline std::string hex32(std::uint32_t v) {
    char s[9];
    std::snprintf(s, sizeof s, "%08x", v);
    return s;
}
}  // namespace detail

/// The metadata key under which write_safetensors stores the tensors' checksums: one string entry
/// holding a JSON object {"<tensor name>": "<CRC32C of its bytes in the file, 8 lower-case hex
/// digits>", ...}. read_safetensors verifies it when present and leaves it out of
/// safetensors_file::metadata (files without it, e.g. converted PyTorch ones, read as before).
inline constexpr const char* checksum_key = "crc32c";

/// Parses the bytes of a whole safetensors file (`path` names it in errors); see read_safetensors.
inline safetensors_file parse_safetensors(std::string_view bytes, const std::string& path) {
    const auto file_size = static_cast<std::uint64_t>(bytes.size());
    auto bad = [&](const std::string& what) { return format_error("safetensors '" + path + "': " + what); };
    std::uint64_t header_len = 0;
    if (file_size < 8) throw bad("shorter than 8 bytes");
    std::memcpy(&header_len, bytes.data(), 8);
    if (header_len > file_size - 8) throw bad("header length " + std::to_string(header_len) + " exceeds the file size");
    const std::string_view header = bytes.substr(8, static_cast<std::size_t>(header_len));
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(header);
    } catch (const nlohmann::json::exception& e) {
        throw bad(std::string("header is not JSON: ") + e.what());
    }
    if (!j.is_object()) throw bad("header is not a JSON object");
    const std::uint64_t data_size = file_size - 8 - header_len;
    const char* data = bytes.data() + 8 + header_len;

    safetensors_file out;
    struct pending {
        std::uint64_t begin, end;
        named_tensor t;
    };
    std::vector<pending> items;
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() == "__metadata__") {
            if (!it.value().is_object()) throw bad("__metadata__ is not an object");
            for (auto m = it.value().begin(); m != it.value().end(); ++m)
                out.metadata[m.key()] = m.value().is_string() ? m.value().get<std::string>() : m.value().dump();
            continue;
        }
        const auto& e = it.value();
        const std::string tname = "tensor '" + it.key() + "'";
        try {
            if (!e.is_object()) throw bad(tname + " is not described by a JSON object");
            named_tensor t;
            t.name = it.key();
            t.dtype = e.at("dtype").get<std::string>();
            const auto* dt = detail::find_dtype(t.dtype);
            if (!dt)
                throw bad(tname + " has dtype " + t.dtype +
                          ", which vasomim does not read (F32, F64, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL)");
            const auto& dims = e.at("shape");
            if (!dims.is_array()) throw bad(tname + " has a shape that is not a list");
            if (dims.size() > static_cast<std::size_t>(vasomim::shape::max_rank))
                throw bad(tname + " has rank " + std::to_string(dims.size()) + "; at most 8 is supported");
            // The element count and the byte count must fit: a product of non-zero extents that
            // overflows would wrap around and pass the size check below.
            constexpr std::uint64_t limit = static_cast<std::uint64_t>(std::numeric_limits<index_t>::max());
            std::uint64_t nonzero = 1;
            for (const auto& d : dims) {
                if (!d.is_number_integer() || (!d.is_number_unsigned() && d.get<std::int64_t>() < 0) ||
                    (d.is_number_unsigned() && d.get<std::uint64_t>() > limit))
                    throw bad(tname + " has the invalid extent " + d.dump() + " in its shape " + dims.dump());
                const auto x = d.get<std::uint64_t>();
                if (x != 0 && nonzero > limit / dt->size / x)
                    throw bad(tname + " has shape " + dims.dump() + ", whose byte count overflows");
                if (x != 0) nonzero *= x;
                t.shape.push_back(static_cast<index_t>(x));
            }
            const auto& jo = e.at("data_offsets");
            // Integers only: a float such as 1e152 converted to an integer is undefined behaviour
            // (found by tests/fuzz/safetensors_fuzz.cpp).
            if (!jo.is_array() || jo.size() != 2 || !jo[0].is_number_unsigned() || !jo[1].is_number_unsigned())
                throw bad(tname + " has data offsets " + jo.dump() + ", not two non-negative integers");
            const std::vector<std::uint64_t> offs{jo[0].get<std::uint64_t>(), jo[1].get<std::uint64_t>()};
            if (offs.size() != 2 || offs[0] > offs[1] || offs[1] > data_size)
                throw bad(tname + " has data offsets " + e.at("data_offsets").dump() + " outside the data section of " +
                          std::to_string(data_size) + " bytes (truncated file?)");
            const std::uint64_t bytes = static_cast<std::uint64_t>(t.shape.numel()) * dt->size;
            if (offs[1] - offs[0] != bytes)
                throw bad(tname + " (" + t.dtype + ") of shape " + t.shape.to_string() + " needs " + std::to_string(bytes) +
                          " bytes, the offsets give " + std::to_string(offs[1] - offs[0]));
            t.data.resize(static_cast<std::size_t>(t.shape.numel()));
            detail::convert_to_float(t.data.data(), data + offs[0], t.data.size(), *dt);
            items.push_back({offs[0], offs[1], std::move(t)});
        } catch (const nlohmann::json::exception& ex) {
            throw bad(tname + ": " + ex.what());
        }
    }
    // Checksums (written by write_safetensors): every tensor's bytes as stored in the file.
    if (const auto it = out.metadata.find(checksum_key); it != out.metadata.end()) {
        nlohmann::json sums;
        try {
            sums = nlohmann::json::parse(it->second);
        } catch (const nlohmann::json::exception& e) {
            throw bad(std::string("the \"") + checksum_key + "\" metadata entry is not JSON: " + e.what());
        }
        if (!sums.is_object())
            throw bad(std::string("the \"") + checksum_key + "\" metadata entry is not a JSON object");
        for (const auto& p : items) {
            const auto s = sums.find(p.t.name);
            if (s == sums.end() || !s->is_string())
                throw bad("tensor '" + p.t.name + "' has no CRC32C in the \"" + checksum_key +
                          "\" metadata entry that the other tensors have");
            const std::string got = detail::hex32(crc32c(data + p.begin, static_cast<std::size_t>(p.end - p.begin)));
            if (s->get<std::string>() != got)
                throw bad("tensor '" + p.t.name + "' is damaged: its " + std::to_string(p.end - p.begin) +
                          " bytes at data offset " + std::to_string(p.begin) + " have CRC32C " + got +
                          ", the file recorded " + s->get<std::string>());
        }
        if (sums.size() != items.size())
            for (auto s = sums.begin(); s != sums.end(); ++s)
                if (std::none_of(items.begin(), items.end(), [&](const pending& p) { return p.t.name == s.key(); }))
                    throw bad("the \"" + std::string(checksum_key) + "\" metadata entry names tensor '" + s.key() +
                              "', which the file does not hold (damaged header?)");
        out.metadata.erase(it);
    }
    // File order (by data offset), not the JSON object's (sorted) key order.
    std::stable_sort(items.begin(), items.end(), [](const pending& a, const pending& b) { return a.begin < b.begin; });
    for (auto& p : items) out.tensors.push_back(std::move(p.t));
    return out;
}

/// Reads every tensor of a safetensors file, converting it to float (see the header comment).
/// Throws io_error if it cannot be read and format_error (naming the file and the tensor) for a
/// malformed header, an unknown dtype, a bad shape, offsets that do not fit the data, or a tensor
/// whose bytes do not match the CRC32C recorded for it (checksum_key).
inline safetensors_file read_safetensors(const std::string& path) {
    return parse_safetensors(detail::read_file_bytes(path, "safetensors"), path);
}

/// Writes tensors (in the given order) and metadata; atomic: a temporary file in the same folder
/// is renamed over `path`. A tensor is written as F32, or as I64 when its dtype is "I64" (its values
/// must then be integers); any other dtype is a value_error, before anything is written.
inline void write_safetensors(const std::string& path, const std::vector<named_tensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {}) {
    nlohmann::ordered_json j;
    std::uint64_t off = 0;
    for (const auto& t : tensors) {
        if (static_cast<index_t>(t.data.size()) != t.shape.numel())
            throw shape_error("write_safetensors: tensor '" + t.name + "' has " + std::to_string(t.data.size()) +
                              " values for shape " + t.shape.to_string());
        if (t.dtype != "F32" && t.dtype != "I64")
            throw value_error("write_safetensors: tensor '" + t.name + "' has dtype " + t.dtype +
                              "; only F32 and I64 are written (set dtype to \"F32\" to write it as float)");
        if (t.dtype == "I64")
            for (const float v : t.data)
                if (!(std::trunc(v) == v && std::fabs(v) < 9.2e18f))
                    throw value_error("write_safetensors: I64 tensor '" + t.name + "' holds the non-integer value " +
                                      std::to_string(v));
        std::vector<index_t> dims(t.shape.begin(), t.shape.end());
        const std::uint64_t bytes = t.data.size() * (t.dtype == "I64" ? 8 : 4);
        j[t.name] = {{"dtype", t.dtype}, {"shape", dims}, {"data_offsets", {off, off + bytes}}};
        off += bytes;
    }
    // The tensors' bytes as they will be stored, checksummed (checksum_key) before anything is written.
    nlohmann::ordered_json sums = nlohmann::ordered_json::object();
    for (const auto& t : tensors) {
        if (t.dtype == "I64") {
            const std::vector<std::int64_t> ints(t.data.begin(), t.data.end());
            sums[t.name] = detail::hex32(crc32c(ints.data(), ints.size() * 8));
        } else {
            sums[t.name] = detail::hex32(crc32c(t.data.data(), t.data.size() * 4));
        }
    }
    std::map<std::string, std::string> meta = metadata;
    meta[checksum_key] = sums.dump();
    nlohmann::ordered_json with_meta;
    with_meta["__metadata__"] = meta;
    for (auto it = j.begin(); it != j.end(); ++it) with_meta[it.key()] = it.value();
    std::string header = with_meta.dump();
    header.append((8 - header.size() % 8) % 8, ' ');
    // A temporary file of its own beside `path`, renamed over it when complete and removed when a
    // write fails (a full disk leaves the previous file and nothing else).
    detail::write_atomically(path, "safetensors", [&](std::ofstream& out) {
        const std::uint64_t len = header.size();
        out.write(reinterpret_cast<const char*>(&len), 8);
        out.write(header.data(), static_cast<std::streamsize>(header.size()));
        for (const auto& t : tensors) {
            if (t.dtype == "I64") {
                std::vector<std::int64_t> ints(t.data.begin(), t.data.end());
                out.write(reinterpret_cast<const char*>(ints.data()), static_cast<std::streamsize>(ints.size() * 8));
            } else {
                out.write(reinterpret_cast<const char*>(t.data.data()), static_cast<std::streamsize>(t.data.size() * 4));
            }
        }
    });
}

/// Saves every tensor of a parameter table from the flat buffer `flat` (values or gradients).
template <class T, class B>
void save_parameters(const std::string& path, const nn::parameter_table& table, const tensor<T, B>& flat,
                     const std::map<std::string, std::string>& metadata = {}) {
    const auto host = flat.to_host();
    std::vector<named_tensor> ts;
    for (const auto& e : table.entries()) {
        named_tensor t{e.name, e.shape, std::vector<float>(static_cast<std::size_t>(e.numel()))};
        for (index_t i = 0; i < e.numel(); ++i) t.data[i] = static_cast<float>(host[e.offset + i]);
        ts.push_back(std::move(t));
    }
    write_safetensors(path, ts, metadata);
}

}  // namespace vasomim::io

// load_parameters and the prefix-aware loading of released checkpoints; included here so that
// code including this header keeps finding load_parameters (state_dict.hpp includes this one).
#include "vasomim/io/state_dict.hpp"
