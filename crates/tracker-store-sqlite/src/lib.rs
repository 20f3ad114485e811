#![doc = include_str!("../README.md")]

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};
use tracker_core::{
    ids::{ContactId, SessionId},
    session::Interaction,
    store::{
        ChangeSet, CommitReceipt, ContactFilter, ContactPage, ContactRecord, Dashboard,
        DashboardQuery, Store,
    },
};

mod backfill;
pub mod bulk;
mod error;
mod read;
mod rollup;
mod schema;
mod settings;
mod writer;

pub use settings::{Sqlite, SqliteSettings, SyncSetting};

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
    /// How long to wait for the database's lock file when another store holds it: long enough
    /// for a store of this process that is shutting down to let go; a second server fails
    /// after it.
    pub lock_wait: std::time::Duration,
}

/// An exclusive advisory lock (`flock`) on `<database>-lock`, held while a store can write, so
/// that a second server on the same file refuses to start instead of two writers taking turns
/// and each holding sessions the other closes. A separate file, so that it never meets
/// SQLite's own (`fcntl`) locks on the database; it holds the holder's process id for the
/// message.
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: std::fs::File,
}

impl FileLock {
    pub(crate) fn acquire(database: &Path, wait: std::time::Duration) -> Result<Self, Error> {
        use fs4::fs_std::FileExt;
        use std::io::{Read, Seek, Write};

        let mut name = database.as_os_str().to_owned();
        name.push("-lock");
        let path = PathBuf::from(name);
        let io = |e| Error::Io(path.display().to_string(), e);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let deadline = std::time::Instant::now() + wait;
        while !FileExt::try_lock_exclusive(&file).map_err(io)? {
            if std::time::Instant::now() >= deadline {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(Error::InUse {
                    path: database.display().to_string(),
                    holder: if holder.is_empty() {
                        String::new()
                    } else {
                        format!(" (process {holder})")
                    },
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(Self { _file: file })
    }
}

#[async_trait]
impl tracker_core::store::StoreConfig for SqliteConfig {
    async fn build(&self) -> Result<Arc<dyn Store>, tracker_core::Error> {
        let config = self.clone();
        let store = tokio::task::spawn_blocking(move || SqliteStore::open(config))
            .await
            .map_err(|e| tracker_core::Error::Open(e.to_string()))?
            .map_err(|error| {
                tracker_core::Error::Open(format!(
                    "storage.path: cannot open {}: {error}",
                    self.path.display()
                ))
            })?;
        Ok(Arc::new(store))
    }

    fn describe(&self) -> String {
        let sync = match self.sync {
            SyncMode::Normal => "normal",
            SyncMode::Full => "full",
        };
        format!("{} (sqlite, sync = {sync})", self.path.display())
    }
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
            lock_wait: std::time::Duration::from_secs(5),
        }
    }
}

/// The SQLite experience database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: mpsc::Sender<writer::Job>,
    readers: Arc<ReadPool>,
    /// Asks the checkpointer thread for a pass; dropping the last one stops the thread.
    checkpointer: Arc<std::sync::mpsc::Sender<PassRequest>>,
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
        // One read transaction, so one snapshot: a read of several queries (the dashboard's
        // roll-ups, then its open visits) never sees a visit that closed between two of them
        // in both places, or in neither.
        let result = conn
            .unchecked_transaction()
            .map_err(Error::from)
            .and_then(|tx| {
                let value = f(&tx)?;
                tx.commit()?;
                Ok(value)
            });
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
    // SQLite falls back to read-only when the file cannot be written; say so now rather than
    // fail every commit later.
    if conn.is_readonly(rusqlite::MAIN_DB)? {
        return Err(Error::ReadOnly(path.display().to_string()));
    }
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
/// of the writer's time at 64 MiB, still visible at 8 MiB).
///
/// The checkpointer thread does the regular checkpoints; the writer's own automatic one is the
/// bound on the WAL when the checkpointer cannot keep up (it runs at the lowest priority, and a
/// saturated machine may leave it no time: the WAL once grew from 409 to 769 MiB in a minute of
/// sustained new-visitor load). At [`WRITER_CHECKPOINT_AT_FRAMES`] (96 MiB) the writer
/// checkpoints itself after a commit, so the WAL's next reset is at most that far away; and
/// `journal_size_limit` gives the space of a WAL that grew past 128 MiB back once it starts
/// over. Below that the WAL file keeps its size and is written over: cut back to 64 MiB at each
/// start (once a second under load), it grew again into newly allocated blocks, and ext4 wrote
/// those out, with their metadata, inside the fsync of the checkpoint the writer waits for.
fn tune_writer(conn: &Connection) -> Result<(), Error> {
    conn.pragma_update(None, "cache_size", -4_096)?;
    conn.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_AT_FRAMES)?;
    conn.pragma_update(None, "journal_size_limit", 128 * 1024 * 1024)?;
    Ok(())
}

/// WAL size, in frames (4 KiB pages), at which the writer checkpoints by itself: 96 MiB, above
/// the checkpointer's [`RESET_WAL_AT_FRAMES`] so that it only acts when that one fell behind.
const WRITER_CHECKPOINT_AT_FRAMES: i64 = 24_576;

/// How often the checkpointer copies the WAL into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// WAL size, in frames, at which the checkpointer makes the writer start the WAL over (64 MiB of
/// 4 KiB pages): well before the writer's own safety-net checkpoint (`wal_autocheckpoint`).
const RESET_WAL_AT_FRAMES: i64 = 16_384;

/// Set by the checkpointer once it has copied all but the WAL's last few frames into the
/// database; the writer, before its next group, copies those itself (a passive checkpoint on
/// its own connection) and clears it, so that the group's transaction starts the WAL over.
///
/// It replaced a lock with which the checkpointer paused the writer for its catch-up pass:
/// measured (paced new visitors, 9,000 req/s on 2 cores), that pause lasted 45–64 ms once a
/// second (the WAL reached the reset size that often), every request in flight waited for it,
/// and the checkpointer, at the lowest priority, held the writer while the request path left
/// it no CPU. The writer runs at normal priority and copies only what the checkpointer left.
pub(crate) type WalTail = Arc<std::sync::atomic::AtomicBool>;

/// At most this many passes catch up with the writer before the tail is left to it: each pass
/// copies what arrived during the one before, so they shrink quickly while the writer keeps
/// writing; a machine too busy for that still hands over after these.
const CATCH_UP_PASSES: usize = 4;

/// Frames that may arrive during a catch-up pass for the tail to be the writer's (2 MiB of
/// pages): a few milliseconds of copying and syncing for the writer.
const TAIL_FRAMES: i64 = 512;

/// What one checkpoint pass saw and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPass {
    /// Frames (pages) in the WAL when the pass began: what was written since the WAL last
    /// started over.
    pub wal_frames: i64,
    /// Whether the WAL had reached `reset_wal_at_frames`, so that the pass caught up with the
    /// writer and left it the tail: the writer's next transaction then starts the WAL over.
    pub reset: bool,
}

