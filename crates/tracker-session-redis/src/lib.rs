//! Live session state in Redis, so that several tracker nodes behind a load balancer share it:
//! one visitor's requests may land on any node, in any order of arrival.
//!
//! Keys, under a prefix (`jss-tracker` by default), in [`SHARDS`] shards: a session's shard is
//! its id's last (random) byte, and `{shard}` is a Redis Cluster hash tag, so that one session's
//! keys and its shard's live set share a slot (each script touches one slot, as a cluster
//! requires) while the shards spread over the cluster's primaries:
//! - `{prefix}:{shard}:session:{id}`: the session's [`LiveSession`] as JSON, expiring a while
//!   after the session timeout (a safety net only: the sweeper ends idle sessions, and an
//!   interaction whose key expired is still open in the store, where the sweeper finds it);
//! - `{prefix}:{shard}:lock:{id}`: who holds the session now (a random token), set only if
//!   absent and expiring by itself, so that a node that dies holding it stops holding it.
//!   Requests wait for it a bounded time; the sweeper's claim on an idle session is the same
//!   lock, so exactly one node closes it, and if that node dies mid-close another finishes it;
//! - `{prefix}:{shard}:live`: the shard's held sessions, by last activity (milliseconds), for
//!   the sweeper, which reads every shard.
//!
//! `sessions.url` names one Redis (`redis://host:6379/0`) or a cluster
//! (`redis+cluster://host:7000,host:7001,host:7002`); the layout is the same on both.
//!
//! Every command has a timeout: with Redis unreachable, a request fails fast (503) instead of
//! hanging, and the connection manager reconnects by itself when Redis is back.

use std::time::Duration;

use async_trait::async_trait;
use redis::{AsyncCommands, Script};
use tracker_core::{
    ids::SessionId,
    session::{LiveSession, SessionLock, SessionState},
    Error,
};

mod connection;
mod settings;
use connection::Connection;
pub use connection::CLUSTER_SCHEME;
pub use settings::{Redis, RedisSettings};

/// How many shards the sessions are spread over (see the module's documentation): enough for
/// the slots of a cluster's primaries to share them evenly, few enough that the sweeper's read
/// of every shard stays cheap.
pub const SHARDS: u8 = 32;

/// `[sessions]` with `backend = "redis"`.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://host:port/db`, or a cluster's `redis+cluster://host:port,host:port`.
    pub url: String,
    /// Prefix of every key (several trackers can share one Redis).
    pub prefix: String,
    /// How long a lock lasts if its holder never lets go (a node that died).
    pub lock_ttl: Duration,
    /// Longest wait for a session another request holds, then 503.
    pub lock_wait: Duration,
    /// Longest wait for one Redis command, then 503.
    pub command_timeout: Duration,
    /// How long a session's key outlives its last activity.
    pub session_ttl: Duration,
}

impl RedisConfig {
    /// The defaults for a Redis at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "jss-tracker".into(),
            lock_ttl: Duration::from_secs(10),
            lock_wait: Duration::from_secs(5),
            command_timeout: Duration::from_secs(1),
            session_ttl: Duration::from_secs(3 * 3600),
        }
    }
}

fn unavailable(error: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("redis: {error}"))
}

/// Live sessions in Redis.
#[derive(Clone)]
pub struct RedisSessions {
    conn: Connection,
    config: RedisConfig,
}

impl std::fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessions")
            .field("prefix", &self.config.prefix)
            .finish_non_exhaustive()
    }
}

/// Deletes the lock only if this holder still has it (it may have expired and been taken).
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// Takes the lock if it is free and returns the session with it (`false` when taken): one
/// round trip instead of two.
const CLAIM: &str = r#"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, redis.call('GET', KEYS[2])}
end
return {0, false}
"#;

/// Writes the session and its place in the live set, then lets go of the lock, only if this
/// holder still has it: the end of a request, in one round trip.
const KEEP_AND_RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
redis.call('DEL', KEYS[1])
return 1
"#;

/// Writes the session, and its place in the live set, only if this holder still has the lock.
const KEEP: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
return 1
"#;

