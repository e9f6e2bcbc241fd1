//! One typed configuration, read once from the environment at start.
//!
//! Every setting lexpipe reads lives here so that a missing or malformed value stops the
//! process at start-up with an error naming the variable, instead of surfacing later as a
//! confusing Redis, database or chunking failure. Secrets (`REDIS_URL`, `REDIS_PASSWORD`,
//! `DATABASE_URL`, `OPENAI_API_KEY`) are held in [`Secret`] and never appear in `Debug`
//! output, error messages or [`Config::describe`].
//!
//! ## Variables
//!
//! Empty values count as unset (so the default applies), except `LEXPIPE_ENV`, where an
//! empty value is an error rather than a silent switch to another key namespace.
//! Non-secret values are trimmed. Booleans accept `true`/`false`, `1`/`0`, `yes`/`no`,
//! `on`/`off`, in any case.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `LEXPIPE_STAGE` | `local` | deployment stage: `cloud`, `hybrid` or `local` (or `1`, `2`, `3`); decides the defaults below |
//! | `LEXPIPE_ENV` | `dev` | environment name, part of every Redis key (`lexpipe:{env}:`); `dev`, `staging`, `prod`, or any `[a-z0-9][a-z0-9_-]{0,47}` (tests use unique names) |
//! | `REDIS_URL` | `redis://127.0.0.1:6379` in `local` and `hybrid`; **required** in `cloud` | Redis server; `rediss://` turns TLS on, and `cloud` requires it; an optional path `/N` selects database N |
//! | `LEXPIPE_REDIS_CLUSTER` | `false` | Redis Cluster mode (ElastiCache cluster mode enabled): the client follows `MOVED`/`ASK` and the topology itself; `REDIS_URL` is then one node or the configuration endpoint, or several seed nodes separated by commas (all `redis://` or all `rediss://`); `REDIS_DB` and a `/N` path are refused (a cluster has database 0 only) |
//! | `REDIS_USERNAME` | none | Redis ACL user; overrides a user given in `REDIS_URL` |
//! | `REDIS_PASSWORD` | none | Redis password (secret); overrides a password given in `REDIS_URL` |
//! | `REDIS_DB` | none (the URL's `/N`, else 0) | Redis database number, ≥ 0; overrides the URL's path |
//! | `REDIS_TLS_CA_FILE` | none (system and webpki roots) | PEM CA certificates to trust for `rediss://` (private CA); only with a `rediss://` URL |
//! | `REDIS_CONNECT_TIMEOUT_MS` | `1000` | connection timeout, ≥ 1 ms |
//! | `REDIS_RESPONSE_TIMEOUT_MS` | `500` | per-command response timeout, ≥ 1 ms |
//! | `LEXPIPE_REDIS_ENABLED` | `true` | global Redis switch; `false` turns every feature below off; not allowed in `cloud` (locks and idempotency need Redis) |
//! | `LEXPIPE_REDIS_CACHE` | `true` | cache OCR, LLM, entity and resolution results in Redis |
//! | `LEXPIPE_REDIS_LOCKS` | `true` | distributed locks on queue items |
//! | `LEXPIPE_REDIS_RATE_LIMIT` | `true` | shared rate limits on paid APIs |
//! | `LEXPIPE_REDIS_STATE` | `true` | per-document progress, so failed runs resume |
//! | `LEXPIPE_REDIS_IDEMPOTENCY` | `true` | idempotency keys, so retries never repeat work |
//! | `LEXPIPE_CACHE_TTL_OCR_SECS` | `2592000` (30 days) | lifetime of cached OCR results, ≥ 1 s; of every document kind without its own setting below |
//! | `LEXPIPE_CACHE_TTL_OCR_FILING_SECS`, `…_CONTRACT_SECS`, `…_EXHIBIT_SECS` | `LEXPIPE_CACHE_TTL_OCR_SECS` | lifetime of the cached OCR results of court filings (pleadings, motions, orders, briefs, transcripts, anything with an ECF stamp), contracts (agreements, leases, NDAs) and exhibits, as the text tells (`extract::doctype`), ≥ 1 s |
//! | `LEXPIPE_CACHE_TTL_ENTITIES_SECS` | `604800` (7 days) | lifetime of cached chunk entities, ≥ 1 s |
//! | `LEXPIPE_CACHE_TTL_RESOLUTION_SECS` | `604800` (7 days) | lifetime of cached entity resolutions, ≥ 1 s |
//! | `LEXPIPE_CACHE_TTL_LLM_SECS` | `604800` (7 days) | lifetime of cached LLM responses, ≥ 1 s |
//! | `LEXPIPE_CACHE_LEASE_MS` | `30000` | single-flight lease: how long one computation may hold a key, ≥ 1 ms |
//! | `LEXPIPE_CACHE_COMPRESS_BYTES` | `4096` | values larger than this are zstd-compressed (0 compresses everything); below ~4 KiB decompressing costs a cache hit more than the bytes saved (`lexpipe bench cache`) |
//! | `LEXPIPE_CACHE_MAX_VALUE_BYTES` | `8388608` (8 MiB) | values larger than this after compression are not cached, ≥ 1 |
//! | `LEXPIPE_BREAKER_FAILURES` | `3` | consecutive Redis failures that open the circuit breaker, ≥ 1 |
//! | `LEXPIPE_BREAKER_COOLDOWN_MS` | `15000` | how long the open breaker waits before one probe, ≥ 1 ms |
//! | `LEXPIPE_CHUNK_MIN_CHARS` | `400` | smallest chunk, at most `LEXPIPE_CHUNK_MAX_CHARS` |
//! | `LEXPIPE_CHUNK_MAX_CHARS` | `2000` | largest chunk, ≥ 1 |
//! | `LEXPIPE_CHUNK_OVERLAP_CHARS` | `200` | characters shared by neighbouring chunks, less than half of `LEXPIPE_CHUNK_MAX_CHARS` |
//! | `LEXPIPE_ARTEFACTS` | the command's choice: `lexpipe process` uses its output folder, or the input bucket for `s3://` input | where step artefacts (`processed/{sha256}/…`) are written: a folder or `s3://bucket/prefix` |
//! | `DATABASE_URL` | none (no database: results go to JSON files) | PostgreSQL, `postgres://` or `postgresql://`; a secret, never shown in errors or logs; its `sslmode` is honoured as given |
//! | `LEXPIPE_AUTO_MIGRATE` | `false` | apply pending migrations at start (`store::db::open`); off by default so that a deploy never changes a shared schema by surprise |
//! | `DATABASE_MAX_CONNECTIONS` | `10` | connections in the pool, ≥ 1 |
//! | `LEXPIPE_RL_TEXTRACT_START_PER_SEC` | `15` | Textract `StartDocumentTextDetection` calls per second, shared by every worker, ≥ 1 |
//! | `LEXPIPE_RL_TEXTRACT_GET_PER_SEC` | `25` | Textract `GetDocumentTextDetection` calls per second, ≥ 1 |
//! | `LEXPIPE_RL_LLM_REQUESTS_PER_MIN` | `500` | LLM requests per minute, ≥ 1 |
//! | `LEXPIPE_RL_LLM_TOKENS_PER_MIN` | `200000` | LLM tokens (prompt + completion) per minute, ≥ 1 |
//! | `LEXPIPE_RL_LOCAL_SHARE` | `0.25` | share of each limit one process allows itself while Redis is unreachable, `0 < x ≤ 1` |
//! | `LEXPIPE_RL_MAX_WAIT_MS` | `30000` | how long a call waits for a rate-limit grant before failing, ≥ 0 ms |
//! | `LEXPIPE_IDEMPOTENCY_TTL_SECS` | `86400` (24 h) | how long an idempotency record (and so a completed result) is kept, 1 s to 366 days |
//! | `LEXPIPE_IDEMPOTENCY_IN_PROGRESS_SECS` | `900` (15 min) | how long a caller that passes no deadline owns an `IN_PROGRESS` record before another may take over; at most `LEXPIPE_IDEMPOTENCY_TTL_SECS` |
//! | `LEXPIPE_STATE_TTL_SECS` | `2592000` (30 days) | lifetime of per-document state in Redis, refreshed on each write, 1 s to 10 years |
//! | `REDIS_PASSWORD_SECRET_ID`, `DATABASE_URL_SECRET_ID`, `OPENAI_API_KEY_SECRET_ID` | none | a Secrets Manager secret holding that setting, read at cold start through the Lambda Parameters and Secrets extension (`config::secrets`); the variable itself, when set, wins |
//! | `PARAMETERS_SECRETS_EXTENSION_HTTP_PORT` | `2773` | port of that extension (set by its layer) |
//! | `LEXPIPE_PRICE_TEXTRACT_PER_PAGE` | `0.0015` | dollars per page sent to Textract text detection, for the cost ledger |
//! | `LEXPIPE_PRICE_LLM_INPUT_PER_MTOK` | `0.15` | dollars per million LLM prompt tokens |
//! | `LEXPIPE_PRICE_LLM_OUTPUT_PER_MTOK` | `0.60` | dollars per million LLM completion tokens |
//! | `LEXPIPE_OCR_ENGINE` | `auto` | engine for pages whose text layer is not their content: `auto` (Textract in `cloud`, and in `hybrid` when `LEXPIPE_ARTEFACTS` is S3; Tesseract otherwise), `tesseract`, `textract` or `none` |
//! | `LEXPIPE_TESSERACT` | `tesseract` | the Tesseract command (Debian `tesseract-ocr` + `tesseract-ocr-eng`) |
//! | `LEXPIPE_PDFTOPPM` | `pdftoppm` | the page renderer (Debian `poppler-utils`) |
//! | `LEXPIPE_OCR_DPI` | `300` | rendering resolution for Tesseract, 72 to 1200 |
//! | `LEXPIPE_OCR_LANG` | `eng` | Tesseract languages, e.g. `eng+fra` |
//! | `LEXPIPE_TEXTRACT_POLL_SECS` | `5` | wait between polls of a Textract job, and lifetime of a running job's cached status, 1 to 3600 s |
//! | `LEXPIPE_TEXTRACT_STATUS_TTL_SECS` | `21600` (6 h) | lifetime of a finished Textract job's cached status, ≥ 1 s |
//! | `LEXPIPE_LLM_BASE_URL` | none (no LLM) | OpenAI-compatible endpoint up to `/chat/completions`, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8080/v1` (vLLM, Ollama, llama.cpp); never shown in errors |
//! | `OPENAI_API_KEY` | none (no `Authorization` header) | bearer token of the endpoint (secret: never logged, never in a cache key, value or error) |
//! | `LEXPIPE_LLM_MODEL` | `gpt-4o-mini` | model name sent with every request; part of every LLM cache key |
//! | `LEXPIPE_LLM_TEMPERATURE` | `0` | sampling temperature, 0 to 2, sent explicitly; part of the LLM cache key |
//! | `LEXPIPE_LLM_TOP_P` | not sent | nucleus sampling, `0 < x ≤ 1`; part of the LLM cache key |
//! | `LEXPIPE_LLM_SEED` | not sent | sampling seed; part of the LLM cache key |
//! | `LEXPIPE_LLM_MAX_TOKENS` | `2048` | completion tokens per request, ≥ 1; part of the LLM cache key |
//! | `LEXPIPE_LLM_TIMEOUT_MS` | `60000` | one request, connect to last byte, ≥ 1 ms; a timeout is retried |
//! | `LEXPIPE_LLM_MAX_RETRIES` | `3` | retries after a 5xx, a timeout or a 429, 0 to 10 |
//! | `LEXPIPE_LLM_RETRY_BASE_MS` | `500` | first backoff before a retry, doubled each time, with full jitter, ≥ 1 ms |
//! | `LEXPIPE_LLM_ADJUDICATE` | `false` | ask the LLM whether PERSON/ORG entities with close names (Jaro-Winkler ≥ 0.88) that the rules kept apart are one; needs the base URL; part of the resolution cache key |
//! | `LEXPIPE_EXTRACTOR` | `llm` when `LEXPIPE_LLM_BASE_URL` is set, else `rules` | entity and structured extraction: `rules` (offline), `llm`, or `both` (mentions merged); `llm`/`both` need the base URL |
//! | `LEXPIPE_STATE_MACHINE_ARN` | none; **required** by the `ingest` function | the state machine `ingest` starts one execution of per document |
//! | `LEXPIPE_EXECUTION_LEASE_SECS` | `21600` (6 h) | how long an execution started by `ingest` owns the document's queue row, 1 s to 1 year |
//! | `LEXPIPE_HEALTH_STUCK_AFTER_SECS` | `3600` | `health` reports documents `running` for longer than this, ≥ 1 s |
//! | `LEXPIPE_UPLOAD_PREFIX` | none (every key) | `ingest` takes only keys under this prefix, e.g. `uploads/` |
//! | `LEXPIPE_METRICS_NAMESPACE` | `lexpipe` | CloudWatch namespace of the embedded-metric-format lines the functions print |
//!
//! `fallback_to_memory` is not a variable: it is on only in `local`, where an unreachable
//! Redis degrades to an in-process cache with one clear warning.
//!
//! ## Layout
//!
//! This file holds [`Config`], the stage, Redis, cache, chunk and artefact settings, and
//! the parsing rules ([`ConfigError`], the private `Vars`). The settings of the adapters
//! that have their own knobs live in submodules, one per adapter, and are re-exported
//! here: [`DatabaseConfig`] (`database.rs`), [`RateLimitConfig`] with [`Limit`] and
//! [`LocalShare`] (`rate_limit.rs`), [`IdempotencyConfig`] (`idempotency.rs`),
//! [`StateConfig`] (`state.rs`), [`PriceConfig`] (`prices.rs`) and [`LlmConfig`]
//! (`llm.rs`). Configuration depends on no adapter: the adapters
//! (`store::db`, `redis::ratelimit`, `redis::idempotency`, `redis::state`) take these
//! types and re-export them for their callers.

