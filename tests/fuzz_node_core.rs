//! Fuzz test of the node core (issue 12, "Hostile input"): seeded random message
//! streams — valid, invalid and adversarial, interleaved — fed to [`NodeCore::handle`]
//! as the node and the replayer feed it, ≥ 10⁵ messages over the two odometry modes.
//!
//! The generator is its own reference: every message is built with a known fault (or
//! none), and a small model of the documented check order (module doc of
//! `landmark_flow::localizer`: stamp, range, sensor limits, variance, frame, landmark,
//! order/duplicate, odometry coverage) and of the odometry gate gives the reason each
//! bad message must be rejected with. The model's state (which landmarks exist, which
//! range of each was fused last, the newest accepted odometry) is updated from what the
//! generator sent and from the fused/not-fused outcome of valid ranges only (a valid
//! range may legitimately be fused, gated or refused by the estimator; that outcome is
//! observed, never the reason of a bad message).
//!
//! Asserted, for every message:
//! - no panic;
//! - a bad message is rejected with exactly the model's reason; a valid one is fused,
//!   waits, or is rejected only by `innovation_gate` or `estimator_error`;
//! - every published number is finite, every covariance symmetric and PSD (beliefs and
//!   poses SPD), every stamp a valid `builtin_interfaces/Time` ≥ 0;
//! - the rejection counters equal the model's counts, reason by reason (checked at each
//!   reset, which zeroes them, and at the end);
//! - **gate bound**: a converged landmark (tracking, one Gaussian, √λmax(Σ) ≤ 0.5 m,
//!   ≥ 5 ranges fused) is moved by one fused range by at most the innovation gate k in
//!   the Mahalanobis metric of its belief before the update:
//!   √(Δμᵀ Σ⁻¹ Δμ) ≤ k. Derivation (EKF, the estimator used here): Δμ = ΣHᵀν/S with
//!   S = HΣHᵀ + σ², so Δμᵀ Σ⁻¹ Δμ = ν² HΣHᵀ/S² ≤ ν²/S ≤ k², the last step being the gate
//!   |ν|/√S ≤ k. With drifting odometry the update is on the joint state (landmarks,
//!   odometry error) and a landmark's displacement is a sub-vector of the joint one, whose
//!   Mahalanobis length in the marginal metric is at most the joint one's (≤ k), so the
//!   same bound holds for every landmark, the ranged one and those correlated with it;
//!   there the joint state is a mixture over odometry noise scales (gated on the
//!   mixture's moments), so the bound is checked with a stated 25 % margin.
//!
//! Size: `exact` 4 seeds × 50 000 messages, `drifting` 2 × 25 000 (250 000 in all; about
//! 6 s in release on two cores). Scale with `LANDMARK_FLOW_FUZZ_SCALE` (a factor on the
//! counts) and pick a seed with `LANDMARK_FLOW_FUZZ_SEED` for a longer search.
//!
//! Found so far (fixed, each with its own regression test): a quaternion scaled by
//! 1e-200 normalised to NaN and by 1e200 to the zero quaternion
//! (`msg::convert::pose_from_position_quaternion`); with drifting odometry, a pose
//! covariance of 1e300 m² was taken as a step's noise, which made every later range an
//! `estimator_error` and then panicked on a non-PSD block (`localizer`, `slam`).

use landmark_flow::estimator::Method;
use landmark_flow::localizer::{OdometryMode, UnknownLandmarkPolicy};
use landmark_flow::msg::{Header, OdometryMsg, Pose, RangeMeasurementMsg, RangeMsg, Stamp};
use landmark_flow::node_config::LandmarkFlowNodeConfig;
use landmark_flow::node_core::{Input, NodeCore, Output};
use landmark_flow::localizer::TrackStatus;
use nalgebra::{Matrix2, SymmetricEigen, Vector2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};

const ODOM_FRAME: &str = "odom";
const SENSOR_FRAME: &str = "uwb";
const T0_S: f64 = 1000.0;
const DT_S: f64 = 0.1;
/// Robot path: a circle of this radius about the origin at this angular speed.
const PATH_RADIUS_M: f64 = 5.0;
const PATH_RATE_RAD_S: f64 = 0.2;
const SENSOR_OFFSET_M: f64 = 0.2;
const NOISE_STD_M: f64 = 0.1;
const GATE_SIGMA: f64 = 4.0;
const MAX_RANGE_M: f64 = 200.0;
const MAX_LANDMARKS: u32 = 24;
const TRUE_LANDMARKS: [(f64, f64); 4] = [(8.0, 1.0), (-1.0, 8.5), (-7.5, -2.0), (2.0, -8.0)];

fn prior_ids() -> Vec<String> {
    (0..TRUE_LANDMARKS.len()).map(|i| format!("L{i}")).collect()
}

