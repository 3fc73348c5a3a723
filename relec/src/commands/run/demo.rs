//! `relec run`'s demo, in front of ingest: the simulator's demo scenario published through
//! the ingest API as an agency would, paced in event time, and the routing it is
//! delivered by.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use relec_ingest::{
    auth::generate_key,
    simulate::{SimConfig, Simulation},
};
use relec_plumbing::config::AgencyConfig;
use relec_schemas::IncidentEvent;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The agency the demo publishes as.
pub const AGENCY: &str = "relec-demo";
/// Events per request: a few hours of reports, so a day is paced in several steps.
const BATCH: usize = 100;
const DAY_MS: f64 = 86_400_000.0;
/// How far (in report time) the demo may run ahead of the rules stage's event time. A
/// pipeline left far behind catches up in bursts, and an alert that fires and resolves
/// within one burst reaches the notifier as one batch, in which (as in Alertmanager) an
/// alert resolved before anyone was told of it is not news. Held close, the stages see
/// the demo as they would see live reports, only faster.
const LEAD_MS: i64 = 24 * 3_600_000;
/// The longest the demo waits for the rules stage before one request (while it starts,
/// or if it stalls), so it never stops for good.
const MAX_HOLD: Duration = Duration::from_secs(2);
/// How often a held demo looks at the rules stage's event time again.
const HOLD_STEP: Duration = Duration::from_millis(10);
/// Signs the demo's webhook bodies in the outbox, in place of the secrets that the
/// example subscriptions read from files and variables of a real deployment.
pub const WEBHOOK_SECRET: &str = "relec-demo-secret-not-for-production";

/// Alertmanager's timings are wall-clock times, and the demo replays months in a minute:
/// a spike lives about a second. A new group therefore notifies at once and a changed
/// one a second later; repeat intervals stay as written.
const GROUP_WAIT: &str = "0s";
const GROUP_INTERVAL: &str = "1s";

/// A key for the demo agency, allowed to report for every simulated country, and the
/// config entry that holds its hash. The key lives only in this process.
pub fn agency() -> (String, AgencyConfig) {
    let (key, hash) = generate_key();
    let mut countries: Vec<String> = (Simulation::agencies().iter())
        .map(|a| a.country.to_owned())
        .collect();
    countries.sort();
    countries.dedup();
    let config = AgencyConfig {
        id: AGENCY.to_owned(),
        countries,
        key_sha256: hash,
    };
    (key, config)
}

/// The subscriptions file `text` as the demo routes by: group_wait and group_interval
/// compressed on every route (see [`GROUP_WAIT`]) and, when `demo_secrets`, every webhook
/// secret read from a file or variable replaced by [`WEBHOOK_SECRET`] (for an outbox,
/// where nothing leaves the machine).
pub fn subscriptions(text: &str, source: &str, demo_secrets: bool) -> anyhow::Result<String> {
    let mut doc: toml::Table = text.parse().with_context(|| source.to_owned())?;
    if demo_secrets {
        let subscribers = doc.get_mut("subscribers").and_then(|s| s.as_array_mut());
        for subscriber in subscribers.into_iter().flatten() {
            let hooks = subscriber
                .get_mut("webhooks")
                .and_then(|w| w.as_array_mut());
            for hook in hooks.into_iter().flatten().filter_map(|h| h.as_table_mut()) {
                if hook.get("secret").is_some_and(|s| s.is_table()) {
                    hook.insert("secret".into(), WEBHOOK_SECRET.into());
                }
            }
        }
    }
    if let Some(route) = doc.get_mut("route").and_then(|r| r.as_table_mut()) {
        compress(route, true);
    }
    Ok(format!(
        "# Made by `relec run` from {source} for its demo: group_wait {GROUP_WAIT} and \
         group_interval {GROUP_INTERVAL} on every route{}.\n{}",
        if demo_secrets {
            ", webhook secrets from files and variables replaced by a demo secret"
        } else {
            ""
        },
        toml::to_string(&doc)?
    ))
}

