//! The local end-to-end run behind `lexpipe process`: every stage, in order, for a batch
//! of files, with bounded concurrency; one JSON file per document and one summary.
//!
//! A document that fails (not a PDF, corrupt, encrypted, empty, unreadable) is recorded
//! with its error and the batch goes on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use serde::Serialize;

use crate::model::{CanonicalEntity, Chunk, Mention, OcrResult};
use crate::redis::{NamespaceStats, RedisStatus};
use crate::stages::{self, Deps, StageError, names};
use crate::text::sha256_hex;

/// Namespace of document UUIDs (v5 of the content hash): the same bytes are the same
/// document wherever and under whatever name they arrive.
pub const DOCUMENT_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6c65_7870_6970_6500_8000_0000_0000_0001);

/// The UUID of a document with this content hash.
pub fn document_uuid(content_sha256: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(&DOCUMENT_NAMESPACE, content_sha256.as_bytes())
}

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where the per-document JSON files go.
    pub out_dir: PathBuf,
    /// Documents processed at once.
    pub concurrency: usize,
    /// Larger files fail with `DocumentTooLarge` instead of being read.
    pub max_file_bytes: u64,
    /// Where results are persisted besides the JSON files (PostgreSQL), if anywhere.
    pub persist: Option<PersistTarget>,
}

