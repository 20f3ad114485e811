//! The roll-up tables and per-contact facets in SQLite, kept by the writer.
//!
//! `rollup_*` hold per-day, per-site sums of closed visits and `contact_facets` one row per
//! contact and goal, campaign or site of its closed visits; the arithmetic is
//! [`tracker_core::rollup::Tally`]'s (the same in every store). Here: reading visits into a
//! tally, writing a tally into the tables, and loading a dashboard's rows back into one.

use std::str::FromStr;

use rusqlite::{params, Connection, OptionalExtension, Row};
use rust_decimal::Decimal;
use tracker_core::{
    event::EventKind,
    money::MoneySum,
    rollup::{day_number, Facet, Fact, OutcomeSum, Tally, Visits, DAY_MS},
    store::{Dashboard, DashboardQuery},
};
use uuid::Uuid;

use crate::Error;

/// The columns `kind, definition_id, definition_name, points, url, monetary_value,
/// currency_code` from `at`, as a [`Fact`].
fn fact_from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<Fact> {
    let id: Option<Uuid> = row.get(at + 1)?;
    let name: Option<String> = row.get(at + 2)?;
    let money: Option<String> = row.get(at + 5)?;
    let money = money
        .map(|m| {
            Decimal::from_str(&m).map_err(|_| {
                rusqlite::Error::ToSqlConversionFailure(Box::new(Error::Corrupt(format!(
                    "money '{m}'"
                ))))
            })
        })
        .transpose()?;
    let kind: String = row.get(at)?;
    let kind = EventKind::parse(&kind).ok_or_else(|| {
        rusqlite::Error::ToSqlConversionFailure(Box::new(Error::Corrupt(format!(
            "event kind '{kind}'"
        ))))
    })?;
    Ok(Fact {
        kind,
        definition: id.map(|id| (id, name.unwrap_or_default())),
        points: row.get(at + 3)?,
        url: row.get(at + 4)?,
        money,
        currency: row.get(at + 6)?,
    })
}

/// A stored sum of money (decimal text of any size).
fn read_sum(text: &str) -> Result<MoneySum, Error> {
    text.parse().map_err(|_| {
        Error::Corrupt(format!(
            "money '{}'",
            text.chars().take(64).collect::<String>()
        ))
    })
}

const FACT_COLUMNS: &str = "e.kind, e.definition_id, e.definition_name, e.points, e.url,
    e.monetary_value, e.currency_code";

/// A facet's `value` column: a definition's id as a blob, a site's name as text.
pub(crate) fn facet_value(facet: &Facet) -> rusqlite::types::Value {
    match facet {
        Facet::Goal(id) | Facet::Campaign(id) => {
            rusqlite::types::Value::Blob(id.as_bytes().to_vec())
        }
        Facet::Site(site) => rusqlite::types::Value::Text(site.clone()),
    }
}

/// Adds the stored visit `interaction` (reads its events).
pub(crate) fn add_stored_visit(
    tally: &mut Tally,
    conn: &Connection,
    interaction: Uuid,
    contact: Uuid,
    started_ms: i64,
    site: Option<&str>,
) -> Result<(), Error> {
    let facts = conn
        .prepare_cached(&format!(
            "SELECT {FACT_COLUMNS} FROM events e WHERE e.interaction_id = ?1"
        ))?
        .query_map([interaction], |row| fact_from_row(row, 0))?
        .collect::<Result<Vec<_>, _>>()?;
    tally.add_visit(contact, started_ms, site, &facts);
    Ok(())
}

