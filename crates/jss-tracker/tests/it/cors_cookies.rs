//! CORS (wire contract, section 4) and cookies (section 5).

use reqwest::{header, Method};
use serde_json::json;

use crate::helpers::*;

async fn preflight(app: &TestApp, path: &str, origin: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, app.url(path))
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
        .send()
        .await
        .unwrap()
}

fn header_of(response: &reqwest::Response, name: header::HeaderName) -> Option<&str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn preflights_echo_allowed_origins_with_credentials_and_refuse_others() {
    let app = TestApp::spawn().await;
    for path in [
        format!("/sitecore/api/jss/track/event?sc_apikey={KEY}"),
        format!("/sitecore/api/jss/track/flush?sc_apikey={KEY}"),
    ] {
        let ok = preflight(&app, &path, APP_ORIGIN).await;
        assert!(ok.status().is_success(), "{path}");
        assert_eq!(
            header_of(&ok, header::ACCESS_CONTROL_ALLOW_ORIGIN),
            Some(APP_ORIGIN)
        );
        assert_eq!(
            header_of(&ok, header::ACCESS_CONTROL_ALLOW_CREDENTIALS),
            Some("true")
        );
        let methods = header_of(&ok, header::ACCESS_CONTROL_ALLOW_METHODS)
            .unwrap()
            .to_ascii_uppercase();
        for m in ["GET", "POST", "OPTIONS"] {
            assert!(methods.contains(m), "{methods}");
        }
        let headers = header_of(&ok, header::ACCESS_CONTROL_ALLOW_HEADERS)
            .unwrap()
            .to_ascii_lowercase();
        assert!(
            headers.contains("content-type") && headers.contains("sc_apikey"),
            "{headers}"
        );
        assert!(header_of(&ok, header::VARY)
            .unwrap()
            .to_ascii_lowercase()
            .contains("origin"));

        let refused = preflight(&app, &path, "https://evil.example.com").await;
        assert_eq!(refused.status(), 403);
        assert_eq!(
            header_of(&refused, header::ACCESS_CONTROL_ALLOW_ORIGIN),
            None
        );
    }
}

#[tokio::test]
async fn actual_requests_allowed_disallowed_and_without_origin() {
    let app = TestApp::spawn().await;
    let mut allowed = Browser::new();
    let response = allowed.track(&app, json!([{"goalId": "Register"}])).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header_of(&response, header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some(APP_ORIGIN)
    );
    assert_eq!(
        header_of(&response, header::ACCESS_CONTROL_ALLOW_CREDENTIALS),
        Some("true")
    );

    let mut foreign = Browser {
        origin: Some("https://evil.example.com".into()),
        ..Browser::default()
    };
    let response = foreign.track(&app, json!([{"goalId": "Register"}])).await;
    assert_eq!(
        header_of(&response, header::ACCESS_CONTROL_ALLOW_ORIGIN),
        None
    );
    expect_error(response, 403, ErrorCode::OriginNotAllowed).await;
    assert!(
        foreign.cookies.is_empty(),
        "no cookies for a refused origin"
    );

    let mut server_side = Browser::default();
    let response = server_side
        .track(&app, json!([{"goalId": "Register"}]))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header_of(&response, header::ACCESS_CONTROL_ALLOW_ORIGIN),
        None
    );

    assert_eq!(
        app.contact_count().await,
        2,
        "the refused origin stored nothing"
    );
}

#[tokio::test]
async fn a_wildcard_key_echoes_the_origin_never_a_star() {
    let app = TestApp::spawn_with(|s| s.api_keys[0].cors_origins = vec!["*".into()]).await;
    let mut browser = Browser {
        origin: Some("http://localhost:3000".into()),
        ..Browser::default()
    };
    let response = browser.track(&app, json!([{"goalId": "Register"}])).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header_of(&response, header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some("http://localhost:3000")
    );
}

#[tokio::test]
async fn cookies_have_sitecores_format_and_the_spec_attributes() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new();
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    let global = browser
        .cookies
        .get("SC_ANALYTICS_GLOBAL_COOKIE")
        .unwrap()
        .clone();
    let (hex, flag) = global.split_once('|').unwrap();
    assert_eq!(hex.len(), 32);
    assert!(
        hex.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{global}"
    );
    assert!(flag == "True" || flag == "False", "{global}");
    assert!(browser.cookies.contains_key("ASP.NET_SessionId"));
    for set_cookie in &browser.set_cookie_headers {
        // The test talks to 127.0.0.1: a loopback host, a secure context for browsers.
        for attribute in ["HttpOnly", "Path=/", "SameSite=None", "Secure"] {
            assert!(
                set_cookie.contains(attribute),
                "{set_cookie} lacks {attribute}"
            );
        }
    }
    assert!(
        browser.set_cookie_headers[0].contains("Max-Age="),
        "the device cookie lasts"
    );

    // The same device comes back with its cookie: same contact.
    let before = browser.device();
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    assert_eq!(browser.device(), before);
    assert_eq!(app.contact_count().await, 1);
}

