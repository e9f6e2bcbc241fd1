//! The composition root: everything a lexpipe process uses, built once from [`Config`]
//! and lent to every step.
//!
//! `lexpipe process`, `lexpipe worker`, `status`, `health` and every Lambda function
//! build their [`App`] with [`App::build`], so they share one behaviour: one Redis
//! connection for every Redis feature, each feature switched by its own setting
//! (`LEXPIPE_REDIS_CACHE`, `_LOCKS`, `_STATE`, `_IDEMPOTENCY`, `_RATE_LIMIT`, each
//! turning off exactly its feature), the database pool when `DATABASE_URL` is set, and
//! the blob store where step artefacts go.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::chunk::ChunkConfig;
use crate::config::Config;
use crate::cost::Meter;
use crate::extract::RuleExtractor;
use crate::llm::{Answer, JsonRequest, LlmClient, LlmError};
use crate::redis::idempotency::Idempotency;
use crate::redis::lock::Locks;
use crate::redis::ratelimit::RateLimiter;
use crate::redis::state::{DocumentStates, StateStore};
use crate::redis::{
    Cache, Codec, KeyBuilder, MemoryBackend, RedisBackend, RedisHandle, RedisStatus,
};
use crate::stages::{NoHooks, StageError, StageHooks};
use crate::store::blob::{BlobLocation, BlobStore, FolderStore};
use crate::store::source::SourceReader;

/// Why the process could not be put together.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Database(#[from] crate::store::db::DbError),
    #[error("artefact store {location}: {message}")]
    Artefacts { location: String, message: String },
    #[error("{0}")]
    Llm(#[from] LlmError),
}

/// Choices a caller makes that are not settings: where artefacts go when
/// `LEXPIPE_ARTEFACTS` is not set, and where per-document JSON files go.
#[derive(Debug, Clone, Default)]
pub struct AppOptions {
    /// The artefact store when `LEXPIPE_ARTEFACTS` is unset (`lexpipe process` passes its
    /// output folder, or the input bucket for S3 input).
    pub default_artefacts: Option<BlobLocation>,
    /// Folder for the per-document JSON files written by the persist step.
    pub output_dir: Option<PathBuf>,
    /// Do not open the database even when `DATABASE_URL` is set (commands that only
    /// read Redis).
    pub skip_database: bool,
}

