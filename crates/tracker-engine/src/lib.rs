//! The tracking engine: what happens to a visitor's batch between the HTTP handler and the
//! store, in named steps (see [`Sessions::track`]), behind `tracker-core`'s traits: the live
//! sessions ([`SessionState`]: which interaction a session cookie names, one lock per session
//! so that a visitor's requests apply in order), the `trackEvent` pipeline (run by the caller's
//! closure once the session is locked), and the [`Store`]. Also the sweeper that ends idle
//! interactions, and live sessions in this process's memory ([`Memory`]).
//!
//! The rules the steps follow (classification, opening, refresh, expiry, closing) are
//! `tracker_core::session`'s. Robots' sessions live in a map of their own, a few dozen bytes
//! each and no interaction: their requests are answered as anyone's and never reach the store.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use chrono::Duration;

mod close;
mod memory;
pub mod metrics;
mod robots;
mod sweep;
mod track;

pub use memory::{Memory, MemoryConfig, MemorySessions};
use robots::RobotSession;
pub use tracker_core::session::{Visitor, VisitorPolicy, ROBOT_SESSION_TIMEOUT};
use tracker_core::{
    ids::{ContactId, SessionId},
    robots::RobotReason,
    session::SessionState,
    store::Store,
    Error,
};

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

impl Tracked {
    /// Nothing stored and no session: `human` says whether the visitor is kept as a person.
    fn nothing(human: bool) -> Self {
        Self {
            session: None,
            contact: None,
            count: 0,
            human,
        }
    }
}

/// All live sessions, and the engine that tracks batches through them.
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

    /// How many interactions the store holds open (after a restart). Nothing is loaded: each
    /// resumes from the store on its visitor's next request, and the sweeper ends those whose
    /// visitors do not come back, a page at a time. So the server listens at once, whatever
    /// the store holds.
    pub async fn restore(&self) -> Result<u64, Error> {
        self.store.open_count().await
    }

    /// Number of live sessions.
    pub async fn count(&self) -> Result<usize, Error> {
        self.state.count().await
    }
}
