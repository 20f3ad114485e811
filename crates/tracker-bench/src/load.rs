//! Virtual visitors: each runs realistic visits one after another, with its own cookies, over
//! the client's shared keep-alive connections, until the deadline.
//!
//! A visit: a page view; then 1–4 batches of 1–5 page events and goals; sometimes (20 %) an
//! outcome, sometimes (10 %) a campaign; then a flush (60 %) or it walks away, leaving the
//! interaction to the idle timeout. With `rate`, requests are paced (open loop) and latency is
//! measured from each request's scheduled time, so a slow server cannot hide its queueing
//! (no coordinated omission).

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use rand::{rngs::SmallRng, Rng, SeedableRng};
use tracker_client::{Client, Event, Visitor};

/// Which endpoints the visits hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub(crate) enum Target {
    /// The tracking API.
    Track,
    /// `/bench/noop/{event,flush}`: the same requests, no tracking work.
    Noop,
}

/// What each virtual visitor does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Scenario {
    /// Realistic visits one after another (a page view, batches, sometimes a flush).
    #[default]
    Visits,
    /// Every request a new visitor's page view: no cookies, a browser's user agent (the
    /// commonest request a tracker gets, and its dearest: a new device, contact and visit).
    NewVisitors,
}

/// One run's shape.
#[derive(Debug, Clone)]
pub(crate) struct LoadConfig {
    pub(crate) url: String,
    pub(crate) target: Target,
    pub(crate) scenario: Scenario,
    pub(crate) visitors: usize,
    pub(crate) duration: Duration,
    /// Requests per second in total, paced; `None`: as fast as answers come.
    pub(crate) rate: Option<f64>,
    pub(crate) seed: u64,
}

/// What one run measured on the client side.
#[derive(Debug, Clone)]
pub(crate) struct LoadResult {
    pub(crate) requests: u64,
    pub(crate) events: u64,
    pub(crate) errors: BTreeMap<String, u64>,
    pub(crate) elapsed: Duration,
    /// Microseconds.
    pub(crate) latency: Histogram<u64>,
}

const PAGE_EVENTS: [&str; 3] = ["Download", "Search", "Video Play"];
const GOALS: [&str; 3] = ["Instant Demo", "Register", "Newsletter Signup"];
const OUTCOMES: [&str; 3] = ["Opportunity", "Marketing Lead", "Purchase"];
const CAMPAIGNS: [&str; 2] = ["Test Campaign", "Spring Sale"];

/// The requests of one visit.
pub(crate) fn plan_visit(rng: &mut SmallRng) -> Vec<Request> {
    let mut requests = Vec::with_capacity(8);
    let page = format!(
        "{{{:08X}-0000-4000-8000-{:012X}}}",
        rng.random_range(0..64u32),
        0
    );
    let url = format!("/products/{}", rng.random_range(0..500u32));
    requests.push(Request::Track(vec![Event::page_view(page, url)]));
    for _ in 0..rng.random_range(1..=4) {
        let size = rng.random_range(1..=5);
        let batch = (0..size)
            .map(|_| {
                if rng.random_bool(0.7) {
                    Event::page_event(PAGE_EVENTS[rng.random_range(0..PAGE_EVENTS.len())])
                } else {
                    Event::goal(GOALS[rng.random_range(0..GOALS.len())])
                }
            })
            .collect();
        requests.push(Request::Track(batch));
    }
    if rng.random_bool(0.2) {
        let value = f64::from(rng.random_range(100..100_000u32)) / 100.0;
        requests.push(Request::Track(vec![Event::outcome(
            OUTCOMES[rng.random_range(0..OUTCOMES.len())],
        )
        .monetary_value(value, "USD")]));
    }
    if rng.random_bool(0.1) {
        requests.push(Request::Track(vec![Event::campaign(
            CAMPAIGNS[rng.random_range(0..CAMPAIGNS.len())],
        )]));
    }
    if rng.random_bool(0.6) {
        requests.push(Request::Flush);
    }
    requests
}

/// One HTTP request of a visit.
#[derive(Debug, Clone)]
pub(crate) enum Request {
    Track(Vec<Event>),
    Flush,
}

/// The virtual visitors' user agent: desktop Chrome.
const BROWSER_USER_AGENT: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
    (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// A client for the target, sized for `visitors` concurrent connections.
pub(crate) fn client(url: &str, target: Target, visitors: usize) -> anyhow::Result<Client> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(visitors)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        // A browser's: the virtual visitors are people, kept and stored (no user agent is a
        // robot's, answered without tracking work).
        .user_agent(BROWSER_USER_AGENT)
        .build()?;
    let prefix = match target {
        Target::Track => "/sitecore/api/jss/track",
        Target::Noop => "/bench/noop",
    };
    Ok(Client::builder(url, crate::server::KEY)
        .service_prefix(prefix)
        .origin("http://localhost:3000")
        .http_client(http)
        .build()?)
}

