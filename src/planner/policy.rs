//! Goal selection: one pure function per question the node asks.

use nalgebra::Vector2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::belief::PlannerBelief;
use super::candidates::{CandidateGrid, CandidateStatus};
use super::config::{GoalPolicy, PlannerConfig};
use super::criterion::LandmarkHypothesis;
use super::error::PlannerError;
use super::multi::{evaluate_sum, scored_landmarks};
use crate::estimator::GaussianBelief;

/// What a [`CriterionGrid`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CriterionQuantity {
    /// J(x) = E‖Σ̇(0; x, z)‖₂, m⁻² per unit flow time (Monte Carlo or far field as configured).
    SigmaDotNorm,
    /// Expected log-det information gain of one range measurement, nats.
    InformationGain,
    /// Expected uncertainty reduction λmax(Σ − Σ₁) of one natural step (or the
    /// expected-Fisher form, as configured), m²; summed over the rollout's steps when
    /// `horizon_steps` > 1 and over the landmarks of a multi-landmark plan.
    UncertaintyReduction,
}

/// The chosen goal.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Goal {
    /// Goal position, metres (a valid candidate: reachable, in bounds, far enough from μ).
    pub position_m: Vector2<f64>,
    /// The policy's criterion at the goal (J for `sigma_dot_*`, information gain for
    /// `d_optimal`, the expected reduction for `sigma_reduction`); `None` for `straight_line` and `random`, which evaluate none.
    pub criterion_value: Option<f64>,
    /// Valid candidates the goal was chosen from.
    pub valid_candidates: usize,
}

/// A policy's criterion over the candidate grid, row-major with x fastest.
#[derive(Clone, Debug, PartialEq)]
pub struct CriterionGrid {
    /// The candidate cells and their validity.
    pub candidates: CandidateGrid,
    /// Criterion per cell; NaN for cells that are not valid candidates.
    pub values: Vec<f64>,
    /// What `values` holds.
    pub quantity: CriterionQuantity,
}

impl CriterionGrid {
    /// Lower-left corner of cell (0, 0), metres (OccupancyGrid's `info.origin`).
    pub fn origin_corner_m(&self) -> Vector2<f64> {
        self.candidates.origin_m - Vector2::repeat(0.5 * self.candidates.resolution_m)
    }

    /// Values min-max normalised to 0..=100 (rounded), −1 for invalid cells: the
    /// OccupancyGrid convention (100 = largest criterion). All equal values map to 0.
    pub fn occupancy_percent(&self) -> Vec<i8> {
        let finite = self.values.iter().copied().filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let span = hi - lo;
        self.values
            .iter()
            .map(|&v| {
                if !v.is_finite() {
                    -1
                } else if span > 0.0 {
                    (100.0 * (v - lo) / span).round().clamp(0.0, 100.0) as i8
                } else {
                    0
                }
            })
            .collect()
    }
}

fn check_inputs(
    config: &PlannerConfig,
    current_position: &Vector2<f64>,
    belief: &GaussianBelief<2>,
    noise_var_m2: f64,
) -> Result<GaussianBelief<2>, PlannerError> {
    check_settings(config, current_position, noise_var_m2)?;
    Ok(GaussianBelief::new(belief.mean, belief.cov)?)
}

/// The configuration, the position and σ², checked in that order.
fn check_settings(config: &PlannerConfig, current_position: &Vector2<f64>, noise_var_m2: f64) -> Result<(), PlannerError> {
    config.validate()?;
    if !current_position.iter().all(|v| v.is_finite()) {
        return Err(PlannerError::InvalidPosition {
            quantity: "current_position",
            value: [current_position.x, current_position.y],
        });
    }
    if !(noise_var_m2.is_finite() && noise_var_m2 > 0.0) {
        return Err(PlannerError::InvalidNoiseVariance(noise_var_m2));
    }
    Ok(())
}

fn no_candidate(config: &PlannerConfig, current_position: &Vector2<f64>, grid: &CandidateGrid) -> PlannerError {
    PlannerError::NoValidCandidate {
        position_m: [current_position.x, current_position.y],
        max_step_m: config.max_step_m,
        min_landmark_distance_m: config.min_landmark_distance_m,
        out_of_bounds: grid.count(CandidateStatus::OutOfBounds),
        too_close: grid.count(CandidateStatus::TooCloseToLandmark),
    }
}

