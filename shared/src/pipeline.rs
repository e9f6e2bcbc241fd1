//! The pipeline as one document sees it: the state machine definition every runner
//! executes, the step behind each of its task names, the document state each step
//! records, and the direct path (every step in order, no state machine) that tests and
//! the benchmark compare with.
//!
//! ## Layout
//! - [`DEFINITION`] and [`definition`]: `statemachine/pipeline.asl.json`, resolved for
//!   this process (each `${…FunctionArn}` → the task's name).
//! - [`invoke`]: a task by name, JSON in and out — what a Lambda function, the local
//!   runner and tests call.
//! - [`LocalTasks`]: [`invoke`] for the local ASL runner, counting per-stage reuse and
//!   the largest payload.
//! - [`StageRecorder`]: document state per stage, and the fault-injection hook.
//! - [`analyse`]: every analysis step in order, without the state machine;
//!   [`process_direct`]: the same with the document state and the persist step, i.e.
//!   what the ASL runner does for a document minus the interpreter.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::app::App;
use crate::asl;
use crate::model::DocumentOutput;
use crate::stages::{
    self, DocumentRef, StageError, Work, chunk, entities, mark_failed, names, ocr, persist,
    resolve, structured, tasks,
};

/// The state machine definition, as committed in `statemachine/pipeline.asl.json`.
pub const DEFINITION: &str = include_str!("../../statemachine/pipeline.asl.json");

/// Polls of an asynchronous OCR job before the direct path gives up, as the state
/// machine's `OcrReady` choice does.
const MAX_OCR_POLLS: u32 = 120;

/// The `DefinitionSubstitutions` placeholder of each task, and the task it names.
pub const SUBSTITUTIONS: [(&str, &str); 8] = [
    ("OcrStartFunctionArn", tasks::OCR_START),
    ("OcrPollFunctionArn", tasks::OCR_POLL),
    ("ChunkFunctionArn", tasks::CHUNK),
    ("ExtractEntitiesFunctionArn", tasks::EXTRACT_ENTITIES),
    ("ResolveEntitiesFunctionArn", tasks::RESOLVE_ENTITIES),
    ("ExtractStructuredFunctionArn", tasks::EXTRACT_STRUCTURED),
    ("PersistFunctionArn", tasks::PERSIST),
    ("MarkFailedFunctionArn", tasks::MARK_FAILED),
];

/// The definition with every Task resource resolved to its task name.
///
/// # Errors
/// The committed definition uses something the local runner does not support (a test
/// keeps this from happening).
pub fn definition() -> Result<asl::Definition, asl::AslError> {
    let subs: HashMap<String, String> = SUBSTITUTIONS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    asl::Definition::load(DEFINITION, &subs)
}

/// The stage a task records, if any.
pub fn stage_of(task: &str) -> Option<&'static str> {
    Some(match task {
        tasks::OCR_START | tasks::OCR_POLL => names::OCR,
        tasks::CHUNK => names::CHUNK,
        tasks::EXTRACT_ENTITIES => names::ENTITIES,
        tasks::RESOLVE_ENTITIES => names::RESOLVE,
        tasks::EXTRACT_STRUCTURED => names::STRUCTURED,
        tasks::PERSIST => names::PERSIST,
        _ => return None,
    })
}

fn decode<T: DeserializeOwned>(task: &str, input: Value) -> Result<T, StageError> {
    serde_json::from_value(input).map_err(|e| StageError::InvalidInput {
        message: format!("{task}: {e}"),
    })
}

fn encode<T: Serialize>(task: &str, output: &T) -> Result<Value, StageError> {
    serde_json::to_value(output).map_err(|e| StageError::Internal {
        stage: "pipeline",
        message: format!("{task}: cannot serialise the output: {e}"),
    })
}

