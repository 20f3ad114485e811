//! `{ goalId }`: a goal.

use serde::Deserialize;

use super::{dispatch, EventFields};
use crate::{
    definitions::DefinitionKind,
    event::{EventKind, TrackedEvent},
    pipeline::{Processor, TrackEventArgs},
};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    goal_id: String,
    #[serde(flatten)]
    fields: EventFields,
}

/// Tracks goals.
#[derive(Debug, Clone, Copy, Default)]
pub struct GoalProcessor;

impl Processor for GoalProcessor {
    fn name(&self) -> &str {
        "goal"
    }

    fn track_event(&self, args: &mut TrackEventArgs<'_>) {
        dispatch(args, "goalId", |input: Input, args| {
            let resolved = args
                .context()
                .definitions
                .resolve(DefinitionKind::Goal, &input.goal_id)?;
            let mut event = TrackedEvent::new(EventKind::Goal);
            event.definition = Some(resolved.definition.into());
            input.fields.apply(&mut event, args)?;
            Ok(event)
        });
    }
}
