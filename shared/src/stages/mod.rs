//! The pipeline's stages, each a step: `run(app, Input) -> Result<Output, StageError>`.
//!
//! `Input` and `Output` are serde types that are the state machine's JSON
//! (`statemachine/pipeline.asl.json`): ids and pointers only (document uuid, content
//! hash, source location, artefact keys, counts), never document text, so that every
//! payload stays far below Step Functions' 256 KiB. What a step produces is a durable
//! artefact in the blob store ([`artefact`]), content-addressed under
//! `processed/{content_sha256}/`; a step whose artefact exists returns it without
//! recomputing, even after Redis was flushed. Redis stays the fast path in front (the
//! caches with single flight).
//!
//! The same step is called by a Lambda function, by the local state machine runner
//! ([`crate::pipeline`]) and by tests.
//!
//! ## Layout
//! - [`artefact`]: keys, encoding and `produce` (cache → artefact → compute).
//! - [`ocr`]: `ocr-start` and `ocr-poll`.
//! - [`chunk`], [`entities`] (one batch of chunks), [`resolve`], [`structured`].
//! - [`persist`]: JSON file and PostgreSQL, exactly once per result.
//! - [`mark_failed`]: records why a document failed.

pub mod artefact;
pub mod chunk;
pub mod entities;
pub mod mark_failed;
pub mod ocr;
pub mod persist;
pub mod resolve;
pub mod structured;

use serde::{Deserialize, Serialize};

use crate::ocr::OcrError;
use crate::store::blob::BlobError;

/// Called before each stage of each document: the seam for fault injection (tests make
/// a stage fail once to prove resume, retry and catch) and for drills. The default does
/// nothing.
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

/// Stage names, as used in summaries, document state and counters.
pub mod names {
    pub const OCR: &str = "ocr";
    pub const CHUNK: &str = "chunk";
    pub const ENTITIES: &str = "extract_entities";
    pub const RESOLVE: &str = "resolve_entities";
    pub const STRUCTURED: &str = "extract_structured";
    pub const PERSIST: &str = "persist";
    /// The analysis stages, in pipeline order.
    pub const ANALYSIS: [&str; 5] = [OCR, CHUNK, ENTITIES, RESOLVE, STRUCTURED];
    /// Every stage of a document, in pipeline order.
    pub const ALL: [&str; 6] = [OCR, CHUNK, ENTITIES, RESOLVE, STRUCTURED, PERSIST];
}

/// Task names: the functions the state machine calls (Lambda function names in the
/// cloud, in-process steps locally), and the stage each one records.
pub mod tasks {
    pub const OCR_START: &str = "ocr-start";
    pub const OCR_POLL: &str = "ocr-poll";
    pub const CHUNK: &str = "chunk";
    pub const EXTRACT_ENTITIES: &str = "extract-entities";
    pub const RESOLVE_ENTITIES: &str = "resolve-entities";
    pub const EXTRACT_STRUCTURED: &str = "extract-structured";
    pub const PERSIST: &str = "persist";
    pub const MARK_FAILED: &str = "mark-failed";
    /// Every task.
    pub const ALL: [&str; 8] = [
        OCR_START,
        OCR_POLL,
        CHUNK,
        EXTRACT_ENTITIES,
        RESOLVE_ENTITIES,
        EXTRACT_STRUCTURED,
        PERSIST,
        MARK_FAILED,
    ];
}

/// Which document a step works on, and where its bytes are: what every step receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentRef {
    /// [`crate::model::document_uuid`] of the content hash.
    pub document_uuid: uuid::Uuid,
    /// Hex SHA-256 of the document's bytes.
    pub content_sha256: String,
    /// Where the bytes are: a path, or `s3://bucket/key`.
    pub source: String,
}

impl DocumentRef {
    /// A reference to the document with these bytes' hash at `source`.
    pub fn new(content_sha256: &str, source: &str) -> DocumentRef {
        DocumentRef {
            document_uuid: crate::model::document_uuid(content_sha256),
            content_sha256: content_sha256.to_string(),
            source: source.to_string(),
        }
    }

