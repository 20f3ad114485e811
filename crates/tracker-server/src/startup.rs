//! Building and running the application: bind (port 0 in tests), report the address, serve until
//! told to stop, then drain.

use std::{future::Future, net::SocketAddr, sync::Arc};

use anyhow::Context;
use tokio::net::TcpListener;
use tracker_core::{
    clock::{Clock, SystemClock},
    definitions::Definitions,
    pipeline::{Pipeline, ProcessorType, ProcessorTypes},
    robots::RobotRules,
    session::{SessionStateType, VisitorPolicy},
    store::{Store, StoreType},
};

use crate::{
    backends::Backends,
    config::{ListenAddr, Settings},
    routes::router,
    state::AppState,
};

/// A bound, ready-to-run server.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    restored: u64,
    /// What the banner says of the store and of the session state.
    described: (String, String),
}

/// Assembles an [`Application`]: the types configuration may name (stores, session states,
/// processors), and optionally a clock, a bound listener, or a store already open, as axum's
/// dependency-injection example hands the router an `Arc<dyn Repo>`. The server names no
/// backend; the binary registers those it ships:
///
/// ```ignore
/// let app = Application::builder()
///     .store_type(Sqlite)
///     .store_type(Postgres)
///     .session_type(Redis)
///     .build(settings)
///     .await?;
/// ```
pub struct ApplicationBuilder {
    backends: Backends,
    processors: ProcessorTypes,
    clock: Arc<dyn Clock>,
    listener: Option<TcpListener>,
    store: Option<Arc<dyn Store>>,
}

impl std::fmt::Debug for ApplicationBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplicationBuilder")
            .field("backends", &self.backends)
            .field("processors", &self.processors)
            .finish_non_exhaustive()
    }
}

impl ApplicationBuilder {
    /// Registers a store type, which `storage.backend` may name.
    #[must_use]
    pub fn store_type(mut self, kind: impl StoreType + 'static) -> Self {
        self.backends.stores.register(Arc::new(kind));
        self
    }

    /// Registers a session-state type, which `sessions.backend` may name (`memory` is).
    #[must_use]
    pub fn session_type(mut self, kind: impl SessionStateType + 'static) -> Self {
        self.backends.sessions.register(Arc::new(kind));
        self
    }

    /// Registers a processor type, which `[pipeline]` may name (the built-ins and the
    /// server's `webhook` are).
    #[must_use]
    pub fn processor_type(mut self, kind: impl ProcessorType + 'static) -> Self {
        self.processors.register(Arc::new(kind));
        self
    }

    /// The clock (tests move a manual one to expire sessions); the wall clock otherwise.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Serves on a listener already bound (with [`bind`]); `server.listen` is not looked at.
    #[must_use]
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Uses this store, already open; `[storage]` is not looked at.
    #[must_use]
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The registered backend types (for `check-config` and commands that open the store).
    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    /// The registered processor types.
    pub fn processor_types(&self) -> &ProcessorTypes {
        &self.processors
    }

    /// Binds (unless given a listener), checks the configuration against the registered
    /// types, opens the store and the session state, and resumes nothing yet: interactions
    /// the store holds open resume on their visitors' next requests.
    pub async fn build(self, settings: Settings) -> anyhow::Result<Application> {
        let listener = match self.listener {
            Some(listener) => listener,
            None => bind(&settings.server.listen).await?,
        };
        crate::metrics::install();
        if self.store.is_none() {
            // Every problem of both sections at once, before anything is opened.
            self.backends.check(&settings)?;
        }
        let definitions = load_definitions(&settings)?;
        let (pipeline, _) = build_pipeline(&settings, &self.processors)?;
        let visitor_policy = build_visitor_policy(&settings)?;
        let (store, store_described) = match self.store {
            Some(store) => (store, "a store given by the program".to_string()),
            None => {
                let config = self.backends.store_config(&settings)?;
                (config.build().await?, config.describe())
            }
        };
        let device_key = store
            .device_key()
            .await
            .context("reading the key that signs device ids")?;
        let sessions_config = self.backends.session_state_config(&settings)?;
        let session_state = sessions_config.build().await?;
        let state = AppState::new(crate::state::Parts {
            settings,
            definitions,
            pipeline,
            store,
            clock: self.clock,
            visitor_policy,
            device_key,
            session_state,
        });
        let restored = state
            .sessions()
            .restore()
            .await
            .context("resuming open interactions")?;
        let addr = listener.local_addr()?;
        Ok(Application {
            listener,
            addr,
            state,
            restored,
            described: (store_described, sessions_config.describe()),
        })
    }
}

