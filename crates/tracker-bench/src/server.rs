//! The server under test: the real `jss-tracker` binary, started on port 0 with a generated
//! configuration, and what can be read off it (peak RSS from /proc, `/metrics`).

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{bail, Context};

/// The API key the harness configures.
pub(crate) const KEY: &str = "bench-key";

/// How to start it.
#[derive(Debug, Clone)]
pub(crate) struct ServerOptions {
    pub(crate) binary: PathBuf,
    pub(crate) db: PathBuf,
    pub(crate) sync: String,
    pub(crate) session_timeout: String,
    /// PostgreSQL and Redis instead of SQLite and memory (`scale-out`).
    pub(crate) shared: Option<SharedBackends>,
    /// More configuration, appended to the file (`sign-in-storm`'s Profile user). Empty for
    /// the other runs, so that any version's binary reads the file.
    pub(crate) extra_config: String,
}

/// The scale-out backends several nodes share.
#[derive(Debug, Clone)]
pub(crate) struct SharedBackends {
    pub(crate) postgres_url: String,
    pub(crate) schema: String,
    pub(crate) redis_url: String,
    pub(crate) prefix: String,
}

/// A running server.
#[derive(Debug)]
pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
    _config_dir: tempfile::TempDir,
}

impl Server {
    pub(crate) fn start(options: &ServerOptions) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("tracker.toml");
        std::fs::write(
            &config,
            format!(
                r#"[server]
listen = "127.0.0.1:0"
bench_noop = true

[tracker]
enabled = true
session_timeout = "{timeout}"

[storage]
{storage}
{sessions}

[admin]
token = "bench"

[[api_keys]]
name = "bench"
key = "{KEY}"
cors_origins = ["http://localhost:3000"]
{extra}
"#,
                extra = options.extra_config,
                timeout = options.session_timeout,
                storage = options.shared.as_ref().map_or(
                    format!(
                        "path = \"{}\"\nsync = \"{}\"",
                        options.db.display(),
                        options.sync
                    ),
                    |shared| format!(
                        "backend = \"postgres\"\nurl = \"{}\"\nschema = \"{}\"",
                        shared.postgres_url, shared.schema
                    )
                ),
                sessions = options
                    .shared
                    .as_ref()
                    .map_or(String::new(), |shared| format!(
                        "[sessions]\nbackend = \"redis\"\nurl = \"{}\"\nprefix = \"{}\"",
                        shared.redis_url, shared.prefix
                    )),
            ),
        )?;
        let mut child = Command::new(&options.binary)
            .args(["serve", "--config"])
            .arg(&config)
            // Per-interaction info lines would measure the terminal; warnings still show.
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", options.binary.display()))?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut url = None;
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            if let Some(rest) = line.split("listening on ").nth(1) {
                url = Some(rest.trim().to_string());
            }
            if line.contains("Press Ctrl-C") {
                break;
            }
        }
        let Some(url) = url else {
            let _ = child.kill();
            bail!("the server did not say where it listens");
        };
        Ok(Self {
            child,
            url,
            _config_dir: dir,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `/metrics`, parsed.
    pub(crate) async fn metrics(&self) -> anyhow::Result<Metrics> {
        let text = reqwest::get(format!("{}/metrics", self.url))
            .await?
            .text()
            .await?;
        Ok(Metrics { text })
    }

    pub(crate) fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time a process has used (user + system), in seconds, from `/proc/<pid>/stat`.
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    stat_cpu_seconds(&Path::new("/proc").join(pid.to_string()).join("stat"))
}

/// utime + stime of a `/proc/.../stat` file, in seconds.
fn stat_cpu_seconds(path: &Path) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after the name.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    // USER_HZ is 100 on Linux for every architecture this runs on.
    ticks as f64 / 100.0
}

/// CPU time used by every process whose command is `name` (`/proc/*/comm`), in seconds: what
/// PostgreSQL's backends or Redis spent, whoever runs them.
pub(crate) fn processes_cpu_seconds(name: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|entry| {
            std::fs::read_to_string(entry.path().join("comm")).is_ok_and(|comm| comm.trim() == name)
        })
        .map(|entry| stat_cpu_seconds(&entry.path().join("stat")))
        .sum()
}

/// CPU time used by a process's threads of one name (`/proc/<pid>/task/*/comm`), in seconds:
/// `sqlite-writer` is the store's single writer, whose time is the storage cost that cannot be
/// spread over processors.
pub(crate) fn thread_cpu_seconds(pid: u32, name: &str) -> f64 {
    let tasks = Path::new("/proc").join(pid.to_string()).join("task");
    let Ok(entries) = std::fs::read_dir(&tasks) else {
        return 0.0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name)
        })
        .map(|task| stat_cpu_seconds(&task.path().join("stat")))
        .sum()
}

/// CPU time the machine's processors spent idle (idle + iowait, all processors summed), in
/// seconds, from `/proc/stat`. With the load generator and the server on the same processors,
/// idle time during a closed-loop run means neither had work: requests were waiting on
/// something other than the CPU.
pub(crate) fn idle_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .find(|line| line.starts_with("cpu "))
        .map_or(0, |line| {
            // cpu user nice system idle iowait ...
            line.split_whitespace()
                .skip(4)
                .take(2)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        });
    ticks as f64 / 100.0
}

/// A process's memory, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub(crate) struct Memory {
    /// Resident now, KiB.
    pub(crate) rss_kib: u64,
    /// Peak resident, KiB.
    pub(crate) peak_rss_kib: u64,
}

pub(crate) fn memory(pid: u32) -> Memory {
    let status = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status"))
        .unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Memory {
        rss_kib: field("VmRSS:"),
        peak_rss_kib: field("VmHWM:"),
    }
}

/// The Prometheus text of `/metrics`.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    text: String,
}

impl Metrics {
    /// The text as scraped.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The value of one series (`name{labels}` exactly as exported), or 0.
    pub(crate) fn value(&self, series: &str) -> f64 {
        self.text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                (name == series).then(|| value.parse().ok()).flatten()
            })
            .unwrap_or(0.0)
    }

    /// The upper bound of the bucket holding quantile `q` of a histogram (Prometheus style:
    /// an upper estimate), or 0 when it is empty.
    pub(crate) fn quantile(&self, histogram: &str, q: f64) -> f64 {
        let prefix = format!("{histogram}_bucket{{le=\"");
        let buckets: Vec<(f64, f64)> = self
            .text
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .filter_map(|rest| {
                let (le, count) = rest.split_once("\"} ")?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((le, count.parse().ok()?))
            })
            .collect();
        let total = buckets.last().map_or(0.0, |b| b.1);
        if total == 0.0 {
            return 0.0;
        }
        buckets
            .iter()
            .find(|(_, count)| *count >= q * total)
            .map_or(0.0, |(le, _)| *le)
    }

    /// `sum / count` of a histogram.
    pub(crate) fn mean(&self, histogram: &str) -> f64 {
        let count = self.value(&format!("{histogram}_count"));
        if count == 0.0 {
            0.0
        } else {
            self.value(&format!("{histogram}_sum")) / count
        }
    }
}

/// Waits until the server answers `/healthz`.
pub(crate) async fn wait_healthy(url: &str) -> anyhow::Result<()> {
    for _ in 0..100 {
        if reqwest::get(format!("{url}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{url} never became healthy")
}
