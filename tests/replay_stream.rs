//! The streaming bag reader: the order it guarantees on MCAP files whose log times
//! are out of order (within a chunk, across adjacent chunks, and beyond its window),
//! multi-file bags, bounds on length fields read from the file, and memory that does
//! not grow with the bag (the reader's own counters: it never holds more than two
//! chunks' messages).

use landmark_flow::replay::bag::{read_bag, BagError, BagMessage, TopicInfo, MAX_RECORD_BYTES};
use landmark_flow::replay::synthetic::SyntheticBag;
use landmark_flow::replay::{run, ReplayOptions};
use std::collections::BTreeMap;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("landmark_flow_replay_stream_{}_{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn all(_: &TopicInfo) -> bool {
    true
}

/// Writes an MCAP file with one topic whose messages carry their index (u64 LE) and
/// have the given log times; each inner slice becomes one chunk (in file order).
fn write_chunks(path: &Path, chunks: &[Vec<u64>]) {
    write_mcap(path, chunks, true)
}

/// As [`write_chunks`]; without chunks all messages are top-level records.
fn write_mcap(path: &Path, chunks: &[Vec<u64>], use_chunks: bool) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = mcap::WriteOptions::new()
        .use_chunks(use_chunks)
        .profile("ros2")
        .compression(Some(mcap::Compression::Zstd))
        .chunk_size(None)
        .create(BufWriter::new(file))
        .unwrap();
    let schema = w.add_schema("std_msgs/msg/UInt64", "ros2msg", b"uint64 data").unwrap();
    let channel = w.add_channel(schema, "/t", "cdr", &BTreeMap::new()).unwrap();
    let mut index = 0u64;
    for chunk in chunks {
        for &t in chunk {
            let header = mcap::records::MessageHeader { channel_id: channel, sequence: index as u32, log_time: t, publish_time: t };
            w.write_to_known_channel(&header, &index.to_le_bytes()).unwrap();
            index += 1;
        }
        w.flush().unwrap();
    }
    w.finish().unwrap();
}

fn index_of(m: &BagMessage) -> u64 {
    u64::from_le_bytes(m.data[..8].try_into().unwrap())
}

/// (log time, index in file) of every message, in delivery order.
fn delivered(path: &Path) -> (Vec<(u64, u64)>, landmark_flow::replay::bag::ReadSummary) {
    let (messages, summary) = read_bag(path).unwrap().collect_messages(&all);
    (messages.iter().map(|m| (m.log_time_ns, index_of(m))).collect(), summary)
}

/// The reference order: a stable sort by log time of the file order.
fn stable_sorted(chunks: &[Vec<u64>]) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = chunks.iter().flatten().copied().zip(0u64..).collect();
    v.sort_by_key(|&(t, _)| t);
    v
}

#[test]
fn disorder_within_a_chunk_and_across_adjacent_chunks_is_sorted_ties_in_file_order() {
    let dir = temp_dir("order");
    let path = dir.join("order.mcap");
    let chunks = vec![
        vec![10, 30, 20, 20, 50, 40],
        // Older than the end of the chunk before (straddling the boundary), with ties.
        vec![35, 20, 60, 55, 50],
        vec![58, 70, 65, 70],
        vec![70, 90, 80],
    ];
    write_chunks(&path, &chunks);
    let (got, summary) = delivered(&path);
    assert_eq!(got, stable_sorted(&chunks));
    assert_eq!(summary.late_messages, 0);
    assert!(summary.error.is_none());
    assert_eq!(summary.largest_group, 6);
    assert!(summary.peak_buffered <= 2 * summary.largest_group, "{summary:?}");
}

#[test]
fn an_unchunked_file_is_sorted_in_groups_of_top_level_messages() {
    let dir = temp_dir("unchunked");
    let path = dir.join("unchunked.mcap");
    // 3000 messages, each pair swapped: disorder within a group of 1024 top-level
    // messages and across the boundaries between groups.
    let times: Vec<u64> = (0..3000u64).map(|k| if k % 2 == 0 { k + 1 } else { k - 1 }).collect();
    let chunks = vec![times];
    write_mcap(&path, &chunks, false);
    let (got, summary) = delivered(&path);
    assert_eq!(got, stable_sorted(&chunks));
    assert_eq!(summary.late_messages, 0);
    assert_eq!(summary.largest_group, landmark_flow::replay::bag::TOP_LEVEL_GROUP);
}

