//! The storage behaviour suite against a real PostgreSQL: `JSS_TRACKER_TEST_POSTGRES`
//! (default `postgres://postgres@127.0.0.1:5432/test`), one fresh schema per store.

use tracker_store_postgres::{PostgresConfig, PostgresStore};

fn url() -> String {
    std::env::var("JSS_TRACKER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

#[tokio::test]
async fn postgres_passes_the_store_behaviour_suite() {
    let run = uuid::Uuid::now_v7().simple().to_string();
    let counter = std::sync::atomic::AtomicUsize::new(0);
    tracker_core::conformance::run_all(|| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut config = PostgresConfig::new(url());
        config.schema = format!("conformance_{run}_{n}");
        async move { PostgresStore::open(config).await.expect("open") }
    })
    .await;
    // Drop what the run created.
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    for n in 0..counter.load(std::sync::atomic::Ordering::SeqCst) {
        client
            .batch_execute(&format!("DROP SCHEMA conformance_{run}_{n} CASCADE"))
            .await
            .expect("drop schema");
    }
}
