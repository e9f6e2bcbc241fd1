//! Distributed locks with fencing tokens, for the work queue.
//!
//! A worker that claims queue item N takes the lock `queue_item:N` for a short lease and
//! keeps it alive while it works. A lease alone cannot stop a worker that was paused (GC,
//! a frozen Lambda, a network partition) past its expiry from writing after someone else
//! took over, so every acquisition also issues a *fencing token*: a number that grows with
//! every acquisition of the same resource. The worker sends it with each write, and
//! PostgreSQL refuses a write whose token is lower than the highest one it has seen for
//! that item (see Martin Kleppmann, "How to do distributed locking", 2016).
//!
//! ## Keys
//!
//! | key | value | TTL |
//! |---|---|---|
//! | `lexpipe:{env}:lock:v1:{queue_item-N}` | the owner's random 128-bit token | the lease |
//! | `lexpipe:{env}:fence:v1:{queue_item-N}` | the last fencing token issued | [`FENCE_TTL`], refreshed on every acquire and extend |
//!
//! Both keys carry the same Redis Cluster hash tag (`{queue_item-N}`, built by
//! [`KeyPart::Tag`], whose rules turn the `:` of `queue_item:N` into `-`), so one script
//! may touch both.
//!
//! ## Scripts (one per atomic operation)
//!
//! - `lock_acquire.lua`: `SET lock token NX PX ttl` and, only if set, `INCR` the fencing
//!   counter. A missing counter starts from the server clock in microseconds, so tokens
//!   keep growing even after the counter is lost (eviction, a Redis restart without
//!   persistence); PostgreSQL, which remembers the highest token, would otherwise refuse
//!   every honest writer until the counter caught up.
//! - `lock_extend.lua`: compare-and-`PEXPIRE` (and refresh the counter's TTL).
//! - `release_lease.lua`: compare-and-delete, shared with the cache's single-flight lease.
//!
//! ## Failing closed
//!
//! Redis unreachable, slow or behind an open circuit breaker is [`LockError::Unavailable`]:
//! never "acquired". A renewal that cannot reach Redis reports the lease lost once its
//! remaining time runs out.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::conn::{RedisHandle, RedisUnavailable};
use super::keys::{KeyBuilder, KeyPart};
use crate::text::sha256_hex;

const LOCK_NAMESPACE: &str = "lock";
const FENCE_NAMESPACE: &str = "fence";
const KEY_VERSION: u32 = 1;

/// How long a fencing counter outlives its last acquisition or extension. Also the
/// longest lease accepted, so that the counter outlives every lease that could be alive.
pub const FENCE_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Longest lock kind; with [`MAX_VERBATIM_ID_LEN`] it keeps `{kind}-{id}` within the 64
/// characters a [`KeyPart::Tag`] keeps readable.
const MAX_KIND_LEN: usize = 24;
/// Longest id kept verbatim; longer or unsafe ids are hashed (`h-` + 32 hex digits).
const MAX_VERBATIM_ID_LEN: usize = 39;

/// Stable names of [`LockError`] variants, for Step Functions `ErrorEquals` and status.
pub mod error_types {
    pub const UNAVAILABLE: &str = "LockUnavailable";
    pub const INVALID_TTL: &str = "LockInvalidTtl";
    pub const UNEXPECTED_REPLY: &str = "LockUnexpectedReply";
}

/// Why a lock operation did not give an answer. Never means "acquired".
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Redis could not be asked (down, slow, breaker open). Retryable.
    #[error("lock store unavailable: {0}")]
    Unavailable(#[from] RedisUnavailable),
    /// The lease length is zero, or longer than [`FENCE_TTL`]. A programming error.
    #[error("lease ttl of {0:?} is outside 1 ms ..= 30 days")]
    InvalidTtl(Duration),
    /// A script answered something it never returns (the fencing counter vanished while
    /// the lock was held, or a key was overwritten by something else). Retryable.
    #[error("unexpected reply from the lock script: {0}")]
    UnexpectedReply(String),
}

impl LockError {
    /// Stable name, matched by Step Functions `Retry`/`Catch` and shown in status.
    pub fn error_type(&self) -> &'static str {
        match self {
            LockError::Unavailable(_) => error_types::UNAVAILABLE,
            LockError::InvalidTtl(_) => error_types::INVALID_TTL,
            LockError::UnexpectedReply(_) => error_types::UNEXPECTED_REPLY,
        }
    }

    /// Would the same call succeed later?
    pub fn is_retryable(&self) -> bool {
        !matches!(self, LockError::InvalidTtl(_))
    }
}

