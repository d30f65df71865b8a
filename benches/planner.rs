//! Planner criterion cost (issue 4): the Bayesian Σ̇ criterion J(x) over a 41 × 41
//! candidate grid (1681 cells, max step 1 m at 0.05 m) with 256 belief samples and 64
//! landmark draws, on the slides' belief N([1, 1], [[5.5, −1.5], [−1.5, 5.5]]), σ² = 2 m²,
//! robot at the origin. `sampling` is the per-call set-up (samples, draws); the grid
//! benches include it. Single thread. Target < 10 ms. Issue 16: the `sigma_reduction`
//! criterion (default lite sizes 16 y × 4 z, and the expected-Fisher form) on the same
//! grid, next to `d_optimal` (target ≤ 5 ms).
//! Issue 16 items 3-4: the summed multi-landmark criterion for 1, 4 and 16 landmarks and
//! the receding horizon (2, 3 steps) on the node's default 21 × 21 grid.
//! Issue 14 (vectorised criteria, no libm in the per-candidate loops): compare against
//! the previous commit by building both bench binaries and running them alternately,
//! at least twice (the machine is shared); README "Benchmark" has the numbers.
//! Issue 15: the summed criterion on 3-D beliefs (`3d` rows; `-- 3d` runs only those).
//! Run: `cargo bench --no-default-features --bench planner`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use landmark_flow::estimator::GaussianBelief;
use landmark_flow::planner::{
    criterion_grid, multi_criterion_grid, plan_next_goal, GoalPolicy, LandmarkHypothesis, LandmarkSelection,
    PlannerConfig, ReductionForm, SigmaDotEvaluator,
};
use landmark_flow::estimator::cubature::gauss_hermite_1d;
use nalgebra::{Matrix2, Matrix3, Vector2, Vector3};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn belief() -> GaussianBelief<2> {
    GaussianBelief::new(Vector2::new(1.0, 1.0), Matrix2::new(5.5, -1.5, -1.5, 5.5)).expect("SPD prior")
}

