//! The node's event handling, driven by bag time instead of the ROS clock.
//!
//! [`Replayer::handle`] does for one decoded message what `landmark_flow_node` does
//! when it takes that message from its subscription, with the same core calls in the
//! same order:
//! - odometry: `Localizer::add_odometry`; every waiting range it fused is published
//!   (landmark pose, belief array) and may re-plan (`PlanTrigger::Fused`); then
//!   `PlanTrigger::Odometry` with the odometry's stamp;
//! - a range (`sensor_msgs/Range` or `RangeMeasurement`): `Localizer::add_range`; when
//!   fused, the landmark's pose and the belief array are published and
//!   `PlanTrigger::Fused` is offered to the goal scheduler.
//!
//! The re-planning timer (`goal.replan_period_s`) runs on bag time as the node's timer
//! runs on `/clock` under `ros2 bag play --clock`: it starts at the first message and
//! fires at every multiple of the period, including inside gaps between messages
//! (at most [`MAX_TIMER_CATCH_UP`] times per gap), before the message that follows.
//! A timer goal is stamped with the firing time.

use super::messages::{
    odometry_pose, range_input_from_measurement, range_input_from_range, Header, LandmarkBeliefArrayMsg,
    LandmarkBeliefMsg, OdometryMsg, PoseStampedMsg, PoseWithCovarianceStampedMsg, RangeMeasurementMsg, RangeMsg,
    Stamp,
};
use crate::config::ConfigError;
use crate::estimator::GaussianBelief;
use crate::goal_scheduler::{GoalScheduler, PlanTrigger};
use crate::localizer::{Localizer, RangeCalibration, RangeInput, RangeOutcome, Rejection, TrackStatus};
use crate::node_config::LandmarkFlowNodeConfig;
use crate::outputs::{belief_stamp_s, publishable_tracks};
use nalgebra::{Point3, Vector2};

/// Timer firings caught up at most within one gap between messages.
pub const MAX_TIMER_CATCH_UP: u64 = 10_000;

/// A decoded input message.
#[derive(Debug, Clone, PartialEq)]
pub enum InputMessage {
    Odometry(OdometryMsg),
    Range(RangeMsg),
    RangeMeasurement(RangeMeasurementMsg),
}

/// What became of one range input.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeUpdate {
    /// Bag time at which it was processed, s.
    pub bag_time_s: f64,
    /// Topic it came from.
    pub topic: String,
    pub input: RangeInput,
    /// The sensor position and the landmark's belief after the update, or the
    /// rejection.
    pub result: Result<FusedUpdate, Rejection>,
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

/// A published goal and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalUpdate {
    pub bag_time_s: f64,
    pub trigger: GoalTrigger,
    pub landmark_id: String,
    /// Robot position the goal was planned from, metres.
    pub from_m: Vector2<f64>,
    pub msg: PoseStampedMsg,
}

/// Everything one message (or timer firing) caused, in the order the node does it.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayEvent {
    /// An accepted odometry pose (base position, metres).
    Odometry { bag_time_s: f64, stamp_s: f64, position: Point3<f64> },
    /// An odometry message the core rejected.
    OdometryRejected { bag_time_s: f64, rejection: Rejection },
    /// A range that was fused or rejected (not emitted while it waits for odometry).
    Range(RangeUpdate),
    /// `landmarks/<id>/pose`.
    LandmarkPose { bag_time_s: f64, landmark_id: String, msg: PoseWithCovarianceStampedMsg },
    /// `landmark_beliefs`.
    Beliefs { bag_time_s: f64, msg: LandmarkBeliefArrayMsg },
    /// `goal_pose`.
    Goal(GoalUpdate),
    /// The planner found no goal (counted by the report).
    PlanFailed { bag_time_s: f64, landmark_id: String, error: String },
}

/// The node's periodic timer on bag time (see the module doc).
#[derive(Debug, Clone)]
struct BagTimer {
    period_s: f64,
    next_s: Option<f64>,
}

