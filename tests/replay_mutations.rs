//! Bag-mutation test (issue 12, "Hostile input"): the replayer binary on damaged and
//! hostile bags, each run as a child process under an address-space limit of 512 MiB
//! (`ulimit -v`) with a hang guard (killed after 20 s; a run takes well under a second).
//!
//! Mutants of a small synthetic bag (20 s, zstd-compressed MCAP as rosbag2 writes it;
//! the same data in uncompressed chunks, with and without chunk CRCs; sqlite3):
//! truncations at many offsets, bit flips in compressed and in uncompressed chunks, lying
//! length fields (record lengths, a chunk's uncompressed and compressed sizes, a record
//! length inside a chunk), zstd bombs (a chunk whose 30 kB of zstd expand to 1 GiB,
//! declaring a small and a large size, and cut short), `metadata.yaml` naming
//! `/dev/zero` and a FIFO (and being them), truncated `.db3` files.
//!
//! Asserted for every mutant: the replayer ends by itself with exit status 0 or 1
//! (never a signal, never the hang guard); when it fails, its error names the damaged
//! file, and for damage inside an MCAP or sqlite3 file where it is (`byte offset` /
//! `row`).

#![cfg(unix)]

use landmark_flow::replay::synthetic::SyntheticBag;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HANG_GUARD: Duration = Duration::from_secs(20);
const ADDRESS_SPACE_KIB: u64 = 512 * 1024;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("landmark_flow_mutations_{}_{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// How a mutant's failure must be located in the error message.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Where {
    /// `byte offset` (damage inside an MCAP file).
    Offset,
    /// `row` or `offset` (sqlite3).
    Row,
    /// The file is named; no position applies (a FIFO, a device, bad metadata).
    FileOnly,
}

struct Mutant {
    name: String,
    /// What the replayer is given.
    bag: PathBuf,
    /// The file its error must name.
    names: String,
    location: Where,
}

/// The top-level MCAP records after the magic: (offset, opcode, body length).
fn records(bytes: &[u8]) -> Vec<(usize, u8, usize)> {
    let mut out = Vec::new();
    let mut pos = 8;
    while pos + 9 <= bytes.len() {
        let len = u64::from_le_bytes(bytes[pos + 1..pos + 9].try_into().unwrap()) as usize;
        if pos + 9 + len > bytes.len() {
            break;
        }
        out.push((pos, bytes[pos], len));
        pos += 9 + len;
        if bytes[pos - 9 - len] == 0x02 {
            break;
        }
    }
    out
}

const CHUNK: u8 = 0x06;

/// Where a chunk's fields are: its records data, and the offsets of its declared
/// uncompressed and compressed sizes.
struct ChunkAt {
    records_at: usize,
    records_len: usize,
    uncompressed_size_at: usize,
    compressed_size_at: usize,
    compression: String,
}

fn chunks(bytes: &[u8]) -> Vec<ChunkAt> {
    records(bytes)
        .into_iter()
        .filter(|r| r.1 == CHUNK)
        .map(|(pos, _, _)| {
            let body = pos + 9;
            let name_len = u32::from_le_bytes(bytes[body + 28..body + 32].try_into().unwrap()) as usize;
            let compression = String::from_utf8_lossy(&bytes[body + 32..body + 32 + name_len]).to_string();
            let compressed_size_at = body + 32 + name_len;
            let records_len = u64::from_le_bytes(bytes[compressed_size_at..compressed_size_at + 8].try_into().unwrap()) as usize;
            ChunkAt {
                records_at: compressed_size_at + 8,
                records_len,
                uncompressed_size_at: body + 16,
                compressed_size_at,
                compression,
            }
        })
        .collect()
}

