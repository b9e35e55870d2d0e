#!/usr/bin/env bash
# Installs the Debian 12 packages vasomim needs, only those missing. Runs apt-get as root (through
# sudo when not root). Usage: tools/install-deps.sh [--python]  (--python adds the fixture/peer
# tools: python3-torch, python3-scipy, python3-numpy, python3-pydicom)
set -euo pipefail
packages=(cmake ninja-build g++ pkg-config libeigen3-dev xtensor-dev xtl-dev libthrust-dev libcub-dev
          librandom123-dev libstb-dev libisal-dev nlohmann-json3-dev libcli11-dev libfmt-dev libgtest-dev
          libgmock-dev libbenchmark-dev libopenblas-dev libopenblas0-pthread
          libopenblas-openmp-dev  # the cpu backend's large GEMMs (backend/detail/blas_gemm.hpp)
          clang libclang-rt-14-dev libomp-14-dev  # clang, its libFuzzer/sanitizer runtimes, omp.h: tools/fuzz.sh
          libdcmtk-dev dcmtk  # DICOM input (io/dicom.hpp); dcmtk's tools make tests/data/dicom
          libopenmpi-dev openmpi-bin)  # data parallelism (dist/mpi.hpp), mpirun for the 2-rank test
if [[ "${1:-}" == "--python" ]]; then
  packages+=(python3-torch python3-scipy python3-numpy python3-pydicom)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
