//! `tracker-bench sustained`: new visitors for minutes on one server from an empty database,
//! reported per window (10 s by default), saturated and then paced at half of the saturated
//! run's first minute: throughput and its share of the first minute's, p99, the WAL's and the
//! server's resident memory (the largest seen in the window, sampled every 100 ms), and the
//! open-session cap's evictions. A fresh database shows what ingest costs; only a long run shows
//! whether it keeps costing that as the tables, the indexes and the WAL grow.

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use crate::{
    load::{self, LoadConfig, Scenario, Target},
    server::{self, Server, ServerOptions},
    Common,
};

/// What one window measured.
struct Window {
    requests_per_s: f64,
    p99_ms: f64,
    errors: u64,
    wal_max_bytes: u64,
    rss_max_kib: u64,
    evicted: f64,
}

/// The largest WAL and RSS seen since the last [`Peaks::take`].
#[derive(Default)]
struct Peaks {
    wal: AtomicU64,
    rss: AtomicU64,
}

impl Peaks {
    fn take(&self) -> (u64, u64) {
        (
            self.wal.swap(0, Ordering::Relaxed),
            self.rss.swap(0, Ordering::Relaxed),
        )
    }
}

/// The saturated run, then (unless `rate` says otherwise) the paced one at half of the
/// saturated run's first minute, each on a fresh database.
pub(crate) async fn sustained(
    common: &Common,
    window: Duration,
    rate: Option<f64>,
    saturated_only: bool,
) -> anyhow::Result<()> {
    let first_minute = match rate {
        Some(_) => None,
        None => Some(run(common, window, None, "saturated").await?),
    };
    if saturated_only {
        return Ok(());
    }
    let pace = rate.or(first_minute.map(|rps| rps / 2.0));
    if let Some(pace) = pace {
        run(
            common,
            window,
            Some(pace),
            &format!("paced at {pace:.0} req/s"),
        )
        .await?;
    }
    Ok(())
}

/// One run, printed as a table; returns the first minute's requests/s.
async fn run(
    common: &Common,
    window: Duration,
    rate: Option<f64>,
    label: &str,
) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("tracker.db");
    let server = Server::start(&ServerOptions {
        binary: common.server.clone(),
        db: db.clone(),
        sync: "normal".into(),
        session_timeout: "20m".into(),
        shared: None,
        extra_config: String::new(),
    })?;
    server::wait_healthy(&server.url).await?;
    let peaks = Arc::new(Peaks::default());
    let sampler = tokio::spawn(sample(server.pid(), wal_path(&db), peaks.clone()));
    println!(
        "\n{label}: new visitors for {:?} in windows of {window:?}\n\n\
         | window ends (s) | req/s | of first minute | p99 ms | errors | WAL max MiB | RSS max MB | evictions |\n\
         |---|---|---|---|---|---|---|---|",
        common.duration
    );
    let windows = (common.duration.as_secs_f64() / window.as_secs_f64()).ceil() as usize;
    let per_minute = (60.0 / window.as_secs_f64()).round().max(1.0) as usize;
    let (mut first_minute, mut evicted_before) = (Vec::new(), 0.0);
    let mut worst_share = f64::INFINITY;
    for index in 0..windows {
        let mut w = measure_window(common, &server, window, rate, index, &peaks).await?;
        let evicted_total = w.evicted;
        w.evicted -= evicted_before;
        evicted_before = evicted_total;
        if index < per_minute {
            first_minute.push(w.requests_per_s);
        }
        let baseline = first_minute.iter().sum::<f64>() / first_minute.len() as f64;
        let share = w.requests_per_s / baseline;
        if index >= per_minute {
            worst_share = worst_share.min(share);
        }
        println!(
            "| {} | {:.0} | {share:.2} | {:.1} | {} | {:.1} | {:.0} | {:.0} |",
            (index + 1) as f64 * window.as_secs_f64(),
            w.requests_per_s,
            w.p99_ms,
            w.errors,
            w.wal_max_bytes as f64 / (1024.0 * 1024.0),
            w.rss_max_kib as f64 / 1024.0,
            w.evicted,
        );
    }
    sampler.abort();
    server.stop();
    let first = first_minute.iter().sum::<f64>() / first_minute.len().max(1) as f64;
    println!(
        "\n{label}: first minute {first:.0} req/s; the worst window after it {:.2} of that",
        if worst_share.is_finite() {
            worst_share
        } else {
            1.0
        }
    );
    Ok(first)
}

async fn measure_window(
    common: &Common,
    server: &Server,
    window: Duration,
    rate: Option<f64>,
    index: usize,
    peaks: &Peaks,
) -> anyhow::Result<Window> {
    peaks.take();
    let result = load::run(&LoadConfig {
        url: server.url.clone(),
        target: Target::Track,
        scenario: Scenario::NewVisitors,
        visitors: common.visitors,
        duration: window,
        rate,
        // Each window's visitors are new ones: the seed only shapes the page views.
        seed: common.seed.wrapping_add(index as u64 * 1_000_003),
    })
    .await?;
    let (wal_max_bytes, rss_max_kib) = peaks.take();
    let evicted = server
        .metrics()
        .await?
        .value("jss_tracker_sessions_evicted_total");
    Ok(Window {
        requests_per_s: result.requests as f64 / result.elapsed.as_secs_f64(),
        p99_ms: result.latency.value_at_quantile(0.99) as f64 / 1000.0,
        errors: result.errors.values().sum(),
        wal_max_bytes,
        rss_max_kib,
        evicted,
    })
}

fn wal_path(db: &Path) -> PathBuf {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// Every 100 ms, the WAL's size and the server's RSS, keeping the largest.
async fn sample(pid: u32, wal: PathBuf, peaks: Arc<Peaks>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let bytes = std::fs::metadata(&wal).map_or(0, |m| m.len());
        peaks.wal.fetch_max(bytes, Ordering::Relaxed);
        peaks
            .rss
            .fetch_max(server::memory(pid).rss_kib, Ordering::Relaxed);
    }
}
