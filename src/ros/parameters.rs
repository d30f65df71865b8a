//! The parameter services of every executable here (`rcl_interfaces`: get, set,
//! set atomically, list, describe, get types: what `ros2 param` calls), answered from
//! the node's parameters with full descriptors, written here because r2r's handler
//! answers "successful" to any set and describes only a type.
//!
//! - **describe**: the type, the description (unit and default, from the documented
//!   parameters file, [`crate::config::parameter_descriptions`]), `read_only` for
//!   every parameter the node cannot change while it runs, and the closed interval the
//!   node's `validate()` enforces ([`ParameterPolicy::range`]).
//! - **set** (and set atomically, all or none), as rclcpp answers it: an unknown name
//!   → "no such parameter"; another type → "wrong type"; the current value → accepted;
//!   a read-only parameter → refused, "restart the node"; a run-time parameter → the
//!   node's [`ParameterPolicy`] checks it (the same `validate()` as at start) and, if
//!   accepted, the value is stored and sent to the node's loop on the returned stream.
//! - `use_sim_time` is declared (false unless given) and read-only; when true the
//!   node's clock follows `/clock`.

use super::NodeError;
use r2r::rcl_interfaces::msg::{
    FloatingPointRange, IntegerRange, ListParametersResult, Parameter as ParameterMsg, ParameterDescriptor, ParameterType, ParameterValue as ParameterValueMsg,
    SetParametersResult,
};
use r2r::rcl_interfaces::srv::{
    DescribeParameters, GetParameterTypes, GetParameters, ListParameters, SetParameters, SetParametersAtomically,
};
use r2r::{ParameterValue, QosProfile};
use futures::{future, Stream, StreamExt};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What a node lets `ros2 param set` change while it runs, and how it checks a change.
pub trait ParameterPolicy: Send + 'static {
    /// Whether parameter `name` may change while the node runs.
    fn is_runtime(&self, name: &str) -> bool;
    /// Checks run-time changes (known names, types as declared) together and makes
    /// them the node's values, or says why not (nothing changes then).
    fn accept(&mut self, changes: &[(String, ParameterValue)]) -> Result<(), String>;
    /// The closed interval a numeric parameter must lie in, for its descriptor.
    fn range(&self, _name: &str) -> Option<(f64, f64)> {
        None
    }
}

/// A node whose parameters are all read at start.
pub struct StartOnly;

impl ParameterPolicy for StartOnly {
    fn is_runtime(&self, _name: &str) -> bool {
        false
    }
    fn accept(&mut self, _changes: &[(String, ParameterValue)]) -> Result<(), String> {
        Err("parameters are read at start".into())
    }
}

/// Description of `use_sim_time` (declared by every node).
const USE_SIM_TIME: &str = "take time from /clock (bag replay with --clock, simulators); read at start (default false)";

struct Server {
    params: Arc<Mutex<r2r::indexmap::IndexMap<String, r2r::Parameter>>>,
    descriptions: BTreeMap<String, String>,
    policy: Box<dyn ParameterPolicy>,
    changes: futures::channel::mpsc::Sender<(String, ParameterValue)>,
}

/// The `rcl_interfaces/msg/ParameterType` code of a value.
fn type_code(v: &ParameterValue) -> u8 {
    match v {
        ParameterValue::NotSet => ParameterType::PARAMETER_NOT_SET as u8,
        ParameterValue::Bool(_) => ParameterType::PARAMETER_BOOL as u8,
        ParameterValue::Integer(_) => ParameterType::PARAMETER_INTEGER as u8,
        ParameterValue::Double(_) => ParameterType::PARAMETER_DOUBLE as u8,
        ParameterValue::String(_) => ParameterType::PARAMETER_STRING as u8,
        ParameterValue::ByteArray(_) => ParameterType::PARAMETER_BYTE_ARRAY as u8,
        ParameterValue::BoolArray(_) => ParameterType::PARAMETER_BOOL_ARRAY as u8,
        ParameterValue::IntegerArray(_) => ParameterType::PARAMETER_INTEGER_ARRAY as u8,
        ParameterValue::DoubleArray(_) => ParameterType::PARAMETER_DOUBLE_ARRAY as u8,
        ParameterValue::StringArray(_) => ParameterType::PARAMETER_STRING_ARRAY as u8,
    }
}

