//! The binary as a user runs it: init, check-config, environment overrides, quickstart, and a
//! process killed with SIGKILL right after its 200s.

#![allow(clippy::unwrap_used, missing_docs)]

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_jss-tracker");

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// A running `jss-tracker` process and what its banner said.
struct Server {
    child: Child,
    url: String,
    banner: String,
}

impl Server {
    fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .current_dir(dir)
            .env("JSS_TRACKER__SERVER__LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut banner = String::new();
        let mut url = None;
        // Read the whole banner, up to its last line.
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(120)) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                url = Some(rest.trim().to_string());
            }
            banner.push_str(&line);
            banner.push('\n');
            if line.contains("Press Ctrl-C to stop.") {
                break;
            }
        }
        // Keep draining so the child never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        let url = url.unwrap_or_else(|| panic!("no URL in banner: {banner}"));
        Self { child, url, banner }
    }

    /// POSTs a tracking body with the key, and the cookie header if any.
    async fn track(&self, key: &str, body: String, cookie: &str) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(format!(
                "{}/sitecore/api/jss/track/event?sc_apikey={key}",
                self.url
            ))
            .body(body);
        if !cookie.is_empty() {
            request = request.header("cookie", cookie);
        }
        request.send().await.unwrap()
    }

    /// GETs an admin API path with the token.
    async fn admin(&self, token: &str, path: &str) -> Value {
        reqwest::Client::new()
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL on Unix
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn secret(dir: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(dir.join("tracker.toml")).unwrap();
    let value: toml::Value = toml::from_str(&text).unwrap();
    match key {
        "api_key" => value["api_keys"][0]["key"].as_str().unwrap().to_string(),
        _ => value["admin"]["token"].as_str().unwrap().to_string(),
    }
}

#[test]
fn init_writes_a_starter_config_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["init"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let key = secret(dir.path(), "api_key");
    assert_eq!(key.len(), 32);
    assert!(stdout.contains(&key), "init prints the key: {stdout}");
    assert!(dir.path().join("definitions.toml").exists());
    let again = run(dir.path(), &["init"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    let check = run(dir.path(), &["check-config"]);
    assert!(check.status.success(), "{check:?}");
    let printed = String::from_utf8_lossy(&check.stdout);
    assert!(printed.contains("configuration is valid"));
    assert!(!printed.contains(&key), "secrets are redacted");
    assert!(printed.contains("enabled = true"));
}

#[test]
fn check_config_names_the_bad_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tracker.toml"),
        "[storage]\nsync = \"sometimes\"\n",
    )
    .unwrap();
    let out = run(dir.path(), &["check-config"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sync") && err.contains("tracker.toml"),
        "{err}"
    );

    let out = Command::new(BIN)
        .args(["check-config"])
        .current_dir(dir.path())
        .env("JSS_TRACKER__STORAGE__SYNC", "full")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the environment overrides the file: {out:?}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("sync = \"full\""));
}

#[tokio::test]
async fn environment_variables_override_the_file_and_the_banner_warns() {
    let dir = tempfile::tempdir().unwrap();
    assert!(run(dir.path(), &["init"]).status.success());
    let server = Server::start(
        dir.path(),
        &["serve"],
        &[("JSS_TRACKER__TRACKER__ENABLED", "false")],
    );
    assert!(server.banner.contains("DISABLED"), "{}", server.banner);
    assert!(
        server.banner.contains("WARNING: the tracker is disabled"),
        "{}",
        server.banner
    );
    assert!(
        server
            .banner
            .contains("jss-app -> origins http://localhost:3000"),
        "{}",
        server.banner
    );
    let key = secret(dir.path(), "api_key");
    let response = server.track(&key, "[]".to_string(), "").await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "tracker_disabled");
}

#[tokio::test]
async fn quickstart_on_a_fresh_folder_prints_the_key_and_url_and_tracks() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["quickstart"], &[]);
    let key = secret(dir.path(), "api_key");
    assert!(
        server.banner.contains("tracker:          enabled"),
        "{}",
        server.banner
    );
    let response = server
        .track(&key, r#"[{"goalId":"Register"}]"#.to_string(), "")
        .await;
    assert_eq!(response.status(), 200);
    assert!(dir.path().join("data/tracker.db").exists());
}

async fn sigkill_right_after_200s_loses_nothing(sync: &str) {
    let dir = tempfile::tempdir().unwrap();
    assert!(run(dir.path(), &["init"]).status.success());
    let env = [("JSS_TRACKER__STORAGE__SYNC", sync)];
    let key = secret(dir.path(), "api_key");
    let token = secret(dir.path(), "admin_token");

    let server = Server::start(dir.path(), &["serve"], &env);
    let mut cookie = String::new();
    for i in 0..25 {
        let body = json!([{"goalId": "Register", "data": i.to_string()}, {"eventId": "Download"}]);
        let response = server.track(&key, body.to_string(), &cookie).await;
        assert_eq!(response.status(), 200);
        if cookie.is_empty() {
            cookie = response
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
                .collect::<Vec<_>>()
                .join("; ");
        }
    }
    server.kill();

    let server = Server::start(dir.path(), &["serve"], &env);
    assert!(
        server.banner.contains("1 open interaction(s) resumed"),
        "{}",
        server.banner
    );
    let device = cookie
        .split("SC_ANALYTICS_GLOBAL_COOKIE=")
        .nth(1)
        .unwrap()
        .split('|')
        .next()
        .unwrap()
        .to_string();
    let list = server
        .admin(&token, &format!("/api/v1/contacts?device={device}"))
        .await;
    let id = list["contacts"][0]["id"].as_str().unwrap();
    let contact = server
        .admin(&token, &format!("/api/v1/contacts/{id}"))
        .await;
    let events = contact["interactions"][0]["events"].as_array().unwrap();
    assert_eq!(
        events.len(),
        50,
        "every acknowledged event survived SIGKILL"
    );
    assert_eq!(events[48]["data"], "24");
    assert_eq!(contact["interactions"][0]["engagementValue"], 25 * 55);
}

#[tokio::test]
async fn sigkill_after_200_loses_nothing_with_sync_normal() {
    sigkill_right_after_200s_loses_nothing("normal").await;
}

#[tokio::test]
async fn sigkill_after_200_loses_nothing_with_sync_full() {
    sigkill_right_after_200s_loses_nothing("full").await;
}

#[tokio::test]
async fn sigterm_stops_cleanly_and_the_open_interaction_resumes() {
    let dir = tempfile::tempdir().unwrap();
    assert!(run(dir.path(), &["init"]).status.success());
    let key = secret(dir.path(), "api_key");
    let mut server = Server::start(dir.path(), &["serve"], &[]);
    let response = server
        .track(&key, r#"[{"goalId":"Register"}]"#.to_string(), "")
        .await;
    assert_eq!(response.status(), 200);
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    // Waits for the exit itself; a hung process would hang the test (cargo reports it).
    let status = server.child.wait().unwrap();
    assert!(
        status.success(),
        "clean exit on SIGTERM"
    );
    drop(server);
    let server = Server::start(dir.path(), &["serve"], &[]);
    assert!(
        server.banner.contains("1 open interaction(s) resumed"),
        "{}",
        server.banner
    );
}
