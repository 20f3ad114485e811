//! Every body shape of the wire contract, section 2, and the batch rules.

use reqwest::Method;
use serde_json::json;

use tracker_api_types::DefinitionsJson;

use crate::helpers::*;

#[tokio::test]
async fn every_body_shape_is_accepted() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new();

    assert_eq!(
        browser.track_ok(&app, json!([])).await,
        json!({"tracked": 0})
    );
    assert_eq!(
        browser
            .track_ok(&app, json!([{"pageId": PAGE, "url": "/"}]))
            .await,
        json!({"tracked": 1})
    );
    assert_eq!(
        browser.track_ok(&app, json!({"eventId": "Download"})).await,
        json!({"tracked": 1})
    );
    // The request-init wrapper of @sitecore-jss/sitecore-jss 22.5+ with a serialising fetcher.
    let wrapper = json!({
        "0": {"goalId": "Register"}, "1": {"eventId": "Download"},
        "method": "POST", "headers": {"Content-Type": "application/json"},
        "body": "[{\"goalId\":\"Register\"},{\"eventId\":\"Download\"}]"
    });
    assert_eq!(browser.track_ok(&app, wrapper).await, json!({"tracked": 2}));
    // navigator.sendBeacon: text/plain, no preflight.
    let url = app.event_url();
    let response = browser
        .send(
            &app,
            Method::POST,
            &url,
            Some(r#"[{"goalId":"Instant Demo"}]"#.into()),
            "text/plain;charset=UTF-8",
        )
        .await;
    assert_eq!(response.status(), 200);

    let contact = app.contact(&browser).await.unwrap();
    let events = &contact.interactions[0].events;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["pageView", "pageEvent", "goal", "pageEvent", "goal"]
    );
    assert_eq!(events[4].definition_name.as_deref(), Some("Instant Demo"));
}

#[tokio::test]
async fn events_attach_to_the_latest_page_view_in_order() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new();
    browser
        .track_ok(&app, json!([{"goalId": "Register"}, {"pageId": PAGE, "url": "/home"}, {"eventId": "Download"}]))
        .await;
    browser
        .track_ok(&app, json!([{"goalId": "Instant Demo"}, {"pageId": "110d559fdea542ea9c1c8a5df7e70ef0", "url": "/two"}, {"outcomeId": "Marketing Lead"}]))
        .await;
    let contact = app.contact(&browser).await.unwrap();
    let interaction = &contact.interactions[0];
    let events = &interaction.events;
    assert_eq!(events.len(), 6);
    assert_eq!(events[0].page_view_id, None, "before any page view");
    assert_eq!(events[2].page_view_id.as_ref(), Some(&events[1].id));
    assert_eq!(
        events[3].page_view_id.as_ref(),
        Some(&events[1].id),
        "later batch, same page"
    );
    assert_eq!(events[5].page_view_id.as_ref(), Some(&events[4].id));
    assert_eq!(events[1].url.as_deref(), Some("/home"));
    assert_eq!(
        events[1].page_id.as_deref(),
        Some("110d559f-dea5-42ea-9c1c-8a5df7e70ef9")
    );
    assert_eq!(
        events[2].url.as_deref(),
        Some("/home"),
        "events show the page they happened on"
    );
    assert_eq!(events[2].page_id, events[1].page_id);
    assert_eq!(events[5].url.as_deref(), Some("/two"));
    assert_eq!(events[0].url, None);
    assert_eq!(interaction.page_view_count, 2);
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event.id.len(), 36, "event {i} has an id");
    }
}

#[tokio::test]
async fn a_batch_with_one_bad_element_stores_nothing() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new();
    let response = browser
        .track(
            &app,
            json!([{"pageId": PAGE, "url": "/"}, {"goalId": "Register"}, {"goalId": "Regster"}]),
        )
        .await;
    let body = expect_error(response, 400, ErrorCode::UnknownDefinition).await;
    assert_eq!(body.error.index, Some(2));
    assert!(body.error.message.contains("goal 'Regster' is not defined"));
    assert_eq!(app.contact_count().await, 0, "no contact was created");

    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    let response = browser
        .track(
            &app,
            json!([{"eventId": "Download"}, {"outcomeId": "Opportunity", "monetaryValue": "lots"}]),
        )
        .await;
    let body = expect_error(response, 400, ErrorCode::InvalidEvent).await;
    assert_eq!(body.error.index, Some(1));
    let contact = app.contact(&browser).await.unwrap();
    assert_eq!(
        contact.interactions[0].events.len(),
        1,
        "only the earlier batch"
    );
    assert_eq!(contact.interactions[0].engagement_value, 50);
}

