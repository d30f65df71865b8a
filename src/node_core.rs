//! The node core: everything `landmark_flow_node` decides, as plain Rust with an
//! injected clock. The live node (`src/bin/landmark_flow_node.rs`, an r2r adapter) and
//! the bag replayer (`crate::replay`, a bag adapter) both feed it [`Input`] events and
//! publish or record the [`Output`] events it returns, in order; neither has timers,
//! triggers or publication logic of its own, so "replay equals live" holds by
//! construction.
//!
//! What one call of [`NodeCore::handle`] at clock time `now_s` does:
//! 1. the clock: the re-plan timer (`goal.replan_period_s`) may fire
//!    ([`PlanTrigger::Timer`], goal stamped `now_s`) and the diagnostics timer
//!    (`publish.diagnostics_period_s`) may emit [`Output::Diagnostics`];
//! 2. the input:
//!    - odometry: `Localizer::add_odometry`; every waiting range it fused is handled
//!      as a fused range (below), then [`PlanTrigger::Odometry`] with the odometry's
//!      stamp;
//!    - a range (`landmark_flow/RangeMeasurement` or `sensor_msgs/Range`):
//!      `Localizer::add_range`; when fused: [`Output::Range`], the landmark's pose
//!      (tracking landmarks only), the belief array, the markers (if enabled), then
//!      [`PlanTrigger::Fused`]; when rejected: [`Output::Range`] with the reason;
//!    - reset: the priors are restored, the goal forgotten, the belief array
//!      published, and [`Output::Reset`] carries the service's answer;
//!    - tick: nothing more than step 1.
//!
//! A new goal yields [`Output::Goal`] and, when heatmaps are published,
//! [`Output::Heatmap`]; a planning failure [`Output::PlanFailed`]. Every message's
//! frame is the localizer's: the odometry frame, or with `odometry: drifting` the map
//! frame, where each accepted odometry also yields [`Output::OdometryCorrection`]
//! (map → odom) and [`Output::RobotPose`] (after the ranges it released).
//!
//! Planning runs inline by default: the goal comes in the same call as its trigger, and
//! a replay is deterministic. [`NodeCore::with_background_planning`] (the live node)
//! moves it to one planning thread: the trigger only takes a [`PlanRequest`] (an owned
//! snapshot) and hands it over, the newest request replacing one not yet started;
//! each later call first emits the plans finished since (goal and heatmap stamped with
//! their request's stamp, exactly as inline), unless a reset came in between. The goal
//! is the same function of the request either way ([`crate::goal_scheduler::plan`]);
//! only when it is emitted differs.

use crate::config::ConfigError;
use crate::estimator::GaussianBelief;
use crate::goal_scheduler::{plan, GoalScheduler, PlanFailure, PlanRequest, PlanTrigger, PlannedGoal};
use crate::localizer::drift::planar_pose_covariance;
use crate::localizer::{LandmarkTrack, Localizer, RangeCalibration, RangeInput, RangeOutcome, Rejection, TrackStatus};
use crate::msg::{
    DiagnosticStatusMsg, Header, HeatmapMsg, LandmarkBeliefArrayMsg, LandmarkBeliefMsg, LandmarkMarkers, MarkersMsg,
    OdometryCorrectionMsg, OdometryMsg, PoseStampedMsg, TfMessageMsg, PoseWithCovarianceStampedMsg, RangeMeasurementMsg, RangeMsg, Stamp, DIAGNOSTIC_OK,
    DIAGNOSTIC_WARN,
};
use crate::node_config::LandmarkFlowNodeConfig;
use crate::planner::PlannerError;
use nalgebra::{Point3, Vector2};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

mod plan_worker;
use plan_worker::PlanWorker;
pub use plan_worker::PlanFn;

/// Name of the node's diagnostic status when the adapter gives none
/// ([`NodeCore::with_diagnostics_name`]: the live node uses its fully qualified name,
/// so two namespaced nodes publish distinct statuses on `/diagnostics`).
pub const DIAGNOSTICS_NAME: &str = "landmark_flow_node: inputs";

