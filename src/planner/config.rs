//! Planner configuration: one serde struct with defaults and a pure `validate()`.

use serde::{Deserialize, Serialize};

use crate::config::{check_f64, check_finite, check_integer, ConfigError};

/// How the next goal is chosen among the candidates ([`super::candidates`]).
///
/// Default `sigma_reduction` (issue 16): in the paired closed-loop study (README
/// "Closed-loop study", 1000 seeds × 20 measurements on the slides' problem, mixture and
/// particle-filter beliefs, landmark fixed or from the prior) its mean final error is
/// 0.034–0.052 m below `d_optimal`'s (every paired 95 % CI below 0), it loses 0.2–0.8 % of
/// runs against 1.0–1.4 %, localises faster over the run, and plans in ~85 % of
/// `d_optimal`'s time. `d_optimal` (the previous default) is the only other policy with
/// ≤ 1.5 % of runs lost; the others lose 8–90 %.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum GoalPolicy {
    /// Minimise J(x) = E_{y,z}‖Σ̇(0; x, z)‖₂ (the slides' choice).
    SigmaDotMin,
    /// Maximise J(x) (the other reading of "largest reduction of uncertainty").
    SigmaDotMax,
    /// Maximise the expected log-det information gain of one range measurement,
    /// E_{s~q}[½ ln(1 + u(s)ᵀ Σ u(s) / σ²)], u(s) = (s − x)/‖s − x‖.
    DOptimal,
    /// Drive along the fixed heading `straight_line_heading_rad` (non-adaptive baseline).
    StraightLine,
    /// A uniformly random valid candidate (seeded).
    Random,
    /// Maximise the expected uncertainty reduction of one natural step of the flow,
    /// J(x) = E_y E_z λmax(Σ − (Σ⁻¹ + G₊(x, z))⁻¹), G = −2Σ̇(0; x, z) with its negative
    /// eigenvalues clipped (`criterion.reduction_form: natural_step`), or the cheaper
    /// expected-Fisher form λmax(Σ − (Σ⁻¹ + E_s[u(s)u(s)ᵀ]/σ²)⁻¹) (`expected_fisher`);
    /// see [`super::criterion`].
    #[default]
    SigmaReduction,
}

impl GoalPolicy {
    /// snake_case name as in the config.
    pub fn name(self) -> &'static str {
        match self {
            GoalPolicy::SigmaDotMin => "sigma_dot_min",
            GoalPolicy::SigmaDotMax => "sigma_dot_max",
            GoalPolicy::DOptimal => "d_optimal",
            GoalPolicy::StraightLine => "straight_line",
            GoalPolicy::Random => "random",
            GoalPolicy::SigmaReduction => "sigma_reduction",
        }
    }

    /// Every policy, in a fixed order.
    pub const ALL: [GoalPolicy; 6] = [
        GoalPolicy::SigmaDotMin,
        GoalPolicy::SigmaDotMax,
        GoalPolicy::DOptimal,
        GoalPolicy::StraightLine,
        GoalPolicy::Random,
        GoalPolicy::SigmaReduction,
    ];
}

/// How E_s over the belief is taken in the Σ̇ criterion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SigmaDotApproximation {
    /// Monte Carlo over s (shared, moment-matched antithetic samples), exact in z.
    #[default]
    MonteCarlo,
    /// The slides' far-field closed form E_s f(s) ≈ f(μ):
    /// ‖E_z Σ̇‖₂ ≈ max(1, |‖x − y‖/‖x − μ‖ − 1|) / (2σ²).
    FarField,
}

/// Which predicted posterior the `sigma_reduction` policy measures the reduction to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReductionForm {
    /// One natural step of the flow from Σ̇(0): Σ₁ = (Σ⁻¹ + G₊(x, z))⁻¹, averaged over
    /// landmark draws y ~ q and Gauss–Hermite nodes of z ~ N(‖x − y‖, σ²).
    #[default]
    NaturalStep,
    /// The expected Fisher information of one range: Σ₁ = (Σ⁻¹ + E_s[u(s)u(s)ᵀ]/σ²)⁻¹,
    /// u(s) = (s − x)/‖s − x‖; no y or z quadrature (cheaper).
    ExpectedFisher,
}

