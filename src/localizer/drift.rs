//! Drifting odometry (issue 17): the odometry's error as a state, its first-order
//! (EKF-style) propagation over an odometry step, and the map pose it implies (the
//! joint state of `slam.rs` propagates its drift block with it).
//!
//! # Model
//!
//! Planar poses are (x, y, yaw) in metres and radians, composed as
//! a ⊕ b = (t_a + R(θ_a) t_b, θ_a + θ_b), R(θ) the 2-D rotation, J = [[0, −1], [1, 0]]
//! (so dR(θ)/dθ = J R(θ)).
//!
//! - P_k = (p_k, φ_k): the odometry's pose of the base in the odometry frame (what
//!   `nav_msgs/Odometry` reports).
//! - X_k: the true pose of the base in the map frame.
//! - E_k = (e_t, e_θ) = (ex, ey, eyaw), the odom→map correction: X_k = E_k ⊕ P_k.
//! - b: the gyro bias, rad/s: the odometry's heading change over dt is the true one
//!   plus b·dt, so the true heading change is the measured one − b·dt.
//! - The state is x = (ex, ey, eyaw, b) (m, m, rad, rad/s) with mean and covariance
//!   ([`DriftState`]).
//!
//! One odometry step from P_k to P_{k+1} (taking dt seconds) reports the increment
//! u = P_k⁻¹ ⊕ P_{k+1} = (t, Δθ) in the robot frame at P_k; Δs = ‖t‖ (the chord, equal
//! to the path length for the small steps odometry comes in). The true increment is
//!
//! ```text
//! t̃ = t + n_t · t/‖t‖,          n_t ~ N(0, σ_t²·Δs)                 (along the motion)
//! Δθ̃ = Δθ − b_k·dt + n_θ,        n_θ ~ N(0, σ_r²·|Δθ| + σ_rm²·Δs)
//! b_{k+1} = b_k + n_b,           n_b ~ N(0, q_b²·dt)
//! X_{k+1} = X_k ⊕ (t̃, Δθ̃)
//! ```
//!
//! with σ_t, σ_r, σ_rm, q_b from [`OdometryErrorConfig`]. Translation and heading noise
//! are random walks in distance (variance additive over steps), so the model does not
//! depend on how finely the odometry is sampled. Eliminating X through
//! E_{k+1} = X_{k+1} ⊕ P_{k+1}⁻¹ gives, with q = p_{k+1} = p_k + R(φ_k) t the odometry
//! position at the end of the step and δθ = −b_k·dt + n_θ,
//!
//! ```text
//! e_θ' = e_θ + δθ
//! e_t' = e_t + [R(e_θ) − R(e_θ + δθ)]·q + n_t · R(e_θ + φ_k)·t/‖t‖
//! b'   = b + n_b
//! ```
//!
//! (perfect odometry, δθ = 0 and n_t = 0, leaves E unchanged). A heading error rotates
//! the odometry frame about the map origin, hence the lever arm q. The propagation
//! ([`OdometryErrorModel::propagate`]) is the EKF's: mean x' = f(x̄, u, 0),
//! covariance Σ' = F Σ Fᵀ + G W Gᵀ, symmetrised, with W = diag(σ_t²Δs,
//! σ_r²|Δθ| + σ_rm²Δs, q_b²dt), evaluated at the mean (δθ̄ = −b̄·dt):
//!
//! ```text
//!        ⎡ I₂  J[R(ē_θ) − R(ē_θ + δθ̄)]q   dt·J R(ē_θ + δθ̄) q ⎤        ⎡ R(ē_θ+φ)t/‖t‖  −J R(ē_θ + δθ̄) q  0 ⎤
//!   F =  ⎢ 0   1                          −dt               ⎥   G =  ⎢ 0               1                  0 ⎥
//!        ⎣ 0   0                          1                 ⎦        ⎣ 0               0                  1 ⎦
//! ```
//!
//! (rows ex, ey | eyaw | b; columns of G: n_t, n_θ, n_b). This is exact for the
//! covariance up to terms of order σ² relative (E[cos n_θ] = 1 − σ²/2…): a heading
//! uncertainty σ_θ biases the mean of e_t by about σ_θ²/2·‖q‖ and its covariance by
//! a relative O(σ_θ²). That bias lies along q, the thin direction of the linearised
//! covariance (the EKF's "banana"): with the defaults, 100 s and 50 m of odometry
//! alone (σ_θ ≈ 0.14 rad, ‖q‖ up to 39 m) put the Monte Carlo mean 0.76 whitened
//! units from the propagated one, though each standard deviation is within 6 %
//! (tests/odometry_drift.rs). Range updates that keep σ_θ small keep the
//! linearisation good; long dead reckoning calls for relinearising.
//!
//! # What is not estimated
//!
//! - The map frame itself: range-only observations of static landmarks whose
//!   positions are unknown are invariant to a global translation and rotation of
//!   everything. It is fixed by the first pose: E₀ = 0 with zero covariance
//!   ([`OdometryErrorModel::initial_state`]), so the map frame is the odometry frame at
//!   the first odometry message and the uncertainty grows from there.
//! - The wheel scale against the radio's range scale: a systematic odometry scale
//!   error w and a range scale s (the localizer's calibration) trade off exactly (the
//!   ranges see s/w), so the state estimates s/w and the map comes out in the
//!   odometry's units: scaled by w about where the odometry started. The published
//!   covariances carry that scale's uncertainty ([`map_scale_variance`]); the joint
//!   state, conditioned on w = 1, does not (no range can reduce it).
//! - Lateral slip: translation noise is along the motion; sideways errors come from
//!   heading errors.

