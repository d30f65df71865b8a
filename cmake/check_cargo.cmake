# Stops the build with one line when cargo is older than Cargo.toml's rust-version
# (Ubuntu 24.04's apt/rosdep cargo is 1.75; the locked dependencies need what
# Cargo.toml says). Input: CARGO_EXECUTABLE. Included by CMakeLists.txt at configure
# time; also runs alone: cmake -DCARGO_EXECUTABLE=/path/to/cargo -P cmake/check_cargo.cmake
get_filename_component(_lf_root "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
file(STRINGS "${_lf_root}/Cargo.toml" _lf_rust_version REGEX "^rust-version *= *\"[0-9.]+\"")
string(REGEX REPLACE ".*\"([0-9.]+)\".*" "\\1" _lf_rust_version "${_lf_rust_version}")
execute_process(COMMAND "${CARGO_EXECUTABLE}" --version OUTPUT_VARIABLE _lf_cargo_version RESULT_VARIABLE _lf_rc
                OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
string(REGEX MATCH "[0-9]+\\.[0-9]+(\\.[0-9]+)?" _lf_cargo_number "${_lf_cargo_version}")
if(NOT _lf_rc EQUAL 0 OR NOT _lf_cargo_number OR _lf_cargo_number VERSION_LESS _lf_rust_version)
  message(FATAL_ERROR "landmark_flow needs cargo >= ${_lf_rust_version}, but ${CARGO_EXECUTABLE} is "
    "'${_lf_cargo_version}': install the current stable toolchain with rustup "
    "(https://rustup.rs: curl https://sh.rustup.rs -sSf | sh; ~/.cargo/bin then comes first), and build again.")
endif()
message(STATUS "landmark_flow: ${_lf_cargo_version} (needs >= ${_lf_rust_version}). cargo runs in the install "
  "step; colcon build --event-handlers console_direct+ shows its progress.")
