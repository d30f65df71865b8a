//! Per-range cost through `Localizer::add_range` against the number of landmarks
//! (issue 14): L = 1, 10, 100, 1 000 landmarks × range calibration off/on, every
//! landmark already tracking (a configured prior, so no initialisation grid), the
//! default estimator and relinearisation, exact odometry at 10 Hz (one odometry message
//! before each range, a 5 m circle at 0.2 rad/s) and one range per 0.1 s to the
//! landmarks round-robin (true distance + N(0, 0.3²) seeded noise). Each setup first
//! fuses one range to every landmark, so the calibration pooling spans all of them.
//! One iteration = one odometry message + one range (both go through the localizer;
//! the odometry is O(1) in L). Criterion reports time per iteration = µs per range.
//! Run: `cargo bench --no-default-features --features bag --bench scale`. The 3-D
//! group (`range3d`, [`scale_3d`]) is one landmark's per-range cost in 3-D.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use landmark_flow::localizer::{Localizer, LocalizerConfig, PriorsConfig, RangeInput, RangeOutcome};
use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector2};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Landmark i on a 20 m-pitch square grid centred on the origin.
fn landmark(i: usize, count: usize) -> Vector2<f64> {
    let side = (count as f64).sqrt().ceil() as usize;
    let half = (side as f64 - 1.0) * 10.0;
    Vector2::new((i % side) as f64 * 20.0 - half, (i / side) as f64 * 20.0 - half)
}

/// The robot's odometry pose at time t: a 5 m circle, 0.2 rad/s.
fn pose(t: f64) -> Isometry3<f64> {
    let a = 0.2 * t;
    Isometry3::from_parts(Translation3::new(5.0 * a.cos(), 5.0 * a.sin(), 0.0), UnitQuaternion::from_euler_angles(0.0, 0.0, a + std::f64::consts::FRAC_PI_2))
}

/// A localizer whose `count` landmarks have priors 1 m (σ) around their true positions.
fn localizer(count: usize, calibration: bool) -> Localizer {
    let mut config = LocalizerConfig {
        priors: PriorsConfig {
            ids: (0..count).map(|i| format!("l{i}")).collect(),
            means_m: (0..count).flat_map(|i| { let p = landmark(i, count); [p.x + 0.5, p.y - 0.5] }).collect(),
            covs_m2: (0..count).flat_map(|_| [1.0, 0.0, 0.0, 1.0]).collect(),
            ..PriorsConfig::default()
        },
        ..Default::default()
    };
    config.calibration.enabled = calibration;
    // 1 000 landmarks on the 20 m grid span 620 m: every range within the sensor's reach.
    config.max_range_m = 1000.0;
    Localizer::new(config).expect("config")
}

/// The running scenario: the localizer, the clock and the noise.
struct Run {
    loc: Localizer,
    count: usize,
    k: usize,
    rng: StdRng,
}

impl Run {
    fn new(count: usize, calibration: bool) -> Self {
        let mut run = Run { loc: localizer(count, calibration), count, k: 0, rng: StdRng::seed_from_u64(14) };
        for _ in 0..count.max(30) {
            run.step();
        }
        run
    }

    /// One odometry message and one range, 0.1 s after the previous.
    fn step(&mut self) {
        self.k += 1;
        let t = 0.1 * self.k as f64;
        let p = pose(t);
        self.loc.add_odometry(t, "", p).expect("odometry");
        let i = self.k % self.count;
        let sensor = Vector2::new(p.translation.x, p.translation.y);
        let range_m = (landmark(i, self.count) - sensor).norm() + 0.3 * self.rng.random_range(-1.0..1.0);
        let m = RangeInput {
            topic: "range".into(),
            stamp_s: t,
            frame_id: String::new(),
            landmark_id: format!("l{i}"),
            range_m: range_m.max(0.1),
            variance_m2: 0.09,
            sensor_limits_m: None,
        };
        match self.loc.add_range(&m) {
            Ok(RangeOutcome::Fused(_)) => {}
            other => panic!("range {} not fused: {other:?}", self.k),
        }
    }
}

fn scale(c: &mut Criterion) {
    let mut group = c.benchmark_group("range");
    for calibration in [false, true] {
        let name = if calibration { "calibrated" } else { "uncalibrated" };
        for count in [1, 10, 100, 1000] {
            let mut run = Run::new(count, calibration);
            group.bench_with_input(BenchmarkId::new(name, count), &count, |b, _| b.iter(|| run.step()));
        }
    }
    group.finish();
}

/// `localizer.dimension: 3`: one anchor 2.5 m above the sensor's plane at (4.7, −3.1),
/// a prior 1 m (σ) off in (x, y), the default height prior N(0, 3²); the robot on the
/// same circle. The two mirror halves are re-solved for the window of every range since
/// the prior (`Estimator::reweight_mirror_sides`, cost ∝ window length) on a schedule,
/// until the window is full (`relinearisation.max_ranges`, 1 000) and folds. One
/// iteration is a track's first 1 000 ranges (each with its odometry message), so the
/// time per iteration / 1 000 is the mean per-range cost over the window's life.
/// Run: `cargo bench --no-default-features --features bag --bench scale -- range3d`.
fn scale_3d(c: &mut Criterion) {
    use landmark_flow::localizer::HeightPriorConfig;
    use nalgebra::Vector3;
    const RANGES: usize = 1000;
    let anchor = Vector3::new(4.7, -3.1, 2.5);
    let mut group = c.benchmark_group("range3d");
    for calibration in [false, true] {
        let mut config = LocalizerConfig {
            priors: PriorsConfig {
                ids: vec!["a".into()],
                means_m: vec![anchor.x + 0.5, anchor.y - 0.5],
                covs_m2: vec![1.0, 0.0, 0.0, 1.0],
                ..PriorsConfig::default()
            },
            dimension: 3,
            height_prior: HeightPriorConfig { mean_m: 0.0, std_m: 3.0 },
            ..Default::default()
        };
        config.calibration.enabled = calibration;
        let track_life = || {
            let mut loc = Localizer::new(config.clone()).expect("config");
            let mut rng = StdRng::seed_from_u64(15);
            for k in 1..=RANGES {
                let t = 0.1 * k as f64;
                let p = pose(t);
                loc.add_odometry(t, "", p).expect("odometry");
                let sensor = Vector3::new(p.translation.x, p.translation.y, 0.0);
                let m = RangeInput {
                    topic: "range".into(),
                    stamp_s: t,
                    frame_id: String::new(),
                    landmark_id: "a".into(),
                    range_m: (anchor - sensor).norm() + 0.3 * rng.random_range(-1.0..1.0),
                    variance_m2: 0.09,
                    sensor_limits_m: None,
                };
                match loc.add_range(&m) {
                    Ok(RangeOutcome::Fused(_)) => {}
                    other => panic!("range {k} not fused: {other:?}"),
                }
            }
            loc
        };
        let name = if calibration { "calibrated_1000_ranges" } else { "uncalibrated_1000_ranges" };
        group.bench_function(name, |b| b.iter(track_life));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = scale
}
criterion_group! {
    name = benches_3d;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(5));
    targets = scale_3d
}
criterion_main!(benches, benches_3d);
