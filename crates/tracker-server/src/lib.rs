#![doc = include_str!("../README.md")]

pub mod api_keys;
pub mod api_types;
pub mod backends;
pub mod config;
pub mod edge;
pub mod error;
pub mod head_errors;
pub mod metrics;
pub mod rate_limit;
pub mod routes;
pub mod serve;
pub mod sign_in;
pub mod startup;
pub mod state;
pub mod webhook;

pub use config::Settings;
pub use startup::{Application, ApplicationBuilder};

/// The domain crate, re-exported for the binary and extensions.
pub use tracker_core;
/// The tracking engine, re-exported for the binary and extensions.
pub use tracker_engine;
