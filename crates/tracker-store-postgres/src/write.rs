//! One change-set, one transaction: the same rows as the SQLite writer writes, and the same
//! roll-up arithmetic ([`tracker_core::rollup::Tally`]).

use std::{sync::Arc, time::Duration};

use deadpool_postgres::{Object, Pool, Transaction};
use tokio::sync::{mpsc, oneshot, Mutex};
use tracker_core::{
    ids::{ContactId, DeviceId},
    rollup::{Facet, Fact, Tally},
    session::StoredEvent,
    store::{ChangeSet, CommitReceipt, Erased},
};
use uuid::Uuid;

use crate::{read, Error};

/// A time as stored: epoch milliseconds.
pub(crate) fn ms(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp_millis()
}

/// One change-set waiting for a writer, and who waits for its outcome.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) change: ChangeSet,
    pub(crate) reply: oneshot::Sender<Result<CommitReceipt, Error>>,
}

/// A writer: takes what is queued (up to `max_group` change-sets) and commits it in one
/// transaction, so that a transaction's fixed costs (BEGIN, COMMIT, its WAL flush) are shared
/// by every request in it. Several writers share the queue, each on its own connection.
pub(crate) async fn writer(
    pool: Pool,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    max_group: usize,
    timeout: Duration,
    running: Arc<std::sync::atomic::AtomicUsize>,
    shard: Shard,
) {
    // Counts this writer out however it ends (`Store::alive` compares the count; the store
    // counted it in when it spawned it).
    let _running = Running(running);
    loop {
        let mut group = Vec::with_capacity(max_group);
        {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            group.push(first);
            while group.len() < max_group {
                match queue.try_recv() {
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
        }
        let outcomes =
            match tokio::time::timeout(timeout, commit_group(&pool, &mut group, shard)).await {
                Ok(outcomes) => outcomes,
                Err(_) => group.iter().map(|_| Err(Error::Timeout(timeout))).collect(),
            };
        debug_assert_eq!(outcomes.len(), group.len());
        for (job, outcome) in group.into_iter().zip(outcomes) {
            if let Err(error) = &outcome {
                if !matches!(error, Error::Stale(_)) {
                    tracing::error!(%error, "change-set not committed");
                }
            }
            let _ = job.reply.send(outcome);
        }
    }
}

/// Commits a group in one transaction; when any change-set of it fails, the transaction is
/// rolled back and each change-set is committed alone, so that one bad change-set never takes
/// the others down and never leaves half of itself behind. Change-sets are applied in contact
/// order (stable, so one contact's keep their order): two writers' transactions then lock
/// contacts' rows in the same order.
async fn commit_group(
    pool: &Pool,
    group: &mut [Job],
    shard: Shard,
) -> Vec<Result<CommitReceipt, Error>> {
    group.sort_by_key(|job| job.change.interaction.contact_id);
    let mut client = match pool.get().await {
        Ok(client) => client,
        Err(error) => {
            return group
                .iter()
                .map(|_| Err(Error::NoConnection(error.to_string())))
                .collect();
        }
    };
    let started = std::time::Instant::now();
    let events: usize = group.iter().map(|job| job.change.events.len()).sum();
    // A panic while applying is caught like an error: the transaction is dropped (rolled back)
    // as it unwinds, and the writer goes on.
    let outcomes = match guarded(commit_all(&mut client, group, shard)).await {
        Ok(receipts) => receipts.into_iter().map(Ok).collect(),
        Err(error) if is_connection_error(&error) => group
            .iter()
            .map(|_| Err(Error::NoConnection(error.to_string())))
            .collect(),
        Err(_) => {
            let mut outcomes = Vec::with_capacity(group.len());
            for job in group.iter() {
                outcomes.push(commit_alone(&mut client, &job.change, shard).await);
            }
            outcomes
        }
    };
    // The same figures as the SQLite writer's, recorded before anyone is answered.
    metrics::histogram!(tracker_core::store::WRITER_COMMIT_SECONDS)
        .record(started.elapsed().as_secs_f64());
    metrics::histogram!(tracker_core::store::WRITER_CHANGE_SETS_PER_COMMIT)
        .record(group.len() as f64);
    metrics::histogram!(tracker_core::store::WRITER_EVENTS_PER_COMMIT).record(events as f64);
    outcomes
}

/// Counts a writer out when it ends.
struct Running(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        if std::thread::panicking() {
            tracing::error!("a postgres writer died");
        }
    }
}

/// Runs `work`, turning a panic into an error: nothing one change-set holds may stop a writer.
async fn guarded<T>(work: impl std::future::Future<Output = Result<T, Error>>) -> Result<T, Error> {
    use futures::FutureExt;
    std::panic::AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            Err(Error::Panicked(tracker_core::store::panic_message(
                panic.as_ref(),
            )))
        })
}

/// Whether the error is the connection's or the server's availability, not the change-set's.
fn is_connection_error(error: &Error) -> bool {
    match error {
        Error::Postgres(e) => e.is_closed() || e.as_db_error().is_none(),
        Error::Pool(_) | Error::NoConnection(_) | Error::Timeout(_) | Error::WritersGone => true,
        _ => false,
    }
}

