//! `landmark_flow_node`: range measurements + odometry in, landmark beliefs + the next
//! goal out.
//!
//! Inputs (QoS from `inputs.*`, best effort by default): `range`
//! (landmark_flow/RangeMeasurement), `odom` (nav_msgs/Odometry), and with
//! `inputs.sensor_msgs_range` also `range_raw` (sensor_msgs/Range, landmark id =
//! `header.frame_id`). This binary is the r2r adapter of
//! `landmark_flow::node_core::NodeCore` (the bag replayer is the other one): it converts
//! each message into the core's plain value, hands it to the core with the ROS clock's
//! time, and publishes what the core returns, in order. Rejected inputs are counted by
//! reason in the core and logged here (throttled), never fused.
//!
//! Outputs: `landmarks/<id>/pose` (PoseWithCovarianceStamped) and `landmark_beliefs`
//! (LandmarkBeliefArray) after every fused range, `goal_pose` (PoseStamped, for Nav2;
//! planned on the core's planning thread, so a plan never holds up the ranges, and
//! published by the loop's next iteration, at most ~5 ms after it finished; stamped
//! with the time of the data it was planned from),
//! `markers` (MarkerArray), `criterion_heatmap` (OccupancyGrid), `/diagnostics`;
//! with `localizer.odometry: drifting` also, after every accepted odometry message,
//! `odometry_correction` (landmark_flow/OdometryCorrection), the same correction as the
//! `map → odom` transform on `/tf` (tf2_msgs/TFMessage) and `robot_pose`
//! (PoseWithCovarianceStamped, the robot in the map frame);
//! service `~/reset` (std_srvs/Trigger) restores the priors. `/tf_static`
//! (tf2_msgs/TFMessage) gives the sensor mounts: `localizer.base_frame_id` → a range's
//! `header.frame_id` (`sensor_offset_m` when the tree does not connect them).

use futures::{FutureExt, StreamExt};
use landmark_flow::msg::topic_safe;
use landmark_flow::localizer::OdometryMode;
use landmark_flow::msg::TfMessageMsg;
use landmark_flow::node_config::LandmarkFlowNodeConfig;
use landmark_flow::node_core::{Input, NodeCore, Output};
use landmark_flow::planner::PlannerError;
use landmark_flow::ros::messages::{
    diagnostics_out, heatmap_out, landmark_belief_array_out, markers_out, odometry_correction_out, odometry_in,
    pose_stamped_out, pose_with_covariance_out, range_in, range_measurement_in, tf_message_in, tf_message_out,
};
use landmark_flow::node_config::is_runtime_parameter;
use landmark_flow::ros::parameters::{parameter_services, ParameterPolicy};
use landmark_flow::ros::{exit_with_error, load_parameters, output_qos, ros_now_secs, shutdown_signal, yaml_of, NodeError, Throttle};
use r2r::diagnostic_msgs::msg::DiagnosticArray;
use r2r::geometry_msgs::msg::{PoseStamped, PoseWithCovarianceStamped};
use r2r::landmark_flow::msg::{LandmarkBeliefArray, OdometryCorrection, RangeMeasurement};
use r2r::nav_msgs::msg::{OccupancyGrid, Odometry};
use r2r::sensor_msgs::msg::Range;
use r2r::std_srvs::srv::Trigger;
use r2r::tf2_msgs::msg::TFMessage;
use r2r::visualization_msgs::msg::MarkerArray;
use r2r::{Publisher, QosProfile};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const NODE: &str = "landmark_flow_node";

// use_sim_time (bag replay with --clock) needs r2r built with rosgraph_msgs. r2r 0.9.7
// emits that cfg only when it regenerates its bindings, not when it reuses cached ones
// (after AMENT_PREFIX_PATH changed and changed back); fail the build rather than ship
// a node that silently ignores use_sim_time. Fix: `cargo clean -p r2r` in that target dir.
r2r::assert_compiled_with_use_sim_time_support!();

fn main() {
    if let Err(e) = run() {
        exit_with_error(NODE, &e);
    }
}

