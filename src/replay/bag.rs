//! Reading rosbag2 bags: a directory with `metadata.yaml` and MCAP or sqlite3 (`.db3`)
//! storage files, or a single `.mcap` / `.db3` file, as a stream: memory is bounded
//! by the largest record (at most [`MAX_RECORD_BYTES`]) and a window of two chunks'
//! messages, never by the bag's length.
//!
//! [`read_bag`] opens a bag and lists its topics (from the MCAP summary, the sqlite3
//! `topics` table, or a first pass over the records that keeps no message data);
//! [`Bag::for_each_message`] then hands the messages of the wanted topics to a
//! callback one at a time with their bag time (the recorder's receive time,
//! `log_time` in MCAP, `timestamp` in sqlite3, nanoseconds).
//!
//! # Order
//! The files of a multi-file bag are read one after the other, in the order
//! `metadata.yaml` lists them (rosbag2 splits a recording in time, so each file's
//! messages follow the previous file's). Within a file:
//! - sqlite3: exactly by `(timestamp, id)`, i.e. bag time with ties in file order
//!   (`ORDER BY timestamp, id`; with rosbag2's `timestamp_idx` index this is an index
//!   walk, without it SQLite sorts on disk). If that query fails before its first row
//!   (damage found while sorting), the rows before the damage are read in id order
//!   through the MCAP window below, with groups of [`SQLITE_FALLBACK_GROUP`] rows.
//! - MCAP: messages are grouped (one group per chunk; consecutive messages outside
//!   chunks form groups of up to [`TOP_LEVEL_GROUP`]). When group `g` has been read,
//!   the window (what is left of group `g − 1` plus group `g`) is sorted stably by
//!   bag time and every message at or before the latest bag time of the groups
//!   before `g` is released. So the output is exactly the stable sort by bag time
//!   (ties in file order) — what the whole-file reader produced and what
//!   `ros2 bag play` publishes — whenever no message is older than a message two or
//!   more groups before it; disorder inside a chunk and between adjacent chunks
//!   (rosbag2 writes chunks in receive order, messages can straddle a chunk boundary)
//!   is always corrected. A message older than that is still delivered, late, and
//!   counted in [`ReadSummary::late_messages`].
//!
//! # Damage
//! Reading stops at the first damaged record; everything before it is delivered and
//! the error, naming the file and the byte offset (MCAP) or row (sqlite3), is
//! returned in [`ReadSummary::error`]. A length field read from the file never
//! drives an allocation beyond [`MAX_RECORD_BYTES`]: a record or chunk claiming more
//! is reported as corrupt at its offset. Those allocations are fallible (an
//! allocation the process cannot make is damage reported at its offset, not an
//! abort), and MCAP chunks are decompressed here into a buffer of exactly their
//! declared size (a zstd bomb fails when it fills it) and checked against their CRC;
//! the records inside are bounded by what the chunk holds. Only regular files are
//! opened (a FIFO would block, `/dev/zero` never end), and `metadata.yaml` is read
//! up to [`MAX_METADATA_BYTES`]. `tests/replay_mutations.rs` runs the replayer on
//! ~300 damaged bags under a 512 MiB address-space limit.

use std::path::{Path, PathBuf};

mod mcap_file;
mod sqlite_file;

/// The MCAP magic bytes that open and close a file.
pub const MCAP_MAGIC: &[u8; 8] = b"\x89MCAP0\r\n";
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// The default of [`Bag::max_record_bytes`]: the largest MCAP record body read into
/// memory, and the largest chunk decompressed (its declared `uncompressed_size`, also
/// the cap on salvaging a cut chunk): 256 MiB. rosbag2 writes chunks of about 1 MiB; a
/// larger length field is taken as corruption rather than allocated.
pub const MAX_RECORD_BYTES: u64 = 256 << 20;
/// Consecutive MCAP message records outside chunks are reordered in groups of this
/// many (the window of an unchunked file).
pub const TOP_LEVEL_GROUP: usize = 1024;
/// A message whose bag time is more than this ahead of the message before it, and
/// which the message after it does not follow (that one is again more than this before
/// it), is an isolated jump — a flipped bit in its log time — and is skipped and
/// reported ([`ReadSummary::time_jumps`]): 10 minutes, ns. A real gap in a recording is
/// followed by messages after it, and kept.
pub const MAX_BAG_TIME_JUMP_NS: u64 = 600 * 1_000_000_000;
/// Rows per reorder group when a damaged sqlite3 file is read in id order.
pub const SQLITE_FALLBACK_GROUP: usize = 1024;

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
    /// Messages on this topic: from the MCAP summary's statistics when the file has
    /// them, else counted by the listing pass (up to any damage, like the messages
    /// that can be read).
    pub message_count: u64,
}

