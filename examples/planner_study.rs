//! Planner study (issue 4): the slides' four Σ̇ heatmaps, the far-field agreement, and a
//! closed-loop comparison of the goal policies.
//!
//! 1. Heatmaps: μ₀ = [1, 1], Σ₀ = 0.1·I, σ² = 2 m², x₁ on an 81 × 81 grid (0.05 m) over [−2, 2]²,
//!    y ∈ {μ₀, −μ₀, e₁, −e₂}; oracle J(x₁) = E_z‖Σ̇(0; x₁, z)‖₂ (4096 moment-matched
//!    belief samples, exact in z) and the slides' far-field closed form, both min-max
//!    normalised; the minimiser's distance from the bisector ‖x − y‖ = ‖x − μ₀‖; and the
//!    oracle Σ-reduction criterion (issue 16) on the same grid (`heatmap_sigma_reduction_*`).
//! 2. Far-field agreement: J_MC / J_far-field − 1 for the prior at distance D from x.
//! 3. Closed loop on the slides' problem (y* = [4.7, −3.1] fixed, or y ~ N(μ₀, Σ₀)),
//!    μ₀ = [1, 1], Σ₀ = [[5.5, −1.5], [−1.5, 5.5]], σ² = 2 m², x₀ = 0, step ≤ 1 m: each
//!    policy with the default mixture estimator and with the particle filter, the planner
//!    run on the estimator's moment-matched Gaussian (`Summary::belief`).
//!
//! 4. Paired comparison against `d_optimal` (issue 16): per (scenario, estimator, policy)
//!    the mean final error and the lost fraction with seed-bootstrap 95 % CIs, and the
//!    paired differences to `d_optimal` on the same seeds (same landmark, same noise).
//!
//! Usage: `cargo run --release --no-default-features --features plots --example planner_study --
//! [--seeds N] [--steps N] [--threads N] [--out DIR] [--no-plots] [--policies a,b,..]
//! [--bootstrap N]` (`make planner-study`). Writes CSV and PNG files into DIR (default
//! docs/planner) and prints Markdown tables. `--policies` keeps only the listed rows (by
//! label, e.g. `d_optimal,sigma_reduction`); `--estimators mixture` keeps one estimator.
//! `--reference LABEL` pairs against that row instead of `d_optimal`.
//! Rows `sigma_reduction_h2`/`_h3`: `horizon_steps` 2 and 3 (issue 16 item 4).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use landmark_flow::slides::{self, LOST_M, NOISE_VAR_M2};
use landmark_flow::stats::{mean, median};
use landmark_flow::estimator::{Estimator, EstimatorConfig, GaussianBelief, Method};
use landmark_flow::planner::{
    plan_next_goal_with_landmark, CriterionConfig, GoalPolicy, LandmarkHypothesis, LandmarkSelection, PlannerConfig,
    PlannerError,
    ReductionForm, SigmaDotApproximation, SigmaDotEvaluator,
};
use nalgebra::{Matrix2, Vector2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use landmark_flow::estimator::cubature::gauss_hermite_1d;

const HEATMAP_CELLS: usize = 81;
const HEATMAP_HALF_WIDTH_M: f64 = 2.0;
const HEATMAP_SAMPLES: usize = 4096;


struct Args {
    seeds: u64,
    steps: usize,
    threads: usize,
    out: PathBuf,
    plots: bool,
    /// Row labels to run; `None` = all.
    policies: Option<Vec<String>>,
    /// Bootstrap resamples of the paired comparison.
    bootstrap: usize,
    /// Estimator labels to run; `None` = all.
    estimators: Option<Vec<String>>,
    /// Row the paired comparison is against (default `d_optimal`).
    reference: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seeds: 100,
        steps: 20,
        threads: 2,
        out: PathBuf::from("docs/planner"),
        plots: true,
        policies: None,
        bootstrap: 2000,
        estimators: None,
        reference: "d_optimal".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seeds" => args.seeds = it.next().and_then(|v| v.parse().ok()).ok_or("--seeds needs a number")?,
            "--steps" => args.steps = it.next().and_then(|v| v.parse().ok()).ok_or("--steps needs a number")?,
            "--threads" => args.threads = it.next().and_then(|v| v.parse().ok()).ok_or("--threads needs a number")?,
            "--out" => args.out = it.next().map(PathBuf::from).ok_or("--out needs a directory")?,
            "--no-plots" => args.plots = false,
            "--policies" => {
                let list = it.next().ok_or("--policies needs a comma-separated list")?;
                args.policies = Some(list.split(',').map(|p| p.trim().to_string()).collect());
            }
            "--reference" => args.reference = it.next().ok_or("--reference needs a policy label")?,
            "--estimators" => {
                let list = it.next().ok_or("--estimators needs a comma-separated list (mixture, particle)")?;
                args.estimators = Some(list.split(',').map(|p| p.trim().to_string()).collect());
            }
            "--bootstrap" => {
                args.bootstrap = it.next().and_then(|v| v.parse().ok()).ok_or("--bootstrap needs a number")?
            }
            "-h" | "--help" => {
                return Err(
                    "usage: planner_study [--seeds N] [--steps N] [--threads N] [--out DIR] [--no-plots] [--policies a,b,..] [--estimators a,b] [--bootstrap N]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.seeds == 0 || args.steps == 0 {
        return Err("--seeds and --steps must be >= 1".into());
    }
    if let Some(list) = &args.policies {
        let known: Vec<&str> = policy_rows().iter().map(|r| r.label).collect();
        if let Some(bad) = list.iter().find(|p| !known.contains(&p.as_str())) {
            return Err(format!("--policies: unknown policy {bad}; known: {}", known.join(", ")));
        }
    }
    Ok(args)
}


// ---------------------------------------------------------------- heatmaps

/// One heatmap: J over the grid (row-major, x fastest, row 0 at y = −2).
struct Heatmap {
    name: &'static str,
    label: &'static str,
    landmark: Vector2<f64>,
    cells: Vec<Vector2<f64>>,
    monte_carlo: Vec<f64>,
    far_field: Vec<f64>,
    /// Oracle Σ-reduction J(x₁) = E_t λmax(Σ − (Σ⁻¹ + G₊(x₁, ‖x₁ − y‖ + σt))⁻¹), m²
    /// (issue 16; `HEATMAP_RANGE_NODES` Gauss–Hermite nodes in t).
    sigma_reduction: Vec<f64>,
}

/// Gauss–Hermite nodes in t of the Σ-reduction heatmaps.
const HEATMAP_RANGE_NODES: usize = 16;

/// Cell of the largest finite value.
fn argmax(cells: &[Vector2<f64>], values: &[f64]) -> Vector2<f64> {
    let (i, _) = values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .max_by(|a, b| a.1.total_cmp(b.1))
        .expect("finite heatmap");
    cells[i]
}

fn normalise(v: &[f64]) -> Vec<f64> {
    let finite = v.iter().copied().filter(|x| x.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)));
    v.iter().map(|&x| if x.is_finite() && hi > lo { (x - lo) / (hi - lo) } else { f64::NAN }).collect()
}

