//! The edge of the tracking endpoints: the tracker setting, the API key and origin, the
//! client's address, and cookies. Each
//! request is turned into a [`TrackingCaller`] once, so handlers never re-check.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{header, request::Parts, HeaderMap},
};
use axum::{http::HeaderName, response::AppendHeaders};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use ipnet::IpNet;
use tracker_core::ids::{GlobalCookie, SessionId};

pub use crate::api_keys::{ApiKey, ApiKeys};
pub use crate::config::ClientIpHeader;
use crate::{error::ApiError, state::AppState};

/// The name of Sitecore's device cookie.
pub const GLOBAL_COOKIE: &str = "SC_ANALYTICS_GLOBAL_COOKIE";

/// The tracking endpoints' query parameters.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct TrackQuery {
    pub(crate) sc_apikey: Option<String>,
    sc_site: Option<String>,
    sc_camp: Option<String>,
    /// Sitecore's tracking parameter of campaign links (`sc_trk`): a campaign, as `sc_camp`.
    sc_trk: Option<String>,
}

impl TrackQuery {
    /// The parameters of `query`, strictly: one of them given twice is an error that names it
    /// (which value would be meant?); other parameters are ignored, as Sitecore does.
    fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut out = Self::default();
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let slot = match name.as_ref() {
                "sc_apikey" => &mut out.sc_apikey,
                "sc_site" => &mut out.sc_site,
                "sc_camp" => &mut out.sc_camp,
                "sc_trk" => &mut out.sc_trk,
                _ => continue,
            };
            if slot.is_some() {
                return Err(if name == "sc_apikey" {
                    ApiError::InvalidApiKey("sc_apikey is given more than once")
                } else {
                    ApiError::InvalidPayload(format!("{name} is given more than once"))
                });
            }
            *slot = Some(value.into_owned());
        }
        Ok(out)
    }
}

/// The query as far as it can be read, for CORS decisions (the request itself is then refused
/// with the reason).
pub(crate) fn query(parts: &Parts) -> TrackQuery {
    TrackQuery::parse(parts.uri.query()).unwrap_or_default()
}

/// A client-supplied value that is stored, checked against the one limit on stored strings.
fn bounded(name: &str, value: Option<String>, max: usize) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.len() > max => Err(ApiError::InvalidPayload(format!(
            "{name} is {} bytes; the limit is {max} (tracker.limits.max_string_bytes)",
            v.len()
        ))),
        other => Ok(other.filter(|v| !v.is_empty())),
    }
}

/// `text` cut to at most `max` bytes, at a character boundary.
pub fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// The API key: `sc_apikey` in the query, else in a header.
pub(crate) fn key_of(in_query: Option<String>, parts: &Parts) -> Option<String> {
    in_query.filter(|k| !k.is_empty()).or_else(|| {
        parts
            .headers
            .get("sc_apikey")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    })
}

/// Who is calling a tracking endpoint, established at the edge.
#[derive(Debug, Clone)]
pub struct TrackingCaller {
    /// The API key's name.
    pub key_name: String,
    /// The API key (`None` for callers that are not tracking requests).
    pub key: Option<Arc<ApiKey>>,
    /// `sc_site`.
    pub site: Option<String>,
    /// `sc_camp`.
    pub campaign: Option<String>,
    /// The device cookie as sent, if valid and issued by this tracker; a new one otherwise.
    pub device: GlobalCookie,
    /// Whether the browser sent a valid device cookie this tracker issued (`device` is then its
    /// value).
    pub device_known: bool,
    /// The session cookie as sent, if well formed.
    pub session: Option<SessionId>,
    /// Whether cookies must be `SameSite=None; Secure`.
    pub secure: bool,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// The client's address (see [`client_addr`]), not yet anonymised.
    pub ip: Option<IpAddr>,
    /// `Origin`: the app's pages, which are not referrers.
    pub origin: Option<String>,
    /// `Referer`, when it names another site than `origin`.
    pub referer: Option<String>,
    /// The first tag of `Accept-Language`.
    pub language: Option<String>,
}

