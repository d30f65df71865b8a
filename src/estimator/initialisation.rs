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
//! Cost and memory: cells whose log-density falls more than [`ACTIVE_WINDOW_NATS`] below
//! the maximum are dropped for good (their mass is below e⁻⁸⁰ of the mode's), and the
//! grid never holds more than [`MAX_ACTIVE_CELLS`] cells (12 bytes each). It starts at
//! the finest level of cell_m·2^ℓ whose disc fits that budget, and splits every cell in
//! four — each child's log-density evaluated afresh from all stored ranges, so the
//! finer grid is the exact posterior at its own cell centres, not an interpolation —
//! whenever the survivors ×4 fit again, down to the configured `cell_m`. A coarse level
//! is the midpoint rule on coarser cells: its moments are accurate while the posterior's
//! standard deviations are a few cells wide (the Sheppard term cell²/12 is added), and
//! a posterior narrower than that has few cells and is refined at once. A coarse cell is
//! dropped only when an upper bound of its log-density over the whole cell (each
//! range's likelihood at the distance in the cell closest to fitting it) is out of the
//! window, so no mass the finer grid would keep is lost by starting coarse. An update
//! touches at most the budget plus, when refining, four children per survivor per stored
//! range. A coarse cell on the disc's edge is kept while any of it is inside, weighted by
//! the fraction inside.
//!
//! A 3-D landmark whose height is unknown ([`InitialisationGrid::with_height_prior`]):
//! the grid stays over (x, y) and each range's likelihood is marginalised over the
//! height z ~ N(μ_z, σ_z²) of the landmark. With Δz = z − z_x (z_x the sensor's
//! height, per range), Δz ~ N(m, v), m = μ_z − z_x, v = σ_z², the 3-D distance is
//! d₃ = √u, u = d² + Δz², with E\[u\] = ū = d² + m² + v and Var(u) = Var(Δz²) = 4m²v + 2v².
//! To second order in u − ū (the delta method),
//!
//!   E\[d₃\] ≈ √ū − Var(u)/(8ū^{3/2}),   Var(d₃) ≈ Var(u)/(4ū),
//!
//! and the range is taken as a residual z − (s₀·E\[d₃\] + b₀) with variance
//! σ² + σ_s²·ū + σ_b² + s₀²·Var(d₃) (E\[d₃²\] = ū exactly; s, b and Δz independent), in
//! the configured noise shape. For σ_z ≤ 1.5 m the second-order E\[d₃\] is within 7 cm
//! of the exact mean at every d (√ū alone is up to 0.4 m off near the sensor), and
//! Var(d₃) within −5 %/+60 % of the exact variance (over-stated near the sensor, which
//! only widens the grid); once d > 3σ_z + |m| the mean is within 1 % of σ_z and the
//! variance within 10 % (test
//! `height_marginal_moments_match_quadrature`). Each range is marginalised on its own, as
//! if every range saw its own Δz: the product of those marginals is not the joint
//! marginal (z is one number for all ranges, and many ranges would pin it), so the
//! grid's posterior over (x, y) is wider than the exact one and its mean is only
//! approximately the exact horizontal mean. That is all it is for: it finds the
//! horizontal mode without committing to a height; the 3-D estimator then re-solves
//! every stored range ([`InitialisationGrid::measurements`], with the sensor heights)
//! exactly. Without a height prior the grid is the planar one above, bit for bit.

use nalgebra::{Matrix2, Vector2, Vector3};

use super::belief::GaussianBelief;
use super::error::EstimatorError;
use crate::config::ConfigError;
use super::model::{NoiseShape, ScalarNoise};

/// Log-density window (nats below the maximum) of the cells that are kept.
pub const ACTIVE_WINDOW_NATS: f64 = 80.0;

/// Most cells a grid holds at once (96 KiB of [`Cell`]s): the
/// resolution is coarsened until the surviving cells fit (module doc). With the default
/// region (100 m radius, 0.5 m cells: 125 664 cells at full resolution) a grid starts at
/// 4 m cells and reaches 0.5 m once its posterior covers less than ~1/16 of the disc.
pub const MAX_ACTIVE_CELLS: usize = 8192;

/// One grid cell: index, log-density at its centre, upper bound over its square.
type Cell = (u32, f32, f32);

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

/// A Gaussian prior N(μ_z, σ_z²) on the height of a landmark (metres), for a planar
/// grid that marginalises the height (module doc).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeightPrior {
    /// μ_z, metres (in the frame of the sensor heights).
    pub mean_m: f64,
    /// σ_z, metres (0: the height is known).
    pub std_m: f64,
}

/// One range multiplied into an [`InitialisationGrid`], as given: enough to re-solve it
/// in 2-D or 3-D.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GridRange {
    /// Sensor position in the grid's plane, metres.
    pub sensor: Vector2<f64>,
    /// Sensor height, metres (0 for ranges added by [`InitialisationGrid::add_range`]).
    pub sensor_z_m: f64,
    /// Measured range, metres.
    pub range_m: f64,
    /// Noise variance σ², m².
    pub noise_var_m2: f64,
}

impl GridRange {
    /// The sensor position (x, y, z), metres.
    pub fn sensor_position3(&self) -> Vector3<f64> {
        Vector3::new(self.sensor.x, self.sensor.y, self.sensor_z_m)
    }
}

/// Moments of the 3-D distance d₃ = √(d² + Δz²), Δz ~ N(m, v), to second order
/// (module doc): `sq_mean` = E\[Δz²\] = m² + v, `sq_var` = Var(Δz²) = 4m²v + 2v².
#[derive(Clone, Copy, Debug, PartialEq)]
struct HeightMarginal {
    sq_mean: f64,
    sq_var: f64,
}

