//! Simulated range sensor: the measurement model of the estimator, run forwards.
//!
//! For each configured true landmark `y` and the sensor position `x` (robot pose ⊕
//! mount offset), one cycle yields
//! - nothing, if `‖x − y‖ > max_range_m` (out of range) or with probability
//!   `dropout_probability` (a missed reply);
//! - with probability `outlier_probability`, an outlier drawn uniformly from
//!   `[0, max_range_m]`;
//! - otherwise `z = max(0, ‖x − y‖ + w)`, `w ~ N(0, noise_std_m²)`. The clamp at 0
//!   (a sensor never reports a negative range) only matters within a few σ of the
//!   landmark.
//!
//! Randomness comes from one `StdRng` seeded with `seed`, so a run is reproducible.

use crate::config::{check_positive, check_range, ConfigError};
use nalgebra::{Isometry3, Point3, Vector3};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

/// Parameters of the `sim_range_sensor` node (`config/sim_range_sensor.yaml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimRangeSensorConfig {
    /// Measurement cycles per second, Hz (one range per landmark per cycle).
    pub rate_hz: f64,
    /// Standard deviation σ of the Gaussian range noise, metres.
    pub noise_std_m: f64,
    /// Probability that a range is an outlier, uniform on [0, max_range_m].
    pub outlier_probability: f64,
    /// Probability that a landmark's range is missing in a cycle.
    pub dropout_probability: f64,
    /// Ranges beyond this true distance are not measured, metres.
    pub max_range_m: f64,
    /// Sensor position in the robot base frame (x, y, z), metres.
    pub sensor_offset_m: Vec<f64>,
    /// `header.frame_id` of the published measurements.
    pub frame_id: String,
    /// Whether `RangeMeasurement.variance` carries σ² (true) or 0, "use the
    /// receiver's configured noise" (false).
    pub report_variance: bool,
    /// Also publish `sensor_msgs/Range` (frame_id = landmark id) on `range_raw`.
    pub publish_sensor_msgs_range: bool,
    /// Odometry older than this (ROS clock) is not used to simulate a range, s.
    pub odom_timeout_s: f64,
    /// Seed of the noise generator.
    pub seed: i64,
    /// The true landmarks.
    pub landmarks: TrueLandmarks,
}

/// True landmark positions, as ROS parameters allow: parallel flat arrays.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrueLandmarks {
    /// Landmark ids, e.g. `["beacon_a", "beacon_b"]`.
    pub ids: Vec<String>,
    /// Positions in the odometry frame, metres: x, y, z for each id in turn.
    pub positions_m: Vec<f64>,
}

impl Default for SimRangeSensorConfig {
    fn default() -> Self {
        Self {
            rate_hz: 10.0,
            noise_std_m: 0.5,
            outlier_probability: 0.0,
            dropout_probability: 0.0,
            max_range_m: 100.0,
            sensor_offset_m: vec![0.0, 0.0, 0.0],
            frame_id: "range_sensor".to_string(),
            report_variance: true,
            publish_sensor_msgs_range: false,
            odom_timeout_s: 1.0,
            seed: 1,
            landmarks: TrueLandmarks::default(),
        }
    }
}

