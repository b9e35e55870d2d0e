#include <algorithm>
#include <gtest/gtest.h>

#include "vasomim/core/config.hpp"

#if !VASOMIM_HAS_CUDA
#include <filesystem>
#include <fstream>
#include <set>

#include "vasomim/data/folder_dataset.hpp"
#include "vasomim/data/loader.hpp"
#include "vasomim/io/image.hpp"

namespace {

using namespace vasomim;
using namespace vasomim::data;
namespace fs = std::filesystem;

loader_options small_options(std::size_t workers) {
    loader_options o;
    o.batch_size = 4;
    o.workers = workers;
    o.prefetch_batches = 2;
    o.seed = 11;
    o.augment.size = 32;
    return o;
}

std::vector<batch> whole_epoch(prefetch_loader<synthetic_dataset>& loader, std::int64_t epoch) {
    loader.start_epoch(epoch);
    std::vector<batch> out;
    while (auto b = loader.next()) out.push_back(std::move(*b));
    return out;
}

TEST(Loader, BatchesAreIdenticalForAnyWorkerCount) {
    synthetic_angiogram_options so;
    so.height = so.width = 48;
    const synthetic_dataset data(18, 5, so);
    prefetch_loader<synthetic_dataset> l0(data, small_options(0)), l1(data, small_options(1)), l3(data, small_options(3));
    EXPECT_EQ(l0.batches_per_epoch(), 4u);
    const auto a = whole_epoch(l0, 2), b = whole_epoch(l1, 2), c = whole_epoch(l3, 2);
    ASSERT_EQ(a.size(), 4u);
    ASSERT_EQ(b.size(), 4u);
    ASSERT_EQ(c.size(), 4u);
    std::set<std::size_t> seen;
    for (std::size_t k = 0; k < a.size(); ++k) {
        EXPECT_EQ(a[k].indices, b[k].indices);
        EXPECT_EQ(a[k].indices, c[k].indices);
        EXPECT_EQ(a[k].images, b[k].images);
        EXPECT_EQ(a[k].images, c[k].images);
        EXPECT_EQ(a[k].masks, c[k].masks);
        EXPECT_EQ(a[k].number, k);
        seen.insert(a[k].indices.begin(), a[k].indices.end());
    }
    EXPECT_EQ(seen.size(), 16u) << "an epoch draws distinct images";
    const auto other = whole_epoch(l0, 3);
    EXPECT_NE(other[0].indices, a[0].indices) << "epochs are shuffled differently";
}

TEST(Loader, ResumesMidEpochWithTheSameBatches) {
    synthetic_angiogram_options so;
    so.height = so.width = 40;
    const synthetic_dataset data(12, 1, so);
    prefetch_loader<synthetic_dataset> full(data, small_options(2)), resumed(data, small_options(2));
    const auto all = whole_epoch(full, 0);
    resumed.start_epoch(0, 1);
    auto b = resumed.next();
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->indices, all[1].indices);
    EXPECT_EQ(b->images, all[1].images);
}

TEST(Loader, RejectsBatchZeroAndTooSmallDataSets) {
    const synthetic_dataset data(3, 1);
    auto o = small_options(0);
    o.batch_size = 0;
    EXPECT_THROW((prefetch_loader<synthetic_dataset>(data, o)), config_error);
    o.batch_size = 4;
    EXPECT_THROW((prefetch_loader<synthetic_dataset>(data, o)), config_error);
}

class FolderDataset : public ::testing::Test {
protected:
    void SetUp() override {
        root_ = fs::temp_directory_path() / ("vasomim_folder_" + std::to_string(::getpid()));
        fs::remove_all(root_);
        fs::create_directories(root_ / "cases");
        fs::create_directories(root_ / "cases_frangi");
        synthetic_angiogram_options so;
        so.height = so.width = 40;
        for (int k = 0; k < 6; ++k) {
            const auto s = make_synthetic_angiogram(so, 3, std::uint64_t(k));
            const std::string name = "img" + std::to_string(k) + ".png";
            io::write_png(root_ / "cases" / name, s.image);
            io::write_png(root_ / "cases_frangi" / name, s.mask);
        }
    }
    void TearDown() override { fs::remove_all(root_); }
    fs::path root_;
};

