#pragma once
// A labelled segmentation folder for fine-tuning and evaluation (GitHub issue 17):
//   DIR/images/<stem>.<ext>   angiograms (any format io::read_gray8 reads)
//   DIR/masks/<stem><suffix>.png (or the image's extension)   expert masks
// suffix "auto" takes the first of "", "_gt", "_mask", "_label" that exists (coronary80 has
// masks/training_01_gt.png for images/training_01.png). A mask must have the size of its image and
// be binary: at most two distinct values, the larger one (any nonzero value) vessel.
//
// Which stems train and which validate is a selection spec: comma-separated items, each
//   A..B     the stems s with A <= s <= B (lexicographic: training_01..training_30)
//   @FILE    the stems listed in FILE, one a line ('#' starts a comment)
//   PREFIX   the stems starting with PREFIX (a whole stem selects itself)

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "vasomim/core/error.hpp"
#include "vasomim/io/image.hpp"
#include "vasomim/io/image_files.hpp"

namespace vasomim::data {

/// An image of a labelled folder and where its mask is.
struct labelled_file {
    std::string stem;
    std::filesystem::path image, mask;
};

/// One labelled image in memory: 8-bit grey image, mask 0 / 255 of the same size.
struct segmentation_sample {
    std::string name;
    xt::xtensor<std::uint8_t, 2> image, mask;
};

/// The images of DIR/images paired with their masks in DIR/masks (see the header comment). An
/// image without a mask is an error naming both folders, unless `allow_unlabelled`.
inline std::vector<labelled_file> list_labelled_files(const std::filesystem::path& dir, const std::string& mask_suffix = "auto",
                                                      bool allow_unlabelled = false) {
    namespace fs = std::filesystem;
    const fs::path images = dir / "images", masks = dir / "masks";
    if (!fs::is_directory(images)) throw config_error("data folder " + dir.string() + " has no images/ folder");
    if (!fs::is_directory(masks)) throw config_error("data folder " + dir.string() + " has no masks/ folder");
    std::vector<std::string> suffixes;
    if (mask_suffix == "auto") suffixes = {"", "_gt", "_mask", "_label"};
    else suffixes = {mask_suffix};
    std::vector<labelled_file> out;
    for (const auto& p : io::list_image_files(images)) {
        if (io::has_dicom_extension(p)) continue;  // masks pair by file stem; cine runs are not labelled here
        labelled_file f{p.stem().string(), p, {}};
        for (const auto& s : suffixes) {
            for (const std::string& ext : {std::string(".png"), p.extension().string()}) {
                const fs::path m = masks / (f.stem + s + ext);
                if (fs::is_regular_file(m)) {
                    f.mask = m;
                    break;
                }
            }
            if (!f.mask.empty()) break;
        }
        if (f.mask.empty() && !allow_unlabelled) {
            std::string tried;
            for (const auto& s : suffixes) {
                tried += tried.empty() ? "" : ", ";
                tried += f.stem;
                tried += s;
                tried += ".png";
            }
            throw config_error("image " + p.string() + " has no mask in " + masks.string() + " (looked for " + tried +
                               "; --mask-suffix names another suffix)");
        }
        out.push_back(std::move(f));
    }
    if (out.empty()) throw config_error("data folder " + images.string() + " holds no images");
    return out;
}

/// The stems of `all` that the selection spec picks (see the header comment), in sorted order.
/// Throws config_error when an item selects nothing.
inline std::vector<std::string> select_stems(const std::vector<std::string>& all, const std::string& spec,
                                             const std::string& what = "selection") {
    if (spec.empty()) throw config_error(what + ": empty selection");
    std::set<std::string> picked;
    std::size_t start = 0;
    while (start <= spec.size()) {
        const auto comma = spec.find(',', start);
        std::string item = spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        start = comma == std::string::npos ? spec.size() + 1 : comma + 1;
        while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) item.erase(item.begin());
        while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) item.pop_back();
        if (item.empty()) continue;
        std::size_t before = picked.size();
        if (item.front() == '@') {
            const std::string file = item.substr(1);
            std::ifstream in(file);
            if (!in) throw io_error(what + ": cannot read the list " + file);
            std::string line;
            while (std::getline(in, line)) {
                if (const auto h = line.find('#'); h != std::string::npos) line.erase(h);
                while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
                while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) line.erase(line.begin());
                if (line.empty()) continue;
                // a listed name may carry its extension
                const std::string stem = std::filesystem::path(line).stem().string();
                const bool found = std::find(all.begin(), all.end(), line) != all.end();
                const bool found_stem = std::find(all.begin(), all.end(), stem) != all.end();
                if (!found && !found_stem) throw config_error(what + ": '" + line + "' (listed in " + file + ") is not an image of the folder");
                picked.insert(found ? line : stem);
            }
        } else if (const auto dots = item.find(".."); dots != std::string::npos) {
            const std::string a = item.substr(0, dots), b = item.substr(dots + 2);
            if (a.empty() || b.empty() || b < a) throw config_error(what + ": '" + item + "' is not a range A..B with A <= B");
            for (const auto& s : all)
                if (s >= a && s <= b) picked.insert(s);
        } else {
            for (const auto& s : all)
                if (s.starts_with(item)) picked.insert(s);
        }
        if (picked.size() == before) throw config_error(what + ": '" + item + "' selects no image");
    }
    if (picked.empty()) throw config_error(what + ": '" + spec + "' selects no image");
    return {picked.begin(), picked.end()};
}

