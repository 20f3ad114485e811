//! The commonest change-sets of a group, written for the whole group at once: new visits'
//! first batches ([`write`]), visits' plain later batches ([`append`]) and plain closes
//! ([`close`]), a handful of
//! statements per transaction instead of several per request. PostgreSQL's cost per statement
//! (bind, executor start-up, snapshot; ~30 µs of its CPU each) was most of the 209 µs it spent
//! per tracking request; the rows are the same, and so are the rules of [`crate::write`]'s
//! steps: a new device gets the change-set's contact, a known one (or one another change-set
//! inserted first) gives its own, and that contact was seen now; events go only to a visit
//! still open under the change-set's contact. Every other change-set is written one at a time.

use std::collections::HashMap;

use deadpool_postgres::Transaction;
use tracker_core::{
    ids::ContactId,
    rollup::{Fact, Tally},
    store::{ChangeSet, CommitReceipt},
};
use uuid::Uuid;

use crate::{
    write::{ms, EventColumns},
    Error,
};

/// Whether a change-set is a new visit's first batch with nothing else to settle (no
/// identification, no close): those are written together by [`write`].
pub(crate) fn is_plain_new_visit(change: &ChangeSet) -> bool {
    change.new_contact
        && change.opens_interaction()
        && change.close.is_none()
        && change.identifications().next().is_none()
}

/// Writes the new visits of a group: their devices, contacts, interactions and events, in
/// one statement per table (and one read of the devices' contacts). Receipts in `changes`'
/// order.
pub(crate) async fn write(
    tx: &Transaction<'_>,
    changes: &[&ChangeSet],
) -> Result<Vec<CommitReceipt>, Error> {
    let owners = devices(tx, changes).await?;
    let mut contacts = Vec::with_capacity(changes.len());
    for change in changes {
        let interaction = &change.interaction;
        let owner = owners
            .get(&interaction.device_id.0)
            .copied()
            .ok_or_else(|| {
                Error::Corrupt(format!("device {} has no contact", interaction.device_id))
            })?;
        contacts.push(owner);
    }
    seen_again(tx, changes, &contacts).await?;
    new_contacts(tx, changes, &contacts).await?;
    interactions(tx, changes, &contacts).await?;
    events(tx, changes, &contacts).await?;
    Ok(contacts
        .into_iter()
        .map(|contact| CommitReceipt {
            contact_id: ContactId(contact),
        })
        .collect())
}

