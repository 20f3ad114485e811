//! Read queries, and the mapping from rows back to domain records.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params_from_iter, types::Value, Connection, OptionalExtension, Row};
use rust_decimal::Decimal;
use tracker_core::{
    acquisition::Acquisition,
    client_info::{Attribution, ClientInfo},
    event::{DefinitionRef, EventKind, PageInfo, TrackedEvent},
    ids::{ContactId, DeviceId, DeviceKey, EventId, Guid, InteractionId, SessionId},
    session::{Interaction, StoredEvent},
    store::{
        ContactFilter, ContactPage, ContactRecord, ContactSummary, ContactText, DeviceRecord,
        IdentifierRecord, InteractionCursor, InteractionRecord, InteractionsPage, OpenCursor,
    },
};
use uuid::Uuid;

use tracker_core::rollup::Facet;

use crate::{rollup::facet_value, Error};

/// A time as stored: epoch milliseconds.
pub(crate) fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn time(ms: i64) -> rusqlite::Result<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| corrupt(format!("time {ms}")))
}

fn corrupt(what: String) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(Error::Corrupt(what)))
}

fn definition(
    id: Option<Uuid>,
    name: Option<String>,
    points: Option<i64>,
) -> rusqlite::Result<Option<DefinitionRef>> {
    Ok(match (id, name) {
        (Some(id), Some(name)) => Some(DefinitionRef {
            id: Guid(id),
            name,
            points: points.unwrap_or(0),
        }),
        _ => None,
    })
}

const INTERACTION_COLUMNS: &str = "id, contact_id, device_id, session_id, open, started_at,
    last_activity, ended_at, close_reason, site_name, campaign_id, campaign_name, campaign_points,
    user_agent, engagement_value, page_view_count, event_count, current_page_view, browser,
    browser_version, os, device_type, ip, landing_url, referrer, channel, source, utm_source,
    utm_medium, utm_campaign, utm_term, utm_content, language";

fn live_interaction(row: &Row<'_>) -> rusqlite::Result<Interaction> {
    Ok(Interaction {
        id: InteractionId(row.get(0)?),
        contact_id: ContactId(row.get(1)?),
        device_id: DeviceId(row.get(2)?),
        session_id: SessionId(row.get(3)?),
        started_at: time(row.get(5)?)?,
        last_activity: time(row.get(6)?)?,
        site_name: row.get(9)?,
        campaign: definition(row.get(10)?, row.get(11)?, row.get(12)?)?,
        user_agent: row.get(13)?,
        engagement_value: row.get(14)?,
        page_view_count: row.get(15)?,
        event_count: row.get(16)?,
        current_page_view: row.get::<_, Option<Uuid>>(17)?.map(EventId),
    })
}

fn attribution(row: &Row<'_>) -> rusqlite::Result<Attribution> {
    Ok(Attribution {
        client: ClientInfo {
            browser: row.get(18)?,
            browser_version: row.get(19)?,
            os: row.get(20)?,
            device_type: row.get(21)?,
        },
        ip: row
            .get::<_, Option<String>>(22)?
            .and_then(|ip| ip.parse().ok()),
        landing_url: row.get(23)?,
        referrer: row.get(24)?,
        acquisition: Acquisition::from_columns([
            row.get(25)?,
            row.get(26)?,
            row.get(27)?,
            row.get(28)?,
            row.get(29)?,
            row.get(30)?,
            row.get(31)?,
        ]),
        language: row.get(32)?,
    })
}

/// The open interactions, most recently active first, at most `limit`, with their running
/// totals brought up to date in SQL (the rows keep them only now and then). Ordered by the
/// rows' last activity, which lags by at most the refresh interval.
pub(crate) fn open_interactions(
    conn: &Connection,
    limit: usize,
) -> Result<Vec<Interaction>, Error> {
    let mut open: Vec<Interaction> = conn
        .prepare_cached(&format!(
            "SELECT {INTERACTION_COLUMNS} FROM interactions WHERE open = 1
             ORDER BY last_activity DESC, id LIMIT ?1"
        ))?
        .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], live_interaction)?
        .collect::<Result<_, _>>()?;
    for interaction in &mut open {
        totals_in_sql(conn, interaction)?;
    }
    Ok(open)
}