fn planner(c: &mut Criterion) {
    let config = PlannerConfig {
        policy: GoalPolicy::SigmaDotMin,
        max_step_m: 1.0,
        resolution_m: 0.05,
        min_landmark_distance_m: 0.0,
        ..PlannerConfig::default()
    };
    assert_eq!(config.criterion.belief_samples, 256);
    assert_eq!(config.criterion.landmark_draws, 64);
    let x = Vector2::zeros();
    let b = belief();
    // Every cell of the 41 × 41 square, reachable or not.
    let cells: Vec<Vector2<f64>> =
        (0..41).flat_map(|r| (0..41).map(move |c| Vector2::new(-1.0 + 0.05 * c as f64, -1.0 + 0.05 * r as f64))).collect();
    c.bench_function("sampling_256s_64y", |bench| {
        bench.iter(|| {
            SigmaDotEvaluator::new(&b, 2.0, 256, LandmarkHypothesis::FromBelief { draws: 64 }, &mut StdRng::seed_from_u64(7))
                .expect("evaluator")
        })
    });
    c.bench_function("bayesian_sigma_dot_41x41_full_square", |bench| {
        bench.iter(|| {
            let ev = SigmaDotEvaluator::new(
                black_box(&b),
                2.0,
                256,
                LandmarkHypothesis::FromBelief { draws: 64 },
                &mut StdRng::seed_from_u64(7),
            )
            .expect("evaluator");
            cells.iter().map(|p| ev.expected_sigma_dot_norm(p)).sum::<f64>()
        })
    });
    c.bench_function("criterion_grid_41x41_reachable_disc", |bench| {
        bench.iter(|| criterion_grid(black_box(&config), x, &b, 2.0, 7).expect("grid"))
    });
    c.bench_function("plan_next_goal_sigma_dot_min_41x41", |bench| {
        bench.iter(|| plan_next_goal(black_box(&config), x, &b, 2.0, 7).expect("goal"))
    });
    let d_opt = PlannerConfig { policy: GoalPolicy::DOptimal, ..config };
    c.bench_function("plan_next_goal_d_optimal_41x41", |bench| {
        bench.iter(|| plan_next_goal(black_box(&d_opt), x, &b, 2.0, 7).expect("goal"))
    });
    let reduction = PlannerConfig { policy: GoalPolicy::SigmaReduction, ..config };
    assert_eq!(reduction.bayesian_landmark_draws(), 16);
    assert_eq!(reduction.criterion.reduction_range_nodes, 4);
    c.bench_function("plan_next_goal_sigma_reduction_41x41", |bench| {
        bench.iter(|| plan_next_goal(black_box(&reduction), x, &b, 2.0, 7).expect("goal"))
    });
    let mut fisher = reduction;
    fisher.criterion.reduction_form = ReductionForm::ExpectedFisher;
    c.bench_function("plan_next_goal_sigma_reduction_fisher_41x41", |bench| {
        bench.iter(|| plan_next_goal(black_box(&fisher), x, &b, 2.0, 7).expect("goal"))
    });
    let rule = gauss_hermite_1d(4);
    c.bench_function("sigma_reduction_41x41_full_square", |bench| {
        bench.iter(|| {
            let ev = SigmaDotEvaluator::new(
                black_box(&b),
                2.0,
                256,
                LandmarkHypothesis::FromBelief { draws: 16 },
                &mut StdRng::seed_from_u64(7),
            )
            .expect("evaluator");
            cells.iter().map(|p| ev.expected_sigma_reduction(p, &rule)).sum::<f64>()
        })
    });
    // Issue 16 item 3: the summed criterion over 1, 4, 16 landmarks on the node's default
    // candidate grid (21 x 21 at 0.1 m, 317 reachable), default sizes (256 s, 16 y x 4 z
    // per landmark); landmarks on a ring 5-20 m away with different beliefs.
    let default = PlannerConfig { landmarks: LandmarkSelection::All, ..PlannerConfig::default() };
    let ring: Vec<GaussianBelief<2>> = (0..16)
        .map(|i| {
            let a = 0.4 * i as f64;
            let r = 5.0 + i as f64;
            let cov = Matrix2::new(1.0 + 0.3 * i as f64, 0.2, 0.2, 0.5 + 0.1 * i as f64);
            GaussianBelief::new(Vector2::new(r * a.cos(), r * a.sin()), cov).expect("SPD")
        })
        .collect();
    for n in [1usize, 4, 16] {
        c.bench_function(&format!("multi_criterion_grid_{n}_landmarks_21x21"), |bench| {
            bench.iter(|| multi_criterion_grid(black_box(&default), x, &ring[..n], 0.25, 7).expect("grid"))
        });
    }
    // Issue 15: the same summed criterion on 3-D beliefs (SpatialEvaluator, the sensor at
    // (x, y, 0)): the ring's landmarks 2.5 m above the sensor's plane, σ_z = 1 m.
    let ring3: Vec<GaussianBelief<3>> = ring
        .iter()
        .map(|b| {
            let mut cov = Matrix3::zeros();
            cov.fixed_view_mut::<2, 2>(0, 0).copy_from(&b.cov);
            cov[(2, 2)] = 1.0;
            GaussianBelief::new(Vector3::new(b.mean.x, b.mean.y, 2.5), cov).expect("SPD")
        })
        .collect();
    for n in [1usize, 4] {
        c.bench_function(&format!("multi_criterion_grid_3d_{n}_landmarks_21x21"), |bench| {
            bench.iter(|| multi_criterion_grid(black_box(&default), x, &ring3[..n], 0.25, 7).expect("grid"))
        });
    }
    // Issue 16 item 4: the receding horizon (one landmark, default grid).
    for h in [2usize, 3] {
        let horizon = PlannerConfig { horizon_steps: h, landmarks: LandmarkSelection::Target, ..PlannerConfig::default() };
        c.bench_function(&format!("plan_next_goal_sigma_reduction_horizon_{h}_21x21"), |bench| {
            bench.iter(|| plan_next_goal(black_box(&horizon), x, &b, 2.0, 7).expect("goal"))
        });
    }
    let one = PlannerConfig::default();
    c.bench_function("plan_next_goal_sigma_reduction_21x21", |bench| {
        bench.iter(|| plan_next_goal(black_box(&one), x, &b, 2.0, 7).expect("goal"))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(1));
    targets = planner
}
criterion_main!(benches);
