//! The admin API: token, definitions, contact lookups.

use serde_json::json;
use tracker_server::api_types::{
    ContactJson, ContactList, DashboardJson, DefinitionsJson, OpenInteractionList,
};

use crate::helpers::*;

#[tokio::test]
async fn the_admin_api_requires_the_token() {
    let app = TestApp::spawn().await;
    for path in [
        "/api/v1/contacts",
        "/api/v1/definitions",
        "/api/v1/contacts/00000000-0000-0000-0000-000000000000",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        expect_error(response, 401, ErrorCode::Unauthorized).await;
        let response = app
            .client
            .get(app.url(path))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        expect_error(response, 401, ErrorCode::Unauthorized).await;
    }
    let response = app
        .client
        .get(app.url("/api/v1/contacts/00000000-0000-0000-0000-000000000000"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    expect_error(response, 404, ErrorCode::NotFound).await;
}

#[tokio::test]
async fn definitions_list_every_kind_with_ids_names_and_points() {
    let app = TestApp::spawn().await;
    let defs: DefinitionsJson = app.get_ok("/api/v1/definitions").await;
    let names = |list: &[tracker_server::api_types::DefinitionJson]| -> Vec<String> {
        list.iter().map(|d| d.name.clone()).collect()
    };
    assert!(names(&defs.page_events).contains(&"Download".to_string()));
    assert!(names(&defs.goals).contains(&"Instant Demo".to_string()));
    assert!(names(&defs.goals).contains(&"Register".to_string()));
    assert!(names(&defs.outcomes).contains(&"Opportunity".to_string()));
    assert!(names(&defs.outcomes).contains(&"Marketing Lead".to_string()));
    assert!(!defs.campaigns.is_empty());
    for def in &defs.goals {
        assert!(uuid::Uuid::parse_str(&def.id).is_ok(), "{}", def.id);
        assert_eq!(def.id.len(), 36);
    }
}

#[tokio::test]
async fn a_custom_definitions_file_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("defs.toml");
    std::fs::write(
        &path,
        "[[goals]]\nid = \"6f2b4e3c-0000-4000-8000-000000000001\"\nname = \"Signup\"\npoints = 7\n",
    )
    .unwrap();
    let app = TestApp::spawn_with(|s| s.definitions.file = Some(path.clone())).await;
    let mut browser = Browser::new();
    browser.track_ok(&app, json!([{"goalId": "signup"}])).await;
    expect_error(
        browser.track(&app, json!([{"goalId": "Register"}])).await,
        400,
        ErrorCode::UnknownDefinition,
    )
    .await;
    let contact: ContactJson = serde_json::from_value(app.contact_of(&browser).await).unwrap();
    assert_eq!(contact.interactions[0].engagement_value, 7);
}

#[tokio::test]
async fn contacts_are_found_by_device_and_show_devices_and_identifiers() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new();
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    let device = browser.device().unwrap();
    let contact: ContactJson = serde_json::from_value(app.contact_of(&browser).await).unwrap();
    assert_eq!(contact.devices[0].id, device);
    assert_eq!(contact.identifiers[0].source, "SC_ANALYTICS_GLOBAL_COOKIE");
    assert_eq!(contact.identifiers[0].identifier, device);
    assert_eq!(contact.summary.interaction_count, 1);
    let none = app
        .admin("/api/v1/contacts?device=0123456789abcdef0123456789abcdef")
        .await;
    assert_eq!(
        none,
        json!({"contacts": [], "total": 0, "nextCursor": null})
    );
    let response = app
        .client
        .get(app.url("/api/v1/contacts?device=xyz"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    expect_error(response, 400, ErrorCode::InvalidPayload).await;
}

#[tokio::test]
async fn open_interactions_are_listed_live_with_their_totals() {
    let app = TestApp::spawn().await;
    let mut staying = Browser::new();
    staying
        .track_ok(
            &app,
            json!([{"pageId": PAGE, "url": "/"}, {"goalId": "Register"}]),
        )
        .await;
    app.clock.advance(chrono::Duration::seconds(30));
    staying
        .track_ok(&app, json!([{"eventId": "Download"}]))
        .await;
    let mut leaving = Browser::new();
    leaving
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    leaving.flush(&app).await;

    let list: OpenInteractionList = app.get_ok("/api/v1/interactions?open=true").await;
    assert_eq!(list.interactions.len(), 1, "the flushed visit is not open");
    let visit = &list.interactions[0];
    assert_eq!(visit.device_id, staying.device().unwrap());
    assert_eq!(
        visit.engagement_value, 55,
        "Register 50 and Download 5, as they stand"
    );
    assert_eq!((visit.page_view_count, visit.event_count), (1, 3));
    assert_eq!(visit.duration_seconds, 30);

    for bad in ["", "?open=false", "?open=yes", "?open=true&colour=red"] {
        let response = app
            .client
            .get(app.url(&format!("/api/v1/interactions{bad}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        expect_error(response, 400, ErrorCode::InvalidPayload).await;
    }
    let response = app
        .client
        .get(app.url("/api/v1/interactions?open=true"))
        .send()
        .await
        .unwrap();
    expect_error(response, 401, ErrorCode::Unauthorized).await;
}

#[tokio::test]
async fn contacts_are_searched_and_paged_and_bad_parameters_refused() {
    let app = TestApp::spawn().await;
    let mut browsers = Vec::new();
    for i in 0..5 {
        let mut browser = Browser::new();
        let events = if i % 2 == 0 {
            json!([{"pageId": PAGE, "url": "/"}, {"goalId": "Register"}])
        } else {
            json!([{"pageId": PAGE, "url": "/"}])
        };
        let url = if i == 4 {
            format!("{}&sc_site=shop", app.event_url())
        } else {
            app.event_url()
        };
        browser
            .send(
                &app,
                reqwest::Method::POST,
                &url,
                Some(events.to_string()),
                "application/json",
            )
            .await;
        app.clock.advance(chrono::Duration::minutes(1));
        browsers.push(browser);
    }
    let all: ContactList = app.get_ok("/api/v1/contacts?limit=2").await;
    assert_eq!(all.total, 5);
    assert_eq!(all.contacts.len(), 2);
    let mut seen: Vec<String> = Vec::new();
    let mut page = all;
    loop {
        seen.extend(page.contacts.iter().map(|c| c.id.clone()));
        match page.next_cursor {
            Some(cursor) => {
                page = app
                    .get_ok(&format!("/api/v1/contacts?limit=2&cursor={cursor}"))
                    .await
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "every contact once: {seen:?}");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5);

    let search = |query: String| {
        let app = &app;
        async move {
            app.get_ok::<ContactList>(&format!("/api/v1/contacts?{query}"))
                .await
        }
    };
    let by_goal = search("goal=register".into()).await;
    assert_eq!(by_goal.total, 3, "goal by name, any case");
    assert_eq!(by_goal.contacts[0].engagement_value, 50);
    assert_eq!(by_goal.contacts[0].goal_count, 1);
    assert_eq!(search("site=shop".into()).await.total, 1);
    let device = browsers[1].device().unwrap();
    let by_device = search(format!("q={device}")).await;
    assert_eq!(by_device.total, 1);
    let today = search("from=2026-03-01&to=2026-03-01".into()).await;
    assert_eq!(today.total, 5);
    assert_eq!(search("to=2026-02-28".into()).await.total, 0);

    for bad in [
        "limit=0",
        "limit=5000",
        "limit=ten",
        "from=2026-13-01",
        "from=2026-03-02&to=2026-03-01",
        "goal=Nope",
        "campaign=Register",
        "cursor=garbage",
        "device=xyz",
        "q=",
        "colour=red",
    ] {
        let response = app
            .client
            .get(app.url(&format!("/api/v1/contacts?{bad}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        expect_error(response, 400, ErrorCode::InvalidPayload).await;
    }

    let hidden = TestApp::spawn_with(|s| s.profile.index_anonymous_contacts = false).await;
    let mut anonymous = Browser::new();
    anonymous
        .track_ok(&hidden, json!([{"goalId": "Register"}]))
        .await;
    let list: ContactList = hidden.get_ok("/api/v1/contacts").await;
    assert_eq!(list.total, 0, "anonymous contacts are not found: {list:?}");
}

#[tokio::test]
async fn the_dashboard_equals_what_was_tracked() {
    let app = TestApp::spawn().await;
    // Three visitors on 2026-03-01 (the test clock), one on 03-02.
    let mut bounce = Browser::new();
    bounce
        .track_ok(&app, json!([{"pageId": PAGE, "url": "/"}]))
        .await;
    bounce.flush(&app).await;
    let mut buyer = Browser::new();
    buyer
        .track_ok(
            &app,
            json!([
                {"pageId": PAGE, "url": "/"},
                {"campaignId": "Spring Sale"},
                {"pageId": PAGE, "url": "/pricing"},
                {"goalId": "Register"},
                {"outcomeId": "Purchase", "currencyCode": "USD", "monetaryValue": "1000.25"},
                {"outcomeId": "Purchase", "currencyCode": "USD", "monetaryValue": 337.25},
                {"outcomeId": "Purchase", "currencyCode": "EUR", "monetaryValue": 10}
            ]),
        )
        .await;
    let mut reader = Browser::new();
    reader
        .track_ok(
            &app,
            json!([{"pageId": PAGE, "url": "/pricing"}, {"eventId": "Download"}]),
        )
        .await;
    app.clock.advance(chrono::Duration::days(1));
    let mut tomorrow = Browser::new();
    tomorrow
        .track_ok(&app, json!([{"pageId": PAGE, "url": "/"}, {"goalId": "Register"}, {"goalId": "Instant Demo"}]))
        .await;

    let d: DashboardJson = app
        .get_ok("/api/v1/dashboard?from=2026-02-28&to=2026-03-02")
        .await;
    assert_eq!((d.visits, d.page_views), (4, 5));
    assert_eq!(
        d.bounce_rate, 0.25,
        "one visit of four had one page view and nothing else"
    );
    let engagement = 50 + 3 * 100 + 5 + 50 + 20;
    assert_eq!(d.engagement_value, engagement);
    assert_eq!(d.engagement_value_per_visit, engagement as f64 / 4.0);
    let goals: Vec<_> = d
        .goals
        .iter()
        .map(|g| (g.name.as_str(), g.conversions, g.conversion_rate))
        .collect();
    assert_eq!(goals, [("Register", 2, 0.5), ("Instant Demo", 1, 0.25)]);
    assert_eq!(
        (d.outcomes[0].name.as_str(), d.outcomes[0].count),
        ("Purchase", 3)
    );
    let money: Vec<_> = d.outcomes[0]
        .monetary_value
        .iter()
        .map(|(c, v)| (c.as_str(), v.as_str()))
        .collect();
    assert_eq!(money, [("EUR", "10.00"), ("USD", "1337.50")]);
    let campaigns: Vec<_> = d
        .campaigns
        .iter()
        .map(|c| (c.name.as_str(), c.visits))
        .collect();
    assert_eq!(campaigns, [("Spring Sale", 1)]);
    let pages: Vec<_> = d
        .top_pages
        .iter()
        .map(|p| (p.url.as_str(), p.page_views))
        .collect();
    assert_eq!(pages, [("/", 3), ("/pricing", 2)]);
    let series: Vec<_> = d
        .series
        .iter()
        .map(|s| (s.date.as_str(), s.visits, s.page_views, s.conversions))
        .collect();
    assert_eq!(
        series,
        [
            ("2026-02-28", 0, 0, 0),
            ("2026-03-01", 3, 4, 1),
            ("2026-03-02", 1, 1, 2)
        ]
    );
    // The default range ends today (the clock's 03-02) and reaches back 30 days.
    let default: DashboardJson = app.get_ok("/api/v1/dashboard").await;
    assert_eq!(
        (default.from.as_str(), default.to.as_str()),
        ("2026-02-01", "2026-03-02")
    );
    assert_eq!(default.visits, 4);
    let other_site: DashboardJson = app.get_ok("/api/v1/dashboard?site=shop").await;
    assert_eq!(other_site.visits, 0);
    for bad in [
        "from=yesterday",
        "from=2026-03-02&to=2026-03-01",
        "site=",
        "colour=red",
    ] {
        let response = app
            .client
            .get(app.url(&format!("/api/v1/dashboard?{bad}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        expect_error(response, 400, ErrorCode::InvalidPayload).await;
    }
}