impl HeightMarginal {
    fn new(height: &HeightPrior, sensor_z_m: f64) -> Self {
        let m = height.mean_m - sensor_z_m;
        let v = height.std_m * height.std_m;
        Self { sq_mean: m * m + v, sq_var: 4.0 * m * m * v + 2.0 * v * v }
    }

    /// ū = E\[d₃²\] = d² + E\[Δz²\] at horizontal distance `d`.
    fn u(&self, d: f64) -> f64 {
        d * d + self.sq_mean
    }

    /// E\[d₃\] ≈ √ū − Var(Δz²)/(8ū^{3/2}), increasing in ū (derivative
    /// 1/(2√ū) + 3Var/(16ū^{5/2}) > 0) and ≥ ¾√ū (Var(Δz²) ≤ 2E\[Δz²\]²).
    fn mean_at_u(&self, u: f64) -> f64 {
        // sq_var > 0 implies v > 0, so u ≥ v > 0.
        let correction = if self.sq_var > 0.0 { self.sq_var / (8.0 * u * u.sqrt()) } else { 0.0 };
        u.sqrt() - correction
    }

    /// Var(d₃) ≈ Var(Δz²)/(4ū).
    fn var_at_u(&self, u: f64) -> f64 {
        if self.sq_var > 0.0 {
            self.sq_var / (4.0 * u)
        } else {
            0.0
        }
    }
}

