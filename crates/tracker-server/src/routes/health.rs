//! `GET /healthz` (liveness) and `GET /readyz` (readiness).

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

use crate::state::AppState;

/// Answers `{"status": "ok"}` while the server runs and can still commit: when the store's
/// writer has died (it never should: a change-set that fails or panics is refused alone), 503 in
/// the envelope, so that a supervisor restarts the process instead of leaving it answering 503
/// to every tracking request. No I/O: a slow database does not fail liveness (`/readyz` says
/// that).
#[utoipa::path(get, path = "/healthz", operation_id = "health", tag = "operations", responses(
    (status = 200, description = "Alive", body = Object),
    (status = 503, description = "The store's writer died: restart the process", body = crate::error::ErrorEnvelope),
))]
pub async fn handle(State(state): State<AppState>) -> Response {
    match state.store().alive() {
        Ok(()) => Json(json!({"status": "ok"})).into_response(),
        Err(error) => {
            tracing::error!(%error, "not alive");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "error": {"code": "unavailable", "message": format!("not alive: {error}")},
                    "status": "dead",
                })),
            )
                .into_response()
        }
    }
}

/// Answers 200 when every dependency works right now, and 503 (`unavailable`, in the error
/// envelope) when one does not, with one entry per dependency in `checks` either way: `store`
/// (it committed a write of its own: not a full disk, a read-only or locked file, an
/// unreachable PostgreSQL) and `sessions` (the session state answered: Redis reachable). A load
/// balancer should send tracking traffic only to a ready node; `/healthz` says only that the
/// process runs.
#[utoipa::path(get, path = "/readyz", operation_id = "ready", tag = "operations", responses(
    (status = 200, description = "Every dependency works", body = Object),
    (status = 503, description = "A dependency does not work: the envelope, and `checks`", body = crate::error::ErrorEnvelope),
))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let (store, sessions) = tokio::join!(
        async {
            state.store().alive()?;
            state.store().check_writes().await
        },
        state.sessions().count()
    );
    let check = |outcome: Result<(), String>| match outcome {
        Ok(()) => json!({"status": "ok"}),
        Err(error) => json!({"status": "failing", "error": error}),
    };
    let failing: Vec<String> = [
        ("store", store.as_ref().err().map(ToString::to_string)),
        ("sessions", sessions.as_ref().err().map(ToString::to_string)),
    ]
    .into_iter()
    .filter_map(|(name, error)| error.map(|e| format!("{name}: {e}")))
    .collect();
    let checks = json!({
        "store": check(store.map_err(|e| e.to_string())),
        "sessions": check(sessions.map(|_| ()).map_err(|e| e.to_string())),
    });
    if failing.is_empty() {
        return Json(json!({"status": "ready", "checks": checks})).into_response();
    }
    tracing::warn!(failing = ?failing, "not ready");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({
            "error": {"code": "unavailable", "message": format!("not ready: {}", failing.join("; "))},
            "status": "not_ready",
            "checks": checks,
        })),
    )
        .into_response()
}
