//! `[server]`: where the tracker listens and how it treats connections and proxies.

use super::*;

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
