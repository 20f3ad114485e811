//! The one typed configuration, layered: built-in defaults, then `tracker.toml`, then
//! `conf.d/*.toml` beside it in name order, then `JSS_TRACKER__SECTION__KEY` variables, then
//! the command line's flags. Relative paths in the files are relative to the folder of
//! `tracker.toml`, so that the tracker finds the same files from whatever folder it starts in.

pub(crate) use tracker_core::config::duration;
mod error;
mod listen;
pub mod pipeline;

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

/// `[server]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on (an IP address or a host name, and a port); port 0 picks a free
    /// port.
    pub listen: ListenAddr,
    /// Replaced by `trusted_proxies`; set, it is an error that says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_forwarded_proto: Option<bool>,
    /// The proxies (CIDRs) whose `X-Forwarded-For`, `Forwarded` and `X-Forwarded-Proto` are
    /// believed; from any other peer these headers are ignored.
    pub trusted_proxies: Vec<IpNet>,
    /// Which header the trusted proxies write the client's address to: `x-forwarded-for` (the
    /// default) or `forwarded` (RFC 7239). Only that one is read: a client's own copy of the
    /// other passes through a proxy untouched and would let it choose its address.
    pub client_ip_header: ClientIpHeader,
    /// Most connections one client address (an IPv6 client's network, per
    /// `rate_limit.ipv6_prefix`) may hold open at once; over it, a new connection is closed at
    /// once. Trusted proxies are not limited, nor, without `trusted_proxies`, loopback and
    /// private peers (they may be an undeclared proxy). 0: no limit.
    pub max_connections_per_ip: usize,
    /// Serve `GET /metrics` (Prometheus text format).
    pub metrics: bool,
    /// Serve `POST /bench/noop/{event,flush}`: the same HTTP stack as `/event` (layers, body read with the same
    /// limit, a JSON 200) and no tracking work; the load harness's baseline. Off by default.
    pub bench_noop: bool,
    /// Most connections open at once; over it, a new connection is closed as soon as it is
    /// accepted. Keep it below the process's open-files limit (`ulimit -n`, systemd's
    /// `LimitNOFILE`), which the database and the listener share.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, counted from when the connection is
    /// ready for a request: so also how long an idle keep-alive connection stays open.
    #[serde(with = "duration")]
    pub header_timeout: Duration,
    /// Largest request head (request line and headers) read; a larger one gets 431. What a
    /// connection's read buffer may grow to while headers trickle in (at least 8192).
    pub max_header_bytes: usize,
    /// Time a client has to send a whole request body; slower ones get 408.
    #[serde(with = "duration")]
    pub body_timeout: Duration,
    /// Bytes of request bodies held in memory at once, across all requests being received
    /// (each counts its declared length, or `tracker.limits.max_body_bytes` when it declares
    /// none); a request that would go over is answered 503 at once.
    pub max_body_buffer: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)).into(),
            trust_forwarded_proto: None,
            trusted_proxies: Vec::new(),
            client_ip_header: ClientIpHeader::XForwardedFor,
            max_connections_per_ip: 256,
            metrics: true,
            bench_noop: false,
            max_connections: 4096,
            header_timeout: Duration::from_secs(30),
            max_header_bytes: 64 * 1024,
            body_timeout: Duration::from_secs(30),
            max_body_buffer: 64 * 1024 * 1024,
        }
    }
}

/// `server.client_ip_header`
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default, PartialEq, Eq)]
pub enum ClientIpHeader {
    /// `X-Forwarded-For`.
    #[default]
    #[serde(rename = "x-forwarded-for")]
    XForwardedFor,
    /// `Forwarded` (RFC 7239), with its `proto=`.
    #[serde(rename = "forwarded")]
    Forwarded,
}

