// Frames per second of io::dicom_reader turning a DICOM cine run into 8-bit frames (issue 20):
// opening the object and decoding every frame (JPEG lossless here: by the library's own decoder,
// io/jpeg_lossless.hpp, and by DCMTK's dcmjpeg, the reader's other choice), with the windowing to 8
// bits. The run is VASOMIM_BENCH_DICOM (written by benchmarks/dicom_cine_vs_dcmtk.sh,
// which also times DCMTK's own dcmdjpeg and dcmj2pnm on it and prints the ratios).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "vasomim/io/dicom.hpp"

#if VASOMIM_DICOM_READER

namespace {

using namespace vasomim;

std::string cine_file() {
    const char* f = std::getenv("VASOMIM_BENCH_DICOM");
    return f ? f : "";
}

void BM_DicomCineFrames(benchmark::State& st, io::dicom_lossless_jpeg decoder) {
    const std::string file = cine_file();
    std::size_t frames = 0;
    for (auto _ : st) {
        io::dicom_reader r(file, {.lossless_jpeg = decoder});  // open included: a batch job opens each run once
        frames = r.frames();
        for (std::size_t k = 0; k < frames; ++k) benchmark::DoNotOptimize(r.frame_gray8(k));
    }
    st.counters["frames/s"] = benchmark::Counter(double(frames) * double(st.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(BM_DicomCineFrames, builtin, io::dicom_lossless_jpeg::builtin)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_DicomCineFrames, dcmtk, io::dicom_lossless_jpeg::dcmtk)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
    if (cine_file().empty()) {
        std::fprintf(stderr, "set VASOMIM_BENCH_DICOM to a DICOM cine run (benchmarks/dicom_cine_vs_dcmtk.sh makes one)\n");
        return 2;
    }
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}

#else
int main() {
    std::fprintf(stderr, "dicom_decode_benchmark: this build reads no DICOM (VASOMIM_WITH_DICOM needs DCMTK)\n");
    return 2;
}
#endif
