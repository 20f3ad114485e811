//! Daily roll-ups of closed visits, and the per-contact goal index, kept by the writer.
//!
//! The dashboard's figures for a month are sums over hundreds of thousands of visits and
//! millions of events; read from the rows they cost seconds at 10 M events. A closed
//! interaction never changes again, so its contribution is added once, when it closes, to small
//! per-day, per-site tables (`rollup_*`), and the dashboard reads those plus the interactions
//! still open (few, and found through their partial index). Search by goal has the same
//! problem (every goal event of every contact, every visit's site) and the same cure:
//! `contact_facets` holds one row per contact and goal, campaign or site of its closed visits.
//!
//! One [`Tally`] does all of it: the writer fills one per group commit (so a day's row is
//! written once per commit, not once per visit), the migration that created the tables fills
//! one from the visits already stored, and the dashboard fills one from the roll-up rows and
//! the open visits, and turns it into figures. The same arithmetic everywhere, so the three
//! cannot disagree.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    str::FromStr,
};

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use rust_decimal::Decimal;
use tracker_core::{
    event::EventKind,
    ids::Guid,
    session::StoredEvent,
    store::{Dashboard, DashboardQuery, DayFigures, DefinitionCount, OutcomeTotal},
};
use uuid::Uuid;

use crate::Error;

/// Milliseconds in a day: roll-ups are per UTC day of a visit's start.
const DAY_MS: i64 = 86_400_000;

/// The UTC day number (days since the epoch) of a stored time.
pub(crate) fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

fn day_number(date: NaiveDate) -> i64 {
    day_of(
        date.and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp_millis()),
    )
}

fn date_of(day: i64) -> Result<NaiveDate, Error> {
    DateTime::<Utc>::from_timestamp_millis(day.saturating_mul(DAY_MS))
        .map(|t| t.date_naive())
        .ok_or_else(|| Error::Corrupt(format!("day {day}")))
}

/// What a visit's roll-up needs from one of its events.
#[derive(Debug, Clone)]
pub(crate) struct Fact {
    pub(crate) kind: EventKind,
    pub(crate) definition: Option<(Uuid, String)>,
    pub(crate) points: i64,
    pub(crate) url: Option<String>,
    pub(crate) money: Option<Decimal>,
    pub(crate) currency: Option<String>,
}

impl Fact {
    pub(crate) fn of(stored: &StoredEvent) -> Self {
        let event = &stored.event;
        Self {
            kind: event.kind,
            definition: event.definition.as_ref().map(|d| (d.id.0, d.name.clone())),
            points: event.points(),
            url: event.page.as_ref().map(|p| p.url.clone()),
            money: event.monetary_value,
            currency: event.currency_code.clone(),
        }
    }

    /// The columns `kind, definition_id, definition_name, points, url, monetary_value,
    /// currency_code` from `at`.
    fn from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<Self> {
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
        Ok(Self {
            kind,
            definition: id.map(|id| (id, name.unwrap_or_default())),
            points: row.get(at + 3)?,
            url: row.get(at + 4)?,
            money,
            currency: row.get(at + 6)?,
        })
    }
}

const FACT_COLUMNS: &str = "e.kind, e.definition_id, e.definition_name, e.points, e.url,
    e.monetary_value, e.currency_code";

/// One day's and site's visit figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Visits {
    visits: i64,
    page_views: i64,
    bounces: i64,
    engagement_value: i64,
    conversions: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct OutcomeSum {
    name: String,
    count: i64,
    money: Option<Decimal>,
}

type Day = i64;

/// Visits' contributions to the roll-ups, summed in memory until written or read out.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    visits: HashMap<(Day, String), Visits>,
    /// Goals and campaigns: the visits that reached each (a visit counts once), and its name.
    definitions: HashMap<(Day, String, EventKind, Uuid), (String, i64)>,
    /// Per outcome and currency ("" for none): count and money.
    outcomes: HashMap<(Day, String, Uuid, String), OutcomeSum>,
    pages: HashMap<(Day, String, String), i64>,
    contact_facets: HashSet<(Facet, Uuid)>,
}

