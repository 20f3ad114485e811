//! `[pipeline]`: which `trackEvent` processors run, in which order, each built from its own
//! configuration. Every file (`tracker.toml`, then `conf.d/*.toml` in name order) is a patch
//! applied to the pipeline so far: remove, replace, then add (before or after a processor, or
//! at the end), so that a drop-in file can add a processor without repeating the others.
//!
//! ```toml
//! [pipeline]
//! remove = ["campaign"]
//!
//! [[pipeline.add]]
//! name = "download_links"
//! after = "page_event"
//! type = "map"
//! match = "downloadId"
//! as = "page_event"
//! definition = "Download"
//! data = "fileName"
//! data_key = "downloadId"
//!
//! [[pipeline.replace]]
//! name = "goal"
//! type = "goal"
//! ```

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::{Deserialize, Serialize};
use tracker_core::pipeline::{
    Pipeline, PipelineBuilder, Processor, ProcessorSettings, ProcessorTypes,
};

use super::{display_path, ConfigError};

/// One processor's entry: its name, its type, where it goes, and its type's own settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessorEntry {
    /// The name other entries and `remove` refer to it by.
    pub name: String,
    /// Its type: a built-in (`page_event`, `goal`, `outcome`, `campaign`, `page_view`,
    /// `sc_camp`, `map`), `webhook`, or one a program registered.
    #[serde(rename = "type")]
    pub kind: String,
    /// Insert it before this processor (`add` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// Insert it after this processor (`add` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Every other key: the type's settings (the type refuses keys it does not know).
    #[serde(flatten)]
    pub settings: ProcessorSettings,
}

/// What one file says of the pipeline.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PipelinePatch {
    /// Keep exactly these processors, in this order (applied first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processors: Option<Vec<String>>,
    /// Processors to remove, by name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
    /// Processors that take the place of the one of the same name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replace: Vec<ProcessorEntry>,
    /// New processors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<ProcessorEntry>,
}

/// `[pipeline]` as the layers merged it (for `check-config --show`), and each file's patch in
/// the order they apply.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PipelineSettings {
    /// The merged view of the keys (a later file's list replaces an earlier one's here; the
    /// pipeline is built from `patches`, which keep each file's).
    #[serde(flatten)]
    pub merged: PipelinePatch,
    /// Each file's patch, in order, with the file.
    #[serde(skip)]
    pub patches: Vec<(PathBuf, PipelinePatch)>,
}

impl PipelineSettings {
    /// Reads `[pipeline]` of one configuration file as a patch (none if it has no such table).
    pub(crate) fn read_patch(path: &Path) -> Result<Option<PipelinePatch>, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::File {
            path: path.to_path_buf(),
            message: format!("cannot read it: {source}"),
        })?;
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let Some(pipeline) = table.remove("pipeline") else {
            return Ok(None);
        };
        PipelinePatch::deserialize(pipeline)
            .map(Some)
            .map_err(|e| ConfigError::File {
                path: path.to_path_buf(),
                message: format!("pipeline: {e}"),
            })
    }
}

/// A processor in the finished pipeline, and who put it there (for `check-config --show`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedProcessor {
    /// Its name.
    pub name: String,
    /// Its type.
    pub kind: String,
    /// `built-in`, or the file that added or replaced it.
    pub source: String,
}

