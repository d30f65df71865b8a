//! The candidate grid: cells of a square grid centred on the current position, spacing
//! `resolution_m`, half-width `max_step_m`; a cell is a valid goal when it is reachable
//! (‖p − x‖ ≤ max_step_m), inside the workspace and at least `min_landmark_distance_m`
//! from the landmark mean μ (from every landmark's mean when the plan serves several).

use nalgebra::Vector2;

use super::config::PlannerConfig;

/// Slack on the reachability test so that cells exactly `max_step_m` away (e.g. (10, 0)
/// cells at 0.1 m) are not lost to rounding, metres.
const REACH_SLACK_M: f64 = 1e-9;

/// Why a cell is or is not a valid goal. Checks are applied in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CandidateStatus {
    /// A valid goal.
    Valid,
    /// Farther than `max_step_m` from the current position.
    Unreachable,
    /// Reachable but outside the workspace bounds.
    OutOfBounds,
    /// Reachable, in bounds, but closer than `min_landmark_distance_m` to the landmark mean.
    TooCloseToLandmark,
}

/// A square grid of candidate goals, row-major with x fastest (the OccupancyGrid layout):
/// cell (col, row) has centre `origin_m + resolution_m · (col, row)`.
#[derive(Clone, Debug, PartialEq)]
pub struct CandidateGrid {
    /// Centre of cell (0, 0), metres.
    pub origin_m: Vector2<f64>,
    /// Cell size, metres.
    pub resolution_m: f64,
    /// Cells along x.
    pub width: usize,
    /// Cells along y.
    pub height: usize,
    /// Cell centres, metres, row-major.
    pub positions: Vec<Vector2<f64>>,
    /// Validity of each cell, row-major.
    pub status: Vec<CandidateStatus>,
}

impl CandidateGrid {
    /// Builds the grid around `current_position` (metres) for a belief with mean
    /// `landmark_mean` (metres). The config is assumed validated.
    pub fn new(config: &PlannerConfig, current_position: &Vector2<f64>, landmark_mean: &Vector2<f64>) -> Self {
        Self::with_landmarks(config, current_position, std::slice::from_ref(landmark_mean))
    }

    /// As [`CandidateGrid::new`] for several landmarks: a cell closer than
    /// `min_landmark_distance_m` to any of `landmark_means` (metres) is
    /// [`CandidateStatus::TooCloseToLandmark`].
    pub fn with_landmarks(config: &PlannerConfig, current_position: &Vector2<f64>, landmark_means: &[Vector2<f64>]) -> Self {
        let half = (config.max_step_m / config.resolution_m + 1e-9).floor() as usize;
        let side = 2 * half + 1;
        let res = config.resolution_m;
        let origin_m = current_position - Vector2::new(half as f64 * res, half as f64 * res);
        let mut positions = Vec::with_capacity(side * side);
        let mut status = Vec::with_capacity(side * side);
        for row in 0..side {
            for col in 0..side {
                let offset = Vector2::new((col as f64 - half as f64) * res, (row as f64 - half as f64) * res);
                let p = current_position + offset;
                let s = if offset.norm() > config.max_step_m + REACH_SLACK_M {
                    CandidateStatus::Unreachable
                } else if !config.workspace.contains(&p) {
                    CandidateStatus::OutOfBounds
                } else if landmark_means.iter().any(|m| (p - m).norm() < config.min_landmark_distance_m) {
                    CandidateStatus::TooCloseToLandmark
                } else {
                    CandidateStatus::Valid
                };
                positions.push(p);
                status.push(s);
            }
        }
        Self { origin_m, resolution_m: res, width: side, height: side, positions, status }
    }

    /// Indices of the valid cells, in row-major order.
    pub fn valid_indices(&self) -> Vec<usize> {
        (0..self.positions.len()).filter(|&i| self.status[i] == CandidateStatus::Valid).collect()
    }

    /// Number of cells with status `s`.
    pub fn count(&self, s: CandidateStatus) -> usize {
        self.status.iter().filter(|&&t| t == s).count()
    }
}
