//! The store behaviour suite: every check on a fresh, empty store.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    missing_docs
)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use rust_decimal::Decimal;

use super::{attribution, goal, identification, new_visit, opening, outcome, page_view};
use crate::{
    event::{DefinitionRef, EventKind, TrackedEvent},
    ids::{ContactId, DeviceId, Guid, SessionId},
    session::{CloseReason, Interaction},
    store::{
        ChangeSet, ContactFilter, ContactPage, ContactText, DashboardQuery, InteractionsPage, Store,
    },
};

/// Opens an interaction for a new device's contact at `at` and commits its first batch.
async fn first_batch(
    store: &dyn Store,
    device: DeviceId,
    at: DateTime<Utc>,
    events: Vec<TrackedEvent>,
) -> Interaction {
    let change = new_visit(device, at, events);
    let mut interaction = change.interaction.clone();
    let receipt = store.commit(change).await.unwrap();
    interaction.contact_id = receipt.contact_id;
    interaction
}

/// One `#[tokio::test]` per check of the store behaviour suite, each on a fresh store from
/// `$make` (an expression whose value is a future of something that derefs to a store: a
/// `Box` of it, or a guard that also holds its folder), so that one failure does not hide the
/// others: `tracker_core::store_suite!(fresh_store());` in a backend's tests.
#[macro_export]
macro_rules! store_suite {
    ($make:expr) => {
        $crate::store_suite!(@each $make; a_fresh_store_accepts_writes, events_round_trip_in_order, closing_writes_totals_and_freezes_the_interaction, open_interactions_are_resumable, totals_left_behind_are_replayed_from_events, events_only_changes_refuse_a_closed_interaction, racing_new_contacts_for_one_device_join_one_contact, new_visits_committed_together_settle_their_contacts, later_batches_committed_together_keep_to_their_visits, closes_committed_together_add_up, lookups_by_device, contacts_are_listed_most_recent_first, contacts_are_searched_and_paged, the_dashboard_adds_up, a_contact_is_read_a_page_at_a_time, erasing_a_contact_keeps_only_the_counts, identifying_merges_contacts, money_sums_are_exact_at_any_size);
    };
    (@each $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let fresh = $make.await;
                let store: &dyn $crate::store::Store = &*fresh;
                $crate::conformance::store::$check(store).await;
            }
        )*
    };
}

