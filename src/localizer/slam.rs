//! The joint state of `odometry: drifting`: range-only SLAM as one Gaussian over
//!
//! ```text
//! x = (e_x, e_y, e_yaw, b_gyro | s, b_range | y₁ | y₂ | … | y_L)
//!      odometry error (drift.rs)   calibration  landmarks in the map frame
//! ```
//!
//! (the calibration block only with `calibration.enabled`), mean μ and covariance Σ
//! over all of it, so the landmarks stay correlated with the odometry error and with
//! each other.
//!
//! - **Odometry** propagates the drift block ([`OdometryErrorModel`], first order):
//!   μ_d ← f(μ_d), Σ_dd ← F Σ_dd Fᵀ + Q, Σ_d· ← F Σ_d·; O(D) per message.
//! - **A range** to landmark i touches t = (e_x, e_y, e_yaw, y_i[, s, b]) (K = 5 or
//!   7 numbers) through z = s·‖y_i − (e_t + R(e_yaw)·p)‖ + b + w, p the sensor's
//!   position in the odometry frame ([`crate::estimator::JointRangeModel`]). The estimator (the
//!   natural flow, or the EKF/plain flow as configured) updates that marginal,
//!   N(μ_t, Σ_tt) → N(μ_t', Σ_tt'), and everything else follows exactly through the
//!   Gaussian conditional p(x_rest | x_t), which the range does not change: with
//!   A = Σ_{·t} Σ_tt⁻¹ (D × K),
//!
//!   ```text
//!   μ ← μ + A (μ_t' − μ_t),        Σ ← Σ + A (Σ_tt' − Σ_tt) Aᵀ
//!   ```
//!
//!   (for the touched rows A = I, so they become the marginal's posterior). Cost
//!   O(K·D²) per range, D = 4 [+ 2] + 2L; for a linear-Gaussian measurement it is
//!   the joint Kalman update (tests/drifting_odometry.rs checks that to 1e-9).
//!   Σ stays positive semi-definite whenever Σ_tt' is: Σ ← Σ_{rest|t} + A Σ_tt' Aᵀ.
//! - **The map frame** is the odometry frame at the first odometry message: the
//!   correction starts at E = 0 with a variance of [`MAP_FRAME_VARIANCE`] per axis
//!   (1 mm, 1 mrad: fixed, as range-only SLAM leaves a global translation and rotation
//!   unobservable, but not singular, so every marginal is SPD).
//! - **A new landmark** joins with its initialisation-grid (or prior) belief and no
//!   correlation with the rest: its ranges were fused into the grid with the sensor
//!   position's uncertainty folded into their noise (see the localizer), and are not
//!   fused into the joint state again.

use super::drift::{
    transition, transition_jacobians, DriftError, DriftState, OdometryErrorModel, OdometryIncrement, BIAS, EYAW,
};
use crate::estimator::{Estimator, EstimatorError, GaussianBelief, MeasurementModel, UpdateStats};
use nalgebra::{DMatrix, DVector, Isometry2, Matrix2, Matrix3, Matrix4, SMatrix, SVector, SymmetricEigen, Vector2, Vector3, Vector4};
use std::collections::BTreeMap;

/// Variance of the odom→map correction at the first odometry message, per axis
/// (m², m², rad²): the map frame is fixed there to 1 mm and 1 mrad.
pub const MAP_FRAME_VARIANCE: f64 = 1e-6;

/// Number of drift states (e_x, e_y, e_yaw, b_gyro).
const DRIFT: usize = 4;

/// The joint Gaussian of the module doc.
#[derive(Debug, Clone)]
pub struct JointState {
    mean: DVector<f64>,
    cov: DMatrix<f64>,
    /// Index of s (b at +1) when the range calibration is estimated.
    calibration: Option<usize>,
    /// Index of each landmark's x (y at +1).
    slots: BTreeMap<String, usize>,
    /// Stamp (s) and planar odometry pose of the last odometry propagated to.
    last_odometry: Option<(f64, Isometry2<f64>)>,
    /// Range updates so far (seeds the estimator's random numbers).
    updates: u64,
}

