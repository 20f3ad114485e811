//! `[sessions]` with `backend = "redis"`: the keys a person writes, read by this crate (the
//! server names no backend), and the type a program registers to offer it.

use std::time::Duration;

use serde::Deserialize;
use tracker_core::{
    config::{BackendTable, Named, Problem},
    session::{SessionContext, SessionStateConfig, SessionStateType},
};

use crate::RedisConfig;

/// The keys of `[sessions]` for Redis.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://host:6379/0` (required).
    pub url: Option<String>,
    /// Prefix of the tracker's keys: trackers of different databases sharing one Redis each
    /// need their own.
    pub prefix: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: None,
            prefix: "jss-tracker".into(),
        }
    }
}

/// `sessions.backend = "redis"`: live sessions shared by several tracker nodes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Redis;

impl Named for Redis {
    fn type_name(&self) -> &str {
        "redis"
    }
}

impl SessionStateType for Redis {
    fn config(
        &self,
        table: &BackendTable,
        context: SessionContext,
    ) -> Result<Box<dyn SessionStateConfig>, Vec<Problem>> {
        let settings: RedisSettings = table.typed("sessions")?;
        let Some(url) = settings.url else {
            let mut problem = Problem::new(
                "sessions.url",
                "is required with sessions.backend = \"redis\" (redis://host:6379/0)",
            );
            problem.origin = table.origins.get("sessions.backend").cloned();
            return Err(vec![problem]);
        };
        let mut config = RedisConfig::new(url);
        config.prefix = settings.prefix;
        // A session key outlives its last activity by the timeout and an hour (a safety net:
        // the sweeper ends idle sessions).
        config.session_ttl = context.session_timeout + Duration::from_secs(3600);
        Ok(Box::new(config))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn context() -> SessionContext {
        SessionContext {
            session_timeout: Duration::from_secs(1200),
            max_open_sessions: 10,
        }
    }

    #[test]
    fn the_url_is_required_and_keys_are_checked() {
        let problems = Redis
            .config(&BackendTable::new("redis"), context())
            .unwrap_err();
        assert_eq!(problems[0].key, "sessions.url");
        let problems = Redis
            .config(
                &BackendTable::new("redis")
                    .with("url", "redis://127.0.0.1/")
                    .with("prefx", "a"),
                context(),
            )
            .unwrap_err();
        assert_eq!(problems[0].key, "sessions.prefx");
        assert!(
            problems[0].message.contains("did you mean prefix"),
            "{problems:?}"
        );
    }
}
