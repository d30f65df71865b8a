//! Writing results: a rosbag2 directory with one MCAP file (`ros2` profile, CDR
//! messages, `ros2msg` schemas, zstd chunks), and CSV tables.

use crate::msg::message_definition;
use mcap::records::MessageHeader;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Why an output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot write {path}: {detail}")]
    Io { path: PathBuf, detail: String },
    #[error("{path}: MCAP writer: {detail}")]
    Mcap { path: PathBuf, detail: String },
    #[error("type `{0}` has no known message definition")]
    UnknownType(String),
    #[error("topic `{topic}` was first written as `{first}`, now as `{now}`")]
    TypeChanged { topic: String, first: String, now: String },
}

pub(crate) fn io_err(path: &Path, e: impl std::fmt::Display) -> OutputError {
    OutputError::Io { path: path.to_path_buf(), detail: e.to_string() }
}

struct TopicEntry {
    channel_id: u16,
    type_name: String,
    count: u64,
}

/// Writes a rosbag2 bag: `<dir>/metadata.yaml` and `<dir>/<dir name>_0.mcap`.
pub struct Rosbag2McapWriter {
    dir: PathBuf,
    file_name: String,
    mcap_path: PathBuf,
    writer: mcap::Writer<BufWriter<std::fs::File>>,
    topics: BTreeMap<String, TopicEntry>,
    schemas: HashMap<String, u16>,
    start_ns: u64,
    end_ns: u64,
    sequence: u32,
}

impl Rosbag2McapWriter {
    /// Creates `dir` (replacing the bag files of an earlier run there).
    ///
    /// # Errors
    /// [`OutputError`] when the directory or file cannot be created.
    pub fn create(dir: &Path) -> Result<Self, OutputError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let stem = dir.file_name().and_then(|n| n.to_str()).unwrap_or("replay").to_string();
        let file_name = format!("{stem}_0.mcap");
        let mcap_path = dir.join(&file_name);
        let file = std::fs::File::create(&mcap_path).map_err(|e| io_err(&mcap_path, e))?;
        let writer = mcap::WriteOptions::new()
            .profile("ros2")
            .library("landmark_flow_replay")
            .compression(Some(mcap::Compression::Zstd))
            .create(BufWriter::new(file))
            .map_err(|e| OutputError::Mcap { path: mcap_path.clone(), detail: e.to_string() })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            file_name,
            mcap_path,
            writer,
            topics: BTreeMap::new(),
            schemas: HashMap::new(),
            start_ns: u64::MAX,
            end_ns: 0,
            sequence: 0,
        })
    }

    /// Path of the MCAP file.
    pub fn mcap_path(&self) -> &Path {
        &self.mcap_path
    }

    /// Appends one CDR message (`data` with its encapsulation header) at bag time
    /// `log_time_ns`.
    ///
    /// # Errors
    /// [`OutputError`] for an unknown type, a topic whose type changes, or a write error.
    pub fn write(&mut self, topic: &str, type_name: &str, log_time_ns: u64, data: &[u8]) -> Result<(), OutputError> {
        let mcap_err = |e: mcap::McapError| OutputError::Mcap { path: self.mcap_path.clone(), detail: e.to_string() };
        let channel_id = match self.topics.get_mut(topic) {
            Some(entry) if entry.type_name != type_name => {
                return Err(OutputError::TypeChanged { topic: topic.into(), first: entry.type_name.clone(), now: type_name.into() })
            }
            Some(entry) => {
                entry.count += 1;
                entry.channel_id
            }
            None => {
                let schema_id = match self.schemas.get(type_name) {
                    Some(id) => *id,
                    None => {
                        let definition = message_definition(type_name).ok_or_else(|| OutputError::UnknownType(type_name.into()))?;
                        let id = self.writer.add_schema(type_name, "ros2msg", definition.as_bytes()).map_err(mcap_err)?;
                        self.schemas.insert(type_name.to_string(), id);
                        id
                    }
                };
                let metadata = BTreeMap::from([("offered_qos_profiles".to_string(), String::new())]);
                let channel_id = self.writer.add_channel(schema_id, topic, "cdr", &metadata).map_err(mcap_err)?;
                self.topics.insert(topic.to_string(), TopicEntry { channel_id, type_name: type_name.to_string(), count: 1 });
                channel_id
            }
        };
        let header = MessageHeader { channel_id, sequence: self.sequence, log_time: log_time_ns, publish_time: log_time_ns };
        self.sequence = self.sequence.wrapping_add(1);
        self.start_ns = self.start_ns.min(log_time_ns);
        self.end_ns = self.end_ns.max(log_time_ns);
        self.writer.write_to_known_channel(&header, data).map_err(mcap_err)
    }

    /// Messages written so far.
    pub fn message_count(&self) -> u64 {
        self.topics.values().map(|t| t.count).sum()
    }

    /// Finishes the MCAP file (summary, footer) and writes `metadata.yaml`.
    ///
    /// # Errors
    /// [`OutputError`] when either cannot be written.
    pub fn finish(mut self) -> Result<(), OutputError> {
        self.writer.finish().map_err(|e| OutputError::Mcap { path: self.mcap_path.clone(), detail: e.to_string() })?;
        let count = self.message_count();
        let (start, duration) = if count == 0 { (0, 0) } else { (self.start_ns, self.end_ns - self.start_ns) };
        let mut topics = String::new();
        for (name, t) in &self.topics {
            topics.push_str(&format!(
                "  - message_count: {}\n    topic_metadata:\n      name: {}\n      offered_qos_profiles: []\n      serialization_format: cdr\n      type: {}\n      type_description_hash: ''\n",
                t.count, name, t.type_name
            ));
        }
        if topics.is_empty() {
            topics.push_str("  []\n");
        }
        let yaml = format!(
            "rosbag2_bagfile_information:\n  compression_format: ''\n  compression_mode: ''\n  custom_data: {{}}\n  duration:\n    nanoseconds: {duration}\n  files:\n  - duration:\n      nanoseconds: {duration}\n    message_count: {count}\n    path: {file}\n    starting_time:\n      nanoseconds_since_epoch: {start}\n  message_count: {count}\n  relative_file_paths:\n  - {file}\n  ros_distro: jazzy\n  starting_time:\n    nanoseconds_since_epoch: {start}\n  storage_identifier: mcap\n  topics_with_message_count:\n{topics}  version: 9\n",
            file = self.file_name,
        );
        let path = self.dir.join("metadata.yaml");
        std::fs::write(&path, yaml).map_err(|e| io_err(&path, e))
    }
}