impl SimRangeSensorConfig {
    /// Checks every parameter.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first parameter out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("rate_hz", self.rate_hz, 1e-3, 1000.0)?;
        check_range("noise_std_m", self.noise_std_m, 0.0, 1e3)?;
        check_range("outlier_probability", self.outlier_probability, 0.0, 1.0)?;
        check_range("dropout_probability", self.dropout_probability, 0.0, 1.0)?;
        check_positive("max_range_m", self.max_range_m)?;
        check_positive("odom_timeout_s", self.odom_timeout_s)?;
        if self.sensor_offset_m.len() != 3 || self.sensor_offset_m.iter().any(|v| !v.is_finite())
        {
            return Err(ConfigError::invalid(
                "sensor_offset_m",
                &self.sensor_offset_m,
                "three finite numbers [x, y, z]",
            ));
        }
        if self.frame_id.is_empty() {
            return Err(ConfigError::invalid("frame_id", &self.frame_id, "non-empty"));
        }
        let ids = &self.landmarks.ids;
        if ids.is_empty() {
            return Err(ConfigError::invalid(
                "landmarks.ids",
                ids,
                "a non-empty list of landmark ids",
            ));
        }
        if let Some(bad) = ids.iter().find(|id| id.is_empty()) {
            return Err(ConfigError::invalid("landmarks.ids", bad, "non-empty ids"));
        }
        let mut sorted = ids.clone();
        sorted.sort();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(ConfigError::invalid("landmarks.ids", &w[0], "unique ids"));
        }
        let pos = &self.landmarks.positions_m;
        if pos.len() != 3 * ids.len() || pos.iter().any(|v| !v.is_finite()) {
            return Err(ConfigError::invalid(
                "landmarks.positions_m",
                pos,
                &format!("3 finite numbers (x, y, z) per id: {} values", 3 * ids.len()),
            ));
        }
        Ok(())
    }

    /// The true landmarks as (id, position in metres).
    pub fn true_landmarks(&self) -> Vec<(String, Point3<f64>)> {
        self.landmarks
            .ids
            .iter()
            .zip(self.landmarks.positions_m.chunks_exact(3))
            .map(|(id, p)| (id.clone(), Point3::new(p[0], p[1], p[2])))
            .collect()
    }

    /// The sensor's mount offset in the base frame, metres.
    pub fn sensor_offset(&self) -> Vector3<f64> {
        Vector3::new(
            self.sensor_offset_m[0],
            self.sensor_offset_m[1],
            self.sensor_offset_m[2],
        )
    }
}

/// One simulated range.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedRange {
    pub landmark_id: String,
    /// The reported range, metres.
    pub range_m: f64,
    /// The true distance sensor–landmark, metres.
    pub true_range_m: f64,
    /// Whether the range is an outlier rather than truth + Gaussian noise.
    pub is_outlier: bool,
}

/// The sensor: validated config plus its seeded noise generator.
#[derive(Debug, Clone)]
pub struct SimRangeSensor {
    config: SimRangeSensorConfig,
    landmarks: Vec<(String, Point3<f64>)>,
    noise: Normal<f64>,
    rng: StdRng,
}

impl SimRangeSensor {
    /// # Errors
    /// The config's [`SimRangeSensorConfig::validate`] error.
    pub fn new(config: SimRangeSensorConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let noise = Normal::new(0.0, config.noise_std_m)
            .map_err(|_| ConfigError::invalid("noise_std_m", config.noise_std_m, ">= 0"))?;
        Ok(Self {
            landmarks: config.true_landmarks(),
            rng: StdRng::seed_from_u64(config.seed as u64),
            noise,
            config,
        })
    }

    pub fn config(&self) -> &SimRangeSensorConfig {
        &self.config
    }

    /// Sensor position in the odometry frame for a robot pose (base in odom):
    /// `x = p + R · offset`.
    pub fn sensor_position(&self, base_in_odom: &Isometry3<f64>) -> Point3<f64> {
        base_in_odom * Point3::from(self.config.sensor_offset())
    }

