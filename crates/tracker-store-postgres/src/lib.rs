#![doc = include_str!("../README.md")]

use std::{future::Future, sync::Arc, time::Duration};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::{mpsc, oneshot, Mutex};
use tracker_core::{
    ids::{ContactId, DeviceKey, SessionId},
    session::Interaction,
    store::{
        ChangeSet, CommitReceipt, ContactFilter, ContactPage, ContactRecord, Dashboard,
        DashboardQuery, InteractionsPage, Store, StoreConfig,
    },
};

mod backfill;
mod error;
mod grouped;
mod read;
mod schema;
mod settings;
mod write;

pub use settings::{Postgres, PostgresSettings};

pub use error::Error;

/// `[storage]` with `backend = "postgres"`.
#[derive(Clone)]
pub struct PostgresConfig {
    /// `postgres://user@host:port/database` (libpq's URL or key=value form).
    pub url: String,
    /// The schema the tables live in (created if missing): several trackers, or a test run,
    /// can share one database.
    pub schema: String,
    /// Most connections this node opens.
    pub pool_size: usize,
    /// Longest wait for a connection, and for one store operation, before it fails
    /// (503 `unavailable`): a request never hangs on an unreachable database.
    pub timeout: Duration,
    /// Writers: each commits what is queued, up to `max_group` change-sets in one transaction,
    /// on a connection of its own (one of `pool_size`; the others serve reads).
    pub writers: usize,
    /// Most change-sets in one transaction.
    pub max_group: usize,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &redact(&self.url))
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("timeout", &self.timeout)
            .field("writers", &self.writers)
            .field("max_group", &self.max_group)
            .finish()
    }
}

impl PostgresConfig {
    /// The defaults for a database at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: "public".into(),
            pool_size: 16,
            timeout: Duration::from_secs(5),
            writers: 4,
            max_group: 64,
        }
    }
}

/// A URL with its password replaced, for banners and logs.
fn redact(url: &str) -> String {
    match url.parse::<tokio_postgres::Config>() {
        Ok(config) => {
            let hosts: Vec<String> = config
                .get_hosts()
                .iter()
                .map(|host| match host {
                    tokio_postgres::config::Host::Tcp(name) => name.clone(),
                    tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                })
                .collect();
            let port = config.get_ports().first().copied().unwrap_or(5432);
            format!(
                "postgres://{}@{}:{port}/{}",
                config.get_user().unwrap_or(""),
                hosts.join(","),
                config.get_dbname().unwrap_or("")
            )
        }
        Err(_) => "(unparsable url)".into(),
    }
}

#[async_trait]
impl StoreConfig for PostgresConfig {
    async fn build(&self) -> Result<std::sync::Arc<dyn Store>, tracker_core::Error> {
        let store = PostgresStore::open(self.clone())
            .await
            .map_err(|e| tracker_core::Error::Open(format!("storage.url: {e}")))?;
        Ok(std::sync::Arc::new(store))
    }

    fn describe(&self) -> String {
        format!("PostgreSQL {} (schema {})", redact(&self.url), self.schema)
    }
}

/// The experience database on PostgreSQL. Change-sets are committed by a few writers, each
/// grouping what is queued into one transaction on a pooled connection (group commit, as the
/// SQLite writer does); `commit` returns once its transaction is committed (and flushed, per
/// the server's settings), so a 200 still means committed. Concurrent commits from several nodes are safe: rows of one visit are
/// only written under its session's lock, new contacts of one device are settled by the
/// devices' primary key, and roll-ups are summed by `ON CONFLICT DO UPDATE`, in one key order.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    timeout: Duration,
    queue: mpsc::Sender<write::Job>,
    /// How many writers were started, and how many run now (see `Store::alive`).
    writers: usize,
    running: Arc<std::sync::atomic::AtomicUsize>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

