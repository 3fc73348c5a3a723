//! The detectors as a rule script calls them: each function gives the verdict of
//! `relec-detect` at the series' last point, options are checked key by key, and the work
//! of one call is bounded.

mod common;

use std::{path::Path, time::Instant};

use common::{TODAY, event};
use relec_detect::{
    CusumParams, EarsMethod, EarsParams, Evaluation, EwmaParams, FarringtonParams, FlexibleParams,
    TimeRange,
};
use relec_rules::{
    detectors::MAX_SERIES,
    rule::Rule,
    sandbox::{Limits, engine},
    time::{DAY_MS, end_of},
};
use rhai::{Dynamic, Map, Scope};

fn eval(expr: &str) -> Result<Dynamic, String> {
    let engine = engine(&Limits::default());
    engine
        .eval_with_scope::<Dynamic>(&mut Scope::new(), expr)
        .map_err(|e| e.to_string())
}

/// The start of a long expression, for messages.
fn short(expr: &str) -> String {
    expr.chars().take(120).collect()
}

fn map(expr: &str) -> Map {
    eval(expr)
        .unwrap_or_else(|e| panic!("{}: {e}", short(expr)))
        .try_cast::<Map>()
        .unwrap_or_else(|| panic!("{}: not a map", short(expr)))
}

fn error(expr: &str) -> String {
    match eval(expr) {
        Ok(v) => panic!("{}: expected an error, got {v}", short(expr)),
        Err(e) => e,
    }
}

fn float(m: &Map, key: &str) -> Option<f64> {
    let v = &m[key];
    (!v.is_unit()).then(|| v.as_float().unwrap_or_else(|t| panic!("{key}: {t}")))
}

fn flag(m: &Map, key: &str) -> bool {
    m[key].as_bool().unwrap_or_else(|t| panic!("{key}: {t}"))
}

fn rhai_array(series: &[f64]) -> String {
    let items: Vec<String> = series.iter().map(|x| format!("{x:?}")).collect();
    format!("[{}]", items.join(", "))
}

/// A weekly-looking series with a rise at the end: 5 + (t mod 7), then `last`.
fn series(n: usize, last: f64) -> Vec<f64> {
    let mut s: Vec<f64> = (0..n - 1).map(|t| 5.0 + (t % 7) as f64).collect();
    s.push(last);
    s
}

/// Seven years of weekly counts with a yearly wave, as the Farrington detectors want.
fn seasonal(last: f64) -> Vec<f64> {
    let mut s: Vec<f64> = (0..7 * 52)
        .map(|t| (20.0 + 8.0 * (t as f64 * std::f64::consts::TAU / 52.0).sin()).round())
        .collect();
    *s.last_mut().unwrap() = last;
    s
}

fn assert_verdict(m: &Map, e: &Evaluation) {
    assert_eq!(flag(m, "alarm"), e.alarm.unwrap_or(false), "{m:?} vs {e:?}");
    assert_eq!(float(m, "upperbound"), e.upperbound, "{m:?} vs {e:?}");
    assert_eq!(float(m, "observed"), Some(e.observed));
}

fn last_point(n: usize) -> Option<TimeRange> {
    Some(TimeRange::new(n, n))
}

