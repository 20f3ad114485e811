//! Export and erasure of one contact (GDPR): the export holds everything tracked; erasure
//! leaves none of its identifiers or device ids anywhere in the database file or its WAL
//! (free pages included), keeps the dashboard's counts, and the old cookie starts afresh.

use serde_json::{json, Value};
use tracker_api_types::ErrorCode;
use tracker_core::clock::Clock;

use crate::helpers::{expect_error, Browser, TestApp, PAGE, TOKEN};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The bytes of the database file and its WAL, whatever is in them.
fn raw_files(app: &TestApp) -> Vec<u8> {
    let mut bytes = std::fs::read(&app.db_path).unwrap();
    let mut wal = app.db_path.as_os_str().to_owned();
    wal.push("-wal");
    bytes.extend(std::fs::read(std::path::PathBuf::from(wal)).unwrap_or_default());
    bytes
}

#[tokio::test]
async fn a_contact_is_exported_whole_and_erased_without_a_trace() {
    let app = TestApp::spawn().await;
    if app.sqlite().is_none() {
        // About the SQLite file itself (another store has its own tests of this).
        return;
    }
    let mut ada = Browser::new();
    ada.track_ok(
        &app,
        json!([{"pageId": PAGE, "url": "/pricing"}, {"goalId": "Register"}]),
    )
    .await;
    assert_eq!(ada.flush(&app).await["closed"], true);
    ada.track_ok(
        &app,
        json!([{"pageId": PAGE, "url": "/checkout"}, {"eventId": "Download", "data": "terms.pdf"}]),
    )
    .await;
    let mut other = Browser::new();
    other.track_ok(&app, json!([{"goalId": "Register"}])).await;
    let contact = app.contact_of(&ada).await;
    let id = contact["id"].as_str().unwrap().to_string();
    let device = ada.device().unwrap();
    // An identifier, as identification will store it.
    let email = "ada.erase.me@example.com";
    {
        let conn = app.sqlite().unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .unwrap();
        let blob = uuid::Uuid::parse_str(&id).unwrap();
        conn.execute(
            "INSERT INTO identifiers (source, identifier, contact_id) VALUES ('email', ?1, ?2)",
            rusqlite::params![email, blob],
        )
        .unwrap();
    }

    // Export: everything, in one document.
    let export = app.admin(&format!("/api/v1/contacts/{id}/export")).await;
    let exported = &export["contact"];
    assert_eq!(exported["id"], id.as_str());
    let visits = exported["interactions"].as_array().unwrap();
    assert_eq!(visits.len(), 2, "{export}");
    let tracked: Vec<(String, Value)> = visits
        .iter()
        .flat_map(|v| v["events"].as_array().unwrap().iter())
        .map(|e| (e["type"].as_str().unwrap().to_string(), e["url"].clone()))
        .collect();
    assert_eq!(
        tracked,
        [
            ("pageView".to_string(), json!("/pricing")),
            ("goal".to_string(), json!("/pricing")),
            ("pageView".to_string(), json!("/checkout")),
            ("pageEvent".to_string(), json!("/checkout")),
        ],
        "{export}"
    );
    assert_eq!(visits[1]["events"][1]["data"], "terms.pdf");
    let identifiers: Vec<&str> = exported["identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["identifier"].as_str().unwrap())
        .collect();
    assert!(
        identifiers.contains(&email) && identifiers.contains(&device.as_str()),
        "{export}"
    );
    assert!(export["exportedAt"].is_string());

    let today = app.clock.now().date_naive();
    let dashboard_path = format!("/api/v1/dashboard?from={today}&to={today}");
    let dashboard = app.admin(&dashboard_path).await;
    assert!(
        contains(&raw_files(&app), email.as_bytes()),
        "the identifier is stored before"
    );

    // Erase.
    let response = app
        .client
        .delete(app.url(&format!("/api/v1/contacts/{id}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let erased: Value = response.json().await.unwrap();
    assert_eq!(
        erased,
        json!({"interactions": 2, "events": 4, "devices": 1, "identifiers": 1})
    );
    for path in [
        format!("/api/v1/contacts/{id}"),
        format!("/api/v1/contacts/{id}/export"),
    ] {
        let response = app
            .client
            .get(app.url(&path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        expect_error(response, 404, ErrorCode::NotFound).await;
    }
    let again = app
        .client
        .delete(app.url(&format!("/api/v1/contacts/{id}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    expect_error(again, 404, ErrorCode::NotFound).await;
    assert_eq!(
        app.admin(&dashboard_path).await,
        dashboard,
        "the counts stay"
    );

    // No trace in the file or the WAL, free pages included.
    let raw = raw_files(&app);
    assert!(!contains(&raw, email.as_bytes()), "the identifier is gone");
    assert!(
        !contains(&raw, device.as_bytes()),
        "the device id's text is gone"
    );
    let device_bytes = hex_bytes(&device);
    assert!(
        !contains(&raw, &device_bytes),
        "the device id's bytes are gone"
    );
    let contact_bytes = *uuid::Uuid::parse_str(&id).unwrap().as_bytes();
    let tombstones = {
        let conn = app.sqlite().unwrap();
        conn.query_row(
            "SELECT count(*) FROM erased_contacts WHERE id = ?1",
            [contact_bytes.as_slice()],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
    };
    assert_eq!(tombstones, 1);

    // The old cookie starts a fresh anonymous contact (the visit in progress was erased: that
    // request is refused once, the next one starts anew).
    let _ = ada.track(&app, json!([{"goalId": "Register"}])).await;
    ada.track_ok(&app, json!([{"goalId": "Register"}])).await;
    let fresh = app.contact_of(&ada).await;
    assert_ne!(fresh["id"], id.as_str(), "{fresh}");
    assert!(app.contact_of(&other).await.is_object(), "others untouched");
}

fn hex_bytes(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}
