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
