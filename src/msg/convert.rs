//! The numbers inside the messages, computed once: stamp conversion, the odometry
//! pose, the covariance layouts of `LandmarkBelief` and `PoseWithCovarianceStamped`,
//! the goal's heading, topic names, and covariance ellipses. Plain numbers and
//! nalgebra types in and out.

use nalgebra::{Isometry3, Matrix2, Matrix3, Quaternion, Rotation3, Translation3, UnitQuaternion, Vector2, Vector3};

/// `builtin_interfaces/Time` (sec, nanosec) → seconds: `sec + nanosec · 1e-9`.
pub fn stamp_secs(sec: i32, nanosec: u32) -> f64 {
    sec as f64 + nanosec as f64 * 1e-9
}

/// Seconds → `builtin_interfaces/Time` (sec, nanosec), rounded to the nanosecond;
/// `nanosec` is always in `0..1e9` (negative times count down from `sec`).
pub fn stamp_from_secs(s: f64) -> (i32, u32) {
    // Saturates at the ends of `builtin_interfaces/Time` (a stamp never wraps around to
    // a negative `sec`); NaN gives 0.
    const MAX_NS: i64 = i32::MAX as i64 * 1_000_000_000 + 999_999_999;
    const MIN_NS: i64 = i32::MIN as i64 * 1_000_000_000;
    let total_ns = ((s * 1e9).round() as i64).clamp(MIN_NS, MAX_NS);
    (total_ns.div_euclid(1_000_000_000) as i32, total_ns.rem_euclid(1_000_000_000) as u32)
}

/// A pose from `geometry_msgs/Pose` fields: position (x, y, z), metres, and
/// orientation quaternion `[x, y, z, w]`, normalised. No validation here: a non-finite
/// pose (or a zero quaternion, which normalises to NaN) stays non-finite and is
/// rejected and counted by the core (`landmark_flow::odometry::is_finite_pose`).
///
/// The quaternion is first divided by its largest |component|, so that its norm can
/// neither underflow nor overflow: q·1e-200 (whose squares underflow to 0) would
/// otherwise normalise to NaN, and q·1e200 (whose squared norm overflows) to the zero
/// quaternion, a "finite" rotation that is not one (the fuzz test found both).
pub fn pose_from_position_quaternion(position: [f64; 3], orientation_xyzw: [f64; 4]) -> Isometry3<f64> {
    let [x, y, z] = position;
    let largest = orientation_xyzw.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let [qx, qy, qz, qw] = orientation_xyzw.map(|v| v / largest);
    Isometry3::from_parts(
        Translation3::new(x, y, z),
        UnitQuaternion::new_unchecked(Quaternion::new(qw, qx, qy, qz).normalize()),
    )
}

/// Variance reported for the orientation of a landmark, which has none (rad²). A large
/// variance is the usual "not estimated" marker for PoseWithCovariance consumers; the
/// shipped RViz config hides orientation covariance.
pub const UNESTIMATED_ORIENTATION_VAR_RAD2: f64 = 1e6;

/// `LandmarkBelief.STATE_INITIALISING` (msg/LandmarkBelief.msg).
pub const STATE_INITIALISING: u8 = 0;
/// `LandmarkBelief.STATE_TRACKING` (msg/LandmarkBelief.msg).
pub const STATE_TRACKING: u8 = 1;

/// A planar covariance as an (x, y, z) one: the 2×2 block, zero z row and column, m².
pub fn planar_in_3d(cov: &Matrix2<f64>) -> Matrix3<f64> {
    let mut c = Matrix3::zeros();
    c.fixed_view_mut::<2, 2>(0, 0).copy_from(cov);
    c
}

/// Row-major 3×3 (x, y, z) covariance with the planar 2×2 block filled, m².
pub fn covariance3_row_major(cov: &Matrix2<f64>) -> [f64; 9] {
    covariance3_full_row_major(&planar_in_3d(cov))
}

/// Row-major 3×3 (x, y, z) covariance of a 3-D belief, m².
pub fn covariance3_full_row_major(cov: &Matrix3<f64>) -> [f64; 9] {
    let mut c = [0.0; 9];
    for (k, v) in c.iter_mut().enumerate() {
        *v = cov[(k / 3, k % 3)];
    }
    c
}

