//! Interactions: engagement value, flush, idle timeout with the injected clock, concurrency.

use chrono::Duration;
use reqwest::Method;
use serde_json::json;
use tracker_api_types::ContactJson;

use tracker_core::clock::Clock;

use crate::helpers::*;

/// Polls the admin API until `check` holds (the sweeper runs every 50 ms in tests). The
/// deadline is far beyond what it takes on a busy machine: it only bounds a failing test.
async fn eventually(
    app: &TestApp,
    browser: &Browser,
    check: impl Fn(&ContactJson) -> bool,
) -> ContactJson {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let contact = app.contact(browser).await.expect("a contact");
        if check(&contact) {
            return contact;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("condition never held: {:?}", app.contact(browser).await);
}

#[tokio::test]
async fn engagement_value_adds_up_and_reaches_the_contact_on_close() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new();
    // Download 5, Register 50, Instant Demo 20, Marketing Lead 30, page views and campaigns 0.
    browser
        .track_ok(
            &app,
            json!([{"pageId": PAGE, "url": "/"}, {"eventId": "Download"}, {"goalId": "Register"}]),
        )
        .await;
    browser
        .track_ok(&app, json!([{"goalId": "Instant Demo"}, {"outcomeId": "Marketing Lead"}, {"campaignId": "Test Campaign"}]))
        .await;
    let contact = app.contact(&browser).await.unwrap();
    assert_eq!(contact.interactions[0].engagement_value, 105);
    assert!(contact.interactions[0].open);
    assert_eq!(
        contact.summary.engagement_value, 105,
        "the open interaction counts, as it stands"
    );

    assert_eq!(browser.flush(&app).await, json!({"closed": true}));
    let contact = app.contact(&browser).await.unwrap();
    assert_eq!(contact.summary.engagement_value, 105);
    assert!(!contact.interactions[0].open);
    assert_eq!(
        contact.interactions[0].close_reason.as_deref(),
        Some("flush")
    );
}

#[tokio::test]
async fn after_flush_the_next_event_opens_a_new_interaction_for_the_same_contact() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new();
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    app.clock.advance(Duration::minutes(3));
    browser.flush(&app).await;
    assert!(
        !browser.cookies.contains_key("ASP.NET_SessionId"),
        "the session cookie is removed"
    );
    // A second flush has nothing to close.
    assert_eq!(browser.flush(&app).await, json!({"closed": false}));
    // GET works too (the styleguide's "end interaction" link).
    let url = app.flush_url();
    assert_eq!(
        browser
            .send(&app, Method::GET, &url, None, "")
            .await
            .status(),
        200
    );

    app.clock.advance(Duration::minutes(1));
    browser
        .track_ok(&app, json!([{"goalId": "Instant Demo"}]))
        .await;
    let interactions = app.contact(&browser).await.unwrap().interactions;
    assert_eq!(interactions.len(), 2);
    assert!(!interactions[0].open);
    assert_eq!(interactions[0].start, "2026-03-01T09:00:00.000Z");
    assert_eq!(
        interactions[0].end.as_deref(),
        Some("2026-03-01T09:03:00.000Z")
    );
    assert_eq!(interactions[0].duration_seconds, 180);
    assert!(interactions[1].open);
    assert_eq!(interactions[1].end, None);
    assert_eq!(
        interactions[1].events[0].definition_name.as_deref(),
        Some("Instant Demo")
    );
    assert_eq!(app.contact_count().await, 1);
}

#[tokio::test]
async fn idle_interactions_end_after_the_timeout_by_the_sweeper() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new();
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    app.clock.advance(Duration::minutes(19));
    browser
        .track_ok(&app, json!([{"eventId": "Download"}]))
        .await;
    app.clock.advance(Duration::minutes(19));
    // A sweep at this moment (the one the background sweeper would run) ends nothing.
    let ended = app.state.sessions().sweep(app.clock.now()).await.unwrap();
    assert_eq!(ended, 0, "19 idle minutes are not 20");
    let contact = app.contact(&browser).await.unwrap();
    assert!(contact.interactions[0].open, "19 idle minutes are not 20");

    app.clock.advance(Duration::minutes(2));
    let contact = eventually(&app, &browser, |c| !c.interactions[0].open).await;
    let interaction = &contact.interactions[0];
    assert_eq!(interaction.close_reason.as_deref(), Some("timeout"));
    assert_eq!(
        interaction.end.as_deref(),
        Some("2026-03-01T09:19:00.000Z"),
        "ends at its last activity"
    );
    assert_eq!(contact.summary.engagement_value, 55);
    // The sweeper lets go of the session once the close is committed, a moment after the
    // store shows it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while app.state.sessions().count().await.unwrap() != 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(app.state.sessions().count().await.unwrap(), 0);

    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    let contact = app.contact(&browser).await.unwrap();
    assert_eq!(contact.interactions.len(), 2);
}

#[tokio::test]
async fn the_session_timeout_is_configurable() {
    let app =
        TestApp::spawn_with(|s| s.tracker.session_timeout = std::time::Duration::from_secs(60))
            .await;
    let mut browser = Browser::new();
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    app.clock.advance(Duration::seconds(61));
    eventually(&app, &browser, |c| !c.interactions[0].open).await;
}

