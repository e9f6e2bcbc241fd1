//! Per-document progress: what happened to each document, stage by stage, so that a
//! crashed or throttled run resumes where it stopped instead of restarting, and
//! `lexpipe status` can show people what happened.
//!
//! ## Layout
//! - [`DocumentStates`]: the operations, implemented over Redis by [`StateStore`] and in
//!   this process by [`MemoryStateStore`] (for `local` runs without Redis).
//! - [`DocumentState`], [`StageState`]: the typed state that `get` and `list` return.
//! - [`ResumePoint`]: where a re-run should start, and which stages it can skip.
//! - [`StateConfig`]: the lifetime of state (`LEXPIPE_STATE_TTL_SECS`), read by
//!   [`crate::config`] and re-exported here because [`StateStore::new`] takes it.
//!
//! ## In Redis
//! One hash per document, `doc_state:v2:{dsNN}:{document_uuid}`, readable with `HGETALL`:
//!
//! | field | meaning |
//! |---|---|
//! | `status` | `queued`, `running`, `completed` or `failed`: a [`DocumentStatus`], the words PostgreSQL stores too |
//! | `progress` | 0–100: stages done (completed or skipped) over the document's stages |
//! | `current_stage` | the running stage, else the failed one, else the next to run; absent once completed |
//! | `stages` | the stage list given at `init`, comma-separated, in pipeline order |
//! | `source`, `content_sha256` | display name and content hash |
//! | `created_ms`, `updated_ms` | server time, milliseconds since the epoch |
//! | `{stage}.status` | `pending`, `running`, `completed`, `failed` or `skipped` |
//! | `{stage}.started_ms`, `{stage}.finished_ms` | server time of the last start and end |
//! | `{stage}.count` | what a completed stage reports (pages, chunks, mentions…) |
//! | `{stage}.error_type`, `{stage}.error` | why the stage last failed |
//! | `{stage}.attempts` | how many times the stage was started |
//!
//! and one sorted set per overall status and shard, `doc_index:v2:{dsNN}:{status}`, of
//! document UUIDs scored by `updated_ms`, so that documents can be listed by status
//! without `KEYS`.
//!
//! `{dsNN}` is a Redis Cluster hash tag: documents are spread over [`STATE_SHARDS`] shards
//! by their UUID, and a document's hash and the index sets of its shard carry the same tag,
//! so each transition script touches keys of one slot (a cluster refuses anything else
//! with `CROSSSLOT`). Listing and counting read every shard; the shards' slots spread over
//! the cluster's primaries. Standalone Redis uses the same layout.
//!
//! Each transition is one Lua script (`state_common.lua` followed by `state_{op}.lua`): it
//! writes the stage fields, recomputes the overall fields from every stage, moves the
//! document between index sets and refreshes the TTL of every key it touched, all at once,
//! so concurrent writers cannot leave a half-updated hash or an index that disagrees with
//! it. Times come from the server (`TIME`), so workers with skewed clocks agree.
//!
//! Every key has the TTL of [`StateConfig`], refreshed on each write. A document whose hash
//! expired may linger in an index; listing skips it and removes it (`state_prune.lua`),
//! and [`DocumentStates::counts`] removes such members first. Processes of one environment
//! should share `LEXPIPE_STATE_TTL_SECS`: `counts` looks for expired members among those
//! not updated for longer than its own TTL.
//!
//! ## Truthfulness
//! State is for resuming and for display, but it never lies: with Redis unreachable every
//! operation returns [`StateError::Unavailable`] (the caller decides whether to carry on),
//! an unknown document is `None` or [`StateError::NotFound`], and a hash that cannot be
//! read is [`StateError::Corrupt`]. Nothing is made up.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::conn::{RedisHandle, RedisUnavailable};
use super::keys::{KeyBuilder, KeyPart};
use crate::model::DocumentStatus;

/// Read with every other setting by [`crate::config`]; re-exported because
/// [`StateStore::new`] and [`MemoryStateStore::new`] take it.
pub use crate::config::StateConfig;

/// Documents are identified by UUID (see [`crate::model::document_uuid`]); re-exported so
/// that callers without a `uuid` dependency can parse one.
pub use uuid::Uuid;

/// Key namespaces (after `lexpipe:{env}:`).
const STATE_NAMESPACE: &str = "doc_state";
const INDEX_NAMESPACE: &str = "doc_index";
/// v2: the shard hash tag (v1 keys had none and were unusable on a cluster).
const KEY_VERSION: u32 = 2;

/// Shards of the document indexes (see the module docs): enough for the slots to spread
/// over any usual number of primaries, few enough that listing reads them all cheaply.
pub const STATE_SHARDS: u8 = 16;

/// The shard of a document (its UUID's last byte: UUIDs are hashes or random).
pub fn shard_of(doc: Uuid) -> u8 {
    doc.as_bytes()[15] % STATE_SHARDS
}

/// The hash tag of a shard, `ds00`…`ds15`.
fn shard_tag(shard: u8) -> String {
    format!("ds{shard:02}")
}

fn state_key(keys: &KeyBuilder, doc: Uuid) -> String {
    let id = doc.hyphenated().to_string();
    keys.key(
        STATE_NAMESPACE,
        KEY_VERSION,
        &[KeyPart::Tag(&shard_tag(shard_of(doc))), KeyPart::Id(&id)],
    )
}

fn index_key(keys: &KeyBuilder, shard: u8, status: DocumentStatus) -> String {
    keys.key(
        INDEX_NAMESPACE,
        KEY_VERSION,
        &[
            KeyPart::Tag(&shard_tag(shard)),
            KeyPart::Id(status.as_str()),
        ],
    )
}

/// Longest stage name, and most stages per document.
const MAX_STAGE_LEN: usize = 64;
const MAX_STAGES: usize = 64;
/// Longer display names and error texts are cut (state is for people, not archives).
const MAX_SOURCE_CHARS: usize = 1024;
const MAX_ERROR_TYPE_CHARS: usize = 128;
const MAX_ERROR_CHARS: usize = 4096;

/// Index members looked at per round trip when listing or pruning.
const BATCH: usize = 200;

impl StateConfig {
    /// The TTL in milliseconds, as the scripts take it; at least 1.
    fn ttl_ms(&self) -> u64 {
        (self.ttl.as_millis() as u64).max(1)
    }
}

/// Where one stage of one document stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Skipped,
}

