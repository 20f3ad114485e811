//! Counters, checked for exact deltas. The metrics recorder is process-wide: the tests of this
//! binary run one at a time (`SERIAL`), in a process of their own (the HTTP suite's tests run
//! in parallel in theirs), so that nothing else moves a counter between a test's two scrapes.

#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

#[path = "it/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use reqwest::Method;
use serde_json::json;
use tracker_api_types::ErrorCode;
use tracker_core::robots::Unclassified;

use helpers::{expect_error, sample, scrape, Browser, TestApp, PAGE};

/// One test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

#[tokio::test]
async fn metrics_count_requests_events_batches_commits_and_sessions() {
    let _alone = SERIAL.lock().await;
    let app = TestApp::spawn().await;
    let before = scrape(&app).await;
    let mut browser = Browser::new();
    browser
        .track_ok(
            &app,
            json!([{"pageId": PAGE, "url": "/m"}, {"goalId": "Register"}, {"eventId": "Download"}]),
        )
        .await;
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    let refused = browser.track(&app, json!([{"goalId": "Nope"}])).await;
    expect_error(refused, 400, ErrorCode::UnknownDefinition).await;
    browser.flush(&app).await;
    let after = scrape(&app).await;

    let grew = |series: &str| sample(&after, series) - sample(&before, series);
    let event =
        r#"jss_tracker_http_requests_total{endpoint="/sitecore/api/jss/track/event",status="200"}"#;
    assert_eq!(grew(event), 2.0, "{after}");
    let refused =
        r#"jss_tracker_http_requests_total{endpoint="/sitecore/api/jss/track/event",status="400"}"#;
    assert_eq!(grew(refused), 1.0);
    assert_eq!(grew(r#"jss_tracker_events_total{kind="goal"}"#), 2.0);
    assert_eq!(grew(r#"jss_tracker_events_total{kind="pageView"}"#), 1.0);
    assert_eq!(grew(r#"jss_tracker_events_total{kind="pageEvent"}"#), 1.0);
    assert_eq!(grew("jss_tracker_batch_size_count"), 2.0);
    assert_eq!(grew("jss_tracker_batch_size_sum"), 4.0);
    // The store's writer: every store records its group commits alike.
    assert_eq!(
        grew("jss_tracker_writer_commit_seconds_count"),
        3.0,
        "two batches and a close"
    );
    assert_eq!(grew("jss_tracker_writer_events_per_commit_sum"), 4.0);
    assert_eq!(grew("jss_tracker_writer_change_sets_per_commit_sum"), 3.0);
    assert_eq!(
        grew(r#"jss_tracker_sessions_closed_total{reason="flush"}"#),
        1.0
    );
    if app.state.settings().sessions.backend == "memory" {
        assert!(
            after.contains("# TYPE jss_tracker_open_sessions gauge"),
            "{after}"
        );
    }
    assert!(after.contains("# HELP jss_tracker_events_total Events stored, by kind."));
    app.stop().await;
}

#[tokio::test]
async fn bench_noop_is_off_by_default_and_does_no_tracking_work_when_on() {
    let _alone = SERIAL.lock().await;
    let app = TestApp::spawn().await;
    let mut browser = Browser::new();
    let url = app.url("/bench/noop/event");
    let response = browser
        .send(
            &app,
            Method::POST,
            &url,
            Some("[]".into()),
            "application/json",
        )
        .await;
    expect_error(response, 404, ErrorCode::NotFound).await;
    app.stop().await;

    let app = TestApp::spawn_with(|s| s.server.bench_noop = true).await;
    let mut browser = Browser::new();
    let url = app.url("/bench/noop/event");
    let body = json!([{"pageId": PAGE, "url": "/n"}, {"goalId": "Register"}]).to_string();
    let response = browser
        .send(&app, Method::POST, &url, Some(body), "application/json")
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        helpers::APP_ORIGIN,
        "same CORS layer as /event"
    );
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap(),
        json!({"tracked": 0})
    );
    assert!(browser.cookies.is_empty(), "no cookies: no tracking work");
    assert_eq!(app.contact_count().await, 0, "nothing stored");
    let too_big = "x".repeat(300_000);
    let response = browser
        .send(&app, Method::POST, &url, Some(too_big), "application/json")
        .await;
    expect_error(response, 413, ErrorCode::PayloadTooLarge).await;
    app.stop().await;
}

/// Robots' requests are answered and counted by the rule that caught them, one per request.
#[tokio::test]
async fn robot_requests_are_counted_by_reason() {
    let _alone = SERIAL.lock().await;
    let app = TestApp::spawn_with(|s| {
        s.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        s.robots.ip_ranges = vec!["203.0.113.0/24".parse().unwrap()];
    })
    .await;
    let counted = |text: &str, reason: &str| {
        sample(
            text,
            &format!("jss_tracker_robot_requests_total{{reason=\"{reason}\"}}"),
        )
    };
    let before = scrape(&app).await;
    let mut bot = Browser::new();
    bot.origin = None;
    bot.headers.push(("user-agent".into(), GOOGLEBOT.into()));
    bot.track_ok(
        &app,
        json!([{"pageId": PAGE, "url": "/"}, {"goalId": "Register"}]),
    )
    .await;
    bot.track_ok(&app, json!([{"eventId": "Download"}])).await;
    bot.flush(&app).await;
    let mut monitor = Browser::new();
    monitor
        .headers
        .push(("x-forwarded-for".into(), "203.0.113.9".into()));
    monitor
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    let after = scrape(&app).await;
    assert_eq!(
        counted(&after, "user_agent") - counted(&before, "user_agent"),
        3.0
    );
    assert_eq!(
        counted(&after, "ip_range") - counted(&before, "ip_range"),
        1.0
    );
    assert_eq!(
        counted(&after, "unidentified"),
        counted(&before, "unidentified")
    );
    app.stop().await;

    // Under the robot policy, a visitor not yet identified is one, until it is.
    let app = TestApp::spawn_with(|s| s.robots.unclassified = Unclassified::Robot).await;
    let before = scrape(&app).await;
    let mut browser = Browser::new();
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    let after = scrape(&app).await;
    assert_eq!(
        counted(&after, "unidentified") - counted(&before, "unidentified"),
        2.0
    );
    app.stop().await;
}

/// An `sc_camp` that names no campaign is ignored, as Sitecore does, and counted once.
#[tokio::test]
async fn unknown_campaigns_are_counted() {
    let _alone = SERIAL.lock().await;
    let app = TestApp::spawn().await;
    let series = "jss_tracker_unknown_campaigns_total";
    let before = sample(&scrape(&app).await, series);
    let mut visitor = Browser::new();
    let url = format!("{}&sc_camp={}", app.event_url(), "x".repeat(3000));
    let response = visitor
        .send(
            &app,
            Method::POST,
            &url,
            Some(json!([{"goalId": "Register"}]).to_string()),
            "application/json",
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(sample(&scrape(&app).await, series) - before, 1.0);
    app.stop().await;
}
