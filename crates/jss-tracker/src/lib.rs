//! The jss-tracker application as the binary ships it: the server with every backend this
//! repository has registered. Tests, benchmarks and embedding programs start from
//! [`application`] and add their own types.

pub use tracker_server;

use tracker_server::{Application, ApplicationBuilder};

/// The server with SQLite (the default) and PostgreSQL stores, and Redis session state
/// beside the in-memory default.
pub fn application() -> ApplicationBuilder {
    Application::builder()
        .store_type(tracker_store_sqlite::Sqlite)
        .store_type(tracker_store_postgres::Postgres)
        .session_type(tracker_session_redis::Redis)
}
