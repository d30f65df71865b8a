//! The ROS 2 messages of the package as plain Rust values: what the node core takes in
//! and gives out, what the replayer decodes from and encodes into bags. One home for
//! message values and their conversions:
//! - this module: the message structs (field for field the ROS messages) and their
//!   conversions to and from core values (range inputs, beliefs, goals);
//! - [`convert`]: the numbers inside them (stamps, covariance layouts, the goal's
//!   heading, ellipses, topic names), plain numbers in and out;
//! - [`cdr`]: their CDR encoding (bounds-checked; rosbag2's serialization);
//! - [`definitions`]: their `ros2msg` text (the MCAP schemas rosbag2 writes).
//!
//! The ROS layer (`crate::ros::messages`) only copies these values into r2r's types and
//! back; nothing here depends on ROS.

pub mod cdr;
pub mod convert;
pub mod definitions;

use crate::estimator::GaussianBelief;
use crate::localizer::{LandmarkTrack, RangeCalibration, RangeInput, TrackStatus};
use crate::planner::CriterionGrid;
use cdr::{CdrError, CdrFields, CdrMessage};
use convert::{
    covariance3_full_row_major, ellipsoid_axes, planar_in_3d, pose_covariance6_row_major, pose_covariance6_row_major_3d,
    pose_from_position_quaternion, position3, position3_3d, stamp_from_secs,
    stamp_secs, travel_yaw, yaw_quaternion_xyzw,
};
use nalgebra::{Isometry3, Vector2, Vector3};

pub use convert::{topic_safe, STATE_INITIALISING, STATE_TRACKING, UNESTIMATED_ORIENTATION_VAR_RAD2};
pub use definitions::{message_definition, type_names};

/// `builtin_interfaces/Time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamp {
    pub sec: i32,
    pub nanosec: u32,
}

impl Stamp {
    /// Seconds ([`stamp_secs`]).
    pub fn secs(&self) -> f64 {
        stamp_secs(self.sec, self.nanosec)
    }

    /// From seconds, rounded to the nanosecond ([`stamp_from_secs`]).
    pub fn from_secs(s: f64) -> Self {
        let (sec, nanosec) = stamp_from_secs(s);
        Stamp { sec, nanosec }
    }

    /// From nanoseconds (bag time).
    pub fn from_nanos(ns: u64) -> Self {
        Stamp { sec: (ns / 1_000_000_000) as i32, nanosec: (ns % 1_000_000_000) as u32 }
    }
}

/// `std_msgs/Header`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Header {
    pub stamp: Stamp,
    pub frame_id: String,
}

impl Header {
    fn fields<F: CdrFields>(&mut self, f: &mut F) -> Result<(), CdrError> {
        f.i32("header.stamp.sec", &mut self.stamp.sec)?;
        f.u32("header.stamp.nanosec", &mut self.stamp.nanosec)?;
        f.string("header.frame_id", &mut self.frame_id)
    }
}


/// A pose: position (x, y, z), metres; orientation quaternion (x, y, z, w).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pose {
    pub position: [f64; 3],
    pub orientation: [f64; 4],
}

impl Pose {
    fn fields<F: CdrFields>(&mut self, f: &mut F) -> Result<(), CdrError> {
        f.f64s("pose.position", &mut self.position)?;
        f.f64s("pose.orientation", &mut self.orientation)
    }
}


/// The fields of `nav_msgs/msg/Odometry` the node uses (the twist is decoded, checked
/// for length, and dropped).
#[derive(Debug, Clone, PartialEq)]
pub struct OdometryMsg {
    pub header: Header,
    pub child_frame_id: String,
    pub pose: Pose,
    /// Row-major 6×6 covariance of the pose over (x, y, z, roll, pitch, yaw); all zero
    /// when the publisher does not fill it.
    pub pose_covariance: [f64; 36],
}

impl Default for OdometryMsg {
    fn default() -> Self {
        Self { header: Header::default(), child_frame_id: String::new(), pose: Pose::default(), pose_covariance: [0.0; 36] }
    }
}

