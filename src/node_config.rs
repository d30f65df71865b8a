//! Parameters of `landmark_flow_node` (`config/landmark_flow_node.yaml`), as plain data
//! with one `validate()`, so every rule is tested without ROS. The bag replayer reads
//! the same section of the same file, so live and replay run with one configuration.

use crate::config::{check_positive, check_range, ConfigError};
use crate::localizer::LocalizerConfig;
use crate::planner::{PlannerConfig, PlannerError};
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
}

impl Default for PublishConfig {
    fn default() -> Self {
        Self { markers: true, heatmap: true, diagnostics_period_s: 1.0 }
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

fn planner_error(e: PlannerError) -> ConfigError {
    match e {
        PlannerError::InvalidConfig { parameter, value, allowed } => ConfigError::Invalid {
            parameter: format!("planner.{parameter}"),
            value,
            allowed: allowed.to_string(),
        },
        other => ConfigError::Parse(other.to_string()),
    }
}

fn prefixed(e: ConfigError, prefix: &str) -> ConfigError {
    match e {
        ConfigError::Invalid { parameter, value, allowed } => ConfigError::Invalid {
            parameter: format!("{prefix}.{parameter}"),
            value,
            allowed,
        },
        other => other,
    }
}

impl LandmarkFlowNodeConfig {
    /// Checks every parameter.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first bad parameter with its full dotted name.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.localizer.validate().map_err(|e| prefixed(e, "localizer"))?;
        self.planner.validate().map_err(planner_error)?;
        check_positive("goal.goal_tolerance_m", self.goal.goal_tolerance_m)?;
        check_range("goal.replan_period_s", self.goal.replan_period_s, 0.0, 3600.0)?;
        check_range("publish.diagnostics_period_s", self.publish.diagnostics_period_s, 0.01, 3600.0)?;
        if !(1..=10_000).contains(&self.inputs.depth) {
            return Err(ConfigError::invalid("inputs.depth", self.inputs.depth, "in [1, 10000]"));
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
        let mut c = LandmarkFlowNodeConfig::default();
        c.goal.goal_tolerance_m = f64::NAN;
        assert!(c.validate().unwrap_err().to_string().contains("`goal.goal_tolerance_m`"));
    }
}
