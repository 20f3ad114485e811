//! Issue #20, as an attacker with the public endpoint and a browser would try it: requests that
//! used to stop the store, profiles taken over, the Profile's sign-in, answers without bound,
//! addresses chosen by the client, and what an erasure left behind.

use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// A cookie-keeping client signed in to the Profile (or not): a browser on the Profile's pages.
struct ProfileBrowser {
    client: reqwest::Client,
}

impl ProfileBrowser {
    fn new() -> Self {
        Self {
            client: reqwest::Client::builder()
                .user_agent(CHROME)
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    /// Posts the sign-in form, as the sign-in page of `app` would.
    async fn sign_in(&self, app: &TestApp, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(app.url("/profile/login"))
            .header(header::ORIGIN, format!("http://{}", app.addr))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, app: &TestApp, path: &str) -> reqwest::Response {
        self.client.get(app.url(path)).send().await.unwrap()
    }
}

/// Ten outcomes of the largest value in one visit, and eight visitors of one each on the same
/// day, close: tracking, `/healthz`, `/readyz`, the dashboard and the contact page all keep
/// working, and the sums are exact (the roll-up's sum used to overflow and kill the writer for
/// good). A value over `tracker.limits.max_monetary_value` is refused with a clear 400.
#[tokio::test]
async fn the_largest_outcomes_never_stop_the_store() {
    let app = TestApp::spawn().await;
    let max = "1000000000000";
    let mut buyer = Browser::new();
    let over = buyer
        .track(
            &app,
            json!([{"outcomeId": "Purchase", "currencyCode": "EUR",
                    "monetaryValue": "9999999999999999999999999999"}]),
        )
        .await;
    let body = expect_error(over, 400, ErrorCode::InvalidEvent).await;
    assert!(
        body.error.message.contains("max_monetary_value"),
        "{body:?}"
    );
    let ten: Vec<Value> = (0..10)
        .map(|_| json!({"outcomeId": "Purchase", "currencyCode": "EUR", "monetaryValue": max}))
        .collect();
    buyer.track_ok(&app, Value::Array(ten)).await;
    buyer.flush(&app).await;
    for _ in 0..8 {
        let mut visitor = Browser::new();
        visitor
            .track_ok(
                &app,
                json!([{"outcomeId": "Purchase", "currencyCode": "EUR", "monetaryValue": max}]),
            )
            .await;
        visitor.flush(&app).await;
    }
    // Still tracking, alive and ready.
    Browser::new()
        .track_ok(&app, json!([{"pageId": PAGE, "url": "/"}]))
        .await;
    for path in ["/healthz", "/readyz"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let dashboard = app.admin("/api/v1/dashboard").await;
    let purchase = dashboard["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "Purchase")
        .cloned()
        .unwrap();
    assert_eq!(purchase["count"], 18, "{purchase}");
    assert_eq!(
        purchase["monetaryValue"]["EUR"], "18000000000000.00",
        "{purchase}"
    );
    let contact = app.contact_of(&buyer).await;
    let id = contact["id"].as_str().unwrap();
    let profile = ProfileBrowser::new();
    let signed_in = profile.sign_in(&app, &[("token", TOKEN)]).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let page = profile.get(&app, &format!("/profile/contacts/{id}")).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("10000000000000.00 EUR"));
    let page = profile.get(&app, "/profile/dashboard").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("18000000000000.00 EUR"));
}

/// Thirty wrong sign-ins from one address: the first few are refused as wrong (401), the rest
/// with 429 and `Retry-After`, counted in `/metrics`; the right token from that address waits
/// too. Another site's page cannot post the form, and `next` goes only to a local path.
#[tokio::test]
async fn the_profile_sign_in_is_rate_limited_and_guarded() {
    let app = TestApp::spawn().await;
    let before = sample(
        &scrape(&app).await,
        "jss_tracker_profile_sign_in_failures_total{reason=\"rate_limited\"}",
    );
    let attacker = ProfileBrowser::new();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for n in 0..30 {
        let response = attacker
            .sign_in(&app, &[("token", &format!("wrong-{n}"))])
            .await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
        }
        statuses.push(response.status().as_u16());
    }
    assert!(statuses[..5].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
    assert!(retry_after.is_some_and(|s| s >= 1), "{retry_after:?}");
    let right = attacker.sign_in(&app, &[("token", TOKEN)]).await;
    assert_eq!(right.status(), 429, "limited per address, whatever is sent");
    let after = sample(
        &scrape(&app).await,
        "jss_tracker_profile_sign_in_failures_total{reason=\"rate_limited\"}",
    );
    assert!(after - before >= 10.0, "{before} -> {after}");
    // Time passes (the injected clock): the address may try again.
    app.clock.advance(chrono::Duration::minutes(10));
    assert_eq!(
        attacker.sign_in(&app, &[("token", TOKEN)]).await.status(),
        StatusCode::SEE_OTHER
    );

    // Login CSRF: another site's page posting the form signs no one in.
    let csrf = reqwest::Client::new()
        .post(app.url("/profile/login"))
        .header(header::ORIGIN, "https://evil.example")
        .header(header::USER_AGENT, CHROME)
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(csrf.status(), 403);
    assert!(csrf.headers().get(header::SET_COOKIE).is_none());

    // `next` with a line break, another host, or a path outside the Profile: the dashboard.
    for next in [
        "/profile/contacts\r\nSet-Cookie: x=1",
        "//evil.example/profile",
        "https://evil.example/",
        "/profileevil",
        "/profile/../admin",
    ] {
        let visitor = ProfileBrowser::new();
        let response = visitor
            .sign_in(&app, &[("token", TOKEN), ("next", next)])
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next:?}");
        let location = response.headers()[header::LOCATION].to_str().unwrap();
        assert_eq!(location, "/profile/dashboard", "{next:?}");
    }
    let visitor = ProfileBrowser::new();
    let response = visitor
        .sign_in(&app, &[("token", TOKEN), ("next", "/profile/contacts?q=a")])
        .await;
    assert_eq!(
        response.headers()[header::LOCATION],
        "/profile/contacts?q=a"
    );
}

/// Every Profile answer carries a content security policy, no framing, no sniffing and a
/// referrer policy.
#[tokio::test]
async fn profile_pages_carry_the_security_headers() {
    let app = TestApp::spawn().await;
    let profile = ProfileBrowser::new();
    let mut answers = vec![profile.get(&app, "/profile/login").await];
    profile.sign_in(&app, &[("token", TOKEN)]).await;
    for path in [
        "/profile/dashboard",
        "/profile/contacts",
        "/profile/live",
        "/profile/definitions",
        "/profile/assets/live.js",
    ] {
        answers.push(profile.get(&app, path).await);
    }
    for answer in answers {
        let headers = answer.headers();
        let url = answer.url().to_string();
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{url}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{url}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{url}: {csp}");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{url}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{url}");
        assert!(headers.contains_key(header::REFERRER_POLICY), "{url}");
        let body = answer.text().await.unwrap();
        assert!(
            !body.contains("<script>") && !body.contains(" style=\""),
            "{url}: no inline script or style"
        );
    }
}