/// A session made up by this request, held by no lock in Redis (no one else can name it yet):
/// written with its place in the live set, in one round trip (`lock_new`).
const CREATE: &str = r#"
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
return 1
"#;

/// The same for a request that keeps the new session and goes on holding it: the lock is
/// taken now (it is still free: the id was given to no one).
const CREATE_AND_HOLD: &str = r#"
if not redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[6]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
return 1
"#;

/// Forgets the session and lets go of its lock, only if this holder still has the lock.
const END: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('DEL', KEYS[1])
return 1
"#;

impl RedisSessions {
    /// Connects (failing after the command timeout when Redis is unreachable).
    pub async fn connect(config: RedisConfig) -> Result<Self, Error> {
        let conn = tokio::time::timeout(
            config.command_timeout * 3,
            Connection::open(&config.url, config.command_timeout),
        )
        .await
        .map_err(|_| unavailable(format!("no answer from {} in time", config.url)))?
        .map_err(unavailable)?;
        Ok(Self { conn, config })
    }

    /// A session's shard: its id's last byte (random in every id this tracker issues).
    fn shard(id: SessionId) -> u8 {
        id.0.as_bytes()[15] % SHARDS
    }

    fn key(&self, kind: &str, id: SessionId) -> String {
        format!(
            "{}:{{{}}}:{kind}:{}",
            self.config.prefix,
            Self::shard(id),
            id.0.simple()
        )
    }

    /// The live set of a shard.
    fn live_key(&self, shard: u8) -> String {
        format!("{}:{{{shard}}}:live", self.config.prefix)
    }

    /// Every shard's live-set key.
    fn live_keys(&self) -> impl Iterator<Item = String> + '_ {
        (0..SHARDS).map(|shard| self.live_key(shard))
    }

    /// Runs one Redis call within the command timeout.
    async fn timed<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Error> {
        tokio::time::timeout(self.config.command_timeout, call)
            .await
            .map_err(|_| unavailable("timed out"))?
            .map_err(unavailable)
    }

    /// Takes the lock once; if it was free, the lock with the session it holds.
    async fn claim(&self, id: SessionId) -> Result<Option<RedisLock>, Error> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mut conn = self.conn.clone();
        let ttl = u64::try_from(self.config.lock_ttl.as_millis()).unwrap_or(u64::MAX);
        let (taken, json): (i64, Option<String>) = self
            .timed(
                Script::new(CLAIM)
                    .key(self.key("lock", id))
                    .key(self.key("session", id))
                    .arg(&token)
                    .arg(ttl)
                    .invoke_async(&mut conn),
            )
            .await?;
        if taken == 0 {
            return Ok(None);
        }
        let mut lock = RedisLock {
            sessions: self.clone(),
            id,
            token: Some(token),
            live: None,
            fresh: false,
        };
        // On a parse failure the lock is dropped, which lets go of it.
        lock.live = json
            .map(|json| {
                serde_json::from_str(&json).map_err(|e| {
                    Error::Unavailable(format!("redis: session {id} does not parse: {e}"))
                })
            })
            .transpose()?;
        Ok(Some(lock))
    }

    /// Writes the session under its lock (`KEEP` or `KEEP_AND_RELEASE`); says whether the lock
    /// was still this holder's.
    async fn write(
        &self,
        script: &str,
        id: SessionId,
        token: String,
        live: &LiveSession,
    ) -> Result<(), Error> {
        let json = serde_json::to_string(live).map_err(unavailable)?;
        let ttl = u64::try_from(self.config.session_ttl.as_millis()).unwrap_or(u64::MAX);
        let mut conn = self.conn.clone();
        let kept: i64 = self
            .timed(
                Script::new(script)
                    .key(self.key("lock", id))
                    .key(self.key("session", id))
                    .key(self.live_key(Self::shard(id)))
                    .arg(token)
                    .arg(json)
                    .arg(ttl)
                    .arg(live.interaction.last_activity.timestamp_millis())
                    .arg(id.0.simple().to_string())
                    .invoke_async(&mut conn),
            )
            .await?;
        if kept == 0 {
            return Err(Error::Unavailable(format!(
                "redis: the lock on session {id} expired while it was held"
            )));
        }
        Ok(())
    }
}