/// A chunk record: times, declared uncompressed size, CRC, compression, data.
fn chunk_record(uncompressed_size: u64, crc: u32, compression: &str, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(0u64.to_le_bytes());
    body.extend(u64::MAX.to_le_bytes());
    body.extend(uncompressed_size.to_le_bytes());
    body.extend(crc.to_le_bytes());
    body.extend((compression.len() as u32).to_le_bytes());
    body.extend(compression.as_bytes());
    body.extend((data.len() as u64).to_le_bytes());
    body.extend(data);
    let mut rec = vec![CHUNK];
    rec.extend((body.len() as u64).to_le_bytes());
    rec.extend(body);
    rec
}

/// The same MCAP re-chunked: every chunk's records regrouped into chunks of about
/// 2 kB (so that a small bag has many), stored with `compression` ("" or "zstd"), with
/// their CRC or 0 ("not computed"); message indexes and the summary dropped (the footer
/// then points at none).
fn rechunked(bytes: &[u8], compression: &str, keep_crc: bool) -> Vec<u8> {
    let mut inner = Vec::new();
    for c in chunks(bytes) {
        let data = &bytes[c.records_at..c.records_at + c.records_len];
        inner.extend(match c.compression.as_str() {
            "zstd" => zstd::decode_all(data).unwrap(),
            "" => data.to_vec(),
            other => panic!("compression {other}"),
        });
    }
    let mut groups: Vec<Vec<u8>> = vec![Vec::new()];
    let mut at = 0;
    while at < inner.len() {
        let len = 9 + u64::from_le_bytes(inner[at + 1..at + 9].try_into().unwrap()) as usize;
        if groups.last().unwrap().len() > 2000 {
            groups.push(Vec::new());
        }
        groups.last_mut().unwrap().extend(&inner[at..at + len]);
        at += len;
    }
    let mut out = bytes[..8].to_vec();
    let mut chunks_written = false;
    for (pos, op, len) in records(bytes) {
        let rec = &bytes[pos..pos + 9 + len];
        match op {
            CHUNK if !chunks_written => {
                chunks_written = true;
                for g in &groups {
                    let crc = if keep_crc { crc32fast::hash(g) } else { 0 };
                    let data = if compression == "zstd" { zstd::encode_all(&g[..], 3).unwrap() } else { g.clone() };
                    out.extend(chunk_record(g.len() as u64, crc, compression, &data));
                }
            }
            // Message indexes point into the old layout: dropped.
            CHUNK | 0x07 => {}
            0x0F => {
                out.extend(rec);
                break;
            }
            _ => out.extend(rec),
        }
    }
    // Footer: no summary (summary_start 0, summary_offset_start 0, crc 0) + magic.
    out.push(0x02);
    out.extend(20u64.to_le_bytes());
    out.extend([0u8; 20]);
    out.extend(&bytes[..8]);
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn file_mutant(dir: &Path, name: &str, ext: &str, bytes: &[u8], location: Where) -> Mutant {
    let file = format!("{name}.{ext}");
    let bag = write(dir, &file, bytes);
    Mutant { name: name.to_string(), bag, names: file, location }
}

/// A zstd stream of `records` followed by `zeros` zero bytes.
fn zstd_bomb(records: &[u8], zeros: usize) -> Vec<u8> {
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    enc.write_all(records).unwrap();
    let block = vec![0u8; 1 << 20];
    for _ in 0..zeros / block.len() {
        enc.write_all(&block).unwrap();
    }
    enc.finish().unwrap()
}

fn set_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn mutants(dir: &Path) -> Vec<Mutant> {
    let mut rng = StdRng::seed_from_u64(0xBA6);
    let synthetic = SyntheticBag { duration_s: 20.0, ..Default::default() };
    let bag_dir = dir.join("valid_mcap");
    synthetic.write_mcap(&bag_dir).unwrap();
    let mcap = std::fs::read_dir(&bag_dir).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "mcap")).unwrap();
    let original = std::fs::read(&mcap).unwrap();
    let zstd_bytes = rechunked(&original, "zstd", true);
    let plain = rechunked(&original, "", true);
    let plain_no_crc = rechunked(&original, "", false);
    let db3 = dir.join("valid.db3");
    synthetic.write_sqlite(&db3).unwrap();
    let db3_bytes = std::fs::read(&db3).unwrap();
    assert!(chunks(&zstd_bytes).len() >= 8 && chunks(&zstd_bytes).iter().all(|c| c.compression == "zstd"));
    assert!(chunks(&plain).iter().all(|c| c.compression.is_empty()));

    let mut out = vec![
        Mutant { name: "valid_zstd".into(), bag: bag_dir.clone(), names: String::new(), location: Where::FileOnly },
        file_mutant(dir, "valid_zstd_rechunked", "mcap", &zstd_bytes, Where::Offset),
        file_mutant(dir, "valid_plain", "mcap", &plain, Where::Offset),
        file_mutant(dir, "valid_plain_no_crc", "mcap", &plain_no_crc, Where::Offset),
    ];
    // Truncations.
    for (label, bytes, n) in [("zstd", &zstd_bytes, 30), ("plain", &plain, 20), ("original", &original, 15)] {
        for k in 0..n {
            let at = if k < 4 { [0, 7, 8, 20][k] } else { rng.random_range(9..bytes.len()) };
            out.push(file_mutant(dir, &format!("cut_{label}_{at}"), "mcap", &bytes[..at], Where::Offset));
        }
    }
    // Bit flips inside chunk data: compressed, uncompressed with CRCs, and without.
    for (label, bytes, n) in [("zstd", &zstd_bytes, 50), ("original", &original, 20), ("plain", &plain, 20), ("plain_no_crc", &plain_no_crc, 60)] {
        let cs = chunks(bytes);
        for _ in 0..n {
            let c = &cs[rng.random_range(0..cs.len())];
            let at = c.records_at + rng.random_range(0..c.records_len);
            let bit = rng.random_range(0..8);
            let mut m = bytes.clone();
            m[at] ^= 1 << bit;
            out.push(file_mutant(dir, &format!("flip_{label}_{at}_{bit}"), "mcap", &m, Where::Offset));
        }
    }
    // Bit flips anywhere in the zstd file (headers, schemas, indexes, summary).
    for _ in 0..20 {
        let at = rng.random_range(0..zstd_bytes.len());
        let mut m = zstd_bytes.clone();
        m[at] ^= 1 << rng.random_range(0..8);
        out.push(file_mutant(dir, &format!("flip_any_{at}"), "mcap", &m, Where::Offset));
    }
    // Lying lengths.
    let recs = records(&zstd_bytes);
    for (i, lie) in [(1usize, u64::MAX), (2, 1 << 48), (3, 1 << 31)] {
        let (pos, _, _) = recs[i.min(recs.len() - 1)];
        let mut m = zstd_bytes.clone();
        set_u64(&mut m, pos + 1, lie);
        out.push(file_mutant(dir, &format!("lie_record_len_{i}_{lie}"), "mcap", &m, Where::Offset));
    }
    let first = chunks(&zstd_bytes).remove(0);
    for lie in [0u64, 1, 1 << 20, 255 << 20, 1 << 31, 1 << 48, u64::MAX] {
        let mut m = zstd_bytes.clone();
        set_u64(&mut m, first.uncompressed_size_at, lie);
        out.push(file_mutant(dir, &format!("lie_uncompressed_size_{lie}"), "mcap", &m, Where::Offset));
        let mut m = zstd_bytes.clone();
        set_u64(&mut m, first.compressed_size_at, lie);
        out.push(file_mutant(dir, &format!("lie_compressed_size_{lie}"), "mcap", &m, Where::Offset));
    }
    // A record length inside an uncompressed chunk without CRC.
    let pc = chunks(&plain_no_crc).remove(0);
    for (k, lie) in [(1u64 << 48) - 9, 1 << 31, u64::MAX].into_iter().enumerate() {
        let mut m = plain_no_crc.clone();
        // The chunk's first record, and its third (skipping the first two).
        let mut at = pc.records_at;
        for _ in 0..k {
            at += 9 + u64::from_le_bytes(m[at + 1..at + 9].try_into().unwrap()) as usize;
        }
        set_u64(&mut m, at + 1, lie);
        out.push(file_mutant(dir, &format!("lie_inner_len_{k}"), "mcap", &m, Where::Offset));
    }
    // zstd bombs: the first chunk's records followed by 1 GiB of zeros, declared as its
    // true records' size, as 200 MiB, and cut short inside the compressed data.
    {
        let c = &first;
        let records = zstd::decode_all(&zstd_bytes[c.records_at..c.records_at + c.records_len]).unwrap();
        let bomb = zstd_bomb(&records, 1 << 30);
        assert!(bomb.len() < 1 << 20, "the bomb is small: {} bytes", bomb.len());
        let chunk_pos = c.uncompressed_size_at - 16 - 9;
        let chunk_end = c.records_at + c.records_len;
        let splice = |declared: u64, data: &[u8]| {
            let mut m = zstd_bytes[..chunk_pos].to_vec();
            m.extend(chunk_record(declared, 0, "zstd", data));
            m.extend(&zstd_bytes[chunk_end..]);
            m
        };
        out.push(file_mutant(dir, "bomb_declared_small", "mcap", &splice(records.len() as u64, &bomb), Where::Offset));
        out.push(file_mutant(dir, "bomb_declared_200MiB", "mcap", &splice(200 << 20, &bomb), Where::Offset));
        let cut = splice(200 << 20, &bomb);
        out.push(file_mutant(dir, "bomb_cut", "mcap", &cut[..chunk_pos + 9 + 60 + bomb.len() / 2], Where::Offset));
        let cut = splice(records.len() as u64, &bomb);
        out.push(file_mutant(dir, "bomb_cut_small", "mcap", &cut[..chunk_pos + 9 + 60 + bomb.len() / 2], Where::Offset));
    }
    // Hostile files named by metadata.yaml, and a hostile metadata.yaml.
    let fifo = dir.join("a_fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().map(|s| s.success()).unwrap_or(false);
    let metadata = std::fs::read_to_string(bag_dir.join("metadata.yaml")).unwrap();
    let file_name = mcap.file_name().unwrap().to_str().unwrap().to_string();
    let mut hostile = vec![("dev_zero", "/dev/zero".to_string())];
    if made {
        hostile.push(("fifo", fifo.to_str().unwrap().to_string()));
    }
    for (label, target) in &hostile {
        let d = dir.join(format!("meta_names_{label}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("metadata.yaml"), metadata.replace(&file_name, target)).unwrap();
        out.push(Mutant { name: format!("metadata_names_{label}"), bag: d, names: target.clone(), location: Where::FileOnly });
        let d = dir.join(format!("meta_is_{label}"));
        std::fs::create_dir_all(&d).unwrap();
        std::os::unix::fs::symlink(target, d.join("metadata.yaml")).unwrap();
        std::fs::copy(&mcap, d.join(&file_name)).unwrap();
        out.push(Mutant { name: format!("metadata_is_{label}"), bag: d, names: "metadata.yaml".into(), location: Where::FileOnly });
    }
    if made {
        out.push(Mutant { name: "bag_is_fifo".into(), bag: fifo.clone(), names: "a_fifo".into(), location: Where::FileOnly });
        let d = dir.join("fifo_mcap");
        std::fs::create_dir_all(&d).unwrap();
        std::os::unix::fs::symlink(&fifo, d.join("x.mcap")).unwrap();
        out.push(Mutant { name: "dir_with_fifo_mcap".into(), bag: d, names: "x.mcap".into(), location: Where::FileOnly });
    }
    // Truncated and bit-flipped sqlite3.
    out.push(file_mutant(dir, "valid_db3", "db3", &db3_bytes, Where::Row));
    for k in 0..12 {
        let at = if k < 3 { [0, 16, 100][k] } else { rng.random_range(100..db3_bytes.len()) };
        out.push(file_mutant(dir, &format!("cut_db3_{at}"), "db3", &db3_bytes[..at], Where::Row));
    }
    for _ in 0..8 {
        let at = rng.random_range(0..db3_bytes.len());
        let mut m = db3_bytes.clone();
        m[at] ^= 1 << rng.random_range(0..8);
        out.push(file_mutant(dir, &format!("flip_db3_{at}"), "db3", &m, Where::Row));
    }
    out
}

/// What one run of the replayer did.
struct Outcome {
    code: Option<i32>,
    signal: Option<i32>,
    hung: bool,
    stderr: String,
    seconds: f64,
}

fn replay(bag: &Path, out: &Path) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    let bin = env!("CARGO_BIN_EXE_landmark_flow_replay");
    let start = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {ADDRESS_SPACE_KIB} && exec \"$0\" \"$@\""))
        .arg(bin)
        .arg(bag)
        .arg("--out")
        .arg(out)
        .arg("--no-plots")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh runs");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let mut hung = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > HANG_GUARD {
            hung = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Outcome { code: status.code(), signal: status.signal(), hung, stderr: reader.join().unwrap(), seconds: start.elapsed().as_secs_f64() }
}