/// Builds the pipeline: the defaults, then every file's patch in order. An error names the
/// file and the key at fault, and what is wrong: an unknown processor or type, a key its type
/// does not know or a value of the wrong type, two processors claiming one element field.
pub fn build(
    settings: &PipelineSettings,
    types: &ProcessorTypes,
) -> Result<(Pipeline, Vec<PlacedProcessor>), ConfigError> {
    let mut builder = PipelineBuilder::with_defaults();
    let mut placed: HashMap<String, (String, String)> = builder
        .names()
        .into_iter()
        .map(|name| (name.to_string(), (name.to_string(), "built-in".to_string())))
        .collect();
    for (path, patch) in &settings.patches {
        let file = display_path(path);
        let fail = |key: String, message: String| ConfigError::File {
            path: path.clone(),
            message: format!("{key}: {message}"),
        };
        let make = |key: &str, entry: &ProcessorEntry| -> Result<Arc<dyn Processor>, ConfigError> {
            types
                .build(&entry.name, &entry.kind, &entry.settings)
                .map_err(|message| fail(key.to_string(), message))
        };
        if let Some(order) = &patch.processors {
            builder = builder
                .order(order)
                .map_err(|e| fail("pipeline.processors".into(), e.to_string()))?;
        }
        for (at, name) in patch.remove.iter().enumerate() {
            builder = builder
                .remove(name)
                .map_err(|e| fail(format!("pipeline.remove[{at}]"), e.to_string()))?;
            placed.remove(name);
        }
        for (at, entry) in patch.replace.iter().enumerate() {
            let key = format!("pipeline.replace[{at}]");
            if entry.before.is_some() || entry.after.is_some() {
                return Err(fail(
                    key,
                    "a replacement takes the place of its namesake: before and after do not apply"
                        .into(),
                ));
            }
            let processor = make(&key, entry)?;
            builder = builder
                .replace(&entry.name, processor)
                .map_err(|e| fail(format!("{key}.name"), e.to_string()))?;
            placed.insert(entry.name.clone(), (entry.kind.clone(), file.clone()));
        }
        for (at, entry) in patch.add.iter().enumerate() {
            let key = format!("pipeline.add[{at}]");
            if builder.contains(&entry.name) {
                return Err(fail(
                    format!("{key}.name"),
                    format!(
                        "a processor named '{}' is already in the pipeline (use [[pipeline.replace]] to replace it)",
                        entry.name
                    ),
                ));
            }
            let processor = make(&key, entry)?;
            builder = match (&entry.before, &entry.after) {
                (Some(_), Some(_)) => {
                    return Err(fail(key, "give before or after, not both".into()));
                }
                (Some(before), None) => builder
                    .insert_before(before, processor)
                    .map_err(|e| fail(format!("{key}.before"), e.to_string()))?,
                (None, Some(after)) => builder
                    .insert_after(after, processor)
                    .map_err(|e| fail(format!("{key}.after"), e.to_string()))?,
                (None, None) => builder.push(processor),
            };
            placed.insert(entry.name.clone(), (entry.kind.clone(), file.clone()));
        }
        if let Some((field, first, second)) = builder.conflict() {
            return Err(fail(
                "pipeline".into(),
                format!(
                    "processors '{first}' and '{second}' both claim elements with the field '{field}'; remove or replace one"
                ),
            ));
        }
    }
    let order: Vec<PlacedProcessor> = builder
        .names()
        .into_iter()
        .map(|name| {
            let (kind, source) = placed
                .get(name)
                .cloned()
                .unwrap_or_else(|| (name.to_string(), "built-in".to_string()));
            PlacedProcessor {
                name: name.to_string(),
                kind,
                source,
            }
        })
        .collect();
    Ok((builder.build(), order))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    /// Loads `tracker.toml` and `conf.d/` files from a fresh folder, and builds the pipeline.
    fn pipeline_of(main: &str, drop_ins: &[(&str, &str)]) -> Result<Vec<PlacedProcessor>, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("tracker.toml"), main).expect("write");
        std::fs::create_dir(dir.path().join("conf.d")).expect("conf.d");
        for (name, text) in drop_ins {
            std::fs::write(dir.path().join("conf.d").join(name), text).expect("write");
        }
        let settings =
            Settings::load(Some(&dir.path().join("tracker.toml"))).map_err(|e| e.to_string())?;
        build(&settings.pipeline, &ProcessorTypes::builtin())
            .map(|(_, placed)| placed)
            .map_err(|e| e.to_string())
    }

    fn names(placed: &[PlacedProcessor]) -> Vec<&str> {
        placed.iter().map(|p| p.name.as_str()).collect()
    }

    const DOWNLOADS: &str = r#"
