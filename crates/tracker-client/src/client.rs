//! [`Client`] (shared connection pool) and [`Visitor`] (one browser's cookies).

use std::{
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use reqwest::{
    cookie::{CookieStore, Jar},
    header::{HeaderValue, CONTENT_TYPE, COOKIE, ORIGIN, SET_COOKIE, USER_AGENT},
    Url,
};

use crate::{Error, Event};

/// Talks to one tracker with one API key; cheap to clone. Share one across visitors: they share
/// its keep-alive connections, and each keeps its own cookies.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    event_url: Url,
    flush_url: Url,
    origin: Option<HeaderValue>,
}

/// Settings for a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base: String,
    api_key: String,
    service_prefix: String,
    origin: Option<String>,
    timeout: Duration,
    user_agent: String,
    http: Option<reqwest::Client>,
}

/// The `User-Agent` a client sends unless told otherwise. The tracker keeps requests without a
/// user agent, or with a known robot's, out of its data.
pub const DEFAULT_USER_AGENT: &str = concat!("jss-tracker-client/", env!("CARGO_PKG_VERSION"));

impl ClientBuilder {
    /// The `User-Agent` to send (default [`DEFAULT_USER_AGENT`]). A server that tracks on behalf
    /// of its visitors passes the visitor's browser's here, so that the tracker can tell people
    /// from robots and record the browser. Ignored with [`ClientBuilder::http_client`]: set it
    /// on that client.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// The JSS clients' `serviceUrl` (default `/sitecore/api/jss/track`).
    pub fn service_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.service_prefix = prefix.into();
        self
    }

    /// Send this `Origin` header, as a browser on that app origin would.
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Per-request timeout (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Use this `reqwest::Client` (its pool, proxy and TLS settings).
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client, Error> {
        let base = Url::parse(&self.base)
            .map_err(|e| Error::Config(format!("base URL {}: {e}", self.base)))?;
        let prefix = self.service_prefix.trim_end_matches('/');
        let endpoint = |action: &str| -> Result<Url, Error> {
            let mut url = base
                .join(&format!("{prefix}/{action}"))
                .map_err(|e| Error::Config(format!("base URL {}: {e}", self.base)))?;
            url.query_pairs_mut()
                .append_pair("sc_apikey", &self.api_key);
            Ok(url)
        };
        let origin = match self.origin {
            Some(origin) => Some(
                HeaderValue::from_str(&origin)
                    .map_err(|e| Error::Config(format!("Origin {origin}: {e}")))?,
            ),
            None => None,
        };
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .timeout(self.timeout)
                .user_agent(self.user_agent)
                .build()?,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                event_url: endpoint("event")?,
                flush_url: endpoint("flush")?,
                origin,
            }),
        })
    }
}

impl Client {
    /// A client for the tracker at `base` (e.g. `http://localhost:8080`) with an `sc_apikey`.
    pub fn new(base: &str, api_key: &str) -> Result<Self, Error> {
        Self::builder(base, api_key).build()
    }

    /// A builder, for the service prefix, an `Origin`, timeouts or a custom `reqwest::Client`.
    pub fn builder(base: &str, api_key: &str) -> ClientBuilder {
        ClientBuilder {
            base: base.to_string(),
            api_key: api_key.to_string(),
            service_prefix: "/sitecore/api/jss/track".into(),
            origin: None,
            timeout: Duration::from_secs(10),
            user_agent: DEFAULT_USER_AGENT.to_string(),
            http: None,
        }
    }

    /// A new visitor: a browser with no cookies yet.
    pub fn visitor(&self) -> Visitor {
        Visitor {
            client: self.clone(),
            jar: Arc::new(Jar::default()),
            user_agent: None,
            forwarded_for: None,
            set_cookies: Arc::default(),
        }
    }

    /// A visitor whose browser sent these cookies (its `Cookie` header): what a server that
    /// tracks on a visitor's behalf (SSR, middleware, with a `server_side` key) starts from, so
    /// that the tracker sees the visitor's device and visit. Pass [`Visitor::set_cookies`] back
    /// to the browser afterwards.
    pub fn visitor_with_cookies(&self, cookie_header: &str) -> Visitor {
        let visitor = self.visitor();
        for pair in cookie_header.split(';') {
            let pair = pair.trim();
            if !pair.is_empty() {
                visitor
                    .jar
                    .add_cookie_str(&format!("{pair}; Path=/"), &self.inner.event_url);
            }
        }
        visitor
    }

    /// The URL batches are posted to (with `sc_apikey`).
    pub fn event_url(&self) -> &Url {
        &self.inner.event_url
    }
}

