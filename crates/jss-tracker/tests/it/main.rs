//! Integration tests of the tracker over a real socket, with a real SQLite file per test.

#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

mod helpers;

mod admin;
mod bodies;
mod cors_cookies;
mod errors;
mod hostile;
mod identify;
mod layout;
mod metrics;
mod openapi;
mod personalization;
mod pipeline;
mod privacy;
mod robots;
mod security;
mod sessions;
mod storage;
