//! `GET /sitecore/api/layout/render/{config}` and `/sitecore/api/layout/placeholder/{config}`:
//! the request goes to the upstream Layout Service with its query and the caller's headers that
//! matter (cookies, `Accept`, `Accept-Language`, the user agent, `Referer`, and the client's
//! address in `X-Forwarded-For`), and the answer comes back unchanged: status, headers (the
//! upstream's `Set-Cookie`s included) and body. When the upstream answers 200 with layout JSON
//! for a route, the route's page view is tracked for the visitor, from the JSON itself (the
//! route's item id, language and version, and the requested `item` as the URL), with the
//! tracker's cookies added to the answer, exactly as `/event` would: unless the query says
//! `tracking=false`, the visitor is a robot, or the request's `sc_apikey` is not one of the
//! tracker's keys. Tracking never breaks the page: when it fails (the store is down, say), the
//! layout is still served and `jss_tracker_layout_untracked_total{reason}` counts it. An
//! unreachable upstream is a 502 in the error envelope within `layout_service.timeout`.

use axum::{
    body::Body,
    extract::{FromRequestParts, State},
    http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{json, Value};

use crate::{edge::TrackingCaller, error::ApiError, state::AppState};

/// Request headers passed to the upstream.
const FORWARDED_REQUEST_HEADERS: [HeaderName; 6] = [
    header::COOKIE,
    header::ACCEPT,
    header::ACCEPT_LANGUAGE,
    header::USER_AGENT,
    header::REFERER,
    header::AUTHORIZATION,
];

/// Answer headers that belong to one hop, not passed back.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
    )
}

/// Why a layout answered 200 left no page view.
fn untracked(reason: &'static str) {
    metrics::counter!(crate::metrics::LAYOUT_UNTRACKED, "reason" => reason).increment(1);
}

/// The route's page view, from the layout JSON: `sitecore.route.itemId`, the context's (or the
/// route's) language, `sitecore.route.itemVersion`, and the requested item path as the URL.
fn page_view_of(layout: &Value, item_path: &str) -> Option<Value> {
    let sitecore = layout.get("sitecore")?;
    let route = sitecore.get("route")?;
    let item_id = route.get("itemId")?.as_str()?;
    let mut element = json!({ "pageId": item_id, "url": item_path });
    let language = sitecore
        .pointer("/context/language")
        .or_else(|| route.get("itemLanguage"))
        .and_then(Value::as_str);
    if let Some(language) = language {
        element["language"] = json!(language);
    }
    if let Some(version) = route.get("itemVersion").filter(|v| v.is_i64()) {
        element["itemVersion"] = version.clone();
    }
    Some(element)
}

/// The Layout Service's route data, passed through (`layout_service.upstream`).
#[utoipa::path(
    get,
    path = "/sitecore/api/layout/render/{config}", operation_id = "layoutRender",
    tag = "layout",
    params(
        ("config" = String, Path, description = "The Layout Service configuration (`jss`)"),
        ("item" = String, Query, description = "The route's item path"),
        ("sc_lang" = Option<String>, Query, description = "The language"),
        ("sc_apikey" = String, Query, description = "The app's SSC API key"),
        ("tracking" = Option<bool>, Query, description = "`false`: no page view is tracked"),
    ),
    responses(
        (status = 200, description = "The upstream's answer, unchanged; the route's page view tracked, with the tracker's cookies", content_type = "application/json"),
        (status = 502, description = "The upstream did not answer", body = crate::error::ErrorEnvelope),
    )
)]
pub async fn render(state: State<AppState>, request: axum::extract::Request) -> Response {
    handle(state, request).await
}

/// A placeholder's renderings, passed through (`layout_service.upstream`).
#[utoipa::path(
    get,
    path = "/sitecore/api/layout/placeholder/{config}", operation_id = "layoutPlaceholder",
    tag = "layout",
    params(
        ("config" = String, Path, description = "The Layout Service configuration (`jss`)"),
        ("item" = String, Query, description = "The route's item path"),
        ("placeholderName" = String, Query, description = "The placeholder"),
        ("sc_apikey" = String, Query, description = "The app's SSC API key"),
    ),
    responses(
        (status = 200, description = "The upstream's answer, unchanged", content_type = "application/json"),
        (status = 502, description = "The upstream did not answer", body = crate::error::ErrorEnvelope),
    )
)]
pub async fn placeholder(state: State<AppState>, request: axum::extract::Request) -> Response {
    handle(state, request).await
}