impl StageStatus {
    /// The name stored in Redis and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            StageStatus::Pending => "pending",
            StageStatus::Running => "running",
            StageStatus::Completed => "completed",
            StageStatus::Failed => "failed",
            StageStatus::Skipped => "skipped",
        }
    }

    fn parse(s: &str) -> Option<StageStatus> {
        Some(match s {
            "pending" => StageStatus::Pending,
            "running" => StageStatus::Running,
            "completed" => StageStatus::Completed,
            "failed" => StageStatus::Failed,
            "skipped" => StageStatus::Skipped,
            _ => return None,
        })
    }

    /// Completed or skipped: counts towards progress, and a re-run need not repeat it.
    pub fn is_done(self) -> bool {
        matches!(self, StageStatus::Completed | StageStatus::Skipped)
    }
}

impl std::fmt::Display for StageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Where a whole document stands, derived from its stages: `failed` if any stage failed,
/// `completed` when every stage is done, `running` once any stage has started, `queued`
/// before that. The one document status of the workspace, [`DocumentStatus`]; this name
/// is kept for the callers that know it as the state's overall status.
pub type OverallStatus = DocumentStatus;

/// One stage of one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageState {
    pub name: String,
    pub status: StageStatus,
    /// Server time of the last start (absent if the stage was completed or skipped without
    /// being started).
    pub started_ms: Option<u64>,
    /// Server time of the last completion, failure or skip.
    pub finished_ms: Option<u64>,
    /// What the stage reported on completion (pages, chunks, mentions…).
    pub count: Option<u64>,
    /// Why the stage failed (only while it is failed).
    pub error: Option<String>,
    /// The stable error name (see `StageError::error_type`).
    pub error_type: Option<String>,
    /// How many times the stage was started.
    pub attempts: u32,
}

impl StageState {
    fn pending(name: &str) -> StageState {
        StageState {
            name: name.to_string(),
            status: StageStatus::Pending,
            started_ms: None,
            finished_ms: None,
            count: None,
            error: None,
            error_type: None,
            attempts: 0,
        }
    }

    /// How long the last attempt took, once it finished.
    pub fn duration_ms(&self) -> Option<u64> {
        match (self.started_ms, self.finished_ms) {
            (Some(s), Some(f)) => Some(f.saturating_sub(s)),
            _ => None,
        }
    }
}

/// Everything known about one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentState {
    pub document_uuid: Uuid,
    pub status: DocumentStatus,
    /// 0–100: stages done (completed or skipped) over the document's stages.
    pub progress: u8,
    /// The running stage, else the failed one, else the next to run; `None` once completed.
    pub current_stage: Option<String>,
    /// Display name (file name or S3 key) of the latest `init`.
    pub source: String,
    pub content_sha256: String,
    /// Server time, milliseconds since the epoch.
    pub created_ms: u64,
    pub updated_ms: u64,
    /// In pipeline order, as given at the latest `init`.
    pub stages: Vec<StageState>,
}

impl DocumentState {
    /// The stage called `name`, if the document has it.
    pub fn stage(&self, name: &str) -> Option<&StageState> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// `created_ms` as a date.
    pub fn created_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::from_timestamp_millis(self.created_ms as i64)
    }

    /// `updated_ms` as a date.
    pub fn updated_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::from_timestamp_millis(self.updated_ms as i64)
    }
}

/// Where a re-run of a document should start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResumePoint {
    /// The first stage, in the order asked about, that is neither completed nor skipped;
    /// `None` when every stage is done.
    pub start_at: Option<String>,
    /// The done stages before `start_at`: a re-run can skip them. Done stages after it are
    /// not listed, since they consumed the output of a stage that runs again.
    pub done: Vec<String>,
}

impl ResumePoint {
    /// The resume point of `stages` (in pipeline order) given what is known. No state
    /// means starting from the first stage.
    pub fn from_state(state: Option<&DocumentState>, stages: &[&str]) -> ResumePoint {
        let mut done = Vec::new();
        for stage in stages {
            let finished = state
                .and_then(|s| s.stage(stage))
                .is_some_and(|s| s.status.is_done());
            if !finished {
                return ResumePoint {
                    start_at: Some((*stage).to_string()),
                    done,
                };
            }
            done.push((*stage).to_string());
        }
        ResumePoint {
            start_at: None,
            done,
        }
    }

    /// Nothing left to run.
    pub fn is_complete(&self) -> bool {
        self.start_at.is_none()
    }

    /// A re-run can skip `stage`.
    pub fn can_skip(&self, stage: &str) -> bool {
        self.done.iter().any(|d| d == stage)
    }
}

/// How many documents are in each overall status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    pub queued: u64,
    pub running: u64,
    pub completed: u64,
    pub failed: u64,
}

impl StatusCounts {
    pub fn get(&self, status: DocumentStatus) -> u64 {
        match status {
            DocumentStatus::Queued => self.queued,
            DocumentStatus::Running => self.running,
            DocumentStatus::Completed => self.completed,
            DocumentStatus::Failed => self.failed,
        }
    }

    fn set(&mut self, status: DocumentStatus, n: u64) {
        match status {
            DocumentStatus::Queued => self.queued = n,
            DocumentStatus::Running => self.running = n,
            DocumentStatus::Completed => self.completed = n,
            DocumentStatus::Failed => self.failed = n,
        }
    }

    pub fn total(&self) -> u64 {
        self.queued + self.running + self.completed + self.failed
    }
}

/// Why a state operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Redis unreachable, breaker open, or the command failed. Retryable.
    #[error("document state unavailable: {0}")]
    Unavailable(#[from] RedisUnavailable),
    /// A transition on a document never initialised, or whose state expired.
    #[error("no state for document {0} (never initialised, or expired)")]
    NotFound(Uuid),
    /// A transition on a stage the document was not initialised with.
    #[error("stage {stage:?} is not one of the stages of document {doc}")]
    UnknownStage { doc: Uuid, stage: String },
    /// `init` of an existing document with another content hash: a caller bug.
    #[error("document {doc} already has another content hash")]
    ContentMismatch { doc: Uuid },
    /// A stage name, stage list or content hash the store refuses.
    #[error("invalid {what}: {problem}")]
    Invalid { what: &'static str, problem: String },
    /// The stored state cannot be read (written by something else).
    #[error("stored state of document {doc} is unreadable: {problem}")]
    Corrupt { doc: Uuid, problem: String },
}

impl StateError {
    /// Stable name for logs and Step Functions `Catch`.
    pub fn error_type(&self) -> &'static str {
        match self {
            StateError::Unavailable(_) => "StateUnavailable",
            StateError::NotFound(_) => "StateNotFound",
            StateError::UnknownStage { .. } => "StateUnknownStage",
            StateError::ContentMismatch { .. } => "StateContentMismatch",
            StateError::Invalid { .. } => "StateInvalidInput",
            StateError::Corrupt { .. } => "StateCorrupt",
        }
    }

    /// Would the same call succeed later? Only when Redis was unavailable.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StateError::Unavailable(_))
    }
}

