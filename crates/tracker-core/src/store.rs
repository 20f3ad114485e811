//! The store traits every backend implements, the change-set a batch commits, and the read models
//! the admin API shows.

use crate::{
    client_info::Attribution,
    ids::{ContactId, DeviceId, DeviceKey, Guid, InteractionId, SessionId},
    session::{Close, Interaction, StoredEvent},
    Error,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// The counter of change-sets a store's writer refused (an error or a panic while writing
/// them, where the rest of their group committed), by `reason` (`error`, `panic`).
pub const CHANGE_SETS_REFUSED: &str = "jss_tracker_change_sets_refused_total";

/// Seconds one group commit of a store's writer took (apply and COMMIT, the sync included):
/// every store's writer records these three (through the `metrics` facade).
pub const WRITER_COMMIT_SECONDS: &str = "jss_tracker_writer_commit_seconds";
/// Change-sets (one per tracking request or close) in one group commit.
pub const WRITER_CHANGE_SETS_PER_COMMIT: &str = "jss_tracker_writer_change_sets_per_commit";
/// Event rows inserted by one group commit.
pub const WRITER_EVENTS_PER_COMMIT: &str = "jss_tracker_writer_events_per_commit";

/// What a caught panic said, for the log (a store's writer catches panics while applying a
/// change-set, refuses that change-set alone, and goes on).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// Everything one request changes, committed atomically: a 2xx is sent only after it is durable.
#[derive(Debug, Clone)]
pub struct ChangeSet {
    /// Set when the interaction is new and its contact is not settled: the store attaches it to
    /// the contact it has for the device, or creates the contact (with the interaction's
    /// `contact_id`) when the device is new. Racing first requests of one device end up in one
    /// contact; the receipt says which ([`CommitReceipt`]).
    pub new_contact: bool,
    /// The interaction's state after the change.
    pub interaction: Interaction,
    /// New events, in order.
    pub events: Vec<StoredEvent>,
    /// Set when the change ends the interaction.
    pub close: Option<Close>,
    /// Whether to store the interaction's running totals (last activity, counts, engagement
    /// value, current page view, campaign) with this change. A store always does when the
    /// change opens or closes the interaction; otherwise it may leave them behind, and readers
    /// bring them up to date from the events ([`Interaction::replay`]). The tracker refreshes
    /// them only now and then: rewriting the interaction's row on every request was most of the
    /// database's write volume under load.
    pub refresh_interaction: bool,
    /// The client of a new interaction (parsed user agent, anonymised address), stored with its
    /// row; `None` on later change-sets. Kept out of [`Interaction`] so that open sessions do
    /// not carry it in memory.
    pub attribution: Option<Attribution>,
}

impl ChangeSet {
    /// A batch's change-set: the events recorded in the interaction, with its running totals
    /// when `refresh` (see `session::needs_refresh`), and where it came from when it is new.
    pub fn batch(
        interaction: &Interaction,
        events: Vec<StoredEvent>,
        new_contact: bool,
        refresh: bool,
        attribution: Option<Attribution>,
    ) -> Self {
        Self {
            new_contact,
            interaction: interaction.clone(),
            events,
            close: None,
            refresh_interaction: refresh,
            attribution,
        }
    }

    /// The change-set that ends an interaction, with its totals as they stand.
    pub fn close(interaction: &Interaction, close: Close) -> Self {
        Self {
            new_contact: false,
            interaction: interaction.clone(),
            events: Vec::new(),
            close: Some(close),
            refresh_interaction: true,
            attribution: None,
        }
    }

    /// Whether this change-set creates its interaction: its first batch holds every event the
    /// interaction has so far (empty batches never open one).
    pub fn opens_interaction(&self) -> bool {
        !self.events.is_empty() && self.interaction.event_count == self.events.len() as i64
    }

    /// The identifications among the new events, as (`source`, `identifier`): a store gives
    /// them to the contact (merging the contact that already has one) before anything else.
    pub fn identifications(&self) -> impl Iterator<Item = (&str, &str)> {
        self.events
            .iter()
            .filter(|stored| stored.event.kind == crate::event::EventKind::Identification)
            .filter_map(|stored| {
                Some((
                    stored.event.data_key.as_deref()?,
                    stored.event.data.as_deref()?,
                ))
            })
    }

    /// Whether the interaction's running totals must be stored: asked for, or an open or close.
    pub fn writes_interaction(&self) -> bool {
        self.refresh_interaction || self.close.is_some() || self.opens_interaction()
    }

    /// Whether every event of the visit is in this change-set (its first request, or a visit
    /// opened and closed at once): its roll-up needs no read-back, and its device was seen
    /// now.
    pub fn holds_whole_visit(&self) -> bool {
        self.interaction.event_count == self.events.len() as i64
    }

    /// The interaction's campaign as its row stores it: id, name, points.
    pub fn campaign(&self) -> (Option<uuid::Uuid>, Option<&str>, Option<i64>) {
        match &self.interaction.campaign {
            Some(c) => (Some(c.id.0), Some(c.name.as_str()), Some(c.points)),
            None => (None, None, None),
        }
    }
}

/// Where a walk over open interactions (by start, then id) goes on: after this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenCursor {
    /// The last interaction's start.
    pub started_at: DateTime<Utc>,
    /// Its id.
    pub id: InteractionId,
}

