//! Schema migrations, applied in order at open; the version lives in `PRAGMA user_version`.

use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

use crate::Error;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(include_str!("../migrations/0001_initial.sql"))])
}

/// Brings the database to the latest schema.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), Error> {
    migrations().to_latest(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        assert!(super::migrations().validate().is_ok());
    }
}
