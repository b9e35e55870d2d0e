# vasomim_import_library(<name> <header> <library> <debian package>): a Debian library used through
# its header and shared object, as the imported target vasomim::<name>. Sets VASOMIM_<NAME>_FOUND;
# the caller decides what a missing one means (a fatal error when building vasomim, a "not found"
# package when a user's find_package(vasomim) runs). Included by VasomimDependencies.cmake and by
# the installed package config, so both define the targets the same way.
function(vasomim_import_library name header library package)
  string(TOUPPER "${name}" up)
  find_path(VASOMIM_${up}_INCLUDE ${header})
  find_library(VASOMIM_${up}_LIBRARY NAMES ${library})
  if(NOT VASOMIM_${up}_INCLUDE OR NOT VASOMIM_${up}_LIBRARY)
    set(VASOMIM_${up}_FOUND FALSE PARENT_SCOPE)
    set(VASOMIM_${up}_MESSAGE "${header} or lib${library} not found (Debian: apt-get install ${package})"
        PARENT_SCOPE)
    return()
  endif()
  if(NOT TARGET vasomim::${name})
    add_library(vasomim::${name} UNKNOWN IMPORTED GLOBAL)
    set_target_properties(vasomim::${name} PROPERTIES
      IMPORTED_LOCATION "${VASOMIM_${up}_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${VASOMIM_${up}_INCLUDE}")
  endif()
  set(VASOMIM_${up}_FOUND TRUE PARENT_SCOPE)
endfunction()

# The Debian libraries vasomim's headers link: vasomim::stb (stb_image / stb_image_write, libstb-dev:
# declarations from <stb/stb_image.h>, the implementation from Debian's shared libstb.so, so no
# translation unit needs STB_IMAGE_IMPLEMENTATION) and vasomim::isal (ISA-L, libisal-dev: the zlib
# inflate / deflate and CRC-32 of vasomim/io's PNGs). <ok_var> is TRUE, or FALSE with <message_var>
# naming the first one missing.
function(vasomim_import_debian_libraries ok_var message_var)
  foreach(lib "stb;stb/stb_image.h;stb;libstb-dev" "isal;isa-l/igzip_lib.h;isal;libisal-dev")
    vasomim_import_library(${lib})
    list(GET lib 0 name)
    string(TOUPPER "${name}" up)
    if(NOT VASOMIM_${up}_FOUND)
      set(${ok_var} FALSE PARENT_SCOPE)
      set(${message_var} "${VASOMIM_${up}_MESSAGE}" PARENT_SCOPE)
      return()
    endif()
  endforeach()
  set(${ok_var} TRUE PARENT_SCOPE)
endfunction()

# vasomim_import_openblas(<found_var>): OpenBLAS's OpenMP build as the imported target
# vasomim::openblas (Debian: libopenblas-openmp-dev, which installs it beside the default pthread
# build, under <libdir>/openblas-openmp and <includedir>/<arch>/openblas-openmp). Only that build:
# the pthread build's threads would spin beside the program's OpenMP team
# (include/vasomim/backend/detail/blas_gemm.hpp). VASOMIM_OPENBLAS_OPENMP_LIBRARY / VASOMIM_OPENBLAS_OPENMP_INCLUDE
# may name another OpenMP build of OpenBLAS.
function(vasomim_import_openblas found_var)
  set(arch "${CMAKE_LIBRARY_ARCHITECTURE}")
  find_library(VASOMIM_OPENBLAS_OPENMP_LIBRARY NAMES openblas NO_DEFAULT_PATH
    PATHS /usr/lib/${arch}/openblas-openmp /usr/lib/openblas-openmp)
  find_path(VASOMIM_OPENBLAS_OPENMP_INCLUDE cblas.h NO_DEFAULT_PATH
    PATHS /usr/include/${arch}/openblas-openmp /usr/include/openblas-openmp)
  if(NOT VASOMIM_OPENBLAS_OPENMP_LIBRARY OR NOT VASOMIM_OPENBLAS_OPENMP_INCLUDE)
    set(${found_var} FALSE PARENT_SCOPE)
    return()
  endif()
  if(NOT TARGET vasomim::openblas)
    add_library(vasomim::openblas UNKNOWN IMPORTED GLOBAL)
    set_target_properties(vasomim::openblas PROPERTIES
      IMPORTED_LOCATION "${VASOMIM_OPENBLAS_OPENMP_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${VASOMIM_OPENBLAS_OPENMP_INCLUDE}")
  endif()
  set(${found_var} TRUE PARENT_SCOPE)
endfunction()
