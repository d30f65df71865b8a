//! `landmark_flow_replay`: replays a rosbag2 bag through landmark_flow_node's core code
//! as fast as possible and writes an output bag, CSV tables, a report and plots.
//!
//! Needs no ROS installation (builds with `--no-default-features`).

use landmark_flow::config::node_parameters_from_yaml;
use landmark_flow::node_config::LandmarkFlowNodeConfig;
use landmark_flow::replay::{run, ReplayError, ReplayOptions, DEFAULT_ODOM_TOPIC, DEFAULT_RANGE_TOPICS};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: landmark_flow_replay BAG [options]

Replays BAG (a rosbag2 directory with metadata.yaml and MCAP or sqlite3 storage, or a
single .mcap or .db3 file) through landmark_flow_node's localizer and goal scheduler,
in bag-time order, as fast as possible, and writes into --out:
  replay_bag/            rosbag2 (MCAP): /landmark_beliefs, /landmarks/<id>/pose, /goal_pose
  updates.csv goals.csv  every fused or rejected range; every goal
  report.md report.yaml  per-landmark error, tr(Sigma), NEES, time to 1 m / 0.5 m, rejections
  trajectory.png error_vs_time.png

options:
  --out DIR              output directory (default: replay_out)
  --params FILE          the node's parameters file (section landmark_flow_node or /**,
                         ros__parameters), as given to the node with --params-file;
                         default: the node's defaults
  --ground-truth FILE    YAML with `beacons:` (or `landmarks:`) id -> {x, y} in metres
  --true-path BAG        a bag with the robot's true path (nav_msgs/Odometry) to score
                         robot_pose against (localizer.odometry: drifting); default:
                         the replayed bag's own --true-path-topic, if it has one
  --true-path-topic TOPIC  topic of the true path (default: /ground_truth/odom)
  --odom-topic TOPIC     nav_msgs/Odometry topic; repeatable (default: /odom)
  --range-topic TOPIC    sensor_msgs/Range or landmark_flow/RangeMeasurement topic (type
                         taken from the bag); repeatable (default: /range and /range_raw)
  --duration SECONDS     replay only the first SECONDS of the bag (a slice)
  --max-record-mib MIB   refuse MCAP records and chunks larger than this (declared
                         uncompressed size), as damage at their offset (default 256)
  --no-plots             skip the PNGs (they need fonts-dejavu-core or LANDMARK_FLOW_FONT)
  -h, --help             this text

exit status: 0 done; 1 the bag is damaged (everything before the damage was replayed
and written), nothing could be replayed, or no range was fused; 2 bad arguments or
parameters.";

/// One line to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn print_line(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("landmark_flow_replay: {msg}\n\n{USAGE}");
    ExitCode::from(2)
}

