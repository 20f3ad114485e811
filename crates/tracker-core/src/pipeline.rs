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
    body::Limits, definitions::Definitions, event::TrackedEvent, ids::ContactId, processors,
    session::Interaction, Error, EventError,
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
    /// The visitor's live interaction the batch continues (`None`: the batch opens a visit);
    /// its `contact_id` is the visitor's contact.
    pub interaction: Option<&'a Interaction>,
    /// Whose word identifies a visitor in this batch (the caller's key, the configuration).
    pub identification: crate::processors::IdentificationTrust<'a>,
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

    /// The visitor's live interaction this batch continues (`None`: the batch opens a new
    /// visit), as it stood before the batch: its running totals, campaign, current page.
    pub fn interaction(&self) -> Option<&'a Interaction> {
        self.context.interaction
    }

    /// The visitor's contact, when the visitor has a live interaction (a new visit's contact
    /// is settled when it is stored).
    pub fn contact(&self) -> Option<ContactId> {
        self.context.interaction.map(|i| i.contact_id)
    }

    /// The definitions ids resolve against.
    pub fn definitions(&self) -> &'a Definitions {
        self.context.definitions
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
///
/// A processor looks at each element that no earlier processor tracked: it passes (does
/// nothing: not its kind), tracks it ([`TrackEventArgs::track`]), or reports an error
/// ([`TrackEventArgs::report_error`], which fails the whole batch, atomically). Typed
/// processors deserialise the element with [`crate::processors::typed`] or
/// [`crate::processors::dispatch`], and resolve definitions through
/// [`TrackEventArgs::context`].
pub trait Processor: Send + Sync + std::fmt::Debug {
    /// The name configuration refers to it by.
    fn name(&self) -> &str;

    /// The element keys that make an element this processor's (`goalId` for goals). The
    /// pipeline refuses two processors claiming one key, and the body parser knows an event
    /// object from a request wrapper by them: a new kind of element needs no other list.
    fn claims(&self) -> Vec<String> {
        Vec::new()
    }

    /// Passes, tracks, or reports an error for one element.
    fn track_event(&self, args: &mut TrackEventArgs<'_>);
}

/// A processor under another name (a configured processor of a built-in type).
#[derive(Debug)]
pub struct Named {
    name: String,
    inner: Arc<dyn Processor>,
}

impl Named {
    /// `inner`, called `name`.
    pub fn new(name: impl Into<String>, inner: Arc<dyn Processor>) -> Self {
        Self {
            name: name.into(),
            inner,
        }
    }
}

impl Processor for Named {
    fn name(&self) -> &str {
        &self.name
    }

    fn claims(&self) -> Vec<String> {
        self.inner.claims()
    }

    fn track_event(&self, args: &mut TrackEventArgs<'_>) {
        self.inner.track_event(args);
    }
}

/// A configured processor's own settings: every key of its entry besides `name`, `type`,
/// `before` and `after`.
pub type ProcessorSettings = serde_json::Map<String, Value>;

/// Builds processors of one type from their settings, as vector's component configs build
/// components: the built-in types and any a program registers are configured the same way.
pub trait ProcessorType: Send + Sync {
    /// The `type` configuration names it by.
    fn type_name(&self) -> &str;

    /// A processor called `name` from its settings. The message of an error names the key at
    /// fault (the caller adds the file).
    fn build(&self, name: &str, settings: &ProcessorSettings)
        -> Result<Arc<dyn Processor>, String>;
}

/// Deserialises a processor's settings into its typed configuration (use
/// `#[serde(deny_unknown_fields)]` on it, so that a misspelt key is an error).
pub fn settings<T: serde::de::DeserializeOwned>(settings: &ProcessorSettings) -> Result<T, String> {
    T::deserialize(Value::Object(settings.clone())).map_err(|e| e.to_string())
}

/// A processor type with no settings, built by a function.
pub struct Unconfigured {
    type_name: &'static str,
    make: fn() -> Arc<dyn Processor>,
}

impl Unconfigured {
    /// The type `type_name`, whose processors `make` builds.
    pub const fn new(type_name: &'static str, make: fn() -> Arc<dyn Processor>) -> Self {
        Self { type_name, make }
    }
}

impl ProcessorType for Unconfigured {
    fn type_name(&self) -> &str {
        self.type_name
    }

    fn build(
        &self,
        name: &str,
        settings: &ProcessorSettings,
    ) -> Result<Arc<dyn Processor>, String> {
        if let Some(key) = settings.keys().next() {
            return Err(format!(
                "unknown key '{key}': type '{}' has no settings",
                self.type_name
            ));
        }
        let processor = (self.make)();
        Ok(if processor.name() == name {
            processor
        } else {
            Arc::new(Named::new(name, processor))
        })
    }
}

/// The processor types configuration can name: the built-ins, and those a program registers.
#[derive(Clone, Default)]
pub struct ProcessorTypes {
    types: std::collections::BTreeMap<String, Arc<dyn ProcessorType>>,
}

impl std::fmt::Debug for ProcessorTypes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.types.keys()).finish()
    }
}

