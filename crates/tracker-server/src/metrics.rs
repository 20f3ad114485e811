//! `/metrics` in the Prometheus text format, through the `metrics` facade and
//! `metrics-exporter-prometheus`. What is recorded: requests by endpoint and status (and their
//! latency), events by kind, batch sizes, the SQLite writer's commit latency and rows per
//! commit, open sessions, and sessions closed by reason.
//!
//! The recorder is process-global (that is how the facade works); every `Application` in a
//! process shares it, which only matters to tests that start several servers.

use std::sync::OnceLock;

use axum::{
    extract::{MatchedPath, Request},
    http::{header, HeaderValue},
    middleware::Next,
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The engine's: sessions open, closed, resumed, evicted; robots' requests and sessions.
pub use tracker_engine::metrics::*;

/// Requests answered, by `endpoint` (the route pattern) and `status`.
pub const HTTP_REQUESTS: &str = "jss_tracker_http_requests_total";
/// Time to answer, by `endpoint`.
pub const HTTP_SECONDS: &str = "jss_tracker_http_request_duration_seconds";
/// Events stored, by `kind`.
pub const EVENTS: &str = "jss_tracker_events_total";
/// Events per accepted tracking request.
pub const BATCH_SIZE: &str = "jss_tracker_batch_size";
/// Connections closed as soon as accepted: `server.max_connections` were open.
pub const CONNECTIONS_REFUSED: &str = "jss_tracker_connections_refused_total";
/// Layout Service answers (200) that tracked no page view, by reason (`tracking_false`,
/// `no_route`, `caller`, `tracking_failed`).
pub const LAYOUT_UNTRACKED: &str = "jss_tracker_layout_untracked_total";
/// Layout Service requests the upstream did not answer (502).
pub const LAYOUT_UPSTREAM_FAILURES: &str = "jss_tracker_layout_upstream_failures_total";
/// `sc_camp` values that name no campaign (ignored, as Sitecore does).
pub const UNKNOWN_CAMPAIGNS: &str = "jss_tracker_unknown_campaigns_total";
/// Requests answered 503 at once because `server.max_body_buffer` was in use by bodies being
/// received.
pub const BODIES_REFUSED: &str = "jss_tracker_bodies_refused_total";
/// Requests whose line or headers did not parse (400, 414, 431 before any handler).
pub const HEAD_ERRORS: &str = "jss_tracker_head_errors_total";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder once per process and returns the handle that renders it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let latency = [
                0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                0.5, 1.0, 2.5,
            ];
            let sizes = [1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 250.0, 1000.0];
            // By name ending, so that a storage backend's histograms get the same buckets
            // without the server naming them: `*_seconds` are latencies, `*_per_commit` sizes.
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(BATCH_SIZE.into()), &sizes))
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_per_commit".into()), &sizes)
                });
            let recorder = match builder {
                Ok(builder) => builder.build_recorder(),
                // Only an empty bucket list fails, and the lists above are not empty.
                Err(error) => {
                    tracing::error!(%error, "metrics buckets; using summaries");
                    PrometheusBuilder::new().build_recorder()
                }
            };
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(HTTP_REQUESTS, "Requests answered, by endpoint and status.");
    metrics::describe_histogram!(
        HTTP_SECONDS,
        metrics::Unit::Seconds,
        "Time to answer a request, by endpoint."
    );
    metrics::describe_counter!(EVENTS, "Events stored, by kind.");
    metrics::describe_histogram!(BATCH_SIZE, "Events per accepted tracking request.");
    metrics::describe_gauge!(OPEN_SESSIONS, "Interactions live in memory.");
    metrics::describe_counter!(SESSIONS_CLOSED, "Interactions ended, by reason.");
    metrics::describe_counter!(
        LAYOUT_UNTRACKED,
        "Layout Service answers that tracked no page view, by reason."
    );
    metrics::describe_counter!(
        LAYOUT_UPSTREAM_FAILURES,
        "Layout Service requests the upstream did not answer (502)."
    );
    metrics::describe_counter!(
        UNKNOWN_CAMPAIGNS,
        "sc_camp values that named no campaign (ignored)."
    );
    metrics::describe_counter!(
        crate::sign_in::SIGN_IN_FAILURES,
        "Refused Experience Profile sign-ins, by reason (credentials, rate_limited)."
    );
    metrics::describe_histogram!(
        tracker_core::store::WRITER_COMMIT_SECONDS,
        metrics::Unit::Seconds,
        "Time one group commit of the store's writer took."
    );
    metrics::describe_histogram!(
        tracker_core::store::WRITER_CHANGE_SETS_PER_COMMIT,
        "Change-sets (requests or closes) in one group commit of the store's writer."
    );
    metrics::describe_histogram!(
        tracker_core::store::WRITER_EVENTS_PER_COMMIT,
        "Event rows in one group commit of the store's writer."
    );
    metrics::describe_counter!(
        tracker_core::store::CHANGE_SETS_REFUSED,
        "Change-sets the store's writer refused alone (an error or a panic while writing them), by reason."
    );
    metrics::describe_counter!(
        crate::webhook::WEBHOOK_ELEMENTS,
        "Elements a webhook processor sent, failed to deliver, or dropped (queue full), by processor."
    );
}

/// Counts and times every request by its route pattern (never the raw path: ids and junk URLs
/// would explode the label set).
pub async fn record_request(request: Request, next: Next) -> Response {
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(HTTP_SECONDS, "endpoint" => endpoint.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(HTTP_REQUESTS, "endpoint" => endpoint, "status" => status).increment(1);
    response
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn render() -> Response {
    let body = install().render();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}
