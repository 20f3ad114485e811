//! `GET /api/v1/interactions?open=true`: the visits open right now, most recently active first,
//! with their running totals as they stand.

use axum::{
    extract::{Query, State},
    Json,
};
use axum_extra::extract::WithRejection;
use serde::Deserialize;

use super::Admin;
use crate::{
    api_types::{OpenInteractionJson, OpenInteractionList},
    error::ApiError,
    state::AppState,
};

/// Query of the list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Must be `true`: closed visits are listed with their contact.
    open: Option<bool>,
}

/// Lists the open interactions.
#[utoipa::path(
    get,
    path = "/api/v1/interactions", operation_id = "listOpenInteractions",
    tag = "admin",
    params(ListQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = OpenInteractionList),
        (status = 400, description = "open=true missing", body = crate::error::ErrorEnvelope),
        (status = 401, description = "No or wrong admin token", body = crate::error::ErrorEnvelope),
    )
)]
pub async fn list(
    _: Admin,
    State(state): State<AppState>,
    WithRejection(Query(query), _): WithRejection<Query<ListQuery>, ApiError>,
) -> Result<Json<OpenInteractionList>, ApiError> {
    if query.open != Some(true) {
        return Err(ApiError::InvalidPayload(
            "pass open=true: this lists the visits open now (closed ones are listed with their contact)"
                .into(),
        ));
    }
    Ok(Json(open_visits(&state).await?))
}

/// Most open visits listed: under a flood there can be hundreds of thousands.
pub(crate) const OPEN_LISTED: usize = 500;

/// The visits open now, most recently active first, at most [`OPEN_LISTED`] (the API's answer
/// and the Profile's page).
pub(crate) async fn open_visits(state: &AppState) -> Result<OpenInteractionList, ApiError> {
    let mut open = state.store().open_interactions(OPEN_LISTED).await?;
    open.sort_by(|a, b| {
        b.last_activity
            .cmp(&a.last_activity)
            .then(a.id.0.cmp(&b.id.0))
    });
    Ok(OpenInteractionList {
        interactions: open.into_iter().map(OpenInteractionJson::from).collect(),
    })
}
