//! The Experience Profile: server-rendered pages (maud) under `/profile`, behind a sign-in
//! with the admin token or a `[[profile.users]]` name and password. Every page renders the same
//! wire types the JSON API answers with, from the same queries.

use axum::{
    extract::{FromRequestParts, Query, State},
    http::{header, request::Parts, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Form,
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;

use crate::{
    edge::TrackingCaller,
    sign_in::{Credentials, Refused, Viewer, COOKIE},
    state::AppState,
};

pub(crate) mod pages;

const STYLE: &str = include_str!("../../../assets/profile/style.css");
const LIVE_JS: &str = include_str!("../../../assets/profile/live.js");

/// The stylesheet.
pub(crate) async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// The live page's script.
pub(crate) async fn live_js() -> Response {
    asset("text/javascript; charset=utf-8", LIVE_JS)
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

/// Where to go after signing in: a local path of the Profile, never another site, and nothing
/// a `Location` header cannot carry (a line break there once gave a plain-text 500 that still
/// signed the visitor in).
fn safe_next(next: Option<&str>) -> String {
    let local = |next: &str| {
        let rest = next.strip_prefix("/profile").unwrap_or("//");
        (rest.is_empty() || rest.starts_with(['/', '?', '#']))
            && !rest.starts_with("//")
            && !next.contains("/..")
            && next
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'\\' && b != b'"')
    };
    match next {
        Some(next) if local(next) => next.to_string(),
        _ => "/profile/dashboard".to_string(),
    }
}

/// Whether a form post comes from a page of this server: its `Origin` names the host the
/// request was sent to. Browsers send `Origin` with every POST; a post without one comes from a
/// program, not from another site's page (login CSRF needs a browser).
fn same_origin(parts: &Parts) -> bool {
    let Some(origin) = parts.headers.get(header::ORIGIN) else {
        return true;
    };
    let origin = origin.to_str().unwrap_or_default();
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

/// The headers every Profile answer carries: no framing (clickjacking), no script or style
/// from anywhere but this server and none inline, no type sniffing, no full URL (contact ids)
/// sent to other sites.
pub(crate) async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Shows the sign-in form.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub(crate) async fn login_page(Query(query): Query<NextQuery>) -> Markup {
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

pub(crate) async fn login(
    State(state): State<AppState>,
    parts: Parts,
    Form(form): Form<LoginForm>,
) -> Response {
    if !same_origin(&parts) {
        // Another site's page posting our form would sign its visitor in as someone else.
        return (
            StatusCode::FORBIDDEN,
            login_form(None, Some("Sign in from this server's own sign-in page.")),
        )
            .into_response();
    }
    let credentials = Credentials {
        token: form.token.filter(|t| !t.is_empty()),
        name: form.name.filter(|n| !n.is_empty()),
        password: form.password,
    };
    let client = TrackingCaller::browser(&parts, &state, String::new());
    let signed_in = state
        .sign_ins()
        .sign_in(
            state.settings(),
            &credentials,
            client.ip,
            state.clock().now(),
        )
        .await;
    let token = match signed_in {
        Ok(token) => token,
        Err(Refused::Wrong) => {
            return (
                StatusCode::UNAUTHORIZED,
                login_form(
                    form.next.as_deref(),
                    Some("Those credentials do not sign anyone in."),
                ),
            )
                .into_response();
        }
        Err(refused @ (Refused::TooMany(_) | Refused::Busy)) => {
            let wait = match refused {
                Refused::TooMany(wait) => wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                _ => 1,
            }
            .max(1);
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, HeaderValue::from(wait))],
                login_form(
                    form.next.as_deref(),
                    Some(&format!(
                        "Too many sign-in attempts: try again in {wait} s."
                    )),
                ),
            )
                .into_response();
        }
    };
    let mut cookie = Cookie::new(COOKIE, token);
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Strict);
    cookie.set_path("/");
    // Over HTTPS (directly, or through a trusted proxy's word) or on a loopback host, where
    // browsers accept it over plain HTTP, the cookie is also Secure.
    cookie.set_secure(client.secure);
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

pub(crate) async fn logout(
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
