//! `localizer.dimension: 3` (issue 15): a landmark above a robot that moves in a plane,
//! through the localizer's whole path (odometry pose ⊕ sensor mount, the prior with its
//! height, the first range's mirror split, the mixture flow), against the exact 3-D grid
//! posterior of the same prior and ranges ([`ExactPosterior3`]: prior × likelihoods on
//! a grid, no Gaussian and no flow), and against what the planar model makes of the same
//! ranges.

use landmark_flow::estimator::grid3::ExactPosterior3;
use landmark_flow::estimator::{GaussianBelief, NoiseShape, RangeModel};
use landmark_flow::localizer::{LocalizerConfig, Localizer, PriorsConfig, RangeInput, UnknownLandmarkPolicy};
use landmark_flow::msg::{Header, LandmarkBeliefMsg, PoseWithCovarianceStampedMsg, Stamp};
use nalgebra::{Isometry3, Matrix3, Translation3, UnitQuaternion, Vector3};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

const TRUTH: [f64; 3] = [2.0, 1.0, 2.5];
const SENSOR_HEIGHT_M: f64 = 0.3;
const RANGE_STD_M: f64 = 0.2;
const PRIOR_MEAN: [f64; 3] = [2.8, 0.4, 1.0];
const PRIOR_STD_M: [f64; 3] = [1.5, 1.5, 2.0];
/// |mass above − exact|: the side weights are batch ELBOs of each side (measured < 1e-4).
const MIRROR_WEIGHT_TOLERANCE: f64 = 0.01;

fn config(dimension: u32) -> LocalizerConfig {
    LocalizerConfig {
        odom_frame_id: "odom".into(),
        sensor_offset_m: vec![0.0, 0.0, SENSOR_HEIGHT_M],
        unknown_landmarks: UnknownLandmarkPolicy::Reject,
        dimension,
        priors: PriorsConfig {
            ids: vec!["anchor".into()],
            means_m: PRIOR_MEAN[..2].to_vec(),
            covs_m2: vec![PRIOR_STD_M[0].powi(2), 0.0, 0.0, PRIOR_STD_M[1].powi(2)],
            height_means_m: vec![PRIOR_MEAN[2]],
            height_stds_m: vec![PRIOR_STD_M[2]],
        },
        ..LocalizerConfig::default()
    }
}

/// A robot on a half circle of radius 6 m around the origin (z = 0), one range per 3° of arc
/// (60 ranges), noise σ = 0.2 m, from a sensor 0.3 m above the base; returns the
/// localizer and the ranges as the reference's models.
fn run(dimension: u32, seed: u64) -> (Localizer, Vec<RangeModel<3>>) {
    run_with(config(dimension), seed, (1.0, 0.0), 60)
}

/// [`run`] with `config`, ranges z = s·d + b + w for `(s, b)`, and `count` ranges.
fn run_with(config: LocalizerConfig, seed: u64, (scale, offset_m): (f64, f64), count: usize) -> (Localizer, Vec<RangeModel<3>>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut loc = Localizer::new(config).unwrap();
    let truth = Vector3::from(TRUTH);
    let mut models = Vec::new();
    for k in 0..count {
        // Back and forth along the half circle.
        let j = if (k / 60) % 2 == 0 { k % 60 } else { 59 - k % 60 };
        let (t, a) = (1.0 + k as f64 * 0.1, j as f64 * 3f64.to_radians());
        let base = Vector3::new(6.0 * a.cos(), 6.0 * a.sin(), 0.0);
        let pose = Isometry3::from_parts(Translation3::from(base), UnitQuaternion::from_euler_angles(0.0, 0.0, a + 1.2));
        loc.add_odometry(t, "odom", pose).unwrap();
        let sensor = base + Vector3::new(0.0, 0.0, SENSOR_HEIGHT_M);
        let noise: f64 = StandardNormal.sample(&mut rng);
        let range_m = scale * (truth - sensor).norm() + offset_m + RANGE_STD_M * noise;
        let input = RangeInput {
            topic: "range".into(),
            stamp_s: t,
            frame_id: String::new(),
            landmark_id: "anchor".into(),
            range_m,
            variance_m2: RANGE_STD_M * RANGE_STD_M,
            sensor_limits_m: None,
        };
        loc.add_range(&input).unwrap();
        models.push(RangeModel::new(sensor, range_m, RANGE_STD_M * RANGE_STD_M, NoiseShape::Gaussian).unwrap());
    }
    (loc, models)
}

fn prior3() -> GaussianBelief<3> {
    GaussianBelief::new(Vector3::from(PRIOR_MEAN), Matrix3::from_diagonal(&Vector3::from(PRIOR_STD_M).map(|s| s * s))).unwrap()
}

