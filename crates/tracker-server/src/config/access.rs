//! `[admin]`, `[profile]` and `[[api_keys]]`: who may read the data, and which apps may track.

use super::*;

/// `[admin]`
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// Bearer token of the admin API; without one the admin API refuses every request.
    #[serde(serialize_with = "redact")]
    pub token: Option<SecretString>,
}

/// `[profile]`: what the Experience Profile and the admin API show.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileSettings {
    /// Whether contacts with no identifier (anonymous visitors) are found by search. Sitecore
    /// leaves them out; a direct link to a contact always works.
    pub index_anonymous_contacts: bool,
    /// People who may sign in to the Experience Profile besides the admin token's holder.
    pub users: Vec<ProfileUser>,
    /// How long a sign-in lasts without a request.
    #[serde(with = "duration")]
    pub session_timeout: Duration,
    /// Sign-in attempts per minute one client address, and one user name, may make (429 with
    /// `Retry-After` over it); 0: no limit.
    pub sign_in_per_minute: u32,
    /// Sign-in attempts that may come at once before the rate applies.
    pub sign_in_burst: u32,
    /// The longest range the dashboard answers, in days; a longer one is refused (400).
    pub max_range_days: u32,
}

impl Default for ProfileSettings {
    fn default() -> Self {
        Self {
            index_anonymous_contacts: true,
            users: Vec::new(),
            session_timeout: Duration::from_secs(8 * 3600),
            sign_in_per_minute: 6,
            sign_in_burst: 10,
            max_range_days: 400,
        }
    }
}

/// `[[profile.users]]`: a person who may sign in to the Experience Profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileUser {
    /// The name to sign in with.
    pub name: String,
    /// An Argon2 hash of the password (`jss-tracker hash-password` makes one).
    #[serde(serialize_with = "redact_required")]
    pub password_hash: SecretString,
}

/// `[[api_keys]]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySettings {
    /// A name for people (one key per app is good practice).
    pub name: String,
    /// The key, as sent in `sc_apikey`.
    #[serde(serialize_with = "redact_required")]
    pub key: SecretString,
    /// Origins allowed to call with this key; `*` allows any (for development).
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// The secret the app's server signs identification elements with (HMAC-SHA256; see
    /// docs/security.md). Without one, browsers with this key cannot identify visitors.
    #[serde(
        default,
        serialize_with = "redact",
        skip_serializing_if = "Option::is_none"
    )]
    pub identification_secret: Option<SecretString>,
    /// A key of the app's server, never of a browser: requests with it that carry an `Origin`
    /// are refused, and its identifications need no signature.
    #[serde(default)]
    pub server_side: bool,
}

fn redact<S: serde::Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_some("[redacted]"),
        None => s.serialize_none(),
    }
}

fn redact_required<S: serde::Serializer>(_: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("[redacted]")
}