#[tokio::test]
async fn plain_http_on_a_public_host_gets_lax_cookies_unless_a_trusted_proxy_says_https() {
    let app = TestApp::spawn().await;
    let send = |forwarded: bool| {
        let mut request = app
            .client
            .post(app.event_url())
            .header(header::HOST, "tracker.example.com")
            .body(r#"[{"goalId":"Register"}]"#);
        if forwarded {
            request = request.header("x-forwarded-proto", "https");
        }
        request.send()
    };
    let response = send(true).await.unwrap();
    for value in response.headers().get_all(header::SET_COOKIE) {
        let value = value.to_str().unwrap();
        assert!(
            value.contains("SameSite=Lax") && !value.contains("Secure"),
            "untrusted proxy: {value}"
        );
    }
    let trusted =
        TestApp::spawn_with(|s| s.server.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()])
            .await;
    let response = trusted
        .client
        .post(trusted.event_url())
        .header(header::HOST, "tracker.example.com")
        .header("x-forwarded-proto", "https")
        .body(r#"[{"goalId":"Register"}]"#)
        .send()
        .await
        .unwrap();
    for value in response.headers().get_all(header::SET_COOKIE) {
        let value = value.to_str().unwrap();
        assert!(
            value.contains("SameSite=None") && value.contains("Secure"),
            "trusted proxy: {value}"
        );
    }
}

#[tokio::test]
async fn a_malformed_global_cookie_is_replaced() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new();
    browser.cookies.insert(
        "SC_ANALYTICS_GLOBAL_COOKIE".into(),
        "not-a-device|maybe".into(),
    );
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    let global = browser.cookies.get("SC_ANALYTICS_GLOBAL_COOKIE").unwrap();
    assert_ne!(global, "not-a-device|maybe");
    assert_eq!(global.split('|').next().unwrap().len(), 32);
    // A valid classified cookie keeps its device (any case) and its flag.
    let device = browser.device().unwrap();
    let mut human = Browser::new();
    human.cookies.insert(
        "SC_ANALYTICS_GLOBAL_COOKIE".into(),
        format!("{}|True", device.to_uppercase()),
    );
    human.track_ok(&app, json!([{"goalId": "Register"}])).await;
    assert_eq!(
        human.cookies.get("SC_ANALYTICS_GLOBAL_COOKIE").unwrap(),
        &format!("{device}|True")
    );
}

#[tokio::test]
async fn cookies_are_written_when_new_or_changed_and_the_device_cookie_renewed_per_visit() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new();
    let names = |b: &Browser| -> Vec<String> {
        b.set_cookie_headers
            .iter()
            .map(|h| h.split('=').next().unwrap().to_string())
            .collect()
    };
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    assert_eq!(
        names(&browser),
        ["SC_ANALYTICS_GLOBAL_COOKIE", "ASP.NET_SessionId"]
    );
    let device = browser.cookies["SC_ANALYTICS_GLOBAL_COOKIE"].clone();
    let session = browser.cookies["ASP.NET_SessionId"].clone();
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    assert!(names(&browser).is_empty(), "same visit: nothing to write");
    browser.flush(&app).await;
    assert_eq!(
        names(&browser),
        ["ASP.NET_SessionId"],
        "the session cookie is cleared"
    );
    assert!(!browser.cookies.contains_key("ASP.NET_SessionId"));
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    assert_eq!(
        names(&browser),
        ["SC_ANALYTICS_GLOBAL_COOKIE", "ASP.NET_SessionId"],
        "a new visit: new session, device cookie renewed"
    );
    assert_eq!(browser.cookies["SC_ANALYTICS_GLOBAL_COOKIE"], device);
    assert_ne!(browser.cookies["ASP.NET_SessionId"], session);
    let renewed = browser
        .set_cookie_headers
        .iter()
        .find(|h| h.starts_with("SC_ANALYTICS_GLOBAL_COOKIE="))
        .unwrap();
    assert!(renewed.contains("Max-Age="), "{renewed}");
    app.stop().await;
}
