//! What the multi-landmark scorer ([`super::multi`]) and the entry points
//! [`super::plan_next_goal_multi`] / [`super::multi_criterion_grid`] need of a belief and
//! of its evaluator, so that one code path plans on planar beliefs
//! ([`GaussianBelief<2>`], [`SigmaDotEvaluator`]) and on 3-D ones ([`GaussianBelief<3>`]
//! relative to the sensor's plane, [`SpatialEvaluator`]).

use nalgebra::Vector2;
use rand::Rng;

use super::config::ReductionForm;
use super::criterion::{LandmarkHypothesis, SigmaDotEvaluator};
use super::criterion_3d::{symmetric_eigenvalues_3, SpatialEvaluator};
use super::error::PlannerError;
use crate::estimator::GaussianBelief;

/// A landmark belief the planner can score candidates against.
pub trait PlannerBelief: Clone + std::fmt::Debug {
    /// Its criterion evaluator.
    type Evaluator: CriterionEvaluator;

    /// The same belief rebuilt through [`GaussianBelief::new`].
    ///
    /// # Errors
    /// `InvalidBelief` when it is not finite and SPD.
    fn checked(&self) -> Result<Self, PlannerError>;

    /// The (x, y) of the mean, metres: candidates keep `min_landmark_distance_m` from it.
    fn horizontal_mean(&self) -> Vector2<f64>;

    /// λmax(Σ), m²: the bound on any reduction, which orders the scored landmarks.
    fn largest_variance(&self) -> f64;

    /// The evaluator on `belief_samples` samples and the landmark hypotheses `landmark`.
    ///
    /// # Errors
    /// As [`SigmaDotEvaluator::new`] / [`SpatialEvaluator::new`].
    fn evaluator<R: Rng>(
        &self,
        noise_var_m2: f64,
        belief_samples: usize,
        landmark: LandmarkHypothesis,
        rng: &mut R,
    ) -> Result<Self::Evaluator, PlannerError>;
}

/// The criteria of one belief at a candidate (x, y), metres (see [`super::criterion`],
/// [`super::criterion_3d`] for the equations).
pub trait CriterionEvaluator: Sized {
    /// E_y E_z‖Σ̇(0; x, z)‖₂, m⁻².
    fn expected_sigma_dot_norm(&self, x: &Vector2<f64>) -> f64;
    /// The far-field closed form of the same, m⁻².
    fn far_field_sigma_dot_norm(&self, x: &Vector2<f64>) -> f64;
    /// The D-optimal criterion, nats.
    fn expected_information_gain(&self, x: &Vector2<f64>) -> f64;
    /// The natural-step reduction E_y E_t λmax(Σ − Σ₁), m².
    fn expected_sigma_reduction(&self, x: &Vector2<f64>, range_rule: &[(f64, f64)]) -> f64;
    /// The expected-Fisher reduction, m².
    fn expected_fisher_reduction(&self, x: &Vector2<f64>) -> f64;
    /// The evaluator of the predicted posterior after measuring at `x` (`form`'s
    /// predicted covariance, same mean, same standard-normal points); `None` when it is
    /// not SPD (numerically).
    fn predicted(&self, x: &Vector2<f64>, form: ReductionForm, range_rule: &[(f64, f64)]) -> Option<Self>;
}

impl PlannerBelief for GaussianBelief<2> {
    type Evaluator = SigmaDotEvaluator;

    fn checked(&self) -> Result<Self, PlannerError> {
        Ok(GaussianBelief::new(self.mean, self.cov)?)
    }

    fn horizontal_mean(&self) -> Vector2<f64> {
        self.mean
    }

    fn largest_variance(&self) -> f64 {
        let c = &self.cov;
        let (a, d, o) = (c[(0, 0)], c[(1, 1)], 0.5 * (c[(0, 1)] + c[(1, 0)]));
        0.5 * (a + d) + (0.25 * (a - d) * (a - d) + o * o).sqrt()
    }