/// Runs the task called `task` on its JSON input, recording the document state of the
/// stage it belongs to.
///
/// # Errors
/// An unknown task or malformed input ([`StageError::InvalidInput`]), or the step's
/// own error.
pub async fn invoke(app: &App, task: &str, input: Value) -> Result<Value, StageError> {
    match task {
        tasks::OCR_START => task::ocr_start(app, input).await,
        tasks::OCR_POLL => task::ocr_poll(app, input).await,
        tasks::CHUNK => task::chunk(app, input).await,
        tasks::EXTRACT_ENTITIES => task::extract_entities(app, input).await,
        tasks::RESOLVE_ENTITIES => task::resolve_entities(app, input).await,
        tasks::EXTRACT_STRUCTURED => task::extract_structured(app, input).await,
        tasks::PERSIST => task::persist(app, input).await,
        tasks::MARK_FAILED => task::mark_failed(app, input).await,
        other => Err(StageError::InvalidInput {
            message: format!("unknown task {other:?}"),
        }),
    }
}

/// Each task of [`invoke`] on its own, JSON in and out, recording the document state of
/// its stage. A Lambda function calls just its own, so that its binary links only the
/// code of its step (the `chunk` function carries no OCR engine, no LLM client).
pub mod task {
    use super::*;

    /// `ocr-start`.
    ///
    /// # Errors
    /// Malformed input, or the step's error.
    pub async fn ocr_start(app: &App, input: Value) -> Result<Value, StageError> {
        let task = tasks::OCR_START;
        let i: ocr::StartInput = decode(task, input)?;
        let rec = StageRecorder::new(app, i.document.document_uuid);
        rec.begin(names::OCR).await?;
        // Boxed: the OCR step's future is deep (engines, caches, single flight), and
        // callers that nest `invoke` in their own futures would hit the compiler's
        // recursion limit computing its layout.
        let r = Box::pin(ocr::start(app, i)).await;
        let done = r.as_ref().is_ok_and(|o| o.ready);
        rec.end(names::OCR, &r, done, |o| o.pages as u64).await;
        encode(task, &r?)
    }

    /// `ocr-poll`.
    ///
    /// # Errors
    /// Malformed input, or the step's error.
    pub async fn ocr_poll(app: &App, input: Value) -> Result<Value, StageError> {
        let task = tasks::OCR_POLL;
        let i: ocr::PollInput = decode(task, input)?;
        let rec = StageRecorder::new(app, i.document.document_uuid);
        let r = Box::pin(ocr::poll(app, i)).await;
        let done = r.as_ref().is_ok_and(|o| o.ready);
        rec.end(names::OCR, &r, done, |o| o.pages as u64).await;
        encode(task, &r?)
    }

    /// `chunk`.
    ///
    /// # Errors
    /// Malformed input, or the step's error.
    pub async fn chunk(app: &App, input: Value) -> Result<Value, StageError> {
        let task = tasks::CHUNK;
        let i: chunk::Input = decode(task, input)?;
        let rec = StageRecorder::new(app, i.document.document_uuid);
        rec.begin(names::CHUNK).await?;
        let r = chunk::run(app, i).await;
        rec.end(names::CHUNK, &r, true, |o| o.chunks as u64).await;
        encode(task, &r?)
    }

    /// `extract-entities`: one batch of the Map. The batches share one stage: the first
    /// batch starts it, any batch fails it, and resolve-entities completes it once every
    /// batch is done.
    ///
    /// # Errors
    /// Malformed input, or the step's error.
    pub async fn extract_entities(app: &App, input: Value) -> Result<Value, StageError> {
        let task = tasks::EXTRACT_ENTITIES;
        let i: entities::Input = decode(task, input)?;
        let rec = StageRecorder::new(app, i.document.document_uuid);
        if i.batch.index == 0 {
            rec.mark_started(names::ENTITIES).await;
        }
        if let Err(e) = rec.hook(names::ENTITIES) {
            rec.record_failure(names::ENTITIES, &e).await;
            return Err(e);
        }
        let r = entities::run(app, i).await;
        rec.end(names::ENTITIES, &r, false, |_| 0).await;
        encode(task, &r?)
    }