use std::fmt;
use std::time::Duration;

use url::Url;

mod cloud;
mod database;
mod idempotency;
mod llm;
mod ocr;
mod prices;
mod rate_limit;
pub mod secrets;
mod state;

pub use cloud::CloudConfig;
pub use database::DatabaseConfig;
pub use idempotency::IdempotencyConfig;
pub use llm::{DEFAULT_MODEL, ExtractorChoice, LlmConfig};
pub use ocr::{OcrConfig, OcrEngineChoice};
pub use prices::PriceConfig;
pub use rate_limit::{Limit, LocalShare, RateLimitConfig};
pub use state::StateConfig;

const STAGE: &str = "LEXPIPE_STAGE";
const ENV: &str = "LEXPIPE_ENV";
const REDIS_URL: &str = "REDIS_URL";
const REDIS_USERNAME: &str = "REDIS_USERNAME";
const REDIS_PASSWORD: &str = "REDIS_PASSWORD";
const REDIS_CLUSTER: &str = "LEXPIPE_REDIS_CLUSTER";
const REDIS_DB: &str = "REDIS_DB";
const REDIS_TLS_CA_FILE: &str = "REDIS_TLS_CA_FILE";
const REDIS_CONNECT_TIMEOUT_MS: &str = "REDIS_CONNECT_TIMEOUT_MS";
const REDIS_RESPONSE_TIMEOUT_MS: &str = "REDIS_RESPONSE_TIMEOUT_MS";
const REDIS_ENABLED: &str = "LEXPIPE_REDIS_ENABLED";
const REDIS_CACHE: &str = "LEXPIPE_REDIS_CACHE";
const REDIS_LOCKS: &str = "LEXPIPE_REDIS_LOCKS";
const REDIS_RATE_LIMIT: &str = "LEXPIPE_REDIS_RATE_LIMIT";
const REDIS_STATE: &str = "LEXPIPE_REDIS_STATE";
const REDIS_IDEMPOTENCY: &str = "LEXPIPE_REDIS_IDEMPOTENCY";
const CACHE_TTL_OCR_SECS: &str = "LEXPIPE_CACHE_TTL_OCR_SECS";
const CACHE_TTL_OCR_FILING_SECS: &str = "LEXPIPE_CACHE_TTL_OCR_FILING_SECS";
const CACHE_TTL_OCR_CONTRACT_SECS: &str = "LEXPIPE_CACHE_TTL_OCR_CONTRACT_SECS";
const CACHE_TTL_OCR_EXHIBIT_SECS: &str = "LEXPIPE_CACHE_TTL_OCR_EXHIBIT_SECS";
const CACHE_TTL_ENTITIES_SECS: &str = "LEXPIPE_CACHE_TTL_ENTITIES_SECS";
const CACHE_TTL_RESOLUTION_SECS: &str = "LEXPIPE_CACHE_TTL_RESOLUTION_SECS";
const CACHE_TTL_LLM_SECS: &str = "LEXPIPE_CACHE_TTL_LLM_SECS";
const CACHE_LEASE_MS: &str = "LEXPIPE_CACHE_LEASE_MS";
const CACHE_COMPRESS_BYTES: &str = "LEXPIPE_CACHE_COMPRESS_BYTES";
const CACHE_MAX_VALUE_BYTES: &str = "LEXPIPE_CACHE_MAX_VALUE_BYTES";
const BREAKER_FAILURES: &str = "LEXPIPE_BREAKER_FAILURES";
const BREAKER_COOLDOWN_MS: &str = "LEXPIPE_BREAKER_COOLDOWN_MS";
const CHUNK_MIN_CHARS: &str = "LEXPIPE_CHUNK_MIN_CHARS";
const CHUNK_MAX_CHARS: &str = "LEXPIPE_CHUNK_MAX_CHARS";
const CHUNK_OVERLAP_CHARS: &str = "LEXPIPE_CHUNK_OVERLAP_CHARS";
const ARTEFACTS: &str = "LEXPIPE_ARTEFACTS";

