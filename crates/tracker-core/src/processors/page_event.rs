//! `{ eventId }`: a page event (or a goal, when the id names one).

use serde::Deserialize;

use super::{dispatch, triggered, EventFields};
use crate::{
    definitions::DefinitionKind,
    pipeline::{Processor, TrackEventArgs},
};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    event_id: String,
    #[serde(flatten)]
    fields: EventFields,
}

/// Tracks page events.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageEventProcessor;

impl Processor for PageEventProcessor {
    fn name(&self) -> &str {
        "page_event"
    }

    fn claims(&self) -> Vec<String> {
        vec!["eventId".into()]
    }

    fn track_event(&self, args: &mut TrackEventArgs<'_>) {
        dispatch(args, "eventId", |input: Input, args| {
            let mut event = triggered(args, DefinitionKind::PageEvent, &input.event_id)?;
            input.fields.apply(&mut event, args)?;
            Ok(event)
        });
    }
}
