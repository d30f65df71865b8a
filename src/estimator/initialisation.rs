//! Starting a landmark that has no useful prior: the exact planar posterior on a grid,
//!
//!   p(y | z₁..z_k) ∝ 1[‖y − c‖ ≤ R] Πₖ p(z_k | y),
//!
//! a uniform prior over the disc of radius R (metres) around c (the sensor position of
//! the first range: "the landmark is somewhere within R of where it was first heard"),
//! times the range likelihoods. A ring, two mirror modes, an arc: the grid represents
//! whatever the ranges allow, so no Gaussian is committed to before the posterior is
//! unimodal.
//!
//! With an unknown range calibration z = s·d + b + w (s ~ N(s₀, σ_s²), b ~ N(b₀, σ_b²)
//! a priori, d = ‖y − x‖) each range's likelihood is the calibration-marginal to first
//! order: residual z − (s₀·d + b₀) with variance σ² + σ_s²·d² + σ_b², in the configured
//! noise shape (the shape's scale property p_v(r) = p₁(r/√v)/√v).
//!
//! Cost: cells whose log-density falls more than [`ACTIVE_WINDOW_NATS`] below the
//! maximum are dropped for good (their mass is below e⁻⁸⁰ of the mode's), so after the
//! first few ranges an update touches only the cells near the surviving modes.

use nalgebra::{Matrix2, Vector2};

use super::belief::GaussianBelief;
use super::error::EstimatorError;
use crate::config::ConfigError;
use super::model::{NoiseShape, ScalarNoise};

/// Log-density window (nats below the maximum) of the cells that are kept.
pub const ACTIVE_WINDOW_NATS: f64 = 80.0;

/// A Gaussian prior over the range calibration z = s·d + b + w.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CalibrationPrior {
    /// s₀, dimensionless.
    pub scale: f64,
    /// σ_s, dimensionless.
    pub scale_std: f64,
    /// b₀, metres.
    pub offset_m: f64,
    /// σ_b, metres.
    pub offset_std_m: f64,
}

impl CalibrationPrior {
    /// The exact calibration: s = 1, b = 0, no uncertainty.
    pub const EXACT: Self = Self { scale: 1.0, scale_std: 0.0, offset_m: 0.0, offset_std_m: 0.0 };
}

/// The grid posterior of one landmark being initialised.
#[derive(Clone, Debug)]
pub struct InitialisationGrid {
    /// Centre of cell (0, 0), metres.
    origin: Vector2<f64>,
    cell_m: f64,
    cells_per_axis: usize,
    /// (cell index, unnormalised log-density) of the cells still in play.
    active: Vec<(u32, f64)>,
    unit_noise: ScalarNoise,
    calibration: CalibrationPrior,
    centre: Vector2<f64>,
    radius_m: f64,
    /// (sensor position, range, noise variance) of every range multiplied in.
    measurements: Vec<(Vector2<f64>, f64, f64)>,
    moments: GaussianBelief<2>,
}

