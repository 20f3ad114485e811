//! `GET /healthz`: liveness.

use axum::Json;
use serde_json::{json, Value};

/// Answers `{"status": "ok"}` while the server runs.
#[utoipa::path(get, path = "/healthz", operation_id = "health", tag = "operations", responses((status = 200, description = "Alive", body = Object)))]
pub async fn handle() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
