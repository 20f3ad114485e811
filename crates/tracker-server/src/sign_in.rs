//! Who is signed in to the Experience Profile: random session tokens (the `jss_profile`
//! cookie, HttpOnly, SameSite=Strict) held in memory, each with its own CSRF token for forms.
//! A restart signs everyone out; sign-ins end after `profile.session_timeout` without a request.

use std::{collections::HashMap, sync::Mutex, time::Duration};

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

/// The sign-ins.
#[derive(Debug, Default)]
pub struct SignIns {
    entries: Mutex<HashMap<String, Entry>>,
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
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Checks the credentials against the settings; on success returns the new session token.
    pub fn sign_in(
        &self,
        settings: &Settings,
        credentials: &Credentials,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let name = match (&credentials.token, &credentials.name, &credentials.password) {
            (Some(token), _, _) if !token.is_empty() => {
                let expected = settings.admin.token.as_ref()?;
                constant_time_eq(token.trim().as_bytes(), expected.expose_secret().as_bytes())
                    .then(|| "admin".to_string())?
            }
            (_, Some(name), Some(password)) => {
                let user = settings.profile.users.iter().find(|u| u.name == *name)?;
                let hash = PasswordHash::new(user.password_hash.expose_secret()).ok()?;
                Argon2::default()
                    .verify_password(password.as_bytes(), &hash)
                    .ok()
                    .map(|()| user.name.clone())?
            }
            _ => return None,
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
        Some(token)
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

    #[test]
    fn tokens_and_passwords_sign_in_and_nothing_else() {
        let mut settings = Settings::default();
        settings.admin.token = Some("the-admin-token-0123".to_string().into());
        settings.profile.users = vec![ProfileUser {
            name: "ada".into(),
            password_hash: hash_password("correct horse").unwrap().into(),
        }];
        let sign_ins = SignIns::default();
        let now = Utc::now();
        let try_in = |token: Option<&str>, name: Option<&str>, password: Option<&str>| {
            sign_ins.sign_in(
                &settings,
                &Credentials {
                    token: token.map(Into::into),
                    name: name.map(Into::into),
                    password: password.map(Into::into),
                },
                now,
            )
        };
        let admin = try_in(Some("the-admin-token-0123"), None, None).unwrap();
        let ada = try_in(None, Some("ada"), Some("correct horse")).unwrap();
        assert!(try_in(Some("wrong"), None, None).is_none());
        assert!(try_in(None, Some("ada"), Some("wrong")).is_none());
        assert!(try_in(None, Some("bob"), Some("correct horse")).is_none());
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
