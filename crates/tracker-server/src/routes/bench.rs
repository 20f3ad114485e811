//! `POST /bench/noop/event` and `/bench/noop/flush` (only with `server.bench_noop`): the load
//! harness's baseline. It costs what the HTTP stack costs and nothing more: the same layers as
//! `/event`, the body read under the same limit, the same small JSON 200 as the real endpoint
//! gives; no API key, cookie, pipeline or storage work.

use axum::{
    body::Body,
    extract::{Path, State},
    Json,
};
use serde_json::{json, Value};

use crate::{error::ApiError, state::AppState};

/// Reads the body and answers `{"tracked": 0}` (`event`) or `{"closed": false}` (`flush`).
pub async fn noop(
    State(state): State<AppState>,
    axum_extra::extract::WithRejection(Path(action), _): axum_extra::extract::WithRejection<
        Path<String>,
        ApiError,
    >,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    super::track::read_body(&state, body).await?;
    match action.as_str() {
        "event" => Ok(Json(json!({"tracked": 0}))),
        "flush" => Ok(Json(json!({"closed": false}))),
        _ => Err(ApiError::NotFound("no such endpoint".into())),
    }
}
