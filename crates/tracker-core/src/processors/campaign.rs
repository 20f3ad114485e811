//! `{ campaignId }`: a campaign trigger; it also becomes the interaction's campaign.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{apply_common, dispatch, triggered};
use crate::{
    definitions::DefinitionKind,
    pipeline::{Processor, TrackEventArgs},
};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    campaign_id: String,
    timestamp: Option<Value>,
    #[serde(flatten)]
    custom: Map<String, Value>,
}

/// Tracks campaign triggers.
#[derive(Debug, Clone, Copy, Default)]
pub struct CampaignProcessor;

impl Processor for CampaignProcessor {
    fn name(&self) -> &str {
        "campaign"
    }

    fn claims(&self) -> Vec<String> {
        vec!["campaignId".into()]
    }

    fn track_event(&self, args: &mut TrackEventArgs<'_>) {
        dispatch(args, "campaignId", |input: Input, args| {
            let mut event = triggered(args, DefinitionKind::Campaign, &input.campaign_id)?;
            apply_common(&mut event, input.timestamp, input.custom, args)?;
            Ok(event)
        });
    }
}
