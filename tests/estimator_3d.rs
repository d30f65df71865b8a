//! 3-D landmarks (issue 15, estimator level): s = (x, y, z) observed by ranges from a
//! sensor moving in the plane z = 0.
//!
//! References, all independent of the estimator code: a Kalman update written here
//! (linear-Gaussian case), the exact 3-D grid posterior
//! ([`landmark_flow::estimator::grid3::ExactPosterior3`]: prior × likelihoods summed on a
//! grid, no Gaussian approximation, no flow), and seeded Monte Carlo samples of the
//! prior for the mirror-mode split.

use landmark_flow::estimator::cubature::gauss_hermite_nodes;
use landmark_flow::estimator::grid3::ExactPosterior3;
use landmark_flow::estimator::mixture::{mirror_mixture, mirror_mixture_flow_update, mixture_flow_update};
use landmark_flow::estimator::{
    calibration_marginal, joint_prior, position_marginal, Belief, CalibratedRangeModel3, CalibrationPrior, Estimator,
    EstimatorConfig, EstimatorError, FlowConfig, GaussianBelief, GaussianMixture, HeightPrior, InitialisationGrid,
    LinearModel, MeasurementModel, Method, NoiseShape, RangeModel, ScalarNoise,
};
use nalgebra::{DMatrix, DVector, Matrix2, Matrix3, Rotation3, SMatrix, SVector, Vector2, Vector3};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

// ---------------------------------------------------------------------------------
// Linear-Gaussian equivalence
// ---------------------------------------------------------------------------------

/// Kalman update for z = aᵀs + b + w, w ~ N(0, σ²): K = Σa/(aᵀΣa + σ²),
/// μ' = μ + K(z − aᵀμ − b), Σ' = (I − Kaᵀ)Σ (Joseph form not needed at these scales).
fn kalman(mean: &Vector3<f64>, cov: &Matrix3<f64>, m: &LinearModel<3>) -> (Vector3<f64>, Matrix3<f64>) {
    let a = m.direction;
    let s = a.dot(&(cov * a)) + m.noise.var;
    let k = cov * a / s;
    let mean = mean + k * (m.value - a.dot(mean) - m.offset);
    let cov = (Matrix3::identity() - k * a.transpose()) * cov;
    (mean, (cov + cov.transpose()) * 0.5)
}

fn linear_prior() -> GaussianBelief<3> {
    // Horizontal block like the slides' prior, z broad (σ_z = 3 m) and weakly coupled.
    GaussianBelief::new(Vector3::new(1.0, 1.0, 0.0), Matrix3::new(5.5, -1.5, 0.3, -1.5, 5.5, -0.2, 0.3, -0.2, 9.0)).unwrap()
}

/// Three linear measurements whose directions span ℝ³ (the last two have a z part), so
/// after the sequence every coordinate, z included, has been updated.
fn linear_models() -> Vec<LinearModel<3>> {
    let noise = |var| ScalarNoise::new(NoiseShape::Gaussian, var).unwrap();
    vec![
        LinearModel { direction: Vector3::new(0.6, -0.8, 0.0), offset: 0.3, value: 4.2, noise: noise(0.5) },
        LinearModel { direction: Vector3::new(0.0, 0.6, 0.8), offset: -1.0, value: 0.7, noise: noise(0.3) },
        LinearModel { direction: Vector3::new(0.5, 0.5, -0.7), offset: 0.0, value: -1.5, noise: noise(1.0) },
    ]
}

fn run_linear(config: EstimatorConfig) -> GaussianBelief<3> {
    let est = Estimator::<3>::new(config).unwrap();
    let mut state = est.initial_state(linear_prior()).unwrap();
    for m in linear_models() {
        state = est.update_with_model(&state, &m).unwrap().0;
    }
    state.summary().unwrap().belief
}

fn kalman_sequence() -> (Vector3<f64>, Matrix3<f64>) {
    let p = linear_prior();
    linear_models().iter().fold((p.mean, p.cov), |(m, c), model| kalman(&m, &c, model))
}

/// Deterministic methods: with a linear h the natural flow's fixed point is the Kalman
/// posterior and Gauss–Hermite cubature integrates its (polynomial) expectations exactly,
/// so only the stopping tolerance (1e-6 relative change) and rounding remain: 1e-6 m,
/// 1e-6 m². EKF and UKF are the Kalman update algebraically (UKF: sigma points are exact
/// for a linear h): 1e-9. The mixture never splits (∇²h = 0, nonlinearity index 0), so
/// it is the natural flow.
#[test]
fn linear_gaussian_3d_deterministic_methods_equal_kalman() {
    let (mean, cov) = kalman_sequence();
    for (method, tol) in [(Method::Natural, 1e-6), (Method::Mixture, 1e-6), (Method::Ekf, 1e-9), (Method::Ukf, 1e-9)] {
        let got = run_linear(EstimatorConfig { method, ..Default::default() });
        assert!((got.mean - mean).amax() < tol, "{method:?}: mean {} vs Kalman {}", got.mean, mean);
        assert!((got.cov - cov).amax() < tol, "{method:?}: cov {} vs Kalman {}", got.cov, cov);
    }
}

