//! The admin JSON API, `/api/v1/...`: every route requires `Authorization: Bearer <admin.token>`.

use axum::{extract::FromRequestParts, http::request::Parts};
use secrecy::ExposeSecret;

use crate::{error::ApiError, state::AppState};

pub mod contacts;
pub mod dashboard;
pub mod definitions;
pub mod interactions;

/// Proof that the request carries the admin token.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = &state.settings().admin.token else {
            return Err(ApiError::Unauthorized);
        };
        let sent = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match sent {
            Some(sent) if constant_time_eq(sent.as_bytes(), token.expose_secret().as_bytes()) => {
                Ok(Admin)
            }
            _ => Err(ApiError::Unauthorized),
        }
    }
}

/// Compares without an early exit, so response time does not leak how much of a token matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
