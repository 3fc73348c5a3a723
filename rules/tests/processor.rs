//! The rules of one partition over the simulator's streams, without Kafka: the pack fires on
//! the scenarios and stays quiet on the baseline, arrival order within the lateness does not
//! change the alerts, later events are counted, and broken rules do not disturb the others.

use std::{collections::BTreeMap, path::Path, sync::Arc};

use relec_ingest::simulate::{SimConfig, Simulation};
use relec_rules::{
    processor::{Processor, Settings, route_keys},
    rule::{Rule, load_dir},
    sandbox::{Limits, engine},
};
use relec_schemas::{Alert, AlertStatus, IncidentEvent};

/// 2025-01-06, a Monday.
const START_MS: i64 = 1_736_121_600_000;
const SETTINGS: Settings = Settings {
    lateness_ms: 3_600_000,
    horizon_days: 400,
};

fn stream(scenarios: &[&str]) -> Vec<IncidentEvent> {
    let config = SimConfig {
        seed: 11,
        start_ms: START_MS,
        days: 140,
        scale: 1.0,
        scenarios: scenarios
            .iter()
            .map(|s| s.parse().expect("scenario"))
            .collect(),
        // The baseline has no deaths, so "any death" fires only on a casualty scenario.
        background_casualties: false,
    };
    Simulation::new(config).events().collect()
}

fn rules(extra: &[(&str, &str)]) -> (Arc<rhai::Engine>, Vec<Arc<Rule>>) {
    let engine = engine(&Limits::default());
    let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("pack");
    let (rules, errors) = load_dir(&engine, &pack);
    assert!(errors.is_empty(), "{errors:?}");
    let mut rules: Vec<Arc<Rule>> = rules.into_iter().map(Arc::new).collect();
    for (name, source) in extra {
        let rule = Rule::from_source(&engine, Path::new(name), source).expect("extra rule loads");
        rules.push(Arc::new(rule));
    }
    (Arc::new(engine), rules)
}

struct Run {
    transitions: Vec<Alert>,
    late: usize,
    errors: Vec<String>,
}

fn run(events: impl IntoIterator<Item = IncidentEvent>, extra: &[(&str, &str)]) -> Run {
    let (engine, rules) = rules(extra);
    let mut p = Processor::new(engine, rules, SETTINGS);
    let mut out = Run {
        transitions: Vec::new(),
        late: 0,
        errors: Vec::new(),
    };
    let mut last = 0;
    for e in events {
        last = last.max(e.reported_at);
        let o = p.process(e);
        out.late += usize::from(o.late);
        out.transitions.extend(o.transitions);
        out.errors
            .extend(o.errors.into_iter().map(|(id, e)| format!("{id}: {e}")));
    }
    out.transitions
        .extend(p.advance_to(last + 2 * 86_400_000).transitions);
    out
}

fn of<'a>(t: &'a [Alert], rule: &str) -> Vec<&'a Alert> {
    t.iter().filter(|a| a.rule_id == rule).collect()
}

#[test]
fn route_spike_fires_on_the_spike_and_stays_quiet_on_the_baseline() {
    let baseline = run(stream(&[]), &[]);
    for rule in [
        "route_spike",
        "route_shift",
        "new_crossing_point",
        "reporting_silence",
        "death_or_missing",
    ] {
        assert_eq!(
            of(&baseline.transitions, rule),
            Vec::<&Alert>::new(),
            "{rule} on the baseline"
        );
    }

    let spiked = run(
        stream(&["spike:AFG-IRN-NIMROZ@day=100,days=7,factor=4"]),
        &[],
    );
    let spikes = of(&spiked.transitions, "route_spike");
    assert!(!spikes.is_empty(), "no spike alert");
    assert!(
        spikes
            .iter()
            .all(|a| a.labels.get("route").map(String::as_str) == Some("AFG-IRN-NIMROZ")),
        "{spikes:#?}"
    );
    assert_eq!(spikes[0].status, AlertStatus::Firing);
    assert_eq!(
        spikes.last().map(|a| a.status),
        Some(AlertStatus::Resolved),
        "the spike ends, so does the alert"
    );
    let fired_day = (spikes[0].window_end - START_MS) / 86_400_000;
    assert!((100..=108).contains(&fired_day), "fired on day {fired_day}");
    assert!(spikes[0].value > spikes[0].threshold.expect("threshold"));
    assert!(!spikes[0].evidence.is_empty() && spikes[0].evidence.len() <= Alert::MAX_EVIDENCE);
}

