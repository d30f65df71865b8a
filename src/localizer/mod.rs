//! The landmark localiser: one path from raw inputs (odometry poses, range
//! measurements) to per-landmark beliefs, shared by the ROS node and the bag replayer
//! so that "replay equals live" holds by construction.
//!
//! A range is accepted only if every check passes, in this order (the first failing
//! check is its [`Rejection`] reason, counted per reason):
//! 1. the stamp is a positive finite time;
//! 2. the range is finite, ≥ 0 and ≤ `max_range_m`, and within the message's own sensor
//!    limits when it carries them (`sensor_msgs/Range`);
//! 3. the variance is finite and ≥ 0 (0 means `default_noise_std_m²`);
//! 4. the frame is `sensor_frame_id` (when that is set);
//! 5. the landmark is known, or `unknown_landmarks` is `default_prior` or `initialise`;
//! 6. the stamp is not older than the last range fused for that landmark, and the range
//!    is not an exact repeat of it (same stamp and value);
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
//! Odometry is accepted when its frame is `odom_frame_id` (when set), its pose finite,
//! its stamp positive, after the newest one and not implausibly far after the clock,
//! and the pose within the speed bounds of `odometry_gate` from the newest
//! ([`OdometryGateConfig`]); a rejected pose is never stored.
//!
//! The sensor position is the interpolated base pose ⊕ `sensor_offset_m`; the
//! estimate is planar (x, y): ranges are taken as horizontal distances. With
//! `odometry: drifting` the landmarks live in the map frame, in one joint state with
//! the odometry's error ([`slam`]); a landmark with a wide prior runs as its own track
//! (mixture, ranges placed at the sensor's map position with its uncertainty as extra
//! noise) until it is one Gaussian no wider than `initialisation.max_std_m`, then joins.
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
//! propagation: each re-solve takes the other landmarks' (s, b) as its prior; kept as
//! running sums of the landmarks' sites, `pool.rs`), and each
//! published position is conditioned on the pooled (s, b). Per sensor rather than per
//! landmark: scale comes from the radio's clock and propagation model, shared by every
//! beacon it ranges to, and per-landmark offsets would absorb odometry drift (Plaza1
//! dead reckoning: 3.7 m batch optimum per landmark, 2.4 m pooled).
//!
//! **Relinearisation** (`relinearisation.every_ranges`): each tracking landmark keeps
//! its ranges since an anchor belief ([`RangeWindow`]) and is periodically re-solved
//! for all of them ([`Estimator::refine`]).
//!
//! [`pool_calibration`]: crate::estimator::pool_calibration

mod config;
pub mod drift;
pub mod imm;
pub mod mount;
mod pool;
pub mod time_offset;
mod input;
pub mod slam;
pub mod smoother;
mod track;

pub use config::{
    CalibrationConfig, InitialisationConfig, LocalizerConfig, OdometryGateConfig, OdometryMode, PriorConfig, PriorsConfig, RelinearisationConfig, HeightPriorConfig,
    SmootherConfig, UnknownLandmarkPolicy,
};
pub use input::{innovation_gate, Fused, Processed, RangeInput, RangeOutcome, Rejection, MAX_PENDING_RANGES};
pub use track::{LandmarkTrack, RangeCalibration, RangeWindow, TrackState, TrackStatus};

use crate::config::ConfigError;
use crate::estimator::{
    calibration_site, joint_prior, CalibratedRangeModel, Estimator, EstimatorError,
    CalibratedRangeModel3, GaussianBelief, HeightPrior, InitialisationGrid, JointRangeModel, MeasurementModel, MixtureComponent,
    NoiseShape, RangeModel, State, Summary, UpdateStats,
};
use smoother::{History, SmootherStats, SolveConfig};
use drift::{map_pose, planar_pose, MapPose};
use imm::JointImm;
use slam::psd_part;
use crate::odometry::{OdometryBuffer, OdometryRejection, PoseLookupError};
use input::{check_gate, check_message};
use nalgebra::{Isometry3, Matrix2, Matrix2x3, Matrix3, Point3, Vector2, Vector3};
use std::collections::BTreeMap;
use std::time::Instant;
use track::{gaussian_summary, summarise, TrackStep};

/// An estimator that cannot be built from a validated config: its config error, or
/// the message of another failure.
fn estimator_config_error(e: EstimatorError) -> ConfigError {
    match e {
        EstimatorError::Config(c) => c.prefixed("estimator"),
        other => ConfigError::Parse(other.to_string()),
    }
}

/// The re-solve of `smoother.enabled` from the localizer's config: the range noise and
/// its Huber tails (Student-t ranges get Huber at 3σ, Gaussian ones none), the odometry
/// error model with its noise scales, the calibration prior when calibrated.
fn new_smoother(config: &LocalizerConfig) -> smoother::Smoother {
    let sm = &config.smoother;
    let huber_threshold_sigma = match config.estimator.noise_shape {
        NoiseShape::Gaussian => f64::INFINITY,
        NoiseShape::Huber { threshold_sigma } => threshold_sigma,
        NoiseShape::StudentT { .. } => 3.0,
    };
    let base = SolveConfig {
        knot_period_s: sm.knot_period_s,
        max_knots: sm.max_knots as usize,
        range_std_m: config.default_noise_std_m,
        huber_threshold_sigma,
        odometry_error: config.odometry_error.clone(),
        calibration_prior: config.calibration.enabled.then(|| config.calibration.prior().belief()),
        max_iterations: sm.max_iterations as usize,
        growth_std_scales: (1.0, 1.0),
    };
    let history = History::new(sm.max_odometry_samples as usize, sm.max_ranges as usize);
    smoother::Smoother::new(base, &config.odometry_error.noise_scales, sm.period_s, config.initialisation.min_ranges as usize, history)
}

/// Per-landmark beliefs plus the odometry buffer and the rejection counters.
#[derive(Debug)]
pub struct Localizer {
    config: LocalizerConfig,
    estimator: Estimator<2>,
    calibrated_estimator: Estimator<4>,
    /// `dimension: 3`: the estimators of (x, y, z) and of (x, y, z, s, b).
    estimator3: Estimator<3>,
    calibrated_estimator3: Estimator<5>,
    /// `dimension: 3`: each configured id's height prior (mean, std), metres.
    heights: BTreeMap<String, (f64, f64)>,
    /// The pooled (s, b) belief, once a calibrated landmark exists.
    sensor_calibration: Option<GaussianBelief<2>>,
    /// Every calibrated landmark's (s, b) site and their running sums ([`pool`]);
    /// `None` with calibration off.
    calibration_pool: Option<pool::CalibrationPool>,
    default_prior: GaussianBelief<2>,
    priors: BTreeMap<String, GaussianBelief<2>>,
    odometry: OdometryBuffer,
    tracks: BTreeMap<String, LandmarkTrack>,
    accepted: u64,
    rejected: BTreeMap<&'static str, u64>,
    odom_frame_id: String,
    pending: std::collections::VecDeque<RangeInput>,
    /// The planar (x, y, yaw) pose covariance of the newest odometry message, when it
    /// was filled.
    odometry_cov: Option<Matrix3<f64>>,
    /// The clock of the caller (ROS time or bag time), s; 0 = unknown.
    clock_s: f64,
    /// The run of consecutive odometry jumps: the last rejected pose (stamp s, pose)
    /// and how many consistent jumps led to it.
    jump_run: Option<(f64, Isometry3<f64>, u32)>,
    /// The pooled calibration the calibrated tracks' published summaries were last
    /// all conditioned on ([`Localizer::refresh_sensor_calibration`]).
    summaries_conditioned_on: Option<GaussianBelief<2>>,
    /// `odometry: drifting`: the error model and the joint state (module doc of
    /// [`slam`]), with the estimators of the range marginals (K = 5, or 7 with
    /// calibration).
    drifting: Option<Drifting>,
    /// The sensor mounts from `/tf_static` (kept across resets: static is static).
    mounts: mount::SensorMounts,
    /// The range-stamp offset detector ([`time_offset`]).
    time_offset: time_offset::RangeTimeOffset,
    /// The frame of the last fused range (its sensor's mount gives the planner the
    /// sensor's height, [`Localizer::latest_sensor_height_m`]).
    last_range_frame: Option<String>,
}

/// What `odometry: drifting` adds to the localizer.
#[derive(Debug)]
struct Drifting {
    /// The joint state under each odometry noise scale ([`imm`]).
    state: JointImm,
    estimator5: Estimator<5>,
    estimator7: Estimator<7>,
    /// The periodic batch re-solve (`smoother.enabled`; [`smoother`]).
    smoother: Option<smoother::Smoother>,
    /// Set by an odometry discontinuity: the history cannot be integrated across it,
    /// so re-solving stops until a reset.
    smoother_suspended: bool,
    /// Re-solve on a thread of its own ([`Localizer::resolve_in_background`]).
    background: bool,
    /// The re-solve running on its thread, with what it must replay.
    in_flight: Option<InFlight>,
    /// Where the odometry started (map frame, metres): the point a wheel-scale error
    /// scales the map about ([`drift::map_scale_variance`]).
    scale_origin_m: Option<Vector2<f64>>,
}

/// A re-solve running on its own thread: the joint state when its history was taken,
/// and every change made to the joint state since, in order, to replay onto the
/// solution when it arrives (so nothing fused meanwhile is lost).
#[derive(Debug)]
struct InFlight {
    handle: std::thread::JoinHandle<smoother::ResolveOutcome>,
    snapshot: JointImm,
    since: Vec<JointChange>,
}

/// Most changes a re-solve in flight records: a solve that takes longer than this
/// many inputs is dropped (its history would be stale anyway), which bounds memory.
const MAX_CHANGES_IN_FLIGHT: usize = 100_000;

/// A range fused into the joint state: landmark, sensor position in the odometry frame
/// (m), range (m) and the noise variance it was fused with (m²).
#[derive(Debug, Clone)]
struct JointRange {
    id: String,
    odom_xy: Vector2<f64>,
    range_m: f64,
    variance: f64,
}

/// One change to the joint state, as recorded for a re-solve in flight.
#[derive(Debug, Clone)]
enum JointChange {
    /// [`JointImm::propagate`] to an odometry pose (with the filled covariance's growth).
    Propagate { stamp_s: f64, pose: nalgebra::Isometry2<f64>, growth: Option<Matrix3<f64>> },
    /// [`JointImm::insert_landmark`].
    Insert(String, GaussianBelief<2>),
    /// A range's update ([`Drifting::range_step`]).
    Range(JointRange),
}

impl Drifting {
    /// The joint state's change by one range (computed from `state`, which is left as
    /// it is): the marginal (E, landmark[, s, b]) the range touches, gated when
    /// `gate` > 0, updated by the flow, the rest carried along ([`JointImm::step`]).
    fn range_step(
        &self,
        state: &JointImm,
        range: &JointRange,
        calibrated: bool,
        shape: NoiseShape,
        gate: f64,
    ) -> Result<(imm::ImmStep, UpdateStats), Rejection> {
        let estimator_error = |e: EstimatorError| Rejection::Estimator(e.to_string());
        let JointRange { id, odom_xy, range_m, variance } = range;
        if calibrated {
            let model = JointRangeModel::<7>::new(*odom_xy, *range_m, *variance, shape).map_err(estimator_error)?;
            check_gate(gate, &marginal_summary(state.touched_marginal::<7>(id).map_err(estimator_error)?), &model)?;
            state.step(id, &self.estimator7, &model).map_err(estimator_error)
        } else {
            let model = JointRangeModel::<5>::new(*odom_xy, *range_m, *variance, shape).map_err(estimator_error)?;
            check_gate(gate, &marginal_summary(state.touched_marginal::<5>(id).map_err(estimator_error)?), &model)?;
            state.step(id, &self.estimator5, &model).map_err(estimator_error)
        }
    }

    /// Adds a landmark to the joint state (recorded for a re-solve in flight).
    fn insert_landmark(&mut self, id: &str, belief: &GaussianBelief<2>) {
        self.state.insert_landmark(id, belief);
        self.record(JointChange::Insert(id.to_string(), *belief));
    }