/// The node's publishers.
struct Publishers {
    beliefs: Publisher<LandmarkBeliefArray>,
    goal: Publisher<PoseStamped>,
    markers: Publisher<MarkerArray>,
    heatmap: Publisher<OccupancyGrid>,
    diagnostics: Publisher<DiagnosticArray>,
    /// Per-landmark pose publishers, created on first use.
    poses: HashMap<String, Publisher<PoseWithCovarianceStamped>>,
    /// With `localizer.odometry: drifting` only.
    drift: Option<DriftPublishers>,
    throttle: Throttle,
    logger: String,
}

/// The outputs of drifting odometry.
struct DriftPublishers {
    correction: Publisher<OdometryCorrection>,
    tf: Publisher<TFMessage>,
    robot_pose: Publisher<PoseWithCovarianceStamped>,
}

impl DriftPublishers {
    fn create(node: &mut r2r::Node) -> Result<Self, NodeError> {
        Ok(Self {
            correction: node.create_publisher("odometry_correction", output_qos())?,
            tf: node.create_publisher("/tf", tf_qos())?,
            robot_pose: node.create_publisher("robot_pose", output_qos())?,
        })
    }
}

/// `/tf`'s QoS as tf2's broadcaster and listener use it: reliable, volatile, keep last 100.
fn tf_qos() -> QosProfile {
    QosProfile::default().keep_last(100).reliable().volatile()
}

/// `/tf_static`'s QoS as tf2 uses it: reliable, transient local (a late subscriber gets
/// the transforms published before it), keep last 100.
fn tf_static_qos() -> QosProfile {
    QosProfile::default().keep_last(100).reliable().transient_local()
}

fn input_qos(config: &LandmarkFlowNodeConfig) -> QosProfile {
    let depth = config.inputs.depth as usize;
    if config.inputs.reliable {
        QosProfile::default().keep_last(depth)
    } else {
        QosProfile::sensor_data().keep_last(depth)
    }
}

