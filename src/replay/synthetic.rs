//! A synthetic recording for tests and benchmarks: a robot on a circle, odometry
//! (`/odom`, nav_msgs/Odometry) at `odom_rate_hz`, and ranges
//! (`/range`, landmark_flow/RangeMeasurement) at `range_rate_hz`, round-robin over
//! the landmarks, `z = ‖x − y‖ + w`, `w ~ N(0, noise_std_m²)` from a seeded RNG.
//!
//! Each range is stamped with the stamp of an odometry message (so interpolation is
//! exact) and recorded 5 ms after it; odometry is recorded 1 ms after its stamp.

use crate::msg::cdr::CdrMessage;
use crate::msg::{type_names, Header, OdometryMsg, Pose, RangeMeasurementMsg, Stamp};
use super::output::{io_err, OutputError, Rosbag2McapWriter};
use nalgebra::Vector2;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use std::path::Path;

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
    pub noise_std_m: f64,
    pub seed: u64,
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
            noise_std_m: 0.3,
            seed: 7,
        }
    }
}

/// One serialized message: bag time (ns), topic, type, CDR bytes.
pub type RawMessage = (u64, &'static str, &'static str, Vec<u8>);

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
        for k in 0..n {
            let stamp_s = self.start_s + k as f64 / self.odom_rate_hz;
            let t = stamp_s - self.start_s;
            let angle = self.angular_speed_rad_s * t;
            let x = Vector2::new(self.radius_m * angle.cos(), self.radius_m * angle.sin());
            let yaw = angle + std::f64::consts::FRAC_PI_2;
            let stamp = Stamp::from_secs(stamp_s);
            let odom = OdometryMsg {
                header: Header { stamp, frame_id: "odom".into() },
                child_frame_id: "base_link".into(),
                pose: Pose { position: [x.x, x.y, 0.0], orientation: [0.0, 0.0, (yaw / 2.0).sin(), (yaw / 2.0).cos()] },
                pose_covariance: [0.0; 36],
            };
            out.push((ns(stamp_s) + 1_000_000, "/odom", type_names::ODOMETRY, odom.encode()));
            if k % every == 0 && !self.landmarks.is_empty() {
                let (id, y) = &self.landmarks[next_landmark % self.landmarks.len()];
                next_landmark += 1;
                let range = ((x - y).norm() + noise.sample(&mut rng)).max(0.0);
                let m = RangeMeasurementMsg {
                    header: Header { stamp, frame_id: "range_sensor".into() },
                    landmark_id: id.clone(),
                    range,
                    variance: self.noise_std_m * self.noise_std_m,
                };
                out.push((ns(stamp_s) + 5_000_000, "/range", type_names::RANGE_MEASUREMENT, m.encode()));
            }
        }
        out.sort_by_key(|m| m.0);
        out
    }

    /// Number of range messages.
    pub fn range_count(&self) -> usize {
        self.messages().iter().filter(|m| m.1 == "/range").count()
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
        let tx = conn.transaction().map_err(e)?;
        {
            let mut stmt = tx.prepare("INSERT INTO messages(topic_id, timestamp, data) VALUES (?1, ?2, ?3)").map_err(e)?;
            for (t, topic, _, data) in self.messages() {
                let topic_id = if topic == "/odom" { 1 } else { 2 };
                stmt.execute(rusqlite::params![topic_id, t as i64, data]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }
}