impl CdrMessage for OdometryMsg {
    /// The twist is read (its length checked) and dropped; written as zeros.
    fn fields<F: CdrFields>(&mut self, f: &mut F) -> Result<(), CdrError> {
        self.header.fields(f)?;
        f.string("child_frame_id", &mut self.child_frame_id)?;
        self.pose.fields(f)?;
        f.f64s("pose.covariance", &mut self.pose_covariance)?;
        f.f64s("twist.twist", &mut [0.0; 6])?;
        f.f64s("twist.covariance", &mut [0.0; 36])
    }
}

/// `sensor_msgs/msg/Range` (Jazzy, with `variance`; a Humble message without it
/// decodes with `variance` 0, "unknown").
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RangeMsg {
    pub header: Header,
    pub radiation_type: u8,
    pub field_of_view: f32,
    pub min_range: f32,
    pub max_range: f32,
    pub range: f32,
    pub variance: f32,
}

impl CdrMessage for RangeMsg {
    fn fields<F: CdrFields>(&mut self, f: &mut F) -> Result<(), CdrError> {
        self.header.fields(f)?;
        f.u8("radiation_type", &mut self.radiation_type)?;
        f.f32("field_of_view", &mut self.field_of_view)?;
        f.f32("min_range", &mut self.min_range)?;
        f.f32("max_range", &mut self.max_range)?;
        f.f32("range", &mut self.range)?;
        // Jazzy added `float32 variance`; older distributions end after `range`.
        f.trailing_f32("variance", &mut self.variance)
    }
}

/// `landmark_flow/msg/RangeMeasurement`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RangeMeasurementMsg {
    pub header: Header,
    pub landmark_id: String,
    /// Metres.
    pub range: f64,
    /// m² (0 = the node's default).
    pub variance: f64,
}

impl CdrMessage for RangeMeasurementMsg {
    fn fields<F: CdrFields>(&mut self, f: &mut F) -> Result<(), CdrError> {
        self.header.fields(f)?;
        f.string("landmark_id", &mut self.landmark_id)?;
        f.f64("range", &mut self.range)?;
        f.f64("variance", &mut self.variance)
    }
}

impl OdometryMsg {
    /// Base pose in the odometry frame ([`pose_from_position_quaternion`]: normalised,
    /// not validated; the localizer rejects a non-finite pose).
    pub fn base_pose(&self) -> Isometry3<f64> {
        pose_from_position_quaternion(self.pose.position, self.pose.orientation)
    }
}

impl RangeMsg {
    /// `sensor_msgs/Range` → [`RangeInput`]. That message has no landmark field and no
    /// sensor frame of its own: by this package's convention the landmark id is the
    /// message's `header.frame_id`, and the sensor frame is the configured
    /// `localizer.sensor_frame_id`. A `variance` of 0 (Jazzy's "unknown", and what a
    /// pre-Jazzy message decodes to) selects the configured default.
    pub fn to_range_input(&self, topic: &str, sensor_frame_id: &str) -> RangeInput {
        RangeInput {
            topic: topic.to_string(),
            stamp_s: self.header.stamp.secs(),
            frame_id: sensor_frame_id.to_string(),
            landmark_id: self.header.frame_id.clone(),
            range_m: self.range as f64,
            variance_m2: self.variance as f64,
            // Both 0: not filled in by the publisher.
            sensor_limits_m: (self.min_range != 0.0 || self.max_range != 0.0)
                .then_some((self.min_range as f64, self.max_range as f64)),
        }
    }
}

impl RangeMeasurementMsg {
    /// `landmark_flow/RangeMeasurement` → [`RangeInput`], field for field.
    pub fn to_range_input(&self, topic: &str) -> RangeInput {
        RangeInput {
            topic: topic.to_string(),
            stamp_s: self.header.stamp.secs(),
            frame_id: self.header.frame_id.clone(),
            landmark_id: self.landmark_id.clone(),
            range_m: self.range,
            variance_m2: self.variance,
            sensor_limits_m: None,
        }
    }
}

