//! Reading rosbag2 bags: a directory with `metadata.yaml` and MCAP or sqlite3 (`.db3`)
//! storage files, or a single `.mcap` / `.db3` file.
//!
//! Messages of the wanted topics are collected with their bag time (the recorder's
//! receive time, `log_time` in MCAP, `timestamp` in sqlite3, nanoseconds) and sorted by
//! it (stable: ties keep file order), which is the order `ros2 bag play` publishes
//! them in. Reading stops at the first damaged record; what was read before it is
//! kept and the error, naming the file and the byte offset (MCAP) or row (sqlite3), is
//! returned alongside it ([`BagContents::error`]).

use mcap::records::{op, Record};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The MCAP magic bytes that open and close a file.
pub const MCAP_MAGIC: &[u8; 8] = b"\x89MCAP0\r\n";
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Why a bag could not be read (completely).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BagError {
    #[error("cannot read {path}: {detail}")]
    Io { path: PathBuf, detail: String },
    #[error("{path} is not a rosbag2 bag: {detail}")]
    NotABag { path: PathBuf, detail: String },
    #[error("{path}: bad metadata.yaml: {detail}")]
    Metadata { path: PathBuf, detail: String },
    #[error("{path}: storage `{storage}` is not supported ({detail})")]
    UnsupportedStorage { path: PathBuf, storage: String, detail: String },
    #[error("{path} is truncated at byte offset {offset}: {detail}")]
    Truncated { path: PathBuf, offset: u64, detail: String },
    #[error("{path} is corrupt at byte offset {offset} ({record} record): {detail}")]
    CorruptMcap { path: PathBuf, offset: u64, record: String, detail: String },
    #[error("{path}: sqlite3 storage unreadable after message row {after_row}: {detail}")]
    Sqlite { path: PathBuf, after_row: String, detail: String },
}

/// A topic of the bag.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicInfo {
    pub name: String,
    /// ROS 2 type, e.g. `nav_msgs/msg/Odometry` ("" when the bag does not say).
    pub type_name: String,
    /// Serialization (`cdr` for ROS 2).
    pub encoding: String,
    /// Messages read from the bag on this topic.
    pub message_count: u64,
}

/// Where a message came from, for error messages.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageOrigin {
    /// Index into [`BagContents::files`].
    pub file: usize,
    /// Byte offset of the top-level MCAP record (message or chunk), or the sqlite3 row id.
    pub position: u64,
    /// Ordinal of the message in its file, from 0.
    pub ordinal: u64,
}

/// One serialized message of a wanted topic.
#[derive(Debug, Clone, PartialEq)]
pub struct BagMessage {
    /// Bag (receive) time, nanoseconds.
    pub log_time_ns: u64,
    /// Index into [`BagContents::topics`].
    pub topic: usize,
    /// The CDR bytes.
    pub data: Vec<u8>,
    pub origin: MessageOrigin,
}

/// What was read from a bag.
#[derive(Debug, Clone, Default)]
pub struct BagContents {
    /// The storage files, in reading order.
    pub files: Vec<PathBuf>,
    pub topics: Vec<TopicInfo>,
    /// Messages of the wanted topics, sorted by bag time.
    pub messages: Vec<BagMessage>,
    /// The error that stopped reading early, if any: `messages` holds what came before.
    pub error: Option<BagError>,
}

