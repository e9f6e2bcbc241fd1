//! The pipeline's stages, each `run(deps, input)`, with its caching.
//!
//! A stage takes only what it uses ([`Deps`]) and returns its output with where it came
//! from (computed or cache), so that the runner can report per-stage reuse. The local
//! runner ([`crate::runner`]) calls them in order; the Lambda functions will call the same
//! functions with inputs read from the state machine's JSON.

pub mod chunk;
pub mod entities;
pub mod ocr;
pub mod persist;
pub mod resolve;

use std::sync::Arc;

use crate::chunk::ChunkConfig;
use crate::config::Config;
use crate::extract::RuleExtractor;
use crate::ocr::OcrError;
use crate::redis::Cache;

/// Called before each stage of each document: the seam for fault injection (tests make
/// a stage fail once to prove resume) and for drills. The default does nothing.
pub trait StageHooks: Send + Sync + std::fmt::Debug {
    /// Return an error to make `stage` fail for `document_uuid`.
    ///
    /// # Errors
    /// The failure to inject.
    fn before_stage(&self, document_uuid: &str, stage: &'static str) -> Result<(), StageError> {
        let _ = (document_uuid, stage);
        Ok(())
    }
}

/// The hooks of production runs: none.
#[derive(Debug, Default)]
pub struct NoHooks;

impl StageHooks for NoHooks {}

/// What the stages need, built once per process and lent to each call.
#[derive(Clone)]
pub struct Deps {
    pub config: Arc<Config>,
    pub cache: Arc<Cache>,
    pub extractor: Arc<RuleExtractor>,
    pub chunking: ChunkConfig,
    pub hooks: Arc<dyn StageHooks>,
    /// Per-document progress (`doc_state`), when Redis state tracking is on.
    pub states: Option<Arc<dyn crate::redis::state::DocumentStates>>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("cache", &self.cache)
            .field("chunking", &self.chunking)
            .field("hooks", &self.hooks)
            .field("states", &self.states.is_some())
            .finish_non_exhaustive()
    }
}

impl Deps {
    pub fn new(config: Arc<Config>, cache: Arc<Cache>) -> Deps {
        let chunking = ChunkConfig {
            min_chars: config.chunk.min_chars,
            max_chars: config.chunk.max_chars,
            overlap_chars: config.chunk.overlap_chars,
        };
        Deps {
            config,
            cache,
            extractor: Arc::new(RuleExtractor::new()),
            chunking,
            hooks: Arc::new(NoHooks),
            states: None,
        }
    }
}

/// Stage names, as used in summaries, document state and the state machine.
pub mod names {
    pub const OCR: &str = "ocr";
    pub const CHUNK: &str = "chunk";
    pub const ENTITIES: &str = "extract_entities";
    pub const RESOLVE: &str = "resolve_entities";
    pub const PERSIST: &str = "persist";
    /// The analysis stages, in pipeline order.
    pub const ALL: [&str; 4] = [OCR, CHUNK, ENTITIES, RESOLVE];
    /// Every stage of a queued document, persist included.
    pub const WITH_PERSIST: [&str; 5] = [OCR, CHUNK, ENTITIES, RESOLVE, PERSIST];
}

/// Why a stage failed for a document. Each variant is terminal (retrying the same bytes
/// gives the same answer) or retryable, and has a stable `error_type` name.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{0}")]
    Ocr(#[from] OcrError),
    #[error("cannot read {what}: {message}")]
    Read { what: String, message: String },
    #[error("file is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("internal error in stage {stage}: {message}")]
    Internal {
        stage: &'static str,
        message: String,
    },
    #[error("{0}")]
    Db(#[from] crate::store::db::DbError),
    #[error("{0}")]
    Idempotency(#[from] crate::redis::idempotency::IdempotencyError),
    /// The queued file no longer has the content it was enqueued with. Terminal: enqueue
    /// the new content instead.
    #[error("{what} changed since it was enqueued (its content hash differs)")]
    ContentChanged { what: String },
    /// A failure injected through [`StageHooks`] (fault injection in tests and drills).
    #[error("stage {stage} failed: {message}")]
    Injected {
        stage: &'static str,
        message: String,
    },
}

impl StageError {
    /// Stable name, matched by Step Functions `Retry`/`Catch` and shown in status.
    pub fn error_type(&self) -> &'static str {
        match self {
            StageError::Ocr(e) => e.error_type(),
            StageError::Read { .. } => "ReadError",
            StageError::TooLarge { .. } => "DocumentTooLarge",
            StageError::Internal { .. } => "InternalError",
            StageError::Db(e) => e.error_type(),
            StageError::Idempotency(e) => e.error_type(),
            StageError::Injected { .. } => "InjectedFailure",
            StageError::ContentChanged { .. } => "ContentChanged",
        }
    }

    /// Would the same call succeed later?
    pub fn is_retryable(&self) -> bool {
        match self {
            StageError::Read { .. } | StageError::Internal { .. } | StageError::Injected { .. } => {
                true
            }
            StageError::Db(e) => e.is_retryable(),
            StageError::Idempotency(e) => e.is_retryable(),
            StageError::Ocr(_)
            | StageError::TooLarge { .. }
            | StageError::ContentChanged { .. } => false,
        }
    }
}
