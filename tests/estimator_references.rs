//! Comparisons with independent references: the exact grid posterior (checked itself
//! against the closed-form linear-Gaussian posterior and evidence), the KL-optimal
//! Gaussian found by Nelder–Mead, and a small version of the accuracy report.

use landmark_flow::estimator::cubature::gauss_hermite_nodes;
use landmark_flow::estimator::flow::{natural_flow_update, NaturalFlowSettings};
use landmark_flow::estimator::grid::ExactPosterior2;
use landmark_flow::estimator::reference::kl_optimal_gaussian;
use landmark_flow::estimator::{
    Belief, Estimator, EstimatorConfig, GaussianBelief, LinearModel, Method, NoiseShape, RangeModel, ScalarNoise,
};
use nalgebra::{Matrix2, Vector2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

fn slides_prior() -> GaussianBelief<2> {
    GaussianBelief::new(Vector2::new(1.0, 1.0), Matrix2::new(5.5, -1.5, -1.5, 5.5)).unwrap()
}

fn landmark() -> Vector2<f64> {
    Vector2::new(4.7, -3.1)
}

#[test]
fn grid_posterior_matches_closed_form_linear_gaussian_posterior_and_evidence() {
    let prior = slides_prior();
    let noise = ScalarNoise::new(NoiseShape::Gaussian, 0.5).unwrap();
    let models = [
        LinearModel { direction: Vector2::new(1.0, 0.0), offset: 0.0, value: 2.0, noise },
        LinearModel { direction: Vector2::new(0.3, 0.9), offset: 1.0, value: -0.5, noise },
    ];
    let post = ExactPosterior2::compute(&prior, &models, 200).unwrap();
    // Information form: Λ = Λ₀ + Σ aaᵀ/σ², Λμ = Λ₀μ₀ + Σ a(z − b)/σ².
    let l0 = prior.precision().unwrap();
    let mut lambda = l0;
    let mut eta = l0 * prior.mean;
    for m in &models {
        lambda += m.direction * m.direction.transpose() / noise.var;
        eta += m.direction * ((m.value - m.offset) / noise.var);
    }
    let cov = lambda.try_inverse().unwrap();
    let mean = cov * eta;
    let got = post.moments();
    assert!((got.mean - mean).amax() < 1e-6, "{:?} vs {mean:?}", got.mean);
    assert!((got.cov - cov).amax() < 1e-6, "{:?} vs {cov:?}", got.cov);
    // Evidence: z ~ N(Aμ₀ + b, AΣ₀Aᵀ + σ²I), two measurements jointly.
    let a = Matrix2::from_rows(&[models[0].direction.transpose(), models[1].direction.transpose()]);
    let s = a * prior.cov * a.transpose() + Matrix2::identity() * noise.var;
    let r = Vector2::new(models[0].value - models[0].offset, models[1].value - models[1].offset) - a * prior.mean;
    let evidence = GaussianBelief::new(Vector2::zeros(), s).unwrap().log_density(&r).unwrap();
    assert!((post.log_evidence() - evidence).abs() < 1e-6, "{} vs {evidence}", post.log_evidence());
    // KL of the exact Gaussian posterior from itself is 0.
    let kl = post.kl_from_gaussian(&GaussianBelief::new(mean, cov).unwrap(), 20).unwrap();
    assert!(kl.abs() < 1e-6, "{kl}");
}

#[test]
fn natural_fixed_point_is_the_kl_optimal_gaussian() {
    let prior = slides_prior();
    let nodes = gauss_hermite_nodes::<2>(24);
    for (x, z) in [(Vector2::new(10.0, 0.0), 6.2), (Vector2::new(-3.0, 4.0), 7.5)] {
        let model = RangeModel::new(x, z, 2.0, NoiseShape::Gaussian).unwrap();
        let settings = NaturalFlowSettings { max_iterations: 200, damping: 1.0, tolerance: 1e-12 };
        let (natural, stats) = natural_flow_update(&prior, &model, &nodes, &settings).unwrap();
        assert!(stats.converged);
        let optimum = kl_optimal_gaussian(&prior, &model, 24).unwrap();
        assert!(-stats.elbo <= optimum.objective + 1e-9, "natural J {} > optimum {}", -stats.elbo, optimum.objective);
        assert!((natural.mean - optimum.belief.mean).amax() < 1e-4, "{:?} vs {:?}", natural.mean, optimum.belief.mean);
        assert!((natural.cov - optimum.belief.cov).amax() < 1e-4, "{:?} vs {:?}", natural.cov, optimum.belief.cov);
    }
}

#[test]
fn particle_filter_mean_agrees_with_grid_posterior() {
    let prior = slides_prior();
    let models: Vec<RangeModel<2>> = [(10.0, 0.0), (0.0, -10.0), (-7.0, 7.0)]
        .iter()
        .zip([9.0, 7.6, 15.3])
        .map(|(&(x, y), z)| RangeModel::new(Vector2::new(x, y), z, 2.0, NoiseShape::Gaussian).unwrap())
        .collect();
    let exact = ExactPosterior2::compute(&prior, &models, 200).unwrap().moments();
    let mut cfg = EstimatorConfig { method: Method::Particle, seed: 7, ..Default::default() };
    cfg.particle.count = 20_000;
    let est = Estimator::<2>::new(cfg).unwrap();
    let mut state = est.initial_state(prior).unwrap();
    for m in &models {
        state = est.update(&state, m.sensor_position, m.range_m, 2.0).unwrap().0;
    }
    let b = state.summary().unwrap().belief;
    // Roughly 4 standard errors of a 20k-particle mean (with resampling losses).
    let tol = 4.0 * (exact.cov.diagonal().amax() / 2_000.0).sqrt();
    assert!((b.mean - exact.mean).amax() < tol, "{:?} vs {:?} (tol {tol})", b.mean, exact.mean);
    assert!((b.cov - exact.cov).amax() < 0.15 * exact.cov.amax(), "{:?} vs {:?}", b.cov, exact.cov);
}

#[test]
fn mixture_keeps_both_lobes_of_the_first_ring() {
    // First measurement of the slides' problem from x₀ = 0 inside the prior: the exact
    // posterior is a ring. The mixture must put mass on both sides of the sensor.
    let est = Estimator::<2>::new(EstimatorConfig::default()).unwrap();
    let state = est.initial_state(slides_prior()).unwrap();
    let (state, stats) = est.update(&state, Vector2::zeros(), landmark().norm(), 2.0).unwrap();
    let summary = state.summary().unwrap();
    assert!(stats.components >= 3, "{stats:?}");
    let Belief::Mixture(mix) = state.belief() else { panic!("mixture state") };
    let exact = ExactPosterior2::compute(&slides_prior(), &[RangeModel::new(Vector2::zeros(), landmark().norm(), 2.0, NoiseShape::Gaussian).unwrap()], 160).unwrap();
    let kl_mix = exact.kl_from_mixture(mix, 16).unwrap();
    let kl_single = {
        let nat = Estimator::<2>::new(EstimatorConfig { method: Method::Natural, ..Default::default() }).unwrap();
        let s = nat.update(&nat.initial_state(slides_prior()).unwrap(), Vector2::zeros(), landmark().norm(), 2.0).unwrap().0;
        exact.kl_from_gaussian(&s.summary().unwrap().belief, 16).unwrap()
    };
    assert!(kl_mix < 0.1 && kl_mix < 0.5 * kl_single, "mixture KL {kl_mix}, single KL {kl_single}");
    // Mass on both sides of the line through the sensor along the true bearing.
    let bearing = landmark().normalize();
    let (mut near_side, mut far_side) = (0.0, 0.0);
    for c in &summary.components {
        if c.belief.mean.dot(&bearing) > 0.0 {
            near_side += c.weight;
        } else {
            far_side += c.weight;
        }
    }
    assert!(near_side > 0.1 && far_side > 0.1, "{near_side} / {far_side}");
}

/// Small version of the accuracy report (the full one is the `estimator_eval` example, `make eval`).
#[test]
fn near_trajectory_mixture_keeps_the_landmark_where_a_single_gaussian_loses_it() {
    let seeds = 24;
    let mut lost = [0usize; 2];
    for seed in 0..seeds {
        let mut rng = StdRng::seed_from_u64(1000 + seed);
        let xs: Vec<Vector2<f64>> = std::iter::once(Vector2::zeros())
            .chain((0..29).map(|k| {
                let a = 2.0 * std::f64::consts::PI * k as f64 / 29.0;
                Vector2::new(3.0 * a.cos(), 3.0 * a.sin())
            }))
            .collect();
        let zs: Vec<f64> = xs
            .iter()
            .map(|x| ((x - landmark()).norm() + 2f64.sqrt() * rng.sample::<f64, _>(StandardNormal)).max(0.0))
            .collect();
        for (i, method) in [Method::Mixture, Method::Natural].into_iter().enumerate() {
            let est = Estimator::<2>::new(EstimatorConfig { method, seed, ..Default::default() }).unwrap();
            let mut state = est.initial_state(slides_prior()).unwrap();
            for (x, z) in xs.iter().zip(&zs) {
                state = est.update(&state, *x, *z, 2.0).unwrap().0;
            }
            if (state.summary().unwrap().belief.mean - landmark()).norm() > 2.0 {
                lost[i] += 1;
            }
        }
    }
    assert!(lost[0] <= 1, "mixture lost {} of {seeds}", lost[0]);
    assert!(lost[1] >= seeds as usize / 3, "natural lost only {} of {seeds}: the test problem is not ambiguous", lost[1]);
}