/// Inserts the devices not known yet (each with its change-set's contact; the first of two
/// change-sets of one device wins), in device order so that two writers lock them in the same
/// order, and says which contact each device has now.
async fn devices(
    tx: &Transaction<'_>,
    changes: &[&ChangeSet],
) -> Result<HashMap<Uuid, Uuid>, Error> {
    let mut rows: Vec<(Uuid, Uuid, i64)> = changes
        .iter()
        .map(|c| {
            let i = &c.interaction;
            (i.device_id.0, i.contact_id.0, ms(i.started_at))
        })
        .collect();
    rows.sort_by_key(|row| row.0);
    let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    let contacts: Vec<Uuid> = rows.iter().map(|r| r.1).collect();
    let at: Vec<i64> = rows.iter().map(|r| r.2).collect();
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO devices (id, contact_id, first_seen, last_seen)
             SELECT d, c, t, t FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS n(d, c, t)
             ON CONFLICT (id) DO NOTHING",
        )
        .await?,
        &[&ids, &contacts, &at],
    )
    .await?;
    Ok(tx
        .query(
            &tx.prepare_cached("SELECT id, contact_id FROM devices WHERE id = ANY($1)")
                .await?,
            &[&ids],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}

/// Known devices' new visits: each device and its contact were seen now (one statement per
/// table; a device or contact with two new visits in the group once, at the later time; in
/// key order, as every writer locks them).
async fn seen_again(
    tx: &Transaction<'_>,
    changes: &[&ChangeSet],
    owners: &[Uuid],
) -> Result<(), Error> {
    let mut devices: std::collections::BTreeMap<Uuid, i64> = Default::default();
    let mut contacts: std::collections::BTreeMap<Uuid, i64> = Default::default();
    for (change, owner) in changes.iter().zip(owners) {
        let interaction = &change.interaction;
        if *owner == interaction.contact_id.0 {
            continue; // a device this group created: its rows carry the time already
        }
        let seen = devices.entry(interaction.device_id.0).or_insert(i64::MIN);
        *seen = (*seen).max(ms(interaction.started_at));
        let active = contacts.entry(*owner).or_insert(i64::MIN);
        *active = (*active).max(ms(interaction.last_activity));
    }
    raise(
        tx,
        "UPDATE devices d SET last_seen = greatest(d.last_seen, u.at)
         FROM unnest($1::uuid[], $2::bigint[]) AS u(id, at) WHERE d.id = u.id",
        devices,
    )
    .await?;
    raise(
        tx,
        "UPDATE contacts c SET last_activity = greatest(c.last_activity, u.at)
         FROM unnest($1::uuid[], $2::bigint[]) AS u(id, at) WHERE c.id = u.id",
        contacts,
    )
    .await
}

/// Runs `statement` (rows by id, raised to a time) for `times`, in id order; nothing when empty.
async fn raise(
    tx: &Transaction<'_>,
    statement: &str,
    times: std::collections::BTreeMap<Uuid, i64>,
) -> Result<(), Error> {
    if times.is_empty() {
        return Ok(());
    }
    let (ids, at): (Vec<Uuid>, Vec<i64>) = times.into_iter().unzip();
    tx.execute(&tx.prepare_cached(statement).await?, &[&ids, &at])
        .await?;
    Ok(())
}

/// The contacts of the devices this group created: those whose device now names the
/// change-set's own contact.
async fn new_contacts(
    tx: &Transaction<'_>,
    changes: &[&ChangeSet],
    owners: &[Uuid],
) -> Result<(), Error> {
    let (ids, at): (Vec<Uuid>, Vec<i64>) = changes
        .iter()
        .zip(owners)
        .filter(|(change, owner)| change.interaction.contact_id.0 == **owner)
        .map(|(change, owner)| (*owner, ms(change.interaction.started_at)))
        .unzip();
    if ids.is_empty() {
        return Ok(());
    }
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO contacts (id, created_at, last_activity)
             SELECT c, t, t FROM unnest($1::uuid[], $2::bigint[]) AS n(c, t)",
        )
        .await?,
        &[&ids, &at],
    )
    .await?;
    Ok(())
}

/// The interactions' rows, one column array each.
#[derive(Default)]
struct InteractionColumns<'a> {
    id: Vec<Uuid>,
    device: Vec<Uuid>,
    session: Vec<Uuid>,
    started: Vec<i64>,
    last_activity: Vec<i64>,
    site: Vec<Option<&'a str>>,
    campaign_id: Vec<Option<Uuid>>,
    campaign_name: Vec<Option<&'a str>>,
    campaign_points: Vec<Option<i64>>,
    user_agent: Vec<Option<&'a str>>,
    engagement: Vec<i64>,
    page_views: Vec<i64>,
    events: Vec<i64>,
    current_page_view: Vec<Option<Uuid>>,
    browser: Vec<Option<&'a str>>,
    browser_version: Vec<Option<&'a str>>,
    os: Vec<Option<&'a str>>,
    device_type: Vec<Option<&'a str>>,
    ip: Vec<Option<String>>,
    landing_url: Vec<Option<&'a str>>,
    referrer: Vec<Option<&'a str>>,
    /// One column per `Acquisition::COLUMNS`.
    came_from: [Vec<Option<&'a str>>; 7],
    language: Vec<Option<&'a str>>,
}

