//! `GET /api/v1/contacts` (search, paged), `GET /api/v1/contacts/{id}`, its export and its
//! erasure.

use axum::{
    extract::{Path, Query, State},
    Json,
};
use axum_extra::extract::WithRejection;
use chrono::NaiveDate;
use serde::Deserialize;
use tracker_core::{
    definitions::DefinitionKind,
    ids::{ContactId, DeviceId, Guid},
    store::{ContactCursor, ContactFilter, ContactText, InteractionCursor, InteractionsPage},
};

use super::Admin;
use crate::{
    api_types::{
        ContactExportJson, ContactJson, ContactList, ErasedJson, IdentifiedJson, NewIdentifierJson,
    },
    error::ApiError,
    state::AppState,
};

/// Query of the list. Every parameter is checked: a bad one is a 400, never ignored or clamped.
#[derive(Debug, Default, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// A contact id, a device id (32 hex digits, as in the global cookie) or an identifier.
    pub(crate) q: Option<String>,
    /// Only the contact of this device (32 hex digits).
    pub(crate) device: Option<String>,
    /// Contacts that reached this goal (GUID or name).
    pub(crate) goal: Option<String>,
    /// Contacts that had a visit with this campaign (GUID or name).
    pub(crate) campaign: Option<String>,
    /// Contacts that had a visit on this site (`sc_site`).
    pub(crate) site: Option<String>,
    /// Active on or after this day (`YYYY-MM-DD`, UTC).
    pub(crate) from: Option<String>,
    /// Active on or before this day (`YYYY-MM-DD`, UTC).
    pub(crate) to: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub(crate) limit: Option<String>,
    /// Where the page starts: the previous page's `nextCursor`.
    pub(crate) cursor: Option<String>,
}

/// The most contacts a page may hold.
const MAX_LIMIT: usize = 1000;

/// Lists contacts, most recently active first, paged, with the number that match.
#[utoipa::path(
    get,
    path = "/api/v1/contacts", operation_id = "listContacts",
    tag = "admin",
    params(ListQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = ContactList),
        (status = 400, description = "A bad parameter", body = crate::error::ErrorEnvelope),
        (status = 401, description = "No or wrong admin token", body = crate::error::ErrorEnvelope),
    )
)]
pub async fn list(
    _: Admin,
    State(state): State<AppState>,
    WithRejection(Query(query), _): WithRejection<Query<ListQuery>, ApiError>,
) -> Result<Json<ContactList>, ApiError> {
    Ok(Json(search(&state, query).await?))
}

/// A page of the contacts the query finds (the API's answer and the Profile's list).
pub(crate) async fn search(state: &AppState, query: ListQuery) -> Result<ContactList, ApiError> {
    let filter = filter(state, query)?;
    let page = state.store().contacts(filter).await?;
    Ok(ContactList {
        total: page.total,
        next_cursor: page.next.map(encode_cursor),
        contacts: page.contacts.into_iter().map(Into::into).collect(),
    })
}

fn bad(message: String) -> ApiError {
    ApiError::InvalidPayload(message)
}

/// The store's filter from the query, checked.
fn filter(state: &AppState, query: ListQuery) -> Result<ContactFilter, ApiError> {
    let non_empty = |name: &str, value: Option<String>| -> Result<Option<String>, ApiError> {
        match value {
            Some(v) if v.trim().is_empty() => Err(bad(format!("{name} is empty"))),
            other => Ok(other.map(|v| v.trim().to_string())),
        }
    };
    let device = match non_empty("device", query.device)? {
        Some(raw) => Some(
            DeviceId::parse(&raw)
                .ok_or_else(|| bad(format!("device '{raw}' is not 32 hex digits")))?,
        ),
        None => None,
    };
    let text = non_empty("q", query.q)?.map(|q| match Guid::parse(&q) {
        Some(guid) => ContactText::Id(guid),
        None => ContactText::Identifier(q),
    });
    let definition = |name: &str, kind, raw: Option<String>| -> Result<Option<Guid>, ApiError> {
        match non_empty(name, raw)? {
            Some(raw) => state
                .definitions()
                .resolve(kind, &raw)
                .map(|resolved| Some(resolved.definition.id))
                .map_err(|_| bad(format!("{name} '{raw}' names no {name} definition"))),
            None => Ok(None),
        }
    };
    let goal = definition("goal", DefinitionKind::Goal, query.goal)?;
    let campaign = definition("campaign", DefinitionKind::Campaign, query.campaign)?;
    let day = |name: &str, raw: Option<String>| -> Result<Option<NaiveDate>, ApiError> {
        non_empty(name, raw)?
            .map(|raw| {
                NaiveDate::parse_from_str(&raw, "%Y-%m-%d")
                    .map_err(|_| bad(format!("{name} '{raw}' is not a date like 2026-03-01")))
            })
            .transpose()
    };
    let from = day("from", query.from)?;
    let to = day("to", query.to)?;
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            return Err(bad(format!("from {from} is after to {to}")));
        }
    }
    let start_of = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    let limit = match non_empty("limit", query.limit)? {
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                bad(format!(
                    "limit '{raw}' is not a number from 1 to {MAX_LIMIT}"
                ))
            })?,
        None => 100,
    };
    let after = match non_empty("cursor", query.cursor)? {
        Some(raw) => Some(
            decode_cursor(&raw)
                .ok_or_else(|| bad(format!("cursor '{raw}' is not one this API gave out")))?,
        ),
        None => None,
    };
    Ok(ContactFilter {
        device,
        limit,
        text,
        goal,
        campaign,
        site: non_empty("site", query.site)?,
        active_from: from.and_then(start_of),
        active_before: to.and_then(|d| d.succ_opt()).and_then(start_of),
        known_only: !state.settings().profile.index_anonymous_contacts,
        after,
    })
}

