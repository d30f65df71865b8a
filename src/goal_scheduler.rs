//! When to choose a new goal and for which landmark: the goal logic of the node, in
//! the core so that the bag replayer runs it too.
//!
//! Target: `goal.target_landmark`, or (when empty) the landmark with the largest
//! tr(Σ). A new goal is planned (with [`crate::planner::plan_next_goal`] on the target's
//! moment-matched Gaussian) on these triggers, when `goal.enabled`:
//! - a range of the target was fused and `goal.replan_on_update` is set, or there is
//!   no goal yet;
//! - odometry arrived and the robot is within `goal.goal_tolerance_m` of the goal, or
//!   there is no goal yet;
//! - the re-planning timer fired (`goal.replan_period_s`, driven by the caller's clock).
//!
//! Target choice and plans use what ranges can still sharpen
//! ([`crate::localizer::LandmarkTrack::observable_belief`]: the published belief without
//! the map's unknown scale under drifting odometry, which no goal can reduce).
//!
//! With `planner.landmarks: all` (and no `goal.target_landmark` configured: a configured
//! target is planned for alone) the goal serves every landmark at once
//! ([`crate::planner::plan_next_goal_multi`] on all tracks' beliefs, initialising ones as
//! their grid's moments, like the target path; those farther than
//! `localizer.max_range_m + planner.max_step_m` from the robot cannot be ranged from any
//! candidate and are left out; if that leaves none, the target path plans). The target
//! still names the plan and drives the triggers.
//!
//! With `localizer.dimension: 3` the plan is on the 3-D beliefs
//! ([`crate::planner::criterion_3d`]): the request carries each landmark's (x, y, z)
//! belief ([`Localizer::planning_belief3`]: the track's `summary3`, or while it is
//! initialising — a grid over (x, y) has no 3-D belief — the grid's moments × the
//! height prior) with z taken relative to the sensor's plane, z − the sensor's height
//! ([`Localizer::latest_sensor_height_m`]), and [`plan`] calls
//! [`crate::planner::plan_next_goal_multi`] on them (on the target's alone for the target
//! path: one belief is the single planner's counterpart). Goals, the heatmap and the
//! triggers are the planar ones.
//!
//! A plan is one pure function of an owned snapshot: [`GoalScheduler::request`] takes
//! the [`PlanRequest`] (target belief, robot position, planner parameters, seed,
//! trigger, stamp), [`plan`] computes it, [`GoalScheduler::accept`] makes its goal
//! current. The node core runs `plan` inline or on its planning thread
//! (`crate::node_core`); the goal is the same either way.

use crate::estimator::GaussianBelief;
use crate::planner::PlannerBelief;
use crate::localizer::Localizer;
use crate::msg::Stamp;
use crate::node_config::LandmarkFlowNodeConfig;
use crate::planner::{
    criterion_grid, multi_criterion_grid, plan_next_goal_multi, plan_next_goal_with_grid, CriterionGrid, Goal,
    LandmarkSelection, PlannerConfig, PlannerError,
};
use nalgebra::{Vector2, Vector3};

/// What happened that may call for a new goal.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanTrigger {
    /// A range of this landmark was fused.
    Fused(String),
    /// Odometry arrived.
    Odometry,
    /// The re-planning timer fired.
    Timer,
}

/// A new goal, and what it was planned from.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedGoal {
    /// The landmark the goal is for.
    pub landmark_id: String,
    /// Robot (base) position the goal was planned from, metres.
    pub from_m: Vector2<f64>,
    pub goal: Goal,
    /// The criterion over the candidates, when heatmaps are published.
    pub heatmap: Option<CriterionGrid>,
}

/// A planning attempt that failed (e.g. no valid candidate).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanFailure {
    pub landmark_id: String,
    pub error: PlannerError,
}

/// Holds the current goal and decides when to replace it.
#[derive(Debug, Clone)]
pub struct GoalScheduler {
    config: LandmarkFlowNodeConfig,
    goal: Option<Vector2<f64>>,
    plans: u64,
    /// The request whose outcome is awaited (only ever set between `request` and
    /// `accept`, i.e. while a plan runs in the background).
    awaiting: Option<u64>,
}

