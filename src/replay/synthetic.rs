//! A synthetic recording for tests and benchmarks: a robot on a circle, odometry
//! (`/odom`, nav_msgs/Odometry) at `odom_rate_hz`, and ranges
//! (`/range`, landmark_flow/RangeMeasurement) at `range_rate_hz`, round-robin over
//! the landmarks, `z = ‖x − y‖ + w`, `w ~ N(0, noise_std_m²)` from a seeded RNG,
//! `x` the robot's true position.
//!
//! Each range is stamped with the stamp of an odometry message (so interpolation is
//! exact) and recorded 5 ms after it; odometry is recorded 1 ms after its stamp.
//!
//! # Drifting odometry
//!
//! With every [`SyntheticOdometryError`] field zero (the default) `/odom` is the true
//! pose, and the messages are exactly those of the generator before odometry errors
//! existed. Otherwise `/odom` is dead reckoning from the true start pose over
//! erroneous increments, and `/ground_truth/odom` (the topic `sim_robot` publishes its
//! true pose on) records the true pose with the same stamps. Between consecutive
//! odometry stamps (dt s) the true pose moves by (t̃, Δθ̃) in the robot frame; the
//! odometry reports
//!
//! ```text
//! t   = (1 + ε)·t̃ − n_t·t̃/‖t̃‖,     n_t ~ N(0, σ_t²·Δs)
//! Δθ  = Δθ̃ + b_k·dt − n_θ,          n_θ ~ N(0, σ_r²·|Δθ̃| + σ_rm²·Δs)
//! b_{k+1} = b_k + n_b,              n_b ~ N(0, q_b²·dt),   b_0 = b̄ + σ_b·N(0, 1)
//! P_{k+1} = P_k ⊕ (t, Δθ),          P_0 = X_0
//! ```
//!
//! with Δs = ‖t̃‖, ε = `wheel_scale_error`, b̄ = `gyro_bias_rad_per_s` and (σ_t, σ_r,
//! σ_rm, q_b, σ_b) the [`OdometryErrorConfig`] of `localizer.odometry_error`. For
//! ε = 0 this is the model of [`crate::localizer::drift`] (t̃ = t + n_t·t/‖t‖,
//! Δθ̃ = Δθ − b·dt + n_θ), except that the noise variances are evaluated at the true
//! step rather than the odometry's (they differ by one step's error, a relative O(σ)
//! change of a variance that is itself O(σ²)). The systematic ε is the error the
//! model leaves out on purpose (it trades off against a range scale). The odometry
//! error has its own RNG stream (seed `odometry_error.seed`), so the range noise is
//! the same with and without it.

use crate::localizer::drift::OdometryErrorConfig;
use crate::msg::cdr::CdrMessage;
use crate::msg::{type_names, Header, OdometryMsg, Pose, RangeMeasurementMsg, Stamp};
use super::output::{io_err, OutputError, Rosbag2McapWriter};
use nalgebra::{Isometry2, Vector2};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal, StandardNormal};
use std::path::Path;

/// Topic of the recorded odometry.
pub const ODOM_TOPIC: &str = "/odom";
/// Topic of the recorded true pose (only with odometry error), as `sim_robot` names it.
pub const GROUND_TRUTH_TOPIC: &str = "/ground_truth/odom";
/// Topic of the recorded ranges.
pub const RANGE_TOPIC: &str = "/range";

/// Error of the recorded odometry (module doc). All zero (the default): `/odom` is
/// the true pose.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticOdometryError {
    /// b̄, gyro bias, rad/s: the odometry's heading gains b·dt per step over the true
    /// heading, so a heading error growing linearly in time (0.01 rad/s = 34° in a
    /// minute). The start value of the bias random walk (plus σ_b·N(0, 1)).
    pub gyro_bias_rad_per_s: f64,
    /// ε, wheel scale error, dimensionless: odometry distance = (1 + ε)·true distance
    /// (0.02 = a wheel radius 2 % too large in the odometry). > −1.
    pub wheel_scale_error: f64,
    /// Random-walk noise (σ_t m/√m, σ_r rad/√rad, σ_rm rad/√m, q_b rad/s/√s, σ_b rad/s),
    /// as `localizer.odometry_error` (see [`OdometryErrorConfig`]). All zero here by
    /// default (its own `Default` is the estimator's, not zero).
    pub noise: OdometryErrorConfig,
    /// Seed of the odometry error's RNG stream (independent of the range noise's).
    pub seed: u64,
}