/// `geometry_msgs/msg/PoseWithCovarianceStamped` of a belief (the node's layout:
/// μ at z = 0, identity orientation, Σ in the x–y block of the row-major 6×6).
#[derive(Debug, Clone, PartialEq)]
pub struct PoseWithCovarianceStampedMsg {
    pub header: Header,
    pub pose: Pose,
    pub covariance: [f64; 36],
}

impl PoseWithCovarianceStampedMsg {
    pub fn from_belief(header: Header, belief: &GaussianBelief<2>) -> Self {
        let pose = Pose { position: position3(&belief.mean), orientation: [0.0, 0.0, 0.0, 1.0] };
        Self { header, pose, covariance: pose_covariance6_row_major(&belief.cov) }
    }

    /// A landmark's pose: its (x, y, z) belief with `localizer.dimension: 3` (Σ in the
    /// (x, y, z) block), else [`PoseWithCovarianceStampedMsg::from_belief`].
    pub fn from_track(header: Header, track: &LandmarkTrack) -> Self {
        match &track.summary3 {
            Some(s) => {
                let pose = Pose { position: position3_3d(&s.belief.mean), orientation: [0.0, 0.0, 0.0, 1.0] };
                Self { header, pose, covariance: pose_covariance6_row_major_3d(&s.belief.cov) }
            }
            None => Self::from_belief(header, &track.summary.belief),
        }
    }
}

impl PoseWithCovarianceStampedMsg {
    /// A planar pose (x, y, yaw) at height `z_m` with its covariance over (x, y, yaw):
    /// the x, y, yaw rows and columns of the 6×6 (z, roll, pitch: 0, unestimated).
    pub fn from_planar_pose(header: Header, pose: &nalgebra::Isometry2<f64>, z_m: f64, cov: &nalgebra::Matrix3<f64>) -> Self {
        let half = 0.5 * pose.rotation.angle();
        let pose = Pose {
            position: [pose.translation.x, pose.translation.y, z_m],
            orientation: [0.0, 0.0, half.sin(), half.cos()],
        };
        let mut covariance = [0.0; 36];
        const IDX: [usize; 3] = [0, 1, 5];
        for r in 0..3 {
            for c in 0..3 {
                covariance[6 * IDX[r] + IDX[c]] = cov[(r, c)];
            }
        }
        Self { header, pose, covariance }
    }
}

impl Default for PoseWithCovarianceStampedMsg {
    fn default() -> Self {
        Self { header: Header::default(), pose: Pose::default(), covariance: [0.0; 36] }
    }
}

impl CdrMessage for PoseWithCovarianceStampedMsg {
    fn fields<F: CdrFields>(&mut self, f: &mut F) -> Result<(), CdrError> {
        self.header.fields(f)?;
        self.pose.fields(f)?;
        f.f64s("pose.covariance", &mut self.covariance)
    }
}

/// `geometry_msgs/msg/PoseStamped` of a goal: at the goal, facing away from the robot
/// (the node's `goal_pose`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PoseStampedMsg {
    pub header: Header,
    pub pose: Pose,
}

impl PoseStampedMsg {
    pub fn goal(header: Header, from: &Vector2<f64>, goal: &Vector2<f64>) -> Self {
        let pose = Pose { position: position3(goal), orientation: yaw_quaternion_xyzw(travel_yaw(from, goal)) };
        Self { header, pose }
    }
}

impl CdrMessage for PoseStampedMsg {
    fn fields<F: CdrFields>(&mut self, f: &mut F) -> Result<(), CdrError> {
        self.header.fields(f)?;
        self.pose.fields(f)
    }
}

/// One `landmark_flow/msg/GaussianComponent`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GaussianComponentMsg {
    pub weight: f64,
    pub mean: [f64; 3],
    pub covariance: [f64; 9],
}

