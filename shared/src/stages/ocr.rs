//! OCR steps: `ocr-start` and `ocr-poll`, the text of every page.
//!
//! Every document's text layer is read first (cached by content hash, method
//! `pdf_text-{N}`), with a per-page decision of whether it is the page's content
//! ([`crate::ocr::decide`]). The pages whose text layer is not their content are then read
//! by the configured engine ([`crate::config::OcrConfig::engine_for`]):
//!
//! - **Tesseract** (local): at once, one page per CPU permit; the merged result is cached
//!   as its own method (`pdf_text-{N}.tesseract-{M}.{pages}`). When the tools are missing
//!   or fail on a page, the document still completes with its text layer, the pages that
//!   could not be read are listed in `pages_unread` with a warning saying how to install
//!   the tools, and nothing is cached.
//! - **Textract** (cloud: every page; hybrid: only the pages that need OCR, sent as a PDF
//!   of those pages written to the artefact store): `ocr-start` starts the job (one per
//!   content and page set) and returns `ready: false` with the job id and the suggested
//!   wait; the state machine waits and calls `ocr-poll`, which reads the job's status
//!   through the job-status cache and, once it succeeded, fetches the text (once, under
//!   single flight) and caches the merged result. A `FAILED` job fails the document with
//!   Textract's message and caches nothing.
//!
//! Every OCR result is cached as long as its kind of document says ([`ttl_for`]: court
//! filings, contracts, exhibits, anything else).
//!
//! Every step reports the Textract requests it made and avoided in `usage` (the cost
//! ledger). The result is written as the artefact `processed/{sha}/ocr-{method}-v{SCHEMA}
//! .json.zst`, which the next steps read.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::config::{DeploymentStage, OcrEngineChoice};
use crate::cost::{Ledger, Meter};
use crate::extract::doctype::{DocumentKind, document_kind};
use crate::model::OcrResult;
use crate::ocr::subset::{PageMap, subset_pdf};
use crate::ocr::tesseract::{self, Tools};
use crate::ocr::textract::{self, Engine, JobRequest, TextractError};
use crate::ocr::{PDF_TEXT_METHOD, PDF_TEXT_VERSION, extract_pdf_text};
use crate::redis::{CacheSpec, KeyPart};
use crate::store::blob::ObjectStat;
use crate::store::source::parse_s3_url;
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
    /// `pdf_text-2`, `pdf_text-2.tesseract-1.{pages}`, `textract-1.{pages}`, …
    pub method: String,
    pub pages: usize,
    /// Pages without a text layer (scans).
    pub pages_without_text: Vec<u32>,
    /// Pages whose text layer was not their content (each page's `ocr_reason` says why):
    /// those image OCR reads.
    #[serde(default)]
    pub pages_needing_ocr: Vec<u32>,
    /// Pages that needed OCR and could not be read by it (tools missing, engine `none`):
    /// their text is the text layer's. Non-empty means `warnings` says why.
    #[serde(default)]
    pub pages_unread: Vec<u32>,
    /// What went wrong without failing the document, for the summary to count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The asynchronous job, while one runs.
    pub job_id: Option<String>,
    /// Seconds the state machine waits before the next poll.
    pub wait_seconds: u64,
    /// Polls made so far (the state machine caps them).
    pub polls: u32,
    pub work: Work,
    /// Textract requests made and avoided by this step (the cost ledger).
    #[serde(default, skip_serializing_if = "Ledger::is_empty")]
    pub usage: Ledger,
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

/// How long a document's OCR result stays cached: by the kind of document its text says
/// it is ([`document_kind`]; when image OCR's text does not tell, the text layer's, where
/// the ECF header of a scanned filing is): court filings, contracts and exhibits each have
/// their `LEXPIPE_CACHE_TTL_OCR_{KIND}_SECS`, anything else `LEXPIPE_CACHE_TTL_OCR_SECS`.
pub fn ttl_for(app: &App, result: &OcrResult, text_layer: &OcrResult) -> Duration {
    let kind = match document_kind(&result.pages) {
        DocumentKind::Unknown => document_kind(&text_layer.pages),
        kind => kind,
    };
    let c = &app.config.cache;
    match kind {
        DocumentKind::Filing => c.ttl_ocr_filing,
        DocumentKind::Contract => c.ttl_ocr_contract,
        DocumentKind::Exhibit => c.ttl_ocr_exhibit,
        DocumentKind::Unknown => c.ttl_ocr,
    }
}

