#pragma once
// Angiogram data sets on disk and the synthetic default, behind one interface:
//   size(), name(i), load(i) -> {image, mask} as 8-bit H x W arrays (mask 0/255).
// folder_dataset reads the XA-170K layout as released (XA-SSL util/vessel_dataset.py: <name>/ images
// beside <name>_filter_92/ pseudo-labels of the same file names; <name>_frangi/, DESIGN's name for
// it, is read too), an images/ + masks/ pair, or a plain folder of images whose masks are computed
// by a callback (e.g. the pseudo-label pipeline) on first use and cached in <folder>_frangi/.
// A mask kind other than the released one (cache_suffix, e.g. "_fov" for vessel::fov_pseudo_label)
// is cached in <folder><suffix>/ and never read from, or written to, the released folders.

#include <algorithm>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "vasomim/core/error.hpp"
#include "vasomim/data/labelled_image.hpp"
#include "vasomim/data/synthetic_angiogram.hpp"
#include "vasomim/io/image.hpp"
#include "vasomim/io/image_files.hpp"

namespace vasomim::data {

/// Makes a mask for an image that has none (e.g. vasomim::vessel's pseudo-label pipeline).
using mask_maker = std::function<xt::xtensor<std::uint8_t, 2>(const xt::xtensor<std::uint8_t, 2>&)>;


class folder_dataset {
public:
    struct entry {
        std::filesystem::path image;
        std::filesystem::path mask;  ///< where the mask is (or will be cached)
    };

    /// Scans `root`. Without masks on disk, `make_mask` must be given. Throws config_error for a
    /// missing folder or a folder without images. `cache_suffix` names the mask kind: "_frangi"
    /// (released pseudo-labels: <name>_filter_92/ or <name>_frangi/ are read), anything else (e.g.
    /// "_fov") only <name><cache_suffix>/, so that two kinds of pseudo-label never mix.
    explicit folder_dataset(const std::filesystem::path& root, mask_maker make_mask = {},
                            const std::string& cache_suffix = "_frangi")
        : make_mask_(std::move(make_mask)) {
        const bool released_kind = cache_suffix == "_frangi";
        namespace fs = std::filesystem;
        if (!fs::is_directory(root)) throw config_error("data folder " + root.string() + " does not exist");
        if (cache_suffix.empty()) throw config_error("folder_dataset: the mask cache suffix must not be empty");
        if (fs::is_directory(root / "images") && fs::is_directory(root / "masks")) {
            // masks/ holds the released (or expert) masks; another kind is cached beside the folder.
            add_pairs(root / "images", released_kind ? root / "masks" : fs::path(root.string() + cache_suffix));
        } else {
            // XA-170K: every <name>/ with a sibling <name>_filter_92/ (as released) or <name>_frangi/.
            std::vector<fs::path> dirs;
            for (const auto& e : fs::directory_iterator(root)) {
                const auto n = e.path().filename().string();
                // mask folders of every known kind are never image folders
                if (e.is_directory() && !n.ends_with("_frangi") && !n.ends_with("_filter_92") && !n.ends_with("_fov") &&
                    !n.ends_with(cache_suffix))
                    dirs.push_back(e.path());
            }
            std::sort(dirs.begin(), dirs.end());
            for (const auto& d : dirs) {
                const fs::path released(d.string() + "_filter_92");
                if (!released_kind) {  // never the released masks on disk
                    add_pairs(d, fs::path(d.string() + cache_suffix));
                    continue;
                }
                add_pairs(d, fs::is_directory(released) ? released : fs::path(d.string() + "_frangi"));
            }
            // A plain folder of images: masks cached in <root><cache_suffix>/ (_frangi by default).
            if (entries_.empty()) add_pairs(root, fs::path(root.string() + cache_suffix));
        }
        if (entries_.empty()) throw config_error("data folder " + root.string() + " holds no images");
    }

    std::size_t size() const { return entries_.size(); }
    const entry& at(std::size_t i) const { return entries_.at(i); }
    std::string name(std::size_t i) const { return entries_.at(i).image.string(); }

    /// Reads image i and its mask (computing and caching the mask if it is missing). Throws
    /// io_error / format_error for unreadable files (the loader skips those) and shape_error,
    /// naming both files, when image and mask differ in size.
    labelled_image load(std::size_t i) const {
        const entry& e = entries_.at(i);
        labelled_image s{io::read_gray8(e.image), {}};
        if (std::filesystem::exists(e.mask)) {
            s.mask = io::read_gray8(e.mask);
        } else {
            if (!make_mask_)
                throw config_error("no mask " + e.mask.string() + " for image " + e.image.string() +
                                   " and no mask maker (pseudo-label pipeline) was given");
            s.mask = make_mask_(s.image);
            std::lock_guard<std::mutex> lock(*cache_mutex_);
            std::filesystem::create_directories(e.mask.parent_path());
            io::write_png(e.mask, s.mask);  // atomic: concurrent readers never see half a file
        }
        if (s.image.shape() != s.mask.shape())
            throw shape_error("image " + e.image.string() + " is " + std::to_string(s.image.shape()[0]) + " x " +
                              std::to_string(s.image.shape()[1]) + " but its mask " + e.mask.string() + " is " +
                              std::to_string(s.mask.shape()[0]) + " x " + std::to_string(s.mask.shape()[1]));
        return s;
    }

private:
    // Masks have the image's file name; an .npy or DICOM image's mask is <stem>.png, and frame K
    // of a multi-frame DICOM run (an entry "run.dcm#K") has the mask run_f0KK.png. A DICOM file that
    // cannot be opened stays one entry: load() then throws, and the loader skips and reports it.
    void add_pairs(const std::filesystem::path& images, const std::filesystem::path& masks) {
        for (const auto& file : io::list_image_files(images)) {
            std::vector<std::filesystem::path> inputs{file};
            try {
                inputs = io::expand_frames(file);
            } catch (const vasomim::error&) {
            }
            for (const auto& p : inputs) {
                const bool own_name = p == file && file.extension() != ".npy" && !io::has_dicom_extension(file);
                entries_.push_back({p, own_name ? masks / p.filename() : masks / (io::input_stem(p) + ".png")});
            }
        }
    }

    std::vector<entry> entries_;
    mask_maker make_mask_;
    std::shared_ptr<std::mutex> cache_mutex_ = std::make_shared<std::mutex>();
};

/// The embedded default: `count` procedural angiograms with exact masks.
class synthetic_dataset {
public:
    synthetic_dataset(std::size_t count, std::uint64_t seed, synthetic_angiogram_options options = {})
        : count_(count), seed_(seed), options_(options) {
        options_.validate();
        if (count == 0) throw config_error("synthetic_dataset: count must be positive");
    }
    std::size_t size() const { return count_; }
    std::string name(std::size_t i) const { return "synthetic#" + std::to_string(i); }
    labelled_image load(std::size_t i) const {
        auto s = make_synthetic_angiogram(options_, seed_, i);
        return {std::move(s.image), std::move(s.mask)};
    }

private:
    std::size_t count_;
    std::uint64_t seed_;
    synthetic_angiogram_options options_;
};

}  // namespace vasomim::data
