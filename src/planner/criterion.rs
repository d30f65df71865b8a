//! The slides' Σ̇ criterion and the D-optimal alternative, evaluated for many candidate
//! sensor positions x against one belief q = N(μ, Σ).
//!
//! At flow time 0 (q = prior), Σ̇(0; x, z) = ½ E_{s~q}[∇²ₛ ln p(z|s)]. For Gaussian
//! range noise ∇²ₛ ln p = (z − h)∇²h/σ² − ∇h∇hᵀ/σ² with h(s) = ‖s − x‖, and because
//! h∇²h + ∇h∇hᵀ = ∇²(½h²) = I this is affine in z:
//!
//! Σ̇(0; x, z) = (z M(x) − I) / (2σ²),  M(x) = E_q[∇²h(s)] = Σ⁻¹ E_q[(s − μ) ∇h(s)ᵀ].
//!
//! M is taken in the Stein form (right-hand side, as the estimator's natural flow does):
//! its integrand is bounded (|∇h| = 1), whereas ∇²h ~ 1/d has infinite Monte-Carlo
//! variance in 2-D when x lies inside the belief. The s-samples are antithetic and
//! moment-matched (sample mean μ and covariance Σ exactly), so the identity
//! Σ⁻¹ E[(s − μ)(s − x)ᵀ] = I behind the affine form holds on the samples too and the
//! Stein estimate is exact for the linear and quadratic parts of ∇h; the same samples are
//! shared by every candidate (common random numbers: smooth heatmaps, stable argmin).
//!
//! ‖Σ̇‖₂ = max(|zλ₁ − 1|, |zλ₂ − 1|)/(2σ²) with λ₁ ≤ λ₂ the eigenvalues of M, a convex
//! piecewise-linear function of z, so E_z over z ~ N(‖x − y‖, σ²) is exact
//! ([`expected_max_abs_affine`]): per candidate one pass over the s-samples gives M, then
//! one closed form per landmark hypothesis y (the true y for the oracle variant, draws
//! y ~ q for the Bayesian one).
//!
//! # Σ-reduction (issue 16): from the rate Σ̇(0) to the slides' stated objective
//!
//! The slides choose x to maximise the expected reduction ‖Σ(T) − Σ(0)‖₂ and fall back
//! on ‖Σ̇(0)‖ because Σ(T) is "not easily accessible". Σ̇(0) itself gives it:
//!
//! 1. **Rate.** With the identity above, −2Σ̇(0; x, z) = G(x, z) = (I − z M(x))/σ²
//!    ([`SigmaDotEvaluator::range_information`]): the expected negative Hessian of
//!    ln p(z|s) under q, i.e. the information one range z at x adds.
//! 2. **One natural step.** The flow Σ̇ = ½(Σ⁻¹ − Σ₀⁻¹ + E_q[∇² ln p(z|s)]) stops where
//!    Σ⁻¹ = Σ₀⁻¹ + G evaluated at that q. One natural-gradient (precision) step of unit
//!    length from q = q₀, with the expectation frozen at q₀, lands at Σ₁⁻¹ = Σ₀⁻¹ + G(x, z)
//!    = Σ₀⁻¹ − 2Σ̇(0). G is indefinite where z exceeds 1/λ(M) (the range ring is wider than
//!    the belief's curvature: predicted *growth* along the ring); a precision can only gain
//!    from a measurement, so only the contracting directions are kept: G₊ = V max(Λ, 0) Vᵀ
//!    (closed-form 2 × 2; M and G share eigenvectors). For a linear-Gaussian measurement
//!    G = HᵀH/σ² ⪰ 0 and Σ₁ is exactly the Kalman posterior.
//! 3. **Reduction.** r(x, z) = λmax(Σ − Σ₁) = ‖Σ − Σ₁‖₂ (Σ − Σ₁ ⪰ 0), computed without
//!    cancellation as Σ(I + G₊Σ)⁻¹G₊Σ (Woodbury) ([`one_step_reduction`]).
//!
//! The criterion takes E_z outside the norm: J(x) = E_y E_t[r(x, ‖x − y‖ + σt)], y over the
//! landmark hypotheses (draws y ~ q) and t over a Gauss–Hermite rule for N(0, 1)
//! ([`SigmaDotEvaluator::expected_sigma_reduction`]); per candidate one pass over the
//! s-samples for M(x), then 2 × 2 closed forms per (y, t) node. The cheaper
//! expected-Fisher form replaces G by E_s[u(s)u(s)ᵀ]/σ², u(s) = (s − x)/‖s − x‖
//! (PSD, no y or z quadrature; [`SigmaDotEvaluator::expected_fisher_reduction`]).