/// A contact's interactions come newest first in pages (each page oldest first), joined up by
/// their cursor, each with at most the events asked and the count of those left out.
pub async fn a_contact_is_read_a_page_at_a_time(store: &dyn Store) {
    let start = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
    let device = DeviceId::new_random();
    let mut ids = Vec::new();
    let mut contact = None;
    for n in 0..5 {
        let mut change = new_visit(
            device,
            start + Duration::hours(n),
            vec![page_view("/a"), goal("G", 1), goal("H", 2)],
        );
        change.new_contact = n == 0;
        if let Some(contact) = contact {
            change.interaction.contact_id = contact;
        }
        let at = change.interaction.last_activity;
        if n < 4 {
            change.close = Some(change.interaction.close(CloseReason::Flush, at));
        }
        ids.push(change.interaction.id);
        contact = Some(store.commit(change).await.unwrap().contact_id);
    }
    let contact = contact.unwrap();
    let page = |before, limit, events| InteractionsPage {
        limit,
        before,
        events_per_interaction: events,
    };
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let record = store
            .contact(contact, page(before, 2, 1))
            .await
            .unwrap()
            .unwrap();
        assert!(record.interactions.len() <= 2);
        assert_eq!(
            record.summary.interaction_count, 5,
            "totals are the contact's"
        );
        let mut this_page: Vec<_> = record
            .interactions
            .iter()
            .map(|r| r.interaction.id)
            .collect();
        for r in &record.interactions {
            assert_eq!(r.events.len(), 1);
            assert_eq!(r.events_omitted, 2);
            assert_eq!(r.interaction.event_count, 3);
        }
        this_page.extend(seen);
        seen = this_page;
        match record.older {
            Some(older) => before = Some(older),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every interaction once, in order");
}

/// The readiness check commits a write of its own, and can be asked again and again.
pub async fn a_fresh_store_accepts_writes(store: &dyn Store) {
    for _ in 0..3 {
        store.check_writes().await.unwrap();
    }
}

/// Visits, page views, bounces, conversions, outcomes' money per currency, campaigns, top pages
/// and the days, for a range and a site.
pub async fn the_dashboard_adds_up(store: &dyn Store) {
    let start = Utc.with_ymd_and_hms(2026, 5, 1, 9, 0, 0).unwrap();
    let register = goal("Register", 50);
    let register_id = register.definition.as_ref().unwrap().id;
    let purchase = outcome("19.99");
    let purchase_id = purchase.definition.as_ref().unwrap().id;
    let mut dollars = purchase.clone();
    dollars.monetary_value = Some("5.01".parse::<Decimal>().unwrap());
    dollars.currency_code = Some("USD".into());
    let visits: Vec<(i64, Vec<TrackedEvent>)> = vec![
        // day 0: a bounce, and a visit that converts and buys
        (0, vec![page_view("/")]),
        (
            0,
            vec![
                page_view("/"),
                page_view("/pricing"),
                register.clone(),
                purchase.clone(),
            ],
        ),
        // day 1: converts twice in one visit (counts once), buys in two currencies
        (
            1,
            vec![
                page_view("/pricing"),
                register.clone(),
                register.clone(),
                purchase.clone(),
                dollars,
            ],
        ),
        // day 3: nothing but a goal (not a bounce: no page view)
        (3, vec![register.clone()]),
    ];
    // Some visits stay open, one closes in its first change-set, one in a later one: the
    // figures must not depend on which (stores may keep closed visits in roll-ups).
    let mut still_open = Vec::new();
    for (n, (day, events)) in visits.into_iter().enumerate() {
        let mut change = new_visit(DeviceId::new_random(), start + Duration::days(day), events);
        if n == 1 {
            let at = change.interaction.last_activity;
            change.close = Some(change.interaction.close(CloseReason::Flush, at));
        }
        let interaction = change.interaction.clone();
        let receipt = store.commit(change).await.unwrap();
        if n != 1 {
            let mut interaction = interaction;
            interaction.contact_id = receipt.contact_id;
            still_open.push(interaction);
        }
    }
    let close_later = |interaction: Interaction| {
        let close = interaction.close(CloseReason::Timeout, interaction.last_activity);
        ChangeSet {
            new_contact: false,
            interaction,
            events: Vec::new(),
            close: Some(close),
            refresh_interaction: true,
            attribution: None,
        }
    };
    store
        .commit(close_later(still_open.remove(2)))
        .await
        .unwrap();
    // Outside the range, and on another site: not counted.
    store
        .commit(new_visit(
            DeviceId::new_random(),
            start + Duration::days(9),
            vec![page_view("/")],
        ))
        .await
        .unwrap();
    let mut other_site = new_visit(DeviceId::new_random(), start, vec![page_view("/shop")]);
    other_site.interaction.site_name = Some("shop".into());
    store.commit(other_site).await.unwrap();

    let day = |d: i64| (start + Duration::days(d)).date_naive();
    let week = DashboardQuery {
        from: day(0),
        to: day(6),
        site: Some("website".into()),
    };
    let dashboard = store.dashboard(week.clone()).await.unwrap();
    assert_eq!(dashboard.visits, 4);
    assert_eq!(dashboard.page_views, 4);
    assert_eq!(dashboard.bounces, 1);
    assert_eq!(
        dashboard.engagement_value,
        50 + 100 + 50 + 50 + 100 + 100 + 50
    );
    assert_eq!(dashboard.goals.len(), 1);
    assert_eq!(
        (dashboard.goals[0].id, dashboard.goals[0].count),
        (register_id, 3)
    );
    assert_eq!(dashboard.outcomes.len(), 1);
    let bought = &dashboard.outcomes[0];
    assert_eq!((bought.id, bought.count), (purchase_id, 3));
    assert_eq!(bought.monetary_value["EUR"].to_string(), "39.98");
    assert_eq!(bought.monetary_value["USD"].to_string(), "5.01");
    assert_eq!(
        dashboard.top_pages,
        [("/".to_string(), 2), ("/pricing".to_string(), 2)]
    );
    let days: Vec<_> = dashboard
        .days
        .iter()
        .map(|d| (d.date, d.visits, d.page_views, d.conversions))
        .collect();
    assert_eq!(
        days,
        [(day(0), 2, 3, 1), (day(1), 1, 1, 1), (day(3), 1, 0, 1)]
    );

    let all_sites = store
        .dashboard(DashboardQuery {
            from: day(0),
            to: day(0),
            site: None,
        })
        .await
        .unwrap();
    assert_eq!(
        all_sites.visits, 3,
        "the other site's visit counts without a site"
    );

    // Once every visit has closed, the figures are the same.
    for interaction in still_open {
        store.commit(close_later(interaction)).await.unwrap();
    }
    assert_eq!(store.dashboard(week).await.unwrap(), dashboard);
}

/// Search by id, device, goal, campaign, site and activity dates; pages that join up exactly.
pub async fn contacts_are_searched_and_paged(store: &dyn Store) {
    let start = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
    let register = goal("Register", 50);
    let register_id = register.definition.as_ref().unwrap().id;
    let mut spring = TrackedEvent::new(EventKind::Campaign);
    let spring_id = Guid::new_random();
    spring.definition = Some(DefinitionRef {
        id: spring_id,
        name: "Spring".into(),
        points: 0,
    });
    // Seven contacts, one a day; the even ones reach Register, the third has the campaign,
    // the last is on another site.
    let mut visits = Vec::new();
    for day in 0..7 {
        let at = start + Duration::days(day);
        let mut events = vec![page_view("/")];
        if day % 2 == 0 {
            events.push(register.clone());
        }
        if day == 3 {
            events.push(spring.clone());
        }
        let mut change = new_visit(DeviceId::new_random(), at, events);
        if day == 6 {
            change.interaction.site_name = Some("shop".into());
        }
        if day % 3 == 0 {
            // Closed visits and open ones are found alike.
            change.close = Some(change.interaction.close(CloseReason::Flush, at));
        }
        let device = change.interaction.device_id;
        let receipt = store.commit(change).await.unwrap();
        visits.push((receipt.contact_id, device));
    }
    let search = |filter: ContactFilter| async move { store.contacts(filter).await.unwrap() };
    let ids = |page: &ContactPage| page.contacts.iter().map(|c| c.id).collect::<Vec<_>>();
    let newest_first: Vec<ContactId> = visits.iter().rev().map(|(c, _)| *c).collect();

    // Pages of three: 7 in all, each page continuing where the last ended.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = search(ContactFilter {
            limit: 3,
            after,
            ..ContactFilter::default()
        })
        .await;
        assert_eq!(page.total, 7);
        seen.extend(ids(&page));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, newest_first, "every contact once, newest first");

    let by_goal = search(ContactFilter {
        limit: 10,
        goal: Some(register_id),
        ..ContactFilter::default()
    })
    .await;
    assert_eq!(by_goal.total, 4);
    assert_eq!(
        ids(&by_goal),
        [visits[6].0, visits[4].0, visits[2].0, visits[0].0]
    );
    let by_campaign = search(ContactFilter {
        limit: 10,
        campaign: Some(spring_id),
        ..ContactFilter::default()
    })
    .await;
    assert_eq!(ids(&by_campaign), [visits[3].0]);
    let by_site = search(ContactFilter {
        limit: 10,
        site: Some("shop".into()),
        ..ContactFilter::default()
    })
    .await;
    assert_eq!(ids(&by_site), [visits[6].0]);
    let by_contact = search(ContactFilter {
        limit: 10,
        text: Some(ContactText::Id(Guid(visits[1].0 .0))),
        ..ContactFilter::default()
    })
    .await;
    assert_eq!(ids(&by_contact), [visits[1].0]);
    let by_device = search(ContactFilter {
        limit: 10,
        text: Some(ContactText::Id(Guid(visits[5].1 .0))),
        ..ContactFilter::default()
    })
    .await;
    assert_eq!(ids(&by_device), [visits[5].0]);
    let by_identifier = search(ContactFilter {
        limit: 10,
        text: Some(ContactText::Identifier("nobody@example.com".into())),
        ..ContactFilter::default()
    })
    .await;
    assert_eq!(by_identifier.total, 0);
    // Active on days 2 to 4: from the start of day 2 to before the start of day 5.
    let by_dates = search(ContactFilter {
        limit: 10,
        active_from: Some(start + Duration::days(2) - Duration::hours(12)),
        active_before: Some(start + Duration::days(4) + Duration::hours(12)),
        ..ContactFilter::default()
    })
    .await;
    assert_eq!(ids(&by_dates), [visits[4].0, visits[3].0, visits[2].0]);
    let combined = search(ContactFilter {
        limit: 10,
        goal: Some(register_id),
        active_from: Some(start + Duration::days(2) - Duration::hours(12)),
        ..ContactFilter::default()
    })
    .await;
    assert_eq!(ids(&combined), [visits[6].0, visits[4].0, visits[2].0]);
    let known = search(ContactFilter {
        limit: 10,
        known_only: true,
        ..ContactFilter::default()
    })
    .await;
    assert_eq!(known.total, 0, "none of them has an identifier");
}

