//! Measurement models z = h(s) + w with a scalar residual noise density p_w.
//!
//! With r = z − h(s) and ℓ(r) = ln p_w(r):
//! ln p(z|s) = ℓ(r), ∇ₛ ln p = −ℓ′(r) ∇h, ∇²ₛ ln p = −ℓ′(r) ∇²h + ℓ″(r) ∇h ∇hᵀ.
//! For Gaussian noise (ℓ′ = −r/σ², ℓ″ = −1/σ²) this is the slides' Hessian
//! (z − h)/σ² ∇²h − ∇h∇hᵀ/σ².

use nalgebra::{SMatrix, SVector};
use serde::{Deserialize, Serialize};

use super::error::EstimatorError;
use crate::config::ConfigError;

/// Distances below this (metres) are treated as "sensor on the landmark": ∇h is set to
/// the symmetric subgradient 0 and ∇²h uses this floor instead of d, so nothing is NaN.
pub const RANGE_DISTANCE_FLOOR_M: f64 = 1e-9;

/// Points per block of the struct-of-arrays evaluation
/// [`MeasurementModel::log_likelihood_gradient_block`].
pub const BLOCK: usize = 32;

/// One value per point of a block of (at most) [`BLOCK`] points.
pub type Block = [f64; BLOCK];

/// Shape of the range-noise density; its scale σ² is given per measurement.
///
/// Internally tagged (`{type: student_t, dof: 4.0}`) so that it maps onto flat ROS
/// parameters (`noise_shape.type`, `noise_shape.dof`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "type", deny_unknown_fields)]
pub enum NoiseShape {
    /// w ~ N(0, σ²).
    #[default]
    Gaussian,
    /// Student-t with `dof` degrees of freedom and scale² σ² (heavy tails for outliers).
    StudentT {
        /// ν > 0.
        dof: f64,
    },
    /// Huber density: quadratic for |r| ≤ kσ, linear beyond (unnormalised: the
    /// constant −½ ln 2πσ² is used, which does not depend on s).
    Huber {
        /// k, the threshold in units of σ.
        threshold_sigma: f64,
    },
}

/// Scalar noise density p_w with shape and variance σ² (m²).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScalarNoise {
    /// Density shape.
    pub shape: NoiseShape,
    /// σ², m² (the scale² for Student-t).
    pub var: f64,
    /// The s-independent constant of ℓ, precomputed (ln Γ is not cheap).
    log_normaliser: f64,
}

impl ScalarNoise {
    /// Builds the noise density after checking σ² and the shape parameter.
    ///
    /// # Errors
    /// `InvalidNoiseVariance` for σ² not finite or ≤ 0; `Config` for a bad shape
    /// parameter.
    pub fn new(shape: NoiseShape, var: f64) -> Result<Self, EstimatorError> {
        if !(var.is_finite() && var > 0.0) {
            return Err(EstimatorError::InvalidNoiseVariance(var));
        }
        match shape {
            NoiseShape::StudentT { dof } if !(dof.is_finite() && dof > 0.0) => {
                return Err(ConfigError::invalid("noise_shape.dof", dof, "finite and > 0").into())
            }
            NoiseShape::Huber { threshold_sigma } if !(threshold_sigma.is_finite() && threshold_sigma > 0.0) => {
                return Err(ConfigError::invalid("noise_shape.threshold_sigma", threshold_sigma, "finite and > 0").into())
            }
            _ => {}
        }
        let log_normaliser = match shape {
            NoiseShape::StudentT { dof } => {
                ln_gamma(0.5 * (dof + 1.0)) - ln_gamma(0.5 * dof) - 0.5 * (std::f64::consts::PI * dof * var).ln()
            }
            NoiseShape::Gaussian | NoiseShape::Huber { .. } => -0.5 * (2.0 * std::f64::consts::PI * var).ln(),
        };
        Ok(Self { shape, var, log_normaliser })
    }

    /// (ℓ(r), ℓ′(r), ℓ″(r)) with ℓ = ln p_w.
    #[inline]
    pub fn log_density_derivatives(&self, r: f64) -> (f64, f64, f64) {
        let v = self.var;
        match self.shape {
            NoiseShape::Gaussian => {
                let c = self.log_normaliser;
                (c - 0.5 * r * r / v, -r / v, -1.0 / v)
            }
            NoiseShape::StudentT { dof } => {
                let nv = dof * v;
                let c = self.log_normaliser;
                let q = nv + r * r;
                (
                    c - 0.5 * (dof + 1.0) * (r * r / nv).ln_1p(),
                    -(dof + 1.0) * r / q,
                    -(dof + 1.0) * (nv - r * r) / (q * q),
                )
            }
            NoiseShape::Huber { threshold_sigma } => {
                let c = self.log_normaliser;
                let sigma = v.sqrt();
                let k = threshold_sigma;
                if r.abs() <= k * sigma {
                    (c - 0.5 * r * r / v, -r / v, -1.0 / v)
                } else {
                    (c - (k * r.abs() / sigma - 0.5 * k * k), -k * r.signum() / sigma, 0.0)
                }
            }
        }
    }

