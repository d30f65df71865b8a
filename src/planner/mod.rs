//! Planner: where should the robot measure next?
//!
//! Plain Rust, no ROS. Given the current belief q = N(μ, Σ) over the landmark (metres,
//! m²), the robot position x (metres) and the range-noise variance σ² (m²), it scores the
//! candidate goals around x ([`candidates`]) and returns one ([`plan_next_goal`]) or the
//! whole score map for display ([`criterion_grid`], an OccupancyGrid-shaped heatmap).
//!
//! Criteria ([`criterion`]):
//! * the slides' Σ̇ criterion J(x) = E_z‖Σ̇(0; x, z)‖₂ with Σ̇(0) = ½E_{s~q}[∇²ₛ ln p(z|s)]
//!   (the flow's initial covariance rate), Monte Carlo over s and exact in z, in an
//!   oracle variant (z ~ N(‖x − y‖, σ²), true y) and a Bayesian one (y ~ q), plus the
//!   slides' far-field closed form max(1, |‖x − y‖/‖x − μ‖ − 1|)/(2σ²);
//! * the D-optimal criterion, the expected log-det information gain of one range
//!   measurement;
//! * the Σ-reduction criterion: the slides' objective ‖Σ(T) − Σ(0)‖₂ predicted by one
//!   natural step from Σ̇(0), J(x) = E_y E_z λmax(Σ − (Σ⁻¹ + G₊(x, z))⁻¹) with
//!   G = −2Σ̇(0) clipped to PSD, or its expected-Fisher form.
//!
//! Many landmarks and a receding horizon ([`multi`]): `landmarks: all` scores a
//! candidate by the criterion summed over every landmark's own belief
//! ([`plan_next_goal_multi`]); `horizon_steps` > 1 adds the best predicted reductions of
//! the next steps along a greedy rollout.
//!
//! 3-D beliefs ([`criterion_3d`], issue 15): the same criteria on N(μ, Σ) over (x, y, z)
//! with z the landmark's height above the sensor's plane; a candidate (x, y) puts the
//! sensor at (x, y, 0) and h(s) = ‖s − (x, y, 0)‖ is the 3-D range (M(c) = E[(I − uuᵀ)/h]
//! in the direct form). [`plan_next_goal_multi`], [`multi_criterion_grid`] and
//! [`scored_landmarks`] are generic over the belief ([`PlannerBelief`]: `GaussianBelief<2>`
//! or `GaussianBelief<3>`); goals stay in the plane, ≥ `min_landmark_distance_m`
//! horizontally from every mean.
//!
//! Policies ([`GoalPolicy`]): `sigma_dot_min`, `sigma_dot_max`, `d_optimal`,
//! `straight_line`, `random`, `sigma_reduction`. A goal is always reachable (≤ `max_step_m`), inside the
//! workspace and ≥ `min_landmark_distance_m` from μ, or the call fails with
//! [`PlannerError::NoValidCandidate`].

pub mod belief;
pub mod candidates;
pub mod config;
pub mod criterion;
pub mod criterion_3d;
pub mod error;
pub mod multi;
pub mod normal;
pub mod policy;

pub use candidates::{CandidateGrid, CandidateStatus};
pub use config::{CriterionConfig, GoalPolicy, LandmarkSelection, PlannerConfig, ReductionForm, SigmaDotApproximation, WorkspaceBounds};
pub use belief::{CriterionEvaluator, PlannerBelief};
pub use criterion::{LandmarkHypothesis, SigmaDotEvaluator};
pub use criterion_3d::SpatialEvaluator;
pub use error::PlannerError;
pub use multi::{landmark_seed, scored_landmarks};
pub use policy::{
    criterion_grid, multi_criterion_grid, plan_next_goal, plan_next_goal_multi, plan_next_goal_with_grid,
    plan_next_goal_with_landmark, CriterionGrid, CriterionQuantity, Goal,
};
