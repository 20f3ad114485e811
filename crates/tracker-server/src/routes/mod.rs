//! The routers. A URL's handler lives in `routes/<area>/<action>.rs`.

use axum::{
    http::{header, HeaderName, Method},
    routing::{get, post},
    Router,
};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{error::ApiError, state::AppState};

pub mod admin;
pub mod health;
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
    let tracking = Router::new()
        .route(&format!("{prefix}/event"), post(track::event::handle))
        .route(
            &format!("{prefix}/flush"),
            get(track::flush::handle).post(track::flush::handle),
        )
        .layer(cors);
    let admin = Router::new()
        .route("/api/v1/contacts", get(admin::contacts::list))
        .route("/api/v1/contacts/{id}", get(admin::contacts::show))
        .route("/api/v1/definitions", get(admin::definitions::list));
    Router::new()
        .merge(tracking)
        .merge(admin)
        .route("/healthz", get(health::handle))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
