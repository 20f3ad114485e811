//! The arithmetic of daily roll-ups and the per-contact search facets, shared by every store.
//!
//! The dashboard's figures for a month are sums over hundreds of thousands of visits and
//! millions of events; read from the rows they cost seconds at 10 M events. A closed
//! interaction never changes again, so a store adds its contribution once, when it closes, to
//! small per-day, per-site tables, and the dashboard reads those plus the interactions still
//! open. Search by goal, campaign or site has the same cure: one row per contact and facet of
//! its closed visits.
//!
//! One [`Tally`] does the arithmetic for all of it, with no I/O: a store's writer fills one per
//! commit (so a day's row is written once per commit, not once per visit), a migration fills
//! one from visits already stored, and the dashboard fills one from the roll-up rows and the
//! open visits and turns it into figures ([`Tally::dashboard`]). The same arithmetic in every
//! store and every path, so they cannot disagree.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{
    event::EventKind,
    ids::Guid,
    money::MoneySum,
    session::StoredEvent,
    store::{Dashboard, DayFigures, DefinitionCount, OutcomeTotal},
    Error,
};

/// Milliseconds in a day: roll-ups are per UTC day of a visit's start.
pub const DAY_MS: i64 = 86_400_000;

/// A UTC day as a number: days since the epoch.
pub type Day = i64;

/// The day of a time in epoch milliseconds.
pub fn day_of(ms: i64) -> Day {
    ms.div_euclid(DAY_MS)
}

/// The day of a date.
pub fn day_number(date: NaiveDate) -> Day {
    day_of(
        date.and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp_millis()),
    )
}

/// The date of a day number, if it is one chrono can represent.
pub fn date_of(day: Day) -> Option<NaiveDate> {
    DateTime::<Utc>::from_timestamp_millis(day.saturating_mul(DAY_MS)).map(|t| t.date_naive())
}

/// What a visit's roll-up needs from one of its events.
#[derive(Debug, Clone)]
pub struct Fact {
    /// The event's kind.
    pub kind: EventKind,
    /// Its definition's id and name, if any.
    pub definition: Option<(Uuid, String)>,
    /// Its engagement points.
    pub points: i64,
    /// A page view's URL.
    pub url: Option<String>,
    /// An outcome's monetary value.
    pub money: Option<Decimal>,
    /// Its currency code.
    pub currency: Option<String>,
}

impl Fact {
    /// The fact of a stored event.
    pub fn of(stored: &StoredEvent) -> Self {
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
}

/// What contact search filters on, indexed per contact of closed visits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Facet {
    /// Reached this goal.
    Goal(Uuid),
    /// Visited with this campaign.
    Campaign(Uuid),
    /// Visited this site (`sc_site`).
    Site(String),
}

impl Facet {
    /// The facet's name as stored.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Goal(_) => "goal",
            Self::Campaign(_) => "campaign",
            Self::Site(_) => "site",
        }
    }
}

/// One day's and site's visit figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Visits {
    /// Visits that started that day.
    pub visits: i64,
    /// Their page views.
    pub page_views: i64,
    /// Those with one page view and nothing else.
    pub bounces: i64,
    /// Their events' points.
    pub engagement_value: i64,
    /// Their goal conversions (a visit counts once per goal).
    pub conversions: i64,
}

impl Visits {
    /// Adds another day's or site's figures (saturating: no sum may panic).
    pub fn add(&mut self, other: &Visits) {
        self.visits = self.visits.saturating_add(other.visits);
        self.page_views = self.page_views.saturating_add(other.page_views);
        self.bounces = self.bounces.saturating_add(other.bounces);
        self.engagement_value = self.engagement_value.saturating_add(other.engagement_value);
        self.conversions = self.conversions.saturating_add(other.conversions);
    }
}

/// One outcome's count and money, per day, site and currency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutcomeSum {
    /// The outcome's name as last recorded.
    pub name: String,
    /// How many were tracked.
    pub count: i64,
    /// Their monetary value, exact whatever its size; `None` when none carried one.
    pub money: Option<MoneySum>,
}

/// Visits' contributions to the roll-ups, summed in memory until written or read out.
#[derive(Debug, Default)]
pub struct Tally {
    /// Per day and site ("" for none).
    pub visits: HashMap<(Day, String), Visits>,
    /// Goals and campaigns: the visits that reached each (a visit counts once), and its name.
    pub definitions: HashMap<(Day, String, EventKind, Uuid), (String, i64)>,
    /// Per outcome and currency ("" for none): count and money.
    pub outcomes: HashMap<(Day, String, Uuid, String), OutcomeSum>,
    /// Page views per URL.
    pub pages: HashMap<(Day, String, String), i64>,
    /// The facets the visits give their contacts.
    pub contact_facets: HashSet<(Facet, Uuid)>,
}

