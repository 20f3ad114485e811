//! Read queries, and the mapping from rows back to domain records. The queries are the SQLite
//! store's, in PostgreSQL's dialect; a read that takes several queries runs them in one
//! read-only repeatable-read transaction (one snapshot).

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use deadpool_postgres::{GenericClient, Object};
use rust_decimal::Decimal;
use tokio_postgres::{types::ToSql, IsolationLevel, Row};
use tracker_core::{
    client_info::{Attribution, ClientInfo},
    event::{DefinitionRef, EventKind, PageInfo, TrackedEvent},
    ids::{ContactId, DeviceId, EventId, Guid, InteractionId, SessionId},
    rollup::{day_number, Facet, Fact, OutcomeSum, Tally, Visits, DAY_MS},
    session::{Interaction, StoredEvent},
    store::{
        ContactFilter, ContactPage, ContactRecord, ContactSummary, ContactText, Dashboard,
        DashboardQuery, DeviceRecord, IdentifierRecord, InteractionCursor, InteractionRecord,
        InteractionsPage,
    },
};
use uuid::Uuid;

use crate::{
    write::{facet_value, ms},
    Error,
};

fn time(ms: i64) -> Result<DateTime<Utc>, Error> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| Error::Corrupt(format!("time {ms}")))
}

fn definition(
    id: Option<Uuid>,
    name: Option<String>,
    points: Option<i64>,
) -> Option<DefinitionRef> {
    match (id, name) {
        (Some(id), Some(name)) => Some(DefinitionRef {
            id: Guid(id),
            name,
            points: points.unwrap_or(0),
        }),
        _ => None,
    }
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

const INTERACTION_COLUMNS: &str = "id, contact_id, device_id, session_id, open, started_at,
    last_activity, ended_at, close_reason, site_name, campaign_id, campaign_name, campaign_points,
    user_agent, engagement_value, page_view_count, event_count, current_page_view, browser,
    browser_version, os, device_type, ip, landing_url, referrer, channel, source, utm_source,
    utm_medium, utm_campaign, utm_term, utm_content, language";

fn live_interaction(row: &Row) -> Result<Interaction, Error> {
    Ok(Interaction {
        id: InteractionId(row.try_get(0)?),
        contact_id: ContactId(row.try_get(1)?),
        device_id: DeviceId(row.try_get(2)?),
        session_id: SessionId(row.try_get(3)?),
        started_at: time(row.try_get(5)?)?,
        last_activity: time(row.try_get(6)?)?,
        site_name: row.try_get(9)?,
        campaign: definition(row.try_get(10)?, row.try_get(11)?, row.try_get(12)?),
        user_agent: row.try_get(13)?,
        engagement_value: row.try_get(14)?,
        page_view_count: row.try_get(15)?,
        event_count: row.try_get(16)?,
        current_page_view: row.try_get::<_, Option<Uuid>>(17)?.map(EventId),
    })
}

fn attribution(row: &Row) -> Result<Attribution, Error> {
    Ok(Attribution {
        client: ClientInfo {
            browser: row.try_get(18)?,
            browser_version: row.try_get(19)?,
            os: row.try_get(20)?,
            device_type: row.try_get(21)?,
        },
        ip: row
            .try_get::<_, Option<String>>(22)?
            .and_then(|ip| ip.parse().ok()),
        landing_url: row.try_get(23)?,
        referrer: row.try_get(24)?,
        acquisition: tracker_core::acquisition::Acquisition::from_columns([
            row.try_get(25)?,
            row.try_get(26)?,
            row.try_get(27)?,
            row.try_get(28)?,
            row.try_get(29)?,
            row.try_get(30)?,
            row.try_get(31)?,
        ]),
        language: row.try_get(32)?,
    })
}

const EVENT_COLUMNS: &str = "e.interaction_id, e.seq, e.id, e.kind, e.definition_id,
    e.definition_name, e.points, e.timestamp, e.page_view_id, e.page_id, e.url, e.language,
    e.item_version, e.referrer, e.monetary_value, e.currency_code, e.data, e.data_key, e.text,
    e.value, e.custom";

fn event(row: &Row) -> Result<StoredEvent, Error> {
    let kind_text: String = row.try_get(3)?;
    let kind = EventKind::parse(&kind_text)
        .ok_or_else(|| Error::Corrupt(format!("kind '{kind_text}'")))?;
    let timestamp = time(row.try_get(7)?)?;
    let mut event = TrackedEvent::new(kind);
    event.definition = definition(row.try_get(4)?, row.try_get(5)?, row.try_get(6)?);
    event.timestamp = Some(timestamp);
    event.page = match row.try_get::<_, Option<Uuid>>(9)? {
        Some(page_id) => Some(PageInfo {
            page_id: Guid(page_id),
            url: row.try_get::<_, Option<String>>(10)?.unwrap_or_default(),
            language: row.try_get(11)?,
            item_version: row.try_get(12)?,
            referrer: row.try_get(13)?,
        }),
        None => None,
    };
    let money: Option<String> = row.try_get(14)?;
    event.monetary_value = money
        .map(|m| Decimal::from_str(&m).map_err(|_| Error::Corrupt(format!("money '{m}'"))))
        .transpose()?;
    event.currency_code = row.try_get(15)?;
    event.data = row.try_get(16)?;
    event.data_key = row.try_get(17)?;
    event.text = row.try_get(18)?;
    event.value = row.try_get(19)?;
    let custom: Option<String> = row.try_get(20)?;
    event.custom = custom
        .map(|c| serde_json::from_str(&c).map_err(|_| Error::Corrupt("custom values".into())))
        .transpose()?
        .unwrap_or_default();
    Ok(StoredEvent {
        id: EventId(row.try_get(2)?),
        seq: row.try_get(1)?,
        timestamp,
        page_view_id: row.try_get::<_, Option<Uuid>>(8)?.map(EventId),
        event,
    })
}

/// Every event of one interaction, in order.
async fn events_of(
    client: &impl GenericClient,
    contact: Uuid,
    interaction: Uuid,
) -> Result<Vec<StoredEvent>, Error> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events e
             WHERE e.contact_id = $1 AND e.interaction_id = $2 ORDER BY e.seq"
        ))
        .await?;
    client
        .query(&statement, &[&contact, &interaction])
        .await?
        .iter()
        .map(event)
        .collect()
}

