//! `GET /healthz`: liveness.

use axum::Json;
use serde_json::{json, Value};

/// Answers `{"status": "ok"}` while the server runs.
pub async fn handle() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