/// The operations on document state; [`StateStore`] keeps it in Redis, shared by every
/// worker, and [`MemoryStateStore`] in this process. Every transition returns the state
/// right after it.
#[async_trait]
pub trait DocumentStates: Send + Sync {
    /// Creates the document's state with every stage pending (overall `queued`), or, if it
    /// exists, keeps every stage result and adopts `source` and the stage list `stages`
    /// (pipeline order; progress is counted over it).
    ///
    /// # Errors
    /// [`StateError::Invalid`] for an empty list, a duplicate or a name outside
    /// `[a-z0-9_]{1,64}`, or a content hash that is not 64 lowercase hex digits;
    /// [`StateError::ContentMismatch`] if the document exists with another hash;
    /// [`StateError::Unavailable`].
    async fn init(
        &self,
        doc: Uuid,
        source: &str,
        content_sha256: &str,
        stages: &[&str],
    ) -> Result<DocumentState, StateError>;

    /// Marks `stage` running: start time now, one more attempt, previous outcome cleared.
    ///
    /// # Errors
    /// [`StateError::NotFound`], [`StateError::UnknownStage`], [`StateError::Unavailable`].
    async fn start_stage(&self, doc: Uuid, stage: &str) -> Result<DocumentState, StateError>;

    /// Marks `stage` completed with what it reports (`count`), error cleared.
    ///
    /// # Errors
    /// As [`DocumentStates::start_stage`].
    async fn complete_stage(
        &self,
        doc: Uuid,
        stage: &str,
        count: u64,
    ) -> Result<DocumentState, StateError>;

    /// Marks `stage` failed with a stable `error_type` and a message; the document is
    /// failed until the stage is started again.
    ///
    /// # Errors
    /// As [`DocumentStates::start_stage`].
    async fn fail_stage(
        &self,
        doc: Uuid,
        stage: &str,
        error_type: &str,
        message: &str,
    ) -> Result<DocumentState, StateError>;

    /// Marks `stage` skipped (done without work: counts towards progress).
    ///
    /// # Errors
    /// As [`DocumentStates::start_stage`].
    async fn skip_stage(&self, doc: Uuid, stage: &str) -> Result<DocumentState, StateError>;

    /// The document's state; `None` if unknown or expired.
    ///
    /// # Errors
    /// [`StateError::Corrupt`], [`StateError::Unavailable`].
    async fn get(&self, doc: Uuid) -> Result<Option<DocumentState>, StateError>;

    /// Where a re-run over `stages` (pipeline order) should start.
    ///
    /// # Errors
    /// As [`DocumentStates::get`]: an unreachable Redis is not "start from scratch".
    async fn resume_point(&self, doc: Uuid, stages: &[&str]) -> Result<ResumePoint, StateError> {
        let state = self.get(doc).await?;
        Ok(ResumePoint::from_state(state.as_ref(), stages))
    }

    /// Up to `limit` documents, most recently updated first, in `status` or in any.
    /// Unreadable entries are skipped (and logged).
    ///
    /// # Errors
    /// [`StateError::Unavailable`].
    async fn list(
        &self,
        status: Option<DocumentStatus>,
        limit: usize,
    ) -> Result<Vec<DocumentState>, StateError>;

    /// How many live documents are in each status.
    ///
    /// # Errors
    /// [`StateError::Unavailable`].
    async fn counts(&self) -> Result<StatusCounts, StateError>;
}

// ---------------------------------------------------------------------------------------
// Validation and the rules both stores share.

fn validate_stage(stage: &str) -> Result<(), StateError> {
    if stage.is_empty()
        || stage.len() > MAX_STAGE_LEN
        || !stage
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        let shown: String = stage.chars().take(80).collect();
        return Err(StateError::Invalid {
            what: "stage name",
            problem: format!("{shown:?} is not [a-z0-9_]{{1,{MAX_STAGE_LEN}}}"),
        });
    }
    Ok(())
}

fn validate_init(content_sha256: &str, stages: &[&str]) -> Result<(), StateError> {
    if content_sha256.len() != 64
        || !content_sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(StateError::Invalid {
            what: "content hash",
            problem: "expected 64 lowercase hex digits (SHA-256)".into(),
        });
    }
    if stages.is_empty() || stages.len() > MAX_STAGES {
        return Err(StateError::Invalid {
            what: "stage list",
            problem: format!("expected 1 to {MAX_STAGES} stages, got {}", stages.len()),
        });
    }
    let mut seen = HashSet::new();
    for stage in stages {
        validate_stage(stage)?;
        if !seen.insert(*stage) {
            return Err(StateError::Invalid {
                what: "stage list",
                problem: format!("stage {stage:?} appears twice"),
            });
        }
    }
    Ok(())
}

/// At most `max` characters of `s`.
fn clip(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The overall fields, computed from the stages in order. `state_common.lua` applies the
/// same rules in Redis.
fn derive_overall(stages: &[StageState]) -> (DocumentStatus, u8, Option<String>) {
    let done = stages.iter().filter(|s| s.status.is_done()).count();
    let first = |st: StageStatus| stages.iter().find(|s| s.status == st).map(|s| &s.name);
    let open = first(StageStatus::Pending).cloned();
    let progress = (done * 100).checked_div(stages.len()).unwrap_or(0) as u8;
    let started = stages.iter().any(|s| s.status != StageStatus::Pending);
    if let Some(failed) = first(StageStatus::Failed) {
        (DocumentStatus::Failed, progress, Some(failed.clone()))
    } else if done == stages.len() {
        (DocumentStatus::Completed, progress, None)
    } else if let Some(running) = first(StageStatus::Running) {
        (DocumentStatus::Running, progress, Some(running.clone()))
    } else if started {
        (DocumentStatus::Running, progress, open)
    } else {
        (DocumentStatus::Queued, progress, open)
    }
}

// ---------------------------------------------------------------------------------------
// Redis.

/// Document state in Redis, shared by every worker. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StateStore {
    handle: RedisHandle,
    keys: KeyBuilder,
    cfg: StateConfig,
    scripts: Arc<Scripts>,
}

