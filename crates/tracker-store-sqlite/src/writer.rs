//! The single writer: one thread owns the write connection and group-commits change-sets.
//!
//! It takes the first queued change-set, then whatever else is already queued (up to the group
//! size), applies them all in one transaction, commits once, and only then answers each request.
//! Under load this turns many commits (and fsyncs) into one.
//!
//! WAL checkpoints are the checkpointer thread's (see `spawn_checkpointer`); the writer's own
//! automatic checkpoint is only the safety net. When the checkpointer has caught up with the WAL
//! but for its last frames, the writer copies those between two groups ([`WalTail`]), so that
//! the WAL starts over.

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};
use tracker_core::{
    ids::{ContactId, DeviceId},
    rollup::{Fact, Tally},
    store::{ChangeSet, CommitReceipt, Erased},
};

use crate::{read::ms, rollup, Error, WalTail};

/// What the writer is asked to do.
// Barriers are rare (shutdown); boxing the change-set would cost an allocation per commit.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Job {
    /// Commit one change-set and say how it went.
    Commit {
        change: ChangeSet,
        reply: oneshot::Sender<Result<CommitReceipt, Error>>,
    },
    /// Answer once everything queued before it has been committed (for shutdown).
    Barrier(oneshot::Sender<()>),
    /// Write one row and commit it, and say whether that worked (readiness: whether the store
    /// accepts writes right now, disk and file permitting).
    Probe(oneshot::Sender<Result<(), Error>>),
    /// Erase a contact, in a transaction of its own (see [`erase`]).
    Erase {
        contact: ContactId,
        reply: oneshot::Sender<Result<Option<Erased>, Error>>,
    },
    /// Give a contact an identifier, in a transaction of its own (see [`identify_contact`]).
    Identify {
        contact: ContactId,
        source: String,
        identifier: String,
        reply: oneshot::Sender<Result<Option<ContactId>, Error>>,
    },
}

/// Starts the writer thread. It holds `lock` (see `FileLock`) until it stops, so that the
/// database file is free for another store only once nothing more can be written through this
/// one.
pub(crate) fn spawn(
    conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    max_group: usize,
    tail: WalTail,
    lock: crate::FileLock,
) -> Result<(), Error> {
    std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || {
            let _lock = lock;
            // Whatever ends this thread (a panic included) drops the queue's receiver, so that
            // the store reports itself dead (`Store::alive`) and /healthz fails.
            let _said = SayWhenDead;
            let mut conn = conn;
            let mut group = Vec::with_capacity(max_group);
            while let Some(first) = rx.blocking_recv() {
                group.push(first);
                while group.len() < max_group {
                    match rx.try_recv() {
                        Ok(job) => group.push(job),
                        Err(_) => break,
                    }
                }
                if tail.swap(false, std::sync::atomic::Ordering::AcqRel) {
                    copy_tail(&conn);
                }
                run_group(&mut conn, &mut group);
            }
            tracing::debug!("sqlite writer stopped");
        })
        .map_err(|e| Error::Io("sqlite-writer thread".into(), e))?;
    Ok(())
}

/// The WAL's last frames, which the checkpointer left to the writer: copied into the database
/// before the next group, whose transaction then starts the WAL over (unless a reader still
/// needs its frames; the next reset tries again). A failure costs only the reset.
fn copy_tail(conn: &Connection) {
    if let Err(error) = crate::passive_checkpoint(conn) {
        tracing::warn!(%error, "the writer's checkpoint of the WAL's tail failed");
    }
}

/// Runs one group of jobs: the change-sets in one transaction, then erasures and
/// identifications, each alone, after the change-sets queued with them.
fn run_group(conn: &mut Connection, group: &mut Vec<Job>) {
    let mut alone = Vec::new();
    group.retain_mut(|job| match job {
        Job::Erase { .. } | Job::Identify { .. } => {
            alone.push(std::mem::replace(job, Job::Barrier(oneshot::channel().0)));
            false
        }
        _ => true,
    });
    if !group.is_empty() {
        commit_group(conn, group);
    }
    for job in alone {
        match job {
            Job::Erase { contact, reply } => {
                let _ = reply.send(guarded(|| erase(conn, contact)));
            }
            Job::Identify {
                contact,
                source,
                identifier,
                reply,
            } => {
                let _ = reply.send(guarded(|| {
                    identify_contact(conn, contact, &source, &identifier)
                }));
            }
            _ => {}
        }
    }
}