/// What contact search can filter on, indexed per contact in `contact_facets`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Facet {
    Goal(Uuid),
    Campaign(Uuid),
    Site(String),
}

impl Facet {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Goal(_) => "goal",
            Self::Campaign(_) => "campaign",
            Self::Site(_) => "site",
        }
    }

    /// The `value` column: a definition's id as a blob, a site's name as text.
    pub(crate) fn value(&self) -> rusqlite::types::Value {
        match self {
            Self::Goal(id) | Self::Campaign(id) => {
                rusqlite::types::Value::Blob(id.as_bytes().to_vec())
            }
            Self::Site(site) => rusqlite::types::Value::Text(site.clone()),
        }
    }
}

impl Tally {
    pub(crate) fn is_empty(&self) -> bool {
        self.visits.is_empty() && self.contact_facets.is_empty()
    }

    /// Adds one visit: its contact, the time it started, its site and every event it holds.
    pub(crate) fn add_visit(
        &mut self,
        contact: Uuid,
        started_ms: i64,
        site: Option<&str>,
        facts: &[Fact],
    ) {
        let day = day_of(started_ms);
        let site = site.unwrap_or_default();
        if !site.is_empty() {
            self.contact_facets
                .insert((Facet::Site(site.to_string()), contact));
        }
        let figures = self.visits.entry((day, site.to_string())).or_default();
        let page_views = facts
            .iter()
            .filter(|f| f.kind == EventKind::PageView)
            .count() as i64;
        figures.visits += 1;
        figures.page_views += page_views;
        figures.bounces += i64::from(facts.len() == 1 && page_views == 1);
        figures.engagement_value += facts.iter().map(|f| f.points).sum::<i64>();
        let mut reached: HashSet<(EventKind, Uuid)> = HashSet::new();
        for fact in facts {
            let Some((id, name)) = &fact.definition else {
                if fact.kind == EventKind::PageView {
                    if let Some(url) = &fact.url {
                        *self
                            .pages
                            .entry((day, site.to_string(), url.clone()))
                            .or_default() += 1;
                    }
                }
                continue;
            };
            match fact.kind {
                // A visit counts once per goal or campaign, however often it reached it.
                EventKind::Goal | EventKind::Campaign if reached.insert((fact.kind, *id)) => {
                    let entry = self
                        .definitions
                        .entry((day, site.to_string(), fact.kind, *id))
                        .or_insert_with(|| (name.clone(), 0));
                    entry.0.clone_from(name);
                    entry.1 += 1;
                    let facet = if fact.kind == EventKind::Goal {
                        figures.conversions += 1;
                        Facet::Goal(*id)
                    } else {
                        Facet::Campaign(*id)
                    };
                    self.contact_facets.insert((facet, contact));
                }
                EventKind::Outcome => {
                    let currency = fact.currency.clone().unwrap_or_default();
                    let sum = self
                        .outcomes
                        .entry((day, site.to_string(), *id, currency))
                        .or_default();
                    sum.name.clone_from(name);
                    sum.count += 1;
                    if let Some(money) = fact.money {
                        *sum.money.get_or_insert_default() += money;
                    }
                }
                _ => {}
            }
        }
    }

    /// Adds the stored visit `interaction` (reads its events).
    pub(crate) fn add_stored_visit(
        &mut self,
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
            .query_map([interaction], |row| Fact::from_row(row, 0))?
            .collect::<Result<Vec<_>, _>>()?;
        self.add_visit(contact, started_ms, site, &facts);
        Ok(())
    }