    /// Records a change for the re-solve in flight, if any (dropping the re-solve when
    /// it has waited for [`MAX_CHANGES_IN_FLIGHT`] changes).
    fn record(&mut self, change: JointChange) {
        if let Some(f) = &mut self.in_flight {
            if f.since.len() >= MAX_CHANGES_IN_FLIGHT {
                self.in_flight = None;
                if let Some(sm) = &mut self.smoother {
                    sm.count_rejected("the re-solve took longer than 100 000 inputs");
                }
            } else {
                f.since.push(change);
            }
        }
    }

    /// `snapshot` with the solution's moments, then every change recorded since
    /// replayed onto it (ranges ungated: they were accepted when they came); `None`
    /// when the layout differs or a replayed update fails.
    fn replay(&self, mut snapshot: JointImm, solution: &smoother::SmootherSolution, since: &[JointChange], calibrated: bool, shape: NoiseShape) -> Option<JointImm> {
        if !snapshot.set_moments(&solution.state.0, &solution.state.1) {
            return None;
        }
        for change in since {
            match change {
                JointChange::Propagate { stamp_s, pose, growth } => snapshot.propagate(*stamp_s, pose, growth.as_ref()).ok()?,
                JointChange::Insert(id, belief) => snapshot.insert_landmark(id, belief),
                JointChange::Range(range) => {
                    let (step, _) = self.range_step(&snapshot, range, calibrated, shape, 0.0).ok()?;
                    snapshot.commit(step);
                }
            }
        }
        Some(snapshot)
    }
}

