//! Rate limits on the tracking endpoints: a token bucket per client address and per API key
//! (governor), driven by the application's clock so that tests control time.
//!
//! The endpoint is public and its key sits in every visitor's browser, so anyone can send as
//! fast as they like. The client address is the one the trusted-proxy rule gives
//! (`edge::client_addr`). Behind a proxy that is not declared in `server.trusted_proxies`,
//! every visitor seems to come from the proxy: limiting that address would throttle the whole
//! site, so without trusted proxies a loopback or private peer is not limited per address.

use std::{net::IpAddr, num::NonZeroU32, sync::Arc, time::Duration};

use governor::{
    clock::{Clock as GovernorClock, Reference},
    middleware::NoOpMiddleware,
    state::keyed::DefaultKeyedStateStore,
    Quota, RateLimiter,
};
use tracker_core::clock::Clock;

use crate::config::RateLimitSettings;

/// The application's clock as governor's: instants are durations since the epoch.
#[derive(Debug, Clone)]
pub struct AppClock(pub Arc<dyn Clock>);

impl GovernorClock for AppClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        let at = self.0.now();
        Duration::from_nanos(u64::try_from(at.timestamp_nanos_opt().unwrap_or(0)).unwrap_or(0))
    }
}

/// A keyed token bucket on the application's clock.
pub type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, AppClock, NoOpMiddleware<Duration>>;

/// The address a client's bucket is kept under: an IPv6 address by its first `ipv6_prefix`
/// bits (a /64 by default: one subscriber's network, whose addresses rotate at will), an IPv4
/// address whole.
pub fn bucket_of(ip: IpAddr, ipv6_prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let bits = u32::from(ipv6_prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
        other => other,
    }
}

/// The configured limits.
#[derive(Debug)]
pub struct RateLimits {
    per_ip: Option<Keyed<IpAddr>>,
    per_key: Option<Keyed<String>>,
    /// Whether loopback and private client addresses are limited too (only when the proxies
    /// are declared, so that such an address is a client's, not a proxy's).
    private_addresses: bool,
    /// IPv6 clients are limited per network of this prefix (`rate_limit.ipv6_prefix`).
    ipv6_prefix: u8,
    clock: AppClock,
}

/// A request over a limit: when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// Which limit: `"ip"` or `"key"`.
    pub by: &'static str,
    /// How long until a request would pass.
    pub retry_after: Duration,
}

impl RateLimits {
    /// The limits of `settings`; `proxies_declared` says whether `server.trusted_proxies` is set.
    pub fn new(
        settings: &RateLimitSettings,
        proxies_declared: bool,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let clock = AppClock(clock);
        let quota = |rate: u32| {
            let rate = NonZeroU32::new(rate)?;
            let burst = NonZeroU32::new(settings.burst.max(rate.get())).unwrap_or(rate);
            Some(Quota::per_second(rate).allow_burst(burst))
        };
        Self {
            per_ip: quota(settings.per_ip_per_second)
                .map(|q| RateLimiter::dashmap_with_clock(q, clock.clone())),
            per_key: quota(settings.per_key_per_second)
                .map(|q| RateLimiter::dashmap_with_clock(q, clock.clone())),
            private_addresses: proxies_declared,
            ipv6_prefix: settings.ipv6_prefix,
            clock,
        }
    }

    /// Takes a token for the key and the client address, or says how long to wait.
    pub fn check(&self, key: &String, client: Option<IpAddr>) -> Result<(), Limited> {
        let now = self.clock.now();
        if let Some(per_key) = &self.per_key {
            per_key.check_key(key).map_err(|not_until| Limited {
                by: "key",
                retry_after: not_until.earliest_possible().duration_since(now).into(),
            })?;
        }
        if let (Some(per_ip), Some(ip)) = (&self.per_ip, client) {
            if self.private_addresses || !may_be_a_proxy(ip) {
                per_ip
                    .check_key(&bucket_of(ip, self.ipv6_prefix))
                    .map_err(|not_until| Limited {
                        by: "ip",
                        retry_after: not_until.earliest_possible().duration_since(now).into(),
                    })?;
            }
        }
        Ok(())
    }

