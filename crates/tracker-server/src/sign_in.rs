//! Who is signed in to the Experience Profile: random session tokens (the `jss_profile`
//! cookie, HttpOnly, SameSite=Strict) held in memory, each with its own CSRF token for forms.
//! A restart signs everyone out; sign-ins end after `profile.session_timeout` without a request.

use std::{collections::HashMap, net::IpAddr, sync::Mutex, time::Duration};

use argon2::{password_hash::PasswordVerifier, Argon2, PasswordHash};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use crate::config::Settings;

/// The cookie that carries a sign-in.
pub const COOKIE: &str = "jss_profile";

/// A signed-in person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// The name they signed in with (`admin` for the admin token).
    pub name: String,
    /// The token every form of theirs must carry back.
    pub csrf: String,
}

#[derive(Debug)]
struct Entry {
    viewer: Viewer,
    last_seen: DateTime<Utc>,
}

/// The sign-ins, and what guards the sign-in form: rate limits per client address and per
/// user name, one Argon2 verification at a time off the request workers, the same work for
/// unknown names as for known ones, failures counted and logged in aggregate.
#[derive(Debug)]
pub struct SignIns {
    entries: Mutex<HashMap<String, Entry>>,
    /// Argon2 runs on a thread of its own at the lowest priority, one verification at a time:
    /// eight wrong sign-ins at once on the request workers took tracking's p99 from 44 ms to
    /// 532 ms. Started at the first password sign-in.
    verifier: std::sync::OnceLock<Option<std::sync::mpsc::SyncSender<Verification>>>,
    per_address: Option<crate::rate_limit::Keyed<IpAddr>>,
    per_name: Option<crate::rate_limit::Keyed<String>>,
    clock: crate::rate_limit::AppClock,
    ipv6_prefix: u8,
    /// Failed sign-ins not yet logged, and when the last line was written.
    failures: Mutex<(u64, Option<std::time::Instant>)>,
}

/// One password to check against one hash, and who waits for the answer.
type Verification = (String, String, tokio::sync::oneshot::Sender<bool>);

/// Verifications that may wait for the verifier thread; over it a sign-in is answered "busy".
const VERIFICATIONS_QUEUED: usize = 16;

/// Starts the verifier thread: the lowest scheduling priority, so that under a storm of
/// sign-ins the processor goes to tracking first. It ends when its queue's sender is dropped.
fn spawn_verifier() -> Option<std::sync::mpsc::SyncSender<Verification>> {
    let (queue, jobs) = std::sync::mpsc::sync_channel::<Verification>(VERIFICATIONS_QUEUED);
    let started = std::thread::Builder::new()
        .name("sign-in-verifier".into())
        .spawn(move || {
            if let Err(error) =
                thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
            {
                tracing::debug!(%error, "could not lower the sign-in verifier's priority");
            }
            for (hash, password, answer) in jobs {
                let verified = PasswordHash::new(&hash).is_ok_and(|hash| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &hash)
                        .is_ok()
                });
                let _ = answer.send(verified);
            }
        });
    match started {
        Ok(_) => Some(queue),
        Err(error) => {
            tracing::error!(%error, "could not start the sign-in verifier; password sign-ins fail");
            None
        }
    }
}

/// Why a sign-in did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Wrong credentials.
    Wrong,
    /// Too many attempts from the address or for the name: try again after this long.
    TooMany(Duration),
    /// The verifier is saturated: try again shortly.
    Busy,
}

/// The counter of failed Profile sign-ins, by `reason` (`credentials`, `rate_limited`).
pub const SIGN_IN_FAILURES: &str = "jss_tracker_profile_sign_in_failures_total";

/// A hash of a random password with the parameters `hash_password` uses, verified when the
/// name is unknown: a known and an unknown name cost the same time to refuse (18 ms against
/// 0.6 ms told an attacker which names exist).
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&random()).unwrap_or_default())
}

/// What a sign-in form carries: the admin token, or a name and password.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// The admin token.
    pub token: Option<String>,
    /// A user's name.
    pub name: Option<String>,
    /// Their password.
    pub password: Option<String>,
}