/// Over 5 seeds, a half circle of ranges to an anchor 2.2 m above the sensor: the
/// localizer keeps both mirror modes with the exact posterior's mass above the sensor
/// plane (to 0.01; measured < 1e-4: a planar path cannot tell the halves apart, the
/// height prior decides, 0.67–0.70 above); each half's mean is within 0.05 m of the
/// exact conditional mean, the (x, y) mean within 0.02 m of the exact (σ 0.08 m), the z
/// variance, mostly the two modes' spread, within 10 % of the exact (honest about the
/// mirror) — measured < 1 mm and < 0.1 %: after its last range each half is re-solved
/// for all ranges, and each mode of this posterior is close to Gaussian — and the planar
/// model on the same ranges is ≥ 5 times further off horizontally (measured 0.53–0.74 m:
/// the range's vertical part read as horizontal distance).
#[test]
fn a_landmark_above_the_path_matches_the_exact_3d_posterior() {
    for seed in 0..5 {
        let (loc, models) = run(3, seed);
        let exact = ExactPosterior3::compute(&prior3(), &models, 80).unwrap();
        let reference = exact.moments();
        let track = &loc.tracks()["anchor"];
        let s3 = track.summary3.as_ref().expect("a 3-D belief");
        let horizontal = (s3.belief.mean.xy() - reference.mean.xy()).norm();
        let sigma = reference.cov.fixed_view::<2, 2>(0, 0).symmetric_eigenvalues().max().sqrt();
        assert!(horizontal < 0.02, "seed {seed}: {horizontal} m from the exact mean (σ {sigma})");
        // The published (x, y) summary is the 3-D belief's marginal.
        assert_eq!(track.summary.belief.mean, s3.belief.mean.xy());
        let plane = SENSOR_HEIGHT_M;
        let split = exact.split_at_plane(plane);
        let side = |up: bool| {
            let parts: Vec<_> = s3.components.iter().filter(|c| (c.belief.mean.z >= plane) == up).collect();
            let mass: f64 = parts.iter().map(|c| c.weight).sum();
            let mean: Vector3<f64> = parts.iter().map(|c| c.belief.mean * c.weight).sum::<Vector3<f64>>() / mass;
            (mass, mean)
        };
        let ((above, mean_above), (below, mean_below)) = (side(true), side(false));
        assert!(below > 0.01 && above > 0.01, "seed {seed}: both mirror modes kept: {above} above, {below} below");
        let (off_above, off_below) = ((mean_above - split.mean_above).norm(), (mean_below - split.mean_below).norm());
        assert!(off_above < 0.05 && off_below < 0.05, "seed {seed}: side means {off_above} / {off_below} m off");
        assert!((above - split.mass_above).abs() < MIRROR_WEIGHT_TOLERANCE, "seed {seed}: mass above {above} vs exact {}", split.mass_above);
        let (var_z, exact_var_z) = (s3.belief.cov[(2, 2)], reference.cov[(2, 2)]);
        assert!(var_z > 0.9 * exact_var_z && var_z < 1.1 * exact_var_z, "seed {seed}: var z {var_z} vs exact {exact_var_z}");
        let (planar, _) = run(2, seed);
        let planar_error = (planar.tracks()["anchor"].summary.belief.mean - reference.mean.xy()).norm();
        assert!(planar_error > 5.0 * horizontal.max(0.02), "seed {seed}: planar {planar_error} m vs 3-D {horizontal} m");
    }
}

/// The published messages carry the 3-D belief: `LandmarkBelief.dimension` 3 with the
/// full (x, y, z) covariance, the pose with Σ in its (x, y, z) block; the planar model's
/// messages keep dimension 2 and a zero z row.
#[test]
fn messages_carry_the_height() {
    let (loc, _) = run(3, 7);
    let track = &loc.tracks()["anchor"];
    let s3 = track.summary3.as_ref().unwrap();
    let header = Header { stamp: Stamp::from_secs(7.0), frame_id: "odom".into() };
    let m = LandmarkBeliefMsg::from_track(header.clone(), "anchor", track);
    assert_eq!(m.dimension, 3);
    assert_eq!(m.mean, [s3.belief.mean.x, s3.belief.mean.y, s3.belief.mean.z]);
    assert_eq!((m.covariance[2], m.covariance[8]), (s3.belief.cov[(0, 2)], s3.belief.cov[(2, 2)]));
    assert_eq!(m.components.len(), s3.components.len());
    let pose = PoseWithCovarianceStampedMsg::from_track(header.clone(), track);
    assert_eq!(pose.pose.position[2], s3.belief.mean.z);
    assert_eq!(pose.covariance[14], s3.belief.cov[(2, 2)]);
    let (planar, _) = run(2, 7);
    let m = LandmarkBeliefMsg::from_track(header, "anchor", &planar.tracks()["anchor"]);
    assert_eq!((m.dimension, m.mean[2], m.covariance[8]), (2, 0.0, 0.0));
}

/// What is not built in 3-D is refused at start, naming the parameter; bad heights too.
#[test]
fn three_d_refusals_name_the_parameter() {
    let refused = |c: LocalizerConfig| Localizer::new(c).unwrap_err().to_string();
    let mut c = config(3);
    c.odometry = landmark_flow::localizer::OdometryMode::Drifting;
    assert!(refused(c).contains("odometry"));
    let mut c = config(3);
    c.calibration.enabled = true;
    c.estimator.method = landmark_flow::estimator::Method::Ukf;
    assert!(refused(c).contains("estimator.method"));
    assert!(refused(config(4)).contains("dimension"));
    let mut c = config(3);
    c.priors.height_stds_m = vec![1.0, 2.0];
    assert!(refused(c).contains("priors.height_stds_m"));
    let mut c = config(3);
    c.height_prior.std_m = 0.0;
    assert!(refused(c).contains("height_prior.std_m"));
}

