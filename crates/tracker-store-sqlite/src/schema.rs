//! Schema migrations, applied in order at open; the version lives in `PRAGMA user_version`.

use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

use crate::Error;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../migrations/0001_initial.sql")),
        M::up(include_str!("../migrations/0002_blob_ids.sql")),
        M::up(include_str!("../migrations/0003_device_identifiers.sql")),
        M::up(include_str!("../migrations/0004_client_info.sql")),
        M::up(include_str!("../migrations/0005_contacts_by_recency.sql")),
        M::up_with_hook(
            include_str!("../migrations/0006_rollups.sql"),
            |tx: &rusqlite::Transaction<'_>| {
                crate::rollup::backfill(tx).map_err(|e| match e {
                    Error::Sqlite(e) => rusqlite_migration::HookError::RusqliteError(e),
                    other => rusqlite_migration::HookError::Hook(other.to_string()),
                })
            },
        ),
        M::up(include_str!("../migrations/0007_open_sessions.sql")),
        M::up(include_str!("../migrations/0008_device_key.sql")),
        M::up(include_str!("../migrations/0009_erased_contacts.sql")),
        M::up(include_str!("../migrations/0010_contact_merges.sql")),
        M::up(include_str!("../migrations/0011_landing.sql")),
        M::up(include_str!("../migrations/0012_open_by_start.sql")),
        M::up_with_hook(
            include_str!("../migrations/0013_acquisition_language.sql"),
            |tx: &rusqlite::Transaction<'_>| {
                crate::backfill::acquisition(tx).map_err(|e| match e {
                    Error::Sqlite(e) => rusqlite_migration::HookError::RusqliteError(e),
                    other => rusqlite_migration::HookError::Hook(other.to_string()),
                })
            },
        ),
    ])
}

/// Brings the database to schema `version` (tests of migrations).
#[cfg(test)]
pub(crate) fn migrate_to(conn: &mut Connection, version: usize) -> Result<(), Error> {
    migrations().to_version(conn, version)?;
    Ok(())
}

/// Brings the database to the latest schema.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), Error> {
    migrations().to_latest(conn)?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::too_many_lines)]
mod tests {
    use rusqlite::Connection;
    use tracker_core::ids::{ContactId, DeviceId};
    use uuid::Uuid;

    /// Migration 3 removes only the identifiers that repeat a device of the same contact.
    #[test]
    fn only_device_copies_leave_identifiers() {
        let mut conn = Connection::open_in_memory().expect("db");
        super::migrations().to_version(&mut conn, 2).expect("v2");
        conn.execute_batch(
            "INSERT INTO contacts VALUES (x'0d1c2b3a4f5e4d6c8b7a695847362514', 1000, 2000, 0);
             INSERT INTO devices VALUES (x'00112233445566778899aabbccddeeff',
                 x'0d1c2b3a4f5e4d6c8b7a695847362514', 1000, 2000);
             INSERT INTO identifiers VALUES
                 ('SC_ANALYTICS_GLOBAL_COOKIE', '00112233445566778899aabbccddeeff',
                  x'0d1c2b3a4f5e4d6c8b7a695847362514'),
                 ('SC_ANALYTICS_GLOBAL_COOKIE', 'ffeeddccbbaa99887766554433221100',
                  x'0d1c2b3a4f5e4d6c8b7a695847362514'),
                 ('email', 'ada@example.com', x'0d1c2b3a4f5e4d6c8b7a695847362514');",
        )
        .expect("v2 rows");
        super::migrate(&mut conn).expect("migrates");
        let left: Vec<(String, String)> = conn
            .prepare("SELECT source, identifier FROM identifiers ORDER BY 1, 2")
            .expect("select")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(
            left,
            [
                (
                    "SC_ANALYTICS_GLOBAL_COOKIE".to_string(),
                    "ffeeddccbbaa99887766554433221100".to_string()
                ),
                ("email".to_string(), "ada@example.com".to_string()),
            ]
        );
        let contact =
            ContactId(Uuid::parse_str("0d1c2b3a-4f5e-4d6c-8b7a-695847362514").expect("id"));
        let record =
            crate::read::contact(&conn, contact, tracker_core::store::InteractionsPage::ALL)
                .expect("read")
                .expect("contact");
        assert_eq!(
            record
                .identifiers
                .iter()
                .map(|i| i.identifier.as_str())
                .collect::<Vec<_>>(),
            [
                "00112233445566778899aabbccddeeff",
                "ffeeddccbbaa99887766554433221100",
                "ada@example.com"
            ]
        );
    }

    #[test]
    fn migrations_are_valid() {
        assert!(super::migrations().validate().is_ok());
    }

