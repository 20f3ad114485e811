//! Who is a robot: known crawlers by their user agent (the `isbot` crate's maintained list, plus
//! a few the list lacks, plus configured patterns), configured IP ranges, and the policy for
//! visitors nothing has classified yet. Robots are never written to the experience database.

use std::{net::IpAddr, sync::Arc};

use ipnet::IpNet;
use regex::RegexSet;
use serde::{Deserialize, Serialize};

/// Why a visitor is treated as a robot (the label of the `/metrics` counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RobotReason {
    /// Its user agent is a known robot's, or it sent none.
    UserAgent,
    /// It comes from a configured IP range.
    IpRange,
    /// Under `robots.unclassified = "robot"`: not (yet) identified as a person.
    Unidentified,
}

impl RobotReason {
    /// Every reason.
    pub const ALL: [RobotReason; 3] = [Self::UserAgent, Self::IpRange, Self::Unidentified];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserAgent => "user_agent",
            Self::IpRange => "ip_range",
            Self::Unidentified => "unidentified",
        }
    }
}

/// How visitors that no rule classified are treated (`robots.unclassified`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unclassified {
    /// Stored as people from their first request: headless and connected-mode apps, where the
    /// identification script never runs, keep their visitors.
    #[default]
    Human,
    /// Dropped as robots until the identification script proves otherwise, as Sitecore does.
    Robot,
}

/// Crawlers that the `isbot` list (a snapshot of the npm `isbot` patterns) does not name:
/// mostly AI crawlers and fetchers newer than it, and services that describe themselves without
/// the word "bot". Matched case-insensitively, anywhere in the user agent.
const EXTRA_CRAWLERS: &[&str] = &[
    r"gptbot",
    r"chatgpt-user",
    r"oai-searchbot",
    r"claudebot",
    r"claude-web",
    r"anthropic-ai",
    r"perplexitybot",
    r"perplexity-user",
    r"ccbot/",
    r"bytespider",
    r"amazonbot",
    r"applebot",
    r"google-extended",
    r"googleother",
    r"google-inspectiontool",
    r"meta-externalagent",
    r"meta-externalfetcher",
    r"cohere-ai",
    r"diffbot",
    r"imagesiftbot",
    r"youbot",
    r"headless",
    r"lighthouse",
    r"pagespeed",
    r"pingdom",
    r"statuscake",
    r"site24x7",
    r"betteruptime",
    r"httpie/",
    r"libwww-perl",
    r"postmanruntime",
    r"insomnia/",
    r"^undici",
    r"sitebulb",
    r"^whatsapp/",
];

/// The robot rules, compiled once at start.
#[derive(Debug)]
pub struct RobotRules {
    known: isbot::Bots,
    extra: RegexSet,
    ranges: Vec<IpNet>,
    agents: Agents,
}

/// What a user agent says, worked out once per distinct string: whether it is a known robot's,
/// and the browser, OS and device it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// A known robot's (the maintained list or a configured pattern).
    pub robot: bool,
    /// The parsed user agent.
    pub client: crate::client_info::ClientInfo,
}

/// Recently seen user agents, bounded. A site's visitors send a few thousand distinct strings,
/// and each visit's first request used to match it against every robot pattern and parse it
/// again (~2 µs of a new visitor's ~50 µs); a hit costs a hash of the string. Strings longer
/// than [`Agents::MAX_CACHED_BYTES`] are worked out every time, so that hostile traffic with
/// long random agents can only churn the cache, never grow it past
/// `CAPACITY × MAX_CACHED_BYTES` (~2.5 MB).
struct Agents(quick_cache::sync::Cache<Box<str>, Arc<Agent>>);

impl Agents {
    const CAPACITY: usize = 4_096;
    const MAX_CACHED_BYTES: usize = 640;
}

impl std::fmt::Debug for Agents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Agents({} cached)", self.0.len())
    }
}

/// A configured user-agent pattern that is not a valid regular expression.
#[derive(Debug, thiserror::Error)]
#[error("\"{pattern}\" is not a regular expression: {message}")]
pub struct PatternError {
    /// The pattern as configured.
    pub pattern: String,
    /// Why.
    pub message: String,
}

impl RobotRules {
    /// The maintained list, the crawlers it lacks, and the configured `user_agents` (regular
    /// expressions, case-insensitive) and `ip_ranges`.
    pub fn new(user_agents: &[String], ip_ranges: &[IpNet]) -> Result<Self, PatternError> {
        for pattern in user_agents {
            regex::Regex::new(pattern).map_err(|e| PatternError {
                pattern: pattern.clone(),
                message: e.to_string(),
            })?;
        }
        let patterns = EXTRA_CRAWLERS
            .iter()
            .map(|p| format!("(?i){p}"))
            .chain(user_agents.iter().map(|p| format!("(?i){p}")));
        let extra = RegexSet::new(patterns).map_err(|e| PatternError {
            pattern: user_agents.join(", "),
            message: e.to_string(),
        })?;
        Ok(Self {
            known: isbot::Bots::default(),
            extra,
            ranges: ip_ranges.to_vec(),
            agents: Agents(quick_cache::sync::Cache::new(Agents::CAPACITY)),
        })
    }