/// The live page's stream ends when its viewer signs out (it used to run on, and hold a
/// graceful shutdown for ~40 s).
#[tokio::test]
async fn a_live_stream_ends_at_sign_out() {
    use futures::StreamExt;
    let app = TestApp::spawn().await;
    let profile = ProfileBrowser::new();
    profile.sign_in(&app, &[("token", TOKEN)]).await;
    let stream = profile.get(&app, "/profile/live/stream").await;
    assert_eq!(stream.status(), 200);
    let mut chunks = stream.bytes_stream();
    let first = chunks.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("visits"));
    // Sign out with the page's own form (its CSRF token).
    let page = profile
        .get(&app, "/profile/live")
        .await
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let out = profile
        .client
        .post(app.url("/profile/logout"))
        .header(header::ORIGIN, format!("http://{}", app.addr))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    // The stream ends by itself (a bound only so that a failure does not hang the suite).
    let ended = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(chunk) = chunks.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream did not end at sign-out");

    // A stream open at shutdown ends too, so that the server stops.
    let profile = ProfileBrowser::new();
    profile.sign_in(&app, &[("token", TOKEN)]).await;
    let stream = profile.get(&app, "/profile/live/stream").await;
    let mut chunks = stream.bytes_stream();
    chunks.next().await.unwrap().unwrap();
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(60), app.stop()).await;
    assert!(stopped.is_ok(), "shutdown waited for the stream");
}

/// A dashboard range over `profile.max_range_days` is refused with a 400 that says the bound.
#[tokio::test]
async fn the_dashboard_range_is_bounded() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/api/v1/dashboard?from=0001-01-01&to=9999-12-31"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let body = expect_error(response, 400, ErrorCode::InvalidPayload).await;
    assert!(body.error.message.contains("max_range_days"));
    let year = app
        .admin("/api/v1/dashboard?from=2025-03-01&to=2026-03-01")
        .await;
    assert_eq!(year["series"].as_array().unwrap().len(), 366);
}

