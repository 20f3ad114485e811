//! `GET /api/v1/definitions`.

use axum::{extract::State, Json};
use tracker_core::definitions::DefinitionKind;

use super::Admin;
use crate::{api_types::DefinitionsJson, state::AppState};

/// Every definition, by kind.
#[utoipa::path(
    get,
    path = "/api/v1/definitions", operation_id = "listDefinitions",
    tag = "admin",
    security(("admin_token" = [])),
    responses((status = 200, body = DefinitionsJson), (status = 401, description = "No or wrong admin token", body = crate::error::ErrorEnvelope))
)]
pub async fn list(_: Admin, State(state): State<AppState>) -> Json<DefinitionsJson> {
    Json(definitions(&state))
}

/// Every definition, by kind (the API's answer and the Profile's page).
pub(crate) fn definitions(state: &AppState) -> DefinitionsJson {
    let defs = state.definitions();
    let list = |kind| defs.list(kind).iter().map(Into::into).collect();
    DefinitionsJson {
        goals: list(DefinitionKind::Goal),
        page_events: list(DefinitionKind::PageEvent),
        outcomes: list(DefinitionKind::Outcome),
        campaigns: list(DefinitionKind::Campaign),
    }
}