    /// What `user_agent` says: worked out once per distinct string (the last 4,096 of up to
    /// 640 bytes are kept), so a site's few thousand user agents cost a hash each.
    pub fn agent(&self, user_agent: &str) -> Arc<Agent> {
        let work_out = || {
            Arc::new(Agent {
                robot: self.is_robot_agent(user_agent),
                client: crate::client_info::ClientInfo::parse(Some(user_agent)),
            })
        };
        if user_agent.len() > Agents::MAX_CACHED_BYTES {
            return work_out();
        }
        if let Some(agent) = self.agents.0.get(user_agent) {
            return agent;
        }
        let agent = work_out();
        self.agents.0.insert(user_agent.into(), agent.clone());
        agent
    }

    /// Whether the request's user agent or address makes it a robot, and why. An empty or
    /// missing user agent is a robot's: every browser sends one.
    pub fn classify(&self, user_agent: Option<&str>, ip: Option<IpAddr>) -> Option<RobotReason> {
        if let Some(ip) = ip {
            if self.ranges.iter().any(|range| range.contains(&ip)) {
                return Some(RobotReason::IpRange);
            }
        }
        match user_agent.map(str::trim) {
            None | Some("") => Some(RobotReason::UserAgent),
            Some(ua) if self.agent(ua).robot => Some(RobotReason::UserAgent),
            Some(_) => None,
        }
    }

