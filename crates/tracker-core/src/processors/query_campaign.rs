//! `sc_camp` on the query string: the campaign of a marketing link. The server hands it to the
//! pipeline as an element of its own, `{"sc_camp": "<GUID or name>"}`, so that it is tracked
//! like every other trigger and can be replaced or removed by configuration (without this
//! processor, `sc_camp` is ignored). As in Sitecore, a campaign it does not name is ignored,
//! never an error: a stale link must not cost the visit's data.

use crate::{
    definitions::DefinitionKind,
    pipeline::{Processor, TrackEventArgs},
};

use super::triggered;

/// The element key the server puts `sc_camp`'s value under.
pub const QUERY_CAMPAIGN_KEY: &str = "sc_camp";

/// Tracks the query string's campaign.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueryCampaignProcessor;

impl Processor for QueryCampaignProcessor {
    fn name(&self) -> &str {
        "sc_camp"
    }

    fn claims(&self) -> Vec<String> {
        vec![QUERY_CAMPAIGN_KEY.into()]
    }

    fn track_event(&self, args: &mut TrackEventArgs<'_>) {
        let Some(raw) = args.element().get(QUERY_CAMPAIGN_KEY) else {
            return;
        };
        let Some(raw) = raw.as_str() else {
            args.has_been_tracked();
            return;
        };
        match triggered(args, DefinitionKind::Campaign, raw) {
            Ok(event) => args.track(event),
            // Ignored, tracking nothing (the server logs that it named no campaign).
            Err(_) => args.has_been_tracked(),
        }
    }
}
