//! Writes a synthetic rosbag2 bag (replay::synthetic::SyntheticBag: odometry at 20 Hz,
//! ranges at 10 Hz round-robin over 3 landmarks, seeded noise) for measuring the
//! replayer, e.g. its peak memory on a long bag:
//!
//! ```text
//! cargo run --release --no-default-features --features bag --example synthetic_bag -- /tmp/hour 3600 [sqlite]
//! /usr/bin/time -v target/release/landmark_flow_replay /tmp/hour --out /tmp/hour_out --no-plots
//! ```
//!
//! Arguments: output path (a bag directory, or a `.db3` file with `sqlite`), bag
//! length in seconds (default 3600).

use landmark_flow::replay::synthetic::SyntheticBag;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first().map(PathBuf::from) else {
        eprintln!("usage: synthetic_bag OUT [SECONDS] [sqlite]");
        return ExitCode::from(2);
    };
    let duration_s = match args.get(1).map(|s| s.parse::<f64>()) {
        None => 3600.0,
        Some(Ok(d)) if d > 0.0 => d,
        Some(_) => {
            eprintln!("synthetic_bag: SECONDS must be a positive number");
            return ExitCode::from(2);
        }
    };
    let bag = SyntheticBag { duration_s, ..Default::default() };
    let written = if args.get(2).is_some_and(|s| s == "sqlite") { bag.write_sqlite(&path) } else { bag.write_mcap(&path) };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("synthetic_bag: {e}");
            ExitCode::FAILURE
        }
    }
}
