//! Idempotency keys, so that a retried step never does its work twice.
//!
//! Modelled on Powertools for AWS Lambda's idempotency utility. Before its side effects
//! (the persist stage's writes), a step calls [`Idempotency::begin`] with an operation
//! name, a key derived from what makes the call unique (operation + document + content),
//! and a hash of its payload. The answer is an [`Outcome`]:
//!
//! - [`Outcome::Proceed`]: do the work, then [`Guard::complete`] with its result, or
//!   [`Guard::fail`] so that a retry may run;
//! - [`Outcome::AlreadyDone`]: an earlier call completed; here is its result;
//! - [`Outcome::InProgress`]: another call is doing it right now; try again later.
//!
//! Reusing a key with another payload is [`IdempotencyError::PayloadMismatch`], like
//! Powertools' `IdempotencyValidationError`: the key derivation is wrong somewhere.
//!
//! ## The record
//!
//! `lexpipe:{env}:idem:v1:{operation}:{sha256(key)}`, a hash with `status`
//! (`IN_PROGRESS`, then `COMPLETED`), `payload_hash`, the owner's random `token`,
//! `in_progress_until` (server time, ms) and, once completed, `result` (JSON) and
//! `completed_at`. It always has a TTL: the record ttl (24 h by default), or the caller's
//! deadline if that is longer.
//!
//! A caller that dies leaves its record `IN_PROGRESS`; once its deadline (the caller's
//! remaining time, or the configured default) has passed, the next `begin` takes it over
//! with a new token ([`Guard::took_over`]), and the dead caller's guard can no longer
//! complete or fail it. Deadlines are compared with the Redis server's clock, so clients'
//! clocks do not matter.
//!
//! ## Scripts (one per atomic operation)
//!
//! `idem_begin.lua`, `idem_complete.lua` (owner only), `idem_fail.lua` (owner only,
//! never deletes a completed result).
//!
//! ## Failing closed
//!
//! Redis unreachable is [`IdempotencyError::Unavailable`], never "proceed": the caller must
//! fail the step (retryable). PostgreSQL constraints remain the backstop.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::conn::{RedisHandle, RedisUnavailable};
use super::keys::{KeyBuilder, KeyPart};
use crate::text::sha256_hex;

/// Read with every other setting by [`crate::config`] (`LEXPIPE_IDEMPOTENCY_*`);
/// re-exported because [`Idempotency::new`] takes it.
pub use crate::config::IdempotencyConfig;

const NAMESPACE: &str = "idem";
const KEY_VERSION: u32 = 1;

/// Stable names of [`IdempotencyError`] variants, for Step Functions `ErrorEquals`.
pub mod error_types {
    pub const UNAVAILABLE: &str = "IdempotencyUnavailable";
    pub const PAYLOAD_MISMATCH: &str = "IdempotencyPayloadMismatch";
    pub const CORRUPT: &str = "IdempotencyCorrupt";
    pub const SUPERSEDED: &str = "IdempotencySuperseded";
    pub const INVALID_RESULT: &str = "IdempotencyInvalidResult";
    /// Every name above.
    pub const ALL: [&str; 5] = [
        UNAVAILABLE,
        PAYLOAD_MISMATCH,
        CORRUPT,
        SUPERSEDED,
        INVALID_RESULT,
    ];
}

/// Why an idempotency check or record did not happen. Never means "proceed".
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    /// Redis could not be asked (down, slow, breaker open). Retryable; fail the step.
    #[error("idempotency store unavailable: {0}")]
    Unavailable(#[from] RedisUnavailable),
    /// The key was first used with another payload hash. Terminal: the key derivation
    /// leaves out something that changes the payload.
    #[error("idempotency key {key} of {operation} was used before with another payload")]
    PayloadMismatch {
        operation: &'static str,
        /// The Redis key (the caller's key is hashed into it).
        key: String,
    },
    /// The record is not one this module wrote (wrong type, unknown status, a result that
    /// is not JSON or not of the expected type). Terminal until the record expires or is
    /// deleted.
    #[error("idempotency record {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
    /// This guard's record was taken over by another call after its deadline passed, so
    /// the result was not stored. Retryable: a retry finds the other call's outcome.
    #[error("idempotency record {key} of {operation} was taken over by another call")]
    Superseded {
        operation: &'static str,
        key: String,
    },
    /// The result does not serialise to JSON. Terminal (a programming error).
    #[error("result of {operation} does not serialise to JSON: {reason}")]
    InvalidResult {
        operation: &'static str,
        reason: String,
    },
}