/// Loads the definitions the settings name, or the shipped defaults.
pub fn load_definitions(settings: &Settings) -> anyhow::Result<Definitions> {
    match &settings.definitions.file {
        Some(path) => {
            let shown = crate::config::display_path(path);
            let text = std::fs::read_to_string(path).map_err(|error| {
                anyhow::anyhow!("definitions.file: cannot read {shown}: {error}")
            })?;
            Definitions::from_toml(&text).map_err(|error| anyhow::anyhow!("{shown}: {error}"))
        }
        None => Ok(Definitions::defaults()),
    }
}

/// The processor types configuration can name: the built-ins of `tracker-core` and the
/// server's own (`webhook`).
pub fn processor_types() -> ProcessorTypes {
    let mut types = ProcessorTypes::builtin();
    types.register(Arc::new(crate::webhook::WebhookType));
    types
}

/// Builds the `trackEvent` pipeline: the defaults, patched by every configuration file in
/// order (`[pipeline]`), with what each processor is and which file put it there.
pub fn build_pipeline(
    settings: &Settings,
    types: &ProcessorTypes,
) -> anyhow::Result<(Pipeline, Vec<crate::config::PlacedProcessor>)> {
    Ok(crate::config::pipeline::build(&settings.pipeline, types)?)
}

/// The robot rules and privacy settings of the sessions.
pub fn build_visitor_policy(settings: &Settings) -> anyhow::Result<VisitorPolicy> {
    let rules = RobotRules::new(&settings.robots.user_agents, &settings.robots.ip_ranges)
        .map_err(|error| anyhow::anyhow!("robots.user_agents: {error}"))?;
    Ok(VisitorPolicy {
        rules,
        unclassified: settings.robots.unclassified,
        ip_anonymization: settings.privacy.ip_anonymization,
        referrers: tracker_core::acquisition::Referrers::new(
            &settings.acquisition.search,
            &settings.acquisition.social,
        ),
    })
}

/// Binds the listener: the first thing the server does, so that a taken port stops it before
/// it creates or migrates a database. The error is one line that names the address and says
/// how to choose another.
pub async fn bind(listen: &ListenAddr) -> anyhow::Result<TcpListener> {
    let addr = listen
        .resolve()
        .map_err(|message| anyhow::anyhow!("server.listen: {message}"))?;
    TcpListener::bind(addr).await.map_err(|error| {
        let reason = match error.kind() {
            std::io::ErrorKind::AddrInUse => {
                "the address is already in use (another jss-tracker, or another server?)"
                    .to_string()
            }
            std::io::ErrorKind::AddrNotAvailable => "this machine has no such address".to_string(),
            std::io::ErrorKind::PermissionDenied => {
                "permission denied (ports below 1024 need privileges)".to_string()
            }
            _ => error.to_string(),
        };
        let other = SocketAddr::new(addr.ip(), addr.port().checked_add(1).unwrap_or(0));
        anyhow::anyhow!(
            "cannot listen on {listen}: {reason}; pick another address with --listen {other} \
             (or server.listen in the configuration; port 0 picks a free one)"
        )
    })
}

