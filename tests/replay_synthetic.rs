//! The synthetic bag's odometry error (replay::synthetic): with every error zero the
//! bag is byte for byte the one the generator wrote before odometry errors existed;
//! with errors, `/odom` follows closed forms (wheel scale, gyro bias) and the
//! variances of the random-walk model, `/ground_truth/odom` is the true circle, and
//! the ranges do not change.

use landmark_flow::localizer::drift::OdometryErrorConfig;
use landmark_flow::msg::cdr::CdrMessage;
use landmark_flow::msg::{OdometryMsg, RangeMeasurementMsg};
use landmark_flow::replay::synthetic::{SyntheticBag, SyntheticOdometryError, GROUND_TRUTH_TOPIC, ODOM_TOPIC, RANGE_TOPIC};
use landmark_flow::replay::{run, ReplayOptions};
use nalgebra::Vector2;
use std::f64::consts::{FRAC_PI_2, PI};

/// FNV-1a over (bag time, topic, type, length, bytes) of every message.
fn fnv1a(messages: &[(u64, &str, &str, Vec<u8>)]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (t, topic, type_name, data) in messages {
        eat(&t.to_le_bytes());
        eat(topic.as_bytes());
        eat(type_name.as_bytes());
        eat(&(data.len() as u64).to_le_bytes());
        eat(data);
    }
    h
}

/// (x, y, yaw) of every message on `topic`.
fn poses(bag: &SyntheticBag, topic: &str) -> Vec<(f64, f64, f64)> {
    bag.messages()
        .iter()
        .filter(|m| m.1 == topic)
        .map(|m| {
            let o = OdometryMsg::decode(&m.3).unwrap();
            let q = o.pose.orientation;
            (o.pose.position[0], o.pose.position[1], 2.0 * q[2].atan2(q[3]))
        })
        .collect()
}

fn ranges(bag: &SyntheticBag) -> Vec<Vec<u8>> {
    bag.messages().into_iter().filter(|m| m.1 == RANGE_TOPIC).map(|m| m.3).collect()
}

fn wrap(a: f64) -> f64 {
    (a + PI).rem_euclid(2.0 * PI) - PI
}

fn with_error(error: SyntheticOdometryError) -> SyntheticBag {
    SyntheticBag { odometry_error: error, ..Default::default() }
}

#[test]
fn without_odometry_error_the_bag_is_the_pre_drift_generators_byte_for_byte() {
    // Hashes of `SyntheticBag::messages()` computed with the generator of commit
    // ba54010 (before odometry errors existed), not with this code.
    let default = SyntheticBag::default();
    assert!(default.odometry_error.is_zero());
    let m = default.messages();
    assert_eq!((m.len(), fnv1a(&m)), (1800, 0xf4c9_6566_2da2_4832));
    let short = SyntheticBag { duration_s: 20.0, seed: 3, ..Default::default() };
    let m = short.messages();
    assert_eq!((m.len(), fnv1a(&m)), (600, 0x8d86_a876_a1e4_2d53));
    // The odometry error's seed alone changes nothing.
    let reseeded = with_error(SyntheticOdometryError { seed: 99, ..Default::default() });
    assert_eq!(fnv1a(&reseeded.messages()), 0xf4c9_6566_2da2_4832);
    assert!(!reseeded.messages().iter().any(|m| m.1 == GROUND_TRUTH_TOPIC));
}

#[test]
fn without_odometry_error_odom_is_the_circle_exactly() {
    let bag = SyntheticBag::default();
    let odom = poses(&bag, ODOM_TOPIC);
    assert_eq!(odom.len(), 1200);
    for (k, (x, y, yaw)) in odom.iter().enumerate() {
        let t = (bag.start_s + k as f64 / bag.odom_rate_hz) - bag.start_s;
        let a = bag.angular_speed_rad_s * t;
        assert_eq!((*x, *y), (bag.radius_m * a.cos(), bag.radius_m * a.sin()), "k = {k}");
        assert!(wrap(yaw - (a + FRAC_PI_2)).abs() < 1e-12, "k = {k}");
    }
}

#[test]
fn ground_truth_is_the_circle_and_ranges_do_not_change_with_odometry_error() {
    let plain = SyntheticBag::default();
    let drifting = with_error(SyntheticOdometryError {
        gyro_bias_rad_per_s: 0.01,
        wheel_scale_error: 0.03,
        noise: OdometryErrorConfig::default(),
        ..Default::default()
    });
    assert_eq!(poses(&drifting, GROUND_TRUTH_TOPIC), poses(&plain, ODOM_TOPIC));
    assert_eq!(ranges(&drifting), ranges(&plain), "the odometry error has its own RNG stream");
    let odom = poses(&drifting, ODOM_TOPIC);
    assert_eq!(odom[0], poses(&plain, ODOM_TOPIC)[0], "dead reckoning starts at the true pose");
    let end_error = {
        let (a, b) = (odom.last().unwrap(), poses(&plain, ODOM_TOPIC).pop().unwrap());
        (a.0 - b.0).hypot(a.1 - b.1)
    };
    assert!(end_error > 1.0, "60 s of 0.01 rad/s and 3 % drift by more than a metre: {end_error}");
    // Deterministic.
    assert_eq!(fnv1a(&drifting.messages()), fnv1a(&drifting.messages()));
}