/// `landmark_flow/msg/LandmarkBelief`, filled as the node fills it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LandmarkBeliefMsg {
    pub header: Header,
    pub landmark_id: String,
    pub state: u8,
    pub dimension: u8,
    pub mean: [f64; 3],
    pub covariance: [f64; 9],
    pub components: Vec<GaussianComponentMsg>,
    pub measurements_fused: u32,
    pub measurements_rejected: u32,
    pub iterations: u32,
    pub converged: bool,
    pub update_latency_s: f64,
    pub calibration_estimated: bool,
    pub range_scale: f64,
    pub range_scale_variance: f64,
    pub range_offset_m: f64,
    pub range_offset_variance: f64,
}

impl LandmarkBeliefMsg {
    /// The message of a track, for the node (`landmark_flow::ros::messages::landmark_belief`
    /// copies it into r2r's type) and the replayer: its status, the moment-matched
    /// Gaussian of the position and each component, and the range calibration when it
    /// is estimated (else scale 1, offset 0, variances 0).
    pub fn from_track(header: Header, id: &str, track: &LandmarkTrack) -> Self {
        let s = &track.summary;
        // (x, y, z) with `localizer.dimension: 3`, else (x, y, 0) with a zero z row.
        let in_3d = |b: &GaussianBelief<2>| GaussianBelief { mean: Vector3::new(b.mean.x, b.mean.y, 0.0), cov: planar_in_3d(&b.cov) };
        let (belief, parts): (GaussianBelief<3>, Vec<(f64, GaussianBelief<3>)>) = match &track.summary3 {
            Some(s3) => (s3.belief, s3.components.iter().map(|c| (c.weight, c.belief)).collect()),
            None => (in_3d(&s.belief), s.components.iter().map(|c| (c.weight, in_3d(&c.belief))).collect()),
        };
        let (mean, covariance) = (position3_3d(&belief.mean), covariance3_full_row_major(&belief.cov));
        let components = parts
            .iter()
            .map(|(weight, b)| GaussianComponentMsg {
                weight: *weight,
                mean: position3_3d(&b.mean),
                covariance: covariance3_full_row_major(&b.cov),
            })
            .collect();
        let cal = track.calibration.unwrap_or(RangeCalibration {
            scale: 1.0,
            scale_variance: 0.0,
            offset_m: 0.0,
            offset_variance_m2: 0.0,
        });
        Self {
            header,
            landmark_id: id.to_string(),
            state: match track.status() {
                TrackStatus::Initialising => STATE_INITIALISING,
                TrackStatus::Tracking => STATE_TRACKING,
            },
            dimension: if track.summary3.is_some() { 3 } else { 2 },
            mean,
            covariance,
            components,
            measurements_fused: track.measurements_fused,
            measurements_rejected: track.measurements_rejected,
            iterations: track.last_stats.iterations as u32,
            converged: track.last_stats.converged,
            update_latency_s: track.last_latency_s,
            calibration_estimated: track.calibration.is_some(),
            range_scale: cal.scale,
            range_scale_variance: cal.scale_variance,
            range_offset_m: cal.offset_m,
            range_offset_variance: cal.offset_variance_m2,
        }
    }

    fn fields<F: CdrFields>(&mut self, f: &mut F) -> Result<(), CdrError> {
        self.header.fields(f)?;
        f.string("landmark_id", &mut self.landmark_id)?;
        f.u8("state", &mut self.state)?;
        f.u8("dimension", &mut self.dimension)?;
        f.f64s("mean", &mut self.mean)?;
        f.f64s("covariance", &mut self.covariance)?;
        f.sequence("components", &mut self.components, 13 * 8, |f, c| {
            f.f64("components.weight", &mut c.weight)?;
            f.f64s("components.mean", &mut c.mean)?;
            f.f64s("components.covariance", &mut c.covariance)
        })?;
        f.u32("measurements_fused", &mut self.measurements_fused)?;
        f.u32("measurements_rejected", &mut self.measurements_rejected)?;
        f.u32("iterations", &mut self.iterations)?;
        f.bool("converged", &mut self.converged)?;
        f.f64("update_latency_s", &mut self.update_latency_s)?;
        f.bool("calibration_estimated", &mut self.calibration_estimated)?;
        f.f64("range_scale", &mut self.range_scale)?;
        f.f64("range_scale_variance", &mut self.range_scale_variance)?;
        f.f64("range_offset_m", &mut self.range_offset_m)?;
        f.f64("range_offset_variance", &mut self.range_offset_variance)
    }
}

