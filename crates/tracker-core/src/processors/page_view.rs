//! `{ pageId, url }`: a page (route) view. It becomes the current page for what follows.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{apply_common, dispatch};
use crate::{
    event::{EventKind, PageInfo, TrackedEvent},
    ids::Guid,
    pipeline::{Processor, TrackEventArgs},
    EventError,
};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    page_id: String,
    url: String,
    language: Option<String>,
    item_version: Option<Value>,
    referrer: Option<String>,
    timestamp: Option<Value>,
    #[serde(flatten)]
    custom: Map<String, Value>,
}

/// Tracks page views.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageViewProcessor;

impl Processor for PageViewProcessor {
    fn name(&self) -> &str {
        "page_view"
    }

    fn claims(&self) -> Vec<String> {
        vec!["pageId".into()]
    }

    fn track_event(&self, args: &mut TrackEventArgs<'_>) {
        dispatch(args, "pageId", |input: Input, args| {
            let page_id = Guid::parse(&input.page_id).ok_or_else(|| {
                EventError::Invalid(format!("pageId '{}' is not a GUID", input.page_id))
            })?;
            let item_version = match input.item_version {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) if n.is_i64() => n.as_i64(),
                Some(Value::String(s)) => Some(s.trim().parse().map_err(|_| {
                    EventError::Invalid(format!("itemVersion '{s}' is not an integer"))
                })?),
                Some(other) => {
                    return Err(EventError::Invalid(format!(
                        "itemVersion {other} is not an integer"
                    )))
                }
            };
            if let Some(version) = item_version.filter(|v| *v < 1) {
                return Err(EventError::Invalid(format!(
                    "itemVersion {version} is below 1 (Sitecore numbers versions from 1)"
                )));
            }
            let mut event = TrackedEvent::new(EventKind::PageView);
            event.page = Some(PageInfo {
                page_id,
                url: input.url,
                language: input.language,
                item_version,
                referrer: input.referrer,
            });
            apply_common(&mut event, input.timestamp, input.custom, args)?;
            Ok(event)
        });
    }
}
