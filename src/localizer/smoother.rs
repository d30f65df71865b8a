//! Batch range-only SLAM over the whole odometry history (issue 17): the re-solve of
//! the early trajectory that a filter cannot do. Not wired into the localizer yet:
//! `examples/batch_slam.rs` runs it on a bag.
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
//! sideways. Landmarks have a flat prior (their ranges are all in the problem).
//!
//! # Solution
//! Levenberg–Marquardt on the whitened residuals with iteratively re-weighted Huber
//! weights; the dense normal matrix H = JᵀWJ (n = 4(K − 1) + 1 + 2L [+ 2] unknowns;
//! each range touches every heading knot before it, through the prefix sums
//! ∂X_k/∂θ_j = Σ_{i<k} w_j(t_i)·J·R(θ(t_i))·Δp_i). The covariance is H⁻¹ at the
//! optimum (Laplace), and the log evidence −½‖r‖² − ½ log|H| + ½ log|Λ_prior| (up to
//! a constant that does not depend on the odometry noise) lets a caller choose the
//! odometry noise level by marginal likelihood. The knot period grows so that the
//! number of knots stays ≤ `max_knots`: memory O(n²), work per iteration
//! O(R·K² + n³) for R ranges.

use super::drift::OdometryErrorConfig;
use crate::estimator::GaussianBelief;
use nalgebra::{Cholesky, DMatrix, DVector, Matrix3, Rotation2, Vector2, Vector3};

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
}

/// One range: stamp (s), landmark index, the sensor mount in the base frame (m) and
/// the measured range (m).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeSample {
    pub stamp_s: f64,
    pub landmark: usize,
    pub mount_m: Vector2<f64>,
    pub range_m: f64,
}

/// Settings of [`solve`].
#[derive(Debug, Clone, PartialEq)]
pub struct SmootherConfig {
    /// Δ, the knot period, s (grown to keep ≤ `max_knots`).
    pub knot_period_s: f64,
    /// Most knots (≥ 2).
    pub max_knots: usize,
    /// σ, range noise standard deviation, m.
    pub range_std_m: f64,
    /// Huber threshold of the ranges in units of σ.
    pub huber_threshold_sigma: f64,
    /// Huber threshold of the odometry increments in units of their σ; `None` = Gaussian.
    pub odometry_huber_threshold_sigma: Option<f64>,
    /// The odometry error model (its noise scales are not used: scale it first).
    pub odometry_error: OdometryErrorConfig,
    /// Prior of the radio calibration (s, b) when it is estimated; `None` = s = 1, b = 0.
    pub calibration_prior: Option<GaussianBelief<2>>,
    /// Most Levenberg–Marquardt iterations.
    pub max_iterations: usize,
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
    landmark_count: usize,
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
            landmark_count: landmarks,
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

/// Knot index and fraction of a time: t = τ_j + a·Δ, a ∈ [0, 1].
fn knot_of(t: f64, t0: f64, period: f64, knots: usize) -> (usize, f64) {
    let f = ((t - t0) / period).max(0.0);
    let j = (f.floor() as usize).min(knots - 2);
    (j, (f - j as f64).clamp(0.0, 1.0))
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
    config: &'a SmootherConfig,
    layout: Layout,
    period: f64,
    /// Per knot interval: heading-increment variance, translation variance.
    heading_var: Vec<f64>,
    translation_var: Vec<f64>,
}

impl Problem<'_> {
    fn t0(&self) -> f64 {
        self.odometry[0].stamp_s
    }

    fn knot(&self, t: f64) -> (usize, f64) {
        knot_of(t, self.t0(), self.period, self.layout.knots)
    }

    fn theta_at(&self, x: &DVector<f64>, t: f64) -> (usize, f64, f64) {
        let (j, a) = self.knot(t);
        let th = |j: usize| self.layout.theta(j).map_or(0.0, |i| x[i]);
        (j, a, (1.0 - a) * th(j) + a * th(j + 1))
    }

