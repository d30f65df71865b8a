//! The landmark localiser: one path from raw inputs (odometry poses, range
//! measurements) to per-landmark beliefs, shared by the ROS node and the bag replayer
//! so that "replay equals live" holds by construction.
//!
//! A range is accepted only if every check passes, in this order (the first failing
//! check is its [`Rejection`] reason, counted per reason):
//! 1. the stamp is a positive finite time;
//! 2. the range is finite, ≥ 0 and ≤ `max_range_m`;
//! 3. the variance is finite and ≥ 0 (0 means `default_noise_std_m²`);
//! 4. the frame is `sensor_frame_id` (when that is set);
//! 5. the landmark is known, or `unknown_landmarks` is `default_prior` or `initialise`;
//! 6. the stamp is not older than the last range fused for that landmark;
//! 7. odometry covers the stamp (see [`OdometryBuffer::pose_at`]);
//! 8. with `innovation_gate_sigma` = k > 0 and the landmark tracking: the range is
//!    within k predicted standard deviations of at least one component of the belief
//!    (see [`innovation_gate`]);
//! 9. the estimator update succeeds and its result is publishable (finite, SPD).
//!
//! Nothing is lost to transport order, and no range is fused with a stale pose: a
//! range that arrives before the odometry covering its stamp (no odometry yet, or
//! stamped after the newest odometry by at most `odom_wait_s`) waits in a bounded
//! queue and is fused, in arrival order, when odometry catches up
//! ([`Localizer::add_odometry`] returns those results). So live (ranges and odometry
//! on separate topics, in any order) and replay (bag order) fuse the same way.
//!
//! The sensor position is the interpolated base pose ⊕ `sensor_offset_m`; the
//! estimate is planar (x, y): ranges are taken as horizontal distances.
//!
//! **Landmarks without a prior** (`unknown_landmarks: initialise`) start
//! [`TrackStatus::Initialising`]: an [`InitialisationGrid`] (uniform over the disc of
//! `initialisation.region_radius_m` around the sensor position of the first range)
//! multiplies in every range until the grid posterior is unimodal, that is at least
//! `initialisation.min_ranges` ranges and a largest standard deviation
//! √λ_max(Σ) ≤ `initialisation.max_std_m` (two modes D apart have √λ_max ≥ D/2). The
//! flow's Gaussian is then solved, from the grid's moments, for the disc prior
//! (moment-matched) × all the grid's ranges, and the track is
//! [`TrackStatus::Tracking`]. Until then its published mean/covariance are the grid's
//! moments, flagged as initialising, and no pose is published for it.
//!
//! **Range calibration** (`calibration.enabled`): z = s·‖y − x‖ + b + w
//! ([`CalibratedRangeModel`]) with one (s, b) per sensor. Each landmark's flow runs in
//! 4-D over θ = (y₁, y₂, s, b), so landmarks stay independent small flows; their (s, b)
//! beliefs are pooled into the sensor's ([`pool_calibration`], expectation
//! propagation: each re-solve takes the other landmarks' (s, b) as its prior), and each
//! published position is conditioned on the pooled (s, b). Per sensor rather than per
//! landmark: scale comes from the radio's clock and propagation model, shared by every
//! beacon it ranges to, and per-landmark offsets would absorb odometry drift (Plaza1
//! dead reckoning: 3.7 m batch optimum per landmark, 2.4 m pooled).
//!
//! **Relinearisation** (`relinearisation.every_ranges`): each tracking landmark keeps
//! its ranges since an anchor belief ([`RangeWindow`]) and is periodically re-solved
//! for all of them ([`Estimator::refine`]).

use crate::config::{check_positive, check_range, ConfigError};
use crate::estimator::{
    CalibratedRangeModel, CalibrationPrior, Estimator, EstimatorConfig, EstimatorError, GaussianBelief,
    InitialisationGrid, MeasurementModel, MixtureComponent, RangeModel, State, Summary, UpdateStats,
};
use crate::odometry::{OdometryBuffer, OdometryRejection, PoseLookupError};
use nalgebra::{Isometry3, Matrix2, Matrix4, Point3, Vector2, Vector3, Vector4};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

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
}

/// How a landmark without a prior is started (`unknown_landmarks: initialise`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InitialisationConfig {
    /// The landmark is within this distance of the sensor position of its first
    /// range, metres (the grid's extent).
    pub region_radius_m: f64,
    /// Grid cell side, metres.
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
    /// The prior as the estimator takes it ([`CalibrationPrior::EXACT`] when off).
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

/// Configuration of the localiser (the node's estimation parameters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalizerConfig {
    /// Expected `header.frame_id` of odometry; "" accepts any.
    pub odom_frame_id: String,
    /// Expected `header.frame_id` of ranges; "" accepts any.
    pub sensor_frame_id: String,
    /// Sensor position in the robot base frame (x, y, z), metres.
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
}

impl Default for LocalizerConfig {
    fn default() -> Self {
        Self {
            odom_frame_id: String::new(),
            sensor_frame_id: String::new(),
            sensor_offset_m: vec![0.0, 0.0, 0.0],
            default_noise_std_m: 0.5,
            max_range_m: 200.0,
            odom_buffer_s: 10.0,
            odom_tolerance_s: 0.1,
            odom_wait_s: 1.0,
            innovation_gate_sigma: 0.0,
            unknown_landmarks: UnknownLandmarkPolicy::DefaultPrior,
            initialisation: InitialisationConfig::default(),
            calibration: CalibrationConfig::default(),
            relinearisation: RelinearisationConfig::default(),
            default_prior: PriorConfig::default(),
            priors: PriorsConfig::default(),
            estimator: EstimatorConfig::default(),
        }
    }
}