/// The configuration of one run: four landmarks with priors (σ 1 m, mean 0.8 m off),
/// the EKF (so the gate bound above is exact), an innovation gate of 4σ, frames set (so
/// a wrong frame is a determined rejection), a small landmark cap.
fn config(mode: OdometryMode) -> LandmarkFlowNodeConfig {
    let mut c = LandmarkFlowNodeConfig::default();
    let l = &mut c.localizer;
    l.odom_frame_id = ODOM_FRAME.into();
    l.sensor_frame_id = SENSOR_FRAME.into();
    l.sensor_offset_m = vec![SENSOR_OFFSET_M, 0.0, 0.0];
    l.default_noise_std_m = 0.3;
    l.max_range_m = MAX_RANGE_M;
    l.innovation_gate_sigma = GATE_SIGMA;
    l.max_landmarks = MAX_LANDMARKS;
    l.estimator.method = Method::Ekf;
    l.odometry = mode;
    l.priors.ids = prior_ids();
    for (x, y) in TRUE_LANDMARKS {
        l.priors.means_m.extend([x + 0.8, y - 0.6]);
        l.priors.covs_m2.extend([1.0, 0.0, 0.0, 1.0]);
    }
    // Drifting: new ids are refused (`unknown_landmark`); exact: they start from the
    // default prior, up to the cap.
    l.unknown_landmarks = match mode {
        OdometryMode::Exact => UnknownLandmarkPolicy::DefaultPrior,
        OdometryMode::Drifting => UnknownLandmarkPolicy::Reject,
    };
    c.goal.replan_period_s = 5.0;
    c.publish.markers = true;
    c.publish.heatmap = true;
    c.publish.diagnostics_period_s = 1.0;
    c
}

/// The true (= odometry) base pose at `t`: position and heading.
fn base_pose(t: f64) -> (Vector2<f64>, f64) {
    let a = PATH_RATE_RAD_S * (t - T0_S);
    (Vector2::new(PATH_RADIUS_M * a.cos(), PATH_RADIUS_M * a.sin()), a + std::f64::consts::FRAC_PI_2)
}

fn sensor_position(t: f64) -> Vector2<f64> {
    let (p, yaw) = base_pose(t);
    p + SENSOR_OFFSET_M * Vector2::new(yaw.cos(), yaw.sin())
}

fn odom_msg(stamp: Stamp, frame: &str, position: [f64; 3], orientation: [f64; 4], cov: [f64; 36]) -> Input {
    Input::Odometry(OdometryMsg {
        header: Header { stamp, frame_id: frame.into() },
        child_frame_id: "base_link".into(),
        pose: Pose { position, orientation },
        pose_covariance: cov,
    })
}

fn yaw_quaternion(yaw: f64) -> [f64; 4] {
    [0.0, 0.0, (0.5 * yaw).sin(), (0.5 * yaw).cos()]
}

fn valid_odom(t: f64) -> Input {
    let (p, yaw) = base_pose(t);
    odom_msg(Stamp::from_secs(t), ODOM_FRAME, [p.x, p.y, 0.0], yaw_quaternion(yaw), [0.0; 36])
}

fn range_msg(stamp: Stamp, frame: &str, id: &str, range: f64, variance: f64) -> Input {
    Input::RangeMeasurement {
        topic: "range".into(),
        msg: RangeMeasurementMsg { header: Header { stamp, frame_id: frame.into() }, landmark_id: id.into(), range, variance },
    }
}

fn raw_range(stamp: Stamp, id: &str, range: f32, min_range: f32, max_range: f32, fov: f32) -> Input {
    Input::Range {
        topic: "range_raw".into(),
        msg: RangeMsg {
            header: Header { stamp, frame_id: id.into() },
            radiation_type: 2,
            field_of_view: fov,
            min_range,
            max_range,
            range,
            variance: 0.0,
        },
    }
}

/// What the model expects of a message.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    /// Rejected with this reason, now.
    Reject(&'static str),
    /// A valid range: fused, waiting, or rejected by the gate or the estimator only.
    ValidRange,
    /// A valid odometry message: accepted (with drifting odometry the error model may
    /// refuse it: `estimator_error`).
    ValidOdometry,
    Reset,
    Tick,
}

/// Reasons a valid message may get (its outcome is observed, not predicted).
const UNDETERMINED: [&str; 2] = ["innovation_gate", "estimator_error"];

/// The reference: what the core must know, from what was sent and which valid ranges
/// were fused.
struct Model {
    mode: OdometryMode,
    /// Landmark ids the core holds (priors, and new ids started from the default prior).
    tracks: BTreeSet<String>,
    /// The last fused range of each landmark: (stamp s, range m).
    last_fused: BTreeMap<String, (f64, f64)>,
    /// A valid range of a landmark must be stamped after this (its previous valid one).
    min_stamp: BTreeMap<String, f64>,
    /// Newest accepted odometry stamp, s.
    newest_odom: Option<f64>,
    /// Consecutive rejected odometry jumps (the core accepts a run of
    /// `odometry_gate.accept_after` consistent ones as a new frame; the generator stays
    /// well below it).
    jump_run: u32,
    expected: BTreeMap<&'static str, u64>,
    observed_undetermined: BTreeMap<&'static str, u64>,
    next_new_id: u64,
}