#[test]
fn series_detectors_give_the_library_verdict_at_the_last_point() {
    let s = series(28, 30.0);
    let a = rhai_array(&s);
    for (name, method) in [
        ("ears_c1", EarsMethod::C1),
        ("ears_c2", EarsMethod::C2),
        ("ears_c3", EarsMethod::C3),
    ] {
        let expected = relec_detect::ears_c(
            &s,
            &EarsParams {
                range: last_point(s.len()),
                ..EarsParams::new(method)
            },
        )
        .unwrap();
        assert_verdict(&map(&format!("{name}({a})")), &expected[0]);
        let expected = relec_detect::ears_c(
            &s,
            &EarsParams {
                range: last_point(s.len()),
                alpha: 0.01,
                baseline: 10,
                min_sigma: 2.0,
                method,
            },
        )
        .unwrap();
        let m = map(&format!(
            "{name}({a}, #{{ alpha: 0.01, baseline: 10, min_sigma: 2 }})"
        ));
        assert_verdict(&m, &expected[0]);
    }
    assert!(
        flag(&map(&format!("ears_c2({a})")), "alarm"),
        "30 after 5..11"
    );

    // CUSUM and EWMA: the first `reference` points are the in-control values.
    let expected = relec_detect::cusum(
        &s,
        &CusumParams {
            range: Some(TimeRange::new(15, 28)),
            k: 0.5,
            h: 4.0,
            ..CusumParams::default()
        },
    )
    .unwrap();
    let m = map(&format!("cusum({a}, #{{ k: 0.5, h: 4, reference: 14 }})"));
    assert_verdict(&m, expected.last().unwrap());
    // The default reference is the first half of the series.
    assert_verdict(
        &map(&format!("cusum({a}, #{{ k: 0.5, h: 4 }})")),
        expected.last().unwrap(),
    );
    let expected = relec_detect::cusum(
        &s,
        &CusumParams {
            range: Some(TimeRange::new(1, 28)),
            m: Some(8.0),
            trans: relec_detect::CusumTrans::Rossi,
            ..CusumParams::default()
        },
    )
    .unwrap();
    let m = map(&format!(
        r#"cusum({a}, #{{ m: 8.0, reference: 0, trans: "rossi" }})"#
    ));
    assert_verdict(&m, expected.last().unwrap());

    let expected = relec_detect::ewma(
        &s,
        &EwmaParams {
            range: Some(TimeRange::new(22, 28)),
            lambda: 0.3,
            l: 2.5,
        },
    )
    .unwrap();
    let m = map(&format!(
        "ewma({a}, #{{ lambda: 0.3, l: 2.5, reference: 21 }})"
    ));
    assert_verdict(&m, expected.last().unwrap());
    assert!(flag(&m, "alarm"));

    // Farrington on weekly data.
    let s = seasonal(60.0);
    let a = rhai_array(&s);
    let expected = relec_detect::farrington(
        &s,
        &FarringtonParams {
            range: last_point(s.len()),
            b: 3,
            ..FarringtonParams::default()
        },
    )
    .unwrap();
    let m = map(&format!("farrington({a}, #{{ b: 3 }})"));
    assert_verdict(&m, &expected[0]);
    assert!(flag(&m, "alarm"), "{m:?}");
    let expected = relec_detect::farrington_flexible(
        &s,
        &FlexibleParams {
            range: last_point(s.len()),
            b: 4,
            no_periods: 10,
            limit54: (0.0, 4),
            threshold_method: relec_detect::ThresholdMethod::NbPlugin,
            ..FlexibleParams::default()
        },
    )
    .unwrap();
    let m = map(&format!(
        r#"farrington_flexible({a}, #{{ b: 4, no_periods: 10, limit54: [0, 4], threshold_method: "nbPlugin" }})"#
    ));
    assert_verdict(&m, &expected[0]);
    assert!(flag(&m, "alarm"), "{m:?}");
    // An ordinary week does not alarm.
    let m = map(&format!(
        "farrington_flexible({}, #{{ b: 4 }})",
        rhai_array(&seasonal(20.0))
    ));
    assert!(!flag(&m, "alarm"), "{m:?}");
}

