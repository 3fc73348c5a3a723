//! The sandbox: runaway, oversized and throwing rules are cut off with the right error
//! kind, the engine keeps working afterwards, and scripts cannot reach the system.

mod common;

use std::path::Path;

use relec_rules::{
    error::ErrorKind,
    rule::Rule,
    sandbox::{Limits, engine},
};
use rhai::Engine;

const METADATA: &str = "#{ id: \"t\", title: \"T\", severity: \"low\", group_by: [\"route\"] }";

fn rule(engine: &Engine, functions: &str) -> Rule {
    Rule::from_source(
        engine,
        Path::new("t.rhai"),
        &format!("{functions}\n{METADATA}"),
    )
    .unwrap()
}

fn group() -> relec_rules::group::Group {
    let events: Vec<_> = (0..3)
        .map(|d| common::event(common::TODAY - d, 5))
        .collect();
    common::group(
        common::state(&events, &[]),
        common::TODAY,
        &[("route", "BALKAN")],
        None,
    )
}

fn kind_of(engine: &Engine, functions: &str) -> (ErrorKind, String, Option<(usize, usize)>) {
    let e = rule(engine, functions)
        .evaluate(engine, group())
        .unwrap_err();
    (e.kind, e.message, e.position)
}

#[test]
fn runaway_rules_are_cut_off_and_the_engine_goes_on() {
    let engine = engine(&Limits::default());
    let normal = rule(
        &engine,
        "fn condition(g) { g.sum(\"persons\", \"7d\") > 10 }",
    );

    let (kind, ..) = kind_of(&engine, "fn condition(g) { loop {} }");
    assert!(
        matches!(kind, ErrorKind::TooManyOperations | ErrorKind::Timeout),
        "{kind}"
    );

    let (kind, ..) = kind_of(
        &engine,
        "fn condition(g) { let s = \"x\"; loop { s += s; } }",
    );
    assert_eq!(kind, ErrorKind::TooBig);

    let (kind, message, position) = kind_of(&engine, "fn condition(g) {\n    throw \"boom\";\n}");
    assert_eq!(
        (kind, message.as_str(), position),
        (ErrorKind::Throw, "boom", Some((2, 5)))
    );

    let (kind, ..) = kind_of(
        &engine,
        "fn deeper(n) { deeper(n + 1) }\nfn condition(g) { deeper(0) }",
    );
    assert_eq!(kind, ErrorKind::TooDeep);

    let (kind, ..) = kind_of(&engine, "fn condition(g) { 42 }");
    assert_eq!(kind, ErrorKind::Type);

    let verdict = normal.evaluate(&engine, group()).unwrap();
    assert!(verdict.fire);
}

#[test]
fn the_time_budget_ends_a_loop_before_the_operation_limit() {
    let limits = Limits {
        max_operations: u64::MAX,
        time_budget: std::time::Duration::from_millis(5),
        ..Limits::default()
    };
    let engine = engine(&limits);
    let (kind, message, _) = kind_of(&engine, "fn condition(g) { loop {} }");
    assert_eq!(kind, ErrorKind::Timeout, "{message}");
}

#[test]
fn scripts_cannot_reach_the_system() {
    let engine = engine(&Limits::default());
    // No such functions exist in rhai: they fail when called.
    for call in [
        "open(\"/etc/passwd\")",
        "read_file(\"/etc/passwd\")",
        "system(\"ls\")",
        "env(\"HOME\")",
    ] {
        let (kind, message, _) = kind_of(&engine, &format!("fn condition(g) {{ {call} }}"));
        assert_eq!(kind, ErrorKind::Runtime, "{call}: {message}");
        assert!(
            message.starts_with("Function not found"),
            "{call}: {message}"
        );
    }
    // Blocking and the wall clock are taken away, also through function pointers.
    for call in [
        "sleep(1)",
        "sleep(0.5)",
        "call(Fn(\"sleep\"), 1)",
        "timestamp()",
    ] {
        let (kind, message, _) = kind_of(&engine, &format!("fn condition(g) {{ {call} }}"));
        assert_eq!(kind, ErrorKind::Throw, "{call}: {message}");
    }
    // Modules and eval do not compile.
    for source in ["import \"x\" as m;", "fn condition(g) { eval(\"1\") }"] {
        let error = Rule::from_source(
            &engine,
            Path::new("t.rhai"),
            &format!("{source}\n{METADATA}"),
        );
        assert!(error.is_err(), "{source}");
    }
}

#[test]
fn constants_work_inside_functions() {
    let engine = engine(&Limits::default());
    let rule = rule(
        &engine,
        "const LIMIT = 10;\nconst ROUTES = [\"BALKAN\", \"CENTRAL\"];\nconst M = #{ k: 2 };\n\
         fn condition(g) { #{ fire: g.sum(\"persons\", \"7d\") > LIMIT && ROUTES.len() == 2 && g.label(\"route\") in ROUTES, value: ROUTES[1].len() * M.k } }",
    );
    let verdict = rule.evaluate(&engine, group()).unwrap();
    assert!(verdict.fire);
    assert_eq!(verdict.value, 14.0);
}

#[test]
fn sub_keys_must_be_declared_in_breakdown() {
    let engine = engine(&Limits::default());
    let (kind, message, _) = kind_of(
        &engine,
        "fn condition(g) { g.share(\"nationality\", \"AFG\", \"persons\", \"7d\") > 0.5 }",
    );
    assert_eq!(kind, ErrorKind::Throw);
    assert!(message.contains("breakdown"), "{message}");
}

#[test]
fn api_misuse_says_what_is_wrong() {
    let engine = engine(&Limits::default());
    let (_, message, position) = kind_of(
        &engine,
        "fn condition(g) {\n  g.sum(\"persns\", \"7d\") > 1\n}",
    );
    assert!(
        message.starts_with("g.sum: \"persns\" is not a field"),
        "{message}"
    );
    assert_eq!(position.map(|p| p.0), Some(2));
    let (_, message, _) = kind_of(
        &engine,
        "fn condition(g) { g.sum(\"persons\", \"7x\") > 1 }",
    );
    assert!(message.contains("unit must be h, d or w"), "{message}");
    let (_, message, _) = kind_of(
        &engine,
        "fn condition(g) { g.daily(\"persons\", 99999999999).len() > 1 }",
    );
    assert!(message.contains("n must be between"), "{message}");
    let (_, message, _) = kind_of(
        &engine,
        "fn condition(g) { g.sum(\"persons\", \"99999999999999999w\") > 1 }",
    );
    assert!(message.contains("longer than"), "{message}");
    let (_, message, _) = kind_of(&engine, "fn condition(g) { g.event.dead > 0 }");
    assert!(!message.is_empty());
}

#[test]
fn constants_work_inside_closures() {
    let engine = engine(&Limits::default());
    let rule = rule(
        &engine,
        "const LIMIT = 4;\nconst NAMES = [\"a\"];\n\
         fn condition(g) { let busy = g.daily(\"persons\", 3).filter(|x| x > LIMIT && NAMES.len() == 1); #{ fire: busy.len() == 3, value: busy.len() } }",
    );
    let verdict = rule.evaluate(&engine, group()).unwrap();
    assert_eq!((verdict.fire, verdict.value), (true, 3.0));
}

#[test]
fn rules_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Rule>();
    shared::<Engine>();
}