/// Brings an open interaction's running totals up to date from its stored events.
async fn replay(client: &impl GenericClient, interaction: &mut Interaction) -> Result<(), Error> {
    let events = events_of(client, interaction.contact_id.0, interaction.id.0).await?;
    interaction.replay(&events);
    Ok(())
}

/// An open interaction's running totals from all its events, computed by PostgreSQL (the same
/// result as `Interaction::replay`, without reading the events).
async fn totals_in_sql(
    client: &impl GenericClient,
    interaction: &mut Interaction,
) -> Result<(), Error> {
    let (contact, id) = (interaction.contact_id.0, interaction.id.0);
    let statement = client
        .prepare_cached(
            "SELECT max(seq) + 1, count(*) FILTER (WHERE kind = 'pageView'), sum(points)::bigint,
                 max(timestamp),
                 (array_agg(id ORDER BY seq DESC) FILTER (WHERE kind = 'pageView'))[1],
                 (array_agg(definition_id ORDER BY seq DESC) FILTER (WHERE kind = 'campaign'))[1],
                 (array_agg(definition_name ORDER BY seq DESC) FILTER (WHERE kind = 'campaign'))[1],
                 (array_agg(points ORDER BY seq DESC) FILTER (WHERE kind = 'campaign'))[1]
             FROM events WHERE contact_id = $1 AND interaction_id = $2",
        )
        .await?;
    let row = client.query_one(&statement, &[&contact, &id]).await?;
    let Some(count) = row.try_get::<_, Option<i64>>(0)? else {
        return Ok(());
    };
    interaction.event_count = count;
    interaction.page_view_count = row.try_get(1)?;
    interaction.engagement_value = row.try_get::<_, Option<i64>>(2)?.unwrap_or(0);
    if let Some(latest) = row.try_get::<_, Option<i64>>(3)? {
        interaction.last_activity = interaction.last_activity.max(time(latest)?);
    }
    if let Some(page_view) = row.try_get::<_, Option<Uuid>>(4)? {
        interaction.current_page_view = Some(EventId(page_view));
    }
    if let Some(campaign) = definition(row.try_get(5)?, row.try_get(6)?, row.try_get(7)?) {
        interaction.campaign = Some(campaign);
    }
    Ok(())
}

