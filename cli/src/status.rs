//! `lexpipe status`: where one document stands, stage by stage, or every document by
//! status. Reads the document state that runs keep in Redis (`lexpipe::redis::state`),
//! and, when `DATABASE_URL` is set, checks it against PostgreSQL, the system of record.
//!
//! Exit status: 0 when shown, 1 when the document is unknown (never processed with state
//! tracking, or its state expired, and PostgreSQL does not know it either), 2 when Redis
//! is unreachable or switched off.
//!
//! ## State lost
//! Document state lives only in Redis: a Redis restarted without persistence, a hash
//! evicted under memory pressure or a failover to a replica that had not caught up
//! leaves documents that PostgreSQL has as claimed, running or done with no state at
//! all. Those are never shown as unknown, queued or at 0 %: they are reported as
//! **state lost (Redis restarted or evicted)**, with what PostgreSQL knows (its status,
//! the attempt, the worker and lease of a running claim, when it was claimed).
//!
//! A restart is recognised by comparing times, not by a marker key (which would be lost
//! with everything else, and could not share a cluster slot with every document):
//! `INFO server` gives the server's `run_id` and uptime, hence when it started (to the
//! second); a document whose last claim (else its first record) is older than that lost
//! its state to the restart. A missing state of a document claimed since then was
//! evicted (or never tracked: a writer with `LEXPIPE_REDIS_STATE=false`); one not
//! written for longer than `LEXPIPE_STATE_TTL_SECS` simply expired and is not reported
//! as lost. Documents PostgreSQL has as queued and never claimed have no state yet, and
//! are shown as such.
//!
//! With `--json`, a tracked document prints its typed state as before; a document
//! without state prints `{"document_uuid", "state": "lost" | "not_started", "reason",
//! "redis_server", "database"}`. `--all --json` adds `redis_server`, `database` (counts
//! per status from PostgreSQL) and `state_lost` (how many, why, and the first of them).
//! `--all` looks at the documents updated within the state TTL, most recent first, up to
//! [`LOST_SCAN_LIMIT`].

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lexpipe::app::{App, AppOptions};
use lexpipe::config::Config;
use lexpipe::model::DocumentStatus;
use lexpipe::redis::state::{
    DocumentState, DocumentStates, StageStatus, StateError, StateStore, Uuid,
};
use lexpipe::redis::{KeyBuilder, RedisHandle, RedisStatus};
use sqlx::PgPool;

/// Documents listed per status by `--all` (the counts cover every one).
const LIST_PER_STATUS: usize = 20;
/// Redraw interval of `--watch`.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// How dates are shown (UTC, to the second).
const DATE: &str = "%Y-%m-%d %H:%M:%S UTC";
/// Width of the progress bar.
const BAR: usize = 20;
/// The order `--all` shows groups in: work in flight first.
const GROUPS: [DocumentStatus; 4] = [
    DocumentStatus::Running,
    DocumentStatus::Queued,
    DocumentStatus::Failed,
    DocumentStatus::Completed,
];

const UNKNOWN: u8 = 1;
const UNREACHABLE: u8 = 2;

/// Documents `--all` checks for lost state: the most recently updated ones within the
/// state TTL (each costs an `EXISTS`, pipelined).
pub const LOST_SCAN_LIMIT: i64 = 100_000;
/// State keys checked per round trip.
const EXISTS_BATCH: usize = 500;
/// Redis reports its uptime in whole seconds (from a start time in whole seconds), so
/// the start computed from it may be up to a second early or late: a document claimed
/// within a second after it is counted as lost to the restart (claims made as the server
/// came back, whose first state writes the outage swallowed, are among those).
const START_UNCERTAINTY_MS: u64 = 1_000;
/// What a lost state is called, in text and in `--json` reasons' explanations.
const LOST: &str = "state lost (Redis restarted or evicted)";
/// What `status` calls a state older than PostgreSQL's record of the document.
const STALE: &str = "state out of date (a write lost in a Redis outage or failover)";

/// `lexpipe status [TARGET] [--all] [--json] [--watch]`.
///
/// `target` is a document UUID or the path of a file (hashed to find its UUID). `--json`
/// prints the typed state (with `--watch`, one compact line per change); `--watch`
/// redraws every second until the document is completed or failed (with `--all`, until
/// interrupted).
///
/// # Errors
/// Neither or both of a target and `--all`; a file that cannot be read; a malformed
/// `LEXPIPE_STATE_TTL_SECS`; unreadable state in Redis. (Unknown document and unreachable
/// Redis are exit statuses 1 and 2, not errors.)
pub async fn run(
    config: Config,
    target: Option<String>,
    all: bool,
    json: bool,
    watch: bool,
) -> anyhow::Result<ExitCode> {
    let doc = match (target, all) {
        (Some(_), true) => anyhow::bail!("give a document or --all, not both"),
        (None, false) => anyhow::bail!("give a document (its UUID or its file) or --all"),
        (Some(t), false) => Some(resolve_target(&t).await?),
        (None, true) => None,
    };
    let sources = match connect(&config).await {
        Ok(sources) => sources,
        Err(message) => {
            eprintln!("lexpipe: {message}");
            return Ok(ExitCode::from(UNREACHABLE));
        }
    };
    if let Some(problem) = &sources.db_problem {
        eprintln!("lexpipe: {problem}; showing Redis state alone, which cannot tell lost state");
    }
    let mut screen = Screen::new(json, watch);
    let result = match doc {
        Some(doc) => show_document(&sources, doc, &mut screen).await,
        None => show_all(&sources, &config, &mut screen).await,
    };
    match result {
        Ok(code) => Ok(code),
        Err(StatusError::State(StateError::Unavailable(e))) => {
            eprintln!("lexpipe: Redis is unreachable: {e}");
            Ok(ExitCode::from(UNREACHABLE))
        }
        Err(StatusError::State(e)) => Err(e.into()),
        Err(StatusError::Db(e)) => Err(anyhow::Error::new(e).context("reading PostgreSQL")),
    }
}

