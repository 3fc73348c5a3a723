//! Whole-stream tests of the simulator: determinism, validity of every event, report-time
//! order, seasonality, and that each scenario shows in the counts a rule would look at.

use std::collections::{BTreeMap, HashSet};

use relec_schemas::{IncidentCategory, IncidentEvent};

use super::geography::{self, COUNTRIES, NATIONALITIES};
use super::plan::{DAY_MS, HOUR_MS, WEEKEND_FACTOR, weekday, weekly_factor};
use super::{SimConfig, Simulation, demo};

const START: i64 = super::DEMO_START_MS;

fn config(seed: u64, days: u32, scenarios: &[&str]) -> SimConfig {
    SimConfig {
        seed,
        start_ms: START,
        days,
        scale: 1.0,
        scenarios: scenarios.iter().map(|s| s.parse().unwrap()).collect(),
        background_casualties: true,
    }
}

fn run(config: SimConfig) -> Vec<IncidentEvent> {
    Simulation::new(config).events().collect()
}

fn day_of(event: &IncidentEvent) -> i64 {
    (event.occurred_at - START).div_euclid(DAY_MS)
}

/// Events on `route` that occurred on days `from .. until`.
fn on_route<'a>(
    events: &'a [IncidentEvent],
    route: &'a str,
    from: i64,
    until: i64,
) -> impl Iterator<Item = &'a IncidentEvent> {
    events
        .iter()
        .filter(move |e| e.route == route && (from..until).contains(&day_of(e)))
}

/// Everything the brief and ingest's validation require of an event.
fn problems(e: &IncidentEvent) -> Vec<String> {
    let mut p = Vec::new();
    let six = |c: &str| COUNTRIES.iter().any(|k| k.iso3 == c);
    if uuid::Uuid::parse_str(&e.event_id).is_err() {
        p.push("event_id is not a UUID".into());
    }
    match geography::agency(&e.reporting_agency) {
        Some(a) if a.country == e.reporting_country => {}
        _ => p.push(format!(
            "agency {} does not belong to {}",
            e.reporting_agency, e.reporting_country
        )),
    }
    match geography::route_index(&e.route) {
        Some(r) if geography::ROUTES[r].reporting_country == e.reporting_country => {}
        _ => p.push(format!(
            "route {} is not reported by {}",
            e.route, e.reporting_country
        )),
    }
    if !six(&e.reporting_country) {
        p.push("reporting country outside RELEC".into());
    }
    if e.occurred_at > e.reported_at {
        p.push("occurred after reported".into());
    }
    for (name, n) in [
        ("persons", e.persons),
        ("facilitators", e.facilitators),
        ("victims", e.victims),
        ("dead", e.dead),
        ("missing", e.missing),
    ] {
        if n < 0 {
            p.push(format!("{name} negative"));
        }
    }
    let mut total = 0;
    for n in &e.nationalities {
        if !NATIONALITIES.contains(&n.nationality.as_str())
            || n.count <= 0
            || n.minors < 0
            || n.minors > n.count
        {
            p.push(format!("bad nationality entry {n:?}"));
        }
        total += n.count;
    }
    if total > e.persons {
        p.push(format!(
            "nationalities add up to {total} > persons {}",
            e.persons
        ));
    }
    if let Some(l) = e.location
        && !((-90.0..=90.0).contains(&l.lat) && (-180.0..=180.0).contains(&l.lon))
    {
        p.push(format!("location {l:?} out of range"));
    }
    if !(1..=6).contains(&e.information_credibility) {
        p.push("credibility out of 1..6".into());
    }
    let needs = match e.category {
        IncidentCategory::Smuggling => e.facilitators > 0,
        IncidentCategory::Trafficking => e.victims > 0 && e.victims <= e.persons,
        IncidentCategory::DeathOrMissing => {
            e.dead + e.missing > 0 && e.dead + e.missing <= e.persons
        }
        _ => e.victims == 0 && e.dead == 0 && e.missing == 0,
    };
    if !needs {
        p.push(format!("counts do not fit {:?}", e.category));
    }
    p
}

