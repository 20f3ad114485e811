//! The admin API's JSON types (camelCase), kept apart from the store's records. The Experience
//! Profile's pages render these same types, so that the web UI and the JSON API show the same
//! data. A field is the JSON key of the same name in camelCase, described in the README's
//! endpoint table; fields say more only where the name does not.
#![allow(missing_docs)]

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use tracker_core::{
    definitions::Definition,
    event::DefinitionRef,
    session::{Interaction, StoredEvent},
    store::{ContactRecord, ContactSummary, Dashboard, InteractionRecord},
};

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `GET /api/v1/contacts`
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactList {
    /// The contacts of this page, most recently active first.
    pub contacts: Vec<ContactSummaryJson>,
    /// How many contacts match, on every page.
    pub total: u64,
    /// The `cursor` of the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// A contact in a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactSummaryJson {
    pub id: String,
    pub created_at: String,
    pub last_activity: String,
    pub engagement_value: i64,
    pub interaction_count: i64,
    pub goal_count: i64,
}

impl From<ContactSummary> for ContactSummaryJson {
    fn from(s: ContactSummary) -> Self {
        Self {
            id: s.id.to_string(),
            created_at: time(s.created_at),
            last_activity: time(s.last_activity),
            engagement_value: s.engagement_value,
            interaction_count: s.interaction_count,
            goal_count: s.goal_count,
        }
    }
}

/// `GET /api/v1/interactions?open=true`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OpenInteractionList {
    /// The open interactions, most recently active first.
    pub interactions: Vec<OpenInteractionJson>,
}

/// A visit open now, with its totals as they stand.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenInteractionJson {
    pub id: String,
    pub contact_id: String,
    pub device_id: String,
    pub site_name: Option<String>,
    pub campaign: Option<DefinitionRefJson>,
    pub start: String,
    pub last_activity: String,
    pub duration_seconds: i64,
    pub engagement_value: i64,
    pub page_view_count: i64,
    pub event_count: i64,
}

impl From<Interaction> for OpenInteractionJson {
    fn from(i: Interaction) -> Self {
        Self {
            id: i.id.to_string(),
            contact_id: i.contact_id.to_string(),
            device_id: i.device_id.to_string(),
            site_name: i.site_name,
            campaign: i.campaign.map(Into::into),
            start: time(i.started_at),
            last_activity: time(i.last_activity),
            duration_seconds: (i.last_activity - i.started_at).num_seconds(),
            engagement_value: i.engagement_value,
            page_view_count: i.page_view_count,
            event_count: i.event_count,
        }
    }
}

