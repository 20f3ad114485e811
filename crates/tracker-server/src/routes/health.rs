//! `GET /healthz` (liveness) and `GET /readyz` (readiness).

use axum::{extract::State, Json};
use serde_json::{json, Value};

use crate::{error::ApiError, state::AppState};

/// Answers `{"status": "ok"}` while the server runs.
#[utoipa::path(get, path = "/healthz", operation_id = "health", tag = "operations", responses((status = 200, description = "Alive", body = Object)))]
pub async fn handle() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Answers `{"status": "ready"}` when the store has just committed a write of its own, and 503
/// (`unavailable`) when it could not: a full disk, a read-only or locked file. A load balancer
/// should send tracking traffic only to a ready server; `/healthz` says only that the process
/// runs.
#[utoipa::path(get, path = "/readyz", operation_id = "ready", tag = "operations", responses(
    (status = 200, description = "The store accepts writes", body = Object),
    (status = 503, description = "The store does not accept writes", body = crate::error::ErrorEnvelope),
))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state
        .store()
        .check_writes()
        .await
        .map_err(|error| ApiError::Unavailable(error.to_string()))?;
    Ok(Json(json!({"status": "ready"})))
}