    /// Whether a user agent is a known robot's.
    pub fn is_robot_agent(&self, user_agent: &str) -> bool {
        self.extra.is_match(user_agent) || self.known.is_bot(user_agent)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Real user agents, as their owners document or send them.
    const ROBOTS: &[(&str, &str)] = &[
        // search engines
        ("Googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
        ("Googlebot smartphone", "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.116 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
        ("Googlebot-Image", "Googlebot-Image/1.0"),
        ("Bingbot", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"),
        ("Yandex", "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)"),
        ("Baidu", "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)"),
        ("DuckDuckBot", "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)"),
        ("Applebot", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)"),
        ("Seznam", "Mozilla/5.0 (compatible; SeznamBot/4.0; +https://o-seznam.cz/napoveda/vyhledavani/en/seznambot-crawler/)"),
        ("Yahoo Slurp", "Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)"),
        // SEO crawlers
        ("AhrefsBot", "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)"),
        ("SemrushBot", "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)"),
        ("MJ12bot", "Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)"),
        ("DotBot", "Mozilla/5.0 (compatible; DotBot/1.2; +https://opensiteexplorer.org/dotbot; help@moz.com)"),
        ("Screaming Frog", "Screaming Frog SEO Spider/19.0"),
        ("Sitebulb", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 (compatible; Sitebulb/6.6)"),
        // social link previewers
        ("Facebook", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"),
        ("Twitterbot", "Twitterbot/1.0"),
        ("LinkedIn", "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)"),
        ("Slack", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"),
        ("Discord", "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)"),
        ("WhatsApp", "WhatsApp/2.23.20.0"),
        ("Telegram", "TelegramBot (like TwitterBot)"),
        ("Pinterest", "Pinterestbot/1.0 (+http://www.pinterest.com/bot.html)"),
        // AI crawlers
        ("GPTBot", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)"),
        ("ChatGPT-User", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; +https://openai.com/bot"),
        ("ClaudeBot", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)"),
        ("PerplexityBot", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; PerplexityBot/1.0; +https://perplexity.ai/perplexitybot)"),
        ("CCBot", "CCBot/2.0 (https://commoncrawl.org/faq/)"),
        ("Bytespider", "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)"),
        ("Amazonbot", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36 (Amazonbot/0.1; +https://developer.amazon.com/support/amazonbot)"),
        ("Meta", "meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)"),
        // uptime monitors
        ("UptimeRobot", "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)"),
        ("Pingdom", "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)"),
        ("StatusCake", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 StatusCake"),
        ("Better Uptime", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Better Uptime Bot"),
        ("Site24x7", "Site24x7"),
        // HTTP libraries and CLIs
        ("curl", "curl/8.5.0"),
        ("Wget", "Wget/1.21.4"),
        ("python-requests", "python-requests/2.31.0"),
        ("aiohttp", "Python/3.11 aiohttp/3.9.1"),
        ("Go", "Go-http-client/1.1"),
        ("axios", "axios/1.6.2"),
        ("node-fetch", "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)"),
        ("undici", "undici"),
        ("okhttp", "okhttp/4.12.0"),
        ("Java", "Java/17.0.9"),
        ("Apache HttpClient", "Apache-HttpClient/4.5.14 (Java/17.0.9)"),
        ("HTTPie", "HTTPie/3.2.2"),
        ("Postman", "PostmanRuntime/7.36.0"),
        ("libwww-perl", "libwww-perl/6.72"),
        // headless browsers that say so
        ("HeadlessChrome", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.109 Safari/537.36"),
        ("Lighthouse", "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse"),
        ("PageSpeed", "Mozilla/5.0 (Linux; Android 7.0; Moto G (4)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.5414.101 Mobile Safari/537.36 PTST/230216.190255 Google Page Speed Insights"),
        ("PhantomJS", "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1"),
    ];

    const PEOPLE: &[(&str, &str)] = &[
        ("Chrome, Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
        ("Chrome, macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
        ("Chrome, Linux", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
        ("Chrome, Android", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"),
        ("Chrome, iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1"),
        ("Firefox, Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"),
        ("Firefox, Linux", "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"),
        ("Firefox, Android", "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0"),
        ("Safari, macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15"),
        ("Safari, iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"),
        ("Safari, iPad", "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"),
        ("Edge, Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.70"),
        ("Edge, Android", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.2903.70"),
        ("Samsung Internet", "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S928B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36"),
        ("Opera", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0"),
        ("Facebook in-app, iOS", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/485.0.0.44.101;FBBV/662440813;FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.6.1;FBSS/3;FBCR/;FBID/phone;FBLC/en_US;FBOP/80]"),
        ("Instagram in-app, Android", "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240805.005; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/127.0.6533.103 Mobile Safari/537.36 Instagram 344.0.0.34.90 Android (34/14; 420dpi; 1080x2205; Google/google; Pixel 8; shiba; shiba; en_US; 628614485)"),
        ("LinkedIn in-app", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [LinkedInApp]/9.30.1254"),
        ("Android WebView", "Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.39 Mobile Safari/537.36"),
    ];

    #[test]
    fn real_user_agents_are_classified() {
        let rules = RobotRules::new(&[], &[]).unwrap();
        assert!(ROBOTS.len() + PEOPLE.len() >= 60);
        let mut wrong = Vec::new();
        for (name, ua) in ROBOTS {
            if rules.classify(Some(ua), None) != Some(RobotReason::UserAgent) {
                wrong.push(format!("robot taken for a person: {name}"));
            }
        }
        for (name, ua) in PEOPLE {
            if rules.classify(Some(ua), None).is_some() {
                wrong.push(format!("person taken for a robot: {name}"));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn user_agents_are_worked_out_once_and_long_ones_never_kept() {
        let rules = RobotRules::new(&[], &[]).unwrap();
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        let first = rules.agent(chrome);
        assert!(!first.robot);
        assert_eq!(first.client.browser.as_deref(), Some("Chrome"));
        assert!(
            Arc::ptr_eq(&first, &rules.agent(chrome)),
            "a second look is a hit"
        );
        assert!(rules.agent("Googlebot/2.1").robot);
        let long = format!("{chrome} {}", "x".repeat(Agents::MAX_CACHED_BYTES));
        assert_eq!(*rules.agent(&long), *first);
        assert!(!Arc::ptr_eq(&rules.agent(&long), &rules.agent(&long)));
        assert_eq!(rules.agents.0.len(), 2);
    }

    #[test]
    fn no_user_agent_is_a_robot() {
        let rules = RobotRules::new(&[], &[]).unwrap();
        assert_eq!(rules.classify(None, None), Some(RobotReason::UserAgent));
        assert_eq!(
            rules.classify(Some("  "), None),
            Some(RobotReason::UserAgent)
        );
    }

    #[test]
    fn configured_patterns_and_ranges_add_robots() {
        let rules = RobotRules::new(
            &["InternalMonitor/\\d".to_string()],
            &["203.0.113.0/24".parse().unwrap()],
        )
        .unwrap();
        let chrome = PEOPLE[0].1;
        assert_eq!(
            rules.classify(Some("internalmonitor/2 (ours)"), None),
            Some(RobotReason::UserAgent)
        );
        assert_eq!(
            rules.classify(Some(chrome), Some("203.0.113.77".parse().unwrap())),
            Some(RobotReason::IpRange)
        );
        assert_eq!(
            rules.classify(Some(chrome), Some("198.51.100.1".parse().unwrap())),
            None
        );
        assert!(RobotRules::new(&["(unclosed".to_string()], &[]).is_err());
    }
}