/// Sampled methods against the same Kalman posterior, tolerances from their sampling
/// error (posterior standard deviations here are 0.5–1.6 m):
/// * natural flow on 1024 antithetic samples: antithetic pairs make the mean equation
///   exact for a linear h; the covariance carries the error of the empirical second
///   moment of ε, ≈ √(2/n) ≈ 4 % relative per entry: 0.05 m and 10 % of max|Σ|.
/// * plain flow, n = 1000 samples, N = 2000 Euler steps of η = 0.05 (t = 100, long
///   enough for the linear flow to reach its fixed point): each step's gradient has MC
///   noise, averaged over the last ~1/η steps: 0.15 m and 15 % of max|Σ|.
/// * particle filter, 20 000 particles: the posterior mean has a standard error
///   σ/√ESS ≲ 1.6/√2000 = 0.04 m (ESS after three updates ≥ 10 %): 5 standard errors
///   = 0.2 m; covariance 20 %.
#[test]
fn linear_gaussian_3d_sampled_methods_equal_kalman_within_sampling_error() {
    let (mean, cov) = kalman_sequence();
    let mc = EstimatorConfig {
        method: Method::Natural,
        flow: FlowConfig { cubature: false, samples: 1024, ..Default::default() },
        ..Default::default()
    };
    let mut plain = EstimatorConfig { method: Method::Plain, ..Default::default() };
    plain.flow = FlowConfig { samples: 1000, steps: 2000, step_size: 0.05, ..Default::default() };
    let mut particle = EstimatorConfig { method: Method::Particle, seed: 7, ..Default::default() };
    particle.particle.count = 20_000;
    for (config, mean_tol, cov_rel) in [(mc, 0.05, 0.10), (plain, 0.15, 0.15), (particle, 0.2, 0.2)] {
        let got = run_linear(config);
        assert!((got.mean - mean).amax() < mean_tol, "{:?}: mean {} vs Kalman {}", config.method, got.mean, mean);
        assert!(
            (got.cov - cov).amax() < cov_rel * cov.amax(),
            "{:?}: cov {} vs Kalman {}",
            config.method,
            got.cov,
            cov
        );
    }
}

/// The reference itself against the closed form: with linear-Gaussian measurements the
/// exact posterior is the Kalman posterior, so the grid's moments must equal it to the
/// midpoint rule's error (smooth integrand, 80³ cells on a ±9σ box: ≪ 1e-4 relative;
/// tolerance 1e-4 of max|Σ|), and its mass above the plane z = μ'_z + σ'_z must be
/// Q(1) = 0.158 655 253 931 457 (the cell cut by the plane is split linearly: error
/// O(h²φ′) ≲ 1e-4 for h ≈ σ/9; tolerance 5e-4). Also the memory bound is enforced.
#[test]
fn exact_grid_3d_equals_kalman_for_linear_models() {
    let (mean, cov) = kalman_sequence();
    let exact = ExactPosterior3::compute(&linear_prior(), &linear_models(), GRID_CELLS).unwrap();
    let p = exact.moments();
    assert!((p.mean - mean).amax() < 1e-4 * cov.amax().sqrt(), "grid mean {} vs Kalman {}", p.mean, mean);
    assert!((p.cov - cov).amax() < 1e-4 * cov.amax(), "grid cov {} vs Kalman {}", p.cov, cov);
    let plane = mean.z + cov[(2, 2)].sqrt();
    let split = exact.split_at_plane(plane);
    assert!((split.mass_above - 0.158_655_253_931_457).abs() < 5e-4, "mass above μ+σ: {}", split.mass_above);
    assert!((split.mass_above + split.mass_below - 1.0).abs() < 1e-12);
    // The prior's log density integrates to the evidence: ln p at the mean is finite and
    // the posterior density at the Kalman mean is the Gaussian's peak, (2π)^{-3/2}|Σ|^{-1/2}.
    let peak = -1.5 * (2.0 * std::f64::consts::PI).ln() - 0.5 * cov.determinant().ln();
    assert!((exact.log_density(&mean) - peak).abs() < 1e-3, "ln p(mean) {} vs {peak}", exact.log_density(&mean));
    let too_big = ExactPosterior3::compute(&linear_prior(), &linear_models(), 121);
    assert!(matches!(too_big, Err(EstimatorError::Config(_))), "{too_big:?}");
}

// ---------------------------------------------------------------------------------
// Mirror-mode mixture
// ---------------------------------------------------------------------------------

