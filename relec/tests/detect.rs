//! `relec detect` as an analyst runs it: a golden series of R's surveillance package in,
//! the package's bounds and alarms out as CSV, and clear errors for bad input.

use std::process::{Command, Output};

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../rules/detect/tests/golden/surveillance"
);

fn relec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relec"))
        .args(args)
        .env_remove("RELEC_CONFIG")
        .output()
        .expect("run relec")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A case of the golden manifest: (input, method, flags).
fn case(name: &str) -> (String, String, Vec<String>) {
    let mut reader = csv::Reader::from_path(format!("{GOLDEN}/manifest.csv")).expect("manifest");
    let row = reader
        .records()
        .map(|r| r.expect("row"))
        .find(|r| &r[0] == name)
        .unwrap_or_else(|| panic!("no case {name}"));
    let flags = row[3].split_whitespace().map(str::to_owned).collect();
    (row[1].to_owned(), row[2].to_owned(), flags)
}

/// Runs `relec detect` on a golden case and compares its stdout with R's expected CSV: the
/// same rows and alarms, bounds within 1e-6 relative, NA where R has NA.
fn matches_r(name: &str) {
    let (input, method, flags) = case(name);
    let input = format!("{GOLDEN}/inputs/{input}.csv");
    let mut args = vec!["detect", method.as_str(), "--input", input.as_str()];
    args.extend(flags.iter().map(String::as_str));
    let out = relec(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = text(&out.stdout);
    let want = std::fs::read_to_string(format!("{GOLDEN}/expected/{name}.csv")).expect("expected");
    let (got, want): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
    assert_eq!(got[0], "t,observed,upperbound,alarm");
    assert_eq!(got.len(), want.len(), "rows of {name}");
    for (g, w) in got.iter().zip(&want).skip(1) {
        let g: Vec<&str> = g.split(',').collect();
        let w: Vec<&str> = w.split(',').collect();
        assert_eq!(
            (g[0], g[3]),
            (w[0], w[3]),
            "t and alarm of {name}: {g:?} vs R {w:?}"
        );
        assert_eq!(g[1].parse::<f64>().ok(), w[1].parse::<f64>().ok());
        match (g[2], w[2]) {
            ("NA", "NA") => {}
            (g2, w2) => {
                let (g2, w2): (f64, f64) = (g2.parse().expect("bound"), w2.parse().expect("R"));
                assert!(
                    (g2 - w2).abs() <= 1e-6 * w2.abs(),
                    "{name} t={}: {g2} vs R {w2}",
                    g[0]
                );
            }
        }
    }
}

#[test]
fn ears_c3_matches_r() {
    matches_r("ears_c3_default_agona");
}

#[test]
fn farrington_flexible_with_limit54_gaps_matches_r() {
    // Weeks with fewer than 5 cases in the last 4 have no bound: NA, alarm 0.
    matches_r("flexible_nbplugin_agona");
}

#[test]
fn bad_count_names_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("counts.csv");
    std::fs::write(&file, "t,count\n2025-W01,3\n2025-W02,-1\n").expect("write");
    let out = relec(&[
        "detect",
        "ears-c1",
        "--input",
        file.to_str().expect("utf-8"),
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("line 3: count \"-1\" is not a number >= 0"),
        "{stderr}"
    );
}

#[test]
fn a_flag_the_method_does_not_take_is_refused() {
    let input = format!("{GOLDEN}/inputs/shadar.csv");
    let out = relec(&["detect", "cusum", "--input", &input, "--baseline", "7"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--baseline does not apply to cusum"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn labels_are_copied_and_short_series_are_explained() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("counts.csv");
    let rows: String = (1..=10).map(|i| format!("day-{i},{}\n", i % 3)).collect();
    std::fs::write(&file, format!("t,count\n{rows}")).expect("write");
    let path = file.to_str().expect("utf-8");
    let out = relec(&["detect", "ears-c1", "--input", path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("t,observed,upperbound,alarm\nday-8,"),
        "{stdout}"
    );
    let out = relec(&["detect", "ears-c3", "--input", path]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("needs 11 points of history"),
        "{}",
        text(&out.stderr)
    );
}
