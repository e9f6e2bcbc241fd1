//! OCR steps: `ocr-start` and `ocr-poll`, the text of every page.
//!
//! `ocr-start` returns `ready: true` with the artefact when the text is at hand (always,
//! for the PDF text layer); an asynchronous engine (Textract) returns `ready: false`, a
//! job and a suggested wait, and the state machine waits and calls `ocr-poll` until the
//! text is ready or the poll cap is reached. The result is cached by content hash and
//! method, so the same bytes under any name are read once, and written as the artefact
//! `processed/{sha}/ocr-{method}-v{SCHEMA}.json.zst`.

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::model::OcrResult;
use crate::ocr::{PDF_TEXT_METHOD, PDF_TEXT_VERSION, extract_pdf_text};
use crate::redis::{CacheSpec, KeyPart};
use crate::text::sha256_hex;

use super::artefact::{self, Produced};
use super::{DocumentRef, StageError, Work};

/// Namespace of OCR results in Redis and in the counters.
pub const NAMESPACE: &str = "ocr";
/// Bump when the text a method produces changes: old entries stop being read.
pub const SCHEMA: u32 = 1;

/// Input of `ocr-start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartInput {
    pub document: DocumentRef,
}

/// Output of `ocr-start` and `ocr-poll`, and input of the steps that read the text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OcrOutput {
    /// The text is available: `artefact` names it.
    pub ready: bool,
    /// Key of the OCR artefact (an [`OcrResult`]) once ready.
    pub artefact: Option<String>,
    /// `pdf_text-1`, later `textract`, …
    pub method: String,
    pub pages: usize,
    /// Pages without a text layer (scans awaiting image OCR).
    pub pages_without_text: Vec<u32>,
    /// The asynchronous job, while one runs.
    pub job_id: Option<String>,
    /// Seconds the state machine waits before the next poll.
    pub wait_seconds: u64,
    /// Polls made so far (the state machine caps them).
    pub polls: u32,
    pub work: Work,
}

/// Input of `ocr-poll`: the document and the last OCR output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PollInput {
    pub document: DocumentRef,
    pub ocr: OcrOutput,
}

/// The method name of the PDF text layer, with its version.
pub fn pdf_text_method() -> String {
    format!("{PDF_TEXT_METHOD}-{PDF_TEXT_VERSION}")
}

/// The Redis cache entry of a document's OCR result.
pub fn cache_spec(app: &App, content_sha256: &str, method: &str) -> CacheSpec {
    CacheSpec {
        namespace: NAMESPACE,
        key: app.cache.keys().key(
            NAMESPACE,
            SCHEMA,
            &[KeyPart::Digest(content_sha256), KeyPart::Id(method)],
        ),
        schema: SCHEMA,
        ttl: app.config.cache.ttl_ocr,
    }
}

/// The artefact key of a document's OCR result.
pub fn artefact_key(content_sha256: &str, method: &str) -> String {
    artefact::key(content_sha256, &format!("ocr-{method}-v{SCHEMA}"))
}

/// Text of every page of the document: from the cache, the artefact, or by reading the
/// PDF (whose bytes must still hash to the document's content hash).
///
/// # Errors
/// The file is not a readable PDF ([`StageError::Ocr`], terminal, never cached); the
/// source cannot be read or changed; the blob store failed.
#[tracing::instrument(skip_all, fields(document_uuid = %input.document.document_uuid, stage = "ocr"))]
pub async fn start(app: &App, input: StartInput) -> Result<OcrOutput, StageError> {
    input.document.validate()?;
    let doc = &input.document;
    let method = pdf_text_method();
    let key = artefact_key(&doc.content_sha256, &method);
    let spec = cache_spec(app, &doc.content_sha256, &method);
    let produced = artefact::produce(app, &key, Some(&spec), || async {
        let bytes = app
            .sources
            .read(&doc.source, app.max_document_bytes)
            .await?;
        if sha256_hex(&bytes) != doc.content_sha256 {
            return Err(StageError::ContentChanged {
                what: doc.source.clone(),
            });
        }
        app.run_cpu("ocr", move || extract_pdf_text(&bytes))
            .await?
            .map_err(StageError::from)
    })
    .await?;
    Ok(ready_output(key, method, produced))
}

fn ready_output(key: String, method: String, produced: Produced<OcrResult>) -> OcrOutput {
    OcrOutput {
        ready: true,
        artefact: Some(key),
        method,
        pages: produced.value.pages.len(),
        pages_without_text: produced.value.pages_without_text(),
        job_id: None,
        wait_seconds: 0,
        polls: 0,
        work: Work::one(produced.reused),
    }
}

/// Checks on an OCR job. The PDF text layer is ready at once, so a poll finds the
/// artefact `ocr-start` wrote (or reads the text again if it has gone).
///
/// # Errors
/// As [`start`].
#[tracing::instrument(skip_all, fields(document_uuid = %input.document.document_uuid, stage = "ocr"))]
pub async fn poll(app: &App, input: PollInput) -> Result<OcrOutput, StageError> {
    let polls = input.ocr.polls.saturating_add(1);
    let mut out = start(
        app,
        StartInput {
            document: input.document,
        },
    )
    .await?;
    out.polls = polls;
    Ok(out)
}