#[derive(Debug)]
struct Scripts {
    init: redis::Script,
    start: redis::Script,
    complete: redis::Script,
    fail: redis::Script,
    skip: redis::Script,
    prune: redis::Script,
}

const COMMON: &str = include_str!("state_common.lua");

impl Scripts {
    fn new() -> Scripts {
        let transition = |body: &str| redis::Script::new(&format!("{COMMON}\n{body}"));
        Scripts {
            init: transition(include_str!("state_init.lua")),
            start: transition(include_str!("state_start.lua")),
            complete: transition(include_str!("state_complete.lua")),
            fail: transition(include_str!("state_fail.lua")),
            skip: transition(include_str!("state_skip.lua")),
            prune: redis::Script::new(include_str!("state_prune.lua")),
        }
    }
}

impl StateStore {
    pub fn new(handle: RedisHandle, keys: KeyBuilder, cfg: StateConfig) -> StateStore {
        StateStore {
            handle,
            keys,
            cfg,
            scripts: Arc::new(Scripts::new()),
        }
    }

    /// `lexpipe:{env}:doc_state:v2:{dsNN}:{uuid}`: the hash of one document.
    pub fn state_key(&self, doc: Uuid) -> String {
        state_key(&self.keys, doc)
    }

    /// `lexpipe:{env}:doc_index:v2:{dsNN}:{status}`: the documents of one shard in
    /// `status`, scored by `updated_ms`.
    pub fn index_key(&self, shard: u8, status: DocumentStatus) -> String {
        index_key(&self.keys, shard, status)
    }

    /// The index of `status` that lists `doc` (the one of its shard).
    pub fn index_key_of(&self, doc: Uuid, status: DocumentStatus) -> String {
        self.index_key(shard_of(doc), status)
    }

    /// The configuration this store writes with.
    pub fn config(&self) -> &StateConfig {
        &self.cfg
    }

    /// Runs one transition script and reads its reply.
    async fn transition(
        &self,
        script: &redis::Script,
        idempotent: bool,
        doc: Uuid,
        stage: Option<&str>,
        args: &[&str],
    ) -> Result<DocumentState, StateError> {
        let mut keys = Vec::with_capacity(1 + DocumentStatus::ALL.len());
        keys.push(self.state_key(doc));
        keys.extend(
            DocumentStatus::ALL
                .iter()
                .map(|s| self.index_key_of(doc, *s)),
        );
        let ttl_ms = self.cfg.ttl_ms().to_string();
        let member = doc.hyphenated().to_string();
        let (keys, ttl_ms, member) = (&keys, &ttl_ms, &member);
        let (code, fields): (String, Vec<String>) = self
            .handle
            .run(idempotent, |mut c| async move {
                let mut invocation = script.prepare_invoke();
                for k in keys {
                    invocation.key(k);
                }
                invocation.arg(ttl_ms).arg(member);
                for a in args {
                    invocation.arg(*a);
                }
                invocation.invoke_async(&mut c).await
            })
            .await?;
        match code.as_str() {
            "ok" => parse_state(doc, &pairs(fields)),
            "missing" => Err(StateError::NotFound(doc)),
            "unknown_stage" => Err(StateError::UnknownStage {
                doc,
                stage: stage.unwrap_or_default().to_string(),
            }),
            "content_mismatch" => Err(StateError::ContentMismatch { doc }),
            other => Err(StateError::Corrupt {
                doc,
                problem: format!("unexpected script reply {other:?}"),
            }),
        }
    }

    /// Removes from the `status` index of `shard` those of `members` (all of that shard)
    /// whose hash is gone; returns how many were removed.
    async fn prune(
        &self,
        shard: u8,
        status: DocumentStatus,
        members: &[Uuid],
    ) -> Result<u64, StateError> {
        if members.is_empty() {
            return Ok(0);
        }
        debug_assert!(members.iter().all(|m| shard_of(*m) == shard));
        let index = self.index_key(shard, status);
        let hashes: Vec<String> = members.iter().map(|m| self.state_key(*m)).collect();
        let names: Vec<String> = members.iter().map(|m| m.hyphenated().to_string()).collect();
        let script = &self.scripts.prune;
        let (index, hashes, names) = (&index, &hashes, &names);
        let removed: u64 = self
            .handle
            .run(true, |mut c| async move {
                let mut invocation = script.prepare_invoke();
                invocation.key(index);
                for h in hashes {
                    invocation.key(h);
                }
                for n in names {
                    invocation.arg(n);
                }
                invocation.invoke_async(&mut c).await
            })
            .await?;
        if removed > 0 {
            tracing::debug!(
                status = status.as_str(),
                removed,
                "pruned expired documents from the state index"
            );
        }
        Ok(removed)
    }

    /// Up to `limit` live documents of one status, newest first, from every shard.
    async fn list_status(
        &self,
        status: DocumentStatus,
        limit: usize,
    ) -> Result<Vec<DocumentState>, StateError> {
        let mut out = Vec::new();
        for shard in 0..STATE_SHARDS {
            out.extend(self.list_shard(shard, status, limit).await?);
        }
        sort_newest_first(&mut out);
        out.truncate(limit);
        Ok(out)
    }