    /// Runs `job` with this density's (ℓ(r), ℓ′(r)) as a [`Slopes`] value of the shape's
    /// own type, so that a loop over many residuals matches the shape once and compiles
    /// without branches for the Gaussian and Huber shapes (and so vectorises;
    /// Student-t's ln(1+x) is a library call, one residual at a time).
    #[inline(always)]
    fn with_slopes<J: SlopesJob>(&self, job: J) -> J::Output {
        let c = self.log_normaliser;
        let inv_var = 1.0 / self.var;
        match self.shape {
            NoiseShape::Gaussian => job.run(GaussianSlopes { c, inv_var }),
            NoiseShape::StudentT { .. } => job.run(ExactSlopes(*self)),
            NoiseShape::Huber { threshold_sigma } => {
                let sigma = self.var.sqrt();
                job.run(HuberSlopes { c, inv_var, k: threshold_sigma, inv_sigma: 1.0 / sigma, bound: threshold_sigma * sigma })
            }
        }
    }

    /// Variance used by the Kalman baselines: σ² (Gaussian, Huber), νσ²/(ν−2) for
    /// Student-t with ν > 2, else 3σ² (a finite stand-in for an infinite variance).
    pub fn equivalent_variance(&self) -> f64 {
        match self.shape {
            NoiseShape::StudentT { dof } if dof > 2.0 => self.var * dof / (dof - 2.0),
            NoiseShape::StudentT { .. } => 3.0 * self.var,
            _ => self.var,
        }
    }
}

/// (ℓ(r), ℓ′(r)) of one noise density, for loops over many residuals. Equal to
/// [`ScalarNoise::log_density_derivatives`] up to rounding (1/σ² and 1/σ are multiplied
/// instead of divided by).
trait Slopes: Copy {
    fn at(&self, r: f64) -> (f64, f64);
}

/// Something to run with the [`Slopes`] of a density ([`ScalarNoise::with_slopes`]).
trait SlopesJob {
    type Output;
    fn run<S: Slopes>(self, slopes: S) -> Self::Output;
}

#[derive(Clone, Copy)]
struct GaussianSlopes {
    c: f64,
    inv_var: f64,
}

impl Slopes for GaussianSlopes {
    #[inline(always)]
    fn at(&self, r: f64) -> (f64, f64) {
        (self.c - 0.5 * r * r * self.inv_var, -r * self.inv_var)
    }
}

#[derive(Clone, Copy)]
struct HuberSlopes {
    c: f64,
    inv_var: f64,
    k: f64,
    inv_sigma: f64,
    /// kσ.
    bound: f64,
}

impl Slopes for HuberSlopes {
    /// Both branches, then a select: no branch in the loop.
    #[inline(always)]
    fn at(&self, r: f64) -> (f64, f64) {
        let Self { c, inv_var, k, inv_sigma, bound } = *self;
        let inside = r.abs() <= bound;
        let quadratic = (c - 0.5 * r * r * inv_var, -r * inv_var);
        let linear = (c - (k * r.abs() * inv_sigma - 0.5 * k * k), -k * 1f64.copysign(r) * inv_sigma);
        (if inside { quadratic.0 } else { linear.0 }, if inside { quadratic.1 } else { linear.1 })
    }
}

/// The point form itself (Student-t).
#[derive(Clone, Copy)]
struct ExactSlopes(ScalarNoise);

impl Slopes for ExactSlopes {
    #[inline(always)]
    fn at(&self, r: f64) -> (f64, f64) {
        let (l, dl, _) = self.0.log_density_derivatives(r);
        (l, dl)
    }
}

/// A scalar measurement z = h(s) + w of the landmark position s.
///
/// Implementors give h and its derivatives; the log-likelihood and its derivatives in s
/// follow from the noise density (module doc).
pub trait MeasurementModel<const D: usize> {
    /// Measured value z.
    fn measurement(&self) -> f64;
    /// Noise density of w.
    fn noise(&self) -> ScalarNoise;
    /// h(s) and ∇h(s).
    fn predict(&self, s: &SVector<f64, D>) -> (f64, SVector<f64, D>);
    /// ∇²h(s).
    fn predict_hessian(&self, s: &SVector<f64, D>) -> SMatrix<f64, D, D>;

