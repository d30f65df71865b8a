//! Estimator core: localise a static landmark s ∈ ℝᴰ (D = 2 or 3, metres) from range
//! measurements z = ‖x − s‖ + w taken at known sensor positions x (metres), w with
//! variance σ² (m², `noise_var_m2`) and a Gaussian, Student-t or Huber density.
//!
//! The belief after each measurement is a value: [`Estimator::update`] takes the current
//! [`State`] and one measurement and returns a new state and [`UpdateStats`]. Methods
//! ([`Method`]):
//! * `mixture` (default): a few Gaussians, each updated by the natural flow, reweighted
//!   by their evidence, pruned, merged and collapsed ([`mixture`]).
//! * `natural`: one Gaussian, natural-gradient Gaussian flow to the stationary point of
//!   KL(q ‖ p(·|z)) ([`flow::natural_flow_update`]).
//! * `plain`: the slides' Monte-Carlo Gaussian flow ([`flow::plain_flow_update`]).
//! * `ekf`, `ukf`, `particle`: baselines ([`kalman`], [`particle`]).
//!
//! [`grid::ExactPosterior2`] is the exact 2-D posterior (batch Bayes on a grid) used as
//! reference truth, and [`mod@reference`] the KL-optimal Gaussian for one update.
//! Symbols: μ mean (m), Σ covariance (m²), Λ = Σ⁻¹ precision, σ² noise variance (m²),
//! d(s) = ‖x − s‖ (m). No ROS type appears here; time, where needed, is f64 seconds.

pub mod belief;
pub mod calibration;
pub mod config;
pub mod cubature;
pub mod error;
pub mod flow;
pub mod grid;
pub mod grid3;
pub mod initialisation;
pub mod kalman;
pub mod mixture;
pub mod model;
pub mod particle;
pub mod reference;

use crate::config::ConfigError;
use nalgebra::SVector;
use rand::rngs::StdRng;
use rand::SeedableRng;

pub use belief::GaussianBelief;
pub use config::{EstimatorConfig, FlowConfig, Method, MixtureConfig, ParticleConfig};
pub use cubature::StandardNode;
pub use error::EstimatorError;
pub use flow::FlowStats;
pub use calibration::{
    calibration_information, calibration_marginal, calibration_site, pooled_from_information, CalibrationSite, condition_position, joint_prior, pool_calibration, position_marginal,
    replace_calibration_prior,
};
pub use initialisation::{CalibrationPrior, GridRange, HeightPrior, InitialisationGrid};
pub use mixture::{GaussianMixture, MixtureComponent};
pub use model::{CalibratedLayout, CalibratedRange, CalibratedRangeModel, CalibratedRangeModel3, JointRangeModel, LinearModel, MeasurementModel, NoiseShape, RangeModel, ScalarNoise};
pub use particle::ParticleSet;

/// Health of one update.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct UpdateStats {
    /// Iterations of the flow (largest over mixture components); 1 for EKF/UKF/particle.
    pub iterations: usize,
    /// Flow stopping rule fired (always true for closed-form baselines).
    pub converged: bool,
    /// Likelihood evaluations spent (work bound).
    pub evaluations: usize,
    /// Components after the update (1 for single-Gaussian methods, 0 for particles).
    pub components: usize,
    /// Log-evidence estimate ln p(z | past) where the method has one (flows), else NaN-free
    /// `f64::NEG_INFINITY`.
    pub log_evidence: f64,
}

/// Belief representation carried by a [`State`].
#[derive(Clone, Debug, PartialEq)]
pub enum Belief<const D: usize> {
    /// One Gaussian (natural, plain, EKF, UKF).
    Gaussian(GaussianBelief<D>),
    /// Gaussian mixture.
    Mixture(GaussianMixture<D>),
    /// Weighted particles.
    Particles(ParticleSet<D>),
}