use nalgebra::{Matrix2, Vector2};
use rand::Rng;
use rand_distr::StandardNormal;

use super::error::PlannerError;
use crate::config::ConfigError;
use super::normal::expected_max_abs_affine;
use crate::estimator::belief::symmetric_eigen;
use crate::estimator::model::RANGE_DISTANCE_FLOOR_M;
use crate::estimator::{GaussianBelief, StandardNode};

/// Where the landmark y that generates z ~ N(‖x − y‖, σ²) comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LandmarkHypothesis {
    /// Oracle variant: the true landmark position y, metres (simulation only).
    Known(Vector2<f64>),
    /// Bayesian variant: `draws` samples y ~ q of the belief itself.
    FromBelief {
        /// Number of landmark draws (shared by every candidate).
        draws: usize,
    },
}

/// Precomputed samples of one belief; evaluates the criteria at any candidate x.
#[derive(Clone, Debug)]
pub struct SigmaDotEvaluator {
    belief: GaussianBelief<2>,
    noise_var_m2: f64,
    noise_std_m: f64,
    /// s-samples, metres (structure of arrays for a vectorisable inner loop).
    sample_x: Vec<f64>,
    sample_y: Vec<f64>,
    /// Σ⁻¹(s − μ) = L⁻ᵀε per sample, 1/m.
    white_x: Vec<f64>,
    white_y: Vec<f64>,
    /// Standard-normal nodes ε with equal weights (for checks against `flow::kl_gradient`).
    nodes: Vec<StandardNode<2>>,
    /// Landmark hypotheses y, metres.
    landmarks: Vec<Vector2<f64>>,
    /// Standard-normal points η behind the drawn hypotheses y = μ + Lη (empty for a
    /// known landmark), kept so [`SigmaDotEvaluator::with_covariance`] can reuse them.
    landmark_normals: Vec<Vector2<f64>>,
}

/// `count` (rounded up to even) antithetic standard-normal points transformed so that
/// their sample mean is 0 and their sample covariance (1/n)Σεεᵀ is exactly I.
pub fn moment_matched_normal_nodes<R: Rng>(count: usize, rng: &mut R) -> Vec<Vector2<f64>> {
    let pairs = count.div_ceil(2).max(1);
    let mut points = Vec::with_capacity(2 * pairs);
    for _ in 0..pairs {
        let e = Vector2::new(rng.sample(StandardNormal), rng.sample(StandardNormal));
        points.push(e);
        points.push(-e);
    }
    let n = points.len() as f64;
    let second: Matrix2<f64> = points.iter().map(|e| e * e.transpose()).sum::<Matrix2<f64>>() / n;
    // ε ← C⁻¹ᐟ² ε with C = L_C L_Cᵀ: ε ← L_C⁻¹ ε has sample covariance I (a sample
    // covariance of two or more antithetic pairs in general position is SPD).
    if let Some(chol) = nalgebra::Cholesky::new(second) {
        for e in &mut points {
            *e = chol.l().solve_lower_triangular(e).unwrap_or(*e);
        }
    }
    points
}

/// Eigenvalues (λ₁ ≤ λ₂) of the symmetric 2 × 2 matrix [[a, b], [b, c]].
#[inline]
fn symmetric_eigenvalues(a: f64, b: f64, c: f64) -> (f64, f64) {
    let mid = 0.5 * (a + c);
    let half_diff = 0.5 * (a - c);
    let radius = (half_diff * half_diff + b * b).sqrt();
    (mid - radius, mid + radius)
}

