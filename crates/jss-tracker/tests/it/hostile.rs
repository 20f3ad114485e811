//! Hostile traffic (issue #12): what anyone holding the public API key can send, and what the
//! tracker does with it.

use reqwest::Method;
use serde_json::json;
use tracker_server::api_types::ContactJson;

use crate::helpers::*;

const CHROME_PREFIX: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) ";

/// A device id the tracker never issued (all zeros, shared by every client of a bot farm) is not
/// believed: each client starts a fresh device and contact of its own. Issued ids keep working,
/// and `tracker.accept_unsigned_device_ids` brings the old trust back for an upgrade.
#[tokio::test]
async fn device_ids_the_tracker_never_issued_start_fresh_devices() {
    const ZEROS: &str = "00000000000000000000000000000000";
    let app = TestApp::spawn().await;
    let mut farm = Vec::new();
    for _ in 0..3 {
        let mut bot = Browser::new();
        bot.cookies
            .insert("SC_ANALYTICS_GLOBAL_COOKIE".into(), format!("{ZEROS}|True"));
        bot.track_ok(&app, json!([{"goalId": "Register"}])).await;
        let device = bot.device().expect("a device cookie was set");
        assert_ne!(device, ZEROS);
        farm.push(bot);
    }
    let devices: std::collections::BTreeSet<_> = farm.iter().map(|b| b.device()).collect();
    assert_eq!(devices.len(), 3, "{devices:?}");
    assert_eq!(app.contact_count().await, 3);
    let zeros = app.admin(&format!("/api/v1/contacts?device={ZEROS}")).await;
    assert_eq!(zeros["contacts"], json!([]), "no contact has the chosen id");

    // An issued id stays its device: the next visit lands on the same contact.
    let bot = &mut farm[0];
    let before = bot.device();
    bot.flush(&app).await;
    bot.track_ok(&app, json!([{"goalId": "Register"}])).await;
    assert_eq!(bot.device(), before);
    assert_eq!(app.contact_count().await, 3);
    // One changed digit makes an id the tracker never issued.
    let mut forged = Browser::new();
    let mut digits: Vec<char> = before.clone().unwrap().chars().collect();
    digits[31] = if digits[31] == '0' { '1' } else { '0' };
    let forged_id: String = digits.into_iter().collect();
    forged.cookies.insert(
        "SC_ANALYTICS_GLOBAL_COOKIE".into(),
        format!("{forged_id}|False"),
    );
    forged.track_ok(&app, json!([{"goalId": "Register"}])).await;
    assert_ne!(forged.device(), Some(forged_id));
    assert_eq!(app.contact_count().await, 4);

    // The upgrade switch: unsigned ids are believed again.
    let lenient = TestApp::spawn_with(|s| s.tracker.accept_unsigned_device_ids = true).await;
    for _ in 0..2 {
        let mut bot = Browser::new();
        bot.cookies.insert(
            "SC_ANALYTICS_GLOBAL_COOKIE".into(),
            format!("{ZEROS}|False"),
        );
        bot.track_ok(&lenient, json!([{"goalId": "Register"}]))
            .await;
        assert_eq!(bot.device().as_deref(), Some(ZEROS));
    }
    assert_eq!(lenient.contact_count().await, 1);
}

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
        "é".repeat(20_000)
    );
    browser.headers.push(("user-agent".into(), huge_ua));
    browser
        .track_ok(&app, json!([{"pageId": PAGE, "url": "/"}]))
        .await;
    let contact: ContactJson = app.contact(&browser).await.unwrap();
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
    let body = expect_error(response, 400, ErrorCode::InvalidPayload).await;
    assert!(body.error.message.contains("sc_site"), "{body:?}");
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
        ("sc_site=a&sc_site=b", ErrorCode::InvalidPayload),
        ("sc_camp=a&sc_camp=b", ErrorCode::InvalidPayload),
        ("sc_apikey=again", ErrorCode::InvalidApiKey),
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
        let message = body.error.message.as_str();
        assert!(
            message.contains(name) && message.contains("more than once"),
            "{body:?}"
        );
    }
}

// Raw connections: what a browser would never send, byte by byte.

use std::time::Duration as StdDuration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Only bounds a failing test: every wait below is for an event (an answer, a close).
const DEADLINE: StdDuration = StdDuration::from_secs(60);

