//! `GET {prefix}/tracker.js`: a script tag for pages that are not JSS apps (marketing pages,
//! docs, any SPA): page views on load and on history changes, goals, events and outcomes, with
//! no per-route code and no other dependency (`assets/tracker/tracker.js`, ~1.3 KB gzipped).

use axum::{
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};

const SCRIPT: &str = include_str!("../../../assets/tracker/tracker.js");

/// The script.
#[utoipa::path(
    get,
    path = "/sitecore/api/jss/track/tracker.js", operation_id = "trackerScript",
    tag = "tracking",
    responses((status = 200, description = "The script tag's JavaScript", content_type = "text/javascript"))
)]
pub async fn handle() -> Response {
    javascript(SCRIPT)
}

/// A script of the tracker's own, as a page includes it: JavaScript, cacheable for an hour.
pub(crate) fn javascript(body: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}