/// An open interaction's running totals from all its events, computed by SQLite (the same
/// result as `Interaction::replay`, without reading the events into memory).
fn totals_in_sql(conn: &Connection, interaction: &mut Interaction) -> Result<(), Error> {
    let id = interaction.id.0;
    let (count, page_views, points, latest): (Option<i64>, Option<i64>, Option<i64>, Option<i64>) =
        conn.prepare_cached(
            "SELECT max(seq) + 1, sum(kind = 'pageView'), sum(points), max(timestamp)
             FROM events WHERE interaction_id = ?1",
        )?
        .query_row([id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?;
    let Some(count) = count else {
        return Ok(());
    };
    interaction.event_count = count;
    interaction.page_view_count = page_views.unwrap_or(0);
    interaction.engagement_value = points.unwrap_or(0);
    if let Some(latest) = latest {
        interaction.last_activity = interaction.last_activity.max(time(latest)?);
    }
    interaction.current_page_view = conn
        .prepare_cached(
            "SELECT id FROM events WHERE interaction_id = ?1 AND kind = 'pageView'
             ORDER BY seq DESC LIMIT 1",
        )?
        .query_row([id], |row| row.get::<_, Uuid>(0))
        .optional()?
        .map(EventId)
        .or(interaction.current_page_view);
    let campaign = conn
        .prepare_cached(
            "SELECT definition_id, definition_name, points FROM events
             WHERE interaction_id = ?1 AND kind = 'campaign' ORDER BY seq DESC LIMIT 1",
        )?
        .query_row([id], |row| {
            definition(row.get(0)?, row.get(1)?, row.get(2)?)
        })
        .optional()?
        .flatten();
    if campaign.is_some() {
        interaction.campaign = campaign;
    }
    Ok(())
}

/// Brings an open interaction's running totals up to date from its stored events.
fn replay(conn: &Connection, interaction: &mut Interaction) -> Result<(), Error> {
    let events = conn
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events e WHERE e.interaction_id = ?1 ORDER BY e.seq"
        ))?
        .query_map([interaction.id.0], event)?
        .map(|row| row.map(|(_, stored)| stored))
        .collect::<Result<Vec<_>, _>>()?;
    interaction.replay(&events);
    Ok(())
}

/// The open interaction of a session, with its totals replayed (through the partial index on
/// open interactions' sessions).
pub(crate) fn open_interaction(
    conn: &Connection,
    session: SessionId,
) -> Result<Option<Interaction>, Error> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT {INTERACTION_COLUMNS} FROM interactions WHERE session_id = ?1 AND open = 1"
        ))?
        .query_row([session.0], live_interaction)
        .optional()?;
    let Some(mut interaction) = found else {
        return Ok(None);
    };
    replay(conn, &mut interaction)?;
    Ok(Some(interaction))
}