/// The mirror split against Monte Carlo: 400 000 seeded prior samples, sorted by the
/// side of the plane. Tolerances are 5 standard errors of the sample statistics
/// (mass: √(p(1−p)/N) ≤ 8e-4; means: σ/√(N p) with σ ≤ 3 m; second moments: ≈ √2 σ²/√(N p)).
#[test]
fn mirror_mixture_matches_monte_carlo_halves_of_the_prior() {
    let priors = [
        GaussianBelief::new(Vector3::new(1.0, 1.0, 0.0), Matrix3::new(5.5, -1.5, 0.0, -1.5, 5.5, 0.0, 0.0, 0.0, 9.0)).unwrap(),
        GaussianBelief::new(Vector3::new(1.0, 1.0, 1.5), Matrix3::new(5.5, -1.5, 0.8, -1.5, 5.5, -0.4, 0.8, -0.4, 1.0)).unwrap(),
    ];
    let n = 400_000;
    for (case, prior) in priors.iter().enumerate() {
        let mix = mirror_mixture(prior, 0.0).unwrap();
        assert_eq!(mix.components().len(), 2);
        let l = prior.cholesky().unwrap().l();
        let mut rng = StdRng::seed_from_u64(11 + case as u64);
        let mut sums = [(0.0, Vector3::zeros(), Matrix3::zeros()); 2];
        for _ in 0..n {
            let e = Vector3::from_fn(|_, _| rng.sample::<f64, _>(StandardNormal));
            let s = prior.mean + l * e;
            let side = usize::from(s.z < 0.0);
            sums[side].0 += 1.0;
            sums[side].1 += s;
            sums[side].2 += s * s.transpose();
        }
        // Components: the first is above the plane (mean z > 0).
        let mut comps = mix.components().to_vec();
        comps.sort_by(|a, b| b.belief.mean.z.total_cmp(&a.belief.mean.z));
        for (side, c) in comps.iter().enumerate() {
            let (count, sum, second) = sums[side];
            let p = count / n as f64;
            let mean = sum / count;
            let cov = second / count - mean * mean.transpose();
            let se_mean = 3.0 / (n as f64 * p).sqrt();
            let se_cov = 2f64.sqrt() * 9.0 / (n as f64 * p).sqrt();
            assert!((c.weight - p).abs() < 5.0 * 8e-4, "case {case} side {side}: weight {} vs MC {p}", c.weight);
            assert!((c.belief.mean - mean).amax() < 5.0 * se_mean, "case {case} side {side}: mean {} vs MC {mean}", c.belief.mean);
            assert!((c.belief.cov - cov).amax() < 5.0 * se_cov, "case {case} side {side}: cov {} vs MC {cov}", c.belief.cov);
        }
        // Symmetric prior: equal weights.
        if case == 0 {
            assert!((comps[0].weight - 0.5).abs() < 1e-6 && (comps[0].belief.mean.z + comps[1].belief.mean.z).abs() < 1e-9);
        }
    }
}

#[test]
fn mirror_mixture_keeps_one_component_when_the_prior_decides() {
    let prior = GaussianBelief::new(Vector3::new(0.0, 0.0, 8.0), Matrix3::identity()).unwrap();
    let mix = mirror_mixture(&prior, 0.0).unwrap();
    assert_eq!(mix.components().len(), 1);
    assert_eq!(mix.components()[0].belief, prior);
    assert!(matches!(mirror_mixture(&prior, f64::NAN), Err(EstimatorError::NonFinite { .. })));
}

// ---------------------------------------------------------------------------------
// Mixture flow vs the exact 3-D grid on a planar trajectory
// ---------------------------------------------------------------------------------

/// Fine-grid cells per axis of the reference (80³ = 512 000 cells per pass).
const GRID_CELLS: usize = 80;

struct Scenario {
    prior: GaussianBelief<3>,
    landmark: Vector3<f64>,
    range_std_m: f64,
    seed: u64,
}

/// 40 ranges from a radius-4 m circle in the plane z = 0 around the origin, seeded noise.
fn planar_ranges(s: &Scenario) -> Vec<RangeModel<3>> {
    let mut rng = StdRng::seed_from_u64(s.seed);
    (0..40)
        .map(|k| {
            let a = 2.0 * std::f64::consts::PI * k as f64 / 40.0;
            let x = Vector3::new(4.0 * a.cos(), 4.0 * a.sin(), 0.0);
            let z = ((x - s.landmark).norm() + s.range_std_m * rng.sample::<f64, _>(StandardNormal)).max(0.0);
            RangeModel::new(x, z, s.range_std_m * s.range_std_m, NoiseShape::Gaussian).unwrap()
        })
        .collect()
}

fn mixture_config() -> EstimatorConfig {
    EstimatorConfig { method: Method::Mixture, ..Default::default() }
}

/// The mirror-mode mixture flow (default settings, 5³ Gauss–Hermite nodes) started from
/// the mirror mixture of the prior at the sensor plane, through every range.
fn mirror_mixture_run(s: &Scenario, models: &[RangeModel<3>]) -> GaussianMixture<3> {
    let config = mixture_config();
    let nodes = gauss_hermite_nodes::<3>(config.flow.cubature_points_per_axis);
    let mut mix = mirror_mixture(&s.prior, 0.0).unwrap();
    for m in models {
        mix = mirror_mixture_flow_update(&mix, 0.0, m, &nodes, &config.natural_settings(), &config.mixture_settings())
            .unwrap()
            .0;
    }
    mix
}

fn symmetric_prior() -> GaussianBelief<3> {
    // Slides-like horizontal block around the origin, z ~ N(0, 3²): symmetric about z = 0.
    GaussianBelief::new(Vector3::new(0.5, 0.5, 0.0), Matrix3::new(5.5, -1.5, 0.0, -1.5, 5.5, 0.0, 0.0, 0.0, 9.0)).unwrap()
}

fn height_prior() -> GaussianBelief<3> {
    // A height prior that is not symmetric about the sensor plane: z ~ N(1.5, 1²).
    GaussianBelief::new(Vector3::new(0.5, 0.5, 1.5), Matrix3::new(5.5, -1.5, 0.0, -1.5, 5.5, 0.0, 0.0, 0.0, 1.0)).unwrap()
}

