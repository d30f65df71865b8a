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
use cdr::{CdrError, CdrReader, CdrWriter};
use convert::{
    covariance3_row_major, pose_covariance6_row_major, pose_from_position_quaternion, position3, stamp_from_secs,
    stamp_secs, travel_yaw, yaw_quaternion_xyzw,
};
use nalgebra::{Isometry3, Vector2};

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

fn read_header(r: &mut CdrReader) -> Result<Header, CdrError> {
    let sec = r.i32("header.stamp.sec")?;
    let nanosec = r.u32("header.stamp.nanosec")?;
    let frame_id = r.string("header.frame_id")?;
    Ok(Header { stamp: Stamp { sec, nanosec }, frame_id })
}

fn write_header(w: &mut CdrWriter, h: &Header) {
    w.i32(h.stamp.sec);
    w.u32(h.stamp.nanosec);
    w.string(&h.frame_id);
}

/// A pose: position (x, y, z), metres; orientation quaternion (x, y, z, w).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pose {
    pub position: [f64; 3],
    pub orientation: [f64; 4],
}

fn read_pose(r: &mut CdrReader) -> Result<Pose, CdrError> {
    Ok(Pose { position: r.f64_array::<3>("pose.position")?, orientation: r.f64_array::<4>("pose.orientation")? })
}

fn write_pose(w: &mut CdrWriter, p: &Pose) {
    w.f64_slice(&p.position);
    w.f64_slice(&p.orientation);
}

/// The fields of `nav_msgs/msg/Odometry` the node uses (the twist is decoded, checked
/// for length, and dropped).
#[derive(Debug, Clone, PartialEq)]
pub struct OdometryMsg {
    pub header: Header,
    pub child_frame_id: String,
    pub pose: Pose,
}

impl OdometryMsg {
    /// Decodes a CDR `nav_msgs/msg/Odometry`.
    ///
    /// # Errors
    /// [`CdrError`] naming the field that does not fit.
    pub fn decode(data: &[u8]) -> Result<Self, CdrError> {
        let mut r = CdrReader::new(data)?;
        let header = read_header(&mut r)?;
        let child_frame_id = r.string("child_frame_id")?;
        let pose = read_pose(&mut r)?;
        r.f64_array::<36>("pose.covariance")?;
        r.f64_array::<6>("twist.twist")?;
        r.f64_array::<36>("twist.covariance")?;
        Ok(Self { header, child_frame_id, pose })
    }

    /// CDR encoding (zero twist and covariances); used to write test and benchmark bags.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = CdrWriter::new();
        write_header(&mut w, &self.header);
        w.string(&self.child_frame_id);
        write_pose(&mut w, &self.pose);
        w.f64_slice(&[0.0; 36]);
        w.f64_slice(&[0.0; 6]);
        w.f64_slice(&[0.0; 36]);
        w.into_bytes()
    }
}

/// `sensor_msgs/msg/Range` (Jazzy, with `variance`; a Humble message without it
/// decodes with `variance` 0, "unknown").
#[derive(Debug, Clone, PartialEq)]
pub struct RangeMsg {
    pub header: Header,
    pub radiation_type: u8,
    pub field_of_view: f32,
    pub min_range: f32,
    pub max_range: f32,
    pub range: f32,
    pub variance: f32,
}

impl RangeMsg {
    /// Decodes a CDR `sensor_msgs/msg/Range`.
    ///
    /// # Errors
    /// [`CdrError`] naming the field that does not fit.
    pub fn decode(data: &[u8]) -> Result<Self, CdrError> {
        let mut r = CdrReader::new(data)?;
        let header = read_header(&mut r)?;
        let radiation_type = r.u8("radiation_type")?;
        let field_of_view = r.f32("field_of_view")?;
        let min_range = r.f32("min_range")?;
        let max_range = r.f32("max_range")?;
        let range = r.f32("range")?;
        // Jazzy added `float32 variance`; older distributions end after `range`.
        let variance = if r.remaining() >= 4 { r.f32("variance")? } else { 0.0 };
        Ok(Self { header, radiation_type, field_of_view, min_range, max_range, range, variance })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = CdrWriter::new();
        write_header(&mut w, &self.header);
        w.u8(self.radiation_type);
        w.f32(self.field_of_view);
        w.f32(self.min_range);
        w.f32(self.max_range);
        w.f32(self.range);
        w.f32(self.variance);
        w.into_bytes()
    }
}

/// `landmark_flow/msg/RangeMeasurement`.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeMeasurementMsg {
    pub header: Header,
    pub landmark_id: String,
    /// Metres.
    pub range: f64,
    /// m² (0 = the node's default).
    pub variance: f64,
}

