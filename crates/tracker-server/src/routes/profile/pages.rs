//! The Profile's views: dashboard, contacts, a contact, live visits, definitions. Each renders
//! the wire type the matching admin API route answers with, from the same function.

use std::{collections::BTreeMap, convert::Infallible, str::FromStr, time::Duration};

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use axum_extra::extract::WithRejection;
use maud::{html, Markup, PreEscaped};
use rust_decimal::Decimal;
use tracker_core::{definitions::DefinitionKind, money::MoneySum};

use super::{page, SignedIn};
use crate::{
    api_types::{DashboardJson, EventJson, OpenInteractionList},
    error::ApiError,
    routes::admin::{contacts, dashboard as figures, definitions as defs, interactions},
    sign_in::Viewer,
    state::AppState,
};

/// A view that could not be shown: its page with the reason (bad parameters are the viewer's
/// to fix; anything else is logged and shown generically by `ApiError`).
fn failed(viewer: &Viewer, title: &str, current: &str, error: ApiError) -> Response {
    let status = match error {
        ApiError::InvalidPayload(_) => StatusCode::BAD_REQUEST,
        ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let body = html! { p.error role="alert" { (error.to_string()) } };
    (status, page(title, current, viewer, body)).into_response()
}

fn bad_query(viewer: &Viewer, title: &str, current: &str, error: ApiError) -> Response {
    failed(viewer, title, current, error)
}

fn number(n: f64) -> String {
    if n.fract() == 0.0 {
        format!("{n:.0}")
    } else {
        format!("{n:.1}")
    }
}

fn percent(share: f64) -> String {
    format!("{:.1} %", share * 100.0)
}

/// `GET /profile/dashboard?from=&to=&site=`
pub(crate) async fn dashboard(
    SignedIn(viewer): SignedIn,
    State(state): State<AppState>,
    query: WithRejection<Query<figures::DashboardParams>, ApiError>,
) -> Response {
    let (title, here) = ("Dashboard", "/profile/dashboard");
    let params = query.0 .0;
    let d = match figures::dashboard(&state, params.clone()).await {
        Ok(d) => d,
        Err(error) => return bad_query(&viewer, title, here, error),
    };
    let body = html! {
        form.search method="get" action=(here) {
            label { "From" input type="date" name="from" value=(d.from); }
            label { "To" input type="date" name="to" value=(d.to); }
            label { "Site" input type="text" name="site" value=[params.site.as_deref()] placeholder="all sites"; }
            button type="submit" { "Show" }
        }
        div.cards {
            div.card #visits { div.label { "Visits" } div.value { (d.visits) } }
            div.card #page-views { div.label { "Page views" } div.value { (d.page_views) } }
            div.card #bounce-rate { div.label { "Bounce rate" } div.value { (percent(d.bounce_rate)) } }
            div.card #engagement { div.label { "Engagement value" } div.value { (d.engagement_value) } }
            div.card #engagement-per-visit { div.label { "Engagement per visit" } div.value { (number(d.engagement_value_per_visit)) } }
        }
        h2 { "Visits and page views per day" }
        div.chart { (chart(&d)) }
        h2 { "Goals" }
        table #goals {
            thead { tr { th { "Goal" } th.num { "Conversions" } th.num { "Conversion rate" } } }
            tbody {
                @for g in &d.goals {
                    tr { td { (g.name) } td.num { (g.conversions) } td.num { (percent(g.conversion_rate)) } }
                }
                @if d.goals.is_empty() { tr { td colspan="3" .muted { "No goal reached." } } }
            }
        }
        h2 { "Outcomes" }
        table #outcomes {
            thead { tr { th { "Outcome" } th.num { "Count" } th.num { "Monetary value" } } }
            tbody {
                @for o in &d.outcomes {
                    tr {
                        td { (o.name) } td.num { (o.count) }
                        td.num { @for (currency, value) in &o.monetary_value { div { (value) " " (currency) } } }
                    }
                }
                @if d.outcomes.is_empty() { tr { td colspan="3" .muted { "No outcome." } } }
            }
        }
        h2 { "Campaigns" }
        table #campaigns {
            thead { tr { th { "Campaign" } th.num { "Visits" } } }
            tbody {
                @for c in &d.campaigns { tr { td { (c.name) } td.num { (c.visits) } } }
                @if d.campaigns.is_empty() { tr { td colspan="2" .muted { "No campaign." } } }
            }
        }
        h2 { "Top pages" }
        table #top-pages {
            thead { tr { th { "Page" } th.num { "Page views" } } }
            tbody {
                @for p in &d.top_pages { tr { td { (p.url) } td.num { (p.page_views) } } }
                @if d.top_pages.is_empty() { tr { td colspan="2" .muted { "No page view." } } }
            }
        }
    };
    page(title, here, &viewer, body).into_response()
}

