//! Accuracy report on the slides' problem (issue 3): y* = [4.7, −3.1], μ₀ = [1, 1],
//! Σ₀ = [[5.5, −1.5], [−1.5, 5.5]], σ² = 2 m².
//!
//! Trajectories: `near` (x₀ = 0, then 29 points equally spaced on the radius-3 circle,
//! counter-clockwise from (3, 0)) and `far` (30 points on the radius-10 circle from
//! (10, 0)). For every method and noise seed the estimator runs through the 30
//! measurements; the exact grid posterior is computed at checkpoints.
//!
//! Usage: `cargo run --release --no-default-features --features plots --example estimator_eval --
//! [--seeds N] [--out DIR] [--threads N] [--no-plots]` (`make eval` runs it for the README).
//! Writes DIR/summary.csv, DIR/error_vs_k.csv, PNG plots, and prints a Markdown table.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use landmark_flow::slides::{landmark, prior, LOST_M, NOISE_VAR_M2};
use landmark_flow::stats::{mean, median};
use landmark_flow::estimator::grid::ExactPosterior2;
use landmark_flow::estimator::{
    Belief, Estimator, EstimatorConfig, GaussianBelief, Method, NoiseShape, RangeModel, State,
};
use nalgebra::Vector2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

const MEASUREMENTS: usize = 30;
const CHECKPOINTS: [usize; 9] = [1, 2, 3, 5, 10, 15, 20, 25, 30];
const KL_CHECKPOINTS: [usize; 3] = [1, 5, 30];
const GRID_CELLS: usize = 160;
const KL_NODES_PER_AXIS: usize = 20;


#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Trajectory {
    Near,
    Far,
}

impl Trajectory {
    fn name(self) -> &'static str {
        match self {
            Trajectory::Near => "near",
            Trajectory::Far => "far",
        }
    }
    fn sensor_positions(self) -> Vec<Vector2<f64>> {
        let circle = |r: f64, n: usize| {
            (0..n).map(move |k| {
                let a = 2.0 * std::f64::consts::PI * k as f64 / n as f64;
                Vector2::new(r * a.cos(), r * a.sin())
            })
        };
        match self {
            Trajectory::Near => std::iter::once(Vector2::zeros()).chain(circle(3.0, MEASUREMENTS - 1)).collect(),
            Trajectory::Far => circle(10.0, MEASUREMENTS).collect(),
        }
    }
}

/// Methods in the report: a label and the config that builds it.
fn methods() -> Vec<(&'static str, EstimatorConfig)> {
    let with = |method: Method, f: &dyn Fn(&mut EstimatorConfig)| {
        let mut c = EstimatorConfig { method, ..EstimatorConfig::default() };
        f(&mut c);
        c
    };
    vec![
        ("mixture", with(Method::Mixture, &|_| {})),
        ("natural", with(Method::Natural, &|_| {})),
        ("natural_mc256", with(Method::Natural, &|c| c.flow.cubature = false)),
        ("plain", with(Method::Plain, &|_| {})),
        ("ekf", with(Method::Ekf, &|_| {})),
        ("ukf", with(Method::Ukf, &|_| {})),
        ("pf1k", with(Method::Particle, &|c| c.particle.count = 1_000)),
        ("pf10k", with(Method::Particle, &|c| c.particle.count = 10_000)),
    ]
}

/// Per (trajectory, method, seed): the summary after every measurement.
struct Run {
    beliefs: Vec<GaussianBelief<2>>,
    /// KL(q‖p) of the full belief (mixture density for the mixture) at KL checkpoints.
    kl_full: Vec<f64>,
    update_seconds: f64,
    failures: usize,
}

/// (seed, one run per method, exact posterior mean per checkpoint).
type SeedResult = (u64, Vec<Run>, BTreeMap<usize, Vector2<f64>>);

struct Exact {
    means: BTreeMap<usize, Vector2<f64>>,
    posteriors: BTreeMap<usize, ExactPosterior2<RangeModel<2>>>,
}

