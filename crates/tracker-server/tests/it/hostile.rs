//! Hostile traffic (issue #12): what anyone holding the public API key can send, and what the
//! tracker does with it.

use reqwest::Method;
use serde_json::json;
use tracker_server::api_types::ContactJson;

use crate::helpers::*;

const CHROME_PREFIX: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) ";

/// Every stored string has the one limit (`tracker.limits.max_string_bytes`), wherever it comes
/// from: a user agent is cut to it (a browser cannot be asked for a shorter one), a query
/// parameter over it is refused, and nothing of a refused request is stored.
#[tokio::test]
async fn strings_from_headers_and_the_query_are_bounded_like_the_body() {
    let app = TestApp::spawn().await;
    let max = 4096;
    let mut browser = Browser::new();
    let huge_ua = format!(
        "{CHROME_PREFIX}Chrome/131.0.0.0 Safari/537.36 {}",
        "é".repeat(150_000)
    );
    browser.headers.push(("user-agent".into(), huge_ua));
    browser
        .track_ok(&app, json!([{"pageId": PAGE, "url": "/"}]))
        .await;
    let contact: ContactJson = serde_json::from_value(app.contact_of(&browser).await).unwrap();
    let stored = contact.interactions[0].user_agent.clone().unwrap();
    assert!(
        stored.len() <= max,
        "stored user agent is {} bytes",
        stored.len()
    );
    assert!(
        stored.starts_with(CHROME_PREFIX),
        "cut at the end: {}",
        &stored[..80]
    );

    let mut other = Browser::new();
    let long_site = format!("{}&sc_site={}", app.event_url(), "s".repeat(max + 1));
    let response = other
        .send(
            &app,
            Method::POST,
            &long_site,
            Some(json!([{"pageId": PAGE, "url": "/"}]).to_string()),
            "application/json",
        )
        .await;
    let body = expect_error(response, 400, "invalid_payload").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sc_site"),
        "{body}"
    );
    let at_limit = format!("{}&sc_site={}", app.event_url(), "s".repeat(max));
    let response = other
        .send(
            &app,
            Method::POST,
            &at_limit,
            Some(json!([{"pageId": PAGE, "url": "/"}]).to_string()),
            "application/json",
        )
        .await;
    assert_eq!(
        response.status(),
        200,
        "a site of exactly the limit is fine"
    );
    assert_eq!(
        app.contact_count().await,
        2,
        "the refused request stored nothing"
    );
}

/// A parameter given twice is named as such (it used to be read as a missing API key).
#[tokio::test]
async fn a_repeated_query_parameter_is_named() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new();
    for (param, code) in [
        ("sc_site=a&sc_site=b", "invalid_payload"),
        ("sc_camp=a&sc_camp=b", "invalid_payload"),
        ("sc_apikey=again", "invalid_api_key"),
    ] {
        let url = format!("{}&{param}", app.event_url());
        let response = browser
            .send(
                &app,
                Method::POST,
                &url,
                Some("[]".into()),
                "application/json",
            )
            .await;
        let body = expect_error(response, 400, code).await;
        let name = param.split('=').next().unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(name) && message.contains("more than once"),
            "{body}"
        );
    }
}
