//! MCAP storage files, read record by record from a buffered file: a record body
//! (at most the bag's record limit, [`super::MAX_RECORD_BYTES`] by default) and one
//! decompressed chunk at a time.

use super::{io_error, topic_index, BagError, BagMessage, Fault, MessageOrigin, TopicInfo, Window, MCAP_MAGIC, TOP_LEVEL_GROUP};
use mcap::records::{op, Record};
use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Footer record (opcode, length, summary_start, summary_offset_start, crc) + magic.
const FOOTER_BYTES: u64 = 1 + 8 + 20 + 8;

/// What a pass over the records does with them.
trait Sink {
    fn channel(&mut self, id: u16, topic: &str, type_name: &str, encoding: &str);
    fn message(&mut self, channel: u16, log_time_ns: u64, data: &[u8], origin: MessageOrigin);
    /// The end of a group (chunk); `false` stops the pass.
    fn end_group(&mut self) -> bool;
}

/// One MCAP file being read from the start of its data section.
struct Scanner {
    path: PathBuf,
    file: usize,
    reader: BufReader<std::fs::File>,
    len: u64,
    /// Offset of the next record.
    pos: u64,
    body: Vec<u8>,
    schemas: HashMap<u16, String>,
    channels: HashSet<u16>,
    ordinal: u64,
    /// Top-level message records since the last group end.
    loose: usize,
    /// The largest record body read and chunk decompressed, bytes ([`super::Bag::max_record_bytes`]).
    limit: u64,
}