/// What a lock protects: a kind (a constant such as `queue_item`) and an id. Both are
/// validated, so no id can move a lock into another key or hash slot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LockName {
    kind: &'static str,
    /// `[A-Za-z0-9._-]{1,39}` as given, or `h-` + 32 hex digits of its SHA-256.
    id: String,
}

impl LockName {
    /// The lock of one work-queue item: `queue_item:{id}`.
    pub fn queue_item(id: i64) -> LockName {
        LockName::new("queue_item", &id.to_string())
    }

    /// A lock on `id` of some `kind`. An id that is empty, longer than 39 characters or
    /// holds anything outside `[A-Za-z0-9._-]` is replaced by a hash of itself.
    ///
    /// # Panics
    /// If `kind` is not 1 to 24 of `[a-z_]`: kinds are compile-time constants, so this is
    /// a programming error that any test taking the lock catches.
    pub fn new(kind: &'static str, id: &str) -> LockName {
        assert!(
            !kind.is_empty()
                && kind.len() <= MAX_KIND_LEN
                && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "invalid lock kind {kind:?}"
        );
        let safe = !id.is_empty()
            && id.len() <= MAX_VERBATIM_ID_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        let id = if safe {
            id.to_string()
        } else {
            format!("h-{}", &sha256_hex(id)[..32])
        };
        LockName { kind, id }
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The id as it appears in keys (hashed if it was not safe).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The hash tag shared by the lock and its fencing counter.
    fn tag(&self) -> String {
        format!("{}-{}", self.kind, self.id)
    }
}

impl fmt::Display for LockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.id)
    }
}

/// A held lock. Send [`Lease::fencing_token`] with every write made under it.
///
/// Dropping a lease does not release it (that needs Redis): call [`Locks::release`], or
/// let it expire.
#[must_use = "a lease holds the lock until it is released or expires"]
pub struct Lease {
    name: LockName,
    key: String,
    fence_key: String,
    token: String,
    fencing_token: u64,
    ttl: Duration,
    acquired_at: Instant,
    valid_until: Instant,
}

impl fmt::Debug for Lease {
    // The owner token is left out: whoever has it can release the lock.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("name", &self.name)
            .field("key", &self.key)
            .field("fencing_token", &self.fencing_token)
            .field("ttl", &self.ttl)
            .field("acquired_at", &self.acquired_at)
            .field("valid_until", &self.valid_until)
            .finish_non_exhaustive()
    }
}

impl Lease {
    pub fn name(&self) -> &LockName {
        &self.name
    }

    /// The Redis key of the lock.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Grows with every acquisition of this resource; PostgreSQL refuses writes carrying a
    /// lower one than it has seen, which fences off a worker whose lease ran out.
    pub fn fencing_token(&self) -> u64 {
        self.fencing_token
    }

    /// The lease length of the last acquire or extend.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn acquired_at(&self) -> Instant {
        self.acquired_at
    }

    /// A lower bound of when Redis drops the lock: the start of the last successful
    /// acquire or extend, plus its ttl (measured before the request left, so it is never
    /// later than the server's expiry).
    pub fn valid_until(&self) -> Instant {
        self.valid_until
    }

    /// Time left before [`Lease::valid_until`]; zero once past it.
    pub fn remaining(&self) -> Duration {
        self.valid_until.saturating_duration_since(Instant::now())
    }
}

/// Takes, extends and releases locks in Redis. Cheap to clone.
#[derive(Clone)]
pub struct Locks {
    inner: Arc<LocksInner>,
}

struct LocksInner {
    handle: RedisHandle,
    keys: KeyBuilder,
    acquire: redis::Script,
    extend: redis::Script,
    release: redis::Script,
}

impl fmt::Debug for Locks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Locks")
            .field("handle", &self.inner.handle)
            .field("prefix", &self.inner.keys.prefix())
            .finish_non_exhaustive()
    }
}

impl Locks {
    pub fn new(handle: RedisHandle, keys: KeyBuilder) -> Locks {
        Locks {
            inner: Arc::new(LocksInner {
                handle,
                keys,
                acquire: redis::Script::new(include_str!("lock_acquire.lua")),
                extend: redis::Script::new(include_str!("lock_extend.lua")),
                release: redis::Script::new(include_str!("release_lease.lua")),
            }),
        }
    }