impl Model {
    fn new(mode: OdometryMode) -> Self {
        let mut m = Self {
            mode,
            tracks: BTreeSet::new(),
            last_fused: BTreeMap::new(),
            min_stamp: BTreeMap::new(),
            newest_odom: None,
            jump_run: 0,
            expected: BTreeMap::new(),
            observed_undetermined: BTreeMap::new(),
            next_new_id: 0,
        };
        m.reset();
        m
    }

    fn reset(&mut self) {
        self.tracks = prior_ids().into_iter().collect();
        self.last_fused.clear();
        self.newest_odom = None;
        self.jump_run = 0;
        self.expected.clear();
        self.observed_undetermined.clear();
        // Stamps keep increasing across a reset (the clock does).
    }

    /// The reason the documented check order gives a range with these fields, or
    /// `None` when it passes every determined check (then fused, waiting, gated or
    /// refused by the estimator). Applies the side effect the core has at check 5: a new
    /// valid id under `default_prior` becomes a landmark even if a later check rejects
    /// the range.
    fn range_reason(&mut self, stamp_s: f64, range_m: f64, limits: Option<(f64, f64)>, variance: f64, frame: &str, id: &str) -> Option<&'static str> {
        if !(stamp_s.is_finite() && stamp_s > 0.0) {
            return Some("bad_stamp");
        }
        if !range_m.is_finite() {
            return Some("non_finite_range");
        }
        if range_m < 0.0 {
            return Some("negative_range");
        }
        if range_m > MAX_RANGE_M {
            return Some("beyond_max_range");
        }
        if let Some((lo, hi)) = limits {
            if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                return Some("bad_sensor_limits");
            }
            if range_m < lo || range_m > hi {
                return Some("outside_sensor_limits");
            }
        }
        if !(variance.is_finite() && variance >= 0.0) {
            return Some("bad_variance");
        }
        if frame != SENSOR_FRAME {
            return Some("wrong_frame");
        }
        if !self.tracks.contains(id) {
            if self.mode == OdometryMode::Drifting {
                return Some("unknown_landmark");
            }
            if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
                return Some("bad_landmark_id");
            }
            if self.tracks.len() >= MAX_LANDMARKS as usize {
                return Some("landmark_cap");
            }
            self.tracks.insert(id.to_string());
        }
        let last = self.last_fused.get(id).copied();
        if let Some((last_s, last_r)) = last {
            if stamp_s < last_s {
                return Some("stamp_backwards");
            }
            if stamp_s == last_s && range_m == last_r {
                return Some("duplicate");
            }
        }
        let newest = self.newest_odom.expect("the generator sends ranges after odometry");
        if stamp_s > newest + 1.0 {
            return Some("newer_than_odometry");
        }
        // The generator's old stamps are hundreds of seconds before the buffer (10 s).
        if stamp_s < newest - 100.0 {
            return Some("older_than_odometry");
        }
        None
    }
}

/// A stamp from seconds, rounded to the nanosecond (the raw-field stamps are built inline).
fn stamp(s: f64) -> Stamp {
    Stamp::from_secs(s)
}

fn new_id(model: &mut Model) -> String {
    model.next_new_id += 1;
    format!("n{}", model.next_new_id)
}