impl<'a> InteractionColumns<'a> {
    fn push(&mut self, change: &'a ChangeSet) {
        let i = &change.interaction;
        let (campaign_id, campaign_name, campaign_points) = change.campaign();
        let attribution = change.attribution.as_ref();
        let client = attribution.map(|a| &a.client);
        self.id.push(i.id.0);
        self.device.push(i.device_id.0);
        self.session.push(i.session_id.0);
        self.started.push(ms(i.started_at));
        self.last_activity.push(ms(i.last_activity));
        self.site.push(i.site_name.as_deref());
        self.campaign_id.push(campaign_id);
        self.campaign_name.push(campaign_name);
        self.campaign_points.push(campaign_points);
        self.user_agent.push(i.user_agent.as_deref());
        self.engagement.push(i.engagement_value);
        self.page_views.push(i.page_view_count);
        self.events.push(i.event_count);
        self.current_page_view
            .push(i.current_page_view.map(|id| id.0));
        self.browser.push(client.and_then(|c| c.browser.as_deref()));
        self.browser_version
            .push(client.and_then(|c| c.browser_version.as_deref()));
        self.os.push(client.and_then(|c| c.os.as_deref()));
        self.device_type
            .push(client.and_then(|c| c.device_type.as_deref()));
        self.ip
            .push(attribution.and_then(|a| a.ip).map(|ip| ip.to_string()));
        self.landing_url
            .push(attribution.and_then(|a| a.landing_url.as_deref()));
        self.referrer
            .push(attribution.and_then(|a| a.referrer.as_deref()));
        let came_from = attribution
            .and_then(|a| a.acquisition.as_ref())
            .map(tracker_core::acquisition::Acquisition::columns)
            .unwrap_or_default();
        for (column, value) in self.came_from.iter_mut().zip(came_from) {
            column.push(value);
        }
        self.language
            .push(attribution.and_then(|a| a.language.as_deref()));
    }
}

/// New interactions, open, under their contacts (one array per column).
const INSERT_INTERACTIONS: &str =
    "INSERT INTO interactions (contact_id, id, device_id, session_id, open,
         started_at, last_activity, site_name, campaign_id, campaign_name,
         campaign_points, user_agent, engagement_value, page_view_count,
         event_count, current_page_view, browser, browser_version, os,
         device_type, ip, landing_url, referrer, channel, source, utm_source,
         utm_medium, utm_campaign, utm_term, utm_content, language)
     SELECT n.c, n.i, n.d, n.s, true, n.st, n.la, n.site, n.cid, n.cname,
         n.cpoints, n.ua, n.ev, n.pv, n.ec, n.cpv, n.b, n.bv, n.os, n.dt, n.ip,
         n.lu, n.r, n.ch, n.src, n.us, n.um, n.uc, n.ut, n.uco, n.lang
     FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::bigint[],
         $6::bigint[], $7::text[], $8::uuid[], $9::text[], $10::bigint[],
         $11::text[], $12::bigint[], $13::bigint[], $14::bigint[], $15::uuid[],
         $16::text[], $17::text[], $18::text[], $19::text[], $20::text[],
         $21::text[], $22::text[], $23::text[], $24::text[], $25::text[],
         $26::text[], $27::text[], $28::text[], $29::text[], $30::text[])
         AS n(c, i, d, s, st, la, site, cid, cname, cpoints, ua, ev, pv, ec, cpv,
              b, bv, os, dt, ip, lu, r, ch, src, us, um, uc, ut, uco, lang)";

/// Inserts the interactions, open, under their contacts.
async fn interactions(
    tx: &Transaction<'_>,
    changes: &[&ChangeSet],
    owners: &[Uuid],
) -> Result<(), Error> {
    let mut c = InteractionColumns::default();
    for change in changes {
        c.push(change);
    }
    let written = tx
        .execute(
            &tx.prepare_cached(INSERT_INTERACTIONS).await?,
            &[
                &owners,
                &c.id,
                &c.device,
                &c.session,
                &c.started,
                &c.last_activity,
                &c.site,
                &c.campaign_id,
                &c.campaign_name,
                &c.campaign_points,
                &c.user_agent,
                &c.engagement,
                &c.page_views,
                &c.events,
                &c.current_page_view,
                &c.browser,
                &c.browser_version,
                &c.os,
                &c.device_type,
                &c.ip,
                &c.landing_url,
                &c.referrer,
                &c.came_from[0],
                &c.came_from[1],
                &c.came_from[2],
                &c.came_from[3],
                &c.came_from[4],
                &c.came_from[5],
                &c.came_from[6],
                &c.language,
            ],
        )
        .await?;
    if written != changes.len() as u64 {
        return Err(Error::Corrupt(format!(
            "{written} of {} new interactions written",
            changes.len()
        )));
    }
    Ok(())
}