TEST_F(FolderDataset, ReadsTheXa170kLayout) {
    const folder_dataset data(root_);
    ASSERT_EQ(data.size(), 6u);
    const auto s = data.load(2);
    EXPECT_EQ(s.image.shape()[0], 40u);
    EXPECT_EQ(s.mask.shape(), s.image.shape());
}

// The released name of the pseudo-label folder (XA-SSL util/vessel_dataset.py): <name>_filter_92/,
// preferred over <name>_frangi/ when both exist.
TEST_F(FolderDataset, ReadsTheReleasedFilter92Folders) {
    fs::create_directories(root_ / "cases_filter_92");
    for (int k = 0; k < 6; ++k) {
        xt::xtensor<std::uint8_t, 2> m = xt::zeros<std::uint8_t>({40, 40});
        m(1, 2) = 255;
        io::write_png(root_ / "cases_filter_92" / ("img" + std::to_string(k) + ".png"), m);
    }
    const folder_dataset data(root_);
    ASSERT_EQ(data.size(), 6u) << "the mask folder is not taken for a folder of images";
    EXPECT_NE(data.at(3).mask.string().find("cases_filter_92"), std::string::npos) << data.at(3).mask;
    EXPECT_EQ(data.load(3).mask(1, 2), 255);
}

TEST_F(FolderDataset, LoaderSkipsAndNamesCorruptFiles) {
    { std::ofstream(root_ / "cases" / "img1.png") << "not a png"; }
    const folder_dataset data(root_);
    auto o = small_options(2);
    o.batch_size = 3;
    o.shuffle = false;
    prefetch_loader<folder_dataset> loader(data, o);
    loader.start_epoch(0);
    std::size_t batches = 0;
    while (auto b = loader.next()) ++batches;
    EXPECT_EQ(batches, 2u);
    const auto f = loader.failures();
    ASSERT_EQ(f.size(), 1u);
    EXPECT_NE(f[0].name.find("img1.png"), std::string::npos);
}

TEST_F(FolderDataset, MismatchedImageAndMaskNameBothFiles) {
    io::write_png(root_ / "cases_frangi" / "img4.png", xt::xtensor<std::uint8_t, 2>(xt::zeros<std::uint8_t>({8, 8})));
    const folder_dataset data(root_);
    try {
        data.load(4);
        FAIL() << "no exception";
    } catch (const shape_error& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("cases/img4.png"), std::string::npos) << m;
        EXPECT_NE(m.find("cases_frangi/img4.png"), std::string::npos) << m;
    }
}

TEST_F(FolderDataset, ComputesAndCachesMissingMasks) {
    fs::remove_all(root_ / "cases_frangi");
    int calls = 0;
    const folder_dataset data(root_, [&](const xt::xtensor<std::uint8_t, 2>& img) {
        ++calls;
        xt::xtensor<std::uint8_t, 2> m = xt::zeros<std::uint8_t>(img.shape());
        m(0, 0) = 255;
        return m;
    });
    EXPECT_EQ(data.load(0).mask(0, 0), 255);
    EXPECT_TRUE(fs::exists(root_ / "cases_frangi" / "img0.png"));
    data.load(0);
    EXPECT_EQ(calls, 1) << "the cached mask is read back, not recomputed";
    EXPECT_THROW(folder_dataset(root_ / "missing"), config_error);
}

// Another kind of pseudo-label (e.g. the field-of-view-aware one) is cached in its own folder and
// never read from the released one, so that the two never mix.
TEST_F(FolderDataset, OtherMaskKindsAreCachedApart) {
    int calls = 0;
    const folder_dataset data(root_, [&](const xt::xtensor<std::uint8_t, 2>& img) {
        ++calls;
        return xt::xtensor<std::uint8_t, 2>(xt::zeros<std::uint8_t>(img.shape()));
    }, "_fov");
    ASSERT_EQ(data.size(), 6u);
    const auto m = data.load(1).mask;
    EXPECT_TRUE(std::all_of(m.begin(), m.end(), [](std::uint8_t v) { return v == 0; })) << "the released mask was read";
    EXPECT_EQ(calls, 1);
    EXPECT_TRUE(fs::exists(root_ / "cases_fov" / "img1.png"));
    EXPECT_EQ(folder_dataset(root_).size(), 6u) << "the cache folder is not taken for a folder of images";
    EXPECT_THROW(folder_dataset(root_, {}, ""), config_error);
}

}  // namespace
#endif
