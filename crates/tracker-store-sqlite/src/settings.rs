//! `[storage]` with `backend = "sqlite"`: the keys a person writes, read by this crate (the
//! server names no backend), and the type a program registers to offer it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tracker_core::{
    config::{BackendTable, Named, Problem},
    store::{StoreConfig, StoreType},
};

use crate::{SqliteConfig, SyncMode};

/// `storage.sync`
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SyncSetting {
    /// Survives a killed process.
    #[default]
    Normal,
    /// Survives a power loss.
    Full,
}

/// The keys of `[storage]` for SQLite.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteSettings {
    /// The database file (relative: to the configuration file's folder).
    pub path: PathBuf,
    /// `normal` or `full`.
    pub sync: SyncSetting,
}

impl Default for SqliteSettings {
    fn default() -> Self {
        Self {
            path: PathBuf::from("data/tracker.db"),
            sync: SyncSetting::Normal,
        }
    }
}

/// `storage.backend = "sqlite"`: one file, one tracker node, no other service (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct Sqlite;

impl Named for Sqlite {
    fn type_name(&self) -> &str {
        "sqlite"
    }
}

impl StoreType for Sqlite {
    fn config(&self, table: &BackendTable) -> Result<Box<dyn StoreConfig>, Vec<Problem>> {
        let settings: SqliteSettings = table.typed("storage")?;
        let mut config = SqliteConfig::new(table.resolve("path", &settings.path));
        config.sync = match settings.sync {
            SyncSetting::Normal => SyncMode::Normal,
            SyncSetting::Full => SyncMode::Full,
        };
        Ok(Box::new(config))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_another_backend_are_refused() {
        let table = BackendTable::new("sqlite").with("pool_size", 4);
        let problems = Sqlite.config(&table).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "storage.pool_size");
        assert!(
            problems[0].message.starts_with("unknown key"),
            "{problems:?}"
        );
    }

    #[test]
    fn the_default_file_is_relative_to_the_configuration() {
        let mut table = BackendTable::new("sqlite").with("sync", "full");
        table.default_base = Some(PathBuf::from("/etc/tracker"));
        let config = Sqlite.config(&table).unwrap();
        assert_eq!(
            config.describe(),
            "/etc/tracker/data/tracker.db (sqlite, sync = full)"
        );
    }
}