/// `GET /api/v1/dashboard`
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DashboardJson {
    pub from: String,
    pub to: String,
    pub visits: u64,
    pub page_views: u64,
    /// Share of the visits with one page view and nothing else (0 to 1).
    pub bounce_rate: f64,
    pub engagement_value: i64,
    pub engagement_value_per_visit: f64,
    pub goals: Vec<GoalJson>,
    pub outcomes: Vec<OutcomeJson>,
    pub campaigns: Vec<CampaignJson>,
    pub top_pages: Vec<PageCountJson>,
    /// Every day of the range, in order, days without visits included.
    pub series: Vec<DayJson>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GoalJson {
    pub id: String,
    pub name: String,
    pub conversions: u64,
    /// Share of the visits that reached it (0 to 1).
    pub conversion_rate: f64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeJson {
    pub id: String,
    pub name: String,
    pub count: u64,
    /// Exact decimal per currency code, as text: `{"USD": "1337.50"}`.
    pub monetary_value: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CampaignJson {
    pub id: String,
    pub name: String,
    pub visits: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageCountJson {
    pub url: String,
    pub page_views: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DayJson {
    pub date: String,
    pub visits: u64,
    pub page_views: u64,
    pub conversions: u64,
}

impl DashboardJson {
    /// The figures of `from..=to`.
    pub fn new(from: chrono::NaiveDate, to: chrono::NaiveDate, d: Dashboard) -> Self {
        let share = |n: u64| {
            if d.visits == 0 {
                0.0
            } else {
                n as f64 / d.visits as f64
            }
        };
        let mut series = Vec::new();
        let mut day = from;
        let mut figures = d.days.iter().peekable();
        while day <= to {
            let today = figures.next_if(|f| f.date == day);
            series.push(DayJson {
                date: day.to_string(),
                visits: today.map_or(0, |f| f.visits),
                page_views: today.map_or(0, |f| f.page_views),
                conversions: today.map_or(0, |f| f.conversions),
            });
            let Some(next) = day.succ_opt() else { break };
            day = next;
        }
        let money = |mut value: rust_decimal::Decimal| {
            // Cents at least, as money is written; more places only when there are more.
            if value.scale() < 2 {
                value.rescale(2);
            }
            value.to_string()
        };
        Self {
            from: from.to_string(),
            to: to.to_string(),
            visits: d.visits,
            page_views: d.page_views,
            bounce_rate: share(d.bounces),
            engagement_value: d.engagement_value,
            engagement_value_per_visit: if d.visits == 0 {
                0.0
            } else {
                d.engagement_value as f64 / d.visits as f64
            },
            goals: d
                .goals
                .iter()
                .map(|g| GoalJson {
                    id: g.id.to_string(),
                    name: g.name.clone(),
                    conversions: g.count,
                    conversion_rate: share(g.count),
                })
                .collect(),
            outcomes: d
                .outcomes
                .into_iter()
                .map(|o| OutcomeJson {
                    id: o.id.to_string(),
                    name: o.name,
                    count: o.count,
                    monetary_value: o
                        .monetary_value
                        .into_iter()
                        .map(|(currency, value)| (currency, money(value)))
                        .collect(),
                })
                .collect(),
            campaigns: d
                .campaigns
                .into_iter()
                .map(|c| CampaignJson {
                    id: c.id.to_string(),
                    name: c.name,
                    visits: c.count,
                })
                .collect(),
            top_pages: d
                .top_pages
                .into_iter()
                .map(|(url, page_views)| PageCountJson { url, page_views })
                .collect(),
            series,
        }
    }
}

/// `GET /api/v1/contacts/{id}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactJson {
    #[serde(flatten)]
    pub summary: ContactSummaryJson,
    pub devices: Vec<DeviceJson>,
    pub identifiers: Vec<IdentifierJson>,
    pub interactions: Vec<InteractionJson>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceJson {
    pub id: String,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IdentifierJson {
    pub source: String,
    pub identifier: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionRefJson {
    pub id: String,
    pub name: String,
}

impl From<DefinitionRef> for DefinitionRefJson {
    fn from(d: DefinitionRef) -> Self {
        Self {
            id: d.id.to_string(),
            name: d.name,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InteractionJson {
    pub id: String,
    pub open: bool,
    pub start: String,
    pub end: Option<String>,
    pub last_activity: String,
    pub duration_seconds: i64,
    pub close_reason: Option<String>,
    pub device_id: String,
    pub site_name: Option<String>,
    pub campaign: Option<DefinitionRefJson>,
    pub user_agent: Option<String>,
    /// Browser, version, OS and device type parsed from the user agent.
    #[schema(value_type = Object)]
    pub client: tracker_core::client_info::ClientInfo,
    /// The client's address as stored (anonymised unless `privacy.ip_anonymization = "off"`).
    pub ip: Option<String>,
    pub engagement_value: i64,
    pub page_view_count: i64,
    pub event_count: usize,
    pub events: Vec<EventJson>,
}

impl From<InteractionRecord> for InteractionJson {
    fn from(record: InteractionRecord) -> Self {
        let i = record.interaction;
        let end_or_last = record.ended_at.unwrap_or(i.last_activity);
        Self {
            id: i.id.to_string(),
            open: record.open,
            start: time(i.started_at),
            end: record.ended_at.map(time),
            last_activity: time(i.last_activity),
            duration_seconds: (end_or_last - i.started_at).num_seconds(),
            close_reason: record.close_reason,
            device_id: i.device_id.to_string(),
            site_name: i.site_name,
            campaign: i.campaign.map(Into::into),
            user_agent: i.user_agent,
            client: record.attribution.client,
            ip: record.attribution.ip.map(|ip| ip.to_string()),
            engagement_value: i.engagement_value,
            page_view_count: i.page_view_count,
            event_count: record.events.len(),
            events: events_with_pages(record.events),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventJson {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub definition_id: Option<String>,
    pub definition_name: Option<String>,
    pub points: i64,
    pub timestamp: String,
    pub page_id: Option<String>,
    pub url: Option<String>,
    pub language: Option<String>,
    pub item_version: Option<i64>,
    pub referrer: Option<String>,
    pub page_view_id: Option<String>,
    /// Exact decimal, as text: a float would round it.
    pub monetary_value: Option<String>,
    pub currency_code: Option<String>,
    pub data: Option<String>,
    pub data_key: Option<String>,
    pub text: Option<String>,
    pub value: Option<f64>,
    #[schema(value_type = Object)]
    pub custom_values: Map<String, Value>,
}

/// Events in order, each showing the page (id and url) of the page view it belongs to.
fn events_with_pages(events: Vec<StoredEvent>) -> Vec<EventJson> {
    let mut pages = std::collections::HashMap::new();
    for stored in &events {
        if let Some(page) = &stored.event.page {
            pages.insert(stored.id, (page.page_id.to_string(), page.url.clone()));
        }
    }
    events
        .into_iter()
        .map(|event| {
            let page = event.page_view_id.and_then(|id| pages.get(&id)).cloned();
            let mut json = EventJson::from(event);
            if let Some((page_id, url)) = page {
                json.page_id.get_or_insert(page_id);
                json.url.get_or_insert(url);
            }
            json
        })
        .collect()
}

impl From<StoredEvent> for EventJson {
    fn from(stored: StoredEvent) -> Self {
        let e = stored.event;
        let points = e.points();
        let page = e.page;
        Self {
            id: stored.id.to_string(),
            kind: e.kind.as_str(),
            definition_id: e.definition.as_ref().map(|d| d.id.to_string()),
            definition_name: e.definition.map(|d| d.name),
            points,
            timestamp: time(stored.timestamp),
            page_id: page.as_ref().map(|p| p.page_id.to_string()),
            url: page.as_ref().map(|p| p.url.clone()),
            language: page.as_ref().and_then(|p| p.language.clone()),
            item_version: page.as_ref().and_then(|p| p.item_version),
            referrer: page.and_then(|p| p.referrer),
            page_view_id: stored.page_view_id.map(|id| id.to_string()),
            monetary_value: e.monetary_value.map(|d| d.to_string()),
            currency_code: e.currency_code,
            data: e.data,
            data_key: e.data_key,
            text: e.text,
            value: e.value,
            custom_values: e.custom,
        }
    }
}

impl From<ContactRecord> for ContactJson {
    fn from(c: ContactRecord) -> Self {
        Self {
            summary: c.summary.into(),
            devices: c
                .devices
                .into_iter()
                .map(|d| DeviceJson {
                    id: d.id.to_string(),
                    first_seen: time(d.first_seen),
                    last_seen: time(d.last_seen),
                })
                .collect(),
            identifiers: c
                .identifiers
                .into_iter()
                .map(|i| IdentifierJson {
                    source: i.source,
                    identifier: i.identifier,
                })
                .collect(),
            interactions: c.interactions.into_iter().map(Into::into).collect(),
        }
    }
}

/// `GET /api/v1/definitions`
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionsJson {
    /// Goals.
    pub goals: Vec<DefinitionJson>,
    /// Page events.
    pub page_events: Vec<DefinitionJson>,
    /// Outcomes.
    pub outcomes: Vec<DefinitionJson>,
    /// Campaigns.
    pub campaigns: Vec<DefinitionJson>,
}

/// One definition.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionJson {
    pub id: String,
    pub name: String,
    pub points: i64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_failure: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub monetary_value_applicable: bool,
}

impl From<&Definition> for DefinitionJson {
    fn from(d: &Definition) -> Self {
        Self {
            id: d.id.to_string(),
            name: d.name.clone(),
            points: d.points,
            is_failure: d.is_failure,
            monetary_value_applicable: d.monetary_value_applicable,
        }
    }
}
