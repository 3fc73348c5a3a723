//! The notifier's admin endpoints on the telemetry listener: reload the subscriptions
//! now, and list, create and expire silences. Keep the listener on a private address.

use std::str::FromStr;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use serde_json::json;

use super::{
    deliver::now_ms,
    reload::{ReloadHandle, Status},
    silences::{NewSilence, SilenceBook, SilenceStore},
};
use crate::{Error, Silence};

#[derive(Clone)]
struct Admin {
    reload: ReloadHandle,
    book: SilenceBook,
    store: SilenceStore,
}

/// `POST /admin/subscriptions/reload`, `GET` and `POST /admin/silences`,
/// `DELETE /admin/silences/{id}`.
pub fn router(reload: ReloadHandle, book: SilenceBook, store: SilenceStore) -> Router {
    Router::new()
        .route("/admin/subscriptions/reload", post(reload_now))
        .route("/admin/silences", get(list).post(create))
        .route("/admin/silences/{id}", delete(expire))
        .with_state(Admin {
            reload,
            book,
            store,
        })
}

async fn reload_now(State(admin): State<Admin>) -> Response {
    match admin.reload.reload().await {
        Some(outcome) => {
            let status = if outcome.status == Status::Refused {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            };
            (status, Json(json!(outcome))).into_response()
        }
        None => problem(StatusCode::SERVICE_UNAVAILABLE, "the stage is stopping"),
    }
}

/// A silence as listed: itself and whether it is pending, active or expired now.
pub fn listed(silence: &Silence, now: i64) -> serde_json::Value {
    let state = if silence.is_expired(now) {
        "expired"
    } else if silence.is_active(now) {
        "active"
    } else {
        "pending"
    };
    let mut value = json!(silence);
    value["state"] = json!(state);
    value
}

async fn list(State(admin): State<Admin>) -> Response {
    let now = now_ms();
    let silences = admin.book.snapshot();
    let mut all: Vec<&Silence> = silences.iter().collect();
    all.sort_by_key(|s| (s.ends_at, s.id));
    let listed: Vec<serde_json::Value> = all.into_iter().map(|s| listed(s, now)).collect();
    Json(json!({ "silences": listed })).into_response()
}

async fn create(State(admin): State<Admin>, body: Bytes) -> Response {
    let new: NewSilence = match serde_json::from_slice(&body) {
        Ok(new) => new,
        Err(e) => return problem(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
    };
    let silence = match new.build(now_ms()) {
        Ok(s) => s,
        Err(e) => return problem(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
    };
    if let Err(e) = admin.store.put(&silence).await {
        return problem(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
    }
    tracing::info!(id = %silence.id, by = silence.created_by, comment = silence.comment, "silence created");
    admin.book.upsert(silence.clone());
    (StatusCode::CREATED, Json(listed(&silence, now_ms()))).into_response()
}

async fn expire(State(admin): State<Admin>, Path(id): Path<String>) -> Response {
    if uuid::Uuid::from_str(&id).is_err() {
        return problem(StatusCode::NOT_FOUND, &format!("{id} is not a silence id"));
    }
    let now = now_ms();
    match admin.store.expire(&admin.book.snapshot(), &id, now).await {
        Ok((silence, changed)) => {
            if changed {
                tracing::info!(id = %silence.id, "silence expired");
            }
            admin.book.upsert(silence.clone());
            (StatusCode::OK, Json(listed(&silence, now))).into_response()
        }
        Err(Error::NotFound(reason)) => problem(StatusCode::NOT_FOUND, &reason),
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

fn problem(status: StatusCode, detail: &str) -> Response {
    (status, Json(json!({ "error": detail }))).into_response()
}