/// Commits one change-set in a transaction of its own. When it fails for what it holds (a
/// database error on it, or a panic) it is refused alone, counted and logged with its visit's
/// id; a close that fails so still ends its visit (without its roll-up contribution), so that
/// no stored visit can make the sweeper fail on it forever.
async fn commit_alone(
    client: &mut Object,
    change: &ChangeSet,
    shard: Shard,
) -> Result<CommitReceipt, Error> {
    let error = match guarded(commit(client, change, shard)).await {
        Ok(receipt) => return Ok(receipt),
        Err(error) if matches!(error, Error::Stale(_)) || is_connection_error(&error) => {
            return Err(error)
        }
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
        let closed = guarded(async {
            client
                .execute(
                    "UPDATE interactions SET open = false, ended_at = $3, close_reason = $4
                     WHERE contact_id = $1 AND id = $2 AND open",
                    &[
                        &change.interaction.contact_id.0,
                        &interaction.0,
                        &ms(close.ended_at),
                        &close.reason.as_str(),
                    ],
                )
                .await
                .map_err(Error::from)
        })
        .await;
        match closed {
            Ok(_) => {
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
        other => Error::Refused(other.to_string()),
    })
}

/// Commits a group in one transaction: its new visits' first batches together, its visits'
/// plain later batches together, its plain closes together ([`crate::grouped`]), then every
/// other change-set (and those a grouped write left: a merged contact's, a closed visit's) one
/// at a time, in order.
async fn commit_all(
    client: &mut Object,
    group: &[Job],
    shard: Shard,
) -> Result<Vec<CommitReceipt>, Error> {
    use crate::grouped;
    let tx = client.transaction().await?;
    let mut tally = Tally::default();
    let mut receipts: Vec<Option<CommitReceipt>> = vec![None; group.len()];
    let (at, changes) = of_kind(group, grouped::is_plain_new_visit);
    if changes.len() > 1 {
        for (&i, receipt) in at.iter().zip(grouped::write(&tx, &changes).await?) {
            receipts[i] = Some(receipt);
        }
    }
    let (at, changes) = of_kind(group, grouped::is_plain_append);
    if changes.len() > 1 {
        let stored = grouped::append(&tx, &changes).await?;
        settle(&mut receipts, &at, &changes, &stored);
    }
    let (at, changes) = of_kind(group, grouped::is_plain_close);
    if changes.len() > 1 {
        let closed = grouped::close(&tx, &changes, &mut tally).await?;
        settle(&mut receipts, &at, &changes, &closed);
    }
    for (job, receipt) in group.iter().zip(&mut receipts) {
        if receipt.is_none() {
            *receipt = Some(apply_checked(&tx, &job.change, &mut tally).await?);
        }
    }
    write_tally(&tx, &mut tally, shard).await?;
    tx.commit().await?;
    receipts
        .into_iter()
        .map(|receipt| receipt.ok_or_else(|| Error::Corrupt("change-set not applied".into())))
        .collect()
}

/// The group's change-sets of one kind, and where each is in the group.
fn of_kind(group: &[Job], is: fn(&ChangeSet) -> bool) -> (Vec<usize>, Vec<&ChangeSet>) {
    group
        .iter()
        .enumerate()
        .filter(|(_, job)| is(&job.change))
        .map(|(i, job)| (i, &job.change))
        .unzip()
}

/// The receipts of the change-sets a grouped write took (`done`): each names its own contact.
fn settle(
    receipts: &mut [Option<CommitReceipt>],
    at: &[usize],
    changes: &[&ChangeSet],
    done: &[bool],
) {
    for ((&i, change), &done) in at.iter().zip(changes).zip(done) {
        if done {
            receipts[i] = Some(CommitReceipt {
                contact_id: change.interaction.contact_id,
            });
        }
    }
}

/// Commits one change-set in a transaction of its own.
async fn commit(
    client: &mut Object,
    change: &ChangeSet,
    shard: Shard,
) -> Result<CommitReceipt, Error> {
    let tx = client.transaction().await?;
    let mut tally = Tally::default();
    let receipt = apply_checked(&tx, change, &mut tally).await?;
    write_tally(&tx, &mut tally, shard).await?;
    tx.commit().await?;
    Ok(receipt)
}

/// [`apply`], with a taken event key said as what it means.
async fn apply_checked(
    tx: &Transaction<'_>,
    change: &ChangeSet,
    tally: &mut Tally,
) -> Result<CommitReceipt, Error> {
    match apply(tx, change, tally).await {
        Err(Error::Postgres(error)) if is_events_key_violation(&error) => {
            // The session state is behind the store (a node committed a batch and then could
            // not save the session, e.g. Redis went away): its next event numbers are taken.
            // Stale: the session is dropped and resumed from the store on the next request.
            Err(Error::Stale(format!(
                "interaction {} already has these events: {error}",
                change.interaction.id
            )))
        }
        other => other,
    }
}

/// Whether `error` says that an event's key (contact, interaction, seq) is taken.
fn is_events_key_violation(error: &tokio_postgres::Error) -> bool {
    error.as_db_error().is_some_and(|db| {
        *db.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION
            && db.constraint() == Some("events_pkey")
    })
}

/// Writes one change-set inside the caller's transaction, in the steps every store takes
/// (`tracker_core::store` documents them): the contact (new, or the row's after a merge) and
/// its identifications; then either the events alone, or the interaction row with its
/// events, and a close's roll-up contribution into `tally`.
async fn apply(
    tx: &Transaction<'_>,
    change: &ChangeSet,
    tally: &mut Tally,
) -> Result<CommitReceipt, Error> {
    #[cfg(test)]
    panic_tests::fail_here(change.interaction.id.0);
    let (contact, new_device) = contact_of(tx, change).await?;
    if !change.writes_interaction() {
        return append_events(tx, change, contact).await;
    }
    let contact = write_interaction(tx, change, contact).await?;
    touch_device_and_contact(tx, change, contact, new_device).await?;
    insert_events(tx, contact, change.interaction.id.0, &change.events, false).await?;
    if let Some(close) = change.close {
        add_closed_visit(tx, change, close, contact, tally).await?;
    }
    Ok(CommitReceipt {
        contact_id: ContactId(contact),
    })
}

/// The change-set's contact: inserted with its device for a new one; then, when it brings
/// identifications, the one they leave (the contact may merge into the one that already had
/// an identifier, and everything after writes to the survivor). Also whether the device is
/// new.
async fn contact_of(tx: &Transaction<'_>, change: &ChangeSet) -> Result<(Uuid, bool), Error> {
    let interaction = &change.interaction;
    let (contact_id, new_device) = if change.new_contact {
        ensure_contact(
            tx,
            interaction.device_id,
            interaction.contact_id,
            ms(interaction.started_at),
        )
        .await?
    } else {
        (interaction.contact_id, false)
    };
    let mut contact = contact_id.0;
    let identifications: Vec<(&str, &str)> = change.identifications().collect();
    if !identifications.is_empty() {
        if !change.new_contact {
            if let Some(owner) = open_owner(tx, interaction.contact_id.0, interaction.id.0).await? {
                contact = owner;
            }
        }
        for (source, identifier) in identifications {
            contact = identify(tx, contact, source, identifier).await?;
        }
    }
    Ok((contact, new_device))
}

/// Events only: stored only if the interaction is still open, in one statement. `FOR SHARE`
/// waits for a close another node is committing and then sees it closed. The receipt names
/// the row's contact (the session's may have been merged into another meanwhile).
async fn append_events(
    tx: &Transaction<'_>,
    change: &ChangeSet,
    mut contact: Uuid,
) -> Result<CommitReceipt, Error> {
    let id = change.interaction.id.0;
    let mut inserted = insert_events(tx, contact, id, &change.events, true).await?;
    if inserted == 0 && !change.events.is_empty() {
        if let Some(owner) = open_owner(tx, contact, id).await? {
            if owner != contact {
                contact = owner;
                inserted = insert_events(tx, contact, id, &change.events, true).await?;
            }
        }
    }
    if inserted == 0 && !change.events.is_empty() {
        return Err(Error::Stale(format!(
            "interaction {} is closed or unknown",
            change.interaction.id
        )));
    }
    Ok(CommitReceipt {
        contact_id: ContactId(contact),
    })
}

/// Inserts a new interaction or updates a live one (closing it too when the change-set
/// says so). Returns the row's contact (the session's may have been merged into another
/// meanwhile); a closed row is [`Error::Stale`].
async fn write_interaction(
    tx: &Transaction<'_>,
    change: &ChangeSet,
    mut contact: Uuid,
) -> Result<Uuid, Error> {
    let id = change.interaction.id.0;
    let written = if change.opens_interaction() {
        insert_interaction(tx, change, contact).await?
    } else {
        let mut written = update_interaction(tx, change, contact).await?;
        if written == 0 {
            if let Some(owner) = open_owner(tx, contact, id).await? {
                if owner != contact {
                    contact = owner;
                    written = update_interaction(tx, change, contact).await?;
                }
            }
        }
        written
    };
    if written != 1 {
        return Err(Error::Stale(format!("interaction {id} is already closed")));
    }
    Ok(contact)
}

/// The device's and the contact's last activity (rows inserted by this change-set already
/// carry the time). A new interaction of a known device: the device was seen now.
async fn touch_device_and_contact(
    tx: &Transaction<'_>,
    change: &ChangeSet,
    contact: Uuid,
    new_device: bool,
) -> Result<(), Error> {
    let interaction = &change.interaction;
    if new_device {
        return Ok(());
    }
    if change.holds_whole_visit() {
        tx.execute(
            &tx.prepare_cached(
                "UPDATE devices SET last_seen = greatest(last_seen, $2) WHERE id = $1",
            )
            .await?,
            &[&interaction.device_id.0, &ms(interaction.started_at)],
        )
        .await?;
    }
    if change.close.is_none() {
        tx.execute(
            &tx.prepare_cached(
                "UPDATE contacts SET last_activity = greatest(last_activity, $2) WHERE id = $1",
            )
            .await?,
            &[&contact, &ms(interaction.last_activity)],
        )
        .await?;
    }
    Ok(())
}

/// A closed visit's part of the roll-ups (into `tally`) and of its contact's totals.
async fn add_closed_visit(
    tx: &Transaction<'_>,
    change: &ChangeSet,
    close: tracker_core::session::Close,
    contact: Uuid,
    tally: &mut Tally,
) -> Result<(), Error> {
    let interaction = &change.interaction;
    let (started, site) = (ms(interaction.started_at), interaction.site_name.as_deref());
    let facts: Vec<Fact> = if change.holds_whole_visit() {
        // The whole visit is in this change-set: no need to read it back.
        change.events.iter().map(Fact::of).collect()
    } else {
        read::facts(tx, contact, interaction.id.0).await?
    };
    tally.add_visit(contact, started, site, &facts);
    tx.execute(
        &tx.prepare_cached(
            "UPDATE contacts SET engagement_value = engagement_value + $2,
                 last_activity = greatest(last_activity, $3) WHERE id = $1",
        )
        .await?,
        &[&contact, &interaction.engagement_value, &ms(close.ended_at)],
    )
    .await?;
    Ok(())
}

/// The contact an open interaction of `contact`'s belongs to now: `contact`, or the contact
/// it was merged into (a merge moves its interactions, and `contact_merges` forwards every
/// merged contact to its survivor), looked up by primary keys only.
async fn open_owner(
    tx: &Transaction<'_>,
    contact: Uuid,
    interaction: Uuid,
) -> Result<Option<Uuid>, Error> {
    Ok(tx
        .query_opt(
            &tx.prepare_cached(
                "SELECT i.contact_id FROM interactions i
                 WHERE i.contact_id = coalesce(
                         (SELECT survivor_id FROM contact_merges WHERE merged_id = $1), $1)
                   AND i.id = $2 AND i.open",
            )
            .await?,
            &[&contact, &interaction],
        )
        .await?
        .map(|row| row.get(0)))
}

/// A new interaction's row (`$16::bigint IS NULL`: open unless the change-set closes it).
const INSERT_INTERACTION: &str =
    "INSERT INTO interactions (id, contact_id, device_id, session_id, open, started_at,
         last_activity, site_name, campaign_id, campaign_name, campaign_points,
         user_agent, engagement_value, page_view_count, event_count,
         current_page_view, ended_at, close_reason, browser, browser_version, os,
         device_type, ip, landing_url, referrer, channel, source, utm_source,
         utm_medium, utm_campaign, utm_term, utm_content, language)
     VALUES ($1, $2, $3, $4, $16::bigint IS NULL, $5, $6, $7, $8, $9, $10, $11, $12,
         $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27,
         $28, $29, $30, $31, $32)
     ON CONFLICT (contact_id, id) DO NOTHING";

