//! Mixture flow: the posterior as a small sum of Gaussians Σᵢ wᵢ N(μᵢ, Σᵢ).
//!
//! Per measurement: (1) split every component whose measurement nonlinearity is large
//! (so a ring-shaped likelihood across a component becomes several arcs instead of one
//! committed lobe), (2) update each component with the natural flow, (3) reweight
//! wᵢ ∝ wᵢ · exp(ELBOᵢ), ELBOᵢ ≤ ln pᵢ(z) being each component's marginal-likelihood
//! estimate on the same nodes, (4) prune tiny weights, merge close pairs (Runnalls'
//! KL bound) and collapse to one Gaussian once the mixture is unimodal.

use nalgebra::{SMatrix, SVector};

use super::belief::{cholesky, ln_det, symmetric_eigen, symmetrise, GaussianBelief};
use super::cubature::StandardNode;
use super::error::EstimatorError;
use super::flow::{natural_flow_update, FlowStats, NaturalFlowSettings};
use super::model::MeasurementModel;

/// One weighted component wᵢ N(μᵢ, Σᵢ).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MixtureComponent<const D: usize> {
    /// wᵢ ∈ (0, 1], weights sum to 1.
    pub weight: f64,
    /// N(μᵢ, Σᵢ).
    pub belief: GaussianBelief<D>,
}

/// A normalised Gaussian mixture with at least one component.
#[derive(Clone, Debug, PartialEq)]
pub struct GaussianMixture<const D: usize> {
    components: Vec<MixtureComponent<D>>,
}

/// Settings of [`mixture_flow_update`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MixtureSettings {
    /// Components kept after reduction.
    pub max_components: usize,
    /// Components allowed while a measurement is processed (after splitting).
    pub split_budget: usize,
    /// Split a component when its nonlinearity index √(½ tr((∇²h Σ)²)) / σ exceeds this.
    pub split_threshold: f64,
    /// Drop components lighter than this after reweighting.
    pub prune_weight: f64,
    /// Merge a pair (or collapse all) when Runnalls' bound per unit weight is below this, nats.
    pub merge_threshold: f64,
}

impl Default for MixtureSettings {
    fn default() -> Self {
        Self { max_components: 8, split_budget: 24, split_threshold: 0.5, prune_weight: 1e-4, merge_threshold: 0.05 }
    }
}

/// 3-way moment-preserving split of N(0, 1): weights (w, 1−2w, w), means (−a, 0, a),
/// variance α², with 2wa² + α² = 1.
const SPLIT_WEIGHT: f64 = 0.225_224_624_9;
const SPLIT_VAR: f64 = 0.45;

impl<const D: usize> GaussianMixture<D> {
    /// The one-component mixture N(μ, Σ).
    pub fn single(belief: GaussianBelief<D>) -> Self {
        Self { components: vec![MixtureComponent { weight: 1.0, belief }] }
    }

    /// Builds a mixture, normalising the weights.
    ///
    /// # Errors
    /// `InvalidMixture` when there is no component or a weight is not finite and > 0;
    /// `NotPositiveDefinite` when a component is not publishable.
    pub fn new(mut components: Vec<MixtureComponent<D>>) -> Result<Self, EstimatorError> {
        if components.is_empty() {
            return Err(EstimatorError::InvalidMixture { quantity: "components", value: "none".into() });
        }
        let total: f64 = components.iter().map(|c| c.weight).sum();
        if components.iter().any(|c| !(c.weight.is_finite() && c.weight > 0.0)) || !total.is_finite() {
            let w: Vec<f64> = components.iter().map(|c| c.weight).collect();
            return Err(EstimatorError::InvalidMixture { quantity: "weights", value: format!("{w:?}") });
        }
        for c in &mut components {
            GaussianBelief::new(c.belief.mean, c.belief.cov)?;
            c.weight /= total;
        }
        Ok(Self { components })
    }

    /// The components, weights summing to 1.
    pub fn components(&self) -> &[MixtureComponent<D>] {
        &self.components
    }

    /// Moment-matched Gaussian: μ = Σ wᵢμᵢ, Σ = Σ wᵢ(Σᵢ + (μᵢ−μ)(μᵢ−μ)ᵀ).
    pub fn moment_matched(&self) -> GaussianBelief<D> {
        moment_match(&self.components)
    }

    /// ln Σᵢ wᵢ N(s; μᵢ, Σᵢ).
    ///
    /// # Errors
    /// `NotPositiveDefinite` when a component covariance is not SPD.
    pub fn log_density(&self, s: &SVector<f64, D>) -> Result<f64, EstimatorError> {
        let mut terms = Vec::with_capacity(self.components.len());
        for c in &self.components {
            terms.push(c.weight.ln() + c.belief.log_density(s)?);
        }
        Ok(log_sum_exp(&terms))
    }
}