/// Everything the steps use. Cheap to clone (every field is shared).
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    /// The one Redis connection, when Redis is on and was reachable (or, outside
    /// `local`, configured: the features then fail open or closed behind the breaker).
    pub redis: Option<RedisHandle>,
    /// How this process uses Redis, as the summaries report it.
    pub redis_status: RedisStatus,
    /// Result caches (Redis, or in-process when the Redis cache is off or unreachable
    /// locally).
    pub cache: Arc<Cache>,
    /// Distributed locks on queue items (`LEXPIPE_REDIS_LOCKS`).
    pub locks: Option<Locks>,
    /// Rate limits shared by every worker (`LEXPIPE_REDIS_RATE_LIMIT`; off → each
    /// process keeps its local share).
    pub limiter: Arc<RateLimiter>,
    /// Per-document progress (`LEXPIPE_REDIS_STATE`).
    pub states: Option<Arc<dyn DocumentStates>>,
    /// Idempotency records guarding database writes (`LEXPIPE_REDIS_IDEMPOTENCY`).
    pub idempotency: Option<Arc<Idempotency>>,
    /// PostgreSQL, when `DATABASE_URL` is set.
    pub db: Option<sqlx::PgPool>,
    /// Where step artefacts are written and read.
    pub artefacts: Arc<dyn BlobStore>,
    /// Whether `artefacts` is an S3 location (which makes Textract the OCR engine when
    /// `LEXPIPE_OCR_ENGINE` is `auto` outside `local`).
    pub artefacts_in_s3: bool,
    /// Reads documents from paths and `s3://` URLs.
    pub sources: Arc<SourceReader>,
    /// Larger documents fail with `DocumentTooLarge` before they are read.
    pub max_document_bytes: u64,
    /// Where the persist step writes one JSON file per document, if anywhere.
    pub output_dir: Option<PathBuf>,
    pub extractor: Arc<RuleExtractor>,
    /// The LLM endpoint's client, when `LEXPIPE_LLM_BASE_URL` is set; the steps ask it
    /// through [`App::ask_llm`], which puts the cache and the shared limits in front.
    pub llm: Option<Arc<LlmClient>>,
    pub chunking: ChunkConfig,
    /// Permits for CPU-bound work (PDF text extraction, chunking, entity extraction):
    /// as many as the machine has cores. More at once would not go faster, and every
    /// extra thread running the extractor's regexes holds its own match caches (tens of
    /// MB for the largest ones), which is what drove memory up with concurrency.
    pub cpu: Arc<tokio::sync::Semaphore>,
    /// Fault injection (tests, drills); nothing in production.
    pub hooks: Arc<dyn StageHooks>,
    /// The Textract client, when Textract is the OCR engine of this configuration
    /// ([`crate::config::OcrConfig::engine_for`]); built once from the AWS environment.
    pub textract: Option<aws_sdk_textract::Client>,
    /// When the current invocation must be done by (a Lambda's `Context::deadline`);
    /// `None` outside Lambda. Bounds the idempotency records and lock leases taken
    /// inside the invocation ([`App::bound`]), so that a timed-out invocation never
    /// blocks its retry for longer than it could have run.
    pub deadline: Option<SystemTime>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("redis_status", &self.redis_status)
            .field("cache", &self.cache)
            .field("locks", &self.locks.is_some())
            .field("states", &self.states.is_some())
            .field("idempotency", &self.idempotency.is_some())
            .field("db", &self.db.is_some())
            .field("artefacts", &self.artefacts)
            .field("output_dir", &self.output_dir)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Builds everything the configuration asks for: [`App::build_core`], then the
    /// database ([`App::with_database`], unless `opts.skip_database`), the Textract
    /// client ([`App::with_textract`]) and the LLM client ([`App::with_llm`]).
    ///
    /// # Errors
    /// The database is configured but cannot be opened, the artefact store cannot be set
    /// up, or the LLM endpoint's client cannot be built.
    pub async fn build(config: Config, opts: AppOptions) -> Result<App, AppError> {
        let skip_database = opts.skip_database;
        let mut app = App::build_core(config, opts).await?;
        if !skip_database {
            app = app.with_database().await?;
        }
        app.with_textract().await.with_llm()
    }

    /// Everything but the database and the paid engines' clients: Redis and every Redis
    /// feature that is on, the caches, the limiter and the artefact store. A Lambda
    /// function starts from this and adds only what its step uses, so that its binary
    /// links nothing else (the `chunk` function has no database driver, no Textract and
    /// no LLM client).
    ///
    /// Redis: off (`LEXPIPE_REDIS_ENABLED=false`, or every feature off) → nothing
    /// connects and the caches are in-process. On and reachable → one connection serves
    /// every feature that is on. Unreachable: in `local`, in-process caches and no
    /// Redis features, with one warning; elsewhere the connection is kept, caches fail
    /// open and locks/idempotency fail closed until it comes back.
    ///
    /// # Errors
    /// The artefact store cannot be set up.
    pub async fn build_core(config: Config, opts: AppOptions) -> Result<App, AppError> {
        let config = Arc::new(config);
        let (redis, redis_status) = connect_redis(&config).await;
        let keys = KeyBuilder::new(&config.env);
        let features = config.redis.features;
        let cache_handle = redis.as_ref().filter(|_| features.cache).cloned();
        let cache = build_cache(&config, cache_handle);
        let limiter = Arc::new(RateLimiter::new(
            redis.as_ref().filter(|_| features.rate_limit).cloned(),
            keys.clone(),
            config.rate_limit.clone(),
        ));
        let locks = redis
            .as_ref()
            .filter(|_| features.locks)
            .map(|h| Locks::new(h.clone(), keys.clone()));
        let states: Option<Arc<dyn DocumentStates>> =
            redis.as_ref().filter(|_| features.state).map(|h| {
                Arc::new(StateStore::new(h.clone(), keys.clone(), config.state))
                    as Arc<dyn DocumentStates>
            });
        let idempotency = redis.as_ref().filter(|_| features.idempotency).map(|h| {
            Arc::new(Idempotency::new(
                h.clone(),
                keys.clone(),
                config.idempotency,
            ))
        });
        let location = config
            .artefacts
            .clone()
            .or(opts.default_artefacts)
            .unwrap_or_else(|| BlobLocation::Folder(PathBuf::from("out")));
        let artefacts = crate::store::blob::open_store(&location)
            .await
            .map_err(|e| AppError::Artefacts {
                location: location.display(),
                message: e.to_string(),
            })?;
        let mut app = App::bare(config, cache, artefacts);
        app.artefacts_in_s3 = matches!(location, BlobLocation::S3 { .. });
        app.redis = redis;
        app.redis_status = redis_status;
        app.limiter = limiter;
        app.locks = locks;
        app.states = states;
        app.idempotency = idempotency;
        app.output_dir = opts.output_dir;
        Ok(app)
    }

    /// This app with the PostgreSQL pool, when `DATABASE_URL` is set.
    ///
    /// # Errors
    /// The database cannot be opened.
    pub async fn with_database(mut self) -> Result<App, AppError> {
        if self.config.database.url.is_some() {
            // Boxed: opening the pool (connect, migrate) is a deep future, and a caller
            // that awaits it inside its own (a Lambda function's `main`) would hit the
            // compiler's recursion limit computing that future's layout.
            let open = Box::pin(crate::store::db::open(&self.config.database));
            self.db = Some(open.await?);
        }
        Ok(self)
    }

    /// This app with the Textract client, when Textract is the OCR engine of this
    /// configuration ([`crate::config::OcrConfig::engine_for`]); built once from the
    /// AWS environment.
    pub async fn with_textract(mut self) -> App {
        let engine = self
            .config
            .ocr
            .engine_for(self.config.stage, self.artefacts_in_s3);
        if engine == crate::config::OcrEngineChoice::Textract {
            let sdk = crate::store::s3::load_sdk_config().await;
            self.textract = Some(crate::ocr::textract::client(&sdk));
        }
        self
    }

    /// This app with the LLM endpoint's client, when `LEXPIPE_LLM_BASE_URL` is set.
    ///
    /// # Errors
    /// The client cannot be built (a malformed URL or key).
    pub fn with_llm(mut self) -> Result<App, AppError> {
        self.llm = LlmClient::new(&self.config.llm)?.map(Arc::new);
        Ok(self)
    }

    /// An app with only a cache and an artefact store, every other feature off: what
    /// tests and benchmarks that exercise the steps alone start from (set the other
    /// fields as needed). The LLM client is built when the configuration names an
    /// endpoint (and left out, with a warning, if it cannot be built).
    pub fn new(config: Arc<Config>, cache: Arc<Cache>, artefacts: Arc<dyn BlobStore>) -> App {
        let mut app = App::bare(config, cache, artefacts);
        app.llm = match LlmClient::new(&app.config.llm) {
            Ok(client) => client.map(Arc::new),
            Err(e) => {
                tracing::warn!(error = %e, "no LLM client");
                None
            }
        };
        app
    }

    /// [`App::new`] without the LLM client.
    fn bare(config: Arc<Config>, cache: Arc<Cache>, artefacts: Arc<dyn BlobStore>) -> App {
        let chunking = ChunkConfig {
            min_chars: config.chunk.min_chars,
            max_chars: config.chunk.max_chars,
            overlap_chars: config.chunk.overlap_chars,
        };
        let limiter = Arc::new(RateLimiter::new(
            None,
            KeyBuilder::new(&config.env),
            config.rate_limit.clone(),
        ));
        App {
            llm: None,
            redis: None,
            redis_status: RedisStatus::Disabled,
            cache,
            locks: None,
            limiter,
            states: None,
            idempotency: None,
            db: None,
            artefacts,
            artefacts_in_s3: false,
            sources: Arc::new(SourceReader::new()),
            max_document_bytes: crate::store::source::DEFAULT_MAX_BYTES,
            output_dir: None,
            extractor: Arc::new(RuleExtractor::new()),
            chunking,
            cpu: Arc::new(tokio::sync::Semaphore::new(cpu_permits())),
            hooks: Arc::new(NoHooks),
            textract: None,
            deadline: None,
            config,
        }
    }

    /// An app whose artefacts go to `folder` (a convenience for tests and benches).
    pub fn with_folder(config: Arc<Config>, cache: Arc<Cache>, folder: impl Into<PathBuf>) -> App {
        App::new(config, cache, Arc::new(FolderStore::new(folder)))
    }
}

