//! `tracker-bench scale-out`: tracking on SQLite (one node), then on PostgreSQL + Redis with one
//! node and with two, each next to the no-op baseline of the same nodes in the same run, with
//! the processor time per request of the tracker nodes, PostgreSQL and Redis. Issue #13's
//! figures; `docs/scale-out.md` turns them into a capacity estimate.
//!
//! With two nodes, half the virtual visitors go to each (a load balancer with sticky
//! sessions); the two-node tests cover visitors that alternate.

use std::time::Instant;

use anyhow::Context;

use crate::{
    load::{self, LoadConfig, LoadResult, Target},
    server::{self, Server, ServerOptions, SharedBackends},
    Common,
};

/// Where the shared backends are.
#[derive(Debug, Clone)]
pub(crate) struct ScaleOut {
    pub(crate) postgres: String,
    pub(crate) redis: String,
}

/// One configuration's measured run.
struct Measured {
    result: LoadResult,
    tracker_cpu: f64,
    postgres_cpu: f64,
    redis_cpu: f64,
    generator_cpu: f64,
}

async fn run_once(
    common: &Common,
    nodes: usize,
    shared: Option<&ScaleOut>,
    target: Target,
) -> anyhow::Result<Measured> {
    let dir = tempfile::tempdir()?;
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let backends = shared.map(|shared| SharedBackends {
        postgres_url: shared.postgres.clone(),
        schema: format!("bench_{run_id}"),
        redis_url: shared.redis.clone(),
        prefix: format!("jss-tracker-bench-{run_id}"),
    });
    let mut servers = Vec::new();
    for _ in 0..nodes {
        let server = Server::start(&ServerOptions {
            binary: common.server.clone(),
            db: dir.path().join("tracker.db"),
            sync: "normal".into(),
            session_timeout: "20m".into(),
            shared: backends.clone(),
            extra_config: String::new(),
        })?;
        server::wait_healthy(&server.url).await?;
        servers.push(server);
    }
    let trackers = |servers: &[Server]| -> f64 {
        servers
            .iter()
            .map(|s| server::cpu_seconds(s.pid()))
            .sum::<f64>()
    };
    let tracker_before = trackers(&servers);
    let postgres_before = server::processes_cpu_seconds("postgres");
    let redis_before = server::processes_cpu_seconds("redis-server");
    let generator_before = server::cpu_seconds(std::process::id());
    let runs = servers.iter().enumerate().map(|(i, server)| {
        load::run_owned(LoadConfig {
            url: server.url.clone(),
            target,
            visitors: (common.visitors / nodes).max(1),
            duration: common.duration,
            rate: None,
            seed: common.seed + i as u64,
            scenario: common.scenario,
        })
    });
    let started = Instant::now();
    let results = futures::future::try_join_all(runs).await?;
    let elapsed = started.elapsed();
    let measured_tracker = trackers(&servers) - tracker_before;
    let postgres_cpu = server::processes_cpu_seconds("postgres") - postgres_before;
    let redis_cpu = server::processes_cpu_seconds("redis-server") - redis_before;
    let generator_cpu = server::cpu_seconds(std::process::id()) - generator_before;
    for server in servers {
        server.stop();
    }
    if let Some(backends) = &backends {
        clean_up(backends).await?;
    }
    let mut merged = results.first().cloned().context("no node ran")?;
    for result in &results[1..] {
        merged.requests += result.requests;
        merged.events += result.events;
        for (kind, n) in &result.errors {
            *merged.errors.entry(kind.clone()).or_default() += n;
        }
        merged.latency.add(&result.latency)?;
    }
    merged.elapsed = elapsed;
    Ok(Measured {
        result: merged,
        tracker_cpu: measured_tracker,
        postgres_cpu,
        redis_cpu,
        generator_cpu,
    })
}

/// Drops what a run left in PostgreSQL (its schema) and Redis (its keys).
async fn clean_up(backends: &SharedBackends) -> anyhow::Result<()> {
    let (client, connection) =
        tokio_postgres::connect(&backends.postgres_url, tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            backends.schema
        ))
        .await?;
    drop(client);
    let _ = connection.await;
    let mut redis = redis::Client::open(backends.redis_url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", backends.prefix))
        .query_async(&mut redis)
        .await?;
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(keys).query_async(&mut redis).await?;
    }
    Ok(())
}

pub(crate) async fn scale_out(common: &Common, shared: &ScaleOut) -> anyhow::Result<()> {
    let configurations: [(&str, usize, Option<&ScaleOut>); 3] = [
        ("SQLite, in-process sessions", 1, None),
        ("PostgreSQL + Redis", 1, Some(shared)),
        ("PostgreSQL + Redis", 2, Some(shared)),
    ];
    println!(
        "| backends | nodes | no-op req/s | tracking req/s | ratio | p50 ms | p99 ms | errors | tracker CPU µs/req | PostgreSQL CPU µs/req | Redis CPU µs/req | generator CPU µs/req |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut json = Vec::new();
    for (name, nodes, backends) in configurations {
        eprintln!(
            "  {name}, {nodes} node(s): no-op, then tracking, {:?} each ...",
            common.duration
        );
        let noop = run_once(common, nodes, backends, Target::Noop).await?;
        let track = run_once(common, nodes, backends, Target::Track).await?;
        let rate = |m: &Measured| m.result.requests as f64 / m.result.elapsed.as_secs_f64();
        let per_request = |seconds: f64| seconds * 1e6 / track.result.requests.max(1) as f64;
        let errors: u64 = track.result.errors.values().sum();
        let ratio = rate(&track) / rate(&noop);
        let (p50, p99) = (
            track.result.latency.value_at_quantile(0.5) as f64 / 1000.0,
            track.result.latency.value_at_quantile(0.99) as f64 / 1000.0,
        );
        println!(
            "| {name} | {nodes} | {:.0} | {:.0} | {ratio:.2} | {p50:.2} | {p99:.2} | {errors} | {:.0} | {:.0} | {:.0} | {:.0} |",
            rate(&noop),
            rate(&track),
            per_request(track.tracker_cpu),
            per_request(track.postgres_cpu),
            per_request(track.redis_cpu),
            per_request(track.generator_cpu),
        );
        json.push(serde_json::json!({
            "backends": name,
            "nodes": nodes,
            "noop_requests_per_s": rate(&noop),
            "track_requests_per_s": rate(&track),
            "ratio": ratio,
            "p50_ms": p50,
            "p99_ms": p99,
            "errors": errors,
            "tracker_cpu_us_per_request": per_request(track.tracker_cpu),
            "postgres_cpu_us_per_request": per_request(track.postgres_cpu),
            "redis_cpu_us_per_request": per_request(track.redis_cpu),
            "generator_cpu_us_per_request": per_request(track.generator_cpu),
        }));
    }
    if let Some(path) = &common.json {
        std::fs::write(path, serde_json::to_string_pretty(&json)?)?;
    }
    Ok(())
}