/// PostgreSQL, and the idempotency records that guard writes to it.
#[derive(Debug, Clone)]
pub struct PersistTarget {
    pub pool: sqlx::PgPool,
    pub idempotency: Option<Arc<crate::redis::idempotency::Idempotency>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            out_dir: PathBuf::from("out"),
            concurrency: 4,
            max_file_bytes: 256 * 1024 * 1024,
            persist: None,
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
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DocumentSummary {
    pub source: String,
    pub document_uuid: Option<String>,
    pub content_sha256: Option<String>,
    /// `completed` or `failed`.
    pub status: &'static str,
    pub error: Option<String>,
    pub error_type: Option<String>,
    pub pages: usize,
    /// Pages without a text layer (scans awaiting OCR).
    pub pages_without_text: Vec<u32>,
    pub chunks: usize,
    pub entities: usize,
    pub canonical_entities: usize,
    pub output: Option<String>,
    /// With a database: `written`, `already_done` or `in_progress`; null without one.
    pub persisted: Option<String>,
}

/// Computed vs served from cache, for one stage.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct StageCounts {
    pub computed: u64,
    pub cached: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct ApiCalls {
    pub made: u64,
    pub avoided: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ApiCallSummary {
    pub textract: ApiCalls,
    pub llm: ApiCalls,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Cost {
    pub spent: f64,
    pub avoided: f64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct CacheTotals {
    pub hits: i64,
    pub misses: i64,
    pub errors: i64,
}

/// The machine-readable summary `lexpipe process --json` prints. Later versions add
/// fields; they never remove or rename one.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub documents: Vec<DocumentSummary>,
    pub stages: BTreeMap<&'static str, StageCounts>,
    pub api_calls: ApiCallSummary,
    pub cost_usd: Cost,
    pub cache: CacheTotals,
    pub redis: RedisStatus,
}

impl Summary {
    /// Exit status rule: failure only when there were documents and every one failed.
    pub fn all_failed(&self) -> bool {
        !self.documents.is_empty() && self.documents.iter().all(|d| d.status == "failed")
    }
}

/// The per-document output file.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct DocumentOutput {
    pub document_uuid: String,
    pub source: String,
    pub content_sha256: String,
    pub ocr_method: String,
    pub pages: Vec<crate::model::Page>,
    pub chunks: Vec<ChunkOutput>,
    pub mentions: Vec<Mention>,
    pub entities: Vec<CanonicalEntity>,
    pub producer: String,
}

/// A chunk in the output file (its text is `text[start..end]` of the pages joined).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ChunkOutput {
    pub id: String,
    pub index: usize,
    pub start: usize,
    pub end: usize,
    pub sha256: String,
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

/// Per-stage computed/cached counts of one document or run.
#[derive(Debug, Default, Clone)]
pub struct StageTally {
    pub stages: BTreeMap<&'static str, StageCounts>,
}

impl StageTally {
    pub fn add(&mut self, stage: &'static str, cached: bool, n: u64) {
        let c = self.stages.entry(stage).or_default();
        if cached {
            c.cached += n;
        } else {
            c.computed += n;
        }
    }
}

/// Processes `inputs` and writes one JSON file per document into `opts.out_dir`.
///
/// # Errors
/// Only when the output folder cannot be created; document failures are in the summary.
pub async fn process(
    deps: &Deps,
    inputs: &[PathBuf],
    opts: &RunOptions,
    redis: RedisStatus,
    progress: &(dyn Fn(Progress<'_>) + Send + Sync),
) -> anyhow::Result<Summary> {
    use anyhow::Context;
    tokio::fs::create_dir_all(&opts.out_dir)
        .await
        .with_context(|| format!("creating output folder {}", opts.out_dir.display()))?;
    let before = totals(&deps.cache.local_stats());
    progress(Progress::Started {
        documents: inputs.len(),
    });
    let results: Vec<(DocumentSummary, StageTally)> = futures::stream::iter(inputs.iter())
        .map(|path| async move {
            let (summary, tally) = process_one(deps, path, opts).await;
            progress(Progress::Finished {
                source: &summary.source,
                ok: summary.status == "completed",
            });
            (summary, tally)
        })
        .buffered(opts.concurrency.max(1))
        .collect()
        .await;
    deps.cache.flush_metrics().await;
    let after = totals(&deps.cache.local_stats());

    let stage_names: &[&'static str] = if opts.persist.is_some() {
        &names::WITH_PERSIST
    } else {
        &names::ALL
    };
    let mut stages: BTreeMap<&'static str, StageCounts> = stage_names
        .iter()
        .map(|s| (*s, StageCounts::default()))
        .collect();
    let mut documents = Vec::with_capacity(results.len());
    for (doc, tally) in results {
        for (stage, c) in tally.stages {
            let e = stages.entry(stage).or_default();
            e.computed += c.computed;
            e.cached += c.cached;
        }
        documents.push(doc);
    }
    Ok(Summary {
        documents,
        stages,
        api_calls: ApiCallSummary::default(),
        cost_usd: Cost::default(),
        cache: CacheTotals {
            hits: after.hits - before.hits,
            misses: after.misses - before.misses,
            errors: after.errors - before.errors,
        },
        redis,
    })
}

fn totals(stats: &[NamespaceStats]) -> CacheTotals {
    stats
        .iter()
        .fold(CacheTotals::default(), |acc, s| CacheTotals {
            hits: acc.hits + s.hits,
            misses: acc.misses + s.misses,
            errors: acc.errors + s.errors,
        })
}

async fn process_one(deps: &Deps, path: &Path, opts: &RunOptions) -> (DocumentSummary, StageTally) {
    let source = path.display().to_string();
    let mut tally = StageTally::default();
    let mut summary = DocumentSummary {
        source: source.clone(),
        document_uuid: None,
        content_sha256: None,
        status: "failed",
        error: None,
        error_type: None,
        pages: 0,
        pages_without_text: Vec::new(),
        chunks: 0,
        entities: 0,
        canonical_entities: 0,
        output: None,
        persisted: None,
    };
    match run_document(deps, path, opts, &mut summary, &mut tally).await {
        Ok(()) => summary.status = "completed",
        Err(e) => {
            tracing::warn!(source = %source, error_type = e.error_type(), "document failed: {e}");
            summary.error = Some(e.to_string());
            summary.error_type = Some(e.error_type().to_string());
        }
    }
    (summary, tally)
}

async fn run_document(
    deps: &Deps,
    path: &Path,
    opts: &RunOptions,
    summary: &mut DocumentSummary,
    tally: &mut StageTally,
) -> Result<(), StageError> {
    let bytes = read_document(path, opts.max_file_bytes).await?;
    let sha = sha256_hex(bytes.as_slice());
    let uuid = document_uuid(&sha).to_string();
    summary.content_sha256 = Some(sha.clone());
    summary.document_uuid = Some(uuid.clone());

    let stage_list: &[&str] = if opts.persist.is_some() {
        &names::WITH_PERSIST
    } else {
        &names::ALL
    };
    let output = analyse_with(deps, &summary.source, bytes, &sha, tally, stage_list).await?;
    summary.pages = output.pages.len();
    summary.pages_without_text = output
        .pages
        .iter()
        .filter(|p| !p.has_text_layer)
        .map(|p| p.number)
        .collect();
    summary.chunks = output.chunks.len();
    summary.entities = output.mentions.len();
    summary.canonical_entities = output.entities.len();

    let file = opts.out_dir.join(output_file_name(path, &uuid));
    write_json_atomically(&file, &output)
        .await
        .map_err(|e| StageError::Read {
            what: file.display().to_string(),
            message: format!("cannot write output: {e}"),
        })?;
    summary.output = Some(file.display().to_string());
    if let Some(target) = &opts.persist {
        let outcome = persist(deps, target, &output, None, None).await?;
        let done_before = !matches!(outcome, stages::persist::PersistOutcome::Written { .. });
        tally.add(names::PERSIST, done_before, 1);
        summary.persisted = Some(outcome.name().to_string());
    }
    Ok(())
}

/// The persist stage of one analysed document, recorded in its state: what
/// `lexpipe process` (unfenced) and queue workers (fenced with their claim, records
/// lapsing with their lease) both run.
///
/// # Errors
/// As [`stages::persist::run_owned`].
pub async fn persist(
    deps: &Deps,
    target: &PersistTarget,
    out: &DocumentOutput,
    fencing_token: Option<u64>,
    deadline: Option<std::time::Duration>,
) -> Result<stages::persist::PersistOutcome, StageError> {
    StageRecorder::new(deps, document_uuid(&out.content_sha256))
        .stage(
            names::PERSIST,
            stages::persist::run_owned(
                &target.pool,
                target.idempotency.as_deref(),
                out,
                fencing_token,
                deadline,
            ),
            |_| out.mentions.len() as u64,
        )
        .await
}

/// Reads a document's bytes, refusing files over `max_bytes` before reading them.
///
/// # Errors
/// The file cannot be read, or is too large.
pub async fn read_document(path: &Path, max_bytes: u64) -> Result<Arc<Vec<u8>>, StageError> {
    let read_err = |e: std::io::Error| StageError::Read {
        what: path.display().to_string(),
        message: e.to_string(),
    };
    let size = tokio::fs::metadata(path).await.map_err(read_err)?.len();
    if size > max_bytes {
        return Err(StageError::TooLarge {
            size,
            limit: max_bytes,
        });
    }
    Ok(Arc::new(tokio::fs::read(path).await.map_err(read_err)?))
}

/// Every analysis stage for one document's bytes (whose SHA-256 is `sha`): OCR, chunks,
/// entities, resolution. Each stage's reuse is added to `tally`.
///
/// # Errors
/// A stage failed for this document (see [`StageError`]).
pub async fn analyse(
    deps: &Deps,
    source: &str,
    bytes: Arc<Vec<u8>>,
    sha: &str,
    tally: &mut StageTally,
) -> Result<DocumentOutput, StageError> {
    analyse_with(deps, source, bytes, sha, tally, &names::ALL).await
}

/// [`analyse`], recording the document's state with `stage_list` (the analysis stages
/// plus whatever the caller runs after them, such as persist).
///
/// # Errors
/// A stage failed for this document (see [`StageError`]).
pub async fn analyse_with(
    deps: &Deps,
    source: &str,
    bytes: Arc<Vec<u8>>,
    sha: &str,
    tally: &mut StageTally,
    stage_list: &[&str],
) -> Result<DocumentOutput, StageError> {
    let doc = document_uuid(sha);
    let progress = StageRecorder::new(deps, doc);
    progress.init(source, sha, stage_list).await;

    let ocr = progress
        .stage(names::OCR, stages::ocr::run(deps, bytes, sha), |o| {
            o.value.pages.len() as u64
        })
        .await?;
    tally.add(names::OCR, ocr.source.is_cached(), 1);
    let ocr: OcrResult = ocr.value;
    let text = ocr.full_text();

    let chunks: Vec<Chunk> = progress
        .stage(
            names::CHUNK,
            async { Ok(stages::chunk::run(deps, &text)) },
            |c| c.len() as u64,
        )
        .await?;
    tally.add(names::CHUNK, false, 1);

    let ents = progress
        .stage(
            names::ENTITIES,
            async { Ok(stages::entities::run(deps, &chunks).await) },
            |e| e.mentions.len() as u64,
        )
        .await?;
    tally.add(names::ENTITIES, false, ents.chunks_computed as u64);
    tally.add(names::ENTITIES, true, ents.chunks_cached as u64);

    let resolved = progress
        .stage(
            names::RESOLVE,
            async { Ok(stages::resolve::run(deps, sha, &ents.mentions).await) },
            |r| r.value.len() as u64,
        )
        .await?;
    tally.add(names::RESOLVE, resolved.source.is_cached(), 1);

    Ok(DocumentOutput {
        document_uuid: document_uuid(sha).to_string(),
        source: source.to_string(),
        content_sha256: sha.to_string(),
        ocr_method: ocr.method.clone(),
        chunks: chunks
            .iter()
            .map(|c| ChunkOutput {
                id: c.id.clone(),
                index: c.index,
                start: c.start,
                end: c.end,
                sha256: c.sha256.clone(),
            })
            .collect(),
        pages: ocr.pages,
        mentions: ents.mentions,
        entities: resolved.value,
        producer: format!("lexpipe/{}", env!("CARGO_PKG_VERSION")),
    })
}

/// `{file stem, made safe}-{first 8 of uuid}.json`: readable, and unique per content.
pub fn output_file_name(source: &Path, uuid: &str) -> String {
    let stem = source
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
        &uuid[..8]
    )
}

async fn write_json_atomically<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, path).await
}

/// Records each stage of one document in the document state (when tracking is on) and
/// runs the fault-injection hook before it. State is for progress and resume; a state
/// write that fails is logged once per document and never fails the work.
pub struct StageRecorder<'a> {
    deps: &'a Deps,
    doc: uuid::Uuid,
    warned: std::sync::atomic::AtomicBool,
}