/// An event the core handles.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// `nav_msgs/Odometry` (on `odom`).
    Odometry(OdometryMsg),
    /// `landmark_flow/RangeMeasurement` on `topic`.
    RangeMeasurement { topic: String, msg: RangeMeasurementMsg },
    /// `sensor_msgs/Range` on `topic` (landmark id in `header.frame_id`).
    Range { topic: String, msg: RangeMsg },
    /// The clock advanced (only the timers run).
    Tick,
    /// `~/reset`: restore the priors.
    Reset,
    /// `tf2_msgs/TFMessage` on `/tf_static`: the sensor mounts (`localizer::mount`).
    StaticTransforms(TfMessageMsg),
}

/// A fused range's sensor position and the resulting belief.
#[derive(Debug, Clone, PartialEq)]
pub struct FusedUpdate {
    /// Sensor position in the odometry frame, metres.
    pub sensor_position: Point3<f64>,
    /// Moment-matched belief of the landmark after the update.
    pub belief: GaussianBelief<2>,
    /// Mixture components of the belief after the update.
    pub components: usize,
    pub measurements_fused: u32,
    pub iterations: usize,
    pub converged: bool,
    /// Initialising (the belief is the grid's moments, not an estimate) or tracking.
    pub status: TrackStatus,
    /// Range calibration estimate after the update, when estimated.
    pub calibration: Option<RangeCalibration>,
    /// With `localizer.dimension: 3`: the landmark's (x, y, z) belief after the update
    /// (`belief` is its (x, y) marginal).
    pub belief3: Option<GaussianBelief<3>>,
}

/// What became of one range (emitted when it was fused or rejected, not while it
/// waits for odometry).
#[derive(Debug, Clone, PartialEq)]
pub struct RangeUpdate {
    /// The range as received (with its topic).
    pub input: RangeInput,
    pub result: Result<FusedUpdate, Rejection>,
}

/// What triggered a goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoalTrigger {
    Fused,
    Odometry,
    Timer,
}

impl GoalTrigger {
    pub fn name(&self) -> &'static str {
        match self {
            GoalTrigger::Fused => "fused",
            GoalTrigger::Odometry => "odometry",
            GoalTrigger::Timer => "timer",
        }
    }
}

/// A new goal and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalUpdate {
    pub trigger: GoalTrigger,
    pub landmark_id: String,
    /// Robot position the goal was planned from, metres.
    pub from_m: Vector2<f64>,
    /// `goal_pose`.
    pub msg: PoseStampedMsg,
}

/// Everything the core wants published or recorded, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// An accepted odometry pose (stamp, s; base position, metres).
    Odometry { stamp_s: f64, position: Point3<f64> },
    /// An odometry message the localizer rejected.
    OdometryRejected(Rejection),
    /// A `/tf_static` transform that cannot be a sensor mount (counted).
    StaticTransformRejected(Rejection),
    /// A range that was fused or rejected.
    Range(RangeUpdate),
    /// `landmarks/<id>/pose`.
    LandmarkPose { landmark_id: String, msg: PoseWithCovarianceStampedMsg },
    /// `landmark_beliefs`.
    Beliefs(LandmarkBeliefArrayMsg),
    /// `markers` (when `publish.markers`).
    Markers(MarkersMsg),
    /// `goal_pose`.
    Goal(GoalUpdate),
    /// `criterion_heatmap` (when `publish.heatmap`).
    Heatmap(HeatmapMsg),
    /// `odometry_correction` and `/tf` (`map_frame_id → odom`), after each accepted
    /// odometry with `odometry: drifting`.
    OdometryCorrection(OdometryCorrectionMsg),
    /// `robot_pose`: the base pose in the map frame with its covariance, after each
    /// accepted odometry with `odometry: drifting`.
    RobotPose(PoseWithCovarianceStampedMsg),
    /// The planner found no goal.
    PlanFailed { landmark_id: String, error: PlannerError },
    /// `/diagnostics`.
    Diagnostics(DiagnosticStatusMsg),
    /// The reset is done; the `~/reset` service's answer.
    Reset { message: String },
}

/// A period on the caller's clock (ROS clock, sim time, or bag time).
#[derive(Debug, Clone)]
pub struct PeriodicTimer {
    period_s: f64,
    next_s: Option<f64>,
}

impl PeriodicTimer {
    pub fn new(period_s: f64) -> Self {
        Self { period_s, next_s: None }
    }