#[test]
fn wheel_scale_error_scales_the_path_about_the_start() {
    // Same turns, every step (1 + ε) longer: P_k = x_0 + (1 + ε)(x_k − x_0), same yaw.
    let eps = 0.05;
    let bag = with_error(SyntheticOdometryError { wheel_scale_error: eps, ..Default::default() });
    let (odom, truth) = (poses(&bag, ODOM_TOPIC), poses(&bag, GROUND_TRUTH_TOPIC));
    assert_eq!(odom.len(), truth.len());
    let (x0, y0) = (truth[0].0, truth[0].1);
    for (k, (o, t)) in odom.iter().zip(&truth).enumerate() {
        let want = (x0 + (1.0 + eps) * (t.0 - x0), y0 + (1.0 + eps) * (t.1 - y0));
        assert!((o.0 - want.0).hypot(o.1 - want.1) < 1e-9, "k = {k}: {o:?} vs {want:?}");
        assert!(wrap(o.2 - t.2).abs() < 1e-9, "k = {k}");
    }
}

#[test]
fn gyro_bias_turns_the_heading_linearly_and_the_path_with_it() {
    // Heading error b·t; each world-frame step is the true one rotated by the heading
    // error at its start: p_{k+1} = p_k + R(b·t_k)(x_{k+1} − x_k).
    let b = 0.01;
    let bag = with_error(SyntheticOdometryError { gyro_bias_rad_per_s: b, ..Default::default() });
    let (odom, truth) = (poses(&bag, ODOM_TOPIC), poses(&bag, GROUND_TRUTH_TOPIC));
    let dt = 1.0 / bag.odom_rate_hz;
    let mut p = Vector2::new(truth[0].0, truth[0].1);
    for k in 0..odom.len() {
        let t = k as f64 * dt;
        assert!(wrap(odom[k].2 - truth[k].2 - b * t).abs() < 1e-9, "k = {k}");
        assert!((Vector2::new(odom[k].0, odom[k].1) - p).norm() < 1e-9, "k = {k}");
        if k + 1 < odom.len() {
            let step = Vector2::new(truth[k + 1].0 - truth[k].0, truth[k + 1].1 - truth[k].1);
            p += nalgebra::Rotation2::new(b * t) * step;
        }
    }
}

#[test]
fn random_walk_noise_has_the_models_variances() {
    // Over R bags with different odometry seeds: the odometry's path length minus the
    // true one has variance σ_t²·L (heading noise does not change lengths), and its
    // final heading error Σ_k (b_k·dt − n_θ,k) has variance
    // σ_r²·Θ + σ_rm²·L + σ_b²·(N·dt)² + q_b²·dt³·Σ_{j<N} (N−1−j)², N steps of
    // length Δs and turn Δθ (L = N·Δs, Θ = N·|Δθ|), bias walk n_b after each step.
    let noise = OdometryErrorConfig {
        translation_std_m_per_sqrt_m: 0.05,
        rotation_std_rad_per_sqrt_rad: 0.02,
        rotation_std_rad_per_sqrt_m: 0.01,
        gyro_bias_walk_rad_per_s_per_sqrt_s: 1e-3,
        gyro_bias_std_rad_per_s: 2e-3,
        ..OdometryErrorConfig::default()
    };
    let runs = 300;
    let (mut lengths, mut headings) = (Vec::new(), Vec::new());
    let mut geometry = None;
    for seed in 0..runs {
        let bag = SyntheticBag {
            duration_s: 30.0,
            noise_std_m: 0.0,
            odometry_error: SyntheticOdometryError { noise: noise.clone(), seed, ..Default::default() },
            ..Default::default()
        };
        let (odom, truth) = (poses(&bag, ODOM_TOPIC), poses(&bag, GROUND_TRUTH_TOPIC));
        let length = |p: &[(f64, f64, f64)]| p.windows(2).map(|w| (w[1].0 - w[0].0).hypot(w[1].1 - w[0].1)).sum::<f64>();
        lengths.push(length(&odom) - length(&truth));
        headings.push(wrap(odom.last().unwrap().2 - truth.last().unwrap().2));
        geometry.get_or_insert((truth.len() - 1, length(&truth), 1.0 / bag.odom_rate_hz, bag.angular_speed_rad_s));
    }
    let (n, l, dt, omega) = geometry.unwrap();
    let theta = omega * n as f64 * dt;
    let walk: f64 = (0..n).map(|j| ((n - 1 - j) as f64).powi(2)).sum();
    let want_length = noise.translation_std_m_per_sqrt_m.powi(2) * l;
    let want_heading = noise.rotation_std_rad_per_sqrt_rad.powi(2) * theta
        + noise.rotation_std_rad_per_sqrt_m.powi(2) * l
        + (noise.gyro_bias_std_rad_per_s * n as f64 * dt).powi(2)
        + noise.gyro_bias_walk_rad_per_s_per_sqrt_s.powi(2) * dt.powi(3) * walk;
    let var = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        (m, v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64)
    };
    // A sample variance of R Gaussian draws has relative standard error √(2/(R−1)),
    // 8.2 % for R = 300: accept 4 of them; the means within 4 standard errors of 0.
    let tol = 4.0 * (2.0 / (runs as f64 - 1.0)).sqrt();
    for (name, v, want) in [("length", &lengths, want_length), ("heading", &headings, want_heading)] {
        let (mean, got) = var(v);
        assert!((got / want - 1.0).abs() < tol, "{name}: variance {got} vs {want}");
        assert!(mean.abs() < 4.0 * (want / runs as f64).sqrt(), "{name}: mean {mean}");
    }
}

