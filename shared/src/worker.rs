//! Queue workers: claim an item, hold it, process it, persist it exactly once.
//!
//! ## Claim protocol
//! 1. In one PostgreSQL transaction, candidates are selected `FOR UPDATE SKIP LOCKED`
//!    (queued, or running with an expired lease), by priority.
//! 2. For a candidate, the worker takes the Redis lock `lock:v1:{queue_item-N}`; the lock
//!    script also `INCR`s the item's fencing counter (`fence:v1:{queue_item-N}`). No
//!    lock → next candidate.
//! 3. The row is updated to running with a lease and the fencing token, and an attempt
//!    row is written; commit.
//! 4. While the item is processed, the Redis lock is renewed and the row's lease extended
//!    (heartbeat). If the row's lease is lost (another claim took the item over), the
//!    worker stops working on the item. If the Redis lock is lost, PostgreSQL is asked
//!    (an immediate heartbeat): see "Redis losing a lock" below.
//! 5. Every write for the item carries the fencing token: PostgreSQL refuses a token older
//!    than one it has seen, so a paused or zombie worker cannot overwrite a newer one.
//! 6. The item completes only if the row still carries this claim's token.
//!
//! Any number of worker processes, on any number of machines, share one Redis and one
//! PostgreSQL this way.
//!
//! ## Redis losing a lock
//! A Redis restart without persistence, an eviction or a failover to a replica that had
//! not seen the lock all make the lock key vanish while its owner still works. That is
//! not another worker taking the item: the row in PostgreSQL still carries this claim's
//! fencing token and a live lease, and no claim can take a row whose lease is live. So
//! a worker whose lock is lost asks PostgreSQL at once (a heartbeat, conditional on the
//! token): if the claim stands, it carries on under the claim's fencing token, takes the
//! Redis lock again when it can (a fresh lock, used only to keep other claimers off; the
//! writes keep the claim's token), and counts it in
//! [`RedisTrouble::locks_lost_claims_kept`]; if the claim is gone, or PostgreSQL cannot
//! say, it abandons the item as before. Abandoning on every lost lock would make every
//! item in flight during a Redis restart wait out its lease and run a second time.
//! Fencing is what makes carrying on safe: should this worker stall past its lease and
//! the item be claimed again, the newer token wins every write.
//!
//! The rest of an outage is counted too ([`RedisTrouble`], in the worker's report):
//! cache calls that fell back to computing, document-state writes Redis could not take,
//! and documents whose state vanished while they were processed (what `lexpipe status`
//! then reports as lost).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;

use crate::app::App;
use crate::model::{DocumentStatus, document_uuid};
use crate::pipeline::{LocalTasks, StageRecorder};
use crate::redis::lock::{Lease, LeaseLost, LockName, Locks, Renewal};
use crate::redis::state::{DocumentState, DocumentStates, StateError, StatusCounts, Uuid};
use crate::stages::StageError;
use crate::stages::persist::QueueClaim;
use crate::store::queue::{self, Claim, FailOutcome};

/// What happens to one claimed item. The pipeline is the production processor; tests
/// wrap it (to slow it down, or to record calls) without replacing it.
#[async_trait]
pub trait ItemProcessor: Send + Sync {
    /// Processes the claimed item; writes carry `claim.fencing_token`.
    ///
    /// # Errors
    /// Why the item failed; [`StageError::is_retryable`] decides whether it is retried.
    async fn process(&self, claim: &Claim) -> Result<(), StageError>;

    /// The Redis trouble met so far by the processing (caches that fell back, state
    /// writes not made); nothing by default. [`Worker::report`] adds the lock losses.
    fn redis_trouble(&self) -> RedisTrouble {
        RedisTrouble::default()
    }
}

/// The production processor: the document through the state machine, every write
/// fenced with the claim's token.
pub struct PipelineProcessor {
    pub app: App,
    pub definition: crate::asl::Definition,
    /// The workers' lease: bounds how long a dead worker's persist record blocks others.
    pub lease: Duration,
    /// Multiplies the state machine's waits and retry delays (1.0; tests use 0).
    pub time_scale: f64,
    /// The app's document state, as [`PipelineProcessor::new`] wrapped it.
    pub states: Option<Arc<WatchedStates>>,
}

