//! The one error type of the core crate, and the per-element error processors report.

/// What a processor reports for one element; the pipeline adds the element's index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The element is malformed: a bad GUID, a value of the wrong type, a limit exceeded.
    #[error("{0}")]
    Invalid(String),
    /// The id is well formed but names no definition.
    #[error("{0}")]
    UnknownDefinition(String),
    /// The caller may not send this element: an identification that no app server vouched
    /// for (unsigned, expired or wrongly signed, from a browser key).
    #[error("{0}")]
    Forbidden(String),
}

/// Errors of the tracking domain. The server maps each variant to one row of the spec's table.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body is not JSON or not one of the accepted shapes.
    #[error("{0}")]
    InvalidPayload(String),
    /// The body or the batch exceeds a configured limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// One element of a batch failed; the batch is rejected whole.
    #[error("element {index}: {source}")]
    Event {
        /// Position of the element in the batch, from 0.
        index: usize,
        /// What was wrong with it.
        source: EventError,
    },
    /// The definitions file could not be read or is inconsistent.
    #[error("definitions: {0}")]
    Definitions(String),
    /// The pipeline configuration names a processor that does not exist.
    #[error("pipeline: {0}")]
    Pipeline(String),
    /// The store refuses a change-set because the interaction it continues is closed or
    /// unknown there (closed by another process, or removed): the live session is stale and
    /// must be dropped.
    #[error("stale session: {0}")]
    Stale(String),
    /// The store could not be opened at start (the message names the setting and the cause).
    #[error("{0}")]
    Open(String),
    /// The store refused this change-set for what it holds (writing it failed, or panicked,
    /// where others succeed); it is not stored. The detail is for logs only.
    #[error("change-set refused by the store: {0}")]
    Refused(String),
    /// The store could not do what was asked; the detail is for logs only.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}