fn prior_belief(parameter: &str, mean: &[f64], cov: &[f64]) -> Result<GaussianBelief<2>, ConfigError> {
    if mean.len() != 2 || mean.iter().any(|v| !v.is_finite()) {
        return Err(ConfigError::invalid(
            &format!("{parameter} mean"),
            mean,
            "two finite numbers (x, y) in metres",
        ));
    }
    let symmetric = cov.len() == 4 && (cov[1] - cov[2]).abs() <= 1e-9 * (cov[0].abs() + cov[3].abs());
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
            "a symmetric positive-definite 2x2 matrix, row-major, m^2",
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
        check_range("default_noise_std_m", self.default_noise_std_m, 1e-6, 1e3)?;
        check_positive("max_range_m", self.max_range_m)?;
        check_range("odom_buffer_s", self.odom_buffer_s, 0.1, 3600.0)?;
        check_range("odom_tolerance_s", self.odom_tolerance_s, 0.0, 10.0)?;
        check_range("odom_wait_s", self.odom_wait_s, 0.0, 60.0)?;
        check_range("innovation_gate_sigma", self.innovation_gate_sigma, 0.0, 1e3)?;
        let init = &self.initialisation;
        check_range("initialisation.region_radius_m", init.region_radius_m, 1e-3, 1e5)?;
        check_range("initialisation.cell_m", init.cell_m, init.region_radius_m / 2000.0, init.region_radius_m)?;
        check_range("initialisation.max_std_m", init.max_std_m, init.cell_m, 1e5)?;
        check_range("initialisation.min_ranges", f64::from(init.min_ranges), 1.0, 1e6)?;
        let cal = &self.calibration;
        check_range("calibration.scale_prior", cal.scale_prior, 0.1, 10.0)?;
        check_range("calibration.scale_std", cal.scale_std, 1e-6, 1.0)?;
        check_range("calibration.offset_prior_m", cal.offset_prior_m, -1e3, 1e3)?;
        check_range("calibration.offset_std_m", cal.offset_std_m, 1e-6, 1e3)?;
        let relin = &self.relinearisation;
        check_range("relinearisation.every_ranges", f64::from(relin.every_ranges), 0.0, 1e6)?;
        check_range("relinearisation.max_ranges", f64::from(relin.max_ranges), 1.0, 1e5)?;
        self.default_prior_belief()?;
        self.configured_priors()?;
        self.estimator.validate().map_err(|e| match e {
            EstimatorError::InvalidConfig { parameter, value, allowed } => ConfigError::Invalid {
                parameter: format!("estimator.{parameter}"),
                value,
                allowed: allowed.to_string(),
            },
            other => ConfigError::Parse(other.to_string()),
        })
    }

    fn default_prior_belief(&self) -> Result<GaussianBelief<2>, ConfigError> {
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
            if id.is_empty() || !seen.insert(id.clone()) {
                return Err(ConfigError::invalid("priors.ids", id, "non-empty, unique ids"));
            }
            let b = prior_belief(id, &p.means_m[2 * k..2 * k + 2], &p.covs_m2[4 * k..4 * k + 4])
                .map_err(|e| rename(e, &format!("{id} mean"), "priors.means_m"))
                .map_err(|e| rename(e, &format!("{id} covariance"), "priors.covs_m2"))?;
            out.push((id.clone(), b));
        }
        Ok(out)
    }

    fn sensor_offset(&self) -> Vector3<f64> {
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

/// One range measurement as received (message fields, converted to SI and seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct RangeInput {
    /// Input topic it came from (kept with the range while it waits for odometry, so
    /// diagnostics and the replay tables name it).
    pub topic: String,
    /// Time of the measurement, s.
    pub stamp_s: f64,
    /// Sensor frame.
    pub frame_id: String,
    pub landmark_id: String,
    /// Range, metres.
    pub range_m: f64,
    /// Noise variance, m² (0 = configured default).
    pub variance_m2: f64,
}

/// Why an input was not used. [`Rejection::reason`] is the counter name.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("stamp {0} s is not a positive finite time")]
    BadStamp(f64),
    #[error("range {0} is not finite")]
    NonFiniteRange(f64),
    #[error("range {0} m is negative")]
    NegativeRange(f64),
    #[error("range {range_m} m exceeds max_range_m = {max_m} m")]
    BeyondMaxRange { range_m: f64, max_m: f64 },
    #[error("variance {0} m^2 is negative or not finite")]
    BadVariance(f64),
    #[error("frame `{got}` is not the expected `{expected}`")]
    WrongFrame { got: String, expected: String },
    #[error("landmark `{0}` has no prior and unknown landmarks are rejected")]
    UnknownLandmark(String),
    #[error("stamp {stamp_s:.3} s is older than the last fused range of this landmark ({last_s:.3} s)")]
    StampBackwards { stamp_s: f64, last_s: f64 },
    #[error("no odometry for the range stamp: {0}")]
    NoPose(PoseLookupError),
    #[error("odometry rejected: {0}")]
    Odometry(OdometryRejection),
    #[error("estimator: {0}")]
    Estimator(String),
    #[error("range {range_m} m is {sigmas:.1} predicted sigmas from every belief component (gate {gate})")]
    InnovationGate { range_m: f64, sigmas: f64, gate: f64 },
    #[error("more than {MAX_PENDING_RANGES} ranges waiting for odometry: dropped the oldest")]
    PendingOverflow,
}

/// Ranges that may wait for odometry at once (see the module doc).
pub const MAX_PENDING_RANGES: usize = 1000;

/// What became of an accepted range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RangeOutcome {
    /// Fused now.
    Fused(Fused),
    /// Waiting for odometry that covers its stamp.
    Pending,
}

/// A range that waited for odometry, and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    pub input: RangeInput,
    pub result: Result<Fused, Rejection>,
}

impl Rejection {
    /// Short stable name, used as the counter key in diagnostics and reports.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::BadStamp(_) => "bad_stamp",
            Rejection::NonFiniteRange(_) => "non_finite_range",
            Rejection::NegativeRange(_) => "negative_range",
            Rejection::BeyondMaxRange { .. } => "beyond_max_range",
            Rejection::BadVariance(_) => "bad_variance",
            Rejection::WrongFrame { .. } => "wrong_frame",
            Rejection::UnknownLandmark(_) => "unknown_landmark",
            Rejection::StampBackwards { .. } => "stamp_backwards",
            Rejection::NoPose(PoseLookupError::Empty) => "no_odometry",
            Rejection::NoPose(PoseLookupError::TooOld { .. }) => "older_than_odometry",
            Rejection::NoPose(PoseLookupError::TooNew { .. }) => "newer_than_odometry",
            Rejection::Odometry(OdometryRejection::StampBackwards { .. }) => "odom_stamp_backwards",
            Rejection::Odometry(OdometryRejection::BadStamp(_)) => "odom_bad_stamp",
            Rejection::Odometry(OdometryRejection::NonFinite) => "odom_non_finite",
            Rejection::Estimator(_) => "estimator_error",
            Rejection::PendingOverflow => "odometry_wait_overflow",
            Rejection::InnovationGate { .. } => "innovation_gate",
        }
    }
}

/// Smallest normalised innovation of a measurement over the belief's components (the
/// moment-matched Gaussian when it has none): min over components i of
/// |z − h(μᵢ)| / √(∇h(μᵢ)ᵀ Σᵢ ∇h(μᵢ) + σ²), the EKF's predicted measurement and its
/// variance under `model` (σ² its noise scale²). A component where h cannot be
/// linearised (∇h = 0: the sensor on the landmark) never rejects (returns 0).
pub fn innovation_gate<const D: usize, M: MeasurementModel<D>>(summary: &Summary<D>, model: &M) -> f64 {
    let one = [MixtureComponent { weight: 1.0, belief: summary.belief }];
    let components = if summary.components.is_empty() { &one[..] } else { &summary.components[..] };
    components
        .iter()
        .map(|c| {
            let (h, grad) = model.predict(&c.belief.mean);
            if grad.norm_squared() == 0.0 {
                return 0.0;
            }
            let s = (grad.transpose() * c.belief.cov * grad)[(0, 0)] + model.noise().var;
            (model.measurement() - h).abs() / s.sqrt()
        })
        .fold(f64::INFINITY, f64::min)
}

/// Where a landmark's estimate is in its life (published as `LandmarkBelief.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackStatus {
    /// Started without a prior and not yet unimodal: the moments are not an estimate.
    Initialising,
    /// The belief is the estimate.
    Tracking,
}

/// A landmark's estimator state.
#[derive(Debug, Clone)]
pub enum TrackState {
    /// The grid posterior of a landmark started without a prior.
    Initialising(Box<InitialisationGrid>),
    /// Position (x, y), calibration off.
    Position(State<2>, RangeWindow<2, RangeModel<2>>),
    /// Position and range calibration θ = (y₁, y₂, s, b), and the belief over (s, b)
    /// from the other landmarks (the "cavity") that its anchor includes.
    Calibrated(State<4>, RangeWindow<4, CalibratedRangeModel>, GaussianBelief<2>),
}

