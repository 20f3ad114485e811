//! Robots' sessions: who, why, and when last heard from, in a small map of their own. Their
//! requests are answered as anyone's and counted; nothing of theirs reaches the store.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tracker_core::{
    ids::{DeviceId, SessionId},
    robots::RobotReason,
    session::{Visitor, ROBOT_SESSION_TIMEOUT},
};

use crate::{metrics, Sessions, Tracked};

/// A robot's session: who, why, and when it was last heard from. Nothing else is kept.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RobotSession {
    owner: DeviceId,
    reason: RobotReason,
    last_seen: DateTime<Utc>,
}

/// Counts one robot's request.
pub(crate) fn robot_request(reason: RobotReason) {
    ::metrics::counter!(metrics::ROBOT_REQUESTS, "reason" => reason.as_str()).increment(1);
}

/// The answer to a robot's batch of `count` events: counted, not stored.
fn robot_tracked(session: Option<SessionId>, reason: RobotReason, count: usize) -> Tracked {
    robot_request(reason);
    Tracked {
        session,
        contact: None,
        count,
        human: false,
    }
}

impl Sessions {
    fn robot_map(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, RobotSession>> {
        self.robots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn robots_changed(robots: &HashMap<SessionId, RobotSession>) {
        ::metrics::gauge!(metrics::ROBOT_SESSIONS).set(robots.len() as f64);
    }

    /// Robots' sessions in memory.
    pub fn robot_len(&self) -> usize {
        self.robot_map().len()
    }

    /// The robot's session the visitor's cookie names, if it is still live; refreshed.
    pub(crate) fn robot_session(
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

    /// Answers a batch of `count` events in the robot's live session.
    pub(crate) fn robot_continues(
        &self,
        id: SessionId,
        reason: RobotReason,
        count: usize,
    ) -> Tracked {
        robot_tracked(Some(id), reason, count)
    }

    /// Starts a robot's session `id` (classified `reason` once, when its session starts: later
    /// requests of the session cost no pattern matching) and answers its batch of `count`
    /// events. When the map is full it is answered without a session (each request is
    /// classified then).
    pub(crate) fn robot_starts(
        &self,
        id: SessionId,
        visitor: &Visitor,
        reason: RobotReason,
        count: usize,
        now: DateTime<Utc>,
    ) -> Tracked {
        let mut robots = self.robot_map();
        if robots.len() >= self.max_open {
            return robot_tracked(None, reason, count);
        }
        let session = RobotSession {
            owner: visitor.device,
            reason,
            last_seen: now,
        };
        robots.insert(id, session);
        Self::robots_changed(&robots);
        drop(robots);
        robot_tracked(Some(id), reason, count)
    }

    /// Ends the robot's session `id` (its `/flush`).
    pub(crate) fn robot_ends(&self, id: SessionId, reason: RobotReason) {
        robot_request(reason);
        let mut robots = self.robot_map();
        robots.remove(&id);
        Self::robots_changed(&robots);
    }

    /// Forgets robots idle for [`ROBOT_SESSION_TIMEOUT`].
    pub(crate) fn sweep_robots(&self, now: DateTime<Utc>) {
        let mut robots = self.robot_map();
        robots.retain(|_, robot| now - robot.last_seen < ROBOT_SESSION_TIMEOUT);
        Self::robots_changed(&robots);
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
            robot_request(reason);
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
                Self::robots_changed(&robots);
            }
        }
        ::metrics::counter!(metrics::VISITORS_IDENTIFIED).increment(1);
        true
    }
}
