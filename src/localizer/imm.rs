//! How much the odometry drifts is known to an order of magnitude at best: the same
//! robot drifts more on gravel than on a factory floor, and a pose from a localisation
//! stack barely drifts at all. Too much assumed noise throws away what the odometry
//! knows (the map wanders with every range and never settles on where the robot
//! started); too little makes the filter confidently wrong. So `odometry: drifting`
//! runs the joint state of [`super::slam`] under M noise levels at once, the model's
//! standard deviations times each of `odometry_error.noise_scales` (c₁ … c_M), and
//! weighs them by how well each predicted the ranges: the posterior over the noise
//! level, as a batch solver would choose it by marginal likelihood. Per range, with
//! weights w_i and the switch probability ε (`noise_scale_switch_probability`,
//! default 0; spread evenly: p_ij = 1 − ε for i = j, else ε/(M − 1)):
//!
//! ```text
//! mixing       c̄_j = Σ_i p_ij w_i,   μ_{i|j} = p_ij w_i / c̄_j
//!              x̂_j⁰ = Σ_i μ_{i|j} x̂_i,   P_j⁰ = Σ_i μ_{i|j} (P_i + (x̂_i − x̂_j⁰)(x̂_i − x̂_j⁰)ᵀ)
//! update       each hypothesis j from (x̂_j⁰, P_j⁰) by the range (slam.rs: flow on the
//!              touched marginal + Gaussian conditional)
//! weights      w_j ∝ c̄_j Λ_j,   Λ_j = p(z | hypothesis j) (the linearised predictive,
//!              [`predictive_log_density`], on the touched marginal before the range)
//! ```
//!
//! With ε = 0 there is no mixing (c̄_j = w_j): Bayesian model averaging over a constant
//! noise level, each hypothesis a filter of its own. ε > 0 is the interacting-multiple-
//! model filter (Blom and Bar-Shalom 1988) for a noise level that changes.
//!
//! Odometry propagates each hypothesis with its own noise. What the localizer reads
//! (landmarks, calibration, odometry correction, sensor map positions, the marginal the
//! innovation gate tests) is the weighted mixture moment-matched to one Gaussian; a new
//! landmark joins every hypothesis with the same belief. One scale is the plain joint
//! state. Cost: M times the joint state's per range and per odometry message, plus
//! O(M²·D²) per range for the mixing when ε > 0 (skipped for a hypothesis whose mixing
//! weights are all but its own, `SKIP_MIXING`).

use super::drift::{DriftError, DriftState, OdometryErrorConfig, OdometryErrorModel};
use super::slam::{JointState, JointStep};
use crate::config::ConfigError;
use crate::estimator::kalman::predictive_log_density;
use crate::estimator::{Estimator, EstimatorError, GaussianBelief, MeasurementModel, UpdateStats};
use nalgebra::{DMatrix, DVector, Isometry2, Matrix2, Matrix3, SMatrix, SVector, Vector2};

/// Mixing weights of the other hypotheses below this (relative) leave a hypothesis
/// unmixed: their contribution is below round-off of the state.
const SKIP_MIXING: f64 = 1e-12;

/// One noise level: its model, its joint state and its weight.
#[derive(Debug, Clone)]
struct Hypothesis {
    scale: f64,
    model: OdometryErrorModel,
    state: JointState,
    weight: f64,
}

/// The joint state under each odometry noise scale, weighted (module doc).
#[derive(Debug, Clone)]
pub struct JointImm {
    hypotheses: Vec<Hypothesis>,
    switch_probability: f64,
}

/// One range's change to every hypothesis ([`JointImm::step`]); [`JointImm::commit`]
/// applies it.
#[derive(Debug, Clone)]
pub struct ImmStep {
    /// Per hypothesis: the mixed state before the range and the range's change to it.
    updates: Vec<(Option<JointState>, JointStep)>,
    weights: Vec<f64>,
    /// The landmark's belief after the update (map frame), moment-matched.
    pub landmark: GaussianBelief<2>,
    /// The calibration (s, b) after the update, moment-matched, when estimated.
    pub calibration: Option<GaussianBelief<2>>,
    /// The estimator's statistics (of the hypothesis with the largest weight after the
    /// update).
    pub stats: UpdateStats,
}

