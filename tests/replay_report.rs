//! Report math against values worked out by hand.

use landmark_flow::estimator::GaussianBelief;
use landmark_flow::replay::report::{nees, time_to_reach, GroundTruth, LandmarkReport, LandmarkSeries, Reach, ReportBuilder};
use nalgebra::{Matrix2, Matrix3, Vector2, Vector3};

#[test]
fn nees_closed_forms() {
    // Σ = diag(4, 1), e = (2, 1): 2²/4 + 1²/1 = 2.
    let v = nees(&Vector2::new(3.0, 1.0), &Matrix2::new(4.0, 0.0, 0.0, 1.0), &Vector2::new(1.0, 0.0)).unwrap();
    assert!((v - 2.0).abs() < 1e-12);
    // Correlated: Σ = [[2, 1], [1, 2]], Σ⁻¹ = [[2, −1], [−1, 2]] / 3; e = (1, 1): (2 − 1 − 1 + 2)/3 = 2/3.
    let v = nees(&Vector2::new(1.0, 1.0), &Matrix2::new(2.0, 1.0, 1.0, 2.0), &Vector2::zeros()).unwrap();
    assert!((v - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(nees(&Vector2::zeros(), &Matrix2::new(1.0, 2.0, 2.0, 1.0), &Vector2::zeros()), None, "not SPD");
    // 3-D, Σ = diag(1, 4, 0.25), e = (1, 2, 0.5): 1 + 1 + 1 = 3.
    let v = nees(&Vector3::new(1.0, 2.0, 0.5), &Matrix3::from_diagonal(&Vector3::new(1.0, 4.0, 0.25)), &Vector3::zeros()).unwrap();
    assert!((v - 3.0).abs() < 1e-12);
}

#[test]
fn time_to_reach_first_and_settled() {
    let t = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
    let e = [3.0, 0.9, 1.2, 0.8, 0.4, 0.6];
    assert_eq!(time_to_reach(&t, &e, 1.0), Reach { first_below_s: Some(1.0), settled_s: Some(3.0) });
    // Below 0.5 only at t = 4, then back above: never settled.
    assert_eq!(time_to_reach(&t, &e, 0.5), Reach { first_below_s: Some(4.0), settled_s: None });
    assert_eq!(time_to_reach(&t, &e, 10.0), Reach { first_below_s: Some(0.0), settled_s: Some(0.0) });
    assert_eq!(time_to_reach(&t, &e, 0.1), Reach { first_below_s: None, settled_s: None });
    assert_eq!(time_to_reach(&[], &[], 1.0), Reach { first_below_s: None, settled_s: None });
    // A NaN error is never "below".
    assert_eq!(time_to_reach(&[0.0, 1.0], &[0.1, f64::NAN], 1.0).settled_s, None);
}

#[test]
fn ground_truth_formats_and_errors() {
    let plaza = "dataset: Plaza1\nbeacons:\n  beacon_0:\n    id: 0\n    x: -46.6\n    y: 11.0\n  beacon_1: {id: 1, x: 11.0, y: -6.9}\n";
    let gt = GroundTruth::from_yaml(plaza, "gt.yaml").unwrap();
    assert_eq!(gt.landmarks["beacon_0"], Vector2::new(-46.6, 11.0));
    assert_eq!(gt.landmarks.len(), 2);
    let list = GroundTruth::from_yaml("landmarks:\n  a: [1.0, 2.0]\n  5: [3, 4]\n", "gt.yaml").unwrap();
    assert_eq!(list.landmarks["5"], Vector2::new(3.0, 4.0));
    let e = GroundTruth::from_yaml("beacons:\n  a: {x: 1.0}\n", "gt.yaml").unwrap_err().to_string();
    assert!(e.contains("gt.yaml") && e.contains("`a`"), "{e}");
    let e = GroundTruth::from_yaml("foo: 1\n", "gt.yaml").unwrap_err().to_string();
    assert!(e.contains("beacons"), "{e}");
    let e = GroundTruth::from_yaml("beacons:\n  a: {x: .nan, y: 0}\n", "gt.yaml").unwrap_err().to_string();
    assert!(e.contains("finite"), "{e}");
}

#[test]
fn landmark_report_averages() {
    let gt = GroundTruth::from_yaml("beacons:\n  a: {x: 0.0, y: 0.0}\n", "gt").unwrap();
    let mut b = ReportBuilder::new(Some(gt.clone()), 100.0);
    let cov = Matrix2::identity();
    // NEES = ‖e‖² with Σ = I: 9, 1, 0.25 → ANEES 10.25/3; 2 of 3 within 5.991.
    for (t, x) in [(101.0, 3.0), (102.0, 1.0), (104.0, 0.5)] {
        let s = b.add_belief(t, "a", &GaussianBelief { mean: Vector2::new(x, 0.0), cov }, None);
        assert_eq!((s.height, s.vertical_error_m, s.nees3), (None, None, None), "a planar belief");
        assert!((s.error_m.unwrap() - x).abs() < 1e-12);
    }
    b.add_rejected("a");
    let r = LandmarkReport::from_series("a", &b.landmarks["a"], gt.landmarks.get("a"), None, 4.0);
    assert_eq!(r.fused, 3);
    assert_eq!(r.rejected, 1);
    assert!((r.anees.unwrap() - 10.25 / 3.0).abs() < 1e-12);
    assert!((r.nees_within_95_fraction.unwrap() - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(r.final_error_m, Some(0.5));
    assert_eq!(r.final_trace_m2, Some(2.0));
    assert_eq!(r.reach_1m, Reach { first_below_s: Some(4.0), settled_s: Some(4.0) });
    // Times are relative to the bag start (100 s): 1 m is reached at 104 − 100 = 4 s.
    assert_eq!(r.over_time[2].time_s, 2.0);
    assert_eq!(r.over_time[2].error_m, Some(1.0), "at 50 % (2 s) the last update is the one at 2 s");
    let empty = LandmarkReport::from_series("z", &LandmarkSeries::default(), None, None, 1.0);
    assert_eq!((empty.fused, empty.anees, empty.final_error_m), (0, None, None));
}

/// Points rotated by 30° and shifted align exactly; one point moved by d after that
/// leaves the closed-form Procrustes residual (for three points at the corners of a
/// right isosceles triangle and a displacement d along x of one of them, computed
/// here by brute force over the rotation angle).
#[test]
fn rigid_alignment_removes_rotation_and_translation_only() {
    use landmark_flow::replay::report::rigid_aligned_rmse;
    use nalgebra::{Rotation2, Vector2};
    let truth = [Vector2::new(0.0, 0.0), Vector2::new(10.0, 0.0), Vector2::new(0.0, 10.0)];
    let r = Rotation2::new(0.5236);
    let moved: Vec<_> = truth.iter().map(|y| (r * y + Vector2::new(3.0, -2.0), *y)).collect();
    assert!(rigid_aligned_rmse(&moved).unwrap() < 1e-9);
    assert!(rigid_aligned_rmse(&moved[..1]).is_none());
    let mut bent = moved.clone();
    bent[1].0 += r * Vector2::new(0.6, 0.0);
    // Brute force: the best angle and the centroid translation, by a fine search.
    let best = (0..200_001)
        .map(|k| {
            let a = -0.6 + 1.2 * k as f64 / 200_000.0;
            let rot = Rotation2::new(a);
            let n = bent.len() as f64;
            let ce = bent.iter().map(|(e, _)| e).sum::<Vector2<f64>>() / n;
            let cy = bent.iter().map(|(_, y)| y).sum::<Vector2<f64>>() / n;
            (bent.iter().map(|(e, y)| (rot * (e - ce) + cy - y).norm_squared()).sum::<f64>() / n).sqrt()
        })
        .fold(f64::INFINITY, f64::min);
    let got = rigid_aligned_rmse(&bent).unwrap();
    assert!((got - best).abs() < 1e-6, "{got} vs {best}");
    assert!(got > 0.1);
}

/// The true path is interpolated linearly (heading along the shorter arc, across ±π),
/// and the path errors are the plain RMSE / max / final of hand-made offsets.
#[test]
fn true_path_interpolation_and_path_errors() {
    use landmark_flow::replay::path::{PathErrors, TruePath};
    use nalgebra::{Isometry2, Matrix3, Vector2};
    let pi = std::f64::consts::PI;
    let path = TruePath::from_poses(vec![
        (2.0, Isometry2::new(Vector2::new(2.0, 0.0), pi - 0.1)),
        (1.0, Isometry2::new(Vector2::new(0.0, 0.0), 0.0)),
        (3.0, Isometry2::new(Vector2::new(2.0, 4.0), -pi + 0.1)),
    ]);
    assert!(path.at(0.5).is_none() && path.at(3.5).is_none());
    let mid = path.at(1.5).unwrap();
    assert!((mid.translation.vector - Vector2::new(1.0, 0.0)).norm() < 1e-12);
    assert!((mid.rotation.angle() - (pi - 0.1) / 2.0).abs() < 1e-12);
    // From π − 0.1 to −π + 0.1 the short way passes through π.
    let wrap = path.at(2.5).unwrap();
    assert!((wrap.translation.vector - Vector2::new(2.0, 2.0)).norm() < 1e-12);
    assert!((wrap.rotation.angle().abs() - pi).abs() < 1e-9, "{}", wrap.rotation.angle());
    let mut errors = PathErrors::default();
    let cov = Matrix3::from_diagonal(&nalgebra::Vector3::new(1.0, 1.0, 1.0));
    for (t, dx) in [(1.0, 3.0), (2.0, 4.0), (9.0, 100.0)] {
        let truth = path.at(t).unwrap_or(Isometry2::identity());
        let estimate = Isometry2::new(truth.translation.vector + Vector2::new(dx, 0.0), truth.rotation.angle());
        errors.push(&path, t, t, &estimate, &cov);
    }
    // A 3 s bag: its second half (from 1.5 s) holds the pose at 2 s only (NEES 16).
    let r = errors.report(3.0).unwrap();
    assert_eq!(r.poses, 2, "the pose outside the path is not scored");
    assert!((r.rmse_m - (12.5f64).sqrt()).abs() < 1e-12);
    assert_eq!((r.final_error_m, r.max_error_m), (4.0, 4.0));
    assert!((r.anees.unwrap() - 12.5).abs() < 1e-9);
    assert!((r.anees_last_half.unwrap() - 16.0).abs() < 1e-9);
}

/// Heights in the ground truth (`[x, y, z]` or `{x, y, z}`), and what the report makes of
/// a 3-D belief: |μ_z − z|, the 3-D NEES (worked by hand: Σ = diag(1, 1, 4)), and their
/// means over all updates and the last half.
#[test]
fn heights_give_vertical_errors_and_the_3d_nees() {
    let gt = GroundTruth::from_yaml("landmarks:\n  a: [0.0, 0.0, 2.0]\n  b: {x: 1, y: 2, z: -1.5}\n  c: [5, 6]\n", "gt").unwrap();
    assert_eq!(gt.heights_m.get("a"), Some(&2.0));
    assert_eq!(gt.heights_m.get("b"), Some(&-1.5));
    assert_eq!(gt.heights_m.get("c"), None, "planar entries have no height");
    assert_eq!(gt.landmarks["b"], Vector2::new(1.0, 2.0));
    for bad in ["landmarks:\n  a: [0, 0, .nan]\n", "landmarks:\n  a: [0, 0, 1, 2]\n", "landmarks:\n  a: {x: 0, y: 0, z: up}\n"] {
        let e = GroundTruth::from_yaml(bad, "gt").unwrap_err().to_string();
        assert!(e.contains("`a`") && e.contains("z"), "{bad}: {e}");
    }

    let mut b = ReportBuilder::new(Some(gt.clone()), 0.0);
    let cov3 = Matrix3::from_diagonal(&Vector3::new(1.0, 1.0, 4.0));
    // (x error, z estimate) at t = 1, 3, 4 of a 4 s bag: e = (1, 0, 2) → 1 + 1 = 2;
    // (0, 0, −2) → 1; (2, 0, 4) → 4 + 4 = 8.
    for (t, x, z, want) in [(1.0, 1.0, 4.0, 2.0), (3.0, 0.0, 0.0, 1.0), (4.0, 2.0, 6.0, 8.0)] {
        let b3 = GaussianBelief { mean: Vector3::new(x, 0.0, z), cov: cov3 };
        let b2 = GaussianBelief { mean: Vector2::new(x, 0.0), cov: Matrix2::identity() };
        let s = b.add_belief(t, "a", &b2, Some(&b3));
        assert!((s.nees3.unwrap() - want).abs() < 1e-12, "t {t}");
        assert!((s.vertical_error_m.unwrap() - (z - 2.0f64).abs()).abs() < 1e-12);
        assert_eq!(s.height, Some((z, 4.0)));
        assert!((s.error_m.unwrap() - x).abs() < 1e-12, "the horizontal error stays horizontal");
    }
    let r = LandmarkReport::from_series("a", &b.landmarks["a"], gt.landmarks.get("a"), gt.heights_m.get("a").copied(), 4.0);
    assert_eq!(r.final_height_m, Some([6.0, 2.0]));
    assert_eq!((r.truth_height_m, r.final_vertical_error_m, r.final_nees3), (Some(2.0), Some(4.0), Some(8.0)));
    assert!((r.anees3.unwrap() - 11.0 / 3.0).abs() < 1e-12);
    assert!((r.anees3_last_half.unwrap() - 4.5).abs() < 1e-12, "t = 3 and 4 are in the second half");
    // Without a true height: the height is reported, no vertical error or 3-D NEES.
    let mut b = ReportBuilder::new(Some(gt.clone()), 0.0);
    let s = b.add_belief(1.0, "c", &GaussianBelief { mean: Vector2::new(5.0, 6.0), cov: Matrix2::identity() }, Some(&GaussianBelief { mean: Vector3::new(5.0, 6.0, 1.0), cov: cov3 }));
    assert_eq!((s.height, s.vertical_error_m, s.nees3), (Some((1.0, 4.0)), None, None));
}
