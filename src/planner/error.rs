//! The planner's error type: one enum, each variant names the quantity and its value.

use thiserror::Error;

use crate::estimator::EstimatorError;

/// Everything the planner can reject or fail at.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PlannerError {
    /// A configuration parameter (or a setting passed as an argument) outside its
    /// allowed range.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A position (robot, landmark hypothesis) with a non-finite coordinate, metres.
    #[error("{quantity} must be finite, got {value:?}")]
    InvalidPosition {
        /// Which position.
        quantity: &'static str,
        /// Its coordinates, metres.
        value: [f64; 2],
    },
    /// A range-noise variance σ² (m²) that is not finite or not positive.
    #[error("noise_var_m2 must be finite and > 0, got {0}")]
    InvalidNoiseVariance(f64),
    /// The belief is not publishable (non-finite mean, covariance not SPD).
    #[error("belief rejected: {0}")]
    InvalidBelief(#[from] EstimatorError),
    /// The plan function panicked (a bug): the planning thread reports it as this
    /// failure, with the panic's message, so the request does not stay awaited.
    #[error("the planner failed unexpectedly (a bug; please report it): {0}")]
    Panicked(String),
    /// The oracle hypothesis [`super::LandmarkHypothesis::Known`] (a planar position) was
    /// passed for a 3-D belief: only the Bayesian hypothesis (draws from the belief)
    /// exists in 3-D.
    #[error("LandmarkHypothesis::Known is planar: a 3-D belief takes LandmarkHypothesis::FromBelief only")]
    KnownLandmarkIn3d,
    /// A plan over several landmarks was asked for with none.
    #[error("no landmark belief to plan for")]
    NoLandmarks,
    /// Every candidate was unreachable, outside the workspace or too close to the landmark mean.
    #[error(
        "no valid goal candidate around {position_m:?} (max_step_m {max_step_m}): \
         {out_of_bounds} outside the workspace, {too_close} closer than {min_landmark_distance_m} m to the landmark mean"
    )]
    NoValidCandidate {
        /// Current robot position, metres.
        position_m: [f64; 2],
        /// Largest step, metres.
        max_step_m: f64,
        /// The minimum distance to the landmark mean, metres.
        min_landmark_distance_m: f64,
        /// Reachable candidates rejected for lying outside the workspace bounds.
        out_of_bounds: usize,
        /// Reachable, in-bounds candidates rejected for being too close to the landmark mean.
        too_close: usize,
    },
}
