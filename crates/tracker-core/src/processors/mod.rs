//! The five default processors of the `trackEvent` pipeline, and the typed helper they share.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{
    definitions::DefinitionKind,
    event::{parse_timestamp, EventKind, TrackedEvent},
    pipeline::{Processor, TrackEventArgs},
    EventError,
};

mod campaign;
mod goal;
mod outcome;
mod page_event;
mod page_view;

pub use campaign::CampaignProcessor;
pub use goal::GoalProcessor;
pub use outcome::OutcomeProcessor;
pub use page_event::PageEventProcessor;
pub use page_view::PageViewProcessor;

/// The default processors, in their default order.
pub fn defaults() -> Vec<Arc<dyn Processor>> {
    vec![
        Arc::new(PageEventProcessor),
        Arc::new(GoalProcessor),
        Arc::new(OutcomeProcessor),
        Arc::new(CampaignProcessor),
        Arc::new(PageViewProcessor),
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

/// Runs a typed processor body: `None` passes, `Ok` tracks, `Err` reports the error.
pub(crate) fn dispatch<T: DeserializeOwned>(
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

/// The optional fields page events and goals share, and everything else as custom values.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventFields {
    data: Option<String>,
    data_key: Option<String>,
    text: Option<String>,
    value: Option<f64>,
    timestamp: Option<Value>,
    #[serde(flatten)]
    custom: Map<String, Value>,
}

impl EventFields {
    pub(crate) fn apply(
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

/// Sets the timestamp and custom values every kind may carry.
pub(crate) fn apply_common(
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
