//! Parameters of `landmark_flow_node` (`config/landmark_flow_node.yaml`), as plain data
//! with one `validate()`, so every rule is tested without ROS. The bag replayer reads
//! the same section of the same file, so live and replay run with one configuration.

use crate::config::{check_integer, check_positive, check_range, ConfigError};
use crate::localizer::{LocalizerConfig, UnknownLandmarkPolicy};
use crate::planner::PlannerConfig;
use serde::{Deserialize, Serialize};

/// When the next goal is chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GoalConfig {
    /// Whether the node plans and publishes goals at all.
    pub enabled: bool,
    /// Landmark the planner plans for; "" = the one with the largest tr(Σ).
    pub target_landmark: String,
    /// Re-plan after every fused range of the target landmark.
    pub replan_on_update: bool,
    /// Re-plan at this period (ROS clock), seconds; 0 disables the timer.
    pub replan_period_s: f64,
    /// Re-plan when the robot is within this distance of the current goal, metres.
    pub goal_tolerance_m: f64,
}

impl Default for GoalConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            target_landmark: String::new(),
            replan_on_update: false,
            replan_period_s: 2.0,
            goal_tolerance_m: 0.2,
        }
    }
}

/// What is published besides the beliefs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublishConfig {
    /// RViz markers on `markers`.
    pub markers: bool,
    /// The planner's criterion over the candidates on `criterion_heatmap`.
    pub heatmap: bool,
    /// Period of `/diagnostics`, seconds.
    pub diagnostics_period_s: f64,
    /// Period of `landmark_beliefs` and `markers`, seconds; 0 = after every fused range.
    /// Each carries every landmark, so with many landmarks a period keeps the
    /// per-range work and bandwidth independent of their number (the per-landmark
    /// `landmarks/<id>/pose` stay per update).
    pub beliefs_period_s: f64,
}

impl Default for PublishConfig {
    fn default() -> Self {
        Self { markers: true, heatmap: true, diagnostics_period_s: 1.0, beliefs_period_s: 0.0 }
    }
}

/// Input subscriptions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputConfig {
    /// Reliable (true) or best-effort (false, the sensor-data default) input QoS.
    pub reliable: bool,
    /// Input queue depth.
    pub depth: i64,
    /// Also subscribe `range_raw` (sensor_msgs/Range, landmark id = header.frame_id).
    pub sensor_msgs_range: bool,
}

impl Default for InputConfig {
    fn default() -> Self {
        Self { reliable: false, depth: 50, sensor_msgs_range: false }
    }
}

/// Every parameter of `landmark_flow_node`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LandmarkFlowNodeConfig {
    pub localizer: LocalizerConfig,
    pub planner: PlannerConfig,
    pub goal: GoalConfig,
    pub publish: PublishConfig,
    pub inputs: InputConfig,
}

/// The parameters `ros2 param set` may change while the node runs (a name, or a
/// prefix ending in `.`): when to plan and what (`goal.*`, `planner.*`), what is
/// published and how often, and the innovation gate. Every other parameter shapes
/// state built at start (the estimator, the landmarks, the subscriptions) and is
/// read-only: changing it means restarting the node.
pub const RUNTIME_PARAMETERS: &[&str] = &[
    "goal.",
    "planner.",
    "publish.markers",
    "publish.heatmap",
    "publish.diagnostics_period_s",
    "publish.beliefs_period_s",
    "localizer.innovation_gate_sigma",
];

/// Whether parameter `name` (dotted) can change while the node runs
/// ([`RUNTIME_PARAMETERS`]).
pub fn is_runtime_parameter(name: &str) -> bool {
    RUNTIME_PARAMETERS.iter().any(|p| if p.ends_with('.') { name.starts_with(p) } else { name == *p })
}

impl LandmarkFlowNodeConfig {
    /// This configuration with parameter `name` set to `value`, validated as at start.
    ///
    /// # Errors
    /// [`ConfigError`] naming the parameter: not a parameter, a value of the wrong
    /// type, or one `validate()` refuses.
    pub fn with_parameter(&self, name: &str, value: serde_yaml::Value) -> Result<Self, ConfigError> {
        self.with_parameters(&[(name.to_string(), value)])
    }

    /// This configuration with every `(name, value)` set, validated once at the end (a
    /// rule across parameters judges the new values together, as `ros2 param set` of
    /// several at once expects).
    ///
    /// # Errors
    /// As [`LandmarkFlowNodeConfig::with_parameter`].
    pub fn with_parameters(&self, changes: &[(String, serde_yaml::Value)]) -> Result<Self, ConfigError> {
        let mut next = self.clone();
        for (name, value) in changes {
            next = crate::config::with_parameter(&next, name, value.clone())?;
        }
        next.validate()?;
        Ok(next)
    }

    /// The interval `validate()` allows for numeric parameter `name`, as it states it
    /// ("… in [min, max]"), found by asking it about a value no interval contains (NaN
    /// for a float, `i64::MAX` for an integer): one source of truth for the check and
    /// for `ros2 param describe`. `None` for a parameter without a closed interval.
    pub fn allowed_range(&self, name: &str) -> Option<(f64, f64)> {
        let tree = serde_yaml::to_value(self).ok()?;
        let current = crate::config::flatten(&tree).into_iter().find(|(n, _)| n == name)?.1;
        let probe = match current {
            serde_yaml::Value::Number(n) if n.is_f64() => serde_yaml::Value::from(f64::NAN),
            serde_yaml::Value::Number(_) => serde_yaml::Value::from(i64::MAX),
            _ => return None,
        };
        let error = crate::config::with_parameter(self, name, probe).ok()?.validate().err()?;
        let ConfigError::Invalid { parameter, allowed, .. } = error else { return None };
        if parameter != name {
            return None;
        }
        let inside = allowed.rsplit_once('[')?.1.strip_suffix(']')?;
        let (min, max) = inside.split_once(", ")?;
        Some((min.trim().parse().ok()?, max.trim().parse().ok()?))
    }