impl BagContents {
    fn topic_index(&mut self, name: &str, type_name: &str, encoding: &str) -> usize {
        if let Some(i) = self.topics.iter().position(|t| t.name == name) {
            return i;
        }
        self.topics.push(TopicInfo {
            name: name.to_string(),
            type_name: type_name.to_string(),
            encoding: encoding.to_string(),
            message_count: 0,
        });
        self.topics.len() - 1
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Storage {
    Mcap,
    Sqlite3,
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> BagError {
    BagError::Io { path: path.to_path_buf(), detail: e.to_string() }
}

/// Reads a bag (directory or single file), keeping the messages of topics for which
/// `wanted(topic_name)` is true.
///
/// # Errors
/// [`BagError`] when the bag cannot be opened at all (missing, not a bag, bad
/// metadata, unsupported storage). Damage found while reading is not an `Err`: it is
/// returned in [`BagContents::error`] with the messages read before it.
pub fn read_bag(path: &Path, wanted: &dyn Fn(&str) -> bool) -> Result<BagContents, BagError> {
    let files = storage_files(path)?;
    let mut contents = BagContents { files: files.iter().map(|(p, _)| p.clone()).collect(), ..Default::default() };
    for (index, (file, storage)) in files.iter().enumerate() {
        let result = match storage {
            Storage::Mcap => read_mcap(file, index, wanted, &mut contents),
            Storage::Sqlite3 => read_sqlite(file, index, wanted, &mut contents),
        };
        if let Err(e) = result {
            contents.error = Some(e);
            break;
        }
    }
    contents.messages.sort_by_key(|m| m.log_time_ns);
    Ok(contents)
}

fn sniff(path: &Path) -> Result<Storage, BagError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("mcap") => return Ok(Storage::Mcap),
        Some("db3") => return Ok(Storage::Sqlite3),
        _ => {}
    }
    let mut head = [0u8; 16];
    let n = {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
        f.read(&mut head).map_err(|e| io_error(path, e))?
    };
    if n >= 8 && &head[..8] == MCAP_MAGIC {
        Ok(Storage::Mcap)
    } else if n == 16 && &head == SQLITE_MAGIC {
        Ok(Storage::Sqlite3)
    } else {
        Err(BagError::NotABag { path: path.to_path_buf(), detail: "neither MCAP nor sqlite3 (no .mcap/.db3 extension, unknown magic bytes)".into() })
    }
}

/// The storage files of a bag, in order, with their format.
fn storage_files(path: &Path) -> Result<Vec<(PathBuf, Storage)>, BagError> {
    if !path.exists() {
        return Err(io_error(path, "no such file or directory"));
    }
    if path.is_file() {
        return Ok(vec![(path.to_path_buf(), sniff(path)?)]);
    }
    let metadata_path = path.join("metadata.yaml");
    if !metadata_path.exists() {
        // A directory without metadata (e.g. a recording that was killed): take its
        // storage files in name order.
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| io_error(path, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("mcap" | "db3")))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(BagError::NotABag { path: path.to_path_buf(), detail: "no metadata.yaml and no .mcap or .db3 file".into() });
        }
        return files.into_iter().map(|f| sniff(&f).map(|s| (f, s))).collect();
    }
    let text = std::fs::read_to_string(&metadata_path).map_err(|e| io_error(&metadata_path, e))?;
    let meta_err = |detail: String| BagError::Metadata { path: metadata_path.clone(), detail };
    let root: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| meta_err(e.to_string()))?;
    let info = root
        .get("rosbag2_bagfile_information")
        .ok_or_else(|| meta_err("no `rosbag2_bagfile_information` key".into()))?;
    let storage_id = info.get("storage_identifier").and_then(|v| v.as_str()).unwrap_or("");
    let storage = match storage_id {
        "mcap" => Storage::Mcap,
        "sqlite3" => Storage::Sqlite3,
        other => {
            return Err(BagError::UnsupportedStorage {
                path: path.to_path_buf(),
                storage: other.to_string(),
                detail: "mcap and sqlite3 are".into(),
            })
        }
    };
    let compression = info.get("compression_mode").and_then(|v| v.as_str()).unwrap_or("");
    if !compression.is_empty() && !compression.eq_ignore_ascii_case("none") {
        return Err(BagError::UnsupportedStorage {
            path: path.to_path_buf(),
            storage: format!("{storage_id} with compression_mode {compression}"),
            detail: "decompress it first with `ros2 bag decompress`; MCAP chunk compression (zstd, lz4) is supported".into(),
        });
    }
    let relative: Vec<String> = info
        .get("relative_file_paths")
        .and_then(|v| v.as_sequence())
        .ok_or_else(|| meta_err("no `relative_file_paths` list".into()))?
        .iter()
        .map(|v| v.as_str().map(str::to_string).ok_or_else(|| meta_err(format!("file path {v:?} is not a string"))))
        .collect::<Result<_, _>>()?;
    if relative.is_empty() {
        return Err(meta_err("`relative_file_paths` is empty".into()));
    }
    Ok(relative.into_iter().map(|r| (path.join(r), storage)).collect())
}