impl InitialisationGrid {
    /// A uniform prior over the disc of radius `radius_m` around `centre` on square cells
    /// of `cell_m` metres, for ranges with noise `shape` and calibration prior
    /// `calibration` (use [`CalibrationPrior::EXACT`] for calibrated ranges).
    ///
    /// # Errors
    /// `Config` for a non-finite centre, radius or cell, or more than 4096 cells
    /// per axis; shape errors from [`ScalarNoise::new`].
    pub fn new(
        centre: Vector2<f64>,
        radius_m: f64,
        cell_m: f64,
        shape: NoiseShape,
        calibration: CalibrationPrior,
    ) -> Result<Self, EstimatorError> {
        let bad = |parameter: &str, value: f64, allowed: &str| EstimatorError::from(ConfigError::invalid(parameter, value, allowed));
        if !centre.iter().all(|v| v.is_finite()) {
            return Err(EstimatorError::InvalidSensorPosition(centre.as_slice().to_vec()));
        }
        if !(radius_m.is_finite() && radius_m > 0.0) {
            return Err(bad("initialisation.region_radius_m", radius_m, "finite and > 0"));
        }
        if !(cell_m.is_finite() && cell_m > 0.0) || (2.0 * radius_m / cell_m).ceil() > 4096.0 {
            return Err(bad("initialisation.cell_m", cell_m, "> 0 and at most 4096 cells across the region"));
        }
        let cells_per_axis = (2.0 * radius_m / cell_m).ceil() as usize;
        let origin = centre - Vector2::repeat(0.5 * (cells_per_axis as f64 - 1.0) * cell_m);
        let mut grid = Self {
            origin,
            cell_m,
            cells_per_axis,
            active: Vec::new(),
            unit_noise: ScalarNoise::new(shape, 1.0)?,
            calibration,
            centre,
            radius_m,
            measurements: Vec::new(),
            moments: GaussianBelief { mean: centre, cov: Matrix2::identity() },
        };
        let r2 = radius_m * radius_m;
        grid.active = (0..cells_per_axis * cells_per_axis)
            .filter(|&k| (grid.centre_of(k as u32) - centre).norm_squared() <= r2)
            .map(|k| (k as u32, 0.0))
            .collect();
        grid.update_moments();
        Ok(grid)
    }

    fn centre_of(&self, k: u32) -> Vector2<f64> {
        let n = self.cells_per_axis as u32;
        self.origin + Vector2::new((k % n) as f64, (k / n) as f64) * self.cell_m
    }

    /// ln p(z | y) of one range from `sensor` (module doc), up to a constant.
    fn log_likelihood(&self, y: &Vector2<f64>, sensor: &Vector2<f64>, range_m: f64, noise_var_m2: f64) -> f64 {
        let c = &self.calibration;
        let d = (y - sensor).norm();
        let var = noise_var_m2 + (c.scale_std * d).powi(2) + c.offset_std_m.powi(2);
        let residual = range_m - (c.scale * d + c.offset_m);
        self.unit_noise.log_density_derivatives(residual / var.sqrt()).0 - 0.5 * var.ln()
    }

    /// Multiplies in one range `range_m` (metres) from `sensor` (metres) with noise
    /// variance `noise_var_m2` (m²), drops the cells outside the window and refreshes
    /// the moments. On error the grid is unchanged.
    ///
    /// # Errors
    /// As [`InitialisationGrid::with_range`].
    pub fn add_range(&mut self, sensor: Vector2<f64>, range_m: f64, noise_var_m2: f64) -> Result<(), EstimatorError> {
        *self = self.with_range(sensor, range_m, noise_var_m2)?;
        Ok(())
    }

    /// This grid with one more range ([`InitialisationGrid::add_range`]), built from a
    /// reference: the likelihood-weighted surviving cells go into a new buffer, so the
    /// caller keeps this grid untouched and need not copy it.
    ///
    /// # Errors
    /// `InvalidSensorPosition`, `InvalidRange`, `InvalidNoiseVariance` for bad inputs;
    /// `NonFinite` when no cell has a finite log-density.
    pub fn with_range(&self, sensor: Vector2<f64>, range_m: f64, noise_var_m2: f64) -> Result<Self, EstimatorError> {
        if !sensor.iter().all(|v| v.is_finite()) {
            return Err(EstimatorError::InvalidSensorPosition(sensor.as_slice().to_vec()));
        }
        if !(range_m.is_finite() && range_m >= 0.0) {
            return Err(EstimatorError::InvalidRange(range_m));
        }
        if !(noise_var_m2.is_finite() && noise_var_m2 > 0.0) {
            return Err(EstimatorError::InvalidNoiseVariance(noise_var_m2));
        }
        let mut active: Vec<(u32, f64)> = self
            .active
            .iter()
            .map(|&(k, l)| (k, l + self.log_likelihood(&self.centre_of(k), &sensor, range_m, noise_var_m2)))
            .collect();
        let max = active.iter().map(|c| c.1).fold(f64::NEG_INFINITY, f64::max);
        if !max.is_finite() {
            return Err(EstimatorError::NonFinite { quantity: "initialisation grid log-density", value: max.to_string() });
        }
        // Renormalise so the maximum is 0 (no drift towards −∞ over many ranges).
        active.retain(|c| c.1 > max - ACTIVE_WINDOW_NATS);
        for c in &mut active {
            c.1 -= max;
        }
        let mut measurements = Vec::with_capacity(self.measurements.len() + 1);
        measurements.extend_from_slice(&self.measurements);
        measurements.push((sensor, range_m, noise_var_m2));
        let mut next = Self {
            origin: self.origin,
            cell_m: self.cell_m,
            cells_per_axis: self.cells_per_axis,
            active,
            unit_noise: self.unit_noise,
            calibration: self.calibration,
            centre: self.centre,
            radius_m: self.radius_m,
            measurements,
            moments: self.moments,
        };
        next.update_moments();
        Ok(next)
    }

