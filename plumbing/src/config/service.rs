//! The `[telemetry]` and `[shutdown]` sections: logs, the metrics and health listener, and
//! how long a stopping process may take to drain.

use std::{net::SocketAddr, time::Duration};

use serde::{Deserialize, Serialize};

use super::{Problems, Validate, key};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// `human` (default) or `json`, one object per line for log shippers.
    pub log_format: LogFormat,
    /// A tracing filter such as `info` or `info,relec_rules=debug`; `RUST_LOG` wins.
    pub log_level: String,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub listen: SocketAddr,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Human,
            log_level: "info".to_owned(),
            listen: SocketAddr::from(([127, 0, 0, 1], 9898)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Human,
    Json,
}

impl Validate for TelemetryConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log_level) {
            problems.push(key(path, "log_level"), format!("{:?}: {e}", self.log_level));
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// After SIGTERM, in-flight work gets this long to finish before it is aborted.
    #[serde(with = "humantime_serde")]
    pub drain_deadline: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            drain_deadline: Duration::from_secs(10),
        }
    }
}

impl Validate for ShutdownConfig {
    fn validate(&self, path: &str, problems: &mut Problems) {
        if self.drain_deadline.is_zero() {
            problems.push(key(path, "drain_deadline"), "must be more than 0s");
        }
    }
}
