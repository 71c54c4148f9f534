//! Storage adapters implementing `chalktalk_actors::store::Store`: the
//! embedded redb adapter (the default, one file, group-committed writes),
//! the conformance suite every adapter must pass and a write benchmark. The
//! key layout mirrors the ScyllaDB schema in `cql/`.

pub mod bench;
pub mod conformance;
pub mod embedded;
pub mod kv;
pub mod media;

pub use embedded::EmbeddedStore;
