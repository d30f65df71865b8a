//! Every shipped `config/*.yaml` parses into its node's config struct (unknown keys
//! are errors, so the file's keys and the struct's fields cannot drift apart) and
//! passes validation.

use landmark_flow::config::node_parameters_from_yaml;
use landmark_flow::sim_sensor::SimRangeSensorConfig;

fn read(name: &str) -> String {
    let path = format!("{}/config/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn sim_range_sensor_yaml_is_valid() {
    let c: SimRangeSensorConfig =
        node_parameters_from_yaml(&read("sim_range_sensor.yaml"), "sim_range_sensor").unwrap();
    c.validate().unwrap();
    assert_eq!(c.landmarks.ids, ["beacon_a"]);
    // Every key is spelled out in the file (no silent defaults) ...
    let doc: serde_yaml::Value = serde_yaml::from_str(&read("sim_range_sensor.yaml")).unwrap();
    let in_file = landmark_flow::config::flatten(&doc["sim_range_sensor"]["ros__parameters"]);
    let in_struct = landmark_flow::config::flatten(&serde_yaml::to_value(&c).unwrap());
    let names = |v: &[(String, serde_yaml::Value)]| {
        let mut n: Vec<String> = v.iter().map(|(k, _)| k.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(names(&in_file), names(&in_struct));
}

#[test]
fn unknown_key_is_rejected_with_its_name() {
    let yaml = "sim_range_sensor:\n  ros__parameters:\n    noise_sdt_m: 1.0\n";
    let err = node_parameters_from_yaml::<SimRangeSensorConfig>(yaml, "sim_range_sensor")
        .unwrap_err()
        .to_string();
    assert!(err.contains("noise_sdt_m"), "{err}");
}