    /// `lexpipe:{env}:lock:v1:{kind-id}`.
    pub fn lock_key(&self, name: &LockName) -> String {
        self.inner
            .keys
            .key(LOCK_NAMESPACE, KEY_VERSION, &[KeyPart::Tag(&name.tag())])
    }

    /// `lexpipe:{env}:fence:v1:{kind-id}`: the fencing counter, in the lock's hash slot.
    pub fn fence_key(&self, name: &LockName) -> String {
        self.inner
            .keys
            .key(FENCE_NAMESPACE, KEY_VERSION, &[KeyPart::Tag(&name.tag())])
    }

    /// Takes `name` for `ttl` if nobody holds it: `Some(lease)` with a fresh fencing token,
    /// or `None` when another owner holds it. Does not wait or retry on contention.
    ///
    /// # Errors
    /// [`LockError::Unavailable`] when Redis cannot be asked (never a lease then);
    /// [`LockError::InvalidTtl`] for a zero ttl or one over [`FENCE_TTL`].
    pub async fn acquire(
        &self,
        name: &LockName,
        ttl: Duration,
    ) -> Result<Option<Lease>, LockError> {
        let ttl_ms = lease_millis(ttl)?;
        let key = self.lock_key(name);
        let fence_key = self.fence_key(name);
        let token = format!("{:032x}", rand::random::<u128>());
        let started = Instant::now();
        let script = &self.inner.acquire;
        let (k, f, t) = (&key, &fence_key, &token);
        // Safe to retry: the script recognises its own token and answers the same token.
        let fence: i64 = self
            .inner
            .handle
            .run(true, |mut c| async move {
                script
                    .key(k)
                    .key(f)
                    .arg(t)
                    .arg(ttl_ms)
                    .arg(fence_millis())
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        match fence {
            0 => Ok(None),
            n if n > 0 => Ok(Some(Lease {
                name: name.clone(),
                key,
                fence_key,
                token,
                fencing_token: n as u64,
                ttl,
                acquired_at: started,
                valid_until: started + ttl,
            })),
            n => Err(LockError::UnexpectedReply(format!(
                "acquire of {name} answered {n}"
            ))),
        }
    }

    /// Deletes the lock if `lease` still holds it. `Ok(false)` when it does not (it
    /// expired, or another owner has it now): then nothing is touched.
    ///
    /// # Errors
    /// [`LockError::Unavailable`]: the lock may still be held until its ttl runs out.
    pub async fn release(&self, lease: &Lease) -> Result<bool, LockError> {
        let script = &self.inner.release;
        let (k, t) = (&lease.key, &lease.token);
        let n: i64 = self
            .inner
            .handle
            .run(true, |mut c| async move {
                script.key(k).arg(t).invoke_async(&mut c).await
            })
            .await?;
        Ok(n == 1)
    }

    /// Sets the lease's remaining time to `ttl` if it still holds the lock, and records
    /// the new length and [`Lease::valid_until`] in `lease`. `Ok(false)` once the lock
    /// expired or belongs to someone else: the lease is lost and must not be used to write.
    ///
    /// # Errors
    /// [`LockError::Unavailable`] (the lease runs on until its current expiry);
    /// [`LockError::InvalidTtl`].
    pub async fn extend(&self, lease: &mut Lease, ttl: Duration) -> Result<bool, LockError> {
        let started = Instant::now();
        let extended = self
            .extend_raw(&lease.key, &lease.fence_key, &lease.token, ttl)
            .await?;
        if extended {
            lease.ttl = ttl;
            lease.valid_until = started + ttl;
        }
        Ok(extended)
    }

    async fn extend_raw(
        &self,
        key: &str,
        fence_key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, LockError> {
        let ttl_ms = lease_millis(ttl)?;
        let script = &self.inner.extend;
        let n: i64 = self
            .inner
            .handle
            .run(true, |mut c| async move {
                script
                    .key(key)
                    .key(fence_key)
                    .arg(token)
                    .arg(ttl_ms)
                    .arg(fence_millis())
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(n == 1)
    }

    /// Keeps `lease` alive in the background: extends it by its ttl every third of it,
    /// until [`Renewal::stop`], a drop of the [`Renewal`], or the loss of the lease, which
    /// [`Renewal::lost`] reports: an extend answered "not yours", or Redis stayed
    /// unreachable until the lease's remaining time ran out.
    ///
    /// # Panics
    /// Outside a Tokio runtime (the renewal is a spawned task).
    pub fn keep_alive(&self, lease: Lease) -> Renewal {
        let (state_tx, state_rx) = watch::channel(RenewalState {
            valid_until: lease.valid_until,
            lost: None,
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(renew(
            self.clone(),
            Target {
                key: lease.key.clone(),
                fence_key: lease.fence_key.clone(),
                token: lease.token.clone(),
                ttl: lease.ttl,
            },
            lease.valid_until,
            state_tx,
            stop_rx,
        ));
        Renewal {
            lease: Some(lease),
            state: state_rx,
            stop: Some(stop_tx),
            task: Some(task),
        }
    }
}

fn lease_millis(ttl: Duration) -> Result<u64, LockError> {
    if ttl < Duration::from_millis(1) || ttl > FENCE_TTL {
        return Err(LockError::InvalidTtl(ttl));
    }
    Ok(ttl.as_millis() as u64)
}

fn fence_millis() -> u64 {
    FENCE_TTL.as_millis() as u64
}

/// Why a renewed lease was lost. Stop writing under it: the fencing token will be refused
/// once another worker has taken the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseLost {
    /// Redis answered that the lock is no longer ours: it expired, was deleted, or another
    /// owner took it.
    NotHeld,
    /// Redis could not be reached before the lease's remaining time ran out.
    Unreachable,
    /// The renewal task ended without a verdict (it panicked).
    RenewalEnded,
}

impl fmt::Display for LeaseLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LeaseLost::NotHeld => "the lock is no longer held by this lease",
            LeaseLost::Unreachable => "redis was unreachable until the lease ran out",
            LeaseLost::RenewalEnded => "the renewal task ended unexpectedly",
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct RenewalState {
    valid_until: Instant,
    lost: Option<LeaseLost>,
}

/// What the renewal task needs of a lease.
struct Target {
    key: String,
    fence_key: String,
    token: String,
    ttl: Duration,
}

/// A lease being kept alive by [`Locks::keep_alive`]. Dropping it stops the renewal (the
/// lock then expires by itself); [`Renewal::stop`] stops it and hands the lease back for
/// [`Locks::release`].
#[derive(Debug)]
pub struct Renewal {
    /// Always `Some` until `stop` takes it.
    lease: Option<Lease>,
    state: watch::Receiver<RenewalState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Renewal {
    fn lease(&self) -> &Lease {
        self.lease.as_ref().expect("lease present until stop")
    }

    pub fn name(&self) -> &LockName {
        self.lease().name()
    }

    /// The fencing token to send with every write made under this lease.
    pub fn fencing_token(&self) -> u64 {
        self.lease().fencing_token()
    }

    /// A lower bound of the lock's expiry in Redis, as of the last successful extend.
    pub fn valid_until(&self) -> Instant {
        self.state.borrow().valid_until
    }

    /// `Some(reason)` once the lease is lost; `None` while it is being kept alive.
    pub fn is_lost(&self) -> Option<LeaseLost> {
        self.state.borrow().lost
    }

    /// Resolves when the lease is lost (at once if it already is). Meant for a
    /// `tokio::select!` beside the work, which should stop when this fires.
    pub async fn lost(&self) -> LeaseLost {
        let mut state = self.state.clone();
        // Err: the task ended without reporting a loss, which only a panic does.
        let lost = state
            .wait_for(|s| s.lost.is_some())
            .await
            .map(|s| s.lost)
            .ok()
            .flatten();
        lost.unwrap_or(LeaseLost::RenewalEnded)
    }

    /// Stops renewing (waiting for an extend in flight) and returns the lease, with the
    /// expiry of its last successful extend. Check [`Renewal::is_lost`] first, or
    /// [`Locks::release`] will answer `false` for a lost lease.
    pub async fn stop(mut self) -> Lease {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let mut lease = self.lease.take().expect("lease present until stop");
        let valid_until = self.state.borrow().valid_until;
        if valid_until > lease.valid_until {
            lease.valid_until = valid_until;
        }
        lease
    }
}

impl Drop for Renewal {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The renewal loop: extend when a third of the ttl has passed since the last success;
/// on errors retry every tenth of the ttl until the lease runs out, then report it lost.
async fn renew(
    locks: Locks,
    target: Target,
    mut valid_until: Instant,
    state: watch::Sender<RenewalState>,
    mut stop: oneshot::Receiver<()>,
) {
    let ttl = target.ttl;
    let period = ttl / 3;
    let retry = (ttl / 10).max(Duration::from_millis(1));
    let lose = |reason: LeaseLost| state.send_modify(|s| s.lost = Some(reason));
    let mut next = valid_until
        .checked_sub(ttl - period)
        .unwrap_or_else(Instant::now);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        let started = Instant::now();
        // Past `valid_until` (the process stalled, or errors used up the time) one more
        // short try is still safe: the script extends only if our token never left the
        // key, and then nobody else can have held the lock meanwhile.
        let deadline = if started >= valid_until {
            started + retry
        } else {
            valid_until
        };
        let attempt = tokio::time::timeout_at(
            deadline,
            locks.extend_raw(&target.key, &target.fence_key, &target.token, ttl),
        );
        let outcome = tokio::select! {
            _ = &mut stop => return,
            outcome = attempt => outcome,
        };
        match outcome {
            Ok(Ok(true)) => {
                valid_until = started + ttl;
                state.send_modify(|s| s.valid_until = valid_until);
                next = started + period;
            }
            Ok(Ok(false)) => {
                tracing::warn!(key = %target.key, "lease lost: the lock is no longer ours");
                lose(LeaseLost::NotHeld);
                return;
            }
            Ok(Err(e)) if Instant::now() >= valid_until => {
                tracing::warn!(key = %target.key, error = %e, "lease lost: redis unreachable until it ran out");
                lose(LeaseLost::Unreachable);
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(key = %target.key, error = %e, "lease extend failed; retrying");
                next = (Instant::now() + retry).min(valid_until);
            }
            Err(_) => {
                tracing::warn!(key = %target.key, "lease lost: redis unreachable until it ran out");
                lose(LeaseLost::Unreachable);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_item_lock_is_named_by_its_id() {
        let name = LockName::queue_item(42);
        assert_eq!(name.to_string(), "queue_item:42");
        assert_eq!(name.id(), "42");
    }

    #[test]
    fn an_unsafe_or_long_id_is_hashed() {
        for id in ["a:b", "a}{b", "", "x y", &"a".repeat(40), "contract.pdf\n"] {
            let name = LockName::new("document", id);
            assert!(name.id().starts_with("h-"), "{id:?} became {}", name.id());
            assert_eq!(name.id().len(), 34);
        }
        assert_eq!(LockName::new("document", "abc-1.2_3").id(), "abc-1.2_3");
    }

    #[test]
    #[should_panic(expected = "invalid lock kind")]
    fn a_kind_with_a_colon_is_refused() {
        LockName::new("queue:item", "1");
    }

    #[test]
    fn lock_and_fence_keys_share_one_hash_tag() {
        let handle = RedisHandle::new(&crate::config::Config::local_defaults()).unwrap();
        let locks = Locks::new(handle, KeyBuilder::new("dev"));
        let name = LockName::queue_item(7);
        assert_eq!(locks.lock_key(&name), "lexpipe:dev:lock:v1:{queue_item-7}");
        assert_eq!(
            locks.fence_key(&name),
            "lexpipe:dev:fence:v1:{queue_item-7}"
        );
        let longest = LockName::new("abcdefghijklmnopqrstuvwx", &"x".repeat(60));
        assert!(
            locks
                .lock_key(&longest)
                .contains(&format!("{{{}}}", longest.tag()))
        );
    }

    #[test]
    fn zero_and_over_long_ttls_are_refused_as_terminal() {
        for ttl in [Duration::ZERO, Duration::from_micros(999), FENCE_TTL * 2] {
            let e = lease_millis(ttl).unwrap_err();
            assert_eq!(e.error_type(), "LockInvalidTtl");
            assert!(!e.is_retryable());
        }
        assert_eq!(lease_millis(Duration::from_millis(1)).unwrap(), 1);
    }

    #[test]
    fn error_types_are_stable_names() {
        let e = LockError::Unavailable(RedisUnavailable::BreakerOpen);
        assert_eq!(
            (e.error_type(), e.is_retryable()),
            ("LockUnavailable", true)
        );
        let e = LockError::UnexpectedReply(String::new());
        assert_eq!(e.error_type(), "LockUnexpectedReply");
    }
}