/// The seed of the belief samples / landmark draws (`seed` itself for a single landmark,
/// [`super::multi::landmark_seed`]) and that of the random policy are decorrelated so
/// that switching policy does not change the samples.
fn policy_rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ 0xD1B5_4A32_D192_ED03)
}

/// Evaluates `quantity` at the valid candidates (NaN elsewhere) for one belief (plus the
/// receding horizon's rollout when configured).
fn evaluate(
    config: &PlannerConfig,
    grid: CandidateGrid,
    belief: &GaussianBelief<2>,
    noise_var_m2: f64,
    landmark: LandmarkHypothesis,
    quantity: CriterionQuantity,
    seed: u64,
) -> Result<CriterionGrid, PlannerError> {
    evaluate_sum(config, grid, std::slice::from_ref(belief), &[0], noise_var_m2, landmark, quantity, seed)
}

fn quantity_of(policy: GoalPolicy) -> CriterionQuantity {
    match policy {
        GoalPolicy::DOptimal => CriterionQuantity::InformationGain,
        GoalPolicy::SigmaReduction => CriterionQuantity::UncertaintyReduction,
        _ => CriterionQuantity::SigmaDotNorm,
    }
}

/// The configured policy's criterion over the candidate grid around `current_position`
/// (metres) for the belief N(μ, Σ) and range-noise variance `noise_var_m2` (m²): J(x) for
/// `sigma_dot_*` (and, for display, for `straight_line`/`random`), the information gain
/// for `d_optimal`, the expected reduction for `sigma_reduction`; Bayesian variant (landmark drawn from the belief). Samples are seeded
/// by `seed`, so the grid is the one [`plan_next_goal`] chooses from with the same seed.
///
/// # Errors
/// `Config`, `InvalidPosition`, `InvalidNoiseVariance`, `InvalidBelief` for bad
/// inputs. (An all-invalid grid is not an error here: every value is then NaN.)
pub fn criterion_grid(
    config: &PlannerConfig,
    current_position: Vector2<f64>,
    belief: &GaussianBelief<2>,
    noise_var_m2: f64,
    seed: u64,
) -> Result<CriterionGrid, PlannerError> {
    let (belief, grid) = prepare(config, &current_position, belief, noise_var_m2)?;
    evaluate(config, grid, &belief, noise_var_m2, bayesian(config), quantity_of(config.policy), seed)
}

/// The Bayesian landmark hypothesis of the node: the landmark drawn from the belief
/// ([`PlannerConfig::bayesian_landmark_draws`] draws).
fn bayesian(config: &PlannerConfig) -> LandmarkHypothesis {
    LandmarkHypothesis::FromBelief { draws: config.bayesian_landmark_draws() }
}

/// The checked inputs and the candidate grid every entry point starts from.
fn prepare(
    config: &PlannerConfig,
    current_position: &Vector2<f64>,
    belief: &GaussianBelief<2>,
    noise_var_m2: f64,
) -> Result<(GaussianBelief<2>, CandidateGrid), PlannerError> {
    let belief = check_inputs(config, current_position, belief, noise_var_m2)?;
    let grid = CandidateGrid::new(config, current_position, &belief.mean);
    Ok((belief, grid))
}

/// Chooses the next goal with the configured policy, Bayesian variant (the landmark is
/// drawn from the belief): what the node calls. See [`plan_next_goal_with_landmark`].
///
/// # Errors
/// As [`plan_next_goal_with_landmark`].
pub fn plan_next_goal(
    config: &PlannerConfig,
    current_position: Vector2<f64>,
    belief: &GaussianBelief<2>,
    noise_var_m2: f64,
    seed: u64,
) -> Result<Goal, PlannerError> {
    plan_with_grid(config, current_position, belief, noise_var_m2, bayesian(config), seed).map(|(goal, _)| goal)
}

