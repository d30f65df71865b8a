//! Writes a synthetic rosbag2 bag (replay::synthetic::SyntheticBag: a robot on a 5 m
//! circle at 0.2 rad/s, odometry at 20 Hz, ranges at 10 Hz round-robin over 3
//! landmarks, seeded noise), optionally with drifting odometry, for measuring the
//! replayer (e.g. its peak memory on a long bag) or feeding `localizer.odometry:
//! drifting`:
//!
//! ```text
//! cargo run --release --no-default-features --features bag --example synthetic_bag -- /tmp/hour 3600 [sqlite]
//! /usr/bin/time -v target/release/landmark_flow_replay /tmp/hour --out /tmp/hour_out --no-plots
//! cargo run --release --no-default-features --features bag --example synthetic_bag -- \
//!     /tmp/drift 300 --gyro-bias 0.005 --wheel-scale-error 0.02 --odometry-noise --ground-truth /tmp/drift_truth.yaml
//! ```
//!
//! `--help` lists the arguments. Without any odometry-error flag the bag is exactly
//! the one this example wrote before those flags existed.

use landmark_flow::localizer::drift::OdometryErrorConfig;
use landmark_flow::replay::synthetic::{SyntheticBag, SyntheticOdometryError};
use nalgebra::Vector2;
use std::path::PathBuf;
use std::process::ExitCode;

const HELP: &str = "\
usage: synthetic_bag OUT [SECONDS] [sqlite] [OPTIONS]

Writes a synthetic rosbag2 bag: a robot on a 5 m circle (0.2 rad/s), /odom
(nav_msgs/Odometry, 20 Hz) and /range (landmark_flow/RangeMeasurement, 10 Hz,
sigma 0.3 m, round-robin over landmarks a (4, 3), b (-6, 2), c (1, -7)).
With any odometry error, /odom is dead reckoning over erroneous increments from
the true start pose and /ground_truth/odom records the true pose (model:
src/replay/synthetic.rs). Without one, the bag is the error-free one.

  OUT        bag directory (MCAP), or a .db3 file with `sqlite`
  SECONDS    bag length, s (default 3600)
  sqlite     write rosbag2 sqlite3 instead of MCAP

Odometry error (all default 0 = odometry equals the true pose):
  --gyro-bias RAD_PER_S            gyro bias b, rad/s: heading error grows b*t
                                   (0.005 = 17 deg in a minute)
  --wheel-scale-error EPS          odometry distance = (1 + EPS) * true distance
                                   (dimensionless, > -1; 0.02 = 2 % too long)
  --translation-std M_PER_SQRT_M   sigma_t: along-track noise, variance sigma_t^2 * ds
  --rotation-std-per-rad RAD_PER_SQRT_RAD
                                   sigma_r: heading noise, variance sigma_r^2 * |dtheta|
  --rotation-std-per-m RAD_PER_SQRT_M
                                   sigma_rm: heading noise, variance sigma_rm^2 * ds
  --gyro-bias-walk RAD_PER_S_PER_SQRT_S
                                   q_b: bias random walk, variance q_b^2 * dt
  --gyro-bias-std RAD_PER_S        sigma_b: start bias = b + sigma_b * N(0, 1)
  --odometry-noise                 the five noise parameters above at the defaults of
                                   localizer.odometry_error (0.05, 0.02, 0.01, 1e-4,
                                   1e-3); later flags override single ones
  --odometry-seed N                seed of the odometry error (default 11; the range
                                   noise keeps its own seed, 7)

Other:
  --landmarks N                    N landmarks on a square lattice over +-60 m
                                   (ids lm_0..lm_{N-1}) instead of a, b, c: every
                                   one is heard once per N/10 s, so with
                                   unknown_landmarks: initialise most are being
                                   initialised at once (issue 14's memory case)
  --ground-truth FILE              also write the true landmark positions as YAML for
                                   `landmark_flow_replay --ground-truth FILE`
  -h, --help                       this text
";

struct Args {
    out: PathBuf,
    duration_s: f64,
    sqlite: bool,
    error: SyntheticOdometryError,
    ground_truth: Option<PathBuf>,
    landmarks: Option<usize>,
}

/// `n` landmarks on the smallest square lattice that holds them, spanning ±60 m.
fn lattice(n: usize) -> Vec<(String, Vector2<f64>)> {
    let side = (n as f64).sqrt().ceil().max(2.0) as usize;
    let spacing_m = 120.0 / (side - 1) as f64;
    (0..n)
        .map(|i| (format!("lm_{i}"), Vector2::new((i % side) as f64, (i / side) as f64) * spacing_m - Vector2::repeat(60.0)))
        .collect()
}

fn number(flag: &str, value: Option<&String>) -> Result<f64, String> {
    let v = value.ok_or_else(|| format!("{flag} needs a value"))?;
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(format!("{flag}: `{v}` is not a finite number")),
    }
}