/// One range's change to the joint state, computed without changing it
/// ([`JointState::step`]); [`JointState::commit`] applies it.
#[derive(Debug, Clone)]
pub struct JointStep {
    /// A = Σ_{·t} Σ_tt⁻¹, D × K.
    gain: DMatrix<f64>,
    /// μ_t' − μ_t.
    mean_change: DVector<f64>,
    /// Σ_tt' − Σ_tt.
    cov_change: DMatrix<f64>,
    /// The landmark's belief after the update (map frame).
    pub landmark: GaussianBelief<2>,
    /// The calibration (s, b) after the update, when estimated.
    pub calibration: Option<GaussianBelief<2>>,
    /// The estimator's statistics.
    pub stats: UpdateStats,
}

impl JointState {
    /// The state at start: no landmark, E = 0 (variance [`MAP_FRAME_VARIANCE`]),
    /// gyro bias N(0, σ_b²) from `model`, and the calibration prior when given.
    pub fn new(model: &OdometryErrorModel, calibration: Option<&GaussianBelief<2>>) -> Self {
        let initial = model.initial_state();
        let dim = DRIFT + if calibration.is_some() { 2 } else { 0 };
        let mut mean = DVector::zeros(dim);
        let mut cov = DMatrix::zeros(dim, dim);
        for i in 0..3 {
            cov[(i, i)] = MAP_FRAME_VARIANCE;
        }
        cov[(BIAS, BIAS)] = initial.cov()[(BIAS, BIAS)];
        mean[BIAS] = initial.mean()[BIAS];
        if let Some(c) = calibration {
            mean.fixed_rows_mut::<2>(DRIFT).copy_from(&c.mean);
            cov.fixed_view_mut::<2, 2>(DRIFT, DRIFT).copy_from(&c.cov);
        }
        Self {
            mean,
            cov,
            calibration: calibration.map(|_| DRIFT),
            slots: BTreeMap::new(),
            last_odometry: None,
            updates: 0,
        }
    }

    /// Dimension D of the state.
    pub fn dimension(&self) -> usize {
        self.mean.len()
    }

    /// The odometry error (e_x, e_y, e_yaw, b_gyro) marginal.
    pub fn drift(&self) -> DriftState {
        let mean = Vector4::from_iterator(self.mean.rows(0, DRIFT).iter().copied());
        let cov = self.cov.fixed_view::<4, 4>(0, 0).into_owned();
        // A block of a PSD matrix is PSD; rounding in a badly scaled state can still
        // leave a tiny negative eigenvalue, which is clipped (never a panic on data).
        DriftState::new(mean, cov).unwrap_or_else(|_| {
            let eig = SymmetricEigen::new((cov + cov.transpose()) * 0.5);
            let clipped = eig.eigenvectors * Matrix4::from_diagonal(&eig.eigenvalues.map(|v| v.max(0.0))) * eig.eigenvectors.transpose();
            DriftState::new(mean, (clipped + clipped.transpose()) * 0.5).expect("a finite mean and a clipped symmetric covariance")
        })
    }

    /// The (s, b) marginal, when the calibration is estimated.
    pub fn calibration(&self) -> Option<GaussianBelief<2>> {
        self.calibration.map(|i| self.block_belief(i))
    }

    /// Landmark `id`'s position marginal in the map frame.
    pub fn landmark(&self, id: &str) -> Option<GaussianBelief<2>> {
        self.slots.get(id).map(|&i| self.block_belief(i))
    }

    /// Whether landmark `id` is in the state.
    pub fn contains(&self, id: &str) -> bool {
        self.slots.contains_key(id)
    }