impl Localizer {
    /// # Errors
    /// The config's validation error.
    pub fn new(config: LocalizerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let estimator = Estimator::new(config.estimator).map_err(estimator_config_error)?;
        let calibrated_estimator = Estimator::new(config.estimator).map_err(estimator_config_error)?;
        let priors: BTreeMap<_, _> = config.configured_priors()?.into_iter().collect();
        let heights = config.priors.ids.iter().cloned().zip(config.configured_heights()?).collect();
        let drifting = match config.odometry {
            OdometryMode::Exact => None,
            OdometryMode::Drifting => {
                let state = JointImm::new(&config.odometry_error, None).map_err(|e| e.prefixed("odometry_error"))?;
                Some(Drifting {
                    state,
                    estimator5: Estimator::new(config.estimator).map_err(estimator_config_error)?,
                    estimator7: Estimator::new(config.estimator).map_err(estimator_config_error)?,
                    smoother: config.smoother.enabled.then(|| new_smoother(&config)),
                    smoother_suspended: false,
                    background: false,
                    in_flight: None,
                    scale_origin_m: None,
                })
            }
        };
        let mut me = Self {
            clock_s: 0.0,
            jump_run: None,
            odometry_cov: None,
            drifting,
            mounts: mount::SensorMounts::default(),
            time_offset: time_offset::RangeTimeOffset::default(),
            last_range_frame: None,
            default_prior: config.default_prior_belief()?,
            odometry: OdometryBuffer::new(config.odom_buffer_s, config.odom_tolerance_s),
            odom_frame_id: config.odom_frame_id.clone(),
            estimator,
            calibrated_estimator,
            estimator3: Estimator::new(config.estimator).map_err(estimator_config_error)?,
            calibrated_estimator3: Estimator::new(config.estimator).map_err(estimator_config_error)?,
            heights,
            sensor_calibration: None,
            summaries_conditioned_on: None,
            calibration_pool: None,
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

    /// Sets `innovation_gate_sigma` (0 = off) for the ranges to come.
    ///
    /// # Errors
    /// [`ConfigError`] naming `innovation_gate_sigma` for a value `validate()` refuses;
    /// the gate is then unchanged.
    pub fn set_innovation_gate_sigma(&mut self, sigma: f64) -> Result<(), ConfigError> {
        let next = LocalizerConfig { innovation_gate_sigma: sigma, ..self.config.clone() };
        next.validate()?;
        self.config.innovation_gate_sigma = sigma;
        Ok(())
    }

    /// Restores every configured landmark to its prior, forgets landmarks started
    /// from the default prior, zeroes the counters, and forgets odometry and the ranges
    /// waiting for it (so a bad odometry message, e.g. stamped far in the future, can
    /// never keep the localizer from accepting odometry after a reset).
    pub fn reset(&mut self) {
        if let Some(d) = &mut self.drifting {
            let calibration = self.config.calibration.enabled.then(|| self.config.calibration.prior().belief());
            d.state = JointImm::new(&self.config.odometry_error, calibration.as_ref())
                .expect("odometry_error was validated by Localizer::new");
            if let Some(sm) = &mut d.smoother {
                sm.clear();
            }
            d.smoother_suspended = false;
            // A re-solve of the history before the reset is never applied.
            d.in_flight = None;
            // The map frame restarts at the next odometry, and with it the map's scale.
            d.scale_origin_m = None;
        }
        self.sensor_calibration = None;
        self.summaries_conditioned_on = None;
        self.tracks.clear();
        self.calibration_pool = self.config.calibration.enabled.then(|| {
            pool::CalibrationPool::new(&self.calibration_prior()).expect("the calibration prior was validated by Localizer::new")
        });
        let priors: Vec<_> = self.priors.iter().map(|(k, v)| (k.clone(), *v)).collect();
        for (id, prior) in priors {
            if self.joins_now(&prior) {
                self.insert_joint_track(&id, &prior);
            } else if let Ok(track) = self.tracking_state(&id, prior).and_then(|state| self.new_track(state)) {
                self.tracks.insert(id.clone(), track);
                self.update_calibration_site(&id);
            }
        }
        self.refresh_sensor_calibration(None);
        self.odometry_cov = None;
        self.jump_run = None;
        self.accepted = 0;
        self.rejected.clear();
        self.time_offset = time_offset::RangeTimeOffset::default();
        self.pending.clear();
        self.odometry = OdometryBuffer::new(self.config.odom_buffer_s, self.config.odom_tolerance_s);
    }

    /// A tracking state from a position prior: the prior itself, or, with calibration
    /// on, the prior × N(s₀, σ_s²) × N(b₀, σ_b²) over θ = (y₁, y₂, s, b).
    ///
    /// With `dimension: 3` the prior is (x, y) × the landmark's height prior
    /// ([`Localizer::prior3`]).
    fn tracking_state(&self, id: &str, prior: GaussianBelief<2>) -> Result<TrackState, EstimatorError> {
        if self.config.dimension == 3 {
            let prior = self.prior3(id, &prior);
            if !self.config.calibration.enabled {
                return Ok(TrackState::Position3(self.estimator3.initial_state(prior)?, RangeWindow::new(prior)));
            }
            let cavity = self.calibration_prior();
            let prior = joint_prior::<3, 5>(&prior, &cavity);
            return Ok(TrackState::Calibrated3(self.calibrated_estimator3.initial_state(prior)?, RangeWindow::new(prior), cavity));
        }
        if !self.config.calibration.enabled {
            return Ok(TrackState::Position(self.estimator.initial_state(prior)?, RangeWindow::new(prior)));
        }
        let cavity = self.calibration_prior();
        let prior = joint_prior(&prior, &cavity);
        Ok(TrackState::Calibrated(self.calibrated_estimator.initial_state(prior)?, RangeWindow::new(prior), cavity))
    }

    /// The tracking state of a unimodal grid: the flow's Gaussian solved for the
    /// posterior of the grid's prior (the disc, moment-matched: a weak Gaussian prior)
    /// × every range the grid used, started at the grid's moments ([`Estimator::refine`]);
    /// those ranges stay in the relinearisation window. If that fails, the grid's
    /// moments themselves become the prior.
    fn start_tracking(&self, id: &str, grid: &InitialisationGrid) -> Result<TrackState, EstimatorError> {
        if self.config.dimension == 3 {
            return self.start_tracking3(id, grid);
        }
        let shape = self.config.estimator.noise_shape;
        let measured = grid.measurements();
        let moments = grid.moments();
        if !self.config.calibration.enabled {
            let state = self.estimator.initial_state(moments)?;
            let anchor = grid.prior_moments();
            let ranges = measured
                .iter()
                .map(|r| RangeModel::new(r.sensor, r.range_m, r.noise_var_m2, shape))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(match self.estimator.refine(&state, &anchor, &ranges) {
                Ok((refined, _)) => TrackState::Position(refined, RangeWindow { anchor, ranges, folded: false }),
                Err(_) => TrackState::Position(state, RangeWindow::new(moments)),
            });
        }
        let cavity = self.calibration_prior();
        let prior = joint_prior(&moments, &cavity);
        let state = self.calibrated_estimator.initial_state(prior)?;
        let anchor = joint_prior(&grid.prior_moments(), &cavity);
        let ranges = measured
            .iter()
            .map(|r| CalibratedRangeModel::new(r.sensor, r.range_m, r.noise_var_m2, shape))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(match self.calibrated_estimator.refine(&state, &anchor, &ranges) {
            Ok((refined, _)) => TrackState::Calibrated(refined, RangeWindow { anchor, ranges, folded: false }, cavity),
            Err(_) => TrackState::Calibrated(state, RangeWindow::new(prior), cavity),
        })
    }

    /// N((μ, m_z), diag(Σ, σ_z²)): the (x, y) prior `prior` of landmark `id` and its
    /// height prior (`priors.height_*`, else `height_prior`), independent.
    fn prior3(&self, id: &str, prior: &GaussianBelief<2>) -> GaussianBelief<3> {
        let HeightPrior { mean_m: mean_z, std_m: std_z } = self.height_prior(id);
        let mut cov = nalgebra::Matrix3::zeros();
        cov.fixed_view_mut::<2, 2>(0, 0).copy_from(&prior.cov);
        cov[(2, 2)] = std_z * std_z;
        GaussianBelief { mean: nalgebra::Vector3::new(prior.mean.x, prior.mean.y, mean_z), cov }
    }

    /// Landmark `id`'s height prior: `priors.height_*`, else `height_prior`.
    fn height_prior(&self, id: &str) -> HeightPrior {
        let h = self.config.height_prior;
        let (mean_m, std_m) = self.heights.get(id).copied().unwrap_or((h.mean_m, h.std_m));
        HeightPrior { mean_m, std_m }
    }

    fn new_track(&self, state: TrackState) -> Result<LandmarkTrack, EstimatorError> {
        Ok(LandmarkTrack::new(summarise(&state, self.sensor_calibration.as_ref())?, state))
    }

    /// With drifting odometry, whether a landmark with this prior joins the joint state
    /// at once: one Gaussian with its largest standard deviation at most
    /// `initialisation.max_std_m`. A wider prior (an ambiguous start, the slides' case)
    /// first runs as its own track (mixture or flow, ranges placed at the sensor's
    /// map position with its uncertainty as extra noise) until its belief is that tight.
    fn joins_now(&self, prior: &GaussianBelief<2>) -> bool {
        self.drifting.is_some() && largest_eigenvalue(&prior.cov).sqrt() <= self.config.initialisation.max_std_m
    }

    /// Adds landmark `id` to the joint state of drifting odometry with `belief` (map
    /// frame), and its track.
    fn insert_joint_track(&mut self, id: &str, belief: &GaussianBelief<2>) {
        let Some(d) = &mut self.drifting else { return };
        d.insert_landmark(id, belief);
        if let Some(sm) = &mut d.smoother {
            sm.history.set_prior(id, belief);
        }
        let summary = gaussian_summary(*belief, UpdateStats { converged: true, ..UpdateStats::default() });
        self.tracks.insert(id.to_string(), LandmarkTrack::new((summary, None, None), TrackState::Joint));
        self.refresh_joint_summaries();
    }

    /// Copies each joint-state landmark's marginal and the calibration marginal into
    /// the tracks (a range moves every correlated landmark), with the map's scale
    /// uncertainty added ([`Localizer::map_scale_cov`]; the joint state is conditioned
    /// on the odometry's scale).
    fn refresh_joint_summaries(&mut self) {
        let scale = self.map_scale();
        let Some(d) = &self.drifting else { return };
        self.sensor_calibration = d.state.calibration();
        // The radio scale the ranges fix is s/w: its variance grows by var(ln w)·s².
        let calibration = self.sensor_calibration.as_ref().map(|c| {
            let mut c = *c;
            c.cov[(0, 0)] += scale.map_or(0.0, |(var, _)| var * c.mean.x * c.mean.x);
            RangeCalibration::from_belief(&c)
        });
        for (id, track) in self.tracks.iter_mut() {
            if let (TrackState::Joint, Some(conditional)) = (&track.state, d.state.landmark(id)) {
                let gauge = scale_cov(scale, &conditional.mean);
                let belief = GaussianBelief { mean: conditional.mean, cov: conditional.cov + gauge };
                track.summary.belief = belief;
                track.summary.components = vec![MixtureComponent { weight: 1.0, belief }];
                track.map_scale_cov_m2 = gauge;
                track.calibration = calibration;
            }
        }
    }

    /// `odometry: drifting` with range calibration, after the first odometry: the
    /// variance of the map's (relative) scale and the point it scales about
    /// ([`drift::map_scale_variance`]); `None` otherwise.
    fn map_scale(&self) -> Option<(f64, Vector2<f64>)> {
        let d = self.drifting.as_ref()?;
        let c = &self.config.calibration;
        let var = drift::map_scale_variance(self.config.odometry_error.distance_scale_std, c.scale_prior, c.scale_std);
        (c.enabled && var > 0.0).then_some((var, d.scale_origin_m?))
    }

    /// The covariance, m², that the map's unknown scale adds to a map-frame position
    /// `p` (metres): var·(p − p₀)(p − p₀)ᵀ ([`drift::map_scale_variance`]); zero with
    /// `odometry: exact`, calibration off or `distance_scale_std: 0`. In every
    /// published landmark belief and robot pose; no range can reduce it.
    pub fn map_scale_cov(&self, p: &Vector2<f64>) -> Matrix2<f64> {
        scale_cov(self.map_scale(), p)
    }

    /// The frame the beliefs are expressed in: `map_frame_id` with `odometry:
    /// drifting`; else `odom_frame_id`, or the first odometry's frame when that is
    /// empty.
    pub fn frame_id(&self) -> &str {
        if self.drifting.is_some() {
            &self.config.map_frame_id
        } else {
            &self.odom_frame_id
        }
    }

    /// The odometry frame (`odom_frame_id`, or the first odometry's frame when that is
    /// empty).
    pub fn odom_frame_id(&self) -> &str {
        &self.odom_frame_id
    }

    /// `odometry: drifting`: the joint state (module doc of [`slam`]).
    pub fn joint_state(&self) -> Option<&JointImm> {
        self.drifting.as_ref().map(|d| &d.state)
    }

    /// `odometry: drifting`, after the first odometry: the stamp of the newest
    /// odometry (s), the odom→map correction and gyro bias there, and the base pose in
    /// the map frame with its covariance ([`map_pose`]).
    pub fn map_correction(&self) -> Option<(f64, drift::DriftState, MapPose)> {
        let d = self.drifting.as_ref()?;
        let stamp_s = d.state.last_odometry_stamp_s()?;
        let odom_pose = planar_pose(&self.odometry.pose_at(stamp_s).ok()?);
        let drift = d.state.drift();
        let mut pose = map_pose(&drift, &odom_pose);
        let gauge = self.map_scale_cov(&pose.pose.translation.vector);
        let mut xy = pose.cov.fixed_view_mut::<2, 2>(0, 0);
        xy += gauge;
        Some((stamp_s, drift, pose))
    }

    /// Adds an odometry pose (base in odometry frame) stamped `stamp_s`, then fuses the
    /// waiting ranges it covers and returns what became of them.
    ///
    /// # Errors
    /// [`Rejection`] (counted) for a wrong frame, a bad or backwards stamp, a
    /// non-finite pose.
    pub fn add_odometry(&mut self, stamp_s: f64, frame_id: &str, pose: Isometry3<f64>) -> Result<Vec<Processed>, Rejection> {
        self.add_odometry_with_covariance(stamp_s, frame_id, pose, None)
    }

    /// [`Localizer::add_odometry`] with the message's planar pose covariance over
    /// (x, y, yaw) when it was filled ([`drift::planar_pose_covariance`]). `exact`
    /// inflates each range's noise by the sensor position's variance along the line
    /// of sight; `drifting` takes the covariance's growth over a step, when it grows,
    /// as that step's noise in place of `odometry_error`'s translation and heading
    /// noise (a driver that publishes a constant covariance says nothing about a step).
    ///
    /// # Errors
    /// As [`Localizer::add_odometry`].
    pub fn add_odometry_with_covariance(
        &mut self,
        stamp_s: f64,
        frame_id: &str,
        pose: Isometry3<f64>,
        pose_cov: Option<Matrix3<f64>>,
    ) -> Result<Vec<Processed>, Rejection> {
        let previous_s = self.odometry.newest_stamp();
        self.push_odometry(stamp_s, frame_id, pose)?;
        let gate = &self.config.odometry_gate;
        if let Some(d) = &mut self.drifting {
            // The growth is used only when it is physically plausible: over dt the
            // odometry's position error cannot grow by more than the gate lets the robot
            // move, (max_speed_mps·dt + jump_slack_m)², nor its heading error by more than
            // (max_yaw_rate_rad_s·dt + 0.5)² (the gate's own bounds; with the gate off, by
            // at most 1e14 m², the bound on every configured covariance). A larger growth
            // (a driver's 1e300) is not a step noise but junk, and as one it made the joint
            // state unusable (the fuzz test): the model's noise is used instead.
            let dt_s = previous_s.map_or(0.0, |p| (stamp_s - p).max(0.0));
            let (max_position_var, max_yaw_var) = if gate.max_speed_mps > 0.0 {
                ((gate.max_speed_mps * dt_s + gate.jump_slack_m).powi(2), (gate.max_yaw_rate_rad_s * dt_s + 0.5).powi(2))
            } else {
                (1e14, 1e14)
            };
            let plausible = |g: &Matrix3<f64>| g[(0, 0)] <= max_position_var && g[(1, 1)] <= max_position_var && g[(2, 2)] <= max_yaw_var;
            let growth = match (self.odometry_cov, pose_cov) {
                (Some(before), Some(now)) => Some(psd_part(&(now - before))).filter(|g| g.amax() > 0.0 && plausible(g)),
                _ => None,
            };
            if let Err(e) = d.state.propagate(stamp_s, &planar_pose(&pose), growth.as_ref()) {
                let r = Rejection::Estimator(format!("odometry error model: {e}"));
                *self.rejected.entry(r.reason()).or_insert(0) += 1;
                return Err(r);
            }
            d.record(JointChange::Propagate { stamp_s, pose: planar_pose(&pose), growth });
            let first = d.scale_origin_m.is_none();
            if first {
                d.scale_origin_m = Some(d.state.map_position(&planar_pose(&pose).translation.vector).0);
            }
            if let (Some(sm), false) = (&mut d.smoother, d.smoother_suspended) {
                sm.history.push_odometry(stamp_s, &planar_pose(&pose), growth);
            }
            if first {
                // The map's scale now has an origin: the configured landmarks' published
                // beliefs carry it from here, not only after their first range.
                self.refresh_joint_summaries();
            }
        }
        self.odometry_cov = pose_cov;
        let mut processed = Vec::new();
        // Every waiting range the odometry now covers is fused, in arrival order, unless
        // an earlier range of the same landmark still waits (per-landmark order; one
        // landmark's range ahead of the odometry does not hold up another's). The same
        // lookup decides "covered" here and in try_add_range, so a drained range is
        // never queued again.
        let mut still_waiting = std::collections::VecDeque::new();
        let mut blocked = std::collections::BTreeSet::new();
        while let Some(input) = self.pending.pop_front() {
            let covered = !matches!(
                self.odometry.pose_at(input.stamp_s),
                Err(PoseLookupError::Empty | PoseLookupError::TooNew { .. })
            );
            if !covered || blocked.contains(&input.landmark_id) {
                blocked.insert(input.landmark_id.clone());
                still_waiting.push_back(input);
                continue;
            }
            let result = match self.add_range(&input) {
                Ok(RangeOutcome::Fused(f)) => Ok(f),
                Ok(RangeOutcome::Pending) => unreachable!("odometry covers the stamp"),
                Err(r) => Err(r),
            };
            processed.push(Processed { input, result });
        }
        self.pending = still_waiting;
        self.resolve_if_due(stamp_s);
        Ok(processed)
    }

    /// `smoother.enabled`: when a re-solve is due at odometry time `stamp_s`, solves
    /// the recorded history and resets the joint state (every noise-scale hypothesis)
    /// to the solution — inline, or with [`Localizer::resolve_in_background`] on a
    /// thread, applied by a later call once it is done ([`Localizer::poll_resolve`]).
    fn resolve_if_due(&mut self, stamp_s: f64) {
        let background = self.drifting.as_ref().is_some_and(|d| d.background);
        if background {
            self.poll_resolve();
        }
        let Some(d) = &mut self.drifting else { return };
        let Some(sm) = &mut d.smoother else { return };
        if d.smoother_suspended || d.in_flight.is_some() || !sm.due(stamp_s) {
            return;
        }
        let landmarks: Vec<(String, Vector2<f64>)> =
            d.state.landmark_ids().into_iter().filter_map(|id| Some((id.clone(), d.state.landmark(&id)?.mean))).collect();
        // Ranges to fewer than three landmarks leave the robot's pose ambiguous (two
        // give a mirror image of the path): the batch waits for a third. Beyond
        // MAX_LANDMARKS the filter goes on alone (bounded work).
        if landmarks.len() < smoother::MIN_LANDMARKS || landmarks.len() > smoother::MAX_LANDMARKS {
            return;
        }
        let Ok(job) = sm.prepare(stamp_s, &landmarks) else { return };
        if background {
            let handle = std::thread::spawn(move || job.run());
            d.in_flight = Some(InFlight { handle, snapshot: d.state.clone(), since: Vec::new() });
        } else {
            let outcome = job.run();
            self.apply_resolve(outcome, None);
        }
    }

    /// Takes a re-solve's outcome in ([`smoother::Smoother::finish`]) and, unless it
    /// failed, resets the joint state to the solution: directly (inline), or, for one
    /// that ran in the background, onto the `(snapshot, changes since)` it was taken
    /// with, the changes replayed ([`Drifting::replay`]). A failed solve, a failed
    /// replay, or a solution that would widen a landmark's belief more than a
    /// hundredfold (a landmark the thinned history no longer places) leaves the
    /// filter's state as it was (counted in [`Localizer::smoother_stats`]).
    fn apply_resolve(&mut self, outcome: smoother::ResolveOutcome, replay: Option<(JointImm, Vec<JointChange>)>) {
        let calibrated = self.config.calibration.enabled;
        let shape = self.config.estimator.noise_shape;
        let Some(d) = &mut self.drifting else { return };
        let Some(sm) = &mut d.smoother else { return };
        let Ok(solution) = sm.finish(outcome) else { return };
        let before = replay.as_ref().map_or(&d.state, |(snapshot, _)| snapshot);
        let widened = before.landmark_ids().iter().zip(&solution.landmarks).any(|(id, new)| {
            before.landmark(id).is_none_or(|old| new.cov.trace() > 100.0 * old.cov.trace() + 1e-6)
        });
        let applied = !widened
            && match replay {
                None => d.state.set_moments(&solution.state.0, &solution.state.1),
                Some((snapshot, since)) => match d.replay(snapshot, &solution, &since, calibrated, shape) {
                    Some(next) => {
                        d.state = next;
                        true
                    }
                    None => false,
                },
            };
        if !applied {
            let sm = d.smoother.as_mut().expect("checked above");
            sm.count_rejected("the solution would widen a landmark's belief a hundredfold, or could not be applied");
            return;
        }
        self.refresh_joint_summaries();
    }

    /// Re-solve on a thread of its own from now on (the live node: a re-solve of a long
    /// history takes up to seconds and the node must keep fusing meanwhile). A due
    /// re-solve then copies its problem to the thread; the joint state goes on with the
    /// filter, and the first odometry after the solve finished applies it with every
    /// change since replayed ([`Localizer::poll_resolve`]). Inline (the default: the
    /// replayer and the tests) applies it in the odometry call that made it due. With
    /// the same inputs both end in the same state, as long as the replayed ranges would
    /// have passed the innovation gate after the re-solve too.
    pub fn resolve_in_background(&mut self) {
        if let Some(d) = &mut self.drifting {
            d.background = true;
        }
    }

    /// Applies the background re-solve if it has finished (called by each odometry
    /// message; the node may call it more often). True when one was applied or
    /// dropped.
    pub fn poll_resolve(&mut self) -> bool {
        let Some(d) = &mut self.drifting else { return false };
        if !d.in_flight.as_ref().is_some_and(|f| f.handle.is_finished()) {
            return false;
        }
        let InFlight { handle, snapshot, since } = d.in_flight.take().expect("checked above");
        match handle.join() {
            Ok(outcome) => self.apply_resolve(outcome, Some((snapshot, since))),
            Err(_) => {
                if let Some(sm) = &mut d.smoother {
                    sm.count_rejected("the re-solve thread panicked");
                }
            }
        }
        true
    }

    /// Whether a background re-solve is running or waiting to be applied.
    pub fn resolve_in_flight(&self) -> bool {
        self.drifting.as_ref().is_some_and(|d| d.in_flight.is_some())
    }

    /// Blocks until the background re-solve in flight, if any, has finished, then
    /// applies it (tests, benches and shutdown). True when one was applied or dropped.
    pub fn wait_for_resolve(&mut self) -> bool {
        let Some(f) = self.drifting.as_ref().and_then(|d| d.in_flight.as_ref()) else { return false };
        while !f.handle.is_finished() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        self.poll_resolve()
    }

    /// What the batch re-solves did (`smoother.enabled` with `odometry: drifting`).
    pub fn smoother_stats(&self) -> Option<&SmootherStats> {
        self.drifting.as_ref()?.smoother.as_ref().map(|s| s.stats())
    }

    /// Stores a static transform `parent → child` (the child's pose in the parent, from
    /// `/tf_static`): a range from frame `child`, or a frame below it, is then measured
    /// at the mount it implies (module doc of [`mount`]).
    ///
    /// # Errors
    /// [`Rejection::StaticTransform`] (counted) for a transform that cannot be a mount.
    pub fn add_static_transform(&mut self, parent: &str, child: &str, transform: Isometry3<f64>) -> Result<(), Rejection> {
        self.mounts.insert(parent, child, transform).map_err(|e| {
            let r = Rejection::StaticTransform(e);
            *self.rejected.entry(r.reason()).or_insert(0) += 1;
            r
        })
    }

    /// Number of `/tf_static` transforms stored (the sensor mounts' tree).
    pub fn static_transforms(&self) -> usize {
        self.mounts.len()
    }

    /// The sensor position in the base frame for a range from `frame_id`, metres: the
    /// static TF mount when known, else `sensor_offset_m`.
    pub fn sensor_mount(&self, frame_id: &str) -> nalgebra::Vector3<f64> {
        self.mounts.position_in(&self.config.base_frame_id, frame_id).unwrap_or_else(|| self.config.sensor_offset())
    }

    /// Sets the caller's clock (ROS time, sim time or bag time), s, for the odometry
    /// gate's future-stamp check (0 = unknown: not checked).
    pub fn set_clock(&mut self, now_s: f64) {
        self.clock_s = if now_s.is_finite() { now_s } else { 0.0 };
    }

    /// The odometry gate ([`OdometryGateConfig`]) for a pose at `stamp_s`: `Ok(true)`
    /// when it starts a discontinuity (accept it, dropping the history).
    fn gate_odometry(&mut self, stamp_s: f64, pose: &Isometry3<f64>) -> Result<bool, OdometryRejection> {
        let gate = &self.config.odometry_gate;
        if gate.max_future_s > 0.0 && self.clock_s > 0.0 && stamp_s > self.clock_s + gate.max_future_s {
            return Err(OdometryRejection::StampFuture { stamp_s, ahead_s: stamp_s - self.clock_s });
        }
        let Some(newest_s) = self.odometry.newest_stamp() else { return Ok(false) };
        if gate.max_speed_mps <= 0.0 || !stamp_s.is_finite() || stamp_s <= newest_s || !crate::odometry::is_finite_pose(pose) {
            // The buffer's own checks name these.
            return Ok(false);
        }
        let plausible = |from_s: f64, from: &Isometry3<f64>| {
            let dt_s = stamp_s - from_s;
            let step = from.inverse() * pose;
            let distance_m = step.translation.vector.norm();
            let turn_rad = step.rotation.angle();
            let ok = distance_m <= gate.max_speed_mps * dt_s + gate.jump_slack_m
                && turn_rad <= gate.max_yaw_rate_rad_s * dt_s + 0.5;
            (ok, distance_m, turn_rad, dt_s)
        };
        let newest = self.odometry.pose_at(newest_s).expect("the newest pose exists");
        let (ok, distance_m, turn_rad, dt_s) = plausible(newest_s, &newest);
        if ok {
            self.jump_run = None;
            return Ok(false);
        }
        // A run of jumps consistent with each other is a new odometry frame, not noise.
        let run = match self.jump_run {
            Some((s, p, n)) if stamp_s > s && plausible(s, &p).0 => n + 1,
            _ => 1,
        };
        if run >= gate.accept_after {
            self.jump_run = None;
            return Ok(true);
        }
        self.jump_run = Some((stamp_s, *pose, run));
        Err(OdometryRejection::Jump { distance_m, turn_rad, dt_s })
    }

    fn push_odometry(&mut self, stamp_s: f64, frame_id: &str, pose: Isometry3<f64>) -> Result<(), Rejection> {
        let result = if !self.config.odom_frame_id.is_empty() && frame_id != self.config.odom_frame_id {
            Err(Rejection::WrongFrame {
                got: frame_id.to_string(),
                expected: self.config.odom_frame_id.clone(),
            })
        } else {
            match self.gate_odometry(stamp_s, &pose) {
                Err(r) => Err(Rejection::Odometry(r)),
                Ok(discontinuity) => {
                    if discontinuity {
                        // No interpolation across the discontinuity, and with drifting
                        // odometry no propagation over it (the next step starts here).
                        self.odometry = OdometryBuffer::new(self.config.odom_buffer_s, self.config.odom_tolerance_s);
                        if let Some(d) = &mut self.drifting {
                            d.state.restart_odometry();
                            d.smoother_suspended = d.smoother.is_some();
                            d.in_flight = None;
                            if let Some(sm) = &mut d.smoother {
                                sm.clear();
                            }
                        }
                    }
                    self.odometry.push(stamp_s, pose).map_err(Rejection::Odometry)
                }
            }
        };
        match &result {
            Ok(()) if self.odom_frame_id.is_empty() => self.odom_frame_id = frame_id.to_string(),
            Err(r) => *self.rejected.entry(r.reason()).or_insert(0) += 1,
            _ => {}
        }
        result
    }

    /// The robot base position at the newest odometry, metres, in the beliefs' frame
    /// ([`Localizer::frame_id`]: the map frame's mean with `odometry: drifting`).
    pub fn latest_base_position(&self) -> Option<Point3<f64>> {
        let t = self.odometry.newest_stamp()?;
        let p = Point3::from(self.odometry.pose_at(t).ok()?.translation.vector);
        Some(match &self.drifting {
            Some(d) => {
                let (m, _) = d.state.map_position(&Vector2::new(p.x, p.y));
                Point3::new(m.x, m.y, p.z)
            }
            None => p,
        })
    }

    /// The range sensor's height at the newest odometry pose, metres, in the beliefs'
    /// frame: z of (newest pose ⊕ [`Localizer::sensor_mount`] of the last fused range's
    /// frame), or ⊕ `sensor_offset_m` before any range was fused. `None` without
    /// odometry. The 3-D planner takes the beliefs' heights relative to it
    /// ([`crate::goal_scheduler`]).
    pub fn latest_sensor_height_m(&self) -> Option<f64> {
        let t = self.odometry.newest_stamp()?;
        let pose = self.odometry.pose_at(t).ok()?;
        let mount = match &self.last_range_frame {
            Some(frame) => self.sensor_mount(frame),
            None => self.config.sensor_offset(),
        };
        Some((pose * Point3::from(mount)).z)
    }

    /// With `dimension: 3`, landmark `id`'s (x, y, z) belief for planning: its track's
    /// `summary3` (moment-matched); while the track is initialising it has none (the
    /// grid is over (x, y), the height marginalised under the landmark's height prior),
    /// so the grid's (x, y) moments × that height prior (independent), as a tracking
    /// state starts from a prior (`Localizer::prior3`). `None` in 2-D or for an
    /// unknown id.
    pub fn planning_belief3(&self, id: &str) -> Option<GaussianBelief<3>> {
        if self.config.dimension != 3 {
            return None;
        }
        let track = self.tracks.get(id)?;
        Some(match &track.summary3 {
            Some(s) => s.belief,
            None => self.prior3(id, &track.summary.belief),
        })
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
        check_message(m, &self.config)?;
        if !self.tracks.contains_key(&m.landmark_id) {
            if self.config.unknown_landmarks == UnknownLandmarkPolicy::Reject {
                return Err(Rejection::UnknownLandmark(m.landmark_id.clone()));
            }
            // An id becomes a topic name, a log line and a map key: bounded and printable.
            if m.landmark_id.is_empty() || m.landmark_id.len() > 128 || m.landmark_id.chars().any(char::is_control) {
                return Err(Rejection::BadLandmarkId(m.landmark_id.chars().take(64).collect()));
            }
            if self.tracks.len() >= self.config.max_landmarks as usize {
                return Err(Rejection::LandmarkCap(m.landmark_id.chars().take(64).collect(), self.config.max_landmarks));
            }
            if self.config.unknown_landmarks == UnknownLandmarkPolicy::DefaultPrior && self.joins_now(&self.default_prior) {
                let prior = self.default_prior;
                self.insert_joint_track(&m.landmark_id, &prior);
            } else if self.config.unknown_landmarks == UnknownLandmarkPolicy::DefaultPrior {
                let track = self
                    .tracking_state(&m.landmark_id, self.default_prior)
                    .and_then(|state| self.new_track(state))
                    .map_err(|e| Rejection::Estimator(e.to_string()))?;
                self.tracks.insert(m.landmark_id.clone(), track);
                self.update_calibration_site(&m.landmark_id);
            }
        }
        let last_s = self.tracks.get(&m.landmark_id).map_or(0.0, |t| t.last_stamp_s);
        if m.stamp_s < last_s {
            return Err(Rejection::StampBackwards { stamp_s: m.stamp_s, last_s });
        }
        // The same message again (a republished or twice-recorded range) carries no new
        // information; fusing it would count the measurement twice.
        let repeats_last = |t: &LandmarkTrack| {
            t.measurements_fused > 0 && m.stamp_s == t.last_stamp_s && t.last_range.is_some_and(|(_, r)| r == m.range_m)
        };
        if self.tracks.get(&m.landmark_id).is_some_and(repeats_last) {
            return Err(Rejection::Duplicate { stamp_s: m.stamp_s, range_m: m.range_m });
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
        let mount = self.sensor_mount(&m.frame_id);
        let sensor = pose * Point3::from(mount);
        // A reported variance below (default_noise_std_m / 100)² is floored there: no
        // radio is that good, and a belief fed σ = 1e-15 m freezes wherever it is.
        let floor = (self.config.default_noise_std_m / 100.0).powi(2);
        let variance = if m.variance_m2 > 0.0 { m.variance_m2.max(floor) } else { self.config.default_noise_std_m.powi(2) };
        let odom_xy = Vector2::new(sensor.x, sensor.y);
        // The sensor in the beliefs' frame, and its position covariance there: from the
        // joint state (drifting), or from a filled odometry covariance (exact).
        let (x, position_cov) = match &self.drifting {
            Some(d) => d.state.map_position(&odom_xy),
            None => (odom_xy, self.exact_sensor_cov(&pose, &odom_xy)),
        };
        // The innovation of a tracked landmark against the sensor's motion along the line
        // of sight: the range-stamp offset detector (applied once the range is fused).
        let offset_sample = self.time_offset_sample(m, x, variance);
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
            // 3-D: each range's likelihood marginalised over the landmark's height prior.
            let grid = if self.config.dimension == 3 {
                grid.with_height_prior(self.height_prior(&m.landmark_id)).map_err(estimator_error)?
            } else {
                grid
            };
            let track = self.new_track(TrackState::Initialising(Box::new(grid))).map_err(estimator_error)?;
            self.tracks.insert(m.landmark_id.clone(), track);
        }
        // A belief that does not carry the sensor's position uncertainty gets it as range
        // noise: along the line of sight to a Gaussian belief, its largest variance for
        // a grid (whose ranges come from anywhere around it).
        let variance = variance
            + match &self.tracks[&m.landmark_id].state {
                TrackState::Joint => 0.0,
                TrackState::Initialising(_) => largest_eigenvalue(&position_cov),
                _ => variance_along(&position_cov, &(self.tracks[&m.landmark_id].summary.belief.mean - x)),
            };
        let (step, stats) = self.step(&m.landmark_id, x, sensor.z, odom_xy, m.range_m, variance)?;
        let (summary, summary3, calibration) =
            step.summarise(self.sensor_calibration.as_ref()).map_err(estimator_error)?;
        if !summary.belief.is_publishable() {
            return Err(Rejection::Estimator("the updated belief is not finite and SPD".into()));
        }
        let latency_s = start.elapsed().as_secs_f64();
        let calibrated = step.is_calibrated();
        let track = self.tracks.get_mut(&m.landmark_id).expect("inserted above");
        let joint = match (step, &mut self.drifting) {
            (TrackStep::Joint(change), Some(d)) => {
                d.state.commit(*change);
                d.record(JointChange::Range(JointRange { id: m.landmark_id.clone(), odom_xy, range_m: m.range_m, variance }));
                true
            }
            // A grid became unimodal: the landmark joins the joint state.
            (TrackStep::Start(_), Some(d)) => {
                d.insert_landmark(&m.landmark_id, &summary.belief);
                track.state = TrackState::Joint;
                true
            }
            (step, drifting) => {
                track.state.commit(step);
                // A landmark started from a wide prior (its own mixture/flow, ranges placed
                // with the sensor's map position and its uncertainty as noise) joins the
                // joint state once its belief is one tight Gaussian.
                match drifting {
                    Some(d) if summary.components.len() <= 1 && largest_eigenvalue(&summary.belief.cov).sqrt() <= self.config.initialisation.max_std_m => {
                        d.insert_landmark(&m.landmark_id, &summary.belief);
                        track.state = TrackState::Joint;
                        true
                    }
                    _ => false,
                }
            }
        };
        track.summary = summary;
        if summary3.is_some() {
            track.summary3 = summary3;
        }
        track.calibration = calibration;
        track.measurements_fused += 1;
        track.last_stamp_s = m.stamp_s;
        track.last_latency_s = latency_s;
        track.last_stats = stats;
        track.last_range = Some((x, m.range_m));
        self.update_calibration_site(&m.landmark_id);
        if joint {
            self.refresh_joint_summaries();
        } else if calibrated {
            self.refresh_sensor_calibration(Some(&m.landmark_id));
        }
        if let Some((innovation, var, radial)) = offset_sample {
            self.time_offset.add(innovation, var, radial);
        }
        if let Some(Drifting { smoother: Some(sm), smoother_suspended: false, .. }) = &mut self.drifting {
            sm.history.push_range(&m.landmark_id, m.stamp_s, &planar_pose(&pose), Vector2::new(mount.x, mount.y), m.range_m);
        }
        if self.last_range_frame.as_deref() != Some(m.frame_id.as_str()) {
            self.last_range_frame = Some(m.frame_id.clone());
        }
        let sensor_position = Point3::new(x.x, x.y, sensor.z);
        Ok(RangeOutcome::Fused(Fused { sensor_position, stats, latency_s }))
    }

    /// The range-stamp offset estimate so far ([`time_offset`]), once the robot has
    /// moved along a line of sight to a tracked landmark.
    pub fn range_time_offset(&self) -> Option<time_offset::TimeOffsetEstimate> {
        self.time_offset.estimate()
    }

    /// (innovation z − ẑ, its variance S, the sensor's speed away from the landmark) of
    /// range `m` from sensor position `x` (beliefs' frame) with noise `variance`, for a
    /// tracked landmark: ẑ = s·‖μ − x‖ + b (the pooled calibration's mean, or 1 and 0),
    /// S = s²·uᵀΣu + σ², and the speed from the sensor position 0.1 s earlier. Planar
    /// only: with `dimension: 3` none (the planar ẑ would carry the height as an offset).
    fn time_offset_sample(&self, m: &RangeInput, x: Vector2<f64>, variance: f64) -> Option<(f64, f64, f64)> {
        const DT_S: f64 = 0.1;
        let track = self.tracks.get(&m.landmark_id)?;
        if track.status() != TrackStatus::Tracking || self.config.dimension == 3 {
            return None;
        }
        // The innovation's spread: what the filter predicts with (not the map's scale).
        let belief = track.observable_belief();
        let d = x - belief.mean;
        let distance = d.norm();
        if distance < 1e-6 {
            return None;
        }
        let u = d / distance;
        let (s, b) = self.sensor_calibration.map_or((1.0, 0.0), |c| (c.mean.x, c.mean.y));
        let earlier = self.odometry.pose_at(m.stamp_s - DT_S).ok()?;
        let earlier_odom = earlier * Point3::from(self.sensor_mount(&m.frame_id));
        let earlier_odom = Vector2::new(earlier_odom.x, earlier_odom.y);
        let x_before = match &self.drifting {
            Some(dr) => dr.state.map_position(&earlier_odom).0,
            None => earlier_odom,
        };
        let radial = u.dot(&(x - x_before)) / DT_S;
        let innovation = m.range_m - (s * distance + b);
        let var = s * s * (u.transpose() * belief.cov * u)[(0, 0)] + variance;
        Some((innovation, var, radial))
    }

    /// `exact`: the covariance of the sensor position implied by the newest odometry's
    /// filled pose covariance Σ over (x, y, yaw): J Σ Jᵀ, J = [I, J·(x_s − x_base)]
    /// (the mount offset's lever arm); zero when the covariance is not filled.
    fn exact_sensor_cov(&self, pose: &Isometry3<f64>, sensor: &Vector2<f64>) -> nalgebra::Matrix2<f64> {
        let Some(cov) = self.odometry_cov else { return nalgebra::Matrix2::zeros() };
        let arm = sensor - Vector2::new(pose.translation.x, pose.translation.y);
        let jac = Matrix2x3::new(1.0, 0.0, -arm.y, 0.0, 1.0, arm.x);
        let c = jac * cov * jac.transpose();
        (c + c.transpose()) * 0.5
    }

    /// The next state of landmark `id` after the range `range_m` from `x` with noise
    /// variance `variance`: computed from a reference to the track, which is left as
    /// it is (a rejection changes nothing; [`TrackState::commit`] applies the step).
    ///
    /// # Errors
    /// [`Rejection::InnovationGate`], or [`Rejection::Estimator`] when the update fails.
    fn step(
        &self,
        id: &str,
        x: Vector2<f64>,
        sensor_z_m: f64,
        odom_xy: Vector2<f64>,
        range_m: f64,
        variance: f64,
    ) -> Result<(TrackStep, UpdateStats), Rejection> {
        let estimator_error = |e: EstimatorError| Rejection::Estimator(e.to_string());
        let gate = self.config.innovation_gate_sigma;
        let shape = self.config.estimator.noise_shape;
        let relinearisation = &self.config.relinearisation;
        Ok(match &self.tracks[id].state {
            TrackState::Initialising(grid) => {
                let grid = if self.config.dimension == 3 {
                    grid.with_range3(Vector3::new(x.x, x.y, sensor_z_m), range_m, variance)
                } else {
                    grid.with_range(x, range_m, variance)
                }
                .map_err(estimator_error)?;
                let init = &self.config.initialisation;
                let stats = UpdateStats {
                    iterations: 1,
                    converged: true,
                    evaluations: grid.active_cells(),
                    components: 0,
                    log_evidence: f64::NEG_INFINITY,
                };
                if grid.ranges() >= init.min_ranges && grid.largest_std_m() <= init.max_std_m {
                    (TrackStep::Start(self.start_tracking(id, &grid).map_err(estimator_error)?), stats)
                } else {
                    (TrackStep::Grid(Box::new(grid)), stats)
                }
            }
            TrackState::Position(state, window) => {
                let model = RangeModel::new(x, range_m, variance, shape).map_err(estimator_error)?;
                check_gate(gate, &state.summary().map_err(estimator_error)?, &model)?;
                let (next, stats) = self.estimator.update_with_model(state, &model).map_err(estimator_error)?;
                let (next, change, _) = window.advance(&self.estimator, next, model, relinearisation, None);
                (TrackStep::Position(next, change), stats)
            }
            TrackState::Position3(state, window) => {
                let model = RangeModel::new(Vector3::new(x.x, x.y, sensor_z_m), range_m, variance, shape).map_err(estimator_error)?;
                // The first range splits the prior at the sensor's plane into its mirror
                // halves: a planar path cannot tell above from below that plane.
                let (next, stats) = mirrored_update(&self.estimator3, state, window, &model, sensor_z_m, gate)?;
                let (next, change, _) = window.advance(&self.estimator3, next, model, relinearisation, None);
                (TrackStep::Position3(next, change), stats)
            }
            TrackState::Calibrated(state, window, cavity) => {
                let model = CalibratedRangeModel::new(x, range_m, variance, shape).map_err(estimator_error)?;
                check_gate(gate, &state.summary().map_err(estimator_error)?, &model)?;
                let (next, stats) = self.calibrated_estimator.update_with_model(state, &model).map_err(estimator_error)?;
                let (next, change, cavity) =
                    window.advance_calibrated(&self.calibrated_estimator, next, model, relinearisation, cavity, || self.cavity(id));
                (TrackStep::Calibrated(next, change, cavity), stats)
            }
            TrackState::Calibrated3(state, window, cavity) => {
                let model = CalibratedRangeModel3::new(Vector3::new(x.x, x.y, sensor_z_m), range_m, variance, shape).map_err(estimator_error)?;
                let (next, stats) = mirrored_update(&self.calibrated_estimator3, state, window, &model, sensor_z_m, gate)?;
                let (next, change, cavity) =
                    window.advance_calibrated(&self.calibrated_estimator3, next, model, relinearisation, cavity, || self.cavity(id));
                (TrackStep::Calibrated3(next, change, cavity), stats)
            }
            TrackState::Joint => {
                let d = self.drifting.as_ref().expect("joint tracks exist only with odometry: drifting");
                let range = JointRange { id: id.to_string(), odom_xy, range_m, variance };
                let (change, stats) = d.range_step(&d.state, &range, self.config.calibration.enabled, shape, gate)?;
                (TrackStep::Joint(Box::new(change)), stats)
            }
        })
    }

    /// [`Localizer::start_tracking`] of a 3-D landmark: the grid's (x, y) moments and
    /// its disc × the height prior as start and anchor, split into its mirror halves at
    /// the sensors' plane and each re-solved for every range the grid used, in 3-D
    /// ([`Estimator::mirrored_refine`]).
    fn start_tracking3(&self, id: &str, grid: &InitialisationGrid) -> Result<TrackState, EstimatorError> {
        let shape = self.config.estimator.noise_shape;
        let (start, anchor) = (self.prior3(id, &grid.moments()), self.prior3(id, &grid.prior_moments()));
        let measured = grid.measurements();
        // The sensor's plane: the mean height of the ranges' sensor positions.
        let plane = measured.iter().map(|r| r.sensor_z_m).sum::<f64>() / measured.len().max(1) as f64;
        if !self.config.calibration.enabled {
            let ranges = measured
                .iter()
                .map(|r| RangeModel::new(r.sensor_position3(), r.range_m, r.noise_var_m2, shape))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(match self.estimator3.mirrored_refine(start, plane, &anchor, &ranges) {
                Ok(state) => TrackState::Position3(state, RangeWindow { anchor, ranges, folded: false }),
                Err(_) => TrackState::Position3(self.estimator3.initial_state(start)?, RangeWindow::new(start)),
            });
        }
        let cavity = self.calibration_prior();
        let (start, anchor) = (joint_prior::<3, 5>(&start, &cavity), joint_prior::<3, 5>(&anchor, &cavity));
        let ranges = measured
            .iter()
            .map(|r| CalibratedRangeModel3::new(r.sensor_position3(), r.range_m, r.noise_var_m2, shape))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(match self.calibrated_estimator3.mirrored_refine(start, plane, &anchor, &ranges) {
            Ok(state) => TrackState::Calibrated3(state, RangeWindow { anchor, ranges, folded: false }, cavity),
            Err(_) => TrackState::Calibrated3(self.calibrated_estimator3.initial_state(start)?, RangeWindow::new(start), cavity),
        })
    }

    /// The pooled calibration of every calibrated landmark (the pool's running sums,
    /// O(1)), and every calibrated landmark re-summarised with it (O(L): each published
    /// position is conditioned on the pooled (s, b); a landmark whose summary would not
    /// be publishable keeps its previous one).
    fn refresh_sensor_calibration(&mut self, updated: Option<&str>) {
        if self.drifting.is_some() {
            return self.refresh_joint_summaries();
        }
        if !self.config.calibration.enabled {
            return;
        }
        let Some(pooled) = self.calibration_pool.as_ref().and_then(|p| p.pooled().ok()) else { return };
        self.sensor_calibration = Some(pooled);
        let resummarise = |track: &mut LandmarkTrack| {
            if let TrackState::Calibrated(..) | TrackState::Calibrated3(..) = track.state {
                if let Ok((summary, summary3, calibration)) = summarise(&track.state, Some(&pooled)) {
                    track.summary = summary;
                    track.summary3 = summary3;
                    track.calibration = calibration;
                }
            }
        };
        let everyone = match (updated, &self.summaries_conditioned_on) {
            (Some(_), Some(last)) => calibration_moved(last, &pooled),
            _ => true,
        };
        if everyone {
            self.tracks.values_mut().for_each(resummarise);
            self.summaries_conditioned_on = Some(pooled);
        } else if let Some(track) = updated.and_then(|id| self.tracks.get_mut(id)) {
            resummarise(track);
        }
    }

    /// Recomputes landmark `id`'s (s, b) site in the pool from its state
    /// ([`calibration_site`]; O(1)): a calibrated track's, or none. A track whose site
    /// cannot be formed (its calibration marginal or cavity without a Cholesky factor)
    /// is left out of the pool until its next range, where the full recomputation this
    /// replaces failed the whole pool and kept the previous one.
    fn update_calibration_site(&mut self, id: &str) {
        let Some(pool) = &mut self.calibration_pool else { return };
        let site = match self.tracks.get(id).map(|t| &t.state) {
            Some(TrackState::Calibrated(s, _, cavity)) => {
                s.summary().ok().and_then(|summary| calibration_site(&summary.belief, cavity).ok())
            }
            Some(TrackState::Calibrated3(s, _, cavity)) => {
                s.summary().ok().and_then(|summary| calibration_site(&summary.belief, cavity).ok())
            }
            _ => None,
        };
        pool.set(id, site);
    }

    /// What the other landmarks know about (s, b): the cavity of landmark `id`, the
    /// pool ([`pool_calibration`](crate::estimator::pool_calibration)'s sums) without its site.
    fn cavity(&self, id: &str) -> Option<GaussianBelief<2>> {
        self.calibration_pool.as_ref().and_then(|p| p.cavity(id).ok())
    }

    /// N((s₀, b₀), diag(σ_s², σ_b²)) ([`CalibrationConfig::prior`]); calibration on.
    fn calibration_prior(&self) -> GaussianBelief<2> {
        self.config.calibration.prior().belief()
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

/// A Gaussian as a summary without components (for the innovation gate).
/// A mirror reweighting ([`mirrored_update`]) after every range for the first this
/// many ranges of a window, then whenever the window has grown by
/// [`MIRROR_REWEIGHT_GROWTH`]: each re-solves the whole window (O(n) for n ranges), so
/// over a window's life the re-solves cost O(n) range evaluations per range fused in
/// total — a constant per range (about 1/(growth − 1) = 10 window passes) — where a
/// fixed period made it grow with the window (3.4 ms per range for a calibrated 3-D
/// track over 1 000 ranges; `benches/scale.rs`).
const MIRROR_REWEIGHT_ALWAYS: usize = 50;
/// Relative growth of the window between two mirror reweightings after the first
/// [`MIRROR_REWEIGHT_ALWAYS`] ranges.
const MIRROR_REWEIGHT_GROWTH: f64 = 1.1;

/// Whether a window of `n` ranges is due for a mirror reweighting: every n up to
/// [`MIRROR_REWEIGHT_ALWAYS`], then the first n in each interval
/// [g^k, g^(k+1)), g = [`MIRROR_REWEIGHT_GROWTH`].
fn mirror_reweight_due(n: usize) -> bool {
    let step = |n: usize| ((n as f64).ln() / MIRROR_REWEIGHT_GROWTH.ln()).floor();
    n <= MIRROR_REWEIGHT_ALWAYS || step(n) > step(n - 1)
}

/// One range's update of a 3-D state (position, or position and calibration) that
/// keeps the two mirror halves about the sensor's plane: its first range splits the
/// belief at the plane z = `sensor_z_m` ([`Estimator::initial_mirrored_state`]: the
/// prior, or the grid's re-solved Gaussian), the range is gated and fused, and while the
/// window still starts at the prior (a folded window's anchor is the halves
/// moment-matched into one Gaussian, which says nothing of their weights) the halves
/// are reweighted by their batch evidence ([`Estimator::reweight_mirror_sides`]).
fn mirrored_update<const D: usize, M: MeasurementModel<D> + Clone>(
    estimator: &Estimator<D>,
    state: &State<D>,
    window: &RangeWindow<D, M>,
    model: &M,
    sensor_z_m: f64,
    gate: f64,
) -> Result<(State<D>, UpdateStats), Rejection> {
    let estimator_error = |e: EstimatorError| Rejection::Estimator(e.to_string());
    let mirrored;
    let state = if state.updates() == 0 && state.mirror_plane_z_m().is_none() {
        let belief = state.summary().map_err(estimator_error)?.belief;
        mirrored = estimator.initial_mirrored_state(belief, sensor_z_m).map_err(estimator_error)?;
        &mirrored
    } else {
        state
    };
    check_gate(gate, &state.summary().map_err(estimator_error)?, model)?;
    let (next, stats) = estimator.update_with_model(state, model).map_err(estimator_error)?;
    // Each reweighting re-solves both halves for the whole window (O(window · 3ᴰ) per
    // iteration), on the schedule of `mirror_reweight_due`.
    let n = window.ranges.len() + 1;
    if window.folded || !mirror_reweight_due(n) {
        return Ok((next, stats));
    }
    let next = estimator
        .reweight_mirror_sides(&next, &window.anchor, &window.ranges, std::slice::from_ref(model))
        .map_err(estimator_error)?;
    Ok((next, stats))
}

/// var·(p − p₀)(p − p₀)ᵀ for `scale` = (var, p₀) ([`Localizer::map_scale_cov`]); zero
/// for `None`, and for positions so far apart (hostile odometry, ~1e150 m) that it is
/// not finite: a published covariance is never made infinite or NaN by it.
fn scale_cov(scale: Option<(f64, Vector2<f64>)>, p: &Vector2<f64>) -> Matrix2<f64> {
    scale.map_or(Matrix2::zeros(), |(var, origin)| {
        let d = p - origin;
        let cov = d * d.transpose() * var;
        if cov.iter().all(|v| v.is_finite()) { cov } else { Matrix2::zeros() }
    })
}

fn marginal_summary<const K: usize>(belief: GaussianBelief<K>) -> Summary<K> {
    Summary { belief, components: Vec::new(), updates: 0, last_update: UpdateStats::default() }
}

/// λ_max of a 2×2 covariance.
fn largest_eigenvalue(c: &nalgebra::Matrix2<f64>) -> f64 {
    let (a, b, d) = (c[(0, 0)], c[(0, 1)], c[(1, 1)]);
    0.5 * (a + d) + (0.25 * (a - d).powi(2) + b * b).sqrt()
}

/// How far the pooled range calibration may move, in its own standard deviations,
/// before every calibrated landmark's published position is conditioned on it again
/// ([`calibration_moved`]). A published position is N(μ_y + K(c̄ − μ_c), S + K C Kᵀ)
/// for the pooled N(c̄, C), K = Σ_yc Σ_cc⁻¹ and S ⪰ 0 the Schur complement, so a pool
/// that moved by τ in its Mahalanobis distance and its covariance by a factor within
/// 1 ± τ leaves each stale position within τ of the fresh one in the fresh one's
/// Mahalanobis distance, and its covariance within a factor 1 ± τ/(1 − τ). Until then
/// only the landmark a range updates is re-conditioned: the per-range cost stays O(1)
/// in the number of landmarks once the calibration has settled.
pub const CALIBRATION_REFRESH_SIGMA: f64 = 0.05;

/// Whether the pooled calibration moved from `last` to `now` by more than
/// [`CALIBRATION_REFRESH_SIGMA`]: the mean change in `last`'s Mahalanobis distance, or
/// the covariance by more than that fraction (an eigenvalue of last⁻¹·now outside
/// 1 ± τ).
fn calibration_moved(last: &GaussianBelief<2>, now: &GaussianBelief<2>) -> bool {
    let tau = CALIBRATION_REFRESH_SIGMA;
    let Some(chol) = last.cov.cholesky() else { return true };
    let d = now.mean - last.mean;
    let mahalanobis2 = d.dot(&chol.solve(&d));
    // L⁻¹ now L⁻ᵀ: symmetric, eigenvalues those of last⁻¹·now.
    let l_inv = chol.l().try_inverse().unwrap_or_else(nalgebra::Matrix2::zeros);
    let m = l_inv * now.cov * l_inv.transpose();
    let m = (m + m.transpose()) * 0.5;
    let largest = largest_eigenvalue(&m);
    let smallest = m.trace() - largest;
    !(mahalanobis2 <= tau * tau && largest <= 1.0 + tau && smallest >= 1.0 - tau)
}

/// uᵀ C u for the unit vector u along `direction` (λ_max when it is zero).
fn variance_along(c: &nalgebra::Matrix2<f64>, direction: &Vector2<f64>) -> f64 {
    let n = direction.norm();
    if n > 0.0 && n.is_finite() {
        let u = direction / n;
        (u.transpose() * c * u)[(0, 0)]
    } else {
        largest_eigenvalue(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimator::Method;
    use nalgebra::{Matrix2, Translation3, UnitQuaternion};

    fn config() -> LocalizerConfig {
        let mut c = LocalizerConfig {
            odom_frame_id: "odom".into(),
            priors: PriorsConfig {
                ids: vec!["a".into()],
                means_m: vec![1.0, 1.0],
                covs_m2: vec![5.5, -1.5, -1.5, 5.5],
                ..PriorsConfig::default()
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
        RangeInput {
            topic: "range".into(),
            stamp_s: t,
            frame_id: "s".into(),
            landmark_id: id.into(),
            range_m: r,
            variance_m2: 2.0,
            sensor_limits_m: None,
        }
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
            ("estimator.flow.samples", Box::new(|c| {
                c.estimator.flow.samples = 1_000_000;
                c.estimator.flow.steps = 100_000;
            })),
            ("estimator.particle.count", Box::new(|c| c.estimator.particle.count = 10_000_000)),
            ("sensor_offset_m", Box::new(|c| c.sensor_offset_m = vec![1e300, 0.0, 0.0])),
            ("max_range_m", Box::new(|c| c.max_range_m = 1e300)),
            ("priors.means_m", Box::new(|c| c.priors.means_m = vec![1e300, 1.0])),
            ("default_prior.cov_m2", Box::new(|c| c.default_prior.cov_m2 = vec![1e300, 0.0, 0.0, 1e300])),
            ("odometry_gate.accept_after", Box::new(|c| c.odometry_gate.accept_after = 0)),
            ("odometry_error.translation_std_m_per_sqrt_m", Box::new(|c| c.odometry_error.translation_std_m_per_sqrt_m = -1.0)),
            ("estimator.method", Box::new(|c| {
                c.odometry = OdometryMode::Drifting;
                c.estimator.method = crate::estimator::Method::Particle;
            })),
            ("relinearisation.every_ranges", Box::new(|c| {
                c.odometry = OdometryMode::Drifting;
                c.relinearisation.every_ranges = 5;
            })),
            ("map_frame_id", Box::new(|c| {
                c.odometry = OdometryMode::Drifting;
                c.map_frame_id = "odom".into();
            })),
            // Rules across parameters.
            ("relinearisation.every_ranges", Box::new(|c| {
                c.relinearisation.every_ranges = 10;
                c.relinearisation.max_ranges = 5;
            })),
            ("relinearisation.every_ranges", Box::new(|c| {
                c.relinearisation.every_ranges = 3;
                c.estimator.method = crate::estimator::Method::Particle;
            })),
            ("odom_tolerance_s", Box::new(|c| {
                c.odom_buffer_s = 1.0;
                c.odom_tolerance_s = 2.0;
            })),
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

    /// The mirror reweighting schedule: every range up to 50, then once per growth of
    /// the window by 10 % (31 times from 51 to 1 000: ⌊ln 1000/ln 1.1⌋ − ⌊ln 50/ln 1.1⌋
    /// = 72 − 41), so the re-solves' total work over n ranges stays O(n²)/O(n) per range.
    #[test]
    fn mirror_reweights_are_due_geometrically_after_the_first_fifty() {
        assert!((1..=50).all(mirror_reweight_due));
        let due: Vec<usize> = (51..=1000).filter(|&n| mirror_reweight_due(n)).collect();
        assert_eq!(due.len(), 31, "{due:?}");
        for pair in due.windows(2) {
            let ratio = pair[1] as f64 / pair[0] as f64;
            assert!((1.05..1.16).contains(&ratio), "{pair:?}");
        }
        let work: usize = (1..=1000).filter(|&n| mirror_reweight_due(n)).sum();
        assert!(work < 12 * 1000, "window passes over 1 000 ranges: {work}");
    }

    /// The map's scale in the published belief (`drift::map_scale_variance`): a
    /// configured landmark carries var·(μ − p₀)(μ − p₀)ᵀ from the first odometry on
    /// (p₀ its position), none before it, none without calibration; a reset restarts
    /// the map frame and p₀ with the next odometry. var(ln w) = 1/(1/0.01² + 1/0.1²).
    #[test]
    fn the_maps_scale_is_added_about_the_first_odometry_position() {
        let var = 1.0 / (1e4 + 1e2);
        let published = |calibrated: bool, starts: &[(f64, f64)]| {
            let mut c = config();
            c.odometry = OdometryMode::Drifting;
            c.estimator.method = Method::Natural;
            c.priors.means_m = vec![10.0, 0.0];
            c.priors.covs_m2 = vec![1.0, 0.0, 0.0, 1.0];
            c.calibration.enabled = calibrated;
            let mut loc = Localizer::new(c).unwrap();
            assert_eq!(loc.tracks()["a"].summary.belief.cov, Matrix2::identity(), "no odometry yet");
            for (k, &(x, y)) in starts.iter().enumerate() {
                if k > 0 {
                    loc.reset();
                }
                loc.add_odometry(1.0, "odom", at(x, y)).unwrap();
            }
            let track = &loc.tracks()["a"];
            assert_eq!(track.observable_belief().cov, Matrix2::identity(), "the planner's belief has no scale term");
            track.summary.belief.cov - Matrix2::identity()
        };
        let d = Vector2::new(8.0, -1.0);
        assert!((published(true, &[(2.0, 1.0)]) - d * d.transpose() * var).amax() < 1e-12);
        let d = Vector2::new(5.0, 0.0);
        assert!((published(true, &[(2.0, 1.0), (5.0, 0.0)]) - d * d.transpose() * var).amax() < 1e-12, "after a reset");
        assert_eq!(published(false, &[(2.0, 1.0)]), Matrix2::zeros(), "calibration off: the ranges fix the scale");
    }

    /// With drifting odometry the re-solve sees the driver's error model as the filter
    /// does: its history holds the filled covariance's growth over each step (none for
    /// the first message, none for an implausible one, none when it shrinks).
    #[test]
    fn the_resolve_history_holds_the_drivers_covariance_growth() {
        let mut c = config();
        c.odometry = OdometryMode::Drifting;
        c.estimator.method = Method::Natural;
        assert!(c.smoother.enabled, "the re-solve is on by default with drifting");
        let mut loc = Localizer::new(c).unwrap();
        let cov = |k: f64| Matrix3::from_diagonal(&Vector3::new(1e-4 * k, 2e-4 * k, 1e-6 * k));
        for (t, x, k) in [(1.0, 0.0, 1.0), (1.1, 0.05, 3.0), (1.2, 0.1, 1e300), (1.3, 0.15, 2.0)] {
            loc.add_odometry_with_covariance(t, "odom", at(x, 0.0), Some(cov(k))).unwrap();
        }
        let sm = loc.drifting.as_ref().and_then(|d| d.smoother.as_ref()).expect("a re-solve");
        let growth: Vec<Option<Matrix3<f64>>> = sm.history.odometry().iter().map(|o| o.pose_cov_growth).collect();
        assert_eq!(growth.len(), 4);
        assert!(growth[1].is_some_and(|g| (g - cov(2.0)).amax() < 1e-18), "{growth:?}");
        assert!(growth[0].is_none() && growth[2].is_none() && growth[3].is_none(), "{growth:?}");
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

    /// `exact` with a filled pose covariance: the range noise grows by the sensor
    /// position's variance along the line of sight, uᵀ J Σ Jᵀ u with J = [I, J·arm]
    /// (the mount's lever arm); checked against an EKF written here.
    #[test]
    fn a_filled_pose_covariance_inflates_the_range_noise_along_the_line_of_sight() {
        let mut c = config();
        c.sensor_offset_m = vec![1.0, 0.0, 0.0];
        let mut loc = Localizer::new(c).unwrap();
        let cov = Matrix3::new(0.04, 0.01, 0.0, 0.01, 0.09, 0.0, 0.0, 0.0, 0.0025);
        loc.add_odometry_with_covariance(1.0, "odom", at(0.0, -2.0), Some(cov)).unwrap();
        loc.add_range(&range(1.0, "a", 3.5)).unwrap();
        // Sensor at (1, −2) (heading 0, arm (1, 0)): J = [[1, 0, 0], [0, 1, 1]].
        let x: Vector2<f64> = Vector2::new(1.0, -2.0);
        let jac = Matrix2x3::new(1.0, 0.0, 0.0, 0.0, 1.0, 1.0);
        let sensor_cov = jac * cov * jac.transpose();
        let mu: Vector2<f64> = Vector2::new(1.0, 1.0);
        let p: Matrix2<f64> = Matrix2::new(5.5, -1.5, -1.5, 5.5);
        let d = (mu - x).norm();
        let u: Vector2<f64> = (mu - x) / d;
        let r = 2.0 + (u.transpose() * sensor_cov * u)[(0, 0)];
        let h = u.transpose();
        let s = (h * p * h.transpose())[(0, 0)] + r;
        let k = p * h.transpose() / s;
        let mean = mu + k * (3.5 - d);
        let got = loc.tracks()["a"].summary.belief.mean;
        assert!((got - mean).norm() < 1e-9, "{got} vs {mean}");
        // Without the covariance the same range moves the mean further.
        let mut plain = Localizer::new(config_with_offset()).unwrap();
        plain.add_odometry(1.0, "odom", at(0.0, -2.0)).unwrap();
        plain.add_range(&range(1.0, "a", 3.5)).unwrap();
        assert!((plain.tracks()["a"].summary.belief.mean - mu).norm() > (got - mu).norm());
    }

    /// A reported variance of 1e-30 m² is floored at (default_noise_std_m / 100)²:
    /// the EKF update with that floor, by hand.
    #[test]
    fn a_tiny_reported_variance_is_floored() {
        let mut loc = Localizer::new(config()).unwrap();
        loc.add_odometry(1.0, "odom", at(0.0, 0.0)).unwrap();
        loc.add_range(&RangeInput { variance_m2: 1e-30, ..range(1.0, "a", 2.0) }).unwrap();
        let r = (loc.config().default_noise_std_m / 100.0).powi(2);
        let mu: Vector2<f64> = Vector2::new(1.0, 1.0);
        let p: Matrix2<f64> = Matrix2::new(5.5, -1.5, -1.5, 5.5);
        let u: Vector2<f64> = mu / mu.norm();
        let s = (u.transpose() * p * u)[(0, 0)] + r;
        let k = p * u / s;
        let want = mu + k * (2.0 - mu.norm());
        let got = loc.tracks()["a"].summary.belief.mean;
        assert!((got - want).norm() < 1e-9, "{got} vs {want}");
    }

    fn config_with_offset() -> LocalizerConfig {
        LocalizerConfig { sensor_offset_m: vec![1.0, 0.0, 0.0], ..config() }
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

    /// One pose 1e6 m away does not move a known landmark and does not become the
    /// newest pose: later valid odometry and ranges are fused with the right pose. Ten
    /// consistent jumps in a row are a new odometry frame.
    #[test]
    fn odometry_jumps_are_rejected_until_they_are_a_new_frame() {
        let mut loc = Localizer::new(config()).unwrap();
        loc.add_odometry(1.0, "odom", at(0.0, 0.0)).unwrap();
        loc.add_odometry(1.1, "odom", at(0.05, 0.0)).unwrap();
        let before = loc.tracks()["a"].summary.belief;
        let r = loc.add_odometry(1.2, "odom", at(1e6, -1e6)).unwrap_err();
        assert_eq!(r.reason(), "odom_jump");
        assert_eq!(loc.tracks()["a"].summary.belief, before);
        loc.add_odometry(1.3, "odom", at(0.15, 0.0)).unwrap();
        let RangeOutcome::Fused(f) = loc.add_range(&range(1.3, "a", 2.0)).unwrap() else { panic!("covered") };
        assert!((f.sensor_position - Point3::new(0.15, 0.0, 0.0)).norm() < 1e-12);
        // A relocalised odometry: 500 m away, moving normally from there.
        for k in 0..9 {
            let r = loc.add_odometry(1.4 + 0.1 * k as f64, "odom", at(500.0 + 0.05 * k as f64, 0.0));
            assert_eq!(r.unwrap_err().reason(), "odom_jump", "{k}");
        }
        loc.add_odometry(2.3, "odom", at(500.45, 0.0)).unwrap();
        assert_eq!(loc.latest_base_position().unwrap().x, 500.45);
        assert_eq!(loc.rejected()["odom_jump"], 10);
        // History before the discontinuity is gone: no interpolation across it.
        assert_eq!(loc.add_range(&range(2.0, "a", 2.0)).unwrap_err().reason(), "older_than_odometry");
    }

    /// Odometry stamped far after the clock (e.g. sec = 2³¹ − 1) is rejected and does
    /// not block later odometry; with the clock unknown (0) nothing is checked.
    #[test]
    fn odometry_from_the_far_future_is_rejected() {
        let mut loc = Localizer::new(config()).unwrap();
        loc.add_odometry(5.0, "odom", at(0.0, 0.0)).unwrap();
        loc.set_clock(100.0);
        let r = loc.add_odometry(2_147_483_647.0, "odom", at(0.0, 0.0)).unwrap_err();
        assert_eq!(r.reason(), "odom_stamp_future");
        loc.add_odometry(100.5, "odom", at(0.1, 0.0)).unwrap();
        loc.set_clock(0.0);
        loc.add_odometry(5000.0, "odom", at(0.1, 0.0)).unwrap();
    }

    /// Ids that cannot be a topic or a log line are refused, and new ids beyond
    /// `max_landmarks` are refused (configured priors count).
    #[test]
    fn landmark_ids_are_checked_and_capped() {
        let mut c = config();
        c.max_landmarks = 3;
        let mut loc = Localizer::new(c).unwrap();
        loc.add_odometry(1.0, "odom", at(0.0, 0.0)).unwrap();
        for (id, reason) in [("", "bad_landmark_id"), ("L0\0xyz", "bad_landmark_id")] {
            assert_eq!(loc.add_range(&range(1.0, id, 2.0)).unwrap_err().reason(), reason, "{id:?}");
        }
        let long = "x".repeat(129);
        assert_eq!(loc.add_range(&range(1.0, &long, 2.0)).unwrap_err().reason(), "bad_landmark_id");
        loc.add_range(&range(1.0, "b", 2.0)).unwrap();
        loc.add_range(&range(1.0, "c", 2.0)).unwrap();
        assert_eq!(loc.add_range(&range(1.0, "d", 2.0)).unwrap_err().reason(), "landmark_cap");
        assert_eq!(loc.tracks().len(), 3);
        loc.add_range(&range(1.1, "a", 2.0)).unwrap();
    }

    /// One landmark's range ahead of the odometry does not hold up another's: b's
    /// first range is fused when the odometry covers it although a's (newer) waits,
    /// so b's next range does not overtake it (it used to, and the first was then
    /// rejected as stamp_backwards).
    #[test]
    fn a_waiting_range_does_not_hold_up_another_landmarks() {
        let mut loc = Localizer::new(config()).unwrap();
        loc.add_odometry(1.0, "odom", at(0.0, 0.0)).unwrap();
        assert_eq!(loc.add_range(&range(1.5, "a", 3.0)), Ok(RangeOutcome::Pending));
        assert_eq!(loc.add_range(&range(1.3, "b", 3.0)), Ok(RangeOutcome::Pending));
        let done = loc.add_odometry(1.35, "odom", at(0.1, 0.0)).unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].input.landmark_id, "b");
        assert!(done[0].result.is_ok());
        assert!(matches!(loc.add_range(&range(1.32, "b", 3.1)), Ok(RangeOutcome::Fused(_))));
        // An older range of the waiting landmark that the odometry covers is fused
        // at once (stamp order), and the waiting one after it.
        assert!(matches!(loc.add_range(&range(1.2, "a", 3.2)), Ok(RangeOutcome::Fused(_))));
        let done = loc.add_odometry(1.6, "odom", at(0.2, 0.0)).unwrap();
        assert_eq!(done.len(), 1);
        assert!(done[0].result.is_ok());
        assert_eq!(loc.pending(), 0);
        assert_eq!((loc.tracks()["a"].measurements_fused, loc.tracks()["b"].measurements_fused), (2, 2));
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

    /// The pooled (s, b) after every range of a long random sequence equals a pooling
    /// written here from the tracks' states (closed-form 2×2 inverses and PSD clip, no
    /// estimator code): Λ = Λ₀ + Σᵢ ⌊Λᵢ − Λ_qᵢ⌋₊, η = η₀ + Σᵢ (ηᵢ − η_qᵢ), relative
    /// error ≤ 1e-9, across more than two exact recomputations of the running sums
    /// (`pool::EXACT_EVERY`) and a landmark that joins mid-sequence.
    #[test]
    fn the_running_calibration_pool_equals_pooling_from_scratch() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        fn inv(m: &Matrix2<f64>) -> Matrix2<f64> {
            let det = m[(0, 0)] * m[(1, 1)] - m[(0, 1)] * m[(1, 0)];
            Matrix2::new(m[(1, 1)], -m[(0, 1)], -m[(1, 0)], m[(0, 0)]) / det
        }
        // Negative eigenvalues of a symmetric 2×2 set to 0: with λ₊ ≥ λ₋ the
        // eigenvalues, (M − λ₋I)/(λ₊ − λ₋) projects on λ₊'s eigenvector.
        fn clip(m: &Matrix2<f64>) -> Matrix2<f64> {
            let m = (m + m.transpose()) / 2.0;
            let (half_trace, det) = (m.trace() / 2.0, m.determinant());
            let root = (half_trace * half_trace - det).max(0.0).sqrt();
            let (hi, lo) = (half_trace + root, half_trace - root);
            if lo >= 0.0 {
                m
            } else if hi <= 0.0 {
                Matrix2::zeros()
            } else {
                (m - Matrix2::identity() * lo) / (hi - lo) * hi
            }
        }
        let mut c = config();
        c.calibration.enabled = true;
        c.priors = PriorsConfig {
            ids: ["a", "b", "c", "d"].map(String::from).to_vec(),
            means_m: vec![10.0, 0.0, 0.0, 10.0, -10.0, 0.0, 0.0, -10.0],
            covs_m2: [[4.0, 0.5, 0.5, 3.0]; 4].concat(),
            ..PriorsConfig::default()
        };
        let truth = [("a", 10.5, 0.5), ("b", 0.5, 9.0), ("c", -9.0, -1.0), ("d", 1.0, -10.5), ("e", 3.0, 4.0)];
        let mut loc = Localizer::new(c.clone()).unwrap();
        let prior = c.calibration.prior().belief();
        let mut rng = StdRng::seed_from_u64(14);
        let mut fused = 0;
        for k in 1..=2 * pool::EXACT_EVERY as usize + 300 {
            let t = 0.1 * k as f64;
            let (px, py) = (3.0 * (0.1 * t).cos(), 3.0 * (0.1 * t).sin());
            loc.add_odometry(t, "odom", at(px, py)).unwrap();
            // "e" (no prior: the default one) joins after 500 ranges.
            let (id, lx, ly) = truth[rng.random_range(0..if k < 500 { 4 } else { 5 })];
            let z = 1.05 * ((lx - px).powi(2) + (ly - py).powi(2)).sqrt() + 0.3 + rng.random_range(-0.5..0.5);
            if let Ok(RangeOutcome::Fused(_)) = loc.add_range(&range(t, id, z)) {
                fused += 1;
            }
            let (mut precision, mut info) = (inv(&prior.cov), inv(&prior.cov) * prior.mean);
            for track in loc.tracks().values() {
                let TrackState::Calibrated(state, _, cavity) = &track.state else { continue };
                let b = state.summary().unwrap().belief;
                let own_cov: Matrix2<f64> = b.cov.fixed_view::<2, 2>(2, 2).into();
                let own_mean: Vector2<f64> = b.mean.fixed_rows::<2>(2).into();
                let (own, q) = (inv(&own_cov), inv(&cavity.cov));
                precision += clip(&(own - q));
                info += own * own_mean - q * cavity.mean;
            }
            let cov = inv(&precision);
            let mean = cov * info;
            let got = loc.sensor_calibration().expect("calibration on");
            assert!((got.mean - mean).norm() <= 1e-9 * mean.norm(), "range {k}: mean {} vs {mean}", got.mean);
            assert!((got.cov - cov).norm() <= 1e-9 * cov.norm(), "range {k}: cov {} vs {cov}", got.cov);
        }
        assert!(fused > 2000, "{fused} ranges fused");
        assert!(loc.tracks()["e"].is_tracking());
    }

    /// Every calibrated landmark's published position stays within the bound of
    /// [`CALIBRATION_REFRESH_SIGMA`] of its position conditioned afresh on the current
    /// pooled calibration (conditioning written here), the landmark a range updated is
    /// exactly fresh, and most ranges do not re-condition everyone (else the bound
    /// would be tested on nothing).
    #[test]
    fn stale_calibrated_positions_stay_within_the_refresh_bound() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        let tau = CALIBRATION_REFRESH_SIGMA;
        let mut c = config();
        c.calibration.enabled = true;
        let ids: Vec<String> = (0..12).map(|i| format!("l{i}")).collect();
        let truth: Vec<Vector2<f64>> = (0..12)
            .map(|i| {
                let a = i as f64 * std::f64::consts::TAU / 12.0;
                Vector2::new(12.0 * a.cos(), 12.0 * a.sin())
            })
            .collect();
        c.priors = PriorsConfig {
            ids: ids.clone(),
            means_m: truth.iter().flat_map(|t| [t.x + 0.5, t.y - 0.4]).collect(),
            covs_m2: [[2.0, 0.3, 0.3, 1.5]; 12].concat(),
            ..PriorsConfig::default()
        };
        let mut loc = Localizer::new(c).unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        let (mut stale_ranges, mut checked) = (0, 0);
        for k in 1..=1500 {
            let t = 0.1 * k as f64;
            let (px, py) = (4.0 * (0.05 * t).cos(), 4.0 * (0.05 * t).sin());
            loc.add_odometry(t, "odom", at(px, py)).unwrap();
            let i = rng.random_range(0..12);
            let z = 1.03 * (truth[i] - Vector2::new(px, py)).norm() + 0.2 + rng.random_range(-0.5..0.5);
            if !matches!(loc.add_range(&range(t, &ids[i], z)), Ok(RangeOutcome::Fused(_))) {
                continue;
            }
            let pooled = *loc.sensor_calibration().expect("calibration on");
            let mut stale = false;
            for (id, track) in loc.tracks() {
                let TrackState::Calibrated(state, ..) = &track.state else { continue };
                let b = state.summary().unwrap().belief;
                // y | pooled: μ_y + K(c̄ − μ_c), Σ_yy − K Σ_cy + K C Kᵀ, K = Σ_yc Σ_cc⁻¹.
                let s_yc: Matrix2<f64> = b.cov.fixed_view::<2, 2>(0, 2).into();
                let s_cc: Matrix2<f64> = b.cov.fixed_view::<2, 2>(2, 2).into();
                let s_yy: Matrix2<f64> = b.cov.fixed_view::<2, 2>(0, 0).into();
                let gain = s_yc * s_cc.try_inverse().unwrap();
                let mean = b.mean.fixed_rows::<2>(0) + gain * (pooled.mean - b.mean.fixed_rows::<2>(2));
                let cov = s_yy - gain * s_yc.transpose() + gain * pooled.cov * gain.transpose();
                let published = track.summary.belief;
                let d = published.mean - mean;
                let inv = cov.try_inverse().unwrap();
                let mahalanobis = (d.transpose() * inv * d)[(0, 0)].sqrt();
                let l_inv = cov.cholesky().unwrap().l().try_inverse().unwrap();
                let ratio = l_inv * published.cov * l_inv.transpose();
                let eig = ratio.symmetric_eigenvalues();
                if *id == ids[i] {
                    assert!(mahalanobis < 1e-9 && (eig.max() - 1.0).abs() < 1e-9 && (eig.min() - 1.0).abs() < 1e-9, "range {k}: the updated landmark {id} is not fresh");
                }
                assert!(mahalanobis <= tau * 1.001, "range {k}, {id}: {mahalanobis} σ from fresh");
                assert!(eig.max() <= 1.0 + tau / (1.0 - tau) + 1e-9 && eig.min() >= 1.0 - tau / (1.0 - tau) - 1e-9, "range {k}, {id}: covariance ratio {eig}");
                stale |= mahalanobis > 1e-12;
                checked += 1;
            }
            stale_ranges += stale as u32;
        }
        assert!(checked > 10_000, "{checked}");
        assert!(stale_ranges > 1000, "only {stale_ranges} ranges left a landmark stale");
    }
}
