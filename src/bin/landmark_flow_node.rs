//! `landmark_flow_node`: range measurements + odometry in, landmark beliefs + the next
//! goal out.
//!
//! Inputs (QoS from `inputs.*`, best effort by default): `range`
//! (landmark_flow/RangeMeasurement), `odom` (nav_msgs/Odometry), and with
//! `inputs.sensor_msgs_range` also `range_raw` (sensor_msgs/Range, landmark id =
//! `header.frame_id`). Every input goes through `landmark_flow::localizer` (the same
//! code the bag replayer runs): rejected inputs are counted by reason and logged
//! (throttled), never fused.
//!
//! Outputs: `landmarks/<id>/pose` (PoseWithCovarianceStamped) and `landmark_beliefs`
//! (LandmarkBeliefArray) after every fused range, `goal_pose` (PoseStamped, for Nav2),
//! `markers` (MarkerArray), `criterion_heatmap` (OccupancyGrid), `/diagnostics`;
//! service `~/reset` (std_srvs/Trigger) restores the priors.

use futures::{FutureExt, StreamExt};
use landmark_flow::localizer::{Localizer, RangeInput, RangeOutcome, Rejection};
use landmark_flow::node_config::LandmarkFlowNodeConfig;
use landmark_flow::goal_scheduler::{GoalScheduler, PlanTrigger};
use landmark_flow::planner::PlannerError;
use landmark_flow::inputs::range_input_from_sensor_msgs_range;
use landmark_flow::outputs::{belief_stamp_s, publishable_tracks, topic_safe};
use landmark_flow::ros::messages::{
    goal_marker, goal_pose, heatmap, landmark_belief, landmark_markers, pose_with_covariance,
};
use landmark_flow::ros::{
    exit_with_error, load_parameters, odometry_pose, output_qos, ros_now_secs, secs_to_stamp, stamp_to_secs,
    NodeError, Throttle,
};
use nalgebra::Vector2;
use r2r::builtin_interfaces::msg::Time;
use r2r::diagnostic_msgs::msg::{DiagnosticArray, DiagnosticStatus, KeyValue};
use r2r::geometry_msgs::msg::{PoseStamped, PoseWithCovarianceStamped};
use r2r::landmark_flow::msg::{LandmarkBeliefArray, RangeMeasurement};
use r2r::nav_msgs::msg::{OccupancyGrid, Odometry};
use r2r::sensor_msgs::msg::Range;
use r2r::std_msgs::msg::Header;
use r2r::std_srvs::srv::Trigger;
use r2r::visualization_msgs::msg::MarkerArray;
use r2r::{Publisher, QosProfile};
use std::collections::HashMap;
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

/// Publishers that exist from the start.
struct Outputs {
    beliefs: Publisher<LandmarkBeliefArray>,
    goal: Publisher<PoseStamped>,
    markers: Publisher<MarkerArray>,
    heatmap: Publisher<OccupancyGrid>,
    diagnostics: Publisher<DiagnosticArray>,
}

/// Everything the event loop owns.
struct NodeState {
    config: LandmarkFlowNodeConfig,
    localizer: Localizer,
    /// Per-landmark pose publishers, created on first use.
    pose_pubs: HashMap<String, Publisher<PoseWithCovarianceStamped>>,
    outputs: Outputs,
    goals: GoalScheduler,
    throttle: Throttle,
    logger: String,
}

fn input_qos(config: &LandmarkFlowNodeConfig) -> QosProfile {
    let depth = config.inputs.depth as usize;
    if config.inputs.reliable {
        QosProfile::default().keep_last(depth)
    } else {
        QosProfile::sensor_data().keep_last(depth)
    }
}