impl RangeMeasurementMsg {
    /// Decodes a CDR `landmark_flow/msg/RangeMeasurement`.
    ///
    /// # Errors
    /// [`CdrError`] naming the field that does not fit.
    pub fn decode(data: &[u8]) -> Result<Self, CdrError> {
        let mut r = CdrReader::new(data)?;
        let header = read_header(&mut r)?;
        let landmark_id = r.string("landmark_id")?;
        let range = r.f64("range")?;
        let variance = r.f64("variance")?;
        Ok(Self { header, landmark_id, range, variance })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = CdrWriter::new();
        write_header(&mut w, &self.header);
        w.string(&self.landmark_id);
        w.f64(self.range);
        w.f64(self.variance);
        w.into_bytes()
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

    pub fn encode(&self) -> Vec<u8> {
        let mut w = CdrWriter::new();
        write_header(&mut w, &self.header);
        write_pose(&mut w, &self.pose);
        w.f64_slice(&self.covariance);
        w.into_bytes()
    }

    /// # Errors
    /// [`CdrError`] naming the field that does not fit.
    pub fn decode(data: &[u8]) -> Result<Self, CdrError> {
        let mut r = CdrReader::new(data)?;
        let header = read_header(&mut r)?;
        let pose = read_pose(&mut r)?;
        let covariance = r.f64_array::<36>("pose.covariance")?;
        Ok(Self { header, pose, covariance })
    }
}

/// `geometry_msgs/msg/PoseStamped` of a goal: at the goal, facing away from the robot
/// (the node's `goal_pose`).
#[derive(Debug, Clone, PartialEq)]
pub struct PoseStampedMsg {
    pub header: Header,
    pub pose: Pose,
}

impl PoseStampedMsg {
    pub fn goal(header: Header, from: &Vector2<f64>, goal: &Vector2<f64>) -> Self {
        let pose = Pose { position: position3(goal), orientation: yaw_quaternion_xyzw(travel_yaw(from, goal)) };
        Self { header, pose }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = CdrWriter::new();
        write_header(&mut w, &self.header);
        write_pose(&mut w, &self.pose);
        w.into_bytes()
    }
}

/// One `landmark_flow/msg/GaussianComponent`.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianComponentMsg {
    pub weight: f64,
    pub mean: [f64; 3],
    pub covariance: [f64; 9],
}

/// `landmark_flow/msg/LandmarkBelief`, filled as the node fills it.
#[derive(Debug, Clone, PartialEq)]
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
            dimension: 2,
            mean: position3(&s.belief.mean),
            covariance: covariance3_row_major(&s.belief.cov),
            components: s
                .components
                .iter()
                .map(|c| GaussianComponentMsg {
                    weight: c.weight,
                    mean: position3(&c.belief.mean),
                    covariance: covariance3_row_major(&c.belief.cov),
                })
                .collect(),
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

    fn write(&self, w: &mut CdrWriter) {
        write_header(w, &self.header);
        w.string(&self.landmark_id);
        w.u8(self.state);
        w.u8(self.dimension);
        w.f64_slice(&self.mean);
        w.f64_slice(&self.covariance);
        w.u32(self.components.len() as u32);
        for c in &self.components {
            w.f64(c.weight);
            w.f64_slice(&c.mean);
            w.f64_slice(&c.covariance);
        }
        w.u32(self.measurements_fused);
        w.u32(self.measurements_rejected);
        w.u32(self.iterations);
        w.bool(self.converged);
        w.f64(self.update_latency_s);
        w.bool(self.calibration_estimated);
        w.f64(self.range_scale);
        w.f64(self.range_scale_variance);
        w.f64(self.range_offset_m);
        w.f64(self.range_offset_variance);
    }

    fn read(r: &mut CdrReader) -> Result<Self, CdrError> {
        let header = read_header(r)?;
        let landmark_id = r.string("landmark_id")?;
        let state = r.u8("state")?;
        let dimension = r.u8("dimension")?;
        let mean = r.f64_array::<3>("mean")?;
        let covariance = r.f64_array::<9>("covariance")?;
        let n = r.sequence_len("components", 13 * 8)?;
        let mut components = Vec::with_capacity(n);
        for _ in 0..n {
            components.push(GaussianComponentMsg {
                weight: r.f64("components.weight")?,
                mean: r.f64_array::<3>("components.mean")?,
                covariance: r.f64_array::<9>("components.covariance")?,
            });
        }
        Ok(Self {
            header,
            landmark_id,
            state,
            dimension,
            mean,
            covariance,
            components,
            measurements_fused: r.u32("measurements_fused")?,
            measurements_rejected: r.u32("measurements_rejected")?,
            iterations: r.u32("iterations")?,
            converged: r.bool("converged")?,
            update_latency_s: r.f64("update_latency_s")?,
            calibration_estimated: r.bool("calibration_estimated")?,
            range_scale: r.f64("range_scale")?,
            range_scale_variance: r.f64("range_scale_variance")?,
            range_offset_m: r.f64("range_offset_m")?,
            range_offset_variance: r.f64("range_offset_variance")?,
        })
    }
}

/// `landmark_flow/msg/LandmarkBeliefArray`.
#[derive(Debug, Clone, PartialEq)]
pub struct LandmarkBeliefArrayMsg {
    pub header: Header,
    pub beliefs: Vec<LandmarkBeliefMsg>,
}

impl LandmarkBeliefArrayMsg {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = CdrWriter::new();
        write_header(&mut w, &self.header);
        w.u32(self.beliefs.len() as u32);
        for b in &self.beliefs {
            b.write(&mut w);
        }
        w.into_bytes()
    }

    /// # Errors
    /// [`CdrError`] naming the field that does not fit.
    pub fn decode(data: &[u8]) -> Result<Self, CdrError> {
        let mut r = CdrReader::new(data)?;
        let header = read_header(&mut r)?;
        let n = r.sequence_len("beliefs", 100)?;
        let mut beliefs = Vec::with_capacity(n);
        for _ in 0..n {
            beliefs.push(LandmarkBeliefMsg::read(&mut r)?);
        }
        Ok(Self { header, beliefs })
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