/// Which landmarks one plan serves.
///
/// Default `all` (issue 16): in the multi-landmark study (README "Many landmarks",
/// 300 seeds, four unknown beacons from no prior) it gets all four below 1 m in 10.0
/// steps against 10.6 for `target` (paired Δ −0.6 [−1.2, −0.1] steps) and ends with a
/// lower mean error (Δ −0.005 [−0.010, −0.001] m), at ~3.7× the planning time with four
/// landmarks (bounded by `max_scored_landmarks`). With one landmark both are the same plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LandmarkSelection {
    /// One target landmark (`goal.target_landmark`, or the one with the largest tr Σ): the
    /// policy's criterion of its belief ([`super::plan_next_goal_with_grid`]).
    Target,
    /// Every landmark the node holds (unless `goal.target_landmark` names one): a
    /// candidate scores the sum Σᵢ Jᵢ(x) of each
    /// landmark's own criterion ([`super::plan_next_goal_multi`]); at most
    /// `max_scored_landmarks` of them, those with the largest λmax(Σᵢ).
    #[default]
    All,
}

impl LandmarkSelection {
    /// snake_case name as in the config.
    pub fn name(self) -> &'static str {
        match self {
            LandmarkSelection::Target => "target",
            LandmarkSelection::All => "all",
        }
    }
}

/// Sampling settings of the criterion.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CriterionConfig {
    /// Samples s ~ q of the belief (rounded up to even: antithetic pairs), shared by all
    /// candidates.
    pub belief_samples: usize,
    /// Landmark draws y ~ q of the Bayesian variant (z ~ N(‖x − y‖, σ²) is then exact).
    pub landmark_draws: usize,
    /// Monte Carlo or the far-field closed form.
    pub approximation: SigmaDotApproximation,
    /// Landmark draws y ~ q of the `sigma_reduction` criterion (natural step), shared by
    /// all candidates.
    pub reduction_landmark_draws: usize,
    /// Gauss–Hermite nodes in t of z = ‖x − y‖ + σt for the `sigma_reduction` criterion
    /// (natural step), per landmark draw.
    pub reduction_range_nodes: usize,
    /// The predicted posterior of `sigma_reduction`: one natural step or expected Fisher.
    pub reduction_form: ReductionForm,
}

impl Default for CriterionConfig {
    /// `reduction_*`: the "lite" 16 y × 4 z (as good as 64 × 8 in its reference
    /// study, 10× cheaper).
    fn default() -> Self {
        Self {
            belief_samples: 256,
            landmark_draws: 64,
            approximation: SigmaDotApproximation::MonteCarlo,
            reduction_landmark_draws: 16,
            reduction_range_nodes: 4,
            reduction_form: ReductionForm::NaturalStep,
        }
    }
}

/// Axis-aligned workspace rectangle, metres, in the odometry frame.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkspaceBounds {
    /// Smallest x, metres.
    pub min_x_m: f64,
    /// Largest x, metres.
    pub max_x_m: f64,
    /// Smallest y, metres.
    pub min_y_m: f64,
    /// Largest y, metres.
    pub max_y_m: f64,
}

impl Default for WorkspaceBounds {
    fn default() -> Self {
        Self { min_x_m: -10.0, max_x_m: 10.0, min_y_m: -10.0, max_y_m: 10.0 }
    }
}

impl WorkspaceBounds {
    /// True when `p` (metres) lies inside the closed rectangle.
    pub fn contains(&self, p: &nalgebra::Vector2<f64>) -> bool {
        p.x >= self.min_x_m && p.x <= self.max_x_m && p.y >= self.min_y_m && p.y <= self.max_y_m
    }
}