/// `[tracker]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackerSettings {
    /// Whether the tracking endpoints answer (Sitecore's `Sitecore.JSS.TrackerServiceEnabled`).
    pub enabled: bool,
    /// Idle time after which an interaction ends.
    #[serde(with = "duration")]
    pub session_timeout: Duration,
    /// How often the sweeper looks for idle interactions.
    #[serde(with = "duration")]
    pub sweep_interval: Duration,
    /// Path prefix of the tracking service, the JSS clients' `serviceUrl`.
    pub service_prefix: String,
    /// Name of the session cookie.
    pub session_cookie: String,
    /// Lifetime of `SC_ANALYTICS_GLOBAL_COOKIE`.
    #[serde(with = "duration")]
    pub device_cookie_max_age: Duration,
    /// How far in the future an event `timestamp` may lie.
    #[serde(with = "duration")]
    pub max_clock_skew: Duration,
    /// Request limits.
    pub limits: Limits,
    /// Most visits held in memory (about half a kilobyte each). Over it the stalest leave
    /// memory; they stay open in the database and resume from it on their next request.
    pub max_open_sessions: usize,
    /// Whether a device id this tracker did not sign is still believed. Off: such a cookie (all
    /// zeros, say, which a bot farm could share) starts a fresh device. On only while moving
    /// from a version that issued unsigned ids, whose visitors would otherwise start over.
    pub accept_unsigned_device_ids: bool,
    /// Page views without an item id (`/sitecore/api/track/pageview` without `itemId`, the
    /// script tag on a page that is not Sitecore's): `refuse` them (400; the seed says a page
    /// view needs an item id) or keep them under a stable surrogate id derived from the site and
    /// the path (`url`).
    pub page_views_without_item: PageViewsWithoutItem,
}

/// `tracker.page_views_without_item`
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PageViewsWithoutItem {
    /// 400: a page view needs an item id.
    #[default]
    Refuse,
    /// Kept, with an id derived from the site and the path.
    Url,
}

/// `[layout_service]`: the Sitecore Layout Service passed through, tracking each route's page
/// view (the seed's "requests to Layout Service will track a page view by default").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LayoutServiceSettings {
    /// The Layout Service's origin (`https://cm.example.com`); unset: not passed through.
    pub upstream: Option<String>,
    /// Longest wait for the upstream's answer; then 502 `bad_gateway`.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Largest layout read to track its page view; a larger one is passed through untracked.
    pub max_body_bytes: usize,
}

impl Default for LayoutServiceSettings {
    fn default() -> Self {
        Self {
            upstream: None,
            timeout: Duration::from_secs(10),
            max_body_bytes: 8 * 1024 * 1024,
        }
    }
}

impl Default for TrackerSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            session_timeout: Duration::from_secs(20 * 60),
            sweep_interval: Duration::from_secs(15),
            service_prefix: "/sitecore/api/jss/track".into(),
            session_cookie: "ASP.NET_SessionId".into(),
            device_cookie_max_age: Duration::from_secs(10 * 365 * 24 * 3600),
            max_clock_skew: Duration::from_secs(120),
            limits: Limits::default(),
            max_open_sessions: 200_000,
            accept_unsigned_device_ids: false,
            page_views_without_item: PageViewsWithoutItem::Refuse,
        }
    }
}

/// `[admin]`
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// Bearer token of the admin API; without one the admin API refuses every request.
    #[serde(serialize_with = "redact")]
    pub token: Option<SecretString>,
}

/// `[definitions]`
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DefinitionsSettings {
    /// A definitions file; without one, the shipped defaults.
    pub file: Option<PathBuf>,
}

/// `[robots]`: who is kept out of the experience database.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RobotsSettings {
    /// How visitors that no rule classified are treated: `human` (stored from their first
    /// request) or `robot` (dropped until the visitor identification script proves them human).
    pub unclassified: Unclassified,
    /// More user agents to treat as robots: regular expressions, case-insensitive.
    pub user_agents: Vec<String>,
    /// Client addresses (CIDRs) to treat as robots: monitors, load tests, the office.
    pub ip_ranges: Vec<IpNet>,
}

/// `[personalization]`: the visitor's own profile, for headless personalisation.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PersonalizationSettings {
    /// Serve `GET {service_prefix}/visitor`: the caller's own visits, engagement value,
    /// goals and campaigns (by its cookies, with the tracking endpoints' key and CORS rules).
    pub enabled: bool,
}

/// `identification.trust`
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum IdentificationTrustSetting {
    /// Identification from a browser only when signed by the app's server (or through a
    /// server-side key).
    #[default]
    Signed,
    /// Any browser's word is believed: anyone holding the public key can merge anyone's
    /// profile into theirs. Only for an intranet; the server warns at start.
    Client,
}