impl Default for SyntheticOdometryError {
    fn default() -> Self {
        Self {
            gyro_bias_rad_per_s: 0.0,
            wheel_scale_error: 0.0,
            noise: OdometryErrorConfig::perfect(),
            seed: 11,
        }
    }
}

impl SyntheticOdometryError {
    /// True when every error parameter is zero (the seed does not count): `/odom` is
    /// then the true pose and no `/ground_truth/odom` is recorded.
    pub fn is_zero(&self) -> bool {
        let n = &self.noise;
        [
            self.gyro_bias_rad_per_s,
            self.wheel_scale_error,
            n.translation_std_m_per_sqrt_m,
            n.rotation_std_rad_per_sqrt_rad,
            n.rotation_std_rad_per_sqrt_m,
            n.gyro_bias_walk_rad_per_s_per_sqrt_s,
            n.gyro_bias_std_rad_per_s,
        ]
        .iter()
        .all(|v| *v == 0.0)
    }
}

/// Parameters of the synthetic recording.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticBag {
    /// Bag length, s.
    pub duration_s: f64,
    /// Stamp of the first odometry, s.
    pub start_s: f64,
    pub odom_rate_hz: f64,
    /// Must divide `odom_rate_hz` (ranges are stamped at odometry stamps).
    pub range_rate_hz: f64,
    /// Circle radius, m, and angular speed, rad/s.
    pub radius_m: f64,
    pub angular_speed_rad_s: f64,
    pub landmarks: Vec<(String, Vector2<f64>)>,
    /// Height of each landmark above the robot's plane, m, in the order of `landmarks`
    /// (missing entries: 0, in the plane). Ranges are the 3-D distances from the sensor
    /// (at the base, z = 0) and the ground truth carries z when any height is given.
    pub landmark_heights_m: Vec<f64>,
    pub noise_std_m: f64,
    pub seed: u64,
    /// Error of `/odom` (default none).
    pub odometry_error: SyntheticOdometryError,
}

impl Default for SyntheticBag {
    fn default() -> Self {
        Self {
            duration_s: 60.0,
            start_s: 100.0,
            odom_rate_hz: 20.0,
            range_rate_hz: 10.0,
            radius_m: 5.0,
            angular_speed_rad_s: 0.2,
            landmarks: vec![
                ("a".into(), Vector2::new(4.0, 3.0)),
                ("b".into(), Vector2::new(-6.0, 2.0)),
                ("c".into(), Vector2::new(1.0, -7.0)),
            ],
            landmark_heights_m: Vec::new(),
            noise_std_m: 0.3,
            seed: 7,
            odometry_error: SyntheticOdometryError::default(),
        }
    }
}

/// One serialized message: bag time (ns), topic, type, CDR bytes.
pub type RawMessage = (u64, &'static str, &'static str, Vec<u8>);

/// Dead reckoning over erroneous increments (module doc).
struct DeadReckoning {
    error: SyntheticOdometryError,
    rng: StdRng,
    bias_rad_per_s: f64,
    odom: Isometry2<f64>,
}

impl DeadReckoning {
    fn new(error: &SyntheticOdometryError, start: Isometry2<f64>) -> Self {
        let mut rng = StdRng::seed_from_u64(error.seed);
        let z: f64 = StandardNormal.sample(&mut rng);
        let bias_rad_per_s = error.gyro_bias_rad_per_s + error.noise.gyro_bias_std_rad_per_s * z;
        Self { error: error.clone(), rng, bias_rad_per_s, odom: start }
    }