/// What showing status can run into.
#[derive(Debug, thiserror::Error)]
enum StatusError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<lexpipe::redis::RedisUnavailable> for StatusError {
    fn from(e: lexpipe::redis::RedisUnavailable) -> Self {
        StatusError::State(StateError::Unavailable(e))
    }
}

/// A UUID as given, else the UUID of the file's content (as `lexpipe process` derives it).
pub async fn resolve_target(target: &str) -> anyhow::Result<Uuid> {
    if let Ok(uuid) = Uuid::parse_str(target.trim()) {
        return Ok(uuid);
    }
    let path = Path::new(target);
    match tokio::fs::read(path).await {
        Ok(bytes) => Ok(lexpipe::model::document_uuid(&lexpipe::text::sha256_hex(
            &bytes,
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            anyhow::bail!(
                "{}: not a document UUID, and no such file",
                printable(target)
            )
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Where status comes from: the document state in Redis, the server holding it, and
/// PostgreSQL when the configuration names it.
struct Sources {
    states: Arc<dyn DocumentStates>,
    /// The same store, for its key names.
    store: StateStore,
    redis: RedisHandle,
    db: Option<PgPool>,
    /// Why PostgreSQL is configured but not used.
    db_problem: Option<String>,
    /// `LEXPIPE_STATE_TTL_SECS`: older state expired rather than got lost.
    ttl_ms: u64,
}

/// The document states of the app this configuration builds, and PostgreSQL when
/// `DATABASE_URL` is set; the message says why there is no Redis to read.
async fn connect(config: &Config) -> Result<Sources, String> {
    let (states, redis) = connect_redis(config).await?;
    let store = StateStore::new(redis.clone(), KeyBuilder::new(&config.env), config.state);
    let (db, db_problem) = match &config.database.url {
        None => (None, None),
        Some(_) => match lexpipe::store::db::connect(&config.database).await {
            Ok(pool) => (Some(pool), None),
            Err(e) => (None, Some(format!("PostgreSQL is unreachable ({e})"))),
        },
    };
    Ok(Sources {
        states,
        store,
        redis,
        db,
        db_problem,
        ttl_ms: config.state.ttl.as_millis() as u64,
    })
}

/// The Redis half of [`connect`].
async fn connect_redis(config: &Config) -> Result<(Arc<dyn DocumentStates>, RedisHandle), String> {
    if !config.redis.features.state {
        return Err(
            "document state lives in Redis, which is switched off for it \
                    (LEXPIPE_REDIS_ENABLED or LEXPIPE_REDIS_STATE is false)"
                .into(),
        );
    }
    let app = App::build(
        config.clone(),
        AppOptions {
            skip_database: true,
            ..AppOptions::default()
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    match (&app.states, &app.redis, app.redis_status) {
        (Some(states), Some(redis), RedisStatus::Connected) => Ok((states.clone(), redis.clone())),
        _ => Err(format!(
            "Redis is unreachable ({}), so document state cannot be read",
            config.describe()
        )),
    }
}

async fn show_document(
    sources: &Sources,
    doc: Uuid,
    screen: &mut Screen,
) -> Result<ExitCode, StatusError> {
    let store = sources.states.as_ref();
    let Some(mut state) = store.get(doc).await? else {
        return show_untracked(sources, doc, screen).await;
    };
    if let Some(pool) = &sources.db
        && let Some(record) = db_record(pool, doc).await?
    {
        if is_stale(state.status.as_str(), &record.status) {
            eprintln!(
                "lexpipe: {STALE}: Redis shows document {doc} {}, PostgreSQL (the record) has it {}",
                state.status.as_str(),
                record.status
            );
        } else if state.status == DocumentStatus::Failed && !is_finished(&record.status) {
            eprintln!(
                "lexpipe: document {doc} is {} again (lexpipe retry): below is its failed \
                 attempt, until the next one starts",
                record.status
            );
        }
    }
    loop {
        screen.draw(&state, || render_document(&state, now_ms()));
        if !screen.watch || state.status.is_terminal() {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(WATCH_EVERY).await;
        match store.get(doc).await? {
            Some(s) => state = s,
            None => {
                eprintln!("lexpipe: the state of document {doc} is gone from Redis");
                return show_untracked(sources, doc, screen).await;
            }
        }
    }
}

/// A document without state in Redis: what PostgreSQL knows of it, and why the state is
/// missing; unknown (exit 1) only when PostgreSQL does not know it either.
async fn show_untracked(
    sources: &Sources,
    doc: Uuid,
    screen: &mut Screen,
) -> Result<ExitCode, StatusError> {
    let record = match &sources.db {
        Some(pool) => db_record(pool, doc).await?,
        None => None,
    };
    let Some(record) = record else {
        let hint = if sources.db.is_none() {
            "; with DATABASE_URL set, status can tell lost state from an unknown document"
        } else {
            ", and PostgreSQL does not know it"
        };
        eprintln!(
            "lexpipe: no state for document {doc} (not processed with state tracking on, or \
             expired){hint}"
        );
        return Ok(ExitCode::from(UNKNOWN));
    };
    let server = RedisServer::read(&sources.redis).await?;
    let untracked = Untracked::judge(record, &server, sources.ttl_ms, now_ms());
    screen.draw(&untracked, || render_untracked(&untracked, now_ms()));
    Ok(ExitCode::SUCCESS)
}

/// The Redis server holding the state: when it started tells a restart from an eviction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
struct RedisServer {
    /// Changes with every start of the server (`INFO server`).
    run_id: String,
    /// When the server started, from its clock and uptime (to the second).
    started_ms: u64,
    uptime_secs: u64,
}

impl RedisServer {
    /// `INFO server` and `TIME` of every primary (the one server in standalone mode): in
    /// a cluster, the primary that started last, since a document claimed before that may
    /// have lost its state with whatever that node replaced (a restart, a failover).
    async fn read(redis: &RedisHandle) -> Result<RedisServer, StatusError> {
        let mut youngest: Option<RedisServer> = None;
        for addr in redis.primaries().await? {
            let mut info_cmd = redis::cmd("INFO");
            info_cmd.arg("server");
            let info: String = redis.on_node(&addr, &info_cmd).await?;
            let (secs, micros): (u64, u64) = redis.on_node(&addr, &redis::cmd("TIME")).await?;
            let field = |name: &str| {
                info.lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                    .map(|v| v.trim().to_string())
            };
            let uptime_secs = field("uptime_in_seconds")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            let now = secs * 1000 + micros / 1000;
            let server = RedisServer {
                run_id: field("run_id").unwrap_or_default(),
                started_ms: now.saturating_sub(uptime_secs * 1000),
                uptime_secs,
            };
            if youngest
                .as_ref()
                .is_none_or(|y| server.started_ms > y.started_ms)
            {
                youngest = Some(server);
            }
        }
        youngest.ok_or_else(|| {
            StatusError::from(lexpipe::redis::RedisUnavailable::Command(
                "no primary answered".into(),
            ))
        })
    }
}

/// What PostgreSQL knows of one document (times in milliseconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
struct DbRecord {
    #[serde(skip)]
    id: Uuid,
    /// The document's status in PostgreSQL.
    status: String,
    error_type: Option<String>,
    source: Option<String>,
    /// The queue item's status, when the document was queued.
    queue_status: Option<String>,
    attempts: Option<i32>,
    max_attempts: Option<i32>,
    /// Who holds a running claim, and until when.
    worker_id: Option<String>,
    lease_until_ms: Option<i64>,
    /// When the latest claim started; for a document never queued, when it was first
    /// recorded.
    claimed_ms: Option<i64>,
    updated_ms: i64,
}

/// The columns of [`DbRecord`], for `FROM documents d LEFT JOIN processing_queue q`.
const RECORD_COLUMNS: &str = "d.id, d.status, d.error_type, \
     COALESCE(q.source_path, (SELECT min(s.source) FROM document_sources s WHERE s.document_id = d.id)) AS source, \
     q.status AS queue_status, q.attempts, q.max_attempts, \
     CASE WHEN q.status = 'running' THEN q.worker_id END AS worker_id, \
     CASE WHEN q.status = 'running' THEN (extract(epoch FROM q.lease_until) * 1000)::bigint END AS lease_until_ms, \
     COALESCE((SELECT (extract(epoch FROM max(a.started_at)) * 1000)::bigint FROM queue_attempts a WHERE a.item_id = q.id), \
              CASE WHEN q.id IS NULL THEN (extract(epoch FROM d.created_at) * 1000)::bigint END) AS claimed_ms, \
     (extract(epoch FROM d.updated_at) * 1000)::bigint AS updated_ms";

async fn db_record(pool: &PgPool, doc: Uuid) -> Result<Option<DbRecord>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RECORD_COLUMNS} FROM documents d \
         LEFT JOIN processing_queue q ON q.document_id = d.id WHERE d.id = $1"
    ))
    .bind(doc)
    .fetch_optional(pool)
    .await
}

impl DbRecord {
    /// Claimed (or processed without the queue): such a document had state once.
    fn was_started(&self) -> bool {
        self.status != DocumentStatus::Queued.as_str() || self.attempts.unwrap_or(0) > 0
    }
}

/// Why a document PostgreSQL knows has no state in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum Reason {
    /// Claimed before the Redis server started: the restart took its state.
    RedisRestarted,
    /// Claimed while this server ran, yet its state is gone: evicted (or never tracked).
    EvictedOrNotTracked,
    /// Not written for longer than the state TTL: expired, as designed.
    Expired,
    /// Queued and never claimed: no state yet.
    NotStarted,
}

impl Reason {
    fn explain(self, server: &RedisServer) -> String {
        match self {
            Reason::RedisRestarted => format!(
                "Redis restarted at {} (run_id {}) after this document was claimed: \
                 the restart took its progress",
                date_ms(server.started_ms),
                short(&server.run_id)
            ),
            Reason::EvictedOrNotTracked => "claimed while this Redis ran, yet its state is gone: \
                 evicted (or processed with LEXPIPE_REDIS_STATE=false)"
                .into(),
            Reason::Expired => "not updated for longer than LEXPIPE_STATE_TTL_SECS: its state \
                 expired"
                .into(),
            Reason::NotStarted => {
                "queued and not claimed yet: no state until a worker starts it".into()
            }
        }
    }
}

/// A document without state in Redis, as `lexpipe status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
struct Untracked {
    document_uuid: Uuid,
    /// `lost` or `not_started` (or `expired`).
    state: &'static str,
    reason: Reason,
    explanation: String,
    redis_server: RedisServer,
    /// What PostgreSQL knows.
    database: DbRecord,
}

impl Untracked {
    /// Why `record`'s document has no state on `server`, at `now`.
    fn judge(record: DbRecord, server: &RedisServer, ttl_ms: u64, now: u64) -> Untracked {
        let reason = if !record.was_started() {
            Reason::NotStarted
        } else if record.claimed_ms.is_some_and(|t| {
            u64::try_from(t).unwrap_or(0) < server.started_ms + START_UNCERTAINTY_MS
        }) {
            Reason::RedisRestarted
        } else if now.saturating_sub(u64::try_from(record.updated_ms).unwrap_or(0)) > ttl_ms {
            Reason::Expired
        } else {
            Reason::EvictedOrNotTracked
        };
        let state = match reason {
            Reason::NotStarted => "not_started",
            Reason::Expired => "expired",
            Reason::RedisRestarted | Reason::EvictedOrNotTracked => "lost",
        };
        Untracked {
            document_uuid: record.id,
            state,
            reason,
            explanation: reason.explain(server),
            redis_server: server.clone(),
            database: record,
        }
    }

    fn is_lost(&self) -> bool {
        self.state == "lost"
    }
}

/// Documents PostgreSQL has as started, updated within the TTL, most recent first
/// (running ones before the rest).
async fn started_records(pool: &PgPool, ttl_ms: u64) -> Result<Vec<DbRecord>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RECORD_COLUMNS} FROM documents d \
         LEFT JOIN processing_queue q ON q.document_id = d.id \
         WHERE (d.status <> 'queued' OR q.attempts > 0) \
           AND d.updated_at > now() - $1 * interval '1 millisecond' \
         ORDER BY (d.status = 'running') DESC, d.updated_at DESC, d.id \
         LIMIT $2"
    ))
    .bind(i64::try_from(ttl_ms).unwrap_or(i64::MAX))
    .bind(LOST_SCAN_LIMIT)
    .fetch_all(pool)
    .await
}