/// What the writers' connections tell the planner. Every statement a writer runs finds its rows
/// by key (a visit, a contact, a device, a roll-up row), whatever the size of the batch it
/// carries; but a prepared statement's generic plan is made once, and one made while a table
/// was small (a new database's first minute, until autovacuum analyses it) scans the table
/// (a hash join over a sequential scan), and keeps doing so as the table grows: 1-1.4 ms per
/// grouped statement after a few seconds of load, against ~0.1 ms by key. A sequential scan
/// where no index serves stays possible: `off` only makes the planner take any other way first.
const WRITERS_PLAN: &str =
    "-c enable_seqscan=off -c enable_bitmapscan=off -c enable_hashjoin=off -c enable_mergejoin=off";

/// A pool of `size` connections with the store's bounds on every wait.
fn pool(pg: tokio_postgres::Config, size: usize, timeout: Duration) -> Result<Pool, Error> {
    let manager = Manager::from_config(
        pg,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .build()
        .map_err(|e| Error::Config(e.to_string()))
}

impl PostgresStore {
    /// Connects, creates the schema if missing and migrates it.
    pub async fn open(config: PostgresConfig) -> Result<Self, Error> {
        let mut pg: tokio_postgres::Config = config
            .url
            .parse()
            .map_err(|e| Error::Config(format!("not a PostgreSQL URL: {e}")))?;
        if !is_identifier(&config.schema) {
            return Err(Error::Config(format!(
                "storage.schema '{}' must be letters, digits and underscores, not starting with a digit or pg_",
                config.schema
            )));
        }
        pg.options(format!("-c search_path={}", config.schema));
        pg.connect_timeout(config.timeout);
        pg.application_name("jss-tracker");
        let writers = config.writers.max(1);
        // The writers' own connections (`pool_size` in all: the rest serve reads and admin
        // work), which plan for what every writer statement is: key lookups.
        let mut writing = pg.clone();
        writing.options(format!("-c search_path={} {WRITERS_PLAN}", config.schema));
        let pool = pool(
            pg,
            config.pool_size.saturating_sub(writers).max(1),
            config.timeout,
        )?;
        let writing = self::pool(writing, writers, config.timeout)?;
        let mut client = pool.get().await?;
        schema::migrate(&mut client, &config.schema).await?;
        drop(client);
        let (queue, jobs) = mpsc::channel(4096);
        let jobs = Arc::new(Mutex::new(jobs));
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(writers));
        let first = write::Shard::random();
        for n in 0..writers {
            tokio::spawn(write::writer(
                writing.clone(),
                jobs.clone(),
                config.max_group.max(1),
                config.timeout,
                running.clone(),
                first.nth(n),
            ));
        }
        Ok(Self {
            pool,
            timeout: config.timeout,
            queue,
            writers,
            running,
        })
    }

    /// Runs `f` with a pooled connection, bounded by the timeout.
    async fn with<T, F, Fut>(&self, f: F) -> Result<T, tracker_core::Error>
    where
        F: FnOnce(deadpool_postgres::Object) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let work = async {
            let client = self.pool.get().await?;
            f(client).await
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(outcome) => outcome.map_err(Into::into),
            Err(_) => Err(Error::Timeout(self.timeout).into()),
        }
    }
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        // PostgreSQL keeps these for its own schemas.
        && !name.to_ascii_lowercase().starts_with("pg_")
}