    fn evaluator<R: Rng>(
        &self,
        noise_var_m2: f64,
        belief_samples: usize,
        landmark: LandmarkHypothesis,
        rng: &mut R,
    ) -> Result<SigmaDotEvaluator, PlannerError> {
        SigmaDotEvaluator::new(self, noise_var_m2, belief_samples, landmark, rng)
    }
}

impl PlannerBelief for GaussianBelief<3> {
    type Evaluator = SpatialEvaluator;

    fn checked(&self) -> Result<Self, PlannerError> {
        Ok(GaussianBelief::new(self.mean, self.cov)?)
    }

    fn horizontal_mean(&self) -> Vector2<f64> {
        Vector2::new(self.mean.x, self.mean.y)
    }

    fn largest_variance(&self) -> f64 {
        symmetric_eigenvalues_3(&self.cov)[2]
    }

    fn evaluator<R: Rng>(
        &self,
        noise_var_m2: f64,
        belief_samples: usize,
        landmark: LandmarkHypothesis,
        rng: &mut R,
    ) -> Result<SpatialEvaluator, PlannerError> {
        SpatialEvaluator::new(self, noise_var_m2, belief_samples, landmark, rng)
    }
}

impl CriterionEvaluator for SigmaDotEvaluator {
    fn expected_sigma_dot_norm(&self, x: &Vector2<f64>) -> f64 {
        SigmaDotEvaluator::expected_sigma_dot_norm(self, x)
    }
    fn far_field_sigma_dot_norm(&self, x: &Vector2<f64>) -> f64 {
        SigmaDotEvaluator::far_field_sigma_dot_norm(self, x)
    }
    fn expected_information_gain(&self, x: &Vector2<f64>) -> f64 {
        SigmaDotEvaluator::expected_information_gain(self, x)
    }
    fn expected_sigma_reduction(&self, x: &Vector2<f64>, range_rule: &[(f64, f64)]) -> f64 {
        SigmaDotEvaluator::expected_sigma_reduction(self, x, range_rule)
    }
    fn expected_fisher_reduction(&self, x: &Vector2<f64>) -> f64 {
        SigmaDotEvaluator::expected_fisher_reduction(self, x)
    }
    fn predicted(&self, x: &Vector2<f64>, form: ReductionForm, range_rule: &[(f64, f64)]) -> Option<Self> {
        let cov = match form {
            ReductionForm::NaturalStep => self.expected_posterior_cov(x, range_rule),
            ReductionForm::ExpectedFisher => self.expected_fisher_posterior_cov(x),
        };
        self.with_covariance(&cov).ok()
    }
}

impl CriterionEvaluator for SpatialEvaluator {
    fn expected_sigma_dot_norm(&self, x: &Vector2<f64>) -> f64 {
        SpatialEvaluator::expected_sigma_dot_norm(self, x)
    }
    fn far_field_sigma_dot_norm(&self, x: &Vector2<f64>) -> f64 {
        SpatialEvaluator::far_field_sigma_dot_norm(self, x)
    }
    fn expected_information_gain(&self, x: &Vector2<f64>) -> f64 {
        SpatialEvaluator::expected_information_gain(self, x)
    }
    fn expected_sigma_reduction(&self, x: &Vector2<f64>, range_rule: &[(f64, f64)]) -> f64 {
        SpatialEvaluator::expected_sigma_reduction(self, x, range_rule)
    }
    fn expected_fisher_reduction(&self, x: &Vector2<f64>) -> f64 {
        SpatialEvaluator::expected_fisher_reduction(self, x)
    }
    fn predicted(&self, x: &Vector2<f64>, form: ReductionForm, range_rule: &[(f64, f64)]) -> Option<Self> {
        let cov = match form {
            ReductionForm::NaturalStep => self.expected_posterior_cov(x, range_rule),
            ReductionForm::ExpectedFisher => self.expected_fisher_posterior_cov(x),
        };
        self.with_covariance(&cov).ok()
    }
}
