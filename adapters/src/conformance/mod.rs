//! The conformance suites every adapter of a port must pass: the room,
//! thread and inbox [`store`], the [`media`] store and the [`blob`] store.
//! Built for this crate's tests and, with feature `conformance`, for the
//! suites other crates run against real servers.

pub mod blob;
pub mod media;
pub mod store;