/// One message of kind `k` (0..100) at clock `t`, built against the model's current
/// state, with its expectation. Returns `None` when the kind does not apply now.
fn message(rng: &mut StdRng, model: &mut Model, t: f64, k: u32) -> Option<(Input, Expect)> {
    let ids = prior_ids();
    let id = ids[rng.random_range(0..ids.len())].clone();
    let newest = model.newest_odom?;
    let truth = |id: &str, s: f64| -> f64 {
        let i: usize = id[1..].parse().unwrap_or(0) % TRUE_LANDMARKS.len();
        let (x, y) = TRUE_LANDMARKS[i];
        (Vector2::new(x, y) - sensor_position(s)).norm()
    };
    // A stamp for a valid range of `id` (after its previous one, covered by odometry,
    // or up to 0.09 s ahead of it: then it waits).
    let valid_stamp = |rng: &mut StdRng, model: &Model, id: &str| -> Option<f64> {
        let lo = model.min_stamp.get(id).copied().unwrap_or(0.0).max(newest - DT_S);
        if rng.random_bool(0.05) {
            let s = newest + rng.random_range(0.01..0.09);
            return (s > lo).then_some(s);
        }
        if lo >= newest {
            return None;
        }
        Some(if rng.random_bool(0.1) { newest } else { rng.random_range(lo..newest) + 1e-6 }.min(newest))
    };
    let finish_range = |model: &mut Model, input: Input| -> (Input, Expect) {
        let (stamp_s, range_m, limits, variance, frame, lid) = match &input {
            Input::RangeMeasurement { msg, .. } => {
                (msg.header.stamp.secs(), msg.range, None, msg.variance, msg.header.frame_id.clone(), msg.landmark_id.clone())
            }
            Input::Range { msg, .. } => {
                let limits = (msg.min_range != 0.0 || msg.max_range != 0.0).then_some((msg.min_range as f64, msg.max_range as f64));
                (msg.header.stamp.secs(), msg.range as f64, limits, msg.variance as f64, SENSOR_FRAME.to_string(), msg.header.frame_id.clone())
            }
            _ => unreachable!(),
        };
        let expect = match model.range_reason(stamp_s, range_m, limits, variance, &frame, &lid) {
            Some(r) => Expect::Reject(r),
            None => {
                let e = model.min_stamp.entry(lid).or_insert(0.0);
                *e = e.max(stamp_s);
                Expect::ValidRange
            }
        };
        (input, expect)
    };
    let noisy = |rng: &mut StdRng, id: &str, s: f64| truth(id, s) + NOISE_STD_M * (rng.random::<f64>() - 0.5) * 3.4;
    Some(match k {
        // Valid ranges (40 %): RangeMeasurement with the stated, default or a tiny variance.
        0..=39 => {
            let s = valid_stamp(rng, model, &id)?;
            let variance = match rng.random_range(0..10) {
                0 => 0.0,
                1 => 1e-30,
                _ => NOISE_STD_M * NOISE_STD_M,
            };
            finish_range(model, range_msg(stamp(s), SENSOR_FRAME, &id, noisy(rng, &id, s), variance))
        }
        // Valid sensor_msgs/Range within its limits (or with none filled in).
        40..=44 => {
            let s = valid_stamp(rng, model, &id)?;
            let z = noisy(rng, &id, s) as f32;
            let (lo, hi) = if rng.random_bool(0.3) { (0.0, 0.0) } else { (0.05, 100.0) };
            let fov = if rng.random_bool(0.2) { f32::NAN } else { 0.1 };
            finish_range(model, raw_range(stamp(s), &id, z, lo, hi, fov))
        }
        // Valid but adversarial: outliers, a huge finite variance, 0, the max range.
        45..=48 => {
            let s = valid_stamp(rng, model, &id)?;
            let (z, var) = match rng.random_range(0..5) {
                0 => (noisy(rng, &id, s) + rng.random_range(5.0..150.0), 0.01),
                1 => (noisy(rng, &id, s), 1e300),
                2 => (0.0, 0.01),
                3 => (MAX_RANGE_M, 0.01),
                _ => (1e-300, 1e-300),
            };
            finish_range(model, range_msg(stamp(s), SENSOR_FRAME, &id, z, var))
        }
        // Non-finite, negative, huge ranges.
        49..=53 => {
            let z = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, -1e300, 1e6, 1e300, MAX_RANGE_M * (1.0 + 1e-15)]
                [rng.random_range(0..8)];
            finish_range(model, range_msg(stamp(newest), SENSOR_FRAME, &id, z, 0.01))
        }
        // Bad variances.
        54..=56 => {
            let v = [f64::NAN, f64::INFINITY, -1.0, -1e-300][rng.random_range(0..4)];
            finish_range(model, range_msg(stamp(newest), SENSOR_FRAME, &id, 5.0, v))
        }
        // Bad stamps: 0, negative, far future (2³¹−1 s), nanosec overflow (fields as sent).
        57..=61 => {
            let st = match rng.random_range(0..6) {
                0 => Stamp { sec: 0, nanosec: 0 },
                1 => Stamp { sec: -5, nanosec: 0 },
                2 => Stamp { sec: i32::MIN, nanosec: 0 },
                3 => Stamp { sec: i32::MAX, nanosec: u32::MAX },
                4 => Stamp { sec: -1, nanosec: u32::MAX },
                _ => stamp(newest + rng.random_range(1.5..1e6)),
            };
            finish_range(model, range_msg(st, SENSOR_FRAME, &id, 5.0, 0.01))
        }
        // Backwards (older than this landmark's last fused range) and exact repeats.
        62..=65 => {
            let (last_s, last_r) = *model.last_fused.get(&id)?;
            if k < 64 {
                finish_range(model, range_msg(stamp(last_s - 0.05), SENSOR_FRAME, &id, last_r, 0.01))
            } else {
                finish_range(model, range_msg(stamp(last_s), SENSOR_FRAME, &id, last_r, 0.01))
            }
        }
        // Wrong frames.
        66..=67 => {
            let frame = ["laser", "", "uwb ", "UWB"][rng.random_range(0..4)];
            finish_range(model, range_msg(stamp(newest), frame, &id, 5.0, 0.01))
        }
        // Hostile ids: empty, overlong, control characters; unicode and a 128-byte id
        // are valid ids (new landmarks under default_prior, up to the cap).
        68..=71 => {
            let bad = match rng.random_range(0..8) {
                0 => String::new(),
                1 => "x".repeat(129),
                2 => "x".repeat(10_000),
                3 => "L0\0xyz".to_string(),
                4 => "a\nb".to_string(),
                5 => "\u{7f}".to_string(),
                6 => "y".repeat(128),
                _ => ["信标", "🛰️", "a-b", "a.b"][rng.random_range(0..4)].to_string(),
            };
            let s = valid_stamp(rng, model, &bad).unwrap_or(newest);
            finish_range(model, range_msg(stamp(s), SENSOR_FRAME, &bad, 6.0, 0.01))
        }
        // New ids (valid): default prior until the cap, then `landmark_cap`.
        72..=73 => {
            let nid = new_id(model);
            let s = valid_stamp(rng, model, &nid)?;
            finish_range(model, range_msg(stamp(s), SENSOR_FRAME, &nid, rng.random_range(0.0..20.0), 0.04))
        }
        // sensor_msgs/Range outside its own limits, or with bad limits.
        74..=77 => {
            let (z, lo, hi) = match rng.random_range(0..5) {
                0 => (50.0, 0.1, 10.0),
                1 => (0.01, 0.1, 10.0),
                2 => (5.0, 6.0, 1.0),
                3 => (5.0, f32::NAN, 10.0),
                _ => (5.0, 0.1, f32::INFINITY),
            };
            finish_range(model, raw_range(stamp(newest), &id, z, lo, hi, 0.1))
        }
        // Old stamps, far before the odometry buffer.
        78..=79 => {
            let s = rng.random_range(1.0..newest - 200.0);
            finish_range(model, range_msg(stamp(s), SENSOR_FRAME, &id, 5.0, 0.01))
        }
        // Bad odometry: each fault alone, stamped after the newest accepted one.
        80..=95 => {
            let s = newest + rng.random_range(0.001..0.05);
            let (p, yaw) = base_pose(s);
            let good_q = yaw_quaternion(yaw);
            let pos = [p.x, p.y, 0.0];
            let cov = [0.0; 36];
            let (input, reason) = match k {
                80..=81 => (odom_msg(stamp(s), "map", pos, good_q, cov), "wrong_frame"),
                82..=83 => {
                    let st = [Stamp { sec: 0, nanosec: 0 }, Stamp { sec: -3, nanosec: 5 }][rng.random_range(0..2)];
                    (odom_msg(st, ODOM_FRAME, pos, good_q, cov), "odom_bad_stamp")
                }
                84..=85 => {
                    let st = if rng.random_bool(0.5) { Stamp { sec: i32::MAX, nanosec: 0 } } else { stamp(t + rng.random_range(61.0..1e5)) };
                    (odom_msg(st, ODOM_FRAME, pos, good_q, cov), "odom_stamp_future")
                }
                86..=87 => {
                    let back = if rng.random_bool(0.5) { newest } else { newest - rng.random_range(0.01..5.0) };
                    let (p, yaw) = base_pose(back);
                    (odom_msg(stamp(back), ODOM_FRAME, [p.x, p.y, 0.0], yaw_quaternion(yaw), cov), "odom_stamp_backwards")
                }
                88..=90 => {
                    let (pos, q) = match rng.random_range(0..6) {
                        0 => ([f64::NAN, p.y, 0.0], good_q),
                        1 => ([p.x, f64::INFINITY, 0.0], good_q),
                        2 => (pos, [f64::NAN, 0.0, 0.0, 1.0]),
                        3 => (pos, [0.0; 4]),
                        4 => (pos, [0.0, 0.0, f64::INFINITY, 1.0]),
                        _ => ([1e308 * 10.0, 0.0, 0.0], good_q),
                    };
                    (odom_msg(stamp(s), ODOM_FRAME, pos, q, cov), "odom_non_finite")
                }
                _ => {
                    if model.jump_run >= 3 {
                        return None;
                    }
                    // A 1e6 m jump, a 1e3 m one, or a half turn in a few ms.
                    let (pos, q) = match rng.random_range(0..3) {
                        0 => ([1e6, -1e6, 0.0], good_q),
                        1 => ([p.x + 1e3, p.y, 0.0], good_q),
                        _ => (pos, yaw_quaternion(yaw + std::f64::consts::PI)),
                    };
                    model.jump_run += 1;
                    (odom_msg(stamp(s), ODOM_FRAME, pos, q, cov), "odom_jump")
                }
            };
            (input, Expect::Reject(reason))
        }
        96..=97 => (Input::Tick, Expect::Tick),
        // A burst of ranges ahead of odometry (they wait) is covered by valid_stamp; a
        // reset now and then.
        98 if rng.random_bool(0.02) => (Input::Reset, Expect::Reset),
        _ => return None,
    })
}