fn commit_group(conn: &mut Connection, group: &mut Vec<Job>) {
    let started = std::time::Instant::now();
    let size = group.len();
    let events: usize = group
        .iter()
        .map(|job| match job {
            Job::Commit { change, .. } => change.events.len(),
            Job::Barrier(_) | Job::Probe(_) | Job::Erase { .. } | Job::Identify { .. } => 0,
        })
        .sum();
    // The fast path: the whole group in one transaction, no savepoints (they would copy every
    // touched page to a sub-journal). If any change-set fails, the group is rolled back and
    // each change-set is retried in a transaction of its own, so one bad change-set never takes
    // the others down, and never leaves half of itself behind.
    // A panic while applying (a bug, or a value no one foresaw) is caught like an error: the
    // transaction is rolled back as it unwinds, and the writer goes on.
    let outcomes: Vec<Result<Option<CommitReceipt>, Error>> = match guarded(|| {
        apply_all(conn, group)
    }) {
        Ok(receipts) => receipts.into_iter().map(Ok).collect(),
        Err(error) => {
            tracing::warn!(%error, size, "group commit failed; committing its change-sets one by one");
            group
                .iter()
                .map(|job| match job {
                    Job::Commit { change, .. } => commit_alone(conn, change).map(Some),
                    Job::Barrier(_) | Job::Erase { .. } | Job::Identify { .. } => Ok(None),
                    Job::Probe(_) => guarded(|| probe_alone(conn)).map(|()| None),
                })
                .collect()
        }
    };
    // Recorded before anyone is answered: a client that reads /metrics after its answer sees
    // its commit counted (a test that did so failed now and then on a busy machine).
    let elapsed = started.elapsed();
    metrics::histogram!(WRITER_COMMIT_SECONDS).record(elapsed.as_secs_f64());
    metrics::histogram!(WRITER_CHANGE_SETS_PER_COMMIT).record(size as f64);
    metrics::histogram!(WRITER_EVENTS_PER_COMMIT).record(events as f64);
    answer(group, outcomes);
    tracing::trace!(
        size,
        events,
        elapsed_us = elapsed.as_micros() as u64,
        "group committed"
    );
}

/// Answers each job of a committed group with its outcome.
fn answer(group: &mut Vec<Job>, outcomes: Vec<Result<Option<CommitReceipt>, Error>>) {
    for (job, outcome) in group.drain(..).zip(outcomes) {
        match job {
            Job::Barrier(reply) => {
                let _ = reply.send(());
            }
            Job::Probe(reply) => {
                let _ = reply.send(outcome.map(|_| ()));
            }
            // Taken out of the group before it is committed.
            Job::Erase { .. } | Job::Identify { .. } => {}
            Job::Commit { reply, .. } => {
                let outcome = outcome.and_then(|receipt| {
                    receipt.ok_or_else(|| Error::Corrupt("change-set was not applied".into()))
                });
                if let Err(error) = &outcome {
                    tracing::error!(%error, "change-set rejected by the store");
                }
                let _ = reply.send(outcome);
            }
        }
    }
}

pub use tracker_core::store::{
    WRITER_CHANGE_SETS_PER_COMMIT, WRITER_COMMIT_SECONDS, WRITER_EVENTS_PER_COMMIT,
};

/// Applies every change-set of the group in one transaction; `None` stands for a barrier.
fn apply_all(conn: &mut Connection, group: &[Job]) -> Result<Vec<Option<CommitReceipt>>, Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut receipts = Vec::with_capacity(group.len());
    let mut tally = Tally::default();
    for job in group {
        receipts.push(match job {
            Job::Commit { change, .. } => Some(apply(&tx, change, &mut tally)?),
            Job::Barrier(_) | Job::Erase { .. } | Job::Identify { .. } => None,
            Job::Probe(_) => {
                probe(&tx)?;
                None
            }
        });
    }
    rollup::write(&mut tally, &tx)?;
    tx.commit()?;
    Ok(receipts)
}

