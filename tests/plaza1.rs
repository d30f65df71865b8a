//! Plaza1 (real ranging-radio data, ../shared/data/plaza1) replayed with the shipped
//! `config/plaza.yaml`: no beacon positions are given; the numbers are scored against
//! the surveyed `ground_truth.yaml`. Issue 7's acceptance numbers, and a short slice
//! (the first minutes) that exercises initialisation.
//!
//! References: the batch least-squares solution over the whole data set with the true
//! path (a joint fit of the 4 beacons and one range scale: 0.06 m; without a scale:
//! 3.1 m; scale 1.069), computed independently of this code.
//!
//! The data set is not in the repository: it lives beside it, in ../shared/data/plaza1.
//! Without it each test says so on stderr and passes, unless
//! `LANDMARK_FLOW_REQUIRE_PLAZA1=1` (set by CI, .ci/run), which makes missing data a
//! failure.

use landmark_flow::config::node_parameters_from_yaml;
use landmark_flow::node_config::LandmarkFlowNodeConfig;
use landmark_flow::replay::report::ReplayReport;
use landmark_flow::replay::{run, ReplayOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where a bag of the data set is, or `None` (with the reason on stderr) when the data
/// set is absent and not required.
///
/// # Panics
/// When the bag is absent and `LANDMARK_FLOW_REQUIRE_PLAZA1=1`.
fn data(bag: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/plaza1").join(bag);
    if dir.is_dir() {
        return Some(dir);
    }
    let required = std::env::var("LANDMARK_FLOW_REQUIRE_PLAZA1").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{} not found, and LANDMARK_FLOW_REQUIRE_PLAZA1=1 requires it (the Plaza1 data set lives beside the \
         repository in ../shared/data)",
        dir.display()
    );
    // Straight to stderr: the test harness captures eprintln! of passing tests, and a
    // skip nobody sees is a silent pass.
    let _ = writeln!(
        std::io::stderr(),
        "skipping: {} not found (the Plaza1 data set lives beside the repository in ../shared/data); set \
         LANDMARK_FLOW_REQUIRE_PLAZA1=1 to make this a failure",
        dir.display()
    );
    None
}

fn plaza_config(file: &str) -> LandmarkFlowNodeConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let config: LandmarkFlowNodeConfig = node_parameters_from_yaml(&text, "landmark_flow_node").unwrap();
    config.validate().unwrap();
    assert!(config.localizer.priors.ids.is_empty(), "no beacon positions may be given");
    config
}

/// The report of `bag` replayed with config/plaza.yaml, or `None` when the data set is
/// absent (see [`data`]).
fn replay(bag: &str, calibration: bool, duration_s: Option<f64>) -> Option<ReplayReport> {
    replay_with("plaza.yaml", bag, calibration, duration_s)
}

/// [`replay`] with another shipped config file.
fn replay_with(file: &str, bag: &str, calibration: bool, duration_s: Option<f64>) -> Option<ReplayReport> {
    let dir = data(bag)?;
    let out = tempfile_dir(&format!("{file}-{bag}-{calibration}-{duration_s:?}"));
    let mut o = ReplayOptions::new(&dir, &out);
    o.config = plaza_config(file);
    o.config.localizer.calibration.enabled = calibration;
    o.ground_truth = Some(dir.join("ground_truth.yaml"));
    o.plots = false;
    o.duration_s = duration_s;
    let outcome = run(&o).unwrap();
    assert!(outcome.bag_error.is_none());
    std::fs::remove_dir_all(&out).ok();
    Some(outcome.report)
}

fn tempfile_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("landmark_flow_plaza1_{}_{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn ground_truth_odometry_with_calibration_is_near_the_batch_optimum_and_consistent() {
    let Some(r) = replay("plaza1_gt_mcap", true, None) else { return };
    assert_eq!(r.landmarks.len(), 4);
    let rmse = r.final_rmse_m.unwrap();
    assert!(rmse <= 0.10, "final RMSE {rmse} m");
    for l in &r.landmarks {
        let anees = l.anees_last_half.unwrap();
        assert!((1.0..=4.0).contains(&anees), "{}: last-half ANEES {anees}", l.id);
        let [scale, scale_std] = l.range_scale.unwrap();
        assert!((scale - 1.069).abs() < 0.005 && scale_std < 0.005, "{}: scale {scale} ± {scale_std}", l.id);
        assert!(l.reach_1m.settled_s.is_some(), "{}", l.id);
    }
}

#[test]
fn ground_truth_odometry_without_calibration_is_near_the_uncalibrated_batch_optimum() {
    let Some(r) = replay("plaza1_gt_mcap", false, None) else { return };
    let rmse = r.final_rmse_m.unwrap();
    assert!(rmse <= 3.3, "final RMSE {rmse} m");
    assert!(r.landmarks.iter().all(|l| l.range_scale.is_none()));
}

#[test]
fn dead_reckoning_with_calibration() {
    let Some(r) = replay("plaza1_dr_mcap", true, None) else { return };
    let rmse = r.final_rmse_m.unwrap();
    assert!(rmse <= 2.5, "final RMSE {rmse} m");
}

