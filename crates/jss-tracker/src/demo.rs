//! `jss-tracker demo`: a throwaway tracker (embedded SQLite in a temporary folder, tracker
//! enabled, a demo API key) and, on a second port, so a different origin, a page modelled on
//! the JSS styleguide's tracking specimen that calls the real `trackingApi` from the npm
//! registry against it, with credentials, as a JSS app in a browser does.

use std::net::SocketAddr;

use anyhow::Context;
use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use secrecy::SecretString;
use tokio::net::TcpListener;
use tracker_server::{
    config::{random_token, ApiKeySettings, ListenAddr},
    startup::{bind, browser_host, load_definitions, shutdown_signal},
    tracker_core::definitions::DefinitionKind,
    Settings,
};

const INDEX_HTML: &str = include_str!("../assets/demo/index.html");
const DEMO_JS: &str = include_str!("../assets/demo/demo.js");
/// Built from `demo/` by `npm run build` (esbuild); CI checks it matches the lock file.
const JSS_BUNDLE_JS: &str = include_str!("../assets/demo/jss.bundle.js");

/// Where the demo listens.
#[derive(Debug, Clone)]
pub(crate) struct DemoAddrs {
    /// The tracker's address (port 0: any free one).
    pub(crate) tracker: ListenAddr,
    /// The demo page's port on 127.0.0.1 (0: any free one).
    pub(crate) app_port: u16,
}

/// Runs the demo until Ctrl-C / SIGTERM; the database goes with the temporary folder.
pub(crate) async fn run(addrs: DemoAddrs) -> anyhow::Result<()> {
    let loopback = [127, 0, 0, 1];
    // Both listeners first: a taken port stops the demo before it creates anything.
    // The page's origin has to be known before the tracker starts: it is the key's CORS origin.
    let app_listener = TcpListener::bind(SocketAddr::from((loopback, addrs.app_port)))
        .await
        .map_err(|error| {
            anyhow::anyhow!(
                "cannot serve the demo page on 127.0.0.1:{}: {error}; pick another port with --app-port (0 picks a free one)",
                addrs.app_port
            )
        })?;
    let tracker_listener = bind(&addrs.tracker).await?;
    let app_port = app_listener.local_addr()?.port();
    // `localhost` on both sides: same site, so Chromium keeps the tracker's cookies
    // (`127.0.0.1` for one and `localhost` for the other would be cross-site, and blocked).
    let app_origin = format!("http://localhost:{app_port}");

    let dir = tempfile::Builder::new()
        .prefix("jss-tracker-demo-")
        .tempdir()
        .context("creating the demo's temporary folder")?;
    let api_key = random_token();
    let admin_token = random_token();
    let mut settings = Settings::default();
    settings.server.listen = addrs.tracker.clone();
    settings.tracker.enabled = true;
    settings.storage.set("path", dir.path().join("tracker.db"));
    settings.admin.token = Some(SecretString::from(admin_token.clone()));
    settings.api_keys = vec![ApiKeySettings {
        name: "demo".into(),
        key: SecretString::from(api_key.clone()),
        cors_origins: vec![app_origin.clone()],
        identification_secret: None,
        server_side: false,
    }];
    settings.validate()?;

    let definitions = load_definitions(&settings)?;
    let app = jss_tracker::application()
        .listener(tracker_listener)
        .build(settings.clone())
        .await?;
    let tracker_host = browser_host(app.local_addr());

    let page_config = page_config(&definitions, &tracker_host, &app_origin, &api_key);
    let config_js = format!("window.DEMO_CONFIG = {page_config};\n");

    println!("jss-tracker {} demo", env!("CARGO_PKG_VERSION"));
    println!("  demo page:   {app_origin}/");
    println!(
        "  tracker:     {tracker_host}  (tracking service {tracker_host}{}/event)",
        settings.tracker.service_prefix
    );
    println!("  api key:     {api_key}  (name 'demo', allowed origin {app_origin})");
    println!("  admin token: {admin_token}");
    println!("  stored data: curl -H 'Authorization: Bearer {admin_token}' {tracker_host}/api/v1/contacts");
    println!(
        "  database:    {} (throwaway: deleted when the demo stops)",
        dir.path().join("tracker.db").display()
    );
    println!(
        "Open the demo page, submit the forms, then look at the stored data. Press Ctrl-C to stop."
    );
    {
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let page = tokio::spawn(serve_page(app_listener, config_js, stop_rx.clone()));
    let tracker = app.run_until(async move {
        let mut stop = stop_rx;
        let _ = stop.wait_for(|s| *s).await;
    });
    let signal = tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let tracked = tracker.await;
    signal.abort();
    page.await.context("demo page server")??;
    dir.close()
        .context("removing the demo's temporary folder")?;
    tracked
}

/// What the demo page is told: where the tracker is, its key, the definitions to offer.
fn page_config(
    definitions: &tracker_server::tracker_core::definitions::Definitions,
    tracker_host: &str,
    app_origin: &str,
    api_key: &str,
) -> serde_json::Value {
    let names = |kind| -> Vec<String> {
        definitions
            .list(kind)
            .iter()
            .map(|d| d.name.clone())
            .collect()
    };
    serde_json::json!({
        "trackerHost": tracker_host,
        "appOrigin": app_origin,
        "apiKey": api_key,
        "definitions": {
            "page-events": names(DefinitionKind::PageEvent),
            "goals": names(DefinitionKind::Goal),
            "outcomes": names(DefinitionKind::Outcome),
            "campaigns": names(DefinitionKind::Campaign),
        },
    })
}

async fn serve_page(
    listener: TcpListener,
    config_js: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let router = Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/demo.js",
            get(|| async { asset("text/javascript; charset=utf-8", DEMO_JS) }),
        )
        .route(
            "/jss.bundle.js",
            get(|| async { asset("text/javascript; charset=utf-8", JSS_BUNDLE_JS) }),
        )
        .route(
            "/demo-config.js",
            get(move || async move { asset("text/javascript; charset=utf-8", config_js) }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found") });
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
        .context("serving the demo page")
}

fn asset(content_type: &'static str, body: impl Into<axum::body::Body>) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body.into(),
    )
        .into_response()
}
