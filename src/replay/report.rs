//! Accuracy metrics of a replay against ground-truth landmark positions, and the
//! report (Markdown for people, YAML for programs).
//!
//! Per landmark, after every fused range k (bag time t_k, belief N(μ_k, Σ_k), true
//! position y):
//! - error e_k = ‖μ_k − y‖, metres; tr(Σ_k), m²;
//! - NEES ε_k = (μ_k − y)ᵀ Σ_k⁻¹ (μ_k − y) (Cholesky solve; 2 on average when the
//!   2-D belief is consistent). The report gives the time average over the
//!   landmark's updates (ANEES = (1/K) Σ_k ε_k), the final ε_K, and the fraction of
//!   updates with ε_k ≤ 5.991 (the 95 % point of χ²₂; 0.95 when consistent). Successive
//!   ε_k are strongly correlated, so the time average is a consistency indicator, not
//!   a test statistic with a known spread;
//! - ANEES over the last half of the bag (the settled filter's consistency: within
//!   [1, 4] is the acceptance band of a 2-D estimate);
//! - with `localizer.dimension: 3` and a true height z: the vertical error |μ_z − z|,
//!   the 3-D NEES of the (x, y, z) belief (3 on average when consistent; its ANEES over
//!   all updates and the last half), and the RMSE of the final vertical errors; the
//!   errors and NEES above stay horizontal, so 2-D and 3-D runs compare directly;
//! - the final range calibration (scale, offset, their standard deviations) when
//!   estimated; the RMSE of the final errors over the landmarks;
//! - time to reach an error threshold (5 m, 1 m), seconds since the first message of
//!   the bag: when the error first went below it, and when it went below it for good
//!   (the first update after the last one at or above it; none if the final error is
//!   not below it).

use super::output::io_err;
use super::output::OutputError;
use crate::estimator::GaussianBelief;
use nalgebra::{Cholesky, Matrix2, SMatrix, SVector, Vector2, Vector3};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Why ground truth could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GroundTruthError {
    #[error("cannot read ground truth {path}: {detail}")]
    Io { path: String, detail: String },
    #[error("ground truth {path}: {detail}")]
    Format { path: String, detail: String },
}

/// True landmark positions in the odometry frame, metres.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroundTruth {
    pub landmarks: BTreeMap<String, Vector2<f64>>,
    /// True heights z, m, of the landmarks given with one (same frame).
    pub heights_m: BTreeMap<String, f64>,
}

impl GroundTruth {
    /// Parses `beacons:` (or `landmarks:`) mapping ids to `{x: , y: }` or `[x, y]`
    /// (the format of the plaza1 data set's `ground_truth.yaml`), or with a height:
    /// `{x: , y: , z: }` or `[x, y, z]`; other keys are ignored.
    ///
    /// # Errors
    /// [`GroundTruthError::Format`] naming the entry that is not two or three finite numbers.
    pub fn from_yaml(text: &str, path: &str) -> Result<Self, GroundTruthError> {
        let err = |detail: String| GroundTruthError::Format { path: path.to_string(), detail };
        let root: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| err(e.to_string()))?;
        let table = root
            .get("beacons")
            .or_else(|| root.get("landmarks"))
            .and_then(|v| v.as_mapping())
            .ok_or_else(|| err("no `beacons:` or `landmarks:` mapping of id -> {x, y} or {x, y, z}".into()))?;
        let mut landmarks = BTreeMap::new();
        let mut heights_m = BTreeMap::new();
        for (key, value) in table {
            let id = match key {
                serde_yaml::Value::String(s) => s.clone(),
                serde_yaml::Value::Number(n) => n.to_string(),
                other => return Err(err(format!("landmark id {other:?} is not a string"))),
            };
            let bad = || err(format!("landmark `{id}`: needs finite x and y (and optionally z) in metres, got {value:?}"));
            // (x, y, z); z is `Some(None)` when given but not a number.
            let (x, y, z) = match value {
                serde_yaml::Value::Sequence(s) if s.len() == 2 || s.len() == 3 => {
                    (s[0].as_f64(), s[1].as_f64(), s.get(2).map(|z| z.as_f64()))
                }
                serde_yaml::Value::Sequence(_) => return Err(bad()),
                v => (v.get("x").and_then(|x| x.as_f64()), v.get("y").and_then(|y| y.as_f64()), v.get("z").map(|z| z.as_f64())),
            };
            match (x, y, z) {
                (Some(x), Some(y), z) if x.is_finite() && y.is_finite() => {
                    match z {
                        None => {}
                        Some(Some(z)) if z.is_finite() => {
                            heights_m.insert(id.clone(), z);
                        }
                        Some(_) => return Err(bad()),
                    }
                    landmarks.insert(id, Vector2::new(x, y));
                }
                _ => return Err(bad()),
            }
        }
        Ok(Self { landmarks, heights_m })
    }

    /// Reads [`GroundTruth::from_yaml`] from a file.
    ///
    /// # Errors
    /// [`GroundTruthError`].
    pub fn load(path: &Path) -> Result<Self, GroundTruthError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| GroundTruthError::Io { path: p.clone(), detail: e.to_string() })?;
        Self::from_yaml(&text, &p)
    }
}