#[test]
fn every_mutant_ends_with_exit_0_or_1_naming_file_and_offset() {
    let dir = temp_dir("all");
    let all = mutants(&dir);
    assert!(all.len() >= 250, "{} mutants", all.len());
    // Two workers (the machine's cores); each mutant gets its own output directory.
    let queue = std::sync::Mutex::new(all.iter().enumerate().collect::<Vec<_>>());
    let failures = std::sync::Mutex::new(Vec::<String>::new());
    let slowest = std::sync::Mutex::new((0.0f64, String::new()));
    let counts = std::sync::Mutex::new([0usize; 2]);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let Some((i, m)) = queue.lock().unwrap().pop() else { break };
                let out = dir.join(format!("out_{i}"));
                let o = replay(&m.bag, &out);
                let _ = std::fs::remove_dir_all(&out);
                {
                    let mut w = slowest.lock().unwrap();
                    if o.seconds > w.0 {
                        *w = (o.seconds, m.name.clone());
                    }
                }
                let problem = if o.hung {
                    Some(format!("hung (killed after {HANG_GUARD:?})"))
                } else if let Some(sig) = o.signal {
                    Some(format!("killed by signal {sig}"))
                } else {
                    match o.code {
                        Some(0) => {
                            counts.lock().unwrap()[0] += 1;
                            None
                        }
                        Some(1) => {
                            counts.lock().unwrap()[1] += 1;
                            let err = o.stderr.lines().find(|l| l.contains("error:")).unwrap_or_default().to_string();
                            let located = match m.location {
                                Where::Offset => err.contains("byte offset") || err.contains("none of the"),
                                Where::Row => err.contains("row") || err.contains("offset") || err.contains("none of the"),
                                Where::FileOnly => true,
                            };
                            // "none of the ranges was fused": a bag whose damage left no range
                            // (nothing to locate); its damage, if any, is named too.
                            let named = m.names.is_empty() || o.stderr.contains(&m.names) || err.contains("none of the");
                            (!(located && named)).then(|| format!("exit 1 without naming {} ({:?}): {}", m.names, m.location, o.stderr.trim()))
                        }
                        other => Some(format!("exit status {other:?}: {}", o.stderr.trim())),
                    }
                };
                if let Some(p) = problem {
                    failures.lock().unwrap().push(format!("{}: {p}", m.name));
                }
            });
        }
    });
    let (worst, worst_name) = slowest.into_inner().unwrap();
    let [ok, failed] = counts.into_inner().unwrap();
    eprintln!("{} mutants: {ok} exit 0, {failed} exit 1; slowest {worst_name} {worst:.2} s", all.len());
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{} of {} mutants misbehaved:\n{}", failures.len(), all.len(), failures.join("\n"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The first message record inside the chunk in the middle of `bytes` (an uncompressed,
/// CRC-less MCAP): the offset of its log_time field.
fn middle_message_log_time_at(bytes: &[u8]) -> usize {
    let cs = chunks(bytes);
    let c = &cs[cs.len() / 2];
    let mut at = c.records_at;
    while bytes[at] != 0x05 {
        at += 9 + u64::from_le_bytes(bytes[at + 1..at + 9].try_into().unwrap()) as usize;
    }
    // Message body: channel_id u16, sequence u32, log_time u64.
    at + 9 + 2 + 4
}

