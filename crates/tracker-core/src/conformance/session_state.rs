//! The session-state behaviour suite: what every live-session state (in-process, Redis) must
//! do, each check on an empty state. A session is locked by one holder at a time, keeps what
//! was kept, is listed while held, and is forgotten when ended or never kept.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    missing_docs
)]

use chrono::{DateTime, TimeZone, Utc};

use crate::{
    event::{EventKind, TrackedEvent},
    ids::{ContactId, DeviceId, SessionId},
    session::{Interaction, LiveSession, Opening, SessionState},
};

/// One `#[tokio::test]` per check of the session-state suite, each on a fresh state from
/// `$make` (an expression whose value is a future of something that derefs to a state, such
/// as a `Box` of it):
/// `tracker_core::session_state_suite!(fresh_state());`.
#[macro_export]
macro_rules! session_state_suite {
    ($make:expr) => {
        $crate::session_state_suite!(@each $make;
            an_unknown_session_is_empty_and_leaves_nothing,
            a_kept_session_is_busy_listed_and_read_back_whole,
            kept_and_let_go_at_once_the_next_holder_reads_it,
            sessions_are_independent,
            an_ended_session_is_forgotten,
            a_new_session_is_kept_whichever_way_it_ends);
    };
    (@each $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let fresh = $make.await;
                let state: &dyn $crate::session::SessionState = &*fresh;
                $crate::conformance::session_state::$check(state).await;
            }
        )*
    };
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0)
        .single()
        .expect("a time")
}

/// A live session `id` with one page view.
fn live(id: SessionId) -> LiveSession {
    let opening = Opening {
        contact_id: ContactId::new_random(),
        device_id: DeviceId::new_random(),
        session_id: id,
        site_name: Some("web".into()),
        user_agent: None,
    };
    let mut interaction = Interaction::open(opening, at());
    interaction.record(vec![TrackedEvent::new(EventKind::PageView)], at());
    LiveSession {
        interaction,
        refreshed_at: Some(at()),
    }
}

/// Keeps a new live session in `state` and lets it go; its id and what was kept.
async fn kept(state: &dyn SessionState) -> (SessionId, LiveSession) {
    let id = SessionId::new_random();
    let live = live(id);
    let mut lock = state.lock(id).await.expect("lock");
    lock.keep(live.clone()).await.expect("keep");
    drop(lock);
    (id, live)
}

/// Unknown: nothing live, nothing held, and a lock never kept leaves nothing behind.
pub async fn an_unknown_session_is_empty_and_leaves_nothing(state: &dyn SessionState) {
    let id = SessionId::new_random();
    assert!(state.try_lock(id).await.expect("try_lock").is_none());
    let lock = state.lock(id).await.expect("lock");
    assert!(lock.live().is_none());
    drop(lock);
    assert!(!state.holds(id).await.expect("holds"));
    assert_eq!(state.count().await.expect("count"), 0);
}

/// Kept: busy while held; then held, listed, counted, idle since its last activity, and read
/// back whole by the next holder.
pub async fn a_kept_session_is_busy_listed_and_read_back_whole(state: &dyn SessionState) {
    let id = SessionId::new_random();
    let live = live(id);
    let mut lock = state.lock(id).await.expect("lock");
    lock.keep(live.clone()).await.expect("keep");
    assert!(
        state.try_lock(id).await.expect("try_lock").is_none(),
        "a held session is busy"
    );
    drop(lock);
    assert!(state.holds(id).await.expect("holds"));
    assert_eq!(state.count().await.expect("count"), 1);
    assert_eq!(state.sessions().await.expect("sessions"), vec![id]);
    let idle_after = live.interaction.last_activity + chrono::Duration::seconds(1);
    assert_eq!(
        state
            .idle_sessions(idle_after)
            .await
            .expect("idle sessions"),
        vec![id],
        "idle since its last activity"
    );
    let lock = state.lock(id).await.expect("lock after release");
    assert_eq!(lock.live(), Some(&live));
}

/// Kept and let go at once (the end of a request): the next holder reads it at once.
pub async fn kept_and_let_go_at_once_the_next_holder_reads_it(state: &dyn SessionState) {
    let (id, live) = kept(state).await;
    let mut later = live.clone();
    later.refreshed_at = Some(at() + chrono::Duration::seconds(5));
    state
        .lock(id)
        .await
        .expect("lock")
        .keep_and_release(later.clone())
        .await
        .expect("keep and release");
    let lock = state
        .try_lock(id)
        .await
        .expect("try_lock")
        .expect("released: not busy");
    assert_eq!(lock.live(), Some(&later));
}

/// Another session is independent of the first: held at the same time, empty.
pub async fn sessions_are_independent(state: &dyn SessionState) {
    let (id, _) = kept(state).await;
    let other = SessionId::new_random();
    let first = state.lock(id).await.expect("lock");
    let second = state.lock(other).await.expect("another session's lock");
    assert!(second.live().is_none());
    assert!(first.live().is_some());
}

/// Ended: forgotten, and the next lock finds nothing.
pub async fn an_ended_session_is_forgotten(state: &dyn SessionState) {
    let (id, _) = kept(state).await;
    let lock = state.lock(id).await.expect("lock");
    lock.end().await.expect("end");
    assert!(!state.holds(id).await.expect("holds"));
    assert_eq!(state.count().await.expect("count"), 0);
    let lock = state.lock(id).await.expect("lock after end");
    assert!(lock.live().is_none());
}

/// A session this request made up (`lock_new`): kept and let go at once, it is listed and
/// the next holder reads it; kept while held, a second holder waits for it (`try_lock` passes
/// it by); never kept, or ended, it leaves nothing.
pub async fn a_new_session_is_kept_whichever_way_it_ends(state: &dyn SessionState) {
    let id = SessionId::new_random();
    let first = live(id);
    let lock = state.lock_new(id).await.expect("lock_new");
    assert!(lock.live().is_none());
    lock.keep_and_release(first.clone()).await.expect("kept");
    assert!(state.holds(id).await.unwrap());
    assert_eq!(state.sessions().await.unwrap(), vec![id]);
    let next = state.lock(id).await.expect("lock");
    assert_eq!(next.live(), Some(&first));
    drop(next);

    let held = SessionId::new_random();
    let mut lock = state.lock_new(held).await.expect("lock_new");
    lock.keep(live(held)).await.expect("keep");
    assert!(
        state.try_lock(held).await.unwrap().is_none(),
        "held by the request that made it up"
    );
    lock.end().await.unwrap();
    assert!(!state.holds(held).await.unwrap());

    let never = SessionId::new_random();
    drop(state.lock_new(never).await.expect("lock_new"));
    let ended = SessionId::new_random();
    state
        .lock_new(ended)
        .await
        .expect("lock_new")
        .end()
        .await
        .unwrap();
    assert!(!state.holds(never).await.unwrap());
    assert!(!state.holds(ended).await.unwrap());
    assert_eq!(state.count().await.unwrap(), 1);
}
