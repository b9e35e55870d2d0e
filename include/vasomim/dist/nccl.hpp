#pragma once
// dist::nccl: data parallelism across GPUs through NCCL (one rank per GPU), gradient buffers in
// GPU memory (the thrust_cuda backend's tensors) reduced in place. The NCCL communicator is
// bootstrapped through MPI: rank 0's ncclUniqueId is broadcast with MPI_Bcast, as torchrun does it
// through its store. Small host-side collectives (losses, the configuration hash, barriers) go
// through the MPI communicator. Available when VASOMIM_HAS_NCCL and VASOMIM_HAS_MPI are 1 (CMake's
// vasomim::nccl target defines the first and links libnccl; the code is built by nvcc).
//
//   vasomim::dist::mpi_environment env(argc, argv);
//   vasomim::dist::mpi world;
//   vasomim::dist::nccl gpus(world);   // device = local rank modulo the visible GPUs

#ifndef VASOMIM_HAS_NCCL
#define VASOMIM_HAS_NCCL 0
#endif

#include "vasomim/dist/mpi.hpp"

#if VASOMIM_HAS_NCCL && VASOMIM_HAS_MPI
#include <cuda_runtime.h>
#include <nccl.h>

#include <string>
#include <vector>

namespace vasomim::dist {

class nccl {
public:
    static constexpr bool device_memory = true;

    /// Joins the ranks of `bootstrap` on GPU `device` (-1: this rank's index among the ranks of its
    /// node, modulo the GPUs it sees).
    explicit nccl(mpi& bootstrap, int device = -1) : boot_(&bootstrap) {
        // A process no MPI launcher started is the only rank (dist::mpi makes no MPI call then).
        const bool alone = bootstrap.native() == MPI_COMM_NULL;
        if (device < 0) {
            int local = 0;
            if (!alone) {
                MPI_Comm node;
                MPI_Comm_split_type(bootstrap.native(), MPI_COMM_TYPE_SHARED, bootstrap.rank(), MPI_INFO_NULL, &node);
                MPI_Comm_rank(node, &local);
                MPI_Comm_free(&node);
            }
            int count = 0;
            cuda(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
            if (count == 0) throw backend_error(who() + ": no CUDA device");
            device = local % count;
        }
        device_ = device;
        cuda(cudaSetDevice(device_), "cudaSetDevice");
        ncclUniqueId id{};
        if (bootstrap.rank() == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
        if (!alone && MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, bootstrap.native()) != MPI_SUCCESS)
            throw backend_error(who() + ": MPI_Bcast of the NCCL unique id failed");
        check(ncclCommInitRank(&comm_, bootstrap.size(), id, bootstrap.rank()), "ncclCommInitRank");
        cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
        cuda(cudaEventCreateWithFlags(&written_, cudaEventDisableTiming), "cudaEventCreate");
    }
    nccl(const nccl&) = delete;
    nccl& operator=(const nccl&) = delete;
    ~nccl() {
        if (comm_) ncclCommDestroy(comm_);
        if (written_) cudaEventDestroy(written_);
        if (stream_) cudaStreamDestroy(stream_);
    }

    int rank() const { return boot_->rank(); }
    int size() const { return boot_->size(); }
    int device() const { return device_; }
    ncclComm_t native() const { return comm_; }

    /// Device memory. The kernels that wrote it (any stream) are waited for first.
    void broadcast(float* data, index_t n, int root) {
        cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
        check(ncclBroadcast(data, data, static_cast<std::size_t>(n), ncclFloat, root, comm_, stream_), "ncclBroadcast");
        cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    }
    void allreduce_sum(float* data, index_t n) {
        cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
        check(ncclAllReduce(data, data, static_cast<std::size_t>(n), ncclFloat, ncclSum, comm_, stream_),
              "ncclAllReduce");
        cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    }
    /// Queues the sum of `n` floats of device memory behind the kernels launched so far on the
    /// default stream (where the backend's kernels and cuBLAS run) and returns at once: the
    /// backward pass goes on while NCCL sums a finished bucket (stream_ordered_communicator).
    void allreduce_sum_enqueue(float* data, index_t n) {
        cuda(cudaEventRecord(written_, 0), "cudaEventRecord");
        cuda(cudaStreamWaitEvent(stream_, written_, 0), "cudaStreamWaitEvent");
        check(ncclAllReduce(data, data, static_cast<std::size_t>(n), ncclFloat, ncclSum, comm_, stream_),
              "ncclAllReduce");
    }
    /// Returns when every queued sum is done (the optimiser step reads the sums next).
    void wait_enqueued() { cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }
    /// Host collectives through MPI.
    void allreduce_sum_host(double* data, index_t n) { boot_->allreduce_sum_host(data, n); }
    std::vector<std::uint64_t> allgather_host(std::uint64_t v) { return boot_->allgather_host(v); }
    void barrier() { boot_->barrier(); }
    [[noreturn]] void abort(int code) {
        if (comm_) ncclCommAbort(comm_), comm_ = nullptr;
        boot_->abort(code);
    }

private:
    std::string who() const { return rank_text(boot_->rank(), boot_->size()); }
    void check(ncclResult_t r, const char* call) const {
        if (r != ncclSuccess) throw backend_error(who() + ": " + call + " failed: " + ncclGetErrorString(r));
    }
    void cuda(cudaError_t e, const char* call) const {
        if (e != cudaSuccess) throw backend_error(who() + ": " + call + " failed: " + cudaGetErrorString(e));
    }

    mpi* boot_;
    int device_ = 0;
    ncclComm_t comm_ = nullptr;
    cudaStream_t stream_ = nullptr;
    cudaEvent_t written_ = nullptr;  // the default stream's point a queued sum waits for
};
static_assert(stream_ordered_communicator<nccl>);

}  // namespace vasomim::dist
#endif  // VASOMIM_HAS_NCCL && VASOMIM_HAS_MPI