fn compress(route: &mut toml::Table, root: bool) {
    for (key, value) in [
        ("group_wait", GROUP_WAIT),
        ("group_interval", GROUP_INTERVAL),
    ] {
        if root || route.contains_key(key) {
            route.insert(key.into(), value.into());
        }
    }
    let children = route.get_mut("routes").and_then(|r| r.as_array_mut());
    for child in children
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_table_mut())
    {
        compress(child, false);
    }
}

/// Publishes the `demo` stream to the ingest API at `api` with `key`, `speed` days of
/// report time per second (0: as fast as the pipeline takes it), never more than
/// [`LEAD_MS`] ahead of `event_time` (the rules stage's, in Unix milliseconds), until done
/// or `shutdown`. Returns the events published.
pub async fn drive(
    demo: SimConfig,
    api: SocketAddr,
    key: String,
    speed: f64,
    event_time: impl Fn() -> i64,
    shutdown: CancellationToken,
) -> anyhow::Result<u64> {
    let url = format!("http://{api}/v1/events");
    let client = reqwest::Client::new();
    let sim = Simulation::new(demo);
    let mut events = sim.events().peekable();
    let started = Instant::now();
    let first = events.peek().map_or(0, |e| e.reported_at);
    let (mut sent, mut published) = (0u64, i64::MIN);
    while events.peek().is_some() {
        let batch: Vec<IncidentEvent> = events.by_ref().take(BATCH).collect();
        if speed > 0.0 {
            let days = (batch[0].reported_at - first) as f64 / DAY_MS;
            let due = started + Duration::from_secs_f64(days / speed);
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep_until(due) => {}
            }
        }
        let held_until = Instant::now() + MAX_HOLD;
        while published.saturating_sub(event_time()) > LEAD_MS && Instant::now() < held_until {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(sent),
                () = tokio::time::sleep(HOLD_STEP) => {}
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            posted = super::super::simulate::post(&client, &url, &key, &batch) => posted?,
        }
        sent += batch.len() as u64;
        published = batch
            .iter()
            .map(|e| e.reported_at)
            .max()
            .unwrap_or(published);
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBSCRIPTIONS: &str = r#"
[[subscribers]]
id = "irn-ncp"
country = "IRN"
clearance = "GREEN"
[[subscribers.webhooks]]
name = "soc"
url = "https://soc.example/x"
secret = { env = "NOT_SET_ANYWHERE" }
[[subscribers.webhooks]]
name = "inline"
url = "https://soc.example/y"
secret = "0123456789abcdef0123"

[route]
receiver = "all"
group_wait = "30s"
repeat_interval = "4h"
[[route.routes]]
receiver = "all"
group_wait = "10s"
[[route.routes.routes]]
receiver = "all"
group_interval = "2m"
"#;

    #[test]
    fn the_demo_routes_with_compressed_groups_and_demo_secrets() {
        let text = subscriptions(SUBSCRIPTIONS, "s.toml", true).expect("derives");
        let doc: toml::Table = text.parse().expect("parses");
        let route = doc["route"].as_table().expect("route");
        assert_eq!(route["group_wait"].as_str(), Some("0s"));
        assert_eq!(route["group_interval"].as_str(), Some("1s"));
        assert_eq!(route["repeat_interval"].as_str(), Some("4h"));
        let child = route["routes"][0].as_table().expect("child");
        assert_eq!(child["group_wait"].as_str(), Some("0s"));
        assert!(!child.contains_key("group_interval"), "inherits the root's");
        assert_eq!(child["routes"][0]["group_interval"].as_str(), Some("1s"));
        let hooks = &doc["subscribers"][0]["webhooks"];
        assert_eq!(hooks[0]["secret"].as_str(), Some(WEBHOOK_SECRET));
        assert_eq!(hooks[1]["secret"].as_str(), Some("0123456789abcdef0123"));

        let kept = subscriptions(SUBSCRIPTIONS, "s.toml", false).expect("derives");
        assert!(kept.contains("NOT_SET_ANYWHERE"), "{kept}");
    }

    #[test]
    fn the_demo_agency_reports_for_every_simulated_country() {
        let (key, config) = agency();
        assert_eq!(relec_ingest::auth::hash_key(&key), config.key_sha256);
        for agency in Simulation::agencies() {
            assert!(config.countries.iter().any(|c| c == agency.country));
        }
    }
}