pub async fn contacts_are_listed_most_recent_first(store: &dyn Store) {
    let start = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
    let mut ids = Vec::new();
    for minutes in [0, 30, 10] {
        let at = start + Duration::minutes(minutes);
        let interaction = first_batch(store, DeviceId::new_random(), at, vec![goal("a", 1)]).await;
        ids.push(interaction.contact_id);
    }
    let listed = store
        .contacts(ContactFilter {
            device: None,
            limit: 2,
            ..ContactFilter::default()
        })
        .await
        .unwrap()
        .contacts;
    let order: Vec<_> = listed.iter().map(|c| c.id).collect();
    assert_eq!(order, [ids[1], ids[2]], "newest first, limited");
    assert_eq!(listed[0].last_activity, start + Duration::minutes(30));
}

pub async fn events_round_trip_in_order(store: &dyn Store) {
    let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
    let device = DeviceId::new_random();
    let mut interaction = Interaction::open(opening(device), now);
    let events = interaction.record(vec![page_view("/a"), goal("G", 20), outcome("19.99")], now);
    let receipt = store
        .commit(ChangeSet {
            new_contact: true,
            interaction: interaction.clone(),
            events: events.clone(),
            close: None,
            refresh_interaction: true,
            attribution: Some(attribution()),
        })
        .await
        .unwrap();
    assert_eq!(receipt.contact_id, interaction.contact_id);
    let later = interaction.record(vec![goal("H", 1)], now + Duration::seconds(5));
    store
        .commit(ChangeSet {
            new_contact: false,
            interaction: interaction.clone(),
            events: later,
            close: None,
            refresh_interaction: true,
            attribution: None,
        })
        .await
        .unwrap();

    let contact = store
        .contact(receipt.contact_id, InteractionsPage::ALL)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(contact.devices.len(), 1);
    assert_eq!(contact.devices[0].id, device);
    assert_eq!(contact.identifiers[0].identifier, device.to_string());
    assert_eq!(contact.interactions.len(), 1);
    let stored = &contact.interactions[0];
    assert!(stored.open);
    assert_eq!(stored.interaction.engagement_value, 121);
    assert_eq!(stored.interaction.page_view_count, 1);
    let kinds: Vec<_> = stored.events.iter().map(|e| e.event.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::PageView,
            EventKind::Goal,
            EventKind::Outcome,
            EventKind::Goal
        ]
    );
    assert_eq!(stored.events[1].page_view_id, Some(events[0].id));
    assert_eq!(stored.events[3].page_view_id, Some(events[0].id));
    assert_eq!(
        stored.events[2].event.monetary_value.unwrap().to_string(),
        "19.99"
    );
    assert_eq!(
        stored.events[1].event.custom["extra"],
        serde_json::json!({"a": [1, 2]})
    );
    assert_eq!(stored.events[0].event.page.as_ref().unwrap().url, "/a");
    assert_eq!(stored.events[3].timestamp, now + Duration::seconds(5));
    assert_eq!(
        stored.interaction, interaction,
        "the live state round-trips"
    );
    assert_eq!(
        stored.attribution,
        attribution(),
        "the client recorded at the opening, kept by later change-sets without one"
    );
    // A contact's engagement value includes its open interactions', as they stand.
    assert_eq!(contact.summary.engagement_value, 121);
    store
        .drain()
        .await
        .expect("drain answers once the queue is committed");
}