/// `[identification]`: whose word makes a visitor known (see docs/security.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentificationSettings {
    /// `signed` (the default) or `client`.
    pub trust: IdentificationTrustSetting,
    /// How far ahead a signed element's `expires` may lie.
    #[serde(with = "duration")]
    pub max_signature_lifetime: Duration,
    /// Sources whose identifiers are case-insensitive: folded to lower case (all are trimmed).
    pub case_insensitive_sources: Vec<String>,
}

impl Default for IdentificationSettings {
    fn default() -> Self {
        Self {
            trust: IdentificationTrustSetting::Signed,
            max_signature_lifetime: Duration::from_secs(3600),
            case_insensitive_sources: vec!["email".into()],
        }
    }
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

/// `[privacy]`
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacySettings {
    /// How client addresses are stored: `truncate` (IPv4's last octet and IPv6's last 80 bits
    /// zeroed), `drop` (not at all) or `off` (as they came).
    pub ip_anonymization: IpAnonymization,
}

/// `[rate_limit]`: token buckets on the tracking endpoints, answered 429 `rate_limited` with
/// `Retry-After`. 0 turns a limit off.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Requests per second one client address may make. Without `server.trusted_proxies`, a
    /// loopback or private peer address is not limited: it may be an undeclared proxy, whose
    /// address every visitor shares.
    pub per_ip_per_second: u32,
    /// Requests per second one API key may take, all clients together (one key is one site:
    /// off by default; set it above the site's peak).
    pub per_key_per_second: u32,
    /// Requests a bucket holds: how many may come at once before the rate applies (at least
    /// the rate).
    pub burst: u32,
    /// IPv6 clients are limited per network of this prefix length (one subscriber usually has
    /// a /64 and can rotate addresses inside it at will); IPv4 clients per address.
    pub ipv6_prefix: u8,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            per_ip_per_second: 50,
            per_key_per_second: 0,
            burst: 100,
            ipv6_prefix: 64,
        }
    }
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