[[pipeline.add]]
name = "download_links"
after = "page_event"
type = "map"
match = "downloadId"
as = "page_event"
definition = "Download"
data = "fileName"
data_key = "downloadId"
"#;

    #[test]
    fn files_patch_the_pipeline_in_name_order() {
        let defaults = pipeline_of("", &[]).expect("defaults");
        assert_eq!(
            names(&defaults),
            [
                "page_event",
                "goal",
                "outcome",
                "campaign",
                "page_view",
                "identify",
                "sc_camp"
            ]
        );
        assert!(defaults.iter().all(|p| p.source == "built-in"));

        let placed = pipeline_of(
            "[pipeline]\nremove = [\"campaign\"]\n",
            &[
                (
                    "20-replace.toml",
                    "[[pipeline.replace]]\nname = \"goal\"\ntype = \"map\"\nmatch = \"goalId\"\nas = \"goal\"\ndefinition = \"Register\"\n",
                ),
                ("10-downloads.toml", DOWNLOADS),
                (
                    "30-first.toml",
                    "[[pipeline.add]]\nname = \"early_goal\"\nbefore = \"page_event\"\ntype = \"map\"\nmatch = \"leadId\"\nas = \"goal\"\ndefinition = \"Register\"\n",
                ),
            ],
        )
        .expect("builds");
        assert_eq!(
            names(&placed),
            [
                "early_goal",
                "page_event",
                "download_links",
                "goal",
                "outcome",
                "page_view",
                "identify",
                "sc_camp"
            ]
        );
        let downloads = &placed[2];
        assert_eq!(downloads.kind, "map");
        assert!(
            downloads.source.ends_with("10-downloads.toml"),
            "{downloads:?}"
        );
        assert_eq!(placed[3].kind, "map", "goal was replaced");
        assert!(placed[3].source.ends_with("20-replace.toml"));
    }

    #[test]
    fn a_bad_patch_names_its_file_and_key() {
        let error = pipeline_of("", &[("10-x.toml", "[pipeline]\nremove = [\"nope\"]\n")])
            .expect_err("unknown processor");
        assert!(
            error.contains("10-x.toml")
                && error.contains("pipeline.remove[0]")
                && error.contains("nope"),
            "{error}"
        );
        let error =
            pipeline_of(&DOWNLOADS.replace("data_key", "colour"), &[]).expect_err("unknown key");
        assert!(
            error.contains("tracker.toml")
                && error.contains("pipeline.add[0]")
                && error.contains("colour"),
            "{error}"
        );
        let error = pipeline_of(&DOWNLOADS.replace("as = \"page_event\"", "as = 7"), &[])
            .expect_err("wrong type");
        assert!(error.contains("pipeline.add[0]"), "{error}");
        let error = pipeline_of(
            "",
            &[(
                "50-goals.toml",
                &DOWNLOADS.replace("match = \"downloadId\"", "match = \"goalId\""),
            )],
        )
        .expect_err("two processors claim goalId");
        assert!(
            error.contains("50-goals.toml") && error.contains("goalId") && error.contains("'goal'"),
            "{error}"
        );
        let error = pipeline_of(
            &DOWNLOADS.replace("after = \"page_event\"", "after = \"nowhere\""),
            &[],
        )
        .expect_err("unknown anchor");
        assert!(error.contains("pipeline.add[0].after"), "{error}");
        let error = pipeline_of("[pipeline]\nshuffle = true\n", &[]).expect_err("unknown key");
        assert!(error.contains("shuffle"), "{error}");
        let error = pipeline_of(&format!("{DOWNLOADS}{DOWNLOADS}"), &[]).expect_err("twice");
        assert!(
            error.contains("pipeline.add[1].name") && error.contains("already"),
            "{error}"
        );
    }
}
