//! What an interaction records about the client: its browser, version, operating system and
//! kind of device (parsed from the user agent by the `woothee` crate), and its IP address,
//! anonymised before it is stored.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::acquisition::{Acquisition, Arrival, Referrers};

/// The parsed user agent of an interaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientInfo {
    /// Browser name (`Chrome`, `Firefox`, `Safari`, `Edge`, …).
    pub browser: Option<String>,
    /// Browser version.
    pub browser_version: Option<String>,
    /// Operating system (`Windows 10`, `Mac OSX`, `Android`, `iPhone`, …).
    pub os: Option<String>,
    /// `desktop`, `smartphone`, `mobilephone`, `appliance`, `crawler`, or `other`.
    pub device_type: Option<String>,
}

impl ClientInfo {
    /// Parses a user agent; what the parser does not know stays `None`.
    pub fn parse(user_agent: Option<&str>) -> Self {
        let Some(parsed) = user_agent.and_then(|ua| woothee::parser::Parser::new().parse(ua))
        else {
            return Self::default();
        };
        let known = |value: &str| {
            (!value.is_empty() && value != woothee::woothee::VALUE_UNKNOWN)
                .then(|| value.to_string())
        };
        let device_type = match parsed.category {
            "pc" => Some("desktop".to_string()),
            "smartphone" | "mobilephone" | "appliance" | "crawler" => {
                Some(parsed.category.to_string())
            }
            "misc" => Some("other".to_string()),
            _ => None,
        };
        Self {
            browser: known(parsed.name),
            browser_version: known(parsed.version),
            os: known(parsed.os),
            device_type,
        }
    }
}

/// What an interaction records about its client when it opens: written with its row, once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attribution {
    /// The parsed user agent.
    pub client: ClientInfo,
    /// The client's address, already anonymised.
    pub ip: Option<IpAddr>,
    /// The URL of the visit's first page view (of its first request): where it landed.
    pub landing_url: Option<String>,
    /// That page view's referrer (else the request's `Referer` from another site): where the
    /// visitor came from.
    pub referrer: Option<String>,
    /// The visit's channel, source and UTM tags, worked out when it opened (`None`: a visit
    /// stored before they were).
    pub acquisition: Option<Acquisition>,
    /// The visit's language (a BCP 47 tag such as `en-US`): its first page view's, else the
    /// browser's first `Accept-Language`.
    pub language: Option<String>,
}

impl Attribution {
    /// Takes the landing page and its referrer from the first page view among `events` (a
    /// new visit's first request; the request's `Referer` from another site when the page view
    /// names none), and works out where the visit came from. `campaign`: whether the request
    /// triggered a campaign.
    pub fn land(
        &mut self,
        events: &[crate::session::StoredEvent],
        visitor: &crate::session::Visitor,
        referrers: &Referrers,
        campaign: bool,
    ) {
        if let Some(page) = events.iter().find_map(|e| e.event.page.as_ref()) {
            self.landing_url = Some(page.url.clone());
            self.referrer.clone_from(&page.referrer);
            self.language = page.language.as_deref().and_then(language_tag);
        }
        if self.referrer.is_none() {
            self.referrer.clone_from(&visitor.referer);
        }
        if self.language.is_none() {
            self.language.clone_from(&visitor.language);
        }
        self.acquisition = Some(referrers.classify(Arrival {
            landing_url: self.landing_url.as_deref(),
            referrer: self.referrer.as_deref(),
            origin: visitor.origin.as_deref(),
            campaign,
        }));
    }
}

