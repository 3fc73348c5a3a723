//! Shared helpers of the notifier's black-box tests: a realistic notification to render and
//! send, and golden-file comparison (`UPDATE_GOLDEN=1` rewrites the files).
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};

use relec_notifier::Notification;
use relec_schemas::{Alert, AlertStatus, Severity, Tlp};

/// 2024-05-01T06:00:00Z, when the sample alerts fired.
pub const FIRED_AT: i64 = 1_714_543_200_000;
const DAY: i64 = 86_400_000;

fn map(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A notification of the `ncp-routes` receiver for route IRN-TUR-VAN: two firing AMBER
/// alerts (a spike and a death report) and a resolved GREEN one, so the message is AMBER.
pub fn sample() -> Notification {
    let spike = Alert {
        fingerprint: "5f2a9c1e7b3d4a60".into(),
        rule_id: "route_spike".into(),
        rule_version: "3".into(),
        status: AlertStatus::Firing,
        severity: Severity::High,
        labels: map(&[("route", "IRN-TUR-VAN"), ("rule", "route_spike")]),
        annotations: map(&[(
            "summary",
            "IRN-TUR-VAN: 412 persons in 7 days, over 150 (8-week mean 50)",
        )]),
        starts_at: FIRED_AT,
        ends_at: None,
        window_start: FIRED_AT - 7 * DAY,
        window_end: FIRED_AT,
        value: 412.0,
        threshold: Some(150.0),
        handling: Tlp::Amber,
        countries: vec!["IRN".into(), "TUR".into()],
        evidence: vec!["ev-20240430-0113".into(), "ev-20240430-0187".into()],
        generated_at: FIRED_AT,
    };
    let deaths = Alert {
        fingerprint: "c03e81d2946b5f17".into(),
        rule_id: "death_or_missing".into(),
        rule_version: "1".into(),
        severity: Severity::Critical,
        labels: map(&[
            ("route", "IRN-TUR-VAN"),
            ("rule", "death_or_missing"),
            ("country", "TUR"),
        ]),
        annotations: map(&[(
            "summary",
            "2 dead and 1 missing on IRN-TUR-VAN, reported by TUR (2024-04-30)",
        )]),
        value: 3.0,
        threshold: None,
        countries: vec!["TUR".into()],
        evidence: vec!["ev-20240430-0201".into()],
        ..spike.clone()
    };
    let shift = Alert {
        fingerprint: "9b7d20e4a1c3f658".into(),
        rule_id: "route_shift".into(),
        rule_version: "2".into(),
        status: AlertStatus::Resolved,
        severity: Severity::Medium,
        labels: map(&[
            ("route", "IRN-TUR-VAN"),
            ("rule", "route_shift"),
            ("nationality", "AFG"),
        ]),
        annotations: map(&[(
            "summary",
            "AFG share on IRN-TUR-VAN rose 12.5 points in a week (threshold 10)",
        )]),
        starts_at: FIRED_AT - 3 * DAY,
        ends_at: Some(FIRED_AT - DAY / 2),
        value: 12.5,
        threshold: Some(10.0),
        handling: Tlp::Green,
        countries: vec!["AFG".into(), "IRN".into()],
        evidence: vec![],
        ..spike.clone()
    };
    Notification {
        subscriber: "tur-ncp".into(),
        receiver: "ncp-routes".into(),
        group_key: "{}/{route=~\"IRN-.*\"}:{route=\"IRN-TUR-VAN\"}".into(),
        group_labels: map(&[("route", "IRN-TUR-VAN")]),
        status: AlertStatus::Firing,
        alerts: vec![spike, deaths, shift],
        handling: Tlp::Amber,
        idempotency_key: "tur-ncp/email:5f2a9c1e7b3d4a60@1714543200000".into(),
    }
}

fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Compares `actual` with the golden file `tests/golden/<name>`; with `UPDATE_GOLDEN=1`
/// in the environment, writes it instead. Review the diff of rewritten files before
/// committing them: they are what recipients see.
pub fn assert_golden(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the output at line {}:\n  golden: {:?}\n  actual: {:?}\n\
             (run with UPDATE_GOLDEN=1 to accept the new output)",
            path.display(),
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line),
        );
    }
}