#[test]
fn route_shift_new_point_and_silence_fire_on_their_scenarios() {
    let run = run(
        stream(&[
            "shift:AFG@from=AFG-IRN-NIMROZ,to=PAK-IRN-TAFTAN,day=100,days=7,fraction=0.5",
            "new-point:TUR-DIYADIN-GREEN@day=110,share=0.2",
            "silence:PAK-FIA@day=115,hours=96",
        ]),
        &[],
    );
    let firing = |rule: &str, label: &str| -> Vec<String> {
        of(&run.transitions, rule)
            .iter()
            .filter(|a| a.status == AlertStatus::Firing)
            .filter_map(|a| a.labels.get(label).cloned())
            .collect()
    };
    let shifts = firing("route_shift", "route");
    assert!(shifts.contains(&"PAK-IRN-TAFTAN".to_owned()), "{shifts:?}");
    let shift = of(&run.transitions, "route_shift")[0];
    assert_eq!(
        shift.labels.get("nationality").map(String::as_str),
        Some("AFG"),
        "{shift:#?}"
    );
    assert_eq!(
        firing("new_crossing_point", "crossing_point"),
        ["TUR-DIYADIN-GREEN"]
    );
    assert_eq!(firing("reporting_silence", "agency"), ["PAK-FIA"]);
}

#[test]
fn a_mass_casualty_event_is_an_immediate_critical_alert() {
    let run = run(
        stream(&["casualty:IRN-TUR-VAN@day=90,dead=12,missing=5"]),
        &[],
    );
    let deaths = of(&run.transitions, "death_or_missing");
    let firing: Vec<&&Alert> = deaths
        .iter()
        .filter(|a| a.status == AlertStatus::Firing)
        .collect();
    assert_eq!(
        firing.len(),
        1,
        "only the scenario's casualties: {firing:#?}"
    );
    let mass = firing[0];
    assert_eq!(mass.value, 17.0);
    assert_eq!(
        mass.labels.get("route").map(String::as_str),
        Some("IRN-TUR-VAN")
    );
    assert_eq!(mass.severity, relec_schemas::Severity::Critical);
    assert_eq!(mass.evidence.len(), 1);
}

#[test]
fn a_report_without_dead_or_missing_is_not_routed_to_the_immediate_rules_groups() {
    let (_, rules) = rules(&[]);
    let events = stream(&["casualty:IRN-TUR-VAN@day=90,dead=12,missing=5"]);
    let country_and_route = |e: &IncidentEvent| route_keys(&rules, e).iter().any(|k| k.len() == 2);
    let (lost, calm): (Vec<&IncidentEvent>, Vec<&IncidentEvent>) =
        events.iter().partition(|e| e.dead + e.missing > 0);
    assert!(!lost.is_empty() && !calm.is_empty());
    assert!(lost.iter().all(|e| country_and_route(e)));
    assert!(!calm.iter().any(|e| country_and_route(e)));
}

#[test]
fn arrival_order_within_the_lateness_does_not_change_the_alerts() {
    let events = stream(&["spike:AFG-IRN-NIMROZ@day=100,days=7,factor=4"]);
    let in_order = run(events.clone(), &[]);

    // Reverse the order of every group of 200 events whose reports fall in one hour, as
    // if several partitions had been interleaved the other way round.
    let mut shuffled = Vec::with_capacity(events.len());
    for chunk in events.chunk_by(|a, b| a.reported_at / 3_600_000 == b.reported_at / 3_600_000) {
        for part in chunk.chunks(200) {
            shuffled.extend(part.iter().rev().cloned());
        }
    }
    assert_ne!(shuffled, events);
    let reordered = run(shuffled, &[]);
    assert_eq!(reordered.transitions, in_order.transitions);
    assert_eq!(reordered.late, 0);
}

#[test]
fn events_published_after_their_day_closed_are_counted_late() {
    let mut events = stream(&[]);
    // Hold back every 50th event of the first month by two days.
    let held: Vec<IncidentEvent> = events
        .iter()
        .step_by(50)
        .take_while(|e| e.reported_at < START_MS + 30 * 86_400_000)
        .cloned()
        .collect();
    let ids: std::collections::HashSet<&str> = held.iter().map(|e| e.event_id.as_str()).collect();
    let mut delayed: Vec<(i64, IncidentEvent)> = events
        .drain(..)
        .map(|e| {
            let at = if ids.contains(e.event_id.as_str()) {
                e.reported_at + 2 * 86_400_000
            } else {
                e.reported_at
            };
            (at, e)
        })
        .collect();
    delayed.sort_by_key(|(at, _)| *at);
    let run = run(delayed.into_iter().map(|(_, e)| e), &[]);
    assert_eq!(run.late, held.len());
}

const LOOPS: &str = r#"
fn condition(g) { loop { } }
#{ id: "loops", title: "Loops forever", severity: "low", group_by: ["route"] }
"#;
const HOARDS: &str = r#"
fn condition(g) { let s = "x"; loop { s += s; } }
#{ id: "hoards", title: "Builds a huge string", severity: "low", group_by: ["route"] }
"#;
const THROWS: &str = r#"
fn condition(g) { throw "boom"; }
#{ id: "throws", title: "Throws", severity: "low", group_by: ["route"] }
"#;

