//! Where a visit came from: its channel, its source and its UTM tags, worked out once, from its
//! first page view's landing URL and referrer, when the visit opens.
//!
//! Channels follow the taxonomy marketers compare trackers by (Sitecore's channel taxonomy where
//! it fits, the defaults of Google Analytics elsewhere): a tag the site put on its own links
//! (`utm_medium`, a search ad's click id) says more than the referrer a browser may or may not
//! send, so tags are read first, then the referrer. The search engines and social networks a
//! referrer is recognised by are data (`data/referrers.toml`), extended in configuration.

use serde::{Deserialize, Serialize};

/// A visit's channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// No referrer from another site and no tags: typed, bookmarked, or a referrer withheld.
    Direct,
    /// From a search engine's results, unpaid.
    OrganicSearch,
    /// From a search ad (`utm_medium=cpc` and the like, or an ad click id such as `gclid`).
    PaidSearch,
    /// From a social network (its referrer, or `utm_medium=social`).
    Social,
    /// From an email (`utm_medium=email` or `newsletter`).
    Email,
    /// From a link on another site.
    Referral,
    /// Tagged as a campaign (`utm_*`, `sc_camp`) that no channel above claims.
    Campaign,
}

impl Channel {
    /// Every channel, in the order reports list them.
    pub const ALL: [Channel; 7] = [
        Self::Direct,
        Self::OrganicSearch,
        Self::PaidSearch,
        Self::Social,
        Self::Email,
        Self::Referral,
        Self::Campaign,
    ];

    /// The stored and API name (`organic_search`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::OrganicSearch => "organic_search",
            Self::PaidSearch => "paid_search",
            Self::Social => "social",
            Self::Email => "email",
            Self::Referral => "referral",
            Self::Campaign => "campaign",
        }
    }

    /// The channel of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// The UTM tags of a landing URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Utm {
    /// `utm_source`.
    pub source: Option<String>,
    /// `utm_medium`.
    pub medium: Option<String>,
    /// `utm_campaign`.
    pub campaign: Option<String>,
    /// `utm_term`.
    pub term: Option<String>,
    /// `utm_content`.
    pub content: Option<String>,
}

impl Utm {
    /// Whether any tag is set.
    pub fn any(&self) -> bool {
        self.source.is_some()
            || self.medium.is_some()
            || self.campaign.is_some()
            || self.term.is_some()
            || self.content.is_some()
    }
}

/// Where a visit came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acquisition {
    /// Its channel.
    pub channel: Channel,
    /// Its source: `utm_source` when tagged, else the host of a referrer from another site
    /// (without `www.`).
    pub source: Option<String>,
    /// The landing URL's UTM tags.
    pub utm: Utm,
}

impl Acquisition {
    /// The columns a store keeps it in, in the order of [`Acquisition::columns`].
    pub const COLUMNS: [&'static str; 7] = [
        "channel",
        "source",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_term",
        "utm_content",
    ];

    /// Its values, one per [`Acquisition::COLUMNS`].
    pub fn columns(&self) -> [Option<&str>; 7] {
        [
            Some(self.channel.as_str()),
            self.source.as_deref(),
            self.utm.source.as_deref(),
            self.utm.medium.as_deref(),
            self.utm.campaign.as_deref(),
            self.utm.term.as_deref(),
            self.utm.content.as_deref(),
        ]
    }

    /// What [`Acquisition::columns`] stored; `None` without a known channel (a visit stored
    /// before channels were).
    pub fn from_columns(values: [Option<String>; 7]) -> Option<Self> {
        let [channel, source, utm_source, medium, campaign, term, content] = values;
        Some(Self {
            channel: Channel::parse(channel.as_deref()?)?,
            source,
            utm: Utm {
                source: utm_source,
                medium,
                campaign,
                term,
                content,
            },
        })
    }
}

impl Default for Acquisition {
    fn default() -> Self {
        Self {
            channel: Channel::Direct,
            source: None,
            utm: Utm::default(),
        }
    }
}