const DEFAULT_ENV: &str = "dev";
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
const MAX_ENV_LEN: usize = 48;
const DAY_SECS: u64 = 24 * 60 * 60;
const CLOUD_NEEDS_TLS: &str = "cloud stage requires TLS: use rediss://";

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

impl DeploymentStage {
    /// The lower-case name accepted by `LEXPIPE_STAGE`, for logs and key-free labels.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStage::Cloud => "cloud",
            DeploymentStage::Hybrid => "hybrid",
            DeploymentStage::Local => "local",
        }
    }

    /// Reads a stage name or number, trimmed and case-insensitive.
    fn parse(value: &str) -> Option<DeploymentStage> {
        match value.trim().to_ascii_lowercase().as_str() {
            "cloud" | "1" => Some(DeploymentStage::Cloud),
            "hybrid" | "2" => Some(DeploymentStage::Hybrid),
            "local" | "3" => Some(DeploymentStage::Local),
            _ => None,
        }
    }
}

impl fmt::Display for DeploymentStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A secret value: never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value that must never reach a log line.
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
///
/// Separate switches exist so that one misbehaving feature can be turned off in an
/// incident without losing the others. When `LEXPIPE_REDIS_ENABLED` is false every field
/// reads as false, so callers need only check the feature they use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisFeatures {
    /// `LEXPIPE_REDIS_CACHE`: result caches (OCR, LLM, entities, resolution).
    pub cache: bool,
    /// `LEXPIPE_REDIS_LOCKS`: distributed locks on queue items.
    pub locks: bool,
    /// `LEXPIPE_REDIS_RATE_LIMIT`: rate limits shared by every worker.
    pub rate_limit: bool,
    /// `LEXPIPE_REDIS_STATE`: per-document progress.
    pub state: bool,
    /// `LEXPIPE_REDIS_IDEMPOTENCY`: idempotency keys.
    pub idempotency: bool,
}

impl RedisFeatures {
    /// The names of the features that are off, for the start-up summary.
    fn names_off(&self) -> Vec<&'static str> {
        [
            ("cache", self.cache),
            ("locks", self.locks),
            ("rate_limit", self.rate_limit),
            ("state", self.state),
            ("idempotency", self.idempotency),
        ]
        .into_iter()
        .filter(|(_, on)| !on)
        .map(|(name, _)| name)
        .collect()
    }
}

/// How to reach Redis and what to use it for; built once and lent to every adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `REDIS_URL`; a secret because it may embed a password.
    pub url: Secret,
    /// `LEXPIPE_REDIS_CLUSTER`: Redis Cluster mode; `url` may then hold several seed nodes
    /// separated by commas ([`RedisConfig::seed_urls`]).
    pub cluster: bool,
    /// True for `rediss://`.
    pub tls: bool,
    /// `REDIS_TLS_CA_FILE`: a PEM file of CA certificates to trust instead of the system's
    /// (a private CA, or a test server); `None` uses the platform and webpki roots.
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// `REDIS_USERNAME`, which overrides a user in the URL; `None` when unset.
    pub username: Option<String>,
    /// `REDIS_PASSWORD`, which overrides a password in the URL; `None` when unset.
    pub password: Option<Secret>,
    /// `REDIS_DB`, which overrides the URL's `/N`; `None` when unset.
    pub db: Option<i64>,
    /// `REDIS_CONNECT_TIMEOUT_MS`.
    pub connect_timeout: Duration,
    /// `REDIS_RESPONSE_TIMEOUT_MS`.
    pub response_timeout: Duration,
    /// `LEXPIPE_REDIS_ENABLED`: the global switch.
    pub enabled: bool,
    /// Per-feature switches, already combined with `enabled`.
    pub features: RedisFeatures,
    /// In `local`, an unreachable Redis degrades to the in-process cache (one warning).
    pub fallback_to_memory: bool,
}

impl RedisConfig {
    /// The URLs in `REDIS_URL`: one in standalone mode, one or more seed nodes in cluster
    /// mode (the client discovers the rest of the cluster from any of them).
    pub fn seed_urls(&self) -> Vec<&str> {
        if self.cluster {
            self.url.expose().split(',').map(str::trim).collect()
        } else {
            vec![self.url.expose()]
        }
    }
}

/// Lifetimes and limits of cached values, and the circuit breaker that keeps a dead
/// Redis cheap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// `LEXPIPE_CACHE_TTL_OCR_SECS`: OCR results of documents of no known kind.
    pub ttl_ocr: Duration,
    /// `LEXPIPE_CACHE_TTL_OCR_FILING_SECS` (default `ttl_ocr`): OCR results of court
    /// filings.
    pub ttl_ocr_filing: Duration,
    /// `LEXPIPE_CACHE_TTL_OCR_CONTRACT_SECS` (default `ttl_ocr`): of contracts.
    pub ttl_ocr_contract: Duration,
    /// `LEXPIPE_CACHE_TTL_OCR_EXHIBIT_SECS` (default `ttl_ocr`): of exhibits.
    pub ttl_ocr_exhibit: Duration,
    /// `LEXPIPE_CACHE_TTL_ENTITIES_SECS`.
    pub ttl_entities: Duration,
    /// `LEXPIPE_CACHE_TTL_RESOLUTION_SECS`.
    pub ttl_resolution: Duration,
    /// `LEXPIPE_CACHE_TTL_LLM_SECS`.
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

/// Size limits of the chunker, in characters (Unicode scalar values); validated together
/// at start so the chunker can trust them.
///
/// The defaults (400 / 2000 / 200) keep a chunk around a page of a contract: large enough
/// for an extractor to see a clause with its context, small enough for a cheap LLM call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkConfig {
    /// `LEXPIPE_CHUNK_MIN_CHARS`: a heading starts a new chunk only once the current one
    /// has this much new text, and a shorter last chunk is merged into the one before it.
    /// Never above `max_chars`.
    pub min_chars: usize,
    /// `LEXPIPE_CHUNK_MAX_CHARS`: upper bound on a chunk's length, overlap included (see
    /// [`crate::chunk`] for the one exception, the merged short tail); at least 1.
    pub max_chars: usize,
    /// `LEXPIPE_CHUNK_OVERLAP_CHARS`: how far each chunk reaches back into the previous
    /// one, so an entity cut by a chunk boundary is still seen whole by one extractor
    /// call; always less than half of `max_chars`.
    pub overlap_chars: usize,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        ChunkConfig {
            min_chars: 400,
            max_chars: 2000,
            overlap_chars: 200,
        }
    }
}

/// Where durable artefacts and input documents live, as written in `LEXPIPE_ARTEFACTS` or
/// on the command line: `s3://bucket/prefix` or a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobLocation {
    /// A folder on this machine.
    Folder(std::path::PathBuf),
    /// A bucket and a key prefix (empty, or without leading and trailing `/`).
    S3 { bucket: String, prefix: String },
}

impl BlobLocation {
    /// Reads `s3://bucket[/prefix]` or a folder path.
    ///
    /// # Errors
    /// An empty value, or an `s3://` location without a bucket name.
    pub fn parse(s: &str) -> Result<BlobLocation, String> {
        match s.strip_prefix("s3://") {
            Some(rest) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(format!(
                        "{} names no bucket (expected s3://bucket/prefix)",
                        quoted(s)
                    ));
                }
                Ok(BlobLocation::S3 {
                    bucket: bucket.to_string(),
                    prefix: prefix.trim_matches('/').to_string(),
                })
            }
            None if s.trim().is_empty() => Err("empty location".into()),
            None => Ok(BlobLocation::Folder(std::path::PathBuf::from(s))),
        }
    }

    /// The `s3://…` form or the path.
    pub fn display(&self) -> String {
        match self {
            BlobLocation::Folder(p) => p.display().to_string(),
            BlobLocation::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}"),
            BlobLocation::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        }
    }
}

