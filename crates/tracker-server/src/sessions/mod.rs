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
mod memory;

pub use memory::{MemoryConfig, MemorySessions};
pub use tracker_core::session::{Visitor, VisitorPolicy, ROBOT_SESSION_TIMEOUT};
use tracker_core::{
    event::TrackedEvent,
    ids::{ContactId, DeviceId, SessionId},
    robots::RobotReason,
    session::{needs_refresh, CloseReason, Interaction, LiveSession, SessionLock, SessionState},
    store::{ChangeSet, Store},
    Error,
};

/// A robot's session: who, why, and when it was last heard from. Nothing else is kept.
#[derive(Debug, Clone, Copy)]
struct RobotSession {
    owner: DeviceId,
    reason: RobotReason,
    last_seen: DateTime<Utc>,
}

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
    /// Where live sessions are kept (this process's memory, or shared by nodes).
    state: Arc<dyn SessionState>,
    robots: Mutex<HashMap<SessionId, RobotSession>>,
    store: Arc<dyn Store>,
    timeout: Duration,
    /// Most robots' sessions held in memory (the same cap as people's).
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
    /// An empty registry over `state` (`max_open` also bounds robots' sessions in memory).
    pub fn new(
        state: Arc<dyn SessionState>,
        store: Arc<dyn Store>,
        timeout: Duration,
        max_open: usize,
        policy: VisitorPolicy,
    ) -> Self {
        Self {
            state,
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

    /// How many interactions the store holds open (after a restart). Nothing is loaded: each
    /// resumes from the store on its visitor's next request, and the sweeper ends those whose
    /// visitors do not come back, a page at a time. So the server listens at once, whatever
    /// the store holds.
    pub async fn restore(&self) -> Result<u64, Error> {
        self.store.open_count().await
    }

    /// Locks the session; when the state does not hold its interaction (it left memory, or is
    /// from before a restart), resumes it from the store if it is the visitor's. `None`: the
    /// cookie names no open interaction of this device.
    async fn lock_or_resume(
        &self,
        id: SessionId,
        visitor: &Visitor,
    ) -> Result<Option<Box<dyn SessionLock>>, Error> {
        let mut lock = self.state.lock(id).await?;
        if lock.live().is_none() {
            match self.store.open_interaction(id).await? {
                Some(interaction) if interaction.device_id == visitor.device => {
                    lock.keep(LiveSession {
                        interaction,
                        refreshed_at: None,
                    })
                    .await?;
                    metrics::counter!(crate::metrics::SESSIONS_RESUMED).increment(1);
                }
                // Dropping the lock forgets the empty session.
                _ => return Ok(None),
            }
        }
        Ok(Some(lock))
    }

    /// Number of live sessions.
    pub async fn count(&self) -> Result<usize, Error> {
        self.state.count().await
    }

    /// Stores a batch in the visitor's live interaction, opening one if needed. Answers only after
    /// the store has committed it. `batch` builds the events (the `trackEvent` pipeline) once
    /// the visitor's session is locked, with its live interaction (`None`: a new visit), so that
    /// processors see the interaction and the contact; an error it returns ends the request
    /// with nothing stored.
    pub async fn track<B>(
        &self,
        visitor: &Visitor,
        batch: B,
        now: DateTime<Utc>,
    ) -> Result<Tracked, Error>
    where
        B: FnOnce(Option<&Interaction>) -> Result<Vec<TrackedEvent>, Error> + Send,
    {
        let mut batch = Some(batch);
        let mut built: Option<Vec<TrackedEvent>> = None;
        // Builds the events once, for the interaction known at that point.
        let mut build_into = |live: Option<&Interaction>,
                              built: &mut Option<Vec<TrackedEvent>>|
         -> Result<usize, Error> {
            if let Some(batch) = batch.take() {
                *built = Some(batch(live)?);
            }
            Ok(built.as_ref().map_or(0, Vec::len))
        };
        macro_rules! build {
            ($live:expr) => {
                build_into($live, &mut built)
            };
        }
        let mut wanted = visitor.session;
        // A batch whose visit turned out closed in the store (erased, or closed by another
        // node) is stored once more, in a new visit: the visitor's request still succeeds.
        let mut retried = false;
        loop {
            let mut locked = None;
            if let Some(id) = wanted {
                // A robot's session is looked up in its own small map first: cheaper than
                // asking the session state (one more call, over the network with Redis).
                // Robots' and people's session ids never meet.
                if let Some((id, reason)) = self.robot_session(visitor, now) {
                    let count = build!(None)?;
                    return self.robot_tracked(id, reason, count);
                }
                // `None`: the cookie names nothing of this device; a new session starts.
                if let Some(lock) = self.lock_or_resume(id, visitor).await? {
                    locked = Some((id, lock));
                }
            }
            let (session_id, lock) = match locked {
                Some(found) => found,
                None if build!(None)? == 0 => {
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
                                count: build!(None)?,
                                human: false,
                            });
                        }
                        robots.insert(id, session);
                        metrics::gauge!(crate::metrics::ROBOT_SESSIONS).set(robots.len() as f64);
                        drop(robots);
                        let count = build!(None)?;
                        return self.robot_tracked(id, reason, count);
                    }
                    (id, self.state.lock(id).await?)
                }
            };
            let mut current = lock.live().cloned();
            if current
                .as_ref()
                .is_some_and(|l| l.interaction.device_id != visitor.device)
            {
                // A session cookie from another device: never join someone else's visit.
                wanted = None;
                continue;
            }
            if let Some(expired) = current.take_if(|l| l.interaction.is_expired(now, self.timeout))
            {
                // Idle past the timeout and not yet swept: end it before starting the next one.
                let close = expired.interaction.close(CloseReason::Timeout, now);
                match self.commit_close(&expired.interaction, close).await {
                    Ok(()) => {}
                    // Closed in the store already: the next visit starts all the same.
                    Err(Error::Stale(detail)) => tracing::warn!(%detail, "stale session ended"),
                    // The state still holds it, for the sweeper or the next request.
                    Err(error) => return Err(error),
                }
            }
            build!(current.as_ref().map(|l| &l.interaction))?;
            let events = built.take().unwrap_or_default();
            if events.is_empty() {
                let contact = current.as_ref().map(|l| l.interaction.contact_id);
                if current.is_none() {
                    lock.end().await?;
                }
                return Ok(Tracked {
                    session: contact.map(|_| session_id),
                    contact,
                    count: 0,
                    human: true,
                });
            }
            let (mut interaction, new_contact, attribution, refreshed_at) = match current {
                Some(live) => (live.interaction, false, None, live.refreshed_at),
                None => {
                    let (interaction, attribution) = self.policy.open(visitor, session_id, now);
                    (interaction, true, Some(attribution), None)
                }
            };
            let count = events.len();
            // Kept for one retry when the batch continues a visit the store may have closed.
            let retry = (!new_contact && !retried).then(|| events.clone());
            let stored = interaction.record(events, now);
            let attribution = attribution.map(|mut a| {
                a.land(&stored);
                a
            });
            let refresh = needs_refresh(refreshed_at, now);
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
                    // The store has this visit closed (another node closed it, or the contact
                    // was erased): drop the session, and store the batch in a new visit (once),
                    // so that the request succeeds and later ones do not fail forever.
                    tracing::warn!(%detail, "stale session dropped");
                    lock.end().await?;
                    let Some(events) = retry else {
                        return Err(Error::Stale(detail));
                    };
                    retried = true;
                    built = Some(events);
                    wanted = None;
                    continue;
                }
                Err(error) => return Err(error),
            };
            interaction.contact_id = receipt.contact_id;
            let contact = interaction.contact_id;
            lock.keep_and_release(LiveSession {
                interaction,
                refreshed_at: if refresh || new_contact {
                    Some(now)
                } else {
                    refreshed_at
                },
            })
            .await?;
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
        let Some(lock) = self.lock_or_resume(id, visitor).await? else {
            return Ok(false);
        };
        let Some(live) = lock
            .live()
            .filter(|l| l.interaction.device_id == visitor.device)
            .map(|l| l.interaction.clone())
        else {
            return Ok(false);
        };
        let reason = if live.is_expired(now, self.timeout) {
            CloseReason::Timeout
        } else {
            CloseReason::Flush
        };
        self.commit_close(&live, live.close(reason, now)).await?;
        lock.end().await?;
        Ok(true)
    }

    /// Ends every interaction idle for the timeout: those in memory, then those the store
    /// holds open that no session in memory has (left memory under load, or from before a
    /// restart), a page at a time. Closes run a few at a time, so that
    /// when many sessions expire together tracking requests still get their commits. Returns
    /// how many ended. Sessions busy with a request are skipped: they are not idle. A session
    /// that fails to close is kept for the next sweep and never stops the others.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<usize, Error> {
        {
            let mut robots = self.robot_map();
            robots.retain(|_, robot| now - robot.last_seen < ROBOT_SESSION_TIMEOUT);
            metrics::gauge!(crate::metrics::ROBOT_SESSIONS).set(robots.len() as f64);
        }
        // In id order: session ids are time-ordered, so sessions that expire together close
        // in the order their rows were written, touching neighbouring pages of the store.
        let mut candidates = self.state.idle_sessions(now - self.timeout).await?;
        candidates.sort_unstable();
        let mut closed = 0;
        let mut failed: Option<Error> = None;
        let mut pages = candidates.chunks(SWEEP_PAGE).peekable();
        while let Some(page) = pages.next() {
            let started = std::time::Instant::now();
            let outcomes: Vec<Result<bool, Error>> = futures::stream::iter(page.to_vec())
                .map(|id| async move { self.sweep_session(id, now).await })
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
            let mut orphans: Vec<Interaction> = Vec::new();
            for interaction in page {
                if interaction.is_expired(now, self.timeout)
                    && !self.state.holds(interaction.session_id).await?
                {
                    orphans.push(interaction);
                }
            }
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

    /// Ends one live session if it is idle; says whether it did.
    async fn sweep_session(&self, id: SessionId, now: DateTime<Utc>) -> Result<bool, Error> {
        let Some(lock) = self.state.try_lock(id).await? else {
            return Ok(false);
        };
        let Some(live) = lock.live().map(|l| l.interaction.clone()) else {
            lock.end().await?;
            return Ok(false);
        };
        if !live.is_expired(now, self.timeout) {
            return Ok(false);
        }
        match self
            .commit_close(&live, live.close(CloseReason::Timeout, now))
            .await
        {
            Ok(()) => {
                lock.end().await?;
                Ok(true)
            }
            Err(Error::Stale(detail)) => {
                // Closed in the store already: nothing left to end here.
                tracing::warn!(%detail, "stale session dropped by the sweeper");
                lock.end().await?;
                Ok(false)
            }
            // Kept for the next sweep.
            Err(error) => Err(error),
        }
    }
}
