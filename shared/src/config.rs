//! One typed configuration, read once from the environment at start.
//!
//! STUB: the field layout below is the contract other modules use; parsing is being
//! written (see `Config::from_vars`).

use std::time::Duration;

/// Where the pipeline runs; decides defaults (see DESIGN.md "Deployment stages").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentStage {
    /// 1: Textract, OpenAI, ElastiCache with TLS + AUTH.
    Cloud,
    /// 2: PDF text layer plus Textract, OpenAI-compatible LLM, ElastiCache or local Redis.
    Hybrid,
    /// 3: everything on this machine; the default.
    Local,
}

/// A secret value: never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The raw value, for handing to a client library. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Which Redis-backed features are on (each also needs `RedisConfig::enabled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisFeatures {
    pub cache: bool,
    pub locks: bool,
    pub rate_limit: bool,
    pub state: bool,
    pub idempotency: bool,
}

#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `REDIS_URL`; a secret because it may embed a password.
    pub url: Secret,
    /// True for `rediss://`.
    pub tls: bool,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub db: Option<i64>,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    /// `LEXPIPE_REDIS_ENABLED`: the global switch.
    pub enabled: bool,
    pub features: RedisFeatures,
    /// In `local`, an unreachable Redis degrades to the in-process cache (one warning).
    pub fallback_to_memory: bool,
}

#[derive(Debug, Clone)]
pub struct CacheConfig {
    pub ttl_ocr: Duration,
    pub ttl_entities: Duration,
    pub ttl_resolution: Duration,
    pub ttl_llm: Duration,
    /// Single-flight lease: how long one computation may hold a key before others retry.
    pub lease: Duration,
    /// Values larger than this many bytes are zstd-compressed.
    pub compress_threshold: usize,
    /// Values larger than this (after compression) are not cached.
    pub max_value_bytes: usize,
    /// Consecutive Redis failures that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open before one probe is let through.
    pub breaker_cooldown: Duration,
}

#[derive(Debug, Clone)]
pub struct ChunkSettings {
    pub min_chars: usize,
    pub max_chars: usize,
    pub overlap_chars: usize,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub stage: DeploymentStage,
    /// `LEXPIPE_ENV`, e.g. `dev`; part of every Redis key.
    pub env: String,
    pub redis: RedisConfig,
    pub cache: CacheConfig,
    pub chunk: ChunkSettings,
}

/// A setting that is missing or malformed. Names the variable; never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: String,
    pub problem: String,
}

impl Config {
    /// Reads the process environment.
    ///
    /// # Errors
    /// The first missing or malformed setting, naming its variable.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get` (tests pass a map).
    ///
    /// # Errors
    /// The first missing or malformed setting, naming its variable.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let _ = get;
        unimplemented!("config parsing is being written")
    }

    /// `lexpipe:{env}:`, the prefix of every Redis key.
    pub fn key_prefix(&self) -> String {
        format!("lexpipe:{}:", self.env)
    }
}
