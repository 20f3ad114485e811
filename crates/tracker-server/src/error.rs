//! `ApiError`: every error of every endpoint, mapped to HTTP in this one place, always in the
//! wire contract's envelope `{"error": {"code", "message", "index"?}}`.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use tracker_api_types::ErrorCode;
use tracker_core::EventError;

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `tracker.enabled` is false.
    #[error("the tracker is disabled; set tracker.enabled = true (JSS_TRACKER__TRACKER__ENABLED=true) to enable it")]
    TrackerDisabled,
    /// `sc_apikey` missing or unknown.
    #[error("{0}")]
    InvalidApiKey(&'static str),
    /// The request's `Origin` is not allowed for the key.
    #[error("origin '{0}' is not allowed for this API key")]
    OriginNotAllowed(String),
    /// Body not JSON or of the wrong shape.
    #[error("{0}")]
    InvalidPayload(String),
    /// Body or batch too large.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// An element no processor accepts, a bad GUID, a bad value.
    #[error("{message}")]
    InvalidEvent {
        /// The element at fault.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// An id that names no definition.
    #[error("{message}")]
    UnknownDefinition {
        /// The element at fault.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// Missing or wrong admin token.
    #[error("a valid admin token is required: Authorization: Bearer <admin.token>")]
    Unauthorized,
    /// No such resource.
    #[error("{0}")]
    NotFound(String),
    /// The method is not allowed on this path.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A `Content-Encoding` the tracker does not decode.
    #[error("Content-Encoding '{0}' is not supported: send the JSON body as it is")]
    UnsupportedEncoding(String),
    /// Over a rate limit (`[rate_limit]`).
    #[error("too many requests from this {}; try again in {} s", if .0.by == "key" { "API key" } else { "address" }, retry_after_secs(.0.retry_after))]
    RateLimited(crate::rate_limit::Limited),
    /// The client took longer than `server.body_timeout` to send the body.
    #[error("the request body took longer than {0:?} to arrive (server.body_timeout)")]
    BodyTimeout(std::time::Duration),
    /// Too many request bodies are being received at once (`server.max_body_buffer`).
    #[error("the server is receiving too many requests at once; try again shortly")]
    Busy,
    /// The request line or headers do not parse (a bad `Content-Length`, say); answered by the
    /// serve loop, before any handler (see `serve::HeadErrors`).
    #[error("the request is malformed: its request line or headers (Content-Length, Transfer-Encoding, say) do not parse")]
    InvalidRequest,
    /// The URL is longer than the HTTP parser reads (64 KiB).
    #[error("the URL is too long")]
    UriTooLong,
    /// The request line and headers are over `server.max_header_bytes`, or more than 100
    /// headers.
    #[error("the request headers are too large (over server.max_header_bytes, or more than 100 of them)")]
    HeadersTooLarge,
    /// The store failed; the detail is logged, never sent.
    #[error("the service is temporarily unavailable")]
    Unavailable(String),
    /// The store refused this request's change-set alone (writing it failed where others
    /// succeed); the detail is logged, never sent.
    #[error("the request could not be stored; the failure is logged")]
    Internal(String),
    /// An upstream (the Layout Service) did not answer, or broke off.
    #[error("{0}")]
    BadGateway(String),
    /// An element the caller may not send: an identification no app server vouched for.
    #[error("{message}")]
    Forbidden {
        /// The element at fault.
        index: usize,
        /// What is wrong.
        message: String,
    },
}

pub use tracker_api_types::{ErrorBody, ErrorEnvelope};

#[derive(Serialize)]
struct Envelope {
    error: Body,
}

#[derive(Serialize)]
struct Body {
    code: ErrorCode,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
}

impl ApiError {
    /// The code and status of the spec's table (every [`ErrorCode`] is one of them).
    pub fn code_and_status(&self) -> (ErrorCode, StatusCode) {
        match self {
            Self::TrackerDisabled => (ErrorCode::TrackerDisabled, StatusCode::NOT_FOUND),
            Self::InvalidApiKey(_) => (ErrorCode::InvalidApiKey, StatusCode::BAD_REQUEST),
            Self::OriginNotAllowed(_) => (ErrorCode::OriginNotAllowed, StatusCode::FORBIDDEN),
            Self::InvalidPayload(_) => (ErrorCode::InvalidPayload, StatusCode::BAD_REQUEST),
            Self::PayloadTooLarge(_) => (ErrorCode::PayloadTooLarge, StatusCode::PAYLOAD_TOO_LARGE),
            Self::InvalidEvent { .. } => (ErrorCode::InvalidEvent, StatusCode::BAD_REQUEST),
            Self::UnknownDefinition { .. } => {
                (ErrorCode::UnknownDefinition, StatusCode::BAD_REQUEST)
            }
            Self::Unauthorized => (ErrorCode::Unauthorized, StatusCode::UNAUTHORIZED),
            Self::NotFound(_) => (ErrorCode::NotFound, StatusCode::NOT_FOUND),
            Self::MethodNotAllowed => (ErrorCode::MethodNotAllowed, StatusCode::METHOD_NOT_ALLOWED),
            Self::RateLimited(_) => (ErrorCode::RateLimited, StatusCode::TOO_MANY_REQUESTS),
            Self::UnsupportedEncoding(_) => (
                ErrorCode::UnsupportedMediaType,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            Self::BodyTimeout(_) => (ErrorCode::RequestTimeout, StatusCode::REQUEST_TIMEOUT),
            Self::InvalidRequest => (ErrorCode::InvalidRequest, StatusCode::BAD_REQUEST),
            Self::UriTooLong => (ErrorCode::UriTooLong, StatusCode::URI_TOO_LONG),
            Self::HeadersTooLarge => (
                ErrorCode::HeadersTooLarge,
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ),
            Self::Busy | Self::Unavailable(_) => {
                (ErrorCode::Unavailable, StatusCode::SERVICE_UNAVAILABLE)
            }
            Self::Internal(_) => (ErrorCode::InternalError, StatusCode::INTERNAL_SERVER_ERROR),
            Self::BadGateway(_) => (ErrorCode::BadGateway, StatusCode::BAD_GATEWAY),
            Self::Forbidden { .. } => (ErrorCode::UntrustedIdentification, StatusCode::FORBIDDEN),
        }
    }

    fn index(&self) -> Option<usize> {
        match self {
            Self::InvalidEvent { index, .. }
            | Self::UnknownDefinition { index, .. }
            | Self::Forbidden { index, .. } => Some(*index),
            _ => None,
        }
    }
}

impl From<tracker_core::Error> for ApiError {
    fn from(error: tracker_core::Error) -> Self {
        use tracker_core::Error as E;
        match error {
            E::InvalidPayload(m) => Self::InvalidPayload(m),
            E::PayloadTooLarge(m) => Self::PayloadTooLarge(m),
            E::Event {
                index,
                source: EventError::Invalid(m),
            } => Self::InvalidEvent {
                index,
                message: format!("element {index}: {m}"),
            },
            E::Event {
                index,
                source: EventError::UnknownDefinition(m),
            } => Self::UnknownDefinition {
                index,
                message: format!("element {index}: {m}"),
            },
            E::Event {
                index,
                source: EventError::Forbidden(m),
            } => Self::Forbidden {
                index,
                message: format!("element {index}: {m}"),
            },
            E::Refused(detail) => Self::Internal(detail),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        Self::InvalidPayload(format!("the path is not valid: {}", rejection.body_text()))
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        Self::InvalidPayload(rejection.body_text())
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
        use axum::extract::rejection::JsonRejection as J;
        match rejection {
            J::MissingJsonContentType(_) => {
                Self::InvalidPayload("send Content-Type: application/json".into())
            }
            J::BytesRejection(bytes) => Self::InvalidPayload(bytes.body_text()),
            other => Self::InvalidPayload(other.body_text()),
        }
    }
}

/// Whole seconds to wait, at least one (`Retry-After` takes whole seconds).
fn retry_after_secs(wait: std::time::Duration) -> u64 {
    let rounded_up = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    rounded_up.max(1)
}

impl ApiError {
    /// The envelope's JSON, for answers written below axum (the serve loop).
    pub fn envelope_json(&self) -> Vec<u8> {
        let (code, _) = self.code_and_status();
        serde_json::to_vec(&Envelope {
            error: Body {
                code,
                message: self.to_string(),
                index: self.index(),
            },
        })
        .unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, status) = self.code_and_status();
        if let Self::Unavailable(detail) | Self::Internal(detail) = &self {
            tracing::error!(?detail, code = code.as_str(), "request failed in the store");
        } else {
            // Messages quote client text (names, origins): `?` escapes newlines and control
            // characters, so that they cannot forge a log line.
            tracing::debug!(code = code.as_str(), error = ?self.to_string(), "request refused");
        }
        let body = Envelope {
            error: Body {
                code,
                message: self.to_string(),
                index: self.index(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Self::RateLimited(limited) = &self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after_secs(limited.retry_after)),
            );
        }
        response
    }
}