/// NEES (μ − y)ᵀ Σ⁻¹ (μ − y) in any dimension; `None` when Σ is not SPD.
pub fn nees<const D: usize>(mean: &SVector<f64, D>, cov: &SMatrix<f64, D, D>, truth: &SVector<f64, D>) -> Option<f64> {
    let e = mean - truth;
    let chol = Cholesky::new(*cov)?;
    Some(e.dot(&chol.solve(&e)))
}

/// The 95 % point of χ² with 2 degrees of freedom, −2 ln 0.05.
pub const CHI2_2DOF_95: f64 = 5.991464547107979;

/// When an error series went below a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Reach {
    /// Time of the first update with error < threshold, s.
    pub first_below_s: Option<f64>,
    /// Time of the first update after which the error stayed < threshold, s.
    pub settled_s: Option<f64>,
}

/// [`Reach`] of `errors` (at `times_s`) for `threshold_m`.
pub fn time_to_reach(times_s: &[f64], errors_m: &[f64], threshold_m: f64) -> Reach {
    let first_below_s = times_s.iter().zip(errors_m).find(|(_, e)| **e < threshold_m).map(|(t, _)| *t);
    let last_above = errors_m.iter().rposition(|e| !(*e < threshold_m));
    let settled_s = match last_above {
        None => times_s.first().copied(),
        Some(k) if k + 1 < times_s.len() => Some(times_s[k + 1]),
        Some(_) => None,
    };
    Reach { first_below_s, settled_s }
}

/// The state of one landmark after one fused range.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BeliefSample {
    /// Seconds since the first message of the bag.
    pub time_s: f64,
    pub mean: Vector2<f64>,
    pub cov: Matrix2<f64>,
    /// ‖μ − y‖, m (with ground truth).
    pub error_m: Option<f64>,
    /// NEES (with ground truth and SPD Σ).
    pub nees: Option<f64>,
    /// With a 3-D belief: its height, mean and variance (m, m²).
    pub height: Option<(f64, f64)>,
    /// |μ_z − z|, m (3-D belief and a true height).
    pub vertical_error_m: Option<f64>,
    /// NEES of the (x, y, z) belief (3-D belief, a true height and SPD Σ).
    pub nees3: Option<f64>,
}

/// Every belief of one landmark over the replay.
#[derive(Debug, Clone, Default)]
pub struct LandmarkSeries {
    pub samples: Vec<BeliefSample>,
    pub rejected: u64,
    /// The last range calibration estimate, if any.
    pub calibration: Option<crate::localizer::RangeCalibration>,
}

/// Collects the series the report and plots are made of.
#[derive(Debug, Clone, Default)]
pub struct ReportBuilder {
    pub truth: Option<GroundTruth>,
    /// Bag time of the first message, s.
    pub start_s: f64,
    pub landmarks: BTreeMap<String, LandmarkSeries>,
    /// Robot base path (time since start s, x m, y m).
    pub trajectory: Vec<(f64, f64, f64)>,
    /// Goals (time since start s, x m, y m).
    pub goals: Vec<(f64, f64, f64)>,
    /// Corrected robot path in the map frame (`odometry: drifting`; time since start
    /// s, x m, y m).
    pub map_trajectory: Vec<(f64, f64, f64)>,
    /// Its position error against the true path (time since start s, m), thinned.
    pub robot_path_error: Vec<(f64, f64)>,
}

