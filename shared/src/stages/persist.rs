//! `persist`: a document's results assembled from the artefacts, written as one JSON
//! file (when the process has an output folder) and into PostgreSQL (when it has a
//! database), exactly once per result.
//!
//! Guarded by an idempotency record (operation `persist`, key = document + content +
//! pipeline version) so that a retried or duplicated call returns the stored answer
//! instead of writing again; PostgreSQL's unique constraints and `ON CONFLICT` upserts
//! are the backstop when Redis is unavailable, and the fencing token makes the database
//! refuse a write from a worker whose lease was taken over.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::app::App;
use crate::model::{Chunk, ChunkOutput, DocumentOutput, OcrResult, StructuredData};
use crate::redis::idempotency::{Idempotency, IdempotencyError, Outcome};
use crate::store::persist::{PersistReport, persist_document};
use crate::store::queue;
use crate::text::sha256_hex;

use super::artefact;
use super::resolve::Resolution;
use super::{DocumentRef, Pointer, StageError, Work};

/// The queue claim a worker (or, in the cloud, the execution `ingest` started) holds on
/// the document: writes carry its fencing token, and the idempotency record lapses with
/// its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueClaim {
    pub item_id: i64,
    pub fencing_token: u64,
    pub lease_ms: u64,
    /// The claim's attempt number (its `queue_attempts` row); 0 when unknown.
    #[serde(default)]
    pub attempt: i32,
    /// True when the execution itself owns the row's outcome (the Lambda flow: `persist`
    /// completes the row, `mark-failed` fails it). False for a queue worker, which
    /// completes, requeues or fails the row itself once the execution has ended.
    #[serde(default)]
    pub settles_row: bool,
}

impl QueueClaim {
    /// The [`queue::Claim`] this stands for, on `document`.
    pub fn claim(&self, document: &DocumentRef) -> queue::Claim {
        queue::Claim {
            item_id: self.item_id,
            document_id: document.document_uuid,
            source_path: document.source.clone(),
            attempt: self.attempt,
            fencing_token: self.fencing_token,
            lease_until: chrono::Utc::now(),
        }
    }
}

/// Input of `persist`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Input {
    pub document: DocumentRef,
    pub ocr: Pointer,
    pub chunks: Pointer,
    pub resolution: Pointer,
    pub structured: Pointer,
    /// Present when a queue worker runs the document.
    #[serde(default)]
    pub queue: Option<QueueClaim>,
}

/// Output of `persist`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    /// With a database: `written`, `already_done` or `in_progress`; null without one.
    pub persisted: Option<String>,
    /// The JSON file written, when the process has an output folder.
    pub output: Option<String>,
    pub work: Work,
}

/// The document's results, from the artefacts the earlier steps wrote.
///
/// # Errors
/// An artefact is missing; the blob store failed.
pub async fn assemble(app: &App, input: &Input) -> Result<DocumentOutput, StageError> {
    let ocr: OcrResult = artefact::load(app, &input.ocr.required("ocr")?).await?;
    let chunks: Vec<Chunk> = artefact::load(app, &input.chunks.required("chunks")?).await?;
    let res: Resolution = artefact::load(app, &input.resolution.required("resolution")?).await?;
    let structured: StructuredData =
        artefact::load(app, &input.structured.required("structured")?).await?;
    let doc = &input.document;
    Ok(DocumentOutput {
        document_uuid: doc.document_uuid.to_string(),
        source: doc.source.clone(),
        content_sha256: doc.content_sha256.clone(),
        ocr_method: ocr.method,
        pages: ocr.pages,
        chunks: chunks.iter().map(ChunkOutput::from).collect(),
        mentions: res.mentions,
        entities: res.entities,
        structured: Some(structured),
        producer: format!("lexpipe/{}", env!("CARGO_PKG_VERSION")),
    })
}

/// Writes the document's results where this process keeps them.
///
/// # Errors
/// An artefact is missing; the output file cannot be written; the database refused.
#[tracing::instrument(skip_all, fields(document_uuid = %input.document.document_uuid, stage = "persist"))]
pub async fn step(app: &App, input: Input) -> Result<Output, StageError> {
    input.document.validate()?;
    let out = assemble(app, &input).await?;
    let mut reused = true;
    let mut output = None;
    if let Some(dir) = &app.output_dir {
        let file = dir.join(output_file_name(&out.source, &out.document_uuid));
        let wrote = write_json_if_changed(&file, &out)
            .await
            .map_err(|e| StageError::Write {
                what: file.display().to_string(),
                message: e.to_string(),
            })?;
        reused &= !wrote;
        output = Some(file.display().to_string());
    }
    let mut persisted = None;
    if let Some(pool) = &app.db {
        let claim = input.queue;
        // The record lapses with the claim's lease, and never after the invocation's
        // deadline (a Lambda that times out mid-write must not block its retry).
        let deadline = app.bound(claim.map(|c| std::time::Duration::from_millis(c.lease_ms)));
        let outcome = run_owned(
            pool,
            app.idempotency.as_deref(),
            &out,
            claim.map(|c| c.fencing_token),
            deadline,
        )
        .await?;
        reused &= !matches!(outcome, PersistOutcome::Written { .. });
        persisted = Some(outcome.name().to_string());
        if let Some(c) = claim.filter(|c| c.settles_row)
            && !queue::complete(pool, &c.claim(&input.document)).await?
        {
            // A newer claim owns the row now: its own run settles it.
            tracing::warn!(
                item_id = c.item_id,
                "queue row taken over; left to its new owner"
            );
        }
    }
    Ok(Output {
        persisted,
        output,
        work: Work::one(reused),
    })
}

/// `{file stem, made safe}-{first 8 of uuid}.json`: readable, and unique per content.
/// `source` is a path or an `s3://` URL.
pub fn output_file_name(source: &str, uuid: &str) -> String {
    let stem = Path::new(source)
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let safe: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    format!(
        "{}-{}.json",
        if safe.is_empty() { "document" } else { &safe },
        &uuid[..8.min(uuid.len())]
    )
}

/// Writes `value` as pretty JSON to `path` atomically, unless the file already holds
/// exactly those bytes. True when it wrote.
async fn write_json_if_changed<T: Serialize>(path: &PathBuf, value: &T) -> std::io::Result<bool> {
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    if let Ok(existing) = tokio::fs::read(path).await
        && existing == bytes
    {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let tmp = path.with_extension(format!(
        "tmp-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, path).await?;
    Ok(true)
}

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
        "ocr{}-{}.chunk{}.rules{}.resolve{}.structured{}",
        super::ocr::SCHEMA,
        crate::ocr::PDF_TEXT_VERSION,
        crate::chunk::CHUNKER_VERSION,
        crate::extract::RuleExtractor::VERSION,
        crate::resolve::RESOLVER_VERSION,
        super::structured::VERSION
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
    // An LLM-described document names its model, prompt and settings too, so that
    // switching the extractor writes anew instead of meeting the rules' record.
    let llm = out
        .structured
        .as_ref()
        .map(|s| s.model_version.as_str())
        .filter(|v| v.starts_with("llm-"))
        .map(|v| format!(".{v}"))
        .unwrap_or_default();
    let key = format!(
        "{}:{}:{}{llm}",
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