/// The two mirror halves (mass-weighted within each side of the sensor plane), each
/// as its mean and its largest standard deviation.
fn side_means(loc: &Localizer) -> (Option<(Vector3<f64>, f64)>, Option<(Vector3<f64>, f64)>) {
    let s3 = loc.tracks()["anchor"].summary3.clone().expect("a 3-D belief");
    let side = |up: bool| {
        let parts: Vec<_> = s3.components.iter().filter(|c| (c.belief.mean.z >= SENSOR_HEIGHT_M) == up).collect();
        let mass: f64 = parts.iter().map(|c| c.weight).sum();
        let mean = parts.iter().map(|c| c.belief.mean * c.weight).sum::<Vector3<f64>>() / mass;
        let cov = parts.iter().map(|c| (c.belief.cov + (c.belief.mean - mean) * (c.belief.mean - mean).transpose()) * c.weight).sum::<Matrix3<f64>>() / mass;
        (mass > 0.01).then(|| (mean, cov.symmetric_eigenvalues().max().sqrt()))
    };
    (side(true), side(false))
}

/// Without a prior (`unknown_landmarks: initialise`), the planar grid marginalises the
/// height and the 3-D belief starts from it: after two passes of the half circle the
/// landmark tracks and keeps both mirror halves (the data cannot tell them apart): the
/// upper within 3 of its σ of the truth (2, 1, 2.5), the lower the upper's mirror image
/// about the sensor plane (within 0.3 m horizontally, 0.5 m in z: the height prior pulls
/// the halves up); 3 seeds.
#[test]
fn a_landmark_without_prior_initialises_in_3d() {
    for seed in 0..3 {
        let mut c = config(3);
        c.priors = PriorsConfig::default();
        c.unknown_landmarks = UnknownLandmarkPolicy::Initialise;
        c.height_prior.mean_m = 1.0;
        c.height_prior.std_m = 2.0;
        let (loc, _) = run_with(c, seed, (1.0, 0.0), 120);
        assert!(loc.tracks()["anchor"].is_tracking(), "seed {seed}");
        let (above, below) = side_means(&loc);
        let ((above, sd), (below, _)) = (above.expect("the upper half"), below.unwrap_or_else(|| panic!("seed {seed}: no lower half; {:?}", loc.tracks()["anchor"].summary3.as_ref().unwrap().components)));
        assert!((above - Vector3::from(TRUTH)).norm() < 3.0 * sd, "seed {seed}: upper half at {above:?} ± {sd}");
        // The likelihood is symmetric about the plane: the lower half mirrors the upper
        // one, up to the height prior's pull (its mean 1 m is above the plane).
        let mirrored = Vector3::new(above.x, above.y, 2.0 * SENSOR_HEIGHT_M - above.z);
        assert!((below - mirrored).xy().norm() < 0.3 && (below.z - mirrored.z).abs() < 0.5, "seed {seed}: lower half at {below:?}, upper at {above:?}");
    }
}

/// With the range calibration (ranges z = 1.05·d + 0.3 + w) the 3-D calibrated state
/// (x, y, z, s, b) keeps both halves, each within 3 of its own σ of the truth or its
/// mirror (the height trades off with (s, b): it is known less well than without
/// calibration), and learns the calibration (within 3 σ of (1.05, 0.3)); 3 seeds, 120
/// ranges.
#[test]
fn a_calibrated_3d_landmark_learns_its_height_halves_and_the_calibration() {
    for seed in 0..3 {
        let mut c = config(3);
        c.calibration.enabled = true;
        let (loc, _) = run_with(c, seed, (1.05, 0.3), 120);
        let (above, below) = side_means(&loc);
        let mirror = Vector3::new(TRUTH[0], TRUTH[1], 2.0 * SENSOR_HEIGHT_M - TRUTH[2]);
        // The height trades off with the scale and offset: each half within 3 of its σ.
        let near = |half: Option<(Vector3<f64>, f64)>, target: Vector3<f64>| half.is_some_and(|(m, sd)| (m - target).norm() < 3.0 * sd);
        assert!(near(above, Vector3::from(TRUTH)), "seed {seed}: upper half {above:?}");
        assert!(near(below, mirror), "seed {seed}: lower half {below:?}");
        let cal = loc.tracks()["anchor"].calibration.expect("calibrated");
        assert!((cal.scale - 1.05).abs() < 3.0 * cal.scale_variance.sqrt(), "seed {seed}: {cal:?}");
        assert!((cal.offset_m - 0.3).abs() < 3.0 * cal.offset_variance_m2.sqrt(), "seed {seed}: {cal:?}");
    }
}