/// The name ROS tools print for a type code.
fn type_name(code: u8) -> &'static str {
    ["not set", "bool", "integer", "double", "string", "byte array", "bool array", "integer array", "double array", "string array"]
        .get(code as usize)
        .copied()
        .unwrap_or("unknown")
}

fn value_of(msg: &ParameterValueMsg) -> ParameterValue {
    let t = msg.type_;
    if t == ParameterType::PARAMETER_BOOL as u8 {
        ParameterValue::Bool(msg.bool_value)
    } else if t == ParameterType::PARAMETER_INTEGER as u8 {
        ParameterValue::Integer(msg.integer_value)
    } else if t == ParameterType::PARAMETER_DOUBLE as u8 {
        ParameterValue::Double(msg.double_value)
    } else if t == ParameterType::PARAMETER_STRING as u8 {
        ParameterValue::String(msg.string_value.clone())
    } else if t == ParameterType::PARAMETER_BYTE_ARRAY as u8 {
        ParameterValue::ByteArray(msg.byte_array_value.clone())
    } else if t == ParameterType::PARAMETER_BOOL_ARRAY as u8 {
        ParameterValue::BoolArray(msg.bool_array_value.clone())
    } else if t == ParameterType::PARAMETER_INTEGER_ARRAY as u8 {
        ParameterValue::IntegerArray(msg.integer_array_value.clone())
    } else if t == ParameterType::PARAMETER_DOUBLE_ARRAY as u8 {
        ParameterValue::DoubleArray(msg.double_array_value.clone())
    } else if t == ParameterType::PARAMETER_STRING_ARRAY as u8 {
        ParameterValue::StringArray(msg.string_array_value.clone())
    } else {
        ParameterValue::NotSet
    }
}

fn message_of(v: &ParameterValue) -> ParameterValueMsg {
    let mut m = ParameterValueMsg { type_: type_code(v), ..Default::default() };
    match v {
        ParameterValue::NotSet => {}
        ParameterValue::Bool(b) => m.bool_value = *b,
        ParameterValue::Integer(i) => m.integer_value = *i,
        ParameterValue::Double(d) => m.double_value = *d,
        ParameterValue::String(s) => m.string_value = s.clone(),
        ParameterValue::BoolArray(a) => m.bool_array_value = a.clone(),
        ParameterValue::ByteArray(a) => m.byte_array_value = a.clone(),
        ParameterValue::IntegerArray(a) => m.integer_array_value = a.clone(),
        ParameterValue::DoubleArray(a) => m.double_array_value = a.clone(),
        ParameterValue::StringArray(a) => m.string_array_value = a.clone(),
    }
    m
}

impl Server {
    fn read_only(&self, name: &str) -> bool {
        name == "use_sim_time" || !self.policy.is_runtime(name)
    }

    /// Checks `changes` together: `Ok` with the ones that change a value, or the
    /// index of the first refused one and why.
    fn check(&self, changes: &[(String, ParameterValue)]) -> Result<Vec<(String, ParameterValue)>, (usize, String)> {
        let params = self.params.lock().expect("parameter lock poisoned");
        let mut changed = Vec::new();
        for (i, (name, value)) in changes.iter().enumerate() {
            let Some(current) = params.get(name) else { return Err((i, format!("no such parameter: {name}"))) };
            if type_code(value) != type_code(&current.value) {
                return Err((
                    i,
                    format!(
                        "wrong type: {name} is a {}, got a {}",
                        type_name(type_code(&current.value)),
                        type_name(type_code(value))
                    ),
                ));
            }
            if *value == current.value {
                continue;
            }
            if self.read_only(name) {
                return Err((
                    i,
                    format!("{name} is read-only: it is read at start; restart the node with the new value (--ros-args -p or --params-file)"),
                ));
            }
            changed.push((name.clone(), value.clone()));
        }
        Ok(changed)
    }