impl From<&Interaction> for OpenCursor {
    fn from(interaction: &Interaction) -> Self {
        Self {
            started_at: interaction.started_at,
            id: interaction.id,
        }
    }
}

/// What a commit settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitReceipt {
    /// The contact the interaction belongs to. It differs from the change-set's only when two
    /// requests raced to create the contact of a new device; the first one wins.
    pub contact_id: ContactId,
}

/// Which contacts to list: every condition set must hold. The list is ordered by last
/// activity, most recent first (then by id), and paged with [`ContactCursor`].
#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    /// Only the contact of this device.
    pub device: Option<DeviceId>,
    /// At most this many.
    pub limit: usize,
    /// A contact id, a device id, or an identifier (`ada@example.com`) of the contact.
    pub text: Option<ContactText>,
    /// Contacts that reached this goal.
    pub goal: Option<Guid>,
    /// Contacts that had a visit with this campaign.
    pub campaign: Option<Guid>,
    /// Contacts that had a visit on this site (`sc_site`).
    pub site: Option<String>,
    /// Contacts active at or after this time.
    pub active_from: Option<DateTime<Utc>>,
    /// Contacts active before this time.
    pub active_before: Option<DateTime<Utc>>,
    /// Only contacts with an identifier (`profile.index_anonymous_contacts = false`).
    pub known_only: bool,
    /// The page after this one.
    pub after: Option<ContactCursor>,
}

/// What a search text names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactText {
    /// A GUID: the contact's id or one of its devices'.
    Id(Guid),
    /// One of the contact's identifiers, matched exactly.
    Identifier(String),
}

/// Where a page of contacts ends: the last one's activity and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContactCursor {
    /// Its last activity.
    pub last_activity: DateTime<Utc>,
    /// Its id.
    pub id: ContactId,
}

/// A page of contacts.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactPage {
    /// The contacts, most recently active first.
    pub contacts: Vec<ContactSummary>,
    /// How many contacts the filter matches in all.
    pub total: u64,
    /// Where the next page starts, if there is one.
    pub next: Option<ContactCursor>,
}

impl ContactPage {
    /// The page from contacts read one past `limit` (most recently active first): the extra
    /// one says there is a next page, which starts after the page's last contact. Every store
    /// pages its contact list this way.
    pub fn from_rows(mut contacts: Vec<ContactSummary>, limit: usize, total: i64) -> Self {
        let mut next = None;
        if contacts.len() > limit {
            contacts.truncate(limit);
            next = contacts.last().map(|last| ContactCursor {
                last_activity: last.last_activity,
                id: last.id,
            });
        }
        Self {
            contacts,
            total: u64::try_from(total).unwrap_or(0),
            next,
        }
    }
}

/// A contact in a list.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactSummary {
    /// Its id.
    pub id: ContactId,
    /// When it was first seen.
    pub created_at: DateTime<Utc>,
    /// When it was last active.
    pub last_activity: DateTime<Utc>,
    /// Engagement value of all its interactions, the open ones as they stand now.
    pub engagement_value: i64,
    /// Number of its interactions, open and closed.
    pub interaction_count: i64,
    /// Number of goals it reached (goal events, open interactions included).
    pub goal_count: i64,
}