/// What a visit's first page view says of where it came from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Arrival<'a> {
    /// The landing URL (absolute, or a path as JSS apps send it).
    pub landing_url: Option<&'a str>,
    /// The referrer (the page view's, or the request's `Referer` from another site).
    pub referrer: Option<&'a str>,
    /// The app's own origin (`Origin` of the tracking request), whose pages are not referrers.
    pub origin: Option<&'a str>,
    /// Whether the request triggered a campaign (`sc_camp`).
    pub campaign: bool,
}

/// The longest tag or source kept, in bytes (cut at a character boundary): tags come from
/// URLs anyone can write.
pub const MAX_TAG_BYTES: usize = 200;

/// Ad click ids that mark a visit from a search ad.
const CLICK_IDS: [&str; 5] = ["gclid", "gbraid", "wbraid", "msclkid", "dclid"];

/// Referrer hosts known as search engines and social networks.
#[derive(Debug, Clone)]
pub struct Referrers {
    /// (pattern, is a search engine), configured ones first.
    patterns: Vec<(Pattern, bool)>,
}

/// The lists shipped with the tracker.
const BUILT_IN: &str = include_str!("../data/referrers.toml");

#[derive(Debug, Deserialize)]
struct Lists {
    #[serde(default)]
    search: Vec<String>,
    #[serde(default)]
    social: Vec<String>,
}

impl Default for Referrers {
    fn default() -> Self {
        Self::new(&[], &[])
    }
}

impl Referrers {
    /// The built-in lists, after `search` and `social` from the configuration (which win when
    /// a host is on both).
    pub fn new(search: &[String], social: &[String]) -> Self {
        let built_in: Lists = toml::from_str(BUILT_IN).unwrap_or(Lists {
            search: Vec::new(),
            social: Vec::new(),
        });
        let tagged = |names: &[String], is_search: bool| {
            names
                .iter()
                .map(|n| (Pattern::new(n), is_search))
                .collect::<Vec<_>>()
        };
        let patterns = [
            tagged(search, true),
            tagged(social, false),
            tagged(&built_in.search, true),
            tagged(&built_in.social, false),
        ]
        .concat();
        Self { patterns }
    }