impl Scanner {
    fn open(path: &Path, file: usize, limit: u64) -> Result<Self, BagError> {
        let f = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
        let len = f.metadata().map_err(|e| io_error(path, e))?.len();
        let mut reader = BufReader::with_capacity(256 * 1024, f);
        let mut magic = [0u8; 8];
        if len < 8 || reader.read_exact(&mut magic).is_err() || &magic != MCAP_MAGIC {
            return Err(BagError::NotABag { path: path.to_path_buf(), detail: "no MCAP magic at byte offset 0".into() });
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            reader,
            len,
            pos: 8,
            body: Vec::new(),
            schemas: HashMap::new(),
            channels: HashSet::new(),
            ordinal: 0,
            loose: 0,
            limit,
        })
    }

    fn truncated(&self, offset: u64, detail: String) -> BagError {
        BagError::Truncated { path: self.path.clone(), offset, detail }
    }

    fn corrupt(&self, offset: u64, opcode: u8, detail: String) -> BagError {
        BagError::CorruptMcap { path: self.path.clone(), offset, record: record_name(opcode).to_string(), detail }
    }

    fn read_err(&self, e: std::io::Error) -> BagError {
        io_error(&self.path, e)
    }

    /// Reads the data section up to the data-end record or footer, or until the sink
    /// stops it.
    fn run(&mut self, sink: &mut dyn Sink) -> Result<(), BagError> {
        loop {
            let pos = self.pos;
            let available = self.len - pos;
            if available == 0 {
                return Err(self.truncated(pos, "the file ends before the data-end record and the footer".into()));
            }
            if available < 9 {
                return Err(self.truncated(pos, format!("a record header needs 9 bytes, {available} remain")));
            }
            let mut head = [0u8; 9];
            self.reader.read_exact(&mut head).map_err(|e| self.read_err(e))?;
            let opcode = head[0];
            let len = u64::from_le_bytes(head[1..9].try_into().expect("8 bytes"));
            let body_start = pos + 9;
            let remaining = self.len - body_start;
            if len > remaining {
                let mut detail = format!("{} record of {len} bytes, only {remaining} remain", record_name(opcode));
                if opcode == op::CHUNK {
                    detail.push_str(&self.salvage_cut_chunk(pos, remaining, sink));
                }
                return Err(self.truncated(pos, detail));
            }
            self.pos = body_start + len;
            match opcode {
                op::DATA_END | op::FOOTER => {
                    return Ok(());
                }
                op::SCHEMA | op::CHANNEL | op::MESSAGE | op::CHUNK => {
                    if len > self.limit {
                        let limit = self.limit;
                        return Err(self.corrupt(pos, opcode, format!("claims {len} bytes, more than the {limit} this reader accepts")));
                    }
                    let mut body = std::mem::take(&mut self.body);
                    body.clear();
                    if let Err(e) = body.try_reserve_exact(len as usize) {
                        return Err(self.corrupt(pos, opcode, format!("cannot allocate its {len} bytes: {e}")));
                    }
                    body.resize(len as usize, 0);
                    self.reader.read_exact(&mut body).map_err(|e| self.read_err(e))?;
                    // The mcap crate is not expected to panic on bad input; if it ever
                    // does, the damage is reported like any other.
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.handle(opcode, &body, pos, sink)));
                    self.body = body;
                    match result {
                        Ok(Ok(true)) => {}
                        Ok(Ok(false)) => return Ok(()),
                        Ok(Err(detail)) => return Err(self.corrupt(pos, opcode, detail)),
                        Err(_) => return Err(self.corrupt(pos, opcode, "the MCAP decoder failed on this record".into())),
                    }
                }
                // Skipped without reading (attachments, indexes, metadata, ...).
                _ => {
                    self.reader.seek_relative(len as i64).map_err(|e| self.read_err(e))?;
                }
            }
        }
    }

    /// One top-level record; `Ok(false)` when the sink stops.
    fn handle(&mut self, opcode: u8, body: &[u8], position: u64, sink: &mut dyn Sink) -> Result<bool, String> {
        let record = mcap::parse_record(opcode, body).map_err(|e| e.to_string())?;
        match record {
            Record::Chunk { header, data } => {
                if self.loose > 0 && !self.end_group(sink) {
                    return Ok(false);
                }
                let records = chunk_records(&header, &data, self.limit)?;
                let mut at = 0usize;
                while at < records.len() {
                    let (op, body) = next_record(&records, at)
                        .map_err(|detail| format!("inside the chunk at records offset {at}: {detail}"))?;
                    at += 9 + body.len();
                    let record = mcap::parse_record(op, body)
                        .map_err(|e| format!("inside the chunk at records offset {at}: {e}"))?;
                    self.inner(record, position, sink)?;
                }
                Ok(self.end_group(sink))
            }
            other => {
                let message = matches!(other, Record::Message { .. });
                self.inner(other, position, sink)?;
                if message {
                    self.loose += 1;
                    if self.loose >= TOP_LEVEL_GROUP {
                        return Ok(self.end_group(sink));
                    }
                }
                Ok(true)
            }
        }
    }

    fn end_group(&mut self, sink: &mut dyn Sink) -> bool {
        self.loose = 0;
        sink.end_group()
    }

    /// A schema, channel or message record (top-level or inside a chunk at `position`).
    fn inner(&mut self, record: Record, position: u64, sink: &mut dyn Sink) -> Result<(), String> {
        match record {
            Record::Schema { header, .. } => {
                self.schemas.insert(header.id, header.name);
            }
            Record::Channel(c) => {
                let type_name = self.schemas.get(&c.schema_id).map(String::as_str).unwrap_or_default();
                sink.channel(c.id, &c.topic, type_name, &c.message_encoding);
                self.channels.insert(c.id);
            }
            Record::Message { header, data } => {
                if !self.channels.contains(&header.channel_id) {
                    return Err(format!("message on channel id {} that no channel record declared", header.channel_id));
                }
                let origin = MessageOrigin { file: self.file, position, ordinal: self.ordinal };
                sink.message(header.channel_id, header.log_time, &data, origin);
                self.ordinal += 1;
            }
            _ => {}
        }
        Ok(())
    }

    /// Hands the complete records at the start of a chunk cut by the end of the file
    /// to the sink; returns what to add to the error's detail.
    fn salvage_cut_chunk(&mut self, position: u64, remaining: u64, sink: &mut dyn Sink) -> String {
        if remaining > self.limit {
            return format!("; the cut chunk's {remaining} bytes are more than the {} this reader salvages", self.limit);
        }
        let mut body = Vec::new();
        if let Err(e) = body.try_reserve_exact(remaining as usize) {
            return format!("; cannot allocate the cut chunk's {remaining} bytes: {e}");
        }
        body.resize(remaining as usize, 0);
        if self.reader.read_exact(&mut body).is_err() {
            return String::new();
        }
        let records = match partial_chunk_records(&body, self.limit) {
            Ok(records) => records,
            Err(detail) => return format!("; nothing recovered from the cut chunk: {detail}"),
        };
        if self.loose > 0 {
            self.end_group(sink);
        }
        let mut recovered = 0u64;
        let mut at = 0;
        // Record by record from the buffer, up to the first that is cut, has the invalid
        // opcode 0 (what zero padding or a zstd bomb's zeros look like) or does not
        // parse: nothing is copied per record.
        while let Ok((op, inner)) = next_record(&records, at) {
            at += 9 + inner.len();
            if op == 0 {
                break;
            }
            let Ok(record) = mcap::parse_record(op, inner) else { break };
            let message = matches!(record, Record::Message { .. });
            if self.inner(record, position, sink).is_err() {
                break;
            }
            recovered += u64::from(message);
        }
        self.end_group(sink);
        format!("; {recovered} messages recovered from the cut chunk")
    }
}