/// Symmetric prior, landmark 2.5 m above the plane, σ = 0.5 m: the exact posterior has
/// two mirror modes at z ≈ ±2.5 with mass ½ each (the likelihood of planar ranges and
/// the prior are both even in z). The mixture must keep both, each with weight ½: the
/// grid's mass above agrees with ½ to rounding (the grid is symmetric about z = 0:
/// 1e-9), the mixture's too (its two halves are mirror images updated on mirrored
/// cubature nodes with equal budgets: 1e-6; the greedy shared split budget of
/// `mixture_flow_update` gave 0.57 here, see `mirror_mixture_flow_update`).
#[test]
fn mixture_keeps_both_mirror_modes_with_the_exact_mass_landmark_2_5m_above() {
    let s = Scenario { prior: symmetric_prior(), landmark: Vector3::new(1.0, 0.5, 2.5), range_std_m: 0.5, seed: 3 };
    let models = planar_ranges(&s);
    let exact = ExactPosterior3::compute(&s.prior, &models, GRID_CELLS).unwrap();
    let split = exact.split_at_plane(0.0);
    let mix = mirror_mixture_run(&s, &models);
    let mass = mix.mass_above(0.0);
    eprintln!("exact {split:?}\nmixture mass above {mass}, components {:?}", mix.components());
    assert!((split.mass_above - 0.5).abs() < 1e-9, "grid mass above {}", split.mass_above);
    assert!((mass - split.mass_above).abs() < 1e-6, "mixture mass above {mass} vs exact {}", split.mass_above);
    // Both modes are carried as components near the exact conditional means.
    for (side, mode) in [(1.0, split.mean_above), (-1.0, split.mean_below)] {
        let weight: f64 =
            mix.components().iter().filter(|c| c.belief.mean.z * side > 0.0).map(|c| c.weight).sum();
        let nearest = mix
            .components()
            .iter()
            .map(|c| (c.belief.mean - mode).norm())
            .fold(f64::INFINITY, f64::min);
        assert!(weight > 0.45, "side {side}: weight {weight}");
        assert!(nearest < 0.5, "side {side}: no component within 0.5 m of the exact mode {mode}");
    }
}

/// Landmark only 0.5 m above the plane, σ = 0.7 m: z is barely observed (the range
/// differs from the horizontal distance by z²/2ρ ≈ 0.03 m), the exact posterior in z is
/// broad and still even. Mass above: ½ (grid and mixture, as above). The horizontal mean
/// must match the exact one: the exact posterior's horizontal standard deviation is
/// ≈ 0.15–0.2 m; the mixture is a Gaussian-sum approximation on each side and its mean
/// is within 0.1 m of the exact. The z variance must stay honest: the moment-matched
/// belief's var(z) ≥ 0.75 × the exact one (a filter that "learned" z from this data
/// would report a small var(z); each half is one Gaussian per side, a little narrower
/// than the exact half, which is skewed toward the plane, hence not 1).
#[test]
fn mixture_keeps_weak_height_honest_landmark_0_5m_above() {
    let s = Scenario { prior: symmetric_prior(), landmark: Vector3::new(1.0, 0.5, 0.5), range_std_m: 0.7, seed: 5 };
    let models = planar_ranges(&s);
    let exact = ExactPosterior3::compute(&s.prior, &models, GRID_CELLS).unwrap();
    let split = exact.split_at_plane(0.0);
    let mix = mirror_mixture_run(&s, &models);
    let q = mix.moment_matched();
    let p = exact.moments();
    eprintln!("exact {p:?} {split:?}\nmixture {q:?} mass above {}", mix.mass_above(0.0));
    assert!((split.mass_above - 0.5).abs() < 1e-9);
    assert!((mix.mass_above(0.0) - 0.5).abs() < 1e-6);
    let horizontal = (q.mean.xy() - p.mean.xy()).norm();
    assert!(horizontal < 0.1, "horizontal mean {} vs exact {}", q.mean.xy(), p.mean.xy());
    for i in 0..2 {
        let ratio = q.cov[(i, i)] / p.cov[(i, i)];
        assert!((0.5..2.0).contains(&ratio), "var axis {i}: {} vs exact {}", q.cov[(i, i)], p.cov[(i, i)]);
    }
    assert!(q.cov[(2, 2)] >= 0.75 * p.cov[(2, 2)], "var(z) {} vs exact {}", q.cov[(2, 2)], p.cov[(2, 2)]);
    // Weakly observed: the exact posterior's z standard deviation exceeds the height itself.
    assert!(p.cov[(2, 2)] > 0.5 * 0.5, "the scenario must leave z weakly observed: exact var(z) {}", p.cov[(2, 2)]);
}