pub async fn closing_writes_totals_and_freezes_the_interaction(store: &dyn Store) {
    let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
    let mut interaction = Interaction::open(opening(DeviceId::new_random()), now);
    let events = interaction.record(vec![goal("G", 20)], now);
    let close = interaction.close(CloseReason::Flush, now + Duration::seconds(30));
    store
        .commit(ChangeSet {
            new_contact: true,
            interaction: interaction.clone(),
            events,
            close: Some(close),
            refresh_interaction: true,
            attribution: None,
        })
        .await
        .unwrap();
    let contact = store
        .contact(interaction.contact_id, InteractionsPage::ALL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(contact.summary.engagement_value, 20);
    let stored = &contact.interactions[0];
    assert!(!stored.open);
    assert_eq!(stored.ended_at, Some(now + Duration::seconds(30)));
    assert_eq!(stored.close_reason.as_deref(), Some("flush"));
    assert!(store
        .open_interactions(usize::MAX)
        .await
        .unwrap()
        .is_empty());

    // A closed interaction takes no more events, and the failed change leaves nothing behind.
    let late = interaction.record(vec![goal("late", 1)], now + Duration::minutes(1));
    let refused = store
        .commit(ChangeSet {
            new_contact: false,
            interaction: interaction.clone(),
            events: late,
            close: None,
            refresh_interaction: true,
            attribution: None,
        })
        .await;
    assert!(refused.is_err());
    let contact = store
        .contact(interaction.contact_id, InteractionsPage::ALL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(contact.interactions[0].events.len(), 1);
}

pub async fn open_interactions_are_resumable(store: &dyn Store) {
    let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
    let events = vec![page_view("/x"), goal("G", 3)];
    let interaction = first_batch(store, DeviceId::new_random(), now, events).await;
    let open = store.open_interactions(usize::MAX).await.unwrap();
    assert_eq!(open, vec![interaction.clone()]);
    assert_eq!(store.open_count().await.unwrap(), 1);
    // One by one, by session.
    assert_eq!(
        store
            .open_interaction(interaction.session_id)
            .await
            .unwrap(),
        Some(interaction.clone())
    );
    assert_eq!(
        store
            .open_interaction(SessionId::new_random())
            .await
            .unwrap(),
        None
    );
    // Idle ones, paged in id order; a busier one is not among them.
    let later = first_batch(
        store,
        DeviceId::new_random(),
        now + Duration::minutes(1),
        vec![page_view("/y")],
    )
    .await;
    let latest = first_batch(
        store,
        DeviceId::new_random(),
        now + Duration::minutes(30),
        vec![page_view("/z")],
    )
    .await;
    // Listed most recently active first, as many as asked.
    let listed = store.open_interactions(2).await.unwrap();
    assert_eq!(listed, vec![latest.clone(), later.clone()]);
    let before = now + Duration::minutes(10);
    let first_page = store.idle_open_interactions(before, None, 1).await.unwrap();
    assert_eq!(first_page, vec![interaction.clone()]);
    let second_page = store
        .idle_open_interactions(before, Some((&interaction).into()), 1)
        .await
        .unwrap();
    assert_eq!(second_page, vec![later.clone()]);
    let rest = store
        .idle_open_interactions(before, Some((&later).into()), 1)
        .await
        .unwrap();
    assert!(rest.is_empty(), "{rest:?}");
    // Closed: no longer resumable.
    let close = latest.close(CloseReason::Flush, now + Duration::minutes(31));
    store
        .commit(ChangeSet {
            new_contact: false,
            interaction: latest.clone(),
            events: Vec::new(),
            close: Some(close),
            refresh_interaction: true,
            attribution: None,
        })
        .await
        .unwrap();
    assert_eq!(
        store.open_interaction(latest.session_id).await.unwrap(),
        None
    );
    assert_eq!(store.open_count().await.unwrap(), 2);
}

/// Change-sets that do not refresh the running totals still store their events, and every
/// reader (the contact view, the resumable open interactions) shows the totals as they are.
pub async fn totals_left_behind_are_replayed_from_events(store: &dyn Store) {
    let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
    let mut live = first_batch(store, DeviceId::new_random(), now, vec![page_view("/a")]).await;
    for (seconds, batch) in [
        (10, vec![goal("G", 20), page_view("/b")]),
        (25, vec![goal("H", 5)]),
    ] {
        let at = now + Duration::seconds(seconds);
        let events = live.record(batch, at);
        store
            .commit(ChangeSet {
                new_contact: false,
                interaction: live.clone(),
                events,
                close: None,
                refresh_interaction: false,
                attribution: None,
            })
            .await
            .unwrap();
    }
    assert_eq!(live.engagement_value, 25);
    assert_eq!(
        store.open_interactions(usize::MAX).await.unwrap(),
        vec![live.clone()]
    );
    assert_eq!(
        store.open_interaction(live.session_id).await.unwrap(),
        Some(live.clone()),
        "a resumed session has its totals replayed"
    );
    let idle = store
        .idle_open_interactions(now + Duration::minutes(1), None, 10)
        .await
        .unwrap();
    assert_eq!(
        idle,
        vec![live.clone()],
        "the row's time lags; the replayed one does not"
    );
    let contact = store
        .contact(live.contact_id, InteractionsPage::ALL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(contact.interactions[0].interaction, live);
    assert_eq!(contact.interactions[0].events.len(), 4);
    assert_eq!(
        contact.summary.engagement_value, 25,
        "the contact's total counts the open interaction's events, not its lagging row"
    );
    let listed = store
        .contacts(ContactFilter {
            device: Some(live.device_id),
            limit: 1,
            ..ContactFilter::default()
        })
        .await
        .unwrap()
        .contacts;
    assert_eq!(listed[0].engagement_value, 25, "and so does the list");
}

pub async fn events_only_changes_refuse_a_closed_interaction(store: &dyn Store) {
    let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
    let mut live = first_batch(store, DeviceId::new_random(), now, vec![goal("a", 1)]).await;
    store
        .commit(ChangeSet {
            new_contact: false,
            interaction: live.clone(),
            events: Vec::new(),
            close: Some(live.close(crate::session::CloseReason::Flush, now)),
            refresh_interaction: true,
            attribution: None,
        })
        .await
        .unwrap();
    let late = live.record(vec![goal("b", 1)], now);
    let refused = store
        .commit(ChangeSet {
            new_contact: false,
            interaction: live.clone(),
            events: late,
            close: None,
            refresh_interaction: false,
            attribution: None,
        })
        .await;
    assert!(
        refused.is_err(),
        "events for a closed interaction are refused"
    );
    let contact = store
        .contact(live.contact_id, InteractionsPage::ALL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        contact.interactions[0].events.len(),
        1,
        "nothing of it was stored"
    );
}

/// Ten visits' later batches at once (a store may write them together: PostgreSQL does): each
/// lands in its own visit after its first batch, and the one whose visit was closed meanwhile
/// is refused with nothing of it stored.
pub async fn later_batches_committed_together_keep_to_their_visits(store: &dyn Store) {
    let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
    let mut visits = Vec::new();
    for n in 0..10 {
        let url = format!("/first/{n}");
        visits.push(first_batch(store, DeviceId::new_random(), now, vec![page_view(&url)]).await);
    }
    let closed = visits[3].clone();
    store
        .commit(ChangeSet {
            new_contact: false,
            interaction: closed.clone(),
            events: Vec::new(),
            close: Some(closed.close(crate::session::CloseReason::Flush, now)),
            refresh_interaction: true,
            attribution: None,
        })
        .await
        .unwrap();
    let changes: Vec<ChangeSet> = visits
        .iter_mut()
        .enumerate()
        .map(|(n, live)| {
            let events = live.record(
                vec![goal(&format!("g{n}"), 1), page_view(&format!("/then/{n}"))],
                now,
            );
            ChangeSet {
                new_contact: false,
                interaction: live.clone(),
                events,
                close: None,
                refresh_interaction: false,
                attribution: None,
            }
        })
        .collect();
    let outcomes = futures::future::join_all(changes.into_iter().map(|c| store.commit(c))).await;
    for (n, (outcome, live)) in outcomes.iter().zip(&visits).enumerate() {
        let contact = store
            .contact(live.contact_id, InteractionsPage::ALL)
            .await
            .unwrap()
            .unwrap();
        let events = &contact.interactions[0].events;
        if n == 3 {
            assert!(outcome.is_err(), "a closed visit refuses its later batch");
            assert_eq!(events.len(), 1, "nothing of it stored");
            continue;
        }
        assert_eq!(outcome.as_ref().unwrap().contact_id, live.contact_id);
        let urls: Vec<Option<&str>> = events
            .iter()
            .map(|e| e.event.page.as_ref().map(|p| p.url.as_str()))
            .collect();
        let (first, then) = (format!("/first/{n}"), format!("/then/{n}"));
        assert_eq!(urls, vec![Some(first.as_str()), None, Some(then.as_str())]);
        assert_eq!(events[1].seq, 1, "in order, numbered on");
    }
}

/// Visits closed at once (a store may end them together): each ends with its totals, its
/// roll-up contribution and its contact's engagement value; a visit closed already refuses a
/// second close, and nothing of it is counted twice.
pub async fn closes_committed_together_add_up(store: &dyn Store) {
    let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
    let later = now + Duration::minutes(3);
    let reached = goal("g", 2);
    let mut visits = Vec::new();
    for n in 0..10 {
        let events = vec![page_view(&format!("/first/{n}")), reached.clone()];
        visits.push(first_batch(store, DeviceId::new_random(), now, events).await);
    }
    let close = |live: &Interaction| ChangeSet {
        new_contact: false,
        interaction: live.clone(),
        events: Vec::new(),
        close: Some(live.close(crate::session::CloseReason::Flush, later)),
        refresh_interaction: true,
        attribution: None,
    };
    let outcomes = futures::future::join_all(visits.iter().map(|v| store.commit(close(v)))).await;
    assert!(
        store.commit(close(&visits[3])).await.is_err(),
        "a closed visit refuses a second close"
    );
    for (n, (outcome, live)) in outcomes.iter().zip(&visits).enumerate() {
        let contact = store
            .contact(live.contact_id, InteractionsPage::ALL)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(outcome.as_ref().unwrap().contact_id, live.contact_id);
        let ended = &contact.interactions[0];
        assert!(!ended.open, "visit {n} ended");
        assert_eq!(ended.ended_at, Some(later), "visit {n}");
        assert_eq!(ended.interaction.event_count, 2);
        assert_eq!(contact.summary.engagement_value, 2, "visit {n}'s contact");
        assert_eq!(contact.summary.last_activity, later);
    }
    let day = now.date_naive();
    let dashboard = store
        .dashboard(crate::store::DashboardQuery {
            from: day,
            to: day,
            site: None,
        })
        .await
        .unwrap();
    assert_eq!((dashboard.visits, dashboard.page_views), (10, 10));
    assert_eq!(dashboard.engagement_value, 20);
    let goals: Vec<(&str, u64)> = dashboard
        .goals
        .iter()
        .map(|g| (g.name.as_str(), g.count))
        .collect();
    assert_eq!(goals, vec![("g", 10)]);
}

pub async fn racing_new_contacts_for_one_device_join_one_contact(store: &dyn Store) {
    let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
    let device = DeviceId::new_random();
    let first = first_batch(store, device, now, vec![goal("a", 1)]).await;
    // The second request also believed the device new, and made up its own contact id.
    let mut second = Interaction::open(opening(device), now);
    let e2 = second.record(vec![goal("b", 1)], now);
    let r2 = store
        .commit(ChangeSet {
            new_contact: true,
            interaction: second.clone(),
            events: e2,
            close: None,
            refresh_interaction: true,
            attribution: None,
        })
        .await
        .unwrap();
    assert_eq!(first.contact_id, r2.contact_id);
    let contact = store
        .contact(first.contact_id, InteractionsPage::ALL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(contact.interactions.len(), 2);
    assert!(store
        .contact(second.contact_id, InteractionsPage::ALL)
        .await
        .unwrap()
        .is_none());
}

/// Many visits' first requests at once (a store may write them together: PostgreSQL does, in
/// one statement per table): twenty new devices get their own contacts, two first requests of
/// one new device share one contact, and a known device's new visit joins its contact, which
/// was seen again.
pub async fn new_visits_committed_together_settle_their_contacts(store: &dyn Store) {
    let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
    let later = now + Duration::minutes(5);
    let known_device = DeviceId::new_random();
    let known = first_batch(store, known_device, now, vec![goal("a", 1)]).await;
    let shared_device = DeviceId::new_random();
    let mut changes: Vec<ChangeSet> = (0..20)
        .map(|n| {
            new_visit(
                DeviceId::new_random(),
                later,
                vec![page_view(&format!("/{n}"))],
            )
        })
        .collect();
    changes.push(new_visit(shared_device, later, vec![goal("b", 2)]));
    changes.push(new_visit(shared_device, later, vec![goal("c", 3)]));
    let latest = later + Duration::minutes(1);
    changes.push(new_visit(known_device, latest, vec![page_view("/again")]));
    let asked: Vec<ContactId> = changes.iter().map(|c| c.interaction.contact_id).collect();
    let receipts: Vec<_> = futures::future::join_all(changes.into_iter().map(|c| store.commit(c)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for n in 0..20 {
        assert_eq!(
            receipts[n].contact_id, asked[n],
            "a new device's own contact"
        );
        let contact = store
            .contact(asked[n], InteractionsPage::ALL)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(contact.interactions.len(), 1);
        assert_eq!(contact.interactions[0].events.len(), 1);
        assert_eq!(
            contact.interactions[0].attribution,
            attribution(),
            "written together: the client, and where the visit came from"
        );
        assert_eq!(contact.devices.len(), 1);
    }
    assert_eq!(receipts[20].contact_id, receipts[21].contact_id);
    assert!(asked[20..22].contains(&receipts[20].contact_id));
    let shared = store
        .contact(receipts[20].contact_id, InteractionsPage::ALL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shared.interactions.len(), 2);
    assert_eq!(shared.devices.len(), 1);
    assert_eq!(receipts[22].contact_id, known.contact_id);
    let known = store
        .contact(known.contact_id, InteractionsPage::ALL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(known.interactions.len(), 2);
    assert_eq!(known.summary.last_activity, latest, "seen again");
    assert_eq!(known.devices[0].last_seen, latest);
    let all = store
        .contacts(ContactFilter {
            limit: 100,
            ..ContactFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(all.contacts.len(), 22, "20 new, 1 shared, 1 known");
    assert_eq!(
        all.contacts[0].id, known.summary.id,
        "the contact seen last comes first (its row's recency, not only its visits')"
    );
}

pub async fn lookups_by_device(store: &dyn Store) {
    let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
    let device = DeviceId::new_random();
    let interaction = first_batch(store, device, now, vec![goal("a", 1)]).await;
    let found = store
        .contacts(ContactFilter {
            device: Some(device),
            limit: 10,
            ..ContactFilter::default()
        })
        .await
        .unwrap()
        .contacts;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, interaction.contact_id);
    assert_eq!(found[0].interaction_count, 1);
    let none = store
        .contacts(ContactFilter {
            device: Some(DeviceId::new_random()),
            limit: 10,
            ..ContactFilter::default()
        })
        .await
        .unwrap()
        .contacts;
    assert!(none.is_empty());
    assert!(!store
        .contacts(ContactFilter {
            device: None,
            limit: 10,
            ..ContactFilter::default()
        })
        .await
        .unwrap()
        .contacts
        .is_empty());
}

/// An identifier another contact already has merges the two: the known contact survives with
/// every visit, device, identifier and total of both, nothing counted twice; the merged one's
/// device lands on the survivor from then on, and a live session still naming the merged
/// contact keeps storing into its visit (the receipt names the survivor).
pub async fn identifying_merges_contacts(store: &dyn Store) {
    use crate::session::CloseReason;
    let now = Utc.with_ymd_and_hms(2026, 5, 3, 12, 0, 0).unwrap();
    let minutes = |n: i64| now + chrono::Duration::minutes(n);
    let (ada_laptop, ada_phone) = (DeviceId::new_random(), DeviceId::new_random());
    let first = first_batch(store, ada_laptop, now, vec![goal("g", 10)]).await;
    store
        .commit(ChangeSet::close(
            &first,
            first.close(CloseReason::Flush, now),
        ))
        .await
        .unwrap();
    let signed_in = first_batch(
        store,
        ada_laptop,
        minutes(1),
        vec![identification("email", "ada@example.com")],
    )
    .await;
    let known = signed_in.contact_id;
    assert_eq!(known, first.contact_id);

    let mut phone = first_batch(store, ada_phone, now, vec![goal("h", 5)]).await;
    let anonymous = phone.contact_id;
    assert_ne!(anonymous, known);
    let events = phone.record(vec![identification("email", "ada@example.com")], minutes(2));
    let receipt = store
        .commit(ChangeSet::batch(&phone, events, false, false, None))
        .await
        .unwrap();
    assert_eq!(receipt.contact_id, known, "the known contact survives");
    assert!(store
        .contact(anonymous, InteractionsPage::ALL)
        .await
        .unwrap()
        .is_none());

    // A session still naming the merged contact (another node's, say) keeps storing.
    let events = phone.record(vec![goal("h", 5)], minutes(3));
    let receipt = store
        .commit(ChangeSet::batch(&phone, events, false, true, None))
        .await
        .unwrap();
    assert_eq!(receipt.contact_id, known);
    store
        .commit(ChangeSet::close(
            &phone,
            phone.close(CloseReason::Flush, minutes(3)),
        ))
        .await
        .unwrap();
    // The phone's next visit is the known contact's.
    let later = first_batch(store, ada_phone, minutes(4), vec![goal("h", 5)]).await;
    assert_eq!(later.contact_id, known);

    let record = store
        .contact(known, InteractionsPage::ALL)
        .await
        .unwrap()
        .expect("the survivor");
    assert_eq!(record.interactions.len(), 4);
    assert_eq!(record.devices.len(), 2);
    assert!(record
        .identifiers
        .iter()
        .any(|i| i.source == "email" && i.identifier == "ada@example.com"));
    let events: usize = record.interactions.iter().map(|i| i.events.len()).sum();
    assert_eq!(events, 6, "1 + 1 + 3 + 1, none doubled");
    assert_eq!(record.summary.goal_count, 4);
    assert_eq!(record.summary.engagement_value, 10 + 10 + 5);
    assert_eq!(record.summary.interaction_count, 4);
    // Found by the identifier, once.
    let found = store
        .contacts(ContactFilter {
            text: Some(ContactText::Identifier("ada@example.com".into())),
            limit: 10,
            ..ContactFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(found.total, 1);
    assert_eq!(found.contacts[0].id, known);

    // Given directly (the admin API): a new identifier stays with the contact; one another
    // contact has merges it; an unknown contact has none.
    let stranger = first_batch(store, DeviceId::new_random(), now, vec![goal("x", 1)]).await;
    let kept = store
        .identify(stranger.contact_id, "crm".into(), "C-42".into())
        .await
        .unwrap();
    assert_eq!(kept, Some(stranger.contact_id));
    let merged = store
        .identify(
            stranger.contact_id,
            "email".into(),
            "ada@example.com".into(),
        )
        .await
        .unwrap();
    assert_eq!(merged, Some(known));
    let record = store
        .contact(known, InteractionsPage::ALL)
        .await
        .unwrap()
        .expect("the survivor");
    assert_eq!(record.interactions.len(), 5);
    assert!(record.identifiers.iter().any(|i| i.identifier == "C-42"));
    assert_eq!(
        store
            .identify(ContactId::new_random(), "crm".into(), "C-43".into())
            .await
            .unwrap(),
        None
    );
}

/// Erasing a contact removes it, its devices and visits (open ones too), keeps the dashboard's
/// counts, leaves other contacts alone, and its device then starts a fresh contact.
pub async fn erasing_a_contact_keeps_only_the_counts(store: &dyn Store) {
    use crate::session::CloseReason;
    let now = Utc.with_ymd_and_hms(2026, 5, 2, 12, 0, 0).unwrap();
    let device = DeviceId::new_random();
    let first = first_batch(store, device, now, vec![goal("a", 1)]).await;
    store
        .commit(ChangeSet::close(
            &first,
            first.close(CloseReason::Flush, now),
        ))
        .await
        .unwrap();
    let later = now + chrono::Duration::minutes(30);
    let open = first_batch(store, device, later, vec![goal("a", 1), goal("b", 2)]).await;
    assert_eq!(open.contact_id, first.contact_id, "one contact, two visits");
    let other = first_batch(store, DeviceId::new_random(), now, vec![goal("a", 1)]).await;
    let day = DashboardQuery {
        from: now.date_naive(),
        to: now.date_naive(),
        site: None,
    };
    let before = store.dashboard(day.clone()).await.unwrap();
    assert_eq!(before.visits, 3);

    let erased = store
        .erase_contact(first.contact_id)
        .await
        .unwrap()
        .expect("the contact existed");
    assert_eq!(erased.interactions, 2);
    assert_eq!(erased.events, 3);
    assert_eq!(erased.devices, 1);
    assert!(store
        .contact(first.contact_id, InteractionsPage::ALL)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .open_interaction(open.session_id)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .contacts(ContactFilter {
            device: Some(device),
            limit: 10,
            ..ContactFilter::default()
        })
        .await
        .unwrap()
        .contacts
        .is_empty());
    assert_eq!(
        store.dashboard(day).await.unwrap(),
        before,
        "the counts stay (the open visit's included)"
    );
    assert!(store
        .contact(other.contact_id, InteractionsPage::ALL)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .erase_contact(first.contact_id)
        .await
        .unwrap()
        .is_none());
    // The old cookie starts afresh.
    let again = first_batch(store, device, later, vec![goal("a", 1)]).await;
    assert_ne!(again.contact_id, first.contact_id);
}

/// Totals of money are exact sums whatever their size: two outcomes of one day, definition and
/// currency committed separately add up (a roll-up that kept the old total, or the new one,
/// would show one of them); ten of the largest value one outcome may carry in one visit, and
/// eight visits of one such outcome each, add up past what a 28-digit decimal holds (a sum in
/// one once panicked the writer); the store keeps writing afterwards, and the contact reads
/// back.
pub async fn money_sums_are_exact_at_any_size(store: &dyn Store) {
    let start = Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap();
    let order = outcome("5.01");
    let order_id = order.definition.as_ref().unwrap().id;
    let with_value = |value: &str| {
        let mut event = order.clone();
        event.monetary_value = Some(value.parse::<Decimal>().unwrap());
        event
    };
    let closed_visit = |at: DateTime<Utc>, events: Vec<TrackedEvent>| {
        let mut change = new_visit(DeviceId::new_random(), at, events);
        let ended = change.interaction.last_activity;
        change.close = Some(change.interaction.close(CloseReason::Flush, ended));
        change
    };
    let day = DashboardQuery {
        from: start.date_naive(),
        to: start.date_naive(),
        site: None,
    };
    let money = |dashboard: &crate::store::Dashboard| {
        let total = dashboard
            .outcomes
            .iter()
            .find(|o| o.id == order_id)
            .expect("the outcome is in the dashboard");
        (total.count, total.monetary_value["EUR"].to_string())
    };

    // Two separate commits of one day, definition and currency.
    store
        .commit(closed_visit(start, vec![with_value("5.01")]))
        .await
        .unwrap();
    store
        .commit(closed_visit(
            start + Duration::minutes(1),
            vec![with_value("2.50")],
        ))
        .await
        .unwrap();
    assert_eq!(
        money(&store.dashboard(day.clone()).await.unwrap()),
        (2, "7.51".into())
    );

    // Ten of the largest in one visit, then eight visits of one each, each committed alone.
    let max = "9999999999999999999999999999";
    let big = closed_visit(start + Duration::minutes(2), vec![with_value(max); 10]);
    let big_contact = big.interaction.contact_id;
    store.commit(big).await.unwrap();
    for n in 0..8 {
        store
            .commit(closed_visit(
                start + Duration::minutes(3 + n),
                vec![with_value(max)],
            ))
            .await
            .unwrap();
    }
    // 18 x 9999999999999999999999999999 + 7.51
    assert_eq!(
        money(&store.dashboard(day.clone()).await.unwrap()),
        (20, "179999999999999999999999999989.51".into())
    );
    // Still writing, and the visit reads back with its values.
    let after = first_batch(
        store,
        DeviceId::new_random(),
        start,
        vec![with_value("0.49")],
    )
    .await;
    let contact = store
        .contact(big_contact, InteractionsPage::ALL)
        .await
        .unwrap()
        .expect("the contact of the large visit");
    assert_eq!(contact.interactions[0].events.len(), 10);
    // The open visit counts as it stands.
    assert_eq!(
        money(&store.dashboard(day).await.unwrap()),
        (21, "179999999999999999999999999990.00".into())
    );
    assert!(store
        .contact(after.contact_id, InteractionsPage::ALL)
        .await
        .unwrap()
        .is_some());
}

/// A change-set that fails inside the store's writer (`fail_inside` makes every later
/// change-set of that interaction panic there: a backend's test hook) is refused alone, in its
/// group and by itself, with [`crate::Error::Refused`]; the others of its group commit; its close
/// still ends its visit; the writer serves the next change-set, and the store is alive and
/// ready. Not in [`store_suite!`](crate::store_suite): it needs the backend's hook.
pub async fn a_change_set_that_fails_in_the_writer_is_refused_alone(
    store: &dyn Store,
    fail_inside: impl Fn(uuid::Uuid),
) {
    let event = || TrackedEvent::new(EventKind::PageEvent);
    let at = Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap();
    let mut live = first_batch(store, DeviceId::new_random(), at, vec![event()]).await;
    fail_inside(live.id.0);

    let events = live.record(vec![event()], at + Duration::seconds(1));
    let batch = ChangeSet::batch(&live, events, false, true, None);
    let goods: Vec<_> = (0..4)
        .map(|_| new_visit(DeviceId::new_random(), at, vec![event()]))
        .collect();
    let (refused, accepted) = futures::join!(
        store.commit(batch),
        futures::future::join_all(goods.into_iter().map(|g| store.commit(g)))
    );
    assert!(
        matches!(refused, Err(crate::Error::Refused(_))),
        "{refused:?}"
    );
    assert!(accepted.iter().all(Result::is_ok), "{accepted:?}");

    let close = live.close(CloseReason::Timeout, at + Duration::minutes(20));
    store.commit(ChangeSet::close(&live, close)).await.unwrap();
    assert_eq!(store.open_count().await.unwrap(), 4);
    let contact = store
        .contact(live.contact_id, InteractionsPage::ALL)
        .await
        .unwrap()
        .unwrap();
    assert!(!contact.interactions[0].open, "its visit still ended");
    assert_eq!(
        contact.interactions[0].events.len(),
        1,
        "the refused batch left nothing"
    );

    store
        .commit(new_visit(DeviceId::new_random(), at, vec![event()]))
        .await
        .unwrap();
    store.alive().unwrap();
    store.check_writes().await.unwrap();
}
