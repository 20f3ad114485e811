//! The five default processors of the `trackEvent` pipeline, and the typed helper they share.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{
    definitions::DefinitionKind,
    event::{parse_timestamp, EventKind, TrackedEvent},
    pipeline::{Processor, ProcessorType, TrackEventArgs, Unconfigured},
    EventError,
};

mod campaign;
mod goal;
mod identify;
mod map;
mod outcome;
mod page_event;
mod page_view;
mod query_campaign;

pub use campaign::CampaignProcessor;
pub use goal::GoalProcessor;
pub use identify::{
    normalise_identifier, sign_identification, IdentificationTrust, IdentifyProcessor,
    IDENTIFIER_KEY,
};
pub use map::{MapAs, MapProcessor, MapSettings, MapType};
pub use outcome::OutcomeProcessor;
pub use page_event::PageEventProcessor;
pub use page_view::PageViewProcessor;
pub use query_campaign::{QueryCampaignProcessor, QUERY_CAMPAIGN_KEY};

/// The default processors, in their default order.
pub fn defaults() -> Vec<Arc<dyn Processor>> {
    vec![
        Arc::new(PageEventProcessor),
        Arc::new(GoalProcessor),
        Arc::new(OutcomeProcessor),
        Arc::new(CampaignProcessor),
        Arc::new(PageViewProcessor),
        Arc::new(IdentifyProcessor),
        Arc::new(QueryCampaignProcessor),
    ]
}

/// The built-in processor types: one per default processor (named like it), and `map`.
pub fn builtin_types() -> Vec<Arc<dyn ProcessorType>> {
    vec![
        Arc::new(Unconfigured::new("page_event", || {
            Arc::new(PageEventProcessor)
        })),
        Arc::new(Unconfigured::new("goal", || Arc::new(GoalProcessor))),
        Arc::new(Unconfigured::new("outcome", || Arc::new(OutcomeProcessor))),
        Arc::new(Unconfigured::new("campaign", || {
            Arc::new(CampaignProcessor)
        })),
        Arc::new(Unconfigured::new("page_view", || {
            Arc::new(PageViewProcessor)
        })),
        Arc::new(Unconfigured::new("sc_camp", || {
            Arc::new(QueryCampaignProcessor)
        })),
        Arc::new(MapType),
    ]
}

/// Deserialises the element into a processor's input type `T`, the way Sitecore's
/// `TrackEvent<T>` does. An element without the `discriminator` key is "not mine" (`None`); one
/// with it that does not deserialise is that processor's error, so the message can be specific.
pub fn typed<T: DeserializeOwned>(
    args: &TrackEventArgs<'_>,
    discriminator: &str,
) -> Option<Result<T, EventError>> {
    let element = args.element();
    element.get(discriminator)?;
    Some(T::deserialize(element).map_err(|e| EventError::Invalid(e.to_string())))
}

/// Runs a typed processor body: `None` passes (the element has no `discriminator` key),
/// `Ok` tracks the event built, `Err` reports the error (failing the batch).
pub fn dispatch<T: DeserializeOwned>(
    args: &mut TrackEventArgs<'_>,
    discriminator: &str,
    build: impl FnOnce(T, &TrackEventArgs<'_>) -> Result<TrackedEvent, EventError>,
) {
    match typed::<T>(args, discriminator) {
        None => {}
        Some(Err(error)) => args.report_error(error),
        Some(Ok(input)) => match build(input, args) {
            Ok(event) => args.track(event),
            Err(error) => args.report_error(error),
        },
    }
}

/// Resolves `raw` as a definition of `kind` and starts the event it triggers. The event's kind
/// follows the definition found, so an `eventId` that names a goal records a goal.
pub fn triggered(
    args: &TrackEventArgs<'_>,
    kind: DefinitionKind,
    raw: &str,
) -> Result<TrackedEvent, EventError> {
    let resolved = args.context().definitions.resolve(kind, raw)?;
    let mut event = TrackedEvent::new(match resolved.kind {
        DefinitionKind::PageEvent => EventKind::PageEvent,
        DefinitionKind::Goal => EventKind::Goal,
        DefinitionKind::Outcome => EventKind::Outcome,
        DefinitionKind::Campaign => EventKind::Campaign,
    });
    event.definition = Some(resolved.definition.into());
    Ok(event)
}

/// The optional fields page events and goals share (`data`, `dataKey`, `text`, `value`,
/// `timestamp`), and every other key as custom values: flatten it into a processor's input.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventFields {
    /// `data`.
    pub data: Option<String>,
    /// `dataKey`.
    pub data_key: Option<String>,
    /// `text`.
    pub text: Option<String>,
    /// `value`.
    pub value: Option<f64>,
    /// `timestamp` (checked by [`apply_common`]).
    pub timestamp: Option<Value>,
    /// Every other key.
    #[serde(flatten)]
    pub custom: Map<String, Value>,
}

impl EventFields {
    /// Sets these fields on `event`, checking the timestamp and the custom values' limits.
    pub fn apply(
        self,
        event: &mut TrackedEvent,
        args: &TrackEventArgs<'_>,
    ) -> Result<(), EventError> {
        event.data = self.data;
        event.data_key = self.data_key;
        event.text = self.text;
        event.value = self.value;
        apply_common(event, self.timestamp, self.custom, args)
    }
}

/// Sets the timestamp and custom values every kind may carry, within the batch's limits.
pub fn apply_common(
    event: &mut TrackedEvent,
    timestamp: Option<Value>,
    custom: Map<String, Value>,
    args: &TrackEventArgs<'_>,
) -> Result<(), EventError> {
    let context = args.context();
    if let Some(raw) = timestamp.filter(|v| !v.is_null()) {
        event.timestamp = Some(parse_timestamp(
            &raw,
            context.now,
            context.max_clock_skew,
            context.limits.earliest_timestamp,
        )?);
    }
    let max = context.limits.max_custom_values;
    if custom.len() > max {
        return Err(EventError::Invalid(format!(
            "{} custom values; the limit is {max}",
            custom.len()
        )));
    }
    event.custom = custom;
    Ok(())
}