fn load_params(path: &PathBuf) -> Result<LandmarkFlowNodeConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut last = String::new();
    for section in ["landmark_flow_node", "/landmark_flow_node", "/**"] {
        match node_parameters_from_yaml::<LandmarkFlowNodeConfig>(&text, section) {
            Ok(c) => {
                c.validate().map_err(|e| format!("{}: {e}", path.display()))?;
                return Ok(c);
            }
            Err(e) if e.to_string().contains("ros__parameters:` section") => last = e.to_string(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    Err(format!("{}: {last}", path.display()))
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut bag: Option<PathBuf> = None;
    let mut out = PathBuf::from("replay_out");
    let mut params: Option<PathBuf> = None;
    let mut truth: Option<PathBuf> = None;
    let mut true_path: Option<PathBuf> = None;
    let mut true_path_topic: Option<String> = None;
    let mut odom_topics = Vec::new();
    let mut range_topics = Vec::new();
    let mut plots = true;
    let mut duration: Option<f64> = None;
    let mut max_record_mib: Option<u64> = None;
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let result = match a.as_str() {
            "-h" | "--help" => {
                print_line(USAGE);
                return ExitCode::SUCCESS;
            }
            "--out" => value("--out").map(|v| out = v.into()),
            "--params" => value("--params").map(|v| params = Some(v.into())),
            "--ground-truth" => value("--ground-truth").map(|v| truth = Some(v.into())),
            "--true-path" => value("--true-path").map(|v| true_path = Some(v.into())),
            "--true-path-topic" => value("--true-path-topic").map(|v| true_path_topic = Some(v)),
            "--duration" => value("--duration").and_then(|v| match v.parse::<f64>() {
                Ok(d) if d.is_finite() && d > 0.0 => {
                    duration = Some(d);
                    Ok(())
                }
                _ => Err(format!("--duration: `{v}` is not a positive number of seconds")),
            }),
            "--max-record-mib" => value("--max-record-mib").and_then(|v| match v.parse::<u64>() {
                Ok(m) if (1..=65536).contains(&m) => {
                    max_record_mib = Some(m);
                    Ok(())
                }
                _ => Err(format!("--max-record-mib: `{v}` is not a whole number of MiB in 1..=65536")),
            }),
            "--odom-topic" => value("--odom-topic").map(|v| odom_topics.push(v)),
            "--range-topic" => value("--range-topic").map(|v| range_topics.push(v)),
            "--no-plots" => {
                plots = false;
                Ok(())
            }
            s if s.starts_with('-') => Err(format!("unknown option {s}")),
            s if bag.is_none() => {
                bag = Some(s.into());
                Ok(())
            }
            s => Err(format!("unexpected argument {s}")),
        };
        if let Err(e) = result {
            return usage_error(&e);
        }
    }
    let Some(bag) = bag else { return usage_error("no BAG given") };
    let mut options = ReplayOptions::new(&bag, &out);
    if let Some(p) = &params {
        match load_params(p) {
            Ok(c) => {
                options.config = c;
                options.params_source = format!("`{}`", p.display());
            }
            Err(e) => {
                eprintln!("landmark_flow_replay: error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    options.odom_topics = if odom_topics.is_empty() { vec![DEFAULT_ODOM_TOPIC.to_string()] } else { odom_topics };
    options.range_topics =
        if range_topics.is_empty() { DEFAULT_RANGE_TOPICS.iter().map(|s| s.to_string()).collect() } else { range_topics };
    options.ground_truth = truth;
    options.true_path = true_path;
    if let Some(topic) = true_path_topic {
        options.true_path_topic = landmark_flow::replay::absolute_topic(&topic);
    }
    options.duration_s = duration;
    if let Some(m) = max_record_mib {
        options.max_record_bytes = m << 20;
    }
    options.plots = plots;

    match run(&options) {
        Ok(outcome) => {
            for w in &outcome.warnings {
                eprintln!("landmark_flow_replay: warning: {w}");
            }
            let r = &outcome.report;
            print_line(&format!(
                "replayed {} odometry + {} range messages ({:.1} s of bag) in {:.3} s: {:.0} ranges/s, {:.0}x real time; {} fused, {} rejected",
                r.odometry_messages,
                r.range_messages,
                r.bag_duration_s,
                r.throughput.process_s,
                r.throughput.ranges_per_s,
                r.throughput.realtime_factor,
                r.ranges_fused,
                r.rejected_by_reason.values().sum::<u64>()
            ));
            for l in &r.landmarks {
                let err = l.final_error_m.map(|e| format!(", error {e:.3} m")).unwrap_or_default();
                let nees = l.anees.map(|e| format!(", ANEES {e:.2}")).unwrap_or_default();
                print_line(&format!("  {}: {} fused, tr(Σ) {:.3} m²{err}{nees}", l.id, l.fused, l.final_trace_m2.unwrap_or(f64::NAN)));
            }
            print_line(&format!("wrote {}", options.out_dir.display()));
            if let Some(e) = outcome.bag_error {
                eprintln!(
                    "landmark_flow_replay: error: {e}\n  everything before it was replayed and written to {}",
                    options.out_dir.display()
                );
                return ExitCode::from(1);
            }
            if r.range_messages > 0 && r.ranges_fused == 0 {
                eprintln!(
                    "landmark_flow_replay: error: none of the {} ranges was fused (rejected by reason: {:?}; {} waiting for odometry at the end)",
                    r.range_messages, r.rejected_by_reason, r.ranges_waiting_at_end
                );
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e @ ReplayError::Config(_)) => {
            eprintln!("landmark_flow_replay: error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("landmark_flow_replay: error: {e}");
            ExitCode::from(1)
        }
    }
}
