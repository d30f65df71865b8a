//! Node parameters as plain data: one serde struct per node, with defaults, and one
//! pure `validate()` that names the parameter, the value and the allowed range.
//!
//! ROS 2 parameters are flat, dot-separated names (`landmarks.ids`) with typed values.
//! The ROS layer turns them into a YAML tree ([`tree_from_flat`]) and deserialises
//! that into the node's config struct, exactly as a test does from the shipped
//! `config/*.yaml` ([`node_parameters_from_yaml`]); so a YAML file, `--params-file`
//! and `-p name:=value` all go through the same parsing and validation.

use serde::{de::DeserializeOwned, Serialize};
use serde_yaml::{Mapping, Value};

/// A configuration error, naming the parameter that is wrong: the one error type of
/// every config struct's `validate()` (node, localizer, estimator, planner, simulators).
/// A rule across parameters names the parameter it rejects and, in `allowed`, the
/// other one with its value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A value outside its allowed range.
    #[error("parameter `{parameter}` = {value} is invalid: must be {allowed}")]
    Invalid {
        parameter: String,
        value: String,
        allowed: String,
    },
    /// The parameters could not be read into the config struct (unknown name,
    /// wrong type, malformed YAML).
    #[error("cannot read parameters: {0}")]
    Parse(String),
}

impl ConfigError {
    /// Shorthand for [`ConfigError::Invalid`].
    pub fn invalid(parameter: &str, value: impl std::fmt::Debug, allowed: &str) -> Self {
        ConfigError::Invalid {
            parameter: parameter.to_string(),
            value: format!("{value:?}"),
            allowed: allowed.to_string(),
        }
    }
}

impl ConfigError {
    /// The same error with `section.` in front of the parameter name: a section's
    /// `validate()` names parameters relative to the section.
    pub fn prefixed(self, section: &str) -> Self {
        match self {
            ConfigError::Invalid { parameter, value, allowed } => {
                ConfigError::Invalid { parameter: format!("{section}.{parameter}"), value, allowed }
            }
            other => other,
        }
    }
}

/// Checks that `value` is finite and `ok(value)`; `allowed` says what `ok` accepts
/// (the error reads "must be finite and {allowed}").
///
/// # Errors
/// [`ConfigError::Invalid`] naming `parameter` otherwise.
pub fn check_f64(parameter: &str, value: f64, ok: impl Fn(f64) -> bool, allowed: &str) -> Result<(), ConfigError> {
    if value.is_finite() && ok(value) {
        Ok(())
    } else {
        Err(ConfigError::invalid(parameter, value, &format!("finite and {allowed}")))
    }
}

/// Checks that `value` is finite.
///
/// # Errors
/// [`ConfigError::Invalid`] naming `parameter` otherwise.
pub fn check_finite(parameter: &str, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(ConfigError::invalid(parameter, value, "finite"))
    }
}

/// Checks that the integer `value` is within `[min, max]` (inclusive).
///
/// # Errors
/// [`ConfigError::Invalid`] naming `parameter` otherwise.
pub fn check_integer<T>(parameter: &str, value: T, min: T, max: T) -> Result<(), ConfigError>
where
    T: PartialOrd + std::fmt::Display + std::fmt::Debug,
{
    if value >= min && value <= max {
        Ok(())
    } else {
        Err(ConfigError::invalid(parameter, value, &format!("in [{min}, {max}]")))
    }
}

/// Checks that `value` is finite and within `[min, max]` (inclusive).
///
/// # Errors
/// [`ConfigError::Invalid`] naming `parameter` otherwise.
pub fn check_range(parameter: &str, value: f64, min: f64, max: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value >= min && value <= max {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            parameter,
            value,
            &format!("finite and in [{min}, {max}]"),
        ))
    }
}

/// Checks that `value` is finite and > 0.
///
/// # Errors
/// [`ConfigError::Invalid`] naming `parameter` otherwise.
pub fn check_positive(parameter: &str, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(ConfigError::invalid(parameter, value, "finite and > 0"))
    }
}