/// `landmark_flow/msg/OdometryCorrection`: the estimated odom→map correction of drifting
/// odometry (REP-105 `map → odom`: a point p in the odometry frame is at
/// R(yaw)·p + (x, y) in the map frame) and the gyro bias, with their uncertainty.
/// The ROS layer also publishes the correction as a `geometry_msgs/TransformStamped`
/// on `/tf`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OdometryCorrectionMsg {
    /// Stamp of the odometry it applies to; `frame_id` the map frame.
    pub header: Header,
    /// The odometry frame.
    pub child_frame_id: String,
    /// Translation of the correction, metres.
    pub x_m: f64,
    pub y_m: f64,
    /// Rotation of the correction, rad.
    pub yaw_rad: f64,
    /// Row-major 3×3 covariance over (x m, y m, yaw rad).
    pub covariance: [f64; 9],
    /// Estimated gyro bias (heading rate the odometry adds), rad/s.
    pub gyro_bias_rad_per_s: f64,
    /// Its variance, (rad/s)².
    pub gyro_bias_variance: f64,
}

impl CdrMessage for OdometryCorrectionMsg {
    fn fields<F: CdrFields>(&mut self, f: &mut F) -> Result<(), CdrError> {
        self.header.fields(f)?;
        f.string("child_frame_id", &mut self.child_frame_id)?;
        f.f64("x_m", &mut self.x_m)?;
        f.f64("y_m", &mut self.y_m)?;
        f.f64("yaw_rad", &mut self.yaw_rad)?;
        f.f64s("covariance", &mut self.covariance)?;
        f.f64("gyro_bias_rad_per_s", &mut self.gyro_bias_rad_per_s)?;
        f.f64("gyro_bias_variance", &mut self.gyro_bias_variance)
    }
}

impl OdometryCorrectionMsg {
    /// The correction as the `map → odom` transform of `/tf`: parent `header.frame_id`
    /// (map), child `child_frame_id` (odom), translation (x, y, 0), rotation by `yaw`
    /// about z ([`yaw_quaternion_xyzw`]); same stamp. The uncertainty has no place in a
    /// transform (it is in this message and in `robot_pose`).
    pub fn to_transform(&self) -> TransformStampedMsg {
        TransformStampedMsg {
            header: self.header.clone(),
            child_frame_id: self.child_frame_id.clone(),
            translation: [self.x_m, self.y_m, 0.0],
            rotation: yaw_quaternion_xyzw(self.yaw_rad),
        }
    }
}

impl From<&OdometryCorrectionMsg> for TfMessageMsg {
    /// One transform, [`OdometryCorrectionMsg::to_transform`].
    fn from(c: &OdometryCorrectionMsg) -> Self {
        TfMessageMsg { transforms: vec![c.to_transform()] }
    }
}

/// `geometry_msgs/msg/TransformStamped`: the pose of `child_frame_id` in
/// `header.frame_id` (translation, metres; rotation quaternion (x, y, z, w)).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TransformStampedMsg {
    pub header: Header,
    pub child_frame_id: String,
    pub translation: [f64; 3],
    pub rotation: [f64; 4],
}

impl TransformStampedMsg {
    fn fields<F: CdrFields>(&mut self, f: &mut F) -> Result<(), CdrError> {
        self.header.fields(f)?;
        f.string("child_frame_id", &mut self.child_frame_id)?;
        f.f64s("transform.translation", &mut self.translation)?;
        f.f64s("transform.rotation", &mut self.rotation)
    }
}

/// `tf2_msgs/msg/TFMessage` (what `/tf` carries).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TfMessageMsg {
    pub transforms: Vec<TransformStampedMsg>,
}