    /// True when `now_s` has reached the next firing time; at most once per call. The
    /// first call starts the timer (first firing one period later). Missed periods are
    /// not caught up — one firing, then the next one period later (or one period after
    /// `now_s` when more than a period was missed): a stalled loop or a gap in a bag
    /// never causes a burst of plans. A clock that jumps back by more than two periods
    /// (a bag restarted) restarts the timer.
    pub fn due(&mut self, now_s: f64) -> bool {
        let p = self.period_s;
        match self.next_s {
            Some(next) if now_s >= next => {
                self.next_s = Some(if now_s < next + p { next + p } else { now_s + p });
                true
            }
            Some(next) if next - now_s <= 2.0 * p => false,
            _ => {
                self.next_s = Some(now_s + p);
                false
            }
        }
    }
}

/// The tracks the belief outputs carry: those whose belief is publishable (finite,
/// SPD; initialising ones included, flagged by their state; poses and markers are for
/// [`LandmarkTrack::is_tracking`] ones only).
pub fn publishable_tracks(tracks: &BTreeMap<String, LandmarkTrack>) -> impl Iterator<Item = (&String, &LandmarkTrack)> {
    tracks.iter().filter(|(_, t)| t.summary.belief.is_publishable())
}

/// Stamp of a track's belief, s: its last fused range's, `None` before the first
/// (then the publication time is used).
pub fn belief_stamp_s(track: &LandmarkTrack) -> Option<f64> {
    (track.measurements_fused > 0).then_some(track.last_stamp_s)
}

/// Localizer + goal scheduler + timers + diagnostics: the node without ROS.
#[derive(Debug)]
pub struct NodeCore {
    config: LandmarkFlowNodeConfig,
    localizer: Localizer,
    goals: GoalScheduler,
    replan_timer: Option<PeriodicTimer>,
    diagnostics_timer: PeriodicTimer,
    /// `publish.beliefs_period_s` > 0: the timer of the belief array and markers, and
    /// whether a range was fused since they were last published.
    beliefs_timer: Option<PeriodicTimer>,
    beliefs_changed: bool,
    diagnostics_name: String,
    /// Total rejections at the last diagnostics publication (the level reflects the
    /// period since, not the lifetime count).
    rejected_at_last_diagnostics: u64,
    /// The planning thread (`None`: plans run inline).
    worker: Option<PlanWorker>,
    /// The newest request whose plan was emitted: an older one finishing later is dropped.
    last_emitted_plan: Option<u64>,
}

impl NodeCore {
    /// A core with the node's configuration (validated here).
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad parameter.
    pub fn new(config: &LandmarkFlowNodeConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let localizer = Localizer::new(config.localizer.clone())?;
        let replan_timer = (config.goal.enabled && config.goal.replan_period_s > 0.0)
            .then(|| PeriodicTimer::new(config.goal.replan_period_s));
        Ok(Self {
            config: config.clone(),
            goals: GoalScheduler::new(config),
            localizer,
            replan_timer,
            diagnostics_timer: PeriodicTimer::new(config.publish.diagnostics_period_s),
            beliefs_timer: (config.publish.beliefs_period_s > 0.0).then(|| PeriodicTimer::new(config.publish.beliefs_period_s)),
            beliefs_changed: false,
            diagnostics_name: DIAGNOSTICS_NAME.to_string(),
            rejected_at_last_diagnostics: 0,
            worker: None,
            last_emitted_plan: None,
        })
    }

    /// Plans on a planning thread instead of inside [`NodeCore::handle`] (the live node:
    /// a plan takes milliseconds and the node must keep fusing meanwhile). A trigger
    /// hands its [`PlanRequest`] to the thread; the newest request replaces one still
    /// waiting; each later `handle` call emits the plans finished since, first. The
    /// replayer and the tests keep the default (inline: same goals, emitted in the
    /// triggering call, deterministic).
    pub fn with_background_planning(self) -> Self {
        self.with_background_planner(Arc::new(plan))
    }

    /// [`NodeCore::with_background_planning`] with `planner` in place of
    /// [`crate::goal_scheduler::plan`]: a hook for tests and benchmarks (e.g. a planner
    /// that blocks until released).
    pub fn with_background_planner(mut self, planner: PlanFn) -> Self {
        self.worker = Some(PlanWorker::start(planner));
        self
    }