fn psd(m: &Matrix2<f64>) -> bool {
    symmetric_psd(&[m[(0, 0)], m[(0, 1)], m[(1, 0)], m[(1, 1)]], 2)
}

/// Finite, symmetric (relative 1e-9) and with no eigenvalue below −1e-9·max|entry|.
fn symmetric_psd(row_major: &[f64], n: usize) -> bool {
    if !row_major.iter().all(|v| v.is_finite()) {
        return false;
    }
    let scale = row_major.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let mut m = nalgebra::DMatrix::<f64>::zeros(n, n);
    for r in 0..n {
        for c in 0..n {
            if (row_major[r * n + c] - row_major[c * n + r]).abs() > 1e-9 * scale {
                return false;
            }
            m[(r, c)] = row_major[r * n + c];
        }
    }
    m.symmetric_eigen().eigenvalues.iter().all(|&e| e >= -1e-9 * scale)
}

fn spd2(m: &Matrix2<f64>) -> bool {
    m.iter().all(|v| v.is_finite()) && m.cholesky().is_some()
}

fn check_stamp(s: &Stamp, what: &str) {
    assert!(s.sec >= 0 && s.nanosec < 1_000_000_000, "{what}: stamp {s:?}");
}

fn finite(v: &[f64]) -> bool {
    v.iter().all(|x| x.is_finite())
}

