#pragma once
// safetensors checkpoints: an 8-byte little-endian header length, a JSON header
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}} and the raw
// little-endian data. F32 is read and written (the format of PyTorch MAE state dicts saved with
// safetensors); writes go to a temporary file renamed into place, so a crash never leaves a
// truncated checkpoint behind.

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vasomim/core/error.hpp"
#include "vasomim/core/shape.hpp"
#include "vasomim/core/tensor.hpp"
#include "vasomim/nn/parameters.hpp"

namespace vasomim::io {

static_assert(std::endian::native == std::endian::little,
              "vasomim: safetensors I/O assumes a little-endian host");

/// One named F32 tensor on the host.
struct named_tensor {
    std::string name;
    vasomim::shape shape;
    std::vector<float> data;
};

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

/// Reads every tensor of a safetensors file. Throws io_error if it cannot be read and format_error
/// (naming the file and the tensor) for a malformed header, a dtype other than F32 or bad offsets.
inline safetensors_file read_safetensors(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw io_error("safetensors: cannot open '" + path + "'");
    in.seekg(0, std::ios::end);
    const auto file_size = static_cast<std::uint64_t>(in.tellg());
    in.seekg(0);
    auto bad = [&](const std::string& what) { return format_error("safetensors '" + path + "': " + what); };
    std::uint64_t header_len = 0;
    if (file_size < 8 || !in.read(reinterpret_cast<char*>(&header_len), 8)) throw bad("shorter than 8 bytes");
    if (header_len > file_size - 8) throw bad("header length " + std::to_string(header_len) + " exceeds the file size");
    std::string header(static_cast<std::size_t>(header_len), '\0');
    if (!in.read(header.data(), static_cast<std::streamsize>(header_len))) throw bad("truncated header");
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(header);
    } catch (const nlohmann::json::exception& e) {
        throw bad(std::string("header is not JSON: ") + e.what());
    }
    if (!j.is_object()) throw bad("header is not a JSON object");
    const std::uint64_t data_size = file_size - 8 - header_len;
    std::vector<char> data(static_cast<std::size_t>(data_size));
    if (data_size && !in.read(data.data(), static_cast<std::streamsize>(data_size))) throw bad("truncated data");

    safetensors_file out;
    struct pending {
        std::uint64_t begin;
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
        try {
            const std::string dtype = e.at("dtype").get<std::string>();
            if (dtype != "F32") throw bad("tensor '" + it.key() + "' has dtype " + dtype + "; only F32 is supported");
            named_tensor t;
            t.name = it.key();
            for (const auto& d : e.at("shape")) t.shape.push_back(d.get<index_t>());
            const auto offs = e.at("data_offsets").get<std::vector<std::uint64_t>>();
            if (offs.size() != 2 || offs[0] > offs[1] || offs[1] > data_size)
                throw bad("tensor '" + t.name + "' has data offsets outside the data section");
            const std::uint64_t bytes = static_cast<std::uint64_t>(t.shape.numel()) * 4;
            if (offs[1] - offs[0] != bytes)
                throw bad("tensor '" + t.name + "' of shape " + t.shape.to_string() + " needs " + std::to_string(bytes) +
                          " bytes, the offsets give " + std::to_string(offs[1] - offs[0]));
            t.data.resize(static_cast<std::size_t>(t.shape.numel()));
            if (bytes) std::memcpy(t.data.data(), data.data() + offs[0], static_cast<std::size_t>(bytes));
            items.push_back({offs[0], std::move(t)});
        } catch (const nlohmann::json::exception& ex) {
            throw bad("tensor '" + it.key() + "': " + ex.what());
        }
    }
    // File order (by data offset), not the JSON object's (sorted) key order.
    std::stable_sort(items.begin(), items.end(), [](const pending& a, const pending& b) { return a.begin < b.begin; });
    for (auto& p : items) out.tensors.push_back(std::move(p.t));
    return out;
}

/// Writes tensors (in the given order) and metadata; atomic: a temporary file in the same folder
/// is renamed over `path`.
inline void write_safetensors(const std::string& path, const std::vector<named_tensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {}) {
    nlohmann::ordered_json j;
    if (!metadata.empty()) j["__metadata__"] = metadata;
    std::uint64_t off = 0;
    for (const auto& t : tensors) {
        if (static_cast<index_t>(t.data.size()) != t.shape.numel())
            throw shape_error("write_safetensors: tensor '" + t.name + "' has " + std::to_string(t.data.size()) +
                              " values for shape " + t.shape.to_string());
        std::vector<index_t> dims(t.shape.begin(), t.shape.end());
        const std::uint64_t bytes = t.data.size() * 4;
        j[t.name] = {{"dtype", "F32"}, {"shape", dims}, {"data_offsets", {off, off + bytes}}};
        off += bytes;
    }
    std::string header = j.dump();
    header.append((8 - header.size() % 8) % 8, ' ');
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) throw io_error("safetensors: cannot write '" + tmp + "'");
        const std::uint64_t len = header.size();
        out.write(reinterpret_cast<const char*>(&len), 8);
        out.write(header.data(), static_cast<std::streamsize>(header.size()));
        for (const auto& t : tensors)
            out.write(reinterpret_cast<const char*>(t.data.data()), static_cast<std::streamsize>(t.data.size() * 4));
        out.flush();
        if (!out) throw io_error("safetensors: write to '" + tmp + "' failed");
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) throw io_error("safetensors: cannot rename '" + tmp + "' to '" + path + "': " + ec.message());
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

/// Loads the tensors of a parameter table into `flat`. Every table entry must be present with the
/// same shape (config_error otherwise); with `strict`, extra tensors in the file are errors too.
template <class T, class B>
void load_parameters(const std::string& path, const nn::parameter_table& table, tensor<T, B>& flat,
                     bool strict = true) {
    const auto file = read_safetensors(path);
    auto host = flat.to_host();
    for (const auto& e : table.entries()) {
        const auto* t = file.find(e.name);
        if (!t) throw config_error("load_parameters: '" + path + "' has no tensor '" + e.name + "'");
        if (!(t->shape == e.shape))
            throw config_error("load_parameters: '" + e.name + "' in '" + path + "' has shape " + t->shape.to_string() +
                               ", the model expects " + e.shape.to_string());
        for (index_t i = 0; i < e.numel(); ++i) host[e.offset + i] = static_cast<T>(t->data[i]);
    }
    if (strict)
        for (const auto& t : file.tensors)
            if (!table.contains(t.name))
                throw config_error("load_parameters: '" + path + "' holds '" + t.name + "', which the model does not have");
    flat = tensor<T, B>::from_host(host, flat.shape());
}

}  // namespace vasomim::io