/// The Gaussian with the moments of Σ w_i N(μ_i, Σ_i) (weights summing to 1).
fn moment_match<const N: usize>(
    parts: impl Iterator<Item = (f64, SVector<f64, N>, SMatrix<f64, N, N>)> + Clone,
) -> (SVector<f64, N>, SMatrix<f64, N, N>) {
    let mean = parts
        .clone()
        .fold(SVector::zeros(), |m, (w, mu, _)| m + mu * w);
    let cov = parts.fold(SMatrix::zeros(), |c, (w, mu, cov)| {
        let d = mu - mean;
        c + (cov + d * d.transpose()) * w
    });
    (mean, (cov + cov.transpose()) * 0.5)
}

/// ln Σ exp(a_i), for weights kept in the log domain.
fn log_sum_exp(a: &[f64]) -> f64 {
    let max = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + a.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
}

impl JointImm {
    /// One hypothesis per `config.noise_scales`, equal weights, each starting as
    /// [`JointState::new`] with the calibration prior when given.
    ///
    /// # Errors
    /// [`ConfigError`] naming the parameter when `config` is not valid.
    pub fn new(
        config: &OdometryErrorConfig,
        calibration: Option<&GaussianBelief<2>>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let n = config.noise_scales.len() as f64;
        let hypotheses = config
            .noise_scales
            .iter()
            .map(|&scale| {
                let model = OdometryErrorModel::new(config.scaled(scale))?;
                let state = JointState::new(&model, calibration);
                Ok(Hypothesis {
                    scale,
                    model,
                    state,
                    weight: 1.0 / n,
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        Ok(Self {
            hypotheses,
            switch_probability: config.noise_scale_switch_probability,
        })
    }

    /// (noise scale, weight) of each hypothesis.
    pub fn weights(&self) -> Vec<(f64, f64)> {
        self.hypotheses
            .iter()
            .map(|h| (h.scale, h.weight))
            .collect()
    }

    /// The joint state of each hypothesis, with its noise scale and weight (tests).
    pub fn hypotheses(&self) -> impl Iterator<Item = (f64, f64, &JointState)> {
        self.hypotheses
            .iter()
            .map(|h| (h.scale, h.weight, &h.state))
    }

    fn matched<const N: usize>(
        &self,
        part: impl Fn(&JointState) -> (SVector<f64, N>, SMatrix<f64, N, N>),
    ) -> (SVector<f64, N>, SMatrix<f64, N, N>) {
        let parts: Vec<_> = self
            .hypotheses
            .iter()
            .map(|h| {
                let (m, c) = part(&h.state);
                (h.weight, m, c)
            })
            .collect();
        moment_match(parts.into_iter())
    }

    /// The odometry error (e_x, e_y, e_yaw, b_gyro), moment-matched over the hypotheses.
    pub fn drift(&self) -> DriftState {
        let (mean, cov) = self.matched(|s| {
            let d = s.drift();
            (*d.mean(), *d.cov())
        });
        DriftState::new(mean, cov).unwrap_or_else(|_| self.hypotheses[0].state.drift())
    }

    /// The (s, b) marginal, moment-matched, when the calibration is estimated.
    pub fn calibration(&self) -> Option<GaussianBelief<2>> {
        self.hypotheses[0].state.calibration()?;
        let (mean, cov) = self.matched(|s| {
            let c = s
                .calibration()
                .expect("every hypothesis has the same layout");
            (c.mean, c.cov)
        });
        Some(GaussianBelief { mean, cov })
    }

    /// Landmark `id`'s position in the map frame, moment-matched.
    pub fn landmark(&self, id: &str) -> Option<GaussianBelief<2>> {
        self.hypotheses[0].state.landmark(id)?;
        let (mean, cov) = self.matched(|s| {
            let b = s
                .landmark(id)
                .expect("every hypothesis has the same layout");
            (b.mean, b.cov)
        });
        Some(GaussianBelief { mean, cov })
    }

    /// Whether landmark `id` is in the state.
    pub fn contains(&self, id: &str) -> bool {
        self.hypotheses[0].state.contains(id)
    }

    /// Appends landmark `id` to every hypothesis ([`JointState::insert_landmark`]).
    pub fn insert_landmark(&mut self, id: &str, belief: &GaussianBelief<2>) {
        for h in &mut self.hypotheses {
            h.state.insert_landmark(id, belief);
        }
    }

    /// The landmarks in the joint state, in its order.
    pub fn landmark_ids(&self) -> Vec<String> {
        let state = &self.hypotheses[0].state;
        let mut ids: Vec<(usize, String)> = state.landmark_slots().map(|(id, i)| (i, id.clone())).collect();
        ids.sort();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// Sets every hypothesis's mean and covariance (the batch re-solve's solution, in
    /// the joint state's order); `false`, changing nothing, when the dimension differs.
    pub fn set_moments(&mut self, mean: &DVector<f64>, cov: &DMatrix<f64>) -> bool {
        let dim = self.hypotheses[0].state.dimension();
        if mean.len() != dim || cov.shape() != (dim, dim) {
            return false;
        }
        for h in &mut self.hypotheses {
            h.state = h.state.with_moments(mean.clone(), cov.clone());
        }
        true
    }

    /// [`JointState::restart_odometry`] for every hypothesis.
    pub fn restart_odometry(&mut self) {
        for h in &mut self.hypotheses {
            h.state.restart_odometry();
        }
    }

    /// The stamp of the last odometry propagated to, s.
    pub fn last_odometry_stamp_s(&self) -> Option<f64> {
        self.hypotheses[0].state.last_odometry_stamp_s()
    }

    /// [`JointState::propagate`] of every hypothesis with its own noise (the filled
    /// pose covariance's growth, when given, times its scale²).
    ///
    /// # Errors
    /// The first hypothesis' [`DriftError`]: the input is checked by the first
    /// propagation, which changes nothing when it fails.
    pub fn propagate(
        &mut self,
        stamp_s: f64,
        pose: &Isometry2<f64>,
        pose_cov_growth: Option<&Matrix3<f64>>,
    ) -> Result<(), DriftError> {
        for h in &mut self.hypotheses {
            let growth = pose_cov_growth.map(|g| g * (h.scale * h.scale));
            h.state
                .propagate(&h.model, stamp_s, pose, growth.as_ref())?;
        }
        Ok(())
    }

    /// The map position of an odometry-frame point with its covariance, moment-matched
    /// ([`JointState::map_position`]).
    pub fn map_position(&self, odom_point: &Vector2<f64>) -> (Vector2<f64>, Matrix2<f64>) {
        self.matched(|s| s.map_position(odom_point))
    }

    /// The touched marginal of a range to landmark `id`, moment-matched (for the
    /// innovation gate).
    ///
    /// # Errors
    /// As [`JointState::touched_marginal`].
    pub fn touched_marginal<const K: usize>(
        &self,
        id: &str,
    ) -> Result<GaussianBelief<K>, EstimatorError> {
        let parts = self
            .hypotheses
            .iter()
            .map(|h| {
                h.state
                    .touched_marginal::<K>(id)
                    .map(|b| (h.weight, b.mean, b.cov))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (mean, cov) = moment_match(parts.into_iter());
        GaussianBelief::new(mean, cov)
    }

    /// p_ij, the probability of moving from noise level `i` to `j` between two ranges
    /// (module doc).
    fn transition(&self, i: usize, j: usize) -> f64 {
        if i == j {
            1.0 - self.switch_probability
        } else {
            self.switch_probability / (self.hypotheses.len() - 1) as f64
        }
    }

    /// c̄_j = Σ_i p_ij w_i, hypothesis `j`'s weight before the range (module doc).
    fn predicted_weight(&self, j: usize) -> f64 {
        (0..self.hypotheses.len()).map(|i| self.transition(i, j) * self.hypotheses[i].weight).sum()
    }

    /// The mixed state of hypothesis `j` (module doc), or `None` when it is its own.
    fn mixed(&self, j: usize) -> Option<JointState> {
        let m = self.hypotheses.len();
        let norm = self.predicted_weight(j);
        let mu: Vec<f64> = (0..m)
            .map(|i| self.transition(i, j) * self.hypotheses[i].weight / norm)
            .collect();
        if !norm.is_finite() || norm <= 0.0 || (0..m).all(|i| i == j || mu[i] < SKIP_MIXING) {
            return None;
        }
        let states: Vec<&JointState> = self.hypotheses.iter().map(|h| &h.state).collect();
        let mut mean = DVector::zeros(states[j].dimension());
        for (i, s) in states.iter().enumerate() {
            mean.axpy(mu[i], s.moments().0, 1.0);
        }
        let mut cov = DMatrix::zeros(mean.len(), mean.len());
        for (i, s) in states.iter().enumerate() {
            if mu[i] < SKIP_MIXING {
                continue;
            }
            let (mi, ci) = s.moments();
            let d = mi - &mean;
            cov += ci * mu[i];
            cov.ger(mu[i], &d, &d, 1.0);
        }
        Some(states[j].with_moments(mean, cov))
    }

    /// The change one range to landmark `id` makes to every hypothesis and to the
    /// weights (module doc). The state is not changed.
    ///
    /// # Errors
    /// The first hypothesis' estimator error; `DegenerateWeights` when no hypothesis
    /// gives the range a finite density.
    pub fn step<const K: usize, M: MeasurementModel<K>>(
        &self,
        id: &str,
        estimator: &Estimator<K>,
        model: &M,
    ) -> Result<(ImmStep, UpdateStats), EstimatorError> {
        let m = self.hypotheses.len();
        let mut updates = Vec::with_capacity(m);
        let mut log_weights = Vec::with_capacity(m);
        for j in 0..m {
            let mixed = if m > 1 { self.mixed(j) } else { None };
            let state = mixed.as_ref().unwrap_or(&self.hypotheses[j].state);
            let prior = state.touched_marginal::<K>(id)?;
            log_weights.push(self.predicted_weight(j).ln() + predictive_log_density(&prior, model)?);
            let (step, _) = state.step(id, estimator, model)?;
            updates.push((mixed, step));
        }
        let total = log_sum_exp(&log_weights);
        if !total.is_finite() {
            return Err(EstimatorError::DegenerateWeights(total));
        }
        let weights: Vec<f64> = log_weights.iter().map(|lw| (lw - total).exp()).collect();
        let best = (0..m)
            .max_by(|&a, &b| weights[a].total_cmp(&weights[b]))
            .expect("at least one hypothesis");
        let landmark = {
            let (mean, cov) = moment_match(
                weights
                    .iter()
                    .zip(&updates)
                    .map(|(&w, (_, s))| (w, s.landmark.mean, s.landmark.cov)),
            );
            GaussianBelief { mean, cov }
        };
        let calibration = updates[0].1.calibration.map(|_| {
            let (mean, cov) = moment_match(weights.iter().zip(&updates).map(|(&w, (_, s))| {
                let c = s.calibration.expect("same layout");
                (w, c.mean, c.cov)
            }));
            GaussianBelief { mean, cov }
        });
        let stats = updates[best].1.stats;
        Ok((
            ImmStep {
                updates,
                weights,
                landmark,
                calibration,
                stats,
            },
            stats,
        ))
    }

    /// Applies an [`ImmStep`] computed from this state.
    pub fn commit(&mut self, step: ImmStep) {
        for ((h, (mixed, change)), weight) in self
            .hypotheses
            .iter_mut()
            .zip(step.updates)
            .zip(step.weights)
        {
            if let Some(mixed) = mixed {
                h.state = mixed;
            }
            h.state.commit(change);
            h.weight = weight;
        }
    }
}
