//! The thin ROS 2 layer shared by the executables: parameters in, messages converted
//! to and from the plain values of [`crate::msg`] ([`messages`]), time, throttled
//! logging, the spin thread. No estimation logic lives here.

pub mod messages;
pub mod parameters;

use crate::config::{flatten, from_tree, tree_from_flat, ConfigError};
use crate::msg::Stamp;
use nalgebra::Isometry3;
use r2r::{ParameterValue, QosProfile};
use serde::{de::DeserializeOwned, Serialize};
use serde_yaml::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Errors of the ROS layer (start-up and conversion).
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("ROS 2: {0}")]
    Ros(#[from] r2r::Error),
    #[error("{0}")]
    Other(String),
}

/// Reads the node's parameters (from `--params-file` and `-p`, already loaded by
/// rcl into `node.params`) into the config struct `T`, validates nothing (callers
/// call their own `validate()`), and writes the effective values, defaults included,
/// back so that `ros2 param list/get` shows every parameter.
///
/// # Errors
/// [`ConfigError::Parse`] for an unknown parameter or one of the wrong type.
pub fn load_parameters<T: DeserializeOwned + Serialize>(node: &r2r::Node) -> Result<T, ConfigError> {
    let flat: Vec<(String, Value)> = {
        let params = node.params.lock().expect("parameter lock poisoned");
        params
            .iter()
            .filter_map(|(name, p)| yaml_of(&p.value).map(|v| (name.clone(), v)))
            .collect()
    };
    let config: T = from_tree(tree_from_flat(flat)?)?;
    let effective = serde_yaml::to_value(&config).map_err(|e| ConfigError::Parse(e.to_string()))?;
    let mut params = node.params.lock().expect("parameter lock poisoned");
    for (name, value) in flatten(&effective) {
        let v = match &value {
            Value::Sequence(items) if items.is_empty() => Some(empty_array_of(&config, &name)),
            _ => parameter_of(&value),
        };
        if let Some(v) = v {
            params.insert(name, r2r::Parameter::new(v));
        }
    }
    Ok(config)
}

/// The typed empty array of list parameter `name` of `config` (an empty YAML list has
/// no element type): the first element type `T` accepts, asked of `T` itself, so that
/// an empty list of names is a string array (not a bool array) for `ros2 param`.
fn empty_array_of<T: DeserializeOwned + Serialize>(config: &T, name: &str) -> ParameterValue {
    let accepts = |item: Value| crate::config::with_parameter(config, name, Value::Sequence(vec![item])).is_ok();
    if accepts(Value::from("x")) {
        ParameterValue::StringArray(Vec::new())
    } else if accepts(Value::from(true)) {
        ParameterValue::BoolArray(Vec::new())
    } else if accepts(Value::from(0.5)) {
        ParameterValue::DoubleArray(Vec::new())
    } else {
        ParameterValue::IntegerArray(Vec::new())
    }
}

/// A ROS parameter value as YAML (`None` for not set).
pub fn yaml_of(v: &ParameterValue) -> Option<Value> {
    Some(match v {
        ParameterValue::NotSet => return None,
        ParameterValue::Bool(b) => Value::from(*b),
        ParameterValue::Integer(i) => Value::from(*i),
        ParameterValue::Double(d) => Value::from(*d),
        ParameterValue::String(s) => Value::from(s.clone()),
        ParameterValue::BoolArray(a) => Value::Sequence(a.iter().map(|b| Value::from(*b)).collect()),
        ParameterValue::ByteArray(a) => Value::Sequence(a.iter().map(|b| Value::from(*b)).collect()),
        ParameterValue::IntegerArray(a) => {
            Value::Sequence(a.iter().map(|i| Value::from(*i)).collect())
        }
        ParameterValue::DoubleArray(a) => {
            Value::Sequence(a.iter().map(|d| Value::from(*d)).collect())
        }
        ParameterValue::StringArray(a) => {
            Value::Sequence(a.iter().map(|s| Value::from(s.clone())).collect())
        }
    })
}

fn parameter_of(v: &Value) -> Option<ParameterValue> {
    Some(match v {
        Value::Bool(b) => ParameterValue::Bool(*b),
        Value::Number(n) if n.is_i64() => ParameterValue::Integer(n.as_i64()?),
        Value::Number(n) => ParameterValue::Double(n.as_f64()?),
        Value::String(s) => ParameterValue::String(s.clone()),
        Value::Sequence(items) => {
            if items.iter().all(|i| i.is_bool()) {
                ParameterValue::BoolArray(items.iter().filter_map(Value::as_bool).collect())
            } else if !items.is_empty() && items.iter().all(|i| i.is_i64()) {
                ParameterValue::IntegerArray(items.iter().filter_map(Value::as_i64).collect())
            } else if items.iter().all(|i| i.is_number()) {
                ParameterValue::DoubleArray(items.iter().filter_map(Value::as_f64).collect())
            } else if items.iter().all(|i| i.is_string()) {
                ParameterValue::StringArray(
                    items.iter().filter_map(|i| i.as_str().map(String::from)).collect(),
                )
            } else {
                return None;
            }
        }
        _ => return None,
    })
}