impl BagTimer {
    /// Firing times up to and including `now_s`; the first call starts the timer.
    fn due_until(&mut self, now_s: f64) -> Vec<f64> {
        let Some(mut next) = self.next_s else {
            self.next_s = Some(now_s + self.period_s);
            return Vec::new();
        };
        let mut fired = Vec::new();
        while next <= now_s && (fired.len() as u64) < MAX_TIMER_CATCH_UP {
            fired.push(next);
            next += self.period_s;
        }
        if next <= now_s {
            // Too long a gap: restart from now, as the node does after a clock jump.
            next = now_s + self.period_s;
        }
        self.next_s = Some(next);
        fired
    }
}

/// Localizer + goal scheduler + timer: the node without ROS.
#[derive(Debug)]
pub struct Replayer {
    config: LandmarkFlowNodeConfig,
    localizer: Localizer,
    goals: GoalScheduler,
    timer: Option<BagTimer>,
    /// Topics of the ranges waiting for odometry, oldest first (the localizer's queue
    /// holds the ranges; this keeps where each came from).
    pending_topics: std::collections::VecDeque<String>,
}

impl Replayer {
    /// A replayer with the node's configuration (validated here).
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad parameter.
    pub fn new(config: &LandmarkFlowNodeConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let localizer = Localizer::new(config.localizer.clone())?;
        let timer = (config.goal.enabled && config.goal.replan_period_s > 0.0)
            .then(|| BagTimer { period_s: config.goal.replan_period_s, next_s: None });
        Ok(Self { config: config.clone(), goals: GoalScheduler::new(config), localizer, timer, pending_topics: Default::default() })
    }

    pub fn localizer(&self) -> &Localizer {
        &self.localizer
    }

    pub fn goals(&self) -> &GoalScheduler {
        &self.goals
    }

    /// Handles one message received at bag time `bag_time_s` on `topic`, after firing
    /// the timer for every period that ended before it; returns what it caused.
    pub fn handle(&mut self, bag_time_s: f64, topic: &str, msg: &InputMessage) -> Vec<ReplayEvent> {
        let mut events = self.advance_clock(bag_time_s);
        match msg {
            InputMessage::Odometry(m) => self.on_odometry(bag_time_s, m, &mut events),
            InputMessage::Range(m) => {
                let input = range_input_from_range(m, &self.config.localizer.sensor_frame_id);
                self.on_range(bag_time_s, topic, input, &mut events);
            }
            InputMessage::RangeMeasurement(m) => {
                self.on_range(bag_time_s, topic, range_input_from_measurement(m), &mut events);
            }
        }
        events
    }

    /// Fires the re-planning timer for every period that ended at or before
    /// `bag_time_s` (call at the end of the bag with its end time).
    pub fn advance_clock(&mut self, bag_time_s: f64) -> Vec<ReplayEvent> {
        let mut events = Vec::new();
        let fired = self.timer.as_mut().map(|t| t.due_until(bag_time_s)).unwrap_or_default();
        for t in fired {
            self.replan(t, PlanTrigger::Timer, Stamp::from_secs(t), &mut events);
        }
        events
    }

    fn on_odometry(&mut self, bag_time_s: f64, msg: &OdometryMsg, events: &mut Vec<ReplayEvent>) {
        let pose = odometry_pose(msg);
        let stamp_s = msg.header.stamp.secs();
        match self.localizer.add_odometry(stamp_s, &msg.header.frame_id, pose) {
            Ok(processed) => {
                events.push(ReplayEvent::Odometry { bag_time_s, stamp_s, position: Point3::from(pose.translation.vector) });
                for p in processed {
                    let topic = self.pending_topics.pop_front().unwrap_or_default();
                    self.after_range(bag_time_s, &topic, p.input, p.result.map(|_| ()), events);
                }
                self.replan(bag_time_s, PlanTrigger::Odometry, msg.header.stamp, events);
            }
            Err(rejection) => events.push(ReplayEvent::OdometryRejected { bag_time_s, rejection }),
        }
    }

    fn on_range(&mut self, bag_time_s: f64, topic: &str, input: RangeInput, events: &mut Vec<ReplayEvent>) {
        match self.localizer.add_range(&input) {
            Ok(RangeOutcome::Fused(_)) => self.after_range(bag_time_s, topic, input, Ok(()), events),
            Ok(RangeOutcome::Pending) => {
                self.pending_topics.push_back(topic.to_string());
                // The localizer drops its oldest waiting range when the queue is full.
                while self.pending_topics.len() > self.localizer.pending() {
                    self.pending_topics.pop_front();
                }
            }
            Err(r) => self.after_range(bag_time_s, topic, input, Err(r), events),
        }
    }

