//! Persist stage: a document's results into PostgreSQL, exactly once per result.
//!
//! Guarded by an idempotency record (operation `persist`, key = document + content +
//! pipeline version) so that a retried or duplicated call returns the stored answer
//! instead of writing again; PostgreSQL's unique constraints and `ON CONFLICT` upserts
//! are the backstop when Redis is unavailable, and the fencing token makes the database
//! refuse a write from a worker whose lease was taken over.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::redis::idempotency::{Idempotency, IdempotencyError, Outcome};
use crate::runner::DocumentOutput;
use crate::store::persist::{PersistReport, persist_document};
use crate::text::sha256_hex;

use super::StageError;

/// Idempotency operation name.
pub const OPERATION: &str = "persist";

/// What a persist call did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PersistOutcome {
    /// This call wrote the rows.
    Written { report: PersistReport },
    /// An earlier call with the same key wrote them; its report.
    AlreadyDone { report: serde_json::Value },
    /// Another call is writing them right now.
    InProgress,
}

impl PersistOutcome {
    /// `written`, `already_done` or `in_progress`.
    pub fn name(&self) -> &'static str {
        match self {
            PersistOutcome::Written { .. } => "written",
            PersistOutcome::AlreadyDone { .. } => "already_done",
            PersistOutcome::InProgress => "in_progress",
        }
    }
}

/// [`run`] for a caller that owns the document's write (a queue worker holding the item's
/// claim, or a `lexpipe process` run): when another writer holds the record — writing now,
/// or dead mid-write with its record not yet lapsed — write anyway. The database's fencing
/// check and upserts make that safe, and the caller never reports a document persisted
/// without its rows.
///
/// # Errors
/// As [`run`].
pub async fn run_owned(
    pool: &PgPool,
    idempotency: Option<&Idempotency>,
    out: &DocumentOutput,
    fencing_token: Option<u64>,
    deadline: Option<std::time::Duration>,
) -> Result<PersistOutcome, StageError> {
    match run(pool, idempotency, out, fencing_token, deadline).await? {
        PersistOutcome::InProgress => {
            let report = persist_document(pool, out, fencing_token).await?;
            Ok(PersistOutcome::Written { report })
        }
        done => Ok(done),
    }
}

/// Versions of everything that shapes a document's results: a new extractor writes anew
/// instead of colliding with the record of the old one.
pub fn pipeline_version() -> String {
    format!(
        "ocr{}-{}.chunk{}.rules{}.resolve{}",
        super::ocr::SCHEMA,
        crate::ocr::PDF_TEXT_VERSION,
        crate::chunk::CHUNKER_VERSION,
        crate::extract::RuleExtractor::VERSION,
        crate::resolve::RESOLVER_VERSION
    )
}

/// Hash of the results (not of where they came from, nor of which build wrote them: the
/// same content uploaded under two names is one document with one result).
pub fn payload_hash(out: &DocumentOutput) -> String {
    let mut neutral = out.clone();
    neutral.source = String::new();
    // The producer names the crate version, which the key's pipeline version covers.
    neutral.producer = String::new();
    sha256_hex(serde_json::to_vec(&neutral).unwrap_or_default())
}

/// Writes `out` once.
///
/// # Errors
/// The database refused or failed ([`StageError::Db`]), or the idempotency record holds
/// another payload for the same key ([`StageError::Idempotency`]).
#[tracing::instrument(skip_all, fields(document_uuid = %out.document_uuid, stage = "persist"))]
///
/// `deadline` bounds how long this call's idempotency record stays `IN_PROGRESS` if the
/// caller dies: a queue worker passes its lease, so that the worker that reclaims the item
/// can take the record over instead of waiting for the default expiry.
pub async fn run(
    pool: &PgPool,
    idempotency: Option<&Idempotency>,
    out: &DocumentOutput,
    fencing_token: Option<u64>,
    deadline: Option<std::time::Duration>,
) -> Result<PersistOutcome, StageError> {
    let Some(idem) = idempotency else {
        let report = persist_document(pool, out, fencing_token).await?;
        return Ok(PersistOutcome::Written { report });
    };
    let key = format!(
        "{}:{}:{}",
        out.document_uuid,
        out.content_sha256,
        pipeline_version()
    );
    match idem
        .begin(OPERATION, &key, &payload_hash(out), deadline)
        .await
    {
        Ok(Outcome::Proceed(guard)) => match persist_document(pool, out, fencing_token).await {
            Ok(report) => {
                if let Err(e) = guard.complete(&report).await {
                    // The rows are written; a retry will upsert the same rows.
                    tracing::warn!(error = %e, "persisted, but the idempotency record was not completed");
                }
                Ok(PersistOutcome::Written { report })
            }
            Err(e) => {
                let _ = guard.fail().await;
                Err(e.into())
            }
        },
        Ok(Outcome::AlreadyDone(report)) => Ok(PersistOutcome::AlreadyDone { report }),
        Ok(Outcome::InProgress) => Ok(PersistOutcome::InProgress),
        Err(IdempotencyError::Unavailable(e)) => {
            // Fail closed on the record, not on the work: the database's constraints and
            // upserts make a repeated write harmless, so write without the record.
            tracing::warn!(error = %e, "idempotency unavailable; relying on database constraints");
            let report = persist_document(pool, out, fencing_token).await?;
            Ok(PersistOutcome::Written { report })
        }
        Err(e) => Err(e.into()),
    }
}