/// Every published number finite, every covariance PSD (beliefs SPD), stamps valid.
fn check_outputs(outs: &[Output]) {
    for o in outs {
        match o {
            Output::Odometry { stamp_s, position } => assert!(stamp_s.is_finite() && finite(position.coords.as_slice()), "{o:?}"),
            Output::OdometryRejected(_) | Output::StaticTransformRejected(_) | Output::Reset { .. } => {}
            Output::Range(u) => {
                if let Ok(f) = &u.result {
                    assert!(finite(f.sensor_position.coords.as_slice()), "{o:?}");
                    assert!(f.belief.is_publishable(), "{o:?}");
                    if let Some(c) = f.calibration {
                        assert!(c.scale.is_finite() && c.offset_m.is_finite() && c.scale_variance >= 0.0 && c.offset_variance_m2 >= 0.0);
                    }
                }
            }
            Output::LandmarkPose { msg, .. } => {
                check_stamp(&msg.header.stamp, "pose");
                assert!(finite(&msg.pose.position) && finite(&msg.pose.orientation), "{o:?}");
                let c = Matrix2::new(msg.covariance[0], msg.covariance[1], msg.covariance[6], msg.covariance[7]);
                assert!(spd2(&c) && symmetric_psd(&msg.covariance, 6), "pose covariance {o:?}");
            }
            Output::Beliefs(b) => {
                check_stamp(&b.header.stamp, "beliefs");
                for x in &b.beliefs {
                    check_stamp(&x.header.stamp, "belief");
                    assert!(finite(&x.mean) && symmetric_psd(&x.covariance, 3), "belief {x:?}");
                    let c = Matrix2::new(x.covariance[0], x.covariance[1], x.covariance[3], x.covariance[4]);
                    assert!(spd2(&c), "belief not SPD {x:?}");
                    for comp in &x.components {
                        assert!(comp.weight.is_finite() && (0.0..=1.0 + 1e-9).contains(&comp.weight), "{x:?}");
                        assert!(finite(&comp.mean) && symmetric_psd(&comp.covariance, 3), "{x:?}");
                    }
                    assert!(x.update_latency_s.is_finite() && x.range_scale.is_finite() && x.range_offset_m.is_finite());
                    assert!(x.range_scale_variance >= 0.0 && x.range_offset_variance >= 0.0);
                }
            }
            Output::Markers(m) => {
                check_stamp(&m.header.stamp, "markers");
                for l in &m.landmarks {
                    assert!(finite(l.belief.mean.as_slice()) && spd2(&l.belief.cov), "{l:?}");
                    for (w, b) in &l.components {
                        assert!(w.is_finite() && finite(b.mean.as_slice()) && psd(&b.cov), "{l:?}");
                    }
                    if let Some((x, r)) = l.last_range {
                        assert!(finite(x.as_slice()) && r.is_finite(), "{l:?}");
                    }
                }
                if let Some((a, b)) = m.goal_arrow {
                    assert!(finite(a.as_slice()) && finite(b.as_slice()), "{o:?}");
                }
            }
            Output::Goal(g) => {
                check_stamp(&g.msg.header.stamp, "goal");
                assert!(finite(&g.msg.pose.position) && finite(&g.msg.pose.orientation) && finite(g.from_m.as_slice()), "{o:?}");
                let q = g.msg.pose.orientation;
                assert!(((q.iter().map(|v| v * v).sum::<f64>()) - 1.0).abs() < 1e-9, "{o:?}");
            }
            Output::Heatmap(h) => {
                check_stamp(&h.header.stamp, "heatmap");
                let c = &h.grid.candidates;
                assert!(finite(c.origin_m.as_slice()) && c.resolution_m.is_finite() && c.resolution_m > 0.0, "heatmap grid");
                assert!(h.grid.values.iter().all(|v| v.is_finite() || v.is_nan()), "heatmap values are finite or NaN (no candidate)");
            }
            Output::OdometryCorrection(c) => {
                check_stamp(&c.header.stamp, "correction");
                assert!(finite(&[c.x_m, c.y_m, c.yaw_rad, c.gyro_bias_rad_per_s, c.gyro_bias_variance]), "{c:?}");
                assert!(symmetric_psd(&c.covariance, 3) && c.gyro_bias_variance >= 0.0, "{c:?}");
            }
            Output::RobotPose(p) => {
                check_stamp(&p.header.stamp, "robot pose");
                assert!(finite(&p.pose.position) && finite(&p.pose.orientation), "{p:?}");
                assert!(symmetric_psd(&p.covariance, 6), "{p:?}");
            }
            Output::PlanFailed { .. } => {}
            Output::Diagnostics(d) => {
                check_stamp(&d.stamp, "diagnostics");
                for (k, v) in &d.values {
                    if let Ok(x) = v.parse::<f64>() {
                        assert!(x.is_finite(), "diagnostics {k} = {v}");
                    }
                }
            }
        }
    }
}