/// Logs the writer thread's death, should it ever panic outside [`guarded`].
struct SayWhenDead;

impl Drop for SayWhenDead {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!("the sqlite writer thread died");
        }
    }
}

/// Runs `work`, turning a panic into an error: nothing one change-set holds may stop the
/// writer (once, ten large outcomes overflowed a sum and killed it for good).
pub(crate) fn guarded<T>(work: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        Err(Error::Panicked(tracker_core::store::panic_message(
            panic.as_ref(),
        )))
    })
}

/// Commits one change-set in a transaction of its own. When it fails for what it holds (an
/// error other than the disk's, or a panic) it is refused alone, counted and logged with its
/// visit's id; a close that fails so still ends its visit (without adding it to the roll-ups),
/// so that no stored visit can make the sweeper fail on it forever, before or after a restart.
fn commit_alone(conn: &mut Connection, change: &ChangeSet) -> Result<CommitReceipt, Error> {
    let error = match guarded(|| apply_alone(conn, change)) {
        Ok(receipt) => return Ok(receipt),
        Err(error @ (Error::Stale(_) | Error::WriterGone)) => return Err(error),
        Err(error) => error,
    };
    let interaction = change.interaction.id;
    let reason = if matches!(error, Error::Panicked(_)) {
        "panic"
    } else {
        "error"
    };
    metrics::counter!(tracker_core::store::CHANGE_SETS_REFUSED, "reason" => reason).increment(1);
    tracing::error!(%interaction, %error, closes = change.close.is_some(), "change-set refused by the writer");
    if let Some(close) = change.close {
        match guarded(|| close_only(conn, change, close)) {
            Ok(()) => {
                tracing::warn!(%interaction, "interaction closed without its roll-up contribution");
                return Ok(CommitReceipt {
                    contact_id: change.interaction.contact_id,
                });
            }
            Err(error) => {
                tracing::error!(%interaction, %error, "interaction could not be closed either");
            }
        }
    }
    Err(match error {
        Error::Panicked(detail) => Error::Refused(detail),
        other => other,
    })
}

/// Ends a visit with nothing else: its row says closed, when and why.
fn close_only(
    conn: &mut Connection,
    change: &ChangeSet,
    close: tracker_core::session::Close,
) -> Result<(), Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.prepare_cached(
        "UPDATE interactions SET open = 0, ended_at = ?2, close_reason = ?3 WHERE id = ?1 AND open = 1",
    )?
    .execute(params![
        change.interaction.id.0,
        ms(close.ended_at),
        close.reason.as_str()
    ])?;
    tx.commit()?;
    Ok(())
}

fn apply_alone(conn: &mut Connection, change: &ChangeSet) -> Result<CommitReceipt, Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut tally = Tally::default();
    let receipt = apply(&tx, change, &mut tally)?;
    rollup::write(&mut tally, &tx)?;
    tx.commit()?;
    Ok(receipt)
}

/// Erases a contact in one transaction with `secure_delete` on (deleted rows and freed pages
/// are overwritten with zeros, so the database file keeps no copy), counting its open visits
/// into the roll-ups first; then checkpoints and truncates the WAL, whose older frames still
/// hold the pages as they were.
pub(crate) fn erase(conn: &mut Connection, contact: ContactId) -> Result<Option<Erased>, Error> {
    conn.pragma_update(None, "secure_delete", true)?;
    let erased = erase_rows(conn, contact);
    let reset = conn.pragma_update(None, "secure_delete", false);
    let erased = erased?;
    reset?;
    if erased.is_some() {
        // With readers in the middle of a read, the WAL cannot be truncated at once: wait
        // for them (the busy timeout) and try again a few times.
        for _ in 0..10 {
            let (busy, _, _): (i64, i64, i64) =
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })?;
            if busy == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    Ok(erased)
}