/// Where a message came from, for error messages.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageOrigin {
    /// Index into [`Bag::files`].
    pub file: usize,
    /// Byte offset of the top-level MCAP record (message or chunk), or the sqlite3 row id.
    pub position: u64,
    /// Ordinal of the message in its file, from 0 (MCAP: among all its messages in
    /// file order; sqlite3: among the rows read, in reading order).
    pub ordinal: u64,
}

/// One serialized message of a wanted topic.
#[derive(Debug, Clone, PartialEq)]
pub struct BagMessage {
    /// Bag (receive) time, nanoseconds.
    pub log_time_ns: u64,
    /// Index into [`Bag::topics`].
    pub topic: usize,
    /// The CDR bytes.
    pub data: Vec<u8>,
    pub origin: MessageOrigin,
}

/// An opened bag: its files and topics; the messages are read by
/// [`Bag::for_each_message`].
#[derive(Debug, Clone, Default)]
pub struct Bag {
    /// The storage files, in reading order.
    pub files: Vec<PathBuf>,
    pub topics: Vec<TopicInfo>,
    /// Damage met while listing the topics (a file without an MCAP summary is listed
    /// by a first pass over its records): the topics and counts are those before it.
    /// Reading the messages meets the same damage and reports it again.
    pub listing_error: Option<BagError>,
    /// The largest MCAP record or chunk (declared uncompressed size) read, bytes
    /// ([`read_bag_with_limit`]; [`MAX_RECORD_BYTES`] by default): a larger one is
    /// damage at its offset, refused before any allocation.
    pub max_record_bytes: u64,
    storages: Vec<Storage>,
}

