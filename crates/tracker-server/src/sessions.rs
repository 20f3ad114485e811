//! The live sessions: which interaction a session cookie names, one lock per session so that a
//! visitor's requests apply in order, and the sweeper that ends idle interactions. The rules
//! they follow (classification, opening, refresh, expiry, closing) are `tracker_core::session`'s. Robots'
//! sessions live in a map of their own, a few dozen bytes each and no interaction: their
//! requests are answered as anyone's and never reach the store.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
pub use tracker_core::session::{Visitor, VisitorPolicy, ROBOT_SESSION_TIMEOUT};
use tracker_core::{
    event::TrackedEvent,
    ids::{ContactId, DeviceId, SessionId},
    robots::RobotReason,
    session::{needs_refresh, CloseReason, Interaction},
    store::{ChangeSet, Store},
    Error,
};

#[derive(Debug, Default)]
struct Slot {
    live: Option<Interaction>,
    /// Set once the slot has left the map: a request that still holds it must start afresh.
    retired: bool,
    /// When the store last got the interaction's running totals (`None`: not since start).
    refreshed_at: Option<DateTime<Utc>>,
}

/// A robot's session: who, why, and when it was last heard from. Nothing else is kept.
#[derive(Debug, Clone, Copy)]
struct RobotSession {
    owner: DeviceId,
    reason: RobotReason,
    last_seen: DateTime<Utc>,
}

type SlotRef = Arc<tokio::sync::Mutex<Slot>>;

/// The result of tracking a batch.
#[derive(Debug, Clone, Copy)]
pub struct Tracked {
    /// The session now live for the visitor, if any.
    pub session: Option<SessionId>,
    /// The contact, if an interaction is live.
    pub contact: Option<ContactId>,
    /// Number of events accepted (for a robot: answered as if stored).
    pub count: usize,
    /// Whether the visitor is kept as a person (`|True` in its device cookie).
    pub human: bool,
}

/// All live sessions.
#[derive(Debug)]
pub struct Sessions {
    slots: Mutex<HashMap<SessionId, SlotRef>>,
    robots: Mutex<HashMap<SessionId, RobotSession>>,
    store: Arc<dyn Store>,
    timeout: Duration,
    /// Most sessions held in memory (people's; robots' have the same cap). Over it, the
    /// stalest leave memory: their interactions stay open in the store, and resume from it on
    /// their next request (or are ended there by the sweeper).
    max_open: usize,
    policy: VisitorPolicy,
}

/// Closes the sweeper has in flight at once: enough for the writer to group them, few enough
/// that tracking requests queued behind them wait little (mass expiry must not stall tracking).
const SWEEP_CONCURRENCY: usize = 32;

/// Open interactions the sweeper reads from the store (and sessions it looks at in memory)
/// at a time.
const SWEEP_PAGE: usize = 256;

/// Most interactions the sweeper ends per second when many expire together: each close costs
/// the writer and a processor tens of microseconds, and unpaced, a million expiring at once
/// took the p99 of tracking at 6,000 requests/s to 435 ms (`tracker-bench flood`).
const SWEEP_CLOSES_PER_SECOND: f64 = 5_000.0;

/// How many of a page's closes ended a visit; the first failure is kept in `failed`.
fn count_closed(outcomes: Vec<Result<bool, Error>>, failed: &mut Option<Error>) -> usize {
    let mut closed = 0;
    for outcome in outcomes {
        match outcome {
            Ok(ended) => closed += usize::from(ended),
            Err(error) => {
                failed.get_or_insert(error);
            }
        }
    }
    closed
}

/// Waits, after a page of `closed` closes that took `took`, so that closes keep to
/// [`SWEEP_CLOSES_PER_SECOND`].
async fn pace(closed: usize, took: std::time::Duration) {
    let budget = std::time::Duration::from_secs_f64(closed as f64 / SWEEP_CLOSES_PER_SECOND);
    if let Some(rest) = budget.checked_sub(took) {
        tokio::time::sleep(rest).await;
    }
}

