//! Exact 2-D posterior p(s | z₁..z_K) ∝ N(s; μ₀, Σ₀) Πₖ p(zₖ|s) by batch Bayes on a grid,
//! the reference truth for the accuracy report and the tests.
//!
//! Two passes of the midpoint rule ([`two_pass_posterior`], shared with the 3-D
//! [`super::grid3::ExactPosterior3`]): a coarse grid over μ₀ ± 8 prior standard deviations
//! finds where the posterior lives (log-density within 40 nats of its maximum), a fine grid
//! over that box gives ln Z, μ and Σ. Densities elsewhere are evaluated pointwise from the
//! stored measurements, so KL(q ‖ p) can be integrated over q by cubature.

use nalgebra::{SMatrix, SVector, Vector2};

use super::belief::{cholesky, log_density_with, GaussianBelief};
use super::cubature::gauss_hermite_nodes;
use super::error::EstimatorError;
use super::mixture::{log_sum_exp, GaussianMixture};
use super::model::MeasurementModel;

/// The exact posterior of a 2-D landmark after a batch of measurements.
#[derive(Clone, Debug)]
pub struct ExactPosterior2<M> {
    prior: GaussianBelief<2>,
    models: Vec<M>,
    log_normaliser: f64,
    moments: GaussianBelief<2>,
}

/// Log-density window (nats below the maximum) kept by the fine grid.
const WINDOW_NATS: f64 = 40.0;

impl<M: MeasurementModel<2> + Clone> ExactPosterior2<M> {
    /// Computes the posterior with `cells_per_axis`² cells per pass.
    ///
    /// # Errors
    /// `NotPositiveDefinite` for a non-SPD prior; `NonFinite` when the posterior has no
    /// finite mass on the grid.
    pub fn compute(prior: &GaussianBelief<2>, models: &[M], cells_per_axis: usize) -> Result<Self, EstimatorError> {
        let chol = prior.cholesky()?;
        let mut post = Self {
            prior: *prior,
            models: models.to_vec(),
            log_normaliser: 0.0,
            moments: *prior,
        };
        let (_, log_z, moments) =
            two_pass_posterior(prior, cells_per_axis.max(8), &|s| post.unnormalised_log_density_with(&chol, s))?;
        post.log_normaliser = log_z;
        post.moments = moments;
        Ok(post)
    }

    fn unnormalised_log_density_with(&self, chol: &nalgebra::Cholesky<f64, nalgebra::Const<2>>, s: &Vector2<f64>) -> f64 {
        log_density_with(chol, &self.prior.mean, s) + self.models.iter().map(|m| m.log_likelihood(s)).sum::<f64>()
    }

    /// ln p(s | z₁..z_K).
    pub fn log_density(&self, s: &Vector2<f64>) -> f64 {
        match cholesky(&self.prior.cov, "prior cov") {
            Ok(chol) => self.unnormalised_log_density_with(&chol, s) - self.log_normaliser,
            Err(_) => f64::NEG_INFINITY,
        }
    }

    /// ln p(z₁..z_K), the evidence.
    pub fn log_evidence(&self) -> f64 {
        self.log_normaliser
    }

    /// Posterior mean and covariance (not a Gaussian approximation of the shape: just the
    /// first two moments).
    pub fn moments(&self) -> GaussianBelief<2> {
        self.moments
    }

    /// KL(q ‖ p) = E_q[ln q − ln p] by a Gauss–Hermite rule with `points_per_axis`² nodes on q.
    ///
    /// # Errors
    /// `NotPositiveDefinite` for a non-SPD q.
    pub fn kl_from_gaussian(&self, q: &GaussianBelief<2>, points_per_axis: usize) -> Result<f64, EstimatorError> {
        let chol = q.cholesky()?;
        let l = chol.l();
        let prior_chol = self.prior.cholesky()?;
        let mut kl = 0.0;
        for node in gauss_hermite_nodes::<2>(points_per_axis) {
            let s = q.mean + l * node.point;
            let lp = self.unnormalised_log_density_with(&prior_chol, &s) - self.log_normaliser;
            kl += node.weight * (log_density_with(&chol, &q.mean, &s) - lp);
        }
        Ok(kl)
    }

