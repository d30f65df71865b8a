//! What the localiser knows about one landmark: its estimator state (grid, position,
//! or position with range calibration), the relinearisation window, and the published
//! summary.

use super::config::RelinearisationConfig;
use super::imm::ImmStep;
use crate::estimator::{
    calibration_marginal, condition_position, CalibratedRangeModel, CalibratedRangeModel3, Estimator, EstimatorError, GaussianBelief,
    InitialisationGrid, MeasurementModel, MixtureComponent, RangeModel, State, Summary, UpdateStats, replace_calibration_prior,
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
    /// Position (x, y, z) (`localizer.dimension: 3`), calibration off. Before its first
    /// range the state is the prior; the first range splits it at the sensor's plane
    /// into its mirror halves ([`Estimator::initial_mirrored_state`]).
    Position3(State<3>, RangeWindow<3, RangeModel<3>>),
    /// Position and range calibration θ = (y₁, y₂, s, b), and the belief over (s, b)
    /// from the other landmarks (the "cavity") that its anchor includes.
    ///
    /// A joint state with more than the landmark (e.g. a robot-pose error appended to
    /// θ) would be one more variant here, with its model and the block offsets of
    /// [`crate::estimator::calibration`].
    Calibrated(State<4>, RangeWindow<4, CalibratedRangeModel>, GaussianBelief<2>),
    /// Position (x, y, z) and range calibration θ = (y₁, y₂, y₃, s, b)
    /// (`localizer.dimension: 3`), and its cavity, as [`TrackState::Calibrated`]; mirror
    /// halves as [`TrackState::Position3`].
    Calibrated3(State<5>, RangeWindow<5, CalibratedRangeModel3>, GaussianBelief<2>),
    /// A landmark of the joint state of drifting odometry ([`super::slam::JointState`]
    /// holds its belief, correlated with the odometry error and the other landmarks).
    Joint,
}

/// A track's next state, computed from a reference to the current one (nothing of it
/// is copied: a new grid is a new buffer of the surviving cells, a window only gets
/// the new range on [`TrackState::commit`]), so a rejected range leaves the track
/// untouched at no cost.
#[derive(Debug)]
pub(crate) enum TrackStep {
    /// The grid with one more range.
    Grid(Box<InitialisationGrid>),
    /// The grid became unimodal: a new tracking state.
    Start(TrackState),
    /// The position state after one range.
    Position(State<2>, WindowStep<2, RangeModel<2>>),
    /// The 3-D position state after one range.
    Position3(State<3>, WindowStep<3, RangeModel<3>>),
    /// The calibrated state after one range, and its cavity.
    Calibrated(State<4>, WindowStep<4, CalibratedRangeModel>, GaussianBelief<2>),
    /// The 3-D calibrated state after one range, and its cavity.
    Calibrated3(State<5>, WindowStep<5, CalibratedRangeModel3>, GaussianBelief<2>),
    /// The joint state's change (committed by the localizer, which owns that state).
    Joint(Box<ImmStep>),
}

impl TrackStep {
    /// Position summaries and calibration of the state this step leads to (as
    /// [`summarise`] of the committed state).
    pub(crate) fn summarise(&self, sensor: Option<&GaussianBelief<2>>) -> Result<Summaries, EstimatorError> {
        match self {
            TrackStep::Grid(grid) => Ok((grid_summary(grid), None, None)),
            TrackStep::Start(state) => summarise(state, sensor),
            TrackStep::Position(state, _) => Ok((state.summary()?, None, None)),
            TrackStep::Position3(state, _) => position3_summaries(state),
            TrackStep::Calibrated(state, ..) => calibrated_summary(state, sensor),
            TrackStep::Calibrated3(state, ..) => calibrated3_summaries(state, sensor),
            TrackStep::Joint(step) => Ok((gaussian_summary(step.landmark, step.stats), None, None)),
        }
    }

    /// Whether the state it leads to is calibrated (the sensor's pooled calibration
    /// changes).
    pub(crate) fn is_calibrated(&self) -> bool {
        matches!(
            self,
            TrackStep::Calibrated(..)
                | TrackStep::Calibrated3(..)
                | TrackStep::Start(TrackState::Calibrated(..) | TrackState::Calibrated3(..))
        )
    }
}

