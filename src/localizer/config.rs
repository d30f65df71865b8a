//! The localiser's parameters (`localizer.*` of the node config) and their checks.

use crate::config::{check_integer, check_range, ConfigError};
use super::drift::OdometryErrorConfig;
use crate::estimator::{CalibrationPrior, EstimatorConfig, GaussianBelief, Method};
use nalgebra::{Matrix2, Vector2, Vector3};
use serde::{Deserialize, Serialize};

/// What to do with a range to a landmark id that has no configured prior.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownLandmarkPolicy {
    /// Start it from `default_prior`.
    #[default]
    DefaultPrior,
    /// Start it from its first ranges ([`InitialisationGrid`], see the module doc).
    Initialise,
    /// Reject its ranges (reason `unknown_landmark`).
    Reject,
}

/// A Gaussian prior over a landmark's position in the odometry frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriorConfig {
    /// Mean (x, y), metres.
    pub mean_m: Vec<f64>,
    /// Covariance, row-major 2×2, m².
    pub cov_m2: Vec<f64>,
}

impl Default for PriorConfig {
    fn default() -> Self {
        Self {
            mean_m: vec![0.0, 0.0],
            cov_m2: vec![100.0, 0.0, 0.0, 100.0],
        }
    }
}

/// Per-landmark priors as parallel flat arrays (what ROS parameters can hold).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriorsConfig {
    /// Landmark ids.
    pub ids: Vec<String>,
    /// Means, metres: x, y per id.
    pub means_m: Vec<f64>,
    /// Covariances, m²: row-major 2×2 (4 numbers) per id.
    pub covs_m2: Vec<f64>,
    /// With `dimension: 3`: each id's height prior (z mean, metres, odometry frame)...
    /// (empty: `height_prior` for every id).
    pub height_means_m: Vec<f64>,
    /// ...and its standard deviation, metres (empty, or one per id).
    pub height_stds_m: Vec<f64>,
}

/// A Gaussian prior on a landmark's height z (odometry frame, metres), independent of
/// its (x, y): N(mean_m, std_m²).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeightPriorConfig {
    /// Mean height, metres.
    pub mean_m: f64,
    /// Standard deviation, metres.
    pub std_m: f64,
}

impl Default for HeightPriorConfig {
    /// Anchors within a few metres of the odometry frame's z = 0 (a ground robot's
    /// floor): N(0, (3 m)²), either side of the sensor.
    fn default() -> Self {
        Self { mean_m: 0.0, std_m: 3.0 }
    }
}

/// How a landmark without a prior is started (`unknown_landmarks: initialise`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InitialisationConfig {
    /// The landmark is within this distance of the sensor position of its first
    /// range, metres (the grid's extent).
    pub region_radius_m: f64,
    /// Grid cell side at full resolution, metres. A grid starts on cells 2^ℓ times
    /// larger (at most `estimator::initialisation::MAX_ACTIVE_CELLS` of them) and is
    /// refined to this as its posterior narrows.
    pub cell_m: f64,
    /// Tracking starts when the grid posterior's largest standard deviation is at
    /// most this, metres...
    pub max_std_m: f64,
    /// ...and at least this many ranges were used.
    pub min_ranges: u32,
}

impl Default for InitialisationConfig {
    fn default() -> Self {
        Self { region_radius_m: 100.0, cell_m: 0.5, max_std_m: 2.0, min_ranges: 5 }
    }
}

/// Online range calibration z = s·d + b + w (see the module doc).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalibrationConfig {
    /// Estimate the sensor's (s, b) (module doc); off: s = 1, b = 0 exactly.
    pub enabled: bool,
    /// Prior mean of the range scale s, dimensionless.
    pub scale_prior: f64,
    /// Prior standard deviation of s, dimensionless.
    pub scale_std: f64,
    /// Prior mean of the range offset b, metres.
    pub offset_prior_m: f64,
    /// Prior standard deviation of b, metres.
    pub offset_std_m: f64,
}

impl Default for CalibrationConfig {
    fn default() -> Self {
        Self { enabled: false, scale_prior: 1.0, scale_std: 0.1, offset_prior_m: 0.0, offset_std_m: 1.0 }
    }
}

