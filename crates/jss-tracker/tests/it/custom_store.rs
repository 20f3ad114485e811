//! A program's own store type, registered as the binary registers SQLite and PostgreSQL: the
//! server names no backend, so any `Store` behind `storage.backend` serves tracking. Here a
//! store that wraps SQLite and counts what it commits (as an audit or metrics layer would).

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;
use tracker_core::{
    config::{BackendTable, Named, Problem},
    ids::{ContactId, DeviceKey, SessionId},
    session::Interaction,
    store::{
        ChangeSet, CommitReceipt, ContactFilter, ContactPage, ContactRecord, Dashboard,
        DashboardQuery, Erased, InteractionsPage, Store, StoreConfig, StoreType,
    },
    Error,
};
use tracker_server::Application;

use crate::helpers::*;

/// Commits the wrapping store passed on, shared with the test.
static COMMITS: AtomicUsize = AtomicUsize::new(0);

/// `storage.backend = "counting"`, with one key of its own: `path`, the SQLite file it wraps.
struct Counting;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CountingSettings {
    path: std::path::PathBuf,
}

impl Named for Counting {
    fn type_name(&self) -> &str {
        "counting"
    }
}

impl StoreType for Counting {
    fn config(&self, table: &BackendTable) -> Result<Box<dyn StoreConfig>, Vec<Problem>> {
        let settings: CountingSettings = table.typed("storage")?;
        let inner = tracker_store_sqlite::Sqlite.config(
            &BackendTable::new("sqlite").with("path", table.resolve("path", &settings.path)),
        )?;
        Ok(Box::new(CountingConfig(inner)))
    }
}

#[derive(Debug)]
struct CountingConfig(Box<dyn StoreConfig>);

#[async_trait]
impl StoreConfig for CountingConfig {
    async fn build(&self) -> Result<Arc<dyn Store>, Error> {
        Ok(Arc::new(CountingStore(self.0.build().await?)))
    }

    fn describe(&self) -> String {
        format!("counting commits of {}", self.0.describe())
    }
}

#[derive(Debug)]
struct CountingStore(Arc<dyn Store>);

#[async_trait]
impl Store for CountingStore {
    async fn commit(&self, change: ChangeSet) -> Result<CommitReceipt, Error> {
        let receipt = self.0.commit(change).await?;
        COMMITS.fetch_add(1, Ordering::SeqCst);
        Ok(receipt)
    }
    async fn check_writes(&self) -> Result<(), Error> {
        self.0.check_writes().await
    }
    async fn drain(&self) -> Result<(), Error> {
        self.0.drain().await
    }
    async fn open_interactions(&self, limit: usize) -> Result<Vec<Interaction>, Error> {
        self.0.open_interactions(limit).await
    }
    async fn open_interaction(&self, session: SessionId) -> Result<Option<Interaction>, Error> {
        self.0.open_interaction(session).await
    }
    async fn idle_open_interactions(
        &self,
        idle_before: DateTime<Utc>,
        after: Option<tracker_core::store::OpenCursor>,
        limit: usize,
    ) -> Result<Vec<Interaction>, Error> {
        self.0
            .idle_open_interactions(idle_before, after, limit)
            .await
    }
    async fn open_count(&self) -> Result<u64, Error> {
        self.0.open_count().await
    }
    async fn device_key(&self) -> Result<DeviceKey, Error> {
        self.0.device_key().await
    }
    async fn contacts(&self, filter: ContactFilter) -> Result<ContactPage, Error> {
        self.0.contacts(filter).await
    }
    async fn dashboard(&self, query: DashboardQuery) -> Result<Dashboard, Error> {
        self.0.dashboard(query).await
    }
    async fn erase_contact(&self, id: ContactId) -> Result<Option<Erased>, Error> {
        self.0.erase_contact(id).await
    }
    async fn identify(
        &self,
        id: ContactId,
        source: String,
        identifier: String,
    ) -> Result<Option<ContactId>, Error> {
        self.0.identify(id, source, identifier).await
    }
    async fn contact(
        &self,
        id: ContactId,
        page: InteractionsPage,
    ) -> Result<Option<ContactRecord>, Error> {
        self.0.contact(id, page).await
    }
}

#[tokio::test]
async fn a_program_registers_its_own_store_type_and_tracking_goes_through_it() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut settings = test_settings(dir.path());
    settings.sessions = BackendTable::new("memory");
    settings.storage = BackendTable::new("counting").with("path", dir.path().join("wrapped.db"));
    // Without the type registered, the setting names what is.
    let unknown = Application::builder()
        .store_type(tracker_store_sqlite::Sqlite)
        .build(settings.clone())
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        unknown,
        "storage.backend: unknown value \"counting\"; expected \"sqlite\""
    );
    let clock = tracker_core::clock::ManualClock::new(Utc::now());
    let app = Application::builder()
        .store_type(Counting)
        .clock(Arc::new(clock.clone()))
        .build(settings)
        .await
        .unwrap();
    assert!(
        app.banner().contains("counting commits of"),
        "{}",
        app.banner()
    );
    let app = TestApp::serve(app, dir.clone(), clock, dir.path().join("wrapped.db"));
    let before = COMMITS.load(Ordering::SeqCst);
    let mut browser = Browser::new();
    browser
        .track_ok(
            &app,
            json!([{"pageId": PAGE, "url": "/"}, {"goalId": "Register"}]),
        )
        .await;
    browser
        .track_ok(&app, json!([{"eventId": "Download"}]))
        .await;
    assert_eq!(browser.flush(&app).await["closed"], true);
    assert_eq!(
        COMMITS.load(Ordering::SeqCst) - before,
        3,
        "two batches and a close, each through the program's store"
    );
    let contact = app.contact_of(&browser).await;
    assert_eq!(
        contact["interactions"][0]["events"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert!(dir.path().join("wrapped.db").is_file());
}
