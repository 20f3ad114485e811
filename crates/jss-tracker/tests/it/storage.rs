//! Durability: restart with an open interaction, and what the file holds.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn an_open_interaction_survives_a_restart_and_continues() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new();
    browser
        .track_ok(
            &app,
            json!([{"pageId": PAGE, "url": "/before"}, {"goalId": "Register"}]),
        )
        .await;
    let settings_dir = app.dir.clone();
    let before = app.contact(&browser).await;
    let (dir, clock) = app.stop().await;

    let settings = test_settings(settings_dir.path());
    let app = TestApp::start(settings, dir, clock).await;
    // Nothing is loaded at start (the server listens at once, whatever the store holds): the
    // open interaction waits in the store for its visitor. (Sessions in Redis outlive the
    // process: there it is still live.)
    let in_memory = app.state.settings().sessions.backend == "memory";
    assert_eq!(
        app.state.sessions().count().await.unwrap(),
        usize::from(!in_memory)
    );
    assert_eq!(app.state.store().open_count().await.unwrap(), 1);
    let after = app.contact(&browser).await;
    assert_eq!(after, before, "nothing lost");

    // The same session continues the same interaction, on the same page.
    browser
        .track_ok(&app, json!([{"eventId": "Download"}]))
        .await;
    assert_eq!(
        app.state.sessions().count().await.unwrap(),
        1,
        "resumed on its visitor's return"
    );
    let contact = app.contact(&browser).await.unwrap();
    let interactions = &contact.interactions;
    assert_eq!(interactions.len(), 1);
    let events = &interactions[0].events;
    assert_eq!(events.len(), 3);
    assert_eq!(events[2].page_view_id.as_ref(), Some(&events[0].id));
    assert_eq!(interactions[0].engagement_value, 55);

    browser.flush(&app).await;
    assert_eq!(
        app.contact(&browser)
            .await
            .unwrap()
            .summary
            .engagement_value,
        55
    );
}

#[tokio::test]
async fn the_database_is_a_wal_mode_sqlite_file() {
    let app = TestApp::spawn().await;
    if app.sqlite().is_none() {
        // About the SQLite file itself (another store has its own tests of this).
        return;
    }
    let mut browser = Browser::new();
    browser
        .track_ok(&app, json!([{"goalId": "Register"}]))
        .await;
    let conn = app.sqlite().unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let events: i64 = conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(events, 1);
}
