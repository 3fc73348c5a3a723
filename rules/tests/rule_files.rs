//! Loading rule files: the acceptance pack, and the messages an analyst gets for a
//! broken file (every metadata problem at once, syntax errors with line and column).

mod common;

use std::path::Path;

use relec_rules::{
    error::RuleError,
    rule::{Rule, Trigger, load_dir},
    sandbox::{Limits, engine},
};
use relec_schemas::Severity;

fn load(source: &str) -> Result<Rule, RuleError> {
    Rule::from_source(
        &engine(&Limits::default()),
        Path::new("rules/pack/x.rhai"),
        source,
    )
}

const CONDITION: &str = "fn condition(g) { g.count(\"1d\") > 0 }\n";

#[test]
fn the_pack_loads() {
    let (rules, errors) = load_dir(&engine(&Limits::default()), &common::pack_dir());
    assert!(errors.is_empty(), "{errors:?}");
    let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "death_or_missing",
            "ears_c2_border_section",
            "facilitators_ewma",
            "new_crossing_point",
            "reporting_silence",
            "route_shift",
            "route_spike",
            "trafficking_cusum"
        ]
    );

    let spike = rules
        .iter()
        .find(|r| r.id == "route_spike")
        .expect("route_spike");
    assert_eq!(spike.severity, Severity::High);
    assert_eq!(spike.group_by, ["route"]);
    assert_eq!(
        spike.filter["category"],
        ["IRREGULAR_CROSSING", "SMUGGLING"]
    );
    assert_eq!(spike.trigger, Trigger::Event);
    assert_eq!(
        (spike.window_days, spike.for_days, spike.keep_firing_days),
        (7, 0, 2)
    );
    assert_eq!(spike.labels["route"], "{{route}}");
    assert_eq!(spike.version.len(), 12);

    let death = &rules[0];
    assert_eq!(death.severity, Severity::Critical);
    assert_eq!(death.trigger, Trigger::Immediate);
    assert!(death.filter.is_empty());
    assert_eq!(death.when_any, ["dead", "missing"]);
    assert!(spike.when_any.is_empty());
    assert_eq!(death.window_days, 1);
}

#[test]
fn every_metadata_mistake_is_reported_with_its_key() {
    let source = format!(
        "{CONDITION}#{{ id: \"x\", title: \"X\", severity: \"urgent\", group_by: [\"route\", \"agency\"], colour: \"red\" }}"
    );
    let Err(RuleError::Invalid { problems, .. }) = load(&source) else {
        panic!("expected invalid metadata");
    };
    assert_eq!(
        problems,
        [
            "colour: unknown key (keys are id, title, severity, description, group_by, breakdown, filter, when_any, trigger, window, for, keep_firing_for, labels, annotations)",
            "severity: \"urgent\" is not a severity (one of info, low, medium, high, critical)",
            "group_by[1]: \"agency\" is not a dimension (one of route, border_section, crossing_point, nationality, category, reporting_country, reporting_agency)",
        ]
    );
    // Displayed one per line, each naming the file.
    let shown = load(&source).unwrap_err().to_string();
    assert_eq!(shown.lines().count(), 3);
    assert!(
        shown.lines().all(|l| l.starts_with("rules/pack/x.rhai: ")),
        "{shown}"
    );
}

#[test]
fn more_metadata_checks() {
    let source = format!(
        "{CONDITION}#{{ id: \"Bad-Id\", severity: \"low\", trigger: \"hourly\", \"for\": \"2x\", \
         filter: #{{ category: [\"SMUGLING\"], route: \"BALKAN\" }}, when_any: [\"dead\", \"events\", \"dead\"], breakdown: [\"nationality\", \"nationality\"], \
         labels: #{{ route: \"{{{{route\" }} }}"
    );
    let Err(RuleError::Invalid { problems, .. }) = load(&source) else {
        panic!("expected invalid metadata");
    };
    let keys: Vec<&str> = problems
        .iter()
        .map(|p| p.split(':').next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "title",
            "breakdown[1]",
            "filter.category[0]",
            "filter.route",
            "when_any[1]",
            "when_any[2]",
            "trigger",
            "for",
            "labels.route"
        ],
        "{problems:#?}"
    );
}

#[test]
fn a_script_without_condition_or_metadata_is_rejected() {
    let Err(RuleError::Invalid { problems, .. }) = load("fn cond(g) { true }\n42") else {
        panic!("expected invalid");
    };
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].starts_with("condition: "));
    assert!(problems[1].starts_with("metadata: "));
}

#[test]
fn a_syntax_error_names_line_and_column() {
    let error = load("fn condition(g) {\n    let x = ;\n}\n#{}").unwrap_err();
    let RuleError::Script { position, .. } = &error else {
        panic!("expected a script error, got {error}");
    };
    assert_eq!(*position, Some((2, 13)));
    assert!(
        error.to_string().starts_with("rules/pack/x.rhai:2:13: "),
        "{error}"
    );
}

#[test]
fn an_unquoted_for_key_gets_a_hint() {
    let error = load(&format!(
        "{CONDITION}#{{ id: \"x\", title: \"X\", severity: \"low\",\n  for: \"2d\" }}"
    ))
    .unwrap_err();
    assert!(
        matches!(
            error,
            RuleError::Script {
                position: Some((3, 3)),
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains(r#"quote the key, "for": "2d""#),
        "{error}"
    );
}

#[test]
fn an_undefined_variable_is_caught_at_load() {
    let error = load("fn condition(g) {\n    weeek > 3\n}\n#{}").unwrap_err();
    assert!(
        matches!(
            error,
            RuleError::Script {
                position: Some((2, 5)),
                ..
            }
        ),
        "{error}"
    );

    // A top-level `let` is invisible in functions; the message says to use `const`.
    let error =
        load("let limit = 3;\nfn condition(g) { g.count(\"1d\") > limit }\n#{}").unwrap_err();
    assert!(
        error.to_string().contains("declare it with `const`"),
        "{error}"
    );
}

#[test]
fn duplicate_ids_are_an_error_for_the_later_file() {
    let dir = tempfile::tempdir().unwrap();
    let rule = format!("{CONDITION}#{{ id: \"same\", title: \"Same\", severity: \"low\" }}");
    std::fs::write(dir.path().join("a.rhai"), &rule).unwrap();
    std::fs::write(dir.path().join("b.rhai"), &rule).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a rule").unwrap();
    let (rules, errors) = load_dir(&engine(&Limits::default()), dir.path());
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].path, dir.path().join("a.rhai"));
    assert!(
        matches!(&errors[..], [RuleError::DuplicateId { path, .. }] if path.ends_with("b.rhai")),
        "{errors:?}"
    );
}

#[test]
fn the_version_follows_the_text() {
    let a = load(&format!(
        "{CONDITION}#{{ id: \"a\", title: \"A\", severity: \"low\" }}"
    ))
    .unwrap();
    let b = load(&format!(
        "{CONDITION}#{{ id: \"a\", title: \"A!\", severity: \"low\" }}"
    ))
    .unwrap();
    assert_ne!(a.version, b.version);
    assert!(a.version.chars().all(|c| c.is_ascii_hexdigit()));
}