fn measurements(traj: Trajectory, seed: u64) -> Vec<RangeModel<2>> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9) ^ traj as u64);
    traj.sensor_positions()
        .into_iter()
        .map(|x| {
            let noise: f64 = rng.sample::<f64, _>(StandardNormal) * NOISE_VAR_M2.sqrt();
            let z = ((x - landmark()).norm() + noise).max(0.0);
            RangeModel::new(x, z, NOISE_VAR_M2, NoiseShape::Gaussian).expect("valid simulated measurement")
        })
        .collect()
}

fn exact(models: &[RangeModel<2>]) -> Exact {
    let mut means = BTreeMap::new();
    let mut posteriors = BTreeMap::new();
    for &k in &CHECKPOINTS {
        let post = ExactPosterior2::compute(&prior(), &models[..k], GRID_CELLS).expect("grid posterior");
        means.insert(k, post.moments().mean);
        posteriors.insert(k, post);
    }
    Exact { means, posteriors }
}

fn run(config: &EstimatorConfig, seed: u64, models: &[RangeModel<2>], exact: &Exact) -> Run {
    let estimator = Estimator::<2>::new(EstimatorConfig { seed, ..*config }).expect("valid config");
    let mut state: State<2> = estimator.initial_state(prior()).expect("valid prior");
    let mut beliefs = Vec::with_capacity(models.len());
    let mut kl_full = Vec::new();
    let mut seconds = 0.0;
    let mut failures = 0;
    for (k, m) in models.iter().enumerate() {
        let t = Instant::now();
        match estimator.update(&state, m.sensor_position, m.range_m, m.noise.var) {
            Ok((next, _)) => state = next,
            Err(_) => failures += 1,
        }
        seconds += t.elapsed().as_secs_f64();
        let summary = state.summary().expect("states returned by update are publishable");
        beliefs.push(summary.belief);
        if KL_CHECKPOINTS.contains(&(k + 1)) {
            let post = &exact.posteriors[&(k + 1)];
            let kl = match state.belief() {
                Belief::Mixture(mix) => post.kl_from_mixture(mix, KL_NODES_PER_AXIS),
                _ => post.kl_from_gaussian(&summary.belief, KL_NODES_PER_AXIS),
            };
            kl_full.push(kl.unwrap_or(f64::INFINITY));
        }
    }
    Run { beliefs, kl_full, update_seconds: seconds / models.len() as f64, failures }
}


