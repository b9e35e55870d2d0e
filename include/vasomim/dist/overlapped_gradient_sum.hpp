#pragma once
// The gradient sum of data parallelism overlapped with the backward pass (as DDP's buckets): the
// backward pass says, through model::step_context::gradients_final_from, from which offset on the
// gradient buffer is final; every time at least `bucket` more floats are final, their allreduce is
// handed to a communication thread, which runs it while the backward pass goes on. At the end
// (model::step_context::reduce_gradients) the rest is reduced and everything waited for. The sums
// are element-wise, so the result is the same as one allreduce of the whole buffer.
//
// Two ways to run the sums beside the backward pass:
// - a stream-ordered communicator (dist::nccl, GPU memory): each bucket's sum is queued on the
//   communicator's stream behind the kernels that wrote it; no thread here;
// - otherwise host memory and a communicator whose calls may come from another thread than the one
//   that made it while that one makes none (dist::mpi with MPI_THREAD_SERIALIZED, which
//   dist::mpi_environment asks for): a communication thread runs the sums.
// The backward pass takes 1 / ranks (prescaled), as with gradient_averager.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>

#include "vasomim/core/error.hpp"
#include "vasomim/dist/communicator.hpp"

namespace vasomim::dist {

template <communicator C>
class overlapped_gradient_sum {
public:
    /// `bucket`: floats per allreduce (default 2^22, 16 MiB; DDP's default bucket is 25 MiB).
    explicit overlapped_gradient_sum(C& comm, index_t bucket = index_t(1) << 22) : comm_(&comm), bucket_(bucket) {
        if (bucket_ <= 0) throw config_error("overlapped_gradient_sum: the bucket must hold at least one float");
        if (comm_->size() > 1 && !stream_ordered) worker_ = std::thread([this] { work(); });
    }
    overlapped_gradient_sum(const overlapped_gradient_sum&) = delete;
    overlapped_gradient_sum& operator=(const overlapped_gradient_sum&) = delete;
    ~overlapped_gradient_sum() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        if (worker_.joinable()) worker_.join();
    }

    /// step_context::gradients_final_from: [from, n) of `grads` is final.
    void final_from(float* grads, index_t from, index_t n) {
        if (comm_->size() == 1) return;
        if (pending_end_ < 0) pending_end_ = n;  // the first call of a step
        if (pending_end_ - from >= bucket_ || (from == 0 && pending_end_ > 0)) {
            enqueue(grads + from, pending_end_ - from);
            pending_end_ = from;
        }
    }

    /// step_context::reduce_gradients: reduces what is left and waits for every bucket.
    void operator()(float* grads, index_t n) {
        if (comm_->size() == 1) return;
        if (pending_end_ < 0) pending_end_ = n;  // no final_from this step (e.g. another network)
        if (pending_end_ > 0) enqueue(grads, pending_end_);
        pending_end_ = -1;
        if constexpr (stream_ordered) {
            comm_->wait_enqueued();
            return;
        }
        std::unique_lock<std::mutex> lock(mutex_);
        idle_.wait(lock, [&] { return queue_.empty() && !busy_; });
        if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    }

    /// Allreduces handed to the thread so far (for tests: > 1 per step means overlap).
    std::uint64_t buckets() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return buckets_;
    }

private:
    static constexpr bool stream_ordered = stream_ordered_communicator<C>;

    struct span {
        float* data;
        index_t n;
    };

    void enqueue(float* p, index_t n) {
        if constexpr (stream_ordered) {
            comm_->allreduce_sum_enqueue(p, n);
            std::lock_guard<std::mutex> lock(mutex_);
            ++buckets_;
            return;
        }
        {
            std::lock_guard<std::mutex> lock(mutex_);
            queue_.push_back({p, n});
            ++buckets_;
        }
        wake_.notify_all();
    }

    void work() {
        for (;;) {
            span s;
            {
                std::unique_lock<std::mutex> lock(mutex_);
                wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
                if (queue_.empty()) return;  // stopping
                s = queue_.front();
                queue_.pop_front();
                busy_ = true;
            }
            std::exception_ptr e;
            try {
                comm_->allreduce_sum(s.data, s.n);
            } catch (...) {
                e = std::current_exception();
            }
            {
                std::lock_guard<std::mutex> lock(mutex_);
                busy_ = false;
                if (e && !error_) error_ = e;
            }
            idle_.notify_all();
        }
    }

    C* comm_;
    index_t bucket_;
    index_t pending_end_ = -1;  // [0, pending_end_) not handed over yet; -1 between steps
    mutable std::mutex mutex_;
    std::condition_variable wake_, idle_;
    std::deque<span> queue_;
    bool busy_ = false, stopping_ = false;
    std::exception_ptr error_;
    std::uint64_t buckets_ = 0;
    std::thread worker_;
};

}  // namespace vasomim::dist
