//! The bag replayer: runs a recorded rosbag2 bag through the node's core code
//! (the [`Localizer`](crate::localizer::Localizer) and the
//! [`GoalScheduler`](crate::goal_scheduler::GoalScheduler), with the node's message
//! conversions), as fast as it can, in bag-time order, deterministically.
//!
//! - [`bag`] reads rosbag2 directories (MCAP or sqlite3 storage) and single `.mcap`
//!   / `.db3` files as a stream, in bounded memory whatever the bag's length; damage
//!   stops reading with an error naming file and offset/row, keeping what came before.
//! - [`crate::msg`] decodes `nav_msgs/Odometry`, `sensor_msgs/Range`,
//!   `landmark_flow/RangeMeasurement` and encodes the outputs.
//! - [`crate::node_core::NodeCore`] handles each message as the live node does, with
//!   bag time as its clock: the replayer is the core's bag adapter.
//! - [`output`], [`report`], [`plots`] write the output bag, the CSV tables, the
//!   report and the PNGs.
//!
//! [`run`] ties them together; `landmark_flow_replay` is its command line.
//!
//! What the replayer writes into `out_dir`:
//! - `replay_bag/` (rosbag2, MCAP): `/landmark_beliefs`, `/landmarks/<id>/pose`,
//!   `/goal_pose`, each message at the bag time of the input that caused it (a timer
//!   goal fires at the first message at or after its period);
//! - `updates.csv`: one row per range that was fused or rejected;
//! - `goals.csv`: one row per goal;
//! - `report.md`, `report.yaml`; `trajectory.png`, `error_vs_time.png`.

pub mod bag;
pub mod output;
pub mod plots;
pub mod path;
pub mod report;
pub mod synthetic;