    /// The built-in lists alone, parsed once: how visits stored before channels were are
    /// worked out when they are read.
    pub fn built_in() -> &'static Self {
        static BUILT_IN_LISTS: std::sync::LazyLock<Referrers> =
            std::sync::LazyLock::new(Referrers::default);
        &BUILT_IN_LISTS
    }

    /// Where a stored visit came from, worked out from what it kept (its landing URL, its
    /// referrer, whether it had a campaign) with the built-in lists: visits stored before
    /// channels were, in a store's migration or when read.
    pub fn of_stored(
        landing_url: Option<&str>,
        referrer: Option<&str>,
        campaign: bool,
    ) -> Acquisition {
        Self::built_in().classify(Arrival {
            landing_url,
            referrer,
            origin: None,
            campaign,
        })
    }

    /// How many hosts the lists hold.
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Whether the lists are empty.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// `Some(true)` for a search engine's host (or name, as `utm_source=google` gives it),
    /// `Some(false)` for a social network's, `None` for any other.
    fn kind(&self, host: &str) -> Option<bool> {
        self.patterns
            .iter()
            .find(|(pattern, _)| pattern.matches(host))
            .map(|(_, is_search)| *is_search)
    }

    /// Where a visit came from, from what its first page view says.
    pub fn classify(&self, arrival: Arrival<'_>) -> Acquisition {
        // Most first page views are a bare path with no referrer: nothing to parse then (every
        // new visitor pays for this).
        let landing = arrival
            .landing_url
            .filter(|url| url.contains('?') || arrival.referrer.is_some())
            .and_then(parse_url);
        let mut utm = Utm::default();
        let mut clicked_ad = false;
        let mut sc_camp = arrival.campaign;
        if let Some(url) = &landing {
            for (key, value) in url.query_pairs() {
                let kept = || tag(&value);
                match key.as_ref() {
                    "utm_source" => utm.source = kept(),
                    "utm_medium" => utm.medium = kept(),
                    "utm_campaign" => utm.campaign = kept(),
                    "utm_term" => utm.term = kept(),
                    "utm_content" => utm.content = kept(),
                    "sc_camp" | "sc_trk" => sc_camp = true,
                    key if CLICK_IDS.contains(&key) => clicked_ad = true,
                    _ => {}
                }
            }
        }
        let referrer = arrival
            .referrer
            .and_then(parse_url)
            .and_then(|url| url.host_str().map(bare_host))
            .filter(|host| !host.is_empty())
            .filter(|host| {
                let own = arrival
                    .origin
                    .and_then(parse_url)
                    .or(landing)
                    .and_then(|url| url.host_str().map(bare_host));
                own.as_ref() != Some(host)
            });
        let channel = self
            .tagged_channel(&utm, clicked_ad)
            .or_else(|| (utm.any() || sc_camp).then_some(Channel::Campaign))
            .or_else(|| {
                referrer.as_deref().map(|host| match self.kind(host) {
                    Some(true) => Channel::OrganicSearch,
                    Some(false) => Channel::Social,
                    None => Channel::Referral,
                })
            })
            .unwrap_or(Channel::Direct);
        let source = utm
            .source
            .clone()
            .or_else(|| referrer.as_deref().and_then(tag));
        Acquisition {
            channel,
            source,
            utm,
        }
    }

    /// The channel the landing URL's tags name, if any.
    fn tagged_channel(&self, utm: &Utm, clicked_ad: bool) -> Option<Channel> {
        let medium = utm.medium.as_deref().map(str::to_ascii_lowercase);
        let source = utm.source.as_deref().map(str::to_ascii_lowercase);
        let social_source = source.as_deref().and_then(|s| self.kind(s)) == Some(false);
        let by_medium = medium.as_deref().and_then(|medium| match medium {
            "cpc" | "ppc" | "paid" | "paidsearch" | "paid_search" | "paid-search" | "sem" => {
                Some(if social_source {
                    Channel::Social
                } else {
                    Channel::PaidSearch
                })
            }
            "email" | "e-mail" | "e_mail" | "newsletter" => Some(Channel::Email),
            "social" | "social-network" | "social_network" | "social-media" | "social_media"
            | "sm" | "social network" | "social media" => Some(Channel::Social),
            "organic" => Some(Channel::OrganicSearch),
            "referral" => Some(Channel::Referral),
            _ => None,
        });
        let by_source = match source.as_deref() {
            Some("email" | "newsletter") => Some(Channel::Email),
            _ if social_source => Some(Channel::Social),
            _ => None,
        };
        by_medium
            .or(clicked_ad.then_some(Channel::PaidSearch))
            .or(by_source)
    }
}

/// A URL as given, or a path on an unknown host (JSS apps send paths).
fn parse_url(text: &str) -> Option<url::Url> {
    static BASE: std::sync::LazyLock<Option<url::Url>> =
        std::sync::LazyLock::new(|| url::Url::parse("relative://landing/").ok());
    match url::Url::parse(text) {
        Ok(url) => Some(url),
        Err(url::ParseError::RelativeUrlWithoutBase) => BASE.as_ref()?.join(text).ok(),
        Err(_) => None,
    }
    .filter(|url| url.scheme() != "relative" || url.host_str() == Some("landing"))
}

/// A host without `www.`; a relative URL's placeholder host is no host.
fn bare_host(host: &str) -> String {
    if host == "landing" {
        return String::new();
    }
    host.strip_prefix("www.")
        .unwrap_or(host)
        .to_ascii_lowercase()
}