impl TrackState {
    /// Moves `step`, computed by the localiser from this state, in.
    pub(crate) fn commit(&mut self, step: TrackStep) {
        match (self, step) {
            (this, TrackStep::Grid(grid)) => *this = TrackState::Initialising(grid),
            (this, TrackStep::Start(state)) => *this = state,
            (TrackState::Position(state, window), TrackStep::Position(next, change)) => {
                *state = next;
                window.commit(change);
            }
            (TrackState::Position3(state, window), TrackStep::Position3(next, change)) => {
                *state = next;
                window.commit(change);
            }
            (TrackState::Calibrated(state, window, cavity), TrackStep::Calibrated(next, change, next_cavity)) => {
                *state = next;
                window.commit(change);
                *cavity = next_cavity;
            }
            (TrackState::Calibrated3(state, window, cavity), TrackStep::Calibrated3(next, change, next_cavity)) => {
                *state = next;
                window.commit(change);
                *cavity = next_cavity;
            }
            (TrackState::Joint, TrackStep::Joint(_)) => {
                unreachable!("a joint step is committed to the localizer's joint state")
            }
            _ => unreachable!("a track step is committed to the kind of state it was computed from"),
        }
    }
}

/// The ranges fused since `anchor`, kept for relinearisation ([`Estimator::refine`]).
#[derive(Debug, Clone)]
pub struct RangeWindow<const D: usize, M> {
    /// The belief before the first range of the window.
    pub anchor: GaussianBelief<D>,
    pub ranges: Vec<M>,
    /// A full window was folded into the anchor (it is then a moment-matched belief,
    /// not the prior).
    pub folded: bool,
}

/// What one range does to a [`RangeWindow`] ([`RangeWindow::advance`]).
#[derive(Debug)]
pub(crate) struct WindowStep<const D: usize, M> {
    /// The range, appended on commit.
    model: M,
    /// The window's new anchor (after a re-solve with a new anchor, or a fold).
    anchor: Option<GaussianBelief<D>>,
    /// The window is full: it starts empty from `anchor`.
    fold: bool,
}

impl<const D: usize, M: MeasurementModel<D>> RangeWindow<D, M> {
    pub(crate) fn new(anchor: GaussianBelief<D>) -> Self {
        Self { anchor, ranges: Vec::new(), folded: false }
    }

    /// Whether the next [`RangeWindow::advance`] re-solves.
    pub(crate) fn refine_due(&self, config: &RelinearisationConfig) -> bool {
        config.every_ranges > 0 && (self.ranges.len() + 1).is_multiple_of(config.every_ranges as usize)
    }

    /// [`RangeWindow::advance`] of a calibrated window, whose anchor holds the pooled
    /// calibration's cavity `cavity`: a re-solve takes in `new_cavity()` (what the other
    /// landmarks now know about (s, b), asked only when one is due) in its place. Returns
    /// the state, the change to commit and the cavity the window then holds.
    pub(crate) fn advance_calibrated(
        &self,
        estimator: &Estimator<D>,
        state: State<D>,
        model: M,
        config: &RelinearisationConfig,
        cavity: &GaussianBelief<2>,
        new_cavity: impl FnOnce() -> Option<GaussianBelief<2>>,
    ) -> (State<D>, WindowStep<D, M>, GaussianBelief<2>) {
        let new_cavity = if self.refine_due(config) { new_cavity() } else { None };
        let new_anchor = new_cavity.and_then(|c| replace_calibration_prior(&self.anchor, cavity, &c).ok());
        let (state, change, refined) = self.advance(estimator, state, model, config, new_anchor);
        let cavity = match (refined, new_anchor, new_cavity) {
            (true, Some(_), Some(c)) => c,
            _ => *cavity,
        };
        (state, change, cavity)
    }

