//! `POST /bench/noop` (only with `server.bench_noop`): the load harness's baseline. It costs
//! what the HTTP stack costs and nothing more: the same layers as `/event`, the body read under
//! the same limit, a small JSON 200; no API key, cookie, pipeline or storage work.

use axum::{body::Body, extract::State, Json};

use crate::{error::ApiError, routes::track::event::TrackedBody, state::AppState};

/// Reads the body and answers `{"tracked": 0}`.
pub async fn noop(
    State(state): State<AppState>,
    body: Body,
) -> Result<Json<TrackedBody>, ApiError> {
    let limit = state.settings().tracker.limits.max_body_bytes;
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::PayloadTooLarge(format!("body is larger than the limit of {limit} bytes"))
    })?;
    Ok(Json(TrackedBody { tracked: 0 }))
}