    /// The first parameter that differs between `self` and `other` and cannot change
    /// at run time ([`is_runtime_parameter`]).
    pub fn first_start_only_change(&self, other: &Self) -> Option<String> {
        let flat = |c: &Self| crate::config::flatten(&serde_yaml::to_value(c).expect("a config serialises"));
        let (a, b) = (flat(self), flat(other));
        a.iter().zip(&b).find(|(x, y)| x != y && !is_runtime_parameter(&x.0)).map(|(x, _)| x.0.clone())
    }

    /// Checks every parameter, each section's and the rules across sections: the one
    /// validation run at start-up by the node and the replayer. Pure (no I/O).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first bad parameter with its full dotted name.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.localizer.validate().map_err(|e| e.prefixed("localizer"))?;
        self.planner.validate().map_err(|e| e.prefixed("planner"))?;
        check_positive("goal.goal_tolerance_m", self.goal.goal_tolerance_m)?;
        check_range("goal.replan_period_s", self.goal.replan_period_s, 0.0, 3600.0)?;
        check_range("publish.diagnostics_period_s", self.publish.diagnostics_period_s, 0.01, 3600.0)?;
        let beliefs = self.publish.beliefs_period_s;
        if beliefs != 0.0 {
            check_range("publish.beliefs_period_s", beliefs, 0.01, 3600.0)?;
        }
        check_integer("inputs.depth", self.inputs.depth, 1, 10_000)?;
        self.check_combinations()
    }

    /// Rules across sections.
    fn check_combinations(&self) -> Result<(), ConfigError> {
        // A target that can never have a belief would leave the planner idle for good.
        let target = &self.goal.target_landmark;
        let loc = &self.localizer;
        if self.goal.enabled
            && !target.is_empty()
            && loc.unknown_landmarks == UnknownLandmarkPolicy::Reject
            && !loc.priors.ids.contains(target)
        {
            return Err(ConfigError::invalid(
                "goal.target_landmark",
                target,
                "\"\" or one of localizer.priors.ids when localizer.unknown_landmarks = reject",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_errors_carry_the_full_name() {
        LandmarkFlowNodeConfig::default().validate().unwrap();
        let mut c = LandmarkFlowNodeConfig::default();
        c.localizer.max_range_m = 0.0;
        assert!(c.validate().unwrap_err().to_string().contains("`localizer.max_range_m`"));
        let mut c = LandmarkFlowNodeConfig::default();
        c.localizer.estimator.flow.samples = 0;
        assert!(c.validate().unwrap_err().to_string().contains("`localizer.estimator.flow.samples`"));
        let mut c = LandmarkFlowNodeConfig::default();
        c.planner.max_step_m = -1.0;
        assert!(c.validate().unwrap_err().to_string().contains("`planner.max_step_m`"));
        let mut c = LandmarkFlowNodeConfig::default();
        c.inputs.depth = 0;
        assert!(c.validate().unwrap_err().to_string().contains("`inputs.depth`"));
        // A plan's work bound: 41 x 41 candidates x 65 536 samples.
        let mut c = LandmarkFlowNodeConfig::default();
        c.planner.criterion.belief_samples = 65_536;
        assert!(c.validate().unwrap_err().to_string().contains("`planner.criterion.belief_samples`"));
        let mut c = LandmarkFlowNodeConfig::default();
        c.goal.goal_tolerance_m = f64::NAN;
        assert!(c.validate().unwrap_err().to_string().contains("`goal.goal_tolerance_m`"));
    }

    #[test]
    fn the_format_of_a_rejection_is_stable() {
        let mut c = LandmarkFlowNodeConfig::default();
        c.localizer.max_range_m = 0.0;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "parameter `localizer.max_range_m` = 0.0 is invalid: must be finite and in [0.001, 1000000]"
        );
    }

    /// Rules across sections, each naming the parameter it rejects and the other one.
    #[test]
    fn a_target_that_can_never_be_tracked_is_refused() {
        let mut c = LandmarkFlowNodeConfig::default();
        c.localizer.unknown_landmarks = UnknownLandmarkPolicy::Reject;
        c.goal.target_landmark = "beacon".into();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("`goal.target_landmark`") && e.contains("localizer.unknown_landmarks = reject"), "{e}");
        c.localizer.priors.ids = vec!["beacon".into()];
        c.localizer.priors.means_m = vec![0.0, 0.0];
        c.localizer.priors.covs_m2 = vec![1.0, 0.0, 0.0, 1.0];
        c.validate().unwrap();
        c.localizer.priors = Default::default();
        c.localizer.unknown_landmarks = UnknownLandmarkPolicy::Initialise;
        c.validate().unwrap();
        c.localizer.unknown_landmarks = UnknownLandmarkPolicy::Reject;
        c.goal.enabled = false;
        c.validate().unwrap();
    }

    /// Regression: `ukf` with calibration passed validation and then panicked on the
    /// first range; the UKF now handles the 4-D calibrated state, so it is valid.
    #[test]
    fn every_method_with_calibration_is_valid() {
        use crate::estimator::Method;
        for method in [Method::Plain, Method::Natural, Method::Mixture, Method::Ekf, Method::Ukf, Method::Particle] {
            let mut c = LandmarkFlowNodeConfig::default();
            c.localizer.estimator.method = method;
            c.localizer.calibration.enabled = true;
            c.validate().unwrap();
        }
    }
}