/// Chooses the next goal among the valid candidates (reachable within `max_step_m`, in
/// the workspace, ≥ `min_landmark_distance_m` from μ):
/// * `sigma_dot_min` / `sigma_dot_max`: argmin / argmax of J(x) = E_{y,z}‖Σ̇(0; x, z)‖₂,
///   y from `landmark` (`Known` is the simulation-only oracle variant);
/// * `d_optimal`: argmax of E_s[½ ln(1 + u(s)ᵀΣu(s)/σ²)];
/// * `sigma_reduction`: argmax of E_y E_z λmax(Σ − (Σ⁻¹ + G₊(x, z))⁻¹) (or the
///   expected-Fisher form), y from `landmark`;
/// * `straight_line`: the candidate nearest to x + max_step_m·(cos θ, sin θ);
/// * `random`: a uniformly drawn candidate.
///
/// Ties go to the first candidate in row-major order. Deterministic given `seed`.
///
/// # Errors
/// `Config` (from [`PlannerConfig::validate`]), `InvalidPosition` for a non-finite
/// position, `InvalidNoiseVariance` for σ² not finite or ≤ 0, `InvalidBelief` for a belief
/// that is not finite and SPD, `NoValidCandidate` when every candidate is rejected.
pub fn plan_next_goal_with_landmark(
    config: &PlannerConfig,
    current_position: Vector2<f64>,
    belief: &GaussianBelief<2>,
    noise_var_m2: f64,
    landmark: LandmarkHypothesis,
    seed: u64,
) -> Result<Goal, PlannerError> {
    plan_with_grid(config, current_position, belief, noise_var_m2, landmark, seed).map(|(goal, _)| goal)
}

/// [`plan_next_goal`] that also returns the criterion grid the goal was chosen from
/// (`None` for `straight_line` and `random`, which evaluate none), so a caller that
/// publishes the heatmap does not evaluate the criterion twice.
///
/// # Errors
/// As [`plan_next_goal_with_landmark`].
pub fn plan_next_goal_with_grid(
    config: &PlannerConfig,
    current_position: Vector2<f64>,
    belief: &GaussianBelief<2>,
    noise_var_m2: f64,
    seed: u64,
) -> Result<(Goal, Option<CriterionGrid>), PlannerError> {
    plan_with_grid(config, current_position, belief, noise_var_m2, bayesian(config), seed)
}

fn plan_with_grid(
    config: &PlannerConfig,
    current_position: Vector2<f64>,
    belief: &GaussianBelief<2>,
    noise_var_m2: f64,
    landmark: LandmarkHypothesis,
    seed: u64,
) -> Result<(Goal, Option<CriterionGrid>), PlannerError> {
    let (belief, grid) = prepare(config, &current_position, belief, noise_var_m2)?;
    choose(config, current_position, grid, seed, |grid, quantity| {
        evaluate(config, grid, &belief, noise_var_m2, landmark, quantity, seed)
    })
}

/// The policy's choice among the valid cells of `grid`; `evaluate` computes the
/// criterion grid of a quantity (not called by `straight_line` and `random`).
fn choose(
    config: &PlannerConfig,
    current_position: Vector2<f64>,
    grid: CandidateGrid,
    seed: u64,
    evaluate: impl FnOnce(CandidateGrid, CriterionQuantity) -> Result<CriterionGrid, PlannerError>,
) -> Result<(Goal, Option<CriterionGrid>), PlannerError> {
    let valid = grid.valid_indices();
    if valid.is_empty() {
        return Err(no_candidate(config, &current_position, &grid));
    }
    let pick = |i: usize, value: Option<f64>, grid: &CandidateGrid| Goal {
        position_m: grid.positions[i],
        criterion_value: value,
        valid_candidates: valid.len(),
    };
    match config.policy {
        GoalPolicy::StraightLine => {
            let heading = config.straight_line_heading_rad;
            let target = current_position + config.max_step_m * Vector2::new(heading.cos(), heading.sin());
            let best = valid
                .iter()
                .copied()
                .min_by(|&a, &b| (grid.positions[a] - target).norm().total_cmp(&(grid.positions[b] - target).norm()))
                .expect("valid is not empty");
            Ok((pick(best, None, &grid), None))
        }
        GoalPolicy::Random => {
            let i = valid[policy_rng(seed).random_range(0..valid.len())];
            Ok((pick(i, None, &grid), None))
        }
        policy @ (GoalPolicy::SigmaDotMin | GoalPolicy::SigmaDotMax | GoalPolicy::DOptimal | GoalPolicy::SigmaReduction) => {
            let evaluated = evaluate(grid, quantity_of(policy))?;
            let minimise = policy == GoalPolicy::SigmaDotMin;
            let mut best: Option<(usize, f64)> = None;
            for &i in &valid {
                let v = evaluated.values[i];
                if !v.is_finite() {
                    continue;
                }
                let better = match best {
                    None => true,
                    Some((_, b)) => (minimise && v < b) || (!minimise && v > b),
                };
                if better {
                    best = Some((i, v));
                }
            }
            // Non-finite criteria everywhere (cannot happen for valid inputs): fall back
            // to the first valid candidate rather than fail.
            let (i, v) = best.unwrap_or((valid[0], f64::NAN));
            let goal = pick(i, Some(v), &evaluated.candidates);
            Ok((goal, Some(evaluated)))
        }
    }
}