/// A converged landmark's belief (see the module doc), for the gate-bound check.
fn converged(core: &NodeCore) -> BTreeMap<String, (Vector2<f64>, Matrix2<f64>)> {
    core.localizer()
        .tracks()
        .iter()
        .filter(|(_, t)| {
            t.status() == TrackStatus::Tracking
                && t.summary.components.len() <= 1
                && t.measurements_fused >= 5
                && SymmetricEigen::new(t.summary.belief.cov).eigenvalues.max() <= 0.25
        })
        .map(|(id, t)| (id.clone(), (t.summary.belief.mean, t.summary.belief.cov)))
        .collect()
}

#[derive(Default, Debug)]
struct Stats {
    messages: u64,
    fused: u64,
    rejected_determined: u64,
    gate_checks: u64,
    worst_gate_ratio: f64,
    by_reason: BTreeMap<&'static str, u64>,
}

fn run(mode: OdometryMode, seed: u64, messages: u64) -> Stats {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut core = NodeCore::new(&config(mode)).expect("valid config");
    let mut model = Model::new(mode);
    let mut stats = Stats::default();
    let gate_margin = match mode {
        OdometryMode::Exact => 1.0 + 1e-6,
        OdometryMode::Drifting => 1.25,
    };
    let mut t = T0_S;
    let mut step = 0u64;
    while stats.messages < messages {
        step += 1;
        t += DT_S;
        let burst = rng.random_bool(0.01);
        let mut batch: Vec<(Input, Expect)> = Vec::new();
        if model.newest_odom.is_none() || rng.random_bool(0.97) {
            let input = if model.newest_odom.is_some() && rng.random_bool(0.1) {
                let (p, yaw) = base_pose(t);
                let scale = [1e-3, 7.0, 1e3, -1.0, 1e200, 1e-200][rng.random_range(0..6)];
                let mut cov = [0.0; 36];
                match rng.random_range(0..5) {
                    0 => cov = [f64::NAN; 36],
                    1 => cov[0] = f64::INFINITY,
                    2 => cov.iter_mut().for_each(|c| *c = -1.0),
                    3 => (cov[0], cov[7], cov[35]) = (1e-4, 1e-4, 1e-5),
                    _ => (cov[0], cov[7], cov[35]) = (1e300, 1e300, 1e300),
                }
                odom_msg(stamp(t), ODOM_FRAME, [p.x, p.y, 0.0], yaw_quaternion(yaw).map(|v| v * scale), cov)
            } else {
                valid_odom(t)
            };
            batch.push((input, Expect::ValidOdometry));
        }
        let n = if burst { rng.random_range(50..200) } else { rng.random_range(1..8) };
        let kinds: Vec<u32> = (0..n).map(|_| rng.random_range(0..100)).collect();
        // Odometry first; the rest are built one at a time against the model's state.
        let mut pending_kinds = kinds.into_iter();
        let mut queue = batch.into_iter();
        loop {
            let (input, expect) = match queue.next() {
                Some(x) => x,
                None => match pending_kinds.next() {
                    Some(k) => match message(&mut rng, &mut model, t, k) {
                        Some(x) => x,
                        None => continue,
                    },
                    None => break,
                },
            };
            stats.messages += 1;
            let before = converged(&core);
            if expect == Expect::Reset {
                assert_counters(&core, &model, seed);
            }
            let outs = core.handle(t, input.clone());
            check_outputs(&outs);
            // The outcome of this message (ranges released by odometry come after it).
            let mut fused_now = 0;
            let ranges: Vec<_> = outs.iter().filter_map(|o| if let Output::Range(u) = o { Some(u) } else { None }).collect();
            let odom_rejection = outs.iter().find_map(|o| if let Output::OdometryRejected(r) = o { Some(r.reason()) } else { None });
            let ctx = || format!("seed {seed}, step {step}, message {}: {input:?}", stats.messages);
            match &expect {
                Expect::Reject(reason) => {
                    let got = match &input {
                        Input::Odometry(_) => odom_rejection,
                        _ => ranges.first().and_then(|u| u.result.as_ref().err()).map(|r| r.reason()),
                    };
                    assert_eq!(got, Some(*reason), "{}\noutputs: {outs:?}", ctx());
                    *model.expected.entry(reason).or_insert(0) += 1;
                    stats.rejected_determined += 1;
                    if !matches!(input, Input::Odometry(_)) {
                        assert_eq!(ranges.len(), 1, "{}", ctx());
                    }
                }
                Expect::ValidOdometry => {
                    match odom_rejection {
                        None => {
                            model.newest_odom = Some(t);
                            model.jump_run = 0;
                        }
                        Some(r) => {
                            assert!(mode == OdometryMode::Drifting && r == "estimator_error", "valid odometry rejected ({r}): {}", ctx());
                            // The pose was stored before the error model refused the step.
                            model.newest_odom = Some(t);
                            model.jump_run = 0;
                            *model.observed_undetermined.entry("estimator_error").or_insert(0) += 1;
                        }
                    }
                }
                Expect::ValidRange | Expect::Tick | Expect::Reset => {
                    if let Input::Tick | Input::Reset = input {
                        assert!(ranges.is_empty(), "{}", ctx());
                    }
                }
            }
            if expect == Expect::Reset {
                model.reset();
                // The next message must be odometry: ranges need it, and a bad odometry
                // message cannot be "backwards" or a "jump" without a newest one.
                let v = valid_odom(t);
                let outs = core.handle(t, v);
                check_outputs(&outs);
                model.newest_odom = Some(t);
                stats.messages += 1;
                continue;
            }
            // Every range outcome here belongs to a valid range (this one, or those the
            // odometry released), except the rejection of a determined bad range above.
            for u in &ranges {
                if matches!(expect, Expect::Reject(_)) {
                    continue;
                }
                match &u.result {
                    Ok(_) => {
                        fused_now += 1;
                        stats.fused += 1;
                        model.last_fused.insert(u.input.landmark_id.clone(), (u.input.stamp_s, u.input.range_m));
                    }
                    Err(r) => {
                        assert!(UNDETERMINED.contains(&r.reason()), "valid range rejected as `{}` ({r}): {}\ninput {:?}", r.reason(), ctx(), u.input);
                        *model.observed_undetermined.entry(r.reason()).or_insert(0) += 1;
                    }
                }
            }
            // The gate bound, when this message fused exactly one range.
            if fused_now == 1 {
                let after = core.localizer().tracks();
                for (id, (mean, cov)) in &before {
                    let Some(t) = after.get(id) else { continue };
                    let d = t.summary.belief.mean - mean;
                    let m2 = (d.transpose() * cov.cholesky().expect("converged ⇒ SPD").solve(&d))[(0, 0)];
                    let ratio = m2.max(0.0).sqrt() / GATE_SIGMA;
                    stats.gate_checks += 1;
                    stats.worst_gate_ratio = stats.worst_gate_ratio.max(ratio);
                    assert!(
                        ratio <= gate_margin,
                        "landmark {id} moved {:.3} Mahalanobis by one range (gate {GATE_SIGMA}): {} (Δ = {d:?}, Σ = {cov:?})",
                        ratio * GATE_SIGMA,
                        ctx()
                    );
                }
            }
        }
    }
    assert_counters(&core, &model, seed);
    stats.by_reason = core.localizer().rejected().clone();
    stats
}