fn moment_match<const D: usize>(components: &[MixtureComponent<D>]) -> GaussianBelief<D> {
    let total: f64 = components.iter().map(|c| c.weight).sum();
    let mean = components.iter().fold(SVector::<f64, D>::zeros(), |acc, c| acc + c.belief.mean * c.weight) / total;
    let cov = components.iter().fold(SMatrix::<f64, D, D>::zeros(), |acc, c| {
        let d = c.belief.mean - mean;
        acc + (c.belief.cov + d * d.transpose()) * c.weight
    }) / total;
    GaussianBelief { mean, cov: symmetrise(&cov) }
}

pub(crate) fn log_sum_exp(terms: &[f64]) -> f64 {
    let max = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()
}

/// Nonlinearity index of the measurement over N(μ, Σ): the standard deviation of the
/// second-order term ½δᵀ∇²h(μ)δ, δ ~ N(0, Σ), in units of σ: √(½‖LᵀHL‖²_F)/σ, with the
/// principal direction Le (e the dominant eigenvector of LᵀHL).
fn nonlinearity<const D: usize, M: MeasurementModel<D>>(
    model: &M,
    belief: &GaussianBelief<D>,
) -> Option<(f64, SVector<f64, D>)> {
    let l = cholesky(&belief.cov, "cov").ok()?.l();
    let a = symmetrise(&(l.transpose() * model.predict_hessian(&belief.mean) * l));
    let index = (0.5 * a.norm_squared()).sqrt() / model.noise().equivalent_variance().sqrt();
    let (values, vectors) = symmetric_eigen(&a);
    let k = values.iamax();
    Some((index, l * vectors.column(k)))
}

/// Replaces N(μ, Σ) by three components along Le (L the Cholesky factor of Σ and e a
/// unit whitened direction) that preserve the mean and covariance exactly.
fn split<const D: usize>(component: &MixtureComponent<D>, direction: &SVector<f64, D>) -> [MixtureComponent<D>; 3] {
    let offset = ((1.0 - SPLIT_VAR) / (2.0 * SPLIT_WEIGHT)).sqrt();
    let shrink = direction * direction.transpose() * (1.0 - SPLIT_VAR);
    let cov = symmetrise(&(component.belief.cov - shrink));
    let make = |w: f64, a: f64| MixtureComponent {
        weight: component.weight * w,
        belief: GaussianBelief { mean: component.belief.mean + direction * a, cov },
    };
    [make(SPLIT_WEIGHT, -offset), make(1.0 - 2.0 * SPLIT_WEIGHT, 0.0), make(SPLIT_WEIGHT, offset)]
}

/// Splits the most nonlinear components (index above the threshold) until none is left
/// or the split budget is reached.
fn split_for_measurement<const D: usize, M: MeasurementModel<D>>(
    components: &mut Vec<MixtureComponent<D>>,
    model: &M,
    settings: &MixtureSettings,
) {
    while components.len() + 2 <= settings.split_budget {
        let worst = components
            .iter()
            .enumerate()
            .filter_map(|(i, c)| nonlinearity(model, &c.belief).map(|(idx, dir)| (i, idx, dir)))
            .filter(|(_, idx, _)| *idx > settings.split_threshold)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((i, _, direction)) = worst else { break };
        let parts = split(&components[i], &direction);
        if parts.iter().any(|p| cholesky(&p.belief.cov, "cov").is_err()) {
            break;
        }
        components.swap_remove(i);
        components.extend_from_slice(&parts);
    }
}

/// Runnalls' upper bound on KL(mixture ‖ merged) for merging `group` into one moment-
/// matched Gaussian: ½[W ln det Σ_m − Σ wᵢ ln det Σᵢ].
fn merge_cost<const D: usize>(group: &[MixtureComponent<D>]) -> Option<(f64, MixtureComponent<D>)> {
    let total: f64 = group.iter().map(|c| c.weight).sum();
    let merged = moment_match(group);
    let ln_det_merged = ln_det(&cholesky(&merged.cov, "cov").ok()?);
    let mut cost = total * ln_det_merged;
    for c in group {
        cost -= c.weight * ln_det(&cholesky(&c.belief.cov, "cov").ok()?);
    }
    Some((0.5 * cost, MixtureComponent { weight: total, belief: merged }))
}

