//! `ingest`: S3 `ObjectCreated` notifications → one document, one queue row and one state
//! machine execution per document.
//!
//! For each object of a notification batch:
//!
//! 1. The key is URL-decoded as S3 encodes it (`+` is a space, `%XX` are UTF-8 bytes).
//!    Folder markers (`…/`), keys that are not `.pdf` and the pipeline's own artefacts
//!    (`processed/…`, or anything under the artefact store's prefix in the same bucket)
//!    are skipped, so the pipeline never triggers itself.
//! 2. Idempotency on bucket + key + version id (the ETag when the bucket is unversioned):
//!    a redelivered or duplicated notification answers the first one's outcome and does
//!    nothing. A duplicate that arrives while the first is still running waits for it (a
//!    few seconds at most), then fails retryably, so that the event is never lost if the
//!    first invocation dies.
//! 3. The object is read and hashed: the content hash is the document's identity, so the
//!    same bytes under five names or five versions are one document.
//! 4. The document, its source and its queue row are registered (`queue::enqueue`), and
//!    the row is claimed for the execution (`queue::claim_item`, fencing token from the
//!    Redis lock `queue_item:N`, held only for the claim and never past the invocation's
//!    deadline). Concurrent ingests of the same content find the row held by the same
//!    execution name and adopt that claim, so they all start the same execution with the
//!    same input.
//! 5. One execution is started under [`execution_name`], derived from the content hash;
//!    Step Functions refuses a second execution of that name, and
//!    `ExecutionAlreadyExists` counts as success.
//!
//! A document that failed stays failed: uploading the same bytes again reports it
//! `not_started` ("already failed"), since the same input would fail the same way. Once
//! the cause is fixed, [`retry`] (`lexpipe retry`) queues it again and starts the
//! execution of its next attempt, named [`execution_name_for`] that attempt.
//!
//! Without a database (a local harness), steps 4's rows are left out and the execution
//! runs with `queue: null`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::App;
use crate::config::BlobLocation;
use crate::redis::idempotency::Outcome;
use crate::redis::lock::{Lease, LockName};
use crate::stages::persist::QueueClaim;
use crate::stages::{DocumentRef, StageError};
use crate::store::blob::validate_key;
use crate::store::queue::{self, ItemClaim};
use crate::text::sha256_hex;

/// Idempotency operation of one notification record.
pub const OPERATION: &str = "ingest";

/// How long the Redis lock on a queue row is held while `ingest` claims it.
const CLAIM_LOCK_TTL: Duration = Duration::from_secs(30);

/// How long a duplicate waits for the invocation that handles the same object.
const DUPLICATE_WAIT: Duration = Duration::from_secs(10);

/// Stable names of [`IngestError`]: the Lambda function's `errorType`.
pub mod error_types {
    pub const IN_PROGRESS: &str = "IngestInProgress";
    pub const QUEUE_ITEM_LOCKED: &str = "QueueItemLocked";
    pub const START_EXECUTION_FAILED: &str = "StartExecutionFailed";
    pub const NOT_CONFIGURED: &str = "IngestNotConfigured";
}

/// Why an object was not ingested. The batch fails with the first one, after every
/// object was tried; a retry redoes only what failed (the rest are duplicates by then).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Stage(#[from] StageError),
    /// Another invocation is ingesting the same object and did not finish in time.
    /// Retryable.
    #[error("another invocation is still ingesting s3://{bucket}/{key}")]
    InProgress { bucket: String, key: String },
    /// The queue row's lock is held by someone else right now. Retryable.
    #[error("queue item {item_id} is locked by another claimer")]
    QueueItemLocked { item_id: i64 },
    /// `StartExecution` failed (throttled, unreachable, refused). Retryable.
    #[error("cannot start execution {name}: {message}")]
    StartExecution { name: String, message: String },
    /// A setting `ingest` needs is missing. Terminal.
    #[error("ingest is not configured: {0}")]
    NotConfigured(String),
}

