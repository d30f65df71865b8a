//! Bootstrap particle filter for a static landmark: importance weights wᵢ ∝ wᵢ p(z|sᵢ),
//! systematic resampling when the effective sample size drops below a fraction of N,
//! then Liu–West kernel regularisation (the landmark does not move, so without it the
//! cloud collapses onto a few copies): sᵢ ← a sᵢ + (1−a) s̄ + h L ξᵢ, a = √(1−h²),
//! ξᵢ ~ N(0, I), Σ_w = LLᵀ, which preserves the weighted mean and covariance.

use nalgebra::{SMatrix, SVector};
use rand::Rng;
use rand_distr::StandardNormal;

use super::belief::{cholesky, symmetrise, GaussianBelief};
use super::error::EstimatorError;
use super::mixture::log_sum_exp;
use super::model::MeasurementModel;

/// Weighted particles approximating the landmark posterior.
#[derive(Clone, Debug, PartialEq)]
pub struct ParticleSet<const D: usize> {
    particles: Vec<SVector<f64, D>>,
    /// Normalised log-weights (log-sum-exp = 0).
    log_weights: Vec<f64>,
}

/// Settings of [`particle_update`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParticleSettings {
    /// N, particles.
    pub count: usize,
    /// Resample when ESS < this fraction of N.
    pub resample_threshold: f64,
    /// h, Liu–West kernel bandwidth ∈ (0, 1).
    pub roughening: f64,
}

impl Default for ParticleSettings {
    fn default() -> Self {
        Self { count: 1000, resample_threshold: 0.5, roughening: 0.1 }
    }
}

impl<const D: usize> ParticleSet<D> {
    /// `count` equally weighted draws from the prior.
    ///
    /// # Errors
    /// `NotPositiveDefinite` when the prior covariance is not SPD.
    pub fn from_prior<R: Rng>(prior: &GaussianBelief<D>, count: usize, rng: &mut R) -> Result<Self, EstimatorError> {
        let l = prior.cholesky()?.l();
        let count = count.max(1);
        let particles = (0..count)
            .map(|_| prior.mean + l * SVector::<f64, D>::from_fn(|_, _| rng.sample(StandardNormal)))
            .collect();
        Ok(Self { particles, log_weights: vec![-(count as f64).ln(); count] })
    }

    /// The particles.
    pub fn particles(&self) -> &[SVector<f64, D>] {
        &self.particles
    }

    /// Normalised weights.
    pub fn weights(&self) -> Vec<f64> {
        self.log_weights.iter().map(|w| w.exp()).collect()
    }

    /// Weighted mean and covariance, plus (10⁻¹⁰ tr Σ + 10⁻¹² m²)·I: above the rounding
    /// error of the weighted sum, so that a cloud collapsed onto a point or a line still
    /// yields an SPD summary, and far below any resolvable uncertainty.
    pub fn moments(&self) -> GaussianBelief<D> {
        let mut mean = SVector::<f64, D>::zeros();
        for (p, lw) in self.particles.iter().zip(&self.log_weights) {
            mean += p * lw.exp();
        }
        let mut cov = SMatrix::<f64, D, D>::zeros();
        for (p, lw) in self.particles.iter().zip(&self.log_weights) {
            let d = p - mean;
            cov += d * d.transpose() * lw.exp();
        }
        let floor = 1e-10 * cov.trace().abs() + 1e-12;
        GaussianBelief { mean, cov: symmetrise(&cov) + SMatrix::identity() * floor }
    }

    /// Effective sample size 1/Σwᵢ².
    pub fn effective_sample_size(&self) -> f64 {
        1.0 / self.log_weights.iter().map(|w| (2.0 * w).exp()).sum::<f64>()
    }
}

/// Statistics of one particle update.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct ParticleStats {
    /// Whether the set was resampled (and regularised).
    pub resampled: bool,
    /// ESS after weighting, before resampling.
    pub effective_sample_size: f64,
}

/// Weight, and when the ESS is low, resample systematically and regularise.
///
/// # Errors
/// `DegenerateWeights` when every particle has zero likelihood.
pub fn particle_update<const D: usize, M: MeasurementModel<D>, R: Rng>(
    set: &ParticleSet<D>,
    model: &M,
    settings: &ParticleSettings,
    rng: &mut R,
) -> Result<(ParticleSet<D>, ParticleStats), EstimatorError> {
    let mut log_weights: Vec<f64> =
        set.particles.iter().zip(&set.log_weights).map(|(p, lw)| lw + model.log_likelihood(p)).collect();
    let total = log_sum_exp(&log_weights);
    if !total.is_finite() {
        return Err(EstimatorError::DegenerateWeights(total));
    }
    for lw in &mut log_weights {
        *lw -= total;
    }
    let weighted = ParticleSet { particles: set.particles.clone(), log_weights };
    let ess = weighted.effective_sample_size();
    let n = weighted.particles.len();
    if ess >= settings.resample_threshold * n as f64 {
        return Ok((weighted, ParticleStats { resampled: false, effective_sample_size: ess }));
    }
    let moments = weighted.moments();
    // Systematic resampling: one uniform offset, N evenly spaced pointers.
    let u0: f64 = rng.random::<f64>() / n as f64;
    let mut resampled = Vec::with_capacity(n);
    let mut cumulative = 0.0;
    let mut i = 0;
    for k in 0..n {
        let u = u0 + k as f64 / n as f64;
        while i + 1 < n && cumulative + weighted.log_weights[i].exp() < u {
            cumulative += weighted.log_weights[i].exp();
            i += 1;
        }
        resampled.push(weighted.particles[i]);
    }
    let h = settings.roughening;
    let a = (1.0 - h * h).sqrt();
    let l = cholesky(&moments.cov, "particle covariance").map(|c| c.l()).unwrap_or_else(|_| SMatrix::identity() * 1e-6);
    for p in &mut resampled {
        let xi = SVector::<f64, D>::from_fn(|_, _| rng.sample(StandardNormal));
        *p = *p * a + moments.mean * (1.0 - a) + l * xi * h;
    }
    let out = ParticleSet { particles: resampled, log_weights: vec![-(n as f64).ln(); n] };
    Ok((out, ParticleStats { resampled: true, effective_sample_size: ess }))
}
