//! The replayer end to end on synthetic bags: same numbers from MCAP and sqlite3,
//! deterministic; and its error paths (truncated, corrupt, not a bag, no matching
//! topic, wrong type). The output bag is read back by an independent reader (rosbags)
//! in tests/ros/test_replay.py.

use landmark_flow::replay::bag::{read_bag, BagError};
use landmark_flow::replay::synthetic::SyntheticBag;
use landmark_flow::replay::{run, ReplayError, ReplayOptions};
use std::path::{Path, PathBuf};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("landmark_flow_replay_test_{}_{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn short_bag() -> SyntheticBag {
    SyntheticBag { duration_s: 20.0, ..Default::default() }
}

fn options(bag: &Path, out: &Path) -> ReplayOptions {
    let mut o = ReplayOptions::new(bag, out);
    o.plots = false;
    o
}

fn mcap_file(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "mcap")).unwrap()
}

fn fused_rows(csv: &str) -> Vec<String> {
    csv.lines().skip(1).filter(|l| l.contains(",fused,")).map(str::to_string).collect()
}

#[test]
fn mcap_and_sqlite_replay_to_the_same_numbers_deterministically() {
    let dir = temp_dir("formats");
    let synthetic = short_bag();
    synthetic.write_mcap(&dir.join("bag_mcap")).unwrap();
    synthetic.write_sqlite(&dir.join("bag.db3")).unwrap();
    let a = run(&options(&dir.join("bag_mcap"), &dir.join("out_mcap"))).unwrap();
    let b = run(&options(&dir.join("bag.db3"), &dir.join("out_db3"))).unwrap();
    let _again = run(&options(&dir.join("bag_mcap"), &dir.join("out_mcap2"))).unwrap();
    assert!(a.bag_error.is_none() && b.bag_error.is_none());
    let csv = |d: &str| std::fs::read_to_string(dir.join(d).join("updates.csv")).unwrap();
    let rows = fused_rows(&csv("out_mcap"));
    assert_eq!(rows.len() as u64, a.report.ranges_fused);
    assert_eq!(rows.len(), synthetic.range_count(), "every synthetic range is fused");
    assert_eq!(csv("out_mcap"), csv("out_db3"), "MCAP and sqlite3 give the same updates");
    assert_eq!(csv("out_mcap"), csv("out_mcap2"), "deterministic");
    let goals = |d: &str| std::fs::read_to_string(dir.join(d).join("goals.csv")).unwrap();
    assert_eq!(goals("out_mcap"), goals("out_db3"));
    assert!(a.report.goals_published > 0);
}

#[test]
fn truncated_mcap_names_file_and_offset_and_keeps_what_came_before() {
    let dir = temp_dir("truncated");
    short_bag().write_mcap(&dir.join("bag")).unwrap();
    let file = mcap_file(&dir.join("bag"));
    let bytes = std::fs::read(&file).unwrap();
    // Keep the first 60 %: a cut inside the data section.
    std::fs::write(&file, &bytes[..bytes.len() * 6 / 10]).unwrap();
    let outcome = run(&options(&dir.join("bag"), &dir.join("out"))).unwrap();
    let err = outcome.bag_error.expect("the damage is reported");
    let text = err.to_string();
    assert!(matches!(err, BagError::Truncated { .. }), "{text}");
    assert!(text.contains(&file.display().to_string()) && text.contains("byte offset"), "{text}");
    let rows = fused_rows(&std::fs::read_to_string(dir.join("out/updates.csv")).unwrap());
    assert!(!rows.is_empty() && (rows.len() as u64) < short_bag().range_count() as u64);
    assert_eq!(outcome.report.bag_error.as_deref(), Some(text.as_str()));
    // The output bag is complete and readable.
    let (_, out) = read_bag(&dir.join("out/replay_bag")).unwrap().collect_messages(&|_| true);
    assert!(out.error.is_none());
    // No cut anywhere makes the reader panic.
    for cut in (0..bytes.len()).step_by(97).chain([8, 9, 17, bytes.len() - 1]) {
        std::fs::write(&file, &bytes[..cut]).unwrap();
        if let Ok(bag) = read_bag(&file) {
            let _ = bag.collect_messages(&|_| true);
        }
    }
}

#[test]
fn corrupt_chunk_is_reported_with_its_offset() {
    let dir = temp_dir("corrupt");
    short_bag().write_mcap(&dir.join("bag")).unwrap();
    let file = mcap_file(&dir.join("bag"));
    let mut bytes = std::fs::read(&file).unwrap();
    // Flip bytes in the middle of the first chunk's compressed data.
    let chunk = bytes.iter().position(|b| *b == 0x06).unwrap();
    for b in &mut bytes[chunk + 200..chunk + 260] {
        *b ^= 0x5A;
    }
    std::fs::write(&file, &bytes).unwrap();
    let (_, contents) = read_bag(&dir.join("bag")).unwrap().collect_messages(&|_| true);
    let err = contents.error.expect("corruption is detected");
    assert!(matches!(&err, BagError::CorruptMcap { offset, record, .. } if *offset == chunk as u64 && record == "chunk"), "{err}");
}

#[test]
fn damaged_sqlite_is_reported_with_the_row() {
    let dir = temp_dir("sqlite");
    let path = dir.join("bag.db3");
    short_bag().write_sqlite(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = match run(&options(&path, &dir.join("out"))) {
        Ok(outcome) => outcome.bag_error.expect("damage reported").to_string(),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("bag.db3") && (err.contains("row") || err.contains("malformed")), "{err}");
}

#[test]
fn no_matching_topic_lists_the_topics_of_the_bag() {
    let dir = temp_dir("topics");
    short_bag().write_mcap(&dir.join("bag")).unwrap();
    let mut o = options(&dir.join("bag"), &dir.join("out"));
    o.range_topics = vec!["/uwb".into()];
    let e = run(&o).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ReplayError::NoMatchingTopic { .. }), "{text}");
    assert!(text.contains("/uwb") && text.contains("/odom (nav_msgs/msg/Odometry") && text.contains("/range ("), "{text}");
    // A topic of the wrong type is named with its type.
    let mut o = options(&dir.join("bag"), &dir.join("out"));
    o.odom_topics = vec!["/range".into()];
    o.range_topics = vec!["/odom".into()];
    let text = run(&o).unwrap_err().to_string();
    assert!(text.contains("has type `nav_msgs/msg/Odometry`") || text.contains("has type `landmark_flow/msg/RangeMeasurement`"), "{text}");
}

#[test]
fn not_a_bag() {
    let dir = temp_dir("garbage");
    let path = dir.join("noise.bin");
    std::fs::write(&path, b"this is not a bag at all").unwrap();
    assert!(matches!(read_bag(&path).unwrap_err(), BagError::NotABag { .. }));
    assert!(matches!(read_bag(&dir.join("missing")).unwrap_err(), BagError::Io { .. }));
    std::fs::write(dir.join("metadata.yaml"), "rosbag2_bagfile_information:\n  storage_identifier: foo\n").unwrap();
    assert!(matches!(read_bag(&dir).unwrap_err(), BagError::UnsupportedStorage { .. }));
}
