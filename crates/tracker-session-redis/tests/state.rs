//! The Redis session state against a real Redis (`REDIS_URL`, default
//! `redis://127.0.0.1:6379`; `scripts/test` starts one when the machine has none). Each test
//! uses keys of its own.

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use tracker_core::{ids::SessionId, session::SessionState, Error};
use tracker_session_redis::{RedisConfig, RedisSessions};

fn config() -> RedisConfig {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut config = RedisConfig::new(url);
    config.prefix = format!("jss-tracker-test-{}", uuid::Uuid::new_v4().simple());
    config
}

/// A fresh state: keys of its own.
async fn fresh_state() -> Box<RedisSessions> {
    Box::new(RedisSessions::connect(config()).await.unwrap())
}

// The session-state behaviour suite, each check a test of its own.
tracker_core::session_state_suite!(fresh_state());

/// The session's lock, retried (each try waits `lock_wait`) until a generous deadline.
async fn lock_eventually(
    sessions: &RedisSessions,
    id: SessionId,
) -> Result<Box<dyn tracker_core::session::SessionLock>, tokio::time::error::Elapsed> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match sessions.lock(id).await {
                Ok(lock) => return lock,
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
    .await
}

/// Two nodes (two connections) on one Redis: a session one holds is busy for the other, until
/// it lets go; a holder that dies (never lets go) loses the session when its lock expires, so
/// that another node finishes what it was doing.
#[tokio::test]
async fn a_session_is_held_by_one_node_at_a_time_and_a_dead_holder_lets_go_by_itself() {
    let mut config = config();
    config.lock_ttl = Duration::from_millis(300);
    config.lock_wait = Duration::from_millis(50);
    let a = RedisSessions::connect(config.clone()).await.unwrap();
    let b = RedisSessions::connect(config).await.unwrap();
    let id = SessionId::new_random();

    let held = a.lock(id).await.unwrap();
    let busy = b.lock(id).await;
    assert!(
        matches!(busy, Err(Error::Unavailable(_))),
        "a bounded wait, then unavailable"
    );
    drop(held);
    let taken = lock_eventually(&b, id)
        .await
        .expect("released for the other node");
    // Node B dies holding it: its lock is never released.
    std::mem::forget(taken);
    let recovered = lock_eventually(&a, id)
        .await
        .expect("the dead holder's lock expired");
    assert!(recovered.live().is_none());
}

/// With Redis unreachable, connecting fails fast with `Unavailable`, instead of hanging.
#[tokio::test]
async fn an_unreachable_redis_fails_fast() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut config = RedisConfig::new(format!("redis://127.0.0.1:{port}"));
    config.command_timeout = Duration::from_millis(200);
    let started = std::time::Instant::now();
    let outcome = RedisSessions::connect(config).await;
    assert!(matches!(outcome, Err(Error::Unavailable(_))), "{outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// The sweeper asks only for idle sessions: the live set answers by last activity, without
/// listing the active ones.
#[tokio::test]
async fn only_idle_sessions_are_listed_for_the_sweeper() {
    use chrono::{TimeZone, Utc};
    use tracker_core::{
        event::{EventKind, TrackedEvent},
        ids::{ContactId, DeviceId},
        session::{Interaction, LiveSession, Opening},
    };
    let sessions = RedisSessions::connect(config()).await.unwrap();
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).single().unwrap();
    let keep = |id: SessionId, minutes: i64| {
        let sessions = &sessions;
        async move {
            let at = start + chrono::Duration::minutes(minutes);
            let mut interaction = Interaction::open(
                Opening {
                    contact_id: ContactId::new_random(),
                    device_id: DeviceId::new_random(),
                    session_id: id,
                    site_name: None,
                    user_agent: None,
                },
                at,
            );
            interaction.record(vec![TrackedEvent::new(EventKind::PageView)], at);
            let mut lock = sessions.lock(id).await.unwrap();
            lock.keep(LiveSession {
                interaction,
                refreshed_at: Some(at),
            })
            .await
            .unwrap();
        }
    };
    let (old, recent) = (SessionId::new_random(), SessionId::new_random());
    keep(old, 0).await;
    keep(recent, 30).await;
    let idle = sessions
        .idle_sessions(start + chrono::Duration::minutes(10))
        .await
        .unwrap();
    assert_eq!(idle, vec![old]);
    assert_eq!(sessions.sessions().await.unwrap().len(), 2);
}