    fn block_belief(&self, i: usize) -> GaussianBelief<2> {
        GaussianBelief {
            mean: Vector2::new(self.mean[i], self.mean[i + 1]),
            cov: self.cov.fixed_view::<2, 2>(i, i).into_owned(),
        }
    }

    /// Appends landmark `id` with `belief` (map frame), uncorrelated with the rest
    /// (module doc). A landmark already present keeps its state.
    pub fn insert_landmark(&mut self, id: &str, belief: &GaussianBelief<2>) {
        if self.contains(id) {
            return;
        }
        let i = self.dimension();
        let mut mean = DVector::zeros(i + 2);
        mean.rows_mut(0, i).copy_from(&self.mean);
        mean.fixed_rows_mut::<2>(i).copy_from(&belief.mean);
        let mut cov = DMatrix::zeros(i + 2, i + 2);
        cov.view_mut((0, 0), (i, i)).copy_from(&self.cov);
        cov.fixed_view_mut::<2, 2>(i, i).copy_from(&belief.cov);
        self.mean = mean;
        self.cov = cov;
        self.slots.insert(id.to_string(), i);
    }

    /// Forgets the last odometry pose: the next [`JointState::propagate`] only records
    /// its pose (an odometry discontinuity: nothing is known about the step across it).
    pub fn restart_odometry(&mut self) {
        self.last_odometry = None;
    }

    /// The stamp of the last odometry propagated to, s.
    pub fn last_odometry_stamp_s(&self) -> Option<f64> {
        self.last_odometry.map(|(t, _)| t)
    }

    /// Propagates the drift block over the odometry step from the last odometry pose
    /// to `pose` at `stamp_s` (module doc; the first call only records the pose).
    /// `pose_cov_growth`, when given, is the growth of the odometry's own pose
    /// covariance over the step (x, y, yaw in the odometry frame, PSD): it replaces
    /// the model's translation and heading noise (the driver's own error model); the
    /// gyro-bias walk stays the model's.
    ///
    /// # Errors
    /// [`DriftError`] for a non-finite pose, a step back in time, or a result that
    /// overflows; the state is then unchanged.
    pub fn propagate(
        &mut self,
        model: &OdometryErrorModel,
        stamp_s: f64,
        pose: &Isometry2<f64>,
        pose_cov_growth: Option<&Matrix3<f64>>,
    ) -> Result<(), DriftError> {
        let Some((t0, from)) = self.last_odometry else {
            self.last_odometry = Some((stamp_s, *pose));
            return Ok(());
        };
        let dt_s = stamp_s - t0;
        // Validates the poses and the step (and the covariance's arithmetic) first.
        let drift = model.propagate(&self.drift(), &from, pose, dt_s)?;
        let x = *drift.mean();
        let x0 = Vector4::from_iterator(self.mean.rows(0, DRIFT).iter().copied());
        debug_assert_eq!(x, transition(&x0, &from, pose, dt_s, &Vector3::zeros()));
        let (f, g) = transition_jacobians(&x0, &from, pose, dt_s);
        let w = model.step_noise_var(&OdometryIncrement::between(&from, pose), dt_s);
        let mut q = match pose_cov_growth {
            None => g * Matrix3::from_diagonal(&w) * g.transpose(),
            Some(growth) => {
                // A perturbation (δp, δφ) of the odometry pose P moves E = X ⊕ P⁻¹ by
                // (−R(e_yaw)δp + δφ·J R(e_yaw) p, −δφ).
                let (sin, cos) = x[EYAW].sin_cos();
                let p = pose.translation.vector;
                let lever = Vector2::new(-(sin * p.x + cos * p.y), cos * p.x - sin * p.y);
                let gp = Matrix3::new(-cos, sin, lever.x, -sin, -cos, lever.y, 0.0, 0.0, -1.0);
                let mut q = SMatrix::<f64, 4, 4>::zeros();
                q.fixed_view_mut::<3, 3>(0, 0).copy_from(&(gp * growth * gp.transpose()));
                q[(BIAS, BIAS)] = w[2];
                q
            }
        };
        q = (q + q.transpose()) * 0.5;
        let f = DMatrix::from_column_slice(DRIFT, DRIFT, f.as_slice());
        let top = &f * self.cov.rows(0, DRIFT);
        let mut corner = top.columns(0, DRIFT) * f.transpose();
        corner += DMatrix::from_column_slice(DRIFT, DRIFT, q.as_slice());
        let corner = (&corner + corner.transpose()) * 0.5;
        if !top.iter().chain(corner.iter()).all(|v| v.is_finite()) {
            return Err(DriftError::NonFinite { quantity: "propagated covariance", value: "overflow".into() });
        }
        self.cov.rows_mut(0, DRIFT).copy_from(&top);
        self.cov.columns_mut(0, DRIFT).copy_from(&top.transpose());
        self.cov.view_mut((0, 0), (DRIFT, DRIFT)).copy_from(&corner);
        self.mean.rows_mut(0, DRIFT).copy_from(&x);
        self.last_odometry = Some((stamp_s, *pose));
        Ok(())
    }