    fn u_at(&self, x: &DVector<f64>, t: f64) -> Vector2<f64> {
        let (j, a) = self.knot(t);
        let u = |j: usize| self.layout.u(j).map_or(Vector2::zeros(), |i| Vector2::new(x[i], x[i + 1]));
        u(j) * (1.0 - a) + u(j + 1) * a
    }

    /// The whitened rows at `x` (ranges first, in time order, then the priors) and
    /// the corrected base position and heading correction at the last sample with
    /// ∂X/∂θ there.
    fn rows(&self, x: &DVector<f64>) -> Vec<Row> {
        let l = &self.layout;
        let cfg = self.config;
        let sigma = cfg.range_std_m;
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
                let f = ((r.stamp_s - o.stamp_s) / (o1.stamp_s - o.stamp_s)).clamp(0.0, 1.0);
                let (jr, ar, thr) = self.theta_at(x, r.stamp_s);
                let heading = o.heading_rad + f * wrap(o1.heading_rad - o.heading_rad) + thr;
                let mount = Rotation2::new(heading) * r.mount_m;
                let sensor = position + inc * f + self.u_at(x, r.stamp_s) + mount;
                let yi = l.landmarks + 2 * r.landmark;
                let y = Vector2::new(x[yi], x[yi + 1]);
                let d = y - sensor;
                let dist = d.norm().max(1e-9);
                let e = d / dist;
                let mut row = Row::new((s * dist + b - r.range_m) / sigma);
                let c = s / sigma;
                // θ: the prefix sums (with this interval's part f·inc), and the mount.
                let perp_inc = perp(&inc) * f;
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
                let (ju, au) = self.knot(r.stamp_s);
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
            let (b0, b1) = (x[l.bias + j], x[l.bias + j + 1]);
            let mut row = Row::new((th(j + 1) - th(j) + 0.5 * (b0 + b1) * self.period) / sd);
            row.push(l.theta(j), -1.0 / sd);
            row.push(l.theta(j + 1), 1.0 / sd);
            row.push(Some(l.bias + j), 0.5 * self.period / sd);
            row.push(Some(l.bias + j + 1), 0.5 * self.period / sd);
            rows.push(row);
            let sd = self.translation_var[j].sqrt();
            let du = u(j + 1) - u(j);
            for axis in 0..2 {
                let mut row = Row::new(du[axis] / sd);
                row.push(l.u(j).map(|i| i + axis), -1.0 / sd);
                row.push(l.u(j + 1).map(|i| i + axis), 1.0 / sd);
                rows.push(row);
            }
            let sd = (q_b * q_b * self.period).max(MIN_VARIANCE).sqrt(); // as in `solve`'s evidence
            let mut row = Row::new((b1 - b0) / sd);
            row.push(Some(l.bias + j), -1.0 / sd);
            row.push(Some(l.bias + j + 1), 1.0 / sd);
            rows.push(row);
        }
        let sd = cfg.odometry_error.gyro_bias_std_rad_per_s.powi(2).max(MIN_VARIANCE).sqrt();
        let mut row = Row::new(x[l.bias] / sd);
        row.push(Some(l.bias), 1.0 / sd);
        rows.push(row);
        for i in 0..2 * l.landmark_count {
            // A flat landmark prior, kept proper: N(0, (1 km)²).
            let mut row = Row::new(1e-3 * x[l.landmarks + i]);
            row.push(Some(l.landmarks + i), 1e-3);
            rows.push(row);
        }
        if let (Some(ci), Some(prior)) = (l.calibration, &cfg.calibration_prior) {
            // Whitened by the prior's Cholesky factor L (Σ = L Lᵀ): r = L⁻¹(x − μ).
            let chol = Cholesky::new(prior.cov).expect("a GaussianBelief is SPD");
            let inv_l = chol.l().try_inverse().expect("triangular and SPD");
            let d = Vector2::new(x[ci], x[ci + 1]) - prior.mean;
            let r = inv_l * d;
            for axis in 0..2 {
                let mut row = Row::new(r[axis]);
                row.push(Some(ci), inv_l[(axis, 0)]);
                row.push(Some(ci + 1), inv_l[(axis, 1)]);
                rows.push(row);
            }
        }
        rows
    }

    /// Huber weights (1 inside the threshold) of the range rows and, with
    /// `odometry_huber_threshold_sigma`, of the odometry rows (heading and translation
    /// increments: a wheel slip is a rare large step, not a Gaussian one).
    fn threshold(&self, row: usize) -> Option<f64> {
        if row < self.ranges.len() {
            return Some(self.config.huber_threshold_sigma);
        }
        let m = row - self.ranges.len();
        (m < 4 * (self.layout.knots - 1) && m % 4 != 3).then_some(self.config.odometry_huber_threshold_sigma?)
    }

    fn weight(&self, row: usize, residual: f64) -> f64 {
        let Some(k) = self.threshold(row) else { return 1.0 };
        if residual.abs() <= k {
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
                let k = self.threshold(i).unwrap_or(f64::INFINITY);
                outliers += usize::from(i < self.ranges.len());
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

/// Solves the batch problem of the module doc from `initial_landmarks` (map frame,
/// e.g. the filter's estimates; the landmark index of a range points into it).
///
/// # Errors
/// [`SmootherError`] for too little data, non-finite input, or a normal matrix that is
/// not positive definite.
pub fn solve(
    odometry: &[OdometrySample],
    ranges: &[RangeSample],
    initial_landmarks: &[Vector2<f64>],
    config: &SmootherConfig,
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
    if ranges.iter().any(|r| !(r.stamp_s.is_finite() && r.range_m.is_finite() && r.mount_m.iter().all(|v| v.is_finite())))
        || ranges.iter().any(|r| r.landmark >= initial_landmarks.len())
    {
        return Err(SmootherError::NonFinite("ranges (or a landmark index without an initial guess)"));
    }
    let t0 = odometry[0].stamp_s;
    let span = odometry[odometry.len() - 1].stamp_s - t0;
    let max_knots = config.max_knots.max(2);
    let period = config.knot_period_s.max(span / (max_knots - 1) as f64).max(1e-6);
    let knots = ((span / period).ceil() as usize + 1).clamp(2, max_knots);
    let layout = Layout::new(knots, initial_landmarks.len(), config.calibration_prior.is_some());
    let mut ranges: Vec<RangeSample> = ranges
        .iter()
        .filter(|r| r.stamp_s >= t0 && r.stamp_s <= odometry[odometry.len() - 1].stamp_s)
        .copied()
        .collect();
    ranges.sort_by(|a, b| a.stamp_s.total_cmp(&b.stamp_s));
    let model = &config.odometry_error;
    let mut heading_var = vec![0.0; knots - 1];
    let mut translation_var = vec![0.0; knots - 1];
    for w in odometry.windows(2) {
        let (j, _) = knot_of(w[0].stamp_s, t0, period, knots);
        let ds = (w[1].position - w[0].position).norm();
        let dphi = wrap(w[1].heading_rad - w[0].heading_rad).abs();
        heading_var[j] += model.rotation_std_rad_per_sqrt_rad.powi(2) * dphi + model.rotation_std_rad_per_sqrt_m.powi(2) * ds;
        translation_var[j] += model.translation_std_m_per_sqrt_m.powi(2) * ds;
    }
    for v in heading_var.iter_mut().chain(translation_var.iter_mut()) {
        *v = v.max(MIN_VARIANCE);
    }
    let problem = Problem { odometry, ranges, config, layout, period, heading_var, translation_var };
    let l = &problem.layout;
    let mut x = DVector::zeros(l.n);
    for (i, y) in initial_landmarks.iter().enumerate() {
        x[l.landmarks + 2 * i] = y.x;
        x[l.landmarks + 2 * i + 1] = y.y;
    }
    if let (Some(ci), Some(prior)) = (l.calibration, &config.calibration_prior) {
        x[ci] = prior.mean.x;
        x[ci + 1] = prior.mean.y;
    }
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
        let candidate = &x + &step;
        let (c, hc, gc, oc) = problem.normal_equations(&candidate);
        if c.is_finite() && c < cost {
            let done = (cost - c) < 1e-9 * cost.max(1.0) || step.amax() < 1e-7;
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
    let chol = Cholesky::new(h.clone()).ok_or(SmootherError::Singular)?;
    let cov = chol.inverse();
    let log_det_h = 2.0 * chol.l().diagonal().iter().map(|v| v.ln()).sum::<f64>();
    // log|Λ_prior| of the rows whose variance depends on the odometry model (the
    // landmark and calibration priors do not).
    let bias_walk_var = (config.odometry_error.gyro_bias_walk_rad_per_s_per_sqrt_s.powi(2) * period).max(MIN_VARIANCE);
    let bias_var = config.odometry_error.gyro_bias_std_rad_per_s.powi(2).max(MIN_VARIANCE);
    let prior_log_det: f64 = problem.heading_var.iter().map(|v| -v.ln()).sum::<f64>()
        + 2.0 * problem.translation_var.iter().map(|v| -v.ln()).sum::<f64>()
        - (knots - 1) as f64 * bias_walk_var.ln()
        - bias_var.ln();
    let log_evidence = -0.5 * cost - 0.5 * log_det_h + 0.5 * prior_log_det;
    let block = |i: usize| -> Result<GaussianBelief<2>, SmootherError> {
        let mean = Vector2::new(x[i], x[i + 1]);
        let c = cov.fixed_view::<2, 2>(i, i).into_owned();
        GaussianBelief::new(mean, (c + c.transpose()) * 0.5).map_err(|_| SmootherError::Singular)
    };
    let landmarks = (0..initial_landmarks.len()).map(|i| block(l.landmarks + 2 * i)).collect::<Result<Vec<_>, _>>()?;
    let calibration = l.calibration.map(block).transpose()?;
    let correction = problem.correction(&x, &cov);
    let b_last = l.bias + l.knots - 1;
    Ok(SmootherSolution {
        landmarks,
        correction,
        gyro_bias: (x[b_last], cov[(b_last, b_last)]),
        calibration,
        log_evidence,
        outlier_fraction: outliers as f64 / problem.ranges.len().max(1) as f64,
        iterations,
    })
}

impl Problem<'_> {
    /// E at the last odometry sample: e_yaw = θ(t_N), e_t = X_N − R(θ_N)·p_N, with
    /// its covariance J Σ Jᵀ through the prefix sums.
    fn correction(&self, x: &DVector<f64>, cov: &DMatrix<f64>) -> (Vector3<f64>, Matrix3<f64>) {
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
        // Jacobian rows (e_x, e_y, e_yaw) over the unknowns.
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
        let (ju, au) = self.knot(last.stamp_s);
        for (jj, w) in [(ju, 1.0 - au), (ju + 1, au)] {
            if let Some(i) = l.u(jj) {
                jac[(0, i)] += w;
                jac[(1, i + 1)] += w;
            }
        }
        let c = &jac * cov * jac.transpose();
        let c = Matrix3::from_iterator(c.iter().copied());
        (e, (c + c.transpose()) * 0.5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A short curved drive with two landmarks, a mount and the calibration.
    fn problem_data() -> (Vec<OdometrySample>, Vec<RangeSample>, Vec<Vector2<f64>>, SmootherConfig) {
        let odometry: Vec<OdometrySample> = (0..200)
            .map(|k| {
                let t = k as f64 * 0.5;
                OdometrySample {
                    stamp_s: 10.0 + t,
                    position: Vector2::new(10.0 * (0.05 * t).sin(), 10.0 * (1.0 - (0.05 * t).cos())),
                    heading_rad: 0.05 * t,
                }
            })
            .collect();
        let ranges = (0..150)
            .map(|i| RangeSample {
                stamp_s: 10.3 + i as f64 * 0.66,
                landmark: i % 2,
                mount_m: Vector2::new(0.3, -0.1),
                range_m: 8.0 + (i % 7) as f64,
            })
            .collect();
        let config = SmootherConfig {
            knot_period_s: 12.0,
            max_knots: 64,
            range_std_m: 0.5,
            huber_threshold_sigma: 1.5,
            odometry_huber_threshold_sigma: Some(2.0),
            odometry_error: OdometryErrorConfig::default(),
            calibration_prior: Some(
                GaussianBelief::new(Vector2::new(1.0, 0.0), Matrix2::new(0.01, 0.001, 0.001, 1.0)).unwrap(),
            ),
            max_iterations: 20,
        };
        (odometry, ranges, vec![Vector2::new(3.0, 12.0), Vector2::new(-4.0, 2.0)], config)
    }

    use nalgebra::Matrix2;

    /// The analytic Jacobian rows against central differences of the residuals.
    #[test]
    fn jacobian_matches_finite_differences() {
        let (odometry, ranges, landmarks, config) = problem_data();
        let layout = Layout::new(10, landmarks.len(), true);
        let problem = Problem {
            odometry: &odometry,
            ranges: ranges.clone(),
            config: &config,
            layout,
            period: 12.0,
            heading_var: vec![1e-4; 9],
            translation_var: vec![1e-2; 9],
        };
        let n = problem.layout.n;
        let mut x = DVector::from_fn(n, |i, _| 0.02 * ((i * 7919) % 13) as f64 - 0.12);
        let l = &problem.layout;
        for (i, y) in landmarks.iter().enumerate() {
            x[l.landmarks + 2 * i] = y.x;
            x[l.landmarks + 2 * i + 1] = y.y;
        }
        x[l.calibration.unwrap()] = 1.03;
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
                let e = (analytic - numeric[i]).abs() / (1.0 + numeric[i].abs());
                worst = worst.max(e);
            }
        }
        assert!(worst < 1e-5, "largest relative Jacobian error {worst}");
    }

    /// The correction's Jacobian (through `correction`'s covariance) against central
    /// differences of E at the last sample.
    #[test]
    fn correction_jacobian_matches_finite_differences() {
        let (odometry, ranges, landmarks, config) = problem_data();
        let problem = Problem {
            odometry: &odometry,
            ranges,
            config: &config,
            layout: Layout::new(10, landmarks.len(), true),
            period: 12.0,
            heading_var: vec![1e-4; 9],
            translation_var: vec![1e-2; 9],
        };
        let n = problem.layout.n;
        let x = DVector::from_fn(n, |i, _| 0.01 * ((i * 31) % 11) as f64 - 0.05);
        let h = 1e-6;
        for k in 0..n {
            // Σ = e_k e_kᵀ makes J Σ Jᵀ = j_k j_kᵀ: its diagonal is the squared column.
            let mut cov = DMatrix::zeros(n, n);
            cov[(k, k)] = 1.0;
            let (_, jj) = problem.correction(&x, &cov);
            let mut plus = x.clone();
            plus[k] += h;
            let mut minus = x.clone();
            minus[k] -= h;
            let numeric = (problem.correction(&plus, &cov).0 - problem.correction(&minus, &cov).0) / (2.0 * h);
            for a in 0..3 {
                assert!((jj[(a, a)] - numeric[a] * numeric[a]).abs() < 1e-6 * (1.0 + numeric[a].powi(2)), "unknown {k} axis {a}");
            }
        }
    }

    #[test]
    fn refuses_too_little_data() {
        let (odometry, ranges, landmarks, config) = problem_data();
        assert!(matches!(solve(&odometry[..1], &ranges, &landmarks, &config), Err(SmootherError::TooLittleData(_))));
        assert!(matches!(solve(&odometry, &[], &landmarks, &config), Err(SmootherError::TooLittleData(_))));
        assert!(matches!(solve(&odometry, &ranges, &landmarks[..1], &config), Err(SmootherError::NonFinite(_))));
    }
}
