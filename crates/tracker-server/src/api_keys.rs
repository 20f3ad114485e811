//! The configured API keys (`[[api_keys]]`): which apps may track, from which origins, and
//! with which secret their servers sign identifications.

use std::{collections::HashMap, sync::Arc};

use axum::http::request::Parts;
use secrecy::ExposeSecret;

use crate::{
    config::{canonical_api_key, ApiKeySettings},
    edge::{key_of, query},
};

/// One configured API key.
#[derive(Debug)]
pub struct ApiKey {
    /// Its name, for people and logs.
    pub name: String,
    /// Allowed origins, normalised (lowercase, no trailing slash).
    pub origins: Vec<String>,
    any_origin: bool,
    /// The secret identification elements are signed with.
    pub identification_secret: Option<Vec<u8>>,
    /// A key of the app's server: never accepted from a browser origin.
    pub server_side: bool,
}

impl ApiKey {
    /// Whether a request from `origin` may use this key. A server-side key allows none: a
    /// request that carries an `Origin` comes from a browser.
    pub fn allows(&self, origin: &str) -> bool {
        !self.server_side
            && (self.any_origin || self.origins.iter().any(|o| *o == normalise_origin(origin)))
    }
}

fn normalise_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// All configured keys, by key value.
#[derive(Debug, Default)]
pub struct ApiKeys {
    by_key: HashMap<String, Arc<ApiKey>>,
}

impl ApiKeys {
    /// Indexes the configured keys.
    pub fn new(settings: &[ApiKeySettings]) -> Self {
        let by_key = settings
            .iter()
            .map(|k| {
                let key = ApiKey {
                    name: k.name.clone(),
                    any_origin: k.cors_origins.iter().any(|o| o == "*"),
                    origins: k.cors_origins.iter().map(|o| normalise_origin(o)).collect(),
                    identification_secret: k
                        .identification_secret
                        .as_ref()
                        .map(|s| s.expose_secret().as_bytes().to_vec()),
                    server_side: k.server_side,
                };
                (canonical_api_key(k.key.expose_secret()), Arc::new(key))
            })
            .collect();
        Self { by_key }
    }

    /// The key with this value.
    pub fn find(&self, key: &str) -> Option<&Arc<ApiKey>> {
        self.by_key.get(&canonical_api_key(key))
    }

    /// The CORS decision for a request or preflight: the key it names must allow the origin; a
    /// preflight that carries its key only in a header (which preflights do not send) is allowed
    /// when any key allows the origin, and the real request is checked again.
    pub fn cors_allows(&self, origin: &str, parts: &Parts) -> bool {
        match key_of(query(parts).sc_apikey, parts) {
            Some(key) => self.find(&key).is_some_and(|k| k.allows(origin)),
            None => self.by_key.values().any(|k| k.allows(origin)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_keys_match_in_any_spelling_other_keys_exactly() {
        let keys = ApiKeys::new(&[
            ApiKeySettings {
                name: "sitecore".into(),
                key: "{9A3D8B5C-1F2E-4D3C-8B7A-6F5E4D3C2B1A}".to_string().into(),
                cors_origins: vec![],
                identification_secret: None,
                server_side: false,
            },
            ApiKeySettings {
                name: "plain".into(),
                key: "AbC123".to_string().into(),
                cors_origins: vec![],
                identification_secret: None,
                server_side: false,
            },
        ]);
        for spelling in [
            "9a3d8b5c-1f2e-4d3c-8b7a-6f5e4d3c2b1a",
            "{9a3d8b5c-1f2e-4d3c-8b7a-6f5e4d3c2b1a}",
            "9A3D8B5C1F2E4D3C8B7A6F5E4D3C2B1A",
        ] {
            assert_eq!(
                keys.find(spelling).map(|k| k.name.as_str()),
                Some("sitecore"),
                "{spelling}"
            );
        }
        assert!(keys.find("AbC123").is_some());
        assert!(keys.find("abc123").is_none());
    }

    #[test]
    fn origins_match_exactly_modulo_case_and_slash() {
        let key = ApiKey {
            name: "a".into(),
            origins: vec![normalise_origin("https://App.example.com/")],
            any_origin: false,
            identification_secret: None,
            server_side: false,
        };
        assert!(key.allows("https://app.example.com"));
        assert!(!key.allows("https://evil.example.com"));
        assert!(!key.allows("http://app.example.com"));
    }
}