/// Inserts a new interaction; 0 when it exists already.
async fn insert_interaction(
    tx: &Transaction<'_>,
    change: &ChangeSet,
    contact: Uuid,
) -> Result<u64, Error> {
    let interaction = &change.interaction;
    let (campaign_id, campaign_name, campaign_points) = change.campaign();
    let attribution = change.attribution.as_ref();
    let ended_at = change.close.map(|close| ms(close.ended_at));
    let close_reason = change.close.map(|close| close.reason.as_str());
    let ip = attribution.and_then(|a| a.ip).map(|ip| ip.to_string());
    let came_from = attribution
        .and_then(|a| a.acquisition.as_ref())
        .map(tracker_core::acquisition::Acquisition::columns)
        .unwrap_or_default();
    Ok(tx
        .execute(
            &tx.prepare_cached(INSERT_INTERACTION).await?,
            &[
                &interaction.id.0,
                &contact,
                &interaction.device_id.0,
                &interaction.session_id.0,
                &ms(interaction.started_at),
                &ms(interaction.last_activity),
                &interaction.site_name,
                &campaign_id,
                &campaign_name,
                &campaign_points,
                &interaction.user_agent,
                &interaction.engagement_value,
                &interaction.page_view_count,
                &interaction.event_count,
                &interaction.current_page_view.map(|id| id.0),
                &ended_at,
                &close_reason,
                &attribution.and_then(|a| a.client.browser.as_deref()),
                &attribution.and_then(|a| a.client.browser_version.as_deref()),
                &attribution.and_then(|a| a.client.os.as_deref()),
                &attribution.and_then(|a| a.client.device_type.as_deref()),
                &ip,
                &attribution.and_then(|a| a.landing_url.as_deref()),
                &attribution.and_then(|a| a.referrer.as_deref()),
                &came_from[0],
                &came_from[1],
                &came_from[2],
                &came_from[3],
                &came_from[4],
                &came_from[5],
                &came_from[6],
                &attribution.and_then(|a| a.language.as_deref()),
            ],
        )
        .await?)
}

