//! The admin API's JSON types: the `tracker-api-types` crate's, shared with the Rust client and
//! the tests. The Experience Profile's pages render these same types.

pub use tracker_api_types::*;