    /// Up to `limit` live documents of one shard's index, newest first, pruning expired
    /// members met on the way.
    async fn list_shard(
        &self,
        shard: u8,
        status: DocumentStatus,
        limit: usize,
    ) -> Result<Vec<DocumentState>, StateError> {
        let index = self.index_key(shard, status);
        let mut out = Vec::new();
        let mut offset = 0usize;
        while out.len() < limit {
            let batch = (limit - out.len()).clamp(1, BATCH);
            let (start, stop) = (offset as i64, (offset + batch) as i64 - 1);
            let index = &index;
            let members: Vec<String> = self
                .handle
                .run(true, |mut c| async move {
                    redis::cmd("ZREVRANGE")
                        .arg(index)
                        .arg(start)
                        .arg(stop)
                        .query_async(&mut c)
                        .await
                })
                .await?;
            if members.is_empty() {
                break;
            }
            offset += members.len();
            let docs: Vec<Uuid> = members
                .iter()
                .filter_map(|m| Uuid::parse_str(m).ok())
                .collect();
            let hashes = self.fetch(&docs).await?;
            let mut gone = Vec::new();
            for (doc, fields) in docs.iter().zip(hashes) {
                if fields.is_empty() {
                    gone.push(*doc);
                    continue;
                }
                match parse_state(*doc, &fields) {
                    // A document that changed status since the range read is listed under
                    // its new status.
                    Ok(state) if state.status == status && out.len() < limit => out.push(state),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(document_uuid = %doc, error = %e, "skipping unreadable document state")
                    }
                }
            }
            let removed = self.prune(shard, status, &gone).await?;
            offset = offset.saturating_sub(removed as usize);
            if members.len() < batch {
                break;
            }
        }
        Ok(out)
    }

    /// `HGETALL` of each document (all of one shard, so one slot), in one round trip.
    async fn fetch(&self, docs: &[Uuid]) -> Result<Vec<HashMap<String, String>>, StateError> {
        if docs.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for d in docs {
            pipe.cmd("HGETALL").arg(self.state_key(*d));
        }
        let pipe = &pipe;
        Ok(self
            .handle
            .run(true, |mut c| async move { pipe.query_async(&mut c).await })
            .await?)
    }

    /// Members of one shard's `status` index, after removing those not updated since
    /// `cutoff` whose hash has expired.
    async fn count_shard(
        &self,
        shard: u8,
        status: DocumentStatus,
        cutoff: u64,
    ) -> Result<u64, StateError> {
        let index = self.index_key(shard, status);
        let index = &index;
        let mut offset = 0usize;
        loop {
            let members: Vec<String> = self
                .handle
                .run(true, |mut c| async move {
                    redis::cmd("ZRANGEBYSCORE")
                        .arg(index)
                        .arg("-inf")
                        .arg(cutoff)
                        .arg("LIMIT")
                        .arg(offset)
                        .arg(BATCH)
                        .query_async(&mut c)
                        .await
                })
                .await?;
            let docs: Vec<Uuid> = members
                .iter()
                .filter_map(|m| Uuid::parse_str(m).ok())
                .collect();
            let removed = self.prune(shard, status, &docs).await? as usize;
            offset += members.len() - removed;
            if members.len() < BATCH {
                break;
            }
        }
        Ok(self
            .handle
            .run(true, |mut c| async move {
                redis::cmd("ZCARD").arg(index).query_async(&mut c).await
            })
            .await?)
    }

    /// Server time in milliseconds.
    async fn server_now_ms(&self) -> Result<u64, StateError> {
        let (secs, micros): (u64, u64) = self
            .handle
            .run(true, |mut c| async move {
                redis::cmd("TIME").query_async(&mut c).await
            })
            .await?;
        Ok(secs * 1000 + micros / 1000)
    }
}

#[async_trait]
impl DocumentStates for StateStore {
    async fn init(
        &self,
        doc: Uuid,
        source: &str,
        content_sha256: &str,
        stages: &[&str],
    ) -> Result<DocumentState, StateError> {
        validate_init(content_sha256, stages)?;
        let list = stages.join(",");
        let source = clip(source, MAX_SOURCE_CHARS);
        self.transition(
            &self.scripts.init,
            true,
            doc,
            None,
            &[source, content_sha256, &list],
        )
        .await
    }

    async fn start_stage(&self, doc: Uuid, stage: &str) -> Result<DocumentState, StateError> {
        validate_stage(stage)?;
        // Not retried: a retry after a lost reply would count two attempts.
        self.transition(&self.scripts.start, false, doc, Some(stage), &[stage])
            .await
    }

    async fn complete_stage(
        &self,
        doc: Uuid,
        stage: &str,
        count: u64,
    ) -> Result<DocumentState, StateError> {
        validate_stage(stage)?;
        let count = count.to_string();
        self.transition(
            &self.scripts.complete,
            true,
            doc,
            Some(stage),
            &[stage, &count],
        )
        .await
    }

    async fn fail_stage(
        &self,
        doc: Uuid,
        stage: &str,
        error_type: &str,
        message: &str,
    ) -> Result<DocumentState, StateError> {
        validate_stage(stage)?;
        let error_type = clip(error_type, MAX_ERROR_TYPE_CHARS);
        let message = clip(message, MAX_ERROR_CHARS);
        self.transition(
            &self.scripts.fail,
            true,
            doc,
            Some(stage),
            &[stage, error_type, message],
        )
        .await
    }

    async fn skip_stage(&self, doc: Uuid, stage: &str) -> Result<DocumentState, StateError> {
        validate_stage(stage)?;
        self.transition(&self.scripts.skip, true, doc, Some(stage), &[stage])
            .await
    }

    async fn get(&self, doc: Uuid) -> Result<Option<DocumentState>, StateError> {
        let key = self.state_key(doc);
        let key = &key;
        let fields: HashMap<String, String> = self
            .handle
            .run(true, |mut c| async move {
                redis::cmd("HGETALL").arg(key).query_async(&mut c).await
            })
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        parse_state(doc, &fields).map(Some)
    }

    async fn list(
        &self,
        status: Option<DocumentStatus>,
        limit: usize,
    ) -> Result<Vec<DocumentState>, StateError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let statuses = match status {
            Some(s) => vec![s],
            None => DocumentStatus::ALL.to_vec(),
        };
        let mut out = Vec::new();
        for s in statuses {
            out.extend(self.list_status(s, limit).await?);
        }
        sort_newest_first(&mut out);
        out.truncate(limit);
        Ok(out)
    }

    async fn counts(&self) -> Result<StatusCounts, StateError> {
        // Members not updated for a TTL have probably expired: check those, remove the
        // ones that have, then count.
        let cutoff = self
            .server_now_ms()
            .await?
            .saturating_sub(self.cfg.ttl_ms());
        let mut counts = StatusCounts::default();
        for status in DocumentStatus::ALL {
            let mut total = 0;
            for shard in 0..STATE_SHARDS {
                total += self.count_shard(shard, status, cutoff).await?;
            }
            counts.set(status, total);
        }
        Ok(counts)
    }
}

/// `HGETALL`'s flat list as a map.
fn pairs(flat: Vec<String>) -> HashMap<String, String> {
    let mut out = HashMap::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.insert(k, v);
    }
    out
}