impl GoalScheduler {
    /// `config` must be validated.
    pub fn new(config: &LandmarkFlowNodeConfig) -> Self {
        Self { config: config.clone(), goal: None, plans: 0, awaiting: None }
    }

    /// Takes a new (validated) configuration: the next trigger plans with it; the
    /// current goal stays until then.
    pub fn reconfigure(&mut self, config: &LandmarkFlowNodeConfig) {
        self.config = config.clone();
    }

    /// The current goal position, metres.
    pub fn current_goal(&self) -> Option<Vector2<f64>> {
        self.goal
    }

    /// Forgets the goal and any awaited plan (the next trigger plans a new one).
    pub fn reset(&mut self) {
        self.goal = None;
        self.awaiting = None;
    }

    /// Whether a requested plan's outcome is still awaited (background planning).
    pub fn awaiting_plan(&self) -> bool {
        self.awaiting.is_some()
    }

    /// The landmark to plan for (see the module doc).
    pub fn target(&self, localizer: &Localizer) -> Option<String> {
        let target = &self.config.goal.target_landmark;
        if !target.is_empty() {
            return localizer.tracks().contains_key(target).then(|| target.clone());
        }
        localizer
            .tracks()
            .iter()
            .max_by(|a, b| a.1.observable_belief().cov.trace().total_cmp(&b.1.observable_belief().cov.trace()))
            .map(|(id, _)| id.clone())
    }

    /// Plans a new goal if `trigger` calls for one, inline: [`GoalScheduler::request`],
    /// [`plan`], [`GoalScheduler::accept`]. `None` when it does not or when there is no
    /// target or no robot position yet. (The request's stamp is left at zero: the
    /// node core passes its own through [`GoalScheduler::request`].)
    pub fn on_trigger(
        &mut self,
        trigger: &PlanTrigger,
        localizer: &Localizer,
    ) -> Option<Result<PlannedGoal, PlanFailure>> {
        let request = self.request(trigger, localizer, Stamp::default())?;
        let outcome = plan(&request);
        self.accept(&request, &outcome);
        Some(outcome)
    }

    /// The owned snapshot of a plan if `trigger` calls for one (see the module doc);
    /// `None` when it does not or when there is no target or no robot position yet.
    /// `stamp` is the time of the data the plan starts from (the goal's stamp). Each
    /// request takes the next planner seed. While a request is awaiting its result
    /// (background planning), "no goal yet" and "goal reached" do not ask again: the
    /// timer and `replan_on_update` do (the newest request wins in the worker).
    pub fn request(&mut self, trigger: &PlanTrigger, localizer: &Localizer, stamp: Stamp) -> Option<PlanRequest> {
        let g = &self.config.goal;
        if !g.enabled {
            return None;
        }
        let target = self.target(localizer)?;
        let x = localizer.latest_base_position()?;
        let from = Vector2::new(x.x, x.y);
        let waiting = self.awaiting.is_some();
        let due = match trigger {
            PlanTrigger::Timer => true,
            PlanTrigger::Fused(id) => (self.goal.is_none() && !waiting) || (g.replan_on_update && *id == target),
            PlanTrigger::Odometry => !waiting && self.goal.is_none_or(|goal| (from - goal).norm() <= g.goal_tolerance_m),
        };
        if !due {
            return None;
        }
        let belief = localizer.tracks()[&target].observable_belief();
        // 3-D: heights relative to the sensor's plane.
        let sensor_height = (self.config.localizer.dimension == 3).then(|| localizer.latest_sensor_height_m()).flatten();
        let relative = |id: &str| {
            let h = sensor_height?;
            let b = localizer.planning_belief3(id)?;
            Some(GaussianBelief { mean: b.mean - Vector3::new(0.0, 0.0, h), cov: b.cov })
        };
        let belief3 = relative(&target);
        let noise_var = self.config.localizer.default_noise_std_m.powi(2);
        let seq = self.plans;
        let seed = self.config.localizer.estimator.seed.wrapping_add(seq);
        self.plans += 1;
        let planner = &self.config.planner;
        // A configured target, or none of them in reach: the target path.
        let all = planner.landmarks == LandmarkSelection::All && g.target_landmark.is_empty();
        let reach = self.config.localizer.max_range_m + planner.max_step_m;
        let all_beliefs: Option<Vec<_>> = all
            .then(|| localizer.tracks().values().map(|t| t.observable_belief()).filter(|b| (b.mean - from).norm() <= reach).collect())
            .filter(|beliefs: &Vec<_>| !beliefs.is_empty());
        let all_beliefs3: Option<Vec<_>> = (all && belief3.is_some())
            .then(|| {
                localizer
                    .tracks()
                    .keys()
                    .filter_map(|id| relative(id))
                    .filter(|b| (b.horizontal_mean() - from).norm() <= reach)
                    .collect()
            })
            .filter(|beliefs: &Vec<_>| !beliefs.is_empty());
        self.awaiting = Some(seq);
        Some(PlanRequest {
            seq,
            trigger: trigger.clone(),
            stamp,
            planner: self.config.planner,
            heatmap: self.config.publish.heatmap,
            landmark_id: target,
            belief,
            all_beliefs,
            belief3,
            all_beliefs3,
            from_m: from,
            noise_var_m2: noise_var,
            seed,
        })
    }