use crate::config::ConfigError;
use crate::node_config::LandmarkFlowNodeConfig;
use bag::{Bag, BagError, BagMessage};
use crate::msg::cdr::{CdrError, CdrMessage};
use crate::msg::{type_names, topic_safe, OdometryMsg, RangeMeasurementMsg, RangeMsg, TfMessageMsg};
use crate::node_core::{Input, NodeCore, Output};
use output::{num, CsvWriter, OutputError, Rosbag2McapWriter};
use report::{BeliefSample, GroundTruth, GroundTruthError, LandmarkReport, ReplayReport, ReportBuilder, Throughput};
use crate::localizer::TrackStatus;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Default odometry topic (the node's `odom` in the root namespace).
pub const DEFAULT_ODOM_TOPIC: &str = "/odom";
/// Default range topics (the node's `range` and `range_raw`); each is decoded by the
/// type the bag declares for it.
pub const DEFAULT_RANGE_TOPICS: [&str; 2] = ["/range", "/range_raw"];
/// Output topics.
pub const BELIEFS_TOPIC: &str = "/landmark_beliefs";
pub const GOAL_TOPIC: &str = "/goal_pose";
/// Output topics of `localizer.odometry: drifting` (the node's names).
pub const ODOMETRY_CORRECTION_TOPIC: &str = "/odometry_correction";
/// The static TF topic read for the sensor mounts (as the live node subscribes it).
pub const STATIC_TF_TOPIC: &str = "/tf_static";
pub const TF_TOPIC: &str = "/tf";
pub const ROBOT_POSE_TOPIC: &str = "/robot_pose";
/// Columns of `updates.csv`.
pub const UPDATE_COLUMNS: [&str; 21] = [
    "bag_time_s", "topic", "stamp_s", "landmark_id", "range_m", "variance_m2", "status", "sensor_x_m", "sensor_y_m",
    "mean_x_m", "mean_y_m", "cov_xx_m2", "cov_xy_m2", "cov_yy_m2", "trace_m2", "components", "measurements_fused",
    "iterations", "converged", "error_m", "nees",
];
/// Decoding failures reported individually (the rest are only counted).
const MAX_WARNINGS: usize = 20;

/// Errors of the replay as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Bag(#[from] BagError),
    #[error("{bag}: no {missing} topic among {wanted:?}; the bag has: {available}")]
    NoMatchingTopic { bag: PathBuf, missing: &'static str, wanted: Vec<String>, available: String },
    #[error("{bag}: topic `{topic}` has type `{type_name}` with encoding `{encoding}`; expected {expected} in CDR")]
    WrongTopicType { bag: PathBuf, topic: String, type_name: String, encoding: String, expected: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    GroundTruth(#[from] GroundTruthError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Plot(#[from] plots::PlotError),
    #[error("true path {bag}: no nav_msgs/msg/Odometry topic `{topic}`")]
    NoTruePath { bag: PathBuf, topic: String },
}

/// What to replay and where to write.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub bag: PathBuf,
    pub out_dir: PathBuf,
    /// The node's parameters (`landmark_flow_node` section of its params file).
    pub config: LandmarkFlowNodeConfig,
    /// Where `config` came from, for the report.
    pub params_source: String,
    pub odom_topics: Vec<String>,
    pub range_topics: Vec<String>,
    pub ground_truth: Option<PathBuf>,
    /// A bag with the robot's true path (`nav_msgs/Odometry` on `true_path_topic`) to
    /// score `robot_path` against (`odometry: drifting`); `None`: the replayed bag's own
    /// `true_path_topic`, when it has one.
    pub true_path: Option<PathBuf>,
    /// Topic of the true path ([`path::DEFAULT_TRUE_PATH_TOPIC`]).
    pub true_path_topic: String,
    /// Draw the PNGs (needs the font).
    pub plots: bool,
    /// Replay only the first this many seconds of the bag (a slice); `None` = all.
    pub duration_s: Option<f64>,
    /// The largest MCAP record or chunk read, bytes ([`bag::Bag::max_record_bytes`];
    /// default [`bag::MAX_RECORD_BYTES`]).
    pub max_record_bytes: u64,
}

impl ReplayOptions {
    /// Defaults: the node's default parameters, the default topics, plots on.
    pub fn new(bag: &Path, out_dir: &Path) -> Self {
        Self {
            bag: bag.to_path_buf(),
            out_dir: out_dir.to_path_buf(),
            config: LandmarkFlowNodeConfig::default(),
            params_source: "node defaults".into(),
            odom_topics: vec![DEFAULT_ODOM_TOPIC.into()],
            range_topics: DEFAULT_RANGE_TOPICS.iter().map(|s| s.to_string()).collect(),
            ground_truth: None,
            true_path: None,
            true_path_topic: path::DEFAULT_TRUE_PATH_TOPIC.into(),
            plots: true,
            duration_s: None,
            max_record_bytes: bag::MAX_RECORD_BYTES,
        }
    }
}

/// The result of a replay that ran (possibly over a damaged bag's readable part).
#[derive(Debug)]
pub struct ReplayOutcome {
    pub report: ReplayReport,
    /// Set when the bag could not be read to the end: everything before the damage
    /// was replayed and written.
    pub bag_error: Option<BagError>,
    /// Messages that could not be decoded (the first few), naming file and position.
    pub warnings: Vec<String>,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// A topic name with a leading `/` (rosbag2 records absolute names).
pub fn absolute_topic(name: &str) -> String {
    if name.starts_with('/') { name.to_string() } else { format!("/{name}") }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Odometry,
    Range,
    RangeMeasurement,
    /// `/tf_static` (the sensor mounts), when the bag recorded it.
    StaticTransforms,
}

fn decode(kind: Kind, topic: &str, data: &[u8]) -> Result<Input, CdrError> {
    let topic = topic.to_string();
    Ok(match kind {
        Kind::Odometry => Input::Odometry(OdometryMsg::decode(data)?),
        Kind::Range => Input::Range { topic, msg: RangeMsg::decode(data)? },
        Kind::RangeMeasurement => Input::RangeMeasurement { topic, msg: RangeMeasurementMsg::decode(data)? },
        Kind::StaticTransforms => Input::StaticTransforms(TfMessageMsg::decode(data)?),
    })
}

/// Checks the wanted topics against the bag's: each wanted topic present must have a
/// type the replayer decodes; at least one odometry and one range topic must be there.
fn topic_kinds(contents: &Bag, options: &ReplayOptions) -> Result<Vec<Option<Kind>>, ReplayError> {
    let odom: Vec<String> = options.odom_topics.iter().map(|t| absolute_topic(t)).collect();
    let ranges: Vec<String> = options.range_topics.iter().map(|t| absolute_topic(t)).collect();
    let mut kinds = Vec::with_capacity(contents.topics.len());
    let (mut have_odom, mut have_range) = (false, false);
    for t in &contents.topics {
        let cdr = t.encoding == "cdr";
        let kind = if odom.contains(&t.name) {
            if !(cdr && t.type_name == type_names::ODOMETRY) {
                return Err(wrong_type(options, t, type_names::ODOMETRY.into()));
            }
            have_odom = true;
            Some(Kind::Odometry)
        } else if ranges.contains(&t.name) {
            have_range = true;
            match (cdr, t.type_name.as_str()) {
                (true, type_names::RANGE) => Some(Kind::Range),
                (true, type_names::RANGE_MEASUREMENT) => Some(Kind::RangeMeasurement),
                _ => {
                    return Err(wrong_type(options, t, format!("{} or {}", type_names::RANGE, type_names::RANGE_MEASUREMENT)))
                }
            }
        } else if t.name == STATIC_TF_TOPIC && cdr && t.type_name == type_names::TF_MESSAGE {
            Some(Kind::StaticTransforms)
        } else {
            None
        };
        kinds.push(kind);
    }
    let missing = match (have_odom, have_range) {
        (true, true) => return Ok(kinds),
        (false, true) => "odometry",
        (true, false) => "range",
        (false, false) => "odometry or range",
    };
    let available = if contents.topics.is_empty() {
        "no topics".to_string()
    } else {
        contents.topics.iter().map(|t| format!("{} ({}, {} messages)", t.name, t.type_name, t.message_count)).collect::<Vec<_>>().join(", ")
    };
    let wanted = match missing {
        "odometry" => odom,
        "range" => ranges,
        _ => odom.into_iter().chain(ranges).collect(),
    };
    Err(ReplayError::NoMatchingTopic { bag: options.bag.clone(), missing, wanted, available })
}

fn wrong_type(options: &ReplayOptions, t: &bag::TopicInfo, expected: String) -> ReplayError {
    ReplayError::WrongTopicType {
        bag: options.bag.clone(),
        topic: t.name.clone(),
        type_name: t.type_name.clone(),
        encoding: t.encoding.clone(),
        expected,
    }
}

fn describe_origin(contents: &Bag, m: &BagMessage) -> String {
    describe_position(contents, &m.origin, m.log_time_ns)
}

fn describe_position(contents: &Bag, origin: &bag::MessageOrigin, log_time_ns: u64) -> String {
    let file = contents.files.get(origin.file).map(|p| p.display().to_string()).unwrap_or_default();
    let position = if file.ends_with(".db3") {
        format!("row {}", origin.position)
    } else {
        format!("record at byte offset {}", origin.position)
    };
    format!("{file}: message #{} ({position}, bag time {log_time_ns} ns)", origin.ordinal)
}

/// Writes every output as the events come.
struct Sinks {
    bag: Rosbag2McapWriter,
    updates: CsvWriter,
    goals: CsvWriter,
    builder: ReportBuilder,
    goals_by_trigger: BTreeMap<String, u64>,
    plan_failures: u64,
    odometry_messages: u64,
    range_messages: u64,
    true_path: Option<path::TruePath>,
    path_errors: path::PathErrors,
}

impl Sinks {
    /// Records one output of the core, caused by the message at bag time `t_ns`.
    fn on_output(&mut self, output: Output, t_ns: u64) -> Result<(), OutputError> {
        let bag_time_s = t_ns as f64 * 1e-9;
        match output {
            Output::Odometry { position, .. } => {
                self.builder.trajectory.push((bag_time_s - self.builder.start_s, position.x, position.y));
            }
            Output::Range(u) => {
                let i = &u.input;
                let mut row = vec![
                    num(bag_time_s),
                    i.topic.clone(),
                    num(i.stamp_s),
                    i.landmark_id.clone(),
                    num(i.range_m),
                    num(i.variance_m2),
                ];
                match &u.result {
                    Ok(f) => {
                        let b = &f.belief;
                        self.builder.set_calibration(&i.landmark_id, f.calibration);
                        let sample = if f.status == TrackStatus::Tracking {
                            self.builder.add_belief(bag_time_s, &i.landmark_id, b, f.belief3.as_ref())
                        } else {
                            BeliefSample::default()
                        };
                        row.extend([
                            "fused".to_string(),
                            num(f.sensor_position.x),
                            num(f.sensor_position.y),
                            num(b.mean.x),
                            num(b.mean.y),
                            num(b.cov[(0, 0)]),
                            num(b.cov[(0, 1)]),
                            num(b.cov[(1, 1)]),
                            num(b.cov.trace()),
                            f.components.to_string(),
                            f.measurements_fused.to_string(),
                            f.iterations.to_string(),
                            f.converged.to_string(),
                            sample.error_m.map(num).unwrap_or_default(),
                            sample.nees.map(num).unwrap_or_default(),
                        ]);
                    }
                    Err(r) => {
                        self.builder.add_rejected(&i.landmark_id);
                        row.push(r.reason().to_string());
                        row.extend(std::iter::repeat_n(String::new(), UPDATE_COLUMNS.len() - 7));
                    }
                }
                self.updates.row(row)?;
            }
            Output::LandmarkPose { landmark_id, msg } => {
                let topic = format!("/landmarks/{}/pose", topic_safe(&landmark_id));
                self.bag.write(&topic, type_names::POSE_WITH_COVARIANCE_STAMPED, t_ns, &msg.into_cdr())?;
            }
            Output::Beliefs(msg) => {
                self.bag.write(BELIEFS_TOPIC, type_names::LANDMARK_BELIEF_ARRAY, t_ns, &msg.into_cdr())?;
            }
            Output::Goal(g) => {
                self.bag.write(GOAL_TOPIC, type_names::POSE_STAMPED, t_ns, &g.msg.clone().into_cdr())?;
                *self.goals_by_trigger.entry(g.trigger.name().to_string()).or_insert(0) += 1;
                let [x, y, _] = g.msg.pose.position;
                self.builder.goals.push((bag_time_s - self.builder.start_s, x, y));
                self.goals.row([
                    num(bag_time_s),
                    num(g.msg.header.stamp.secs()),
                    g.trigger.name().to_string(),
                    g.landmark_id.clone(),
                    num(g.from_m.x),
                    num(g.from_m.y),
                    num(x),
                    num(y),
                ])?;
            }
            Output::PlanFailed { .. } => self.plan_failures += 1,
            // Not recorded (no output topic of the replay bag, or nothing to draw).
            Output::OdometryRejected(_)
            | Output::StaticTransformRejected(_)
            | Output::Markers(_)
            | Output::Heatmap(_)
            | Output::Diagnostics(_)
            | Output::Reset { .. } => {}
            // With `localizer.odometry: drifting` only.
            Output::OdometryCorrection(msg) => {
                let tf = TfMessageMsg::from(&msg);
                self.bag.write(ODOMETRY_CORRECTION_TOPIC, type_names::ODOMETRY_CORRECTION, t_ns, &msg.into_cdr())?;
                self.bag.write(TF_TOPIC, type_names::TF_MESSAGE, t_ns, &tf.into_cdr())?;
            }
            Output::RobotPose(msg) => {
                // The planar pose's quaternion is a rotation about z: yaw = 2·atan2(q_z, q_w).
                let [_, _, qz, qw] = msg.pose.orientation;
                let yaw = 2.0 * qz.atan2(qw);
                let pose = nalgebra::Isometry2::new(nalgebra::Vector2::new(msg.pose.position[0], msg.pose.position[1]), yaw);
                let cov = nalgebra::Matrix3::from_fn(|r, c| msg.covariance[6 * [0, 1, 5][r] + [0, 1, 5][c]]);
                let time_s = bag_time_s - self.builder.start_s;
                self.builder.map_trajectory.push((time_s, pose.translation.x, pose.translation.y));
                if let Some(truth) = &self.true_path {
                    self.path_errors.push(truth, msg.header.stamp.secs(), time_s, &pose, &cov);
                }
                self.bag.write(ROBOT_POSE_TOPIC, type_names::POSE_WITH_COVARIANCE_STAMPED, t_ns, &msg.into_cdr())?;
            }
        }
        Ok(())
    }
}

/// Replays `options.bag` and writes everything into `options.out_dir`.
///
/// # Errors
/// [`ReplayError`] when nothing can be replayed (unreadable bag, no matching topic,
/// bad parameters or ground truth) or an output cannot be written. A bag damaged
/// part-way is not an `Err`: see [`ReplayOutcome::bag_error`].
pub fn run(options: &ReplayOptions) -> Result<ReplayOutcome, ReplayError> {
    // The replay records no heatmap and no markers, so it need not compute them (goals
    // are the same).
    let mut config = options.config.clone();
    config.publish.heatmap = false;
    config.publish.markers = false;
    let mut core = NodeCore::new(&config)?;
    let truth = options.ground_truth.as_deref().map(GroundTruth::load).transpose()?;
    let true_path = match &options.true_path {
        Some(bag) => Some(path::TruePath::load(bag, &options.true_path_topic)?.ok_or_else(|| {
            ReplayError::NoTruePath { bag: bag.clone(), topic: options.true_path_topic.clone() }
        })?),
        // The replayed bag's own true path, if it records one (a damaged bag is
        // reported by the replay itself).
        None => path::TruePath::load(&options.bag, &options.true_path_topic).ok().flatten(),
    }
    .filter(|p| !p.is_empty());

    let read_start = Instant::now();
    let wanted: Vec<String> =
        options.odom_topics.iter().chain(&options.range_topics).map(|t| absolute_topic(t)).collect();
    let bag = bag::read_bag_with_limit(&options.bag, options.max_record_bytes)?;
    let kinds = match topic_kinds(&bag, options) {
        Ok(k) => k,
        // Damage found while listing is the better explanation: it may have hidden the
        // topic (a file without a summary is listed only up to its damage).
        Err(ReplayError::NoMatchingTopic { .. }) if bag.listing_error.is_some() => {
            return Err(ReplayError::Bag(bag.listing_error.clone().expect("checked")))
        }
        Err(e) => return Err(e),
    };
    let read_s = read_start.elapsed().as_secs_f64();

    std::fs::create_dir_all(&options.out_dir).map_err(|e| output::io_err(&options.out_dir, e))?;
    let process_start = Instant::now();
    let mut sinks = Sinks {
        bag: Rosbag2McapWriter::create(&options.out_dir.join("replay_bag"))?,
        updates: CsvWriter::create(&options.out_dir.join("updates.csv"), &UPDATE_COLUMNS)?,
        goals: CsvWriter::create(
            &options.out_dir.join("goals.csv"),
            &["bag_time_s", "stamp_s", "trigger", "landmark_id", "from_x_m", "from_y_m", "goal_x_m", "goal_y_m"],
        )?,
        // Its start is set at the first message.
        builder: ReportBuilder::new(truth.clone(), 0.0),
        goals_by_trigger: BTreeMap::new(),
        plan_failures: 0,
        odometry_messages: 0,
        range_messages: 0,
        true_path,
        path_errors: path::PathErrors::default(),
    };
    let mut undecodable: BTreeMap<String, u64> = BTreeMap::new();
    let mut warnings = Vec::new();
    // The bag's start (first message) and the last message replayed, s: the messages
    // stream by, so they are noted as they pass.
    let mut start_s: Option<f64> = None;
    let mut end_s: Option<f64> = None;
    /// Why the replay stops reading before the end of the bag.
    enum Halt {
        /// The first message after the slice (`--duration`); the rest is not read.
        SliceEnd,
        Output(OutputError),
    }
    let read = bag.for_each_message(&|t| wanted.contains(&t.name), |m: BagMessage| {
        let t_s = m.log_time_ns as f64 * 1e-9;
        let start = *start_s.get_or_insert_with(|| {
            sinks.builder.start_s = t_s;
            t_s
        });
        if t_s > options.duration_s.map_or(f64::INFINITY, |d| start + d) {
            return Err(Halt::SliceEnd);
        }
        end_s = Some(t_s);
        let Some(kind) = kinds[m.topic] else { return Ok(()) };
        let topic = &bag.topics[m.topic].name;
        let input = match decode(kind, topic, &m.data) {
            Ok(input) => input,
            Err(e) => {
                *undecodable.entry(topic.clone()).or_insert(0) += 1;
                if warnings.len() < MAX_WARNINGS {
                    warnings.push(format!("{}: on {topic}: undecodable CDR, skipped: {e}", describe_origin(&bag, &m)));
                }
                return Ok(());
            }
        };
        match kind {
            Kind::Odometry => sinks.odometry_messages += 1,
            Kind::StaticTransforms => {}
            _ => sinks.range_messages += 1,
        }
        for output in core.handle(t_s, input) {
            sinks.on_output(output, m.log_time_ns).map_err(Halt::Output)?;
        }
        Ok(())
    });
    let bag_error = match read {
        Ok(summary) => {
            for (origin, log_time_ns) in &summary.time_jumps {
                if warnings.len() < MAX_WARNINGS {
                    warnings.push(format!(
                        "{}: more than {} s after the message before it while the message after it is not: \
                         an isolated bag time jump (a damaged log time), skipped",
                        describe_position(&bag, origin, *log_time_ns),
                        bag::MAX_BAG_TIME_JUMP_NS / 1_000_000_000
                    ));
                }
            }
            if summary.late_messages > 0 {
                warnings.push(format!(
                    "{}: {} messages were older than the reader's reorder window allows (older than a message two \
                     or more chunks before it) and were replayed late, out of bag-time order",
                    options.bag.display(),
                    summary.late_messages
                ));
            }
            summary.error
        }
        // A slice does not read past its end, so damage beyond it is not seen.
        Err(Halt::SliceEnd) => None,
        Err(Halt::Output(e)) => return Err(e.into()),
    };
    let start_s = start_s.unwrap_or(0.0);
    let end_s = end_s.unwrap_or(start_s);
    let Sinks {
        bag: out_bag,
        updates,
        goals,
        mut builder,
        goals_by_trigger,
        plan_failures,
        odometry_messages,
        range_messages,
        true_path: _,
        path_errors,
    } = sinks;
    builder.robot_path_error = path_errors.series.clone();
    out_bag.finish()?;
    updates.finish()?;
    goals.finish()?;
    let process_s = process_start.elapsed().as_secs_f64();

    let duration_s = end_s - start_s;
    let localizer = core.localizer();
    let landmarks = builder
        .landmarks
        .iter()
        .map(|(id, s)| {
            let height = truth.as_ref().and_then(|t| t.heights_m.get(id).copied());
            LandmarkReport::from_series(id, s, truth.as_ref().and_then(|t| t.landmarks.get(id)), height, duration_s)
        })
        .collect::<Vec<_>>();
    let rms = |errors: Vec<f64>| {
        (!errors.is_empty()).then(|| (errors.iter().map(|e| e * e).sum::<f64>() / errors.len() as f64).sqrt())
    };
    let final_rmse_m = rms(landmarks.iter().filter_map(|l| l.final_error_m).collect());
    let final_vertical_rmse_m = rms(landmarks.iter().filter_map(|l| l.final_vertical_error_m).collect());
    let final_pairs: Vec<_> = landmarks
        .iter()
        .filter_map(|l| Some((nalgebra::Vector2::from(l.final_mean_m?), nalgebra::Vector2::from(l.truth_m?))))
        .collect();
    let final_rmse_aligned_m = report::rigid_aligned_rmse(&final_pairs);
    let report = ReplayReport {
        bag: options.bag.display().to_string(),
        params: options.params_source.clone(),
        ground_truth: options.ground_truth.as_ref().map(|p| p.display().to_string()),
        estimator: config.localizer.estimator.method.name().to_string(),
        bag_start_s: start_s,
        bag_duration_s: duration_s,
        final_rmse_m,
        final_vertical_rmse_m,
        final_rmse_aligned_m,
        robot_path: path_errors.report(duration_s),
        odometry_noise_weights: localizer.joint_state().map(|s| s.weights()).unwrap_or_default(),
        smoother: localizer.smoother_stats().map(|st| report::SmootherReport {
            solves: st.solves,
            failures: st.failures,
            last_failure: st.last_failure.clone(),
            weights: st.weights.clone(),
        }),
        range_time_offset: localizer.range_time_offset().map(|e| (e.offset_s, e.std_s, e.suspected())),
        odometry_messages,
        range_messages,
        undecodable_messages: undecodable,
        ranges_fused: localizer.accepted(),
        rejected_by_reason: localizer.rejected().iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        ranges_waiting_at_end: localizer.pending() as u64,
        goals_published: goals_by_trigger.values().sum(),
        goals_by_trigger,
        plan_failures,
        landmarks,
        throughput: Throughput {
            read_s,
            process_s,
            ranges_per_s: range_messages as f64 / process_s.max(1e-9),
            realtime_factor: duration_s / process_s.max(1e-9),
        },
        bag_error: bag_error.as_ref().map(|e| e.to_string()),
    };
    report.write(&options.out_dir)?;
    let mut files: Vec<PathBuf> = ["replay_bag", "updates.csv", "goals.csv", "report.md", "report.yaml"]
        .iter()
        .map(|f| options.out_dir.join(f))
        .collect();
    if options.plots {
        files.extend(plots::write_plots(&options.out_dir, &builder)?);
    }
    Ok(ReplayOutcome { report, bag_error, warnings, files })
}