    /// The map position of a point p of the odometry frame (a sensor position) with
    /// its covariance: m = e_t + R(e_yaw)·p, Σ_m = J Σ_E Jᵀ, J = [I, J·R(e_yaw)·p].
    pub fn map_position(&self, odom_point: &Vector2<f64>) -> (Vector2<f64>, Matrix2<f64>) {
        let (sin, cos) = self.mean[EYAW].sin_cos();
        let rp = Vector2::new(cos * odom_point.x - sin * odom_point.y, sin * odom_point.x + cos * odom_point.y);
        let jac = nalgebra::Matrix2x3::new(1.0, 0.0, -rp.y, 0.0, 1.0, rp.x);
        let cov_e = self.cov.fixed_view::<3, 3>(0, 0).into_owned();
        let cov = jac * cov_e * jac.transpose();
        (Vector2::new(self.mean[0], self.mean[1]) + rp, (cov + cov.transpose()) * 0.5)
    }

    /// Indices of the marginal a range to landmark `id` touches: (e_x, e_y, e_yaw,
    /// y₁, y₂[, s, b]).
    fn touched<const K: usize>(&self, id: &str) -> Option<[usize; K]> {
        let &i = self.slots.get(id)?;
        let mut idx = [0; K];
        let mut list = vec![0, 1, 2, i, i + 1];
        if let Some(c) = self.calibration {
            list.extend([c, c + 1]);
        }
        if list.len() != K {
            return None;
        }
        idx.copy_from_slice(&list);
        Some(idx)
    }

    /// The marginal N(μ_t, Σ_tt) a range to landmark `id` touches (K = 5 without
    /// calibration, 7 with), for the innovation gate.
    ///
    /// # Errors
    /// `NotPositiveDefinite` if the marginal is not SPD.
    pub fn touched_marginal<const K: usize>(&self, id: &str) -> Result<GaussianBelief<K>, EstimatorError> {
        let idx = self.touched::<K>(id).ok_or(EstimatorError::StateMismatch { state: "joint", method: "range marginal" })?;
        let mean = SVector::<f64, K>::from_fn(|r, _| self.mean[idx[r]]);
        let cov = SMatrix::<f64, K, K>::from_fn(|r, c| self.cov[(idx[r], idx[c])]);
        GaussianBelief::new(mean, (cov + cov.transpose()) * 0.5)
    }