impl Sessions {
    /// An empty registry.
    pub fn new(
        store: Arc<dyn Store>,
        timeout: Duration,
        max_open: usize,
        policy: VisitorPolicy,
    ) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            robots: Mutex::new(HashMap::new()),
            store,
            timeout,
            max_open: max_open.max(1),
            policy,
        }
    }

    /// Whether the visitor is a robot, and why (the policy's rule).
    pub fn classify(&self, visitor: &Visitor) -> Option<RobotReason> {
        self.policy.classify(visitor)
    }

    fn robot_request(reason: RobotReason) {
        metrics::counter!(crate::metrics::ROBOT_REQUESTS, "reason" => reason.as_str()).increment(1);
    }

    fn robot_map(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, RobotSession>> {
        self.robots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Robots' sessions in memory.
    pub fn robot_len(&self) -> usize {
        self.robot_map().len()
    }

    /// The robot's session the visitor's cookie names, if it is still live; refreshed.
    fn robot_session(
        &self,
        visitor: &Visitor,
        now: DateTime<Utc>,
    ) -> Option<(SessionId, RobotReason)> {
        let id = visitor.session?;
        let mut robots = self.robot_map();
        let session = robots.get_mut(&id)?;
        if session.owner != visitor.device || now - session.last_seen >= ROBOT_SESSION_TIMEOUT {
            return None;
        }
        session.last_seen = now;
        Some((id, session.reason))
    }

    /// Answers a robot's batch: counted, not stored.
    fn robot_tracked(
        &self,
        session: SessionId,
        reason: RobotReason,
        count: usize,
    ) -> Result<Tracked, Error> {
        Self::robot_request(reason);
        Ok(Tracked {
            session: Some(session),
            contact: None,
            count,
            human: false,
        })
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, SlotRef>> {
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many interactions the store holds open (after a restart). Nothing is loaded: each
    /// resumes from the store on its visitor's next request, and the sweeper ends those whose
    /// visitors do not come back, a page at a time. So the server listens at once, whatever
    /// the store holds.
    pub async fn restore(&self) -> Result<u64, Error> {
        self.store.open_count().await
    }

    /// The session's open interaction from the store, if it is the visitor's: now in memory.
    async fn resume(&self, id: SessionId, visitor: &Visitor) -> Result<Option<SlotRef>, Error> {
        let Some(interaction) = self.store.open_interaction(id).await? else {
            return Ok(None);
        };
        if interaction.device_id != visitor.device {
            return Ok(None);
        }
        let mut map = self.map();
        if let Some(slot) = map.get(&id) {
            // Another request of the session resumed it meanwhile.
            return Ok(Some(slot.clone()));
        }
        self.make_room(&mut map);
        let slot: SlotRef = Arc::new(tokio::sync::Mutex::new(Slot {
            live: Some(interaction),
            ..Slot::default()
        }));
        map.insert(id, slot.clone());
        metrics::counter!(crate::metrics::SESSIONS_RESUMED).increment(1);
        metrics::gauge!(crate::metrics::OPEN_SESSIONS).set(map.len() as f64);
        Ok(Some(slot))
    }

    /// At the cap, sessions leave memory: of a sample of four times as many as must go (the
    /// map's iteration order has nothing to do with age), the stalest not busy with a request,
    /// 1 % of the cap at a time. An approximate LRU, as Redis does it: scanning the whole map
    /// under its lock stalled every request (measured: p99 154 ms while a 200,000-session map
    /// was full). Their interactions are in the store as committed (every request answers
    /// after its commit), so nothing is lost: the next request resumes them from there. A
    /// request that already holds one finds it retired and resumes it too.
    fn make_room(&self, map: &mut HashMap<SessionId, SlotRef>) {
        if map.len() < self.max_open {
            return;
        }
        let count = (self.max_open / 100).max(1);
        let mut stalest: Vec<(DateTime<Utc>, SessionId)> = map
            .iter()
            .take(count.saturating_mul(4))
            .filter_map(|(id, slot)| {
                let guard = slot.try_lock().ok()?;
                let at = guard
                    .live
                    .as_ref()
                    .map_or(DateTime::<Utc>::MIN_UTC, |i| i.last_activity);
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

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn retire(&self, id: SessionId, slot: &mut Slot) {
        slot.retired = true;
        slot.live = None;
        let mut map = self.map();
        map.remove(&id);
        metrics::gauge!(crate::metrics::OPEN_SESSIONS).set(map.len() as f64);
    }

    /// Stores a batch in the visitor's live interaction, opening one if needed. Answers only after
    /// the store has committed it.
    pub async fn track(
        &self,
        visitor: &Visitor,
        events: Vec<TrackedEvent>,
        now: DateTime<Utc>,
    ) -> Result<Tracked, Error> {
        let mut wanted = visitor.session;
        loop {
            let mut existing =
                wanted.and_then(|id| self.map().get(&id).cloned().map(|slot| (id, slot)));
            // People's sessions are looked up first: the robots' map costs them nothing.
            if existing.is_none() {
                if let Some((id, reason)) = self.robot_session(visitor, now) {
                    return self.robot_tracked(id, reason, events.len());
                }
                // Not in memory: left it under load, or from before a restart.
                if let Some(id) = wanted {
                    existing = self.resume(id, visitor).await?.map(|slot| (id, slot));
                    if existing.is_none() {
                        wanted = None;
                    }
                }
            }
            let (session_id, slot) = match existing {
                Some(found) => found,
                None if events.is_empty() => {
                    // Nothing to store and nothing live: do not open an empty interaction.
                    let robot = self.classify(visitor);
                    if let Some(reason) = robot {
                        Self::robot_request(reason);
                    }
                    return Ok(Tracked {
                        session: None,
                        contact: None,
                        count: 0,
                        human: robot.is_none(),
                    });
                }
                None => {
                    let id = SessionId::new_random();
                    // Classified once, when its session starts: later requests of the session
                    // cost no pattern matching.
                    if let Some(reason) = self.classify(visitor) {
                        let session = RobotSession {
                            owner: visitor.device,
                            reason,
                            last_seen: now,
                        };
                        let mut robots = self.robot_map();
                        if robots.len() >= self.max_open {
                            // Full: answered without a session (each request is classified).
                            drop(robots);
                            Self::robot_request(reason);
                            return Ok(Tracked {
                                session: None,
                                contact: None,
                                count: events.len(),
                                human: false,
                            });
                        }
                        robots.insert(id, session);
                        metrics::gauge!(crate::metrics::ROBOT_SESSIONS).set(robots.len() as f64);
                        drop(robots);
                        return self.robot_tracked(id, reason, events.len());
                    }
                    let slot: SlotRef = Arc::default();
                    let mut map = self.map();
                    self.make_room(&mut map);
                    map.insert(id, slot.clone());
                    metrics::gauge!(crate::metrics::OPEN_SESSIONS).set(map.len() as f64);
                    drop(map);
                    (id, slot)
                }
            };
            let mut guard = slot.lock().await;
            if guard.retired {
                continue;
            }
            if guard
                .live
                .as_ref()
                .is_some_and(|i| i.device_id != visitor.device)
            {
                // A session cookie from another device: never join someone else's visit.
                wanted = None;
                continue;
            }
            if let Some(expired) = guard.live.take_if(|i| i.is_expired(now, self.timeout)) {
                // Idle past the timeout and not yet swept: end it before starting the next one.
                let close = expired.close(CloseReason::Timeout, now);
                match self.commit_close(&expired, close).await {
                    Ok(()) => {}
                    // Closed in the store already: the next visit starts all the same.
                    Err(Error::Stale(detail)) => tracing::warn!(%detail, "stale session ended"),
                    Err(error) => {
                        guard.live = Some(expired);
                        return Err(error);
                    }
                }
            }
            if events.is_empty() {
                let live = guard.live.as_ref();
                return Ok(Tracked {
                    session: live.map(|_| session_id),
                    contact: live.map(|i| i.contact_id),
                    count: 0,
                    human: true,
                });
            }
            let (mut interaction, new_contact, attribution) = match guard.live.clone() {
                Some(live) => (live, false, None),
                None => {
                    let (interaction, attribution) = self.policy.open(visitor, session_id, now);
                    (interaction, true, Some(attribution))
                }
            };
            let count = events.len();
            let stored = interaction.record(events, now);
            let refresh = needs_refresh(guard.refreshed_at, now);
            let committed = self
                .store
                .commit(ChangeSet::batch(
                    &interaction,
                    stored,
                    new_contact,
                    refresh,
                    attribution,
                ))
                .await;
            let receipt = match committed {
                Ok(receipt) => receipt,
                Err(Error::Stale(detail)) => {
                    // The store has this visit closed (someone else closed it): drop the
                    // session, so that the visitor's next request starts a new visit instead
                    // of failing forever. This batch is refused (not stored, not acknowledged).
                    tracing::warn!(%detail, "stale session dropped");
                    self.retire(session_id, &mut guard);
                    return Err(Error::Stale(detail));
                }
                Err(error) => return Err(error),
            };
            if refresh || new_contact {
                guard.refreshed_at = Some(now);
            }
            interaction.contact_id = receipt.contact_id;
            let contact = interaction.contact_id;
            guard.live = Some(interaction);
            return Ok(Tracked {
                session: Some(session_id),
                contact: Some(contact),
                count,
                human: true,
            });
        }
    }

    async fn commit_close(
        &self,
        interaction: &Interaction,
        close: tracker_core::session::Close,
    ) -> Result<(), Error> {
        self.store
            .commit(ChangeSet::close(interaction, close))
            .await?;
        metrics::counter!(crate::metrics::SESSIONS_CLOSED, "reason" => close.reason.as_str())
            .increment(1);
        tracing::info!(
            interaction = %interaction.id,
            contact = %interaction.contact_id,
            reason = close.reason.as_str(),
            engagement_value = interaction.engagement_value,
            "interaction closed"
        );
        Ok(())
    }

    /// The visitor identification request: the visitor proved it is a person (a mouse move, a
    /// touch, a key press on the page). A session that was a robot's only for want of this
    /// becomes a person's, and the caller sets the device cookie to `|True`; a known robot (by
    /// user agent or address) stays one. Returns whether the visitor is now kept as a person.
    /// Nothing tracked before is recovered: a robot's events were never kept.
    pub async fn identify(&self, visitor: &Visitor) -> bool {
        if let Some(reason) = self
            .policy
            .rules
            .classify(visitor.user_agent.as_deref(), visitor.ip)
        {
            Self::robot_request(reason);
            return false;
        }
        // The unidentified visitor's robot session ends; its next request, with the `|True`
        // cookie, starts a person's.
        if let Some(id) = visitor.session {
            let mut robots = self.robot_map();
            if robots
                .get(&id)
                .is_some_and(|r| r.owner == visitor.device && r.reason == RobotReason::Unidentified)
            {
                robots.remove(&id);
                metrics::gauge!(crate::metrics::ROBOT_SESSIONS).set(robots.len() as f64);
            }
        }
        metrics::counter!(crate::metrics::VISITORS_IDENTIFIED).increment(1);
        true
    }

    /// Ends the session's interaction now (`/flush`). Returns whether one was live.
    pub async fn flush(&self, visitor: &Visitor, now: DateTime<Utc>) -> Result<bool, Error> {
        let Some(id) = visitor.session else {
            return Ok(false);
        };
        if let Some((_, reason)) = self.robot_session(visitor, now) {
            Self::robot_request(reason);
            let mut robots = self.robot_map();
            robots.remove(&id);
            metrics::gauge!(crate::metrics::ROBOT_SESSIONS).set(robots.len() as f64);
            return Ok(true);
        }
        let in_memory = self.map().get(&id).cloned();
        let slot = match in_memory {
            Some(slot) => slot,
            None => match self.resume(id, visitor).await? {
                Some(slot) => slot,
                None => return Ok(false),
            },
        };
        let mut guard = slot.lock().await;
        let Some(live) = guard.live.clone().filter(|i| i.device_id == visitor.device) else {
            return Ok(false);
        };
        let reason = if live.is_expired(now, self.timeout) {
            CloseReason::Timeout
        } else {
            CloseReason::Flush
        };
        self.commit_close(&live, live.close(reason, now)).await?;
        self.retire(id, &mut guard);
        Ok(true)
    }

    /// Ends every interaction idle for the timeout: those in memory, then those the store
    /// holds open that no session in memory has (left memory under load, or from before a
    /// restart), a page at a time. Closes run a few at a time ([`SWEEP_CONCURRENCY`]), so that
    /// when many sessions expire together tracking requests still get their commits. Returns
    /// how many ended. Sessions busy with a request are skipped: they are not idle. A session
    /// that fails to close is kept for the next sweep and never stops the others.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<usize, Error> {
        {
            let mut robots = self.robot_map();
            robots.retain(|_, robot| now - robot.last_seen < ROBOT_SESSION_TIMEOUT);
            metrics::gauge!(crate::metrics::ROBOT_SESSIONS).set(robots.len() as f64);
        }
        let candidates: Vec<(SessionId, SlotRef)> = self
            .map()
            .iter()
            .map(|(id, slot)| (*id, slot.clone()))
            .collect();
        let mut closed = 0;
        let mut failed: Option<Error> = None;
        let mut pages = candidates.chunks(SWEEP_PAGE).peekable();
        while let Some(page) = pages.next() {
            let started = std::time::Instant::now();
            let outcomes: Vec<Result<bool, Error>> = futures::stream::iter(page.to_vec())
                .map(|(id, slot)| async move { self.sweep_slot(id, &slot, now).await })
                .buffer_unordered(SWEEP_CONCURRENCY)
                .collect()
                .await;
            let in_page = count_closed(outcomes, &mut failed);
            closed += in_page;
            if pages.peek().is_some() {
                pace(in_page, started.elapsed()).await;
            }
        }
        // The store's side: open interactions no session in memory holds.
        let idle_before = now - self.timeout;
        let mut after = None;
        loop {
            let started = std::time::Instant::now();
            let page = match self
                .store
                .idle_open_interactions(idle_before, after, SWEEP_PAGE)
                .await
            {
                Ok(page) => page,
                Err(error) => {
                    failed.get_or_insert(error);
                    break;
                }
            };
            let full = page.len() == SWEEP_PAGE;
            after = page.last().map(|i| i.id);
            let orphans: Vec<Interaction> = {
                let map = self.map();
                page.into_iter()
                    .filter(|i| i.is_expired(now, self.timeout) && !map.contains_key(&i.session_id))
                    .collect()
            };
            let outcomes: Vec<Result<bool, Error>> = futures::stream::iter(orphans)
                .map(|interaction| async move {
                    let close = interaction.close(CloseReason::Timeout, now);
                    match self.commit_close(&interaction, close).await {
                        Ok(()) => Ok(true),
                        // Closed meanwhile (its visitor came back and ended it).
                        Err(Error::Stale(_)) => Ok(false),
                        Err(error) => Err(error),
                    }
                })
                .buffer_unordered(SWEEP_CONCURRENCY)
                .collect()
                .await;
            let in_page = count_closed(outcomes, &mut failed);
            closed += in_page;
            if !full {
                break;
            }
            pace(in_page, started.elapsed()).await;
        }
        match failed {
            // Said once per sweep, after every other session had its turn.
            Some(error) => Err(error),
            None => Ok(closed),
        }
    }

    /// Ends one in-memory session if it is idle; says whether it did.
    async fn sweep_slot(
        &self,
        id: SessionId,
        slot: &SlotRef,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let Ok(mut guard) = slot.try_lock() else {
            return Ok(false);
        };
        match guard.live.clone() {
            Some(live) if live.is_expired(now, self.timeout) => {
                match self
                    .commit_close(&live, live.close(CloseReason::Timeout, now))
                    .await
                {
                    Ok(()) => {
                        self.retire(id, &mut guard);
                        Ok(true)
                    }
                    Err(Error::Stale(detail)) => {
                        // Closed in the store already: nothing left to end here.
                        tracing::warn!(%detail, "stale session dropped by the sweeper");
                        self.retire(id, &mut guard);
                        Ok(false)
                    }
                    // Kept for the next sweep.
                    Err(error) => Err(error),
                }
            }
            Some(_) => Ok(false),
            None if !guard.retired => {
                self.retire(id, &mut guard);
                Ok(false)
            }
            None => Ok(false),
        }
    }
}