/// A device of a contact.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRecord {
    /// The device id, as in `SC_ANALYTICS_GLOBAL_COOKIE`.
    pub id: DeviceId,
    /// First request.
    pub first_seen: DateTime<Utc>,
    /// Last request.
    pub last_seen: DateTime<Utc>,
}

/// A known identifier of a contact.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentifierRecord {
    /// Where it comes from (for anonymous contacts, the global cookie).
    pub source: String,
    /// The identifier.
    pub identifier: String,
}

/// A stored interaction with its events: the live state it had last, and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct InteractionRecord {
    /// Its state as last stored (totals, campaign, attribution).
    pub interaction: Interaction,
    /// Whether it is still live.
    pub open: bool,
    /// End, once closed.
    pub ended_at: Option<DateTime<Utc>>,
    /// Why it closed.
    pub close_reason: Option<String>,
    /// Its events in order (the first ones, up to the read's `events_per_interaction`).
    pub events: Vec<StoredEvent>,
    /// Events of the interaction not in `events` (over the read's `events_per_interaction`).
    pub events_omitted: u64,
    /// Its client, as recorded when it opened.
    pub attribution: Attribution,
}

/// What erasing a contact removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    /// Its interactions (open ones included).
    pub interactions: u64,
    /// Their events.
    pub events: u64,
    /// Its devices.
    pub devices: u64,
    /// Its identifiers.
    pub identifiers: u64,
}

/// A contact with everything known of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactRecord {
    /// Summary figures.
    pub summary: ContactSummary,
    /// Its devices.
    pub devices: Vec<DeviceRecord>,
    /// Its identifiers.
    pub identifiers: Vec<IdentifierRecord>,
    /// Its interactions, oldest first: the newest ones, up to the read's `limit`.
    pub interactions: Vec<InteractionRecord>,
    /// Where the older interactions continue, if there are more.
    pub older: Option<InteractionCursor>,
}

/// Which of a contact's interactions a contact read returns: the newest `limit` started before
/// `before`, each with its first `events_per_interaction` events. One contact's whole history
/// can be hundreds of megabytes; a read is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InteractionsPage {
    /// Most interactions.
    pub limit: usize,
    /// Only interactions before this one (the previous page's `older`).
    pub before: Option<InteractionCursor>,
    /// Most events per interaction.
    pub events_per_interaction: usize,
}

impl InteractionsPage {
    /// Rows to read: one past the page's `limit` (the extra one says older ones remain).
    pub fn rows_to_read(&self) -> usize {
        self.limit.min(i64::MAX as usize - 1) + 1
    }

    /// The page from interactions read newest first, up to [`InteractionsPage::rows_to_read`]:
    /// oldest first, and the cursor of the older ones when there are more. Every store pages a
    /// contact's interactions this way.
    pub fn from_rows(
        &self,
        mut newest_first: Vec<InteractionRecord>,
    ) -> (Vec<InteractionRecord>, Option<InteractionCursor>) {
        let max = self.rows_to_read() - 1;
        let mut older = None;
        if newest_first.len() > max {
            newest_first.truncate(max);
            older = newest_first.last().map(|last| InteractionCursor {
                started_at: last.interaction.started_at,
                id: last.interaction.id,
            });
        }
        newest_first.reverse();
        (newest_first, older)
    }

    /// Everything (for tests and small contacts).
    pub const ALL: Self = Self {
        limit: usize::MAX,
        before: None,
        events_per_interaction: usize::MAX,
    };
}

/// A place in a contact's interactions, ordered by start then id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InteractionCursor {
    /// The start of the last interaction seen.
    pub started_at: DateTime<Utc>,
    /// Its id.
    pub id: InteractionId,
}

