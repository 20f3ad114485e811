//! The one state struct every handler takes.

use std::sync::Arc;

use chrono::Duration;
use tracker_core::{
    clock::Clock,
    definitions::Definitions,
    ids::DeviceKey,
    pipeline::{BatchContext, Pipeline},
    session::SessionState,
    store::Store,
};

use tracker_engine::{Sessions, VisitorPolicy};

use crate::{config::Settings, edge::ApiKeys, sign_in::SignIns};

/// Shared application state; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: Settings,
    api_keys: ApiKeys,
    definitions: Definitions,
    pipeline: Pipeline,
    store: Arc<dyn Store>,
    sessions: Sessions,
    clock: Arc<dyn Clock>,
    max_clock_skew: Duration,
    sign_ins: SignIns,
    /// `server.max_body_buffer`, in KiB: what request bodies being received may hold.
    body_budget: tokio::sync::Semaphore,
    rate_limits: crate::rate_limit::RateLimits,
    device_key: DeviceKey,
    /// Set once the server starts shutting down: long-lived answers (the live page's stream)
    /// end then, so that a graceful shutdown completes in seconds.
    shutdown: tokio::sync::watch::Sender<bool>,
    /// The HTTP client of the Layout Service pass-through (one pool of connections).
    http: reqwest::Client,
}

/// What the state is assembled from: the settings and what start-up built from them.
#[derive(Debug)]
pub struct Parts {
    /// The configuration.
    pub settings: Settings,
    /// Goals, events, outcomes, campaigns.
    pub definitions: Definitions,
    /// The `trackEvent` pipeline.
    pub pipeline: Pipeline,
    /// The experience database.
    pub store: Arc<dyn Store>,
    /// Now.
    pub clock: Arc<dyn Clock>,
    /// Robots and privacy: how visitors are classified and what is kept of them.
    pub visitor_policy: VisitorPolicy,
    /// Signs device ids.
    pub device_key: DeviceKey,
    /// Where live sessions are kept.
    pub session_state: Arc<dyn SessionState>,
}

impl AppState {
    /// Assembles the state.
    pub fn new(parts: Parts) -> Self {
        let Parts {
            settings,
            definitions,
            pipeline,
            store,
            clock,
            visitor_policy,
            device_key,
            session_state,
        } = parts;
        let timeout = Duration::from_std(settings.tracker.session_timeout).unwrap_or(Duration::MAX);
        let max_clock_skew =
            Duration::from_std(settings.tracker.max_clock_skew).unwrap_or(Duration::zero());
        let body_budget = tokio::sync::Semaphore::new(
            (settings.server.max_body_buffer / 1024).min(tokio::sync::Semaphore::MAX_PERMITS),
        );
        let sign_ins = SignIns::new(&settings, clock.clone());
        Self {
            inner: Arc::new(Inner {
                body_budget,
                rate_limits: crate::rate_limit::RateLimits::new(
                    &settings.rate_limit,
                    !settings.server.trusted_proxies.is_empty(),
                    clock.clone(),
                ),
                api_keys: ApiKeys::new(&settings.api_keys),
                sessions: Sessions::new(
                    session_state,
                    store.clone(),
                    timeout,
                    settings.tracker.max_open_sessions,
                    visitor_policy,
                ),
                settings,
                definitions,
                pipeline,
                store,
                clock,
                max_clock_skew,
                sign_ins,
                device_key,
                shutdown: tokio::sync::watch::Sender::new(false),
                // Redirects pass through to the caller, as the upstream sent them.
                http: reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap_or_default(),
            }),
        }
    }

    /// The HTTP client for upstream services (the Layout Service).
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Says that the server is shutting down (see [`AppState::shutting_down`]).
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Resolves once the server starts shutting down.
    pub fn shutting_down(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut watch = self.inner.shutdown.subscribe();
        async move {
            let _ = watch.wait_for(|down| *down).await;
        }
    }

    /// The key that signs the device ids this tracker issues.
    pub fn device_key(&self) -> &DeviceKey {
        &self.inner.device_key
    }

    /// The configuration.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The API keys.
    pub fn api_keys(&self) -> &ApiKeys {
        &self.inner.api_keys
    }

    /// The definitions.
    pub fn definitions(&self) -> &Definitions {
        &self.inner.definitions
    }

    /// The `trackEvent` pipeline.
    pub fn pipeline(&self) -> &Pipeline {
        &self.inner.pipeline
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The live sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// Who is signed in to the Experience Profile.
    pub fn sign_ins(&self) -> &SignIns {
        &self.inner.sign_ins
    }

    /// What request bodies being received may hold, in KiB (`server.max_body_buffer`).
    pub fn body_budget(&self) -> &tokio::sync::Semaphore {
        &self.inner.body_budget
    }

    /// The rate limits of the tracking endpoints.
    pub fn rate_limits(&self) -> &crate::rate_limit::RateLimits {
        &self.inner.rate_limits
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The pipeline context for a batch received `now`.
    pub fn batch_context<'a>(
        &'a self,
        now: chrono::DateTime<chrono::Utc>,
        key: Option<&'a crate::edge::ApiKey>,
    ) -> BatchContext<'a> {
        let identification = &self.inner.settings.identification;
        BatchContext {
            definitions: &self.inner.definitions,
            now,
            max_clock_skew: self.inner.max_clock_skew,
            limits: &self.inner.settings.tracker.limits,
            interaction: None,
            identification: tracker_core::processors::IdentificationTrust {
                unsigned_ok: key.is_some_and(|k| k.server_side)
                    || identification.trust == crate::config::IdentificationTrustSetting::Client,
                secret: key.and_then(|k| k.identification_secret.as_deref()),
                max_lifetime: chrono::Duration::from_std(identification.max_signature_lifetime)
                    .unwrap_or(chrono::Duration::hours(1)),
                fold_case: &identification.case_insensitive_sources,
            },
        }
    }
}
