//! Multi-landmark planner study (issue 16, items 3 and 4): how fast does one robot
//! localise four unknown beacons, planner vs non-adaptive paths?
//!
//! Per seed: 4 beacons uniform in [5, 95]² m (a 100 m square, Plaza-like ranges up to
//! ~130 m), range noise σ = 0.5 m, robot starting at the centre (50, 50). The real
//! pipeline: the library's [`Localizer`] with `unknown_landmarks: initialise` (each
//! beacon from no prior: the grid over 100 m around the first range, then the node's
//! default mixture flow), fed odometry (exact) and one range per beacon per step, 1 s
//! apart. Between measurements the robot moves at most `max_step_m` (5 m):
//!
//! * `planner_all`: `sigma_reduction` with `landmarks: all` (criterion summed over every
//!   beacon's belief, `plan_next_goal_multi`, as the goal scheduler calls it);
//! * `planner_target`: `sigma_reduction` for the one beacon with the largest tr Σ (the
//!   goal scheduler's `landmarks: target` path);
//! * `*_h2`: the same with `horizon_steps: 2`;
//! * `lawnmower`: a boustrophedon over the square (lanes 20 m apart at x, y ∈ {10 … 90}),
//!   full steps;
//! * `random_walk`: a full step in a uniformly random direction that stays in the square
//!   (the same path length per step as the lawnmower; the planners' steps are at most that).
//!
//! Metric: the first step at which all four beacons' estimates (the track's mean,
//! tracking or not) are < 1 m from the truth ("time to all < 1 m"; runs that never get
//! there count as `steps + 1` and are reported as "not reached"), and the mean error over
//! the four at the last step. Common random numbers: per seed the same beacons and the same
//! noise sequence for every policy. Paired seed-bootstrap 95 % CIs against `planner_all`.
//!
//! Usage: `cargo run --release --no-default-features --features plots --example
//! planner_multi_study -- [--seeds N] [--steps N] [--threads N] [--out DIR]
//! [--policies a,b,..] [--bootstrap N] [--no-plots]` (default 100 seeds, 120 steps,
//! docs/planner/multi).

use std::path::PathBuf;
use std::time::Instant;

use landmark_flow::estimator::GaussianBelief;
use landmark_flow::localizer::{Localizer, LocalizerConfig, RangeInput, UnknownLandmarkPolicy};
use landmark_flow::planner::{
    plan_next_goal_multi, plan_next_goal_with_grid, GoalPolicy, LandmarkSelection, PlannerConfig, PlannerError,
    WorkspaceBounds,
};
use landmark_flow::stats::{mean, median};
use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

const BEACONS: usize = 4;
const SIDE_M: f64 = 100.0;
const NOISE_STD_M: f64 = 0.5;
const MAX_STEP_M: f64 = 5.0;
const SOLVED_M: f64 = 1.0;

struct Args {
    seeds: u64,
    steps: usize,
    threads: usize,
    out: PathBuf,
    policies: Option<Vec<String>>,
    bootstrap: usize,
    plots: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        seeds: 100,
        steps: 120,
        threads: 2,
        out: PathBuf::from("docs/planner/multi"),
        policies: None,
        bootstrap: 2000,
        plots: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| it.next().and_then(|v| v.parse::<u64>().ok()).ok_or(format!("{name} needs a number"));
        match arg.as_str() {
            "--seeds" => a.seeds = num("--seeds")?,
            "--steps" => a.steps = num("--steps")? as usize,
            "--threads" => a.threads = num("--threads")? as usize,
            "--bootstrap" => a.bootstrap = num("--bootstrap")? as usize,
            "--out" => a.out = it.next().map(PathBuf::from).ok_or("--out needs a directory")?,
            "--policies" => {
                a.policies = Some(it.next().ok_or("--policies needs a list")?.split(',').map(|s| s.trim().to_string()).collect())
            }
            "--no-plots" => a.plots = false,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.seeds == 0 || a.steps == 0 {
        return Err("--seeds and --steps must be >= 1".into());
    }
    if let Some(list) = &a.policies {
        if let Some(bad) = list.iter().find(|p| !POLICIES.contains(&p.as_str())) {
            return Err(format!("unknown policy {bad}; known: {}", POLICIES.join(", ")));
        }
    }
    Ok(a)
}

const POLICIES: [&str; 6] = ["planner_all", "planner_target", "lawnmower", "random_walk", "planner_all_h2", "planner_target_h2"];

fn planner(landmarks: LandmarkSelection, horizon_steps: usize) -> PlannerConfig {
    PlannerConfig {
        policy: GoalPolicy::SigmaReduction,
        max_step_m: MAX_STEP_M,
        resolution_m: 0.5,
        min_landmark_distance_m: 1.0,
        workspace: WorkspaceBounds { min_x_m: 0.0, max_x_m: SIDE_M, min_y_m: 0.0, max_y_m: SIDE_M },
        landmarks,
        horizon_steps,
        // Horizon 2 over four beacons: 4 x 9 evaluations per candidate.
        max_scored_landmarks: if horizon_steps > 1 { 4 } else { 16 },
        ..PlannerConfig::default()
    }
}

fn localizer_config() -> LocalizerConfig {
    let mut c = LocalizerConfig { default_noise_std_m: NOISE_STD_M, unknown_landmarks: UnknownLandmarkPolicy::Initialise, ..LocalizerConfig::default() };
    c.initialisation.region_radius_m = 100.0;
    c.estimator.seed = 0;
    c
}

fn beacons(seed: u64) -> Vec<Vector2<f64>> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xBEAC_0115);
    (0..BEACONS).map(|_| Vector2::new(rng.random_range(5.0..95.0), rng.random_range(5.0..95.0))).collect()
}