impl ProcessorTypes {
    /// The built-in types: the five defaults (`page_event`, `goal`, `outcome`, `campaign`,
    /// `page_view`), `sc_camp` (the query string's campaign) and `map`.
    pub fn builtin() -> Self {
        let mut types = Self::default();
        for processor_type in processors::builtin_types() {
            types.register(processor_type);
        }
        types
    }

    /// Adds a type (replacing one of the same name).
    pub fn register(&mut self, processor_type: Arc<dyn ProcessorType>) {
        self.types
            .insert(processor_type.type_name().to_string(), processor_type);
    }

    /// The registered type names.
    pub fn names(&self) -> Vec<&str> {
        self.types.keys().map(String::as_str).collect()
    }

    /// A processor of type `type_name`, called `name`, from its settings.
    pub fn build(
        &self,
        name: &str,
        type_name: &str,
        settings: &ProcessorSettings,
    ) -> Result<Arc<dyn Processor>, String> {
        let processor_type = self.types.get(type_name).ok_or_else(|| {
            format!(
                "unknown processor type '{type_name}' (have: {})",
                self.names().join(", ")
            )
        })?;
        processor_type.build(name, settings)
    }
}

/// The ordered list of processors.
#[derive(Debug, Clone)]
pub struct Pipeline {
    processors: Vec<Arc<dyn Processor>>,
    /// What the processors claim, gathered once.
    event_keys: Vec<String>,
}

impl Pipeline {
    /// The processors' names, in execution order.
    pub fn names(&self) -> Vec<&str> {
        self.processors.iter().map(|p| p.name()).collect()
    }

    /// Every element key a processor claims (see [`Processor::claims`]).
    pub fn event_keys(&self) -> &[String] {
        &self.event_keys
    }

