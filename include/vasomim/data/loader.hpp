#pragma once
// A prefetching batch loader on worker threads. Batch b of epoch e holds the same samples with the
// same augmentation whatever the number of workers: the epoch's order is a Philox permutation of
// (seed, e) and each sample's augmentation stream is keyed by (seed, e, dataset index). Unreadable
// files are skipped (replaced by the next readable index), counted and named in failures().
//
// Data parallelism (the distributed sampler): with `world` ranks of `batch_size` samples each,
// global batch k of an epoch is positions [k N b, (k + 1) N b) of the epoch's permutation and rank
// r takes its contiguous slice [k N b + r b, k N b + (r + 1) b). The global sample order is then the
// one of a single process with batch N b, whatever N is; batch::first_sample says where a rank's
// slice starts inside the global batch (the masks are keyed by it).

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "vasomim/core/error.hpp"
#include "vasomim/core/philox.hpp"
#include "vasomim/data/labelled_image.hpp"
#include "vasomim/data/transforms.hpp"

namespace vasomim::data {

struct loader_options {
    std::size_t batch_size = 64;
    std::size_t workers = 2;          ///< 0: load on the calling thread
    std::size_t prefetch_batches = 4;  ///< batches prepared ahead of the consumer
    std::uint64_t seed = 0;
    bool shuffle = true;
    augment_options augment{};
    std::size_t rank = 0;   ///< this process's rank among `world` data-parallel ranks
    std::size_t world = 1;  ///< data-parallel ranks; each takes batch_size samples of a global batch
};

/// A batch: images N x 3 x S x S (normalised), masks N x S x S in {0, 1}, dataset indices.
struct batch {
    xt::xtensor<float, 4> images;
    xt::xtensor<float, 3> masks;
    std::vector<std::size_t> indices;
    std::int64_t epoch = 0;
    std::size_t number = 0;  ///< batch number within the epoch
    std::size_t first_sample = 0;  ///< position of sample 0 in the global batch (rank * batch_size)
};

/// A file that could not be read, and why.
struct load_failure {
    std::string name;
    std::string message;
};

template <class Dataset>
class prefetch_loader {
public:
    prefetch_loader(const Dataset& dataset, loader_options options) : data_(dataset), opt_(options) {
        if (opt_.batch_size == 0) throw config_error("loader: batch size must be positive");
        if (opt_.world == 0 || opt_.rank >= opt_.world)
            throw config_error("loader: rank " + std::to_string(opt_.rank) + " of a world of " +
                               std::to_string(opt_.world));
        if (dataset.size() < opt_.batch_size * opt_.world)
            throw config_error("loader: the data set has " + std::to_string(dataset.size()) +
                               " images, fewer than one batch of " + std::to_string(opt_.batch_size) +
                               (opt_.world > 1 ? " for each of " + std::to_string(opt_.world) + " ranks (" +
                                                     std::to_string(opt_.batch_size * opt_.world) + ")"
                                               : std::string()));
        if (opt_.prefetch_batches == 0) opt_.prefetch_batches = 1;
    }
    prefetch_loader(const prefetch_loader&) = delete;
    prefetch_loader& operator=(const prefetch_loader&) = delete;
    ~prefetch_loader() { stop(); }

    /// Full (global) batches per epoch (the incomplete last batch is dropped, as MAE does).
    std::size_t batches_per_epoch() const { return data_.size() / (opt_.batch_size * opt_.world); }
    const loader_options& options() const { return opt_; }

    /// Begins epoch `epoch` (optionally from batch `first_batch`, for resuming a run).
    void start_epoch(std::int64_t epoch, std::size_t first_batch = 0) {
        stop();
        epoch_ = epoch;
        order_.resize(data_.size());
        std::iota(order_.begin(), order_.end(), std::size_t(0));
        if (opt_.shuffle) {
            // Sort by Philox keys of (seed, epoch): a permutation independent of threads.
            const philox g(opt_.seed, 0x0e0c000000000000ull ^ static_cast<std::uint64_t>(epoch));
            std::vector<std::uint32_t> keys(order_.size());
            for (std::size_t i = 0; i < keys.size(); ++i) keys[i] = g.bits(i);
            std::stable_sort(order_.begin(), order_.end(), [&](std::size_t a, std::size_t b) { return keys[a] < keys[b]; });
        }
        next_to_make_ = next_to_take_ = first_batch;
        ready_.clear();
        stopping_ = false;
        for (std::size_t w = 0; w < opt_.workers; ++w) workers_.emplace_back([this] { work(); });
    }