/// The records data of a complete chunk, decompressed into one buffer of exactly its
/// declared `uncompressed_size` (at most `limit`, reserved fallibly: an
/// allocation the process cannot make is an error here, not an abort), checked against
/// the chunk's CRC when it has one. Decompressing this way, rather than through the
/// `mcap` crate's chunk reader, bounds the memory a chunk can take whatever its bytes
/// say: that reader sizes its buffers from the record lengths inside the chunk (a
/// flipped bit in one made it allocate 2⁴⁸ bytes and abort the process), and a
/// compressed stream that expands beyond the declared size is refused once it fills the
/// buffer (a zstd bomb costs at most the declared size).
fn chunk_records<'a>(header: &mcap::records::ChunkHeader, data: &'a [u8], limit: u64) -> Result<std::borrow::Cow<'a, [u8]>, String> {
    let declared = header.uncompressed_size;
    if declared > limit {
        return Err(format!("chunk claims {declared} bytes uncompressed, more than the {limit} this reader accepts"));
    }
    let declared = declared as usize;
    let mut out = Vec::new();
    let reserve = |out: &mut Vec<u8>| {
        out.try_reserve_exact(declared).map_err(|e| format!("cannot allocate the chunk's declared {declared} bytes uncompressed: {e}"))
    };
    let records: std::borrow::Cow<'a, [u8]> = match header.compression.as_str() {
        "" => {
            if data.len() != declared {
                return Err(format!("uncompressed chunk holds {} bytes of records, its header says {declared}", data.len()));
            }
            std::borrow::Cow::Borrowed(data)
        }
        "zstd" => {
            reserve(&mut out)?;
            let mut decoder = zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?;
            // Writes into the reserved capacity only: more output is an error.
            decoder
                .decompress_to_buffer(data, &mut out)
                .map_err(|e| format!("zstd: {e} (declared {declared} bytes uncompressed)"))?;
            std::borrow::Cow::Owned(out)
        }
        "lz4" => {
            reserve(&mut out)?;
            let decoder = lz4::Decoder::new(data).map_err(|e| format!("lz4: {e}"))?;
            // One byte more than declared tells an overlong stream from an exact one.
            decoder.take(declared as u64 + 1).read_to_end(&mut out).map_err(|e| format!("lz4: {e}"))?;
            std::borrow::Cow::Owned(out)
        }
        other => return Err(format!("unsupported chunk compression `{other}`")),
    };
    if records.len() != declared {
        return Err(format!("chunk decompresses to {}{} bytes, its header says {declared}", records.len(), if records.len() > declared { "+" } else { "" }));
    }
    if header.uncompressed_crc != 0 {
        let crc = crc32fast::hash(&records);
        if crc != header.uncompressed_crc {
            return Err(format!("chunk CRC mismatch: header {:#010x}, records {crc:#010x}", header.uncompressed_crc));
        }
    }
    Ok(records)
}

