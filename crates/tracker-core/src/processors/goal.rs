//! `{ goalId }`: a goal.

use serde::Deserialize;

use super::{dispatch, triggered, EventFields};
use crate::{
    definitions::DefinitionKind,
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

    fn claims(&self) -> Vec<String> {
        vec!["goalId".into()]
    }

    fn track_event(&self, args: &mut TrackEventArgs<'_>) {
        dispatch(args, "goalId", |input: Input, args| {
            let mut event = triggered(args, DefinitionKind::Goal, &input.goal_id)?;
            input.fields.apply(&mut event, args)?;
            Ok(event)
        });
    }
}
