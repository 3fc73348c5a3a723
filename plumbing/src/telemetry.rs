//! Telemetry of a relec process: structured logs, one Prometheus registry, and one HTTP
//! listener serving `/metrics`, `/healthz` (the process is alive) and `/readyz` (every
//! registered component is ready to do its work).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use axum::{
    Router, extract::State, http::StatusCode, http::header, response::IntoResponse, routing::get,
};
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::{
    Error,
    config::{LogFormat, TelemetryConfig},
};

/// Starts logging as configured; `RUST_LOG`, when set, wins over `log_level`.
pub fn init_logs(config: &TelemetryConfig) -> Result<(), Error> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log_level))
        .map_err(|e| Error::Telemetry(e.to_string()))?;
    let registry = tracing_subscriber::registry().with(filter);
    let result = match config.log_format {
        LogFormat::Human => registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init(),
    };
    result.map_err(|e| Error::Telemetry(e.to_string()))
}

/// Readiness of the components of one process: each registers, and `/readyz` answers 200
/// only when all of them say they are ready.
#[derive(Debug, Clone, Default)]
pub struct Health {
    components: Arc<Mutex<BTreeMap<String, bool>>>,
}

/// One component's say in readiness.
#[derive(Debug, Clone)]
pub struct Readiness {
    name: String,
    health: Health,
}

impl Health {
    /// Registers a component, not ready until it says so.
    pub fn component(&self, name: &str) -> Readiness {
        self.lock().insert(name.to_owned(), false);
        Readiness {
            name: name.to_owned(),
            health: self.clone(),
        }
    }

    /// Names of the components that are not ready.
    pub fn not_ready(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, ready)| !**ready)
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, bool>> {
        self.components.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.health.lock().insert(self.name.clone(), ready);
    }
}

/// What the telemetry listener serves.
#[derive(Debug, Clone)]
pub struct Telemetry {
    pub registry: Registry,
    pub health: Health,
}

impl Telemetry {
    /// A registry with `relec_build_info` set, and no components yet.
    pub fn new() -> Self {
        let registry = Registry::new();
        let info = prometheus::IntGaugeVec::new(
            prometheus::Opts::new(
                "relec_build_info",
                "Build of the running relec binary: 1, labelled by version.",
            ),
            &["version"],
        )
        .expect("valid metric");
        info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        registry
            .register(Box::new(info))
            .expect("first registration");
        Self {
            registry,
            health: Health::default(),
        }
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

/// Binds the telemetry listener.
pub async fn bind(config: &TelemetryConfig) -> Result<TcpListener, Error> {
    TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Listen {
            addr: config.listen,
            source,
        })
}

/// Serves `/metrics`, `/healthz` and `/readyz`, and a stage's own `admin` routes, on
/// `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    telemetry: Telemetry,
    admin: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(telemetry)
        .merge(admin);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn metrics(State(t): State<Telemetry>) -> impl IntoResponse {
    let mut body = Vec::new();
    match TextEncoder::new().encode(&t.registry.gather(), &mut body) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn readyz(State(t): State<Telemetry>) -> impl IntoResponse {
    let waiting = t.health.not_ready();
    if waiting.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", waiting.join(", ")),
        )
    }
}
