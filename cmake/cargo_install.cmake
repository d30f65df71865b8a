# Install-time step (see CMakeLists.txt): build the Rust nodes with cargo against the
# already-installed interfaces of this package, and the bag replayer (no ROS), then
# install these executables.
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

# What colcon installs, and with which cargo features: the nodes need only `ros`
# (no SQLite, zstd, MCAP or plotters linked in); the bag replayer needs `bag` and no ROS.
# Two cargo runs share the target directory (dependencies common to both build once).
set(_nodes landmark_flow_node sim_robot sim_range_sensor)
set(_tools landmark_flow_replay)

function(_lf_cargo what)
  list(JOIN ARGN " " _shown)
  message(STATUS "cargo build --release --locked ${_shown} in ${LF_SOURCE_DIR}")
  execute_process(
    COMMAND "${LF_CARGO}" build --release --locked ${ARGN}
            --manifest-path "${LF_SOURCE_DIR}/Cargo.toml"
            --target-dir "${LF_TARGET_DIR}"
    WORKING_DIRECTORY "${LF_SOURCE_DIR}"
    RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "cargo build of the ${LF_PACKAGE} ${what} failed (exit ${_rc})")
  endif()
endfunction()

set(_node_args)
foreach(_exe IN LISTS _nodes)
  list(APPEND _node_args --bin ${_exe})
endforeach()
set(_tool_args)
foreach(_exe IN LISTS _tools)
  list(APPEND _tool_args --bin ${_exe})
endforeach()
_lf_cargo(nodes --no-default-features --features ros ${_node_args})
_lf_cargo(tools --no-default-features --features bag ${_tool_args})

# Only the executables named above: target/release may hold others from older builds.
foreach(_exe IN LISTS _nodes _tools)
  set(_f "${LF_TARGET_DIR}/release/${_exe}")
  if(NOT EXISTS "${_f}")
    message(FATAL_ERROR "cargo did not build ${_f}")
  endif()
  file(INSTALL "${_f}" DESTINATION "${_prefix}/lib/${LF_PACKAGE}" USE_SOURCE_PERMISSIONS)
endforeach()

# Research programs that earlier versions installed here are now cargo examples.
foreach(_old landmark_flow_eval landmark_flow_planner_study)
  if(EXISTS "${_prefix}/lib/${LF_PACKAGE}/${_old}")
    message(STATUS "Removing: ${_prefix}/lib/${LF_PACKAGE}/${_old} (now a cargo example)")
    file(REMOVE "${_prefix}/lib/${LF_PACKAGE}/${_old}")
  endif()
endforeach()