/// The node's loop owns the node and the core: `spin_once` takes at most one message
/// per subscription, and the loop hands everything taken to the core before spinning
/// again. r2r hands messages over through a 10-slot channel per subscription and drops
/// what does not fit; draining after every spin keeps it from ever filling, so bursts
/// queue in DDS (bounded by the input QoS depth) instead of being dropped silently.
/// Plans run on the core's planning thread; every iteration ends with an
/// `Input::Tick`, which publishes the plans finished since (spin_once waits at most 5 ms,
/// so a goal is out within ~5 ms of its plan even when no message arrives). On a
/// signal the loop ends at once: dropping the core does not wait for a running plan.
fn run() -> Result<(), NodeError> {
    landmark_flow::ros::exit_on_bad_params_files(NODE);
    let ctx = r2r::Context::create()?;
    let mut node = r2r::Node::create(ctx, NODE, "")?;
    let logger = node.logger().to_string();
    let config: LandmarkFlowNodeConfig = load_parameters(&node)?;
    // Plans run on the core's planning thread: the loop keeps fusing while one runs, and
    // the Tick at the end of every iteration (at most 5 ms apart) publishes finished ones.
    // Batch re-solves of drifting odometry run on a thread of their own likewise.
    let mut core = NodeCore::new(&config)?
        .with_diagnostics_name(&format!("{}: inputs", node.fully_qualified_name()?))
        .with_background_planning()
        .with_background_resolve();

    // The parameter services (`ros2 param`; run-time changes reach the loop on
    // `parameter_changes`) and use_sim_time; they run on their own thread.
    let policy = NodeParameters { config: config.clone() };
    let (param_handler, mut parameter_changes) =
        parameter_services(&mut node, include_str!("../../config/landmark_flow_node.yaml"), policy)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()
        .map_err(|e| NodeError::Other(e.to_string()))?;
    runtime.spawn(param_handler);
    // SIGINT/SIGTERM end the loop; returning drops the node (gone from the graph at
    // once) and the process exits 0.
    let stop = Arc::new(AtomicBool::new(false));
    let stop_on_signal = stop.clone();
    runtime.spawn(async move {
        shutdown_signal().await;
        stop_on_signal.store(true, Ordering::Relaxed);
    });

    let qos = input_qos(&config);
    let mut ranges = node.subscribe::<RangeMeasurement>("range", qos.clone())?;
    let mut odometry = node.subscribe::<Odometry>("odom", qos.clone())?;
    let mut raw_ranges =
        if config.inputs.sensor_msgs_range { Some(node.subscribe::<Range>("range_raw", qos)?) } else { None };
    let mut static_transforms = node.subscribe::<TFMessage>("/tf_static", tf_static_qos())?;
    let mut reset = node.create_service::<Trigger::Service>("~/reset", QosProfile::services_default())?;
    let mut publishers = Publishers {
        beliefs: node.create_publisher("landmark_beliefs", output_qos())?,
        goal: node.create_publisher("goal_pose", output_qos())?,
        markers: node.create_publisher("markers", output_qos())?,
        heatmap: node.create_publisher("criterion_heatmap", output_qos())?,
        diagnostics: node.create_publisher("/diagnostics", output_qos())?,
        poses: HashMap::new(),
        drift: match config.localizer.odometry {
            OdometryMode::Drifting => Some(DriftPublishers::create(&mut node)?),
            OdometryMode::Exact => None,
        },
        throttle: Throttle::new(Duration::from_secs(5)),
        logger,
    };
    let clock = node.get_ros_clock();
    r2r::log_info!(
        &publishers.logger,
        "estimator `{}`, {} configured landmark(s), planner `{}` (on its own thread)",
        config.localizer.estimator.method.name(),
        core.localizer().tracks().len(),
        config.planner.policy.name()
    );
    while !stop.load(Ordering::Relaxed) {
        node.spin_once(Duration::from_millis(5));
        let now_s = ros_now_secs(&clock);
        // The sensor mounts first: a range is placed with the mount known when it is fused.
        while let Some(Some(m)) = static_transforms.next().now_or_never() {
            publishers.publish(&mut node, core.handle(now_s, Input::StaticTransforms(tf_message_in(&m))));
        }
        while let Some(Some(m)) = odometry.next().now_or_never() {
            let outputs = core.handle(now_s, Input::Odometry(odometry_in(&m)));
            publishers.publish(&mut node, outputs);
        }
        while let Some(Some(m)) = ranges.next().now_or_never() {
            let input = Input::RangeMeasurement { topic: "range".into(), msg: range_measurement_in(&m) };
            publishers.publish(&mut node, core.handle(now_s, input));
        }
        if let Some(raw) = raw_ranges.as_mut() {
            while let Some(Some(m)) = raw.next().now_or_never() {
                let input = Input::Range { topic: "range_raw".into(), msg: range_in(&m) };
                publishers.publish(&mut node, core.handle(now_s, input));
            }
        }
        while let Some(Some(req)) = reset.next().now_or_never() {
            let mut message = String::new();
            for output in core.handle(now_s, Input::Reset) {
                match output {
                    Output::Reset { message: m } => message = m,
                    other => publishers.publish(&mut node, vec![other]),
                }
            }
            let _ = req.respond(Trigger::Response { success: true, message });
        }
        let mut changes = Vec::new();
        while let Some(Some(change)) = parameter_changes.next().now_or_never() {
            changes.push(change);
        }
        if !changes.is_empty() {
            // Accepted by the parameter services with the same checks: applying cannot fail.
            match NodeParameters::apply(core.config(), &changes).and_then(|c| core.reconfigure(&c).map_err(|e| e.to_string())) {
                Ok(()) => r2r::log_info!(&publishers.logger, "parameters changed: {}", changes.iter().map(|(n, v)| format!("{n} = {v:?}")).collect::<Vec<_>>().join(", ")),
                Err(e) => r2r::log_error!(&publishers.logger, "parameter change not applied: {e}"),
            }
        }
        publishers.publish(&mut node, core.handle(now_s, Input::Tick));
    }
    r2r::log_info!(&publishers.logger, "shutting down");
    Ok(())
}

/// What `ros2 param set` may change while the node runs
/// ([`landmark_flow::node_config::RUNTIME_PARAMETERS`]), checked by the same
/// `validate()` as at start.
struct NodeParameters {
    /// The configuration with every accepted change.
    config: LandmarkFlowNodeConfig,
}