use crate::config::{check_range, ConfigError};
use nalgebra::{
    DMatrix, Isometry2, Isometry3, Matrix3, Matrix4, Matrix4x3, SMatrix, SymmetricEigen, Vector2, Vector3, Vector4,
};
use serde::{Deserialize, Serialize};

/// Index of ex (m) in the drift state.
pub const EX: usize = 0;
/// Index of ey (m) in the drift state.
pub const EY: usize = 1;
/// Index of eyaw (rad) in the drift state.
pub const EYAW: usize = 2;
/// Index of the gyro bias b (rad/s) in the drift state.
pub const BIAS: usize = 3;

/// Relative asymmetry |Σ − Σᵀ|_max / |Σ|_max accepted as symmetric (as for beliefs).
const SYMMETRY_TOLERANCE: f64 = 1e-9;
/// Smallest eigenvalue accepted as ≥ 0, relative to |Σ|_max (round-off of F Σ Fᵀ).
const PSD_TOLERANCE: f64 = 1e-9;
/// Relative asymmetry accepted in a `nav_msgs/Odometry` covariance (drivers often
/// fill it from float32 values).
const MESSAGE_SYMMETRY_TOLERANCE: f64 = 1e-6;

/// Noise of wheel odometry with a gyro, for a generic wheeled robot (wheel encoders,
/// consumer MEMS gyro calibrated at start-up). The defaults are meant as a safe
/// middle of what such robots achieve, not a fit to any data set: too small a noise
/// makes a filter overconfident, which a range update cannot undo, so where the
/// literature gives a range the default is in its upper half.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OdometryErrorConfig {
    /// σ_t, translation noise along the motion, m per √m travelled (variance σ_t²·Δs).
    /// Default 0.05: 5 cm after 1 m, 16 cm (1.6 %) after 10 m, 0.5 m (0.5 %) after
    /// 100 m, within the 1–5 % of distance usually quoted for wheel odometry over
    /// the 1–25 m between landmark sightings. A systematic scale error is
    /// `distance_scale_std`. Allowed [0, 1].
    pub translation_std_m_per_sqrt_m: f64,
    /// σ_r, heading noise per √rad turned, rad/√rad (variance σ_r²·|Δθ|). Default
    /// 0.02: 0.05 rad (2.9°, 0.8 %) per full turn, the scale-factor error of a
    /// consumer MEMS gyro (0.5–1 %). Allowed [0, 1].
    pub rotation_std_rad_per_sqrt_rad: f64,
    /// σ_rm, heading noise per √m travelled, rad/√m (variance σ_rm²·Δs): wheel slip
    /// and floor unevenness turning the robot while it drives straight. Default 0.01:
    /// 1.8° after 10 m, 5.7° after 100 m (encoder-only heading on ordinary floors
    /// drifts a few degrees per 10 m; a gyro does better, hence the lower half of
    /// that, but the gyro's own drift is in the two bias parameters). Allowed [0, 1].
    pub rotation_std_rad_per_sqrt_m: f64,
    /// q_b, random walk of the gyro bias, rad/s per √s (variance q_b²·dt). Default
    /// 1e-4: the rate random walk of consumer MEMS gyros is 1e-5 to 1e-4 rad/s/√s
    /// (visual-inertial packages default to 2e-5 to 1e-4); after 100 s the bias has
    /// wandered by 1e-3 rad/s (0.06 °/s). 0 for odometry without a gyro. Allowed
    /// [0, 0.1].
    pub gyro_bias_walk_rad_per_s_per_sqrt_s: f64,
    /// σ_b, standard deviation of the gyro bias at start, rad/s. Default 1e-3
    /// (0.057 °/s): a consumer MEMS gyro averaged while standing still at start-up
    /// keeps 0.01–0.1 °/s. 0 for odometry without a gyro. Allowed [0, 1].
    pub gyro_bias_std_rad_per_s: f64,
    /// Multipliers c of the four noise standard deviations above (σ_t, σ_r, σ_rm,
    /// q_b; not σ_b): how much a robot's odometry drifts is known to an order of
    /// magnitude at best, so the localizer runs the joint state under each multiplier
    /// and weighs them by how well each predicted the ranges (an IMM filter,
    /// `localizer::imm`). Default [1, 0.1, 0.01]: the generic defaults above, down to
    /// odometry that barely drifts (the pose of a localisation stack). A single value
    /// is a single model (cheapest: the per-range cost is proportional to the number of
    /// values). The batch re-solve (`localizer::smoother`) weighs the heading and the
    /// translation noise by these multipliers separately (their pairs). 1 to 5 values,
    /// each in [1e-4, 100].
    pub noise_scales: Vec<f64>,
    /// ε, the probability per fused range that the odometry's noise level moves to
    /// another of `noise_scales` (spread evenly over them). Default 0: the noise level
    /// is a constant to be learnt, and the weights are its posterior (each hypothesis
    /// runs on its own; Bayesian model averaging). ε > 0 mixes the hypotheses' states at
    /// every range (the IMM's interaction), so the weights can follow odometry whose
    /// noise changes (a slippery floor) — at a price: a hypothesis that was unlikely
    /// for a while is re-started from the likely ones and keeps their errors (Plaza1
    /// on ground-truth odometry: 0.04 m landmark RMSE with ε = 0, 0.22 m with 1e-4,
    /// 0.34 m with 1e-3). Allowed [0, 0.5].
    pub noise_scale_switch_probability: f64,
    /// σ_w, the odometry's systematic distance-scale error (wheel radius, encoder
    /// resolution), as a fraction of the distance. Default 0.01: a wheel radius known
    /// to 1 % (tyre pressure, wear and load change it by about that; UMBmark-calibrated
    /// robots reach 0.1–0.5 %). With range calibration on, the ranges cannot tell it
    /// from the radio's scale, so it sets how well the map's scale is known: each
    /// published map-frame position p gets σ²(p − p₀)(p − p₀)ᵀ added to its covariance
    /// (p₀ the first odometry position, σ² from [`map_scale_variance`]). Not part of
    /// the per-step noise (`noise_scales` do not multiply it). Allowed [0, 0.5].
    pub distance_scale_std: f64,
}