/// A page of the open interactions whose row says they were idle before `idle_before`, in
/// order of start (then id) after `after`, with their totals replayed. A row's last activity
/// can lag behind its events (it is refreshed now and then), so the caller checks the
/// replayed one. Only interactions that started before `idle_before` are read (the index of
/// open interactions by start), however many others are open.
pub(crate) fn idle_open_interactions(
    conn: &Connection,
    idle_before: DateTime<Utc>,
    after: Option<OpenCursor>,
    limit: usize,
) -> Result<Vec<Interaction>, Error> {
    let mut page = conn
        .prepare_cached(&format!(
            "SELECT {INTERACTION_COLUMNS} FROM interactions
             WHERE open = 1 AND started_at < ?1 AND (started_at, id) > (?2, ?3)
               AND last_activity < ?1
             ORDER BY started_at, id LIMIT ?4"
        ))?
        .query_map(
            rusqlite::params![
                ms(idle_before),
                // From the first: before every start, and the empty blob before every id. A
                // range from the cursor, so that each page starts at its place in the index
                // instead of walking it from the start (quadratic over a sweep).
                after.map_or(i64::MIN, |c| ms(c.started_at)),
                after.map_or_else(Vec::new, |c| c.id.0.as_bytes().to_vec()),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            live_interaction,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    for interaction in &mut page {
        replay(conn, interaction)?;
    }
    Ok(page)
}

/// How many interactions are open in the store.
pub(crate) fn open_count(conn: &Connection) -> Result<u64, Error> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM interactions WHERE open = 1")?
        .query_row([], |row| row.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The key that signs device ids (created with the schema).
pub(crate) fn device_key(conn: &Connection) -> Result<DeviceKey, Error> {
    let bytes: Vec<u8> = conn
        .prepare_cached("SELECT value FROM settings WHERE name = 'device_key'")?
        .query_row([], |row| row.get(0))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| Error::Corrupt("settings.device_key is not 32 bytes".into()))?;
    Ok(DeviceKey::from_bytes(bytes))
}

const EVENT_COLUMNS: &str = "e.interaction_id, e.seq, e.id, e.kind, e.definition_id,
    e.definition_name, e.points, e.timestamp, e.page_view_id, e.page_id, e.url, e.language,
    e.item_version, e.referrer, e.monetary_value, e.currency_code, e.data, e.data_key, e.text,
    e.value, e.custom";

fn summary(row: &Row<'_>) -> rusqlite::Result<ContactSummary> {
    let created_at = time(row.get(1)?)?;
    Ok(ContactSummary {
        id: ContactId(row.get(0)?),
        created_at,
        engagement_value: row.get(2)?,
        interaction_count: row.get(3)?,
        goal_count: row.get(4)?,
        last_activity: row
            .get::<_, Option<i64>>(5)?
            .map(time)
            .transpose()?
            .unwrap_or(created_at),
    })
}

/// A contact's summary columns, in the order [`summary`] reads them. The contact row's last
/// activity follows its interactions' whenever their rows are written (at most the refresh
/// interval behind a live one). The contact row's engagement value holds its closed
/// interactions'; an open one's is the sum of its events' points (its row's total may lag
/// behind them, see `ChangeSet::refresh_interaction`).
const SUMMARY_COLUMNS: &str = "c.id AS id, c.created_at AS created_at,
        c.engagement_value + coalesce(
            (SELECT sum(e.points) FROM interactions i JOIN events e ON e.interaction_id = i.id
             WHERE i.contact_id = c.id AND i.open = 1), 0) AS engagement,
        (SELECT count(*) FROM interactions i WHERE i.contact_id = c.id) AS interactions,
        (SELECT count(*) FROM interactions i JOIN events e ON e.interaction_id = i.id
         WHERE i.contact_id = c.id AND e.kind = 'goal') AS goals,
        c.last_activity AS activity";

/// The filter's conditions on `contacts c`, and their parameters.
fn contact_conditions(filter: &ContactFilter) -> (String, Vec<Value>) {
    let mut conditions = vec!["1".to_string()];
    let mut params: Vec<Value> = Vec::new();
    let mut param = |value: Value| {
        params.push(value);
        format!("?{}", params.len())
    };
    if let Some(device) = filter.device {
        let p = param(Value::Blob(device.0.as_bytes().to_vec()));
        conditions.push(format!(
            "c.id IN (SELECT contact_id FROM devices WHERE id = {p})"
        ));
    }
    match &filter.text {
        Some(ContactText::Id(guid)) => {
            let p = param(Value::Blob(guid.0.as_bytes().to_vec()));
            conditions.push(format!(
                "(c.id = {p} OR c.id IN (SELECT contact_id FROM devices WHERE id = {p}))"
            ));
        }
        Some(ContactText::Identifier(identifier)) => {
            let p = param(Value::Text(identifier.clone()));
            conditions.push(format!(
                "c.id IN (SELECT contact_id FROM identifiers WHERE identifier = {p})"
            ));
        }
        None => {}
    }
    // Goals, campaigns and sites of closed visits are indexed per contact (see `rollup`);
    // open visits are read as they stand (their contacts listed once per query, through the
    // partial index on open interactions, not looked up per contact).
    for facet in facets(filter) {
        let (name, value) = (facet.name(), param(facet_value(&facet)));
        conditions.push(format!(
            "(EXISTS (SELECT 1 FROM contact_facets f
                      WHERE f.facet = '{name}' AND f.value = {value} AND f.contact_id = c.id)
              OR c.id IN (SELECT i.contact_id FROM interactions i WHERE i.open = 1 AND {}))",
            open_condition(&facet, &value)
        ));
    }
    if filter.active_from.is_some() || filter.active_before.is_some() {
        let from = param(Value::Integer(filter.active_from.map_or(i64::MIN, ms)));
        let before = param(Value::Integer(filter.active_before.map_or(i64::MAX, ms)));
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM interactions i WHERE i.contact_id = c.id
                     AND i.last_activity >= {from} AND i.started_at < {before})"
        ));
    }
    if filter.known_only {
        conditions.push("c.id IN (SELECT contact_id FROM identifiers)".to_string());
    }
    (conditions.join(" AND "), params)
}

