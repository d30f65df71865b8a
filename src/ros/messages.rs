//! r2r's message types ⇄ the package's plain message values ([`crate::msg`]). Copies
//! only: every number is computed in `crate::msg` or the node core.

use crate::msg::convert::ellipse_points;
use crate::msg::{
    DiagnosticStatusMsg, GaussianComponentMsg, Header as HeaderMsg, HeatmapMsg, LandmarkBeliefArrayMsg,
    LandmarkBeliefMsg, LandmarkMarkers, MarkersMsg, OdometryCorrectionMsg, OdometryMsg, Pose as PoseMsg,
    PoseStampedMsg, PoseWithCovarianceStampedMsg, RangeMeasurementMsg, RangeMsg, Stamp, TfMessageMsg, TransformStampedMsg,
};
use nalgebra::{Matrix2, Vector2};
use r2r::builtin_interfaces::msg::Time;
use r2r::diagnostic_msgs::msg::{DiagnosticArray, DiagnosticStatus, KeyValue};
use r2r::geometry_msgs::msg::{
    Point, Pose, PoseStamped, PoseWithCovariance, PoseWithCovarianceStamped, Quaternion, Transform, TransformStamped,
    Vector3,
};
use r2r::landmark_flow::msg::{GaussianComponent, LandmarkBelief, LandmarkBeliefArray, OdometryCorrection, RangeMeasurement};
use r2r::nav_msgs::msg::{MapMetaData, OccupancyGrid, Odometry};
use r2r::sensor_msgs::msg::Range;
use r2r::std_msgs::msg::{ColorRGBA, Header};
use r2r::tf2_msgs::msg::TFMessage;
use r2r::visualization_msgs::msg::{Marker, MarkerArray};

pub fn stamp_in(t: &Time) -> Stamp {
    Stamp { sec: t.sec, nanosec: t.nanosec }
}

pub fn stamp_out(s: Stamp) -> Time {
    Time { sec: s.sec, nanosec: s.nanosec }
}

fn header_in(h: &Header) -> HeaderMsg {
    HeaderMsg { stamp: stamp_in(&h.stamp), frame_id: h.frame_id.clone() }
}

fn header_out(h: &HeaderMsg) -> Header {
    Header { stamp: stamp_out(h.stamp), frame_id: h.frame_id.clone() }
}

fn pose_in(p: &Pose) -> PoseMsg {
    let (x, q) = (&p.position, &p.orientation);
    PoseMsg { position: [x.x, x.y, x.z], orientation: [q.x, q.y, q.z, q.w] }
}

fn pose_out(p: &PoseMsg) -> Pose {
    let ([x, y, z], [qx, qy, qz, qw]) = (p.position, p.orientation);
    Pose { position: Point { x, y, z }, orientation: Quaternion { x: qx, y: qy, z: qz, w: qw } }
}

/// `nav_msgs/Odometry` in.
pub fn odometry_in(m: &Odometry) -> OdometryMsg {
    let mut pose_covariance = [0.0; 36];
    // A malformed message may carry fewer than 36 values: the rest stays 0.
    for (c, v) in pose_covariance.iter_mut().zip(&m.pose.covariance) {
        *c = *v;
    }
    OdometryMsg {
        header: header_in(&m.header),
        child_frame_id: m.child_frame_id.clone(),
        pose: pose_in(&m.pose.pose),
        pose_covariance,
    }
}

/// `landmark_flow/RangeMeasurement` in.
pub fn range_measurement_in(m: &RangeMeasurement) -> RangeMeasurementMsg {
    RangeMeasurementMsg {
        header: header_in(&m.header),
        landmark_id: m.landmark_id.clone(),
        range: m.range,
        variance: m.variance,
    }
}

/// `sensor_msgs/Range` in.
pub fn range_in(m: &Range) -> RangeMsg {
    RangeMsg {
        header: header_in(&m.header),
        radiation_type: m.radiation_type,
        field_of_view: m.field_of_view,
        min_range: m.min_range,
        max_range: m.max_range,
        range: m.range,
        variance: m.variance,
    }
}

/// `landmarks/<id>/pose` and `robot_pose` out.
pub fn pose_with_covariance_out(m: &PoseWithCovarianceStampedMsg) -> PoseWithCovarianceStamped {
    PoseWithCovarianceStamped {
        header: header_out(&m.header),
        pose: PoseWithCovariance { pose: pose_out(&m.pose), covariance: m.covariance.to_vec() },
    }
}

/// `odometry_correction` out.
pub fn odometry_correction_out(m: &OdometryCorrectionMsg) -> OdometryCorrection {
    OdometryCorrection {
        header: header_out(&m.header),
        child_frame_id: m.child_frame_id.clone(),
        x_m: m.x_m,
        y_m: m.y_m,
        yaw_rad: m.yaw_rad,
        covariance: m.covariance.to_vec(),
        gyro_bias_rad_per_s: m.gyro_bias_rad_per_s,
        gyro_bias_variance: m.gyro_bias_variance,
    }
}