impl CalibrationConfig {
    /// The prior as the estimator takes it ([`CalibrationPrior::EXACT`] when off); as a
    /// Gaussian over (s, b): [`CalibrationPrior::belief`].
    pub fn prior(&self) -> CalibrationPrior {
        if self.enabled {
            CalibrationPrior {
                scale: self.scale_prior,
                scale_std: self.scale_std,
                offset_m: self.offset_prior_m,
                offset_std_m: self.offset_std_m,
            }
        } else {
            CalibrationPrior::EXACT
        }
    }
}

/// How the odometry's pose is treated (`localizer.odometry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OdometryMode {
    /// The odometry pose is the truth (a robot localised by a good stack, or ground
    /// truth): landmarks live in the odometry frame. A filled
    /// `nav_msgs/Odometry.pose.covariance` still inflates each range's noise by the
    /// sensor position's uncertainty along the line of sight.
    #[default]
    Exact,
    /// The odometry drifts: its error (the odom→map correction and the gyro bias) is
    /// estimated jointly with the landmarks (range-only SLAM, [`super::slam`]);
    /// landmarks live in `map_frame_id`.
    Drifting,
}

/// Plausibility bounds on odometry messages (`localizer.odometry_gate`): a message
/// outside them is rejected and counted, and never becomes the newest pose, so one bad
/// message cannot move a landmark or make later valid odometry unacceptable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OdometryGateConfig {
    /// Largest plausible base speed, m/s: a pose further than
    /// max_speed_mps·dt + jump_slack_m from the previous one is a jump (`odom_jump`).
    /// Default 10 (faster than ground robots drive; a bound on nonsense, not a speed
    /// limit). 0 turns the speed and turn checks off.
    pub max_speed_mps: f64,
    /// Largest plausible yaw rate, rad/s (with 0.5 rad of slack). Default 10 (570°/s).
    pub max_yaw_rate_rad_s: f64,
    /// Slack of the speed check, m: covers timestamp jitter at small dt. Default 0.5.
    pub jump_slack_m: f64,
    /// Consecutive jumps, consistent with each other, after which the new poses are
    /// accepted as a discontinuity (a relocalised or restarted odometry): the history
    /// before it is dropped (no interpolation across it), and with drifting odometry the
    /// step is not propagated. Default 10.
    pub accept_after: u32,
    /// Odometry stamped more than this after the node's clock is rejected
    /// (`odom_stamp_future`), s. Default 60 (clock offsets between machines are
    /// milliseconds with NTP, seconds without). 0 = off. Not checked while the clock
    /// is 0 (sim time before the first /clock).
    pub max_future_s: f64,
}

impl Default for OdometryGateConfig {
    fn default() -> Self {
        Self { max_speed_mps: 10.0, max_yaw_rate_rad_s: 10.0, jump_slack_m: 0.5, accept_after: 10, max_future_s: 60.0 }
    }
}

/// Periodic relinearisation of a tracking landmark ([`Estimator::refine`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelinearisationConfig {
    /// Re-solve every this many fused ranges (0 = never: purely sequential).
    pub every_ranges: u32,
    /// Ranges kept per landmark; a full window is folded into the belief (its anchor).
    pub max_ranges: u32,
}

impl Default for RelinearisationConfig {
    fn default() -> Self {
        Self { every_ranges: 0, max_ranges: 1000 }
    }
}

/// The batch re-solve of `odometry: drifting` (`localizer::smoother`): every
/// `period_s` of odometry time the whole recorded history (odometry and fused ranges)
/// is solved as one range-only SLAM problem and the joint state is reset to its
/// solution, so what is learnt later (a gyro bias, the map) corrects the early
/// trajectory and the landmarks mapped from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmootherConfig {
    /// Re-solve (only with `odometry: drifting`; ignored with `exact`).
    pub enabled: bool,
    /// Odometry time between re-solves, s.
    pub period_s: f64,
    /// Longest knot period of the odometry error's piecewise-linear heading and
    /// translation, s: halved up to 3 times while the path's deviation between knots
    /// would outweigh what an interval's ranges resolve (noisy odometry), doubled to
    /// keep ≤ `max_knots` (`smoother::knot_period_s`).
    pub knot_period_s: f64,
    /// Most knots (the knot period grows beyond): the solve's memory O((4·max_knots)²),
    /// its work O(ranges·max_knots² + (4·max_knots)³) per iteration.
    pub max_knots: u32,
    /// Most Levenberg–Marquardt iterations per solve.
    pub max_iterations: u32,
    /// Most odometry samples and ranges kept: a full list drops every other entry.
    pub max_odometry_samples: u32,
    pub max_ranges: u32,
}

