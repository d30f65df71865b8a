//! Batch range-only SLAM over the whole odometry history (issue 17): the re-solve of
//! the early trajectory that a filter cannot do. The localizer re-solves every
//! `smoother.period_s` with `odometry: drifting` ([`Smoother`]); `examples/batch_slam.rs`
//! runs one solve per noise level on a bag.
//!
//! # Why
//! The joint filter (`slam.rs`) commits to the heading error at the time a landmark
//! is first mapped. With a gyro bias that error grows linearly in time, and the bias
//! is only learnt later, from the map's consistency; a filter cannot move landmarks
//! it mapped earlier by what it learns later (beyond first-order correlations), so the
//! whole map stays rotated about the start. A batch solution over all ranges and the
//! whole odometry history can.
//!
//! # Model
//! Odometry samples P_k = (p_k, φ_k) at t_k (odometry frame), increments
//! Δp_k = p_{k+1} − p_k. The odometry's heading error is a function θ(t), linear
//! between knots τ_j = t₀ + j·Δ (θ₀ = 0), and the translation error u(t) likewise
//! (u₀ = 0): the map frame is the odometry frame at t₀. The true (map) position of
//! the base at sample k is
//!
//! ```text
//! X_k = p₀ + Σ_{i<k} R(θ(t_i))·Δp_i + u(t_k)
//! ```
//!
//! (each odometry increment turned by the heading error at its start), the sensor
//! at X + R(φ + θ)·m for the mount m, and a range to landmark y is
//! z = s·‖y − sensor‖ + b + w, w ~ N(0, σ²) with Huber tails (s, b the radio's
//! calibration when estimated; else 1 and 0). The priors are the odometry error
//! model (`drift.rs`) summed over each knot interval j (Δs_j metres driven, Δφ_j
//! radians turned), with a gyro bias b_j per knot (a random walk):
//!
//! ```text
//! θ_{j+1} − θ_j + ½(b_j + b_{j+1})·Δ ~ N(0, σ_r²·Δφ_j + σ_rm²·Δs_j)
//! u_{j+1} − u_j                     ~ N(0, σ_t²·Δs_j·I₂)      (isotropic: see below)
//! b_{j+1} − b_j                     ~ N(0, q_b²·Δ),   b₀ ~ N(0, σ_b²)
//! ```
//!
//! The translation noise is taken isotropic (the filter's is along the motion):
//! lateral slip and a heading error inside a knot interval both move the robot
//! sideways. A step whose odometry message carried a growing pose covariance (the
//! driver's own error model, [`OdometrySample::pose_cov_growth`]) contributes that
//! growth G instead of the model's terms, as the filter does: G_φφ to the heading
//! increment's variance and λ_max(G_xy) to each axis of the translation's (the
//! smallest isotropic covariance that covers G_xy, as the model's along-motion
//! σ_t²·Δs is taken on both axes). Landmarks have a flat prior (their ranges are all
//! in the problem).
//!
//! The knots are τ_j = t₀ + j·Δ except the last, at the newest odometry sample
//! ([`Knots`]); Δ is `knot_period_s`, halved for noisy odometry ([`knot_period_s`]).
//! What the piecewise-linear functions leave out is noise: the heading's deviation
//! from its interpolation, a Brownian bridge d of variance
//! a(1 − a)·V_j (V_j the interval's heading-increment variance), turns the
//! interval's L_j metres of path by L_j·∫₀¹ d, of variance V_j·L_j²/12, which every
//! later position keeps (added to the interval's translation variance); inside an
//! interval, the translation walk's deviation a(1 − a)·σ_t²(j) and the heading
//! bridge's L_j·(∫₀ᵃ d − a∫₀¹ d), variance a²(1 − a)²·V_j·L_j²/12, are added to the
//! range noise of a range at fraction a.
//!
//! # Solution
//! Levenberg–Marquardt on the whitened residuals with iteratively re-weighted Huber
//! weights; the dense normal matrix H = JᵀWJ (n = 4(K − 1) + 1 + 2L [+ 2] unknowns;
//! each range touches every heading knot before it, through the prefix sums
//! ∂X_k/∂θ_j = Σ_{i<k} w_j(t_i)·J·R(θ(t_i))·Δp_i). The covariance is H⁻¹ at the
//! optimum (Laplace), and the log evidence −½‖r‖² − ½ log|H| + ½ log|Λ_prior| (up to
//! a constant that does not depend on the odometry noise) lets a caller weigh the
//! odometry noise levels by marginal likelihood. The knot period doubles whenever the
//! number of knots would exceed `max_knots`: memory O(n²), work per iteration
//! O(R·K² + n³) for R ranges.

use super::drift::OdometryErrorConfig;
use crate::estimator::GaussianBelief;
use nalgebra::{Cholesky, DMatrix, DVector, Isometry2, Matrix3, Rotation2, Vector2, Vector3};
use std::collections::BTreeMap;

/// J = [[0, −1], [1, 0]]: dR(θ)/dθ = J·R(θ).
fn perp(v: &Vector2<f64>) -> Vector2<f64> {
    Vector2::new(-v.y, v.x)
}

/// One odometry sample: stamp (s), position (m) and heading (rad) in the odometry frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OdometrySample {
    pub stamp_s: f64,
    pub position: Vector2<f64>,
    pub heading_rad: f64,
    /// The growth of the driver's own pose covariance (x, y, yaw; m², rad²) over the
    /// step that ends at this sample, when `nav_msgs/Odometry.pose.covariance` is
    /// filled and grows (the same growth the filter propagates with); `None` = the
    /// odometry error model's noise for the step.
    pub pose_cov_growth: Option<Matrix3<f64>>,
}

/// One range: stamp (s), landmark index, the base's odometry pose at the stamp
/// (interpolated by the caller: position m, heading rad), the sensor mount in the base
/// frame (m) and the measured range (m).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeSample {
    pub stamp_s: f64,
    pub landmark: usize,
    pub odom_position: Vector2<f64>,
    pub odom_heading_rad: f64,
    pub mount_m: Vector2<f64>,
    pub range_m: f64,
}

/// Settings of [`solve`].
#[derive(Debug, Clone, PartialEq)]
pub struct SolveConfig {
    /// Δ, the longest knot period, s (halved for noisy odometry, doubled to keep
    /// ≤ `max_knots`: [`knot_period_s`]).
    pub knot_period_s: f64,
    /// Most knots (≥ 2).
    pub max_knots: usize,
    /// σ, range noise standard deviation, m.
    pub range_std_m: f64,
    /// Huber threshold of the ranges in units of σ.
    pub huber_threshold_sigma: f64,
    /// The odometry error model (its noise scales are not used: scale it first).
    pub odometry_error: OdometryErrorConfig,
    /// Prior of the radio calibration (s, b) when it is estimated; `None` = s = 1, b = 0.
    pub calibration_prior: Option<GaussianBelief<2>>,
    /// Most Levenberg–Marquardt iterations.
    pub max_iterations: usize,
    /// Multipliers of the standard deviations of a driver's covariance growth
    /// ([`OdometrySample::pose_cov_growth`]): (heading, translation), 1 = as published.
    /// The noise pairs scale it as they scale the model.
    pub growth_std_scales: (f64, f64),
}

/// Errors of [`solve`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SmootherError {
    #[error("the batch problem needs at least two odometry samples in time order and one range, got {0}")]
    TooLittleData(String),
    #[error("{0} must be finite")]
    NonFinite(&'static str),
    #[error("the normal matrix is not positive definite (a landmark with too few ranges?)")]
    Singular,
}

/// The batch solution.
#[derive(Debug, Clone)]
pub struct SmootherSolution {
    /// Each landmark's marginal (map frame), in the order of the initial guesses.
    pub landmarks: Vec<GaussianBelief<2>>,
    /// The odom→map correction at the last odometry sample, (e_x, e_y, e_yaw), with
    /// its covariance: X = E ⊕ P.
    pub correction: (Vector3<f64>, Matrix3<f64>),
    /// The gyro bias at the last knot, rad/s, and its variance.
    pub gyro_bias: (f64, f64),
    /// The calibration (s, b) when estimated.
    pub calibration: Option<GaussianBelief<2>>,
    /// The joint filter's state (`slam.rs` order): (e_x, e_y, e_yaw at the last
    /// odometry sample, the gyro bias there[, s, b], y₁, …, y_L), mean and covariance.
    pub state: (DVector<f64>, DMatrix<f64>),
    /// Where the next solve can start from.
    pub warm: WarmStart,
    /// Laplace log evidence (see the module doc).
    pub log_evidence: f64,
    /// Fraction of ranges down-weighted by the Huber tails.
    pub outlier_fraction: f64,
    /// Iterations taken.
    pub iterations: usize,
}

/// Index layout of the unknowns.
struct Layout {
    knots: usize,
    theta: usize,
    u: usize,
    bias: usize,
    landmarks: usize,
    calibration: Option<usize>,
    n: usize,
}