fn request_head(content_length: Option<usize>, extra: &str) -> String {
    let length = content_length.map_or(String::new(), |n| format!("Content-Length: {n}\r\n"));
    format!(
        "POST /sitecore/api/jss/track/event?sc_apikey={KEY} HTTP/1.1\r\nHost: tracker\r\n\
         User-Agent: {CHROME}\r\nContent-Type: application/json\r\nConnection: close\r\n\
         {length}{extra}\r\n"
    )
}

/// Everything the server sends until it closes the connection (or the deadline, which fails).
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut out)).await;
    assert!(
        read.is_ok(),
        "the server kept the connection open: {:?}",
        String::from_utf8_lossy(&out)
    );
    String::from_utf8_lossy(&out).into_owned()
}

/// Opens a connection, sends `bytes`, and returns everything answered until the server closes.
/// The server may answer and close before it has read everything (a head over the limit): the
/// bytes are sent beside the read, and a write cut off by the close is no failure.
async fn exchange(app: &TestApp, bytes: &str) -> String {
    let stream = TcpStream::connect(app.addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let bytes = bytes.as_bytes().to_vec();
    let sender = tokio::spawn(async move {
        let _ = write.write_all(&bytes).await;
        write
    });
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let read_all = async {
        loop {
            match read.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let finished = tokio::time::timeout(DEADLINE, read_all).await;
    assert!(
        finished.is_ok(),
        "the server kept the connection open: {:?}",
        String::from_utf8_lossy(&out)
    );
    drop(sender.await);
    String::from_utf8_lossy(&out).into_owned()
}

fn status_and_code(response: &str) -> (u16, String) {
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    let code = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
        .unwrap_or_default();
    (status, code)
}

/// A client that sends its headers a byte at a time, or nothing at all, is cut off after
/// `server.header_timeout` (it used to be kept forever, and idle ones for 300 s).
#[tokio::test]
async fn slow_and_silent_connections_are_closed() {
    let app =
        TestApp::spawn_with(|s| s.server.header_timeout = StdDuration::from_millis(200)).await;
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"POST /sitecore/api/jss/track/event HTTP/1.1\r\nHost: tr")
        .await
        .unwrap();
    read_to_close(&mut silent).await;
    read_to_close(&mut slow).await;
    // A keep-alive connection that goes quiet after a request is closed too.
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    let body = "[]";
    let head = request_head(Some(body.len()), "").replace("Connection: close\r\n", "");
    idle.write_all(format!("{head}{body}").as_bytes())
        .await
        .unwrap();
    let answered = read_to_close(&mut idle).await;
    assert_eq!(status_and_code(&answered).0, 200, "{answered}");
}

/// Over `server.max_connections`, a new connection is closed at once and the open ones are
/// still served; once one closes, new ones are accepted again.
#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once() {
    let app = TestApp::spawn_with(|s| {
        s.server.max_connections = 3;
        s.server.header_timeout = StdDuration::from_secs(3600);
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(app.addr).await.unwrap());
    }
    // Accepted in order: once the server has closed the fourth, the three are its three.
    let mut over = TcpStream::connect(app.addr).await.unwrap();
    assert_eq!(
        read_to_close(&mut over).await,
        "",
        "closed without an answer"
    );
    // The held ones are served.
    let body = "[]";
    held[0]
        .write_all(format!("{}{body}", request_head(Some(body.len()), "")).as_bytes())
        .await
        .unwrap();
    let answered = read_to_close(&mut held[0]).await;
    assert_eq!(status_and_code(&answered).0, 200, "{answered}");
    // That one has closed: a slot is free again (the server frees it as the connection ends,
    // so ask until it has).
    let started = std::time::Instant::now();
    loop {
        let answered = exchange(
            &app,
            &format!("{}{body}", request_head(Some(body.len()), "")),
        )
        .await;
        if status_and_code(&answered).0 == 200 {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "no slot came free");
        tokio::task::yield_now().await;
    }
}

/// A declared length over the limit is refused before the body is read; a malformed chunk is
/// a bad body (400), not a large one; a body that stalls gets 408.
#[tokio::test]
async fn bodies_are_refused_early_and_by_their_real_fault() {
    let app = TestApp::spawn_with(|s| s.server.body_timeout = StdDuration::from_millis(300)).await;
    // 10 MB declared, nothing sent: answered at once.
    let answered = exchange(&app, &request_head(Some(10 * 1024 * 1024), "")).await;
    assert_eq!(
        status_and_code(&answered),
        (413, "payload_too_large".into()),
        "{answered}"
    );

    let chunked = request_head(None, "Transfer-Encoding: chunked\r\n");
    let answered = exchange(&app, &format!("{chunked}zz\r\n[]\r\n0\r\n\r\n")).await;
    assert_eq!(
        status_and_code(&answered),
        (400, "invalid_payload".into()),
        "{answered}"
    );

    let answered = exchange(
        &app,
        &format!("{}[{{\"goalId\":", request_head(Some(100), "")),
    )
    .await;
    assert_eq!(
        status_and_code(&answered),
        (408, "request_timeout".into()),
        "{answered}"
    );
    assert_eq!(app.contact_count().await, 0);
}

/// Bodies being received share `server.max_body_buffer`: when trickling bodies hold it, a new
/// request is answered 503 at once instead of adding to memory; once they are gone, requests
/// are served again.
#[tokio::test]
async fn trickling_bodies_cannot_take_all_the_memory() {
    let app = TestApp::spawn_with(|s| {
        s.server.max_body_buffer = 4 * 1024;
        s.server.body_timeout = StdDuration::from_secs(3600);
    })
    .await;
    // Two bodies of 2 KiB declared, each sent in part: the budget is held.
    let mut trickling = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream
            .write_all(format!("{}[", request_head(Some(2048), "")).as_bytes())
            .await
            .unwrap();
        trickling.push(stream);
    }
    // Wait until the server holds both reservations (its budget says so), not for a time.
    let started = std::time::Instant::now();
    while app.state.body_budget().available_permits() > 0 {
        assert!(
            started.elapsed() < DEADLINE,
            "the bodies never reached the server"
        );
        tokio::task::yield_now().await;
    }
    let mut browser = Browser::new();
    let refused = browser.track(&app, json!([{"goalId": "Register"}])).await;
    expect_error(refused, 503, ErrorCode::Unavailable).await;
    drop(trickling);
    let started = std::time::Instant::now();
    while app.state.body_budget().available_permits() < 4 {
        assert!(
            started.elapsed() < DEADLINE,
            "the budget was never given back"
        );
        tokio::task::yield_now().await;
    }
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
}

