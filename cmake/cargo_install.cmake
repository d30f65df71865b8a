# Install-time step (see CMakeLists.txt): build the Rust nodes with cargo against the
# already-installed interfaces of this package, then install the executables.
# Inputs: LF_CARGO, LF_SOURCE_DIR, LF_TARGET_DIR, LF_PACKAGE. cargo runs in the
# source directory so that .cargo/config.toml (IDL_PACKAGE_FILTER) applies.

set(_prefix "${CMAKE_INSTALL_PREFIX}")
# r2r finds interfaces on AMENT_PREFIX_PATH, and its build script is linked to the
# generated typesupport libraries, so both must see the install prefix. Prepend it
# only when absent: r2r rebuilds its bindings whenever AMENT_PREFIX_PATH changes.
foreach(_var AMENT_PREFIX_PATH LD_LIBRARY_PATH)
  set(_dir "${_prefix}")
  if(_var STREQUAL "LD_LIBRARY_PATH")
    set(_dir "${_prefix}/lib")
  endif()
  string(FIND ":$ENV{${_var}}:" ":${_dir}:" _at)
  if(_at EQUAL -1)
    set(ENV{${_var}} "${_dir}:$ENV{${_var}}")
  endif()
endforeach()

# colcon adds this package's own prefix to CMAKE_PREFIX_PATH once it exists (second
# and later builds); r2r does not need it there, and a changed value would make r2r
# regenerate its bindings on every second build.
string(REPLACE ":" ";" _cmake_prefixes "$ENV{CMAKE_PREFIX_PATH}")
list(REMOVE_ITEM _cmake_prefixes "${_prefix}")
list(REMOVE_DUPLICATES _cmake_prefixes)
string(REPLACE ";" ":" _cmake_prefixes "${_cmake_prefixes}")
set(ENV{CMAKE_PREFIX_PATH} "${_cmake_prefixes}")

message(STATUS "cargo build --release --bins in ${LF_SOURCE_DIR}")
execute_process(
  COMMAND "${LF_CARGO}" build --release --locked --bins
          --manifest-path "${LF_SOURCE_DIR}/Cargo.toml"
          --target-dir "${LF_TARGET_DIR}"
  WORKING_DIRECTORY "${LF_SOURCE_DIR}"
  RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "cargo build of the ${LF_PACKAGE} nodes failed (exit ${_rc})")
endif()

# Every file directly in target/release without a dot in its name is a binary target.
file(GLOB _candidates LIST_DIRECTORIES false "${LF_TARGET_DIR}/release/*")
set(_installed 0)
foreach(_f IN LISTS _candidates)
  get_filename_component(_name "${_f}" NAME)
  if(NOT _name MATCHES "\\.")
    file(INSTALL "${_f}" DESTINATION "${_prefix}/lib/${LF_PACKAGE}" USE_SOURCE_PERMISSIONS)
    math(EXPR _installed "${_installed} + 1")
  endif()
endforeach()
if(_installed EQUAL 0)
  message(FATAL_ERROR "cargo built no executables in ${LF_TARGET_DIR}/release")
endif()