/// A height prior that is not symmetric about the plane (z ~ N(1.5, 1)): the exact mass
/// above the plane is no longer ½ (grid: 0.958 for the landmark at +0.5 m, where z is
/// weakly observed and the prior mostly decides the mirror; 0.9992 at +2.5 m). The grid's
/// own error is negligible here (midpoint rule on ≤ 0.1 m cells of a posterior with
/// σ ≥ 0.12 m); what differs is the mixture's representation of the lower half: one
/// moment-matched Gaussian of the prior's truncated tail (α = −1.5), whose density far
/// below the plane is smaller than the tail's, so the minor side's weight is
/// under-estimated by at most its own mass. Tolerance 0.02, half the exact minor mass of
/// the 0.5 m case: the test fails if the mixture drops the minor mode or doubles it.
#[test]
fn mixture_mass_above_plane_matches_exact_for_an_asymmetric_height_prior() {
    for (height, seed) in [(0.5, 9), (2.5, 13)] {
        let s = Scenario { prior: height_prior(), landmark: Vector3::new(1.0, 0.5, height), range_std_m: 0.5, seed };
        let models = planar_ranges(&s);
        let exact = ExactPosterior3::compute(&s.prior, &models, GRID_CELLS).unwrap();
        let split = exact.split_at_plane(0.0);
        let mix = mirror_mixture_run(&s, &models);
        let mass = mix.mass_above(0.0);
        let q = mix.moment_matched();
        let p = exact.moments();
        eprintln!("height {height}: exact {p:?} {split:?}\nmixture {q:?} mass above {mass} comps {:?}", mix.components());
        assert!(split.mass_above > 0.6, "height {height}: the case must be asymmetric: exact mass above {}", split.mass_above);
        assert!((mass - split.mass_above).abs() < 0.02, "height {height}: mixture mass above {mass} vs exact {}", split.mass_above);
        assert!((q.mean.xy() - p.mean.xy()).norm() < 0.1, "height {height}: horizontal {} vs {}", q.mean.xy(), p.mean.xy());
    }
}

/// `Estimator::refine` (the localizer's batch re-solve, 3³ Gauss–Hermite nodes) in 3-D on
/// a case the height prior makes unimodal (z ~ N(2.5, 0.7²): mass below the plane
/// Φ(−3.6) ≈ 2e-4): after 40 planar ranges the posterior is close to Gaussian, and the
/// KL(q ‖ p)-optimal Gaussian's mean must be within 0.01 m of the exact grid mean
/// (posterior standard deviations ≈ 0.12–0.2 m; what remains is the posterior's skew,
/// a small fraction of σ here, and the grid's midpoint error, ≪ 1 mm), its variances
/// within ±15 % of the exact ones (the KL(q ‖ p) fit under-disperses a skewed posterior).
#[test]
fn refine_in_3d_matches_the_exact_posterior_when_the_height_prior_decides() {
    let prior =
        GaussianBelief::new(Vector3::new(0.5, 0.5, 2.5), Matrix3::new(5.5, -1.5, 0.0, -1.5, 5.5, 0.0, 0.0, 0.0, 0.49)).unwrap();
    let s = Scenario { prior, landmark: Vector3::new(1.0, 0.5, 2.5), range_std_m: 0.5, seed: 21 };
    let models = planar_ranges(&s);
    let exact = ExactPosterior3::compute(&prior, &models, GRID_CELLS).unwrap().moments();
    let est = Estimator::<3>::new(EstimatorConfig { method: Method::Natural, ..Default::default() }).unwrap();
    let start = est.initial_state(prior).unwrap();
    let (refined, _) = est.refine(&start, &prior, &models).unwrap();
    let q = refined.summary().unwrap().belief;
    assert!((q.mean - exact.mean).amax() < 0.01, "refine mean {} vs exact {}", q.mean, exact.mean);
    for i in 0..3 {
        let ratio = q.cov[(i, i)] / exact.cov[(i, i)];
        assert!((0.85..1.15).contains(&ratio), "axis {i}: var {} vs exact {}", q.cov[(i, i)], exact.cov[(i, i)]);
    }
}

// ---------------------------------------------------------------------------------
// Every method in D = 3, random inputs
// ---------------------------------------------------------------------------------

fn all_methods() -> Vec<EstimatorConfig> {
    let mut v = Vec::new();
    for method in [Method::Mixture, Method::Natural, Method::Plain, Method::Ekf, Method::Ukf, Method::Particle] {
        let mut c = EstimatorConfig { method, ..Default::default() };
        c.flow = FlowConfig { samples: 64, steps: 30, ..Default::default() };
        c.particle.count = 300;
        v.push(c);
    }
    let mut mc = EstimatorConfig { method: Method::Natural, ..Default::default() };
    mc.flow = FlowConfig { cubature: false, samples: 64, steps: 30, ..Default::default() };
    v.push(mc);
    v
}

fn assert_publishable(b: &GaussianBelief<3>) -> Result<(), TestCaseError> {
    prop_assert!(b.mean.iter().chain(b.cov.iter()).all(|v| v.is_finite()), "{b:?}");
    prop_assert!((b.cov - b.cov.transpose()).amax() <= 1e-9 * b.cov.amax(), "not symmetric {b:?}");
    let eig = b.cov.symmetric_eigenvalues();
    prop_assert!(eig.min() > 0.0, "not positive definite: eigenvalues {eig}");
    Ok(())
}