/// The shortest admin token that `serve` and `check-config` do not warn about.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

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

    fn load_with_env(file: Option<&Path>, env: Env) -> Result<Self, ConfigError> {
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
        // A backend's keys are its own: what a relative path in them is relative to, and who
        // set each one, go with the table for the backend to use.
        for (section, table) in [
            ("storage", &mut settings.storage),
            ("sessions", &mut settings.sessions),
        ] {
            table.default_base = Some(config_dir.clone().unwrap_or_else(|| cwd.clone()));
            let keys: Vec<String> = table.keys.keys().cloned().collect();
            for key in keys {
                table
                    .bases
                    .insert(key.clone(), base(&format!("{section}.{key}")));
            }
        }
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
        for (section, table) in [
            ("storage", &mut settings.storage),
            ("sessions", &mut settings.sessions),
        ] {
            table.origins = settings
                .sources
                .iter()
                .filter(|(key, _)| key.starts_with(&format!("{section}.")))
                .map(|(key, origin)| (key.clone(), origin.clone()))
                .collect();
        }
        Ok(settings)
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut invalid = |key: &str, message: &str| problems.push(Problem::new(key, message));
        if let Err(message) = self.server.listen.resolve() {
            invalid("server.listen", &message);
        }
        if self.server.trust_forwarded_proto.is_some() {
            invalid(
                "server.trust_forwarded_proto",
                "is replaced by server.trusted_proxies: list your proxy's addresses, e.g. \
                 trusted_proxies = [\"10.0.0.0/8\"], and its X-Forwarded-Proto and X-Forwarded-For are believed",
            );
        }
        for pattern in &self.robots.user_agents {
            if let Err(error) = regex::Regex::new(pattern) {
                invalid(
                    "robots.user_agents",
                    &format!("\"{pattern}\" is not a regular expression: {error}"),
                );
            }
        }
        if self.tracker.session_timeout.is_zero() {
            invalid("tracker.session_timeout", "must be longer than zero");
        }
        if self.tracker.sweep_interval.is_zero() {
            invalid("tracker.sweep_interval", "must be longer than zero");
        }
        if !self.tracker.service_prefix.starts_with('/')
            || self.tracker.service_prefix.ends_with('/')
        {
            invalid(
                "tracker.service_prefix",
                "must start with '/' and not end with one",
            );
        }
        if self.tracker.session_cookie.is_empty()
            || !self
                .tracker
                .session_cookie
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
        {
            invalid("tracker.session_cookie", "is not a valid cookie name");
        }
        if self
            .admin
            .token
            .as_ref()
            .is_some_and(|t| t.expose_secret().trim().is_empty())
        {
            invalid(
                "admin.token",
                "is empty; set a token (`jss-tracker init` writes a random one), or remove the key to turn the admin API off",
            );
        }
        if let Some(file) = &self.definitions.file {
            if !file.is_file() {
                invalid(
                    "definitions.file",
                    &format!("cannot read {}: no such file", display_path(file)),
                );
            }
        }
        problems.extend(self.access_problems());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// What is wrong with who may get in: Profile users and API keys.
    fn access_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut invalid = |key: &str, message: &str| problems.push(Problem::new(key, message));
        for (i, user) in self.profile.users.iter().enumerate() {
            if user.name.trim().is_empty() {
                invalid(&format!("profile.users[{i}].name"), "is empty");
            }
            if argon2::PasswordHash::new(user.password_hash.expose_secret()).is_err() {
                invalid(
                    &format!("profile.users[{i}].password_hash"),
                    "is not an Argon2 hash; make one with `jss-tracker hash-password`",
                );
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, key) in self.api_keys.iter().enumerate() {
            let at = format!("api_keys[{i}]");
            if key.key.expose_secret().trim().is_empty() {
                invalid(&format!("{at}.key"), "is empty");
            } else if !seen.insert(canonical_api_key(key.key.expose_secret())) {
                invalid(&format!("{at}.key"), "is used twice");
            }
            for origin in &key.cors_origins {
                if origin != "*"
                    && !(origin.starts_with("http://") || origin.starts_with("https://"))
                {
                    invalid(
                        &format!("{at}.cors_origins"),
                        &format!(
                            "\"{origin}\" is not \"*\" or an origin like https://app.example.com"
                        ),
                    );
                }
            }
        }
        problems
    }

    /// What a person running the tracker with these settings should know: the tracker is
    /// disabled, it has no API key, the admin token is missing or weak, an origin is `*`,
    /// cookies cannot cross sites. `serve` prints them in its banner, `check-config` on
    /// standard error.
    pub fn warnings(&self, listen: Option<SocketAddr>) -> Vec<String> {
        let mut warnings = Vec::new();
        if !self.tracker.enabled {
            warnings.push(
                "the tracker is disabled: tracking requests answer 404 until tracker.enabled = true \
                 (or JSS_TRACKER__TRACKER__ENABLED=true)"
                    .to_string(),
            );
        }
        if self.api_keys.is_empty() {
            warnings.push(
                "no API key is configured: every tracking request is refused; add an [[api_keys]] \
                 entry (`jss-tracker init` writes one)"
                    .to_string(),
            );
        }
        let listen = listen.or_else(|| self.server.listen.resolve().ok());
        if let Some(addr) = listen {
            if !(addr.ip().is_loopback() || addr.ip().is_unspecified())
                && self.server.trusted_proxies.is_empty()
            {
                warnings.push(
                    "serving plain HTTP on a non-loopback address with no trusted proxy: cookies are \
                     SameSite=Lax, so browsers drop them for a cross-site app; put a TLS proxy in front \
                     and list it in server.trusted_proxies"
                        .to_string(),
                );
            }
        }
        match &self.admin.token {
            None => warnings
                .push("admin.token is not set: the admin API refuses every request".to_string()),
            Some(token) if token.expose_secret().trim().len() < MIN_ADMIN_TOKEN_LEN => warnings
                .push(format!(
                    "admin.token is weak (shorter than {MIN_ADMIN_TOKEN_LEN} characters): anyone who guesses it reads every contact"
                )),
            Some(_) => {}
        }
        if self
            .api_keys
            .iter()
            .any(|k| k.cors_origins.iter().any(|o| o == "*"))
        {
            warnings.push(
                "an API key allows any origin (\"*\"): fine for development only".to_string(),
            );
        }
        if self.identification.trust == IdentificationTrustSetting::Client {
            warnings.push(
                "identification.trust = \"client\": any browser holding the public API key can \
                 claim any identifier and merge that person's profile into its own; only for an \
                 intranet (see docs/security.md)"
                    .to_string(),
            );
        }
        for key in &self.api_keys {
            if key.server_side && !key.cors_origins.is_empty() {
                warnings.push(format!(
                    "API key '{}' is server_side: its cors_origins are ignored (browsers may not \
                     use it)",
                    key.name
                ));
            }
        }
        warnings
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
