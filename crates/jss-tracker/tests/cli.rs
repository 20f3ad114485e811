//! The binary as a user runs it: init, check-config, environment overrides, quickstart, and a
//! process killed with SIGKILL right after its 200s.

#![allow(clippy::unwrap_used, missing_docs)]

use std::{
    path::Path,
    process::{Command, Stdio},
};

use serde_json::{json, Value};

mod common;

use common::{browser, run, secret, Server, BIN};

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

/// Client-supplied values reach the log escaped, or not at all: a newline or an ANSI escape
/// sequence in a query parameter or a body cannot forge a log line or recolour a terminal.
#[tokio::test]
async fn client_values_cannot_forge_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let server = Server::start_logging(
        dir.path(),
        &["quickstart"],
        &[("RUST_LOG", "debug")],
        Stdio::from(log),
    );
    let key = secret(dir.path(), "api_key");
    let forged = "2026-11-29T00:00:00.000000Z ERROR jss_tracker: forged";
    let camp = format!("nope%0A{}%1B%5B31mred%0D", forged.replace(' ', "%20"));
    let response = browser()
        .post(format!(
            "{}/sitecore/api/jss/track/event?sc_apikey={key}&sc_camp={camp}",
            server.url
        ))
        .body(r#"[{"goalId":"Register"}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Refused requests are logged too (at debug), and their messages quote client text.
    let goal = format!("nope\n{forged}\u{1b}[31mred");
    let refused = server
        .track(
            &key,
            serde_json::json!([{ "goalId": goal }]).to_string(),
            "",
        )
        .await;
    assert_eq!(refused.status(), 400);
    server.kill();
    let log = std::fs::read_to_string(&log_path).unwrap();
    // An unknown sc_camp is counted, never logged (4 KB of client text a request filled
    // disks); the refused goal is logged, escaped.
    assert!(!log.contains("sc_camp"), "{log}");
    assert!(log.contains("Regist") || log.contains("nope"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "an escape sequence reached the log: {log}"
    );
    assert!(
        !log.contains('\r'),
        "a carriage return reached the log: {log}"
    );
    for line in log.lines() {
        assert!(!line.starts_with(forged), "a forged line: {line}");
    }
}

/// A second server on the same database file refuses to start, and says why, instead of two
/// servers taking turns on one file and each holding visits the other closes.
#[tokio::test]
async fn a_second_server_on_the_same_database_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    assert!(run(dir.path(), &["init"]).status.success());
    let first = Server::start(dir.path(), &["serve"], &[]);
    let second = Command::new(BIN)
        .arg("serve")
        .current_dir(dir.path())
        .env("JSS_TRACKER__SERVER__LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("tracker.db is in use by another jss-tracker (process ")
            && stderr.contains("give this one its own storage.path"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    // The first one is unharmed.
    let key = secret(dir.path(), "api_key");
    let response = first
        .track(&key, r#"[{"goalId":"Register"}]"#.to_string(), "")
        .await;
    assert_eq!(response.status(), 200);
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
        server
            .banner
            .contains("1 open visit(s), resumed as their visitors return"),
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
    assert!(status.success(), "clean exit on SIGTERM");
    drop(server);
    let server = Server::start(dir.path(), &["serve"], &[]);
    assert!(
        server
            .banner
            .contains("1 open visit(s), resumed as their visitors return"),
        "{}",
        server.banner
    );
}

/// `check-config` in `dir` with `tracker.toml` holding `text`; its standard error, which must
/// be the only thing it says on failure.
fn config_error(dir: &Path, text: &str, env: &[(&str, &str)]) -> String {
    std::fs::write(dir.join("tracker.toml"), text).unwrap();
    let mut command = Command::new(BIN);
    command
        .arg("check-config")
        .current_dir(dir)
        .env("RUST_BACKTRACE", "1");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    assert!(!out.status.success(), "{text} was accepted");
    assert!(out.stdout.is_empty(), "{out:?}");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn config_errors_are_one_readable_line_each_without_a_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let expected = "expected an IP address and a port such as 127.0.0.1:8080 or [::]:8080, \
                    or a host name and a port such as localhost:8080";
    let cases: Vec<(&str, String)> = vec![
        (
            "[tracker]\nenabeld = true\n",
            "error: tracker.toml: tracker.enabeld: unknown key; did you mean enabled?\n".into(),
        ),
        (
            "[server]\nlisten = \"8080\"\n",
            format!("error: tracker.toml: server.listen: \"8080\" is not an address and a port; {expected}\n"),
        ),
        (
            "[server]\nlisten = \"127.0.0.1:http\"\n",
            format!("error: tracker.toml: server.listen: \"127.0.0.1:http\": \"http\" is not a port (0 to 65535); {expected}\n"),
        ),
        (
            "[tracker]\nsession_timeout = \"soon\"\n",
            "error: tracker.toml: tracker.session_timeout: expected a duration such as 90s, 20m, \
             1h 30m or 3650days, found string \"soon\"\n"
                .into(),
        ),
        (
            "[storage]\nsync = \"sometimes\"\n",
            "error: tracker.toml: storage.sync: unknown value \"sometimes\"; expected \"normal\" or \"full\"\n".into(),
        ),
        (
            "[admin]\ntoken = \"\"\n",
            "error: tracker.toml: admin.token: is empty; set a token (`jss-tracker init` writes a \
             random one), or remove the key to turn the admin API off\n"
                .into(),
        ),
        (
            "[[api_keys]]\nname = \"a\"\nkey = \"k\"\ncors_origins = [\"example.com\"]\n",
            "error: tracker.toml: api_keys[0].cors_origins: \"example.com\" is not \"*\" or an \
             origin like https://app.example.com\n"
                .into(),
        ),
        (
            "[definitions]\nfile = \"missing.toml\"\n",
            "error: tracker.toml: definitions.file: cannot read missing.toml: no such file\n".into(),
        ),
    ];
    for (text, message) in cases {
        assert_eq!(config_error(dir.path(), text, &[]), message, "for {text:?}");
    }
    // Two problems: two lines, each said once.
    assert_eq!(
        config_error(
            dir.path(),
            "[tracker]\nsession_timeout = \"0s\"\nsweep_interval = \"0s\"\n",
            &[]
        ),
        "error: tracker.toml: tracker.session_timeout: must be longer than zero\n\
         error: tracker.toml: tracker.sweep_interval: must be longer than zero\n"
    );
    assert_eq!(
        config_error(dir.path(), "", &[("JSS_TRACKER__TRACKER__ENABLD", "true")]),
        "error: environment variable JSS_TRACKER__TRACKER__ENABLD: tracker.enabld: unknown key; \
         did you mean enabled?\n"
    );
    let syntax = config_error(dir.path(), "[tracker\n", &[]);
    assert!(
        syntax.starts_with("error: tracker.toml: TOML parse error at line 1, column 9\n"),
        "{syntax}"
    );
    assert_eq!(syntax.matches("TOML parse error").count(), 1, "{syntax}");

    let out = run(dir.path(), &["check-config", "--config", "nowhere.toml"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: nowhere.toml: no such file (`jss-tracker init --config nowhere.toml` writes one)\n"
    );
}

#[test]
fn a_host_name_is_a_listen_address() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tracker.toml"),
        "[server]\nlisten = \"localhost:8080\"\n",
    )
    .unwrap();
    let out = run(dir.path(), &["check-config"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("listen = \"localhost:8080\""));
}

#[test]
fn check_config_warns_about_what_serve_warns_about() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tracker.toml"),
        "[admin]\ntoken = \"short\"\n",
    )
    .unwrap();
    let out = run(dir.path(), &["check-config"]);
    assert!(out.status.success(), "warnings are not errors: {out:?}");
    let warnings = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "warning: the tracker is disabled",
        "warning: no API key is configured",
        "warning: admin.token is weak",
    ] {
        assert!(warnings.contains(expected), "{expected}: {warnings}");
    }
    std::fs::write(dir.path().join("tracker.toml"), "").unwrap();
    let out = run(dir.path(), &["check-config"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: admin.token is not set"));
    // The starter configuration has nothing to warn about.
    std::fs::remove_file(dir.path().join("tracker.toml")).unwrap();
    assert!(run(dir.path(), &["init"]).status.success());
    let out = run(dir.path(), &["check-config"]);
    assert!(out.stderr.is_empty(), "{out:?}");
}

#[test]
fn durations_print_as_people_write_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["check-config"]);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("device_cookie_max_age = \"3650days\""),
        "{printed}"
    );
    assert!(printed.contains("session_timeout = \"20m\""), "{printed}");
}