/// `builtin_interfaces/Time` → seconds ([`Stamp::secs`]).
pub fn stamp_to_secs(t: &r2r::builtin_interfaces::msg::Time) -> f64 {
    messages::stamp_in(t).secs()
}

/// Seconds → `builtin_interfaces/Time`, rounded to the nanosecond ([`Stamp::from_secs`]).
pub fn secs_to_stamp(s: f64) -> r2r::builtin_interfaces::msg::Time {
    messages::stamp_out(Stamp::from_secs(s))
}

/// Current time of the node's ROS clock (sim time under `use_sim_time`), seconds.
pub fn ros_now_secs(clock: &std::sync::Mutex<r2r::Clock>) -> f64 {
    clock
        .lock()
        .ok()
        .and_then(|mut c| c.get_now().ok())
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Base pose in the odometry frame from `nav_msgs/Odometry`
/// ([`crate::msg::OdometryMsg::base_pose`]: normalised, not validated).
pub fn odometry_pose(odom: &r2r::nav_msgs::msg::Odometry) -> Isometry3<f64> {
    messages::odometry_in(odom).base_pose()
}

/// QoS for sensor inputs: best effort, keep last (ROS 2's sensor-data profile).
pub fn sensor_qos() -> QosProfile {
    QosProfile::sensor_data()
}

/// QoS for our outputs: reliable, keep last 10, so both reliable and best-effort
/// subscribers match.
pub fn output_qos() -> QosProfile {
    QosProfile::default()
}

/// Logs a given kind of message at most once per `period`.
#[derive(Debug)]
pub struct Throttle {
    period: Duration,
    last: HashMap<String, Instant>,
}

impl Throttle {
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            last: HashMap::new(),
        }
    }

    /// True when a message of this `key` should be logged now.
    pub fn ready(&mut self, key: &str) -> bool {
        let now = Instant::now();
        match self.last.get(key) {
            Some(t) if now.duration_since(*t) < self.period => false,
            _ => {
                self.last.insert(key.to_string(), now);
                true
            }
        }
    }
}

/// Resolves when the process is asked to stop: SIGINT (Ctrl-C, `ros2 launch`'s first
/// escalation) or SIGTERM. Listening replaces the default "die on the signal", so the
/// caller can shut down cleanly (exit 0, node destroyed, gone from the graph at once).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The thread that spins a node ([`spawn_spin_thread`]); dropping it stops the thread
/// and destroys the node.
#[derive(Debug)]
pub struct SpinThread {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Drop for SpinThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Runs `node.spin_once` on its own thread until the returned [`SpinThread`] is
/// dropped; the node's subscriptions, timers and services are streams and futures
/// served by the tokio tasks. (For nodes whose inputs are light; `landmark_flow_node`
/// spins in its own loop, see there.)
pub fn spawn_spin_thread(mut node: r2r::Node) -> SpinThread {
    let stop = Arc::new(AtomicBool::new(false));
    let stop_thread = stop.clone();
    let handle = std::thread::Builder::new()
        .name("ros_spin".into())
        .spawn(move || {
            while !stop_thread.load(Ordering::Relaxed) {
                node.spin_once(Duration::from_millis(5));
            }
        })
        .expect("cannot start the ROS spin thread");
    SpinThread { stop, handle: Some(handle) }
}

/// `main` of a tokio-based node: runs `run` on a current-thread runtime until it ends
/// or SIGINT/SIGTERM arrives ([`shutdown_signal`]: then `run` is dropped, which
/// destroys the node, and the process exits 0); an error (start-up or later) is printed
/// naming the node and exits with status 2.
pub fn run_async_node<F>(node_name: &str, run: impl FnOnce() -> F)
where
    F: std::future::Future<Output = Result<(), NodeError>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| exit_with_error(node_name, &e));
    let result = runtime.block_on(async {
        tokio::select! {
            r = run() => r,
            _ = shutdown_signal() => Ok(()),
        }
    });
    if let Err(e) = result {
        exit_with_error(node_name, &e);
    }
}

/// Largest parameters file accepted, bytes (a node's parameters are a few kB; a huge
/// file would stall start-up in rcl's parser, deaf to SIGINT).
pub const MAX_PARAMS_FILE_BYTES: u64 = 1 << 20;