/// Writes a live interaction's running totals (and its end, when it closes); 0 when it is not
/// open under `contact`.
async fn update_interaction(
    tx: &Transaction<'_>,
    change: &ChangeSet,
    contact: Uuid,
) -> Result<u64, Error> {
    let interaction = &change.interaction;
    let (campaign_id, campaign_name, campaign_points) = change.campaign();
    let ended_at = change.close.map(|close| ms(close.ended_at));
    let close_reason = change.close.map(|close| close.reason.as_str());
    Ok(tx
        .execute(
            &tx.prepare_cached(
                "UPDATE interactions SET last_activity = $3, campaign_id = $4,
                     campaign_name = $5, campaign_points = $6, engagement_value = $7,
                     page_view_count = $8, event_count = $9, current_page_view = $10,
                     open = $11::bigint IS NULL, ended_at = $11, close_reason = $12
                 WHERE contact_id = $1 AND id = $2 AND open",
            )
            .await?,
            &[
                &contact,
                &interaction.id.0,
                &ms(interaction.last_activity),
                &campaign_id,
                &campaign_name,
                &campaign_points,
                &interaction.engagement_value,
                &interaction.page_view_count,
                &interaction.event_count,
                &interaction.current_page_view.map(|id| id.0),
                &ended_at,
                &close_reason,
            ],
        )
        .await?)
}

/// Gives `contact` the identifier, or, when another contact has it already, merges `contact`
/// into that one (the known contact survives). Returns the contact that has it now. Two
/// contacts identifying at once: the identifier's key makes the second wait for the first
/// and then merge.
async fn identify(
    tx: &Transaction<'_>,
    contact: Uuid,
    source: &str,
    identifier: &str,
) -> Result<Uuid, Error> {
    let inserted = tx
        .execute(
            &tx.prepare_cached(
                "INSERT INTO identifiers (source, identifier, contact_id) VALUES ($1, $2, $3)
                 ON CONFLICT (source, identifier) DO NOTHING",
            )
            .await?,
            &[&source, &identifier, &contact],
        )
        .await?;
    if inserted == 1 {
        return Ok(contact);
    }
    let holder: Uuid = tx
        .query_one(
            &tx.prepare_cached(
                "SELECT contact_id FROM identifiers WHERE source = $1 AND identifier = $2",
            )
            .await?,
            &[&source, &identifier],
        )
        .await?
        .get(0);
    if holder != contact {
        merge(tx, contact, holder).await?;
    }
    Ok(holder)
}