    /// ln p(z|s).
    #[inline]
    fn log_likelihood(&self, s: &SVector<f64, D>) -> f64 {
        let (h, _) = self.predict(s);
        self.noise().log_density_derivatives(self.measurement() - h).0
    }

    /// (ln p(z|s), ∇ₛ ln p(z|s)) = (ℓ(r), −ℓ′(r) ∇h).
    #[inline]
    fn log_likelihood_gradient(&self, s: &SVector<f64, D>) -> (f64, SVector<f64, D>) {
        let (h, grad_h) = self.predict(s);
        let (l, dl, _) = self.noise().log_density_derivatives(self.measurement() - h);
        (l, grad_h * (-dl))
    }

    /// ∇²ₛ ln p(z|s) = −ℓ′(r) ∇²h + ℓ″(r) ∇h∇hᵀ.
    #[inline]
    fn log_likelihood_hessian(&self, s: &SVector<f64, D>) -> SMatrix<f64, D, D> {
        let (h, grad_h) = self.predict(s);
        let (_, dl, ddl) = self.noise().log_density_derivatives(self.measurement() - h);
        self.predict_hessian(s) * (-dl) + grad_h * grad_h.transpose() * ddl
    }

    /// [`MeasurementModel::log_likelihood_gradient`] at the first `n` points of a block
    /// (`n` ≤ [`BLOCK`]) in struct-of-arrays form: `s[k][j]` is coordinate k of point j;
    /// writes ℓⱼ = ln p(z|sⱼ) to `l[j]` and ∂ₖ ln p(z|sⱼ) to `grad[k][j]`. The flows'
    /// expectations call this. The default goes point by point; the range models
    /// override it with loops over the points that the compiler vectorises (one square
    /// root and one division a point), equal to the point form up to rounding.
    #[inline]
    fn log_likelihood_gradient_block(&self, s: &[Block; D], n: usize, l: &mut Block, grad: &mut [Block; D]) {
        for j in 0..n.min(BLOCK) {
            let (lj, gj) = self.log_likelihood_gradient(&SVector::from_fn(|k, _| s[k][j]));
            l[j] = lj;
            for k in 0..D {
                grad[k][j] = gj[k];
            }
        }
    }
}

/// ‖sⱼ − x‖ for point j of a block (coordinates `s[k][j]`, k < D).
#[inline(always)]
fn distance<const D: usize>(s: &[Block], x: &SVector<f64, D>, j: usize) -> f64 {
    let mut squared = 0.0;
    for k in 0..D {
        let delta = s[k][j] - x[k];
        squared += delta * delta;
    }
    squared.sqrt()
}

/// 1/d, or 0 below [`RANGE_DISTANCE_FLOOR_M`] (the subgradient 0 of ∇h at the sensor),
/// without a branch: 1 or 0 divided by d. (A select of the quotient is compiled into a
/// branch around the division, and the loop no longer vectorises.)
#[inline(always)]
fn inverse_distance(d: f64) -> f64 {
    f64::from(u8::from(d >= RANGE_DISTANCE_FLOOR_M)) / d.max(RANGE_DISTANCE_FLOOR_M)
}

/// Range measurement z = ‖x − s‖ + w from a sensor at x (metres).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RangeModel<const D: usize> {
    /// x, sensor position, metres.
    pub sensor_position: SVector<f64, D>,
    /// z, measured range, metres.
    pub range_m: f64,
    /// Noise density (σ² in m²).
    pub noise: ScalarNoise,
}

impl<const D: usize> RangeModel<D> {
    /// Checks and builds the model.
    ///
    /// # Errors
    /// `InvalidSensorPosition` for a non-finite x, `InvalidRange` for z not finite or
    /// negative, `InvalidNoiseVariance` for σ² not finite or ≤ 0.
    pub fn new(
        sensor_position: SVector<f64, D>,
        range_m: f64,
        noise_var_m2: f64,
        shape: NoiseShape,
    ) -> Result<Self, EstimatorError> {
        if !sensor_position.iter().all(|v| v.is_finite()) {
            return Err(EstimatorError::InvalidSensorPosition(sensor_position.as_slice().to_vec()));
        }
        if !(range_m.is_finite() && range_m >= 0.0) {
            return Err(EstimatorError::InvalidRange(range_m));
        }
        Ok(Self { sensor_position, range_m, noise: ScalarNoise::new(shape, noise_var_m2)? })
    }
}