/// Passes a Layout Service request through, tracking the route's page view: ask the
/// upstream → stream back what is not a trackable layout → read the layout → track its
/// route's page view → answer with the upstream's headers and our cookies.
async fn handle(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    let settings = &state.settings().layout_service;
    let Some(upstream) = settings.upstream.as_deref() else {
        return ApiError::NotFound("no such endpoint".into()).into_response();
    };
    let answer = match ask_upstream(&state, &parts, upstream).await {
        Ok(answer) => answer,
        Err(error) => return error.into_response(),
    };
    let status = answer.status();
    let mut headers = passed_headers(answer.headers());
    let asked = Asked::of(parts.uri.query().unwrap_or_default());
    if !trackable(status, &headers, &asked, &answer, settings.max_body_bytes) {
        // Streamed back as it comes.
        let body = Body::from_stream(answer.bytes_stream());
        return (status, headers, body).into_response();
    }
    // The layout is read whole (bounded) to find its route, then sent on unchanged.
    let bytes = match answer.bytes().await {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::warn!(%error, "the Layout Service's answer broke off");
            return ApiError::BadGateway("the Layout Service's answer broke off".into())
                .into_response();
        }
    };
    match page_view_element(&bytes, &asked, &parts.headers) {
        None => untracked("no_route"),
        Some(element) => {
            track_page_view(&state, &mut parts, &element, &asked, &mut headers).await;
        }
    }
    (status, headers, Body::from(bytes)).into_response()
}

/// Sends the request on to the upstream with the caller's headers and address (as the
/// trusted-proxy rule gives it: the Layout Service, and Sitecore's own analytics, see the
/// visitor, not this server). No answer is 502.
async fn ask_upstream(
    state: &AppState,
    parts: &axum::http::request::Parts,
    upstream: &str,
) -> Result<reqwest::Response, ApiError> {
    let settings = &state.settings().layout_service;
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path_and_query}", upstream.trim_end_matches('/'));
    let client = TrackingCaller::browser(parts, state, String::new());
    let mut forwarded = reqwest::header::HeaderMap::new();
    for name in FORWARDED_REQUEST_HEADERS {
        for value in parts.headers.get_all(&name) {
            forwarded.append(name.clone(), value.clone());
        }
    }
    if let Some(value) = client
        .ip
        .and_then(|ip| HeaderValue::from_str(&ip.to_string()).ok())
    {
        forwarded.insert("x-forwarded-for", value);
    }
    let sent = state
        .http()
        .get(&url)
        .headers(forwarded)
        .timeout(settings.timeout);
    sent.send().await.map_err(|error| {
        tracing::warn!(%error, "the Layout Service did not answer");
        metrics::counter!(crate::metrics::LAYOUT_UPSTREAM_FAILURES).increment(1);
        ApiError::BadGateway(if error.is_timeout() {
            format!(
                "the Layout Service did not answer within {:?} (layout_service.timeout)",
                settings.timeout
            )
        } else {
            "the Layout Service could not be reached".into()
        })
    })
}

/// The upstream's headers, but for hop-by-hop ones.
fn passed_headers(upstream: &reqwest::header::HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in upstream {
        if !hop_by_hop(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers
}

/// What the caller asked for: the item path, and whether tracking is on (`tracking=false`
/// turns it off, as Sitecore's Layout Service does).
struct Asked {
    item: String,
    tracking: bool,
}

impl Asked {
    fn of(query: &str) -> Self {
        let (mut item, mut tracking) = (None, true);
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "item" => item = Some(value.into_owned()),
                "tracking" if value.eq_ignore_ascii_case("false") => tracking = false,
                _ => {}
            }
        }
        Self {
            item: item.unwrap_or_else(|| "/".into()),
            tracking,
        }
    }
}

/// Whether the answer is a layout to track: a 200 JSON answer, tracking on, not declared
/// larger than `max_body_bytes`.
fn trackable(
    status: StatusCode,
    headers: &HeaderMap,
    asked: &Asked,
    answer: &reqwest::Response,
    max_body_bytes: usize,
) -> bool {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
    let declared_small = answer
        .content_length()
        .is_none_or(|len| len <= max_body_bytes as u64);
    if status == StatusCode::OK && !asked.tracking {
        untracked("tracking_false");
    }
    status == StatusCode::OK && is_json && asked.tracking && declared_small
}

