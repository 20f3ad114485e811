//! The client's one error type.

/// What can go wrong talking to the tracker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting of the client is invalid: the base URL, the service prefix or the `Origin`.
    #[error("invalid client setting: {0}")]
    Config(String),
    /// The batch could not be encoded as JSON.
    #[error("cannot encode the batch: {0}")]
    Encode(#[from] serde_json::Error),
    /// No answer: connection refused or reset, timeout.
    #[error("request failed: {0}")]
    Transport(#[from] reqwest::Error),
    /// The tracker refused the request, with the spec's error envelope when it sent one.
    #[error("HTTP {status} {code}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The envelope's `code` (`invalid_event`, `unknown_definition`, …), or `http_<status>`.
        code: String,
        /// The envelope's `message`.
        message: String,
        /// The envelope's `index`: the element at fault.
        index: Option<usize>,
    },
}

impl Error {
    /// Whether sending the same request again may succeed: no answer, `429`, or a `5xx`.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(_) => true,
            Error::Refused { status, .. } => *status == 429 || *status >= 500,
            Error::Config(_) | Error::Encode(_) => false,
        }
    }
}