/// The ranges fused since `anchor`, kept for relinearisation ([`Estimator::refine`]).
#[derive(Debug, Clone)]
pub struct RangeWindow<const D: usize, M> {
    /// The belief before the first range of the window.
    pub anchor: GaussianBelief<D>,
    pub ranges: Vec<M>,
}

impl<const D: usize, M: MeasurementModel<D> + Clone> RangeWindow<D, M> {
    fn new(anchor: GaussianBelief<D>) -> Self {
        Self { anchor, ranges: Vec::new() }
    }

    /// Whether the next [`RangeWindow::push`] re-solves.
    fn refine_due(&self, config: &RelinearisationConfig) -> bool {
        config.every_ranges > 0 && (self.ranges.len() + 1) % config.every_ranges as usize == 0
    }

    /// Adds the range `model` that produced `state`; every `every_ranges` ranges
    /// re-solves `state` for anchor × all ranges of the window, with `new_anchor`
    /// replacing the anchor when given (a belief with more than one component is left
    /// to the mixture); a full window (`max_ranges`) becomes the anchor of the next. A
    /// failed re-solve keeps the sequential state and the anchor. Returns the state and
    /// whether it was re-solved.
    fn push(
        &mut self,
        estimator: &Estimator<D>,
        state: State<D>,
        model: M,
        config: &RelinearisationConfig,
        new_anchor: Option<GaussianBelief<D>>,
    ) -> (State<D>, bool) {
        let due = self.refine_due(config);
        self.ranges.push(model);
        let mut state = state;
        let mut refined = false;
        if due && state.summary().is_ok_and(|s| s.components.len() <= 1) {
            let anchor = new_anchor.unwrap_or(self.anchor);
            if let Ok((solved, _)) = estimator.refine(&state, &anchor, &self.ranges) {
                state = solved;
                self.anchor = anchor;
                refined = true;
            }
        }
        if self.ranges.len() >= config.max_ranges as usize {
            if let Ok(summary) = state.summary() {
                self.anchor = summary.belief;
                self.ranges.clear();
            }
        }
        (state, refined)
    }
}

/// Estimated range calibration z = s·d + b + w: marginal means and variances.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeCalibration {
    /// s, dimensionless.
    pub scale: f64,
    /// Var(s).
    pub scale_variance: f64,
    /// b, metres.
    pub offset_m: f64,
    /// Var(b), m².
    pub offset_variance_m2: f64,
}

/// [`Rejection::InnovationGate`] when `gate` = k > 0 and the measurement is more than k
/// predicted standard deviations from every component ([`innovation_gate`]).
fn check_gate<const D: usize, M: MeasurementModel<D>>(gate: f64, summary: &Summary<D>, model: &M) -> Result<(), Rejection> {
    if gate > 0.0 {
        let sigmas = innovation_gate(summary, model);
        if sigmas > gate {
            return Err(Rejection::InnovationGate { range_m: model.measurement(), sigmas, gate });
        }
    }
    Ok(())
}

/// Everything known about one landmark.
#[derive(Debug, Clone)]
pub struct LandmarkTrack {
    pub state: TrackState,
    /// Position belief: the (x, y) marginal of `state` (moment-matched Gaussian,
    /// components, health); the grid's moments while initialising.
    pub summary: Summary<2>,
    /// The range calibration estimate, when calibration is on and the track is tracking.
    pub calibration: Option<RangeCalibration>,
    pub measurements_fused: u32,
    pub measurements_rejected: u32,
    /// Stamp of the last fused range, s (0 before the first).
    pub last_stamp_s: f64,
    /// Wall-clock time of the last update, s.
    pub last_latency_s: f64,
    pub last_stats: UpdateStats,
    /// Sensor position (x, y) and range of the last fused measurement.
    pub last_range: Option<(Vector2<f64>, f64)>,
}

impl LandmarkTrack {
    /// Initialising or tracking.
    pub fn status(&self) -> TrackStatus {
        match self.state {
            TrackState::Initialising(_) => TrackStatus::Initialising,
            _ => TrackStatus::Tracking,
        }
    }

    /// The belief is an estimate (not initialising) and publishable.
    pub fn is_tracking(&self) -> bool {
        self.status() == TrackStatus::Tracking && self.summary.belief.is_publishable()
    }
}

/// The (y₁, y₂) marginal of a Gaussian over θ = (y₁, y₂, s, b).
fn position_marginal(b: &GaussianBelief<4>) -> GaussianBelief<2> {
    GaussianBelief { mean: b.mean.fixed_rows::<2>(0).into(), cov: b.cov.fixed_view::<2, 2>(0, 0).into() }
}

/// The (s, b) marginal of a Gaussian over θ = (y₁, y₂, s, b).
fn calibration_marginal(b: &GaussianBelief<4>) -> GaussianBelief<2> {
    GaussianBelief { mean: b.mean.fixed_rows::<2>(2).into(), cov: b.cov.fixed_view::<2, 2>(2, 2).into() }
}

/// The sensor's calibration c = (s, b) from every landmark's own posterior.
///
/// Landmark i's belief N(θᵢ) over (yᵢ, c) is its own ranges Zᵢ times a belief qᵢ(c)
/// (its "cavity": the prior p(c), or what the other landmarks knew of c when it was
/// last re-solved); the landmarks are independent given c, so its message about c is
/// p(c | θᵢ's data)/qᵢ(c) and p(c | Z) ∝ p(c) Πᵢ N(c; θᵢ)/qᵢ(c) (expectation
/// propagation's fixed point; exact for linear-Gaussian models). In information form,
/// with Λᵢ, ηᵢ = Λᵢ mᵢ of the (s, b) marginal of landmark i and Λ_qᵢ, η_qᵢ of its
/// cavity: Λ = Λ₀ + Σᵢ (Λᵢ − Λ_qᵢ), η = η₀ + Σᵢ (ηᵢ − η_qᵢ) (each message's
/// precision clipped to be PSD).
pub fn pool_calibration(
    prior: &GaussianBelief<2>,
    landmarks: &[(GaussianBelief<4>, GaussianBelief<2>)],
) -> Option<GaussianBelief<2>> {
    let prior_precision = prior.cov.try_inverse()?;
    let (mut precision, mut info) = (prior_precision, prior_precision * prior.mean);
    for (b, cavity) in landmarks {
        let c = calibration_marginal(b);
        let lambda = c.cov.try_inverse()?;
        let cavity_precision = cavity.cov.try_inverse()?;
        let gain = crate::estimator::belief::symmetric_eigen(&(lambda - cavity_precision));
        let clipped = gain.1 * Matrix2::from_diagonal(&gain.0.map(|v| v.max(0.0))) * gain.1.transpose();
        precision += clipped;
        info += lambda * c.mean - cavity_precision * cavity.mean;
    }
    let cov = precision.try_inverse()?;
    let pooled = GaussianBelief { mean: cov * info, cov: (cov + cov.transpose()) * 0.5 };
    pooled.is_publishable().then_some(pooled)
}