impl SigmaDotEvaluator {
    /// Draws `belief_samples` moment-matched antithetic samples s ~ q and the landmark
    /// hypotheses, once, for all candidates.
    ///
    /// # Errors
    /// `InvalidBelief` for a belief that is not publishable, `InvalidNoiseVariance` for σ²
    /// not finite or ≤ 0, `InvalidPosition` for a non-finite known landmark,
    /// `Config` for zero samples or draws.
    pub fn new<R: Rng>(
        belief: &GaussianBelief<2>,
        noise_var_m2: f64,
        belief_samples: usize,
        landmark: LandmarkHypothesis,
        rng: &mut R,
    ) -> Result<Self, PlannerError> {
        let belief = GaussianBelief::new(belief.mean, belief.cov)?;
        if !(noise_var_m2.is_finite() && noise_var_m2 > 0.0) {
            return Err(PlannerError::InvalidNoiseVariance(noise_var_m2));
        }
        if belief_samples == 0 {
            return Err(ConfigError::invalid("criterion.belief_samples", 0, ">= 1").into());
        }
        let l = belief.cholesky()?.l();
        let l_inv_t = l
            .transpose()
            .solve_upper_triangular(&Matrix2::identity())
            .ok_or_else(|| PlannerError::InvalidBelief(crate::estimator::EstimatorError::NonFinite {
                quantity: "belief Cholesky factor",
                value: format!("{l:?}"),
            }))?;
        let eps = moment_matched_normal_nodes(belief_samples, rng);
        let weight = 1.0 / eps.len() as f64;
        let mut ev = Self {
            belief,
            noise_var_m2,
            noise_std_m: noise_var_m2.sqrt(),
            sample_x: Vec::with_capacity(eps.len()),
            sample_y: Vec::with_capacity(eps.len()),
            white_x: Vec::with_capacity(eps.len()),
            white_y: Vec::with_capacity(eps.len()),
            nodes: Vec::with_capacity(eps.len()),
            landmarks: Vec::new(),
            landmark_normals: Vec::new(),
        };
        for e in &eps {
            let s = belief.mean + l * e;
            let w = l_inv_t * e;
            ev.sample_x.push(s.x);
            ev.sample_y.push(s.y);
            ev.white_x.push(w.x);
            ev.white_y.push(w.y);
            ev.nodes.push(StandardNode { point: *e, weight });
        }
        ev.landmarks = match landmark {
            LandmarkHypothesis::Known(y) => {
                if !y.iter().all(|v| v.is_finite()) {
                    return Err(PlannerError::InvalidPosition { quantity: "known landmark", value: [y.x, y.y] });
                }
                vec![y]
            }
            LandmarkHypothesis::FromBelief { draws } => {
                if draws == 0 {
                    return Err(ConfigError::invalid("criterion.landmark_draws", 0, ">= 1").into());
                }
                ev.landmark_normals =
                    (0..draws).map(|_| Vector2::new(rng.sample(StandardNormal), rng.sample(StandardNormal))).collect();
                ev.landmark_normals.iter().map(|e| belief.mean + l * e).collect()
            }
        };
        Ok(ev)
    }

    /// The evaluator of the belief N(μ, `cov`) (same mean) on the same standard-normal
    /// points (s = μ + L'ε, y = μ + L'η with L' the Cholesky factor of `cov`): common
    /// random numbers for the receding horizon's predicted beliefs. A known landmark stays.
    ///
    /// # Errors
    /// `InvalidBelief` when N(μ, `cov`) is not finite and SPD.
    pub fn with_covariance(&self, cov: &Matrix2<f64>) -> Result<Self, PlannerError> {
        let belief = GaussianBelief::new(self.belief.mean, *cov)?;
        let l = belief.cholesky()?.l();
        let l_inv_t = l.transpose().solve_upper_triangular(&Matrix2::identity()).ok_or_else(|| {
            PlannerError::InvalidBelief(crate::estimator::EstimatorError::NonFinite {
                quantity: "belief Cholesky factor",
                value: format!("{l:?}"),
            })
        })?;
        let mut ev = self.clone();
        ev.belief = belief;
        for (i, node) in self.nodes.iter().enumerate() {
            let s = belief.mean + l * node.point;
            let w = l_inv_t * node.point;
            ev.sample_x[i] = s.x;
            ev.sample_y[i] = s.y;
            ev.white_x[i] = w.x;
            ev.white_y[i] = w.y;
        }
        if !self.landmark_normals.is_empty() {
            ev.landmarks = self.landmark_normals.iter().map(|e| belief.mean + l * e).collect();
        }
        Ok(ev)
    }