    /// The range `model` that produced `state`, added to the window: every
    /// `every_ranges` ranges re-solves `state` for anchor × all ranges of the window
    /// and `model`, with `new_anchor` replacing the anchor when given (a belief with
    /// more than one component is left to the mixture); a full window (`max_ranges`)
    /// becomes the anchor of the next. A failed re-solve keeps the sequential state
    /// and the anchor. Returns the state, the change to commit to the window
    /// ([`RangeWindow::commit`]) and whether the state was re-solved. The window itself
    /// is only read.
    pub(crate) fn advance(
        &self,
        estimator: &Estimator<D>,
        state: State<D>,
        model: M,
        config: &RelinearisationConfig,
        new_anchor: Option<GaussianBelief<D>>,
    ) -> (State<D>, WindowStep<D, M>, bool) {
        let due = self.refine_due(config);
        let mut state = state;
        let mut anchor = None;
        let mut refined = false;
        if due && state.summary().is_ok_and(|s| s.components.len() <= 1) {
            let candidate = new_anchor.unwrap_or(self.anchor);
            if let Ok((solved, _)) =
                estimator.refine_concat(&state, &candidate, &self.ranges, std::slice::from_ref(&model))
            {
                state = solved;
                anchor = Some(candidate);
                refined = true;
            }
        }
        let mut fold = false;
        if self.ranges.len() + 1 >= config.max_ranges as usize {
            if let Ok(summary) = state.summary() {
                anchor = Some(summary.belief);
                fold = true;
            }
        }
        (state, WindowStep { model, anchor, fold }, refined)
    }