/// How a pass over the messages ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadSummary {
    /// The damage that stopped reading, if any: every message before it was delivered.
    pub error: Option<BagError>,
    /// Messages delivered.
    pub messages: u64,
    /// The latest bag time delivered, ns (the last message's, as nothing is late in a
    /// well-ordered bag).
    pub last_log_time_ns: Option<u64>,
    /// Messages delivered out of bag-time order because they were older than the
    /// reorder window allows (see the module doc); 0 for a well-ordered bag.
    pub late_messages: u64,
    /// Bounded-memory evidence: the most wanted messages the reader held at once, and
    /// the most wanted messages in one group (chunk). The window never holds more
    /// than two groups, so `peak_buffered ≤ 2 × largest_group`.
    pub peak_buffered: usize,
    pub largest_group: usize,
    /// Messages skipped as isolated bag-time jumps ([`MAX_BAG_TIME_JUMP_NS`]): where
    /// each was and its bag time, ns; they reach no callback (a jump of hours would
    /// otherwise become the replay's clock: its timers and its duration).
    pub time_jumps: Vec<(MessageOrigin, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Storage {
    Mcap,
    Sqlite3,
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> BagError {
    BagError::Io { path: path.to_path_buf(), detail: e.to_string() }
}

/// The index of topic `name` in `topics`, adding it if new.
fn topic_index(topics: &mut Vec<TopicInfo>, name: &str, type_name: &str, encoding: &str) -> usize {
    if let Some(i) = topics.iter().position(|t| t.name == name) {
        return i;
    }
    topics.push(TopicInfo { name: name.to_string(), type_name: type_name.to_string(), encoding: encoding.to_string(), message_count: 0 });
    topics.len() - 1
}

/// Opens a bag (directory or single file) and lists its topics, without reading
/// message data into memory.
///
/// # Errors
/// [`BagError`] when the bag cannot be opened at all (missing, not a bag, bad
/// metadata, unsupported storage). Damage found while listing is not an `Err`: see
/// [`Bag::listing_error`].
pub fn read_bag(path: &Path) -> Result<Bag, BagError> {
    read_bag_with_limit(path, MAX_RECORD_BYTES)
}

/// [`read_bag`] with [`Bag::max_record_bytes`] = `max_record_bytes`.
///
/// # Errors
/// As [`read_bag`].
pub fn read_bag_with_limit(path: &Path, max_record_bytes: u64) -> Result<Bag, BagError> {
    let files = storage_files(path)?;
    let mut bag = Bag {
        files: files.iter().map(|(p, _)| p.clone()).collect(),
        storages: files.iter().map(|(_, s)| *s).collect(),
        max_record_bytes,
        ..Default::default()
    };
    for (file, storage) in &files {
        let listed = match storage {
            Storage::Mcap => mcap_file::list_topics(file, &mut bag.topics, max_record_bytes),
            Storage::Sqlite3 => sqlite_file::list_topics(file, &mut bag.topics),
        };
        if let Err(e) = listed {
            bag.listing_error = Some(e);
            break;
        }
    }
    Ok(bag)
}

impl Bag {
    /// Hands every message of the topics for which `wanted` is true to `f`, one at a
    /// time, in the order described in the module doc, holding at most a window of
    /// two chunks' messages.
    ///
    /// # Errors
    /// The first error `f` returns (reading stops there). Damage in the bag is not an
    /// `Err`: it ends the pass and is returned in [`ReadSummary::error`].
    pub fn for_each_message<E>(
        &self,
        wanted: &dyn Fn(&TopicInfo) -> bool,
        mut f: impl FnMut(BagMessage) -> Result<(), E>,
    ) -> Result<ReadSummary, E> {
        let wanted: Vec<bool> = self.topics.iter().map(wanted).collect();
        let mut window = Window::default();
        let mut error = None;
        for (index, (file, storage)) in self.files.iter().zip(&self.storages).enumerate() {
            let read = match storage {
                Storage::Mcap => mcap_file::read_messages(file, index, &self.topics, &wanted, &mut window, &mut f, self.max_record_bytes),
                Storage::Sqlite3 => sqlite_file::read_messages(file, index, &self.topics, &wanted, &mut window, &mut f),
            };
            // Whatever the file ended with, what it read is delivered first.
            let flushed = window.flush(&mut f);
            match (read, flushed) {
                (Err(Fault::Callback(e)), _) | (_, Err(e)) => return Err(e),
                (Err(Fault::Bag(e)), Ok(())) => {
                    error = Some(e);
                    break;
                }
                (Ok(()), Ok(())) => {}
            }
        }
        Ok(ReadSummary {
            error,
            messages: window.delivered,
            last_log_time_ns: window.last_out,
            late_messages: window.late,
            peak_buffered: window.peak,
            largest_group: window.largest_group,
            // A jump at the very end has no message after it to confirm it: skipped too.
            time_jumps: {
                let mut jumps = window.jumps;
                jumps.extend(window.suspect.map(|m| (m.origin, m.log_time_ns)));
                jumps
            },
        })
    }

    /// Every message of the wanted topics in a `Vec`, with the damage that stopped
    /// reading: for tests and small bags only (memory grows with the bag).
    pub fn collect_messages(&self, wanted: &dyn Fn(&TopicInfo) -> bool) -> (Vec<BagMessage>, ReadSummary) {
        let mut out = Vec::new();
        let summary = self
            .for_each_message(wanted, |m| {
                out.push(m);
                Ok::<(), std::convert::Infallible>(())
            })
            .unwrap_or_else(|never| match never {});
        (out, summary)
    }
}

/// What ended reading a file early.
enum Fault<E> {
    Bag(BagError),
    Callback(E),
}

impl<E> From<BagError> for Fault<E> {
    fn from(e: BagError) -> Self {
        Fault::Bag(e)
    }
}

/// The reorder window (see the module doc): the wanted messages of the current
/// group, and what is left of the groups before it, sorted by bag time.
#[derive(Default)]
struct Window {
    /// Sorted by bag time, ties in file order.
    held: Vec<BagMessage>,
    /// The group being read, in file order.
    group: Vec<BagMessage>,
    /// The latest bag time of the groups before the current one.
    released_up_to: Option<u64>,
    last_out: Option<u64>,
    delivered: u64,
    late: u64,
    peak: usize,
    largest_group: usize,
    /// A message held back because its bag time jumped ahead ([`MAX_BAG_TIME_JUMP_NS`]):
    /// delivered if the next message follows it, else skipped into `jumps`.
    suspect: Option<BagMessage>,
    jumps: Vec<(MessageOrigin, u64)>,
}

impl Window {
    fn push(&mut self, m: BagMessage) {
        self.group.push(m);
    }

    /// Ends the current group: merges it into the window and delivers what the
    /// groups after it cannot precede.
    fn end_group<E>(&mut self, f: &mut impl FnMut(BagMessage) -> Result<(), E>) -> Result<(), E> {
        if self.group.is_empty() {
            return Ok(());
        }
        self.largest_group = self.largest_group.max(self.group.len());
        let group_latest = self.group.iter().map(|m| m.log_time_ns).max();
        self.held.append(&mut self.group);
        // Stable: `held` was in order and before the group in the file.
        self.held.sort_by_key(|m| m.log_time_ns);
        self.peak = self.peak.max(self.held.len());
        let release = match self.released_up_to {
            Some(t) => self.held.partition_point(|m| m.log_time_ns <= t),
            None => 0,
        };
        self.released_up_to = self.released_up_to.max(group_latest);
        let rest = self.held.split_off(release);
        let out = std::mem::replace(&mut self.held, rest);
        self.deliver(out, f)
    }

    /// Delivers everything (end of file or damage).
    fn flush<E>(&mut self, f: &mut impl FnMut(BagMessage) -> Result<(), E>) -> Result<(), E> {
        self.end_group(f)?;
        let out = std::mem::take(&mut self.held);
        self.deliver(out, f)
    }

    fn deliver<E>(&mut self, out: Vec<BagMessage>, f: &mut impl FnMut(BagMessage) -> Result<(), E>) -> Result<(), E> {
        for m in out {
            if let Some(s) = self.suspect.take() {
                if m.log_time_ns.saturating_add(MAX_BAG_TIME_JUMP_NS) >= s.log_time_ns {
                    // The stream follows the jump: a gap in the recording.
                    self.last_out = Some(s.log_time_ns);
                    self.delivered += 1;
                    f(s)?;
                } else {
                    self.jumps.push((s.origin, s.log_time_ns));
                }
            }
            if self.last_out.is_some_and(|t| m.log_time_ns > t.saturating_add(MAX_BAG_TIME_JUMP_NS)) {
                self.suspect = Some(m);
                continue;
            }
            if self.last_out.is_some_and(|t| m.log_time_ns < t) {
                self.late += 1;
            } else {
                self.last_out = Some(m.log_time_ns);
            }
            self.delivered += 1;
            f(m)?;
        }
        Ok(())
    }
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
    if !path.is_dir() {
        return Err(io_error(path, "neither a regular file nor a directory"));
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
        return files.into_iter().map(|f| regular_file(&f).and_then(|()| sniff(&f)).map(|s| (f, s))).collect();
    }
    let text = read_metadata(&metadata_path)?;
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
    relative
        .into_iter()
        .map(|r| {
            let file = path.join(r);
            regular_file(&file)?;
            Ok((file, storage))
        })
        .collect()
}

/// The largest `metadata.yaml` read (rosbag2 writes a few kB; one entry per file and
/// topic).
pub const MAX_METADATA_BYTES: u64 = 1 << 20;

/// `Ok` when `path` is a regular file (after symlinks). A bag's files are opened only
/// then: a FIFO would block the open or the read for ever, and a device such as
/// `/dev/zero` never ends.
fn regular_file(path: &Path) -> Result<(), BagError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
    if meta.is_file() {
        Ok(())
    } else {
        Err(io_error(path, "not a regular file (a bag's files must be; FIFOs and devices are refused)"))
    }
}

/// The text of `metadata.yaml`: a regular file of at most [`MAX_METADATA_BYTES`].
fn read_metadata(path: &Path) -> Result<String, BagError> {
    use std::io::Read;
    regular_file(path)?;
    let file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_METADATA_BYTES + 1).read_to_end(&mut bytes).map_err(|e| io_error(path, e))?;
    if bytes.len() as u64 > MAX_METADATA_BYTES {
        return Err(BagError::Metadata { path: path.to_path_buf(), detail: format!("larger than {MAX_METADATA_BYTES} bytes") });
    }
    String::from_utf8(bytes).map_err(|e| BagError::Metadata { path: path.to_path_buf(), detail: format!("not UTF-8: {e}") })
}

