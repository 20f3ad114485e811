//! `tracker-bench reads`: how long the Experience Profile's and the admin API's reads take on a
//! database of a given size (from `prefill`): contact search (first page, by goal, by device),
//! a contact's page, and the dashboard for 30 days. Straight on the store, as the handlers call
//! it; the median and the slowest of the runs, in milliseconds.

use std::{path::Path, time::Instant};

use anyhow::Context;
use chrono::{Duration, Utc};
use tracker_core::{
    definitions::{DefinitionKind, Definitions},
    ids::Guid,
    store::{ContactFilter, ContactText, DashboardQuery, Store},
};
use tracker_store_sqlite::{SqliteConfig, SqliteStore};

/// One measured read.
#[derive(Debug, serde::Serialize)]
pub(crate) struct ReadTiming {
    pub(crate) read: String,
    pub(crate) median_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) result: String,
}

async fn time<T, F, Fut>(runs: usize, mut read: F) -> anyhow::Result<(f64, f64, T)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tracker_core::Error>>,
{
    let mut samples = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        last = Some(read().await?);
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    let median = samples[samples.len() / 2];
    let max = samples[samples.len() - 1];
    Ok((median, max, last.context("no run")?))
}

/// Runs every read `runs` times on the database at `db`.
pub(crate) async fn reads(db: &Path, runs: usize) -> anyhow::Result<Vec<ReadTiming>> {
    anyhow::ensure!(
        db.exists(),
        "{} does not exist: make it with `prefill`",
        db.display()
    );
    let store = SqliteStore::open(SqliteConfig::new(db))?;
    let definitions = Definitions::defaults();
    let goal: Guid = definitions.list(DefinitionKind::Goal)[0].id;
    let mut out = Vec::new();
    let mut record = |read: &str, (median, max, result): (f64, f64, String)| {
        out.push(ReadTiming {
            read: read.into(),
            median_ms: median,
            max_ms: max,
            result,
        });
    };
    let first = |filter: ContactFilter| {
        let store = store.clone();
        move || {
            let (store, filter) = (store.clone(), filter.clone());
            async move { store.contacts(filter).await }
        }
    };
    let page = time(
        runs,
        first(ContactFilter {
            limit: 50,
            ..ContactFilter::default()
        }),
    )
    .await?;
    let some = page
        .2
        .contacts
        .get(page.2.contacts.len() / 2)
        .cloned()
        .context("no contacts")?;
    record(
        "contacts: first page of 50, with the total",
        (page.0, page.1, format!("{} contacts", page.2.total)),
    );
    let by_goal = time(
        runs,
        first(ContactFilter {
            limit: 50,
            goal: Some(goal),
            ..ContactFilter::default()
        }),
    )
    .await?;
    record(
        "contacts: by goal reached, first page and total",
        (
            by_goal.0,
            by_goal.1,
            format!("{} contacts", by_goal.2.total),
        ),
    );
    let by_site = time(
        runs,
        first(ContactFilter {
            limit: 50,
            site: Some("website".into()),
            ..ContactFilter::default()
        }),
    )
    .await?;
    record(
        "contacts: by site, first page and total",
        (
            by_site.0,
            by_site.1,
            format!("{} contacts", by_site.2.total),
        ),
    );
    let by_goal_and_site = time(
        runs,
        first(ContactFilter {
            limit: 50,
            goal: Some(goal),
            site: Some("website".into()),
            ..ContactFilter::default()
        }),
    )
    .await?;
    record(
        "contacts: by goal and site, first page and total",
        (
            by_goal_and_site.0,
            by_goal_and_site.1,
            format!("{} contacts", by_goal_and_site.2.total),
        ),
    );
    let by_id = time(
        runs,
        first(ContactFilter {
            limit: 50,
            text: Some(ContactText::Id(Guid(some.id.0))),
            ..ContactFilter::default()
        }),
    )
    .await?;
    record(
        "contacts: by contact id",
        (by_id.0, by_id.1, format!("{} contact", by_id.2.total)),
    );
    let contact = time(runs, || {
        let store = store.clone();
        async move {
            store
                .contact(some.id, tracker_core::store::InteractionsPage::ALL)
                .await
        }
    })
    .await?;
    let events: usize = contact
        .2
        .as_ref()
        .map_or(0, |c| c.interactions.iter().map(|i| i.events.len()).sum());
    record(
        "a contact's page",
        (contact.0, contact.1, format!("{events} events")),
    );
    let now = Utc::now();
    let dashboard = time(runs, || {
        let store = store.clone();
        async move {
            store
                .dashboard(DashboardQuery {
                    from: (now - Duration::days(29)).date_naive(),
                    to: now.date_naive(),
                    site: None,
                })
                .await
        }
    })
    .await?;
    record(
        "dashboard: 30 days, all sites",
        (
            dashboard.0,
            dashboard.1,
            format!("{} visits", dashboard.2.visits),
        ),
    );
    Ok(out)
}

/// The Markdown table.
pub(crate) fn table(rows: &[ReadTiming]) -> String {
    let mut out = String::from("| read | median ms | slowest ms | result |\n|---|---|---|---|\n");
    for r in rows {
        out.push_str(&format!(
            "| {} | {:.1} | {:.1} | {} |\n",
            r.read, r.median_ms, r.max_ms, r.result
        ));
    }
    out
}