/// `anchor` over θ = (y, c) with its belief `old` about c swapped for `new`:
/// anchor × N(c; new)/N(c; old) in information form (`None` if that is not SPD).
fn replace_calibration_prior(
    anchor: &GaussianBelief<4>,
    old: &GaussianBelief<2>,
    new: &GaussianBelief<2>,
) -> Option<GaussianBelief<4>> {
    let mut precision = anchor.cov.try_inverse()?;
    let mut info = precision * anchor.mean;
    let (old_p, new_p) = (old.cov.try_inverse()?, new.cov.try_inverse()?);
    let dp = new_p - old_p;
    let di = new_p * new.mean - old_p * old.mean;
    let mut block = precision.fixed_view_mut::<2, 2>(2, 2);
    block += dp;
    let mut tail = info.fixed_rows_mut::<2>(2);
    tail += di;
    let cov = precision.try_inverse()?;
    let out = GaussianBelief { mean: cov * info, cov: (cov + cov.transpose()) * 0.5 };
    out.is_publishable().then_some(out)
}

/// The position of a Gaussian over θ = (y, c) once c's belief N(m, P) replaces its own:
/// y | c is N(μ_y + K(c − μ_c), Σ_yy − KΣ_cy) with K = Σ_yc Σ_cc⁻¹, so
/// y ~ N(μ_y + K(m − μ_c), Σ_yy − KΣ_cy + KPKᵀ).
fn condition_position(b: &GaussianBelief<4>, calibration: &GaussianBelief<2>) -> Option<GaussianBelief<2>> {
    let own = calibration_marginal(b);
    let pos = position_marginal(b);
    let cross: Matrix2<f64> = b.cov.fixed_view::<2, 2>(0, 2).into();
    let k = cross * own.cov.try_inverse()?;
    let cov = pos.cov - k * cross.transpose() + k * calibration.cov * k.transpose();
    let out = GaussianBelief { mean: pos.mean + k * (calibration.mean - own.mean), cov: (cov + cov.transpose()) * 0.5 };
    out.is_publishable().then_some(out)
}

/// Position summary and calibration of a track's state; a calibrated state's position
/// is conditioned on the sensor's pooled calibration `sensor` when given
/// ([`pool_calibration`], [`condition_position`]).
fn summarise(
    state: &TrackState,
    sensor: Option<&GaussianBelief<2>>,
) -> Result<(Summary<2>, Option<RangeCalibration>), EstimatorError> {
    Ok(match state {
        TrackState::Initialising(grid) => {
            let belief = grid.moments();
            let summary = Summary {
                belief,
                components: vec![MixtureComponent { weight: 1.0, belief }],
                updates: u64::from(grid.ranges()),
                last_update: UpdateStats::default(),
            };
            (summary, None)
        }
        TrackState::Position(s, _) => (s.summary()?, None),
        TrackState::Calibrated(s, ..) => {
            let full = s.summary()?;
            let calibration = *sensor.unwrap_or(&calibration_marginal(&full.belief));
            let position = |b: &GaussianBelief<4>| {
                condition_position(b, &calibration).ok_or_else(|| EstimatorError::NotPositiveDefinite {
                    quantity: "calibration-conditioned position covariance",
                    value: crate::estimator::error::fmt_matrix(&b.cov),
                })
            };
            let summary = Summary {
                belief: position(&full.belief)?,
                components: full
                    .components
                    .iter()
                    .map(|c| Ok(MixtureComponent { weight: c.weight, belief: position(&c.belief)? }))
                    .collect::<Result<_, EstimatorError>>()?,
                updates: full.updates,
                last_update: full.last_update,
            };
            let (m, c) = (calibration.mean, calibration.cov);
            let calibration =
                RangeCalibration { scale: m[0], scale_variance: c[(0, 0)], offset_m: m[1], offset_variance_m2: c[(1, 1)] };
            (summary, Some(calibration))
        }
    })
}

/// The result of one accepted range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fused {
    /// Sensor position in the odometry frame at the range's stamp, metres.
    pub sensor_position: Point3<f64>,
    pub stats: UpdateStats,
    pub latency_s: f64,
}

/// Per-landmark beliefs plus the odometry buffer and the rejection counters.
#[derive(Debug)]
pub struct Localizer {
    config: LocalizerConfig,
    estimator: Estimator<2>,
    calibrated_estimator: Estimator<4>,
    /// The pooled (s, b) belief, once a calibrated landmark exists.
    sensor_calibration: Option<GaussianBelief<2>>,
    default_prior: GaussianBelief<2>,
    priors: BTreeMap<String, GaussianBelief<2>>,
    odometry: OdometryBuffer,
    tracks: BTreeMap<String, LandmarkTrack>,
    accepted: u64,
    rejected: BTreeMap<&'static str, u64>,
    odom_frame_id: String,
    pending: std::collections::VecDeque<RangeInput>,
}

impl Localizer {
    /// # Errors
    /// The config's validation error.
    pub fn new(config: LocalizerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let estimator = Estimator::new(config.estimator).map_err(|e| ConfigError::Parse(e.to_string()))?;
        let calibrated_estimator = Estimator::new(config.estimator).map_err(|e| ConfigError::Parse(e.to_string()))?;
        let priors: BTreeMap<_, _> = config.configured_priors()?.into_iter().collect();
        let mut me = Self {
            default_prior: config.default_prior_belief()?,
            odometry: OdometryBuffer::new(config.odom_buffer_s, config.odom_tolerance_s),
            odom_frame_id: config.odom_frame_id.clone(),
            estimator,
            calibrated_estimator,
            sensor_calibration: None,
            priors,
            config,
            tracks: BTreeMap::new(),
            accepted: 0,
            rejected: BTreeMap::new(),
            pending: std::collections::VecDeque::new(),
        };
        me.reset();
        Ok(me)
    }

    pub fn config(&self) -> &LocalizerConfig {
        &self.config
    }

    /// Restores every configured landmark to its prior, forgets landmarks started
    /// from the default prior, and zeroes the counters. Odometry is kept.
    pub fn reset(&mut self) {
        self.tracks.clear();
        let priors: Vec<_> = self.priors.iter().map(|(k, v)| (k.clone(), *v)).collect();
        for (id, prior) in priors {
            if let Ok(track) = self.tracking_state(prior).and_then(|state| self.new_track(state)) {
                self.tracks.insert(id, track);
            }
        }
        self.sensor_calibration = None;
        self.refresh_sensor_calibration();
        self.accepted = 0;
        self.rejected.clear();
        self.pending.clear();
    }

    /// A tracking state from a position prior: the prior itself, or, with calibration
    /// on, the prior × N(s₀, σ_s²) × N(b₀, σ_b²) over θ = (y₁, y₂, s, b).
    fn tracking_state(&self, prior: GaussianBelief<2>) -> Result<TrackState, EstimatorError> {
        if !self.config.calibration.enabled {
            return Ok(TrackState::Position(self.estimator.initial_state(prior)?, RangeWindow::new(prior)));
        }
        let cavity = self.calibration_prior();
        let prior = self.with_calibration_prior(&prior);
        Ok(TrackState::Calibrated(self.calibrated_estimator.initial_state(prior)?, RangeWindow::new(prior), cavity))
    }