fn spd3(axis: (f64, f64, f64), angle: f64, log_eig: (f64, f64, f64)) -> Matrix3<f64> {
    let r = Rotation3::from_axis_angle(&nalgebra::Unit::new_normalize(Vector3::new(axis.0, axis.1, axis.2)), angle);
    let d = Matrix3::from_diagonal(&Vector3::new(10f64.powf(log_eig.0), 10f64.powf(log_eig.1), 10f64.powf(log_eig.2)));
    let m = r.matrix() * d * r.matrix().transpose();
    (m + m.transpose()) * 0.5
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random SPD prior, four sensor positions in a random horizontal plane, random
    /// ranges: every method returns a finite, symmetric positive-definite belief (the
    /// summary, and every mixture component) or a named error (particles only:
    /// every particle impossible); no panic.
    #[test]
    fn every_method_in_3d_stays_publishable_on_a_planar_path(
        mean in (-20.0..20.0f64, -20.0..20.0f64, -10.0..10.0f64),
        axis in (-1.0..1.0f64, -1.0..1.0f64, 0.1..1.0f64),
        angle in 0.0..3.0f64,
        eig in (-2.0..2.5f64, -2.0..2.5f64, -2.0..2.5f64),
        plane_z in -5.0..5.0f64,
        sensors in proptest::collection::vec((-30.0..30.0f64, -30.0..30.0f64), 4),
        ranges in proptest::collection::vec(prop_oneof![Just(0.0), 0.0..60.0f64], 4),
        var in prop_oneof![0.01..5.0f64, Just(1e-3)],
        mirror in any::<bool>(),
    ) {
        let prior = GaussianBelief::new(Vector3::new(mean.0, mean.1, mean.2), spd3(axis, angle, eig)).unwrap();
        for c in all_methods() {
            let est = Estimator::<3>::new(c).unwrap();
            let mut state = est.initial_state(prior).unwrap();
            for (xy, z) in sensors.iter().zip(&ranges) {
                let x = Vector3::new(xy.0, xy.1, plane_z);
                match est.update(&state, x, *z, var) {
                    Ok((next, _)) => state = next,
                    Err(EstimatorError::DegenerateWeights(_)) if c.method == Method::Particle => break,
                    Err(e) => prop_assert!(false, "{:?}: unexpected error {e}", c.method),
                }
                let summary = state.summary().unwrap();
                assert_publishable(&summary.belief)?;
                for comp in &summary.components {
                    assert_publishable(&comp.belief)?;
                    prop_assert!(comp.weight.is_finite() && comp.weight > 0.0);
                }
                if let Belief::Particles(p) = state.belief() {
                    prop_assert!(p.particles().iter().all(|s| s.iter().all(|v| v.is_finite())));
                }
            }
        }
        // The mixture flow started from the mirror split of the prior at the sensor plane.
        if mirror {
            let config = mixture_config();
            let nodes = gauss_hermite_nodes::<3>(config.flow.cubature_points_per_axis);
            let mut mix = mirror_mixture(&prior, plane_z).unwrap();
            for (xy, z) in sensors.iter().zip(&ranges) {
                let m = RangeModel::new(Vector3::new(xy.0, xy.1, plane_z), *z, var, NoiseShape::Gaussian).unwrap();
                mix = mixture_flow_update(&mix, &m, &nodes, &config.natural_settings(), &config.mixture_settings()).unwrap().0;
                assert_publishable(&mix.moment_matched())?;
                let mass = mix.mass_above(plane_z);
                prop_assert!((0.0..=1.0).contains(&mass), "mass above {mass}");
            }
        }
    }
}

/// Guard that the test's own SPD check is not vacuous.
#[test]
fn publishable_check_rejects_an_indefinite_matrix() {
    let bad = GaussianBelief { mean: SVector::<f64, 3>::zeros(), cov: SMatrix::<f64, 3, 3>::from_diagonal(&Vector3::new(1.0, -1.0, 1.0)) };
    assert!(assert_publishable(&bad).is_err());
}

// ---------------------------------------------------------------------------------
// Range calibration in 3-D: the flow over θ = (y, s, b) against the exact posterior
// ---------------------------------------------------------------------------------

/// K ranges zₖ = s·‖y − xₖ‖ + b + wₖ with c = (s, b) ~ N(m_c, P_c) shared by all of them
/// and wₖ ~ N(0, σ²): given y the ranges are jointly Gaussian, z ~ N(H m_c, σ²I + H P_cHᵀ)
/// with rows Hₖ = (dₖ, 1), dₖ = ‖y − xₖ‖, so the calibration is integrated out exactly and
/// p(y | z) is a 3-D posterior the grid can hold. Only `log_likelihood` is used by the
/// grid (the other trait items are not needed and panic).
#[derive(Clone)]
struct CalibrationIntegratedOut {
    sensors: Vec<Vector3<f64>>,
    ranges: Vec<f64>,
    noise_var: f64,
    calibration: GaussianBelief<2>,
}

impl MeasurementModel<3> for CalibrationIntegratedOut {
    fn measurement(&self) -> f64 {
        unimplemented!("joint likelihood only")
    }
    fn noise(&self) -> ScalarNoise {
        unimplemented!("joint likelihood only")
    }
    fn predict(&self, _s: &Vector3<f64>) -> (f64, Vector3<f64>) {
        unimplemented!("joint likelihood only")
    }
    fn predict_hessian(&self, _s: &Vector3<f64>) -> Matrix3<f64> {
        unimplemented!("joint likelihood only")
    }
    fn log_likelihood(&self, y: &Vector3<f64>) -> f64 {
        let k = self.sensors.len();
        let h = DMatrix::from_fn(k, 2, |i, j| if j == 0 { (y - self.sensors[i]).norm() } else { 1.0 });
        let p = DMatrix::from_column_slice(2, 2, self.calibration.cov.as_slice());
        let cov = DMatrix::identity(k, k) * self.noise_var + &h * p * h.transpose();
        let residual = DVector::from_column_slice(&self.ranges) - &h * DVector::from_column_slice(self.calibration.mean.as_slice());
        let chol = cov.cholesky().expect("SPD");
        let ln_det: f64 = chol.l().diagonal().iter().map(|v| 2.0 * v.ln()).sum();
        -0.5 * (residual.dot(&chol.solve(&residual)) + ln_det)
    }
}

