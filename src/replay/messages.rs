//! The ROS 2 messages the replayer reads and writes, as plain Rust values with their
//! CDR encoding and their `ros2msg` definitions (what rosbag2 stores as the MCAP
//! schema, so `rosbags` and Foxglove can decode the output without our package).
//!
//! Field for field these are the messages the live node receives and publishes
//! (`src/bin/landmark_flow_node.rs`, `src/ros/messages.rs`); the conversions to and
//! from core values are the node's, in [`crate::inputs`] and [`crate::outputs`].

use super::cdr::{CdrError, CdrReader, CdrWriter};
use crate::estimator::GaussianBelief;
use crate::inputs::range_input_from_sensor_msgs_range;
use crate::localizer::{LandmarkTrack, RangeCalibration, RangeInput, TrackStatus};
use crate::outputs::{
    covariance3_row_major, pose_covariance6_row_major, pose_from_position_quaternion, position3, stamp_from_secs,
    stamp_secs, travel_yaw, yaw_quaternion_xyzw,
};
use nalgebra::{Isometry3, Vector2};

pub use crate::outputs::{topic_safe, STATE_INITIALISING, STATE_TRACKING, UNESTIMATED_ORIENTATION_VAR_RAD2};

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

/// Base pose in the odometry frame ([`pose_from_position_quaternion`]).
pub fn odometry_pose(msg: &OdometryMsg) -> Isometry3<f64> {
    pose_from_position_quaternion(msg.pose.position, msg.pose.orientation)
}

/// The node's conversion of `sensor_msgs/Range` ([`range_input_from_sensor_msgs_range`]).
pub fn range_input_from_range(msg: &RangeMsg, sensor_frame_id: &str) -> RangeInput {
    let h = &msg.header;
    range_input_from_sensor_msgs_range(h.stamp.secs(), &h.frame_id, msg.range, msg.variance, sensor_frame_id)
}

/// The node's conversion of `landmark_flow/RangeMeasurement` (field for field).
pub fn range_input_from_measurement(msg: &RangeMeasurementMsg) -> RangeInput {
    RangeInput {
        stamp_s: msg.header.stamp.secs(),
        frame_id: msg.header.frame_id.clone(),
        landmark_id: msg.landmark_id.clone(),
        range_m: msg.range,
        variance_m2: msg.variance,
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

/// ROS 2 type names as rosbag2 stores them.
pub mod type_names {
    pub const ODOMETRY: &str = "nav_msgs/msg/Odometry";
    pub const RANGE: &str = "sensor_msgs/msg/Range";
    pub const RANGE_MEASUREMENT: &str = "landmark_flow/msg/RangeMeasurement";
    pub const LANDMARK_BELIEF_ARRAY: &str = "landmark_flow/msg/LandmarkBeliefArray";
    pub const POSE_WITH_COVARIANCE_STAMPED: &str = "geometry_msgs/msg/PoseWithCovarianceStamped";
    pub const POSE_STAMPED: &str = "geometry_msgs/msg/PoseStamped";
}

const TIME: &str = "int32 sec\nuint32 nanosec\n";
const HEADER: &str = "builtin_interfaces/Time stamp\nstring frame_id\n";
const POINT: &str = "float64 x\nfloat64 y\nfloat64 z\n";
const VECTOR3: &str = "float64 x\nfloat64 y\nfloat64 z\n";
const QUATERNION: &str = "float64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1\n";
const POSE: &str = "Point position\nQuaternion orientation\n";
const POSE_WITH_COVARIANCE: &str = "Pose pose\nfloat64[36] covariance\n";
const TWIST: &str = "Vector3  linear\nVector3  angular\n";
const TWIST_WITH_COVARIANCE: &str = "Twist twist\nfloat64[36] covariance\n";

/// The full `ros2msg` definition of a type (its text, then each dependency after a
/// line of 80 `=` and `MSG: pkg/Type`, as rosbag2 writes MCAP schemas), or `None`
/// for a type the replayer does not know.
pub fn message_definition(type_name: &str) -> Option<String> {
    let (main, deps): (&str, &[(&str, &str)]) = match type_name {
        type_names::ODOMETRY => (
            "std_msgs/Header header\nstring child_frame_id\ngeometry_msgs/PoseWithCovariance pose\ngeometry_msgs/TwistWithCovariance twist\n",
            &[
                ("std_msgs/Header", HEADER),
                ("builtin_interfaces/Time", TIME),
                ("geometry_msgs/PoseWithCovariance", POSE_WITH_COVARIANCE),
                ("geometry_msgs/Pose", POSE),
                ("geometry_msgs/Point", POINT),
                ("geometry_msgs/Quaternion", QUATERNION),
                ("geometry_msgs/TwistWithCovariance", TWIST_WITH_COVARIANCE),
                ("geometry_msgs/Twist", TWIST),
                ("geometry_msgs/Vector3", VECTOR3),
            ],
        ),
        type_names::RANGE => (
            "uint8 ULTRASOUND=0\nuint8 INFRARED=1\nstd_msgs/Header header\nuint8 radiation_type\nfloat32 field_of_view\nfloat32 min_range\nfloat32 max_range\nfloat32 range\nfloat32 variance\n",
            &[("std_msgs/Header", HEADER), ("builtin_interfaces/Time", TIME)],
        ),
        type_names::RANGE_MEASUREMENT => (
            include_str!("../../msg/RangeMeasurement.msg"),
            &[("std_msgs/Header", HEADER), ("builtin_interfaces/Time", TIME)],
        ),
        type_names::LANDMARK_BELIEF_ARRAY => (
            include_str!("../../msg/LandmarkBeliefArray.msg"),
            &[
                ("std_msgs/Header", HEADER),
                ("builtin_interfaces/Time", TIME),
                ("landmark_flow/LandmarkBelief", include_str!("../../msg/LandmarkBelief.msg")),
                ("geometry_msgs/Point", POINT),
                ("landmark_flow/GaussianComponent", include_str!("../../msg/GaussianComponent.msg")),
            ],
        ),
        type_names::POSE_WITH_COVARIANCE_STAMPED => (
            "std_msgs/Header header\nPoseWithCovariance pose\n",
            &[
                ("std_msgs/Header", HEADER),
                ("builtin_interfaces/Time", TIME),
                ("geometry_msgs/PoseWithCovariance", POSE_WITH_COVARIANCE),
                ("geometry_msgs/Pose", POSE),
                ("geometry_msgs/Point", POINT),
                ("geometry_msgs/Quaternion", QUATERNION),
            ],
        ),
        type_names::POSE_STAMPED => (
            "std_msgs/Header header\nPose pose\n",
            &[
                ("std_msgs/Header", HEADER),
                ("builtin_interfaces/Time", TIME),
                ("geometry_msgs/Pose", POSE),
                ("geometry_msgs/Point", POINT),
                ("geometry_msgs/Quaternion", QUATERNION),
            ],
        ),
        _ => return None,
    };
    let mut text = main.trim_end().to_string();
    text.push('\n');
    for (name, body) in deps {
        text.push_str(&"=".repeat(80));
        text.push_str("\nMSG: ");
        text.push_str(name);
        text.push('\n');
        text.push_str(body.trim_end());
        text.push('\n');
    }
    Some(text)
}
