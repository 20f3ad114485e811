//! Schema migrations, applied in order at open, each in its own transaction. Several nodes may
//! start at once: a transaction-scoped advisory lock makes them take turns, and each applies
//! only what the `schema_migrations` table says is missing.

use deadpool_postgres::Object;

use crate::Error;

/// Every migration, in order; a migration's version is its position, from 1.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_initial.sql"),
    include_str!("../migrations/0002_erased_contacts.sql"),
    include_str!("../migrations/0003_contact_merges.sql"),
    include_str!("../migrations/0004_landing.sql"),
    include_str!("../migrations/0005_open_by_start.sql"),
    include_str!("../migrations/0006_rollup_shards.sql"),
    include_str!("../migrations/0007_acquisition_language.sql"),
];

/// The migration that adds visits' channels: visits stored before get theirs
/// ([`crate::backfill::acquisition`]).
const ACQUISITION: i32 = 7;

/// The advisory lock key that serialises migrations (any constant shared by all nodes).
const MIGRATION_LOCK: i64 = 0x006a_7373_5f74_726b;

/// Creates `schema` if missing and brings it to the latest version; then makes sure the device
/// key exists (random, created once, shared by every node).
pub(crate) async fn migrate(client: &mut Object, schema: &str) -> Result<(), Error> {
    // The name was checked to be a plain identifier.
    client
        .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .await?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
    for (at, sql) in MIGRATIONS.iter().enumerate() {
        let version = i32::try_from(at + 1).unwrap_or(i32::MAX);
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let done = tx
            .query_opt(
                "SELECT 1 FROM schema_migrations WHERE version = $1",
                &[&version],
            )
            .await?
            .is_some();
        if !done {
            tx.batch_execute(sql)
                .await
                .map_err(|e| Error::Migration(version, e))?;
            if version == ACQUISITION {
                crate::backfill::acquisition(&tx).await?;
            }
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[&version],
            )
            .await?;
            tracing::info!(version, "postgres schema migrated");
        }
        tx.commit().await?;
    }
    let key: [u8; 32] = rand::random();
    client
        .execute(
            "INSERT INTO settings (name, value) VALUES ('device_key', $1)
             ON CONFLICT (name) DO NOTHING",
            &[&key.as_slice()],
        )
        .await?;
    Ok(())
}