    /// Moves the odometry by the erroneous image of the true step `from` → `to`
    /// taking `dt_s`; returns the new odometry pose.
    fn step(&mut self, from: &Isometry2<f64>, to: &Isometry2<f64>, dt_s: f64) -> Isometry2<f64> {
        let u = from.inverse() * to;
        let (t_true, dth_true) = (u.translation.vector, u.rotation.angle());
        let ds = t_true.norm();
        let c = &self.error.noise;
        let mut normal = || -> f64 { StandardNormal.sample(&mut self.rng) };
        let n_t = c.translation_std_m_per_sqrt_m * ds.sqrt() * normal();
        let var_th = c.rotation_std_rad_per_sqrt_rad.powi(2) * dth_true.abs() + c.rotation_std_rad_per_sqrt_m.powi(2) * ds;
        let n_th = var_th.sqrt() * normal();
        let n_b = c.gyro_bias_walk_rad_per_s_per_sqrt_s * dt_s.max(0.0).sqrt() * normal();
        let dir = if ds > 0.0 { t_true / ds } else { Vector2::zeros() };
        let t = t_true * (1.0 + self.error.wheel_scale_error) - dir * n_t;
        let dth = dth_true + self.bias_rad_per_s * dt_s - n_th;
        self.bias_rad_per_s += n_b;
        self.odom *= Isometry2::new(t, dth);
        self.odom
    }
}

fn odometry_msg(stamp: Stamp, position: Vector2<f64>, yaw: f64) -> OdometryMsg {
    OdometryMsg {
        header: Header { stamp, frame_id: "odom".into() },
        child_frame_id: "base_link".into(),
        pose: Pose { position: [position.x, position.y, 0.0], orientation: [0.0, 0.0, (yaw / 2.0).sin(), (yaw / 2.0).cos()] },
        pose_covariance: [0.0; 36],
    }
}

impl SyntheticBag {
    /// The messages in bag-time order.
    pub fn messages(&self) -> Vec<RawMessage> {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let noise = Normal::new(0.0, self.noise_std_m.max(0.0)).unwrap_or_else(|_| Normal::new(0.0, 0.0).expect("σ = 0"));
        let n = (self.duration_s * self.odom_rate_hz).floor() as u64;
        let every = (self.odom_rate_hz / self.range_rate_hz).round().max(1.0) as u64;
        let ns = |s: f64| (s * 1e9).round() as u64;
        let mut out = Vec::new();
        let mut next_landmark = 0usize;
        // None (no error): /odom is the true pose, computed exactly as before errors
        // existed (bit-identical output). Some: the odometry's own state and the
        // previous true pose and stamp.
        let mut drift: Option<(DeadReckoning, Isometry2<f64>, f64)> = None;
        for k in 0..n {
            let stamp_s = self.start_s + k as f64 / self.odom_rate_hz;
            let t = stamp_s - self.start_s;
            let angle = self.angular_speed_rad_s * t;
            let x = Vector2::new(self.radius_m * angle.cos(), self.radius_m * angle.sin());
            let yaw = angle + std::f64::consts::FRAC_PI_2;
            let stamp = Stamp::from_secs(stamp_s);
            let truth = odometry_msg(stamp, x, yaw);
            if self.odometry_error.is_zero() {
                out.push((ns(stamp_s) + 1_000_000, ODOM_TOPIC, type_names::ODOMETRY, truth.encode()));
            } else {
                let true_pose = Isometry2::new(x, yaw);
                let odom = match drift.as_mut() {
                    None => {
                        drift = Some((DeadReckoning::new(&self.odometry_error, true_pose), true_pose, stamp_s));
                        true_pose
                    }
                    Some((reckoning, previous, previous_s)) => {
                        let odom = reckoning.step(previous, &true_pose, stamp_s - *previous_s);
                        (*previous, *previous_s) = (true_pose, stamp_s);
                        odom
                    }
                };
                let msg = odometry_msg(stamp, odom.translation.vector, odom.rotation.angle());
                out.push((ns(stamp_s) + 1_000_000, ODOM_TOPIC, type_names::ODOMETRY, msg.encode()));
                out.push((ns(stamp_s) + 1_000_000, GROUND_TRUTH_TOPIC, type_names::ODOMETRY, truth.encode()));
            }
            if k % every == 0 && !self.landmarks.is_empty() {
                let i = next_landmark % self.landmarks.len();
                let (id, y) = &self.landmarks[i];
                next_landmark += 1;
                let distance = (x - y).norm().hypot(self.landmark_height_m(i));
                let range = (distance + noise.sample(&mut rng)).max(0.0);
                let m = RangeMeasurementMsg {
                    header: Header { stamp, frame_id: "range_sensor".into() },
                    landmark_id: id.clone(),
                    range,
                    variance: self.noise_std_m * self.noise_std_m,
                };
                out.push((ns(stamp_s) + 5_000_000, RANGE_TOPIC, type_names::RANGE_MEASUREMENT, m.encode()));
            }
        }
        // Stable: /odom before /ground_truth/odom at the same bag time.
        out.sort_by_key(|m| m.0);
        out
    }