/// Adds every visit `sql` yields, as rows of `interaction id, contact id, started_at,
/// site_name` then the event columns of [`fact_from_row`], ordered by interaction.
/// Calls `flush` whenever the tally holds `every` visits (to bound memory).
fn add_joined(
    tally: &mut Tally,
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    every: usize,
    mut flush: impl FnMut(&mut Tally) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query(params)?;
    let mut current: Option<(Uuid, Uuid, i64, Option<String>)> = None;
    let mut facts = Vec::new();
    let mut added = 0usize;
    loop {
        let row = rows.next()?;
        let key = row
            .map(|row| -> rusqlite::Result<_> {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .transpose()?;
        if current.as_ref().map(|c| c.0) != key.as_ref().map(|k| k.0) {
            if let Some((_, contact, started, site)) = current.take() {
                tally.add_visit(contact, started, site.as_deref(), &facts);
                facts.clear();
                added += 1;
                if added % every.max(1) == 0 {
                    flush(tally)?;
                }
            }
            current = key;
        }
        match row {
            Some(row) => facts.push(fact_from_row(row, 4)?),
            None => break,
        }
    }
    Ok(())
}

/// Adds every closed visit already stored and writes them (the migration that created the
/// roll-up tables calls this).
pub(crate) fn backfill(conn: &Connection) -> Result<(), Error> {
    let mut tally = Tally::default();
    add_joined(
        &mut tally,
        conn,
        &format!(
            "SELECT i.id, i.contact_id, i.started_at, i.site_name, {FACT_COLUMNS}
             FROM interactions i JOIN events e ON e.interaction_id = i.id
             WHERE i.open = 0 ORDER BY i.id, e.seq"
        ),
        [],
        50_000,
        |tally| write(tally, conn),
    )?;
    write(&mut tally, conn)
}

/// Adds what this tally holds to the roll-up tables, and empties it.
pub(crate) fn write(tally: &mut Tally, conn: &Connection) -> Result<(), Error> {
    if tally.is_empty() {
        return Ok(());
    }
    write_visits(tally, conn)?;
    write_definitions(tally, conn)?;
    write_outcomes(tally, conn)?;
    write_pages(tally, conn)?;
    write_facets(tally, conn)
}

/// Visits, page views, bounces, value and conversions per day and site.
fn write_visits(tally: &mut Tally, conn: &Connection) -> Result<(), Error> {
    let mut visits = conn.prepare_cached(
        "INSERT INTO rollup_visits (day, site, visits, page_views, bounces, engagement_value,
             conversions) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (day, site) DO UPDATE SET visits = visits + excluded.visits,
             page_views = page_views + excluded.page_views,
             bounces = bounces + excluded.bounces,
             engagement_value = engagement_value + excluded.engagement_value,
             conversions = conversions + excluded.conversions",
    )?;
    for ((day, site), v) in tally.visits.drain() {
        visits.execute(params![
            day,
            site,
            v.visits,
            v.page_views,
            v.bounces,
            v.engagement_value,
            v.conversions
        ])?;
    }
    Ok(())
}

/// Visits that reached each goal, event, outcome and campaign per day and site.
fn write_definitions(tally: &mut Tally, conn: &Connection) -> Result<(), Error> {
    let mut definitions = conn.prepare_cached(
        "INSERT INTO rollup_definitions (day, site, kind, definition_id, name, visits)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (day, site, kind, definition_id) DO UPDATE SET
             name = excluded.name, visits = visits + excluded.visits",
    )?;
    for ((day, site, kind, id), (name, n)) in tally.definitions.drain() {
        definitions.execute(params![day, site, kind.as_str(), id, name, n])?;
    }
    Ok(())
}

/// Outcomes' counts and money per day, site, definition and currency.
fn write_outcomes(tally: &mut Tally, conn: &Connection) -> Result<(), Error> {
    // Money is summed exactly, as decimal text: read, add in Rust, write back.
    let mut money_now = conn.prepare_cached(
        "SELECT monetary_value FROM rollup_outcomes
         WHERE day = ?1 AND site = ?2 AND definition_id = ?3 AND currency = ?4",
    )?;
    let mut outcomes = conn.prepare_cached(
        "INSERT INTO rollup_outcomes (day, site, definition_id, currency, name, count,
             monetary_value) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (day, site, definition_id, currency) DO UPDATE SET
             name = excluded.name, count = count + excluded.count,
             monetary_value = excluded.monetary_value",
    )?;
    for ((day, site, id, currency), sum) in tally.outcomes.drain() {
        let before: Option<Option<String>> = money_now
            .query_row(params![day, site, id, currency], |row| row.get(0))
            .optional()?;
        let before = before.flatten().map(|m| read_sum(&m)).transpose()?;
        let money = match (before, sum.money) {
            (Some(mut a), Some(b)) => {
                a.add_sum(&b);
                Some(a)
            }
            (a, b) => a.or(b),
        };
        outcomes.execute(params![
            day,
            site,
            id,
            currency,
            sum.name,
            sum.count,
            money.map(|m| m.to_string())
        ])?;
    }
    Ok(())
}

/// Page views per day, site and URL.
fn write_pages(tally: &mut Tally, conn: &Connection) -> Result<(), Error> {
    let mut pages = conn.prepare_cached(
        "INSERT INTO rollup_pages (day, site, url, page_views) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (day, site, url) DO UPDATE SET page_views = page_views + excluded.page_views",
    )?;
    for ((day, site, url), n) in tally.pages.drain() {
        pages.execute(params![day, site, url, n])?;
    }
    Ok(())
}

/// What each contact did (goals, campaigns, sites), for the contact list's filters.
fn write_facets(tally: &mut Tally, conn: &Connection) -> Result<(), Error> {
    let mut facets = conn.prepare_cached(
        "INSERT INTO contact_facets (facet, value, contact_id) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
    )?;
    for (facet, contact) in tally.contact_facets.drain() {
        facets.execute(params![facet.name(), facet_value(&facet), contact])?;
    }
    Ok(())
}

