//! The script API over a group's state, checked against hand-computed values.

mod common;

use common::{TODAY, event, nationality};
use relec_rules::{
    group::Group,
    sandbox::{Limits, engine},
    template,
    time::{DAY_MS, end_of},
};
use relec_schemas::IncidentCategory;
use rhai::{Dynamic, Scope};

/// One event a day for 14 days: `k + 1` persons `k` days ago, with 1 Afghan and 3
/// Syrians, and smuggling on even days.
fn fortnight() -> Group {
    let events: Vec<_> = (0..14)
        .map(|k| {
            let mut e = event(TODAY - k, k as i32 + 1);
            e.nationalities = vec![nationality("AFG", 1), nationality("SYR", 3)];
            if k % 2 == 0 {
                e.category = IncidentCategory::Smuggling;
            }
            e
        })
        .collect();
    common::group(
        common::state(&events, &["nationality", "category"]),
        TODAY,
        &[("route", "BALKAN")],
        None,
    )
}

fn eval(g: &Group, expr: &str) -> Dynamic {
    let engine = engine(&Limits::default());
    let mut scope = Scope::new();
    scope.push("g", g.clone());
    engine
        .eval_with_scope::<Dynamic>(&mut scope, expr)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
}

fn float(g: &Group, expr: &str) -> f64 {
    eval(g, expr)
        .as_float()
        .unwrap_or_else(|t| panic!("{expr}: {t}"))
}

fn floats(g: &Group, expr: &str) -> Vec<f64> {
    eval(g, expr)
        .into_typed_array::<f64>()
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
}

