//! Linear-Gaussian references: with z = aᵀs + b + w the posterior is the Kalman update
//! μ' = μ + K(z − aᵀμ − b), Σ' = (I − Kaᵀ)Σ, K = Σa/(aᵀΣa + σ²), computed here in closed
//! form, independently of the estimator code.

use landmark_flow::estimator::flow::{natural_flow_update, NaturalFlowSettings};
use landmark_flow::estimator::kalman::{ekf_update, ukf_update};
use landmark_flow::estimator::{
    cubature, Estimator, EstimatorConfig, GaussianBelief, LinearModel, Method, NoiseShape, ScalarNoise,
};
use nalgebra::{Matrix2, Matrix3, SMatrix, SVector, Vector2, Vector3};

fn kalman<const D: usize>(prior: &GaussianBelief<D>, m: &LinearModel<D>) -> (SVector<f64, D>, SMatrix<f64, D, D>) {
    let a = m.direction;
    let s = a.dot(&(prior.cov * a)) + m.noise.var;
    let k = prior.cov * a / s;
    let mean = prior.mean + k * (m.value - a.dot(&prior.mean) - m.offset);
    let cov = (SMatrix::<f64, D, D>::identity() - k * a.transpose()) * prior.cov;
    (mean, cov)
}

fn linear2() -> (GaussianBelief<2>, LinearModel<2>) {
    let prior = GaussianBelief::new(Vector2::new(1.0, 1.0), Matrix2::new(5.5, -1.5, -1.5, 5.5)).unwrap();
    let model = LinearModel {
        direction: Vector2::new(0.6, -0.8),
        offset: 0.3,
        value: 4.2,
        noise: ScalarNoise::new(NoiseShape::Gaussian, 2.0).unwrap(),
    };
    (prior, model)
}

fn assert_close<const D: usize>(got: &GaussianBelief<D>, mean: &SVector<f64, D>, cov: &SMatrix<f64, D, D>, tol: f64) {
    assert!((got.mean - mean).amax() < tol, "mean {:?} vs {:?}", got.mean, mean);
    assert!((got.cov - cov).amax() < tol, "cov {:?} vs {:?}", got.cov, cov);
}

#[test]
fn natural_fixed_point_equals_kalman_posterior_2d() {
    let (prior, model) = linear2();
    let (mean, cov) = kalman(&prior, &model);
    let nodes = cubature::gauss_hermite_nodes::<2>(3);
    for damping in [1.0, 0.5, 0.2] {
        let settings = NaturalFlowSettings { max_iterations: 500, damping, tolerance: 1e-12 };
        let (post, stats) = natural_flow_update(&prior, &model, &nodes, &settings).unwrap();
        assert!(stats.converged, "damping {damping}: {stats:?}");
        assert_close(&post, &mean, &cov, 1e-6);
    }
}

#[test]
fn natural_fixed_point_equals_kalman_posterior_3d() {
    let prior = GaussianBelief::new(
        Vector3::new(0.5, -1.0, 2.0),
        Matrix3::new(3.0, 0.4, -0.2, 0.4, 2.0, 0.3, -0.2, 0.3, 1.5),
    )
    .unwrap();
    let model = LinearModel {
        direction: Vector3::new(0.2, -0.5, 0.9),
        offset: -1.0,
        value: 0.7,
        noise: ScalarNoise::new(NoiseShape::Gaussian, 0.3).unwrap(),
    };
    let (mean, cov) = kalman(&prior, &model);
    let nodes = cubature::gauss_hermite_nodes::<3>(3);
    let (post, _) = natural_flow_update(&prior, &model, &nodes, &NaturalFlowSettings::default()).unwrap();
    assert_close(&post, &mean, &cov, 1e-6);
}

#[test]
fn kalman_baselines_equal_kalman_posterior_for_linear_model() {
    let (prior, model) = linear2();
    let (mean, cov) = kalman(&prior, &model);
    assert_close(&ekf_update(&prior, &model).unwrap(), &mean, &cov, 1e-12);
    assert_close(&ukf_update(&prior, &model).unwrap(), &mean, &cov, 1e-12);
}

