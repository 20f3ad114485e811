//! `GET {prefix}/visitor` (`personalization.enabled`): the caller's own profile by its cookies,
//! with the tracking endpoints' key and CORS rules, and nothing about anyone else.

use reqwest::{header, Method};
use serde_json::{json, Value};
use tracker_api_types::ErrorCode;
use tracker_core::clock::Clock;

use crate::helpers::{
    expect_error, signed_identification, Browser, TestApp, APP_ORIGIN, KEY, PAGE,
};

fn visitor_url(app: &TestApp) -> String {
    app.url(&format!("/sitecore/api/jss/track/visitor?sc_apikey={KEY}"))
}

async fn profile(app: &TestApp, browser: &mut Browser) -> (header::HeaderMap, Value) {
    let response = browser
        .send(app, Method::GET, &visitor_url(app), None, "")
        .await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    (headers, response.json().await.unwrap())
}

#[tokio::test]
async fn the_visitor_gets_its_own_profile_and_nothing_else() {
    let app = TestApp::spawn_with(|s| s.personalization.enabled = true).await;
    let mut ada = Browser::new();
    let url = format!("{}&sc_camp=Spring%20Sale", app.event_url());
    let body = json!([
        {"pageId": PAGE, "url": "/"},
        {"goalId": "Register"},
        signed_identification("email", "ada@example.com", app.clock.now())
    ])
    .to_string();
    let response = ada
        .send(&app, Method::POST, &url, Some(body), "application/json")
        .await;
    assert_eq!(response.status(), 200);
    ada.track_ok(&app, json!([{"goalId": "Instant Demo"}]))
        .await;

    let (headers, me) = profile(&app, &mut ada).await;
    assert_eq!(
        headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        APP_ORIGIN,
        "the tracking endpoints' CORS rules"
    );
    assert_eq!(me["known"], true, "{me}");
    assert_eq!(me["identified"], true);
    assert_eq!(me["identifierSources"], json!(["email"]));
    assert_eq!(me["visits"], 1);
    assert_eq!(me["goals"], json!(["Instant Demo", "Register"]));
    assert_eq!(me["goalCount"], 2);
    assert_eq!(me["campaigns"], json!(["Spring Sale"]));
    assert_eq!(me["pageViews"], 1);
    assert!(me["engagementValue"].as_i64().unwrap() > 0);
    assert!(
        !me.to_string().contains("ada@example.com"),
        "identifiers by source only: {me}"
    );

    // Someone else sees their own (here: nothing), never Ada's.
    let mut stranger = Browser::new();
    let (_, theirs) = profile(&app, &mut stranger).await;
    assert_eq!(theirs["known"], false, "{theirs}");
    assert_eq!(theirs["visits"], 0);
    stranger
        .track_ok(&app, json!([{"pageId": PAGE, "url": "/x"}]))
        .await;
    let (_, theirs) = profile(&app, &mut stranger).await;
    assert_eq!(theirs["known"], true);
    assert_eq!(theirs["goals"], json!([]));
    assert_eq!(theirs["identified"], false);

    // The API key rules hold.
    let response = app
        .client
        .get(app.url("/sitecore/api/jss/track/visitor?sc_apikey=wrong-key"))
        .send()
        .await
        .unwrap();
    expect_error(response, 400, ErrorCode::InvalidApiKey).await;
}

#[tokio::test]
async fn without_personalization_there_is_no_visitor_endpoint() {
    let app = TestApp::spawn().await;
    let response = app.client.get(visitor_url(&app)).send().await.unwrap();
    expect_error(response, 404, ErrorCode::NotFound).await;
}