impl IngestError {
    /// Stable name, the Lambda error's `errorType`.
    pub fn error_type(&self) -> &str {
        match self {
            IngestError::Stage(e) => e.error_type(),
            IngestError::InProgress { .. } => error_types::IN_PROGRESS,
            IngestError::QueueItemLocked { .. } => error_types::QUEUE_ITEM_LOCKED,
            IngestError::StartExecution { .. } => error_types::START_EXECUTION_FAILED,
            IngestError::NotConfigured(_) => error_types::NOT_CONFIGURED,
        }
    }

    /// Would the same event succeed later?
    pub fn is_retryable(&self) -> bool {
        match self {
            IngestError::Stage(e) => e.is_retryable(),
            IngestError::NotConfigured(_) => false,
            _ => true,
        }
    }
}

/// One object of a notification, as S3 sent it (the key still URL-encoded).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectCreated {
    pub bucket: String,
    /// The key as it appears in the notification: URL-encoded.
    pub raw_key: String,
    pub version_id: Option<String>,
    pub etag: Option<String>,
    /// S3's ordering token of events on one key; identifies an upload when the object has
    /// neither version id nor ETag.
    pub sequencer: Option<String>,
}

impl ObjectCreated {
    /// What identifies this upload: bucket, key and version id, else the ETag, else the
    /// sequencer.
    pub fn identity(&self, key: &str) -> String {
        let version = self
            .version_id
            .as_deref()
            .filter(|v| !v.is_empty() && *v != "null")
            .map(|v| format!("version:{v}"))
            .or_else(|| self.etag.as_deref().map(|e| format!("etag:{e}")))
            .or_else(|| self.sequencer.as_deref().map(|s| format!("sequencer:{s}")))
            .unwrap_or_default();
        format!("{}\n{key}\n{version}", self.bucket)
    }
}

/// Why an object was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// A key ending in `/` (the console's "create folder").
    FolderMarker,
    /// Not a `.pdf`.
    NotPdf,
    /// The pipeline's own output: ingesting it would trigger the pipeline on itself.
    Processed,
    /// Outside `LEXPIPE_UPLOAD_PREFIX`.
    OutsideUploadPrefix,
    /// The key is not valid URL encoding of UTF-8, or not a key the blob store accepts.
    BadKey,
    /// Larger than `max_document_bytes`.
    TooLarge,
}

/// What happened to one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ObjectOutcome {
    /// This call started the document's execution.
    Started {
        document_uuid: uuid::Uuid,
        execution_name: String,
        execution_arn: String,
    },
    /// The document's execution already existed (another upload of the same content).
    AlreadyStarted {
        document_uuid: uuid::Uuid,
        execution_name: String,
    },
    /// The document was processed or failed before, or a queue worker is on it: nothing
    /// to start.
    NotStarted {
        document_uuid: uuid::Uuid,
        reason: String,
    },
    /// A duplicate of a notification handled before: the first one's outcome.
    Duplicate {
        first: Box<ObjectOutcome>,
    },
    Skipped {
        reason: SkipReason,
    },
    /// The object was deleted before it could be read.
    Missing,
}

/// One object of the batch and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectReport {
    pub bucket: String,
    /// The decoded key (the raw one when it could not be decoded).
    pub key: String,
    #[serde(flatten)]
    pub outcome: ObjectOutcome,
}

/// What one notification batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub objects: Vec<ObjectReport>,
}

/// Decodes a key as S3 notifications encode it: `+` is a space, `%XX` a byte, and the
/// bytes are UTF-8. `None` for a `%` not followed by two hex digits, or bytes that are
/// not UTF-8.
pub fn decode_key(raw: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut it = raw.bytes();
    while let Some(b) = it.next() {
        match b {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hi = it.next().and_then(|c| (c as char).to_digit(16))?;
                let lo = it.next().and_then(|c| (c as char).to_digit(16))?;
                bytes.push((hi * 16 + lo) as u8);
            }
            other => bytes.push(other),
        }
    }
    String::from_utf8(bytes).ok()
}