/// The goal, campaign and site the filter asks for.
fn facets(filter: &ContactFilter) -> Vec<Facet> {
    let mut facets = Vec::new();
    facets.extend(filter.goal.map(|g| Facet::Goal(g.0)));
    facets.extend(filter.campaign.map(|c| Facet::Campaign(c.0)));
    facets.extend(filter.site.clone().map(Facet::Site));
    facets
}

/// The condition on an open interaction `i` that it holds `facet` (bound as `value`).
fn open_condition(facet: &Facet, value: &str) -> String {
    match facet {
        Facet::Goal(_) => format!(
            "EXISTS (SELECT 1 FROM events e WHERE e.interaction_id = i.id AND e.kind = 'goal'
                     AND e.definition_id = {value})"
        ),
        Facet::Campaign(_) => format!(
            "(i.campaign_id = {value} OR EXISTS (SELECT 1 FROM events e
                 WHERE e.interaction_id = i.id AND e.kind = 'campaign'
                   AND e.definition_id = {value}))"
        ),
        Facet::Site(_) => format!("i.site_name = {value}"),
    }
}

/// The contacts with `facet`: those of the index (closed visits) plus those whose open visits
/// hold it and are not indexed yet. Counted from the index, without visiting every contact.
fn facet_total(conn: &Connection, facet: &Facet) -> Result<i64, Error> {
    let name = facet.name();
    let open = open_condition(facet, "?1");
    Ok(conn
        .prepare_cached(&format!(
            "SELECT (SELECT count(*) FROM contact_facets WHERE facet = '{name}' AND value = ?1)
                  + (SELECT count(DISTINCT i.contact_id) FROM interactions i
                     WHERE i.open = 1 AND {open}
                       AND NOT EXISTS (SELECT 1 FROM contact_facets f WHERE f.facet = '{name}'
                                       AND f.value = ?1 AND f.contact_id = i.contact_id))"
        ))?
        .query_row([facet_value(facet)], |row| row.get(0))?)
}

/// Below this many matches, a search on one goal, campaign or site starts from its contacts and
/// sorts them; above it, walking the contacts newest first finds a page sooner.
const FEW_CONTACTS: i64 = 5_000;

