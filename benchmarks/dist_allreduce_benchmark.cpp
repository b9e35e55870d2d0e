// The gradient average of data parallelism (dist::gradient_averager: chunked MPI_Iallreduce of the
// flat gradient buffer, then 1 / ranks) against Open MPI's own MPI_Allreduce of the same buffer,
// and, in an nvcc build with NCCL, the same average on GPU memory through dist::nccl.
//   mpirun -np 2 build/benchmarks/dist_allreduce_benchmark [floats=112000000] [repetitions=5]
// Prints the median time of each on rank 0 (and checks the averages). Not a Google Benchmark
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

void report(dist::mpi& comm, const char* what, index_t n, double s) {
    if (comm.rank() != 0) return;
    std::printf("%-44s %d rank(s)  %11lld floats  %8.3f s  %6.2f GB/s (algorithm bandwidth, 4 n / t)\n", what,
                comm.size(), static_cast<long long>(n), s, 4.0 * double(n) / s / 1e9);
}

bool all_equal(const float* g, index_t n, float want) {
    for (index_t i = 0; i < n; ++i)
        if (g[i] != want) return false;
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    dist::mpi_environment env(argc, argv);
    dist::mpi comm;
    return dist::run_guarded(comm, "dist_allreduce_benchmark", [&]() -> int {
        const index_t n = argc > 1 ? std::atoll(argv[1]) : 112000000;
        const int reps = argc > 2 ? std::atoi(argv[2]) : 5;
        const float mine = float(comm.rank() + 1), mean = float(comm.size() + 1) / 2;
        int failures = 0;
        {
            std::vector<float> g(static_cast<std::size_t>(n), mine);
            dist::gradient_averager<backend::cpu, dist::mpi> average(comm);
            const double t_avg = median_seconds(comm, reps, [&] {
                std::fill(g.begin(), g.end(), mine);
                average(g.data(), n);
            });
            failures += !all_equal(g.data(), n, mean);
            // The fill is part of both timings.
            const double t_mpi = median_seconds(comm, reps, [&] {
                std::fill(g.begin(), g.end(), mine);
                MPI_Allreduce(MPI_IN_PLACE, g.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm.native());
            });
            report(comm, "dist::gradient_averager<cpu, mpi>", n, t_avg);
            report(comm, "MPI_Allreduce (one call, sum only)", n, t_mpi);
        }
#if VASOMIM_HAS_NCCL
        {
            using G = backend::thrust_cuda;
            dist::nccl gpus(comm);
            tensor<float, G> g(shape{n});
            float* p = g.data();
            dist::gradient_averager<G, dist::nccl> average(gpus);
            const double t = median_seconds(comm, reps, [&] {
                parallel_for<G>(n, [=] VASOMIM_HOST_DEVICE(std::int64_t i) { p[i] = mine; });
                average(p, n);
                cudaDeviceSynchronize();
            });
            const auto host = g.to_host();
            failures += !all_equal(host.data(), n, mean);
            report(comm, "dist::gradient_averager<thrust_cuda, nccl>", n, t);
        }
#endif
        double bad = failures;
        comm.allreduce_sum_host(&bad, 1);
        if (comm.rank() == 0) std::printf("averages %s\n", bad == 0 ? "correct" : "WRONG");
        return bad == 0 ? 0 : 1;
    });
}