/// The record (opcode, body) at `at` in a chunk's records data, its length checked
/// against what the data holds.
fn next_record(records: &[u8], at: usize) -> Result<(u8, &[u8]), String> {
    let rest = &records[at..];
    if rest.len() < 9 {
        return Err(format!("a record header needs 9 bytes, {} remain", rest.len()));
    }
    let len = u64::from_le_bytes(rest[1..9].try_into().expect("8 bytes"));
    if len > (rest.len() - 9) as u64 {
        return Err(format!("{} record claims {len} bytes, {} remain in the chunk", record_name(rest[0]), rest.len() - 9));
    }
    Ok((rest[0], &rest[9..9 + len as usize]))
}

/// The records data at the start of a chunk record cut short: the chunk header, then
/// its (uncompressed or zstd) records data as far as it goes, decompressing no more
/// than the chunk's declared uncompressed size, itself at most `limit`.
fn partial_chunk_records(body: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    let u64_at = |at: usize| body.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    let u32_at = |at: usize| body.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")));
    let header_cut = || "the chunk header is cut".to_string();
    // message_start_time, message_end_time, uncompressed_size (3 × u64), crc (u32),
    // compression (u32 length + bytes), compressed_size (u64), records.
    let uncompressed_size = u64_at(16).ok_or_else(header_cut)?;
    if uncompressed_size > limit {
        return Err(format!("it claims {uncompressed_size} bytes uncompressed, more than the {limit} this reader accepts"));
    }
    let name_len = u32_at(28).ok_or_else(header_cut)?;
    let name_end = 32usize.checked_add(name_len as usize).ok_or_else(header_cut)?;
    let compression = body.get(32..name_end).ok_or_else(header_cut)?;
    let data = body.get(name_end + 8..).ok_or_else(header_cut)?;
    let limit = uncompressed_size as usize;
    let records: Vec<u8> = match compression {
        b"" => data[..data.len().min(limit)].to_vec(),
        b"zstd" => {
            let decoder = zstd::stream::read::Decoder::new(data).map_err(|e| e.to_string())?;
            let mut out = Vec::new();
            // Reserved up front (fallibly): `read_to_end` then never grows the buffer
            // past the limit, and a size the process cannot hold is an error.
            out.try_reserve_exact(limit).map_err(|e| format!("cannot allocate {limit} bytes to salvage it: {e}"))?;
            // Errors end the salvage: what was decompressed before them is kept.
            let _ = decoder.take(limit as u64).read_to_end(&mut out);
            out
        }
        other => return Err(format!("compression `{}` cannot be salvaged", String::from_utf8_lossy(other))),
    };
    Ok(records)
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

/// Adds the file's topics (and message counts) to `topics`: from the summary section
/// when the file has one with statistics, else by a pass over the records that keeps
/// no message data.
pub(super) fn list_topics(path: &Path, topics: &mut Vec<TopicInfo>, limit: u64) -> Result<(), BagError> {
    let mut scanner = Scanner::open(path, 0, limit)?;
    if let Some(listed) = summary_topics(&mut scanner) {
        for (name, type_name, encoding, count) in listed {
            let i = topic_index(topics, &name, &type_name, &encoding);
            topics[i].message_count += count;
        }
        return Ok(());
    }
    scanner.reader.seek(SeekFrom::Start(8)).map_err(|e| scanner.read_err(e))?;
    scanner.pos = 8;
    struct Listing<'a> {
        topics: &'a mut Vec<TopicInfo>,
        channels: HashMap<u16, usize>,
    }
    impl Sink for Listing<'_> {
        fn channel(&mut self, id: u16, topic: &str, type_name: &str, encoding: &str) {
            self.channels.insert(id, topic_index(self.topics, topic, type_name, encoding));
        }
        fn message(&mut self, channel: u16, _: u64, _: &[u8], _: MessageOrigin) {
            if let Some(&i) = self.channels.get(&channel) {
                self.topics[i].message_count += 1;
            }
        }
        fn end_group(&mut self) -> bool {
            true
        }
    }
    scanner.run(&mut Listing { topics, channels: HashMap::new() })
}

