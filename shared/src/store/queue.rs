//! The work queue's database side: one `processing_queue` row per document, claimed by
//! workers under a lease and a fencing token.
//!
//! Redis locks decide quickly which worker takes an item; PostgreSQL decides for good. The
//! row lock (`FOR UPDATE SKIP LOCKED`) keeps two claimers off one row, the fencing token
//! (from the Redis lock's counter) orders successive owners, and every state change after
//! the claim is conditional on the token, so a worker that lost its lease cannot complete
//! or fail an item someone else now owns.
//!
//! ## Claim protocol
//!
//! 1. [`enqueue`]: the document row, its source and the queue item are inserted in one
//!    transaction with `ON CONFLICT DO NOTHING`, so duplicates of an upload event create
//!    nothing new (`created` is true for exactly one of them).
//! 2. [`claim`], in one transaction: take the best claimable item — `queued`, or
//!    `running` with an expired lease — by `priority DESC, enqueued_at, id`, locked with
//!    `FOR UPDATE SKIP LOCKED` so concurrent claimers pass each other instead of waiting.
//!    An item that has used up `max_attempts` is marked `failed` there and then. Otherwise
//!    the caller's lock step runs (the Redis lock); with a fencing token newer than the
//!    item's, the item becomes `running` with `attempts + 1`, a lease and the token, the
//!    previous `running` attempt (a worker that went silent) becomes `abandoned`, and a new
//!    `running` row goes into `queue_attempts`. A lock step that fails, or a token that is
//!    not newer, passes over to the next candidate.
//! 3. While working, [`heartbeat`] extends the lease.
//! 4. [`complete`] or [`fail`] end the attempt — only if the item still carries the
//!    claim's fencing token and is `running`. Otherwise the claim is stale: nothing
//!    changes except that the attempt row is marked `stale`, and the caller learns it
//!    (`false` / [`FailOutcome::Stale`]) and must drop its results.
//!
//! `queue_attempts` is the audit trail: one row per claim, unique per `(item, attempt)`,
//! and a partial unique index allows at most one `running` row per item.
//!
//! Times are the database's `now()`, never the workers' clocks, so skew between machines
//! cannot shorten or lengthen a lease.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::db::{DbError, check_document_id, token_from_db, token_to_db};
use crate::model::DocumentStatus;

/// Candidates one [`claim`] looks at before giving up. Passing over an item costs one
/// query; ten in a row that are locked elsewhere in Redis means the queue is busy, and
/// the worker is better off coming back than scanning on while holding row locks.
const MAX_CANDIDATES: usize = 10;

/// `documents.error_type` of an item failed because its lease expired `max_attempts`
/// times (the worker crashed or hung each time).
pub const LEASE_EXPIRED_ERROR_TYPE: &str = "LeaseExpired";

/// `documents.error_type` of a queued item found with no attempts left (its
/// `max_attempts` was lowered by hand).
pub const ATTEMPTS_EXHAUSTED_ERROR_TYPE: &str = "AttemptsExhausted";

/// Status of a queue item, and of a document: the workspace's one document status, stored
/// in both tables as [`DocumentStatus::as_str`]. An item being worked on is `running`
/// (called `processing` before migration 0003), as in the Redis document state.
pub type Status = DocumentStatus;

/// Reads a stored status.
///
/// # Errors
/// [`DbError::InvalidData`] for a word the migrations' CHECK constraints should have kept
/// out.
pub(super) fn parse_status(s: &str) -> Result<DocumentStatus, DbError> {
    DocumentStatus::parse(s).ok_or_else(|| DbError::InvalidData(format!("unknown status {s:?}")))
}

/// How one attempt at an item ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptOutcome {
    /// Claimed and not finished yet.
    Running,
    Completed,
    Failed,
    /// The lease expired and another claim took the item over.
    Abandoned,
    /// The worker tried to complete or fail after losing its claim, and was refused.
    Stale,
}

