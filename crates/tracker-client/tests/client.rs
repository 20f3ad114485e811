//! The client against a real jss-tracker on a real socket.

#![allow(clippy::unwrap_used, missing_docs)]

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tracker_client::{api, BatchConfig, Batcher, Client, Error, Event, RetryPolicy};
use tracker_server::{config::ApiKeySettings, Settings};

const KEY: &str = "client-test-key";
const TOKEN: &str = "client-test-token";
const SERVER_KEY: &str = "client-test-server-key";

struct Tracker {
    url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: Arc<tempfile::TempDir>,
}

async fn start_on(port: u16, dir: Arc<tempfile::TempDir>) -> Tracker {
    let mut settings = Settings::default();
    settings.server.listen = SocketAddr::from(([127, 0, 0, 1], port)).into();
    settings.tracker.enabled = true;
    settings.storage.set("path", dir.path().join("tracker.db"));
    settings.admin.token = Some(TOKEN.to_string().into());
    settings.api_keys = vec![
        ApiKeySettings {
            name: "client".into(),
            key: KEY.to_string().into(),
            cors_origins: vec![],
            identification_secret: None,
            server_side: false,
        },
        ApiKeySettings {
            name: "app-server".into(),
            key: SERVER_KEY.to_string().into(),
            cors_origins: vec![],
            identification_secret: None,
            server_side: true,
        },
    ];
    let app = jss_tracker::application().build(settings).await.unwrap();
    let url = format!("http://127.0.0.1:{}", app.local_addr().port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    Tracker {
        url,
        stop,
        task,
        _dir: dir,
    }
}

impl Tracker {
    /// An admin API answer, typed with the wire types the server answers with.
    async fn admin<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        reqwest::Client::new()
            .get(format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn contact_of(&self, device: &str) -> api::ContactJson {
        let list: api::ContactList = self
            .admin(&format!("/api/v1/contacts?device={device}"))
            .await;
        let id = &list.contacts[0].id;
        self.admin(&format!("/api/v1/contacts/{id}")).await
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_visit_keeps_its_cookies_and_flush_starts_a_new_interaction() {
    let tracker = start_on(0, Arc::new(tempfile::tempdir().unwrap())).await;
    let client = Client::new(&tracker.url, KEY).unwrap();
    let visitor = client.visitor();
    let page = "{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}";
    assert_eq!(
        visitor
            .track(&[Event::page_view(page, "/a")])
            .await
            .unwrap()
            .tracked,
        1
    );
    let device = visitor.device_id().expect("device cookie");
    assert_eq!(device.len(), 32);
    let tracked = visitor
        .track(&[
            Event::page_event("Download"),
            Event::goal("Instant Demo"),
            Event::outcome("Opportunity").monetary_value(12.5, "EUR"),
            Event::campaign("Spring Sale"),
        ])
        .await
        .unwrap();
    assert_eq!(tracked.tracked, 4);
    let refused = visitor.track(&[Event::goal("Nope")]).await.unwrap_err();
    match &refused {
        Error::Refused {
            status,
            code,
            index,
            ..
        } => {
            assert_eq!(
                (*status, code.as_str(), *index),
                (400, "unknown_definition", Some(0))
            );
        }
        other => panic!("{other}"),
    }
    assert!(!refused.is_retryable());
    assert!(visitor.flush().await.unwrap(), "an interaction was open");
    assert!(!visitor.flush().await.unwrap(), "nothing open any more");
    visitor.track(&[Event::goal("Register")]).await.unwrap();
    assert_eq!(visitor.device_id().unwrap(), device, "same device");

    let contact = tracker.contact_of(&device).await;
    let interactions = &contact.interactions;
    assert_eq!(interactions.len(), 2);
    assert_eq!(interactions[0].events.len(), 5);
    assert_eq!(interactions[0].close_reason.as_deref(), Some("flush"));
    assert_eq!(
        interactions[0].events[3].monetary_value.as_deref(),
        Some("12.5")
    );

    // Another visitor on the same client: its own cookies, its own contact.
    let other = client.visitor();
    other.track(&[Event::goal("Register")]).await.unwrap();
    assert_ne!(other.device_id().unwrap(), device);
    tracker.stop().await;
}

#[tokio::test]
async fn the_batcher_groups_events_and_retries_until_the_tracker_is_up_keeping_event_times() {
    // Before the tracker is up, its port hangs up on every request: the batcher's first
    // attempts fail and it retries. The test waits for those attempts (it counts them) rather
    // than for a span of time, so it holds however busy the machine is.
    let down = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = down.local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let client = Client::new(&url, KEY).unwrap();
    let visitor = client.visitor();
    let batcher = Batcher::spawn(
        visitor.clone(),
        BatchConfig {
            max_batch: 3,
            queue_capacity: 8,
            linger: Duration::from_millis(50),
            retry: RetryPolicy {
                // Enough never to give up while the tracker starts on a loaded machine.
                max_retries: 100_000,
                initial_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_millis(200),
            },
        },
    );
    // Event timestamps carry milliseconds.
    let queued_from = chrono::Utc::now() - chrono::Duration::milliseconds(1);
    batcher
        .try_track(Event::page_view(
            "{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}",
            "/q",
        ))
        .unwrap();
    for _ in 0..4 {
        batcher.try_track(Event::page_event("Download")).unwrap();
    }
    // Bounded: the queue refuses beyond its capacity instead of growing.
    let mut refused = 0;
    for _ in 0..20 {
        if batcher.try_track(Event::goal("Register")).is_err() {
            refused += 1;
        }
    }
    let queued_by = chrono::Utc::now();
    assert!(refused > 0, "a full queue refuses");
    let accepted = 5 + (20 - refused);

    for _ in 0..2 {
        let (connection, _) = down.accept().await.unwrap();
        drop(connection);
    }
    drop(down);
    let tracker = start_on(port, Arc::new(tempfile::tempdir().unwrap())).await;
    let stats = batcher.close().await;
    assert_eq!(stats.events_sent, accepted as u64, "{stats:?}");
    assert_eq!(stats.events_dropped, 0);
    assert!(stats.retries > 0, "it had to retry: {stats:?}");
    assert!(
        stats.batches_sent >= (accepted as u64).div_ceil(3),
        "batches of at most 3"
    );

    let contact = tracker.contact_of(&visitor.device_id().unwrap()).await;
    let events = &contact.interactions[0].events;
    assert_eq!(events.len(), accepted);
    for event in events {
        let at: chrono::DateTime<chrono::Utc> = event.timestamp.parse().unwrap();
        assert!(
            queued_from <= at && at <= queued_by,
            "events keep the time they were queued (before the tracker was up), not the delivery time: {at}"
        );
    }
    tracker.stop().await;
}

#[tokio::test]
async fn a_visitor_carries_its_browsers_user_agent() {
    let tracker = start_on(0, Arc::new(tempfile::tempdir().unwrap())).await;
    let client = Client::new(&tracker.url, KEY).unwrap();
    let person = client
        .visitor()
        .with_user_agent("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15")
        .unwrap();
    person.track(&[Event::goal("Register")]).await.unwrap();
    let contact = tracker.contact_of(&person.device_id().unwrap()).await;
    assert_eq!(
        contact.interactions[0].client.browser.as_deref(),
        Some("Safari")
    );

    let crawler = client
        .visitor()
        .with_user_agent("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)")
        .unwrap();
    assert_eq!(
        crawler
            .track(&[Event::goal("Register")])
            .await
            .unwrap()
            .tracked,
        1
    );
    assert!(crawler
        .cookie("SC_ANALYTICS_GLOBAL_COOKIE")
        .unwrap()
        .ends_with("|False"));
    let list: api::ContactList = tracker
        .admin(&format!(
            "/api/v1/contacts?device={}",
            crawler.device_id().unwrap()
        ))
        .await;
    assert_eq!(list.total, 0, "a robot is not stored");
    tracker.stop().await;
}

/// Server-side tracking: an app server tracks with a `server_side` key on a visitor's behalf,
/// forwarding the browser's cookies, user agent and address; the tracker stores the visitor's
/// address and sends cookies for the server to pass back; the browser's own later request (its
/// key, the cookies passed back) lands in the same visit.
#[tokio::test]
async fn a_server_tracks_on_a_visitors_behalf() {
    let tracker = start_on(0, Arc::new(tempfile::tempdir().unwrap())).await;
    let server = Client::new(&tracker.url, SERVER_KEY).unwrap();
    let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    let on_behalf = server
        .visitor_with_cookies("")
        .with_user_agent(chrome)
        .unwrap()
        .with_forwarded_for("198.51.100.23".parse().unwrap());
    let page = "{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}";
    on_behalf
        .track(&[Event::page_view(page, "/rendered")])
        .await
        .unwrap();
    let passed_back = on_behalf.set_cookies();
    assert!(
        passed_back
            .iter()
            .any(|c| c.starts_with("SC_ANALYTICS_GLOBAL_COOKIE=")),
        "{passed_back:?}"
    );
    let device = on_behalf.device_id().unwrap();
    let contact = tracker.contact_of(&device).await;
    assert_eq!(
        contact.interactions[0].ip.as_deref(),
        Some("198.51.100.0"),
        "the visitor's address, anonymised"
    );
    // The browser, with the cookies the server passed back, continues the visit.
    let browser_cookies: Vec<String> = passed_back
        .iter()
        .map(|c| c.split(';').next().unwrap().to_string())
        .collect();
    let browser = Client::new(&tracker.url, KEY)
        .unwrap()
        .visitor_with_cookies(&browser_cookies.join("; "))
        .with_user_agent(chrome)
        .unwrap();
    browser.track(&[Event::goal("Register")]).await.unwrap();
    let contact = tracker.contact_of(&device).await;
    assert_eq!(contact.interactions.len(), 1, "one visit");
    assert_eq!(contact.interactions[0].events.len(), 2);
    tracker.stop().await;
}
