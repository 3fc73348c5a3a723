//! The detectors against R's surveillance package: every case of
//! tests/golden/surveillance/manifest.csv (written by generate.R) is parsed with the same
//! flag parser as `relec detect`, run, and held to R's upper bounds (1e-6 relative) and
//! alarms (identical, NA included).

use std::{collections::BTreeMap, path::PathBuf};

use relec_detect::{Detector, Evaluation};

/// Relative tolerance on upper bounds.
const TOLERANCE: f64 = 1e-6;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/surveillance")
}

#[derive(Debug)]
struct Case {
    name: String,
    input: String,
    method: String,
    flags: String,
}

fn manifest() -> Vec<Case> {
    let mut reader = csv::Reader::from_path(golden_dir().join("manifest.csv")).expect("manifest");
    reader
        .records()
        .map(|r| {
            let r = r.expect("manifest row");
            Case {
                name: r[0].to_owned(),
                input: r[1].to_owned(),
                method: r[2].to_owned(),
                flags: r[3].to_owned(),
            }
        })
        .collect()
}

fn counts(input: &str) -> Vec<f64> {
    let path = golden_dir().join("inputs").join(format!("{input}.csv"));
    let mut reader = csv::Reader::from_path(&path).expect("input");
    reader
        .records()
        .map(|r| r.expect("input row")[1].parse().expect("count"))
        .collect()
}

/// R's expected rows: t -> (observed, upperbound, alarm).
type Expected = BTreeMap<usize, (f64, Option<f64>, Option<bool>)>;

fn expected(case: &str) -> Expected {
    let path = golden_dir().join("expected").join(format!("{case}.csv"));
    let mut reader = csv::Reader::from_path(&path).expect("expected");
    reader
        .records()
        .map(|r| {
            let r = r.expect("expected row");
            let bound = match &r[2] {
                "NA" => None,
                v => Some(v.parse().expect("upperbound")),
            };
            let alarm = match &r[3] {
                "NA" => None,
                "1" => Some(true),
                "0" => Some(false),
                other => panic!("alarm {other}"),
            };
            (
                r[0].parse().expect("t"),
                (r[1].parse().expect("observed"), bound, alarm),
            )
        })
        .collect()
}

/// Splits "--alpha 0.05 --range 3:9" into ("alpha", "0.05"), ("range", "3:9").
fn flag_pairs(flags: &str) -> Vec<(&str, &str)> {
    let words: Vec<&str> = flags.split_whitespace().collect();
    assert!(
        words.len().is_multiple_of(2),
        "flags come in pairs: {flags}"
    );
    words
        .chunks(2)
        .map(|pair| (pair[0].trim_start_matches("--"), pair[1]))
        .collect()
}

fn run(case: &Case) -> Vec<Evaluation> {
    let detector =
        Detector::from_flags(&case.method, flag_pairs(&case.flags)).expect("flags parse");
    detector.run(&counts(&case.input)).expect("detector runs")
}

/// Every difference from R in one case, as lines.
fn differences(case: &Case) -> Vec<String> {
    let expected = expected(&case.name);
    let got = run(case);
    let mut problems = Vec::new();
    let got_ts: Vec<usize> = got.iter().map(|e| e.t).collect();
    let want_ts: Vec<usize> = expected.keys().copied().collect();
    if got_ts != want_ts {
        problems.push(format!(
            "time points differ: got {}..{} ({}), R {}..{} ({})",
            got_ts.first().unwrap_or(&0),
            got_ts.last().unwrap_or(&0),
            got_ts.len(),
            want_ts.first().unwrap_or(&0),
            want_ts.last().unwrap_or(&0),
            want_ts.len()
        ));
        return problems;
    }
    for e in &got {
        let (observed, bound, alarm) = expected[&e.t];
        assert_eq!(e.observed, observed, "{} t={}", case.name, e.t);
        let bound_ok = match (e.upperbound, bound) {
            (None, None) => true,
            (Some(a), Some(b)) => (a - b).abs() <= TOLERANCE * b.abs().max(1e-12),
            _ => false,
        };
        if !bound_ok || e.alarm != alarm {
            problems.push(format!(
                "t={}: upperbound {:?} alarm {:?}; R {:?} {:?}",
                e.t, e.upperbound, e.alarm, bound, alarm
            ));
        }
    }
    problems
}

#[test]
fn every_case_matches_r() {
    let cases = manifest();
    assert!(cases.len() >= 30, "manifest has {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let problems = differences(case);
        if !problems.is_empty() {
            failures.push(format!(
                "{} ({} {}): {} differences, first: {}",
                case.name,
                case.method,
                case.flags,
                problems.len(),
                problems[..problems.len().min(3)].join(" | ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from R:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The package's published earsC test (tests/testthat/test-earsC.R): salmNewport over
/// Germany in 2011, C1 with alpha 0.05; its first four upper bounds.
#[test]
fn published_earsc_values() {
    let case = manifest()
        .into_iter()
        .find(|c| c.name == "published_earsc_salmnewport_2011")
        .expect("case");
    let got = run(&case);
    for (e, published) in got.iter().zip([3.278854, 3.278854, 3.436517, 3.855617]) {
        let bound = e.upperbound.expect("bound");
        assert!((bound - published).abs() < 1e-6, "t={} {bound}", e.t);
    }
}

/// The same file's "range is well defined": with baseline 10 and no range, one result per
/// point after the first 10.
#[test]
fn published_earsc_range() {
    let case = manifest()
        .into_iter()
        .find(|c| c.name == "published_earsc_salmnewport_baseline10")
        .expect("case");
    assert_eq!(run(&case).len(), counts(&case.input).len() - 10);
}