impl Layout {
    fn new(knots: usize, landmarks: usize, calibrated: bool) -> Self {
        let theta = 0;
        let u = theta + knots - 1;
        let bias = u + 2 * (knots - 1);
        let lm = bias + knots;
        let cal = lm + 2 * landmarks;
        Self {
            knots,
            theta,
            u,
            bias,
            landmarks: lm,
            calibration: calibrated.then_some(cal),
            n: cal + if calibrated { 2 } else { 0 },
        }
    }
    /// Index of θ_j (None for the fixed θ₀).
    fn theta(&self, j: usize) -> Option<usize> {
        (j > 0).then(|| self.theta + j - 1)
    }
    fn u(&self, j: usize) -> Option<usize> {
        (j > 0).then(|| self.u + 2 * (j - 1))
    }
}

/// The knot times: τ_j = t₀ + j·Δ for j < K − 1, and the last, τ_{K−1} = t_end, at the
/// newest odometry sample. The newest pose is then a knot value carrying its whole
/// interval's noise; a knot Δ-spaced past it would interpolate it at a fraction a < 1
/// and give it a²× the variance the odometry accumulated since τ_{K−2}.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Knots {
    t0_s: f64,
    period_s: f64,
    count: usize,
    t_end_s: f64,
}

impl Knots {
    fn time_s(&self, j: usize) -> f64 {
        if j + 1 >= self.count {
            self.t_end_s
        } else {
            self.t0_s + j as f64 * self.period_s
        }
    }

    /// Length of interval j, [τ_j, τ_{j+1}], s (> 0).
    fn interval_s(&self, j: usize) -> f64 {
        (self.time_s(j + 1) - self.time_s(j)).max(1e-9)
    }

    /// Interval index and fraction of a time: t = τ_j + a·(τ_{j+1} − τ_j), a ∈ [0, 1].
    fn locate(&self, t: f64) -> (usize, f64) {
        let f = ((t - self.t0_s) / self.period_s).max(0.0);
        let j = (f.floor() as usize).min(self.count - 2);
        (j, ((t - self.time_s(j)) / self.interval_s(j)).clamp(0.0, 1.0))
    }
}

/// A sparse row of the whitened Jacobian and its residual.
struct Row {
    index: Vec<usize>,
    value: Vec<f64>,
    residual: f64,
}

impl Row {
    fn new(residual: f64) -> Self {
        Self { index: Vec::new(), value: Vec::new(), residual }
    }
    fn push(&mut self, i: Option<usize>, v: f64) {
        if let Some(i) = i {
            self.index.push(i);
            self.value.push(v);
        }
    }
    fn accumulate(&self, weight: f64, h: &mut DMatrix<f64>, g: &mut DVector<f64>) {
        for (a, &i) in self.index.iter().enumerate() {
            let va = self.value[a] * weight;
            g[i] += va * self.residual;
            for (b, &k) in self.index.iter().enumerate() {
                h[(i, k)] += va * self.value[b];
            }
        }
    }
}

struct Problem<'a> {
    odometry: &'a [OdometrySample],
    ranges: Vec<RangeSample>,
    landmarks: &'a [LandmarkStart],
    config: &'a SolveConfig,
    layout: Layout,
    knots: Knots,
    /// Per knot interval: heading-increment variance, translation variance.
    heading_var: Vec<f64>,
    translation_var: Vec<f64>,
    /// Per range (in `ranges`' order): its standard deviation, m, with what the
    /// piecewise-linear path leaves out at its stamp (module doc).
    range_std_m: Vec<f64>,
}

impl Problem<'_> {
    fn theta_at(&self, x: &DVector<f64>, t: f64) -> (usize, f64, f64) {
        let (j, a) = self.knots.locate(t);
        let th = |j: usize| self.layout.theta(j).map_or(0.0, |i| x[i]);
        (j, a, (1.0 - a) * th(j) + a * th(j + 1))
    }

    fn u_at(&self, x: &DVector<f64>, t: f64) -> Vector2<f64> {
        let (j, a) = self.knots.locate(t);
        let u = |j: usize| self.layout.u(j).map_or(Vector2::zeros(), |i| Vector2::new(x[i], x[i + 1]));
        u(j) * (1.0 - a) + u(j + 1) * a
    }

    /// The whitened rows at `x` (ranges first, in time order, then the priors) and
    /// the corrected base position and heading correction at the last sample with
    /// ∂X/∂θ there.
    fn rows(&self, x: &DVector<f64>) -> Vec<Row> {
        let l = &self.layout;
        let cfg = self.config;
        let (s, b) = match l.calibration {
            Some(c) => (x[c], x[c + 1]),
            None => (1.0, 0.0),
        };
        let mut rows = Vec::with_capacity(self.ranges.len() + 4 * l.knots);
        // Running prefix sums: X_k without u, and ∂X_k/∂θ_j for every knot.
        let mut position = self.odometry[0].position;
        let mut dpos = vec![Vector2::zeros(); l.knots];
        let mut next_range = 0;
        for k in 0..self.odometry.len() - 1 {
            let (o, o1) = (&self.odometry[k], &self.odometry[k + 1]);
            let (j, a, th) = self.theta_at(x, o.stamp_s);
            let inc = Rotation2::new(th) * (o1.position - o.position);
            // Ranges in [t_k, t_{k+1}) (the last interval also takes t_{k+1}).
            while next_range < self.ranges.len()
                && (self.ranges[next_range].stamp_s < o1.stamp_s
                    || (k + 2 == self.odometry.len() && self.ranges[next_range].stamp_s <= o1.stamp_s))
            {
                let r = &self.ranges[next_range];
                next_range += 1;
                // The part of the step up to the range, turned like the step.
                let partial = Rotation2::new(th) * (r.odom_position - o.position);
                let (jr, ar, thr) = self.theta_at(x, r.stamp_s);
                let mount = Rotation2::new(r.odom_heading_rad + thr) * r.mount_m;
                let sensor = position + partial + self.u_at(x, r.stamp_s) + mount;
                let yi = l.landmarks + 2 * r.landmark;
                let y = Vector2::new(x[yi], x[yi + 1]);
                let d = y - sensor;
                let dist = d.norm().max(1e-9);
                let e = d / dist;
                let sigma = self.range_std_m[next_range - 1];
                let mut row = Row::new((s * dist + b - r.range_m) / sigma);
                let c = s / sigma;
                // θ: the prefix sums (with this interval's part), and the mount.
                let perp_inc = perp(&partial);
                for (jj, dp) in dpos.iter().enumerate() {
                    let mut g = *dp;
                    if jj == j {
                        g += perp_inc * (1.0 - a);
                    } else if jj == j + 1 {
                        g += perp_inc * a;
                    }
                    if jj == jr {
                        g += perp(&mount) * (1.0 - ar);
                    } else if jj == jr + 1 {
                        g += perp(&mount) * ar;
                    }
                    if g != Vector2::zeros() {
                        row.push(l.theta(jj), -c * e.dot(&g));
                    }
                }
                let (ju, au) = self.knots.locate(r.stamp_s);
                for (jj, w) in [(ju, 1.0 - au), (ju + 1, au)] {
                    if let Some(i) = l.u(jj) {
                        row.push(Some(i), -c * w * e.x);
                        row.push(Some(i + 1), -c * w * e.y);
                    }
                }
                row.push(Some(yi), c * e.x);
                row.push(Some(yi + 1), c * e.y);
                if let Some(ci) = l.calibration {
                    row.push(Some(ci), dist / sigma);
                    row.push(Some(ci + 1), 1.0 / sigma);
                }
                rows.push(row);
            }
            position += inc;
            let pi = perp(&inc);
            dpos[j] += pi * (1.0 - a);
            dpos[j + 1] += pi * a;
        }
        // Priors of the knot increments.
        let th = |j: usize| l.theta(j).map_or(0.0, |i| x[i]);
        let u = |j: usize| l.u(j).map_or(Vector2::zeros(), |i| Vector2::new(x[i], x[i + 1]));
        let q_b = cfg.odometry_error.gyro_bias_walk_rad_per_s_per_sqrt_s;
        for j in 0..l.knots - 1 {
            let sd = self.heading_var[j].sqrt();
            let dt = self.knots.interval_s(j);
            let (b0, b1) = (x[l.bias + j], x[l.bias + j + 1]);
            let mut row = Row::new((th(j + 1) - th(j) + 0.5 * (b0 + b1) * dt) / sd);
            row.push(l.theta(j), -1.0 / sd);
            row.push(l.theta(j + 1), 1.0 / sd);
            row.push(Some(l.bias + j), 0.5 * dt / sd);
            row.push(Some(l.bias + j + 1), 0.5 * dt / sd);
            rows.push(row);
            let sd = self.translation_var[j].sqrt();
            let du = u(j + 1) - u(j);
            for axis in 0..2 {
                let mut row = Row::new(du[axis] / sd);
                row.push(l.u(j).map(|i| i + axis), -1.0 / sd);
                row.push(l.u(j + 1).map(|i| i + axis), 1.0 / sd);
                rows.push(row);
            }
            let sd = bias_walk_var(q_b, dt).sqrt(); // as in `solve`'s evidence
            let mut row = Row::new((b1 - b0) / sd);
            row.push(Some(l.bias + j), -1.0 / sd);
            row.push(Some(l.bias + j + 1), 1.0 / sd);
            rows.push(row);
        }
        let sd = cfg.odometry_error.gyro_bias_std_rad_per_s.powi(2).max(MIN_VARIANCE).sqrt();
        let mut row = Row::new(x[l.bias] / sd);
        row.push(Some(l.bias), 1.0 / sd);
        rows.push(row);
        for (i, start) in self.landmarks.iter().enumerate() {
            let index = l.landmarks + 2 * i;
            match &start.prior {
                Some(prior) => rows.extend(gaussian_prior_rows(index, prior, x)),
                // Flat, kept proper: N(0, (1 km)²) per axis.
                None => {
                    for axis in 0..2 {
                        let mut row = Row::new(1e-3 * x[index + axis]);
                        row.push(Some(index + axis), 1e-3);
                        rows.push(row);
                    }
                }
            }
        }
        if let (Some(ci), Some(prior)) = (l.calibration, &cfg.calibration_prior) {
            rows.extend(gaussian_prior_rows(ci, prior, x));
        }
        rows
    }

    /// The Huber (IRLS) weight of row `row`: 1 inside the threshold, k/|r| beyond for
    /// a range row (the rows come ranges first); priors are Gaussian.
    fn weight(&self, row: usize, residual: f64) -> f64 {
        let k = self.config.huber_threshold_sigma;
        if row >= self.ranges.len() || residual.abs() <= k {
            1.0
        } else {
            k / residual.abs()
        }
    }

    /// The robust cost Σ ρ(r) (Huber: r² inside, 2k|r| − k² outside) and the normal
    /// equations (IRLS weights).
    fn normal_equations(&self, x: &DVector<f64>) -> (f64, DMatrix<f64>, DVector<f64>, usize) {
        let n = self.layout.n;
        let mut h = DMatrix::zeros(n, n);
        let mut g = DVector::zeros(n);
        let mut cost = 0.0;
        let mut outliers = 0;
        for (i, row) in self.rows(x).iter().enumerate() {
            let w = self.weight(i, row.residual);
            if w < 1.0 {
                let k = self.config.huber_threshold_sigma;
                outliers += 1;
                cost += 2.0 * k * row.residual.abs() - k * k;
            } else {
                cost += row.residual * row.residual;
            }
            row.accumulate(w, &mut h, &mut g);
        }
        (cost, h, g, outliers)
    }
}