impl CdrMessage for TfMessageMsg {
    fn fields<F: CdrFields>(&mut self, f: &mut F) -> Result<(), CdrError> {
        // A transform takes at least 72 bytes: stamp 8, two string lengths 8, 7 f64.
        f.sequence("transforms", &mut self.transforms, 72, |f, t| t.fields(f))
    }
}

/// `landmark_flow/msg/LandmarkBeliefArray`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LandmarkBeliefArrayMsg {
    pub header: Header,
    pub beliefs: Vec<LandmarkBeliefMsg>,
}

impl CdrMessage for LandmarkBeliefArrayMsg {
    fn fields<F: CdrFields>(&mut self, f: &mut F) -> Result<(), CdrError> {
        self.header.fields(f)?;
        // A belief takes at least 100 bytes (its fixed-size fields).
        f.sequence("beliefs", &mut self.beliefs, 100, |f, b| b.fields(f))
    }
}

/// `diagnostic_msgs/KeyValue` pairs of one `DiagnosticStatus`, with its level, name and
/// message (the node wraps it in a `DiagnosticArray` on `/diagnostics`).
#[derive(Debug, Clone, PartialEq)]
pub struct DiagnosticStatusMsg {
    pub stamp: Stamp,
    /// `DiagnosticStatus.OK` (0) or `WARN` (1).
    pub level: u8,
    pub name: String,
    pub message: String,
    /// What the status is about: the range sensor's frame (`localizer.sensor_frame_id`),
    /// or the node's name when any frame is accepted.
    pub hardware_id: String,
    pub values: Vec<(String, String)>,
}

/// `DiagnosticStatus.OK`.
pub const DIAGNOSTIC_OK: u8 = 0;
/// `DiagnosticStatus.WARN`.
pub const DIAGNOSTIC_WARN: u8 = 1;

/// What the RViz markers of one landmark show (the ROS layer draws them: mean sphere,
/// 2σ ellipses of the belief and of each component, last range ring, id text).
#[derive(Debug, Clone, PartialEq)]
pub struct LandmarkMarkers {
    pub landmark_id: String,
    /// Stable index of the landmark (marker ids are derived from it).
    pub index: i32,
    /// Moment-matched belief, metres / m².
    pub belief: GaussianBelief<2>,
    /// Mixture components (weight, belief).
    pub components: Vec<(f64, GaussianBelief<2>)>,
    /// Sensor position and range of the last fused range, metres.
    pub last_range: Option<(Vector2<f64>, f64)>,
    /// With `localizer.dimension: 3`: the 2σ ellipsoid of the (x, y, z) belief as an
    /// RViz SPHERE draws it (centre, orientation `[x, y, z, w]`, diameters, metres);
    /// the planar markers are then drawn at the mean height.
    pub ellipsoid: Option<([f64; 3], [f64; 4], [f64; 3])>,
}

/// `markers` (visualization_msgs/MarkerArray) as plain values.
#[derive(Debug, Clone, PartialEq)]
pub struct MarkersMsg {
    pub header: Header,
    /// Tracking landmarks only (an initialising one has no estimate to draw).
    pub landmarks: Vec<LandmarkMarkers>,
    /// Arrow from the robot to the current goal, metres.
    pub goal_arrow: Option<(Vector2<f64>, Vector2<f64>)>,
}

impl LandmarkMarkers {
    /// The markers of a track.
    pub fn from_track(id: &str, index: i32, track: &LandmarkTrack) -> Self {
        let s = &track.summary;
        Self {
            landmark_id: id.to_string(),
            index,
            belief: s.belief,
            components: s.components.iter().map(|c| (c.weight, c.belief)).collect(),
            last_range: track.last_range,
            ellipsoid: track.summary3.as_ref().and_then(|s3| {
                let (orientation, diameters) = ellipsoid_axes(&s3.belief.cov, 2.0)?;
                Some((position3_3d(&s3.belief.mean), orientation, diameters))
            }),
        }
    }
}

/// `criterion_heatmap` (nav_msgs/OccupancyGrid) as plain values: the planner's criterion
/// over its candidate grid.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatmapMsg {
    pub header: Header,
    pub grid: CriterionGrid,
}
