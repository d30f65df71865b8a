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
criterion_main!(benches);