fn heatmaps() -> Vec<Heatmap> {
    let mean0 = Vector2::new(1.0, 1.0);
    let belief = GaussianBelief::new(mean0, Matrix2::identity() * 0.1).expect("SPD");
    let step = 2.0 * HEATMAP_HALF_WIDTH_M / (HEATMAP_CELLS - 1) as f64;
    let cells: Vec<Vector2<f64>> = (0..HEATMAP_CELLS)
        .flat_map(|r| {
            (0..HEATMAP_CELLS)
                .map(move |c| Vector2::new(-HEATMAP_HALF_WIDTH_M + step * c as f64, -HEATMAP_HALF_WIDTH_M + step * r as f64))
        })
        .collect();
    let cases: [(&str, &str, Vector2<f64>); 4] = [
        ("y_mu0", "y = μ₀", mean0),
        ("y_minus_mu0", "y = −μ₀", -mean0),
        ("y_e1", "y = e₁", Vector2::new(1.0, 0.0)),
        ("y_minus_e2", "y = −e₂", Vector2::new(0.0, -1.0)),
    ];
    cases
        .iter()
        .map(|&(name, label, y)| {
            let ev = SigmaDotEvaluator::new(
                &belief,
                NOISE_VAR_M2,
                HEATMAP_SAMPLES,
                LandmarkHypothesis::Known(y),
                &mut StdRng::seed_from_u64(2025),
            )
            .expect("evaluator");
            let monte_carlo = cells.iter().map(|x| ev.expected_sigma_dot_norm(x)).collect();
            let far_field = cells.iter().map(|x| ev.far_field_sigma_dot_norm(x)).collect();
            let rule = gauss_hermite_1d(HEATMAP_RANGE_NODES);
            let sigma_reduction = cells.iter().map(|x| ev.expected_sigma_reduction(x, &rule)).collect();
            Heatmap { name, label, landmark: y, cells: cells.clone(), monte_carlo, far_field, sigma_reduction }
        })
        .collect()
}

/// Where the minimiser of the MC map lies relative to the bisector ‖x − y‖ = ‖x − μ₀‖.
struct MinimiserReport {
    argmin: Vector2<f64>,
    distance_difference_m: f64,
    distance_to_bisector_m: Option<f64>,
    range_ratio: f64,
    low_decile_bisector_m: Option<f64>,
    pearson_far_field: f64,
}

fn minimiser_report(h: &Heatmap) -> MinimiserReport {
    let mean0 = Vector2::new(1.0, 1.0);
    let (i, _) = h
        .monte_carlo
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .min_by(|a, b| a.1.total_cmp(b.1))
        .expect("finite heatmap");
    let x = h.cells[i];
    let to_bisector = |p: &Vector2<f64>| {
        let n = h.landmark - mean0;
        (n.norm() > 1e-12).then(|| ((p - 0.5 * (h.landmark + mean0)).dot(&n) / n.norm()).abs())
    };
    // Mean distance to the bisector of the lowest 10 % of cells.
    let mut order: Vec<usize> = (0..h.cells.len()).filter(|&k| h.monte_carlo[k].is_finite()).collect();
    order.sort_by(|&a, &b| h.monte_carlo[a].total_cmp(&h.monte_carlo[b]));
    let decile = &order[..order.len() / 10];
    let low = if (h.landmark - mean0).norm() > 1e-12 {
        Some(decile.iter().filter_map(|&k| to_bisector(&h.cells[k])).sum::<f64>() / decile.len() as f64)
    } else {
        None
    };
    let (a, b): (Vec<f64>, Vec<f64>) = h
        .monte_carlo
        .iter()
        .zip(&h.far_field)
        .filter(|(m, f)| m.is_finite() && f.is_finite() && **f < 1e6)
        .map(|(m, f)| (*m, *f))
        .unzip();
    let (ma, mb) = (mean(&a), mean(&b));
    let cov: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    MinimiserReport {
        argmin: x,
        distance_difference_m: (x - h.landmark).norm() - (x - mean0).norm(),
        distance_to_bisector_m: to_bisector(&x),
        range_ratio: (x - h.landmark).norm() / (x - mean0).norm(),
        low_decile_bisector_m: low,
        pearson_far_field: cov / (va * vb).sqrt(),
    }
}

