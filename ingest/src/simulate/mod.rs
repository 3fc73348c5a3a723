//! Simulated agencies, ahead of ingest: a seeded, deterministic stream of realistic RELEC
//! incident events (routes, seasonality, reporting delays, injectable scenarios) for demos,
//! load tests and rule backtests. Event ids are version 8 (custom) UUIDs, so simulated
//! events can be told from real ones wherever they end up.
//!
//! ```no_run
//! use relec_ingest::simulate::{Simulation, demo};
//!
//! let sim = Simulation::new(demo());
//! for event in sim.events().take(3) {
//!     println!("{} {} {:?}", event.reported_at, event.route, event.category);
//! }
//! ```

mod generate;
mod geography;
mod incident;
mod plan;
mod rng;
mod routes;
mod scenario;
mod tables;
#[cfg(test)]
mod tests;
mod timing;

use relec_schemas::IncidentEvent;

pub use geography::{Agency, BorderSection, CrossingPoint, PointKind, Route};
pub use scenario::{Scenario, ScenarioError};

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// The same seed and configuration give the same events, ids included.
    pub seed: u64,
    /// Start of day 0, milliseconds since the Unix epoch (UTC midnight, so the day and
    /// hour profiles line up with the calendar).
    pub start_ms: i64,
    /// Length of the run; incidents are generated for days `0 .. days`.
    pub days: u32,
    /// Multiplies every route's base volume; 1.0 gives about 800 incidents a day.
    /// Zero, negative or not-a-number give an empty stream.
    pub scale: f64,
    /// Disturbances to inject, at days counted from `start_ms`.
    pub scenarios: Vec<Scenario>,
    /// The rare deaths and missing persons of ordinary border traffic. Realistic streams
    /// have them; a test of "any death" rules wants a baseline without any, so that only
    /// a `casualty:` scenario produces one.
    pub background_casualties: bool,
}

impl SimConfig {
    /// Every problem of every scenario (unknown ids, numbers out of range, a start after
    /// the end of the run, where it would silently never happen).
    pub fn validate(&self) -> Result<(), Vec<ScenarioError>> {
        let errors: Vec<_> = self
            .scenarios
            .iter()
            .filter_map(|s| {
                s.validate().err().or_else(|| {
                    (s.day() >= self.days).then(|| ScenarioError {
                        scenario: s.to_string(),
                        problem: format!("day={} is not within the {}-day run", s.day(), self.days),
                    })
                })
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// A configured run; cheap to build, and `events` can be called any number of times.
#[derive(Debug)]
pub struct Simulation {
    config: SimConfig,
    scale: f64,
    effects: plan::Effects,
    /// High half of every event id: derived from the whole configuration, so a replay of
    /// the same run is deduplicated by ingest and a different run never collides with it.
    id_namespace: u64,
}

impl Simulation {
    /// # Panics
    /// If a scenario is invalid (see `SimConfig::validate`); scenarios parsed from strings
    /// have been validated already.
    pub fn new(config: SimConfig) -> Self {
        if let Err(errors) = config.validate() {
            let messages: Vec<_> = errors.iter().map(ToString::to_string).collect();
            panic!("invalid simulation config: {}", messages.join("; "));
        }
        let scale = if config.scale > 0.0 {
            config.scale
        } else {
            0.0
        };
        let mut words = vec![
            config.seed,
            config.start_ms as u64,
            u64::from(config.days),
            scale.to_bits(),
        ];
        words.extend(
            config
                .scenarios
                .iter()
                .map(|s| fnv1a(s.to_string().as_bytes())),
        );
        Simulation {
            effects: plan::Effects::resolve(&config.scenarios, config.start_ms),
            id_namespace: rng::mix(&words),
            scale,
            config,
        }
    }

    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Events in order of `reported_at` (ties in generation order): the order agencies
    /// would publish them. Deterministic for a configuration. Incidents whose report would
    /// arrive after the end of the run are left out, as in a live feed.
    pub fn events(&self) -> impl Iterator<Item = IncidentEvent> + '_ {
        generate::Events::new(self)
    }

    /// Every simulated route, with its sections, crossing points and nationality mix.
    pub fn routes() -> &'static [Route] {
        routes::ROUTES
    }

    /// Every simulated reporting agency.
    pub fn agencies() -> &'static [Agency] {
        geography::AGENCIES
    }
}

/// FNV-1a: a stable hash of the scenario text for the id namespace (std's hashers may
/// change between Rust releases, which would change the ids of a "deterministic" run).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01B3)
    })
}

/// 2025-09-01T00:00:00Z, a Monday: the demo starts on a week boundary and lies in the
/// past, so ingest does not reject its events as coming from the future.
const DEMO_START_MS: i64 = 1_756_684_800_000;

/// A 120-day demo at scale 1.0 with one scenario of each kind, each after the eight weeks
/// of history the baseline rules need and far enough apart to tell them apart. The
/// `smuggling:` kind, added later, is left out so that the demo stream (and the figures
/// measured on it) stays as it was.
pub fn demo() -> SimConfig {
    let scenarios = [
        "spike:AFG-IRN-NIMROZ@day=60,days=7,factor=4",
        "shift:AFG@from=AFG-IRN-NIMROZ,to=PAK-IRN-TAFTAN,day=70,days=7,fraction=0.5",
        "new-point:TUR-DIYADIN-GREEN@day=75,share=0.2",
        "silence:PAK-FIA@day=80,hours=96",
        "casualty:IRN-TUR-VAN@day=90,dead=12,missing=5",
        "trafficking:TUR@day=100,days=10,factor=5",
    ];
    SimConfig {
        seed: 2026,
        start_ms: DEMO_START_MS,
        days: 120,
        scale: 1.0,
        background_casualties: true,
        scenarios: scenarios
            .iter()
            .map(|s| s.parse().expect("demo scenario"))
            .collect(),
    }
}
