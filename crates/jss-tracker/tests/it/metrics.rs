//! `/metrics` and the load harness's `/bench/noop` baseline.
//!
//! The metrics recorder is process-wide and the tests run in parallel, so each check looks at
//! how much a figure grew across its own requests (at least what they add), never at an
//! absolute value.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{expect_error, sample, scrape, Browser, TestApp, PAGE};

#[tokio::test]
async fn metrics_count_requests_events_batches_commits_and_sessions() {
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
    expect_error(refused, 400, "unknown_definition").await;
    browser.flush(&app).await;
    let after = scrape(&app).await;

    let grew = |series: &str| sample(&after, series) - sample(&before, series);
    let event =
        r#"jss_tracker_http_requests_total{endpoint="/sitecore/api/jss/track/event",status="200"}"#;
    assert!(grew(event) >= 2.0, "{after}");
    let refused =
        r#"jss_tracker_http_requests_total{endpoint="/sitecore/api/jss/track/event",status="400"}"#;
    assert!(grew(refused) >= 1.0);
    assert!(grew(r#"jss_tracker_events_total{kind="goal"}"#) >= 2.0);
    assert!(grew(r#"jss_tracker_events_total{kind="pageView"}"#) >= 1.0);
    assert!(grew(r#"jss_tracker_events_total{kind="pageEvent"}"#) >= 1.0);
    assert!(grew("jss_tracker_batch_size_count") >= 2.0);
    assert!(grew("jss_tracker_batch_size_sum") >= 4.0);
    if crate::helpers::TestStore::chosen() == crate::helpers::TestStore::Sqlite {
        // The SQLite writer's own group-commit figures.
        assert!(
            grew("jss_tracker_writer_commit_seconds_count") >= 3.0,
            "two batches and a close"
        );
        assert!(grew("jss_tracker_writer_events_per_commit_sum") >= 4.0);
        assert!(grew("jss_tracker_writer_change_sets_per_commit_sum") >= 3.0);
    }
    assert!(grew(r#"jss_tracker_sessions_closed_total{reason="flush"}"#) >= 1.0);
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
    expect_error(response, 404, "not_found").await;
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
        crate::helpers::APP_ORIGIN,
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
    expect_error(response, 413, "payload_too_large").await;
    app.stop().await;
}
