//! Goal policies: every proposed goal is reachable, inside the workspace and outside the
//! minimum distance to the landmark mean (property test over random configurations,
//! positions and beliefs, checked against a brute-force scan of the candidate grid);
//! config parsing and validation; named errors; determinism; grid/goal consistency.

use landmark_flow::config::ConfigError;
use landmark_flow::estimator::GaussianBelief;
use landmark_flow::planner::{
    criterion_grid, plan_next_goal, CandidateStatus, CriterionConfig, GoalPolicy, PlannerConfig, PlannerError,
    ReductionForm, WorkspaceBounds,
};
use nalgebra::{Matrix2, Vector2};
use proptest::prelude::*;

fn slides_belief() -> GaussianBelief<2> {
    GaussianBelief::new(Vector2::new(1.0, 1.0), Matrix2::new(5.5, -1.5, -1.5, 5.5)).unwrap()
}

fn small(policy: GoalPolicy) -> PlannerConfig {
    PlannerConfig {
        policy,
        criterion: CriterionConfig {
            belief_samples: 16,
            landmark_draws: 4,
            reduction_landmark_draws: 4,
            reduction_range_nodes: 2,
            ..CriterionConfig::default()
        },
        ..PlannerConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn goals_respect_bounds_reach_and_minimum_distance(
        policy_index in 0usize..GoalPolicy::ALL.len(), fisher in any::<bool>(),
        max_step in 0.2f64..3.0, cells in 1usize..8, min_dist in 0.0f64..4.0,
        x0 in -6.0f64..6.0, y0 in -6.0f64..6.0, w in 0.5f64..8.0, h in 0.5f64..8.0,
        px in -8.0f64..8.0, py in -8.0f64..8.0,
        mx in -6.0f64..6.0, my in -6.0f64..6.0, a in 0.01f64..6.0, b in 0.01f64..6.0, angle in 0.0f64..3.2,
        heading in -3.2f64..3.2, seed in 0u64..10_000,
    ) {
        let (c, s) = (angle.cos(), angle.sin());
        let r = Matrix2::new(c, -s, s, c);
        let belief = GaussianBelief::new(Vector2::new(mx, my), r * Matrix2::new(a, 0.0, 0.0, b) * r.transpose()).unwrap();
        let mut config = PlannerConfig {
            max_step_m: max_step,
            resolution_m: max_step / cells as f64,
            min_landmark_distance_m: min_dist,
            workspace: WorkspaceBounds { min_x_m: x0, max_x_m: x0 + w, min_y_m: y0, max_y_m: y0 + h },
            straight_line_heading_rad: heading,
            ..small(GoalPolicy::ALL[policy_index])
        };
        if fisher {
            config.criterion.reduction_form = ReductionForm::ExpectedFisher;
        }
        let current = Vector2::new(px, py);
        let grid = criterion_grid(&config, current, &belief, 2.0, seed).unwrap();
        let brute_force_valid = grid.candidates.positions.iter().filter(|p| {
            (*p - current).norm() <= max_step + 1e-9 && config.workspace.contains(p) && (*p - belief.mean).norm() >= min_dist
        }).count();
        prop_assert_eq!(brute_force_valid, grid.candidates.count(CandidateStatus::Valid));
        for (v, st) in grid.values.iter().zip(&grid.candidates.status) {
            prop_assert_eq!(v.is_finite(), *st == CandidateStatus::Valid);
        }
        match plan_next_goal(&config, current, &belief, 2.0, seed) {
            Ok(goal) => {
                let g = goal.position_m;
                prop_assert!(config.workspace.contains(&g), "goal {:?} outside {:?}", g, config.workspace);
                prop_assert!((g - current).norm() <= max_step + 1e-9);
                prop_assert!((g - belief.mean).norm() >= min_dist);
                prop_assert_eq!(goal.valid_candidates, brute_force_valid);
            }
            Err(PlannerError::NoValidCandidate { .. }) => prop_assert_eq!(brute_force_valid, 0),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}

#[test]
fn no_valid_candidate_is_a_named_error() {
    // Robot 5 m outside a 1 m workspace with a 1 m step: nothing is reachable in bounds.
    let config = PlannerConfig {
        workspace: WorkspaceBounds { min_x_m: 0.0, max_x_m: 1.0, min_y_m: 0.0, max_y_m: 1.0 },
        ..small(GoalPolicy::SigmaDotMin)
    };
    let err = plan_next_goal(&config, Vector2::new(6.0, 0.5), &slides_belief(), 2.0, 0).unwrap_err();
    match err {
        PlannerError::NoValidCandidate { out_of_bounds, too_close, .. } => {
            assert!(out_of_bounds > 0);
            assert_eq!(too_close, 0);
        }
        other => panic!("expected NoValidCandidate, got {other:?}"),
    }
    // Everything within 30 m of the mean is forbidden.
    let config = PlannerConfig { min_landmark_distance_m: 30.0, ..small(GoalPolicy::DOptimal) };
    assert!(matches!(
        plan_next_goal(&config, Vector2::zeros(), &slides_belief(), 2.0, 0),
        Err(PlannerError::NoValidCandidate { too_close, .. }) if too_close > 0
    ));
}

#[test]
fn bad_inputs_are_rejected_by_name() {
    let c = small(GoalPolicy::SigmaDotMin);
    let b = slides_belief();
    assert!(matches!(
        plan_next_goal(&c, Vector2::new(f64::NAN, 0.0), &b, 2.0, 0),
        Err(PlannerError::InvalidPosition { quantity: "current_position", .. })
    ));
    assert_eq!(plan_next_goal(&c, Vector2::zeros(), &b, 0.0, 0), Err(PlannerError::InvalidNoiseVariance(0.0)));
    assert!(plan_next_goal(&c, Vector2::zeros(), &b, f64::NAN, 0).is_err());
    let indefinite = GaussianBelief { mean: Vector2::zeros(), cov: Matrix2::new(1.0, 2.0, 2.0, 1.0) };
    assert!(matches!(plan_next_goal(&c, Vector2::zeros(), &indefinite, 2.0, 0), Err(PlannerError::InvalidBelief(_))));
}

#[test]
fn each_config_rejection_names_the_parameter() {
    type Mutation = Box<dyn Fn(&mut PlannerConfig)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("max_step_m", Box::new(|c| c.max_step_m = 0.0)),
        ("max_step_m", Box::new(|c| c.max_step_m = f64::NAN)),
        ("resolution_m", Box::new(|c| c.resolution_m = -0.1)),
        ("resolution_m", Box::new(|c| c.resolution_m = 2.0)),
        ("resolution_m", Box::new(|c| c.resolution_m = 1e-4)),
        ("min_landmark_distance_m", Box::new(|c| c.min_landmark_distance_m = -1.0)),
        ("workspace.min_x_m", Box::new(|c| c.workspace.min_x_m = f64::NEG_INFINITY)),
        ("workspace.max_x_m", Box::new(|c| c.workspace.max_x_m = -20.0)),
        ("workspace.max_y_m", Box::new(|c| c.workspace.max_y_m = c.workspace.min_y_m)),
        ("straight_line_heading_rad", Box::new(|c| c.straight_line_heading_rad = f64::INFINITY)),
        ("criterion.belief_samples", Box::new(|c| c.criterion.belief_samples = 1)),
        ("criterion.landmark_draws", Box::new(|c| c.criterion.landmark_draws = 0)),
        ("criterion.reduction_landmark_draws", Box::new(|c| c.criterion.reduction_landmark_draws = 0)),
        ("criterion.reduction_range_nodes", Box::new(|c| c.criterion.reduction_range_nodes = 0)),
        ("criterion.reduction_range_nodes", Box::new(|c| c.criterion.reduction_range_nodes = 33)),
        // Work bound: 21² candidates × (256 + 4096 × 32) > 1e7, only for the policy that uses it.
        (
            "criterion.reduction_landmark_draws",
            Box::new(|c| {
                c.policy = GoalPolicy::SigmaReduction;
                c.criterion.reduction_landmark_draws = 4096;
                c.criterion.reduction_range_nodes = 32;
            }),
        ),
    ];
    for (name, mutate) in cases {
        let mut c = PlannerConfig::default();
        mutate(&mut c);
        match c.validate() {
            Err(ConfigError::Invalid { parameter, .. }) => assert_eq!(parameter, name),
            other => panic!("{name}: expected ConfigError::Invalid, got {other:?}"),
        }
    }
    PlannerConfig::default().validate().unwrap();
    assert_eq!(PlannerConfig::default().policy, GoalPolicy::SigmaReduction, "the default (README decision)");
    // The same sizes are fine for a policy that does not use them, and for the Fisher form.
    let mut c = PlannerConfig { policy: GoalPolicy::DOptimal, ..PlannerConfig::default() };
    c.criterion.reduction_landmark_draws = 4096;
    c.criterion.reduction_range_nodes = 32;
    c.validate().unwrap();
    c.policy = GoalPolicy::SigmaReduction;
    assert!(c.validate().is_err());
    c.criterion.reduction_form = ReductionForm::ExpectedFisher;
    c.validate().unwrap();
}

#[test]
fn yaml_defaults_and_unknown_keys() {
    let c: PlannerConfig = serde_yaml::from_str("policy: sigma_dot_max\nmax_step_m: 0.5\ncriterion:\n  landmark_draws: 8\n").unwrap();
    assert_eq!(c.policy, GoalPolicy::SigmaDotMax);
    assert_eq!(c.max_step_m, 0.5);
    assert_eq!(c.criterion.landmark_draws, 8);
    assert_eq!(c.criterion.belief_samples, CriterionConfig::default().belief_samples);
    assert_eq!(c.resolution_m, PlannerConfig::default().resolution_m);
    assert!(serde_yaml::from_str::<PlannerConfig>("polcy: random\n").is_err());
    assert!(serde_yaml::from_str::<PlannerConfig>("criterion:\n  samples: 3\n").is_err());
    assert!(serde_yaml::from_str::<PlannerConfig>("policy: a_star\n").is_err());
    let c: PlannerConfig = serde_yaml::from_str(
        "policy: sigma_reduction\ncriterion:\n  reduction_form: expected_fisher\n  reduction_range_nodes: 8\n",
    )
    .unwrap();
    assert_eq!(c.policy, GoalPolicy::SigmaReduction);
    assert_eq!(c.criterion.reduction_form, ReductionForm::ExpectedFisher);
    assert_eq!(c.criterion.reduction_range_nodes, 8);
    assert_eq!(c.criterion.reduction_landmark_draws, 16);
    assert_eq!(c.bayesian_landmark_draws(), 16);
    assert!(serde_yaml::from_str::<PlannerConfig>("criterion:\n  reduction_form: kalman\n").is_err());
    for p in GoalPolicy::ALL {
        let back: PlannerConfig = serde_yaml::from_str(&format!("policy: {}\n", p.name())).unwrap();
        assert_eq!(back.policy, p);
    }
    let round: PlannerConfig = serde_yaml::from_str(&serde_yaml::to_string(&PlannerConfig::default()).unwrap()).unwrap();
    assert_eq!(round, PlannerConfig::default());
}

#[test]
fn goal_is_the_extremum_of_the_published_grid_and_deterministic() {
    let b = slides_belief();
    let x = Vector2::new(-1.0, 2.0);
    let fisher = PlannerConfig {
        policy: GoalPolicy::SigmaReduction,
        criterion: CriterionConfig { reduction_form: ReductionForm::ExpectedFisher, ..CriterionConfig::default() },
        ..PlannerConfig::default()
    };
    let configs = [GoalPolicy::SigmaDotMin, GoalPolicy::SigmaDotMax, GoalPolicy::DOptimal, GoalPolicy::SigmaReduction]
        .map(|policy| PlannerConfig { policy, ..PlannerConfig::default() });
    for c in configs.into_iter().chain([fisher]) {
        let policy = c.policy;
        let grid = criterion_grid(&c, x, &b, 2.0, 99).unwrap();
        let goal = plan_next_goal(&c, x, &b, 2.0, 99).unwrap();
        let finite = grid.values.iter().copied().filter(|v| v.is_finite());
        let extremum = if policy == GoalPolicy::SigmaDotMin {
            finite.fold(f64::INFINITY, f64::min)
        } else {
            finite.fold(f64::NEG_INFINITY, f64::max)
        };
        assert_eq!(goal.criterion_value, Some(extremum), "{policy:?}");
        assert_eq!(plan_next_goal(&c, x, &b, 2.0, 99).unwrap(), goal);
        let occ = grid.occupancy_percent();
        assert!(occ.iter().all(|&v| v == -1 || (0..=100).contains(&v)));
        assert_eq!(occ.iter().filter(|&&v| v >= 0).count(), goal.valid_candidates);
        assert!((grid.origin_corner_m() - (x - Vector2::repeat(1.05))).norm() < 1e-12);
    }
}

#[test]
fn straight_line_and_random_baselines() {
    let b = slides_belief();
    let c = PlannerConfig { policy: GoalPolicy::StraightLine, straight_line_heading_rad: 0.0, ..small(GoalPolicy::StraightLine) };
    let goal = plan_next_goal(&c, Vector2::new(-5.0, -5.0), &b, 2.0, 0).unwrap();
    assert!((goal.position_m - Vector2::new(-4.0, -5.0)).norm() < 1e-9, "{:?}", goal.position_m);
    let c = PlannerConfig { straight_line_heading_rad: std::f64::consts::FRAC_PI_2, ..c };
    let goal = plan_next_goal(&c, Vector2::new(-5.0, -5.0), &b, 2.0, 0).unwrap();
    assert!((goal.position_m - Vector2::new(-5.0, -4.0)).norm() < 1e-9, "{:?}", goal.position_m);
    let r = small(GoalPolicy::Random);
    let goals: std::collections::HashSet<(i64, i64)> = (0..20)
        .map(|seed| {
            let g = plan_next_goal(&r, Vector2::new(-5.0, -5.0), &b, 2.0, seed).unwrap().position_m;
            ((g.x * 1e6).round() as i64, (g.y * 1e6).round() as i64)
        })
        .collect();
    assert!(goals.len() > 10, "random policy is not spreading: {} distinct goals", goals.len());
}