/// The core's counters equal the model's: each determined reason exactly, the
/// undetermined ones as observed in the outputs.
fn assert_counters(core: &NodeCore, model: &Model, seed: u64) {
    let mut expected: BTreeMap<&'static str, u64> = model.expected.clone();
    for (r, n) in &model.observed_undetermined {
        *expected.entry(r).or_insert(0) += n;
    }
    let got: BTreeMap<&'static str, u64> = core.localizer().rejected().iter().map(|(k, v)| (*k, *v)).filter(|(_, v)| *v > 0).collect();
    assert_eq!(got, expected, "seed {seed}: rejection counters (core) vs injected (model)");
}

fn scale() -> f64 {
    std::env::var("LANDMARK_FLOW_FUZZ_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1.0)
}

fn seed(base: u64) -> u64 {
    std::env::var("LANDMARK_FLOW_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(base)
}

fn report(name: &str, s: &Stats) {
    eprintln!(
        "{name}: {} messages, {} fused, {} determined rejections, {} gate checks (worst {:.3} of the gate); counters {:?}",
        s.messages, s.fused, s.rejected_determined, s.gate_checks, s.worst_gate_ratio, s.by_reason
    );
}

#[test]
fn fuzz_exact_odometry() {
    let n = (50_000.0 * scale()) as u64;
    let mut total = 0;
    for k in 0..4 {
        let s = run(OdometryMode::Exact, seed(0xF022 + k), n);
        report(&format!("exact seed {}", seed(0xF022 + k)), &s);
        assert!(s.fused > n / 10 && s.gate_checks > 1000, "the stream fused too little to test anything: {s:?}");
        total += s.messages;
    }
    assert!(total >= 200_000 || scale() < 1.0, "{total} messages");
}

#[test]
fn fuzz_drifting_odometry() {
    let n = (25_000.0 * scale()) as u64;
    for k in 0..2 {
        let s = run(OdometryMode::Drifting, seed(0xD21F + k), n);
        report(&format!("drifting seed {}", seed(0xD21F + k)), &s);
        assert!(s.fused > n / 10 && s.gate_checks > 1000, "the stream fused too little to test anything: {s:?}");
    }
}
