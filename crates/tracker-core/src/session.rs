//! The session engine's rules: how tracked events join an interaction, when it expires, and what
//! closing it writes. The server keeps the live interactions and the locks; the rules live here.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use std::net::IpAddr;

use crate::{
    client_info::{anonymize, Attribution, ClientInfo, IpAnonymization},
    event::{DefinitionRef, EventKind, TrackedEvent},
    ids::{ContactId, DeviceId, EventId, InteractionId, SessionId},
    robots::{RobotReason, RobotRules, Unclassified},
};

/// A robot's session ends after this long without a request: crawlers rarely keep cookies, and
/// their sessions should cost little memory.
pub const ROBOT_SESSION_TIMEOUT: Duration = Duration::minutes(1);

/// How visitors are classified and what is kept of their address.
#[derive(Debug)]
pub struct VisitorPolicy {
    /// Known robots.
    pub rules: RobotRules,
    /// How visitors no rule classified are treated.
    pub unclassified: Unclassified,
    /// How client addresses are stored.
    pub ip_anonymization: IpAnonymization,
    /// The search engines and social networks referrers are recognised by.
    pub referrers: crate::acquisition::Referrers,
}

/// How often a live interaction's running totals (last activity, counts, engagement value)
/// are written with its events. In between only the events are written and readers replay the
/// totals from them: rewriting the interaction's row on every request was most of the
/// database's write volume (one run, 64 visitors: ~150 MB/s of WAL and checkpoint writes at
/// 21k requests/s). What lags is only the contact list's "last activity", by at most this.
pub const REFRESH_EVERY: Duration = Duration::seconds(30);

/// Who a batch comes from: a *visitor* is one browser as the engine sees it (its device cookie,
/// its session cookie, its user agent and address). The person behind one or more devices is
/// the *contact*; the HTTP edge's view of a request is `TrackingCaller`.
#[derive(Debug, Clone)]
pub struct Visitor {
    /// The device (from `SC_ANALYTICS_GLOBAL_COOKIE`).
    pub device: DeviceId,
    /// The session cookie, if any.
    pub session: Option<SessionId>,
    /// `sc_site`.
    pub site: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// The client's address (not yet anonymised).
    pub ip: Option<IpAddr>,
    /// Whether the device cookie says the visitor was identified as a person.
    pub human_cookie: bool,
    /// The app's origin (the request's `Origin`): its own pages are not referrers.
    pub origin: Option<String>,
    /// The request's `Referer` when it names another site than `origin`: a new visit's
    /// referrer when its first page view names none.
    pub referer: Option<String>,
    /// The first tag of the request's `Accept-Language`: a new visit's language when its first
    /// page view names none.
    pub language: Option<String>,
}

/// Whether a batch's commit also writes the interaction's running totals: on its first commit
/// and then once per [`REFRESH_EVERY`].
pub fn needs_refresh(refreshed_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    refreshed_at.is_none_or(|at| now - at >= REFRESH_EVERY)
}

impl VisitorPolicy {
    /// Whether the visitor is a robot, and why: a known robot by user agent or address, else a
    /// visitor not identified as a person under `robots.unclassified = "robot"`.
    pub fn classify(&self, visitor: &Visitor) -> Option<RobotReason> {
        if let Some(reason) = self
            .rules
            .classify(visitor.user_agent.as_deref(), visitor.ip)
        {
            return Some(reason);
        }
        match self.unclassified {
            Unclassified::Robot if !visitor.human_cookie => Some(RobotReason::Unidentified),
            _ => None,
        }
    }

