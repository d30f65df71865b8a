//! # landmark_flow
//!
//! Localises static landmarks (beacons, survey markers) from range measurements taken
//! by a moving robot whose pose is known from odometry.
//!
//! Model and symbols, used throughout the crate:
//! - `y` (or `s` for a hypothesis): landmark position in the odometry frame, metres.
//! - `x`: sensor position in the odometry frame at the measurement's stamp, metres.
//! - `z = ‖x − y‖ + w`, `w ~ N(0, σ²)`: a range measurement, metres; σ² in m².
//! - the belief over `y` is a Gaussian N(μ, Σ) (or a small sum of them); Σ in m².
//! - time is `f64` seconds in the core; ROS time types are converted at the edge.
//!
//! The core (everything but [`ros`]) has no ROS dependency: the node, the bag
//! replayer, the benches and the tests call the same functions. Cargo features (all
//! on by default): `ros` adds the r2r/tokio layer used by the nodes; `bag` the rosbag2
//! replayer (`replay`: MCAP, SQLite, zstd); `plots` the PNG helpers (`plotting`).

pub mod estimator;
pub mod config;
pub mod cpu;
pub mod goal_scheduler;
pub mod localizer;
pub mod msg;
pub mod node_core;
pub mod node_config;
pub mod odometry;
pub mod planner;
#[cfg(feature = "plots")]
pub mod plotting;
#[cfg(feature = "bag")]
pub mod replay;
pub mod sim_robot;
pub mod sim_sensor;
pub mod slides;
pub mod stats;

#[cfg(feature = "ros")]
pub mod ros;