/// The node's loop owns the node and its state: `spin_once` takes at most one message
/// per subscription, and the loop handles everything taken before spinning again. r2r
/// hands messages over through a 10-slot channel per subscription and drops what does
/// not fit; draining after every spin keeps it from ever filling, so bursts queue in
/// DDS (bounded by the input QoS depth) instead of being dropped silently.
fn run() -> Result<(), NodeError> {
    let ctx = r2r::Context::create()?;
    let mut node = r2r::Node::create(ctx, NODE, "")?;
    let logger = node.logger().to_string();
    let config: LandmarkFlowNodeConfig = load_parameters(&node)?;
    config.validate()?;
    let localizer = Localizer::new(config.localizer.clone())?;

    // The parameter handler (ros2 param services, use_sim_time) runs on its own thread.
    let (param_handler, _events) = node.make_parameter_handler()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()
        .map_err(|e| NodeError::Other(e.to_string()))?;
    runtime.spawn(param_handler);

    let qos = input_qos(&config);
    let ranges = node.subscribe::<RangeMeasurement>("range", qos.clone())?;
    let odometry = node.subscribe::<Odometry>("odom", qos.clone())?;
    let raw_ranges = if config.inputs.sensor_msgs_range {
        Some(node.subscribe::<Range>("range_raw", qos)?)
    } else {
        None
    };
    let reset = node.create_service::<Trigger::Service>("~/reset", QosProfile::services_default())?;
    let outputs = Outputs {
        beliefs: node.create_publisher("landmark_beliefs", output_qos())?,
        goal: node.create_publisher("goal_pose", output_qos())?,
        markers: node.create_publisher("markers", output_qos())?,
        heatmap: node.create_publisher("criterion_heatmap", output_qos())?,
        diagnostics: node.create_publisher("/diagnostics", output_qos())?,
    };
    let diagnostics_period_s = config.publish.diagnostics_period_s;
    let replan_period_s = (config.goal.enabled && config.goal.replan_period_s > 0.0).then_some(config.goal.replan_period_s);
    let clock = node.get_ros_clock();
    r2r::log_info!(
        &logger,
        "estimator `{}`, {} configured landmark(s), planner `{}`",
        config.localizer.estimator.method.name(),
        localizer.tracks().len(),
        config.planner.policy.name()
    );
    let mut st = NodeState {
        goals: GoalScheduler::new(&config),
        config,
        localizer,
        pose_pubs: HashMap::new(),
        outputs,
        throttle: Throttle::new(Duration::from_secs(5)),
        logger,
    };
    let (mut ranges, mut odometry, mut raw_ranges, mut reset) = (ranges, odometry, raw_ranges, reset);
    let sensor_frame = st.config.localizer.sensor_frame_id.clone();
    let mut diagnostics_timer = PeriodicTimer::new(diagnostics_period_s);
    let mut replan_timer = replan_period_s.map(PeriodicTimer::new);
    loop {
        node.spin_once(Duration::from_millis(5));
        while let Some(Some(msg)) = odometry.next().now_or_never() {
            on_odometry(&mut st, &mut node, msg);
        }
        while let Some(Some(m)) = ranges.next().now_or_never() {
            let input = RangeInput {
                stamp_s: stamp_to_secs(&m.header.stamp),
                frame_id: m.header.frame_id,
                landmark_id: m.landmark_id,
                range_m: m.range,
                variance_m2: m.variance,
            };
            on_range(&mut st, &mut node, input, "range");
        }
        if let Some(raw) = raw_ranges.as_mut() {
            while let Some(Some(m)) = raw.next().now_or_never() {
                // sensor_msgs/Range carries the landmark in frame_id; it has no sensor frame.
                let h = &m.header;
                let input = range_input_from_sensor_msgs_range(
                    stamp_to_secs(&h.stamp),
                    &h.frame_id,
                    m.range,
                    m.variance,
                    &sensor_frame,
                );
                on_range(&mut st, &mut node, input, "range_raw");
            }
        }
        let now_s = ros_now_secs(&clock);
        let now = secs_to_stamp(now_s);
        while let Some(Some(req)) = reset.next().now_or_never() {
            st.localizer.reset();
            st.goals.reset();
            publish_beliefs(&mut st, now.clone());
            let message = format!("restored the priors of {} landmark(s)", st.localizer.tracks().len());
            let _ = req.respond(Trigger::Response { success: true, message });
        }
        if replan_timer.as_mut().is_some_and(|t| t.due(now_s)) {
            replan(&mut st, &PlanTrigger::Timer, now.clone());
        }
        if diagnostics_timer.due(now_s) {
            st.outputs.diagnostics.publish(&diagnostics(&st, now))?;
        }
    }
}

