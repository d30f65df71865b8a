//! Every shipped `config/*.yaml` parses into its node's config struct (unknown keys
//! are errors, so a file's keys and the struct's fields cannot drift apart) and passes
//! validation; the per-node reference files spell out every key.

use landmark_flow::config::{flatten, node_parameters_from_yaml};
use landmark_flow::node_config::LandmarkFlowNodeConfig;
use landmark_flow::sim_robot::SimRobotConfig;
use landmark_flow::sim_sensor::SimRangeSensorConfig;
use serde_yaml::Value;

fn read(name: &str) -> String {
    let path = format!("{}/config/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn names(v: &[(String, Value)]) -> Vec<String> {
    let mut n: Vec<String> = v.iter().map(|(k, _)| k.clone()).collect();
    n.sort();
    n
}

/// The file names every key of the struct, except keys whose default is an empty
/// list (ROS parameter files cannot hold an empty list; the file documents them in a
/// comment instead).
fn assert_every_key_spelled_out<T: serde::Serialize>(file: &str, node: &str, config: &T) {
    let doc: Value = serde_yaml::from_str(&read(file)).unwrap();
    let in_file = names(&flatten(&doc[node]["ros__parameters"]));
    let in_struct: Vec<(String, Value)> = flatten(&serde_yaml::to_value(config).unwrap())
        .into_iter()
        .filter(|(_, v)| !matches!(v, Value::Sequence(s) if s.is_empty()))
        .collect();
    assert_eq!(in_file, names(&in_struct), "{file}: keys differ from the struct's");
}

#[test]
fn sim_range_sensor_yaml_is_valid_and_complete() {
    let c: SimRangeSensorConfig =
        node_parameters_from_yaml(&read("sim_range_sensor.yaml"), "sim_range_sensor").unwrap();
    c.validate().unwrap();
    assert_eq!(c.landmarks.ids, ["beacon_a"]);
    assert_every_key_spelled_out("sim_range_sensor.yaml", "sim_range_sensor", &c);
}

#[test]
fn landmark_flow_node_yaml_is_valid_complete_and_the_defaults() {
    let c: LandmarkFlowNodeConfig =
        node_parameters_from_yaml(&read("landmark_flow_node.yaml"), "landmark_flow_node").unwrap();
    c.validate().unwrap();
    assert_eq!(c, LandmarkFlowNodeConfig::default(), "the file documents the defaults");
    assert_every_key_spelled_out("landmark_flow_node.yaml", "landmark_flow_node", &c);
}

/// The three demo nodes' parameters from a config file, each valid.
fn demo_nodes(file: &str) -> (SimRobotConfig, SimRangeSensorConfig, LandmarkFlowNodeConfig) {
    let yaml = read(file);
    let robot: SimRobotConfig = node_parameters_from_yaml(&yaml, "sim_robot").unwrap();
    robot.validate().unwrap();
    let sensor: SimRangeSensorConfig = node_parameters_from_yaml(&yaml, "sim_range_sensor").unwrap();
    sensor.validate().unwrap();
    let node: LandmarkFlowNodeConfig = node_parameters_from_yaml(&yaml, "landmark_flow_node").unwrap();
    node.validate().unwrap();
    (robot, sensor, node)
}

#[test]
fn demo_yaml_configures_all_three_nodes() {
    let (robot, sensor, node) = demo_nodes("demo.yaml");
    // The filter is told the sensor's frame and noise, and plans for the simulated landmark.
    assert_eq!(node.localizer.sensor_frame_id, sensor.frame_id);
    assert_eq!(node.localizer.default_noise_std_m, sensor.noise_std_m);
    assert_eq!(node.localizer.priors.ids, sensor.landmarks.ids);
    assert_eq!(node.goal.target_landmark, sensor.landmarks.ids[0]);
    assert_eq!(node.localizer.odom_frame_id, robot.odom_frame_id);
}

#[test]
fn unknown_key_is_rejected_with_its_name() {
    let yaml = "sim_range_sensor:\n  ros__parameters:\n    noise_sdt_m: 1.0\n";
    let err = node_parameters_from_yaml::<SimRangeSensorConfig>(yaml, "sim_range_sensor")
        .unwrap_err()
        .to_string();
    assert!(err.contains("noise_sdt_m"), "{err}");
}

/// serde's refusals name the parameter by its path (they used to say only "unknown
/// variant `kalmann`" or "invalid value: integer -1, expected u32").
#[test]
fn type_and_variant_errors_name_the_parameter() {
    for (yaml, parameter) in [
        ("localizer:\n  estimator:\n    method: kalmann\n", "localizer.estimator.method"),
        ("inputs:\n  depth: many\n", "inputs.depth"),
        ("localizer:\n  odometry: wobbly\n", "localizer.odometry"),
        ("goal:\n  enabled: maybe\n", "goal.enabled"),
    ] {
        let doc = format!("landmark_flow_node:\n  ros__parameters:\n{}", yaml.lines().map(|l| format!("    {l}\n")).collect::<String>());
        let err = node_parameters_from_yaml::<LandmarkFlowNodeConfig>(&doc, "landmark_flow_node").unwrap_err().to_string();
        assert!(err.contains(parameter), "{parameter}: {err}");
    }
}

#[test]
fn demo_drift_yaml_is_the_demo_with_drifting_odometry() {
    use landmark_flow::localizer::OdometryMode;
    let (robot, sensor, node) = demo_nodes("demo_drift.yaml");
    assert_eq!(node.localizer.odometry, OdometryMode::Drifting);
    assert_eq!(node.localizer.map_frame_id, robot.map_frame_id, "the robot follows goals in the map frame");
    assert_eq!(node.localizer.odom_frame_id, robot.odom_frame_id);
    assert!(robot.gyro_bias_rad_per_s != 0.0 && robot.wheel_scale_error != 0.0);
    // The true bias lies within one prior standard deviation of the node's bias.
    assert!(robot.gyro_bias_rad_per_s.abs() <= node.localizer.odometry_error.gyro_bias_std_rad_per_s);
    // Same scenario as demo.yaml: only the drift keys differ, and two surveyed anchors
    // are added (the first landmark and prior stay demo.yaml's).
    assert_eq!(sensor.landmarks.ids[0], "beacon_a");
    assert_eq!(node.localizer.priors.ids[0], "beacon_a");
    assert_eq!(node.localizer.priors.means_m[..2], [1.0, 1.0]);
    let drift_keys = [
        "sim_range_sensor.ros__parameters.landmarks.",
        "landmark_flow_node.ros__parameters.localizer.priors.",
        "sim_robot.ros__parameters.gyro_bias_rad_per_s",
        "sim_robot.ros__parameters.wheel_scale_error",
        "landmark_flow_node.ros__parameters.localizer.odometry",
        "landmark_flow_node.ros__parameters.localizer.map_frame_id",
        "landmark_flow_node.ros__parameters.localizer.odometry_error.",
    ];
    let without_drift = |file: &str| -> Vec<(String, Value)> {
        flatten(&serde_yaml::from_str(&read(file)).unwrap())
            .into_iter()
            .filter(|(k, _)| !drift_keys.iter().any(|d| k == d || (d.ends_with('.') && k.starts_with(d))))
            .collect()
    };
    assert_eq!(without_drift("demo_drift.yaml"), without_drift("demo.yaml"));
}

/// config/demo_3d.yaml is the demo with a ceiling anchor: every node's parameters are
/// valid, the node estimates 3-D with the sensor mount the simulator uses, the true
/// anchor is above the sensor and within 2 σ of its height prior, and only the 3-D keys
/// differ from demo.yaml.
#[test]
fn demo_3d_yaml_is_the_demo_with_a_ceiling_anchor() {
    let (_, sensor, node) = demo_nodes("demo_3d.yaml");
    assert_eq!(node.localizer.dimension, 3);
    assert_eq!(node.localizer.sensor_offset_m, sensor.sensor_offset_m);
    let (z, prior_z, prior_sd) = (sensor.landmarks.positions_m[2], node.localizer.priors.height_means_m[0], node.localizer.priors.height_stds_m[0]);
    assert!(z > sensor.sensor_offset_m[2] && (z - prior_z).abs() <= 2.0 * prior_sd);
    let keys_3d = [
        "sim_range_sensor.ros__parameters.sensor_offset_m",
        "sim_range_sensor.ros__parameters.landmarks.positions_m",
        "landmark_flow_node.ros__parameters.localizer.dimension",
        "landmark_flow_node.ros__parameters.localizer.sensor_offset_m",
        "landmark_flow_node.ros__parameters.localizer.priors.height_means_m",
        "landmark_flow_node.ros__parameters.localizer.priors.height_stds_m",
    ];
    let without_3d = |file: &str| -> Vec<(String, Value)> {
        flatten(&serde_yaml::from_str(&read(file)).unwrap()).into_iter().filter(|(k, _)| !keys_3d.contains(&k.as_str())).collect()
    };
    assert_eq!(without_3d("demo_3d.yaml"), without_3d("demo.yaml"));
}

/// `ros2 param describe` shows each parameter's description from the documented
/// parameters file: every parameter of the node (the flattened default config) has one.
#[test]
fn every_node_parameter_has_a_description() {
    let descriptions = landmark_flow::config::parameter_descriptions(&read("landmark_flow_node.yaml"));
    let tree = serde_yaml::to_value(LandmarkFlowNodeConfig::default()).unwrap();
    let missing: Vec<String> =
        landmark_flow::config::flatten(&tree).into_iter().map(|(n, _)| n).filter(|n| !descriptions.contains_key(n)).collect();
    assert!(missing.is_empty(), "parameters without a description in landmark_flow_node.yaml: {missing:?}");
    assert_eq!(descriptions["localizer.default_noise_std_m"], "range sigma when a measurement's variance is 0, m (default 0.5)");
    assert_eq!(descriptions["localizer.priors.ids"], "landmark ids");
}

/// `ros2 param describe` shows the interval `validate()` enforces (one source): closed
/// intervals of floats and integers as validate states them, none for open bounds or
/// non-numbers.
#[test]
fn parameter_ranges_are_the_intervals_validate_enforces() {
    let c = LandmarkFlowNodeConfig::default();
    assert_eq!(c.allowed_range("localizer.max_range_m"), Some((0.001, 1e6)));
    assert_eq!(c.allowed_range("inputs.depth"), Some((1.0, 10000.0)));
    assert_eq!(c.allowed_range("goal.replan_period_s"), Some((0.0, 3600.0)));
    assert_eq!(c.allowed_range("goal.goal_tolerance_m"), None, "finite and > 0: no closed interval");
    assert_eq!(c.allowed_range("goal.enabled"), None);
    assert_eq!(c.allowed_range("no.such"), None);
    // The interval is the one validate() enforces: its ends pass, beyond them fails.
    for name in ["localizer.max_range_m", "goal.replan_period_s"] {
        let (lo, hi) = c.allowed_range(name).unwrap();
        for (v, ok) in [(lo, true), (hi, true), (hi * 1.5 + 1.0, false)] {
            assert_eq!(c.with_parameter(name, serde_yaml::Value::from(v)).is_ok(), ok, "{name} = {v}");
        }
    }
}