/// Moves everything of `merged` to `survivor` (visits, their events, devices, identifiers,
/// search facets, totals) and removes `merged`, leaving a forwarding row. Nothing is copied,
/// so nothing is counted twice.
pub(crate) async fn merge(tx: &Transaction<'_>, merged: Uuid, survivor: Uuid) -> Result<(), Error> {
    for sql in [
        "UPDATE interactions SET contact_id = $2 WHERE contact_id = $1",
        "UPDATE events SET contact_id = $2 WHERE contact_id = $1",
        "UPDATE devices SET contact_id = $2 WHERE contact_id = $1",
        "UPDATE identifiers SET contact_id = $2 WHERE contact_id = $1",
        "INSERT INTO contact_facets (contact_id, facet, value)
             SELECT $2, facet, value FROM contact_facets WHERE contact_id = $1
             ON CONFLICT DO NOTHING",
        "DELETE FROM contact_facets WHERE contact_id = $1 AND $2::uuid IS NOT NULL",
        "UPDATE contacts s SET engagement_value = s.engagement_value + m.engagement_value,
             created_at = least(s.created_at, m.created_at),
             last_activity = greatest(s.last_activity, m.last_activity)
         FROM contacts m WHERE s.id = $2 AND m.id = $1",
        "DELETE FROM contacts WHERE id = $1 AND $2::uuid IS NOT NULL",
        "UPDATE contact_merges SET survivor_id = $2 WHERE survivor_id = $1",
    ] {
        tx.execute(&tx.prepare_cached(sql).await?, &[&merged, &survivor])
            .await?;
    }
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO contact_merges (merged_id, survivor_id, merged_at) VALUES ($1, $2, $3)
             ON CONFLICT (merged_id) DO UPDATE SET survivor_id = excluded.survivor_id",
        )
        .await?,
        &[&merged, &survivor, &chrono::Utc::now().timestamp_millis()],
    )
    .await?;
    tracing::info!(merged = %merged, survivor = %survivor, "contacts merged");
    Ok(())
}

/// Inserts a change-set's events in one statement (arrays unnested into rows); with
/// `only_if_open`, only if the interaction is open. Returns how many were inserted.
async fn insert_events(
    tx: &Transaction<'_>,
    contact: Uuid,
    interaction: Uuid,
    events: &[StoredEvent],
    only_if_open: bool,
) -> Result<u64, Error> {
    if events.is_empty() {
        return Ok(0);
    }
    const INSERT: &str = "INSERT INTO events (contact_id, interaction_id, seq, id, kind,
             definition_id, definition_name, points, timestamp, page_view_id, page_id, url,
             language, item_version, referrer, monetary_value, currency_code, data, data_key,
             text, value, custom)
         SELECT $1, $2, e.* FROM unnest($3::bigint[], $4::uuid[], $5::text[], $6::uuid[],
             $7::text[], $8::bigint[], $9::bigint[], $10::uuid[], $11::uuid[], $12::text[],
             $13::text[], $14::bigint[], $15::text[], $16::text[], $17::text[], $18::text[],
             $19::text[], $20::text[], $21::float8[], $22::text[]) AS e";
    let sql = if only_if_open {
        format!(
            "WITH live AS (SELECT 1 FROM interactions
                           WHERE contact_id = $1 AND id = $2 AND open FOR SHARE)
             {INSERT} WHERE EXISTS (SELECT 1 FROM live)"
        )
    } else {
        INSERT.to_string()
    };
    let columns = EventColumns::of(events)?;
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&contact, &interaction];
    params.extend(columns.params());
    Ok(tx.execute(&tx.prepare_cached(&sql).await?, &params).await?)
}

/// A change-set's events as one array per column: one `INSERT … SELECT FROM unnest(…)`
/// writes them all in one round trip.
#[derive(Default)]
pub(crate) struct EventColumns<'a> {
    seq: Vec<i64>,
    id: Vec<Uuid>,
    kind: Vec<&'a str>,
    definition_id: Vec<Option<Uuid>>,
    definition_name: Vec<Option<&'a str>>,
    points: Vec<i64>,
    timestamp: Vec<i64>,
    page_view_id: Vec<Option<Uuid>>,
    page_id: Vec<Option<Uuid>>,
    url: Vec<Option<&'a str>>,
    language: Vec<Option<&'a str>>,
    item_version: Vec<Option<i64>>,
    referrer: Vec<Option<&'a str>>,
    money: Vec<Option<String>>,
    currency: Vec<Option<&'a str>>,
    data: Vec<Option<&'a str>>,
    data_key: Vec<Option<&'a str>>,
    text: Vec<Option<&'a str>>,
    value: Vec<Option<f64>>,
    custom: Vec<Option<String>>,
}

impl<'a> EventColumns<'a> {
    fn of(events: &'a [StoredEvent]) -> Result<Self, Error> {
        let mut c = Self::default();
        for stored in events {
            c.push(stored)?;
        }
        Ok(c)
    }

