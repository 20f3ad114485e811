//! Building and running the application: bind (port 0 in tests), report the address, serve until
//! told to stop, then drain.

use std::{future::Future, net::SocketAddr, sync::Arc};

use anyhow::Context;
use tokio::net::TcpListener;
use tracker_core::{
    clock::{Clock, SystemClock},
    definitions::Definitions,
    pipeline::{Pipeline, PipelineBuilder},
    store::Store,
};
use tracker_store_sqlite::{SqliteConfig, SqliteStore, SyncMode};

use crate::{
    config::{Settings, SyncSetting},
    edge::is_loopback_host,
    routes::router,
    state::AppState,
};

/// A bound, ready-to-run server.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    restored: usize,
}

/// Loads the definitions the settings name, or the shipped defaults.
pub fn load_definitions(settings: &Settings) -> anyhow::Result<Definitions> {
    match &settings.definitions.file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("definitions.file: cannot read {}", path.display()))?;
            Definitions::from_toml(&text)
                .with_context(|| format!("definitions.file: {}", path.display()))
        }
        None => Ok(Definitions::defaults()),
    }
}

/// Builds the `trackEvent` pipeline: the defaults, reordered or trimmed by `pipeline.processors`.
pub fn build_pipeline(settings: &Settings) -> anyhow::Result<Pipeline> {
    let builder = PipelineBuilder::with_defaults();
    let builder = match &settings.pipeline.processors {
        Some(order) => builder.order(order).context("pipeline.processors")?,
        None => builder,
    };
    Ok(builder.build())
}

/// Opens the store the settings choose.
pub fn build_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let mut config = SqliteConfig::new(&settings.storage.path);
    config.sync = match settings.storage.sync {
        SyncSetting::Normal => SyncMode::Normal,
        SyncSetting::Full => SyncMode::Full,
    };
    let store = SqliteStore::open(config).with_context(|| {
        format!(
            "storage.path: cannot open {}",
            settings.storage.path.display()
        )
    })?;
    Ok(Arc::new(store))
}

impl Application {
    /// Builds with the wall clock.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Builds with an injected clock (tests move it to expire sessions).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        crate::metrics::install();
        let definitions = load_definitions(&settings)?;
        let pipeline = build_pipeline(&settings)?;
        let store = build_store(&settings)?;
        let listen = settings.server.listen;
        let state = AppState::new(settings, definitions, pipeline, store, clock);
        let restored = state
            .sessions()
            .restore()
            .await
            .context("resuming open interactions")?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("server.listen: cannot bind {listen}"))?;
        let addr = listener.local_addr()?;
        Ok(Self {
            listener,
            addr,
            state,
            restored,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The state (tests use it to run the sweeper on demand).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Open interactions resumed from the store at start.
    pub fn restored(&self) -> usize {
        self.restored
    }

    /// Serves until `shutdown` resolves, with the idle-session sweeper in the background; then
    /// finishes in-flight requests (each answered only after its commit) and returns.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_sweeper, sweeper_stopped) = tokio::sync::oneshot::channel::<()>();
        let sweeper = tokio::spawn(sweep_until(self.state.clone(), sweeper_stopped));
        let state = self.state.clone();
        let served = axum::serve(self.listener, router(self.state))
            .with_graceful_shutdown(shutdown)
            .await;
        // In-flight requests are answered (so committed); let a running sweep finish, then make
        // sure nothing queued for the writer is left behind.
        let _ = stop_sweeper.send(());
        let _ = sweeper.await;
        state.store().drain().await.context("draining the writer")?;
        served.context("server error")
    }
}

async fn sweep_until(state: AppState, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let mut ticker = tokio::time::interval(state.settings().tracker.sweep_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut stop => return,
        }
        match state.sessions().sweep(state.clock().now()).await {
            Ok(0) => {}
            Ok(closed) => tracing::debug!(closed, "idle interactions ended"),
            Err(error) => tracing::error!(%error, "sweeper could not end idle interactions"),
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// The host a JSS app in a browser should use: `localhost` for a loopback address, since apps
/// in development run on `localhost` and cookies only flow between same-site origins.
pub fn browser_host(addr: SocketAddr) -> String {
    if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        format!("http://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

/// The start-up banner: where to point `trackingApi`, and what needs attention.
pub fn banner(settings: &Settings, addr: SocketAddr, restored: usize) -> String {
    use std::fmt::Write;
    let host = if addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    };
    let url = format!("http://{host}");
    // Browsers treat `localhost` and `127.0.0.1` as different sites, and block the tracker's
    // cookies when the app's origin and the tracker's host are not the same site. Apps in
    // development run on `localhost`, so that is the host to give `trackingApi`.
    let browser_url = browser_host(addr);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "jss-tracker {} listening on {url}",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        out,
        "  tracking service: {url}{}/event  (JSS trackingApi host: {browser_url})",
        settings.tracker.service_prefix
    );
    let _ = writeln!(
        out,
        "  tracker:          {}",
        if settings.tracker.enabled {
            "enabled"
        } else {
            "DISABLED"
        }
    );
    if settings.api_keys.is_empty() {
        let _ = writeln!(out, "  api keys:         none configured");
    }
    for key in &settings.api_keys {
        let origins = if key.cors_origins.is_empty() {
            "no browser origins (server-side only)".to_string()
        } else {
            key.cors_origins.join(", ")
        };
        let _ = writeln!(out, "  api key:          {} -> origins {origins}", key.name);
    }
    let _ = writeln!(
        out,
        "  database:         {} (sqlite, sync = {}), {restored} open interaction(s) resumed",
        settings.storage.path.display(),
        match settings.storage.sync {
            SyncSetting::Normal => "normal",
            SyncSetting::Full => "full",
        }
    );
    let _ = writeln!(
        out,
        "  admin api:        {url}/api/v1/contacts (Authorization: Bearer <admin.token>)"
    );
    let mut warnings = Vec::new();
    if !settings.tracker.enabled {
        warnings.push(
            "the tracker is disabled: tracking requests answer 404 until tracker.enabled = true \
             (or JSS_TRACKER__TRACKER__ENABLED=true)"
                .to_string(),
        );
    }
    if !is_loopback_host(&host) && !settings.server.trust_forwarded_proto {
        warnings.push(
            "serving plain HTTP on a non-loopback address: cookies are SameSite=Lax, so cross-site \
             tracking cannot work; put a TLS proxy in front and set server.trust_forwarded_proto"
                .to_string(),
        );
    }
    if settings.admin.token.is_none() {
        warnings.push("admin.token is not set: the admin API refuses every request".to_string());
    }
    if settings
        .api_keys
        .iter()
        .any(|k| k.cors_origins.iter().any(|o| o == "*"))
    {
        warnings
            .push("an API key allows any origin (\"*\"): fine for development only".to_string());
    }
    for warning in warnings {
        let _ = writeln!(out, "  WARNING: {warning}");
    }
    out
}