    /// Takes the outcome of `request` ([`plan`]'s): a goal becomes the current goal; the
    /// newest request's outcome (goal or failure) ends the wait.
    pub fn accept(&mut self, request: &PlanRequest, outcome: &Result<PlannedGoal, PlanFailure>) {
        if let Ok(planned) = outcome {
            self.goal = Some(planned.goal.position_m);
        }
        if self.awaiting == Some(request.seq) {
            self.awaiting = None;
        }
    }
}

/// Everything one plan needs, owned: a snapshot of the scheduler's configuration and
/// of the localizer at the trigger ([`GoalScheduler::request`]), so [`plan`] runs the
/// same inline or on a planning thread while the localizer moves on.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanRequest {
    /// The scheduler's plan counter at the request: orders requests (newest wins).
    pub seq: u64,
    /// What called for the plan.
    pub trigger: PlanTrigger,
    /// Time of the data the plan starts from; the goal's and heatmap's stamp.
    pub stamp: Stamp,
    /// The planner's parameters (validated with the node's).
    pub planner: PlannerConfig,
    /// Whether the criterion grid is wanted (`publish.heatmap`).
    pub heatmap: bool,
    /// The target landmark and its moment-matched belief, metres / m².
    pub landmark_id: String,
    pub belief: GaussianBelief<2>,
    /// `planner.landmarks: all`: every landmark in reach (module doc), the target's
    /// among them; `None` plans for the target alone.
    pub all_beliefs: Option<Vec<GaussianBelief<2>>>,
    /// `localizer.dimension: 3`: the target's (x, y, z) belief with z relative to the
    /// sensor's plane (z − the sensor's height), metres / m²; when set, the plan is on it
    /// (and on `all_beliefs3`) instead of `belief` / `all_beliefs`.
    pub belief3: Option<GaussianBelief<3>>,
    /// `planner.landmarks: all` in 3-D: every landmark in reach (horizontally), as
    /// `belief3`.
    pub all_beliefs3: Option<Vec<GaussianBelief<3>>>,
    /// Robot (base) position, metres.
    pub from_m: Vector2<f64>,
    /// Range-noise variance σ² = `localizer.default_noise_std_m`², m².
    pub noise_var_m2: f64,
    /// Planner seed: `localizer.estimator.seed` + `seq`.
    pub seed: u64,
}