impl Default for OdometryErrorConfig {
    fn default() -> Self {
        Self {
            translation_std_m_per_sqrt_m: 0.05,
            rotation_std_rad_per_sqrt_rad: 0.02,
            rotation_std_rad_per_sqrt_m: 0.01,
            gyro_bias_walk_rad_per_s_per_sqrt_s: 1e-4,
            gyro_bias_std_rad_per_s: 1e-3,
            noise_scales: vec![1.0, 0.1, 0.01],
            noise_scale_switch_probability: 0.0,
            distance_scale_std: 0.01,
        }
    }
}

impl OdometryErrorConfig {
    /// Checks every parameter: finite, ≥ 0 and below a bound past which it no longer
    /// describes odometry (100 % of the distance, 1 rad per √rad or √m, a bias walk
    /// of 0.1 rad/s/√s, a bias of 1 rad/s = 57 °/s). All zero is perfect odometry.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first parameter out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("translation_std_m_per_sqrt_m", self.translation_std_m_per_sqrt_m, 0.0, 1.0)?;
        check_range("rotation_std_rad_per_sqrt_rad", self.rotation_std_rad_per_sqrt_rad, 0.0, 1.0)?;
        check_range("rotation_std_rad_per_sqrt_m", self.rotation_std_rad_per_sqrt_m, 0.0, 1.0)?;
        check_range("gyro_bias_walk_rad_per_s_per_sqrt_s", self.gyro_bias_walk_rad_per_s_per_sqrt_s, 0.0, 0.1)?;
        check_range("gyro_bias_std_rad_per_s", self.gyro_bias_std_rad_per_s, 0.0, 1.0)?;
        if !(1..=5).contains(&self.noise_scales.len()) {
            return Err(ConfigError::invalid("noise_scales", format!("{:?}", self.noise_scales), "1 to 5 values"));
        }
        for &c in &self.noise_scales {
            check_range("noise_scales", c, 1e-4, 100.0)?;
        }
        check_range("noise_scale_switch_probability", self.noise_scale_switch_probability, 0.0, 0.5)?;
        check_range("distance_scale_std", self.distance_scale_std, 0.0, 0.5)
    }

    /// Odometry without error: every noise standard deviation and the gyro bias 0 (the
    /// noise scales as by default).
    pub fn perfect() -> Self {
        Self { gyro_bias_std_rad_per_s: 0.0, distance_scale_std: 0.0, ..Self::default().scaled(0.0) }
    }

    /// This model with the four noise standard deviations (σ_t, σ_r, σ_rm, q_b) times
    /// `c` (σ_b and the scales themselves unchanged).
    pub fn scaled(&self, c: f64) -> Self {
        Self {
            translation_std_m_per_sqrt_m: self.translation_std_m_per_sqrt_m * c,
            rotation_std_rad_per_sqrt_rad: self.rotation_std_rad_per_sqrt_rad * c,
            rotation_std_rad_per_sqrt_m: self.rotation_std_rad_per_sqrt_m * c,
            gyro_bias_walk_rad_per_s_per_sqrt_s: self.gyro_bias_walk_rad_per_s_per_sqrt_s * c,
            ..self.clone()
        }
    }
}

