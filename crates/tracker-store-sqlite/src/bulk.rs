//! The bulk path: many change-sets written straight to a database file, in large transactions,
//! through the same `apply` as the writer, so the rows are exactly what live ingest writes. For
//! pre-filling a database for scale measurements and for imports; not for a file a running
//! tracker has open.

use std::path::Path;

use tracker_core::{rollup::Tally, store::ChangeSet};

use crate::{open_connection, rollup, schema, writer, Error, SyncMode};

/// What a bulk load wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkStats {
    /// Change-sets applied.
    pub change_sets: u64,
    /// Event rows inserted.
    pub events: u64,
}

/// Applies every change-set to the database at `path` (created and migrated if needed),
/// `per_transaction` at a time. Durability is relaxed while loading (`synchronous = OFF`, a
/// large page cache) and the WAL is checkpointed at the end: a crash mid-load loses the load,
/// never earlier data's consistency.
pub fn load(
    path: &Path,
    changes: impl IntoIterator<Item = ChangeSet>,
    per_transaction: usize,
    mut progress: impl FnMut(BulkStats),
) -> Result<BulkStats, Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io(dir.display().to_string(), e))?;
    }
    let _lock = crate::FileLock::acquire(path, std::time::Duration::ZERO)?;
    let mut conn = open_connection(path, SyncMode::Normal)?;
    schema::migrate(&mut conn)?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -262_144)?; // 256 MiB
    let mut stats = BulkStats::default();
    let mut changes = changes.into_iter().peekable();
    while changes.peek().is_some() {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut tally = Tally::default();
        for change in changes.by_ref().take(per_transaction.max(1)) {
            writer::apply(&tx, &change, &mut tally)?;
            stats.change_sets += 1;
            stats.events += change.events.len() as u64;
        }
        rollup::write(&mut tally, &tx)?;
        tx.commit()?;
        progress(stats);
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(stats)
}
