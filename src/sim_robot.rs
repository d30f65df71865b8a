//! Kinematic robot for the closed-loop simulation: drives straight toward its goal at
//! up to `max_speed_mps`, facing the direction of travel, and stops within
//! `goal_tolerance_m`. Its odometry is the true pose plus, optionally, a drift that
//! grows like a random walk with the distance travelled:
//! `e_{k+1} = e_k + N(0, (drift_std_m_per_sqrt_m)² · Δs · I)`, Δs the step length (m).

use crate::config::{check_positive, check_range, ConfigError};
use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector2};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// Parameters of the `sim_robot` node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimRobotConfig {
    /// Odometry publication rate, Hz.
    pub rate_hz: f64,
    /// Maximum speed, m/s.
    pub max_speed_mps: f64,
    /// Distance at which a goal counts as reached, metres.
    pub goal_tolerance_m: f64,
    /// Start pose (x m, y m, yaw rad) in the odometry frame.
    pub initial_pose: Vec<f64>,
    /// `header.frame_id` of the odometry.
    pub odom_frame_id: String,
    /// `child_frame_id` of the odometry.
    pub base_frame_id: String,
    /// Odometry drift, m per √m travelled (0 = perfect odometry).
    pub drift_std_m_per_sqrt_m: f64,
    /// Seed of the drift.
    pub seed: i64,
}

impl Default for SimRobotConfig {
    fn default() -> Self {
        Self {
            rate_hz: 50.0,
            max_speed_mps: 0.5,
            goal_tolerance_m: 0.05,
            initial_pose: vec![0.0, 0.0, 0.0],
            odom_frame_id: "odom".into(),
            base_frame_id: "base_link".into(),
            drift_std_m_per_sqrt_m: 0.0,
            seed: 1,
        }
    }
}

impl SimRobotConfig {
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first bad parameter.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("rate_hz", self.rate_hz, 1.0, 1000.0)?;
        check_range("max_speed_mps", self.max_speed_mps, 0.0, 100.0)?;
        check_positive("goal_tolerance_m", self.goal_tolerance_m)?;
        check_range("drift_std_m_per_sqrt_m", self.drift_std_m_per_sqrt_m, 0.0, 10.0)?;
        if self.initial_pose.len() != 3 || self.initial_pose.iter().any(|v| !v.is_finite()) {
            return Err(ConfigError::invalid("initial_pose", &self.initial_pose, "[x, y, yaw], finite"));
        }
        for (name, v) in [("odom_frame_id", &self.odom_frame_id), ("base_frame_id", &self.base_frame_id)] {
            if v.is_empty() {
                return Err(ConfigError::invalid(name, v, "non-empty"));
            }
        }
        Ok(())
    }
}

/// Planar pose: position (m) and heading (rad).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose2 {
    pub position: Vector2<f64>,
    pub yaw: f64,
}

impl Pose2 {
    pub fn isometry(&self) -> Isometry3<f64> {
        Isometry3::from_parts(
            Translation3::new(self.position.x, self.position.y, 0.0),
            UnitQuaternion::from_euler_angles(0.0, 0.0, self.yaw),
        )
    }
}

/// The simulated robot.
#[derive(Debug, Clone)]
pub struct SimRobot {
    config: SimRobotConfig,
    truth: Pose2,
    drift: Vector2<f64>,
    goal: Option<Vector2<f64>>,
    rng: StdRng,
}

impl SimRobot {
    /// # Errors
    /// The config's validation error.
    pub fn new(config: SimRobotConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let p = &config.initial_pose;
        Ok(Self {
            truth: Pose2 { position: Vector2::new(p[0], p[1]), yaw: p[2] },
            drift: Vector2::zeros(),
            goal: None,
            rng: StdRng::seed_from_u64(config.seed as u64),
            config,
        })
    }

    pub fn config(&self) -> &SimRobotConfig {
        &self.config
    }

    /// Sets the goal position (m); non-finite goals are ignored and return false.
    pub fn set_goal(&mut self, goal: Vector2<f64>) -> bool {
        if goal.iter().all(|v| v.is_finite()) {
            self.goal = Some(goal);
            true
        } else {
            false
        }
    }

    pub fn goal(&self) -> Option<Vector2<f64>> {
        self.goal
    }

    /// Advances by `dt_s` seconds toward the goal.
    pub fn step(&mut self, dt_s: f64) {
        let Some(goal) = self.goal else { return };
        let to_goal = goal - self.truth.position;
        let dist = to_goal.norm();
        if dist <= self.config.goal_tolerance_m {
            return;
        }
        let step = (self.config.max_speed_mps * dt_s).min(dist);
        let dir = to_goal / dist;
        self.truth.position += dir * step;
        self.truth.yaw = dir.y.atan2(dir.x);
        if self.config.drift_std_m_per_sqrt_m > 0.0 {
            let s = self.config.drift_std_m_per_sqrt_m * step.sqrt();
            let nx: f64 = StandardNormal.sample(&mut self.rng);
            let ny: f64 = StandardNormal.sample(&mut self.rng);
            self.drift += Vector2::new(nx, ny) * s;
        }
    }

    /// The true pose.
    pub fn true_pose(&self) -> Pose2 {
        self.truth
    }

    /// The odometry pose (true pose plus drift).
    pub fn odometry_pose(&self) -> Pose2 {
        Pose2 { position: self.truth.position + self.drift, yaw: self.truth.yaw }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drives_to_the_goal_at_max_speed_and_stops() {
        let mut r = SimRobot::new(SimRobotConfig { max_speed_mps: 1.0, ..Default::default() }).unwrap();
        r.set_goal(Vector2::new(3.0, 4.0));
        for _ in 0..25 {
            r.step(0.1);
        }
        // 2.5 m along the 5 m line to the goal.
        assert!((r.true_pose().position - Vector2::new(1.5, 2.0)).norm() < 1e-12);
        assert!((r.true_pose().yaw - 4f64.atan2(3.0)).abs() < 1e-12);
        for _ in 0..100 {
            r.step(0.1);
        }
        assert!((r.true_pose().position - Vector2::new(3.0, 4.0)).norm() < 1e-12);
        assert_eq!(r.odometry_pose(), r.true_pose());
    }

    #[test]
    fn drift_grows_like_a_random_walk() {
        // After L metres the drift per axis has variance c²·L: check over many robots.
        let (c, n) = (0.1, 400);
        let mut sq = 0.0;
        for seed in 0..n {
            let mut r = SimRobot::new(SimRobotConfig {
                max_speed_mps: 1.0,
                drift_std_m_per_sqrt_m: c,
                seed,
                ..Default::default()
            })
            .unwrap();
            r.set_goal(Vector2::new(100.0, 0.0));
            for _ in 0..100 {
                r.step(0.1); // 10 m
            }
            sq += (r.odometry_pose().position - r.true_pose().position).norm_squared();
        }
        let per_axis = sq / (2.0 * n as f64);
        // Expected c²·10 = 0.1; the estimate over 800 axis samples has ~5 % std. error.
        assert!((per_axis - 0.1).abs() < 0.02, "{per_axis}");
    }

    #[test]
    fn rejects_bad_parameters_by_name() {
        let c = SimRobotConfig { initial_pose: vec![0.0], ..Default::default() };
        assert!(c.validate().unwrap_err().to_string().contains("initial_pose"));
        let c = SimRobotConfig { rate_hz: 0.0, ..Default::default() };
        assert!(c.validate().unwrap_err().to_string().contains("rate_hz"));
    }
}
