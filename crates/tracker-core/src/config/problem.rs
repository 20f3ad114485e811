//! One thing wrong with the configuration, and how figment's errors read as one.

use std::fmt;

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

/// What a figment error kind says, as a person reads it: the closest known key for a
/// misspelt one, the values a choice takes.
pub fn describe_kind(kind: &Kind) -> String {
    match kind {
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
    }
}

/// `["api_keys", "0", "key"]` as `api_keys[0].key`, lower case as in the file.
pub fn render_key(path: &[String]) -> String {
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

/// "unknown key", with the closest expected key when one is near enough to be a typo.
pub fn unknown_key(field: &str, expected: &[&str]) -> String {
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
pub fn one_of(items: impl Iterator<Item = String>) -> String {
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