    fn update_moments(&mut self) {
        let (mut total, mut mean, mut second) = (0.0, Vector2::zeros(), Matrix2::zeros());
        for &(k, l) in &self.active {
            let w = l.exp();
            let c = self.centre_of(k) - self.origin;
            total += w;
            mean += c * w;
            second += c * c.transpose() * w;
        }
        let mean = mean / total;
        // Each cell is a uniform square: its own variance cell²/12 per axis.
        let cov = second / total - mean * mean.transpose() + Matrix2::identity() * (self.cell_m * self.cell_m / 12.0);
        self.moments = GaussianBelief { mean: mean + self.origin, cov: (cov + cov.transpose()) * 0.5 };
    }

    /// Mean and covariance of the grid posterior (metres, m²).
    pub fn moments(&self) -> GaussianBelief<2> {
        self.moments
    }

    /// Largest standard deviation of the grid posterior, √λ_max(Σ), metres. A
    /// posterior with two modes a distance D apart has this ≥ D/2 (the mass is split
    /// between them), so a small value means one mode.
    pub fn largest_std_m(&self) -> f64 {
        let c = &self.moments.cov;
        let half_trace = 0.5 * (c[(0, 0)] + c[(1, 1)]);
        let det = c[(0, 0)] * c[(1, 1)] - c[(0, 1)] * c[(1, 0)];
        (half_trace + (half_trace * half_trace - det).max(0.0).sqrt()).sqrt()
    }

    /// Ranges multiplied in.
    pub fn ranges(&self) -> u32 {
        self.measurements.len() as u32
    }

    /// (sensor position (m), range (m), noise variance (m²)) of every range multiplied in.
    pub fn measurements(&self) -> &[(Vector2<f64>, f64, f64)] {
        &self.measurements
    }

    /// The moment-matched Gaussian of the uniform disc prior: N(c, R²/4 · I).
    pub fn prior_moments(&self) -> GaussianBelief<2> {
        GaussianBelief { mean: self.centre, cov: Matrix2::identity() * (self.radius_m * self.radius_m / 4.0) }
    }

    /// Cells still in play.
    pub fn active_cells(&self) -> usize {
        self.active.len()
    }

