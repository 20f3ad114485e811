//! `GET /api/v1/definitions`.

use axum::{extract::State, Json};
use tracker_core::definitions::DefinitionKind;

use super::Admin;
use crate::{api_types::DefinitionsJson, state::AppState};

/// Every definition, by kind.
pub async fn list(_: Admin, State(state): State<AppState>) -> Json<DefinitionsJson> {
    let defs = state.definitions();
    let list = |kind| defs.list(kind).iter().map(Into::into).collect();
    Json(DefinitionsJson {
        goals: list(DefinitionKind::Goal),
        page_events: list(DefinitionKind::PageEvent),
        outcomes: list(DefinitionKind::Outcome),
        campaigns: list(DefinitionKind::Campaign),
    })
}