impl Default for SmootherConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            period_s: 30.0,
            knot_period_s: 20.0,
            max_knots: 128,
            max_iterations: 10,
            max_odometry_samples: 20_000,
            max_ranges: 5_000,
        }
    }
}

/// Configuration of the localiser (the node's estimation parameters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalizerConfig {
    /// Expected `header.frame_id` of odometry; "" accepts any.
    pub odom_frame_id: String,
    /// Expected `header.frame_id` of ranges; "" accepts any.
    pub sensor_frame_id: String,
    /// The robot's base frame (the odometry's `child_frame_id`): a range's sensor
    /// mount is the `/tf_static` transform from it to the range's `header.frame_id`
    /// when the tree connects them (`localizer::mount`), else `sensor_offset_m`.
    pub base_frame_id: String,
    /// Sensor position in the robot base frame (x, y, z), metres, for a range whose
    /// frame the static TF tree does not connect to `base_frame_id`.
    pub sensor_offset_m: Vec<f64>,
    /// Range noise σ used when a measurement's variance is 0, metres.
    pub default_noise_std_m: f64,
    /// Ranges above this are rejected, metres.
    pub max_range_m: f64,
    /// Odometry history kept for interpolation, seconds.
    pub odom_buffer_s: f64,
    /// How far before the oldest buffered odometry a range stamp may be, seconds.
    pub odom_tolerance_s: f64,
    /// A range stamped up to this much after the newest odometry waits for it, seconds.
    pub odom_wait_s: f64,
    /// Reject a range more than this many predicted standard deviations from every
    /// belief component (0 = no gate).
    pub innovation_gate_sigma: f64,
    /// Ranges to ids without a prior: `default_prior`, `initialise` or `reject`.
    pub unknown_landmarks: UnknownLandmarkPolicy,
    /// Most landmarks held (configured priors included); ranges to further new ids are
    /// rejected (`landmark_cap`), so a publisher inventing ids cannot exhaust memory.
    pub max_landmarks: u32,
    /// How `initialise` starts a landmark.
    pub initialisation: InitialisationConfig,
    /// Online range scale/offset estimation.
    pub calibration: CalibrationConfig,
    /// Periodic relinearisation of tracking landmarks.
    pub relinearisation: RelinearisationConfig,
    /// Prior for ids not in `priors`.
    pub default_prior: PriorConfig,
    /// Per-landmark priors.
    pub priors: PriorsConfig,
    /// The estimator and its settings.
    pub estimator: EstimatorConfig,
    /// `exact` or `drifting` ([`OdometryMode`]).
    pub odometry: OdometryMode,
    /// The odometry error model of `odometry: drifting` (per metre, per radian, gyro
    /// bias; each value documented in [`OdometryErrorConfig`]).
    pub odometry_error: OdometryErrorConfig,
    /// Plausibility bounds on odometry messages.
    pub odometry_gate: OdometryGateConfig,
    /// The batch re-solve of `odometry: drifting`.
    pub smoother: SmootherConfig,
    /// Frame of the landmarks and the corrected robot pose with `odometry: drifting`
    /// (REP-105 `map`; the node publishes `map_frame_id → odom` on `/tf`).
    pub map_frame_id: String,
    /// Landmark positions: 2 = (x, y), ranges taken as distances in the plane; 3 = (x,
    /// y, z), ranges as 3-D distances from the sensor's 3-D position (odometry pose ⊕
    /// mount), each landmark's height from `height_prior` (or `priors.height_*`).
    pub dimension: u32,
    /// With `dimension: 3`, the height prior of every landmark without its own.
    pub height_prior: HeightPriorConfig,
}

