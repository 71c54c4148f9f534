//! The conformance suites every adapter of a port must pass: the room,
//! thread and inbox [`store`] (and the [`members`] of room threads), the [`media`] store, the [`kv`] records, the
//! [`blob`] store, and [`races`] between two handles on one shared store.
//! Built for this crate's tests and, with feature `conformance`, for the
//! suites other crates run against real servers.

pub mod billing;
pub mod blob;
pub mod copy;
pub mod copy_records;
pub mod fence;
pub mod kv;
pub mod lease;
pub mod media;
pub mod members;
pub mod programs;
pub mod races;
pub mod revenue;
pub mod store;
