//! The WAL starts over while writes keep coming: the checkpointer pauses the writer between
//! two groups for a catch-up checkpoint, instead of the writer checkpointing (and stalling every
//! commit) once the WAL is huge.

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use chrono::Utc;
use rusqlite::Connection;
use tracker_core::{
    conformance,
    event::{EventKind, TrackedEvent},
    ids::DeviceId,
    store::{ChangeSet, Store},
};
use tracker_store_sqlite::{SqliteConfig, SqliteStore};

fn new_visit() -> ChangeSet {
    conformance::new_visit(
        DeviceId::new_random(),
        Utc::now(),
        vec![
            TrackedEvent::new(EventKind::PageView),
            TrackedEvent::new(EventKind::PageEvent),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_starts_over_under_continuous_writes_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tracker.db");
    let mut config = SqliteConfig::new(&path);
    config.checkpoint_every = Duration::from_millis(10);
    config.reset_wal_at_frames = 64;
    let store = SqliteStore::open(config).unwrap();

    // Commits without a pause for a while: every commit appends several pages to the WAL.
    let wal = dir.path().join("tracker.db-wal");
    let started = Instant::now();
    let mut committed = 0u64;
    let mut largest_wal = 0;
    while started.elapsed() < Duration::from_millis(1500) {
        let commits = (0..8).map(|_| store.commit(new_visit()));
        for receipt in futures::future::join_all(commits).await {
            receipt.unwrap();
            committed += 1;
        }
        largest_wal = largest_wal.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    store.drain().await.unwrap();

    // Without the reset the WAL would hold every page written (several per commit, 4 KiB
    // each); the writer's own safety-net checkpoint only comes at 256 MiB.
    let written_at_least = committed * 4096;
    assert!(
        largest_wal < written_at_least / 4,
        "WAL grew to {largest_wal} bytes for {committed} commits: it never started over"
    );
    assert!(committed > 500, "only {committed} commits: too few to tell");

    drop(store);
    let conn = Connection::open(&path).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let interactions: u64 = conn
        .query_row("SELECT count(*) FROM interactions", [], |r| r.get(0))
        .unwrap();
    let events: u64 = conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        interactions, committed,
        "every acknowledged visit is stored"
    );
    assert_eq!(events, 2 * committed, "and every event");
}
