//! The example's processor end to end: a real server built with its type, configured by a
//! `[[pipeline.add]]` entry, tracking the player's element over HTTP.

#![allow(clippy::unwrap_used, missing_docs)]

use serde_json::{json, Value};
use tracker_server::{
    config::{ApiKeySettings, PipelinePatch, ProcessorEntry},
    Settings,
};

const KEY: &str = "example-key-0123456789";
const TOKEN: &str = "example-admin-token";

#[tokio::test]
async fn video_progress_is_tracked_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.server.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into();
    settings.tracker.enabled = true;
    settings.storage.set("path", dir.path().join("tracker.db"));
    settings.admin.token = Some(TOKEN.to_string().into());
    settings.api_keys = vec![ApiKeySettings {
        name: "example".into(),
        key: KEY.to_string().into(),
        cors_origins: vec!["*".into()],
        identification_secret: None,
        server_side: false,
    }];
    settings.pipeline.patches = vec![(
        "tracker.toml".into(),
        PipelinePatch {
            add: vec![ProcessorEntry {
                name: "video".into(),
                kind: "video_progress".into(),
                before: None,
                after: Some("page_event".into()),
                settings: Default::default(),
            }],
            ..PipelinePatch::default()
        },
    )];
    let app = jss_tracker_example_video_progress::application()
        .build(settings)
        .await
        .unwrap();
    let url = format!("http://{}", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .user_agent("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
        .cookie_store(true)
        .build()
        .unwrap();
    let track = |body: Value| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            client
                .post(format!(
                    "{url}/sitecore/api/jss/track/event?sc_apikey={KEY}"
                ))
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let response = track(json!([
        {"pageId": "{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}", "url": "/watch"}
    ]))
    .await;
    assert_eq!(response.status(), 200);
    let response = track(json!([{"videoId": "intro", "percent": 75}])).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    // Out of range: the whole batch is refused, naming the element.
    let response =
        track(json!([{"goalId": "Register"}, {"videoId": "intro", "percent": 140}])).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["index"], 1, "{body}");

    let admin = |path: String| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            client
                .get(format!("{url}{path}"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let list = admin("/api/v1/contacts".into()).await;
    let id = list["contacts"][0]["id"].as_str().unwrap().to_string();
    let contact = admin(format!("/api/v1/contacts/{id}")).await;
    let events = contact["interactions"][0]["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{contact}");
    assert_eq!(events[1]["type"], "pageEvent");
    assert_eq!(events[1]["definitionName"], "Video Play");
    assert_eq!(events[1]["data"], "intro");
    assert_eq!(events[1]["value"], 75.0);
    assert_eq!(
        events[1]["customValues"]["pageViewsBefore"], 1,
        "the processor saw the live visit"
    );
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
