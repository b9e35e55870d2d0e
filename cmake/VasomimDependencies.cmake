# Third-party dependencies, all from Debian packages: libeigen3-dev, libthrust-dev, librandom123-dev
# (headers in /usr/include), and the compiler's OpenMP.
find_package(Eigen3 3.4 REQUIRED NO_MODULE)
find_package(OpenMP REQUIRED COMPONENTS CXX)

find_path(VASOMIM_RANDOM123_INCLUDE Random123/philox.h)
if(NOT VASOMIM_RANDOM123_INCLUDE)
  message(FATAL_ERROR "Random123 headers not found (Debian: apt-get install librandom123-dev)")
endif()
find_path(VASOMIM_THRUST_INCLUDE thrust/version.h)
if(NOT VASOMIM_THRUST_INCLUDE)
  message(FATAL_ERROR "Thrust headers not found (Debian: apt-get install libthrust-dev)")
endif()

# xtensor (libxtensor-dev, header-only): the image / .npy I/O layer (vasomim/io) and xtensor inputs.
find_package(xtensor 0.24 REQUIRED)

# stb_image and ISA-L: imported targets vasomim::stb and vasomim::isal (VasomimImportLibrary.cmake;
# the installed package config defines them the same way).
include(${CMAKE_CURRENT_LIST_DIR}/VasomimImportLibrary.cmake)
vasomim_import_debian_libraries(VASOMIM_LIBRARIES_OK VASOMIM_LIBRARIES_MESSAGE)
if(NOT VASOMIM_LIBRARIES_OK)
  message(FATAL_ERROR "${VASOMIM_LIBRARIES_MESSAGE}")
endif()

# DCMTK (libdcmtk-dev; optional): DICOM input, include/vasomim/io/dicom.hpp. VASOMIM_WITH_DICOM is
# on when Debian's DCMTKConfig.cmake is found; the vasomim target then links the libraries below and
# defines VASOMIM_HAS_DICOM=1. DCMTK::DCMTK is not used: it would pull in the network and TLS modules.
find_package(DCMTK CONFIG QUIET)
option(VASOMIM_WITH_DICOM "Read DICOM files through DCMTK (libdcmtk-dev)" ${DCMTK_FOUND})
set(VASOMIM_DICOM_TARGETS DCMTK::dcmjpls DCMTK::dcmjpeg DCMTK::dcmimage DCMTK::dcmimgle DCMTK::dcmdata
    DCMTK::oflog DCMTK::ofstd)
if(VASOMIM_WITH_DICOM AND NOT DCMTK_FOUND)
  message(FATAL_ERROR "VASOMIM_WITH_DICOM is on but DCMTK was not found (Debian: apt-get install libdcmtk-dev)")
endif()

# OpenBLAS, OpenMP build (libopenblas-openmp-dev; optional): the cpu backend's large GEMMs
# (backend/detail/blas_gemm.hpp). VASOMIM_WITH_OPENBLAS is on when it is found; the vasomim target
# then links vasomim::openblas (VasomimImportLibrary.cmake) and defines VASOMIM_HAS_OPENBLAS=1.
# Without it every GEMM runs on Eigen.
vasomim_import_openblas(VASOMIM_OPENBLAS_FOUND)
option(VASOMIM_WITH_OPENBLAS "The cpu backend's large GEMMs through OpenBLAS's OpenMP build (libopenblas-openmp-dev)"
       ${VASOMIM_OPENBLAS_FOUND})
if(VASOMIM_WITH_OPENBLAS AND NOT VASOMIM_OPENBLAS_FOUND)
  message(FATAL_ERROR "VASOMIM_WITH_OPENBLAS is on but OpenBLAS's OpenMP build was not found "
                      "(Debian: apt-get install libopenblas-openmp-dev)")
endif()
if(VASOMIM_WITH_OPENBLAS)
  message(STATUS "vasomim: large GEMMs through OpenBLAS (${VASOMIM_OPENBLAS_OPENMP_LIBRARY})")
endif()

# MPI (Open MPI: libopenmpi-dev + openmpi-bin; optional): data parallelism across processes and
# machines, include/vasomim/dist/mpi.hpp. VASOMIM_WITH_MPI is on when MPI's C++ bindings are found;
# the vasomim target then links MPI::MPI_CXX and defines VASOMIM_HAS_MPI=1.
find_package(MPI QUIET COMPONENTS CXX)
option(VASOMIM_WITH_MPI "Data parallelism through MPI (libopenmpi-dev)" ${MPI_CXX_FOUND})
if(VASOMIM_WITH_MPI AND NOT MPI_CXX_FOUND)
  message(FATAL_ERROR "VASOMIM_WITH_MPI is on but MPI was not found (Debian: apt-get install libopenmpi-dev openmpi-bin)")
endif()

# NCCL (CUDA toolkit or libnccl-dev; optional): dist::nccl (include/vasomim/dist/nccl.hpp), GPU ranks
# bootstrapped through MPI. VASOMIM_WITH_NCCL is on when CUDA targets are built, MPI is on and
# nccl.h and libnccl are found; the project's CUDA programs that use it link vasomim_nccl (defines
# VASOMIM_HAS_NCCL=1). Not part of the installed package: consumers link NCCL themselves.
if(VASOMIM_ENABLE_CUDA AND VASOMIM_WITH_MPI)
  find_path(VASOMIM_NCCL_INCLUDE nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  find_library(VASOMIM_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR})
endif()
if(VASOMIM_NCCL_INCLUDE AND VASOMIM_NCCL_LIBRARY)
  set(_vasomim_nccl_default ON)
else()
  set(_vasomim_nccl_default OFF)
endif()
option(VASOMIM_WITH_NCCL "dist::nccl for the CUDA programs (NCCL, needs CUDA and MPI)" ${_vasomim_nccl_default})
if(VASOMIM_WITH_NCCL)
  if(NOT (VASOMIM_NCCL_INCLUDE AND VASOMIM_NCCL_LIBRARY AND VASOMIM_ENABLE_CUDA AND VASOMIM_WITH_MPI))
    message(FATAL_ERROR "VASOMIM_WITH_NCCL needs CUDA targets, MPI, nccl.h and libnccl")
  endif()
  add_library(vasomim_nccl INTERFACE)
  target_include_directories(vasomim_nccl SYSTEM INTERFACE ${VASOMIM_NCCL_INCLUDE})
  target_link_libraries(vasomim_nccl INTERFACE ${VASOMIM_NCCL_LIBRARY} CUDA::cudart)
  target_compile_definitions(vasomim_nccl INTERFACE VASOMIM_HAS_NCCL=1)
  message(STATUS "vasomim: NCCL for dist::nccl (${VASOMIM_NCCL_LIBRARY})")
endif()
