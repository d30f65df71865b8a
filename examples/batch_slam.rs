//! Research program (issue 17): the batch range-only SLAM of
//! `landmark_flow::localizer::smoother` on a bag, against the filter.
//!
//! Replays the bag through the node's code path with PARAMS (the filter: its final
//! landmark estimates start the batch), then solves the batch problem over the whole
//! odometry history under each pair (heading noise scale, translation noise scale) of
//! PARAMS' `odometry_error` model, and prints, per pair, the Laplace log evidence, the
//! landmark RMSE and each landmark's NEES against the ground truth. The pair with the
//! largest evidence is what a ground-truth-free choice takes.
//!
//! Usage: `cargo run --release --no-default-features --features bag --example batch_slam --
//! BAG PARAMS GROUND_TRUTH [--knot-s 10] [--scales H:T,...]` (heading:translation
//! multipliers of the model's standard deviations; default 0.01, 0.1, 1 × 1, 2)

use landmark_flow::config::node_parameters_from_yaml;
use landmark_flow::estimator::GaussianBelief;
use landmark_flow::localizer::drift::planar_pose;
use landmark_flow::localizer::smoother::{solve, LandmarkStart, OdometrySample, RangeSample, SolveConfig};
use landmark_flow::msg::cdr::CdrMessage;
use landmark_flow::msg::{OdometryMsg, RangeMsg};
use landmark_flow::node_config::LandmarkFlowNodeConfig;
use landmark_flow::replay::bag::{read_bag, BagMessage};
use landmark_flow::replay::report::GroundTruth;
use landmark_flow::replay::{run, ReplayOptions};
use nalgebra::{Matrix2, Vector2};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let positional: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).take(3).collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let [bag, params, truth] = [0, 1, 2].map(|i| PathBuf::from(positional.get(i).expect("usage: BAG PARAMS GROUND_TRUTH").as_str()));
    let knot_s: f64 = flag("--knot-s").map_or(10.0, |v| v.parse().expect("--knot-s"));
    // Pairs heading:translation (a single number c means c:c).
    let pairs: Vec<(f64, f64)> = flag("--scales").map_or_else(
        || [0.01, 0.1, 1.0].iter().flat_map(|&h| [(h, 1.0), (h, 2.0)]).collect(),
        |v| {
            v.split(',')
                .map(|p| {
                    let mut it = p.split(':').map(|s| s.parse::<f64>().expect("--scales"));
                    let h = it.next().expect("--scales");
                    (h, it.next().unwrap_or(h))
                })
                .collect()
        },
    );

    let text = std::fs::read_to_string(&params).expect("params file");
    let config: LandmarkFlowNodeConfig = node_parameters_from_yaml(&text, "landmark_flow_node").expect("params");
    let truth = GroundTruth::load(&truth).expect("ground truth");

    // The filter.
    let out = std::env::temp_dir().join(format!("batch_slam_{}", std::process::id()));
    let mut options = ReplayOptions::new(&bag, &out);
    options.config = config.clone();
    options.plots = false;
    let outcome = run(&options).expect("replay");
    let _ = std::fs::remove_dir_all(&out);
    let ids: Vec<String> = outcome.report.landmarks.iter().filter(|l| l.final_mean_m.is_some()).map(|l| l.id.clone()).collect();
    let initial: Vec<Vector2<f64>> = outcome
        .report
        .landmarks
        .iter()
        .filter_map(|l| l.final_mean_m.map(|m| Vector2::new(m[0], m[1])))
        .collect();
    let filter: Vec<GaussianBelief<2>> = outcome
        .report
        .landmarks
        .iter()
        .filter_map(|l| {
            let (m, c) = (l.final_mean_m?, l.final_cov_m2?);
            GaussianBelief::new(Vector2::new(m[0], m[1]), Matrix2::new(c[0], c[1], c[2], c[3])).ok()
        })
        .collect();
    print_row("filter (replay)", None, &ids, &filter, &truth);

    // The data.
    let index: BTreeMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let reader = read_bag(&bag).expect("bag");
    let mut odometry = Vec::new();
    let mut ranges = Vec::new();
    let mount = Vector2::new(
        config.localizer.sensor_offset_m.first().copied().unwrap_or(0.0),
        config.localizer.sensor_offset_m.get(1).copied().unwrap_or(0.0),
    );
    let odom_topic = reader.topics.iter().position(|t| t.name == "/odom").expect("/odom");
    reader
        .for_each_message(&|t| t.name == "/odom" || t.name == "/range", |m: BagMessage| {
            if m.topic == odom_topic {
                if let Ok(o) = OdometryMsg::decode(&m.data) {
                    let p = planar_pose(&o.base_pose());
                    odometry.push(OdometrySample {
                        stamp_s: o.header.stamp.secs(),
                        position: p.translation.vector,
                        heading_rad: p.rotation.angle(),
                        // The study compares the error model's noise levels.
                        pose_cov_growth: None,
                    });
                }
            } else if let Ok(r) = RangeMsg::decode(&m.data) {
                if let Some(&landmark) = index.get(r.header.frame_id.as_str()) {
                    ranges.push((r.header.stamp.secs(), landmark, r.range as f64));
                }
            }
            Ok::<(), ()>(())
        })
        .expect("read");
    odometry.sort_by(|a, b| a.stamp_s.total_cmp(&b.stamp_s));
    odometry.dedup_by(|b, a| b.stamp_s <= a.stamp_s);
    // Each range with the base's odometry pose at its stamp (linear between samples).
    let ranges: Vec<RangeSample> = ranges
        .iter()
        .filter_map(|&(stamp_s, landmark, range_m)| {
            let k = odometry.partition_point(|o| o.stamp_s <= stamp_s);
            let (a, b) = (odometry.get(k.checked_sub(1)?)?, odometry.get(k)?);
            let f = (stamp_s - a.stamp_s) / (b.stamp_s - a.stamp_s);
            let turn = (b.heading_rad - a.heading_rad + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU) - std::f64::consts::PI;
            Some(RangeSample {
                stamp_s,
                landmark,
                odom_position: a.position + (b.position - a.position) * f,
                odom_heading_rad: a.heading_rad + f * turn,
                mount_m: mount,
                range_m,
            })
        })
        .collect();

    let loc = &config.localizer;
    let calibration_prior = loc.calibration.enabled.then(|| {
        GaussianBelief::new(
            Vector2::new(loc.calibration.scale_prior, loc.calibration.offset_prior_m),
            Matrix2::from_diagonal(&Vector2::new(loc.calibration.scale_std.powi(2), loc.calibration.offset_std_m.powi(2))),
        )
        .expect("calibration prior")
    });
    let mut best: Option<(f64, String)> = None;
    for &(heading, translation) in &pairs {
        {
            let mut model = loc.odometry_error.clone();
            model.translation_std_m_per_sqrt_m *= translation;
            model.rotation_std_rad_per_sqrt_rad *= heading;
            model.rotation_std_rad_per_sqrt_m *= heading;
            model.gyro_bias_walk_rad_per_s_per_sqrt_s *= heading;
            let smoother = SolveConfig {
                knot_period_s: knot_s,
                max_knots: 256,
                range_std_m: loc.default_noise_std_m,
                huber_threshold_sigma: 4.0,
                odometry_error: model,
                calibration_prior,
                max_iterations: 50,
                growth_std_scales: (1.0, 1.0),
            };
            let started = std::time::Instant::now();
            let starts: Vec<LandmarkStart> = initial.iter().map(|&initial| LandmarkStart { initial, prior: None }).collect();
            match solve(&odometry, &ranges, &starts, &smoother, None) {
                Ok(s) => {
                    let label = format!("batch heading ×{heading} translation ×{translation}");
                    print_row(&label, Some(s.log_evidence), &ids, &s.landmarks, &truth);
                    println!(
                        "    gyro bias {:.2e} ± {:.1e} rad/s, calibration {:?}, {} iterations, {:.1} s, {:.1} % Huber",
                        s.gyro_bias.0,
                        s.gyro_bias.1.sqrt(),
                        s.calibration.map(|c| (c.mean.x, c.mean.y)),
                        s.iterations,
                        started.elapsed().as_secs_f64(),
                        100.0 * s.outlier_fraction
                    );
                    if best.as_ref().is_none_or(|(e, _)| s.log_evidence > *e) {
                        best = Some((s.log_evidence, label));
                    }
                }
                Err(e) => println!("heading ×{heading} translation ×{translation}: {e}"),
            }
        }
    }
    if let Some((_, label)) = best {
        println!("largest evidence: {label}");
    }
}

fn print_row(label: &str, evidence: Option<f64>, ids: &[String], beliefs: &[GaussianBelief<2>], truth: &GroundTruth) {
    let mut sq = 0.0;
    let mut nees = Vec::new();
    for (id, b) in ids.iter().zip(beliefs) {
        if let Some(y) = truth.landmarks.get(id) {
            let d = b.mean - y;
            sq += d.norm_squared();
            nees.push(d.dot(&(b.cov.try_inverse().unwrap_or_else(Matrix2::zeros) * d)));
        }
    }
    let rmse = (sq / nees.len().max(1) as f64).sqrt();
    let nees: Vec<String> = nees.iter().map(|v| format!("{v:.1}")).collect();
    println!(
        "{label}: {}RMSE {rmse:.3} m, NEES [{}]",
        evidence.map_or(String::new(), |e| format!("log evidence {e:.1}, ")),
        nees.join(", ")
    );
}