/// Variance of the map's scale (relative, dimensionless²) with drifting odometry and
/// range calibration: the ranges fix r = s/w, the radio's scale over the odometry's,
/// so w = s/r is known from two priors, ln w ~ N(0, σ_w²) (`distance_scale_std`) and
/// ln s ~ N(ln s₀, (σ_s/s₀)²) (`calibration.scale_prior`, `scale_std`):
/// var(ln w) = 1/(1/σ_w² + (s₀/σ_s)²). A position p in the map frame is then off by
/// about (w − 1)(p − p₀), covariance var·(p − p₀)(p − p₀)ᵀ. 0 when either scale is
/// known exactly (σ_w = 0 or σ_s = 0).
pub fn map_scale_variance(distance_scale_std: f64, radio_scale_prior: f64, radio_scale_std: f64) -> f64 {
    if !(distance_scale_std > 0.0 && radio_scale_std > 0.0 && radio_scale_prior > 0.0) {
        return 0.0;
    }
    let relative_radio = radio_scale_std / radio_scale_prior;
    1.0 / (distance_scale_std.powi(-2) + relative_radio.powi(-2))
}

/// Why a drift state or step was refused.
///
/// Its own small enum rather than an [`EstimatorError`](crate::estimator::error::EstimatorError)
/// variant: a drift covariance is positive *semi*-definite (E starts exactly known),
/// which the estimator's SPD error would misstate. It becomes part of the localizer's
/// error when the model is wired in.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriftError {
    /// A non-finite input (mean, covariance, pose, time step).
    #[error("{quantity} must be finite, got {value}")]
    NonFinite {
        /// Name of the quantity.
        quantity: &'static str,
        /// Its value, formatted.
        value: String,
    },
    /// A time step that goes backwards.
    #[error("dt_s must be >= 0, got {0}")]
    NegativeTimeStep(f64),
    /// A covariance that is not symmetric positive semi-definite.
    #[error("{quantity} must be symmetric positive semi-definite, got {value}")]
    NotPositiveSemidefinite {
        /// Name of the matrix.
        quantity: &'static str,
        /// Its value, formatted.
        value: String,
    },
}

