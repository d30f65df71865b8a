//! A range as received, the checks it must pass (see the module doc of
//! [`crate::localizer`]), why it can be rejected, and what became of it.

use super::config::LocalizerConfig;
use crate::estimator::{MeasurementModel, MixtureComponent, Summary, UpdateStats};
use crate::odometry::{OdometryRejection, PoseLookupError};
use nalgebra::Point3;

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
    /// The sensor's own valid interval [min, max], metres, when the message carries one
    /// (`sensor_msgs/Range`: a range outside it "should be discarded"); `None` for
    /// `landmark_flow/RangeMeasurement`, or when both are 0 (not filled in).
    pub sensor_limits_m: Option<(f64, f64)>,
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
    #[error("the message's sensor limits [{min_m}, {max_m}] m are not a finite interval")]
    BadSensorLimits { min_m: f64, max_m: f64 },
    #[error("range {range_m} m is outside the sensor's own limits [{min_m}, {max_m}] m")]
    OutsideSensorLimits { range_m: f64, min_m: f64, max_m: f64 },
    #[error("variance {0} m^2 is negative or not finite")]
    BadVariance(f64),
    #[error("frame `{got}` is not the expected `{expected}`")]
    WrongFrame { got: String, expected: String },
    #[error("landmark `{0}` has no prior and unknown landmarks are rejected")]
    UnknownLandmark(String),
    #[error("landmark id `{0}` is empty, longer than 128 bytes or contains control characters")]
    BadLandmarkId(String),
    #[error("landmark `{0}` would exceed localizer.max_landmarks ({1})")]
    LandmarkCap(String, u32),
    #[error("stamp {stamp_s:.3} s is older than the last fused range of this landmark ({last_s:.3} s)")]
    StampBackwards { stamp_s: f64, last_s: f64 },
    #[error("range {range_m} m at {stamp_s:.3} s repeats the last fused range of this landmark")]
    Duplicate { stamp_s: f64, range_m: f64 },
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
    #[error("{0}")]
    StaticTransform(super::mount::MountError),
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
            Rejection::BadSensorLimits { .. } => "bad_sensor_limits",
            Rejection::OutsideSensorLimits { .. } => "outside_sensor_limits",
            Rejection::BadVariance(_) => "bad_variance",
            Rejection::WrongFrame { .. } => "wrong_frame",
            Rejection::UnknownLandmark(_) => "unknown_landmark",
            Rejection::BadLandmarkId(_) => "bad_landmark_id",
            Rejection::LandmarkCap(..) => "landmark_cap",
            Rejection::StampBackwards { .. } => "stamp_backwards",
            Rejection::Duplicate { .. } => "duplicate",
            Rejection::NoPose(PoseLookupError::Empty) => "no_odometry",
            Rejection::NoPose(PoseLookupError::TooOld { .. }) => "older_than_odometry",
            Rejection::NoPose(PoseLookupError::TooNew { .. }) => "newer_than_odometry",
            Rejection::Odometry(OdometryRejection::StampBackwards { .. }) => "odom_stamp_backwards",
            Rejection::Odometry(OdometryRejection::BadStamp(_)) => "odom_bad_stamp",
            Rejection::Odometry(OdometryRejection::NonFinite) => "odom_non_finite",
            Rejection::Odometry(OdometryRejection::Jump { .. }) => "odom_jump",
            Rejection::Odometry(OdometryRejection::StampFuture { .. }) => "odom_stamp_future",
            Rejection::Estimator(_) => "estimator_error",
            Rejection::PendingOverflow => "odometry_wait_overflow",
            Rejection::InnovationGate { .. } => "innovation_gate",
            Rejection::StaticTransform(_) => "bad_static_transform",
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

/// Checks 1–4 of the module doc of [`crate::localizer`], those that need only the
/// message and the config: a positive finite stamp; a finite range in
/// [0, `max_range_m`]; a finite variance ≥ 0; the expected frame (when set).
///
/// # Errors
/// The first failing check's [`Rejection`].
pub(crate) fn check_message(m: &RangeInput, config: &LocalizerConfig) -> Result<(), Rejection> {
    if !(m.stamp_s.is_finite() && m.stamp_s > 0.0) {
        return Err(Rejection::BadStamp(m.stamp_s));
    }
    if !m.range_m.is_finite() {
        return Err(Rejection::NonFiniteRange(m.range_m));
    }
    if m.range_m < 0.0 {
        return Err(Rejection::NegativeRange(m.range_m));
    }
    if m.range_m > config.max_range_m {
        return Err(Rejection::BeyondMaxRange { range_m: m.range_m, max_m: config.max_range_m });
    }
    if let Some((min_m, max_m)) = m.sensor_limits_m {
        if !(min_m.is_finite() && max_m.is_finite() && min_m <= max_m) {
            return Err(Rejection::BadSensorLimits { min_m, max_m });
        }
        if m.range_m < min_m || m.range_m > max_m {
            return Err(Rejection::OutsideSensorLimits { range_m: m.range_m, min_m, max_m });
        }
    }
    if !(m.variance_m2.is_finite() && m.variance_m2 >= 0.0) {
        return Err(Rejection::BadVariance(m.variance_m2));
    }
    if !config.sensor_frame_id.is_empty() && m.frame_id != config.sensor_frame_id {
        return Err(Rejection::WrongFrame { got: m.frame_id.clone(), expected: config.sensor_frame_id.clone() });
    }
    Ok(())
}

/// [`Rejection::InnovationGate`] when `gate` = k > 0 and the measurement is more than k
/// predicted standard deviations from every component ([`innovation_gate`]).
pub(crate) fn check_gate<const D: usize, M: MeasurementModel<D>>(gate: f64, summary: &Summary<D>, model: &M) -> Result<(), Rejection> {
    if gate > 0.0 {
        let sigmas = innovation_gate(summary, model);
        if sigmas > gate {
            return Err(Rejection::InnovationGate { range_m: model.measurement(), sigmas, gate });
        }
    }
    Ok(())
}

/// The result of one accepted range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fused {
    /// Sensor position in the odometry frame at the range's stamp, metres.
    pub sensor_position: Point3<f64>,
    pub stats: UpdateStats,
    pub latency_s: f64,
}
