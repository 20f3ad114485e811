//! `tracker-bench flood`: what a flood of cookieless visitors does to the server, and whether
//! tracking survives it. Issue #12's proof for bounded sessions.
//!
//! 1. `count` visitors without cookies each send one page view (every one opens a session),
//!    as fast as the server answers; the server's peak RSS is read from `/proc`.
//! 2. Then paced tracking (realistic visits at `rate` requests/s) for the session timeout and
//!    a margin, so that the flood's sessions all expire together while it runs: its latency
//!    p99 is the figure.
//! 3. The server is killed (SIGKILL) and the database file opened: every event a 200 answered
//!    must be in it, and the flood's interactions must have been ended by the sweeper.

use std::{
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Context;

use crate::{
    load::{self, LoadConfig, Target},
    server::{self, Server, ServerOptions},
    Common,
};

/// The flood's shape.
#[derive(Debug, Clone)]
pub(crate) struct Flood {
    pub(crate) count: usize,
    pub(crate) session_timeout: Duration,
    pub(crate) rate: f64,
    pub(crate) max_rss_mib: f64,
}

pub(crate) async fn flood(common: &Common, flood: &Flood) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("flood.db");
    let server = Server::start(&ServerOptions {
        binary: common.server.clone(),
        db: db.clone(),
        sync: "normal".into(),
        session_timeout: humantime::format_duration(flood.session_timeout).to_string(),
        shared: None,
        extra_config: String::new(),
    })?;
    server::wait_healthy(&server.url).await?;
    let pid = server.pid();
    let before = server::memory(pid);

    // 1. The flood.
    let client = load::client(&server.url, Target::Track, common.visitors)?;
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let acknowledged = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..common.visitors {
        let (client, next, acknowledged) = (client.clone(), next.clone(), acknowledged.clone());
        let count = flood.count;
        tasks.push(tokio::spawn(async move {
            let mut failed = 0u64;
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let page =
                    tracker_client::Event::page_view("{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}", "/");
                match client.visitor().track(&[page]).await {
                    Ok(_) => {
                        acknowledged.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => failed += 1,
                }
            }
            failed
        }));
    }
    let mut flood_failed = 0;
    for task in tasks {
        flood_failed += task.await?;
    }
    let flood_seconds = started.elapsed().as_secs_f64();
    let after_flood = server::memory(pid);
    let metrics = server.metrics().await?;
    let in_memory = metrics.value("jss_tracker_open_sessions");
    let evicted = metrics.value("jss_tracker_sessions_evicted_total");
    eprintln!(
        "  flood: {} visitors in {flood_seconds:.1} s, {flood_failed} failed; RSS {:.1} MiB, peak {:.1} MiB; {in_memory:.0} sessions in memory, {evicted:.0} left it",
        flood.count,
        after_flood.rss_kib as f64 / 1024.0,
        after_flood.peak_rss_kib as f64 / 1024.0,
    );

    // 2. Paced tracking while the flood's sessions expire together.
    let margin = Duration::from_secs(30);
    let paced = load::run(&LoadConfig {
        url: server.url.clone(),
        target: Target::Track,
        visitors: common.visitors,
        duration: flood.session_timeout + margin,
        rate: Some(flood.rate),
        seed: common.seed,
        scenario: common.scenario,
    })
    .await?;
    // The sweeper runs every 15 s and ends at most 5,000 a second: wait (bounded) until every
    // flood visit has ended.
    let ended_by = Instant::now() + Duration::from_secs(900);
    let mut closed_timeout;
    loop {
        let metrics = server.metrics().await?;
        closed_timeout = metrics.value("jss_tracker_sessions_closed_total{reason=\"timeout\"}");
        if closed_timeout >= flood.count as f64 || Instant::now() > ended_by {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let end = server::memory(pid);
    let paced_errors: u64 = paced.errors.values().sum();
    let p99_ms = paced.latency.value_at_quantile(0.99) as f64 / 1000.0;
    let p999_ms = paced.latency.value_at_quantile(0.999) as f64 / 1000.0;
    server.stop(); // SIGKILL: what a 200 acknowledged must be in the file anyway

    // 3. What the file holds.
    let conn = rusqlite::Connection::open(&db).context("opening the flood's database")?;
    let stored_events: i64 = conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
    let still_open: i64 = conn.query_row(
        "SELECT count(*) FROM interactions WHERE open = 1",
        [],
        |r| r.get(0),
    )?;
    let acknowledged_events = acknowledged.load(Ordering::Relaxed) + paced.events;
    let peak_mib = end.peak_rss_kib as f64 / 1024.0;
    let report = serde_json::json!({
        "flood_visitors": flood.count,
        "flood_failed": flood_failed,
        "flood_seconds": flood_seconds,
        "flood_requests_per_s": flood.count as f64 / flood_seconds,
        "rss_before_mib": before.rss_kib as f64 / 1024.0,
        "rss_after_flood_mib": after_flood.rss_kib as f64 / 1024.0,
        "peak_rss_mib": peak_mib,
        "sessions_in_memory_after_flood": in_memory,
        "sessions_evicted": evicted,
        "paced_rate": flood.rate,
        "paced_requests": paced.requests,
        "paced_errors": paced_errors,
        "paced_p99_ms": p99_ms,
        "paced_p999_ms": p999_ms,
        "closed_by_timeout": closed_timeout,
        "acknowledged_events": acknowledged_events,
        "stored_events": stored_events,
        "still_open_in_store": still_open,
    });
    println!(
        "| flood visitors | flood req/s | peak RSS MiB | in memory after flood | evicted | paced p99 ms (p99.9) during expiry | paced errors | acknowledged events | stored events | open after |\n|---|---|---|---|---|---|---|---|---|---|\n| {} | {:.0} | {peak_mib:.1} | {in_memory:.0} | {evicted:.0} | {p99_ms:.2} ({p999_ms:.2}) | {paced_errors} | {acknowledged_events} | {stored_events} | {still_open} |",
        flood.count,
        flood.count as f64 / flood_seconds,
    );
    if let Some(path) = &common.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    anyhow::ensure!(
        u64::try_from(stored_events).unwrap_or(0) >= acknowledged_events,
        "acknowledged events are missing: {acknowledged_events} answered 200, {stored_events} stored"
    );
    anyhow::ensure!(
        peak_mib <= flood.max_rss_mib,
        "peak RSS {peak_mib:.1} MiB is over the bound of {} MiB",
        flood.max_rss_mib
    );
    Ok(())
}
