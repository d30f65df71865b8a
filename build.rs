//! Build script: only one job. In the embedded ROS 2 mode (ROS from PyPI wheels,
//! see scripts/with_ros) librcl pulls in `*__rosidl_generator_py.so`, which needs
//! CPython's symbols, so binaries that use ROS must link libpython. scripts/with_ros
//! sets `LANDMARK_FLOW_LIBPYTHON_DIR` in that mode; with a real ROS 2 install it is
//! unset and nothing is added.
fn main() {
    println!("cargo:rerun-if-env-changed=LANDMARK_FLOW_LIBPYTHON_DIR");
    let ros = std::env::var_os("CARGO_FEATURE_ROS").is_some();
    if let (true, Ok(dir)) = (ros, std::env::var("LANDMARK_FLOW_LIBPYTHON_DIR")) {
        if !dir.is_empty() {
            println!("cargo:rustc-link-arg-bins=-Wl,--no-as-needed");
            println!("cargo:rustc-link-arg-bins=-L{dir}");
            println!("cargo:rustc-link-arg-bins=-lpython3.11");
            println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{dir}");
            println!("cargo:rustc-link-arg-bins=-Wl,--as-needed");
        }
    }
}
