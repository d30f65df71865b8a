//! The multi-landmark planner (issue 16 item 3) against independent references: the sum
//! of single-landmark criterion grids computed separately, the Kalman (linear-Gaussian)
//! closed form for beliefs small against their distance, the single planner for one
//! landmark, a constructed two-landmark geometry whose answer is computed by hand, and a
//! property test of goal validity.

use landmark_flow::config::ConfigError;
use landmark_flow::estimator::GaussianBelief;
use landmark_flow::planner::{
    criterion_grid, landmark_seed, multi_criterion_grid, plan_next_goal_multi, plan_next_goal_with_grid, scored_landmarks,
    CandidateStatus, CriterionConfig, CriterionGrid, Goal, GoalPolicy, LandmarkSelection, PlannerConfig, PlannerError, ReductionForm,
    WorkspaceBounds,
};
use nalgebra::{Matrix2, Vector2};
use proptest::prelude::*;

fn rotated(a: f64, b: f64, angle_deg: f64) -> Matrix2<f64> {
    let t = angle_deg.to_radians();
    let (c, s) = (t.cos(), t.sin());
    let r = Matrix2::new(c, -s, s, c);
    r * Matrix2::new(a, 0.0, 0.0, b) * r.transpose()
}

fn belief(x: f64, y: f64, cov: Matrix2<f64>) -> GaussianBelief<2> {
    GaussianBelief::new(Vector2::new(x, y), cov).expect("SPD test belief")
}

fn small(policy: GoalPolicy) -> PlannerConfig {
    PlannerConfig {
        policy,
        criterion: CriterionConfig {
            belief_samples: 32,
            landmark_draws: 4,
            reduction_landmark_draws: 4,
            reduction_range_nodes: 3,
            ..CriterionConfig::default()
        },
        ..PlannerConfig::default()
    }
}

/// λmax of the Kalman covariance reduction of one range linearised at the mean,
/// H = uᵀ, u = (μ − x)/‖μ − x‖: ΣHᵀHΣ/(HΣHᵀ + σ²) has rank one, so λmax = uᵀΣ²u/(uᵀΣu + σ²).
fn kalman_reduction(b: &GaussianBelief<2>, x: &Vector2<f64>, noise_var: f64) -> f64 {
    let u = (b.mean - x).normalize();
    let su = b.cov * u;
    su.dot(&su) / (u.dot(&su) + noise_var)
}

/// J(x) = Σᵢ Jᵢ(x): the multi grid is the sum of the single-landmark grids, each computed
/// on its own with the seed `landmark_seed(seed, i)`, at every cell valid for the multi
/// plan (natural step, expected Fisher, d_optimal).
#[test]
fn summed_criterion_is_the_sum_of_single_landmark_criteria() {
    let beliefs = [
        belief(4.0, 1.0, rotated(3.0, 0.5, 30.0)),
        belief(-3.0, 2.0, rotated(1.0, 0.2, -60.0)),
        belief(0.5, -6.0, rotated(8.0, 2.0, 10.0)),
    ];
    let x = Vector2::new(0.3, -0.2);
    let mut fisher = PlannerConfig::default();
    fisher.criterion.reduction_form = ReductionForm::ExpectedFisher;
    let d_opt = PlannerConfig { policy: GoalPolicy::DOptimal, ..PlannerConfig::default() };
    for config in [PlannerConfig::default(), fisher, d_opt] {
        for seed in [0u64, 7, 123_456] {
            let multi = multi_criterion_grid(&config, x, &beliefs, 0.25, seed).unwrap();
            let singles: Vec<_> = beliefs
                .iter()
                .enumerate()
                .map(|(i, b)| criterion_grid(&config, x, b, 0.25, landmark_seed(seed, i)).unwrap())
                .collect();
            let mut valid = 0;
            for (k, status) in multi.candidates.status.iter().enumerate() {
                if *status != CandidateStatus::Valid {
                    assert!(multi.values[k].is_nan());
                    continue;
                }
                valid += 1;
                let sum: f64 = singles.iter().map(|g| g.values[k]).sum();
                assert!((multi.values[k] - sum).abs() <= 1e-12 * sum.abs(), "cell {k}: {} vs {sum}", multi.values[k]);
            }
            assert!(valid > 200, "most of the 317 reachable cells are valid ({valid})");
        }
    }
}