/// What the tracker answered to a batch (the wire type the server answers with).
pub use tracker_api_types::TrackedBody as Tracked;
use tracker_api_types::{ErrorEnvelope as Envelope, FlushedBody as Flushed};

/// One browser: its cookie jar holds `SC_ANALYTICS_GLOBAL_COOKIE` (the contact's device) and the
/// session cookie (the interaction). Cheap to clone; clones share the jar.
#[derive(Debug, Clone)]
pub struct Visitor {
    client: Client,
    jar: Arc<Jar>,
    user_agent: Option<HeaderValue>,
    /// The visitor's address, sent as `X-Forwarded-For` (believed for server-side keys).
    forwarded_for: Option<HeaderValue>,
    /// The `Set-Cookie` headers of the last answer.
    set_cookies: Arc<Mutex<Vec<String>>>,
}

impl Visitor {
    /// This visitor's browser's `User-Agent`, sent instead of the client's: a server that
    /// tracks on behalf of its visitors passes each one's, so that the tracker keeps people
    /// (and records their browsers) and drops robots.
    pub fn with_user_agent(mut self, user_agent: &str) -> Result<Self, Error> {
        self.user_agent = Some(
            HeaderValue::from_str(user_agent)
                .map_err(|e| Error::Config(format!("User-Agent {user_agent}: {e}")))?,
        );
        Ok(self)
    }

    /// The visitor's address, sent as `X-Forwarded-For`: with a `server_side` key the tracker
    /// stores (anonymised) and rate-limits this address instead of the calling server's.
    pub fn with_forwarded_for(mut self, address: IpAddr) -> Self {
        self.forwarded_for = HeaderValue::from_str(&address.to_string()).ok();
        self
    }

    /// The `Set-Cookie` headers of the tracker's last answer, for a server that tracks on a
    /// visitor's behalf to pass on to the browser.
    pub fn set_cookies(&self) -> Vec<String> {
        self.set_cookies
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    /// Sends one batch (`trackingApi.trackEvent`); `Ok` once the tracker has committed it.
    pub async fn track(&self, events: &[Event]) -> Result<Tracked, Error> {
        let body = serde_json::to_vec(events)?;
        let url = &self.client.inner.event_url;
        let response = self.post(url, body).await?;
        Ok(response.json::<Tracked>().await?)
    }

    /// Ends the visitor's interaction now (`action: 'flush'`). Returns whether one was open.
    pub async fn flush(&self) -> Result<bool, Error> {
        let url = &self.client.inner.flush_url;
        let response = self.post(url, b"[]".to_vec()).await?;
        Ok(response.json::<Flushed>().await?.closed)
    }

    async fn post(&self, url: &Url, body: Vec<u8>) -> Result<reqwest::Response, Error> {
        let inner = &self.client.inner;
        let mut request = inner
            .http
            .post(url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(cookies) = self.jar.cookies(url) {
            request = request.header(COOKIE, cookies);
        }
        if let Some(origin) = &inner.origin {
            request = request.header(ORIGIN, origin.clone());
        }
        if let Some(user_agent) = &self.user_agent {
            request = request.header(USER_AGENT, user_agent.clone());
        }
        if let Some(address) = &self.forwarded_for {
            request = request.header("x-forwarded-for", address.clone());
        }
        let response = request.send().await?;
        if let Ok(mut last) = self.set_cookies.lock() {
            *last = response
                .headers()
                .get_all(SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_string))
                .collect();
        }
        let mut set_cookies = response.headers().get_all(SET_COOKIE).iter();
        self.jar.set_cookies(&mut set_cookies, url);
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<Envelope>(&text) {
            Ok(Envelope { error }) => Error::Refused {
                status: status.as_u16(),
                code: error.code,
                message: error.message,
                index: error.index,
            },
            Err(_) => Error::Refused {
                status: status.as_u16(),
                code: format!("http_{}", status.as_u16()),
                message: text.chars().take(200).collect(),
                index: None,
            },
        })
    }

    /// A cookie's value, as the tracker set it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let header = self.jar.cookies(&self.client.inner.event_url)?;
        let text = header.to_str().ok()?;
        text.split("; ").find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == name).then(|| value.to_string())
        })
    }

    /// The device id (32 hex digits) of `SC_ANALYTICS_GLOBAL_COOKIE`, once the tracker set it.
    pub fn device_id(&self) -> Option<String> {
        self.cookie("SC_ANALYTICS_GLOBAL_COOKIE")
            .and_then(|v| v.split('|').next().map(str::to_string))
    }
}
