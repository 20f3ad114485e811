//! `GET|POST {prefix}/flush`: end the caller's session now (Sitecore's session abandon), so the
//! interaction is closed and committed with its totals.

use axum::{extract::State, Json};

use crate::{
    api_types::FlushedBody,
    edge::{cookies, SessionCookie, TrackingCaller},
    error::ApiError,
    state::AppState,
};

/// Ends the live interaction, if any. Any body is accepted and ignored.
#[utoipa::path(
    method(get, post),
    path = "/sitecore/api/jss/track/flush", operation_id = "flush",
    tag = "tracking",
    params(("sc_apikey" = String, Query, description = "A configured API key")),
    responses(
        (status = 200, description = "Whether an interaction was ended (also answered to GET)", body = FlushedBody),
        (status = 400, description = "Bad key", body = crate::error::ErrorEnvelope),
        (status = 403, description = "Origin not allowed", body = crate::error::ErrorEnvelope),
    )
)]
pub async fn handle(
    State(state): State<AppState>,
    caller: TrackingCaller,
) -> Result<(crate::edge::SetCookies, Json<FlushedBody>), ApiError> {
    let now = state.clock().now();
    let visitor = super::visitor(&caller);
    let closed = state.sessions().flush(&visitor, now).await?;
    let human = state.sessions().classify(&visitor).is_none();
    Ok((
        cookies(&state, &caller, SessionCookie::Clear, human),
        Json(FlushedBody { closed }),
    ))
}
