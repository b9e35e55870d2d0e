#pragma once
// dist::mpi: data parallelism across processes and machines through MPI (Open MPI: Debian
// libopenmpi-dev + openmpi-bin), on host memory. Available when VASOMIM_HAS_MPI is 1 (CMake sets
// it and links MPI::MPI_CXX where MPI is found, option VASOMIM_WITH_MPI).
//
//   vasomim::dist::mpi_environment env(argc, argv);   // MPI_Init_thread ... MPI_Finalize
//   vasomim::dist::mpi comm;                           // the ranks of mpirun -np N
//
// Every MPI call returns its error (MPI_ERRORS_RETURN on the communicator) and a failed one throws
// backend_error naming the rank and the call. Buffers beyond INT_MAX elements go in chunks of 2^30
// (one blocking MPI_Allreduce each: Open MPI's tuned blocking algorithms were faster here than
// MPI_Iallreduce of smaller chunks, benchmarks/README.md).

#ifndef VASOMIM_HAS_MPI
#define VASOMIM_HAS_MPI 0
#endif

#if VASOMIM_HAS_MPI
// The C API only: MPI's deprecated C++ bindings do not compile warning-free.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "vasomim/core/error.hpp"
#include "vasomim/dist/communicator.hpp"

namespace vasomim::dist {

/// True when an MPI launcher started this process as a rank of a job (Open MPI's mpirun, PMIx,
/// MPICH's Hydra or Slurm's srun with PMI set these variables). A program started by hand is not:
/// it then runs as one rank without initialising MPI at all, since an MPI "singleton" start spawns
/// a daemon and writes session files (it failed under a file-size limit, tests/faults/).
inline bool launched_by_mpi() {
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"})
        if (std::getenv(v) != nullptr) return true;
    return false;
}

/// MPI_Init_thread (serialized: the gradient sum may run on a communication thread while the
/// training thread makes no MPI call, overlapped_gradient_sum) and MPI_Finalize, once per
/// process; does nothing when MPI was already initialised by someone else, or when no MPI launcher
/// started the process (launched_by_mpi(); dist::mpi is then a world of one).
class mpi_environment {
public:
    mpi_environment(int& argc, char**& argv) {
        int ready = 0;
        MPI_Initialized(&ready);
        if (ready || !launched_by_mpi()) return;
        int provided = 0;
        if (MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
            throw backend_error("MPI_Init_thread failed");
        owner_ = true;
    }
    mpi_environment(const mpi_environment&) = delete;
    mpi_environment& operator=(const mpi_environment&) = delete;
    ~mpi_environment() {
        int done = 0;
        MPI_Finalized(&done);
        if (owner_ && !done) MPI_Finalize();
    }

private:
    bool owner_ = false;
};

class mpi {
public:
    static constexpr bool device_memory = false;
    /// Elements of one MPI call (MPI counts are int).
    static constexpr index_t chunk = index_t(1) << 30;

    /// A duplicate of `base` (default MPI_COMM_WORLD) that returns errors instead of aborting; in a
    /// process no MPI launcher started (and MPI not initialised), a world of one rank that makes
    /// no MPI call.
    explicit mpi(MPI_Comm base = MPI_COMM_WORLD) {
        int ready = 0;
        MPI_Initialized(&ready);
        if (!ready && !launched_by_mpi()) return;  // one rank, comm_ stays MPI_COMM_NULL
        if (!ready) throw config_error("dist::mpi: MPI is not initialised (create a dist::mpi_environment first)");
        check(MPI_Comm_dup(base, &comm_), "MPI_Comm_dup");
        MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
        MPI_Comm_rank(comm_, &rank_);
        MPI_Comm_size(comm_, &size_);
    }
    mpi(const mpi&) = delete;
    mpi& operator=(const mpi&) = delete;
    ~mpi() {
        int done = 0;
        MPI_Finalized(&done);
        if (!done && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
    }

    int rank() const { return rank_; }
    int size() const { return size_; }
    MPI_Comm native() const { return comm_; }
    /// Whether another thread may make this process's MPI calls while this one makes none
    /// (MPI_THREAD_SERIALIZED or better): the condition of overlapped_gradient_sum.
    bool threads_serialized() const {
        if (comm_ == MPI_COMM_NULL) return false;
        int level = MPI_THREAD_SINGLE;
        MPI_Query_thread(&level);
        return level >= MPI_THREAD_SERIALIZED;
    }

    void broadcast(float* data, index_t n, int root) {
        if (alone()) return;
        for (index_t at = 0; at < n; at += chunk)
            check(MPI_Bcast(data + at, count(n, at), MPI_FLOAT, root, comm_), "MPI_Bcast");
    }

    void allreduce_sum(float* data, index_t n) {
        if (alone()) return;
        for (index_t at = 0; at < n; at += chunk)
            check(MPI_Allreduce(MPI_IN_PLACE, data + at, count(n, at), MPI_FLOAT, MPI_SUM, comm_), "MPI_Allreduce");
    }

    void allreduce_sum_host(double* data, index_t n) {
        if (alone()) return;
        check(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(n), MPI_DOUBLE, MPI_SUM, comm_), "MPI_Allreduce");
    }

    std::vector<std::uint64_t> allgather_host(std::uint64_t v) {
        std::vector<std::uint64_t> all(static_cast<std::size_t>(size_), v);
        if (alone()) return all;
        check(MPI_Allgather(&v, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, comm_), "MPI_Allgather");
        return all;
    }

    void barrier() {
        if (!alone()) check(MPI_Barrier(comm_), "MPI_Barrier");
    }

    [[noreturn]] void abort(int code) {
        if (alone()) std::_Exit(code);
        MPI_Abort(MPI_COMM_WORLD, code);
        std::abort();  // MPI_Abort does not return; in case an implementation does
    }

private:
    bool alone() const { return comm_ == MPI_COMM_NULL; }
    static int count(index_t n, index_t at) { return static_cast<int>(std::min(chunk, n - at)); }

    void check(int rc, const char* call) const {
        if (rc == MPI_SUCCESS) return;
        char text[MPI_MAX_ERROR_STRING];
        int len = 0;
        MPI_Error_string(rc, text, &len);
        throw backend_error(rank_text(rank_, size_) + ": " + call + " failed: " + std::string(text, std::size_t(len)));
    }

    MPI_Comm comm_ = MPI_COMM_NULL;
    int rank_ = 0, size_ = 1;
};
static_assert(communicator<mpi>);

}  // namespace vasomim::dist
#endif  // VASOMIM_HAS_MPI
