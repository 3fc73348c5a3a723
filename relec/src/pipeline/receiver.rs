//! The subscribers' end of the pipeline: an HTTP server on 127.0.0.1 that verifies each
//! webhook's Standard Webhooks signature with the notifier's own `verify`, records what
//! arrived and when, and can be told to hang on one endpoint.

use std::{
    collections::HashSet,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::post,
};
use relec_notifier::webhook::{DEFAULT_TOLERANCE, HEADER_ID, WebhookSecret, verify};
use relec_schemas::Alert;
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};

/// The longest a hanging endpoint holds a request, whatever happens.
const MAX_HANG: Duration = Duration::from_secs(600);

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The endpoint: the last segment of `/hook/{name}`.
    pub hook: String,
    /// The `webhook-id` header: the notification's idempotency key.
    pub key: String,
    pub at: Instant,
    /// Whether the signature and timestamp verified.
    pub verified: bool,
    /// Whether it was answered 200 at once (not held by a hanging endpoint).
    pub delivered: bool,
    /// The alerts of a native-format body.
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Clone)]
struct Shared {
    secret: Arc<WebhookSecret>,
    hits: Arc<Mutex<Vec<Hit>>>,
    /// The endpoints that hang; a change wakes the requests they hold.
    hanging: watch::Sender<HashSet<String>>,
}

/// The receiver; it stops when dropped.
#[derive(Debug)]
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Shared,
    _stop: DropGuard,
}

impl Receiver {
    /// Serves on a free loopback port, verifying with `secret`.
    pub async fn start(secret: &str) -> anyhow::Result<Self> {
        let secret =
            WebhookSecret::parse(secret).map_err(|e| anyhow::anyhow!("webhook secret: {e}"))?;
        let shared = Shared {
            secret: Arc::new(secret),
            hits: Arc::default(),
            hanging: watch::Sender::new(HashSet::new()),
        };
        let app = Router::new()
            .route("/hook/{name}", post(receive))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(token.cancelled_owned())
                .await
        });
        Ok(Self {
            addr,
            shared,
            _stop: stop.drop_guard(),
        })
    }

    /// The URL of endpoint `hook`.
    pub fn url(&self, hook: &str) -> String {
        format!("http://{}/hook/{hook}", self.addr)
    }

    /// Makes `hook` hold every request without answering (or stop doing so, which answers
    /// the held ones; their senders have usually given up by then).
    pub fn hang(&self, hook: &str, hang: bool) {
        self.shared.hanging.send_modify(|set| {
            if hang {
                set.insert(hook.to_owned());
            } else {
                set.remove(hook);
            }
        });
    }

    /// How many requests arrived so far: what [`Receiver::hits`] would return, counted
    /// without copying them.
    pub fn count(&self) -> usize {
        self.shared.hits.lock().expect("hits lock").len()
    }

    /// Every request so far, in arrival order.
    pub fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().expect("hits lock").clone()
    }
}

async fn receive(
    State(shared): State<Shared>,
    Path(hook): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    let verified = verify(
        &shared.secret,
        &headers,
        &body,
        SystemTime::now(),
        DEFAULT_TOLERANCE,
    )
    .is_ok();
    let mut hanging = shared.hanging.subscribe();
    let hangs = hanging.borrow().contains(&hook);
    let hit = Hit {
        key: (headers.get(HEADER_ID))
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        at,
        verified,
        delivered: verified && !hangs,
        alerts: native_alerts(&body),
        hook: hook.clone(),
    };
    shared.hits.lock().expect("hits lock").push(hit);
    if !verified {
        return StatusCode::UNAUTHORIZED;
    }
    if hangs {
        let _ = tokio::time::timeout(MAX_HANG, hanging.wait_for(|set| !set.contains(&hook))).await;
    }
    StatusCode::OK
}

/// The alerts of a native-format body; none for another format.
fn native_alerts(body: &[u8]) -> Vec<Alert> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|mut v| serde_json::from_value(v["alerts"].take()).ok())
        .unwrap_or_default()
}
