//! Where visits come from: each visit's channel, source and UTM tags, worked out when it opens,
//! from its first page view's URL and referrer, else the request's `Referer` from another site.

use serde_json::{json, Value};

use crate::helpers::*;

/// One new visitor's first page view (`url`, and `referrer` when given), sent with `headers`;
/// what the API says of where its visit came from.
async fn arrive(
    app: &TestApp,
    url: &str,
    referrer: Option<&str>,
    headers: &[(&str, &str)],
) -> Value {
    let mut browser = Browser::new();
    for (name, value) in headers {
        browser.headers.push(((*name).into(), (*value).into()));
    }
    let mut view = json!({"pageId": PAGE, "url": url});
    if let Some(referrer) = referrer {
        view["referrer"] = json!(referrer);
    }
    browser.track_ok(app, json!([view])).await;
    let contact = app.contact_of(&browser).await;
    contact["interactions"][0]["acquisition"].clone()
}

#[tokio::test]
async fn each_visit_gets_its_channel_source_and_tags() {
    let app = TestApp::spawn().await;
    let google = arrive(
        &app,
        "/",
        Some("https://www.google.com/search?q=jss+tracker"),
        &[],
    )
    .await;
    assert_eq!(google["channel"], "organic_search", "{google}");
    assert_eq!(google["source"], "google.com");

    let tweet = arrive(&app, "/blog/launch", Some("https://t.co/Ab12Cd"), &[]).await;
    assert_eq!(tweet["channel"], "social", "{tweet}");
    assert_eq!(tweet["source"], "t.co");

    let newsletter = arrive(
        &app,
        "/offers?utm_source=newsletter&utm_medium=email&utm_campaign=spring-sale",
        None,
        &[],
    )
    .await;
    assert_eq!(newsletter["channel"], "email", "{newsletter}");
    assert_eq!(newsletter["source"], "newsletter");
    assert_eq!(newsletter["utmCampaign"], "spring-sale");

    let ad = arrive(
        &app,
        "/?utm_source=bing&utm_medium=cpc&utm_term=headless+analytics&utm_content=ad-2",
        Some("https://www.bing.com/"),
        &[],
    )
    .await;
    assert_eq!(ad["channel"], "paid_search", "{ad}");
    assert_eq!(ad["utmTerm"], "headless analytics");
    assert_eq!(ad["utmContent"], "ad-2");

    let typed = arrive(&app, "/", None, &[]).await;
    assert_eq!(typed["channel"], "direct", "{typed}");
    assert_eq!(typed["source"], Value::Null);

    // The element names no referrer: the request's `Referer` counts when it is another site's,
    // not when it is the app's own page.
    let linked = arrive(
        &app,
        "/",
        None,
        &[("referer", "https://blog.example.org/post/1")],
    )
    .await;
    assert_eq!(linked["channel"], "referral", "{linked}");
    assert_eq!(linked["source"], "blog.example.org");
    let own = format!("{APP_ORIGIN}/previous-page");
    let inside = arrive(&app, "/", None, &[("referer", own.as_str())]).await;
    assert_eq!(inside["channel"], "direct", "{inside}");
    let own_in_element = arrive(&app, "/", Some(own.as_str()), &[]).await;
    assert_eq!(own_in_element["channel"], "direct", "{own_in_element}");
}

/// One new visitor's first page view (with `language` when given), sent with `headers`; the
/// language the API says its visit has.
async fn language_of(app: &TestApp, headers: &[(&str, &str)], element: Option<&str>) -> Value {
    let mut browser = Browser::new();
    for (name, value) in headers {
        browser.headers.push(((*name).into(), (*value).into()));
    }
    let mut view = json!({"pageId": PAGE, "url": "/"});
    if let Some(language) = element {
        view["language"] = json!(language);
    }
    browser.track_ok(app, json!([view])).await;
    app.contact_of(&browser).await["interactions"][0]["language"].clone()
}

/// A visit's language: its first page view's, else the browser's first `Accept-Language`.
#[tokio::test]
async fn each_visit_gets_its_language() {
    let app = TestApp::spawn().await;
    let german = [("accept-language", "de-de,de;q=0.9,en;q=0.8")];
    assert_eq!(language_of(&app, &german, None).await, "de-DE");
    assert_eq!(
        language_of(&app, &german, Some("fr-ca")).await,
        "fr-CA",
        "the page view's first"
    );
    assert_eq!(language_of(&app, &[], None).await, Value::Null);
    let any = [("accept-language", "*")];
    assert_eq!(language_of(&app, &any, None).await, Value::Null);
}

#[tokio::test]
async fn configured_hosts_join_the_lists() {
    let app = TestApp::spawn_with(|settings| {
        settings.acquisition.search = vec!["intranet-search.example.org".into()];
        settings.acquisition.social = vec!["community.example.net".into()];
    })
    .await;
    let search = arrive(
        &app,
        "/",
        Some("https://intranet-search.example.org/?q=x"),
        &[],
    )
    .await;
    assert_eq!(search["channel"], "organic_search", "{search}");
    let community = arrive(&app, "/", Some("https://community.example.net/t/42"), &[]).await;
    assert_eq!(community["channel"], "social", "{community}");
    let google = arrive(&app, "/", Some("https://www.google.de/"), &[]).await;
    assert_eq!(
        google["channel"], "organic_search",
        "the built-in lists stay: {google}"
    );
}