/// Boustrophedon waypoints: lanes at y = 10, 30, …, 90 between x = 10 and 90, then back.
fn lawnmower_waypoints() -> Vec<Vector2<f64>> {
    let mut w = Vec::new();
    for (k, y) in [10.0, 30.0, 50.0, 70.0, 90.0].iter().enumerate() {
        let (a, b) = if k % 2 == 0 { (10.0, 90.0) } else { (90.0, 10.0) };
        w.push(Vector2::new(a, *y));
        w.push(Vector2::new(b, *y));
    }
    let back: Vec<_> = w.iter().rev().skip(1).copied().collect();
    w.extend(back);
    w
}

struct Run {
    /// Mean error over the beacons after each step's ranges, metres.
    mean_errors: Vec<f64>,
    /// Largest error over the beacons after each step's ranges, metres.
    max_errors: Vec<f64>,
    path_m: f64,
    plan_seconds: f64,
    plans: usize,
    plan_failures: usize,
}

fn run(policy: &str, seed: u64, steps: usize) -> Run {
    let truth = beacons(seed);
    let mut noise_rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x4D17);
    let noise: Vec<f64> = (0..steps * BEACONS).map(|_| NOISE_STD_M * noise_rng.sample::<f64, _>(StandardNormal)).collect();
    let mut walk_rng = StdRng::seed_from_u64(seed ^ 0x5A1C_0000);
    let mut loc = Localizer::new(localizer_config()).expect("valid localizer config");
    let config = match policy {
        "planner_all" => Some(planner(LandmarkSelection::All, 1)),
        "planner_target" => Some(planner(LandmarkSelection::Target, 1)),
        "planner_all_h2" => Some(planner(LandmarkSelection::All, 2)),
        "planner_target_h2" => Some(planner(LandmarkSelection::Target, 2)),
        _ => None,
    };
    let waypoints = lawnmower_waypoints();
    let mut next_waypoint = 0;
    let mut x = Vector2::new(50.0, 50.0);
    let ids: Vec<String> = (0..BEACONS).map(|i| format!("beacon_{i}")).collect();
    let mut r = Run { mean_errors: Vec::new(), max_errors: Vec::new(), path_m: 0.0, plan_seconds: 0.0, plans: 0, plan_failures: 0 };
    for k in 0..steps {
        let t = 1.0 + k as f64;
        let pose = Isometry3::from_parts(Translation3::new(x.x, x.y, 0.0), UnitQuaternion::identity());
        loc.add_odometry(t, "odom", pose).expect("odometry accepted");
        for (i, id) in ids.iter().enumerate() {
            let z = ((x - truth[i]).norm() + noise[k * BEACONS + i]).max(0.0);
            let m = RangeInput {
                topic: "range".into(),
                stamp_s: t,
                frame_id: String::new(),
                landmark_id: id.clone(),
                range_m: z,
                variance_m2: 0.0,
                sensor_limits_m: None,
            };
            // A rejected range (estimator failure) is counted by the localizer; go on.
            let _ = loc.add_range(&m);
        }
        let errors: Vec<f64> = ids
            .iter()
            .zip(&truth)
            .map(|(id, y)| loc.tracks().get(id).map_or(f64::INFINITY, |t| (t.summary.belief.mean - y).norm()))
            .collect();
        r.mean_errors.push(mean(&errors));
        r.max_errors.push(errors.iter().copied().fold(0.0, f64::max));
        if k + 1 == steps {
            break;
        }
        let next = match (policy, &config) {
            (_, Some(c)) => {
                let beliefs: Vec<GaussianBelief<2>> = ids.iter().filter_map(|id| loc.tracks().get(id)).map(|t| t.summary.belief).collect();
                let seed_k = seed.wrapping_mul(1_000_003).wrapping_add(k as u64);
                let started = Instant::now();
                let planned = if c.landmarks == LandmarkSelection::All {
                    plan_next_goal_multi(c, x, &beliefs, NOISE_STD_M * NOISE_STD_M, seed_k)
                } else {
                    // The goal scheduler's target: the largest tr Σ.
                    let target = beliefs.iter().max_by(|a, b| a.cov.trace().total_cmp(&b.cov.trace())).expect("4 tracks");
                    plan_next_goal_with_grid(c, x, target, NOISE_STD_M * NOISE_STD_M, seed_k)
                };
                r.plan_seconds += started.elapsed().as_secs_f64();
                r.plans += 1;
                match planned {
                    Ok((goal, _)) => goal.position_m,
                    Err(PlannerError::NoValidCandidate { .. }) => {
                        r.plan_failures += 1;
                        x
                    }
                    Err(e) => panic!("planner failed: {e}"),
                }
            }
            ("lawnmower", None) => {
                let mut target = waypoints[next_waypoint % waypoints.len()];
                if (target - x).norm() < 1e-9 {
                    next_waypoint += 1;
                    target = waypoints[next_waypoint % waypoints.len()];
                }
                let d = target - x;
                if d.norm() <= MAX_STEP_M { target } else { x + d * (MAX_STEP_M / d.norm()) }
            }
            ("random_walk", None) => {
                let mut p = x;
                for _ in 0..100 {
                    let a: f64 = walk_rng.random_range(0.0..std::f64::consts::TAU);
                    let q = x + MAX_STEP_M * Vector2::new(a.cos(), a.sin());
                    if q.x >= 0.0 && q.x <= SIDE_M && q.y >= 0.0 && q.y <= SIDE_M {
                        p = q;
                        break;
                    }
                }
                p
            }
            _ => unreachable!("policy names are checked"),
        };
        r.path_m += (next - x).norm();
        x = next;
    }
    r
}

