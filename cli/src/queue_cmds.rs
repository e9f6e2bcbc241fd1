//! `lexpipe migrate`, `lexpipe enqueue`, `lexpipe worker`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use lexpipe::config::Config;
use lexpipe::redis::{self as lredis, KeyBuilder, RedisHandle};
use lexpipe::runner;
use lexpipe::stages::Deps;
use lexpipe::store::{db, queue};
use lexpipe::worker::{PipelineProcessor, Worker, WorkerOptions};

async fn database(config: &Config) -> anyhow::Result<sqlx::PgPool> {
    let pool = db::open(&config.database).await?;
    Ok(pool)
}

pub async fn migrate(config: Config) -> anyhow::Result<ExitCode> {
    let pool = db::connect(&config.database).await?;
    db::migrate(&pool).await?;
    eprintln!("lexpipe: migrations applied");
    Ok(ExitCode::SUCCESS)
}

pub async fn enqueue(
    config: Config,
    paths: Vec<PathBuf>,
    priority: i32,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let pool = database(&config).await?;
    let inputs = runner::collect_inputs(&paths)?;
    let mut rows = Vec::new();
    let (mut created, mut existing) = (0, 0);
    for path in inputs {
        let abs = std::fs::canonicalize(&path).unwrap_or(path.clone());
        let bytes = match runner::read_document(&abs, 256 * 1024 * 1024).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("lexpipe: {}: {e}", path.display());
                continue;
            }
        };
        let sha = lexpipe::text::sha256_hex(bytes.as_slice());
        let doc = runner::document_uuid(&sha);
        let e = queue::enqueue(&pool, doc, &sha, &abs.display().to_string(), priority).await?;
        if e.created {
            created += 1;
        } else {
            existing += 1;
        }
        rows.push(serde_json::json!({
            "source": path.display().to_string(),
            "document_uuid": doc.to_string(),
            "item_id": e.item_id,
            "created": e.created,
        }));
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"enqueued": rows, "created": created, "existing": existing})
            )?
        );
    } else {
        println!("enqueued {created} new documents ({existing} already queued or known)");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn worker(
    config: Config,
    concurrency: usize,
    until_empty: bool,
    lease_secs: u64,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let pool = database(&config).await?;
    if !config.redis.enabled || !config.redis.features.locks {
        anyhow::bail!("workers need Redis locks (LEXPIPE_REDIS_ENABLED and LEXPIPE_REDIS_LOCKS)");
    }
    let handle = RedisHandle::new(&config)?;
    handle.connect().await?;
    let keys = KeyBuilder::new(&config.env);
    let setup = lredis::connect_cache(&config).await;
    let mut deps = Deps::new(Arc::new(config.clone()), setup.cache.clone());
    if config.redis.features.state {
        deps.states = Some(Arc::new(lredis::state::StateStore::new(
            handle.clone(),
            keys.clone(),
            config.state,
        )));
    }
    let idempotency = config.redis.features.idempotency.then(|| {
        Arc::new(lredis::idempotency::Idempotency::new(
            handle.clone(),
            keys.clone(),
            config.idempotency,
        ))
    });
    let processor = Arc::new(PipelineProcessor {
        deps,
        target: runner::PersistTarget {
            pool: pool.clone(),
            idempotency,
        },
        max_file_bytes: 256 * 1024 * 1024,
        lease: Duration::from_secs(lease_secs.max(1)),
    });
    let opts = WorkerOptions {
        concurrency,
        until_empty,
        lease: Duration::from_secs(lease_secs.max(1)),
        ..WorkerOptions::default()
    };
    let locks = lredis::lock::Locks::new(handle, keys);
    let worker = Worker::new(pool, locks, processor, opts);
    let report = tokio::select! {
        r = worker.run() => r,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("lexpipe: interrupted; items in progress will be reclaimed after their lease");
            worker.report()
        }
    };
    setup.cache.flush_metrics().await;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "worker: {} completed, {} failed, {} requeued, {} lost",
            report.completed, report.failed, report.requeued, report.lost
        );
    }
    Ok(ExitCode::SUCCESS)
}
