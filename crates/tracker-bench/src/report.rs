//! One row per run, printed as a Markdown table and written as JSON.

use serde::Serialize;

use crate::{
    load::{LoadResult, Target},
    server::{Memory, Metrics},
};

/// One measured run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    pub(crate) label: String,
    pub(crate) target: Target,
    pub(crate) sync: String,
    pub(crate) visitors: usize,
    /// Paced rate asked for, requests/s; `None`: closed loop (maximum).
    pub(crate) rate: Option<f64>,
    pub(crate) seconds: f64,
    pub(crate) requests: u64,
    pub(crate) requests_per_s: f64,
    pub(crate) events_per_s: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) p999_ms: f64,
    pub(crate) errors: u64,
    pub(crate) error_kinds: std::collections::BTreeMap<String, u64>,
    pub(crate) server_peak_rss_mib: f64,
    /// The WAL file's size at the end of the run, MiB: SQLite writes it from its start again
    /// after each reset and never shrinks it, so this is the largest the WAL got. How well the
    /// checkpointer keeps up under load shows here (the tests check the reset itself).
    pub(crate) wal_file_mib: f64,
    /// Server CPU time (user + system) per request, µs: what the server spends, whoever else
    /// shares the machine.
    pub(crate) server_cpu_us_per_request: f64,
    /// The store writer thread's share of the server's CPU time per request, µs: the part
    /// that runs on one thread, one commit after another.
    pub(crate) writer_cpu_us_per_request: f64,
    /// The load generator's own CPU time per request, µs (it shares the processors with the
    /// server, so what it spends is not available to the server).
    pub(crate) generator_cpu_us_per_request: f64,
    /// Processor time nobody used, per request, µs (idle + iowait over all processors). With
    /// server + generator + idle, a request's whole cost on this machine.
    pub(crate) idle_cpu_us_per_request: f64,
    /// From the server's `/metrics`.
    pub(crate) commits: f64,
    pub(crate) commit_mean_ms: f64,
    /// Upper bound of the bucket holding the 99th percentile commit.
    pub(crate) commit_p99_ms: f64,
    pub(crate) commit_max_bucket_ms: f64,
    pub(crate) change_sets_per_commit: f64,
    pub(crate) events_per_commit: f64,
    pub(crate) open_sessions: f64,
    pub(crate) closed_flush: f64,
    pub(crate) closed_timeout: f64,
    /// requests/s over the baseline's in the same run.
    pub(crate) ratio_to_baseline: Option<f64>,
}

/// What a run was asked to do.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Run<'a> {
    pub(crate) label: &'a str,
    pub(crate) target: Target,
    pub(crate) sync: &'a str,
    pub(crate) visitors: usize,
    pub(crate) rate: Option<f64>,
}

impl Row {
    pub(crate) fn new(
        run: Run<'_>,
        result: &LoadResult,
        memory: Memory,
        metrics: &Metrics,
    ) -> Self {
        let Run {
            label,
            target,
            sync,
            visitors,
            rate,
        } = run;
        let seconds = result.elapsed.as_secs_f64();
        let ms = |q: f64| result.latency.value_at_quantile(q) as f64 / 1000.0;
        Self {
            label: label.into(),
            target,
            sync: sync.into(),
            visitors,
            rate,
            seconds,
            requests: result.requests,
            requests_per_s: result.requests as f64 / seconds,
            events_per_s: result.events as f64 / seconds,
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            errors: result.errors.values().sum(),
            error_kinds: result.errors.clone(),
            server_peak_rss_mib: memory.peak_rss_kib as f64 / 1024.0,
            wal_file_mib: 0.0,
            server_cpu_us_per_request: 0.0,
            writer_cpu_us_per_request: 0.0,
            generator_cpu_us_per_request: 0.0,
            idle_cpu_us_per_request: 0.0,
            commits: metrics.value("jss_tracker_writer_commit_seconds_count"),
            commit_mean_ms: metrics.mean("jss_tracker_writer_commit_seconds") * 1000.0,
            commit_p99_ms: metrics.quantile("jss_tracker_writer_commit_seconds", 0.99) * 1000.0,
            commit_max_bucket_ms: metrics.quantile("jss_tracker_writer_commit_seconds", 1.0)
                * 1000.0,
            change_sets_per_commit: metrics.mean("jss_tracker_writer_change_sets_per_commit"),
            events_per_commit: metrics.mean("jss_tracker_writer_events_per_commit"),
            open_sessions: metrics.value("jss_tracker_open_sessions"),
            closed_flush: metrics.value(r#"jss_tracker_sessions_closed_total{reason="flush"}"#),
            closed_timeout: metrics.value(r#"jss_tracker_sessions_closed_total{reason="timeout"}"#),
            ratio_to_baseline: None,
        }
    }
}

/// The Markdown table.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| run | req/s | events/s | ratio | p50 ms | p99 ms | p99.9 ms | errors | peak RSS MiB | WAL MiB | server CPU µs/req | of which writer | generator CPU µs/req | idle CPU µs/req | commits | ms/commit | commit p99 ≤ ms | req/commit | events/commit | open sessions |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {:.0} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {:.1} | {:.0} | {:.1} | {:.0} | {:.0} | {:.0} | {:.2} | {:.1} | {:.1} | {:.1} | {:.0} |\n",
            r.label,
            r.requests_per_s,
            r.events_per_s,
            r.ratio_to_baseline.map_or("–".to_string(), |x| format!("{x:.2}")),
            r.p50_ms,
            r.p99_ms,
            r.p999_ms,
            r.errors,
            r.server_peak_rss_mib,
            r.wal_file_mib,
            r.server_cpu_us_per_request,
            r.writer_cpu_us_per_request,
            r.generator_cpu_us_per_request,
            r.idle_cpu_us_per_request,
            r.commits,
            r.commit_mean_ms,
            r.commit_p99_ms,
            r.change_sets_per_commit,
            r.events_per_commit,
            r.open_sessions,
        ));
    }
    out
}
