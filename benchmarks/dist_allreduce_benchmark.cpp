// The gradient average of data parallelism as train::pretrain runs it (dist::gradient_averager,
// prescaled: the sum across ranks of the flat gradient buffer) against Open MPI's own
// MPI_Allreduce of a host buffer of the same size; in an nvcc build the buffer is GPU memory
// (through host copies for MPI) and, with NCCL, also averaged through dist::nccl.
//   mpirun -np 2 build/benchmarks/dist_allreduce_benchmark [floats=112000000] [repetitions=5]
// Prints the median time of each on rank 0 and checks the results. Not a Google Benchmark
// program: it runs under mpirun.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "vasomim/backend/backends.hpp"
#include "vasomim/dist.hpp"

#if !VASOMIM_HAS_MPI
#error "dist_allreduce_benchmark needs MPI (VASOMIM_HAS_MPI)"
#endif

namespace {

using namespace vasomim;
#if VASOMIM_HAS_CUDA
using B = backend::thrust_cuda;
#else
using B = backend::cpu;
#endif

template <class F>
double median_seconds(dist::mpi& comm, int reps, F f) {
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
        comm.barrier();
        const auto a = std::chrono::steady_clock::now();
        f();
        comm.barrier();
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

void report(dist::mpi& comm, const std::string& what, index_t n, double s) {
    if (comm.rank() != 0) return;
    std::printf("%-48s %d rank(s)  %11lld floats  %8.3f s  %6.2f GB/s (4 n / t)\n", what.c_str(), comm.size(),
                static_cast<long long>(n), s, 4.0 * double(n) / s / 1e9);
}

bool all_equal(const std::vector<float>& g, float want) {
    return std::all_of(g.begin(), g.end(), [&](float v) { return v == want; });
}

/// Fills `g` with `v` (backend memory).
void fill(tensor<float, B>& g, float v) {
    float* p = g.data();
    parallel_for<B>(g.numel(), [=] VASOMIM_HOST_DEVICE(std::int64_t i) { p[i] = v; });
}

}  // namespace

int main(int argc, char** argv) {
    dist::mpi_environment env(argc, argv);
    dist::mpi comm;
    return dist::run_guarded(comm, "dist_allreduce_benchmark", [&]() -> int {
        const index_t n = argc > 1 ? std::atoll(argv[1]) : 112000000;
        const int reps = argc > 2 ? std::atoi(argv[2]) : 5;
        const float mine = float(comm.rank() + 1), sum = float(comm.size() * (comm.size() + 1) / 2);
        int failures = 0;
        tensor<float, B> g(shape{n});
        {
            dist::gradient_averager<B, dist::mpi> average(comm, dist::gradient_scaling::prescaled);
            const double t = median_seconds(comm, reps, [&] {
                fill(g, mine);
                average(g.data(), n);
            });
            failures += !all_equal(g.to_host(), sum);
            report(comm, std::string("gradient_averager<") + backend_traits<B>::name + ", mpi>", n, t);
        }
        if (comm.native() != MPI_COMM_NULL) {  // started by mpirun (alone, dist::mpi makes no MPI call)
            std::vector<float> h(static_cast<std::size_t>(n));
            const double t = median_seconds(comm, reps, [&] {
                std::fill(h.begin(), h.end(), mine);
                MPI_Allreduce(MPI_IN_PLACE, h.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm.native());
            });
            failures += !all_equal(h, sum);
            report(comm, "MPI_Allreduce of a host buffer (one call)", n, t);
        }
#if VASOMIM_HAS_NCCL
        {
            dist::nccl gpus(comm);
            dist::gradient_averager<B, dist::nccl> average(gpus, dist::gradient_scaling::prescaled);
            const double t = median_seconds(comm, reps, [&] {
                fill(g, mine);
                average(g.data(), n);
            });
            failures += !all_equal(g.to_host(), sum);
            report(comm, "gradient_averager<thrust_cuda, nccl>", n, t);
        }
#endif
        double bad = failures;
        comm.allreduce_sum_host(&bad, 1);
        if (comm.rank() == 0) std::printf("sums %s\n", bad == 0 ? "correct" : "WRONG");
        return bad == 0 ? 0 : 1;
    });
}
