//! # lexpipe-functions
//!
//! The Lambda side of lexpipe: what every function binary in `src/bin/` shares, so that
//! each binary only wires tracing, the configuration, the clients built once per cold
//! start, and `lambda_runtime::run(service_fn(..))` into one of the handlers below. The
//! handlers are plain async functions of a [`LambdaEvent`]: tests call them directly,
//! with the sample events of `events/`, without the Lambda runtime.
//!
//! ## Layout
//! - [`init_tracing`], [`build_app`]: a cold start.
//! - [`step_with`]: a state machine task (`ocr-start`, …, `mark-failed`), its step one of
//!   [`lexpipe::pipeline::task`]; [`step`] the same by task name.
//! - [`ingest`]: S3 notifications through [`lexpipe::ingest`].
//! - [`health`]: the check of [`lexpipe::health`].
//! - [`diagnostic`]: errors as Step Functions sees them, `errorType` being the stable
//!   error name the state machine's `Retry`/`Catch` match.
//! - [`Invocation`]: per-invocation deadline and the EMF metric lines printed at its end.

use aws_lambda_events::s3::S3Event;
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use lexpipe::app::{App, AppOptions};
use lexpipe::config::{BlobLocation, Config};
use lexpipe::cost::Ledger;
use lexpipe::ingest::{self, IngestError, ObjectCreated, StateMachine};
use lexpipe::redis::NamespaceStats;
use lexpipe::stages::StageError;
use serde_json::Value;

/// The `health` function's name in its metric lines.
pub const HEALTH: &str = "health";
/// The `ingest` function's name in its metric lines.
pub const INGEST: &str = "ingest";

/// JSON logs (one object per line, as CloudWatch Logs Insights reads them), filtered by
/// `RUST_LOG` (default `info`). Secrets never reach a log line: the configuration and
/// every error message are free of them.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .init();
}

/// Reads the configuration ([`load_config`]) and builds the core of the [`App`]
/// ([`App::build_core`]: Redis, caches, limits, the artefact store) once per cold start.
/// Each function adds what its step uses and nothing more, so that its binary links
/// nothing else: [`App::with_database`] (OCR's Textract job records, `persist`,
/// `mark-failed`, `ingest`), [`App::with_textract`] (OCR), [`App::with_llm`] (the
/// extraction steps).
///
/// Step artefacts go to `LEXPIPE_ARTEFACTS` (an `s3://` location in the cloud, so that
/// every function sees them); without it, to a folder under the temporary directory,
/// which only works when every function runs on one machine (`cargo lambda watch`).
///
/// # Errors
/// A missing or malformed setting (naming the variable), or an artefact store that
/// cannot be opened: the function fails its cold start.
pub async fn build_app() -> Result<App, lambda_runtime::Error> {
    let config = load_config().await?;
    Ok(App::build_core(config, app_options()).await?)
}

/// The configuration, with the secrets given by reference (`*_SECRET_ID`) fetched through
/// the Lambda Parameters and Secrets extension.
///
/// # Errors
/// A missing or malformed setting, or a secret that cannot be fetched (naming the
/// variable, never the value).
pub async fn load_config() -> Result<Config, lambda_runtime::Error> {
    let config = Config::from_env_resolving_secrets().await?;
    tracing::info!(config = %config.describe(), "cold start");
    Ok(config)
}

/// Options of every function's [`App`].
pub fn app_options() -> AppOptions {
    AppOptions {
        default_artefacts: Some(BlobLocation::Folder(
            std::env::temp_dir().join("lexpipe-artefacts"),
        )),
        ..AppOptions::default()
    }
}

/// A stage error as the Lambda runtime reports it: `errorType` is the stable name.
pub fn diagnostic(e: &StageError) -> Diagnostic {
    Diagnostic {
        error_type: e.error_type().to_string(),
        error_message: e.to_string(),
    }
}

/// One invocation: the app bounded by the invocation's deadline, and the cache counters
/// at its start, for the metric lines printed at its end.
pub struct Invocation {
    pub app: App,
    function: &'static str,
    cache_before: Vec<NamespaceStats>,
}

impl Invocation {
    /// Starts an invocation of `function` with `ctx` (its deadline bounds idempotency
    /// records and lock leases taken inside it).
    pub fn start(app: &App, function: &'static str, ctx: &Context) -> Invocation {
        let app = if ctx.deadline > 0 {
            app.with_deadline(ctx.deadline())
        } else {
            app.clone()
        };
        let cache_before = app.cache.local_stats();
        Invocation {
            app,
            function,
            cache_before,
        }
    }

