//! The seed scenario of the Gaussian-flow slides, shared by the accuracy report and the
//! planner study: landmark y* = [4.7, −3.1] m, prior N(μ₀ = [1, 1], Σ₀ = [[5.5, −1.5],
//! [−1.5, 5.5]] m²), range noise σ² = 2 m², first measurement at x₀ = 0.

use crate::estimator::GaussianBelief;
use nalgebra::{Matrix2, Vector2};

/// Range noise variance σ², m².
pub const NOISE_VAR_M2: f64 = 2.0;

/// A run whose estimate ends further than this from y* counts as lost, metres.
pub const LOST_M: f64 = 2.0;

/// The true landmark y*, metres.
pub fn landmark() -> Vector2<f64> {
    Vector2::new(4.7, -3.1)
}

/// The prior N(μ₀, Σ₀).
pub fn prior() -> GaussianBelief<2> {
    GaussianBelief::new(Vector2::new(1.0, 1.0), Matrix2::new(5.5, -1.5, -1.5, 5.5)).expect("slides' prior is SPD")
}