    /// The change one range to landmark `id` makes (module doc): the estimator's update
    /// of the touched marginal and the gain that carries it to the rest. The state is
    /// not changed.
    ///
    /// # Errors
    /// The estimator's error, or `NotPositiveDefinite` for a marginal that is not SPD.
    pub fn step<const K: usize, M: MeasurementModel<K>>(
        &self,
        id: &str,
        estimator: &Estimator<K>,
        model: &M,
    ) -> Result<(JointStep, UpdateStats), EstimatorError> {
        let idx = self.touched::<K>(id).ok_or(EstimatorError::StateMismatch { state: "joint", method: "range marginal" })?;
        let prior = self.touched_marginal::<K>(id)?;
        let (post, stats) = estimator.update_gaussian(&prior, self.updates, model)?;
        let inverse = prior.cholesky()?.inverse();
        let d = self.dimension();
        let mut cross = DMatrix::zeros(d, K);
        for (c, &j) in idx.iter().enumerate() {
            cross.column_mut(c).copy_from(&self.cov.column(j));
        }
        let gain = cross * DMatrix::from_column_slice(K, K, inverse.as_slice());
        // The state stays finite: a gain that overflowed (a near-singular marginal) is
        // refused here rather than committed.
        if !gain.iter().all(|v| v.is_finite()) {
            return Err(EstimatorError::NonFinite { quantity: "joint gain", value: "overflow".into() });
        }
        let position = |b: &GaussianBelief<K>, at: usize| GaussianBelief {
            mean: Vector2::new(b.mean[at], b.mean[at + 1]),
            cov: b.cov.fixed_view::<2, 2>(at, at).into_owned(),
        };
        let step = JointStep {
            gain,
            mean_change: DVector::from_column_slice((post.mean - prior.mean).as_slice()),
            cov_change: DMatrix::from_column_slice(K, K, (post.cov - prior.cov).as_slice()),
            landmark: position(&post, 3),
            calibration: (K == 7).then(|| position(&post, 5)),
            stats,
        };
        Ok((step, stats))
    }

    /// Applies a [`JointStep`] computed from this state.
    pub fn commit(&mut self, step: JointStep) {
        self.mean += &step.gain * &step.mean_change;
        let a_delta = &step.gain * &step.cov_change;
        self.cov.gemm(1.0, &a_delta, &step.gain.transpose(), 1.0);
        let sym = (&self.cov + self.cov.transpose()) * 0.5;
        self.cov = sym;
        self.updates += 1;
    }

    /// This state's layout (landmarks, calibration, odometry pose, update count) with
    /// the given mean and covariance (of the same dimension): a mixed state of the
    /// IMM ([`super::imm`]).
    pub(super) fn with_moments(&self, mean: DVector<f64>, cov: DMatrix<f64>) -> Self {
        debug_assert_eq!(mean.len(), self.dimension());
        debug_assert_eq!(cov.shape(), (self.dimension(), self.dimension()));
        Self {
            mean,
            cov,
            calibration: self.calibration,
            slots: self.slots.clone(),
            last_odometry: self.last_odometry,
            updates: self.updates,
        }
    }

    /// Mean and covariance of the whole state (for tests and reports).
    pub fn moments(&self) -> (&DVector<f64>, &DMatrix<f64>) {
        (&self.mean, &self.cov)
    }

    /// Every landmark's id and the index of its x in [`JointState::moments`].
    pub fn landmark_slots(&self) -> impl Iterator<Item = (&String, usize)> {
        self.slots.iter().map(|(id, &i)| (id, i))
    }

    /// Index of landmark `id`'s x in [`JointState::moments`].
    pub fn landmark_index(&self, id: &str) -> Option<usize> {
        self.slots.get(id).copied()
    }
}

/// The positive semi-definite part of a symmetric 3×3 matrix (negative eigenvalues
/// set to 0): the growth of a pose covariance that may shrink in some direction.
pub fn psd_part(m: &Matrix3<f64>) -> Matrix3<f64> {
    let eig = SymmetricEigen::new((m + m.transpose()) * 0.5);
    let clipped = eig.eigenvalues.map(|v| v.max(0.0));
    eig.eigenvectors * Matrix3::from_diagonal(&clipped) * eig.eigenvectors.transpose()
}
