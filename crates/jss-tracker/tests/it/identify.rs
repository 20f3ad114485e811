//! Identification over HTTP: `{"identifier", "source"}` makes a contact known; the same
//! identifier from a second device merges the two contacts (also when both send at the same
//! moment), with all their visits, correct totals and no event doubled, and either device's
//! later requests land on the survivor. The admin API gives identifiers too.

use reqwest::Method;
use serde_json::{json, Value};
use tracker_api_types::ErrorCode;
use tracker_core::clock::Clock;

use tracker_api_types::{ContactJson, ContactList};

use crate::helpers::{
    expect_error, signed_identification, Browser, TestApp, CHROME, KEY, PAGE, TOKEN,
};

fn events(contact: &ContactJson) -> usize {
    contact.interactions.iter().map(|i| i.events.len()).sum()
}

#[tokio::test]
async fn the_same_identifier_on_two_devices_merges_their_contacts() {
    let app = TestApp::spawn().await;
    let (mut laptop, mut phone) = (Browser::new(), Browser::new());
    laptop
        .track_ok(
            &app,
            json!([{"pageId": PAGE, "url": "/"}, {"goalId": "Register"}]),
        )
        .await;
    phone
        .track_ok(
            &app,
            json!([{"pageId": PAGE, "url": "/m"}, {"eventId": "Download"}]),
        )
        .await;
    let (a, b) = (
        app.contact(&laptop).await.unwrap(),
        app.contact(&phone).await.unwrap(),
    );
    assert_ne!(a.summary.id, b.summary.id);
    let sign_in = json!([signed_identification(
        "email",
        "ada@example.com",
        app.clock.now()
    )]);
    laptop.track_ok(&app, sign_in.clone()).await;
    phone.track_ok(&app, sign_in).await;

    let merged = app.contact(&phone).await.unwrap();
    assert_eq!(
        merged.summary.id, a.summary.id,
        "the known contact survives"
    );
    assert_eq!(app.contact(&laptop).await.unwrap().summary.id, a.summary.id);
    assert_eq!(merged.summary.interaction_count, 2, "{merged:?}");
    assert_eq!(
        events(&merged),
        6,
        "2 + 2 + 2 identifications, none doubled: {merged:?}"
    );
    assert_eq!(merged.summary.goal_count, 1);
    assert_eq!(merged.devices.len(), 2);
    let response = app
        .client
        .get(app.url(&format!("/api/v1/contacts/{}", b.summary.id)))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    expect_error(response, 404, ErrorCode::NotFound).await;
    // Both devices keep landing on the survivor.
    phone.track_ok(&app, json!([{"goalId": "Register"}])).await;
    let merged = app.contact(&phone).await.unwrap();
    assert_eq!(merged.summary.goal_count, 2, "{merged:?}");
    assert_eq!(events(&merged), 7);
    let found: ContactList = app.get_ok("/api/v1/contacts?q=ada%40example.com").await;
    assert_eq!(found.total, 1, "{found:?}");

    // Bad elements are refused with their index.
    let refused = laptop
        .track(&app, json!([{"goalId": "Register"}, {"identifier": "x"}]))
        .await;
    let body = expect_error(refused, 400, ErrorCode::InvalidEvent).await;
    assert_eq!(body.error.index, Some(1), "{body:?}");
}

#[tokio::test]
async fn two_devices_identifying_at_the_same_moment_become_one_contact() {
    let app = TestApp::spawn().await;
    for round in 0..5 {
        let mut browsers = [Browser::new(), Browser::new()];
        for browser in &mut browsers {
            browser
                .track_ok(&app, json!([{"pageId": PAGE, "url": "/"}]))
                .await;
        }
        let sign_in = json!([signed_identification(
            "email",
            &format!("bob{round}@example.com"),
            app.clock.now()
        )]);
        let [first, second] = &mut browsers;
        let (x, y) = tokio::join!(
            first.track(&app, sign_in.clone()),
            second.track(&app, sign_in.clone())
        );
        assert_eq!((x.status().as_u16(), y.status().as_u16()), (200, 200));
        let (a, b) = (
            app.contact(&browsers[0]).await.unwrap(),
            app.contact(&browsers[1]).await.unwrap(),
        );
        assert_eq!(a.summary.id, b.summary.id, "round {round}");
        assert_eq!(a.summary.interaction_count, 2);
        assert_eq!(events(&a), 4, "round {round}: {a:?}");
    }
}