    /// A database written by the first release (text ids) reads the same after the BLOB
    /// migration.
    #[test]
    fn text_ids_from_version_1_become_blobs_with_nothing_lost() {
        let mut conn = Connection::open_in_memory().expect("db");
        super::migrations().to_version(&mut conn, 1).expect("v1");
        conn.execute_batch(
            "INSERT INTO contacts VALUES ('0d1c2b3a-4f5e-4d6c-8b7a-695847362514', 1000, 2000, 35);
             INSERT INTO devices VALUES ('00112233445566778899aabbccddeeff',
                 '0d1c2b3a-4f5e-4d6c-8b7a-695847362514', 1000, 2000);
             INSERT INTO identifiers VALUES ('SC_ANALYTICS_GLOBAL_COOKIE',
                 '00112233445566778899aabbccddeeff', '0d1c2b3a-4f5e-4d6c-8b7a-695847362514');
             INSERT INTO interactions (id, contact_id, device_id, session_id, open, started_at,
                 last_activity, ended_at, close_reason, campaign_id, campaign_name,
                 campaign_points, engagement_value, page_view_count, event_count,
                 current_page_view)
             VALUES ('aaaaaaaa-0000-4000-8000-000000000001', '0d1c2b3a-4f5e-4d6c-8b7a-695847362514',
                 '00112233445566778899aabbccddeeff', 'bbbbbbbb-0000-4000-8000-000000000002', 0,
                 1000, 2000, 2000, 'flush', 'cccccccc-0000-4000-8000-000000000003', 'Spring Sale',
                 0, 35, 1, 2, 'dddddddd-0000-4000-8000-000000000004');
             INSERT INTO events (interaction_id, seq, id, kind, points, timestamp, page_id, url)
             VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 0,
                 'dddddddd-0000-4000-8000-000000000004', 'pageView', 0, 1000,
                 '110d559f-dea5-42ea-9c1c-8a5df7e70ef9', '/');
             INSERT INTO events (interaction_id, seq, id, kind, definition_id, definition_name,
                 points, timestamp, page_view_id, monetary_value, currency_code)
             VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 1,
                 'eeeeeeee-0000-4000-8000-000000000005', 'outcome',
                 'ffffffff-0000-4000-8000-000000000006', 'Purchase', 35, 1500,
                 'dddddddd-0000-4000-8000-000000000004', '99.95', 'USD');",
        )
        .expect("v1 rows");
        super::migrate(&mut conn).expect("migrates");

        let contact =
            ContactId(Uuid::parse_str("0d1c2b3a-4f5e-4d6c-8b7a-695847362514").expect("id"));
        let device = DeviceId(Uuid::parse_str("00112233445566778899aabbccddeeff").expect("id"));
        let by_device = crate::read::contacts(
            &conn,
            &tracker_core::store::ContactFilter {
                device: Some(device),
                limit: 10,
                ..Default::default()
            },
        )
        .expect("read")
        .contacts;
        assert_eq!(
            by_device.iter().map(|c| c.id).collect::<Vec<_>>(),
            [contact]
        );
        let record =
            crate::read::contact(&conn, contact, tracker_core::store::InteractionsPage::ALL)
                .expect("read")
                .expect("contact");
        assert_eq!(record.summary.engagement_value, 35);
        assert_eq!(record.devices[0].id, device);
        assert_eq!(
            record
                .identifiers
                .iter()
                .map(|i| (i.source.as_str(), i.identifier.as_str()))
                .collect::<Vec<_>>(),
            [(
                "SC_ANALYTICS_GLOBAL_COOKIE",
                "00112233445566778899aabbccddeeff"
            )],
            "listed once, from the device"
        );
        let stored: i64 = conn
            .query_row("SELECT count(*) FROM identifiers", [], |r| r.get(0))
            .expect("count");
        assert_eq!(stored, 0, "the copy of the device in identifiers is gone");
        let visit = &record.interactions[0];
        assert_eq!(visit.close_reason.as_deref(), Some("flush"));
        assert_eq!(
            visit.interaction.campaign.as_ref().map(|c| c.name.as_str()),
            Some("Spring Sale")
        );
        assert_eq!(visit.events.len(), 2);
        let page_view = &visit.events[0];
        assert_eq!(
            page_view.event.page.as_ref().map(|p| p.page_id.to_string()),
            Some("110d559f-dea5-42ea-9c1c-8a5df7e70ef9".to_string())
        );
        assert_eq!(visit.events[1].page_view_id, Some(page_view.id));
        assert_eq!(visit.interaction.current_page_view, Some(page_view.id));
        assert_eq!(
            visit.events[1].event.monetary_value.map(|m| m.to_string()),
            Some("99.95".to_string())
        );
        let stored_type: String = conn
            .query_row("SELECT typeof(id) FROM events LIMIT 1", [], |r| r.get(0))
            .expect("typeof");
        assert_eq!(stored_type, "blob");
    }
}
