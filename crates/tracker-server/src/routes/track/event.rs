//! `POST {prefix}/event`: track a batch (the JSS `trackingApi.trackEvent`).

use axum::{body::Body, extract::State, Json};
use tracker_core::{body::parse_elements, event::EventKind, processors::QUERY_CAMPAIGN_KEY};

use crate::{
    api_types::TrackedBody,
    edge::{cookies, SessionCookie, TrackingCaller},
    error::ApiError,
    state::AppState,
};

/// Parses the body, runs the pipeline, stores the batch atomically, and answers once committed.
#[utoipa::path(
    post,
    path = "/sitecore/api/jss/track/event", operation_id = "trackEvent",
    tag = "tracking",
    params(
        ("sc_apikey" = String, Query, description = "A configured API key (or an `sc_apikey` header)"),
        ("sc_site" = Option<String>, Query, description = "The site, stored on the interaction"),
        ("sc_camp" = Option<String>, Query, description = "Triggers this campaign (GUID or name)"),
    ),
    request_body(content = Object, description = "A JSON array of events, one event, or the request-init wrapper of sitecore-jss 22.5+", content_type = "application/json"),
    responses(
        (status = 200, description = "Every event committed", body = TrackedBody),
        (status = 400, description = "Bad key, body or element", body = crate::error::ErrorEnvelope),
        (status = 403, description = "Origin not allowed for the key (`origin_not_allowed`), or an identification no app server vouched for (`untrusted_identification`)", body = crate::error::ErrorEnvelope),
        (status = 404, description = "Tracker disabled", body = crate::error::ErrorEnvelope),
        (status = 413, description = "Body or batch too large", body = crate::error::ErrorEnvelope),
        (status = 500, description = "The store refused this batch alone (`internal_error`)", body = crate::error::ErrorEnvelope),
        (status = 503, description = "Storage unavailable", body = crate::error::ErrorEnvelope),
    )
)]
pub async fn handle(
    State(state): State<AppState>,
    caller: TrackingCaller,
    body: Body,
) -> Result<(crate::edge::SetCookies, Json<TrackedBody>), ApiError> {
    let limits = state.settings().tracker.limits;
    let bytes = super::read_body(&state, body).await?;
    let elements = parse_elements(&bytes, &limits, state.pipeline().event_keys())?;
    let (cookies, tracked) = track_elements(&state, &caller, &elements).await?;
    Ok((cookies, Json(tracked)))
}

/// Runs `elements` through the pipeline for the caller's visit, stores them (answering once
/// committed), and says which cookies to set: what `/event`, `/sitecore/api/track/pageview`
/// and the Layout Service pass-through share.
pub(crate) async fn track_elements(
    state: &AppState,
    caller: &TrackingCaller,
    elements: &[serde_json::Value],
) -> Result<(crate::edge::SetCookies, TrackedBody), ApiError> {
    let now = state.clock().now();
    // Counted by kind while the events are built; recorded once committed.
    let mut by_kind = [0u64; EventKind::ALL.len()];
    // The pipeline runs once the visitor's session is locked: processors see its live
    // interaction and contact.
    let batch = |live: Option<&tracker_core::session::Interaction>| {
        let events = run_pipeline(state, caller, elements, live, now)?;
        for event in &events {
            by_kind[event.kind as usize] += 1;
        }
        Ok(events)
    };
    let tracked = state
        .sessions()
        .track(&super::visitor(caller), batch, now)
        .await?;
    record_tracked(&tracked, by_kind);
    // The session cookie is a browser-session cookie (no expiry): set it only when it names a
    // different session than the one the browser sent.
    let session = match tracked.session {
        Some(id) if caller.session != Some(id) => SessionCookie::Set(id),
        _ => SessionCookie::Keep,
    };
    tracing::debug!(key = %caller.key_name, count = tracked.count, "batch tracked");
    Ok((
        cookies(state, caller, session, tracked.human),
        TrackedBody {
            tracked: tracked.count,
        },
    ))
}

/// The `trackEvent` pipeline over the batch, for the visit `live` (`None`: a new one), and
/// the query string's campaign after it.
fn run_pipeline(
    state: &AppState,
    caller: &TrackingCaller,
    elements: &[serde_json::Value],
    live: Option<&tracker_core::session::Interaction>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<tracker_core::event::TrackedEvent>, tracker_core::Error> {
    let pipeline = state.pipeline();
    let mut context = state.batch_context(now, caller.key.as_deref());
    context.interaction = live;
    let mut events = pipeline.run(elements, &context)?;
    // `sc_camp` goes through the pipeline as an element of its own (run apart, so that the
    // body's elements keep their indexes in errors), when a processor claims it: the built-in
    // `sc_camp` tracks the campaign and ignores one it does not know, as Sitecore does, so a
    // stale marketing link never costs the visit's data.
    let claimed = || {
        pipeline
            .event_keys()
            .iter()
            .any(|k| k == QUERY_CAMPAIGN_KEY)
    };
    if let Some(campaign) = caller.campaign.as_deref().filter(|_| claimed()) {
        let element = serde_json::json!({ QUERY_CAMPAIGN_KEY: campaign });
        let triggered = pipeline.run(std::slice::from_ref(&element), &context)?;
        if triggered.is_empty() {
            // Counted, not logged: a log line per request carrying 4 KB of client text was
            // 31 MB of log per 10,000 requests.
            metrics::counter!(crate::metrics::UNKNOWN_CAMPAIGNS).increment(1);
        }
        events.splice(0..0, triggered);
    }
    Ok(events)
}

/// Events stored, by kind, and the batch's size. A robot's events are answered, not stored:
/// they are counted as robot requests.
fn record_tracked(tracked: &tracker_engine::Tracked, by_kind: [u64; EventKind::ALL.len()]) {
    if !tracked.human {
        return;
    }
    for (kind, count) in EventKind::ALL.iter().zip(by_kind) {
        if count > 0 {
            metrics::counter!(crate::metrics::EVENTS, "kind" => kind.as_str()).increment(count);
        }
    }
    metrics::histogram!(crate::metrics::BATCH_SIZE).record(tracked.count as f64);
}