/// The page view of the layout's route, with the visitor's `Referer` as its referrer (a
/// server-side caller forwards it); `None` when the layout has no route.
fn page_view_element(bytes: &[u8], asked: &Asked, request: &HeaderMap) -> Option<Value> {
    let layout: Value = serde_json::from_slice(bytes).ok()?;
    let mut element = page_view_of(&layout, &asked.item)?;
    if let Some(referer) = request.get(header::REFERER).and_then(|v| v.to_str().ok()) {
        element["referrer"] = json!(referer);
    }
    Some(element)
}

/// Tracks the page view as the visitor's, and adds our cookies to the answer's; a refused
/// caller or a failed tracking is counted and the layout is served all the same.
async fn track_page_view(
    state: &AppState,
    parts: &mut axum::http::request::Parts,
    element: &Value,
    asked: &Asked,
    headers: &mut HeaderMap,
) {
    let caller = match TrackingCaller::from_request_parts(parts, state).await {
        Ok(caller) => caller,
        Err(refused) => {
            tracing::debug!(error = ?refused.to_string(), "layout request not tracked");
            return untracked("caller");
        }
    };
    let elements = std::slice::from_ref(element);
    match crate::routes::track::event::track_elements(state, &caller, elements).await {
        Ok((cookies, _)) => {
            let session = format!("{}=", state.settings().tracker.session_cookie);
            let ours = cookies.0.into_iter().map(|(_, value)| value).collect();
            add_cookies(headers, ours, &session);
            add_route_mark(headers, &asked.item, caller.secure);
        }
        Err(error) => {
            tracing::warn!(error = ?error.to_string(), "a layout's page view was not tracked");
            untracked("tracking_failed");
        }
    }
}

/// Ours go first, the session cookie first of all: JSS's `RestLayoutService` passes
/// Set-Cookie on by splitting the joined header before each `, name=` whose name is word
/// characters only, which `ASP.NET_SessionId` is not, so that cookie must not follow a comma.
/// The upstream's follow ours.
fn add_cookies(headers: &mut HeaderMap, mut ours: Vec<String>, session: &str) {
    let upstream: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    ours.sort_by_key(|c| !c.starts_with(session));
    for value in ours {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    for value in upstream {
        headers.append(header::SET_COOKIE, value);
    }
}

/// The route's page-tracked mark (60 s), against a second count of the same page view by
/// `/track/pageview`. Styled as the tracker's other cookies, so that a browser on another
/// site of the tracker keeps it too.
fn add_route_mark(headers: &mut HeaderMap, item: &str, secure: bool) {
    use axum_extra::extract::cookie::{Cookie, SameSite};
    let mut mark = Cookie::new(
        crate::routes::track::pageview::PAGE_TRACKED_COOKIE,
        crate::routes::track::pageview::route_mark(item),
    );
    mark.set_path("/");
    mark.set_max_age(cookie::time::Duration::seconds(60));
    mark.set_http_only(true);
    if secure {
        mark.set_same_site(SameSite::None);
        mark.set_secure(true);
    } else {
        mark.set_same_site(SameSite::Lax);
    }
    if let Ok(value) = HeaderValue::from_str(&mark.to_string()) {
        headers.append(header::SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_view_comes_from_the_route() {
        let layout = json!({"sitecore": {
            "context": {"language": "da-DK", "site": {"name": "web"}},
            "route": {"itemId": "a3d1c0ec-6b3b-4b7e-9a2a-4e6f7a3d1c0e", "itemLanguage": "en",
                      "itemVersion": 2, "name": "home"}}});
        assert_eq!(
            page_view_of(&layout, "/about"),
            Some(
                json!({"pageId": "a3d1c0ec-6b3b-4b7e-9a2a-4e6f7a3d1c0e", "url": "/about",
                        "language": "da-DK", "itemVersion": 2})
            )
        );
        assert_eq!(
            page_view_of(&json!({"sitecore": {"context": {}, "route": null}}), "/"),
            None
        );
    }
}