impl App {
    /// The validated answer to `req` from the LLM, through the LLM response cache (single
    /// flight, `LEXPIPE_CACHE_TTL_LLM_SECS`) and the shared rate limits; requests made and
    /// avoided are recorded in `meter`.
    ///
    /// # Errors
    /// No LLM is configured (as [`LlmError::Rejected`]), or the call failed.
    pub async fn ask_llm(&self, req: &JsonRequest, meter: &Meter) -> Result<Answer, LlmError> {
        let Some(llm) = &self.llm else {
            return Err(LlmError::Rejected {
                status: 0,
                message: "no LLM endpoint is configured (set LEXPIPE_LLM_BASE_URL)".into(),
            });
        };
        llm.complete(
            &self.cache,
            &self.limiter,
            self.config.cache.ttl_llm,
            req,
            meter,
        )
        .await
    }

    /// This app for one invocation that must finish by `deadline` (a clone: every
    /// client is shared).
    pub fn with_deadline(&self, deadline: SystemTime) -> App {
        App {
            deadline: Some(deadline),
            ..self.clone()
        }
    }

    /// Time left before the invocation's deadline (at least 1 ms, so that a record or
    /// lease taken at the last moment is still valid); `None` without a deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline.map(|d| {
            d.duration_since(SystemTime::now())
                .unwrap_or_default()
                .max(Duration::from_millis(1))
        })
    }

    /// `wanted` (how long the caller would hold a record or lease), cut to the time left
    /// in the invocation; the time left when the caller has no wish of its own; `None`
    /// (the callee's default) when there is neither.
    pub fn bound(&self, wanted: Option<Duration>) -> Option<Duration> {
        match (wanted, self.remaining()) {
            (Some(w), Some(r)) => Some(w.min(r)),
            (w, r) => w.or(r),
        }
    }
}

