//! Report math against values worked out by hand.

use landmark_flow::replay::report::{nees, time_to_reach, GroundTruth, LandmarkReport, LandmarkSeries, Reach, ReportBuilder};
use nalgebra::{Matrix2, Vector2};

#[test]
fn nees_closed_forms() {
    // Σ = diag(4, 1), e = (2, 1): 2²/4 + 1²/1 = 2.
    let v = nees(&Vector2::new(3.0, 1.0), &Matrix2::new(4.0, 0.0, 0.0, 1.0), &Vector2::new(1.0, 0.0)).unwrap();
    assert!((v - 2.0).abs() < 1e-12);
    // Correlated: Σ = [[2, 1], [1, 2]], Σ⁻¹ = [[2, −1], [−1, 2]] / 3; e = (1, 1): (2 − 1 − 1 + 2)/3 = 2/3.
    let v = nees(&Vector2::new(1.0, 1.0), &Matrix2::new(2.0, 1.0, 1.0, 2.0), &Vector2::zeros()).unwrap();
    assert!((v - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(nees(&Vector2::zeros(), &Matrix2::new(1.0, 2.0, 2.0, 1.0), &Vector2::zeros()), None, "not SPD");
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
        let s = b.add_belief(t, "a", Vector2::new(x, 0.0), cov);
        assert!((s.error_m.unwrap() - x).abs() < 1e-12);
    }
    b.add_rejected("a");
    let r = LandmarkReport::from_series("a", &b.landmarks["a"], gt.landmarks.get("a"), 4.0);
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
    let empty = LandmarkReport::from_series("z", &LandmarkSeries::default(), None, 1.0);
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
    let r = errors.report().unwrap();
    assert_eq!(r.poses, 2, "the pose outside the path is not scored");
    assert!((r.rmse_m - (12.5f64).sqrt()).abs() < 1e-12);
    assert_eq!((r.final_error_m, r.max_error_m), (4.0, 4.0));
    assert!((r.anees.unwrap() - 12.5).abs() < 1e-9);
}
