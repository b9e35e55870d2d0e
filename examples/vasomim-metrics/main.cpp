// vasomim-metrics: Dice, clDice, sensitivity and precision of a folder of predicted masks against a
// folder of reference masks (any method's output: PNG, JPEG, BMP, TGA, PNM or NPY; any nonzero
// pixel is foreground unless --threshold), paired by file stem, e.g.
//   vasomim-metrics --pred out/masks --ref ../shared/data/coronary80/masks --ref-suffix _gt
//       --pattern 'training_*' --csv scores.csv
// (pred/training_01.png pairs with ref/training_01_gt.png; --pattern keeps the stems it matches).
// Prints one line per image and the mean and standard deviation (population, ddof 0) of each score
// over the images; --csv FILE writes one row per image. Skeletons for clDice are scikit-image's
// (metrics/skeletonize.hpp); empty masks: both empty scores 1, exactly one empty scores 0
// (metrics/segmentation_metrics.hpp).
//
// Files without a partner are listed; a pair of different sizes is refused naming both files; a
// file that cannot be read is skipped and reported. Exit status: 0 every file was paired and
// scored, 1 some were skipped (listed at the end), 2 wrong arguments (missing folder, no pair at
// all, an existing --csv without --overwrite).
#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "vasomim/io/image.hpp"
#include "vasomim/metrics.hpp"

namespace fs = std::filesystem;
using namespace vasomim;

namespace {

std::string lower_ext(const fs::path& p) {
    std::string e = p.extension().string();
    std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return e;
}

bool is_mask_file(const fs::path& p) {
    static const std::set<std::string> ok{".png", ".jpg", ".jpeg", ".bmp", ".tga", ".gif",
                                          ".pgm", ".ppm", ".pnm", ".npy"};
    return ok.count(lower_ext(p)) > 0;
}

struct mask {
    std::size_t rows = 0, cols = 0;
    std::vector<std::uint8_t> fg;  // 0/1
};

/// The file as a 0/1 mask: foreground = value != 0, or value >= threshold when given. Image files
/// are read as 8-bit gray (colour through PIL's luma), .npy files as 2-D arrays of any real dtype.
mask read_mask(const fs::path& p, std::optional<double> threshold) {
    mask m;
    auto set = [&](const auto& a) {
        m.rows = a.shape(0);
        m.cols = a.shape(1);
        m.fg.resize(a.size());
        for (std::size_t i = 0; i < a.size(); ++i) {
            const double v = static_cast<double>(a.data()[i]);
            m.fg[i] = threshold ? v >= *threshold : v != 0;
        }
    };
    if (lower_ext(p) == ".npy") set(io::read_image_any(p));
    else set(io::read_gray8(p));
    return m;
}

/// Mask files of a folder by stem (suffix removed; files whose stem lacks the suffix are ignored
/// when a suffix is given), the stems matching `pattern` only. Two files of one stem (a.png, a.npy)
/// are ambiguous.
std::map<std::string, fs::path> list_masks(const fs::path& dir, const std::string& suffix, const std::string& pattern,
                                           std::vector<std::pair<std::string, std::string>>& problems,
                                           std::vector<std::string>& ignored, std::set<std::string>& ambiguous) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file() && is_mask_file(e.path())) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    std::map<std::string, std::vector<fs::path>> by_stem;
    for (const auto& f : files) {
        std::string stem = f.stem().string();
        if (!suffix.empty()) {
            if (stem.size() <= suffix.size() || stem.compare(stem.size() - suffix.size(), suffix.size(), suffix) != 0) {
                ignored.push_back(f.string());
                continue;
            }
            stem.resize(stem.size() - suffix.size());
        }
        if (fnmatch(pattern.c_str(), stem.c_str(), 0) != 0) continue;
        by_stem[stem].push_back(f);
    }
    std::map<std::string, fs::path> out;
    for (const auto& [stem, paths] : by_stem) {
        if (paths.size() == 1) {
            out.emplace(stem, paths[0]);
            continue;
        }
        ambiguous.insert(stem);
        std::string all;
        for (const auto& q : paths) all += (all.empty() ? "" : ", ") + q.filename().string();
        problems.emplace_back(paths[0].string(), "shares its stem with " + all.substr(all.find(',') + 2) +
                                                     " in the same folder: which one is meant? all skipped");
    }
    return out;
}

