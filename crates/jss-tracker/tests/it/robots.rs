//! Robots out, people in: known robots are answered and never stored, unidentified visitors
//! under `robots.unclassified = "robot"` wait for the identification request, and client
//! addresses come from trusted proxies only and are stored anonymised.

use chrono::Duration;
use reqwest::Method;
use serde_json::json;
use tracker_core::{clock::Clock, robots::Unclassified};

use crate::helpers::*;

const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

/// Nothing of any visitor is stored: on SQLite, no row in any table that holds visitors' data,
/// read from the database file itself; on another store, no contact in the admin API.
async fn assert_nothing_stored(app: &TestApp) {
    let Some(conn) = app.sqlite() else {
        assert_eq!(app.contact_count().await, 0, "no contact is stored");
        return;
    };
    let rows: [i64; 5] = [
        "contacts",
        "devices",
        "identifiers",
        "interactions",
        "events",
    ]
    .map(|table| {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    });
    assert_eq!(
        rows, [0_i64; 5],
        "contacts, devices, identifiers, interactions, events"
    );
}

fn global_cookie(browser: &Browser) -> String {
    browser.cookies["SC_ANALYTICS_GLOBAL_COOKIE"].clone()
}

async fn identify(app: &TestApp, browser: &mut Browser, path: &str) -> reqwest::Response {
    let url = app.url(&format!("{path}?tstamp=1764400000000"));
    browser.send(app, Method::GET, &url, None, "").await
}

#[tokio::test]
async fn a_googlebot_visit_is_answered_and_leaves_nothing_in_the_database() {
    let app = TestApp::spawn().await;
    let mut bot = Browser::new();
    bot.origin = None;
    bot.headers.push(("user-agent".into(), GOOGLEBOT.into()));
    let answer = bot
        .track_ok(
            &app,
            json!([{"pageId": PAGE, "url": "/"}, {"goalId": "Register"}]),
        )
        .await;
    assert_eq!(answer, json!({"tracked": 2}), "as for anyone");
    assert!(global_cookie(&bot).ends_with("|False"));
    bot.track_ok(&app, json!([{"eventId": "Download"}])).await;
    assert_eq!(bot.flush(&app).await, json!({"closed": true}));
    app.state.store().drain().await.unwrap();
    assert_nothing_stored(&app).await;

    // No user agent at all is a robot too.
    let response = reqwest::Client::new()
        .post(app.event_url())
        .body(r#"[{"goalId":"Register"}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn a_person_is_kept_from_the_first_request_by_default_and_its_browser_recorded() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new();
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    assert!(
        global_cookie(&browser).ends_with("|True"),
        "kept as a person"
    );
    let contact = app.contact(&browser).await.unwrap();
    let interaction = &contact.interactions[0];
    assert_eq!(interaction.client.browser.as_deref(), Some("Chrome"));
    assert_eq!(
        interaction.client.browser_version.as_deref(),
        Some("131.0.0.0")
    );
    assert_eq!(interaction.client.os.as_deref(), Some("Windows 10"));
    assert_eq!(interaction.client.device_type.as_deref(), Some("desktop"));
    assert_eq!(
        interaction.ip.as_deref(),
        Some("127.0.0.0"),
        "the peer's address, anonymised"
    );
}

#[tokio::test]
async fn under_the_robot_policy_events_are_kept_only_after_identification() {
    let app = TestApp::spawn_with(|s| s.robots.unclassified = Unclassified::Robot).await;
    let mut browser = Browser::new();
    browser
        .track_ok(
            &app,
            json!([{"pageId": PAGE, "url": "/"}, {"goalId": "Register"}]),
        )
        .await;
    assert!(
        global_cookie(&browser).ends_with("|False"),
        "not yet identified"
    );
    app.state.store().drain().await.unwrap();
    assert_nothing_stored(&app).await;

    let response = identify(
        &app,
        &mut browser,
        "/layouts/system/VisitorIdentificationCSS.aspx",
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/css; charset=utf-8"
    );
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        APP_ORIGIN,
        "cross-origin, for an origin an API key allows"
    );
    assert!(global_cookie(&browser).ends_with("|True"), "identified");

    browser
        .track_ok(
            &app,
            json!([{"eventId": "Download"}, {"goalId": "Instant Demo"}]),
        )
        .await;
    let contact = app.contact(&browser).await.unwrap();
    let events = &contact.interactions[0].events;
    assert_eq!(
        events.len(),
        2,
        "only what came after the identification: {contact:?}"
    );
    assert_eq!(events[0].definition_name.as_deref(), Some("Download"));

    // A later visit of the identified device is kept from its first request.
    browser.flush(&app).await;
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    let contact = app.contact(&browser).await.unwrap();
    assert_eq!(contact.interactions.len(), 2);
}

#[tokio::test]
async fn the_alias_path_identifies_too_and_a_known_robot_stays_one() {
    let app = TestApp::spawn_with(|s| s.robots.unclassified = Unclassified::Robot).await;
    let mut browser = Browser::new();
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    identify(&app, &mut browser, "/sitecore/api/jss/track/identify").await;
    assert!(global_cookie(&browser).ends_with("|True"));
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    assert!(app.contact(&browser).await.is_some());

    let mut bot = Browser::new();
    bot.headers.push(("user-agent".into(), GOOGLEBOT.into()));
    bot.track_ok(&app, json!([{"goalId": "Register"}])).await;
    identify(
        &app,
        &mut bot,
        "/layouts/system/VisitorIdentificationCSS.aspx",
    )
    .await;
    assert!(
        global_cookie(&bot).ends_with("|False"),
        "a crawler that scrolls is still one"
    );
    bot.track_ok(&app, json!([{"goalId": "Register"}])).await;
    assert!(app.contact(&bot).await.is_none());
}