/// Lets go of a lock (best effort: it expires by itself otherwise).
async fn release(sessions: RedisSessions, id: SessionId, token: String) {
    let mut conn = sessions.conn.clone();
    let released: Result<i64, Error> = sessions
        .timed(
            Script::new(RELEASE)
                .key(sessions.key("lock", id))
                .arg(token)
                .invoke_async(&mut conn),
        )
        .await;
    if let Err(error) = released {
        tracing::warn!(%error, session = %id, "could not release a session lock; it expires by itself");
    }
}

/// A session locked in Redis.
struct RedisLock {
    sessions: RedisSessions,
    id: SessionId,
    /// `None` once let go.
    token: Option<String>,
    live: Option<LiveSession>,
    /// Made up by this request (`lock_new`): nothing of it is in Redis yet, its lock included.
    fresh: bool,
}

impl RedisLock {
    /// Writes a fresh session (`CREATE`, or `CREATE_AND_HOLD` taking its lock now).
    async fn create(&self, script: &str, token: &str, live: &LiveSession) -> Result<(), Error> {
        let s = &self.sessions;
        let json = serde_json::to_string(live).map_err(unavailable)?;
        let ttl = u64::try_from(s.config.session_ttl.as_millis()).unwrap_or(u64::MAX);
        let lock_ttl = u64::try_from(s.config.lock_ttl.as_millis()).unwrap_or(u64::MAX);
        let mut conn = s.conn.clone();
        let written: i64 = s
            .timed(
                Script::new(script)
                    .key(s.key("session", self.id))
                    .key(s.live_key(RedisSessions::shard(self.id)))
                    .key(s.key("lock", self.id))
                    .arg(token)
                    .arg(json)
                    .arg(ttl)
                    .arg(live.interaction.last_activity.timestamp_millis())
                    .arg(self.id.0.simple().to_string())
                    .arg(lock_ttl)
                    .invoke_async(&mut conn),
            )
            .await?;
        if written == 0 {
            return Err(Error::Unavailable(format!(
                "redis: new session {} was locked by someone else",
                self.id
            )));
        }
        Ok(())
    }
}

impl Drop for RedisLock {
    fn drop(&mut self) {
        if self.fresh {
            // Nothing of it was written: there is no lock to let go.
            return;
        }
        if let Some(token) = self.token.take() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(release(self.sessions.clone(), self.id, token));
            }
        }
    }
}

#[async_trait]
impl SessionLock for RedisLock {
    fn live(&self) -> Option<&LiveSession> {
        self.live.as_ref()
    }

    async fn keep(&mut self, live: LiveSession) -> Result<(), Error> {
        let token = self.token.clone().unwrap_or_default();
        if self.fresh {
            self.create(CREATE_AND_HOLD, &token, &live).await?;
            self.fresh = false;
        } else {
            self.sessions.write(KEEP, self.id, token, &live).await?;
        }
        self.live = Some(live);
        Ok(())
    }

    async fn keep_and_release(mut self: Box<Self>, live: LiveSession) -> Result<(), Error> {
        if self.fresh {
            let token = self.token.take().unwrap_or_default();
            return self.create(CREATE, &token, &live).await;
        }
        let token = self.token.take().unwrap_or_default();
        let written = self
            .sessions
            .write(KEEP_AND_RELEASE, self.id, token.clone(), &live)
            .await;
        if written.is_err() {
            // Let go of it all the same (best effort: it expires by itself otherwise).
            self.token = Some(token);
        }
        written
    }

    async fn end(mut self: Box<Self>) -> Result<(), Error> {
        if self.fresh {
            // Never written: nothing to forget.
            return Ok(());
        }
        let token = self.token.take().unwrap_or_default();
        let s = &self.sessions;
        let mut conn = s.conn.clone();
        let _: i64 = s
            .timed(
                Script::new(END)
                    .key(s.key("lock", self.id))
                    .key(s.key("session", self.id))
                    .key(s.live_key(RedisSessions::shard(self.id)))
                    .arg(token)
                    .arg(self.id.0.simple().to_string())
                    .invoke_async(&mut conn),
            )
            .await?;
        Ok(())
    }
}