/// [`artefact::produce`] of an OCR result, its cache entry living [`ttl_for`] it (the
/// text layer's own result passes no `text_layer`).
async fn produce_ocr<F, Fut>(
    app: &App,
    key: &str,
    spec: &CacheSpec,
    text_layer: Option<&OcrResult>,
    compute: F,
) -> Result<Produced<OcrResult>, StageError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<OcrResult, StageError>>,
{
    let ttl_of = |r: &OcrResult| Some(ttl_for(app, r, text_layer.unwrap_or(r)));
    artefact::produce_with_ttl(app, key, Some(spec), ttl_of, compute).await
}

/// The Redis cache entry of a document's OCR result (for reading it; a result is written
/// with [`ttl_for`] it).
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

/// The engine that reads pages needing OCR in this app: the configured one, or the
/// stage's default (Textract needs an S3 artefact store outside `cloud`).
pub fn engine(app: &App) -> OcrEngineChoice {
    let in_s3 = app.artefacts.location("x").starts_with("s3://");
    app.config.ocr.engine_for(app.config.stage, in_s3)
}

/// Which pages go to which engine, and the method name of the result.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub engine: OcrEngineChoice,
    /// Pages the engine reads (original numbers).
    pub pages: PageMap,
    /// Method name of the merged result (part of its cache key and artefact name).
    pub method: String,
}

/// The plan for a document whose text layer is `text`: in `cloud`, Textract reads every
/// page; otherwise the engine reads the pages that need OCR.
pub fn plan(app: &App, text: &OcrResult) -> Plan {
    let engine = engine(app);
    let all: Vec<u32> = text.pages.iter().map(|p| p.number).collect();
    let pages = match engine {
        OcrEngineChoice::Textract if app.config.stage == DeploymentStage::Cloud => {
            PageMap::new(&all)
        }
        _ => PageMap::new(&text.pages_needing_ocr()),
    };
    let pages_part = &artefact::lineage(&[&pages.label()])[..12];
    let method = match engine {
        OcrEngineChoice::None => pdf_text_method(),
        _ if pages.pages().is_empty() => pdf_text_method(),
        OcrEngineChoice::Tesseract => format!(
            "{}.{}-{}.{pages_part}",
            pdf_text_method(),
            tesseract::METHOD,
            tesseract::VERSION
        ),
        OcrEngineChoice::Textract if pages.pages().len() == all.len() => {
            format!("{}-{}.{pages_part}", textract::METHOD, textract::VERSION)
        }
        OcrEngineChoice::Textract => format!(
            "{}.{}-{}.{pages_part}",
            pdf_text_method(),
            textract::METHOD,
            textract::VERSION
        ),
    };
    Plan {
        engine,
        pages,
        method,
    }
}

/// The document's bytes, which must still hash to its content hash. An S3 object's ETag
/// is remembered with the hash ([`source_spec`]), so that [`check_source`] can later tell
/// that the object is unchanged from a `HeadObject` alone.
async fn read_source(app: &App, doc: &DocumentRef) -> Result<Vec<u8>, StageError> {
    Ok(read_source_with_stat(app, doc).await?.0)
}

async fn read_source_with_stat(
    app: &App,
    doc: &DocumentRef,
) -> Result<(Vec<u8>, ObjectStat), StageError> {
    let (bytes, stat) = app
        .sources
        .read_with_stat(&doc.source, app.max_document_bytes)
        .await?;
    if sha256_hex(&bytes) != doc.content_sha256 {
        return Err(StageError::ContentChanged {
            what: doc.source.clone(),
        });
    }
    if let Some(etag) = &stat.etag {
        app.cache
            .put(&source_spec(app, &doc.source, etag), &doc.content_sha256)
            .await;
    }
    Ok((bytes, stat))
}

/// Namespace of the content hashes of S3 object versions.
const SOURCE_NAMESPACE: &str = "source";

/// The cache entry holding the content hash of the object at `source` whose ETag is
/// `etag` (both hashed into the key: they are user input). An ETag names one version of
/// one object's bytes, so the entry never goes stale; it lives as long as OCR results.
fn source_spec(app: &App, source: &str, etag: &str) -> CacheSpec {
    let id = format!("{source}\n{etag}");
    CacheSpec {
        namespace: SOURCE_NAMESPACE,
        key: app
            .cache
            .keys()
            .key(SOURCE_NAMESPACE, 1, &[KeyPart::User(id.as_bytes())]),
        schema: 1,
        ttl: app.config.cache.ttl_ocr,
    }
}

