//! The storage behaviour suite against a real PostgreSQL: `JSS_TRACKER_TEST_POSTGRES`
//! (default `postgres://postgres@127.0.0.1:5432/test`). Each check is a test of its own, on a
//! fresh schema (`conformance_<uuid>`, left behind for a look after a failure; a test
//! database's schemas can be dropped at will).

use tracker_store_postgres::{PostgresConfig, PostgresStore};

fn url() -> String {
    std::env::var("JSS_TRACKER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh store in a schema of its own.
async fn fresh_store() -> Box<PostgresStore> {
    let mut config = PostgresConfig::new(url());
    config.schema = format!("conformance_{}", uuid::Uuid::now_v7().simple());
    Box::new(PostgresStore::open(config).await.expect("open"))
}

tracker_core::store_suite!(fresh_store());