impl AttemptOutcome {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Running => "running",
            AttemptOutcome::Completed => "completed",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Abandoned => "abandoned",
            AttemptOutcome::Stale => "stale",
        }
    }

    fn parse(s: &str) -> Result<AttemptOutcome, DbError> {
        match s {
            "running" => Ok(AttemptOutcome::Running),
            "completed" => Ok(AttemptOutcome::Completed),
            "failed" => Ok(AttemptOutcome::Failed),
            "abandoned" => Ok(AttemptOutcome::Abandoned),
            "stale" => Ok(AttemptOutcome::Stale),
            other => Err(DbError::InvalidData(format!(
                "unknown attempt outcome {other:?}"
            ))),
        }
    }
}

/// What [`enqueue`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub item_id: i64,
    pub document_id: Uuid,
    /// True when this call created the queue item; false when it already existed (a
    /// duplicate event, or the same content under another name).
    pub created: bool,
}

/// An item this worker owns until `lease_until`, as long as nobody claims it with a newer
/// fencing token. Pass it to [`heartbeat`], [`complete`] or [`fail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub item_id: i64,
    pub document_id: Uuid,
    pub source_path: String,
    /// 1 for the first claim of the item, 2 for the second, …
    pub attempt: i32,
    /// The token from the caller's lock step; also the one to give
    /// [`super::persist::persist_document`].
    pub fencing_token: u64,
    pub lease_until: DateTime<Utc>,
}

/// What [`fail`] did with the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Back in the queue for another attempt.
    Requeued { attempts: i32, max_attempts: i32 },
    /// Failed for good (a terminal error, or attempts used up); the document is failed too.
    Failed { attempts: i32 },
    /// The claim was lost before the call: nothing changed.
    Stale,
}

/// Items per status, for `lexpipe status` and alarms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub queued: u64,
    pub running: u64,
    pub completed: u64,
    pub failed: u64,
    /// `running` items whose lease has run out: workers that died; the next claims
    /// take them over.
    pub expired_leases: u64,
}

/// One row of `queue_attempts`.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub attempt: i32,
    pub worker_id: String,
    pub fencing_token: u64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: AttemptOutcome,
}

/// One row of `processing_queue`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueItem {
    pub id: i64,
    pub document_id: Uuid,
    pub source_path: String,
    pub priority: i32,
    pub status: DocumentStatus,
    pub attempts: i32,
    pub max_attempts: i32,
    pub lease_until: Option<DateTime<Utc>>,
    pub worker_id: Option<String>,
    pub fencing_token: u64,
    pub last_error: Option<String>,
    pub enqueued_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// Records a document (by content) and queues it once.
///
/// `document_id` must be [`crate::model::document_uuid`] of `content_sha256`: that is what
/// makes the same bytes one document wherever they come from. Every call records `source`
/// (a file path or S3 key) as one more name of the document. Higher `priority` is claimed
/// first.
///
/// A document that already has a queue item — in any state — is not queued again: a
/// redelivered event must not redo finished work.
///
/// # Errors
/// [`DbError::InvalidData`] when `document_id` is not the content's; driver errors
/// otherwise ([`DbError::is_retryable`] tells which to retry).
pub async fn enqueue(
    pool: &PgPool,
    document_id: Uuid,
    content_sha256: &str,
    source: &str,
    priority: i32,
) -> Result<Enqueued, DbError> {
    check_document_id(document_id, content_sha256)?;
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO documents (id, content_sha256, status) VALUES ($1, $2, 'queued') \
         ON CONFLICT DO NOTHING",
    )
    .bind(document_id)
    .bind(content_sha256)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO document_sources (document_id, source) VALUES ($1, $2) \
         ON CONFLICT DO NOTHING",
    )
    .bind(document_id)
    .bind(source)
    .execute(&mut *tx)
    .await?;
    // A concurrent enqueue of the same document waits here until the first commits, then
    // finds the conflict and inserts nothing.
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO processing_queue (document_id, source_path, priority) VALUES ($1, $2, $3) \
         ON CONFLICT (document_id) DO NOTHING RETURNING id",
    )
    .bind(document_id)
    .bind(source)
    .bind(priority)
    .fetch_optional(&mut *tx)
    .await?;
    let (item_id, created) = match inserted {
        Some(id) => (id, true),
        None => {
            let id: i64 =
                sqlx::query_scalar("SELECT id FROM processing_queue WHERE document_id = $1")
                    .bind(document_id)
                    .fetch_one(&mut *tx)
                    .await?;
            (id, false)
        }
    };
    tx.commit().await?;
    Ok(Enqueued {
        item_id,
        document_id,
        created,
    })
}

