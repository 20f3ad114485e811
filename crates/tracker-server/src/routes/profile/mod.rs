//! The Experience Profile: server-rendered pages (maud) under `/profile`, behind a sign-in
//! with the admin token or a `[[profile.users]]` name and password. Every page renders the same
//! wire types the JSON API answers with, from the same queries.

use axum::{
    extract::{FromRequestParts, Query, State},
    http::{header, request::Parts, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
    Form, Router,
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;

use crate::{
    edge::TrackingCaller,
    sign_in::{Credentials, Viewer, COOKIE},
    state::AppState,
};

mod pages;

const STYLE: &str = include_str!("../../../assets/profile/style.css");
const LIVE_JS: &str = include_str!("../../../assets/profile/live.js");

/// The Profile's routes, and `/` sending people to it.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/profile") }))
        .route(
            "/profile",
            get(|| async { Redirect::to("/profile/dashboard") }),
        )
        .route("/profile/login", get(login_page).post(login))
        .route("/profile/logout", post(logout))
        .route("/profile/dashboard", get(pages::dashboard))
        .route("/profile/contacts", get(pages::contacts))
        .route("/profile/contacts/{id}", get(pages::contact))
        .route("/profile/live", get(pages::live))
        .route("/profile/live/stream", get(pages::live_stream))
        .route("/profile/definitions", get(pages::definitions))
        .route(
            "/profile/assets/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/profile/assets/live.js",
            get(|| async { asset("text/javascript; charset=utf-8", LIVE_JS) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=600"),
            ),
        ],
        body,
    )
        .into_response()
}

/// A signed-in person, or a redirect to the sign-in page that comes back here.
#[derive(Debug, Clone)]
pub struct SignedIn(pub Viewer);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let jar = CookieJar::from_headers(&parts.headers);
        let viewer = jar.get(COOKIE).and_then(|cookie| {
            state.sign_ins().viewer(
                cookie.value(),
                state.clock().now(),
                state.settings().profile.session_timeout,
            )
        });
        match viewer {
            Some(viewer) => Ok(Self(viewer)),
            None => {
                let back = parts
                    .uri
                    .path_and_query()
                    .map_or("/profile", |p| p.as_str())
                    .to_string();
                let next: String = url_encode(&back);
                Err(Redirect::to(&format!("/profile/login?next={next}")).into_response())
            }
        }
    }
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where to go after signing in: a path of the Profile, never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next) if next.starts_with("/profile") && !next.starts_with("//") => next.to_string(),
        _ => "/profile/dashboard".to_string(),
    }
}

/// Shows the sign-in form.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

async fn login_page(Query(query): Query<NextQuery>) -> Markup {
    login_form(query.next.as_deref(), None)
}

fn login_form(next: Option<&str>, error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head("Sign in")) }
            body {
                form.login method="post" action="/profile/login" {
                    h1 { "jss-tracker" }
                    p.muted { "Experience Profile: sign in with the admin token, or your name and password." }
                    @if let Some(error) = error { p.error role="alert" { (error) } }
                    input type="hidden" name="next" value=(safe_next(next));
                    label { "Admin token" input type="password" name="token" autocomplete="off"; }
                    p.muted { "or" }
                    label { "Name" input type="text" name="name" autocomplete="username"; }
                    label { "Password" input type="password" name="password" autocomplete="current-password"; }
                    button type="submit" { "Sign in" }
                }
            }
        }
    }
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: Option<String>,
    name: Option<String>,
    password: Option<String>,
    next: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    parts: Parts,
    Form(form): Form<LoginForm>,
) -> Response {
    let credentials = Credentials {
        token: form.token.filter(|t| !t.is_empty()),
        name: form.name.filter(|n| !n.is_empty()),
        password: form.password,
    };
    let Some(token) = state
        .sign_ins()
        .sign_in(state.settings(), &credentials, state.clock().now())
    else {
        tracing::info!("profile sign-in refused");
        return (
            StatusCode::UNAUTHORIZED,
            login_form(
                form.next.as_deref(),
                Some("Those credentials do not sign anyone in."),
            ),
        )
            .into_response();
    };
    let mut cookie = Cookie::new(COOKIE, token);
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Strict);
    cookie.set_path("/");
    // Over HTTPS (directly, or through a trusted proxy's word) or on a loopback host, where
    // browsers accept it over plain HTTP, the cookie is also Secure.
    cookie.set_secure(TrackingCaller::browser(&parts, &state, String::new()).secure);
    (
        [(header::SET_COOKIE, cookie.to_string())],
        Redirect::to(&safe_next(form.next.as_deref())),
    )
        .into_response()
}

/// A form that changes something: it carries the sign-in's CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    jar: CookieJar,
    Form(form): Form<CsrfForm>,
) -> Response {
    if form.csrf != viewer.csrf {
        return (
            StatusCode::FORBIDDEN,
            "the form is stale: reload the page and try again",
        )
            .into_response();
    }
    if let Some(cookie) = jar.get(COOKIE) {
        state.sign_ins().sign_out(cookie.value());
    }
    let mut gone = Cookie::new(COOKIE, "");
    gone.set_path("/");
    gone.set_max_age(cookie::time::Duration::ZERO);
    (
        [(header::SET_COOKIE, gone.to_string())],
        Redirect::to("/profile/login"),
    )
        .into_response()
}

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " · jss-tracker" }
        link rel="stylesheet" href="/profile/assets/style.css";
    }
}

/// The page around every view: the navigation, the viewer, and sign-out.
pub(crate) fn page(title: &str, current: &str, viewer: &Viewer, body: Markup) -> Markup {
    let link = |href: &str, label: &str| {
        html! { a href=(href) class=[(href == current).then_some("current")] { (label) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body {
                header.top {
                    span.brand { "jss-tracker" }
                    nav {
                        (link("/profile/dashboard", "Dashboard"))
                        (link("/profile/contacts", "Contacts"))
                        (link("/profile/live", "Live"))
                        (link("/profile/definitions", "Definitions"))
                    }
                    span.muted { (viewer.name) }
                    form method="post" action="/profile/logout" {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        button.link type="submit" { "Sign out" }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}