impl ReportBuilder {
    pub fn new(truth: Option<GroundTruth>, start_s: f64) -> Self {
        Self { truth, start_s, ..Default::default() }
    }

    /// Records a fused range's resulting belief (`belief`, and with
    /// `localizer.dimension: 3` the (x, y, z) belief it is the marginal of); returns its
    /// errors and NEES.
    pub fn add_belief(
        &mut self,
        bag_time_s: f64,
        id: &str,
        belief: &GaussianBelief<2>,
        belief3: Option<&GaussianBelief<3>>,
    ) -> BeliefSample {
        let truth = self.truth.as_ref().and_then(|t| t.landmarks.get(id));
        let truth3 = self
            .truth
            .as_ref()
            .and_then(|t| Some(Vector3::new(truth?.x, truth?.y, *t.heights_m.get(id)?)));
        let (mean, cov) = (belief.mean, belief.cov);
        let sample = BeliefSample {
            time_s: bag_time_s - self.start_s,
            mean,
            cov,
            error_m: truth.map(|y| (mean - y).norm()),
            nees: truth.and_then(|y| nees(&mean, &cov, y)),
            height: belief3.map(|b| (b.mean.z, b.cov[(2, 2)])),
            vertical_error_m: belief3.zip(truth3).map(|(b, y)| (b.mean.z - y.z).abs()),
            nees3: belief3.zip(truth3).and_then(|(b, y)| nees(&b.mean, &b.cov, &y)),
        };
        self.landmarks.entry(id.to_string()).or_default().samples.push(sample);
        sample
    }

    /// Records the landmark's latest range calibration estimate.
    pub fn set_calibration(&mut self, id: &str, calibration: Option<crate::localizer::RangeCalibration>) {
        self.landmarks.entry(id.to_string()).or_default().calibration = calibration;
    }

    pub fn add_rejected(&mut self, id: &str) {
        self.landmarks.entry(id.to_string()).or_default().rejected += 1;
    }
}

/// Final numbers of one landmark.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LandmarkReport {
    pub id: String,
    pub fused: usize,
    pub rejected: u64,
    pub final_mean_m: Option<[f64; 2]>,
    /// Row-major 2×2, m².
    pub final_cov_m2: Option<[f64; 4]>,
    pub final_trace_m2: Option<f64>,
    pub truth_m: Option<[f64; 2]>,
    pub final_error_m: Option<f64>,
    pub final_nees: Option<f64>,
    /// Mean NEES over the landmark's updates.
    pub anees: Option<f64>,
    /// Mean NEES over the updates in the second half of the bag.
    pub anees_last_half: Option<f64>,
    /// Final range scale and its standard deviation, when estimated.
    pub range_scale: Option<[f64; 2]>,
    /// Final range offset and its standard deviation, metres, when estimated.
    pub range_offset_m: Option<[f64; 2]>,
    /// With `localizer.dimension: 3`: the final height and its standard deviation, m
    /// (the errors and NEES above are horizontal).
    pub final_height_m: Option<[f64; 2]>,
    /// The true height, m, when the ground truth gives one.
    pub truth_height_m: Option<f64>,
    /// 3-D belief and a true height: the final |μ_z − z|, m, the final 3-D NEES, and
    /// its mean over the updates and over those in the second half of the bag (3 when
    /// consistent).
    pub final_vertical_error_m: Option<f64>,
    pub final_nees3: Option<f64>,
    pub anees3: Option<f64>,
    pub anees3_last_half: Option<f64>,
    /// Fraction of updates with NEES ≤ χ²₂(95 %).
    pub nees_within_95_fraction: Option<f64>,
    pub reach_5m: Reach,
    pub reach_1m: Reach,
    /// (time since start s, error m, tr(Σ) m²) at 10, 25, 50, 75, 100 % of the bag.
    pub over_time: Vec<TimePoint>,
}