    /// `resolve-entities`.
    ///
    /// # Errors
    /// Malformed input, or the step's error.
    pub async fn resolve_entities(app: &App, input: Value) -> Result<Value, StageError> {
        let task = tasks::RESOLVE_ENTITIES;
        let i: resolve::Input = decode(task, input)?;
        let rec = StageRecorder::new(app, i.document.document_uuid);
        rec.mark_completed(names::ENTITIES, i.entities.iter().map(|b| b.mentions).sum())
            .await;
        rec.begin(names::RESOLVE).await?;
        let r = resolve::run(app, i).await;
        rec.end(names::RESOLVE, &r, true, |o| o.entities as u64)
            .await;
        encode(task, &r?)
    }

    /// `extract-structured`.
    ///
    /// # Errors
    /// Malformed input, or the step's error.
    pub async fn extract_structured(app: &App, input: Value) -> Result<Value, StageError> {
        let task = tasks::EXTRACT_STRUCTURED;
        let i: structured::Input = decode(task, input)?;
        let rec = StageRecorder::new(app, i.document.document_uuid);
        rec.begin(names::STRUCTURED).await?;
        let r = structured::run(app, i).await;
        rec.end(names::STRUCTURED, &r, true, |_| 1).await;
        encode(task, &r?)
    }

    /// `persist`.
    ///
    /// # Errors
    /// Malformed input, or the step's error.
    pub async fn persist(app: &App, input: Value) -> Result<Value, StageError> {
        let task = tasks::PERSIST;
        let i: persist::Input = decode(task, input)?;
        let rec = StageRecorder::new(app, i.document.document_uuid);
        rec.begin(names::PERSIST).await?;
        let r = persist::step(app, i).await;
        rec.end(names::PERSIST, &r, true, |_| 1).await;
        encode(task, &r?)
    }

    /// `mark-failed`.
    ///
    /// # Errors
    /// Malformed input, or a database the row cannot be settled in.
    pub async fn mark_failed(app: &App, input: Value) -> Result<Value, StageError> {
        let task = tasks::MARK_FAILED;
        let i: mark_failed::Input = decode(task, input)?;
        let r = mark_failed::run(app, i).await?;
        encode(task, &r)
    }
}

/// Per-stage computed/reused counts of one document or run.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StageTally {
    pub stages: BTreeMap<&'static str, Work>,
    /// Paid API usage the steps reported.
    pub usage: crate::cost::Ledger,
}

impl StageTally {
    /// Adds a step's reported work.
    pub fn add_work(&mut self, stage: &'static str, w: Work) {
        let c = self.stages.entry(stage).or_default();
        c.computed += w.computed;
        c.reused += w.reused;
    }

    /// Adds the work a step reported in its output (`{"work": {computed, reused}}`).
    pub fn add_reported(&mut self, stage: &'static str, output: &Value) {
        if let Some(w) = output
            .get("work")
            .and_then(|w| serde_json::from_value::<Work>(w.clone()).ok())
        {
            self.add_work(stage, w);
        }
        if let Some(usage) = crate::cost::Ledger::reported(output) {
            self.usage.add(&usage);
        }
    }

    /// Adds another tally.
    pub fn merge(&mut self, other: &StageTally) {
        for (stage, w) in &other.stages {
            self.add_work(stage, *w);
        }
        self.usage.add(&other.usage);
    }
}

/// The tasks of the local ASL runner: [`invoke`] in this process, with the work each
/// step reports added to a tally and the largest payload in or out remembered (Step
/// Functions caps them at 256 KiB).
pub struct LocalTasks<'a> {
    app: &'a App,
    tally: Mutex<StageTally>,
    largest_payload: AtomicUsize,
}