impl<const D: usize> MeasurementModel<D> for RangeModel<D> {
    fn measurement(&self) -> f64 {
        self.range_m
    }
    fn noise(&self) -> ScalarNoise {
        self.noise
    }
    /// h = d = ‖s − x‖, ∇h = (s − x)/d (0 for d below the floor).
    #[inline]
    fn predict(&self, s: &SVector<f64, D>) -> (f64, SVector<f64, D>) {
        let delta = s - self.sensor_position;
        let d = delta.norm();
        if d < RANGE_DISTANCE_FLOOR_M {
            (d, SVector::zeros())
        } else {
            (d, delta / d)
        }
    }
    /// ∇²h = (I − uuᵀ)/d with u = (s − x)/d; d is floored at [`RANGE_DISTANCE_FLOOR_M`].
    #[inline]
    fn predict_hessian(&self, s: &SVector<f64, D>) -> SMatrix<f64, D, D> {
        let (d, u) = self.predict(s);
        (SMatrix::identity() - u * u.transpose()) / d.max(RANGE_DISTANCE_FLOOR_M)
    }
    /// ℓ(z − d) and −ℓ′(z − d)·(s − x)/d (0 below the distance floor), point by point in
    /// one branch-free loop.
    #[inline(always)]
    fn log_likelihood_gradient_block(&self, s: &[Block; D], n: usize, l: &mut Block, grad: &mut [Block; D]) {
        struct Job<'a, const D: usize> {
            model: &'a RangeModel<D>,
            s: &'a [Block; D],
            n: usize,
            l: &'a mut Block,
            grad: &'a mut [Block; D],
        }
        impl<const D: usize> SlopesJob for Job<'_, D> {
            type Output = ();
            #[inline(always)]
            fn run<S: Slopes>(self, slopes: S) {
                let x = &self.model.sensor_position;
                for j in 0..self.n.min(BLOCK) {
                    let d = distance(self.s, x, j);
                    let (l, dl) = slopes.at(self.model.range_m - d);
                    self.l[j] = l;
                    let factor = -dl * inverse_distance(d);
                    for k in 0..D {
                        self.grad[k][j] = (self.s[k][j] - x[k]) * factor;
                    }
                }
            }
        }
        self.noise.with_slopes(Job { model: self, s, n, l, grad });
    }
}

/// Compile-time check of the block layout θ = (y, s, b) of a calibrated state: a
/// position y of dimension P followed by the calibration c = (s, b), so D = P + 2.
/// (Stable Rust cannot write `SVector<f64, { P + 2 }>`, so both are const parameters
/// and this constant, evaluated at monomorphisation, rejects a mismatched pair at
/// compile time: `let () = CalibratedLayout::<P, D>::CHECK;`.)
///
/// ```compile_fail
/// use landmark_flow::estimator::{CalibratedRange, NoiseShape};
/// // A planar position in a 5-D state: rejected when the program is built.
/// let _ = CalibratedRange::<2, 5>::new(nalgebra::Vector2::zeros(), 1.0, 1.0, NoiseShape::Gaussian);
/// ```
pub struct CalibratedLayout<const P: usize, const D: usize>;

impl<const P: usize, const D: usize> CalibratedLayout<P, D> {
    /// Fails to compile unless D = P + 2 and P ≥ 1.
    pub const CHECK: () = assert!(P >= 1 && D == P + 2, "a calibrated state is θ = (y, s, b): D = P + 2");
}

/// Range with unknown calibration, z = s·‖y − x‖ + b + w, over the state
/// θ = (y, s, b) of dimension D = P + 2: landmark position y ∈ ℝᴾ (metres), range
/// scale s (dimensionless) and range offset b (metres), from a sensor at x ∈ ℝᴾ
/// (metres). P = 2 is the planar landmark ([`CalibratedRangeModel`]), P = 3 the 3-D
/// one ([`CalibratedRangeModel3`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CalibratedRange<const P: usize, const D: usize> {
    /// x, sensor position, metres.
    pub sensor_position: SVector<f64, P>,
    /// z, measured range, metres.
    pub range_m: f64,
    /// Noise density (σ² in m²).
    pub noise: ScalarNoise,
}

/// The planar calibrated range over θ = (y₁, y₂, s, b).
pub type CalibratedRangeModel = CalibratedRange<2, 4>;

/// The 3-D calibrated range over θ = (y₁, y₂, y₃, s, b).
pub type CalibratedRangeModel3 = CalibratedRange<3, 5>;

impl<const P: usize, const D: usize> CalibratedRange<P, D> {
    /// Checks and builds the model (same checks as [`RangeModel::new`]).
    ///
    /// # Errors
    /// As [`RangeModel::new`].
    pub fn new(
        sensor_position: SVector<f64, P>,
        range_m: f64,
        noise_var_m2: f64,
        shape: NoiseShape,
    ) -> Result<Self, EstimatorError> {
        let () = CalibratedLayout::<P, D>::CHECK;
        let RangeModel { sensor_position, range_m, noise } = RangeModel::new(sensor_position, range_m, noise_var_m2, shape)?;
        Ok(Self { sensor_position, range_m, noise })
    }