/// The overall status in Redis of each of `docs` (`None`: no state hash): one pipeline
/// of `HGET … status` per shard (the hashes of a shard share its hash tag, so a pipeline
/// stays in one cluster slot).
async fn state_statuses(
    sources: &Sources,
    docs: &[Uuid],
) -> Result<Vec<Option<String>>, StatusError> {
    let mut out = vec![None; docs.len()];
    let mut by_shard: std::collections::BTreeMap<u8, Vec<usize>> = Default::default();
    for (i, d) in docs.iter().enumerate() {
        by_shard
            .entry(lexpipe::redis::state::shard_of(*d))
            .or_default()
            .push(i);
    }
    for positions in by_shard.values() {
        for batch in positions.chunks(EXISTS_BATCH) {
            let mut pipe = redis::pipe();
            for i in batch {
                pipe.cmd("HGET")
                    .arg(sources.store.state_key(docs[*i]))
                    .arg("status");
            }
            let pipe = &pipe;
            let found: Vec<Option<String>> = sources
                .redis
                .run(true, |mut c| async move { pipe.query_async(&mut c).await })
                .await?;
            for (i, f) in batch.iter().zip(found) {
                out[*i] = f;
            }
        }
    }
    Ok(out)
}

/// True when Redis shows a document still in progress (`queued`, `running`) that
/// PostgreSQL has as finished: a state write that was lost.
fn is_stale(redis_status: &str, database_status: &str) -> bool {
    is_finished(database_status) && !is_finished(redis_status)
}

