//! Output messages built from core values. Pure functions: a belief in, a message out.

use crate::estimator::GaussianBelief;
use crate::localizer::LandmarkTrack;
use crate::planner::CriterionGrid;
use nalgebra::{Matrix2, Vector2};
use r2r::builtin_interfaces::msg::Time;
use r2r::geometry_msgs::msg::{Point, Pose, PoseStamped, PoseWithCovariance, PoseWithCovarianceStamped, Quaternion, Vector3};
use r2r::landmark_flow::msg::{GaussianComponent, LandmarkBelief};
use r2r::nav_msgs::msg::{MapMetaData, OccupancyGrid};
use r2r::std_msgs::msg::{ColorRGBA, Header};
use r2r::visualization_msgs::msg::Marker;

/// Variance reported for the orientation of a landmark, which has none (rad²). A large
/// variance is the usual "not estimated" marker for PoseWithCovariance consumers; the
/// shipped RViz config hides orientation covariance.
pub const UNESTIMATED_ORIENTATION_VAR_RAD2: f64 = 1e6;

/// Row-major 3×3 (x, y, z) covariance with the 2-D block filled, m².
pub fn covariance3(cov: &Matrix2<f64>) -> Vec<f64> {
    vec![cov[(0, 0)], cov[(0, 1)], 0.0, cov[(1, 0)], cov[(1, 1)], 0.0, 0.0, 0.0, 0.0]
}

fn point(mean: &Vector2<f64>) -> Point {
    Point { x: mean.x, y: mean.y, z: 0.0 }
}

fn identity() -> Quaternion {
    Quaternion { x: 0.0, y: 0.0, z: 0.0, w: 1.0 }
}

/// PoseWithCovarianceStamped of a belief: position = μ (z = 0), identity orientation;
/// the 6×6 row-major covariance over (x, y, z, roll, pitch, yaw) holds Σ in its x–y
/// block, 0 for z (the estimate is planar), [`UNESTIMATED_ORIENTATION_VAR_RAD2`] on the
/// orientation diagonal.
pub fn pose_with_covariance(header: Header, belief: &GaussianBelief<2>) -> PoseWithCovarianceStamped {
    let mut covariance = vec![0.0; 36];
    covariance[0] = belief.cov[(0, 0)];
    covariance[1] = belief.cov[(0, 1)];
    covariance[6] = belief.cov[(1, 0)];
    covariance[7] = belief.cov[(1, 1)];
    for i in 3..6 {
        covariance[i * 6 + i] = UNESTIMATED_ORIENTATION_VAR_RAD2;
    }
    PoseWithCovarianceStamped {
        header,
        pose: PoseWithCovariance { pose: Pose { position: point(&belief.mean), orientation: identity() }, covariance },
    }
}

/// The LandmarkBelief message of a track.
pub fn landmark_belief(header: Header, id: &str, track: &LandmarkTrack) -> LandmarkBelief {
    let s = &track.summary;
    LandmarkBelief {
        header,
        landmark_id: id.to_string(),
        state: LandmarkBelief::STATE_TRACKING as u8,
        dimension: 2,
        mean: point(&s.belief.mean),
        covariance: covariance3(&s.belief.cov),
        components: s
            .components
            .iter()
            .map(|c| GaussianComponent { weight: c.weight, mean: point(&c.belief.mean), covariance: covariance3(&c.belief.cov) })
            .collect(),
        measurements_fused: track.measurements_fused,
        measurements_rejected: track.measurements_rejected,
        iterations: track.last_stats.iterations as u32,
        converged: track.last_stats.converged,
        update_latency_s: track.last_latency_s,
        calibration_estimated: false,
        range_scale: 1.0,
        range_scale_variance: 0.0,
        range_offset_m: 0.0,
        range_offset_variance: 0.0,
    }
}

/// Goal pose: at `goal`, facing away from `from` (the direction of travel).
pub fn goal_pose(header: Header, from: &Vector2<f64>, goal: &Vector2<f64>) -> PoseStamped {
    let d = goal - from;
    let yaw = if d.norm() > 1e-9 { d.y.atan2(d.x) } else { 0.0 };
    PoseStamped {
        header,
        pose: Pose { position: point(goal), orientation: Quaternion { x: 0.0, y: 0.0, z: (yaw / 2.0).sin(), w: (yaw / 2.0).cos() } },
    }
}

/// Points of the k-σ ellipse of a 2×2 covariance around `mean` (closed polygon).
pub fn ellipse_points(mean: &Vector2<f64>, cov: &Matrix2<f64>, k: f64, segments: usize) -> Vec<Point> {
    let eig = nalgebra::SymmetricEigen::new(*cov);
    let axes = eig.eigenvectors;
    let radii = eig.eigenvalues.map(|l| k * l.max(0.0).sqrt());
    (0..=segments)
        .map(|i| {
            let a = std::f64::consts::TAU * i as f64 / segments as f64;
            let p = mean + axes.column(0) * radii[0] * a.cos() + axes.column(1) * radii[1] * a.sin();
            point(&p)
        })
        .collect()
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
    ellipse.points = ellipse_points(&s.belief.mean, &s.belief.cov, 2.0, 72);
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
        ring.points = ellipse_points(&x, &(Matrix2::identity() * r * r), 1.0, 90);
        out.push(ring);
    }
    for (k, c) in s.components.iter().enumerate().take(90) {
        let mut comp = base(Marker::LINE_STRIP as i32, 10 + k as i32);
        comp.color = color(0.6, 0.2, 0.9, (0.2 + 0.8 * c.weight) as f32);
        comp.points = ellipse_points(&c.belief.mean, &c.belief.cov, 2.0, 36);
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

/// A topic-name-safe version of a landmark id ([A-Za-z0-9_], not starting with a digit).
pub fn topic_safe(id: &str) -> String {
    let mut s: String = id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "id_");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pose_covariance_layout_is_row_major_6x6() {
        let b = GaussianBelief::new(Vector2::new(1.0, 2.0), Matrix2::new(4.0, 0.5, 0.5, 9.0)).unwrap();
        let m = pose_with_covariance(Header::default(), &b);
        let c = &m.pose.covariance;
        assert_eq!((c[0], c[1], c[6], c[7]), (4.0, 0.5, 0.5, 9.0));
        assert_eq!(c[14], 0.0);
        assert_eq!(c[21], UNESTIMATED_ORIENTATION_VAR_RAD2);
        assert_eq!(c[35], UNESTIMATED_ORIENTATION_VAR_RAD2);
        assert_eq!(c.iter().filter(|v| **v != 0.0).count(), 7);
    }

    #[test]
    fn ellipse_is_the_two_sigma_contour() {
        let mean = Vector2::new(1.0, -1.0);
        let cov = Matrix2::new(4.0, 1.0, 1.0, 2.0);
        let inv = cov.try_inverse().unwrap();
        for p in ellipse_points(&mean, &cov, 2.0, 16) {
            let d = Vector2::new(p.x, p.y) - mean;
            assert!(((d.transpose() * inv * d)[(0, 0)] - 4.0).abs() < 1e-9);
        }
    }

    #[test]
    fn topic_safe_ids() {
        assert_eq!(topic_safe("beacon-1"), "beacon_1");
        assert_eq!(topic_safe("5"), "id_5");
        assert_eq!(topic_safe("a_b"), "a_b");
    }
}