struct Args {
    seeds: u64,
    out: PathBuf,
    threads: usize,
    plots: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { seeds: 200, out: PathBuf::from("out/eval"), threads: 2, plots: true };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seeds" => args.seeds = it.next().and_then(|v| v.parse().ok()).ok_or("--seeds needs a number")?,
            "--out" => args.out = it.next().map(PathBuf::from).ok_or("--out needs a directory")?,
            "--threads" => args.threads = it.next().and_then(|v| v.parse().ok()).ok_or("--threads needs a number")?,
            "--no-plots" => args.plots = false,
            "-h" | "--help" => {
                return Err("usage: estimator_eval [--seeds N] [--out DIR] [--threads N] [--no-plots]".into())
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// Everything measured for one (trajectory, method).
struct Cell {
    errors: Vec<Vec<f64>>, // [k][seed]
    exact_dist: BTreeMap<usize, Vec<f64>>,
    kl: Vec<Vec<f64>>, // [checkpoint][seed]
    nees: Vec<f64>,
    seconds: Vec<f64>,
    failures: usize,
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
    let methods = methods();
    let mut cells: BTreeMap<(Trajectory, usize), Cell> = BTreeMap::new();
    let mut exact_errors: BTreeMap<(Trajectory, usize), Vec<f64>> = BTreeMap::new();
    for traj in [Trajectory::Near, Trajectory::Far] {
        let seeds: Vec<u64> = (0..args.seeds).collect();
        let chunks: Vec<Vec<u64>> = seeds.chunks(seeds.len().div_ceil(args.threads.max(1))).map(|c| c.to_vec()).collect();
        let results: Vec<SeedResult> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunks
                .iter()
                .map(|chunk| {
                    let methods = &methods;
                    scope.spawn(move || {
                        chunk
                            .iter()
                            .map(|&seed| {
                                let models = measurements(traj, seed);
                                let ex = exact(&models);
                                let runs = methods.iter().map(|(_, c)| run(c, seed, &models, &ex)).collect();
                                (seed, runs, ex.means)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().expect("worker thread")).collect()
        });
        for (_, runs, exact_means) in &results {
            for (&k, m) in exact_means {
                exact_errors.entry((traj, k)).or_default().push((m - landmark()).norm());
            }
            for (mi, r) in runs.iter().enumerate() {
                let cell = cells.entry((traj, mi)).or_insert_with(|| Cell {
                    errors: vec![Vec::new(); MEASUREMENTS],
                    exact_dist: BTreeMap::new(),
                    kl: vec![Vec::new(); KL_CHECKPOINTS.len()],
                    nees: Vec::new(),
                    seconds: Vec::new(),
                    failures: 0,
                });
                for (k, b) in r.beliefs.iter().enumerate() {
                    cell.errors[k].push((b.mean - landmark()).norm());
                }
                for (&k, m) in exact_means {
                    cell.exact_dist.entry(k).or_default().push((r.beliefs[k - 1].mean - m).norm());
                }
                for (i, kl) in r.kl_full.iter().enumerate() {
                    cell.kl[i].push(*kl);
                }
                let last = r.beliefs[MEASUREMENTS - 1];
                cell.nees.push(last.mahalanobis_squared(&landmark()).unwrap_or(f64::INFINITY));
                cell.seconds.push(r.update_seconds);
                cell.failures += r.failures;
            }
        }
    }

    // summary.csv and the Markdown table.
    let mut csv = String::from(
        "trajectory,method,rmse_m,median_error_m,lost_fraction,median_dist_exact_mean_m,kl_1,kl_5,kl_30,mean_nees,update_us,failures\n",
    );
    let mut table = String::from(
        "| trajectory | method | RMSE (m) | median err (m) | lost (>2 m) | median ‖μ−μ_exact‖ (m) | KL@1 | KL@5 | KL@30 | NEES | µs/update |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for traj in [Trajectory::Near, Trajectory::Far] {
        let ex = exact_errors[&(traj, MEASUREMENTS)].clone();
        let ex_rmse = (ex.iter().map(|e| e * e).sum::<f64>() / ex.len() as f64).sqrt();
        let ex_lost = ex.iter().filter(|e| **e > LOST_M).count() as f64 / ex.len() as f64;
        let ex_median = median(&ex);
        csv += &format!("{},exact,{ex_rmse:.4},{ex_median:.4},{ex_lost:.4},0,0,0,0,,,0\n", traj.name());
        table += &format!(
            "| {} | exact posterior mean | {ex_rmse:.3} | {ex_median:.3} | {:.1} % | 0 | 0 | 0 | 0 | – | – |\n",
            traj.name(),
            100.0 * ex_lost
        );
        for (mi, (name, _)) in methods.iter().enumerate() {
            let cell = &cells[&(traj, mi)];
            let errs = cell.errors[MEASUREMENTS - 1].clone();
            let rmse = (errs.iter().map(|e| e * e).sum::<f64>() / errs.len() as f64).sqrt();
            let lost = errs.iter().filter(|e| **e > LOST_M).count() as f64 / errs.len() as f64;
            let med = median(&errs);
            let dist = cell.exact_dist[&MEASUREMENTS].clone();
            let dist_med = median(&dist);
            let kls: Vec<f64> = cell.kl.iter().map(|v| mean(v)).collect();
            let nees = mean(&cell.nees);
            let us = 1e6 * mean(&cell.seconds);
            csv += &format!(
                "{},{name},{rmse:.4},{med:.4},{lost:.4},{dist_med:.4},{:.4},{:.4},{:.4},{nees:.3},{us:.1},{}\n",
                traj.name(),
                kls[0],
                kls[1],
                kls[2],
                cell.failures
            );
            table += &format!(
                "| {} | {name} | {rmse:.3} | {med:.3} | {:.1} % | {dist_med:.3} | {:.3} | {:.3} | {:.3} | {nees:.2} | {us:.1} |\n",
                traj.name(),
                100.0 * lost,
                kls[0],
                kls[1],
                kls[2]
            );
        }
    }
    std::fs::write(args.out.join("summary.csv"), &csv).expect("write summary.csv");

    // error_vs_k.csv: median error per K for every method, plus the exact posterior mean.
    let mut evk = String::from("trajectory,method,k,median_error_m,lost_fraction\n");
    for traj in [Trajectory::Near, Trajectory::Far] {
        for &k in &CHECKPOINTS {
            let e = exact_errors[&(traj, k)].clone();
            let lost = e.iter().filter(|v| **v > LOST_M).count() as f64 / e.len() as f64;
            evk += &format!("{},exact,{k},{:.4},{lost:.4}\n", traj.name(), median(&e));
        }
        for (mi, (name, _)) in methods.iter().enumerate() {
            for k in 1..=MEASUREMENTS {
                let e = cells[&(traj, mi)].errors[k - 1].clone();
                let lost = e.iter().filter(|v| **v > LOST_M).count() as f64 / e.len() as f64;
                evk += &format!("{},{name},{k},{:.4},{lost:.4}\n", traj.name(), median(&e));
            }
        }
    }
    std::fs::write(args.out.join("error_vs_k.csv"), &evk).expect("write error_vs_k.csv");

    println!("{table}");
    // Acceptance checks of issue 3.
    let idx = |n: &str| methods.iter().position(|(m, _)| *m == n).expect("method present");
    let far_nat = &cells[&(Trajectory::Far, idx("natural"))];
    let near_mix = &cells[&(Trajectory::Near, idx("mixture"))];
    let far_exact_med = median(&exact_errors[&(Trajectory::Far, MEASUREMENTS)]);
    let near_exact_med = median(&exact_errors[&(Trajectory::Near, MEASUREMENTS)]);
    let far_kl = mean(&far_nat.kl[2]);
    let far_ratio = median(&far_nat.errors[MEASUREMENTS - 1]) / far_exact_med;
    let near_lost = near_mix.errors[MEASUREMENTS - 1].iter().filter(|e| **e > LOST_M).count() as f64
        / near_mix.errors[MEASUREMENTS - 1].len() as f64;
    let near_ratio = median(&near_mix.errors[MEASUREMENTS - 1]) / near_exact_med;
    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
    println!("far, natural: mean KL@30 = {far_kl:.4} (<= 0.07: {})", verdict(far_kl <= 0.07));
    println!("far, natural: median error / exact = {far_ratio:.3} (<= 1.12: {})", verdict(far_ratio <= 1.12));
    println!("near, mixture: lost = {:.1} % (<= 2 %: {})", 100.0 * near_lost, verdict(near_lost <= 0.02));
    println!("near, mixture: median error / exact = {near_ratio:.3} (<= 1.1: {})", verdict(near_ratio <= 1.1));
    if args.plots {
        let names: Vec<&str> = methods.iter().map(|(n, _)| *n).collect();
        let mut curves = Vec::new();
        for traj in [Trajectory::Near, Trajectory::Far] {
            let mut series: Vec<(String, Vec<(f64, f64)>)> = names
                .iter()
                .enumerate()
                .map(|(mi, n)| {
                    let pts = (1..=MEASUREMENTS)
                        .map(|k| (k as f64, median(&cells[&(traj, mi)].errors[k - 1])))
                        .collect();
                    (n.to_string(), pts)
                })
                .collect();
            let exact_pts =
                CHECKPOINTS.iter().map(|&k| (k as f64, median(&exact_errors[&(traj, k)]))).collect();
            series.push(("exact posterior mean".to_string(), exact_pts));
            curves.push((traj.name(), series));
        }
        match plots::write_all(&args.out, &curves) {
            Ok(files) => {
                for f in files {
                    println!("wrote {}", f.display());
                }
            }
            Err(e) => eprintln!("plots not written: {e}"),
        }
    }
}

/// Estimator run for one seed on a trajectory with the landmark at `truth`; returns the
/// final summary's mean and covariance and all measurements.
fn single_run(method: Method, traj: Trajectory, truth: Vector2<f64>, seed: u64) -> (GaussianBelief<2>, Vec<RangeModel<2>>) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xA5A5);
    let models: Vec<RangeModel<2>> = traj
        .sensor_positions()
        .into_iter()
        .map(|x| {
            let z = ((x - truth).norm() + NOISE_VAR_M2.sqrt() * rng.sample::<f64, _>(StandardNormal)).max(0.0);
            RangeModel::new(x, z, NOISE_VAR_M2, NoiseShape::Gaussian).expect("valid measurement")
        })
        .collect();
    let est = Estimator::<2>::new(EstimatorConfig { method, seed, ..EstimatorConfig::default() }).expect("valid config");
    let mut state = est.initial_state(prior()).expect("valid prior");
    for m in &models {
        if let Ok((next, _)) = est.update(&state, m.sensor_position, m.range_m, m.noise.var) {
            state = next;
        }
    }
    (state.summary().expect("publishable").belief, models)
}

/// Maximum-likelihood landmark position (no prior): grid search of Σ ln p(zₖ|s) on
/// [−20, 20]² at 0.05 m.
fn mle(models: &[RangeModel<2>]) -> Vector2<f64> {
    use landmark_flow::estimator::MeasurementModel;
    let mut best = (f64::NEG_INFINITY, Vector2::zeros());
    for i in 0..=800 {
        for j in 0..=800 {
            let s = Vector2::new(-20.0 + 0.05 * i as f64, -20.0 + 0.05 * j as f64);
            let l: f64 = models.iter().map(|m| m.log_likelihood(&s)).sum();
            if l > best.0 {
                best = (l, s);
            }
        }
    }
    best.1
}

mod plots {
    use std::path::{Path, PathBuf};

    use nalgebra::Vector2;
    use landmark_flow::plotting::{colour, draw_legend, register_font};
    use plotters::prelude::*;

    use super::*;

    type Series = (String, Vec<(f64, f64)>);

    fn err<E: std::fmt::Debug>(e: E) -> String {
        format!("{e:?}")
    }

    fn ellipse(b: &GaussianBelief<2>, k: f64) -> Vec<(f64, f64)> {
        let l = b.cholesky().map(|c| c.l()).unwrap_or_else(|_| nalgebra::Matrix2::zeros());
        (0..=72)
            .map(|i| {
                let t = 2.0 * std::f64::consts::PI * i as f64 / 72.0;
                let p = b.mean + l * Vector2::new(t.cos(), t.sin()) * k;
                (p.x, p.y)
            })
            .collect()
    }

    fn error_vs_k(path: &Path, title: &str, series: &[Series]) -> Result<(), String> {
        let root = BitMapBackend::new(path, (1000, 650)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 26))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(1f64..30f64, (0.05f64..20f64).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("measurements K")
            .y_desc("median ‖μ − y*‖ (m)")
            .label_style(("sans-serif", 16))
            .draw()
            .map_err(err)?;
        for (i, (name, pts)) in series.iter().enumerate() {
            let c = if name.starts_with("exact") { BLACK } else { colour(i) };
            let pts: Vec<(f64, f64)> = pts.iter().map(|&(k, e)| (k, e.max(0.05))).collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(err)?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled()))).map_err(err)?;
        }
        draw_legend(&mut chart, 15, SeriesLabelPosition::UpperRight).map_err(err)?;
        root.present().map_err(err)
    }

