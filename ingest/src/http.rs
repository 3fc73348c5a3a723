//! The HTTP API agencies publish through: `POST /v1/events` (one event or a batch, as JSON,
//! JSON Lines, or Avro single-object bytes) and `GET /v1/openapi.json`. Errors are RFC 9457
//! problem details naming every offending field by JSON Pointer.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::{Body, BodyDataStream},
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use futures::StreamExt;
use relec_schemas::{Decoder, IncidentEvent};
use serde_json::{Value, json};

use crate::{
    Error,
    auth::{Agencies, Agency},
    publisher::{Item, Outcome, Publisher},
    validate::FieldError,
};

/// The OpenAPI document of this API; a test holds the live API to it.
pub const OPENAPI: &str = include_str!("../openapi.json");

const PROBLEM_JSON: &str = "application/problem+json";
const JSON: &str = "application/json";
const NDJSON: &[&str] = &["application/x-ndjson", "application/jsonl"];
const AVRO: &[&str] = &["application/vnd.apache.avro+binary", "avro/binary"];

/// How long, at most, the rest of a refused oversized body is read and thrown away, so
/// that the client, still sending, gets to read the 413 rather than a reset connection.
const DISCARD_FOR: Duration = Duration::from_secs(5);

/// Limits that keep one publisher from hurting the others.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_batch: usize,
    pub retry_after: Duration,
    /// Enforced by the server (`server.rs`) on every connection.
    pub header_read_timeout: Duration,
    /// From the end of the headers to the end of the body.
    pub body_read_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct IngestApi {
    pub publisher: Publisher,
    pub agencies: Arc<Agencies>,
    pub limits: Limits,
    pub decoder: Arc<Decoder<IncidentEvent>>,
}

pub fn router(api: IngestApi) -> Router {
    Router::new()
        .route("/v1/events", post(post_events))
        .route(
            "/v1/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, JSON)], OPENAPI) }),
        )
        .with_state(api)
}

/// An RFC 9457 problem.
struct Problem {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
    extra: serde_json::Map<String, Value>,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Problem {
    fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            slug,
            title,
            detail: detail.into(),
            extra: Default::default(),
            headers: Vec::new(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": format!("/v1/problems/{}", self.slug),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Value::Object(map) = &mut body {
            map.extend(self.extra);
        }
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, PROBLEM_JSON)],
            body.to_string(),
        )
            .into_response();
        response.headers_mut().extend(self.headers);
        response
    }
}

async fn post_events(State(api): State<IngestApi>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let response = match handle(&api, &headers, body).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    };
    api.publisher
        .metrics()
        .request_seconds
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn handle(api: &IngestApi, headers: &HeaderMap, body: Body) -> Result<Response, Problem> {
    let agency = authenticate(&api.agencies, headers)?;
    let kind = content_kind(headers)?;
    let bytes = read_body(body, headers, &api.limits).await?;
    let ParsedBody { items, batch } = parse_body(kind, &bytes, &api.decoder).map_err(|detail| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            "Malformed body",
            detail,
        )
    })?;
    if items.len() > api.limits.max_batch {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Batch too large",
            format!(
                "{} events; a batch holds at most {}",
                items.len(),
                api.limits.max_batch
            ),
        ));
    }
    let ids: Vec<Option<String>> = items
        .iter()
        .map(|i| i.event_id().map(str::to_owned))
        .collect();
    match api.publisher.publish(agency, items).await {
        Ok(outcomes) => Ok(answer(&ids, outcomes, batch)),
        Err(Error::Forbidden {
            agency,
            country,
            index,
        }) => Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden-country",
            "Not allowed to report for this country",
            format!(
                "agency {agency} may not report for {country} (event {index}); nothing was published"
            ),
        )),
        Err(Error::Unavailable(reason)) => {
            let mut p = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Kafka unavailable",
                format!("events were not acknowledged ({reason}); retry later, re-sending is safe"),
            );
            let secs = api.limits.retry_after.as_secs().max(1).to_string();
            p.headers.push((
                header::RETRY_AFTER,
                HeaderValue::from_str(&secs).expect("digits"),
            ));
            Err(p)
        }
        Err(e) => Err(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            e.to_string(),
        )),
    }
}

