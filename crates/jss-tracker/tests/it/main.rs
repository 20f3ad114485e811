//! Integration tests of the tracker over a real socket, with a fresh store per test: a SQLite
//! file, or with `JSS_TRACKER_TEST_STORE=postgres` a PostgreSQL schema and Redis sessions.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    missing_docs,
    unreachable_pub
)]

mod helpers;

mod acquisition;
mod admin;
mod bodies;
mod cors_cookies;
mod custom_store;
mod errors;
mod hostile;
mod identify;
mod layout;
mod openapi;
mod personalization;
mod pipeline;
mod privacy;
mod robots;
mod security;
mod sessions;
mod storage;