/// Per-landmark estimator state: the belief, the number of updates so far (which seeds
/// the random numbers of the next update) and the health of the last update.
#[derive(Clone, Debug, PartialEq)]
pub struct State<const D: usize> {
    belief: Belief<D>,
    updates: u64,
    last: UpdateStats,
    /// The sensor plane z = z_s of a mixture started by
    /// [`Estimator::initial_mirrored_state`]: its updates keep the two mirror modes
    /// apart ([`mixture::mirror_mixture_flow_update`]).
    mirror_plane_z_m: Option<f64>,
}

/// What the node publishes: the moment-matched Gaussian, the components, the health.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary<const D: usize> {
    /// Moment-matched N(μ, Σ) of the whole belief.
    pub belief: GaussianBelief<D>,
    /// Mixture components (one component equal to `belief` for single Gaussians; empty for
    /// particles).
    pub components: Vec<MixtureComponent<D>>,
    /// Measurements absorbed.
    pub updates: u64,
    /// Health of the last update.
    pub last_update: UpdateStats,
}

impl<const D: usize> State<D> {
    /// The belief.
    pub fn belief(&self) -> &Belief<D> {
        &self.belief
    }

    /// Measurements absorbed so far.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// The sensor plane of a state split into mirror halves
    /// ([`Estimator::initial_mirrored_state`]), if it was.
    pub fn mirror_plane_z_m(&self) -> Option<f64> {
        self.mirror_plane_z_m
    }

    /// Moment-matched Gaussian, components and health.
    ///
    /// # Errors
    /// `NotPositiveDefinite` when the summary is not publishable (finite, SPD).
    pub fn summary(&self) -> Result<Summary<D>, EstimatorError> {
        let (belief, components) = match &self.belief {
            Belief::Gaussian(g) => (*g, vec![MixtureComponent { weight: 1.0, belief: *g }]),
            Belief::Mixture(m) => (m.moment_matched(), m.components().to_vec()),
            Belief::Particles(p) => (p.moments(), Vec::new()),
        };
        let belief = GaussianBelief::new(belief.mean, belief.cov)?;
        Ok(Summary { belief, components, updates: self.updates, last_update: self.last })
    }

    fn kind(&self) -> &'static str {
        match self.belief {
            Belief::Gaussian(_) => "gaussian",
            Belief::Mixture(_) => "mixture",
            Belief::Particles(_) => "particles",
        }
    }
}

/// The reflection of a belief about the plane z = `plane_z_m` (z ↦ 2z₀ − z, so the
/// height's covariances with the other coordinates change sign).
fn mirror_image<const D: usize>(b: &GaussianBelief<D>, plane_z_m: f64) -> GaussianBelief<D> {
    let h = mixture::HEIGHT;
    let mut flip = SVector::<f64, D>::repeat(1.0);
    flip[h] = -1.0;
    let mut mean = b.mean;
    mean[h] = 2.0 * plane_z_m - mean[h];
    let f = nalgebra::SMatrix::<f64, D, D>::from_diagonal(&flip);
    GaussianBelief { mean, cov: f * b.cov * f }
}

/// One estimator built from a validated [`EstimatorConfig`]; immutable and shareable, it
/// holds the precomputed cubature rule. All per-landmark data lives in [`State`].
#[derive(Clone, Debug)]
pub struct Estimator<const D: usize> {
    config: EstimatorConfig,
    cubature: Vec<StandardNode<D>>,
    /// 3-point Gauss–Hermite rule of [`Estimator::refine`].
    refine_cubature: Vec<StandardNode<D>>,
}

