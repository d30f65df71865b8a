//! Per-range cost of `odometry: drifting` (issue 17): one range fused into the joint
//! state (odometry error, range calibration, L landmarks) by the natural flow on the
//! 7-dimensional touched marginal (256 Monte Carlo nodes) plus the Gaussian
//! conditional (O(K·D²), D = 6 + 2L), for L = 4, 20, 100; and one odometry
//! propagation (O(D)). Each iteration clones the state (O(D²), part of the number).
//! `range_scales3_*` is the same range through the default three odometry noise scales
//! (`localizer::imm`: three joint states, their predictive densities and weights), as
//! the localizer runs it.
//! `smoother_*`: one batch re-solve of the whole history (see `smoother` below).
//! Run: `cargo bench --no-default-features --bench drifting`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use landmark_flow::estimator::{Estimator, EstimatorConfig, FlowConfig, GaussianBelief, JointRangeModel, Method, NoiseShape};
use landmark_flow::localizer::drift::{OdometryErrorConfig, OdometryErrorModel};
use landmark_flow::localizer::imm::JointImm;
use landmark_flow::localizer::slam::JointState;
use nalgebra::{Isometry2, Matrix2, Vector2};

/// What the setup below does to a joint state, for one state or the noise-scale set.
trait Joint {
    fn insert(&mut self, id: &str, belief: &GaussianBelief<2>);
    fn odometry(&mut self, stamp_s: f64, pose: &Isometry2<f64>);
    fn mean(&self, id: &str) -> Vector2<f64>;
    fn range(&mut self, id: &str, est: &Estimator<7>, m: &JointRangeModel<7>);
}

impl Joint for (JointState, &OdometryErrorModel) {
    fn insert(&mut self, id: &str, belief: &GaussianBelief<2>) {
        self.0.insert_landmark(id, belief);
    }
    fn odometry(&mut self, stamp_s: f64, pose: &Isometry2<f64>) {
        self.0.propagate(self.1, stamp_s, pose, None).expect("propagate");
    }
    fn mean(&self, id: &str) -> Vector2<f64> {
        self.0.landmark(id).expect("exists").mean
    }
    fn range(&mut self, id: &str, est: &Estimator<7>, m: &JointRangeModel<7>) {
        let (step, _) = self.0.step(id, est, m).expect("update");
        self.0.commit(step);
    }
}

impl Joint for JointImm {
    fn insert(&mut self, id: &str, belief: &GaussianBelief<2>) {
        self.insert_landmark(id, belief);
    }
    fn odometry(&mut self, stamp_s: f64, pose: &Isometry2<f64>) {
        self.propagate(stamp_s, pose, None).expect("propagate");
    }
    fn mean(&self, id: &str) -> Vector2<f64> {
        self.landmark(id).expect("exists").mean
    }
    fn range(&mut self, id: &str, est: &Estimator<7>, m: &JointRangeModel<7>) {
        let (step, _) = self.step(id, est, m).expect("update");
        self.commit(step);
    }
}

/// The range calibration prior of the benchmark states.
fn calibration() -> GaussianBelief<2> {
    GaussianBelief { mean: Vector2::new(1.0, 0.0), cov: Matrix2::new(0.01, 0.0, 0.0, 1.0) }
}

/// `s` with `landmarks` landmarks on a ring, correlated with the odometry error by 100
/// odometry steps and one range to each landmark.
fn setup<S: Joint>(mut s: S, landmarks: usize, est: &Estimator<7>) -> S {
    for i in 0..landmarks {
        let a = i as f64 * 0.7;
        let belief = GaussianBelief { mean: Vector2::new(20.0 * a.cos(), 20.0 * a.sin()), cov: Matrix2::identity() };
        s.insert(&format!("l{i}"), &belief);
    }
    for k in 0..100 {
        let th = 0.02 * k as f64;
        s.odometry(0.1 * k as f64, &Isometry2::new(Vector2::new(5.0 * th.sin(), 5.0 * (1.0 - th.cos())), th));
    }
    let p = Vector2::new(1.0, 1.0);
    for i in 0..landmarks {
        let id = format!("l{i}");
        let z = (s.mean(&id) - p).norm() + 0.2;
        let m = JointRangeModel::<7>::new(p, z, 0.25, NoiseShape::Gaussian).expect("model");
        s.range(&id, est, &m);
    }
    s
}

/// One joint state (one noise scale).
fn state(landmarks: usize, model: &OdometryErrorModel, est: &Estimator<7>) -> JointState {
    setup((JointState::new(model, Some(&calibration())), model), landmarks, est).0
}

/// The same under the default odometry noise scales (1, 0.1, 0.01).
fn scales_state(landmarks: usize, est: &Estimator<7>) -> JointImm {
    let scales = JointImm::new(&OdometryErrorConfig::default(), Some(&calibration())).expect("scales");
    setup(scales, landmarks, est)
}