    /// The belief q the samples come from.
    pub fn belief(&self) -> &GaussianBelief<2> {
        &self.belief
    }

    /// The standard-normal nodes ε behind the s-samples (s = μ + Lε), equal weights.
    pub fn nodes(&self) -> &[StandardNode<2>] {
        &self.nodes
    }

    /// The landmark hypotheses y, metres.
    pub fn landmarks(&self) -> &[Vector2<f64>] {
        &self.landmarks
    }

    /// M(x) = E_q[∇²h(s)] in Stein form sym(Σ⁻¹ E[(s − μ)∇h(s)ᵀ]), 1/m, on the samples;
    /// ∇h = (s − x)/‖s − x‖ (0 below the estimator's distance floor).
    pub fn expected_range_hessian(&self, x: &Vector2<f64>) -> Matrix2<f64> {
        let (a, b, c, d) = self.stein_sums(x.x, x.y);
        let off = 0.5 * (b + c);
        Matrix2::new(a, off, off, d)
    }

    /// Σ w uᵀ summed in four lanes (so the loop vectorises), divided by n:
    /// (Σw_x u_x, Σw_x u_y, Σw_y u_x, Σw_y u_y)/n.
    #[inline]
    fn stein_sums(&self, x0: f64, y0: f64) -> (f64, f64, f64, f64) {
        const LANES: usize = 4;
        const FLOOR2: f64 = RANGE_DISTANCE_FLOOR_M * RANGE_DISTANCE_FLOOR_M;
        let mut acc = [[0.0f64; LANES]; 4];
        let n = self.sample_x.len();
        let full = n - n % LANES;
        let term = |i: usize| {
            let dx = self.sample_x[i] - x0;
            let dy = self.sample_y[i] - y0;
            let r2 = dx * dx + dy * dy;
            let inv = if r2 > FLOOR2 { 1.0 / r2.sqrt() } else { 0.0 };
            let (ux, uy) = (dx * inv, dy * inv);
            let (wx, wy) = (self.white_x[i], self.white_y[i]);
            (wx * ux, wx * uy, wy * ux, wy * uy)
        };
        for base in (0..full).step_by(LANES) {
            // Four independent partial sums per entry: the explicit lane index is what lets
            // the compiler keep them in one SIMD register.
            #[allow(clippy::needless_range_loop)]
            for lane in 0..LANES {
                let t = term(base + lane);
                acc[0][lane] += t.0;
                acc[1][lane] += t.1;
                acc[2][lane] += t.2;
                acc[3][lane] += t.3;
            }
        }
        let mut sums = [0.0f64; 4];
        for (k, s) in sums.iter_mut().enumerate() {
            *s = acc[k].iter().sum();
        }
        for i in full..n {
            let t = term(i);
            sums[0] += t.0;
            sums[1] += t.1;
            sums[2] += t.2;
            sums[3] += t.3;
        }
        let inv_n = 1.0 / n as f64;
        (sums[0] * inv_n, sums[1] * inv_n, sums[2] * inv_n, sums[3] * inv_n)
    }

    /// Σ̇(0; x, z) = (z M(x) − I)/(2σ²), m⁻² per unit flow time, for one measured range z
    /// (metres) at x.
    pub fn sigma_dot(&self, x: &Vector2<f64>, z: f64) -> Matrix2<f64> {
        (self.expected_range_hessian(x) * z - Matrix2::identity()) / (2.0 * self.noise_var_m2)
    }