/// The facts of one stored visit (for its roll-up, when it closes).
pub(crate) async fn facts(
    client: &impl GenericClient,
    contact: Uuid,
    interaction: Uuid,
) -> Result<Vec<Fact>, Error> {
    let statement = client
        .prepare_cached(
            "SELECT kind, definition_id, definition_name, points, url, monetary_value,
                 currency_code FROM events WHERE contact_id = $1 AND interaction_id = $2",
        )
        .await?;
    client
        .query(&statement, &[&contact, &interaction])
        .await?
        .iter()
        .map(|row| fact(row, 0))
        .collect()
}

/// The columns `kind, definition_id, definition_name, points, url, monetary_value,
/// currency_code` from `at`, as a [`Fact`].
pub(crate) fn fact(row: &Row, at: usize) -> Result<Fact, Error> {
    let kind: String = row.try_get(at)?;
    let kind = EventKind::parse(&kind).ok_or_else(|| Error::Corrupt(format!("kind '{kind}'")))?;
    let id: Option<Uuid> = row.try_get(at + 1)?;
    let name: Option<String> = row.try_get(at + 2)?;
    let money: Option<String> = row.try_get(at + 5)?;
    Ok(Fact {
        kind,
        definition: id.map(|id| (id, name.unwrap_or_default())),
        points: row.try_get(at + 3)?,
        url: row.try_get(at + 4)?,
        money: money
            .map(|m| Decimal::from_str(&m).map_err(|_| Error::Corrupt(format!("money '{m}'"))))
            .transpose()?,
        currency: row.try_get(at + 6)?,
    })
}

/// The open interactions, most recently active first, at most `limit`, with their running
/// totals brought up to date in SQL.
pub(crate) async fn open_interactions(
    client: &Object,
    max: usize,
) -> Result<Vec<Interaction>, Error> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {INTERACTION_COLUMNS} FROM interactions WHERE open
             ORDER BY last_activity DESC, id LIMIT $1"
        ))
        .await?;
    let mut open = client
        .query(&statement, &[&limit(max)])
        .await?
        .iter()
        .map(live_interaction)
        .collect::<Result<Vec<_>, _>>()?;
    for interaction in &mut open {
        totals_in_sql(client, interaction).await?;
    }
    Ok(open)
}

/// The open interaction of a session, with its totals replayed.
pub(crate) async fn open_interaction(
    client: &Object,
    session: SessionId,
) -> Result<Option<Interaction>, Error> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {INTERACTION_COLUMNS} FROM interactions WHERE session_id = $1 AND open"
        ))
        .await?;
    let Some(row) = client.query_opt(&statement, &[&session.0]).await? else {
        return Ok(None);
    };
    let mut interaction = live_interaction(&row)?;
    replay(client, &mut interaction).await?;
    Ok(Some(interaction))
}

/// A page of the open interactions whose row says they were idle before `idle_before`, in
/// order of start (then id) after `after`, with their totals replayed.
pub(crate) async fn idle_open_interactions(
    client: &Object,
    idle_before: DateTime<Utc>,
    after: Option<tracker_core::store::OpenCursor>,
    max: usize,
) -> Result<Vec<Interaction>, Error> {
    // Only those that started before the cutoff can be idle: a range of the index of open
    // interactions by start, from the cursor.
    let statement = client
        .prepare_cached(&format!(
            "SELECT {INTERACTION_COLUMNS} FROM interactions
             WHERE open AND started_at < $1 AND (started_at, id) > ($2, $3)
               AND last_activity < $1
             ORDER BY started_at, id LIMIT $4"
        ))
        .await?;
    let mut page = client
        .query(
            &statement,
            &[
                &ms(idle_before),
                &after.map_or(i64::MIN, |c| ms(c.started_at)),
                &after.map_or(Uuid::nil(), |c| c.id.0),
                &limit(max),
            ],
        )
        .await?
        .iter()
        .map(live_interaction)
        .collect::<Result<Vec<_>, _>>()?;
    for interaction in &mut page {
        replay(client, interaction).await?;
    }
    Ok(page)
}