/// A landmark's state at a given fraction of the bag.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TimePoint {
    pub fraction: f64,
    pub time_s: f64,
    pub error_m: Option<f64>,
    pub trace_m2: Option<f64>,
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

impl LandmarkReport {
    /// The numbers of one series (`truth`: the true position and height, when known);
    /// `duration_s` is the bag's length.
    pub fn from_series(
        id: &str,
        series: &LandmarkSeries,
        truth: Option<&Vector2<f64>>,
        truth_height_m: Option<f64>,
        duration_s: f64,
    ) -> Self {
        let s = &series.samples;
        let last = s.last();
        let times: Vec<f64> = s.iter().map(|b| b.time_s).collect();
        let errors: Vec<f64> = s.iter().filter_map(|b| b.error_m).collect();
        let nees_values: Vec<f64> = s.iter().filter_map(|b| b.nees).collect();
        let last_half = |value: fn(&BeliefSample) -> Option<f64>| {
            mean(&s.iter().filter(|b| b.time_s >= 0.5 * duration_s).filter_map(value).collect::<Vec<_>>())
        };
        let with_truth = truth.is_some() && errors.len() == times.len();
        let over_time = [0.1, 0.25, 0.5, 0.75, 1.0]
            .iter()
            .map(|f| {
                let t = f * duration_s;
                let at = s.iter().take_while(|b| b.time_s <= t + 1e-9).last();
                TimePoint { fraction: *f, time_s: t, error_m: at.and_then(|b| b.error_m), trace_m2: at.map(|b| b.cov.trace()) }
            })
            .collect();
        Self {
            id: id.to_string(),
            fused: s.len(),
            rejected: series.rejected,
            final_mean_m: last.map(|b| [b.mean.x, b.mean.y]),
            final_cov_m2: last.map(|b| [b.cov[(0, 0)], b.cov[(0, 1)], b.cov[(1, 0)], b.cov[(1, 1)]]),
            final_trace_m2: last.map(|b| b.cov.trace()),
            truth_m: truth.map(|y| [y.x, y.y]),
            final_error_m: last.and_then(|b| b.error_m),
            final_nees: last.and_then(|b| b.nees),
            anees: mean(&nees_values),
            anees_last_half: last_half(|b| b.nees),
            range_scale: series.calibration.map(|c| [c.scale, c.scale_variance.sqrt()]),
            range_offset_m: series.calibration.map(|c| [c.offset_m, c.offset_variance_m2.sqrt()]),
            final_height_m: last.and_then(|b| b.height).map(|(z, var)| [z, var.sqrt()]),
            truth_height_m,
            final_vertical_error_m: last.and_then(|b| b.vertical_error_m),
            final_nees3: last.and_then(|b| b.nees3),
            anees3: mean(&s.iter().filter_map(|b| b.nees3).collect::<Vec<_>>()),
            anees3_last_half: last_half(|b| b.nees3),
            nees_within_95_fraction: (!nees_values.is_empty())
                .then(|| nees_values.iter().filter(|v| **v <= CHI2_2DOF_95).count() as f64 / nees_values.len() as f64),
            reach_5m: if with_truth { time_to_reach(&times, &errors, 5.0) } else { Reach::default() },
            reach_1m: if with_truth { time_to_reach(&times, &errors, 1.0) } else { Reach::default() },
            over_time,
        }
    }
}

/// Throughput of the replay.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Throughput {
    /// Opening the bag and listing its topics, s (wall clock). The messages are read
    /// as they are processed: that time is in `process_s`.
    pub read_s: f64,
    /// Reading and decoding the messages, estimation, planning and writing the
    /// outputs, s (wall clock).
    pub process_s: f64,
    /// Range messages processed per second of `process_s`.
    pub ranges_per_s: f64,
    /// Bag duration / `process_s`.
    pub realtime_factor: f64,
}