impl Default for LocalizerConfig {
    fn default() -> Self {
        Self {
            odom_frame_id: String::new(),
            sensor_frame_id: String::new(),
            base_frame_id: "base_link".into(),
            sensor_offset_m: vec![0.0, 0.0, 0.0],
            default_noise_std_m: 0.5,
            max_range_m: 200.0,
            odom_buffer_s: 10.0,
            odom_tolerance_s: 0.1,
            odom_wait_s: 1.0,
            innovation_gate_sigma: 0.0,
            unknown_landmarks: UnknownLandmarkPolicy::DefaultPrior,
            max_landmarks: 1000,
            initialisation: InitialisationConfig::default(),
            calibration: CalibrationConfig::default(),
            relinearisation: RelinearisationConfig::default(),
            default_prior: PriorConfig::default(),
            priors: PriorsConfig::default(),
            estimator: EstimatorConfig::default(),
            odometry: OdometryMode::Exact,
            odometry_error: OdometryErrorConfig::default(),
            odometry_gate: OdometryGateConfig::default(),
            smoother: SmootherConfig::default(),
            map_frame_id: "map".into(),
            dimension: 2,
            height_prior: HeightPriorConfig::default(),
        }
    }
}

fn prior_belief(parameter: &str, mean: &[f64], cov: &[f64]) -> Result<GaussianBelief<2>, ConfigError> {
    // Beyond 1e7 m (a continent) or a 1e7 m standard deviation the numbers stop being
    // a landmark prior and start losing precision in every update.
    if mean.len() != 2 || mean.iter().any(|v| !v.is_finite() || v.abs() > 1e7) {
        return Err(ConfigError::invalid(
            &format!("{parameter} mean"),
            mean,
            "two finite numbers within 1e7 (x, y) in metres",
        ));
    }
    let symmetric = cov.len() == 4
        && (cov[1] - cov[2]).abs() <= 1e-9 * (cov[0].abs() + cov[3].abs())
        && cov.iter().all(|v| v.abs() <= 1e14);
    let belief = if symmetric {
        GaussianBelief::new(
            Vector2::new(mean[0], mean[1]),
            Matrix2::new(cov[0], cov[1], cov[2], cov[3]),
        )
        .ok()
        .filter(|b| b.is_publishable())
    } else {
        None
    };
    belief.ok_or_else(|| {
        ConfigError::invalid(
            &format!("{parameter} covariance"),
            cov,
            "a symmetric positive-definite 2x2 matrix, row-major, m^2, entries within 1e14",
        )
    })
}