/// Visits per day as bars, page views as a line: server-rendered SVG, no script.
fn chart(d: &DashboardJson) -> Markup {
    let (width, height, pad) = (720.0_f64, 200.0_f64, 24.0_f64);
    let days = d.series.len().max(1) as f64;
    let top = d
        .series
        .iter()
        .map(|s| s.visits.max(s.page_views))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let x = |i: usize| pad + (width - 2.0 * pad) * (i as f64 + 0.5) / days;
    let y = |v: u64| height - pad - (height - 2.0 * pad) * v as f64 / top;
    let bar = ((width - 2.0 * pad) / days * 0.6).max(1.0);
    let line: Vec<String> = d
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{:.1},{:.1}", x(i), y(s.page_views)))
        .collect();
    html! {
        svg viewBox=(format!("0 0 {width} {height}")) role="img" aria-label="Visits and page views per day" {
            line x1=(pad) y1=(height - pad) x2=(width - pad) y2=(height - pad) stroke="#dfe3ea" {}
            @for (i, s) in d.series.iter().enumerate() {
                rect x=(format!("{:.1}", x(i) - bar / 2.0)) y=(format!("{:.1}", y(s.visits)))
                    width=(format!("{bar:.1}")) height=(format!("{:.1}", height - pad - y(s.visits)))
                    fill="#1d2433" { title { (s.date) ": " (s.visits) " visits, " (s.page_views) " page views" } }
            }
            polyline points=(line.join(" ")) fill="none" stroke="#c8102e" stroke-width="2" {}
            text x=(pad) y="14" font-size="12" fill="#5d6577" { "max " (top) }
            @if let (Some(first), Some(last)) = (d.series.first(), d.series.last()) {
                text x=(pad) y=(height - 6.0) font-size="11" fill="#5d6577" { (first.date) }
                text x=(width - pad) y=(height - 6.0) font-size="11" fill="#5d6577" text-anchor="end" { (last.date) }
            }
        }
    }
}

