//! Two tracker nodes (two processes, two ports) on one PostgreSQL and one Redis: one visitor's
//! requests may land on either node, in any order, and nothing is lost, doubled or closed
//! twice. PostgreSQL at `JSS_TRACKER_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`, a fresh schema per test) and Redis at `REDIS_URL`
//! (default `redis://127.0.0.1:6379`, a fresh key prefix per test); `scripts/test` starts both
//! when none answers.

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use serde_json::{json, Value};

mod common;

use common::{drop_storage_section, run, secret, Server};

pub fn postgres_url() -> String {
    std::env::var("JSS_TRACKER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Two nodes sharing one schema and one key prefix, and the secrets to talk to them.
struct Cluster {
    nodes: [Server; 2],
    key: String,
    token: String,
    schema: String,
    prefix: String,
    /// The Redis Cluster of the test's own, when the nodes use one (its keys go with it).
    redis_cluster: Option<RedisCluster>,
    _dir: tempfile::TempDir,
}

/// Three Redis primaries in cluster mode, started by the test on free ports, in a folder of
/// their own, keeping nothing; stopped when dropped.
struct RedisCluster {
    servers: Vec<std::process::Child>,
    url: String,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut servers = Vec::new();
        let mut addresses = Vec::new();
        for n in 0..3 {
            let (port, bus) = (Self::free_port(), Self::free_port());
            let child = std::process::Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &bus.to_string(),
                ])
                .args(["--cluster-config-file", &format!("nodes-{n}.conf")])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("redis-server (scripts/test installs it)");
            servers.push(child);
            addresses.push(format!("127.0.0.1:{port}"));
        }
        let cluster = Self {
            servers,
            url: format!("redis+cluster://{}", addresses.join(",")),
            _dir: dir,
        };
        let mut create = std::process::Command::new("redis-cli");
        create.args(["--cluster", "create"]).args(&addresses);
        create.args(["--cluster-replicas", "0", "--cluster-yes"]);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        // The servers take a moment to listen; then the slots take a moment to be agreed.
        loop {
            let out = create.output().unwrap();
            if out.status.success() && String::from_utf8_lossy(&out.stdout).contains("[OK]") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{out:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for address in &addresses {
            let (host, port) = address.split_once(':').unwrap();
            loop {
                let out = std::process::Command::new("redis-cli")
                    .args(["-h", host, "-p", port, "cluster", "info"])
                    .output()
                    .unwrap();
                if String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok") {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "{out:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        cluster
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for server in &mut self.servers {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

impl Cluster {
    async fn start(extra: &[(&str, &str)]) -> Self {
        Self::start_on(None, extra).await
    }

    /// Two nodes whose sessions live in a three-primary Redis Cluster of the test's own.
    async fn start_on_redis_cluster(extra: &[(&str, &str)]) -> Self {
        Self::start_on(Some(RedisCluster::start().await), extra).await
    }

    async fn start_on(redis_cluster: Option<RedisCluster>, extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        assert!(run(dir.path(), &["init"]).status.success());
        drop_storage_section(dir.path());
        let run_id = uuid::Uuid::now_v7().simple().to_string();
        let schema = format!("scale_out_{run_id}");
        let prefix = format!("jss-tracker-scale-out-{run_id}");
        let pg = postgres_url();
        let redis = redis_cluster
            .as_ref()
            .map_or_else(redis_url, |cluster| cluster.url.clone());
        let mut env: Vec<(&str, &str)> = vec![
            ("JSS_TRACKER__STORAGE__BACKEND", "postgres"),
            ("JSS_TRACKER__STORAGE__URL", &pg),
            ("JSS_TRACKER__STORAGE__SCHEMA", &schema),
            ("JSS_TRACKER__SESSIONS__BACKEND", "redis"),
            ("JSS_TRACKER__SESSIONS__URL", &redis),
            ("JSS_TRACKER__SESSIONS__PREFIX", &prefix),
        ];
        env.extend_from_slice(extra);
        let a = Server::start(dir.path(), &["serve"], &env);
        let b = Server::start(dir.path(), &["serve"], &env);
        assert!(a.banner.contains("PostgreSQL"), "{}", a.banner);
        Self {
            nodes: [a, b],
            key: secret(dir.path(), "api_key"),
            token: secret(dir.path(), "admin_token"),
            schema,
            prefix,
            redis_cluster,
            _dir: dir,
        }
    }

    /// Two nodes whose visits expire after 2 s idle, swept every 100 ms.
    async fn start_expiring() -> Self {
        Self::start(EXPIRING).await
    }

    /// Waits (bounded: a failure must not hang the suite) until no visit is open.
    async fn wait_until_all_closed(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let open = self.nodes[0]
                .admin(&self.token, "/api/v1/interactions?open=true")
                .await;
            if open["interactions"].as_array().is_some_and(Vec::is_empty) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "visits still open: {open}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the nodes and drops what they stored (the schema, the Redis keys).
    async fn finish(self) {
        drop(self.nodes);
        let own_redis = self.redis_cluster.is_some();
        let (client, connection) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .await
            .unwrap();
        if own_redis {
            // Its keys go with it.
            return;
        }
        let mut redis = redis::Client::open(redis_url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query_async(&mut redis)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL")
                .arg(keys)
                .query_async(&mut redis)
                .await
                .unwrap();
        }
    }

    /// The only contact's record, read from node `at`.
    async fn only_contact(&self, at: usize) -> Value {
        let list = self.nodes[at].admin(&self.token, "/api/v1/contacts").await;
        let contacts = list["contacts"].as_array().unwrap();
        assert_eq!(contacts.len(), 1, "{list}");
        let id = contacts[0]["id"].as_str().unwrap();
        self.nodes[at]
            .admin(&self.token, &format!("/api/v1/contacts/{id}"))
            .await
    }

    /// A counter's value on node `at` (0 when it was never incremented).
    async fn counter(&self, at: usize, name: &str) -> f64 {
        let text = common::browser()
            .get(format!("{}/metrics", self.nodes[at].url))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

/// One visitor: a browser with a cookie jar. Cookies ignore ports, so the jar sends the
/// tracker's cookies to both nodes, as a browser behind a load balancer would.
#[derive(Clone)]
struct Visitor {
    client: reqwest::Client,
}

impl Visitor {
    fn new() -> Self {
        Self {
            client: reqwest::Client::builder()
                .user_agent("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
                .cookie_store(true)
                .build()
                .unwrap(),
        }
    }

    async fn track(&self, node: &Server, key: &str, body: Value) -> reqwest::Response {
        self.client
            .post(format!(
                "{}/sitecore/api/jss/track/event?sc_apikey={key}",
                node.url
            ))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn track_ok(&self, node: &Server, key: &str, body: Value) {
        let response = self.track(node, key, body).await;
        let status = response.status();
        assert_eq!(status, 200, "{}", response.text().await.unwrap());
    }

    async fn flush(&self, node: &Server, key: &str) -> Value {
        let response = self
            .client
            .post(format!(
                "{}/sitecore/api/jss/track/flush?sc_apikey={key}",
                node.url
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

fn kinds(interaction: &Value) -> Vec<String> {
    interaction["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

/// Sessions that expire after 2 s idle, swept every 100 ms.
const EXPIRING: &[(&str, &str)] = &[
    ("JSS_TRACKER__TRACKER__SESSION_TIMEOUT", "2s"),
    ("JSS_TRACKER__TRACKER__SWEEP_INTERVAL", "100ms"),
];

/// Alternating nodes, one visit: every batch lands in one interaction, in order; flush on node
/// A closes the visit node B opened.
#[tokio::test]
async fn a_visitor_alternating_between_nodes_stays_in_one_interaction_in_order() {
    alternating_nodes_one_visit_in_order(Cluster::start(&[]).await).await;
}

/// Issue #23: the same with the sessions in a three-primary Redis Cluster (each session's keys
/// in one slot, the sessions spread over the primaries).
#[tokio::test]
async fn on_a_redis_cluster_a_visitor_alternating_between_nodes_stays_in_order() {
    let cluster = Cluster::start_on_redis_cluster(&[]).await;
    assert!(
        cluster.nodes[0].banner.contains("redis+cluster://"),
        "{}",
        cluster.nodes[0].banner
    );
    alternating_nodes_one_visit_in_order(cluster).await;
}

async fn alternating_nodes_one_visit_in_order(cluster: Cluster) {
    let visitor = Visitor::new();
    visitor
        .track_ok(
            &cluster.nodes[1],
            &cluster.key,
            json!([{"pageId": "{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}", "url": "/"}]),
        )
        .await;
    for n in 1..8 {
        visitor
            .track_ok(
                &cluster.nodes[n % 2],
                &cluster.key,
                json!([{"eventId": "Download", "data": format!("batch {n}")}]),
            )
            .await;
    }
    let contact = cluster.only_contact(1).await;
    let interactions = contact["interactions"].as_array().unwrap();
    assert_eq!(interactions.len(), 1, "{contact}");
    let data: Vec<&str> = interactions[0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .map(|e| e["data"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (1..8).map(|n| format!("batch {n}")).collect();
    assert_eq!(data, want, "{contact}");
    // Flush on node A closes the visit node B opened (and both added to).
    assert_eq!(
        visitor.flush(&cluster.nodes[0], &cluster.key).await["closed"],
        true
    );
    let contact = cluster.only_contact(1).await;
    assert_eq!(contact["interactions"][0]["open"], false, "{contact}");
    cluster.finish().await;
}

/// Ten batches of one visitor at once, alternating nodes: each is stored whole, one after
/// the other (the session's lock in Redis), none lost.
#[tokio::test]
async fn concurrent_batches_of_one_visitor_on_both_nodes_are_stored_whole() {
    let cluster = Cluster::start(&[]).await;
    let visitor = Visitor::new();
    visitor
        .track_ok(
            &cluster.nodes[1],
            &cluster.key,
            json!([{"pageId": "{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}", "url": "/"}]),
        )
        .await;
    let sends = (0..10).map(|n| {
        let (visitor, cluster) = (visitor.clone(), &cluster);
        async move {
            visitor
                .track_ok(
                    &cluster.nodes[n % 2],
                    &cluster.key,
                    json!([{"goalId": "Register"}, {"eventId": "Download"}]),
                )
                .await;
        }
    });
    futures::future::join_all(sends).await;
    let contact = cluster.only_contact(0).await;
    let interactions = contact["interactions"].as_array().unwrap();
    assert_eq!(interactions.len(), 1, "{contact}");
    assert_eq!(interactions[0]["eventCount"], 21, "{contact}");
    let mut want = vec!["pageView".to_string()];
    for _ in 0..10 {
        want.extend(["goal".to_string(), "pageEvent".to_string()]);
    }
    assert_eq!(kinds(&interactions[0]), want, "each batch whole");
    cluster.finish().await;
}

/// Visits opened on both nodes expire while both run: each is closed exactly once, by one of
/// them (the close counters of both nodes add up to the visits).
#[tokio::test]
async fn idle_expiry_with_two_nodes_closes_each_visit_exactly_once() {
    each_expired_visit_closed_once(Cluster::start_expiring().await).await;
}

/// Issue #23: the same with the sessions in a three-primary Redis Cluster: the sweepers read
/// every shard's live set, on whichever primary it is.
#[tokio::test]
async fn on_a_redis_cluster_each_expired_visit_is_closed_once() {
    each_expired_visit_closed_once(Cluster::start_on_redis_cluster(EXPIRING).await).await;
}

async fn each_expired_visit_closed_once(cluster: Cluster) {
    const VISITS: usize = 30;
    let opens = (0..VISITS).map(|n| {
        let cluster = &cluster;
        async move {
            Visitor::new()
                .track_ok(
                    &cluster.nodes[n % 2],
                    &cluster.key,
                    json!([{"pageId": "{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}", "url": "/"}]),
                )
                .await;
        }
    });
    futures::future::join_all(opens).await;
    let closed = r#"jss_tracker_sessions_closed_total{reason="timeout"}"#;
    // Sweeps on both nodes race for them.
    cluster.wait_until_all_closed().await;
    // A few more sweeps of each node: none may close a visit again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (a, b) = (
        cluster.counter(0, closed).await,
        cluster.counter(1, closed).await,
    );
    assert_eq!(a + b, VISITS as f64, "closes: node A {a}, node B {b}");
    let list = cluster.nodes[1]
        .admin(&cluster.token, "/api/v1/contacts?limit=100")
        .await;
    assert_eq!(list["total"], VISITS, "{list}");
    cluster.finish().await;
}

/// Issue #20 on PostgreSQL + Redis: ten outcomes of the largest value in one visit and eight
/// visitors of one each, split between the nodes, close (by flush and by the sweepers): both
/// nodes keep tracking and stay alive and ready, and the dashboard and the contact answer with
/// exact sums (the writers used to die one sweep at a time). A larger value is a 400.
#[tokio::test]
async fn the_largest_outcomes_never_stop_either_node() {
    let cluster = Cluster::start_expiring().await;
    let max = "1000000000000";
    let outcome = json!({"outcomeId": "Purchase", "currencyCode": "EUR", "monetaryValue": max});
    let buyer = Visitor::new();
    let over = buyer
        .track(
            &cluster.nodes[0],
            &cluster.key,
            json!([{"outcomeId": "Purchase", "monetaryValue": "9999999999999999999999999999"}]),
        )
        .await;
    assert_eq!(over.status(), 400);
    buyer
        .track_ok(
            &cluster.nodes[0],
            &cluster.key,
            Value::Array(vec![outcome.clone(); 10]),
        )
        .await;
    buyer.flush(&cluster.nodes[1], &cluster.key).await;
    for n in 0..8 {
        // Left open: the sweepers close them.
        Visitor::new()
            .track_ok(
                &cluster.nodes[n % 2],
                &cluster.key,
                json!([outcome.clone()]),
            )
            .await;
    }
    cluster.wait_until_all_closed().await;
    for node in &cluster.nodes {
        for path in ["/healthz", "/readyz"] {
            let response = common::browser()
                .get(format!("{}{path}", node.url))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{path} of {}", node.url);
        }
        Visitor::new()
            .track_ok(
                node,
                &cluster.key,
                json!([{"pageId": "{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}", "url": "/"}]),
            )
            .await;
        let dashboard = node.admin(&cluster.token, "/api/v1/dashboard").await;
        let purchase = dashboard["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == "Purchase")
            .cloned()
            .unwrap();
        assert_eq!(purchase["count"], 18, "{purchase}");
        assert_eq!(purchase["monetaryValue"]["EUR"], "18000000000000.00");
    }
    let list = cluster.nodes[1]
        .admin(&cluster.token, "/api/v1/contacts?limit=100")
        .await;
    let contacts = list["contacts"].as_array().unwrap();
    assert!(contacts.len() >= 9, "{list}");
    for contact in contacts {
        let id = contact["id"].as_str().unwrap();
        let record = cluster.nodes[0]
            .admin(&cluster.token, &format!("/api/v1/contacts/{id}"))
            .await;
        assert_eq!(record["id"], id);
    }
    cluster.finish().await;
}