/// [`run`], owning its configuration (to run several at once).
pub(crate) async fn run_owned(config: LoadConfig) -> anyhow::Result<LoadResult> {
    run(&config).await
}

pub(crate) async fn run(config: &LoadConfig) -> anyhow::Result<LoadResult> {
    let client = client(&config.url, config.target, config.visitors)?;
    let started = Instant::now();
    let deadline = started + config.duration;
    // Each visitor's share of the rate: one request every `period`.
    let period = config
        .rate
        .map(|rate| Duration::from_secs_f64(config.visitors as f64 / rate.max(0.001)));
    let shared = Arc::new(client);
    let mut tasks = Vec::with_capacity(config.visitors);
    for index in 0..config.visitors {
        let client = shared.clone();
        let seed = config.seed.wrapping_add(index as u64);
        // Spread the paced visitors' first requests over one period.
        let offset = period.map_or(Duration::ZERO, |p| {
            p.mul_f64(index as f64 / config.visitors as f64)
        });
        let scenario = config.scenario;
        tasks.push(tokio::spawn(async move {
            let schedule = Schedule {
                next: started + offset,
                deadline,
                period,
            };
            virtual_visitor(&client, seed, scenario, schedule).await
        }));
    }
    let mut result = LoadResult::empty();
    for task in tasks {
        let part = task.await?;
        result.requests += part.requests;
        result.events += part.events;
        for (error, count) in part.errors {
            *result.errors.entry(error).or_default() += count;
        }
        result.latency.add(&part.latency)?;
    }
    result.elapsed = started.elapsed();
    Ok(result)
}

impl LoadResult {
    fn empty() -> Self {
        Self {
            requests: 0,
            events: 0,
            errors: BTreeMap::new(),
            elapsed: Duration::ZERO,
            // Latencies in microseconds, 1 µs to 60 s, 3 significant figures.
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
        }
    }
}

/// When a virtual visitor sends: its next request's time, the end, and its pace (`None`: as
/// fast as it is answered).
struct Schedule {
    next: Instant,
    deadline: Instant,
    period: Option<Duration>,
}

impl Schedule {
    /// The time the next request is due (waiting for it when paced); `None` past the end.
    async fn next(&mut self) -> Option<Instant> {
        let scheduled = match self.period {
            Some(period) => {
                tokio::time::sleep_until(self.next.into()).await;
                let at = self.next;
                self.next += period;
                at
            }
            None => Instant::now(),
        };
        (scheduled < self.deadline).then_some(scheduled)
    }
}

async fn virtual_visitor(
    client: &Client,
    seed: u64,
    scenario: Scenario,
    mut schedule: Schedule,
) -> LoadResult {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut result = LoadResult::empty();
    'visits: loop {
        let visitor: Visitor = client.visitor();
        let requests = match scenario {
            Scenario::Visits => plan_visit(&mut rng),
            Scenario::NewVisitors => plan_visit(&mut rng).into_iter().take(1).collect(),
        };
        for request in requests {
            let Some(scheduled) = schedule.next().await else {
                break 'visits;
            };
            let (outcome, events) = match &request {
                Request::Track(events) => (visitor.track(events).await.map(|_| ()), events.len()),
                Request::Flush => (visitor.flush().await.map(|_| ()), 0),
            };
            result.record(scheduled, outcome, events);
        }
    }
    result
}

impl LoadResult {
    /// Counts one request, scheduled at `scheduled`, that sent `events` events.
    fn record(
        &mut self,
        scheduled: Instant,
        outcome: Result<(), tracker_client::Error>,
        events: usize,
    ) {
        let micros = scheduled.elapsed().as_micros().max(1) as u64;
        self.latency.saturating_record(micros);
        self.requests += 1;
        match outcome {
            Ok(()) => self.events += events as u64,
            Err(error) => {
                let key = match &error {
                    tracker_client::Error::Refused { status, code, .. } => {
                        format!("{status} {code}")
                    }
                    other => other.to_string().chars().take(60).collect(),
                };
                *self.errors.entry(key).or_default() += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visits_start_with_a_page_view_and_send_batches_of_one_to_five() {
        let mut rng = SmallRng::seed_from_u64(3);
        let mut flushed = 0;
        let mut walked_away = 0;
        for _ in 0..500 {
            let visit = plan_visit(&mut rng);
            let Request::Track(first) = &visit[0] else {
                panic!("a visit starts with a page view")
            };
            assert!(first[0].as_json().contains_key("pageId"));
            for request in &visit[1..] {
                if let Request::Track(batch) = request {
                    assert!((1..=5).contains(&batch.len()));
                }
            }
            match visit.last() {
                Some(Request::Flush) => flushed += 1,
                _ => walked_away += 1,
            }
        }
        assert!(
            flushed > 200 && walked_away > 100,
            "{flushed} / {walked_away}"
        );
    }
}
