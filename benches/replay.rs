//! Replay throughput on a synthetic hour of bag time: odometry at 20 Hz, ranges at
//! 10 Hz (36 000 ranges, 3 landmarks, seeded noise), default node parameters (mixture
//! estimator, the default planner policy — `sigma_reduction` since issue 16, `d_optimal`
//! before — re-planning every 2 s of bag time), writing every
//! output but the plots. Criterion reports time per replay and ranges/s; the
//! × real-time factor is printed once before measuring.
//!
//! `cargo bench --no-default-features --bench replay`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use landmark_flow::replay::synthetic::SyntheticBag;
use landmark_flow::replay::{run, ReplayOptions};
use std::time::Duration;

fn replay_hour(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("landmark_flow_replay_bench_{}", std::process::id()));
    let bag = SyntheticBag { duration_s: 3600.0, ..Default::default() };
    bag.write_mcap(&dir.join("bag")).expect("write the synthetic bag");
    let ranges = bag.range_count() as u64;
    let mut options = ReplayOptions::new(&dir.join("bag"), &dir.join("out"));
    options.plots = false;
    let first = run(&options).expect("replay");
    println!(
        "replay of {:.0} s of bag ({} ranges): reading and processing {:.3} s, {:.0} ranges/s, {:.0}x real time (opening {:.3} s)",
        first.report.bag_duration_s,
        first.report.range_messages,
        first.report.throughput.process_s,
        first.report.throughput.ranges_per_s,
        first.report.throughput.realtime_factor,
        first.report.throughput.read_s
    );
    let mut group = c.benchmark_group("replay");
    group.sample_size(10).measurement_time(Duration::from_secs(40)).throughput(Throughput::Elements(ranges));
    group.bench_function("hour_10hz_ranges_mixture", |b| b.iter(|| run(&options).expect("replay")));
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, replay_hour);
criterion_main!(benches);
