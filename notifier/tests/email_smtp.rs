//! Email delivery over real SMTP: Persian, Bengali and Turkish alerts through the test
//! bed's server (tests/bed/smtp.sh; skipped with a notice when `RELEC_TEST_SMTP` is not
//! set), read back from its inbox with a MIME parser; and the classification of what a
//! server answers, against scripted servers on loopback.

mod common;

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};

use lettre::message::Mailbox;
use mail_parser::{MessageParser, MimeHeaders};
use relec_notifier::{
    email::{SmtpSender, Templates, message_id, render},
    retry::Outcome,
};
use relec_plumbing::config::{Secret, SmtpConfig, SmtpSecurity};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

const FROM: &str = "RELEC Early Warning <alerts@relec.example>";
/// How long a test waits for the server to store a message.
const RECEIVE_DEADLINE: Duration = Duration::from_secs(20);

/// The bed's SMTP server, or `None` (after saying so) when the bed is not up.
fn bed() -> Option<(String, u16)> {
    let Ok(addr) = std::env::var("RELEC_TEST_SMTP") else {
        eprintln!(
            "skipped: RELEC_TEST_SMTP is not set; start the test bed with \
             eval \"$(bash tests/bed/up.sh)\" (or tests/bed/smtp.sh start)"
        );
        return None;
    };
    let (host, port) = addr.rsplit_once(':').expect("RELEC_TEST_SMTP is HOST:PORT");
    Some((host.to_owned(), port.parse().expect("a port number")))
}

fn inbox() -> PathBuf {
    let bed = std::env::var("RELEC_BED_DIR").unwrap_or_else(|_| "/tmp/relec-bed".into());
    PathBuf::from(bed).join("smtp/inbox")
}

/// A recipient no other test run uses, so its file in the shared inbox is ours.
fn unique_recipient(tag: &str) -> String {
    format!("ncp-{tag}-{}@relec.test", uuid::Uuid::new_v4().simple())
}