impl LocalizerConfig {
    /// Checks every parameter, including the estimator's.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first parameter out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.sensor_offset_m.len() != 3 || self.sensor_offset_m.iter().any(|v| !v.is_finite()) {
            return Err(ConfigError::invalid(
                "sensor_offset_m",
                &self.sensor_offset_m,
                "three finite numbers [x, y, z] in metres",
            ));
        }
        if self.sensor_offset_m.iter().any(|v| v.abs() > 100.0) {
            return Err(ConfigError::invalid("sensor_offset_m", &self.sensor_offset_m, "within 100 m of the base"));
        }
        check_range("default_noise_std_m", self.default_noise_std_m, 1e-6, 1e3)?;
        check_range("max_range_m", self.max_range_m, 1e-3, 1e6)?;
        check_range("odom_buffer_s", self.odom_buffer_s, 0.1, 3600.0)?;
        check_range("odom_tolerance_s", self.odom_tolerance_s, 0.0, 10.0)?;
        check_range("odom_wait_s", self.odom_wait_s, 0.0, 60.0)?;
        check_range("innovation_gate_sigma", self.innovation_gate_sigma, 0.0, 1e3)?;
        check_integer("max_landmarks", self.max_landmarks, 1, 100_000)?;
        if self.priors.ids.len() > self.max_landmarks as usize {
            return Err(ConfigError::invalid(
                "max_landmarks",
                self.max_landmarks,
                &format!(">= the number of priors.ids ({})", self.priors.ids.len()),
            ));
        }
        let init = &self.initialisation;
        check_range("initialisation.region_radius_m", init.region_radius_m, 1e-3, 1e5)?;
        check_range("initialisation.cell_m", init.cell_m, init.region_radius_m / 2000.0, init.region_radius_m)?;
        check_range("initialisation.max_std_m", init.max_std_m, init.cell_m, 1e5)?;
        check_integer("initialisation.min_ranges", init.min_ranges, 1, 1_000_000)?;
        let cal = &self.calibration;
        check_range("calibration.scale_prior", cal.scale_prior, 0.1, 10.0)?;
        check_range("calibration.scale_std", cal.scale_std, 1e-6, 1.0)?;
        check_range("calibration.offset_prior_m", cal.offset_prior_m, -1e3, 1e3)?;
        check_range("calibration.offset_std_m", cal.offset_std_m, 1e-6, 1e3)?;
        let relin = &self.relinearisation;
        check_integer("relinearisation.every_ranges", relin.every_ranges, 0, 1_000_000)?;
        check_integer("relinearisation.max_ranges", relin.max_ranges, 1, 100_000)?;
        self.default_prior_belief()?;
        self.configured_priors()?;
        self.estimator.validate().map_err(|e| e.prefixed("estimator"))?;
        self.odometry_error.validate().map_err(|e| e.prefixed("odometry_error"))?;
        let gate = &self.odometry_gate;
        check_range("odometry_gate.max_speed_mps", gate.max_speed_mps, 0.0, 1e4)?;
        check_range("odometry_gate.max_yaw_rate_rad_s", gate.max_yaw_rate_rad_s, 0.0, 1e4)?;
        check_range("odometry_gate.jump_slack_m", gate.jump_slack_m, 0.0, 1e4)?;
        check_integer("odometry_gate.accept_after", gate.accept_after, 1, 1_000_000)?;
        check_range("odometry_gate.max_future_s", gate.max_future_s, 0.0, 1e9)?;
        let sm = &self.smoother;
        check_range("smoother.period_s", sm.period_s, 0.1, 1e6)?;
        check_range("smoother.knot_period_s", sm.knot_period_s, 0.1, 1e5)?;
        check_integer("smoother.max_knots", sm.max_knots, 2, 1024)?;
        check_integer("smoother.max_iterations", sm.max_iterations, 1, 1000)?;
        check_integer("smoother.max_odometry_samples", sm.max_odometry_samples, 16, 10_000_000)?;
        check_integer("smoother.max_ranges", sm.max_ranges, 16, 10_000_000)?;
        check_integer("dimension", self.dimension, 2, 3)?;
        check_range("height_prior.mean_m", self.height_prior.mean_m, -1e5, 1e5)?;
        check_range("height_prior.std_m", self.height_prior.std_m, 1e-3, 1e5)?;
        self.configured_heights()?;
        self.check_combinations()
    }

    /// Rules across parameters (each error names the parameter it rejects and the
    /// other one with its value).
    fn check_combinations(&self) -> Result<(), ConfigError> {
        let relin = &self.relinearisation;
        // A window folds at max_ranges, so a longer period would never re-solve.
        if relin.every_ranges > relin.max_ranges {
            return Err(ConfigError::invalid(
                "relinearisation.every_ranges",
                relin.every_ranges,
                &format!("0 or <= relinearisation.max_ranges ({})", relin.max_ranges),
            ));
        }
        // Re-solving needs a Gaussian (or mixture) belief: particles would silently
        // never be relinearised.
        if relin.every_ranges > 0 && self.estimator.method == Method::Particle {
            return Err(ConfigError::invalid(
                "relinearisation.every_ranges",
                relin.every_ranges,
                "0 with estimator.method = particle (re-solving needs a Gaussian belief)",
            ));
        }
        if self.odometry == OdometryMode::Drifting {
            // The joint state is one Gaussian updated through 5- to 7-dimensional marginals.
            // The plain flow's Euclidean step diverges on the 5-7-dimensional marginals,
            // whose variances span 1e-6 (the map frame at start) to 1e2.
            if matches!(self.estimator.method, Method::Particle | Method::Ukf | Method::Plain) {
                return Err(ConfigError::invalid(
                    "estimator.method",
                    self.estimator.method.name(),
                    "natural, ekf or mixture with odometry: drifting (the joint state is one Gaussian; mixture runs the natural flow there)",
                ));
            }
            if relin.every_ranges > 0 {
                return Err(ConfigError::invalid(
                    "relinearisation.every_ranges",
                    relin.every_ranges,
                    "0 with odometry: drifting (the joint state is not re-solved from a window)",
                ));
            }
            if self.map_frame_id.is_empty() || self.map_frame_id == self.odom_frame_id {
                return Err(ConfigError::invalid(
                    "map_frame_id",
                    &self.map_frame_id,
                    "a frame name other than odom_frame_id with odometry: drifting",
                ));
            }
        }
        if self.dimension == 3 {
            // Not built in 3-D: refused here rather than run planar.
            let refuse = |parameter: &str, value: &dyn std::fmt::Debug, allowed: &str| {
                Err(ConfigError::invalid(parameter, format!("{value:?}"), allowed))
            };
            if self.odometry == OdometryMode::Drifting {
                return refuse("odometry", &"drifting", "exact with dimension: 3 (the drifting joint state is planar)");
            }
            if self.calibration.enabled && self.estimator.method == Method::Ukf {
                return refuse(
                    "estimator.method",
                    &"ukf",
                    "not ukf with dimension: 3 and calibration (the 5-dimensional state is beyond the UKF's 4)",
                );
            }
        }
        // A range may precede the buffered odometry by at most the buffer's length.
        if self.odom_tolerance_s > self.odom_buffer_s {
            return Err(ConfigError::invalid(
                "odom_tolerance_s",
                self.odom_tolerance_s,
                &format!("<= odom_buffer_s ({})", self.odom_buffer_s),
            ));
        }
        Ok(())
    }

    pub(crate) fn default_prior_belief(&self) -> Result<GaussianBelief<2>, ConfigError> {
        prior_belief("default_prior", &self.default_prior.mean_m, &self.default_prior.cov_m2)
            .map_err(|e| rename(e, "default_prior mean", "default_prior.mean_m"))
            .map_err(|e| rename(e, "default_prior covariance", "default_prior.cov_m2"))
    }

    /// The configured per-landmark priors.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `priors.*` when the arrays do not match.
    pub fn configured_priors(&self) -> Result<Vec<(String, GaussianBelief<2>)>, ConfigError> {
        let p = &self.priors;
        let n = p.ids.len();
        if p.means_m.len() != 2 * n {
            return Err(ConfigError::invalid("priors.means_m", &p.means_m, &format!("2 numbers per id ({})", 2 * n)));
        }
        if p.covs_m2.len() != 4 * n {
            return Err(ConfigError::invalid("priors.covs_m2", &p.covs_m2, &format!("4 numbers per id ({})", 4 * n)));
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::with_capacity(n);
        for (k, id) in p.ids.iter().enumerate() {
            if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) || !seen.insert(id.clone()) {
                return Err(ConfigError::invalid("priors.ids", id, "unique ids of 1 to 128 bytes without control characters"));
            }
            let b = prior_belief(id, &p.means_m[2 * k..2 * k + 2], &p.covs_m2[4 * k..4 * k + 4])
                .map_err(|e| rename(e, &format!("{id} mean"), "priors.means_m"))
                .map_err(|e| rename(e, &format!("{id} covariance"), "priors.covs_m2"))?;
            out.push((id.clone(), b));
        }
        Ok(out)
    }

    /// Each configured id's height prior (mean, standard deviation), metres, in the
    /// order of `priors.ids`: `priors.height_*` when given, else `height_prior`.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `priors.height_means_m` or
    /// `priors.height_stds_m` when not empty and not one finite number per id (standard
    /// deviations in [1e-3, 1e5] m).
    pub fn configured_heights(&self) -> Result<Vec<(f64, f64)>, ConfigError> {
        let p = &self.priors;
        let n = p.ids.len();
        let check = |parameter: &str, values: &[f64], low: f64| {
            if !values.is_empty() && (values.len() != n || values.iter().any(|v| !(v.is_finite() && *v >= low && v.abs() <= 1e5))) {
                return Err(ConfigError::invalid(parameter, values, &format!("empty, or one number per id ({n}), within 1e5 m")));
            }
            Ok(())
        };
        check("priors.height_means_m", &p.height_means_m, -1e5)?;
        check("priors.height_stds_m", &p.height_stds_m, 1e-3)?;
        let h = self.height_prior;
        Ok((0..n)
            .map(|k| (p.height_means_m.get(k).copied().unwrap_or(h.mean_m), p.height_stds_m.get(k).copied().unwrap_or(h.std_m)))
            .collect())
    }

    pub(crate) fn sensor_offset(&self) -> Vector3<f64> {
        Vector3::new(self.sensor_offset_m[0], self.sensor_offset_m[1], self.sensor_offset_m[2])
    }
}

fn rename(e: ConfigError, from: &str, to: &str) -> ConfigError {
    match e {
        ConfigError::Invalid { parameter, value, allowed } if parameter == from => ConfigError::Invalid {
            parameter: to.to_string(),
            value,
            allowed,
        },
        other => other,
    }
}
