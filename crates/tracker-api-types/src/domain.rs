//! Conversions from the experience database's records to the wire types (feature `domain`).

use chrono::{DateTime, SecondsFormat, Utc};
use tracker_core::{
    acquisition::{Acquisition, Referrers},
    client_info::ClientInfo,
    definitions::Definition,
    event::DefinitionRef,
    session::{Interaction, StoredEvent},
    store::{ContactRecord, ContactSummary, Dashboard, InteractionRecord},
};

use crate::*;

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl From<ClientInfo> for ClientJson {
    fn from(c: ClientInfo) -> Self {
        Self {
            browser: c.browser,
            browser_version: c.browser_version,
            os: c.os,
            device_type: c.device_type,
        }
    }
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
        // Cents at least, as money is written; more places only when there are more.
        let money = |value: tracker_core::money::MoneySum| value.to_money_string();
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
impl From<DefinitionRef> for DefinitionRefJson {
    fn from(d: DefinitionRef) -> Self {
        Self {
            id: d.id.to_string(),
            name: d.name,
        }
    }
}
impl From<Acquisition> for AcquisitionJson {
    fn from(a: Acquisition) -> Self {
        Self {
            channel: a.channel.as_str().to_string(),
            source: a.source,
            utm_source: a.utm.source,
            utm_medium: a.utm.medium,
            utm_campaign: a.utm.campaign,
            utm_term: a.utm.term,
            utm_content: a.utm.content,
        }
    }
}
impl From<InteractionRecord> for InteractionJson {
    fn from(record: InteractionRecord) -> Self {
        let i = record.interaction;
        let end_or_last = record.ended_at.unwrap_or(i.last_activity);
        // Visits stored before channels were: worked out now, from what they kept.
        let acquisition = record.attribution.acquisition.clone().unwrap_or_else(|| {
            Referrers::of_stored(
                record.attribution.landing_url.as_deref(),
                record.attribution.referrer.as_deref(),
                i.campaign.is_some(),
            )
        });
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
            client: record.attribution.client.into(),
            ip: record.attribution.ip.map(|ip| ip.to_string()),
            landing_url: record.attribution.landing_url.clone(),
            referrer: record.attribution.referrer.clone(),
            acquisition: acquisition.into(),
            language: record.attribution.language.clone(),
            engagement_value: i.engagement_value,
            page_view_count: i.page_view_count,
            event_count: usize::try_from(i.event_count).unwrap_or(0),
            events: events_with_pages(record.events),
            events_omitted: record.events_omitted,
        }
    }
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
            kind: e.kind.as_str().to_string(),
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
            older_interactions: c.older.map(|cursor| cursor.encode()),
        }
    }
}
impl From<&Definition> for DefinitionJson {
    fn from(d: &Definition) -> Self {
        Self {
            id: d.id.to_string(),
            name: d.name.clone(),
            points: d.points,
            is_failure: d.is_failure,
            monetary_value_applicable: d.monetary_value_applicable,
            refuse_money: d.refuse_money,
            negative_money_allowed: d.negative_money_allowed,
        }
    }
}