/// The 3-D calibrated flow (natural, 4 096 Monte Carlo nodes: above D = 4 no product
/// rule) absorbing 12 ranges one by one from sensors at two heights (so the landmark has
/// one mode) with an unknown scale and offset, against the exact posterior of y with
/// (s, b) integrated out in closed form ([`CalibrationIntegratedOut`]) on the 3-D grid.
/// The flow's y marginal must match the exact mean within 0.15 exact standard
/// deviations per axis and the exact variances within ±25 %: the posterior is close to
/// Gaussian (σ = 5 cm, 6–9 m ranges), what remains is the sequential linearisation of
/// each range at the belief of its time and the nodes' sampling error (a few per cent
/// of σ for the mean with 4 096 nodes). Its (s, b) marginal is checked for moving
/// towards the truth.
#[test]
fn calibrated_3d_flow_matches_the_exact_posterior_with_the_calibration_integrated_out() {
    let truth = Vector3::new(1.0, 2.0, 1.5);
    let (scale, offset) = (1.03, 0.2);
    let noise_var = 0.05f64 * 0.05;
    let calibration = GaussianBelief::new(Vector2::new(1.0, 0.0), Matrix2::new(0.03 * 0.03, 0.0, 0.0, 0.3 * 0.3)).unwrap();
    let position = GaussianBelief::new(truth + Vector3::new(0.4, -0.3, 0.3), Matrix3::identity() * 0.36).unwrap();
    let mut rng = StdRng::seed_from_u64(31);
    let sensors: Vec<Vector3<f64>> = (0..12)
        .map(|k| {
            let a = 2.0 * std::f64::consts::PI * k as f64 / 12.0;
            Vector3::new(7.0 * a.cos(), 7.0 * a.sin(), 3.0 * (k % 2) as f64)
        })
        .collect();
    let ranges: Vec<f64> =
        sensors.iter().map(|x| scale * (truth - x).norm() + offset + noise_var.sqrt() * rng.sample::<f64, _>(StandardNormal)).collect();
    let exact_model = CalibrationIntegratedOut { sensors: sensors.clone(), ranges: ranges.clone(), noise_var, calibration };
    let exact = ExactPosterior3::compute(&position, &[exact_model], GRID_CELLS).unwrap().moments();

    let mut config = EstimatorConfig { method: Method::Natural, ..Default::default() };
    config.flow.samples = 4096;
    let est = Estimator::<5>::new(config).unwrap();
    let mut belief: GaussianBelief<5> = joint_prior(&position, &calibration);
    for (k, (x, z)) in sensors.iter().zip(&ranges).enumerate() {
        let model = CalibratedRangeModel3::new(*x, *z, noise_var, NoiseShape::Gaussian).unwrap();
        belief = est.update_gaussian(&belief, k as u64, &model).unwrap().0;
    }
    let q = position_marginal::<3, 5>(&belief);
    for i in 0..3 {
        let sd = exact.cov[(i, i)].sqrt();
        assert!((q.mean[i] - exact.mean[i]).abs() < 0.15 * sd, "axis {i}: flow {} vs exact {} (σ {sd})", q.mean, exact.mean);
        let ratio = q.cov[(i, i)] / exact.cov[(i, i)];
        assert!((0.75..1.25).contains(&ratio), "axis {i}: var {} vs exact {}", q.cov[(i, i)], exact.cov[(i, i)]);
    }
    let c = calibration_marginal(&belief);
    assert!(c.cov[(0, 0)] < calibration.cov[(0, 0)] && c.cov[(1, 1)] < calibration.cov[(1, 1)]);
}

// ---------------------------------------------------------------------------------
// Initialisation grid over (x, y) with the landmark height marginalised
// ---------------------------------------------------------------------------------

/// 30 ranges (σ = 0.1 m, seeded) from an L-shaped path in the plane z = 0 to a landmark
/// 2.5 m above it, the path on two sides of it only.
fn l_path_ranges(landmark: &Vector3<f64>, range_std_m: f64, seed: u64) -> Vec<(Vector3<f64>, f64)> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..30)
        .map(|k| {
            let t = k as f64 / 29.0 * 20.0;
            let x = if t <= 12.0 { Vector3::new(-6.0 + t, -4.0, 0.0) } else { Vector3::new(6.0, -4.0 + (t - 12.0), 0.0) };
            (x, (x - landmark).norm() + range_std_m * rng.sample::<f64, _>(StandardNormal))
        })
        .collect()
}