/// A CSV file written row by row (fields joined by commas; fields are numbers or ids
/// and topic names, which are quoted when they contain a comma or quote).
pub struct CsvWriter {
    path: PathBuf,
    out: BufWriter<std::fs::File>,
}

impl CsvWriter {
    /// Creates the file and writes the header row.
    ///
    /// # Errors
    /// [`OutputError::Io`].
    pub fn create(path: &Path, columns: &[&str]) -> Result<Self, OutputError> {
        let file = std::fs::File::create(path).map_err(|e| io_err(path, e))?;
        let mut w = Self { path: path.to_path_buf(), out: BufWriter::new(file) };
        w.row(columns.iter().map(|c| c.to_string()))?;
        Ok(w)
    }

    /// Writes one row.
    ///
    /// # Errors
    /// [`OutputError::Io`].
    pub fn row(&mut self, fields: impl IntoIterator<Item = String>) -> Result<(), OutputError> {
        let line: Vec<String> = fields
            .into_iter()
            .map(|f| if f.contains([',', '"', '\n']) { format!("\"{}\"", f.replace('"', "\"\"")) } else { f })
            .collect();
        writeln!(self.out, "{}", line.join(",")).map_err(|e| io_err(&self.path, e))
    }

    /// Flushes the file.
    ///
    /// # Errors
    /// [`OutputError::Io`].
    pub fn finish(mut self) -> Result<(), OutputError> {
        self.out.flush().map_err(|e| io_err(&self.path, e))
    }
}

/// A float for CSV: Rust's shortest representation that reads back to the same f64;
/// non-finite values as `nan`, `inf`, `-inf` (what Python's `float` reads).
pub fn num(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{v}")
    }
}