/// First step (1-based) with every beacon < 1 m, or `steps + 1`.
fn time_to_solved(r: &Run, steps: usize) -> f64 {
    r.max_errors.iter().position(|e| *e < SOLVED_M).map_or((steps + 1) as f64, |k| (k + 1) as f64)
}

fn percentile_ci(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
    (at(0.025), at(0.975))
}

/// (point, CI) of the mean of `a`, and of the paired mean difference a − b.
/// A point estimate and its 95 % CI.
type Estimate = (f64, (f64, f64));

fn bootstrap(a: &[f64], b: &[f64], resamples: usize, seed: u64) -> (Estimate, Estimate) {
    let n = a.len();
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut m, mut d) = (Vec::with_capacity(resamples), Vec::with_capacity(resamples));
    for _ in 0..resamples {
        let (mut sa, mut sb) = (0.0, 0.0);
        for _ in 0..n {
            let i = rng.random_range(0..n);
            sa += a[i];
            sb += b[i];
        }
        m.push(sa / n as f64);
        d.push((sa - sb) / n as f64);
    }
    ((mean(a), percentile_ci(&mut m)), (mean(a) - mean(b), percentile_ci(&mut d)))
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    std::fs::create_dir_all(&args.out).expect("output directory");
    let policies: Vec<&str> =
        POLICIES.iter().copied().filter(|p| args.policies.as_ref().is_none_or(|l| l.iter().any(|q| q == p))).collect();
    let started = Instant::now();
    let seeds: Vec<u64> = (0..args.seeds).collect();
    let chunk = seeds.len().div_ceil(args.threads.max(1));
    // results[policy][seed]
    let mut results: Vec<Vec<Option<Run>>> = (0..policies.len()).map(|_| (0..seeds.len()).map(|_| None).collect()).collect();
    let out: Vec<(usize, usize, Run)> = std::thread::scope(|scope| {
        let handles: Vec<_> = seeds
            .chunks(chunk)
            .map(|chunk| {
                let policies = &policies;
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for &seed in chunk {
                        for (pi, p) in policies.iter().enumerate() {
                            out.push((pi, seed as usize, run(p, seed, args.steps)));
                        }
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("worker")).collect()
    });
    for (pi, si, r) in out {
        results[pi][si] = Some(r);
    }
    let runs: Vec<Vec<Run>> = results.into_iter().map(|v| v.into_iter().map(|r| r.expect("every run")).collect()).collect();
    let steps = args.steps;
    let reference = policies.iter().position(|p| *p == "planner_all");
    let mut csv = String::from(
        "policy,seeds,steps,time_to_all_1m_mean,time_lo,time_hi,time_median,not_reached_fraction,final_mean_error_m,final_lo,final_hi,\
         delta_time_vs_planner_all,delta_time_lo,delta_time_hi,delta_final_vs_planner_all,delta_final_lo,delta_final_hi,path_m_per_step,ms_per_plan\n",
    );
    let mut md = format!(
        "| policy | steps to all 4 < 1 m, mean [95 % CI] | median | not reached in {steps} | Δ steps vs planner_all [95 % CI] | final mean error (m) [95 % CI] | Δ final error vs planner_all (m) [95 % CI] | path per step (m) | ms / plan |\n|---|---|---|---|---|---|---|---|---|\n"
    );
    let mut per_step = String::from("policy,step,mean_error_m,median_mean_error_m,solved_fraction\n");
    let mut per_seed = String::from("policy,seed,steps_to_all_1m,final_mean_error_m,path_m\n");
    for (pi, p) in policies.iter().enumerate() {
        let rs = &runs[pi];
        let times: Vec<f64> = rs.iter().map(|r| time_to_solved(r, steps)).collect();
        let finals: Vec<f64> = rs.iter().map(|r| *r.mean_errors.last().expect("steps >= 1")).collect();
        let (ref_times, ref_finals) = match reference {
            Some(ri) => (
                runs[ri].iter().map(|r| time_to_solved(r, steps)).collect::<Vec<_>>(),
                runs[ri].iter().map(|r| *r.mean_errors.last().expect("steps")).collect::<Vec<_>>(),
            ),
            None => (times.clone(), finals.clone()),
        };
        let ((tm, tci), (dt, dtci)) = bootstrap(&times, &ref_times, args.bootstrap, 0xA11 ^ pi as u64);
        let ((fm, fci), (df, dfci)) = bootstrap(&finals, &ref_finals, args.bootstrap, 0xF17 ^ pi as u64);
        let not_reached = times.iter().filter(|t| **t > steps as f64).count() as f64 / times.len() as f64;
        let path = mean(&rs.iter().map(|r| r.path_m / (steps - 1).max(1) as f64).collect::<Vec<_>>());
        let plans: usize = rs.iter().map(|r| r.plans).sum();
        let ms = if plans > 0 { 1e3 * rs.iter().map(|r| r.plan_seconds).sum::<f64>() / plans as f64 } else { 0.0 };
        csv += &format!(
            "{p},{},{steps},{tm:.2},{:.2},{:.2},{:.1},{not_reached:.3},{fm:.4},{:.4},{:.4},{dt:.2},{:.2},{:.2},{df:.4},{:.4},{:.4},{path:.3},{ms:.2}\n",
            rs.len(), tci.0, tci.1, median(&times), fci.0, fci.1, dtci.0, dtci.1, dfci.0, dfci.1
        );
        let is_ref = Some(pi) == reference;
        md += &format!(
            "| {p} | {tm:.1} [{:.1}, {:.1}] | {:.0} | {:.0} % | {} | {fm:.3} [{:.3}, {:.3}] | {} | {path:.2} | {} |\n",
            tci.0,
            tci.1,
            median(&times),
            100.0 * not_reached,
            if is_ref { "—".into() } else { format!("{dt:+.1} [{:+.1}, {:+.1}]", dtci.0, dtci.1) },
            fci.0,
            fci.1,
            if is_ref { "—".into() } else { format!("{df:+.3} [{:+.3}, {:+.3}]", dfci.0, dfci.1) },
            if plans > 0 { format!("{ms:.1}") } else { "—".into() },
        );
        for k in 0..steps {
            let e: Vec<f64> = rs.iter().map(|r| r.mean_errors[k]).collect();
            let solved = rs.iter().filter(|r| time_to_solved(r, steps) <= (k + 1) as f64).count() as f64 / rs.len() as f64;
            per_step += &format!("{p},{},{:.4},{:.4},{solved:.4}\n", k + 1, mean(&e), median(&e));
        }
        for (seed, r) in rs.iter().enumerate() {
            per_seed += &format!("{p},{seed},{},{:.4},{:.2}\n", time_to_solved(r, steps), r.mean_errors[steps - 1], r.path_m);
        }
        let failures: usize = rs.iter().map(|r| r.plan_failures).sum();
        if failures > 0 {
            println!("{p}: {failures} NoValidCandidate plans (robot stayed)");
        }
    }
    std::fs::write(args.out.join("multi_summary.csv"), &csv).expect("write summary");
    std::fs::write(args.out.join("multi_vs_step.csv"), &per_step).expect("write per step");
    std::fs::write(args.out.join("multi_per_seed.csv"), &per_seed).expect("write per seed");
    println!(
        "## Four unknown beacons in a 100 m square: {} seeds x {steps} steps (<= {MAX_STEP_M} m), σ = {NOISE_STD_M} m; {} bootstrap resamples, paired by seed\n\n{md}",
        args.seeds, args.bootstrap
    );
    println!("total {:.1} s on {} threads", started.elapsed().as_secs_f64(), args.threads);
    if args.plots {
        match plot(&args.out.join("multi_vs_step.png"), &policies, &runs, steps) {
            Ok(()) => println!("wrote {}", args.out.join("multi_vs_step.png").display()),
            Err(e) => eprintln!("plot not written: {e}"),
        }
    }
}

fn plot(path: &std::path::Path, policies: &[&str], runs: &[Vec<Run>], steps: usize) -> Result<(), String> {
    use landmark_flow::plotting::{colour, draw_legend, register_font};
    use plotters::prelude::*;
    let err = |e: &dyn std::fmt::Debug| format!("{e:?}");
    register_font().map_err(|e| e.to_string())?;
    let root = BitMapBackend::new(path, (1400, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (left, right) = root.split_horizontally(700);
    let mut a = ChartBuilder::on(&left)
        .caption("fraction of runs with all 4 beacons < 1 m", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(1f64..steps as f64, 0f64..1.0)
        .map_err(|e| err(&e))?;
    a.configure_mesh().x_desc("step").y_desc("fraction solved").label_style(("sans-serif", 14)).draw().map_err(|e| err(&e))?;
    let mut b = ChartBuilder::on(&right)
        .caption("median of the mean error over the 4 beacons", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(1f64..steps as f64, (0.01f64..100.0).log_scale())
        .map_err(|e| err(&e))?;
    b.configure_mesh().x_desc("step").y_desc("m").label_style(("sans-serif", 14)).draw().map_err(|e| err(&e))?;
    for (pi, p) in policies.iter().enumerate() {
        let c = colour(pi);
        let rs = &runs[pi];
        let solved: Vec<(f64, f64)> = (0..steps)
            .map(|k| {
                let f = rs.iter().filter(|r| time_to_solved(r, steps) <= (k + 1) as f64).count() as f64 / rs.len() as f64;
                ((k + 1) as f64, f)
            })
            .collect();
        a.draw_series(LineSeries::new(solved, c.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(*p)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        let med: Vec<(f64, f64)> = (0..steps)
            .map(|k| ((k + 1) as f64, median(&rs.iter().map(|r| r.mean_errors[k]).collect::<Vec<_>>()).clamp(0.01, 100.0)))
            .collect();
        b.draw_series(LineSeries::new(med, c.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(*p)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    draw_legend(&mut a, 13, SeriesLabelPosition::LowerRight).map_err(|e| err(&e))?;
    draw_legend(&mut b, 13, SeriesLabelPosition::UpperRight).map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}