    /// Forgets the buckets that are full again (called by the sweeper), so that memory
    /// follows the addresses seen lately, not every address ever seen.
    pub fn forget_idle(&self) {
        if let Some(per_ip) = &self.per_ip {
            per_ip.retain_recent();
            per_ip.shrink_to_fit();
        }
    }

    /// Client addresses with a bucket now.
    pub fn tracked_addresses(&self) -> usize {
        self.per_ip.as_ref().map_or(0, |l| l.len())
    }
}

/// Loopback, private, link-local and unique-local addresses: where an undeclared proxy would
/// sit.
pub(crate) fn may_be_a_proxy(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local
                || (v6.segments()[0] & 0xffc0) == 0xfe80 // link local
                || v6.to_ipv4_mapped().is_some_and(|v4| may_be_a_proxy(IpAddr::V4(v4)))
        }
    }
}

#[cfg(test)]
mod tests {
    use tracker_core::clock::ManualClock;

    use super::*;

    fn limits(
        per_ip: u32,
        per_key: u32,
        burst: u32,
        proxies: bool,
        clock: &ManualClock,
    ) -> RateLimits {
        RateLimits::new(
            &RateLimitSettings {
                per_ip_per_second: per_ip,
                per_key_per_second: per_key,
                burst,
                ipv6_prefix: 64,
            },
            proxies,
            Arc::new(clock.clone()),
        )
    }

    #[test]
    fn buckets_refill_with_the_clock_and_say_when() {
        let clock = ManualClock::new(chrono::Utc::now());
        let limits = limits(2, 0, 4, false, &clock);
        let visitor: IpAddr = "203.0.113.7".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let key = "site".to_string();
        for _ in 0..4 {
            assert_eq!(limits.check(&key, Some(visitor)), Ok(()));
        }
        let limited = limits.check(&key, Some(visitor)).err();
        assert_eq!(
            limited.map(|l| (l.by, l.retry_after)),
            Some(("ip", Duration::from_millis(500)))
        );
        clock.advance(chrono::Duration::milliseconds(500));
        assert_eq!(limits.check(&key, Some(visitor)), Ok(()));
        // Another address has its own bucket; a private one is not limited without proxies.
        assert_eq!(
            limits.check(&key, Some(IpAddr::from([198, 51, 100, 1]))),
            Ok(())
        );
        for _ in 0..100 {
            assert_eq!(
                limits.check(&key, Some(IpAddr::from([10, 0, 0, 1]))),
                Ok(())
            );
        }
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64() {
        let clock = ManualClock::new(chrono::Utc::now());
        let limits = limits(1, 0, 3, true, &clock);
        let key = "site".to_string();
        let one = |n: u16| IpAddr::from([0x2001, 0xdb8, 7, 9, n, n, n, n]);
        for n in 0..3 {
            assert_eq!(limits.check(&key, Some(one(n))), Ok(()));
        }
        assert!(limits.check(&key, Some(one(99))).is_err(), "same /64");
        let other = IpAddr::from([0x2001, 0xdb8, 7, 10, 1, 1, 1, 1]);
        assert_eq!(limits.check(&key, Some(other)), Ok(()), "another /64");
        assert_eq!(
            bucket_of(IpAddr::from([203, 0, 113, 7]), 64),
            IpAddr::from([203, 0, 113, 7])
        );
    }

    #[test]
    fn the_key_limit_counts_every_client() {
        let clock = ManualClock::new(chrono::Utc::now());
        let limits = limits(0, 1, 3, true, &clock);
        let key = "site".to_string();
        for n in 0..3u8 {
            assert_eq!(
                limits.check(&key, Some(IpAddr::from([203, 0, 113, n]))),
                Ok(())
            );
        }
        let limited = limits
            .check(&key, Some(IpAddr::from([203, 0, 113, 9])))
            .err();
        assert_eq!(limited.map(|l| l.by), Some("key"));
        assert_eq!(
            limits.check(&"other".to_string(), None),
            Ok(()),
            "keys apart"
        );
    }
}