    /// Adds every visit `sql` yields, as rows of `interaction id, contact id, started_at,
    /// site_name` then the event columns of [`Fact::from_row`], ordered by interaction.
    /// Calls `flush` whenever the tally holds `every` visits (to bound memory).
    fn add_joined(
        &mut self,
        conn: &Connection,
        sql: &str,
        params: impl rusqlite::Params,
        every: usize,
        mut flush: impl FnMut(&mut Self) -> Result<(), Error>,
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
                    self.add_visit(contact, started, site.as_deref(), &facts);
                    facts.clear();
                    added += 1;
                    if added % every.max(1) == 0 {
                        flush(self)?;
                    }
                }
                current = key;
            }
            match row {
                Some(row) => facts.push(Fact::from_row(row, 4)?),
                None => break,
            }
        }
        Ok(())
    }

    /// Adds every closed visit already stored and writes them (the migration that created the
    /// roll-up tables calls this).
    pub(crate) fn backfill(conn: &Connection) -> Result<(), Error> {
        let mut tally = Tally::default();
        tally.add_joined(
            conn,
            &format!(
                "SELECT i.id, i.contact_id, i.started_at, i.site_name, {FACT_COLUMNS}
                 FROM interactions i JOIN events e ON e.interaction_id = i.id
                 WHERE i.open = 0 ORDER BY i.id, e.seq"
            ),
            [],
            50_000,
            |tally| tally.write(conn),
        )?;
        tally.write(conn)
    }

    /// Adds what this tally holds to the roll-up tables, and empties it.
    pub(crate) fn write(&mut self, conn: &Connection) -> Result<(), Error> {
        if self.is_empty() {
            return Ok(());
        }
        let mut visits = conn.prepare_cached(
            "INSERT INTO rollup_visits (day, site, visits, page_views, bounces, engagement_value,
                 conversions) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (day, site) DO UPDATE SET visits = visits + excluded.visits,
                 page_views = page_views + excluded.page_views,
                 bounces = bounces + excluded.bounces,
                 engagement_value = engagement_value + excluded.engagement_value,
                 conversions = conversions + excluded.conversions",
        )?;
        for ((day, site), v) in self.visits.drain() {
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
        let mut definitions = conn.prepare_cached(
            "INSERT INTO rollup_definitions (day, site, kind, definition_id, name, visits)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (day, site, kind, definition_id) DO UPDATE SET
                 name = excluded.name, visits = visits + excluded.visits",
        )?;
        for ((day, site, kind, id), (name, n)) in self.definitions.drain() {
            definitions.execute(params![day, site, kind.as_str(), id, name, n])?;
        }
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
        for ((day, site, id, currency), sum) in self.outcomes.drain() {
            let before: Option<Option<String>> = money_now
                .query_row(params![day, site, id, currency], |row| row.get(0))
                .optional()?;
            let before = before
                .flatten()
                .map(|m| Decimal::from_str(&m).map_err(|_| Error::Corrupt(format!("money '{m}'"))))
                .transpose()?;
            let money = match (before, sum.money) {
                (Some(a), Some(b)) => Some(a + b),
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
        let mut pages = conn.prepare_cached(
            "INSERT INTO rollup_pages (day, site, url, page_views) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (day, site, url) DO UPDATE SET page_views = page_views + excluded.page_views",
        )?;
        for ((day, site, url), n) in self.pages.drain() {
            pages.execute(params![day, site, url, n])?;
        }
        let mut facets = conn.prepare_cached(
            "INSERT INTO contact_facets (facet, value, contact_id) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )?;
        for (facet, contact) in self.contact_facets.drain() {
            facets.execute(params![facet.name(), facet.value(), contact])?;
        }
        Ok(())
    }

    /// The roll-ups of the closed visits the query covers plus the open visits it covers, as
    /// they stand.
    fn load(conn: &Connection, query: &DashboardQuery) -> Result<Self, Error> {
        let (from, to) = (day_number(query.from), day_number(query.to));
        let site = query.site.as_deref();
        let mut tally = Tally::default();
        let covered = "day >= ?1 AND day <= ?2 AND (?3 IS NULL OR site = ?3)";
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT day, site, visits, page_views, bounces, engagement_value, conversions
             FROM rollup_visits WHERE {covered}"
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
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT day, site, kind, definition_id, name, visits FROM rollup_definitions
             WHERE {covered}"
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
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT day, site, definition_id, currency, name, count, monetary_value
             FROM rollup_outcomes WHERE {covered}"
        ))?;
        let mut rows = stmt.query(params![from, to, site])?;
        while let Some(row) = rows.next()? {
            let money: Option<String> = row.get(6)?;
            let money = money
                .map(|m| Decimal::from_str(&m).map_err(|_| Error::Corrupt(format!("money '{m}'"))))
                .transpose()?;
            tally.outcomes.insert(
                (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?),
                OutcomeSum {
                    name: row.get(4)?,
                    count: row.get(5)?,
                    money,
                },
            );
        }
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT day, site, url, page_views FROM rollup_pages WHERE {covered}"
        ))?;
        let mut rows = stmt.query(params![from, to, site])?;
        while let Some(row) = rows.next()? {
            tally
                .pages
                .insert((row.get(0)?, row.get(1)?, row.get(2)?), row.get(3)?);
        }
        // The open visits, as they stand (found through the partial index on open ones).
        tally.add_joined(
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
}

