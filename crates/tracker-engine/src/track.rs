//! Tracking one batch, in the steps a reader follows from the handler:
//! [`Sessions::track`] → [`Sessions::resolve`] (robot, or the session: locked, or resumed from
//! the store, or new) → [`Sessions::end_if_expired`] → the pipeline ([`Batch::build`], the
//! caller's closure) → [`Sessions::commit_batch`] → [`Sessions::release`].

use chrono::{DateTime, Utc};
use tracker_core::{
    event::TrackedEvent,
    ids::SessionId,
    session::{needs_refresh, Interaction, LiveSession, SessionLock, Visitor},
    store::ChangeSet,
    Error,
};

use crate::{robots::robot_request, Sessions, Tracked};

/// The batch's events, built once by the caller's closure (the `trackEvent` pipeline) for the
/// interaction known when they are first needed.
struct Batch<B> {
    build: Option<B>,
    events: Option<Vec<TrackedEvent>>,
}

impl<B> Batch<B>
where
    B: FnOnce(Option<&Interaction>) -> Result<Vec<TrackedEvent>, Error>,
{
    /// Runs the pipeline if it has not run yet; how many events the batch holds.
    fn build(&mut self, live: Option<&Interaction>) -> Result<usize, Error> {
        if let Some(build) = self.build.take() {
            self.events = Some(build(live)?);
        }
        Ok(self.events.as_ref().map_or(0, Vec::len))
    }

    /// The events, taken out (for the commit).
    fn take(&mut self) -> Vec<TrackedEvent> {
        self.events.take().unwrap_or_default()
    }
}

/// Where [`Sessions::resolve`] leaves a request.
enum Resolved {
    /// Answered already: a robot, or nothing to store and nothing live.
    Answered(Tracked),
    /// The visitor's session, locked (live, resumed, or new and empty).
    Locked(SessionId, Box<dyn SessionLock>),
}

/// What [`Sessions::commit_batch`] did.
enum Committed {
    /// Stored: the interaction as it is now, and when the store last got its totals.
    Stored(LiveSession),
    /// The store has the visit closed (another node closed it, or the contact was erased).
    /// `retry`: the events, when they may be stored once more in a new visit.
    Stale {
        detail: String,
        retry: Option<Vec<TrackedEvent>>,
    },
}

impl Sessions {
    /// Stores a batch in the visitor's live interaction, opening one if needed. Answers only
    /// after the store has committed it. `batch` builds the events (the `trackEvent` pipeline)
    /// once the visitor's session is locked, with its live interaction (`None`: a new visit),
    /// so that processors see the interaction and the contact; an error it returns ends the
    /// request with nothing stored. A batch whose visit turned out closed in the store
    /// (erased, or closed by another node) is stored once more, in a new visit: the visitor's
    /// request still succeeds.
    pub async fn track<B>(
        &self,
        visitor: &Visitor,
        batch: B,
        now: DateTime<Utc>,
    ) -> Result<Tracked, Error>
    where
        B: FnOnce(Option<&Interaction>) -> Result<Vec<TrackedEvent>, Error> + Send,
    {
        let mut batch = Batch {
            build: Some(batch),
            events: None,
        };
        let mut wanted = visitor.session;
        let mut retried = false;
        loop {
            let (id, lock) = match self.resolve(visitor, wanted, &mut batch, now).await? {
                Resolved::Answered(tracked) => return Ok(tracked),
                Resolved::Locked(id, lock) => (id, lock),
            };
            let live = lock.live().cloned();
            if live
                .as_ref()
                .is_some_and(|l| l.interaction.device_id != visitor.device)
            {
                // A session cookie from another device: never join someone else's visit.
                wanted = None;
                continue;
            }
            let live = self.end_if_expired(live, now).await?;
            batch.build(live.as_ref().map(|l| &l.interaction))?;
            let events = batch.take();
            if events.is_empty() {
                return Self::nothing_to_store(id, live, lock).await;
            }
            let count = events.len();
            let keep_retry = !retried && live.is_some();
            match self
                .commit_batch(visitor, id, live, events, keep_retry, now)
                .await?
            {
                Committed::Stored(live) => return Self::release(id, lock, live, count).await,
                Committed::Stale { detail, retry } => {
                    tracing::warn!(%detail, "stale session dropped");
                    lock.end().await?;
                    batch.events = Some(retry.ok_or(Error::Stale(detail))?);
                    retried = true;
                    wanted = None;
                }
            }
        }
    }