    /// KL(q ‖ p) for a mixture q = Σ wᵢ qᵢ: Σ wᵢ E_{qᵢ}[ln q − ln p].
    ///
    /// # Errors
    /// `NotPositiveDefinite` for a non-SPD component.
    pub fn kl_from_mixture(&self, q: &GaussianMixture<2>, points_per_axis: usize) -> Result<f64, EstimatorError> {
        let prior_chol = self.prior.cholesky()?;
        let nodes = gauss_hermite_nodes::<2>(points_per_axis);
        let mut kl = 0.0;
        for c in q.components() {
            let l = c.belief.cholesky()?.l();
            for node in &nodes {
                let s = c.belief.mean + l * node.point;
                let lp = self.unnormalised_log_density_with(&prior_chol, &s) - self.log_normaliser;
                kl += c.weight * node.weight * (q.log_density(&s)? - lp);
            }
        }
        Ok(kl)
    }
}

/// The two midpoint-rule passes of the module doc in D dimensions: a coarse grid of
/// `n`ᴰ cells over μ₀ ± 8 prior standard deviations per axis, then `n`ᴰ cells over the
/// box (padded by 1.5 coarse cells) where the unnormalised log-density `density` is within
/// [`WINDOW_NATS`] of its maximum. Returns the fine grid, ln Z = ln Σ exp(ℓ)·(cell volume)
/// and the moments. Only the fine pass's values are kept.
///
/// # Errors
/// `NonFinite` when a pass has no finite cell.
pub(crate) fn two_pass_posterior<const D: usize>(
    prior: &GaussianBelief<D>,
    n: usize,
    density: &dyn Fn(&SVector<f64, D>) -> f64,
) -> Result<(Grid<D>, f64, GaussianBelief<D>), EstimatorError> {
    let half = SVector::<f64, D>::from_fn(|i, _| prior.cov[(i, i)].sqrt()) * 8.0;
    let coarse = Grid::evaluate(prior.mean - half, prior.mean + half, n, density)?;
    let max = coarse.values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let (mut blo, mut bhi) = (SVector::<f64, D>::repeat(f64::INFINITY), SVector::<f64, D>::repeat(f64::NEG_INFINITY));
    for (k, v) in coarse.values.iter().enumerate() {
        if *v > max - WINDOW_NATS {
            let c = coarse.centre(k);
            blo = blo.inf(&c);
            bhi = bhi.sup(&c);
        }
    }
    let pad = coarse.cell * 1.5;
    drop(coarse);
    let fine = Grid::evaluate(blo - pad, bhi + pad, n, density)?;
    let volume = fine.cell.product();
    let log_z = log_sum_exp(&fine.values) + volume.ln();
    let mut mean = SVector::<f64, D>::zeros();
    let mut second = SMatrix::<f64, D, D>::zeros();
    for (k, v) in fine.values.iter().enumerate() {
        let w = (v - log_z).exp() * volume;
        let c = fine.centre(k);
        mean += c * w;
        second += c * c.transpose() * w;
    }
    let cov = second - mean * mean.transpose();
    Ok((fine, log_z, GaussianBelief { mean, cov: (cov + cov.transpose()) * 0.5 }))
}

/// Log-densities at the centres of `n`ᴰ equal cells from `lo`, the first axis fastest.
#[derive(Clone, Debug)]
pub(crate) struct Grid<const D: usize> {
    pub(crate) lo: SVector<f64, D>,
    pub(crate) cell: SVector<f64, D>,
    pub(crate) n: usize,
    pub(crate) values: Vec<f64>,
}

impl<const D: usize> Grid<D> {
    fn evaluate(
        lo: SVector<f64, D>,
        hi: SVector<f64, D>,
        n: usize,
        density: &dyn Fn(&SVector<f64, D>) -> f64,
    ) -> Result<Self, EstimatorError> {
        let cell = (hi - lo) / n as f64;
        let count = n.pow(D as u32);
        let mut grid = Self { lo, cell, n, values: Vec::with_capacity(count) };
        for k in 0..count {
            let s = grid.centre(k);
            grid.values.push(density(&s));
        }
        if !grid.values.iter().any(|v| v.is_finite()) {
            return Err(EstimatorError::NonFinite { quantity: "grid posterior", value: "no finite cell".into() });
        }
        Ok(grid)
    }

    /// Centre of cell `k` (axis a's index is ⌊k / nᵃ⌋ mod n).
    pub(crate) fn centre(&self, k: usize) -> SVector<f64, D> {
        SVector::<f64, D>::from_fn(|a, _| {
            let index = (k / self.n.pow(a as u32)) % self.n;
            self.lo[a] + (index as f64 + 0.5) * self.cell[a]
        })
    }
}
