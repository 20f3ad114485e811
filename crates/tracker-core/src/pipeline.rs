//! The ordered `trackEvent` pipeline (wire contract, section 8).
//!
//! Each element of a batch is offered to the processors in order. A processor either passes (the
//! element is not its kind), tracks it ([`TrackEventArgs::has_been_tracked`], which ends that
//! element's pipeline), or reports an error ([`TrackEventArgs::report_error`], which fails the
//! whole batch). These are the semantics of Sitecore's `TrackEvent<T>` processors.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::{
    body::Limits, definitions::Definitions, event::TrackedEvent, processors, Error, EventError,
};

/// What every processor of one batch sees.
#[derive(Debug, Clone, Copy)]
pub struct BatchContext<'a> {
    /// The definitions ids resolve against.
    pub definitions: &'a Definitions,
    /// The time of receipt.
    pub now: DateTime<Utc>,
    /// How far in the future a client's `timestamp` may be.
    pub max_clock_skew: Duration,
    /// The configured limits.
    pub limits: &'a Limits,
}

#[derive(Debug)]
enum State {
    Open,
    Tracked,
    Failed(EventError),
}

/// One element on its way through the pipeline, and what the processors made of it.
#[derive(Debug)]
pub struct TrackEventArgs<'a> {
    element: &'a Value,
    context: &'a BatchContext<'a>,
    tracked: Vec<TrackedEvent>,
    state: State,
}

impl<'a> TrackEventArgs<'a> {
    /// The element as sent.
    pub fn element(&self) -> &'a Value {
        self.element
    }

    /// The batch's context.
    pub fn context(&self) -> &'a BatchContext<'a> {
        self.context
    }

    /// Records an event for this element and ends its pipeline.
    pub fn track(&mut self, event: TrackedEvent) {
        self.tracked.push(event);
        self.has_been_tracked();
    }

    /// Records an extra event without ending the pipeline (for processors that enrich).
    pub fn add(&mut self, event: TrackedEvent) {
        self.tracked.push(event);
    }

    /// Marks the element as handled: no later processor sees it.
    pub fn has_been_tracked(&mut self) {
        if matches!(self.state, State::Open) {
            self.state = State::Tracked;
        }
    }

    /// Marks the element as failed: the whole batch is rejected with this error.
    pub fn report_error(&mut self, error: EventError) {
        self.state = State::Failed(error);
    }

    /// Whether the element's pipeline has ended.
    pub fn is_aborted(&self) -> bool {
        !matches!(self.state, State::Open)
    }
}

/// A step of the pipeline.
pub trait Processor: Send + Sync + std::fmt::Debug {
    /// The name configuration refers to it by.
    fn name(&self) -> &str;

    /// Passes, tracks, or reports an error for one element.
    fn track_event(&self, args: &mut TrackEventArgs<'_>);
}

/// The ordered list of processors.
#[derive(Debug, Clone)]
pub struct Pipeline {
    processors: Vec<Arc<dyn Processor>>,
}

impl Pipeline {
    /// The processors' names, in execution order.
    pub fn names(&self) -> Vec<&str> {
        self.processors.iter().map(|p| p.name()).collect()
    }

    /// Runs every element through the processors, in order. The batch is atomic: the first
    /// element that fails fails it, with that element's index.
    pub fn run(
        &self,
        elements: &[Value],
        context: &BatchContext<'_>,
    ) -> Result<Vec<TrackedEvent>, Error> {
        let mut out = Vec::with_capacity(elements.len());
        for (index, element) in elements.iter().enumerate() {
            let fail = |source| Error::Event { index, source };
            check_element(element, context.limits).map_err(fail)?;
            let mut args = TrackEventArgs {
                element,
                context,
                tracked: Vec::new(),
                state: State::Open,
            };
            for processor in &self.processors {
                processor.track_event(&mut args);
                if args.is_aborted() {
                    break;
                }
            }
            match args.state {
                State::Tracked => out.append(&mut args.tracked),
                State::Failed(error) => return Err(fail(error)),
                State::Open => {
                    return Err(fail(EventError::Invalid(
                        "no processor accepts this element: it needs one of eventId, goalId, \
                         outcomeId, campaignId, or pageId with url"
                            .into(),
                    )))
                }
            }
        }
        Ok(out)
    }
}

/// Checks that apply to every element whatever its kind: it is an object, strings are bounded.
fn check_element(element: &Value, limits: &Limits) -> Result<(), EventError> {
    let Value::Object(_) = element else {
        return Err(EventError::Invalid(format!(
            "an event must be a JSON object, not {}",
            crate::body::json_type(element)
        )));
    };
    check_strings(element, limits.max_string_bytes)
}

fn check_strings(value: &Value, max: usize) -> Result<(), EventError> {
    match value {
        Value::String(s) if s.len() > max => Err(EventError::Invalid(format!(
            "a string is {} bytes; the limit is {max}",
            s.len()
        ))),
        Value::Array(items) => items.iter().try_for_each(|v| check_strings(v, max)),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            if k.len() > max {
                return Err(EventError::Invalid(format!(
                    "a key is longer than {max} bytes"
                )));
            }
            check_strings(v, max)
        }),
        _ => Ok(()),
    }
}

/// Builds a pipeline. Registration order is execution order; configuration can reorder, remove,
/// replace or insert processors by name.
#[derive(Debug, Clone, Default)]
pub struct PipelineBuilder {
    processors: Vec<Arc<dyn Processor>>,
}

impl PipelineBuilder {
    /// An empty pipeline.
    pub fn new() -> Self {
        Self::default()
    }