/// Every setting of a lexpipe process, read once at start (see the module docs for the
/// variables) and passed to whatever needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `LEXPIPE_STAGE`.
    pub stage: DeploymentStage,
    /// `LEXPIPE_ENV`, e.g. `dev`; part of every Redis key.
    pub env: String,
    /// Redis connection and feature switches.
    pub redis: RedisConfig,
    /// Cache lifetimes, limits and circuit breaker.
    pub cache: CacheConfig,
    /// Chunk sizes.
    pub chunk: ChunkConfig,
    /// `LEXPIPE_ARTEFACTS`: where step artefacts go; `None` lets the command choose (its
    /// output folder, or the input bucket).
    pub artefacts: Option<BlobLocation>,
    /// PostgreSQL (`DATABASE_URL`, …); without a URL, results go to JSON files.
    pub database: DatabaseConfig,
    /// Limits of the paid APIs, shared by every worker (`LEXPIPE_RL_*`).
    pub rate_limit: RateLimitConfig,
    /// Idempotency records (`LEXPIPE_IDEMPOTENCY_*`).
    pub idempotency: IdempotencyConfig,
    /// Document state (`LEXPIPE_STATE_TTL_SECS`).
    pub state: StateConfig,
    /// Prices of the paid APIs (`LEXPIPE_PRICE_*`), for the cost ledger.
    pub prices: PriceConfig,
    /// Image OCR: engine, tools, Textract polling (`LEXPIPE_OCR_*`, `LEXPIPE_TEXTRACT_*`).
    pub ocr: OcrConfig,
    /// The LLM endpoint and the extractor choice (`LEXPIPE_LLM_*`, `OPENAI_API_KEY`,
    /// `LEXPIPE_EXTRACTOR`).
    pub llm: LlmConfig,
    /// The AWS shape: state machine, execution lease, health threshold, metrics.
    pub cloud: CloudConfig,
}

/// A setting that is missing or malformed. Names the variable; never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: String,
    /// What is wrong with it, and what would be accepted.
    pub problem: String,
}

impl ConfigError {
    pub fn new(var: &str, problem: impl Into<String>) -> Self {
        ConfigError {
            var: var.to_owned(),
            problem: problem.into(),
        }
    }
}

impl Config {
    /// Reads the process environment.
    ///
    /// A value that is not valid Unicode is read lossily, so it fails validation naming
    /// its variable instead of silently counting as unset.
    ///
    /// # Errors
    /// The first missing or malformed setting, naming its variable.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(|k| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned()))
    }

    /// Reads settings through `get` (tests pass a map), so parsing is testable without
    /// touching the process environment.
    ///
    /// # Errors
    /// The first missing or malformed setting, naming its variable. The error never
    /// contains the value of `REDIS_URL` or `REDIS_PASSWORD`.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let vars = Vars::new(get);
        let stage = match vars.trimmed(STAGE) {
            None => DeploymentStage::Local,
            Some(v) => DeploymentStage::parse(&v).ok_or_else(|| {
                ConfigError::new(
                    STAGE,
                    format!(
                        "expected cloud, hybrid or local (or 1, 2, 3), got {}",
                        quoted(&v)
                    ),
                )
            })?,
        };
        let env = read_env(&vars)?;
        let redis = read_redis(&vars, stage)?;
        let cache = read_cache(&vars)?;
        let chunk = read_chunk(&vars)?;
        let artefacts = match vars.trimmed(ARTEFACTS) {
            None => None,
            Some(v) => Some(
                BlobLocation::parse(&v).map_err(|problem| ConfigError::new(ARTEFACTS, problem))?,
            ),
        };
        let database = DatabaseConfig::from_vars(&vars.get)?;
        let rate_limit = RateLimitConfig::from_vars(&vars.get)?;
        let idempotency = IdempotencyConfig::from_vars(&vars.get)?;
        let state = StateConfig::from_vars(&vars.get)?;
        let prices = PriceConfig::from_vars(&vars.get)?;
        let ocr = OcrConfig::from_vars(&vars.get)?;
        let llm = LlmConfig::from_vars(&vars.get)?;
        let cloud = CloudConfig::from_vars(&vars.get)?;
        Ok(Config {
            stage,
            env,
            redis,
            cache,
            chunk,
            artefacts,
            database,
            rate_limit,
            idempotency,
            state,
            prices,
            ocr,
            llm,
            cloud,
        })
    }

    /// The settings of the `local` stage with nothing configured: the same as
    /// `from_vars(|_| None)`, without a `Result`, for tests and benches.
    pub fn local_defaults() -> Config {
        match Config::from_vars(|_| None) {
            Ok(config) => config,
            // The unit test `local_defaults_match_an_empty_environment` proves this arm
            // unreachable; it fails loudly if someone makes a default invalid.
            Err(e) => panic!("the built-in defaults are invalid: {e}"),
        }
    }

    /// `lexpipe:{env}:`, the prefix of every Redis key.
    pub fn key_prefix(&self) -> String {
        format!("lexpipe:{}:", self.env)
    }

    /// A one-line summary for the start-up log, free of secrets, e.g.
    /// `stage=local env=dev redis=redis://127.0.0.1:6379 (tls=false, enabled=true)`.
    ///
    /// Credentials (from the URL, `REDIS_USERNAME` or `REDIS_PASSWORD`) show as `***`;
    /// the URL's query is left out. Features switched off are listed as `off=...`.
    pub fn describe(&self) -> String {
        let redis = &self.redis;
        let mut line = format!(
            "stage={} env={} redis={} (tls={}, enabled={}",
            self.stage,
            self.env,
            redacted_url(redis),
            redis.tls,
            redis.enabled
        );
        let off = redis.features.names_off();
        if redis.enabled && !off.is_empty() {
            line.push_str(", off=");
            line.push_str(&off.join(","));
        }
        line.push(')');
        line
    }
}

/// Looks variables up, treating empty values as unset, so that every setting (this file's
/// and the submodules') is parsed with the same rules and messages: every error names its
/// variable and quotes the value (never a secret's). Private to this module tree: a new
/// setting belongs here, not in the adapter that uses it.
struct Vars<F> {
    get: F,
}

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    /// Reads through `get` (the process environment, or a map in tests).
    pub fn new(get: F) -> Vars<F> {
        Vars { get }
    }

    /// The value exactly as set; `None` when unset or empty. For secrets, which are not
    /// trimmed because spaces may belong to them.
    pub fn raw(&self, var: &str) -> Option<String> {
        (self.get)(var).filter(|v| !v.is_empty())
    }

    /// The value trimmed; `None` when unset, empty or only blanks.
    pub fn trimmed(&self, var: &str) -> Option<String> {
        self.raw(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A boolean: true/false, 1/0, yes/no, on/off in any case.
    ///
    /// # Errors
    /// Anything else, naming `var`.
    pub fn flag(&self, var: &str, default: bool) -> Result<bool, ConfigError> {
        let Some(value) = self.trimmed(var) else {
            return Ok(default);
        };
        match value.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(ConfigError::new(
                var,
                format!(
                    "expected true/false, 1/0, yes/no or on/off, got {}",
                    quoted(&value)
                ),
            )),
        }
    }

    /// A whole number (described as `what` in errors), at least `min`, that fits in `T`.
    ///
    /// # Errors
    /// Not a number, below `min`, or too large for `T`, naming `var`.
    pub fn whole<T: TryFrom<u64>>(
        &self,
        var: &str,
        default: T,
        min: u64,
        what: &str,
    ) -> Result<T, ConfigError> {
        self.whole_in(var, default, min..=u64::MAX, what)
    }

    /// A whole number within `range` that fits in `T`.
    ///
    /// # Errors
    /// Not a number, out of `range`, or too large for `T`, naming `var`.
    pub fn whole_in<T: TryFrom<u64>>(
        &self,
        var: &str,
        default: T,
        range: std::ops::RangeInclusive<u64>,
        what: &str,
    ) -> Result<T, ConfigError> {
        let Some(value) = self.trimmed(var) else {
            return Ok(default);
        };
        let expected = match (*range.start(), *range.end()) {
            (0, u64::MAX) => format!("{what}, 0 or more"),
            (min, u64::MAX) => format!("{what}, at least {min}"),
            (min, max) => format!("{what} from {min} to {max}"),
        };
        value
            .parse::<u64>()
            .ok()
            .filter(|n| range.contains(n))
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| {
                ConfigError::new(var, format!("expected {expected}, got {}", quoted(&value)))
            })
    }

    /// Milliseconds, at least 1.
    ///
    /// # Errors
    /// As [`Vars::whole`].
    pub fn millis(&self, var: &str, default_ms: u64) -> Result<Duration, ConfigError> {
        self.whole(var, default_ms, 1, "a whole number of milliseconds")
            .map(Duration::from_millis)
    }

    /// Seconds, at least 1.
    ///
    /// # Errors
    /// As [`Vars::whole`].
    pub fn secs(&self, var: &str, default_secs: u64) -> Result<Duration, ConfigError> {
        self.secs_in(var, default_secs, u64::MAX)
    }

    /// Seconds, from 1 to `max_secs`.
    ///
    /// # Errors
    /// As [`Vars::whole_in`].
    pub fn secs_in(
        &self,
        var: &str,
        default_secs: u64,
        max_secs: u64,
    ) -> Result<Duration, ConfigError> {
        self.whole_in(var, default_secs, 1..=max_secs, "a whole number of seconds")
            .map(Duration::from_secs)
    }
}