    /// Runs the batch re-solves of drifting odometry (`smoother.*`) on a thread of
    /// their own ([`Localizer::resolve_in_background`]; the live node: one can take
    /// seconds on a long history). Each is applied by the first odometry message after
    /// it finished, with the inputs fused meanwhile replayed onto it. Without this the
    /// re-solve runs inside the odometry message that made it due (the replayer, the
    /// tests: deterministic).
    pub fn with_background_resolve(mut self) -> Self {
        self.localizer.resolve_in_background();
        self
    }

    /// Whether plans run on the planning thread.
    pub fn plans_in_background(&self) -> bool {
        self.worker.is_some()
    }

    /// Blocks until the planning thread has nothing waiting or running, at most
    /// `timeout`; true when it is idle (always with inline planning). The finished plans
    /// are emitted by the next [`NodeCore::handle`] call (e.g. [`Input::Tick`]).
    pub fn wait_for_planner(&self, timeout: Duration) -> bool {
        self.worker.as_ref().is_none_or(|w| w.wait_idle(timeout))
    }

    /// Applies a configuration changed at run time (`ros2 param set`): validated as at
    /// start, and only [`crate::node_config::RUNTIME_PARAMETERS`] may differ. The
    /// goal scheduler plans with it from the next trigger on (a plan already requested
    /// from the planning thread finishes with the parameters it was requested with), the timers restart with
    /// their new periods, publication follows the new switches and the localizer the
    /// new innovation gate. The beliefs and the current goal are kept.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first parameter that is invalid or cannot change at
    /// run time; nothing is changed then.
    pub fn reconfigure(&mut self, config: &LandmarkFlowNodeConfig) -> Result<(), ConfigError> {
        config.validate()?;
        if let Some(name) = self.config.first_start_only_change(config) {
            return Err(ConfigError::invalid(&name, "a new value", "read at start: restart the node to change it"));
        }
        self.localizer.set_innovation_gate_sigma(config.localizer.innovation_gate_sigma).map_err(|e| e.prefixed("localizer"))?;
        self.goals.reconfigure(config);
        if (config.goal.enabled, config.goal.replan_period_s) != (self.config.goal.enabled, self.config.goal.replan_period_s) {
            self.replan_timer =
                (config.goal.enabled && config.goal.replan_period_s > 0.0).then(|| PeriodicTimer::new(config.goal.replan_period_s));
        }
        if config.publish.diagnostics_period_s != self.config.publish.diagnostics_period_s {
            self.diagnostics_timer = PeriodicTimer::new(config.publish.diagnostics_period_s);
        }
        if config.publish.beliefs_period_s != self.config.publish.beliefs_period_s {
            self.beliefs_timer =
                (config.publish.beliefs_period_s > 0.0).then(|| PeriodicTimer::new(config.publish.beliefs_period_s));
        }
        self.config = config.clone();
        Ok(())
    }

    /// The diagnostic status's name (e.g. `/robot1/landmark_flow_node: inputs`).
    pub fn with_diagnostics_name(mut self, name: &str) -> Self {
        self.diagnostics_name = name.to_string();
        self
    }

    pub fn config(&self) -> &LandmarkFlowNodeConfig {
        &self.config
    }

    pub fn localizer(&self) -> &Localizer {
        &self.localizer
    }

    pub fn goals(&self) -> &GoalScheduler {
        &self.goals
    }

    /// Handles one input at clock time `now_s` (seconds on the node's clock: the ROS
    /// clock live, bag time in replay); returns what it caused, in publication order
    /// (see the module doc).
    pub fn handle(&mut self, now_s: f64, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        self.localizer.set_clock(now_s);
        self.emit_finished_plans(&mut out);
        self.advance_clock(now_s, &mut out);
        match input {
            Input::Odometry(m) => self.on_odometry(&m, &mut out),
            Input::RangeMeasurement { topic, msg } => self.on_range(msg.to_range_input(&topic), &mut out),
            Input::Range { topic, msg } => {
                let input = msg.to_range_input(&topic, &self.config.localizer.sensor_frame_id);
                self.on_range(input, &mut out);
            }
            Input::Tick => {}
            Input::StaticTransforms(m) => {
                for t in &m.transforms {
                    // The one pose conversion (a zero quaternion is NaN: refused as not finite).
                    let transform = crate::msg::convert::pose_from_position_quaternion(t.translation, t.rotation);
                    if let Err(r) = self.localizer.add_static_transform(&t.header.frame_id, &t.child_frame_id, transform) {
                        out.push(Output::StaticTransformRejected(r));
                    }
                }
            }
            Input::Reset => {
                self.localizer.reset();
                self.goals.reset();
                // A plan of the beliefs before the reset is never emitted.
                if let Some(w) = &self.worker {
                    w.discard();
                }
                out.push(Output::Beliefs(self.belief_array(Stamp::from_secs(now_s))));
                let message = format!("restored the priors of {} landmark(s)", self.localizer.tracks().len());
                out.push(Output::Reset { message });
            }
        }
        out
    }

