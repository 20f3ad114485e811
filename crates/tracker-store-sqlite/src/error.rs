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
    /// Another process (or another store in this one) has the database file open.
    #[error("{path} is in use by another jss-tracker{holder}: one database file takes one server; stop the other, or give this one its own storage.path")]
    InUse {
        /// The database file.
        path: String,
        /// Who holds it, as far as known (", process N").
        holder: String,
    },
    /// The database cannot be written.
    #[error("{0} is read-only: jss-tracker must write to its database (check the permissions of the file and its folder, and the disk)")]
    ReadOnly(String),
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
    /// The change-set was refused for what it holds (see `writer::commit_alone`).
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