/// Everything the planner needs; YAML/serde with defaults for every key.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlannerConfig {
    /// Goal policy.
    pub policy: GoalPolicy,
    /// Largest distance from the current position to a goal, metres.
    pub max_step_m: f64,
    /// Spacing of the candidate grid, metres.
    pub resolution_m: f64,
    /// Candidates closer than this to the landmark mean μ are rejected, metres (the slides'
    /// Assumption 2; also keeps a single Gaussian from diverging near the landmark).
    pub min_landmark_distance_m: f64,
    /// Workspace bounds.
    pub workspace: WorkspaceBounds,
    /// Heading of the `straight_line` policy, radians from the +x axis.
    pub straight_line_heading_rad: f64,
    /// Criterion sampling.
    pub criterion: CriterionConfig,
    /// One target landmark, or the sum over all landmarks ([`LandmarkSelection`]).
    pub landmarks: LandmarkSelection,
    /// With `landmarks: all`, the most landmarks scored per plan (those with the largest
    /// λmax(Σᵢ), which bounds each one's reduction); the plan's cost grows linearly in it.
    pub max_scored_landmarks: usize,
    /// Steps of the receding horizon of `sigma_reduction`: 1 = greedy (one step); 2–3
    /// add, for each candidate, the best predicted reduction of the following steps
    /// (greedy rollout over [`ROLLOUT_DIRECTIONS`] directions at `max_step_m`, from the
    /// predicted posterior covariance, mean unchanged).
    pub horizon_steps: usize,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        Self {
            policy: GoalPolicy::default(),
            max_step_m: 1.0,
            resolution_m: 0.1,
            min_landmark_distance_m: 1.0,
            workspace: WorkspaceBounds::default(),
            straight_line_heading_rad: 0.0,
            criterion: CriterionConfig::default(),
            landmarks: LandmarkSelection::default(),
            max_scored_landmarks: 16,
            horizon_steps: 1,
        }
    }
}

/// Largest `max_scored_landmarks`.
pub const MAX_SCORED_LANDMARKS: usize = 256;
/// Largest `horizon_steps`.
pub const MAX_HORIZON_STEPS: usize = 3;
/// Directions (evenly spaced from +x, at `max_step_m`) of the rollout's later steps when
/// `horizon_steps` > 1.
pub const ROLLOUT_DIRECTIONS: usize = 8;

/// Largest candidate-grid half-width in cells (grid ≤ 401 × 401).
pub const MAX_GRID_HALF_CELLS: usize = 200;
/// Largest candidates × criterion.belief_samples of one plan (the default is 41² × 256
/// = 430 336; this allows ~20× that, tens of ms). With `policy: sigma_reduction` (natural
/// step) each (y, z) node counts as one more sample per candidate.
pub const MAX_PLAN_WORK: usize = 10_000_000;
/// Largest `criterion.reduction_range_nodes` (Gauss–Hermite nodes in t).
pub const MAX_REDUCTION_RANGE_NODES: usize = 32;