#[test]
fn broken_rules_are_cut_off_and_the_others_fire_as_before() {
    let events = stream(&["spike:AFG-IRN-NIMROZ@day=100,days=7,factor=4"]);
    let alone = run(events.clone(), &[]);
    let beside = run(
        events,
        &[
            ("loops.rhai", LOOPS),
            ("hoards.rhai", HOARDS),
            ("throws.rhai", THROWS),
        ],
    );
    assert_eq!(
        of(&beside.transitions, "route_spike"),
        of(&alone.transitions, "route_spike")
    );
    for (id, kind) in [("loops", "operations"), ("hoards", ""), ("throws", "boom")] {
        let errors: Vec<&String> = beside
            .errors
            .iter()
            .filter(|e| e.starts_with(&format!("{id}: ")))
            .collect();
        assert!(!errors.is_empty(), "{id} was not cut off");
        assert!(errors[0].contains(kind), "{}", errors[0]);
    }
    // Backing off: far fewer errors than days times routes.
    assert!(beside.errors.len() < 200, "{} errors", beside.errors.len());
}

/// Transitions in a fixed order, for runs whose partitions interleave differently.
fn sorted(mut t: Vec<Alert>) -> Vec<Alert> {
    t.sort_by(|a, b| {
        (a.generated_at, &a.fingerprint, a.status as u8).cmp(&(
            b.generated_at,
            &b.fingerprint,
            b.status as u8,
        ))
    });
    t
}

#[test]
fn keys_split_over_partitions_give_the_alerts_of_one() {
    let events = stream(&[
        "spike:AFG-IRN-NIMROZ@day=100,days=7,factor=4",
        "silence:PAK-FIA@day=115,hours=96",
        "casualty:IRN-TUR-VAN@day=90,dead=12,missing=5",
        "casualty:IRN-TUR-VAN@day=93,dead=2,missing=0",
        "casualty:IRN-TUR-VAN@day=94,dead=1,missing=1",
    ]);
    let whole = run(events.clone(), &[]);
    let (engine, rules) = rules(&[]);
    let mut parts: Vec<Processor> = (0..3)
        .map(|_| Processor::new(engine.clone(), rules.clone(), SETTINGS))
        .collect();
    let mut transitions = Vec::new();
    let (mut last, mut seen) = (0, 0);
    for e in events {
        last = last.max(e.reported_at);
        let e = Arc::new(e);
        for key in route_keys(&rules, &e) {
            let p = key.iter().map(|(_, v)| v.len()).sum::<usize>() % parts.len();
            transitions.extend(parts[p].process_keyed(&key, &e).transitions);
        }
        // The stage's watermark markers: every partition learns how far reports have got,
        // now and then (one commit may carry days of reports when the stage catches up).
        if seen % 2000 == 0 {
            for p in &mut parts {
                transitions.extend(p.advance_to(e.reported_at).transitions);
            }
        }
        seen += 1;
    }
    for p in &mut parts {
        transitions.extend(p.advance_to(last + 2 * 86_400_000).transitions);
    }
    assert!(!whole.transitions.is_empty());
    assert_eq!(sorted(transitions), sorted(whole.transitions));
}

#[test]
fn restoring_from_the_changelog_continues_as_if_nothing_happened() {
    let events = stream(&[
        "spike:AFG-IRN-NIMROZ@day=100,days=7,factor=4",
        "casualty:IRN-TUR-VAN@day=90,dead=12,missing=5",
    ]);
    let whole = run(events.clone(), &[]);
    let (engine, rules) = rules(&[]);
    // The compacted changelog: the latest value per key.
    let mut changelog: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut p = Processor::new(engine.clone(), rules.clone(), SETTINGS);
    let (mut committed, mut pending) = (Vec::new(), Vec::new());
    let mut position = 0; // committed input offset
    let mut i = 0;
    let (mut crashes, mut crashed_at) = (0, 0);
    while i < events.len() {
        pending.extend(p.process(events[i].clone()).transitions);
        i += 1;
        if i % 997 == 0 {
            // Commit: the changelog and the transitions with the input position.
            for (k, v) in p.checkpoint().expect("checkpoint") {
                match v {
                    Some(v) => changelog.insert(k, v),
                    None => changelog.remove(&k),
                };
            }
            committed.append(&mut pending);
            position = i;
        } else if i % 1409 == 0 && i > crashed_at {
            // Crash: what was not committed is lost, a new processor restores and the
            // input is read again from the committed position.
            crashes += 1;
            crashed_at = i;
            pending.clear();
            p = Processor::new(engine.clone(), rules.clone(), SETTINGS);
            for (k, v) in &changelog {
                p.restore(k, Some(v)).expect("restore");
            }
            i = position;
        }
    }
    committed.append(&mut pending);
    let last = events.iter().map(|e| e.reported_at).max().unwrap_or(0);
    committed.extend(p.advance_to(last + 2 * 86_400_000).transitions);
    assert!(crashes >= 5, "{crashes} crashes");
    assert_eq!(committed, whole.transitions);
}
