//! `type = "map"`: tracks elements of a shape the JSS clients do not know, with no code. An
//! element that has the `match` field becomes a page event, goal or outcome of a configured
//! definition, with fields of the element copied into `data` and `dataKey`:
//!
//! ```toml
//! [[pipeline.add]]
//! name = "download_links"
//! after = "page_event"
//! type = "map"
//! match = "downloadId"      # claims elements that have this field
//! as = "page_event"         # or goal, outcome
//! definition = "Download"   # GUID or name
//! data = "fileName"         # field copied into data
//! data_key = "downloadId"   # field copied into dataKey
//! ```

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::{apply_common, triggered};
use crate::{
    definitions::DefinitionKind,
    pipeline::{settings, Processor, ProcessorSettings, ProcessorType, TrackEventArgs},
    EventError,
};

/// What a mapped element becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MapAs {
    /// A page event.
    PageEvent,
    /// A goal.
    Goal,
    /// An outcome.
    Outcome,
}

/// The `map` type's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapSettings {
    /// The field whose presence makes an element this processor's.
    #[serde(rename = "match")]
    pub match_field: String,
    /// What it becomes.
    #[serde(rename = "as")]
    pub map_as: MapAs,
    /// The definition (GUID or name) it triggers.
    pub definition: String,
    /// The element's field copied into the event's `data`.
    pub data: Option<String>,
    /// The element's field copied into the event's `dataKey`.
    pub data_key: Option<String>,
}

/// A `map` processor.
#[derive(Debug, Clone)]
pub struct MapProcessor {
    name: String,
    settings: MapSettings,
}

impl MapProcessor {
    /// A `map` processor called `name`.
    pub fn new(name: impl Into<String>, settings: MapSettings) -> Self {
        Self {
            name: name.into(),
            settings,
        }
    }

    fn kind(&self) -> DefinitionKind {
        match self.settings.map_as {
            MapAs::PageEvent => DefinitionKind::PageEvent,
            MapAs::Goal => DefinitionKind::Goal,
            MapAs::Outcome => DefinitionKind::Outcome,
        }
    }
}

/// A field's value as text (strings as they are, numbers and booleans written out).
fn text(element: &Value, field: &str) -> Result<Option<String>, EventError> {
    match element.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(value @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(value.to_string())),
        Some(_) => Err(EventError::Invalid(format!(
            "{field} must be a string, a number or a boolean"
        ))),
    }
}

impl Processor for MapProcessor {
    fn name(&self) -> &str {
        &self.name
    }

    fn claims(&self) -> Vec<String> {
        vec![self.settings.match_field.clone()]
    }

    fn track_event(&self, args: &mut TrackEventArgs<'_>) {
        let element = args.element();
        if element.get(&self.settings.match_field).is_none() {
            return;
        }
        let outcome = (|| {
            let mut event = triggered(args, self.kind(), &self.settings.definition)?;
            let mut custom = element.as_object().cloned().unwrap_or_default();
            if let Some(field) = &self.settings.data {
                event.data = text(element, field)?;
                custom.remove(field);
            }
            if let Some(field) = &self.settings.data_key {
                event.data_key = text(element, field)?;
                custom.remove(field);
            }
            custom.remove(&self.settings.match_field);
            let timestamp = custom.remove("timestamp");
            apply_common(&mut event, timestamp, custom, args)?;
            Ok(event)
        })();
        match outcome {
            Ok(event) => args.track(event),
            Err(error) => args.report_error(error),
        }
    }
}

/// The `map` processor type.
#[derive(Debug, Clone, Copy, Default)]
pub struct MapType;

impl ProcessorType for MapType {
    fn type_name(&self) -> &str {
        "map"
    }

    fn build(&self, name: &str, raw: &ProcessorSettings) -> Result<Arc<dyn Processor>, String> {
        let settings: MapSettings = settings(raw)?;
        Ok(Arc::new(MapProcessor::new(name, settings)))
    }
}