    /// Applies what [`RangeWindow::advance`] computed: pushes the range (or, for a
    /// full window, starts over) and moves the anchor.
    pub(crate) fn commit(&mut self, step: WindowStep<D, M>) {
        if let Some(anchor) = step.anchor {
            self.anchor = anchor;
        }
        if step.fold {
            self.ranges.clear();
            self.folded = true;
        } else {
            self.ranges.push(step.model);
        }
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

impl RangeCalibration {
    /// Marginal means and variances of a Gaussian over (s, b).
    pub fn from_belief(b: &GaussianBelief<2>) -> Self {
        Self { scale: b.mean[0], scale_variance: b.cov[(0, 0)], offset_m: b.mean[1], offset_variance_m2: b.cov[(1, 1)] }
    }
}

/// Everything known about one landmark.
#[derive(Debug, Clone)]
pub struct LandmarkTrack {
    pub state: TrackState,
    /// Position belief: the (x, y) marginal of `state` (moment-matched Gaussian,
    /// components, health); the grid's moments while initialising.
    pub summary: Summary<2>,
    /// With `localizer.dimension: 3`, the (x, y, z) belief that `summary` is the (x, y)
    /// marginal of.
    pub summary3: Option<Summary<3>>,
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
    /// The part of `summary`'s covariance that is the map's unknown scale, m²
    /// ([`super::Localizer::map_scale_cov`]; zero unless `odometry: drifting` with
    /// calibration). No range can reduce it.
    pub map_scale_cov_m2: Matrix2<f64>,
}

impl LandmarkTrack {
    /// A track with no range fused yet.
    pub(crate) fn new((summary, summary3, calibration): Summaries, state: TrackState) -> Self {
        Self {
            summary3,
            summary,
            calibration,
            state,
            measurements_fused: 0,
            measurements_rejected: 0,
            last_stamp_s: 0.0,
            last_latency_s: 0.0,
            last_stats: UpdateStats::default(),
            last_range: None,
            map_scale_cov_m2: Matrix2::zeros(),
        }
    }

    /// The belief ranges can still sharpen: `summary.belief` without
    /// `map_scale_cov_m2` (what the planner scores and the goal's target is chosen by).
    pub fn observable_belief(&self) -> GaussianBelief<2> {
        let b = self.summary.belief;
        GaussianBelief { mean: b.mean, cov: b.cov - self.map_scale_cov_m2 }
    }

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

/// The (x, y) marginal of a 3-D summary: of the moment-matched Gaussian and of each
/// component (a Gaussian's marginal is its (x, y) block).
pub(crate) fn planar(s: &Summary<3>) -> Summary<2> {
    let xy = |b: &GaussianBelief<3>| GaussianBelief { mean: b.mean.xy(), cov: b.cov.fixed_view::<2, 2>(0, 0).into_owned() };
    Summary {
        belief: xy(&s.belief),
        components: s.components.iter().map(|c| MixtureComponent { weight: c.weight, belief: xy(&c.belief) }).collect(),
        updates: s.updates,
        last_update: s.last_update,
    }
}

/// A single Gaussian as a summary (a joint-state landmark's marginal).
pub(crate) fn gaussian_summary(belief: GaussianBelief<2>, last_update: UpdateStats) -> Summary<2> {
    Summary { belief, components: vec![MixtureComponent { weight: 1.0, belief }], updates: 0, last_update }
}

/// The grid's moments as a one-component summary.
fn grid_summary(grid: &InitialisationGrid) -> Summary<2> {
    let belief = grid.moments();
    Summary {
        belief,
        components: vec![MixtureComponent { weight: 1.0, belief }],
        updates: u64::from(grid.ranges()),
        last_update: UpdateStats::default(),
    }
}

/// The position summary of a calibrated state θ = (y, s, b) (y of dimension P, D =
/// P + 2) and the calibration it is conditioned on: every component's position
/// conditioned on the sensor's pooled calibration `sensor` when given, else on the
/// state's own (s, b) marginal ([`condition_position`]).
fn conditioned<const P: usize, const D: usize>(
    state: &State<D>,
    sensor: Option<&GaussianBelief<2>>,
) -> Result<(Summary<P>, RangeCalibration), EstimatorError> {
    let full = state.summary()?;
    let calibration = *sensor.unwrap_or(&calibration_marginal(&full.belief));
    let summary = Summary {
        belief: condition_position::<P, D>(&full.belief, &calibration)?,
        components: full
            .components
            .iter()
            .map(|c| Ok(MixtureComponent { weight: c.weight, belief: condition_position::<P, D>(&c.belief, &calibration)? }))
            .collect::<Result<_, EstimatorError>>()?,
        updates: full.updates,
        last_update: full.last_update,
    };
    Ok((summary, RangeCalibration::from_belief(&calibration)))
}

/// The summaries of a planar calibrated state ([`conditioned`]).
fn calibrated_summary(state: &State<4>, sensor: Option<&GaussianBelief<2>>) -> Result<Summaries, EstimatorError> {
    let (summary, calibration) = conditioned::<2, 4>(state, sensor)?;
    Ok((summary, None, Some(calibration)))
}

/// A track's published position summary (x, y), its (x, y, z) summary with
/// `localizer.dimension: 3`, and its range calibration when estimated.
pub(crate) type Summaries = (Summary<2>, Option<Summary<3>>, Option<RangeCalibration>);

/// The summaries of a 3-D position state.
fn position3_summaries(state: &State<3>) -> Result<Summaries, EstimatorError> {
    let s3 = state.summary()?;
    Ok((planar(&s3), Some(s3), None))
}

/// The summaries of a 3-D calibrated state ([`conditioned`]) and its (x, y) marginal.
fn calibrated3_summaries(state: &State<5>, sensor: Option<&GaussianBelief<2>>) -> Result<Summaries, EstimatorError> {
    let (s3, calibration) = conditioned::<3, 5>(state, sensor)?;
    Ok((planar(&s3), Some(s3), Some(calibration)))
}

/// Position summaries and calibration of a track's state ([`Summaries`]); a calibrated
/// state's position is conditioned on the sensor's pooled calibration `sensor` when
/// given ([`crate::estimator::pool_calibration`], [`condition_position`]).
pub(crate) fn summarise(state: &TrackState, sensor: Option<&GaussianBelief<2>>) -> Result<Summaries, EstimatorError> {
    match state {
        TrackState::Initialising(grid) => Ok((grid_summary(grid), None, None)),
        TrackState::Position(s, _) => Ok((s.summary()?, None, None)),
        TrackState::Position3(s, _) => position3_summaries(s),
        TrackState::Calibrated(s, ..) => calibrated_summary(s, sensor),
        TrackState::Calibrated3(s, ..) => calibrated3_summaries(s, sensor),
        TrackState::Joint => Err(EstimatorError::StateMismatch { state: "joint", method: "summarise (the joint state holds it)" }),
    }
}
