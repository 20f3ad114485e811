//! The tracking service: `{prefix}/event`, `{prefix}/flush`, `{prefix}/visitor` and
//! `/sitecore/api/track/pageview`.

use axum::body::{Body, Bytes, HttpBody};

use tracker_engine::Visitor;

use crate::{edge::TrackingCaller, error::ApiError, state::AppState};

pub mod event;
pub mod flush;
pub mod identify;
pub mod pageview;
pub mod script;
pub mod visitor;

fn visitor(caller: &TrackingCaller) -> Visitor {
    Visitor {
        device: caller.device.device,
        session: caller.session,
        site: caller.site.clone(),
        user_agent: caller.user_agent.clone(),
        ip: caller.ip,
        human_cookie: caller.device.human,
        origin: caller.origin.clone(),
        referer: caller.referer.clone(),
        language: caller.language.clone(),
    }
}

/// Reads a request body within the limits: a declared length over `max_body_bytes` is refused
/// before a byte is read; the body's share of `server.max_body_buffer` is reserved while it is
/// received (its declared length, or the limit when it declares none), and when that is used up
/// the request is answered 503 at once; the whole body must arrive within
/// `server.body_timeout` (408). A body that breaks off or is malformed (a bad chunk) is 400, not
/// "too large".
pub(crate) async fn read_body(state: &AppState, body: Body) -> Result<Bytes, ApiError> {
    let settings = state.settings();
    let max = settings.tracker.limits.max_body_bytes;
    let too_large =
        || ApiError::PayloadTooLarge(format!("body is larger than the limit of {max} bytes"));
    let declared = body.size_hint().exact();
    if declared.is_some_and(|len| len > max as u64) {
        return Err(too_large());
    }
    let reserve = declared
        .map_or(max, |len| len as usize)
        .div_ceil(1024)
        .max(1);
    let Ok(_reserved) = state
        .body_budget()
        .try_acquire_many(u32::try_from(reserve).unwrap_or(u32::MAX))
    else {
        metrics::counter!(crate::metrics::BODIES_REFUSED).increment(1);
        return Err(ApiError::Busy);
    };
    let timeout = settings.server.body_timeout;
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, max)).await {
        Err(_) => Err(ApiError::BodyTimeout(timeout)),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(error)) if is_length_limit(&error) => Err(too_large()),
        Ok(Err(error)) => Err(ApiError::InvalidPayload(format!(
            "the body could not be read: {error}"
        ))),
    }
}

/// Whether reading stopped because the body went over the limit.
fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = error.source();
    }
    false
}