pub(crate) fn contacts(conn: &Connection, filter: &ContactFilter) -> Result<ContactPage, Error> {
    let limit = filter.limit.max(1);
    let (conditions, mut params) = contact_conditions(filter);
    // One goal, campaign or site and nothing else: counted from the index.
    let facets = facets(filter);
    let only_facet = match facets.as_slice() {
        [facet]
            if filter.device.is_none()
                && filter.text.is_none()
                && filter.active_from.is_none()
                && filter.active_before.is_none()
                && !filter.known_only =>
        {
            Some(facet)
        }
        _ => None,
    };
    let mut order = "c.last_activity";
    let total: i64 = match only_facet {
        Some(facet) => {
            let total = facet_total(conn, facet)?;
            if total <= FEW_CONTACTS {
                // Not through the recency index: look the few contacts up, then sort them.
                order = "+c.last_activity";
            }
            total
        }
        None => conn
            .prepare_cached(&format!(
                "SELECT count(*) FROM contacts c WHERE {conditions}"
            ))?
            .query_row(params_from_iter(params.iter()), |row| row.get(0))?,
    };
    let mut after = String::new();
    if let Some(cursor) = filter.after {
        params.push(Value::Integer(ms(cursor.last_activity)));
        params.push(Value::Blob(cursor.id.0.as_bytes().to_vec()));
        let n = params.len();
        after = format!("AND (c.last_activity, c.id) < (?{}, ?{n})", n - 1);
    }
    // One more than asked: whether there is a next page.
    params.push(Value::Integer(i64::try_from(limit + 1).unwrap_or(i64::MAX)));
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM contacts c WHERE {conditions} {after}
         ORDER BY {order} DESC, c.id DESC LIMIT ?{}",
        params.len()
    );
    let contacts = conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(params.iter()), summary)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ContactPage::from_rows(contacts, limit, total))
}

fn event(row: &Row<'_>) -> rusqlite::Result<(Uuid, StoredEvent)> {
    let kind_text: String = row.get(3)?;
    let kind =
        EventKind::parse(&kind_text).ok_or_else(|| corrupt(format!("kind '{kind_text}'")))?;
    let timestamp = time(row.get(7)?)?;
    let mut event = TrackedEvent::new(kind);
    event.definition = definition(row.get(4)?, row.get(5)?, row.get(6)?)?;
    event.timestamp = Some(timestamp);
    event.page = match row.get::<_, Option<Uuid>>(9)? {
        Some(page_id) => Some(PageInfo {
            page_id: Guid(page_id),
            url: row.get::<_, Option<String>>(10)?.unwrap_or_default(),
            language: row.get(11)?,
            item_version: row.get(12)?,
            referrer: row.get(13)?,
        }),
        None => None,
    };
    let money: Option<String> = row.get(14)?;
    event.monetary_value = money
        .map(|m| Decimal::from_str(&m).map_err(|_| corrupt(format!("money '{m}'"))))
        .transpose()?;
    event.currency_code = row.get(15)?;
    event.data = row.get(16)?;
    event.data_key = row.get(17)?;
    event.text = row.get(18)?;
    event.value = row.get(19)?;
    let custom: Option<String> = row.get(20)?;
    event.custom = custom
        .map(|c| serde_json::from_str(&c).map_err(|_| corrupt("custom values".into())))
        .transpose()?
        .unwrap_or_default();
    Ok((
        row.get(0)?,
        StoredEvent {
            id: EventId(row.get(2)?),
            seq: row.get(1)?,
            timestamp,
            page_view_id: row.get::<_, Option<Uuid>>(8)?.map(EventId),
            event,
        },
    ))
}

/// One contact with its devices, identifiers and a page of its interactions.
pub(crate) fn contact(
    conn: &Connection,
    id: ContactId,
    page: InteractionsPage,
) -> Result<Option<ContactRecord>, Error> {
    let id_blob = id.0;
    let Some(mut summary) = conn
        .prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM contacts c WHERE c.id = ?1"
        ))?
        .query_row([id_blob], summary)
        .optional()?
    else {
        return Ok(None);
    };
    let devices = devices_of(conn, id_blob)?;
    let identifiers = identifiers_of(conn, id_blob)?;
    let (mut interactions, older) = interactions_page(conn, id_blob, &page)?;
    add_events(conn, &mut interactions, &mut summary, &page)?;
    Ok(Some(ContactRecord {
        summary,
        devices,
        identifiers,
        interactions,
        older,
    }))
}

