//! Per-range latency of `NodeCore::handle` with the planner inline and on the planning
//! thread (issue 14 "planner off the hot path", issue 16 item 5).
//!
//! The node's default configuration (mixture estimator, `sigma_reduction` planner,
//! heatmap and markers on) with L = 10 and 100 landmarks, priors 0.7 m off their true
//! positions on a 20 m grid, re-planning every 0.5 s (`goal.replan_period_s`). Paced in
//! real time like the live node: every 10 ms one odometry message (a 5 m circle) then
//! one range (round robin over the landmarks, seeded noise) are handed to the core with
//! the wall clock as its clock, for `SECONDS` s per setting. The latency of a range is
//! the time from handing over that odometry + range pair to the return of the range's
//! outputs, as a range arriving with odometry waits for both in the node's loop; the
//! re-plan timer fires inside the odometry's call. Half a period after each pair the
//! core gets an `Input::Tick`, as the node's loop gives it every ≤ 5 ms. Reported: p50,
//! p99, max over the pairs; the goals emitted; and for the planning thread the delay
//! from a goal's stamp (the timer's firing time) to its emission (the plan's time
//! rounded up to the next Tick or pair).
//!
//! Settings: (10 landmarks, the default 41 × 41 candidates), (100, 41 × 41), (100, a
//! finer 81 × 81 grid: `planner.resolution_m` 0.05, ~4× the plan's work).
//! Run: `cargo bench --no-default-features --bench plan_latency` (~1 min).

use landmark_flow::msg::{Header, OdometryMsg, Pose, RangeMeasurementMsg, Stamp};
use landmark_flow::node_config::LandmarkFlowNodeConfig;
use landmark_flow::node_core::{Input, NodeCore, Output};
use nalgebra::Vector2;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::time::{Duration, Instant};

const SECONDS: f64 = 10.0;
const PERIOD_S: f64 = 0.01;

fn landmark(i: usize, count: usize) -> Vector2<f64> {
    let side = (count as f64).sqrt().ceil() as usize;
    let half = (side as f64 - 1.0) * 10.0;
    Vector2::new((i % side) as f64 * 20.0 - half, (i / side) as f64 * 20.0 - half)
}

fn config(count: usize, resolution_m: f64) -> LandmarkFlowNodeConfig {
    let mut c = LandmarkFlowNodeConfig::default();
    c.planner.resolution_m = resolution_m;
    c.localizer.priors.ids = (0..count).map(|i| format!("l{i}")).collect();
    c.localizer.priors.means_m = (0..count).flat_map(|i| { let p = landmark(i, count); [p.x + 0.5, p.y - 0.5] }).collect();
    c.localizer.priors.covs_m2 = (0..count).flat_map(|_| [1.0, 0.0, 0.0, 1.0]).collect();
    c.localizer.max_range_m = 1000.0;
    c.goal.replan_period_s = 0.5;
    c.planner.workspace.min_x_m = -200.0;
    c.planner.workspace.max_x_m = 200.0;
    c.planner.workspace.min_y_m = -200.0;
    c.planner.workspace.max_y_m = 200.0;
    c.validate().expect("config");
    c
}

fn robot(t: f64) -> Vector2<f64> {
    let a = 0.2 * t;
    Vector2::new(5.0 * a.cos(), 5.0 * a.sin())
}

struct Stats {
    latencies_us: Vec<f64>,
    plans: usize,
    goal_delays_ms: Vec<f64>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((p * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1)]
}

fn run(count: usize, resolution_m: f64, background: bool) -> Stats {
    let mut core = NodeCore::new(&config(count, resolution_m)).expect("core");
    if background {
        core = core.with_background_planning();
    }
    let mut rng = StdRng::seed_from_u64(16);
    let mut stats = Stats { latencies_us: Vec::new(), plans: 0, goal_delays_ms: Vec::new() };
    let start = Instant::now();
    let record = |outputs: &[Output], now_s: f64, stats: &mut Stats| {
        for o in outputs {
            if let Output::Goal(g) = o {
                stats.plans += 1;
                stats.goal_delays_ms.push(1e3 * (now_s - g.msg.header.stamp.secs()));
            }
        }
    };
    let steps = (SECONDS / PERIOD_S) as usize;
    for k in 0..steps {
        // Pace: the k-th pair at k · 10 ms of wall time.
        let due = Duration::from_secs_f64(k as f64 * PERIOD_S);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        let t0 = Instant::now();
        let now_s = 100.0 + start.elapsed().as_secs_f64();
        let x = robot(now_s);
        let stamp = Stamp::from_secs(now_s);
        let odom = Input::Odometry(OdometryMsg {
            header: Header { stamp, frame_id: "odom".into() },
            child_frame_id: "base_link".into(),
            pose: Pose { position: [x.x, x.y, 0.0], orientation: [0.0, 0.0, 0.0, 1.0] },
            pose_covariance: [0.0; 36],
        });
        let i = k % count;
        let z = (landmark(i, count) - x).norm() + 0.3 * rng.random_range(-1.0..1.0);
        let range = Input::RangeMeasurement {
            topic: "range".into(),
            msg: RangeMeasurementMsg { header: Header { stamp, frame_id: String::new() }, landmark_id: format!("l{i}"), range: z, variance: 0.09 },
        };
        let a = core.handle(now_s, odom);
        let b = core.handle(now_s, range);
        let latency = t0.elapsed();
        assert!(b.iter().any(|o| matches!(o, Output::Range(u) if u.result.is_ok())), "range {k} not fused");
        stats.latencies_us.push(1e6 * latency.as_secs_f64());
        record(&a, now_s, &mut stats);
        record(&b, now_s, &mut stats);
        // Half a period later the loop's Tick (the node ticks every ≤ 5 ms even when no
        // message arrives): emits plans finished since.
        let due = Duration::from_secs_f64((k as f64 + 0.5) * PERIOD_S);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        let now_s = 100.0 + start.elapsed().as_secs_f64();
        let c = core.handle(now_s, Input::Tick);
        record(&c, now_s, &mut stats);
    }
    stats.latencies_us.sort_by(f64::total_cmp);
    stats.goal_delays_ms.sort_by(f64::total_cmp);
    stats
}

fn main() {
    println!("plan_latency: {SECONDS} s per setting, one odometry + one range every {} ms, re-plan every 0.5 s", PERIOD_S * 1e3);
    println!(
        "{:>9} {:>12} {:>10} {:>6} {:>9} {:>9} {:>9} {:>6} {:>16}",
        "landmarks", "resolution_m", "planning", "ranges", "p50_us", "p99_us", "max_us", "goals", "goal_delay_p50_ms"
    );
    // The default candidate grid (41 x 41), and a finer one (81 x 81: ~4x the plan's work).
    for (count, resolution_m) in [(10, 0.1), (100, 0.1), (100, 0.05)] {
        for background in [false, true] {
            let s = run(count, resolution_m, background);
            let l = &s.latencies_us;
            let delay = if background { format!("{:.2}", percentile(&s.goal_delays_ms, 0.5)) } else { "0 (same call)".into() };
            println!(
                "{:>9} {:>12} {:>10} {:>6} {:>9.0} {:>9.0} {:>9.0} {:>6} {:>16}",
                count,
                resolution_m,
                if background { "background" } else { "inline" },
                l.len(),
                percentile(l, 0.5),
                percentile(l, 0.99),
                l.last().copied().unwrap_or(f64::NAN),
                s.plans,
                delay
            );
        }
    }
}