/// The plan of `request`: [`plan_next_goal_multi`] over its landmarks, or
/// [`plan_next_goal_with_grid`] for the target alone (when `all_beliefs` is `None`, or
/// when every candidate is within `min_landmark_distance_m` of some landmark's mean —
/// e.g. just-heard landmarks whose grids are centred on the robot — where the target
/// path keeps only the target's mean away), plus the criterion grid for the heatmap
/// when asked (policies without a criterion get one evaluated for the heatmap only).
/// With `belief3` set (3-D) the same on the 3-D beliefs, the target path being
/// [`plan_next_goal_multi`] on `belief3` alone. Pure: the same request gives the same goal.
///
/// # Errors
/// [`PlanFailure`] carrying the planner's error (e.g. no valid candidate).
pub fn plan(request: &PlanRequest) -> Result<PlannedGoal, PlanFailure> {
    if let Some(target) = &request.belief3 {
        return plan3(request, target);
    }
    let PlanRequest { planner, from_m: from, belief, noise_var_m2: noise_var, seed, .. } = request;
    let landmark_id = request.landmark_id.clone();
    let (scored, planned) = match &request.all_beliefs {
        Some(beliefs) => match plan_next_goal_multi(planner, *from, beliefs, *noise_var, *seed) {
            Err(PlannerError::NoValidCandidate { .. }) => (None, plan_next_goal_with_grid(planner, *from, belief, *noise_var, *seed)),
            planned => (Some(beliefs), planned),
        },
        None => (None, plan_next_goal_with_grid(planner, *from, belief, *noise_var, *seed)),
    };
    match planned {
        Ok((goal, grid)) => {
            let heatmap = match (request.heatmap, grid, scored) {
                (false, _, _) => None,
                (true, Some(grid), _) => Some(grid),
                (true, None, Some(beliefs)) => multi_criterion_grid(planner, *from, beliefs, *noise_var, *seed).ok(),
                (true, None, None) => criterion_grid(planner, *from, belief, *noise_var, *seed).ok(),
            };
            Ok(PlannedGoal { landmark_id, from_m: *from, goal, heatmap })
        }
        Err(error) => Err(PlanFailure { landmark_id, error }),
    }
}