/// Inserts every event of the new visits in one statement.
async fn events(
    tx: &Transaction<'_>,
    changes: &[&ChangeSet],
    owners: &[Uuid],
) -> Result<(), Error> {
    let mut contact = Vec::new();
    let mut interaction = Vec::new();
    let mut columns = EventColumns::default();
    for (change, owner) in changes.iter().zip(owners) {
        for stored in &change.events {
            contact.push(*owner);
            interaction.push(change.interaction.id.0);
            columns.push(stored)?;
        }
    }
    if contact.is_empty() {
        return Ok(());
    }
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&contact, &interaction];
    params.extend(columns.params());
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO events (contact_id, interaction_id, seq, id, kind, definition_id,
                 definition_name, points, timestamp, page_view_id, page_id, url, language,
                 item_version, referrer, monetary_value, currency_code, data, data_key, text,
                 value, custom)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::uuid[], $5::text[],
                 $6::uuid[], $7::text[], $8::bigint[], $9::bigint[], $10::uuid[], $11::uuid[],
                 $12::text[], $13::text[], $14::bigint[], $15::text[], $16::text[], $17::text[],
                 $18::text[], $19::text[], $20::text[], $21::float8[], $22::text[])",
        )
        .await?,
        &params,
    )
    .await?;
    Ok(())
}

/// Whether a change-set only adds events to a live visit, with nothing else to settle (no
/// running totals, no identification, no close): a visit's later requests, written together
/// by [`append`].
pub(crate) fn is_plain_append(change: &ChangeSet) -> bool {
    !change.writes_interaction()
        && !change.new_contact
        && !change.events.is_empty()
        && change.identifications().next().is_none()
}

/// Adds the events of a group's plain appends in one statement, each change-set's only if its
/// interaction is open under the change-set's contact (`FOR SHARE`, in key order: a close
/// another writer is committing is waited for and then seen). Says, per change-set, whether
/// its events were stored; the others go the one-by-one way (a merged contact, a closed
/// visit). Each visit is looked up by its primary key, one lateral lookup per key: a join the
/// planner may choose could scan every interaction (a prepared statement's generic plan,
/// made while the table was small, did: a sequential scan per group, growing with the table).
pub(crate) async fn append(
    tx: &Transaction<'_>,
    changes: &[&ChangeSet],
) -> Result<Vec<bool>, Error> {
    let mut contact = Vec::new();
    let mut interaction = Vec::new();
    let mut columns = EventColumns::default();
    for change in changes {
        for stored in &change.events {
            contact.push(change.interaction.contact_id.0);
            interaction.push(change.interaction.id.0);
            columns.push(stored)?;
        }
    }
    // One key per change-set, in the group's (contact) order: the rows are locked in it.
    let keys = visit_keys(changes);
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&contact, &interaction];
    params.extend(columns.params());
    params.push(&keys.0);
    params.push(&keys.1);
    let stored: std::collections::HashSet<Uuid> = tx
        .query(
            &tx.prepare_cached(
                "WITH batch AS (
                     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::uuid[],
                         $5::text[], $6::uuid[], $7::text[], $8::bigint[], $9::bigint[],
                         $10::uuid[], $11::uuid[], $12::text[], $13::text[], $14::bigint[],
                         $15::text[], $16::text[], $17::text[], $18::text[], $19::text[],
                         $20::text[], $21::float8[], $22::text[])
                     AS b(contact_id, interaction_id, seq, id, kind, definition_id,
                          definition_name, points, timestamp, page_view_id, page_id, url,
                          language, item_version, referrer, monetary_value, currency_code,
                          data, data_key, text, value, custom)
                 ),
                 live AS (
                     SELECT l.contact_id, l.id
                     FROM unnest($23::uuid[], $24::uuid[]) AS k(contact_id, id)
                     CROSS JOIN LATERAL (
                         SELECT i.contact_id, i.id FROM interactions i
                         WHERE i.contact_id = k.contact_id AND i.id = k.id AND i.open
                         FOR SHARE
                     ) l
                 )
                 INSERT INTO events (contact_id, interaction_id, seq, id, kind, definition_id,
                     definition_name, points, timestamp, page_view_id, page_id, url, language,
                     item_version, referrer, monetary_value, currency_code, data, data_key,
                     text, value, custom)
                 SELECT b.* FROM batch b
                 JOIN live l ON l.contact_id = b.contact_id AND l.id = b.interaction_id
                 RETURNING interaction_id",
            )
            .await?,
            &params,
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    Ok(changes
        .iter()
        .map(|change| stored.contains(&change.interaction.id.0))
        .collect())
}

