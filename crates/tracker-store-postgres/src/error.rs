//! The store's error type. Its detail goes to the log; clients only ever see "unavailable".

use std::time::Duration;

/// What can go wrong in the PostgreSQL store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// PostgreSQL said no, or the connection failed.
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No connection could be had from the pool in time (PostgreSQL unreachable or saturated).
    #[error("postgres pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// A writer could not get a connection (PostgreSQL unreachable or saturated).
    #[error("postgres: no connection: {0}")]
    NoConnection(String),
    /// The writers have stopped.
    #[error("postgres: the writers have stopped")]
    WritersGone,
    /// An operation took longer than the configured timeout.
    #[error("postgres did not answer within {0:?}")]
    Timeout(Duration),
    /// A migration failed.
    #[error("migration {0}: {1}")]
    Migration(i32, tokio_postgres::Error),
    /// The settings cannot work.
    #[error("{0}")]
    Config(String),
    /// The interaction a change-set continues is closed or unknown in the store: the live
    /// session that holds it is stale.
    #[error("stale session: {0}")]
    Stale(String),
    /// A stored value does not parse back.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Applying a change-set panicked (caught: the writer goes on).
    #[error("panicked while writing: {0}")]
    Panicked(String),
    /// The change-set was refused for what it holds (see `write::commit_alone`).
    #[error("change-set refused: {0}")]
    Refused(String),
}

impl From<Error> for tracker_core::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::Stale(detail) => tracker_core::Error::Stale(detail),
            Error::Refused(detail) | Error::Panicked(detail) => {
                tracker_core::Error::Refused(detail)
            }
            other => tracker_core::Error::Unavailable(other.to_string()),
        }
    }
}
