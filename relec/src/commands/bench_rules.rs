//! `relec bench rules`: the rules engine on this machine without Kafka. Events/s through
//! one partition's processor with the rule pack over the demo stream, and the cost of one
//! rhai evaluation against the same condition written as a native Rust closure, measured
//! side by side in one run.

use std::{
    hint::black_box,
    path::Path,
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use relec_ingest::simulate::{Simulation, demo};
use relec_rules::{
    group::Group,
    processor::{Key, Processor, Settings, route_keys},
    rule::{Rule, load_dir},
    sandbox::{Limits, engine},
    state::KeyState,
    time::day_of,
};
use relec_schemas::IncidentEvent;

const SETTINGS: Settings = Settings {
    lateness_ms: 3_600_000,
    horizon_days: 400,
};

pub fn run(dir: &Path, evaluations: u64) -> anyhow::Result<ExitCode> {
    let engine = Arc::new(engine(&Limits::default()));
    let (rules, errors) = load_dir(&engine, dir);
    anyhow::ensure!(errors.is_empty(), "rules with problems: {errors:?}");
    let rules: Vec<Arc<Rule>> = rules.into_iter().map(Arc::new).collect();
    let events: Vec<IncidentEvent> = Simulation::new(demo()).events().collect();

    // Whole processor: decode is not included, only what the stage adds per event.
    let mut processor = Processor::new(engine.clone(), rules.clone(), SETTINGS);
    let started = Instant::now();
    let (mut transitions, mut evaluations_run) = (0usize, 0usize);
    for e in events.iter().cloned() {
        let out = processor.process(e);
        transitions += out.transitions.len();
        evaluations_run += out.evaluations.len();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "processor, {} rules, demo stream: {} events in {:.2} s = {:.0} events/s on one core \
         ({evaluations_run} evaluations, {transitions} transitions, {} keys)",
        rules.len(),
        events.len(),
        secs,
        events.len() as f64 / secs,
        processor.keys()
    );

    // The routed copies alone, as a lane takes them: keys made beforehand, event time never
    // moving, so no day closes and no rule runs. The stage's lanes do this work and, over
    // a backlog, little more before their last copy (`bench stage` prints their CPU time).
    let copies: Vec<(Vec<Key>, Arc<IncidentEvent>)> = (events.iter())
        .map(|e| (route_keys(&rules, e), Arc::new(e.clone())))
        .collect();
    let count: usize = copies.iter().map(|(keys, _)| keys.len()).sum();
    let mut processor = Processor::new(engine.clone(), rules.clone(), SETTINGS);
    let started = Instant::now();
    for (keys, event) in &copies {
        for key in keys {
            black_box(processor.process_keyed(key, event));
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "routed copies alone (no day closes, no evaluations): {count} in {secs:.2} s = {:.2} µs \
         per copy on one core",
        secs * 1e6 / count as f64
    );

    if evaluations == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    // One evaluation of route_spike, rhai against native, on the same busy route's state.
    let spike = rules
        .iter()
        .find(|r| r.id == "route_spike")
        .ok_or_else(|| anyhow::anyhow!("route_spike is not in {}", dir.display()))?;
    let mut state = KeyState::default();
    let route = "AFG-IRN-NIMROZ";
    for e in events
        .iter()
        .filter(|e| e.route == route && spike.matches(e))
    {
        state.add(e, &[]);
    }
    let day = day_of(events.last().map_or(0, |e| e.occurred_at));
    let group = Group {
        state: Arc::new(state),
        day,
        labels: Arc::new([("route".to_owned(), route.to_owned())]),
        event: None,
        horizon_days: SETTINGS.horizon_days,
        history_days: 120,
    };
    let rhai_fire = spike.evaluate(&engine, group.clone())?.fire;
    let native_fire = native_route_spike(&group);
    anyhow::ensure!(rhai_fire == native_fire, "rhai and native disagree");
    let rhai = per_call(evaluations, || {
        spike
            .evaluate(&engine, group.clone())
            .map(|v| v.fire)
            .unwrap_or(false)
    });
    let native = per_call(evaluations, || native_route_spike(&group));
    println!(
        "route_spike, one evaluation: rhai {:.2} µs, native Rust {:.3} µs, ratio {:.0}x",
        rhai.as_secs_f64() * 1e6,
        native.as_secs_f64() * 1e6,
        rhai.as_secs_f64() / native.as_secs_f64().max(1e-12)
    );
    Ok(ExitCode::SUCCESS)
}

/// `rules/pack/route_spike.rhai` as a closure over the same state.
fn native_route_spike(g: &Group) -> bool {
    let s = &g.state;
    let week = |back: i64| {
        let end = g.day - 7 * back;
        s.sum("persons", end - 6, end).unwrap_or(0) as f64
    };
    let events_week = |back: i64| {
        let end = g.day - 7 * back;
        s.sum("events", end - 6, end).unwrap_or(0)
    };
    if (1..=8).any(|b| events_week(b) == 0) {
        return false;
    }
    let current = week(0);
    let baseline = (1..=8).map(week).sum::<f64>() / 8.0;
    current >= 50.0 && current > 3.0 * baseline
}

fn per_call(n: u64, mut f: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    for _ in 0..n {
        black_box(f());
    }
    started.elapsed() / n.max(1) as u32
}
