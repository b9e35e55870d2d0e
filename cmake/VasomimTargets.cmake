# Helpers that give the project's own programs (tests, examples, benchmarks) one set of flags:
# warnings (optionally as errors), -march=native, sanitizers. Users of the installed package get
# none of these.
set(_vasomim_warnings -Wall -Wextra -Wpedantic)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # GCC 12 reports false maybe-uninitialized warnings inside its own AVX-512 intrinsics when Eigen's
  # kernels are inlined at -O3 -march=native (GCC bug 105593).
  list(APPEND _vasomim_warnings -Wno-maybe-uninitialized)
endif()
if(VASOMIM_WERROR)
  list(APPEND _vasomim_warnings -Werror)
endif()

function(vasomim_configure_target target)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${_vasomim_warnings}>)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    # Nothing here reads errno after a math call; without it sqrt / exp loops vectorise
    # (the eigenvalues of the ridge filters).
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-fno-math-errno>)
  endif()
  if(VASOMIM_NATIVE)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-march=native>)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      # Full-width AVX-512 where the CPU has it: the separable filters (vessel/) gain about 10 %.
      target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-mprefer-vector-width=512>)
    endif()
  endif()
  if(VASOMIM_SANITIZE)
    target_compile_options(${target} PRIVATE
      $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=${VASOMIM_SANITIZE} -fno-omit-frame-pointer>)
    target_link_options(${target} PRIVATE -fsanitize=${VASOMIM_SANITIZE})
  endif()
endfunction()

# A CUDA program built with nvcc from C++ sources (each wrapped in a .cu that includes it).
function(vasomim_add_cuda_executable target)
  set(_cu_sources)
  foreach(src IN LISTS ARGN)
    get_filename_component(_abs ${src} ABSOLUTE)
    file(RELATIVE_PATH _rel ${PROJECT_SOURCE_DIR} ${_abs})
    string(REPLACE "/" "__" _flat ${_rel})
    set(_cu ${CMAKE_CURRENT_BINARY_DIR}/cuda_sources/${_flat}.cu)
    file(CONFIGURE OUTPUT ${_cu} CONTENT "#include \"${_abs}\"\n")
    list(APPEND _cu_sources ${_cu})
  endforeach()
  add_executable(${target} ${_cu_sources})
  set_target_properties(${target} PROPERTIES CUDA_ARCHITECTURES "${VASOMIM_CUDA_ARCHITECTURES}")
  # CMake 3.25 does not know nvcc 13's C++20 dialect flag, so it is passed directly.
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20 --extended-lambda --expt-relaxed-constexpr -Xcompiler=-Wall>)
  target_link_libraries(${target} PRIVATE CUDA::cudart CUDA::cublas)
endfunction()

# An example program. VASOMIM_BACKEND=cpu (default): g++ with the project's flags, and
# vasomim::default_backend is backend::cpu. VASOMIM_BACKEND=cuda: nvcc compiles the sources, and
# default_backend is backend::thrust_cuda (tensors on the GPU, GEMMs through cuBLAS).
function(vasomim_add_program target)
  if(VASOMIM_BACKEND STREQUAL "cuda")
    vasomim_add_cuda_executable(${target} ${ARGN})
  else()
    add_executable(${target} ${ARGN})
    vasomim_configure_target(${target})
  endif()
  target_link_libraries(${target} PRIVATE vasomim::vasomim)
endfunction()