    /// The visitor's session for this request: a robot's answered from its own map, the
    /// session its cookie names locked (resumed from the store when the state does not hold
    /// it), or a new one. A request with nothing to store and nothing live is answered
    /// without opening a session.
    async fn resolve<B>(
        &self,
        visitor: &Visitor,
        wanted: Option<SessionId>,
        batch: &mut Batch<B>,
        now: DateTime<Utc>,
    ) -> Result<Resolved, Error>
    where
        B: FnOnce(Option<&Interaction>) -> Result<Vec<TrackedEvent>, Error>,
    {
        if let Some(id) = wanted {
            // A robot's session is looked up in its own small map first: cheaper than asking
            // the session state (one more call, over the network with Redis). Robots' and
            // people's session ids never meet.
            if let Some((id, reason)) = self.robot_session(visitor, now) {
                let count = batch.build(None)?;
                return Ok(Resolved::Answered(self.robot_continues(id, reason, count)));
            }
            // `None`: the cookie names nothing of this device; a new session starts.
            if let Some(lock) = self.lock_or_resume(id, visitor).await? {
                return Ok(Resolved::Locked(id, lock));
            }
        }
        let count = batch.build(None)?;
        let robot = self.classify(visitor);
        if count == 0 {
            // Nothing to store and nothing live: do not open an empty interaction.
            if let Some(reason) = robot {
                robot_request(reason);
            }
            return Ok(Resolved::Answered(Tracked::nothing(robot.is_none())));
        }
        let id = SessionId::new_random();
        // Classified once, when its session starts: later requests of the session cost no
        // pattern matching.
        if let Some(reason) = robot {
            return Ok(Resolved::Answered(
                self.robot_starts(id, visitor, reason, count, now),
            ));
        }
        Ok(Resolved::Locked(id, self.state.lock_new(id).await?))
    }

    /// Answers a batch with no events: the live interaction stays as it was; a new session
    /// that got nothing is forgotten.
    async fn nothing_to_store(
        id: SessionId,
        live: Option<LiveSession>,
        lock: Box<dyn SessionLock>,
    ) -> Result<Tracked, Error> {
        let contact = live.as_ref().map(|l| l.interaction.contact_id);
        if live.is_none() {
            lock.end().await?;
        }
        Ok(Tracked {
            session: contact.map(|_| id),
            contact,
            count: 0,
            human: true,
        })
    }

    /// Records the events in the live interaction (or a new visit's), and commits them with
    /// what a new contact, a refresh of the running totals and the visit's attribution need.
    /// `keep_retry`: keep a copy of the events, to store them once more in a new visit if
    /// the store has this one closed.
    async fn commit_batch(
        &self,
        visitor: &Visitor,
        id: SessionId,
        live: Option<LiveSession>,
        events: Vec<TrackedEvent>,
        keep_retry: bool,
        now: DateTime<Utc>,
    ) -> Result<Committed, Error> {
        let (mut interaction, new_contact, attribution, refreshed_at) = match live {
            Some(live) => (live.interaction, false, None, live.refreshed_at),
            None => {
                let (interaction, attribution) = self.policy.open(visitor, id, now);
                (interaction, true, Some(attribution), None)
            }
        };
        let retry = keep_retry.then(|| events.clone());
        let stored = interaction.record(events, now);
        let attribution = attribution.map(|mut a| {
            let campaign = interaction.campaign.is_some();
            a.land(&stored, visitor, &self.policy.referrers, campaign);
            a
        });
        let refresh = needs_refresh(refreshed_at, now);
        let change = ChangeSet::batch(&interaction, stored, new_contact, refresh, attribution);
        match self.store.commit(change).await {
            Ok(receipt) => {
                interaction.contact_id = receipt.contact_id;
                Ok(Committed::Stored(LiveSession {
                    interaction,
                    refreshed_at: if refresh || new_contact {
                        Some(now)
                    } else {
                        refreshed_at
                    },
                }))
            }
            Err(Error::Stale(detail)) => Ok(Committed::Stale { detail, retry }),
            Err(error) => Err(error),
        }
    }

    /// Keeps the interaction as committed in the session state and lets the session go.
    async fn release(
        id: SessionId,
        lock: Box<dyn SessionLock>,
        live: LiveSession,
        count: usize,
    ) -> Result<Tracked, Error> {
        let contact = live.interaction.contact_id;
        lock.keep_and_release(live).await?;
        Ok(Tracked {
            session: Some(id),
            contact: Some(contact),
            count,
            human: true,
        })
    }
}