fn write_heatmap_csv(dir: &Path, h: &Heatmap) -> std::io::Result<PathBuf> {
    let mc_n = normalise(&h.monte_carlo);
    let ff_n = normalise(&h.far_field);
    let mut s = String::from("x1_m,x2_m,j_monte_carlo,j_monte_carlo_normalised,j_far_field,j_far_field_normalised\n");
    for k in 0..h.cells.len() {
        s += &format!(
            "{:.4},{:.4},{:.8},{:.6},{:.8},{:.6}\n",
            h.cells[k].x, h.cells[k].y, h.monte_carlo[k], mc_n[k], h.far_field[k], ff_n[k]
        );
    }
    let path = dir.join(format!("heatmap_{}.csv", h.name));
    std::fs::write(&path, s)?;
    let red_n = normalise(&h.sigma_reduction);
    let mut s = String::from("x1_m,x2_m,j_sigma_reduction_m2,j_sigma_reduction_normalised\n");
    for ((cell, value), normalised) in h.cells.iter().zip(&h.sigma_reduction).zip(&red_n) {
        s += &format!("{:.4},{:.4},{:.8},{:.6}\n", cell.x, cell.y, value, normalised);
    }
    std::fs::write(dir.join(format!("heatmap_sigma_reduction_{}.csv", h.name)), s)?;
    Ok(path)
}

/// J_MC / J_far-field − 1 with the prior N(x + D·(0.6, 0.8), s·I) and y at r·D from x.
fn far_field_sweep() -> (String, String) {
    let mut csv = String::from("prior_var_m2,distance_m,range_ratio,j_monte_carlo,j_far_field,relative_difference\n");
    let mut md = String::from("| D = ‖x − μ‖ (m) | r = 0.5 | r = 1 | r = 1.5 | r = 2.5 |\n|---|---|---|---|---|\n");
    let x = Vector2::zeros();
    let dir = Vector2::new(0.6, 0.8);
    let off = Vector2::new(0.0, 1.0);
    for d in [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0] {
        md += &format!("| {d} |");
        for r in [0.5, 1.0, 1.5, 2.5] {
            let b = GaussianBelief::new(x + dir * d, Matrix2::identity() * 0.1).expect("SPD");
            let y = x + off * (r * d);
            let ev = SigmaDotEvaluator::new(&b, NOISE_VAR_M2, 4096, LandmarkHypothesis::Known(y), &mut StdRng::seed_from_u64(5))
                .expect("evaluator");
            let mc = ev.expected_sigma_dot_norm(&x);
            let ff = ev.far_field_sigma_dot_norm(&x);
            let rel = mc / ff - 1.0;
            csv += &format!("0.1,{d},{r},{mc:.8},{ff:.8},{rel:.6e}\n");
            md += &format!(" {:+.2} % |", 100.0 * rel);
        }
        md += "\n";
    }
    (csv, md)
}

// ---------------------------------------------------------------- closed loop

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Scenario {
    /// y* = [4.7, −3.1].
    Fixed,
    /// y ~ N(μ₀, Σ₀) per seed.
    FromPrior,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Fixed => "fixed",
            Scenario::FromPrior => "prior",
        }
    }
}

/// A policy row of the study: label, planner config, oracle landmark or not.
#[derive(Clone, Copy)]
struct PolicyRow {
    label: &'static str,
    config: PlannerConfig,
    oracle: bool,
}

fn study_planner(policy: GoalPolicy) -> PlannerConfig {
    PlannerConfig {
        policy,
        // One landmark: the single planner (the multi-landmark work bound does not apply).
        landmarks: LandmarkSelection::Target,
        max_step_m: 1.0,
        resolution_m: 0.1,
        min_landmark_distance_m: 1.0,
        criterion: CriterionConfig::default(),
        ..PlannerConfig::default()
    }
}

fn policy_rows() -> Vec<PolicyRow> {
    let row = |label, policy, oracle| PolicyRow { label, config: study_planner(policy), oracle };
    let mut far = study_planner(GoalPolicy::SigmaDotMin);
    far.criterion.approximation = SigmaDotApproximation::FarField;
    let mut fisher = study_planner(GoalPolicy::SigmaReduction);
    fisher.criterion.reduction_form = ReductionForm::ExpectedFisher;
    vec![
        row("sigma_dot_min", GoalPolicy::SigmaDotMin, false),
        PolicyRow { label: "sigma_dot_min_far_field", config: far, oracle: false },
        row("sigma_dot_min_oracle", GoalPolicy::SigmaDotMin, true),
        row("sigma_dot_max", GoalPolicy::SigmaDotMax, false),
        row("d_optimal", GoalPolicy::DOptimal, false),
        row("straight_line", GoalPolicy::StraightLine, false),
        row("random", GoalPolicy::Random, false),
        row("sigma_reduction", GoalPolicy::SigmaReduction, false),
        PolicyRow { label: "sigma_reduction_fisher", config: fisher, oracle: false },
        PolicyRow { label: "sigma_reduction_h2", config: PlannerConfig { horizon_steps: 2, ..study_planner(GoalPolicy::SigmaReduction) }, oracle: false },
        PolicyRow { label: "sigma_reduction_h3", config: PlannerConfig { horizon_steps: 3, ..study_planner(GoalPolicy::SigmaReduction) }, oracle: false },
    ]
}

/// The rows selected by `--policies` (all by default), in `policy_rows` order.
fn selected_rows(args: &Args) -> Vec<PolicyRow> {
    policy_rows()
        .into_iter()
        .filter(|r| args.policies.as_ref().is_none_or(|list| list.iter().any(|p| p == r.label)))
        .collect()
}

fn estimators() -> Vec<(&'static str, EstimatorConfig)> {
    vec![
        ("mixture", EstimatorConfig::default()),
        ("particle", EstimatorConfig { method: Method::Particle, ..EstimatorConfig::default() }),
    ]
}

