//! What every part that is configured by type shares: a backend's table of settings
//! (`[storage]`, `[sessions]`), the one-line problems a wrong value gives, and the registry of
//! types a program assembles (the stores, the session states), as [`crate::pipeline`] does for
//! processors. The server reads the files and the environment; a backend reads its own keys
//! from its table into its own `Deserialize + deny_unknown_fields` struct, so that the server
//! names no backend and a key of one backend cannot be written for another.

pub mod duration;
mod problem;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use toml::{Table, Value};

pub use problem::{describe_kind, one_of, render_key, unknown_key, Problem};

/// A backend's section of the configuration: `backend = "<type>"` and the type's own keys,
/// with who set each one (for messages) and the folder a relative path in it is relative to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BackendTable {
    /// The type's name (`sqlite`, `postgres`, `memory`, `redis`, or a program's own).
    pub backend: String,
    /// The other keys, as written.
    #[serde(flatten)]
    pub keys: Table,
    /// Who set each key (`key` → a file, an environment variable); filled by the loader.
    #[serde(skip)]
    pub origins: BTreeMap<String, String>,
    /// The folder each key's relative path is relative to; filled by the loader.
    #[serde(skip)]
    pub bases: BTreeMap<String, PathBuf>,
    /// The folder for keys not in `bases` (a default: the configuration file's folder).
    #[serde(skip)]
    pub default_base: Option<PathBuf>,
}

/// Keys whose values are never printed (`check-config`, `--show`): a URL may hold a password.
const SECRET_KEYS: [&str; 4] = ["url", "password", "secret", "token"];

/// Whether `key`'s value is a secret (by its name: `url`, `*_password`, `*_secret`, `*_token`).
pub fn is_secret_key(key: &str) -> bool {
    SECRET_KEYS
        .iter()
        .any(|secret| key == *secret || key.ends_with(&format!("_{secret}")))
}