/// The `--params-file` arguments of this process's `--ros-args`.
pub fn params_file_arguments(args: &[String]) -> Vec<String> {
    let mut files = Vec::new();
    let mut ros_args = false;
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--ros-args" => ros_args = true,
            "--" => ros_args = false,
            "--params-file" if ros_args => {
                if let Some(f) = it.next() {
                    files.push(f.clone());
                }
            }
            _ => {}
        }
    }
    files
}

/// Checks a parameters file before rcl parses it (rcl's parse errors end inside r2r
/// with a panic): a regular file of at most [`MAX_PARAMS_FILE_BYTES`], UTF-8, YAML
/// whose document is a mapping.
///
/// # Errors
/// What is wrong, naming the file (and the line and column for YAML errors).
pub fn check_params_file(path: &str) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("parameters file {path}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("parameters file {path}: not a regular file"));
    }
    if meta.len() > MAX_PARAMS_FILE_BYTES {
        return Err(format!("parameters file {path}: {} bytes, more than the {MAX_PARAMS_FILE_BYTES} accepted", meta.len()));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("parameters file {path}: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|e| format!("parameters file {path}: not UTF-8 text ({e})"))?;
    match serde_yaml::from_str::<Value>(&text) {
        Ok(Value::Mapping(_)) => Ok(()),
        Ok(_) => Err(format!("parameters file {path}: not a YAML mapping of node names to ros__parameters")),
        Err(e) => Err(format!("parameters file {path}: invalid YAML: {e}")),
    }
}

/// Exits 2 naming the file when a `--params-file` of this process is unreadable or
/// malformed ([`check_params_file`]); call before `r2r::Context::create`.
pub fn exit_on_bad_params_files(node_name: &str) {
    let args: Vec<String> = std::env::args().collect();
    for file in params_file_arguments(&args) {
        if let Err(e) = check_params_file(&file) {
            exit_with_error(node_name, &e);
        }
    }
}

/// Prints a start-up error the way users read it (stderr, naming the node) and exits
/// with status 2.
pub fn exit_with_error(node_name: &str, err: &dyn std::fmt::Display) -> ! {
    eprintln!("[{node_name}] error: {err}");
    std::process::exit(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_files_are_found_after_ros_args_only() {
        let args: Vec<String> = ["node", "--params-file", "x", "--ros-args", "-p", "a:=1", "--params-file", "f.yaml", "--", "--params-file", "y"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(params_file_arguments(&args), vec!["f.yaml".to_string()]);
    }

    #[test]
    fn malformed_params_files_are_named_errors() {
        let dir = std::env::temp_dir().join(format!("lf_params_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases: [(&str, &[u8], &str); 5] = [
            ("truncated.yaml", b"a:\n  ros__parameters:\n    x: [1, 2\n", "invalid YAML"),
            ("binary.yaml", &[0xff, 0xfe, 0x00, 0x01], "not UTF-8"),
            ("tabs.yaml", b"a:\n\tros__parameters:\n\t\tx: 1\n", "invalid YAML"),
            ("scalar.yaml", b"42\n", "not a YAML mapping"),
            ("ok.yaml", b"a:\n  ros__parameters:\n    x: 1\n", ""),
        ];
        for (name, bytes, want) in cases {
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            let got = check_params_file(path.to_str().unwrap());
            if want.is_empty() {
                assert!(got.is_ok(), "{name}: {got:?}");
            } else {
                let e = got.unwrap_err();
                assert!(e.contains(want) && e.contains(name), "{name}: {e}");
            }
        }
        assert!(check_params_file(dir.join("missing.yaml").to_str().unwrap()).unwrap_err().contains("missing.yaml"));
        assert!(check_params_file(dir.to_str().unwrap()).unwrap_err().contains("not a regular file"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn an_empty_list_gets_its_element_type_from_the_config() {
        #[derive(serde::Serialize, serde::Deserialize, Default)]
        #[serde(deny_unknown_fields, default)]
        struct Lists {
            names: Vec<String>,
            values: Vec<f64>,
            flags: Vec<bool>,
        }
        let c = Lists::default();
        assert_eq!(empty_array_of(&c, "names"), ParameterValue::StringArray(vec![]));
        assert_eq!(empty_array_of(&c, "values"), ParameterValue::DoubleArray(vec![]));
        assert_eq!(empty_array_of(&c, "flags"), ParameterValue::BoolArray(vec![]));
    }

    #[test]
    fn parameter_values_round_trip_through_yaml() {
        for v in [
            ParameterValue::Bool(true),
            ParameterValue::Integer(-3),
            ParameterValue::Double(0.25),
            ParameterValue::String("a".into()),
            ParameterValue::DoubleArray(vec![1.0, 2.5]),
            ParameterValue::StringArray(vec!["x".into(), "y".into()]),
            ParameterValue::IntegerArray(vec![1, 2]),
        ] {
            assert_eq!(parameter_of(&yaml_of(&v).unwrap()).unwrap(), v);
        }
    }
}