/// The grid posterior of one landmark being initialised.
#[derive(Clone, Debug)]
pub struct InitialisationGrid {
    /// Centre of cell (0, 0) at the current level, metres.
    origin: Vector2<f64>,
    /// Side of the current level's cells (fine_cell_m·2^level), metres.
    cell_m: f64,
    /// The configured (finest) cell side, metres.
    fine_cell_m: f64,
    /// Cells per axis at the current level.
    cells_per_axis: usize,
    /// The cells still in play: (index, log-density at the centre, an upper bound of
    /// the log-density over the cell (= the centre's at the configured resolution)),
    /// both relative to the largest centre value (so in [−ACTIVE_WINDOW_NATS, 0] for
    /// the centre at full resolution; f32 keeps that range to 1e-5 nats).
    active: Vec<Cell>,
    unit_noise: ScalarNoise,
    calibration: CalibrationPrior,
    centre: Vector2<f64>,
    radius_m: f64,
    /// The landmark height's prior, marginalised per range (module doc); None: planar.
    height: Option<HeightPrior>,
    /// Every range multiplied in.
    measurements: Vec<GridRange>,
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
        // The finest level whose disc (≈ π R² / cell² cells) fits the budget.
        let mut level_cell_m = cell_m;
        while std::f64::consts::PI * (radius_m / level_cell_m).powi(2) > MAX_ACTIVE_CELLS as f64 {
            level_cell_m *= 2.0;
        }
        let cells_per_axis = ((2.0 * radius_m / level_cell_m).ceil() as usize).max(1);
        let origin = centre - Vector2::repeat(0.5 * (cells_per_axis as f64 - 1.0) * level_cell_m);
        let mut grid = Self {
            origin,
            cell_m: level_cell_m,
            fine_cell_m: cell_m,
            cells_per_axis,
            active: Vec::new(),
            unit_noise: ScalarNoise::new(shape, 1.0)?,
            calibration,
            centre,
            radius_m,
            height: None,
            measurements: Vec::new(),
            moments: GaussianBelief { mean: centre, cov: Matrix2::identity() },
        };
        let half_diagonal = grid.bound_half_diagonal_m(grid.cell_m);
        grid.active = (0..cells_per_axis as u32 * cells_per_axis as u32)
            .filter_map(|k| {
                let prior = grid.log_disc_fraction(&grid.centre_of(k), half_diagonal)?;
                Some((k, prior as f32, 0.0))
            })
            .collect();
        grid.update_moments();
        Ok(grid)
    }

    /// This grid for a 3-D landmark of unknown height z ~ N(μ_z, σ_z²): every range is
    /// then marginalised over z (module doc) instead of taken as a horizontal distance.
    /// Ranges carry their sensor's height ([`InitialisationGrid::add_range3`]; 0 for
    /// [`InitialisationGrid::add_range`]).
    ///
    /// # Errors
    /// `Config` naming `initialisation.height_prior.mean_m` (not finite),
    /// `initialisation.height_prior.std_m` (not finite or < 0), or
    /// `initialisation.height_prior` when ranges were already multiplied in (their
    /// planar likelihoods cannot be taken back).
    pub fn with_height_prior(mut self, height: HeightPrior) -> Result<Self, EstimatorError> {
        if !height.mean_m.is_finite() {
            return Err(ConfigError::invalid("initialisation.height_prior.mean_m", height.mean_m, "finite").into());
        }
        if !(height.std_m.is_finite() && height.std_m >= 0.0) {
            return Err(ConfigError::invalid("initialisation.height_prior.std_m", height.std_m, "finite and >= 0").into());
        }
        if !self.measurements.is_empty() {
            return Err(ConfigError::invalid("initialisation.height_prior", self.measurements.len(), "set before the first range (0 ranges)").into());
        }
        self.height = Some(height);
        Ok(self)
    }

    /// The landmark height's prior, if the grid marginalises it.
    pub fn height_prior(&self) -> Option<HeightPrior> {
        self.height
    }

    fn centre_of(&self, k: u32) -> Vector2<f64> {
        let n = self.cells_per_axis as u32;
        self.origin + Vector2::new((k % n) as f64, (k / n) as f64) * self.cell_m
    }

    /// (ln p(z | y) of one range from `sensor` in the plane (module doc) at the centre
    /// y, up to a constant; an upper bound of ln p(z | y') over the square cell
    /// of half-diagonal `half_diagonal_m` around y). The distance d' = ‖y' − x‖ lies in
    /// [d − h, d + h]; the noise density is symmetric and falls with |u|, and the
    /// variance σ² + σ_s²d'² + σ_b² grows with d', so the bound takes the smallest
    /// |residual| over that interval over the largest variance, and the smallest
    /// variance in the normaliser.
    fn planar_log_likelihood_bounds(&self, y: &Vector2<f64>, half_diagonal_m: f64, sensor: &Vector2<f64>, range_m: f64, noise_var_m2: f64) -> (f64, f64) {
        let c = &self.calibration;
        let var_at = |d: f64| noise_var_m2 + (c.scale_std * d).powi(2) + c.offset_std_m.powi(2);
        let residual_at = |d: f64| range_m - (c.scale * d + c.offset_m);
        let log_density = |residual: f64, var: f64, norm_var: f64| {
            self.unit_noise.log_density_derivatives(residual / var.sqrt()).0 - 0.5 * norm_var.ln()
        };
        let d = (y - sensor).norm();
        let var = var_at(d);
        let centre = log_density(residual_at(d), var, var);
        if half_diagonal_m == 0.0 {
            return (centre, centre);
        }
        let (near, far) = ((d - half_diagonal_m).max(0.0), d + half_diagonal_m);
        // The residual is linear in d' (s₀ > 0): zero inside the interval or smallest at an end.
        let (r_near, r_far) = (residual_at(near), residual_at(far));
        let smallest = if r_near.signum() != r_far.signum() { 0.0 } else { r_near.abs().min(r_far.abs()) };
        (centre, log_density(smallest, var_at(far), var_at(near)).max(centre))
    }

    /// (centre, upper bound) of one stored range's log-likelihood for the cell around
    /// `y`: the planar form, or the height-marginal one when the grid has a height prior.
    fn range_bounds(&self, y: &Vector2<f64>, half_diagonal_m: f64, range: &GridRange) -> (f64, f64) {
        match &self.height {
            None => self.planar_log_likelihood_bounds(y, half_diagonal_m, &range.sensor, range.range_m, range.noise_var_m2),
            Some(height) => self.height_log_likelihood_bounds(y, half_diagonal_m, range, height),
        }
    }

    /// The planar bounds of a range from a sensor in the plane (tests of the bound).
    #[cfg(test)]
    fn log_likelihood_bounds(&self, y: &Vector2<f64>, half_diagonal_m: f64, sensor: &Vector2<f64>, range_m: f64, noise_var_m2: f64) -> (f64, f64) {
        self.range_bounds(y, half_diagonal_m, &GridRange { sensor: *sensor, sensor_z_m: 0.0, range_m, noise_var_m2 })
    }

    /// The bounds of [`Self::planar_log_likelihood_bounds`] for the height-marginal
    /// likelihood (module doc): residual z − (s₀·E\[d₃\] + b₀), variance
    /// V(ū) = σ² + σ_b² + σ_s²ū + s₀²Var(Δz²)/(4ū), ū = d² + E\[Δz²\]. Over the cell, ū
    /// lies in [ū(d − h), ū(d + h)]. E\[d₃\] increases with ū, so the residual is
    /// monotone and its smallest |·| is 0 or at an end, as in the plane. V is no longer
    /// monotone but convex in ū (a line plus c/ū, c ≥ 0): its largest value over the
    /// interval is at an end, its smallest at the interior minimum
    /// ū* = s₀√Var(Δz²)/(2σ_s) clamped to the interval. The bound takes the smallest
    /// |residual| over the largest variance, and the smallest variance in the normaliser.
    fn height_log_likelihood_bounds(&self, y: &Vector2<f64>, half_diagonal_m: f64, range: &GridRange, height: &HeightPrior) -> (f64, f64) {
        let c = &self.calibration;
        let marginal = HeightMarginal::new(height, range.sensor_z_m);
        let base_var = range.noise_var_m2 + c.offset_std_m.powi(2);
        let var_at_u = |u: f64| base_var + c.scale_std.powi(2) * u + c.scale * c.scale * marginal.var_at_u(u);
        let residual_at_u = |u: f64| range.range_m - (c.scale * marginal.mean_at_u(u) + c.offset_m);
        let log_density = |residual: f64, var: f64, norm_var: f64| {
            self.unit_noise.log_density_derivatives(residual / var.sqrt()).0 - 0.5 * norm_var.ln()
        };
        let d = (y - range.sensor).norm();
        let u = marginal.u(d);
        let var = var_at_u(u);
        let centre = log_density(residual_at_u(u), var, var);
        if half_diagonal_m == 0.0 {
            return (centre, centre);
        }
        let (near, far) = (marginal.u((d - half_diagonal_m).max(0.0)), marginal.u(d + half_diagonal_m));
        let (r_near, r_far) = (residual_at_u(near), residual_at_u(far));
        let smallest = if r_near.signum() != r_far.signum() { 0.0 } else { r_near.abs().min(r_far.abs()) };
        let largest_var = var_at_u(near).max(var_at_u(far));
        let u_star = if marginal.sq_var == 0.0 {
            near
        } else if c.scale_std == 0.0 {
            far
        } else {
            (c.scale.abs() * marginal.sq_var.sqrt() / (2.0 * c.scale_std)).clamp(near, far)
        };
        let smallest_var = var_at_u(u_star).min(var_at_u(near)).min(var_at_u(far));
        (centre, log_density(smallest, largest_var, smallest_var).max(centre))
    }

    /// ln of the prior mass of the square cell at `y` with half-diagonal `half_diagonal`
    /// ([`Self::bound_half_diagonal_m`]) relative to a cell inside the disc, or None for
    /// a cell out of it. At the configured resolution (half-diagonal 0) a cell is in
    /// when its centre is, as the midpoint rule has it; a coarse cell is kept while any
    /// of it is in the disc, with the fraction inside (8 × 8 sub-points) as its mass, so
    /// a coarse level neither loses the disc's edge nor widens it.
    fn log_disc_fraction(&self, y: &Vector2<f64>, half_diagonal: f64) -> Option<f64> {
        let distance = (y - self.centre).norm();
        if half_diagonal == 0.0 {
            return (distance <= self.radius_m).then_some(0.0);
        }
        let cell_m = half_diagonal * std::f64::consts::SQRT_2;
        if distance > self.radius_m + half_diagonal {
            return None;
        }
        if distance + half_diagonal <= self.radius_m {
            return Some(0.0);
        }
        let r2 = self.radius_m * self.radius_m;
        let inside = (0..64)
            .filter(|i| {
                let offset = Vector2::new((i % 8) as f64 + 0.5, (i / 8) as f64 + 0.5) / 8.0 - Vector2::repeat(0.5);
                (y + offset * cell_m - self.centre).norm_squared() <= r2
            })
            .count();
        // A corner that reaches in between the sub-points: half a sub-point's mass.
        Some((inside.max(1) as f64 / 64.0).ln() - if inside == 0 { std::f64::consts::LN_2 } else { 0.0 })
    }

    /// Half-diagonal of cells of side `cell_m` for the pruning bound and the disc's edge,
    /// metres: 0 at the configured resolution (the centre stands for its cell there, as
    /// it always has), so > 0 means a coarse level.
    fn bound_half_diagonal_m(&self, cell_m: f64) -> f64 {
        if cell_m > self.fine_cell_m * 1.5 {
            cell_m * std::f64::consts::FRAC_1_SQRT_2
        } else {
            0.0
        }
    }

    /// Multiplies in one range `range_m` (metres) from `sensor` (metres) with noise
    /// variance `noise_var_m2` (m²), drops the cells outside the window and refreshes
    /// the moments. On error the grid is unchanged. With a height prior the sensor is
    /// at height 0 ([`InitialisationGrid::add_range3`]).
    ///
    /// # Errors
    /// As [`InitialisationGrid::with_range`].
    pub fn add_range(&mut self, sensor: Vector2<f64>, range_m: f64, noise_var_m2: f64) -> Result<(), EstimatorError> {
        *self = self.with_range(sensor, range_m, noise_var_m2)?;
        Ok(())
    }

    /// [`InitialisationGrid::add_range`] from a sensor at (x, y, z) (metres): its height
    /// enters the height-marginal likelihood (module doc) and is stored with the range;
    /// a grid without a height prior uses (x, y) only, as the planar model has it.
    ///
    /// # Errors
    /// As [`InitialisationGrid::with_range`].
    pub fn add_range3(&mut self, sensor: Vector3<f64>, range_m: f64, noise_var_m2: f64) -> Result<(), EstimatorError> {
        *self = self.with_range3(sensor, range_m, noise_var_m2)?;
        Ok(())
    }

    /// This grid with one more range from a sensor at (x, y, z)
    /// ([`InitialisationGrid::add_range3`], [`InitialisationGrid::with_range`]).
    ///
    /// # Errors
    /// As [`InitialisationGrid::with_range`].
    pub fn with_range3(&self, sensor: Vector3<f64>, range_m: f64, noise_var_m2: f64) -> Result<Self, EstimatorError> {
        if !sensor.iter().all(|v| v.is_finite()) {
            return Err(EstimatorError::InvalidSensorPosition(sensor.as_slice().to_vec()));
        }
        self.with_grid_range(GridRange { sensor: sensor.xy(), sensor_z_m: sensor.z, range_m, noise_var_m2 })
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
        self.with_grid_range(GridRange { sensor, sensor_z_m: 0.0, range_m, noise_var_m2 })
    }

    /// The checks of a range and its update ([`InitialisationGrid::with_range`]); the
    /// sensor position is checked by the callers.
    fn with_grid_range(&self, range: GridRange) -> Result<Self, EstimatorError> {
        let GridRange { range_m, noise_var_m2, .. } = range;
        if !(range_m.is_finite() && range_m >= 0.0) {
            return Err(EstimatorError::InvalidRange(range_m));
        }
        if !(noise_var_m2.is_finite() && noise_var_m2 > 0.0) {
            return Err(EstimatorError::InvalidNoiseVariance(noise_var_m2));
        }
        let h = self.bound_half_diagonal_m(self.cell_m);
        let active = self
            .active
            .iter()
            .map(|&(k, centre, upper)| {
                let (dc, du) = self.range_bounds(&self.centre_of(k), h, &range);
                (k, f64::from(centre) + dc, f64::from(upper) + du)
            })
            .collect();
        let active = window(active)?;
        let mut measurements = Vec::with_capacity(self.measurements.len() + 1);
        measurements.extend_from_slice(&self.measurements);
        measurements.push(range);
        let mut next = Self {
            origin: self.origin,
            cell_m: self.cell_m,
            fine_cell_m: self.fine_cell_m,
            cells_per_axis: self.cells_per_axis,
            active,
            unit_noise: self.unit_noise,
            calibration: self.calibration,
            centre: self.centre,
            radius_m: self.radius_m,
            height: self.height,
            measurements,
            moments: self.moments,
        };
        while next.bound_half_diagonal_m(next.cell_m) > 0.0 && next.active.len() * 4 <= MAX_ACTIVE_CELLS {
            next.refine()?;
        }
        next.update_moments();
        Ok(next)
    }

    /// Splits every surviving cell into its four children inside the disc, each
    /// evaluated afresh: ln p(y | z₁..z_k) = Σₖ ln p(zₖ | y) at the child's centre (the
    /// prior is uniform on the disc), then windowed like a range update.
    fn refine(&mut self) -> Result<(), EstimatorError> {
        let half = 0.5 * self.cell_m;
        let child_half_diagonal = self.bound_half_diagonal_m(half);
        let n = self.cells_per_axis as u32;
        let children_per_axis = 2 * self.cells_per_axis;
        let origin = self.origin - Vector2::repeat(0.5 * half);
        let mut children = Vec::with_capacity(4 * self.active.len());
        for &(k, _, _) in &self.active {
            let (ix, iy) = (k % n, k / n);
            for (a, b) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let (cx, cy) = (2 * ix + a, 2 * iy + b);
                let y = origin + Vector2::new(f64::from(cx), f64::from(cy)) * half;
                let Some(prior) = self.log_disc_fraction(&y, child_half_diagonal) else {
                    continue;
                };
                let (mut centre, mut upper) = (prior, 0.0);
                for range in &self.measurements {
                    let (dc, du) = self.range_bounds(&y, child_half_diagonal, range);
                    centre += dc;
                    upper += du;
                }
                children.push((cy * children_per_axis as u32 + cx, centre, upper));
            }
        }
        self.active = window(children)?;
        self.origin = origin;
        self.cell_m = half;
        self.cells_per_axis = children_per_axis;
        Ok(())
    }

    fn update_moments(&mut self) {
        let (mut total, mut mean, mut second) = (0.0, Vector2::zeros(), Matrix2::zeros());
        for &(k, l, _) in &self.active {
            let w = f64::from(l).exp();
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

    /// Every range multiplied in (sensor position and height, range, noise variance).
    pub fn measurements(&self) -> &[GridRange] {
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

    /// Cell side at the current level, metres (the configured `cell_m` once refined).
    pub fn cell_m(&self) -> f64 {
        self.cell_m
    }
}

/// Keeps the cells whose upper bound is within [`ACTIVE_WINDOW_NATS`] of the largest
/// centre log-density (a lower bound of the maximum), shifted so that centre value is 0
/// (no drift towards −∞ over many ranges).
///
/// # Errors
/// `NonFinite` when no cell has a finite log-density.
fn window(cells: Vec<(u32, f64, f64)>) -> Result<Vec<Cell>, EstimatorError> {
    let max = cells.iter().map(|c| c.1).fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return Err(EstimatorError::NonFinite { quantity: "initialisation grid log-density", value: max.to_string() });
    }
    Ok(cells
        .into_iter()
        .filter(|c| c.2 > max - ACTIVE_WINDOW_NATS)
        .map(|(k, centre, upper)| (k, (centre - max) as f32, (upper - max) as f32))
        .collect())
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
        for &(k, l, _) in &g.active {
            let r = g.centre_of(k).norm();
            let w = f64::from(l).exp();
            w_sum += w;
            m1 += w * r;
            m2 += w * r * r;
        }
        let radial_std = (m2 / w_sum - (m1 / w_sum).powi(2)).sqrt();
        let expect = (0.01f64 + (0.05f64 * 20.0).powi(2)).sqrt();
        assert!((radial_std - expect).abs() < 0.1 * expect, "{radial_std} vs {expect}");
    }

    /// The dense reference grid of the tests: every 0.5 m cell centre of the disc of
    /// radius 100 m around the origin (the grids' region) with `log_likelihood` there.
    fn dense_disc_cells(log_likelihood: impl Fn(&Vector2<f64>) -> f64) -> Vec<(Vector2<f64>, f64)> {
        let n = 400usize;
        let origin = Vector2::repeat(-0.5 * (n as f64 - 1.0) * 0.5);
        (0..n * n)
            .map(|k| origin + Vector2::new((k % n) as f64, (k / n) as f64) * 0.5)
            .filter(|y| y.norm_squared() <= 100.0 * 100.0)
            .map(|y| (y, log_likelihood(&y)))
            .collect()
    }

    /// ln p(z | y) of the module doc for Gaussian noise, written out here.
    fn gaussian_log_likelihood(y: &Vector2<f64>, x: &Vector2<f64>, z: f64, var: f64, cal: &CalibrationPrior) -> f64 {
        let d = (y - x).norm();
        let v = var + (cal.scale_std * d).powi(2) + cal.offset_std_m.powi(2);
        -0.5 * (z - cal.scale * d - cal.offset_m).powi(2) / v - 0.5 * v.ln()
    }

    /// The coarse-to-fine grid against the dense posterior at the configured resolution
    /// (every 0.5 m cell of the 100 m disc evaluated here, no window): narrow noise
    /// (σ = 5 cm, exact calibration: the ring is ~100× thinner than the 4 m starting
    /// cells) and a wide calibration prior. The grid never holds more than the budget,
    /// the dense posterior's mass outside the grid's surviving cells is negligible (no
    /// part of the ring was dropped at a coarse level), and the moments agree.
    #[test]
    fn coarse_to_fine_matches_the_dense_posterior_within_its_budget() {
        let truth = Vector2::new(23.0, -41.0);
        let sensors = [
            Vector2::new(0.0, 0.0),
            Vector2::new(3.0, 1.0),
            Vector2::new(6.0, 4.0),
            Vector2::new(8.0, 9.0),
            Vector2::new(15.0, 2.0),
            Vector2::new(20.0, -5.0),
        ];
        // (calibration, noise variance, whether six nearby viewpoints make it unimodal)
        let cases = [
            (CalibrationPrior::EXACT, 0.05f64 * 0.05, true),
            // an arc ~14 m wide: it stays at 2 m cells (6 000 of them)
            (CalibrationPrior { scale: 1.02, scale_std: 0.1, offset_m: 0.3, offset_std_m: 1.0 }, 0.5 * 0.5, false),
        ];
        for (cal, var, unimodal) in cases {
            let mut g = InitialisationGrid::new(Vector2::zeros(), 100.0, 0.5, NoiseShape::Gaussian, cal).unwrap();
            assert!(g.cell_m() > 0.5 && g.active_cells() <= MAX_ACTIVE_CELLS);
            let ranges: Vec<(Vector2<f64>, f64)> =
                sensors.iter().map(|x| (*x, cal.scale * (truth - x).norm() + cal.offset_m)).collect();
            for (k, (x, z)) in ranges.iter().enumerate() {
                g.add_range(*x, *z, var).unwrap();
                assert!(g.active_cells() <= MAX_ACTIVE_CELLS, "{} cells", g.active_cells());
                // Dense reference over the disc's 0.5 m cells, the first k + 1 ranges.
                let cells = dense_disc_cells(|y| ranges[..=k].iter().map(|(x, z)| gaussian_log_likelihood(y, x, *z, var, &cal)).sum());
                let max = cells.iter().map(|c| c.1).fold(f64::NEG_INFINITY, f64::max);
                let (mut total, mut outside, mut mean, mut second) = (0.0, 0.0, Vector2::zeros(), Matrix2::zeros());
                let half = 0.5 * g.cell_m();
                let covered = |y: &Vector2<f64>| {
                    g.active.iter().any(|&(c, _, _)| {
                        let d = y - g.centre_of(c);
                        d.x.abs() <= half + 1e-9 && d.y.abs() <= half + 1e-9
                    })
                };
                for (y, l) in &cells {
                    let w = (l - max).exp();
                    total += w;
                    mean += y * w;
                    second += y * y.transpose() * w;
                    if w > 1e-30 && !covered(y) {
                        outside += w;
                    }
                }
                assert!(outside / total < 1e-12, "range {k}: mass {} outside the grid's cells", outside / total);
                let mean = mean / total;
                let cov = second / total - mean * mean.transpose() + Matrix2::identity() * (0.25 / 12.0);
                let m = g.moments();
                let std = cov.symmetric_eigenvalues().max().sqrt();
                // A coarse level is the midpoint rule on cells of 2^ℓ × 0.5 m: the mean
                // within 1 % of a cell, the spread within 1 % + the Sheppard terms.
                assert!((m.mean - mean).norm() < 0.01 * g.cell_m(), "range {k}: {} vs {}", m.mean, mean);
                assert!((g.largest_std_m() - std).abs() < 0.01 * std + g.cell_m() / 12f64.sqrt(), "range {k}: {} vs {std}", g.largest_std_m());
            }
            if unimodal {
                assert!((g.cell_m() - 0.5).abs() < 1e-12, "refined to the configured cell: {}", g.cell_m());
                assert!((g.moments().mean - truth).norm() < 0.5, "{}", g.moments().mean);
            }
        }
    }

    /// The pruning bound: for random cells and ranges, no point of the cell has a
    /// larger log-likelihood than the bound (checked on a 21 × 21 lattice of the cell),
    /// for each noise shape.
    #[test]
    fn the_cell_bound_is_an_upper_bound() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let cal = CalibrationPrior { scale: 1.05, scale_std: 0.05, offset_m: 0.5, offset_std_m: 0.3 };
        for shape in [NoiseShape::Gaussian, NoiseShape::Huber { threshold_sigma: 2.0 }, NoiseShape::StudentT { dof: 3.0 }] {
            let g = InitialisationGrid::new(Vector2::zeros(), 10.0, 0.1, shape, cal).unwrap();
            for _ in 0..2000 {
                let y = Vector2::new(rng.random_range(-20.0..20.0), rng.random_range(-20.0..20.0));
                let x = Vector2::new(rng.random_range(-20.0..20.0), rng.random_range(-20.0..20.0));
                let z = rng.random_range(0.0..40.0);
                let var = rng.random_range(0.001..1.0);
                let side = rng.random_range(0.1..8.0);
                let (_, upper) = g.log_likelihood_bounds(&y, side * std::f64::consts::FRAC_1_SQRT_2, &x, z, var);
                for i in 0..21 {
                    for j in 0..21 {
                        let p = y + Vector2::new(i as f64 / 20.0 - 0.5, j as f64 / 20.0 - 0.5) * side;
                        let (at, _) = g.log_likelihood_bounds(&p, 0.0, &x, z, var);
                        assert!(at <= upper + 1e-9, "{at} > {upper}");
                    }
                }
            }
        }
    }

    /// E\[√(d² + Δz²)\] and its variance by the trapezoid rule over ±10σ_z (20 001 points:
    /// error ≪ 1e-6), against the second-order moments of the module doc: the mean
    /// within 7 cm everywhere and within 1 % of σ_z once d > 3σ_z + |m| (where the delta
    /// method's next term is small), and never worse than the first-order √ū; the
    /// variance within −5 %/+60 %, and 10 % once d > 3σ_z + |m|.
    #[test]
    fn height_marginal_moments_match_quadrature() {
        let quadrature = |m: f64, v: f64, d: f64| {
            let (n, half_width) = (20_001, 10.0);
            let step = 2.0 * half_width / (n - 1) as f64;
            let (mut w_sum, mut e1, mut e2) = (0.0, 0.0, 0.0);
            for i in 0..n {
                let t = -half_width + i as f64 * step;
                let w = (-0.5 * t * t).exp() * if i == 0 || i == n - 1 { 0.5 } else { 1.0 };
                let d3 = (d * d + (m + v.sqrt() * t).powi(2)).sqrt();
                w_sum += w;
                e1 += w * d3;
                e2 += w * d3 * d3;
            }
            let mean = e1 / w_sum;
            (mean, e2 / w_sum - mean * mean)
        };
        for (m, std) in [(2.5, 1.0), (2.0, 1.0), (0.5, 1.0), (0.0, 1.0), (2.5, 0.5), (-1.5, 1.5)] {
            let marginal = HeightMarginal::new(&HeightPrior { mean_m: m + 0.3, std_m: std }, 0.3);
            for d in [0.0, 1.0, 3.0, 5.0, 10.0, 20.0] {
                let (mean, var) = quadrature(m, std * std, d);
                let u = marginal.u(d);
                let (got_mean, got_var) = (marginal.mean_at_u(u), marginal.var_at_u(u));
                assert!((got_mean - mean).abs() < 0.07, "m {m} σ {std} d {d}: mean {got_mean} vs {mean}");
                assert!((got_mean - mean).abs() <= (u.sqrt() - mean).abs() + 1e-12, "m {m} σ {std} d {d}: worse than first order");
                assert!((0.95..1.6).contains(&(got_var / var)), "m {m} σ {std} d {d}: var {got_var} vs {var}");
                if d > 3.0 * std + m.abs() {
                    assert!((got_mean - mean).abs() < 0.01 * std, "m {m} σ {std} d {d}: mean {got_mean} vs {mean}");
                    assert!((got_var / var - 1.0).abs() < 0.1, "m {m} σ {std} d {d}: var {got_var} vs {var}");
                }
            }
        }
        // A known height level with the sensor: the planar distance.
        let level = HeightMarginal::new(&HeightPrior { mean_m: 1.0, std_m: 0.0 }, 1.0);
        assert_eq!((level.mean_at_u(level.u(3.0)), level.var_at_u(level.u(3.0))), (3.0, 0.0));
    }

    /// The pruning bound with a height prior (the variance is convex, not monotone, in
    /// d²): for random cells, ranges, sensor heights, height priors (σ_z = 0 included)
    /// and calibrations (σ_s = 0 included), no point of the cell exceeds the bound.
    #[test]
    fn the_cell_bound_with_a_height_prior_is_an_upper_bound() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        let calibrations = [
            CalibrationPrior::EXACT,
            CalibrationPrior { scale: 1.05, scale_std: 0.05, offset_m: 0.5, offset_std_m: 0.3 },
            CalibrationPrior { scale: 0.97, scale_std: 0.3, offset_m: -0.2, offset_std_m: 0.0 },
        ];
        for shape in [NoiseShape::Gaussian, NoiseShape::Huber { threshold_sigma: 2.0 }, NoiseShape::StudentT { dof: 3.0 }] {
            for cal in calibrations {
                for _ in 0..600 {
                    let height = HeightPrior {
                        mean_m: rng.random_range(-5.0..5.0),
                        std_m: if rng.random_bool(0.2) { 0.0 } else { rng.random_range(0.01..3.0) },
                    };
                    let g = InitialisationGrid::new(Vector2::zeros(), 10.0, 0.1, shape, cal).unwrap().with_height_prior(height).unwrap();
                    let y = Vector2::new(rng.random_range(-10.0..10.0), rng.random_range(-10.0..10.0));
                    let range = GridRange {
                        sensor: Vector2::new(rng.random_range(-10.0..10.0), rng.random_range(-10.0..10.0)),
                        sensor_z_m: rng.random_range(-3.0..3.0),
                        range_m: rng.random_range(0.0..25.0),
                        noise_var_m2: rng.random_range(0.001..1.0),
                    };
                    let side = rng.random_range(0.1..8.0);
                    let (_, upper) = g.range_bounds(&y, side * std::f64::consts::FRAC_1_SQRT_2, &range);
                    for i in 0..21 {
                        for j in 0..21 {
                            let p = y + Vector2::new(i as f64 / 20.0 - 0.5, j as f64 / 20.0 - 0.5) * side;
                            let (at, _) = g.range_bounds(&p, 0.0, &range);
                            assert!(at <= upper + 1e-9, "{at} > {upper} ({height:?}, {range:?}, {cal:?})");
                        }
                    }
                }
            }
        }
    }

    /// The height-marginal ln p(z | y) of the module doc for Gaussian noise and exact
    /// calibration, written out here.
    fn height_marginal_log_likelihood(y: &Vector2<f64>, x: &Vector3<f64>, z: f64, var: f64, height: &HeightPrior) -> f64 {
        let (m, v) = (height.mean_m - x.z, height.std_m * height.std_m);
        let u = (y - x.xy()).norm_squared() + m * m + v;
        let sq_var = 4.0 * m * m * v + 2.0 * v * v;
        let mean = u.sqrt() - sq_var / (8.0 * u.powf(1.5));
        let total_var = var + sq_var / (4.0 * u);
        -0.5 * (z - mean).powi(2) / total_var - 0.5 * total_var.ln()
    }

    /// Pruning with a height prior never drops what the full-resolution grid keeps: the
    /// coarse-to-fine grid (100 m disc, starting at 4 m cells) against the dense
    /// posterior on every 0.5 m cell (no window), for a landmark 2.5 m above a planar
    /// path, narrow noise (σ = 5 cm) and a height prior N(2, 0.5²): the dense mass
    /// outside the grid's cells is negligible after every range, the cell of the
    /// dense maximum is among the grid's, and the moments agree (midpoint rule, as in
    /// the planar test).
    #[test]
    fn coarse_to_fine_with_a_height_prior_keeps_the_dense_posterior() {
        let truth = Vector3::new(23.0, -41.0, 2.5);
        let height = HeightPrior { mean_m: 2.0, std_m: 0.5 };
        let sensors = [(0.0, 0.0), (3.0, 1.0), (6.0, 4.0), (8.0, 9.0), (15.0, 2.0), (20.0, -5.0), (25.0, -20.0)];
        let var = 0.05f64 * 0.05;
        let ranges: Vec<(Vector3<f64>, f64)> =
            sensors.iter().map(|&(a, b)| Vector3::new(a, b, 0.0)).map(|x| (x, (truth - x).norm())).collect();
        let mut g = InitialisationGrid::new(Vector2::zeros(), 100.0, 0.5, NoiseShape::Gaussian, CalibrationPrior::EXACT)
            .unwrap()
            .with_height_prior(height)
            .unwrap();
        assert!(g.cell_m() > 0.5);
        for (k, (x, z)) in ranges.iter().enumerate() {
            g.add_range3(*x, *z, var).unwrap();
            assert!(g.active_cells() <= MAX_ACTIVE_CELLS);
            let cells = dense_disc_cells(|y| ranges[..=k].iter().map(|(x, z)| height_marginal_log_likelihood(y, x, *z, var, &height)).sum());
            let (argmax, max) = cells.iter().fold((Vector2::zeros(), f64::NEG_INFINITY), |a, c| if c.1 > a.1 { (c.0, c.1) } else { a });
            let half = 0.5 * g.cell_m();
            let covered = |y: &Vector2<f64>| {
                g.active.iter().any(|&(c, _, _)| {
                    let d = y - g.centre_of(c);
                    d.x.abs() <= half + 1e-9 && d.y.abs() <= half + 1e-9
                })
            };
            assert!(covered(&argmax), "range {k}: the dense mode {argmax} was pruned");
            let (mut total, mut outside, mut mean) = (0.0, 0.0, Vector2::zeros());
            for (y, l) in &cells {
                let w = (l - max).exp();
                total += w;
                mean += y * w;
                if w > 1e-30 && !covered(y) {
                    outside += w;
                }
            }
            assert!(outside / total < 1e-12, "range {k}: mass {} outside the grid's cells", outside / total);
            let mean = mean / total;
            assert!((g.moments().mean - mean).norm() < 0.01 * g.cell_m() + 1e-3, "range {k}: {} vs {}", g.moments().mean, mean);
        }
        assert!((g.cell_m() - 0.5).abs() < 1e-12, "refined to the configured cell: {}", g.cell_m());
    }

    /// Without a height prior a sensor height changes nothing (bit for bit), and it is
    /// stored; a height prior is refused once ranges are in, or with bad values.
    #[test]
    fn sensor_height_is_stored_and_ignored_by_the_planar_grid() {
        let mut planar = gaussian_grid(30.0, 0.1);
        let mut with_z = gaussian_grid(30.0, 0.1);
        for (x, z) in [(Vector2::new(0.0, 0.0), 5.0), (Vector2::new(6.0, 1.0), 4.2), (Vector2::new(2.0, 7.0), 3.1)] {
            planar.add_range(x, z, 0.04).unwrap();
            with_z.add_range3(Vector3::new(x.x, x.y, 7.0), z, 0.04).unwrap();
        }
        assert_eq!(planar.moments(), with_z.moments());
        assert_eq!(planar.active, with_z.active);
        assert!(with_z.measurements().iter().all(|r| r.sensor_z_m == 7.0));
        assert!(planar.measurements().iter().all(|r| r.sensor_z_m == 0.0));
        assert_eq!(with_z.measurements()[1].sensor_position3(), Vector3::new(6.0, 1.0, 7.0));
        let prior = HeightPrior { mean_m: 2.0, std_m: 1.0 };
        assert!(with_z.clone().with_height_prior(prior).is_err());
        assert!(gaussian_grid(30.0, 0.1).with_height_prior(HeightPrior { mean_m: f64::NAN, std_m: 1.0 }).is_err());
        assert!(gaussian_grid(30.0, 0.1).with_height_prior(HeightPrior { mean_m: 0.0, std_m: -1.0 }).is_err());
        let g = gaussian_grid(30.0, 0.1).with_height_prior(prior).unwrap();
        assert_eq!(g.height_prior(), Some(prior));
        assert!(g.clone().add_range3(Vector3::new(f64::NAN, 0.0, 0.0), 1.0, 1.0).is_err());
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