    fn advance_clock(&mut self, now_s: f64, out: &mut Vec<Output>) {
        if self.replan_timer.as_mut().is_some_and(|t| t.due(now_s)) {
            self.replan(PlanTrigger::Timer, Stamp::from_secs(now_s), out);
        }
        if self.beliefs_timer.as_mut().is_some_and(|t| t.due(now_s)) && self.beliefs_changed {
            self.beliefs_changed = false;
            let stamp = Stamp::from_secs(now_s);
            out.push(Output::Beliefs(self.belief_array(stamp)));
            if self.config.publish.markers {
                out.push(Output::Markers(self.markers(stamp)));
            }
        }
        if self.diagnostics_timer.due(now_s) {
            let status = self.diagnostics(Stamp::from_secs(now_s));
            self.rejected_at_last_diagnostics = self.localizer.rejected().values().sum();
            out.push(Output::Diagnostics(status));
        }
    }

    fn header(&self, stamp: Stamp) -> Header {
        Header { stamp, frame_id: self.localizer.frame_id().to_string() }
    }

    fn on_odometry(&mut self, msg: &OdometryMsg, out: &mut Vec<Output>) {
        let pose = msg.base_pose();
        let stamp_s = msg.header.stamp.secs();
        let cov = planar_pose_covariance(&msg.pose_covariance);
        match self.localizer.add_odometry_with_covariance(stamp_s, &msg.header.frame_id, pose, cov) {
            Ok(processed) => {
                out.push(Output::Odometry { stamp_s, position: Point3::from(pose.translation.vector) });
                for p in processed {
                    self.after_range(p.input, p.result.map(|_| ()), out);
                }
                if let Some((stamp_s, drift, robot)) = self.localizer.map_correction() {
                    let stamp = Stamp::from_secs(stamp_s);
                    let e = drift.correction();
                    let mut covariance = [0.0; 9];
                    for r in 0..3 {
                        for c in 0..3 {
                            covariance[3 * r + c] = drift.cov()[(r, c)];
                        }
                    }
                    out.push(Output::OdometryCorrection(OdometryCorrectionMsg {
                        header: self.header(stamp),
                        child_frame_id: self.localizer.odom_frame_id().to_string(),
                        x_m: e.translation.x,
                        y_m: e.translation.y,
                        yaw_rad: e.rotation.angle(),
                        covariance,
                        gyro_bias_rad_per_s: drift.gyro_bias_rad_per_s(),
                        gyro_bias_variance: drift.cov()[(3, 3)],
                    }));
                    out.push(Output::RobotPose(PoseWithCovarianceStampedMsg::from_planar_pose(
                        self.header(stamp),
                        &robot.pose,
                        msg.pose.position[2],
                        &robot.cov,
                    )));
                }
                self.replan(PlanTrigger::Odometry, msg.header.stamp, out);
            }
            Err(rejection) => out.push(Output::OdometryRejected(rejection)),
        }
    }

    fn on_range(&mut self, input: RangeInput, out: &mut Vec<Output>) {
        match self.localizer.add_range(&input) {
            Ok(RangeOutcome::Fused(_)) => self.after_range(input, Ok(()), out),
            Ok(RangeOutcome::Pending) => {}
            Err(r) => self.after_range(input, Err(r), out),
        }
    }

