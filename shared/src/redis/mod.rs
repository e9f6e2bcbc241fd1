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

use std::sync::Arc;

pub use breaker::Breaker;
pub use cache::{Cache, CacheBackend, CacheSpec, Cached, MemoryBackend, RedisBackend, Source};
pub use codec::Codec;
pub use conn::{RedisHandle, RedisUnavailable};
pub use keys::{KeyBuilder, KeyPart};
pub use metrics::NamespaceStats;

use crate::config::Config;

/// How this process uses Redis; reported in `--json` summaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisStatus {
    /// Connected at start.
    Connected,
    /// Turned off by configuration.
    Disabled,
    /// Configured but unreachable at start: in-process cache (local) or fail-open (others).
    Unavailable,
}

/// The cache of this process, and the Redis handle behind it when there is one.
pub struct CacheSetup {
    pub cache: Arc<Cache>,
    pub redis: Option<RedisHandle>,
    pub status: RedisStatus,
}

/// Builds the cache the configuration asks for.
///
/// Redis off → in-process cache. Redis on and reachable → Redis. Unreachable: in `local`,
/// the in-process cache and one warning; elsewhere Redis anyway, failing open behind the
/// breaker until it comes back.
pub async fn connect_cache(cfg: &Config) -> CacheSetup {
    let keys = KeyBuilder::new(&cfg.env);
    let codec = Codec::new(cfg.cache.compress_threshold, cfg.cache.max_value_bytes);
    let memory = |status| CacheSetup {
        cache: Arc::new(Cache::new(
            Arc::new(MemoryBackend::new()),
            codec.clone(),
            keys.clone(),
            cfg.cache.lease,
        )),
        redis: None,
        status,
    };
    if !cfg.redis.enabled || !cfg.redis.features.cache {
        return memory(RedisStatus::Disabled);
    }
    let handle = match RedisHandle::new(cfg) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!("redis not usable ({e}); using the in-process cache");
            return memory(RedisStatus::Unavailable);
        }
    };
    let status = match handle.connect().await {
        Ok(()) => RedisStatus::Connected,
        Err(e) if cfg.redis.fallback_to_memory => {
            tracing::warn!(
                "redis at {} is unreachable ({e}): using an in-process cache, so results are \
                 not shared with other processes or later runs. Start Redis to share them.",
                handle.address()
            );
            return memory(RedisStatus::Unavailable);
        }
        Err(e) => {
            tracing::warn!(
                "redis at {} is unreachable ({e}): caches fail open (compute everything) until it is back",
                handle.address()
            );
            RedisStatus::Unavailable
        }
    };
    let backend = RedisBackend::new(handle.clone(), keys.clone());
    CacheSetup {
        cache: Arc::new(Cache::new(Arc::new(backend), codec, keys, cfg.cache.lease)),
        redis: Some(handle),
        status,
    }
}