#[test]
fn the_replayer_reads_a_drifting_bag_in_both_formats() {
    let dir = std::env::temp_dir().join(format!("landmark_flow_synthetic_drift_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bag = SyntheticBag {
        duration_s: 10.0,
        odometry_error: SyntheticOdometryError { gyro_bias_rad_per_s: 0.005, wheel_scale_error: 0.02, ..Default::default() },
        ..Default::default()
    };
    bag.write_mcap(&dir.join("bag_mcap")).unwrap();
    bag.write_sqlite(&dir.join("bag.db3")).unwrap();
    std::fs::write(dir.join("truth.yaml"), bag.ground_truth_yaml()).unwrap();
    for (input, out) in [("bag_mcap", "out_mcap"), ("bag.db3", "out_db3")] {
        let mut o = ReplayOptions::new(&dir.join(input), &dir.join(out));
        o.plots = false;
        o.ground_truth = Some(dir.join("truth.yaml"));
        let r = run(&o).unwrap();
        assert!(r.bag_error.is_none());
        assert_eq!(r.report.ranges_fused as usize, bag.range_count(), "{input}");
    }
    let csv = |d: &str| std::fs::read_to_string(dir.join(d).join("updates.csv")).unwrap();
    assert_eq!(csv("out_mcap"), csv("out_db3"));
    let range = RangeMeasurementMsg::decode(&ranges(&bag)[0]).unwrap();
    assert_eq!(range.landmark_id, "a");
}

/// Landmarks 2.5, 0.5 and 1.5 m above the robot's circle, replayed with
/// `localizer.dimension: 3` (height prior 1.5 ± 1 m): the ground truth's z reaches the
/// report, each vertical error is |μ_z − z| of the final belief against the bag's own
/// heights and lies within 3σ_z, the vertical RMSE is theirs, the 3-D NEES is there.
#[test]
fn a_3d_bag_reports_vertical_errors_against_the_true_heights() {
    use landmark_flow::localizer::HeightPriorConfig;
    let dir = std::env::temp_dir().join(format!("landmark_flow_synthetic_3d_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bag = SyntheticBag { landmark_heights_m: vec![2.5, 0.5, 1.5], ..Default::default() };
    bag.write_mcap(&dir.join("bag_mcap")).unwrap();
    std::fs::write(dir.join("truth.yaml"), bag.ground_truth_yaml()).unwrap();
    let mut o = ReplayOptions::new(&dir.join("bag_mcap"), &dir.join("out"));
    o.plots = false;
    o.ground_truth = Some(dir.join("truth.yaml"));
    o.config.localizer.dimension = 3;
    o.config.localizer.height_prior = HeightPriorConfig { mean_m: 1.5, std_m: 1.0 };
    let report = run(&o).unwrap().report;
    assert_eq!(report.ranges_fused as usize, bag.range_count());
    let mut squares = Vec::new();
    for (i, (id, _)) in bag.landmarks.iter().enumerate() {
        let l = report.landmarks.iter().find(|l| &l.id == id).expect("every landmark is reported");
        let truth = bag.landmark_height_m(i);
        assert_eq!(l.truth_height_m, Some(truth), "{id}");
        let [z, sd] = l.final_height_m.expect("a 3-D belief");
        let error = l.final_vertical_error_m.expect("a true height");
        assert!((error - (z - truth).abs()).abs() < 1e-12, "{id}: {error} vs |{z} − {truth}|");
        assert!(error < 3.0 * sd, "{id}: height {z} ± {sd}, true {truth}");
        assert!(l.final_nees3.is_some_and(f64::is_finite) && l.anees3.is_some_and(f64::is_finite), "{id}: {l:?}");
        squares.push(error * error);
    }
    let rmse = (squares.iter().sum::<f64>() / squares.len() as f64).sqrt();
    assert!((report.final_vertical_rmse_m.unwrap() - rmse).abs() < 1e-12);
    let md = std::fs::read_to_string(dir.join("out").join("report.md")).unwrap();
    assert!(md.contains("Vertical RMSE") && md.contains("3-D ANEES"), "{md}");
}