/// The day range and site a dashboard query covers.
type Covered<'a> = (i64, i64, Option<&'a str>);

/// The rows of a roll-up table a query covers.
const COVERED: &str = "day >= ?1 AND day <= ?2 AND (?3 IS NULL OR site = ?3)";

/// The roll-ups of the closed visits the query covers plus the open visits it covers, as
/// they stand.
fn load(conn: &Connection, query: &DashboardQuery) -> Result<Tally, Error> {
    let covered = (
        day_number(query.from),
        day_number(query.to),
        query.site.as_deref(),
    );
    let mut tally = Tally::default();
    load_visits(&mut tally, conn, &covered)?;
    load_definitions(&mut tally, conn, &covered)?;
    load_outcomes(&mut tally, conn, &covered)?;
    load_pages(&mut tally, conn, &covered)?;
    let (from, to, site) = covered;
    // The open visits, as they stand (found through the partial index on open ones).
    add_joined(
        &mut tally,
        conn,
        &format!(
            "SELECT i.id, i.contact_id, i.started_at, i.site_name, {FACT_COLUMNS}
             FROM interactions i JOIN events e ON e.interaction_id = i.id
             WHERE i.open = 1 AND i.started_at >= ?1 AND i.started_at < ?2
               AND (?3 IS NULL OR i.site_name = ?3)
             ORDER BY i.id, e.seq"
        ),
        params![from * DAY_MS, (to + 1) * DAY_MS, site],
        usize::MAX,
        |_| Ok(()),
    )?;
    Ok(tally)
}

/// Visit figures per day and site.
fn load_visits(tally: &mut Tally, conn: &Connection, covered: &Covered<'_>) -> Result<(), Error> {
    let (from, to, site) = *covered;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT day, site, visits, page_views, bounces, engagement_value, conversions
         FROM rollup_visits WHERE {COVERED}"
    ))?;
    let mut rows = stmt.query(params![from, to, site])?;
    while let Some(row) = rows.next()? {
        let v = Visits {
            visits: row.get(2)?,
            page_views: row.get(3)?,
            bounces: row.get(4)?,
            engagement_value: row.get(5)?,
            conversions: row.get(6)?,
        };
        tally.visits.insert((row.get(0)?, row.get(1)?), v);
    }
    Ok(())
}

/// Visits per definition, day and site.
fn load_definitions(
    tally: &mut Tally,
    conn: &Connection,
    covered: &Covered<'_>,
) -> Result<(), Error> {
    let (from, to, site) = *covered;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT day, site, kind, definition_id, name, visits FROM rollup_definitions
         WHERE {COVERED}"
    ))?;
    let mut rows = stmt.query(params![from, to, site])?;
    while let Some(row) = rows.next()? {
        let kind: String = row.get(2)?;
        let kind = EventKind::parse(&kind)
            .ok_or_else(|| Error::Corrupt(format!("roll-up kind '{kind}'")))?;
        tally.definitions.insert(
            (row.get(0)?, row.get(1)?, kind, row.get(3)?),
            (row.get(4)?, row.get(5)?),
        );
    }
    Ok(())
}

/// Outcome sums per day, site, definition and currency.
fn load_outcomes(tally: &mut Tally, conn: &Connection, covered: &Covered<'_>) -> Result<(), Error> {
    let (from, to, site) = *covered;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT day, site, definition_id, currency, name, count, monetary_value
         FROM rollup_outcomes WHERE {COVERED}"
    ))?;
    let mut rows = stmt.query(params![from, to, site])?;
    while let Some(row) = rows.next()? {
        let money: Option<String> = row.get(6)?;
        let money = money.map(|m| read_sum(&m)).transpose()?;
        tally.outcomes.insert(
            (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?),
            OutcomeSum {
                name: row.get(4)?,
                count: row.get(5)?,
                money,
            },
        );
    }
    Ok(())
}

/// Page views per day, site and URL.
fn load_pages(tally: &mut Tally, conn: &Connection, covered: &Covered<'_>) -> Result<(), Error> {
    let (from, to, site) = *covered;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT day, site, url, page_views FROM rollup_pages WHERE {COVERED}"
    ))?;
    let mut rows = stmt.query(params![from, to, site])?;
    while let Some(row) = rows.next()? {
        tally
            .pages
            .insert((row.get(0)?, row.get(1)?, row.get(2)?), row.get(3)?);
    }
    Ok(())
}

