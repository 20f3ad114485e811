//! `POST /sitecore/api/track/pageview`: a page view in the shape of the unreleased JSS
//! `TrackingService` (`{url, referrer, itemId, language, layoutDeviceId}`, query `sc_apikey`,
//! `sc_site`, `sc_camp`, `sc_trk`), with the same keys, CORS rules and cookies as `/event`. The
//! script tag (`{prefix}/tracker.js`) and apps that are not JSS send their page views here.
//!
//! A page the Layout Service pass-through already tracked is not counted twice: its answer
//! sets [`PAGE_TRACKED_COOKIE`] for the route, and a page view of that route that carries it
//! (or `skip_page_tracking=true` in the query) is answered `{"tracked": 0}`.

use axum::{
    body::Body,
    extract::State,
    http::{header, HeaderMap},
    Json,
};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{
    api_types::TrackedBody,
    config::PageViewsWithoutItem,
    edge::{SetCookies, TrackingCaller},
    error::ApiError,
    state::AppState,
};

/// The cookie that says "the Layout Service tracked this route a moment ago".
pub const PAGE_TRACKED_COOKIE: &str = "SC_JSS_PAGE_TRACKED";

/// What a page view says.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageView {
    url: String,
    referrer: Option<String>,
    item_id: Option<String>,
    language: Option<String>,
    /// Kept with the page view (Sitecore's device layer of the route).
    layout_device_id: Option<String>,
}

/// The route's mark in [`PAGE_TRACKED_COOKIE`]: its path, hashed (a cookie value cannot hold
/// every character of a path).
pub fn route_mark(url: &str) -> String {
    let path = path_of(url);
    Sha256::digest(path.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The path of a URL or of a path with a query (`/products?id=1` → `/products`).
fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| {
        rest.find('/').map_or("/", |at| &rest[at..])
    });
    rest.split(['?', '#']).next().unwrap_or("/")
}

/// A stable id for a page without a Sitecore item: a name-based GUID of the site and the path.
pub fn surrogate_item_id(site: Option<&str>, url: &str) -> String {
    let digest = Sha256::digest(
        format!(
            "jss-tracker page\n{}\n{}",
            site.unwrap_or_default(),
            path_of(url)
        )
        .as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// Whether the Layout Service already tracked this page view (its cookie names the route), or
/// the app says so (`skip_page_tracking=true`).
fn already_tracked(headers: &HeaderMap, query: Option<&str>, url: &str) -> bool {
    let skip = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .any(|(name, value)| name == "skip_page_tracking" && (value == "true" || value == "1"));
    skip || axum_extra::extract::cookie::CookieJar::from_headers(headers)
        .get(PAGE_TRACKED_COOKIE)
        .is_some_and(|c| c.value() == route_mark(url))
}

/// Tracks one page view.
#[utoipa::path(
    post,
    path = "/sitecore/api/track/pageview", operation_id = "trackPageView",
    tag = "tracking",
    params(
        ("sc_apikey" = String, Query, description = "A configured API key (or an `sc_apikey` header)"),
        ("sc_site" = Option<String>, Query, description = "The site, stored on the interaction"),
        ("sc_camp" = Option<String>, Query, description = "Triggers this campaign (GUID or name)"),
        ("sc_trk" = Option<String>, Query, description = "Triggers this campaign, as `sc_camp`"),
        ("skip_page_tracking" = Option<bool>, Query, description = "The page was tracked already (by the Layout Service): nothing is stored"),
    ),
    request_body(content = Object, description = "`{url, referrer, itemId, language, layoutDeviceId}`", content_type = "application/json"),
    responses(
        (status = 200, description = "Committed (`tracked` 0 when skipped)", body = TrackedBody),
        (status = 400, description = "Bad key, body, or a page view without an item id", body = crate::error::ErrorEnvelope),
        (status = 403, description = "Origin not allowed for the key", body = crate::error::ErrorEnvelope),
        (status = 404, description = "Tracker disabled", body = crate::error::ErrorEnvelope),
        (status = 503, description = "Storage unavailable", body = crate::error::ErrorEnvelope),
    )
)]
pub async fn handle(
    State(state): State<AppState>,
    caller: TrackingCaller,
    request: axum::http::request::Parts,
    body: Body,
) -> Result<(SetCookies, Json<TrackedBody>), ApiError> {
    let bytes = super::read_body(&state, body).await?;
    let view: PageView = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::InvalidPayload(format!(
            "a page view is {{url, referrer, itemId, language, layoutDeviceId}}: {e}"
        ))
    })?;
    if already_tracked(&request.headers, request.uri.query(), &view.url) {
        let mut cookies = crate::edge::cookies(
            &state,
            &caller,
            crate::edge::SessionCookie::Keep,
            caller.device.human,
        );
        let mut gone = axum_extra::extract::cookie::Cookie::new(PAGE_TRACKED_COOKIE, "");
        gone.set_path("/");
        gone.set_max_age(cookie::time::Duration::ZERO);
        cookies.0.push((header::SET_COOKIE, gone.to_string()));
        return Ok((cookies, Json(TrackedBody { tracked: 0 })));
    }
    let item_id = match view.item_id.filter(|id| !id.trim().is_empty()) {
        Some(id) => id,
        None => match state.settings().tracker.page_views_without_item {
            PageViewsWithoutItem::Url => surrogate_item_id(caller.site.as_deref(), &view.url),
            PageViewsWithoutItem::Refuse => {
                return Err(ApiError::InvalidEvent {
                    index: 0,
                    message: "element 0: itemId is missing: a page view needs the Sitecore \
                              item it shows (set tracker.page_views_without_item = \"url\" to \
                              keep page views of pages without one, under an id derived from \
                              the site and the path)"
                        .into(),
                })
            }
        },
    };
    let mut element = json!({ "pageId": item_id, "url": view.url });
    for (key, value) in [
        ("referrer", view.referrer),
        ("language", view.language),
        ("layoutDeviceId", view.layout_device_id),
    ] {
        if let Some(value) = value {
            element[key] = Value::String(value);
        }
    }
    let (cookies, tracked) =
        super::event::track_elements(&state, &caller, std::slice::from_ref(&element)).await?;
    Ok((cookies, Json(tracked)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_marked_by_path_and_pages_get_stable_ids() {
        assert_eq!(route_mark("/products?id=1"), route_mark("/products"));
        assert_eq!(
            route_mark("https://www.example.com/products#top"),
            route_mark("/products")
        );
        assert_ne!(route_mark("/a"), route_mark("/b"));
        let id = surrogate_item_id(Some("web"), "https://x.example/docs/intro?utm=1");
        assert_eq!(id, surrogate_item_id(Some("web"), "/docs/intro"));
        assert_ne!(id, surrogate_item_id(Some("shop"), "/docs/intro"));
        assert!(tracker_core::ids::Guid::parse(&id).is_some());
    }
}