/// `config` with the parameter `name` (dotted, as ROS names it) set to `value`, read
/// back through `T` (so the value must have the parameter's type). Does not validate.
///
/// # Errors
/// [`ConfigError::Parse`] for a name that is not a parameter of `T` or a value `T`
/// cannot take (naming the parameter).
pub fn with_parameter<T: Serialize + DeserializeOwned>(config: &T, name: &str, value: Value) -> Result<T, ConfigError> {
    let tree = serde_yaml::to_value(config).map_err(|e| ConfigError::Parse(e.to_string()))?;
    let mut flat = flatten(&tree);
    let slot = flat
        .iter_mut()
        .find(|(n, _)| n == name)
        .ok_or_else(|| ConfigError::Parse(format!("{name}: no such parameter")))?;
    slot.1 = value;
    from_tree(tree_from_flat(flat)?)
}

/// The description of every parameter documented in a ROS 2 parameters file whose
/// leaves carry a trailing comment (`key: value  # what it is, unit (default …)`), as
/// `config/landmark_flow_node.yaml` does: dotted name (below `ros__parameters`) →
/// comment text. Lines are read by their indentation; a value that is itself a
/// mapping opens a group. Comment-only lines and leaves without a comment are skipped.
pub fn parameter_descriptions(yaml: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    // (indent, key) of the open groups.
    let mut groups: Vec<(usize, String)> = Vec::new();
    for line in yaml.lines() {
        let trimmed = line.trim_start();
        // A parameter documented in a comment (a list that cannot be empty in a
        // parameters file): `#   a.b.c: [..]   # what it is`.
        if let Some((name, rest)) = trimmed.strip_prefix('#').and_then(|c| c.trim_start().split_once(": ")) {
            if name.contains('.') && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
                if let Some(i) = rest.find(" #") {
                    out.insert(name.to_string(), rest[i + 2..].trim().to_string());
                }
            }
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('-') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let Some((key, rest)) = trimmed.split_once(':') else { continue };
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        while groups.last().is_some_and(|(i, _)| *i >= indent) {
            groups.pop();
        }
        let (value, comment) = match rest.find(" #") {
            Some(i) => (rest[..i].trim(), rest[i + 2..].trim()),
            None => (rest.trim(), ""),
        };
        if value.is_empty() {
            groups.push((indent, key.to_string()));
            continue;
        }
        // Below `<node>: ros__parameters:`.
        let path: Vec<&str> = groups.iter().skip(2).map(|(_, k)| k.as_str()).chain([key]).collect();
        if !comment.is_empty() && groups.len() >= 2 {
            out.insert(path.join("."), comment.to_string());
        }
    }
    out
}

/// Builds a nested YAML mapping from flat ROS parameter names: `a.b` = v becomes
/// `{a: {b: v}}`. Names that the ROS client library adds on its own
/// (`use_sim_time`, `qos_overrides.*`) are left out.
///
/// # Errors
/// [`ConfigError::Parse`] when one name is both a value and a prefix of another.
pub fn tree_from_flat<I>(params: I) -> Result<Value, ConfigError>
where
    I: IntoIterator<Item = (String, Value)>,
{
    let mut root = Mapping::new();
    for (name, value) in params {
        if name == "use_sim_time" || name.starts_with("qos_overrides.") {
            continue;
        }
        let parts: Vec<&str> = name.split('.').collect();
        let mut node = &mut root;
        for (i, part) in parts.iter().enumerate() {
            let key = Value::String((*part).to_string());
            if i + 1 == parts.len() {
                node.insert(key, value.clone());
            } else {
                let child = node
                    .entry(key)
                    .or_insert_with(|| Value::Mapping(Mapping::new()));
                node = match child {
                    Value::Mapping(m) => m,
                    _ => {
                        return Err(ConfigError::Parse(format!(
                            "parameter `{}` is both a value and a group",
                            parts[..=i].join(".")
                        )))
                    }
                };
            }
        }
    }
    Ok(Value::Mapping(root))
}