impl PipelineProcessor {
    /// `e`, after recording it in the document state of an item that failed before its
    /// first step (its source unreadable, or no longer the content it was queued with),
    /// on the OCR stage, where a step would have read it: without this the document would
    /// have no state at all, and `lexpipe status` could not tell it from one whose state
    /// Redis lost.
    async fn failed_before_start(&self, claim: &Claim, e: StageError) -> Result<(), StageError> {
        let (Some(_), Some(pool)) = (&self.app.states, &self.app.db) else {
            return Err(e);
        };
        let sha: Result<Option<String>, sqlx::Error> =
            sqlx::query_scalar("SELECT content_sha256 FROM documents WHERE id = $1")
                .bind(claim.document_id)
                .fetch_optional(pool)
                .await;
        if let Ok(Some(sha)) = sha {
            let rec = StageRecorder::new(&self.app, claim.document_id);
            rec.init(&claim.source_path, &sha, &crate::stages::names::ALL)
                .await;
            rec.mark_started(crate::stages::names::OCR).await;
            rec.record_failure(crate::stages::names::OCR, &e).await;
        }
        Err(e)
    }

    /// The processor of `app`, with the committed state machine definition. The app's
    /// document state is watched ([`WatchedStates`]) so that the report can say what an
    /// outage did to it.
    ///
    /// # Errors
    /// The definition cannot be loaded.
    pub fn new(mut app: App, lease: Duration) -> Result<PipelineProcessor, crate::asl::AslError> {
        let watched = app.states.take().map(|s| Arc::new(WatchedStates::new(s)));
        app.states = watched.clone().map(|w| w as Arc<dyn DocumentStates>);
        Ok(PipelineProcessor {
            app,
            definition: crate::pipeline::definition()?,
            lease,
            time_scale: 1.0,
            states: watched,
        })
    }
}

#[async_trait]
impl ItemProcessor for PipelineProcessor {
    async fn process(&self, claim: &Claim) -> Result<(), StageError> {
        let document = match crate::runner::identify(&self.app, &claim.source_path).await {
            // Checked before any work: the queue item names the content it was enqueued
            // with.
            Ok(d) if document_uuid(&d.content_sha256) == claim.document_id => d,
            Ok(_) => {
                let e = StageError::ContentChanged {
                    what: claim.source_path.clone(),
                };
                return self.failed_before_start(claim, e).await;
            }
            Err(e) => return self.failed_before_start(claim, e).await,
        };
        let queue = QueueClaim {
            item_id: claim.item_id,
            fencing_token: claim.fencing_token,
            lease_ms: self.lease.as_millis() as u64,
            attempt: claim.attempt,
            // The worker settles the row itself once the execution has ended.
            settles_row: false,
        };
        let tasks = LocalTasks::new(&self.app);
        let out = crate::runner::execute(
            &self.app,
            &self.definition,
            &tasks,
            &document,
            serde_json::json!(queue),
            self.time_scale,
        )
        .await
        .map_err(|f| StageError::Execution {
            error: f.error,
            cause: f.cause,
        })?;
        tracing::debug!(
            item_id = claim.item_id,
            outcome = out.pointer("/persist/persisted").and_then(|v| v.as_str()),
            "persisted"
        );
        Ok(())
    }

    fn redis_trouble(&self) -> RedisTrouble {
        let cache_fallbacks = self
            .app
            .cache
            .local_stats()
            .iter()
            .map(|s| s.errors)
            .sum::<i64>();
        let (state_writes_failed, documents_state_lost) = self
            .states
            .as_ref()
            .map(|w| (w.writes_failed(), w.documents_lost()))
            .unwrap_or_default();
        RedisTrouble {
            lock_errors: 0,
            locks_lost_claims_kept: 0,
            cache_fallbacks: u64::try_from(cache_fallbacks).unwrap_or(0),
            state_writes_failed,
            documents_state_lost,
        }
    }
}