    /// The next batch of the epoch in order, or nullopt at its end. Rethrows a worker's error
    /// (e.g. an image and mask of different sizes).
    std::optional<batch> next() {
        if (next_to_take_ >= batches_per_epoch()) return std::nullopt;
        if (opt_.workers == 0) {
            auto b = make(next_to_take_++);
            return b;
        }
        std::unique_lock<std::mutex> lock(mutex_);
        produced_.wait(lock, [&] { return ready_.count(next_to_take_) > 0; });
        auto node = ready_.extract(next_to_take_++);
        consumed_.notify_all();
        if (node.mapped().error) std::rethrow_exception(node.mapped().error);
        return std::move(node.mapped().value);
    }

    /// Files skipped so far, in the order they were met.
    std::vector<load_failure> failures() const {
        std::lock_guard<std::mutex> lock(failure_mutex_);
        return failures_;
    }

private:
    struct slot {
        std::optional<batch> value;
        std::exception_ptr error;
    };

    void stop() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
        }
        consumed_.notify_all();
        for (auto& t : workers_) t.join();
        workers_.clear();
    }

    void work() {
        for (;;) {
            std::size_t b;
            {
                std::unique_lock<std::mutex> lock(mutex_);
                consumed_.wait(lock, [&] {
                    return stopping_ || next_to_make_ >= batches_per_epoch() ||
                           next_to_make_ < next_to_take_ + opt_.prefetch_batches;
                });
                if (stopping_ || next_to_make_ >= batches_per_epoch()) return;
                b = next_to_make_++;
            }
            slot s;
            try {
                s.value = make(b);
            } catch (...) {
                s.error = std::current_exception();
            }
            {
                std::lock_guard<std::mutex> lock(mutex_);
                ready_.emplace(b, std::move(s));
            }
            produced_.notify_all();
        }
    }

    /// Loads dataset index i, or the next readable one after it; records what was skipped.
    labelled_image load_readable(std::size_t i) {
        for (std::size_t tries = 0; tries < data_.size(); ++tries) {
            const std::size_t k = (i + tries) % data_.size();
            try {
                return data_.load(k);
            } catch (const shape_error&) {
                throw;  // a mismatched image/mask pair is a data error, not a bad file
            } catch (const io_error& e) {
                std::lock_guard<std::mutex> lock(failure_mutex_);
                failures_.push_back({data_.name(k), e.what()});
            }
        }
        throw io_error("loader: no readable image in the data set");
    }

    batch make(std::size_t number) {
        const std::size_t n = opt_.batch_size, s = static_cast<std::size_t>(opt_.augment.size);
        batch out{xt::xtensor<float, 4>::from_shape({n, 3, s, s}), xt::xtensor<float, 3>::from_shape({n, s, s}), {}, epoch_,
                  number, opt_.rank * n};
        const std::size_t first = (number * opt_.world + opt_.rank) * n;
        for (std::size_t j = 0; j < n; ++j) {
            const std::size_t idx = order_[first + j];
            const labelled_image img = load_readable(idx);
            random_stream rng(opt_.seed, stream_id(static_cast<std::uint64_t>(epoch_), idx));
            const auto a = augment(img.image, img.mask, opt_.augment, rng);
            std::copy(a.image.begin(), a.image.end(), out.images.begin() + std::ptrdiff_t(j * 3 * s * s));
            std::copy(a.mask.begin(), a.mask.end(), out.masks.begin() + std::ptrdiff_t(j * s * s));
            out.indices.push_back(idx);
        }
        return out;
    }

    const Dataset& data_;
    loader_options opt_;
    std::int64_t epoch_ = 0;
    std::vector<std::size_t> order_;
    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable produced_, consumed_;
    std::map<std::size_t, slot> ready_;
    std::size_t next_to_make_ = 0, next_to_take_ = 0;
    bool stopping_ = false;
    mutable std::mutex failure_mutex_;
    std::vector<load_failure> failures_;
};

}  // namespace vasomim::data