/// A period on the ROS clock (so sim time works), checked by the node's loop.
struct PeriodicTimer {
    period_s: f64,
    next_s: Option<f64>,
}

impl PeriodicTimer {
    fn new(period_s: f64) -> Self {
        Self { period_s, next_s: None }
    }

    /// True once per period. A clock that jumps back (a bag restarted) restarts it.
    fn due(&mut self, now_s: f64) -> bool {
        match self.next_s {
            Some(next) if now_s >= next || next - now_s > 2.0 * self.period_s => {
                self.next_s = Some(now_s + self.period_s);
                now_s >= next
            }
            Some(_) => false,
            None => {
                self.next_s = Some(now_s + self.period_s);
                false
            }
        }
    }
}

fn on_odometry(st: &mut NodeState, node: &mut r2r::Node, msg: Odometry) {
    let pose = odometry_pose(&msg);
    match st.localizer.add_odometry(stamp_to_secs(&msg.header.stamp), &msg.header.frame_id, pose) {
        Ok(processed) => {
            for p in processed {
                match p.result {
                    Ok(_) => after_fused(st, node, p.input.landmark_id),
                    Err(r) => warn_rejected(st, "range", &r),
                }
            }
            replan(st, &PlanTrigger::Odometry, msg.header.stamp);
        }
        Err(r) => warn_rejected(st, "odom", &r),
    }
}

fn warn_rejected(st: &mut NodeState, topic: &str, r: &Rejection) {
    if st.throttle.ready(&format!("{topic}/{}", r.reason())) {
        r2r::log_warn!(&st.logger, "{} rejected ({}): {}", topic, r.reason(), r);
    }
}

fn on_range(st: &mut NodeState, node: &mut r2r::Node, input: RangeInput, topic: &str) {
    match st.localizer.add_range(&input) {
        Ok(RangeOutcome::Fused(_)) => after_fused(st, node, input.landmark_id),
        Ok(RangeOutcome::Pending) => {}
        Err(r) => warn_rejected(st, topic, &r),
    }
}

/// Publishes what changed after a range of landmark `id` was fused (creating the
/// landmark's pose publisher on first use) and re-plans when the scheduler says so.
fn after_fused(st: &mut NodeState, node: &mut r2r::Node, id: String) {
    if !st.pose_pubs.contains_key(&id) {
        let topic = format!("landmarks/{}/pose", topic_safe(&id));
        match node.create_publisher::<PoseWithCovarianceStamped>(&topic, output_qos()) {
            Ok(p) => {
                st.pose_pubs.insert(id.clone(), p);
            }
            Err(e) => r2r::log_error!(&st.logger, "cannot create the pose publisher of `{}`: {}", id, e),
        }
    }
    let Some(stamp) = st.localizer.tracks().get(&id).map(|t| secs_to_stamp(t.last_stamp_s)) else { return };
    publish_landmark(st, &id);
    publish_beliefs(st, stamp.clone());
    replan(st, &PlanTrigger::Fused(id), stamp);
}

fn header(st: &NodeState, stamp: Time) -> Header {
    Header { stamp, frame_id: st.localizer.frame_id().to_string() }
}

fn publish_landmark(st: &NodeState, id: &str) {
    let (Some(track), Some(publisher)) = (st.localizer.tracks().get(id), st.pose_pubs.get(id)) else {
        return;
    };
    // An initialising landmark has no estimate yet: no pose (its LandmarkBelief says so).
    if track.is_tracking() {
        let stamp = secs_to_stamp(track.last_stamp_s);
        let _ = publisher.publish(&pose_with_covariance(header(st, stamp), &track.summary.belief));
    }
}

