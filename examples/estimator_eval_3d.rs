//! Accuracy report for 3-D landmarks seen from a planar path (issue 15, estimator level).
//!
//! Scenario: the slides' horizontal problem lifted to 3-D. Landmark y* = (4.7, −3.1, h)
//! with h = 0.5 m or 2.5 m above the sensor plane z = 0; prior N(μ₀, Σ₀) with the slides'
//! (x, y) block (μ = (1, 1), Σ = [[5.5, −1.5], [−1.5, 5.5]] m²) and z ~ N(0, 3²)
//! independent (symmetric about the plane: the mirror is undecided). 40 ranges with
//! noise σ = 0.5 m from a lawnmower in the plane: 4 rows (y = 3, 0.5, −2, −4.5 m) of 10
//! points from x = −2 to 8 m, alternating direction.
//!
//! For every method and noise seed the estimator runs through the 40 ranges; the exact
//! posterior (`ExactPosterior3`, grid of `--grid-cells`³ cells per pass) is computed
//! after the last one. Reported per (height, method), over seeds:
//! * horizontal error ‖(x̂, ŷ) − (x*, y*)‖ (RMSE and median) and the lost rate (> 2 m);
//! * vertical error |ẑ − z*| of the moment-matched mean (a method that keeps both
//!   mirrors reports ẑ ≈ 0 here, by design), and the mirror-resolved error: the mean of
//!   the belief's part on the truth's side of the plane (mixture: its components with
//!   μ_z ≥ 0, moment-matched; particles: those with z ≥ 0; a single Gaussian: |ẑ|), so
//!   that a method is not charged for an undecidable mirror;
//! * P(z > 0): the method's mass above the plane against the exact one (mean |difference|);
//! * var(z) of the moment-matched belief over the exact posterior's var(z) (median):
//!   below 1 a method claims to know the height better than the data allow;
//! * 3-D NEES (y* − μ)ᵀΣ⁻¹(y* − μ) of the moment-matched belief (mean and median;
//!   3 for a calibrated Gaussian), and the same for the exact posterior's moments;
//! * the 2-D model on the same data: a 2-D estimator (slides prior) fed the 3-D ranges as
//!   if they were horizontal distances, as the localizer does today: its horizontal error.
//!
//! Usage: `cargo run --release --no-default-features --example estimator_eval_3d --
//! [--seeds N] [--out DIR] [--grid-cells N]` (defaults 200, docs/estimator/3d, 64).
//! Single-threaded. Writes DIR/summary.csv and DIR/README.md (the table), prints the table.

use std::path::PathBuf;
use std::time::Instant;

use landmark_flow::estimator::cubature::gauss_hermite_nodes;
use landmark_flow::estimator::grid3::ExactPosterior3;
use landmark_flow::estimator::mixture::{mirror_mixture, mirror_mixture_flow_update};
use landmark_flow::estimator::{
    Belief, Estimator, EstimatorConfig, GaussianBelief, GaussianMixture, Method, NoiseShape, RangeModel, State,
};
use landmark_flow::slides::{prior as slides_prior, LOST_M};
use landmark_flow::stats::{mean, median};
use nalgebra::{Matrix3, Vector2, Vector3};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

const RANGE_STD_M: f64 = 0.5;
const PRIOR_Z_STD_M: f64 = 3.0;
const HEIGHTS_M: [f64; 2] = [0.5, 2.5];

fn landmark(height: f64) -> Vector3<f64> {
    Vector3::new(4.7, -3.1, height)
}

/// The slides' (x, y) prior with z ~ N(0, 3²) independent.
fn prior3() -> GaussianBelief<3> {
    let p = slides_prior();
    let mut cov = Matrix3::zeros();
    cov.fixed_view_mut::<2, 2>(0, 0).copy_from(&p.cov);
    cov[(2, 2)] = PRIOR_Z_STD_M * PRIOR_Z_STD_M;
    GaussianBelief::new(Vector3::new(p.mean.x, p.mean.y, 0.0), cov).expect("SPD prior")
}