/// A contact's summary columns, as the SQLite store computes them.
const SUMMARY_COLUMNS: &str = "c.id, c.created_at,
        c.engagement_value + coalesce(
            (SELECT sum(e.points) FROM interactions i JOIN events e
                 ON e.contact_id = i.contact_id AND e.interaction_id = i.id
             WHERE i.contact_id = c.id AND i.open), 0)::bigint,
        (SELECT count(*) FROM interactions i WHERE i.contact_id = c.id),
        (SELECT count(*) FROM events e WHERE e.contact_id = c.id AND e.kind = 'goal'),
        c.last_activity";

fn summary(row: &Row) -> Result<ContactSummary, Error> {
    let created_at = time(row.try_get(1)?)?;
    Ok(ContactSummary {
        id: ContactId(row.try_get(0)?),
        created_at,
        engagement_value: row.try_get(2)?,
        interaction_count: row.try_get(3)?,
        goal_count: row.try_get(4)?,
        last_activity: time(row.try_get(5)?)?,
    })
}

/// A query's text and its parameters, numbered as they are added.
#[derive(Default)]
struct Params {
    values: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Params {
    fn add(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.values.push(Box::new(value));
        format!("${}", self.values.len())
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values
            .iter()
            .map(|v| &**v as &(dyn ToSql + Sync))
            .collect()
    }
}

/// The goal, campaign and site the filter asks for.
fn facets(filter: &ContactFilter) -> Vec<Facet> {
    let mut facets = Vec::new();
    facets.extend(filter.goal.map(|g| Facet::Goal(g.0)));
    facets.extend(filter.campaign.map(|c| Facet::Campaign(c.0)));
    facets.extend(filter.site.clone().map(Facet::Site));
    facets
}

/// The condition on an open interaction `i` that it holds `facet`.
fn open_condition(facet: &Facet, params: &mut Params) -> String {
    match facet {
        Facet::Goal(id) => {
            let p = params.add(*id);
            format!(
                "EXISTS (SELECT 1 FROM events e WHERE e.contact_id = i.contact_id
                         AND e.interaction_id = i.id AND e.kind = 'goal'
                         AND e.definition_id = {p})"
            )
        }
        Facet::Campaign(id) => {
            let p = params.add(*id);
            format!(
                "(i.campaign_id = {p} OR EXISTS (SELECT 1 FROM events e
                     WHERE e.contact_id = i.contact_id AND e.interaction_id = i.id
                       AND e.kind = 'campaign' AND e.definition_id = {p}))"
            )
        }
        Facet::Site(site) => {
            let p = params.add(site.clone());
            format!("i.site_name = {p}")
        }
    }
}

/// The filter's conditions on `contacts c`.
fn contact_conditions(filter: &ContactFilter, params: &mut Params) -> String {
    let mut conditions = vec!["true".to_string()];
    if let Some(device) = filter.device {
        let p = params.add(device.0);
        conditions.push(format!(
            "c.id IN (SELECT contact_id FROM devices WHERE id = {p})"
        ));
    }
    match &filter.text {
        Some(ContactText::Id(guid)) => {
            let p = params.add(guid.0);
            conditions.push(format!(
                "(c.id = {p} OR c.id IN (SELECT contact_id FROM devices WHERE id = {p}))"
            ));
        }
        Some(ContactText::Identifier(identifier)) => {
            let p = params.add(identifier.clone());
            conditions.push(format!(
                "c.id IN (SELECT contact_id FROM identifiers WHERE identifier = {p})"
            ));
        }
        None => {}
    }
    for facet in facets(filter) {
        let (name, value) = (facet.name(), params.add(facet_value(&facet)));
        let open = open_condition(&facet, params);
        conditions.push(format!(
            "(EXISTS (SELECT 1 FROM contact_facets f WHERE f.contact_id = c.id
                      AND f.facet = '{name}' AND f.value = {value})
              OR c.id IN (SELECT i.contact_id FROM interactions i WHERE i.open AND {open}))"
        ));
    }
    if filter.active_from.is_some() || filter.active_before.is_some() {
        let from = params.add(filter.active_from.map_or(i64::MIN, ms));
        let before = params.add(filter.active_before.map_or(i64::MAX, ms));
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM interactions i WHERE i.contact_id = c.id
                     AND i.last_activity >= {from} AND i.started_at < {before})"
        ));
    }
    if filter.known_only {
        conditions.push("c.id IN (SELECT contact_id FROM identifiers)".to_string());
    }
    conditions.join(" AND ")
}

