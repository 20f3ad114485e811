//! Processors from configuration, end to end: a `map` processor tracks a shape the JSS clients
//! do not know, an element it refuses fails the whole batch (nothing of it stored), and
//! `sc_camp` goes through the pipeline (removing its processor turns it off).

use reqwest::Method;
use serde_json::json;
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
    let contact = app.contact_of(&browser).await;
    let event = &contact["interactions"][0]["events"][1];
    assert_eq!(event["type"], "pageEvent", "{contact}");
    assert_eq!(event["definitionName"], "Download", "{contact}");
    assert_eq!(event["data"], "wp.pdf", "{contact}");
    assert_eq!(event["dataKey"], "wp-7", "{contact}");

    // An element the processor refuses fails the whole batch: nothing of it is stored.
    let response = browser
        .track(
            &app,
            json!([{"goalId": "Register"}, {"downloadId": "wp-8", "fileName": {"not": "text"}}]),
        )
        .await;
    let body = expect_error(response, 400, "invalid_event").await;
    assert_eq!(body["error"]["index"], 1, "{body}");
    let contact = app.contact_of(&browser).await;
    assert_eq!(contact["interactions"][0]["eventCount"], 2, "{contact}");
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
    let contact = app.contact_of(&browser).await;
    assert_eq!(
        contact["interactions"][0]["events"][0]["type"], "campaign",
        "{contact}"
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
    let contact = app.contact_of(&browser).await;
    let events = contact["interactions"][0]["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{contact}");
    assert_eq!(events[0]["type"], "pageView");
}