/// Reads the data section of an MCAP file record by record (top-level records and
/// the records inside chunks), stopping at the data-end record or footer.
fn read_mcap(path: &Path, file: usize, wanted: &dyn Fn(&str) -> bool, out: &mut BagContents) -> Result<(), BagError> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    if bytes.len() < 8 || &bytes[..8] != MCAP_MAGIC {
        return Err(BagError::NotABag { path: path.to_path_buf(), detail: "no MCAP magic at the start".into() });
    }
    let truncated = |offset: usize, detail: String| BagError::Truncated { path: path.to_path_buf(), offset: offset as u64, detail };
    let mut schemas: HashMap<u16, String> = HashMap::new();
    let mut channels: HashMap<u16, usize> = HashMap::new();
    let mut ordinal = 0u64;
    let mut pos = 8usize;
    loop {
        let available = bytes.len() - pos;
        if available == 0 {
            return Err(truncated(pos, "the file ends before the data-end record and the footer".into()));
        }
        if available < 9 {
            return Err(truncated(pos, format!("a record header needs 9 bytes, {available} remain")));
        }
        let opcode = bytes[pos];
        let mut len_bytes = [0u8; 8];
        len_bytes.copy_from_slice(&bytes[pos + 1..pos + 9]);
        let len = u64::from_le_bytes(len_bytes);
        let body_start = pos + 9;
        if len > (bytes.len() - body_start) as u64 {
            let mut detail = format!("{} record of {len} bytes, only {} remain", record_name(opcode), bytes.len() - body_start);
            if opcode == op::CHUNK {
                // Keep the complete records at the start of the cut chunk.
                let before = out.messages.len();
                for (inner_op, inner) in partial_chunk_records(&bytes[body_start..]) {
                    let Ok(record) = mcap::parse_record(inner_op, &inner) else { break };
                    let handled =
                        on_mcap_record(record, file, pos as u64, &mut ordinal, &mut schemas, &mut channels, wanted, out);
                    if handled.is_err() {
                        break;
                    }
                }
                detail.push_str(&format!("; {} messages recovered from the cut chunk", out.messages.len() - before));
            }
            return Err(truncated(pos, detail));
        }
        let body = &bytes[body_start..body_start + len as usize];
        let corrupt = |detail: String| BagError::CorruptMcap {
            path: path.to_path_buf(),
            offset: pos as u64,
            record: record_name(opcode).to_string(),
            detail,
        };
        match opcode {
            op::DATA_END | op::FOOTER => return Ok(()),
            op::SCHEMA | op::CHANNEL | op::MESSAGE | op::CHUNK => {
                // The mcap crate is not expected to panic on bad input; if it ever
                // does, the damage is reported like any other.
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<(), String> {
                    let record = mcap::parse_record(opcode, body).map_err(|e| e.to_string())?;
                    let mut handle = |record: Record| {
                        on_mcap_record(record, file, pos as u64, &mut ordinal, &mut schemas, &mut channels, wanted, out)
                    };
                    match record {
                        Record::Chunk { header, data } => {
                            let reader = mcap::read::ChunkReader::new(header, &data).map_err(|e| e.to_string())?;
                            for inner in reader {
                                handle(inner.map_err(|e| e.to_string())?)?;
                            }
                            Ok(())
                        }
                        other => handle(other),
                    }
                }));
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(detail)) => return Err(corrupt(detail)),
                    Err(_) => return Err(corrupt("the MCAP decoder failed on this record".into())),
                }
            }
            _ => {}
        }
        pos = body_start + len as usize;
    }
}

/// The complete records at the start of a chunk record cut short: the chunk header,
/// then its (uncompressed or zstd) records data as far as it goes.
fn partial_chunk_records(body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let u64_at = |at: usize| body.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    let u32_at = |at: usize| body.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")));
    // message_start_time, message_end_time, uncompressed_size (3 × u64), crc (u32),
    // compression (u32 length + bytes), compressed_size (u64), records.
    let Some(uncompressed_size) = u64_at(16) else { return Vec::new() };
    let Some(name_len) = u32_at(28) else { return Vec::new() };
    let name_end = 32 + name_len as usize;
    let Some(compression) = body.get(32..name_end) else { return Vec::new() };
    let Some(data) = body.get(name_end + 8..) else { return Vec::new() };
    let records: Vec<u8> = match compression {
        b"" => data.to_vec(),
        b"zstd" => {
            use std::io::Read;
            let Ok(mut decoder) = zstd::stream::read::Decoder::new(data) else { return Vec::new() };
            let mut out = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            while (out.len() as u64) < uncompressed_size {
                match decoder.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                }
            }
            out
        }
        _ => return Vec::new(),
    };
    let mut found = Vec::new();
    let mut pos = 0usize;
    while pos + 9 <= records.len() {
        let len = u64::from_le_bytes(records[pos + 1..pos + 9].try_into().expect("8 bytes"));
        if len > (records.len() - pos - 9) as u64 {
            break;
        }
        found.push((records[pos], records[pos + 9..pos + 9 + len as usize].to_vec()));
        pos += 9 + len as usize;
    }
    found
}

fn record_name(opcode: u8) -> &'static str {
    match opcode {
        op::HEADER => "header",
        op::FOOTER => "footer",
        op::SCHEMA => "schema",
        op::CHANNEL => "channel",
        op::MESSAGE => "message",
        op::CHUNK => "chunk",
        op::MESSAGE_INDEX => "message index",
        op::CHUNK_INDEX => "chunk index",
        op::ATTACHMENT => "attachment",
        op::STATISTICS => "statistics",
        op::METADATA => "metadata",
        op::DATA_END => "data end",
        _ => "unknown",
    }
}