#[test]
fn the_same_seed_gives_the_same_events_and_another_seed_others() {
    let a = run(config(1, 30, &["spike:IRN-TUR-VAN@day=10,days=3,factor=2"]));
    let b = run(config(1, 30, &["spike:IRN-TUR-VAN@day=10,days=3,factor=2"]));
    let c = run(config(2, 30, &["spike:IRN-TUR-VAN@day=10,days=3,factor=2"]));
    assert!(!a.is_empty());
    assert_eq!(a, b);
    assert_ne!(a.len(), 0);
    let ids_a: HashSet<_> = a.iter().map(|e| e.event_id.as_str()).collect();
    let ids_c: HashSet<_> = c.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids_a.len(), a.len(), "ids unique within a run");
    assert!(ids_a.is_disjoint(&ids_c), "another seed, other ids");
    assert_ne!(
        a.iter().map(|e| e.occurred_at).collect::<Vec<_>>(),
        c.iter().map(|e| e.occurred_at).collect::<Vec<_>>()
    );
}

#[test]
fn a_year_of_events_is_valid_ordered_and_of_the_promised_volume() {
    let days = 365;
    let events = run(config(3, days, &[]));
    let end = START + i64::from(days) * DAY_MS;
    for e in &events {
        let found = problems(e);
        assert!(found.is_empty(), "{found:?} in {e:#?}");
        assert!(e.occurred_at >= START && e.reported_at < end);
    }
    assert!(
        events
            .windows(2)
            .all(|w| w[0].reported_at <= w[1].reported_at),
        "ordered by reported_at"
    );
    let per_day = events.len() as f64 / f64::from(days);
    assert!(
        (500.0..=1500.0).contains(&per_day),
        "{per_day} events a day"
    );

    // The variety the brief asks for: every category, both late and prompt reports,
    // mostly GREEN/AMBER, optional fields both set and unset.
    let count = |f: &dyn Fn(&IncidentEvent) -> bool| events.iter().filter(|e| f(e)).count();
    let share = |f: &dyn Fn(&IncidentEvent) -> bool| count(f) as f64 / events.len() as f64;
    use IncidentCategory::*;
    assert!(share(&|e| e.category == IrregularCrossing) > 0.5);
    for category in [Smuggling, Trafficking, DocumentFraud, RefusalOfEntry, Other] {
        assert!(share(&|e| e.category == category) > 0.01, "{category:?}");
    }
    let deaths = count(&|e| e.category == DeathOrMissing);
    assert!((20..400).contains(&deaths), "{deaths} deaths a year");
    assert!(
        share(&|e| matches!(
            e.handling,
            relec_schemas::Tlp::Green | relec_schemas::Tlp::Amber
        )) > 0.8
    );
    assert!(share(&|e| e.handling == relec_schemas::Tlp::Red) > 0.005);
    assert!(share(&|e| e.reported_at - e.occurred_at > 2 * DAY_MS) > 0.05);
    assert!(share(&|e| e.reported_at - e.occurred_at < 6 * HOUR_MS) > 0.4);
    for (name, set) in [
        ("crossing_point", share(&|e| e.crossing_point.is_some())),
        ("location", share(&|e| e.location.is_some())),
        ("direction", share(&|e| e.direction.is_some())),
        ("modus_operandi", share(&|e| e.modus_operandi.is_some())),
        ("notes", share(&|e| e.notes.is_some())),
    ] {
        assert!(set > 0.02 && set < 0.98, "{name} set in {set:.3} of events");
    }
    assert!(share(&|e| e.nationalities.len() > 1) > 0.05, "mixed groups");
    let agencies: HashSet<_> = events.iter().map(|e| e.reporting_agency.as_str()).collect();
    assert_eq!(
        agencies.len(),
        Simulation::agencies().len(),
        "every agency reports"
    );
}

#[test]
fn dormant_points_stay_dormant_without_a_scenario() {
    let events = run(config(4, 60, &[]));
    let dormant: HashSet<_> = Simulation::routes()
        .iter()
        .flat_map(|r| r.points)
        .filter(|p| p.weight == 0.0)
        .map(|p| p.id)
        .collect();
    assert!(!dormant.is_empty());
    assert!(
        events
            .iter()
            .all(|e| !dormant.contains(e.crossing_point.as_deref().unwrap_or("")))
    );
}

