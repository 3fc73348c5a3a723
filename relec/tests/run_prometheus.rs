//! Debian's Prometheus scraping a running `relec run`: every stage's listener is a target
//! that is up, relec's counters advance between scrapes, and Ctrl-C then stops the run
//! cleanly. Prometheus listens on loopback with its storage in a temporary directory and
//! is killed when the test ends, however it ends.

mod common;

use std::{
    collections::BTreeMap,
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::Relec;
use serde_json::Value;

/// Prometheus scrapes this often, so a test sees several scrapes in seconds.
const SCRAPE_INTERVAL: &str = "1s";
const WAIT: Duration = Duration::from_secs(60);
const STAGES: [&str; 3] = ["ingest", "rules", "notifier"];

/// A process killed when the guard goes.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `/api/v1/query` answers as (labels, value) pairs.
async fn query(
    client: &reqwest::Client,
    api: &str,
    promql: &str,
) -> Vec<(BTreeMap<String, String>, f64)> {
    let url = reqwest::Url::parse_with_params(&format!("{api}/api/v1/query"), [("query", promql)])
        .expect("query URL");
    let Ok(response) = client.get(url).send().await else {
        return Vec::new();
    };
    let Ok(body) = response.json::<Value>().await else {
        return Vec::new();
    };
    let results = body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    results
        .iter()
        .filter_map(|r| {
            let labels = serde_json::from_value(r["metric"].clone()).ok()?;
            let value = r["value"][1].as_str()?.parse().ok()?;
            Some((labels, value))
        })
        .collect()
}

/// Polls `promql` until `done` accepts the answer, at most `WAIT`.
async fn until(
    client: &reqwest::Client,
    api: &str,
    promql: &str,
    done: impl Fn(&[(BTreeMap<String, String>, f64)]) -> bool,
) -> Option<Vec<(BTreeMap<String, String>, f64)>> {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        let answer = query(client, api, promql).await;
        if done(&answer) {
            return Some(answer);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    None
}

#[tokio::test]
async fn prometheus_scrapes_every_stage_of_relec_run() {
    let outbox = tempfile::tempdir().expect("tempdir");
    let dir = outbox.path().to_str().expect("utf-8").to_owned();
    // One demo day a second: counters keep moving for the whole test.
    let mut relec = Relec::run(&["--outbox", &dir, "--speed", "1", "--for", "150s"]);
    let mut targets = BTreeMap::new();
    for stage in STAGES {
        let line = relec.line(
            |l| l.trim_start().starts_with("metrics") && l.split_whitespace().nth(1) == Some(stage),
            WAIT,
        );
        let Some(line) = line else {
            panic!(
                "relec run printed no metrics address for {stage}\n{}",
                relec.output()
            );
        };
        let url = line.split_whitespace().last().expect("url").to_owned();
        let target = url
            .strip_prefix("http://")
            .and_then(|u| u.strip_suffix("/metrics"))
            .expect("http://HOST:PORT/metrics")
            .to_owned();
        assert!(target.starts_with("127.0.0.1:"), "{target}");
        targets.insert(stage, target);
    }

    let work = tempfile::tempdir().expect("tempdir");
    let jobs: Vec<String> = (targets.iter())
        .map(|(stage, target)| {
            format!("  - job_name: {stage}\n    static_configs:\n      - targets: ['{target}']\n")
        })
        .collect();
    let config = work.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: {SCRAPE_INTERVAL}\n  evaluation_interval: {SCRAPE_INTERVAL}\nscrape_configs:\n{}",
            jobs.concat()
        ),
    )
    .expect("write prometheus.yml");
    let port = free_port();
    let _prometheus = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                work.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus: install Debian's prometheus package (tests/run.sh does)"),
    );
    let api = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    let up = until(&client, &api, "up", |answer| {
        answer.len() == STAGES.len() && answer.iter().all(|(_, v)| *v == 1.0)
    })
    .await;
    let Some(up) = up else {
        let seen = query(&client, &api, "up").await;
        panic!(
            "up is not 1 for every stage within {WAIT:?}: {seen:?}\n{}",
            relec.output()
        );
    };
    let mut jobs: Vec<&str> = up.iter().map(|(l, _)| l["job"].as_str()).collect();
    jobs.sort();
    assert_eq!(jobs, ["ingest", "notifier", "rules"]);

    // A relec counter, as Prometheus stored it, advances from one scrape to a later one.
    let accepted = "relec_ingest_events_accepted_total";
    let first = until(&client, &api, accepted, |a| a.len() == 1 && a[0].1 > 0.0)
        .await
        .unwrap_or_else(|| panic!("{accepted} never above 0\n{}", relec.output()))[0]
        .1;
    let later = until(&client, &api, accepted, |a| a.len() == 1 && a[0].1 > first).await;
    assert!(
        later.is_some(),
        "{accepted} stayed at {first}\n{}",
        relec.output()
    );
    let processed = until(
        &client,
        &api,
        r#"relec_rules_events_total{job="rules",outcome="processed"}"#,
        |a| a.len() == 1 && a[0].1 > 0.0,
    )
    .await;
    assert!(processed.is_some(), "the rules stage's counter stayed at 0");

    // Ctrl-C: the stages drain and the run ends with success.
    relec.interrupt();
    let status = relec.wait(Duration::from_secs(40));
    let output = relec.output();
    assert!(
        status.is_some_and(|s| s.success()),
        "relec run did not stop cleanly on SIGINT: {status:?}\n{output}"
    );
    assert!(output.contains("relec run: stopped after"), "{output}");
}