/// Money is read from its JSON text, exactly, and refused when it does not fit; negative money,
/// item versions below 1 and timestamps before the floor are refused; nothing of a refused
/// batch is stored.
#[tokio::test]
async fn money_is_exact_and_impossible_values_are_refused() {
    let app = TestApp::spawn_with(|s| s.tracker.limits.max_monetary_value = u64::MAX).await;
    let mut browser = Browser::new();
    // Raw text: `json!` would make the number a float before it is sent.
    let body = r#"[{"outcomeId": "Purchase", "currencyCode": "USD",
                    "monetaryValue": 1234567890123456789.99}]"#;
    let url = app.event_url();
    let response = browser
        .send(
            &app,
            Method::POST,
            &url,
            Some(body.into()),
            "application/json",
        )
        .await;
    assert_eq!(response.status(), 200);
    let contact: ContactJson = app.contact(&browser).await.unwrap();
    let stored = contact.interactions[0].events[0].monetary_value.clone();
    assert_eq!(stored.as_deref(), Some("1234567890123456789.99"));

    for (body, what) in [
        (
            r#"[{"outcomeId": "Purchase", "monetaryValue": 123456789012345678901234567890.5}]"#,
            "does not fit",
        ),
        (
            r#"[{"outcomeId": "Purchase", "monetaryValue": -5}]"#,
            "negative",
        ),
        (
            r#"[{"outcomeId": "Purchase", "monetaryValue": "-0.01"}]"#,
            "negative",
        ),
        (
            r#"[{"pageId": "{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}", "url": "/", "itemVersion": 0}]"#,
            "below 1",
        ),
        (
            r#"[{"goalId": "Register", "timestamp": "1970-01-01T00:00:00Z"}]"#,
            "earliest_timestamp",
        ),
    ] {
        let response = browser
            .send(
                &app,
                Method::POST,
                &url,
                Some(body.into()),
                "application/json",
            )
            .await;
        let error = expect_error(response, 400, ErrorCode::InvalidEvent).await;
        let message = error.error.message.as_str();
        assert!(message.contains(what), "{body}: {message}");
    }
    let contact: ContactJson = app.contact(&browser).await.unwrap();
    assert_eq!(
        contact.interactions[0].events.len(),
        1,
        "nothing refused was stored"
    );
}