fn erase_rows(conn: &mut Connection, contact: ContactId) -> Result<Option<Erased>, Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let id = contact.0;
    let exists = tx
        .prepare_cached("SELECT 1 FROM contacts WHERE id = ?1")?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some();
    if !exists {
        return Ok(None);
    }
    // Its open visits were not counted in the roll-ups yet: count them now (the counts stay;
    // the per-contact facets go with the contact).
    let open: Vec<(uuid::Uuid, i64, Option<String>)> = tx
        .prepare_cached(
            "SELECT id, started_at, site_name FROM interactions WHERE contact_id = ?1 AND open = 1",
        )?
        .query_map([id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut tally = Tally::default();
    for (interaction, started, site) in &open {
        rollup::add_stored_visit(&mut tally, &tx, *interaction, id, *started, site.as_deref())?;
    }
    tally.contact_facets.clear();
    rollup::write(&mut tally, &tx)?;
    let count = |n: usize| u64::try_from(n).unwrap_or(0);
    let events = tx
        .prepare_cached(
            "DELETE FROM events WHERE interaction_id IN
                 (SELECT id FROM interactions WHERE contact_id = ?1)",
        )?
        .execute([id])?;
    let interactions = tx
        .prepare_cached("DELETE FROM interactions WHERE contact_id = ?1")?
        .execute([id])?;
    let devices = tx
        .prepare_cached("DELETE FROM devices WHERE contact_id = ?1")?
        .execute([id])?;
    let identifiers = tx
        .prepare_cached("DELETE FROM identifiers WHERE contact_id = ?1")?
        .execute([id])?;
    tx.prepare_cached("DELETE FROM contact_facets WHERE contact_id = ?1")?
        .execute([id])?;
    tx.prepare_cached("DELETE FROM contacts WHERE id = ?1")?
        .execute([id])?;
    tx.prepare_cached(
        "INSERT INTO erased_contacts (id, erased_at) VALUES (?1, ?2)
         ON CONFLICT (id) DO NOTHING",
    )?
    .execute(params![id, chrono::Utc::now().timestamp_millis()])?;
    tx.commit()?;
    Ok(Some(Erased {
        interactions: count(interactions),
        events: count(events),
        devices: count(devices),
        identifiers: count(identifiers),
    }))
}

/// Gives a contact an identifier in a transaction of its own (the admin API's); `None`: no
/// such contact.
pub(crate) fn identify_contact(
    conn: &mut Connection,
    contact: ContactId,
    source: &str,
    identifier: &str,
) -> Result<Option<ContactId>, Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let exists = tx
        .prepare_cached("SELECT 1 FROM contacts WHERE id = ?1")?
        .query_row([contact.0], |_| Ok(()))
        .optional()?
        .is_some();
    if !exists {
        return Ok(None);
    }
    let survivor = identify(&tx, contact.0, source, identifier)?;
    tx.commit()?;
    Ok(Some(ContactId(survivor)))
}