impl PlannerConfig {
    /// Checks every parameter against its allowed range (names relative to the
    /// planner section, e.g. `max_step_m`).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first offending parameter, its value and the range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_f64("max_step_m", self.max_step_m, |v| v > 0.0 && v <= 1000.0, "in (0, 1000]")?;
        let step = self.max_step_m;
        check_f64("resolution_m", self.resolution_m, |v| v > 0.0 && v <= step, &format!("in (0, max_step_m ({step})]"))?;
        if self.max_step_m / self.resolution_m > MAX_GRID_HALF_CELLS as f64 {
            return Err(ConfigError::invalid(
                "resolution_m",
                self.resolution_m,
                &format!(">= max_step_m / {MAX_GRID_HALF_CELLS} ({})", step / MAX_GRID_HALF_CELLS as f64),
            ));
        }
        check_f64("min_landmark_distance_m", self.min_landmark_distance_m, |v| v >= 0.0, ">= 0")?;
        let w = &self.workspace;
        check_finite("workspace.min_x_m", w.min_x_m)?;
        check_finite("workspace.min_y_m", w.min_y_m)?;
        check_f64("workspace.max_x_m", w.max_x_m, |v| v > w.min_x_m, &format!("> workspace.min_x_m ({})", w.min_x_m))?;
        check_f64("workspace.max_y_m", w.max_y_m, |v| v > w.min_y_m, &format!("> workspace.min_y_m ({})", w.min_y_m))?;
        check_finite("straight_line_heading_rad", self.straight_line_heading_rad)?;
        let c = &self.criterion;
        check_integer("criterion.belief_samples", c.belief_samples, 2, 65_536)?;
        check_integer("criterion.landmark_draws", c.landmark_draws, 1, 65_536)?;
        check_integer("criterion.reduction_landmark_draws", c.reduction_landmark_draws, 1, 65_536)?;
        check_integer("criterion.reduction_range_nodes", c.reduction_range_nodes, 1, MAX_REDUCTION_RANGE_NODES)?;
        // Work bound of one plan: candidates × belief samples.
        let side = 2 * (self.max_step_m / self.resolution_m).floor() as usize + 1;
        let work = side * side * c.belief_samples;
        if work > MAX_PLAN_WORK {
            return Err(ConfigError::invalid(
                "criterion.belief_samples",
                c.belief_samples,
                &format!(
                    "candidates ({side}x{side} from max_step_m / resolution_m) x criterion.belief_samples ({work}) <= {MAX_PLAN_WORK}"
                ),
            ));
        }
        if self.policy == GoalPolicy::SigmaReduction && c.reduction_form == ReductionForm::NaturalStep {
            let nodes = c.reduction_landmark_draws * c.reduction_range_nodes;
            let work = side * side * (c.belief_samples + nodes);
            if work > MAX_PLAN_WORK {
                return Err(ConfigError::invalid(
                    "criterion.reduction_landmark_draws",
                    c.reduction_landmark_draws,
                    &format!(
                        "candidates ({side}x{side}) x (criterion.belief_samples + criterion.reduction_landmark_draws x \
                         criterion.reduction_range_nodes) ({work}) <= {MAX_PLAN_WORK}"
                    ),
                ));
            }
        }
        check_integer("max_scored_landmarks", self.max_scored_landmarks, 1, MAX_SCORED_LANDMARKS)?;
        check_integer("horizon_steps", self.horizon_steps, 1, MAX_HORIZON_STEPS)?;
        if self.horizon_steps > 1 && self.policy != GoalPolicy::SigmaReduction {
            return Err(ConfigError::invalid(
                "horizon_steps",
                self.horizon_steps,
                &format!("1 unless policy = sigma_reduction (policy is {})", self.policy.name()),
            ));
        }
        // Work bound of one plan with several landmarks or a horizon: reachable candidates
        // x landmarks scored x (1 + R + ... + R^(h-1)) evaluations of (samples + nodes).
        let landmarks = match self.landmarks {
            LandmarkSelection::Target => 1,
            LandmarkSelection::All => self.max_scored_landmarks,
        };
        let rollout: usize = (0..self.horizon_steps as u32).map(|k| ROLLOUT_DIRECTIONS.pow(k)).sum();
        let per_eval = c.belief_samples
            + if self.policy == GoalPolicy::SigmaReduction && c.reduction_form == ReductionForm::NaturalStep {
                c.reduction_landmark_draws * c.reduction_range_nodes
            } else {
                0
            };
        let work = self.reachable_cells() * landmarks * rollout * per_eval;
        if work > MAX_PLAN_WORK {
            let parameter = if self.horizon_steps > 1 { "horizon_steps" } else { "max_scored_landmarks" };
            let value = if self.horizon_steps > 1 { self.horizon_steps } else { self.max_scored_landmarks };
            return Err(ConfigError::invalid(
                parameter,
                value,
                &format!(
                    "reachable candidates ({}) x landmarks scored ({landmarks}, max_scored_landmarks with landmarks = all) x \
                     rollout evaluations per candidate ({rollout}, horizon_steps) x per-candidate samples ({per_eval}) ({work}) \
                     <= {MAX_PLAN_WORK}",
                    self.reachable_cells()
                ),
            ));
        }
        Ok(())
    }

    /// Candidate cells within `max_step_m` of the robot (the disc of the grid; config
    /// assumed in range).
    pub fn reachable_cells(&self) -> usize {
        let half = (self.max_step_m / self.resolution_m + 1e-9).floor() as i64;
        let r2 = (self.max_step_m / self.resolution_m).powi(2) + 1e-6;
        (-half..=half).flat_map(|i| (-half..=half).map(move |j| (i, j))).filter(|(i, j)| (i * i + j * j) as f64 <= r2).count()
    }

    /// Landmark draws y ~ q of the configured policy's Bayesian criterion:
    /// `criterion.reduction_landmark_draws` for `sigma_reduction`, else
    /// `criterion.landmark_draws`.
    pub fn bayesian_landmark_draws(&self) -> usize {
        match self.policy {
            GoalPolicy::SigmaReduction => self.criterion.reduction_landmark_draws,
            _ => self.criterion.landmark_draws,
        }
    }
}
