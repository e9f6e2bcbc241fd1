//! The local batch run behind `lexpipe process`: every document through the state
//! machine definition (`statemachine/pipeline.asl.json`, executed by [`crate::asl`] with
//! each task resolved to the in-process step), with bounded concurrency; one summary.
//!
//! A document that fails (not a PDF, corrupt, encrypted, empty, unreadable) is recorded
//! with its error and the batch goes on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::App;
use crate::asl;
use crate::cost::Ledger;
use crate::model::DocumentStatus;
use crate::pipeline::{self, LocalTasks, StageTally};
use crate::redis::{NamespaceStats, RedisStatus};
use crate::stages::{DocumentRef, StageError, names};
use crate::text::sha256_hex;

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where the per-document JSON files go (the app's output folder, when it has none).
    pub out_dir: PathBuf,
    /// Documents processed at once.
    pub concurrency: usize,
    /// Multiplies every `Wait` and `Retry` delay of the state machine (1.0; tests use 0).
    pub time_scale: f64,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            out_dir: PathBuf::from("out"),
            concurrency: 4,
            time_scale: 1.0,
        }
    }
}

/// What the progress display is told.
#[derive(Debug, Clone)]
pub enum Progress<'a> {
    Started { documents: usize },
    Finished { source: &'a str, ok: bool },
}

/// `documents[]` of the `--json` summary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DocumentSummary {
    pub source: String,
    pub document_uuid: Option<String>,
    pub content_sha256: Option<String>,
    /// `completed` or `failed` (serialised as [`DocumentStatus::as_str`]): a run of
    /// `lexpipe process` ends every document in one or the other.
    pub status: DocumentStatus,
    pub error: Option<String>,
    pub error_type: Option<String>,
    pub pages: usize,
    /// Pages without a text layer (scans).
    pub pages_without_text: Vec<u32>,
    /// Pages whose text layer was not their content, read by image OCR (each page's
    /// `ocr_reason` in the output file says why).
    #[serde(default)]
    pub pages_needing_ocr: Vec<u32>,
    /// Pages that needed OCR and could not be read (OCR tools missing…): the document
    /// completed with their text layer, and `warnings` says why.
    #[serde(default)]
    pub pages_unread: Vec<u32>,
    /// What went wrong without failing the document.
    #[serde(default)]
    pub warnings: Vec<String>,
    pub chunks: usize,
    pub entities: usize,
    pub canonical_entities: usize,
    pub output: Option<String>,
    /// With a database: `written`, `already_done` or `in_progress`; null without one.
    pub persisted: Option<String>,
    /// The document type the structured step found (`unknown` when none).
    pub document_type: Option<String>,
    /// Bytes of the largest step input or output (Step Functions caps them at 256 KiB).
    pub largest_payload_bytes: usize,
    /// This document's units of work over every stage: computed, or reused from a cache
    /// or an artefact (the per-document share of [`Summary::stages`]).
    #[serde(default)]
    pub work: StageCounts,
    /// Paid API calls for this document (zero until Textract and the LLM arrive).
    #[serde(default)]
    pub api_calls: ApiCallSummary,
    /// Dollars for this document.
    #[serde(default)]
    pub cost_usd: Cost,
    /// The paid API usage in detail (pages, tokens), as the steps reported it.
    #[serde(default)]
    pub usage: Ledger,
}

