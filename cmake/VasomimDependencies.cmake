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

# stb_image / stb_image_write (libstb-dev): declarations from <stb/stb_image.h>, implementation from
# Debian's shared libstb.so, so no translation unit needs STB_IMAGE_IMPLEMENTATION. Exposed as the
# imported target vasomim::stb (the installed package config defines it the same way).
find_path(VASOMIM_STB_INCLUDE stb/stb_image.h)
find_library(VASOMIM_STB_LIBRARY NAMES stb)
if(NOT VASOMIM_STB_INCLUDE OR NOT VASOMIM_STB_LIBRARY)
  message(FATAL_ERROR "stb_image headers or libstb not found (Debian: apt-get install libstb-dev)")
endif()
if(NOT TARGET vasomim::stb)
  add_library(vasomim::stb UNKNOWN IMPORTED GLOBAL)
  set_target_properties(vasomim::stb PROPERTIES
    IMPORTED_LOCATION "${VASOMIM_STB_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${VASOMIM_STB_INCLUDE}")
endif()

# ISA-L (libisal-dev): the zlib inflate and CRC-32 of vasomim/io's PNG reader. Exposed as the
# imported target vasomim::isal (the installed package config defines it the same way).
find_path(VASOMIM_ISAL_INCLUDE isa-l/igzip_lib.h)
find_library(VASOMIM_ISAL_LIBRARY NAMES isal)
if(NOT VASOMIM_ISAL_INCLUDE OR NOT VASOMIM_ISAL_LIBRARY)
  message(FATAL_ERROR "ISA-L headers or libisal not found (Debian: apt-get install libisal-dev)")
endif()
if(NOT TARGET vasomim::isal)
  add_library(vasomim::isal UNKNOWN IMPORTED GLOBAL)
  set_target_properties(vasomim::isal PROPERTIES
    IMPORTED_LOCATION "${VASOMIM_ISAL_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${VASOMIM_ISAL_INCLUDE}")
endif()
