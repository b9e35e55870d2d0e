// Folder listings and the inputs a file stands for (io/image_files.hpp), and folder_dataset over a
// folder that holds DICOM cine runs: every frame an entry with its own mask name.
#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

#include "vasomim/data/folder_dataset.hpp"
#include "vasomim/io/image.hpp"
#include "vasomim/io/image_files.hpp"
#include "vasomim/io/npy.hpp"

namespace {

namespace fs = std::filesystem;
using namespace vasomim;

const fs::path dicom_dir = fs::path(VASOMIM_TEST_DATA_DIR) / "dicom";

/// A fresh, empty folder under the test temp dir.
fs::path fresh_dir(const std::string& name) {
    const fs::path d = fs::path(::testing::TempDir()) / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

TEST(ImageFiles, KnowsImageExtensionsInAnyCase) {
    for (const char* f : {"a.png", "a.PNG", "b.jpg", "c.JPEG", "d.bmp", "e.tif", "f.npy", "run.dcm", "RUN.DICOM"})
        EXPECT_TRUE(io::is_image_file(f)) << f;
    for (const char* f : {"notes.txt", "a.png.bak", "checkpoint.safetensors", "README", "a.csv"})
        EXPECT_FALSE(io::is_image_file(f)) << f;
}

TEST(ImageFiles, ListsAFoldersImagesSortedAndRefusesAMissingFolder) {
    const fs::path d = fresh_dir("vasomim_image_files_list");
    for (const char* f : {"b.png", "a.DCM", "notes.txt", "c.npy"}) std::ofstream(d / f) << "x";
    fs::create_directories(d / "sub.png");  // a folder, whatever its name
    EXPECT_EQ(io::list_image_files(d), (std::vector<fs::path>{d / "a.DCM", d / "b.png", d / "c.npy"}));
    EXPECT_THROW(io::list_image_files(d / "missing"), io_error);
    fs::remove_all(d);
}

TEST(ImageFiles, StemsNameFramesOfARun) {
    EXPECT_EQ(io::input_stem("/data/run.dcm#17"), "run_f017");
    EXPECT_EQ(io::input_stem("/data/run.dcm#1234"), "run_f1234");
    EXPECT_EQ(io::input_stem("/data/training_01.png"), "training_01");
    EXPECT_EQ(io::expand_frames("/data/x.png"), (std::vector<fs::path>{"/data/x.png"}));
}

#if VASOMIM_DICOM_READER

TEST(ImageFiles, ExpandsMultiFrameRunsFollowingTheSelection) {
    const fs::path run = dicom_dir / "mono8_multiframe.dcm";  // 5 frames
    const auto all = io::expand_frames(run);
    ASSERT_EQ(all.size(), 5u);
    for (std::size_t k = 0; k < all.size(); ++k) EXPECT_EQ(all[k], fs::path(run.string() + "#" + std::to_string(k)));
    EXPECT_EQ(io::expand_frames(run, io::frame_selection::parse("*/2")),
              (std::vector<fs::path>{run.string() + "#0", run.string() + "#2", run.string() + "#4"}));
    // A single-frame object keeps its own name; a selection past its end is refused.
    EXPECT_EQ(io::expand_frames(dicom_dir / "mono8.dcm"), (std::vector<fs::path>{dicom_dir / "mono8.dcm"}));
    EXPECT_THROW(io::expand_frames(dicom_dir / "mono8.dcm", io::frame_selection::parse("3")), value_error);
    EXPECT_THROW(io::expand_frames(run, io::frame_selection::parse("9")), value_error);
    EXPECT_THROW(io::expand_frames(dicom_dir / "garbage.dcm"), format_error);
}

TEST(ImageFiles, FolderDatasetTakesEveryFrameOfARunWithItsOwnMask) {
    const fs::path root = fresh_dir("vasomim_image_files_dataset");
    fs::create_directories(root / "images");
    fs::create_directories(root / "masks");
    fs::copy_file(dicom_dir / "mono8_multiframe.dcm", root / "images" / "run.dcm");
    fs::copy_file(dicom_dir / "garbage.dcm", root / "images" / "zz_broken.dcm");
    const auto frames = io::read_npy<std::uint8_t>(dicom_dir / "mono8_multiframe.npy");
    for (std::size_t k = 0; k < 5; ++k) {
        xt::xtensor<std::uint8_t, 2> m = xt::zeros<std::uint8_t>({std::size_t(24), std::size_t(32)});
        m(k, k) = 255;  // each frame's mask tells which file was read
        io::write_png(root / "masks" / ("run" + io::frame_suffix(k) + ".png"), m);
    }
    const data::folder_dataset ds(root);
    ASSERT_EQ(ds.size(), 6u);  // 5 frames and the broken file
    for (std::size_t k = 0; k < 5; ++k) {
        EXPECT_EQ(ds.at(k).image, fs::path((root / "images" / "run.dcm").string() + "#" + std::to_string(k)));
        const auto s = ds.load(k);
        const xt::xtensor<std::uint8_t, 2> want = xt::view(frames, k, xt::all(), xt::all());
        EXPECT_EQ(s.image, want) << k;
        EXPECT_EQ(s.mask(k, k), 255) << k;
        EXPECT_EQ(xt::sum(s.mask)(), 255) << k;
    }
    // The broken file stays one entry that load() refuses, naming it (the loader skips it).
    EXPECT_EQ(ds.at(5).image, root / "images" / "zz_broken.dcm");
    try {
        (void)ds.load(5);
        ADD_FAILURE() << "a broken DICOM file was read";
    } catch (const format_error& e) {
        EXPECT_NE(std::string(e.what()).find("zz_broken.dcm"), std::string::npos) << e.what();
    }
    fs::remove_all(root);
}

TEST(ImageFiles, FolderDatasetCachesPseudoLabelsOfFramesUnderFrameNames) {
    const fs::path root = fresh_dir("vasomim_image_files_plain");
    fs::copy_file(dicom_dir / "multi16_rle.dcm", root / "cine.dcm");  // 3 frames
    int made = 0;
    const data::folder_dataset ds(root, [&](const xt::xtensor<std::uint8_t, 2>& img) {
        ++made;
        return xt::xtensor<std::uint8_t, 2>(xt::zeros_like(img));
    });
    ASSERT_EQ(ds.size(), 3u);
    for (std::size_t k = 0; k < 3; ++k) (void)ds.load(k);
    EXPECT_EQ(made, 3);
    const fs::path cache(root.string() + "_frangi");
    for (const char* f : {"cine_f000.png", "cine_f001.png", "cine_f002.png"}) EXPECT_TRUE(fs::exists(cache / f)) << f;
    for (std::size_t k = 0; k < 3; ++k) (void)ds.load(k);
    EXPECT_EQ(made, 3);  // read back from the cache
    fs::remove_all(root);
    fs::remove_all(cache);
}

#endif  // VASOMIM_DICOM_READER

}  // namespace

#endif  // !VASOMIM_HAS_CUDA
