//! Kinematic robot for the closed-loop simulation: drives straight toward its goal at
//! up to `max_speed_mps`, facing the direction of travel, and stops within
//! `goal_tolerance_m`. The goal is steered to with the *true* pose (as if the robot
//! followed it perfectly), whatever its odometry says. Goals come in `odom_frame_id`
//! or in `map_frame_id` (what the node publishes with `localizer.odometry: drifting`);
//! both are taken as coordinates of the true pose's frame, which for the map frame is
//! exact here: the map frame is the odometry frame at the first odometry message, and
//! the odometry starts at the true pose.
//!
//! Its odometry is the true pose, or, with a gyro bias b (`gyro_bias_rad_per_s`) or a
//! wheel scale error ε (`wheel_scale_error`), dead reckoning from the true start pose
//! over erroneous increments: each step the true pose moves by (t, Δθ) in the robot
//! frame, the odometry by
//!
//! ```text
//! P_{k+1} = P_k ⊕ ((1 + ε)·t, Δθ + b·dt),     P_0 = X_0
//! ```
//!
//! so odometry distance = (1 + ε)·true distance and the heading error grows by b per
//! second, also while the robot stands still (a gyro integrates its bias at rest).
//! These are the systematic errors `localizer.odometry: drifting` estimates (the bias)
//! or absorbs (the scale). On top, optionally, a position drift that grows like a
//! random walk with the distance travelled:
//! `e_{k+1} = e_k + N(0, (drift_std_m_per_sqrt_m)² · Δs · I)`, Δs the step length (m),
//! added to the odometry's position.

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
    /// A goal in this frame is accepted too (the drifting localizer's map frame).
    pub map_frame_id: String,
    /// Odometry drift, m per √m travelled (0 = perfect odometry).
    pub drift_std_m_per_sqrt_m: f64,
    /// Seed of the drift.
    pub seed: i64,
    /// Gyro bias b, rad/s: the odometry's heading turns b·dt more than the robot each
    /// step, so its heading error is b·t after t seconds (0 = none). Allowed [−1, 1].
    pub gyro_bias_rad_per_s: f64,
    /// Wheel scale error ε, dimensionless: odometry distance = (1 + ε)·true distance
    /// (0 = none; 0.02 = wheels 2 % smaller than the odometry assumes). Allowed
    /// [−0.5, 0.5].
    pub wheel_scale_error: f64,
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
            map_frame_id: "map".into(),
            drift_std_m_per_sqrt_m: 0.0,
            seed: 1,
            gyro_bias_rad_per_s: 0.0,
            wheel_scale_error: 0.0,
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
        check_range("gyro_bias_rad_per_s", self.gyro_bias_rad_per_s, -1.0, 1.0)?;
        check_range("wheel_scale_error", self.wheel_scale_error, -0.5, 0.5)?;
        if self.initial_pose.len() != 3 || self.initial_pose.iter().any(|v| !v.is_finite()) {
            return Err(ConfigError::invalid("initial_pose", &self.initial_pose, "[x, y, yaw], finite"));
        }
        for (name, v) in [
            ("odom_frame_id", &self.odom_frame_id),
            ("base_frame_id", &self.base_frame_id),
            ("map_frame_id", &self.map_frame_id),
        ] {
            if v.is_empty() {
                return Err(ConfigError::invalid(name, v, "non-empty"));
            }
        }
        Ok(())
    }

    /// True for a goal's `header.frame_id` the robot follows: empty, `odom_frame_id`
    /// or `map_frame_id`.
    pub fn accepts_goal_frame(&self, frame_id: &str) -> bool {
        frame_id.is_empty() || frame_id == self.odom_frame_id || frame_id == self.map_frame_id
    }

    /// True with a gyro bias or a wheel scale error: the odometry is dead reckoning
    /// rather than the true pose.
    pub fn has_systematic_error(&self) -> bool {
        self.gyro_bias_rad_per_s != 0.0 || self.wheel_scale_error != 0.0
    }
}