/// Why `key` (decoded) of `bucket` is not ingested, if it is not.
/// `artefacts` is where the pipeline writes: keys under its prefix in the same bucket
/// are its own.
/// `upload_prefix`, when set, is where uploads go: keys elsewhere are not documents.
pub fn skip_reason(
    bucket: &str,
    key: &str,
    artefacts: Option<&BlobLocation>,
    upload_prefix: Option<&str>,
) -> Option<SkipReason> {
    if key.ends_with('/') {
        return Some(SkipReason::FolderMarker);
    }
    if crate::stages::artefact::is_artefact_key(key) {
        return Some(SkipReason::Processed);
    }
    if let Some(BlobLocation::S3 { bucket: b, prefix }) = artefacts {
        let prefix = prefix.trim_matches('/');
        let own = b == bucket
            && !prefix.is_empty()
            && key
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'));
        if own {
            return Some(SkipReason::Processed);
        }
    }
    if upload_prefix.is_some_and(|p| !key.starts_with(p)) {
        return Some(SkipReason::OutsideUploadPrefix);
    }
    if !crate::store::source::is_pdf_name(key) {
        return Some(SkipReason::NotPdf);
    }
    if validate_key(key).is_err() {
        return Some(SkipReason::BadKey);
    }
    None
}

/// The execution name of the document with this content hash: `doc-` and the 64 hex
/// digits, 68 characters of `[a-z0-9-]` (Step Functions allows 80 of
/// `[A-Za-z0-9_-]`). Deterministic, so that every upload of the same bytes names the same
/// execution.
pub fn execution_name(content_sha256: &str) -> String {
    execution_name_for(content_sha256, 1)
}

/// The execution name of the document's queue attempt `attempt`: [`execution_name`] for
/// the first, `…-a{attempt}` for a later one (a document put back in the queue by
/// [`retry`] after it failed, or whose execution died without settling its row), at most
/// 79 characters. Step Functions keeps a name for 90 days after its execution ends, so
/// every attempt needs its own; deterministic, so that concurrent callers of one attempt
/// name one execution.
pub fn execution_name_for(content_sha256: &str, attempt: i32) -> String {
    let safe: String = content_sha256
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(64)
        .collect();
    if attempt <= 1 {
        format!("doc-{safe}")
    } else {
        format!("doc-{safe}-a{attempt}")
    }
}

/// The state machine `ingest` starts executions of.
#[derive(Debug, Clone)]
pub struct StateMachine {
    client: aws_sdk_sfn::Client,
    arn: String,
}

impl StateMachine {
    pub fn new(client: aws_sdk_sfn::Client, arn: impl Into<String>) -> StateMachine {
        StateMachine {
            client,
            arn: arn.into(),
        }
    }

    /// The state machine of `LEXPIPE_STATE_MACHINE_ARN`, with a client configured from the
    /// environment like every AWS client of the pipeline.
    ///
    /// # Errors
    /// [`IngestError::NotConfigured`] without the ARN.
    pub async fn from_config(config: &crate::config::Config) -> Result<StateMachine, IngestError> {
        let arn = config.cloud.state_machine_arn.clone().ok_or_else(|| {
            IngestError::NotConfigured("LEXPIPE_STATE_MACHINE_ARN is not set".into())
        })?;
        let sdk = crate::store::s3::load_sdk_config().await;
        Ok(StateMachine::new(aws_sdk_sfn::Client::new(&sdk), arn))
    }

    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// Starts execution `name` with `input`: its ARN, or `None` when an execution of that
    /// name already exists (with another input; the same input answers the same ARN).
    ///
    /// # Errors
    /// [`IngestError::StartExecution`].
    pub async fn start(&self, name: &str, input: &Value) -> Result<Option<String>, IngestError> {
        let r = self
            .client
            .start_execution()
            .state_machine_arn(&self.arn)
            .name(name)
            .input(input.to_string())
            .send()
            .await;
        match r {
            Ok(out) => Ok(Some(out.execution_arn().to_string())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_execution_already_exists()) =>
            {
                Ok(None)
            }
            Err(e) => Err(IngestError::StartExecution {
                name: name.to_string(),
                message: aws_sdk_sfn::error::DisplayErrorContext(&e).to_string(),
            }),
        }
    }
}