impl FromRequestParts<AppState> for TrackingCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let settings = state.settings();
        if !settings.tracker.enabled {
            return Err(ApiError::TrackerDisabled);
        }
        let mut q = TrackQuery::parse(parts.uri.query())?;
        let key = key_of(q.sc_apikey.take(), parts).ok_or(ApiError::InvalidApiKey(
            "sc_apikey is missing: pass it in the query string or an sc_apikey header",
        ))?;
        let key = state.api_keys().find(&key).ok_or(ApiError::InvalidApiKey(
            "sc_apikey is not a configured API key",
        ))?;
        if let Some(origin) = parts.headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or_default();
            if !key.allows(origin) {
                return Err(ApiError::OriginNotAllowed(origin.to_string()));
            }
        }
        let max = settings.tracker.limits.max_string_bytes;
        // A compressed body would be parsed as JSON bytes: refuse it (JSS clients never
        // compress).
        if let Some(encoding) = parts.headers.get(header::CONTENT_ENCODING) {
            let encoding = String::from_utf8_lossy(encoding.as_bytes())
                .trim()
                .to_string();
            if !encoding.eq_ignore_ascii_case("identity") && !encoding.is_empty() {
                return Err(ApiError::UnsupportedEncoding(truncate(encoding, 64)));
            }
        }
        let key = key.clone();
        let mut caller = Self::browser(parts, state, key.name.clone());
        if key.server_side {
            // The app's server tracks on its visitor's behalf and forwards the visitor's
            // address: believed from any peer for this key (a secret of that server), so that
            // rate limits and the stored address are the visitor's, not the server's.
            if let Some(visitor) = forwarded_visitor(&parts.headers) {
                caller.ip = Some(visitor);
            }
            if parts
                .headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
            {
                caller.secure = true;
            }
        }
        caller.key = Some(key.clone());
        state
            .rate_limits()
            .check(&key.name, caller.ip)
            .map_err(ApiError::RateLimited)?;
        caller.site = bounded("sc_site", q.sc_site, max)?;
        caller.campaign = match bounded("sc_camp", q.sc_camp, max)? {
            Some(campaign) => Some(campaign),
            None => bounded("sc_trk", q.sc_trk, max)?,
        };
        Ok(caller)
    }
}

impl TrackingCaller {
    /// What the browser's request says of the visitor: its cookies, user agent, address and
    /// scheme. The caller has checked the tracker setting, the key and the origin.
    pub fn browser(parts: &Parts, state: &AppState, key_name: String) -> Self {
        let settings = state.settings();
        let client = client_addr(
            parts,
            &settings.server.trusted_proxies,
            settings.server.client_ip_header,
        );
        let jar = CookieJar::from_headers(&parts.headers);
        // A device id this tracker did not issue starts a fresh device: checked by its
        // signature, with no database read.
        let sent = jar
            .get(GLOBAL_COOKIE)
            .and_then(|c| GlobalCookie::parse(c.value()))
            .filter(|c| {
                settings.tracker.accept_unsigned_device_ids || state.device_key().issued(c.device)
            });
        let device_known = sent.is_some();
        let device = sent.unwrap_or_else(|| GlobalCookie {
            device: state.device_key().issue(),
            human: false,
        });
        let session = jar
            .get(&settings.tracker.session_cookie)
            .and_then(|c| SessionId::from_cookie(c.value()));
        let max = settings.tracker.limits.max_string_bytes;
        let text = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty() && *v != "null")
        };
        let origin = text(header::ORIGIN);
        let referer = text(header::REFERER).filter(|r| !same_origin(r, origin));
        let owned = |v: &str| truncate(v.to_string(), max);
        Self {
            key_name,
            key: None,
            site: None,
            campaign: None,
            device,
            device_known,
            session,
            secure: is_secure(&parts.headers, client),
            ip: client.ip,
            // Stored with the visit: cut to the limit on stored strings (a browser cannot be
            // asked to send a shorter one; what identifies it is at the start).
            // Bytes outside ASCII (obs-text) are read as UTF-8, replaced where invalid.
            user_agent: parts.headers.get(header::USER_AGENT).map(|ua| {
                truncate(
                    String::from_utf8_lossy(ua.as_bytes()).into_owned(),
                    settings.tracker.limits.max_string_bytes,
                )
            }),
            origin: origin.map(owned),
            referer: referer.map(owned),
            language: text(header::ACCEPT_LANGUAGE)
                .and_then(tracker_core::client_info::language_tag),
        }
    }
}

/// Whether `url` is on `origin` (`https://shop.example.com`): a page of the app itself.
fn same_origin(url: &str, origin: Option<&str>) -> bool {
    origin.is_some_and(|origin| {
        let (url, origin) = (url.as_bytes(), origin.as_bytes());
        url.len() >= origin.len()
            && url[..origin.len()].eq_ignore_ascii_case(origin)
            && matches!(url.get(origin.len()), None | Some(b'/' | b'?' | b'#'))
    })
}

/// Where a request comes from, as far as it can be believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr {
    /// The client's address: the peer's, or, behind a trusted proxy, the nearest untrusted
    /// address of `Forwarded` / `X-Forwarded-For`. `None` without connection info (in-process
    /// calls).
    pub ip: Option<IpAddr>,
    /// Whether a trusted proxy says the client used HTTPS.
    pub https: bool,
}

/// The client's address and scheme. The forwarding chain of one header (`header`, which the
/// proxy in front writes: `X-Forwarded-For` or `Forwarded`) and `X-Forwarded-Proto` are
/// believed only from a peer in `trusted` (anyone can send them); the chain is walked from the
/// right, skipping trusted proxies, so that a client cannot choose its address by prepending
/// one, nor by sending the other header (which the proxy passes along untouched).
pub fn client_addr(parts: &Parts, trusted: &[IpNet], header: ClientIpHeader) -> ClientAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| canonical(info.0.ip()));
    let Some(peer) = peer else {
        return ClientAddr {
            ip: None,
            https: false,
        };
    };
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return ClientAddr {
            ip: Some(peer),
            https: false,
        };
    }
    let (chain, forwarded_proto) = forwarded(&parts.headers, header);
    let client = chain
        .iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or(chain.first())
        .copied()
        .unwrap_or(peer);
    let proto = parts
        .headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .or(forwarded_proto);
    ClientAddr {
        ip: Some(client),
        https: proto.as_deref() == Some("https"),
    }
}