const MIN_VARIANCE: f64 = 1e-12;

fn wrap(a: f64) -> f64 {
    (a + std::f64::consts::PI).rem_euclid(2.0 * std::f64::consts::PI) - std::f64::consts::PI
}

/// A landmark of the batch problem: where to start it (map frame, e.g. the filter's
/// estimate) and its prior when it has one (a configured prior; `None` = flat: its
/// ranges are all in the problem).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LandmarkStart {
    pub initial: Vector2<f64>,
    pub prior: Option<GaussianBelief<2>>,
}

/// A previous solution to start the next one from ([`SmootherSolution::warm`]).
#[derive(Debug, Clone, PartialEq)]
pub struct WarmStart {
    knots: Knots,
    x: DVector<f64>,
    calibration: Option<Vector2<f64>>,
}

/// The noise of the odometry step from `a` to `b`: (heading-increment variance rad²,
/// translation-walk variance per axis m², distance m), from the driver's covariance
/// growth when `b` has one (G_φφ and λ_max(G_xy), times the growth multipliers), else
/// from the error model.
fn step_noise(config: &SolveConfig, a: &OdometrySample, b: &OdometrySample) -> (f64, f64, f64) {
    let ds = (b.position - a.position).norm();
    if let Some(g) = &b.pose_cov_growth {
        let (heading_scale, translation_scale) = config.growth_std_scales;
        let (half_trace, half_gap) = (0.5 * (g[(0, 0)] + g[(1, 1)]), 0.5 * (g[(0, 0)] - g[(1, 1)]));
        return (heading_scale.powi(2) * g[(2, 2)], translation_scale.powi(2) * (half_trace + half_gap.hypot(g[(0, 1)])), ds);
    }
    let model = &config.odometry_error;
    let dphi = wrap(b.heading_rad - a.heading_rad).abs();
    let heading = model.rotation_std_rad_per_sqrt_rad.powi(2) * dphi + model.rotation_std_rad_per_sqrt_m.powi(2) * ds;
    (heading, model.translation_std_m_per_sqrt_m.powi(2) * ds, ds)
}

/// Most halvings of `knot_period_s` that [`knot_period_s`] makes (the knots get at most
/// 8× denser).
const MAX_KNOT_HALVINGS: u32 = 3;

/// The knot period, s. The path's deviation from its interpolation is one deviation
/// shared by all of an interval's ranges, while the problem takes it as independent
/// range noise (module doc); that is honest only while it is small against what
/// those ranges resolve together, so the period is the longest `knot_period_s`/2^k
/// (k ≤ [`MAX_KNOT_HALVINGS`]) with v_mid(Δ)·n(Δ) ≤ σ²: v_mid = w·Δ/4 + h·v²·Δ³/192 the
/// deviation's variance mid-interval (w, h the translation-walk and heading variance
/// per second of the history, v its mean speed) and n = ρ·Δ the interval's ranges (ρ
/// per second). Powers of two keep the knots where they were from one re-solve to the
/// next; then the period doubles until the knots fit in `max_knots`.
fn knot_period_s(config: &SolveConfig, steps: &[(f64, f64, f64)], range_count: usize, span_s: f64) -> f64 {
    let span = span_s.max(1e-9);
    let (heading, walk, distance) = steps.iter().fold((0.0, 0.0, 0.0), |s, t| (s.0 + t.0, s.1 + t.1, s.2 + t.2));
    let (h, w, v, rho) = (heading / span, walk / span, distance / span, range_count as f64 / span);
    let shared = |d: f64| (w * d / 4.0 + h * v * v * d.powi(3) / 192.0) * rho * d;
    let mut period = config.knot_period_s.max(1e-6);
    for _ in 0..MAX_KNOT_HALVINGS {
        if !(shared(period) > config.range_std_m.powi(2)) {
            break;
        }
        period /= 2.0;
    }
    while span / period > (config.max_knots.max(2) - 1) as f64 {
        period *= 2.0;
    }
    period
}

/// Variance of the gyro bias's random walk over `dt_s`: q_b²·dt (floored).
fn bias_walk_var(q_b: f64, dt_s: f64) -> f64 {
    (q_b * q_b * dt_s).max(MIN_VARIANCE)
}