    /// One measurement cycle from the robot pose: the ranges to every landmark that
    /// is in range and not dropped, in the configured landmark order.
    pub fn measure(&mut self, base_in_odom: &Isometry3<f64>) -> Vec<SimulatedRange> {
        let x = self.sensor_position(base_in_odom);
        let mut out = Vec::with_capacity(self.landmarks.len());
        for (id, y) in &self.landmarks {
            let d = (x - y).norm();
            if d > self.config.max_range_m {
                continue;
            }
            if self.rng.random::<f64>() < self.config.dropout_probability {
                continue;
            }
            let is_outlier = self.rng.random::<f64>() < self.config.outlier_probability;
            let range_m = if is_outlier {
                self.rng.random::<f64>() * self.config.max_range_m
            } else {
                (d + self.noise.sample(&mut self.rng)).max(0.0)
            };
            out.push(SimulatedRange {
                landmark_id: id.clone(),
                range_m,
                true_range_m: d,
                is_outlier,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Translation3, UnitQuaternion};

    fn config() -> SimRangeSensorConfig {
        SimRangeSensorConfig {
            landmarks: TrueLandmarks {
                ids: vec!["a".into(), "b".into()],
                positions_m: vec![4.7, -3.1, 0.0, 30.0, 0.0, 0.0],
            },
            ..Default::default()
        }
    }

    #[test]
    fn defaults_with_landmarks_are_valid() {
        config().validate().unwrap();
    }

    #[test]
    fn each_bad_parameter_is_named() {
        let cases: Vec<(&str, Box<dyn Fn(&mut SimRangeSensorConfig)>)> = vec![
            ("noise_std_m", Box::new(|c| c.noise_std_m = -0.1)),
            ("rate_hz", Box::new(|c| c.rate_hz = 0.0)),
            ("outlier_probability", Box::new(|c| c.outlier_probability = 1.5)),
            ("dropout_probability", Box::new(|c| c.dropout_probability = f64::NAN)),
            ("max_range_m", Box::new(|c| c.max_range_m = 0.0)),
            ("sensor_offset_m", Box::new(|c| c.sensor_offset_m = vec![0.0])),
            ("landmarks.ids", Box::new(|c| c.landmarks.ids.clear())),
            ("landmarks.ids", Box::new(|c| c.landmarks.ids[1] = "a".into())),
            ("landmarks.positions_m", Box::new(|c| c.landmarks.positions_m.pop().map(|_| ()).unwrap_or(()))),
            ("frame_id", Box::new(|c| c.frame_id.clear())),
            ("odom_timeout_s", Box::new(|c| c.odom_timeout_s = -1.0)),
        ];
        for (name, mutate) in cases {
            let mut c = config();
            mutate(&mut c);
            let err = c.validate().expect_err(name);
            match &err {
                ConfigError::Invalid { parameter, .. } => assert_eq!(parameter, name, "{err}"),
                other => panic!("{name}: {other}"),
            }
        }
    }

    #[test]
    fn mount_offset_is_rotated_by_the_robot_heading() {
        let mut c = config();
        c.sensor_offset_m = vec![1.0, 0.0, 0.5];
        let s = SimRangeSensor::new(c).unwrap();
        let pose = Isometry3::from_parts(
            Translation3::new(2.0, 3.0, 0.0),
            UnitQuaternion::from_euler_angles(0.0, 0.0, std::f64::consts::FRAC_PI_2),
        );
        let x = s.sensor_position(&pose);
        assert!((x - Point3::new(2.0, 4.0, 0.5)).norm() < 1e-12, "{x}");
    }

    /// Sample mean/std of z − d against N(0, σ²): 4000 draws give a standard error of
    /// σ/63 on the mean, so 5σ/63 bounds are loose enough never to flake with a seed.
    #[test]
    fn noise_statistics_match_the_configured_sigma() {
        let mut c = config();
        c.noise_std_m = 0.7;
        c.landmarks.positions_m[3] = 60.0; // far from 0: no clamping
        let mut s = SimRangeSensor::new(c).unwrap();
        let pose = Isometry3::identity();
        let errs: Vec<f64> = (0..4000)
            .flat_map(|_| s.measure(&pose))
            .map(|r| r.range_m - r.true_range_m)
            .collect();
        assert_eq!(errs.len(), 8000);
        let n = errs.len() as f64;
        let mean = errs.iter().sum::<f64>() / n;
        let std = (errs.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        assert!(mean.abs() < 5.0 * 0.7 / n.sqrt(), "mean {mean}");
        assert!((std - 0.7).abs() < 0.05, "std {std}");
    }

    #[test]
    fn max_range_dropouts_and_outliers() {
        let mut c = config();
        c.max_range_m = 20.0; // landmark b at 30 m is out of range
        c.dropout_probability = 0.25;
        c.outlier_probability = 0.2;
        let mut s = SimRangeSensor::new(c).unwrap();
        let pose = Isometry3::identity();
        let cycles = 4000;
        let all: Vec<_> = (0..cycles).flat_map(|_| s.measure(&pose)).collect();
        assert!(all.iter().all(|r| r.landmark_id == "a"));
        let kept = all.len() as f64 / cycles as f64;
        assert!((kept - 0.75).abs() < 0.03, "kept {kept}");
        let outliers = all.iter().filter(|r| r.is_outlier).count() as f64 / all.len() as f64;
        assert!((outliers - 0.2).abs() < 0.03, "outliers {outliers}");
        assert!(all.iter().all(|r| r.range_m >= 0.0 && r.range_m <= 20.0 + 5.0));
    }

    #[test]
    fn same_seed_same_ranges() {
        let pose = Isometry3::identity();
        let mut a = SimRangeSensor::new(config()).unwrap();
        let mut b = SimRangeSensor::new(config()).unwrap();
        for _ in 0..10 {
            assert_eq!(a.measure(&pose), b.measure(&pose));
        }
    }
}
