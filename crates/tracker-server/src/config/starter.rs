//! What `init` writes, and the keys it makes.

/// Sitecore's SSC API keys are item ids, which apps write with or without braces, in any case:
/// keys that are GUIDs match in any spelling; other keys match exactly.
pub fn canonical_api_key(key: &str) -> String {
    let key = key.trim();
    match tracker_core::ids::Guid::parse(key) {
        Some(guid) => guid.to_string(),
        None => key.to_string(),
    }
}

/// A random key of 32 hex digits, for API keys and admin tokens.
pub fn random_token() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The starter `tracker.toml` that `init` writes: tracker enabled, a fresh API key and admin
/// token, the default definitions in `definitions.toml`.
pub fn starter_config(api_key: &str, admin_token: &str, listen: impl std::fmt::Display) -> String {
    format!(
        r#"# jss-tracker configuration. Every key can also be set as JSS_TRACKER__SECTION__KEY,
# and files in conf.d/ beside this one patch it, in name order.

[server]
listen = "{listen}"
# trust_forwarded_proto = true   # behind a TLS-terminating proxy

[tracker]
enabled = true
session_timeout = "20m"
# service_prefix = "/sitecore/api/jss/track"

[storage]
path = "data/tracker.db"
sync = "normal"   # or "full": survives power loss, slower

[admin]
token = "{admin_token}"

[definitions]
file = "definitions.toml"

# One key per JSS app. Origins are the app's origins; "*" allows any (development only).
[[api_keys]]
name = "jss-app"
key = "{api_key}"
cors_origins = ["http://localhost:3000"]
"#
    )
}