/// [`pose_covariance6_row_major`] of a 3-D belief: Σ in the (x, y, z) block.
pub fn pose_covariance6_row_major_3d(cov: &Matrix3<f64>) -> [f64; 36] {
    let mut c = [0.0; 36];
    for i in 0..3 {
        for j in 0..3 {
            c[i * 6 + j] = cov[(i, j)];
        }
        c[(i + 3) * 6 + i + 3] = UNESTIMATED_ORIENTATION_VAR_RAD2;
    }
    c
}

/// The k-σ ellipsoid of a 3×3 covariance as an RViz SPHERE marker takes it: the
/// orientation `[x, y, z, w]` whose rotation's columns are Σ's eigenvectors (a proper
/// rotation: the third is the cross product of the first two) and the diameters 2k√λᵢ
/// along them, metres. A negative eigenvalue counts as 0; `None` for a non-finite Σ.
pub fn ellipsoid_axes(cov: &Matrix3<f64>, k: f64) -> Option<([f64; 4], [f64; 3])> {
    if !cov.iter().all(|v| v.is_finite()) {
        return None;
    }
    let eig = nalgebra::SymmetricEigen::new(*cov);
    let (a, b) = (eig.eigenvectors.column(0).into_owned(), eig.eigenvectors.column(1).into_owned());
    let axes = Matrix3::from_columns(&[a, b, a.cross(&b)]);
    let q = UnitQuaternion::from_rotation_matrix(&Rotation3::from_matrix_unchecked(axes));
    let diameters = eig.eigenvalues.map(|l| 2.0 * k * l.max(0.0).sqrt());
    Some(([q.i, q.j, q.k, q.w], [diameters[0], diameters[1], diameters[2]]))
}

/// Row-major 6×6 covariance over (x, y, z, roll, pitch, yaw) of a landmark pose:
/// Σ in the x–y block, 0 for z (the estimate is planar),
/// [`UNESTIMATED_ORIENTATION_VAR_RAD2`] on the orientation diagonal.
pub fn pose_covariance6_row_major(cov: &Matrix2<f64>) -> [f64; 36] {
    pose_covariance6_row_major_3d(&planar_in_3d(cov))
}

/// A planar point as a message position (z = 0).
pub fn position3(p: &Vector2<f64>) -> [f64; 3] {
    [p.x, p.y, 0.0]
}

/// A 3-D point as a message position.
pub fn position3_3d(p: &Vector3<f64>) -> [f64; 3] {
    [p.x, p.y, p.z]
}

/// Heading of the goal pose: the direction of travel from `from` to `goal`, rad
/// (0 when they coincide).
pub fn travel_yaw(from: &Vector2<f64>, goal: &Vector2<f64>) -> f64 {
    let d = goal - from;
    if d.norm() > 1e-9 {
        d.y.atan2(d.x)
    } else {
        0.0
    }
}

/// Quaternion `[x, y, z, w]` of a rotation by `yaw` about z.
pub fn yaw_quaternion_xyzw(yaw: f64) -> [f64; 4] {
    [0.0, 0.0, (yaw / 2.0).sin(), (yaw / 2.0).cos()]
}