impl IdempotencyError {
    /// Stable name, matched by Step Functions `Retry`/`Catch` and shown in status.
    pub fn error_type(&self) -> &'static str {
        match self {
            IdempotencyError::Unavailable(_) => error_types::UNAVAILABLE,
            IdempotencyError::PayloadMismatch { .. } => error_types::PAYLOAD_MISMATCH,
            IdempotencyError::Corrupt { .. } => error_types::CORRUPT,
            IdempotencyError::Superseded { .. } => error_types::SUPERSEDED,
            IdempotencyError::InvalidResult { .. } => error_types::INVALID_RESULT,
        }
    }

    /// Would the same call succeed later?
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            IdempotencyError::Unavailable(_) | IdempotencyError::Superseded { .. }
        )
    }
}

/// The answer of [`Idempotency::begin`]; `T` is the stored result's type
/// (JSON from `begin`, the caller's type from [`Idempotency::begin_typed`]).
#[must_use]
pub enum Outcome<T = serde_json::Value> {
    /// No completed call: this one owns the record and does the work.
    Proceed(Guard),
    /// A call with the same key and payload completed; its result.
    AlreadyDone(T),
    /// Another call owns the record and is within its deadline.
    InProgress,
}

impl<T: fmt::Debug> fmt::Debug for Outcome<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Proceed(g) => f.debug_tuple("Proceed").field(g).finish(),
            Outcome::AlreadyDone(v) => f.debug_tuple("AlreadyDone").field(v).finish(),
            Outcome::InProgress => f.write_str("InProgress"),
        }
    }
}

/// Ownership of an `IN_PROGRESS` record. Finish with [`Guard::complete`] or
/// [`Guard::fail`]; a guard that is only dropped leaves the record `IN_PROGRESS` until its
/// deadline passes, as a crashed caller would.
#[must_use = "complete or fail the guard, or retries wait for its deadline"]
pub struct Guard {
    inner: Arc<Inner>,
    operation: &'static str,
    key: String,
    token: String,
    took_over: bool,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("operation", &self.operation)
            .field("key", &self.key)
            .field("took_over", &self.took_over)
            .finish_non_exhaustive()
    }
}

impl Guard {
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The Redis key of the record.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// True when an earlier call owned the record and overran its deadline without
    /// completing: it may have written part of its work, so write with upserts.
    pub fn took_over(&self) -> bool {
        self.took_over
    }

