//! Processors from configuration, end to end: a `map` processor tracks a shape the JSS clients
//! do not know, an element it refuses fails the whole batch (nothing of it stored), and
//! `sc_camp` goes through the pipeline (removing its processor turns it off).

use reqwest::Method;
use serde_json::json;
use tracker_api_types::ErrorCode;
use tracker_server::config::{PipelinePatch, ProcessorEntry};

use crate::helpers::{expect_error, Browser, TestApp, PAGE};

fn downloads() -> PipelinePatch {
    let serde_json::Value::Object(settings) = json!({
        "match": "downloadId", "as": "page_event", "definition": "Download",
        "data": "fileName", "data_key": "downloadId"
    }) else {
        unreachable!()
    };
    PipelinePatch {
        add: vec![ProcessorEntry {
            name: "download_links".into(),
            kind: "map".into(),
            before: None,
            after: Some("page_event".into()),
            settings,
        }],
        ..PipelinePatch::default()
    }
}

#[tokio::test]
async fn a_map_processor_from_configuration_tracks_its_elements() {
    let app = TestApp::spawn_with(|s| {
        s.pipeline.patches = vec![("conf.d/10-downloads.toml".into(), downloads())];
    })
    .await;
    let mut browser = Browser::new();
    browser
        .track_ok(
            &app,
            json!([{"pageId": PAGE, "url": "/"}, {"downloadId": "wp-7", "fileName": "wp.pdf"}]),
        )
        .await;
    let contact = app.contact(&browser).await.unwrap();
    let event = &contact.interactions[0].events[1];
    assert_eq!(event.kind, "pageEvent", "{contact:?}");
    assert_eq!(event.definition_name.as_deref(), Some("Download"));
    assert_eq!(event.data.as_deref(), Some("wp.pdf"));
    assert_eq!(event.data_key.as_deref(), Some("wp-7"));

    // An element the processor refuses fails the whole batch: nothing of it is stored.
    let response = browser
        .track(
            &app,
            json!([{"goalId": "Register"}, {"downloadId": "wp-8", "fileName": {"not": "text"}}]),
        )
        .await;
    let body = expect_error(response, 400, ErrorCode::InvalidEvent).await;
    assert_eq!(body.error.index, Some(1), "{body:?}");
    let contact = app.contact(&browser).await.unwrap();
    assert_eq!(contact.interactions[0].event_count, 2, "{contact:?}");
}

#[tokio::test]
async fn sc_camp_goes_through_the_pipeline() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new();
    let url = format!("{}&sc_camp=Test%20Campaign", app.event_url());
    let body = json!([{"pageId": PAGE, "url": "/"}]).to_string();
    let response = browser
        .send(&app, Method::POST, &url, Some(body), "application/json")
        .await;
    assert_eq!(response.status(), 200);
    let contact = app.contact(&browser).await.unwrap();
    assert_eq!(
        contact.interactions[0].events[0].kind, "campaign",
        "{contact:?}"
    );

    // Without the processor, sc_camp is ignored (and the batch still tracked).
    let app = TestApp::spawn_with(|s| {
        s.pipeline.patches = vec![(
            "tracker.toml".into(),
            PipelinePatch {
                remove: vec!["sc_camp".into()],
                ..PipelinePatch::default()
            },
        )];
    })
    .await;
    let mut browser = Browser::new();
    let url = format!("{}&sc_camp=Test%20Campaign", app.event_url());
    let body = json!([{"pageId": PAGE, "url": "/"}]).to_string();
    let response = browser
        .send(&app, Method::POST, &url, Some(body), "application/json")
        .await;
    assert_eq!(response.status(), 200);
    let contact = app.contact(&browser).await.unwrap();
    let events = &contact.interactions[0].events;
    assert_eq!(events.len(), 1, "{contact:?}");
    assert_eq!(events[0].kind, "pageView");
}

fn webhook(name: &str, url: &str, queue: usize) -> PipelinePatch {
    let serde_json::Value::Object(settings) = json!({"url": url, "queue": queue, "timeout": "60s"})
    else {
        unreachable!()
    };
    PipelinePatch {
        add: vec![ProcessorEntry {
            name: name.into(),
            kind: "webhook".into(),
            before: Some("page_event".into()),
            after: None,
            settings,
        }],
        ..PipelinePatch::default()
    }
}

/// A webhook receives each element as JSON, from the sender task, while requests go on.
#[tokio::test]
async fn a_webhook_receives_the_elements() {
    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let sender = sender.clone();
            async move {
                let _ = sender.send(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    let app = TestApp::spawn_with(|s| {
        s.pipeline.patches = vec![("conf.d/webhook.toml".into(), webhook("to_crm", &url, 16))];
    })
    .await;
    let mut browser = Browser::new();
    browser
        .track_ok(
            &app,
            json!([{"pageId": PAGE, "url": "/"}, {"goalId": "Register"}]),
        )
        .await;
    let mut got = Vec::new();
    while got.len() < 2 {
        let element = tokio::time::timeout(std::time::Duration::from_secs(30), received.recv())
            .await
            .expect("the webhook was called")
            .expect("open");
        got.push(element);
    }
    assert_eq!(got[0]["processor"], "to_crm");
    assert_eq!(got[0]["element"]["url"], "/");
    assert_eq!(got[1]["element"]["goalId"], "Register");
    // The elements were tracked all the same.
    let contact = app.contact(&browser).await.unwrap();
    assert_eq!(contact.interactions[0].event_count, 2, "{contact:?}");
}

/// A webhook that never answers slows nothing: its queue fills, later elements are dropped
/// and counted, every request is answered.
#[tokio::test]
async fn a_dead_webhook_slows_nothing() {
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let app = TestApp::spawn_with(|s| {
        s.pipeline.patches = vec![("conf.d/webhook.toml".into(), webhook("dead_hook", &url, 2))];
    })
    .await;
    let mut browser = Browser::new();
    for _ in 0..20 {
        browser
            .track_ok(&app, json!([{"goalId": "Register"}]))
            .await;
    }
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dropped: f64 = metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix("jss_tracker_webhook_elements_total{")
                .filter(|rest| rest.contains("outcome=\"dropped\"") && rest.contains("dead_hook"))
                .and_then(|rest| rest.rsplit(' ').next())
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0.0);
    assert!(
        dropped >= 17.0,
        "20 elements, a queue of 2 and one in flight: {metrics}"
    );
    let contact = app.contact(&browser).await.unwrap();
    assert_eq!(contact.interactions[0].event_count, 20, "{contact:?}");
}
