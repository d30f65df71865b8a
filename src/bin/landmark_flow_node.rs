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

use futures::StreamExt;
use landmark_flow::localizer::{Localizer, RangeInput, RangeOutcome, Rejection};
use landmark_flow::node_config::LandmarkFlowNodeConfig;
use landmark_flow::goal_scheduler::{GoalScheduler, PlanTrigger};
use landmark_flow::planner::PlannerError;
use landmark_flow::ros::messages::{
    goal_marker, goal_pose, heatmap, landmark_belief, landmark_markers, pose_with_covariance, topic_safe,
};
use landmark_flow::ros::{
    exit_with_error, load_parameters, odometry_pose, output_qos, ros_now_secs, secs_to_stamp, spawn_spin_thread,
    stamp_to_secs, NodeError, NodeHandle, Throttle,
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
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NODE: &str = "landmark_flow_node";

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| exit_with_error(NODE, &e));
    if let Err(e) = runtime.block_on(run()) {
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

/// Everything the tasks share, behind one short-held lock.
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

type Shared = Arc<Mutex<NodeState>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, NodeState> {
    shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn input_qos(config: &LandmarkFlowNodeConfig) -> QosProfile {
    let depth = config.inputs.depth as usize;
    if config.inputs.reliable {
        QosProfile::default().keep_last(depth)
    } else {
        QosProfile::sensor_data().keep_last(depth)
    }
}

async fn run() -> Result<(), NodeError> {
    let ctx = r2r::Context::create()?;
    let mut node = r2r::Node::create(ctx, NODE, "")?;
    let logger = node.logger().to_string();
    let config: LandmarkFlowNodeConfig = load_parameters(&node)?;
    config.validate()?;
    let localizer = Localizer::new(config.localizer.clone())?;

    let (param_handler, _events) = node.make_parameter_handler()?;
    tokio::spawn(param_handler);

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
    let mut diag_timer = node.create_timer(Duration::from_secs_f64(config.publish.diagnostics_period_s))?;
    let replan_timer = if config.goal.enabled && config.goal.replan_period_s > 0.0 {
        Some(node.create_timer(Duration::from_secs_f64(config.goal.replan_period_s))?)
    } else {
        None
    };
    let clock = node.get_ros_clock();
    r2r::log_info!(
        &logger,
        "estimator `{}`, {} configured landmark(s), planner `{}`",
        config.localizer.estimator.method.name(),
        localizer.tracks().len(),
        config.planner.policy.name()
    );
    let shared: Shared = Arc::new(Mutex::new(NodeState {
        goals: GoalScheduler::new(&config),
        config,
        localizer,
        pose_pubs: HashMap::new(),
        outputs,
        throttle: Throttle::new(Duration::from_secs(5)),
        logger,
    }));
    let handle = spawn_spin_thread(node);

    // Odometry.
    {
        let (shared, handle) = (shared.clone(), handle.clone());
        tokio::spawn(async move {
            let mut odometry = odometry;
            while let Some(msg) = odometry.next().await {
                let fused = {
                    let mut st = lock(&shared);
                    let pose = odometry_pose(&msg);
                    let result =
                        st.localizer.add_odometry(stamp_to_secs(&msg.header.stamp), &msg.header.frame_id, pose);
                    match result {
                        Ok(processed) => {
                            let mut fused = Vec::new();
                            for p in processed {
                                match p.result {
                                    Ok(_) => fused.push(p.input.landmark_id),
                                    Err(r) => warn_rejected(&mut st, "range", &r),
                                }
                            }
                            replan(&mut st, &PlanTrigger::Odometry, msg.header.stamp.clone());
                            fused
                        }
                        Err(r) => {
                            warn_rejected(&mut st, "odom", &r);
                            Vec::new()
                        }
                    }
                };
                for id in fused {
                    after_fused(&shared, &handle, id).await;
                }
            }
        });
    }
    // Ranges (landmark_flow/RangeMeasurement).
    {
        let (shared, handle) = (shared.clone(), handle.clone());
        tokio::spawn(async move {
            let mut ranges = ranges;
            while let Some(m) = ranges.next().await {
                let input = RangeInput {
                    stamp_s: stamp_to_secs(&m.header.stamp),
                    frame_id: m.header.frame_id,
                    landmark_id: m.landmark_id,
                    range_m: m.range,
                    variance_m2: m.variance,
                };
                on_range(&shared, &handle, input, "range").await;
            }
        });
    }
    // Ranges (sensor_msgs/Range).
    if let Some(raw) = raw_ranges {
        let (shared, handle) = (shared.clone(), handle.clone());
        let sensor_frame = lock(&shared).config.localizer.sensor_frame_id.clone();
        tokio::spawn(async move {
            let mut raw = raw;
            while let Some(m) = raw.next().await {
                let input = RangeInput {
                    stamp_s: stamp_to_secs(&m.header.stamp),
                    // sensor_msgs/Range carries the landmark in frame_id; it has no sensor frame.
                    frame_id: sensor_frame.clone(),
                    landmark_id: m.header.frame_id,
                    range_m: m.range as f64,
                    variance_m2: m.variance as f64,
                };
                on_range(&shared, &handle, input, "range_raw").await;
            }
        });
    }
    // ~/reset.
    {
        let shared = shared.clone();
        let clock = clock.clone();
        tokio::spawn(async move {
            let mut reset = reset;
            while let Some(req) = reset.next().await {
                let message = {
                    let mut st = lock(&shared);
                    st.localizer.reset();
                    st.goals.reset();
                    let stamp = r2r::Clock::to_builtin_time(&Duration::from_secs_f64(ros_now_secs(&clock)));
                    publish_beliefs(&mut st, stamp);
                    format!("restored the priors of {} landmark(s)", st.localizer.tracks().len())
                };
                let _ = req.respond(Trigger::Response { success: true, message });
            }
        });
    }
    // Re-planning timer.
    if let Some(mut timer) = replan_timer {
        let shared = shared.clone();
        let clock = clock.clone();
        tokio::spawn(async move {
            while timer.tick().await.is_ok() {
                let stamp = r2r::Clock::to_builtin_time(&Duration::from_secs_f64(ros_now_secs(&clock)));
                let mut st = lock(&shared);
                replan(&mut st, &PlanTrigger::Timer, stamp);
            }
        });
    }
    // Diagnostics.
    loop {
        diag_timer.tick().await?;
        let stamp = r2r::Clock::to_builtin_time(&Duration::from_secs_f64(ros_now_secs(&clock)));
        let st = lock(&shared);
        st.outputs.diagnostics.publish(&diagnostics(&st, stamp))?;
    }
}

fn warn_rejected(st: &mut NodeState, topic: &str, r: &Rejection) {
    if st.throttle.ready(&format!("{topic}/{}", r.reason())) {
        r2r::log_warn!(&st.logger, "{} rejected ({}): {}", topic, r.reason(), r);
    }
}

async fn on_range(shared: &Shared, handle: &NodeHandle, input: RangeInput, topic: &str) {
    {
        let mut st = lock(shared);
        match st.localizer.add_range(&input) {
            Ok(RangeOutcome::Fused(_)) => {}
            Ok(RangeOutcome::Pending) => return,
            Err(r) => {
                warn_rejected(&mut st, topic, &r);
                return;
            }
        }
    }
    after_fused(shared, handle, input.landmark_id).await;
}

/// Publishes what changed after a range of landmark `id` was fused (creating the
/// landmark's pose publisher on first use) and re-plans when configured to.
async fn after_fused(shared: &Shared, handle: &NodeHandle, id: String) {
    let needs_publisher = !lock(shared).pose_pubs.contains_key(&id);
    if needs_publisher {
        let topic = format!("landmarks/{}/pose", topic_safe(&id));
        let created = handle
            .with_node(move |node| node.create_publisher::<PoseWithCovarianceStamped>(&topic, output_qos()))
            .await;
        let mut st = lock(shared);
        match created {
            Ok(Ok(p)) => {
                st.pose_pubs.insert(id.clone(), p);
            }
            Ok(Err(e)) => r2r::log_error!(&st.logger, "cannot create the pose publisher of `{}`: {}", id, e),
            Err(e) => r2r::log_error!(&st.logger, "{}", e),
        }
    }
    let mut st = lock(shared);
    let Some(stamp) = st.localizer.tracks().get(&id).map(|t| secs_to_stamp(t.last_stamp_s)) else { return };
    publish_landmark(&st, &id);
    publish_beliefs(&mut st, stamp.clone());
    replan(&mut st, &PlanTrigger::Fused(id), stamp);
}

fn header(st: &NodeState, stamp: Time) -> Header {
    Header { stamp, frame_id: st.localizer.frame_id().to_string() }
}

fn publish_landmark(st: &NodeState, id: &str) {
    let (Some(track), Some(publisher)) = (st.localizer.tracks().get(id), st.pose_pubs.get(id)) else {
        return;
    };
    if track.summary.belief.is_publishable() {
        let stamp = secs_to_stamp(track.last_stamp_s);
        let _ = publisher.publish(&pose_with_covariance(header(st, stamp), &track.summary.belief));
    }
}

fn publish_beliefs(st: &mut NodeState, stamp: Time) {
    let beliefs = st
        .localizer
        .tracks()
        .iter()
        .filter(|(_, t)| t.summary.belief.is_publishable())
        .map(|(id, t)| {
            // A belief's stamp is its last fused range's (the publication time before any).
            let s = if t.measurements_fused > 0 { secs_to_stamp(t.last_stamp_s) } else { stamp.clone() };
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
            .filter(|(_, (_, t))| t.summary.belief.is_publishable())
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