/// Behind a trusted proxy that writes `X-Forwarded-For`, a client's own `Forwarded: for=` is
/// ignored (rotating it used to escape the limit), and rotating addresses inside one IPv6 /64
/// does not escape it either.
#[tokio::test]
async fn clients_cannot_choose_their_address_or_rotate_inside_a_64() {
    let app = TestApp::spawn_with(|s| {
        s.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        s.rate_limit.per_ip_per_second = 1;
        s.rate_limit.burst = 3;
    })
    .await;
    // Six requests, each from a new browser with the headers `headers(n)`: their statuses.
    let statuses = |headers: fn(u16) -> Vec<(String, String)>| {
        let app = &app;
        async move {
            let mut statuses = Vec::new();
            for n in 0..6 {
                let mut browser = Browser::new();
                browser.headers = headers(n);
                let response = browser.track(app, json!([{"goalId": "Register"}])).await;
                statuses.push(response.status().as_u16());
            }
            statuses
        }
    };
    let chosen = statuses(|n| {
        vec![
            ("forwarded".into(), format!("for=198.51.100.{n}")),
            ("x-forwarded-for".into(), "203.0.113.50".into()),
        ]
    })
    .await;
    assert_eq!(chosen, [200, 200, 200, 429, 429, 429]);
    let rotated = statuses(|n| {
        vec![(
            "x-forwarded-for".into(),
            format!("2001:db8:1:2:{n:x}:{n:x}:{n:x}:1"),
        )]
    })
    .await;
    assert_eq!(rotated, [200, 200, 200, 429, 429, 429]);
    let mut elsewhere = Browser::new();
    elsewhere
        .headers
        .push(("x-forwarded-for".into(), "2001:db8:1:3::1".into()));
    elsewhere
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
}

/// One address holds at most `server.max_connections_per_ip` connections; the others are
/// closed at once, and another address still gets in.
#[tokio::test]
async fn one_address_cannot_hold_every_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(|s| {
        // Loopback is a client here, not a possible proxy.
        s.server.trusted_proxies = vec!["10.9.0.0/16".parse().unwrap()];
        s.server.max_connections_per_ip = 3;
    })
    .await;
    let connect_from = |ip: [u8; 4]| {
        let addr = app.addr;
        async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind((ip, 0).into()).unwrap();
            socket.connect(addr).await.unwrap()
        }
    };
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from([127, 0, 0, 1]).await);
    }
    // The fourth is closed by the server: reading gives end of stream (or a reset).
    let mut fourth = connect_from([127, 0, 0, 1]).await;
    let _ = fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await;
    let mut buf = [0u8; 64];
    let read = fourth.read(&mut buf).await.unwrap_or(0);
    assert_eq!(read, 0, "{:?}", String::from_utf8_lossy(&buf[..read]));
    // Another address is served.
    let mut other = connect_from([127, 0, 0, 2]).await;
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    other.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // One held connection closing frees a place for its address.
    drop(held.pop());
    let mut again = None;
    for _ in 0..500 {
        let mut retry = connect_from([127, 0, 0, 1]).await;
        retry
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        let _ = retry.read_to_string(&mut answer).await;
        if answer.starts_with("HTTP/1.1 200") {
            again = Some(answer);
            break;
        }
        // The server notices the closed connection on its own schedule.
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "the address never got its place back");
}

/// After an erasure, the erased visitor's next request is a 200 that starts a fresh contact
/// (it used to be a 503, losing the batch); an unknown `sc_camp` is counted, not logged.
#[tokio::test]
async fn the_erased_visitor_starts_afresh_in_the_same_request() {
    let app = TestApp::spawn().await;
    let mut visitor = Browser::new();
    visitor
        .track_ok(&app, json!([{"pageId": PAGE, "url": "/"}]))
        .await;
    let erased = app.contact_of(&visitor).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let response = app
        .client
        .delete(app.url(&format!("/api/v1/contacts/{erased}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    visitor
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    let fresh = app.contact_of(&visitor).await;
    assert_ne!(fresh["id"], erased.as_str());
    assert_eq!(fresh["goalCount"], 1, "{fresh}");

    let url = format!("{}&sc_camp={}", app.event_url(), "x".repeat(3000));
    let response = visitor
        .send(
            &app,
            Method::POST,
            &url,
            Some(json!([{"goalId": "Register"}]).to_string()),
            "application/json",
        )
        .await;
    assert_eq!(response.status(), 200);
    // (Counted once: tests/counters.rs.)
}
