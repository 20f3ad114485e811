//! Building and running the application: bind (port 0 in tests), report the address, serve until
//! told to stop, then drain.

use std::{future::Future, net::SocketAddr, sync::Arc};

use anyhow::Context;
use tokio::net::TcpListener;
use tracker_core::{
    clock::{Clock, SystemClock},
    definitions::Definitions,
    pipeline::{Pipeline, ProcessorTypes},
    robots::RobotRules,
    store::Store,
};

use crate::{
    config::{ListenAddr, Settings},
    routes::router,
    sessions::VisitorPolicy,
    state::AppState,
};

/// A bound, ready-to-run server.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    restored: u64,
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
/// server's own. A program that embeds the server adds its own types to these and passes them
/// to [`Application::build_with_types`].
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
    })
}

/// Opens the store the settings choose.
pub async fn build_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    Ok(settings.storage.store_config().build().await?)
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
    /// Builds with the wall clock.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Builds with an injected clock (tests move it to expire sessions).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let listener = bind(&settings.server.listen).await?;
        Self::build_on(listener, settings, clock).await
    }

    /// Builds with the wall clock and these processor types (the built-ins and a program's
    /// own, see [`processor_types`]), which `[pipeline]` may name.
    pub async fn build_with_types(
        settings: Settings,
        types: ProcessorTypes,
    ) -> anyhow::Result<Self> {
        let listener = bind(&settings.server.listen).await?;
        Self::build_on_with_types(listener, settings, Arc::new(SystemClock), types).await
    }

    /// Builds on a listener already bound (with [`bind`]); `settings.server.listen` is not
    /// looked at.
    pub async fn build_on(
        listener: TcpListener,
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        Self::build_on_with_types(listener, settings, clock, processor_types()).await
    }

    /// [`Application::build_on`] with these processor types.
    pub async fn build_on_with_types(
        listener: TcpListener,
        settings: Settings,
        clock: Arc<dyn Clock>,
        types: ProcessorTypes,
    ) -> anyhow::Result<Self> {
        crate::metrics::install();
        let definitions = load_definitions(&settings)?;
        let (pipeline, _) = build_pipeline(&settings, &types)?;
        let store = build_store(&settings).await?;
        let visitors = build_visitor_policy(&settings)?;
        let device_key = store
            .device_key()
            .await
            .context("reading the key that signs device ids")?;
        let session_state = settings.session_state_config().build().await?;
        let state = AppState::new(crate::state::Parts {
            settings,
            definitions,
            pipeline,
            store,
            clock,
            visitors,
            device_key,
            session_state,
        });
        let restored = state
            .sessions()
            .restore()
            .await
            .context("resuming open interactions")?;
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

    /// Interactions the store held open at start (each resumes on its visitor's next request).
    pub fn restored(&self) -> u64 {
        self.restored
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
pub fn banner(settings: &Settings, addr: SocketAddr, restored: u64) -> String {
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
        "  database:         {}, {restored} open visit(s), resumed as their visitors return",
        settings.storage.store_config().describe(),
    );
    let _ = writeln!(
        out,
        "  live sessions:    {}",
        settings.session_state_config().describe(),
    );
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