fn sensor_path() -> Vec<Vector3<f64>> {
    let mut path = Vec::with_capacity(40);
    for (row, y) in [3.0, 0.5, -2.0, -4.5].into_iter().enumerate() {
        for k in 0..10 {
            let k = if row % 2 == 0 { k } else { 9 - k };
            path.push(Vector3::new(-2.0 + 10.0 * k as f64 / 9.0, y, 0.0));
        }
    }
    path
}

fn measurements(height: f64, seed: u64) -> Vec<RangeModel<3>> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9) ^ height.to_bits());
    sensor_path()
        .into_iter()
        .map(|x| {
            let z = ((x - landmark(height)).norm() + RANGE_STD_M * rng.sample::<f64, _>(StandardNormal)).max(0.0);
            RangeModel::new(x, z, RANGE_STD_M * RANGE_STD_M, NoiseShape::Gaussian).expect("valid simulated range")
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Kind {
    /// 3-D estimator through `Estimator::update`, prior as one Gaussian.
    Api(EstimatorConfig),
    /// 3-D mixture started from the mirror split of the prior at z = 0.
    Mirror(EstimatorConfig),
    /// 2-D estimator, ranges taken as horizontal distances.
    Planar(EstimatorConfig),
}

fn methods() -> Vec<(&'static str, Kind)> {
    let with = |method: Method, f: &dyn Fn(&mut EstimatorConfig)| {
        let mut c = EstimatorConfig { method, ..EstimatorConfig::default() };
        f(&mut c);
        c
    };
    vec![
        ("mixture_mirror", Kind::Mirror(with(Method::Mixture, &|_| {}))),
        ("mixture", Kind::Api(with(Method::Mixture, &|_| {}))),
        ("natural", Kind::Api(with(Method::Natural, &|_| {}))),
        ("natural_mc256", Kind::Api(with(Method::Natural, &|c| c.flow.cubature = false))),
        ("plain", Kind::Api(with(Method::Plain, &|_| {}))),
        ("ekf", Kind::Api(with(Method::Ekf, &|_| {}))),
        ("ukf", Kind::Api(with(Method::Ukf, &|_| {}))),
        ("pf1k", Kind::Api(with(Method::Particle, &|c| c.particle.count = 1_000))),
        ("pf10k", Kind::Api(with(Method::Particle, &|c| c.particle.count = 10_000))),
        ("2d_model_mixture", Kind::Planar(with(Method::Mixture, &|_| {}))),
        ("2d_model_natural", Kind::Planar(with(Method::Natural, &|_| {}))),
        ("2d_model_plain", Kind::Planar(with(Method::Plain, &|_| {}))),
    ]
}

/// One run's end result.
struct Outcome {
    horizontal_m: f64,
    /// NaN for the 2-D model.
    vertical_m: f64,
    vertical_mirror_m: f64,
    mass_above: f64,
    nees: f64,
    /// var(z) of the moment-matched belief, m² (NaN for the 2-D model).
    var_z: f64,
    update_s: f64,
    failures: usize,
}

/// Upper tail of N(0, 1) by the Gaussian mixture code's Φ (one component).
fn gaussian_mass_above(b: &GaussianBelief<3>) -> f64 {
    GaussianMixture::single(*b).mass_above(0.0)
}

fn finish3(belief: &Belief<3>, truth: &Vector3<f64>, update_s: f64, failures: usize) -> Outcome {
    let (summary, mirror_z, mass_above) = match belief {
        Belief::Gaussian(g) => (*g, g.mean.z.abs(), gaussian_mass_above(g)),
        Belief::Mixture(m) => (m.moment_matched(), mixture_side_z(m), m.mass_above(0.0)),
        Belief::Particles(p) => {
            let w = p.weights();
            let (mut wa, mut za) = (0.0, 0.0);
            for (s, w) in p.particles().iter().zip(&w) {
                if s.z >= 0.0 {
                    wa += w;
                    za += w * s.z;
                }
            }
            let m = p.moments();
            (m, if wa > 0.0 { za / wa } else { m.mean.z.abs() }, wa / w.iter().sum::<f64>())
        }
    };
    outcome(&summary, mirror_z, mass_above, truth, update_s, failures)
}

/// Mean z of the mixture's components on the truth's side (μ_z ≥ 0), moment-matched;
/// |ẑ| of the whole mixture when none is.
fn mixture_side_z(m: &GaussianMixture<3>) -> f64 {
    let (w, z) = m
        .components()
        .iter()
        .filter(|c| c.belief.mean.z >= 0.0)
        .fold((0.0, 0.0), |(w, z), c| (w + c.weight, z + c.weight * c.belief.mean.z));
    if w > 0.0 {
        z / w
    } else {
        m.moment_matched().mean.z.abs()
    }
}

fn outcome(b: &GaussianBelief<3>, mirror_z: f64, mass_above: f64, truth: &Vector3<f64>, update_s: f64, failures: usize) -> Outcome {
    Outcome {
        horizontal_m: (b.mean.xy() - truth.xy()).norm(),
        vertical_m: (b.mean.z - truth.z).abs(),
        vertical_mirror_m: (mirror_z - truth.z).abs(),
        mass_above,
        nees: b.mahalanobis_squared(truth).unwrap_or(f64::INFINITY),
        var_z: b.cov[(2, 2)],
        update_s,
        failures,
    }
}

fn run(kind: Kind, seed: u64, models: &[RangeModel<3>], truth: &Vector3<f64>) -> Outcome {
    let n = models.len() as f64;
    match kind {
        Kind::Api(config) => {
            let est = Estimator::<3>::new(EstimatorConfig { seed, ..config }).expect("valid config");
            let mut state: State<3> = est.initial_state(prior3()).expect("valid prior");
            let (mut seconds, mut failures) = (0.0, 0);
            for m in models {
                let t = Instant::now();
                match est.update(&state, m.sensor_position, m.range_m, m.noise.var) {
                    Ok((next, _)) => state = next,
                    Err(_) => failures += 1,
                }
                seconds += t.elapsed().as_secs_f64();
            }
            finish3(state.belief(), truth, seconds / n, failures)
        }
        Kind::Mirror(config) => {
            let nodes = gauss_hermite_nodes::<3>(config.flow.cubature_points_per_axis);
            let mut mix = mirror_mixture(&prior3(), 0.0).expect("valid prior");
            let (mut seconds, mut failures) = (0.0, 0);
            for m in models {
                let t = Instant::now();
                match mirror_mixture_flow_update(&mix, 0.0, m, &nodes, &config.natural_settings(), &config.mixture_settings()) {
                    Ok((next, _)) => mix = next,
                    Err(_) => failures += 1,
                }
                seconds += t.elapsed().as_secs_f64();
            }
            finish3(&Belief::Mixture(mix), truth, seconds / n, failures)
        }
        Kind::Planar(config) => {
            let est = Estimator::<2>::new(EstimatorConfig { seed, ..config }).expect("valid config");
            let mut state = est.initial_state(slides_prior()).expect("valid prior");
            let (mut seconds, mut failures) = (0.0, 0);
            for m in models {
                let t = Instant::now();
                let x = Vector2::new(m.sensor_position.x, m.sensor_position.y);
                match est.update(&state, x, m.range_m, m.noise.var) {
                    Ok((next, _)) => state = next,
                    Err(_) => failures += 1,
                }
                seconds += t.elapsed().as_secs_f64();
            }
            let b = state.summary().expect("publishable").belief;
            Outcome {
                horizontal_m: (b.mean - truth.xy()).norm(),
                vertical_m: f64::NAN,
                vertical_mirror_m: f64::NAN,
                mass_above: f64::NAN,
                nees: f64::NAN,
                var_z: f64::NAN,
                update_s: seconds / n,
                failures,
            }
        }
    }
}

struct Args {
    seeds: u64,
    out: PathBuf,
    grid_cells: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { seeds: 200, out: PathBuf::from("docs/estimator/3d"), grid_cells: 64 };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seeds" => args.seeds = it.next().and_then(|v| v.parse().ok()).ok_or("--seeds needs a number")?,
            "--out" => args.out = it.next().map(PathBuf::from).ok_or("--out needs a directory")?,
            "--grid-cells" => args.grid_cells = it.next().and_then(|v| v.parse().ok()).ok_or("--grid-cells needs a number")?,
            "-h" | "--help" => return Err("usage: estimator_eval_3d [--seeds N] [--out DIR] [--grid-cells N]".into()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

#[derive(Default)]
struct Column {
    horizontal: Vec<f64>,
    vertical: Vec<f64>,
    vertical_mirror: Vec<f64>,
    mass_gap: Vec<f64>,
    nees: Vec<f64>,
    var_z_ratio: Vec<f64>,
    seconds: Vec<f64>,
    failures: usize,
}

fn rmse(v: &[f64]) -> f64 {
    (v.iter().map(|e| e * e).sum::<f64>() / v.len() as f64).sqrt()
}

fn lost(v: &[f64]) -> f64 {
    v.iter().filter(|e| **e > LOST_M).count() as f64 / v.len() as f64
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
    let methods = methods();
    let mut csv = String::from(
        "height_m,method,horizontal_rmse_m,horizontal_median_m,lost_fraction,vertical_median_m,vertical_mirror_median_m,\
         mass_above_gap_mean,var_z_over_exact_median,nees_mean,nees_median,update_us,failures\n",
    );
    let mut table = String::from(
        "| height | method | horiz. RMSE m | horiz. median m | lost | \\|z\\| err median m | z err, right mirror, median m | mean \\|P(z>0) − exact\\| | var(z) / exact, median | NEES mean | NEES median | µs/update | failures |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    let mut cell_sizes = Vec::new();
    for height in HEIGHTS_M {
        let truth = landmark(height);
        let mut columns: Vec<Column> = methods.iter().map(|_| Column::default()).collect();
        let mut exact = Column::default();
        for seed in 0..args.seeds {
            let models = measurements(height, seed);
            let post = ExactPosterior3::compute(&prior3(), &models, args.grid_cells).expect("grid posterior");
            cell_sizes.push(post.cell_size());
            let split = post.split_at_plane(0.0);
            let p = post.moments();
            let mirror_z = if split.mass_above > 0.0 { split.mean_above.z } else { p.mean.z.abs() };
            let e = outcome(&p, mirror_z, split.mass_above, &truth, 0.0, 0);
            exact.horizontal.push(e.horizontal_m);
            exact.vertical.push(e.vertical_m);
            exact.vertical_mirror.push(e.vertical_mirror_m);
            exact.mass_gap.push(0.0);
            exact.nees.push(e.nees);
            exact.var_z_ratio.push(1.0);
            for ((_, kind), col) in methods.iter().zip(&mut columns) {
                let o = run(*kind, seed, &models, &truth);
                col.horizontal.push(o.horizontal_m);
                col.vertical.push(o.vertical_m);
                col.vertical_mirror.push(o.vertical_mirror_m);
                col.mass_gap.push((o.mass_above - split.mass_above).abs());
                col.nees.push(o.nees);
                col.var_z_ratio.push(o.var_z / p.cov[(2, 2)]);
                col.seconds.push(o.update_s);
                col.failures += o.failures;
            }
            if (seed + 1) % 25 == 0 {
                eprintln!("height {height} m: {} seeds, {:.0} s", seed + 1, started.elapsed().as_secs_f64());
            }
        }
        let rows = std::iter::once(("exact", &exact)).chain(methods.iter().map(|(n, _)| *n).zip(columns.iter()));
        for (name, c) in rows {
            let fmt = |v: f64, digits: usize| {
                if v.is_nan() {
                    "–".to_string()
                } else if v.abs() >= 1e4 {
                    format!("{v:.1e}")
                } else {
                    format!("{v:.digits$}")
                }
            };
            let us = if name == "exact" { f64::NAN } else { mean(&c.seconds) * 1e6 };
            let vals = [
                rmse(&c.horizontal),
                median(&c.horizontal),
                lost(&c.horizontal),
                median(&c.vertical),
                median(&c.vertical_mirror),
                mean(&c.mass_gap),
                median(&c.var_z_ratio),
                mean(&c.nees),
                median(&c.nees),
                us,
            ];
            csv += &format!(
                "{height},{name},{},{}\n",
                vals.iter().map(|v| if v.is_nan() { String::new() } else { format!("{v:.4}") }).collect::<Vec<_>>().join(","),
                c.failures
            );
            table += &format!(
                "| {height} | {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                fmt(vals[0], 3),
                fmt(vals[1], 3),
                fmt(vals[2], 3),
                fmt(vals[3], 3),
                fmt(vals[4], 3),
                fmt(vals[5], 3),
                fmt(vals[6], 2),
                fmt(vals[7], 2),
                fmt(vals[8], 2),
                fmt(vals[9], 0),
                c.failures
            );
        }
    }
    let max_cell = cell_sizes.iter().fold(Vector3::zeros(), |a: Vector3<f64>, c| a.sup(c));
    let median_cell = [0, 1, 2].map(|i| median(&cell_sizes.iter().map(|c| c[i]).collect::<Vec<_>>()));
    let grid_note = format!(
        "Exact posterior: {n}³ cells per pass; fine cells (x, y, z) median {:.3} × {:.3} × {:.3} m, largest {:.3} × {:.3} × {:.3} m.",
        median_cell[0], median_cell[1], median_cell[2], max_cell.x, max_cell.y, max_cell.z,
        n = args.grid_cells
    );
    std::fs::write(args.out.join("summary.csv"), &csv).expect("write summary.csv");
    let readme = format!(
        "# 3-D landmarks from a planar path: accuracy report\n\n\
         Generated by `cargo run --release --no-default-features --example estimator_eval_3d -- --seeds {seeds}` \
         ({secs:.0} s single-threaded on this machine); the numbers are in `summary.csv`. The scenario and every \
         column are defined in the example's top comment (`examples/estimator_eval_3d.rs`).\n\n\
         Landmark (4.7, −3.1, h), h = 0.5 or 2.5 m above the sensor plane; prior: the slides' (x, y) block and \
         z ~ N(0, 3²); 40 ranges, σ = 0.5 m, lawnmower of 4 rows × 10 points; {seeds} seeds. \
         `mixture_mirror` starts from the mirror split of the prior at z = 0 (`mirror_mixture`) and updates \
         with `mirror_mixture_flow_update`; the other 3-D rows start from the prior as one Gaussian through \
         `Estimator::update`. `2d_model_*`: a 2-D estimator with the slides' prior fed the same ranges as if \
         they were horizontal distances (the localizer today); only its horizontal error is meaningful. \
         Lost: horizontal error > {lost} m. {grid_note}\n\n\
         `plain` (the slides' flow, Euler step η = 0.05) diverges in this scenario, in 2-D as well \
         (`2d_model_plain`): consistent with the mean step μ ← μ + η E[∇ ln p] being unstable once the \
         belief's precision exceeds 2/η = 40 m⁻² (σ < 0.16 m; σ = 0.5 m ranges get there), not with the \
         dimension; η = 0.005 does not diverge (checked by hand, not in the table).\n\n{table}",
        seeds = args.seeds,
        secs = started.elapsed().as_secs_f64(),
        lost = LOST_M,
    );
    std::fs::write(args.out.join("README.md"), readme).expect("write README.md");
    println!("{grid_note}\n\n{table}");
}
