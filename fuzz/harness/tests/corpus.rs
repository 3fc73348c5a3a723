//! Replays every checked-in corpus file of every fuzz target (`fuzz/corpus/<target>/`)
//! through the function the target calls, on stable Rust: an input that once crashed a
//! decoder keeps being tried on every CI run.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    path::PathBuf,
};

use relec_fuzz_harness::{TARGETS, Target};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn replay(name: &str) {
    let (_, target): &(&str, Target) = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .expect("a known target");
    let files = corpus(name);
    assert!(!files.is_empty(), "fuzz/corpus/{name} is empty");
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("read corpus file");
            catch_unwind(AssertUnwindSafe(|| target(&data))).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} {name} inputs panic (message above): {failed:#?}",
        failed.len(),
        files.len()
    );
}

#[test]
fn avro_single_object() {
    replay("avro_single_object");
}

#[test]
fn avro_confluent() {
    replay("avro_confluent");
}

#[test]
fn json_events() {
    replay("json_events");
}

#[test]
fn csv_import() {
    replay("csv_import");
}

#[test]
fn rule_metadata() {
    replay("rule_metadata");
}

#[test]
fn subscriptions() {
    replay("subscriptions");
}

/// A target added to the harness gets a fuzz binary and a replay test too.
#[test]
fn every_target_is_fuzzed_and_replayed() {
    let this = include_str!("corpus.rs");
    let manifest = include_str!("../../Cargo.toml");
    for (name, _) in TARGETS {
        assert!(
            this.contains(&format!("replay(\"{name}\")")),
            "no replay test for {name}"
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "no [[bin]] {name} in fuzz/Cargo.toml"
        );
    }
}
