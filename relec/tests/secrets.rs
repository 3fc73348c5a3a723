//! No secret leaves the process. `relec run` on the real broker, logging at debug, with an
//! agency's API key, an SMTP password (a wrong one, so authentication fails and is
//! reported) and a webhook secret (its endpoint refuses connections, so deliveries fail
//! and are retried): none of them appears in its output or logs, in any stage's metrics,
//! in the answers to refused requests, or in the effective config `relec config check
//! --print` shows; and the failures the secrets were used in were logged, so the check is
//! not vacuous.

mod common;

use std::{process::Command, time::Duration};

use common::Relec;
use relec_ingest::auth::hash_key;
use relec_schemas::sample;
use relec_tests::{broker, unique};

const AGENCY_KEY: &str = "relec_agencykey0secret0d41d8cd98f00b204e9800998ecf8427e";
const SMTP_PASSWORD: &str = "smtp-Password-0secret0-7f3a9c";
/// Standard Webhooks form: `whsec_` and the base64 of the key.
const WEBHOOK_SECRET: &str = "whsec_c2VjcmV0LXdlYmhvb2sta2V5LTBzZWNyZXQwLTJiOGQ=";
const WAIT: Duration = Duration::from_secs(90);

fn leaks(text: &str) -> Vec<&'static str> {
    let webhook_key = WEBHOOK_SECRET.trim_start_matches("whsec_");
    [
        AGENCY_KEY,
        SMTP_PASSWORD,
        WEBHOOK_SECRET,
        webhook_key,
        "0secret0",
    ]
    .into_iter()
    .filter(|secret| text.contains(secret))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_output_logs_metrics_answers_or_printed_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port(); // the listener is gone: connections to it are refused
    let subscriptions = dir.path().join("subscriptions.toml");
    std::fs::write(
        &subscriptions,
        format!(
            "[[subscribers]]\nid = \"irn-ncp\"\ncountry = \"IRN\"\nclearance = \"AMBER_STRICT\"\n\
             [subscribers.email]\naddresses = [\"ncp@police.ir.example\"]\n\
             [[subscribers.webhooks]]\nname = \"down\"\nurl = \"http://127.0.0.1:{closed}/hook\"\n\
             secret = {WEBHOOK_SECRET:?}\nformat = \"native\"\ntimeout = \"1s\"\n\
             [[receivers]]\nname = \"irn\"\nsubscribers = [\"irn-ncp\"]\nred_recipients = [\"irn-ncp\"]\n\
             [route]\nreceiver = \"irn\"\ngroup_by = [\"rule\", \"route\"]\n"
        ),
    )
    .expect("subscriptions");

    let smtp = std::env::var("RELEC_TEST_SMTP").expect("RELEC_TEST_SMTP (tests/run.sh)");
    let (host, port) = smtp.rsplit_once(':').expect("host:port");
    let run = unique("secrets");
    let topics: String = [
        "incidents",
        "incidents_rejected",
        "alerts",
        "rules_repartition",
        "rules_changelog",
        "notifications_dlq",
        "notifier_deliveries",
        "notifier_silences",
        "native",
    ]
    .iter()
    .map(|t| format!("[topics.{t}]\nname = \"{run}.{t}\"\n"))
    .collect();
    let file = dir.path().join("relec.toml");
    std::fs::write(
        &file,
        format!(
            "[kafka]\nbrokers = {:?}\n{topics}\
             [[ingest.agencies]]\nid = \"irn-secret-test\"\ncountries = [\"IRN\"]\n\
             key_sha256 = {:?}\n\
             [rules]\ndir = {:?}\ngroup = \"{run}-rules\"\n\
             [notifier]\nsubscriptions = {:?}\ngroup = \"{run}-notifier\"\n\
             [notifier.smtp]\nhost = {host:?}\nport = {port}\nsecurity = \"plain\"\n\
             username = \"relec\"\n\
             [notifier.retry]\ninitial_backoff = \"100ms\"\nmax_backoff = \"500ms\"\n\
             max_attempts = 2\n\
             [telemetry]\nlog_level = \"debug\"\n",
            broker(),
            hash_key(AGENCY_KEY),
            common::root().join("rules/pack").display().to_string(),
            subscriptions.display().to_string(),
        ),
    )
    .expect("config file");
    let file = file.to_str().expect("utf-8");
    // The password comes as a deployment gives it: from the environment.
    let env = [("RELEC_NOTIFIER__SMTP__PASSWORD", SMTP_PASSWORD)];

    let printed = Command::new(env!("CARGO_BIN_EXE_relec"))
        .args(["config", "check", "--print", file])
        .envs(env)
        .output()
        .expect("relec config check");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&printed.stdout),
        String::from_utf8_lossy(&printed.stderr)
    );
    assert!(printed.contains("<redacted>"), "{printed}");
    assert_eq!(leaks(&printed), Vec::<&str>::new(), "{printed}");

    let mut relec = Relec::run_with_env(
        &["--config", file, "--demo", "--speed", "8", "--for", "40s"],
        &env,
    );
    let address = |relec: &mut Relec, what: &str| {
        let line = relec.line(|l| l.trim_start().starts_with(what), WAIT);
        let line = line.unwrap_or_else(|| panic!("no {what} line\n{}", relec.output()));
        line.split_whitespace().last().expect("url").to_owned()
    };
    let api = address(&mut relec, "ingest API");
    let metrics: Vec<String> = [
        "metrics     ingest",
        "metrics     rules",
        "metrics     notifier",
    ]
    .iter()
    .map(|what| address(&mut relec, what))
    .collect();

    // Refused requests: a wrong key that looks like the right one, and the right key for
    // a country the agency may not report for.
    let http = reqwest::Client::new();
    let mut event = sample::incident(1, 1);
    event.reporting_country = "TUR".into();
    let mut answers = String::new();
    for key in [&AGENCY_KEY[..AGENCY_KEY.len() - 1], AGENCY_KEY] {
        let response = http
            .post(&api)
            .bearer_auth(key)
            .json(&event)
            .send()
            .await
            .expect("request");
        answers.push_str(&format!("{} ", response.status()));
        answers.push_str(&response.text().await.expect("body"));
    }
    assert!(
        answers.contains("401") && answers.contains("403"),
        "{answers}"
    );

    // Wait until deliveries have failed (the SMTP login, the refused webhook).
    let deadline = std::time::Instant::now() + WAIT;
    let mut scraped = String::new();
    loop {
        scraped.clear();
        for url in &metrics {
            let text = http.get(url).send().await.expect("scrape").text().await;
            scraped.push_str(&text.expect("metrics"));
        }
        // Every delivery fails: both channels dead-letter after their attempts.
        let failed = ["email", "webhook"].iter().all(|channel| {
            (scraped.lines())
                .filter(|l| l.starts_with("relec_notifier_notifications_total{"))
                .filter(|l| l.contains(&format!("channel=\"{channel}\"")))
                .any(|l| !l.contains("outcome=\"delivered\"") && !l.ends_with(" 0"))
        });
        if failed || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    relec.wait(WAIT).expect("relec run stops after --for");
    let everything = relec.everything();

    for (what, text) in [
        ("output and logs", &everything),
        ("metrics", &scraped),
        ("answers", &answers),
    ] {
        assert_eq!(leaks(text), Vec::<&str>::new(), "a secret in the {what}");
    }
    // The secrets were used, and the failures they were part of were reported.
    assert!(everything.contains("535"), "no failed SMTP login logged");
    assert!(
        everything.to_lowercase().contains("connect"),
        "no refused webhook logged"
    );
    assert!(everything.contains("DEBUG"), "not logging at debug");
}
