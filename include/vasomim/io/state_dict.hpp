#pragma once
// Loading a named state dict (a safetensors file, e.g. converted from a released PyTorch .pth by
// tools/convert_torch_checkpoint.py) into a model's parameter table, as PyTorch's
// load_state_dict does:
//   - a leading "module." (DistributedDataParallel) is stripped from every name first;
//   - `prefix` selects the tensors whose names start with it and strips it ("seg_model." takes the
//     segmentor out of a VasoMIM state dict);
//   - integer tensors the model does not have (BatchNorm's num_batches_tracked) are ignored, and
//     said once on `notes`;
//   - every table entry must be present with its shape; with `strict`, tensors under the prefix
//     that the model does not have are errors too (without, they are ignored and noted).
// Every mismatch is collected into one checkpoint_mismatch_error (core/error.hpp), and the flat
// buffer is only replaced once every check has passed: a failed load leaves the model untouched.

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "vasomim/core/error.hpp"
#include "vasomim/core/shape.hpp"
#include "vasomim/core/tensor.hpp"
#include "vasomim/io/safetensors.hpp"
#include "vasomim/nn/parameters.hpp"

namespace vasomim::io {

/// How a state dict is matched against a parameter table.
struct state_dict_options {
    std::string prefix;              ///< only names starting with it, stripped (after "module.")
    bool strict = true;              ///< tensors under the prefix that the model lacks are errors
    std::ostream* notes = nullptr;   ///< where ignored tensors are reported (once per load)
};

/// `name` without a leading "module." (what DistributedDataParallel adds to every key).
inline std::string strip_ddp_prefix(std::string_view name) {
    constexpr std::string_view ddp = "module.";
    if (name.substr(0, ddp.size()) == ddp) name.remove_prefix(ddp.size());
    return std::string(name);
}

/// The tensors of `file` under `prefix` ("module." stripped first, then the prefix), in file order,
/// metadata kept. `source` names the file in errors: two names that become one after stripping
/// are a format_error.
inline safetensors_file select_state_dict(safetensors_file file, const std::string& prefix,
                                          const std::string& source = "state dict") {
    safetensors_file out;
    out.metadata = std::move(file.metadata);
    std::unordered_map<std::string, std::string> seen;  // stripped name -> name in the file
    for (auto& t : file.tensors) {
        std::string name = strip_ddp_prefix(t.name);
        if (name.compare(0, prefix.size(), prefix) != 0) continue;
        name.erase(0, prefix.size());
        const auto [it, fresh] = seen.emplace(name, t.name);
        if (!fresh)
            throw format_error("state dict '" + source + "': '" + it->second + "' and '" + t.name + "' both become '" +
                               name + "' once \"module.\" and the prefix '" + prefix + "' are stripped");
        t.name = std::move(name);
        out.tensors.push_back(std::move(t));
    }
    return out;
}

/// Reads a safetensors file and keeps the tensors under `prefix`, names stripped (see
/// select_state_dict).
inline safetensors_file read_state_dict(const std::string& path, const std::string& prefix = "") {
    return select_state_dict(read_safetensors(path), prefix, path);
}

namespace detail {
inline std::vector<std::int64_t> dims_of(const vasomim::shape& s) { return {s.begin(), s.end()}; }

/// "'a', 'b', 'c' and 2 more" for notes.
inline std::string some_names(const std::vector<const named_tensor*>& ts, std::size_t show = 3) {
    std::string s;
    for (std::size_t i = 0; i < ts.size() && i < show; ++i)
        s += (i ? ", '" : "'") + ts[i]->name + "' (" + ts[i]->dtype + ")";
    if (ts.size() > show) s += " and " + std::to_string(ts.size() - show) + " more";
    return s;
}
}  // namespace detail

/// Loads an already selected state dict (names as the table has them) into `flat`. `source` names
/// it in the report. Integer tensors that the table has are loaded like the others. Throws
/// checkpoint_mismatch_error listing every missing tensor, every shape mismatch and (strict) every
/// unexpected tensor; `flat` is replaced only when there is none.
template <class T, class B>
void load_state_dict(const safetensors_file& file, const std::string& source, const nn::parameter_table& table,
                     tensor<T, B>& flat, const state_dict_options& options = {}) {
    using mismatch = checkpoint_mismatch_error::mismatch;
    std::unordered_map<std::string, const named_tensor*> by_name;
    for (const auto& t : file.tensors) by_name.emplace(t.name, &t);

    std::vector<mismatch> problems;
    for (const auto& e : table.entries()) {
        const auto it = by_name.find(e.name);
        if (it == by_name.end())
            problems.push_back({e.name, {}, detail::dims_of(e.shape), mismatch::kind::missing});
        else if (!(it->second->shape == e.shape))
            problems.push_back({e.name, detail::dims_of(it->second->shape), detail::dims_of(e.shape), mismatch::kind::shape});
    }
    std::vector<const named_tensor*> ignored_integers, ignored_extra;
    for (const auto& t : file.tensors) {
        if (table.contains(t.name)) continue;
        if (is_integer_dtype(t.dtype))
            ignored_integers.push_back(&t);
        else if (options.strict)
            problems.push_back({t.name, detail::dims_of(t.shape), {}, mismatch::kind::unexpected});
        else
            ignored_extra.push_back(&t);
    }
    const std::string context =
        source + (options.prefix.empty() ? std::string()
                                         : " under the prefix '" + options.prefix + "' (" +
                                               std::to_string(file.tensors.size()) + " tensors there)");
    if (!problems.empty()) throw checkpoint_mismatch_error(context, std::move(problems));

    if (options.notes) {
        if (!ignored_integers.empty())
            *options.notes << context << ": ignored " << ignored_integers.size() << " integer tensor"
                           << (ignored_integers.size() == 1 ? "" : "s") << " such as "
                           << detail::some_names(ignored_integers) << "\n";
        if (!ignored_extra.empty())
            *options.notes << context << ": ignored " << ignored_extra.size() << " tensor"
                           << (ignored_extra.size() == 1 ? "" : "s") << " the model does not have, such as "
                           << detail::some_names(ignored_extra) << "\n";
    }
    auto host = flat.to_host();
    for (const auto& e : table.entries()) {
        const auto& data = by_name.at(e.name)->data;
        for (index_t i = 0; i < e.numel(); ++i) host[e.offset + i] = static_cast<T>(data[i]);
    }
    flat = tensor<T, B>::from_host(host, flat.shape());
}

/// Loads the safetensors file `path` into the parameter table's flat buffer `flat`, as described
/// at the top of this header (io_error / format_error for unreadable files,
/// checkpoint_mismatch_error for a file that does not fit).
template <class T, class B>
void load_parameters(const std::string& path, const nn::parameter_table& table, tensor<T, B>& flat,
                     const state_dict_options& options) {
    load_state_dict(read_state_dict(path, options.prefix), "load_parameters: '" + path + "'", table, flat, options);
}

/// The same without a prefix: every table entry must be in the file with its shape; with `strict`,
/// tensors in the file that the model does not have (integer buffers aside) are errors too.
template <class T, class B>
void load_parameters(const std::string& path, const nn::parameter_table& table, tensor<T, B>& flat,
                     bool strict = true) {
    load_parameters(path, table, flat, state_dict_options{{}, strict, nullptr});
}

}  // namespace vasomim::io
