//! Names of the metrics the engine records (through the `metrics` facade; the server exports
//! them with its own).

/// Interactions live in memory.
pub const OPEN_SESSIONS: &str = "jss_tracker_open_sessions";
/// Interactions ended, by `reason` (`flush`, `timeout`).
pub const SESSIONS_CLOSED: &str = "jss_tracker_sessions_closed_total";
/// Tracking requests from robots, answered and not stored, by `reason` (`user_agent`,
/// `ip_range`, `unidentified`).
pub const ROBOT_REQUESTS: &str = "jss_tracker_robot_requests_total";
/// Robots' sessions in memory (a few dozen bytes each; they end after an idle minute).
pub const ROBOT_SESSIONS: &str = "jss_tracker_robot_sessions";
/// Visitors proven human by the visitor identification request.
pub const VISITORS_IDENTIFIED: &str = "jss_tracker_visitors_identified_total";
/// Sessions that left memory at `tracker.max_open_sessions` (their interactions stay open in
/// the store and resume from it).
pub const SESSIONS_EVICTED: &str = "jss_tracker_sessions_evicted_total";
/// Sessions resumed from the store (after leaving memory, or after a restart).
pub const SESSIONS_RESUMED: &str = "jss_tracker_sessions_resumed_total";
