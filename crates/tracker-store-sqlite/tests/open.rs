//! Opening a database file: one store at a time, and never a read-only file.

#![allow(clippy::unwrap_used, missing_docs)]

use std::{process::Command, time::Duration};

use tracker_store_sqlite::{Error, SqliteConfig, SqliteStore};

fn config(path: &std::path::Path) -> SqliteConfig {
    let mut config = SqliteConfig::new(path);
    config.lock_wait = Duration::ZERO;
    config
}

/// A second store (a second server) on the same file is refused with a message that says why
/// and who holds it; once the first has stopped, the file is free again.
#[tokio::test]
async fn a_second_store_on_the_same_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tracker.db");
    let first = SqliteStore::open(config(&path)).unwrap();
    let refused = SqliteStore::open(config(&path)).unwrap_err();
    assert!(matches!(refused, Error::InUse { .. }), "{refused}");
    let message = refused.to_string();
    assert!(
        message.contains("in use by another jss-tracker"),
        "{message}"
    );
    assert!(
        message.contains(&format!("process {}", std::process::id())),
        "{message}"
    );
    drop(first);
    // The first store's writer lets go when it has stopped: wait for that, not for a time.
    let mut waiting = config(&path);
    waiting.lock_wait = Duration::from_secs(60);
    SqliteStore::open(waiting).unwrap();
}

/// Undoes `chattr +i` so that the folder can be removed.
struct Immutable(std::path::PathBuf);

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// A database file that cannot be written fails at open, with a message that says so (it used
/// to be accepted, and then every request failed).
#[tokio::test]
async fn a_read_only_file_fails_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tracker.db");
    drop(SqliteStore::open(config(&path)).unwrap());
    let mut permissions = std::fs::metadata(&path).unwrap().permissions();
    permissions.set_readonly(true);
    std::fs::set_permissions(&path, permissions).unwrap();
    // Permissions do not stop root: make the file immutable too (root may; others need not).
    let _undo = Immutable(path.clone());
    let _ = Command::new("chattr").arg("+i").arg(&path).status();
    assert!(
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .is_err(),
        "the test could not make the file read-only"
    );
    let mut waiting = config(&path);
    waiting.lock_wait = Duration::from_secs(60);
    let error = SqliteStore::open(waiting).unwrap_err();
    assert!(matches!(error, Error::ReadOnly(_)), "{error}");
    assert!(error.to_string().contains("is read-only"), "{error}");
}