/// Whether a change-set only ends a visit whose events are all stored already (a flush, or the
/// sweeper's close): written together by [`close`].
pub(crate) fn is_plain_close(change: &ChangeSet) -> bool {
    change.close.is_some()
        && !change.new_contact
        && change.events.is_empty()
        && change.interaction.event_count > 0
}

/// Ends a group's plain closes, in three statements whatever their number: the visits' final
/// totals and end (only those still open under the change-set's contact: the others go the
/// one-by-one way, which finds a merged contact's or says the visit is stale), their events
/// read back for the roll-ups (into `tally`), and their contacts' engagement value and last
/// activity. Says, per change-set, whether it was closed here.
pub(crate) async fn close(
    tx: &Transaction<'_>,
    changes: &[&ChangeSet],
    tally: &mut Tally,
) -> Result<Vec<bool>, Error> {
    let closed = end_visits(tx, changes).await?;
    let ended: Vec<&ChangeSet> = changes
        .iter()
        .copied()
        .filter(|change| closed.contains(&change.interaction.id.0))
        .collect();
    if ended.is_empty() {
        return Ok(vec![false; changes.len()]);
    }
    let mut facts = closed_facts(tx, &ended).await?;
    // One row per contact (two of its visits may end together), in contact order.
    let mut contacts: std::collections::BTreeMap<Uuid, (i64, i64)> = Default::default();
    for change in &ended {
        let (interaction, close) = (&change.interaction, change.close.as_ref());
        let contact = interaction.contact_id.0;
        tally.add_visit(
            contact,
            ms(interaction.started_at),
            interaction.site_name.as_deref(),
            &facts.remove(&interaction.id.0).unwrap_or_default(),
        );
        let ended_at = close.map_or(ms(interaction.last_activity), |c| ms(c.ended_at));
        let entry = contacts.entry(contact).or_insert((0, i64::MIN));
        entry.0 = entry.0.saturating_add(interaction.engagement_value);
        entry.1 = entry.1.max(ended_at);
    }
    let (ids, (values, at)): (Vec<Uuid>, (Vec<i64>, Vec<i64>)) = contacts.into_iter().unzip();
    tx.execute(
        &tx.prepare_cached(
            "UPDATE contacts c SET engagement_value = c.engagement_value + u.value,
                 last_activity = greatest(c.last_activity, u.at)
             FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS u(id, value, at)
             WHERE c.id = u.id",
        )
        .await?,
        &[&ids, &values, &at],
    )
    .await?;
    Ok(changes
        .iter()
        .map(|change| closed.contains(&change.interaction.id.0))
        .collect())
}

/// The closing visits' keys, ends and final totals, one array per column of
/// [`end_visits`]' statement.
#[derive(Default)]
struct Ending<'a> {
    contact: Vec<Uuid>,
    id: Vec<Uuid>,
    ended_at: Vec<i64>,
    last_activity: Vec<i64>,
    reason: Vec<&'static str>,
    campaign_id: Vec<Option<Uuid>>,
    campaign_name: Vec<Option<&'a str>>,
    campaign_points: Vec<Option<i64>>,
    engagement_value: Vec<i64>,
    page_view_count: Vec<i64>,
    event_count: Vec<i64>,
    current_page_view: Vec<Option<Uuid>>,
}