/// The typed state from a hash's fields.
fn parse_state(doc: Uuid, f: &HashMap<String, String>) -> Result<DocumentState, StateError> {
    let corrupt = |problem: String| StateError::Corrupt { doc, problem };
    let required = |name: &str| {
        f.get(name)
            .ok_or_else(|| corrupt(format!("field {name} is missing")))
    };
    let number = |name: &str| -> Result<Option<u64>, StateError> {
        f.get(name)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| corrupt(format!("field {name} is not a number: {v:?}")))
            })
            .transpose()
    };
    let status = required("status")?;
    let status = DocumentStatus::parse(status)
        .ok_or_else(|| corrupt(format!("unknown status {status:?}")))?;
    let mut stages = Vec::new();
    for name in required("stages")?.split(',').filter(|s| !s.is_empty()) {
        let status = match f.get(&format!("{name}.status")) {
            None => StageStatus::Pending,
            Some(s) => StageStatus::parse(s)
                .ok_or_else(|| corrupt(format!("unknown status {s:?} of stage {name}")))?,
        };
        stages.push(StageState {
            name: name.to_string(),
            status,
            started_ms: number(&format!("{name}.started_ms"))?,
            finished_ms: number(&format!("{name}.finished_ms"))?,
            count: number(&format!("{name}.count"))?,
            error: f.get(&format!("{name}.error")).cloned(),
            error_type: f.get(&format!("{name}.error_type")).cloned(),
            attempts: number(&format!("{name}.attempts"))?.unwrap_or(0) as u32,
        });
    }
    let progress = number("progress")?.unwrap_or(0).min(100) as u8;
    Ok(DocumentState {
        document_uuid: doc,
        status,
        progress,
        current_stage: f.get("current_stage").cloned(),
        source: f.get("source").cloned().unwrap_or_default(),
        content_sha256: required("content_sha256")?.clone(),
        created_ms: number("created_ms")?.unwrap_or(0),
        updated_ms: number("updated_ms")?.unwrap_or(0),
        stages,
    })
}

fn sort_newest_first(docs: &mut [DocumentState]) {
    docs.sort_by(|a, b| {
        b.updated_ms
            .cmp(&a.updated_ms)
            .then(a.document_uuid.cmp(&b.document_uuid))
    });
}

// ---------------------------------------------------------------------------------------
// In this process.

/// Document state in this process, for `local` runs without Redis (and fast unit tests).
/// Same rules as [`StateStore`]; entries expire after the TTL, following `tokio::time` so
/// tests can pause and advance it.
#[derive(Debug)]
pub struct MemoryStateStore {
    ttl: Duration,
    docs: Mutex<HashMap<Uuid, MemoryEntry>>,
}

#[derive(Debug, Clone)]
struct MemoryEntry {
    source: String,
    content_sha256: String,
    created_ms: u64,
    updated_ms: u64,
    /// The stage list of the latest `init`.
    order: Vec<String>,
    /// Every stage ever initialised (results of stages dropped from the list are kept,
    /// as in Redis).
    stages: HashMap<String, StageState>,
    expires: tokio::time::Instant,
}

impl MemoryEntry {
    fn snapshot(&self, doc: Uuid) -> DocumentState {
        let stages: Vec<StageState> = self
            .order
            .iter()
            .map(|n| {
                self.stages
                    .get(n)
                    .cloned()
                    .unwrap_or_else(|| StageState::pending(n))
            })
            .collect();
        let (status, progress, current_stage) = derive_overall(&stages);
        DocumentState {
            document_uuid: doc,
            status,
            progress,
            current_stage,
            source: self.source.clone(),
            content_sha256: self.content_sha256.clone(),
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
            stages,
        }
    }
}