/// Prune, merge close pairs, cap the count, collapse when unimodal.
fn reduce<const D: usize>(mut components: Vec<MixtureComponent<D>>, settings: &MixtureSettings) -> Vec<MixtureComponent<D>> {
    let heaviest = components.iter().map(|c| c.weight).fold(0.0, f64::max);
    components.retain(|c| c.weight >= settings.prune_weight || c.weight == heaviest);
    normalise(&mut components);
    if components.len() > 1 {
        if let Some((cost, merged)) = merge_cost(&components) {
            if cost <= settings.merge_threshold {
                return vec![MixtureComponent { weight: 1.0, ..merged }];
            }
        }
    }
    loop {
        if components.len() <= 1 {
            break;
        }
        let mut best: Option<(f64, usize, usize, MixtureComponent<D>)> = None;
        for i in 0..components.len() {
            for j in (i + 1)..components.len() {
                if let Some((cost, merged)) = merge_cost(&[components[i], components[j]]) {
                    let per_weight = cost / merged.weight;
                    let key = if components.len() > settings.max_components { cost } else { per_weight };
                    if best.as_ref().is_none_or(|b| key < b.0) {
                        best = Some((key, i, j, merged));
                    }
                }
            }
        }
        let Some((key, i, j, merged)) = best else { break };
        if components.len() <= settings.max_components && key > settings.merge_threshold {
            break;
        }
        components.swap_remove(j);
        components[i] = merged;
    }
    if components.len() > settings.max_components {
        // Merging failed numerically: keep the heaviest.
        components.sort_by(|a, b| b.weight.total_cmp(&a.weight));
        components.truncate(settings.max_components);
    }
    normalise(&mut components);
    components
}

fn normalise<const D: usize>(components: &mut [MixtureComponent<D>]) {
    let total: f64 = components.iter().map(|c| c.weight).sum();
    for c in components.iter_mut() {
        c.weight /= total;
    }
}

/// One mixture-flow update (module doc). Stats: `iterations` is the largest component
/// iteration count, `converged` is true when every component converged, `evaluations`
/// is the total, `elbo` the mixture's log-evidence estimate ln Σ wᵢ exp(ELBOᵢ).
///
/// # Errors
/// `DegenerateWeights` when no component has a finite ELBO; errors of the flow.
pub fn mixture_flow_update<const D: usize, M: MeasurementModel<D>>(
    prior: &GaussianMixture<D>,
    model: &M,
    nodes: &[StandardNode<D>],
    flow: &NaturalFlowSettings,
    settings: &MixtureSettings,
) -> Result<(GaussianMixture<D>, FlowStats), EstimatorError> {
    let mut components = prior.components.clone();
    split_for_measurement(&mut components, model, settings);
    let mut stats = FlowStats { converged: true, ..FlowStats::default() };
    let mut log_weights = Vec::with_capacity(components.len());
    let mut updated = Vec::with_capacity(components.len());
    for c in &components {
        let (belief, s) = natural_flow_update(&c.belief, model, nodes, flow)?;
        stats.iterations = stats.iterations.max(s.iterations);
        stats.converged &= s.converged;
        stats.evaluations += s.evaluations;
        log_weights.push(c.weight.ln() + s.elbo);
        updated.push(belief);
    }
    let log_evidence = log_sum_exp(&log_weights);
    if !log_evidence.is_finite() {
        return Err(EstimatorError::DegenerateWeights(log_evidence));
    }
    stats.elbo = log_evidence;
    let components: Vec<MixtureComponent<D>> = updated
        .into_iter()
        .zip(&log_weights)
        .map(|(belief, lw)| MixtureComponent { weight: (lw - log_evidence).exp(), belief })
        .filter(|c| c.weight > 0.0)
        .collect();
    Ok((GaussianMixture { components: reduce(components, settings) }, stats))
}

/// Probability mass below which a half-space is dropped by [`mirror_mixture`] (the prior
/// has then resolved the mirror; also where the truncated-normal formulas lose digits).
pub const MIRROR_MIN_MASS: f64 = 1e-9;