/// True when `m` is finite, symmetric (relative `sym_tol`) and its smallest eigenvalue
/// is ≥ −[`PSD_TOLERANCE`]·|m|_max. The zero matrix passes.
fn is_psd<const D: usize>(m: &SMatrix<f64, D, D>, sym_tol: f64) -> bool {
    if !m.iter().all(|v| v.is_finite()) {
        return false;
    }
    let scale = m.amax();
    if scale == 0.0 {
        return true;
    }
    if (m - m.transpose()).amax() > sym_tol * scale {
        return false;
    }
    // Dynamic storage keeps the signature free of nalgebra's dimension bounds; D ≤ 4.
    let sym = DMatrix::from_column_slice(D, D, ((m + m.transpose()) * 0.5).as_slice());
    SymmetricEigen::new(sym).eigenvalues.min() >= -PSD_TOLERANCE * scale
}

/// The odometry error state x = (ex, ey, eyaw, b) ([`EX`], [`EY`], [`EYAW`], [`BIAS`];
/// m, m, rad, rad/s) as a Gaussian: mean and covariance. One that exists is finite
/// with a symmetric positive semi-definite covariance (zero for E at start).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriftState {
    mean: Vector4<f64>,
    cov: Matrix4<f64>,
}

impl DriftState {
    /// N(mean, cov) after checking it; the covariance is symmetrised.
    ///
    /// # Errors
    /// [`DriftError::NonFinite`] for a non-finite mean, [`DriftError::NotPositiveSemidefinite`]
    /// for a covariance that is not finite, not symmetric (relative 1e-9) or has an
    /// eigenvalue below −1e-9·|Σ|_max.
    pub fn new(mean: Vector4<f64>, cov: Matrix4<f64>) -> Result<Self, DriftError> {
        if !mean.iter().all(|v| v.is_finite()) {
            return Err(DriftError::NonFinite { quantity: "mean", value: format!("{:?}", mean.as_slice()) });
        }
        if !is_psd(&cov, SYMMETRY_TOLERANCE) {
            return Err(DriftError::NotPositiveSemidefinite { quantity: "cov", value: format!("{cov:?}") });
        }
        Ok(Self { mean, cov: (cov + cov.transpose()) * 0.5 })
    }