/// The calibrated state is 4-D: the UKF needs 2·4 sigma points (regression: it had
/// room for 6 and panicked on the first calibrated range).
#[test]
fn ukf_equals_kalman_posterior_in_4d() {
    let a = SMatrix::<f64, 4, 4>::new(
        1.0, 0.2, 0.0, -0.1, //
        0.0, 1.3, 0.3, 0.0, //
        0.1, 0.0, 0.2, 0.05, //
        0.0, -0.2, 0.0, 0.9,
    );
    let prior = GaussianBelief::new(SVector::<f64, 4>::new(1.0, -2.0, 1.05, 0.2), a * a.transpose()).unwrap();
    let model = LinearModel {
        direction: SVector::<f64, 4>::new(0.6, -0.8, 5.0, 1.0),
        offset: 0.1,
        value: 3.0,
        noise: ScalarNoise::new(NoiseShape::Gaussian, 0.25).unwrap(),
    };
    let (mean, cov) = kalman(&prior, &model);
    assert_close(&ukf_update(&prior, &model).unwrap(), &mean, &cov, 1e-12);
    assert_close(&ekf_update(&prior, &model).unwrap(), &mean, &cov, 1e-12);
}

#[test]
fn estimator_api_with_linear_model_reaches_kalman_for_every_flow_method() {
    let (prior, model) = linear2();
    let (mean, cov) = kalman(&prior, &model);
    for method in [Method::Natural, Method::Mixture, Method::Ekf, Method::Ukf] {
        let est = Estimator::<2>::new(EstimatorConfig { method, ..Default::default() }).unwrap();
        let state = est.initial_state(prior).unwrap();
        let (next, stats) = est.update_with_model(&state, &model).unwrap();
        assert!(stats.converged);
        assert_close(&next.summary().unwrap().belief, &mean, &cov, 1e-6);
    }
}

#[test]
fn natural_with_monte_carlo_nodes_is_exact_for_linear_mean() {
    // With 256 antithetic samples the fixed point carries only sampling error from the
    // empirical second moment of ε; a loose tolerance still catches a wrong update.
    let (prior, model) = linear2();
    let (mean, cov) = kalman(&prior, &model);
    let est = Estimator::<2>::new(EstimatorConfig {
        method: Method::Natural,
        flow: landmark_flow::estimator::FlowConfig { cubature: false, samples: 256, ..Default::default() },
        ..Default::default()
    })
    .unwrap();
    let (next, _) = est.update_with_model(&est.initial_state(prior).unwrap(), &model).unwrap();
    let b = next.summary().unwrap().belief;
    assert!((b.mean - mean).amax() < 0.05 && (b.cov - cov).amax() < 0.05 * cov.amax(), "{b:?}");
}

#[test]
fn mixture_with_one_component_equals_natural_bit_for_bit() {
    let prior = GaussianBelief::new(Vector2::new(1.0, 1.0), Matrix2::new(5.5, -1.5, -1.5, 5.5)).unwrap();
    let mut mix_cfg = EstimatorConfig { method: Method::Mixture, ..Default::default() };
    mix_cfg.mixture.max_components = 1;
    mix_cfg.mixture.split_budget = 1;
    let nat_cfg = EstimatorConfig { method: Method::Natural, ..Default::default() };
    let mix = Estimator::<2>::new(mix_cfg).unwrap();
    let nat = Estimator::<2>::new(nat_cfg).unwrap();
    let mut ms = mix.initial_state(prior).unwrap();
    let mut ns = nat.initial_state(prior).unwrap();
    for k in 0..10 {
        let a = k as f64 * 0.7;
        let x = Vector2::new(3.0 * a.cos(), 3.0 * a.sin());
        let z = (x - Vector2::new(4.7, -3.1)).norm() + 0.3 * (k as f64).sin();
        ms = mix.update(&ms, x, z, 2.0).unwrap().0;
        ns = nat.update(&ns, x, z, 2.0).unwrap().0;
        let (a, b) = (ms.summary().unwrap(), ns.summary().unwrap());
        assert_eq!(a.components.len(), 1);
        assert_eq!(a.belief, b.belief, "measurement {k}");
    }
}