/// The dashboard for `query`: roll-ups of its closed visits plus its open ones.
pub(crate) fn dashboard(conn: &Connection, query: &DashboardQuery) -> Result<Dashboard, Error> {
    let tally = Tally::load(conn, query)?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let mut dashboard = Dashboard::default();
    let mut days: BTreeMap<Day, Visits> = BTreeMap::new();
    for ((day, _), v) in &tally.visits {
        let d = days.entry(*day).or_default();
        d.visits += v.visits;
        d.page_views += v.page_views;
        d.bounces += v.bounces;
        d.engagement_value += v.engagement_value;
        d.conversions += v.conversions;
    }
    for (day, v) in days {
        dashboard.visits += count(v.visits);
        dashboard.page_views += count(v.page_views);
        dashboard.bounces += count(v.bounces);
        dashboard.engagement_value += v.engagement_value;
        dashboard.days.push(DayFigures {
            date: date_of(day)?,
            visits: count(v.visits),
            page_views: count(v.page_views),
            conversions: count(v.conversions),
        });
    }
    let mut per_definition: HashMap<(EventKind, Uuid), (String, i64)> = HashMap::new();
    for ((_, _, kind, id), (name, n)) in &tally.definitions {
        let entry = per_definition
            .entry((*kind, *id))
            .or_insert_with(|| (name.clone(), 0));
        entry.1 += n;
    }
    let ranked = |kind: EventKind| {
        let mut list: Vec<DefinitionCount> = per_definition
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, id), (name, n))| DefinitionCount {
                id: Guid(*id),
                name: name.clone(),
                count: count(*n),
            })
            .collect();
        list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        list
    };
    dashboard.goals = ranked(EventKind::Goal);
    dashboard.campaigns = ranked(EventKind::Campaign);
    let mut outcomes: HashMap<Uuid, OutcomeTotal> = HashMap::new();
    for ((_, _, id, currency), sum) in &tally.outcomes {
        let total = outcomes.entry(*id).or_insert_with(|| OutcomeTotal {
            id: Guid(*id),
            name: sum.name.clone(),
            count: 0,
            monetary_value: BTreeMap::new(),
        });
        total.count += count(sum.count);
        if let Some(money) = sum.money {
            *total.monetary_value.entry(currency.clone()).or_default() += money;
        }
    }
    let mut outcomes: Vec<OutcomeTotal> = outcomes.into_values().collect();
    outcomes.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    dashboard.outcomes = outcomes;
    let mut pages: HashMap<&str, i64> = HashMap::new();
    for ((_, _, url), n) in &tally.pages {
        *pages.entry(url.as_str()).or_default() += n;
    }
    let mut pages: Vec<(&str, i64)> = pages.into_iter().collect();
    pages.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    dashboard.top_pages = pages
        .into_iter()
        .take(10)
        .map(|(url, n)| (url.to_string(), count(n)))
        .collect();
    Ok(dashboard)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::{Duration, TimeZone};
    use tracker_core::{
        conformance::new_visit,
        event::{DefinitionRef, PageInfo, TrackedEvent},
        ids::DeviceId,
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
        tally.write(&tx).unwrap();
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
             PRAGMA user_version = 5;",
        )
        .unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        assert_eq!(dashboard(&conn, &query).unwrap(), kept);
        assert_eq!(facets(&conn), indexed);
    }
}