/// `a` wrapped to [−π, π).
fn wrap_angle(a: f64) -> f64 {
    (a + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU) - std::f64::consts::PI
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
    /// Dead-reckoned odometry (without the random-walk drift); equal to `truth`
    /// without a systematic error.
    odom: Pose2,
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
        let start = Pose2 { position: Vector2::new(p[0], p[1]), yaw: p[2] };
        Ok(Self {
            truth: start,
            odom: start,
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

    /// Advances by `dt_s` seconds toward the goal; the odometry follows (module doc).
    pub fn step(&mut self, dt_s: f64) {
        let before = self.truth;
        let moved = self.drive(dt_s);
        if self.config.has_systematic_error() {
            self.dead_reckon(&before, dt_s);
        }
        if let Some(step) = moved {
            self.add_drift(step);
        }
    }

    /// Moves the true pose toward the goal; the step length (m), or `None` without a
    /// goal or within `goal_tolerance_m` of it.
    fn drive(&mut self, dt_s: f64) -> Option<f64> {
        let goal = self.goal?;
        let to_goal = goal - self.truth.position;
        let dist = to_goal.norm();
        if dist <= self.config.goal_tolerance_m {
            return None;
        }
        let step = (self.config.max_speed_mps * dt_s).min(dist);
        let dir = to_goal / dist;
        self.truth.position += dir * step;
        self.truth.yaw = dir.y.atan2(dir.x);
        Some(step)
    }

    /// P ← P ⊕ ((1 + ε)·t, Δθ + b·dt), (t, Δθ) the true step from `before` in its
    /// robot frame.
    fn dead_reckon(&mut self, before: &Pose2, dt_s: f64) {
        let (sin, cos) = before.yaw.sin_cos();
        let d = self.truth.position - before.position;
        let t = Vector2::new(cos * d.x + sin * d.y, -sin * d.x + cos * d.y) * (1.0 + self.config.wheel_scale_error);
        let dth = wrap_angle(self.truth.yaw - before.yaw) + self.config.gyro_bias_rad_per_s * dt_s;
        let (sin, cos) = self.odom.yaw.sin_cos();
        self.odom.position += Vector2::new(cos * t.x - sin * t.y, sin * t.x + cos * t.y);
        self.odom.yaw = wrap_angle(self.odom.yaw + dth);
    }

    /// The random-walk drift over a step of `step` metres.
    fn add_drift(&mut self, step: f64) {
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

    /// The odometry pose: the true pose, or the dead-reckoned one with a systematic
    /// error, plus the random-walk drift.
    pub fn odometry_pose(&self) -> Pose2 {
        let base = if self.config.has_systematic_error() { self.odom } else { self.truth };
        Pose2 { position: base.position + self.drift, yaw: base.yaw }
    }

    /// The speed the odometry reports for a true speed `true_speed_mps` (m/s): the
    /// wheels' (1 + ε)·v.
    pub fn odometry_speed_mps(&self, true_speed_mps: f64) -> f64 {
        (1.0 + self.config.wheel_scale_error) * true_speed_mps
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
        for bias in [1.5, -2.0, f64::NAN, f64::INFINITY] {
            let c = SimRobotConfig { gyro_bias_rad_per_s: bias, ..Default::default() };
            assert!(c.validate().unwrap_err().to_string().contains("`gyro_bias_rad_per_s`"), "{bias}");
        }
        for eps in [-0.6, 0.75, f64::NAN] {
            let c = SimRobotConfig { wheel_scale_error: eps, ..Default::default() };
            assert!(c.validate().unwrap_err().to_string().contains("`wheel_scale_error`"), "{eps}");
        }
        let c = SimRobotConfig { gyro_bias_rad_per_s: -0.01, wheel_scale_error: -0.02, ..Default::default() };
        c.validate().unwrap();
    }

    #[test]
    fn goals_in_the_odometry_or_map_frame_are_accepted() {
        let c = SimRobotConfig::default();
        assert!(c.accepts_goal_frame("") && c.accepts_goal_frame("odom") && c.accepts_goal_frame("map"));
        assert!(!c.accepts_goal_frame("base_link"));
        let c = SimRobotConfig { map_frame_id: String::new(), ..Default::default() };
        assert!(c.validate().unwrap_err().to_string().contains("`map_frame_id`"));
    }

    fn driving_east(gyro_bias_rad_per_s: f64, wheel_scale_error: f64) -> SimRobot {
        let mut r = SimRobot::new(SimRobotConfig {
            max_speed_mps: 1.0,
            gyro_bias_rad_per_s,
            wheel_scale_error,
            ..Default::default()
        })
        .unwrap();
        r.set_goal(Vector2::new(1000.0, 0.0));
        r
    }

    #[test]
    fn wheel_scale_error_scales_the_odometry_distance() {
        // Straight east for d = 10 m: odometry (1 + ε)·d east, heading exact.
        for eps in [0.03, -0.05] {
            let mut r = driving_east(0.0, eps);
            for _ in 0..100 {
                r.step(0.1);
            }
            let (o, t) = (r.odometry_pose(), r.true_pose());
            assert!((t.position - Vector2::new(10.0, 0.0)).norm() < 1e-12);
            assert!((o.position - Vector2::new((1.0 + eps) * 10.0, 0.0)).norm() < 1e-12, "{:?}", o.position);
            assert_eq!(o.yaw, 0.0);
            assert!((r.odometry_speed_mps(1.0) - (1.0 + eps)).abs() < 1e-15);
        }
    }

    #[test]
    fn gyro_bias_turns_the_odometry_heading_linearly() {
        // Straight east at v = 1 m/s for t = 10 s in N steps of dt: odometry heading
        // b·t; step k goes v·dt along heading α·k (α = b·dt, the heading is updated
        // after the step), so the position is v·dt·Σ_{k<N} e^{iαk}
        // = v·dt·(1 − e^{iαN}) / (1 − e^{iα}) in complex notation.
        let (b, dt, n) = (0.02, 0.1, 100);
        let mut r = driving_east(b, 0.0);
        for k in 1..=n {
            r.step(dt);
            assert!((r.odometry_pose().yaw - b * dt * k as f64).abs() < 1e-12, "k = {k}");
        }
        assert_eq!(r.true_pose().yaw, 0.0);
        let a = b * dt;
        let (num_re, num_im) = (1.0 - (a * n as f64).cos(), -(a * n as f64).sin());
        let (den_re, den_im) = (1.0 - a.cos(), -a.sin());
        let den = den_re * den_re + den_im * den_im;
        let want = Vector2::new(num_re * den_re + num_im * den_im, num_im * den_re - num_re * den_im) * (dt / den);
        assert!((r.odometry_pose().position - want).norm() < 1e-9, "{:?} vs {want:?}", r.odometry_pose().position);
        // 10 m along an arc turning 0.2 rad ends about 1 m north of the true path.
        assert!((want.y - 1.0).abs() < 0.05, "{want:?}");
    }

    #[test]
    fn gyro_bias_turns_the_odometry_while_standing_still() {
        let mut r = SimRobot::new(SimRobotConfig { gyro_bias_rad_per_s: -0.01, ..Default::default() }).unwrap();
        for _ in 0..500 {
            r.step(0.02);
        }
        assert!((r.odometry_pose().yaw + 0.1).abs() < 1e-12);
        assert_eq!(r.odometry_pose().position, r.true_pose().position);
        assert_eq!(r.true_pose().yaw, 0.0);
    }

    #[test]
    fn both_errors_compose_and_the_truth_is_untouched() {
        // The truth is the same whatever the odometry error.
        let (mut a, mut b) = (driving_east(0.01, 0.02), driving_east(0.0, 0.0));
        a.set_goal(Vector2::new(3.0, 4.0));
        b.set_goal(Vector2::new(3.0, 4.0));
        for _ in 0..30 {
            a.step(0.1);
            b.step(0.1);
        }
        assert_eq!(a.true_pose(), b.true_pose());
        assert_eq!(b.odometry_pose(), b.true_pose());
        // 3 m along the heading atan2(4, 3), turned by 0.01·3 s: heading error b·t,
        // distance (1 + ε)·3 m (the first step turns from yaw 0; the bias adds after it).
        let o = a.odometry_pose();
        assert!((o.yaw - (4f64.atan2(3.0) + 0.03)).abs() < 1e-12, "{}", o.yaw);
        assert!(((o.position).norm() - 1.02 * 3.0).abs() < 0.01, "{:?}", o.position);
    }
}
