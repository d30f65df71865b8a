//! Exact 2-D posterior p(s | z₁..z_K) ∝ N(s; μ₀, Σ₀) Πₖ p(zₖ|s) by batch Bayes on a grid,
//! the reference truth for the accuracy report and the tests.
//!
//! Two passes of the midpoint rule: a coarse grid over μ₀ ± 8 prior standard deviations
//! finds where the posterior lives (log-density within 40 nats of its maximum), a fine grid
//! over that box gives ln Z, μ and Σ. Densities elsewhere are evaluated pointwise from the
//! stored measurements, so KL(q ‖ p) can be integrated over q by cubature.

use nalgebra::{Matrix2, Vector2};

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
        prior.cholesky()?;
        let mut post = Self {
            prior: *prior,
            models: models.to_vec(),
            log_normaliser: 0.0,
            moments: *prior,
        };
        let n = cells_per_axis.max(8);
        let half = Vector2::new(prior.cov[(0, 0)].sqrt(), prior.cov[(1, 1)].sqrt()) * 8.0;
        let (lo, hi) = (prior.mean - half, prior.mean + half);
        let coarse = post.evaluate(lo, hi, n)?;
        let max = coarse.values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let (mut blo, mut bhi) = (Vector2::repeat(f64::INFINITY), Vector2::repeat(f64::NEG_INFINITY));
        for (k, v) in coarse.values.iter().enumerate() {
            if *v > max - WINDOW_NATS {
                let c = coarse.centre(k);
                blo = blo.inf(&c);
                bhi = bhi.sup(&c);
            }
        }
        let pad = coarse.cell * 1.5;
        let fine = post.evaluate(blo - pad, bhi + pad, n)?;
        let area = fine.cell.x * fine.cell.y;
        let log_z = log_sum_exp(&fine.values) + area.ln();
        let mut mean = Vector2::zeros();
        let mut second = Matrix2::zeros();
        for (k, v) in fine.values.iter().enumerate() {
            let w = (v - log_z).exp() * area;
            let c = fine.centre(k);
            mean += c * w;
            second += c * c.transpose() * w;
        }
        let cov = second - mean * mean.transpose();
        post.log_normaliser = log_z;
        post.moments = GaussianBelief { mean, cov: (cov + cov.transpose()) * 0.5 };
        Ok(post)
    }

    fn evaluate(&self, lo: Vector2<f64>, hi: Vector2<f64>, n: usize) -> Result<Grid, EstimatorError> {
        let cell = (hi - lo) / n as f64;
        let mut values = Vec::with_capacity(n * n);
        let chol = self.prior.cholesky()?;
        for iy in 0..n {
            for ix in 0..n {
                let s = lo + Vector2::new((ix as f64 + 0.5) * cell.x, (iy as f64 + 0.5) * cell.y);
                values.push(self.unnormalised_log_density_with(&chol, &s));
            }
        }
        if !values.iter().any(|v| v.is_finite()) {
            return Err(EstimatorError::NonFinite { quantity: "grid posterior", value: "no finite cell".into() });
        }
        Ok(Grid { lo, cell, n, values })
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

struct Grid {
    lo: Vector2<f64>,
    cell: Vector2<f64>,
    n: usize,
    values: Vec<f64>,
}

impl Grid {
    fn centre(&self, k: usize) -> Vector2<f64> {
        let (ix, iy) = (k % self.n, k / self.n);
        self.lo + Vector2::new((ix as f64 + 0.5) * self.cell.x, (iy as f64 + 0.5) * self.cell.y)
    }
}
