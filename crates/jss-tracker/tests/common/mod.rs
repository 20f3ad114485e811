//! What the binary's integration tests share: the binary, a browser-like client, and a
//! running `jss-tracker` process that is killed when dropped.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_jss-tracker");

/// An HTTP client that says it is a browser (without a user agent, a request is a robot's).
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
        .build()
        .unwrap()
}

pub fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// A running `jss-tracker` process and what its banner said.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub banner: String,
}

impl Server {
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_logging(dir, args, env, Stdio::null())
    }

    /// As `start`, with the server's log (standard error) going to `log`.
    pub fn start_logging(dir: &Path, args: &[&str], env: &[(&str, &str)], log: Stdio) -> Self {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .current_dir(dir)
            .env("JSS_TRACKER__SERVER__LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(log);
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
    pub async fn track(&self, key: &str, body: String, cookie: &str) -> reqwest::Response {
        let mut request = browser()
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
    pub async fn admin(&self, token: &str, path: &str) -> Value {
        browser()
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub fn kill(mut self) {
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

pub fn secret(dir: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(dir.join("tracker.toml")).unwrap();
    let value: toml::Value = toml::from_str(&text).unwrap();
    match key {
        "api_key" => value["api_keys"][0]["key"].as_str().unwrap().to_string(),
        _ => value["admin"]["token"].as_str().unwrap().to_string(),
    }
}

/// Takes `[storage]` out of the `tracker.toml` that `init` wrote (its SQLite keys), for a
/// node whose store the environment chooses: a backend refuses another backend's keys.
pub fn drop_storage_section(dir: &Path) {
    let path = dir.join("tracker.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut kept = String::new();
    let mut in_storage = false;
    for line in text.lines() {
        if line.starts_with('[') {
            in_storage = line.trim() == "[storage]";
        }
        if !in_storage {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    std::fs::write(&path, kept).unwrap();
}
