//! Exact 3-D posterior p(s | z₁..z_K) ∝ N(s; μ₀, Σ₀) Πₖ p(zₖ | s), s = (x, y, z) in
//! metres, by batch Bayes on a regular grid: the reference truth for 3-D landmarks
//! (issue 15), as [`super::grid::ExactPosterior2`] is in 2-D.
//!
//! The two midpoint-rule passes of the 2-D reference ([`super::grid::two_pass_posterior`]):
//! a coarse grid over μ₀ ± 8 prior standard deviations per axis finds the box where the
//! log-density is within 40 nats of its maximum (both mirror modes of a planar sensor path
//! lie in it), a fine grid over that box gives ln Z, the moments and the mass on either
//! side of a horizontal plane.
//!
//! Memory and time are bounded: at most [`MAX_CELLS_PER_AXIS`]³ = 1 728 000 cells per
//! pass, and only the fine pass's log-densities are kept (≤ 13.8 MB of f64); each pass
//! costs cells × K likelihood evaluations.

use nalgebra::Vector3;

use super::belief::{cholesky, log_density_with, GaussianBelief};
use super::error::EstimatorError;
use super::grid::{two_pass_posterior, Grid};
use super::model::MeasurementModel;
use crate::config::ConfigError;

/// Largest `cells_per_axis` accepted by [`ExactPosterior3::compute`] (120³ cells, 13.8 MB).
pub const MAX_CELLS_PER_AXIS: usize = 120;

/// Smallest `cells_per_axis` accepted.
pub const MIN_CELLS_PER_AXIS: usize = 8;

/// The posterior's mass and mean on either side of the plane z = z₀.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlaneSplit {
    /// P(z > z₀ | data).
    pub mass_above: f64,
    /// P(z < z₀ | data) = 1 − `mass_above` (up to rounding).
    pub mass_below: f64,
    /// E[s | z > z₀, data], metres (NaN when `mass_above` is 0).
    pub mean_above: Vector3<f64>,
    /// E[s | z < z₀, data], metres (NaN when `mass_below` is 0).
    pub mean_below: Vector3<f64>,
}

/// The exact posterior of a 3-D landmark after a batch of measurements, on a grid.
#[derive(Clone, Debug)]
pub struct ExactPosterior3<M> {
    prior: GaussianBelief<3>,
    models: Vec<M>,
    log_normaliser: f64,
    moments: GaussianBelief<3>,
    fine: Grid<3>,
}

impl<M: MeasurementModel<3> + Clone> ExactPosterior3<M> {
    /// Computes the posterior with `cells_per_axis`³ cells per pass (midpoint rule; the
    /// fine cell is the 40-nat box divided by `cells_per_axis` on each axis).
    ///
    /// # Errors
    /// `Config` naming `cells_per_axis` outside [`MIN_CELLS_PER_AXIS`]..=[`MAX_CELLS_PER_AXIS`];
    /// `NotPositiveDefinite` for a non-SPD prior; `NonFinite` when the posterior has no
    /// finite mass on the grid.
    pub fn compute(prior: &GaussianBelief<3>, models: &[M], cells_per_axis: usize) -> Result<Self, EstimatorError> {
        if !(MIN_CELLS_PER_AXIS..=MAX_CELLS_PER_AXIS).contains(&cells_per_axis) {
            return Err(ConfigError::invalid(
                "cells_per_axis",
                cells_per_axis,
                &format!("{MIN_CELLS_PER_AXIS} to {MAX_CELLS_PER_AXIS} (memory bound)"),
            )
            .into());
        }
        let chol = prior.cholesky()?;
        let density = |s: &Vector3<f64>| log_density_with(&chol, &prior.mean, s) + models.iter().map(|m| m.log_likelihood(s)).sum::<f64>();
        let (fine, log_z, moments) = two_pass_posterior(prior, cells_per_axis, &density)?;
        Ok(Self { prior: *prior, models: models.to_vec(), log_normaliser: log_z, moments, fine })
    }

    /// Posterior mean and covariance (the first two moments, not a Gaussian fit).
    pub fn moments(&self) -> GaussianBelief<3> {
        self.moments
    }

    /// ln p(z₁..z_K), the evidence.
    pub fn log_evidence(&self) -> f64 {
        self.log_normaliser
    }

    /// ln p(s | z₁..z_K), evaluated pointwise from the stored measurements.
    pub fn log_density(&self, s: &Vector3<f64>) -> f64 {
        match cholesky(&self.prior.cov, "prior cov") {
            Ok(chol) => {
                log_density_with(&chol, &self.prior.mean, s) + self.models.iter().map(|m| m.log_likelihood(s)).sum::<f64>()
                    - self.log_normaliser
            }
            Err(_) => f64::NEG_INFINITY,
        }
    }

    /// Mass and conditional means on either side of the plane z = `plane_z_m`: each fine
    /// cell contributes its mass × the fraction of its height above (resp. below) the
    /// plane (the midpoint rule with the cell cut by the plane).
    pub fn split_at_plane(&self, plane_z_m: f64) -> PlaneSplit {
        let g = &self.fine;
        let volume = g.cell.product();
        let (mut above, mut below) = (0.0, 0.0);
        let (mut sum_above, mut sum_below) = (Vector3::zeros(), Vector3::zeros());
        for (k, v) in g.values.iter().enumerate() {
            let w = (v - self.log_normaliser).exp() * volume;
            let c = g.centre(k);
            let frac = ((c.z + 0.5 * g.cell.z - plane_z_m) / g.cell.z).clamp(0.0, 1.0);
            above += w * frac;
            below += w * (1.0 - frac);
            sum_above += c * (w * frac);
            sum_below += c * (w * (1.0 - frac));
        }
        let total = above + below;
        PlaneSplit {
            mass_above: above / total,
            mass_below: below / total,
            mean_above: sum_above / above,
            mean_below: sum_below / below,
        }
    }

    /// The fine grid's cell size (metres per axis): the resolution of the reference.
    pub fn cell_size(&self) -> Vector3<f64> {
        self.fine.cell
    }
}
