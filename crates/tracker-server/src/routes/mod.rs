//! The routers. A URL's handler lives in `routes/<area>/<action>.rs`.

use axum::{
    http::{header, HeaderName, Method},
    response::Redirect,
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

/// What a route is to its readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The tracking and admin API: in the OpenAPI document.
    Api,
    /// The Experience Profile's pages and assets, for people in a browser.
    Profile,
    /// The load harness's no-op baseline (`server.bench_noop`).
    Bench,
}

/// One route of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The method (`GET`, `POST`, `DELETE`).
    pub method: Method,
    /// The path, as the router matches it (`/api/v1/contacts/{id}`).
    pub path: String,
    /// Who it is for.
    pub audience: Audience,
}

/// A router and the list of what it routes, built together so that the list cannot leave
/// a route out (the OpenAPI test reads it).
struct Table {
    router: Router<AppState>,
    routes: Vec<Route>,
    audience: Audience,
}

impl Table {
    fn new(audience: Audience) -> Self {
        Self {
            router: Router::new(),
            routes: Vec::new(),
            audience,
        }
    }

    /// Routes `methods` of `path` to `handler` (whose method filters are the same).
    fn route(
        self,
        path: &str,
        methods: &[Method],
        handler: axum::routing::MethodRouter<AppState>,
    ) -> Self {
        let audience = self.audience;
        self.route_for(audience, path, methods, handler)
    }

    /// [`Table::route`] for another audience than the table's.
    fn route_for(
        mut self,
        audience: Audience,
        path: &str,
        methods: &[Method],
        handler: axum::routing::MethodRouter<AppState>,
    ) -> Self {
        self.router = self.router.route(path, handler);
        for method in methods {
            self.routes.push(Route {
                method: method.clone(),
                path: path.to_string(),
                audience,
            });
        }
        self
    }

    fn get(self, path: &str, handler: axum::routing::MethodRouter<AppState>) -> Self {
        self.route(path, &[Method::GET], handler)
    }

    fn post(self, path: &str, handler: axum::routing::MethodRouter<AppState>) -> Self {
        self.route(path, &[Method::POST], handler)
    }

    fn layer_router(mut self, wrap: impl FnOnce(Router<AppState>) -> Router<AppState>) -> Self {
        self.router = wrap(self.router);
        self
    }
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    let (router, _) = table(&state);
    router
        .fallback(not_found)
        .layer(axum::middleware::from_fn(crate::metrics::record_request))
        .with_state(state)
}

/// Every route the application serves with these settings.
pub fn routes(state: &AppState) -> Vec<Route> {
    table(state).1
}

/// The one route table: tracking (with CORS), the Layout Service pass-through, the admin API
/// and operations, the Experience Profile.
fn table(state: &AppState) -> (Router<AppState>, Vec<Route>) {
    let parts = [
        tracking_routes(state),
        layout_routes(state),
        admin_routes(state),
        profile_routes(),
    ];
    let mut router = Router::new();
    let mut routes = Vec::new();
    for part in parts {
        router = router.merge(part.router);
        routes.extend(part.routes);
    }
    (router, routes)
}