/// The estimators selected by `--estimators` (all by default).
fn selected_estimators(args: &Args) -> Vec<(&'static str, EstimatorConfig)> {
    estimators().into_iter().filter(|(l, _)| args.estimators.as_ref().is_none_or(|list| list.iter().any(|p| p == l))).collect()
}

/// One closed-loop run.
struct Run {
    /// ‖μₖ − y‖ after measurement k, metres.
    errors: Vec<f64>,
    /// tr Σₖ after measurement k, m².
    traces: Vec<f64>,
    /// Sensor positions x₀ … x_{K−1}, metres.
    path: Vec<Vector2<f64>>,
    planner_failures: usize,
    update_failures: usize,
    planning_seconds: f64,
}

fn landmark_for(scenario: Scenario, seed: u64) -> Vector2<f64> {
    match scenario {
        Scenario::Fixed => slides::landmark(),
        Scenario::FromPrior => {
            let mut rng = StdRng::seed_from_u64(seed ^ 0x005E_ED0F_1A4D);
            let l = slides::prior().cholesky().expect("SPD").l();
            slides::prior().mean + l * Vector2::new(rng.sample(StandardNormal), rng.sample(StandardNormal))
        }
    }
}

fn closed_loop(row: &PolicyRow, estimator: &EstimatorConfig, scenario: Scenario, seed: u64, steps: usize) -> Run {
    let truth = landmark_for(scenario, seed);
    // Same noise sequence wₖ for every policy and estimator (common random numbers).
    let mut noise_rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ scenario as u64);
    let noise: Vec<f64> = (0..steps).map(|_| NOISE_VAR_M2.sqrt() * noise_rng.sample::<f64, _>(StandardNormal)).collect();
    let est = Estimator::<2>::new(EstimatorConfig { seed, ..*estimator }).expect("valid estimator config");
    let mut state = est.initial_state(slides::prior()).expect("valid prior");
    let mut x = Vector2::zeros();
    let mut run = Run {
        errors: Vec::with_capacity(steps),
        traces: Vec::with_capacity(steps),
        path: Vec::with_capacity(steps),
        planner_failures: 0,
        update_failures: 0,
        planning_seconds: 0.0,
    };
    for (k, w) in noise.iter().enumerate() {
        // 1. measure, 2. update, 3. move (the slides' order).
        run.path.push(x);
        let z = ((x - truth).norm() + w).max(0.0);
        match est.update(&state, x, z, NOISE_VAR_M2) {
            Ok((next, _)) => state = next,
            Err(_) => run.update_failures += 1,
        }
        let belief = state.summary().expect("states returned by update are publishable").belief;
        run.errors.push((belief.mean - truth).norm());
        run.traces.push(belief.cov.trace());
        if k + 1 == steps {
            break;
        }
        let landmark = if row.oracle {
            LandmarkHypothesis::Known(truth)
        } else {
            LandmarkHypothesis::FromBelief { draws: row.config.bayesian_landmark_draws() }
        };
        let t = Instant::now();
        let planner_seed = seed.wrapping_mul(1_000_003).wrapping_add(k as u64);
        match plan_next_goal_with_landmark(&row.config, x, &belief, NOISE_VAR_M2, landmark, planner_seed) {
            Ok(goal) => x = goal.position_m,
            Err(PlannerError::NoValidCandidate { .. }) => run.planner_failures += 1,
            Err(e) => panic!("planner failed: {e}"),
        }
        run.planning_seconds += t.elapsed().as_secs_f64();
    }
    run
}

/// Everything measured for one (scenario, estimator, policy).
#[derive(Default)]
struct Cell {
    /// Seeds in the order of the per-seed vectors below (for paired comparisons).
    seeds: Vec<u64>,
    /// [step][seed]
    errors: Vec<Vec<f64>>,
    traces: Vec<Vec<f64>>,
    planner_failures: usize,
    update_failures: usize,
    planning_seconds: f64,
    plans: usize,
    example_paths: Vec<Vec<Vector2<f64>>>,
}

type Key = (Scenario, usize, usize);