    /// Mean (ex m, ey m, eyaw rad, b rad/s).
    pub fn mean(&self) -> &Vector4<f64> {
        &self.mean
    }

    /// Covariance, in the units of the mean squared.
    pub fn cov(&self) -> &Matrix4<f64> {
        &self.cov
    }

    /// The mean odom→map correction E as an isometry (T_map_odom).
    pub fn correction(&self) -> Isometry2<f64> {
        Isometry2::new(Vector2::new(self.mean[EX], self.mean[EY]), self.mean[EYAW])
    }

    /// Mean gyro bias, rad/s.
    pub fn gyro_bias_rad_per_s(&self) -> f64 {
        self.mean[BIAS]
    }
}

/// An odometry step in the robot frame at its start: u = P_k⁻¹ ⊕ P_{k+1}.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OdometryIncrement {
    /// t, m.
    pub translation: Vector2<f64>,
    /// Δθ in (−π, π], rad (a step turning by more than π is ambiguous).
    pub yaw_rad: f64,
}

impl OdometryIncrement {
    /// u = from⁻¹ ⊕ to.
    pub fn between(from: &Isometry2<f64>, to: &Isometry2<f64>) -> Self {
        let u = from.inverse() * to;
        Self { translation: u.translation.vector, yaw_rad: u.rotation.angle() }
    }

    /// Δs = ‖t‖, m.
    pub fn distance_m(&self) -> f64 {
        self.translation.norm()
    }

    /// t/‖t‖, or zero for a step without translation (whose translation noise has
    /// zero variance anyway).
    fn direction(&self) -> Vector2<f64> {
        let d = self.distance_m();
        if d > 0.0 {
            self.translation / d
        } else {
            Vector2::zeros()
        }
    }
}

/// The planar part (x, y, yaw) of a 3-D pose: yaw is the heading of the base's x axis
/// projected on the ground plane, atan2(R₁₀, R₀₀).
pub fn planar_pose(pose: &Isometry3<f64>) -> Isometry2<f64> {
    let r = pose.rotation.to_rotation_matrix();
    let m = r.matrix();
    Isometry2::new(Vector2::new(pose.translation.x, pose.translation.y), m[(1, 0)].atan2(m[(0, 0)]))
}

/// R(θ)·v.
fn rotate(theta: f64, v: &Vector2<f64>) -> Vector2<f64> {
    let (s, c) = theta.sin_cos();
    Vector2::new(c * v.x - s * v.y, s * v.x + c * v.y)
}

/// J·v, J = [[0, −1], [1, 0]] (a quarter turn).
fn perp(v: &Vector2<f64>) -> Vector2<f64> {
    Vector2::new(-v.y, v.x)
}

fn check_pose(quantity: &'static str, pose: &Isometry2<f64>) -> Result<(), DriftError> {
    let v = [pose.translation.x, pose.translation.y, pose.rotation.re, pose.rotation.im];
    if v.iter().all(|c| c.is_finite()) {
        Ok(())
    } else {
        Err(DriftError::NonFinite { quantity, value: format!("{v:?}") })
    }
}

/// The transition x' = f(x, u, w) of the module doc for one odometry step from `from`
/// to `to` (odometry frame) over `dt_s`, with the noise w = (n_t m, n_θ rad, n_b rad/s)
/// given: the model's exact (nonlinear) form, used for the mean (w = 0) and for
/// checking [`transition_jacobians`].
pub fn transition(
    x: &Vector4<f64>,
    from: &Isometry2<f64>,
    to: &Isometry2<f64>,
    dt_s: f64,
    noise: &Vector3<f64>,
) -> Vector4<f64> {
    let u = OdometryIncrement::between(from, to);
    let q = to.translation.vector;
    let e_yaw = x[EYAW];
    let d_yaw = -x[BIAS] * dt_s + noise[1];
    let e_t = Vector2::new(x[EX], x[EY]) + rotate(e_yaw, &q) - rotate(e_yaw + d_yaw, &q)
        + rotate(e_yaw + from.rotation.angle(), &u.direction()) * noise[0];
    Vector4::new(e_t.x, e_t.y, e_yaw + d_yaw, x[BIAS] + noise[2])
}

