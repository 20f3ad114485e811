//! Identification over HTTP: `{"identifier", "source"}` makes a contact known; the same
//! identifier from a second device merges the two contacts (also when both send at the same
//! moment), with all their visits, correct totals and no event doubled, and either device's
//! later requests land on the survivor. The admin API gives identifiers too.

use serde_json::{json, Value};

use crate::helpers::{expect_error, Browser, TestApp, PAGE, TOKEN};

fn events(contact: &Value) -> usize {
    contact["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["events"].as_array().unwrap().len())
        .sum()
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
    let (a, b) = (app.contact_of(&laptop).await, app.contact_of(&phone).await);
    assert_ne!(a["id"], b["id"]);
    let sign_in = json!([{"identifier": "ada@example.com", "source": "email"}]);
    laptop.track_ok(&app, sign_in.clone()).await;
    phone.track_ok(&app, sign_in).await;

    let merged = app.contact_of(&phone).await;
    assert_eq!(merged["id"], a["id"], "the known contact survives");
    assert_eq!(app.contact_of(&laptop).await["id"], a["id"]);
    assert_eq!(merged["interactionCount"], 2, "{merged}");
    assert_eq!(
        events(&merged),
        6,
        "2 + 2 + 2 identifications, none doubled: {merged}"
    );
    assert_eq!(merged["goalCount"], 1);
    assert_eq!(merged["devices"].as_array().unwrap().len(), 2);
    let response = app
        .client
        .get(app.url(&format!("/api/v1/contacts/{}", b["id"].as_str().unwrap())))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found").await;
    // Both devices keep landing on the survivor.
    phone.track_ok(&app, json!([{"goalId": "Register"}])).await;
    let merged = app.contact_of(&phone).await;
    assert_eq!(merged["goalCount"], 2, "{merged}");
    assert_eq!(events(&merged), 7);
    let found = app.admin("/api/v1/contacts?q=ada%40example.com").await;
    assert_eq!(found["total"], 1, "{found}");

    // Bad elements are refused with their index.
    let refused = laptop
        .track(&app, json!([{"goalId": "Register"}, {"identifier": "x"}]))
        .await;
    let body = expect_error(refused, 400, "invalid_event").await;
    assert_eq!(body["error"]["index"], 1, "{body}");
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
        let sign_in = json!([{"identifier": format!("bob{round}@example.com"), "source": "email"}]);
        let [first, second] = &mut browsers;
        let (x, y) = tokio::join!(
            first.track(&app, sign_in.clone()),
            second.track(&app, sign_in.clone())
        );
        assert_eq!((x.status().as_u16(), y.status().as_u16()), (200, 200));
        let (a, b) = (
            app.contact_of(&browsers[0]).await,
            app.contact_of(&browsers[1]).await,
        );
        assert_eq!(a["id"], b["id"], "round {round}");
        assert_eq!(a["interactionCount"], 2);
        assert_eq!(events(&a), 4, "round {round}: {a}");
    }
}

#[tokio::test]
async fn the_admin_api_gives_identifiers_and_merges_too() {
    let app = TestApp::spawn().await;
    let (mut one, mut two) = (Browser::new(), Browser::new());
    one.track_ok(&app, json!([{"goalId": "Register"}])).await;
    two.track_ok(&app, json!([{"goalId": "Register"}])).await;
    let (a, b) = (app.contact_of(&one).await, app.contact_of(&two).await);
    let post = |id: &Value, body: Value| {
        let app = &app;
        let url = app.url(&format!(
            "/api/v1/contacts/{}/identifiers",
            id.as_str().unwrap()
        ));
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
    let answer: Value = post(&a["id"], json!({"source": "crm", "identifier": "C-1"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer, json!({"contactId": a["id"], "merged": false}));
    let answer: Value = post(&b["id"], json!({"source": "crm", "identifier": "C-1"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer, json!({"contactId": a["id"], "merged": true}));
    assert_eq!(app.contact_of(&two).await["id"], a["id"]);
    let bad = post(&a["id"], json!({"source": "", "identifier": "C-2"})).await;
    expect_error(bad, 400, "invalid_payload").await;
    let unknown = post(
        &json!("0d1c2b3a-4f5e-4d6c-8b7a-695847362514"),
        json!({"source": "crm", "identifier": "C-3"}),
    )
    .await;
    expect_error(unknown, 404, "not_found").await;
}