    /// Checks and applies `changes` all or none; the reason when refused.
    fn set(&mut self, changes: &[(String, ParameterValue)]) -> Result<(), (usize, String)> {
        let changed = self.check(changes)?;
        if changed.is_empty() {
            return Ok(());
        }
        self.policy.accept(&changed).map_err(|reason| (0, reason))?;
        let mut params = self.params.lock().expect("parameter lock poisoned");
        for (name, value) in changed {
            if let Some(p) = params.get_mut(&name) {
                p.value = value.clone();
            }
            // The loop drains this channel every few milliseconds; a full channel
            // would mean a stalled loop, which the value in `params` still reflects.
            let _ = self.changes.try_send((name, value));
        }
        Ok(())
    }

    fn descriptor(&self, name: &str) -> ParameterDescriptor {
        let params = self.params.lock().expect("parameter lock poisoned");
        let Some(p) = params.get(name) else {
            return ParameterDescriptor { name: name.to_string(), description: "no such parameter".into(), ..Default::default() };
        };
        let description = if name == "use_sim_time" {
            USE_SIM_TIME.to_string()
        } else {
            self.descriptions.get(name).cloned().unwrap_or_default()
        };
        let range = self.policy.range(name);
        let (floating_point_range, integer_range) = match (&p.value, range) {
            (ParameterValue::Double(_), Some((from_value, to_value))) => {
                (vec![FloatingPointRange { from_value, to_value, step: 0.0 }], vec![])
            }
            (ParameterValue::Integer(_), Some((from, to))) => {
                (vec![], vec![IntegerRange { from_value: from as i64, to_value: to as i64, step: 0 }])
            }
            _ => (vec![], vec![]),
        };
        ParameterDescriptor {
            name: name.to_string(),
            type_: type_code(&p.value),
            description,
            read_only: self.read_only(name),
            floating_point_range,
            integer_range,
            ..Default::default()
        }
    }

    /// `rcl_interfaces/srv/ListParameters`: names under `prefixes` (all when empty)
    /// with at most `depth` separators below them (0 = any depth).
    fn list(&self, prefixes: &[String], depth: u64) -> ListParametersResult {
        let params = self.params.lock().expect("parameter lock poisoned");
        let deep_enough = |rest: &str| depth == 0 || (rest.matches('.').count() as u64) < depth;
        let mut result = ListParametersResult::default();
        for name in params.keys() {
            let listed = if prefixes.is_empty() {
                deep_enough(name)
            } else {
                prefixes.iter().any(|p| name == p || name.strip_prefix(&format!("{p}.")).is_some_and(deep_enough))
            };
            if listed {
                result.names.push(name.clone());
                if let Some((prefix, _)) = name.rsplit_once('.') {
                    if !result.prefixes.iter().any(|p| p == prefix) {
                        result.prefixes.push(prefix.to_string());
                    }
                }
            }
        }
        result
    }
}

