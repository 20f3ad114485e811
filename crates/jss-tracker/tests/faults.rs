//! Faults on the scale-out backends: a node on a Redis and a PostgreSQL of its own (started
//! here, on free ports, so that stopping them harms no other test), under steady tracking.
//! Redis is stopped mid-run, then PostgreSQL (an immediate shutdown, as a crash): requests get
//! 503 quickly, every event a 200 acknowledged is in PostgreSQL afterwards, and the node
//! recovers by itself when each comes back. Needs Debian's `redis-server` and `postgresql`
//! (`scripts/test` installs them when missing).

#![allow(clippy::unwrap_used, clippy::too_many_lines, missing_docs)]

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use serde_json::json;

mod common;

use common::{drop_storage_section, run, secret, Server};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (bounded) until `ready` holds.
async fn until(what: &str, within: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `redis-server` child on its own port, nothing kept on disk.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server package)");
        let redis = Self {
            port,
            child: Some(child),
        };
        redis.wait_listening();
        redis
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A PostgreSQL cluster of its own in a temporary folder (initdb, pg_ctl), run as the
/// `postgres` user when the tests run as root (PostgreSQL refuses root).
struct OwnPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl OwnPostgres {
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn start_new(port: u16) -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL (Debian's postgresql package)")
            .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
            .filter(|bin| bin.join("initdb").exists())
            .max()
            .expect("an initdb under /usr/lib/postgresql");
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let pg = Self { bin, dir, port };
        let output = pg
            .command("initdb")
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "-D"])
            .arg(pg.data())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        pg.start();
        pg
    }

    fn start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={}",
            self.port,
            self.dir.path().display()
        );
        let status = self
            .command("pg_ctl")
            .args(["-w", "-t", "60", "-l"])
            .arg(self.dir.path().join("log"))
            .arg("-D")
            .arg(self.data())
            .args(["-o", &options, "start"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl start");
    }

    /// An immediate shutdown: what a crash leaves (recovery replays the WAL at start).
    fn crash(&self) {
        let status = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl stop");
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// What the visitors saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    unavailable: AtomicU64,
    /// The markers of acknowledged events.
    acknowledged: Mutex<Vec<String>>,
    /// The slowest failed request.
    slowest_failure: Mutex<Duration>,
    /// Answers other than 200 and 503.
    other: Mutex<Vec<String>>,
}

/// Visitors tracking steadily until `stop`: each request carries one event with a unique
/// marker in its `data`.
fn drive(
    node_url: String,
    key: String,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4)
        .map(|v| {
            let (url, key, stop, tally) = (node_url.clone(), key.clone(), stop.clone(), tally.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .user_agent("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
                    .cookie_store(true)
                    .timeout(Duration::from_secs(60))
                    .build()
                    .unwrap();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let marker = format!("v{v}-{n}");
                    let started = Instant::now();
                    let response = client
                        .post(format!("{url}/sitecore/api/jss/track/event?sc_apikey={key}"))
                        .json(&json!([{"eventId": "Download", "data": marker}]))
                        .send()
                        .await;
                    let took = started.elapsed();
                    match response.map(|r| r.status().as_u16()) {
                        Ok(200) => {
                            tally.ok.fetch_add(1, Ordering::Relaxed);
                            tally.acknowledged.lock().unwrap().push(marker);
                        }
                        Ok(503) => {
                            tally.unavailable.fetch_add(1, Ordering::Relaxed);
                            {
                                let mut slowest = tally.slowest_failure.lock().unwrap();
                                *slowest = (*slowest).max(took);
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        other => tally.other.lock().unwrap().push(format!("{other:?}")),
                    }
                }
            })
        })
        .collect()
}

#[tokio::test]
async fn redis_then_postgres_stopped_mid_run_lose_nothing_and_recover() {
    let mut redis = OwnRedis::start(free_port());
    let pg = OwnPostgres::start_new(free_port());
    let dir = tempfile::tempdir().unwrap();
    assert!(run(dir.path(), &["init"]).status.success());
    drop_storage_section(dir.path());
    let redis_url = format!("redis://127.0.0.1:{}", redis.port);
    let pg_url = pg.url();
    let node = Server::start(
        dir.path(),
        &["serve"],
        &[
            ("JSS_TRACKER__STORAGE__BACKEND", "postgres"),
            ("JSS_TRACKER__STORAGE__URL", &pg_url),
            ("JSS_TRACKER__STORAGE__TIMEOUT", "2s"),
            ("JSS_TRACKER__SESSIONS__BACKEND", "redis"),
            ("JSS_TRACKER__SESSIONS__URL", &redis_url),
        ],
    );
    let key = secret(dir.path(), "api_key");
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let drivers = drive(node.url.clone(), key.clone(), stop.clone(), tally.clone());
    let ok = |t: &Tally| t.ok.load(Ordering::Relaxed);
    let unavailable = |t: &Tally| t.unavailable.load(Ordering::Relaxed);
    // `/readyz`: its status and its answer.
    let readiness = |url: String| async move {
        let response = reqwest::get(format!("{url}/readyz")).await.unwrap();
        let status = response.status().as_u16();
        (status, response.json::<serde_json::Value>().await.unwrap())
    };

    until("first acknowledgements", Duration::from_secs(60), || {
        ok(&tally) >= 40
    })
    .await;
    assert_eq!(readiness(node.url.clone()).await.0, 200);

    // Redis goes away: 503s, quickly; /readyz says which dependency.
    redis.stop();
    let before = unavailable(&tally);
    until("503s without Redis", Duration::from_secs(60), || {
        unavailable(&tally) >= before + 10
    })
    .await;
    let (status, answer) = readiness(node.url.clone()).await;
    assert_eq!(status, 503);
    assert_eq!(
        answer["checks"]["sessions"]["status"], "failing",
        "{answer}"
    );
    assert_eq!(answer["checks"]["store"]["status"], "ok", "{answer}");
    assert_eq!(answer["error"]["code"], "unavailable", "{answer}");
    // Back, empty (nothing was kept): the node reconnects, sessions resume from the store.
    let redis_again = OwnRedis::start(redis.port);
    let before = ok(&tally);
    until("200s after Redis is back", Duration::from_secs(60), || {
        ok(&tally) >= before + 40
    })
    .await;

    // PostgreSQL crashes: 503s, quickly.
    pg.crash();
    let before = unavailable(&tally);
    until("503s without PostgreSQL", Duration::from_secs(60), || {
        unavailable(&tally) >= before + 10
    })
    .await;
    let (status, answer) = readiness(node.url.clone()).await;
    assert_eq!(status, 503);
    assert_eq!(answer["checks"]["store"]["status"], "failing", "{answer}");
    pg.start();
    let before = ok(&tally);
    until(
        "200s after PostgreSQL is back",
        Duration::from_secs(60),
        || ok(&tally) >= before + 40,
    )
    .await;
    assert_eq!(readiness(node.url.clone()).await.0, 200);

    stop.store(true, Ordering::Relaxed);
    for driver in drivers {
        driver.await.unwrap();
    }
    let other = tally.other.lock().unwrap().clone();
    assert!(
        other.is_empty(),
        "answers other than 200 and 503: {other:?}"
    );
    let slowest = *tally.slowest_failure.lock().unwrap();
    assert!(
        slowest < Duration::from_secs(20),
        "a failing request took {slowest:?}"
    );

    // Every acknowledged event is in PostgreSQL, once.
    let (client, connection) = tokio_postgres::connect(&pg_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let stored: Vec<String> = client
        .query("SELECT data FROM events WHERE data IS NOT NULL", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut counts = std::collections::HashMap::new();
    for marker in &stored {
        *counts.entry(marker.as_str()).or_insert(0) += 1;
    }
    let acknowledged = tally.acknowledged.lock().unwrap().clone();
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|m| !counts.contains_key(m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events missing: {missing:?}",
        missing.len()
    );
    let doubled: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "events stored twice: {doubled:?}");
    eprintln!(
        "faults: {} acknowledged, {} answered 503 (slowest {slowest:?}), {} stored",
        acknowledged.len(),
        unavailable(&tally),
        stored.len()
    );
    drop(node);
    drop(redis_again);
}