/// Gives `contact` the identifier, or, when another contact has it already, merges `contact`
/// into that one (the known contact survives). Returns the contact that has it now.
fn identify(
    conn: &Connection,
    contact: uuid::Uuid,
    source: &str,
    identifier: &str,
) -> Result<uuid::Uuid, Error> {
    let holder: Option<uuid::Uuid> = conn
        .prepare_cached("SELECT contact_id FROM identifiers WHERE source = ?1 AND identifier = ?2")?
        .query_row(params![source, identifier], |row| row.get(0))
        .optional()?;
    match holder {
        None => {
            conn.prepare_cached(
                "INSERT INTO identifiers (source, identifier, contact_id) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![source, identifier, contact])?;
            Ok(contact)
        }
        Some(holder) if holder == contact => Ok(contact),
        Some(survivor) => {
            merge(conn, contact, survivor)?;
            Ok(survivor)
        }
    }
}

/// Moves everything of `merged` to `survivor` (visits and with them their events, devices,
/// identifiers, search facets, totals) and removes `merged`, leaving a forwarding row. Nothing
/// is copied, so nothing is counted twice.
pub(crate) fn merge(
    conn: &Connection,
    merged: uuid::Uuid,
    survivor: uuid::Uuid,
) -> Result<(), Error> {
    for sql in [
        "UPDATE interactions SET contact_id = ?2 WHERE contact_id = ?1",
        "UPDATE devices SET contact_id = ?2 WHERE contact_id = ?1",
        "UPDATE identifiers SET contact_id = ?2 WHERE contact_id = ?1",
        "INSERT OR IGNORE INTO contact_facets (facet, value, contact_id)
             SELECT facet, value, ?2 FROM contact_facets WHERE contact_id = ?1",
        "DELETE FROM contact_facets WHERE contact_id = ?1 AND ?2 IS NOT NULL",
        "UPDATE contacts SET
             engagement_value = engagement_value
                 + coalesce((SELECT engagement_value FROM contacts WHERE id = ?1), 0),
             created_at = min(created_at,
                 coalesce((SELECT created_at FROM contacts WHERE id = ?1), created_at)),
             last_activity = max(last_activity,
                 coalesce((SELECT last_activity FROM contacts WHERE id = ?1), last_activity))
         WHERE id = ?2",
        "DELETE FROM contacts WHERE id = ?1 AND ?2 IS NOT NULL",
        "UPDATE contact_merges SET survivor_id = ?2 WHERE survivor_id = ?1",
    ] {
        conn.prepare_cached(sql)?
            .execute(params![merged, survivor])?;
    }
    conn.prepare_cached(
        "INSERT INTO contact_merges (merged_id, survivor_id, merged_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (merged_id) DO UPDATE SET survivor_id = excluded.survivor_id",
    )?
    .execute(params![
        merged,
        survivor,
        chrono::Utc::now().timestamp_millis()
    ])?;
    tracing::info!(merged = %merged, survivor = %survivor, "contacts merged");
    Ok(())
}

/// The readiness probe's write: one row, rewritten each time.
fn probe(conn: &Connection) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO readiness (id, checked_at) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
    )?
    .execute([chrono::Utc::now().timestamp_millis()])?;
    Ok(())
}

fn probe_alone(conn: &mut Connection) -> Result<(), Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    probe(&tx)?;
    tx.commit()?;
    Ok(())
}

/// Writes one change-set inside the caller's transaction, in the steps every store takes
/// (`tracker_core::store` documents them): the contact (new, or the row's after a merge) and
/// its identifications; then either the events alone, or the interaction row with its
/// events, and a close's roll-up contribution into `tally` (the caller writes the roll-ups
/// once for the whole transaction).
pub(crate) fn apply(
    conn: &Connection,
    change: &ChangeSet,
    tally: &mut Tally,
) -> Result<CommitReceipt, Error> {
    #[cfg(test)]
    panic_tests::fail_here(change.interaction.id.0);
    let (contact, new_device) = contact_of(conn, change)?;
    if !change.writes_interaction() {
        return append_events(conn, change);
    }
    let owner = write_interaction(conn, change, contact)?;
    touch_device_and_contact(conn, change, owner, new_device)?;
    insert_events(conn, change.interaction.id.0, &change.events)?;
    if let Some(close) = change.close {
        add_closed_visit(conn, change, close, owner, tally)?;
    }
    Ok(CommitReceipt {
        contact_id: ContactId(owner),
    })
}

/// The change-set's contact: inserted with its device for a new one; then, when it brings
/// identifications, the one they leave (the contact may merge into the one that already had
/// an identifier, and everything after writes to the survivor). Also whether the device is
/// new.
fn contact_of(conn: &Connection, change: &ChangeSet) -> Result<(uuid::Uuid, bool), Error> {
    let interaction = &change.interaction;
    let (contact_id, new_device) = if change.new_contact {
        ensure_contact(
            conn,
            interaction.device_id,
            interaction.contact_id,
            interaction.started_at,
        )?
    } else {
        (interaction.contact_id, false)
    };
    let mut contact = contact_id.0;
    let mut identifications = change.identifications().peekable();
    if identifications.peek().is_some() {
        if !change.new_contact {
            // A session's contact may have been merged meanwhile: the row knows.
            if let Some(current) = conn
                .prepare_cached("SELECT contact_id FROM interactions WHERE id = ?1")?
                .query_row([interaction.id.0], |row| row.get(0))
                .optional()?
            {
                contact = current;
            }
        }
        for (source, identifier) in identifications {
            contact = identify(conn, contact, source, identifier)?;
        }
    }
    Ok((contact, new_device))
}