fn read_env<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<String, ConfigError> {
    // Not trimmed, and an empty value is an error rather than "unset": the env is the
    // key namespace, and `LEXPIPE_ENV=$UNSET_THING` must not quietly share `dev` keys.
    let env = match (vars.get)(ENV) {
        None => return Ok(DEFAULT_ENV.to_owned()),
        Some(env) => env,
    };
    let mut chars = env.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if first_ok && rest_ok && env.len() <= MAX_ENV_LEN {
        Ok(env)
    } else {
        Err(ConfigError::new(
            ENV,
            format!(
                "expected 1 to {MAX_ENV_LEN} characters of a-z, 0-9, '_' or '-', starting \
                 with a letter or digit (e.g. dev, staging, prod), got {}",
                quoted(&env)
            ),
        ))
    }
}

fn read_redis<F: Fn(&str) -> Option<String>>(
    vars: &Vars<F>,
    stage: DeploymentStage,
) -> Result<RedisConfig, ConfigError> {
    let cloud = stage == DeploymentStage::Cloud;
    let enabled = vars.flag(REDIS_ENABLED, true)?;
    if cloud && !enabled {
        return Err(ConfigError::new(
            REDIS_ENABLED,
            "cannot be false in the cloud stage: locks and idempotency need Redis",
        ));
    }
    let url = match vars.trimmed(REDIS_URL) {
        Some(url) => url,
        None if cloud => {
            return Err(ConfigError::new(
                REDIS_URL,
                format!("is required in the cloud stage ({CLOUD_NEEDS_TLS})"),
            ));
        }
        None => DEFAULT_REDIS_URL.to_owned(),
    };
    let cluster = vars.flag(REDIS_CLUSTER, false)?;
    let tls = check_redis_urls(&url, cluster)?;
    if cloud && !tls {
        return Err(ConfigError::new(REDIS_URL, CLOUD_NEEDS_TLS));
    }
    let features = RedisFeatures {
        cache: vars.flag(REDIS_CACHE, true)? && enabled,
        locks: vars.flag(REDIS_LOCKS, true)? && enabled,
        rate_limit: vars.flag(REDIS_RATE_LIMIT, true)? && enabled,
        state: vars.flag(REDIS_STATE, true)? && enabled,
        idempotency: vars.flag(REDIS_IDEMPOTENCY, true)? && enabled,
    };
    // Many workers in the cloud: without locks or idempotency records exactly-once rests
    // on the database alone, which is the backstop, not the design.
    for (var, on) in [
        (REDIS_LOCKS, features.locks),
        (REDIS_IDEMPOTENCY, features.idempotency),
    ] {
        if cloud && !on {
            return Err(ConfigError::new(
                var,
                "cannot be false in the cloud stage: concurrent workers need it",
            ));
        }
    }
    let db = match vars.trimmed(REDIS_DB) {
        None => None,
        Some(_) if cluster => {
            return Err(ConfigError::new(
                REDIS_DB,
                "is set but LEXPIPE_REDIS_CLUSTER is true: a Redis Cluster has database 0 only",
            ));
        }
        Some(_) => Some(vars.whole::<i64>(REDIS_DB, 0, 0, "a database number")?),
    };
    let tls_ca_file = match vars.trimmed(REDIS_TLS_CA_FILE) {
        None => None,
        Some(_) if !tls => {
            return Err(ConfigError::new(
                REDIS_TLS_CA_FILE,
                "is set but REDIS_URL is not a rediss:// (TLS) URL",
            ));
        }
        Some(path) => {
            let path = std::path::PathBuf::from(path);
            match std::fs::read(&path) {
                Ok(pem) if pem.windows(11).any(|w| w == b"-----BEGIN ") => Some(path),
                Ok(_) => {
                    return Err(ConfigError::new(
                        REDIS_TLS_CA_FILE,
                        format!("{} holds no PEM certificate", path.display()),
                    ));
                }
                Err(e) => {
                    return Err(ConfigError::new(
                        REDIS_TLS_CA_FILE,
                        format!("cannot read {}: {e}", path.display()),
                    ));
                }
            }
        }
    };
    Ok(RedisConfig {
        url: Secret::new(url),
        cluster,
        tls,
        tls_ca_file,
        username: vars.raw(REDIS_USERNAME),
        password: vars.raw(REDIS_PASSWORD).map(Secret::new),
        db,
        connect_timeout: vars.millis(REDIS_CONNECT_TIMEOUT_MS, 1000)?,
        response_timeout: vars.millis(REDIS_RESPONSE_TIMEOUT_MS, 500)?,
        enabled,
        features,
        fallback_to_memory: stage == DeploymentStage::Local,
    })
}

/// Checks a Redis URL and returns whether it asks for TLS. Errors never quote any part
/// of the URL: a mistyped URL can put a password where the scheme or host should be.
/// Checks `REDIS_URL`: one URL, or in cluster mode one or more seed URLs separated by
/// commas, all with the same scheme and none naming a database. Returns true for TLS.
fn check_redis_urls(url: &str, cluster: bool) -> Result<bool, ConfigError> {
    if !cluster {
        return check_redis_url(url);
    }
    let mut tls = None;
    for seed in url.split(',').map(str::trim) {
        if seed.is_empty() {
            return Err(ConfigError::new(
                REDIS_URL,
                "has an empty entry in its comma-separated list of cluster nodes; value not shown",
            ));
        }
        let this = check_redis_url(seed)?;
        if tls.is_some_and(|t| t != this) {
            return Err(ConfigError::new(
                REDIS_URL,
                "mixes redis:// and rediss:// cluster nodes; value not shown",
            ));
        }
        let parsed = Url::parse(seed).expect("checked above");
        if matches!(url_db(&parsed), Ok(Some(n)) if n != 0) {
            return Err(ConfigError::new(
                REDIS_URL,
                "names a database but LEXPIPE_REDIS_CLUSTER is true: a Redis Cluster has database 0 only; value not shown",
            ));
        }
        tls = Some(this);
    }
    Ok(tls.unwrap_or(false))
}

fn check_redis_url(url: &str) -> Result<bool, ConfigError> {
    let parsed = Url::parse(url).map_err(|e| {
        // `url::ParseError` messages are fixed strings that never include the input.
        ConfigError::new(REDIS_URL, format!("not a valid URL ({e}); value not shown"))
    })?;
    let tls = match parsed.scheme() {
        "redis" => false,
        "rediss" => true,
        _ => {
            return Err(ConfigError::new(
                REDIS_URL,
                "expected a redis:// or rediss:// URL; value not shown",
            ));
        }
    };
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(REDIS_URL, "has no host; value not shown"));
    }
    if url_db(&parsed).is_err() {
        return Err(ConfigError::new(
            REDIS_URL,
            "the path must be empty or a database number such as /0; value not shown",
        ));
    }
    Ok(tls)
}

/// The database number in a Redis URL's path (`/N`), if any.
fn url_db(url: &Url) -> Result<Option<i64>, ()> {
    match url.path().trim_start_matches('/') {
        "" => Ok(None),
        n => n
            .parse::<u64>()
            .ok()
            .and_then(|n| i64::try_from(n).ok())
            .map(Some)
            .ok_or(()),
    }
}