/// Checks, before Textract reads the S3 object `doc.source` itself or a result cached for
/// its content is reused for it, that the object still holds the bytes whose hash is
/// `doc.content_sha256`: an object overwritten since ingest must neither get the old text
/// nor have its new text cached under the old hash. A `HeadObject` whose ETag is known
/// (from an earlier read of the object, [`read_source`]) answers; else the object is read
/// and hashed. Returns the version id to pin the job to (versioned buckets), so that an
/// overwrite after this check cannot change what Textract reads either.
///
/// # Errors
/// [`StageError::ContentChanged`] (terminal) when the object holds other bytes; S3
/// failed or the object is gone.
async fn check_source(app: &App, doc: &DocumentRef) -> Result<Option<String>, StageError> {
    let Some(stat) = app.sources.stat(&doc.source).await? else {
        return Ok(None);
    };
    if let Some(etag) = &stat.etag
        && let Some(sha) = app
            .cache
            .get::<String>(&source_spec(app, &doc.source, etag))
            .await
    {
        if sha != doc.content_sha256 {
            return Err(StageError::ContentChanged {
                what: doc.source.clone(),
            });
        }
        return Ok(stat.version_id);
    }
    Ok(read_source_with_stat(app, doc).await?.1.version_id)
}

/// Textract reads the S3 object `doc.source` itself (every page is sent, and the source
/// is in S3): what [`check_source`] guards.
fn reads_source_object(doc: &DocumentRef, text: &OcrResult, plan: &Plan) -> bool {
    plan.pages.pages().len() == text.pages.len() && parse_s3_url(&doc.source).is_some()
}

/// The text layer of every page with the OCR decision: from the cache, the artefact, or
/// by reading the PDF.
///
/// # Errors
/// The file is not a readable PDF ([`StageError::Ocr`], terminal, never cached); the
/// source cannot be read or changed; the blob store failed.
pub async fn text_layer(app: &App, doc: &DocumentRef) -> Result<Produced<OcrResult>, StageError> {
    let method = pdf_text_method();
    let key = artefact_key(&doc.content_sha256, &method);
    let spec = cache_spec(app, &doc.content_sha256, &method);
    produce_ocr(app, &key, &spec, None, || async {
        let bytes = read_source(app, doc).await?;
        app.run_cpu("ocr", move || extract_pdf_text(&bytes))
            .await?
            .map_err(StageError::from)
    })
    .await
}

/// A result already computed for `key`: from the cache, or the artefact store.
async fn lookup(app: &App, key: &str, spec: &CacheSpec) -> Result<Option<OcrResult>, StageError> {
    if let Some(hit) = app.cache.get::<OcrResult>(spec).await {
        // The next step reads the artefact this one points at: a cache hit whose artefact
        // is not in this store (another store, or one purged since) writes it there, as
        // `artefact::produce` does, instead of handing on a key that is not there.
        if !app.artefacts.exists(key).await? {
            artefact::store(app, key, &hit).await?;
        }
        return Ok(Some(hit));
    }
    artefact::try_load(app, key).await
}

/// Text of every page of the document: the text layer, and image OCR for the pages that
/// need it (at once with Tesseract; a Textract job is started and `ready` is false).
///
/// # Errors
/// The file is not a readable PDF ([`StageError::Ocr`], terminal, never cached); the
/// source cannot be read or changed; the blob store failed; Textract failed or is not
/// configured.
#[tracing::instrument(skip_all, fields(document_uuid = %input.document.document_uuid, stage = "ocr"))]
pub async fn start(app: &App, input: StartInput) -> Result<OcrOutput, StageError> {
    input.document.validate()?;
    let doc = &input.document;
    let meter = Meter::new(app.config.prices);
    let text = text_layer(app, doc).await?;
    let plan = plan(app, &text.value);
    let mut out = match plan.engine {
        _ if plan.pages.pages().is_empty() => {
            if plan.engine == OcrEngineChoice::Textract {
                meter.textract_avoided(0, text.value.pages.len() as u64);
            }
            text_layer_output(doc, text, &plan)
        }
        OcrEngineChoice::None => text_layer_output(doc, text, &plan),
        OcrEngineChoice::Tesseract => read_with_tesseract(app, doc, &text.value, &plan).await?,
        OcrEngineChoice::Textract => start_textract(app, doc, &text.value, &plan, &meter)
            .await
            .map_err(|e| e.with_usage(meter.ledger()))?,
    };
    out.usage = meter.ledger();
    Ok(out)
}

