//! Live sessions in this process's memory: a map of slots with one lock each, bounded by
//! `tracker.max_open_sessions`. Over the bound the stalest leave memory; their interactions stay
//! open in the store, and their next request resumes them from there.
//!
//! The map is split into [`SHARDS`] maps, each behind its own lock, a session's shard chosen by
//! hashing its id. Whole-map work (the sweeper's copy of the slots, eviction's sample, the map
//! growing) holds one shard's lock at a time, a fraction of what it held on one map. Measured
//! on one map (new visitors paced at 9,000 req/s, 2 cores, the 200,000 cap reached): eviction
//! held the lock 1–12 ms four times a second, the map's growth up to 23 ms, the sweeper's copy
//! 8–35 ms every 15 s; the lock is a blocking one, so each of those stalled a Tokio worker and
//! every request queued on it.

use std::{
    collections::{hash_map::RandomState, HashMap},
    hash::BuildHasher,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::OwnedMutexGuard;
use tracker_core::{
    ids::SessionId,
    session::{LiveSession, SessionLock, SessionState},
    Error,
};

/// How many maps the sessions are spread over.
const SHARDS: usize = 32;

#[derive(Debug, Default)]
struct Slot {
    live: Option<LiveSession>,
    /// Set once the slot has left the map: a request that still waited for it starts afresh.
    retired: bool,
}

type SlotRef = Arc<tokio::sync::Mutex<Slot>>;
type Shard = Mutex<HashMap<SessionId, SlotRef>>;

/// The shards, the hasher that places a session in one, and how many sessions they hold in all.
#[derive(Debug)]
struct Slots {
    shards: Box<[Shard]>,
    placement: RandomState,
    len: AtomicUsize,
}

impl Slots {
    fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            placement: RandomState::new(),
            len: AtomicUsize::new(0),
        }
    }

    fn shard_of(&self, id: SessionId) -> usize {
        // The remainder of a 64-bit hash by a small count: in range, whatever the hash.
        usize::try_from(self.placement.hash_one(id) % SHARDS as u64).unwrap_or(0)
    }

    fn lock(&self, shard: usize) -> std::sync::MutexGuard<'_, HashMap<SessionId, SlotRef>> {
        self.shards[shard % SHARDS]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get(&self, id: SessionId) -> Option<SlotRef> {
        self.lock(self.shard_of(id)).get(&id).cloned()
    }

    /// Counts sessions into memory. Called under the shard's lock, as [`Slots::count_out`] is:
    /// a session is counted in before it can be counted out, so the count never drops below
    /// zero on its way.
    fn count_in(&self) -> usize {
        self.len.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts sessions out of memory (under the shard's lock).
    fn count_out(&self, removed: usize) -> usize {
        self.len
            .fetch_sub(removed, Ordering::Relaxed)
            .saturating_sub(removed)
    }

    /// Takes the slot out of the map, if it is still this one.
    fn remove(&self, id: SessionId, slot: &SlotRef) {
        let mut map = self.lock(self.shard_of(id));
        if map.get(&id).is_some_and(|held| Arc::ptr_eq(held, slot)) {
            map.remove(&id);
            let len = self.count_out(1);
            drop(map);
            metrics::gauge!(crate::metrics::OPEN_SESSIONS).set(len as f64);
        }
    }

    /// At the cap, sessions leave memory: of a sample of four times as many as must go (a
    /// map's iteration order has nothing to do with age), the stalest not busy with a
    /// request, 1 % of a shard's share of the cap at a time: the new session's shard
    /// gives its share, and the next ones if it has none to give. An approximate LRU, as Redis
    /// does it: scanning the whole map under its lock stalled every request (measured: p99
    /// 154 ms while a 200,000-session map was full). Their interactions are in the store as
    /// committed (every request answers after its commit), so nothing is lost: the next
    /// request resumes them from there. A request that already waits for one finds it retired
    /// and starts afresh. The count is read without a lock: requests adding sessions at the
    /// same instant may pass the cap by as many as they are, until the next new session.
    fn make_room(&self, max_open: usize, shard: usize) {
        if self.len.load(Ordering::Relaxed) < max_open {
            return;
        }
        let count = (max_open / 100 / SHARDS).max(1);
        for next in 0..SHARDS {
            let (evicted, len) = {
                let mut map = self.lock(shard + next);
                let evicted = evict(&mut map, count);
                (evicted, self.count_out(evicted))
            };
            if evicted > 0 {
                metrics::counter!(crate::metrics::SESSIONS_EVICTED).increment(evicted as u64);
                metrics::gauge!(crate::metrics::OPEN_SESSIONS).set(len as f64);
                return;
            }
        }
    }
}

/// Of a sample of `4 × count` slots of one shard, the `count` stalest not busy with a request
/// leave it. Returns how many left.
fn evict(map: &mut HashMap<SessionId, SlotRef>, count: usize) -> usize {
    let mut stalest: Vec<(DateTime<Utc>, SessionId)> = map
        .iter()
        .take(count.saturating_mul(4))
        .filter_map(|(id, slot)| {
            let guard = slot.try_lock().ok()?;
            let at = guard
                .live
                .as_ref()
                .map_or(DateTime::<Utc>::MIN_UTC, |l| l.interaction.last_activity);
            Some((at, *id))
        })
        .collect();
    if stalest.len() > count {
        stalest.select_nth_unstable(count - 1);
        stalest.truncate(count);
    }
    let mut evicted = 0;
    for (_, id) in stalest {
        let Some(slot) = map.get(&id).cloned() else {
            continue;
        };
        // Only while no request holds it (checked again: it is the request's turn else).
        let removed = match slot.try_lock() {
            Ok(mut guard) => {
                guard.retired = true;
                guard.live = None;
                true
            }
            Err(_) => false,
        };
        if removed {
            map.remove(&id);
            evicted += 1;
        }
    }
    evicted
}

/// The sessions of one tracker node, in its memory.
#[derive(Debug)]
pub struct MemorySessions {
    slots: Arc<Slots>,
    max_open: usize,
}

impl MemorySessions {
    /// An empty map that holds at most `max_open` sessions.
    pub fn new(max_open: usize) -> Self {
        Self {
            slots: Arc::new(Slots::new()),
            max_open: max_open.max(1),
        }
    }
}

/// A locked slot.
struct MemoryLock {
    id: SessionId,
    guard: OwnedMutexGuard<Slot>,
    slots: Arc<Slots>,
}

impl MemoryLock {
    fn retire(&mut self) {
        self.guard.retired = true;
        self.guard.live = None;
        self.slots
            .remove(self.id, OwnedMutexGuard::mutex(&self.guard));
    }
}

impl Drop for MemoryLock {
    fn drop(&mut self) {
        // A session never kept (a cookie that named nothing, a request that failed before its
        // first commit) is forgotten.
        if self.guard.live.is_none() && !self.guard.retired {
            self.retire();
        }
    }
}

#[async_trait]
impl SessionLock for MemoryLock {
    fn live(&self) -> Option<&LiveSession> {
        self.guard.live.as_ref()
    }

    async fn keep(&mut self, live: LiveSession) -> Result<(), Error> {
        self.guard.live = Some(live);
        Ok(())
    }

    async fn end(mut self: Box<Self>) -> Result<(), Error> {
        self.retire();
        Ok(())
    }
}

/// `sessions.backend = "memory"`: the sessions of this process, at most `max_open`.
#[derive(Debug, Clone, Copy)]
pub struct MemoryConfig {
    /// `tracker.max_open_sessions`.
    pub max_open: usize,
}

/// `sessions.backend = "memory"`: this process's memory, one tracker node (the default). It
/// has no keys of its own: `tracker.max_open_sessions` bounds it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory;

impl tracker_core::config::Named for Memory {
    fn type_name(&self) -> &str {
        "memory"
    }
}

impl tracker_core::session::SessionStateType for Memory {
    fn config(
        &self,
        table: &tracker_core::config::BackendTable,
        context: tracker_core::session::SessionContext,
    ) -> Result<
        Box<dyn tracker_core::session::SessionStateConfig>,
        Vec<tracker_core::config::Problem>,
    > {
        /// No keys: any is a mistake.
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct NoKeys {}
        let NoKeys {} = table.typed("sessions")?;
        Ok(Box::new(MemoryConfig {
            max_open: context.max_open_sessions,
        }))
    }
}

#[async_trait]
impl tracker_core::session::SessionStateConfig for MemoryConfig {
    async fn build(&self) -> Result<Arc<dyn SessionState>, Error> {
        Ok(Arc::new(MemorySessions::new(self.max_open)))
    }

    fn describe(&self) -> String {
        format!("in this process's memory (at most {})", self.max_open)
    }
}

#[async_trait]
impl SessionState for MemorySessions {
    async fn lock(&self, id: SessionId) -> Result<Box<dyn SessionLock>, Error> {
        let shard = self.slots.shard_of(id);
        loop {
            let slot = match self.slots.get(id) {
                Some(slot) => slot,
                None => {
                    // Room first, one shard's lock at a time; then this shard's, to add it
                    // (unless a request for the same id added it meanwhile).
                    self.slots.make_room(self.max_open, shard);
                    let mut map = self.slots.lock(shard);
                    match map.get(&id) {
                        Some(slot) => slot.clone(),
                        None => {
                            let slot = SlotRef::default();
                            map.insert(id, slot.clone());
                            let len = self.slots.count_in();
                            drop(map);
                            metrics::gauge!(crate::metrics::OPEN_SESSIONS).set(len as f64);
                            slot
                        }
                    }
                }
            };
            let guard = slot.lock_owned().await;
            if guard.retired {
                // It left memory while this request waited: start afresh.
                continue;
            }
            return Ok(Box::new(MemoryLock {
                id,
                guard,
                slots: self.slots.clone(),
            }));
        }
    }

    async fn try_lock(&self, id: SessionId) -> Result<Option<Box<dyn SessionLock>>, Error> {
        let Some(slot) = self.slots.get(id) else {
            return Ok(None);
        };
        let Ok(guard) = slot.try_lock_owned() else {
            return Ok(None);
        };
        if guard.retired {
            return Ok(None);
        }
        Ok(Some(Box::new(MemoryLock {
            id,
            guard,
            slots: self.slots.clone(),
        })))
    }

    async fn sessions(&self) -> Result<Vec<SessionId>, Error> {
        let mut ids = Vec::with_capacity(self.slots.len.load(Ordering::Relaxed));
        for shard in 0..SHARDS {
            ids.extend(self.slots.lock(shard).keys().copied());
        }
        Ok(ids)
    }

    /// Only the idle ones (and those holding nothing): each shard is copied under its lock
    /// (one pass, an `Arc` per slot) and looked at without it. By default the sweeper got
    /// every session and locked each in turn through the map's lock: with the 200,000 of a
    /// full map, every 15 s, that was tens of milliseconds of requests waiting on the map (p99
    /// of new visitors paced at half the maximum 11–88 ms). Busy slots are skipped: a request
    /// holds them, so they are not idle.
    async fn idle_sessions(&self, idle_before: DateTime<Utc>) -> Result<Vec<SessionId>, Error> {
        let mut idle = Vec::new();
        for shard in 0..SHARDS {
            let slots: Vec<(SessionId, SlotRef)> = self
                .slots
                .lock(shard)
                .iter()
                .map(|(id, slot)| (*id, slot.clone()))
                .collect();
            idle.extend(slots.into_iter().filter_map(|(id, slot)| {
                let guard = slot.try_lock().ok()?;
                let idle = guard
                    .live
                    .as_ref()
                    .is_none_or(|live| live.interaction.last_activity < idle_before);
                idle.then_some(id)
            }));
        }
        Ok(idle)
    }

    async fn holds(&self, id: SessionId) -> Result<bool, Error> {
        Ok(self.slots.get(id).is_some())
    }

    async fn count(&self) -> Result<usize, Error> {
        Ok(self.slots.len.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The session-state behaviour suite, each check a test of its own.
    tracker_core::session_state_suite!(async { Box::new(MemorySessions::new(100)) });

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("a time")
            + chrono::Duration::minutes(minute)
    }

    /// A new session kept with its last activity at `minute`.
    async fn keep_new(state: &MemorySessions, minute: i64) -> SessionId {
        use tracker_core::{
            ids::{ContactId, DeviceId},
            session::{Interaction, Opening},
        };
        let id = SessionId::new_random();
        let opening = Opening {
            contact_id: ContactId::new_random(),
            device_id: DeviceId::new_random(),
            session_id: id,
            site_name: None,
            user_agent: None,
        };
        let live = LiveSession {
            interaction: Interaction::open(opening, at(minute)),
            refreshed_at: None,
        };
        state
            .lock(id)
            .await
            .expect("lock")
            .keep_and_release(live)
            .await
            .expect("kept");
        id
    }

    /// The cap holds for the whole map, not per shard: with fewer sessions than shards, a new
    /// session whose own shard has none to give evicts from the next one; a session a request
    /// holds never leaves.
    #[tokio::test]
    async fn the_cap_holds_across_the_shards_and_spares_busy_sessions() {
        let cap = 5;
        let state = MemorySessions::new(cap);
        let busy_id = keep_new(&state, 0).await;
        let busy = state.lock(busy_id).await.expect("lock");
        let mut ids = Vec::new();
        for minute in 1..=200 {
            ids.push(keep_new(&state, minute).await);
            let count = state.count().await.expect("count");
            assert!(count <= cap, "{count} sessions in memory, the cap is {cap}");
        }
        assert_eq!(
            state.count().await.expect("count"),
            cap,
            "full, not emptied"
        );
        assert_eq!(state.sessions().await.expect("listed").len(), cap);
        assert!(state.holds(busy_id).await.expect("holds"), "busy: kept");
        assert!(
            state.holds(ids[199]).await.expect("holds"),
            "the newest is in memory"
        );
        drop(busy);
    }

    #[tokio::test]
    async fn only_idle_sessions_are_the_sweepers_candidates() {
        let state = MemorySessions::new(100);
        let mut ids = Vec::new();
        for minute in [0, 30] {
            ids.push(keep_new(&state, minute).await);
        }
        assert_eq!(
            state.idle_sessions(at(20)).await.expect("idle"),
            vec![ids[0]]
        );
        let busy = state.lock(ids[0]).await.expect("lock");
        assert!(
            state.idle_sessions(at(20)).await.expect("idle").is_empty(),
            "busy: not idle"
        );
        drop(busy);
        let mut both = state.idle_sessions(at(40)).await.expect("idle");
        both.sort();
        ids.sort();
        assert_eq!(both, ids);
    }
}