    /// J(x) = E_y E_z ‖Σ̇(0; x, z)‖₂, z ~ N(‖x − y‖, σ²), y over the landmark hypotheses;
    /// Monte Carlo over s, exact in z.
    pub fn expected_sigma_dot_norm(&self, x: &Vector2<f64>) -> f64 {
        let (a, b, c, d) = self.stein_sums(x.x, x.y);
        let (l1, l2) = symmetric_eigenvalues(a, 0.5 * (b + c), d);
        let sum: f64 = self
            .landmarks
            .iter()
            .map(|y| expected_max_abs_affine(l1, l2, (x - y).norm(), self.noise_std_m))
            .sum();
        sum / (self.landmarks.len() as f64 * 2.0 * self.noise_var_m2)
    }

    /// The slides' far-field closed form, averaged over the landmark hypotheses:
    /// J_ff(x) = E_y max(1, |‖x − y‖/‖x − μ‖ − 1|)/(2σ²) (‖E_z Σ̇‖₂ with E_s f(s) ≈ f(μ));
    /// ‖x − μ‖ is floored at the estimator's distance floor.
    pub fn far_field_sigma_dot_norm(&self, x: &Vector2<f64>) -> f64 {
        let d_mean = (x - self.belief.mean).norm().max(RANGE_DISTANCE_FLOOR_M);
        let sum: f64 = self.landmarks.iter().map(|y| ((x - y).norm() / d_mean - 1.0).abs().max(1.0)).sum();
        sum / (self.landmarks.len() as f64 * 2.0 * self.noise_var_m2)
    }

    /// G(x, z) = −2Σ̇(0; x, z) = (I − z M(x))/σ², 1/m²: the information one range z
    /// (metres) at x adds in one natural step of the flow (indefinite for large z).
    pub fn range_information(&self, x: &Vector2<f64>, z: f64) -> Matrix2<f64> {
        (Matrix2::identity() - self.expected_range_hessian(x) * z) / self.noise_var_m2
    }

    /// The `sigma_reduction` criterion (natural step), m²:
    /// J(x) = E_y E_t[λmax(Σ − (Σ⁻¹ + G₊(x, ‖x − y‖ + σt))⁻¹)], y over the landmark
    /// hypotheses, t over `range_rule` (nodes and weights for N(0, 1), e.g.
    /// [`crate::estimator::cubature::gauss_hermite_1d`]); G₊ is G with negative
    /// eigenvalues clipped (see the module doc). One pass over the s-samples for M(x);
    /// M and G share eigenvectors, so G₊ = Σₖ max(0, 1 − zλₖ)/σ² vₖvₖᵀ.
    pub fn expected_sigma_reduction(&self, x: &Vector2<f64>, range_rule: &[(f64, f64)]) -> f64 {
        let cov = &self.belief.cov;
        let mut total = 0.0;
        self.for_each_clipped_rate(x, range_rule, |w, g| total += w * psd_step_reduction(cov, g));
        total / self.landmarks.len() as f64
    }

    /// Calls `f(weight, G₊(x, z))` for every (y, t) node of E_y E_t: z = ‖x − y‖ + σt,
    /// G₊ = Σₖ max(0, 1 − zλₖ)/σ² vₖvₖᵀ from M(x)'s eigenpairs (computed once).
    fn for_each_clipped_rate(&self, x: &Vector2<f64>, range_rule: &[(f64, f64)], mut f: impl FnMut(f64, &Matrix2<f64>)) {
        let (vals, vecs) = symmetric_eigen(&self.expected_range_hessian(x));
        let (v0, v1): (Vector2<f64>, Vector2<f64>) = (vecs.column(0).into_owned(), vecs.column(1).into_owned());
        let (p0, p1) = (v0 * v0.transpose(), v1 * v1.transpose());
        let inv_var = 1.0 / self.noise_var_m2;
        for y in &self.landmarks {
            let distance = (x - y).norm();
            for &(t, w) in range_rule {
                let z = distance + self.noise_std_m * t;
                let g0 = (1.0 - z * vals[0]).max(0.0) * inv_var;
                let g1 = (1.0 - z * vals[1]).max(0.0) * inv_var;
                f(w, &(p0 * g0 + p1 * g1));
            }
        }
    }

