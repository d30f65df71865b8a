//! Several landmarks and several steps (issue 16, items 3 and 4).
//!
//! **Many landmarks.** Landmarks are independent a priori (one Gaussian belief each,
//! qᵢ = N(μᵢ, Σᵢ)) and one position x yields one range to each, so a candidate is scored
//! by the sum of each landmark's own criterion, J(x) = Σᵢ Jᵢ(x): for `sigma_reduction`
//! Jᵢ(x) = E_{yᵢ~qᵢ} E_t λmax(Σᵢ − Σᵢ,₁(x, ‖x − yᵢ‖ + σt)), each with its own samples
//! (seeded by [`landmark_seed`]), so that a landmark's term is exactly what the single
//! planner computes for it ([`super::criterion_grid`] with that seed). For `d_optimal`
//! the sum is the expected log-det gain of the block-diagonal joint belief (exact for
//! independent landmarks).
//!
//! The cost is one criterion grid per scored landmark. It is bounded by scoring at most
//! `max_scored_landmarks` landmarks, those with the largest λmax(Σᵢ): a landmark's
//! reduction λmax(Σᵢ − Σᵢ,₁) never exceeds λmax(Σᵢ), so the ones left out (and any
//! below [`NEGLIGIBLE_FRACTION`] of the largest λmax, skipped as well) could each add at
//! most their λmax anywhere. Landmarks beyond the sensor's reach are the caller's to
//! leave out (the goal scheduler drops those farther than `localizer.max_range_m` plus
//! `max_step_m` from the robot). Every landmark passed in, scored or not, keeps the
//! candidates `min_landmark_distance_m` away from its mean.
//!
//! **Receding horizon** (`horizon_steps` h > 1, `sigma_reduction` only). The sum of the
//! per-step predicted reductions along a greedy rollout, not the terminal norm:
//!
//! J_h(x₁) = Σᵢ Jᵢ(x₁; Σᵢ) + max_{x₂ ∈ R(x₁)} [Σᵢ Jᵢ(x₂; Σ̄ᵢ,₁(x₁)) + max_{x₃ ∈ R(x₂)} …],
//!
//! where Σ̄ᵢ,₁(x) is the predicted posterior covariance of measuring at x (the mean over the
//! same (y, t) nodes of (Σᵢ⁻¹ + G₊)⁻¹, or the expected-Fisher posterior), the mean stays
//! μᵢ, and R(x) are the valid points among [`ROLLOUT_DIRECTIONS`] directions at
//! `max_step_m` from x (inside the workspace, ≥ `min_landmark_distance_m` from every
//! mean). The later steps are evaluated on the same standard-normal points
//! ([`super::SigmaDotEvaluator::with_covariance`]). Cost ≈ (1 + R + … + R^(h−1)) × one step.
//!
//! **Planar or 3-D.** Everything here is generic over the belief ([`PlannerBelief`]):
//! [`crate::estimator::GaussianBelief`]`<2>` scored with the planar range model
//! ([`super::SigmaDotEvaluator`], bit for bit what it was before the trait), or
//! `GaussianBelief<3>` relative to the sensor's plane ([`super::SpatialEvaluator`], the
//! sensor at (x, y, 0)). Candidates and rollout points stay in the plane; validity uses
//! the horizontal means, the scoring order λmax of the full Σ.

use nalgebra::Vector2;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::belief::{CriterionEvaluator, PlannerBelief};
use super::candidates::{CandidateGrid, CandidateStatus};
use super::config::{PlannerConfig, ReductionForm, SigmaDotApproximation, ROLLOUT_DIRECTIONS};
use super::criterion::LandmarkHypothesis;
use super::error::PlannerError;
use super::policy::{CriterionGrid, CriterionQuantity};
use crate::estimator::cubature::gauss_hermite_1d;

/// Landmarks whose λmax(Σᵢ) is below this fraction of the largest one are not scored:
/// their reduction (≤ λmax(Σᵢ)) is below 0.1 % of what the most uncertain one may give.
pub const NEGLIGIBLE_FRACTION: f64 = 1e-3;