/// Two landmarks 30–40 m away with beliefs of a centimetre (linear-Gaussian regime):
/// the expected-Fisher summed criterion is the sum of the two Kalman reductions within
/// 1e-5 relative (E_s[uuᵀ] differs from u(μ)u(μ)ᵀ by O(tr Σ/d²) ≈ 1e-7).
#[test]
fn far_apart_linear_gaussian_landmarks_sum_their_kalman_reductions() {
    let beliefs = [belief(30.0, 2.0, rotated(4e-4, 1e-4, 25.0)), belief(-5.0, -40.0, rotated(3e-4, 5e-5, -70.0))];
    let mut config = PlannerConfig::default();
    config.criterion.reduction_form = ReductionForm::ExpectedFisher;
    config.criterion.belief_samples = 1024;
    let noise_var = 1e-3;
    let grid = multi_criterion_grid(&config, Vector2::zeros(), &beliefs, noise_var, 3).unwrap();
    let mut checked = 0;
    for (p, v) in grid.candidates.positions.iter().zip(&grid.values) {
        if v.is_nan() {
            continue;
        }
        let reference: f64 = beliefs.iter().map(|b| kalman_reduction(b, p, noise_var)).sum();
        assert!((v - reference).abs() <= 1e-5 * reference, "{p:?}: {v} vs Kalman {reference}");
        checked += 1;
    }
    assert_eq!(checked, 317, "every reachable cell of the default 21 x 21 grid");
}

/// One landmark: the multi planner is the single planner (same goal, same grid), for
/// every policy with a criterion and the random ones.
#[test]
fn one_landmark_multi_plan_is_the_single_plan() {
    let b = belief(1.0, 1.0, Matrix2::new(5.5, -1.5, -1.5, 5.5));
    for policy in GoalPolicy::ALL {
        for seed in [0u64, 1, 99] {
            let config = PlannerConfig { policy, landmarks: LandmarkSelection::All, ..small(policy) };
            let multi = plan_next_goal_multi(&config, Vector2::new(-0.4, 0.2), &[b], 2.0, seed).unwrap();
            let single = plan_next_goal_with_grid(&config, Vector2::new(-0.4, 0.2), &b, 2.0, seed).unwrap();
            assert_same_plan(&multi, &single, &format!("{policy:?} seed {seed}"));
        }
    }
    // The default sizes too (the node's configuration).
    let config = PlannerConfig::default();
    assert_same_plan(
        &plan_next_goal_multi(&config, Vector2::zeros(), &[b], 0.25, 5).unwrap(),
        &plan_next_goal_with_grid(&config, Vector2::zeros(), &b, 0.25, 5).unwrap(),
        "default",
    );
}

/// Same goal, same cells, bit-identical values (NaN at invalid cells compares by bits).
fn assert_same_plan(a: &(Goal, Option<CriterionGrid>), b: &(Goal, Option<CriterionGrid>), what: &str) {
    assert_eq!(a.0, b.0, "{what}: goal");
    match (&a.1, &b.1) {
        (None, None) => {}
        (Some(x), Some(y)) => {
            assert_eq!(x.candidates, y.candidates, "{what}: candidates");
            assert_eq!(x.quantity, y.quantity, "{what}: quantity");
            let bits = |g: &CriterionGrid| g.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert!(bits(x) == bits(y), "{what}: values differ");
        }
        _ => panic!("{what}: one plan has a grid, the other not"),
    }
}