impl InteractionCursor {
    /// The cursor as written in a URL: `<epoch ms>.<id>`.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.started_at.timestamp_millis(), self.id)
    }

    /// The inverse of [`InteractionCursor::encode`].
    pub fn decode(text: &str) -> Option<Self> {
        let (ms, id) = text.split_once('.')?;
        let started_at = DateTime::<Utc>::from_timestamp_millis(ms.parse().ok()?)?;
        let id = InteractionId(uuid::Uuid::try_parse(id).ok()?);
        Some(Self { started_at, id })
    }
}

/// Which visits a dashboard covers: those that started on the UTC days `from` to `to`
/// (inclusive), on one site or all. Whole days, so that stores can keep daily roll-ups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardQuery {
    /// The first day covered.
    pub from: chrono::NaiveDate,
    /// The last day covered.
    pub to: chrono::NaiveDate,
    /// Only visits on this site (`sc_site`).
    pub site: Option<String>,
}

/// The figures of a dashboard. A visit is an interaction (open ones included, as they stand);
/// a bounce is a visit with one page view and nothing else; a goal's conversions are the visits
/// that reached it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dashboard {
    /// Visits.
    pub visits: u64,
    /// Page views.
    pub page_views: u64,
    /// Visits with one page view and no other event.
    pub bounces: u64,
    /// Sum of the points of every event of the visits.
    pub engagement_value: i64,
    /// Per goal reached, most conversions first.
    pub goals: Vec<DefinitionCount>,
    /// Per outcome, most first, with the monetary value per currency.
    pub outcomes: Vec<OutcomeTotal>,
    /// Per campaign, the visits it triggered in, most first.
    pub campaigns: Vec<DefinitionCount>,
    /// The most viewed pages (at most 10), most first.
    pub top_pages: Vec<(String, u64)>,
    /// Per day (UTC) with visits, in order.
    pub days: Vec<DayFigures>,
}

/// A definition and how many visits (or events) it counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionCount {
    /// The definition's id.
    pub id: Guid,
    /// Its name as recorded.
    pub name: String,
    /// The count.
    pub count: u64,
}

/// An outcome's total.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeTotal {
    /// The definition's id.
    pub id: Guid,
    /// Its name as recorded.
    pub name: String,
    /// How many were tracked.
    pub count: u64,
    /// Monetary value per currency code, exact whatever its size.
    pub monetary_value: std::collections::BTreeMap<String, crate::money::MoneySum>,
}

/// One day's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayFigures {
    /// The day (UTC).
    pub date: chrono::NaiveDate,
    /// Visits that started that day.
    pub visits: u64,
    /// Their page views.
    pub page_views: u64,
    /// Their goal conversions (a visit reaching two goals counts two).
    pub conversions: u64,
}

/// A storage backend's settings, which build its store: the server opens whichever backend the
/// configuration chooses through this, and names none (as vector's component configs build
/// their components).
#[async_trait]
pub trait StoreConfig: Send + Sync + std::fmt::Debug {
    /// Opens the store, creating and migrating its database as needed. A failure is
    /// [`Error::Open`], naming the setting at fault.
    async fn build(&self) -> Result<std::sync::Arc<dyn Store>, Error>;

    /// What the start-up banner says of the database (no secrets).
    fn describe(&self) -> String;
}

/// A kind of store a program can choose with `storage.backend`: reads its own keys of
/// `[storage]` into its settings, which open it. Each backend crate provides one; the
/// program registers those it ships ([`StoreTypes::register`]), as processors are.
pub trait StoreType: crate::config::Named + Send + Sync {
    /// The settings of `[storage]` (`table.typed("storage")`), checked: every problem, each
    /// naming its key.
    fn config(
        &self,
        table: &crate::config::BackendTable,
    ) -> Result<Box<dyn StoreConfig>, Vec<crate::config::Problem>>;
}

/// The store types a program knows, by `storage.backend` name.
pub type StoreTypes = crate::config::Types<dyn StoreType>;