/// Dead reckoning with `config/plaza_drifting.yaml` (odometry error estimated with the
/// beacons, the whole history re-solved every 30 s): the beacons within 0.8 m RMSE
/// (2.4 m with the odometry taken as exact, 0.74 m with the filter alone, 0.51 m
/// measured with the re-solve), no range thrown away by the gate (142 with exact
/// odometry), and, after the best rigid alignment, near the batch range-only SLAM
/// over all the data (0.20 m; the rest is where the map frame sits, which ranges
/// cannot observe). The covariance is not a lie: each beacon's ANEES over the last
/// half at most 4 (2 when consistent). Without the map's unknown scale
/// (`odometry_error.distance_scale_std`) it was 5.5 and 4.2 for the two beacons 48 m
/// and 62 m from the start; with the generic 1 % it is 0.65–1.57, conservative,
/// because Plaza1's wheel scale is better than that (0.5 %: the radio scale the
/// ranges see is 1.0647 on this dead reckoning and 1.0701 on the ground-truth poses).
#[test]
fn dead_reckoning_with_drifting_odometry_estimates_the_drift() {
    let Some(r) = replay_with("plaza_drifting.yaml", "plaza1_dr_mcap", true, None) else { return };
    let rmse = r.final_rmse_m.unwrap();
    assert!(rmse <= 0.8, "final RMSE {rmse} m");
    for l in &r.landmarks {
        let anees = l.anees_last_half.unwrap();
        assert!(anees <= 4.0 && anees >= 0.3, "{}: last-half ANEES {anees}", l.id);
    }
    let smoother = r.smoother.as_ref().expect("the re-solve is on by default");
    assert!(smoother.solves >= 50, "{smoother:?}");
    assert_eq!(r.rejected_by_reason.get("innovation_gate"), None, "{:?}", r.rejected_by_reason);
    assert_eq!(r.ranges_fused, r.range_messages);
    let aligned = r.final_rmse_aligned_m.unwrap();
    assert!(aligned <= 0.3, "aligned RMSE {aligned} m");
}

/// Ground-truth odometry with `odometry: drifting` costs nothing: the batch re-solve's
/// evidence puts the weight on the smallest heading and translation noise
/// (`localizer::smoother`), and the beacons stay within 0.10 m RMSE without any
/// alignment (0.079 m with `exact`; 0.73 m with the generic noise scale alone, whose
/// odometry uncertainty lets the map frame wander).
#[test]
fn ground_truth_odometry_with_drifting_odometry_costs_nothing() {
    let Some(r) = replay_with("plaza_drifting.yaml", "plaza1_gt_mcap", true, None) else { return };
    assert!(r.final_rmse_m.unwrap() <= 0.10, "{:?}", r.final_rmse_m);
    let aligned = r.final_rmse_aligned_m.unwrap();
    assert!(aligned <= 0.10, "aligned RMSE {aligned} m");
    assert_eq!(r.ranges_fused, r.range_messages);
    let smoother = r.smoother.as_ref().expect("the re-solve is on by default");
    let still: f64 = smoother.weights.iter().filter(|((h, t), _)| *h < 0.1 && *t < 0.1).map(|(_, w)| w).sum();
    assert!(still > 0.9, "{smoother:?}");
}

/// The first 10 minutes: every beacon is initialised from its ranges alone (no prior)
/// and, once tracking, within 5 m.
#[test]
fn a_ten_minute_slice_initialises_every_beacon() {
    let Some(r) = replay("plaza1_gt_mcap", true, Some(600.0)) else { return };
    assert!(r.bag_duration_s <= 600.0 + 1e-6);
    assert_eq!(r.landmarks.len(), 4, "{:?}", r.landmarks.iter().map(|l| &l.id).collect::<Vec<_>>());
    for l in &r.landmarks {
        assert!(l.fused > 0, "{} never tracked", l.id);
        let e = l.final_error_m.unwrap();
        assert!(e < 5.0, "{}: {e} m", l.id);
        assert!(l.range_scale.is_some());
    }
}

/// Plaza1's beacons with `localizer.dimension: 3` and a wide height prior (N(0, (3 m)²)
/// for every beacon, the default): their heights are unobservable from the robot's
/// planar path at these distances, so (x, y) must stay where the planar model puts
/// them (final RMSE ≤ 0.10 m with calibration, as in 2-D; measured 0.075 m) and each
/// height's standard deviation must admit that little is known: a planar path sees a
/// height only through the range's curvature dz²/2h, so it stays at decimetres to a
/// metre (≥ 0.3 m and ≥ 5× the horizontal standard deviation; measured 0.49–0.72 m).
#[test]
fn ground_truth_odometry_in_3d_keeps_the_planar_accuracy_and_an_honest_height() {
    let Some(dir) = data("plaza1_gt_mcap") else { return };
    let out = tempfile_dir("plaza1-3d");
    let mut o = ReplayOptions::new(&dir, &out);
    o.config = plaza_config("plaza.yaml");
    o.config.localizer.dimension = 3;
    o.config.validate().unwrap();
    o.ground_truth = Some(dir.join("ground_truth.yaml"));
    o.plots = false;
    let r = run(&o).unwrap().report;
    std::fs::remove_dir_all(&out).ok();
    assert_eq!(r.landmarks.len(), 4);
    let rmse = r.final_rmse_m.unwrap();
    assert!(rmse <= 0.10, "final horizontal RMSE {rmse} m");
    for l in &r.landmarks {
        let [_, std] = l.final_height_m.expect("a 3-D belief");
        let c = l.final_cov_m2.unwrap();
        let horizontal_std = (0.5 * (c[0] + c[3]) + (0.25 * (c[0] - c[3]).powi(2) + c[1] * c[1]).sqrt()).sqrt();
        assert!(std >= 0.3 && std >= 5.0 * horizontal_std, "{}: height std {std} m, horizontal {horizontal_std} m", l.id);
    }
}
