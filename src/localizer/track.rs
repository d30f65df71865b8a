//! What the localiser knows about one landmark: its estimator state (grid, position,
//! or position with range calibration), the relinearisation window, and the published
//! summary.

use super::config::RelinearisationConfig;
use crate::estimator::{
    CalibratedRangeModel, Estimator, EstimatorError, GaussianBelief, InitialisationGrid, MeasurementModel,
    MixtureComponent, RangeModel, State, Summary, UpdateStats,
};
use nalgebra::{Matrix2, Vector2};

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
    pub(crate) fn new(anchor: GaussianBelief<D>) -> Self {
        Self { anchor, ranges: Vec::new() }
    }

    /// Whether the next [`RangeWindow::push`] re-solves.
    pub(crate) fn refine_due(&self, config: &RelinearisationConfig) -> bool {
        config.every_ranges > 0 && (self.ranges.len() + 1) % config.every_ranges as usize == 0
    }

    /// Adds the range `model` that produced `state`; every `every_ranges` ranges
    /// re-solves `state` for anchor × all ranges of the window, with `new_anchor`
    /// replacing the anchor when given (a belief with more than one component is left
    /// to the mixture); a full window (`max_ranges`) becomes the anchor of the next. A
    /// failed re-solve keeps the sequential state and the anchor. Returns the state and
    /// whether it was re-solved.
    pub(crate) fn push(
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
pub(crate) fn replace_calibration_prior(
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
pub(crate) fn summarise(
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