/// Reads a binary mask of height x width: at most two distinct values, 0 and the vessel value;
/// returned as 0 / 255. threshold > 0 binarises any mask instead: vessel = value >= threshold (for
/// masks with a few anti-aliased grey pixels). Throws shape_error (size) or value_error (not binary)
/// naming the file.
inline xt::xtensor<std::uint8_t, 2> read_binary_mask(const std::filesystem::path& path, std::int64_t height,
                                                     std::int64_t width, const std::filesystem::path& image = {},
                                                     int threshold = 0) {
    auto m = io::read_gray8(path);
    if (std::int64_t(m.shape()[0]) != height || std::int64_t(m.shape()[1]) != width)
        throw shape_error("mask " + path.string() + " is " + std::to_string(m.shape()[0]) + " x " +
                          std::to_string(m.shape()[1]) + ", its image" + (image.empty() ? "" : " " + image.string()) +
                          " " + std::to_string(height) + " x " + std::to_string(width));
    if (threshold > 0) {
        for (auto& v : m) v = v >= threshold ? 255 : 0;
        return m;
    }
    bool seen[256] = {};
    for (const auto v : m) seen[v] = true;
    int distinct = 0, hi = 0;
    std::string values;
    for (int v = 0; v < 256; ++v)
        if (seen[v]) {
            ++distinct;
            hi = v;
            if (distinct <= 4) {
                values += values.empty() ? "" : ", ";
                values += std::to_string(v);
            }
        }
    if (distinct > 2 || (distinct == 2 && !seen[0]))
        throw value_error("mask " + path.string() + " is not binary: it holds " + std::to_string(distinct) +
                          " distinct values (" + values + (distinct > 4 ? ", ..." : "") +
                          "); a mask must be 0 for background and one nonzero value for vessel, or be "
                          "binarised by a threshold (--mask-threshold 128)");
    for (auto& v : m) v = (v != 0 && v == hi) ? 255 : 0;
    return m;
}

/// Reads the selected files into memory (image and checked mask; threshold as read_binary_mask).
inline std::vector<segmentation_sample> load_segmentation_samples(const std::vector<labelled_file>& files,
                                                                  const std::vector<std::string>& stems,
                                                                  int threshold = 0) {
    std::vector<segmentation_sample> out;
    for (const auto& stem : stems) {
        const auto it = std::find_if(files.begin(), files.end(), [&](const labelled_file& f) { return f.stem == stem; });
        if (it == files.end()) throw config_error("no image named " + stem);
        segmentation_sample s{stem, io::read_gray8(it->image), {}};
        if (it->mask.empty()) throw config_error("image " + it->image.string() + " has no mask");
        s.mask = read_binary_mask(it->mask, std::int64_t(s.image.shape()[0]), std::int64_t(s.image.shape()[1]), it->image,
                                  threshold);
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace vasomim::data
