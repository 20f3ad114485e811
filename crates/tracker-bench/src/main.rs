#![doc = include_str!("../README.md")]
// The load harness is benchmark code: its scenarios read top to bottom as scripts, and the
// workspace's 100-line limit on functions (clippy.toml) is for the product.
#![allow(clippy::too_many_lines)]

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

mod ab;
mod flood;
mod load;
mod prefill;
mod reads;
mod report;
mod scale_out;
mod server;
mod sign_in_storm;
mod sustained;

use load::{LoadConfig, Scenario, Target};
use report::Row;
use server::{Server, ServerOptions};

#[derive(Debug, Parser)]
#[command(name = "tracker-bench", about = "jss-tracker's load harness")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args, Clone)]
struct Common {
    /// The jss-tracker binary to start (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/jss-tracker")]
    server: PathBuf,
    /// Concurrent virtual visitors.
    #[arg(long, default_value_t = 64)]
    visitors: usize,
    /// Length of each run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Where to write the JSON report.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Save the server's final `/metrics` of each run in this folder.
    #[arg(long)]
    metrics_dir: Option<PathBuf>,
    /// Exit with an error if any request failed (for CI smoke runs).
    #[arg(long)]
    fail_on_errors: bool,
    /// Seed of the visits.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// What each virtual visitor does: realistic visits, or one page view each as a new
    /// visitor.
    #[arg(long, value_enum, default_value = "visits")]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Baseline (no-op), tracking with sync=normal and full, and tracking at half the maximum.
    Suite {
        #[command(flatten)]
        common: Common,
        /// Rounds; the summary reports the median.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// One run.
    Load {
        #[command(flatten)]
        common: Common,
        /// What to hit.
        #[arg(long, value_enum, default_value = "track")]
        target: Target,
        /// storage.sync of the server.
        #[arg(long, default_value = "normal")]
        sync: String,
        /// Pace to this many requests/s in total (open loop); default: as fast as it answers.
        #[arg(long)]
        rate: Option<f64>,
        /// Use this database file instead of a fresh one.
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// Write N synthetic events into a database file (bulk path, not HTTP).
    Prefill {
        /// The database file.
        #[arg(long)]
        db: PathBuf,
        /// How many events.
        #[arg(long)]
        events: u64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Time the Profile's and admin API's reads on a database (from `prefill`).
    Reads {
        /// The database file.
        #[arg(long)]
        db: PathBuf,
        /// Runs of each read.
        #[arg(long, default_value_t = 11)]
        runs: usize,
        /// Where to write the JSON report.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Ingest on an empty database, then on one pre-filled with N events.
    Scale {
        #[command(flatten)]
        common: Common,
        /// Events already stored in the second run.
        #[arg(long, default_value_t = 10_000_000)]
        events: u64,
        /// Keep the pre-filled database here (reused if it exists).
        #[arg(long, default_value = "target/bench/scale.db")]
        db: PathBuf,
    },
    /// A flood of cookieless visitors (one page view each), then paced tracking while their
    /// sessions expire together: peak RSS, p99 during the expiry, nothing acknowledged lost.
    Flood {
        #[command(flatten)]
        common: Common,
        /// Visitors in the flood.
        #[arg(long, default_value_t = 1_000_000)]
        count: usize,
        /// The server's session timeout (the paced run lasts this and 30 s more).
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        session_timeout: Duration,
        /// Paced tracking's requests/s during the expiry (half the maximum, measured by `suite`).
        #[arg(long, default_value_t = 6000.0)]
        rate: f64,
        /// Fail if the server's peak RSS goes over this many MiB.
        #[arg(long, default_value_t = 300.0)]
        max_rss_mib: f64,
    },
    /// Tracking on SQLite (one node), then on PostgreSQL + Redis with one node and with two,
    /// each next to the no-op baseline of as many nodes: ratios and CPU per request of the
    /// tracker, PostgreSQL and Redis.
    ScaleOut {
        #[command(flatten)]
        common: Common,
        /// The PostgreSQL the nodes share (a fresh schema per run).
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
        postgres: String,
        /// The Redis the nodes share (a fresh key prefix per run).
        #[arg(long, default_value = "redis://127.0.0.1:6379")]
        redis: String,
    },
    /// Paced tracking alone, then while clients post wrong Profile passwords (every one an
    /// Argon2 verification, the sign-in limit off unless `--rate-limited`), alternating: the
    /// ratio of tracking's p99 with the storm to without.
    SignInStorm {
        #[command(flatten)]
        common: Common,
        /// Paced tracking's requests/s.
        #[arg(long, default_value_t = 2000.0)]
        rate: f64,
        /// Clients posting wrong passwords, each as fast as it is answered.
        #[arg(long, default_value_t = 8)]
        attackers: usize,
        /// Alternated rounds (alone, then with the storm).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Keep the sign-in rate limit on (most attempts then get 429 before any Argon2).
        #[arg(long)]
        rate_limited: bool,
    },
    /// Two server binaries alternated in one run (a baseline and `--server`), each tracking next
    /// to its own no-op baseline: per round, and the medians of both ratios. The measure of
    /// "within 5 %" against the previous landing, in wall-clock throughput.
    Ab {
        #[command(flatten)]
        common: Common,
        /// The binary to compare against (the previous landing's).
        #[arg(long)]
        baseline: PathBuf,
        /// Alternated rounds.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// New visitors for `--duration` (say 10m) on one server from an empty database, per
    /// window: req/s and its share of the first minute's, p99, the largest WAL and RSS, the
    /// open-session cap's evictions. Saturated, then paced at half of the first minute.
    Sustained {
        #[command(flatten)]
        common: Common,
        /// Length of one window.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        window: Duration,
        /// Only the paced run, at this many requests/s.
        #[arg(long)]
        rate: Option<f64>,
        /// Only the saturated run.
        #[arg(long)]
        saturated_only: bool,
    },
    /// Open N interactions (one page view each, never flushed) and report the server's RSS.
    Sessions {
        #[command(flatten)]
        common: Common,
        /// Interactions to open.
        #[arg(long, default_value_t = 100_000)]
        count: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Suite { common, repeat } => runtime.block_on(suite(&common, repeat)),
        Command::Load {
            common,
            target,
            sync,
            rate,
            db,
        } => runtime.block_on(async {
            let dir = tempfile::tempdir()?;
            let db = db.unwrap_or_else(|| dir.path().join("tracker.db"));
            let row = measure(&common, "load", target, &sync, rate, &db).await?;
            finish(&common, vec![row])
        }),
        Command::Prefill { db, events, seed } => {
            let (stats, seconds) = prefill::prefill(&db, events, seed)?;
            println!(
                "prefilled {}: {} events in {} interactions, {seconds:.1} s ({:.0} events/s), {:.0} MiB",
                db.display(),
                stats.events,
                stats.change_sets,
                stats.events as f64 / seconds,
                file_mib(&db)
            );
            Ok(())
        }
        Command::Reads { db, runs, json } => {
            let rows = runtime.block_on(reads::reads(&db, runs))?;
            println!("{}", reads::table(&rows));
            if let Some(json) = json {
                std::fs::write(&json, serde_json::to_string_pretty(&rows)?)?;
            }
            Ok(())
        }
        Command::Scale { common, events, db } => runtime.block_on(scale(&common, events, &db)),
        Command::ScaleOut {
            common,
            postgres,
            redis,
        } => runtime.block_on(scale_out::scale_out(
            &common,
            &scale_out::ScaleOut { postgres, redis },
        )),
        Command::Sessions { common, count } => runtime.block_on(sessions(&common, count)),
        Command::Sustained {
            common,
            window,
            rate,
            saturated_only,
        } => runtime.block_on(sustained::sustained(&common, window, rate, saturated_only)),
        Command::Ab {
            common,
            baseline,
            rounds,
        } => runtime.block_on(ab::ab(&common, &baseline, rounds)),
        Command::SignInStorm {
            common,
            rate,
            attackers,
            rounds,
            rate_limited,
        } => runtime.block_on(sign_in_storm::storm(
            &common,
            &sign_in_storm::Storm {
                rate,
                attackers,
                rounds,
                rate_limited,
            },
        )),
        Command::Flood {
            common,
            count,
            session_timeout,
            rate,
            max_rss_mib,
        } => runtime.block_on(flood::flood(
            &common,
            &flood::Flood {
                count,
                session_timeout,
                rate,
                max_rss_mib,
            },
        )),
    }
}

fn file_mib(path: &std::path::Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / 1_048_576.0)
}

/// Starts a server on `db`, runs the load, reads the server, stops it.
async fn measure(
    common: &Common,
    label: &str,
    target: Target,
    sync: &str,
    rate: Option<f64>,
    db: &std::path::Path,
) -> anyhow::Result<Row> {
    let server = Server::start(&ServerOptions {
        binary: common.server.clone(),
        db: db.to_path_buf(),
        sync: sync.to_string(),
        session_timeout: "20m".into(),
        shared: None,
        extra_config: String::new(),
    })?;
    server::wait_healthy(&server.url).await?;
    eprintln!("  running {label} for {:?} ...", common.duration);
    let cpu_before = server::cpu_seconds(server.pid());
    let generator_before = server::cpu_seconds(std::process::id());
    let writer_before = server::thread_cpu_seconds(server.pid(), "sqlite-writer");
    let idle_before = server::idle_seconds();
    let result = load::run(&LoadConfig {
        url: server.url.clone(),
        target,
        visitors: common.visitors,
        duration: common.duration,
        rate,
        seed: common.seed,
        scenario: common.scenario,
    })
    .await?;
    let cpu = server::cpu_seconds(server.pid()) - cpu_before;
    let generator_cpu = server::cpu_seconds(std::process::id()) - generator_before;
    let writer_cpu = server::thread_cpu_seconds(server.pid(), "sqlite-writer") - writer_before;
    let idle = server::idle_seconds() - idle_before;
    let memory = server::memory(server.pid());
    let metrics = server.metrics().await?;
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let wal_bytes = std::fs::metadata(&wal).map_or(0, |m| m.len());
    server.stop();
    if let Some(dir) = &common.metrics_dir {
        std::fs::create_dir_all(dir)?;
        let name: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        std::fs::write(dir.join(format!("{name}.prom")), metrics.text())?;
    }
    let run = report::Run {
        label,
        target,
        sync,
        visitors: common.visitors,
        rate,
    };
    let mut row = Row::new(run, &result, memory, &metrics);
    let per_request = |seconds: f64| seconds * 1e6 / result.requests.max(1) as f64;
    row.server_cpu_us_per_request = per_request(cpu);
    row.generator_cpu_us_per_request = per_request(generator_cpu);
    row.writer_cpu_us_per_request = per_request(writer_cpu);
    row.idle_cpu_us_per_request = per_request(idle);
    row.wal_file_mib = wal_bytes as f64 / (1024.0 * 1024.0);
    Ok(row)
}

fn finish(common: &Common, rows: Vec<Row>) -> anyhow::Result<()> {
    println!("{}", report::table(&rows));
    let failed: u64 = rows.iter().map(|r| r.errors).sum();
    if common.fail_on_errors && failed > 0 {
        let kinds: Vec<String> = rows
            .iter()
            .flat_map(|r| r.error_kinds.iter().map(|(k, n)| format!("{k}: {n}")))
            .collect();
        anyhow::bail!("{failed} request(s) failed: {}", kinds.join(", "));
    }
    if let Some(path) = &common.json {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("JSON: {}", path.display());
    }
    Ok(())
}

async fn suite(common: &Common, repeat: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut rows = Vec::new();
    // Each round measures the baseline, both sync modes and the baseline again back to back, so
    // that each ratio compares runs made under the same conditions; the summary takes the
    // median round.
    let mut ratios = (Vec::new(), Vec::new());
    let mut maxima = Vec::new();
    for round in 1..=repeat.max(1) {
        // The baseline again after the tracking runs: the machine's speed drifts (other
        // tenants), and the mean of a baseline before and one after is a fairer reference for
        // the runs in between than either alone.
        let plan = [
            ("no-op baseline", Target::Noop, "normal", "noop"),
            ("track, sync=normal", Target::Track, "normal", "normal"),
            ("track, sync=full", Target::Track, "full", "full"),
            (
                "no-op baseline (after)",
                Target::Noop,
                "normal",
                "noop-after",
            ),
        ];
        let mut measured = Vec::with_capacity(plan.len());
        for (label, target, sync, db) in plan {
            let db = dir.path().join(format!("{db}-{round}.db"));
            let label = format!("#{round} {label}");
            measured.push(measure(common, &label, target, sync, None, &db).await?);
        }
        let [baseline, normal, full, baseline_after]: [Row; 4] = measured
            .try_into()
            .map_err(|_| anyhow::anyhow!("the suite plan has four runs"))?;
        let base = (baseline.requests_per_s + baseline_after.requests_per_s) / 2.0;
        ratios.0.push(normal.requests_per_s / base);
        ratios.1.push(full.requests_per_s / base);
        maxima.push(normal.requests_per_s);
        for mut row in [baseline, normal, full, baseline_after] {
            row.ratio_to_baseline = Some(row.requests_per_s / base);
            rows.push(row);
        }
    }
    let half = median(&mut maxima) / 2.0;
    let mut p99s = Vec::new();
    for round in 1..=repeat.max(1) {
        let row = measure(
            common,
            &format!("#{round} track, sync=normal, paced at half max ({half:.0} req/s)"),
            Target::Track,
            "normal",
            Some(half),
            &dir.path().join(format!("half-{round}.db")),
        )
        .await?;
        p99s.push(row.p99_ms);
        rows.push(row);
    }
    let cpu = |pick: &dyn Fn(&Row) -> bool, of: fn(&Row) -> f64| {
        median(&mut rows.iter().filter(|r| pick(r)).map(of).collect::<Vec<_>>())
    };
    let noop = |r: &Row| r.target == Target::Noop;
    let normal = |r: &Row| r.target == Target::Track && r.sync == "normal" && r.rate.is_none();
    let costs = [
        cpu(&noop, |r| r.server_cpu_us_per_request),
        cpu(&noop, |r| r.generator_cpu_us_per_request),
        cpu(&noop, |r| r.idle_cpu_us_per_request),
        cpu(&normal, |r| r.server_cpu_us_per_request),
        cpu(&normal, |r| r.generator_cpu_us_per_request),
        cpu(&normal, |r| r.idle_cpu_us_per_request),
    ];
    finish(common, rows)?;
    println!(
        "summary (median of {} round(s)): sync=normal {:.2} of the no-op baseline (target >= 0.6), \
         sync=full {:.2} (target >= 0.3), p99 at half max ({half:.0} req/s) {:.2} ms (target < 10)",
        repeat.max(1),
        median(&mut ratios.0),
        median(&mut ratios.1),
        median(&mut p99s)
    );
    println!(
        "per request, µs of processor time (median): no-op: server {:.1}, generator {:.1}, idle \
         {:.1}; sync=normal: server {:.1}, generator {:.1}, idle {:.1}",
        costs[0], costs[1], costs[2], costs[3], costs[4], costs[5]
    );
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

async fn scale(common: &Common, events: u64, db: &std::path::Path) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let empty = measure(
        common,
        "track, empty database",
        Target::Track,
        "normal",
        None,
        &dir.path().join("empty.db"),
    )
    .await?;
    if !db.exists() {
        eprintln!("  prefilling {} with {events} events ...", db.display());
        let (stats, seconds) = prefill::prefill(db, events, 7)?;
        eprintln!(
            "  prefilled {} events in {seconds:.0} s ({:.0} events/s)",
            stats.events,
            stats.events as f64 / seconds
        );
    }
    // The pre-filled file is reused between runs: copy it so that this run's writes do not pile up.
    let work = dir.path().join("scaled.db");
    std::fs::copy(db, &work).with_context(|| format!("copying {}", db.display()))?;
    let label = format!(
        "track, {} events already stored ({:.0} MiB)",
        events,
        file_mib(&work)
    );
    let mut scaled = measure(common, &label, Target::Track, "normal", None, &work).await?;
    scaled.ratio_to_baseline = Some(scaled.requests_per_s / empty.requests_per_s);
    let mut empty = empty;
    empty.ratio_to_baseline = Some(1.0);
    println!("(ratio column: to the empty-database run)");
    finish(common, vec![empty, scaled])
}

async fn sessions(common: &Common, count: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(&ServerOptions {
        binary: common.server.clone(),
        db: dir.path().join("sessions.db"),
        sync: "normal".into(),
        session_timeout: "2h".into(),
        shared: None,
        extra_config: String::new(),
    })?;
    server::wait_healthy(&server.url).await?;
    let before = server::memory(server.pid());
    let client = load::client(&server.url, Target::Track, common.visitors)?;
    let started = std::time::Instant::now();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..common.visitors {
        let client = client.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut failed = 0u64;
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < count {
                let visitor = client.visitor();
                let page =
                    tracker_client::Event::page_view("{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}", "/");
                if visitor.track(&[page]).await.is_err() {
                    failed += 1;
                }
            }
            failed
        }));
    }
    let mut failed = 0;
    for task in tasks {
        failed += task.await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let after = server::memory(server.pid());
    let metrics = server.metrics().await?;
    server.stop();
    let open = metrics.value("jss_tracker_open_sessions");
    let grown = after.rss_kib.saturating_sub(before.rss_kib) as f64 / 1024.0;
    let report = serde_json::json!({
        "interactions_opened": count,
        "failed": failed,
        "seconds": seconds,
        "open_sessions": open,
        "rss_before_mib": before.rss_kib as f64 / 1024.0,
        "rss_after_mib": after.rss_kib as f64 / 1024.0,
        "peak_rss_mib": after.peak_rss_kib as f64 / 1024.0,
        "rss_growth_mib": grown,
        "bytes_per_session": if open > 0.0 { grown * 1_048_576.0 / open } else { 0.0 },
    });
    println!(
        "| open sessions | RSS before MiB | RSS after MiB | peak RSS MiB | bytes per session | failed |\n|---|---|---|---|---|---|\n| {open:.0} | {:.1} | {:.1} | {:.1} | {:.0} | {failed} |",
        report["rss_before_mib"].as_f64().unwrap_or(0.0),
        report["rss_after_mib"].as_f64().unwrap_or(0.0),
        report["peak_rss_mib"].as_f64().unwrap_or(0.0),
        report["bytes_per_session"].as_f64().unwrap_or(0.0),
    );
    if let Some(path) = &common.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}