/// Events only: the running totals stay behind until the next refresh, and readers replay
/// them from the events. The interaction must still be open; the receipt names the row's
/// contact (the session's may have been merged into another meanwhile).
fn append_events(conn: &Connection, change: &ChangeSet) -> Result<CommitReceipt, Error> {
    let interaction = &change.interaction;
    let row: Option<(bool, uuid::Uuid)> = conn
        .prepare_cached("SELECT open, contact_id FROM interactions WHERE id = ?1")?
        .query_row([interaction.id.0], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let Some((true, owner)) = row else {
        return Err(Error::Stale(format!(
            "interaction {} is closed or unknown",
            interaction.id
        )));
    };
    insert_events(conn, interaction.id.0, &change.events)?;
    Ok(CommitReceipt {
        contact_id: ContactId(owner),
    })
}

/// The interaction row's columns, as [`write_interaction`] binds them (`?16 IS NULL`: open
/// unless the change-set closes it).
macro_rules! insert_interaction {
    () => {
        "INSERT INTO interactions (id, contact_id, device_id, session_id, open, started_at,
             last_activity, site_name, campaign_id, campaign_name, campaign_points, user_agent,
             engagement_value, page_view_count, event_count, current_page_view, ended_at,
             close_reason, browser, browser_version, os, device_type, ip, landing_url, referrer,
             channel, source, utm_source, utm_medium, utm_campaign, utm_term, utm_content,
             language)
         VALUES (?1, ?2, ?3, ?4, ?16 IS NULL, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
             ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31,
             ?32)"
    };
}

/// A live interaction's running totals (and its end), or its row when it is new; answers the
/// row's contact, nothing when the row is closed.
const UPSERT_INTERACTION: &str = concat!(
    insert_interaction!(),
    "
     ON CONFLICT (id) DO UPDATE SET
         last_activity = excluded.last_activity, campaign_id = excluded.campaign_id,
         campaign_name = excluded.campaign_name, campaign_points = excluded.campaign_points,
         engagement_value = excluded.engagement_value,
         page_view_count = excluded.page_view_count, event_count = excluded.event_count,
         current_page_view = excluded.current_page_view, open = excluded.open,
         ended_at = excluded.ended_at, close_reason = excluded.close_reason
     WHERE open = 1
     RETURNING contact_id"
);

/// Inserts a new interaction or updates a live one, closing it too when the change-set says
/// so, in one statement (one B-tree visit instead of an upsert and an update). Returns the
/// row's contact (the session's may have been merged into another meanwhile); a closed row
/// is [`Error::Stale`]. A new visit's row (its id is fresh) is a plain insert: the upsert's
/// conflict handling and `RETURNING` cost the commonest request for nothing.
fn write_interaction(
    conn: &Connection,
    change: &ChangeSet,
    contact: uuid::Uuid,
) -> Result<uuid::Uuid, Error> {
    let interaction = &change.interaction;
    let (campaign_id, campaign_name, campaign_points) = change.campaign();
    let attribution = change.attribution.as_ref();
    let came_from = attribution
        .and_then(|a| a.acquisition.as_ref())
        .map(tracker_core::acquisition::Acquisition::columns)
        .unwrap_or_default();
    let params = params![
        interaction.id.0,
        contact,
        interaction.device_id.0,
        interaction.session_id.0,
        ms(interaction.started_at),
        ms(interaction.last_activity),
        interaction.site_name,
        campaign_id,
        campaign_name,
        campaign_points,
        interaction.user_agent,
        interaction.engagement_value,
        interaction.page_view_count,
        interaction.event_count,
        interaction.current_page_view.map(|id| id.0),
        change.close.map(|close| ms(close.ended_at)),
        change.close.map(|close| close.reason.as_str()),
        attribution.and_then(|a| a.client.browser.as_deref()),
        attribution.and_then(|a| a.client.browser_version.as_deref()),
        attribution.and_then(|a| a.client.os.as_deref()),
        attribution.and_then(|a| a.client.device_type.as_deref()),
        attribution.and_then(|a| a.ip).map(|ip| ip.to_string()),
        attribution.and_then(|a| a.landing_url.as_deref()),
        attribution.and_then(|a| a.referrer.as_deref()),
        came_from[0],
        came_from[1],
        came_from[2],
        came_from[3],
        came_from[4],
        came_from[5],
        came_from[6],
        attribution.and_then(|a| a.language.as_deref()),
    ];
    if change.new_contact {
        conn.prepare_cached(insert_interaction!())?
            .execute(params)?;
        return Ok(contact);
    }
    let owner: Option<uuid::Uuid> = conn
        .prepare_cached(UPSERT_INTERACTION)?
        .query_row(params, |row| row.get(0))
        .optional()?;
    owner.ok_or_else(|| Error::Stale(format!("interaction {} is already closed", interaction.id)))
}