/// `/tf_static` (or `/tf`) in.
pub fn tf_message_in(m: &TFMessage) -> TfMessageMsg {
    TfMessageMsg {
        transforms: m
            .transforms
            .iter()
            .map(|t| {
                let (p, q) = (&t.transform.translation, &t.transform.rotation);
                TransformStampedMsg {
                    header: header_in(&t.header),
                    child_frame_id: t.child_frame_id.clone(),
                    translation: [p.x, p.y, p.z],
                    rotation: [q.x, q.y, q.z, q.w],
                }
            })
            .collect(),
    }
}

/// `/tf` out.
pub fn tf_message_out(m: &TfMessageMsg) -> TFMessage {
    TFMessage {
        transforms: m
            .transforms
            .iter()
            .map(|t| {
                let ([x, y, z], [qx, qy, qz, qw]) = (t.translation, t.rotation);
                TransformStamped {
                    header: header_out(&t.header),
                    child_frame_id: t.child_frame_id.clone(),
                    transform: Transform {
                        translation: Vector3 { x, y, z },
                        rotation: Quaternion { x: qx, y: qy, z: qz, w: qw },
                    },
                }
            })
            .collect(),
    }
}

/// `goal_pose` out.
pub fn pose_stamped_out(m: &PoseStampedMsg) -> PoseStamped {
    PoseStamped { header: header_out(&m.header), pose: pose_out(&m.pose) }
}

fn point3([x, y, z]: [f64; 3]) -> Point {
    Point { x, y, z }
}

fn landmark_belief_out(v: &LandmarkBeliefMsg) -> LandmarkBelief {
    LandmarkBelief {
        header: header_out(&v.header),
        landmark_id: v.landmark_id.clone(),
        state: v.state,
        dimension: v.dimension,
        mean: point3(v.mean),
        covariance: v.covariance.to_vec(),
        components: v
            .components
            .iter()
            .map(|GaussianComponentMsg { weight, mean, covariance }| GaussianComponent {
                weight: *weight,
                mean: point3(*mean),
                covariance: covariance.to_vec(),
            })
            .collect(),
        measurements_fused: v.measurements_fused,
        measurements_rejected: v.measurements_rejected,
        iterations: v.iterations,
        converged: v.converged,
        update_latency_s: v.update_latency_s,
        calibration_estimated: v.calibration_estimated,
        range_scale: v.range_scale,
        range_scale_variance: v.range_scale_variance,
        range_offset_m: v.range_offset_m,
        range_offset_variance: v.range_offset_variance,
    }
}

/// `landmark_beliefs` out.
pub fn landmark_belief_array_out(m: &LandmarkBeliefArrayMsg) -> LandmarkBeliefArray {
    LandmarkBeliefArray { header: header_out(&m.header), beliefs: m.beliefs.iter().map(landmark_belief_out).collect() }
}

/// `/diagnostics` out (one status).
pub fn diagnostics_out(m: &DiagnosticStatusMsg) -> DiagnosticArray {
    DiagnosticArray {
        header: Header { stamp: stamp_out(m.stamp), frame_id: String::new() },
        status: vec![DiagnosticStatus {
            level: m.level,
            name: m.name.clone(),
            message: m.message.clone(),
            hardware_id: m.hardware_id.clone(),
            values: m.values.iter().map(|(key, value)| KeyValue { key: key.clone(), value: value.clone() }).collect(),
        }],
    }
}

fn point(p: &Vector2<f64>) -> Point {
    Point { x: p.x, y: p.y, z: 0.0 }
}

/// A closed k-σ ellipse polygon ([`ellipse_points`]) as marker points.
fn ellipse_marker_points(mean: &Vector2<f64>, cov: &Matrix2<f64>, k: f64, segments: usize) -> Vec<Point> {
    ellipse_points(mean, cov, k, segments).iter().map(point).collect()
}

fn identity() -> Quaternion {
    Quaternion { x: 0.0, y: 0.0, z: 0.0, w: 1.0 }
}

fn color(r: f32, g: f32, b: f32, a: f32) -> ColorRGBA {
    ColorRGBA { r, g, b, a }
}

