//! A `trackEvent` processor of our own, as a team extending jss-tracker would write it: video
//! progress from a player, `{"videoId": "intro", "percent": 75}`, tracked as a page event of a
//! configured definition (`Video Play` by default) with the video in `data`, the percentage in
//! `value`, and how many pages the visit had seen before in the custom value `pageViewsBefore`
//! (processors see the live interaction). A percentage outside 0–100 fails the batch
//! (atomically: nothing of it is stored).
//!
//! It is registered as a processor *type* (`video_progress`), so configuration places it like
//! any built-in:
//!
//! ```toml
//! [[pipeline.add]]
//! name = "video"
//! type = "video_progress"
//! after = "page_event"
//! definition = "Video Play"   # optional
//! ```

use std::sync::Arc;

use serde::Deserialize;
use tracker_core::{
    definitions::DefinitionKind,
    pipeline::{settings, Processor, ProcessorSettings, ProcessorType, TrackEventArgs},
    processors::{dispatch, triggered, EventFields},
    EventError,
};

/// The element, as the player sends it: the fields every event may carry come with
/// [`EventFields`] (`timestamp`, `text`, custom values...).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VideoProgress {
    video_id: String,
    percent: f64,
    #[serde(flatten)]
    fields: EventFields,
}

/// The processor's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoProgressSettings {
    /// The page event (GUID or name) progress is tracked as.
    #[serde(default = "default_definition")]
    pub definition: String,
}

fn default_definition() -> String {
    "Video Play".into()
}

/// Tracks video progress.
#[derive(Debug)]
pub struct VideoProgressProcessor {
    name: String,
    settings: VideoProgressSettings,
}

impl Processor for VideoProgressProcessor {
    fn name(&self) -> &str {
        &self.name
    }

    /// Elements with `videoId` are this processor's (and no other processor may claim it).
    fn claims(&self) -> Vec<String> {
        vec!["videoId".into()]
    }

    fn track_event(&self, args: &mut TrackEventArgs<'_>) {
        dispatch(args, "videoId", |input: VideoProgress, args| {
            if !(0.0..=100.0).contains(&input.percent) {
                return Err(EventError::Invalid(format!(
                    "percent must be between 0 and 100, not {}",
                    input.percent
                )));
            }
            let mut event = triggered(args, DefinitionKind::PageEvent, &self.settings.definition)?;
            input.fields.apply(&mut event, args)?;
            event.data = Some(input.video_id);
            event.value = Some(input.percent);
            // Processors see the visit so far: how many pages were seen before the video.
            let pages_before = args.interaction().map_or(0, |i| i.page_view_count);
            event
                .custom
                .insert("pageViewsBefore".into(), pages_before.into());
            Ok(event)
        });
    }
}

/// The `video_progress` processor type: register it with
/// `ApplicationBuilder::processor_type` (see [`application`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct VideoProgressType;

impl ProcessorType for VideoProgressType {
    fn type_name(&self) -> &str {
        "video_progress"
    }

    fn build(&self, name: &str, raw: &ProcessorSettings) -> Result<Arc<dyn Processor>, String> {
        Ok(Arc::new(VideoProgressProcessor {
            name: name.to_string(),
            settings: settings(raw)?,
        }))
    }
}

/// The application this example serves: the server, the SQLite store (the only one it
/// ships), and our processor type, which `[pipeline]` may then name.
pub fn application() -> tracker_server::ApplicationBuilder {
    tracker_server::Application::builder()
        .store_type(tracker_store_sqlite::Sqlite)
        .processor_type(VideoProgressType)
}