    /// N(position) × N(s₀, σ_s²) × N(b₀, σ_b²) over θ = (y₁, y₂, s, b).
    fn with_calibration_prior(&self, position: &GaussianBelief<2>) -> GaussianBelief<4> {
        let cal = self.calibration_prior();
        let mut cov = Matrix4::zeros();
        cov.fixed_view_mut::<2, 2>(0, 0).copy_from(&position.cov);
        cov.fixed_view_mut::<2, 2>(2, 2).copy_from(&cal.cov);
        GaussianBelief { mean: Vector4::new(position.mean.x, position.mean.y, cal.mean.x, cal.mean.y), cov }
    }

    /// The tracking state of a unimodal grid: the flow's Gaussian solved for the
    /// posterior of the grid's prior (the disc, moment-matched: a weak Gaussian prior)
    /// × every range the grid used, started at the grid's moments ([`Estimator::refine`]);
    /// those ranges stay in the relinearisation window. If that fails, the grid's
    /// moments themselves become the prior.
    fn start_tracking(&self, grid: &InitialisationGrid) -> Result<TrackState, EstimatorError> {
        let shape = self.config.estimator.noise_shape;
        let measured = grid.measurements();
        Ok(match self.tracking_state(grid.moments())? {
            TrackState::Position(state, fallback) => {
                let anchor = grid.prior_moments();
                let ranges = measured
                    .iter()
                    .map(|&(x, z, var)| RangeModel::new(x, z, var, shape))
                    .collect::<Result<Vec<_>, _>>()?;
                match self.estimator.refine(&state, &anchor, &ranges) {
                    Ok((refined, _)) => TrackState::Position(refined, RangeWindow { anchor, ranges }),
                    Err(_) => TrackState::Position(state, fallback),
                }
            }
            TrackState::Calibrated(state, fallback, cavity) => {
                let anchor = self.with_calibration_prior(&grid.prior_moments());
                let ranges = measured
                    .iter()
                    .map(|&(x, z, var)| CalibratedRangeModel::new(x, z, var, shape))
                    .collect::<Result<Vec<_>, _>>()?;
                match self.calibrated_estimator.refine(&state, &anchor, &ranges) {
                    Ok((refined, _)) => TrackState::Calibrated(refined, RangeWindow { anchor, ranges }, cavity),
                    Err(_) => TrackState::Calibrated(state, fallback, cavity),
                }
            }
            initialising @ TrackState::Initialising(_) => initialising,
        })
    }

    fn new_track(&self, state: TrackState) -> Result<LandmarkTrack, EstimatorError> {
        let (summary, calibration) = summarise(&state, self.sensor_calibration.as_ref())?;
        Ok(LandmarkTrack {
            summary,
            calibration,
            state,
            measurements_fused: 0,
            measurements_rejected: 0,
            last_stamp_s: 0.0,
            last_latency_s: 0.0,
            last_stats: UpdateStats::default(),
            last_range: None,
        })
    }

    /// The frame the beliefs are expressed in: `odom_frame_id`, or the first
    /// odometry's frame when that is empty.
    pub fn frame_id(&self) -> &str {
        &self.odom_frame_id
    }

    /// Adds an odometry pose (base in odometry frame) stamped `stamp_s`, then fuses the
    /// waiting ranges it covers and returns what became of them.
    ///
    /// # Errors
    /// [`Rejection`] (counted) for a wrong frame, a bad or backwards stamp, a
    /// non-finite pose.
    pub fn add_odometry(&mut self, stamp_s: f64, frame_id: &str, pose: Isometry3<f64>) -> Result<Vec<Processed>, Rejection> {
        self.push_odometry(stamp_s, frame_id, pose)?;
        let mut processed = Vec::new();
        // The same lookup decides "covered" here and in try_add_range, so a drained
        // range can never be queued again.
        while let Some(front) = self.pending.front() {
            if matches!(
                self.odometry.pose_at(front.stamp_s),
                Err(PoseLookupError::Empty | PoseLookupError::TooNew { .. })
            ) {
                break;
            }
            let input = self.pending.pop_front().expect("front exists");
            let result = match self.add_range(&input) {
                Ok(RangeOutcome::Fused(f)) => Ok(f),
                Ok(RangeOutcome::Pending) => unreachable!("odometry covers the stamp"),
                Err(r) => Err(r),
            };
            processed.push(Processed { input, result });
        }
        Ok(processed)
    }

    fn push_odometry(&mut self, stamp_s: f64, frame_id: &str, pose: Isometry3<f64>) -> Result<(), Rejection> {
        let result = if !self.config.odom_frame_id.is_empty() && frame_id != self.config.odom_frame_id {
            Err(Rejection::WrongFrame {
                got: frame_id.to_string(),
                expected: self.config.odom_frame_id.clone(),
            })
        } else {
            self.odometry.push(stamp_s, pose).map_err(Rejection::Odometry)
        };
        match &result {
            Ok(()) if self.odom_frame_id.is_empty() => self.odom_frame_id = frame_id.to_string(),
            Err(r) => *self.rejected.entry(r.reason()).or_insert(0) += 1,
            _ => {}
        }
        result
    }

    /// The robot base position at the newest odometry, metres.
    pub fn latest_base_position(&self) -> Option<Point3<f64>> {
        let t = self.odometry.newest_stamp()?;
        self.odometry.pose_at(t).ok().map(|p| Point3::from(p.translation.vector))
    }

    /// Checks a range and fuses it into its landmark's belief, or queues it until
    /// odometry covers its stamp.
    ///
    /// # Errors
    /// [`Rejection`] (counted, the belief unchanged) when any check of the module doc
    /// fails.
    pub fn add_range(&mut self, m: &RangeInput) -> Result<RangeOutcome, Rejection> {
        let result = self.try_add_range(m);
        match &result {
            Ok(RangeOutcome::Pending) => {
                self.pending.push_back(m.clone());
                if self.pending.len() > MAX_PENDING_RANGES {
                    let dropped = self.pending.pop_front().expect("not empty");
                    *self.rejected.entry(Rejection::PendingOverflow.reason()).or_insert(0) += 1;
                    if let Some(t) = self.tracks.get_mut(&dropped.landmark_id) {
                        t.measurements_rejected += 1;
                    }
                }
            }
            Ok(RangeOutcome::Fused(_)) => self.accepted += 1,
            Err(r) => {
                *self.rejected.entry(r.reason()).or_insert(0) += 1;
                if let Some(t) = self.tracks.get_mut(&m.landmark_id) {
                    t.measurements_rejected += 1;
                }
            }
        }
        result
    }