impl<'a> LocalTasks<'a> {
    pub fn new(app: &'a App) -> LocalTasks<'a> {
        LocalTasks {
            app,
            tally: Mutex::new(StageTally::default()),
            largest_payload: AtomicUsize::new(0),
        }
    }

    /// What the steps reported so far.
    pub fn tally(&self) -> StageTally {
        self.tally.lock().expect("poisoned").clone()
    }

    /// Bytes of the largest task input or output so far, as JSON.
    pub fn largest_payload(&self) -> usize {
        self.largest_payload.load(Ordering::Relaxed)
    }

    fn note_size(&self, v: &Value) {
        let n = serde_json::to_vec(v).map(|b| b.len()).unwrap_or(0);
        self.largest_payload.fetch_max(n, Ordering::Relaxed);
    }
}

#[async_trait::async_trait]
impl asl::Tasks for LocalTasks<'_> {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, asl::TaskError> {
        self.note_size(&input);
        match invoke(self.app, resource, input).await {
            Ok(out) => {
                self.note_size(&out);
                if let Some(stage) = stage_of(resource) {
                    self.tally
                        .lock()
                        .expect("poisoned")
                        .add_reported(stage, &out);
                }
                Ok(out)
            }
            Err(e) => {
                // A failed attempt may still have made paid calls (a throttled start).
                if let (Some(usage), Some(_)) = (e.usage(), stage_of(resource)) {
                    self.tally.lock().expect("poisoned").usage.add(usage);
                }
                Err(asl::TaskError {
                    error: e.error_type().to_string(),
                    cause: e.to_string(),
                })
            }
        }
    }
}

/// Every analysis step of one document in order, called directly (no state machine):
/// the document's results without persisting them. Each step's reuse is added to
/// `tally`.
///
/// # Errors
/// A step failed for this document.
pub async fn analyse(
    app: &App,
    document: &DocumentRef,
    tally: &mut StageTally,
) -> Result<DocumentOutput, StageError> {
    let pointers = run_direct(app, document, tally).await?;
    stages::persist::assemble(app, &pointers).await
}

/// Every step of one document in order, called directly (no state machine): the
/// document state initialised as the runner does ([`crate::runner::execute`]), the
/// analysis steps, then `persist`, each through [`invoke`] so that it records the same
/// state. What `lexpipe bench pipeline` compares the ASL runner with: the difference is
/// the interpreter (paths, `Parameters`, the `Map` state, payload bookkeeping). Each
/// step's reuse is added to `tally`.
///
/// # Errors
/// A step failed for this document (nothing records the failure: there is no `Catch`).
pub async fn process_direct(
    app: &App,
    document: &DocumentRef,
    tally: &mut StageTally,
) -> Result<persist::Output, StageError> {
    begin_document(app, document).await;
    let input = run_direct(app, document, tally).await?;
    let out = invoke(app, tasks::PERSIST, encode(tasks::PERSIST, &input)?).await?;
    tally.add_reported(names::PERSIST, &out);
    decode(tasks::PERSIST, out)
}

/// Creates (or adopts) the document's state with every stage of the pipeline: what a
/// run does before the first step.
pub async fn begin_document(app: &App, document: &DocumentRef) {
    StageRecorder::new(app, document.document_uuid)
        .init(&document.source, &document.content_sha256, &names::ALL)
        .await;
}

/// The analysis steps in order; the persist step's input they lead to.
async fn run_direct(
    app: &App,
    document: &DocumentRef,
    tally: &mut StageTally,
) -> Result<persist::Input, StageError> {
    let doc = || serde_json::json!(document);
    let call = |task: &'static str, input: Value| async move { invoke(app, task, input).await };
    let mut ocr_out = call(tasks::OCR_START, serde_json::json!({"document": doc()})).await?;
    tally.add_reported(names::OCR, &ocr_out);
    // An asynchronous engine (Textract): wait and poll as the state machine does.
    let mut polls = 0;
    while ocr_out.get("ready") == Some(&Value::Bool(false)) {
        polls += 1;
        if polls > MAX_OCR_POLLS {
            return Err(StageError::Execution {
                error: stages::errors::OCR_TIMEOUT.to_string(),
                cause: format!("OCR was not ready after {MAX_OCR_POLLS} polls"),
            });
        }
        let wait = ocr_out
            .get("wait_seconds")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
        ocr_out = call(
            tasks::OCR_POLL,
            serde_json::json!({"document": doc(), "ocr": ocr_out}),
        )
        .await?;
        tally.add_reported(names::OCR, &ocr_out);
    }
    let chunk_out = call(
        tasks::CHUNK,
        serde_json::json!({"document": doc(), "ocr": ocr_out}),
    )
    .await?;
    tally.add_reported(names::CHUNK, &chunk_out);
    let chunks: chunk::Output = decode(tasks::CHUNK, chunk_out.clone())?;
    let mut batch_outs = Vec::with_capacity(chunks.batches.len());
    for b in &chunks.batches {
        let out = call(
            tasks::EXTRACT_ENTITIES,
            serde_json::json!({"document": doc(), "chunks": chunks.artefact, "batch": b}),
        )
        .await?;
        tally.add_reported(names::ENTITIES, &out);
        batch_outs.push(out);
    }
    let res_out = call(
        tasks::RESOLVE_ENTITIES,
        serde_json::json!({"document": doc(), "chunks": chunk_out, "entities": batch_outs}),
    )
    .await?;
    tally.add_reported(names::RESOLVE, &res_out);
    let st_out = call(
        tasks::EXTRACT_STRUCTURED,
        serde_json::json!({"document": doc(), "ocr": ocr_out, "resolution": res_out}),
    )
    .await?;
    tally.add_reported(names::STRUCTURED, &st_out);
    let input = decode(
        tasks::PERSIST,
        serde_json::json!({"document": doc(), "ocr": ocr_out, "chunks": chunk_out,
            "resolution": res_out, "structured": st_out, "queue": null}),
    )?;
    Ok(input)
}

