#![doc = include_str!("../README.md")]

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};
use tracker_core::{
    ids::ContactId,
    session::Interaction,
    store::{ChangeSet, CommitReceipt, ContactFilter, ContactRecord, ContactSummary, Store},
};

pub mod bulk;
mod error;
mod read;
mod schema;
mod writer;

pub use error::Error;
/// Names of the metrics the writer records (through the `metrics` facade; the server exports
/// them).
pub mod metric_names {
    pub use crate::writer::{
        WRITER_CHANGE_SETS_PER_COMMIT, WRITER_COMMIT_SECONDS, WRITER_EVENTS_PER_COMMIT,
    };
}

/// How hard a commit pushes data to disk (`storage.sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Survives a killed process (WAL, `synchronous = NORMAL`).
    #[default]
    Normal,
    /// Survives a power loss too (`synchronous = FULL`).
    Full,
}

/// Where and how to open the database.
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// The database file; created with its folder if missing.
    pub path: PathBuf,
    /// The sync level.
    pub sync: SyncMode,
    /// Most change-sets one transaction groups together.
    pub max_group: usize,
}

impl SqliteConfig {
    /// The defaults for a file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            sync: SyncMode::Normal,
            max_group: 256,
        }
    }
}

/// The SQLite experience database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: mpsc::Sender<writer::Job>,
    readers: Arc<ReadPool>,
    /// Dropping the last one stops the checkpointer thread.
    _checkpointer: Arc<std::sync::mpsc::Sender<()>>,
}

#[derive(Debug)]
struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T, Error>) -> Result<T, Error> {
        let conn = self.idle.lock().map_err(|_| Error::Poisoned)?.pop();
        let conn = match conn {
            Some(conn) => conn,
            None => open_connection(&self.path, SyncMode::Normal)?,
        };
        let result = f(&conn);
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < 8 {
                idle.push(conn);
            }
        }
        result
    }
}

fn open_connection(path: &Path, sync: SyncMode) -> Result<Connection, Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let sync = match sync {
        SyncMode::Normal => "NORMAL",
        SyncMode::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    Ok(conn)
}

/// The writer's connection, tuned after profiling ingest (perf, 64 visitors). A 4 MiB page
/// cache: with time-ordered ids the hot pages are the tails of the tables and indexes, and a
/// bigger cache made every COMMIT scan its hash table (`pcache1TruncateUnsafe`: about a fifth
/// of the writer's time at 64 MiB, still visible at 8 MiB). Its own automatic checkpoint is only the safety net (every 256 MiB of
/// WAL); the checkpointer thread does the regular work.
fn tune_writer(conn: &Connection) -> Result<(), Error> {
    conn.pragma_update(None, "cache_size", -4_096)?;
    conn.pragma_update(None, "wal_autocheckpoint", 65_536)?;
    Ok(())
}

/// How often the checkpointer copies the WAL into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The checkpointer: a thread with its own connection that runs PASSIVE checkpoints, so that
/// copying WAL pages into the database and their fsyncs happen beside the writer, not inside a
/// commit. Measured: with the writer checkpointing alone, every checkpoint stalled all commits
/// (p99 of paced ingest ~20 ms). A passive checkpoint alone can never reset the WAL under
/// continuous writes (new frames keep arriving, so it never finishes a pass): that is what the
/// writer's own, rarer checkpoint is for, and by then this thread has already copied and synced
/// most pages, so it is short. Stops when the store is dropped.
fn spawn_checkpointer(path: &Path, sync: SyncMode) -> Result<std::sync::mpsc::Sender<()>, Error> {
    let conn = open_connection(path, sync)?;
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("sqlite-checkpointer".into())
        .spawn(move || {
            // Background work: at the lowest priority it gets the CPU when the request path
            // does not need it. Measured, paced at half the maximum on 2 cores: p99 12.0 / 51.7
            // / 9.5 ms at normal priority, 9.3 / 8.4 / 7.3 ms at the lowest (the WAL stays
            // bounded by the writer's own checkpoint either way).
            if let Err(error) =
                thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
            {
                tracing::debug!(%error, "could not lower the checkpointer's priority");
            }
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(CHECKPOINT_EVERY)
            {
                if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                {
                    tracing::warn!(%error, "background checkpoint failed; the writer's will do");
                }
            }
        })
        .map_err(|e| Error::Io("sqlite-checkpointer thread".into(), e))?;
    Ok(stop)
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database, and starts the writer thread. The
    /// thread ends when the last handle is dropped, after answering every queued change-set.
    pub fn open(config: SqliteConfig) -> Result<Self, Error> {
        if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::Io(dir.display().to_string(), e))?;
        }
        let mut conn = open_connection(&config.path, config.sync)?;
        schema::migrate(&mut conn)?;
        tune_writer(&conn)?;
        let (tx, rx) = mpsc::channel(4096);
        writer::spawn(conn, rx, config.max_group.max(1))?;
        let checkpointer = Arc::new(spawn_checkpointer(&config.path, config.sync)?);
        let readers = Arc::new(ReadPool {
            path: config.path.clone(),
            idle: Mutex::new(Vec::new()),
        });
        Ok(Self {
            writer: tx,
            readers,
            _checkpointer: checkpointer,
        })
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, tracker_core::Error> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || readers.with(f))
            .await
            .map_err(|e| tracker_core::Error::Unavailable(e.to_string()))?
            .map_err(Into::into)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn commit(&self, change: ChangeSet) -> Result<CommitReceipt, tracker_core::Error> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(writer::Job::Commit { change, reply })
            .await
            .map_err(|_| Error::WriterGone)?;
        Ok(answer.await.map_err(|_| Error::WriterGone)??)
    }

    async fn drain(&self) -> Result<(), tracker_core::Error> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(writer::Job::Barrier(reply))
            .await
            .map_err(|_| Error::WriterGone)?;
        answer.await.map_err(|_| Error::WriterGone)?;
        Ok(())
    }

    async fn open_interactions(&self) -> Result<Vec<Interaction>, tracker_core::Error> {
        self.read(read::open_interactions).await
    }

    async fn contacts(
        &self,
        filter: ContactFilter,
    ) -> Result<Vec<ContactSummary>, tracker_core::Error> {
        self.read(move |conn| read::contacts(conn, &filter)).await
    }

    async fn contact(&self, id: ContactId) -> Result<Option<ContactRecord>, tracker_core::Error> {
        self.read(move |conn| read::contact(conn, id)).await
    }
}
