//! Live sessions in this process's memory: a map of slots with one lock each, bounded by
//! `tracker.max_open_sessions`. Over the bound the stalest leave memory; their interactions stay
//! open in the store, and their next request resumes them from there.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::OwnedMutexGuard;
use tracker_core::{
    ids::SessionId,
    session::{LiveSession, SessionLock, SessionState},
    Error,
};

#[derive(Debug, Default)]
struct Slot {
    live: Option<LiveSession>,
    /// Set once the slot has left the map: a request that still waited for it starts afresh.
    retired: bool,
}

type SlotRef = Arc<tokio::sync::Mutex<Slot>>;
type Slots = Arc<Mutex<HashMap<SessionId, SlotRef>>>;

/// The sessions of one tracker node, in its memory.
#[derive(Debug)]
pub struct MemorySessions {
    slots: Slots,
    max_open: usize,
}

impl MemorySessions {
    /// An empty map that holds at most `max_open` sessions.
    pub fn new(max_open: usize) -> Self {
        Self {
            slots: Slots::default(),
            max_open: max_open.max(1),
        }
    }
}

fn map(slots: &Slots) -> std::sync::MutexGuard<'_, HashMap<SessionId, SlotRef>> {
    slots
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Takes the slot out of the map, if it is still this one.
fn remove(slots: &Slots, id: SessionId, slot: &SlotRef) {
    let mut map = map(slots);
    if map.get(&id).is_some_and(|held| Arc::ptr_eq(held, slot)) {
        map.remove(&id);
    }
    metrics::gauge!(crate::metrics::OPEN_SESSIONS).set(map.len() as f64);
}

/// At the cap, sessions leave memory: of a sample of four times as many as must go (the map's
/// iteration order has nothing to do with age), the stalest not busy with a request, 1 % of the
/// cap at a time. An approximate LRU, as Redis does it: scanning the whole map under its lock
/// stalled every request (measured: p99 154 ms while a 200,000-session map was full). Their
/// interactions are in the store as committed (every request answers after its commit), so
/// nothing is lost: the next request resumes them from there. A request that already waits for
/// one finds it retired and starts afresh.
fn make_room(map: &mut HashMap<SessionId, SlotRef>, max_open: usize) {
    if map.len() < max_open {
        return;
    }
    let count = (max_open / 100).max(1);
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
    let mut evicted = 0u64;
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
    metrics::counter!(crate::metrics::SESSIONS_EVICTED).increment(evicted);
}

/// A locked slot.
struct MemoryLock {
    id: SessionId,
    guard: OwnedMutexGuard<Slot>,
    slots: Slots,
}

impl MemoryLock {
    fn retire(&mut self) {
        self.guard.retired = true;
        self.guard.live = None;
        remove(&self.slots, self.id, OwnedMutexGuard::mutex(&self.guard));
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
        loop {
            let slot = {
                let mut map = map(&self.slots);
                match map.get(&id) {
                    Some(slot) => slot.clone(),
                    None => {
                        make_room(&mut map, self.max_open);
                        let slot = SlotRef::default();
                        map.insert(id, slot.clone());
                        metrics::gauge!(crate::metrics::OPEN_SESSIONS).set(map.len() as f64);
                        slot
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
        let Some(slot) = map(&self.slots).get(&id).cloned() else {
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
        Ok(map(&self.slots).keys().copied().collect())
    }

    /// Only the idle ones (and those holding nothing): the map is copied under its lock (one
    /// pass, an `Arc` per slot) and looked at without it. By default the sweeper got every
    /// session and locked each in turn through the map's lock: with the 200,000 of a full
    /// map, every 15 s, that was tens of milliseconds of requests waiting on the map (p99 of
    /// new visitors paced at half the maximum 11–88 ms). Busy slots are skipped: a request
    /// holds them, so they are not idle.
    async fn idle_sessions(&self, idle_before: DateTime<Utc>) -> Result<Vec<SessionId>, Error> {
        let slots: Vec<(SessionId, SlotRef)> = map(&self.slots)
            .iter()
            .map(|(id, slot)| (*id, slot.clone()))
            .collect();
        Ok(slots
            .into_iter()
            .filter_map(|(id, slot)| {
                let guard = slot.try_lock().ok()?;
                let idle = guard
                    .live
                    .as_ref()
                    .is_none_or(|live| live.interaction.last_activity < idle_before);
                idle.then_some(id)
            })
            .collect())
    }

    async fn holds(&self, id: SessionId) -> Result<bool, Error> {
        Ok(map(&self.slots).contains_key(&id))
    }

    async fn count(&self) -> Result<usize, Error> {
        Ok(map(&self.slots).len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The session-state behaviour suite, each check a test of its own.
    tracker_core::session_state_suite!(async { Box::new(MemorySessions::new(100)) });

    #[tokio::test]
    async fn only_idle_sessions_are_the_sweepers_candidates() {
        use tracker_core::{
            ids::{ContactId, DeviceId},
            session::{Interaction, Opening},
        };
        let state = MemorySessions::new(100);
        let at = |minute: i64| {
            DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("a time")
                + chrono::Duration::minutes(minute)
        };
        let mut ids = Vec::new();
        for minute in [0, 30] {
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
            ids.push(id);
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