/// A read-only transaction on one snapshot: a read of several queries sees one state.
async fn snapshot(client: &mut Object) -> Result<deadpool_postgres::Transaction<'_>, Error> {
    Ok(client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?)
}

/// A page of the contacts the filter matches, most recently active first, with their total.
pub(crate) async fn contacts(
    client: &mut Object,
    filter: &ContactFilter,
) -> Result<ContactPage, Error> {
    let tx = snapshot(client).await?;
    let max = filter.limit.max(1);
    let mut params = Params::default();
    let conditions = contact_conditions(filter, &mut params);
    let total: i64 = tx
        .query_one(
            &format!("SELECT count(*) FROM contacts c WHERE {conditions}"),
            &params.refs(),
        )
        .await?
        .try_get(0)?;
    let mut after = String::new();
    if let Some(cursor) = filter.after {
        let at = params.add(ms(cursor.last_activity));
        let id = params.add(cursor.id.0);
        after = format!("AND (c.last_activity, c.id) < ({at}, {id})");
    }
    // One more than asked: whether there is a next page.
    let n = params.add(limit(max + 1));
    let rows = tx
        .query(
            &format!(
                "SELECT {SUMMARY_COLUMNS} FROM contacts c WHERE {conditions} {after}
                 ORDER BY c.last_activity DESC, c.id DESC LIMIT {n}"
            ),
            &params.refs(),
        )
        .await?;
    tx.commit().await?;
    let contacts = rows.iter().map(summary).collect::<Result<Vec<_>, _>>()?;
    Ok(ContactPage::from_rows(contacts, max, total))
}

/// One contact with its devices, identifiers and a page of its interactions.
pub(crate) async fn contact(
    client: &mut Object,
    id: ContactId,
    page: InteractionsPage,
) -> Result<Option<ContactRecord>, Error> {
    let tx = snapshot(client).await?;
    let contact = id.0;
    let Some(row) = tx
        .query_opt(
            &format!("SELECT {SUMMARY_COLUMNS} FROM contacts c WHERE c.id = $1"),
            &[&contact],
        )
        .await?
    else {
        return Ok(None);
    };
    let mut summary = summary(&row)?;
    let devices = devices_of(&tx, contact).await?;
    let identifiers = identifiers_of(&tx, contact).await?;
    let (mut interactions, older) = interactions_page(&tx, contact, &page).await?;
    add_events(&tx, contact, &mut interactions, &mut summary, &page).await?;
    tx.commit().await?;
    Ok(Some(ContactRecord {
        summary,
        devices,
        identifiers,
        interactions,
        older,
    }))
}

/// The contact's devices, oldest first.
async fn devices_of(
    tx: &deadpool_postgres::Transaction<'_>,
    contact: Uuid,
) -> Result<Vec<DeviceRecord>, Error> {
    tx.query(
        "SELECT id, first_seen, last_seen FROM devices WHERE contact_id = $1
             ORDER BY first_seen, id",
        &[&contact],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(DeviceRecord {
            id: DeviceId(row.try_get(0)?),
            first_seen: time(row.try_get(1)?)?,
            last_seen: time(row.try_get(2)?)?,
        })
    })
    .collect::<Result<Vec<_>, Error>>()
}

/// The contact's identifiers, its devices' cookies among them.
async fn identifiers_of(
    tx: &deadpool_postgres::Transaction<'_>,
    contact: Uuid,
) -> Result<Vec<IdentifierRecord>, Error> {
    tx.query(
        "SELECT source, identifier FROM identifiers WHERE contact_id = $1
             UNION
             SELECT 'SC_ANALYTICS_GLOBAL_COOKIE', replace(id::text, '-', '')
             FROM devices WHERE contact_id = $1
             ORDER BY 1, 2",
        &[&contact],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(IdentifierRecord {
            source: row.try_get(0)?,
            identifier: row.try_get(1)?,
        })
    })
    .collect::<Result<Vec<_>, Error>>()
}

