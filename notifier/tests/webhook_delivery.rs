//! Webhook delivery against a real HTTP receiver on 127.0.0.1 (axum, port 0) that checks
//! every Standard Webhooks signature: each format arrives signed, tampered and stale
//! requests are refused, the receiver's answers are classified for retrying, and the
//! retry loop delivers through transient failures with identical requests.

mod common;

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use rand::{SeedableRng, rngs::SmallRng};
use relec_notifier::{
    Notification,
    retry::{Delivery, Outcome, RetryPolicy, deliver},
    subscriptions::{WebhookChannel, WebhookFormat},
    webhook::{
        DEFAULT_TOLERANCE, HEADER_ID, HEADER_IDEMPOTENCY_KEY, HEADER_TIMESTAMP, VerifyError,
        WebhookOptions, WebhookSecret, WebhookSender, body, verify,
    },
};
use relec_plumbing::config::Secret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The Standard Webhooks specification's example secret.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A scripted answer: status and Retry-After.
type Answer = (u16, Option<String>);

/// One request as the receiver saw it, and what its signature check said.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
    verdict: Result<(), VerifyError>,
}

/// A webhook receiver: verifies each request, refuses bad ones with 401, answers good
/// ones from a script (status, Retry-After) and with 204 once the script is used up.
#[derive(Clone)]
struct Receiver {
    secret: Arc<WebhookSecret>,
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
}

