//! Visitor identification, as Sitecore does it: a page includes
//! `/layouts/system/VisitorIdentification.js`, which on the first mouse move, touch, scroll or
//! key press requests `/layouts/system/VisitorIdentificationCSS.aspx?tstamp=…` with credentials.
//! That request marks the visitor a person: its session and device cookie (`|True`). The same
//! pair is served under the service prefix as `identify.js` and `identify`.

use axum::{
    extract::{FromRequestParts, State},
    http::{header, request::Parts, HeaderValue},
    response::{IntoResponse, Response},
};

use crate::{
    edge::{cookies, SessionCookie, TrackingCaller},
    error::ApiError,
    state::AppState,
};

/// The script: small, dependency-free, cacheable.
const SCRIPT: &str = include_str!("../../../assets/VisitorIdentification.js");

/// `GET /layouts/system/VisitorIdentification.js` and `{prefix}/identify.js`.
#[utoipa::path(
    get,
    path = "/layouts/system/VisitorIdentification.js", operation_id = "visitorIdentificationScript",
    tag = "robots",
    responses((status = 200, description = "The identification script (also at {prefix}/identify.js)", content_type = "text/javascript"))
)]
pub async fn script() -> Response {
    super::script::javascript(SCRIPT)
}

/// `GET {prefix}/identify.js`: the script under the service prefix.
#[utoipa::path(
    get,
    path = "/sitecore/api/jss/track/identify.js", operation_id = "identifyScript",
    tag = "robots",
    responses((status = 200, description = "The identification script", content_type = "text/javascript"))
)]
pub async fn alias_script() -> Response {
    script().await
}

/// `GET|POST {prefix}/identify`: the identification request under the service prefix.
#[utoipa::path(
    method(get, post),
    path = "/sitecore/api/jss/track/identify", operation_id = "identify",
    tag = "robots",
    responses(
        (status = 200, description = "The visitor is a person now", content_type = "text/css"),
        (status = 403, description = "Origin allowed by no API key", body = crate::error::ErrorEnvelope),
    )
)]
pub async fn alias_mark(state: State<AppState>, caller: IdentifyingCaller) -> Response {
    mark(state, caller).await
}

/// The browser behind an identification request. No API key: the script does not know one.
/// A cross-origin request must come from an origin some API key allows (the CORS layer
/// answers its headers); a same-origin one (through an app's rewrite) sends no `Origin`.
#[derive(Debug)]
pub struct IdentifyingCaller(TrackingCaller);

impl FromRequestParts<AppState> for IdentifyingCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if !state.settings().tracker.enabled {
            return Err(ApiError::TrackerDisabled);
        }
        if let Some(origin) = parts.headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or_default();
            if !state.api_keys().cors_allows(origin, parts) {
                return Err(ApiError::OriginNotAllowed(origin.to_string()));
            }
        }
        Ok(Self(TrackingCaller::browser(
            parts,
            state,
            "visitor-identification".into(),
        )))
    }
}

/// `GET /layouts/system/VisitorIdentificationCSS.aspx` and `{prefix}/identify`: marks the
/// visitor a person (unless it is a known robot) and answers an empty stylesheet.
#[utoipa::path(
    get,
    path = "/layouts/system/VisitorIdentificationCSS.aspx", operation_id = "identifyVisitor",
    tag = "robots",
    params(("tstamp" = Option<String>, Query, description = "Ignored; defeats caches")),
    responses(
        (status = 200, description = "The visitor is a person now (SC_ANALYTICS_GLOBAL_COOKIE ends in |True); also at {prefix}/identify", content_type = "text/css"),
        (status = 403, description = "Origin allowed by no API key", body = crate::error::ErrorEnvelope),
    )
)]
pub async fn mark(
    State(state): State<AppState>,
    IdentifyingCaller(caller): IdentifyingCaller,
) -> Response {
    let human = state.sessions().identify(&super::visitor(&caller)).await;
    tracing::debug!(device = %caller.device.device, human, "visitor identification");
    (
        cookies(&state, &caller, SessionCookie::Keep, human),
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        "",
    )
        .into_response()
}
