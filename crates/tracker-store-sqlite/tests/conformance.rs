//! The storage behaviour suite, against a real SQLite file.

use tracker_store_sqlite::{SqliteConfig, SqliteStore, SyncMode};

#[tokio::test]
async fn sqlite_passes_the_store_behaviour_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let counter = std::sync::atomic::AtomicUsize::new(0);
    tracker_core::conformance::run_all(|| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = dir.path().join(format!("db{n}/tracker.db"));
        async move {
            let mut config = SqliteConfig::new(path);
            config.sync = if n % 2 == 0 {
                SyncMode::Normal
            } else {
                SyncMode::Full
            };
            SqliteStore::open(config).expect("open")
        }
    })
    .await;
}