/// RViz markers of one landmark: mean (sphere), 2σ ellipse of the moment-matched
/// Gaussian and of each component, the last range ring, and the id as text.
fn landmark_markers(header: &Header, m: &LandmarkMarkers) -> Vec<Marker> {
    let base = |kind: i32, sub: i32| Marker {
        header: header.clone(),
        ns: format!("landmark/{}", m.landmark_id),
        id: m.index * 100 + sub,
        type_: kind,
        action: Marker::ADD as i32,
        pose: Pose { position: Point { x: 0.0, y: 0.0, z: 0.0 }, orientation: identity() },
        scale: Vector3 { x: 0.05, y: 0.05, z: 0.05 },
        color: color(0.1, 0.4, 1.0, 1.0),
        ..Default::default()
    };
    let b = &m.belief;
    let mut out = Vec::new();
    let mut mean = base(Marker::SPHERE as i32, 0);
    mean.pose.position = point(&b.mean);
    mean.scale = Vector3 { x: 0.3, y: 0.3, z: 0.3 };
    // A 3-D belief: everything at its mean height, and its 2σ ellipsoid (translucent).
    let height_m = m.ellipsoid.map_or(0.0, |(centre, ..)| centre[2]);
    mean.pose.position.z = height_m;
    out.push(mean);
    if let Some((centre, q, d)) = m.ellipsoid {
        let mut ellipsoid = base(Marker::SPHERE as i32, 4);
        ellipsoid.pose = Pose {
            position: Point { x: centre[0], y: centre[1], z: centre[2] },
            orientation: Quaternion { x: q[0], y: q[1], z: q[2], w: q[3] },
        };
        ellipsoid.scale = Vector3 { x: d[0], y: d[1], z: d[2] };
        ellipsoid.color = color(0.1, 0.4, 1.0, 0.25);
        out.push(ellipsoid);
    }
    let mut ellipse = base(Marker::LINE_STRIP as i32, 1);
    ellipse.points = ellipse_marker_points(&b.mean, &b.cov, 2.0, 72);
    ellipse.pose.position.z = height_m;
    out.push(ellipse);
    let mut text = base(Marker::TEXT_VIEW_FACING as i32, 2);
    text.pose.position = Point { x: b.mean.x, y: b.mean.y, z: height_m + 0.6 };
    text.scale.z = 0.4;
    text.color = color(1.0, 1.0, 1.0, 1.0);
    text.text = m.landmark_id.clone();
    out.push(text);
    if let Some((x, r)) = m.last_range {
        let mut ring = base(Marker::LINE_STRIP as i32, 3);
        ring.color = color(1.0, 0.6, 0.0, 0.6);
        ring.points = ellipse_marker_points(&x, &(Matrix2::identity() * r * r), 1.0, 90);
        out.push(ring);
    }
    for (k, (weight, c)) in m.components.iter().enumerate().take(90) {
        let mut comp = base(Marker::LINE_STRIP as i32, 10 + k as i32);
        comp.color = color(0.6, 0.2, 0.9, (0.2 + 0.8 * weight) as f32);
        comp.points = ellipse_marker_points(&c.mean, &c.cov, 2.0, 36);
        comp.pose.position.z = height_m;
        out.push(comp);
    }
    out
}

/// Marker for the current goal (green arrow from the robot to the goal).
fn goal_marker(header: &Header, from: &Vector2<f64>, goal: &Vector2<f64>) -> Marker {
    Marker {
        header: header.clone(),
        ns: "goal".into(),
        id: 0,
        type_: Marker::ARROW as i32,
        action: Marker::ADD as i32,
        pose: Pose { position: Point { x: 0.0, y: 0.0, z: 0.0 }, orientation: identity() },
        points: vec![point(from), point(goal)],
        scale: Vector3 { x: 0.05, y: 0.12, z: 0.15 },
        color: color(0.1, 0.9, 0.2, 1.0),
        ..Default::default()
    }
}

/// `markers` out.
pub fn markers_out(m: &MarkersMsg) -> MarkerArray {
    let header = header_out(&m.header);
    // DELETEALL first: each array replaces the last, so markers of components merged
    // away, of landmarks forgotten on reset, or of a goal reached do not linger.
    let clear = Marker { header: header.clone(), action: Marker::DELETEALL as i32, ..Default::default() };
    let mut markers: Vec<Marker> =
        std::iter::once(clear).chain(m.landmarks.iter().flat_map(|l| landmark_markers(&header, l))).collect();
    if let Some((from, goal)) = &m.goal_arrow {
        markers.push(goal_marker(&header, from, goal));
    }
    MarkerArray { markers }
}

/// `criterion_heatmap` out: the planner's criterion as an OccupancyGrid (0–100 =
/// min–max, −1 = not a candidate).
pub fn heatmap_out(m: &HeatmapMsg) -> OccupancyGrid {
    let c = &m.grid.candidates;
    let corner = m.grid.origin_corner_m();
    OccupancyGrid {
        header: header_out(&m.header),
        info: MapMetaData {
            map_load_time: stamp_out(m.header.stamp),
            resolution: c.resolution_m as f32,
            width: c.width as u32,
            height: c.height as u32,
            origin: Pose { position: Point { x: corner.x, y: corner.y, z: 0.0 }, orientation: identity() },
        },
        data: m.grid.occupancy_percent(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_constants_are_the_messages() {
        assert_eq!(LandmarkBelief::STATE_TRACKING as u8, crate::msg::STATE_TRACKING);
        assert_eq!(LandmarkBelief::STATE_INITIALISING as u8, crate::msg::STATE_INITIALISING);
        assert_eq!(DiagnosticStatus::OK as u8, crate::msg::DIAGNOSTIC_OK);
        assert_eq!(DiagnosticStatus::WARN as u8, crate::msg::DIAGNOSTIC_WARN);
    }
}