    /// The slides' figure: prior (blue), MLE (red), flow posteriors (purple: natural,
    /// green: mixture) after 30 measurements, sensor positions (grey), truth (black).
    fn estimate_figure(path: &Path, title: &str, truth: Vector2<f64>, seeds: &[u64]) -> Result<(), String> {
        let root = BitMapBackend::new(path, (1300, 650)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let panels = root.split_evenly((1, 2));
        for (panel, traj) in panels.iter().zip([Trajectory::Near, Trajectory::Far]) {
            let lim = if truth.norm() > 8.0 { 14.0 } else { 11.0 };
            let mut chart = ChartBuilder::on(panel)
                .caption(format!("{title}: {}", traj.name()), ("sans-serif", 22))
                .margin(12)
                .x_label_area_size(35)
                .y_label_area_size(45)
                .build_cartesian_2d(-lim..lim, -lim..lim)
                .map_err(err)?;
            chart.configure_mesh().x_desc("x (m)").y_desc("y (m)").label_style(("sans-serif", 14)).draw().map_err(err)?;
            chart
                .draw_series(std::iter::once(PathElement::new(ellipse(&prior(), 2.0), BLUE.stroke_width(2))))
                .map_err(err)?
                .label("prior (2σ)")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
            let sensors: Vec<(f64, f64)> = traj.sensor_positions().iter().map(|x| (x.x, x.y)).collect();
            chart.draw_series(sensors.iter().map(|&p| Circle::new(p, 3, RGBColor(150, 150, 150).filled()))).map_err(err)?;
            let purple = RGBColor(128, 0, 160);
            let green = RGBColor(0, 150, 60);
            for (i, &seed) in seeds.iter().enumerate() {
                let (nat, models) = single_run(Method::Natural, traj, truth, seed);
                let (mix, _) = single_run(Method::Mixture, traj, truth, seed);
                let m = mle(&models);
                let first = i == 0;
                let s = chart.draw_series(std::iter::once(Cross::new((m.x, m.y), 7, RED.stroke_width(2)))).map_err(err)?;
                if first {
                    s.label("MLE").legend(|(x, y)| Cross::new((x + 10, y), 6, RED.stroke_width(2)));
                }
                let s = chart.draw_series(std::iter::once(PathElement::new(ellipse(&nat, 2.0), purple.stroke_width(2)))).map_err(err)?;
                if first {
                    s.label("natural flow (2σ)").legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], purple.stroke_width(2)));
                }
                let s = chart.draw_series(std::iter::once(PathElement::new(ellipse(&mix, 2.0), green.stroke_width(2)))).map_err(err)?;
                if first {
                    s.label("mixture flow (2σ)").legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], green.stroke_width(2)));
                }
            }
            chart
                .draw_series(std::iter::once(TriangleMarker::new((truth.x, truth.y), 9, BLACK.filled())))
                .map_err(err)?
                .label("true landmark")
                .legend(|(x, y)| TriangleMarker::new((x + 10, y), 6, BLACK.filled()));
            draw_legend(&mut chart, 14, SeriesLabelPosition::LowerLeft).map_err(err)?;
        }
        root.present().map_err(err)
    }

    pub fn write_all(out: &Path, curves: &[(&str, Vec<Series>)]) -> Result<Vec<PathBuf>, String> {
        register_font().map_err(|e| e.to_string())?;
        let mut files = Vec::new();
        for (traj, series) in curves {
            let path = out.join(format!("error_vs_k_{traj}.png"));
            error_vs_k(&path, &format!("Median error vs measurements, {traj} trajectory"), series)?;
            files.push(path);
        }
        let path = out.join("estimates.png");
        estimate_figure(&path, "prior / MLE / flow posterior, y* = [4.7, −3.1]", landmark(), &[0, 1])?;
        files.push(path);
        let path = out.join("ambiguous_2y.png");
        estimate_figure(&path, "landmark at 2y*", landmark() * 2.0, &[0, 1, 2, 3, 4, 5])?;
        files.push(path);
        Ok(files)
    }
}
