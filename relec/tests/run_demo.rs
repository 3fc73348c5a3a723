//! `relec run` with the default config, as a newcomer runs it: the embedded cluster, the
//! rule pack and the demo scenario, until the pipeline is idle. What its subscribers
//! would have received is read back from the outbox: the early warnings the demo's
//! scenarios are there to raise, as emails (.eml) and signed webhook bodies.

mod common;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime},
};

use common::Relec;
use relec_notifier::{
    email::Locale,
    webhook::{WebhookSecret, verify},
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

/// The whole demo at the default pace takes about 40 s here; a loaded 2-core machine
/// gets more.
const RUN_DEADLINE: Duration = Duration::from_secs(170);
/// The promise to a newcomer.
const FIRST_WARNING_WITHIN: Duration = Duration::from_secs(60);
/// What the demo signs webhook bodies with in the outbox (see the README).
const DEMO_SECRET: &str = "relec-demo-secret-not-for-production";

/// One email from the outbox.
struct Email {
    subscriber: String,
    subject: String,
    /// The subject says "firing", in the email's language.
    firing: bool,
    text: String,
}

/// How a subject says "firing" (`— firing (`), by language tag, from the notifier's
/// locale files.
fn firing_by_language() -> BTreeMap<String, String> {
    let dir = common::root().join("notifier/templates/locales");
    std::fs::read_dir(&dir)
        .expect("locales")
        .map(|e| {
            let source = std::fs::read_to_string(e.expect("entry").path()).expect("read");
            let locale = Locale::parse(&source).expect("locale");
            let firing = format!("— {} (", locale.text("firing").to_lowercase());
            (locale.lang, firing)
        })
        .collect()
}

fn files(outbox: &Path, ext: &str) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    for dir in std::fs::read_dir(outbox)
        .expect("outbox")
        .map(|e| e.expect("entry"))
    {
        let subscriber = dir.file_name().to_string_lossy().into_owned();
        if !dir.path().is_dir() {
            continue;
        }
        for file in std::fs::read_dir(dir.path()).expect("subscriber dir") {
            let path = file.expect("entry").path();
            if path.extension().is_some_and(|e| e == ext) {
                found.push((subscriber.clone(), path));
            }
        }
    }
    found
}

fn emails(outbox: &Path) -> Vec<Email> {
    let firing = firing_by_language();
    files(outbox, "eml")
        .into_iter()
        .map(|(subscriber, path)| {
            let bytes = std::fs::read(&path).expect("read .eml");
            let message = mail_parser::MessageParser::default()
                .parse(&bytes)
                .unwrap_or_else(|| panic!("{} is not an RFC 5322 message", path.display()));
            assert!(
                message.message_id().is_some() && message.date().is_some(),
                "{}",
                path.display()
            );
            let subject = message.subject().unwrap_or_default().to_owned();
            let lang = message.header_raw("Content-Language").unwrap_or_default();
            let word = firing
                .get(lang.trim())
                .unwrap_or_else(|| panic!("language {lang:?}"));
            Email {
                subscriber,
                firing: subject.contains(word.as_str()),
                subject,
                text: message.body_text(0).unwrap_or_default().into_owned(),
            }
        })
        .collect()
}

/// The headers file beside a webhook body, as a header map.
fn headers(body: &Path) -> HeaderMap {
    let text = std::fs::read_to_string(body.with_extension("headers")).expect("headers file");
    let mut lines = text.lines();
    assert!(lines.next().is_some_and(|l| l.starts_with("POST https://")));
    let mut map = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(": ").expect("name: value");
        map.insert(
            HeaderName::try_from(name).expect("header name"),
            HeaderValue::try_from(value).expect("header value"),
        );
    }
    map
}

#[test]
fn the_demo_delivers_the_expected_early_warnings_to_the_outbox() {
    let outbox = tempfile::tempdir().expect("tempdir");
    let dir = outbox.path().to_str().expect("utf-8").to_owned();
    let started = Instant::now();
    let mut relec = Relec::run(&["--outbox", &dir, "--until-idle", "--for", "160s"]);

    let first = relec.line(|l| l.contains("  FIRING  "), FIRST_WARNING_WITHIN);
    let first_after = started.elapsed();
    assert!(
        first.is_some(),
        "no early warning on the console within {FIRST_WARNING_WITHIN:?}\n{}",
        relec.output()
    );
    let status = relec.wait(RUN_DEADLINE);
    let output = relec.output();
    assert!(
        status.is_some_and(|s| s.success()),
        "relec run --until-idle did not end cleanly within {RUN_DEADLINE:?}: {status:?}\n{output}"
    );
    eprintln!(
        "first early warning on the console after {:.1} s, whole demo {:.1} s",
        first_after.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(output.contains("relec run: idle for"), "{output}");

    let emails = emails(outbox.path());
    let find = |what: &str, rule: &str, subscriber: Option<&str>, text: &str| {
        let hit = emails.iter().find(|e| {
            e.subject.contains(rule)
                && e.firing
                && e.text.contains(text)
                && subscriber.is_none_or(|s| e.subscriber == s)
        });
        assert!(
            hit.is_some(),
            "no email for {what} ({rule}, {text:?}) among {} emails; subjects:\n{}\n{output}",
            emails.len(),
            emails
                .iter()
                .map(|e| format!("{}: {}", e.subscriber, e.subject))
                .collect::<Vec<_>>()
                .join("\n")
        );
    };
    // spike:AFG-IRN-NIMROZ@day=60: four times the route's crossings for a week.
    find(
        "the route spike",
        "route_spike",
        Some("afg-ncp"),
        "AFG-IRN-NIMROZ: ",
    );
    // shift:AFG@from=AFG-IRN-NIMROZ,to=PAK-IRN-TAFTAN,day=70: Afghans move routes.
    find(
        "the route shift",
        "route_shift",
        Some("pak-ncp"),
        "AFG share on PAK-IRN-TAFTAN rose",
    );
    // casualty:IRN-TUR-VAN@day=90,dead=12,missing=5, to every NCP.
    for ncp in [
        "afg-ncp", "bgd-ncp", "irn-ncp", "irq-ncp", "pak-ncp", "tur-ncp",
    ] {
        find(
            "the mass casualty",
            "death_or_missing",
            Some(ncp),
            "12 dead and 5 missing on IRN-TUR-VAN",
        );
    }
    // silence:PAK-FIA@day=80,hours=96, to the regional desk.
    find(
        "the reporting silence",
        "reporting_silence",
        Some("regional-desk"),
        "PAK-FIA has reported nothing for 72 hours",
    );

    // The mass casualty also went to Turkey's Alertmanager webhook, signed.
    let secret = WebhookSecret::parse(DEMO_SECRET).expect("secret");
    let casualty = files(outbox.path(), "json")
        .into_iter()
        .find_map(|(sub, path)| {
            let body = std::fs::read(&path).expect("read body");
            let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON body");
            let hit = json["alerts"].as_array()?.iter().any(|a| {
                a["labels"]["alertname"] == "death_or_missing"
                    && a["labels"]["route"] == "IRN-TUR-VAN"
                    && (a["annotations"]["summary"].as_str())
                        .is_some_and(|s| s.starts_with("12 dead and 5 missing"))
            });
            hit.then_some((sub, path, body))
        });
    let (subscriber, path, body) =
        casualty.expect("an Alertmanager webhook body for the mass casualty");
    assert_eq!(subscriber, "tur-ncp");
    verify(
        &secret,
        &headers(&path),
        &body,
        SystemTime::now(),
        Duration::from_secs(3600),
    )
    .expect("the outbox's webhook body carries a valid Standard Webhooks signature");
}