    /// A person's new interaction for the session, and where it came from (written with the
    /// interaction's row; the live copy never holds it).
    ///
    /// The contact is not looked up: the change-set is marked `new_contact`, and the store
    /// joins the contact it already has for the device (the same rule that settles two first
    /// requests racing for one device); the fresh id is used only for a new device. Measured:
    /// the read cost a blocking-pool hop on every visit's first request.
    pub fn open(
        &self,
        visitor: &Visitor,
        session_id: SessionId,
        now: DateTime<Utc>,
    ) -> (Interaction, Attribution) {
        let opening = Opening {
            contact_id: ContactId::new_random(),
            device_id: visitor.device,
            session_id,
            site_name: visitor.site.clone(),
            user_agent: visitor.user_agent.clone(),
        };
        let attribution = Attribution {
            client: visitor
                .user_agent
                .as_deref()
                .map_or_else(ClientInfo::default, |ua| {
                    self.rules.agent(ua).client.clone()
                }),
            ip: visitor
                .ip
                .and_then(|ip| anonymize(ip, self.ip_anonymization)),
            landing_url: None,
            referrer: None,
            acquisition: None,
            language: None,
        };
        (Interaction::open(opening, now), attribution)
    }
}

/// A session-state backend's settings, which build it (as `store::StoreConfig` builds a store):
/// the server keeps sessions wherever the configuration says, and names no backend.
#[async_trait::async_trait]
pub trait SessionStateConfig: Send + Sync + std::fmt::Debug {
    /// Connects or creates the state. A failure is [`crate::Error::Open`], naming the setting.
    async fn build(&self) -> Result<std::sync::Arc<dyn SessionState>, crate::Error>;

    /// What the start-up banner says of it (no secrets).
    fn describe(&self) -> String;
}

/// What a session-state type may need of the rest of the configuration.
#[derive(Debug, Clone, Copy)]
pub struct SessionContext {
    /// `tracker.session_timeout`: how long an idle session lives.
    pub session_timeout: std::time::Duration,
    /// `tracker.max_open_sessions`: most sessions one node holds in memory.
    pub max_open_sessions: usize,
}

/// A kind of session state a program can choose with `sessions.backend`: reads its own keys
/// of `[sessions]` into its settings, which build it.
pub trait SessionStateType: crate::config::Named + Send + Sync {
    /// The settings of `[sessions]`, checked: every problem, each naming its key.
    fn config(
        &self,
        table: &crate::config::BackendTable,
        context: SessionContext,
    ) -> Result<Box<dyn SessionStateConfig>, Vec<crate::config::Problem>>;
}

/// The session-state types a program knows, by `sessions.backend` name.
pub type SessionStateTypes = crate::config::Types<dyn SessionStateType>;

/// What a session's state holds between two of its requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveSession {
    /// The open interaction.
    pub interaction: Interaction,
    /// When the store last got its running totals (`None`: not since it was loaded here).
    pub refreshed_at: Option<DateTime<Utc>>,
}

/// One session, locked for one request or one close, so that a visitor's requests apply one
/// after the other. Dropping it lets the next one in; a session never kept is forgotten then.
#[async_trait::async_trait]
pub trait SessionLock: Send {
    /// The session's live interaction, if the state holds one.
    fn live(&self) -> Option<&LiveSession>;

    /// Keeps `live` as the session's state (after its change-set is committed).
    async fn keep(&mut self, live: LiveSession) -> Result<(), crate::Error>;

    /// Keeps `live` and lets go of the session: the end of a request. A shared state does
    /// both in one round trip.
    async fn keep_and_release(mut self: Box<Self>, live: LiveSession) -> Result<(), crate::Error> {
        self.keep(live).await
    }

    /// Ends the session: the state forgets it.
    async fn end(self: Box<Self>) -> Result<(), crate::Error>;
}

/// Where live sessions are kept between requests: in this process, or shared by several
/// tracker nodes. The rules they follow are this module's; the server drives both.
#[async_trait::async_trait]
pub trait SessionState: Send + Sync + std::fmt::Debug {
    /// Locks the session, after the request that holds it.
    async fn lock(&self, id: SessionId) -> Result<Box<dyn SessionLock>, crate::Error>;