#[allow(clippy::too_many_arguments)]
fn on_mcap_record(
    record: Record,
    file: usize,
    position: u64,
    ordinal: &mut u64,
    schemas: &mut HashMap<u16, String>,
    channels: &mut HashMap<u16, usize>,
    wanted: &dyn Fn(&str) -> bool,
    out: &mut BagContents,
) -> Result<(), String> {
    match record {
        Record::Schema { header, .. } => {
            schemas.insert(header.id, header.name);
        }
        Record::Channel(c) => {
            let type_name = schemas.get(&c.schema_id).cloned().unwrap_or_default();
            let index = out.topic_index(&c.topic, &type_name, &c.message_encoding);
            channels.insert(c.id, index);
        }
        Record::Message { header, data } => {
            let topic = *channels
                .get(&header.channel_id)
                .ok_or_else(|| format!("message on channel id {} that no channel record declared", header.channel_id))?;
            out.topics[topic].message_count += 1;
            if wanted(&out.topics[topic].name) {
                out.messages.push(BagMessage {
                    log_time_ns: header.log_time,
                    topic,
                    data: data.into_owned(),
                    origin: MessageOrigin { file, position, ordinal: *ordinal },
                });
            }
            *ordinal += 1;
        }
        _ => {}
    }
    Ok(())
}

/// `file:` URI of a path for SQLite, with the characters URIs reserve escaped.
fn sqlite_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for b in path.to_string_lossy().bytes() {
        match b {
            b'?' | b'#' | b'%' => uri.push_str(&format!("%{b:02X}")),
            _ => uri.push(b as char),
        }
    }
    uri.push_str("?immutable=1");
    uri
}

/// Reads a rosbag2 sqlite3 file: `topics(id, name, type, serialization_format)` and
/// `messages(id, topic_id, timestamp, data)`, rows in id order (a plain table scan,
/// so the rows before a damaged page are still delivered).
fn read_sqlite(path: &Path, file: usize, wanted: &dyn Fn(&str) -> bool, out: &mut BagContents) -> Result<(), BagError> {
    use rusqlite::OpenFlags;
    let mut head = [0u8; 16];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
        let n = f.read(&mut head).map_err(|e| io_error(path, e))?;
        if n < 16 || &head != SQLITE_MAGIC {
            return Err(BagError::NotABag { path: path.to_path_buf(), detail: "no SQLite header".into() });
        }
    }
    let sqlite_err = |after_row: &str, e: rusqlite::Error| BagError::Sqlite {
        path: path.to_path_buf(),
        after_row: after_row.to_string(),
        detail: e.to_string(),
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(sqlite_uri(path), flags).map_err(|e| sqlite_err("(none: cannot open)", e))?;
    let mut topic_of_id: BTreeMap<i64, usize> = BTreeMap::new();
    {
        let mut stmt = conn
            .prepare("SELECT id, name, type, serialization_format FROM topics")
            .map_err(|e| sqlite_err("(none: reading the topics table)", e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?)))
            .map_err(|e| sqlite_err("(none: reading the topics table)", e))?;
        for row in rows {
            let (id, name, type_name, encoding) = row.map_err(|e| sqlite_err("(none: reading the topics table)", e))?;
            let index = out.topic_index(&name, &type_name, &encoding);
            topic_of_id.insert(id, index);
        }
    }
    let mut stmt = conn
        .prepare("SELECT id, topic_id, timestamp, data FROM messages ORDER BY id")
        .map_err(|e| sqlite_err("(none: reading the messages table)", e))?;
    let mut rows = stmt.query([]).map_err(|e| sqlite_err("(none)", e))?;
    let mut last_row = String::from("(none)");
    let mut ordinal = 0u64;
    loop {
        let row = match rows.next() {
            Ok(Some(row)) => row,
            Ok(None) => return Ok(()),
            Err(e) => return Err(sqlite_err(&last_row, e)),
        };
        let read = (|| -> rusqlite::Result<(i64, i64, i64)> { Ok((row.get(0)?, row.get(1)?, row.get(2)?)) })();
        let (id, topic_id, timestamp) = read.map_err(|e| sqlite_err(&last_row, e))?;
        let Some(&topic) = topic_of_id.get(&topic_id) else {
            return Err(BagError::Sqlite {
                path: path.to_path_buf(),
                after_row: last_row,
                detail: format!("row {id} refers to topic id {topic_id}, which the topics table does not have"),
            });
        };
        out.topics[topic].message_count += 1;
        if wanted(&out.topics[topic].name) {
            let data: Vec<u8> = row.get(3).map_err(|e| sqlite_err(&last_row, e))?;
            out.messages.push(BagMessage {
                log_time_ns: timestamp.max(0) as u64,
                topic,
                data,
                origin: MessageOrigin { file, position: id as u64, ordinal },
            });
        }
        ordinal += 1;
        last_row = id.to_string();
    }
}