fn goals_and_stdout(bag: &Path, out: &Path) -> (usize, String, String, Option<i32>) {
    let o = Command::new(env!("CARGO_BIN_EXE_landmark_flow_replay")).arg(bag).arg("--out").arg(out).arg("--no-plots").output().unwrap();
    let goals = std::fs::read_to_string(out.join("goals.csv")).map(|s| s.lines().count().saturating_sub(1)).unwrap_or(0);
    (goals, String::from_utf8_lossy(&o.stdout).to_string(), String::from_utf8_lossy(&o.stderr).to_string(), o.status.code())
}

/// One message whose log time jumped by +19.5 h (a damaged log_time): skipped and
/// reported with its file and offset, so it is neither the replay's clock (timers,
/// duration) nor the reader's latest time.
#[test]
fn a_log_time_jump_is_reported_and_not_planned_through() {
    let dir = temp_dir("jump");
    let synthetic = SyntheticBag { duration_s: 20.0, ..Default::default() };
    synthetic.write_mcap(&dir.join("valid")).unwrap();
    let mcap = std::fs::read_dir(dir.join("valid")).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "mcap")).unwrap();
    let plain = rechunked(&std::fs::read(&mcap).unwrap(), "", false);
    let at = middle_message_log_time_at(&plain);
    let mut jumped = plain.clone();
    let t = u64::from_le_bytes(jumped[at..at + 8].try_into().unwrap());
    jumped[at..at + 8].copy_from_slice(&(t + 70_200 * 1_000_000_000).to_le_bytes());
    let valid = write(&dir, "plain.mcap", &plain);
    let bad = write(&dir, "jumped.mcap", &jumped);
    let (goals_valid, out_valid, _, code_valid) = goals_and_stdout(&valid, &dir.join("out_valid"));
    let (goals_bad, out_bad, err_bad, code_bad) = goals_and_stdout(&bad, &dir.join("out_bad"));
    eprintln!("valid: {goals_valid} goals, {code_valid:?}: {out_valid}\njumped: {goals_bad} goals, {code_bad:?}: {out_bad}\n{err_bad}");
    assert_eq!(code_valid, Some(0));
    assert!(goals_bad <= goals_valid + 2, "{goals_bad} goals with the jump, {goals_valid} without");
    assert!(out_bad.contains("(20.") || out_bad.contains("(19."), "the bag's duration is its messages', not the jump's: {out_bad}");
    assert!(err_bad.contains("jumped.mcap") && err_bad.contains("isolated bag time jump"), "the jump is reported: {err_bad}");
    // Without the check the jumped message became the reader's latest time: every later
    // message was "replayed late" (294 here) and the odometry it carried was rejected.
    assert!(!err_bad.contains("replayed late") && out_bad.contains("0 rejected"), "{err_bad}\n{out_bad}");
}

