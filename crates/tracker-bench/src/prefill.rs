//! Synthetic history for scale runs: contacts, each with closed interactions of realistic
//! events, generated with the core's own types (so the rows are what live ingest writes) and
//! written through the store's bulk path.

use std::{path::Path, time::Instant};

use chrono::{Duration, Utc};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use tracker_core::{
    definitions::{DefinitionKind, Definitions},
    event::{EventKind, PageInfo, TrackedEvent},
    ids::{ContactId, DeviceId, Guid, SessionId},
    session::{CloseReason, Interaction, Opening},
    store::ChangeSet,
};
use tracker_store_sqlite::bulk::{self, BulkStats};

/// Events per synthetic interaction.
pub(crate) const EVENTS_PER_INTERACTION: usize = 10;
/// Interactions per synthetic contact.
pub(crate) const INTERACTIONS_PER_CONTACT: usize = 2;

/// The change-sets for `events` events: one per interaction, each closed.
pub(crate) fn synthetic(events: u64, seed: u64) -> impl Iterator<Item = ChangeSet> {
    let definitions = Definitions::defaults();
    let mut rng = SmallRng::seed_from_u64(seed);
    let interactions = events.div_ceil(EVENTS_PER_INTERACTION as u64);
    let now = Utc::now();
    let pick = move |rng: &mut SmallRng, kind: DefinitionKind| {
        let list = definitions.list(kind);
        list[rng.random_range(0..list.len())].clone()
    };
    let mut contact = (ContactId::new_random(), DeviceId::new_random());
    (0..interactions).map(move |n| {
        let first_of_contact = n % INTERACTIONS_PER_CONTACT as u64 == 0;
        if first_of_contact && n > 0 {
            contact = (ContactId::new_random(), DeviceId::new_random());
        }
        let started = now - Duration::seconds(rng.random_range(3600..90 * 86_400));
        let mut interaction = Interaction::open(
            Opening {
                contact_id: contact.0,
                device_id: contact.1,
                session_id: SessionId::new_random(),
                site_name: Some("website".into()),
                user_agent: Some("Mozilla/5.0 (synthetic)".into()),
            },
            started,
        );
        let mut batch = Vec::with_capacity(EVENTS_PER_INTERACTION);
        for i in 0..EVENTS_PER_INTERACTION {
            let at = started + Duration::seconds(i as i64 * 20);
            let mut event = if i % 4 == 0 {
                let mut e = TrackedEvent::new(EventKind::PageView);
                e.page = Some(PageInfo {
                    page_id: Guid(uuid::Uuid::from_u128(0xA000 + rng.random_range(0..64u128))),
                    url: format!("/products/{}", rng.random_range(0..500u32)),
                    language: Some("en".into()),
                    item_version: Some(1),
                    referrer: None,
                });
                e
            } else if rng.random_bool(0.7) {
                let mut e = TrackedEvent::new(EventKind::PageEvent);
                e.definition = Some((&pick(&mut rng, DefinitionKind::PageEvent)).into());
                e
            } else {
                let mut e = TrackedEvent::new(EventKind::Goal);
                e.definition = Some((&pick(&mut rng, DefinitionKind::Goal)).into());
                e
            };
            event.timestamp = Some(at);
            batch.push(event);
        }
        let stored = interaction.record(batch, started);
        interaction.last_activity = started + Duration::seconds(EVENTS_PER_INTERACTION as i64 * 20);
        let close = interaction.close(CloseReason::Timeout, interaction.last_activity);
        ChangeSet {
            new_contact: first_of_contact,
            interaction,
            events: stored,
            close: Some(close),
            refresh_interaction: true,
            attribution: None,
        }
    })
}

/// Writes `events` synthetic events into the database at `path`.
pub(crate) fn prefill(path: &Path, events: u64, seed: u64) -> anyhow::Result<(BulkStats, f64)> {
    let started = Instant::now();
    let mut last_report = Instant::now();
    let stats = bulk::load(path, synthetic(events, seed), 5_000, |so_far| {
        if last_report.elapsed().as_secs() >= 5 {
            last_report = Instant::now();
            eprintln!(
                "  prefill: {} events, {:.0} events/s",
                so_far.events,
                so_far.events as f64 / started.elapsed().as_secs_f64()
            );
        }
    })?;
    Ok((stats, started.elapsed().as_secs_f64()))
}
