#pragma once
// Data parallelism on any communicator (dist/communicator.hpp), as PyTorch DDP does it: the
// parameters are broadcast from rank 0 at the start, the gradient buffer (one flat buffer per
// model, nn/parameters.hpp) is averaged across ranks before every optimiser step, and every rank
// checks at the start that all ranks run the same configuration.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/error.hpp"
#include "vasomim/core/tensor.hpp"
#include "vasomim/dist/communicator.hpp"

namespace vasomim::dist {

namespace detail {
/// Runs `op(pointer)` on `n` floats of backend memory `data`: directly when the communicator takes
/// that memory, else through a host copy (e.g. MPI with tensors on the GPU).
template <backend_policy B, class Op>
void on_comm_memory(bool comm_takes_device, float* data, index_t n, std::vector<float>& staging, Op op) {
    if (comm_takes_device || backend_traits<B>::host_accessible) {
        op(data);
        return;
    }
    staging.resize(static_cast<std::size_t>(n));
    backend_traits<B>::copy_to_host(data, n, staging.data());
    op(staging.data());
    backend_traits<B>::copy_from_host(staging.data(), n, data);
}
}  // namespace detail

/// Replaces `values` on every rank by rank 0's.
template <backend_policy B, communicator C>
void broadcast_from_root(C& comm, tensor<float, B>& values) {
    if (comm.size() == 1) return;
    std::vector<float> staging;
    detail::on_comm_memory<B>(C::device_memory, values.data(), values.numel(), staging,
                              [&](float* p) { comm.broadcast(p, values.numel(), 0); });
}

/// Broadcasts a model's parameters from rank 0 (and its frozen segmentor's, when it has one), so
/// that every rank starts from the same weights whatever each initialised or loaded.
template <communicator C, class Model>
void broadcast_parameters(C& comm, Model& model) {
    using B = typename Model::backend_type;
    broadcast_from_root<B>(comm, model.network().params());
    if constexpr (requires { model.segmentor().parameters(); }) broadcast_from_root<B>(comm, model.segmentor().parameters());
}

/// How gradient_averager finishes the average.
enum class gradient_scaling {
    after_sum,   ///< sum across ranks, then multiply by 1 / size (one more pass over the buffer)
    prescaled,   ///< the backward pass already took 1 / size (train::pretrain passes it in
                 ///< step_context::accumulation_scale): the sum is the average
};

/// The gradient average of an update step. A callable for model::step_context::reduce_gradients.
template <backend_policy B, communicator C>
class gradient_averager {
public:
    explicit gradient_averager(C& comm, gradient_scaling scaling = gradient_scaling::after_sum)
        : comm_(&comm), scaling_(scaling) {}
    void operator()(float* grads, index_t n) {
        if (comm_->size() == 1) return;
        detail::on_comm_memory<B>(C::device_memory, grads, n, staging_, [&](float* p) { comm_->allreduce_sum(p, n); });
        if (scaling_ == gradient_scaling::prescaled) return;
        const float s = 1.0f / static_cast<float>(comm_->size());
        parallel_for<B>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) { grads[i] *= s; });
    }

private:
    C* comm_;
    gradient_scaling scaling_;
    std::vector<float> staging_;
};

/// An error every rank raises at the same point of the same collective check (different
/// configurations, too few samples for the ranks): run_guarded lets each rank print it and end
/// normally instead of aborting the job.
class collective_error : public config_error {
public:
    using config_error::config_error;
};

/// FNV-1a, 64 bits: the configuration hash compared across ranks.
inline std::uint64_t text_hash(const std::string& text) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : text) h = (h ^ c) * 0x100000001b3ull;
    return h;
}

/// Every rank passes the text of its configuration; throws config_error on every rank (naming the
/// ranks that differ from rank 0) when they are not all the same. Collective.
template <communicator C>
void check_same_configuration(C& comm, const std::string& configuration) {
    const auto all = comm.allgather_host(text_hash(configuration));
    std::string differ;
    for (std::size_t r = 1; r < all.size(); ++r)
        if (all[r] != all[0]) differ += (differ.empty() ? "" : ", ") + std::to_string(r);
    if (!differ.empty())
        throw collective_error(rank_text(comm.rank(), comm.size()) + ": the configuration of rank(s) " + differ +
                           " differs from rank 0's (every rank must be started with the same options); this rank's: " +
                           configuration);
}

/// "rank r of N: message", unless the message names the rank already or N is 1.
template <communicator C>
std::string with_rank(const C& comm, const std::string& message) {
    if (comm.size() == 1) return message;  // a run of one process has no ranks to tell apart
    const std::string who = rank_text(comm.rank(), comm.size());
    return message.starts_with(who) ? message : who + ": " + message;
}

/// Runs `body()` and returns its exit status. An exception on any rank is printed as
/// "<program>: rank r of N: <message>" and, with more than one rank, ends the whole job
/// (comm.abort, after one second) so that no other rank waits forever in a collective; with one
/// rank, or for a collective_error (raised by every rank together), it returns `error_status`
/// (vasomim::error) or 1 (anything else).
template <communicator C, class Body>
int run_guarded(C& comm, const char* program, Body&& body, int error_status = 2) {
    int status = 0;
    try {
        return body();
    } catch (const collective_error& e) {  // every rank is here: no one waits
        std::fprintf(stderr, "%s: %s\n", program, with_rank(comm, e.what()).c_str());
        return error_status;
    } catch (const vasomim::error& e) {
        std::fprintf(stderr, "%s: %s\n", program, with_rank(comm, e.what()).c_str());
        status = error_status;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", program, with_rank(comm, std::string("unexpected error: ") + e.what()).c_str());
        status = 1;
    }
    std::fflush(stderr);
    if (comm.size() > 1) {
        // Errors of the set-up (bad options, unreadable files) usually strike every rank at once:
        // a moment's grace lets the others print theirs before the job is ended.
        std::this_thread::sleep_for(std::chrono::seconds(1));
        comm.abort(status);
    }
    return status;
}

}  // namespace vasomim::dist