    /// Adds one event's values.
    pub(crate) fn push(&mut self, stored: &'a StoredEvent) -> Result<(), Error> {
        let c = self;
        let event = &stored.event;
        let page = event.page.as_ref();
        c.seq.push(stored.seq);
        c.id.push(stored.id.0);
        c.kind.push(event.kind.as_str());
        c.definition_id
            .push(event.definition.as_ref().map(|d| d.id.0));
        c.definition_name
            .push(event.definition.as_ref().map(|d| d.name.as_str()));
        c.points.push(event.points());
        c.timestamp.push(ms(stored.timestamp));
        c.page_view_id.push(stored.page_view_id.map(|id| id.0));
        c.page_id.push(page.map(|p| p.page_id.0));
        c.url.push(page.map(|p| p.url.as_str()));
        c.language.push(page.and_then(|p| p.language.as_deref()));
        c.item_version.push(page.and_then(|p| p.item_version));
        c.referrer.push(page.and_then(|p| p.referrer.as_deref()));
        c.money.push(event.monetary_value.map(|d| d.to_string()));
        c.currency.push(event.currency_code.as_deref());
        c.data.push(event.data.as_deref());
        c.data_key.push(event.data_key.as_deref());
        c.text.push(event.text.as_deref());
        c.value.push(event.value);
        c.custom.push(if event.custom.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&event.custom).map_err(|e| Error::Corrupt(e.to_string()))?)
        });
        Ok(())
    }

    /// `$3` to `$22`, in the statement's order.
    pub(crate) fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 20] {
        [
            &self.seq,
            &self.id,
            &self.kind,
            &self.definition_id,
            &self.definition_name,
            &self.points,
            &self.timestamp,
            &self.page_view_id,
            &self.page_id,
            &self.url,
            &self.language,
            &self.item_version,
            &self.referrer,
            &self.money,
            &self.currency,
            &self.data,
            &self.data_key,
            &self.text,
            &self.value,
            &self.custom,
        ]
    }
}

/// Creates the contact of a new device, unless another change-set (on any node) already did:
/// then that contact is the device's. The devices' primary key settles the race: a second
/// insert waits for the first transaction and then does nothing. Says whether the device was
/// new.
async fn ensure_contact(
    tx: &Transaction<'_>,
    device: DeviceId,
    contact: ContactId,
    at: i64,
) -> Result<(ContactId, bool), Error> {
    let inserted = tx
        .execute(
            &tx.prepare_cached(
                "INSERT INTO devices (id, contact_id, first_seen, last_seen)
                 VALUES ($1, $2, $3, $3) ON CONFLICT (id) DO NOTHING",
            )
            .await?,
            &[&device.0, &contact.0, &at],
        )
        .await?;
    if inserted == 1 {
        tx.execute(
            &tx.prepare_cached(
                "INSERT INTO contacts (id, created_at, last_activity) VALUES ($1, $2, $2)",
            )
            .await?,
            &[&contact.0, &at],
        )
        .await?;
        return Ok((contact, true));
    }
    let existing: Option<Uuid> = tx
        .query_opt(
            &tx.prepare_cached("SELECT contact_id FROM devices WHERE id = $1")
                .await?,
            &[&device.0],
        )
        .await?
        .map(|row| row.get(0));
    existing
        .map(|id| (ContactId(id), false))
        .ok_or_else(|| Error::Corrupt(format!("device {device} has no contact")))
}

/// A facet's `value` column: a definition's id or a site's name, as text.
pub(crate) fn facet_value(facet: &Facet) -> String {
    match facet {
        Facet::Goal(id) | Facet::Campaign(id) => id.hyphenated().to_string(),
        Facet::Site(site) => site.clone(),
    }
}

/// Which of a roll-up key's rows a transaction adds to. Each day's figures of a site are
/// hot rows: every closing visit adds to them. With one row per key, the writers' transactions
/// queued on its lock, each held until the one before had committed (its WAL flush): one writer
/// at a time, whatever `storage.writers` says. Each writer adds to rows of its own shard and
/// readers sum a key's shards; a node's writers take consecutive shards from a random start, so
/// two nodes rarely share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard(pub(crate) i16);

impl Shard {
    /// How many rows a roll-up key may have.
    pub(crate) const COUNT: i16 = 64;

    /// A node's first shard, at random.
    pub(crate) fn random() -> Self {
        Self(i16::from(Uuid::new_v4().as_bytes()[0]) % Self::COUNT)
    }

    /// The shard `n` places after this one.
    pub(crate) fn nth(self, n: usize) -> Self {
        // `n % COUNT` is below 64: the cast cannot truncate.
        Self((self.0 + (n % Self::COUNT as usize) as i16) % Self::COUNT)
    }
}

/// Adds what the tally holds to the roll-up tables (the writer's shard of each key), and
/// empties it: one statement per table. Rows are written in key order, so that transactions
/// that share a shard (two nodes') lock them in the same order (no deadlock).
async fn write_tally(tx: &Transaction<'_>, tally: &mut Tally, shard: Shard) -> Result<(), Error> {
    if tally.is_empty() {
        return Ok(());
    }
    write_visits(tx, tally, shard).await?;
    write_definitions(tx, tally, shard).await?;
    write_outcomes(tx, tally, shard).await?;
    write_pages(tx, tally, shard).await?;
    write_facets(tx, tally).await
}