/// Everything the report says (the YAML file is this, serialised).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct ReplayReport {
    pub bag: String,
    pub params: String,
    pub ground_truth: Option<String>,
    pub estimator: String,
    pub bag_start_s: f64,
    pub bag_duration_s: f64,
    pub odometry_messages: u64,
    pub range_messages: u64,
    /// Messages whose CDR could not be decoded (skipped, by topic).
    pub undecodable_messages: BTreeMap<String, u64>,
    pub ranges_fused: u64,
    /// Inputs the core rejected, by reason (the node's diagnostics counters).
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Ranges still waiting for odometry when the bag ended.
    pub ranges_waiting_at_end: u64,
    pub goals_published: u64,
    pub goals_by_trigger: BTreeMap<String, u64>,
    pub plan_failures: u64,
    pub landmarks: Vec<LandmarkReport>,
    /// √(mean of the landmarks' squared final errors), m (with ground truth).
    pub final_rmse_m: Option<f64>,
    /// The same of the final vertical errors (3-D beliefs with true heights), m.
    pub final_vertical_rmse_m: Option<f64>,
    /// The same after the rigid motion (rotation + translation) that best aligns the
    /// final estimates with the truth ([`rigid_aligned_rmse`]), m: what remains once the
    /// part ranges cannot observe under drifting odometry (where the map frame sits) is
    /// taken out. At least two landmarks with ground truth.
    pub final_rmse_aligned_m: Option<f64>,
    /// The corrected robot path against the true path (`odometry: drifting` with a
    /// true path).
    pub robot_path: Option<super::path::RobotPathReport>,
    /// `odometry: drifting`: each odometry noise scale and its weight at the end
    /// (`localizer::imm`).
    pub odometry_noise_weights: Vec<(f64, f64)>,
    /// `odometry: drifting` with `smoother.enabled`: re-solves, failures, and each
    /// (heading, translation) noise level's weight in the last (`localizer::smoother`).
    pub smoother: Option<SmootherReport>,
    /// The range-stamp offset against the odometry clock (s, positive = range stamps
    /// late), its standard deviation, and whether it is established
    /// (`localizer::time_offset`).
    pub range_time_offset: Option<(f64, f64, bool)>,
    pub throughput: Throughput,
    /// The error that stopped reading the bag early, if any.
    pub bag_error: Option<String>,
}

/// What the batch re-solves did in a replay ([`crate::localizer::smoother::SmootherStats`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmootherReport {
    pub solves: u64,
    pub failures: u64,
    pub last_failure: Option<String>,
    /// ((heading multiplier, translation multiplier), weight) in the last re-solve.
    pub weights: Vec<((f64, f64), f64)>,
}

/// RMSE of `pairs` (estimate, truth) after the rotation R and translation t that
/// minimise Σ‖R·e + t − y‖² (2-D Procrustes: t aligns the centroids, and R's angle is
/// atan2(Σ ẽ × ỹ, Σ ẽ · ỹ) over the centred points). `None` for fewer than two pairs.
pub fn rigid_aligned_rmse(pairs: &[(Vector2<f64>, Vector2<f64>)]) -> Option<f64> {
    if pairs.len() < 2 {
        return None;
    }
    let n = pairs.len() as f64;
    let ce = pairs.iter().map(|(e, _)| e).sum::<Vector2<f64>>() / n;
    let cy = pairs.iter().map(|(_, y)| y).sum::<Vector2<f64>>() / n;
    let (mut dot, mut cross) = (0.0, 0.0);
    for (e, y) in pairs {
        let (a, b) = (e - ce, y - cy);
        dot += a.dot(&b);
        cross += a.x * b.y - a.y * b.x;
    }
    let (sin, cos) = cross.atan2(dot).sin_cos();
    let sum: f64 = pairs
        .iter()
        .map(|(e, y)| {
            let a = e - ce;
            (Vector2::new(cos * a.x - sin * a.y, sin * a.x + cos * a.y) + cy - y).norm_squared()
        })
        .sum();
    Some((sum / n).sqrt())
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}")).unwrap_or_else(|| "–".into())
}