/// Creates the parameter services of `node` (module doc) with the descriptions of the
/// documented parameters file `documented_yaml`; declares `use_sim_time` and, when it
/// is true, switches the node's clock to `/clock`. Returns the future that serves them
/// (spawn it) and the stream of accepted run-time changes (name, new value).
///
/// # Errors
/// The services cannot be created, or sim time cannot be enabled.
pub fn parameter_services(
    node: &mut r2r::Node,
    documented_yaml: &str,
    policy: impl ParameterPolicy,
) -> Result<(impl std::future::Future<Output = ()> + Send, impl Stream<Item = (String, ParameterValue)>), NodeError> {
    let use_sim_time = {
        let mut params = node.params.lock().expect("parameter lock poisoned");
        let p = params.entry("use_sim_time".to_string()).or_insert_with(|| r2r::Parameter::new(ParameterValue::Bool(false)));
        matches!(p.value, ParameterValue::Bool(true))
    };
    if use_sim_time {
        node.get_time_source().enable_sim_time(node)?;
    }
    let (tx, rx) = futures::channel::mpsc::channel(64);
    let server = Arc::new(Mutex::new(Server {
        params: node.params.clone(),
        descriptions: crate::config::parameter_descriptions(documented_yaml),
        policy: Box::new(policy),
        changes: tx,
    }));
    let qos = QosProfile::services_default;
    let lock = |s: &Arc<Mutex<Server>>| s.lock().expect("parameter server lock poisoned").params.clone();

    let s = server.clone();
    let set = node.create_service::<SetParameters::Service>("~/set_parameters", qos())?.for_each(move |req| {
        let mut server = s.lock().expect("parameter server lock poisoned");
        let results = req
            .message
            .parameters
            .iter()
            .map(|p: &ParameterMsg| match server.set(&[(p.name.clone(), value_of(&p.value))]) {
                Ok(()) => SetParametersResult { successful: true, reason: String::new() },
                Err((_, reason)) => SetParametersResult { successful: false, reason },
            })
            .collect();
        let _ = req.respond(SetParameters::Response { results });
        future::ready(())
    });
    let s = server.clone();
    let set_atomically =
        node.create_service::<SetParametersAtomically::Service>("~/set_parameters_atomically", qos())?.for_each(move |req| {
            let mut server = s.lock().expect("parameter server lock poisoned");
            let changes: Vec<_> = req.message.parameters.iter().map(|p| (p.name.clone(), value_of(&p.value))).collect();
            let result = match server.set(&changes) {
                Ok(()) => SetParametersResult { successful: true, reason: String::new() },
                Err((i, reason)) => SetParametersResult { successful: false, reason: format!("{reason} (nothing was set; parameter {i} of the request)") },
            };
            let _ = req.respond(SetParametersAtomically::Response { result });
            future::ready(())
        });
    let params = lock(&server);
    let get = node.create_service::<GetParameters::Service>("~/get_parameters", qos())?.for_each(move |req| {
        let params = params.lock().expect("parameter lock poisoned");
        let values = req.message.names.iter().map(|n| message_of(&params.get(n).map_or(ParameterValue::NotSet, |p| p.value.clone()))).collect();
        let _ = req.respond(GetParameters::Response { values });
        future::ready(())
    });
    let params = lock(&server);
    let types = node.create_service::<GetParameterTypes::Service>("~/get_parameter_types", qos())?.for_each(move |req| {
        let params = params.lock().expect("parameter lock poisoned");
        let types = req.message.names.iter().map(|n| params.get(n).map_or(ParameterType::PARAMETER_NOT_SET as u8, |p| type_code(&p.value))).collect();
        let _ = req.respond(GetParameterTypes::Response { types });
        future::ready(())
    });
    let s = server.clone();
    let list = node.create_service::<ListParameters::Service>("~/list_parameters", qos())?.for_each(move |req| {
        let result = s.lock().expect("parameter server lock poisoned").list(&req.message.prefixes, req.message.depth);
        let _ = req.respond(ListParameters::Response { result });
        future::ready(())
    });
    let s = server;
    let describe = node.create_service::<DescribeParameters::Service>("~/describe_parameters", qos())?.for_each(move |req| {
        let server = s.lock().expect("parameter server lock poisoned");
        let descriptors = req.message.names.iter().map(|n| server.descriptor(n)).collect();
        let _ = req.respond(DescribeParameters::Response { descriptors });
        future::ready(())
    });
    let serve = async move {
        futures::join!(set, set_atomically, get, types, list, describe);
    };
    Ok((serve, rx))
}