#[async_trait]
impl Store for PostgresStore {
    async fn commit(&self, change: ChangeSet) -> Result<CommitReceipt, tracker_core::Error> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(write::Job { change, reply })
            .await
            .map_err(|_| Error::WritersGone)?;
        // The writer bounds its own work by the timeout; this bounds the wait in the queue.
        match tokio::time::timeout(self.timeout * 2, answer).await {
            Ok(Ok(outcome)) => Ok(outcome?),
            Ok(Err(_)) => Err(Error::WritersGone.into()),
            Err(_) => Err(Error::Timeout(self.timeout * 2).into()),
        }
    }

    fn alive(&self) -> Result<(), tracker_core::Error> {
        let running = self.running.load(std::sync::atomic::Ordering::SeqCst);
        if running < self.writers {
            return Err(tracker_core::Error::Unavailable(format!(
                "{} of {} postgres writers have died",
                self.writers - running,
                self.writers
            )));
        }
        Ok(())
    }

    async fn check_writes(&self) -> Result<(), tracker_core::Error> {
        self.with(|client| async move {
            client
                .execute(
                    "INSERT INTO readiness (id, checked_at) VALUES (1, $1)
                     ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
                    &[&chrono::Utc::now().timestamp_millis()],
                )
                .await?;
            Ok(())
        })
        .await
    }

    async fn drain(&self) -> Result<(), tracker_core::Error> {
        // Every commit has returned by the time its caller moves on: nothing is queued.
        Ok(())
    }

    async fn open_interactions(
        &self,
        limit: usize,
    ) -> Result<Vec<Interaction>, tracker_core::Error> {
        self.with(|client| async move { read::open_interactions(&client, limit).await })
            .await
    }

    async fn open_interaction(
        &self,
        session: SessionId,
    ) -> Result<Option<Interaction>, tracker_core::Error> {
        self.with(|client| async move { read::open_interaction(&client, session).await })
            .await
    }

    async fn idle_open_interactions(
        &self,
        idle_before: chrono::DateTime<chrono::Utc>,
        after: Option<tracker_core::store::OpenCursor>,
        limit: usize,
    ) -> Result<Vec<Interaction>, tracker_core::Error> {
        self.with(|client| async move {
            read::idle_open_interactions(&client, idle_before, after, limit).await
        })
        .await
    }

    async fn open_count(&self) -> Result<u64, tracker_core::Error> {
        self.with(|client| async move {
            let n: i64 = client
                .query_one("SELECT count(*) FROM interactions WHERE open", &[])
                .await?
                .get(0);
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn device_key(&self) -> Result<DeviceKey, tracker_core::Error> {
        self.with(|client| async move {
            let bytes: Vec<u8> = client
                .query_one("SELECT value FROM settings WHERE name = 'device_key'", &[])
                .await?
                .get(0);
            let bytes: [u8; 32] = bytes
                .try_into()
                .map_err(|_| Error::Corrupt("settings.device_key is not 32 bytes".into()))?;
            Ok(DeviceKey::from_bytes(bytes))
        })
        .await
    }

    async fn contacts(&self, filter: ContactFilter) -> Result<ContactPage, tracker_core::Error> {
        self.with(|mut client| async move { read::contacts(&mut client, &filter).await })
            .await
    }

    async fn dashboard(&self, query: DashboardQuery) -> Result<Dashboard, tracker_core::Error> {
        self.with(|mut client| async move { read::dashboard(&mut client, &query).await })
            .await
    }

    async fn erase_contact(
        &self,
        id: ContactId,
    ) -> Result<Option<tracker_core::store::Erased>, tracker_core::Error> {
        self.with(|mut client| async move { write::erase(&mut client, id).await })
            .await
    }

    async fn identify(
        &self,
        id: ContactId,
        source: String,
        identifier: String,
    ) -> Result<Option<ContactId>, tracker_core::Error> {
        self.with(|mut client| async move {
            write::identify_contact(&mut client, id, &source, &identifier).await
        })
        .await
    }

    async fn contact(
        &self,
        id: ContactId,
        page: InteractionsPage,
    ) -> Result<Option<ContactRecord>, tracker_core::Error> {
        self.with(|mut client| async move { read::contact(&mut client, id, page).await })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_hides_the_password() {
        let config = PostgresConfig::new("postgres://tracker:s3cret@db.example:6432/xdb");
        let shown = config.describe();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("tracker@db.example:6432/xdb"), "{shown}");
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn schema_names_are_identifiers() {
        assert!(is_identifier("tracker_2"));
        assert!(!is_identifier("a;DROP"));
        assert!(!is_identifier("1a"));
        assert!(!is_identifier("pg_tracker"));
        assert!(!is_identifier(""));
    }
}