    /// Cell side, metres.
    pub fn cell_m(&self) -> f64 {
        self.cell_m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaussian_grid(radius: f64, cell: f64) -> InitialisationGrid {
        InitialisationGrid::new(Vector2::zeros(), radius, cell, NoiseShape::Gaussian, CalibrationPrior::EXACT).unwrap()
    }

    /// Before any range: the uniform disc, mean c, covariance R²/4·I.
    #[test]
    fn prior_is_the_uniform_disc() {
        let g = gaussian_grid(10.0, 0.05);
        let m = g.moments();
        assert!(m.mean.norm() < 1e-9);
        assert!((m.cov[(0, 0)] - 25.0).abs() < 0.05 && (m.cov[(1, 1)] - 25.0).abs() < 0.05, "{}", m.cov);
        assert!(m.cov[(0, 1)].abs() < 1e-9);
    }

    /// Ranges from one side only leave a ring-like, wide posterior; ranges from three
    /// sides make it unimodal around the truth. With many exact-model ranges the
    /// posterior of z = d + w is close to the linearised (Fisher) covariance
    /// (Σₖ uₖuₖᵀ/σ²)⁻¹, computed here independently of the grid.
    #[test]
    fn three_viewpoints_make_it_unimodal_with_the_fisher_covariance() {
        let truth = Vector2::new(3.0, -4.0);
        let mut g = gaussian_grid(30.0, 0.02);
        let var = 0.01;
        g.add_range(Vector2::zeros(), (truth - Vector2::zeros()).norm(), var).unwrap();
        assert!(g.largest_std_m() > 2.0, "a ring: {}", g.largest_std_m());
        let sensors = [Vector2::new(10.0, 0.0), Vector2::new(0.0, 10.0), Vector2::new(-8.0, -8.0)];
        let mut fisher = Matrix2::zeros();
        let u0 = truth.normalize();
        fisher += u0 * u0.transpose() / var;
        for x in sensors {
            let d = truth - x;
            g.add_range(x, d.norm(), var).unwrap();
            let u = d / d.norm();
            fisher += u * u.transpose() / var;
        }
        let m = g.moments();
        assert!((m.mean - truth).norm() < 0.01, "{}", m.mean);
        let expect = fisher.try_inverse().unwrap();
        for (a, b) in m.cov.iter().zip(expect.iter()) {
            assert!((a - b).abs() < 0.25 * expect.diagonal().max(), "{} vs {}", m.cov, expect);
        }
        assert!(g.largest_std_m() < 0.2);
        assert!(g.active_cells() < 20_000, "{}", g.active_cells());
    }

    /// The calibration-marginal variance: with σ_s > 0 a far range says less than a near
    /// one; the ring's radial spread matches √(σ² + σ_s²d²).
    #[test]
    fn unknown_scale_widens_far_rings() {
        let cal = CalibrationPrior { scale: 1.0, scale_std: 0.05, offset_m: 0.0, offset_std_m: 0.0 };
        let mut g = InitialisationGrid::new(Vector2::zeros(), 40.0, 0.05, NoiseShape::Gaussian, cal).unwrap();
        g.add_range(Vector2::zeros(), 20.0, 0.01).unwrap();
        // Radial variance of the ring = E[(‖y‖ − E‖y‖)²] over the grid.
        let mut w_sum = 0.0;
        let mut m1 = 0.0;
        let mut m2 = 0.0;
        for &(k, l) in &g.active {
            let r = g.centre_of(k).norm();
            let w = l.exp();
            w_sum += w;
            m1 += w * r;
            m2 += w * r * r;
        }
        let radial_std = (m2 / w_sum - (m1 / w_sum).powi(2)).sqrt();
        let expect = (0.01f64 + (0.05f64 * 20.0).powi(2)).sqrt();
        assert!((radial_std - expect).abs() < 0.1 * expect, "{radial_std} vs {expect}");
    }

    #[test]
    fn bad_inputs_leave_the_grid_unchanged() {
        let mut g = gaussian_grid(10.0, 0.5);
        let before = g.moments();
        assert!(g.add_range(Vector2::new(f64::NAN, 0.0), 1.0, 1.0).is_err());
        assert!(g.add_range(Vector2::zeros(), -1.0, 1.0).is_err());
        assert!(g.add_range(Vector2::zeros(), 1.0, 0.0).is_err());
        assert_eq!(g.moments(), before);
        assert_eq!(g.ranges(), 0);
        assert!(InitialisationGrid::new(Vector2::zeros(), 100.0, 0.01, NoiseShape::Gaussian, CalibrationPrior::EXACT).is_err());
    }
}
