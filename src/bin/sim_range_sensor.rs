//! `sim_range_sensor`: a simulated range sensor (radio/UWB/acoustic ranging).
//!
//! Subscribes `odom` (nav_msgs/Odometry, sensor-data QoS). At `rate_hz` on the ROS
//! clock it takes the latest odometry pose, adds the mount offset, and publishes on
//! `range` one `landmark_flow/RangeMeasurement` per configured true landmark (and,
//! with `publish_sensor_msgs_range`, a `sensor_msgs/Range` on `range_raw` whose
//! `header.frame_id` is the landmark id). The measurement stamp is the odometry stamp
//! the geometry was computed at. Noise, outliers, dropouts and max range: see
//! `landmark_flow::sim_sensor`. Parameters: `config/sim_range_sensor.yaml`.

use futures::StreamExt;
use landmark_flow::ros::{
    run_async_node, load_parameters, odometry_pose, output_qos, ros_now_secs, sensor_qos, spawn_spin_thread, stamp_to_secs, Throttle,
};
use landmark_flow::odometry::is_finite_pose;
use landmark_flow::sim_sensor::{SimRangeSensor, SimRangeSensorConfig};
use nalgebra::Isometry3;
use r2r::landmark_flow::msg::RangeMeasurement;
use r2r::builtin_interfaces::msg::Time;
use r2r::nav_msgs::msg::Odometry;
use r2r::sensor_msgs::msg::Range;
use r2r::std_msgs::msg::Header;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NODE: &str = "sim_range_sensor";

/// The latest valid odometry: base pose in the odometry frame and its stamp (kept
/// as the message's own stamp: f64 seconds since the epoch cannot hold nanoseconds).
type LatestOdom = Arc<Mutex<Option<(Isometry3<f64>, Time)>>>;

fn main() {
    run_async_node(NODE, run);
}

async fn run() -> Result<(), landmark_flow::ros::NodeError> {
    landmark_flow::ros::exit_on_bad_params_files(NODE);
    let ctx = r2r::Context::create()?;
    let mut node = r2r::Node::create(ctx, NODE, "")?;
    let logger = node.logger().to_string();

    let config: SimRangeSensorConfig = load_parameters(&node)?;
    let mut sensor = SimRangeSensor::new(config)?;
    let config = sensor.config().clone();

    // The parameter services (`ros2 param`; all read at start); switches on use_sim_time.
    let (param_handler, _param_events) = landmark_flow::ros::parameters::parameter_services(&mut node, include_str!("../../config/sim_range_sensor.yaml"), landmark_flow::ros::parameters::StartOnly)?;
    tokio::spawn(param_handler);

    let mut odom_sub = node.subscribe::<Odometry>("odom", sensor_qos())?;
    let range_pub = node.create_publisher::<RangeMeasurement>("range", output_qos())?;
    let raw_pub = if config.publish_sensor_msgs_range {
        Some(node.create_publisher::<Range>("range_raw", output_qos())?)
    } else {
        None
    };
    let mut timer = node.create_timer(Duration::from_secs_f64(1.0 / config.rate_hz))?;
    let clock = node.get_ros_clock();
    r2r::log_info!(
        &logger,
        "simulating ranges to {} landmark(s) at {} Hz, sigma {} m",
        config.landmarks.ids.len(),
        config.rate_hz,
        config.noise_std_m
    );

    let latest: LatestOdom = Arc::new(Mutex::new(None));
    let odom_latest = latest.clone();
    let odom_logger = logger.clone();
    tokio::spawn(async move {
        let mut throttle = Throttle::new(Duration::from_secs(5));
        while let Some(odom) = odom_sub.next().await {
            let pose = odometry_pose(&odom);
            if is_finite_pose(&pose) {
                *odom_latest.lock().expect("odom lock") = Some((pose, odom.header.stamp));
            } else if throttle.ready("bad_odom") {
                r2r::log_warn!(&odom_logger, "odom rejected: the pose is not finite");
            }
        }
    });

    let _spin = spawn_spin_thread(node);

    let mut throttle = Throttle::new(Duration::from_secs(5));
    let variance = if config.report_variance {
        config.noise_std_m.powi(2)
    } else {
        0.0
    };
    loop {
        timer.tick().await?;
        let Some((pose, stamp)) = latest.lock().expect("odom lock").clone() else {
            if throttle.ready("no_odom") {
                r2r::log_info!(&logger, "waiting for odom");
            }
            continue;
        };
        let now = ros_now_secs(&clock);
        let stamp_s = stamp_to_secs(&stamp);
        if now - stamp_s > config.odom_timeout_s {
            if throttle.ready("stale_odom") {
                r2r::log_warn!(&logger, "odom is {:.2} s old: no ranges simulated", now - stamp_s);
            }
            continue;
        }
        for r in sensor.measure(&pose) {
            let msg = RangeMeasurement {
                header: Header {
                    stamp: stamp.clone(),
                    frame_id: config.frame_id.clone(),
                },
                landmark_id: r.landmark_id.clone(),
                range: r.range_m,
                variance,
            };
            range_pub.publish(&msg)?;
            if let Some(raw) = &raw_pub {
                raw.publish(&Range {
                    header: Header {
                        stamp: stamp.clone(),
                        frame_id: r.landmark_id,
                    },
                    radiation_type: Range::ULTRASOUND as u8,
                    field_of_view: std::f32::consts::TAU,
                    min_range: 0.0,
                    max_range: config.max_range_m as f32,
                    range: r.range_m as f32,
                    variance: variance as f32,
                })?;
            }
        }
    }
}
