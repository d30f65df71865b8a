//! The robot's path against a true path: with `localizer.odometry: drifting` the core
//! publishes the corrected base pose (`robot_pose`, map frame); the replay report
//! scores it against true poses read from a bag (`nav_msgs/Odometry`, e.g. a
//! simulator's `/ground_truth/odom`, or the ground-truth bag of a data set), taken
//! in the frame the map frame starts in (the odometry frame at the first message).

use super::bag::{read_bag, BagError, BagMessage};
use crate::msg::cdr::CdrMessage;
use crate::msg::{type_names, OdometryMsg};
use crate::localizer::drift::planar_pose;
use nalgebra::{Isometry2, Matrix3, Vector2, Vector3};
use serde::Serialize;
use std::path::Path;

/// Default topic of the true path (the simulators' name).
pub const DEFAULT_TRUE_PATH_TOPIC: &str = "/ground_truth/odom";
/// Points kept for the error-vs-time plot (older ones are thinned by half when full).
const MAX_PLOT_POINTS: usize = 20_000;
/// True poses read at most (a 10 h path at 100 Hz), so a hostile bag cannot exhaust
/// memory.
const MAX_TRUE_POSES: usize = 3_600_000;

/// True base poses (stamp s, planar pose), in stamp order.
#[derive(Debug, Clone, Default)]
pub struct TruePath {
    poses: Vec<(f64, Isometry2<f64>)>,
}

impl TruePath {
    /// The `nav_msgs/Odometry` messages of `topic` in the bag at `path`; `Ok(None)` when
    /// the bag has no such topic. Undecodable or non-finite messages are skipped;
    /// messages out of stamp order are sorted.
    ///
    /// # Errors
    /// The bag cannot be opened or read.
    pub fn load(path: &Path, topic: &str) -> Result<Option<Self>, BagError> {
        let bag = read_bag(path)?;
        let Some(info) = bag.topics.iter().find(|t| t.name == topic) else { return Ok(None) };
        if info.type_name != type_names::ODOMETRY {
            return Ok(None);
        }
        let mut poses = Vec::new();
        let summary = bag.for_each_message(&|t| t.name == topic, |m: BagMessage| {
            if poses.len() >= MAX_TRUE_POSES {
                return Err(());
            }
            if let Ok(msg) = OdometryMsg::decode(&m.data) {
                let stamp = msg.header.stamp.secs();
                let pose = planar_pose(&msg.base_pose());
                if stamp.is_finite() && pose.translation.vector.iter().all(|v| v.is_finite()) {
                    poses.push((stamp, pose));
                }
            }
            Ok(())
        });
        if let Ok(s) = summary {
            if let Some(e) = s.error {
                if poses.is_empty() {
                    return Err(e);
                }
            }
        }
        poses.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(Some(Self { poses }))
    }

    /// A path from poses (for tests).
    pub fn from_poses(mut poses: Vec<(f64, Isometry2<f64>)>) -> Self {
        poses.sort_by(|a, b| a.0.total_cmp(&b.0));
        Self { poses }
    }

    pub fn len(&self) -> usize {
        self.poses.len()
    }

    pub fn is_empty(&self) -> bool {
        self.poses.is_empty()
    }

    /// The true pose at `stamp_s`, linearly interpolated (heading along the shorter
    /// arc); `None` outside the path's time span.
    pub fn at(&self, stamp_s: f64) -> Option<Isometry2<f64>> {
        let k = self.poses.partition_point(|(t, _)| *t < stamp_s);
        let (t1, p1) = *self.poses.get(k)?;
        if t1 == stamp_s {
            return Some(p1);
        }
        let (t0, p0) = *self.poses.get(k.checked_sub(1)?)?;
        let w = (stamp_s - t0) / (t1 - t0);
        let translation = p0.translation.vector * (1.0 - w) + p1.translation.vector * w;
        let turn = (p1.rotation / p0.rotation).angle();
        Some(Isometry2::new(translation, p0.rotation.angle() + w * turn))
    }
}

/// The corrected path's errors, accumulated as poses come.
#[derive(Debug, Clone, Default)]
pub struct PathErrors {
    count: u64,
    sum_sq_m2: f64,
    max_m: f64,
    last_m: f64,
    nees_sum: f64,
    nees_count: u64,
    /// (time since the bag's start s, position error m), thinned to at most
    /// [`MAX_PLOT_POINTS`].
    pub series: Vec<(f64, f64)>,
    /// (time since the bag's start s, NEES) at the same poses as `series`.
    nees_series: Vec<(f64, f64)>,
    stride: usize,
    skipped: usize,
}

impl PathErrors {
    /// Scores the estimated pose `estimate` (covariance over x, y, yaw) at `stamp_s`
    /// against `truth`; `time_s` is the plot's time axis. Poses outside the true path
    /// are not scored.
    pub fn push(&mut self, truth: &TruePath, stamp_s: f64, time_s: f64, estimate: &Isometry2<f64>, cov: &Matrix3<f64>) {
        let Some(t) = truth.at(stamp_s) else { return };
        let d: Vector2<f64> = estimate.translation.vector - t.translation.vector;
        let error = d.norm();
        self.count += 1;
        self.sum_sq_m2 += error * error;
        self.max_m = self.max_m.max(error);
        self.last_m = error;
        let e = Vector3::new(d.x, d.y, (estimate.rotation / t.rotation).angle());
        let nees = cov.cholesky().map(|c| e.dot(&c.solve(&e)));
        if let Some(nees) = nees {
            self.nees_sum += nees;
            self.nees_count += 1;
        }
        if self.stride == 0 {
            self.stride = 1;
        }
        self.skipped += 1;
        if self.skipped >= self.stride {
            self.skipped = 0;
            self.series.push((time_s, error));
            if let Some(nees) = nees {
                self.nees_series.push((time_s, nees));
            }
            if self.series.len() >= MAX_PLOT_POINTS {
                self.series = self.series.iter().step_by(2).copied().collect();
                self.nees_series = self.nees_series.iter().step_by(2).copied().collect();
                self.stride *= 2;
            }
        }
    }

    /// The summary, once a pose was scored; `duration_s` is the bag's length.
    pub fn report(&self, duration_s: f64) -> Option<RobotPathReport> {
        let last_half: Vec<f64> = self.nees_series.iter().filter(|(t, _)| *t >= 0.5 * duration_s).map(|(_, n)| *n).collect();
        (self.count > 0).then(|| RobotPathReport {
            poses: self.count,
            rmse_m: (self.sum_sq_m2 / self.count as f64).sqrt(),
            final_error_m: self.last_m,
            max_error_m: self.max_m,
            anees: (self.nees_count > 0).then(|| self.nees_sum / self.nees_count as f64),
            anees_last_half: (!last_half.is_empty()).then(|| last_half.iter().sum::<f64>() / last_half.len() as f64),
        })
    }
}

/// The corrected robot path against the true path (report section "Robot path").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RobotPathReport {
    /// Poses scored (one per accepted odometry inside the true path's span).
    pub poses: u64,
    /// √(mean squared position error), m.
    pub rmse_m: f64,
    pub final_error_m: f64,
    pub max_error_m: f64,
    /// Average NEES over (x, y, yaw) (3 when consistent).
    pub anees: Option<f64>,
    /// The same over the poses in the second half of the bag (from the poses kept for
    /// the plot: every one, or an even thinning of a long path).
    pub anees_last_half: Option<f64>,
}
