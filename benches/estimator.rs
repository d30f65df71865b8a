//! Time per update of every estimator on the slides' problem (issue 3):
//! prior N([1, 1], [[5.5, −1.5], [−1.5, 5.5]]), σ² = 2 m². "first" is the ambiguous first
//! measurement from x₀ = 0 (inside the prior: the mixture splits), "far" one from (10, 0).
//! Run: `cargo bench --no-default-features --bench estimator`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use landmark_flow::estimator::{Estimator, EstimatorConfig, FlowConfig, GaussianBelief, Method};
use nalgebra::{Matrix2, Vector2};

fn prior() -> GaussianBelief<2> {
    GaussianBelief::new(Vector2::new(1.0, 1.0), Matrix2::new(5.5, -1.5, -1.5, 5.5)).expect("SPD prior")
}

fn bench_method(c: &mut Criterion, label: &str, config: EstimatorConfig) {
    let est = Estimator::<2>::new(config).expect("valid config");
    let state = est.initial_state(prior()).expect("valid prior");
    let y = Vector2::new(4.7, -3.1);
    for (case, x) in [("first", Vector2::zeros()), ("far", Vector2::new(10.0, 0.0))] {
        let z = (x - y).norm();
        c.bench_function(&format!("{label}/{case}"), |b| {
            b.iter(|| est.update(black_box(&state), black_box(x), black_box(z), 2.0).expect("update"))
        });
    }
}

fn estimators(c: &mut Criterion) {
    let base = |method: Method| EstimatorConfig { method, ..EstimatorConfig::default() };
    let mc = FlowConfig { cubature: false, samples: 256, steps: 50, ..FlowConfig::default() };
    bench_method(c, "natural_mc_n256_N50", EstimatorConfig { flow: mc, ..base(Method::Natural) });
    bench_method(c, "natural_gh5x5", base(Method::Natural));
    bench_method(c, "mixture_gh5x5", base(Method::Mixture));
    bench_method(c, "plain_n256_N50", EstimatorConfig { flow: mc, ..base(Method::Plain) });
    bench_method(c, "ekf", base(Method::Ekf));
    bench_method(c, "ukf", base(Method::Ukf));
    for n in [1_000, 10_000] {
        let mut cfg = base(Method::Particle);
        cfg.particle.count = n;
        bench_method(c, &format!("pf{}k", n / 1000), cfg);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(1));
    targets = estimators
}

/// 3-D landmark (issue 15): the slides' (x, y) prior with z ~ N(0, 3²), σ² = 0.25 m², the
/// landmark 2.5 m above the sensor plane z = 0. "first" is a range from inside the prior
/// (x = 0, the mixture splits), "far" one from (10, 0, 0). `mixture_mirror` is one
/// `mirror_mixture_flow_update` of the two-component mirror split of the prior.
/// Run: `cargo bench --no-default-features --bench estimator -- 3d`.
fn prior3() -> GaussianBelief<3> {
    let p = prior();
    let mut cov = nalgebra::Matrix3::zeros();
    cov.fixed_view_mut::<2, 2>(0, 0).copy_from(&p.cov);
    cov[(2, 2)] = 9.0;
    GaussianBelief::new(nalgebra::Vector3::new(p.mean.x, p.mean.y, 0.0), cov).expect("SPD prior")
}

fn estimators_3d(c: &mut Criterion) {
    use landmark_flow::estimator::cubature::gauss_hermite_nodes;
    use landmark_flow::estimator::mixture::{mirror_mixture, mirror_mixture_flow_update};
    use landmark_flow::estimator::{NoiseShape, RangeModel};
    use nalgebra::Vector3;
    let y = Vector3::new(4.7, -3.1, 2.5);
    let cases = [("first", Vector3::zeros()), ("far", Vector3::new(10.0, 0.0, 0.0))];
    for (label, method) in [("natural_gh5x5x5", Method::Natural), ("mixture_gh5x5x5", Method::Mixture)] {
        let est = Estimator::<3>::new(EstimatorConfig { method, ..EstimatorConfig::default() }).expect("valid config");
        let state = est.initial_state(prior3()).expect("valid prior");
        for (case, x) in cases {
            let z = (x - y).norm();
            c.bench_function(&format!("3d/{label}/{case}"), |b| {
                b.iter(|| est.update(black_box(&state), black_box(x), black_box(z), 0.25).expect("update"))
            });
        }
    }
    let config = EstimatorConfig::default();
    let nodes = gauss_hermite_nodes::<3>(config.flow.cubature_points_per_axis);
    let mix = mirror_mixture(&prior3(), 0.0).expect("valid prior");
    for (case, x) in cases {
        let model = RangeModel::new(x, (x - y).norm(), 0.25, NoiseShape::Gaussian).expect("valid range");
        c.bench_function(&format!("3d/mixture_mirror_gh5x5x5/{case}"), |b| {
            b.iter(|| {
                mirror_mixture_flow_update(black_box(&mix), 0.0, black_box(&model), &nodes, &config.natural_settings(), &config.mixture_settings())
                    .expect("update")
            })
        });
    }
}

criterion_group! {
    name = benches_3d;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(1));
    targets = estimators_3d
}
/// Calibrated range, z = s‖y − x‖ + b: one natural-flow update of θ = (y, s, b) from the
/// slides' position prior × N((1, 0), diag(0.03², 0.3²)), σ² = 0.25 m², the same
/// "first" and "far" ranges. 2-D: 5⁴ Gauss–Hermite nodes; 3-D (D = 5, no product rule):
/// 256 Monte Carlo nodes. Run: `cargo bench --no-default-features --bench estimator -- calibrated`.
fn calibrated(c: &mut Criterion) {
    use landmark_flow::estimator::{joint_prior, CalibratedRangeModel, CalibratedRangeModel3, NoiseShape};
    use nalgebra::Vector3;
    let calibration = GaussianBelief::new(Vector2::new(1.0, 0.0), Matrix2::new(0.03 * 0.03, 0.0, 0.0, 0.09)).expect("SPD");
    let config = EstimatorConfig { method: Method::Natural, ..EstimatorConfig::default() };
    let est2 = Estimator::<4>::new(config).expect("valid config");
    let prior2: GaussianBelief<4> = joint_prior(&prior(), &calibration);
    let y = Vector2::new(4.7, -3.1);
    for (case, x) in [("first", Vector2::zeros()), ("far", Vector2::new(10.0, 0.0))] {
        let model = CalibratedRangeModel::new(x, (x - y).norm(), 0.25, NoiseShape::Gaussian).expect("valid range");
        c.bench_function(&format!("calibrated/natural_gh5x5x5x5/{case}"), |b| {
            b.iter(|| est2.update_gaussian(black_box(&prior2), 0, black_box(&model)).expect("update"))
        });
    }
    let est3 = Estimator::<5>::new(config).expect("valid config");
    let prior3: GaussianBelief<5> = joint_prior(&prior3(), &calibration);
    let y = Vector3::new(4.7, -3.1, 2.5);
    for (case, x) in [("first", Vector3::zeros()), ("far", Vector3::new(10.0, 0.0, 0.0))] {
        let model = CalibratedRangeModel3::new(x, (x - y).norm(), 0.25, NoiseShape::Gaussian).expect("valid range");
        c.bench_function(&format!("calibrated/3d_natural_mc_n256/{case}"), |b| {
            b.iter(|| est3.update_gaussian(black_box(&prior3), 0, black_box(&model)).expect("update"))
        });
    }
}

criterion_group! {
    name = benches_calibrated;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(2));
    targets = calibrated
}
criterion_main!(benches, benches_3d, benches_calibrated);