#[tokio::test]
async fn a_request_after_the_timeout_but_before_the_sweep_starts_a_new_interaction() {
    let app =
        TestApp::spawn_with(|s| s.tracker.sweep_interval = std::time::Duration::from_secs(3600))
            .await;
    let mut browser = Browser::new();
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    app.clock.advance(Duration::minutes(25));
    browser
        .track_ok(&app, json!([{"goalId": "Instant Demo"}]))
        .await;
    let contact = app.contact(&browser).await.unwrap();
    let interactions = &contact.interactions;
    assert_eq!(interactions.len(), 2);
    assert_eq!(interactions[0].close_reason.as_deref(), Some("timeout"));
    assert_eq!(interactions[0].engagement_value, 50);
    assert_eq!(
        contact.summary.engagement_value, 70,
        "the closed interaction's 50 and the open one's 20"
    );
}

#[tokio::test]
async fn a_session_cookie_from_another_device_never_joins_its_visit() {
    let app = TestApp::spawn().await;
    let mut victim = Browser::new();
    victim.track_ok(&app, json!([{"goalId": "Register"}])).await;
    let mut other = Browser::new();
    other.cookies.insert(
        "ASP.NET_SessionId".into(),
        victim.cookies["ASP.NET_SessionId"].clone(),
    );
    other
        .track_ok(&app, json!([{"goalId": "Instant Demo"}]))
        .await;
    assert_ne!(
        other.cookies["ASP.NET_SessionId"],
        victim.cookies["ASP.NET_SessionId"]
    );
    let contact = app.contact(&victim).await.unwrap();
    assert_eq!(contact.interactions[0].events.len(), 1);
    assert_eq!(other.flush(&app).await, json!({"closed": true}));
    assert!(app.contact(&victim).await.unwrap().interactions[0].open);
}

