//! What the PostgreSQL store does beyond the behaviour suite: a session state behind the store
//! is told apart (stale, not unavailable), one bad change-set in a group leaves the others
//! committed, and an unreachable server fails instead of hanging.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use tracker_core::{
    conformance::new_visit,
    event::{EventKind, TrackedEvent},
    ids::DeviceId,
    store::{ChangeSet, Store},
    Error,
};
use tracker_store_postgres::{PostgresConfig, PostgresStore};

fn url() -> String {
    std::env::var("JSS_TRACKER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A store in a fresh schema, dropped by the returned guard's owner at the end.
async fn store() -> (PostgresStore, String) {
    let mut config = PostgresConfig::new(url());
    config.schema = format!("store_test_{}", uuid::Uuid::now_v7().simple());
    let schema = config.schema.clone();
    (PostgresStore::open(config).await.expect("open"), schema)
}

async fn drop_schema(schema: &str) {
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .expect("drop schema");
}

fn at() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0)
        .single()
        .expect("a time")
}

/// The next batch of a committed visit.
fn next_batch(first: &ChangeSet) -> ChangeSet {
    let mut interaction = first.interaction.clone();
    let events = interaction.record(vec![TrackedEvent::new(EventKind::Goal)], at());
    ChangeSet::batch(&interaction, events, false, false, None)
}

#[tokio::test]
async fn events_already_stored_make_the_session_stale_not_the_store_unavailable() {
    let (store, schema) = store().await;
    let first = new_visit(
        DeviceId::new_random(),
        at(),
        vec![TrackedEvent::new(EventKind::PageView)],
    );
    store.commit(first.clone()).await.expect("first batch");
    let second = next_batch(&first);
    store.commit(second.clone()).await.expect("second batch");
    // A node that committed `second` but could not save its session sends it again.
    match store.commit(second).await {
        Err(Error::Stale(detail)) => {
            assert!(detail.contains("already has these events"), "{detail}")
        }
        other => panic!("expected stale, got {other:?}"),
    }
    drop_schema(&schema).await;
}

#[tokio::test]
async fn one_bad_change_set_among_many_leaves_the_others_committed() {
    let (store, schema) = store().await;
    let first = new_visit(
        DeviceId::new_random(),
        at(),
        vec![TrackedEvent::new(EventKind::PageView)],
    );
    store.commit(first.clone()).await.expect("first batch");
    let stale = next_batch(&first);
    store.commit(stale.clone()).await.expect("batch");
    // Many at once, so that writers group them: every good one commits, the stale one fails.
    let good: Vec<ChangeSet> = (0..40)
        .map(|_| {
            new_visit(
                DeviceId::new_random(),
                at(),
                vec![TrackedEvent::new(EventKind::PageView)],
            )
        })
        .collect();
    let mut commits: Vec<_> = good.into_iter().map(|c| store.commit(c)).collect();
    commits.insert(20, store.commit(stale));
    let outcomes = futures::future::join_all(commits).await;
    let failed: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| o.is_err())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(failed, vec![20], "{outcomes:?}");
    assert_eq!(store.open_count().await.expect("count"), 41);
    drop_schema(&schema).await;
}

#[tokio::test]
async fn an_unreachable_server_fails_instead_of_hanging() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut config = PostgresConfig::new(format!("postgres://postgres@127.0.0.1:{port}/test"));
    config.timeout = Duration::from_secs(1);
    let opened = PostgresStore::open(config).await;
    assert!(opened.is_err(), "nothing listens on {port}");
}

/// Two devices' contacts giving the same identifier at the same moment (in one transaction or
/// in two writers' at once) end up one contact, every time.
#[tokio::test]
async fn two_contacts_identifying_at_once_become_one() {
    let (store, schema) = store().await;
    for round in 0..10 {
        let email = format!("ada{round}@example.com");
        let mut visits = Vec::new();
        for _ in 0..2 {
            let first = new_visit(
                DeviceId::new_random(),
                at(),
                vec![TrackedEvent::new(EventKind::PageView)],
            );
            let receipt = store.commit(first.clone()).await.expect("first batch");
            let mut interaction = first.interaction.clone();
            interaction.contact_id = receipt.contact_id;
            visits.push(interaction);
        }
        let commits = visits.iter_mut().map(|interaction| {
            let mut identification = TrackedEvent::new(EventKind::Identification);
            identification.data_key = Some("email".into());
            identification.data = Some(email.clone());
            let events = interaction.record(vec![identification], at());
            store.commit(ChangeSet::batch(interaction, events, false, false, None))
        });
        let receipts = futures::future::join_all(commits).await;
        let survivors: Vec<_> = receipts
            .into_iter()
            .map(|r| r.expect("identified").contact_id)
            .collect();
        assert_eq!(survivors[0], survivors[1], "round {round}: one contact");
        let merged = visits
            .iter()
            .map(|v| v.contact_id)
            .find(|c| *c != survivors[0])
            .expect("one of the two was merged");
        assert!(store
            .contact(merged, tracker_core::store::InteractionsPage::ALL)
            .await
            .expect("read")
            .is_none());
        let record = store
            .contact(survivors[0], tracker_core::store::InteractionsPage::ALL)
            .await
            .expect("read")
            .expect("survivor");
        assert_eq!(record.interactions.len(), 2, "round {round}");
        assert_eq!(record.devices.len(), 2, "round {round}");
    }
    drop_schema(&schema).await;
}

