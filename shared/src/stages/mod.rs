//! The pipeline's stages, each `run(deps, input)`, with its caching.
//!
//! A stage takes only what it uses ([`Deps`]) and returns its output with where it came
//! from (computed or cache), so that the runner can report per-stage reuse. The local
//! runner ([`crate::runner`]) calls them in order; the Lambda functions will call the same
//! functions with inputs read from the state machine's JSON.

pub mod chunk;
pub mod entities;
pub mod ocr;
pub mod resolve;

use std::sync::Arc;

use crate::chunk::ChunkConfig;
use crate::config::Config;
use crate::extract::RuleExtractor;
use crate::ocr::OcrError;
use crate::redis::Cache;

/// What the stages need, built once per process and lent to each call.
#[derive(Debug, Clone)]
pub struct Deps {
    pub config: Arc<Config>,
    pub cache: Arc<Cache>,
    pub extractor: Arc<RuleExtractor>,
    pub chunking: ChunkConfig,
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
        }
    }
}

/// Stage names, as used in summaries, document state and the state machine.
pub mod names {
    pub const OCR: &str = "ocr";
    pub const CHUNK: &str = "chunk";
    pub const ENTITIES: &str = "extract_entities";
    pub const RESOLVE: &str = "resolve_entities";
    /// In pipeline order.
    pub const ALL: [&str; 4] = [OCR, CHUNK, ENTITIES, RESOLVE];
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
}

impl StageError {
    /// Stable name, matched by Step Functions `Retry`/`Catch` and shown in status.
    pub fn error_type(&self) -> &'static str {
        match self {
            StageError::Ocr(e) => e.error_type(),
            StageError::Read { .. } => "ReadError",
            StageError::TooLarge { .. } => "DocumentTooLarge",
            StageError::Internal { .. } => "InternalError",
        }
    }

    /// Would the same call succeed later?
    pub fn is_retryable(&self) -> bool {
        matches!(self, StageError::Read { .. } | StageError::Internal { .. })
    }
}