/// A `.db3` cut short keeps the rows before the cut (regression: SQLite took the
/// whole file as malformed, 0 rows). Rows are inserted in id order, so a cut at
/// fraction p of the file leaves about p of the rows on whole pages: at least 80 % of
/// those (less 50 for the schema pages) must be read, each unchanged.
#[test]
fn a_truncated_db3_recovers_the_rows_before_the_cut() {
    use landmark_flow::replay::bag::read_bag;
    let dir = temp_dir("db3_cut");
    let synthetic = SyntheticBag { duration_s: 60.0, ..Default::default() };
    let db3 = dir.join("valid.db3");
    synthetic.write_sqlite(&db3).unwrap();
    let bytes = std::fs::read(&db3).unwrap();
    let (all, summary) = read_bag(&db3).unwrap().collect_messages(&|_| true);
    assert!(summary.error.is_none());
    let mut all_by_id = all.clone();
    all_by_id.sort_by_key(|m| m.origin.position);
    for fraction in [0.3, 0.5, 0.7, 0.9] {
        let cut = dir.join(format!("cut_{fraction}.db3"));
        std::fs::write(&cut, &bytes[..(bytes.len() as f64 * fraction) as usize]).unwrap();
        let bag = read_bag(&cut).unwrap();
        let (got, summary) = bag.collect_messages(&|_| true);
        eprintln!("cut at {fraction}: {} of {} rows, {:?}", got.len(), all.len(), summary.error);
        assert!(summary.error.is_some(), "the cut is reported");
        let expected = (all.len() as f64 * fraction * 0.8) as usize;
        assert!(got.len() >= expected.saturating_sub(50), "cut at {fraction}: {} rows recovered, expected about {}", got.len(), expected);
        // Each row recovered is a row of the intact file, unchanged (SQLite allocates
        // a split leaf where it can, so they are not exactly a prefix of the ids).
        let by_id: std::collections::BTreeMap<u64, &landmark_flow::replay::bag::BagMessage> =
            all.iter().map(|m| (m.origin.position, m)).collect();
        for m in &got {
            let original = by_id.get(&m.origin.position).expect("a row of the intact file");
            assert_eq!((m.log_time_ns, &m.data), (original.log_time_ns, &original.data), "row {}", m.origin.position);
        }
    }
}

