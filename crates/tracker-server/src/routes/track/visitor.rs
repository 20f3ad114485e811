//! `GET {prefix}/visitor` (`personalization.enabled`): the caller's own profile, found by its
//! device cookie, with the tracking endpoints' API key and CORS rules: visits, engagement value,
//! goals reached, campaigns, identified or not. Nothing about anyone else: the contact is the
//! one of the cookie the caller sends, and identifiers are given by source only. It gives XM
//! and XM Cloud apps the data that XP's personalisation rules use.

use std::collections::BTreeSet;

use axum::{extract::State, Json};
use tracker_core::{
    event::EventKind,
    store::{ContactFilter, ContactRecord, InteractionsPage},
};

use crate::{api_types::VisitorJson, edge::TrackingCaller, error::ApiError, state::AppState};

/// Recent visits read for the lists (the counts are the contact's totals).
const RECENT_VISITS: usize = 100;

/// The caller's own profile.
#[utoipa::path(
    get,
    path = "/sitecore/api/jss/track/visitor", operation_id = "visitor",
    tag = "tracking",
    params(("sc_apikey" = String, Query, description = "The app's API key")),
    responses(
        (status = 200, description = "The caller's own profile (empty for an unknown visitor)", body = VisitorJson),
        (status = 400, description = "Bad API key", body = crate::error::ErrorEnvelope),
    )
)]
pub async fn handle(
    State(state): State<AppState>,
    caller: TrackingCaller,
) -> Result<Json<VisitorJson>, ApiError> {
    let mut answer = VisitorJson {
        known: false,
        identified: false,
        identifier_sources: Vec::new(),
        visits: 0,
        engagement_value: 0,
        goals: Vec::new(),
        goal_count: 0,
        campaigns: Vec::new(),
        page_views: 0,
        first_visit: None,
    };
    let Some(mut record) = own_contact(&state, &caller).await? else {
        return Ok(Json(answer));
    };
    answer.known = true;
    answer.visits = record.summary.interaction_count;
    answer.engagement_value = record.summary.engagement_value;
    answer.goal_count = record.summary.goal_count;
    if state.settings().identification.trust == crate::config::IdentificationTrustSetting::Client {
        only_this_device(&mut record, &caller, &mut answer);
    }
    let sources: BTreeSet<String> = record
        .identifiers
        .iter()
        .filter(|i| i.source != "SC_ANALYTICS_GLOBAL_COOKIE")
        .map(|i| i.source.clone())
        .collect();
    answer.identified = !sources.is_empty();
    answer.identifier_sources = sources.into_iter().collect();
    answer.first_visit = record
        .interactions
        .first()
        .map(|i| i.interaction.started_at.to_rfc3339());
    add_recent(&record, &mut answer);
    Ok(Json(answer))
}

/// The contact of the caller's device cookie, with its recent visits; `None` for a device
/// the tracker does not know.
async fn own_contact(
    state: &AppState,
    caller: &TrackingCaller,
) -> Result<Option<ContactRecord>, ApiError> {
    if !caller.device_known {
        return Ok(None);
    }
    let store = state.store();
    let page = store
        .contacts(ContactFilter {
            device: Some(caller.device.device),
            limit: 1,
            ..ContactFilter::default()
        })
        .await?;
    let Some(summary) = page.contacts.first() else {
        return Ok(None);
    };
    let recent = InteractionsPage {
        limit: RECENT_VISITS,
        ..InteractionsPage::ALL
    };
    Ok(store.contact(summary.id, recent).await?)
}

/// Browsers' identifications are believed (`identification.trust = "client"`), so the contact
/// may hold visits someone merged into it by claiming an identifier: this device's visits only
/// (of the recent ones read), never another device's.
fn only_this_device(record: &mut ContactRecord, caller: &TrackingCaller, answer: &mut VisitorJson) {
    let device = caller.device.device;
    record
        .interactions
        .retain(|visit| visit.interaction.device_id == device);
    answer.visits = record.interactions.len() as i64;
    answer.engagement_value = record.interactions.iter().fold(0i64, |sum, v| {
        sum.saturating_add(v.interaction.engagement_value)
    });
    answer.goal_count = record
        .interactions
        .iter()
        .flat_map(|v| v.events.iter())
        .filter(|e| e.event.kind == EventKind::Goal)
        .count() as i64;
}

/// Goals and campaigns reached, most recent first, each name once; page views counted.
fn add_recent(record: &ContactRecord, answer: &mut VisitorJson) {
    let (mut goals, mut campaigns) = (Vec::new(), Vec::new());
    for visit in record.interactions.iter().rev() {
        for stored in visit.events.iter().rev() {
            let name = stored.event.definition.as_ref().map(|d| d.name.clone());
            match (stored.event.kind, name) {
                (EventKind::Goal, Some(name)) if !goals.contains(&name) => goals.push(name),
                (EventKind::Campaign, Some(name)) if !campaigns.contains(&name) => {
                    campaigns.push(name);
                }
                (EventKind::PageView, _) => answer.page_views += 1,
                _ => {}
            }
        }
    }
    answer.goals = goals;
    answer.campaigns = campaigns;
}