impl Tally {
    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.visits.is_empty() && self.contact_facets.is_empty()
    }

    /// Adds one visit: its contact, the time it started, its site and every event it holds.
    pub fn add_visit(
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
        let mut reached: HashSet<(EventKind, Uuid)> = HashSet::new();
        let mut conversions = 0i64;
        for fact in facts {
            let converted = self.add_fact(day, site, contact, fact, &mut reached);
            conversions = conversions.saturating_add(i64::from(converted));
        }
        let page_views = facts
            .iter()
            .filter(|f| f.kind == EventKind::PageView)
            .count() as i64;
        // Counts and points saturate rather than overflow: no sum may panic the writer.
        let figures = self.visits.entry((day, site.to_string())).or_default();
        figures.visits = figures.visits.saturating_add(1);
        figures.page_views = figures.page_views.saturating_add(page_views);
        figures.bounces = figures
            .bounces
            .saturating_add(i64::from(facts.len() == 1 && page_views == 1));
        figures.engagement_value = figures.engagement_value.saturating_add(
            facts
                .iter()
                .fold(0i64, |sum, f| sum.saturating_add(f.points)),
        );
        figures.conversions = figures.conversions.saturating_add(conversions);
    }

    /// Adds one event of a visit: a page view to its page, a goal or campaign to its
    /// definition (once per visit, however often reached), an outcome to its sum. Says
    /// whether it converted (the visit's first reach of this goal).
    fn add_fact(
        &mut self,
        day: Day,
        site: &str,
        contact: Uuid,
        fact: &Fact,
        reached: &mut HashSet<(EventKind, Uuid)>,
    ) -> bool {
        let Some((id, name)) = &fact.definition else {
            if let (EventKind::PageView, Some(url)) = (fact.kind, &fact.url) {
                let n = self
                    .pages
                    .entry((day, site.to_string(), url.clone()))
                    .or_default();
                *n = n.saturating_add(1);
            }
            return false;
        };
        match fact.kind {
            EventKind::Goal | EventKind::Campaign if reached.insert((fact.kind, *id)) => {
                let entry = self
                    .definitions
                    .entry((day, site.to_string(), fact.kind, *id))
                    .or_insert_with(|| (name.clone(), 0));
                entry.0.clone_from(name);
                entry.1 = entry.1.saturating_add(1);
                let goal = fact.kind == EventKind::Goal;
                let facet = if goal {
                    Facet::Goal(*id)
                } else {
                    Facet::Campaign(*id)
                };
                self.contact_facets.insert((facet, contact));
                goal
            }
            EventKind::Outcome => {
                let currency = fact.currency.clone().unwrap_or_default();
                let sum = self
                    .outcomes
                    .entry((day, site.to_string(), *id, currency))
                    .or_default();
                sum.name.clone_from(name);
                sum.count = sum.count.saturating_add(1);
                if let Some(money) = fact.money {
                    sum.money.get_or_insert_default().add(money);
                }
                false
            }
            _ => false,
        }
    }

    /// The dashboard's figures from what the tally holds (a store loads the roll-up rows its
    /// query covers into it, and adds the open visits as they stand).
    pub fn dashboard(&self) -> Result<Dashboard, Error> {
        let mut dashboard = Dashboard::default();
        self.add_days(&mut dashboard)?;
        let per_definition = self.per_definition();
        dashboard.goals = ranked(&per_definition, EventKind::Goal);
        dashboard.campaigns = ranked(&per_definition, EventKind::Campaign);
        dashboard.outcomes = self.outcome_totals();
        dashboard.top_pages = self.top_pages(10);
        Ok(dashboard)
    }

    /// The totals and one row per day, all sites together.
    fn add_days(&self, dashboard: &mut Dashboard) -> Result<(), Error> {
        let mut days: BTreeMap<Day, Visits> = BTreeMap::new();
        for ((day, _), v) in &self.visits {
            days.entry(*day).or_default().add(v);
        }
        for (day, v) in days {
            dashboard.visits = dashboard.visits.saturating_add(count(v.visits));
            dashboard.page_views = dashboard.page_views.saturating_add(count(v.page_views));
            dashboard.bounces = dashboard.bounces.saturating_add(count(v.bounces));
            dashboard.engagement_value = dashboard
                .engagement_value
                .saturating_add(v.engagement_value);
            dashboard.days.push(DayFigures {
                date: date_of(day).ok_or_else(|| {
                    Error::Unavailable(format!("a roll-up's day {day} is out of range"))
                })?,
                visits: count(v.visits),
                page_views: count(v.page_views),
                conversions: count(v.conversions),
            });
        }
        Ok(())
    }

    /// Visits per definition, all days and sites together, with its latest name.
    fn per_definition(&self) -> HashMap<(EventKind, Uuid), (String, i64)> {
        let mut per_definition: HashMap<(EventKind, Uuid), (String, i64)> = HashMap::new();
        for ((_, _, kind, id), (name, n)) in &self.definitions {
            let entry = per_definition
                .entry((*kind, *id))
                .or_insert_with(|| (name.clone(), 0));
            entry.1 = entry.1.saturating_add(*n);
        }
        per_definition
    }

    /// Each outcome's count and money by currency, the most reached first.
    fn outcome_totals(&self) -> Vec<OutcomeTotal> {
        let mut outcomes: HashMap<Uuid, OutcomeTotal> = HashMap::new();
        for ((_, _, id, currency), sum) in &self.outcomes {
            let total = outcomes.entry(*id).or_insert_with(|| OutcomeTotal {
                id: Guid(*id),
                name: sum.name.clone(),
                count: 0,
                monetary_value: BTreeMap::new(),
            });
            total.count = total.count.saturating_add(count(sum.count));
            if let Some(money) = &sum.money {
                total
                    .monetary_value
                    .entry(currency.clone())
                    .or_default()
                    .add_sum(money);
            }
        }
        let mut outcomes: Vec<OutcomeTotal> = outcomes.into_values().collect();
        outcomes.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| a.id.cmp(&b.id))
        });
        outcomes
    }

    /// The `limit` most viewed pages (ties by URL).
    fn top_pages(&self, limit: usize) -> Vec<(String, u64)> {
        let mut pages: HashMap<&str, i64> = HashMap::new();
        for ((_, _, url), n) in &self.pages {
            let total = pages.entry(url.as_str()).or_default();
            *total = total.saturating_add(*n);
        }
        let mut pages: Vec<(&str, i64)> = pages.into_iter().collect();
        pages.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        pages
            .into_iter()
            .take(limit)
            .map(|(url, n)| (url.to_string(), count(n)))
            .collect()
    }
}