/// Solves the batch problem of the module doc, started from `warm` when given.
///
/// # Errors
/// [`SmootherError`] for too little data, non-finite input, or a normal matrix that is
/// not positive definite.
pub fn solve(
    odometry: &[OdometrySample],
    ranges: &[RangeSample],
    landmarks: &[LandmarkStart],
    config: &SolveConfig,
    warm: Option<&WarmStart>,
) -> Result<SmootherSolution, SmootherError> {
    if odometry.len() < 2 || ranges.is_empty() || odometry.windows(2).any(|w| w[1].stamp_s <= w[0].stamp_s) {
        return Err(SmootherError::TooLittleData(format!(
            "{} odometry samples, {} ranges",
            odometry.len(),
            ranges.len()
        )));
    }
    if odometry.iter().any(|o| !(o.stamp_s.is_finite() && o.position.iter().all(|v| v.is_finite()) && o.heading_rad.is_finite())) {
        return Err(SmootherError::NonFinite("odometry"));
    }
    let finite_range = |r: &RangeSample| {
        r.stamp_s.is_finite()
            && r.range_m.is_finite()
            && r.odom_heading_rad.is_finite()
            && r.odom_position.iter().chain(r.mount_m.iter()).all(|v| v.is_finite())
    };
    if !ranges.iter().all(finite_range) || ranges.iter().any(|r| r.landmark >= landmarks.len()) {
        return Err(SmootherError::NonFinite("ranges (or a landmark index without a start)"));
    }
    if landmarks.iter().any(|y| !y.initial.iter().all(|v| v.is_finite())) {
        return Err(SmootherError::NonFinite("landmark starts"));
    }
    let t0 = odometry[0].stamp_s;
    let t_end = odometry[odometry.len() - 1].stamp_s;
    let span = t_end - t0;
    let mut ranges: Vec<RangeSample> = ranges.iter().filter(|r| r.stamp_s >= t0 && r.stamp_s <= t_end).copied().collect();
    if ranges.is_empty() {
        return Err(SmootherError::TooLittleData("no range within the odometry's time span".into()));
    }
    ranges.sort_by(|a, b| a.stamp_s.total_cmp(&b.stamp_s));
    // Each step's (heading-increment variance, translation-walk variance, distance).
    let steps: Vec<(f64, f64, f64)> = odometry.windows(2).map(|w| step_noise(config, &w[0], &w[1])).collect();
    let period = knot_period_s(config, &steps, ranges.len(), span);
    let count = ((span / period).ceil() as usize + 1).clamp(2, config.max_knots.max(2));
    let knots = Knots { t0_s: t0, period_s: period, count, t_end_s: t_end };
    let layout = Layout::new(count, landmarks.len(), config.calibration_prior.is_some());
    let mut heading_var = vec![0.0; count - 1];
    let mut walk_var = vec![0.0; count - 1];
    let mut path_length_m = vec![0.0; count - 1];
    for (w, &(heading, walk, ds)) in odometry.windows(2).zip(&steps) {
        let (j, _) = knots.locate(w[0].stamp_s);
        heading_var[j] += heading;
        walk_var[j] += walk;
        path_length_m[j] += ds;
    }
    // What the linear interpolation leaves out (module doc): the heading bridge's
    // V_j·L_j²/12, kept by every later position, joins the translation increment.
    let bridge_var: Vec<f64> = heading_var.iter().zip(&path_length_m).map(|(v, l)| v * l * l / 12.0).collect();
    let mut translation_var: Vec<f64> = walk_var.iter().zip(&bridge_var).map(|(w, b)| w + b).collect();
    if !heading_var.iter().chain(&translation_var).all(|v| v.is_finite()) {
        return Err(SmootherError::NonFinite("odometry covariance growth"));
    }
    for v in heading_var.iter_mut().chain(translation_var.iter_mut()) {
        *v = v.max(MIN_VARIANCE);
    }
    let range_std_m = ranges
        .iter()
        .map(|r| {
            let (j, a) = knots.locate(r.stamp_s);
            let inside = a * (1.0 - a) * walk_var[j] + (a * (1.0 - a)).powi(2) * bridge_var[j];
            (config.range_std_m.powi(2) + inside).sqrt()
        })
        .collect();
    let problem = Problem { odometry, ranges, landmarks, config, layout, knots, heading_var, translation_var, range_std_m };
    let l = &problem.layout;
    let mut x = problem.start(landmarks, warm);
    let (mut cost, mut h, mut g, mut outliers) = problem.normal_equations(&x);
    let mut lambda = 1e-3;
    let mut iterations = 0;
    for _ in 0..config.max_iterations {
        iterations += 1;
        let mut damped = h.clone();
        for i in 0..l.n {
            damped[(i, i)] += lambda * h[(i, i)].max(1e-9);
        }
        let Some(chol) = Cholesky::new(damped) else {
            lambda *= 10.0;
            continue;
        };
        let step = chol.solve(&-&g);
        if step.amax() < 1e-9 {
            break;
        }
        let candidate = &x + &step;
        let (c, hc, gc, oc) = problem.normal_equations(&candidate);
        if c.is_finite() && c < cost {
            // Converged when the cost (a χ² in units of the noises) moves by < 1e-3.
            let done = (cost - c) < 1e-3 || step.amax() < 1e-7;
            (x, cost, h, g, outliers) = (candidate, c, hc, gc, oc);
            lambda = (lambda / 3.0).max(1e-12);
            if done {
                break;
            }
        } else {
            lambda *= 10.0;
            if lambda > 1e12 {
                break;
            }
        }
    }
    let chol = Cholesky::new(h).ok_or(SmootherError::Singular)?;
    let log_det_h = 2.0 * chol.l().diagonal().iter().map(|v| v.ln()).sum::<f64>();
    // log|Λ_prior| of the rows whose variance depends on the odometry model (the
    // ranges' through the interpolation terms; the landmark and calibration priors do
    // not).
    let q_b = config.odometry_error.gyro_bias_walk_rad_per_s_per_sqrt_s;
    let bias_var = config.odometry_error.gyro_bias_std_rad_per_s.powi(2).max(MIN_VARIANCE);
    let prior_log_det: f64 = problem.range_std_m.iter().map(|s| -2.0 * s.ln()).sum::<f64>()
        + problem.heading_var.iter().map(|v| -v.ln()).sum::<f64>()
        + 2.0 * problem.translation_var.iter().map(|v| -v.ln()).sum::<f64>()
        - (0..count - 1).map(|j| bias_walk_var(q_b, knots.interval_s(j)).ln()).sum::<f64>()
        - bias_var.ln();
    let log_evidence = -0.5 * cost - 0.5 * log_det_h + 0.5 * prior_log_det;
    // The state of the joint filter (slam.rs): (E at the last sample, b there,
    // [s, b_r,] y₁ … y_L) = G·x, with covariance G Σ Gᵀ.
    let (e, e_jac) = problem.correction(&x);
    let b_last = l.bias + l.knots - 1;
    let mut selected = vec![b_last];
    if let Some(ci) = l.calibration {
        selected.extend([ci, ci + 1]);
    }
    selected.extend((0..2 * landmarks.len()).map(|i| l.landmarks + i));
    let dim = 3 + selected.len();
    let mut gm = DMatrix::zeros(dim, l.n);
    gm.rows_mut(0, 3).copy_from(&e_jac);
    let mut mean = DVector::zeros(dim);
    mean.fixed_rows_mut::<3>(0).copy_from(&e);
    for (r, &i) in selected.iter().enumerate() {
        gm[(3 + r, i)] = 1.0;
        mean[3 + r] = x[i];
    }
    // G Σ Gᵀ = G H⁻¹ Gᵀ without forming H⁻¹: O(n²·dim).
    let state_cov = &gm * chol.solve(&gm.transpose());
    let state_cov = (&state_cov + state_cov.transpose()) * 0.5;
    if !mean.iter().chain(state_cov.iter()).all(|v| v.is_finite()) {
        return Err(SmootherError::NonFinite("the solution"));
    }
    let block = |i: usize| -> Result<GaussianBelief<2>, SmootherError> {
        GaussianBelief::new(Vector2::new(mean[i], mean[i + 1]), state_cov.fixed_view::<2, 2>(i, i).into_owned())
            .map_err(|_| SmootherError::Singular)
    };
    let first_landmark = 4 + if l.calibration.is_some() { 2 } else { 0 };
    let landmark_beliefs = (0..landmarks.len()).map(|i| block(first_landmark + 2 * i)).collect::<Result<Vec<_>, _>>()?;
    let calibration = l.calibration.map(|_| block(4)).transpose()?;
    let correction = (e, state_cov.fixed_view::<3, 3>(0, 0).into_owned());
    Ok(SmootherSolution {
        landmarks: landmark_beliefs,
        correction,
        gyro_bias: (x[b_last], state_cov[(3, 3)]),
        calibration,
        state: (mean, state_cov),
        log_evidence,
        outlier_fraction: outliers as f64 / problem.ranges.len() as f64,
        iterations,
        warm: WarmStart {
            knots,
            calibration: l.calibration.map(|ci| Vector2::new(x[ci], x[ci + 1])),
            x,
        },
    })
}

impl Problem<'_> {
    /// E at the last odometry sample, e_yaw = θ(t_N), e_t = X_N − R(θ_N)·p_N, and its
    /// Jacobian (3 × n) over the unknowns through the prefix sums.
    fn correction(&self, x: &DVector<f64>) -> (Vector3<f64>, DMatrix<f64>) {
        let l = &self.layout;
        let mut position = self.odometry[0].position;
        let mut dpos = vec![Vector2::zeros(); l.knots];
        for w in self.odometry.windows(2) {
            let (j, a, th) = self.theta_at(x, w[0].stamp_s);
            let inc = Rotation2::new(th) * (w[1].position - w[0].position);
            position += inc;
            dpos[j] += perp(&inc) * (1.0 - a);
            dpos[j + 1] += perp(&inc) * a;
        }
        let last = self.odometry[self.odometry.len() - 1];
        let (j, a, th) = self.theta_at(x, last.stamp_s);
        let rp = Rotation2::new(th) * last.position;
        let u = self.u_at(x, last.stamp_s);
        let e = Vector3::new(position.x + u.x - rp.x, position.y + u.y - rp.y, th);
        let mut jac = DMatrix::zeros(3, l.n);
        for (jj, dp) in dpos.iter().enumerate() {
            let w = if jj == j { 1.0 - a } else if jj == j + 1 { a } else { 0.0 };
            let g = dp - perp(&rp) * w;
            if let Some(i) = l.theta(jj) {
                jac[(0, i)] = g.x;
                jac[(1, i)] = g.y;
                jac[(2, i)] = w;
            }
        }
        let (ju, au) = self.knots.locate(last.stamp_s);
        for (jj, w) in [(ju, 1.0 - au), (ju + 1, au)] {
            if let Some(i) = l.u(jj) {
                jac[(0, i)] += w;
                jac[(1, i + 1)] += w;
            }
        }
        (e, jac)
    }

    /// The unknowns started from `warm` (a previous solution, its knot functions
    /// evaluated at this problem's knots), the landmarks at `landmarks`' initial
    /// values and the calibration at `warm`'s or the prior's mean.
    fn start(&self, landmarks: &[LandmarkStart], warm: Option<&WarmStart>) -> DVector<f64> {
        let l = &self.layout;
        let mut x = DVector::zeros(l.n);
        if let Some(w) = warm {
            let old_knots = w.knots.count;
            for j in 0..l.knots {
                // Past the old last knot the old functions stay at its values.
                let (k, a) = w.knots.locate(self.knots.time_s(j));
                let at = |values: &dyn Fn(usize) -> f64| (1.0 - a) * values(k) + a * values(k + 1);
                let th = |k: usize| if k == 0 { 0.0 } else { w.x[k - 1] };
                let ux = |k: usize| if k == 0 { 0.0 } else { w.x[(old_knots - 1) + 2 * (k - 1)] };
                let uy = |k: usize| if k == 0 { 0.0 } else { w.x[(old_knots - 1) + 2 * (k - 1) + 1] };
                let b = |k: usize| w.x[3 * (old_knots - 1) + k];
                if let Some(i) = l.theta(j) {
                    x[i] = at(&th);
                }
                if let Some(i) = l.u(j) {
                    x[i] = at(&ux);
                    x[i + 1] = at(&uy);
                }
                x[l.bias + j] = at(&b);
            }
        }
        for (i, y) in landmarks.iter().enumerate() {
            x[l.landmarks + 2 * i] = y.initial.x;
            x[l.landmarks + 2 * i + 1] = y.initial.y;
        }
        if let Some(ci) = l.calibration {
            let (s, b) = match (warm.and_then(|w| w.calibration), &self.config.calibration_prior) {
                (Some(c), _) => (c.x, c.y),
                (None, Some(prior)) => (prior.mean.x, prior.mean.y),
                (None, None) => (1.0, 0.0),
            };
            x[ci] = s;
            x[ci + 1] = b;
        }
        x
    }
}

