//! `[robots]`, `[personalization]`, `[identification]`, `[privacy]` and `[rate_limit]`: who
//! is kept, known and throttled.

use super::*;

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

/// `[privacy]`
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacySettings {
    /// How client addresses are stored: `truncate` (IPv4's last octet and IPv6's last 80 bits
    /// zeroed), `drop` (not at all) or `off` (as they came).
    pub ip_anonymization: IpAnonymization,
}

/// `[acquisition]`: where visits come from. The tracker knows the common search engines and
/// social networks by their hosts (its built-in lists); these add hosts to them, and win
/// where a host is on both (`"intranet-search.example.com"`, or `"name.*"` for a name under
/// any country suffix).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AcquisitionSettings {
    /// More search engines' hosts: their referrers make a visit `organic_search`.
    pub search: Vec<String>,
    /// More social networks' hosts: their referrers make a visit `social`.
    pub social: Vec<String>,
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