/// Constructed geometry (expected-Fisher form, beliefs of 0.1 m along one axis and 1 cm
/// across, so each landmark's reduction is the Kalman one, ≈ ∝ cos² of the angle between
/// the line of sight and its major axis). Candidates: max step 1 m at 1 m resolution →
/// the five cells p0 = (0, 0), p1 = (1, 0), p2 = (0, 1), p3 = (−1, 0), p4 = (0, −1).
/// A at (3, 3), major axis 37°: lines of sight from p0…p4 at 45°, 56.3°, 33.7°, 36.9°,
/// 53.1° → A alone picks p3 (0.1° off), p2 second (3.3° off).
/// B at (−3, 3), major axis 143°: lines of sight 135°, 143.1°, 146.3°, 123.7°, 126.9° →
/// B alone picks p1, p2 second. The sum: p2 ≈ 2cos²3.3° = 1.993 beats p0 = 2cos²8° = 1.961
/// and p1, p3 = 1 + cos²19.3° = 1.891: the candidate serving both, picked by neither.
#[test]
fn the_sum_picks_the_candidate_that_serves_both_landmarks() {
    let a = belief(3.0, 3.0, rotated(0.01, 1e-4, 37.0));
    let b = belief(-3.0, 3.0, rotated(0.01, 1e-4, 143.0));
    let noise_var = 0.25;
    let mut config = PlannerConfig { max_step_m: 1.0, resolution_m: 1.0, ..PlannerConfig::default() };
    config.criterion.reduction_form = ReductionForm::ExpectedFisher;
    let (p1, p2, p3) = (Vector2::new(1.0, 0.0), Vector2::new(0.0, 1.0), Vector2::new(-1.0, 0.0));
    // The hand-computed answer, checked against the Kalman closed form.
    let cells = [Vector2::zeros(), p1, p2, p3, Vector2::new(0.0, -1.0)];
    let best = |f: &dyn Fn(&Vector2<f64>) -> f64| *cells.iter().max_by(|u, v| f(u).total_cmp(&f(v))).unwrap();
    assert_eq!(best(&|x| kalman_reduction(&a, x, noise_var)), p3);
    assert_eq!(best(&|x| kalman_reduction(&b, x, noise_var)), p1);
    assert_eq!(best(&|x| kalman_reduction(&a, x, noise_var) + kalman_reduction(&b, x, noise_var)), p2);
    for seed in [0u64, 1, 2] {
        let (goal_a, _) = plan_next_goal_with_grid(&config, Vector2::zeros(), &a, noise_var, seed).unwrap();
        let (goal_b, _) = plan_next_goal_with_grid(&config, Vector2::zeros(), &b, noise_var, seed).unwrap();
        let (goal, grid) = plan_next_goal_multi(&config, Vector2::zeros(), &[a, b], noise_var, seed).unwrap();
        assert_eq!(goal_a.valid_candidates, 5);
        assert_eq!((goal_a.position_m, goal_b.position_m, goal.position_m), (p3, p1, p2), "seed {seed}");
        assert_eq!(grid.unwrap().values.iter().filter(|v| v.is_finite()).count(), 5);
    }
}

/// The cap: at most `max_scored_landmarks`, the largest λmax(Σ) first; negligible ones
/// (λmax below 1e-3 of the largest) are not scored; an empty list is a named error.
#[test]
fn scored_landmarks_are_capped_by_largest_uncertainty() {
    let beliefs: Vec<_> =
        [4.0, 1.0, 9.0, 2.0, 1e-4].iter().enumerate().map(|(i, &v)| belief(10.0 * i as f64, 0.0, Matrix2::identity() * v)).collect();
    let config = PlannerConfig { max_scored_landmarks: 3, ..PlannerConfig::default() };
    assert_eq!(scored_landmarks(&config, &beliefs), vec![0, 2, 3]);
    let config = PlannerConfig { max_scored_landmarks: 16, ..PlannerConfig::default() };
    assert_eq!(scored_landmarks(&config, &beliefs), vec![0, 1, 2, 3], "1e-4 < 1e-3 x 9: negligible");
    assert_eq!(plan_next_goal_multi::<GaussianBelief<2>>(&config, Vector2::zeros(), &[], 0.25, 0), Err(PlannerError::NoLandmarks));
    // A landmark left out still keeps goals away from its mean.
    let near = belief(0.5, 0.0, Matrix2::identity() * 1e-6);
    let far = belief(20.0, 0.0, Matrix2::identity() * 4.0);
    let (goal, _) = plan_next_goal_multi(&PlannerConfig::default(), Vector2::zeros(), &[near, far], 0.25, 0).unwrap();
    assert!((goal.position_m - near.mean).norm() >= 1.0);
}

