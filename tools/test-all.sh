#!/usr/bin/env bash
# Installs what is missing, builds everything with -Wall -Wextra -Werror and runs the whole test
# suite (cpu, thrust-omp, thrust-cpp; the loader's threads also under ThreadSanitizer; the
# pre-training program's fault tests; 2 MPI ranks against one process; pydicom's test files against
# pydicom), compiles the CUDA tests and the pre-training program for the CUDA backend with nvcc
# (sm_90; run only where a GPU is present),
# runs the suite again under AddressSanitizer + UndefinedBehaviorSanitizer (cpu and thrust-omp),
# builds a separate project against the installed package, then fuzzes every file reader for a
# short, fixed budget (tools/fuzz.sh; seed FUZZ_SEED=1, FUZZ_RUNS=40000 inputs, at most
# FUZZ_SECONDS=30 per target). Usage: tools/test-all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=${JOBS:-$(nproc)}
step() { printf '\n==== %s (%s)\n' "$1" "$(date +%T)"; }

step "dependencies"
bash tools/install-deps.sh

step "build (Release, -Werror)"
cmake -S . -B build/ci -G Ninja -DCMAKE_BUILD_TYPE=Release -DVASOMIM_WERROR=ON -DVASOMIM_TSAN_TESTS=ON \
  -DCMAKE_INSTALL_PREFIX="$root/build/ci-install"
cmake --build build/ci -j "$jobs"

step "tests"
# Real DICOM files that no one here wrote: pydicom's own test files and their pixels as pydicom
# decodes them (DicomReader.MatchesPydicomTestFiles compares every file both can read).
/usr/bin/python3 tools/make_dicom_fixtures.py --pydicom-files "$root/build/pydicom-refs" >/dev/null
export VASOMIM_PYDICOM_REFS="$root/build/pydicom-refs"
ctest --test-dir build/ci --output-on-failure -j "$jobs"

if [[ -x build/ci/tests/vasomim_tests_cuda ]]; then
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    step "CUDA tests"
    build/ci/tests/vasomim_tests_cuda
  else
    echo "CUDA tests compiled with nvcc (build/ci/tests/vasomim_tests_cuda); no GPU here, not run"
  fi
fi

if [[ -x build/ci/tests/vasomim_tests_cuda ]]; then
  step "programs for the CUDA backend (nvcc, -DVASOMIM_BACKEND=cuda)"
  # The pre-training program and the backend demo, compiled by nvcc with default_backend =
  # thrust_cuda; the other programs build the same way (cmake --build build/ci-cuda).
  cmake -S . -B build/ci-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DVASOMIM_BACKEND=cuda \
    -DVASOMIM_BUILD_TESTS=OFF -DVASOMIM_BUILD_BENCHMARKS=OFF >/dev/null
  cmake --build build/ci-cuda -j "$jobs" --target vasomim-pretrain vasomim-backends
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    build/ci-cuda/examples/vasomim-backends/vasomim-backends
  fi
fi

step "installed-package consumer"
cmake --install build/ci >/dev/null
cmake -S tests/consumer -B build/consumer -G Ninja -DCMAKE_PREFIX_PATH="$root/build/ci-install"
cmake --build build/consumer -j "$jobs"
build/consumer/consumer

step "sanitizers (address, undefined)"
# -g1: line tables only, enough for the sanitizers' stack traces (file:line); full -g makes this
# template-heavy build about 1.7x slower to compile (vasomim_step_test: 129 s against 75 s).
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
  -DVASOMIM_WERROR=ON -DVASOMIM_SANITIZE=address,undefined -DVASOMIM_ENABLE_CUDA=OFF -DVASOMIM_NATIVE=OFF \
  -DVASOMIM_BUILD_EXAMPLES=OFF -DVASOMIM_BUILD_BENCHMARKS=OFF
cmake --build build/asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1 \
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$root/tools/ubsan.supp" \
  ctest --test-dir build/asan --output-on-failure -j "$jobs"

step "fuzzing (tools/fuzz.sh: every reader of outside bytes, seed ${FUZZ_SEED:-1}, ${FUZZ_RUNS:-40000} inputs per target)"
# libFuzzer + ASan + UBSan with clang; fails on a crash, hang or oversized allocation (issue 19).
# A fixed seed and run count (40,000 inputs per target, ~80 s in all here): CI mostly repeats the
# same inputs instead of finding new things at random; exploring campaigns are run by hand
# (tools/fuzz.sh SECONDS) and their findings become regression seeds.
FUZZ_SEED=${FUZZ_SEED:-1} FUZZ_RUNS=${FUZZ_RUNS:-40000} bash tools/fuzz.sh "${FUZZ_SECONDS:-30}"

step "all passed"