impl Application {
    /// An assembler with the built-in processor types, live sessions in memory, no store type
    /// (a program registers those it ships), and the wall clock.
    pub fn builder() -> ApplicationBuilder {
        ApplicationBuilder {
            backends: Backends::default(),
            processors: processor_types(),
            clock: Arc::new(SystemClock),
            listener: None,
            store: None,
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The state (tests use it to run the sweeper on demand).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Interactions the store held open at start (each resumes on its visitor's next request).
    pub fn restored(&self) -> u64 {
        self.restored
    }

    /// The start-up banner: where to point `trackingApi`, and what needs attention.
    pub fn banner(&self) -> String {
        banner(
            self.state.settings(),
            self.addr,
            self.restored,
            &self.described,
        )
    }

    /// Serves until `shutdown` resolves, with the idle-session sweeper in the background; then
    /// finishes in-flight requests (each answered only after its commit) and returns.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_sweeper, sweeper_stopped) = tokio::sync::oneshot::channel::<()>();
        let sweeper = spawn_sweeper(self.state.clone(), sweeper_stopped)?;
        let state = self.state.clone();
        // The peer's address reaches the handlers (client IP, robot IP ranges, trusted proxies).
        let server = &state.settings().server;
        let limits = crate::serve::ConnectionLimits {
            max_connections: server.max_connections,
            max_per_ip: server.max_connections_per_ip,
            trusted: server.trusted_proxies.clone(),
            ipv6_prefix: state.settings().rate_limit.ipv6_prefix,
            header_timeout: server.header_timeout,
            max_header_bytes: server.max_header_bytes,
        };
        let announce = self.state.clone();
        let shutdown = async move {
            shutdown.await;
            announce.begin_shutdown();
        };
        let served = crate::serve::serve(self.listener, router(self.state), limits, shutdown).await;
        // In-flight requests are answered (so committed); stop the sweeper between two of its
        // closes (what it left is ended by the next start's), then make sure nothing queued
        // for the writer is left behind.
        let _ = stop_sweeper.send(());
        let _ = tokio::task::spawn_blocking(move || sweeper.join()).await;
        state.store().drain().await.context("draining the writer")?;
        served.context("server error")
    }
}

/// Runs the sweeper on a thread of its own at the lowest scheduling priority, with its own
/// runtime (and so its own blocking threads for store reads, which inherit the priority): when
/// a flood of sessions expires together, reading them back and closing them takes whatever
/// processor time tracking leaves, instead of competing with it on the request workers.
fn spawn_sweeper(
    state: AppState,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let thread = std::thread::Builder::new()
        .name("session-sweeper".into())
        .spawn(move || {
            if let Err(error) =
                thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
            {
                tracing::debug!(%error, "could not lower the sweeper's priority");
            }
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name("session-sweeper-io")
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    tracing::error!(%error, "could not start the sweeper; idle visits will not end");
                    return;
                }
            };
            runtime.block_on(sweep_until(state, stop));
        })
        .context("starting the sweeper thread")?;
    Ok(thread)
}

async fn sweep_until(state: AppState, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let mut ticker = tokio::time::interval(state.settings().tracker.sweep_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut stop => return,
        }
        state.rate_limits().forget_idle();
        let swept = tokio::select! {
            swept = state.sessions().sweep(state.clock().now()) => swept,
            _ = &mut stop => return,
        };
        match swept {
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
fn banner(
    settings: &Settings,
    addr: SocketAddr,
    restored: u64,
    (store, sessions): &(String, String),
) -> String {
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
        "  database:         {store}, {restored} open visit(s), resumed as their visitors return",
    );
    let _ = writeln!(out, "  live sessions:    {sessions}");
    let _ = writeln!(
        out,
        "  admin api:        {url}/api/v1/contacts (Authorization: Bearer <admin.token>)"
    );
    let warnings = settings.warnings(Some(addr));
    for warning in warnings {
        let _ = writeln!(out, "  WARNING: {warning}");
    }
    out
}