/// The contact's devices, oldest first.
fn devices_of(conn: &Connection, id_blob: Uuid) -> Result<Vec<DeviceRecord>, Error> {
    conn.prepare_cached(
        "SELECT id, first_seen, last_seen FROM devices WHERE contact_id = ?1 ORDER BY first_seen",
    )?
    .query_map([id_blob], |row| {
        Ok(DeviceRecord {
            id: DeviceId(row.get(0)?),
            first_seen: time(row.get(1)?)?,
            last_seen: time(row.get(2)?)?,
        })
    })?
    .collect::<Result<Vec<_>, _>>()
    .map_err(Error::from)
}

/// The contact's identifiers, its devices' cookies among them.
fn identifiers_of(conn: &Connection, id_blob: Uuid) -> Result<Vec<IdentifierRecord>, Error> {
    conn.prepare_cached(
        "SELECT source, identifier FROM identifiers WHERE contact_id = ?1
             UNION
             SELECT 'SC_ANALYTICS_GLOBAL_COOKIE', lower(hex(id)) FROM devices WHERE contact_id = ?1
             ORDER BY 1, 2",
    )?
    .query_map([id_blob], |row| {
        Ok(IdentifierRecord {
            source: row.get(0)?,
            identifier: row.get(1)?,
        })
    })?
    .collect::<Result<Vec<_>, _>>()
    .map_err(Error::from)
}

/// The page of the contact's interactions `page` asks for, oldest first, and the cursor of
/// older ones if any remain.
fn interactions_page(
    conn: &Connection,
    id_blob: Uuid,
    page: &InteractionsPage,
) -> Result<(Vec<InteractionRecord>, Option<InteractionCursor>), Error> {
    // The newest `limit` interactions before the cursor (one more: whether older ones remain),
    // then oldest first.
    let (before_ms, before_id) = match page.before {
        Some(cursor) => (ms(cursor.started_at), cursor.id.0.as_bytes().to_vec()),
        None => (i64::MAX, vec![0xff; 17]),
    };
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {INTERACTION_COLUMNS} FROM interactions
             WHERE contact_id = ?1 AND (started_at, id) < (?2, ?3)
             ORDER BY started_at DESC, id DESC LIMIT ?4"
        ))?
        .query_map(
            rusqlite::params![id_blob, before_ms, before_id, page.rows_to_read() as i64],
            |row| {
                Ok(InteractionRecord {
                    interaction: live_interaction(row)?,
                    open: row.get(4)?,
                    ended_at: row.get::<_, Option<i64>>(7)?.map(time).transpose()?,
                    close_reason: row.get(8)?,
                    events: Vec::new(),
                    events_omitted: 0,
                    attribution: attribution(row)?,
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page.from_rows(rows))
}

/// Each interaction's first events; an open one's totals as they stand.
fn add_events(
    conn: &Connection,
    interactions: &mut [InteractionRecord],
    summary: &mut ContactSummary,
    page: &InteractionsPage,
) -> Result<(), Error> {
    let events_limit = page.events_per_interaction.min(i64::MAX as usize) as i64;
    let mut events = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events e WHERE e.interaction_id = ?1 ORDER BY e.seq LIMIT ?2"
    ))?;
    for record in interactions {
        record.events = events
            .query_map(
                rusqlite::params![record.interaction.id.0, events_limit],
                event,
            )?
            .map(|row| row.map(|(_, stored)| stored))
            .collect::<Result<Vec<_>, _>>()?;
        if record.open {
            // Its row's totals lag (refreshed now and then): from all its events, in SQL,
            // without holding them all.
            totals_in_sql(conn, &mut record.interaction)?;
            summary.last_activity = summary.last_activity.max(record.interaction.last_activity);
        }
        record.events_omitted = u64::try_from(record.interaction.event_count)
            .unwrap_or(0)
            .saturating_sub(record.events.len() as u64);
    }
    Ok(())
}