    /// (d, u) with d = ‖y − x‖ and u = (y − x)/d (0 below the distance floor).
    #[inline]
    fn geometry(&self, theta: &SVector<f64, D>) -> (f64, SVector<f64, P>) {
        let () = CalibratedLayout::<P, D>::CHECK;
        let delta = theta.fixed_rows::<P>(0) - self.sensor_position;
        let d = delta.norm();
        if d < RANGE_DISTANCE_FLOOR_M {
            (d, SVector::zeros())
        } else {
            (d, delta / d)
        }
    }
}

impl<const P: usize, const D: usize> MeasurementModel<D> for CalibratedRange<P, D> {
    fn measurement(&self) -> f64 {
        self.range_m
    }
    fn noise(&self) -> ScalarNoise {
        self.noise
    }
    /// h = s·d + b, ∇h = (s·u, d, 1) with u = (y − x)/d (0 below the distance floor).
    #[inline]
    fn predict(&self, theta: &SVector<f64, D>) -> (f64, SVector<f64, D>) {
        let (d, u) = self.geometry(theta);
        let s = theta[P];
        let mut grad = SVector::<f64, D>::zeros();
        grad.fixed_rows_mut::<P>(0).copy_from(&(u * s));
        grad[P] = d;
        grad[P + 1] = 1.0;
        (s * d + theta[P + 1], grad)
    }
    /// ∇²h: s(I − uuᵀ)/d in the position block, u in the position–scale block, 0 else.
    #[inline]
    fn predict_hessian(&self, theta: &SVector<f64, D>) -> SMatrix<f64, D, D> {
        let (d, u) = self.geometry(theta);
        let block = (SMatrix::<f64, P, P>::identity() - u * u.transpose()) * (theta[P] / d.max(RANGE_DISTANCE_FLOOR_M));
        let mut h = SMatrix::<f64, D, D>::zeros();
        h.fixed_view_mut::<P, P>(0, 0).copy_from(&block);
        h.fixed_view_mut::<P, 1>(0, P).copy_from(&u);
        h.fixed_view_mut::<1, P>(P, 0).copy_from(&u.transpose());
        h
    }
    /// ℓ(r) and −ℓ′(r)·(s·(y − x)/d, d, 1) with r = z − s·d − b, point by point in one
    /// branch-free loop (the P position coordinates in an inner loop the compiler
    /// unrolls, P being a constant).
    #[inline(always)]
    fn log_likelihood_gradient_block(&self, theta: &[Block; D], n: usize, l: &mut Block, grad: &mut [Block; D]) {
        struct Job<'a, const P: usize, const D: usize> {
            model: &'a CalibratedRange<P, D>,
            theta: &'a [Block; D],
            n: usize,
            l: &'a mut Block,
            grad: &'a mut [Block; D],
        }
        impl<const P: usize, const D: usize> SlopesJob for Job<'_, P, D> {
            type Output = ();
            #[inline(always)]
            fn run<S: Slopes>(self, slopes: S) {
                let x = &self.model.sensor_position;
                let theta = self.theta;
                for j in 0..self.n.min(BLOCK) {
                    let d = distance(&theta[..P], x, j);
                    let (l, dl) = slopes.at(self.model.range_m - (theta[P][j] * d + theta[P + 1][j]));
                    self.l[j] = l;
                    let slope = -dl;
                    let factor = slope * theta[P][j] * inverse_distance(d);
                    for k in 0..P {
                        self.grad[k][j] = (theta[k][j] - x[k]) * factor;
                    }
                    self.grad[P][j] = slope * d;
                    self.grad[P + 1][j] = slope;
                }
            }
        }
        let () = CalibratedLayout::<P, D>::CHECK;
        self.noise.with_slopes(Job { model: self, theta, n, l, grad });
    }
}

/// A range in the joint state of drifting odometry, over the marginal it touches:
/// θ = (e_x, e_y, e_yaw, y₁, y₂) (K = 5) or θ = (e_x, e_y, e_yaw, y₁, y₂, s, b) (K = 7,
/// with range calibration): the odom→map correction E = (e_t, e_yaw) (m, m, rad), the
/// landmark y in the map frame (m), and the calibration (s, b). The sensor is at p in
/// the odometry frame (m), so at m = e_t + R(e_yaw)·p in the map frame, and
/// z = s·‖y − m‖ + b + w (s = 1, b = 0 for K = 5).
///
/// With r = y − m, d = ‖r‖, u = r/d and w = J·R(e_yaw)·p (J the quarter turn):
/// ∂d/∂(e_t, e_yaw, y) = (−u, −uᵀw, u), and ∇²d = Jᵣᵀ(I − uuᵀ)Jᵣ/d + (uᵀR(e_yaw)p)·e₃e₃ᵀ
/// with Jᵣ = [−I, −w, I] (since ∂²r/∂e_yaw² = R(e_yaw)p). With calibration ∇h = (s∇d, d, 1)
/// and ∇²h = [[s∇²d, ∇d], [∇dᵀ, 0]] over (…, s), zero in b.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JointRangeModel<const K: usize> {
    /// p, sensor position in the odometry frame, metres.
    pub sensor_odom_position: SVector<f64, 2>,
    /// z, measured range, metres.
    pub range_m: f64,
    /// Noise density (σ² in m²).
    pub noise: ScalarNoise,
}

