//! What types alone cannot check, and what a person should be warned about.

use super::*;

impl Settings {
    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut invalid = |key: &str, message: &str| problems.push(Problem::new(key, message));
        if let Err(message) = self.server.listen.resolve() {
            invalid("server.listen", &message);
        }
        if self.server.trust_forwarded_proto.is_some() {
            invalid(
                "server.trust_forwarded_proto",
                "is replaced by server.trusted_proxies: list your proxy's addresses, e.g. \
                 trusted_proxies = [\"10.0.0.0/8\"], and its X-Forwarded-Proto and X-Forwarded-For are believed",
            );
        }
        for pattern in &self.robots.user_agents {
            if let Err(error) = regex::Regex::new(pattern) {
                invalid(
                    "robots.user_agents",
                    &format!("\"{pattern}\" is not a regular expression: {error}"),
                );
            }
        }
        if self.tracker.session_timeout.is_zero() {
            invalid("tracker.session_timeout", "must be longer than zero");
        }
        if self.tracker.sweep_interval.is_zero() {
            invalid("tracker.sweep_interval", "must be longer than zero");
        }
        if !self.tracker.service_prefix.starts_with('/')
            || self.tracker.service_prefix.ends_with('/')
        {
            invalid(
                "tracker.service_prefix",
                "must start with '/' and not end with one",
            );
        }
        if self.tracker.session_cookie.is_empty()
            || !self
                .tracker
                .session_cookie
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
        {
            invalid("tracker.session_cookie", "is not a valid cookie name");
        }
        if self
            .admin
            .token
            .as_ref()
            .is_some_and(|t| t.expose_secret().trim().is_empty())
        {
            invalid(
                "admin.token",
                "is empty; set a token (`jss-tracker init` writes a random one), or remove the key to turn the admin API off",
            );
        }
        if let Some(file) = &self.definitions.file {
            if !file.is_file() {
                invalid(
                    "definitions.file",
                    &format!("cannot read {}: no such file", display_path(file)),
                );
            }
        }
        problems.extend(self.access_problems());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// What is wrong with who may get in: Profile users and API keys.
    fn access_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut invalid = |key: &str, message: &str| problems.push(Problem::new(key, message));
        for (i, user) in self.profile.users.iter().enumerate() {
            if user.name.trim().is_empty() {
                invalid(&format!("profile.users[{i}].name"), "is empty");
            }
            if argon2::PasswordHash::new(user.password_hash.expose_secret()).is_err() {
                invalid(
                    &format!("profile.users[{i}].password_hash"),
                    "is not an Argon2 hash; make one with `jss-tracker hash-password`",
                );
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, key) in self.api_keys.iter().enumerate() {
            let at = format!("api_keys[{i}]");
            if key.key.expose_secret().trim().is_empty() {
                invalid(&format!("{at}.key"), "is empty");
            } else if !seen.insert(canonical_api_key(key.key.expose_secret())) {
                invalid(&format!("{at}.key"), "is used twice");
            }
            for origin in &key.cors_origins {
                if origin != "*"
                    && !(origin.starts_with("http://") || origin.starts_with("https://"))
                {
                    invalid(
                        &format!("{at}.cors_origins"),
                        &format!(
                            "\"{origin}\" is not \"*\" or an origin like https://app.example.com"
                        ),
                    );
                }
            }
        }
        problems
    }

    /// What a person running the tracker with these settings should know: the tracker is
    /// disabled, it has no API key, the admin token is missing or weak, an origin is `*`,
    /// cookies cannot cross sites. `serve` prints them in its banner, `check-config` on
    /// standard error.
    pub fn warnings(&self, listen: Option<SocketAddr>) -> Vec<String> {
        let mut warnings = Vec::new();
        if !self.tracker.enabled {
            warnings.push(
                "the tracker is disabled: tracking requests answer 404 until tracker.enabled = true \
                 (or JSS_TRACKER__TRACKER__ENABLED=true)"
                    .to_string(),
            );
        }
        if self.api_keys.is_empty() {
            warnings.push(
                "no API key is configured: every tracking request is refused; add an [[api_keys]] \
                 entry (`jss-tracker init` writes one)"
                    .to_string(),
            );
        }
        let listen = listen.or_else(|| self.server.listen.resolve().ok());
        if let Some(addr) = listen {
            if !(addr.ip().is_loopback() || addr.ip().is_unspecified())
                && self.server.trusted_proxies.is_empty()
            {
                warnings.push(
                    "serving plain HTTP on a non-loopback address with no trusted proxy: cookies are \
                     SameSite=Lax, so browsers drop them for a cross-site app; put a TLS proxy in front \
                     and list it in server.trusted_proxies"
                        .to_string(),
                );
            }
        }
        match &self.admin.token {
            None => warnings
                .push("admin.token is not set: the admin API refuses every request".to_string()),
            Some(token) if token.expose_secret().trim().len() < MIN_ADMIN_TOKEN_LEN => warnings
                .push(format!(
                    "admin.token is weak (shorter than {MIN_ADMIN_TOKEN_LEN} characters): anyone who guesses it reads every contact"
                )),
            Some(_) => {}
        }
        if self
            .api_keys
            .iter()
            .any(|k| k.cors_origins.iter().any(|o| o == "*"))
        {
            warnings.push(
                "an API key allows any origin (\"*\"): fine for development only".to_string(),
            );
        }
        if self.identification.trust == IdentificationTrustSetting::Client {
            warnings.push(
                "identification.trust = \"client\": any browser holding the public API key can \
                 claim any identifier and merge that person's profile into its own; only for an \
                 intranet (see docs/security.md)"
                    .to_string(),
            );
        }
        for key in &self.api_keys {
            if key.server_side && !key.cors_origins.is_empty() {
                warnings.push(format!(
                    "API key '{}' is server_side: its cors_origins are ignored (browsers may not \
                     use it)",
                    key.name
                ));
            }
        }
        warnings
    }
}