/// Visits, page views, bounces, value and conversions per day and site.
async fn write_visits(tx: &Transaction<'_>, tally: &mut Tally, shard: Shard) -> Result<(), Error> {
    let mut visits: Vec<_> = tally.visits.drain().collect();
    if visits.is_empty() {
        return Ok(());
    }
    visits.sort_by(|a, b| a.0.cmp(&b.0));
    let mut columns: (Vec<i64>, Vec<String>, [Vec<i64>; 5]) = Default::default();
    for ((day, site), v) in visits {
        columns.0.push(day);
        columns.1.push(site);
        for (column, value) in columns.2.iter_mut().zip([
            v.visits,
            v.page_views,
            v.bounces,
            v.engagement_value,
            v.conversions,
        ]) {
            column.push(value);
        }
    }
    let [visits, page_views, bounces, value, conversions] = &columns.2;
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO rollup_visits (day, site, shard, visits, page_views, bounces,
                 engagement_value, conversions)
             SELECT day, site, $8, visits, page_views, bounces, engagement_value, conversions
             FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[],
                 $6::bigint[], $7::bigint[])
                 AS t(day, site, visits, page_views, bounces, engagement_value, conversions)
             ON CONFLICT (day, site, shard) DO UPDATE SET
                 visits = rollup_visits.visits + excluded.visits,
                 page_views = rollup_visits.page_views + excluded.page_views,
                 bounces = rollup_visits.bounces + excluded.bounces,
                 engagement_value = rollup_visits.engagement_value + excluded.engagement_value,
                 conversions = rollup_visits.conversions + excluded.conversions",
        )
        .await?,
        &[
            &columns.0,
            &columns.1,
            visits,
            page_views,
            bounces,
            value,
            conversions,
            &shard.0,
        ],
    )
    .await?;
    Ok(())
}

/// Visits that reached each goal, event, outcome and campaign per day and site.
async fn write_definitions(
    tx: &Transaction<'_>,
    tally: &mut Tally,
    shard: Shard,
) -> Result<(), Error> {
    let mut definitions: Vec<_> = tally.definitions.drain().collect();
    if definitions.is_empty() {
        return Ok(());
    }
    definitions.sort_by(|a, b| {
        let (x, y) = (&a.0, &b.0);
        (x.0, &x.1, x.2.as_str(), x.3).cmp(&(y.0, &y.1, y.2.as_str(), y.3))
    });
    let mut keys: (Vec<i64>, Vec<String>, Vec<&str>, Vec<Uuid>) = Default::default();
    let mut counts: (Vec<String>, Vec<i64>) = Default::default();
    for ((day, site, kind, id), (name, n)) in definitions {
        keys.0.push(day);
        keys.1.push(site);
        keys.2.push(kind.as_str());
        keys.3.push(id);
        counts.0.push(name);
        counts.1.push(n);
    }
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO rollup_definitions (day, site, kind, definition_id, shard, name, visits)
             SELECT day, site, kind, definition_id, $7, name, visits
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::uuid[], $5::text[],
                 $6::bigint[]) AS t(day, site, kind, definition_id, name, visits)
             ON CONFLICT (day, site, kind, definition_id, shard) DO UPDATE SET
                 name = excluded.name, visits = rollup_definitions.visits + excluded.visits",
        )
        .await?,
        &[
            &keys.0, &keys.1, &keys.2, &keys.3, &counts.0, &counts.1, &shard.0,
        ],
    )
    .await?;
    Ok(())
}

/// Outcomes' counts and money per day, site, definition and currency.
async fn write_outcomes(
    tx: &Transaction<'_>,
    tally: &mut Tally,
    shard: Shard,
) -> Result<(), Error> {
    let mut outcomes: Vec<_> = tally.outcomes.drain().collect();
    if outcomes.is_empty() {
        return Ok(());
    }
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    let mut keys: (Vec<i64>, Vec<String>, Vec<Uuid>, Vec<String>) = Default::default();
    let mut sums: (Vec<String>, Vec<i64>, Vec<Option<String>>) = Default::default();
    for ((day, site, id, currency), sum) in outcomes {
        keys.0.push(day);
        keys.1.push(site);
        keys.2.push(id);
        keys.3.push(currency);
        sums.0.push(sum.name);
        sums.1.push(sum.count);
        sums.2.push(sum.money.map(|m| m.to_string()));
    }
    // Money is summed exactly by PostgreSQL (`numeric`), inside the row's lock.
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO rollup_outcomes (day, site, definition_id, currency, shard, name, count,
                 monetary_value)
             SELECT day, site, definition_id, currency, $8, name, count,
                 CAST(money AS numeric)
             FROM unnest($1::bigint[], $2::text[], $3::uuid[], $4::text[], $5::text[],
                 $6::bigint[], $7::text[])
                 AS t(day, site, definition_id, currency, name, count, money)
             ON CONFLICT (day, site, definition_id, currency, shard) DO UPDATE SET
                 name = excluded.name, count = rollup_outcomes.count + excluded.count,
                 monetary_value = CASE
                     WHEN rollup_outcomes.monetary_value IS NULL THEN excluded.monetary_value
                     WHEN excluded.monetary_value IS NULL THEN rollup_outcomes.monetary_value
                     ELSE rollup_outcomes.monetary_value + excluded.monetary_value END",
        )
        .await?,
        &[
            &keys.0, &keys.1, &keys.2, &keys.3, &sums.0, &sums.1, &sums.2, &shard.0,
        ],
    )
    .await?;
    Ok(())
}

