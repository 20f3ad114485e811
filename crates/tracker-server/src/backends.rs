//! The store and session-state types a program registers, and the one each section of the
//! configuration chooses. The server names no backend: the binary (or an embedding program, or
//! a test) registers the types it ships, and `storage.backend` / `sessions.backend` pick one by
//! name, as `[pipeline]` picks processor types.

use tracker_core::{
    config::{unknown_backend, BackendTable, Problem},
    session::{SessionContext, SessionStateConfig, SessionStateTypes},
    store::{StoreConfig, StoreTypes},
};

use crate::config::{ConfigError, Settings};

/// The registered backend types.
#[derive(Debug, Clone)]
pub struct Backends {
    /// By `storage.backend`.
    pub stores: StoreTypes,
    /// By `sessions.backend`.
    pub sessions: SessionStateTypes,
}

impl Default for Backends {
    /// No store type, and live sessions in memory (the engine's own).
    fn default() -> Self {
        let mut sessions = SessionStateTypes::default();
        sessions.register(std::sync::Arc::new(tracker_engine::Memory));
        Self {
            stores: StoreTypes::default(),
            sessions,
        }
    }
}

impl Backends {
    /// The settings of the store `[storage]` chooses.
    pub fn store_config(&self, settings: &Settings) -> Result<Box<dyn StoreConfig>, ConfigError> {
        let table = &settings.storage;
        let Some(kind) = self.stores.get(&table.backend) else {
            return Err(unknown("storage", table, &self.stores.names()));
        };
        kind.config(table).map_err(ConfigError::Invalid)
    }

    /// The settings of the session state `[sessions]` chooses.
    pub fn session_state_config(
        &self,
        settings: &Settings,
    ) -> Result<Box<dyn SessionStateConfig>, ConfigError> {
        let table = &settings.sessions;
        let Some(kind) = self.sessions.get(&table.backend) else {
            return Err(unknown("sessions", table, &self.sessions.names()));
        };
        let context = SessionContext {
            session_timeout: settings.tracker.session_timeout,
            max_open_sessions: settings.tracker.max_open_sessions,
        };
        kind.config(table, context).map_err(ConfigError::Invalid)
    }

    /// Checks both sections: every problem of either, one line each.
    pub fn check(&self, settings: &Settings) -> Result<(), ConfigError> {
        let mut problems: Vec<Problem> = Vec::new();
        if let Err(error) = self.store_config(settings) {
            problems.extend(error.problems().iter().cloned());
        }
        if let Err(error) = self.session_state_config(settings) {
            problems.extend(error.problems().iter().cloned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

fn unknown(section: &str, table: &BackendTable, known: &[&str]) -> ConfigError {
    ConfigError::Invalid(vec![unknown_backend(section, table, known)])
}