/// Document state as the pipeline writes it, counting what did not land: writes Redis
/// could not take (unreachable, breaker open), and documents whose state hash vanished
/// under a run (a transition answered "no such document": Redis restarted empty, evicted
/// the hash, or failed over). The pipeline carries on either way ([`StageRecorder`]
/// never fails the work over state); this is how the worker's report tells about it.
pub struct WatchedStates {
    inner: Arc<dyn DocumentStates>,
    writes_failed: AtomicU64,
    lost: Mutex<HashSet<Uuid>>,
}

impl WatchedStates {
    pub fn new(inner: Arc<dyn DocumentStates>) -> WatchedStates {
        WatchedStates {
            inner,
            writes_failed: AtomicU64::new(0),
            lost: Mutex::new(HashSet::new()),
        }
    }

    /// State writes not made because Redis could not be asked.
    pub fn writes_failed(&self) -> u64 {
        self.writes_failed.load(Ordering::Relaxed)
    }

    /// Documents whose state vanished while this process worked on them.
    pub fn documents_lost(&self) -> u64 {
        self.lost.lock().expect("poisoned").len() as u64
    }

    fn note_lost(&self, doc: Uuid) {
        if self.lost.lock().expect("poisoned").insert(doc) {
            tracing::warn!(
                document_uuid = %doc,
                "the document's state vanished from Redis mid-run (restart, eviction or \
                 failover); carrying on, `lexpipe status` reports it lost"
            );
        }
    }

    fn watch(&self, r: Result<DocumentState, StateError>) -> Result<DocumentState, StateError> {
        match &r {
            Err(StateError::Unavailable(_)) => {
                self.writes_failed.fetch_add(1, Ordering::Relaxed);
            }
            Err(StateError::NotFound(doc)) => self.note_lost(*doc),
            _ => {}
        }
        r
    }
}

#[async_trait]
impl DocumentStates for WatchedStates {
    async fn init(
        &self,
        doc: Uuid,
        source: &str,
        content_sha256: &str,
        stages: &[&str],
    ) -> Result<DocumentState, StateError> {
        let r = self.inner.init(doc, source, content_sha256, stages).await;
        self.watch(r)
    }

    async fn start_stage(&self, doc: Uuid, stage: &str) -> Result<DocumentState, StateError> {
        let r = self.inner.start_stage(doc, stage).await;
        self.watch(r)
    }

    async fn complete_stage(
        &self,
        doc: Uuid,
        stage: &str,
        count: u64,
    ) -> Result<DocumentState, StateError> {
        let r = self.inner.complete_stage(doc, stage, count).await;
        self.watch(r)
    }

    async fn fail_stage(
        &self,
        doc: Uuid,
        stage: &str,
        error_type: &str,
        message: &str,
    ) -> Result<DocumentState, StateError> {
        let r = self.inner.fail_stage(doc, stage, error_type, message).await;
        self.watch(r)
    }

    async fn skip_stage(&self, doc: Uuid, stage: &str) -> Result<DocumentState, StateError> {
        let r = self.inner.skip_stage(doc, stage).await;
        self.watch(r)
    }

    async fn get(&self, doc: Uuid) -> Result<Option<DocumentState>, StateError> {
        self.inner.get(doc).await
    }

    async fn list(
        &self,
        status: Option<DocumentStatus>,
        limit: usize,
    ) -> Result<Vec<DocumentState>, StateError> {
        self.inner.list(status, limit).await
    }

    async fn counts(&self) -> Result<StatusCounts, StateError> {
        self.inner.counts().await
    }
}

/// Settings of one worker process.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Items processed at once by this process.
    pub concurrency: usize,
    /// Stop when nothing is queued or running anywhere.
    pub until_empty: bool,
    /// Lock and row lease; renewed every third of it.
    pub lease: Duration,
    /// Pause when nothing is claimable.
    pub idle_poll: Duration,
    /// Recorded on claims and attempts, e.g. `host:pid`.
    pub worker_id: String,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            concurrency: 4,
            until_empty: false,
            lease: Duration::from_secs(60),
            idle_poll: Duration::from_millis(500),
            worker_id: default_worker_id(),
        }
    }
}

/// `hostname:pid`, the default worker id.
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!("{host}:{}", std::process::id())
}