/// Ingests every object of a notification batch.
///
/// # Errors
/// The first object that failed (after every object was tried).
pub async fn ingest_batch(
    app: &App,
    machine: &StateMachine,
    objects: &[ObjectCreated],
) -> Result<Report, IngestError> {
    let mut report = Report::default();
    let mut first_error = None;
    for obj in objects {
        let key = decode_key(&obj.raw_key);
        match ingest_object(app, machine, obj, key.as_deref()).await {
            Ok(outcome) => report.objects.push(ObjectReport {
                bucket: obj.bucket.clone(),
                key: key.unwrap_or_else(|| obj.raw_key.clone()),
                outcome,
            }),
            Err(e) => {
                tracing::warn!(bucket = %obj.bucket, error_type = e.error_type(), "object not ingested: {e}");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Ingests one object whose key decodes to `key` (`None`: undecodable).
///
/// # Errors
/// See [`IngestError`].
#[tracing::instrument(skip_all, fields(bucket = %obj.bucket))]
pub async fn ingest_object(
    app: &App,
    machine: &StateMachine,
    obj: &ObjectCreated,
    key: Option<&str>,
) -> Result<ObjectOutcome, IngestError> {
    let Some(key) = key else {
        return Ok(ObjectOutcome::Skipped {
            reason: SkipReason::BadKey,
        });
    };
    let cloud = &app.config.cloud;
    if let Some(reason) = skip_reason(
        &obj.bucket,
        key,
        app.config.artefacts.as_ref(),
        cloud.upload_prefix.as_deref(),
    ) {
        tracing::debug!(?reason, "object skipped");
        return Ok(ObjectOutcome::Skipped { reason });
    }
    let Some(idem) = &app.idempotency else {
        return register_and_start(app, machine, &obj.bucket, key).await;
    };
    let identity = obj.identity(key);
    let hash = sha256_hex(&identity);
    let give_up = tokio::time::Instant::now()
        + app.remaining().map_or(DUPLICATE_WAIT, |r| {
            DUPLICATE_WAIT.min(r.saturating_sub(Duration::from_secs(2)))
        });
    loop {
        match idem
            .begin_typed::<ObjectOutcome>(OPERATION, &identity, &hash, app.remaining())
            .await
            .map_err(StageError::from)?
        {
            Outcome::Proceed(guard) => {
                let r = register_and_start(app, machine, &obj.bucket, key).await;
                match &r {
                    // A missing object is not remembered: the same identity may be
                    // uploaded again.
                    Ok(ObjectOutcome::Missing) | Err(_) => {
                        let _ = guard.fail().await;
                    }
                    Ok(outcome) => {
                        if let Err(e) = guard.complete(outcome).await {
                            tracing::warn!(error = %e, "ingested, but the idempotency record was not completed");
                        }
                    }
                }
                return r;
            }
            Outcome::AlreadyDone(first) => {
                return Ok(ObjectOutcome::Duplicate {
                    first: Box::new(first),
                });
            }
            Outcome::InProgress if tokio::time::Instant::now() < give_up => {
                tokio::time::sleep(Duration::from_millis(50 + rand::random_range(0..100))).await;
            }
            Outcome::InProgress => {
                return Err(IngestError::InProgress {
                    bucket: obj.bucket.clone(),
                    key: key.to_string(),
                });
            }
        }
    }
}

/// Steps 3–5 of the module docs for `s3://{bucket}/{key}`.
async fn register_and_start(
    app: &App,
    machine: &StateMachine,
    bucket: &str,
    key: &str,
) -> Result<ObjectOutcome, IngestError> {
    let source = format!("s3://{bucket}/{key}");
    let store = app.sources.bucket(bucket).await.map_err(StageError::from)?;
    let Some(bytes) = store.get(key).await.map_err(StageError::from)? else {
        tracing::info!("object is gone; nothing to ingest");
        return Ok(ObjectOutcome::Missing);
    };
    if bytes.len() as u64 > app.max_document_bytes {
        tracing::warn!(
            size = bytes.len(),
            "object over the document size limit; skipped"
        );
        return Ok(ObjectOutcome::Skipped {
            reason: SkipReason::TooLarge,
        });
    }
    let document = DocumentRef::new(&sha256_hex(&bytes), &source);
    drop(bytes);
    let item_id = match &app.db {
        None => None,
        Some(pool) => Some(
            queue::enqueue(
                pool,
                document.document_uuid,
                &document.content_sha256,
                &source,
                0,
            )
            .await
            .map_err(StageError::from)?
            .item_id,
        ),
    };
    // Boxed: with the Step Functions call inside, the future is deep enough that the
    // `ingest` function's `main` would hit the compiler's recursion limit computing its
    // layout.
    Box::pin(start_item(app, machine, document, item_id)).await
}

/// Claims queue item `item_id` (if there is a database) for the execution of its next
/// attempt, and starts that execution with `document` (steps 4–5 of the module docs).
async fn start_item(
    app: &App,
    machine: &StateMachine,
    mut document: DocumentRef,
    item_id: Option<i64>,
) -> Result<ObjectOutcome, IngestError> {
    let uuid = document.document_uuid;
    let sha = document.content_sha256.clone();
    // Whether this call claimed the row (rather than adopting the claim of a concurrent
    // call for the same document, which starts the same execution).
    let mut claimed = true;
    let (name, queue) = match (&app.db, item_id) {
        (Some(pool), Some(item_id)) => {
            let lease = app.config.cloud.execution_lease;
            let claim = match claim_row(app, pool, item_id, &sha, lease).await? {
                ItemClaim::Claimed(c) => c,
                ItemClaim::Held(c) => {
                    claimed = false;
                    c
                }
                ItemClaim::Busy => {
                    return Ok(ObjectOutcome::NotStarted {
                        document_uuid: uuid,
                        reason: "a queue worker is processing it".into(),
                    });
                }
                ItemClaim::Finished(status) => {
                    let hint = if status == crate::model::DocumentStatus::Failed {
                        format!("; `lexpipe retry {uuid}` processes it again")
                    } else {
                        String::new()
                    };
                    return Ok(ObjectOutcome::NotStarted {
                        document_uuid: uuid,
                        reason: format!("already {status}{hint}"),
                    });
                }
                ItemClaim::Locked => {
                    return Err(IngestError::QueueItemLocked { item_id });
                }
            };
            // The row's first name: every adopter of the claim starts the same input.
            document.source = claim.source_path.clone();
            let name = execution_name_for(&sha, claim.attempt);
            let queue = QueueClaim {
                item_id: claim.item_id,
                fencing_token: claim.fencing_token,
                lease_ms: u64::try_from(lease.as_millis()).unwrap_or(u64::MAX),
                attempt: claim.attempt,
                settles_row: true,
            };
            (name, Some(queue))
        }
        _ => (execution_name(&sha), None),
    };
    crate::pipeline::begin_document(app, &document).await;
    let input = serde_json::json!({"document": document, "queue": queue});
    // Step Functions answers a repeated start with the same name and input with the
    // same execution; only the call that claimed the row reports it started.
    Ok(
        match machine.start(&name, &input).await?.filter(|_| claimed) {
            Some(execution_arn) => {
                tracing::info!(execution = %name, "execution started");
                ObjectOutcome::Started {
                    document_uuid: uuid,
                    execution_name: name,
                    execution_arn,
                }
            }
            None => ObjectOutcome::AlreadyStarted {
                document_uuid: uuid,
                execution_name: name,
            },
        },
    )
}

/// What [`retry`] did with one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RetryOutcome {
    /// Back in the queue; with a state machine, the execution of its next attempt is
    /// `started` (or `not_started`, with why, in `execution`).
    Requeued {
        document_uuid: uuid::Uuid,
        source: String,
        /// The attempt the document is queued for.
        attempt: i32,
        /// What starting its execution did; `None` without a state machine (a queue
        /// worker takes it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        execution: Option<ObjectOutcome>,
    },
    /// Not failed: nothing to retry (completed documents are never redone).
    NotFailed {
        document_uuid: uuid::Uuid,
        status: crate::model::DocumentStatus,
    },
    /// The database knows no such document.
    Unknown { document_uuid: uuid::Uuid },
}

/// Processes a failed document again: its queue row goes back to `queued` for
/// `more_attempts` attempts ([`queue::requeue_failed`]), and, given the state machine
/// (`LEXPIPE_STATE_MACHINE_ARN`), the execution of its next attempt is started under
/// [`execution_name_for`] that attempt, claimed as `ingest` claims it. Without one, a
/// queue worker (`lexpipe worker`) takes it. Results the failed run produced (OCR,
/// chunks, entities) are reused from the caches and artefacts, so a retry pays only for
/// what failed.
///
/// # Errors
/// No database ([`IngestError::NotConfigured`]), a database error, or a failed
/// `StartExecution` (the row stays queued: retrying again starts it).
pub async fn retry(
    app: &App,
    machine: Option<&StateMachine>,
    document_uuid: uuid::Uuid,
    more_attempts: i32,
) -> Result<RetryOutcome, IngestError> {
    let Some(pool) = &app.db else {
        return Err(IngestError::NotConfigured(
            "retrying a document needs its queue row: set DATABASE_URL".into(),
        ));
    };
    let requeued = queue::requeue_failed(pool, document_uuid, more_attempts)
        .await
        .map_err(StageError::from)?;
    let (item_id, sha, source, attempts) = match requeued {
        queue::Requeue::Requeued {
            item_id,
            content_sha256,
            source_path,
            attempts,
            ..
        } => (item_id, content_sha256, source_path, attempts),
        queue::Requeue::NotFailed(status) => {
            return Ok(RetryOutcome::NotFailed {
                document_uuid,
                status,
            });
        }
        queue::Requeue::NotQueued => return Ok(RetryOutcome::Unknown { document_uuid }),
    };
    tracing::info!(%document_uuid, attempt = attempts + 1, "failed document queued again");
    let execution = match machine {
        None => None,
        Some(machine) => {
            let document = DocumentRef::new(&sha, &source);
            Some(Box::pin(start_item(app, machine, document, Some(item_id))).await?)
        }
    };
    Ok(RetryOutcome::Requeued {
        document_uuid,
        source,
        attempt: attempts + 1,
        execution,
    })
}

/// Claims queue item `item_id` of the document with content hash `sha` for the
/// execution of its next attempt ([`execution_name_for`]), the fencing token from the
/// Redis lock (held only while claiming, never past the invocation's deadline).
async fn claim_row(
    app: &App,
    pool: &sqlx::PgPool,
    item_id: i64,
    sha: &str,
    lease: Duration,
) -> Result<ItemClaim, IngestError> {
    let mut taken: Option<Lease> = None;
    let lock_ttl = app.bound(Some(CLAIM_LOCK_TTL)).unwrap_or(CLAIM_LOCK_TTL);
    let name = |attempt| execution_name_for(sha, attempt);
    let r = queue::claim_item(pool, item_id, name, lease, |id| {
        let taken = &mut taken;
        async move {
            let Some(locks) = &app.locks else {
                // Without Redis locks the row lock alone decides; the token only has to
                // grow, and the clock in microseconds does (as the lock script's does).
                return Some(now_micros());
            };
            match locks.acquire(&LockName::queue_item(id), lock_ttl).await {
                Ok(Some(lease)) => {
                    let fence = lease.fencing_token();
                    *taken = Some(lease);
                    Some(fence)
                }
                Ok(None) => None,
                Err(e) => {
                    // Locks fail closed: no lock, no claim.
                    tracing::warn!(item_id = id, error = %e, "cannot lock queue item");
                    None
                }
            }
        }
    })
    .await;
    if let (Some(lease), Some(locks)) = (taken, &app.locks) {
        let _ = locks.release(&lease).await;
    }
    Ok(r.map_err(StageError::from)?)
}

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_decode_plus_as_space_and_percent_escapes_as_utf8() {
        assert_eq!(
            decode_key("in/Contract+of+Sale+%C3%A9t%C3%A9.pdf").as_deref(),
            Some("in/Contract of Sale été.pdf")
        );
        assert_eq!(decode_key("a%2Bb.pdf").as_deref(), Some("a+b.pdf"));
        assert_eq!(decode_key("%E6%B3%95.pdf").as_deref(), Some("法.pdf"));
        assert_eq!(decode_key("bad%zz.pdf"), None, "not an escape");
        assert_eq!(decode_key("cut%C3.pdf"), None, "not UTF-8");
        assert_eq!(decode_key("trailing%2"), None);
    }

    #[test]
    fn folder_markers_other_files_and_the_pipelines_own_output_are_skipped() {
        let artefacts = BlobLocation::S3 {
            bucket: "up".into(),
            prefix: "runs/a".into(),
        };
        let skip = |k: &str| skip_reason("up", k, Some(&artefacts), None);
        assert_eq!(skip("in/"), Some(SkipReason::FolderMarker));
        assert_eq!(skip("in/notes.txt"), Some(SkipReason::NotPdf));
        assert_eq!(skip("in/pdf"), Some(SkipReason::NotPdf));
        assert_eq!(skip("in/.pdf"), Some(SkipReason::NotPdf));
        assert_eq!(skip("processed/ab/x.pdf"), Some(SkipReason::Processed));
        assert_eq!(skip("runs/a/x.pdf"), Some(SkipReason::Processed));
        assert_eq!(skip("in//x.pdf"), Some(SkipReason::BadKey));
        assert_eq!(skip("in/Deed of Trust.PDF"), None);
        assert_eq!(
            skip("runs/ab.pdf"),
            None,
            "a longer name is not under the prefix"
        );
        assert_eq!(
            skip_reason("other", "runs/a/x.pdf", Some(&artefacts), None),
            None
        );
        assert_eq!(
            skip_reason("up", "elsewhere/x.pdf", None, Some("uploads/")),
            Some(SkipReason::OutsideUploadPrefix)
        );
        assert_eq!(
            skip_reason("up", "uploads/x.pdf", None, Some("uploads/")),
            None
        );
    }

    #[test]
    fn execution_names_are_deterministic_short_and_of_the_allowed_characters() {
        let sha = sha256_hex(b"x");
        let name = execution_name(&sha);
        assert_eq!(name, execution_name(&sha));
        assert!(name.len() <= 80);
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(name, execution_name(&sha256_hex(b"y")));
    }

    #[test]
    fn every_attempt_of_a_document_has_its_own_execution_name_within_the_limit() {
        let sha = sha256_hex(b"x");
        assert_eq!(execution_name_for(&sha, 1), execution_name(&sha));
        assert_eq!(execution_name_for(&sha, 0), execution_name(&sha));
        let second = execution_name_for(&sha, 2);
        assert_eq!(second, format!("doc-{sha}-a2"));
        assert_ne!(second, execution_name_for(&sha, 3));
        let last = execution_name_for(&sha, i32::MAX);
        assert!(last.len() <= 80, "{} characters", last.len());
        assert!(
            last.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn an_upload_is_identified_by_version_then_etag_then_sequencer() {
        let mut o = ObjectCreated {
            bucket: "b".into(),
            raw_key: "k.pdf".into(),
            version_id: Some("v1".into()),
            etag: Some("e".into()),
            sequencer: Some("s".into()),
        };
        assert_eq!(o.identity("k.pdf"), "b\nk.pdf\nversion:v1");
        o.version_id = Some("null".into());
        assert_eq!(o.identity("k.pdf"), "b\nk.pdf\netag:e");
        o.etag = None;
        assert_eq!(o.identity("k.pdf"), "b\nk.pdf\nsequencer:s");
    }
}