/// Page views per day, site and URL.
async fn write_pages(tx: &Transaction<'_>, tally: &mut Tally, shard: Shard) -> Result<(), Error> {
    let mut pages: Vec<_> = tally.pages.drain().collect();
    if pages.is_empty() {
        return Ok(());
    }
    pages.sort_by(|a, b| a.0.cmp(&b.0));
    let mut columns: (Vec<i64>, Vec<String>, Vec<String>, Vec<i64>) = Default::default();
    for ((day, site, url), n) in pages {
        columns.0.push(day);
        columns.1.push(site);
        columns.2.push(url);
        columns.3.push(n);
    }
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO rollup_pages (day, site, url, shard, page_views)
             SELECT day, site, url, $5, page_views
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[])
                 AS t(day, site, url, page_views)
             ON CONFLICT (day, site, url, shard) DO UPDATE SET
                 page_views = rollup_pages.page_views + excluded.page_views",
        )
        .await?,
        &[&columns.0, &columns.1, &columns.2, &columns.3, &shard.0],
    )
    .await?;
    Ok(())
}

/// What each contact did (goals, campaigns, sites), for the contact list's filters.
async fn write_facets(tx: &Transaction<'_>, tally: &mut Tally) -> Result<(), Error> {
    let mut facets: Vec<(Uuid, &'static str, String)> = tally
        .contact_facets
        .drain()
        .map(|(facet, contact)| (contact, facet.name(), facet_value(&facet)))
        .collect();
    if facets.is_empty() {
        return Ok(());
    }
    facets.sort();
    let mut columns: (Vec<Uuid>, Vec<&str>, Vec<String>) = Default::default();
    for (contact, name, value) in facets {
        columns.0.push(contact);
        columns.1.push(name);
        columns.2.push(value);
    }
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO contact_facets (contact_id, facet, value)
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])
             ON CONFLICT DO NOTHING",
        )
        .await?,
        &[&columns.0, &columns.1, &columns.2],
    )
    .await?;
    Ok(())
}

/// Erases a contact in one transaction: its open visits are counted into the roll-ups first,
/// then its events, interactions, devices, identifiers, facets and row are deleted, and a
/// tombstone is left. (Deleted rows stay in PostgreSQL's files until VACUUM reclaims them:
/// see docs/scale-out.md.)
pub(crate) async fn erase(
    client: &mut Object,
    contact: ContactId,
) -> Result<Option<Erased>, Error> {
    let tx = client.transaction().await?;
    let id = contact.0;
    // Any shard: an erasure is rare, and adds only its open visits.
    let shard = Shard::random();
    // Locks the contact's row: a merge or another erase waits.
    if tx
        .query_opt("SELECT 1 FROM contacts WHERE id = $1 FOR UPDATE", &[&id])
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let open = tx
        .query(
            "SELECT id, started_at, site_name FROM interactions WHERE contact_id = $1 AND open",
            &[&id],
        )
        .await?;
    let mut tally = Tally::default();
    for row in &open {
        let interaction: Uuid = row.try_get(0)?;
        let facts = read::facts(&tx, id, interaction).await?;
        tally.add_visit(
            id,
            row.try_get(1)?,
            row.try_get::<_, Option<String>>(2)?.as_deref(),
            &facts,
        );
    }
    tally.contact_facets.clear();
    write_tally(&tx, &mut tally, shard).await?;
    let events = tx
        .execute("DELETE FROM events WHERE contact_id = $1", &[&id])
        .await?;
    let interactions = tx
        .execute("DELETE FROM interactions WHERE contact_id = $1", &[&id])
        .await?;
    let devices = tx
        .execute("DELETE FROM devices WHERE contact_id = $1", &[&id])
        .await?;
    let identifiers = tx
        .execute("DELETE FROM identifiers WHERE contact_id = $1", &[&id])
        .await?;
    tx.execute("DELETE FROM contact_facets WHERE contact_id = $1", &[&id])
        .await?;
    tx.execute("DELETE FROM contacts WHERE id = $1", &[&id])
        .await?;
    tx.execute(
        "INSERT INTO erased_contacts (id, erased_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        &[&id, &chrono::Utc::now().timestamp_millis()],
    )
    .await?;
    tx.commit().await?;
    Ok(Some(Erased {
        interactions,
        events,
        devices,
        identifiers,
    }))
}

/// Gives a contact an identifier in a transaction of its own (the admin API's); `None`: no
/// such contact.
pub(crate) async fn identify_contact(
    client: &mut Object,
    contact: ContactId,
    source: &str,
    identifier: &str,
) -> Result<Option<ContactId>, Error> {
    let tx = client.transaction().await?;
    if tx
        .query_opt("SELECT 1 FROM contacts WHERE id = $1", &[&contact.0])
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let survivor = identify(&tx, contact.0, source, identifier).await?;
    tx.commit().await?;
    Ok(Some(ContactId(survivor)))
}

#[cfg(test)]
mod panic_tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;

    use crate::{PostgresConfig, PostgresStore};

    /// Interactions whose change-sets panic inside a writer (the test hook).
    static PANIC_ON: Mutex<Vec<uuid::Uuid>> = Mutex::new(Vec::new());

    pub(super) fn fail_here(interaction: uuid::Uuid) {
        if PANIC_ON.lock().unwrap().contains(&interaction) {
            panic!("test hook: change-set of {interaction} fails");
        }
    }

    /// The writers used to die one sweep at a time.
    #[tokio::test]
    async fn a_change_set_that_panics_is_refused_alone_and_the_writers_go_on() {
        let url = std::env::var("JSS_TRACKER_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let schema = format!("panics_{}", uuid::Uuid::now_v7().simple());
        let mut config = PostgresConfig::new(url.clone());
        config.schema.clone_from(&schema);
        config.writers = 1;
        let store = PostgresStore::open(config).await.unwrap();
        tracker_core::conformance::a_change_set_that_fails_in_the_writer_is_refused_alone(
            &store,
            |id| PANIC_ON.lock().unwrap().push(id),
        )
        .await;
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await
            .unwrap();
    }
}