#[derive(sqlx::FromRow)]
struct Candidate {
    id: i64,
    document_id: Uuid,
    source_path: String,
    status: String,
    attempts: i32,
    max_attempts: i32,
    fencing_token: i64,
}

/// Claims the best claimable item for `worker_id` (see the module docs for the protocol).
///
/// `lock` is the caller's distributed-lock step, given the item id: it returns the lock's
/// fencing token when it got the lock, `None` when someone else holds it. It runs inside
/// the claiming transaction, while the row is locked, so keep it short (one Redis call).
/// If `claim` then returns `Ok(None)` or an error although `lock` returned a token — the
/// token was not newer than the item's, or the database failed — the caller still holds
/// that lock and should release it (or let it expire).
///
/// Returns `None` when nothing is claimable right now: the queue is empty, or every
/// candidate is locked by another claimer.
///
/// # Errors
/// Driver errors; [`DbError::InvalidData`] for a lease or fencing token out of range.
pub async fn claim<F, Fut>(
    pool: &PgPool,
    worker_id: &str,
    lease: Duration,
    mut lock: F,
) -> Result<Option<Claim>, DbError>
where
    F: FnMut(i64) -> Fut,
    Fut: Future<Output = Option<u64>>,
{
    let lease_ms = lease_millis(lease)?;
    let mut tx = pool.begin().await?;
    // Items this call locked and could not take: excluded from the next look, since
    // SKIP LOCKED skips only rows locked by *other* transactions.
    let mut passed_over: Vec<i64> = Vec::new();
    for _ in 0..MAX_CANDIDATES {
        // One candidate at a time rather than a batch: a batch would hold row locks on
        // items this call is not going to take, making other claimers skip them (and
        // take lower-priority work) or find nothing at all at the tail of the queue.
        let candidate: Option<Candidate> = sqlx::query_as(
            "SELECT id, document_id, source_path, status, attempts, max_attempts, fencing_token \
             FROM processing_queue \
             WHERE (status = 'queued' OR (status = 'running' AND lease_until < now())) \
               AND id <> ALL($1) \
             ORDER BY priority DESC, enqueued_at, id \
             LIMIT 1 \
             FOR UPDATE SKIP LOCKED",
        )
        .bind(&passed_over)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(c) = candidate else { break };

        if c.attempts >= c.max_attempts {
            give_up(&mut tx, &c).await?;
            continue;
        }
        let Some(fence) = lock(c.id).await else {
            passed_over.push(c.id);
            continue;
        };
        let fence_db = token_to_db(fence)?;
        if fence_db <= c.fencing_token {
            // The lock's counter went backwards (a Redis flush or failover): taking the
            // item with this token would let the previous owner's writes win. Leave it;
            // each failed round advances the counter until it passes the stored token.
            tracing::warn!(
                item_id = c.id,
                presented = fence,
                current = c.fencing_token,
                "lock returned a fencing token that is not newer than the item's; passing over"
            );
            passed_over.push(c.id);
            continue;
        }
        let Some((attempt, lease_until)) = take(&mut tx, &c, worker_id, lease_ms, fence_db).await?
        else {
            passed_over.push(c.id);
            continue;
        };
        tx.commit().await?;
        return Ok(Some(Claim {
            item_id: c.id,
            document_id: c.document_id,
            source_path: c.source_path,
            attempt,
            fencing_token: fence,
            lease_until,
        }));
    }
    // Items given up on above are failed for good even when nothing was claimed.
    tx.commit().await?;
    Ok(None)
}