/// The two mirror modes of a landmark seen by ranges from a sensor moving in the plane
/// z = z_s: the prior N(μ, Σ) over s = (x, y, z, …) (z is coordinate [`HEIGHT`]; a
/// calibrated state appends (s, b)) split at that plane into two components, each the
/// prior truncated to its half-space and moment-matched.
///
/// Ranges from points of the plane cannot tell z_s + h from z_s − h, so the posterior
/// keeps whatever weight the prior gives each half-space; a single Gaussian straddling
/// the plane cannot hold the two modes, this mixture can (each half is then updated by
/// the flow on its own side).
///
/// Math: with σ_z² = Σ_zz, α = (z_s − μ_z)/σ_z and λ(a) = φ(a)/(1 − Φ(a)) (the inverse
/// Mills ratio), the z marginal above the plane is the truncated normal with mass
/// 1 − Φ(α), mean μ_z + σ_z λ(α) and variance σ_z² (1 + αλ(α) − λ(α)²); below the plane
/// the same with z ↦ −z (mass Φ(α), mean μ_z − σ_z λ(−α), variance
/// σ_z² (1 − αλ(−α) − λ(−α)²)). Given z the rest is unchanged (the Gaussian conditional
/// s | z = μ + g (z − μ_z) + e, g = Σ e_z / σ_z², e independent of z), so a half with
/// z-moments (m, v) has mean μ + g (m − μ_z) and covariance Σ + g gᵀ (v − σ_z²) (exact
/// moments of the truncated prior). The weights are the half-space masses, ½ and ½ when
/// the prior is symmetric about the plane (μ_z = z_s); with those weights the mixture
/// has exactly the prior's mean and covariance. A half with mass below
/// [`MIRROR_MIN_MASS`] is dropped (one component, the prior itself).
///
/// Φ is evaluated through erfc (Numerical Recipes' Chebyshev fit, relative error
/// < 1.2·10⁻⁷), with λ computed from the fit's exponent so it does not underflow.
///
/// # Errors
/// `NotPositiveDefinite` for a non-SPD prior; `NonFinite` for a non-finite plane height;
/// `Config` for D < 3.
pub fn mirror_mixture<const D: usize>(prior: &GaussianBelief<D>, sensor_plane_z_m: f64) -> Result<GaussianMixture<D>, EstimatorError> {
    no_height::<D>()?;
    let prior = GaussianBelief::new(prior.mean, prior.cov)?;
    if !sensor_plane_z_m.is_finite() {
        return Err(EstimatorError::NonFinite { quantity: "sensor_plane_z_m", value: format!("{sensor_plane_z_m}") });
    }
    let var_z = prior.cov[(HEIGHT, HEIGHT)];
    let sd_z = var_z.sqrt();
    let gain = prior.cov.column(HEIGHT) / var_z;
    let alpha = (sensor_plane_z_m - prior.mean[HEIGHT]) / sd_z;
    // (mass, mean shift in σ_z, variance ratio) of each side.
    let upper = |a: f64| {
        let (mass, lambda) = upper_tail_and_mills(a);
        (mass, lambda, 1.0 + a * lambda - lambda * lambda)
    };
    let (mass_up, shift_up, ratio_up) = upper(alpha);
    let (mass_down, shift_down, ratio_down) = upper(-alpha);
    let half = |mass: f64, shift: f64, ratio: f64| MixtureComponent {
        weight: mass,
        belief: GaussianBelief {
            mean: prior.mean + gain * (shift * sd_z),
            cov: symmetrise(&(prior.cov + gain * gain.transpose() * (var_z * (ratio - 1.0)))),
        },
    };
    let mut components = Vec::with_capacity(2);
    if mass_up >= MIRROR_MIN_MASS {
        components.push(half(mass_up, shift_up, ratio_up));
    }
    if mass_down >= MIRROR_MIN_MASS {
        components.push(half(mass_down, -shift_down, ratio_down));
    }
    if components.len() < 2 {
        return Ok(GaussianMixture::single(prior));
    }
    GaussianMixture::new(components)
}

/// Index of the height z in a state whose first three coordinates are the landmark's
/// (x, y, z) (a 3-D position, or one with the range calibration appended).
pub const HEIGHT: usize = 2;

/// `Config` naming `dimension` for a state without a height (D < 3).
fn no_height<const D: usize>() -> Result<(), EstimatorError> {
    if D <= HEIGHT {
        return Err(crate::config::ConfigError::invalid("dimension", D, "at least 3 (a height) for mirror modes").into());
    }
    Ok(())
}

/// Upper tail Q(a) = 1 − Φ(a) and the inverse Mills ratio φ(a)/Q(a), through
/// erfc(x) = t·exp(−x² + P(t)), t = 1/(1 + x/2) (Numerical Recipes `erfcc`). Not the
/// planner's `normal_cdf_pdf`: its error is absolute (7.5e-8), and the Mills ratio far
/// in the tail needs Q to relative accuracy.
fn upper_tail_and_mills(a: f64) -> (f64, f64) {
    let x = a.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x);
    let p = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07 + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let phi = (-0.5 * a * a).exp() / (2.0 * std::f64::consts::PI).sqrt();
    if a >= 0.0 {
        // Q = ½ t exp(−a²/2 + P): φ/Q = exp(−P) / (½ t √(2π)), no underflow for large a.
        let q = 0.5 * t * (-x * x + p).exp();
        (q, (-p).exp() / (0.5 * t * (2.0 * std::f64::consts::PI).sqrt()))
    } else {
        let q = 1.0 - 0.5 * t * (-x * x + p).exp();
        (q, phi / q)
    }
}

