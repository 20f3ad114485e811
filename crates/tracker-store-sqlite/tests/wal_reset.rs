//! The WAL starts over while writes keep coming: the checkpointer catches up with the writer and
//! leaves it the WAL's last frames to copy between two groups, instead of the writer
//! checkpointing (and stalling every commit) once the WAL is huge.
//!
//! The test drives the checkpointer itself ([`SqliteStore::checkpoint_now`]) and counts WAL
//! restarts and frames, so it holds however busy the machine is; how big the WAL gets under a
//! real load, with the checkpointer on its timer, is the load harness's to measure.

#![allow(clippy::too_many_lines, clippy::unwrap_used, missing_docs)]

use std::{
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use chrono::Utc;
use rusqlite::Connection;
use tokio::sync::Semaphore;
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

/// The WAL header's checkpoint sequence number (bytes 12..16, big-endian): SQLite adds one each
/// time the WAL starts over from its first frame.
fn wal_restarts(wal: &Path) -> u32 {
    let bytes = std::fs::read(wal).unwrap();
    u32::from_be_bytes(bytes[12..16].try_into().unwrap())
}

/// WAL frames for a file of `len` bytes: a 32-byte header, then frames of a 24-byte header and
/// a 4 KiB page.
fn frames(len: u64) -> u64 {
    len.saturating_sub(32) / (24 + 4096)
}

const ROUNDS: usize = 40;
/// Change-sets the test commits per round, and as many more the background writer may commit.
const PER_ROUND: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_starts_over_under_continuous_writes_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tracker.db");
    let mut config = SqliteConfig::new(&path);
    // The timer never fires during the test: every pass is the test's.
    config.checkpoint_every = Duration::from_secs(3600);
    config.reset_wal_at_frames = 1;
    let store = SqliteStore::open(config).unwrap();
    let wal = dir.path().join("tracker.db-wal");

    // A second writer that keeps committing, also while the checkpointer runs, so that a plain
    // passive checkpoint would never see the WAL at rest. It takes a permit per change-set so
    // that what it writes between two passes is bounded by the test, not by the machine.
    let permits = Arc::new(Semaphore::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let background_commits = Arc::new(AtomicU64::new(0));
    let background = tokio::spawn({
        let (store, permits, stop, commits) = (
            store.clone(),
            permits.clone(),
            stop.clone(),
            background_commits.clone(),
        );
        async move {
            while !stop.load(Ordering::Acquire) {
                let Ok(permit) = permits.acquire().await else {
                    break;
                };
                permit.forget();
                store.commit(new_visit()).await.unwrap();
                commits.fetch_add(1, Ordering::Release);
            }
        }
    });

    let mut committed = 0u64;
    let mut restarts_seen = Vec::new();
    let mut largest_pass = 0;
    for round in 0..ROUNDS {
        permits.add_permits(PER_ROUND);
        let commits = (0..PER_ROUND).map(|_| store.commit(new_visit()));
        for receipt in futures::future::join_all(commits).await {
            receipt.unwrap();
            committed += 1;
        }
        // The commits above came after the previous round's pass: the WAL has started over.
        restarts_seen.push(wal_restarts(&wal));
        let pass = store.checkpoint_now().await.unwrap();
        assert!(
            pass.reset,
            "round {round}: {} frames and no reset",
            pass.wal_frames
        );
        largest_pass = largest_pass.max(pass.wal_frames);
    }
    stop.store(true, Ordering::Release);
    permits.close();
    background.await.unwrap();
    store.drain().await.unwrap();

    for (round, pair) in restarts_seen.windows(2).enumerate() {
        assert!(
            pair[1] > pair[0],
            "round {}: the WAL did not start over after a reset pass ({restarts_seen:?})",
            round + 1
        );
    }
    // Between two passes at most three rounds of change-sets reach the WAL (the test's, and
    // the background writer's of this round and the last), each a few dozen pages at most;
    // without the restarts the WAL would hold every page of every round.
    let per_change_set = 32;
    let bound = (3 * PER_ROUND * per_change_set) as i64;
    assert!(
        largest_pass <= bound,
        "a pass found {largest_pass} frames in the WAL (at most {bound} expected)"
    );
    let wal_frames = frames(std::fs::metadata(&wal).unwrap().len());
    assert!(
        wal_frames <= bound as u64 + per_change_set as u64,
        "the WAL file holds {wal_frames} frames: it grew instead of starting over"
    );

    let total = committed + background_commits.load(Ordering::Acquire);
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
    assert_eq!(interactions, total, "every acknowledged visit is stored");
    assert_eq!(events, 2 * total, "and every event");
}