/// `scheme://[***@]host[:port][/db]`: the Redis URL with credentials hidden and the
/// query dropped, showing the database actually selected.
fn redacted_url(redis: &RedisConfig) -> String {
    let Ok(url) = Url::parse(redis.url.expose()) else {
        return "<invalid url>".to_owned();
    };
    let has_credentials = !url.username().is_empty()
        || url.password().is_some()
        || redis.username.is_some()
        || redis.password.is_some();
    let mut out = format!("{}://", url.scheme());
    if has_credentials {
        out.push_str("***@");
    }
    out.push_str(url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    if let Some(db) = redis.db.or_else(|| url_db(&url).ok().flatten()) {
        out.push_str(&format!("/{db}"));
    }
    out
}

fn read_cache<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<CacheConfig, ConfigError> {
    let ttl_ocr = vars.secs(CACHE_TTL_OCR_SECS, 30 * DAY_SECS)?;
    Ok(CacheConfig {
        ttl_ocr,
        ttl_ocr_filing: vars.secs(CACHE_TTL_OCR_FILING_SECS, ttl_ocr.as_secs())?,
        ttl_ocr_contract: vars.secs(CACHE_TTL_OCR_CONTRACT_SECS, ttl_ocr.as_secs())?,
        ttl_ocr_exhibit: vars.secs(CACHE_TTL_OCR_EXHIBIT_SECS, ttl_ocr.as_secs())?,
        ttl_entities: vars.secs(CACHE_TTL_ENTITIES_SECS, 7 * DAY_SECS)?,
        ttl_resolution: vars.secs(CACHE_TTL_RESOLUTION_SECS, 7 * DAY_SECS)?,
        ttl_llm: vars.secs(CACHE_TTL_LLM_SECS, 7 * DAY_SECS)?,
        lease: vars.millis(CACHE_LEASE_MS, 30_000)?,
        compress_threshold: vars.whole(CACHE_COMPRESS_BYTES, 4096, 0, "a whole number of bytes")?,
        max_value_bytes: vars.whole(
            CACHE_MAX_VALUE_BYTES,
            8 * 1024 * 1024,
            1,
            "a whole number of bytes",
        )?,
        breaker_failures: vars.whole(BREAKER_FAILURES, 3, 1, "a whole number of failures")?,
        breaker_cooldown: vars.millis(BREAKER_COOLDOWN_MS, 15_000)?,
    })
}

fn read_chunk<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<ChunkConfig, ConfigError> {
    let min_chars: usize = vars.whole(CHUNK_MIN_CHARS, 400, 0, "a whole number of characters")?;
    let max_chars: usize = vars.whole(CHUNK_MAX_CHARS, 2000, 1, "a whole number of characters")?;
    let overlap_chars: usize =
        vars.whole(CHUNK_OVERLAP_CHARS, 200, 0, "a whole number of characters")?;
    // Blame the variable the operator set: raising MIN past the default MAX is MIN's
    // fault, lowering MAX below the default MIN is MAX's.
    let is_set = |var: &str| vars.trimmed(var).is_some();
    if min_chars > max_chars {
        let var = if is_set(CHUNK_MIN_CHARS) || !is_set(CHUNK_MAX_CHARS) {
            CHUNK_MIN_CHARS
        } else {
            CHUNK_MAX_CHARS
        };
        return Err(ConfigError::new(
            var,
            format!(
                "{CHUNK_MIN_CHARS} ({min_chars}) must not exceed {CHUNK_MAX_CHARS} ({max_chars})"
            ),
        ));
    }
    // overlap < max / 2, without integer division rounding it down.
    if overlap_chars.saturating_mul(2) >= max_chars {
        let var = if is_set(CHUNK_OVERLAP_CHARS) || !is_set(CHUNK_MAX_CHARS) {
            CHUNK_OVERLAP_CHARS
        } else {
            CHUNK_MAX_CHARS
        };
        return Err(ConfigError::new(
            var,
            format!(
                "{CHUNK_OVERLAP_CHARS} ({overlap_chars}) must be less than half of \
                 {CHUNK_MAX_CHARS} ({max_chars})"
            ),
        ));
    }
    Ok(ChunkConfig {
        min_chars,
        max_chars,
        overlap_chars,
    })
}

/// A non-secret value for an error message: quoted, escaped, and cut short.
pub fn quoted(value: &str) -> String {
    const LIMIT: usize = 64;
    if value.chars().count() > LIMIT {
        let head: String = value.chars().take(LIMIT).collect();
        format!("{head:?}...")
    } else {
        format!("{value:?}")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_vars(|k| map.get(k).cloned())
    }

    fn loaded(pairs: &[(&str, &str)]) -> Config {
        load(pairs).unwrap_or_else(|e| panic!("expected {pairs:?} to load, got {e}"))
    }

    fn failure(pairs: &[(&str, &str)]) -> ConfigError {
        match load(pairs) {
            Ok(cfg) => panic!("expected {pairs:?} to fail, got {cfg:?}"),
            Err(e) => e,
        }
    }

    const CLOUD_URL: &str = "rediss://cache.example.internal:6379";

    #[test]
    fn no_variables_give_the_local_defaults() {
        let cfg = loaded(&[]);

        assert_eq!(cfg.stage, DeploymentStage::Local);
        assert_eq!(cfg.env, "dev");
        assert_eq!(cfg.key_prefix(), "lexpipe:dev:");
        let r = &cfg.redis;
        assert_eq!(r.url.expose(), "redis://127.0.0.1:6379");
        assert!(!r.tls);
        assert_eq!(
            (r.username.as_deref(), r.password.is_none(), r.db),
            (None, true, None)
        );
        assert_eq!(r.connect_timeout, Duration::from_millis(1000));
        assert_eq!(r.response_timeout, Duration::from_millis(500));
        assert!(r.enabled && r.fallback_to_memory);
        assert_eq!(
            r.features,
            RedisFeatures {
                cache: true,
                locks: true,
                rate_limit: true,
                state: true,
                idempotency: true
            }
        );
        let c = &cfg.cache;
        assert_eq!(c.ttl_ocr, Duration::from_secs(30 * 86_400));
        assert_eq!(c.ttl_entities, Duration::from_secs(7 * 86_400));
        assert_eq!(c.ttl_resolution, Duration::from_secs(7 * 86_400));
        assert_eq!(c.ttl_llm, Duration::from_secs(7 * 86_400));
        assert_eq!(c.lease, Duration::from_millis(30_000));
        assert_eq!(c.compress_threshold, 4096);
        assert_eq!(c.max_value_bytes, 8_388_608);
        assert_eq!(c.breaker_failures, 3);
        assert_eq!(c.breaker_cooldown, Duration::from_millis(15_000));
        let k = &cfg.chunk;
        assert_eq!(
            (k.min_chars, k.max_chars, k.overlap_chars),
            (400, 2000, 200)
        );
    }

    #[test]
    fn local_defaults_match_an_empty_environment() {
        assert_eq!(Config::local_defaults(), loaded(&[]));
    }

    #[test]
    fn stage_accepts_names_and_numbers_in_any_case_with_spaces() {
        let cases = [
            ("cloud", DeploymentStage::Cloud),
            (" CLOUD ", DeploymentStage::Cloud),
            ("1", DeploymentStage::Cloud),
            ("Hybrid", DeploymentStage::Hybrid),
            ("2", DeploymentStage::Hybrid),
            ("local", DeploymentStage::Local),
            ("\t3\n", DeploymentStage::Local),
        ];
        for (value, expected) in cases {
            let cfg = loaded(&[(STAGE, value), (REDIS_URL, CLOUD_URL)]);
            assert_eq!(cfg.stage, expected, "LEXPIPE_STAGE={value:?}");
        }
    }

    #[test]
    fn unknown_stage_is_an_error_naming_lexpipe_stage_and_quoting_the_value() {
        for value in ["prod", "4", "0", "clouds"] {
            let err = failure(&[(STAGE, value)]);
            assert_eq!(err.var, "LEXPIPE_STAGE");
            assert!(err.to_string().contains(&format!("{value:?}")), "{err}");
        }
    }

    #[test]
    fn env_becomes_the_redis_key_prefix() {
        let cfg = loaded(&[(ENV, "staging")]);
        assert_eq!(cfg.key_prefix(), "lexpipe:staging:");
    }

    #[test]
    fn env_accepts_unique_test_names_up_to_48_characters() {
        let longest = format!("t{}", "-".repeat(47));
        for env in ["prod", "t-3f2a9c1e", "0_run-7", longest.as_str()] {
            assert_eq!(loaded(&[(ENV, env)]).env, env);
        }
    }

    #[test]
    fn env_with_colon_space_star_uppercase_or_empty_is_an_error_naming_lexpipe_env() {
        let too_long = "a".repeat(49);
        let bad = [
            "dev:x",
            "my env",
            " dev",
            "dev*",
            "*",
            "Prod",
            "",
            "-dev",
            "_dev",
            "dév",
            too_long.as_str(),
        ];
        for env in bad {
            let err = failure(&[(ENV, env)]);
            assert_eq!(err.var, "LEXPIPE_ENV", "LEXPIPE_ENV={env:?}");
        }
    }

    #[test]
    fn rediss_url_turns_tls_on() {
        let cfg = loaded(&[(REDIS_URL, "rediss://cache.example:6380")]);
        assert!(cfg.redis.tls);
        assert_eq!(cfg.redis.url.expose(), "rediss://cache.example:6380");
    }

    #[test]
    fn cluster_mode_takes_seed_nodes_separated_by_commas_and_refuses_a_database() {
        let cfg = loaded(&[
            (REDIS_CLUSTER, "true"),
            (REDIS_URL, "redis://10.0.0.1:7000, redis://10.0.0.2:7001"),
        ]);
        assert!(cfg.redis.cluster && !cfg.redis.tls);
        assert_eq!(
            cfg.redis.seed_urls(),
            ["redis://10.0.0.1:7000", "redis://10.0.0.2:7001"]
        );
        let cfg = loaded(&[
            (REDIS_CLUSTER, "yes"),
            (REDIS_URL, "rediss://cfg.example:6379"),
        ]);
        assert!(cfg.redis.cluster && cfg.redis.tls);
        assert!(!loaded(&[]).redis.cluster, "standalone is the default");

        let mixed = failure(&[
            (REDIS_CLUSTER, "true"),
            (REDIS_URL, "redis://a:7000,rediss://b:7001"),
        ]);
        assert_eq!(mixed.var, REDIS_URL);
        assert!(mixed.problem.contains("mixes"), "{mixed}");
        let db = failure(&[(REDIS_CLUSTER, "true"), (REDIS_DB, "2")]);
        assert_eq!(db.var, REDIS_DB);
        let path = failure(&[(REDIS_CLUSTER, "true"), (REDIS_URL, "redis://a:7000/3")]);
        assert_eq!(path.var, REDIS_URL);
        let empty = failure(&[(REDIS_CLUSTER, "true"), (REDIS_URL, "redis://a:7000,")]);
        assert!(empty.problem.contains("empty entry"), "{empty}");
        // A list is only a cluster's: standalone mode takes one URL.
        assert_eq!(
            failure(&[(REDIS_URL, "redis://a:7000,redis://b:7001")]).var,
            REDIS_URL
        );
    }

    #[test]
    fn url_with_another_scheme_or_no_host_is_an_error_naming_redis_url() {
        for url in [
            "http://127.0.0.1:6379",
            "unix:///tmp/redis.sock",
            "127.0.0.1:6379",
            "redis://",
            "redis://host:6379/not-a-db",
            "redis://host:99999",
        ] {
            let err = failure(&[(REDIS_URL, url)]);
            assert_eq!(err.var, "REDIS_URL", "REDIS_URL={url:?}");
            assert!(!err.to_string().contains(url), "{err}");
        }
    }

    #[test]
    fn malformed_url_holding_a_password_gives_an_error_without_the_password() {
        let password = "s3cr3t-Pa55";
        for url in [
            format!("redis://user:{password}@host:notaport"),
            format!("redis://user:{password}@host/x"),
            format!("http://user:{password}@host:6379"),
            // A forgotten scheme makes the user name look like one.
            format!("{password}:other@host:6379"),
            format!("{password}@host:6379"),
            format!("redis://:{password}@"),
        ] {
            let err = failure(&[(REDIS_URL, &url)]);
            assert_eq!(err.var, "REDIS_URL");
            assert!(!err.to_string().contains(password), "leaked in {err}");
            assert!(!format!("{err:?}").contains(password), "leaked in {err:?}");
        }
    }

    #[test]
    fn cloud_stage_without_redis_url_is_a_startup_error() {
        let err = failure(&[(STAGE, "cloud")]);
        assert_eq!(err.var, "REDIS_URL");
        assert!(
            err.problem
                .contains("cloud stage requires TLS: use rediss://"),
            "{err}"
        );
    }

    #[test]
    fn cloud_stage_with_plain_text_redis_url_is_a_startup_error_asking_for_tls() {
        let err = failure(&[(STAGE, "cloud"), (REDIS_URL, "redis://cache.example:6379")]);
        assert_eq!(err.var, "REDIS_URL");
        assert!(
            err.problem
                .contains("cloud stage requires TLS: use rediss://"),
            "{err}"
        );
    }

    #[test]
    fn cloud_stage_with_redis_switched_off_is_a_startup_error() {
        let err = failure(&[
            (STAGE, "1"),
            (REDIS_URL, CLOUD_URL),
            (REDIS_ENABLED, "false"),
        ]);
        assert_eq!(err.var, "LEXPIPE_REDIS_ENABLED");
    }

    #[test]
    fn cloud_stage_with_rediss_url_loads_without_memory_fallback() {
        let cfg = loaded(&[(STAGE, "cloud"), (ENV, "prod"), (REDIS_URL, CLOUD_URL)]);
        assert!(cfg.redis.tls && cfg.redis.enabled);
        assert!(!cfg.redis.fallback_to_memory);
    }

    #[test]
    fn hybrid_stage_defaults_to_local_redis_without_memory_fallback() {
        let cfg = loaded(&[(STAGE, "hybrid")]);
        assert_eq!(cfg.redis.url.expose(), "redis://127.0.0.1:6379");
        assert!(!cfg.redis.tls);
        assert!(!cfg.redis.fallback_to_memory);
    }

    #[test]
    fn local_and_hybrid_stages_accept_tls_too() {
        for stage in ["local", "hybrid"] {
            assert!(loaded(&[(STAGE, stage), (REDIS_URL, CLOUD_URL)]).redis.tls);
        }
    }

    #[test]
    fn debug_output_never_contains_redis_passwords() {
        let cfg = loaded(&[
            (STAGE, "cloud"),
            (REDIS_URL, "rediss://app:url-pa55word@cache.example:6379/2"),
            (REDIS_USERNAME, "app"),
            (REDIS_PASSWORD, "env-pa55word"),
        ]);

        let debug = format!("{cfg:?}");
        let pretty = format!("{cfg:#?}");

        for output in [&debug, &pretty] {
            assert!(!output.contains("url-pa55word"), "{output}");
            assert!(!output.contains("env-pa55word"), "{output}");
        }
        assert_eq!(
            cfg.redis.password.as_ref().map(Secret::expose),
            Some("env-pa55word")
        );
    }

    #[test]
    fn booleans_accept_every_documented_spelling() {
        let spellings = [
            ("true", true),
            ("TRUE", true),
            ("1", true),
            ("Yes", true),
            (" on ", true),
            ("false", false),
            ("False", false),
            ("0", false),
            ("no", false),
            ("OFF", false),
        ];
        for (value, expected) in spellings {
            let cfg = loaded(&[(REDIS_CACHE, value)]);
            assert_eq!(cfg.redis.features.cache, expected, "{value:?}");
        }
    }

    #[test]
    fn bad_boolean_is_an_error_naming_the_variable_and_quoting_the_value() {
        for var in [
            REDIS_ENABLED,
            REDIS_CACHE,
            REDIS_LOCKS,
            REDIS_RATE_LIMIT,
            REDIS_STATE,
            REDIS_IDEMPOTENCY,
        ] {
            let err = failure(&[(var, "maybe")]);
            assert_eq!(err.var, var);
            assert!(err.to_string().contains("\"maybe\""), "{err}");
        }
    }

    #[test]
    fn global_redis_switch_off_turns_every_feature_off() {
        let cfg = loaded(&[(REDIS_ENABLED, "off"), (REDIS_LOCKS, "on")]);
        assert!(!cfg.redis.enabled);
        assert_eq!(
            cfg.redis.features,
            RedisFeatures {
                cache: false,
                locks: false,
                rate_limit: false,
                state: false,
                idempotency: false
            }
        );
    }

    #[test]
    fn each_feature_can_be_switched_off_alone() {
        let cfg = loaded(&[(REDIS_RATE_LIMIT, "no"), (REDIS_STATE, "0")]);
        let f = cfg.redis.features;
        assert!(f.cache && f.locks && f.idempotency);
        assert!(!f.rate_limit && !f.state);
    }

    #[test]
    fn empty_values_count_as_unset() {
        let every_var_but_env = [
            STAGE,
            REDIS_URL,
            REDIS_USERNAME,
            REDIS_PASSWORD,
            REDIS_CLUSTER,
            REDIS_DB,
            REDIS_CONNECT_TIMEOUT_MS,
            REDIS_RESPONSE_TIMEOUT_MS,
            REDIS_ENABLED,
            REDIS_CACHE,
            REDIS_LOCKS,
            REDIS_RATE_LIMIT,
            REDIS_STATE,
            REDIS_IDEMPOTENCY,
            CACHE_TTL_OCR_SECS,
            CACHE_TTL_OCR_FILING_SECS,
            CACHE_TTL_OCR_CONTRACT_SECS,
            CACHE_TTL_OCR_EXHIBIT_SECS,
            CACHE_TTL_ENTITIES_SECS,
            CACHE_TTL_RESOLUTION_SECS,
            CACHE_TTL_LLM_SECS,
            CACHE_LEASE_MS,
            CACHE_COMPRESS_BYTES,
            CACHE_MAX_VALUE_BYTES,
            BREAKER_FAILURES,
            BREAKER_COOLDOWN_MS,
            CHUNK_MIN_CHARS,
            CHUNK_MAX_CHARS,
            CHUNK_OVERLAP_CHARS,
        ];
        let empty: Vec<(&str, &str)> = every_var_but_env.iter().map(|v| (*v, "")).collect();

        assert_eq!(loaded(&empty), Config::local_defaults());
    }

    #[test]
    fn cloud_stage_with_empty_redis_url_is_still_a_startup_error() {
        let err = failure(&[(STAGE, "cloud"), (REDIS_URL, "")]);
        assert_eq!(err.var, "REDIS_URL");
    }

    #[test]
    fn redis_credentials_and_db_are_read() {
        let cfg = loaded(&[
            (REDIS_USERNAME, "worker"),
            (REDIS_PASSWORD, " spaced secret "),
            (REDIS_DB, "3"),
        ]);
        assert_eq!(cfg.redis.username.as_deref(), Some("worker"));
        assert_eq!(
            cfg.redis.password.as_ref().map(Secret::expose),
            Some(" spaced secret ")
        );
        assert_eq!(cfg.redis.db, Some(3));
    }

    #[test]
    fn negative_or_malformed_redis_db_is_an_error_naming_redis_db() {
        for value in ["-1", "one", "1.5", "99999999999999999999"] {
            let err = failure(&[(REDIS_DB, value)]);
            assert_eq!(err.var, "REDIS_DB", "{value:?}");
            assert!(err.to_string().contains(&format!("{value:?}")), "{err}");
        }
    }

    #[test]
    fn timeouts_are_read_in_milliseconds() {
        let cfg = loaded(&[
            (REDIS_CONNECT_TIMEOUT_MS, "2500"),
            (REDIS_RESPONSE_TIMEOUT_MS, " 75 "),
        ]);
        assert_eq!(cfg.redis.connect_timeout, Duration::from_millis(2500));
        assert_eq!(cfg.redis.response_timeout, Duration::from_millis(75));
    }

    #[test]
    fn zero_negative_or_malformed_durations_are_errors_naming_the_variable() {
        let duration_vars = [
            REDIS_CONNECT_TIMEOUT_MS,
            REDIS_RESPONSE_TIMEOUT_MS,
            CACHE_TTL_OCR_SECS,
            CACHE_TTL_OCR_FILING_SECS,
            CACHE_TTL_OCR_CONTRACT_SECS,
            CACHE_TTL_OCR_EXHIBIT_SECS,
            CACHE_TTL_ENTITIES_SECS,
            CACHE_TTL_RESOLUTION_SECS,
            CACHE_TTL_LLM_SECS,
            CACHE_LEASE_MS,
            BREAKER_COOLDOWN_MS,
        ];
        for var in duration_vars {
            for value in ["0", "-5", "1s", "ten", "1e3"] {
                let err = failure(&[(var, value)]);
                assert_eq!(err.var, var, "{var}={value:?}");
            }
        }
    }

    #[test]
    fn cache_settings_are_read_from_their_variables() {
        let cfg = loaded(&[
            (CACHE_TTL_OCR_SECS, "1"),
            (CACHE_TTL_ENTITIES_SECS, "60"),
            (CACHE_TTL_RESOLUTION_SECS, "120"),
            (CACHE_TTL_LLM_SECS, "3600"),
            (CACHE_LEASE_MS, "5000"),
            (CACHE_COMPRESS_BYTES, "0"),
            (CACHE_MAX_VALUE_BYTES, "1048576"),
            (BREAKER_FAILURES, "5"),
            (BREAKER_COOLDOWN_MS, "250"),
        ]);
        let c = cfg.cache;
        assert_eq!(c.ttl_ocr, Duration::from_secs(1));
        assert_eq!(
            (c.ttl_ocr_filing, c.ttl_ocr_contract, c.ttl_ocr_exhibit),
            (c.ttl_ocr, c.ttl_ocr, c.ttl_ocr),
            "a kind without its own setting keeps the OCR lifetime"
        );
        let kinds = loaded(&[
            (CACHE_TTL_OCR_FILING_SECS, "7776000"),
            (CACHE_TTL_OCR_CONTRACT_SECS, "86400"),
            (CACHE_TTL_OCR_EXHIBIT_SECS, "3600"),
        ])
        .cache;
        assert_eq!(kinds.ttl_ocr, Duration::from_secs(30 * 86_400));
        assert_eq!(kinds.ttl_ocr_filing, Duration::from_secs(90 * 86_400));
        assert_eq!(kinds.ttl_ocr_contract, Duration::from_secs(86_400));
        assert_eq!(kinds.ttl_ocr_exhibit, Duration::from_secs(3600));
        assert_eq!(c.ttl_entities, Duration::from_secs(60));
        assert_eq!(c.ttl_resolution, Duration::from_secs(120));
        assert_eq!(c.ttl_llm, Duration::from_secs(3600));
        assert_eq!(c.lease, Duration::from_millis(5000));
        assert_eq!(c.compress_threshold, 0);
        assert_eq!(c.max_value_bytes, 1_048_576);
        assert_eq!(c.breaker_failures, 5);
        assert_eq!(c.breaker_cooldown, Duration::from_millis(250));
    }

    #[test]
    fn counts_that_are_zero_negative_or_too_large_are_errors_naming_the_variable() {
        let cases = [
            (BREAKER_FAILURES, "0"),
            (BREAKER_FAILURES, "4294967296"),
            (CACHE_MAX_VALUE_BYTES, "0"),
            (CACHE_COMPRESS_BYTES, "-1"),
            (CHUNK_MAX_CHARS, "0"),
            (CHUNK_MIN_CHARS, "-400"),
        ];
        for (var, value) in cases {
            let err = failure(&[(var, value)]);
            assert_eq!(err.var, var, "{var}={value:?}");
        }
    }

    #[test]
    fn chunk_settings_are_read_from_their_variables() {
        let cfg = loaded(&[
            (CHUNK_MIN_CHARS, "100"),
            (CHUNK_MAX_CHARS, "801"),
            (CHUNK_OVERLAP_CHARS, "400"),
        ]);
        let k = cfg.chunk;
        assert_eq!((k.min_chars, k.max_chars, k.overlap_chars), (100, 801, 400));
    }

    #[test]
    fn chunk_min_above_max_is_an_error_naming_the_variable_that_was_set() {
        assert_eq!(failure(&[(CHUNK_MIN_CHARS, "2001")]).var, CHUNK_MIN_CHARS);
        assert_eq!(
            failure(&[(CHUNK_MAX_CHARS, "300"), (CHUNK_OVERLAP_CHARS, "100")]).var,
            CHUNK_MAX_CHARS
        );
        let both = failure(&[(CHUNK_MIN_CHARS, "500"), (CHUNK_MAX_CHARS, "450")]);
        assert_eq!(both.var, CHUNK_MIN_CHARS);
        assert!(both.problem.contains(CHUNK_MAX_CHARS), "{both}");
    }

    #[test]
    fn chunk_overlap_of_half_max_or_more_is_an_error_naming_the_variable_that_was_set() {
        assert_eq!(
            failure(&[(CHUNK_OVERLAP_CHARS, "1000")]).var,
            CHUNK_OVERLAP_CHARS
        );
        assert_eq!(
            failure(&[(CHUNK_MIN_CHARS, "100"), (CHUNK_MAX_CHARS, "400")]).var,
            CHUNK_MAX_CHARS
        );
        // 200 is less than 401 / 2 = 200.5, so integer division must not reject it.
        assert!(load(&[(CHUNK_MAX_CHARS, "401"), (CHUNK_MIN_CHARS, "1")]).is_ok());
    }

    #[test]
    fn describe_of_the_defaults_matches_the_start_up_log_example() {
        assert_eq!(
            Config::local_defaults().describe(),
            "stage=local env=dev redis=redis://127.0.0.1:6379 (tls=false, enabled=true)"
        );
    }

    #[test]
    fn describe_is_one_line_and_hides_credentials() {
        let cfg = loaded(&[
            (STAGE, "cloud"),
            (ENV, "prod"),
            (
                REDIS_URL,
                "rediss://app-user:url-pa55word@cache.example:6380/1?protocol=resp3",
            ),
            (REDIS_PASSWORD, "env-pa55word"),
            (REDIS_RATE_LIMIT, "off"),
        ]);

        let line = cfg.describe();

        assert_eq!(
            line,
            "stage=cloud env=prod redis=rediss://***@cache.example:6380/1 \
             (tls=true, enabled=true, off=rate_limit)"
        );
        for secret in ["app-user", "url-pa55word", "env-pa55word", "\n"] {
            assert!(!line.contains(secret), "{line}");
        }
    }

    #[test]
    fn describe_marks_credentials_given_only_through_variables() {
        let cfg = loaded(&[
            (REDIS_USERNAME, "worker"),
            (REDIS_DB, "4"),
            (REDIS_URL, "redis://[::1]:6379/0"),
        ]);
        assert_eq!(
            cfg.describe(),
            "stage=local env=dev redis=redis://***@[::1]:6379/4 (tls=false, enabled=true)"
        );
    }

    #[test]
    fn cloud_stage_with_locks_or_idempotency_switched_off_is_a_startup_error() {
        for var in [REDIS_LOCKS, REDIS_IDEMPOTENCY] {
            let err = Config::from_vars(|k| match k {
                "LEXPIPE_STAGE" => Some("cloud".into()),
                "REDIS_URL" => Some("rediss://cache.example:6379".into()),
                k if k == var => Some("false".into()),
                _ => None,
            })
            .unwrap_err();
            assert_eq!(err.var, var);
        }
    }

    #[test]
    fn config_error_displays_the_variable_first() {
        let err = failure(&[(REDIS_CONNECT_TIMEOUT_MS, "0")]);
        assert!(
            err.to_string().starts_with("REDIS_CONNECT_TIMEOUT_MS: "),
            "{err}"
        );
    }

    #[test]
    fn long_bad_values_are_quoted_short() {
        let long = "x".repeat(500);
        let err = failure(&[(BREAKER_FAILURES, &long)]);
        assert!(err.to_string().len() < 200, "{err}");
    }
}