/// Whitened rows of a Gaussian prior N(μ, Σ) on the two unknowns at `index`:
/// r = L⁻¹(x − μ), Σ = L Lᵀ.
fn gaussian_prior_rows(index: usize, prior: &GaussianBelief<2>, x: &DVector<f64>) -> [Row; 2] {
    let chol = Cholesky::new(prior.cov).expect("a GaussianBelief is SPD");
    let inv_l = chol.l().try_inverse().expect("triangular with a positive diagonal");
    let r = inv_l * (Vector2::new(x[index], x[index + 1]) - prior.mean);
    [0, 1].map(|axis| {
        let mut row = Row::new(r[axis]);
        row.push(Some(index), inv_l[(axis, 0)]);
        row.push(Some(index + 1), inv_l[(axis, 1)]);
        row
    })
}

/// The localizer's record of what the batch problem needs: odometry samples and fused
/// ranges (with the base's odometry pose at their stamps), bounded by thinning — when
/// a list is full every other entry is dropped (the newest kept), so a long run keeps
/// an even, coarser cover of its whole history in bounded memory.
#[derive(Debug, Clone, Default)]
pub struct History {
    odometry: Vec<OdometrySample>,
    /// Ranges, with the landmark's index in `ids`.
    ranges: Vec<RangeSample>,
    ids: Vec<String>,
    index: BTreeMap<String, usize>,
    priors: BTreeMap<String, GaussianBelief<2>>,
    max_odometry: usize,
    max_ranges: usize,
}

/// Drops every other entry, keeping the last; `merge(dropped, kept)` folds each dropped
/// entry into the kept one after it.
fn thin<T: Copy>(v: &mut Vec<T>, merge: impl Fn(&T, &mut T)) {
    let last = v.len() - 1;
    let mut kept = Vec::with_capacity(v.len() / 2 + 1);
    let mut dropped = None;
    for (i, e) in v.iter().enumerate() {
        if !(last - i).is_multiple_of(2) {
            dropped = Some(*e);
            continue;
        }
        let mut e = *e;
        if let Some(d) = dropped.take() {
            merge(&d, &mut e);
        }
        kept.push(e);
    }
    *v = kept;
}

impl History {
    /// An empty history holding at most `max_odometry` samples and `max_ranges`
    /// ranges (each ≥ 4).
    pub fn new(max_odometry: usize, max_ranges: usize) -> Self {
        Self { max_odometry: max_odometry.max(4), max_ranges: max_ranges.max(4), ..Self::default() }
    }

    /// Forgets everything (a reset, an odometry discontinuity).
    pub fn clear(&mut self) {
        *self = Self::new(self.max_odometry, self.max_ranges);
    }

    /// Records an odometry pose (ignored unless newer than the last) with the growth of
    /// the driver's pose covariance over the step to it, when it was filled and grew.
    pub fn push_odometry(&mut self, stamp_s: f64, pose: &Isometry2<f64>, pose_cov_growth: Option<Matrix3<f64>>) {
        if self.odometry.last().is_some_and(|o| stamp_s <= o.stamp_s) {
            return;
        }
        if self.odometry.len() >= self.max_odometry {
            // A kept sample's step now starts where the dropped one's did, so it takes
            // the dropped step's covariance growth too (the sum; when only one of the
            // two steps had one, the merged step falls back to the model, which sees
            // the whole step).
            thin(&mut self.odometry, |dropped, kept| {
                kept.pose_cov_growth = match (dropped.pose_cov_growth, kept.pose_cov_growth) {
                    (Some(a), Some(b)) => Some(a + b),
                    _ => None,
                };
            });
        }
        self.odometry.push(OdometrySample {
            stamp_s,
            position: pose.translation.vector,
            heading_rad: pose.rotation.angle(),
            pose_cov_growth,
        });
    }

    /// Records a fused range to landmark `id` taken at base odometry pose `odom_pose`
    /// with the sensor at `mount_m` (base frame).
    pub fn push_range(&mut self, id: &str, stamp_s: f64, odom_pose: &Isometry2<f64>, mount_m: Vector2<f64>, range_m: f64) {
        let landmark = match self.index.get(id) {
            Some(&i) => i,
            None => {
                self.ids.push(id.to_string());
                self.index.insert(id.to_string(), self.ids.len() - 1);
                self.ids.len() - 1
            }
        };
        if self.ranges.len() >= self.max_ranges {
            thin(&mut self.ranges, |_, _| {});
        }
        self.ranges.push(RangeSample {
            stamp_s,
            landmark,
            odom_position: odom_pose.translation.vector,
            odom_heading_rad: odom_pose.rotation.angle(),
            mount_m,
            range_m,
        });
    }

    /// Records the prior landmark `id` joined with (map frame).
    pub fn set_prior(&mut self, id: &str, prior: &GaussianBelief<2>) {
        self.priors.insert(id.to_string(), *prior);
    }

    /// The odometry samples held, oldest first.
    pub fn odometry(&self) -> &[OdometrySample] {
        &self.odometry
    }

    /// Number of odometry samples and ranges held.
    pub fn len(&self) -> (usize, usize) {
        (self.odometry.len(), self.ranges.len())
    }

    /// The problem's data for `landmarks` (id, start): the odometry, the ranges to
    /// those landmarks (re-indexed into `landmarks`' order) and each one's start with
    /// its recorded prior; `None` when a landmark has neither a prior nor
    /// `min_ranges` ranges (the batch could not place it).
    fn problem(&self, landmarks: &[(String, Vector2<f64>)], min_ranges: usize) -> Option<(Vec<RangeSample>, Vec<LandmarkStart>)> {
        let order: BTreeMap<usize, usize> =
            landmarks.iter().enumerate().filter_map(|(k, (id, _))| Some((*self.index.get(id)?, k))).collect();
        let ranges: Vec<RangeSample> = self
            .ranges
            .iter()
            .filter_map(|r| Some(RangeSample { landmark: *order.get(&r.landmark)?, ..*r }))
            .collect();
        let mut counts = vec![0; landmarks.len()];
        for r in &ranges {
            counts[r.landmark] += 1;
        }
        let starts: Vec<LandmarkStart> =
            landmarks.iter().map(|(id, y)| LandmarkStart { initial: *y, prior: self.priors.get(id).copied() }).collect();
        starts.iter().zip(&counts).all(|(s, &c)| s.prior.is_some() || c >= min_ranges).then_some((ranges, starts))
    }
}


/// Fewest landmarks the localizer re-solves with: ranges to two landmarks cannot tell
/// the path from its mirror image about the line through them.
pub const MIN_LANDMARKS: usize = 3;

/// A noise level whose posterior weight falls below this is not solved again, except
/// that every [`RECHECK_EVERY`]-th re-solve solves one such level (in turn) to see
/// whether the data now favour it.
pub const PRUNE_WEIGHT: f64 = 1e-4;
/// Re-solves between re-checks of a pruned noise level.
pub const RECHECK_EVERY: u64 = 4;
/// Most landmarks in a re-solve: the dense normal matrix has 4·max_knots + 2·L
/// unknowns, so beyond this the localizer keeps the filter alone (a re-solve would
/// stall the node for seconds).
pub const MAX_LANDMARKS: usize = 100;