impl<const K: usize> JointRangeModel<K> {
    /// Checks and builds the model (same checks as [`RangeModel::new`]); K is 5 or 7.
    ///
    /// # Errors
    /// As [`RangeModel::new`]; `Config` naming `dimension` for K ∉ {5, 7}.
    pub fn new(
        sensor_odom_position: SVector<f64, 2>,
        range_m: f64,
        noise_var_m2: f64,
        shape: NoiseShape,
    ) -> Result<Self, EstimatorError> {
        if K != 5 && K != 7 {
            return Err(crate::config::ConfigError::invalid("dimension", K, "5 or 7 (joint range marginal)").into());
        }
        let RangeModel { sensor_position, range_m, noise } = RangeModel::new(sensor_odom_position, range_m, noise_var_m2, shape)?;
        Ok(Self { sensor_odom_position: sensor_position, range_m, noise })
    }

    /// (d, ∇d over (e_x, e_y, e_yaw, y₁, y₂), R(e_yaw)p, u, w).
    #[inline]
    fn geometry(&self, theta: &SVector<f64, K>) -> (f64, SVector<f64, 5>, SVector<f64, 2>, SVector<f64, 2>, SVector<f64, 2>) {
        let (sin, cos) = theta[2].sin_cos();
        let p = &self.sensor_odom_position;
        let rp = SVector::<f64, 2>::new(cos * p.x - sin * p.y, sin * p.x + cos * p.y);
        let w = SVector::<f64, 2>::new(-rp.y, rp.x);
        let r = SVector::<f64, 2>::new(theta[3] - theta[0] - rp.x, theta[4] - theta[1] - rp.y);
        let d = r.norm();
        let u = if d < RANGE_DISTANCE_FLOOR_M { SVector::zeros() } else { r / d };
        (d, SVector::<f64, 5>::new(-u.x, -u.y, -u.dot(&w), u.x, u.y), rp, u, w)
    }
}

impl<const K: usize> MeasurementModel<K> for JointRangeModel<K> {
    fn measurement(&self) -> f64 {
        self.range_m
    }
    fn noise(&self) -> ScalarNoise {
        self.noise
    }
    #[inline]
    fn predict(&self, theta: &SVector<f64, K>) -> (f64, SVector<f64, K>) {
        let (d, grad_d, ..) = self.geometry(theta);
        let mut grad = SVector::<f64, K>::zeros();
        if K == 7 {
            let s = theta[5];
            grad.fixed_rows_mut::<5>(0).copy_from(&(grad_d * s));
            grad[5] = d;
            grad[6] = 1.0;
            (s * d + theta[6], grad)
        } else {
            grad.fixed_rows_mut::<5>(0).copy_from(&grad_d);
            (d, grad)
        }
    }
    #[inline]
    fn predict_hessian(&self, theta: &SVector<f64, K>) -> SMatrix<f64, K, K> {
        let (d, grad_d, rp, u, w) = self.geometry(theta);
        // Jᵣ = ∂r/∂(e_x, e_y, e_yaw, y₁, y₂) = [−I, −w, I].
        let jr = SMatrix::<f64, 2, 5>::new(-1.0, 0.0, -w.x, 1.0, 0.0, 0.0, -1.0, -w.y, 0.0, 1.0);
        let projector = (SMatrix::<f64, 2, 2>::identity() - u * u.transpose()) / d.max(RANGE_DISTANCE_FLOOR_M);
        let mut hd = jr.transpose() * projector * jr;
        hd[(2, 2)] += u.dot(&rp);
        let mut h = SMatrix::<f64, K, K>::zeros();
        if K == 7 {
            let s = theta[5];
            h.fixed_view_mut::<5, 5>(0, 0).copy_from(&(hd * s));
            h.fixed_view_mut::<5, 1>(0, 5).copy_from(&grad_d);
            h.fixed_view_mut::<1, 5>(5, 0).copy_from(&grad_d.transpose());
        } else {
            h.fixed_view_mut::<5, 5>(0, 0).copy_from(&hd);
        }
        h
    }
}