    /// Locks a session this request has just made up (a fresh random id no one else can name
    /// until the response's cookie does). A shared state may skip the round trip that taking
    /// the lock costs: nothing can contend for it.
    async fn lock_new(&self, id: SessionId) -> Result<Box<dyn SessionLock>, crate::Error> {
        self.lock(id).await
    }

    /// Locks the session if no request holds it and the state has it (the sweeper passes busy
    /// sessions by: they are not idle).
    async fn try_lock(&self, id: SessionId) -> Result<Option<Box<dyn SessionLock>>, crate::Error>;

    /// The sessions the state holds, for the sweeper to look at.
    async fn sessions(&self) -> Result<Vec<SessionId>, crate::Error>;

    /// The sessions whose last activity, as kept, is before `idle_before`: the sweeper's
    /// candidates. A state that indexes sessions by activity answers without listing the
    /// others (with a million live sessions, most are not idle); by default, all of them (the
    /// sweeper checks each under its lock anyway).
    async fn idle_sessions(
        &self,
        idle_before: DateTime<Utc>,
    ) -> Result<Vec<SessionId>, crate::Error> {
        let _ = idle_before;
        self.sessions().await
    }

    /// Whether the state holds the session (the sweeper ends in the store only visits that no
    /// live session holds).
    async fn holds(&self, id: SessionId) -> Result<bool, crate::Error>;

    /// How many sessions the state holds.
    async fn count(&self) -> Result<usize, crate::Error>;
}

/// A live (open) interaction: everything needed to continue it, also after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    /// Its id.
    pub id: InteractionId,
    /// The contact it belongs to.
    pub contact_id: ContactId,
    /// The device it came from.
    pub device_id: DeviceId,
    /// The session cookie that names it.
    pub session_id: SessionId,
    /// `sc_site` of the request that opened it.
    pub site_name: Option<String>,
    /// The campaign last triggered in it.
    pub campaign: Option<DefinitionRef>,
    /// The user agent that opened it.
    pub user_agent: Option<String>,
    /// When it was opened.
    pub started_at: DateTime<Utc>,
    /// The last request that touched it.
    pub last_activity: DateTime<Utc>,
    /// Sum of the points of its goals, page events and outcomes.
    pub engagement_value: i64,
    /// Number of page views.
    pub page_view_count: i64,
    /// Number of events of every kind (also the next event's sequence number).
    pub event_count: i64,
    /// The page view that events attach to, if any yet.
    pub current_page_view: Option<EventId>,
}

/// An event placed in its interaction.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Its id.
    pub id: EventId,
    /// Position in the interaction, from 0.
    pub seq: i64,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// The page view it belongs to (none for page views and for events before the first one).
    pub page_view_id: Option<EventId>,
    /// What was tracked.
    pub event: TrackedEvent,
}

/// Why an interaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CloseReason {
    /// The client called `/flush`.
    Flush,
    /// No request for the idle timeout.
    Timeout,
}

impl CloseReason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flush => "flush",
            Self::Timeout => "timeout",
        }
    }
}

/// How an interaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close {
    /// End time: the flush, or the last activity for a timeout.
    pub ended_at: DateTime<Utc>,
    /// Why.
    pub reason: CloseReason,
}

/// What opened the interaction: the request's attribution.
#[derive(Debug, Clone)]
pub struct Opening {
    /// The contact.
    pub contact_id: ContactId,
    /// The device.
    pub device_id: DeviceId,
    /// The session.
    pub session_id: SessionId,
    /// `sc_site`.
    pub site_name: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
}

impl Interaction {
    /// A new, empty interaction.
    pub fn open(opening: Opening, now: DateTime<Utc>) -> Self {
        Self {
            id: InteractionId::new_random(),
            contact_id: opening.contact_id,
            device_id: opening.device_id,
            session_id: opening.session_id,
            site_name: opening.site_name,
            campaign: None,
            user_agent: opening.user_agent,
            started_at: now,
            last_activity: now,
            engagement_value: 0,
            page_view_count: 0,
            event_count: 0,
            current_page_view: None,
        }
    }