    /// Runs every element through the processors, in order. The batch is atomic: the first
    /// element that fails fails it, with that element's index.
    pub fn run(
        &self,
        elements: &[Value],
        context: &BatchContext<'_>,
    ) -> Result<Vec<TrackedEvent>, Error> {
        let mut out = Vec::with_capacity(elements.len());
        // Each one may merge two contacts in the store: one a batch, so that a batch cannot
        // take a thousand strangers' contacts at once.
        let mut identifications = 0usize;
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
            if args
                .tracked
                .iter()
                .any(|e| e.kind == crate::event::EventKind::Identification)
            {
                identifications += 1;
                if identifications > 1 {
                    return Err(fail(EventError::Invalid(
                        "a batch may identify the visitor once: this is its second \
                         identification element"
                            .into(),
                    )));
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

    /// The processors so far, in order.
    pub fn names(&self) -> Vec<&str> {
        self.processors.iter().map(|p| p.name()).collect()
    }

    /// Two processors that claim one element key, if any: `(key, first, second)`.
    pub fn conflict(&self) -> Option<(String, String, String)> {
        let mut owners: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
        for processor in &self.processors {
            for key in processor.claims() {
                if let Some(first) = owners.get(&key) {
                    return Some((key, (*first).to_string(), processor.name().to_string()));
                }
                owners.insert(key, processor.name());
            }
        }
        None
    }

    /// Whether a processor is called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.processors.iter().any(|p| p.name() == name)
    }

    /// Inserts a processor after the one named `after`.
    pub fn insert_after(
        mut self,
        after: &str,
        processor: Arc<dyn Processor>,
    ) -> Result<Self, Error> {
        let at = self.position(after)?;
        self.processors.insert(at + 1, processor);
        Ok(self)
    }

    /// The default processors: page event, goal, outcome, campaign, page view, then the query
    /// string's campaign (`sc_camp`).
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
            event_keys: self.processors.iter().flat_map(|p| p.claims()).collect(),
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
            interaction: None,
            identification: Default::default(),
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

    fn map_settings() -> ProcessorSettings {
        let Value::Object(settings) = json!({
            "match": "downloadId", "as": "page_event", "definition": "Download",
            "data": "fileName", "data_key": "downloadId"
        }) else {
            unreachable!()
        };
        settings
    }

    #[test]
    fn a_map_processor_from_settings_tracks_its_elements() {
        let types = ProcessorTypes::builtin();
        let map = types
            .build("download_links", "map", &map_settings())
            .expect("builds");
        let pipeline = PipelineBuilder::with_defaults()
            .insert_after("page_event", map)
            .expect("page_event exists")
            .build();
        assert_eq!(pipeline.names()[1], "download_links");
        assert!(pipeline.event_keys().contains(&"downloadId".to_string()));
        let events = run(
            &pipeline,
            json!([{"downloadId": "wp-7", "fileName": "wp.pdf", "lang": "en"}]),
        )
        .expect("tracked");
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.kind, EventKind::PageEvent);
        assert_eq!(
            event.definition.as_ref().map(|d| d.name.as_str()),
            Some("Download")
        );
        assert_eq!(event.data.as_deref(), Some("wp.pdf"));
        assert_eq!(event.data_key.as_deref(), Some("wp-7"));
        assert_eq!(
            event.custom.get("lang"),
            Some(&json!("en")),
            "the rest kept as custom values"
        );
    }

    #[test]
    fn processor_settings_are_checked_when_built() {
        let types = ProcessorTypes::builtin();
        let mut unknown_key = map_settings();
        unknown_key.insert("colour".into(), json!("red"));
        let error = types
            .build("x", "map", &unknown_key)
            .expect_err("unknown key");
        assert!(error.contains("colour"), "{error}");
        let mut wrong_type = map_settings();
        wrong_type.insert("as".into(), json!(7));
        assert!(types.build("x", "map", &wrong_type).is_err());
        let error = types
            .build("x", "teleport", &map_settings())
            .expect_err("unknown type");
        assert!(
            error.contains("unknown processor type 'teleport'"),
            "{error}"
        );
        let error = types
            .build("g2", "goal", &map_settings())
            .expect_err("goal takes no settings");
        assert!(error.contains("no settings"), "{error}");
        let goal = types
            .build("g2", "goal", &ProcessorSettings::new())
            .expect("builds");
        assert_eq!(goal.name(), "g2");
    }

    #[test]
    fn two_processors_claiming_one_field_are_found() {
        let types = ProcessorTypes::builtin();
        let mut settings = map_settings();
        settings.insert("match".into(), json!("goalId"));
        let builder = PipelineBuilder::with_defaults().push(
            types
                .build("goals_again", "map", &settings)
                .expect("builds"),
        );
        assert_eq!(
            builder.conflict(),
            Some(("goalId".into(), "goal".into(), "goals_again".into()))
        );
        assert_eq!(PipelineBuilder::with_defaults().conflict(), None);
    }

    #[test]
    fn the_query_string_campaign_is_tracked_or_ignored_never_an_error() {
        let pipeline = PipelineBuilder::with_defaults().build();
        let events = run(&pipeline, json!([{"sc_camp": "Test Campaign"}])).expect("tracked");
        assert_eq!(events[0].kind, EventKind::Campaign);
        let events = run(&pipeline, json!([{"sc_camp": "No Such Campaign"}])).expect("ignored");
        assert!(events.is_empty());
    }

    /// Tags each goal with the contact and the visit's page views so far.
    #[derive(Debug)]
    struct Contextual;
    impl Processor for Contextual {
        fn name(&self) -> &str {
            "contextual"
        }
        fn track_event(&self, args: &mut TrackEventArgs<'_>) {
            if args.element().get("goalId").is_some() {
                let mut event = TrackedEvent::new(EventKind::PageEvent);
                event.text = Some(match (args.contact(), args.interaction()) {
                    (Some(contact), Some(live)) => {
                        format!("{contact} after {} pages", live.page_view_count)
                    }
                    _ => "new visit".into(),
                });
                args.track(event);
            }
        }
    }

    #[test]
    fn processors_see_the_live_interaction_and_its_contact() {
        use crate::{
            ids::{ContactId, DeviceId, SessionId},
            session::{Interaction, Opening},
        };
        let pipeline = PipelineBuilder::new().push(Arc::new(Contextual)).build();
        let definitions = Definitions::defaults();
        let limits = Limits::default();
        let now = Utc::now();
        let contact = ContactId::new_random();
        let mut live = Interaction::open(
            Opening {
                contact_id: contact,
                device_id: DeviceId::new_random(),
                session_id: SessionId::new_random(),
                site_name: None,
                user_agent: None,
            },
            now,
        );
        live.record(vec![TrackedEvent::new(EventKind::PageView)], now);
        let mut context = BatchContext {
            definitions: &definitions,
            now,
            max_clock_skew: Duration::minutes(2),
            limits: &limits,
            interaction: Some(&live),
            identification: Default::default(),
        };
        let element = [json!({"goalId": "Register"})];
        let events = pipeline.run(&element, &context).expect("tracked");
        assert_eq!(events[0].text, Some(format!("{contact} after 1 pages")));
        context.interaction = None;
        let events = pipeline.run(&element, &context).expect("tracked");
        assert_eq!(events[0].text.as_deref(), Some("new visit"));
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