    /// Checks what a step must be able to trust: a SHA-256 in hex, and the uuid that
    /// belongs to it.
    ///
    /// # Errors
    /// [`StageError::InvalidInput`] naming the field.
    pub fn validate(&self) -> Result<(), StageError> {
        let sha = &self.content_sha256;
        if sha.len() != 64
            || !sha
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(StageError::InvalidInput {
                message: "document.content_sha256 is not 64 lowercase hex digits".into(),
            });
        }
        if crate::model::document_uuid(sha) != self.document_uuid {
            return Err(StageError::InvalidInput {
                message: "document.document_uuid does not belong to document.content_sha256".into(),
            });
        }
        Ok(())
    }
}

/// A pointer to an earlier step's artefact: the only field a step reads of that step's
/// output. `None` when the earlier step has not produced it (OCR not ready).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pointer {
    pub artefact: Option<String>,
}

impl Pointer {
    /// The artefact key.
    ///
    /// # Errors
    /// [`StageError::InvalidInput`] naming `what` when there is none.
    pub fn required(&self, what: &str) -> Result<String, StageError> {
        self.artefact
            .clone()
            .ok_or_else(|| StageError::InvalidInput {
                message: format!("{what}.artefact is missing"),
            })
    }
}

/// How much of a step's work was done now and how much was reused (a cache hit, a
/// result another task computed, or an artefact already written). Reported per stage in
/// the run summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Work {
    pub computed: u64,
    pub reused: u64,
}

impl Work {
    /// One unit of work, computed or reused.
    pub fn one(reused: bool) -> Work {
        if reused {
            Work {
                computed: 0,
                reused: 1,
            }
        } else {
            Work {
                computed: 1,
                reused: 0,
            }
        }
    }
}

/// The stable error names Step Functions `Retry`/`Catch` match on, and status shows.
/// A test checks that every `ErrorEquals` in `statemachine/` names one of them.
pub mod errors {
    pub const READ_ERROR: &str = "ReadError";
    pub const WRITE_ERROR: &str = "WriteError";
    pub const DOCUMENT_TOO_LARGE: &str = "DocumentTooLarge";
    pub const INTERNAL_ERROR: &str = "InternalError";
    pub const INJECTED_FAILURE: &str = "InjectedFailure";
    pub const CONTENT_CHANGED: &str = "ContentChanged";
    pub const INVALID_INPUT: &str = "InvalidInput";
    pub const ARTEFACT_MISSING: &str = "ArtefactMissing";
    pub const BLOB_STORE_UNAVAILABLE: &str = "BlobStoreUnavailable";
    pub const BLOB_STORE_ERROR: &str = "BlobStoreError";
    /// Raised by the state machine itself when OCR polling exceeds its cap.
    pub const OCR_TIMEOUT: &str = "OcrTimeout";

    /// Every name a step can return: these, the OCR errors and the database and
    /// idempotency errors.
    pub fn all() -> Vec<&'static str> {
        let mut v = vec![
            READ_ERROR,
            WRITE_ERROR,
            DOCUMENT_TOO_LARGE,
            INTERNAL_ERROR,
            INJECTED_FAILURE,
            CONTENT_CHANGED,
            INVALID_INPUT,
            ARTEFACT_MISSING,
            BLOB_STORE_UNAVAILABLE,
            BLOB_STORE_ERROR,
            OCR_TIMEOUT,
        ];
        v.extend(crate::ocr::error_types::ALL);
        v.extend(crate::ocr::textract::error_types::ALL);
        v.extend(RATE_LIMIT_ALL);
        v.extend(crate::store::db::error_types::ALL);
        v.extend(crate::redis::idempotency::error_types::ALL);
        v.extend(crate::llm::error_types::ALL);
        v
    }

    /// Names of the rate limiter's errors (`RateLimitError::error_type`).
    pub const RATE_LIMIT_ALL: [&str; 2] = ["RateLimitDeadlineExceeded", "RateLimitCostAboveLimit"];

    /// Names of errors worth retrying: the same call may succeed later.
    pub fn is_retryable(name: &str) -> bool {
        [
            crate::ocr::textract::error_types::THROTTLED,
            crate::ocr::textract::error_types::UNAVAILABLE,
            RATE_LIMIT_ALL[0],
            READ_ERROR,
            INTERNAL_ERROR,
            BLOB_STORE_UNAVAILABLE,
            crate::store::db::error_types::UNAVAILABLE,
            crate::store::db::error_types::CONFLICT,
            crate::redis::idempotency::error_types::UNAVAILABLE,
            crate::redis::idempotency::error_types::SUPERSEDED,
        ]
        .contains(&name)
            || crate::llm::error_types::RETRYABLE.contains(&name)
    }
}

