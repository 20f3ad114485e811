//! `GET /api/v1/contacts` and `GET /api/v1/contacts/{id}`.

use axum::{
    extract::{Path, Query, State},
    Json,
};
use axum_extra::extract::WithRejection;
use serde::Deserialize;
use tracker_core::{
    ids::{ContactId, DeviceId},
    store::ContactFilter,
};

use super::Admin;
use crate::{
    api_types::{ContactJson, ContactList},
    error::ApiError,
    state::AppState,
};

/// Query of the list.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Only the contact of this device (32 hex digits, as in the global cookie).
    device: Option<String>,
    /// At most this many (default 100, most 1000).
    limit: Option<usize>,
}

/// Lists contacts, most recently active first, or the contact of one device.
pub async fn list(
    _: Admin,
    State(state): State<AppState>,
    WithRejection(Query(query), _): WithRejection<Query<ListQuery>, ApiError>,
) -> Result<Json<ContactList>, ApiError> {
    let device = match query.device.as_deref() {
        Some(raw) => Some(DeviceId::parse(raw).ok_or_else(|| {
            ApiError::InvalidPayload(format!("device '{raw}' is not 32 hex digits"))
        })?),
        None => None,
    };
    let filter = ContactFilter {
        device,
        limit: query.limit.unwrap_or(100).clamp(1, 1000),
    };
    let contacts = state.store().contacts(filter).await?;
    Ok(Json(ContactList {
        contacts: contacts.into_iter().map(Into::into).collect(),
    }))
}

/// One contact with its devices, identifiers and interactions (open ones included).
pub async fn show(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ContactJson>, ApiError> {
    let not_found = || ApiError::NotFound(format!("no contact '{id}'"));
    let contact_id = uuid::Uuid::try_parse(id.trim_matches(['{', '}']))
        .map(ContactId)
        .map_err(|_| not_found())?;
    let contact = state
        .store()
        .contact(contact_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(contact.into()))
}
