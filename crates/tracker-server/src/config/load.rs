//! Loading the layers: defaults, `tracker.toml`, `conf.d/`, the environment; relative paths
//! and who set what.

use super::*;

impl Settings {
    /// Loads the layered configuration. `file` is `tracker.toml` (optional when absent and not
    /// named explicitly).
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(file, Env::prefixed(error::ENV_PREFIX).split("__"))
    }

    /// The built-in defaults and the environment only: what a command that is about to write
    /// the configuration file works with.
    pub fn load_without_file() -> Result<Self, ConfigError> {
        Self::load_layers(None, Env::prefixed(error::ENV_PREFIX).split("__"))
    }

    pub(super) fn load_with_env(file: Option<&Path>, env: Env) -> Result<Self, ConfigError> {
        let default_path = PathBuf::from("tracker.toml");
        let path = match file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError::File {
                        path: path.to_path_buf(),
                        message: format!(
                            "no such file (`jss-tracker init --config {}` writes one)",
                            path.display()
                        ),
                    });
                }
                Some(path.to_path_buf())
            }
            None => default_path.is_file().then_some(default_path),
        };
        Self::load_layers(path, env)
    }

    fn load_layers(path: Option<PathBuf>, env: Env) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        let cwd = std::env::current_dir().unwrap_or_default();
        let config_dir = path.as_ref().map(|path| {
            std::fs::canonicalize(path)
                .or_else(|_| std::path::absolute(path))
                .unwrap_or_else(|_| cwd.join(path))
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| cwd.clone())
        });
        let mut pipeline_patches = Vec::new();
        if let Some(path) = &path {
            figment = figment.merge(Toml::file_exact(path));
            if path.is_file() {
                if let Some(patch) = PipelineSettings::read_patch(path)? {
                    pipeline_patches.push((path.clone(), patch));
                }
            }
            let conf_d = path.parent().unwrap_or(Path::new(".")).join("conf.d");
            if conf_d.is_dir() {
                let mut patches: Vec<PathBuf> = std::fs::read_dir(&conf_d)
                    .map_err(|source| ConfigError::File {
                        path: conf_d.clone(),
                        message: format!("cannot read the folder: {source}"),
                    })?
                    .filter_map(|entry| entry.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                    .collect();
                patches.sort();
                for patch in patches {
                    if let Some(pipeline) = PipelineSettings::read_patch(&patch)? {
                        pipeline_patches.push((patch.clone(), pipeline));
                    }
                    figment = figment.merge(Toml::file_exact(patch));
                }
            }
        }
        let figment = figment.merge(env);
        let mut settings: Settings = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(error::problems_from(e)))?;
        settings.pipeline.patches = pipeline_patches;
        // Relative paths: from a file (or a default, when a file is in use), relative to the
        // folder of tracker.toml; from the environment, to the working folder.
        let base = |key: &str| -> PathBuf {
            match figment.find_metadata(key) {
                Some(metadata) if error::is_env(metadata) => cwd.clone(),
                _ => config_dir.clone().unwrap_or_else(|| cwd.clone()),
            }
        };
        // A backend's keys are its own: what a relative path in them is relative to goes with
        // the table, for the backend to use.
        let default_base = config_dir.clone().unwrap_or_else(|| cwd.clone());
        for_backends(&mut settings, |section, table| {
            table.default_base = Some(default_base.clone());
            let keys: Vec<String> = table.keys.keys().cloned().collect();
            for key in keys {
                let at = base(&format!("{section}.{key}"));
                table.bases.insert(key, at);
            }
        });
        if let Some(file) = settings
            .definitions
            .file
            .as_mut()
            .filter(|f| f.is_relative())
        {
            *file = base("definitions.file").join(&*file);
        }
        settings.validate().map_err(|error| match error {
            ConfigError::Invalid(problems) => ConfigError::Invalid(
                problems
                    .into_iter()
                    .map(|mut problem| {
                        problem.origin =
                            problem.origin.or_else(|| origin_of(&figment, &problem.key));
                        problem
                    })
                    .collect(),
            ),
            other => other,
        })?;
        settings.sources = sources(&figment, &settings);
        // And who set each key, for the backend's messages.
        let sources = settings.sources.clone();
        for_backends(&mut settings, |section, table| {
            table.origins = sources
                .iter()
                .filter(|(key, _)| key.starts_with(&format!("{section}.")))
                .map(|(key, origin)| (key.clone(), origin.clone()))
                .collect();
        });
        Ok(settings)
    }
}

/// The file or variable that set `key` (or the array it belongs to).
/// Who set each leaf setting that is not a default: a file or an environment variable.
fn sources(figment: &Figment, settings: &Settings) -> std::collections::BTreeMap<String, String> {
    fn walk(prefix: &str, value: &toml::Value, keys: &mut Vec<String>) {
        match value {
            toml::Value::Table(table) => {
                for (key, value) in table {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, value, keys);
                }
            }
            _ => keys.push(prefix.to_string()),
        }
    }
    let mut keys = Vec::new();
    if let Ok(value) = toml::Value::try_from(settings) {
        walk("", &value, &mut keys);
    }
    keys.into_iter()
        .filter_map(|key| origin_of(figment, &key).map(|origin| (key, origin)))
        .collect()
}

fn origin_of(figment: &Figment, key: &str) -> Option<String> {
    let lookup = key.split('[').next().unwrap_or(key);
    let metadata = figment.find_metadata(lookup)?;
    if error::is_env(metadata) {
        return Some(format!(
            "environment variable {}{}",
            error::ENV_PREFIX,
            lookup.replace('.', "__").to_ascii_uppercase()
        ));
    }
    metadata
        .source
        .as_ref()
        .and_then(|s| s.file_path())
        .map(error::display_path)
}

/// Calls `each` with every backend's section name and table.
fn for_backends(settings: &mut Settings, mut each: impl FnMut(&str, &mut BackendTable)) {
    each("storage", &mut settings.storage);
    each("sessions", &mut settings.sessions);
}