impl Receiver {
    async fn start(script: Vec<Answer>) -> (SocketAddr, Self) {
        let receiver = Self {
            secret: Arc::new(WebhookSecret::parse(SECRET).expect("valid secret")),
            received: Arc::default(),
            script: Arc::new(Mutex::new(script.into())),
        };
        let app = Router::new()
            .route("/hook", post(handle))
            .with_state(receiver.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, receiver)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn handle(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    let verdict = verify(
        &receiver.secret,
        &headers,
        &body,
        SystemTime::now(),
        DEFAULT_TOLERANCE,
    );
    let refused = verdict.is_err();
    receiver.received.lock().unwrap().push(Received {
        headers,
        body,
        verdict,
    });
    if refused {
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    let Some((status, retry_after)) = receiver.script.lock().unwrap().pop_front() else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let mut response = StatusCode::from_u16(status)
        .expect("status")
        .into_response();
    if let Some(value) = retry_after {
        let value = HeaderValue::try_from(value).expect("header value");
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn channel(addr: SocketAddr, format: WebhookFormat) -> WebhookChannel {
    WebhookChannel {
        name: "main".into(),
        url: format!("http://{addr}/hook"),
        secret: Secret::new(SECRET),
        format,
        timeout: Duration::from_secs(5),
        headers: [("x-tenant".to_owned(), "tur-ncp".to_owned())].into(),
    }
}

fn sender() -> WebhookSender {
    WebhookSender::new(WebhookOptions::default()).expect("client")
}

fn header<'a>(request: &'a Received, name: &str) -> &'a str {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn every_format_arrives_signed_and_verified() {
    let (addr, receiver) = Receiver::start(vec![]).await;
    let notification = common::sample();
    let now = SystemTime::now();
    let formats = [
        (WebhookFormat::Native, "application/json"),
        (WebhookFormat::Cap, "application/xml; charset=utf-8"),
        (WebhookFormat::Alertmanager, "application/json"),
    ];
    for (format, _) in formats {
        let outcome = sender()
            .send(&channel(addr, format), &notification, now)
            .await;
        assert_eq!(outcome, Outcome::Delivered, "{format:?}");
    }

    let received = receiver.received();
    assert_eq!(received.len(), 3);
    let timestamp = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for (request, (format, content_type)) in received.iter().zip(formats) {
        assert_eq!(request.verdict, Ok(()), "{format:?}");
        assert_eq!(header(request, HEADER_ID), notification.idempotency_key);
        assert_eq!(
            header(request, HEADER_IDEMPOTENCY_KEY),
            notification.idempotency_key
        );
        assert_eq!(header(request, HEADER_TIMESTAMP), timestamp.to_string());
        assert_eq!(header(request, "content-type"), content_type);
        assert_eq!(header(request, "x-tenant"), "tur-ncp");
        let (expected, _) = body(format, &notification, &WebhookOptions::default()).unwrap();
        assert_eq!(request.body, expected, "{format:?}");
    }
}

#[tokio::test]
async fn tampered_stale_and_forged_requests_are_refused() {
    let (addr, receiver) = Receiver::start(vec![]).await;
    let notification = common::sample();
    let hook = channel(addr, WebhookFormat::Native);
    assert_eq!(
        sender().send(&hook, &notification, SystemTime::now()).await,
        Outcome::Delivered
    );
    let genuine = receiver.received().pop().expect("one request");
    let secret = WebhookSecret::parse(SECRET).unwrap();

    // The body changed on the way: the signature no longer matches.
    let tampered = String::from_utf8(genuine.body.to_vec())
        .unwrap()
        .replace("IRN-TUR-VAN", "IRN-TUR-HAK");
    let check = |body: &[u8], now| verify(&secret, &genuine.headers, body, now, DEFAULT_TOLERANCE);
    assert_eq!(
        check(tampered.as_bytes(), SystemTime::now()),
        Err(VerifyError::NoMatch)
    );
    // A replay ten minutes later: the timestamp is too old.
    let later = SystemTime::now() + Duration::from_secs(600);
    assert!(matches!(
        check(&genuine.body, later),
        Err(VerifyError::Stale { .. })
    ));

    // The same, over the wire: a tampered replay of the genuine headers is refused.
    let mut replay = reqwest::Client::new().post(&hook.url).body(tampered);
    for (name, value) in &genuine.headers {
        if name != header::CONTENT_LENGTH && name != header::HOST {
            replay = replay.header(name, value);
        }
    }
    let status = replay.send().await.expect("receiver answers").status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A sender whose clock is ten minutes behind signs requests the receiver calls stale,
    // and a refusal by signature is final, not retried.
    let stale = SystemTime::now() - Duration::from_secs(600);
    let outcome = sender().send(&hook, &notification, stale).await;
    assert_eq!(
        outcome,
        Outcome::permanent("webhook: HTTP 401 Unauthorized")
    );

    // Signed with another secret.
    let mut forged = hook.clone();
    forged.secret = Secret::new("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    let outcome = sender()
        .send(&forged, &notification, SystemTime::now())
        .await;
    assert!(matches!(outcome, Outcome::Permanent { .. }), "{outcome:?}");

    let verdicts: Vec<_> = receiver.received().into_iter().map(|r| r.verdict).collect();
    assert!(
        matches!(
            verdicts.as_slice(),
            [
                Ok(()),
                Err(VerifyError::NoMatch),
                Err(VerifyError::Stale { .. }),
                Err(VerifyError::NoMatch)
            ]
        ),
        "{verdicts:?}"
    );
}

#[tokio::test]
async fn receiver_answers_are_classified() {
    let in_two_minutes = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
    let script = vec![
        (503, Some("7".to_owned())),
        (429, Some(in_two_minutes)),
        (408, None),
        (500, None),
        (400, None),
        (410, None),
        (302, None),
        (200, None),
    ];
    let (addr, _receiver) = Receiver::start(script).await;
    let hook = channel(addr, WebhookFormat::Alertmanager);
    let notification = common::sample();
    let sender = sender();
    let mut outcomes = Vec::new();
    for _ in 0..8 {
        outcomes.push(sender.send(&hook, &notification, SystemTime::now()).await);
    }

    assert_eq!(
        outcomes[0],
        Outcome::Retry {
            after: Some(Duration::from_secs(7)),
            reason: "webhook: HTTP 503 Service Unavailable".into()
        }
    );
    match &outcomes[1] {
        Outcome::Retry {
            after: Some(after), ..
        } => {
            assert!((118..=120).contains(&after.as_secs()), "{after:?}")
        }
        other => panic!("429: {other:?}"),
    }
    assert!(
        matches!(outcomes[2], Outcome::Retry { after: None, .. }),
        "408"
    );
    assert!(
        matches!(outcomes[3], Outcome::Retry { after: None, .. }),
        "500"
    );
    for (i, status) in [(4, "400"), (5, "410"), (6, "302")] {
        match &outcomes[i] {
            Outcome::Permanent { reason } => assert!(reason.contains(status), "{reason}"),
            other => panic!("{status}: {other:?}"),
        }
    }
    assert_eq!(outcomes[7], Outcome::Delivered);
}

#[tokio::test]
async fn refused_connections_and_timeouts_are_retried() {
    let notification = common::sample();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let closed = listener.local_addr().expect("address");
    drop(listener);
    let outcome = sender()
        .send(
            &channel(closed, WebhookFormat::Native),
            &notification,
            SystemTime::now(),
        )
        .await;
    match outcome {
        Outcome::Retry { reason, .. } => assert!(reason.contains("connect"), "{reason}"),
        other => panic!("{other:?}"),
    }

    // Accepts the connection and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = silent.local_addr().expect("address");
    let hold = tokio::spawn(async move {
        let connection = silent.accept().await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(connection);
    });
    let mut hook = channel(addr, WebhookFormat::Native);
    hook.timeout = Duration::from_millis(300);
    let outcome = sender().send(&hook, &notification, SystemTime::now()).await;
    assert_eq!(outcome, Outcome::retry("webhook: timed out"));
    hold.abort();
}

#[tokio::test]
async fn retries_deliver_the_same_request_through_transient_failures() {
    let script = vec![(503, None), (429, Some("0".to_owned()))];
    let (addr, receiver) = Receiver::start(script).await;
    let hook = channel(addr, WebhookFormat::Cap);
    let notification: Notification = common::sample();
    let policy = RetryPolicy {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(100),
        max_attempts: 5,
    };
    let sender = sender();
    let (sender, hook, notification) = (&sender, &hook, &notification);
    let delivery = deliver(
        &policy,
        &mut SmallRng::seed_from_u64(1),
        &CancellationToken::new(),
        move |_| sender.send(hook, notification, SystemTime::now()),
    )
    .await;
    assert_eq!(delivery, Delivery::Delivered { attempts: 3 });

    let received = receiver.received();
    assert_eq!(received.len(), 3);
    for request in &received {
        assert_eq!(request.verdict, Ok(()));
        assert_eq!(header(request, HEADER_ID), notification.idempotency_key);
        assert_eq!(
            request.body, received[0].body,
            "every attempt sends the same body"
        );
    }

    // A permanent refusal ends the loop at once, for the dead-letter topic.
    let (addr, receiver) = Receiver::start(vec![(422, None)]).await;
    let hook = channel(addr, WebhookFormat::Cap);
    let hook = &hook;
    let delivery = deliver(
        &policy,
        &mut SmallRng::seed_from_u64(1),
        &CancellationToken::new(),
        move |_| sender.send(hook, notification, SystemTime::now()),
    )
    .await;
    assert_eq!(
        delivery,
        Delivery::Failed {
            attempts: 1,
            permanent: true,
            reason: "webhook: HTTP 422 Unprocessable Entity".into()
        }
    );
    assert_eq!(receiver.received().len(), 1);
}