/// Reads the body within the size and time limits. An oversized body is refused as soon as
/// its `Content-Length` or its bytes pass the limit, not after it has all arrived; a body
/// still incomplete after `body_read_timeout` gets 408 and its connection is closed.
async fn read_body(body: Body, headers: &HeaderMap, limits: &Limits) -> Result<Vec<u8>, Problem> {
    let limit = limits.max_body_bytes;
    let too_large = |stream| {
        discard(stream);
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Request body too large",
            format!("bodies are limited to {limit} bytes; split the batch"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut stream = body.into_data_stream();
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large(stream));
    }
    let deadline = tokio::time::Instant::now() + limits.body_read_timeout;
    // Reserve for what is declared only up to a point: a length is a claim, not bytes.
    let mut bytes = Vec::with_capacity(declared.map_or(0, |l| l as usize).min(1 << 20));
    loop {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .map_err(|_| {
                Problem::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body-timeout",
                    "Request body too slow",
                    format!(
                        "the body did not arrive in full within {} ms of the headers \
                         ({} bytes received); the connection is closed",
                        limits.body_read_timeout.as_millis(),
                        bytes.len()
                    ),
                )
            })?;
        match chunk {
            None => return Ok(bytes),
            Some(Ok(chunk)) if bytes.len() + chunk.len() > limit => return Err(too_large(stream)),
            Some(Ok(chunk)) => bytes.extend_from_slice(&chunk),
            Some(Err(e)) => {
                return Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    "malformed",
                    "Malformed body",
                    format!("the body could not be read: {e}"),
                ));
            }
        }
    }
}

/// Reads and drops what remains of a refused body for at most [`DISCARD_FOR`], in the
/// background while the answer goes out.
fn discard(mut stream: BodyDataStream) {
    tokio::spawn(async move {
        let drain = async { while let Some(Ok(_)) = stream.next().await {} };
        let _ = tokio::time::timeout(DISCARD_FOR, drain).await;
    });
}

fn authenticate<'a>(agencies: &'a Agencies, headers: &HeaderMap) -> Result<&'a Agency, Problem> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match key.and_then(|k| agencies.authenticate(k)) {
        Some(agency) => Ok(agency),
        None => {
            tracing::warn!(
                presented = key.is_some(),
                "publish request with an unknown or missing API key"
            );
            let mut p = Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Unknown or missing API key",
                "send the agency's API key as `Authorization: Bearer <key>`",
            );
            p.headers
                .push((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            Err(p)
        }
    }
}

/// What a request body holds, by its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// One event object or an array of them.
    Json,
    /// One event object per line.
    JsonLines,
    /// One Avro single-object record.
    Avro,
}

impl BodyKind {
    /// The kind a `Content-Type` value names (parameters such as `charset` ignored).
    pub fn from_content_type(value: &str) -> Option<Self> {
        let media = value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if media == JSON {
            Some(Self::Json)
        } else if NDJSON.contains(&media.as_str()) {
            Some(Self::JsonLines)
        } else if AVRO.contains(&media.as_str()) {
            Some(Self::Avro)
        } else {
            None
        }
    }
}

fn content_kind(headers: &HeaderMap) -> Result<BodyKind, Problem> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    BodyKind::from_content_type(value).ok_or_else(|| {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported content type",
            format!(
                "{value:?}; send application/json, application/x-ndjson or application/vnd.apache.avro+binary"
            ),
        )
    })
}

/// A request body read into items.
#[derive(Debug)]
pub struct ParsedBody {
    /// One per event position, valid or not.
    pub items: Vec<Item>,
    /// Whether the body was a batch, whose error pointers carry the event's index.
    pub batch: bool,
}

/// Reads a body of `kind` into items: an event that does not fit the schema becomes an
/// [`Item::Invalid`] naming its field; `Err` (400) only when the body as a whole is not
/// JSON or not UTF-8. The fuzz targets call this with arbitrary bytes.
pub fn parse_body(
    kind: BodyKind,
    bytes: &[u8],
    decoder: &Decoder<IncidentEvent>,
) -> Result<ParsedBody, String> {
    let body = |(items, batch)| ParsedBody { items, batch };
    match kind {
        BodyKind::Json => {
            // Fast path: well-formed events deserialise straight into records; only a body
            // with a bad event goes through `Value`, to find each offending field.
            let batch = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
            let fast = if batch {
                serde_json::from_slice::<Vec<IncidentEvent>>(bytes).ok()
            } else {
                serde_json::from_slice::<IncidentEvent>(bytes)
                    .ok()
                    .map(|e| vec![e])
            };
            if let Some(events) = fast {
                return Ok(ParsedBody {
                    items: events
                        .into_iter()
                        .map(|e| Item::Event(Box::new(e)))
                        .collect(),
                    batch,
                });
            }
            parse_json_slowly(bytes).map(body)
        }
        BodyKind::JsonLines => {
            let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
            let items = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|line| match serde_json::from_str::<IncidentEvent>(line) {
                    Ok(event) => Item::Event(Box::new(event)),
                    Err(_) => match serde_json::from_str::<Value>(line) {
                        Ok(value) => item_from_json(value),
                        Err(e) => Item::Invalid {
                            event_id: None,
                            errors: vec![FieldError::new("", e.to_string())],
                        },
                    },
                })
                .collect();
            Ok(ParsedBody { items, batch: true })
        }
        BodyKind::Avro => {
            let item = match decoder.decode_single_object(bytes) {
                Ok(event) => Item::Event(Box::new(event)),
                Err(e) => Item::Invalid {
                    event_id: None,
                    errors: vec![FieldError::new("", e.to_string())],
                },
            };
            Ok(ParsedBody {
                items: vec![item],
                batch: false,
            })
        }
    }
}

