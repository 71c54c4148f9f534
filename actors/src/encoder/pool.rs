//! The EncoderPool (placeholder being written: see the module docs in
//! `encoder/mod.rs`).

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolConfig;
/// Pool counters.
#[derive(Debug, Clone, Default)]
pub struct PoolStats;
/// Why a job was not accepted.
#[derive(Debug, Clone, thiserror::Error)]
#[error("busy")]
pub struct SubmitError;
/// The pool.
pub struct EncoderPool;
