//! `lexpipe migrate`, `lexpipe enqueue`, `lexpipe worker`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use lexpipe::app::{App, AppOptions};
use lexpipe::config::{BlobLocation, Config};
use lexpipe::ingest::{self, ObjectOutcome, RetryOutcome, StateMachine};
use lexpipe::runner;
use lexpipe::store::{db, queue};
use lexpipe::worker::{PipelineProcessor, Worker, WorkerOptions};

pub async fn migrate(config: Config) -> anyhow::Result<ExitCode> {
    let pool = db::connect(&config.database).await?;
    db::migrate(&pool).await?;
    eprintln!("lexpipe: migrations applied");
    Ok(ExitCode::SUCCESS)
}

pub async fn enqueue(
    config: Config,
    paths: Vec<String>,
    priority: i32,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if config.database.url.is_none() {
        anyhow::bail!("enqueue needs a database: set DATABASE_URL");
    }
    let app = App::build(config, AppOptions::default()).await?;
    let pool = app.db.clone().expect("a database is configured");
    let sources = runner::collect_sources(&app, &paths).await?;
    let mut rows = Vec::new();
    let (mut created, mut existing, mut unreadable) = (0, 0, 0);
    for source in sources {
        // Local files are queued under their absolute path: workers may run elsewhere.
        let source = if source.starts_with("s3://") {
            source
        } else {
            std::fs::canonicalize(&source)
                .map(|p| p.display().to_string())
                .unwrap_or(source)
        };
        let document = match runner::identify(&app, &source).await {
            Ok(d) => d,
            Err(e) => {
                eprintln!("lexpipe: {source}: {} ({})", e, e.error_type());
                unreadable += 1;
                rows.push(serde_json::json!({
                    "source": source,
                    "error": e.to_string(),
                    "error_type": e.error_type(),
                }));
                continue;
            }
        };
        let e = queue::enqueue(
            &pool,
            document.document_uuid,
            &document.content_sha256,
            &source,
            priority,
        )
        .await?;
        if e.created {
            created += 1;
        } else {
            existing += 1;
        }
        rows.push(serde_json::json!({
            "source": source,
            "document_uuid": document.document_uuid.to_string(),
            "item_id": e.item_id,
            "created": e.created,
        }));
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "enqueued": rows, "created": created, "existing": existing, "unreadable": unreadable
            }))?
        );
    } else {
        println!(
            "enqueued {created} new documents ({existing} already queued or known, {unreadable} unreadable)"
        );
    }
    Ok(if created + existing == 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub async fn worker(
    config: Config,
    concurrency: usize,
    until_empty: bool,
    lease_secs: u64,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if config.database.url.is_none() {
        anyhow::bail!("workers need a database: set DATABASE_URL");
    }
    if !config.redis.enabled || !config.redis.features.locks {
        anyhow::bail!("workers need Redis locks (LEXPIPE_REDIS_ENABLED and LEXPIPE_REDIS_LOCKS)");
    }
    let app = App::build(
        config,
        AppOptions {
            default_artefacts: Some(BlobLocation::Folder(PathBuf::from("out"))),
            ..AppOptions::default()
        },
    )
    .await?;
    let (Some(pool), Some(locks)) = (app.db.clone(), app.locks.clone()) else {
        anyhow::bail!("workers need a reachable Redis for locks (REDIS_URL)");
    };
    if app.redis_status != lexpipe::redis::RedisStatus::Connected {
        anyhow::bail!("workers need a reachable Redis for locks (REDIS_URL)");
    }
    let lease = Duration::from_secs(lease_secs.max(1));
    let cache = app.cache.clone();
    let processor = Arc::new(PipelineProcessor::new(app, lease)?);
    let opts = WorkerOptions {
        concurrency,
        until_empty,
        lease,
        ..WorkerOptions::default()
    };
    let worker = Worker::new(pool, locks, processor, opts);
    let report = tokio::select! {
        r = worker.run() => r,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("lexpipe: interrupted; items in progress will be reclaimed after their lease");
            worker.report()
        }
    };
    cache.flush_metrics().await;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "worker: {} completed, {} failed, {} requeued, {} lost",
            report.completed, report.failed, report.requeued, report.lost
        );
        let r = report.redis;
        if r != lexpipe::worker::RedisTrouble::default() {
            println!(
                "redis trouble: {} claims refused for want of a Redis lock, {} locks lost with \
                 the claim kept, {} cache calls fell back, {} state writes not made, {} \
                 documents lost their state mid-run (`lexpipe status` reports them)",
                r.lock_errors,
                r.locks_lost_claims_kept,
                r.cache_fallbacks,
                r.state_writes_failed,
                r.documents_state_lost
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `lexpipe retry`: the named documents (UUIDs or files), or every failed one
/// (`--failed`, optionally of one error type), back in the queue, each execution started
/// when a state machine is configured (see [`lexpipe::ingest::retry`]).
pub async fn retry(
    config: Config,
    documents: Vec<String>,
    error_type: Option<String>,
    attempts: i32,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if config.database.url.is_none() {
        anyhow::bail!("retry needs the queue's database: set DATABASE_URL");
    }
    let mut targets = Vec::new();
    for d in &documents {
        targets.push(crate::status::resolve_target(d).await?);
    }
    let machine = match &config.cloud.state_machine_arn {
        Some(_) => Some(StateMachine::from_config(&config).await?),
        None => None,
    };
    // The queue's database and Redis (locks, state): no OCR or LLM client.
    let app = App::build_core(config, AppOptions::default())
        .await?
        .with_database()
        .await?;
    let pool = app.db.clone().expect("a database is configured");
    if documents.is_empty() {
        targets = queue::failed_documents(&pool, error_type.as_deref()).await?;
    }
    let (mut requeued, mut refused, mut errors) = (0u32, 0u32, 0u32);
    let mut rows = Vec::new();
    for uuid in targets {
        match ingest::retry(&app, machine.as_ref(), uuid, attempts).await {
            Ok(outcome) => {
                match &outcome {
                    RetryOutcome::Requeued {
                        source,
                        attempt,
                        execution,
                        ..
                    } => {
                        requeued += 1;
                        if !json {
                            let how = match execution {
                                None => "queued for `lexpipe worker`".to_string(),
                                Some(ObjectOutcome::Started { execution_name, .. })
                                | Some(ObjectOutcome::AlreadyStarted { execution_name, .. }) => {
                                    format!("execution {execution_name} started")
                                }
                                Some(other) => format!("queued; execution not started: {other:?}"),
                            };
                            println!("{uuid}  {source}: attempt {attempt}, {how}");
                        }
                    }
                    RetryOutcome::NotFailed { status, .. } => {
                        refused += 1;
                        if !json {
                            println!("{uuid}: {status}, not failed; left as it is");
                        }
                    }
                    RetryOutcome::Unknown { .. } => {
                        refused += 1;
                        if !json {
                            println!("{uuid}: not in the queue's database");
                        }
                    }
                }
                rows.push(serde_json::to_value(&outcome)?);
            }
            Err(e) => {
                errors += 1;
                eprintln!("lexpipe: {uuid}: {e} ({})", e.error_type());
                rows.push(serde_json::json!({
                    "document_uuid": uuid, "outcome": "error",
                    "error": e.to_string(), "error_type": e.error_type(),
                }));
            }
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "documents": rows, "requeued": requeued, "not_retried": refused, "errors": errors,
            }))?
        );
    } else {
        println!("{requeued} documents queued again, {refused} not retried, {errors} errors");
    }
    Ok(if errors > 0 {
        ExitCode::from(2)
    } else if refused > 0 && !documents.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