    /// Records a range's outcome; for a fused one publishes the landmark's pose, the
    /// belief array and the markers, and offers [`PlanTrigger::Fused`].
    fn after_range(&mut self, input: RangeInput, result: Result<(), Rejection>, out: &mut Vec<Output>) {
        let id = input.landmark_id.clone();
        let track = match result {
            Err(rejection) => {
                out.push(Output::Range(RangeUpdate { input, result: Err(rejection) }));
                return;
            }
            Ok(()) => match self.localizer.tracks().get(&id) {
                Some(track) => track,
                None => return,
            },
        };
        let sensor_position = track.last_range.map(|(x, _)| Point3::new(x.x, x.y, 0.0)).unwrap_or_else(Point3::origin);
        let fused = FusedUpdate {
            sensor_position,
            belief: track.summary.belief,
            components: track.summary.components.len(),
            measurements_fused: track.measurements_fused,
            iterations: track.last_stats.iterations,
            converged: track.last_stats.converged,
            status: track.status(),
            calibration: track.calibration,
            belief3: track.summary3.as_ref().map(|s| s.belief),
        };
        let stamp = Stamp::from_secs(track.last_stamp_s);
        let pose = track.is_tracking().then(|| PoseWithCovarianceStampedMsg::from_track(self.header(stamp), track));
        out.push(Output::Range(RangeUpdate { input, result: Ok(fused) }));
        if let Some(msg) = pose {
            out.push(Output::LandmarkPose { landmark_id: id.clone(), msg });
        }
        if self.beliefs_timer.is_some() {
            self.beliefs_changed = true;
        } else {
            out.push(Output::Beliefs(self.belief_array(stamp)));
            if self.config.publish.markers {
                out.push(Output::Markers(self.markers(stamp)));
            }
        }
        self.replan(PlanTrigger::Fused(id), stamp, out);
    }

    /// The `landmark_beliefs` message: every publishable track, each stamped with its
    /// last fused range (`stamp` before the first).
    pub fn belief_array(&self, stamp: Stamp) -> LandmarkBeliefArrayMsg {
        let beliefs = publishable_tracks(self.localizer.tracks())
            .map(|(id, t)| {
                let s = belief_stamp_s(t).map_or(stamp, Stamp::from_secs);
                LandmarkBeliefMsg::from_track(self.header(s), id, t)
            })
            .collect();
        LandmarkBeliefArrayMsg { header: self.header(stamp), beliefs }
    }

    /// The markers: every tracking landmark, and the arrow to the current goal.
    fn markers(&self, stamp: Stamp) -> MarkersMsg {
        let landmarks = self
            .localizer
            .tracks()
            .iter()
            .enumerate()
            .filter(|(_, (_, t))| t.is_tracking())
            .map(|(k, (id, t))| LandmarkMarkers::from_track(id, k as i32, t))
            .collect();
        let goal_arrow = match (self.goals.current_goal(), self.localizer.latest_base_position()) {
            (Some(goal), Some(x)) => Some((Vector2::new(x.x, x.y), goal)),
            _ => None,
        };
        MarkersMsg { header: self.header(stamp), landmarks, goal_arrow }
    }

    /// Asks the goal scheduler whether `trigger` calls for a new goal; plans it inline
    /// or hands it to the planning thread.
    fn replan(&mut self, trigger: PlanTrigger, stamp: Stamp, out: &mut Vec<Output>) {
        let Some(request) = self.goals.request(&trigger, &self.localizer, stamp) else { return };
        match &self.worker {
            Some(worker) => worker.submit(request),
            None => {
                let outcome = plan(&request);
                self.emit_plan(request, outcome, out);
            }
        }
    }

    /// The plans the planning thread finished since the last call, in request order; a
    /// plan older than one already emitted is dropped.
    fn emit_finished_plans(&mut self, out: &mut Vec<Output>) {
        let Some(worker) = &self.worker else { return };
        for (request, outcome) in worker.take_finished() {
            if self.last_emitted_plan.is_some_and(|seq| request.seq <= seq) {
                continue;
            }
            self.emit_plan(request, outcome, out);
        }
    }

    /// A plan's outcome: the goal becomes current and is emitted with its heatmap, both
    /// stamped with the request's stamp; or the failure.
    fn emit_plan(&mut self, request: PlanRequest, outcome: Result<PlannedGoal, PlanFailure>, out: &mut Vec<Output>) {
        self.goals.accept(&request, &outcome);
        self.last_emitted_plan = Some(request.seq);
        let trigger = match request.trigger {
            PlanTrigger::Fused(_) => GoalTrigger::Fused,
            PlanTrigger::Odometry => GoalTrigger::Odometry,
            PlanTrigger::Timer => GoalTrigger::Timer,
        };
        match outcome {
            Ok(planned) => {
                let header = self.header(request.stamp);
                let msg = PoseStampedMsg::goal(header.clone(), &planned.from_m, &planned.goal.position_m);
                out.push(Output::Goal(GoalUpdate { trigger, landmark_id: planned.landmark_id, from_m: planned.from_m, msg }));
                if let Some(grid) = planned.heatmap {
                    out.push(Output::Heatmap(HeatmapMsg { header, grid }));
                }
            }
            Err(failure) => out.push(Output::PlanFailed { landmark_id: failure.landmark_id, error: failure.error }),
        }
    }