fn is_finished(status: &str) -> bool {
    status == DocumentStatus::Completed.as_str() || status == DocumentStatus::Failed.as_str()
}

/// Documents by status in PostgreSQL.
async fn db_counts(pool: &PgPool) -> Result<lexpipe::redis::state::StatusCounts, sqlx::Error> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM documents GROUP BY status")
            .fetch_all(pool)
            .await?;
    let mut c = lexpipe::redis::state::StatusCounts::default();
    for (status, n) in rows {
        let n = u64::try_from(n).unwrap_or(0);
        match DocumentStatus::parse(&status) {
            Some(DocumentStatus::Queued) => c.queued += n,
            Some(DocumentStatus::Running) => c.running += n,
            Some(DocumentStatus::Completed) => c.completed += n,
            Some(DocumentStatus::Failed) => c.failed += n,
            None => {}
        }
    }
    Ok(c)
}

/// What `--all` adds from PostgreSQL.
#[derive(Debug, Clone, serde::Serialize)]
struct DatabaseView {
    /// Documents by status in PostgreSQL, the system of record.
    counts: lexpipe::redis::state::StatusCounts,
    state_lost: LostSummary,
    /// Documents whose state in Redis is older than PostgreSQL's record.
    state_stale: StaleSummary,
}

/// Documents PostgreSQL has as finished that Redis still shows in progress.
#[derive(Debug, Clone, serde::Serialize)]
struct StaleSummary {
    count: u64,
    /// The first of them: (document, status in Redis, status in PostgreSQL).
    documents: Vec<StaleDocument>,
}

#[derive(Debug, Clone, serde::Serialize)]
struct StaleDocument {
    document_uuid: Uuid,
    redis_status: String,
    database_status: String,
}

/// Documents PostgreSQL has as started whose state is gone from Redis.
#[derive(Debug, Clone, serde::Serialize)]
struct LostSummary {
    /// How many lost their state.
    count: u64,
    /// Of those, how many to the restart of the Redis server.
    redis_restarted: u64,
    /// And how many were evicted (or never tracked).
    evicted_or_not_tracked: u64,
    /// How many started documents were looked at (at most [`LOST_SCAN_LIMIT`]).
    checked: u64,
    /// The first of them, running ones first, most recent first.
    documents: Vec<Untracked>,
}

async fn database_view(
    sources: &Sources,
    pool: &PgPool,
    server: &RedisServer,
) -> Result<DatabaseView, StatusError> {
    let counts = db_counts(pool).await?;
    let records = started_records(pool, sources.ttl_ms).await?;
    let ids: Vec<Uuid> = records.iter().map(|r| r.id).collect();
    let statuses = state_statuses(sources, &ids).await?;
    let now = now_ms();
    let mut stale = StaleSummary {
        count: 0,
        documents: Vec::new(),
    };
    let mut lost = LostSummary {
        count: 0,
        redis_restarted: 0,
        evicted_or_not_tracked: 0,
        checked: records.len() as u64,
        documents: Vec::new(),
    };
    for (record, status) in records.into_iter().zip(statuses) {
        if let Some(status) = status {
            if is_stale(&status, &record.status) {
                stale.count += 1;
                if stale.documents.len() < LIST_PER_STATUS {
                    stale.documents.push(StaleDocument {
                        document_uuid: record.id,
                        redis_status: status,
                        database_status: record.status.clone(),
                    });
                }
            }
            continue;
        }
        let u = Untracked::judge(record, server, sources.ttl_ms, now);
        if !u.is_lost() {
            continue;
        }
        lost.count += 1;
        match u.reason {
            Reason::RedisRestarted => lost.redis_restarted += 1,
            _ => lost.evicted_or_not_tracked += 1,
        }
        if lost.documents.len() < LIST_PER_STATUS {
            lost.documents.push(u);
        }
    }
    Ok(DatabaseView {
        counts,
        state_lost: lost,
        state_stale: stale,
    })
}