    /// The five default processors: page event, goal, outcome, campaign, page view.
    pub fn with_defaults() -> Self {
        let mut builder = Self::new();
        for processor in processors::defaults() {
            builder = builder.push(processor);
        }
        builder
    }

    fn position(&self, name: &str) -> Result<usize, Error> {
        self.processors
            .iter()
            .position(|p| p.name() == name)
            .ok_or_else(|| {
                Error::Pipeline(format!(
                    "no processor named '{name}' (have: {})",
                    self.processors
                        .iter()
                        .map(|p| p.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    /// Appends a processor.
    pub fn push(mut self, processor: Arc<dyn Processor>) -> Self {
        self.processors.push(processor);
        self
    }

    /// Inserts a processor before the one named `before`.
    pub fn insert_before(
        mut self,
        before: &str,
        processor: Arc<dyn Processor>,
    ) -> Result<Self, Error> {
        let at = self.position(before)?;
        self.processors.insert(at, processor);
        Ok(self)
    }

    /// Removes the processor named `name`.
    pub fn remove(mut self, name: &str) -> Result<Self, Error> {
        let at = self.position(name)?;
        self.processors.remove(at);
        Ok(self)
    }

    /// Replaces the processor named `name`.
    pub fn replace(mut self, name: &str, processor: Arc<dyn Processor>) -> Result<Self, Error> {
        let at = self.position(name)?;
        self.processors[at] = processor;
        Ok(self)
    }

    /// Keeps exactly the processors named in `order`, in that order.
    pub fn order(self, order: &[String]) -> Result<Self, Error> {
        let mut processors = Vec::with_capacity(order.len());
        for name in order {
            processors.push(self.processors[self.position(name)?].clone());
        }
        Ok(Self { processors })
    }

    /// The finished pipeline.
    pub fn build(self) -> Pipeline {
        Pipeline {
            processors: self.processors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;
    use serde_json::json;

    fn run(pipeline: &Pipeline, batch: Value) -> Result<Vec<TrackedEvent>, Error> {
        let definitions = Definitions::defaults();
        let limits = Limits::default();
        let context = BatchContext {
            definitions: &definitions,
            now: Utc::now(),
            max_clock_skew: Duration::minutes(2),
            limits: &limits,
        };
        let Value::Array(elements) = batch else {
            panic!("test batches are arrays")
        };
        pipeline.run(&elements, &context)
    }

    #[test]
    fn default_pipeline_tracks_the_five_kinds_in_order() {
        let pipeline = PipelineBuilder::with_defaults().build();
        let events = run(
            &pipeline,
            json!([
                {"pageId": "{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}", "url": "/"},
                {"eventId": "Download"},
                {"goalId": "Instant Demo"},
                {"outcomeId": "Opportunity", "monetaryValue": "10.50", "currencyCode": "EUR"},
                {"campaignId": "Test Campaign"}
            ]),
        )
        .expect("valid batch");
        let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::PageView,
                EventKind::PageEvent,
                EventKind::Goal,
                EventKind::Outcome,
                EventKind::Campaign
            ]
        );
        assert_eq!(
            events[3].monetary_value.map(|d| d.to_string()).as_deref(),
            Some("10.50")
        );
    }

    #[test]
    fn an_element_no_processor_accepts_fails_the_batch_with_its_index() {
        let pipeline = PipelineBuilder::with_defaults().build();
        let err = run(&pipeline, json!([{"goalId": "Register"}, {"hello": 1}])).expect_err("fails");
        assert!(
            matches!(
                err,
                Error::Event {
                    index: 1,
                    source: EventError::Invalid(_)
                }
            ),
            "{err:?}"
        );
        let err = run(&pipeline, json!([{"goalId": "Regster"}])).expect_err("unknown");
        assert!(matches!(
            err,
            Error::Event {
                index: 0,
                source: EventError::UnknownDefinition(_)
            }
        ));
        let err = run(&pipeline, json!([[1, 2]])).expect_err("not an object");
        assert!(matches!(err, Error::Event { index: 0, .. }));
    }

    #[derive(Debug)]
    struct Shout;
    impl Processor for Shout {
        fn name(&self) -> &str {
            "shout"
        }
        fn track_event(&self, args: &mut TrackEventArgs<'_>) {
            if args.element().get("goalId").is_some() {
                let mut event = TrackedEvent::new(EventKind::PageEvent);
                event.text = Some("intercepted".into());
                args.track(event);
            }
        }
    }

    #[test]
    fn processors_can_be_inserted_removed_and_reordered_by_name() {
        let pipeline = PipelineBuilder::with_defaults()
            .insert_before("goal", Arc::new(Shout))
            .expect("goal exists")
            .build();
        let events = run(&pipeline, json!([{"goalId": "Register"}])).expect("tracked");
        assert_eq!(events[0].text.as_deref(), Some("intercepted"));

        let pipeline = PipelineBuilder::with_defaults()
            .remove("goal")
            .expect("goal exists")
            .build();
        assert!(run(&pipeline, json!([{"goalId": "Register"}])).is_err());

        let names = ["page_view".to_string(), "goal".to_string()];
        let pipeline = PipelineBuilder::with_defaults()
            .order(&names)
            .expect("known")
            .build();
        assert_eq!(pipeline.names(), ["page_view", "goal"]);
        assert!(PipelineBuilder::with_defaults().remove("nope").is_err());
    }

    #[test]
    fn long_strings_are_refused() {
        let pipeline = PipelineBuilder::with_defaults().build();
        let long = "x".repeat(5000);
        let err =
            run(&pipeline, json!([{"goalId": "Register", "text": long}])).expect_err("too long");
        assert!(matches!(
            err,
            Error::Event {
                index: 0,
                source: EventError::Invalid(_)
            }
        ));
    }
}