/// A tag as kept: trimmed, at most [`MAX_TAG_BYTES`], none when empty.
fn tag(value: &str) -> Option<String> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let mut end = value.len().min(MAX_TAG_BYTES);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    Some(value[..end].to_string())
}

/// A name from the lists: a host (and its subdomains), or a label under any suffix (`google.*`).
#[derive(Debug, Clone)]
enum Pattern {
    Host(String),
    AnySuffix(String),
}

impl Pattern {
    fn new(name: &str) -> Self {
        let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
        match name.strip_suffix(".*") {
            Some(label) => Self::AnySuffix(label.to_string()),
            None => Self::Host(name),
        }
    }

    /// Whether `host` (lowercase, or a bare name such as `google` from `utm_source`) is this.
    fn matches(&self, host: &str) -> bool {
        match self {
            Self::Host(name) => {
                host == name
                    || (host.len() > name.len()
                        && host.ends_with(name.as_str())
                        && host.as_bytes()[host.len() - name.len() - 1] == b'.')
                    // A bare name (`utm_source=facebook`) is the site's own label, the one
                    // before the top-level domain: `facebook.com`, `news.ycombinator.com`.
                    || (!host.contains('.') && name.rsplit('.').nth(1) == Some(host))
            }
            Self::AnySuffix(label) => {
                let labels: Vec<&str> = host.split('.').collect();
                host == label
                    || labels
                        .iter()
                        .enumerate()
                        .any(|(i, l)| l == label && is_suffix(&labels[i + 1..]))
            }
        }
    }
}

