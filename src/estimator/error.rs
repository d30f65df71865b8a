//! The estimator core's error type: one enum, each variant names the quantity and its value.

use thiserror::Error;

/// Everything the estimator core can reject or fail at.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EstimatorError {
    /// A measured range that is not finite or is negative.
    #[error("range_m must be finite and >= 0, got {0}")]
    InvalidRange(f64),
    /// A range-noise variance that is not finite or not positive.
    #[error("noise_var_m2 must be finite and > 0, got {0}")]
    InvalidNoiseVariance(f64),
    /// A sensor position with a non-finite coordinate.
    #[error("sensor_position must be finite, got {0:?}")]
    InvalidSensorPosition(Vec<f64>),
    /// A generic non-finite input or intermediate quantity.
    #[error("{quantity} must be finite, got {value}")]
    NonFinite {
        /// Name of the quantity.
        quantity: &'static str,
        /// Its value, formatted.
        value: String,
    },
    /// A covariance or precision that is not symmetric positive definite.
    #[error("{quantity} must be symmetric positive definite, got {value}")]
    NotPositiveDefinite {
        /// Name of the matrix.
        quantity: &'static str,
        /// Its value, formatted.
        value: String,
    },
    /// A configuration parameter (or a setting passed as an argument) outside its
    /// allowed range.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// An estimator state of a kind that the estimator's method cannot update.
    #[error("state holds a {state} belief but the estimator method is {method}")]
    StateMismatch {
        /// Kind of the state passed in.
        state: &'static str,
        /// Method of the estimator.
        method: &'static str,
    },
    /// A mixture without components or with invalid weights.
    #[error("mixture {quantity} is invalid: {value}")]
    InvalidMixture {
        /// What is wrong (`weights`, `components`).
        quantity: &'static str,
        /// Offending value, formatted.
        value: String,
    },
    /// All particle weights underflowed (the measurement is impossible under every particle).
    #[error("particle weights degenerate: max log-weight {0}")]
    DegenerateWeights(f64),
}

pub(crate) fn fmt_matrix<const R: usize, const C: usize>(m: &nalgebra::SMatrix<f64, R, C>) -> String {
    let rows: Vec<String> = (0..R)
        .map(|i| {
            let cols: Vec<String> = (0..C).map(|j| format!("{:.6e}", m[(i, j)])).collect();
            format!("[{}]", cols.join(", "))
        })
        .collect();
    format!("[{}]", rows.join(", "))
}