/// `GET /profile/contacts?q=&goal=&campaign=&site=&from=&to=&cursor=`
pub(crate) async fn contacts(
    SignedIn(viewer): SignedIn,
    State(state): State<AppState>,
    query: WithRejection<Query<contacts::ListQuery>, ApiError>,
) -> Response {
    let (title, here) = ("Contacts", "/profile/contacts");
    let mut query = query.0 .0;
    // An empty field of the search form means "any".
    for field in [
        &mut query.q,
        &mut query.goal,
        &mut query.campaign,
        &mut query.site,
        &mut query.from,
        &mut query.to,
    ] {
        if field.as_deref().is_some_and(|v| v.trim().is_empty()) {
            *field = None;
        }
    }
    query.limit.get_or_insert_with(|| "50".into());
    let list = match contacts::search(&state, query.clone()).await {
        Ok(list) => list,
        Err(error) => return bad_query(&viewer, title, here, error),
    };
    let names = |kind| -> Vec<String> {
        state
            .definitions()
            .list(kind)
            .iter()
            .map(|d| d.name.clone())
            .collect()
    };
    let option = |names: Vec<String>, chosen: &Option<String>| {
        html! {
            option value="" { "any" }
            @for name in names {
                option value=(name) selected[chosen.as_deref().is_some_and(|c| c.eq_ignore_ascii_case(&name))] { (name) }
            }
        }
    };
    let next_link = list.next_cursor.as_ref().map(|cursor| {
        let mut q = query.clone();
        q.cursor = Some(cursor.clone());
        format!("{here}?{}", to_query(&q))
    });
    let body = html! {
        form.search method="get" action=(here) {
            label { "Contact, device or identifier" input type="search" name="q" value=[query.q.as_deref()]; }
            label { "Goal reached" select name="goal" { (option(names(DefinitionKind::Goal), &query.goal)) } }
            label { "Campaign" select name="campaign" { (option(names(DefinitionKind::Campaign), &query.campaign)) } }
            label { "Site" input type="text" name="site" value=[query.site.as_deref()]; }
            label { "Active from" input type="date" name="from" value=[query.from.as_deref()]; }
            label { "to" input type="date" name="to" value=[query.to.as_deref()]; }
            button type="submit" { "Search" }
        }
        p.muted #total { (list.total) " contact(s)" }
        table #contacts {
            thead { tr {
                th { "Contact" } th { "Last activity" } th.num { "Visits" }
                th.num { "Engagement value" } th.num { "Goals" }
            } }
            tbody {
                @for c in &list.contacts {
                    tr {
                        td { a href=(format!("/profile/contacts/{}", c.id)) { (c.id) } }
                        td { (c.last_activity) }
                        td.num { (c.interaction_count) }
                        td.num { (c.engagement_value) }
                        td.num { (c.goal_count) }
                    }
                }
                @if list.contacts.is_empty() { tr { td colspan="5" .muted { "No contact matches." } } }
            }
        }
        @if let Some(next) = next_link { p.pager { a #next href=(next) { "Next page →" } } }
    };
    page(title, here, &viewer, body).into_response()
}

/// The query string of a contacts search.
fn to_query(q: &contacts::ListQuery) -> String {
    let pairs = [
        ("q", &q.q),
        ("goal", &q.goal),
        ("campaign", &q.campaign),
        ("site", &q.site),
        ("from", &q.from),
        ("to", &q.to),
        ("limit", &q.limit),
        ("cursor", &q.cursor),
    ];
    pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", super::url_encode(v))))
        .collect::<Vec<_>>()
        .join("&")
}

/// `GET /profile/contacts/{id}`: totals, devices, identifiers, and the visits newest first, each
/// with its page views and the events attached to each, in order; the open visit marked live.
pub(crate) async fn contact(
    SignedIn(viewer): SignedIn,
    State(state): State<AppState>,
    axum_extra::extract::WithRejection(Path(id), _): axum_extra::extract::WithRejection<
        Path<String>,
        crate::error::ApiError,
    >,
) -> Response {
    let here = "/profile/contacts";
    let newest = tracker_core::store::InteractionsPage {
        limit: contacts::INTERACTIONS_PER_PAGE,
        before: None,
        events_per_interaction: contacts::EVENTS_PER_INTERACTION,
    };
    let c = match contacts::contact(&state, &id, newest).await {
        Ok(c) => c,
        Err(error) => return failed(&viewer, "Contact", here, error),
    };
    let events = c.interactions.iter().flat_map(|i| i.events.iter());
    let goals = events.clone().filter(|e| e.kind == "goal").count();
    let mut outcomes = 0;
    // Summed exactly, whatever the values: a `Decimal` sum of ten of the largest overflows.
    let mut money: BTreeMap<String, MoneySum> = BTreeMap::new();
    for e in events.filter(|e| e.kind == "outcome") {
        outcomes += 1;
        if let (Some(value), Some(currency)) = (&e.monetary_value, &e.currency_code) {
            if let Ok(value) = Decimal::from_str(value) {
                money.entry(currency.clone()).or_default().add(value);
            }
        }
    }
    let body = html! {
        div.cards {
            div.card #visits { div.label { "Visits" } div.value { (c.summary.interaction_count) } }
            div.card #engagement { div.label { "Engagement value" } div.value { (c.summary.engagement_value) } }
            div.card #goals { div.label { "Goals" } div.value { (goals) } }
            div.card #outcomes {
                div.label { "Outcomes" } div.value { (outcomes) }
                @for (currency, value) in &money { div.muted { (value.to_money_string()) " " (currency) } }
            }
        }
        p.muted { "Contact " (c.summary.id) ", first seen " (c.summary.created_at) ", last active " (c.summary.last_activity) }
        h2 { "Devices" }
        ul { @for d in &c.devices { li { code { (d.id) } " · first seen " (d.first_seen) " · last seen " (d.last_seen) } } }
        h2 { "Identifiers" }
        ul { @for i in &c.identifiers { li { (i.source) ": " code { (i.identifier) } } } }
        h2 { "Visits" }
        @for visit in c.interactions.iter().rev() {
            section.visit data-open=(visit.open) {
                h3 {
                    (visit.start)
                    @if visit.open { " " span.live { "live" } }
                    @else { span.muted { " · " (visit.duration_seconds) " s · ended by " (visit.close_reason.as_deref().unwrap_or("?")) } }
                }
                p.muted {
                    (visit.engagement_value) " engagement value · " (visit.page_view_count) " page view(s)"
                    @if let Some(site) = &visit.site_name { " · site " (site) }
                    @if let Some(browser) = &visit.client.browser { " · " (browser) @if let Some(os) = &visit.client.os { " on " (os) } }
                    @if let Some(language) = &visit.language { " · " span.language { (language) } }
                }
                p.muted.acquisition {
                    "Came from: " span.channel { (channel_label(&visit.acquisition.channel)) }
                    @if let Some(source) = &visit.acquisition.source { " · " span.source { (source) } }
                    @if let Some(campaign) = &visit.acquisition.utm_campaign { " · campaign " (campaign) }
                    @if let Some(landing) = &visit.landing_url { " · landed on " code { (landing) } }
                }
                (timeline(&visit.events))
            }
        }
    };
    page("Contact", here, &viewer, body).into_response()
}