/// The grid with a height prior against the exact 3-D posterior of the same ranges
/// (prior: the same height prior, and a horizontal prior σ = 3 m whose pull on a
/// posterior ~0.1 m wide is ~1e-3 m, as flat as the grid's disc), landmark 2.5 m above
/// the path, height prior N(2, 1²).
///
/// Tolerance: the grid cannot learn z from the ranges (each range is marginalised over
/// the prior on its own), so each of its ranges expects √(d² + E[Δz²]) where the data
/// come from √(d² + Δz²): off by at most δ = maxₖ |√(dₖ² + E[Δz²]) − ‖y − xₖ‖| (0.12 m
/// here, d at the truth). A path of two orthogonal legs turns a common range error δ
/// into a horizontal shift of at most √2·δ; the tolerance 2√2·δ leaves a factor 2 for
/// the noise (0.1 m/√30) and the second-order terms. The planar grid (no height prior)
/// takes ranges up to 0.6 m longer than the horizontal distance and must miss by more
/// than that tolerance, with the exact mean far outside its own spread (it is
/// confidently wrong: Mahalanobis distance > 5), while the height-marginal grid's spread
/// covers the exact mean (Mahalanobis distance < 3). Last, what the grid is for: the 3-D
/// natural flow re-solving the grid's stored ranges (with their sensor heights) from
/// the grid's horizontal moments reaches the exact posterior mean within 1 cm.
#[test]
fn initialisation_grid_with_a_height_prior_finds_the_exact_horizontal_mean() {
    let landmark = Vector3::new(1.0, 1.5, 2.5);
    let range_std_m: f64 = 0.1;
    let height = HeightPrior { mean_m: 2.0, std_m: 1.0 };
    let ranges = l_path_ranges(&landmark, range_std_m, 41);
    let var = range_std_m * range_std_m;
    let prior = GaussianBelief::new(
        Vector3::new(-1.0, 0.0, height.mean_m),
        Matrix3::from_diagonal(&Vector3::new(9.0, 9.0, height.std_m * height.std_m)),
    )
    .unwrap();
    let models: Vec<RangeModel<3>> = ranges.iter().map(|(x, z)| RangeModel::new(*x, *z, var, NoiseShape::Gaussian).unwrap()).collect();
    let exact = ExactPosterior3::compute(&prior, &models, GRID_CELLS).unwrap().moments();
    let exact_xy = exact.mean.xy();

    let start = ranges[0].0.xy();
    let grid = |height: Option<HeightPrior>| {
        let mut g = InitialisationGrid::new(start, 20.0, 0.05, NoiseShape::Gaussian, CalibrationPrior::EXACT).unwrap();
        if let Some(h) = height {
            g = g.with_height_prior(h).unwrap();
        }
        for (x, z) in &ranges {
            g.add_range3(*x, *z, var).unwrap();
        }
        g
    };
    let (marginal, planar) = (grid(Some(height)), grid(None));
    let mahalanobis = |g: &GaussianBelief<2>| {
        let e = exact_xy - g.mean;
        e.dot(&(g.cov.try_inverse().unwrap() * e)).sqrt()
    };
    let sq_mean = height.mean_m.powi(2) + height.std_m.powi(2);
    let delta = ranges
        .iter()
        .map(|(x, _)| ((landmark.xy() - x.xy()).norm_squared() + sq_mean).sqrt() - (landmark - x).norm())
        .fold(0.0f64, |a, b| a.max(b.abs()));
    let tolerance = 2.0 * std::f64::consts::SQRT_2 * delta;
    assert!((0.05..0.2).contains(&delta), "the scenario's per-range height error {delta}");
    let (m, pl) = (marginal.moments(), planar.moments());
    let err = (m.mean - exact_xy).norm();
    assert!(err < tolerance, "height-marginal grid {} vs exact {} ({err} m, tolerance {tolerance} m)", m.mean, exact_xy);
    assert!(mahalanobis(&m) < 3.0, "exact mean outside the grid's 3σ: {}", mahalanobis(&m));
    let planar_err = (pl.mean - exact_xy).norm();
    eprintln!(
        "exact horizontal mean {exact_xy:?}; height-marginal grid off by {err:.3} m (Mahalanobis {:.2}), planar grid {planar_err:.3} m ({:.1})",
        mahalanobis(&m),
        mahalanobis(&pl)
    );
    assert!(planar_err > tolerance, "the planar grid should be biased: {planar_err} m");
    assert!(mahalanobis(&pl) > 5.0, "the planar grid should be confidently wrong: {}", mahalanobis(&pl));

    let est = Estimator::<3>::new(EstimatorConfig { method: Method::Natural, ..Default::default() }).unwrap();
    let mut start_cov = Matrix3::from_diagonal(&Vector3::new(0.0, 0.0, height.std_m * height.std_m));
    start_cov.fixed_view_mut::<2, 2>(0, 0).copy_from(&m.cov);
    let start = est.initial_state(GaussianBelief::new(Vector3::new(m.mean.x, m.mean.y, height.mean_m), start_cov).unwrap()).unwrap();
    let stored: Vec<RangeModel<3>> = marginal
        .measurements()
        .iter()
        .map(|r| RangeModel::new(r.sensor_position3(), r.range_m, r.noise_var_m2, NoiseShape::Gaussian).unwrap())
        .collect();
    assert_eq!(stored, models, "the grid keeps every range with its sensor height");
    let q = est.refine(&start, &prior, &stored).unwrap().0.summary().unwrap().belief;
    assert!((q.mean - exact.mean).amax() < 0.01, "3-D re-solve {} vs exact {}", q.mean, exact.mean);
}