#[test]
fn weekends_are_quieter_by_the_designed_factor() {
    // Turkey: Saturday and Sunday off. Count by day of occurrence, leaving out the last
    // three weeks, whose late reports are still outstanding at the end of the run.
    let days = 196;
    let events = run(config(5, days, &[]));
    let mut per_day = BTreeMap::new();
    for e in events.iter().filter(|e| e.reporting_country == "TUR") {
        *per_day.entry(day_of(e)).or_insert(0.0) += 1.0;
    }
    let turkey = geography::country("TUR").unwrap();
    let (mut weekday_sum, mut weekday_n, mut weekend_sum, mut weekend_n) = (0.0, 0.0, 0.0, 0.0);
    for day in 0..i64::from(days) - 21 {
        let n = per_day.get(&day).copied().unwrap_or(0.0);
        if turkey.weekend[weekday(START + day * DAY_MS)] {
            weekend_sum += n;
            weekend_n += 1.0;
        } else {
            weekday_sum += n;
            weekday_n += 1.0;
        }
    }
    let ratio = (weekday_sum / weekday_n) / (weekend_sum / weekend_n);
    let designed = weekly_factor(&turkey.weekend, 0) / WEEKEND_FACTOR;
    assert!(
        (ratio / designed - 1.0).abs() < 0.06,
        "weekday/weekend {ratio:.3}, designed {designed:.3}"
    );
}

#[test]
fn a_spike_multiplies_the_route_and_leaves_the_others_alone() {
    let spike = "spike:AFG-IRN-NIMROZ@day=30,days=7,factor=4";
    let base = run(config(6, 60, &[]));
    let spiked = run(config(6, 60, &[spike]));
    let week = |events: &[IncidentEvent], route| on_route(events, route, 30, 37).count() as f64;
    let ratio = week(&spiked, "AFG-IRN-NIMROZ") / week(&base, "AFG-IRN-NIMROZ");
    assert!((3.6..4.4).contains(&ratio), "weekly count x{ratio:.2}");
    let before = |events: &[IncidentEvent]| on_route(events, "AFG-IRN-NIMROZ", 20, 27).count();
    assert_eq!(before(&base), before(&spiked), "no effect before the spike");
    assert_eq!(
        week(&base, "IRN-TUR-VAN"),
        week(&spiked, "IRN-TUR-VAN"),
        "other routes untouched"
    );
}

#[test]
fn a_shift_moves_the_nationality_share_between_routes() {
    let shift = "shift:AFG@from=AFG-IRN-NIMROZ,to=PAK-IRN-TAFTAN,day=30,days=14,fraction=0.3";
    let events = run(config(7, 70, &[shift]));
    let afghan_share = |route, from, until| {
        let (mut afghans, mut all) = (0, 0);
        for e in on_route(&events, route, from, until) {
            for n in &e.nationalities {
                all += n.count;
                afghans += if n.nationality == "AFG" { n.count } else { 0 };
            }
        }
        f64::from(afghans) / f64::from(all)
    };
    let (before, after) = (
        afghan_share("PAK-IRN-TAFTAN", 16, 30),
        afghan_share("PAK-IRN-TAFTAN", 44, 58),
    );
    assert!(
        after - before > 0.2,
        "AFG share on Taftan {before:.2} -> {after:.2}"
    );
    let afghan_groups = |from, until| {
        on_route(&events, "AFG-IRN-NIMROZ", from, until)
            .filter(|e| {
                e.nationalities
                    .first()
                    .is_some_and(|n| n.nationality == "AFG")
            })
            .count() as f64
    };
    let kept = afghan_groups(44, 58) / afghan_groups(16, 30);
    assert!(
        (0.6..0.8).contains(&kept),
        "Nimroz keeps {kept:.2} of its Afghan groups"
    );
}

#[test]
fn a_new_point_appears_only_from_its_day() {
    let events = run(config(
        8,
        60,
        &["new-point:TUR-DIYADIN-GREEN@day=30,share=0.2"],
    ));
    let at_point: Vec<_> = events
        .iter()
        .filter(|e| e.crossing_point.as_deref() == Some("TUR-DIYADIN-GREEN"))
        .collect();
    assert!(
        at_point
            .iter()
            .all(|e| day_of(e) >= 30 && e.route == "IRN-TUR-AGRI")
    );
    let first_week = at_point.iter().filter(|e| day_of(e) < 37).count() as f64;
    let route_week = on_route(&events, "IRN-TUR-AGRI", 30, 37).count() as f64;
    // 20% of the route, of which 80% report the point (green border).
    assert!(
        (0.1..0.23).contains(&(first_week / route_week)),
        "{first_week} of {route_week}"
    );
}