/// Whether `labels` look like a public suffix: a top-level domain (`com`, `de`), or a
/// country's second level (`co.uk`, `com.au`). A short list instead of the public suffix list:
/// enough to tell `google.co.uk` from `google.example.net`.
fn is_suffix(labels: &[&str]) -> bool {
    const SECOND_LEVELS: [&str; 11] = [
        "co", "com", "net", "org", "ac", "gov", "edu", "ne", "or", "gob", "go",
    ];
    match labels {
        [_] => true,
        [second, country] => country.len() == 2 && SECOND_LEVELS.contains(second),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn classify(landing: &str, referrer: Option<&str>) -> Acquisition {
        Referrers::default().classify(Arrival {
            landing_url: Some(landing),
            referrer,
            origin: Some("https://shop.example.com"),
            campaign: false,
        })
    }

    #[test]
    fn referrers_give_search_social_and_referral() {
        let google = classify("/", Some("https://www.google.co.uk/search?q=shoes"));
        assert_eq!(google.channel, Channel::OrganicSearch);
        assert_eq!(google.source.as_deref(), Some("google.co.uk"));
        assert_eq!(
            classify("/", Some("https://t.co/abc123")).channel,
            Channel::Social
        );
        assert_eq!(
            classify("/", Some("https://l.facebook.com/l.php?u=x")).channel,
            Channel::Social
        );
        let blog = classify("/", Some("https://blog.example.org/post"));
        assert_eq!(blog.channel, Channel::Referral);
        assert_eq!(blog.source.as_deref(), Some("blog.example.org"));
        assert_eq!(
            classify("/", Some("https://google.example.net/")).channel,
            Channel::Referral,
            "a google label with a long suffix is not Google"
        );
        assert_eq!(
            classify("/", Some("https://www.google.com.br/")).channel,
            Channel::OrganicSearch
        );
    }

    #[test]
    fn no_referrer_or_the_apps_own_pages_are_direct() {
        let none = classify("/", None);
        assert_eq!(none.channel, Channel::Direct);
        assert_eq!(none.source, None);
        assert_eq!(
            classify("/", Some("https://shop.example.com/cart")).channel,
            Channel::Direct
        );
        assert_eq!(
            classify("/", Some("https://www.shop.example.com/")).channel,
            Channel::Direct
        );
        let no_origin = Referrers::default().classify(Arrival {
            landing_url: Some("https://shop.example.com/a"),
            referrer: Some("https://shop.example.com/b"),
            origin: None,
            campaign: false,
        });
        assert_eq!(no_origin.channel, Channel::Direct, "the landing URL's host");
        assert_eq!(classify("/", Some("not a url")).channel, Channel::Direct);
    }

    #[test]
    fn tags_win_over_the_referrer() {
        let news = classify(
            "/offer?utm_source=newsletter&utm_medium=email&utm_campaign=spring",
            None,
        );
        assert_eq!(news.channel, Channel::Email);
        assert_eq!(news.source.as_deref(), Some("newsletter"));
        assert_eq!(news.utm.campaign.as_deref(), Some("spring"));
        let ad = classify(
            "https://shop.example.com/?utm_source=google&utm_medium=cpc&utm_term=red+shoes",
            Some("https://www.google.com/"),
        );
        assert_eq!(ad.channel, Channel::PaidSearch);
        assert_eq!(ad.utm.term.as_deref(), Some("red shoes"));
        assert_eq!(
            classify("/?gclid=abc", Some("https://www.google.com/")).channel,
            Channel::PaidSearch
        );
        assert_eq!(
            classify("/?utm_source=facebook&utm_medium=cpc", None).channel,
            Channel::Social
        );
        assert_eq!(
            classify("/?utm_medium=social", None).channel,
            Channel::Social
        );
        assert_eq!(
            classify("/?utm_source=news", None).channel,
            Channel::Campaign,
            "news is not news.ycombinator.com"
        );
        assert_eq!(
            classify("/?utm_source=ycombinator", None).channel,
            Channel::Social
        );
        let other = classify("/?utm_campaign=launch", Some("https://blog.example.org/"));
        assert_eq!(other.channel, Channel::Campaign);
        assert_eq!(other.source.as_deref(), Some("blog.example.org"));
        assert_eq!(
            classify("/?sc_camp=Spring", None).channel,
            Channel::Campaign
        );
        let triggered = Referrers::default().classify(Arrival {
            landing_url: Some("/"),
            campaign: true,
            ..Arrival::default()
        });
        assert_eq!(triggered.channel, Channel::Campaign);
    }

    #[test]
    fn configured_hosts_extend_and_override_the_lists() {
        let referrers = Referrers::new(&["search.example.org".into()], &["google.*".into()]);
        let arrive = |referrer| {
            referrers
                .classify(Arrival {
                    landing_url: Some("/"),
                    referrer: Some(referrer),
                    ..Arrival::default()
                })
                .channel
        };
        assert_eq!(
            arrive("https://search.example.org/?q=x"),
            Channel::OrganicSearch
        );
        assert_eq!(arrive("https://www.google.com/"), Channel::Social);
        assert_eq!(arrive("https://www.bing.com/"), Channel::OrganicSearch);
        assert!(Referrers::default().len() > 50, "the built-in lists load");
    }

    #[test]
    fn tags_are_bounded() {
        let long = "x".repeat(1_000);
        let tagged = classify(&format!("/?utm_source={long}&utm_medium=%20"), None);
        assert_eq!(tagged.source.as_ref().map(String::len), Some(MAX_TAG_BYTES));
        assert_eq!(tagged.utm.medium, None);
        let accented = classify(&format!("/?utm_campaign={}", "é".repeat(150)), None);
        assert_eq!(
            accented.utm.campaign.as_ref().map(String::len),
            Some(MAX_TAG_BYTES)
        );
        assert_eq!(
            Channel::parse("organic_search"),
            Some(Channel::OrganicSearch)
        );
        assert_eq!(Channel::parse("nope"), None);
    }

    #[test]
    fn an_acquisition_round_trips_through_its_columns() {
        let tagged = classify("/?utm_source=news&utm_medium=email&utm_content=top", None);
        let stored = tagged.columns().map(|v| v.map(str::to_string));
        assert_eq!(Acquisition::from_columns(stored), Some(tagged));
        assert_eq!(Acquisition::from_columns(Default::default()), None);
    }
}