    /// The predicted posterior covariance behind [`Self::expected_sigma_reduction`], m²:
    /// E_y E_t[(Σ⁻¹ + G₊(x, ‖x − y‖ + σt))⁻¹], the mean over the same (y, t) nodes (SPD:
    /// a mean of SPD matrices). The receding horizon continues from N(μ, this).
    pub fn expected_posterior_cov(&self, x: &Vector2<f64>, range_rule: &[(f64, f64)]) -> Matrix2<f64> {
        let cov = &self.belief.cov;
        let mut total = Matrix2::zeros();
        self.for_each_clipped_rate(x, range_rule, |w, g| total += psd_step_posterior(cov, g) * w);
        let mean = total / self.landmarks.len() as f64;
        0.5 * (mean + mean.transpose())
    }

    /// The expected-Fisher predicted posterior (Σ⁻¹ + E_s[u(s)u(s)ᵀ]/σ²)⁻¹, m².
    pub fn expected_fisher_posterior_cov(&self, x: &Vector2<f64>) -> Matrix2<f64> {
        psd_step_posterior(&self.belief.cov, &self.expected_fisher_information(x))
    }

    /// E_s[u(s)u(s)ᵀ]/σ², 1/m²: the expected Fisher information of one range at x,
    /// u(s) = (s − x)/‖s − x‖ (0 below the estimator's distance floor).
    pub fn expected_fisher_information(&self, x: &Vector2<f64>) -> Matrix2<f64> {
        const FLOOR2: f64 = RANGE_DISTANCE_FLOOR_M * RANGE_DISTANCE_FLOOR_M;
        let (mut xx, mut xy, mut yy) = (0.0, 0.0, 0.0);
        for (sx, sy) in self.sample_x.iter().zip(&self.sample_y) {
            let dx = sx - x.x;
            let dy = sy - x.y;
            let r2 = dx * dx + dy * dy;
            if r2 > FLOOR2 {
                let inv = 1.0 / r2;
                xx += dx * dx * inv;
                xy += dx * dy * inv;
                yy += dy * dy * inv;
            }
        }
        let scale = 1.0 / (self.sample_x.len() as f64 * self.noise_var_m2);
        Matrix2::new(xx, xy, xy, yy) * scale
    }

    /// The `sigma_reduction` criterion, expected-Fisher form, m²:
    /// λmax(Σ − (Σ⁻¹ + E_s[u(s)u(s)ᵀ]/σ²)⁻¹).
    pub fn expected_fisher_reduction(&self, x: &Vector2<f64>) -> f64 {
        psd_step_reduction(&self.belief.cov, &self.expected_fisher_information(x))
    }

    /// D-optimal criterion, nats: the expected log-det information gain of one range
    /// measurement at x, E_{s~q}[½ ln det(I + Σ ∇h(s)∇h(s)ᵀ/σ²)] =
    /// E_{s~q}[½ ln(1 + u(s)ᵀ Σ u(s)/σ²)], u(s) = (s − x)/‖s − x‖ (the EKF gain linearised
    /// at each hypothesis s, averaged over the belief).
    pub fn expected_information_gain(&self, x: &Vector2<f64>) -> f64 {
        let cov = self.belief.cov / self.noise_var_m2;
        let (cxx, cxy, cyy) = (cov[(0, 0)], cov[(0, 1)], cov[(1, 1)]);
        let n = self.sample_x.len();
        let mut total = 0.0;
        for i in 0..n {
            let dx = self.sample_x[i] - x.x;
            let dy = self.sample_y[i] - x.y;
            let r2 = dx * dx + dy * dy;
            if r2 > RANGE_DISTANCE_FLOOR_M * RANGE_DISTANCE_FLOOR_M {
                total += ((cxx * dx * dx + 2.0 * cxy * dx * dy + cyy * dy * dy) / r2).ln_1p();
            }
        }
        0.5 * total / n as f64
    }
}