    /// The EMF lines of this invocation so far, given the paid API `usage` it reported.
    pub fn metric_lines(&self, usage: &Ledger) -> Vec<Value> {
        let cache = lexpipe::emf::cache_delta(&self.cache_before, &self.app.cache.local_stats());
        lexpipe::emf::invocation_lines(
            &self.app.config.cloud.metrics_namespace,
            self.function,
            &cache,
            usage,
            lexpipe::emf::now_ms(),
        )
    }

    /// Ends the invocation: prints its metric lines and sends the cache counters to Redis
    /// (a frozen Lambda would otherwise hold them until its next invocation).
    pub async fn finish(self, usage: &Ledger) {
        for line in self.metric_lines(usage) {
            println!("{line}");
        }
        self.app.cache.flush_metrics().await;
    }
}

/// The handler of the state machine task `task` by name ([`lexpipe::pipeline::invoke`]):
/// what tests call; a function's binary calls [`step_with`] and its own step, so that it
/// links no other.
///
/// # Errors
/// The step's error.
pub async fn step(
    app: &App,
    task: &'static str,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    let run = async |app: &App, input: Value| lexpipe::pipeline::invoke(app, task, input).await;
    step_with(app, task, run, event).await
}

/// The handler of the state machine task `task`, whose step is `run` (one of
/// [`lexpipe::pipeline::task`]): the step on the event's JSON, its error as a
/// [`Diagnostic`] carrying the stable error name, and the invocation's metric lines.
///
/// # Errors
/// The step's error.
pub async fn step_with<F>(
    app: &App,
    task: &'static str,
    run: F,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic>
where
    F: AsyncFn(&App, Value) -> Result<Value, StageError>,
{
    let (payload, ctx) = event.into_parts();
    let inv = Invocation::start(app, task, &ctx);
    let r = run(&inv.app, payload).await;
    inv.finish(&step_usage(&r)).await;
    r.map_err(|e| {
        tracing::warn!(task, error_type = e.error_type(), "step failed: {e}");
        diagnostic(&e)
    })
}

/// The paid API usage of a step's invocation, for its metric lines: what its output
/// reports, or, when it failed, what its error carries ([`StageError::usage`]: the calls a
/// failed attempt made were received, and billed, all the same).
pub fn step_usage(result: &Result<Value, StageError>) -> Ledger {
    match result {
        Ok(output) => Ledger::reported(output),
        Err(e) => e.usage().copied(),
    }
    .unwrap_or_default()
}

/// The objects of an S3 notification (records without a bucket or key are dropped with a
/// warning: S3 never sends them).
pub fn objects(event: &S3Event) -> Vec<ObjectCreated> {
    event
        .records
        .iter()
        .filter_map(|r| {
            let o = &r.s3.object;
            match (&r.s3.bucket.name, &o.key) {
                (Some(bucket), Some(key)) => Some(ObjectCreated {
                    bucket: bucket.clone(),
                    raw_key: key.clone(),
                    version_id: o.version_id.clone(),
                    etag: o.e_tag.clone(),
                    sequencer: o.sequencer.clone(),
                }),
                _ => {
                    tracing::warn!("notification record without bucket or key; ignored");
                    None
                }
            }
        })
        .collect()
}

/// The `ingest` handler: every object of the notification (see [`lexpipe::ingest`]).
///
/// # Errors
/// The first object that failed, after every object was tried; its `errorType` names
/// why ([`IngestError::error_type`]).
pub async fn ingest(
    app: &App,
    machine: &StateMachine,
    event: LambdaEvent<S3Event>,
) -> Result<ingest::Report, Diagnostic> {
    let (payload, ctx) = event.into_parts();
    let inv = Invocation::start(app, INGEST, &ctx);
    let r = ingest::ingest_batch(&inv.app, machine, &objects(&payload)).await;
    inv.finish(&Ledger::default()).await;
    r.map_err(|e: IngestError| Diagnostic {
        error_type: e.error_type().to_string(),
        error_message: e.to_string(),
    })
}

/// The `health` handler (any event, e.g. a schedule): the report, and its metric line.
/// An unhealthy verdict is a report, not an error: alarms watch `HealthStatus`.
///
/// # Errors
/// None so far; the signature leaves room.
pub async fn health(
    app: &App,
    database_problem: Option<&str>,
    event: LambdaEvent<Value>,
) -> Result<lexpipe::health::Report, Diagnostic> {
    let inv = Invocation::start(app, HEALTH, &event.context);
    let report = lexpipe::health::check(&inv.app, database_problem.map(str::to_string)).await;
    let ns = &inv.app.config.cloud.metrics_namespace;
    println!(
        "{}",
        lexpipe::emf::health_line(ns, HEALTH, &report, lexpipe::emf::now_ms())
    );
    inv.finish(&Ledger::default()).await;
    Ok(report)
}