/// The dashboard for `query`: roll-ups of its closed visits plus its open ones.
pub(crate) fn dashboard(conn: &Connection, query: &DashboardQuery) -> Result<Dashboard, Error> {
    load(conn, query)?
        .dashboard()
        .map_err(|e| Error::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::too_many_lines)]

    use chrono::{Duration, TimeZone, Utc};
    use tracker_core::{
        conformance::new_visit,
        event::{DefinitionRef, PageInfo, TrackedEvent},
        ids::{DeviceId, Guid},
        session::CloseReason,
    };

    use super::*;

    fn event(kind: EventKind, name: &str, id: u128) -> TrackedEvent {
        let mut event = TrackedEvent::new(kind);
        if kind == EventKind::PageView {
            event.page = Some(PageInfo {
                page_id: Guid(Uuid::from_u128(id)),
                url: format!("/{name}"),
                language: None,
                item_version: None,
                referrer: None,
            });
        } else {
            event.definition = Some(DefinitionRef {
                id: Guid(Uuid::from_u128(id)),
                name: name.into(),
                points: 10,
            });
        }
        if kind == EventKind::Outcome {
            event.monetary_value = Some("0.10".parse().unwrap());
            event.currency_code = Some("EUR".into());
        }
        event
    }

    /// The migration that adds the roll-ups fills them from the closed visits already stored,
    /// with the figures the writer would have kept: drop them, migrate again, same dashboard
    /// and same goal index.
    #[test]
    fn the_migration_backfills_what_the_writer_keeps() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("t.db")).unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        let start = Utc.with_ymd_and_hms(2026, 3, 1, 23, 0, 0).unwrap();
        let tx = conn.transaction().unwrap();
        let mut tally = Tally::default();
        for n in 0..40u32 {
            let mut events = vec![event(EventKind::PageView, &format!("p{}", n % 3), 1)];
            if n % 2 == 0 {
                events.push(event(EventKind::Goal, "Register", 2));
                events.push(event(EventKind::Goal, "Register", 2));
            }
            if n % 5 == 0 {
                events.push(event(EventKind::Outcome, "Purchase", 3));
                events.push(event(EventKind::Campaign, "Spring", 4));
            }
            let at = start + Duration::hours(i64::from(n));
            let mut change = new_visit(DeviceId::new_random(), at, events);
            if n % 4 != 2 {
                change.close = Some(change.interaction.close(CloseReason::Flush, at));
            }
            crate::writer::apply(&tx, &change, &mut tally).unwrap();
        }
        write(&mut tally, &tx).unwrap();
        tx.commit().unwrap();
        let query = DashboardQuery {
            from: start.date_naive(),
            to: (start + Duration::days(3)).date_naive(),
            site: None,
        };
        let kept = dashboard(&conn, &query).unwrap();
        assert_eq!(kept.visits, 40);
        assert_eq!(kept.goals[0].count, 20);
        assert_eq!(kept.outcomes[0].monetary_value["EUR"].to_string(), "0.80");
        let facets = |conn: &Connection| -> Vec<(String, i64)> {
            conn.prepare("SELECT facet, count(*) FROM contact_facets GROUP BY 1 ORDER BY 1")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        // Of closed visits only (open ones are read as they stand): 30 closed, 10 of them with
        // the goal, 6 with the campaign.
        let indexed = vec![
            ("campaign".to_string(), 6),
            ("goal".to_string(), 10),
            ("site".to_string(), 30),
        ];
        assert_eq!(facets(&conn), indexed);

        conn.execute_batch(
            "DELETE FROM rollup_visits; DELETE FROM rollup_definitions;
             DELETE FROM rollup_outcomes; DELETE FROM rollup_pages; DELETE FROM contact_facets;",
        )
        .unwrap();
        assert_ne!(dashboard(&conn, &query).unwrap(), kept);
        conn.execute_batch(
            "DROP TABLE rollup_visits; DROP TABLE rollup_definitions; DROP TABLE rollup_outcomes;
             DROP TABLE rollup_pages; DROP TABLE contact_facets; DROP TABLE readiness;
             DROP INDEX interactions_open_by_session; DROP TABLE settings;
             DROP INDEX interactions_open_by_start;
             CREATE INDEX interactions_open ON interactions (open) WHERE open = 1;
             DROP TABLE erased_contacts; DROP TABLE contact_merges;
             ALTER TABLE interactions DROP COLUMN landing_url;
             ALTER TABLE interactions DROP COLUMN referrer;
             ALTER TABLE interactions DROP COLUMN channel;
             ALTER TABLE interactions DROP COLUMN source;
             ALTER TABLE interactions DROP COLUMN utm_source;
             ALTER TABLE interactions DROP COLUMN utm_medium;
             ALTER TABLE interactions DROP COLUMN utm_campaign;
             ALTER TABLE interactions DROP COLUMN utm_term;
             ALTER TABLE interactions DROP COLUMN utm_content;
             ALTER TABLE interactions DROP COLUMN language;
             PRAGMA user_version = 5;",
        )
        .unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        assert_eq!(dashboard(&conn, &query).unwrap(), kept);
        assert_eq!(facets(&conn), indexed);
    }
}