/// Linear measurement z = aᵀ s + b + w, for tests against the Kalman filter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearModel<const D: usize> {
    /// a.
    pub direction: SVector<f64, D>,
    /// b, metres.
    pub offset: f64,
    /// z, metres.
    pub value: f64,
    /// Noise density.
    pub noise: ScalarNoise,
}

impl<const D: usize> MeasurementModel<D> for LinearModel<D> {
    fn measurement(&self) -> f64 {
        self.value
    }
    fn noise(&self) -> ScalarNoise {
        self.noise
    }
    fn predict(&self, s: &SVector<f64, D>) -> (f64, SVector<f64, D>) {
        (self.direction.dot(s) + self.offset, self.direction)
    }
    fn predict_hessian(&self, _s: &SVector<f64, D>) -> SMatrix<f64, D, D> {
        SMatrix::zeros()
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error ~1e-15).
pub(crate) fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector2;

    fn finite_difference_check<const D: usize, M: MeasurementModel<D>>(model: &M, s: SVector<f64, D>) {
        let h = 1e-5;
        let (_, g) = model.log_likelihood_gradient(&s);
        let hess = model.log_likelihood_hessian(&s);
        for i in 0..D {
            let mut e = SVector::<f64, D>::zeros();
            e[i] = h;
            let fd = (model.log_likelihood(&(s + e)) - model.log_likelihood(&(s - e))) / (2.0 * h);
            assert!((fd - g[i]).abs() < 1e-6 * (1.0 + g[i].abs()), "grad {i}: {fd} vs {}", g[i]);
            let gp = model.log_likelihood_gradient(&(s + e)).1;
            let gm = model.log_likelihood_gradient(&(s - e)).1;
            let col = (gp - gm) / (2.0 * h);
            for j in 0..D {
                assert!((col[j] - hess[(j, i)]).abs() < 1e-5 * (1.0 + hess[(j, i)].abs()), "hess");
            }
        }
    }

    #[test]
    fn range_derivatives_match_finite_differences_for_every_shape() {
        for shape in [
            NoiseShape::Gaussian,
            NoiseShape::StudentT { dof: 3.0 },
            NoiseShape::Huber { threshold_sigma: 1.5 },
        ] {
            let m = RangeModel::new(Vector2::new(0.3, -0.2), 4.0, 0.7, shape).unwrap();
            finite_difference_check(&m, Vector2::new(2.0, 1.5));
            finite_difference_check(&m, Vector2::new(-5.0, 3.0));
        }
    }

    #[test]
    fn calibrated_range_derivatives_match_finite_differences() {
        use nalgebra::Vector4;
        for shape in [NoiseShape::Gaussian, NoiseShape::StudentT { dof: 4.0 }] {
            let m = CalibratedRangeModel::new(Vector2::new(0.3, -0.2), 4.0, 0.7, shape).unwrap();
            finite_difference_check(&m, Vector4::new(2.0, 1.5, 1.07, 0.3));
            finite_difference_check(&m, Vector4::new(-5.0, 3.0, 0.95, -1.0));
        }
        // With s = 1 and b = 0 it is the plain range model.
        let plain = RangeModel::new(Vector2::new(0.3, -0.2), 4.0, 0.7, NoiseShape::Gaussian).unwrap();
        let cal = CalibratedRangeModel::new(Vector2::new(0.3, -0.2), 4.0, 0.7, NoiseShape::Gaussian).unwrap();
        let y = Vector2::new(2.0, 1.5);
        assert_eq!(cal.log_likelihood(&Vector4::new(y.x, y.y, 1.0, 0.0)), plain.log_likelihood(&y));
    }