    /// Stores `result` as the outcome of this key; later `begin`s answer
    /// [`Outcome::AlreadyDone`] with it until the record ttl runs out.
    ///
    /// # Errors
    /// [`IdempotencyError::Superseded`] when another call took the record over (nothing
    /// stored); [`IdempotencyError::InvalidResult`]; [`IdempotencyError::Unavailable`].
    pub async fn complete(self, result: &impl Serialize) -> Result<(), IdempotencyError> {
        let json = serde_json::to_string(result).map_err(|e| IdempotencyError::InvalidResult {
            operation: self.operation,
            reason: e.to_string(),
        })?;
        let script = &self.inner.complete;
        let ttl_ms = millis(self.inner.cfg.record_ttl);
        let (k, t, j) = (&self.key, &self.token, &json);
        // Safe to retry: the script treats a completion by the same owner as done.
        let stored: i64 = self
            .inner
            .handle
            .run(true, |mut c| async move {
                script
                    .key(k)
                    .arg(t)
                    .arg(j)
                    .arg(ttl_ms)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        if stored == 1 {
            Ok(())
        } else {
            Err(IdempotencyError::Superseded {
                operation: self.operation,
                key: self.key,
            })
        }
    }

    /// Deletes the record so that a retry runs the work again. Does nothing if another
    /// call has taken the record over since.
    ///
    /// # Errors
    /// [`IdempotencyError::Unavailable`]: the record stays `IN_PROGRESS` until its deadline.
    pub async fn fail(self) -> Result<(), IdempotencyError> {
        let script = &self.inner.fail;
        let (k, t) = (&self.key, &self.token);
        let deleted: i64 = self
            .inner
            .handle
            .run(true, |mut c| async move {
                script.key(k).arg(t).invoke_async(&mut c).await
            })
            .await?;
        if deleted == 0 {
            tracing::debug!(key = %self.key, "idempotency record no longer ours; left as is");
        }
        Ok(())
    }
}

/// Idempotency records in Redis. Cheap to clone.
#[derive(Clone)]
pub struct Idempotency {
    inner: Arc<Inner>,
}

struct Inner {
    handle: RedisHandle,
    keys: KeyBuilder,
    cfg: IdempotencyConfig,
    begin: redis::Script,
    complete: redis::Script,
    fail: redis::Script,
}

impl fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Idempotency")
            .field("handle", &self.inner.handle)
            .field("prefix", &self.inner.keys.prefix())
            .field("cfg", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

impl Idempotency {
    pub fn new(handle: RedisHandle, keys: KeyBuilder, cfg: IdempotencyConfig) -> Idempotency {
        Idempotency {
            inner: Arc::new(Inner {
                handle,
                keys,
                cfg,
                begin: redis::Script::new(include_str!("idem_begin.lua")),
                complete: redis::Script::new(include_str!("idem_complete.lua")),
                fail: redis::Script::new(include_str!("idem_fail.lua")),
            }),
        }
    }

    pub fn config(&self) -> &IdempotencyConfig {
        &self.inner.cfg
    }

    /// `lexpipe:{env}:idem:v1:{operation}:{sha256(key)}`: the caller's key is always
    /// hashed, so it may hold anything (document ids, S3 keys).
    pub fn record_key(&self, operation: &'static str, key: &str) -> String {
        self.inner.keys.key(
            NAMESPACE,
            KEY_VERSION,
            &[KeyPart::Id(operation), KeyPart::Digest(&sha256_hex(key))],
        )
    }

    /// Checks and claims `key` for `operation` (see the module docs). `deadline` is how
    /// long this call may stay in progress before another may take over (a Lambda's
    /// remaining time); `None` uses [`IdempotencyConfig::in_progress_expiry`].
    ///
    /// # Errors
    /// [`IdempotencyError::PayloadMismatch`] when the record was made with another
    /// `payload_hash`; [`IdempotencyError::Corrupt`]; [`IdempotencyError::Unavailable`]
    /// (never "proceed" without Redis).
    pub async fn begin(
        &self,
        operation: &'static str,
        key: &str,
        payload_hash: &str,
        deadline: Option<Duration>,
    ) -> Result<Outcome, IdempotencyError> {
        let cfg = &self.inner.cfg;
        let in_progress = deadline
            .unwrap_or(cfg.in_progress_expiry)
            .max(Duration::from_millis(1));
        // A record never expires before its owner's deadline.
        let ttl = cfg.record_ttl.max(in_progress);
        let record = self.record_key(operation, key);
        let token = format!("{:032x}", rand::random::<u128>());
        let script = &self.inner.begin;
        let (in_ms, ttl_ms) = (millis(in_progress), millis(ttl));
        let (k, p, t) = (&record, payload_hash, &token);
        // Safe to retry: the script recognises its own token as the owner.
        let reply: Vec<String> = self
            .inner
            .handle
            .run(true, |mut c| async move {
                script
                    .key(k)
                    .arg(p)
                    .arg(t)
                    .arg(in_ms)
                    .arg(ttl_ms)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        let parts: Vec<&str> = reply.iter().map(String::as_str).collect();
        match parts.as_slice() {
            ["PROCEED", took_over] => {
                let took_over = *took_over == "1";
                if took_over {
                    tracing::info!(
                        operation,
                        key = %record,
                        "idempotency record of a call that overran its deadline taken over"
                    );
                }
                Ok(Outcome::Proceed(Guard {
                    inner: self.inner.clone(),
                    operation,
                    key: record,
                    token,
                    took_over,
                }))
            }
            ["DONE", json] => match serde_json::from_str(json) {
                Ok(value) => Ok(Outcome::AlreadyDone(value)),
                Err(e) => Err(IdempotencyError::Corrupt {
                    key: record,
                    reason: format!("stored result is not JSON: {e}"),
                }),
            },
            ["IN_PROGRESS", _ms_left] => Ok(Outcome::InProgress),
            ["MISMATCH"] => Err(IdempotencyError::PayloadMismatch {
                operation,
                key: record,
            }),
            ["CORRUPT", what] => Err(IdempotencyError::Corrupt {
                key: record,
                reason: (*what).to_string(),
            }),
            other => Err(IdempotencyError::Corrupt {
                reason: format!("unexpected reply from the begin script: {other:?}"),
                key: record,
            }),
        }
    }

    /// [`Idempotency::begin`], with a completed result read as a `T`.
    ///
    /// # Errors
    /// As `begin`; and [`IdempotencyError::Corrupt`] when the stored result is not a `T`.
    pub async fn begin_typed<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        key: &str,
        payload_hash: &str,
        deadline: Option<Duration>,
    ) -> Result<Outcome<T>, IdempotencyError> {
        Ok(
            match self.begin(operation, key, payload_hash, deadline).await? {
                Outcome::Proceed(guard) => Outcome::Proceed(guard),
                Outcome::InProgress => Outcome::InProgress,
                Outcome::AlreadyDone(value) => {
                    Outcome::AlreadyDone(serde_json::from_value(value).map_err(|e| {
                        IdempotencyError::Corrupt {
                            key: self.record_key(operation, key),
                            reason: format!(
                                "stored result is not a {}: {e}",
                                std::any::type_name::<T>()
                            ),
                        }
                    })?)
                }
            },
        )
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_are_stable_names_and_only_unavailable_and_superseded_retry() {
        let cases = [
            (
                IdempotencyError::Unavailable(RedisUnavailable::BreakerOpen),
                "IdempotencyUnavailable",
                true,
            ),
            (
                IdempotencyError::PayloadMismatch {
                    operation: "persist",
                    key: String::new(),
                },
                "IdempotencyPayloadMismatch",
                false,
            ),
            (
                IdempotencyError::Corrupt {
                    key: String::new(),
                    reason: String::new(),
                },
                "IdempotencyCorrupt",
                false,
            ),
            (
                IdempotencyError::Superseded {
                    operation: "persist",
                    key: String::new(),
                },
                "IdempotencySuperseded",
                true,
            ),
            (
                IdempotencyError::InvalidResult {
                    operation: "persist",
                    reason: String::new(),
                },
                "IdempotencyInvalidResult",
                false,
            ),
        ];
        for (e, name, retry) in cases {
            assert_eq!((e.error_type(), e.is_retryable()), (name, retry));
        }
    }

    #[test]
    fn the_callers_key_is_hashed_into_the_record_key() {
        let handle = RedisHandle::new(&crate::config::Config::local_defaults()).unwrap();
        let idem = Idempotency::new(handle, KeyBuilder::new("dev"), IdempotencyConfig::default());
        let key = idem.record_key("persist", "doc:contract 1.pdf:abc");
        assert_eq!(
            key,
            format!(
                "lexpipe:dev:idem:v1:persist:{}",
                sha256_hex("doc:contract 1.pdf:abc")
            )
        );
    }
}
