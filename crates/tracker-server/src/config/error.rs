//! Configuration errors as a person reads them: one line per problem, naming the file (or the
//! environment variable) and the key as they were written, with what was expected.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use figment::error::Kind;

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the value was set: a file as the user named it, or an environment variable;
    /// `None` for a built-in default.
    pub origin: Option<String>,
    /// The key, as written in the file (`tracker.enabled`, `api_keys[0].key`).
    pub key: String,
    /// What is wrong, and what would be right.
    pub message: String,
}

impl Problem {
    /// A problem with a key whose origin is looked up later.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            origin: None,
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(origin) = &self.origin {
            write!(f, "{origin}: ")?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Why the configuration could not be used. Its text is complete on its own (it has no
/// `source()`), so that printing the error chain never repeats it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Values that are wrong, one line each.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
    /// A configuration file is missing or cannot be read.
    #[error("{}: {message}", display_path(path))]
    File {
        /// The file.
        path: PathBuf,
        /// Why, and what to do.
        message: String,
    },
}

impl ConfigError {
    /// A single problem.
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![Problem::new(key, message)])
    }

    /// The problems, if any.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Invalid(problems) => problems,
            Self::File { .. } => &[],
        }
    }
}

/// A path as the user would write it: relative to the working folder when it lies inside it.
pub(crate) fn display_path(path: &Path) -> String {
    let shown = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| path.to_path_buf());
    shown.display().to_string()
}

/// The environment variables' prefix.
pub(crate) const ENV_PREFIX: &str = "JSS_TRACKER__";

/// Whether a provider's metadata names the environment.
pub(crate) fn is_env(metadata: &figment::Metadata) -> bool {
    metadata.name.contains("environment variable")
}

/// Turns figment's errors (it reports every one it found) into problems.
pub(crate) fn problems_from(error: figment::Error) -> Vec<Problem> {
    error.into_iter().map(problem_from).collect()
}

fn problem_from(error: figment::Error) -> Problem {
    let key = render_key(&error.path);
    let origin = error.metadata.as_ref().and_then(|metadata| {
        if is_env(metadata) {
            let var = error
                .path
                .iter()
                .map(|p| p.to_ascii_uppercase())
                .collect::<Vec<_>>()
                .join("__");
            Some(format!("environment variable {ENV_PREFIX}{var}"))
        } else {
            metadata
                .source
                .as_ref()
                .and_then(|s| s.file_path())
                .map(display_path)
        }
    });
    let message = match &error.kind {
        Kind::UnknownField(field, expected) => unknown_key(field, expected),
        Kind::UnknownVariant(value, expected) => format!(
            "unknown value \"{value}\"; expected {}",
            one_of(expected.iter().map(|e| format!("\"{e}\"")))
        ),
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            format!("expected {expected}, found {actual}")
        }
        Kind::MissingField(field) => format!("missing key {field}"),
        Kind::Message(message) => message.trim_end().to_string(),
        other => other.to_string(),
    };
    // Figment names the unknown field in the path too; the key shown is where it was written.
    Problem {
        origin,
        key,
        message,
    }
}

/// `["api_keys", "0", "key"]` as `api_keys[0].key`, lower case as in the file.
fn render_key(path: &[String]) -> String {
    let mut out = String::new();
    for segment in path {
        if segment.parse::<usize>().is_ok() {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment.to_ascii_lowercase());
        }
    }
    out
}

fn unknown_key(field: &str, expected: &[&str]) -> String {
    let field = field.to_ascii_lowercase();
    let closest = expected
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(&field, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance);
    match closest {
        Some((_, candidate)) => format!("unknown key; did you mean {candidate}?"),
        None if expected.is_empty() => "unknown key".to_string(),
        None => format!(
            "unknown key; expected {}",
            one_of(expected.iter().map(ToString::to_string))
        ),
    }
}

/// `"a"`, `"a" or "b"`, `one of "a", "b", "c"`.
fn one_of(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    match items.as_slice() {
        [] => "nothing".into(),
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        many => format!("one of {}", many.join(", ")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_render_as_written() {
        let path = |p: &[&str]| p.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            render_key(&path(&["api_keys", "0", "key"])),
            "api_keys[0].key"
        );
        assert_eq!(render_key(&path(&["TRACKER", "ENABLD"])), "tracker.enabld");
    }

    #[test]
    fn unknown_keys_suggest_the_closest() {
        let keys = ["enabled", "session_timeout", "sweep_interval"];
        assert_eq!(
            unknown_key("enabeld", &keys),
            "unknown key; did you mean enabled?"
        );
        assert_eq!(
            unknown_key("colour", &keys),
            "unknown key; expected one of enabled, session_timeout, sweep_interval"
        );
    }
}