/// What the localizer's re-solves did (diagnostics).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SmootherStats {
    pub solves: u64,
    pub failures: u64,
    /// The last failure's message.
    pub last_failure: Option<String>,
    /// The posterior weight of each (heading, translation) noise multiplier pair at
    /// the last re-solve (0 for a pair not solved then).
    pub weights: Vec<((f64, f64), f64)>,
    /// Iterations of the last re-solve, summed over the pairs solved.
    pub iterations: usize,
    /// Wall time of the last re-solve, s.
    pub duration_s: f64,
}

/// The localizer's periodic re-solve: the [`History`], when the next solve is due, the
/// odometry noise levels it averages over and the last solutions to start from.
///
/// How much the odometry drifts is not known in advance (a robot with a good gyro and
/// slipping wheels is common), so the heading and the translation noise get separate
/// multipliers, the pairs `noise_scales` × `noise_scales`, and the re-solve is the
/// Bayesian model average over them: each pair's batch solution weighted by its
/// Laplace evidence, moment-matched (mean Σ wᵢμᵢ, covariance Σ wᵢ(Σᵢ + (μᵢ − μ)(μᵢ −
/// μ)ᵀ)). While the data cannot tell the levels apart the average keeps their spread
/// in its covariance; once they can, it is the best level's solution. Pairs with a
/// weight below [`PRUNE_WEIGHT`] are skipped (see there), so a re-solve usually costs
/// one to three solves.
#[derive(Debug, Clone)]
pub struct Smoother {
    pub history: History,
    period_s: f64,
    min_ranges: usize,
    base: SolveConfig,
    pairs: Vec<(f64, f64)>,
    /// Each pair's last weight and solution (to start from).
    weights: Vec<f64>,
    warm: Vec<Option<WarmStart>>,
    last_solve_s: Option<f64>,
    stats: SmootherStats,
}

impl Smoother {
    /// `base` holds the unscaled odometry error model; `noise_scales` its multipliers;
    /// a solve is due every `period_s` of odometry time; a landmark takes part once it
    /// has a prior or `min_ranges` ranges.
    pub fn new(base: SolveConfig, noise_scales: &[f64], period_s: f64, min_ranges: usize, history: History) -> Self {
        let pairs: Vec<(f64, f64)> = noise_scales.iter().flat_map(|&h| noise_scales.iter().map(move |&t| (h, t))).collect();
        let n = pairs.len();
        Self {
            history,
            period_s,
            min_ranges,
            base,
            weights: vec![1.0 / n as f64; n],
            warm: vec![None; n],
            pairs,
            last_solve_s: None,
            stats: SmootherStats::default(),
        }
    }

    /// What the re-solves did so far.
    pub fn stats(&self) -> &SmootherStats {
        &self.stats
    }

    /// Forgets the history and the last solutions (a reset).
    pub fn clear(&mut self) {
        self.history.clear();
        let n = self.pairs.len();
        self.weights = vec![1.0 / n as f64; n];
        self.warm = vec![None; n];
        self.last_solve_s = None;
    }

    /// Counts a solution the caller did not apply, with the reason.
    pub fn count_rejected(&mut self, reason: &str) {
        self.stats.failures += 1;
        self.stats.last_failure = Some(reason.to_string());
    }

    /// Whether a re-solve is due at odometry time `stamp_s`.
    pub fn due(&self, stamp_s: f64) -> bool {
        self.last_solve_s.is_none_or(|t| stamp_s - t >= self.period_s)
    }

    fn config(&self, pair: usize) -> SolveConfig {
        let (h, t) = self.pairs[pair];
        let mut c = self.base.clone();
        let m = &mut c.odometry_error;
        m.translation_std_m_per_sqrt_m *= t;
        m.rotation_std_rad_per_sqrt_rad *= h;
        m.rotation_std_rad_per_sqrt_m *= h;
        m.gyro_bias_walk_rad_per_s_per_sqrt_s *= h;
        c.growth_std_scales = (c.growth_std_scales.0 * h, c.growth_std_scales.1 * t);
        c
    }

    /// Re-solves at odometry time `stamp_s` for `landmarks` (id and current estimate,
    /// in the joint state's order): the model average of the type doc, inline
    /// ([`Smoother::prepare`], [`ResolveJob::run`], [`Smoother::finish`] in one call).
    ///
    /// # Errors
    /// [`SmootherError`] (counted in the stats): too little data, a landmark the batch
    /// cannot place, or every pair's solve failed.
    pub fn solve(&mut self, stamp_s: f64, landmarks: &[(String, Vector2<f64>)]) -> Result<SmootherSolution, SmootherError> {
        let job = self.prepare(stamp_s, landmarks)?;
        self.finish(job.run())
    }

    /// The re-solve due at odometry time `stamp_s` as an owned job (a copy of the
    /// history's problem, each noise pair to solve with its warm start), to run here or
    /// on another thread; the next one is due `period_s` later whatever its outcome.
    ///
    /// # Errors
    /// [`SmootherError::TooLittleData`] (counted) when a landmark has neither a prior
    /// nor enough ranges.
    pub fn prepare(&mut self, stamp_s: f64, landmarks: &[(String, Vector2<f64>)]) -> Result<ResolveJob, SmootherError> {
        self.last_solve_s = Some(stamp_s);
        let Some((ranges, starts)) = self.history.problem(landmarks, self.min_ranges) else {
            let e = SmootherError::TooLittleData("a landmark with neither a prior nor enough ranges".into());
            self.count_rejected(&e.to_string());
            return Err(e);
        };
        // Every RECHECK_EVERY-th re-solve also solves one pruned pair, in turn.
        let pruned: Vec<usize> = (0..self.pairs.len()).filter(|&k| self.weights[k] < PRUNE_WEIGHT).collect();
        let recheck = (self.stats.solves.is_multiple_of(RECHECK_EVERY) && !pruned.is_empty())
            .then(|| pruned[(self.stats.solves / RECHECK_EVERY) as usize % pruned.len()]);
        // A pair without a solution of its own starts from the best one's.
        let best = self.weights.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i);
        let pairs = (0..self.pairs.len())
            .filter(|&k| self.weights[k] >= PRUNE_WEIGHT || recheck == Some(k))
            .map(|k| (k, self.config(k), self.warm[k].clone().or_else(|| best.and_then(|b| self.warm[b].clone()))))
            .collect();
        Ok(ResolveJob { odometry: self.history.odometry.clone(), ranges, starts, pairs })
    }

    /// Takes a job's outcome in (weights, warm starts, stats) and returns the model
    /// average.
    ///
    /// # Errors
    /// The last pair's [`SmootherError`] (counted) when every pair failed.
    pub fn finish(&mut self, outcome: ResolveOutcome) -> Result<SmootherSolution, SmootherError> {
        self.stats.duration_s = outcome.duration_s;
        let result = self.average(outcome.solved);
        match &result {
            Ok(_) => self.stats.solves += 1,
            Err(e) => self.count_rejected(&e.to_string()),
        }
        result
    }

    fn average(&mut self, solved: Vec<(usize, Result<SmootherSolution, SmootherError>)>) -> Result<SmootherSolution, SmootherError> {
        let mut last_error = None;
        let solved: Vec<(usize, SmootherSolution)> = solved
            .into_iter()
            .filter_map(|(k, r)| r.map_err(|e| last_error = Some(e)).ok().map(|s| (k, s)))
            .collect();
        if solved.is_empty() {
            return Err(last_error.unwrap_or(SmootherError::TooLittleData("no noise level to solve".into())));
        }
        let max = solved.iter().map(|(_, s)| s.log_evidence).fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = solved.iter().map(|(_, s)| (s.log_evidence - max).exp()).sum();
        self.weights.iter_mut().for_each(|w| *w = 0.0);
        self.stats.iterations = 0;
        for (k, s) in &solved {
            self.weights[*k] = (s.log_evidence - max).exp() / total;
            self.warm[*k] = Some(s.warm.clone());
            self.stats.iterations += s.iterations;
        }
        self.stats.weights = self.pairs.iter().copied().zip(self.weights.iter().copied()).collect();
        let weighted: Vec<(f64, &SmootherSolution)> = solved.iter().map(|(k, s)| (self.weights[*k], s)).collect();
        Ok(model_average(&weighted, max + total.ln()))
    }
}

/// One re-solve, owned ([`Smoother::prepare`]): the batch problem and the noise pairs
/// to solve it under (index, scaled config, warm start).
#[derive(Debug, Clone)]
pub struct ResolveJob {
    odometry: Vec<OdometrySample>,
    ranges: Vec<RangeSample>,
    starts: Vec<LandmarkStart>,
    pairs: Vec<(usize, SolveConfig, Option<WarmStart>)>,
}

/// What a [`ResolveJob`] computed: each pair's solution or error, and the wall time.
#[derive(Debug)]
pub struct ResolveOutcome {
    solved: Vec<(usize, Result<SmootherSolution, SmootherError>)>,
    duration_s: f64,
}

impl ResolveJob {
    /// Solves every pair ([`solve`]); pure, so it can run on any thread.
    pub fn run(self) -> ResolveOutcome {
        let started = std::time::Instant::now();
        let solved = self
            .pairs
            .iter()
            .map(|(k, config, warm)| (*k, solve(&self.odometry, &self.ranges, &self.starts, config, warm.as_ref())))
            .collect();
        ResolveOutcome { solved, duration_s: started.elapsed().as_secs_f64() }
    }
}