/// Predicted reduction of one natural (precision) step with information `info` (1/m²):
/// r = λmax(Σ − (Σ⁻¹ + I₊)⁻¹), m², where I₊ is `info` with its negative eigenvalues
/// clipped to 0, evaluated as λmax(Σ(I + I₊Σ)⁻¹I₊Σ) (Woodbury; no cancellation, and
/// det(I + I₊Σ) ≥ 1). For a linear-Gaussian measurement z = Hs + w, info = HᵀH/σ² gives
/// the Kalman covariance reduction ΣHᵀHΣ/(HΣHᵀ + σ²).
pub fn one_step_reduction(cov: &Matrix2<f64>, info: &Matrix2<f64>) -> f64 {
    let (vals, vecs) = symmetric_eigen(info);
    let mut clipped = Matrix2::zeros();
    for k in 0..2 {
        if vals[k] > 0.0 {
            let v: Vector2<f64> = vecs.column(k).into_owned();
            clipped += v * v.transpose() * vals[k];
        }
    }
    psd_step_reduction(cov, &clipped)
}

/// λmax(Σ(I + GΣ)⁻¹GΣ) for a PSD G (2 × 2 closed forms).
#[inline]
fn psd_step_reduction(cov: &Matrix2<f64>, info_psd: &Matrix2<f64>) -> f64 {
    let gs = info_psd * cov;
    let b = Matrix2::identity() + gs;
    let det = b[(0, 0)] * b[(1, 1)] - b[(0, 1)] * b[(1, 0)];
    let b_inv = Matrix2::new(b[(1, 1)], -b[(0, 1)], -b[(1, 0)], b[(0, 0)]) / det;
    let d = cov * b_inv * gs;
    symmetric_eigenvalues(d[(0, 0)], 0.5 * (d[(0, 1)] + d[(1, 0)]), d[(1, 1)]).1.max(0.0)
}

/// (Σ⁻¹ + G)⁻¹ = Σ − Σ(I + GΣ)⁻¹GΣ for a PSD G (Woodbury, 2 × 2 closed forms), symmetrised.
#[inline]
fn psd_step_posterior(cov: &Matrix2<f64>, info_psd: &Matrix2<f64>) -> Matrix2<f64> {
    let gs = info_psd * cov;
    let b = Matrix2::identity() + gs;
    let det = b[(0, 0)] * b[(1, 1)] - b[(0, 1)] * b[(1, 0)];
    let b_inv = Matrix2::new(b[(1, 1)], -b[(0, 1)], -b[(1, 0)], b[(0, 0)]) / det;
    let p = cov - cov * b_inv * gs;
    0.5 * (p + p.transpose())
}

/// Spectral norm ‖A‖₂ of a symmetric 2 × 2 matrix (largest |eigenvalue|).
pub fn symmetric_spectral_norm(a: &Matrix2<f64>) -> f64 {
    let (vals, _) = symmetric_eigen(a);
    vals.amax()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn moment_matched_nodes_have_exact_first_two_moments() {
        let mut rng = StdRng::seed_from_u64(3);
        let pts = moment_matched_normal_nodes(64, &mut rng);
        let n = pts.len() as f64;
        let mean: Vector2<f64> = pts.iter().sum::<Vector2<f64>>() / n;
        let cov: Matrix2<f64> = pts.iter().map(|e| e * e.transpose()).sum::<Matrix2<f64>>() / n;
        assert!(mean.norm() < 1e-14);
        assert!((cov - Matrix2::identity()).amax() < 1e-13);
    }

    #[test]
    fn eigenvalues_match_jacobi() {
        let m = Matrix2::new(0.3, -0.12, -0.12, 0.05);
        let (l1, l2) = symmetric_eigenvalues(m[(0, 0)], m[(0, 1)], m[(1, 1)]);
        let (vals, _) = symmetric_eigen(&m);
        let (j1, j2) = (vals.min(), vals.max());
        assert!((l1 - j1).abs() < 1e-14 && (l2 - j2).abs() < 1e-14);
    }
}
