//! The store's error type. Its detail goes to the log; clients only ever see "unavailable".

/// What can go wrong in the SQLite store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite said no.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A schema migration failed.
    #[error("migration: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// The database folder could not be created.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// The writer thread has stopped.
    #[error("the writer thread has stopped")]
    WriterGone,
    /// The checkpointer thread has stopped.
    #[error("the checkpointer thread has stopped")]
    CheckpointerGone,
    /// A lock was poisoned by a panic in another thread.
    #[error("a lock was poisoned")]
    Poisoned,
    /// A stored value does not parse back.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl From<Error> for tracker_core::Error {
    fn from(error: Error) -> Self {
        tracker_core::Error::Unavailable(error.to_string())
    }
}
