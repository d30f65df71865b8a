//! Property tests over random SPD priors, sensor positions and ranges, adversarial
//! cases included (sensor at the prior mean, huge and tiny Σ, z = 0, z ≫ d): every
//! method returns a publishable (finite, SPD) belief, or a named error, and bounded work.

use landmark_flow::estimator::{
    Estimator, EstimatorConfig, EstimatorError, FlowConfig, GaussianBelief, Method, NoiseShape,
};
use nalgebra::{Matrix2, Matrix3, Rotation3, Vector2, Vector3};
use proptest::prelude::*;

fn config(method: Method, shape: NoiseShape, cubature: bool) -> EstimatorConfig {
    let mut c = EstimatorConfig { method, noise_shape: shape, ..Default::default() };
    c.flow = FlowConfig { cubature, samples: 64, steps: 30, ..Default::default() };
    c.particle.count = 200;
    c
}

fn methods() -> Vec<EstimatorConfig> {
    let mut v = Vec::new();
    for shape in [NoiseShape::Gaussian, NoiseShape::StudentT { dof: 3.0 }, NoiseShape::Huber { threshold_sigma: 1.345 }] {
        v.push(config(Method::Mixture, shape, true));
        v.push(config(Method::Natural, shape, true));
    }
    v.push(config(Method::Natural, NoiseShape::Gaussian, false));
    v.push(config(Method::Plain, NoiseShape::Gaussian, true));
    v.push(config(Method::Ekf, NoiseShape::Gaussian, true));
    v.push(config(Method::Ukf, NoiseShape::Gaussian, true));
    v.push(config(Method::Particle, NoiseShape::Gaussian, true));
    v
}

/// Upper bound on likelihood evaluations for one update of `c` in dimension `d`.
fn work_bound(c: &EstimatorConfig, d: u32) -> usize {
    let nodes = if c.flow.cubature { c.flow.cubature_points_per_axis.pow(d) } else { c.flow.samples.div_ceil(2) * 2 };
    // 1 + iterations × (1 + line-search halvings) evaluations of the node set.
    let natural = nodes * (1 + c.flow.steps * 32);
    match c.method {
        Method::Natural => natural,
        Method::Mixture => natural * c.mixture.split_budget,
        Method::Plain => c.flow.samples * c.flow.steps,
        Method::Ekf | Method::Ukf => 1,
        Method::Particle => c.particle.count,
    }
}

fn spd2(angle: f64, log_eig: (f64, f64)) -> Matrix2<f64> {
    let (c, s) = (angle.cos(), angle.sin());
    let r = Matrix2::new(c, -s, s, c);
    let m = r * Matrix2::from_diagonal(&Vector2::new(10f64.powf(log_eig.0), 10f64.powf(log_eig.1))) * r.transpose();
    (m + m.transpose()) * 0.5
}

fn check<const D: usize>(
    c: &EstimatorConfig,
    prior: GaussianBelief<D>,
    x: nalgebra::SVector<f64, D>,
    z: f64,
    var: f64,
) -> Result<(), TestCaseError> {
    let est = Estimator::<D>::new(*c).unwrap();
    let state = est.initial_state(prior).unwrap();
    let mut current = state;
    // Two updates: the second starts from the first's output.
    for _ in 0..2 {
        match est.update(&current, x, z, var) {
            Ok((next, stats)) => {
                let s = next.summary().unwrap();
                prop_assert!(s.belief.is_publishable(), "{:?}: {:?}", c.method, s.belief);
                for comp in &s.components {
                    prop_assert!(comp.belief.is_publishable() && comp.weight.is_finite() && comp.weight > 0.0);
                }
                prop_assert!(stats.evaluations <= work_bound(c, D as u32), "{:?}: {} evaluations", c.method, stats.evaluations);
                prop_assert!(stats.iterations <= c.flow.steps.max(1));
                current = next;
            }
            // A named rejection is acceptable (e.g. every particle impossible); NaN is not.
            Err(EstimatorError::DegenerateWeights(_)) if c.method == Method::Particle => return Ok(()),
            Err(e) => prop_assert!(false, "{:?}: unexpected error {e}", c.method),
        }
    }
    Ok(())
}