/// An outcome definition may allow negative money (refunds) or refuse money altogether.
#[tokio::test]
async fn outcome_definitions_say_what_money_they_take() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("defs.toml");
    std::fs::write(
        &path,
        "[[outcomes]]\nid = \"6f2b4e3c-0000-4000-8000-000000000001\"\nname = \"Refund\"\n\
         negative_money_allowed = true\n\
         [[outcomes]]\nid = \"6f2b4e3c-0000-4000-8000-000000000002\"\nname = \"Lead\"\n\
         refuse_money = true\n",
    )
    .unwrap();
    let app = TestApp::spawn_with(|s| s.definitions.file = Some(path.clone())).await;
    let mut browser = Browser::new();
    browser
        .track_ok(
            &app,
            json!([{"outcomeId": "Refund", "monetaryValue": "-19.99"}, {"outcomeId": "Lead"}]),
        )
        .await;
    let refused = browser
        .track(&app, json!([{"outcomeId": "Lead", "monetaryValue": "5"}]))
        .await;
    let error = expect_error(refused, 400, ErrorCode::InvalidEvent).await;
    assert!(error.error.message.contains("refuse_money"), "{error:?}");
}

/// Per client address and per API key, on the tracking routes themselves (an axum layer added
/// before its routes silently does nothing): 429 `rate_limited` with `Retry-After`, refilled
/// as the (injected) clock moves.
#[tokio::test]
async fn rate_limits_answer_429_per_address_and_per_key() {
    let app = TestApp::spawn_with(|s| {
        s.server.trusted_proxies =
            vec!["127.0.0.1/32".parse().unwrap(), "::1/128".parse().unwrap()];
        s.rate_limit.per_ip_per_second = 1;
        s.rate_limit.burst = 2;
    })
    .await;
    let from = |ip: &str| {
        let mut browser = Browser::new();
        browser.headers.push(("x-forwarded-for".into(), ip.into()));
        browser
    };
    let mut visitor = from("203.0.113.5");
    for _ in 0..2 {
        visitor
            .track_ok(&app, json!([{"goalId": "Register"}]))
            .await;
    }
    let limited = visitor.track(&app, json!([{"goalId": "Register"}])).await;
    assert_eq!(
        limited
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    expect_error(limited, 429, ErrorCode::RateLimited).await;
    // The flush endpoint is limited too.
    let url = app.flush_url();
    let response = visitor
        .send(
            &app,
            Method::POST,
            &url,
            Some("[]".into()),
            "application/json",
        )
        .await;
    expect_error(response, 429, ErrorCode::RateLimited).await;
    // Another address has its own bucket; a second later this one has a token again.
    from("203.0.113.6")
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    app.clock.advance(chrono::Duration::seconds(1));
    visitor
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;

    // Per key: every address together.
    let app = TestApp::spawn_with(|s| {
        s.server.trusted_proxies =
            vec!["127.0.0.1/32".parse().unwrap(), "::1/128".parse().unwrap()];
        s.rate_limit.per_key_per_second = 1;
        s.rate_limit.burst = 3;
    })
    .await;
    for n in 0..3 {
        from(&format!("198.51.100.{n}"))
            .track_ok(&app, json!([{"goalId": "Register"}]))
            .await;
    }
    let limited = from("198.51.100.9")
        .track(&app, json!([{"goalId": "Register"}]))
        .await;
    expect_error(limited, 429, ErrorCode::RateLimited).await;
}

/// Without declared proxies, a loopback or private peer may be a proxy that every visitor
/// shares: it is not limited per address, so the defaults cannot throttle a whole site.
#[tokio::test]
async fn an_undeclared_proxy_is_not_throttled() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limit.per_ip_per_second = 1;
        s.rate_limit.burst = 1;
    })
    .await;
    for _ in 0..10 {
        Browser::new()
            .track_ok(&app, json!([{"goalId": "Register"}]))
            .await;
    }
}

/// Errors keep to the envelope where they used to escape it: a path that does not decode
/// (was `text/plain`), a compressed body (was parsed as JSON bytes).
#[tokio::test]
async fn odd_paths_and_encodings_answer_in_the_envelope() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/api/v1/contacts/%FF"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    expect_error(response, 400, ErrorCode::InvalidPayload).await;

    let mut browser = Browser::new();
    browser
        .headers
        .push(("content-encoding".into(), "gzip".into()));
    let url = app.event_url();
    let gzipped_empty_array = vec![
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x8b, 0x8e, 0x05, 0x00, 0x29,
        0xbb, 0x4c, 0x0d, 0x02, 0x00, 0x00, 0x00,
    ];
    let response = browser
        .send(
            &app,
            Method::POST,
            &url,
            Some(String::from_utf8_lossy(&gzipped_empty_array).into_owned()),
            "application/json",
        )
        .await;
    let body = expect_error(response, 415, ErrorCode::UnsupportedMediaType).await;
    assert!(body.error.message.as_str().contains("gzip"), "{body:?}");
}