/// Each writer adds to roll-up rows of its own shard (a key's rows are summed when read), so
/// that closing visits do not queue on one hot row. Visits closed by several writers at once,
/// and a row another node's writer left in a shard of its own, add up in the dashboard.
#[tokio::test]
async fn closed_visits_add_up_across_the_writers_shards() {
    let (store, schema) = store().await;
    let visits = 40;
    let commits = (0..visits).map(|_| {
        let mut visit = new_visit(
            DeviceId::new_random(),
            at(),
            vec![
                TrackedEvent::new(EventKind::PageView),
                TrackedEvent::new(EventKind::PageView),
            ],
        );
        visit.close = Some(
            visit
                .interaction
                .close(tracker_core::session::CloseReason::Flush, at()),
        );
        store.commit(visit)
    });
    for receipt in futures::future::join_all(commits).await {
        receipt.expect("committed");
    }
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let shards: i64 = client
        .query_one(
            &format!("SELECT count(DISTINCT shard) FROM {schema}.rollup_visits"),
            &[],
        )
        .await
        .expect("shards")
        .get(0);
    assert!(shards >= 1);
    // Another node's writer, in a shard nobody here took.
    client
        .batch_execute(&format!(
            "INSERT INTO {schema}.rollup_visits (day, site, shard, visits, page_views, bounces,
                 engagement_value, conversions)
             SELECT day, site,
                 (SELECT min(s) FROM generate_series(0, 63) s
                  WHERE s NOT IN (SELECT shard FROM {schema}.rollup_visits)),
                 5, 7, 0, 0, 0
             FROM {schema}.rollup_visits GROUP BY day, site"
        ))
        .await
        .expect("another node's row");
    let day = at().date_naive();
    let dashboard = store
        .dashboard(tracker_core::store::DashboardQuery {
            from: day,
            to: day,
            site: None,
        })
        .await
        .expect("dashboard");
    assert_eq!(dashboard.visits, visits + 5, "{shards} shard(s) written");
    assert_eq!(dashboard.page_views, 2 * visits + 7);
    drop_schema(&schema).await;
}

/// A database migrated from before channels: its visits get theirs from the landing URL and
/// referrer they kept (the suite's visit lands on `/landing?utm_source=news`: a campaign from
/// "news").
#[tokio::test]
async fn visits_stored_before_channels_get_theirs_when_migrated() {
    let (store, schema) = store().await;
    let first = new_visit(
        DeviceId::new_random(),
        at(),
        vec![TrackedEvent::new(EventKind::PageView)],
    );
    let receipt = store.commit(first).await.expect("commit");
    store.drain().await.expect("drain");
    drop(store);
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "SET search_path = {schema};
             ALTER TABLE interactions DROP COLUMN channel, DROP COLUMN source,
                 DROP COLUMN utm_source, DROP COLUMN utm_medium, DROP COLUMN utm_campaign,
                 DROP COLUMN utm_term, DROP COLUMN utm_content, DROP COLUMN language;
             DELETE FROM schema_migrations WHERE version >= 7;"
        ))
        .await
        .expect("back to version 6");
    let mut config = PostgresConfig::new(url());
    config.schema.clone_from(&schema);
    let store = PostgresStore::open(config).await.expect("migrated again");
    let contact = store
        .contact(
            receipt.contact_id,
            tracker_core::store::InteractionsPage::ALL,
        )
        .await
        .expect("read")
        .expect("the contact");
    let acquisition = contact.interactions[0]
        .attribution
        .acquisition
        .clone()
        .expect("worked out by the migration");
    assert_eq!(
        acquisition.channel,
        tracker_core::acquisition::Channel::Campaign
    );
    assert_eq!(acquisition.source.as_deref(), Some("news"));
    assert_eq!(contact.interactions[0].attribution.language, None);
    drop(store);
    drop_schema(&schema).await;
}