/// A cursor as the API gives it out: the last contact's activity (epoch ms) and id.
fn encode_cursor(cursor: ContactCursor) -> String {
    format!(
        "{}.{}",
        cursor.last_activity.timestamp_millis(),
        cursor.id.0.simple()
    )
}

fn decode_cursor(raw: &str) -> Option<ContactCursor> {
    let (at, id) = raw.split_once('.')?;
    Some(ContactCursor {
        last_activity: chrono::DateTime::from_timestamp_millis(at.parse().ok()?)?,
        id: ContactId(uuid::Uuid::try_parse(id).ok()?),
    })
}

/// Which of the contact's interactions to show. Every parameter is checked: a bad one is a 400.
#[derive(Debug, Default, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ShowQuery {
    /// Most interactions, the newest (1–1000, default 100).
    pub(crate) interactions: Option<String>,
    /// Only interactions older than this cursor (a previous answer's `olderInteractions`).
    pub(crate) before: Option<String>,
    /// Most events listed per interaction (1–10000, default 1000); the rest are counted in
    /// `eventsOmitted`.
    pub(crate) events: Option<String>,
}

/// Default interactions per contact answer.
pub(crate) const INTERACTIONS_PER_PAGE: usize = 100;
/// Default events listed per interaction.
pub(crate) const EVENTS_PER_INTERACTION: usize = 1000;

impl ShowQuery {
    pub(crate) fn page(&self) -> Result<InteractionsPage, ApiError> {
        let number = |name: &str, raw: &Option<String>, default: usize, max: usize| match raw {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    ApiError::InvalidPayload(format!(
                        "{name} must be a whole number from 1 to {max}, not '{raw}'"
                    ))
                }),
        };
        let before = match &self.before {
            None => None,
            Some(raw) => Some(InteractionCursor::decode(raw.trim()).ok_or_else(|| {
                ApiError::InvalidPayload(format!("before '{raw}' is not a cursor"))
            })?),
        };
        Ok(InteractionsPage {
            limit: number(
                "interactions",
                &self.interactions,
                INTERACTIONS_PER_PAGE,
                1000,
            )?,
            before,
            events_per_interaction: number("events", &self.events, EVENTS_PER_INTERACTION, 10_000)?,
        })
    }
}

/// One contact with its devices, identifiers and its newest interactions (open ones
/// included), each with its first events; `olderInteractions` continues the list.
#[utoipa::path(
    get,
    path = "/api/v1/contacts/{id}", operation_id = "getContact",
    tag = "admin",
    params(("id" = String, Path, description = "The contact's id"), ShowQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = ContactJson),
        (status = 404, description = "No such contact", body = crate::error::ErrorEnvelope),
        (status = 401, description = "No or wrong admin token", body = crate::error::ErrorEnvelope),
    )
)]
pub async fn show(
    _: Admin,
    State(state): State<AppState>,
    WithRejection(Path(id), _): WithRejection<Path<String>, ApiError>,
    WithRejection(Query(query), _): WithRejection<Query<ShowQuery>, ApiError>,
) -> Result<Json<ContactJson>, ApiError> {
    Ok(Json(contact(&state, &id, query.page()?).await?))
}

/// A contact's id as written in a URL (braces or none); a malformed one is a contact that does
/// not exist (404).
fn contact_id(id: &str) -> Result<ContactId, ApiError> {
    uuid::Uuid::try_parse(id.trim_matches(['{', '}']))
        .map(ContactId)
        .map_err(|_| ApiError::NotFound(format!("no contact '{id}'")))
}

/// One contact, by its id as written in a URL (the API's answer and the Profile's page).
pub(crate) async fn contact(
    state: &AppState,
    id: &str,
    page: InteractionsPage,
) -> Result<ContactJson, ApiError> {
    let not_found = || ApiError::NotFound(format!("no contact '{id}'"));
    let contact_id = contact_id(id)?;
    let contact = state
        .store()
        .contact(contact_id, page)
        .await?
        .ok_or_else(not_found)?;
    Ok(contact.into())
}