#[tokio::test]
async fn relative_paths_are_relative_to_the_config_file_from_any_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["init", "--config", "sub/tracker.toml"]);
    assert!(out.status.success(), "{out:?}");
    std::fs::create_dir_all(dir.path().join("sub/conf.d")).unwrap();
    std::fs::write(
        dir.path().join("sub/conf.d/10-storage.toml"),
        "[storage]\npath = \"state/tracker.db\"\n",
    )
    .unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let config = dir.path().join("sub/tracker.toml");
    let out = run(
        &elsewhere,
        &["check-config", "--config", config.to_str().unwrap()],
    );
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8_lossy(&out.stdout);
    let sub = std::fs::canonicalize(dir.path().join("sub")).unwrap();
    assert!(
        printed.contains(&format!("{}", sub.join("definitions.toml").display())),
        "{printed}"
    );

    let server = Server::start(
        &elsewhere,
        &["serve", "--config", "../sub/tracker.toml"],
        &[],
    );
    let key = std::fs::read_to_string(&config).unwrap();
    let key: toml::Value = toml::from_str(&key).unwrap();
    let key = key["api_keys"][0]["key"].as_str().unwrap();
    let response = server
        .track(key, r#"[{"goalId":"Register"}]"#.to_string(), "")
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        sub.join("state/tracker.db").is_file(),
        "the conf.d patch's path, relative to sub/"
    );
    assert!(!elsewhere.join("state").exists() && !elsewhere.join("data").exists());
}

