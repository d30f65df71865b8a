# Install-time step (see CMakeLists.txt): build the Rust nodes with cargo against the
# already-installed interfaces of this package, then install the executables.
# Inputs: LF_CARGO, LF_SOURCE_DIR, LF_TARGET_DIR, LF_IDL_PACKAGES ('|'-separated), LF_PACKAGE.

set(_prefix "${CMAKE_INSTALL_PREFIX}")
# r2r finds interfaces on AMENT_PREFIX_PATH, and its build script is linked to the
# generated typesupport libraries, so both must see the install prefix.
set(ENV{AMENT_PREFIX_PATH} "${_prefix}:$ENV{AMENT_PREFIX_PATH}")
set(ENV{LD_LIBRARY_PATH} "${_prefix}/lib:$ENV{LD_LIBRARY_PATH}")
string(REPLACE "|" ";" _idl "${LF_IDL_PACKAGES}")
set(ENV{IDL_PACKAGE_FILTER} "${_idl}")

message(STATUS "cargo build --release (IDL_PACKAGE_FILTER=${_idl})")
execute_process(
  COMMAND "${LF_CARGO}" build --release --locked --bins
          --manifest-path "${LF_SOURCE_DIR}/Cargo.toml"
          --target-dir "${LF_TARGET_DIR}"
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