/// Seed of landmark `index`'s samples in a plan seeded by `seed`: `seed` itself for
/// index 0 (so a one-landmark plan is the single planner's), decorrelated for the others.
pub fn landmark_seed(seed: u64, index: usize) -> u64 {
    seed.wrapping_add((index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Indices (ascending) of the landmarks a multi-landmark plan scores: at most
/// `config.max_scored_landmarks`, the largest λmax(Σᵢ) first (ties: lower index), none
/// below [`NEGLIGIBLE_FRACTION`] of the largest. Non-finite covariances sort last.
/// Planar or 3-D beliefs ([`PlannerBelief::largest_variance`]).
pub fn scored_landmarks<B: PlannerBelief>(config: &PlannerConfig, beliefs: &[B]) -> Vec<usize> {
    let lambda: Vec<f64> = beliefs
        .iter()
        .map(|b| {
            let l = b.largest_variance();
            if l.is_finite() { l } else { f64::NEG_INFINITY }
        })
        .collect();
    let mut order: Vec<usize> = (0..beliefs.len()).collect();
    order.sort_by(|&a, &b| lambda[b].total_cmp(&lambda[a]).then(a.cmp(&b)));
    let largest = order.first().map_or(0.0, |&i| lambda[i]);
    let mut kept: Vec<usize> = order
        .into_iter()
        .take(config.max_scored_landmarks)
        .filter(|&i| lambda[i] >= NEGLIGIBLE_FRACTION * largest)
        .collect();
    kept.sort_unstable();
    kept
}

/// One landmark's evaluator and what its criterion needs.
struct Scorer<'a> {
    config: &'a PlannerConfig,
    quantity: CriterionQuantity,
    range_rule: Vec<(f64, f64)>,
    /// Horizontal means of every landmark passed in (candidate validity of the rollout).
    means: Vec<Vector2<f64>>,
}

impl Scorer<'_> {
    fn value<E: CriterionEvaluator>(&self, ev: &E, p: &Vector2<f64>) -> f64 {
        match (self.quantity, self.config.criterion.approximation) {
            (CriterionQuantity::InformationGain, _) => ev.expected_information_gain(p),
            (CriterionQuantity::UncertaintyReduction, _) => match self.config.criterion.reduction_form {
                ReductionForm::NaturalStep => ev.expected_sigma_reduction(p, &self.range_rule),
                ReductionForm::ExpectedFisher => ev.expected_fisher_reduction(p),
            },
            (CriterionQuantity::SigmaDotNorm, SigmaDotApproximation::MonteCarlo) => ev.expected_sigma_dot_norm(p),
            (CriterionQuantity::SigmaDotNorm, SigmaDotApproximation::FarField) => ev.far_field_sigma_dot_norm(p),
        }
    }

    /// The predicted posterior evaluators after measuring at `p`; `None` if one is not SPD
    /// (numerically), which ends the rollout there.
    fn predicted<E: CriterionEvaluator>(&self, evs: &[E], p: &Vector2<f64>) -> Option<Vec<E>> {
        evs.iter().map(|ev| ev.predicted(p, self.config.criterion.reduction_form, &self.range_rule)).collect()
    }

    /// Best sum of predicted reductions over `steps` more rollout steps from `from`, the
    /// beliefs being `evs` (0 when no direction is valid).
    fn rollout<E: CriterionEvaluator>(&self, evs: &[E], from: &Vector2<f64>, steps: usize) -> f64 {
        if steps == 0 {
            return 0.0;
        }
        let step = self.config.max_step_m;
        let mut best = 0.0f64;
        for k in 0..ROLLOUT_DIRECTIONS {
            let angle = std::f64::consts::TAU * k as f64 / ROLLOUT_DIRECTIONS as f64;
            let p = from + step * Vector2::new(angle.cos(), angle.sin());
            if !self.config.workspace.contains(&p)
                || self.means.iter().any(|m| (p - m).norm() < self.config.min_landmark_distance_m)
            {
                continue;
            }
            let mut v: f64 = evs.iter().map(|ev| self.value(ev, &p)).sum();
            if steps > 1 {
                if let Some(next) = self.predicted(evs, &p) {
                    v += self.rollout(&next, &p, steps - 1);
                }
            }
            best = best.max(v);
        }
        best
    }
}

/// The criterion of `quantity` summed over `beliefs[i]` for i in `scored` (landmark i
/// sampled with [`landmark_seed`]`(seed, i)`, hypothesis `landmark`), plus the rollout
/// when `horizon_steps` > 1 and the quantity is the reduction; NaN at invalid cells.
// Crate-internal, called from two places; each argument is a distinct input of the
// criterion (a struct would only rename them).
#[allow(clippy::too_many_arguments)]
pub(crate) fn evaluate_sum<B: PlannerBelief>(
    config: &PlannerConfig,
    grid: CandidateGrid,
    beliefs: &[B],
    scored: &[usize],
    noise_var_m2: f64,
    landmark: LandmarkHypothesis,
    quantity: CriterionQuantity,
    seed: u64,
) -> Result<CriterionGrid, PlannerError> {
    let evs = scored
        .iter()
        .map(|&i| {
            let mut rng = StdRng::seed_from_u64(landmark_seed(seed, i));
            beliefs[i].evaluator(noise_var_m2, config.criterion.belief_samples, landmark, &mut rng)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let range_rule = match (quantity, config.criterion.reduction_form) {
        (CriterionQuantity::UncertaintyReduction, ReductionForm::NaturalStep) => {
            gauss_hermite_1d(config.criterion.reduction_range_nodes)
        }
        _ => Vec::new(),
    };
    let scorer = Scorer { config, quantity, range_rule, means: beliefs.iter().map(|b| b.horizontal_mean()).collect() };
    let horizon = if quantity == CriterionQuantity::UncertaintyReduction { config.horizon_steps } else { 1 };
    let values = grid
        .positions
        .iter()
        .zip(&grid.status)
        .map(|(p, s)| {
            if *s != CandidateStatus::Valid {
                return f64::NAN;
            }
            let mut v = 0.0;
            for ev in &evs {
                v += scorer.value(ev, p);
            }
            if horizon > 1 {
                if let Some(next) = scorer.predicted(&evs, p) {
                    v += scorer.rollout(&next, p, horizon - 1);
                }
            }
            v
        })
        .collect();
    Ok(CriterionGrid { candidates: grid, values, quantity })
}