/// Deserialises a node's config from a parameter tree (see [`tree_from_flat`]).
///
/// # Errors
/// [`ConfigError::Parse`] naming the offending field (unknown name, wrong type).
pub fn from_tree<T: DeserializeOwned>(tree: Value) -> Result<T, ConfigError> {
    // serde's own messages ("unknown variant `x`", "invalid value: integer -1") do not
    // say where; the path does.
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path.is_empty() || path == "." {
            ConfigError::Parse(inner)
        } else {
            ConfigError::Parse(format!("{path}: {inner}"))
        }
    })
}

/// Reads the `ros__parameters` of `node_name` from a ROS 2 parameters YAML file
/// (`node_name: {ros__parameters: {...}}`, as `--params-file` takes it) into `T`.
///
/// # Errors
/// [`ConfigError::Parse`] for malformed YAML, a missing node section, or fields that
/// do not match `T`.
pub fn node_parameters_from_yaml<T: DeserializeOwned>(
    yaml: &str,
    node_name: &str,
) -> Result<T, ConfigError> {
    let doc: Value = serde_yaml::from_str(yaml).map_err(|e| ConfigError::Parse(e.to_string()))?;
    let params = doc
        .get(node_name)
        .and_then(|n| n.get("ros__parameters"))
        .cloned()
        .ok_or_else(|| {
            ConfigError::Parse(format!("no `{node_name}: ros__parameters:` section"))
        })?;
    // Flatten and rebuild so that dotted keys in the file behave as nested ones.
    let mut flat = Vec::new();
    flatten_into(&params, String::new(), &mut flat);
    from_tree(tree_from_flat(flat)?)
}

/// Flattens a YAML mapping into dotted names (the inverse of [`tree_from_flat`]).
pub fn flatten(tree: &Value) -> Vec<(String, Value)> {
    let mut flat = Vec::new();
    flatten_into(tree, String::new(), &mut flat);
    flat
}

fn flatten_into(value: &Value, prefix: String, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Mapping(m) => {
            for (k, v) in m {
                let key = match k {
                    Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                let name = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                flatten_into(v, name, out);
            }
        }
        other => out.push((prefix, other.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_names_nest_and_flatten_back() {
        let flat = vec![
            ("a.b".to_string(), Value::from(1.5)),
            ("a.c".to_string(), Value::from("x")),
            ("d".to_string(), Value::from(true)),
            ("use_sim_time".to_string(), Value::from(true)),
        ];
        let tree = tree_from_flat(flat).unwrap();
        assert_eq!(tree["a"]["b"], Value::from(1.5));
        assert_eq!(tree["a"]["c"], Value::from("x"));
        assert_eq!(tree["d"], Value::from(true));
        assert!(tree.get("use_sim_time").is_none());
        let mut back = flatten(&tree);
        back.sort_by(|a, b| a.0.cmp(&b.0));
        let names: Vec<_> = back.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a.b", "a.c", "d"]);
    }

    #[test]
    fn value_and_group_with_one_name_is_an_error() {
        let flat = vec![
            ("a".to_string(), Value::from(1)),
            ("a.b".to_string(), Value::from(2)),
        ];
        assert!(matches!(tree_from_flat(flat), Err(ConfigError::Parse(_))));
    }

    #[test]
    fn range_checks_name_the_parameter() {
        let e = check_range("noise_std_m", -1.0, 0.0, 10.0).unwrap_err();
        assert!(e.to_string().contains("noise_std_m"), "{e}");
        assert!(check_range("p", f64::NAN, 0.0, 1.0).is_err());
        assert!(check_positive("rate_hz", 0.0).is_err());
        assert!(check_positive("rate_hz", 2.0).is_ok());
        assert_eq!(
            check_integer("depth", 0, 1, 10).unwrap_err().to_string(),
            "parameter `depth` = 0 is invalid: must be in [1, 10]"
        );
        assert_eq!(
            check_f64("x", 0.0, |v| v > 0.0, "> 0").unwrap_err().prefixed("a").to_string(),
            "parameter `a.x` = 0.0 is invalid: must be finite and > 0"
        );
    }
}
