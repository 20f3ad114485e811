//! `{ identifier, source }`: the visitor says who they are (a sign-in, a form). Tracked as an
//! identification event (`data` the identifier, `dataKey` its source); the store makes the
//! contact known by it, and merges the contact that already had it (see
//! `tracker_core::store::Store`). The seed's tracker "does not support identifying contacts
//! out of the box": this is ours.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{apply_common, dispatch};
use crate::{
    event::{EventKind, TrackedEvent},
    pipeline::{Processor, TrackEventArgs},
    EventError,
};

/// The element key identification claims.
pub const IDENTIFIER_KEY: &str = "identifier";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    identifier: String,
    source: Option<String>,
    timestamp: Option<Value>,
    #[serde(flatten)]
    custom: Map<String, Value>,
}

/// Tracks identifications.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdentifyProcessor;

impl Processor for IdentifyProcessor {
    fn name(&self) -> &str {
        "identify"
    }

    fn claims(&self) -> Vec<String> {
        vec![IDENTIFIER_KEY.into()]
    }

    fn track_event(&self, args: &mut TrackEventArgs<'_>) {
        dispatch(args, IDENTIFIER_KEY, |input: Input, args| {
            let identifier = input.identifier.trim();
            if identifier.is_empty() {
                return Err(EventError::Invalid("identifier is empty".into()));
            }
            let source = input.source.as_deref().map(str::trim).unwrap_or_default();
            if source.is_empty() {
                return Err(EventError::Invalid(
                    "source is required with identifier (\"email\", \"crm\", ...)".into(),
                ));
            }
            if source == "SC_ANALYTICS_GLOBAL_COOKIE" {
                return Err(EventError::Invalid(
                    "source SC_ANALYTICS_GLOBAL_COOKIE is the device cookie's own".into(),
                ));
            }
            let mut event = TrackedEvent::new(EventKind::Identification);
            event.data = Some(identifier.to_string());
            event.data_key = Some(source.to_string());
            apply_common(&mut event, input.timestamp, input.custom, args)?;
            Ok(event)
        });
    }
}
