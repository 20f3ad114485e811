//! Visits stored before channels were: theirs worked out from the landing URL and referrer they
//! kept, in the migration that adds the columns (with the built-in referrer lists: the store
//! does not read the server's configuration). Their language stays unknown.

use deadpool_postgres::Transaction;
use tracker_core::acquisition::Referrers;
use uuid::Uuid;

use crate::Error;

/// Rows read, then updated, at a time.
const BATCH: i64 = 10_000;

/// A progress line per this many visits.
const REPORT_EVERY: u64 = 1_000_000;

/// The next batch of visits without a channel, in key order.
const READ: &str = "SELECT contact_id, id, landing_url, referrer, campaign_id IS NOT NULL
    FROM interactions WHERE channel IS NULL AND (contact_id, id) > ($1, $2)
    ORDER BY contact_id, id LIMIT $3";

/// A batch's channels, one array per column.
const UPDATE: &str = "UPDATE interactions i SET channel = n.ch, source = n.src,
        utm_source = n.us, utm_medium = n.um, utm_campaign = n.uc, utm_term = n.ut,
        utm_content = n.uco
    FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
        $7::text[], $8::text[], $9::text[]) AS n(c, i, ch, src, us, um, uc, ut, uco)
    WHERE i.contact_id = n.c AND i.id = n.i";

/// Works out the channel, source and UTM tags of every interaction that has none, in key
/// order, a batch per statement; says so on the console once per million visits.
pub(crate) async fn acquisition(tx: &Transaction<'_>) -> Result<(), Error> {
    let read = tx.prepare(READ).await?;
    let update = tx.prepare(UPDATE).await?;
    let mut after = (Uuid::nil(), Uuid::nil());
    let mut done = 0u64;
    loop {
        let rows = tx.query(&read, &[&after.0, &after.1, &BATCH]).await?;
        let Some(last) = rows.last() else { break };
        after = (last.try_get(0)?, last.try_get(1)?);
        let mut keys: (Vec<Uuid>, Vec<Uuid>) = (Vec::new(), Vec::new());
        let mut columns: [Vec<Option<String>>; 7] = Default::default();
        for row in &rows {
            let landing_url: Option<String> = row.try_get(2)?;
            let referrer: Option<String> = row.try_get(3)?;
            let acquisition =
                Referrers::of_stored(landing_url.as_deref(), referrer.as_deref(), row.try_get(4)?);
            keys.0.push(row.try_get(0)?);
            keys.1.push(row.try_get(1)?);
            for (column, value) in columns.iter_mut().zip(acquisition.columns()) {
                column.push(value.map(str::to_string));
            }
        }
        let [ch, src, us, um, uc, ut, uco] = &columns;
        tx.execute(&update, &[&keys.0, &keys.1, ch, src, us, um, uc, ut, uco])
            .await?;
        let before = done;
        done += rows.len() as u64;
        if done / REPORT_EVERY > before / REPORT_EVERY {
            tracing::info!(
                visits = done,
                "channels worked out for visits stored before"
            );
        }
    }
    if done > 0 {
        tracing::info!(
            visits = done,
            "channels worked out for every visit stored before"
        );
    }
    Ok(())
}