#[tokio::test]
async fn the_admin_api_gives_identifiers_and_merges_too() {
    let app = TestApp::spawn().await;
    let (mut one, mut two) = (Browser::new(), Browser::new());
    one.track_ok(&app, json!([{"goalId": "Register"}])).await;
    two.track_ok(&app, json!([{"goalId": "Register"}])).await;
    let (a, b) = (
        app.contact(&one).await.unwrap().summary.id,
        app.contact(&two).await.unwrap().summary.id,
    );
    let post = |id: &str, body: Value| {
        let app = &app;
        let url = app.url(&format!("/api/v1/contacts/{id}/identifiers"));
        async move {
            app.client
                .post(url)
                .bearer_auth(TOKEN)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let answer: Value = post(&a, json!({"source": "crm", "identifier": "C-1"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer, json!({"contactId": a, "merged": false}));
    let answer: Value = post(&b, json!({"source": "crm", "identifier": "C-1"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer, json!({"contactId": a, "merged": true}));
    assert_eq!(app.contact(&two).await.unwrap().summary.id, a);
    let bad = post(&a, json!({"source": "", "identifier": "C-2"})).await;
    expect_error(bad, 400, ErrorCode::InvalidPayload).await;
    let unknown = post(
        "0d1c2b3a-4f5e-4d6c-8b7a-695847362514",
        json!({"source": "crm", "identifier": "C-3"}),
    )
    .await;
    expect_error(unknown, 404, ErrorCode::NotFound).await;
}

/// A browser's unsigned (or wrongly signed, or expired) identification is refused (403) and
/// merges nothing, stores nothing of its batch: the victim's profile stays the victim's. A
/// correctly signed one merges; emails that differ in case and spaces are one person; a batch
/// identifies once.
#[tokio::test]
async fn only_identifications_the_app_server_vouched_for_merge() {
    let app = TestApp::spawn().await;
    let now = app.clock.now();
    let (mut victim, mut attacker) = (Browser::new(), Browser::new());
    victim
        .track_ok(
            &app,
            json!([{"pageId": PAGE, "url": "/"}, {"goalId": "Register"},
                   signed_identification("email", "Victim@Example.com", now)]),
        )
        .await;
    attacker
        .track_ok(&app, json!([{"pageId": PAGE, "url": "/x"}]))
        .await;
    let victim_id = app.contact_of(&victim).await["id"].clone();
    let attacker_id = app.contact_of(&attacker).await["id"].clone();

    let mut wrong = signed_identification("email", "victim@example.com", now);
    wrong["signature"] = json!("00".repeat(32));
    let mut expired = signed_identification("email", "victim@example.com", now);
    expired["expires"] = json!(now.timestamp() - 1);
    for claim in [
        json!({"identifier": "victim@example.com", "source": "email"}),
        wrong,
        expired,
    ] {
        let refused = attacker
            .track(&app, json!([{"goalId": "Register"}, claim]))
            .await;
        let body = expect_error(refused, 403, ErrorCode::UntrustedIdentification).await;
        assert_eq!(body.error.index, Some(1), "{body:?}");
    }
    let attacker_now = app.contact_of(&attacker).await;
    assert_eq!(attacker_now["id"], attacker_id, "nothing merged");
    assert_eq!(
        attacker_now["goalCount"], 0,
        "nothing of the batches stored"
    );
    assert_eq!(app.contact_of(&victim).await["id"], victim_id);
    assert_eq!(app.contact_count().await, 2);

    // Two identifications in one batch: refused, whoever signed them.
    let two = attacker
        .track(
            &app,
            json!([
                signed_identification("email", "a@x.com", now),
                signed_identification("email", "b@x.com", now)
            ]),
        )
        .await;
    expect_error(two, 400, ErrorCode::InvalidEvent).await;

    // The victim on a second device, signed by the app server, in another case: one contact.
    let mut phone = Browser::new();
    phone
        .track_ok(
            &app,
            json!([signed_identification("email", " victim@EXAMPLE.com ", now)]),
        )
        .await;
    assert_eq!(app.contact_of(&phone).await["id"], victim_id);
    let found = app.admin("/api/v1/contacts?q=victim%40example.com").await;
    assert_eq!(found["total"], 1, "{found}");
}

/// A server-side key (`server_side = true`) identifies without a signature, and is refused
/// from a browser origin; `identification.trust = "client"` believes browsers, and `/visitor`
/// then shows only the caller's own device's visits.
#[tokio::test]
async fn server_side_keys_and_the_client_trust_opt_out() {
    const SERVER_KEY: &str = "server-key-0123456789";
    let app = TestApp::spawn_with(|s| {
        s.api_keys.push(tracker_server::config::ApiKeySettings {
            name: "ssr".into(),
            key: SERVER_KEY.to_string().into(),
            cors_origins: Vec::new(),
            identification_secret: None,
            server_side: true,
        });
    })
    .await;
    let url = app.url(&format!(
        "/sitecore/api/jss/track/event?sc_apikey={SERVER_KEY}"
    ));
    let body = json!([{"identifier": "ssr@example.com", "source": "email"}]).to_string();
    let mut server = Browser {
        origin: None,
        ..Browser::new()
    };
    let response = server
        .send(
            &app,
            Method::POST,
            &url,
            Some(body.clone()),
            "application/json",
        )
        .await;
    assert_eq!(response.status(), 200);
    let found = app.admin("/api/v1/contacts?q=ssr%40example.com").await;
    assert_eq!(found["total"], 1, "{found}");
    let mut browser = Browser::new();
    let refused = browser
        .send(&app, Method::POST, &url, Some(body), "application/json")
        .await;
    expect_error(refused, 403, ErrorCode::OriginNotAllowed).await;

    let open = TestApp::spawn_with(|s| {
        s.identification.trust = tracker_server::config::IdentificationTrustSetting::Client;
        s.personalization.enabled = true;
    })
    .await;
    let (mut laptop, mut attacker) = (Browser::new(), Browser::new());
    laptop
        .track_ok(
            &open,
            json!([{"goalId": "Register"}, {"identifier": "v@x.com", "source": "email"}]),
        )
        .await;
    attacker
        .track_ok(&open, json!([{"identifier": "V@x.com", "source": "email"}]))
        .await;
    assert_eq!(open.contact_count().await, 1, "browsers are believed");
    let visitor = open
        .client
        .get(open.url(&format!("/sitecore/api/jss/track/visitor?sc_apikey={KEY}")))
        .header("user-agent", CHROME)
        .header(
            "cookie",
            format!(
                "SC_ANALYTICS_GLOBAL_COOKIE={}",
                attacker.cookies["SC_ANALYTICS_GLOBAL_COOKIE"]
            ),
        )
        .send()
        .await
        .unwrap();
    let me: Value = visitor.json().await.unwrap();
    assert_eq!(me["visits"], 1, "{me}");
    assert_eq!(
        me["goals"],
        json!([]),
        "the laptop's goal is not shown: {me}"
    );
    assert_eq!(me["goalCount"], 0, "{me}");
}
