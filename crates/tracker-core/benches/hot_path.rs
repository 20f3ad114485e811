//! The tracking hot path without I/O: body parsing (each shape the JSS clients send),
//! definition resolution, the whole of parse + resolve + pipeline for a 5-element batch, and
//! what a visit's first request adds: robot classification and user-agent parsing.
//! Run: `cargo bench -p tracker-core`.

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use chrono::{Duration, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tracker_core::{
    body::{parse_elements, Limits},
    client_info::ClientInfo,
    definitions::{DefinitionKind, Definitions},
    pipeline::{BatchContext, PipelineBuilder},
    robots::RobotRules,
};

const BATCH: &str = r#"[
  {"pageId": "{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}", "url": "/products/42"},
  {"eventId": "Download", "data": "brochure.pdf"},
  {"goalId": "Instant Demo"},
  {"outcomeId": "Opportunity", "currencyCode": "USD", "monetaryValue": 99.95},
  {"campaignId": "Spring Sale"}
]"#;

fn bodies() -> Vec<(&'static str, Vec<u8>)> {
    let wrapper = serde_json::json!({
        "0": {"goalId": "Register"},
        "method": "POST",
        "headers": {"Content-Type": "application/json"},
        "body": BATCH,
    });
    vec![
        ("array of 5", BATCH.as_bytes().to_vec()),
        ("empty array", b"[]".to_vec()),
        ("single object", br#"{"goalId": "Register"}"#.to_vec()),
        (
            "22.5+ request-init wrapper",
            wrapper.to_string().into_bytes(),
        ),
    ]
}

fn parse(c: &mut Criterion) {
    let limits = Limits::default();
    let keys = tracker_core::pipeline::PipelineBuilder::with_defaults()
        .build()
        .event_keys()
        .to_vec();
    let mut group = c.benchmark_group("body parse");
    for (name, body) in bodies() {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| parse_elements(black_box(&body), &limits, &keys).unwrap())
        });
    }
    group.finish();
}

fn resolve(c: &mut Criterion) {
    let definitions = Definitions::defaults();
    let goal = definitions.list(DefinitionKind::Goal)[0].clone();
    let hyphenated = goal.id.to_string();
    let braced = format!("{{{}}}", hyphenated.to_uppercase());
    let mut group = c.benchmark_group("definition resolve");
    group.bench_function("goal by name", |b| {
        b.iter(|| {
            definitions
                .resolve(DefinitionKind::Goal, black_box("instant demo"))
                .unwrap()
        })
    });
    group.bench_function("goal by hyphenated GUID", |b| {
        b.iter(|| {
            definitions
                .resolve(DefinitionKind::Goal, black_box(&hyphenated))
                .unwrap()
        })
    });
    group.bench_function("goal by braced upper-case GUID", |b| {
        b.iter(|| {
            definitions
                .resolve(DefinitionKind::Goal, black_box(&braced))
                .unwrap()
        })
    });
    group.bench_function("eventId naming a goal (fallback)", |b| {
        b.iter(|| {
            definitions
                .resolve(DefinitionKind::PageEvent, black_box("Register"))
                .unwrap()
        })
    });
    group.finish();
}

fn pipeline(c: &mut Criterion) {
    let definitions = Definitions::defaults();
    let limits = Limits::default();
    let pipeline = PipelineBuilder::with_defaults().build();
    let context = BatchContext {
        definitions: &definitions,
        now: Utc::now(),
        max_clock_skew: Duration::minutes(2),
        limits: &limits,
        interaction: None,
        identification: Default::default(),
    };
    let elements = parse_elements(BATCH.as_bytes(), &limits, pipeline.event_keys()).unwrap();
    assert_eq!(pipeline.run(&elements, &context).unwrap().len(), 5);
    let mut group = c.benchmark_group("pipeline, 5-element batch");
    group.throughput(Throughput::Elements(5));
    group.bench_function("pipeline only (parsed elements)", |b| {
        b.iter(|| pipeline.run(black_box(&elements), &context).unwrap())
    });
    group.bench_function("parse + resolve + pipeline", |b| {
        b.iter(|| {
            let elements =
                parse_elements(black_box(BATCH.as_bytes()), &limits, pipeline.event_keys())
                    .unwrap();
            pipeline.run(&elements, &context).unwrap()
        })
    });
    group.finish();
}

/// Once per visit (when its session starts), not per request.
fn visitor(c: &mut Criterion) {
    let rules = RobotRules::new(&[], &[]).unwrap();
    let agents = [
        ("desktop Chrome", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
        ("iPhone Safari", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"),
        ("Googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
    ];
    let mut group = c.benchmark_group("visitor");
    group.throughput(Throughput::Elements(1));
    for (name, ua) in agents {
        group.bench_function(format!("classify {name}"), |b| {
            b.iter(|| black_box(rules.classify(Some(black_box(ua)), None)))
        });
        group.bench_function(format!("parse {name}"), |b| {
            b.iter(|| black_box(ClientInfo::parse(Some(black_box(ua)))))
        });
    }
    group.finish();
}

/// Every request with a device cookie checks its signature; every new visitor gets one.
fn device_ids(c: &mut Criterion) {
    let key = tracker_core::ids::DeviceKey::from_bytes([42; 32]);
    let issued = key.issue();
    let mut group = c.benchmark_group("device id");
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify", |b| {
        b.iter(|| black_box(key.issued(black_box(issued))))
    });
    group.bench_function("issue", |b| b.iter(|| black_box(key.issue())));
    group.finish();
}

criterion_group!(benches, parse, resolve, pipeline, visitor, device_ids);
criterion_main!(benches);
