//! `TestApp`: a real server on port 0 with a fresh store and a clock the test moves. The store
//! is a fresh SQLite file, or with `JSS_TRACKER_TEST_STORE=postgres` a fresh PostgreSQL schema
//! (`JSS_TRACKER_TEST_POSTGRES`) with live sessions in Redis (`REDIS_URL`) under a fresh prefix:
//! `scripts/test` runs this suite both ways.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, sync::Arc};

use chrono::{TimeZone, Utc};
use reqwest::{header, Method, Response};
use serde_json::Value;
use tokio::{sync::oneshot, task::JoinHandle};
pub use tracker_api_types::ErrorCode;
use tracker_api_types::{ContactJson, ContactList, ErrorEnvelope};
use tracker_core::clock::ManualClock;
use tracker_core::config::BackendTable;
use tracker_server::{config::ApiKeySettings, state::AppState, Settings};

pub const KEY: &str = "test-key-0123456789";
pub const TOKEN: &str = "test-admin-token";
/// The test key's `identification_secret`, which the "app server" signs identifications with.
pub const ID_SECRET: &str = "test-identification-secret";
pub const APP_ORIGIN: &str = "https://app.example.com";
pub const PAGE: &str = "{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}";
pub const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// The store the suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestStore {
    /// A SQLite file per test, sessions in memory (the default).
    Sqlite,
    /// A PostgreSQL schema per test, sessions in Redis.
    Postgres,
}

impl TestStore {
    /// `JSS_TRACKER_TEST_STORE`: `sqlite` (the default) or `postgres`.
    pub fn chosen() -> Self {
        match std::env::var("JSS_TRACKER_TEST_STORE").as_deref() {
            Ok("postgres") => Self::Postgres,
            Ok("sqlite") | Err(_) => Self::Sqlite,
            Ok(other) => panic!("JSS_TRACKER_TEST_STORE={other}: expected sqlite or postgres"),
        }
    }
}