/// The experience database.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Commits one change-set atomically and durably (per the configured sync level).
    ///
    /// Every store applies a change-set in the same steps (the SQLite and PostgreSQL writers'
    /// `apply` name them alike):
    /// 1. `contact_of`: a new visit's contact and device are inserted unless the device has one
    ///    already (then that contact is the visit's); identifications then give the contact its
    ///    identifiers or merge it into the contact that had one (the survivor is written to
    ///    from then on);
    /// 2. a change-set that does not write the interaction (events only) appends its events
    ///    if the interaction is still open (`append_events`), else [`Error::Stale`];
    /// 3. otherwise `write_interaction` inserts the interaction or updates the open one
    ///    (closing it when the change-set closes it; a closed row is [`Error::Stale`]),
    ///    `touch_device_and_contact` moves their last activity, the events are inserted, and a
    ///    close adds the visit to the roll-ups and to its contact's totals
    ///    (`add_closed_visit`, with [`crate::rollup::Tally`]).
    ///
    /// The receipt names the contact the interaction belongs to after the commit.
    async fn commit(&self, change: ChangeSet) -> Result<CommitReceipt, Error>;

    /// Commits a small write of its own and says whether that worked: whether the store
    /// accepts writes right now (for readiness checks; the disk may be full, the file
    /// read-only, the database locked).
    async fn check_writes(&self) -> Result<(), Error>;

    /// Waits until every change-set submitted before the call is committed (for shutdown).
    async fn drain(&self) -> Result<(), Error>;

    /// Whether the store's writers are running, asked with no I/O (liveness: a store whose
    /// writer died can never commit again, and the process must be restarted). The default
    /// says yes.
    fn alive(&self) -> Result<(), Error> {
        Ok(())
    }

    /// The open interactions, most recently active first, at most `limit` (for the admin
    /// API's list and the live page; the server resumes sessions one by one, see
    /// `open_interaction`).
    async fn open_interactions(&self, limit: usize) -> Result<Vec<Interaction>, Error>;

    /// The open interaction of a session, with its running totals brought up to date from its
    /// events: to resume a session that is not in memory (evicted, or from before a restart).
    async fn open_interaction(&self, session: SessionId) -> Result<Option<Interaction>, Error>;

    /// A page of open interactions whose stored last activity is before `idle_before`, in
    /// order of start (then id) after `after`, with their totals brought up to date (the
    /// stored last activity may lag: check the returned one). The sweeper ends those no session
    /// holds in memory. Only interactions that started before `idle_before` can be idle, so a
    /// store reads only those (by an index on open interactions' start): walking every open
    /// interaction made each sweep under sustained load a read of millions of rows, whose
    /// snapshot kept SQLite's WAL from starting over (it grew past 500 MiB).
    async fn idle_open_interactions(
        &self,
        idle_before: DateTime<Utc>,
        after: Option<OpenCursor>,
        limit: usize,
    ) -> Result<Vec<Interaction>, Error>;

    /// How many interactions are open.
    async fn open_count(&self) -> Result<u64, Error>;

    /// The key that signs the device ids the tracker issues: created once with the database and
    /// the same for every server on it, so that cookies stay valid across restarts and nodes.
    async fn device_key(&self) -> Result<DeviceKey, Error>;

    /// A page of the contacts the filter matches, most recently active first, with their total.
    async fn contacts(&self, filter: ContactFilter) -> Result<ContactPage, Error>;

    /// The figures of the visits the query covers.
    async fn dashboard(&self, query: DashboardQuery) -> Result<Dashboard, Error>;

    /// Erases a contact (the right to erasure): its identifiers, devices, interactions and
    /// events are deleted, so that no personal data of it remains (the embedded store also
    /// overwrites the freed space and empties its write-ahead log); the daily roll-ups keep
    /// its visits' counts (its open visits are counted in them first); a tombstone records
    /// the erasure. Its device cookie then starts a fresh anonymous contact. `None`: no such
    /// contact.
    async fn erase_contact(&self, id: ContactId) -> Result<Option<Erased>, Error>;

    /// Gives a contact an identifier (`source`, `identifier`), as an identification element
    /// does: when another contact has it already, this one merges into that one. Returns the
    /// contact that has it now; `None`: no such contact.
    async fn identify(
        &self,
        id: ContactId,
        source: String,
        identifier: String,
    ) -> Result<Option<ContactId>, Error>;

    /// One contact with its devices, identifiers and a page of its interactions.
    async fn contact(
        &self,
        id: ContactId,
        page: InteractionsPage,
    ) -> Result<Option<ContactRecord>, Error>;
}