/// The first language tag of `text` (an `Accept-Language` header, or a page view's
/// `language`), in its usual case (`en-US`, `zh-Hant-TW`); `None` for `*`, an empty list, or
/// anything but letters, digits and hyphens (at most 35 bytes).
pub fn language_tag(text: &str) -> Option<String> {
    let first = text.split(',').next()?.split(';').next()?.trim();
    let valid = !first.is_empty()
        && first.len() <= 35
        && first
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !first.starts_with('-');
    if !valid {
        return None;
    }
    let tag = first
        .split('-')
        .enumerate()
        .map(|(i, part)| match (i, part.len()) {
            (0, _) => part.to_ascii_lowercase(),
            (_, 2) => part.to_ascii_uppercase(),
            (_, 4) => {
                let lower = part.to_ascii_lowercase();
                lower[..1].to_ascii_uppercase() + &lower[1..]
            }
            _ => part.to_ascii_lowercase(),
        })
        .collect::<Vec<_>>()
        .join("-");
    Some(tag)
}

/// How client addresses are stored (`privacy.ip_anonymization`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpAnonymization {
    /// IPv4's last octet and IPv6's last 80 bits zeroed (what Google Analytics did).
    #[default]
    Truncate,
    /// No address is stored at all.
    Drop,
    /// The address as it came (only where the law and your privacy notice allow it).
    Off,
}

/// The address to store for `ip` under `mode`.
pub fn anonymize(ip: IpAddr, mode: IpAnonymization) -> Option<IpAddr> {
    match mode {
        IpAnonymization::Off => Some(ip),
        IpAnonymization::Drop => None,
        IpAnonymization::Truncate => Some(match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                IpAddr::from([a, b, c, 0])
            }
            IpAddr::V6(v6) => {
                // An IPv4 address carried in IPv6 is anonymised as IPv4.
                if let Some(v4) = v6.to_ipv4_mapped() {
                    return anonymize(IpAddr::V4(v4), mode);
                }
                let bits = u128::from(v6) & !((1u128 << 80) - 1);
                IpAddr::from(bits.to_be_bytes())
            }
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_parse_into_browser_os_and_device() {
        let chrome = ClientInfo::parse(Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"));
        assert_eq!(chrome.browser.as_deref(), Some("Chrome"));
        assert_eq!(chrome.browser_version.as_deref(), Some("131.0.0.0"));
        assert_eq!(chrome.os.as_deref(), Some("Windows 10"));
        assert_eq!(chrome.device_type.as_deref(), Some("desktop"));
        let iphone = ClientInfo::parse(Some("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"));
        assert_eq!(iphone.browser.as_deref(), Some("Safari"));
        assert_eq!(iphone.os.as_deref(), Some("iPhone"));
        assert_eq!(iphone.device_type.as_deref(), Some("smartphone"));
        assert_eq!(ClientInfo::parse(None), ClientInfo::default());
    }

    #[test]
    fn language_tags_are_read_and_bounded() {
        assert_eq!(
            language_tag("de-de,de;q=0.9,en;q=0.8").as_deref(),
            Some("de-DE")
        );
        assert_eq!(language_tag("EN").as_deref(), Some("en"));
        assert_eq!(language_tag("zh-hant-tw").as_deref(), Some("zh-Hant-TW"));
        assert_eq!(language_tag(" fr-CA ;q=1").as_deref(), Some("fr-CA"));
        assert_eq!(language_tag("*"), None);
        assert_eq!(language_tag(""), None);
        assert_eq!(language_tag("<script>"), None);
        assert_eq!(language_tag(&"a".repeat(36)), None);
        assert_eq!(language_tag("-en"), None);
    }

    #[test]
    fn addresses_are_anonymised() {
        let t = IpAnonymization::Truncate;
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(anonymize(ip("203.0.113.77"), t), Some(ip("203.0.113.0")));
        assert_eq!(
            anonymize(ip("2001:db8:85a3:1234:5678:8a2e:370:7334"), t),
            Some(ip("2001:db8:85a3::"))
        );
        assert_eq!(
            anonymize(ip("::ffff:203.0.113.77"), t),
            Some(ip("203.0.113.0"))
        );
        assert_eq!(anonymize(ip("203.0.113.77"), IpAnonymization::Drop), None);
        assert_eq!(
            anonymize(ip("203.0.113.77"), IpAnonymization::Off),
            Some(ip("203.0.113.77"))
        );
    }
}
