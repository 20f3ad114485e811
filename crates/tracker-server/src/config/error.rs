//! Configuration errors as a person reads them: one line per problem, naming the file (or the
//! environment variable) and the key as they were written, with what was expected.

use std::path::{Path, PathBuf};

pub use tracker_core::config::Problem;
use tracker_core::config::{describe_kind, render_key};

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
    let message = describe_kind(&error.kind);
    // Figment names the unknown field in the path too; the key shown is where it was written.
    Problem {
        origin,
        key,
        message,
    }
}