/// F = ∂f/∂x and G = ∂f/∂w of [`transition`] at (x, w = 0), as in the module doc.
pub fn transition_jacobians(
    x: &Vector4<f64>,
    from: &Isometry2<f64>,
    to: &Isometry2<f64>,
    dt_s: f64,
) -> (Matrix4<f64>, Matrix4x3<f64>) {
    let u = OdometryIncrement::between(from, to);
    let q = to.translation.vector;
    let e_yaw = x[EYAW];
    let d_yaw = -x[BIAS] * dt_s;
    let rq_after = rotate(e_yaw + d_yaw, &q);
    let d_e_t_d_yaw = perp(&(rotate(e_yaw, &q) - rq_after));
    let d_e_t_d_bias = perp(&rq_after) * dt_s;
    let mut f = Matrix4::identity();
    f[(EX, EYAW)] = d_e_t_d_yaw.x;
    f[(EY, EYAW)] = d_e_t_d_yaw.y;
    f[(EX, BIAS)] = d_e_t_d_bias.x;
    f[(EY, BIAS)] = d_e_t_d_bias.y;
    f[(EYAW, BIAS)] = -dt_s;
    let along = rotate(e_yaw + from.rotation.angle(), &u.direction());
    let by_heading = -perp(&rq_after);
    let mut g = Matrix4x3::zeros();
    g[(EX, 0)] = along.x;
    g[(EY, 0)] = along.y;
    g[(EX, 1)] = by_heading.x;
    g[(EY, 1)] = by_heading.y;
    g[(EYAW, 1)] = 1.0;
    g[(BIAS, 2)] = 1.0;
    (f, g)
}

/// The odometry error model: a validated [`OdometryErrorConfig`] and the propagation
/// of the module doc.
#[derive(Debug, Clone, PartialEq)]
pub struct OdometryErrorModel {
    config: OdometryErrorConfig,
}

impl OdometryErrorModel {
    /// # Errors
    /// The config's validation error.
    pub fn new(config: OdometryErrorConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self { config })
    }

    pub fn config(&self) -> &OdometryErrorConfig {
        &self.config
    }

    /// The state at the first odometry pose: E = 0 exactly (the map frame is the
    /// odometry frame there, see the module doc), b ~ N(0, σ_b²).
    pub fn initial_state(&self) -> DriftState {
        let mut cov = Matrix4::zeros();
        cov[(BIAS, BIAS)] = self.config.gyro_bias_std_rad_per_s.powi(2);
        DriftState { mean: Vector4::zeros(), cov }
    }

    /// W = diag(σ_t²·Δs, σ_r²·|Δθ| + σ_rm²·Δs, q_b²·dt): the variances of
    /// (n_t m, n_θ rad, n_b rad/s) over one step.
    pub fn step_noise_var(&self, increment: &OdometryIncrement, dt_s: f64) -> Vector3<f64> {
        let c = &self.config;
        let ds = increment.distance_m();
        Vector3::new(
            c.translation_std_m_per_sqrt_m.powi(2) * ds,
            c.rotation_std_rad_per_sqrt_rad.powi(2) * increment.yaw_rad.abs() + c.rotation_std_rad_per_sqrt_m.powi(2) * ds,
            c.gyro_bias_walk_rad_per_s_per_sqrt_s.powi(2) * dt_s,
        )
    }

    /// One odometry step from `from` to `to` (base in the odometry frame) over `dt_s`
    /// seconds: mean f(x̄, u, 0), covariance F Σ Fᵀ + G W Gᵀ (first order, module
    /// doc), symmetrised. Call it for consecutive odometry poses; skipping poses
    /// gives a slightly different (coarser) discretisation of the same model.
    ///
    /// # Errors
    /// [`DriftError::NonFinite`] for a non-finite pose or `dt_s`,
    /// [`DriftError::NegativeTimeStep`] for `dt_s` < 0, and the [`DriftState::new`]
    /// errors if the result overflows.
    pub fn propagate(
        &self,
        state: &DriftState,
        from: &Isometry2<f64>,
        to: &Isometry2<f64>,
        dt_s: f64,
    ) -> Result<DriftState, DriftError> {
        check_pose("from", from)?;
        check_pose("to", to)?;
        if !dt_s.is_finite() {
            return Err(DriftError::NonFinite { quantity: "dt_s", value: format!("{dt_s}") });
        }
        if dt_s < 0.0 {
            return Err(DriftError::NegativeTimeStep(dt_s));
        }
        let mean = transition(&state.mean, from, to, dt_s, &Vector3::zeros());
        let (f, g) = transition_jacobians(&state.mean, from, to, dt_s);
        let w = Matrix3::from_diagonal(&self.step_noise_var(&OdometryIncrement::between(from, to), dt_s));
        let cov = f * state.cov * f.transpose() + g * w * g.transpose();
        DriftState::new(mean, (cov + cov.transpose()) * 0.5)
    }
}