/// The topic-name token of a landmark id (`landmarks/<token>/pose`), one-to-one: an id
/// that is already a ROS name token (a letter, then letters, digits and single
/// underscores, not ending in one) and does not start with `x_` is its own token; any
/// other id becomes `x_` and the lowercase hex of its UTF-8 bytes (`a-b` → `x_612d62`,
/// `a.b` → `x_612e62`). Two ids never share a topic.
pub fn topic_safe(id: &str) -> String {
    let is_token = id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !id.contains("__")
        && !id.ends_with('_');
    if is_token && !id.starts_with("x_") {
        return id.to_string();
    }
    let mut s = String::from("x_");
    for b in id.bytes() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Points of the k-σ ellipse of a 2×2 covariance around `mean` (closed polygon of
/// `segments + 1` points). A negative eigenvalue counts as 0; a non-finite mean or
/// covariance gives no points.
pub fn ellipse_points(mean: &Vector2<f64>, cov: &Matrix2<f64>, k: f64, segments: usize) -> Vec<Vector2<f64>> {
    if !mean.iter().chain(cov.iter()).all(|v| v.is_finite()) || segments == 0 {
        return Vec::new();
    }
    let eig = nalgebra::SymmetricEigen::new(*cov);
    let axes = eig.eigenvectors;
    let radii = eig.eigenvalues.map(|l| k * l.max(0.0).sqrt());
    (0..=segments)
        .map(|i| {
            let a = std::f64::consts::TAU * i as f64 / segments as f64;
            mean + axes.column(0) * radii[0] * a.cos() + axes.column(1) * radii[1] * a.sin()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ellipsoid's rotation R and diameters D rebuild Σ: R diag((D/2k)²) Rᵀ = Σ,
    /// and R is a proper rotation (the quaternion is a unit one).
    #[test]
    fn ellipsoid_axes_rebuild_the_covariance() {
        let cov = Matrix3::new(4.0, 0.5, -0.3, 0.5, 9.0, 1.2, -0.3, 1.2, 2.5);
        let (q, d) = ellipsoid_axes(&cov, 2.0).unwrap();
        let q = UnitQuaternion::from_quaternion(Quaternion::new(q[3], q[0], q[1], q[2]));
        let r = q.to_rotation_matrix().into_inner();
        let lambda = Matrix3::from_diagonal(&Vector3::new(d[0], d[1], d[2]).map(|x| (x / 4.0).powi(2)));
        let rebuilt = r * lambda * r.transpose();
        assert!((rebuilt - cov).amax() < 1e-9, "{rebuilt} vs {cov}");
        assert!(ellipsoid_axes(&Matrix3::from_element(f64::NAN), 2.0).is_none());
        let full = covariance3_full_row_major(&cov);
        assert_eq!((full[1], full[5], full[6]), (0.5, 1.2, -0.3));
        let pose = pose_covariance6_row_major_3d(&cov);
        assert_eq!((pose[2], pose[14], pose[21]), (-0.3, 2.5, UNESTIMATED_ORIENTATION_VAR_RAD2));
    }

    #[test]
    fn stamps_round_trip() {
        for s in [0.0, 1.5, 1234567.000000001, 3856.857346058] {
            let (sec, nanosec) = stamp_from_secs(s);
            assert!((stamp_secs(sec, nanosec) - s).abs() < 1e-9, "{s}");
            assert!(nanosec < 1_000_000_000);
        }
        assert_eq!(stamp_from_secs(-0.25), (-1, 750_000_000));
        // The largest stamp a message can carry (issue 12: it wrapped to a negative sec).
        let max = stamp_secs(i32::MAX, 999_999_999);
        assert_eq!(stamp_from_secs(max), (i32::MAX, 999_999_999));
        assert_eq!(stamp_from_secs(max + 1e6), (i32::MAX, 999_999_999));
        assert_eq!(stamp_from_secs(-1e12), (i32::MIN, 0));
    }

    #[test]
    fn pose_quaternion_is_normalised_and_a_zero_one_stays_nan() {
        let p = pose_from_position_quaternion([1.0, 2.0, 0.5], [0.0, 0.0, 1.2, 1.6]);
        assert!((p.rotation.angle() - 2.0 * 0.6f64.atan2(0.8)).abs() < 1e-12);
        assert_eq!(p.translation.vector, nalgebra::Vector3::new(1.0, 2.0, 0.5));
        let zero = pose_from_position_quaternion([0.0; 3], [0.0; 4]);
        assert!(zero.rotation.coords.iter().all(|v| v.is_nan()));
        for bad in [[f64::NAN, 0.0, 0.0, 1.0], [0.0, 0.0, f64::INFINITY, 1.0]] {
            assert!(!pose_from_position_quaternion([0.0; 3], bad).rotation.coords.iter().all(|v| v.is_finite()), "{bad:?}");
        }
    }

    /// A quaternion scaled by 1e-200 or 1e200 is the same rotation (regression: its
    /// squared norm underflowed to NaN, or overflowed to the zero quaternion).
    #[test]
    fn pose_quaternion_of_extreme_scale_is_the_same_rotation() {
        let q = [0.0, 0.0, 0.6, 0.8];
        let reference = pose_from_position_quaternion([0.0; 3], q).rotation;
        for scale in [1e-200, 1e-310, 1e200, 1e300, -1.0] {
            let r = pose_from_position_quaternion([0.0; 3], q.map(|v| v * scale)).rotation;
            assert!(r.coords.iter().all(|v| v.is_finite()), "{scale}");
            assert!(r.angle_to(&reference) < 1e-12, "{scale}: {r:?}");
        }
    }

    #[test]
    fn pose_covariance_layout_is_row_major_6x6() {
        let c = pose_covariance6_row_major(&Matrix2::new(4.0, 0.5, 0.5, 9.0));
        assert_eq!((c[0], c[1], c[6], c[7]), (4.0, 0.5, 0.5, 9.0));
        assert_eq!(c[14], 0.0);
        assert_eq!(c[21], UNESTIMATED_ORIENTATION_VAR_RAD2);
        assert_eq!(c[35], UNESTIMATED_ORIENTATION_VAR_RAD2);
        assert_eq!(c.iter().filter(|v| **v != 0.0).count(), 7);
        assert_eq!(
            covariance3_row_major(&Matrix2::new(4.0, 0.5, 0.5, 9.0)),
            [4.0, 0.5, 0.0, 0.5, 9.0, 0.0, 0.0, 0.0, 0.0]
        );
    }

    #[test]
    fn goal_faces_the_direction_of_travel() {
        let yaw = travel_yaw(&Vector2::new(1.0, 1.0), &Vector2::new(1.0, 3.0));
        assert!((yaw - std::f64::consts::FRAC_PI_2).abs() < 1e-12);
        assert_eq!(travel_yaw(&Vector2::new(1.0, 1.0), &Vector2::new(1.0, 1.0)), 0.0);
        let [x, y, z, w] = yaw_quaternion_xyzw(yaw);
        assert_eq!((x, y), (0.0, 0.0));
        assert!((z - 0.5f64.sqrt()).abs() < 1e-12 && (w - 0.5f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn ellipse_is_the_two_sigma_contour() {
        let mean = Vector2::new(1.0, -1.0);
        let cov = Matrix2::new(4.0, 1.0, 1.0, 2.0);
        let inv = cov.try_inverse().unwrap();
        let points = ellipse_points(&mean, &cov, 2.0, 16);
        assert_eq!(points.len(), 17);
        for p in points {
            let d = p - mean;
            assert!(((d.transpose() * inv * d)[(0, 0)] - 4.0).abs() < 1e-9);
        }
        assert!(ellipse_points(&mean, &Matrix2::new(f64::NAN, 0.0, 0.0, 1.0), 2.0, 16).is_empty());
    }

    #[test]
    fn topic_tokens_of_ids_are_one_to_one() {
        assert_eq!(topic_safe("beacon_1"), "beacon_1");
        assert_eq!(topic_safe("beacon-1"), "x_626561636f6e2d31");
        assert_eq!(topic_safe("5"), "x_35");
        assert_eq!(topic_safe("x_35"), "x_785f3335", "a token that looks encoded is encoded");
        assert_eq!(topic_safe(""), "x_");
        // The ids of the hostile-input report: each its own topic.
        let ids = ["a-b", "a.b", "a_b", "信标", "🛰️", "a__b", "a_", "x_612d62", "L0", "L0\0xyz", "5", "x_35"];
        let tokens: std::collections::BTreeSet<_> = ids.iter().map(|i| topic_safe(i)).collect();
        assert_eq!(tokens.len(), ids.len(), "{tokens:?}");
        for t in &tokens {
            let valid = t.starts_with(|c: char| c.is_ascii_alphabetic())
                && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !t.contains("__");
            assert!(valid, "{t} is not a ROS name token");
        }
    }
}