/// Checks on an OCR job: a Textract job's status (through the job-status cache), and its
/// text once it has succeeded. Without a job, does what `ocr-start` does.
///
/// # Errors
/// As [`start`]; [`TextractError::JobFailed`] (terminal) when the job failed.
#[tracing::instrument(skip_all, fields(document_uuid = %input.document.document_uuid, stage = "ocr"))]
pub async fn poll(app: &App, input: PollInput) -> Result<OcrOutput, StageError> {
    let polls = input.ocr.polls.saturating_add(1);
    let Some(job_id) = input.ocr.job_id.clone() else {
        let mut out = start(
            app,
            StartInput {
                document: input.document,
            },
        )
        .await?;
        out.polls = polls;
        return Ok(out);
    };
    input.document.validate()?;
    let doc = &input.document;
    let meter = Meter::new(app.config.prices);
    let text = text_layer(app, doc).await?;
    let plan = plan(app, &text.value);
    let mut out = poll_textract(app, doc, &text.value, &plan, &meter, &job_id)
        .await
        .map_err(|e| e.with_usage(meter.ledger()))?;
    out.polls = polls;
    out.usage = meter.ledger();
    Ok(out)
}

/// The output of a result ready at `key`.
fn ready_output(key: String, method: String, result: &OcrResult, reused: bool) -> OcrOutput {
    OcrOutput {
        ready: true,
        artefact: Some(key),
        method,
        pages: result.pages.len(),
        pages_without_text: result.pages_without_text(),
        pages_needing_ocr: result.pages_needing_ocr(),
        pages_unread: result.pages_unread(),
        warnings: Vec::new(),
        job_id: None,
        wait_seconds: 0,
        polls: 0,
        work: Work::one(reused),
        usage: Ledger::default(),
    }
}

/// The text layer as the result: nothing needs OCR, or no engine reads it.
fn text_layer_output(doc: &DocumentRef, text: Produced<OcrResult>, plan: &Plan) -> OcrOutput {
    let key = artefact_key(&doc.content_sha256, &pdf_text_method());
    let mut out = ready_output(key, pdf_text_method(), &text.value, text.reused);
    if !out.pages_unread.is_empty() {
        out.warnings.push(format!(
            "{} not read by OCR (LEXPIPE_OCR_ENGINE={}): their text layer is not their content",
            pages_phrase(&out.pages_unread),
            plan.engine.as_str()
        ));
    }
    out
}

/// "page 3" / "pages 2, 5".
fn pages_phrase(pages: &[u32]) -> String {
    let list: Vec<String> = pages.iter().map(u32::to_string).collect();
    match list.len() {
        1 => format!("page {}", list[0]),
        _ => format!("pages {}", list.join(", ")),
    }
}

/// Writes a result some pages of which could not be read, under its own key (never the
/// method's, and never in the cache: the next run tries again), and says so.
async fn incomplete_output(
    app: &App,
    doc: &DocumentRef,
    plan: &Plan,
    result: &OcrResult,
) -> Result<OcrOutput, StageError> {
    let key = artefact_key(&doc.content_sha256, &format!("{}.incomplete", plan.method));
    artefact::store(app, &key, result).await?;
    let mut out = ready_output(key, result.method.clone(), result, false);
    let mut reasons: Vec<String> = result
        .pages
        .iter()
        .filter_map(|p| p.ocr_error.clone())
        .collect();
    reasons.dedup();
    for reason in reasons {
        let pages: Vec<u32> = result
            .pages
            .iter()
            .filter(|p| p.ocr_error.as_deref() == Some(reason.as_str()))
            .map(|p| p.number)
            .collect();
        out.warnings.push(format!(
            "{} could not be read by OCR: {reason}",
            pages_phrase(&pages)
        ));
    }
    tracing::warn!(pages = ?out.pages_unread, "pages could not be read by OCR: {}", out.warnings.join("; "));
    Ok(out)
}

