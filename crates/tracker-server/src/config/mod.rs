//! The one typed configuration, layered: built-in defaults, then `tracker.toml`, then
//! `conf.d/*.toml` beside it in name order, then `JSS_TRACKER__SECTION__KEY` variables, then
//! the command line's flags. Relative paths in the files are relative to the folder of
//! `tracker.toml`, so that the tracker finds the same files from whatever folder it starts in.

pub(crate) use tracker_core::config::duration;
mod access;
mod check;
mod error;
mod listen;
mod load;
pub mod pipeline;
mod server;
mod starter;
mod tracker;
mod visitors;

pub use access::*;
pub use server::*;
pub use starter::*;
pub use tracker::*;
pub use visitors::*;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

pub use duration::format as format_duration;
pub(crate) use error::display_path;
pub use error::{ConfigError, Problem};
pub use listen::{ListenAddr, LISTEN_EXPECTED};
pub use pipeline::{PipelinePatch, PipelineSettings, PlacedProcessor, ProcessorEntry};

use figment::{
    providers::{Env, Format, Serialized, Toml},
    Figment,
};
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tracker_core::body::Limits;
use tracker_core::config::BackendTable;
use tracker_core::{client_info::IpAnonymization, robots::Unclassified};

/// Everything the server can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `[server]`
    pub server: ServerSettings,
    /// `[tracker]`
    pub tracker: TrackerSettings,
    /// `[storage]`: `backend` (a registered store type: `sqlite` by default) and that type's
    /// own keys, which it reads and checks itself.
    pub storage: BackendTable,
    /// `[sessions]`: `backend` (a registered session-state type: `memory` by default) and
    /// that type's own keys.
    pub sessions: BackendTable,
    /// `[admin]`
    pub admin: AdminSettings,
    /// `[definitions]`
    pub definitions: DefinitionsSettings,
    /// `[pipeline]`
    pub pipeline: PipelineSettings,
    /// `[robots]`
    pub robots: RobotsSettings,
    /// `[privacy]`
    pub privacy: PrivacySettings,
    /// `[acquisition]`
    pub acquisition: AcquisitionSettings,
    /// `[profile]`
    pub profile: ProfileSettings,
    /// `[rate_limit]`
    pub rate_limit: RateLimitSettings,
    /// `[personalization]`
    pub personalization: PersonalizationSettings,
    /// `[identification]`
    pub identification: IdentificationSettings,
    /// `[layout_service]`
    pub layout_service: LayoutServiceSettings,
    /// `[[api_keys]]`
    pub api_keys: Vec<ApiKeySettings>,
    /// Who set each setting (`key` → a file, an environment variable), for
    /// `check-config --show`; settings left at their defaults are not in it.
    #[serde(skip)]
    pub sources: std::collections::BTreeMap<String, String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            server: ServerSettings::default(),
            tracker: TrackerSettings::default(),
            storage: BackendTable::new("sqlite"),
            sessions: BackendTable::new("memory"),
            admin: AdminSettings::default(),
            definitions: DefinitionsSettings::default(),
            pipeline: PipelineSettings::default(),
            robots: RobotsSettings::default(),
            privacy: PrivacySettings::default(),
            acquisition: AcquisitionSettings::default(),
            profile: ProfileSettings::default(),
            rate_limit: RateLimitSettings::default(),
            personalization: PersonalizationSettings::default(),
            identification: IdentificationSettings::default(),
            layout_service: LayoutServiceSettings::default(),
            api_keys: Vec::new(),
            sources: std::collections::BTreeMap::new(),
        }
    }
}

/// The shortest admin token that `serve` and `check-config` do not warn about.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, _env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tracker.toml");
        std::fs::write(&path, text).expect("write");
        std::fs::write(
            dir.path().join("definitions.toml"),
            tracker_core::definitions::DEFAULT_DEFINITIONS_TOML,
        )
        .expect("write");
        // Environment layering is exercised by the binary's tests, on a child process.
        Settings::load_with_env(
            Some(&path),
            Env::prefixed("JSS_TRACKER_UNIT_TEST_UNSET__").split("__"),
        )
    }

    #[test]
    fn defaults_match_the_seed() {
        let settings = Settings::default();
        assert!(!settings.tracker.enabled);
        assert_eq!(settings.tracker.session_timeout, Duration::from_secs(1200));
        assert!(settings.validate().is_ok());
    }

    #[test]
    fn starter_config_loads() {
        let text = starter_config("abc", "def", SocketAddr::from(([127, 0, 0, 1], 0)));
        let settings = load(&text, &[]).expect("loads");
        assert!(settings.tracker.enabled);
        assert_eq!(settings.api_keys[0].key.expose_secret(), "abc");
        let file = settings.definitions.file.expect("a definitions file");
        assert!(
            file.is_absolute() && file.ends_with("definitions.toml"),
            "relative to the config file: {file:?}"
        );
    }

    #[test]
    fn errors_name_the_key() {
        let err = load("[tracker]\nsession_timeout = \"soon\"\n", &[]).expect_err("bad");
        assert!(err.to_string().contains("session_timeout"), "{err}");
        let err = load("[tracker]\nenabeld = true\n", &[]).expect_err("typo");
        assert!(err.to_string().contains("enabeld"), "{err}");
        let err = load(
            "[[api_keys]]\nname = \"a\"\nkey = \"k\"\ncors_origins = [\"example.com\"]\n",
            &[],
        )
        .expect_err("origin");
        assert!(
            err.to_string().contains("api_keys[0].cors_origins"),
            "{err}"
        );
    }

    #[test]
    fn secrets_never_print() {
        let text = starter_config(
            "topsecretkey",
            "topsecrettoken",
            SocketAddr::from(([127, 0, 0, 1], 0)),
        );
        let settings = load(&text, &[]).expect("loads");
        let shown = format!("{settings:?} {}", toml::to_string(&settings).expect("toml"));
        assert!(!shown.contains("topsecret"), "{shown}");
    }
}