fn publish_beliefs(st: &mut NodeState, stamp: Time) {
    let beliefs = publishable_tracks(st.localizer.tracks())
        .map(|(id, t)| {
            // A belief's stamp is its last fused range's (the publication time before any).
            let s = belief_stamp_s(t).map_or_else(|| stamp.clone(), secs_to_stamp);
            landmark_belief(header(st, s), id, t)
        })
        .collect();
    let _ = st.outputs.beliefs.publish(&LandmarkBeliefArray { header: header(st, stamp.clone()), beliefs });
    if st.config.publish.markers {
        let h = header(st, stamp);
        let mut markers: Vec<_> = st
            .localizer
            .tracks()
            .iter()
            .enumerate()
            .filter(|(_, (_, t))| t.is_tracking())
            .flat_map(|(k, (id, t))| landmark_markers(&h, id, k as i32, t))
            .collect();
        if let (Some(goal), Some(x)) = (st.goals.current_goal(), st.localizer.latest_base_position()) {
            markers.push(goal_marker(&h, &Vector2::new(x.x, x.y), &goal));
        }
        let _ = st.outputs.markers.publish(&MarkerArray { markers });
    }
}

/// Asks the goal scheduler whether `trigger` calls for a new goal; publishes it (and
/// the criterion heatmap) or logs why there is none.
fn replan(st: &mut NodeState, trigger: &PlanTrigger, stamp: Time) {
    match st.goals.on_trigger(trigger, &st.localizer) {
        None => {}
        Some(Ok(planned)) => {
            let h = header(st, stamp.clone());
            let _ = st.outputs.goal.publish(&goal_pose(h.clone(), &planned.from_m, &planned.goal.position_m));
            if let Some(grid) = &planned.heatmap {
                let _ = st.outputs.heatmap.publish(&heatmap(h, stamp, grid));
            }
        }
        Some(Err(failure)) => {
            let key = match failure.error {
                PlannerError::NoValidCandidate { .. } => "planner/no_candidate",
                _ => "planner/error",
            };
            if st.throttle.ready(key) {
                r2r::log_warn!(&st.logger, "no goal for `{}`: {}", failure.landmark_id, failure.error);
            }
        }
    }
}

fn diagnostics(st: &NodeState, stamp: Time) -> DiagnosticArray {
    let kv = |key: &str, value: String| KeyValue { key: key.to_string(), value };
    let mut values = vec![kv("accepted", st.localizer.accepted().to_string())];
    let rejected: u64 = st.localizer.rejected().values().sum();
    values.push(kv("rejected", rejected.to_string()));
    values.push(kv("waiting_for_odometry", st.localizer.pending().to_string()));
    for (reason, n) in st.localizer.rejected() {
        values.push(kv(&format!("rejected.{reason}"), n.to_string()));
    }
    let mut worst_latency: f64 = 0.0;
    for (id, t) in st.localizer.tracks() {
        values.push(kv(&format!("landmark.{id}.fused"), t.measurements_fused.to_string()));
        values.push(kv(&format!("landmark.{id}.update_latency_s"), format!("{:.6}", t.last_latency_s)));
        worst_latency = worst_latency.max(t.last_latency_s);
    }
    values.push(kv("update_latency_s.max_last", format!("{worst_latency:.6}")));
    let level = if rejected > 0 { DiagnosticStatus::WARN as u8 } else { DiagnosticStatus::OK as u8 };
    DiagnosticArray {
        header: Header { stamp, frame_id: String::new() },
        status: vec![DiagnosticStatus {
            level,
            name: format!("{NODE}: inputs"),
            message: format!("{} accepted, {} rejected", st.localizer.accepted(), rejected),
            hardware_id: String::new(),
            values,
        }],
    }
}
