//! Visits stored before channels were: theirs worked out from the landing URL and referrer they
//! kept, when the database is migrated (with the built-in referrer lists: the store does not
//! read the server's configuration). Their language stays unknown.

use rusqlite::{params, Connection};
use tracker_core::acquisition::Referrers;

use crate::Error;

/// Rows read, then updated, at a time.
const BATCH: usize = 10_000;

/// A progress line per this many visits.
const REPORT_EVERY: u64 = 1_000_000;

/// Works out the channel, source and UTM tags of every interaction that has none, in id order,
/// a batch at a time; says so on the console once per million visits.
pub(crate) fn acquisition(conn: &Connection) -> Result<(), Error> {
    let mut read = conn.prepare(
        "SELECT id, landing_url, referrer, campaign_id IS NOT NULL FROM interactions
         WHERE channel IS NULL AND id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let mut update = conn.prepare(
        "UPDATE interactions SET channel = ?2, source = ?3, utm_source = ?4, utm_medium = ?5,
             utm_campaign = ?6, utm_term = ?7, utm_content = ?8
         WHERE id = ?1",
    )?;
    let mut after = uuid::Uuid::nil();
    let mut done = 0u64;
    loop {
        let batch = read
            .query_map(params![after, BATCH as i64], |row| {
                Ok((
                    row.get::<_, uuid::Uuid>(0)?,
                    row.get::<_, Option<String>>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, bool>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let Some(last) = batch.last() else { break };
        after = last.0;
        for (id, landing_url, referrer, campaign) in &batch {
            let acquisition =
                Referrers::of_stored(landing_url.as_deref(), referrer.as_deref(), *campaign);
            let c = acquisition.columns();
            update.execute(params![id, c[0], c[1], c[2], c[3], c[4], c[5], c[6]])?;
            done += 1;
            if done % REPORT_EVERY == 0 {
                tracing::info!(
                    visits = done,
                    "channels worked out for visits stored before"
                );
            }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn visits_stored_before_get_their_channels() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 0).unwrap();
        crate::schema::migrate_to(&mut conn, 12).unwrap();
        let visit = |n: u8, landing: &str, referrer: Option<&str>| {
            conn.execute(
                "INSERT INTO interactions (id, contact_id, device_id, session_id, open,
                     started_at, last_activity, engagement_value, page_view_count, event_count,
                     landing_url, referrer)
                 VALUES (?1, ?1, ?1, ?1, 0, 0, 0, 0, 1, 1, ?2, ?3)",
                params![uuid::Uuid::from_bytes([n; 16]), landing, referrer],
            )
            .unwrap();
        };
        visit(1, "/", Some("https://www.google.com/search?q=x"));
        visit(2, "/?utm_source=news&utm_medium=email", None);
        visit(3, "/", None);
        crate::schema::migrate(&mut conn).unwrap();
        let channels: Vec<(String, Option<String>)> = conn
            .prepare("SELECT channel, source FROM interactions ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            channels,
            vec![
                ("organic_search".into(), Some("google.com".into())),
                ("email".into(), Some("news".into())),
                ("direct".into(), None),
            ]
        );
    }
}