/// Everything stored of one contact (every device, identifier, interaction and event), in one
/// JSON document: the right of access and portability.
#[utoipa::path(
    get,
    path = "/api/v1/contacts/{id}/export", operation_id = "exportContact",
    tag = "admin",
    params(("id" = String, Path, description = "The contact's id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = ContactExportJson),
        (status = 404, description = "No such contact", body = crate::error::ErrorEnvelope),
        (status = 401, description = "No or wrong admin token", body = crate::error::ErrorEnvelope),
    )
)]
pub async fn export(
    _: Admin,
    State(state): State<AppState>,
    WithRejection(Path(id), _): WithRejection<Path<String>, ApiError>,
) -> Result<Json<ContactExportJson>, ApiError> {
    let contact = contact(&state, &id, InteractionsPage::ALL).await?;
    Ok(Json(ContactExportJson {
        exported_at: state.clock().now().to_rfc3339(),
        contact,
    }))
}

/// Erases a contact (the right to erasure): its identifiers, devices, interactions and events
/// are deleted; the dashboard's counts stay; its device cookie then starts a fresh anonymous
/// contact. A visit of it in progress is refused once (503) and the next request starts anew.
#[utoipa::path(
    delete,
    path = "/api/v1/contacts/{id}", operation_id = "eraseContact",
    tag = "admin",
    params(("id" = String, Path, description = "The contact's id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Erased: what was removed", body = ErasedJson),
        (status = 404, description = "No such contact", body = crate::error::ErrorEnvelope),
        (status = 401, description = "No or wrong admin token", body = crate::error::ErrorEnvelope),
    )
)]
pub async fn erase(
    _: Admin,
    State(state): State<AppState>,
    WithRejection(Path(id), _): WithRejection<Path<String>, ApiError>,
) -> Result<Json<ErasedJson>, ApiError> {
    let not_found = || ApiError::NotFound(format!("no contact '{id}'"));
    let contact_id = contact_id(&id)?;
    let erased = state
        .store()
        .erase_contact(contact_id)
        .await?
        .ok_or_else(not_found)?;
    tracing::info!(contact = %contact_id, interactions = erased.interactions, "contact erased");
    Ok(Json(ErasedJson {
        interactions: erased.interactions,
        events: erased.events,
        devices: erased.devices,
        identifiers: erased.identifiers,
    }))
}

/// Gives the contact an identifier (`{"source": "email", "identifier": "ada@example.com"}`),
/// as an identification element from the tracking API does: if another contact has it
/// already, this one merges into that one (visits, devices, identifiers and totals move).
#[utoipa::path(
    post,
    path = "/api/v1/contacts/{id}/identifiers", operation_id = "identifyContact",
    tag = "admin",
    params(("id" = String, Path, description = "The contact's id")),
    request_body = NewIdentifierJson,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The contact that has the identifier now", body = IdentifiedJson),
        (status = 400, description = "An empty or reserved source or identifier", body = crate::error::ErrorEnvelope),
        (status = 404, description = "No such contact", body = crate::error::ErrorEnvelope),
        (status = 401, description = "No or wrong admin token", body = crate::error::ErrorEnvelope),
    )
)]
pub async fn identify(
    _: Admin,
    State(state): State<AppState>,
    WithRejection(Path(id), _): WithRejection<Path<String>, ApiError>,
    WithRejection(Json(body), _): WithRejection<Json<NewIdentifierJson>, ApiError>,
) -> Result<Json<IdentifiedJson>, ApiError> {
    let not_found = || ApiError::NotFound(format!("no contact '{id}'"));
    let contact_id = contact_id(&id)?;
    let max = state.settings().tracker.limits.max_string_bytes;
    let (source, identifier) = (body.source.trim(), body.identifier.trim());
    for (name, value) in [("source", source), ("identifier", identifier)] {
        if value.is_empty() {
            return Err(ApiError::InvalidPayload(format!("{name} is empty")));
        }
        if value.len() > max {
            return Err(ApiError::InvalidPayload(format!(
                "{name} is {} bytes; the limit is {max}",
                value.len()
            )));
        }
    }
    if source == "SC_ANALYTICS_GLOBAL_COOKIE" {
        return Err(ApiError::InvalidPayload(
            "source SC_ANALYTICS_GLOBAL_COOKIE is the device cookie's own".into(),
        ));
    }
    // Normalised as the tracking API's identifications are (emails case-folded), so that both
    // paths name one person alike.
    let identifier = tracker_core::processors::normalise_identifier(
        source,
        identifier,
        &state.settings().identification.case_insensitive_sources,
    );
    let survivor = state
        .store()
        .identify(contact_id, source.to_string(), identifier)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(IdentifiedJson {
        contact_id: survivor.to_string(),
        merged: survivor != contact_id,
    }))
}