impl ReplayReport {
    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        md.push_str("# Replay report\n\n");
        md.push_str(&format!("- bag: `{}`\n- parameters: {}\n", self.bag, self.params));
        md.push_str(&format!(
            "- ground truth: {}\n- estimator: `{}`\n",
            self.ground_truth.as_deref().map(|g| format!("`{g}`")).unwrap_or_else(|| "none".into()),
            self.estimator
        ));
        md.push_str(&format!(
            "- recording: {:.1} s from t = {:.3} s; {} odometry, {} range messages; {} ranges fused; {} waiting for odometry at the end\n",
            self.bag_duration_s, self.bag_start_s, self.odometry_messages, self.range_messages, self.ranges_fused, self.ranges_waiting_at_end
        ));
        md.push_str(&format!(
            "- goals: {} published ({}), {} planning failures\n",
            self.goals_published,
            self.goals_by_trigger.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", "),
            self.plan_failures
        ));
        md.push_str(&format!(
            "- throughput: {:.0} ranges/s, {:.0}× real time (reading and processing {:.3} s, opening {:.3} s)\n",
            self.throughput.ranges_per_s, self.throughput.realtime_factor, self.throughput.process_s, self.throughput.read_s
        ));
        if let Some(e) = &self.bag_error {
            md.push_str(&format!("- **the bag could not be read to the end**: {e}\n"));
        }
        md.push_str("\n## Landmarks\n\nTimes in seconds since the first message of the bag; \"settled\" = below the threshold from then on.\n\n");
        md.push_str(&format!(
            "Final RMSE over the landmarks: {} m ({} m after the best rigid alignment with the truth).\n\n",
            opt(self.final_rmse_m, 3),
            opt(self.final_rmse_aligned_m, 3)
        ));
        md.push_str(&self.landmark_table());
        md.push_str("\nTracking updates only (not while initialising). ANEES: NEES (μ − y)ᵀΣ⁻¹(μ − y) averaged over the landmark's updates, and over those in the second half of the bag (2 when consistent). Scale and offset: the range calibration z = s·d + b, ± one standard deviation.\n");
        md.push_str("\n## Error and tr(Σ) over time\n\n| landmark | ");
        let fractions = [10, 25, 50, 75, 100];
        md.push_str(&fractions.iter().map(|f| format!("{f} %: error (m) / tr(Σ) (m²)")).collect::<Vec<_>>().join(" | "));
        md.push_str(" |\n|---|");
        md.push_str(&"---|".repeat(fractions.len()));
        md.push('\n');
        for l in &self.landmarks {
            md.push_str(&format!("| {} |", l.id));
            for p in &l.over_time {
                md.push_str(&format!(" {} / {} |", opt(p.error_m, 2), opt(p.trace_m2, 2)));
            }
            md.push('\n');
        }
        md.push_str("\nEvery update is in `updates.csv` (error and NEES columns when ground truth is given).\n");
        if let Some(p) = &self.robot_path {
            md.push_str("\n## Robot path\n\n");
            md.push_str(&format!(
                "The corrected base pose (`robot_pose`, map frame) against the true path, {} poses: RMSE {:.3} m, final {:.3} m, max {:.3} m, ANEES {} (x, y, yaw; 3 when consistent), over the last half {}.\n",
                p.poses,
                p.rmse_m,
                p.final_error_m,
                p.max_error_m,
                opt(p.anees, 2),
                opt(p.anees_last_half, 2)
            ));
        }
        if let Some((offset_s, std_s, suspected)) = self.range_time_offset {
            md.push_str(&format!(
                "\nRange stamps against the odometry clock: {offset_s:+.3} ± {std_s:.3} s{}.\n",
                if suspected { " — **the innovations follow the motion along the line of sight as such an offset would: the range and odometry clocks disagree, or the odometry drifts**" } else { " (no offset detected)" }
            ));
        }
        if !self.odometry_noise_weights.is_empty() {
            let weights: Vec<String> = self.odometry_noise_weights.iter().map(|(c, w)| format!("×{c}: {w:.3}")).collect();
            md.push_str(&format!(
                "
Odometry noise scales (times `odometry_error`'s standard deviations) and their weights at the end: {}.
",
                weights.join(", ")
            ));
        }
        if let Some(sm) = &self.smoother {
            let weights: Vec<String> =
                sm.weights.iter().filter(|(_, w)| *w >= 0.001).map(|((h, t), w)| format!("heading ×{h}, translation ×{t}: {w:.3}")).collect();
            md.push_str(&format!(
                "\nBatch re-solves of the whole history (`smoother`): {} ({} failed or not applied{}); noise levels in the last: {}.\n",
                sm.solves,
                sm.failures,
                sm.last_failure.as_ref().map_or(String::new(), |f| format!(", the last: {f}")),
                weights.join(", ")
            ));
        }
        md.push_str("\n## Rejected inputs\n\n| reason | count |\n|---|---|\n");
        if self.rejected_by_reason.is_empty() && self.undecodable_messages.is_empty() {
            md.push_str("| (none) | 0 |\n");
        }
        for (reason, n) in &self.rejected_by_reason {
            md.push_str(&format!("| {reason} | {n} |\n"));
        }
        for (topic, n) in &self.undecodable_messages {
            md.push_str(&format!("| undecodable CDR on {topic} | {n} |\n"));
        }
        md.push_str("\n![trajectory and estimates](trajectory.png)\n\n![error vs time](error_vs_time.png)\n");
        md
    }

    /// The per-landmark Markdown table (also what the README quotes).
    pub fn landmark_table(&self) -> String {
        let mut md = String::new();
        md.push_str("| landmark | fused | rejected | final error (m) | final tr(Σ) (m²) | ANEES | ANEES last half | NEES ≤ χ²₂(95 %) | < 5 m first / settled (s) | < 1 m first / settled (s) | scale | offset (m) |\n");
        md.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        let pm = |v: Option<[f64; 2]>, digits: usize| {
            v.map(|[m, s]| format!("{m:.digits$} ± {s:.digits$}")).unwrap_or_else(|| "–".into())
        };
        for l in &self.landmarks {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} / {} | {} | {} |\n",
                l.id,
                l.fused,
                l.rejected,
                opt(l.final_error_m, 3),
                opt(l.final_trace_m2, 4),
                opt(l.anees, 2),
                opt(l.anees_last_half, 2),
                l.nees_within_95_fraction.map(|f| format!("{:.0} %", 100.0 * f)).unwrap_or_else(|| "–".into()),
                opt(l.reach_5m.first_below_s, 1),
                opt(l.reach_5m.settled_s, 1),
                opt(l.reach_1m.first_below_s, 1),
                opt(l.reach_1m.settled_s, 1),
                pm(l.range_scale, 4),
                pm(l.range_offset_m, 3),
            ));
        }
        // `localizer.dimension: 3`: the errors above are horizontal; the heights here.
        if self.landmarks.iter().any(|l| l.final_height_m.is_some()) {
            md.push_str(&format!(
                "\nHeights (`localizer.dimension: 3`; the errors and NEES above are horizontal). Vertical RMSE: {} m.\n\n",
                opt(self.final_vertical_rmse_m, 3)
            ));
            md.push_str("| landmark | final height (m) | true height (m) | vertical error (m) | 3-D NEES final | 3-D ANEES | 3-D ANEES last half |\n");
            md.push_str("|---|---|---|---|---|---|---|\n");
            for l in self.landmarks.iter().filter(|l| l.final_height_m.is_some()) {
                md.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} | {} |\n",
                    l.id,
                    pm(l.final_height_m, 2),
                    opt(l.truth_height_m, 2),
                    opt(l.final_vertical_error_m, 3),
                    opt(l.final_nees3, 2),
                    opt(l.anees3, 2),
                    opt(l.anees3_last_half, 2),
                ));
            }
        }
        md
    }

    /// Writes `report.md` and `report.yaml` into `dir`.
    ///
    /// # Errors
    /// [`OutputError::Io`].
    pub fn write(&self, dir: &Path) -> Result<(), OutputError> {
        let md = dir.join("report.md");
        std::fs::write(&md, self.markdown()).map_err(|e| io_err(&md, e))?;
        let yaml_path = dir.join("report.yaml");
        let yaml = serde_yaml::to_string(self).map_err(|e| io_err(&yaml_path, e))?;
        std::fs::write(&yaml_path, yaml).map_err(|e| io_err(&yaml_path, e))
    }
}