/// A request to the checkpointer thread: run a pass now and say how it went.
type PassRequest = oneshot::Sender<Result<CheckpointPass, Error>>;

/// One pass of the checkpointer: a PASSIVE checkpoint and, once the WAL holds `reset_at`
/// frames, catch-up passes until little arrives during one, the WAL file synced, and the tail
/// left to the writer ([`WalTail`]).
fn checkpoint_pass(
    conn: &Connection,
    wal: &std::path::Path,
    tail: &WalTail,
    reset_at: i64,
) -> Result<CheckpointPass, Error> {
    let wal_frames = passive_checkpoint(conn)?;
    if wal_frames < reset_at {
        return Ok(CheckpointPass {
            wal_frames,
            reset: false,
        });
    }
    let mut seen = wal_frames;
    for _ in 0..CATCH_UP_PASSES {
        let now = passive_checkpoint(conn)?;
        // Frames written during the pass before (fewer, or none, if the WAL started over).
        let arrived = now - seen;
        seen = now;
        if arrived <= TAIL_FRAMES {
            break;
        }
    }
    // The WAL's pages written so far reach the disk here, beside the writer: the writer's own
    // pass then syncs only what came after (its checkpoint syncs the WAL before copying).
    if let Err(error) = std::fs::File::open(wal).and_then(|file| file.sync_data()) {
        tracing::debug!(%error, "could not sync the WAL ahead of the writer's checkpoint");
    }
    tail.store(true, std::sync::atomic::Ordering::Release);
    Ok(CheckpointPass {
        wal_frames,
        reset: true,
    })
}