/// The device's and the contact's last activity. A new interaction of a known device: the
/// device was seen now. The contact list is ordered by the contact row's last activity: it
/// follows the interaction's whenever that is written (at open and every refresh, so it lags
/// by at most the refresh interval). Rows inserted by this change-set already carry the time.
fn touch_device_and_contact(
    conn: &Connection,
    change: &ChangeSet,
    contact: uuid::Uuid,
    new_device: bool,
) -> Result<(), Error> {
    let interaction = &change.interaction;
    if new_device {
        return Ok(());
    }
    if change.holds_whole_visit() {
        conn.prepare_cached("UPDATE devices SET last_seen = max(last_seen, ?2) WHERE id = ?1")?
            .execute(params![
                interaction.device_id.0,
                ms(interaction.last_activity)
            ])?;
    }
    if change.close.is_none() {
        conn.prepare_cached(
            "UPDATE contacts SET last_activity = max(last_activity, ?2) WHERE id = ?1",
        )?
        .execute(params![contact, ms(interaction.last_activity)])?;
    }
    Ok(())
}

/// A closed visit's part of the roll-ups (into `tally`) and of its contact's totals.
fn add_closed_visit(
    conn: &Connection,
    change: &ChangeSet,
    close: tracker_core::session::Close,
    contact: uuid::Uuid,
    tally: &mut Tally,
) -> Result<(), Error> {
    let interaction = &change.interaction;
    let (started, site) = (ms(interaction.started_at), interaction.site_name.as_deref());
    if change.holds_whole_visit() {
        // The whole visit is in this change-set: no need to read it back.
        let facts: Vec<Fact> = change.events.iter().map(Fact::of).collect();
        tally.add_visit(contact, started, site, &facts);
    } else {
        rollup::add_stored_visit(tally, conn, interaction.id.0, contact, started, site)?;
    }
    conn.prepare_cached(
        "UPDATE contacts SET engagement_value = engagement_value + ?2,
             last_activity = max(last_activity, ?3) WHERE id = ?1",
    )?
    .execute(params![
        contact,
        interaction.engagement_value,
        ms(close.ended_at)
    ])?;
    Ok(())
}

/// Inserts a change-set's events.
fn insert_events(
    conn: &Connection,
    interaction_id: uuid::Uuid,
    events: &[tracker_core::session::StoredEvent],
) -> Result<(), Error> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO events (interaction_id, seq, id, kind, definition_id, definition_name, points,
             timestamp, page_view_id, page_id, url, language, item_version, referrer,
             monetary_value, currency_code, data, data_key, text, value, custom)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
             ?19, ?20, ?21)",
    )?;
    for stored in events {
        let event = &stored.event;
        let page = event.page.as_ref();
        let custom = if event.custom.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&event.custom).map_err(|e| Error::Corrupt(e.to_string()))?)
        };
        insert.execute(params![
            interaction_id,
            stored.seq,
            stored.id.0,
            event.kind.as_str(),
            event.definition.as_ref().map(|d| d.id.0),
            event.definition.as_ref().map(|d| d.name.as_str()),
            event.points(),
            ms(stored.timestamp),
            stored.page_view_id.map(|id| id.0),
            page.map(|p| p.page_id.0),
            page.map(|p| p.url.as_str()),
            page.and_then(|p| p.language.as_deref()),
            page.and_then(|p| p.item_version),
            page.and_then(|p| p.referrer.as_deref()),
            event.monetary_value.map(|d| d.to_string()),
            event.currency_code,
            event.data,
            event.data_key,
            event.text,
            event.value,
            custom,
        ])?;
    }
    Ok(())
}