/// The checked beliefs and the candidate grid of a multi-landmark plan (cells too close
/// to any landmark mean are invalid).
fn prepare_multi<B: PlannerBelief>(
    config: &PlannerConfig,
    current_position: &Vector2<f64>,
    beliefs: &[B],
    noise_var_m2: f64,
) -> Result<(Vec<B>, CandidateGrid), PlannerError> {
    if beliefs.is_empty() {
        return Err(PlannerError::NoLandmarks);
    }
    check_settings(config, current_position, noise_var_m2)?;
    let beliefs = beliefs.iter().map(PlannerBelief::checked).collect::<Result<Vec<_>, _>>()?;
    let means: Vec<Vector2<f64>> = beliefs.iter().map(PlannerBelief::horizontal_mean).collect();
    let grid = CandidateGrid::with_landmarks(config, current_position, &means);
    Ok((beliefs, grid))
}

/// The configured policy's criterion summed over the landmarks
/// ([`super::multi::scored_landmarks`] of `beliefs`; see [`super::multi`]) over the
/// candidate grid around `current_position`, the grid [`plan_next_goal_multi`] chooses
/// from with the same seed. Cells within `min_landmark_distance_m` of any mean are invalid
/// (horizontal distance for 3-D beliefs). `beliefs` are planar (`GaussianBelief<2>`) or
/// 3-D relative to the sensor's plane (`GaussianBelief<3>`, [`super::criterion_3d`]).
///
/// # Errors
/// As [`criterion_grid`], and `NoLandmarks` for an empty `beliefs`.
pub fn multi_criterion_grid<B: PlannerBelief>(
    config: &PlannerConfig,
    current_position: Vector2<f64>,
    beliefs: &[B],
    noise_var_m2: f64,
    seed: u64,
) -> Result<CriterionGrid, PlannerError> {
    let (beliefs, grid) = prepare_multi(config, &current_position, beliefs, noise_var_m2)?;
    let scored = scored_landmarks(config, &beliefs);
    evaluate_sum(config, grid, &beliefs, &scored, noise_var_m2, bayesian(config), quantity_of(config.policy), seed)
}

/// Chooses the next goal for several landmarks at once: the configured policy with the
/// criterion summed over the landmarks, J(x) = Σᵢ Jᵢ(x), each landmark's term computed
/// from its own belief `beliefs[i]` and seeded by [`super::multi::landmark_seed`]`(seed, i)`
/// (Bayesian variant; see [`super::multi`] for which landmarks are scored and the
/// receding horizon). Goals are valid candidates: reachable, in the workspace and ≥
/// `min_landmark_distance_m` from every landmark mean. With one belief this is exactly
/// [`plan_next_goal_with_grid`]. Returns the criterion grid the goal came from (`None`
/// for `straight_line` and `random`). Inputs are plain values (a snapshot of the beliefs),
/// so any thread can call it.
///
/// 3-D: `beliefs` of type `GaussianBelief<3>` are (x, y, z) with z the height above the
/// sensor's plane, scored with the 3-D range model ([`super::criterion_3d`]: the sensor at
/// (x, y, 0)); goals stay in the plane and keep `min_landmark_distance_m` horizontally
/// from every mean. One 3-D belief is the 3-D counterpart of the single planner (the
/// same seed, [`super::multi::landmark_seed`]`(seed, 0) = seed`).
///
/// # Errors
/// `NoLandmarks` for an empty `beliefs`, otherwise as [`plan_next_goal_with_landmark`]
/// (`InvalidBelief` if any belief is not finite and SPD).
pub fn plan_next_goal_multi<B: PlannerBelief>(
    config: &PlannerConfig,
    current_position: Vector2<f64>,
    beliefs: &[B],
    noise_var_m2: f64,
    seed: u64,
) -> Result<(Goal, Option<CriterionGrid>), PlannerError> {
    let (beliefs, grid) = prepare_multi(config, &current_position, beliefs, noise_var_m2)?;
    let scored = scored_landmarks(config, &beliefs);
    choose(config, current_position, grid, seed, |grid, quantity| {
        evaluate_sum(config, grid, &beliefs, &scored, noise_var_m2, bayesian(config), quantity, seed)
    })
}