    /// The diagnostic status: accepted and rejected counts (by reason, since start),
    /// ranges waiting for odometry, per-landmark fused count and last update latency.
    /// WARN when an input was rejected since the last published status (one bad message
    /// at start-up does not leave it at WARN for ever), OK otherwise.
    pub fn diagnostics(&self, stamp: Stamp) -> DiagnosticStatusMsg {
        let loc = &self.localizer;
        let kv = |key: String, value: String| (key, value);
        let rejected: u64 = loc.rejected().values().sum();
        let mut values = vec![
            kv("accepted".into(), loc.accepted().to_string()),
            kv("rejected".into(), rejected.to_string()),
            kv("waiting_for_odometry".into(), loc.pending().to_string()),
        ];
        for (reason, n) in loc.rejected() {
            values.push(kv(format!("rejected.{reason}"), n.to_string()));
        }
        let mut worst_latency: f64 = 0.0;
        for (id, t) in loc.tracks() {
            values.push(kv(format!("landmark.{id}.fused"), t.measurements_fused.to_string()));
            values.push(kv(format!("landmark.{id}.update_latency_s"), format!("{:.6}", t.last_latency_s)));
            worst_latency = worst_latency.max(t.last_latency_s);
        }
        values.push(kv("update_latency_s.max_last".into(), format!("{worst_latency:.6}")));
        values.push(kv("static_transforms".into(), loc.static_transforms().to_string()));
        // A systematic offset of the range stamps against the odometry clock.
        if let Some(e) = loc.range_time_offset() {
            values.push(kv("range_time_offset_s".into(), format!("{:.4}", e.offset_s)));
            values.push(kv("range_time_offset_std_s".into(), format!("{:.4}", e.std_s)));
        }
        // `odometry: drifting`: how far the evidence trusts each odometry noise scale.
        for (scale, weight) in loc.joint_state().map(|s| s.weights()).unwrap_or_default() {
            values.push(kv(format!("odometry_noise_scale.{scale}.weight"), format!("{weight:.4}")));
        }
        // The batch re-solves (`smoother`): how many, how long the last took, and the
        // weight of each (heading, translation) noise level in it.
        if let Some(st) = loc.smoother_stats() {
            values.push(kv("smoother.solves".into(), st.solves.to_string()));
            values.push(kv("smoother.failures".into(), st.failures.to_string()));
            values.push(kv("smoother.last_duration_s".into(), format!("{:.4}", st.duration_s)));
            if let Some(f) = &st.last_failure {
                values.push(kv("smoother.last_failure".into(), f.clone()));
            }
            for ((h, t), w) in st.weights.iter().filter(|(_, w)| *w > 0.0) {
                values.push(kv(format!("smoother.noise_scale.heading_{h}.translation_{t}.weight"), format!("{w:.4}")));
            }
        }
        let recent = rejected - self.rejected_at_last_diagnostics;
        let offset = loc.range_time_offset().filter(|e| e.suspected());
        let mut message = format!("{} accepted, {} rejected ({recent} since the last status)", loc.accepted(), rejected);
        if let Some(e) = offset {
            message.push_str(&format!(
                "; range stamps look {:.2} s {} the odometry clock (± {:.2} s): check the clocks (or drifting odometry)",
                e.offset_s.abs(),
                if e.offset_s > 0.0 { "behind" } else { "ahead of" },
                e.std_s
            ));
        }
        DiagnosticStatusMsg {
            stamp,
            level: if recent > 0 || offset.is_some() { DIAGNOSTIC_WARN } else { DIAGNOSTIC_OK },
            name: self.diagnostics_name.clone(),
            message,
            hardware_id: match self.config.localizer.sensor_frame_id.as_str() {
                "" => self.diagnostics_name.trim_end_matches(": inputs").to_string(),
                frame => frame.to_string(),
            },
            values,
        }
    }
}