/// A pose in the map frame with its covariance over (x m, y m, yaw rad).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MapPose {
    pub pose: Isometry2<f64>,
    pub cov: Matrix3<f64>,
}

/// ∂(E ⊕ P)/∂E at the mean of `state`, P = (p, φ): [[I₂, J R(ē_θ) p], [0, 1]]. Its
/// first two rows, with p any point in the odometry frame (a sensor position), are
/// the Jacobian of that point's map position.
pub fn map_pose_jacobian(state: &DriftState, odom_pose: &Isometry2<f64>) -> Matrix3<f64> {
    let lever = perp(&rotate(state.mean[EYAW], &odom_pose.translation.vector));
    let mut j = Matrix3::identity();
    j[(0, 2)] = lever.x;
    j[(1, 2)] = lever.y;
    j
}

/// The map pose X = Ē ⊕ P of an odometry pose P, with covariance J Σ_E Jᵀ
/// ([`map_pose_jacobian`], Σ_E the (ex, ey, eyaw) block). `state` must be the drift
/// state at P's stamp: E changes as the robot moves.
pub fn map_pose(state: &DriftState, odom_pose: &Isometry2<f64>) -> MapPose {
    let j = map_pose_jacobian(state, odom_pose);
    let cov_e: Matrix3<f64> = state.cov.fixed_view::<3, 3>(0, 0).into_owned();
    let cov = j * cov_e * j.transpose();
    MapPose { pose: state.correction() * odom_pose, cov: (cov + cov.transpose()) * 0.5 }
}

/// The planar (x, y, yaw) block of a `nav_msgs/Odometry` `pose.covariance` (row-major
/// 6×6 over x, y, z, roll, pitch, yaw): rows and columns 0, 1, 5, symmetrised.
///
/// `None` when that block is all zeros (the usual "not filled"), has a non-finite
/// entry, is not symmetric (relative 1e-6) or not positive semi-definite (which also
/// catches the "−1 = unknown" convention): the caller then uses its
/// [`OdometryErrorConfig`] model. Note that drivers disagree on what the covariance
/// means (a constant per-message value, or a growing estimate covariance); turning it
/// into a per-step noise is the caller's decision.
pub fn planar_pose_covariance(cov6: &[f64; 36]) -> Option<Matrix3<f64>> {
    const IDX: [usize; 3] = [0, 1, 5];
    let block = Matrix3::from_fn(|r, c| cov6[6 * IDX[r] + IDX[c]]);
    if block.iter().all(|&v| v == 0.0) || !is_psd(&block, MESSAGE_SYMMETRY_TOLERANCE) {
        return None;
    }
    Some((block + block.transpose()) * 0.5)
}