    /// Height of landmark `index` above the robot's plane, m (0 when not given).
    pub fn landmark_height_m(&self, index: usize) -> f64 {
        self.landmark_heights_m.get(index).copied().unwrap_or(0.0)
    }

    /// Number of range messages.
    pub fn range_count(&self) -> usize {
        self.messages().iter().filter(|m| m.1 == RANGE_TOPIC).count()
    }

    /// The true landmark positions in the format the replayer's `--ground-truth`
    /// reads (`landmarks: {id: [x, y]}`, or `[x, y, z]` when heights are given; metres,
    /// in the frame of the true start pose, which is also the odometry frame at start
    /// and the drifting localizer's map).
    pub fn ground_truth_yaml(&self) -> String {
        let mut s = String::from("# True landmark positions, m (replay::synthetic::SyntheticBag).\nlandmarks:\n");
        for (i, (id, y)) in self.landmarks.iter().enumerate() {
            if self.landmark_heights_m.is_empty() {
                s.push_str(&format!("  {id:?}: [{:?}, {:?}]\n", y.x, y.y));
            } else {
                s.push_str(&format!("  {id:?}: [{:?}, {:?}, {:?}]\n", y.x, y.y, self.landmark_height_m(i)));
            }
        }
        s
    }

    /// Writes a rosbag2 MCAP bag directory.
    ///
    /// # Errors
    /// [`OutputError`].
    pub fn write_mcap(&self, dir: &Path) -> Result<(), OutputError> {
        let mut w = Rosbag2McapWriter::create(dir)?;
        for (t, topic, type_name, data) in self.messages() {
            w.write(topic, type_name, t, &data)?;
        }
        w.finish()
    }

    /// Writes a single rosbag2 sqlite3 file (`topics` and `messages` tables).
    ///
    /// # Errors
    /// [`OutputError`].
    pub fn write_sqlite(&self, path: &Path) -> Result<(), OutputError> {
        let e = |err: rusqlite::Error| io_err(path, err);
        if path.exists() {
            std::fs::remove_file(path).map_err(|err| io_err(path, err))?;
        }
        let mut conn = rusqlite::Connection::open(path).map_err(e)?;
        conn.execute_batch(
            "CREATE TABLE topics(id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL,
               serialization_format TEXT NOT NULL, offered_qos_profiles TEXT NOT NULL);
             CREATE TABLE messages(id INTEGER PRIMARY KEY, topic_id INTEGER NOT NULL,
               timestamp INTEGER NOT NULL, data BLOB NOT NULL);
             INSERT INTO topics VALUES (1, '/odom', 'nav_msgs/msg/Odometry', 'cdr', '');
             INSERT INTO topics VALUES (2, '/range', 'landmark_flow/msg/RangeMeasurement', 'cdr', '');",
        )
        .map_err(e)?;
        if !self.odometry_error.is_zero() {
            conn.execute_batch("INSERT INTO topics VALUES (3, '/ground_truth/odom', 'nav_msgs/msg/Odometry', 'cdr', '');")
                .map_err(e)?;
        }
        let tx = conn.transaction().map_err(e)?;
        {
            let mut stmt = tx.prepare("INSERT INTO messages(topic_id, timestamp, data) VALUES (?1, ?2, ?3)").map_err(e)?;
            for (t, topic, _, data) in self.messages() {
                let topic_id = match topic {
                    ODOM_TOPIC => 1,
                    RANGE_TOPIC => 2,
                    _ => 3,
                };
                stmt.execute(rusqlite::params![topic_id, t as i64, data]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }
}
