//! Every `estimator.method` × calibration (state dimension 2 or 4) × unknown-landmark
//! policy (prior or initialise) × relinearisation (off, or every 3 ranges where the
//! method allows it) × odometry (exact, or drifting with the methods it takes) runs through `Localizer` range updates with random valid
//! odometry and ranges: nothing panics (regression: `ukf` with calibration indexed
//! past its sigma points on the first range) and every belief the localiser holds
//! for publication is finite and SPD.

use landmark_flow::estimator::Method;
use landmark_flow::localizer::{
    InitialisationConfig, Localizer, LocalizerConfig, OdometryMode, PriorsConfig, RangeInput, UnknownLandmarkPolicy,
};
use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector2};
use proptest::prelude::*;

const METHODS: [Method; 6] = [Method::Plain, Method::Natural, Method::Mixture, Method::Ekf, Method::Ukf, Method::Particle];

fn config(method: Method, calibration: bool, policy: UnknownLandmarkPolicy, relinearise: bool) -> LocalizerConfig {
    let mut c = LocalizerConfig {
        unknown_landmarks: policy,
        initialisation: InitialisationConfig { region_radius_m: 20.0, cell_m: 0.5, max_std_m: 2.0, min_ranges: 3 },
        priors: PriorsConfig { ids: vec!["known".into()], means_m: vec![2.0, 1.0], covs_m2: vec![9.0, 0.0, 0.0, 9.0], ..PriorsConfig::default() },
        ..Default::default()
    };
    c.estimator.method = method;
    c.estimator.particle.count = 200;
    c.estimator.flow.samples = 32;
    c.estimator.flow.steps = 20;
    c.calibration.enabled = calibration;
    c.relinearisation.every_ranges = if relinearise { 3 } else { 0 };
    c.relinearisation.max_ranges = 7;
    c
}

fn combinations() -> Vec<LocalizerConfig> {
    let mut out = Vec::new();
    for method in METHODS {
        for calibration in [false, true] {
            for policy in [UnknownLandmarkPolicy::DefaultPrior, UnknownLandmarkPolicy::Initialise] {
                for relinearise in [false, true] {
                    // Refused by validation (particles cannot be re-solved): tested below.
                    if relinearise && method == Method::Particle {
                        continue;
                    }
                    out.push(config(method, calibration, policy, relinearise));
                    // Drifting odometry: the joint state takes the Gaussian methods, no window.
                    if !relinearise && !matches!(method, Method::Ukf | Method::Particle | Method::Plain) {
                        let mut c = config(method, calibration, policy, false);
                        c.odometry = OdometryMode::Drifting;
                        out.push(c);
                    }
                }
            }
        }
    }
    out
}

fn pose(x: f64, y: f64, yaw: f64) -> Isometry3<f64> {
    Isometry3::from_parts(Translation3::new(x, y, 0.0), UnitQuaternion::from_euler_angles(0.0, 0.0, yaw))
}

/// One range to `id` at time `t`: the distance to `truth` scaled by `scale`, plus
/// `noise_m`, clamped to be ≥ 0; variance 0 means the configured default.
#[derive(Debug, Clone)]
struct Step {
    dx: f64,
    dy: f64,
    yaw: f64,
    noise_m: f64,
    variance_m2: f64,
    known: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (-3.0..3.0f64, -3.0..3.0f64, -3.2..3.2f64, -1.0..1.0f64, prop_oneof![Just(0.0), 0.01..4.0f64], any::<bool>())
        .prop_map(|(dx, dy, yaw, noise_m, variance_m2, known)| Step { dx, dy, yaw, noise_m, variance_m2, known })
}

fn assert_publishable(loc: &Localizer, what: &str) {
    for (id, track) in loc.tracks() {
        let s = &track.summary;
        assert!(s.belief.is_publishable(), "{what} {id}: {:?}", s.belief);
        assert!(s.components.iter().all(|c| c.belief.is_publishable() && c.weight.is_finite()), "{what} {id}");
        if let Some(c) = track.calibration {
            assert!([c.scale, c.scale_variance, c.offset_m, c.offset_variance_m2].iter().all(|v| v.is_finite()), "{what} {id}");
        }
    }
    if let Some(c) = loc.sensor_calibration() {
        assert!(c.is_publishable(), "{what}: sensor calibration {c:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn no_combination_panics_and_every_belief_is_publishable(
        truth in (-8.0..8.0f64, -8.0..8.0f64),
        scale in 0.9..1.1f64,
        steps in prop::collection::vec(step(), 4..14),
    ) {
        let truth = Vector2::new(truth.0, truth.1);
        for config in combinations() {
            let what = format!(
                "{} calibration={} {:?} every={}",
                config.estimator.method.name(),
                config.calibration.enabled,
                config.unknown_landmarks,
                config.relinearisation.every_ranges
            );
            let mut loc = Localizer::new(config).unwrap();
            let mut position = Vector2::new(0.0, 0.0);
            for (k, s) in steps.iter().enumerate() {
                let t = 1.0 + k as f64;
                position += Vector2::new(s.dx, s.dy);
                loc.add_odometry(t, "odom", pose(position.x, position.y, s.yaw)).unwrap();
                let id = if s.known { "known" } else { "new" };
                let range_m = (scale * (truth - position).norm() + s.noise_m).max(0.0);
                let input = RangeInput {
                    topic: "range".into(),
                    stamp_s: t,
                    frame_id: "sensor".into(),
                    landmark_id: id.into(),
                    range_m,
                    variance_m2: s.variance_m2,
                    sensor_limits_m: None,
                };
                // A rejection (e.g. a failed update) is allowed; a panic or an
                // unpublishable belief is not.
                let _ = loc.add_range(&input);
                assert_publishable(&loc, &what);
            }
        }
    }
}

/// The combinations validation refuses, each with both parameters named.
#[test]
fn relinearising_particles_is_refused_at_start() {
    let c = config(Method::Particle, false, UnknownLandmarkPolicy::DefaultPrior, true);
    let e = Localizer::new(c).unwrap_err().to_string();
    assert!(e.contains("`relinearisation.every_ranges`") && e.contains("estimator.method = particle"), "{e}");
}