/// A channel's name as people read it (`organic_search`: "Organic search").
fn channel_label(channel: &str) -> String {
    let spaced = channel.replace('_', " ");
    let mut chars = spaced.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// A visit's events in order: page views, each with the events attached to it.
fn timeline(events: &[EventJson]) -> Markup {
    let label = |e: &EventJson| -> String {
        let name = e.definition_name.clone().unwrap_or_default();
        match e.kind.as_str() {
            "goal" => format!("Goal: {name}"),
            "pageEvent" => format!("Page event: {name}"),
            "outcome" => match (&e.monetary_value, &e.currency_code) {
                (Some(v), Some(c)) => format!("Outcome: {name} ({v} {c})"),
                _ => format!("Outcome: {name}"),
            },
            "campaign" => format!("Campaign: {name}"),
            "identification" => format!(
                "Identified as {} ({})",
                e.data.clone().unwrap_or_default(),
                e.data_key.clone().unwrap_or_default()
            ),
            other => other.to_string(),
        }
    };
    // Groups: (page view or none, the events attached to it).
    let mut groups: Vec<(Option<&EventJson>, Vec<&EventJson>)> = Vec::new();
    for e in events {
        if e.kind == "pageView" {
            groups.push((Some(e), Vec::new()));
        } else if let Some(group) = groups
            .iter_mut()
            .rev()
            .find(|(page, _)| page.is_some_and(|p| Some(&p.id) == e.page_view_id.as_ref()))
        {
            group.1.push(e);
        } else {
            groups.push((None, vec![e]));
        }
    }
    html! {
        ol.timeline {
            @for (page, attached) in &groups {
                @match page {
                    Some(p) => li.page { "Page view: " strong { (p.url.as_deref().unwrap_or("")) }
                        span.muted { " · " (p.timestamp) }
                        @if !attached.is_empty() { ol { @for e in attached { li.event { (label(e)) } } } }
                    },
                    None => @for e in attached { li.event { (label(e)) } },
                }
            }
        }
    }
}

/// The open visits' rows, as the live page and its stream show them.
fn live_rows(list: &OpenInteractionList) -> Markup {
    html! {
        @for v in &list.interactions {
            tr data-interaction=(v.id) {
                td { a href=(format!("/profile/contacts/{}", v.contact_id)) { (v.contact_id) } }
                td.hide-small { (v.start) }
                td { (v.last_activity) }
                td.num { (v.page_view_count) }
                td.num { (v.event_count) }
                td.num { (v.engagement_value) }
                td.hide-small { (v.site_name.as_deref().unwrap_or("")) }
            }
        }
        @if list.interactions.is_empty() { tr { td colspan="7" .muted { "No visit is open." } } }
    }
}

/// `GET /profile/live`: the visits open now, kept up to date by server-sent events.
pub(crate) async fn live(SignedIn(viewer): SignedIn, State(state): State<AppState>) -> Response {
    let (title, here) = ("Live", "/profile/live");
    let list = match interactions::open_visits(&state).await {
        Ok(list) => list,
        Err(error) => return failed(&viewer, title, here, error),
    };
    let body = html! {
        p.muted { "Visits open right now. " span #live-status { "connecting…" } }
        table {
            thead { tr {
                th { "Contact" } th.hide-small { "Started" } th { "Last activity" }
                th.num { "Page views" } th.num { "Events" } th.num { "Engagement" } th.hide-small { "Site" }
            } }
            tbody #live-rows data-stream="/profile/live/stream" { (live_rows(&list)) }
        }
        script src="/profile/assets/live.js" defer {}
    };
    page(title, here, &viewer, body).into_response()
}

/// How often the live stream looks at the open visits.
const LIVE_EVERY: Duration = Duration::from_secs(1);

/// `GET /profile/live/stream`: the open visits' rows, once a second, as `visits` events.
pub(crate) async fn live_stream(
    SignedIn(_): SignedIn,
    State(state): State<AppState>,
    jar: axum_extra::extract::cookie::CookieJar,
) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>>> {
    let token = jar
        .get(crate::sign_in::COOKIE)
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    // Ends at sign-out, when the sign-in expires (the stream does not keep it alive), and when
    // the server shuts down (which would otherwise wait for the stream).
    let shutdown = Box::pin(state.shutting_down());
    let start = (state, token, shutdown, true);
    let stream = futures::stream::unfold(start, |(state, token, mut shutdown, first)| async move {
        if !first {
            tokio::select! {
                () = tokio::time::sleep(LIVE_EVERY) => {}
                () = &mut shutdown => return None,
            }
        }
        let signed_in = state.sign_ins().is_signed_in(
            &token,
            state.clock().now(),
            state.settings().profile.session_timeout,
        );
        if !signed_in {
            return None;
        }
        let rows = match interactions::open_visits(&state).await {
            Ok(list) => live_rows(&list).into_string(),
            Err(error) => {
                tracing::warn!(%error, "live visits could not be read");
                html! { tr { td colspan="7" .error { "The visits could not be read; retrying." } } }
                    .into_string()
            }
        };
        Some((
            Ok(Event::default().event("visits").data(rows)),
            (state, token, shutdown, false),
        ))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// `GET /profile/definitions`
pub(crate) async fn definitions(
    SignedIn(viewer): SignedIn,
    State(state): State<AppState>,
) -> Response {
    let d = defs::definitions(&state);
    let table = |id: &str, rows: &[crate::api_types::DefinitionJson]| {
        html! {
            table id=(id) {
                thead { tr { th { "Name" } th { "GUID" } th.num { "Points" } } }
                tbody { @for r in rows { tr { td { (r.name) } td { code { (r.id) } } td.num { (r.points) } } } }
            }
        }
    };
    let body = html! {
        h2 { "Goals" } (table("goals", &d.goals))
        h2 { "Page events" } (table("page-events", &d.page_events))
        h2 { "Outcomes" } (table("outcomes", &d.outcomes))
        h2 { "Campaigns" } (table("campaigns", &d.campaigns))
        p.muted { (PreEscaped("Edit <code>definitions.file</code> and restart to change them.")) }
    };
    page("Definitions", "/profile/definitions", &viewer, body).into_response()
}