/// An IPv4 address carried in IPv6 (`::ffff:a.b.c.d`, as dual-stack sockets report) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The forwarding chain of the chosen header, client first: `Forwarded`'s `for=` (RFC 7239) or
/// `X-Forwarded-For`; and, with `Forwarded`, its first `proto=`.
fn forwarded(headers: &HeaderMap, header: ClientIpHeader) -> (Vec<IpAddr>, Option<String>) {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    };
    let mut chain = Vec::new();
    let mut proto = None;
    if header == ClientIpHeader::XForwardedFor {
        let chain = values("x-forwarded-for")
            .iter()
            .filter_map(|v| parse_node(v))
            .collect();
        return (chain, None);
    }
    for element in values("forwarded") {
        for pair in element.split(';') {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            match key.trim().to_ascii_lowercase().as_str() {
                "for" => chain.extend(parse_node(value)),
                "proto" if proto.is_none() => proto = Some(value.to_ascii_lowercase()),
                _ => {}
            }
        }
    }
    (chain, proto)
}

/// The visitor's address a server-side caller forwards: the last `X-Forwarded-For` entry (what
/// the app's server, or the proxy in front of it, saw the visitor connect from).
fn forwarded_visitor(headers: &HeaderMap) -> Option<IpAddr> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(parse_node)
        .next_back()
}

/// `203.0.113.7`, `203.0.113.7:4711`, `[2001:db8::1]:4711` or `2001:db8::1`.
fn parse_node(value: &str) -> Option<IpAddr> {
    let value = value.trim();
    value
        .parse::<IpAddr>()
        .ok()
        .or_else(|| value.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            value
                .strip_prefix('[')
                .and_then(|v| v.split(']').next())
                .and_then(|v| v.parse().ok())
        })
        .map(canonical)
}

/// HTTPS by a trusted proxy's word, or a loopback host (browsers treat those as secure
/// contexts, so `Secure` cookies work there over plain HTTP).
fn is_secure(headers: &HeaderMap, client: ClientAddr) -> bool {
    if client.https {
        return true;
    }
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_loopback_host)
}

/// Whether a `Host` header names this machine.
pub fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `Set-Cookie` headers, written unencoded: Sitecore's `<id>|True` keeps its literal `|`, which
/// RFC 6265 allows in a cookie value.
pub type SetCookies = AppendHeaders<Vec<(HeaderName, String)>>;

/// The cookies a tracking response sets: the device cookie when it is new, its suffix changes
/// (`|True` for a visitor kept as a person, `|False` for a robot or a visitor not yet
/// identified), or a visit starts (refreshing its lifetime); the session cookie while an
/// interaction is live, and its removal once it ended.
pub fn cookies(
    state: &AppState,
    caller: &TrackingCaller,
    session: SessionCookie,
    human: bool,
) -> SetCookies {
    let settings = state.settings();
    let style = |mut cookie: Cookie<'static>| {
        cookie.set_http_only(true);
        cookie.set_path("/");
        if caller.secure {
            cookie.set_same_site(SameSite::None);
            cookie.set_secure(true);
        } else {
            cookie.set_same_site(SameSite::Lax);
        }
        cookie
    };
    let mut set = Vec::with_capacity(2);
    // The device cookie is written when the browser has none (or a malformed one) and renewed
    // once per visit, when a new session starts: its expiry slides with every visit, and the
    // requests in between carry no `Set-Cookie` for it.
    if !caller.device_known
        || matches!(session, SessionCookie::Set(_))
        || caller.device.human != human
    {
        let value = GlobalCookie {
            device: caller.device.device,
            human,
        };
        let mut device = style(Cookie::new(GLOBAL_COOKIE, value.to_string()));
        let max_age =
            i64::try_from(settings.tracker.device_cookie_max_age.as_secs()).unwrap_or(i64::MAX);
        device.set_max_age(cookie::time::Duration::seconds(max_age));
        set.push(device);
    }
    let name = settings.tracker.session_cookie.clone();
    match session {
        SessionCookie::Keep => {}
        SessionCookie::Set(id) => set.push(style(Cookie::new(name, id.to_cookie()))),
        SessionCookie::Clear => {
            let mut gone = style(Cookie::new(name, ""));
            gone.set_max_age(cookie::time::Duration::ZERO);
            set.push(gone);
        }
    }
    AppendHeaders(
        set.into_iter()
            .map(|c| (header::SET_COOKIE, c.to_string()))
            .collect(),
    )
}

/// What to do with the session cookie.
#[derive(Debug, Clone, Copy)]
pub enum SessionCookie {
    /// Leave it as it is.
    Keep,
    /// Name this live session.
    Set(SessionId),
    /// The session ended: remove it.
    Clear,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:3000",
            "[::1]:80",
            "app.localhost",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["example.com", "10.0.0.1:80", "localhost.example.com"] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