impl NodeParameters {
    /// `config` with `changes` applied, validated.
    fn apply(config: &LandmarkFlowNodeConfig, changes: &[(String, r2r::ParameterValue)]) -> Result<LandmarkFlowNodeConfig, String> {
        let changes = changes
            .iter()
            .map(|(name, value)| yaml_of(value).map(|v| (name.clone(), v)).ok_or_else(|| format!("{name}: a value is needed")))
            .collect::<Result<Vec<_>, _>>()?;
        config.with_parameters(&changes).map_err(|e| e.to_string())
    }
}

impl ParameterPolicy for NodeParameters {
    fn is_runtime(&self, name: &str) -> bool {
        is_runtime_parameter(name)
    }

    fn accept(&mut self, changes: &[(String, r2r::ParameterValue)]) -> Result<(), String> {
        self.config = Self::apply(&self.config, changes)?;
        Ok(())
    }

    fn range(&self, name: &str) -> Option<(f64, f64)> {
        self.config.allowed_range(name)
    }
}

impl Publishers {
    /// Publishes the core's outputs in order; logs rejections and planning failures
    /// (throttled per reason).
    fn publish(&mut self, node: &mut r2r::Node, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Odometry { .. } | Output::Reset { .. } => {}
                // The core emits these with `odometry: drifting` only, when `drift` exists.
                Output::OdometryCorrection(msg) => {
                    if let Some(d) = &self.drift {
                        let _ = d.correction.publish(&odometry_correction_out(&msg));
                        let _ = d.tf.publish(&tf_message_out(&TfMessageMsg::from(&msg)));
                    }
                }
                Output::RobotPose(msg) => {
                    if let Some(d) = &self.drift {
                        let _ = d.robot_pose.publish(&pose_with_covariance_out(&msg));
                    }
                }
                Output::OdometryRejected(r) => self.warn(&format!("odom/{}", r.reason()), || format!("odom rejected ({}): {r}", r.reason())),
                Output::StaticTransformRejected(r) => self.warn("tf_static", || format!("/tf_static transform not used as a sensor mount: {r}")),
                Output::Range(u) => {
                    if let Err(r) = &u.result {
                        let topic = &u.input.topic;
                        self.warn(&format!("{topic}/{}", r.reason()), || format!("{topic} rejected ({}): {r}", r.reason()));
                    }
                }
                Output::LandmarkPose { landmark_id, msg } => {
                    if let Some(p) = self.pose_publisher(node, &landmark_id) {
                        let _ = p.publish(&pose_with_covariance_out(&msg));
                    }
                }
                Output::Beliefs(msg) => {
                    let _ = self.beliefs.publish(&landmark_belief_array_out(&msg));
                }
                Output::Markers(msg) => {
                    let _ = self.markers.publish(&markers_out(&msg));
                }
                Output::Goal(g) => {
                    let _ = self.goal.publish(&pose_stamped_out(&g.msg));
                }
                Output::Heatmap(msg) => {
                    let _ = self.heatmap.publish(&heatmap_out(&msg));
                }
                Output::PlanFailed { landmark_id, error } => {
                    let key = match error {
                        PlannerError::NoValidCandidate { .. } => "planner/no_candidate",
                        _ => "planner/error",
                    };
                    self.warn(key, || format!("no goal for `{landmark_id}`: {error}"));
                }
                Output::Diagnostics(msg) => {
                    let _ = self.diagnostics.publish(&diagnostics_out(&msg));
                }
            }
        }
    }

    /// Logs `text()` at most every 5 s per `key`.
    fn warn(&mut self, key: &str, text: impl FnOnce() -> String) {
        if self.throttle.ready(key) {
            r2r::log_warn!(&self.logger, "{}", text());
        }
    }

    /// The pose publisher of a landmark, created on first use.
    fn pose_publisher(&mut self, node: &mut r2r::Node, id: &str) -> Option<&Publisher<PoseWithCovarianceStamped>> {
        if !self.poses.contains_key(id) {
            let topic = format!("landmarks/{}/pose", topic_safe(id));
            match node.create_publisher::<PoseWithCovarianceStamped>(&topic, output_qos()) {
                Ok(p) => {
                    self.poses.insert(id.to_string(), p);
                }
                Err(e) => r2r::log_error!(&self.logger, "cannot create the pose publisher of `{}`: {}", id, e),
            }
        }
        self.poses.get(id)
    }
}