/// `PRAGMA wal_checkpoint(PASSIVE)`: the frames in the WAL (copied as far as no reader still
/// needs them). A passive checkpoint does not wait: when it meets the writer in the middle of
/// starting the WAL over (the WAL header changing under it) it reports busy, with -1 frames.
/// That lasts microseconds: try again rather than skip the pass (measured: 4 passes in 60 runs
/// of the `wal_reset` test were skipped so, and that test failed).
pub(crate) fn passive_checkpoint(conn: &Connection) -> Result<i64, rusqlite::Error> {
    let mut tries = 0;
    loop {
        let frames: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))?;
        tries += 1;
        if frames >= 0 || tries == 100 {
            return Ok(frames);
        }
        std::thread::yield_now();
    }
}

/// The checkpointer: a thread with its own connection that runs PASSIVE checkpoints, so that
/// copying WAL pages into the database and their fsyncs happen beside the writer, not inside a
/// commit. Measured: with the writer checkpointing alone, every checkpoint stalled all commits
/// (p99 of paced ingest ~20 ms).
///
/// A passive checkpoint alone never lets the WAL start over under continuous writes (new
/// frames keep arriving, so it never finishes a pass). So once the WAL holds
/// [`RESET_WAL_AT_FRAMES`], right after a pass, the checkpointer catches up with the writer
/// (passes over what arrived during the one before, until that is little), syncs the WAL file,
/// and leaves the last few frames to the writer ([`WalTail`]): it copies them between two
/// groups, and its next transaction starts the WAL from its beginning. Measured, paced at half the maximum: the writer's own checkpoint every
/// 256 MiB of WAL (~3 s) had made p99 5.9–14.5 ms and p99.9 11–38 ms; without any reset p99
/// was 3.8–5.1 ms. The writer's own checkpoint stays as the safety net.
///
/// A pass runs every `checkpoint_every`, and whenever [`SqliteStore::checkpoint_now`] asks
/// (tests drive it that way, so that they do not depend on how busy the machine is). Stops
/// when the store is dropped.
fn spawn_checkpointer(
    config: &SqliteConfig,
    tail: WalTail,
) -> Result<std::sync::mpsc::Sender<PassRequest>, Error> {
    let conn = open_connection(&config.path, config.sync)?;
    let (every, reset_at) = (config.checkpoint_every, config.reset_wal_at_frames);
    let wal = {
        let mut path = config.path.clone().into_os_string();
        path.push("-wal");
        std::path::PathBuf::from(path)
    };
    let (requests, incoming) = std::sync::mpsc::channel::<PassRequest>();
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
            loop {
                match incoming.recv_timeout(every) {
                    Ok(reply) => {
                        let _ = reply.send(checkpoint_pass(&conn, &wal, &tail, reset_at));
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        if let Err(error) = checkpoint_pass(&conn, &wal, &tail, reset_at) {
                            tracing::warn!(%error, "background checkpoint failed; the writer's will do");
                        }
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        })
        .map_err(|e| Error::Io("sqlite-checkpointer thread".into(), e))?;
    Ok(requests)
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database, and starts the writer thread. The
    /// thread ends when the last handle is dropped, after answering every queued change-set.
    pub fn open(config: SqliteConfig) -> Result<Self, Error> {
        if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::Io(dir.display().to_string(), e))?;
        }
        let lock = FileLock::acquire(&config.path, config.lock_wait)?;
        let mut conn = open_connection(&config.path, config.sync)?;
        schema::migrate(&mut conn)?;
        tune_writer(&conn)?;
        let (tx, rx) = mpsc::channel(4096);
        let tail = WalTail::default();
        writer::spawn(conn, rx, config.max_group.max(1), tail.clone(), lock)?;
        let checkpointer = Arc::new(spawn_checkpointer(&config, tail)?);
        let readers = Arc::new(ReadPool {
            path: config.path.clone(),
            idle: Mutex::new(Vec::new()),
        });
        Ok(Self {
            writer: tx,
            readers,
            checkpointer,
        })
    }

    /// Runs a checkpoint pass now, on the checkpointer thread, and says what it saw and did
    /// (the same pass the thread runs every `checkpoint_every`). With continuous writes, the
    /// WAL starts over at the writer's next transaction after a pass that reports `reset`.
    pub async fn checkpoint_now(&self) -> Result<CheckpointPass, Error> {
        let (reply, answer) = oneshot::channel();
        self.checkpointer
            .send(reply)
            .map_err(|_| Error::CheckpointerGone)?;
        answer.await.map_err(|_| Error::CheckpointerGone)?
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

    fn alive(&self) -> Result<(), tracker_core::Error> {
        if self.writer.is_closed() {
            Err(Error::WriterGone.into())
        } else {
            Ok(())
        }
    }

    async fn check_writes(&self) -> Result<(), tracker_core::Error> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(writer::Job::Probe(reply))
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

    async fn open_interactions(
        &self,
        limit: usize,
    ) -> Result<Vec<Interaction>, tracker_core::Error> {
        self.read(move |conn| read::open_interactions(conn, limit))
            .await
    }

    async fn open_interaction(
        &self,
        session: SessionId,
    ) -> Result<Option<Interaction>, tracker_core::Error> {
        self.read(move |conn| read::open_interaction(conn, session))
            .await
    }

    async fn idle_open_interactions(
        &self,
        idle_before: chrono::DateTime<chrono::Utc>,
        after: Option<tracker_core::store::OpenCursor>,
        limit: usize,
    ) -> Result<Vec<Interaction>, tracker_core::Error> {
        self.read(move |conn| read::idle_open_interactions(conn, idle_before, after, limit))
            .await
    }

    async fn open_count(&self) -> Result<u64, tracker_core::Error> {
        self.read(read::open_count).await
    }

    async fn device_key(&self) -> Result<tracker_core::ids::DeviceKey, tracker_core::Error> {
        self.read(read::device_key).await
    }

    async fn contacts(&self, filter: ContactFilter) -> Result<ContactPage, tracker_core::Error> {
        self.read(move |conn| read::contacts(conn, &filter)).await
    }

    async fn dashboard(&self, query: DashboardQuery) -> Result<Dashboard, tracker_core::Error> {
        self.read(move |conn| rollup::dashboard(conn, &query)).await
    }

    async fn erase_contact(
        &self,
        id: ContactId,
    ) -> Result<Option<tracker_core::store::Erased>, tracker_core::Error> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(writer::Job::Erase { contact: id, reply })
            .await
            .map_err(|_| Error::WriterGone)?;
        Ok(answer.await.map_err(|_| Error::WriterGone)??)
    }

    async fn identify(
        &self,
        id: ContactId,
        source: String,
        identifier: String,
    ) -> Result<Option<ContactId>, tracker_core::Error> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(writer::Job::Identify {
                contact: id,
                source,
                identifier,
                reply,
            })
            .await
            .map_err(|_| Error::WriterGone)?;
        Ok(answer.await.map_err(|_| Error::WriterGone)??)
    }

    async fn contact(
        &self,
        id: ContactId,
        page: tracker_core::store::InteractionsPage,
    ) -> Result<Option<ContactRecord>, tracker_core::Error> {
        self.read(move |conn| read::contact(conn, id, page)).await
    }
}
