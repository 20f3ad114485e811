//! The checkpointer: copies committed WAL frames into the database file in the background.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the threshold, which would
//! stall every request of that group. Here a thread of its own runs passive checkpoints (which
//! never block the writer or readers), and stops once the store is dropped.

use std::{sync::Weak, time::Duration};

use rusqlite::Connection;

use crate::Error;

/// How often to checkpoint; the WAL stays small at any realistic ingest rate.
const INTERVAL: Duration = Duration::from_millis(500);

pub(crate) fn spawn<T: Send + Sync + 'static>(
    conn: Connection,
    alive: Weak<T>,
) -> Result<(), Error> {
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while alive.strong_count() > 0 {
                std::thread::sleep(INTERVAL);
                if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                {
                    tracing::warn!(%error, "wal checkpoint failed");
                }
            }
            tracing::debug!("sqlite checkpointer stopped");
        })
        .map_err(|e| Error::Io("sqlite-checkpoint thread".into(), e))?;
    Ok(())
}