/// Requests whose head does not parse are answered by the HTTP layer before any handler: in the
/// envelope with their own code (they used to be a bare 400, 414 or 431 with an empty body).
/// A keep-alive connection's earlier answers are untouched.
#[tokio::test]
async fn malformed_request_heads_answer_in_the_envelope() {
    let app = TestApp::spawn().await;
    let body = r#"[{"goalId":"Register"}]"#;
    for (what, request, status, code) in [
        (
            "a Content-Length that is not a number",
            format!("{}{body}", request_head(None, "Content-Length: 1x\r\n")),
            400,
            ErrorCode::InvalidRequest,
        ),
        (
            "two different Content-Lengths",
            format!(
                "{}{body}",
                request_head(Some(body.len()), "Content-Length: 3\r\n")
            ),
            400,
            ErrorCode::InvalidRequest,
        ),
        (
            "headers over server.max_header_bytes",
            format!(
                "{}{body}",
                request_head(
                    Some(body.len()),
                    &format!("X-Padding: {}\r\n", "a".repeat(70 * 1024))
                )
            ),
            431,
            ErrorCode::HeadersTooLarge,
        ),
        (
            "headers far over server.max_header_bytes",
            format!(
                "{}{body}",
                request_head(
                    Some(body.len()),
                    &format!("X-Padding: {}\r\n", "a".repeat(300 * 1024))
                )
            ),
            431,
            ErrorCode::HeadersTooLarge,
        ),
        (
            "a URL over 64 KiB",
            format!(
                "GET /healthz?{} HTTP/1.1\r\nHost: tracker\r\n\r\n",
                "a".repeat(66 * 1024)
            ),
            414,
            ErrorCode::UriTooLong,
        ),
    ] {
        let response = exchange(&app, &request).await;
        assert_eq!(
            status_and_code(&response),
            (status, code.to_string()),
            "{what}: {response}"
        );
        assert!(
            response.contains("content-type: application/json"),
            "{what}: {response}"
        );
    }
    // A good request, then a bad one, on one connection: the first answer is as it was.
    let good = request_head(Some(body.len()), "").replace("Connection: close\r\n", "");
    let bad = request_head(None, "Content-Length: -1\r\n");
    let response = exchange(&app, &format!("{good}{body}{bad}")).await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    let second = &response[response.find("HTTP/1.1 400").expect("a second answer")..];
    assert_eq!(
        status_and_code(second),
        (400, "invalid_request".to_string()),
        "{second}"
    );
    assert_eq!(
        app.contact_count().await,
        1,
        "only the good request tracked"
    );
}

/// One contact's answer is bounded (one contact's detail used to be a 210 MB answer): a page of
/// its newest interactions, each with its first events, and a cursor for the older ones.
#[tokio::test]
async fn a_contact_answer_is_paged() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new();
    for _ in 0..3 {
        browser
            .track_ok(&app, json!([{"pageId": PAGE, "url": "/"}, {"goalId": "Register"}, {"eventId": "Download"}]))
            .await;
        browser.flush(&app).await;
    }
    let all: ContactJson = app.contact(&browser).await.unwrap();
    assert_eq!(all.interactions.len(), 3);
    let id = &all.summary.id;
    let first: ContactJson = app
        .get_ok(&format!("/api/v1/contacts/{id}?interactions=2&events=1"))
        .await;
    assert_eq!(first.interactions.len(), 2);
    assert_eq!(
        first.interactions[0].id, all.interactions[1].id,
        "the newest, oldest first"
    );
    assert_eq!(first.interactions[0].events.len(), 1);
    assert_eq!(first.interactions[0].events_omitted, 2);
    assert_eq!(first.interactions[0].event_count, 3);
    let cursor = first.older_interactions.clone().expect("older ones remain");
    let older: ContactJson = app
        .get_ok(&format!(
            "/api/v1/contacts/{id}?interactions=2&before={cursor}"
        ))
        .await;
    assert_eq!(older.interactions.len(), 1);
    assert_eq!(older.interactions[0].id, all.interactions[0].id);
    assert_eq!(older.older_interactions, None);
    for bad in [
        "interactions=0",
        "interactions=5000",
        "events=many",
        "before=nope",
        "colour=red",
    ] {
        let response = app
            .client
            .get(app.url(&format!("/api/v1/contacts/{id}?{bad}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        expect_error(response, 400, ErrorCode::InvalidPayload).await;
    }
}