/// What a worker process did.
#[derive(Debug, Default, Clone, serde::Serialize, PartialEq, Eq)]
pub struct WorkerReport {
    pub completed: u64,
    pub failed: u64,
    pub requeued: u64,
    /// Items whose claim was lost (lease taken over) before they finished.
    pub lost: u64,
    /// What the worker met of Redis trouble: zero everywhere in a healthy run.
    pub redis: RedisTrouble,
}

/// What a worker met of Redis trouble (a restart, an eviction, a failover, an outage), so
/// that one is never silent: the work goes on (caches fail open, state is best effort,
/// PostgreSQL holds the claims), and these say how much of it went without Redis.
#[derive(Debug, Default, Clone, Copy, serde::Serialize, PartialEq, Eq)]
pub struct RedisTrouble {
    /// Claims refused because the lock could not be taken for want of Redis (locks fail
    /// closed: the item waits for a later claim, by this worker or another).
    pub lock_errors: u64,
    /// Times the Redis lock of an item in progress vanished while PostgreSQL still had
    /// the claim: the item was processed to the end under the claim's fencing token
    /// (module docs), instead of being dropped and run again after its lease.
    pub locks_lost_claims_kept: u64,
    /// Cache operations that failed open: the result was computed (or not stored)
    /// without the cache.
    pub cache_fallbacks: u64,
    /// Document-state writes Redis could not take (unreachable, or breaker open).
    pub state_writes_failed: u64,
    /// Documents whose state vanished from Redis while this process worked on them.
    pub documents_state_lost: u64,
}

#[derive(Default)]
struct Counters {
    completed: AtomicU64,
    failed: AtomicU64,
    requeued: AtomicU64,
    lost: AtomicU64,
    lock_errors: AtomicU64,
    locks_lost_claims_kept: AtomicU64,
    /// When "cannot lock queue item" was last logged (ms since the Unix epoch), and the
    /// lock errors since: during an outage every candidate of every claim attempt fails
    /// to lock, and one line per [`LOCK_ERROR_LOG_EVERY`] says as much as thousands.
    lock_error_logged_ms: AtomicU64,
    lock_errors_unlogged: AtomicU64,
}

/// At most one "cannot lock queue item" line per process this often.
const LOCK_ERROR_LOG_EVERY: Duration = Duration::from_secs(5);