#[test]
fn options_and_series_are_checked_with_the_key_named() {
    let a = rhai_array(&series(28, 30.0));
    let cases = [
        (
            format!("ears_c2({a}, #{{ alhpa: 0.01 }})"),
            r#"ears_c2: unknown option "alhpa" (ears_c2 takes alpha, baseline, min_sigma)"#,
        ),
        (
            format!("ears_c2({a}, #{{ alpha: 2 }})"),
            "ears_c2: alpha: must lie strictly between 0 and 1",
        ),
        (
            format!(r#"ears_c2({a}, #{{ alpha: "low" }})"#),
            "ears_c2: alpha: must be a number, not string",
        ),
        (
            format!("ears_c2({a}, #{{ baseline: 7.5 }})"),
            "ears_c2: baseline: must be a whole number, not f64",
        ),
        (
            format!("ears_c3({a}, #{{ baseline: 2 }})"),
            "ears_c3: baseline: the minimum baseline is 3",
        ),
        (
            format!("ears_c2({a}, #{{ baseline: 26 }})"),
            "ears_c2: the series has 28 points; a baseline of 26 with 2 points of guard band \
             needs at least 29",
        ),
        (
            format!(r#"cusum({a}, #{{ trans: "log" }})"#),
            r#"cusum: trans: "log" is not one of standard"#,
        ),
        (
            format!("cusum({a}, #{{ reference: 28 }})"),
            "cusum: reference: 28 points leave none of the 28 to judge",
        ),
        (
            format!("cusum({a}, #{{ reference: 0 }})"),
            "cusum: reference: 0 points; the in-control values need at least 1",
        ),
        (
            format!("ewma({a}, #{{ lambda: 0 }})"),
            "ewma: lambda: must lie in (0, 1]",
        ),
        (
            format!("farrington({a})"),
            "farrington: the series has 28 points; b = 5 periods of 52 points and a window of \
             w = 3 around the oldest needs at least 264",
        ),
        (
            format!("farrington({a}, #{{ w: 30 }})"),
            "farrington: w: 30: the window 2w + 1 must fit in a period of 52",
        ),
        (
            format!("farrington({a}, #{{ limit54: 5 }})"),
            "farrington: limit54: must be [cases, period], e.g. [5, 4]",
        ),
        (
            format!("farrington({a}, #{{ b: 4, period: 365 }})"),
            "farrington: b: 4 periods of 365 points are more than the 1100 baseline points",
        ),
        (
            format!("farrington_flexible({a}, #{{ no_periods: 40 }})"),
            "farrington_flexible: no_periods: 40 must be 1 to 12",
        ),
        (
            "ears_c2([1, 2, \"x\"])".to_owned(),
            "ears_c2: element 2 is string, not a number",
        ),
        (
            "ewma([1, 2, -3, 4])".to_owned(),
            "ewma: element 2 is -3; counts must be finite and >= 0",
        ),
        ("ears_c1([])".to_owned(), "ears_c1: the series is empty"),
        (
            format!("let a = []; a.pad({}, 1.0); ears_c1(a)", MAX_SERIES + 1),
            "ears_c1: the series has 3661 points, more than the 3660 a detector takes",
        ),
        (
            r#"spike(10, 2, #{ spike_type: "sideways" })"#.to_owned(),
            r#"spike: spike_type: "sideways" is not one of up, down, both"#,
        ),
        (
            "spike(10, 2, #{ spike_height: 0 })".to_owned(),
            "spike: spike_height: must be a number above 0",
        ),
        (
            "share_shift(60, 50, 10, 50)".to_owned(),
            "share_shift: part, total: 60 of 50 is not a count within its total",
        ),
        (
            r#"share_shift(30, 50, 10, 50, #{ alternative: "up" })"#.to_owned(),
            r#"share_shift: alternative: "up" is not one of greater, less, two_sided"#,
        ),
        (
            "new_term(\"yesterday\", 0, 100)".to_owned(),
            "new_term: first_seen is string, not a time in milliseconds (or () for never)",
        ),
        (
            r#"flatline(0, 1000, #{ timeframe: "3 days" })"#.to_owned(),
            r#"flatline: timeframe: "3 days" is not a duration like 72h, 3d or 2w"#,
        ),
        (
            "flatline(0, 1000, #{ threshold: 5 })".to_owned(),
            "flatline: count: a threshold above 1 needs the count of events in the timeframe",
        ),
    ];
    for (expr, expected) in cases {
        let e = error(&expr);
        assert!(
            e.contains(expected),
            "{}:\n  got      {e}\n  expected {expected}",
            short(&expr)
        );
    }
}

#[test]
fn spike_share_shift_new_term_and_flatline() {
    let m = map("spike(45, 10, #{ spike_height: 4, threshold_cur: 15 })");
    assert!(flag(&m, "alarm"));
    assert_eq!(float(&m, "ratio"), Some(4.5));
    assert_eq!(float(&m, "upperbound"), Some(40.0));
    assert_eq!(float(&m, "lowerbound"), Some(2.5));
    assert!(!flag(&map("spike(10, 0, #{ threshold_cur: 15 })"), "alarm"));
    let m = map(r#"spike(1, 20, #{ spike_type: "down" })"#);
    assert!(flag(&m, "alarm"));
    assert_eq!(float(&map("spike(5, 0)"), "ratio"), None);

    // R: prop.test(c(30, 20), c(100, 100), correct = FALSE, alternative = "greater").
    let m = map("share_shift(30, 100, 20, 100)");
    assert!(!flag(&m, "alarm"));
    assert!((float(&m, "shift").unwrap() - 0.1).abs() < 1e-12);
    assert!((float(&m, "p_value").unwrap() / 0.051_235_217_429_874_72 - 1.0).abs() < 1e-10);
    assert_eq!(float(&m, "observed"), Some(0.3));
    assert_eq!(float(&m, "before"), Some(0.2));
    let m = map("share_shift(120, 200, 60, 200, #{ min_shift: 0.2, alpha: 0.001 })");
    assert!(flag(&m, "alarm"));
    assert!(float(&m, "z").unwrap() > 5.0);
    let m = map("share_shift(0, 0, 5, 50)");
    assert_eq!((float(&m, "z"), float(&m, "p_value")), (None, None));

    let now = end_of(TODAY);
    let first = |days_ago: i64| TODAY * DAY_MS - days_ago * DAY_MS + 3_600_000;
    let m = map(&format!("new_term({}, {now}, 100)", first(0)));
    assert!(flag(&m, "alarm"));
    assert_eq!(m["age_days"].as_int(), Ok(0));
    assert!(!flag(
        &map(&format!("new_term({}, {now}, 100)", first(1))),
        "alarm"
    ));
    let m = map(&format!(
        "new_term({}, {now}, 100, #{{ within_days: 7 }})",
        first(6)
    ));
    assert!(flag(&m, "alarm"));
    assert!(
        !flag(&map(&format!("new_term({}, {now}, 20)", first(0))), "alarm"),
        "short history"
    );
    assert!(map(&format!("new_term((), {now}, 100)"))["age_days"].is_unit());

    let hour = 3_600_000;
    let m = map(&format!("flatline({}, {now})", now - 72 * hour));
    assert!(flag(&m, "alarm"));
    assert_eq!(float(&m, "silent_hours"), Some(72.0));
    assert_eq!(float(&m, "count"), Some(0.0));
    assert!(!flag(
        &map(&format!("flatline({}, {now})", now - 71 * hour)),
        "alarm"
    ));
    let m = map(&format!(
        r#"flatline({}, {now}, #{{ timeframe: "1d", threshold: 10, count: 9 }})"#,
        now - hour
    ));
    assert!(flag(&m, "alarm"));
    let m = map(&format!(
        r#"flatline({}, {now}, #{{ first_seen: {} }})"#,
        now - 72 * hour,
        now - 80 * hour
    ));
    assert!(flag(&m, "alarm"));
    assert!(
        !flag(&map(&format!("flatline((), {now})")), "alarm"),
        "never seen"
    );
}

/// The brief's example, as a rule: EARS C2 over four weeks of daily persons.
#[test]
fn a_rule_condition_reads_the_verdict() {
    let source = r#"
fn condition(g) {
    let r = ears_c2(g.daily("persons", 28), #{ alpha: 0.001 });
    #{ fire: r.alarm, value: r.observed, threshold: r.upperbound }
}
#{ id: "c2", title: "C2", severity: "low", group_by: ["route"] }
"#;
    let engine = engine(&Limits::default());
    let rule = Rule::from_source(&engine, Path::new("c2.rhai"), source).unwrap();
    let group = |today: i32| {
        let events: Vec<_> = (0..28)
            .map(|k| event(TODAY - k, if k == 0 { today } else { 10 + (k % 3) as i32 }))
            .collect();
        common::group(
            common::state(&events, &[]),
            TODAY,
            &[("route", "BALKAN")],
            None,
        )
    };
    let verdict = rule.evaluate(&engine, group(40)).unwrap();
    assert!(verdict.fire);
    assert_eq!(verdict.value, 40.0);
    let threshold = verdict.threshold.unwrap();
    assert!(threshold > 11.0 && threshold < 40.0, "{threshold}");
    assert!(!rule.evaluate(&engine, group(11)).unwrap().fire);
}

/// The heaviest call the bounds allow still returns in a few milliseconds in an optimised
/// build; printed, not asserted (timings belong to benchmarks).
#[test]
fn the_largest_series_and_model_run_without_running_away() {
    let n = MAX_SERIES;
    let s: Vec<f64> = (0..n).map(|t| (30 + (t * 7919) % 23) as f64).collect();
    let a = rhai_array(&s);
    for call in [
        format!("ears_c3({a}, #{{ baseline: 3000 }})"),
        format!("cusum({a})"),
        format!("ewma({a})"),
        format!("farrington({a}, #{{ b: 3, w: 182, period: 365 }})"),
        format!("farrington_flexible({a}, #{{ b: 3, w: 3, period: 365, no_periods: 12 }})"),
        format!("farrington_flexible({a}, #{{ b: 21, w: 3, period: 52, no_periods: 12 }})"),
    ] {
        let started = Instant::now();
        let m = map(&call);
        println!(
            "{}: {:?} ({} ms)",
            &call[..call.find('(').unwrap()],
            m,
            started.elapsed().as_millis()
        );
    }
}