/// A JSON body with at least one bad event: every event on its own, so each gets its errors.
fn parse_json_slowly(bytes: &[u8]) -> Result<(Vec<Item>, bool), String> {
    match serde_json::from_slice::<Value>(bytes).map_err(|e| e.to_string())? {
        Value::Array(values) => Ok((values.into_iter().map(item_from_json).collect(), true)),
        value @ Value::Object(_) => Ok((vec![item_from_json(value)], false)),
        _ => Err("expected an event object or an array of them".into()),
    }
}

/// Reads one event from JSON; the first schema error is reported with its field's pointer.
pub fn item_from_json(value: Value) -> Item {
    let event_id = value
        .get("event_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    match serde_path_to_error::deserialize::<_, IncidentEvent>(value) {
        Ok(event) => Item::Event(Box::new(event)),
        Err(e) => {
            let pointer = json_pointer(&e.path().to_string());
            Item::Invalid {
                event_id,
                errors: vec![FieldError::new(pointer, e.into_inner().to_string())],
            }
        }
    }
}

/// `nationalities[0].count` becomes `/nationalities/0/count`.
fn json_pointer(path: &str) -> String {
    if path == "." {
        return String::new();
    }
    path.split(['.', '['])
        .filter(|s| !s.is_empty())
        .map(|s| {
            format!(
                "/{}",
                s.trim_end_matches(']')
                    .replace('~', "~0")
                    .replace('/', "~1")
            )
        })
        .collect()
}

fn answer(ids: &[Option<String>], outcomes: Vec<Outcome>, batch: bool) -> Response {
    let (mut accepted, mut duplicates, mut rejected) = (0, 0, 0);
    let mut errors = Vec::new();
    let results: Vec<Value> = outcomes
        .into_iter()
        .enumerate()
        .map(|(i, outcome)| {
            let mut r = json!({ "index": i, "event_id": ids[i] });
            match outcome {
                Outcome::Accepted(d) => {
                    accepted += 1;
                    r["status"] = "accepted".into();
                    r["partition"] = d.partition.into();
                    r["offset"] = d.offset.into();
                }
                Outcome::Duplicate => {
                    duplicates += 1;
                    r["status"] = "duplicate".into();
                }
                Outcome::Rejected(field_errors) => {
                    rejected += 1;
                    r["status"] = "rejected".into();
                    let prefix = if batch { format!("/{i}") } else { String::new() };
                    let list: Vec<Value> = field_errors
                        .iter()
                        .map(|f| json!({ "pointer": format!("{prefix}{}", f.pointer), "detail": f.reason }))
                        .collect();
                    errors.extend(list.iter().cloned());
                    r["errors"] = list.into();
                }
            }
            r
        })
        .collect();
    let summary = json!({ "accepted": accepted, "duplicates": duplicates, "rejected": rejected, "results": results });
    if rejected == 0 {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, JSON)],
            summary.to_string(),
        )
            .into_response();
    }
    let total = accepted + duplicates + rejected;
    let mut p = Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-events",
        "Invalid events",
        format!(
            "{rejected} of {total} events were rejected; the other {} were accepted",
            total - rejected
        ),
    );
    p.extra.insert("errors".into(), errors.into());
    if let Value::Object(map) = summary {
        p.extra.extend(map);
    }
    p.into_response()
}

#[cfg(test)]
mod tests {
    use super::json_pointer;

    #[test]
    fn serde_paths_become_json_pointers() {
        assert_eq!(
            json_pointer("nationalities[0].count"),
            "/nationalities/0/count"
        );
        assert_eq!(json_pointer("persons"), "/persons");
        assert_eq!(json_pointer("."), "");
    }
}