std::string csv_quote(const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"vasomim-metrics: Dice, clDice (scikit-image skeletons), sensitivity and precision of predicted "
                 "masks against reference masks, paired by file stem; any nonzero pixel is foreground"};
    std::string pred_dir, ref_dir, ref_suffix, pred_suffix, csv, pattern = "*";
    std::optional<double> threshold;
    bool overwrite = false, quiet = false;
    app.add_option("--pred", pred_dir, "folder of predicted masks (png, jpg, bmp, tga, pnm, npy)")->required();
    app.add_option("--ref", ref_dir, "folder of reference masks")->required();
    app.add_option("--ref-suffix", ref_suffix,
                   "end of the reference stems after the shared part, e.g. _gt for training_01_gt.png");
    app.add_option("--pred-suffix", pred_suffix, "end of the prediction stems after the shared part");
    app.add_option("--pattern", pattern, "score only the shared stems matching this glob, e.g. 'training_*'")
        ->capture_default_str();
    app.add_option("--threshold", threshold,
                   "foreground = value >= T (default: any nonzero value; coronary80's README asks for 128)");
    app.add_option("--csv", csv, "write one row per image to FILE");
    app.add_flag("--overwrite", overwrite, "replace an existing --csv file");
    app.add_flag("-q,--quiet", quiet, "print only the summary, not a line per image");
    CLI11_PARSE(app, argc, argv);

    for (const auto& [what, dir] : {std::pair{"--pred", pred_dir}, std::pair{"--ref", ref_dir}}) {
        std::error_code ec;
        if (!fs::is_directory(dir, ec)) {
            std::fprintf(stderr, "error: %s '%s' is not a folder\n", what, dir.c_str());
            return 2;
        }
    }
    if (!csv.empty() && fs::exists(csv) && !overwrite) {
        std::fprintf(stderr, "error: '%s' exists; pass --overwrite to replace it\n", csv.c_str());
        return 2;
    }

    std::vector<std::pair<std::string, std::string>> problems;  // file, why
    std::vector<std::string> ignored;
    std::set<std::string> ambiguous;  // their partners are not "unpaired"
    std::map<std::string, fs::path> preds, refs;
    try {
        preds = list_masks(pred_dir, pred_suffix, pattern, problems, ignored, ambiguous);
        refs = list_masks(ref_dir, ref_suffix, pattern, problems, ignored, ambiguous);
    } catch (const fs::filesystem_error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    }
    std::vector<std::string> stems;
    std::vector<std::string> pred_only, ref_only;
    for (const auto& [s, p] : preds)
        if (refs.count(s)) stems.push_back(s);
        else if (!ambiguous.count(s)) pred_only.push_back(p.string());
    for (const auto& [s, p] : refs)
        if (!preds.count(s) && !ambiguous.count(s)) ref_only.push_back(p.string());
    if (stems.empty()) {
        std::fprintf(stderr, "error: no prediction in '%s' has a reference in '%s' (%zu predictions, %zu references%s)\n",
                     pred_dir.c_str(), ref_dir.c_str(), preds.size(), refs.size(),
                     ref_suffix.empty() ? "; names like x_gt.png need --ref-suffix _gt" : "");
        return 2;
    }

    std::ofstream out;
    const std::string csv_tmp = csv + ".tmp";
    if (!csv.empty()) {
        out.open(csv_tmp);
        if (!out) {
            std::fprintf(stderr, "error: cannot write '%s'\n", csv.c_str());
            return 2;
        }
        out << "image,pred,ref,rows,cols,dice,cldice,sensitivity,precision,topology_precision,"
               "topology_sensitivity,pred_pixels,ref_pixels,overlap_pixels\n";
        out.precision(17);
    }
    if (!quiet) std::printf("%-28s %8s %8s %8s %8s\n", "image", "dice", "cldice", "sens", "prec");
    std::vector<metrics::segmentation_scores> scores;
    double scoring_s = 0;  // skeletons and counts, file reading excluded
    metrics::skeleton_workspace ws;
    std::vector<std::uint8_t> pred_skeleton, ref_skeleton;
    for (const auto& s : stems) {
        const fs::path& pp = preds[s];
        const fs::path& rp = refs[s];
        mask p, g;
        try {
            p = read_mask(pp, threshold);
        } catch (const std::exception& e) {
            problems.emplace_back(pp.string(), e.what());
            continue;
        }
        try {
            g = read_mask(rp, threshold);
        } catch (const std::exception& e) {
            problems.emplace_back(rp.string(), e.what());
            continue;
        }
        if (p.rows != g.rows || p.cols != g.cols) {
            problems.emplace_back(pp.string(), "is " + std::to_string(p.rows) + " x " + std::to_string(p.cols) +
                                                   " but its reference " + rp.string() + " is " +
                                                   std::to_string(g.rows) + " x " + std::to_string(g.cols));
            continue;
        }
        const auto t0 = std::chrono::steady_clock::now();
        pred_skeleton.resize(p.fg.size());
        ref_skeleton.resize(p.fg.size());
        const auto c = metrics::count_overlap(p.fg.data(), g.fg.data(), p.rows, p.cols, pred_skeleton.data(),
                                              ref_skeleton.data(), &ws);
        scoring_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const auto sc = metrics::scores_from_counts(c);
        scores.push_back(sc);
        if (!quiet) std::printf("%-28s %8.4f %8.4f %8.4f %8.4f\n", s.c_str(), sc.dice, sc.cldice, sc.sensitivity, sc.precision);
        if (out)
            out << csv_quote(s) << ',' << csv_quote(pp.string()) << ',' << csv_quote(rp.string()) << ',' << p.rows
                << ',' << p.cols << ',' << sc.dice << ',' << sc.cldice << ',' << sc.sensitivity << ','
                << sc.precision << ',' << sc.topology_precision << ',' << sc.topology_sensitivity << ','
                << c.pred << ',' << c.ref << ',' << c.both << '\n';
    }
    if (!csv.empty()) {
        out.close();
        std::error_code ec;
        if (!out || (fs::rename(csv_tmp, csv, ec), ec)) {
            std::fprintf(stderr, "error: cannot write '%s'%s%s\n", csv.c_str(), ec ? ": " : "", ec ? ec.message().c_str() : "");
            fs::remove(csv_tmp, ec);
            return 2;
        }
    }

    const auto sum = metrics::summarize(scores);
    std::printf("%zu images scored (mean +- std, population); skeletons and counts %.3f ms per image\n", sum.images,
                sum.images ? 1e3 * scoring_s / double(sum.images) : 0.0);
    if (sum.images > 0) {
        std::printf("  dice        %.4f +- %.4f\n", sum.mean.dice, sum.std.dice);
        std::printf("  cldice      %.4f +- %.4f\n", sum.mean.cldice, sum.std.cldice);
        std::printf("  sensitivity %.4f +- %.4f\n", sum.mean.sensitivity, sum.std.sensitivity);
        std::printf("  precision   %.4f +- %.4f\n", sum.mean.precision, sum.std.precision);
        std::printf("  Tprec       %.4f +- %.4f\n", sum.mean.topology_precision, sum.std.topology_precision);
        std::printf("  Tsens       %.4f +- %.4f\n", sum.mean.topology_sensitivity, sum.std.topology_sensitivity);
    }
    if (!csv.empty()) std::printf("per-image rows in %s\n", csv.c_str());

    for (const auto& f : pred_only) std::fprintf(stderr, "  no reference for: %s\n", f.c_str());
    for (const auto& f : ref_only) std::fprintf(stderr, "  no prediction for: %s\n", f.c_str());
    for (const auto& f : ignored)
        std::fprintf(stderr, "  ignored (stem does not end with the suffix): %s\n", f.c_str());
    for (const auto& [f, why] : problems) std::fprintf(stderr, "  skipped: %s: %s\n", f.c_str(), why.c_str());
    const std::size_t unpaired = pred_only.size() + ref_only.size();
    if (unpaired + problems.size() > 0)
        std::fprintf(stderr, "%zu unpaired file(s), %zu skipped\n", unpaired, problems.size());
    return unpaired + problems.size() > 0 ? 1 : 0;
}