/// `--max-record-mib` sets the limit: a chunk declaring 2 MiB uncompressed is refused
/// at its offset before anything is allocated with 1 MiB, and read (and found damaged
/// by its true size) with the default; the intact bag's 2 kB chunks pass either way.
#[test]
fn the_record_limit_is_configurable() {
    let dir = temp_dir("limit");
    SyntheticBag { duration_s: 20.0, ..Default::default() }.write_mcap(&dir.join("valid")).unwrap();
    let mcap = std::fs::read_dir(dir.join("valid")).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "mcap")).unwrap();
    let bytes = rechunked(&std::fs::read(&mcap).unwrap(), "zstd", true);
    let valid = write(&dir, "valid.mcap", &bytes);
    let mut lying = bytes.clone();
    set_u64(&mut lying, chunks(&bytes)[3].uncompressed_size_at, 2 << 20);
    let lying = write(&dir, "lying.mcap", &lying);
    let run = |bag: &Path, extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_landmark_flow_replay"))
            .arg(bag)
            .arg("--out")
            .arg(dir.join("out"))
            .arg("--no-plots")
            .args(extra)
            .output()
            .unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).to_string())
    };
    assert_eq!(run(&valid, &["--max-record-mib", "1"]).0, Some(0));
    let (code, err) = run(&lying, &["--max-record-mib", "1"]);
    assert!(code == Some(1) && err.contains("byte offset") && err.contains("more than the 1048576"), "{err}");
    let (code, err) = run(&lying, &[]);
    assert!(code == Some(1) && err.contains("byte offset") && err.contains("its header says 2097152"), "{err}");
    assert_eq!(run(&valid, &["--max-record-mib", "0"]).0, Some(2), "a limit of 0 is refused");
}
