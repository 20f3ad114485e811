//! `[storage]` with `backend = "postgres"`: the keys a person writes, read and checked by this
//! crate (the server names no backend), and the type a program registers to offer it.

use std::time::Duration;

use serde::Deserialize;
use tracker_core::{
    config::{duration, BackendTable, Named, Problem},
    store::{StoreConfig, StoreType},
};

use crate::PostgresConfig;

/// The keys of `[storage]` for PostgreSQL.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresSettings {
    /// `postgres://user@host:5432/db` (required).
    pub url: Option<String>,
    /// The schema the tables live in (created if missing).
    pub schema: String,
    /// Most connections this node opens.
    pub pool_size: usize,
    /// Longest wait for PostgreSQL (a connection, or one operation) before a request fails
    /// with 503 `unavailable`.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Writers: each commits what is queued in one transaction.
    pub writers: usize,
    /// Most change-sets in one transaction (1: each request its own, which keeps a sharded
    /// database's transactions on one shard).
    pub max_group: usize,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        let defaults = PostgresConfig::new("");
        Self {
            url: None,
            schema: defaults.schema,
            pool_size: defaults.pool_size,
            timeout: defaults.timeout,
            writers: defaults.writers,
            max_group: defaults.max_group,
        }
    }
}

impl PostgresSettings {
    /// What types alone cannot check, every problem at once.
    fn check(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut invalid = |key: &str, message: &str| problems.push(Problem::new(key, message));
        if self.url.is_none() {
            invalid(
                "storage.url",
                "is required with storage.backend = \"postgres\" (postgres://user@host:5432/db)",
            );
        }
        if self.pool_size == 0 {
            invalid("storage.pool_size", "must be at least 1");
        }
        if self.writers == 0 || self.writers >= self.pool_size {
            invalid(
                "storage.writers",
                "must be at least 1 and fewer than storage.pool_size (reads need connections too)",
            );
        }
        if self.max_group == 0 {
            invalid("storage.max_group", "must be at least 1");
        }
        if self.timeout.is_zero() {
            invalid("storage.timeout", "must be longer than zero");
        }
        problems
    }
}

/// `storage.backend = "postgres"`: one database shared by several tracker nodes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Postgres;

impl Named for Postgres {
    fn type_name(&self) -> &str {
        "postgres"
    }
}

impl StoreType for Postgres {
    fn config(&self, table: &BackendTable) -> Result<Box<dyn StoreConfig>, Vec<Problem>> {
        let settings: PostgresSettings = table.typed("storage")?;
        let mut problems = settings.check();
        for problem in &mut problems {
            problem.origin = table.origins.get(&problem.key).cloned();
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut config = PostgresConfig::new(settings.url.unwrap_or_default());
        config.schema = settings.schema;
        config.pool_size = settings.pool_size;
        config.timeout = settings.timeout;
        config.writers = settings.writers;
        config.max_group = settings.max_group;
        Ok(Box::new(config))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_named() {
        let table = BackendTable::new("postgres")
            .with("pool_size", 2)
            .with("writers", 2)
            .with("timeout", "0s");
        let problems = Postgres.config(&table).unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["storage.url", "storage.writers", "storage.timeout"]);
    }

    #[test]
    fn sqlite_keys_are_refused() {
        let table = BackendTable::new("postgres")
            .with("url", "postgres://localhost/db")
            .with("path", "x.db");
        let problems = Postgres.config(&table).unwrap_err();
        assert_eq!(problems[0].key, "storage.path");
    }

    #[test]
    fn the_url_is_not_described() {
        let table = BackendTable::new("postgres").with("url", "postgres://u:secret@h/db");
        let config = Postgres.config(&table).unwrap();
        assert!(
            !config.describe().contains("secret"),
            "{}",
            config.describe()
        );
    }
}
