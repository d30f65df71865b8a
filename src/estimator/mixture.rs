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
