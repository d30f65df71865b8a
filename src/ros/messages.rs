//! Output messages built from core values. Pure functions: a belief in, a message out.
//! The numbers (covariance layouts, goal heading, ellipses) are [`crate::outputs`]';
//! here they are only copied into r2r's message types.

use crate::estimator::GaussianBelief;
use crate::localizer::LandmarkTrack;
use crate::outputs::{ellipse_points, pose_covariance6_row_major, travel_yaw, yaw_quaternion_xyzw};
use crate::planner::CriterionGrid;
use crate::replay::messages::{GaussianComponentMsg, LandmarkBeliefMsg};
use nalgebra::{Matrix2, Vector2};
use r2r::builtin_interfaces::msg::Time;
use r2r::geometry_msgs::msg::{Point, Pose, PoseStamped, PoseWithCovariance, PoseWithCovarianceStamped, Quaternion, Vector3};
use r2r::landmark_flow::msg::{GaussianComponent, LandmarkBelief};
use r2r::nav_msgs::msg::{MapMetaData, OccupancyGrid};
use r2r::std_msgs::msg::{ColorRGBA, Header};
use r2r::visualization_msgs::msg::Marker;

fn point(mean: &Vector2<f64>) -> Point {
    Point { x: mean.x, y: mean.y, z: 0.0 }
}

fn point3([x, y, z]: [f64; 3]) -> Point {
    Point { x, y, z }
}

/// A closed k-σ ellipse polygon ([`ellipse_points`]) as marker points.
fn ellipse_marker_points(mean: &Vector2<f64>, cov: &Matrix2<f64>, k: f64, segments: usize) -> Vec<Point> {
    ellipse_points(mean, cov, k, segments).iter().map(point).collect()
}

fn identity() -> Quaternion {
    Quaternion { x: 0.0, y: 0.0, z: 0.0, w: 1.0 }
}

/// PoseWithCovarianceStamped of a belief: position = μ (z = 0), identity orientation,
/// covariance [`pose_covariance6_row_major`].
pub fn pose_with_covariance(header: Header, belief: &GaussianBelief<2>) -> PoseWithCovarianceStamped {
    let covariance = pose_covariance6_row_major(&belief.cov).to_vec();
    PoseWithCovarianceStamped {
        header,
        pose: PoseWithCovariance { pose: Pose { position: point(&belief.mean), orientation: identity() }, covariance },
    }
}

/// The LandmarkBelief message of a track: [`LandmarkBeliefMsg::from_track`] (the
/// plain-value message the replayer writes) copied into r2r's type.
pub fn landmark_belief(header: Header, id: &str, track: &LandmarkTrack) -> LandmarkBelief {
    let v = LandmarkBeliefMsg::from_track(Default::default(), id, track);
    LandmarkBelief {
        header,
        landmark_id: v.landmark_id,
        state: v.state,
        dimension: v.dimension,
        mean: point3(v.mean),
        covariance: v.covariance.to_vec(),
        components: v
            .components
            .into_iter()
            .map(|GaussianComponentMsg { weight, mean, covariance }| GaussianComponent {
                weight,
                mean: point3(mean),
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

/// Goal pose: at `goal`, facing the direction of travel from `from` ([`travel_yaw`]).
pub fn goal_pose(header: Header, from: &Vector2<f64>, goal: &Vector2<f64>) -> PoseStamped {
    let [x, y, z, w] = yaw_quaternion_xyzw(travel_yaw(from, goal));
    PoseStamped { header, pose: Pose { position: point(goal), orientation: Quaternion { x, y, z, w } } }
}

fn color(r: f32, g: f32, b: f32, a: f32) -> ColorRGBA {
    ColorRGBA { r, g, b, a }
}

/// RViz markers of one landmark: mean (sphere), 2σ ellipse of the moment-matched
/// Gaussian and of each component, the last range ring, and the id as text.
pub fn landmark_markers(header: &Header, id: &str, index: i32, track: &LandmarkTrack) -> Vec<Marker> {
    let s = &track.summary;
    let base = |kind: i32, sub: i32| Marker {
        header: header.clone(),
        ns: format!("landmark/{id}"),
        id: index * 100 + sub,
        type_: kind,
        action: Marker::ADD as i32,
        pose: Pose { position: Point { x: 0.0, y: 0.0, z: 0.0 }, orientation: identity() },
        scale: Vector3 { x: 0.05, y: 0.05, z: 0.05 },
        color: color(0.1, 0.4, 1.0, 1.0),
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut mean = base(Marker::SPHERE as i32, 0);
    mean.pose.position = point(&s.belief.mean);
    mean.scale = Vector3 { x: 0.3, y: 0.3, z: 0.3 };
    out.push(mean);
    let mut ellipse = base(Marker::LINE_STRIP as i32, 1);
    ellipse.points = ellipse_marker_points(&s.belief.mean, &s.belief.cov, 2.0, 72);
    out.push(ellipse);
    let mut text = base(Marker::TEXT_VIEW_FACING as i32, 2);
    text.pose.position = Point { x: s.belief.mean.x, y: s.belief.mean.y, z: 0.6 };
    text.scale.z = 0.4;
    text.color = color(1.0, 1.0, 1.0, 1.0);
    text.text = id.to_string();
    out.push(text);
    if let Some((x, r)) = track.last_range {
        let mut ring = base(Marker::LINE_STRIP as i32, 3);
        ring.color = color(1.0, 0.6, 0.0, 0.6);
        ring.points = ellipse_marker_points(&x, &(Matrix2::identity() * r * r), 1.0, 90);
        out.push(ring);
    }
    for (k, c) in s.components.iter().enumerate().take(90) {
        let mut comp = base(Marker::LINE_STRIP as i32, 10 + k as i32);
        comp.color = color(0.6, 0.2, 0.9, (0.2 + 0.8 * c.weight) as f32);
        comp.points = ellipse_marker_points(&c.belief.mean, &c.belief.cov, 2.0, 36);
        out.push(comp);
    }
    out
}

/// Marker for the current goal (green arrow from the robot to the goal).
pub fn goal_marker(header: &Header, from: &Vector2<f64>, goal: &Vector2<f64>) -> Marker {
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

/// The planner's criterion as an OccupancyGrid (0–100 = min–max, −1 = not a candidate).
pub fn heatmap(header: Header, stamp: Time, grid: &CriterionGrid) -> OccupancyGrid {
    let c = &grid.candidates;
    let corner = grid.origin_corner_m();
    OccupancyGrid {
        header,
        info: MapMetaData {
            map_load_time: stamp,
            resolution: c.resolution_m as f32,
            width: c.width as u32,
            height: c.height as u32,
            origin: Pose { position: Point { x: corner.x, y: corner.y, z: 0.0 }, orientation: identity() },
        },
        data: grid.occupancy_percent(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_constant_is_the_messages() {
        assert_eq!(LandmarkBelief::STATE_TRACKING as u8, crate::outputs::STATE_TRACKING);
        assert_eq!(LandmarkBelief::STATE_INITIALISING as u8, crate::outputs::STATE_INITIALISING);
    }
}