    /// Places a batch's events in the interaction, in order: a page view becomes the current page
    /// for the events after it, in this batch and later ones. Returns the events to store; `self`
    /// becomes the interaction's state after them.
    pub fn record(&mut self, events: Vec<TrackedEvent>, now: DateTime<Utc>) -> Vec<StoredEvent> {
        self.last_activity = self.last_activity.max(now);
        let mut stored = Vec::with_capacity(events.len());
        for event in events {
            let id = EventId::new_random();
            let page_view_id = match event.kind {
                EventKind::PageView => {
                    self.current_page_view = Some(id);
                    self.page_view_count += 1;
                    None
                }
                _ => self.current_page_view,
            };
            if event.kind == EventKind::Campaign {
                self.campaign.clone_from(&event.definition);
            }
            self.engagement_value = self.engagement_value.saturating_add(event.points());
            stored.push(StoredEvent {
                id,
                seq: self.event_count,
                timestamp: event.timestamp.unwrap_or(now),
                page_view_id,
                event,
            });
            self.event_count += 1;
        }
        stored
    }

    /// Brings the running totals up to date from the interaction's stored events (all of them,
    /// in order): counts, engagement value, current page view and campaign are recomputed, and
    /// the last activity becomes the latest of the stored one and the events' times. The store
    /// keeps these totals only now and then (see `ChangeSet::refresh_interaction`); the events
    /// are the truth.
    pub fn replay(&mut self, events: &[StoredEvent]) {
        if events.is_empty() {
            return;
        }
        self.event_count = 0;
        self.page_view_count = 0;
        self.engagement_value = 0;
        self.current_page_view = None;
        let mut campaign = None;
        for stored in events {
            self.event_count = self.event_count.max(stored.seq + 1);
            match stored.event.kind {
                EventKind::PageView => {
                    self.page_view_count += 1;
                    self.current_page_view = Some(stored.id);
                }
                EventKind::Campaign => campaign.clone_from(&stored.event.definition),
                _ => {}
            }
            self.engagement_value = self.engagement_value.saturating_add(stored.event.points());
            self.last_activity = self.last_activity.max(stored.timestamp);
        }
        if campaign.is_some() {
            self.campaign = campaign;
        }
    }

    /// Whether no request has touched it for `timeout`.
    pub fn is_expired(&self, now: DateTime<Utc>, timeout: Duration) -> bool {
        now - self.last_activity >= timeout
    }