/// Reads the planned pages with Tesseract, one per CPU permit, merged into the text layer.
async fn read_with_tesseract(
    app: &App,
    doc: &DocumentRef,
    text: &OcrResult,
    plan: &Plan,
) -> Result<OcrOutput, StageError> {
    let key = artefact_key(&doc.content_sha256, &plan.method);
    let spec = cache_spec(app, &doc.content_sha256, &plan.method);
    if let Some(hit) = lookup(app, &key, &spec).await? {
        return Ok(ready_output(key, plan.method.clone(), &hit, true));
    }
    let mut result = text.clone();
    result.method = plan.method.clone();
    let tools = Tools::from_config(&app.config.ocr);
    let check = {
        let tools = tools.clone();
        app.run_cpu("ocr", move || tools.check()).await?
    };
    if let Err(missing) = check {
        for &n in plan.pages.pages() {
            if let Some(page) = result.pages.get_mut(n as usize - 1) {
                page.ocr_error = Some(missing.to_string());
            }
        }
        result.method = pdf_text_method();
        return incomplete_output(app, doc, plan, &result).await;
    }
    let bytes = read_source(app, doc).await?;
    let dir = tempfile::tempdir().map_err(|e| StageError::Internal {
        stage: "ocr",
        message: format!("cannot create a temporary folder: {e}"),
    })?;
    let pdf = dir.path().join("document.pdf");
    tokio::fs::write(&pdf, &bytes)
        .await
        .map_err(|e| StageError::Internal {
            stage: "ocr",
            message: format!("cannot write a temporary file: {e}"),
        })?;
    let reads = futures::future::join_all(plan.pages.pages().iter().map(|&n| {
        let tools = tools.clone();
        let pdf = pdf.clone();
        async move {
            (
                n,
                app.run_cpu("ocr", move || tools.read_page(&pdf, n)).await,
            )
        }
    }))
    .await;
    let mut complete = true;
    for (n, read) in reads {
        let Some(page) = result.pages.get_mut(n as usize - 1) else {
            continue;
        };
        match read? {
            Ok(read) => {
                page.text = read.text;
                page.ocr_confidence = read.confidence;
                page.ocr_engine = Some(tesseract::METHOD.to_string());
            }
            Err(e) => {
                complete = false;
                page.ocr_error = Some(e.to_string());
            }
        }
    }
    if !complete {
        return incomplete_output(app, doc, plan, &result).await;
    }
    let produced = produce_ocr(app, &key, &spec, Some(text), || async { Ok(result) }).await?;
    Ok(ready_output(
        key,
        plan.method.clone(),
        &produced.value,
        produced.reused,
    ))
}

/// The Textract engine of this app.
fn textract_engine<'a>(app: &'a App, meter: &'a Meter) -> Result<Engine<'a>, StageError> {
    let client = app.textract.as_ref().ok_or_else(|| {
        TextractError::NotConfigured(
            "no Textract client was built (the OCR engine resolved to Textract after start-up)"
                .into(),
        )
    })?;
    Ok(Engine { app, client, meter })
}

/// Starts (or joins) the Textract job of the planned pages, unless their result is known.
async fn start_textract(
    app: &App,
    doc: &DocumentRef,
    text: &OcrResult,
    plan: &Plan,
    meter: &Meter,
) -> Result<OcrOutput, StageError> {
    let sent = plan.pages.pages().len() as u64;
    let not_sent = text.pages.len() as u64 - sent;
    if not_sent > 0 {
        meter.textract_avoided(0, not_sent);
    }
    let version = if reads_source_object(doc, text, plan) {
        check_source(app, doc).await?
    } else {
        None
    };
    let key = artefact_key(&doc.content_sha256, &plan.method);
    let spec = cache_spec(app, &doc.content_sha256, &plan.method);
    if let Some(hit) = lookup(app, &key, &spec).await? {
        // A start and a result fetch not made; the pages not paid for again.
        meter.textract_avoided(2, sent);
        return Ok(ready_output(key, plan.method.clone(), &hit, true));
    }
    let engine = textract_engine(app, meter)?;
    let request = textract_object(app, doc, text, plan, version).await?;
    let job_id = engine.start(&request).await?;
    Ok(pending_output(app, plan, text, job_id))
}

fn pending_output(app: &App, plan: &Plan, text: &OcrResult, job_id: String) -> OcrOutput {
    OcrOutput {
        ready: false,
        artefact: None,
        method: plan.method.clone(),
        pages: text.pages.len(),
        pages_without_text: text.pages_without_text(),
        pages_needing_ocr: text.pages_needing_ocr(),
        pages_unread: Vec::new(),
        warnings: Vec::new(),
        job_id: Some(job_id),
        wait_seconds: app.config.ocr.poll_interval.as_secs().max(1),
        polls: 0,
        work: Work::default(),
        usage: Ledger::default(),
    }
}

