//! Redis core: keys, codec, the connection (with circuit breaker), the result cache with
//! single flight and metrics, and health.
//!
//! ## Layout
//! - [`keys`]: the one key builder (`lexpipe:{env}:{namespace}:v{N}:…`).
//! - [`codec`]: versioned, compressed, size-capped envelopes.
//! - [`breaker`]: the circuit breaker that makes a dead Redis cheap.
//! - [`conn`]: the process's one multiplexed connection.
//! - [`metrics`]: per-namespace counters summed across processes.
//! - [`cache`]: `get_or_compute` over Redis or an in-process map.
//! - [`health`]: what `lexpipe health` reports.

pub mod breaker;
pub mod cache;
pub mod codec;
pub mod conn;
pub mod health;
pub mod idempotency;
pub mod keys;
pub mod lock;
pub mod metrics;
pub mod ratelimit;
pub mod state;

pub use breaker::Breaker;
pub use cache::{Cache, CacheBackend, CacheSpec, Cached, MemoryBackend, RedisBackend, Source};
pub use codec::Codec;
pub use conn::{Conn, RedisHandle, RedisUnavailable};
pub use keys::{KeyBuilder, KeyPart};
pub use metrics::NamespaceStats;

/// How this process uses Redis; reported in `--json` summaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisStatus {
    /// Connected at start.
    Connected,
    /// Turned off by configuration.
    Disabled,
    /// Configured but unreachable at start: in-process cache (local) or fail-open (others).
    Unavailable,
}
