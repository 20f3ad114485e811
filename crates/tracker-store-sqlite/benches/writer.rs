//! The writer's batch insert: N change-sets (one per tracking request: a live interaction and
//! its 2 new events) committed concurrently through the `Store` API, so the writer thread
//! groups them as it does under load. On a real file in a temporary folder, `sync = normal`
//! and `full`. Run: `cargo bench -p tracker-store-sqlite`.

#![allow(missing_docs, clippy::unwrap_used)]

use std::{sync::Arc, time::Instant};

use chrono::Utc;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tracker_core::{
    conformance,
    definitions::{DefinitionKind, Definitions},
    event::{EventKind, PageInfo, TrackedEvent},
    ids::{DeviceId, Guid},
    store::{ChangeSet, Store},
};
use tracker_store_sqlite::{SqliteConfig, SqliteStore, SyncMode};

/// A fresh visit's first request: new contact, page view and a goal.
fn change_set(definitions: &Definitions) -> ChangeSet {
    let mut page = TrackedEvent::new(EventKind::PageView);
    page.page = Some(PageInfo {
        page_id: Guid::new_random(),
        url: "/products/42".into(),
        language: None,
        item_version: None,
        referrer: None,
    });
    let mut goal = TrackedEvent::new(EventKind::Goal);
    goal.definition = Some((&definitions.list(DefinitionKind::Goal)[0]).into());
    conformance::new_visit(DeviceId::new_random(), Utc::now(), vec![page, goal])
}

fn writer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let definitions = Definitions::defaults();
    let mut group = c.benchmark_group("writer batch insert");
    for (sync_name, sync) in [("normal", SyncMode::Normal), ("full", SyncMode::Full)] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = SqliteConfig::new(dir.path().join("bench.db"));
        config.sync = sync;
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(config).unwrap());
        for batch in [1usize, 16, 64] {
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("sync={sync_name}"), format!("{batch} change-sets")),
                &batch,
                |b, &batch| {
                    b.iter_custom(|iterations| {
                        let mut total = std::time::Duration::ZERO;
                        for _ in 0..iterations {
                            let changes: Vec<ChangeSet> =
                                (0..batch).map(|_| change_set(&definitions)).collect();
                            let started = Instant::now();
                            runtime.block_on(async {
                                let commits = changes.into_iter().map(|change| {
                                    let store = store.clone();
                                    async move { store.commit(change).await.unwrap() }
                                });
                                futures::future::join_all(commits).await;
                            });
                            total += started.elapsed();
                        }
                        total
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, writer);
criterion_main!(benches);