/// The moment-matched mixture of solutions with weights summing to 1 (type doc of
/// [`Smoother`]); its log evidence is `log_evidence` (that of the average).
fn model_average(weighted: &[(f64, &SmootherSolution)], log_evidence: f64) -> SmootherSolution {
    let (_, first) = weighted.iter().copied().max_by(|a, b| a.0.total_cmp(&b.0)).expect("at least one solution");
    let mut mean = DVector::zeros(first.state.0.len());
    for (w, s) in weighted {
        mean += &s.state.0 * *w;
    }
    let mut cov = DMatrix::zeros(mean.len(), mean.len());
    for (w, s) in weighted {
        let d = &s.state.0 - &mean;
        cov += (&s.state.1 + &d * d.transpose()) * *w;
    }
    let cov = (&cov + cov.transpose()) * 0.5;
    let block = |i: usize| GaussianBelief::new(Vector2::new(mean[i], mean[i + 1]), cov.fixed_view::<2, 2>(i, i).into_owned());
    let first_landmark = 4 + if first.calibration.is_some() { 2 } else { 0 };
    // A sum of PSD matrices with positive weights is PSD; round-off can still fail
    // the SPD check, and then the best single solution stands.
    let Ok(landmarks) = (0..first.landmarks.len()).map(|i| block(first_landmark + 2 * i)).collect::<Result<Vec<_>, _>>() else {
        return first.clone();
    };
    let Ok(calibration) = first.calibration.map(|_| block(4)).transpose() else { return first.clone() };
    SmootherSolution {
        landmarks,
        correction: (
            Vector3::new(mean[0], mean[1], mean[2]),
            cov.fixed_view::<3, 3>(0, 0).into_owned(),
        ),
        gyro_bias: (mean[3], cov[(3, 3)]),
        calibration,
        state: (mean, cov),
        warm: first.warm.clone(),
        log_evidence,
        outlier_fraction: weighted.iter().map(|(w, s)| w * s.outlier_fraction).sum(),
        iterations: weighted.iter().map(|(_, s)| s.iterations).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Matrix2;

    /// The odometry pose of a drive on a circle of 10 m radius at 0.5 m/s.
    fn pose_at(t: f64) -> (Vector2<f64>, f64) {
        (Vector2::new(10.0 * (0.05 * t).sin(), 10.0 * (1.0 - (0.05 * t).cos())), 0.05 * t)
    }

    /// A short curved drive with two landmarks (one with a prior), a mount and the
    /// calibration.
    fn problem_data() -> (Vec<OdometrySample>, Vec<RangeSample>, Vec<LandmarkStart>, SolveConfig) {
        let odometry: Vec<OdometrySample> = (0..200)
            .map(|k| {
                let t = k as f64 * 0.5;
                let (position, heading_rad) = pose_at(t);
                OdometrySample { stamp_s: 10.0 + t, position, heading_rad, pose_cov_growth: None }
            })
            .collect();
        let ranges = (0..150)
            .map(|i| {
                let t = 0.3 + i as f64 * 0.66;
                let (odom_position, odom_heading_rad) = pose_at(t);
                let mount_m = Vector2::new(0.3, -0.1);
                let truth = [Vector2::new(3.5, 11.0), Vector2::new(-3.5, 2.4)][i % 2];
                let sensor = odom_position + Rotation2::new(odom_heading_rad) * mount_m;
                // Scale 1.03, offset 0.1 m, a deterministic ±0.3 m "noise" and one
                // outlier in 25 for the Huber tails.
                let noise = 0.3 * ((i * 37 % 11) as f64 / 5.0 - 1.0) + if i % 25 == 0 { 5.0 } else { 0.0 };
                RangeSample {
                    stamp_s: 10.0 + t,
                    landmark: i % 2,
                    odom_position,
                    odom_heading_rad,
                    mount_m,
                    range_m: 1.03 * (truth - sensor).norm() + 0.1 + noise,
                }
            })
            .collect();
        let config = SolveConfig {
            knot_period_s: 12.0,
            max_knots: 64,
            range_std_m: 0.5,
            huber_threshold_sigma: 1.5,
            odometry_error: OdometryErrorConfig::default(),
            calibration_prior: Some(
                GaussianBelief::new(Vector2::new(1.0, 0.0), Matrix2::new(0.01, 0.001, 0.001, 1.0)).unwrap(),
            ),
            max_iterations: 20,
            growth_std_scales: (1.0, 1.0),
        };
        let landmarks = vec![
            LandmarkStart { initial: Vector2::new(3.0, 12.0), prior: None },
            LandmarkStart {
                initial: Vector2::new(-4.0, 2.0),
                prior: Some(GaussianBelief::new(Vector2::new(-3.0, 2.5), Matrix2::new(4.0, 1.0, 1.0, 2.0)).unwrap()),
            },
        ];
        (odometry, ranges, landmarks, config)
    }

    fn problem<'a>(
        odometry: &'a [OdometrySample],
        ranges: &[RangeSample],
        landmarks: &'a [LandmarkStart],
        config: &'a SolveConfig,
    ) -> Problem<'a> {
        Problem {
            odometry,
            ranges: ranges.to_vec(),
            landmarks,
            config,
            layout: Layout::new(10, landmarks.len(), true),
            knots: Knots { t0_s: odometry[0].stamp_s, period_s: 12.0, count: 10, t_end_s: odometry[odometry.len() - 1].stamp_s },
            heading_var: vec![1e-4; 9],
            translation_var: vec![1e-2; 9],
            range_std_m: (0..ranges.len()).map(|i| 0.5 + 0.01 * (i % 3) as f64).collect(),
        }
    }

    fn test_point(n: usize, landmarks: &[LandmarkStart], layout: &Layout) -> DVector<f64> {
        let mut x = DVector::from_fn(n, |i, _| 0.02 * ((i * 7919) % 13) as f64 - 0.12);
        for (i, y) in landmarks.iter().enumerate() {
            x[layout.landmarks + 2 * i] = y.initial.x;
            x[layout.landmarks + 2 * i + 1] = y.initial.y;
        }
        x[layout.calibration.unwrap()] = 1.03;
        x
    }

    /// The analytic Jacobian rows against central differences of the residuals.
    #[test]
    fn jacobian_matches_finite_differences() {
        let (odometry, ranges, landmarks, config) = problem_data();
        let problem = problem(&odometry, &ranges, &landmarks, &config);
        let n = problem.layout.n;
        let x = test_point(n, &landmarks, &problem.layout);
        let rows = problem.rows(&x);
        let dense = |x: &DVector<f64>| DVector::from_iterator(rows.len(), problem.rows(x).iter().map(|r| r.residual));
        let h = 1e-6;
        let mut worst: f64 = 0.0;
        for k in 0..n {
            let mut plus = x.clone();
            plus[k] += h;
            let mut minus = x.clone();
            minus[k] -= h;
            let numeric = (dense(&plus) - dense(&minus)) / (2.0 * h);
            for (i, row) in rows.iter().enumerate() {
                let analytic: f64 = row.index.iter().zip(&row.value).filter(|(&j, _)| j == k).map(|(_, v)| v).sum();
                worst = worst.max((analytic - numeric[i]).abs() / (1.0 + numeric[i].abs()));
            }
        }
        assert!(worst < 1e-5, "largest relative Jacobian error {worst}");
    }

    /// The correction's Jacobian against central differences of E at the last sample.
    #[test]
    fn correction_jacobian_matches_finite_differences() {
        let (odometry, ranges, landmarks, config) = problem_data();
        let problem = problem(&odometry, &ranges, &landmarks, &config);
        let n = problem.layout.n;
        let x = test_point(n, &landmarks, &problem.layout);
        let (_, jac) = problem.correction(&x);
        let h = 1e-6;
        for k in 0..n {
            let mut plus = x.clone();
            plus[k] += h;
            let mut minus = x.clone();
            minus[k] -= h;
            let numeric = (problem.correction(&plus).0 - problem.correction(&minus).0) / (2.0 * h);
            for a in 0..3 {
                assert!((jac[(a, k)] - numeric[a]).abs() < 1e-6 * (1.0 + numeric[a].abs()), "unknown {k} axis {a}");
            }
        }
    }

    /// A warm start from a solution of the same problem is that solution: the knot
    /// functions survive the re-indexing (here to a different knot period).
    #[test]
    fn warm_start_reproduces_the_knot_functions() {
        let (odometry, ranges, landmarks, mut config) = problem_data();
        let first = solve(&odometry, &ranges, &landmarks, &config, None).unwrap();
        // The landmarks start where the caller says (the filter's estimates): here the
        // first solution's.
        let solved: Vec<LandmarkStart> =
            landmarks.iter().zip(&first.landmarks).map(|(l, b)| LandmarkStart { initial: b.mean, prior: l.prior }).collect();
        let landmarks = solved;
        let again = solve(&odometry, &ranges, &landmarks, &config, Some(&first.warm)).unwrap();
        assert!(again.iterations <= 2, "{} iterations (the first solve took {})", again.iterations, first.iterations);
        // Both stop once the cost (a χ²) moves by < 1e-3: within ~√1e-3 ≈ 0.03
        // standard deviations of the optimum.
        for i in 0..first.state.0.len() {
            let d = (again.state.0[i] - first.state.0[i]).abs();
            assert!(d < 0.05 * first.state.1[(i, i)].sqrt(), "unknown {i}: moved {d}");
        }
        // Half the knot period: the piecewise-linear functions are the same at the old
        // knots and linear between, so E at the end is unchanged before iterating.
        config.knot_period_s = 6.0;
        config.max_iterations = 0;
        let finer = solve(&odometry, &ranges, &landmarks, &config, Some(&first.warm));
        let finer = finer.unwrap();
        assert!((finer.correction.0 - first.correction.0).amax() < 1e-9);
    }

    /// A step with the driver's covariance growth uses that growth instead of the
    /// model: a growth equal to what a model with other standard deviations gives
    /// for the step (here heading ×3, translation ×5, with an anisotropic (x, y) block
    /// whose largest eigenvalue is the model's) gives that model's solution and
    /// evidence; the noise pairs' multipliers scale it the same way.
    #[test]
    fn a_drivers_covariance_growth_replaces_the_model() {
        let (odometry, ranges, landmarks, config) = problem_data();
        let (heading, translation) = (3.0, 5.0);
        let mut scaled = config.clone();
        scaled.odometry_error.translation_std_m_per_sqrt_m *= translation;
        scaled.odometry_error.rotation_std_rad_per_sqrt_rad *= heading;
        scaled.odometry_error.rotation_std_rad_per_sqrt_m *= heading;
        let reference = solve(&odometry, &ranges, &landmarks, &scaled, None).unwrap();
        let growth_of = |model: &OdometryErrorConfig, a: &OdometrySample, b: &OdometrySample| {
            let ds = (b.position - a.position).norm();
            let dphi = wrap(b.heading_rad - a.heading_rad).abs();
            let t = model.translation_std_m_per_sqrt_m.powi(2) * ds;
            let h = model.rotation_std_rad_per_sqrt_rad.powi(2) * dphi
                + model.rotation_std_rad_per_sqrt_m.powi(2) * ds;
            // (x, y) block diag(t, 0.3t) turned by 0.7 rad: largest eigenvalue t, the
            // model's per-axis variance; a yaw–position correlation, which is not used.
            let r = Rotation2::new(0.7).into_inner();
            let xy = r * nalgebra::Matrix2::new(t, 0.0, 0.0, 0.3 * t) * r.transpose();
            Matrix3::new(
                xy[(0, 0)],
                xy[(0, 1)],
                0.1 * t.sqrt() * h.sqrt(),
                xy[(1, 0)],
                xy[(1, 1)],
                0.0,
                0.1 * t.sqrt() * h.sqrt(),
                0.0,
                h,
            )
        };
        let with_growth = |model: &OdometryErrorConfig| -> Vec<OdometrySample> {
            let mut o = odometry.clone();
            for k in 1..o.len() {
                o[k].pose_cov_growth = Some(growth_of(model, &odometry[k - 1], &odometry[k]));
            }
            o
        };
        // The growth as published, and the unscaled growth scaled by the multipliers.
        let published = solve(&with_growth(&scaled.odometry_error), &ranges, &landmarks, &config, None).unwrap();
        let mut multiplied = config.clone();
        multiplied.growth_std_scales = (heading, translation);
        let multiplied = solve(&with_growth(&config.odometry_error), &ranges, &landmarks, &multiplied, None).unwrap();
        let unscaled = solve(&odometry, &ranges, &landmarks, &config, None).unwrap();
        for got in [&published, &multiplied] {
            let (m, c) = (&got.state.0, &got.state.1);
            assert!(
                (m - &reference.state.0).amax() < 1e-6,
                "{}",
                (m - &reference.state.0).amax()
            );
            assert!((c - &reference.state.1).amax() < 1e-6 * reference.state.1.amax());
            assert!(
                (got.log_evidence - reference.log_evidence).abs()
                    < 1e-6 * reference.log_evidence.abs()
            );
        }
        // It matters: the model's own noise gives another solution.
        assert!((unscaled.log_evidence - reference.log_evidence).abs() > 1.0);
        // A growth that overflows the variance sums is refused, not solved.
        let mut junk = odometry.clone();
        junk[5].pose_cov_growth = Some(Matrix3::from_diagonal_element(f64::MAX));
        junk[6].pose_cov_growth = Some(Matrix3::from_diagonal_element(f64::MAX));
        assert!(matches!(
            solve(&junk, &ranges, &landmarks, &config, None),
            Err(SmootherError::NonFinite(_))
        ));
    }

    /// Thinning a full odometry history keeps the growth of every step after the first
    /// kept sample: each kept sample's growth covers the dropped step before it.
    #[test]
    fn thinning_the_odometry_keeps_every_steps_covariance_growth() {
        let mut history = History::new(5, 10);
        let growth = |k: usize| {
            Matrix3::from_diagonal(&Vector3::new(k as f64, 2.0 * k as f64, 1e-3 * k as f64))
        };
        for k in 0..9 {
            let pose = Isometry2::new(Vector2::new(k as f64, 0.0), 0.0);
            history.push_odometry(k as f64, &pose, (k > 0).then(|| growth(k)));
        }
        let kept = &history.odometry;
        assert!(kept.len() < 9 && kept.last().unwrap().stamp_s == 8.0);
        // The sum over the kept steps equals the sum over the original steps after
        // the first kept sample.
        let first = kept[0].stamp_s as usize;
        let want: Matrix3<f64> = (first + 1..9).map(growth).sum();
        let got: Matrix3<f64> = kept[1..].iter().map(|o| o.pose_cov_growth.unwrap()).sum();
        assert!((got - want).amax() < 1e-12, "{got} vs {want}");
        // A step without a growth makes its merged step fall back to the model.
        let mut mixed = History::new(4, 10);
        for k in 0..5 {
            mixed.push_odometry(
                k as f64,
                &Isometry2::new(Vector2::new(k as f64, 0.0), 0.0),
                (k != 3).then(|| growth(k)),
            );
        }
        let merged = mixed.odometry.iter().find(|o| o.stamp_s == 3.0).unwrap();
        assert_eq!(merged.pose_cov_growth, None);
    }

    /// The knot period against its rule worked by hand. A translation walk of
    /// w = 0.01 m²/s, no heading noise, ρ = 4 ranges/s: the shared deviation
    /// w·Δ²·ρ/4 stays ≤ σ² up to Δ = 2σ/√(wρ) = 10σ s, so σ = 0.55 m takes 5 s (20 halved
    /// twice), σ = 1.05 m 10 s, σ = 0.1 m stops at the floor 2.5 s; a heading noise
    /// h = 1e-4 rad²/s at v = 1 m/s adds h·v²·Δ⁴·ρ/192 (at 5 s: 0.0013 m², which keeps
    /// 5 s for σ = 0.55 but not for σ = 0.501: 0.2513 > 0.2510); max_knots then doubles
    /// it to fit.
    #[test]
    fn the_knot_period_halves_while_the_shared_deviation_outweighs_the_ranges() {
        let (.., mut config) = problem_data();
        config.knot_period_s = 20.0;
        let span = 100.0;
        let steps = |h: f64| vec![(h * 0.1, 0.01 * 0.1, 0.1); 1000];
        let period = |config: &SolveConfig, h: f64, span: f64| knot_period_s(config, &steps(h), 400, span);
        for (sigma, want) in [(0.55, 5.0), (1.05, 10.0), (0.1, 2.5), (3.0, 20.0)] {
            config.range_std_m = sigma;
            assert_eq!(period(&config, 0.0, span), want, "σ = {sigma}");
        }
        config.range_std_m = 0.55;
        assert_eq!(period(&config, 1e-4, span), 5.0);
        config.range_std_m = 0.501;
        assert_eq!(period(&config, 0.0, span), 5.0);
        assert_eq!(period(&config, 1e-4, span), 2.5);
        // 400 s at the 2.5 s floor is 161 knots: doubled to 5 s (81) for 128, to 10 s
        // for 64.
        config.range_std_m = 0.1;
        config.max_knots = 128;
        assert_eq!(period(&config, 0.0, 400.0), 5.0);
        config.max_knots = 64;
        assert_eq!(period(&config, 0.0, 400.0), 10.0);
    }

    #[test]
    fn refuses_too_little_data() {
        let (odometry, ranges, landmarks, config) = problem_data();
        assert!(matches!(solve(&odometry[..1], &ranges, &landmarks, &config, None), Err(SmootherError::TooLittleData(_))));
        assert!(matches!(solve(&odometry, &[], &landmarks, &config, None), Err(SmootherError::TooLittleData(_))));
        assert!(matches!(solve(&odometry, &ranges, &landmarks[..1], &config, None), Err(SmootherError::NonFinite(_))));
    }
}