#[tokio::test]
async fn listen_flag_overrides_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    assert!(run(dir.path(), &["init"]).status.success());
    // The environment names an address this machine does not have; the flag wins.
    let server = Server::start(
        dir.path(),
        &["serve", "--listen", "localhost:0"],
        &[("JSS_TRACKER__SERVER__LISTEN", "192.0.2.1:9")],
    );
    let key = secret(dir.path(), "api_key");
    let response = server.track(&key, "[]".to_string(), "").await;
    assert_eq!(response.status(), 200);

    let out = run(dir.path(), &["serve", "--listen", "nonsense"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("invalid value 'nonsense' for '--listen <ADDR>'"),
        "{out:?}"
    );
}

#[test]
fn a_taken_port_is_one_line_and_leaves_nothing_behind() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let next = format!("127.0.0.1:{}", addr.port() + 1);
    let expected = format!(
        "error: cannot listen on {addr}: the address is already in use (another jss-tracker, or \
         another server?); pick another address with --listen {next} (or server.listen in the \
         configuration; port 0 picks a free one)\n"
    );
    let listen = addr.to_string();

    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["quickstart", "--listen", &listen]);
    assert_eq!(String::from_utf8_lossy(&out.stderr), expected);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "quickstart wrote nothing"
    );

    let out = run(dir.path(), &["serve", "--init", "--listen", &listen]);
    assert_eq!(String::from_utf8_lossy(&out.stderr), expected);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "serve --init wrote nothing"
    );

    assert!(run(dir.path(), &["init"]).status.success());
    let out = run(dir.path(), &["serve", "--listen", &listen]);
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), expected);
    assert!(!dir.path().join("data").exists(), "no database was created");

    let out = run(
        dir.path(),
        &["demo", "--listen", &listen, "--app-port", "0"],
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), expected);
}

