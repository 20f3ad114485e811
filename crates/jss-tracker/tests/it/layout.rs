//! The Layout Service passed through (`[layout_service] upstream`) against a real upstream
//! HTTP server the test starts, serving recorded Layout Service JSON of a JSS sample route; and
//! `POST /sitecore/api/track/pageview`.

use std::net::SocketAddr;

use axum::{
    extract::Query,
    http::{header, HeaderMap, StatusCode},
    response::IntoResponse,
    routing::get,
    Router,
};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

const LAYOUT: &str = include_str!("../fixtures/layout-styleguide.json");
const ROUTE_ITEM: &str = "52961eea-cca7-4313-a5dc-0e8b3b3a0f79";
const WEIRD: &str =
    r#"{"sitecore":{"context":{"language":"en"},"route":{"itemId":"not-a-guid","name":"weird"}}}"#;
const NOT_FOUND_BODY: &str = r#"{"sitecore":{"context":{"language":"en"},"route":null}}"#;

/// A Layout Service: `item=/styleguide` is the recorded route (setting a cookie of its own),
/// `/missing` a 404 with Sitecore's body, `/broken` a 500; it echoes what it was sent in
/// `x-seen-*` headers.
async fn upstream() -> SocketAddr {
    async fn render(
        Query(query): Query<std::collections::HashMap<String, String>>,
        headers: HeaderMap,
    ) -> impl IntoResponse {
        let seen = |name: header::HeaderName| {
            headers
                .get(&name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let echo = [
            ("x-seen-cookie", seen(header::COOKIE)),
            ("x-seen-user-agent", seen(header::USER_AGENT)),
            ("x-seen-accept-language", seen(header::ACCEPT_LANGUAGE)),
            (
                "x-seen-forwarded-for",
                headers
                    .get("x-forwarded-for")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string(),
            ),
        ];
        let mut answer_headers = HeaderMap::new();
        for (name, value) in echo {
            answer_headers.insert(name, value.parse().unwrap());
        }
        match query.get("item").map(String::as_str) {
            Some("/styleguide") => {
                answer_headers.insert(
                    header::CONTENT_TYPE,
                    "application/json; charset=utf-8".parse().unwrap(),
                );
                answer_headers.append(header::SET_COOKIE, "sc_upstream=1; Path=/".parse().unwrap());
                (StatusCode::OK, answer_headers, LAYOUT.to_string())
            }
            Some("/weird") => {
                // A route whose item id tracking refuses (not a GUID): tracking fails.
                answer_headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
                (StatusCode::OK, answer_headers, WEIRD.to_string())
            }
            Some("/broken") => {
                answer_headers.insert(header::CONTENT_TYPE, "text/html".parse().unwrap());
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    answer_headers,
                    "<h1>Server Error</h1>".into(),
                )
            }
            _ => {
                answer_headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
                (
                    StatusCode::NOT_FOUND,
                    answer_headers,
                    NOT_FOUND_BODY.to_string(),
                )
            }
        }
    }
    let app = Router::new().route("/sitecore/api/layout/render/{config}", get(render));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn layout_app(upstream: SocketAddr) -> TestApp {
    TestApp::spawn_with(|s| {
        s.layout_service.upstream = Some(format!("http://{upstream}"));
        s.layout_service.timeout = std::time::Duration::from_secs(5);
    })
    .await
}

fn layout_url(app: &TestApp, item: &str, extra: &str) -> String {
    app.url(&format!(
        "/sitecore/api/layout/render/jss?item={item}&sc_lang=en&sc_apikey={KEY}{extra}"
    ))
}

async fn get_layout(
    app: &TestApp,
    browser: &mut Browser,
    url: &str,
) -> (StatusCode, HeaderMap, String) {
    let response = browser.send(app, Method::GET, url, None, "").await;
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.text().await.unwrap())
}

/// A route's layout comes back unchanged, and its page view is stored for the visitor with
/// the route's item id, language and path; the upstream's cookie and ours both reach the
/// browser; the visitor's cookies, user agent and language reach the upstream; a later
/// `/event` goal lands in the same visit.
#[tokio::test]
async fn a_route_from_the_layout_service_is_a_page_view() {
    let upstream = upstream().await;
    let app = layout_app(upstream).await;
    let mut browser = Browser::new();
    browser
        .headers
        .push(("accept-language".into(), "en-GB,en;q=0.8".into()));
    let (status, headers, body) =
        get_layout(&app, &mut browser, &layout_url(&app, "/styleguide", "")).await;
    assert_eq!(status, 200);
    assert_eq!(body, LAYOUT, "the layout byte for byte");
    let cookies: Vec<&str> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        cookies.iter().any(|c| c.starts_with("sc_upstream=1")),
        "{cookies:?}"
    );
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("SC_ANALYTICS_GLOBAL_COOKIE=")),
        "{cookies:?}"
    );
    assert_eq!(headers["x-seen-user-agent"], CHROME);
    assert_eq!(headers["x-seen-accept-language"], "en-GB,en;q=0.8");
    assert_eq!(headers["x-seen-forwarded-for"], "127.0.0.1");

    let contact = app.contact_of(&browser).await;
    let visit = &contact["interactions"][0];
    let view = &visit["events"][0];
    assert_eq!(view["type"], "pageView", "{contact}");
    assert_eq!(
        view["pageId"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .trim_matches(['{', '}']),
        ROUTE_ITEM,
        "{view}"
    );
    assert_eq!(view["url"], "/styleguide");
    assert_eq!(view["language"], "en");

    // The next request carries our cookies to the upstream, and a goal joins the visit.
    let (_, headers, _) =
        get_layout(&app, &mut browser, &layout_url(&app, "/styleguide", "")).await;
    assert!(headers["x-seen-cookie"]
        .to_str()
        .unwrap()
        .contains("SC_ANALYTICS_GLOBAL_COOKIE="));
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    let contact = app.contact_of(&browser).await;
    assert_eq!(contact["interactionCount"], 1, "{contact}");
    assert_eq!(
        contact["interactions"][0]["events"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

/// `tracking=false` stores nothing; 404 and 500 pass through byte for byte and store nothing;
/// robots get the layout and leave nothing; a stopped upstream is a 502 in the envelope.
#[tokio::test]
async fn what_the_layout_service_pass_through_does_not_track() {
    let upstream = upstream().await;
    let app = layout_app(upstream).await;
    let mut browser = Browser::new();
    let (status, _, body) = get_layout(
        &app,
        &mut browser,
        &layout_url(&app, "/styleguide", "&tracking=false"),
    )
    .await;
    assert_eq!((status.as_u16(), body.as_str()), (200, LAYOUT));
    let (status, headers, body) =
        get_layout(&app, &mut browser, &layout_url(&app, "/missing", "")).await;
    assert_eq!((status.as_u16(), body.as_str()), (404, NOT_FOUND_BODY));
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let (status, _, body) = get_layout(&app, &mut browser, &layout_url(&app, "/broken", "")).await;
    assert_eq!(
        (status.as_u16(), body.as_str()),
        (500, "<h1>Server Error</h1>")
    );
    let mut robot = Browser::new();
    robot.headers.push((
        "user-agent".into(),
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)".into(),
    ));
    let (status, _, body) =
        get_layout(&app, &mut robot, &layout_url(&app, "/styleguide", "")).await;
    assert_eq!((status.as_u16(), body.as_str()), (200, LAYOUT));
    // Tracking that fails never breaks the page: the layout is served, the failure counted.
    let failed = |text: &str| {
        sample(
            text,
            r#"jss_tracker_layout_untracked_total{reason="tracking_failed"}"#,
        )
    };
    let before = failed(&scrape(&app).await);
    let (status, _, body) = get_layout(&app, &mut browser, &layout_url(&app, "/weird", "")).await;
    assert_eq!((status.as_u16(), body.as_str()), (200, WEIRD));
    assert!(failed(&scrape(&app).await) > before);
    assert_eq!(app.contact_count().await, 0, "nothing stored");

    // An upstream that is not there: 502 in the envelope.
    let gone = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let app = layout_app(gone).await;
    let response = Browser::new()
        .send(
            &app,
            Method::GET,
            &layout_url(&app, "/styleguide", ""),
            None,
            "",
        )
        .await;
    expect_error(response, 502, ErrorCode::BadGateway).await;
}

/// The page-view endpoint stores a page view with its referrer, refuses one without an item id
/// unless `tracker.page_views_without_item = "url"`, and skips a route the Layout Service just
/// tracked.
#[tokio::test]
async fn the_page_view_endpoint() {
    let upstream = upstream().await;
    let app = layout_app(upstream).await;
    let url = app.url(&format!(
        "/sitecore/api/track/pageview?sc_apikey={KEY}&sc_trk=Spring%20Sale"
    ));
    let mut browser = Browser::new();
    let post = |body: Value| body.to_string();
    let response = browser
        .send(
            &app,
            Method::POST,
            &url,
            Some(post(
                json!({"url": "/docs", "referrer": "https://search.example/?q=jss",
                             "itemId": PAGE, "language": "en"}),
            )),
            "application/json",
        )
        .await;
    assert_eq!(response.status(), 200);
    let contact = app.contact_of(&browser).await;
    let events = contact["interactions"][0]["events"]
        .as_array()
        .unwrap()
        .clone();
    let view = events.iter().find(|e| e["type"] == "pageView").unwrap();
    assert_eq!(view["referrer"], "https://search.example/?q=jss", "{view}");
    assert!(
        events.iter().any(|e| e["type"] == "campaign"),
        "sc_trk: {events:?}"
    );
    // The visit's landing page and where it came from.
    let visit = &contact["interactions"][0];
    assert_eq!(visit["landingUrl"], "/docs", "{visit}");
    assert_eq!(visit["referrer"], "https://search.example/?q=jss");

    let response = browser
        .send(
            &app,
            Method::POST,
            &url,
            Some(post(json!({"url": "/no-item"}))),
            "application/json",
        )
        .await;
    let body = expect_error(response, 400, ErrorCode::InvalidEvent).await;
    assert!(body.error.message.contains("page_views_without_item"));

    // Tracked by the Layout Service a moment ago: not counted twice.
    get_layout(&app, &mut browser, &layout_url(&app, "/styleguide", "")).await;
    let before = app.contact_of(&browser).await["interactions"][0]["events"]
        .as_array()
        .unwrap()
        .len();
    let response = browser
        .send(
            &app,
            Method::POST,
            &url,
            Some(post(json!({"url": "/styleguide", "itemId": PAGE}))),
            "application/json",
        )
        .await;
    assert_eq!(response.json::<Value>().await.unwrap()["tracked"], 0);
    let after = app.contact_of(&browser).await["interactions"][0]["events"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after);

    let open = TestApp::spawn_with(|s| {
        s.tracker.page_views_without_item = tracker_server::config::PageViewsWithoutItem::Url;
    })
    .await;
    let url = open.url(&format!("/sitecore/api/track/pageview?sc_apikey={KEY}"));
    let mut visitor = Browser::new();
    for _ in 0..2 {
        let response = visitor
            .send(
                &open,
                Method::POST,
                &url,
                Some(post(json!({"url": "/pricing?x=1"}))),
                "application/json",
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    let contact = open.contact_of(&visitor).await;
    let events = contact["interactions"][0]["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0]["pageId"], events[1]["pageId"],
        "a stable surrogate id"
    );
}