impl<'a> StageRecorder<'a> {
    pub fn new(deps: &'a Deps, doc: uuid::Uuid) -> StageRecorder<'a> {
        StageRecorder {
            deps,
            doc,
            warned: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn note<T, E: std::fmt::Display>(&self, r: Result<T, E>) {
        if let Err(e) = r
            && !self.warned.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(document_uuid = %self.doc, error = %e, "document state not recorded");
        }
    }

    /// Creates (or adopts) the document's state with `stages`.
    pub async fn init(&self, source: &str, sha: &str, stages: &[&str]) {
        if let Some(states) = &self.deps.states {
            let r = states.init(self.doc, source, sha, stages).await;
            self.note(r);
        }
    }

    /// Runs one stage: hook, `running`, the work, then `completed` with `count(output)`
    /// or `failed` with the error.
    ///
    /// # Errors
    /// The stage's own error, or the injected one.
    pub async fn stage<T, F>(
        &self,
        stage: &'static str,
        work: F,
        count: impl FnOnce(&T) -> u64,
    ) -> Result<T, StageError>
    where
        F: std::future::Future<Output = Result<T, StageError>>,
    {
        let doc = self.doc.to_string();
        if let Some(states) = &self.deps.states {
            let r = states.start_stage(self.doc, stage).await;
            self.note(r);
        }
        let result = match self.deps.hooks.before_stage(&doc, stage) {
            Ok(()) => work.await,
            Err(e) => Err(e),
        };
        if let Some(states) = &self.deps.states {
            let r = match &result {
                Ok(v) => states.complete_stage(self.doc, stage, count(v)).await,
                Err(e) => {
                    states
                        .fail_stage(self.doc, stage, e.error_type(), &e.to_string())
                        .await
                }
            };
            self.note(r);
        }
        result
    }
}