impl GaussianMixture<3> {
    /// P(z > z₀) = Σ wᵢ (1 − Φ((z₀ − μᵢ,z)/σᵢ,z)): the mixture's mass above the plane
    /// z = `plane_z_m` (Φ as in [`mirror_mixture`], relative error < 1.2·10⁻⁷).
    pub fn mass_above(&self, plane_z_m: f64) -> f64 {
        self.components
            .iter()
            .map(|c| c.weight * upper_tail_and_mills((plane_z_m - c.belief.mean.z) / c.belief.cov[(2, 2)].sqrt()).0)
            .sum()
    }
}

/// One mixture-flow update that keeps the two mirror modes of a planar sensor path
/// apart: the components are grouped by the side of the plane z = z_s their mean lies
/// on, each group is updated by [`mixture_flow_update`] with half the component and
/// split budgets (at least 1 and the group's component cap), and the groups are
/// reweighted by their evidence, W_side ∝ W_side · exp(ln Σᵢ wᵢ exp(ELBOᵢ)) (the
/// group's estimate of ln p(z | side)); within a group the weights are as
/// [`mixture_flow_update`] leaves them.
///
/// Why not [`mixture_flow_update`] on the whole mixture: its split budget is spent
/// greedily over all components, so two mirror-image components do not get the same
/// number of splits (2 components and a budget of 24 leave 11 splits: 6 on one side, 5
/// on the other); the better-resolved side has the larger ELBO and wins weight that the
/// data do not give it (on a symmetric problem 0.57/0.43 after 40 ranges instead of
/// ½/½). Separate, equal budgets make mirrored halves evolve as exact mirror images.
/// With all components on one side this is [`mixture_flow_update`]; a side whose
/// update has no finite evidence (`DegenerateWeights`) is dropped.
///
/// # Errors
/// `DegenerateWeights` when neither side has a finite evidence; flow errors; `Config`
/// for D < 3.
pub fn mirror_mixture_flow_update<const D: usize, M: MeasurementModel<D>>(
    prior: &GaussianMixture<D>,
    sensor_plane_z_m: f64,
    model: &M,
    nodes: &[StandardNode<D>],
    flow: &NaturalFlowSettings,
    settings: &MixtureSettings,
) -> Result<(GaussianMixture<D>, FlowStats), EstimatorError> {
    no_height::<D>()?;
    let (above, below): (Vec<_>, Vec<_>) =
        prior.components.iter().copied().partition(|c| c.belief.mean[HEIGHT] >= sensor_plane_z_m);
    if above.is_empty() || below.is_empty() {
        return mixture_flow_update(prior, model, nodes, flow, settings);
    }
    let max_components = (settings.max_components / 2).max(1);
    let half = MixtureSettings { max_components, split_budget: (settings.split_budget / 2).max(max_components), ..*settings };
    let mut stats = FlowStats { converged: true, ..FlowStats::default() };
    let mut sides = Vec::with_capacity(2);
    for group in [above, below] {
        let weight: f64 = group.iter().map(|c| c.weight).sum();
        let part = GaussianMixture::new(group)?;
        match mixture_flow_update(&part, model, nodes, flow, &half) {
            Ok((mix, s)) => {
                stats.iterations = stats.iterations.max(s.iterations);
                stats.converged &= s.converged;
                stats.evaluations += s.evaluations;
                sides.push((weight.ln() + s.elbo, mix));
            }
            Err(EstimatorError::DegenerateWeights(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let log_weights: Vec<f64> = sides.iter().map(|(lw, _)| *lw).collect();
    let log_evidence = log_sum_exp(&log_weights);
    if !log_evidence.is_finite() {
        return Err(EstimatorError::DegenerateWeights(log_evidence));
    }
    stats.elbo = log_evidence;
    let components: Vec<MixtureComponent<D>> = sides
        .iter()
        .flat_map(|(lw, mix)| {
            let side = (lw - log_evidence).exp();
            mix.components.iter().map(move |c| MixtureComponent { weight: side * c.weight, ..*c })
        })
        .filter(|c| c.weight > 0.0)
        .collect();
    Ok((GaussianMixture::new(components)?, stats))
}