/// What `--all` shows: counts, and the most recent documents of each status.
#[derive(serde::Serialize)]
struct Overview {
    prefix: String,
    /// Documents with state in Redis, by status.
    counts: lexpipe::redis::state::StatusCounts,
    documents: std::collections::BTreeMap<DocumentStatus, Vec<DocumentState>>,
    redis_server: RedisServer,
    /// With `DATABASE_URL`: what PostgreSQL has, and whose state is lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<DatabaseView>,
}

async fn show_all(
    sources: &Sources,
    config: &Config,
    screen: &mut Screen,
) -> Result<ExitCode, StatusError> {
    let store = sources.states.as_ref();
    loop {
        let counts = store.counts().await?;
        let mut documents = std::collections::BTreeMap::new();
        for status in GROUPS {
            documents.insert(status, store.list(Some(status), LIST_PER_STATUS).await?);
        }
        let redis_server = RedisServer::read(&sources.redis).await?;
        let database = match &sources.db {
            Some(pool) => Some(database_view(sources, pool, &redis_server).await?),
            None => None,
        };
        let overview = Overview {
            prefix: config.key_prefix(),
            counts,
            documents,
            redis_server,
            database,
        };
        screen.draw(&overview, || render_overview(&overview, now_ms()));
        if !screen.watch {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(WATCH_EVERY).await;
    }
}

/// Where output goes: JSON or text; with `--watch`, redrawn in place on a terminal, or
/// printed again only when it changed otherwise.
struct Screen {
    json: bool,
    watch: bool,
    tty: bool,
    /// Lines drawn last time (to move back over them).
    drawn: usize,
    /// JSON of what was shown last, to print a pipe only what changed.
    last: Option<String>,
}

impl Screen {
    fn new(json: bool, watch: bool) -> Screen {
        Screen {
            json,
            watch,
            tty: std::io::stdout().is_terminal(),
            drawn: 0,
            last: None,
        }
    }

    fn draw<T: serde::Serialize>(&mut self, value: &T, text: impl FnOnce() -> String) {
        let fingerprint = serde_json::to_string(value).unwrap_or_default();
        let changed = self.last.as_deref() != Some(fingerprint.as_str());
        if self.json {
            if !changed {
                return;
            }
            // One compact line per change while watching, readable otherwise.
            if self.watch {
                println!("{fingerprint}");
            } else {
                println!(
                    "{}",
                    serde_json::to_string_pretty(value).unwrap_or_default()
                );
            }
        } else if self.watch && self.tty {
            // Redraw in place (elapsed times move even when nothing else does).
            let text = text();
            if self.drawn > 0 {
                print!("\x1b[{}F\x1b[J", self.drawn);
            }
            print!("{text}");
            self.drawn = text.lines().count();
        } else if changed {
            if self.last.is_some() {
                println!();
            }
            print!("{}", text());
        }
        let _ = std::io::stdout().flush();
        self.last = Some(fingerprint);
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn render_document(s: &DocumentState, now: u64) -> String {
    let mut o = String::new();
    let line = |o: &mut String, l: String| {
        o.push_str(l.trim_end());
        o.push('\n');
    };
    line(&mut o, format!("document  {}", s.document_uuid));
    line(&mut o, format!("source    {}", printable(&s.source)));
    line(&mut o, format!("sha256    {}", s.content_sha256));
    let at = match (&s.current_stage, s.status) {
        (Some(stage), DocumentStatus::Failed) => format!("  failed in {stage}"),
        (Some(stage), DocumentStatus::Running) => format!("  at {stage}"),
        (Some(stage), DocumentStatus::Queued) => format!("  next: {stage}"),
        _ => String::new(),
    };
    line(
        &mut o,
        format!(
            "status    {:<9} {:>3}%  [{}]{at}",
            s.status,
            s.progress,
            bar(s.progress)
        ),
    );
    line(
        &mut o,
        format!(
            "updated   {} ({} ago), created {}",
            date(s.updated_at().map(|t| t.format(DATE).to_string())),
            human_ms(now.saturating_sub(s.updated_ms)),
            date(s.created_at().map(|t| t.format(DATE).to_string()))
        ),
    );
    line(&mut o, String::new());
    line(
        &mut o,
        format!(
            "{:<20} {:<10} {:>8} {:>10} {:>8}  {}",
            "stage", "status", "attempts", "duration", "count", "error"
        ),
    );
    for st in &s.stages {
        let duration = match (st.status, st.duration_ms(), st.started_ms) {
            (_, Some(ms), _) => human_ms(ms),
            // Still running: time so far.
            (StageStatus::Running, None, Some(start)) => {
                format!("{}…", human_ms(now.saturating_sub(start)))
            }
            _ => String::new(),
        };
        let count = st.count.map(|c| c.to_string()).unwrap_or_default();
        let error = st.error_type.as_deref().map(printable).unwrap_or_default();
        line(
            &mut o,
            format!(
                "{:<20} {:<10} {:>8} {:>10} {:>8}  {}",
                st.name,
                st.status.as_str(),
                st.attempts,
                duration,
                count,
                error
            ),
        );
    }
    for st in s.stages.iter().filter(|st| st.error.is_some()) {
        line(&mut o, String::new());
        line(
            &mut o,
            format!(
                "{} failed ({}): {}",
                st.name,
                printable(st.error_type.as_deref().unwrap_or("?")),
                printable(st.error.as_deref().unwrap_or_default())
            ),
        );
    }
    o
}

fn render_overview(v: &Overview, now: u64) -> String {
    let mut o = String::new();
    if let Some(db) = &v.database {
        render_database(&mut o, db, &v.redis_server, now);
    }
    o.push_str(&format!(
        "documents with state in Redis under {} ({} in all; Redis up since {})\n",
        v.prefix,
        v.counts.total(),
        date_ms(v.redis_server.started_ms)
    ));
    for status in GROUPS {
        o.push_str(&format!("  {:<10} {:>6}\n", status, v.counts.get(status)));
    }
    for status in GROUPS {
        let docs = v.documents.get(&status).map(Vec::as_slice).unwrap_or(&[]);
        if docs.is_empty() {
            continue;
        }
        let total = v.counts.get(status);
        o.push('\n');
        if (docs.len() as u64) < total {
            o.push_str(&format!(
                "{status} ({total}, the {} most recent shown)\n",
                docs.len()
            ));
        } else {
            o.push_str(&format!("{status} ({total})\n"));
        }
        for d in docs {
            let detail = match (d.status, &d.current_stage) {
                (DocumentStatus::Failed, Some(stage)) => {
                    let kind = d
                        .stage(stage)
                        .and_then(|st| st.error_type.as_deref())
                        .unwrap_or("?");
                    format!("{stage}: {}", printable(kind))
                }
                (DocumentStatus::Queued, Some(stage)) => format!("next: {stage}"),
                (_, Some(stage)) => format!("at {stage}"),
                (_, None) => String::new(),
            };
            o.push_str(&format!(
                "  {}  {:>3}%  {:<28} {:<32} {} ago\n",
                d.document_uuid,
                d.progress,
                clip_end(&detail, 28),
                clip_end(&printable(&d.source), 32),
                human_ms(now.saturating_sub(d.updated_ms))
            ));
        }
    }
    if v.counts.total() == 0 {
        o.push_str("\n(no documents: none processed with state tracking on, or all expired)\n");
    }
    o
}

/// What PostgreSQL has, and the documents whose state is lost, ahead of the Redis view.
fn render_database(o: &mut String, db: &DatabaseView, server: &RedisServer, now: u64) {
    let c = &db.counts;
    o.push_str(&format!(
        "documents in PostgreSQL ({} in all): {} queued, {} running, {} completed, {} failed\n",
        c.total(),
        c.queued,
        c.running,
        c.completed,
        c.failed
    ));
    let stale = &db.state_stale;
    if stale.count > 0 {
        o.push_str(&format!(
            "{STALE}: {} documents Redis shows in progress are finished in PostgreSQL, the \
             record:\n",
            stale.count
        ));
        for d in &stale.documents {
            o.push_str(&format!(
                "  {}  Redis {:<9} PostgreSQL {}\n",
                d.document_uuid, d.redis_status, d.database_status
            ));
        }
    }
    let lost = &db.state_lost;
    if lost.count == 0 {
        o.push_str(&format!(
            "state: every started document has its state in Redis ({} checked)\n\n",
            lost.checked
        ));
        return;
    }
    o.push_str(&format!(
        "{LOST}: {} documents PostgreSQL has as started have no state in Redis \
         ({} claimed before Redis restarted at {}, run_id {}; {} evicted or not tracked); \
         their progress is unknown, not zero: PostgreSQL's status is shown\n",
        lost.count,
        lost.redis_restarted,
        date_ms(server.started_ms),
        short(&server.run_id),
        lost.evicted_or_not_tracked
    ));
    for u in &lost.documents {
        let d = &u.database;
        o.push_str(&format!(
            "  {}  {:<9} {:<24} {:<32} {} ago\n",
            u.document_uuid,
            d.status,
            clip_end(&attempt_detail(d), 24),
            clip_end(&printable(d.source.as_deref().unwrap_or("")), 32),
            human_ms(now.saturating_sub(u64::try_from(d.updated_ms).unwrap_or(0)))
        ));
    }
    if (lost.documents.len() as u64) < lost.count {
        o.push_str(&format!(
            "  … {} more (the {} most recent shown)\n",
            lost.count - lost.documents.len() as u64,
            lost.documents.len()
        ));
    }
    o.push('\n');
}

/// `attempt 1 of 3`, and who holds a running claim.
fn attempt_detail(d: &DbRecord) -> String {
    match (d.attempts, d.max_attempts) {
        (Some(a), Some(m)) => match &d.worker_id {
            Some(w) => format!("attempt {a} of {m} by {}", printable(w)),
            None => format!("attempt {a} of {m}"),
        },
        _ => "not queued".into(),
    }
}

fn render_untracked(u: &Untracked, now: u64) -> String {
    let d = &u.database;
    let mut o = String::new();
    let mut line = |l: String| {
        o.push_str(l.trim_end());
        o.push('\n');
    };
    line(format!("document  {}", u.document_uuid));
    line(format!(
        "source    {}",
        printable(d.source.as_deref().unwrap_or("?"))
    ));
    let status = match u.reason {
        Reason::RedisRestarted | Reason::EvictedOrNotTracked => LOST.to_string(),
        Reason::Expired => "state expired".to_string(),
        Reason::NotStarted => "queued, not started (no state yet)".to_string(),
    };
    line(format!("status    {status}"));
    line(format!("why       {}", u.explanation));
    let mut known = format!("{} ({})", d.status, attempt_detail(d));
    if let Some(lease) = d.lease_until_ms {
        known.push_str(&format!(", lease until {}", date_ms(lease.max(0) as u64)));
    }
    if let Some(kind) = &d.error_type {
        known.push_str(&format!(", error {}", printable(kind)));
    }
    line(format!("database  {known}"));
    let claimed = d
        .claimed_ms
        .map(|t| date_ms(t.max(0) as u64))
        .unwrap_or_else(|| "never".into());
    let updated = u64::try_from(d.updated_ms).unwrap_or(0);
    line(format!(
        "          claimed {claimed}, updated {} ({} ago)",
        date_ms(updated),
        human_ms(now.saturating_sub(updated))
    ));
    o
}

/// A time in milliseconds since the epoch, as [`DATE`].
fn date_ms(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.format(DATE).to_string())
        .unwrap_or_else(|| "?".into())
}

/// The first 8 characters of a run id.
fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn bar(progress: u8) -> String {
    let filled = (progress.min(100) as usize * BAR) / 100;
    format!("{}{}", "#".repeat(filled), "-".repeat(BAR - filled))
}

fn date(d: Option<String>) -> String {
    d.unwrap_or_else(|| "?".into())
}

/// `850 ms`, `4.2 s`, `3 m 05 s`, `2 h 07 m`, `3 d 04 h`.
fn human_ms(ms: u64) -> String {
    let s = ms / 1000;
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} m {:02} s", s / 60, s % 60),
        3_600_000..86_400_000 => format!("{} h {:02} m", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {:02} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// File names, S3 keys and error messages come from outside: control characters (escape
/// sequences, newlines) are shown escaped so they cannot drive the terminal or break the
/// layout.
fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// At most `n` characters, keeping the end (where a file name is).
fn clip_end(s: &str, n: usize) -> String {
    let count = s.chars().count();
    if count <= n {
        s.to_string()
    } else {
        let tail: String = s.chars().skip(count - (n - 1)).collect();
        format!("…{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lexpipe::redis::state::StageState;
    use lexpipe::redis::state::{StateConfig, StateStore};

    fn stage(name: &str, status: StageStatus) -> StageState {
        StageState {
            name: name.into(),
            status,
            started_ms: None,
            finished_ms: None,
            count: None,
            error: None,
            error_type: None,
            attempts: 0,
        }
    }

    /// A Redis server started at 100 s past the epoch.
    fn server() -> RedisServer {
        RedisServer {
            run_id: "0123456789abcdef".into(),
            started_ms: 100_000,
            uptime_secs: 50,
        }
    }

    /// A document PostgreSQL has as `status`, claimed at `claimed_ms`.
    fn record(status: &str, attempts: i32, claimed_ms: Option<i64>) -> DbRecord {
        DbRecord {
            id: Uuid::from_u128(7),
            status: status.into(),
            error_type: None,
            source: Some("/in/lease.pdf".into()),
            queue_status: Some(status.into()),
            attempts: Some(attempts),
            max_attempts: Some(3),
            worker_id: (status == "running").then(|| "host:42#3".to_string()),
            lease_until_ms: (status == "running").then_some(160_000),
            claimed_ms,
            updated_ms: 120_000,
        }
    }

    #[test]
    fn a_document_claimed_before_redis_started_lost_its_state_to_the_restart() {
        let u = Untracked::judge(
            record("running", 1, Some(90_000)),
            &server(),
            3_600_000,
            150_000,
        );
        assert_eq!((u.state, u.reason), ("lost", Reason::RedisRestarted));
        let text = render_untracked(&u, 150_000);
        assert!(
            text.contains("status    state lost (Redis restarted or evicted)\n"),
            "{text}"
        );
        assert!(
            text.contains("Redis restarted at 1970-01-01 00:01:40 UTC (run_id 01234567)"),
            "{text}"
        );
        assert!(
            text.contains("database  running (attempt 1 of 3 by host:42#3), lease until"),
            "{text}"
        );
        assert!(!text.contains('%'), "no progress is made up: {text}");
    }

    #[test]
    fn missing_state_of_a_document_claimed_since_the_start_is_evicted_or_expired_or_not_yet() {
        let judge = |r: DbRecord, now: u64| Untracked::judge(r, &server(), 60_000, now);
        // Within the second the start is known to: counted as lost to the restart.
        let at_start = judge(record("completed", 1, Some(100_400)), 150_000);
        assert_eq!(at_start.reason, Reason::RedisRestarted);
        let evicted = judge(record("completed", 1, Some(110_000)), 150_000);
        assert_eq!(
            (evicted.state, evicted.reason),
            ("lost", Reason::EvictedOrNotTracked)
        );
        let expired = judge(record("completed", 1, Some(110_000)), 500_000);
        assert_eq!(
            (expired.state, expired.reason),
            ("expired", Reason::Expired)
        );
        let queued = judge(record("queued", 0, None), 150_000);
        assert_eq!(
            (queued.state, queued.reason),
            ("not_started", Reason::NotStarted)
        );
        assert!(render_untracked(&queued, 150_000).contains("queued, not started"));
    }

    fn failed_document() -> DocumentState {
        let mut ocr = stage("ocr", StageStatus::Completed);
        (ocr.started_ms, ocr.finished_ms, ocr.count, ocr.attempts) =
            (Some(1_000), Some(2_200), Some(12), 1);
        let mut chunk = stage("chunk", StageStatus::Failed);
        (chunk.started_ms, chunk.finished_ms, chunk.attempts) = (Some(3_000), Some(3_040), 2);
        chunk.error_type = Some("ReadError".into());
        chunk.error = Some("cannot read\n\x1b[31mpage 2".into());
        DocumentState {
            document_uuid: Uuid::from_u128(42),
            status: DocumentStatus::Failed,
            progress: 50,
            current_stage: Some("chunk".into()),
            source: "evil\x1b]0;title\x07.pdf".into(),
            content_sha256: "ab".repeat(32),
            created_ms: 1_000,
            updated_ms: 3_040,
            stages: vec![ocr, chunk],
        }
    }

    #[test]
    fn a_failed_document_shows_each_stage_and_the_full_error() {
        let text = render_document(&failed_document(), 5_040);
        assert!(text.contains("failed     50%  [##########----------]  failed in chunk"));
        assert!(text.contains("ocr") && text.contains("1.2 s") && text.contains("12"));
        assert!(text.contains("chunk failed (ReadError): cannot read\\n\\u{1b}[31mpage 2"));
        assert!(text.contains("(2.0 s ago)"));
    }

    #[test]
    fn control_characters_from_names_and_errors_never_reach_the_terminal() {
        let text = render_document(&failed_document(), 5_040);
        assert!(!text.contains('\x1b') && !text.contains('\x07'));
    }

    #[test]
    fn a_running_stage_shows_its_time_so_far() {
        let mut d = failed_document();
        d.status = DocumentStatus::Running;
        d.stages[1] = StageState {
            started_ms: Some(3_000),
            attempts: 1,
            ..stage("chunk", StageStatus::Running)
        };
        let text = render_document(&d, 7_500);
        assert!(text.contains("4.5 s…"), "{text}");
    }

    #[test]
    fn the_overview_lists_counts_and_groups_with_what_is_not_shown() {
        let mut documents = std::collections::BTreeMap::new();
        documents.insert(DocumentStatus::Failed, vec![failed_document()]);
        let v = Overview {
            prefix: "lexpipe:dev:".into(),
            counts: lexpipe::redis::state::StatusCounts {
                failed: 3,
                completed: 1,
                ..Default::default()
            },
            documents,
            redis_server: server(),
            database: None,
        };
        let text = render_overview(&v, 10_000);
        assert!(
            text.starts_with("documents with state in Redis under lexpipe:dev: (4 in all;"),
            "{text}"
        );
        assert!(text.contains("failed (3, the 1 most recent shown)"));
        assert!(text.contains("chunk: ReadError"));
    }

    #[test]
    fn durations_read_like_a_person_would_say_them() {
        assert_eq!(human_ms(850), "850 ms");
        assert_eq!(human_ms(4_200), "4.2 s");
        assert_eq!(human_ms(185_000), "3 m 05 s");
        assert_eq!(human_ms(7_620_000), "2 h 07 m");
        assert_eq!(human_ms(273_600_000), "3 d 04 h");
    }

    #[tokio::test]
    async fn a_file_target_is_the_uuid_of_its_content_and_a_uuid_target_is_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.pdf");
        std::fs::write(&path, b"%PDF-1.4 hello").unwrap();
        let expected = lexpipe::model::document_uuid(&lexpipe::text::sha256_hex(b"%PDF-1.4 hello"));
        assert_eq!(
            resolve_target(path.to_str().unwrap()).await.unwrap(),
            expected
        );
        assert_eq!(
            resolve_target(&expected.to_string()).await.unwrap(),
            expected
        );
        let missing = resolve_target("/no/such/file.pdf").await.unwrap_err();
        assert!(missing.to_string().contains("no such file"));
    }

    // Exit statuses, against the real Redis the integration tests use.

    fn redis_url() -> String {
        std::env::var("LEXPIPE_TEST_REDIS_URL")
            .or_else(|_| std::env::var("REDIS_URL"))
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string())
    }

    fn config(env: &str, url: &str) -> Config {
        let vars: std::collections::HashMap<&str, String> = [
            ("LEXPIPE_ENV", env.to_string()),
            ("REDIS_URL", url.to_string()),
        ]
        .into();
        Config::from_vars(|k| vars.get(k).cloned()).expect("valid test configuration")
    }

    /// A store under a fresh prefix, and the configuration pointing at it.
    async fn fresh() -> (Config, StateStore) {
        let env = format!("t-status-{}", &Uuid::new_v4().simple().to_string()[..10]);
        let cfg = config(&env, &redis_url());
        let handle = lexpipe::redis::RedisHandle::new(&cfg).expect("a Redis handle");
        handle
            .connect()
            .await
            .unwrap_or_else(|e| panic!("these tests need Redis at {} ({e})", redis_url()));
        let store = StateStore::new(
            handle,
            lexpipe::redis::KeyBuilder::new(&cfg.env),
            StateConfig::default(),
        );
        (cfg, store)
    }

    async fn remove_all(store: &StateStore, docs: &[Uuid]) {
        let mut keys: Vec<String> = docs.iter().map(|d| store.state_key(*d)).collect();
        for d in docs {
            keys.extend(
                DocumentStatus::ALL
                    .iter()
                    .map(|s| store.index_key_of(*d, *s)),
            );
        }
        let handle =
            lexpipe::redis::RedisHandle::new(&config("t-status-cleanup", &redis_url())).unwrap();
        let mut c = handle.connection().await.unwrap();
        let _: i64 = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut c)
            .await
            .unwrap();
    }

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[tokio::test]
    async fn exit_status_is_0_for_a_known_document_and_1_for_an_unknown_one() {
        let (cfg, store) = fresh().await;
        let doc = Uuid::new_v4();
        store.init(doc, "a.pdf", SHA, &["ocr"]).await.unwrap();
        let known = run(cfg.clone(), Some(doc.to_string()), false, true, false).await;
        let unknown = run(
            cfg.clone(),
            Some(Uuid::new_v4().to_string()),
            false,
            false,
            false,
        )
        .await;
        let all = run(cfg, None, true, false, false).await;
        remove_all(&store, &[doc]).await;
        assert_eq!(known.unwrap(), ExitCode::SUCCESS);
        assert_eq!(unknown.unwrap(), ExitCode::from(UNKNOWN));
        assert_eq!(all.unwrap(), ExitCode::SUCCESS);
    }

    #[tokio::test]
    async fn exit_status_is_2_when_redis_is_unreachable() {
        let cfg = config("t-status-down", "redis://127.0.0.1:1");
        let code = run(cfg, Some(Uuid::new_v4().to_string()), false, false, false).await;
        assert_eq!(code.unwrap(), ExitCode::from(UNREACHABLE));
    }

    #[tokio::test]
    async fn watch_returns_once_the_document_completes() {
        let (cfg, store) = fresh().await;
        let doc = Uuid::new_v4();
        store.init(doc, "a.pdf", SHA, &["ocr"]).await.unwrap();
        store.start_stage(doc, "ocr").await.unwrap();
        let writer = store.clone();
        let finish = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            writer.complete_stage(doc, "ocr", 1).await.unwrap();
        });
        let code = run(cfg, Some(doc.to_string()), false, false, true).await;
        finish.await.unwrap();
        remove_all(&store, &[doc]).await;
        assert_eq!(code.unwrap(), ExitCode::SUCCESS);
    }

    #[tokio::test]
    async fn a_target_and_all_together_are_refused() {
        let cfg = config("t-status-usage", "redis://127.0.0.1:1");
        assert!(
            run(cfg.clone(), Some("x".into()), true, false, false)
                .await
                .is_err()
        );
        assert!(run(cfg, None, false, false, false).await.is_err());
    }
}