fn drifting(c: &mut Criterion) {
    let model = OdometryErrorModel::new(OdometryErrorConfig::default()).expect("model");
    let config = EstimatorConfig {
        method: Method::Natural,
        flow: FlowConfig { cubature: false, samples: 256, ..FlowConfig::default() },
        ..EstimatorConfig::default()
    };
    let est = Estimator::<7>::new(config).expect("estimator");
    for landmarks in [4, 20, 100] {
        let s = state(landmarks, &model, &est);
        let p = Vector2::new(2.0, -1.0);
        let z = (s.landmark("l1").expect("exists").mean - p).norm() - 0.3;
        let m = JointRangeModel::<7>::new(p, z, 0.25, NoiseShape::Gaussian).expect("model");
        c.bench_function(&format!("range_natural_L{landmarks}"), |b| {
            b.iter(|| {
                let mut next = s.clone();
                let (step, _) = next.step("l1", &est, black_box(&m)).expect("update");
                next.commit(step);
                next
            })
        });
        c.bench_function(&format!("range_clone_only_L{landmarks}"), |b| b.iter(|| black_box(s.clone())));
        let scales = scales_state(landmarks, &est);
        c.bench_function(&format!("range_scales3_L{landmarks}"), |b| {
            b.iter(|| {
                let mut next = scales.clone();
                let (step, _) = next.step("l1", &est, black_box(&m)).expect("update");
                next.commit(step);
                next
            })
        });
        let to = Isometry2::new(Vector2::new(5.1, 0.3), 0.05);
        c.bench_function(&format!("odometry_L{landmarks}"), |b| {
            b.iter(|| {
                let mut next = s.clone();
                next.propagate(&model, 10.1, black_box(&to), None).expect("propagate");
                next
            })
        });
    }
}

/// The batch re-solve (`localizer::smoother::solve`) of `duration_s` of history: a
/// 30 m circle at 1 m/s, odometry at 10 Hz with a 1 mrad/s gyro bias, ranges at 2 Hz
/// round-robin to four beacons 8 m outside the circle, calibration estimated, default
/// knots (20 s, ≤ 128) and model; `cold` starts from zeros and the landmarks 1 m off,
/// `warm` from its own solution (what a periodic re-solve mostly is). One noise level:
/// a re-solve solves one to three (`Smoother`).
fn smoother(c: &mut Criterion) {
    use landmark_flow::localizer::smoother::{solve, LandmarkStart, OdometrySample, RangeSample, SolveConfig};
    use nalgebra::{Matrix2, Rotation2};
    let beacons: Vec<Vector2<f64>> = (0..4)
        .map(|i| {
            let a = (0.3 + i as f64) * std::f64::consts::FRAC_PI_2;
            Vector2::new(38.0 * a.cos(), 38.0 * a.sin())
        })
        .collect();
    for duration_s in [600.0, 1800.0] {
        let n = (duration_s * 10.0) as usize;
        let pose = |t: f64| {
            let a = t / 30.0;
            let heading = a + std::f64::consts::FRAC_PI_2;
            // The odometry's heading runs ahead by the gyro bias; its position is
            // integrated with it (approximately: the circle turned by b·t²/2 is enough
            // for timing).
            let odom_heading = heading + 1e-3 * t;
            (Vector2::new(30.0 * a.cos(), 30.0 * a.sin()), heading, odom_heading)
        };
        let odometry: Vec<OdometrySample> = (0..n)
            .map(|k| {
                let t = k as f64 * 0.1;
                let (p, _, h) = pose(t);
                OdometrySample { stamp_s: t, position: Rotation2::new(5e-4 * t * t / 30.0) * p, heading_rad: h, pose_cov_growth: None }
            })
            .collect();
        let ranges: Vec<RangeSample> = (0..n / 5)
            .map(|k| {
                let t = k as f64 * 0.5;
                let (p, _, h) = pose(t);
                RangeSample {
                    stamp_s: t,
                    landmark: k % 4,
                    odom_position: Rotation2::new(5e-4 * t * t / 30.0) * p,
                    odom_heading_rad: h,
                    mount_m: Vector2::zeros(),
                    range_m: 1.03 * (beacons[k % 4] - p).norm() + 0.1,
                }
            })
            .collect();
        let starts: Vec<LandmarkStart> =
            beacons.iter().map(|b| LandmarkStart { initial: b + Vector2::new(1.0, -1.0), prior: None }).collect();
        let config = SolveConfig {
            knot_period_s: 20.0,
            max_knots: 128,
            range_std_m: 0.5,
            huber_threshold_sigma: 4.0,
            odometry_error: OdometryErrorConfig::default(),
            calibration_prior: Some(
                GaussianBelief::new(Vector2::new(1.0, 0.0), Matrix2::new(0.01, 0.0, 0.0, 1.0)).expect("prior"),
            ),
            max_iterations: 10,
            growth_std_scales: (1.0, 1.0),
        };
        let label = format!("smoother_{}s_{}ranges", duration_s as u32, ranges.len());
        c.bench_function(&format!("{label}_cold"), |b| {
            b.iter(|| solve(&odometry, &ranges, &starts, &config, None).expect("solve"))
        });
        let first = solve(&odometry, &ranges, &starts, &config, None).expect("solve");
        let solved: Vec<LandmarkStart> = first.landmarks.iter().map(|l| LandmarkStart { initial: l.mean, prior: None }).collect();
        c.bench_function(&format!("{label}_warm"), |b| {
            b.iter(|| solve(&odometry, &ranges, &solved, &config, Some(&first.warm)).expect("solve"))
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(2));
    targets = drifting
}
criterion_group! {
    name = smoother_benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(5));
    targets = smoother
}
criterion_main!(benches, smoother_benches);