/// One permit per core (at least one).
fn cpu_permits() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

impl App {
    /// Runs CPU-bound `work` on the blocking pool once a [`App::cpu`] permit is free.
    ///
    /// # Errors
    /// The work panicked (the message names `stage`).
    pub async fn run_cpu<T, F>(&self, stage: &'static str, work: F) -> Result<T, StageError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let _permit = self
            .cpu
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| StageError::Internal {
                stage,
                message: e.to_string(),
            })?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| StageError::Internal {
                stage,
                message: e.to_string(),
            })
    }
}

/// The connection every Redis feature shares, and what to report about it.
async fn connect_redis(cfg: &Config) -> (Option<RedisHandle>, RedisStatus) {
    let f = cfg.redis.features;
    let any = f.cache || f.locks || f.rate_limit || f.state || f.idempotency;
    if !cfg.redis.enabled || !any {
        return (None, RedisStatus::Disabled);
    }
    let handle = match RedisHandle::new(cfg) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!("redis not usable ({e}); running without it");
            return (None, RedisStatus::Unavailable);
        }
    };
    match handle.connect().await {
        Ok(()) => (Some(handle), RedisStatus::Connected),
        Err(e) if cfg.redis.fallback_to_memory => {
            tracing::warn!(
                "redis at {} is unreachable ({e}): using an in-process cache, so results are \
                 not shared with other processes or later runs, and progress is not recorded. \
                 Start Redis to share them.",
                handle.address()
            );
            (None, RedisStatus::Unavailable)
        }
        Err(e) => {
            tracing::warn!(
                "redis at {} is unreachable ({e}): caches fail open (compute everything) until it is back",
                handle.address()
            );
            (Some(handle), RedisStatus::Unavailable)
        }
    }
}

/// The cache over `handle`, or in-process without one.
pub fn build_cache(cfg: &Config, handle: Option<RedisHandle>) -> Arc<Cache> {
    let keys = KeyBuilder::new(&cfg.env);
    let codec = Codec::new(cfg.cache.compress_threshold, cfg.cache.max_value_bytes);
    let backend: Arc<dyn crate::redis::CacheBackend> = match handle {
        Some(h) => Arc::new(RedisBackend::new(h, keys.clone())),
        None => Arc::new(MemoryBackend::new()),
    };
    Arc::new(Cache::new(backend, codec, keys, cfg.cache.lease))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invocation_deadline_cuts_what_callers_hold_and_nothing_else_does() {
        let app = App::with_folder(
            Arc::new(Config::local_defaults()),
            build_cache(&Config::local_defaults(), None),
            std::env::temp_dir(),
        );
        let minute = Some(Duration::from_secs(60));
        assert_eq!(app.remaining(), None);
        assert_eq!(app.bound(minute), minute);
        assert_eq!(app.bound(None), None);

        let soon = app.with_deadline(SystemTime::now() + Duration::from_secs(2));
        let left = soon.remaining().unwrap();
        assert!(left <= Duration::from_secs(2) && left > Duration::from_secs(1));
        assert!(soon.bound(minute).unwrap() <= Duration::from_secs(2));
        assert_eq!(
            soon.bound(Some(Duration::from_millis(5))),
            Some(Duration::from_millis(5))
        );
        assert!(
            soon.bound(None).is_some(),
            "the time left when the caller has no wish"
        );

        let past = app.with_deadline(SystemTime::now() - Duration::from_secs(1));
        assert_eq!(past.remaining(), Some(Duration::from_millis(1)));
    }
}