/// Why a stage failed for a document. Each variant is terminal (retrying the same input
/// gives the same answer) or retryable, and has a stable `error_type` name.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{0}")]
    Ocr(#[from] OcrError),
    /// The document could not be read. Retryable: a file system or network hiccup.
    #[error("cannot read {what}: {message}")]
    Read { what: String, message: String },
    /// An output could not be written (disk full, permissions). Terminal.
    #[error("cannot write {what}: {message}")]
    Write { what: String, message: String },
    #[error("file is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("internal error in stage {stage}: {message}")]
    Internal {
        stage: &'static str,
        message: String,
    },
    /// Textract failed, refused, throttled, or the limiter gave no grant in time.
    #[error("{0}")]
    Textract(#[from] crate::ocr::textract::TextractError),
    /// A step's error with the paid API usage it incurred before failing (a throttled
    /// start was still a request the endpoint received), so that the cost ledger counts it.
    /// Named, retried and shown as the error it wraps.
    #[error("{error}")]
    WithUsage {
        error: Box<StageError>,
        usage: crate::cost::Ledger,
    },
    #[error("{0}")]
    Db(#[from] crate::store::db::DbError),
    #[error("{0}")]
    Idempotency(#[from] crate::redis::idempotency::IdempotencyError),
    /// The blob store failed (artefacts, or an S3 input).
    #[error("{0}")]
    Blob(#[from] BlobError),
    /// An artefact a step needs is not in the store (deleted, or another store was
    /// configured between steps). Terminal.
    #[error("artefact {key} is missing from the artefact store")]
    ArtefactMissing { key: String },
    /// A step's input is malformed (a state machine or caller bug). Terminal.
    #[error("invalid step input: {message}")]
    InvalidInput { message: String },
    /// The queued file no longer has the content it was enqueued with. Terminal: enqueue
    /// the new content instead.
    #[error("{what} changed since it was enqueued (its content hash differs)")]
    ContentChanged { what: String },
    /// A state machine execution ended in failure: the name and cause of the error that
    /// ended it (the step's own, or one the state machine raised).
    #[error("{cause}")]
    Execution { error: String, cause: String },
    /// The LLM gave no usable answer for `scope` (a chunk, or the document): unavailable or
    /// rate limited (retryable), or refused or invalid twice (terminal).
    #[error("LLM failed on {scope}: {source}")]
    Llm {
        scope: String,
        source: crate::llm::LlmError,
    },
    /// A failure injected through [`StageHooks`] (fault injection in tests and drills).
    /// Terminal, so that the state machine does not retry it away.
    #[error("stage {stage} failed: {message}")]
    Injected {
        stage: &'static str,
        message: String,
    },
}

impl From<crate::store::source::SourceError> for StageError {
    fn from(e: crate::store::source::SourceError) -> StageError {
        use crate::store::source::SourceError;
        match e {
            SourceError::Read { what, message } => StageError::Read { what, message },
            SourceError::TooLarge { size, limit } => StageError::TooLarge { size, limit },
            SourceError::Blob(b) => StageError::Blob(b),
        }
    }
}

impl StageError {
    /// Stable name, matched by Step Functions `Retry`/`Catch` and shown in status.
    pub fn error_type(&self) -> &str {
        match self {
            StageError::Execution { error, .. } => error,
            StageError::Ocr(e) => e.error_type(),
            StageError::Read { .. } => errors::READ_ERROR,
            StageError::Write { .. } => errors::WRITE_ERROR,
            StageError::TooLarge { .. } => errors::DOCUMENT_TOO_LARGE,
            StageError::Internal { .. } => errors::INTERNAL_ERROR,
            StageError::Textract(e) => e.error_type(),
            StageError::WithUsage { error, .. } => error.error_type(),
            StageError::Db(e) => e.error_type(),
            StageError::Idempotency(e) => e.error_type(),
            StageError::Blob(BlobError::Unavailable { .. }) => errors::BLOB_STORE_UNAVAILABLE,
            StageError::Blob(_) => errors::BLOB_STORE_ERROR,
            StageError::ArtefactMissing { .. } => errors::ARTEFACT_MISSING,
            StageError::InvalidInput { .. } => errors::INVALID_INPUT,
            StageError::Injected { .. } => errors::INJECTED_FAILURE,
            StageError::ContentChanged { .. } => errors::CONTENT_CHANGED,
            StageError::Llm { source, .. } => source.error_type(),
        }
    }

    /// Would the same call succeed later?
    pub fn is_retryable(&self) -> bool {
        errors::is_retryable(self.error_type())
    }

    /// This error with `usage` attached (unless nothing was used).
    pub fn with_usage(self, usage: crate::cost::Ledger) -> StageError {
        if usage.is_empty() {
            return self;
        }
        match self {
            StageError::WithUsage {
                error,
                usage: mut before,
            } => {
                before.add(&usage);
                StageError::WithUsage {
                    error,
                    usage: before,
                }
            }
            error => StageError::WithUsage {
                error: Box::new(error),
                usage,
            },
        }
    }

    /// The paid API usage the failed step incurred, if it reported any.
    pub fn usage(&self) -> Option<&crate::cost::Ledger> {
        match self {
            StageError::WithUsage { usage, .. } => Some(usage),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_type_is_listed_and_retryability_follows_the_name() {
        let all = errors::all();
        let samples = [
            StageError::Read {
                what: "x".into(),
                message: "y".into(),
            },
            StageError::Write {
                what: "x".into(),
                message: "y".into(),
            },
            StageError::TooLarge { size: 2, limit: 1 },
            StageError::Internal {
                stage: "ocr",
                message: "x".into(),
            },
            StageError::Blob(BlobError::Unavailable {
                location: "s3://b/k".into(),
                message: "timeout".into(),
            }),
            StageError::Blob(BlobError::Write {
                location: "s3://b/k".into(),
                message: "denied".into(),
            }),
            StageError::ArtefactMissing { key: "k".into() },
            StageError::InvalidInput {
                message: "x".into(),
            },
            StageError::ContentChanged { what: "x".into() },
            StageError::Injected {
                stage: "ocr",
                message: "x".into(),
            },
            StageError::Ocr(OcrError::Empty),
            StageError::Textract(crate::ocr::textract::TextractError::Throttled {
                operation: "StartDocumentTextDetection",
                message: "slow down".into(),
            }),
            StageError::Textract(crate::ocr::textract::TextractError::JobFailed {
                job_id: "j".into(),
                message: "bad page".into(),
            }),
            StageError::Textract(crate::ocr::textract::TextractError::RateLimit(
                crate::redis::ratelimit::RateLimitError::DeadlineExceeded {
                    api: crate::redis::ratelimit::Api::TextractGet,
                    waited: std::time::Duration::from_secs(1),
                },
            )),
            StageError::Llm {
                scope: "chunk c0".into(),
                source: crate::llm::LlmError::Unavailable {
                    attempts: 4,
                    message: "HTTP 500".into(),
                },
            },
            StageError::Llm {
                scope: "chunk c0".into(),
                source: crate::llm::LlmError::InvalidResponse {
                    schema: "entities".into(),
                    problem: "not JSON".into(),
                },
            },
        ];
        for e in &samples {
            assert!(
                all.contains(&e.error_type()),
                "{} not listed",
                e.error_type()
            );
        }
        assert!(samples[0].is_retryable());
        assert!(samples[4].is_retryable());
        assert!(!samples[5].is_retryable());
        assert!(!samples[9].is_retryable(), "injected failures are terminal");
        assert!(samples[11].is_retryable(), "a throttled call is retried");
        assert!(!samples[12].is_retryable(), "a failed job is terminal");
        assert!(samples[13].is_retryable(), "a busy limit is retried");
        assert!(samples[14].is_retryable(), "an unavailable LLM is retried");
        assert!(!samples[15].is_retryable(), "an invalid answer is not");
    }

    #[test]
    fn a_document_ref_must_carry_the_uuid_of_its_hash() {
        let sha = crate::text::sha256_hex(b"x");
        let good = DocumentRef::new(&sha, "a.pdf");
        assert!(good.validate().is_ok());
        let mut bad = good.clone();
        bad.document_uuid = uuid::Uuid::nil();
        assert_eq!(
            bad.validate().unwrap_err().error_type(),
            errors::INVALID_INPUT
        );
        let mut bad = good;
        bad.content_sha256 = "ABC".into();
        assert!(bad.validate().is_err());
    }
}