/// The message stored for `recipient` and its envelope, waiting for it to appear.
async fn received(recipient: &str) -> (Vec<u8>, serde_json::Value) {
    let suffix = format!("-{recipient}.eml");
    let deadline = tokio::time::Instant::now() + RECEIVE_DEADLINE;
    loop {
        let found = std::fs::read_dir(inbox())
            .expect("the bed's inbox")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(&suffix));
        if let Some(eml) = found {
            let envelope = std::fs::read(eml.with_extension("json")).expect("envelope");
            let envelope = serde_json::from_slice(&envelope).expect("envelope JSON");
            return (std::fs::read(&eml).expect("message"), envelope);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no message for {recipient} in {} after {RECEIVE_DEADLINE:?}",
            inbox().display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `[notifier.smtp]` for the relay at `host:port`, unauthenticated.
fn smtp(host: &str, port: u16, security: SmtpSecurity) -> SmtpConfig {
    SmtpConfig {
        host: host.to_owned(),
        port,
        security,
        from: FROM.to_owned(),
        ..SmtpConfig::default()
    }
}

fn sender(config: &SmtpConfig) -> SmtpSender {
    SmtpSender::new(config, Arc::new(Templates::built_in())).expect("valid config")
}

fn lf(text: std::borrow::Cow<str>) -> String {
    text.replace("\r\n", "\n")
}

#[tokio::test]
async fn persian_bengali_and_turkish_alerts_arrive_intact() {
    let Some((host, port)) = bed() else { return };
    let config = smtp(&host, port, SmtpSecurity::Plain);
    let sender = sender(&config);
    let templates = Templates::built_in();
    let notification = common::sample();

    for (locale, name, route_line) in [
        ("fa", "مرکز ملی ایران", "مسیر: IRN-TUR-VAN"),
        ("bn", "জাতীয় যোগাযোগ কেন্দ্র", "পথ: IRN-TUR-VAN"),
        ("tr", "Ulusal İrtibat Noktası", "Güzergâh: IRN-TUR-VAN"),
    ] {
        let address = unique_recipient(locale);
        let to: Mailbox = format!("{name} <{address}>").parse().expect("address");
        let outcome = sender
            .send(&notification, &[to], locale, SystemTime::now())
            .await;
        assert_eq!(outcome, Outcome::Delivered, "{locale}");

        let (raw, envelope) = received(&address).await;
        assert_eq!(envelope["mail_from"], "alerts@relec.example");
        assert_eq!(envelope["rcpt_to"], serde_json::json!([address]));

        let expected = render(&templates, &notification, locale).expect("renders");
        let mail = MessageParser::default()
            .parse(&raw)
            .expect("a MIME message");
        assert_eq!(mail.subject(), Some(expected.subject.as_str()), "{locale}");
        assert!(
            mail.subject()
                .unwrap()
                .starts_with("TLP:AMBER [CRITICAL] route_spike"),
            "{locale}"
        );
        let from = mail.from().and_then(|a| a.first()).expect("From");
        assert_eq!(from.name(), Some("RELEC Early Warning"));
        assert_eq!(from.address(), Some("alerts@relec.example"));
        let to = mail.to().and_then(|a| a.first()).expect("To");
        assert_eq!(to.name(), Some(name), "{locale}: display name decoded");
        assert_eq!(to.address(), Some(address.as_str()));
        assert_eq!(
            mail.message_id(),
            Some(message_id(&notification, "relec.example").trim_matches(['<', '>']))
        );
        assert_eq!(
            mail.header_raw("Content-Language").map(str::trim),
            Some(locale)
        );
        assert_eq!(
            mail.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-generated")
        );

        let root = mail.root_part().content_type().expect("Content-Type");
        assert_eq!(
            (root.ctype(), root.subtype()),
            ("multipart", Some("alternative"))
        );
        for (part, subtype) in [(mail.text_part(0), "plain"), (mail.html_part(0), "html")] {
            let ct = part
                .and_then(|p| p.content_type())
                .expect("part Content-Type");
            assert_eq!((ct.ctype(), ct.subtype()), ("text", Some(subtype)));
            assert_eq!(
                ct.attribute("charset").map(str::to_lowercase).as_deref(),
                Some("utf-8")
            );
        }
        let text = mail.body_text(0).map(lf).expect("text part");
        let html = mail.body_html(0).map(lf).expect("html part");
        assert_eq!(text, expected.text, "{locale}");
        assert_eq!(html, expected.html, "{locale}");
        assert!(
            text.starts_with("TLP:AMBER\n") && text.contains(route_line),
            "{locale}"
        );
        let dir = if locale == "fa" { "rtl" } else { "ltr" };
        assert!(html.contains(&format!("<html lang=\"{locale}\" dir=\"{dir}\">")));
    }
}

#[tokio::test]
async fn authenticates_and_a_wrong_password_is_final() {
    let Some((host, port)) = bed() else { return };
    let user = std::env::var("RELEC_SMTP_USER").unwrap_or_else(|_| "relec".into());
    let password = std::env::var("RELEC_SMTP_PASSWORD").unwrap_or_else(|_| "relec-test".into());
    let mut config = smtp(&host, port, SmtpSecurity::Plain);
    config.username = Some(user.clone());
    config.password = Some(Secret::new(password));
    let address = unique_recipient("auth");
    let to: Mailbox = address.parse().expect("address");
    let notification = common::sample();

    let outcome = sender(&config)
        .send(
            &notification,
            std::slice::from_ref(&to),
            "en",
            SystemTime::now(),
        )
        .await;
    assert_eq!(outcome, Outcome::Delivered);
    let (_, envelope) = received(&address).await;
    assert_eq!(envelope["auth_user"], serde_json::json!(user));

    config.password = Some(Secret::new("wrong"));
    let outcome = sender(&config)
        .send(&notification, &[to], "en", SystemTime::now())
        .await;
    match outcome {
        Outcome::Permanent { reason } => assert!(reason.contains("535"), "{reason}"),
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[tokio::test]
async fn starttls_never_falls_back_to_plain_text() {
    // The bed's server offers no STARTTLS: a sender told to use it must refuse to send.
    let Some((host, port)) = bed() else { return };
    let config = smtp(&host, port, SmtpSecurity::Starttls);
    let to: Mailbox = unique_recipient("starttls").parse().expect("address");
    let outcome = sender(&config)
        .send(&common::sample(), &[to], "en", SystemTime::now())
        .await;
    match outcome {
        Outcome::Permanent { reason } => assert!(reason.contains("STARTTLS"), "{reason}"),
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

/// A server on 127.0.0.1 that greets with `greeting` and answers RCPT with `rcpt`
/// (everything else with 250), for the replies the bed's server never gives. Serves one
/// connection, then stops.
async fn scripted_server(greeting: &'static str, rcpt: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        if write.write_all(greeting.as_bytes()).await.is_err() || greeting.starts_with('4') {
            return;
        }
        while let Ok(Some(line)) = lines.next_line().await {
            let command = line.get(..4).unwrap_or_default().to_ascii_uppercase();
            let reply = match command.as_str() {
                "EHLO" => "250-fake.localhost\r\n250 8BITMIME\r\n",
                "RCPT" => rcpt,
                "QUIT" => "221 bye\r\n",
                _ => "250 ok\r\n",
            };
            if write.write_all(reply.as_bytes()).await.is_err() || command == "QUIT" {
                return;
            }
        }
    });
    addr
}

async fn send_to(addr: SocketAddr, timeout: Duration) -> Outcome {
    let mut config = smtp("127.0.0.1", addr.port(), SmtpSecurity::Plain);
    config.timeout = timeout;
    let to: Mailbox = "ncp@relec.test".parse().expect("address");
    let (sender, notification) = (sender(&config), common::sample());
    let send = sender.send(
        &notification,
        std::slice::from_ref(&to),
        "en",
        SystemTime::now(),
    );
    tokio::time::timeout(Duration::from_secs(10), send)
        .await
        .expect("the SMTP timeout ends the attempt")
}

#[tokio::test]
async fn smtp_replies_are_classified() {
    let greeting = "220 fake.localhost ESMTP\r\n";
    let cases = [
        (greeting, "451 4.3.0 try again later\r\n", true),
        (greeting, "452 4.2.2 mailbox full\r\n", true),
        ("421 4.3.2 shutting down\r\n", "", true),
        (greeting, "550 5.1.1 no such user\r\n", false),
        (greeting, "554 5.7.1 rejected\r\n", false),
    ];
    for (greeting, rcpt, transient) in cases {
        let addr = scripted_server(greeting, rcpt).await;
        let outcome = send_to(addr, Duration::from_secs(5)).await;
        let code = if rcpt.is_empty() {
            &greeting[..3]
        } else {
            &rcpt[..3]
        };
        match (&outcome, transient) {
            (Outcome::Retry { reason, .. }, true) | (Outcome::Permanent { reason }, false) => {
                assert!(reason.contains(code), "{reason}")
            }
            _ => panic!("{code}: {outcome:?}"),
        }
    }
}

#[tokio::test]
async fn refused_connections_and_timeouts_are_transient() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let closed = listener.local_addr().expect("address");
    drop(listener);
    let outcome = send_to(closed, Duration::from_secs(5)).await;
    assert!(matches!(outcome, Outcome::Retry { .. }), "{outcome:?}");

    // Accepts, then says nothing: the greeting never comes. The connection stays open
    // longer than `send_to` waits, so only the sender's own timeout can end the attempt.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = silent.local_addr().expect("address");
    let hold = tokio::spawn(async move {
        let connection = silent.accept().await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(connection);
    });
    let started = std::time::Instant::now();
    let outcome = send_to(addr, Duration::from_millis(300)).await;
    assert!(matches!(outcome, Outcome::Retry { .. }), "{outcome:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    hold.abort();
}