fn random() -> String {
    crate::config::random_token() + &crate::config::random_token()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl SignIns {
    /// No one signed in; the limits of `settings.profile`, on `clock`.
    pub fn new(settings: &Settings, clock: std::sync::Arc<dyn tracker_core::clock::Clock>) -> Self {
        use governor::{Quota, RateLimiter};
        let clock = crate::rate_limit::AppClock(clock);
        let profile = &settings.profile;
        let quota = std::num::NonZeroU32::new(profile.sign_in_per_minute).map(|rate| {
            let burst = std::num::NonZeroU32::new(profile.sign_in_burst.max(1)).unwrap_or(rate);
            Quota::per_minute(rate).allow_burst(burst)
        });
        Self {
            entries: Mutex::default(),
            verifier: std::sync::OnceLock::new(),
            per_address: quota.map(|q| RateLimiter::dashmap_with_clock(q, clock.clone())),
            per_name: quota.map(|q| RateLimiter::dashmap_with_clock(q, clock.clone())),
            clock,
            ipv6_prefix: settings.rate_limit.ipv6_prefix,
            failures: Mutex::new((0, None)),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a sign-in attempt from `client` for `name` out of their buckets.
    fn admit(&self, client: Option<IpAddr>, name: &str) -> Result<(), Refused> {
        use governor::clock::{Clock as _, Reference as _};
        let now = self.clock.now();
        let wait = |not_until: governor::NotUntil<Duration>| {
            Refused::TooMany(not_until.earliest_possible().duration_since(now).into())
        };
        if let (Some(limiter), Some(ip)) = (&self.per_address, client) {
            limiter
                .check_key(&crate::rate_limit::bucket_of(ip, self.ipv6_prefix))
                .map_err(wait)?;
        }
        if let Some(limiter) = &self.per_name {
            limiter.check_key(&name.to_string()).map_err(wait)?;
        }
        Ok(())
    }

    /// Counts a failure, and logs the failures at most once a second, together (63,000 wrong
    /// tokens a second once wrote 57 MB of log in 10 s).
    fn failed(&self, reason: &'static str) {
        metrics::counter!(SIGN_IN_FAILURES, "reason" => reason).increment(1);
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.0 += 1;
        let due = failures
            .1
            .is_none_or(|last| last.elapsed() >= Duration::from_secs(1));
        if due {
            tracing::warn!(failures = failures.0, "profile sign-ins refused");
            *failures = (0, Some(std::time::Instant::now()));
        }
    }

    /// Checks the credentials against the settings, within the rate limits; on success returns
    /// the new session token. Password hashes are verified on the blocking pool, one at a
    /// time, and an unknown name costs a verification too.
    pub async fn sign_in(
        &self,
        settings: &Settings,
        credentials: &Credentials,
        client: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> Result<String, Refused> {
        let token_given = credentials.token.as_ref().is_some_and(|t| !t.is_empty());
        let limited_name = if token_given {
            "admin"
        } else {
            credentials.name.as_deref().unwrap_or_default()
        };
        if let Err(refused) = self.admit(client, limited_name) {
            self.failed("rate_limited");
            return Err(refused);
        }
        let name = match (&credentials.token, &credentials.name, &credentials.password) {
            (Some(token), _, _) if !token.is_empty() => {
                settings.admin.token.as_ref().and_then(|expected| {
                    constant_time_eq(token.trim().as_bytes(), expected.expose_secret().as_bytes())
                        .then(|| "admin".to_string())
                })
            }
            (_, Some(name), Some(password)) => {
                let user = settings.profile.users.iter().find(|u| u.name == *name);
                let hash = user.map_or_else(
                    || decoy_hash().to_string(),
                    |u| u.password_hash.expose_secret().to_string(),
                );
                let (answer, verified) = tokio::sync::oneshot::channel();
                let queue = self.verifier.get_or_init(spawn_verifier).as_ref();
                let queued = queue
                    .is_some_and(|queue| queue.try_send((hash, password.clone(), answer)).is_ok());
                if !queued {
                    return Err(Refused::Busy);
                }
                let Ok(Ok(verified)) =
                    tokio::time::timeout(Duration::from_secs(10), verified).await
                else {
                    return Err(Refused::Busy);
                };
                user.filter(|_| verified).map(|u| u.name.clone())
            }
            _ => None,
        };
        let Some(name) = name else {
            self.failed("credentials");
            return Err(Refused::Wrong);
        };
        let token = random();
        let viewer = Viewer {
            name,
            csrf: random(),
        };
        self.entries().insert(
            token.clone(),
            Entry {
                viewer,
                last_seen: now,
            },
        );
        Ok(token)
    }

    /// Whether a session token is still signed in, without counting this as activity (a live
    /// page's stream asks every second; it must not keep a sign-in alive forever).
    pub fn is_signed_in(&self, token: &str, now: DateTime<Utc>, timeout: Duration) -> bool {
        let timeout = chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
        self.entries()
            .get(token)
            .is_some_and(|entry| now - entry.last_seen <= timeout)
    }

    /// The viewer a session token names, if signed in and not idle past `timeout`.
    pub fn viewer(&self, token: &str, now: DateTime<Utc>, timeout: Duration) -> Option<Viewer> {
        let mut entries = self.entries();
        let timeout = chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
        let entry = entries.get_mut(token)?;
        if now - entry.last_seen > timeout {
            entries.remove(token);
            return None;
        }
        entry.last_seen = now;
        Some(entry.viewer.clone())
    }

    /// Ends a sign-in.
    pub fn sign_out(&self, token: &str) {
        self.entries().remove(token);
    }
}

/// An Argon2id hash of `password`, for `[[profile.users]]`.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    let salt = SaltString::encode_b64(&bytes)?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::ProfileUser;

    #[tokio::test]
    async fn tokens_and_passwords_sign_in_and_nothing_else() {
        let mut settings = Settings::default();
        settings.admin.token = Some("the-admin-token-0123".to_string().into());
        settings.profile.users = vec![ProfileUser {
            name: "ada".into(),
            password_hash: hash_password("correct horse").unwrap().into(),
        }];
        let now = Utc::now();
        let clock = tracker_core::clock::ManualClock::new(now);
        let sign_ins = SignIns::new(&settings, std::sync::Arc::new(clock.clone()));
        let try_in = |token: Option<&str>, name: Option<&str>, password: Option<&str>| {
            let credentials = Credentials {
                token: token.map(Into::into),
                name: name.map(Into::into),
                password: password.map(Into::into),
            };
            let sign_ins = &sign_ins;
            let settings = &settings;
            async move {
                sign_ins
                    .sign_in(
                        settings,
                        &credentials,
                        Some(IpAddr::from([203, 0, 113, 9])),
                        now,
                    )
                    .await
            }
        };
        let admin = try_in(Some("the-admin-token-0123"), None, None)
            .await
            .unwrap();
        let ada = try_in(None, Some("ada"), Some("correct horse"))
            .await
            .unwrap();
        assert_eq!(try_in(Some("wrong"), None, None).await, Err(Refused::Wrong));
        assert_eq!(
            try_in(None, Some("ada"), Some("wrong")).await,
            Err(Refused::Wrong)
        );
        assert_eq!(
            try_in(None, Some("bob"), Some("correct horse")).await,
            Err(Refused::Wrong)
        );
        // The address's bucket runs out: the next attempt is refused before any check.
        let mut limited = None;
        for _ in 0..20 {
            if let Err(Refused::TooMany(wait)) = try_in(Some("wrong"), None, None).await {
                limited = Some(wait);
                break;
            }
        }
        assert!(limited.is_some_and(|wait| wait > Duration::ZERO));
        assert!(matches!(
            try_in(Some("the-admin-token-0123"), None, None).await,
            Err(Refused::TooMany(_))
        ));
        clock.advance(chrono::Duration::minutes(10));
        let hour = Duration::from_secs(3600);
        assert_eq!(sign_ins.viewer(&admin, now, hour).unwrap().name, "admin");
        assert_eq!(sign_ins.viewer(&ada, now, hour).unwrap().name, "ada");
        assert!(sign_ins
            .viewer(&ada, now + chrono::Duration::hours(2), hour)
            .is_none());
        sign_ins.sign_out(&admin);
        assert!(sign_ins.viewer(&admin, now, hour).is_none());
    }
}