    fn try_add_range(&mut self, m: &RangeInput) -> Result<RangeOutcome, Rejection> {
        if !(m.stamp_s.is_finite() && m.stamp_s > 0.0) {
            return Err(Rejection::BadStamp(m.stamp_s));
        }
        if !m.range_m.is_finite() {
            return Err(Rejection::NonFiniteRange(m.range_m));
        }
        if m.range_m < 0.0 {
            return Err(Rejection::NegativeRange(m.range_m));
        }
        if m.range_m > self.config.max_range_m {
            return Err(Rejection::BeyondMaxRange { range_m: m.range_m, max_m: self.config.max_range_m });
        }
        if !(m.variance_m2.is_finite() && m.variance_m2 >= 0.0) {
            return Err(Rejection::BadVariance(m.variance_m2));
        }
        if !self.config.sensor_frame_id.is_empty() && m.frame_id != self.config.sensor_frame_id {
            return Err(Rejection::WrongFrame {
                got: m.frame_id.clone(),
                expected: self.config.sensor_frame_id.clone(),
            });
        }
        if !self.tracks.contains_key(&m.landmark_id) {
            if self.config.unknown_landmarks == UnknownLandmarkPolicy::Reject || m.landmark_id.is_empty() {
                return Err(Rejection::UnknownLandmark(m.landmark_id.clone()));
            }
            if self.config.unknown_landmarks == UnknownLandmarkPolicy::DefaultPrior {
                let track = self
                    .tracking_state(self.default_prior)
                    .and_then(|state| self.new_track(state))
                    .map_err(|e| Rejection::Estimator(e.to_string()))?;
                self.tracks.insert(m.landmark_id.clone(), track);
            }
        }
        let last_s = self.tracks.get(&m.landmark_id).map_or(0.0, |t| t.last_stamp_s);
        if m.stamp_s < last_s {
            return Err(Rejection::StampBackwards { stamp_s: m.stamp_s, last_s });
        }
        let pose = match self.odometry.pose_at(m.stamp_s) {
            Ok(pose) => pose,
            // Waits for odometry (ranges queued before it keep their order).
            Err(PoseLookupError::Empty) => return Ok(RangeOutcome::Pending),
            Err(PoseLookupError::TooNew { by_s, .. }) if by_s <= self.config.odom_wait_s => {
                return Ok(RangeOutcome::Pending)
            }
            Err(e) => return Err(Rejection::NoPose(e)),
        };
        let sensor = pose * Point3::from(self.config.sensor_offset());
        let variance = if m.variance_m2 > 0.0 { m.variance_m2 } else { self.config.default_noise_std_m.powi(2) };
        let x = Vector2::new(sensor.x, sensor.y);
        let start = Instant::now();
        let estimator_error = |e: EstimatorError| Rejection::Estimator(e.to_string());
        if !self.tracks.contains_key(&m.landmark_id) {
            // `initialise`: the grid is centred on the sensor position of the first range.
            let init = &self.config.initialisation;
            let grid = InitialisationGrid::new(
                x,
                init.region_radius_m,
                init.cell_m,
                self.config.estimator.noise_shape,
                self.config.calibration.prior(),
            )
            .map_err(estimator_error)?;
            let track = self.new_track(TrackState::Initialising(Box::new(grid))).map_err(estimator_error)?;
            self.tracks.insert(m.landmark_id.clone(), track);
        }
        let track = &self.tracks[&m.landmark_id];
        let gate = self.config.innovation_gate_sigma;
        let shape = self.config.estimator.noise_shape;
        let (state, stats) = match &track.state {
            TrackState::Initialising(grid) => {
                let mut grid = grid.clone();
                grid.add_range(x, m.range_m, variance).map_err(estimator_error)?;
                let init = &self.config.initialisation;
                let stats = UpdateStats {
                    iterations: 1,
                    converged: true,
                    evaluations: grid.active_cells(),
                    components: 0,
                    log_evidence: f64::NEG_INFINITY,
                };
                if grid.ranges() >= init.min_ranges && grid.largest_std_m() <= init.max_std_m {
                    (self.start_tracking(&grid).map_err(estimator_error)?, stats)
                } else {
                    (TrackState::Initialising(grid), stats)
                }
            }
            TrackState::Position(state, window) => {
                let model = RangeModel::new(x, m.range_m, variance, shape).map_err(estimator_error)?;
                check_gate(gate, &state.summary().map_err(estimator_error)?, &model)?;
                let (next, stats) = self.estimator.update_with_model(state, &model).map_err(estimator_error)?;
                let mut window = window.clone();
                let (next, _) = window.push(&self.estimator, next, model, &self.config.relinearisation, None);
                (TrackState::Position(next, window), stats)
            }
            TrackState::Calibrated(state, window, cavity) => {
                let model = CalibratedRangeModel::new(x, m.range_m, variance, shape).map_err(estimator_error)?;
                check_gate(gate, &state.summary().map_err(estimator_error)?, &model)?;
                let (next, stats) = self.calibrated_estimator.update_with_model(state, &model).map_err(estimator_error)?;
                let mut window = window.clone();
                // A re-solve takes in what the other landmarks now know about (s, b).
                let new_cavity = if window.refine_due(&self.config.relinearisation) {
                    self.cavity(&m.landmark_id)
                } else {
                    None
                };
                let new_anchor = new_cavity.and_then(|c| replace_calibration_prior(&window.anchor, cavity, &c));
                let (next, refined) =
                    window.push(&self.calibrated_estimator, next, model, &self.config.relinearisation, new_anchor);
                let cavity = match (refined, new_anchor, new_cavity) {
                    (true, Some(_), Some(c)) => c,
                    _ => *cavity,
                };
                (TrackState::Calibrated(next, window, cavity), stats)
            }
        };
        let (summary, calibration) = summarise(&state, self.sensor_calibration.as_ref()).map_err(estimator_error)?;
        if !summary.belief.is_publishable() {
            return Err(Rejection::Estimator("the updated belief is not finite and SPD".into()));
        }
        let latency_s = start.elapsed().as_secs_f64();
        let track = self.tracks.get_mut(&m.landmark_id).expect("inserted above");
        track.state = state;
        track.summary = summary;
        track.calibration = calibration;
        track.measurements_fused += 1;
        track.last_stamp_s = m.stamp_s;
        track.last_latency_s = latency_s;
        track.last_stats = stats;
        track.last_range = Some((x, m.range_m));
        let calibrated = matches!(track.state, TrackState::Calibrated(..));
        if calibrated {
            self.refresh_sensor_calibration();
        }
        Ok(RangeOutcome::Fused(Fused { sensor_position: sensor, stats, latency_s }))
    }

    /// Pools the calibration of every calibrated landmark ([`pool_calibration`]) and
    /// re-summarises them with it (a landmark whose summary would not be publishable
    /// keeps its previous one).
    fn refresh_sensor_calibration(&mut self) {
        let Some(pooled) = self.pooled_calibration(None) else { return };
        self.sensor_calibration = Some(pooled);
        for track in self.tracks.values_mut() {
            if let TrackState::Calibrated(..) = track.state {
                if let Ok((summary, calibration)) = summarise(&track.state, Some(&pooled)) {
                    track.summary = summary;
                    track.calibration = calibration;
                }
            }
        }
    }

    /// The (s, b) belief from the prior and every calibrated landmark except `except`
    /// ([`pool_calibration`]).
    fn pooled_calibration(&self, except: Option<&str>) -> Option<GaussianBelief<2>> {
        let landmarks: Vec<(GaussianBelief<4>, GaussianBelief<2>)> = self
            .tracks
            .iter()
            .filter(|(id, _)| Some(id.as_str()) != except)
            .filter_map(|(_, t)| match &t.state {
                TrackState::Calibrated(s, _, cavity) => s.summary().ok().map(|s| (s.belief, *cavity)),
                _ => None,
            })
            .collect();
        pool_calibration(&self.calibration_prior(), &landmarks)
    }

    /// What the other landmarks know about (s, b): the cavity of landmark `id`.
    fn cavity(&self, id: &str) -> Option<GaussianBelief<2>> {
        self.pooled_calibration(Some(id))
    }