    /// Records a range's outcome; for a fused one publishes as the node's
    /// `after_fused` does and offers `PlanTrigger::Fused`.
    fn after_range(
        &mut self,
        bag_time_s: f64,
        topic: &str,
        input: RangeInput,
        result: Result<(), Rejection>,
        events: &mut Vec<ReplayEvent>,
    ) {
        let id = input.landmark_id.clone();
        let fused = match result {
            Err(rejection) => {
                events.push(ReplayEvent::Range(RangeUpdate { bag_time_s, topic: topic.to_string(), input, result: Err(rejection) }));
                return;
            }
            Ok(()) => match self.localizer.tracks().get(&id) {
                Some(track) => {
                    let sensor = track.last_range.map(|(x, _)| Point3::new(x.x, x.y, 0.0)).unwrap_or_else(Point3::origin);
                    FusedUpdate {
                        sensor_position: sensor,
                        belief: track.summary.belief,
                        components: track.summary.components.len(),
                        measurements_fused: track.measurements_fused,
                        iterations: track.last_stats.iterations,
                        converged: track.last_stats.converged,
                        status: track.status(),
                        calibration: track.calibration,
                    }
                }
                None => return,
            },
        };
        events.push(ReplayEvent::Range(RangeUpdate { bag_time_s, topic: topic.to_string(), input, result: Ok(fused) }));
        let Some(track) = self.localizer.tracks().get(&id) else { return };
        let stamp = Stamp::from_secs(track.last_stamp_s);
        let frame_id = self.localizer.frame_id().to_string();
        if track.is_tracking() {
            events.push(ReplayEvent::LandmarkPose {
                bag_time_s,
                landmark_id: id.clone(),
                msg: PoseWithCovarianceStampedMsg::from_belief(Header { stamp, frame_id: frame_id.clone() }, &track.summary.belief),
            });
        }
        events.push(ReplayEvent::Beliefs { bag_time_s, msg: self.belief_array(stamp) });
        self.replan(bag_time_s, PlanTrigger::Fused(id), stamp, events);
    }

    /// The node's `landmark_beliefs` message: every publishable track, each stamped
    /// with its last fused range (`stamp` before the first).
    pub fn belief_array(&self, stamp: Stamp) -> LandmarkBeliefArrayMsg {
        let frame_id = self.localizer.frame_id().to_string();
        let beliefs = publishable_tracks(self.localizer.tracks())
            .map(|(id, t)| {
                let s = belief_stamp_s(t).map_or(stamp, Stamp::from_secs);
                LandmarkBeliefMsg::from_track(Header { stamp: s, frame_id: frame_id.clone() }, id, t)
            })
            .collect();
        LandmarkBeliefArrayMsg { header: Header { stamp, frame_id }, beliefs }
    }

    fn replan(&mut self, bag_time_s: f64, trigger: PlanTrigger, stamp: Stamp, events: &mut Vec<ReplayEvent>) {
        let kind = match trigger {
            PlanTrigger::Fused(_) => GoalTrigger::Fused,
            PlanTrigger::Odometry => GoalTrigger::Odometry,
            PlanTrigger::Timer => GoalTrigger::Timer,
        };
        match self.goals.on_trigger(&trigger, &self.localizer) {
            None => {}
            Some(Ok(planned)) => {
                let header = Header { stamp, frame_id: self.localizer.frame_id().to_string() };
                events.push(ReplayEvent::Goal(GoalUpdate {
                    bag_time_s,
                    trigger: kind,
                    landmark_id: planned.landmark_id,
                    from_m: planned.from_m,
                    msg: PoseStampedMsg::goal(header, &planned.from_m, &planned.goal.position_m),
                }));
            }
            Some(Err(failure)) => events.push(ReplayEvent::PlanFailed {
                bag_time_s,
                landmark_id: failure.landmark_id,
                error: failure.error.to_string(),
            }),
        }
    }
}
