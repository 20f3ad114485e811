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
    /// How often the checkpointer thread copies the WAL into the database file.
    pub checkpoint_every: std::time::Duration,
    /// WAL size, in frames (pages), at which the checkpointer makes the writer start the WAL
    /// over.
    pub reset_wal_at_frames: i64,
}

impl SqliteConfig {
    /// The defaults for a file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            sync: SyncMode::Normal,
            max_group: 256,
            checkpoint_every: CHECKPOINT_EVERY,
            reset_wal_at_frames: RESET_WAL_AT_FRAMES,
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

/// WAL size, in frames, at which the checkpointer makes the writer start the WAL over (64 MiB of
/// 4 KiB pages): well before the writer's own safety-net checkpoint (`wal_autocheckpoint`).
const RESET_WAL_AT_FRAMES: i64 = 16_384;

/// Held by the writer while it applies and commits a group; taken by the checkpointer for the
/// few milliseconds of a catch-up checkpoint, so that the WAL can start over without the writer
/// doing the checkpoint itself.
pub(crate) type WriteGate = Arc<Mutex<()>>;

/// The checkpointer: a thread with its own connection that runs PASSIVE checkpoints, so that
/// copying WAL pages into the database and their fsyncs happen beside the writer, not inside a
/// commit. Measured: with the writer checkpointing alone, every checkpoint stalled all commits
/// (p99 of paced ingest ~20 ms).
///
/// A passive checkpoint alone never lets the WAL start over under continuous writes (new
/// frames keep arriving, so it never finishes a pass). So once the WAL holds
/// [`RESET_WAL_AT_FRAMES`], right after a pass, the checkpointer takes the [`WriteGate`]
/// (the writer pauses between two groups), runs a second pass over the few frames written
/// meanwhile, which now completes, and lets go: the writer's next transaction starts the WAL
/// from its beginning. Measured, paced at half the maximum: the writer's own checkpoint every
/// 256 MiB of WAL (~3 s) had made p99 5.9–14.5 ms and p99.9 11–38 ms; without any reset p99
/// was 3.8–5.1 ms. The writer's own checkpoint stays as the safety net. Stops when the store is
/// dropped.
fn spawn_checkpointer(
    config: &SqliteConfig,
    gate: WriteGate,
) -> Result<std::sync::mpsc::Sender<()>, Error> {
    let conn = open_connection(&config.path, config.sync)?;
    let (every, reset_at) = (config.checkpoint_every, config.reset_wal_at_frames);
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
            let checkpoint = || -> Result<i64, rusqlite::Error> {
                // (busy, frames in the WAL, frames copied into the database)
                conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
            };
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every)
            {
                let result = checkpoint().and_then(|frames| {
                    if frames < reset_at {
                        return Ok(());
                    }
                    let _paused = gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    checkpoint().map(|_| ())
                });
                if let Err(error) = result {
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
        let gate = WriteGate::default();
        writer::spawn(conn, rx, config.max_group.max(1), gate.clone())?;
        let checkpointer = Arc::new(spawn_checkpointer(&config, gate)?);
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