/// The page of the contact's interactions `page` asks for, oldest first, and the cursor of
/// older ones if any remain.
async fn interactions_page(
    tx: &deadpool_postgres::Transaction<'_>,
    contact: Uuid,
    page: &InteractionsPage,
) -> Result<(Vec<InteractionRecord>, Option<InteractionCursor>), Error> {
    // The newest `limit` interactions before the cursor (one more: whether older ones
    // remain), then oldest first.
    let (before_ms, before_id) = match page.before {
        Some(cursor) => (ms(cursor.started_at), cursor.id.0),
        None => (i64::MAX, Uuid::max()),
    };
    let rows = tx
        .query(
            &format!(
                "SELECT {INTERACTION_COLUMNS} FROM interactions
                 WHERE contact_id = $1 AND (started_at, id) < ($2, $3)
                 ORDER BY started_at DESC, id DESC LIMIT $4"
            ),
            &[
                &contact,
                &before_ms,
                &before_id,
                &limit(page.rows_to_read()),
            ],
        )
        .await?;
    let newest_first = rows
        .iter()
        .map(|row| {
            Ok(InteractionRecord {
                interaction: live_interaction(row)?,
                open: row.try_get(4)?,
                ended_at: row.try_get::<_, Option<i64>>(7)?.map(time).transpose()?,
                close_reason: row.try_get(8)?,
                events: Vec::new(),
                events_omitted: 0,
                attribution: attribution(row)?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(page.from_rows(newest_first))
}

/// Each interaction's first events; an open one's totals as they stand.
async fn add_events(
    tx: &deadpool_postgres::Transaction<'_>,
    contact: Uuid,
    interactions: &mut [InteractionRecord],
    summary: &mut ContactSummary,
    page: &InteractionsPage,
) -> Result<(), Error> {
    let events_limit = limit(page.events_per_interaction);
    let statement = tx
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events e WHERE e.contact_id = $1
             AND e.interaction_id = $2 ORDER BY e.seq LIMIT $3"
        ))
        .await?;
    for record in interactions {
        record.events = tx
            .query(
                &statement,
                &[&contact, &record.interaction.id.0, &events_limit],
            )
            .await?
            .iter()
            .map(event)
            .collect::<Result<Vec<_>, _>>()?;
        if record.open {
            totals_in_sql(tx, &mut record.interaction).await?;
            summary.last_activity = summary.last_activity.max(record.interaction.last_activity);
        }
        record.events_omitted = u64::try_from(record.interaction.event_count)
            .unwrap_or(0)
            .saturating_sub(record.events.len() as u64);
    }
    Ok(())
}

/// The rows of a roll-up table a dashboard query covers (`$1` to `$3`: first day, last day,
/// site).
const COVERED: &str = "day >= $1 AND day <= $2 AND ($3::text IS NULL OR site = $3)";

/// The dashboard for `query`: roll-ups of its closed visits plus its open ones, as they stand.
pub(crate) async fn dashboard(
    client: &mut Object,
    query: &DashboardQuery,
) -> Result<Dashboard, Error> {
    let tx = snapshot(client).await?;
    let (from, to) = (day_number(query.from), day_number(query.to));
    let site = query.site.as_deref();
    let params: [&(dyn ToSql + Sync); 3] = [&from, &to, &site];
    let mut tally = Tally::default();
    load_visits(&tx, &params, &mut tally).await?;
    load_definitions(&tx, &params, &mut tally).await?;
    load_outcomes(&tx, &params, &mut tally).await?;
    load_pages(&tx, &params, &mut tally).await?;
    add_open_visits(&tx, (from, to, site), &mut tally).await?;
    tx.commit().await?;
    tally.dashboard().map_err(|e| Error::Corrupt(e.to_string()))
}

/// Visit figures per day and site.
async fn load_visits(
    tx: &deadpool_postgres::Transaction<'_>,
    params: &[&(dyn ToSql + Sync); 3],
    tally: &mut Tally,
) -> Result<(), Error> {
    for row in tx
        .query(
            &format!(
                "SELECT day, site, sum(visits)::bigint, sum(page_views)::bigint,
                     sum(bounces)::bigint, sum(engagement_value)::bigint,
                     sum(conversions)::bigint
                 FROM rollup_visits WHERE {COVERED} GROUP BY day, site"
            ),
            params,
        )
        .await?
    {
        tally.visits.insert(
            (row.try_get(0)?, row.try_get(1)?),
            Visits {
                visits: row.try_get(2)?,
                page_views: row.try_get(3)?,
                bounces: row.try_get(4)?,
                engagement_value: row.try_get(5)?,
                conversions: row.try_get(6)?,
            },
        );
    }
    Ok(())
}

/// Visits per definition, day and site.
async fn load_definitions(
    tx: &deadpool_postgres::Transaction<'_>,
    params: &[&(dyn ToSql + Sync); 3],
    tally: &mut Tally,
) -> Result<(), Error> {
    for row in tx
        .query(
            &format!(
                "SELECT day, site, kind, definition_id, max(name), sum(visits)::bigint
                 FROM rollup_definitions WHERE {COVERED}
                 GROUP BY day, site, kind, definition_id"
            ),
            params,
        )
        .await?
    {
        let kind: String = row.try_get(2)?;
        let kind = EventKind::parse(&kind)
            .ok_or_else(|| Error::Corrupt(format!("roll-up kind '{kind}'")))?;
        tally.definitions.insert(
            (row.try_get(0)?, row.try_get(1)?, kind, row.try_get(3)?),
            (row.try_get(4)?, row.try_get(5)?),
        );
    }
    Ok(())
}

/// Outcome sums per day, site, definition and currency.
async fn load_outcomes(
    tx: &deadpool_postgres::Transaction<'_>,
    params: &[&(dyn ToSql + Sync); 3],
    tally: &mut Tally,
) -> Result<(), Error> {
    for row in tx
        .query(
            &format!(
                "SELECT day, site, definition_id, currency, max(name), sum(count)::bigint,
                     sum(monetary_value)::text
                 FROM rollup_outcomes WHERE {COVERED}
                 GROUP BY day, site, definition_id, currency"
            ),
            params,
        )
        .await?
    {
        let money: Option<String> = row.try_get(6)?;
        tally.outcomes.insert(
            (
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
            ),
            OutcomeSum {
                name: row.try_get(4)?,
                count: row.try_get(5)?,
                // A sum of any size: PostgreSQL's numeric adds without overflow, and so does
                // a MoneySum.
                money: money
                    .map(|m| {
                        m.parse::<tracker_core::money::MoneySum>()
                            .map_err(|e| Error::Corrupt(e.to_string()))
                    })
                    .transpose()?,
            },
        );
    }
    Ok(())
}

/// Page views per day, site and URL.
async fn load_pages(
    tx: &deadpool_postgres::Transaction<'_>,
    params: &[&(dyn ToSql + Sync); 3],
    tally: &mut Tally,
) -> Result<(), Error> {
    for row in tx
        .query(
            &format!(
                "SELECT day, site, url, sum(page_views)::bigint FROM rollup_pages
                 WHERE {COVERED} GROUP BY day, site, url"
            ),
            params,
        )
        .await?
    {
        tally.pages.insert(
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?),
            row.try_get(3)?,
        );
    }
    Ok(())
}

/// The open visits the query covers, as they stand.
async fn add_open_visits(
    tx: &deadpool_postgres::Transaction<'_>,
    (from, to, site): (i64, i64, Option<&str>),
    tally: &mut Tally,
) -> Result<(), Error> {
    let rows = tx
        .query(
            "SELECT i.id, i.contact_id, i.started_at, i.site_name, e.kind, e.definition_id,
                 e.definition_name, e.points, e.url, e.monetary_value, e.currency_code
             FROM interactions i JOIN events e
                 ON e.contact_id = i.contact_id AND e.interaction_id = i.id
             WHERE i.open AND i.started_at >= $1 AND i.started_at < $2
               AND ($3::text IS NULL OR i.site_name = $3)
             ORDER BY i.id, e.seq",
            &[&(from * DAY_MS), &((to + 1) * DAY_MS), &site],
        )
        .await?;
    let mut current: Option<(Uuid, Uuid, i64, Option<String>)> = None;
    let mut facts = Vec::new();
    for row in &rows {
        let id: Uuid = row.try_get(0)?;
        if current.as_ref().map(|c| c.0) != Some(id) {
            if let Some((_, contact, started, site)) = current.take() {
                tally.add_visit(contact, started, site.as_deref(), &facts);
                facts.clear();
            }
            current = Some((id, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?));
        }
        facts.push(fact(row, 4)?);
    }
    if let Some((_, contact, started, site)) = current {
        tally.add_visit(contact, started, site.as_deref(), &facts);
    }
    Ok(())
}
