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
//!    (heartbeat). If either is lost, the worker stops working on the item.
//! 5. Every write for the item carries the fencing token: PostgreSQL refuses a token older
//!    than one it has seen, so a paused or zombie worker cannot overwrite a newer one.
//! 6. The item completes only if the row still carries this claim's token.
//!
//! Any number of worker processes, on any number of machines, share one Redis and one
//! PostgreSQL this way.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;

use crate::app::App;
use crate::model::document_uuid;
use crate::pipeline::LocalTasks;
use crate::redis::lock::{Lease, LockName, Locks};
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
}

impl PipelineProcessor {
    /// The processor of `app`, with the committed state machine definition.
    ///
    /// # Errors
    /// The definition cannot be loaded.
    pub fn new(app: App, lease: Duration) -> Result<PipelineProcessor, crate::asl::AslError> {
        Ok(PipelineProcessor {
            app,
            definition: crate::pipeline::definition()?,
            lease,
            time_scale: 1.0,
        })
    }
}

#[async_trait]
impl ItemProcessor for PipelineProcessor {
    async fn process(&self, claim: &Claim) -> Result<(), StageError> {
        let document = crate::runner::identify(&self.app, &claim.source_path).await?;
        // Checked before any work: the queue item names the content it was enqueued with.
        if document_uuid(&document.content_sha256) != claim.document_id {
            return Err(StageError::ContentChanged {
                what: claim.source_path.clone(),
            });
        }
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
    /// Claims refused because the lock could not be taken for want of Redis (locks fail
    /// closed: the item waits for a later claim, by this worker or another).
    pub lock_errors: u64,
}

#[derive(Default)]
struct Counters {
    completed: AtomicU64,
    failed: AtomicU64,
    requeued: AtomicU64,
    lost: AtomicU64,
    lock_errors: AtomicU64,
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
            lock_errors: self.counters.lock_errors.load(Ordering::Relaxed),
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
            let lock_errors = &self.counters.lock_errors;
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
                        lock_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(item_id, error = %e, "cannot lock queue item");
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
        let renewal = self.locks.keep_alive(lease);
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
        let outcome = tokio::select! {
            r = self.processor.process(&claim) => Some(r),
            lost = renewal.lost() => {
                tracing::warn!(item_id = claim.item_id, reason = %lost, "lock lost; abandoning the item");
                None
            }
            _ = &mut heartbeat => {
                // The heartbeat only returns when the row's lease was taken over.
                tracing::warn!(item_id = claim.item_id, "lease lost; abandoning the item");
                None
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
                match queue::fail(
                    &self.pool,
                    &claim,
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
        let lease = renewal.stop().await;
        let _ = self.locks.release(&lease).await;
    }
}

fn jitter(d: Duration) -> Duration {
    let ms = d.as_millis().max(2) as u64;
    Duration::from_millis(ms / 2 + rand::random_range(0..=ms))
}