    /// The 3-D calibrated range over θ = (y₁, y₂, y₃, s, b): ∇h and ∇²h against central
    /// differences of h and ∇h themselves (step 1e-5: truncation ~1e-10 relative, well
    /// under the 1e-6 tolerance), the log-likelihood's derivatives for two shapes, and
    /// two exact reductions written out here: h = s·‖y − x‖ + b by hand, and with
    /// y₃ = x₃ the planar model's h and (y₁, y₂, s, b) gradient.
    #[test]
    fn calibrated_range_3d_derivatives_match_finite_differences() {
        use nalgebra::{Vector3, Vector4};
        let x = Vector3::new(0.3, -0.2, 0.4);
        let points = [
            SVector::<f64, 5>::from_column_slice(&[2.0, 1.5, 2.9, 1.07, 0.3]),
            SVector::<f64, 5>::from_column_slice(&[-5.0, 3.0, -1.0, 0.95, -1.0]),
        ];
        for shape in [NoiseShape::Gaussian, NoiseShape::StudentT { dof: 4.0 }] {
            let m = CalibratedRangeModel3::new(x, 4.0, 0.7, shape).unwrap();
            for theta in points {
                finite_difference_check(&m, theta);
                let (h0, g) = m.predict(&theta);
                let hess = m.predict_hessian(&theta);
                let by_hand = theta[3] * ((theta[0] - x.x).powi(2) + (theta[1] - x.y).powi(2) + (theta[2] - x.z).powi(2)).sqrt() + theta[4];
                assert!((h0 - by_hand).abs() < 1e-12, "{h0} vs {by_hand}");
                let step = 1e-5;
                for i in 0..5 {
                    let mut e = SVector::<f64, 5>::zeros();
                    e[i] = step;
                    let (hp, gp) = m.predict(&(theta + e));
                    let (hm, gm) = m.predict(&(theta - e));
                    let fd = (hp - hm) / (2.0 * step);
                    assert!((fd - g[i]).abs() < 1e-6 * (1.0 + g[i].abs()), "∂h/∂θ{i}: {fd} vs {}", g[i]);
                    let col = (gp - gm) / (2.0 * step);
                    for j in 0..5 {
                        assert!((col[j] - hess[(j, i)]).abs() < 1e-6 * (1.0 + hess[(j, i)].abs()), "∂²h/∂θ{j}∂θ{i}: {} vs {}", col[j], hess[(j, i)]);
                    }
                }
                assert_eq!(hess, hess.transpose());
            }
        }
        let planar = CalibratedRangeModel::new(x.xy(), 4.0, 0.7, NoiseShape::Gaussian).unwrap();
        let spatial = CalibratedRangeModel3::new(x, 4.0, 0.7, NoiseShape::Gaussian).unwrap();
        let (h2, g2) = planar.predict(&Vector4::new(2.0, 1.5, 1.07, 0.3));
        let (h3, g3) = spatial.predict(&SVector::<f64, 5>::from_column_slice(&[2.0, 1.5, x.z, 1.07, 0.3]));
        assert!((h2 - h3).abs() < 1e-15);
        for (a, b) in [(0, 0), (1, 1), (2, 3), (3, 4)] {
            assert!((g2[a] - g3[b]).abs() < 1e-15, "{g2} vs {g3}");
        }
        assert_eq!(g3[2], 0.0);
    }

    #[test]
    fn joint_range_derivatives_match_finite_differences() {
        let p = SVector::<f64, 2>::new(1.5, -0.7);
        let five = JointRangeModel::<5>::new(p, 4.0, 0.3, NoiseShape::Gaussian).unwrap();
        finite_difference_check(&five, SVector::<f64, 5>::new(0.3, -0.2, 0.4, 3.0, 2.0));
        let seven = JointRangeModel::<7>::new(p, 4.0, 0.3, NoiseShape::Gaussian).unwrap();
        finite_difference_check(&seven, SVector::<f64, 7>::from_column_slice(&[0.3, -0.2, -0.9, -2.0, 4.0, 1.1, 0.4]));
        assert!(JointRangeModel::<4>::new(p, 4.0, 0.3, NoiseShape::Gaussian).is_err());
    }

    #[test]
    fn range_at_sensor_is_finite() {
        let m = RangeModel::new(Vector2::new(1.0, 1.0), 3.0, 2.0, NoiseShape::Gaussian).unwrap();
        let s = Vector2::new(1.0, 1.0);
        let (l, g) = m.log_likelihood_gradient(&s);
        assert!(l.is_finite() && g.iter().all(|v| v.is_finite()));
        assert!(m.log_likelihood_hessian(&s).iter().all(|v| v.is_finite()));
    }

    #[test]
    fn student_t_density_integrates_to_one() {
        let noise = ScalarNoise::new(NoiseShape::StudentT { dof: 4.0 }, 0.5).unwrap();
        let dr = 1e-3;
        let total: f64 = (-200_000..200_000).map(|i| noise.log_density_derivatives(i as f64 * dr).0.exp() * dr).sum();
        assert!((total - 1.0).abs() < 1e-3, "{total}");
    }

    #[test]
    fn ln_gamma_known_values() {
        assert!((ln_gamma(1.0)).abs() < 1e-13);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn rejects_bad_inputs() {
        let x = Vector2::zeros();
        assert_eq!(RangeModel::new(x, -1.0, 1.0, NoiseShape::Gaussian), Err(EstimatorError::InvalidRange(-1.0)));
        assert!(matches!(RangeModel::new(x, 1.0, 0.0, NoiseShape::Gaussian), Err(EstimatorError::InvalidNoiseVariance(_))));
        assert!(matches!(
            RangeModel::new(Vector2::new(f64::NAN, 0.0), 1.0, 1.0, NoiseShape::Gaussian),
            Err(EstimatorError::InvalidSensorPosition(_))
        ));
    }
}