/// The S3 object Textract reads: the source itself when every page is sent and it is in
/// S3; otherwise the bytes (or the PDF of the planned pages) written to the artefact
/// store, which must then be S3.
async fn textract_object(
    app: &App,
    doc: &DocumentRef,
    text: &OcrResult,
    plan: &Plan,
    source_version: Option<String>,
) -> Result<JobRequest, StageError> {
    let whole = plan.pages.pages().len() == text.pages.len();
    let request = |bucket: &str, key: &str, version: Option<String>| JobRequest {
        bucket: bucket.to_string(),
        key: key.to_string(),
        version,
        content_sha256: doc.content_sha256.clone(),
        document_uuid: doc.document_uuid,
        pages: plan.pages.clone(),
    };
    if reads_source_object(doc, text, plan)
        && let Some((bucket, key)) = parse_s3_url(&doc.source)
    {
        return Ok(request(bucket, key, source_version));
    }
    let input_key = format!(
        "{}/{}/textract-input-{}.pdf",
        artefact::PREFIX,
        doc.content_sha256,
        artefact::lineage(&[&plan.pages.label()])
    );
    let location = app.artefacts.location(&input_key);
    let Some((bucket, key)) = parse_s3_url(&location) else {
        return Err(TextractError::NotConfigured(format!(
            "Textract reads documents from S3, and the artefact store is {}: set \
             LEXPIPE_ARTEFACTS to s3://bucket/prefix (or LEXPIPE_OCR_ENGINE=tesseract)",
            app.artefacts.location("")
        ))
        .into());
    };
    if !app.artefacts.exists(&input_key).await? {
        let bytes = read_source(app, doc).await?;
        let body = if whole {
            bytes
        } else {
            let pages = plan.pages.clone();
            app.run_cpu("ocr", move || subset_pdf(&bytes, &pages))
                .await??
        };
        app.artefacts.put(&input_key, body).await?;
    }
    Ok(request(bucket, key, None))
}

/// One poll of a Textract job: pending, failed, or the merged result.
async fn poll_textract(
    app: &App,
    doc: &DocumentRef,
    text: &OcrResult,
    plan: &Plan,
    meter: &Meter,
    job_id: &str,
) -> Result<OcrOutput, StageError> {
    let key = artefact_key(&doc.content_sha256, &plan.method);
    let spec = cache_spec(app, &doc.content_sha256, &plan.method);
    let source_object = reads_source_object(doc, text, plan);
    if let Some(hit) = lookup(app, &key, &spec).await? {
        if source_object {
            check_source(app, doc).await?;
        }
        meter.textract_avoided(1, 0);
        return Ok(ready_output(key, plan.method.clone(), &hit, true));
    }
    let engine = textract_engine(app, meter)?;
    let status = engine.status(job_id).await?;
    if status.is_running() {
        return Ok(pending_output(app, plan, text, job_id.to_string()));
    }
    if status.is_failed() {
        engine
            .job_failed(&doc.content_sha256, &plan.pages, job_id)
            .await;
        return Err(TextractError::JobFailed {
            job_id: job_id.to_string(),
            message: status
                .message
                .unwrap_or_else(|| "Textract gave no reason".to_string()),
        }
        .into());
    }
    // The job read the object when it started: in a bucket without versions, make sure
    // that was still this content before its text is kept under this content's hash.
    if source_object {
        check_source(app, doc).await?;
    }
    let merge = |pages: Vec<textract::TextractPage>| {
        let mut result = text.clone();
        result.method = plan.method.clone();
        for read in pages {
            let Some(page) = result.pages.get_mut(read.number as usize - 1) else {
                continue;
            };
            match read.warning {
                Some(warning) => page.ocr_error = Some(format!("Textract: {warning}")),
                None => {
                    page.text = read.text;
                    page.ocr_confidence = read.confidence;
                    page.ocr_engine = Some(textract::METHOD.to_string());
                }
            }
        }
        result
    };
    if status.status == "PARTIAL_SUCCESS" {
        let result = merge(engine.fetch_text(job_id, &plan.pages).await?);
        return incomplete_output(app, doc, plan, &result).await;
    }
    let produced = produce_ocr(app, &key, &spec, Some(text), || async {
        Ok(merge(engine.fetch_text(job_id, &plan.pages).await?))
    })
    .await?;
    if produced.reused {
        meter.textract_avoided(1, 0);
    }
    Ok(ready_output(
        key,
        plan.method.clone(),
        &produced.value,
        produced.reused,
    ))
}