impl MemoryStateStore {
    pub fn new(cfg: StateConfig) -> MemoryStateStore {
        MemoryStateStore {
            ttl: cfg.ttl,
            docs: Mutex::new(HashMap::new()),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, MemoryEntry>> {
        let mut docs = self.docs.lock().expect("poisoned");
        let now = tokio::time::Instant::now();
        docs.retain(|_, e| e.expires > now);
        docs
    }

    /// Applies `change` to one stage of a live document, atomically (under the lock).
    fn transition(
        &self,
        doc: Uuid,
        stage: &str,
        change: impl FnOnce(&mut StageState, u64),
    ) -> Result<DocumentState, StateError> {
        validate_stage(stage)?;
        let mut docs = self.live();
        let entry = docs.get_mut(&doc).ok_or(StateError::NotFound(doc))?;
        if !entry.order.iter().any(|s| s == stage) {
            return Err(StateError::UnknownStage {
                doc,
                stage: stage.to_string(),
            });
        }
        let now = wall_ms();
        let state = entry
            .stages
            .entry(stage.to_string())
            .or_insert_with(|| StageState::pending(stage));
        change(state, now);
        entry.updated_ms = now;
        entry.expires = tokio::time::Instant::now() + self.ttl;
        Ok(entry.snapshot(doc))
    }
}

impl Default for MemoryStateStore {
    fn default() -> Self {
        MemoryStateStore::new(StateConfig::default())
    }
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[async_trait]
impl DocumentStates for MemoryStateStore {
    async fn init(
        &self,
        doc: Uuid,
        source: &str,
        content_sha256: &str,
        stages: &[&str],
    ) -> Result<DocumentState, StateError> {
        validate_init(content_sha256, stages)?;
        let now = wall_ms();
        let mut docs = self.live();
        let entry = docs.entry(doc).or_insert_with(|| MemoryEntry {
            source: String::new(),
            content_sha256: content_sha256.to_string(),
            created_ms: now,
            updated_ms: now,
            order: Vec::new(),
            stages: HashMap::new(),
            expires: tokio::time::Instant::now(),
        });
        if entry.content_sha256 != content_sha256 {
            return Err(StateError::ContentMismatch { doc });
        }
        entry.source = clip(source, MAX_SOURCE_CHARS).to_string();
        entry.order = stages.iter().map(|s| s.to_string()).collect();
        for s in stages {
            entry
                .stages
                .entry(s.to_string())
                .or_insert_with(|| StageState::pending(s));
        }
        entry.updated_ms = now;
        entry.expires = tokio::time::Instant::now() + self.ttl;
        Ok(entry.snapshot(doc))
    }

    async fn start_stage(&self, doc: Uuid, stage: &str) -> Result<DocumentState, StateError> {
        self.transition(doc, stage, |s, now| {
            s.status = StageStatus::Running;
            s.started_ms = Some(now);
            s.attempts += 1;
            s.finished_ms = None;
            s.count = None;
            s.error = None;
            s.error_type = None;
        })
    }

    async fn complete_stage(
        &self,
        doc: Uuid,
        stage: &str,
        count: u64,
    ) -> Result<DocumentState, StateError> {
        self.transition(doc, stage, |s, now| {
            s.status = StageStatus::Completed;
            s.finished_ms = Some(now);
            s.count = Some(count);
            s.error = None;
            s.error_type = None;
        })
    }

    async fn fail_stage(
        &self,
        doc: Uuid,
        stage: &str,
        error_type: &str,
        message: &str,
    ) -> Result<DocumentState, StateError> {
        let error_type = clip(error_type, MAX_ERROR_TYPE_CHARS).to_string();
        let message = clip(message, MAX_ERROR_CHARS).to_string();
        self.transition(doc, stage, |s, now| {
            s.status = StageStatus::Failed;
            s.finished_ms = Some(now);
            s.count = None;
            s.error = Some(message);
            s.error_type = Some(error_type);
        })
    }

    async fn skip_stage(&self, doc: Uuid, stage: &str) -> Result<DocumentState, StateError> {
        self.transition(doc, stage, |s, now| {
            s.status = StageStatus::Skipped;
            s.finished_ms = Some(now);
            s.count = None;
            s.error = None;
            s.error_type = None;
        })
    }

    async fn get(&self, doc: Uuid) -> Result<Option<DocumentState>, StateError> {
        Ok(self.live().get(&doc).map(|e| e.snapshot(doc)))
    }

    async fn list(
        &self,
        status: Option<DocumentStatus>,
        limit: usize,
    ) -> Result<Vec<DocumentState>, StateError> {
        let mut out: Vec<DocumentState> = self
            .live()
            .iter()
            .map(|(doc, e)| e.snapshot(*doc))
            .filter(|s| status.is_none_or(|want| s.status == want))
            .collect();
        sort_newest_first(&mut out);
        out.truncate(limit);
        Ok(out)
    }

    async fn counts(&self) -> Result<StatusCounts, StateError> {
        let mut counts = StatusCounts::default();
        for (doc, e) in self.live().iter() {
            let status = e.snapshot(*doc).status;
            counts.set(status, counts.get(status) + 1);
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const STAGES: [&str; 3] = ["ocr", "chunk", "extract_entities"];

    fn doc(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn a_documents_hash_and_its_shards_indexes_share_one_cluster_slot() {
        use redis::cluster_routing::Slot;
        let keys = KeyBuilder::new("prod");
        let mut slots = HashSet::new();
        for n in 0..1000u128 {
            let d = Uuid::new_v5(&Uuid::NAMESPACE_OID, &n.to_be_bytes());
            let slot = Slot::for_key(state_key(&keys, d));
            for status in DocumentStatus::ALL {
                assert_eq!(
                    Slot::for_key(index_key(&keys, shard_of(d), status)),
                    slot,
                    "{d} {status}"
                );
            }
            slots.insert(format!("{slot:?}"));
        }
        // Documents spread over every shard, so over the cluster's slots.
        assert_eq!(slots.len(), usize::from(STATE_SHARDS));
    }

    #[test]
    fn stage_names_outside_lowercase_digits_and_underscore_are_refused() {
        for bad in ["", "OCR", "a.b", "a,b", "a:b", "a b", "é", &"x".repeat(65)] {
            assert!(validate_stage(bad).is_err(), "{bad:?}");
        }
        for good in ["ocr", "extract_entities", "stage_07"] {
            assert!(validate_stage(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn init_refuses_an_empty_or_duplicated_stage_list_and_a_malformed_hash() {
        assert!(validate_init(SHA, &[]).is_err());
        assert!(validate_init(SHA, &["ocr", "ocr"]).is_err());
        assert!(validate_init("abc", &["ocr"]).is_err());
        assert!(validate_init(&SHA.to_uppercase(), &["ocr"]).is_err());
        assert!(validate_init(SHA, &STAGES).is_ok());
    }

    #[test]
    fn clip_cuts_on_a_character_boundary() {
        assert_eq!(clip("héllo", 2), "hé");
        assert_eq!(clip("hi", 10), "hi");
    }

    fn stage(name: &str, status: StageStatus) -> StageState {
        StageState {
            status,
            ..StageState::pending(name)
        }
    }

    #[test]
    fn overall_status_follows_the_stages() {
        use StageStatus::*;
        let cases: [(&[StageStatus], DocumentStatus, u8, Option<&str>); 7] = [
            (&[Pending, Pending], DocumentStatus::Queued, 0, Some("a")),
            (&[Running, Pending], DocumentStatus::Running, 0, Some("a")),
            (
                &[Completed, Pending],
                DocumentStatus::Running,
                50,
                Some("b"),
            ),
            (
                &[Completed, Running],
                DocumentStatus::Running,
                50,
                Some("b"),
            ),
            (&[Completed, Failed], DocumentStatus::Failed, 50, Some("b")),
            (&[Skipped, Completed], DocumentStatus::Completed, 100, None),
            (&[Failed, Running], DocumentStatus::Failed, 0, Some("a")),
        ];
        for (statuses, overall, progress, current) in cases {
            let stages: Vec<StageState> = ["a", "b"]
                .iter()
                .zip(statuses)
                .map(|(n, s)| stage(n, *s))
                .collect();
            assert_eq!(
                derive_overall(&stages),
                (overall, progress, current.map(str::to_string)),
                "{statuses:?}"
            );
        }
    }

    #[test]
    fn progress_rounds_down() {
        let stages = [
            stage("a", StageStatus::Completed),
            stage("b", StageStatus::Pending),
            stage("c", StageStatus::Pending),
        ];
        assert_eq!(derive_overall(&stages).1, 33);
    }

    #[test]
    fn resume_point_is_the_first_stage_not_done_and_lists_the_done_ones_before_it() {
        let mut state = DocumentState {
            document_uuid: doc(1),
            status: DocumentStatus::Failed,
            progress: 0,
            current_stage: None,
            source: String::new(),
            content_sha256: SHA.into(),
            created_ms: 0,
            updated_ms: 0,
            stages: vec![
                stage("ocr", StageStatus::Completed),
                stage("chunk", StageStatus::Failed),
                stage("extract_entities", StageStatus::Completed),
            ],
        };
        let rp = ResumePoint::from_state(Some(&state), &STAGES);
        assert_eq!(rp.start_at.as_deref(), Some("chunk"));
        assert_eq!(rp.done, vec!["ocr"]);
        assert!(rp.can_skip("ocr") && !rp.can_skip("extract_entities"));

        state.stages[1].status = StageStatus::Skipped;
        let rp = ResumePoint::from_state(Some(&state), &STAGES);
        assert!(rp.is_complete());
        // A stage added to the pipeline since is where a re-run starts.
        let rp = ResumePoint::from_state(
            Some(&state),
            &["ocr", "chunk", "extract_entities", "persist"],
        );
        assert_eq!(rp.start_at.as_deref(), Some("persist"));

        let fresh = ResumePoint::from_state(None, &STAGES);
        assert_eq!(fresh.start_at.as_deref(), Some("ocr"));
        assert!(fresh.done.is_empty());
    }

    #[tokio::test]
    async fn memory_store_tracks_transitions_like_the_redis_store() {
        let store = MemoryStateStore::default();
        let d = doc(7);
        let s = store.init(d, "a.pdf", SHA, &STAGES).await.unwrap();
        assert_eq!((s.status, s.progress), (DocumentStatus::Queued, 0));
        store.start_stage(d, "ocr").await.unwrap();
        let s = store.complete_stage(d, "ocr", 12).await.unwrap();
        assert_eq!((s.status, s.progress), (DocumentStatus::Running, 33));
        assert_eq!(s.stage("ocr").unwrap().count, Some(12));
        assert_eq!(s.current_stage.as_deref(), Some("chunk"));
        store.start_stage(d, "chunk").await.unwrap();
        let s = store
            .fail_stage(d, "chunk", "ReadError", "boom")
            .await
            .unwrap();
        assert_eq!(s.status, DocumentStatus::Failed);
        assert_eq!(
            s.stage("chunk").unwrap().error_type.as_deref(),
            Some("ReadError")
        );
        let rp = store.resume_point(d, &STAGES).await.unwrap();
        assert_eq!(rp.start_at.as_deref(), Some("chunk"));
        let s = store.start_stage(d, "chunk").await.unwrap();
        assert_eq!(s.stage("chunk").unwrap().attempts, 2);
        assert_eq!(s.stage("chunk").unwrap().error, None);
        store.complete_stage(d, "chunk", 3).await.unwrap();
        let s = store.skip_stage(d, "extract_entities").await.unwrap();
        assert_eq!((s.status, s.progress), (DocumentStatus::Completed, 100));
        assert_eq!(s.current_stage, None);
        let counts = store.counts().await.unwrap();
        assert_eq!((counts.completed, counts.total()), (1, 1));
    }

    #[tokio::test]
    async fn memory_store_refuses_unknown_documents_and_stages_and_another_hash() {
        let store = MemoryStateStore::default();
        let d = doc(8);
        assert!(matches!(
            store.start_stage(d, "ocr").await,
            Err(StateError::NotFound(_))
        ));
        store.init(d, "a.pdf", SHA, &STAGES).await.unwrap();
        assert!(matches!(
            store.complete_stage(d, "persist", 1).await,
            Err(StateError::UnknownStage { .. })
        ));
        let other = SHA.replace('0', "1");
        assert!(matches!(
            store.init(d, "a.pdf", &other, &STAGES).await,
            Err(StateError::ContentMismatch { .. })
        ));
    }

    #[tokio::test]
    async fn memory_store_init_again_keeps_stage_results() {
        let store = MemoryStateStore::default();
        let d = doc(9);
        store.init(d, "a.pdf", SHA, &STAGES).await.unwrap();
        store.complete_stage(d, "ocr", 4).await.unwrap();
        let s = store.init(d, "b.pdf", SHA, &STAGES).await.unwrap();
        assert_eq!(s.source, "b.pdf");
        assert_eq!(s.stage("ocr").unwrap().status, StageStatus::Completed);
        assert_eq!(s.progress, 33);
    }

    #[tokio::test(start_paused = true)]
    async fn memory_state_expires_after_the_ttl_unless_written_again() {
        let store = MemoryStateStore::new(StateConfig {
            ttl: Duration::from_secs(60),
        });
        let (a, b) = (doc(10), doc(11));
        store.init(a, "a.pdf", SHA, &STAGES).await.unwrap();
        store.init(b, "b.pdf", SHA, &STAGES).await.unwrap();
        tokio::time::advance(Duration::from_secs(40)).await;
        store.start_stage(b, "ocr").await.unwrap();
        tokio::time::advance(Duration::from_secs(40)).await;
        assert_eq!(store.get(a).await.unwrap(), None);
        assert!(store.get(b).await.unwrap().is_some());
        assert_eq!(store.counts().await.unwrap().total(), 1);
    }

    #[tokio::test]
    async fn memory_store_lists_by_status_newest_first() {
        let store = MemoryStateStore::default();
        for n in 0..3 {
            store.init(doc(n), "x.pdf", SHA, &STAGES).await.unwrap();
        }
        store
            .fail_stage(doc(1), "ocr", "OcrError", "bad")
            .await
            .unwrap();
        let failed = store.list(Some(DocumentStatus::Failed), 10).await.unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].document_uuid, doc(1));
        assert_eq!(
            store
                .list(Some(DocumentStatus::Queued), 10)
                .await
                .unwrap()
                .len(),
            2
        );
        assert_eq!(store.list(None, 2).await.unwrap().len(), 2);
    }

    #[test]
    fn a_hash_without_its_required_fields_is_corrupt_not_a_made_up_state() {
        let mut f = HashMap::new();
        f.insert("status".to_string(), "running".to_string());
        assert!(matches!(
            parse_state(doc(1), &f),
            Err(StateError::Corrupt { .. })
        ));
        f.insert("stages".into(), "ocr".into());
        f.insert("content_sha256".into(), SHA.into());
        f.insert("ocr.status".into(), "exploded".into());
        assert!(matches!(
            parse_state(doc(1), &f),
            Err(StateError::Corrupt { .. })
        ));
        f.insert("ocr.status".into(), "running".into());
        assert_eq!(
            parse_state(doc(1), &f).unwrap().stages[0].status,
            StageStatus::Running
        );
    }
}