    /// N((s₀, b₀), diag(σ_s², σ_b²)).
    fn calibration_prior(&self) -> GaussianBelief<2> {
        let c = &self.config.calibration;
        GaussianBelief {
            mean: Vector2::new(c.scale_prior, c.offset_prior_m),
            cov: Matrix2::new(c.scale_std * c.scale_std, 0.0, 0.0, c.offset_std_m * c.offset_std_m),
        }
    }

    /// The sensor's range calibration pooled over the landmarks (mean (s, b),
    /// covariance), once a calibrated landmark is tracking.
    pub fn sensor_calibration(&self) -> Option<&GaussianBelief<2>> {
        self.sensor_calibration.as_ref()
    }

    /// Landmarks by id.
    pub fn tracks(&self) -> &BTreeMap<String, LandmarkTrack> {
        &self.tracks
    }

    /// Ranges waiting for odometry.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Ranges fused since start or reset.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Rejected inputs by reason since start or reset.
    pub fn rejected(&self) -> &BTreeMap<&'static str, u64> {
        &self.rejected
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimator::Method;
    use nalgebra::{Translation3, UnitQuaternion};

    fn config() -> LocalizerConfig {
        let mut c = LocalizerConfig {
            odom_frame_id: "odom".into(),
            priors: PriorsConfig {
                ids: vec!["a".into()],
                means_m: vec![1.0, 1.0],
                covs_m2: vec![5.5, -1.5, -1.5, 5.5],
            },
            ..Default::default()
        };
        c.estimator.method = Method::Ekf;
        c
    }

    fn at(x: f64, y: f64) -> Isometry3<f64> {
        Isometry3::from_parts(Translation3::new(x, y, 0.0), UnitQuaternion::identity())
    }

    fn range(t: f64, id: &str, r: f64) -> RangeInput {
        RangeInput { topic: "range".into(), stamp_s: t, frame_id: "s".into(), landmark_id: id.into(), range_m: r, variance_m2: 2.0 }
    }