/// What [`claim_item`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemClaim {
    /// The item was claimable (queued, or its lease had run out): it is now `running`
    /// under this new claim.
    Claimed(Claim),
    /// `worker_id` already holds the item (a repeated call for the same owner): the
    /// claim as stored, so that every repetition acts under the same token.
    Held(Claim),
    /// Another worker holds the item within its lease.
    Busy,
    /// The item is done with: `completed` or `failed` (also when this call found it had
    /// used up its attempts).
    Finished(DocumentStatus),
    /// The lock step refused (another claimer holds the lock), or gave a fencing token
    /// that is not newer than the item's.
    Locked,
}

#[derive(sqlx::FromRow)]
struct OwnedCandidate {
    #[sqlx(flatten)]
    c: Candidate,
    worker_id: Option<String>,
    lease_until: Option<DateTime<Utc>>,
    expired: bool,
}

/// Claims item `item_id` for the worker `worker_id(n)` names for attempt `n`: what
/// `ingest` does for the execution it is about to start (the execution name is the worker
/// id, and a retried document's next attempt is a new execution), where [`claim`] takes
/// whichever item is best. The row is locked (`FOR UPDATE`, waiting for a concurrent
/// claimer), so that of many concurrent calls for one item exactly one claims it and the
/// others find it [`ItemClaim::Held`] by the worker id of its current attempt (or busy,
/// or finished). `lock` is the caller's lock step, as for [`claim`]; it runs only when
/// the item is claimable.
///
/// # Errors
/// Driver errors; [`DbError::InvalidData`] for an unknown item, or a lease or fencing
/// token out of range.
pub async fn claim_item<W, F, Fut>(
    pool: &PgPool,
    item_id: i64,
    worker_id: W,
    lease: Duration,
    lock: F,
) -> Result<ItemClaim, DbError>
where
    W: Fn(i32) -> String,
    F: FnOnce(i64) -> Fut,
    Fut: Future<Output = Option<u64>>,
{
    let lease_ms = lease_millis(lease)?;
    let mut tx = pool.begin().await?;
    let row: Option<OwnedCandidate> = sqlx::query_as(
        "SELECT id, document_id, source_path, status, attempts, max_attempts, fencing_token, \
                worker_id, lease_until, COALESCE(lease_until < now(), false) AS expired \
         FROM processing_queue WHERE id = $1 FOR UPDATE",
    )
    .bind(item_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Err(DbError::InvalidData(format!("no queue item {item_id}")));
    };
    let c = &row.c;
    let status = parse_status(&c.status)?;
    let held_by_me = row.worker_id.as_deref() == Some(worker_id(c.attempts).as_str());
    let outcome = match status {
        DocumentStatus::Completed | DocumentStatus::Failed => ItemClaim::Finished(status),
        DocumentStatus::Running if held_by_me => ItemClaim::Held(Claim {
            item_id: c.id,
            document_id: c.document_id,
            source_path: c.source_path.clone(),
            attempt: c.attempts,
            fencing_token: token_from_db(c.fencing_token),
            lease_until: row.lease_until.unwrap_or_else(Utc::now),
        }),
        DocumentStatus::Running if !row.expired => ItemClaim::Busy,
        _ if c.attempts >= c.max_attempts => {
            give_up(&mut tx, c).await?;
            ItemClaim::Finished(DocumentStatus::Failed)
        }
        _ => match lock(c.id).await {
            None => ItemClaim::Locked,
            Some(fence) => {
                let fence_db = token_to_db(fence)?;
                let taken = if fence_db > c.fencing_token {
                    let me = worker_id(c.attempts + 1);
                    take(&mut tx, c, &me, lease_ms, fence_db).await?
                } else {
                    None
                };
                match taken {
                    None => ItemClaim::Locked,
                    Some((attempt, lease_until)) => ItemClaim::Claimed(Claim {
                        item_id: c.id,
                        document_id: c.document_id,
                        source_path: c.source_path.clone(),
                        attempt,
                        fencing_token: fence,
                        lease_until,
                    }),
                }
            }
        },
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Makes candidate `c` `running` under `worker_id` with the lease and fencing token `fence`
/// (the previous `running` attempt abandoned, a new attempt row, the document `running`):
/// the claim's attempt number and lease end, or `None` when the row is no longer
/// claimable with that token.
async fn take(
    tx: &mut Transaction<'_, Postgres>,
    c: &Candidate,
    worker_id: &str,
    lease_ms: i64,
    fence_db: i64,
) -> Result<Option<(i32, DateTime<Utc>)>, DbError> {
    // The caller's row lock makes the guards below redundant; they keep a claim from
    // ever overwriting a newer owner should the callers' locking be changed.
    let taken: Option<(i32, DateTime<Utc>)> = sqlx::query_as(
        "UPDATE processing_queue \
         SET status = 'running', attempts = attempts + 1, \
             lease_until = now() + $2 * interval '1 millisecond', \
             worker_id = $3, fencing_token = $4, updated_at = now(), completed_at = NULL \
         WHERE id = $1 AND fencing_token < $4 \
           AND (status = 'queued' OR (status = 'running' AND lease_until < now())) \
         RETURNING attempts, lease_until",
    )
    .bind(c.id)
    .bind(lease_ms)
    .bind(worker_id)
    .bind(fence_db)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((attempt, lease_until)) = taken else {
        return Ok(None);
    };
    sqlx::query(
        "UPDATE queue_attempts SET outcome = 'abandoned', finished_at = now() \
         WHERE item_id = $1 AND outcome = 'running'",
    )
    .bind(c.id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO queue_attempts (item_id, attempt, worker_id, fencing_token) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(c.id)
    .bind(attempt)
    .bind(worker_id)
    .bind(fence_db)
    .execute(&mut **tx)
    .await?;
    // The document remembers the newest owner too, so a persist from an owner that
    // has since lost the item is refused (see persist_document).
    sqlx::query(
        "UPDATE documents SET status = 'running', \
             fencing_token = GREATEST(fencing_token, $2), updated_at = now() \
         WHERE id = $1",
    )
    .bind(c.document_id)
    .bind(fence_db)
    .execute(&mut **tx)
    .await?;
    Ok(Some((attempt, lease_until)))
}

/// Fails a candidate that has used up its attempts: its worker died `max_attempts` times
/// (or it was queued with nothing left), and claiming it again would loop forever.
async fn give_up(tx: &mut Transaction<'_, Postgres>, c: &Candidate) -> Result<(), DbError> {
    let (error, error_type) = if c.status == DocumentStatus::Running.as_str() {
        let error = format!(
            "lease expired {} times (max_attempts {}): the worker stopped renewing it each time",
            c.attempts, c.max_attempts
        );
        (error, LEASE_EXPIRED_ERROR_TYPE)
    } else {
        let error = format!("attempts used up ({} of {})", c.attempts, c.max_attempts);
        (error, ATTEMPTS_EXHAUSTED_ERROR_TYPE)
    };
    tracing::warn!(item_id = c.id, "{error}");
    sqlx::query(
        "UPDATE processing_queue SET status = 'failed', last_error = $2, lease_until = NULL, \
             updated_at = now(), completed_at = now() \
         WHERE id = $1",
    )
    .bind(c.id)
    .bind(&error)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE queue_attempts SET outcome = 'abandoned', finished_at = now() \
         WHERE item_id = $1 AND outcome = 'running'",
    )
    .bind(c.id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE documents SET status = 'failed', error = $2, error_type = $3, updated_at = now() \
         WHERE id = $1",
    )
    .bind(c.document_id)
    .bind(&error)
    .bind(error_type)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn lease_millis(lease: Duration) -> Result<i64, DbError> {
    i64::try_from(lease.as_millis())
        .map_err(|_| DbError::InvalidData(format!("lease {lease:?} is too long")))
}

/// Extends the claim's lease to `now() + lease`.
///
/// Returns false when the claim is lost (someone claimed the item with a newer token, or
/// it is no longer `running`): stop working on it. A lease that has expired but was not
/// yet taken over is still this worker's, and is renewed.
///
/// # Errors
/// Driver errors.
pub async fn heartbeat(pool: &PgPool, claim: &Claim, lease: Duration) -> Result<bool, DbError> {
    let result = sqlx::query(
        "UPDATE processing_queue \
         SET lease_until = now() + $3 * interval '1 millisecond', updated_at = now() \
         WHERE id = $1 AND fencing_token = $2 AND status = 'running'",
    )
    .bind(claim.item_id)
    .bind(token_to_db(claim.fencing_token)?)
    .bind(lease_millis(lease)?)
    .execute(pool)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Marks the claimed item and its document completed.
///
/// Returns false when the claim is stale (see [`heartbeat`]): nothing changes except that
/// this attempt is recorded as `stale`, and the caller must treat its work as discarded.
/// Calling it again after it succeeded returns true again, so a retry after a lost reply
/// is safe.
///
/// # Errors
/// Driver errors.
pub async fn complete(pool: &PgPool, claim: &Claim) -> Result<bool, DbError> {
    let token = token_to_db(claim.fencing_token)?;
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "UPDATE processing_queue \
         SET status = 'completed', lease_until = NULL, last_error = NULL, \
             updated_at = now(), completed_at = now() \
         WHERE id = $1 AND fencing_token = $2 AND status = 'running'",
    )
    .bind(claim.item_id)
    .bind(token)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if done {
        finish_attempt(&mut tx, claim, token, AttemptOutcome::Completed).await?;
        sqlx::query(
            "UPDATE documents SET status = 'completed', error = NULL, error_type = NULL, \
                 updated_at = now() \
             WHERE id = $1",
        )
        .bind(claim.document_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok(true);
    }
    // Either the claim was lost, or this is a retry of a complete() that did commit (the
    // reply was lost on the way back): the latter is success, not staleness.
    let already: Option<(String, i64)> =
        sqlx::query_as("SELECT status, fencing_token FROM processing_queue WHERE id = $1")
            .bind(claim.item_id)
            .fetch_optional(&mut *tx)
            .await?;
    if already == Some((DocumentStatus::Completed.as_str().to_owned(), token)) {
        return Ok(true);
    }
    finish_attempt(&mut tx, claim, token, AttemptOutcome::Stale).await?;
    tx.commit().await?;
    Ok(false)
}

/// Records how the claim's attempt ended. A stale claim's row may already be `abandoned`
/// (taken over by a later claim); it becomes `stale` to show the worker came back late.
async fn finish_attempt(
    tx: &mut Transaction<'_, Postgres>,
    claim: &Claim,
    token: i64,
    outcome: AttemptOutcome,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE queue_attempts SET outcome = $4, finished_at = COALESCE(finished_at, now()) \
         WHERE item_id = $1 AND attempt = $2 AND fencing_token = $3 \
           AND outcome IN ('running', 'abandoned')",
    )
    .bind(claim.item_id)
    .bind(claim.attempt)
    .bind(token)
    .bind(outcome.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Ends the claim with an error.
///
/// A `retryable` error with attempts left puts the item back in the queue (its document
/// back to `queued`); otherwise the item and its document are `failed` with `error`.
///
/// # Errors
/// Driver errors.
pub async fn fail(
    pool: &PgPool,
    claim: &Claim,
    error: &str,
    retryable: bool,
) -> Result<FailOutcome, DbError> {
    fail_typed(pool, claim, None, error, retryable).await
}

/// [`fail`], recording `error_type` (the stable error name) on a document failed for
/// good.
///
/// # Errors
/// Driver errors.
pub async fn fail_typed(
    pool: &PgPool,
    claim: &Claim,
    error_type: Option<&str>,
    error: &str,
    retryable: bool,
) -> Result<FailOutcome, DbError> {
    let token = token_to_db(claim.fencing_token)?;
    let mut tx = pool.begin().await?;
    let row: Option<(String, i32, i32)> = sqlx::query_as(
        "UPDATE processing_queue \
         SET status = CASE WHEN $3 AND attempts < max_attempts THEN 'queued' ELSE 'failed' END, \
             completed_at = CASE WHEN $3 AND attempts < max_attempts THEN NULL ELSE now() END, \
             last_error = $4, lease_until = NULL, updated_at = now() \
         WHERE id = $1 AND fencing_token = $2 AND status = 'running' \
         RETURNING status, attempts, max_attempts",
    )
    .bind(claim.item_id)
    .bind(token)
    .bind(retryable)
    .bind(error)
    .fetch_optional(&mut *tx)
    .await?;
    let outcome = match row {
        None => {
            finish_attempt(&mut tx, claim, token, AttemptOutcome::Stale).await?;
            FailOutcome::Stale
        }
        Some((status, attempts, max_attempts)) => {
            finish_attempt(&mut tx, claim, token, AttemptOutcome::Failed).await?;
            let requeued = parse_status(&status)? == DocumentStatus::Queued;
            sqlx::query(
                "UPDATE documents \
                 SET status = $2, \
                     error = CASE WHEN $2 = 'failed' THEN $3 ELSE error END, \
                     error_type = CASE WHEN $2 = 'failed' THEN COALESCE($4, error_type) \
                                  ELSE error_type END, \
                     updated_at = now() \
                 WHERE id = $1",
            )
            .bind(claim.document_id)
            .bind(&status)
            .bind(error)
            .bind(error_type)
            .execute(&mut *tx)
            .await?;
            if requeued {
                FailOutcome::Requeued {
                    attempts,
                    max_attempts,
                }
            } else {
                FailOutcome::Failed { attempts }
            }
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// What [`requeue_failed`] did with a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requeue {
    /// The failed item is `queued` again with `attempts_left` more attempts; its
    /// document is `queued`, its error cleared (the attempts keep their history).
    Requeued {
        item_id: i64,
        document_id: Uuid,
        content_sha256: String,
        source_path: String,
        /// Attempts made so far; the next claim is attempt `attempts + 1`.
        attempts: i32,
        attempts_left: i32,
    },
    /// The item is not failed (queued, running or completed): left as it is.
    NotFailed(DocumentStatus),
    /// The document has no queue item.
    NotQueued,
}

/// Puts a `failed` document back in the queue for `more_attempts` more attempts (at
/// least 1): the way to process a document again once whatever failed it is fixed (a
/// provider outage, a source that was missing, a limit raised). Only a failed item
/// moves, in one statement, so concurrent calls requeue it once and the others find it
/// queued; a completed document is never redone.
///
/// # Errors
/// Driver errors.
pub async fn requeue_failed(
    pool: &PgPool,
    document_id: Uuid,
    more_attempts: i32,
) -> Result<Requeue, DbError> {
    let more = more_attempts.max(1);
    let mut tx = pool.begin().await?;
    let row: Option<(i64, String, i32, String)> = sqlx::query_as(
        "UPDATE processing_queue q \
         SET status = 'queued', max_attempts = q.attempts + $2, lease_until = NULL, \
             worker_id = NULL, completed_at = NULL, updated_at = now() \
         FROM documents d \
         WHERE q.document_id = $1 AND d.id = q.document_id AND q.status = 'failed' \
         RETURNING q.id, q.source_path, q.attempts, d.content_sha256",
    )
    .bind(document_id)
    .bind(more)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((item_id, source_path, attempts, content_sha256)) = row else {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM processing_queue WHERE document_id = $1")
                .bind(document_id)
                .fetch_optional(&mut *tx)
                .await?;
        return match status {
            None => Ok(Requeue::NotQueued),
            Some(s) => Ok(Requeue::NotFailed(parse_status(&s)?)),
        };
    };
    sqlx::query(
        "UPDATE documents SET status = 'queued', error = NULL, error_type = NULL, \
             updated_at = now() \
         WHERE id = $1",
    )
    .bind(document_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Requeue::Requeued {
        item_id,
        document_id,
        content_sha256,
        source_path,
        attempts,
        attempts_left: more,
    })
}

/// The failed documents, oldest failure first, optionally only those whose
/// `documents.error_type` is `error_type`.
///
/// # Errors
/// Driver errors.
pub async fn failed_documents(
    pool: &PgPool,
    error_type: Option<&str>,
) -> Result<Vec<Uuid>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT q.document_id FROM processing_queue q JOIN documents d ON d.id = q.document_id \
         WHERE q.status = 'failed' AND ($1::text IS NULL OR d.error_type = $1) \
         ORDER BY q.completed_at NULLS LAST, q.id",
    )
    .bind(error_type)
    .fetch_all(pool)
    .await?)
}

/// Counts items per status, and leases that have run out.
///
/// # Errors
/// Driver errors.
pub async fn stats(pool: &PgPool) -> Result<QueueStats, DbError> {
    let (queued, running, completed, failed, expired): (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'queued'), \
                    count(*) FILTER (WHERE status = 'running'), \
                    count(*) FILTER (WHERE status = 'completed'), \
                    count(*) FILTER (WHERE status = 'failed'), \
                    count(*) FILTER (WHERE status = 'running' AND lease_until < now()) \
             FROM processing_queue",
    )
    .fetch_one(pool)
    .await?;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok(QueueStats {
        queued: n(queued),
        running: n(running),
        completed: n(completed),
        failed: n(failed),
        expired_leases: n(expired),
    })
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    attempt: i32,
    worker_id: String,
    fencing_token: i64,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    outcome: String,
}

/// Every attempt at an item, oldest first.
///
/// # Errors
/// Driver errors.
pub async fn attempts(pool: &PgPool, item_id: i64) -> Result<Vec<Attempt>, DbError> {
    let rows: Vec<AttemptRow> = sqlx::query_as(
        "SELECT attempt, worker_id, fencing_token, started_at, finished_at, outcome \
         FROM queue_attempts WHERE item_id = $1 ORDER BY attempt",
    )
    .bind(item_id)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Attempt {
                attempt: r.attempt,
                worker_id: r.worker_id,
                fencing_token: token_from_db(r.fencing_token),
                started_at: r.started_at,
                finished_at: r.finished_at,
                outcome: AttemptOutcome::parse(&r.outcome)?,
            })
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct ItemRow {
    id: i64,
    document_id: Uuid,
    source_path: String,
    priority: i32,
    status: String,
    attempts: i32,
    max_attempts: i32,
    lease_until: Option<DateTime<Utc>>,
    worker_id: Option<String>,
    fencing_token: i64,
    last_error: Option<String>,
    enqueued_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
}

/// One queue item, `None` when there is no such id.
///
/// # Errors
/// Driver errors.
pub async fn item(pool: &PgPool, id: i64) -> Result<Option<QueueItem>, DbError> {
    let row: Option<ItemRow> = sqlx::query_as(
        "SELECT id, document_id, source_path, priority, status, attempts, max_attempts, \
                lease_until, worker_id, fencing_token, last_error, enqueued_at, updated_at, \
                completed_at \
         FROM processing_queue WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(QueueItem {
            id: r.id,
            document_id: r.document_id,
            source_path: r.source_path,
            priority: r.priority,
            status: parse_status(&r.status)?,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            lease_until: r.lease_until,
            worker_id: r.worker_id,
            fencing_token: token_from_db(r.fencing_token),
            last_error: r.last_error,
            enqueued_at: r.enqueued_at,
            updated_at: r.updated_at,
            completed_at: r.completed_at,
        })
    })
    .transpose()
}