/// What the JSS clients and the tracker's script call, behind CORS.
fn tracking_routes(state: &AppState) -> Table {
    let prefix = state.settings().tracker.service_prefix.clone();
    let both = [Method::GET, Method::POST];
    let mut tracking = Table::new(Audience::Api)
        .post(&format!("{prefix}/event"), post(track::event::handle))
        .post(
            "/sitecore/api/track/pageview",
            post(track::pageview::handle),
        )
        .get(&format!("{prefix}/tracker.js"), get(track::script::handle))
        .route(
            &format!("{prefix}/flush"),
            &both,
            get(track::flush::handle).post(track::flush::handle),
        )
        .get(
            "/layouts/system/VisitorIdentification.js",
            get(track::identify::script),
        )
        .get(
            "/layouts/system/VisitorIdentificationCSS.aspx",
            get(track::identify::mark),
        )
        .get(
            &format!("{prefix}/identify.js"),
            get(track::identify::alias_script),
        )
        .route(
            &format!("{prefix}/identify"),
            &both,
            get(track::identify::alias_mark).post(track::identify::alias_mark),
        );
    if state.settings().personalization.enabled {
        tracking = tracking.get(&format!("{prefix}/visitor"), get(track::visitor::handle));
    }
    if state.settings().server.bench_noop {
        // Beside the tracking routes, so that it goes through the same layers.
        // `/bench/noop/event` and `/flush`: a client pointed at the `/bench/noop` prefix does
        // the same requests as a real visit.
        tracking = tracking.route_for(
            Audience::Bench,
            "/bench/noop/{action}",
            &[Method::POST],
            post(bench::noop),
        );
    }
    let cors = cors(state);
    let preflights = state.clone();
    tracking.layer_router(|router| {
        router
            // Before the CORS layer, so that preflights reach it instead of this fallback.
            .method_not_allowed_fallback(method_not_allowed)
            .layer(cors)
            .layer(axum::middleware::from_fn_with_state(
                preflights,
                refuse_foreign_preflight,
            ))
    })
}

/// Echo the allowed origin with credentials, never `*`: JSS clients always send credentials.
fn cors(state: &AppState) -> CorsLayer {
    let keys_state = state.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, parts| {
            origin
                .to_str()
                .is_ok_and(|o| keys_state.api_keys().cors_allows(o, parts))
        }))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([header::CONTENT_TYPE, HeaderName::from_static("sc_apikey")])
}

/// The Layout Service in front, when `layout_service.upstream` is set. The upstream's own
/// CORS headers pass through with its answers.
fn layout_routes(state: &AppState) -> Table {
    let table = Table::new(Audience::Api);
    if state.settings().layout_service.upstream.is_none() {
        return table;
    }
    table
        .get(
            "/sitecore/api/layout/render/{config}",
            get(layout::render::render),
        )
        .get(
            "/sitecore/api/layout/placeholder/{config}",
            get(layout::render::placeholder),
        )
}

/// The admin API, the document, health and metrics.
fn admin_routes(state: &AppState) -> Table {
    let mut admin = Table::new(Audience::Api)
        .get("/api/v1/contacts", get(admin::contacts::list))
        .route(
            "/api/v1/contacts/{id}",
            &[Method::GET, Method::DELETE],
            get(admin::contacts::show).delete(admin::contacts::erase),
        )
        .get("/api/v1/contacts/{id}/export", get(admin::contacts::export))
        .post(
            "/api/v1/contacts/{id}/identifiers",
            post(admin::contacts::identify),
        )
        .get("/api/v1/definitions", get(admin::definitions::list))
        .get("/api/v1/interactions", get(admin::interactions::list))
        .get("/api/v1/dashboard", get(admin::dashboard::show))
        .get("/api/v1/openapi.json", get(openapi::document))
        .get("/healthz", get(health::handle))
        .get("/readyz", get(health::ready));
    if state.settings().server.metrics {
        admin = admin.get("/metrics", get(crate::metrics::render));
    }
    admin.layer_router(|router| router.method_not_allowed_fallback(method_not_allowed))
}

/// The Experience Profile's pages, and `/` sending people to it.
fn profile_routes() -> Table {
    use profile::pages;
    Table::new(Audience::Profile)
        .get("/", get(|| async { Redirect::to("/profile") }))
        .get(
            "/profile",
            get(|| async { Redirect::to("/profile/dashboard") }),
        )
        .route(
            "/profile/login",
            &[Method::GET, Method::POST],
            get(profile::login_page).post(profile::login),
        )
        .post("/profile/logout", post(profile::logout))
        .get("/profile/dashboard", get(pages::dashboard))
        .get("/profile/contacts", get(pages::contacts))
        .get("/profile/contacts/{id}", get(pages::contact))
        .get("/profile/live", get(pages::live))
        .get("/profile/live/stream", get(pages::live_stream))
        .get("/profile/definitions", get(pages::definitions))
        .get("/profile/assets/style.css", get(profile::style))
        .get("/profile/assets/live.js", get(profile::live_js))
        .layer_router(|router| {
            router.layer(axum::middleware::map_response(profile::security_headers))
        })
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