#[tokio::test]
async fn the_curl_commands_quickstart_prints_work() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["quickstart", "--listen", "127.0.0.1:0"], &[]);
    let commands: Vec<String> = server
        .banner
        .lines()
        .filter_map(|line| line.strip_prefix("  curl "))
        .map(|rest| format!("curl {rest}"))
        .collect();
    assert_eq!(commands.len(), 3, "{}", server.banner);
    let jar = tempfile::tempdir().unwrap();
    let outputs: Vec<Value> = commands
        .iter()
        .map(|command| {
            let out = Command::new("sh")
                .args(["-c", command])
                .current_dir(jar.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "{command}: {out:?}");
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect();
    assert_eq!(outputs[0], json!({"tracked": 2}));
    assert_eq!(
        outputs[1],
        json!({"closed": true}),
        "the jar kept the visit's cookies"
    );
    let contacts = outputs[2]["contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["interactionCount"], 1);
    assert_eq!(
        contacts[0]["engagementValue"], 50,
        "Register, closed by the flush"
    );
}

#[tokio::test]
async fn a_hashed_password_signs_a_profile_user_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"correct horse battery\n")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(hash.starts_with("$argon2id$"), "{hash}");

    assert!(run(dir.path(), &["init"]).status.success());
    std::fs::create_dir_all(dir.path().join("conf.d")).unwrap();
    std::fs::write(
        dir.path().join("conf.d/users.toml"),
        format!("[[profile.users]]\nname = \"ada\"\npassword_hash = '{hash}'\n"),
    )
    .unwrap();
    let check = run(dir.path(), &["check-config"]);
    assert!(check.status.success(), "{check:?}");
    assert!(
        !String::from_utf8_lossy(&check.stdout).contains("argon2"),
        "the hash is not printed"
    );
    let server = Server::start(dir.path(), &["serve"], &[]);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let sign_in = |password: &'static str| {
        client
            .post(format!("{}/profile/login", server.url))
            .form(&[("name", "ada"), ("password", password)])
            .send()
    };
    let refused = sign_in("wrong").await.unwrap();
    assert_eq!(refused.status(), 401);
    let accepted = sign_in("correct horse battery").await.unwrap();
    assert_eq!(accepted.status(), 303);
    let cookie = accepted.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Secure"),
        "{cookie}"
    );
}

/// `check-config --show` says which file or variable set each setting, and lists the pipeline
/// with the file that put each processor there; a bad pipeline patch names its file and key.
#[test]
fn check_config_shows_who_set_what_and_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    assert!(run(dir.path(), &["init"]).status.success());
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    std::fs::write(
        dir.path().join("conf.d/10-downloads.toml"),
        "[storage]\nsync = \"full\"\n\n[[pipeline.add]]\nname = \"download_links\"\nafter = \"page_event\"\ntype = \"map\"\nmatch = \"downloadId\"\nas = \"page_event\"\ndefinition = \"Download\"\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["check-config", "--show"])
        .current_dir(dir.path())
        .env("JSS_TRACKER__TRACKER__SESSION_TIMEOUT", "30m")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("#   storage.sync: conf.d/10-downloads.toml"),
        "{stdout}"
    );
    assert!(
        stdout.contains("#   tracker.session_timeout: environment variable JSS_TRACKER__TRACKER__SESSION_TIMEOUT"),
        "{stdout}"
    );
    assert!(stdout.contains("#   admin.token: tracker.toml"), "{stdout}");
    assert!(
        stdout.contains("#   page_event (page_event, built-in)\n#   download_links (map, conf.d/10-downloads.toml)\n#   goal (goal, built-in)"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(&secret(dir.path(), "admin_token")),
        "secrets hidden"
    );

    std::fs::write(
        dir.path().join("conf.d/20-bad.toml"),
        "[pipeline]\nremove = [\"no_such_processor\"]\n",
    )
    .unwrap();
    let output = run(dir.path(), &["check-config"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("20-bad.toml")
            && stderr.contains("pipeline.remove[0]")
            && stderr.contains("no_such_processor"),
        "{stderr}"
    );
    // And the server refuses to start, saying the same.
    let served = Command::new(BIN)
        .arg("serve")
        .current_dir(dir.path())
        .env("JSS_TRACKER__SERVER__LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&served.stderr);
    assert!(!served.status.success());
    assert!(
        stderr.contains("20-bad.toml") && stderr.contains("pipeline.remove[0]"),
        "{stderr}"
    );
}
