#![doc = include_str!("../README.md")]

mod batcher;
mod client;
mod error;
mod event;

pub use batcher::{BatchConfig, BatchStats, Batcher, QueueFull, RetryPolicy};
pub use client::{Client, ClientBuilder, Tracked, Visitor, DEFAULT_USER_AGENT};
pub use error::Error;
pub use event::Event;
/// The JSON types of the tracker's HTTP API (`tracker-api-types`): what its admin API answers.
pub use tracker_api_types as api;