impl Counters {
    /// Counts a lock error and logs it unless one was logged within
    /// [`LOCK_ERROR_LOG_EVERY`]; the line then says how many went unlogged.
    fn lock_error(&self, item_id: i64, error: &dyn std::fmt::Display) {
        self.lock_errors.fetch_add(1, Ordering::Relaxed);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let last = self.lock_error_logged_ms.load(Ordering::Relaxed);
        let every = LOCK_ERROR_LOG_EVERY.as_millis() as u64;
        if now.saturating_sub(last) >= every
            && self
                .lock_error_logged_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            let unlogged = self.lock_errors_unlogged.swap(0, Ordering::Relaxed);
            tracing::warn!(
                item_id,
                error = %error,
                not_logged = unlogged,
                "cannot lock queue item (locks fail closed; the item waits for a later claim); \
                 further ones are logged at most every {}s",
                LOCK_ERROR_LOG_EVERY.as_secs()
            );
        } else {
            self.lock_errors_unlogged.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A pool of worker tasks in this process.
pub struct Worker {
    pool: PgPool,
    locks: Locks,
    processor: Arc<dyn ItemProcessor>,
    opts: WorkerOptions,
    counters: Counters,
}

impl Worker {
    pub fn new(
        pool: PgPool,
        locks: Locks,
        processor: Arc<dyn ItemProcessor>,
        opts: WorkerOptions,
    ) -> Arc<Worker> {
        Arc::new(Worker {
            pool,
            locks,
            processor,
            opts,
            counters: Counters::default(),
        })
    }

    /// Runs `concurrency` tasks until the queue is empty (`until_empty`) or forever.
    pub async fn run(self: &Arc<Self>) -> WorkerReport {
        let mut set = tokio::task::JoinSet::new();
        for n in 0..self.opts.concurrency.max(1) {
            let me = self.clone();
            set.spawn(async move { me.task_loop(n).await });
        }
        while let Some(r) = set.join_next().await {
            if let Err(e) = r {
                tracing::error!(error = %e, "worker task ended abnormally");
            }
        }
        self.report()
    }

    /// Counts so far.
    pub fn report(&self) -> WorkerReport {
        WorkerReport {
            completed: self.counters.completed.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            requeued: self.counters.requeued.load(Ordering::Relaxed),
            lost: self.counters.lost.load(Ordering::Relaxed),
            redis: RedisTrouble {
                lock_errors: self.counters.lock_errors.load(Ordering::Relaxed),
                locks_lost_claims_kept: self
                    .counters
                    .locks_lost_claims_kept
                    .load(Ordering::Relaxed),
                ..self.processor.redis_trouble()
            },
        }
    }

    async fn task_loop(&self, n: usize) {
        let worker_id = format!("{}#{n}", self.opts.worker_id);
        loop {
            match self.claim_one(&worker_id).await {
                Ok(Some((claim, lease))) => self.work(claim, lease).await,
                Ok(None) => {
                    if self.opts.until_empty && self.queue_drained().await {
                        return;
                    }
                    tokio::time::sleep(jitter(self.opts.idle_poll)).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claim failed; retrying");
                    tokio::time::sleep(jitter(self.opts.idle_poll)).await;
                }
            }
        }
    }

    async fn queue_drained(&self) -> bool {
        match queue::stats(&self.pool).await {
            Ok(s) => s.queued == 0 && s.running == 0,
            Err(_) => false,
        }
    }

    async fn claim_one(&self, worker_id: &str) -> Result<Option<(Claim, Lease)>, StageError> {
        let taken: std::sync::Mutex<Vec<Lease>> = std::sync::Mutex::new(Vec::new());
        let lease_ttl = self.opts.lease;
        let claim = queue::claim(&self.pool, worker_id, lease_ttl, |item_id| {
            let locks = &self.locks;
            let taken = &taken;
            let counters = &self.counters;
            async move {
                match locks
                    .acquire(&LockName::queue_item(item_id), lease_ttl)
                    .await
                {
                    Ok(Some(lease)) => {
                        let fence = lease.fencing_token();
                        taken.lock().expect("poisoned").push(lease);
                        Some(fence)
                    }
                    Ok(None) => None,
                    Err(e) => {
                        // Locks fail closed: no lock, no claim.
                        counters.lock_error(item_id, &e);
                        None
                    }
                }
            }
        })
        .await;
        let mut leases = taken.into_inner().expect("poisoned");
        let claim = match claim {
            Ok(c) => c,
            Err(e) => {
                // The transaction failed after locks were taken: give them back now rather
                // than leaving the items unclaimable until the locks expire.
                for l in leases {
                    let _ = self.locks.release(&l).await;
                }
                return Err(e.into());
            }
        };
        let mine = claim.as_ref().and_then(|c| {
            leases
                .iter()
                .position(|l| l.fencing_token() == c.fencing_token)
                .map(|i| leases.swap_remove(i))
        });
        // Locks taken for candidates the transaction did not claim go back at once.
        for l in leases {
            let _ = self.locks.release(&l).await;
        }
        Ok(match (claim, mine) {
            (Some(c), Some(l)) => Some((c, l)),
            _ => None,
        })
    }

    async fn work(&self, claim: Claim, lease: Lease) {
        let mut renewal = Some(self.locks.keep_alive(lease));
        let heartbeat = {
            let pool = self.pool.clone();
            let claim = claim.clone();
            let lease = self.opts.lease;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(lease / 3).await;
                    match queue::heartbeat(&pool, &claim, lease).await {
                        Ok(true) => {}
                        Ok(false) => return,
                        Err(e) => tracing::warn!(error = %e, "lease heartbeat failed"),
                    }
                }
            })
        };
        let mut heartbeat = heartbeat;
        let processing = self.processor.process(&claim);
        tokio::pin!(processing);
        let outcome = loop {
            tokio::select! {
                r = &mut processing => break Some(r),
                lost = lock_lost(renewal.as_ref()) => {
                    // The renewal has ended; its lease is of no use any more.
                    drop(renewal.take());
                    if !self.claim_survives_lock_loss(&claim, lost).await {
                        break None;
                    }
                    renewal = self.relock(&claim).await;
                }
                // Kept without a lock (Redis answered nothing yet): try again every third
                // of the lease, as a renewal would.
                _ = tokio::time::sleep(self.opts.lease / 3), if renewal.is_none() => {
                    renewal = self.relock(&claim).await;
                }
                _ = &mut heartbeat => {
                    // The heartbeat only returns when the row's lease was taken over.
                    tracing::warn!(item_id = claim.item_id, "lease lost; abandoning the item");
                    break None;
                }
            }
        };
        heartbeat.abort();
        match outcome {
            Some(Ok(())) => match queue::complete(&self.pool, &claim).await {
                Ok(true) => {
                    self.counters.completed.fetch_add(1, Ordering::Relaxed);
                }
                Ok(false) => {
                    self.counters.lost.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::error!(item_id = claim.item_id, error = %e, "cannot mark item completed")
                }
            },
            Some(Err(e)) => {
                let retryable = e.is_retryable();
                // The stable name goes to `documents.error_type` too, so that `lexpipe
                // retry --failed --error-type` can pick the documents of one cause.
                match queue::fail_typed(
                    &self.pool,
                    &claim,
                    Some(e.error_type()),
                    &format!("{}: {e}", e.error_type()),
                    retryable,
                )
                .await
                {
                    Ok(FailOutcome::Requeued { .. }) => {
                        self.counters.requeued.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(FailOutcome::Failed { .. }) => {
                        self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(FailOutcome::Stale) => {
                        self.counters.lost.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(db) => {
                        tracing::error!(item_id = claim.item_id, error = %db, "cannot record failure")
                    }
                }
            }
            None => {
                self.counters.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(renewal) = renewal {
            let lease = renewal.stop().await;
            let _ = self.locks.release(&lease).await;
        }
    }

    /// The Redis lock of a claim in progress is gone: does PostgreSQL still have the
    /// claim (module docs, "Redis losing a lock")? False: abandon the item.
    async fn claim_survives_lock_loss(&self, claim: &Claim, lost: LeaseLost) -> bool {
        match queue::heartbeat(&self.pool, claim, self.opts.lease).await {
            Ok(true) => {
                self.counters
                    .locks_lost_claims_kept
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    item_id = claim.item_id,
                    reason = %lost,
                    "Redis lost the item's lock, but PostgreSQL still has this claim: \
                     carrying on under its fencing token"
                );
                true
            }
            Ok(false) => {
                tracing::warn!(item_id = claim.item_id, reason = %lost, "lock lost and the claim taken over; abandoning the item");
                false
            }
            Err(e) => {
                tracing::warn!(item_id = claim.item_id, reason = %lost, error = %e, "lock lost and the claim cannot be confirmed; abandoning the item");
                false
            }
        }
    }

    /// Takes the lock of a kept claim again, to keep other claimers off as before; the
    /// new lock's fencing token is not used (the claim's token fences the writes).
    /// `None` while Redis cannot be asked or another claimer holds the lock for a moment.
    async fn relock(&self, claim: &Claim) -> Option<Renewal> {
        match self
            .locks
            .acquire(&LockName::queue_item(claim.item_id), self.opts.lease)
            .await
        {
            Ok(Some(lease)) => {
                tracing::info!(
                    item_id = claim.item_id,
                    "the kept claim's lock is taken again"
                );
                Some(self.locks.keep_alive(lease))
            }
            Ok(None) => None,
            Err(e) => {
                tracing::debug!(item_id = claim.item_id, error = %e, "cannot take the lock again yet");
                None
            }
        }
    }
}

/// Resolves when the renewal reports its lease lost; never without a renewal.
async fn lock_lost(renewal: Option<&Renewal>) -> LeaseLost {
    match renewal {
        Some(r) => r.lost().await,
        None => std::future::pending().await,
    }
}

fn jitter(d: Duration) -> Duration {
    let ms = d.as_millis().max(2) as u64;
    Duration::from_millis(ms / 2 + rand::random_range(0..=ms))
}