/// The topics of the summary section as (name, type, encoding, message count) in
/// channel id order, or `None` when the file has no usable summary with statistics.
fn summary_topics(scanner: &mut Scanner) -> Option<Vec<(String, String, String, u64)>> {
    let len = scanner.len;
    if len < 8 + FOOTER_BYTES {
        return None;
    }
    let reader = &mut scanner.reader;
    let mut footer = [0u8; FOOTER_BYTES as usize];
    reader.seek(SeekFrom::Start(len - FOOTER_BYTES)).ok()?;
    reader.read_exact(&mut footer).ok()?;
    if footer[0] != op::FOOTER || &footer[29..] != MCAP_MAGIC || u64::from_le_bytes(footer[1..9].try_into().ok()?) != 20 {
        return None;
    }
    let summary_start = u64::from_le_bytes(footer[9..17].try_into().ok()?);
    let summary_end = len - FOOTER_BYTES;
    if summary_start < 8 || summary_start >= summary_end {
        return None;
    }
    reader.seek(SeekFrom::Start(summary_start)).ok()?;
    let mut schemas: HashMap<u16, String> = HashMap::new();
    let mut channels = Vec::new();
    let mut stats = None;
    let mut pos = summary_start;
    let mut body = Vec::new();
    while pos < summary_end {
        if summary_end - pos < 9 {
            return None;
        }
        let mut head = [0u8; 9];
        reader.read_exact(&mut head).ok()?;
        let len = u64::from_le_bytes(head[1..9].try_into().ok()?);
        if len > summary_end - pos - 9 || len > scanner.limit {
            return None;
        }
        pos += 9 + len;
        if !matches!(head[0], op::SCHEMA | op::CHANNEL | op::STATISTICS) {
            reader.seek_relative(len as i64).ok()?;
            continue;
        }
        body.resize(len as usize, 0);
        reader.read_exact(&mut body).ok()?;
        match mcap::parse_record(head[0], &body).ok()? {
            Record::Schema { header, .. } => {
                schemas.insert(header.id, header.name);
            }
            Record::Channel(c) => channels.push(c),
            Record::Statistics(s) => stats = Some(s),
            _ => {}
        }
    }
    let stats = stats?;
    channels.sort_by_key(|c| c.id);
    Some(
        channels
            .into_iter()
            .map(|c| {
                let type_name = schemas.get(&c.schema_id).cloned().unwrap_or_default();
                let count = stats.channel_message_counts.get(&c.id).copied().unwrap_or(0);
                (c.topic, type_name, c.message_encoding, count)
            })
            .collect(),
    )
}

/// Reads the messages of the wanted topics (indices into `topics`) through `window`.
pub(super) fn read_messages<E>(
    path: &Path,
    file: usize,
    topics: &[TopicInfo],
    wanted: &[bool],
    window: &mut Window,
    f: &mut impl FnMut(BagMessage) -> Result<(), E>,
    limit: u64,
) -> Result<(), Fault<E>> {
    struct Reading<'a, E, F> {
        topics: &'a [TopicInfo],
        wanted: &'a [bool],
        /// Channel id → topic index, `None` when not wanted.
        channels: HashMap<u16, Option<usize>>,
        window: &'a mut Window,
        f: &'a mut F,
        stopped: Option<E>,
    }
    impl<E, F: FnMut(BagMessage) -> Result<(), E>> Sink for Reading<'_, E, F> {
        fn channel(&mut self, id: u16, topic: &str, _: &str, _: &str) {
            let index = self.topics.iter().position(|t| t.name == topic).filter(|&i| self.wanted[i]);
            self.channels.insert(id, index);
        }
        fn message(&mut self, channel: u16, log_time_ns: u64, data: &[u8], origin: MessageOrigin) {
            if let Some(Some(topic)) = self.channels.get(&channel) {
                self.window.push(BagMessage { log_time_ns, topic: *topic, data: data.to_vec(), origin });
            }
        }
        fn end_group(&mut self) -> bool {
            match self.window.end_group(self.f) {
                Ok(()) => true,
                Err(e) => {
                    self.stopped = Some(e);
                    false
                }
            }
        }
    }
    let mut scanner = Scanner::open(path, file, limit)?;
    let mut sink = Reading { topics, wanted, channels: HashMap::new(), window, f, stopped: None };
    let result = scanner.run(&mut sink);
    if let Some(e) = sink.stopped {
        return Err(Fault::Callback(e));
    }
    result.map_err(Fault::Bag)
}