#[tokio::test]
async fn identification_refuses_an_origin_no_key_allows_and_serves_its_script() {
    let app = TestApp::spawn().await;
    let mut stranger = Browser::new();
    stranger.origin = Some("https://evil.example".into());
    let response = identify(
        &app,
        &mut stranger,
        "/layouts/system/VisitorIdentificationCSS.aspx",
    )
    .await;
    expect_error(response, 403, ErrorCode::OriginNotAllowed).await;

    for path in [
        "/layouts/system/VisitorIdentification.js",
        "/sitecore/api/jss/track/identify.js",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"));
        let script = response.text().await.unwrap();
        for needed in [
            "mousemove",
            "touchstart",
            "scroll",
            "keydown",
            "credentials: 'include'",
        ] {
            assert!(script.contains(needed), "{path}: {needed}");
        }
    }
}

#[tokio::test]
async fn a_robot_session_ends_after_one_idle_minute() {
    let app =
        TestApp::spawn_with(|s| s.tracker.sweep_interval = std::time::Duration::from_secs(3600))
            .await;
    let mut bot = Browser::new();
    bot.headers.push(("user-agent".into(), GOOGLEBOT.into()));
    bot.track_ok(&app, json!([{"goalId": "Register"}])).await;
    bot.track_ok(&app, json!([{"goalId": "Register"}])).await;
    assert_eq!(
        app.state.sessions().robot_len(),
        1,
        "one session, kept by its cookie"
    );
    assert_eq!(
        app.state.sessions().count().await.unwrap(),
        0,
        "no interaction"
    );
    app.clock.advance(Duration::seconds(59));
    app.state.sessions().sweep(app.clock.now()).await.unwrap();
    assert_eq!(app.state.sessions().robot_len(), 1, "59 s are not a minute");
    app.clock.advance(Duration::seconds(2));
    app.state.sessions().sweep(app.clock.now()).await.unwrap();
    assert_eq!(app.state.sessions().robot_len(), 0);
}

#[tokio::test]
async fn ip_ranges_make_robots_by_address() {
    let app = TestApp::spawn_with(|s| {
        s.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        s.robots.ip_ranges = vec!["203.0.113.0/24".parse().unwrap()];
    })
    .await;
    let mut monitor = Browser::new();
    monitor
        .headers
        .push(("x-forwarded-for".into(), "203.0.113.9".into()));
    monitor
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    app.state.store().drain().await.unwrap();
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn forwarded_addresses_are_believed_only_from_trusted_proxies_and_stored_anonymised() {
    const CLIENT: &str = "198.51.100.237";
    // From a peer that is not a trusted proxy, the header is ignored.
    let app = TestApp::spawn().await;
    let mut browser = Browser::new();
    browser
        .headers
        .push(("x-forwarded-for".into(), CLIENT.into()));
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    let contact = app.contact(&browser).await.unwrap();
    assert_eq!(contact.interactions[0].ip.as_deref(), Some("127.0.0.0"));

    // Behind a trusted proxy the client's address is used, anonymised; the nearest untrusted
    // hop counts, not what the client prepended.
    let app = TestApp::spawn_with(|s| {
        s.server.trusted_proxies = vec![
            "127.0.0.0/8".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
    })
    .await;
    let mut browser = Browser::new();
    browser.headers.push((
        "x-forwarded-for".into(),
        format!("192.0.2.1, {CLIENT}, 10.1.2.3"),
    ));
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    let contact = app.contact(&browser).await.unwrap();
    assert_eq!(contact.interactions[0].ip.as_deref(), Some("198.51.100.0"));
    // A `Forwarded` header is read only where the proxies write that one
    // (`server.client_ip_header`); elsewhere a client's own passes through them untouched.
    let mut other = Browser::new();
    other.headers.push((
        "forwarded".into(),
        "for=\"[2001:db8:85a3:1234:5678:8a2e:370:7334]:4711\";proto=https".into(),
    ));
    other.track_ok(&app, json!([{"goalId": "Register"}])).await;
    let contact = app.contact(&other).await.unwrap();
    assert_eq!(contact.interactions[0].ip.as_deref(), Some("127.0.0.0"));
    let fwd = TestApp::spawn_with(|s| {
        s.server.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        s.server.client_ip_header = tracker_server::config::ClientIpHeader::Forwarded;
    })
    .await;
    other.cookies.clear();
    other.track_ok(&fwd, json!([{"goalId": "Register"}])).await;
    let contact = fwd.contact(&other).await.unwrap();
    assert_eq!(
        contact.interactions[0].ip.as_deref(),
        Some("2001:db8:85a3::")
    );
    assert!(
        other
            .set_cookie_headers
            .iter()
            .all(|c| c.contains("Secure")),
        "proto=https from a trusted proxy"
    );

    // The raw address is nowhere in the database's files: the database, its WAL, its index.
    app.state.store().drain().await.unwrap();
    fwd.state.store().drain().await.unwrap();
    if app.sqlite().is_none() {
        // What follows reads the SQLite files.
        return;
    }
    let contains =
        |bytes: &[u8], text: &str| bytes.windows(text.len()).any(|w| w == text.as_bytes());
    let mut anonymised_seen = false;
    let files = std::fs::read_dir(app.dir.path())
        .unwrap()
        .chain(std::fs::read_dir(fwd.dir.path()).unwrap());
    for entry in files {
        let path = entry.unwrap().path();
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        anonymised_seen |= contains(&bytes, "198.51.100.0");
        for raw in [CLIENT, "8a2e:370:7334"] {
            assert!(
                !contains(&bytes, raw),
                "{raw} stored raw in {}",
                path.display()
            );
        }
    }
    assert!(
        anonymised_seen,
        "the scan reads the files the address is stored in"
    );
}