/// Creates the contact of a new device, unless another change-set already did: then that
/// contact is the device's, and this one is not created. Says whether the device was new.
/// The device's `SC_ANALYTICS_GLOBAL_COOKIE` identifier is not stored apart: readers list it
/// from `devices`.
fn ensure_contact(
    conn: &Connection,
    device: DeviceId,
    contact: ContactId,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(ContactId, bool), Error> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO devices (id, contact_id, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![device.0, contact.0, ms(at)])?;
    if inserted == 1 {
        conn.prepare_cached(
            "INSERT INTO contacts (id, created_at, last_activity) VALUES (?1, ?2, ?2)",
        )?
        .execute(params![contact.0, ms(at)])?;
        return Ok((contact, true));
    }
    let existing: Option<uuid::Uuid> = conn
        .prepare_cached("SELECT contact_id FROM devices WHERE id = ?1")?
        .query_row([device.0], |row| row.get(0))
        .optional()?;
    existing
        .map(|id| (ContactId(id), false))
        .ok_or_else(|| Error::Corrupt(format!("device {device} has no contact")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::Utc;
    use tracker_core::{
        event::{EventKind, TrackedEvent},
        ids::{ContactId, DeviceId, SessionId},
        session::{CloseReason, Interaction, Opening},
    };

    use super::*;

    fn change(close: bool) -> ChangeSet {
        let now = Utc::now();
        let mut interaction = Interaction::open(
            Opening {
                contact_id: ContactId::new_random(),
                device_id: DeviceId::new_random(),
                session_id: SessionId::new_random(),
                site_name: None,
                user_agent: None,
            },
            now,
        );
        let events = interaction.record(vec![TrackedEvent::new(EventKind::PageView)], now);
        ChangeSet {
            new_contact: true,
            close: close.then(|| interaction.close(CloseReason::Flush, now)),
            refresh_interaction: true,
            attribution: None,
            interaction,
            events,
        }
    }

    fn job(change: ChangeSet) -> (Job, oneshot::Receiver<Result<CommitReceipt, Error>>) {
        let (reply, answer) = oneshot::channel();
        (Job::Commit { change, reply }, answer)
    }

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn one_bad_change_set_does_not_take_its_group_down() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("t.db")).unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        // A closed interaction: a later change-set for it is refused.
        let closed = change(true);
        let (first, _) = job(closed.clone());
        commit_group(&mut conn, &mut vec![first]);
        let mut late = closed;
        late.close = None;
        late.new_contact = false;
        late.events = late
            .interaction
            .record(vec![TrackedEvent::new(EventKind::PageView)], Utc::now());

        let (a, a_answer) = job(change(false));
        let (b, b_answer) = job(late);
        let (c, c_answer) = job(change(false));
        let (barrier, barrier_answer) = oneshot::channel();
        commit_group(&mut conn, &mut vec![a, b, Job::Barrier(barrier), c]);
        assert!(a_answer.blocking_recv().unwrap().is_ok());
        assert!(b_answer.blocking_recv().unwrap().is_err());
        assert!(c_answer.blocking_recv().unwrap().is_ok());
        assert!(barrier_answer.blocking_recv().is_ok());
        assert_eq!(count(&conn, "interactions"), 3);
        assert_eq!(
            count(&conn, "events"),
            3,
            "the refused change-set left nothing behind"
        );
    }
}

#[cfg(test)]
mod panic_tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;

    use crate::{SqliteConfig, SqliteStore};

    /// Interactions whose change-sets panic inside the writer (the test hook).
    static PANIC_ON: Mutex<Vec<uuid::Uuid>> = Mutex::new(Vec::new());

    pub(super) fn fail_here(interaction: uuid::Uuid) {
        if PANIC_ON.lock().unwrap().contains(&interaction) {
            panic!("test hook: change-set of {interaction} fails");
        }
    }

    /// A panic there used to kill the writer thread for good.
    #[tokio::test]
    async fn a_change_set_that_panics_is_refused_alone_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(SqliteConfig::new(dir.path().join("t.db"))).unwrap();
        tracker_core::conformance::a_change_set_that_fails_in_the_writer_is_refused_alone(
            &store,
            |id| PANIC_ON.lock().unwrap().push(id),
        )
        .await;
    }
}