fn non_negative(flag: &str, value: Option<&String>) -> Result<f64, String> {
    let x = number(flag, value)?;
    if x < 0.0 {
        return Err(format!("{flag}: must be >= 0, got {x}"));
    }
    Ok(x)
}

fn parse(args: &[String]) -> Result<Option<Args>, String> {
    let mut positional = Vec::new();
    let mut error = SyntheticOdometryError::default();
    let mut ground_truth = None;
    let mut landmarks = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let n = &mut error.noise;
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--gyro-bias" => error.gyro_bias_rad_per_s = number(a, it.next())?,
            "--wheel-scale-error" => {
                error.wheel_scale_error = number(a, it.next())?;
                if error.wheel_scale_error <= -1.0 {
                    return Err(format!("{a}: must be > -1, got {}", error.wheel_scale_error));
                }
            }
            "--translation-std" => n.translation_std_m_per_sqrt_m = non_negative(a, it.next())?,
            "--rotation-std-per-rad" => n.rotation_std_rad_per_sqrt_rad = non_negative(a, it.next())?,
            "--rotation-std-per-m" => n.rotation_std_rad_per_sqrt_m = non_negative(a, it.next())?,
            "--gyro-bias-walk" => n.gyro_bias_walk_rad_per_s_per_sqrt_s = non_negative(a, it.next())?,
            "--gyro-bias-std" => n.gyro_bias_std_rad_per_s = non_negative(a, it.next())?,
            "--odometry-noise" => *n = OdometryErrorConfig::default(),
            "--odometry-seed" => {
                let v = it.next().ok_or("--odometry-seed needs a value")?;
                error.seed = v.parse().map_err(|_| format!("--odometry-seed: `{v}` is not an unsigned integer"))?;
            }
            "--landmarks" => {
                let v = it.next().ok_or("--landmarks needs a value")?;
                landmarks = Some(v.parse().ok().filter(|&n: &usize| n >= 1).ok_or_else(|| format!("--landmarks: `{v}` is not a positive integer"))?);
            }
            "--ground-truth" => ground_truth = Some(PathBuf::from(it.next().ok_or("--ground-truth needs a file")?)),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ => positional.push(a.clone()),
        }
    }
    let out = positional.first().map(PathBuf::from).ok_or("missing OUT")?;
    let duration_s = match positional.get(1).map(|s| s.parse::<f64>()) {
        None => 3600.0,
        Some(Ok(d)) if d > 0.0 && d.is_finite() => d,
        Some(_) => return Err("SECONDS must be a positive number".into()),
    };
    let sqlite = match positional.get(2).map(String::as_str) {
        None => false,
        Some("sqlite") => true,
        Some(other) => return Err(format!("unexpected argument `{other}`")),
    };
    if positional.len() > 3 {
        return Err(format!("unexpected argument `{}`", positional[3]));
    }
    Ok(Some(Args { out, duration_s, sqlite, error, ground_truth, landmarks }))
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&raw) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("synthetic_bag: {e}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    let mut bag = SyntheticBag { duration_s: args.duration_s, odometry_error: args.error, ..Default::default() };
    if let Some(n) = args.landmarks {
        bag.landmarks = lattice(n);
    }
    let written = if args.sqlite { bag.write_sqlite(&args.out) } else { bag.write_mcap(&args.out) };
    let written = written.map_err(|e| e.to_string()).and_then(|()| match &args.ground_truth {
        Some(p) => std::fs::write(p, bag.ground_truth_yaml()).map_err(|e| format!("{}: {e}", p.display())),
        None => Ok(()),
    });
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("synthetic_bag: {e}");
            ExitCode::FAILURE
        }
    }
}
