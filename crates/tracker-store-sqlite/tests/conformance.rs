//! The storage behaviour suite, against a real SQLite file: each check a test of its own, on
//! a fresh file (every other one synced `full`).

use std::sync::atomic::{AtomicUsize, Ordering};

use tracker_store_sqlite::{SqliteConfig, SqliteStore, SyncMode};

static STORES: AtomicUsize = AtomicUsize::new(0);

/// A store and the folder it lives in (removed when the test ends).
struct Fresh {
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Fresh {
    type Target = SqliteStore;
    fn deref(&self) -> &SqliteStore {
        &self.store
    }
}

/// A fresh store in a folder of its own.
async fn fresh_store() -> Fresh {
    let n = STORES.fetch_add(1, Ordering::SeqCst);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = SqliteConfig::new(dir.path().join("tracker.db"));
    config.sync = if n % 2 == 0 {
        SyncMode::Normal
    } else {
        SyncMode::Full
    };
    Fresh {
        store: SqliteStore::open(config).expect("open"),
        _dir: dir,
    }
}

tracker_core::store_suite!(fresh_store());