impl<'a> Ending<'a> {
    fn push(&mut self, change: &'a ChangeSet) -> Result<(), Error> {
        let interaction = &change.interaction;
        let close = change.close.as_ref().ok_or_else(|| {
            Error::Corrupt(format!("interaction {} is not closing", interaction.id))
        })?;
        self.contact.push(interaction.contact_id.0);
        self.id.push(interaction.id.0);
        self.ended_at.push(ms(close.ended_at));
        self.last_activity.push(ms(interaction.last_activity));
        self.reason.push(close.reason.as_str());
        let (id, name, points) = change.campaign();
        self.campaign_id.push(id);
        self.campaign_name.push(name);
        self.campaign_points.push(points);
        self.engagement_value.push(interaction.engagement_value);
        self.page_view_count.push(interaction.page_view_count);
        self.event_count.push(interaction.event_count);
        self.current_page_view
            .push(interaction.current_page_view.map(|id| id.0));
        Ok(())
    }

    fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 12] {
        [
            &self.contact,
            &self.id,
            &self.ended_at,
            &self.last_activity,
            &self.reason,
            &self.campaign_id,
            &self.campaign_name,
            &self.campaign_points,
            &self.engagement_value,
            &self.page_view_count,
            &self.event_count,
            &self.current_page_view,
        ]
    }
}

/// Writes the visits' final totals and ends them, those open under their change-set's
/// contact; returns the ids of those it ended.
async fn end_visits(
    tx: &Transaction<'_>,
    changes: &[&ChangeSet],
) -> Result<std::collections::HashSet<Uuid>, Error> {
    let mut ending = Ending::default();
    for change in changes {
        ending.push(change)?;
    }
    Ok(tx
        .query(
            &tx.prepare_cached(
                "UPDATE interactions i SET open = false, ended_at = u.ended_at,
                     close_reason = u.close_reason, last_activity = u.last_activity,
                     campaign_id = u.campaign_id, campaign_name = u.campaign_name,
                     campaign_points = u.campaign_points, engagement_value = u.engagement_value,
                     page_view_count = u.page_view_count, event_count = u.event_count,
                     current_page_view = u.current_page_view
                 FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::bigint[], $5::text[],
                     $6::uuid[], $7::text[], $8::bigint[], $9::bigint[], $10::bigint[],
                     $11::bigint[], $12::uuid[])
                     AS u(contact_id, id, ended_at, last_activity, close_reason, campaign_id,
                          campaign_name, campaign_points, engagement_value, page_view_count,
                          event_count, current_page_view)
                 WHERE i.contact_id = u.contact_id AND i.id = u.id AND i.open
                 RETURNING i.id",
            )
            .await?,
            &ending.params(),
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect())
}

/// The events of the ended visits, as roll-up facts per visit (one lookup by key per visit).
async fn closed_facts(
    tx: &Transaction<'_>,
    ended: &[&ChangeSet],
) -> Result<HashMap<Uuid, Vec<Fact>>, Error> {
    let (contacts, ids) = visit_keys(ended);
    let mut facts: HashMap<Uuid, Vec<Fact>> = HashMap::with_capacity(ended.len());
    for row in tx
        .query(
            &tx.prepare_cached(
                "SELECT k.id, e.kind, e.definition_id, e.definition_name, e.points, e.url,
                     e.monetary_value, e.currency_code
                 FROM unnest($1::uuid[], $2::uuid[]) AS k(contact_id, id)
                 CROSS JOIN LATERAL (
                     SELECT * FROM events e
                     WHERE e.contact_id = k.contact_id AND e.interaction_id = k.id
                 ) e",
            )
            .await?,
            &[&contacts, &ids],
        )
        .await?
    {
        facts
            .entry(row.try_get(0)?)
            .or_default()
            .push(crate::read::fact(&row, 1)?);
    }
    Ok(facts)
}

/// The change-sets' visits' keys (contact, visit), in their order.
fn visit_keys(changes: &[&ChangeSet]) -> (Vec<Uuid>, Vec<Uuid>) {
    changes
        .iter()
        .map(|change| (change.interaction.contact_id.0, change.interaction.id.0))
        .unzip()
}
