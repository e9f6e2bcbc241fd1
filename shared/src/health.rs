//! One health check, shared by `lexpipe health` and the `health` Lambda function.
//!
//! Redis ([`crate::redis::health::check`]): reachable and its latency, memory against
//! maxmemory, evictions, the eviction policy, and lexpipe's cache hit rate per namespace.
//! PostgreSQL, when the process has a database: documents `running` for longer than
//! `LEXPIPE_HEALTH_STUCK_AFTER_SECS`, queue rows whose lease ran out, and Textract jobs
//! that failed in the last 24 hours (`textract_jobs`; a database without that table
//! reports none instead of failing the check).
//!
//! The verdict is the worst of both: unreachable Redis or database is unhealthy; slow,
//! full, evicting, stuck documents or failed Textract jobs are degraded.

use std::time::Duration;

use serde::Serialize;
use sqlx::PgPool;

use crate::app::{App, AppError, AppOptions};
use crate::config::Config;
use crate::redis::health::{HealthReport, Status};
use crate::redis::{CacheBackend, KeyBuilder, RedisBackend, RedisHandle};

/// How far back failed Textract jobs count.
pub const TEXTRACT_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// The whole check: the Redis report (whose `status` and `problems` are the overall
/// verdict and every problem found), and the database's part.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub redis: HealthReport,
    /// `None` when the process has no database.
    pub database: Option<DatabaseHealth>,
}

impl Report {
    /// The overall verdict.
    pub fn status(&self) -> Status {
        self.redis.status
    }
}

/// The database's part of the check.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DatabaseHealth {
    pub reachable: bool,
    /// Documents `running` for longer than `stuck_after_secs`.
    pub stuck_documents: Option<u64>,
    pub stuck_after_secs: u64,
    /// `running` queue rows whose lease has run out (their owner died).
    pub expired_leases: Option<u64>,
    /// Textract jobs `FAILED` in the last 24 hours; `None` when the database has no
    /// `textract_jobs` table.
    pub failed_textract_jobs: Option<u64>,
}

/// The app `health` runs with: with the database when one is configured; when the
/// database cannot be opened, without it and the reason (reported as a problem by
/// [`check`]'s caller through [`Report`]).
///
/// # Errors
/// The artefact store cannot be set up.
pub async fn app_for(config: Config, opts: AppOptions) -> Result<(App, Option<String>), AppError> {
    let skip_database = opts.skip_database;
    // Neither OCR nor LLM client: the check calls neither.
    let app = App::build_core(config, opts).await?;
    if skip_database {
        return Ok((app, None));
    }
    match app.clone().with_database().await {
        Ok(app) => Ok((app, None)),
        Err(AppError::Database(e)) => Ok((app, Some(format!("database unreachable: {e}")))),
        Err(e) => Err(e),
    }
}

/// Checks Redis (even when the configuration switched its features off) and, when `app`
/// has one, the database. `database_problem` is why the database could not be opened, if
/// it could not (see [`app_for`]).
pub async fn check(app: &App, database_problem: Option<String>) -> Report {
    let config = &app.config;
    let handle = match app.redis.clone() {
        Some(h) => Some(h),
        None => RedisHandle::new(config).ok(),
    };
    let mut redis = match handle {
        Some(handle) => {
            let backend = RedisBackend::new(handle.clone(), KeyBuilder::new(&config.env));
            let stats = backend.stats().await.unwrap_or_default();
            crate::redis::health::check(&handle, stats).await
        }
        None => unusable_redis(config),
    };
    if !config.redis.enabled {
        redis
            .problems
            .push("Redis disabled by configuration".into());
        redis.status = redis.status.max(Status::Degraded);
    }
    let mut database = None;
    if let Some(problem) = database_problem {
        redis.problems.push(problem);
        redis.status = Status::Unhealthy;
        database = Some(DatabaseHealth {
            stuck_after_secs: config.cloud.stuck_after.as_secs(),
            ..DatabaseHealth::default()
        });
    } else if let Some(pool) = &app.db {
        let (d, problems) = check_database(pool, config.cloud.stuck_after).await;
        if !d.reachable {
            redis.status = Status::Unhealthy;
        } else if !problems.is_empty() {
            redis.status = redis.status.max(Status::Degraded);
        }
        redis.problems.extend(problems);
        database = Some(d);
    }
    Report { redis, database }
}

fn unusable_redis(config: &Config) -> HealthReport {
    HealthReport {
        status: Status::Unhealthy,
        problems: vec!["redis is not usable with this configuration".into()],
        ..HealthReport::new(config.describe())
    }
}

/// The database's part, and the problems it shows.
pub async fn check_database(pool: &PgPool, stuck_after: Duration) -> (DatabaseHealth, Vec<String>) {
    let mut d = DatabaseHealth {
        stuck_after_secs: stuck_after.as_secs(),
        ..DatabaseHealth::default()
    };
    let mut problems = Vec::new();
    let stuck: Result<i64, sqlx::Error> = sqlx::query_scalar(
        "SELECT count(*) FROM documents \
         WHERE status = 'running' AND updated_at < now() - $1 * interval '1 second'",
    )
    .bind(i64::try_from(stuck_after.as_secs()).unwrap_or(i64::MAX))
    .fetch_one(pool)
    .await;
    match stuck {
        Ok(n) => {
            d.reachable = true;
            d.stuck_documents = Some(n.max(0) as u64);
            if n > 0 {
                problems.push(format!(
                    "{n} document(s) running for more than {} s",
                    stuck_after.as_secs()
                ));
            }
        }
        Err(e) => {
            problems.push(format!("database unreachable: {e}"));
            return (d, problems);
        }
    }
    if let Ok(s) = crate::store::queue::stats(pool).await {
        d.expired_leases = Some(s.expired_leases);
        if s.expired_leases > 0 {
            problems.push(format!(
                "{} queue item(s) running with an expired lease",
                s.expired_leases
            ));
        }
    }
    d.failed_textract_jobs = failed_textract_jobs(pool).await;
    if let Some(n) = d.failed_textract_jobs.filter(|n| *n > 0) {
        problems.push(format!("{n} Textract job(s) failed in the last 24 h"));
    }
    (d, problems)
}

/// Textract jobs failed within [`TEXTRACT_WINDOW`]; `None` when the table is absent (or
/// not of the shape this query expects).
async fn failed_textract_jobs(pool: &PgPool) -> Option<u64> {
    let exists: Option<bool> =
        sqlx::query_scalar("SELECT to_regclass('textract_jobs') IS NOT NULL")
            .fetch_one(pool)
            .await
            .ok();
    if exists != Some(true) {
        return None;
    }
    let n: Result<i64, sqlx::Error> = sqlx::query_scalar(
        "SELECT count(*) FROM textract_jobs \
         WHERE status = 'FAILED' AND started_at > now() - $1 * interval '1 second'",
    )
    .bind(TEXTRACT_WINDOW.as_secs() as i64)
    .fetch_one(pool)
    .await;
    match n {
        Ok(n) => Some(n.max(0) as u64),
        Err(e) => {
            tracing::debug!(error = %e, "textract_jobs not readable; not reported");
            None
        }
    }
}
