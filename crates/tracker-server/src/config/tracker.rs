//! `[tracker]`, `[layout_service]` and `[definitions]`: what is tracked and how.

use super::*;

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

/// `[definitions]`
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DefinitionsSettings {
    /// A definitions file; without one, the shipped defaults.
    pub file: Option<PathBuf>,
}