/// A stored count as the dashboard shows it (never negative).
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The definitions of `kind`, the most reached first (ties by name, then id: the same
/// figures always list in the same order).
fn ranked(
    per_definition: &HashMap<(EventKind, Uuid), (String, i64)>,
    kind: EventKind,
) -> Vec<DefinitionCount> {
    let mut list: Vec<DefinitionCount> = per_definition
        .iter()
        .filter(|((k, _), _)| *k == kind)
        .map(|((_, id), (name, n))| DefinitionCount {
            id: Guid(*id),
            name: name.clone(),
            count: count(*n),
        })
        .collect();
    list.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.id.cmp(&b.id))
    });
    list
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn fact(kind: EventKind, id: u128, money: Option<&str>) -> Fact {
        Fact {
            kind,
            definition: (kind != EventKind::PageView).then(|| (Uuid::from_u128(id), "D".into())),
            points: 5,
            url: (kind == EventKind::PageView).then(|| "/".into()),
            money: money.map(|m| m.parse().unwrap()),
            currency: money.map(|_| "EUR".into()),
        }
    }

    #[test]
    fn a_visit_counts_once_per_goal_and_money_adds_exactly() {
        let mut tally = Tally::default();
        let contact = Uuid::from_u128(9);
        let visit = [
            fact(EventKind::PageView, 0, None),
            fact(EventKind::Goal, 1, None),
            fact(EventKind::Goal, 1, None),
            fact(EventKind::Outcome, 2, Some("0.10")),
            fact(EventKind::Outcome, 2, Some("0.20")),
        ];
        tally.add_visit(contact, 0, Some("web"), &visit);
        tally.add_visit(contact, DAY_MS, None, &visit[..1]);
        let dashboard = tally.dashboard().unwrap();
        assert_eq!(dashboard.visits, 2);
        assert_eq!(dashboard.bounces, 1);
        assert_eq!(dashboard.goals[0].count, 1);
        assert_eq!(dashboard.days.len(), 2);
        assert_eq!(dashboard.days[0].conversions, 1);
        assert_eq!(dashboard.engagement_value, 30);
        assert_eq!(dashboard.outcomes[0].count, 2);
        assert_eq!(
            dashboard.outcomes[0].monetary_value["EUR"].to_string(),
            "0.30"
        );
        assert_eq!(dashboard.top_pages, vec![("/".to_string(), 2)]);
        assert!(tally
            .contact_facets
            .contains(&(Facet::Goal(Uuid::from_u128(1)), contact)));
        assert!(tally
            .contact_facets
            .contains(&(Facet::Site("web".into()), contact)));
    }
}