#[test]
fn a_silence_leaves_a_gap_of_its_length_and_the_backlog_follows() {
    let events = run(config(9, 40, &["silence:PAK-FIA@day=20,hour=6,hours=96"]));
    let from = START + 20 * DAY_MS + 6 * HOUR_MS;
    let until = from + 96 * HOUR_MS;
    let fia: Vec<i64> = events
        .iter()
        .filter(|e| e.reporting_agency == "PAK-FIA")
        .map(|e| e.reported_at)
        .collect();
    assert!(!fia.iter().any(|t| (from..until).contains(t)));
    let gap = fia.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        (96 * HOUR_MS..100 * HOUR_MS).contains(&gap),
        "longest gap {} h",
        gap / HOUR_MS
    );
    let backlog = fia
        .iter()
        .filter(|t| (until..until + 3 * HOUR_MS).contains(*t))
        .count();
    assert!(backlog > 100, "{backlog} reports in the backlog");
    let others = events
        .iter()
        .filter(|e| e.reporting_agency == "PAK-FC" && (from..until).contains(&e.reported_at));
    assert!(others.count() > 50, "only the silent agency stops");
}

#[test]
fn a_mass_casualty_is_one_death_event_with_its_numbers() {
    let events = run(config(
        10,
        40,
        &["casualty:IRN-TUR-VAN@day=25,dead=12,missing=5"],
    ));
    let mass: Vec<_> = events
        .iter()
        .filter(|e| e.dead == 12 && e.missing == 5)
        .collect();
    assert_eq!(mass.len(), 1);
    let e = mass[0];
    assert_eq!(
        (e.category, e.route.as_str()),
        (IncidentCategory::DeathOrMissing, "IRN-TUR-VAN")
    );
    assert_eq!((e.occurred_at - START - 25 * DAY_MS) / HOUR_MS, 2);
    assert!(e.persons >= 17 && e.reported_at - e.occurred_at < 8 * HOUR_MS);
    assert!(problems(e).is_empty());
}

#[test]
fn a_trafficking_surge_multiplies_victims_identified_in_the_country() {
    let surge = "trafficking:TUR@day=20,days=20,factor=5";
    let base = run(config(11, 60, &[]));
    let surged = run(config(11, 60, &[surge]));
    let tally = |events: &[IncidentEvent], country: &str| {
        events
            .iter()
            .filter(|e| {
                e.reporting_country == country && e.category == IncidentCategory::Trafficking
            })
            .filter(|e| (20..40).contains(&day_of(e)))
            .fold((0.0, 0.0), |(n, v), e| (n + 1.0, v + f64::from(e.victims)))
    };
    let ((n0, v0), (n1, v1)) = (tally(&base, "TUR"), tally(&surged, "TUR"));
    assert!((3.8..6.2).contains(&(n1 / n0)), "incidents {n0} -> {n1}");
    assert!(v1 / v0 > 3.5, "victims {v0} -> {v1}");
    assert_eq!(
        tally(&base, "IRN"),
        tally(&surged, "IRN"),
        "other countries untouched"
    );
}

#[test]
fn a_smuggling_surge_multiplies_facilitators_on_the_route() {
    let surge = "smuggling:TUR-EU-EDIRNE@day=20,days=10,factor=4";
    let base = run(config(12, 50, &[]));
    let surged = run(config(12, 50, &[surge]));
    let tally = |events: &[IncidentEvent], route| {
        on_route(events, route, 20, 30).fold((0.0, 0.0, 0.0), |(s, f, p), e| {
            let smuggling = f64::from(u8::from(e.category == IncidentCategory::Smuggling));
            (
                s + smuggling,
                f + f64::from(e.facilitators),
                p + f64::from(e.persons),
            )
        })
    };
    let ((s0, f0, p0), (s1, f1, p1)) = (
        tally(&base, "TUR-EU-EDIRNE"),
        tally(&surged, "TUR-EU-EDIRNE"),
    );
    assert!(
        (3.4..4.6).contains(&(s1 / s0)),
        "smuggling incidents {s0} -> {s1}"
    );
    assert!(f1 / f0 > 2.0, "facilitators {f0} -> {f1}");
    assert!(
        p1 / p0 < 1.8,
        "persons {p0} -> {p1}: more smugglers, not a route spike"
    );
    let before = |events: &[IncidentEvent]| on_route(events, "TUR-EU-EDIRNE", 0, 20).count();
    assert_eq!(before(&base), before(&surged), "no effect before the surge");
    assert_eq!(
        tally(&base, "IRN-TUR-VAN"),
        tally(&surged, "IRN-TUR-VAN"),
        "other routes untouched"
    );
}