#[test]
fn sums_over_windows() {
    let g = fortnight();
    assert_eq!(float(&g, r#"g.sum("persons", "7d")"#), 28.0); // 1 + ... + 7
    assert_eq!(float(&g, r#"g.sum("persons", "7d", 7)"#), 77.0); // 8 + ... + 14
    assert_eq!(float(&g, r#"g.sum("persons", "1w", 1)"#), 35.0); // 2 + ... + 8
    assert_eq!(float(&g, r#"g.count("14d")"#), 14.0);
    assert_eq!(float(&g, r#"g.count("48h", 13)"#), 1.0); // days 13 and 14 back
    assert_eq!(float(&g, r#"g.sum("dead", "14d")"#), 0.0);
}

#[test]
fn series_and_baselines() {
    let g = fortnight();
    assert_eq!(floats(&g, r#"g.daily("persons", 3)"#), [3.0, 2.0, 1.0]);
    assert_eq!(floats(&g, r#"g.weekly("persons", 3)"#), [0.0, 77.0, 28.0]);
    assert_eq!(floats(&g, r#"g.baseline("persons", "7d", 2)"#), [0.0, 77.0]);
    assert_eq!(float(&g, r#"g.baseline_mean("persons", "7d", 2)"#), 38.5);
    // Sample sd of [0, 77]: 77 / sqrt(2).
    assert!((float(&g, r#"g.baseline_sd("persons", "7d", 2)"#) - 77.0 / 2f64.sqrt()).abs() < 1e-9);
    // Daily baselines: the 3 days before today.
    assert_eq!(
        floats(&g, r#"g.baseline("persons", "1d", 3)"#),
        [4.0, 3.0, 2.0]
    );
}

#[test]
fn shares_and_sub_keys() {
    let g = fortnight();
    // Persons are split by nationality counts; the share is of known nationalities.
    assert_eq!(
        float(&g, r#"g.share("nationality", "AFG", "persons", "7d")"#),
        0.25
    );
    assert_eq!(
        float(&g, r#"g.sub_sum("nationality", "SYR", "persons", "7d")"#),
        21.0
    );
    assert_eq!(
        float(&g, r#"g.share("category", "SMUGGLING", "events", "14d")"#),
        0.5
    );
    // Days 1, 3, 5 back are crossings: 2 + 4 + 6 of 28 persons... of the 7-day window.
    assert_eq!(
        float(
            &g,
            r#"g.share("category", "IRREGULAR_CROSSING", "persons", "7d")"#
        ),
        12.0 / 28.0
    );
    assert_eq!(
        float(&g, r#"g.share("nationality", "IRQ", "persons", "7d")"#),
        0.0
    );
    assert_eq!(
        eval(&g, r#"g.sub_keys("nationality", "7d")"#).to_string(),
        r#"["AFG", "SYR"]"#
    );
}

#[test]
fn times_and_labels() {
    let g = fortnight();
    let first = (TODAY - 13) * DAY_MS + 3_600_000;
    let last = TODAY * DAY_MS + 3_600_000;
    assert_eq!(eval(&g, "g.first_seen()").as_int(), Ok(first));
    assert_eq!(eval(&g, "g.last_seen()").as_int(), Ok(last));
    assert_eq!(
        eval(&g, r#"g.first_seen("nationality", "AFG")"#).as_int(),
        Ok(first)
    );
    assert!(eval(&g, r#"g.last_seen("nationality", "IRQ")"#).is_unit());
    assert_eq!(eval(&g, "g.last_reported()").as_int(), Ok(last + 3_600_000));
    assert_eq!(eval(&g, "g.days_since_seen()").as_int(), Ok(1));
    assert_eq!(eval(&g, "g.now").as_int(), Ok(end_of(TODAY)));
    assert_eq!(
        eval(&g, "g.day").into_string().unwrap(),
        template::date(TODAY)
    );
    assert_eq!(
        eval(&g, "date(g.last_seen())").into_string().unwrap(),
        template::date(TODAY)
    );
    assert_eq!(
        eval(&g, r#"g.label("route")"#).into_string().unwrap(),
        "BALKAN"
    );
    assert!(eval(&g, "g.event").is_unit());

    // A point quiet for 40 days before today: unseen for 30 days, not for 90.
    let events = [event(TODAY - 100, 3), event(TODAY - 40, 3), event(TODAY, 3)];
    let g = common::group(common::state(&events, &[]), TODAY, &[], None);
    assert_eq!(eval(&g, "g.days_since_seen()").as_int(), Ok(40));
    assert_eq!(
        eval(&g, r#"g.count("1d") > 0 && g.count("30d", 1) == 0"#).as_bool(),
        Ok(true)
    );
    assert_eq!(
        eval(&g, r#"g.count("1d") > 0 && g.count("90d", 1) == 0"#).as_bool(),
        Ok(false)
    );
    let g = common::group(common::state(&events[2..], &[]), TODAY, &[], None);
    assert!(eval(&g, "g.days_since_seen()").is_unit());
}

#[test]
fn the_event_field_by_field() {
    let mut e = event(TODAY, 4);
    e.dead = 2;
    e.border_section = None;
    let route = e.route.clone();
    let g = common::group(common::state(&[e.clone()], &[]), TODAY, &[], Some(e));
    assert_eq!(eval(&g, "g.event.dead").as_int(), Ok(2));
    assert_eq!(
        eval(&g, "g.event.category").into_string().unwrap(),
        "IRREGULAR_CROSSING"
    );
    assert!(eval(&g, "g.event.border_section").is_unit());
    assert_eq!(
        eval(&g, r#"g.event["route"]"#).into_string().unwrap(),
        route
    );
    assert_eq!(eval(&g, r#""dead" in g.event"#).as_bool(), Ok(true));
    assert_eq!(eval(&g, r#""deadly" in g.event"#).as_bool(), Ok(false));
    assert_eq!(eval(&g, "g.event.to_map().dead").as_int(), Ok(2));
    assert_eq!(eval(&g, "g.event.keys().len()").as_int(), Ok(23));
    assert_eq!(eval(&g, "type_of(g.event)").into_string().unwrap(), "Event");
    // A misspelt field is an error, not `()`, whichever way it is read.
    for expr in ["g.event.deadd", r#"g.event["deadd"]"#] {
        let mut scope = Scope::new();
        scope.push("g", g.clone());
        let result = engine(&Limits::default()).eval_with_scope::<Dynamic>(&mut scope, expr);
        assert!(result.is_err(), "{expr}: {result:?}");
    }
}

#[test]
fn statistics_over_arrays() {
    let g = fortnight();
    assert_eq!(float(&g, "sum([1, 2.5, 3])"), 6.5);
    assert_eq!(float(&g, "mean([1, 2, 3, 6])"), 3.0);
    assert_eq!(
        float(&g, "sd([2, 4, 4, 4, 5, 5, 7, 9])"),
        (32.0f64 / 7.0).sqrt()
    );
    assert_eq!(float(&g, "max([1, 7.5, 3])"), 7.5);
    assert_eq!(float(&g, r#"min(g.daily("persons", 3))"#), 1.0);
    assert_eq!(float(&g, r#"g.daily("persons", 3).max()"#), 3.0);
    assert_eq!(float(&g, "mean([])"), 0.0);
    assert_eq!(float(&g, "max(2, 3.5)"), 3.5);
}