fn run_study(args: &Args) -> BTreeMap<Key, Cell> {
    let rows = selected_rows(args);
    let ests = selected_estimators(args);
    let seeds: Vec<u64> = (0..args.seeds).collect();
    let chunk = seeds.len().div_ceil(args.threads.max(1));
    let results: Vec<(u64, Key, Run)> = std::thread::scope(|scope| {
        let handles: Vec<_> = seeds
            .chunks(chunk)
            .map(|chunk| {
                let (rows, ests) = (&rows, &ests);
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for &seed in chunk {
                        for scenario in [Scenario::Fixed, Scenario::FromPrior] {
                            for (ei, (_, ec)) in ests.iter().enumerate() {
                                for (pi, row) in rows.iter().enumerate() {
                                    out.push((seed, (scenario, ei, pi), closed_loop(row, ec, scenario, seed, args.steps)));
                                }
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("worker thread")).collect()
    });
    let mut cells: BTreeMap<Key, Cell> = BTreeMap::new();
    for (seed, key, run) in results {
        let cell = cells.entry(key).or_insert_with(|| Cell {
            errors: vec![Vec::new(); args.steps],
            traces: vec![Vec::new(); args.steps],
            ..Cell::default()
        });
        cell.seeds.push(seed);
        for (k, (e, t)) in run.errors.iter().zip(&run.traces).enumerate() {
            cell.errors[k].push(*e);
            cell.traces[k].push(*t);
        }
        cell.planner_failures += run.planner_failures;
        cell.update_failures += run.update_failures;
        cell.planning_seconds += run.planning_seconds;
        cell.plans += args.steps - 1;
        if seed < 3 {
            cell.example_paths.push(run.path);
        }
    }
    cells
}

/// 2.5 % and 97.5 % percentiles of `v` (sorted in place).
fn percentile_ci(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
    (at(0.025), at(0.975))
}

/// Mean final error and lost fraction of every row with seed-bootstrap 95 % CIs, and the
/// paired differences to row `reference` (resampling the same seeds for both: common
/// landmark and noise per seed). Returns (CSV, Markdown).
fn paired_comparison(
    cells: &BTreeMap<Key, Cell>,
    rows: &[PolicyRow],
    ests: &[(&'static str, EstimatorConfig)],
    reference: usize,
    last: usize,
    resamples: usize,
) -> (String, String) {
    let mut csv = String::from(
        "scenario,estimator,policy,seeds,mean_error_m,mean_error_lo,mean_error_hi,lost_fraction,lost_lo,lost_hi,\
         delta_mean_error_m,delta_mean_lo,delta_mean_hi,delta_lost,delta_lost_lo,delta_lost_hi\n",
    );
    let mut md = format!(
        "| scenario | estimator | policy | mean error (m) [95 % CI] | Δ mean error vs {reference_label} (m) [95 % CI] | lost (> {LOST_M} m) [95 % CI] | Δ lost vs {reference_label} [95 % CI] |\n|---|---|---|---|---|---|---|\n",
        reference_label = rows[reference].label
    );
    for scenario in [Scenario::Fixed, Scenario::FromPrior] {
        for (ei, (est, _)) in ests.iter().enumerate() {
            let Some(base) = cells.get(&(scenario, ei, reference)) else { continue };
            for (pi, row) in rows.iter().enumerate() {
                let Some(cell) = cells.get(&(scenario, ei, pi)) else { continue };
                assert_eq!(cell.seeds, base.seeds, "paired cells must hold the same seeds in the same order");
                let (e, b) = (&cell.errors[last], &base.errors[last]);
                let lost = |v: &[f64], i: usize| if v[i] > LOST_M { 1.0 } else { 0.0 };
                let n = e.len();
                let mut rng = StdRng::seed_from_u64(0xB007_5712 ^ ((pi as u64) << 8) ^ ((ei as u64) << 4) ^ (scenario as u64));
                let (mut m, mut l, mut dm, mut dl) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                for _ in 0..resamples {
                    let (mut se, mut sb, mut le, mut lb) = (0.0, 0.0, 0.0, 0.0);
                    for _ in 0..n {
                        let i = rng.random_range(0..n);
                        se += e[i];
                        sb += b[i];
                        le += lost(e, i);
                        lb += lost(b, i);
                    }
                    let k = n as f64;
                    m.push(se / k);
                    l.push(le / k);
                    dm.push((se - sb) / k);
                    dl.push((le - lb) / k);
                }
                let point_mean = mean(e);
                let point_lost = (0..n).map(|i| lost(e, i)).sum::<f64>() / n as f64;
                let point_dm = point_mean - mean(b);
                let point_dl = point_lost - (0..n).map(|i| lost(b, i)).sum::<f64>() / n as f64;
                let (m_ci, l_ci, dm_ci, dl_ci) =
                    (percentile_ci(&mut m), percentile_ci(&mut l), percentile_ci(&mut dm), percentile_ci(&mut dl));
                csv += &format!(
                    "{},{est},{},{n},{point_mean:.4},{:.4},{:.4},{point_lost:.4},{:.4},{:.4},{point_dm:.4},{:.4},{:.4},{point_dl:.4},{:.4},{:.4}\n",
                    scenario.name(),
                    row.label,
                    m_ci.0,
                    m_ci.1,
                    l_ci.0,
                    l_ci.1,
                    dm_ci.0,
                    dm_ci.1,
                    dl_ci.0,
                    dl_ci.1
                );
                let delta = if pi == reference {
                    ("—".to_string(), "—".to_string())
                } else {
                    (
                        format!("{point_dm:+.3} [{:+.3}, {:+.3}]", dm_ci.0, dm_ci.1),
                        format!("{:+.1} % [{:+.1}, {:+.1}]", 100.0 * point_dl, 100.0 * dl_ci.0, 100.0 * dl_ci.1),
                    )
                };
                md += &format!(
                    "| {} | {est} | {} | {point_mean:.3} [{:.3}, {:.3}] | {} | {:.1} % [{:.1}, {:.1}] | {} |\n",
                    scenario.name(),
                    row.label,
                    m_ci.0,
                    m_ci.1,
                    delta.0,
                    100.0 * point_lost,
                    100.0 * l_ci.0,
                    100.0 * l_ci.1,
                    delta.1
                );
            }
        }
    }
    (csv, md)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    std::fs::create_dir_all(&args.out).expect("create output directory");
    let started = Instant::now();

    // 1. Heatmaps.
    let maps = heatmaps();
    let mut md = String::from(
        "| landmark y | argmin x* of J (m) | ‖x*−y‖ − ‖x*−μ₀‖ (m) | distance of x* to bisector (m) | ‖x*−y‖/‖x*−μ₀‖ | mean distance to bisector, lowest 10 % of cells (m) | Pearson(J_MC, J_far-field) |\n|---|---|---|---|---|---|---|\n",
    );
    let mut csv = String::from("landmark,argmin_x1_m,argmin_x2_m,distance_difference_m,distance_to_bisector_m,range_ratio,low_decile_distance_to_bisector_m,pearson_far_field\n");
    for h in &maps {
        let r = minimiser_report(h);
        let opt = |v: Option<f64>| v.map_or("undefined (every x)".to_string(), |d| format!("{d:.3}"));
        md += &format!(
            "| {} | ({:.3}, {:.3}) | {:+.3} | {} | {:.3} | {} | {} |\n",
            h.label,
            r.argmin.x,
            r.argmin.y,
            r.distance_difference_m,
            opt(r.distance_to_bisector_m),
            r.range_ratio,
            opt(r.low_decile_bisector_m),
            if r.pearson_far_field.is_finite() { format!("{:.3}", r.pearson_far_field) } else { "n/a (closed form constant)".into() }
        );
        csv += &format!(
            "{},{:.4},{:.4},{:.4},{},{:.4},{},{:.4}\n",
            h.name,
            r.argmin.x,
            r.argmin.y,
            r.distance_difference_m,
            r.distance_to_bisector_m.map_or(String::new(), |d| format!("{d:.4}")),
            r.range_ratio,
            r.low_decile_bisector_m.map_or(String::new(), |d| format!("{d:.4}")),
            r.pearson_far_field
        );
        let path = write_heatmap_csv(&args.out, h).expect("write heatmap csv");
        println!("wrote {}", path.display());
    }
    std::fs::write(args.out.join("heatmap_minimisers.csv"), &csv).expect("write minimisers");
    println!("\n## Heatmap minimisers (oracle J, μ₀ = [1, 1], Σ₀ = 0.1·I, σ² = 2 m²)\n\n{md}");

    // 2. Far-field agreement.
    let (ff_csv, ff_md) = far_field_sweep();
    std::fs::write(args.out.join("far_field_agreement.csv"), &ff_csv).expect("write far field csv");
    println!("## J_MC / J_far-field − 1 (Σ = 0.1·I, y at r·D from x)\n\n{ff_md}");
    let heat_seconds = started.elapsed().as_secs_f64();

    // 3. Closed loop.
    let loop_start = Instant::now();
    let cells = run_study(&args);
    let loop_seconds = loop_start.elapsed().as_secs_f64();
    let rows = selected_rows(&args);
    let ests = selected_estimators(&args);
    let last = args.steps - 1;
    let mut summary = String::from(
        "scenario,estimator,policy,mean_error_m,median_error_m,lost_fraction,median_trace_m2,mean_trace_m2,planner_failures,update_failures,planning_ms\n",
    );
    let mut table = format!(
        "| scenario | estimator | policy | mean error (m) | median error (m) | lost (> {LOST_M} m) | median tr Σ (m²) | ms / plan |\n|---|---|---|---|---|---|---|---|\n"
    );
    let mut per_step = String::from("scenario,estimator,policy,step,mean_error_m,median_error_m,lost_fraction,median_trace_m2,mean_trace_m2\n");
    for ((scenario, ei, pi), cell) in &cells {
        let (est, row) = (ests[*ei].0, &rows[*pi]);
        let e = &cell.errors[last];
        let t = &cell.traces[last];
        let lost = e.iter().filter(|v| **v > LOST_M).count() as f64 / e.len() as f64;
        let ms = 1e3 * cell.planning_seconds / cell.plans.max(1) as f64;
        summary += &format!(
            "{},{est},{},{:.4},{:.4},{:.4},{:.4},{:.4},{},{},{ms:.3}\n",
            scenario.name(),
            row.label,
            mean(e),
            median(e),
            lost,
            median(t),
            mean(t),
            cell.planner_failures,
            cell.update_failures
        );
        table += &format!(
            "| {} | {est} | {} | {:.3} | {:.3} | {:.1} % | {:.3} | {ms:.2} |\n",
            scenario.name(),
            row.label,
            mean(e),
            median(e),
            100.0 * lost,
            median(t)
        );
        for k in 0..args.steps {
            let e = &cell.errors[k];
            let t = &cell.traces[k];
            let lost = e.iter().filter(|v| **v > LOST_M).count() as f64 / e.len() as f64;
            per_step += &format!(
                "{},{est},{},{},{:.4},{:.4},{:.4},{:.4},{:.4}\n",
                scenario.name(),
                row.label,
                k + 1,
                mean(e),
                median(e),
                lost,
                median(t),
                mean(t)
            );
        }
    }
    std::fs::write(args.out.join("study_summary.csv"), &summary).expect("write summary");
    std::fs::write(args.out.join("study_vs_step.csv"), &per_step).expect("write per step");
    println!(
        "## Closed loop: {} seeds × {} measurements, error and tr Σ after the last measurement\n\n{table}",
        args.seeds, args.steps
    );
    let failures: usize = cells.values().map(|c| c.planner_failures).sum();
    let update_failures: usize = cells.values().map(|c| c.update_failures).sum();
    println!("planner NoValidCandidate events: {failures}; estimator update failures: {update_failures}");
    println!("heatmaps + far field: {heat_seconds:.1} s; closed loop: {loop_seconds:.1} s on {} threads", args.threads);

    // 4. Paired comparison against d_optimal (or `--reference`).
    if let Some(reference) = rows.iter().position(|r| r.label == args.reference) {
        let (csv, md) = paired_comparison(&cells, &rows, &ests, reference, last, args.bootstrap);
        std::fs::write(args.out.join("study_paired.csv"), &csv).expect("write paired comparison");
        println!(
            "## Paired against {}: {} seeds, {} bootstrap resamples of the seeds, 95 % percentile CIs\n\n{md}",
            args.reference,
            args.seeds, args.bootstrap
        );
    }

    if args.plots {
        match plots::write_all(&args.out, &maps, &cells, &rows, &ests, args.steps) {
            Ok(files) => {
                for f in files {
                    println!("wrote {}", f.display());
                }
            }
            Err(e) => eprintln!("plots not written: {e}"),
        }
    }
}

mod plots {
    use std::path::{Path, PathBuf};

    use landmark_flow::plotting::{colour, draw_legend, register_font};
    use plotters::prelude::*;

    use super::*;

    fn err<E: std::fmt::Debug>(e: E) -> String {
        format!("{e:?}")
    }

    /// Viridis, piecewise linear through five stops; t ∈ [0, 1].
    fn viridis(t: f64) -> RGBColor {
        const STOPS: [(f64, f64, f64); 5] =
            [(68.0, 1.0, 84.0), (59.0, 82.0, 139.0), (33.0, 145.0, 140.0), (94.0, 201.0, 98.0), (253.0, 231.0, 37.0)];
        if !t.is_finite() {
            return RGBColor(255, 255, 255);
        }
        let t = t.clamp(0.0, 1.0) * 4.0;
        let i = (t.floor() as usize).min(3);
        let f = t - i as f64;
        let (a, b) = (STOPS[i], STOPS[i + 1]);
        let mix = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
        RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }

    /// Empirical CDF of each value (0 = smallest, 1 = largest): shows the ordering of the
    /// cells, which the linear scale hides under the peak at μ₀.
    fn ranks(v: &[f64]) -> Vec<f64> {
        let mut order: Vec<usize> = (0..v.len()).collect();
        order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        let mut out = vec![0.0; v.len()];
        for (rank, &i) in order.iter().enumerate() {
            out[i] = rank as f64 / (v.len() - 1).max(1) as f64;
        }
        out
    }

    fn heatmap_panel(
        area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
        title: &str,
        h: &Heatmap,
        values: &[f64],
        marker: (Vector2<f64>, &'static str),
    ) -> Result<(), String> {
        let w = HEATMAP_HALF_WIDTH_M;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(45)
            .build_cartesian_2d(-w..w, -w..w)
            .map_err(err)?;
        chart.configure_mesh().disable_mesh().x_desc("x₁ (m)").y_desc("x₂ (m)").label_style(("sans-serif", 14)).draw().map_err(err)?;
        let half = w / (HEATMAP_CELLS - 1) as f64;
        chart
            .draw_series(h.cells.iter().zip(values).map(|(p, v)| {
                Rectangle::new([(p.x - half, p.y - half), (p.x + half, p.y + half)], viridis(*v).filled())
            }))
            .map_err(err)?;
        let mean0 = Vector2::new(1.0, 1.0);
        // Bisector ‖x − y‖ = ‖x − μ₀‖ (a line unless y = μ₀).
        let n = h.landmark - mean0;
        if n.norm() > 1e-12 {
            let mid = 0.5 * (h.landmark + mean0);
            let t = Vector2::new(-n.y, n.x).normalize();
            let pts: Vec<(f64, f64)> =
                (-100..=100).map(|i| mid + t * (i as f64 * 0.1)).map(|p| (p.x, p.y)).filter(|p| p.0.abs() <= w && p.1.abs() <= w).collect();
            chart
                .draw_series(std::iter::once(PathElement::new(pts, WHITE.stroke_width(2))))
                .map_err(err)?
                .label("bisector ‖x−y‖ = ‖x−μ₀‖")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
        }
        chart
            .draw_series(std::iter::once(Circle::new((mean0.x, mean0.y), 7, WHITE.stroke_width(3))))
            .map_err(err)?
            .label("μ₀")
            .legend(|(x, y)| Circle::new((x + 10, y), 5, BLACK.stroke_width(2)));
        chart
            .draw_series(std::iter::once(TriangleMarker::new((h.landmark.x, h.landmark.y), 9, RED.filled())))
            .map_err(err)?
            .label("y")
            .legend(|(x, y)| TriangleMarker::new((x + 10, y), 6, RED.filled()));
        chart
            .draw_series(std::iter::once(Cross::new((marker.0.x, marker.0.y), 8, RGBColor(255, 0, 255).stroke_width(3))))
            .map_err(err)?
            .label(marker.1)
            .legend(|(x, y)| Cross::new((x + 10, y), 6, RGBColor(255, 0, 255).stroke_width(2)));
        draw_legend(&mut chart, 13, SeriesLabelPosition::LowerLeft).map_err(err)?;
        Ok(())
    }

    /// Two panels of `values` (min-max normalised, rank scale) with `marker` and a colour bar.
    fn heatmap(path: &Path, h: &Heatmap, quantity: &str, values: &[f64], marker: (Vector2<f64>, &'static str)) -> Result<(), String> {
        let root = BitMapBackend::new(path, (1300, 640)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (panels, bar) = root.split_horizontally(1200);
        let (left, right) = panels.split_horizontally(600);
        heatmap_panel(&left, &format!("normalised {quantity}, {}", h.label), h, &normalise(values), marker)?;
        heatmap_panel(&right, &format!("same, rank scale (colour = quantile), {}", h.label), h, &ranks(values), marker)?;
        // Colour bar 0 (min) … 1 (max).
        let mut cb = ChartBuilder::on(&bar)
            .margin_top(50)
            .margin_bottom(52)
            .margin_right(40)
            .y_label_area_size(0)
            .right_y_label_area_size(40)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)
            .map_err(err)?;
        cb.configure_mesh().disable_mesh().disable_x_axis().label_style(("sans-serif", 13)).y_labels(6).draw().map_err(err)?;
        cb.draw_series((0..100).map(|i| {
            let t = i as f64 / 100.0;
            Rectangle::new([(0.0, t), (1.0, t + 0.01)], viridis(t + 0.005).filled())
        }))
        .map_err(err)?;
        root.present().map_err(err)
    }

    /// (y-axis label, log scale, named series of (k, value)).
    type Panel = (&'static str, bool, Vec<(String, Vec<(f64, f64)>)>);

    fn curves(
        path: &Path,
        title: &str,
        panels: &[Panel],
        steps: usize,
    ) -> Result<(), String> {
        let root = BitMapBackend::new(path, (1400, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (top, rest) = root.split_vertically(40);
        top.draw(&Text::new(title.to_string(), (20, 8), ("sans-serif", 24).into_font())).map_err(err)?;
        let areas = rest.split_evenly((1, panels.len()));
        for (area, (ylabel, log, series)) in areas.iter().zip(panels) {
            let ymax = series.iter().flat_map(|s| s.1.iter().map(|p| p.1)).fold(0.0f64, f64::max) * 1.1;
            let ymin = series.iter().flat_map(|s| s.1.iter().map(|p| p.1)).fold(f64::INFINITY, f64::min).max(1e-3);
            let mut b = ChartBuilder::on(area);
            b.margin(12).x_label_area_size(40).y_label_area_size(60);
            let x_range = 1f64..steps as f64;
            macro_rules! draw {
                ($chart:expr) => {{
                    let mut chart = $chart;
                    chart
                        .configure_mesh()
                        .x_desc("measurement k")
                        .y_desc(*ylabel)
                        .label_style(("sans-serif", 14))
                        .draw()
                        .map_err(err)?;
                    for (i, (name, pts)) in series.iter().enumerate() {
                        let c = colour(i);
                        chart
                            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                            .map_err(err)?
                            .label(name.as_str())
                            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
                    }
                    draw_legend(&mut chart, 13, SeriesLabelPosition::UpperRight).map_err(err)?;
                }};
            }
            if *log {
                draw!(b.build_cartesian_2d(x_range, (ymin * 0.9..ymax).log_scale()).map_err(err)?);
            } else {
                draw!(b.build_cartesian_2d(x_range, 0.0..ymax).map_err(err)?);
            }
        }
        root.present().map_err(err)
    }

    fn paths_figure(path: &Path, title: &str, rows: &[PolicyRow], cells: &BTreeMap<Key, Cell>, estimator: usize) -> Result<(), String> {
        let root = BitMapBackend::new(path, (800, 760)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(45)
            .build_cartesian_2d(-10.5..10.5, -10.5..10.5)
            .map_err(err)?;
        chart.configure_mesh().x_desc("x (m)").y_desc("y (m)").label_style(("sans-serif", 14)).draw().map_err(err)?;
        for (pi, row) in rows.iter().enumerate() {
            let Some(cell) = cells.get(&(Scenario::Fixed, estimator, pi)) else { continue };
            let c = colour(pi);
            for (j, p) in cell.example_paths.iter().take(1).enumerate() {
                let pts: Vec<(f64, f64)> = p.iter().map(|v| (v.x, v.y)).collect();
                let s = chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2))).map_err(err)?;
                if j == 0 {
                    s.label(row.label).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
                }
                chart.draw_series(pts.iter().map(|&q| Circle::new(q, 3, c.filled()))).map_err(err)?;
            }
        }
        let y = slides::landmark();
        chart
            .draw_series(std::iter::once(TriangleMarker::new((y.x, y.y), 10, BLACK.filled())))
            .map_err(err)?
            .label("y* = [4.7, −3.1]")
            .legend(|(x, y)| TriangleMarker::new((x + 10, y), 6, BLACK.filled()));
        chart
            .draw_series(std::iter::once(Circle::new((1.0, 1.0), 7, BLUE.stroke_width(2))))
            .map_err(err)?
            .label("μ₀")
            .legend(|(x, y)| Circle::new((x + 10, y), 5, BLUE.stroke_width(2)));
        draw_legend(&mut chart, 13, SeriesLabelPosition::LowerLeft).map_err(err)?;
        root.present().map_err(err)
    }

    pub fn write_all(
        out: &Path,
        maps: &[Heatmap],
        cells: &BTreeMap<Key, Cell>,
        rows: &[PolicyRow],
        ests: &[(&'static str, EstimatorConfig)],
        steps: usize,
    ) -> Result<Vec<PathBuf>, String> {
        register_font().map_err(|e| e.to_string())?;
        let mut files = Vec::new();
        for h in maps {
            let path = out.join(format!("heatmap_{}.png", h.name));
            heatmap(&path, h, "E_z‖Σ̇(0; x₁)‖₂", &h.monte_carlo, (minimiser_report(h).argmin, "argmin"))?;
            files.push(path);
            let path = out.join(format!("heatmap_sigma_reduction_{}.png", h.name));
            let marker = (argmax(&h.cells, &h.sigma_reduction), "argmax");
            heatmap(&path, h, "Σ-reduction E_z λmax(Σ − Σ₁)", &h.sigma_reduction, marker)?;
            files.push(path);
        }
        for scenario in [Scenario::Fixed, Scenario::FromPrior] {
            for (ei, (est, _)) in ests.iter().enumerate() {
                let series = |f: &dyn Fn(&Cell, usize) -> f64| -> Vec<(String, Vec<(f64, f64)>)> {
                    rows.iter()
                        .enumerate()
                        .filter_map(|(pi, row)| {
                            let cell = cells.get(&(scenario, ei, pi))?;
                            Some((row.label.to_string(), (0..steps).map(|k| ((k + 1) as f64, f(cell, k))).collect()))
                        })
                        .collect()
                };
                let panels = vec![
                    ("median ‖μ − y‖ (m)", true, series(&|c, k| median(&c.errors[k]))),
                    ("fraction lost (‖μ − y‖ > 2 m)", false, series(&|c, k| {
                        c.errors[k].iter().filter(|e| **e > LOST_M).count() as f64 / c.errors[k].len() as f64
                    })),
                    ("median tr Σ (m²)", true, series(&|c, k| median(&c.traces[k]))),
                ];
                let path = out.join(format!("study_{}_{est}.png", scenario.name()));
                let landmark = match scenario {
                    Scenario::Fixed => "y* = [4.7, −3.1]",
                    Scenario::FromPrior => "y ~ N(μ₀, Σ₀)",
                };
                curves(&path, &format!("closed loop, {landmark}, {est} estimator, step ≤ 1 m, σ² = 2 m²"), &panels, steps)?;
                files.push(path);
            }
        }
        let path = out.join("study_paths_fixed_mixture.png");
        paths_figure(&path, "sensor positions x₀ … x₁₉, seed 0, y* fixed, mixture", rows, cells, 0)?;
        files.push(path);
        Ok(files)
    }
}