#[test]
fn the_demo_runs_every_scenario_kind() {
    let config = demo();
    assert_eq!(config.days, 120);
    let kinds: HashSet<_> = config
        .scenarios
        .iter()
        .map(std::mem::discriminant)
        .collect();
    assert_eq!(kinds.len(), 6);
    let events = run(config);
    assert!(events.iter().any(|e| e.dead == 12 && e.missing == 5));
    assert!(
        events
            .iter()
            .any(|e| e.crossing_point.as_deref() == Some("TUR-DIYADIN-GREEN"))
    );
}

#[test]
fn a_config_reports_scenarios_it_cannot_run() {
    let mut config = config(1, 30, &["spike:IRN-TUR-VAN@day=30,days=3,factor=2"]);
    config.scenarios.push(super::Scenario::TraffickingSurge {
        country: "GRC".into(),
        day: 3,
        days: 2,
        factor: 2.0,
    });
    let errors = config.validate().unwrap_err();
    assert_eq!(errors.len(), 2);
    assert!(
        errors[0]
            .problem
            .contains("day=30 is not within the 30-day run")
    );
    assert!(errors[1].problem.contains("unknown country \"GRC\""));
}

#[test]
fn the_geography_is_consistent() {
    let mut ids = HashSet::new();
    for route in Simulation::routes() {
        assert!(ids.insert(route.id), "duplicate route {}", route.id);
        let mix: f64 = route.nationality_mix.iter().map(|(_, s)| s).sum();
        assert!((mix - 1.0).abs() < 1e-9, "{} mix sums to {mix}", route.id);
        assert!(
            route
                .nationality_mix
                .iter()
                .all(|(n, _)| NATIONALITIES.contains(n))
        );
        assert!(route.points.iter().any(|p| p.weight > 0.0));
        for p in route.points {
            assert!(ids.insert(p.id), "duplicate point {}", p.id);
            assert!(
                route.sections.iter().any(|s| s.id == p.section),
                "{} section",
                p.id
            );
            let agency = geography::agency(p.agency).unwrap_or_else(|| panic!("{} agency", p.id));
            assert_eq!(
                agency.country, route.reporting_country,
                "{} reported by {}",
                p.id, p.agency
            );
        }
    }
    for agency in Simulation::agencies() {
        assert!(geography::country(agency.country).is_some());
        assert!(
            Simulation::routes()
                .iter()
                .flat_map(|r| r.points)
                .any(|p| p.agency == agency.id),
            "{} idle",
            agency.id
        );
    }
}

/// Generation rate; a measurement, not an assertion. Run with
/// `cargo test -p relec-ingest --release --lib simulate::tests::rate -- --ignored --nocapture`.
#[test]
#[ignore]
fn rate() {
    let sim = Simulation::new(config(12, 365, &[]));
    let started = std::time::Instant::now();
    let n = sim.events().count();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{n} events in {seconds:.3} s: {:.0} events/s",
        n as f64 / seconds
    );
}

#[test]
fn a_baseline_without_background_casualties_has_no_deaths() {
    let mut quiet = config(5, 60, &[]);
    quiet.background_casualties = false;
    let quiet: Vec<_> = Simulation::new(quiet).events().collect();
    assert!(quiet.iter().all(|e| e.dead == 0 && e.missing == 0));
    let full: Vec<_> = Simulation::new(config(5, 60, &[])).events().collect();
    let deaths = full
        .iter()
        .filter(|e| e.category == IncidentCategory::DeathOrMissing)
        .count();
    assert!(deaths > 0);
    // Everything else is the same stream.
    assert_eq!(quiet.len() + deaths, full.len());
}