pub fn postgres_url() -> String {
    std::env::var("JSS_TRACKER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Settings for a test: tracker enabled, one key for `APP_ORIGIN`, a database in `dir`.
pub fn test_settings(dir: &std::path::Path) -> Settings {
    let mut settings = Settings::default();
    settings.server.listen = SocketAddr::from(([127, 0, 0, 1], 0)).into();
    settings.tracker.enabled = true;
    settings.tracker.sweep_interval = std::time::Duration::from_millis(50);
    match TestStore::chosen() {
        TestStore::Sqlite => {
            settings.storage = BackendTable::new("sqlite").with("path", dir.join("tracker.db"))
        }
        TestStore::Postgres => {
            // Named after the test's folder: a server restarted on the same folder finds its data.
            let unique = {
                use std::hash::{Hash, Hasher};
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                dir.hash(&mut hasher);
                format!("{:016x}", hasher.finish())
            };
            settings.storage = BackendTable::new("postgres")
                .with("url", postgres_url())
                .with("schema", format!("it_{unique}"))
                .with("pool_size", 6)
                .with("writers", 2);
            settings.sessions = BackendTable::new("redis")
                .with("url", redis_url())
                .with("prefix", format!("jss-tracker-it-{unique}"));
        }
    }
    settings.admin.token = Some(TOKEN.to_string().into());
    settings.api_keys = vec![ApiKeySettings {
        name: "test-app".into(),
        key: KEY.to_string().into(),
        cors_origins: vec![APP_ORIGIN.into()],
        identification_secret: Some(ID_SECRET.to_string().into()),
        server_side: false,
    }];
    settings
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub clock: ManualClock,
    pub client: reqwest::Client,
    pub db_path: PathBuf,
    pub dir: Arc<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let mut settings = test_settings(dir.path());
        configure(&mut settings);
        let clock = ManualClock::new(
            Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0)
                .single()
                .expect("date"),
        );
        Self::start(settings, dir, clock).await
    }

    pub async fn start(
        settings: Settings,
        dir: Arc<tempfile::TempDir>,
        clock: ManualClock,
    ) -> Self {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("debug")
                .with_test_writer()
                .try_init();
        }
        let db_path = settings
            .storage
            .keys
            .get("path")
            .and_then(toml::Value::as_str)
            .map(PathBuf::from)
            .unwrap_or_default();
        let app = jss_tracker::application()
            .clock(Arc::new(clock.clone()))
            .build(settings)
            .await
            .expect("app builds");
        Self::serve(app, dir, clock, db_path)
    }

    /// Serves an application built elsewhere (a test's own assembly), on `clock`.
    pub fn serve(
        app: tracker_server::Application,
        dir: Arc<tempfile::TempDir>,
        clock: ManualClock,
        db_path: PathBuf,
    ) -> Self {
        let addr = app.local_addr();
        let state = app.state().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            state,
            clock,
            // A browser's user agent: without one, every request would be a robot's.
            client: reqwest::Client::builder()
                .user_agent(CHROME)
                .build()
                .expect("client"),
            db_path,
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) -> (Arc<tempfile::TempDir>, ManualClock) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("join").expect("clean stop");
        }
        (self.dir.clone(), self.clock.clone())
    }

    /// The SQLite file, for the checks that read it directly; `None` on another store (those
    /// checks are about the SQLite file itself).
    pub fn sqlite(&self) -> Option<rusqlite::Connection> {
        (TestStore::chosen() == TestStore::Sqlite)
            .then(|| rusqlite::Connection::open(&self.db_path).expect("the SQLite file opens"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn event_url(&self) -> String {
        self.url(&format!("/sitecore/api/jss/track/event?sc_apikey={KEY}"))
    }

    pub fn flush_url(&self) -> String {
        self.url(&format!("/sitecore/api/jss/track/flush?sc_apikey={KEY}"))
    }

    pub async fn admin(&self, path: &str) -> Value {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("admin request");
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("json")
    }

    /// An admin API answer (200) read as the wire type it is declared as, as crates.io's
    /// `Response<T>::good()`: a field the server renamed or retyped fails here, by name.
    pub async fn get_ok<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let value = self.admin(path).await;
        serde_json::from_value(value.clone())
            .unwrap_or_else(|error| panic!("GET {path}: not the declared type ({error}): {value}"))
    }

    /// The contact of a browser's device, with its interactions, as the wire type.
    pub async fn contact(&self, browser: &Browser) -> Option<ContactJson> {
        let device = browser.device()?;
        let list: ContactList = self
            .get_ok(&format!("/api/v1/contacts?device={device}"))
            .await;
        let summary = list.contacts.first()?;
        Some(
            self.get_ok(&format!("/api/v1/contacts/{}", summary.id))
                .await,
        )
    }

    /// The contact of a browser's device, with all its interactions; `Value::Null` if none.
    pub async fn contact_of(&self, browser: &Browser) -> Value {
        let Some(device) = browser.device() else {
            return Value::Null;
        };
        let list = self
            .admin(&format!("/api/v1/contacts?device={device}"))
            .await;
        match list["contacts"].as_array().and_then(|c| c.first()) {
            Some(summary) => {
                let id = summary["id"].as_str().expect("id").to_string();
                self.admin(&format!("/api/v1/contacts/{id}")).await
            }
            None => Value::Null,
        }
    }

    pub async fn contact_count(&self) -> usize {
        self.admin("/api/v1/contacts").await["contacts"]
            .as_array()
            .expect("array")
            .len()
    }
}

/// A visitor's browser: keeps cookies the way a browser would for the tracker's origin.
#[derive(Debug, Default, Clone)]
pub struct Browser {
    pub cookies: BTreeMap<String, String>,
    pub origin: Option<String>,
    pub set_cookie_headers: Vec<String>,
    /// Sent with every request (a `User-Agent` here replaces the client's Chrome one).
    pub headers: Vec<(String, String)>,
}

impl Browser {
    pub fn new() -> Self {
        Self {
            origin: Some(APP_ORIGIN.into()),
            ..Self::default()
        }
    }

    pub fn device(&self) -> Option<String> {
        self.cookies
            .get("SC_ANALYTICS_GLOBAL_COOKIE")
            .and_then(|v| v.split('|').next())
            .map(str::to_string)
    }

    pub async fn send(
        &mut self,
        app: &TestApp,
        method: Method,
        url: &str,
        body: Option<String>,
        content_type: &str,
    ) -> Response {
        let mut request = app.client.request(method, url);
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(origin) = &self.origin {
            request = request.header(header::ORIGIN, origin);
        }
        if !self.cookies.is_empty() {
            let cookie = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header(header::COOKIE, cookie);
        }
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, content_type)
                .body(body);
        }
        let response = request.send().await.expect("request");
        self.set_cookie_headers.clear();
        for value in response.headers().get_all(header::SET_COOKIE) {
            let text = value.to_str().expect("ascii").to_string();
            let pair = text.split(';').next().expect("pair");
            let (name, value) = pair.split_once('=').expect("name=value");
            if text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
            self.set_cookie_headers.push(text);
        }
        response
    }

    pub async fn track(&mut self, app: &TestApp, body: Value) -> Response {
        let url = app.event_url();
        self.send(
            app,
            Method::POST,
            &url,
            Some(body.to_string()),
            "application/json",
        )
        .await
    }

    pub async fn track_ok(&mut self, app: &TestApp, body: Value) -> Value {
        let response = self.track(app, body).await;
        let status = response.status();
        let json: Value = response.json().await.expect("json");
        assert_eq!(status, 200, "{json}");
        json
    }

    pub async fn flush(&mut self, app: &TestApp) -> Value {
        let url = app.flush_url();
        let response = self
            .send(
                app,
                Method::POST,
                &url,
                Some("[]".into()),
                "application/json",
            )
            .await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("json")
    }
}

/// Asserts an error envelope of `code` and returns it, typed.
pub async fn expect_error(response: Response, status: u16, code: ErrorCode) -> ErrorEnvelope {
    assert_eq!(response.status().as_u16(), status);
    assert!(response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v
            .to_str()
            .unwrap_or_default()
            .starts_with("application/json")));
    let text = response.text().await.expect("a body");
    let body: ErrorEnvelope = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("not the error envelope ({error}): {text}"));
    assert_eq!(body.error.error_code(), Some(code), "{text}");
    assert!(!body.error.message.is_empty(), "{text}");
    body
}

/// An identification element as the app's server signs it for the browser (valid 5 minutes
/// from `now`).
pub fn signed_identification(source: &str, identifier: &str, now: chrono::DateTime<Utc>) -> Value {
    let expires = now.timestamp() + 300;
    serde_json::json!({
        "identifier": identifier,
        "source": source,
        "expires": expires,
        "signature": tracker_core::processors::sign_identification(
            ID_SECRET.as_bytes(), source, identifier, expires),
    })
}

/// `/metrics` as text (checking its content type).
pub async fn scrape(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

/// The value of the sample whose name-and-labels line starts with `series`, or 0.
pub fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}