#[tokio::test]
async fn ids_resolve_by_guid_in_any_spelling_or_by_name() {
    let app = TestApp::spawn().await;
    let defs: DefinitionsJson = app.get_ok("/api/v1/definitions").await;
    let register = defs.goals.iter().find(|g| g.name == "Register").unwrap();
    let id = register.id.clone();
    let mut browser = Browser::new();
    browser
        .track_ok(
            &app,
            json!([
                {"goalId": id},
                {"goalId": format!("{{{}}}", id.to_uppercase())},
                {"goalId": id.replace('-', "")},
                {"goalId": "rEgIsTeR"},
            ]),
        )
        .await;
    let contact = app.contact(&browser).await.unwrap();
    for event in &contact.interactions[0].events {
        assert_eq!(event.definition_id.as_deref(), Some(id.as_str()));
        assert_eq!(event.definition_name.as_deref(), Some("Register"));
    }
}

#[tokio::test]
async fn every_field_is_stored() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new();
    let url = format!(
        "{}&sc_site=website&sc_camp=Spring%20Sale&other=ignored",
        app.event_url()
    );
    let body = json!([
        {"pageId": PAGE, "url": "/products?id=1", "language": "en", "itemVersion": 3, "referrer": "https://google.com/"},
        {"eventId": "Download", "data": "brochure.pdf", "dataKey": "/media/brochure.pdf", "text": "Brochure", "value": 2.5, "custom1": {"nested": true}},
        {"outcomeId": "Purchase", "monetaryValue": 1234.5678, "currencyCode": "eur"},
        {"outcomeId": "Opportunity", "monetaryValue": "19.99"},
        {"campaignId": "Test Campaign", "timestamp": "2026-03-01T08:30:00Z"},
    ]);
    let response = browser
        .send(
            &app,
            Method::POST,
            &url,
            Some(body.to_string()),
            "application/json",
        )
        .await;
    assert_eq!(response.status(), 200);
    let contact = app.contact(&browser).await.unwrap();
    let interaction = &contact.interactions[0];
    assert_eq!(interaction.site_name.as_deref(), Some("website"));
    assert_eq!(
        interaction.campaign.as_ref().map(|c| c.name.as_str()),
        Some("Test Campaign"),
        "the last campaign triggered"
    );
    let events = &interaction.events;
    assert_eq!(events[0].kind, "campaign", "sc_camp comes first");
    assert_eq!(events[0].definition_name.as_deref(), Some("Spring Sale"));
    let page = &events[1];
    assert_eq!(page.language.as_deref(), Some("en"));
    assert_eq!(page.item_version, Some(3));
    assert_eq!(page.referrer.as_deref(), Some("https://google.com/"));
    assert_eq!(page.url.as_deref(), Some("/products?id=1"));
    let download = &events[2];
    assert_eq!(download.data.as_deref(), Some("brochure.pdf"));
    assert_eq!(download.data_key.as_deref(), Some("/media/brochure.pdf"));
    assert_eq!(download.text.as_deref(), Some("Brochure"));
    assert_eq!(download.value, Some(2.5));
    assert_eq!(
        serde_json::Value::Object(download.custom_values.clone()),
        json!({"custom1": {"nested": true}})
    );
    assert_eq!(events[3].monetary_value.as_deref(), Some("1234.5678"));
    assert_eq!(events[3].currency_code.as_deref(), Some("EUR"));
    assert_eq!(events[4].monetary_value.as_deref(), Some("19.99"));
    assert_eq!(events[5].timestamp, "2026-03-01T08:30:00.000Z");
    assert_eq!(
        events[2].timestamp, "2026-03-01T09:00:00.000Z",
        "time of receipt"
    );
}