/// Records each stage of one document in the document state (when tracking is on) and
/// runs the fault-injection hook before it. State is for progress and resume; a state
/// write that fails is logged once per document and never fails the work.
pub struct StageRecorder<'a> {
    app: &'a App,
    doc: uuid::Uuid,
    warned: AtomicBool,
}

impl<'a> StageRecorder<'a> {
    pub fn new(app: &'a App, doc: uuid::Uuid) -> StageRecorder<'a> {
        StageRecorder {
            app,
            doc,
            warned: AtomicBool::new(false),
        }
    }

    fn note<T, E: std::fmt::Display>(&self, r: Result<T, E>) {
        if let Err(e) = r
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(document_uuid = %self.doc, error = %e, "document state not recorded");
        }
    }

    /// Creates (or adopts) the document's state with `stages`.
    pub async fn init(&self, source: &str, sha: &str, stages: &[&str]) {
        if let Some(states) = &self.app.states {
            let r = states.init(self.doc, source, sha, stages).await;
            self.note(r);
        }
    }

    /// Runs the fault-injection hook of `stage`.
    ///
    /// # Errors
    /// The injected failure, recorded as the stage's failure.
    pub fn hook(&self, stage: &'static str) -> Result<(), StageError> {
        self.app.hooks.before_stage(&self.doc.to_string(), stage)
    }

    /// Marks `stage` running (one more attempt).
    pub async fn mark_started(&self, stage: &'static str) {
        if let Some(states) = &self.app.states {
            let r = states.start_stage(self.doc, stage).await;
            self.note(r);
        }
    }

    /// Marks `stage` completed with `count`.
    pub async fn mark_completed(&self, stage: &'static str, count: u64) {
        if let Some(states) = &self.app.states {
            let r = states.complete_stage(self.doc, stage, count).await;
            self.note(r);
        }
    }

    /// Starts `stage`: running, then the hook. An injected failure is recorded as the
    /// stage's failure.
    ///
    /// # Errors
    /// The injected failure.
    pub async fn begin(&self, stage: &'static str) -> Result<(), StageError> {
        self.mark_started(stage).await;
        if let Err(e) = self.hook(stage) {
            self.record_failure(stage, &e).await;
            return Err(e);
        }
        Ok(())
    }

    /// Ends `stage`: failed with the error, or (when `complete`) completed with
    /// `count(output)`.
    pub async fn end<T>(
        &self,
        stage: &'static str,
        result: &Result<T, StageError>,
        complete: bool,
        count: impl FnOnce(&T) -> u64,
    ) {
        match result {
            Ok(v) if complete => self.mark_completed(stage, count(v)).await,
            Ok(_) => {}
            Err(e) => self.record_failure(stage, e).await,
        }
    }

    /// Marks `stage` failed with `e`.
    pub async fn record_failure(&self, stage: &'static str, e: &StageError) {
        if let Some(states) = &self.app.states {
            let r = states
                .fail_stage(self.doc, stage, e.error_type(), &e.to_string())
                .await;
            self.note(r);
        }
    }
}
