//! `sim_robot`: a kinematic robot that drives toward the latest `goal_pose`
//! (geometry_msgs/PoseStamped, in the odometry or the map frame) and publishes `odom`
//! (nav_msgs/Odometry, with the configured gyro bias, wheel scale error and drift) and
//! `ground_truth/odom` (the true pose, always exact) at `rate_hz` on the ROS clock.
//! See `landmark_flow::sim_robot`.

use futures::StreamExt;
use landmark_flow::ros::{run_async_node, load_parameters, output_qos, spawn_spin_thread, Throttle};
use landmark_flow::sim_robot::{Pose2, SimRobot, SimRobotConfig};
use nalgebra::Vector2;
use r2r::geometry_msgs::msg::{Point, PoseStamped, Quaternion};
use r2r::nav_msgs::msg::Odometry;
use r2r::std_msgs::msg::Header;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NODE: &str = "sim_robot";

fn main() {
    run_async_node(NODE, run);
}

fn odometry(pose: Pose2, header: Header, child: &str, speed_mps: f64) -> Odometry {
    let mut m = Odometry { header, child_frame_id: child.to_string(), ..Default::default() };
    m.pose.pose.position = Point { x: pose.position.x, y: pose.position.y, z: 0.0 };
    m.pose.pose.orientation = Quaternion { x: 0.0, y: 0.0, z: (pose.yaw / 2.0).sin(), w: (pose.yaw / 2.0).cos() };
    m.twist.twist.linear.x = speed_mps;
    m
}

async fn run() -> Result<(), landmark_flow::ros::NodeError> {
    landmark_flow::ros::exit_on_bad_params_files(NODE);
    let ctx = r2r::Context::create()?;
    let mut node = r2r::Node::create(ctx, NODE, "")?;
    let logger = node.logger().to_string();
    let config: SimRobotConfig = load_parameters(&node)?;
    let robot = Arc::new(Mutex::new(SimRobot::new(config)?));
    let config = robot.lock().expect("robot lock").config().clone();

    let (param_handler, _events) = landmark_flow::ros::parameters::parameter_services(&mut node, "", landmark_flow::ros::parameters::StartOnly)?;
    tokio::spawn(param_handler);
    let mut goals = node.subscribe::<PoseStamped>("goal_pose", output_qos())?;
    let odom_pub = node.create_publisher::<Odometry>("odom", output_qos())?;
    let truth_pub = node.create_publisher::<Odometry>("ground_truth/odom", output_qos())?;
    let period = 1.0 / config.rate_hz;
    let mut timer = node.create_timer(Duration::from_secs_f64(period))?;
    let clock = node.get_ros_clock();

    let goal_robot = robot.clone();
    let goal_logger = logger.clone();
    let goal_config = config.clone();
    tokio::spawn(async move {
        let mut throttle = Throttle::new(Duration::from_secs(5));
        while let Some(goal) = goals.next().await {
            let frame_ok = goal_config.accepts_goal_frame(&goal.header.frame_id);
            let p = goal.pose.position;
            let accepted = frame_ok && goal_robot.lock().expect("robot lock").set_goal(Vector2::new(p.x, p.y));
            if !accepted && throttle.ready("bad_goal") {
                r2r::log_warn!(&goal_logger, "goal rejected (frame `{}`, position {:?})", goal.header.frame_id, p);
            }
        }
    });
    let _spin = spawn_spin_thread(node);

    let mut last: Option<Vector2<f64>> = None;
    loop {
        timer.tick().await?;
        let (truth, odom, speed, odom_speed) = {
            let mut r = robot.lock().expect("robot lock");
            r.step(period);
            let truth = r.true_pose();
            let speed = last.map(|p| (truth.position - p).norm() / period).unwrap_or(0.0);
            (truth, r.odometry_pose(), speed, r.odometry_speed_mps(speed))
        };
        last = Some(truth.position);
        let now = clock.lock().expect("clock lock").get_now().unwrap_or_default();
        let header = Header { stamp: r2r::Clock::to_builtin_time(&now), frame_id: config.odom_frame_id.clone() };
        odom_pub.publish(&odometry(odom, header.clone(), &config.base_frame_id, odom_speed))?;
        truth_pub.publish(&odometry(truth, header, &config.base_frame_id, speed))?;
    }
}