/// Computed vs served from cache, for one stage.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StageCounts {
    pub computed: u64,
    pub cached: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiCalls {
    pub made: u64,
    pub avoided: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ApiCallSummary {
    pub textract: ApiCalls,
    pub llm: ApiCalls,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Cost {
    pub spent: f64,
    pub avoided: f64,
}

impl From<&Ledger> for ApiCallSummary {
    fn from(l: &Ledger) -> Self {
        ApiCallSummary {
            textract: ApiCalls {
                made: l.textract.calls,
                avoided: l.textract.calls_avoided,
            },
            llm: ApiCalls {
                made: l.llm.calls,
                avoided: l.llm.calls_avoided,
            },
        }
    }
}

impl From<&Ledger> for Cost {
    fn from(l: &Ledger) -> Self {
        Cost {
            spent: l.usd(),
            avoided: l.usd_avoided(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CacheTotals {
    pub hits: i64,
    pub misses: i64,
    pub errors: i64,
}

/// The machine-readable summary `lexpipe process --json` prints. Later versions add
/// fields; they never remove or rename one. `lexpipe process` also writes it to
/// [`SUMMARY_FILE`] in the output folder, where `lexpipe report` reads it back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub documents: Vec<DocumentSummary>,
    pub stages: BTreeMap<String, StageCounts>,
    pub api_calls: ApiCallSummary,
    pub cost_usd: Cost,
    /// The paid API usage of the run in detail (pages, tokens).
    #[serde(default)]
    pub usage: Ledger,
    pub cache: CacheTotals,
    pub redis: RedisStatus,
    /// Documents that completed with warnings (pages OCR could not read…).
    #[serde(default)]
    pub documents_with_warnings: usize,
}

/// Name of the run summary in the output folder (beside the per-document files).
pub const SUMMARY_FILE: &str = "summary.json";

impl Summary {
    /// Exit status rule: failure only when there were documents and every one failed.
    pub fn all_failed(&self) -> bool {
        !self.documents.is_empty()
            && self
                .documents
                .iter()
                .all(|d| d.status == DocumentStatus::Failed)
    }
}

/// Why the inputs could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("no such file or folder: {0}")]
    Missing(String),
    #[error("cannot list {path}: {message}")]
    Unreadable { path: String, message: String },
    #[error("no documents found in the given paths (folders are searched for *.pdf)")]
    Empty,
}

/// Files to process: named files as given (whatever their extension, so a bad file is
/// reported rather than skipped), folders searched recursively for `*.pdf`. Sorted per
/// folder, duplicates (same path) removed.
///
/// # Errors
/// A path that does not exist or cannot be listed, or nothing to process.
pub fn collect_inputs(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    let mut out = Vec::new();
    for p in paths {
        let meta =
            std::fs::metadata(p).map_err(|_| InputError::Missing(p.display().to_string()))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found)?;
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    if out.is_empty() {
        return Err(InputError::Empty);
    }
    Ok(out)
}

/// Sources to process from command-line arguments: `s3://bucket/folder/` lists every
/// `*.pdf` object in that folder, recursively (the pipeline's own `processed/` prefix and
/// folder markers excluded; `s3://bucket/in` means the folder `in/`, never `inbox/`), and
/// `s3://bucket/key.pdf` names one object; anything else is a path, as
/// [`collect_inputs`].
///
/// # Errors
/// A path that does not exist, a bucket that cannot be listed, or nothing to process.
pub async fn collect_sources(app: &App, args: &[String]) -> Result<Vec<String>, InputError> {
    let mut out = Vec::new();
    for arg in args {
        match crate::config::BlobLocation::parse(arg) {
            Ok(crate::config::BlobLocation::S3 { bucket, prefix }) => {
                let store =
                    app.sources
                        .bucket(&bucket)
                        .await
                        .map_err(|e| InputError::Unreadable {
                            path: arg.clone(),
                            message: e.to_string(),
                        })?;
                let listed = store
                    .list(&prefix)
                    .await
                    .map_err(|e| InputError::Unreadable {
                        path: arg.clone(),
                        message: e.to_string(),
                    })?;
                out.extend(
                    listed
                        .into_iter()
                        .filter(|o| is_under_prefix(&o.key, &prefix) && is_input_key(&o.key))
                        .map(|o| format!("s3://{bucket}/{}", o.key)),
                );
            }
            _ => out.extend(
                collect_inputs(std::slice::from_ref(&PathBuf::from(arg)))?
                    .into_iter()
                    .map(|p| p.display().to_string()),
            ),
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    if out.is_empty() {
        return Err(InputError::Empty);
    }
    Ok(out)
}

/// Whether `key` is the object `prefix` names or lies in the folder it names: S3
/// prefixes are plain string prefixes, so listing `in` also returns `inbox/…` and
/// `in-2023.pdf`, which `s3://bucket/in/` does not mean. (`prefix` is trimmed of `/`, as
/// [`BlobLocation::parse`](crate::config::BlobLocation::parse) leaves it; empty is the
/// whole bucket.)
pub fn is_under_prefix(key: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || key == prefix
        || key
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// An S3 key that is a document to process: a `.pdf` object, not a folder marker, not
/// under the pipeline's own `processed/` prefix.
pub fn is_input_key(key: &str) -> bool {
    !key.ends_with('/')
        && !crate::stages::artefact::is_artefact_key(key)
        && crate::store::source::is_pdf_name(key)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), InputError> {
    let entries = std::fs::read_dir(dir).map_err(|e| InputError::Unreadable {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            walk(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("pdf"))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Processes the files at `inputs` (see [`collect_inputs`]).
///
/// # Errors
/// As [`process_sources`].
pub async fn process(
    app: &App,
    inputs: &[PathBuf],
    opts: &RunOptions,
    progress: &(dyn Fn(Progress<'_>) + Send + Sync),
) -> anyhow::Result<Summary> {
    let sources: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    process_sources(app, &sources, opts, progress).await
}

/// Processes every source (a path or `s3://bucket/key`) through the state machine; the
/// persist step writes one JSON file per document into `opts.out_dir` (unless the app
/// names another folder) and into PostgreSQL when the app has a database.
///
/// # Errors
/// Only when the state machine definition cannot be loaded or the output folder cannot
/// be created; document failures are in the summary.
pub async fn process_sources(
    app: &App,
    sources: &[String],
    opts: &RunOptions,
    progress: &(dyn Fn(Progress<'_>) + Send + Sync),
) -> anyhow::Result<Summary> {
    use anyhow::Context;
    let definition = pipeline::definition().context("loading statemachine/pipeline.asl.json")?;
    let mut app = app.clone();
    if app.output_dir.is_none() {
        app.output_dir = Some(opts.out_dir.clone());
    }
    let out_dir = app
        .output_dir
        .clone()
        .unwrap_or_else(|| opts.out_dir.clone());
    tokio::fs::create_dir_all(&out_dir)
        .await
        .with_context(|| format!("creating output folder {}", out_dir.display()))?;
    let before = totals(&app.cache.local_stats());
    progress(Progress::Started {
        documents: sources.len(),
    });
    let app = &app;
    let definition = &definition;
    let results: Vec<(DocumentSummary, StageTally)> = futures::stream::iter(sources.iter())
        .map(|source| async move {
            let (summary, tally) = process_one(app, definition, source, opts).await;
            progress(Progress::Finished {
                source: &summary.source,
                ok: summary.status == DocumentStatus::Completed,
            });
            (summary, tally)
        })
        .buffered(opts.concurrency.max(1))
        .collect()
        .await;
    app.cache.flush_metrics().await;
    let after = totals(&app.cache.local_stats());

    let mut stages: BTreeMap<String, StageCounts> = names::ALL
        .iter()
        .map(|s| (s.to_string(), StageCounts::default()))
        .collect();
    let mut documents = Vec::with_capacity(results.len());
    let mut usage = Ledger::default();
    for (mut doc, tally) in results {
        for (stage, w) in tally.stages {
            let e = stages.entry(stage.to_string()).or_default();
            e.computed += w.computed;
            e.cached += w.reused;
            doc.work.computed += w.computed;
            doc.work.cached += w.reused;
        }
        doc.usage = tally.usage;
        doc.api_calls = ApiCallSummary::from(&tally.usage);
        doc.cost_usd = Cost::from(&tally.usage);
        usage.add(&tally.usage);
        documents.push(doc);
    }
    let documents_with_warnings = documents.iter().filter(|d| !d.warnings.is_empty()).count();
    Ok(Summary {
        documents,
        stages,
        api_calls: ApiCallSummary::from(&usage),
        cost_usd: Cost::from(&usage),
        usage,
        cache: after.since(&before),
        redis: app.redis_status,
        documents_with_warnings,
    })
}

/// Summed counters. A single-flight wait is a lookup another task computed for this one:
/// it counts as a hit, and not as the miss it was first recorded as.
fn totals(stats: &[NamespaceStats]) -> RawTotals {
    stats.iter().fold(RawTotals::default(), |acc, s| RawTotals {
        hits: acc.hits + s.hits,
        waits: acc.waits + s.waits,
        misses: acc.misses + s.misses,
        errors: acc.errors + s.errors,
    })
}

#[derive(Debug, Default, Clone, Copy)]
struct RawTotals {
    hits: i64,
    waits: i64,
    misses: i64,
    errors: i64,
}

impl RawTotals {
    fn since(&self, before: &RawTotals) -> CacheTotals {
        let waits = self.waits - before.waits;
        CacheTotals {
            hits: self.hits - before.hits + waits,
            misses: (self.misses - before.misses - waits).max(0),
            errors: self.errors - before.errors,
        }
    }
}

async fn process_one(
    app: &App,
    definition: &asl::Definition,
    source: &str,
    opts: &RunOptions,
) -> (DocumentSummary, StageTally) {
    let mut summary = DocumentSummary {
        source: source.to_string(),
        document_uuid: None,
        content_sha256: None,
        status: DocumentStatus::Failed,
        error: None,
        error_type: None,
        pages: 0,
        pages_without_text: Vec::new(),
        pages_needing_ocr: Vec::new(),
        pages_unread: Vec::new(),
        warnings: Vec::new(),
        chunks: 0,
        entities: 0,
        canonical_entities: 0,
        output: None,
        persisted: None,
        document_type: None,
        largest_payload_bytes: 0,
        work: StageCounts::default(),
        api_calls: ApiCallSummary::default(),
        cost_usd: Cost::default(),
        usage: Ledger::default(),
    };
    let document = match identify(app, source).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(source, error_type = e.error_type(), "document failed: {e}");
            summary.error = Some(e.to_string());
            summary.error_type = Some(e.error_type().to_string());
            return (summary, StageTally::default());
        }
    };
    summary.content_sha256 = Some(document.content_sha256.clone());
    summary.document_uuid = Some(document.document_uuid.to_string());
    let tasks = LocalTasks::new(app);
    let result = execute(
        app,
        definition,
        &tasks,
        &document,
        Value::Null,
        opts.time_scale,
    )
    .await;
    summary.largest_payload_bytes = tasks.largest_payload();
    match result {
        Ok(out) => {
            summary.status = DocumentStatus::Completed;
            fill_summary(&mut summary, &out);
        }
        Err(failed) => {
            tracing::warn!(source, error_type = %failed.error, "document failed: {}", failed.cause);
            summary.error = Some(failed.cause);
            summary.error_type = Some(failed.error);
        }
    }
    (summary, tasks.tally())
}

/// The document at `source`: its bytes are read once to hash them.
///
/// # Errors
/// The source cannot be read or is too large.
pub async fn identify(app: &App, source: &str) -> Result<DocumentRef, StageError> {
    let bytes = app.sources.read(source, app.max_document_bytes).await?;
    Ok(DocumentRef::new(&sha256_hex(&bytes), source))
}

/// Runs one document through the state machine: its state initialised with every stage,
/// then the execution. `queue` is the worker's claim (`null` outside the queue).
///
/// # Errors
/// The execution failed: the error name and cause of its `Fail` state.
pub async fn execute(
    app: &App,
    definition: &asl::Definition,
    tasks: &LocalTasks<'_>,
    document: &DocumentRef,
    queue: Value,
    time_scale: f64,
) -> Result<Value, asl::ExecutionFailed> {
    pipeline::begin_document(app, document).await;
    let input = serde_json::json!({"document": document, "queue": queue});
    let opts = asl::RunOptions {
        time_scale,
        execution_name: document.document_uuid.to_string(),
        ..asl::RunOptions::default()
    };
    asl::execute(definition, input, tasks, &opts)
        .await
        .map(|e| e.output)
}

fn fill_summary(summary: &mut DocumentSummary, out: &Value) {
    let n = |ptr: &str| out.pointer(ptr).and_then(Value::as_u64).unwrap_or(0) as usize;
    let s = |ptr: &str| out.pointer(ptr).and_then(Value::as_str).map(str::to_string);
    summary.pages = n("/ocr/pages");
    summary.pages_without_text = out
        .pointer("/ocr/pages_without_text")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let list = |ptr: &str| -> Vec<u32> {
        out.pointer(ptr)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    };
    summary.pages_needing_ocr = list("/ocr/pages_needing_ocr");
    summary.pages_unread = list("/ocr/pages_unread");
    summary.warnings = out
        .pointer("/ocr/warnings")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    summary.chunks = n("/chunks/chunks");
    summary.entities = n("/resolution/mentions");
    summary.canonical_entities = n("/resolution/entities");
    summary.output = s("/persist/output");
    summary.persisted = s("/persist/persisted");
    summary.document_type = s("/structured/document_type");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_flight_wait_counts_as_a_hit_and_not_as_the_miss_it_was_first_recorded_as() {
        // A lookup that waited for another task was counted miss + wait by the cache.
        let before = RawTotals::default();
        let after = RawTotals {
            hits: 3,
            waits: 2,
            misses: 5,
            errors: 1,
        };
        let t = after.since(&before);
        assert_eq!((t.hits, t.misses, t.errors), (5, 3, 1));
    }

    #[test]
    fn a_prefix_names_a_folder_or_one_object_never_a_longer_name() {
        assert!(is_under_prefix("in/a.pdf", "in"));
        assert!(is_under_prefix("in/deep/er/a.pdf", "in"));
        assert!(is_under_prefix("in/a.pdf", "in/a.pdf"));
        assert!(is_under_prefix("anything.pdf", ""));
        assert!(!is_under_prefix("inbox/a.pdf", "in"));
        assert!(!is_under_prefix("in-2023.pdf", "in"));
        assert!(!is_under_prefix("in/a.pdf.bak/b.pdf", "in/a.pdf/x"));
    }

    #[test]
    fn only_pdf_objects_outside_processed_are_inputs() {
        assert!(is_input_key("in/Smith v. Jones + Co — é.pdf"));
        assert!(is_input_key("in/UPPER.PDF"));
        assert!(!is_input_key("in/notes.txt"));
        assert!(!is_input_key("in/empty/"));
        assert!(!is_input_key("in/pdf"));
        assert!(!is_input_key("processed/abc/x.pdf"));
        assert!(!is_input_key("in/processed/abc/x.pdf"));
    }
}
