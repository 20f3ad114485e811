//! Every error code of the wire contract's table, in the envelope.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_disabled_tracker_answers_404_naming_the_setting() {
    let app = TestApp::spawn_with(|s| s.tracker.enabled = false).await;
    let mut browser = Browser::new();
    let body = expect_error(
        browser.track(&app, json!([{"goalId": "Register"}])).await,
        404,
        ErrorCode::TrackerDisabled,
    )
    .await;
    assert!(body.error.message.contains("tracker.enabled"));
    let url = app.flush_url();
    expect_error(
        browser.send(&app, Method::GET, &url, None, "").await,
        404,
        ErrorCode::TrackerDisabled,
    )
    .await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn api_keys_are_required_and_checked() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new();
    for url in [
        app.url("/sitecore/api/jss/track/event"),
        app.url("/sitecore/api/jss/track/event?sc_apikey="),
        app.url("/sitecore/api/jss/track/event?sc_apikey=wrong"),
    ] {
        let response = browser
            .send(
                &app,
                Method::POST,
                &url,
                Some(r#"[{"goalId":"Register"}]"#.into()),
                "application/json",
            )
            .await;
        expect_error(response, 400, ErrorCode::InvalidApiKey).await;
    }
    // The key may also come as a header.
    let response = app
        .client
        .post(app.url("/sitecore/api/jss/track/event"))
        .header("sc_apikey", KEY)
        .body(r#"[{"goalId":"Register"}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.contact_count().await, 1);
}

#[tokio::test]
async fn bad_bodies_get_the_right_code() {
    let app = TestApp::spawn_with(|s| {
        s.tracker.limits.max_events = 3;
        s.tracker.limits.max_body_bytes = 2048;
    })
    .await;
    let mut browser = Browser::new();
    let url = app.event_url();
    for bad in [
        "",
        "{nope",
        "42",
        "\"text\"",
        r#"{"body": "not json", "method": "POST"}"#,
    ] {
        let response = browser
            .send(
                &app,
                Method::POST,
                &url,
                Some(bad.into()),
                "application/json",
            )
            .await;
        expect_error(response, 400, ErrorCode::InvalidPayload).await;
    }
    let too_many = json!([{"goalId": "Register"}, {"goalId": "Register"}, {"goalId": "Register"}, {"goalId": "Register"}]);
    expect_error(
        browser.track(&app, too_many).await,
        413,
        ErrorCode::PayloadTooLarge,
    )
    .await;
    let huge = json!([{"goalId": "Register", "text": "x".repeat(3000)}]);
    expect_error(
        browser.track(&app, huge).await,
        413,
        ErrorCode::PayloadTooLarge,
    )
    .await;

    for (element, code) in [
        (json!({"hello": "world"}), ErrorCode::InvalidEvent),
        (json!("Register"), ErrorCode::InvalidEvent),
        (
            json!({"pageId": "not-a-guid", "url": "/"}),
            ErrorCode::InvalidEvent,
        ),
        (json!({"pageId": PAGE}), ErrorCode::InvalidEvent),
        (json!({"goalId": 12}), ErrorCode::InvalidEvent),
        (
            json!({"eventId": "Download", "value": "high"}),
            ErrorCode::InvalidEvent,
        ),
        (
            json!({"outcomeId": "Purchase", "currencyCode": "euros"}),
            ErrorCode::InvalidEvent,
        ),
        (
            json!({"goalId": "Register", "timestamp": "2030-01-01T00:00:00Z"}),
            ErrorCode::InvalidEvent,
        ),
        (json!({"eventId": "Downlaod"}), ErrorCode::UnknownDefinition),
        (
            json!({"outcomeId": "{00000000-0000-0000-0000-000000000001}"}),
            ErrorCode::UnknownDefinition,
        ),
        (
            json!({"campaignId": "Winter Sale"}),
            ErrorCode::UnknownDefinition,
        ),
    ] {
        let response = browser
            .track(&app, json!([{"goalId": "Register"}, element]))
            .await;
        let body = expect_error(response, 400, code).await;
        assert_eq!(body.error.index, Some(1), "{body:?}");
    }
    assert_eq!(app.contact_count().await, 0, "nothing was stored");
}

#[tokio::test]
async fn too_many_custom_values_and_long_strings_are_refused() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new();
    let mut element = serde_json::Map::new();
    element.insert("goalId".into(), json!("Register"));
    for i in 0..33 {
        element.insert(format!("k{i}"), json!(i));
    }
    expect_error(
        browser.track(&app, json!([element])).await,
        400,
        ErrorCode::InvalidEvent,
    )
    .await;
    let long = json!([{"goalId": "Register", "data": "y".repeat(4097)}]);
    expect_error(
        browser.track(&app, long).await,
        400,
        ErrorCode::InvalidEvent,
    )
    .await;
}

#[tokio::test]
async fn storage_failure_answers_503_with_a_generic_message_and_keeps_what_was_committed() {
    let app = TestApp::spawn().await;
    if app.sqlite().is_none() {
        // About the SQLite file itself (another store has its own tests of this).
        return;
    }
    let mut browser = Browser::new();
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    // Break the database under the running server: the next commit fails.
    let conn = app.sqlite().unwrap();
    conn.execute_batch("ALTER TABLE events RENAME TO events_moved")
        .unwrap();
    let response = browser
        .track(&app, json!([{"goalId": "Instant Demo"}]))
        .await;
    let body = expect_error(response, 503, ErrorCode::Unavailable).await;
    let message = body.error.message.as_str();
    assert!(!message.contains("events"), "no internals leak: {message}");
    conn.execute_batch("ALTER TABLE events_moved RENAME TO events")
        .unwrap();
    browser
        .track_ok(&app, json!([{"eventId": "Download"}]))
        .await;
    let contact = app.contact_of(&browser).await;
    let names: Vec<_> = contact["interactions"][0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["definitionName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Register", "Download"],
        "the failed batch left nothing, the others are intact"
    );
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_in_the_envelope() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/nowhere")).send().await.unwrap();
    expect_error(response, 404, ErrorCode::NotFound).await;
    let response = app.client.delete(app.event_url()).send().await.unwrap();
    expect_error(response, 405, ErrorCode::MethodNotAllowed).await;
}

/// `/readyz` says whether the store accepts writes (it commits one of its own); `/healthz`
/// only that the process runs.
#[tokio::test]
async fn readiness_follows_whether_the_store_can_write() {
    let app = TestApp::spawn().await;
    if app.sqlite().is_none() {
        // About the SQLite file itself (another store has its own tests of this).
        return;
    }
    let get = |path: &'static str| {
        let app = &app;
        async move { app.client.get(app.url(path)).send().await.unwrap() }
    };
    let ready = get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap(),
        json!({"status": "ready", "checks": {"store": {"status": "ok"}, "sessions": {"status": "ok"}}})
    );
    // Break the database under the running server: its writes now fail.
    let conn = app.sqlite().unwrap();
    conn.execute_batch("ALTER TABLE readiness RENAME TO readiness_moved")
        .unwrap();
    let not_ready = get("/readyz").await;
    assert_eq!(not_ready.status(), 503);
    let body: serde_json::Value = not_ready.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body:?}");
    assert_eq!(body["checks"]["store"]["status"], "failing", "{body:?}");
    assert_eq!(body["checks"]["sessions"]["status"], "ok", "{body:?}");
    assert_eq!(get("/healthz").await.status(), 200, "alive all the same");
    conn.execute_batch("ALTER TABLE readiness_moved RENAME TO readiness")
        .unwrap();
    assert_eq!(get("/readyz").await.status(), 200);
}
