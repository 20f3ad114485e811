//! The OpenAPI document covers every route of the tracking and admin API, and every path it
//! names is served.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::*;

async fn document(app: &TestApp) -> Value {
    app.client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_openapi_document_covers_every_route() {
    // Every optional route on: the list comes from the router's own table.
    let app = TestApp::spawn_with(|s| {
        s.personalization.enabled = true;
        s.layout_service.upstream = Some("http://127.0.0.1:9".into());
    })
    .await;
    let doc = document(&app).await;
    let api: Vec<_> = tracker_server::routes::routes(&app.state)
        .into_iter()
        .filter(|route| route.audience == tracker_server::routes::Audience::Api)
        .collect();
    assert!(api.iter().any(|route| route.path == "/readyz"), "{api:?}");
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for route in &api {
        let method = route.method.as_str().to_ascii_lowercase();
        assert!(
            paths
                .get(&route.path)
                .and_then(|p| p.get(&method))
                .is_some(),
            "{method} {} is not in the document",
            route.path
        );
    }
    // And nothing the document names is missing from the server.
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let url = app.url(&path.replace("{id}", "00000000-0000-0000-0000-000000000000"));
            let response = app
                .client
                .request(
                    Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                    url,
                )
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            let unrouted = status == 405 || (status == 404 && body.contains("no such endpoint"));
            assert!(
                !unrouted,
                "{method} {path} is documented but not served: {status}"
            );
        }
    }
    // Wire types are in it.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "ContactList",
        "ContactJson",
        "DashboardJson",
        "OpenInteractionList",
        "ErrorEnvelope",
        "TrackedBody",
    ] {
        assert!(schemas.contains_key(schema), "{schema}");
    }
}

#[tokio::test]
async fn the_document_follows_the_configured_service_prefix() {
    let app = TestApp::spawn_with(|s| s.tracker.service_prefix = "/track".into()).await;
    let doc = document(&app).await;
    assert!(doc["paths"].get("/track/event").is_some());
    assert!(doc["paths"].get("/sitecore/api/jss/track/event").is_none());
}

#[tokio::test]
async fn operation_ids_are_unique() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let mut ids: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap().to_string();
            ids.push((id, format!("{method} {path}")));
        }
    }
    let mut seen = std::collections::HashMap::new();
    for (id, at) in ids {
        // One handler under two methods (flush, identify) shares its id by design of the
        // generator; two different handlers never do.
        let first = seen.entry(id.clone()).or_insert_with(|| at.clone());
        assert_eq!(
            first.split(' ').nth(1),
            at.split(' ').nth(1),
            "operationId {id} used by {first} and {at}"
        );
    }
}

/// The document lists every error code the envelope can carry.
#[tokio::test]
async fn the_document_lists_every_error_code() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let listed: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("no ErrorCode schema: {}", doc["components"]))
        .iter()
        .map(|code| code.as_str().unwrap())
        .collect();
    let all: Vec<&str> = tracker_api_types::ErrorCode::ALL
        .iter()
        .map(|code| code.as_str())
        .collect();
    assert_eq!(listed, all);
}