#[test]
fn new_parameters_are_validated_by_name() {
    let check = |c: PlannerConfig, name: &str| match c.validate() {
        Err(ConfigError::Invalid { parameter, .. }) => assert_eq!(parameter, name),
        other => panic!("expected {name} to be refused, got {other:?}"),
    };
    check(PlannerConfig { max_scored_landmarks: 0, ..PlannerConfig::default() }, "max_scored_landmarks");
    check(PlannerConfig { max_scored_landmarks: 257, ..PlannerConfig::default() }, "max_scored_landmarks");
    check(PlannerConfig { horizon_steps: 0, ..PlannerConfig::default() }, "horizon_steps");
    check(PlannerConfig { horizon_steps: 4, ..PlannerConfig::default() }, "horizon_steps");
    check(PlannerConfig { horizon_steps: 2, policy: GoalPolicy::DOptimal, ..PlannerConfig::default() }, "horizon_steps");
    // Work bound: horizon 3 with 16 landmarks scored is ~170 M sample-evaluations.
    check(
        PlannerConfig { horizon_steps: 3, landmarks: LandmarkSelection::All, ..PlannerConfig::default() },
        "horizon_steps",
    );
    // The default (landmarks: all, 16 scored) with horizon 2: 317 x 16 x 9 x 320 > 1e7.
    check(PlannerConfig { horizon_steps: 2, ..PlannerConfig::default() }, "horizon_steps");
    PlannerConfig { horizon_steps: 2, max_scored_landmarks: 8, ..PlannerConfig::default() }.validate().unwrap();
    PlannerConfig { horizon_steps: 3, landmarks: LandmarkSelection::Target, ..PlannerConfig::default() }.validate().unwrap();
    PlannerConfig { landmarks: LandmarkSelection::All, ..PlannerConfig::default() }.validate().unwrap();
    let yaml = "landmarks: all\nmax_scored_landmarks: 4\nhorizon_steps: 2\n";
    let c: PlannerConfig = serde_yaml::from_str(yaml).unwrap();
    assert_eq!((c.landmarks, c.max_scored_landmarks, c.horizon_steps), (LandmarkSelection::All, 4, 2));
    assert!(serde_yaml::from_str::<PlannerConfig>("landmarks: every\n").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Every multi-landmark goal is reachable, inside the workspace and ≥
    /// `min_landmark_distance_m` from every landmark mean; NoValidCandidate exactly when a
    /// brute-force scan finds no such cell.
    #[test]
    fn multi_goals_respect_bounds_reach_and_every_minimum_distance(
        policy_index in 0usize..GoalPolicy::ALL.len(), horizon in 1usize..3,
        max_step in 0.2f64..3.0, cells in 1usize..5, min_dist in 0.0f64..3.0,
        x0 in -6.0f64..6.0, y0 in -6.0f64..6.0, w in 0.5f64..8.0, h in 0.5f64..8.0,
        px in -8.0f64..8.0, py in -8.0f64..8.0,
        means in proptest::collection::vec((-6.0f64..6.0, -6.0f64..6.0, 0.01f64..6.0, 0.01f64..6.0, 0.0f64..180.0), 1..4),
        seed in 0u64..10_000,
    ) {
        let policy = GoalPolicy::ALL[policy_index];
        let beliefs: Vec<_> = means.iter().map(|&(mx, my, a, b, t)| belief(mx, my, rotated(a, b, t))).collect();
        let config = PlannerConfig {
            max_step_m: max_step,
            resolution_m: max_step / cells as f64,
            min_landmark_distance_m: min_dist,
            workspace: WorkspaceBounds { min_x_m: x0, max_x_m: x0 + w, min_y_m: y0, max_y_m: y0 + h },
            landmarks: LandmarkSelection::All,
            horizon_steps: if policy == GoalPolicy::SigmaReduction { horizon } else { 1 },
            ..small(policy)
        };
        let current = Vector2::new(px, py);
        let grid = multi_criterion_grid(&config, current, &beliefs, 0.5, seed).unwrap();
        let ok = |p: &Vector2<f64>| (p - current).norm() <= max_step + 1e-9
            && config.workspace.contains(p)
            && beliefs.iter().all(|b| (p - b.mean).norm() >= min_dist);
        let brute_force_valid = grid.candidates.positions.iter().filter(|p| ok(p)).count();
        prop_assert_eq!(brute_force_valid, grid.candidates.count(CandidateStatus::Valid));
        match plan_next_goal_multi(&config, current, &beliefs, 0.5, seed) {
            Ok((goal, _)) => {
                prop_assert!(ok(&goal.position_m), "goal {:?}", goal.position_m);
                prop_assert_eq!(goal.valid_candidates, brute_force_valid);
            }
            Err(PlannerError::NoValidCandidate { .. }) => prop_assert_eq!(brute_force_valid, 0),
            Err(e) => prop_assert!(false, "unexpected error {}", e),
        }
    }
}
