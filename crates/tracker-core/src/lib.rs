#![doc = include_str!("../README.md")]

pub mod acquisition;
pub mod body;
pub mod client_info;
pub mod clock;
pub mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod definitions;
pub mod error;
pub mod event;
pub mod ids;
pub mod money;
pub mod pipeline;
pub mod processors;
pub mod robots;
pub mod rollup;
pub mod session;
pub mod store;

pub use error::{Error, EventError};