#[tokio::test]
async fn concurrent_batches_of_one_visitor_are_all_stored_in_sequence() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new();
    browser
        .track_ok(&app, json!([{"pageId": PAGE, "url": "/"}]))
        .await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let b = browser.clone();
        let url = app.event_url();
        let client_app = (app.client.clone(), url);
        tasks.push(tokio::spawn(async move {
            let (client, url) = client_app;
            let cookie = b
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let response = client
                .post(url)
                .header("cookie", cookie)
                .body(
                    json!([{"goalId": "Register", "data": i.to_string()}, {"eventId": "Download"}])
                        .to_string(),
                )
                .send()
                .await
                .unwrap();
            response.status().as_u16()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    let interactions = app.contact(&browser).await.unwrap().interactions;
    assert_eq!(interactions.len(), 1);
    let events = &interactions[0].events;
    assert_eq!(events.len(), 81);
    assert_eq!(interactions[0].engagement_value, 40 * 55);
    // Each batch's two events are adjacent: batches apply whole and in some order.
    for pair in events[1..].chunks(2) {
        assert_eq!(pair[0].definition_name.as_deref(), Some("Register"));
        assert_eq!(pair[1].definition_name.as_deref(), Some("Download"));
    }
}

/// A session whose visit the store already has closed (another process closed it, say) is
/// dropped: its visitor's next request is stored in a new visit (it used to get 503 once, and
/// before that forever), and a sweep still ends every other idle visit (it used to stop at the
/// stale one, on every pass).
#[tokio::test]
async fn a_stale_session_never_stops_a_sweep_or_its_visitor() {
    use tracker_core::{session::CloseReason, store::ChangeSet};

    let app =
        TestApp::spawn_with(|s| s.tracker.sweep_interval = std::time::Duration::from_secs(3600))
            .await;
    let mut browsers = Vec::new();
    for _ in 0..5 {
        let mut browser = Browser::new();
        browser
            .track_ok(&app, json!([{"pageId": PAGE, "url": "/"}]))
            .await;
        browsers.push(browser);
    }
    let store = app.state.store().clone();
    let close_behind_its_back = |browser: &Browser| {
        let store = store.clone();
        let device = browser.device().unwrap();
        let now = app.clock.now();
        async move {
            let open = store.open_interactions(usize::MAX).await.unwrap();
            let live = open
                .into_iter()
                .find(|i| i.device_id.to_string() == device)
                .expect("the visitor's open interaction");
            let close = live.close(CloseReason::Flush, now);
            store
                .commit(ChangeSet {
                    new_contact: false,
                    interaction: live,
                    events: Vec::new(),
                    close: Some(close),
                    refresh_interaction: true,
                    attribution: None,
                })
                .await
                .unwrap();
        }
    };
    close_behind_its_back(&browsers[2]).await;
    browsers[2]
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    let contact = app.contact(&browsers[2]).await.unwrap();
    assert_eq!(contact.summary.interaction_count, 2, "{contact:?}");
    assert_eq!(
        contact.summary.goal_count, 1,
        "stored once, in the new visit: {contact:?}"
    );

    close_behind_its_back(&browsers[3]).await;
    app.clock.advance(Duration::minutes(21));
    let ended = app.state.sessions().sweep(app.clock.now()).await.unwrap();
    assert_eq!(ended, 4, "visitors 0, 1, 4 and visitor 2's new visit");
    assert_eq!(
        app.state.sessions().count().await.unwrap(),
        0,
        "the stale session is gone too"
    );
    assert!(store
        .open_interactions(usize::MAX)
        .await
        .unwrap()
        .is_empty());
}

/// At `tracker.max_open_sessions` the stalest sessions leave memory; each resumes from the
/// store on its next request, exactly (same interaction, totals and page), and those that do
/// not come back are ended by the sweeper from the store.
#[tokio::test]
async fn sessions_over_the_cap_leave_memory_and_resume_exactly() {
    let app = TestApp::spawn_with(|s| {
        s.tracker.max_open_sessions = 3;
        s.tracker.sweep_interval = std::time::Duration::from_secs(3600);
    })
    .await;
    if app.state.settings().sessions.backend != "memory" {
        // The cap is on this process's memory; Redis keeps every session.
        return;
    }
    let mut browsers = Vec::new();
    for n in 0..6 {
        let mut browser = Browser::new();
        browser
            .track_ok(
                &app,
                json!([{"pageId": PAGE, "url": format!("/{n}")}, {"goalId": "Register"}]),
            )
            .await;
        app.clock.advance(Duration::seconds(1));
        browsers.push(browser);
    }
    assert!(
        app.state.sessions().count().await.unwrap() <= 3,
        "{}",
        app.state.sessions().count().await.unwrap()
    );
    assert_eq!(app.state.store().open_count().await.unwrap(), 6);
    // The first visitors left memory first; they come back to the same visit.
    for browser in &mut browsers[..3] {
        browser
            .track_ok(&app, json!([{"eventId": "Download"}]))
            .await;
        let interactions = app.contact(browser).await.unwrap().interactions;
        assert_eq!(interactions.len(), 1, "the same visit: {interactions:?}");
        let events = &interactions[0].events;
        assert_eq!(events.len(), 3);
        assert_eq!(
            events[2].page_view_id.as_ref(),
            Some(&events[0].id),
            "on the same page"
        );
        assert_eq!(interactions[0].engagement_value, 50 + 5);
    }
    assert!(app.state.sessions().count().await.unwrap() <= 3);
    // Whoever is in memory or not, every visit ends after the timeout.
    app.clock.advance(Duration::minutes(21));
    let ended = app.state.sessions().sweep(app.clock.now()).await.unwrap();
    assert_eq!(ended, 6);
    assert_eq!(app.state.store().open_count().await.unwrap(), 0);
    assert_eq!(app.state.sessions().count().await.unwrap(), 0);
}

/// The same engine with its live sessions in Redis (`sessions.backend = "redis"`; `REDIS_URL`,
/// default `redis://127.0.0.1:6379`, keys of this test's own): batches join one interaction,
/// concurrent batches of one visitor are all stored whole and in order, flush ends it, the next
/// batch opens another, and the sweeper ends an idle one.
#[tokio::test]
async fn sessions_in_redis_follow_the_same_rules() {
    let app = TestApp::spawn_with(|s| {
        s.sessions = tracker_core::config::BackendTable::new("redis")
            .with("url", redis_url())
            .with(
                "prefix",
                format!("jss-tracker-it-{}", uuid::Uuid::new_v4().simple()),
            );
        s.tracker.sweep_interval = std::time::Duration::from_secs(3600);
    })
    .await;
    let mut browser = Browser::new();
    browser
        .track_ok(&app, json!([{"pageId": PAGE, "url": "/"}]))
        .await;
    // Ten batches at once from one visitor: each waits its turn for the session.
    let sends = (0..10).map(|_| {
        let mut b = browser.clone();
        let app = &app;
        async move {
            b.track_ok(
                app,
                json!([{"goalId": "Register"}, {"eventId": "Download"}]),
            )
            .await
        }
    });
    futures::future::join_all(sends).await;
    assert_eq!(app.state.sessions().count().await.unwrap(), 1);
    let interactions = app.contact(&browser).await.unwrap().interactions;
    assert_eq!(interactions.len(), 1, "{interactions:?}");
    assert_eq!(interactions[0].event_count, 21);
    let kinds: Vec<&str> = interactions[0]
        .events
        .iter()
        .map(|e| e.kind.as_str())
        .collect();
    let mut want = vec!["pageView"];
    for _ in 0..10 {
        want.extend(["goal", "pageEvent"]);
    }
    assert_eq!(kinds, want, "each batch stored whole, one after the other");

    assert_eq!(browser.flush(&app).await["closed"], true);
    assert_eq!(app.state.sessions().count().await.unwrap(), 0);
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    app.clock.advance(Duration::minutes(21));
    let ended = app.state.sessions().sweep(app.clock.now()).await.unwrap();
    assert_eq!(ended, 1);
    assert_eq!(app.state.sessions().count().await.unwrap(), 0);
    let interactions = app.contact(&browser).await.unwrap().interactions;
    assert_eq!(interactions.len(), 2);
    assert!(interactions.iter().all(|i| !i.open), "{interactions:?}");
}