#[async_trait]
impl tracker_core::session::SessionStateConfig for RedisConfig {
    async fn build(&self) -> Result<std::sync::Arc<dyn SessionState>, Error> {
        let sessions = RedisSessions::connect(self.clone())
            .await
            .map_err(|error| Error::Open(format!("sessions.url: {error}")))?;
        Ok(std::sync::Arc::new(sessions))
    }

    fn describe(&self) -> String {
        // The URL without its password.
        let shown = match self.url.split_once('@') {
            Some((scheme_and_auth, host)) => {
                let scheme = scheme_and_auth.split("://").next().unwrap_or("redis");
                format!("{scheme}://…@{host}")
            }
            None => self.url.clone(),
        };
        format!("redis at {shown} (keys {}:*)", self.prefix)
    }
}

#[async_trait]
impl SessionState for RedisSessions {
    async fn lock(&self, id: SessionId) -> Result<Box<dyn SessionLock>, Error> {
        let deadline = tokio::time::Instant::now() + self.config.lock_wait;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(lock) = self.claim(id).await? {
                return Ok(Box::new(lock));
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Err(Error::Unavailable(format!(
                    "session {id} stayed busy for {:?}",
                    self.config.lock_wait
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// A session this request made up: no one can name it before the response does, so the
    /// lock is not taken in Redis (a round trip per new visit saved); the session is written,
    /// with its place in the live set, when the request keeps it.
    async fn lock_new(&self, id: SessionId) -> Result<Box<dyn SessionLock>, Error> {
        Ok(Box::new(RedisLock {
            sessions: self.clone(),
            id,
            token: Some(uuid::Uuid::new_v4().simple().to_string()),
            live: None,
            fresh: true,
        }))
    }

    async fn try_lock(&self, id: SessionId) -> Result<Option<Box<dyn SessionLock>>, Error> {
        match self.claim(id).await? {
            Some(lock) if lock.live.is_some() => Ok(Some(Box::new(lock))),
            // A lock on nothing is let go as it drops.
            _ => Ok(None),
        }
    }

    async fn sessions(&self) -> Result<Vec<SessionId>, Error> {
        let mut ids = Vec::new();
        for key in self.live_keys() {
            let mut conn = self.conn.clone();
            let shard: Vec<String> = self.timed(conn.zrange(key, 0, -1)).await?;
            ids.extend(shard.iter().filter_map(|id| SessionId::from_cookie(id)));
        }
        Ok(ids)
    }

    async fn idle_sessions(
        &self,
        idle_before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<SessionId>, Error> {
        // The live sets are scored by last activity: only the idle ones, not every session.
        let mut ids = Vec::new();
        let before = format!("({}", idle_before.timestamp_millis());
        for key in self.live_keys() {
            let mut conn = self.conn.clone();
            let shard: Vec<String> = self.timed(conn.zrangebyscore(key, "-inf", &before)).await?;
            ids.extend(shard.iter().filter_map(|id| SessionId::from_cookie(id)));
        }
        Ok(ids)
    }

    async fn holds(&self, id: SessionId) -> Result<bool, Error> {
        let mut conn = self.conn.clone();
        self.timed(conn.exists(self.key("session", id))).await
    }

    async fn count(&self) -> Result<usize, Error> {
        let mut count = 0;
        for key in self.live_keys() {
            let mut conn = self.conn.clone();
            let shard: usize = self.timed(conn.zcard(key)).await?;
            count += shard;
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracker_core::session::SessionStateConfig;

    #[test]
    fn the_banner_never_shows_the_password() {
        let shown = RedisConfig::new("redis://:s3cret@cache.internal:6379/0").describe();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("cache.internal:6379/0"), "{shown}");
        let plain = RedisConfig::new("redis://127.0.0.1:6379").describe();
        assert!(plain.contains("redis://127.0.0.1:6379"), "{plain}");
    }
}
