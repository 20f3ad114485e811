//! The routers. A URL's handler lives in `routes/<area>/<action>.rs`.

use axum::{
    http::{header, HeaderName, Method},
    routing::{get, post},
    Router,
};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{error::ApiError, state::AppState};

pub mod admin;
pub mod bench;
pub mod health;
pub mod layout;
pub mod openapi;
pub mod profile;
pub mod track;

/// The whole application.
pub fn router(state: AppState) -> Router {
    let prefix = state.settings().tracker.service_prefix.clone();
    let keys_state = state.clone();
    // Echo the allowed origin with credentials, never `*`: JSS clients always send credentials.
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, parts| {
            origin
                .to_str()
                .is_ok_and(|o| keys_state.api_keys().cors_allows(o, parts))
        }))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([header::CONTENT_TYPE, HeaderName::from_static("sc_apikey")]);
    let mut tracking = Router::new()
        .route(&format!("{prefix}/event"), post(track::event::handle))
        .route(
            "/sitecore/api/track/pageview",
            post(track::pageview::handle),
        )
        .route(&format!("{prefix}/tracker.js"), get(track::script::handle))
        .route(
            &format!("{prefix}/flush"),
            get(track::flush::handle).post(track::flush::handle),
        )
        .route(
            "/layouts/system/VisitorIdentification.js",
            get(track::identify::script),
        )
        .route(
            "/layouts/system/VisitorIdentificationCSS.aspx",
            get(track::identify::mark),
        )
        .route(
            &format!("{prefix}/identify.js"),
            get(track::identify::alias_script),
        )
        .route(
            &format!("{prefix}/identify"),
            get(track::identify::alias_mark).post(track::identify::alias_mark),
        );
    if state.settings().personalization.enabled {
        tracking = tracking.route(&format!("{prefix}/visitor"), get(track::visitor::handle));
    }
    if state.settings().server.bench_noop {
        // Beside the tracking routes, so that it goes through the same layers.
        // `/bench/noop/event` and `/flush`: a client pointed at the `/bench/noop` prefix does
        // the same requests as a real visit.
        tracking = tracking.route("/bench/noop/{action}", post(bench::noop));
    }
    let tracking = tracking
        // Before the CORS layer, so that preflights reach it instead of this fallback.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(cors)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refuse_foreign_preflight,
        ));
    let mut admin = Router::new()
        .route("/api/v1/contacts", get(admin::contacts::list))
        .route(
            "/api/v1/contacts/{id}",
            get(admin::contacts::show).delete(admin::contacts::erase),
        )
        .route("/api/v1/contacts/{id}/export", get(admin::contacts::export))
        .route(
            "/api/v1/contacts/{id}/identifiers",
            post(admin::contacts::identify),
        )
        .route("/api/v1/definitions", get(admin::definitions::list))
        .route("/api/v1/interactions", get(admin::interactions::list))
        .route("/api/v1/dashboard", get(admin::dashboard::show))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/healthz", get(health::handle))
        .route("/readyz", get(health::ready));
    if state.settings().server.metrics {
        admin = admin.route("/metrics", get(crate::metrics::render));
    }
    let admin = admin.method_not_allowed_fallback(method_not_allowed);
    let mut layout = Router::new();
    if state.settings().layout_service.upstream.is_some() {
        // The upstream's own CORS headers pass through with its answers.
        layout = layout
            .route(
                "/sitecore/api/layout/render/{config}",
                get(layout::render::handle),
            )
            .route(
                "/sitecore/api/layout/placeholder/{config}",
                get(layout::render::handle),
            );
    }
    Router::new()
        .merge(tracking)
        .merge(layout)
        .merge(admin)
        .merge(profile::router())
        .fallback(not_found)
        .layer(axum::middleware::from_fn(crate::metrics::record_request))
        .with_state(state)
}

/// A preflight from an origin the key does not allow gets the same 403 as the request would,
/// rather than a bare 200 without CORS headers.
async fn refuse_foreign_preflight(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let origin = request
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .map(str::to_string);
        if let Some(origin) = origin {
            let (parts, body) = request.into_parts();
            if !state.api_keys().cors_allows(&origin, &parts) {
                return ApiError::OriginNotAllowed(origin).into_response();
            }
            return next
                .run(axum::extract::Request::from_parts(parts, body))
                .await;
        }
    }
    next.run(request).await
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