    #[test]
    fn each_bad_parameter_is_named() {
        let cases: Vec<(&str, Box<dyn Fn(&mut LocalizerConfig)>)> = vec![
            ("sensor_offset_m", Box::new(|c| c.sensor_offset_m = vec![1.0])),
            ("default_noise_std_m", Box::new(|c| c.default_noise_std_m = 0.0)),
            ("max_range_m", Box::new(|c| c.max_range_m = -1.0)),
            ("odom_tolerance_s", Box::new(|c| c.odom_tolerance_s = f64::NAN)),
            ("default_prior.cov_m2", Box::new(|c| c.default_prior.cov_m2 = vec![1.0, 2.0, 2.0, 1.0])),
            ("default_prior.mean_m", Box::new(|c| c.default_prior.mean_m = vec![1.0])),
            ("priors.means_m", Box::new(|c| c.priors.means_m.push(1.0))),
            ("priors.covs_m2", Box::new(|c| c.priors.covs_m2[0] = -1.0)),
            ("priors.ids", Box::new(|c| c.priors.ids[0].clear())),
            ("estimator.flow.samples", Box::new(|c| c.estimator.flow.samples = 0)),
        ];
        for (name, mutate) in cases {
            let mut c = config();
            mutate(&mut c);
            match c.validate() {
                Err(ConfigError::Invalid { parameter, .. }) => assert_eq!(parameter, name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    /// With the EKF the first update has a closed form; the localiser must feed it
    /// the interpolated sensor position (offset rotated by the heading).
    #[test]
    fn fuses_with_the_interpolated_sensor_position() {
        let mut c = config();
        c.sensor_offset_m = vec![1.0, 0.0, 0.0];
        let mut loc = Localizer::new(c).unwrap();
        let yaw = |a: f64| Isometry3::from_parts(Translation3::new(0.0, 0.0, 0.0), UnitQuaternion::from_euler_angles(0.0, 0.0, a));
        loc.add_odometry(1.0, "odom", yaw(0.0)).unwrap();
        loc.add_odometry(2.0, "odom", yaw(std::f64::consts::PI)).unwrap();
        // Halfway: heading π/2, so the sensor is at (0, 1).
        let RangeOutcome::Fused(fused) = loc.add_range(&range(1.5, "a", 3.0)).unwrap() else {
            panic!("odometry covers the stamp: the range must be fused at once")
        };
        assert!((fused.sensor_position - Point3::new(0.0, 1.0, 0.0)).norm() < 1e-9);
        // Independent EKF: h(μ) = ‖μ − x‖, H = (μ − x)ᵀ/‖μ − x‖.
        let mu: Vector2<f64> = Vector2::new(1.0, 1.0);
        let p: Matrix2<f64> = Matrix2::new(5.5, -1.5, -1.5, 5.5);
        let x: Vector2<f64> = Vector2::new(0.0, 1.0);
        let d = (mu - x).norm();
        let h = (mu - x).transpose() / d;
        let s = (h * p * h.transpose())[(0, 0)] + 2.0;
        let k = p * h.transpose() / s;
        let mean = mu + k * (3.0 - d);
        let got = loc.tracks()["a"].summary.belief.mean;
        assert!((got - mean).norm() < 1e-9, "{got} vs {mean}");
    }

    #[test]
    fn every_rejection_is_counted_and_leaves_the_belief_alone() {
        let mut c = config();
        c.sensor_frame_id = "s".into();
        c.unknown_landmarks = UnknownLandmarkPolicy::Reject;
        c.max_range_m = 50.0;
        let mut loc = Localizer::new(c).unwrap();
        loc.add_odometry(1.0, "odom", at(0.0, 0.0)).unwrap();
        loc.add_odometry(2.0, "odom", at(1.0, 0.0)).unwrap();
        assert_eq!(loc.add_odometry(1.5, "odom", at(0.0, 0.0)).unwrap_err().reason(), "odom_stamp_backwards");
        assert_eq!(loc.add_odometry(3.0, "map", at(0.0, 0.0)).unwrap_err().reason(), "wrong_frame");
        assert_eq!(loc.add_odometry(3.0, "odom", at(f64::NAN, 0.0)).unwrap_err().reason(), "odom_non_finite");
        let before = loc.tracks()["a"].summary.belief;
        let bad = [
            (RangeInput { stamp_s: 0.0, ..range(0.0, "a", 3.0) }, "bad_stamp"),
            (range(1.5, "a", f64::NAN), "non_finite_range"),
            (range(1.5, "a", f64::INFINITY), "non_finite_range"),
            (range(1.5, "a", -1.0), "negative_range"),
            (range(1.5, "a", 60.0), "beyond_max_range"),
            (RangeInput { variance_m2: -1.0, ..range(1.5, "a", 3.0) }, "bad_variance"),
            (RangeInput { variance_m2: f64::NAN, ..range(1.5, "a", 3.0) }, "bad_variance"),
            (RangeInput { frame_id: "x".into(), ..range(1.5, "a", 3.0) }, "wrong_frame"),
            (range(1.5, "zz", 3.0), "unknown_landmark"),
            (range(0.5, "a", 3.0), "older_than_odometry"),
            (range(3.5, "a", 3.0), "newer_than_odometry"),
        ];
        for (m, reason) in &bad {
            assert_eq!(loc.add_range(m).unwrap_err().reason(), *reason, "{m:?}");
        }
        assert_eq!(loc.tracks()["a"].summary.belief, before);
        loc.add_range(&range(1.8, "a", 3.0)).unwrap();
        assert_eq!(loc.add_range(&range(1.7, "a", 3.0)).unwrap_err().reason(), "stamp_backwards");
        assert_eq!(loc.accepted(), 1);
        let total: u64 = loc.rejected().values().sum();
        assert_eq!(total, bad.len() as u64 + 3 + 1);
        assert_eq!(loc.tracks()["a"].measurements_fused, 1);
    }

    /// A range that arrives before the odometry of its stamp is not lost: it waits and
    /// is fused, in order, when that odometry comes; one too far ahead is rejected.
    #[test]
    fn ranges_wait_for_the_odometry_that_covers_them() {
        let mut loc = Localizer::new(config()).unwrap();
        assert_eq!(loc.add_range(&range(1.0, "a", 3.0)), Ok(RangeOutcome::Pending));
        assert_eq!(loc.add_range(&range(1.4, "a", 3.1)), Ok(RangeOutcome::Pending));
        assert_eq!(loc.add_odometry(1.0, "odom", at(0.0, 0.0)).unwrap().len(), 1);
        assert_eq!(loc.pending(), 1);
        assert_eq!(loc.tracks()["a"].measurements_fused, 1);
        let done = loc.add_odometry(1.5, "odom", at(1.0, 0.0)).unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].input.range_m, 3.1);
        assert!(done[0].result.is_ok());
        assert_eq!(loc.pending(), 0);
        assert_eq!(loc.accepted(), 2);
        // 1.5 s past the newest odometry (odom_wait_s = 1): rejected at once.
        assert_eq!(loc.add_range(&range(3.0, "a", 3.0)).unwrap_err().reason(), "newer_than_odometry");
    }

    /// Regression: with `newest + tolerance` and `stamp − newest` rounding differently,
    /// a drained range was queued again and `add_odometry` never returned.
    #[test]
    fn a_range_at_the_tolerance_edge_is_drained_once() {
        let mut loc = Localizer::new(config()).unwrap();
        let (newest, stamp) = (1001.0222715811004, 1001.1222715811004);
        assert!(stamp <= newest + 0.1 && stamp - newest > 0.1, "the rounding edge case");
        loc.add_odometry(1000.5, "odom", at(0.0, 0.0)).unwrap();
        assert_eq!(loc.add_range(&range(stamp, "a", 3.0)), Ok(RangeOutcome::Pending));
        loc.add_odometry(newest, "odom", at(0.0, 0.0)).unwrap();
        assert_eq!(loc.pending(), 1, "just outside the tolerance: still waiting");
        assert_eq!(loc.add_odometry(1001.2, "odom", at(0.0, 0.0)).unwrap().len(), 1);
        assert_eq!(loc.pending(), 0);
    }

    /// Gate against a hand-computed predicted variance: prior N((1, 1), Σ₀), sensor at
    /// the origin, h = (1, 1)/√2, hᵀΣ₀h = (5.5 − 1.5·2 + 5.5)/2 = 4, S = 4 + 2 = 6.
    #[test]
    fn innovation_gate_rejects_far_ranges_only_when_enabled() {
        let r_hat = 2f64.sqrt();
        let z_far = r_hat + 5.0 * 6f64.sqrt(); // 5 predicted sigmas
        for (gate, expect_reject) in [(0.0, false), (4.0, true), (6.0, false)] {
            let mut c = config();
            c.innovation_gate_sigma = gate;
            let mut loc = Localizer::new(c).unwrap();
            loc.add_odometry(1.0, "odom", at(0.0, 0.0)).unwrap();
            let before = loc.tracks()["a"].summary.belief;
            let got = loc.add_range(&range(1.0, "a", z_far));
            if expect_reject {
                let r = got.unwrap_err();
                assert_eq!(r.reason(), "innovation_gate");
                assert!(matches!(r, Rejection::InnovationGate { sigmas, .. } if (sigmas - 5.0).abs() < 1e-9));
                assert_eq!(loc.tracks()["a"].summary.belief, before);
            } else {
                assert!(got.is_ok(), "gate {gate}: {got:?}");
            }
        }
    }

    /// No prior: initialising (no estimate) until ranges from three places make the
    /// grid unimodal, then tracking near the truth; exact ranges from a circle around it.
    #[test]
    fn a_landmark_without_prior_initialises_from_its_ranges() {
        let mut c = config();
        c.unknown_landmarks = UnknownLandmarkPolicy::Initialise;
        c.initialisation = InitialisationConfig { region_radius_m: 30.0, cell_m: 0.25, max_std_m: 1.0, min_ranges: 3 };
        c.estimator.method = crate::estimator::Method::Natural;
        let mut loc = Localizer::new(c).unwrap();
        let truth = Vector2::new(3.0, -4.0);
        let path: Vec<Vector2<f64>> =
            (0..40).map(|k| Vector2::new(12.0 * (k as f64 * 0.15).cos(), 12.0 * (k as f64 * 0.15).sin())).collect();
        let mut first_tracking = None;
        for (k, x) in path.iter().enumerate() {
            let t = 1.0 + k as f64;
            loc.add_odometry(t, "odom", at(x.x, x.y)).unwrap();
            loc.add_range(&RangeInput { variance_m2: 0.01, ..range(t, "new", (truth - x).norm()) }).unwrap();
            let track = &loc.tracks()["new"];
            if k == 0 {
                assert_eq!(track.status(), TrackStatus::Initialising, "one range is a ring");
                assert!(!track.is_tracking());
            }
            if track.is_tracking() && first_tracking.is_none() {
                first_tracking = Some(k);
            }
        }
        let k = first_tracking.expect("never started tracking");
        assert!(k >= 2, "needs min_ranges: {k}");
        let b = loc.tracks()["new"].summary.belief;
        assert!((b.mean - truth).norm() < 0.05, "{}", b.mean);
        assert!(loc.tracks()["new"].calibration.is_none());
    }

    #[test]
    fn waiting_ranges_are_bounded() {
        let mut loc = Localizer::new(config()).unwrap();
        for k in 0..MAX_PENDING_RANGES + 5 {
            loc.add_range(&range(1.0 + k as f64 * 1e-4, "a", 3.0)).unwrap();
        }
        assert_eq!(loc.pending(), MAX_PENDING_RANGES);
        assert_eq!(loc.rejected()["odometry_wait_overflow"], 5);
    }

    #[test]
    fn unknown_ids_start_from_the_default_prior_and_reset_restores_priors() {
        let mut loc = Localizer::new(config()).unwrap();
        loc.add_odometry(1.0, "odom", at(0.0, 0.0)).unwrap();
        loc.add_range(&range(1.0, "new", 5.0)).unwrap();
        loc.add_range(&range(1.0, "a", 2.0)).unwrap();
        assert_eq!(loc.tracks().len(), 2);
        loc.reset();
        assert_eq!(loc.tracks().len(), 1);
        let a = &loc.tracks()["a"];
        assert_eq!(a.summary.belief.mean, Vector2::new(1.0, 1.0));
        assert_eq!(a.measurements_fused, 0);
        assert_eq!(loc.accepted(), 0);
    }
}