    /// How it ends: a flush ends it now; a timeout at its last activity.
    pub fn close(&self, reason: CloseReason, now: DateTime<Utc>) -> Close {
        let ended_at = match reason {
            CloseReason::Flush => now.max(self.last_activity),
            CloseReason::Timeout => self.last_activity,
        };
        Close { ended_at, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visitor(user_agent: &str, human_cookie: bool) -> Visitor {
        Visitor {
            device: DeviceId::new_random(),
            session: None,
            site: Some("web".into()),
            user_agent: Some(user_agent.into()),
            ip: "203.0.113.9".parse().ok(),
            human_cookie,
            origin: None,
            referer: None,
            language: None,
        }
    }

    #[test]
    fn the_visitor_rules_classify_open_and_refresh() {
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        let mut policy = VisitorPolicy {
            rules: RobotRules::new(&[], &[]).expect("default rules"),
            unclassified: Unclassified::Human,
            ip_anonymization: IpAnonymization::default(),
            referrers: crate::acquisition::Referrers::default(),
        };
        assert_eq!(policy.classify(&visitor(chrome, false)), None);
        assert_eq!(
            policy.classify(&visitor("Googlebot/2.1", true)),
            Some(RobotReason::UserAgent)
        );
        policy.unclassified = Unclassified::Robot;
        assert_eq!(
            policy.classify(&visitor(chrome, false)),
            Some(RobotReason::Unidentified)
        );
        assert_eq!(policy.classify(&visitor(chrome, true)), None);

        let now = Utc::now();
        let person = visitor(chrome, true);
        let session = SessionId::new_random();
        let (opened, attribution) = policy.open(&person, session, now);
        assert_eq!(
            (opened.device_id, opened.session_id, opened.started_at),
            (person.device, session, now)
        );
        assert_eq!(opened.site_name.as_deref(), Some("web"));
        assert!(attribution.ip.is_some());

        assert!(needs_refresh(None, now));
        assert!(!needs_refresh(
            Some(now),
            now + REFRESH_EVERY - Duration::seconds(1)
        ));
        assert!(needs_refresh(Some(now), now + REFRESH_EVERY));
    }
    use crate::{event::PageInfo, ids::Guid};

    fn opening() -> Opening {
        Opening {
            contact_id: ContactId::new_random(),
            device_id: DeviceId::new_random(),
            session_id: SessionId::new_random(),
            site_name: Some("website".into()),
            user_agent: None,
        }
    }

    fn goal(points: i64) -> TrackedEvent {
        let mut event = TrackedEvent::new(EventKind::Goal);
        event.definition = Some(DefinitionRef {
            id: Guid::new_random(),
            name: "g".into(),
            points,
        });
        event
    }

    fn page_view() -> TrackedEvent {
        let mut event = TrackedEvent::new(EventKind::PageView);
        event.page = Some(PageInfo {
            page_id: Guid::new_random(),
            url: "/".into(),
            language: None,
            item_version: None,
            referrer: None,
        });
        event
    }

    #[test]
    fn events_attach_to_the_latest_page_view_across_batches() {
        let now = Utc::now();
        let mut interaction = Interaction::open(opening(), now);
        let first = interaction.record(vec![goal(5), page_view(), goal(10)], now);
        assert_eq!(first[0].page_view_id, None);
        assert_eq!(first[2].page_view_id, Some(first[1].id));
        let second = interaction.record(vec![goal(1)], now);
        assert_eq!(second[0].page_view_id, Some(first[1].id));
        assert_eq!(second[0].seq, 3);
        assert_eq!(interaction.engagement_value, 16);
        assert_eq!(interaction.page_view_count, 1);
    }

    #[test]
    fn replaying_the_stored_events_restores_the_running_totals() {
        let start = Utc::now();
        let mut live = Interaction::open(opening(), start);
        let mut campaign = TrackedEvent::new(EventKind::Campaign);
        campaign.definition = Some(DefinitionRef {
            id: Guid::new_random(),
            name: "Spring Sale".into(),
            points: 0,
        });
        let mut stored = live.record(vec![page_view(), goal(5)], start);
        let stale = live.clone();
        stored.extend(live.record(vec![campaign, page_view()], start + Duration::seconds(40)));
        stored.extend(live.record(vec![goal(10)], start + Duration::seconds(90)));

        let mut replayed = stale;
        replayed.replay(&stored);
        assert_eq!(replayed, live);
        assert_eq!(replayed.engagement_value, 15);
        assert_eq!(replayed.current_page_view, Some(stored[3].id));
        assert_eq!(replayed.last_activity, start + Duration::seconds(90));
    }

    #[test]
    fn expiry_and_close_times() {
        let start = Utc::now();
        let mut interaction = Interaction::open(opening(), start);
        interaction.record(vec![goal(1)], start + Duration::minutes(5));
        let timeout = Duration::minutes(20);
        assert!(!interaction.is_expired(start + Duration::minutes(24), timeout));
        assert!(interaction.is_expired(start + Duration::minutes(25), timeout));
        let close = interaction.close(CloseReason::Timeout, start + Duration::minutes(30));
        assert_eq!(close.ended_at, start + Duration::minutes(5));
        let close = interaction.close(CloseReason::Flush, start + Duration::minutes(6));
        assert_eq!(close.ended_at, start + Duration::minutes(6));
    }
}
