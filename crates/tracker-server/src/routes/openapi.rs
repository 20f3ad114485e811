//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of the tracking and admin endpoints,
//! generated from the handlers' own annotations and the wire types (utoipa), so it cannot
//! drift from the code.

use axum::{extract::State, Json};
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};

use super::{admin, health, layout, track};
use crate::state::AppState;

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "jss-tracker",
        description = "The Sitecore JSS Tracking Service and the admin API of its experience database."
    ),
    paths(
        track::event::handle,
        track::pageview::handle,
        track::script::handle,
        track::flush::handle,
        track::visitor::handle,
        track::identify::script,
        track::identify::mark,
        track::identify::alias_script,
        track::identify::alias_mark,
        layout::render::render,
        layout::render::placeholder,
        admin::contacts::list,
        admin::contacts::show,
        admin::contacts::export,
        admin::contacts::erase,
        admin::contacts::identify,
        admin::interactions::list,
        admin::dashboard::show,
        admin::definitions::list,
        health::handle,
        health::ready,
        crate::metrics::render,
        document,
    ),
    modifiers(&AdminToken),
    tags(
        (name = "tracking", description = "What the JSS clients call; the prefix is tracker.service_prefix"),
        (name = "robots", description = "Visitor identification"),
        (name = "layout", description = "The Layout Service in front (layout_service.upstream): route data passed through, page views tracked"),
        (name = "admin", description = "The experience database; Authorization: Bearer <admin.token>"),
        (name = "operations", description = "Liveness and metrics"),
    )
)]
pub struct ApiDoc;

struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The prefix the annotations are written with: the JSS clients' default.
const DEFAULT_PREFIX: &str = "/sitecore/api/jss/track";

/// The OpenAPI document, its tracking paths under this server's `tracker.service_prefix`.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json", operation_id = "getOpenApi",
    tag = "operations",
    responses((status = 200, description = "This document", body = Object))
)]
pub async fn document(State(state): State<AppState>) -> Json<utoipa::openapi::OpenApi> {
    let mut doc = ApiDoc::openapi();
    if !state.settings().personalization.enabled {
        // Served only with `personalization.enabled`.
        doc.paths.paths.remove(&format!("{DEFAULT_PREFIX}/visitor"));
    }
    let prefix = &state.settings().tracker.service_prefix;
    if prefix != DEFAULT_PREFIX {
        doc.paths.paths = std::mem::take(&mut doc.paths.paths)
            .into_iter()
            .map(|(path, item)| match path.strip_prefix(DEFAULT_PREFIX) {
                Some(rest) => (format!("{prefix}{rest}"), item),
                None => (path, item),
            })
            .collect();
    }
    Json(doc)
}