/// SplitMix64 finaliser: decorrelates seeds derived from (seed, update index).
fn mix_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl<const D: usize> Estimator<D> {
    /// Validates the config and precomputes the Gauss–Hermite rule. D = 2 or 3 is a
    /// landmark position; D = 4 is a planar position with the range calibration
    /// θ = (y₁, y₂, s, b) of [`CalibratedRangeModel`] and D = 5 a 3-D one,
    /// θ = (y₁, y₂, y₃, s, b) of [`CalibratedRangeModel3`] (both updated by
    /// [`Estimator::update_with_model`]); D = 5 to 7 are also the marginals a range touches
    /// in the joint state of drifting odometry (odometry correction, landmark, range
    /// calibration: `crate::localizer::slam`). Above D = 4 the product rules are
    /// not built (pᴰ nodes): [`Estimator::refine`] is refused and the flows use
    /// `flow.samples` Monte Carlo nodes whether or not `flow.cubature` is set.
    ///
    /// # Errors
    /// `Config` from [`EstimatorConfig::validate`], and for D ∉ 2..=7.
    pub fn new(config: EstimatorConfig) -> Result<Self, EstimatorError> {
        if !(2..=7).contains(&D) {
            return Err(ConfigError::invalid("dimension", D, "2 to 7").into());
        }
        config.validate()?;
        let product_rule = |points: usize| if D <= 4 { cubature::gauss_hermite_nodes::<D>(points) } else { Vec::new() };
        let cubature = product_rule(config.flow.cubature_points_per_axis);
        // 3ᴰ nodes for the relinearisation: 243 at D = 5 (the 3-D calibrated state).
        let refine_cubature = if D <= 5 { cubature::gauss_hermite_nodes::<D>(3) } else { Vec::new() };
        Ok(Self { config, cubature, refine_cubature })
    }

    /// Absorbs one measurement into a Gaussian belief, as [`Estimator::update_with_model`]
    /// of a state with `updates` measurements so far (which seeds the random numbers)
    /// and a single-Gaussian method; a mixture method runs the natural flow. For beliefs
    /// kept outside a [`State`] (the marginals of a joint state).
    ///
    /// # Errors
    /// As [`Estimator::update_with_model`]; `StateMismatch` for the particle method.
    pub fn update_gaussian<M: MeasurementModel<D>>(
        &self,
        prior: &GaussianBelief<D>,
        updates: u64,
        model: &M,
    ) -> Result<(GaussianBelief<D>, UpdateStats), EstimatorError> {
        let natural;
        let gaussian = if self.config.method == Method::Mixture {
            natural = Self { config: EstimatorConfig { method: Method::Natural, ..self.config }, ..self.clone() };
            &natural
        } else {
            self
        };
        let state = State { belief: Belief::Gaussian(*prior), updates, last: UpdateStats::default(), mirror_plane_z_m: None };
        let (next, stats) = gaussian.update_with_model(&state, model)?;
        match next.belief {
            Belief::Gaussian(g) => Ok((g, stats)),
            _ => Err(EstimatorError::StateMismatch { state: next.kind(), method: "update_gaussian" }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EstimatorConfig {
        &self.config
    }

    /// The state before any measurement: the prior as the method represents it (one
    /// Gaussian, a one-component mixture that splits on demand, or N particles).
    ///
    /// # Errors
    /// `NotPositiveDefinite`/`NonFinite` when the prior is not publishable.
    pub fn initial_state(&self, prior: GaussianBelief<D>) -> Result<State<D>, EstimatorError> {
        let prior = GaussianBelief::new(prior.mean, prior.cov)?;
        let belief = match self.config.method {
            Method::Mixture => Belief::Mixture(GaussianMixture::single(prior)),
            Method::Natural | Method::Plain | Method::Ekf | Method::Ukf => Belief::Gaussian(prior),
            Method::Particle => {
                let mut rng = StdRng::seed_from_u64(mix_seed(self.config.seed, u64::MAX));
                Belief::Particles(ParticleSet::from_prior(&prior, self.config.particle.count, &mut rng)?)
            }
        };
        Ok(State { belief, updates: 0, last: UpdateStats { converged: true, ..UpdateStats::default() }, mirror_plane_z_m: None })
    }

    /// The state before any measurement of a landmark with a height (coordinate
    /// [`mixture::HEIGHT`]) seen by a sensor moving in the plane z = `sensor_plane_z_m`:
    /// with the mixture method the prior split at that plane into its two mirror halves
    /// ([`mixture::mirror_mixture`]), which its updates then keep apart until the data
    /// or the prior decide; other methods carry one belief and start from the prior as
    /// [`Estimator::initial_state`].
    ///
    /// # Errors
    /// As [`Estimator::initial_state`]; `Config` for D < 3, `NonFinite` for the plane.
    pub fn initial_mirrored_state(&self, prior: GaussianBelief<D>, sensor_plane_z_m: f64) -> Result<State<D>, EstimatorError> {
        if self.config.method != Method::Mixture {
            return self.initial_state(prior);
        }
        let mixture = mixture::mirror_mixture(&prior, sensor_plane_z_m)?;
        let last = UpdateStats { converged: true, components: mixture.components().len(), ..UpdateStats::default() };
        Ok(State { belief: Belief::Mixture(mixture), updates: 0, last, mirror_plane_z_m: Some(sensor_plane_z_m) })
    }

    /// The mirror halves of a state from [`Estimator::initial_mirrored_state`]
    /// reweighted by their batch evidence under `anchor` × the ranges `earlier` and
    /// `newest` (all the state has absorbed since `anchor`): for the components on
    /// each side of the sensor plane, moment-matched, [`Estimator::refine_concat`]
    /// finds the side's KL-optimal Gaussian for all the ranges at once and its ELBO,
    /// ln p(Z, side) ≥ E_q[Σₖ ln p(zₖ | θ)] − KL(q ‖ anchor), and W_side ∝ exp of it
    /// (within a side the weights stay; a half of one component becomes its re-solved
    /// Gaussian, a relinearisation of the half, as the window's of a planar state). The sequential
    /// flow's per-range evidence carries each range's approximation slack into the side
    /// weights, which drift over many ranges (0.95 against the exact 0.68 after 60
    /// ranges, `tests/localizer_3d.rs`). Applied only while every side's mean is at
    /// least 3 σ_z from the plane (a side that straddles it is not one mode of the
    /// integrand: the untruncated anchor would count mass twice); otherwise, and for
    /// any other state, the state is returned as is.
    ///
    /// # Errors
    /// As [`Estimator::refine`].
    pub fn reweight_mirror_sides<M: MeasurementModel<D>>(
        &self,
        state: &State<D>,
        anchor: &GaussianBelief<D>,
        earlier: &[M],
        newest: &[M],
    ) -> Result<State<D>, EstimatorError> {
        let (Some(plane), Belief::Mixture(mix)) = (state.mirror_plane_z_m, &state.belief) else { return Ok(state.clone()) };
        let h = mixture::HEIGHT;
        let sides: Vec<Vec<MixtureComponent<D>>> = [true, false]
            .iter()
            .map(|&up| mix.components().iter().copied().filter(|c| (c.belief.mean[h] >= plane) == up).collect())
            .collect();
        if sides.iter().any(|side: &Vec<MixtureComponent<D>>| side.is_empty()) {
            return Ok(state.clone());
        }
        let matched = sides.iter().map(|side| Ok(GaussianMixture::new(side.clone())?.moment_matched())).collect::<Result<Vec<_>, EstimatorError>>()?;
        if matched.iter().any(|m| (m.mean[h] - plane).abs() < 3.0 * m.cov[(h, h)].sqrt()) {
            return Ok(state.clone());
        }
        let mut solved = Vec::with_capacity(2);
        for matched in matched {
            solved.push(self.refine_side(state, matched, anchor, earlier, newest)?);
        }
        let max = solved.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = solved.iter().map(|s| (s.1 - max).exp()).sum();
        let mut components = Vec::with_capacity(mix.components().len());
        for ((side, (refined, l)), up) in sides.iter().zip(&solved).zip([true, false]) {
            let side_weight: f64 = side.iter().map(|c| c.weight).sum();
            let target = (l - max).exp() / total;
            // A one-component half becomes its re-solved Gaussian (a relinearisation
            // of the half), unless that crossed the plane.
            if side.len() == 1 && (refined.mean[h] >= plane) == up {
                components.push(MixtureComponent { weight: target, belief: *refined });
            } else {
                components.extend(side.iter().map(|c| MixtureComponent { weight: c.weight / side_weight * target, ..*c }));
            }
        }
        let next = State { belief: Belief::Mixture(GaussianMixture::new(components)?), ..state.clone() };
        next.summary()?;
        Ok(next)
    }

    /// A side's moment-matched Gaussian `side` re-solved for `anchor` × the ranges
    /// ([`Estimator::refine_concat`]), and its ELBO.
    fn refine_side<M: MeasurementModel<D>>(
        &self,
        state: &State<D>,
        side: GaussianBelief<D>,
        anchor: &GaussianBelief<D>,
        earlier: &[M],
        newest: &[M],
    ) -> Result<(GaussianBelief<D>, f64), EstimatorError> {
        let start = State { belief: Belief::Gaussian(side), updates: state.updates, last: state.last, mirror_plane_z_m: None };
        let (solved, stats) = self.refine_concat(&start, anchor, earlier, newest)?;
        Ok((solved.summary()?.belief, stats.log_evidence))
    }

    /// A 3-D start from many ranges at once (a grid's): `start` split at the sensor plane
    /// z = `sensor_plane_z_m` into its mirror halves ([`mixture::mirror_mixture`]), each
    /// re-solved for `anchor` × `ranges` ([`Estimator::refine`], one Gaussian per half)
    /// and weighted by its ELBO (as [`Estimator::reweight_mirror_sides`]). A half whose
    /// solution crossed the plane (the anchor pulled it to the other half's mode) is
    /// re-solved from the other solution's mirror image, and dropped if it crosses
    /// again; with
    /// other methods than the mixture, `start` re-solved as one Gaussian.
    ///
    /// # Errors
    /// As [`Estimator::refine`] and [`mixture::mirror_mixture`].
    pub fn mirrored_refine<M: MeasurementModel<D>>(
        &self,
        start: GaussianBelief<D>,
        sensor_plane_z_m: f64,
        anchor: &GaussianBelief<D>,
        ranges: &[M],
    ) -> Result<State<D>, EstimatorError> {
        let split = self.initial_mirrored_state(start, sensor_plane_z_m)?;
        let Belief::Mixture(mix) = &split.belief else {
            return Ok(self.refine(&split, anchor, ranges)?.0);
        };
        let h = mixture::HEIGHT;
        let above = |b: &GaussianBelief<D>| b.mean[h] >= sensor_plane_z_m;
        // Each half re-solved from its truncated start; one that crossed the plane (the
        // anchor's pull) is re-solved from the mirror image of the other's solution.
        let first: Vec<(bool, GaussianBelief<D>, f64)> = mix
            .components()
            .iter()
            .map(|c| {
                let (belief, elbo) = self.refine_side(&split, c.belief, anchor, ranges, &[])?;
                Ok((above(&c.belief), belief, elbo))
            })
            .collect::<Result<_, EstimatorError>>()?;
        let mut solved = Vec::with_capacity(2);
        for (side, belief, elbo) in &first {
            if above(belief) == *side {
                solved.push((*belief, *elbo));
                continue;
            }
            let Some((_, other, _)) = first.iter().find(|(s, b, _)| s != side && above(b) == *s) else { continue };
            let (belief, elbo) = self.refine_side(&split, mirror_image(other, sensor_plane_z_m), anchor, ranges, &[])?;
            if above(&belief) == *side {
                solved.push((belief, elbo));
            }
        }
        if solved.is_empty() {
            return Ok(self.refine(&split, anchor, ranges)?.0);
        }
        let max = solved.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = solved.iter().map(|s| (s.1 - max).exp()).sum();
        let components = solved.iter().map(|(belief, l)| MixtureComponent { weight: (l - max).exp() / total, belief: *belief }).collect();
        let next = State { belief: Belief::Mixture(GaussianMixture::new(components)?), ..split };
        next.summary()?;
        Ok(next)
    }

    /// Absorbs one range measurement `range_m` (metres) taken at `sensor_position`
    /// (metres) with noise variance `noise_var_m2` (m²), using the configured noise shape.
    ///
    /// # Errors
    /// Input errors (`InvalidRange`, `InvalidNoiseVariance`, `InvalidSensorPosition`),
    /// `StateMismatch` for a state of another method, and update failures; on error the
    /// caller keeps its previous state. A returned state always has a publishable summary.
    /// `Config` for D = 4 (a calibrated state: use [`Estimator::update_with_model`] with a
    /// [`CalibratedRangeModel`]).
    pub fn update(
        &self,
        state: &State<D>,
        sensor_position: SVector<f64, D>,
        range_m: f64,
        noise_var_m2: f64,
    ) -> Result<(State<D>, UpdateStats), EstimatorError> {
        if D == 4 {
            return Err(ConfigError::invalid("dimension", D, "2 or 3 for plain ranges (update_with_model with a CalibratedRangeModel for the calibrated state)").into());
        }
        let model = RangeModel::new(sensor_position, range_m, noise_var_m2, self.config.noise_shape)?;
        self.update_with_model(state, &model)
    }

    /// Re-solves a state for the posterior of many measurements: the natural flow of
    /// KL(q ‖ p(· | z₁..z_K)) with p ∝ `anchor` × Πₖ p(zₖ | θ), started at the state's
    /// moment-matched Gaussian (a relinearisation: sequential updates linearise each
    /// measurement once, at the belief of its time; this re-linearises all of them at
    /// today's). Expectations by the 3-point Gauss–Hermite rule (3ᴰ nodes: the
    /// posterior of many ranges is close to Gaussian). The state keeps its update
    /// count; a mixture becomes one component.
    ///
    /// # Errors
    /// `StateMismatch` for particles; flow errors as [`Estimator::update`].
    pub fn refine<M: MeasurementModel<D>>(
        &self,
        state: &State<D>,
        anchor: &GaussianBelief<D>,
        models: &[M],
    ) -> Result<(State<D>, UpdateStats), EstimatorError> {
        self.refine_concat(state, anchor, models, &[])
    }

    /// [`Estimator::refine`] for the measurements `earlier` followed by `newest`, so a
    /// caller can re-solve for a window plus one new range without copying the window.
    ///
    /// # Errors
    /// As [`Estimator::refine`].
    pub fn refine_concat<M: MeasurementModel<D>>(
        &self,
        state: &State<D>,
        anchor: &GaussianBelief<D>,
        earlier: &[M],
        newest: &[M],
    ) -> Result<(State<D>, UpdateStats), EstimatorError> {
        if D > 5 {
            return Err(ConfigError::invalid("dimension", D, "at most 5 for refine").into());
        }
        let start = match &state.belief {
            Belief::Gaussian(g) => *g,
            Belief::Mixture(m) => m.moment_matched(),
            Belief::Particles(_) => {
                return Err(EstimatorError::StateMismatch { state: state.kind(), method: "refine (Gaussian states only)" })
            }
        };
        let (belief, s) = flow::natural_flow_from(
            anchor,
            &start,
            &flow::MeasurementBatch(earlier, newest),
            &self.refine_cubature,
            &self.config.natural_settings(),
        )?;
        let belief = match &state.belief {
            Belief::Mixture(_) => Belief::Mixture(GaussianMixture::single(belief)),
            _ => Belief::Gaussian(belief),
        };
        let stats = UpdateStats {
            iterations: s.iterations,
            converged: s.converged,
            evaluations: s.evaluations * (earlier.len() + newest.len()),
            components: 1,
            log_evidence: s.elbo,
        };
        let next = State { belief, updates: state.updates, last: stats, mirror_plane_z_m: state.mirror_plane_z_m };
        next.summary()?;
        Ok((next, stats))
    }

    /// Absorbs one measurement under any [`MeasurementModel`] (e.g. [`LinearModel`] in
    /// tests). Same contract as [`Estimator::update`].
    ///
    /// # Errors
    /// As [`Estimator::update`].
    pub fn update_with_model<M: MeasurementModel<D>>(
        &self,
        state: &State<D>,
        model: &M,
    ) -> Result<(State<D>, UpdateStats), EstimatorError> {
        let method = self.config.method;
        let mismatch = || EstimatorError::StateMismatch { state: state.kind(), method: method.name() };
        let mut rng = StdRng::seed_from_u64(mix_seed(self.config.seed, state.updates));
        let sampled;
        let nodes: &[StandardNode<D>] = if self.config.flow.cubature && !self.cubature.is_empty() {
            &self.cubature
        } else {
            sampled = cubature::antithetic_normal_nodes::<D, _>(self.config.flow.samples, &mut rng);
            &sampled
        };
        let single = |belief: GaussianBelief<D>, stats: FlowStats| {
            (
                Belief::Gaussian(belief),
                UpdateStats {
                    iterations: stats.iterations,
                    converged: stats.converged,
                    evaluations: stats.evaluations,
                    components: 1,
                    log_evidence: stats.elbo,
                },
            )
        };
        let closed_form = |belief: GaussianBelief<D>| {
            (
                Belief::Gaussian(belief),
                UpdateStats { iterations: 1, converged: true, evaluations: 1, components: 1, log_evidence: f64::NEG_INFINITY },
            )
        };
        let (belief, stats) = match (&state.belief, method) {
            (Belief::Gaussian(g), Method::Natural) => {
                let (b, s) = flow::natural_flow_update(g, model, nodes, &self.config.natural_settings())?;
                single(b, s)
            }
            (Belief::Gaussian(g), Method::Plain) => {
                let (b, s) = flow::plain_flow_update(g, model, &self.config.plain_settings(), &mut rng)?;
                single(b, s)
            }
            (Belief::Gaussian(g), Method::Ekf) => closed_form(kalman::ekf_update(g, model)?),
            (Belief::Gaussian(g), Method::Ukf) => closed_form(kalman::ukf_update(g, model)?),
            (Belief::Mixture(m), Method::Mixture) => {
                let (flow, settings) = (&self.config.natural_settings(), &self.config.mixture_settings());
                let (mix, s) = match state.mirror_plane_z_m {
                    Some(plane) => mixture::mirror_mixture_flow_update(m, plane, model, nodes, flow, settings)?,
                    None => mixture::mixture_flow_update(m, model, nodes, flow, settings)?,
                };
                let components = mix.components().len();
                (
                    Belief::Mixture(mix),
                    UpdateStats {
                        iterations: s.iterations,
                        converged: s.converged,
                        evaluations: s.evaluations,
                        components,
                        log_evidence: s.elbo,
                    },
                )
            }
            (Belief::Particles(p), Method::Particle) => {
                let (set, _) = particle::particle_update(p, model, &self.config.particle_settings(), &mut rng)?;
                let n = set.particles().len();
                (
                    Belief::Particles(set),
                    UpdateStats { iterations: 1, converged: true, evaluations: n, components: 0, log_evidence: f64::NEG_INFINITY },
                )
            }
            _ => return Err(mismatch()),
        };
        let next = State { belief, updates: state.updates + 1, last: stats, mirror_plane_z_m: state.mirror_plane_z_m };
        // Never hand back a state the node could not publish.
        next.summary()?;
        Ok((next, stats))
    }
}