#[test]
fn a_message_older_than_two_chunks_back_is_delivered_late_and_counted() {
    let dir = temp_dir("late");
    let path = dir.join("late.mcap");
    // 15 in the third chunk is older than 20, which is in the first chunk: beyond the
    // window (the first chunk's messages up to 30 are out before the third is read).
    let chunks = vec![vec![10, 20, 30], vec![40, 50], vec![15, 60]];
    write_chunks(&path, &chunks);
    let (got, summary) = delivered(&path);
    let times: Vec<u64> = got.iter().map(|m| m.0).collect();
    assert_eq!(times, [10, 20, 30, 15, 40, 50, 60]);
    assert_eq!(summary.late_messages, 1);
    assert_eq!(summary.messages, 7);
    assert_eq!(summary.last_log_time_ns, Some(60));
}

/// Offset of the first top-level record with `opcode` after the magic.
fn first_record(bytes: &[u8], opcode: u8) -> usize {
    let mut pos = 8;
    while bytes[pos] != opcode {
        pos += 9 + u64::from_le_bytes(bytes[pos + 1..pos + 9].try_into().unwrap()) as usize;
    }
    pos
}

#[test]
fn a_chunk_claiming_two_gigabytes_is_corrupt_not_allocated() {
    let dir = temp_dir("huge");
    let path = dir.join("huge.mcap");
    let chunks = vec![vec![1, 2, 3], vec![4, 5, 6]];
    write_chunks(&path, &chunks);
    let mut bytes = std::fs::read(&path).unwrap();
    let second = {
        let first = first_record(&bytes, 0x06);
        let after = first + 9 + u64::from_le_bytes(bytes[first + 1..first + 9].try_into().unwrap()) as usize;
        after + first_record(&bytes[after - 8..], 0x06) - 8
    };
    // uncompressed_size: after message_start_time and message_end_time.
    bytes[second + 9 + 16..second + 9 + 24].copy_from_slice(&(1u64 << 31).to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let (got, summary) = delivered(&path);
    assert_eq!(got.iter().map(|m| m.0).collect::<Vec<_>>(), [1, 2, 3], "the chunk before is kept");
    let err = summary.error.unwrap();
    assert!(
        matches!(&err, BagError::CorruptMcap { offset, record, detail, .. }
            if *offset == second as u64 && record == "chunk" && detail.contains("2147483648")),
        "{err}"
    );
    // The same chunk cut by the end of the file: no salvage beyond the bound either.
    let cut = &bytes[..second + 9 + 60];
    std::fs::write(&path, cut).unwrap();
    let (got, summary) = delivered(&path);
    assert_eq!(got.len(), 3);
    let text = summary.error.unwrap().to_string();
    assert!(text.contains("truncated at byte offset") && text.contains(&MAX_RECORD_BYTES.to_string()), "{text}");
    // A record length beyond the file is a truncation at that record, not an allocation.
    let mut bytes = bytes.clone();
    bytes[second + 1..second + 9].copy_from_slice(&(1u64 << 31).to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let err = delivered(&path).1.error.unwrap();
    assert!(matches!(&err, BagError::Truncated { offset, .. } if *offset == second as u64), "{err}");
}

/// Splits a synthetic bag into two MCAP files listed by one metadata.yaml.
fn write_split(synthetic: &SyntheticBag, dir: &Path) {
    use landmark_flow::replay::output::Rosbag2McapWriter;
    let messages = synthetic.messages();
    let half = messages.len() / 2;
    std::fs::create_dir_all(dir.join("bag")).unwrap();
    for (k, part) in [&messages[..half], &messages[half..]].into_iter().enumerate() {
        let part_dir = dir.join(format!("part{k}"));
        let mut w = Rosbag2McapWriter::create(&part_dir).unwrap();
        for (t, topic, type_name, data) in part {
            w.write(topic, type_name, *t, data).unwrap();
        }
        w.finish().unwrap();
        std::fs::rename(part_dir.join(format!("part{k}_0.mcap")), dir.join(format!("bag/part{k}_0.mcap"))).unwrap();
    }
    std::fs::write(
        dir.join("bag/metadata.yaml"),
        "rosbag2_bagfile_information:\n  storage_identifier: mcap\n  relative_file_paths:\n  - part0_0.mcap\n  - part1_0.mcap\n",
    )
    .unwrap();
}

#[test]
fn a_bag_split_in_two_files_reads_and_replays_like_one() {
    let dir = temp_dir("split");
    let synthetic = SyntheticBag { duration_s: 20.0, ..Default::default() };
    synthetic.write_mcap(&dir.join("whole")).unwrap();
    write_split(&synthetic, &dir);
    let whole = read_bag(&dir.join("whole")).unwrap();
    let split = read_bag(&dir.join("bag")).unwrap();
    assert_eq!(split.files.len(), 2);
    assert_eq!(split.topics, whole.topics, "topics and counts summed over the files");
    let (a, _) = whole.collect_messages(&all);
    let (b, summary) = split.collect_messages(&all);
    assert!(summary.error.is_none());
    let key = |m: &BagMessage| (m.log_time_ns, m.topic, m.data.clone());
    assert_eq!(a.iter().map(key).collect::<Vec<_>>(), b.iter().map(key).collect::<Vec<_>>());
    assert_eq!(b.first().unwrap().origin.file, 0);
    assert_eq!(b.last().unwrap().origin.file, 1);
    let options = |bag: &str, out: &str| {
        let mut o = ReplayOptions::new(&dir.join(bag), &dir.join(out));
        o.plots = false;
        o
    };
    run(&options("whole", "out_whole")).unwrap();
    run(&options("bag", "out_split")).unwrap();
    let csv = |d: &str| std::fs::read_to_string(dir.join(d).join("updates.csv")).unwrap();
    assert_eq!(csv("out_whole"), csv("out_split"));
}

#[test]
fn memory_does_not_grow_with_the_bag() {
    // 30 messages per bag second: 400 s (12 000 messages, several chunks) and 2.2 h
    // (240 000 messages).
    let dir = temp_dir("memory");
    let mut peaks = Vec::new();
    for (name, duration_s) in [("short", 400.0), ("long", 8000.0)] {
        let synthetic = SyntheticBag { duration_s, ..Default::default() };
        synthetic.write_mcap(&dir.join(name)).unwrap();
        let db3 = dir.join(format!("{name}.db3"));
        synthetic.write_sqlite(&db3).unwrap();
        for bag in [dir.join(name), db3] {
            let bag = read_bag(&bag).unwrap();
            let (mut count, mut last) = (0u64, 0u64);
            let summary = bag
                .for_each_message(&all, |m| {
                    assert!(m.log_time_ns >= last, "bag-time order");
                    last = m.log_time_ns;
                    count += 1;
                    Ok::<(), ()>(())
                })
                .unwrap();
            assert!(summary.error.is_none());
            assert_eq!(count, bag.topics.iter().map(|t| t.message_count).sum::<u64>());
            assert_eq!(summary.late_messages, 0);
            assert!(summary.peak_buffered <= 2 * summary.largest_group, "{summary:?}");
            peaks.push((name, count, summary.peak_buffered, summary.largest_group));
        }
        std::fs::remove_dir_all(dir.join(name)).unwrap();
    }
    eprintln!("(name, messages, peak held, largest chunk): {peaks:?}");
    let [(_, short_n, short_mcap, short_chunk), (_, _, short_db3, _), (_, long_n, long_mcap, long_chunk), (_, _, long_db3, _)] =
        peaks[..]
    else {
        panic!()
    };
    assert!(long_n >= 200_000 && long_n >= 20 * short_n, "{peaks:?}");
    // The window is two chunks (the writer's chunk size), however long the bag: 20×
    // the messages, the same peak (within a few messages of chunk-size jitter).
    assert!(long_mcap <= 2 * long_chunk && long_chunk <= short_chunk + 16, "{peaks:?}");
    assert!(long_mcap <= short_mcap + 32 && (long_mcap as u64) * 50 < long_n, "{peaks:?}");
    assert!(short_db3 <= 2 && long_db3 <= 2, "sorted rows pass straight through: {peaks:?}");
}

/// The replayer's exit status when every range is rejected: 1 with the reasons (a
/// replay that estimated nothing must not look like a success), and `--help` into a
/// closed pipe is not a panic.
#[test]
fn a_replay_that_fuses_nothing_exits_1_and_help_survives_a_closed_pipe() {
    use std::process::{Command, Stdio};
    let exe = env!("CARGO_BIN_EXE_landmark_flow_replay");
    let dir = std::env::temp_dir().join(format!("landmark_flow_nothing_fused_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bag = landmark_flow::replay::synthetic::SyntheticBag { duration_s: 5.0, ..Default::default() };
    bag.write_mcap(&dir.join("bag")).unwrap();
    // No priors and unknown landmarks rejected: every range is `unknown_landmark`.
    std::fs::write(dir.join("params.yaml"), "landmark_flow_node:\n  ros__parameters:\n    localizer:\n      unknown_landmarks: reject\n").unwrap();
    let out = Command::new(exe)
        .arg(dir.join("bag"))
        .args(["--no-plots", "--params"])
        .arg(dir.join("params.yaml"))
        .arg("--out")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("none of the") && stderr.contains("unknown_landmark"), "{stderr}");
    // `--help | head -c 1`: the reader closes the pipe after one byte.
    let mut child = Command::new(exe).arg("--help").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let status = child.wait_with_output().unwrap();
    assert_eq!(status.status.code(), Some(0), "{}", String::from_utf8_lossy(&status.stderr));
    std::fs::remove_dir_all(&dir).ok();
}