fn arb_case2() -> impl Strategy<Value = (Vector2<f64>, Matrix2<f64>, Vector2<f64>, f64, f64)> {
    (
        (-50.0..50.0f64, -50.0..50.0f64),
        0.0..std::f64::consts::PI,
        (-4.0..4.0f64, -4.0..4.0f64),
        prop_oneof![
            Just(None), // sensor exactly at the prior mean
            (-60.0..60.0f64, -60.0..60.0f64).prop_map(Some),
        ],
        prop_oneof![Just(0.0), 0.0..100.0f64, Just(1e4)],
        prop_oneof![Just(1e-4), 0.01..10.0f64, Just(1e3)],
    )
        .prop_map(|(m, angle, eig, sensor, z, var)| {
            let mean = Vector2::new(m.0, m.1);
            let x = sensor.map(|s| Vector2::new(s.0, s.1)).unwrap_or(mean);
            (mean, spd2(angle, eig), x, z, var)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_method_stays_publishable_in_2d((mean, cov, x, z, var) in arb_case2()) {
        let prior = GaussianBelief::new(mean, cov).unwrap();
        for c in methods() {
            check(&c, prior, x, z, var)?;
        }
    }

    #[test]
    fn flows_stay_publishable_in_3d(
        m in (-20.0..20.0f64, -20.0..20.0f64, -20.0..20.0f64),
        axis in (-1.0..1.0f64, -1.0..1.0f64, 0.1..1.0f64),
        angle in 0.0..3.0f64,
        eig in (-3.0..3.0f64, -3.0..3.0f64, -3.0..3.0f64),
        at_mean in any::<bool>(),
        s in (-30.0..30.0f64, -30.0..30.0f64, -30.0..30.0f64),
        z in prop_oneof![Just(0.0), 0.0..60.0f64],
        var in 0.01..5.0f64,
    ) {
        let r = Rotation3::from_axis_angle(&nalgebra::Unit::new_normalize(Vector3::new(axis.0, axis.1, axis.2)), angle);
        let d = Matrix3::from_diagonal(&Vector3::new(10f64.powf(eig.0), 10f64.powf(eig.1), 10f64.powf(eig.2)));
        let cov = r.matrix() * d * r.matrix().transpose();
        let prior = GaussianBelief::new(Vector3::new(m.0, m.1, m.2), (cov + cov.transpose()) * 0.5).unwrap();
        let x = if at_mean { prior.mean } else { Vector3::new(s.0, s.1, s.2) };
        for method in [Method::Mixture, Method::Natural, Method::Ekf, Method::Ukf] {
            check(&config(method, NoiseShape::Gaussian, true), prior, x, z, var)?;
        }
    }
}

#[test]
fn bad_measurements_are_rejected_by_name() {
    let est = Estimator::<2>::new(EstimatorConfig::default()).unwrap();
    let state = est.initial_state(GaussianBelief::new(Vector2::zeros(), Matrix2::identity()).unwrap()).unwrap();
    assert_eq!(est.update(&state, Vector2::zeros(), -1.0, 1.0).unwrap_err(), EstimatorError::InvalidRange(-1.0));
    assert!(matches!(est.update(&state, Vector2::zeros(), f64::NAN, 1.0), Err(EstimatorError::InvalidRange(_))));
    assert!(matches!(est.update(&state, Vector2::zeros(), 1.0, 0.0), Err(EstimatorError::InvalidNoiseVariance(_))));
    assert!(matches!(est.update(&state, Vector2::zeros(), 1.0, f64::INFINITY), Err(EstimatorError::InvalidNoiseVariance(_))));
    assert!(matches!(
        est.update(&state, Vector2::new(f64::NAN, 0.0), 1.0, 1.0),
        Err(EstimatorError::InvalidSensorPosition(_))
    ));
    let ekf = Estimator::<2>::new(EstimatorConfig { method: Method::Ekf, ..Default::default() }).unwrap();
    assert!(matches!(ekf.update(&state, Vector2::zeros(), 1.0, 1.0), Err(EstimatorError::StateMismatch { .. })));
    assert!(est.initial_state(GaussianBelief { mean: Vector2::zeros(), cov: Matrix2::zeros() }).is_err());
}

#[test]
fn cubature_updates_are_bit_for_bit_reproducible_and_seeded_ones_too() {
    let prior = GaussianBelief::new(Vector2::new(1.0, 1.0), Matrix2::new(5.5, -1.5, -1.5, 5.5)).unwrap();
    for c in [
        EstimatorConfig::default(),
        config(Method::Natural, NoiseShape::Gaussian, false),
        config(Method::Plain, NoiseShape::Gaussian, true),
        config(Method::Particle, NoiseShape::Gaussian, true),
    ] {
        let run = |c: EstimatorConfig| {
            let est = Estimator::<2>::new(c).unwrap();
            let mut s = est.initial_state(prior).unwrap();
            for k in 0..5 {
                let x = Vector2::new(k as f64, -(k as f64));
                s = est.update(&s, x, 5.0 + 0.1 * k as f64, 2.0).unwrap().0;
            }
            s.summary().unwrap().belief
        };
        assert_eq!(run(c), run(c), "{:?}", c.method);
        if c.method == Method::Particle || !c.flow.cubature || c.method == Method::Plain {
            assert_ne!(run(c), run(EstimatorConfig { seed: 99, ..c }), "{:?}: seed has no effect", c.method);
        }
    }
}
