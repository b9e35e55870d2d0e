#!/usr/bin/env bash
# Installs what is missing, builds the example programs (Release) and runs the main job.
# Until vasomim-pretrain exists the main job is the most complete example program.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DVASOMIM_BUILD_TESTS=OFF \
  -DVASOMIM_BUILD_BENCHMARKS=OFF -DVASOMIM_ENABLE_CUDA=OFF
cmake --build build/release -j "$(nproc)"
build/release/examples/vasomim-backends/vasomim-backends "$@"
