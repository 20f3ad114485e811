//! The behaviour suites every backend must pass: [`store`] for storage backends (a backend's
//! tests expand [`store_suite!`](crate::store_suite), one test per check), [`session_state`]
//! for live-session states
//! ([`session_state_suite!`](crate::session_state_suite)). Also the change-sets the backends'
//! own tests and benchmarks build.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    missing_docs
)]

pub mod session_state;
pub mod store;

pub use store::a_change_set_that_fails_in_the_writer_is_refused_alone;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::{
    event::{DefinitionRef, EventKind, PageInfo, TrackedEvent},
    ids::{ContactId, DeviceId, Guid, SessionId},
    session::{Interaction, Opening},
    store::ChangeSet,
};

pub(crate) fn goal(name: &str, points: i64) -> TrackedEvent {
    let mut event = TrackedEvent::new(EventKind::Goal);
    event.definition = Some(DefinitionRef {
        id: Guid::new_random(),
        name: name.into(),
        points,
    });
    event.data = Some("d".into());
    event
        .custom
        .insert("extra".into(), serde_json::json!({"a": [1, 2]}));
    event
}

pub(crate) fn identification(source: &str, identifier: &str) -> TrackedEvent {
    let mut event = TrackedEvent::new(EventKind::Identification);
    event.data_key = Some(source.into());
    event.data = Some(identifier.into());
    event
}

pub(crate) fn page_view(url: &str) -> TrackedEvent {
    let mut event = TrackedEvent::new(EventKind::PageView);
    event.page = Some(PageInfo {
        page_id: Guid::new_random(),
        url: url.into(),
        language: Some("en".into()),
        item_version: Some(1),
        referrer: None,
    });
    event
}

pub(crate) fn outcome(value: &str) -> TrackedEvent {
    let mut event = TrackedEvent::new(EventKind::Outcome);
    event.definition = Some(DefinitionRef {
        id: Guid::new_random(),
        name: "Purchase".into(),
        points: 100,
    });
    event.monetary_value = Some(value.parse::<Decimal>().unwrap());
    event.currency_code = Some("EUR".into());
    event
}

pub(crate) fn opening(device: DeviceId) -> Opening {
    Opening {
        contact_id: ContactId::new_random(),
        device_id: device,
        session_id: SessionId::new_random(),
        site_name: Some("website".into()),
        user_agent: Some("test".into()),
    }
}

/// A visit's first request as the session engine hands it to the store: `device`'s new
/// contact, a new open interaction at `at`, and `events`. Also used by the backends' tests and
/// benchmarks.
pub fn new_visit(device: DeviceId, at: DateTime<Utc>, events: Vec<TrackedEvent>) -> ChangeSet {
    let mut interaction = Interaction::open(opening(device), at);
    let events = interaction.record(events, at);
    ChangeSet {
        new_contact: true,
        interaction,
        events,
        close: None,
        refresh_interaction: true,
        attribution: Some(attribution()),
    }
}

/// The client the suite's new visits come from.
pub fn attribution() -> crate::client_info::Attribution {
    crate::client_info::Attribution {
        client: crate::client_info::ClientInfo {
            browser: Some("Chrome".into()),
            browser_version: Some("131.0.0.0".into()),
            os: Some("Windows 10".into()),
            device_type: Some("desktop".into()),
        },
        ip: Some(std::net::IpAddr::from([203, 0, 113, 0])),
        landing_url: Some("/landing?utm_source=news".into()),
        referrer: Some("https://news.example/story".into()),
        acquisition: Some(crate::acquisition::Acquisition {
            channel: crate::acquisition::Channel::Email,
            source: Some("news".into()),
            utm: crate::acquisition::Utm {
                source: Some("news".into()),
                medium: Some("email".into()),
                campaign: Some("spring".into()),
                term: Some("red shoes".into()),
                content: Some("banner".into()),
            },
        }),
        language: Some("de-DE".into()),
    }
}
