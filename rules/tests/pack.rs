//! The acceptance-pack rules on hand-made states: each fires on what it is meant to
//! catch and stays quiet otherwise.

mod common;

use std::{collections::BTreeMap, path::Path};

use common::{TODAY, event};
use relec_rules::{
    rule::Rule,
    sandbox::{Limits, engine},
};
use relec_schemas::IncidentCategory;

fn pack_rule(name: &str) -> Rule {
    Rule::load(&engine(&Limits::default()), &common::pack_dir().join(name)).unwrap()
}

/// Eight weeks at 10 persons a day, then a last week at `last_week` a day.
fn route(last_week: i32) -> relec_rules::group::Group {
    let events: Vec<_> = (0..63)
        .map(|k| event(TODAY - k, if k < 7 { last_week } else { 10 }))
        .collect();
    common::group(
        common::state(&events, &[]),
        TODAY,
        &[("route", "BALKAN")],
        None,
    )
}

#[test]
fn route_spike_fires_on_a_spike_only() {
    let engine = engine(&Limits::default());
    let rule = pack_rule("route_spike.rhai");

    let spike = rule.evaluate(&engine, route(60)).unwrap();
    assert!(spike.fire);
    assert_eq!(spike.value, 420.0);
    assert_eq!(spike.threshold, Some(210.0));
    let labels = BTreeMap::from([("route".to_owned(), "BALKAN".to_owned())]);
    assert_eq!(
        rule.render_labels(&labels, &spike, TODAY)["route"],
        "BALKAN"
    );
    assert_eq!(
        rule.render_annotations(&labels, &spike, TODAY)["summary"],
        "BALKAN: 420 persons in 7 days, over 210 (8-week mean 70)"
    );

    let flat = rule.evaluate(&engine, route(10)).unwrap();
    assert!(!flat.fire);
    assert_eq!(flat.value, 70.0);

    let mut e = event(TODAY, 5);
    assert!(rule.matches(&e));
    e.category = IncidentCategory::DocumentFraud;
    assert!(!rule.matches(&e));
}

#[test]
fn death_or_missing_fires_on_any_casualty() {
    let engine = engine(&Limits::default());
    let rule = pack_rule("death_or_missing.rhai");
    let labels = [("reporting_country", "GRC"), ("route", "BALKAN")];
    let immediate = |dead, missing| {
        let mut e = event(TODAY, 12);
        e.dead = dead;
        e.missing = missing;
        let g = common::group(common::state(&[e.clone()], &[]), TODAY, &labels, Some(e));
        rule.evaluate(&engine, g).unwrap()
    };

    let verdict = immediate(2, 0);
    assert!(verdict.fire);
    assert_eq!(verdict.value, 2.0);
    let group = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let annotations = rule.render_annotations(&group, &verdict, TODAY);
    assert_eq!(annotations["incident"], event(TODAY, 12).event_id);
    let summary = &annotations["summary"];
    assert_eq!(
        summary,
        &format!(
            "2 dead and 0 missing on BALKAN, reported by GRC ({})",
            relec_rules::template::date(TODAY)
        )
    );
    assert!(immediate(0, 1).fire);
    assert!(!immediate(0, 0).fire);
    assert!(rule.matches(&event(TODAY, 1)));
}

#[test]
fn the_pack_files_start_with_a_comment() {
    for entry in std::fs::read_dir(common::pack_dir()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("// "), "{}", Path::new(&path).display());
    }
}