/// Printed as written, but for secrets, which print as `[redacted]`.
impl Serialize for BackendTable {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.keys.len() + 1))?;
        map.serialize_entry("backend", &self.backend)?;
        for (key, value) in &self.keys {
            if is_secret_key(key) {
                map.serialize_entry(key, "[redacted]")?;
            } else {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

impl BackendTable {
    /// A table of the type `backend` with no keys (every key at the type's default).
    pub fn new(backend: impl Into<String>) -> Self {
        Self {
            backend: backend.into(),
            keys: Table::new(),
            origins: BTreeMap::new(),
            bases: BTreeMap::new(),
            default_base: None,
        }
    }

    /// This table with `key` set (a program's or a test's settings).
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        self.set(key, value);
        self
    }

    /// Sets `key`; a value that does not serialise is ignored (every setting does).
    pub fn set(&mut self, key: &str, value: impl Serialize) {
        if let Ok(value) = Value::try_from(value) {
            self.keys.insert(key.to_string(), value);
        }
    }

    /// The keys read into the type's settings (`T`: `#[serde(default, deny_unknown_fields)]`),
    /// with problems named `section.key` and by who set them, as the server's own are.
    pub fn typed<T: DeserializeOwned>(&self, section: &str) -> Result<T, Vec<Problem>> {
        let figment = figment::Figment::from(figment::providers::Serialized::defaults(&self.keys));
        figment.extract::<T>().map_err(|error| {
            error
                .into_iter()
                .map(|error| {
                    let mut path = vec![section.to_string()];
                    path.extend(error.path.iter().cloned());
                    let key = render_key(&path);
                    let origin = error
                        .path
                        .first()
                        .and_then(|first| self.origins.get(&format!("{section}.{first}")))
                        .cloned();
                    Problem {
                        origin,
                        key,
                        message: describe_kind(&error.kind),
                    }
                })
                .collect()
        })
    }

    /// `path`, the value of `key`, made absolute: relative to the configuration file's folder
    /// when a file (or a default) set it, to the working folder when the environment did.
    pub fn resolve(&self, key: &str, path: &Path) -> PathBuf {
        if path.is_absolute() {
            return path.to_path_buf();
        }
        match self.bases.get(key).or(self.default_base.as_ref()) {
            Some(base) => base.join(path),
            None => path.to_path_buf(),
        }
    }
}

/// A problem with the table as a whole (`backend = "mysql"`), named by who set the backend.
pub fn unknown_backend(section: &str, table: &BackendTable, known: &[&str]) -> Problem {
    Problem {
        origin: table.origins.get(&format!("{section}.backend")).cloned(),
        key: format!("{section}.backend"),
        message: format!(
            "unknown value \"{}\"; expected {}",
            table.backend,
            one_of(known.iter().map(|name| format!("\"{name}\"")))
        ),
    }
}

/// Something a program registers by name: a processor, store or session-state type.
pub trait Named {
    /// The name configuration chooses it by.
    fn type_name(&self) -> &str;
}

/// The types of one kind a program knows, by name, in the order registered; a later
/// registration of a name replaces the earlier one (a program may override a built-in).
pub struct Types<T: ?Sized> {
    types: Vec<Arc<T>>,
}

impl<T: ?Sized> Default for Types<T> {
    fn default() -> Self {
        Self { types: Vec::new() }
    }
}

impl<T: ?Sized> Clone for Types<T> {
    fn clone(&self) -> Self {
        Self {
            types: self.types.clone(),
        }
    }
}

impl<T: ?Sized + Named> std::fmt::Debug for Types<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl<T: ?Sized + Named> Types<T> {
    /// Adds a type, or replaces the one of the same name.
    pub fn register(&mut self, kind: Arc<T>) {
        self.types.retain(|t| t.type_name() != kind.type_name());
        self.types.push(kind);
    }

    /// The type called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<T>> {
        self.types.iter().find(|t| t.type_name() == name)
    }

    /// Every registered name, in order.
    pub fn names(&self) -> Vec<&str> {
        self.types.iter().map(|t| t.type_name()).collect()
    }

    /// Whether none is registered.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Demo {
        size: usize,
        #[serde(with = "duration")]
        timeout: std::time::Duration,
    }

    impl Default for Demo {
        fn default() -> Self {
            Self {
                size: 4,
                timeout: std::time::Duration::from_secs(5),
            }
        }
    }

    #[test]
    fn a_table_reads_its_keys_with_defaults() {
        let table = BackendTable::new("demo").with("timeout", "20m");
        let demo: Demo = table.typed("storage").unwrap();
        assert_eq!(demo.size, 4);
        assert_eq!(demo.timeout, std::time::Duration::from_secs(1200));
    }

    #[test]
    fn problems_name_the_section_key_and_who_set_it() {
        let mut table = BackendTable::new("demo").with("sise", 3);
        table
            .origins
            .insert("storage.sise".into(), "tracker.toml".into());
        let problems = table.typed::<Demo>("storage").unwrap_err();
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            ["tracker.toml: storage.sise: unknown key; did you mean size?"]
        );
        let problems = BackendTable::new("demo")
            .with("size", "big")
            .typed::<Demo>("storage")
            .unwrap_err();
        assert!(
            problems[0]
                .to_string()
                .starts_with("storage.size: expected"),
            "{problems:?}"
        );
    }

    #[test]
    fn secrets_never_print() {
        let table = BackendTable::new("postgres")
            .with("url", "postgres://u:pw@h/db")
            .with("schema", "s");
        let text = serde_json::to_string(&table).unwrap();
        assert!(!text.contains("pw"), "{text}");
        assert!(text.contains("\"schema\":\"s\""), "{text}");
    }

    #[test]
    fn relative_paths_follow_who_set_them() {
        let mut table = BackendTable::new("demo");
        table.default_base = Some(PathBuf::from("/etc/tracker"));
        table.bases.insert("path".into(), PathBuf::from("/srv"));
        assert_eq!(
            table.resolve("path", Path::new("a.db")),
            PathBuf::from("/srv/a.db")
        );
        assert_eq!(
            table.resolve("other", Path::new("b.db")),
            PathBuf::from("/etc/tracker/b.db")
        );
        assert_eq!(
            table.resolve("path", Path::new("/x.db")),
            PathBuf::from("/x.db")
        );
    }
}