/// [`plan`] on 3-D beliefs: every in-reach landmark's when given, else (or when they
/// leave no valid candidate) the target's alone.
fn plan3(request: &PlanRequest, target: &GaussianBelief<3>) -> Result<PlannedGoal, PlanFailure> {
    let PlanRequest { planner, from_m: from, noise_var_m2: noise_var, seed, .. } = request;
    let landmark_id = request.landmark_id.clone();
    let alone = std::slice::from_ref(target);
    let (beliefs, planned) = match &request.all_beliefs3 {
        Some(all) => match plan_next_goal_multi(planner, *from, all, *noise_var, *seed) {
            Err(PlannerError::NoValidCandidate { .. }) => (alone, plan_next_goal_multi(planner, *from, alone, *noise_var, *seed)),
            planned => (all.as_slice(), planned),
        },
        None => (alone, plan_next_goal_multi(planner, *from, alone, *noise_var, *seed)),
    };
    match planned {
        Ok((goal, grid)) => {
            let heatmap = match (request.heatmap, grid) {
                (false, _) => None,
                (true, Some(grid)) => Some(grid),
                (true, None) => multi_criterion_grid(planner, *from, beliefs, *noise_var, *seed).ok(),
            };
            Ok(PlannedGoal { landmark_id, from_m: *from, goal, heatmap })
        }
        Err(error) => Err(PlanFailure { landmark_id, error }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::localizer::{PriorsConfig, RangeInput};
    use nalgebra::{Isometry3, Translation3, UnitQuaternion};

    fn setup(replan_on_update: bool) -> (GoalScheduler, Localizer) {
        let mut c = LandmarkFlowNodeConfig::default();
        c.localizer.priors = PriorsConfig {
            ids: vec!["a".into(), "b".into()],
            means_m: vec![5.0, 0.0, -5.0, 0.0],
            covs_m2: vec![1.0, 0.0, 0.0, 1.0, 4.0, 0.0, 0.0, 4.0],
            ..PriorsConfig::default()
        };
        c.goal.replan_on_update = replan_on_update;
        c.publish.heatmap = false;
        c.validate().unwrap();
        (GoalScheduler::new(&c), Localizer::new(c.localizer.clone()).unwrap())
    }

    fn at(x: f64) -> Isometry3<f64> {
        Isometry3::from_parts(Translation3::new(x, 0.0, 0.0), UnitQuaternion::identity())
    }

    #[test]
    fn plans_for_the_most_uncertain_landmark_once_the_robot_is_known() {
        let (mut s, mut loc) = setup(false);
        assert_eq!(s.on_trigger(&PlanTrigger::Timer, &loc), None, "no robot position yet");
        loc.add_odometry(1.0, "odom", at(0.0)).unwrap();
        let p = s.on_trigger(&PlanTrigger::Odometry, &loc).unwrap().unwrap();
        assert_eq!(p.landmark_id, "b", "tr(Σ_b) = 8 > tr(Σ_a) = 2");
        assert!((p.goal.position_m - p.from_m).norm() <= 1.0 + 1e-12);
        assert_eq!(s.current_goal(), Some(p.goal.position_m));
        // Far from the goal: odometry does not re-plan; the timer does.
        assert_eq!(s.on_trigger(&PlanTrigger::Odometry, &loc), None);
        assert!(s.on_trigger(&PlanTrigger::Timer, &loc).is_some());
    }

    /// `planner.landmarks: all`: the goal is the multi-landmark plan over both tracks'
    /// beliefs (the same goal and heatmap as `plan_next_goal_multi` on them).
    #[test]
    fn all_landmarks_plan_over_every_track() {
        let (_, mut loc) = setup(false);
        let mut c = LandmarkFlowNodeConfig::default();
        c.localizer = loc.config().clone();
        c.planner.landmarks = LandmarkSelection::All;
        c.validate().unwrap();
        let mut s = GoalScheduler::new(&c);
        loc.add_odometry(1.0, "odom", at(0.0)).unwrap();
        let p = s.on_trigger(&PlanTrigger::Odometry, &loc).unwrap().unwrap();
        let beliefs: Vec<_> = loc.tracks().values().map(|t| t.summary.belief).collect();
        assert_eq!(beliefs.len(), 2);
        let (goal, grid) = plan_next_goal_multi(&c.planner, Vector2::zeros(), &beliefs, 0.25, 0).unwrap();
        assert_eq!(p.goal, goal);
        let bits = |g: &CriterionGrid| g.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(p.heatmap.as_ref().map(bits), grid.as_ref().map(bits), "the summed criterion is the heatmap");
        assert_eq!(p.landmark_id, "b", "the target still names the plan");
        // A configured target is planned for alone.
        c.goal.target_landmark = "a".into();
        let mut s = GoalScheduler::new(&c);
        let p = s.on_trigger(&PlanTrigger::Odometry, &loc).unwrap().unwrap();
        let a = loc.tracks()["a"].summary.belief;
        let (goal, _) = crate::planner::plan_next_goal_with_grid(&c.planner, Vector2::zeros(), &a, 0.25, 0).unwrap();
        assert_eq!((p.landmark_id.as_str(), p.goal), ("a", goal));
    }

    /// `planner.landmarks: all` with a landmark whose mean is at the robot (every
    /// candidate within `min_landmark_distance_m` of it, as for a just-heard landmark's
    /// grid): the plan is the target path's, not a failure.
    #[test]
    fn all_landmarks_fall_back_to_the_target_when_a_mean_blocks_every_candidate() {
        let mut c = LandmarkFlowNodeConfig::default();
        c.localizer.priors = PriorsConfig {
            ids: vec!["far".into(), "here".into()],
            means_m: vec![20.0, 0.0, 0.2, 0.0],
            covs_m2: vec![50.0, 0.0, 0.0, 50.0, 4.0, 0.0, 0.0, 4.0],
            ..PriorsConfig::default()
        };
        c.planner.landmarks = LandmarkSelection::All;
        // Every candidate (≤ max_step_m = 1 m from the robot) is within 1.5 m of "here".
        c.planner.min_landmark_distance_m = 1.5;
        c.publish.heatmap = false;
        c.validate().unwrap();
        let mut loc = Localizer::new(c.localizer.clone()).unwrap();
        loc.add_odometry(1.0, "odom", at(0.0)).unwrap();
        let beliefs: Vec<_> = loc.tracks().values().map(|t| t.summary.belief).collect();
        assert!(
            matches!(plan_next_goal_multi(&c.planner, Vector2::zeros(), &beliefs, 0.25, 0), Err(PlannerError::NoValidCandidate { .. })),
            "the scenario must block every candidate"
        );
        let p = GoalScheduler::new(&c).on_trigger(&PlanTrigger::Odometry, &loc).unwrap().unwrap();
        let far = loc.tracks()["far"].summary.belief;
        let (goal, _) = plan_next_goal_with_grid(&c.planner, Vector2::zeros(), &far, 0.25, 0).unwrap();
        assert_eq!((p.landmark_id.as_str(), p.goal), ("far", goal));
    }

    #[test]
    fn replans_on_reaching_the_goal_and_on_fused_ranges_when_asked() {
        let (mut s, mut loc) = setup(true);
        loc.add_odometry(1.0, "odom", at(0.0)).unwrap();
        let goal = s.on_trigger(&PlanTrigger::Odometry, &loc).unwrap().unwrap().goal.position_m;
        loc.add_odometry(2.0, "odom", Isometry3::from_parts(Translation3::new(goal.x, goal.y, 0.0), UnitQuaternion::identity()))
            .unwrap();
        assert!(s.on_trigger(&PlanTrigger::Odometry, &loc).is_some(), "goal reached");
        let r = RangeInput { topic: "range".into(), stamp_s: 2.0, frame_id: String::new(), landmark_id: "b".into(), range_m: 5.0, variance_m2: 0.0, sensor_limits_m: None };
        loc.add_range(&r).unwrap();
        assert!(s.on_trigger(&PlanTrigger::Fused("b".into()), &loc).is_some());
        assert_eq!(s.on_trigger(&PlanTrigger::Fused("a".into()), &loc), None, "not the target");
    }

    /// Background planning: while a request is awaited, "no goal yet" and "goal reached"
    /// do not ask again (odometry at 50 Hz would queue a plan per message); the timer
    /// does, with the next seed; only the newest request's outcome ends the wait.
    #[test]
    fn an_awaited_plan_holds_back_the_goal_conditions_but_not_the_timer() {
        let (mut s, mut loc) = setup(false);
        loc.add_odometry(1.0, "odom", at(0.0)).unwrap();
        let first = s.request(&PlanTrigger::Odometry, &loc, Stamp::from_secs(1.0)).unwrap();
        assert!(s.awaiting_plan());
        assert_eq!(s.request(&PlanTrigger::Odometry, &loc, Stamp::from_secs(1.1)), None, "awaited");
        assert_eq!(s.request(&PlanTrigger::Fused("b".into()), &loc, Stamp::from_secs(1.1)), None, "awaited");
        let timer = s.request(&PlanTrigger::Timer, &loc, Stamp::from_secs(1.2)).unwrap();
        assert_eq!((first.seq, timer.seq, timer.seed - first.seed), (0, 1, 1));
        assert_eq!((first.stamp, first.landmark_id.as_str()), (Stamp::from_secs(1.0), "b"));
        let outcome = plan(&first);
        s.accept(&first, &outcome);
        assert_eq!(s.current_goal(), Some(outcome.unwrap().goal.position_m));
        assert!(s.awaiting_plan(), "the timer's request is still out");
        s.accept(&timer, &plan(&timer));
        assert!(!s.awaiting_plan());
        s.reset();
        assert_eq!(s.current_goal(), None);
    }
}
