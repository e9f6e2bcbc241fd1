//! Shared rate limits on the paid APIs (Textract, the LLM), across every worker process on
//! every machine that shares one Redis.
//!
//! A provider that is called faster than its quota answers 429 / `ThrottlingException`,
//! and a burst of those costs retries, latency and sometimes a temporary ban. Each worker
//! counting on its own cannot know what the others do, so the count lives in Redis.
//!
//! ## Algorithm: a sliding-window log
//!
//! Each limit ("at most `max` per `window`") is a sorted set of grants, scored by the
//! grant's time in microseconds and named `"{now_us}-{token}:{cost}"`, plus a counter
//! holding the sum of the costs in the set (so that checking a cost-weighted limit is O(1)
//! instead of a walk over every entry). One Lua script per decision
//! (`ratelimit_acquire.lua`), atomic on the server:
//!
//! 1. reads the server's clock (`TIME`): clients' clocks disagree, the server's is one;
//! 2. if the API group is paused (a provider answered 429, see below), refuses with the
//!    pause's remaining time;
//! 3. drops the entries older than the window and subtracts their costs;
//! 4. if `used + cost <= max` for every limit involved, adds the grant to each and returns
//!    it with the server's timestamp; otherwise refuses with the time until enough of the
//!    oldest entries leave the window for `cost` to fit.
//!
//! Unlike a fixed window, a sliding log never lets `2 × max` through around a window
//! boundary: *any* interval of one window length holds at most `max`. An LLM call takes one
//! request from `llm_requests` and its estimated tokens from `llm_tokens` in the same
//! script run, so a call refused for tokens holds no request either;
//! [`RateLimiter::correct_llm_tokens`] later replaces the estimate by the real count
//! (`ratelimit_adjust.lua`), keeping the grant's time.
//!
//! A refused [`RateLimiter::acquire`] sleeps the returned wait plus a little jitter (so the
//! waiters of all processes do not wake in the same millisecond) and asks again, until
//! granted or until waiting longer would pass its deadline, in which case it fails at once
//! rather than sleep towards a certain failure.
//!
//! ## Keys
//!
//! Under `lexpipe:{env}:rl:v1:`, with a Redis Cluster hash tag per API group, so that every
//! key one script touches lives in one slot (Redis Cluster, ElastiCache Serverless):
//!
//! | key | what | TTL |
//! |---|---|---|
//! | `{textract_start}:textract_start:log` / `:used` | log and counter | window + 1 s, renewed on every grant |
//! | `{textract_get}:textract_get:log` / `:used` | the same | the same |
//! | `{llm}:llm_requests:log` / `:used`, `{llm}:llm_tokens:log` / `:used` | the same, one tag for both LLM limits | the same |
//! | `{textract_start}:pause`, `{textract_get}:pause`, `{llm}:pause` | a provider-requested pause | the pause (≤ 60 s) |
//!
//! ## Provider throttling
//!
//! [`RateLimiter::throttled`] records a 429's `Retry-After` as a pause key (`SET … PX`
//! through `ratelimit_throttle.lua`, which only ever lengthens a pause). The acquire script
//! checks it first, so *every* worker's acquires for that API wait, not just the one that
//! was refused: the provider is telling all of us to back off.
//!
//! ## When Redis is down
//!
//! No handle, an open circuit breaker, or a failing command: each process falls back to an
//! in-process sliding window that allows itself `local_share × max` (default a quarter), so
//! a handful of workers stay near the provider's limit without any coordination. One
//! warning per process says so; the next decision that reaches Redis uses it again. Such
//! grants say [`Via::Local`], and their timestamps come from this process's clock.
//!
//! Redis 5 or later is required (scripts that read `TIME` and then write rely on effect
//! replication, the default since 5.0).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use super::conn::{RedisHandle, RedisUnavailable};
use super::keys::{KeyBuilder, KeyPart};

/// Read with every other setting by [`crate::config`] (`LEXPIPE_RL_*`); re-exported
/// because [`RateLimiter::new`] takes them.
pub use crate::config::{Limit, LocalShare, RateLimitConfig};

const NAMESPACE: &str = "rl";
const KEY_VERSION: u32 = 1;
/// Pause after a 429 that names no `Retry-After`.
const DEFAULT_PAUSE: Duration = Duration::from_secs(1);
/// Longest pause a 429 can impose: a provider's (or a proxy's) odd header must not stop the
/// pipeline for an hour.
const MAX_PAUSE: Duration = Duration::from_secs(60);
/// Longest jitter added to a wait: enough to spread the waiters of many processes, small
/// next to a one-second window.
const MAX_JITTER: Duration = Duration::from_millis(50);

/// Set once the process has warned that rate limits are no longer shared.
static FALLBACK_WARNED: AtomicBool = AtomicBool::new(false);

/// A rate-limited provider API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// Textract `StartDocumentTextDetection`.
    TextractStart,
    /// Textract `GetDocumentTextDetection` (polling and result pages).
    TextractGet,
    /// LLM calls, counted per request.
    LlmRequests,
    /// LLM tokens (prompt + completion).
    LlmTokens,
}

impl Api {
    /// Every API, in the order of [`RateLimiter::stats`].
    pub const ALL: [Api; 4] = [
        Api::TextractStart,
        Api::TextractGet,
        Api::LlmRequests,
        Api::LlmTokens,
    ];

    /// The name used in keys, logs and summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::TextractStart => "textract_start",
            Api::TextractGet => "textract_get",
            Api::LlmRequests => "llm_requests",
            Api::LlmTokens => "llm_tokens",
        }
    }

    fn idx(self) -> usize {
        self as usize
    }

    /// The hash tag, and pause, shared by the limits of one provider endpoint: both LLM
    /// limits belong to one call, so they are taken together and paused together.
    fn group(self) -> Group {
        match self {
            Api::TextractStart => Group::TextractStart,
            Api::TextractGet => Group::TextractGet,
            Api::LlmRequests | Api::LlmTokens => Group::Llm,
        }
    }
}

impl std::fmt::Display for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    TextractStart,
    TextractGet,
    Llm,
}

impl Group {
    const ALL: [Group; 3] = [Group::TextractStart, Group::TextractGet, Group::Llm];

    fn tag(self) -> &'static str {
        match self {
            Group::TextractStart => "textract_start",
            Group::TextractGet => "textract_get",
            Group::Llm => "llm",
        }
    }

    fn idx(self) -> usize {
        self as usize
    }
}

impl RateLimitConfig {
    /// The limit of `api`.
    pub fn limit(&self, api: Api) -> Limit {
        match api {
            Api::TextractStart => self.textract_start,
            Api::TextractGet => self.textract_get,
            Api::LlmRequests => self.llm_requests,
            Api::LlmTokens => self.llm_tokens,
        }
    }
}

/// Which limiter decided a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// The shared limit in Redis: counted against every worker.
    Redis,
    /// This process's fallback window (Redis unreachable): `local_share` of the limit.
    Local,
}

/// Permission to make one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// How long the caller waited for it.
    pub waited: Duration,
    /// When it was granted, in µs since the Unix epoch: the Redis server's clock for
    /// [`Via::Redis`], this process's for [`Via::Local`].
    pub granted_at_us: u64,
    pub via: Via,
    /// The LLM tokens reserved, for [`RateLimiter::correct_llm_tokens`].
    tokens: Option<TokenHold>,
}

impl Grant {
    /// LLM tokens this grant holds in the window (the estimate, or the corrected count).
    pub fn llm_tokens(&self) -> Option<u64> {
        self.tokens.as_ref().map(|t| t.cost)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct TokenHold {
    token: u64,
    cost: u64,
}

/// The answer of a non-blocking [`RateLimiter::try_acquire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Granted(Grant),
    /// Not now; capacity (or the end of a pause) is expected after `retry_after`.
    Refused {
        retry_after: Duration,
        via: Via,
    },
}

/// Why no grant was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    /// Capacity did not free up in time. Retryable: the limit is busy, not wrong.
    #[error("rate limit of {api}: no capacity within the deadline (waited {waited:?})")]
    DeadlineExceeded { api: Api, waited: Duration },
    /// The cost alone is above the whole limit, so it can never be granted. Terminal.
    #[error("rate limit of {api}: a cost of {cost} is above the whole limit of {limit}")]
    CostAboveLimit { api: Api, cost: u64, limit: u64 },
}

impl RateLimitError {
    /// Stable name, for Step Functions `Retry`/`Catch` and summaries.
    pub fn error_type(&self) -> &'static str {
        match self {
            RateLimitError::DeadlineExceeded { .. } => "RateLimitDeadlineExceeded",
            RateLimitError::CostAboveLimit { .. } => "RateLimitCostAboveLimit",
        }
    }

    /// Would the same call succeed later?
    pub fn is_retryable(&self) -> bool {
        matches!(self, RateLimitError::DeadlineExceeded { .. })
    }
}

/// What this process's limiter did for one API since it started.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiStats {
    pub api: Api,
    /// Grants given (including those of [`RateLimiter::try_acquire`]).
    pub grants: u64,
    /// Of which decided by the in-process fallback.
    pub local_grants: u64,
    /// Acquires that had to wait at least once.
    pub waits: u64,
    /// Refused decisions (an acquire that waits twice counts two).
    pub refusals: u64,
    /// Acquires that gave up at their deadline.
    pub deadline_exceeded: u64,
    /// 429s reported through [`RateLimiter::throttled`] (for an LLM 429: on `llm_requests`).
    pub throttled: u64,
    /// Time spent waiting, summed over acquires.
    #[serde(rename = "wait_total_ms", serialize_with = "as_millis")]
    pub wait_total: Duration,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

#[derive(Debug, Default)]
struct Counters {
    grants: AtomicU64,
    local_grants: AtomicU64,
    waits: AtomicU64,
    refusals: AtomicU64,
    deadline_exceeded: AtomicU64,
    throttled: AtomicU64,
    wait_us: AtomicU64,
}

/// Keys of one limit.
#[derive(Debug, Clone)]
struct LimitKeys {
    log: String,
    used: String,
}

/// One unit of demand: `cost` of `api`'s limit.
#[derive(Debug, Clone, Copy)]
struct Take {
    api: Api,
    cost: u64,
}

/// The result of one decision.
enum Decision {
    Granted { at_us: u64, via: Via },
    Refused { wait: Duration, api: Api, via: Via },
}

/// The process's rate limiter; share it behind an `Arc`.
pub struct RateLimiter {
    handle: Option<RedisHandle>,
    cfg: RateLimitConfig,
    limit_keys: [LimitKeys; 4],
    pause_keys: [String; 3],
    acquire_script: redis::Script,
    throttle_script: redis::Script,
    adjust_script: redis::Script,
    local: Mutex<LocalState>,
    /// Where local timestamps start: the wall clock at construction, advanced by the
    /// monotonic clock (so they never go backwards, and tests can pause them).
    anchor: (Instant, u64),
    /// True while the last decision could not reach Redis.
    degraded: AtomicBool,
    counters: [Counters; 4],
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("redis", &self.handle)
            .field("cfg", &self.cfg)
            .field("degraded", &self.degraded.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// True when the limits are shared through Redis; false when this process keeps its
    /// local share (`LEXPIPE_REDIS_RATE_LIMIT=false`).
    pub fn is_shared(&self) -> bool {
        self.handle.is_some()
    }

    /// A limiter over Redis (`handle`), or over this process alone when `handle` is `None`
    /// (Redis disabled for rate limits): then every limit is `local_share` of its value.
    pub fn new(handle: Option<RedisHandle>, keys: KeyBuilder, cfg: RateLimitConfig) -> RateLimiter {
        let limit_keys = Api::ALL.map(|api| {
            let key = |what| {
                keys.key(
                    NAMESPACE,
                    KEY_VERSION,
                    &[
                        KeyPart::Tag(api.group().tag()),
                        KeyPart::Id(api.as_str()),
                        KeyPart::Id(what),
                    ],
                )
            };
            LimitKeys {
                log: key("log"),
                used: key("used"),
            }
        });
        let pause_keys = Group::ALL.map(|g| {
            keys.key(
                NAMESPACE,
                KEY_VERSION,
                &[KeyPart::Tag(g.tag()), KeyPart::Id("pause")],
            )
        });
        let wall_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        RateLimiter {
            handle,
            cfg,
            limit_keys,
            pause_keys,
            acquire_script: redis::Script::new(include_str!("ratelimit_acquire.lua")),
            throttle_script: redis::Script::new(include_str!("ratelimit_throttle.lua")),
            adjust_script: redis::Script::new(include_str!("ratelimit_adjust.lua")),
            local: Mutex::new(LocalState::default()),
            anchor: (Instant::now(), wall_us),
            degraded: AtomicBool::new(false),
            counters: Default::default(),
        }
    }

    pub fn config(&self) -> &RateLimitConfig {
        &self.cfg
    }

    /// The sorted set holding `api`'s grants (for inspection: tests, status).
    pub fn window_key(&self, api: Api) -> &str {
        &self.limit_keys[api.idx()].log
    }

    /// The key that pauses `api` after a provider's 429.
    pub fn pause_key(&self, api: Api) -> &str {
        &self.pause_keys[api.group().idx()]
    }

    /// Waits (up to the configured `max_wait`) until `cost` units of `api` may be used.
    ///
    /// # Errors
    /// [`RateLimitError::CostAboveLimit`] at once when `cost` exceeds the whole limit;
    /// [`RateLimitError::DeadlineExceeded`] when capacity would not free in time.
    pub async fn acquire(&self, api: Api, cost: u64) -> Result<Grant, RateLimitError> {
        self.acquire_with_deadline(api, cost, self.cfg.max_wait)
            .await
    }

    /// As [`RateLimiter::acquire`], waiting at most `deadline` (zero: one decision, no wait).
    ///
    /// # Errors
    /// As [`RateLimiter::acquire`].
    pub async fn acquire_with_deadline(
        &self,
        api: Api,
        cost: u64,
        deadline: Duration,
    ) -> Result<Grant, RateLimitError> {
        self.acquire_takes(&[Take { api, cost }], deadline).await
    }

    /// One LLM call: one request of `llm_requests` and `estimated_tokens` of `llm_tokens`,
    /// both or neither (one script run). Correct the estimate afterwards with
    /// [`RateLimiter::correct_llm_tokens`].
    ///
    /// # Errors
    /// As [`RateLimiter::acquire`].
    pub async fn acquire_llm(&self, estimated_tokens: u64) -> Result<Grant, RateLimitError> {
        self.acquire_llm_with_deadline(estimated_tokens, self.cfg.max_wait)
            .await
    }

    /// As [`RateLimiter::acquire_llm`], waiting at most `deadline`.
    ///
    /// # Errors
    /// As [`RateLimiter::acquire`].
    pub async fn acquire_llm_with_deadline(
        &self,
        estimated_tokens: u64,
        deadline: Duration,
    ) -> Result<Grant, RateLimitError> {
        let takes = [
            Take {
                api: Api::LlmRequests,
                cost: 1,
            },
            Take {
                api: Api::LlmTokens,
                cost: estimated_tokens,
            },
        ];
        self.acquire_takes(&takes, deadline).await
    }

    /// One decision, without waiting: granted, or refused with the expected wait. For
    /// callers with something better to do than wait, and for the benchmark.
    ///
    /// # Errors
    /// [`RateLimitError::CostAboveLimit`].
    pub async fn try_acquire(&self, api: Api, cost: u64) -> Result<Attempt, RateLimitError> {
        let takes = [Take { api, cost }];
        self.check_costs(&takes)?;
        let token = rand::random::<u64>();
        Ok(match self.decide(&takes, token).await {
            Decision::Granted { at_us, via } => {
                self.note_grant(&takes, via, Duration::ZERO, false);
                Attempt::Granted(self.grant(&takes, token, at_us, via, Duration::ZERO))
            }
            Decision::Refused { wait, api, via } => {
                self.counters[api.idx()]
                    .refusals
                    .fetch_add(1, Ordering::Relaxed);
                Attempt::Refused {
                    retry_after: wait,
                    via,
                }
            }
        })
    }

    /// Replaces the tokens `grant` reserved by the real count, once the provider has said
    /// it: a larger count takes the difference, a smaller one gives it back to everyone.
    /// The entry keeps its grant time. Returns whether the window changed (false for a
    /// grant without tokens, one already out of the window, or Redis unreachable, in
    /// which case the estimate stays until it leaves the window).
    pub async fn correct_llm_tokens(&self, grant: &mut Grant, actual_tokens: u64) -> bool {
        let Some(hold) = grant.tokens.clone() else {
            return false;
        };
        if hold.cost == actual_tokens {
            return true;
        }
        let window = self.cfg.llm_tokens.window;
        let applied = match grant.via {
            Via::Local => {
                let now = Instant::now();
                let mut local = self.local.lock().expect("poisoned");
                local.windows[Api::LlmTokens.idx()].adjust(now, window, hold.token, actual_tokens)
            }
            Via::Redis => {
                let Some(handle) = &self.handle else {
                    return false;
                };
                let keys = &self.limit_keys[Api::LlmTokens.idx()];
                let mut inv = self.adjust_script.prepare_invoke();
                inv.key(&keys.log)
                    .key(&keys.used)
                    .arg(member(grant.granted_at_us, hold.token, hold.cost))
                    .arg(member(grant.granted_at_us, hold.token, actual_tokens))
                    .arg(grant.granted_at_us)
                    .arg(actual_tokens)
                    .arg(window.as_micros() as u64);
                let inv = &inv;
                match handle
                    .run(true, |mut c| async move {
                        inv.invoke_async::<i64>(&mut c).await
                    })
                    .await
                {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::debug!(error = %e, "llm token correction not applied");
                        false
                    }
                }
            }
        };
        if applied {
            grant.tokens = Some(TokenHold {
                token: hold.token,
                cost: actual_tokens,
            });
        }
        applied
    }

    /// A provider answered 429 (or Textract `ThrottlingException`): pause every worker's
    /// acquires of `api`'s group for `retry_after` (default 1 s, at most 60 s). Only ever
    /// lengthens a pause already set. Returns the pause now in effect.
    pub async fn throttled(&self, api: Api, retry_after: Option<Duration>) -> Duration {
        let want = retry_after
            .unwrap_or(DEFAULT_PAUSE)
            .clamp(Duration::from_millis(1), MAX_PAUSE);
        let group = api.group();
        {
            // This process pauses too, whatever happens to Redis below.
            let until = Instant::now() + want;
            let mut local = self.local.lock().expect("poisoned");
            let slot = &mut local.paused_until[group.idx()];
            if slot.is_none_or(|u| u < until) {
                *slot = Some(until);
            }
        }
        // Counted rather than logged at info: a burst of 429s reaches every task at once.
        self.counters[api.idx()]
            .throttled
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            api = api.as_str(),
            pause_ms = want.as_millis() as u64,
            "provider throttled us; pausing"
        );
        let Some(handle) = &self.handle else {
            return want;
        };
        let key = &self.pause_keys[group.idx()];
        let script = &self.throttle_script;
        let ms = want.as_millis() as u64;
        match handle
            .run(true, |mut c| async move {
                script.key(key).arg(ms).invoke_async::<i64>(&mut c).await
            })
            .await
        {
            Ok(in_effect) => Duration::from_millis(in_effect.max(0) as u64),
            Err(e) => {
                tracing::debug!(error = %e, "pause not shared (redis unavailable); pausing this process only");
                want
            }
        }
    }

    /// Counters per API since this limiter was built, in [`Api::ALL`] order.
    pub fn stats(&self) -> Vec<ApiStats> {
        Api::ALL
            .iter()
            .map(|&api| {
                let c = &self.counters[api.idx()];
                ApiStats {
                    api,
                    grants: c.grants.load(Ordering::Relaxed),
                    local_grants: c.local_grants.load(Ordering::Relaxed),
                    waits: c.waits.load(Ordering::Relaxed),
                    refusals: c.refusals.load(Ordering::Relaxed),
                    deadline_exceeded: c.deadline_exceeded.load(Ordering::Relaxed),
                    throttled: c.throttled.load(Ordering::Relaxed),
                    wait_total: Duration::from_micros(c.wait_us.load(Ordering::Relaxed)),
                }
            })
            .collect()
    }

    async fn acquire_takes(
        &self,
        takes: &[Take],
        deadline: Duration,
    ) -> Result<Grant, RateLimitError> {
        self.check_costs(takes)?;
        let start = Instant::now();
        let mut waited_before = false;
        loop {
            let token = rand::random::<u64>();
            match self.decide(takes, token).await {
                Decision::Granted { at_us, via } => {
                    let waited = start.elapsed();
                    self.note_grant(takes, via, waited, waited_before);
                    return Ok(self.grant(takes, token, at_us, via, waited));
                }
                Decision::Refused { wait, api, .. } => {
                    self.counters[api.idx()]
                        .refusals
                        .fetch_add(1, Ordering::Relaxed);
                    let waited = start.elapsed();
                    if waited + wait > deadline {
                        // Sleeping would only end in the same error, later.
                        for t in takes {
                            let c = &self.counters[t.api.idx()];
                            c.deadline_exceeded.fetch_add(1, Ordering::Relaxed);
                            c.wait_us
                                .fetch_add(waited.as_micros() as u64, Ordering::Relaxed);
                            if waited_before {
                                c.waits.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        return Err(RateLimitError::DeadlineExceeded { api, waited });
                    }
                    waited_before = true;
                    let nap = (wait + jitter(wait))
                        .min(deadline.saturating_sub(waited))
                        .max(Duration::from_millis(1));
                    tokio::time::sleep(nap).await;
                }
            }
        }
    }

    fn check_costs(&self, takes: &[Take]) -> Result<(), RateLimitError> {
        for t in takes {
            let limit = self.cfg.limit(t.api).max;
            if t.cost > limit {
                return Err(RateLimitError::CostAboveLimit {
                    api: t.api,
                    cost: t.cost,
                    limit,
                });
            }
        }
        Ok(())
    }

    fn note_grant(&self, takes: &[Take], via: Via, waited: Duration, did_wait: bool) {
        for t in takes {
            let c = &self.counters[t.api.idx()];
            c.grants.fetch_add(1, Ordering::Relaxed);
            if via == Via::Local {
                c.local_grants.fetch_add(1, Ordering::Relaxed);
            }
            if did_wait {
                c.waits.fetch_add(1, Ordering::Relaxed);
                c.wait_us
                    .fetch_add(waited.as_micros() as u64, Ordering::Relaxed);
            }
        }
    }

    fn grant(&self, takes: &[Take], token: u64, at_us: u64, via: Via, waited: Duration) -> Grant {
        let tokens = takes
            .iter()
            .find(|t| t.api == Api::LlmTokens)
            .map(|t| TokenHold {
                token,
                cost: t.cost,
            });
        Grant {
            waited,
            granted_at_us: at_us,
            via,
            tokens,
        }
    }

    /// One decision: this process's own pause, then Redis, then the local window.
    async fn decide(&self, takes: &[Take], token: u64) -> Decision {
        let group = takes[0].api.group();
        debug_assert!(takes.iter().all(|t| t.api.group() == group));
        if let Some(wait) = self.local_pause(group) {
            let via = if self.handle.is_some() && !self.degraded.load(Ordering::Relaxed) {
                Via::Redis
            } else {
                Via::Local
            };
            return Decision::Refused {
                wait,
                api: takes[0].api,
                via,
            };
        }
        if let Some(handle) = &self.handle {
            match self.decide_redis(handle, takes, token).await {
                Ok(decision) => {
                    if self.degraded.swap(false, Ordering::Relaxed) {
                        tracing::info!("redis is reachable again: rate limits are shared again");
                    }
                    return decision;
                }
                Err(e) => self.note_fallback(Some(&e)),
            }
        } else {
            self.note_fallback(None);
        }
        self.decide_local(takes, token)
    }

    fn note_fallback(&self, error: Option<&RedisUnavailable>) {
        if self.degraded.swap(true, Ordering::Relaxed) {
            return;
        }
        let why = error.map_or_else(
            || "redis is not configured for rate limits".to_string(),
            |e| e.to_string(),
        );
        if !FALLBACK_WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "rate limits are not shared ({why}): each process allows itself {:.0}% of every \
                 limit until redis is back",
                self.cfg.local_share.get() * 100.0
            );
        } else {
            tracing::info!("rate limits fall back to this process ({why})");
        }
    }

    async fn decide_redis(
        &self,
        handle: &RedisHandle,
        takes: &[Take],
        token: u64,
    ) -> Result<Decision, RedisUnavailable> {
        let mut inv = self.acquire_script.prepare_invoke();
        inv.key(&self.pause_keys[takes[0].api.group().idx()]);
        for t in takes {
            let keys = &self.limit_keys[t.api.idx()];
            inv.key(&keys.log).key(&keys.used);
        }
        inv.arg(format!("{token:016x}"));
        for t in takes {
            let limit = self.cfg.limit(t.api);
            inv.arg(limit.window.as_micros() as u64)
                .arg(limit.max)
                .arg(t.cost);
        }
        let inv = &inv;
        // Not idempotent: a retry after a lost reply could take the capacity twice.
        let (granted, wait_us, now_us, reason): (i64, i64, i64, i64) = handle
            .run(false, |mut c| async move { inv.invoke_async(&mut c).await })
            .await?;
        Ok(if granted == 1 {
            Decision::Granted {
                at_us: now_us.max(0) as u64,
                via: Via::Redis,
            }
        } else {
            let api = usize::try_from(reason - 1)
                .ok()
                .and_then(|i| takes.get(i))
                .unwrap_or(&takes[0])
                .api;
            Decision::Refused {
                wait: Duration::from_micros(wait_us.max(1) as u64),
                api,
                via: Via::Redis,
            }
        })
    }

    fn decide_local(&self, takes: &[Take], token: u64) -> Decision {
        let now = Instant::now();
        let mut local = self.local.lock().expect("poisoned");
        let mut worst: Option<(Duration, Api)> = None;
        for t in takes {
            let limit = self.cfg.limit(t.api);
            let max = self.cfg.local_share.of(limit.max);
            let window = &mut local.windows[t.api.idx()];
            if let Some(wait) = window.wait_for(now, limit.window, max, t.cost)
                && worst.is_none_or(|(w, _)| wait > w)
            {
                worst = Some((wait, t.api));
            }
        }
        if let Some((wait, api)) = worst {
            return Decision::Refused {
                wait,
                api,
                via: Via::Local,
            };
        }
        for t in takes {
            local.windows[t.api.idx()].push(now, t.cost, token);
        }
        Decision::Granted {
            at_us: self.anchor.1 + now.duration_since(self.anchor.0).as_micros() as u64,
            via: Via::Local,
        }
    }

    fn local_pause(&self, group: Group) -> Option<Duration> {
        let now = Instant::now();
        let mut local = self.local.lock().expect("poisoned");
        let slot = &mut local.paused_until[group.idx()];
        match *slot {
            Some(until) if until > now => Some(until - now),
            Some(_) => {
                *slot = None;
                None
            }
            None => None,
        }
    }
}

/// The member a grant has in a log; the cost rides in it so that pruning knows what to
/// subtract from the counter.
fn member(at_us: u64, token: u64, cost: u64) -> String {
    format!("{at_us}-{token:016x}:{cost}")
}

/// Up to a quarter of the wait (at least 1 ms, at most [`MAX_JITTER`]), so that waiters
/// refused together do not all come back in the same instant.
fn jitter(wait: Duration) -> Duration {
    let cap = (wait / 4).clamp(Duration::from_millis(1), MAX_JITTER);
    Duration::from_micros(rand::random_range(0..=cap.as_micros() as u64))
}

#[derive(Debug, Default)]
struct LocalState {
    windows: [LocalWindow; 4],
    paused_until: [Option<Instant>; 3],
}

/// The in-process sliding-window log used while Redis is unreachable: the same algorithm
/// as the script, over `tokio::time` so tests can pause and advance it.
#[derive(Debug, Default)]
struct LocalWindow {
    /// (grant time, cost, token), oldest first.
    entries: VecDeque<(Instant, u64, u64)>,
    used: u64,
}

impl LocalWindow {
    fn prune(&mut self, now: Instant, window: Duration) {
        while let Some(&(at, cost, _)) = self.entries.front() {
            if now.duration_since(at) < window {
                break;
            }
            self.entries.pop_front();
            self.used -= cost;
        }
    }

    /// `None` if `cost` fits now, else how long until it does. A cost above `max` (possible
    /// when `max` is only this process's share) is admitted alone into an empty window, so
    /// that a large request is slowed rather than refused for ever.
    fn wait_for(
        &mut self,
        now: Instant,
        window: Duration,
        max: u64,
        cost: u64,
    ) -> Option<Duration> {
        self.prune(now, window);
        if self.used == 0 || self.used + cost <= max {
            return None;
        }
        let need = (self.used + cost).saturating_sub(max).min(self.used);
        let mut freed = 0;
        for &(at, c, _) in &self.entries {
            freed += c;
            if freed >= need {
                return Some(
                    (at + window)
                        .saturating_duration_since(now)
                        .max(Duration::from_micros(1)),
                );
            }
        }
        // Unreachable (need ≤ used), but never promise less than a full window.
        Some(window)
    }

    fn push(&mut self, now: Instant, cost: u64, token: u64) {
        if cost > 0 {
            self.entries.push_back((now, cost, token));
            self.used += cost;
        }
    }

    /// Sets the cost of the entry `token` to `cost`; false if it has left the window.
    fn adjust(&mut self, now: Instant, window: Duration, token: u64, cost: u64) -> bool {
        self.prune(now, window);
        let Some(pos) = self.entries.iter().position(|e| e.2 == token) else {
            return false;
        };
        self.used = self.used - self.entries[pos].1 + cost;
        if cost == 0 {
            self.entries.remove(pos);
        } else {
            self.entries[pos].1 = cost;
        }
        true
    }
}

/// Reads an HTTP `Retry-After` value: a number of seconds, or an HTTP date (then the time
/// from now until it, zero if it has passed). `None` for anything else, so the caller uses
/// its default pause.
pub fn parse_retry_after(header: &str) -> Option<Duration> {
    parse_retry_after_at(header, SystemTime::now())
}

fn parse_retry_after_at(header: &str, now: SystemTime) -> Option<Duration> {
    let value = header.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    if value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        // Not in RFC 9110, but some providers send fractions.
        return value
            .parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok());
    }
    let at = http_date(value)?;
    let at = UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(at).ok()?))?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Seconds since the epoch of an HTTP date in any of the three formats RFC 9110 requires a
/// recipient to accept (IMF-fixdate, RFC 850, asctime).
fn http_date(value: &str) -> Option<i64> {
    if let Ok(d) = chrono::DateTime::parse_from_rfc2822(value) {
        return Some(d.timestamp());
    }
    ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(value, f).ok())
        .map(|d| d.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    // 784111777 = Sun, 06 Nov 1994 08:49:37 GMT (the RFC 9110 example).
    const EXAMPLE: u64 = 784_111_777;

    #[test]
    fn retry_after_in_seconds_is_read() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("1.5"), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn retry_after_as_an_http_date_is_the_time_until_it() {
        let now = at(EXAMPLE - 30);
        for value in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after_at(value, now),
                Some(Duration::from_secs(30)),
                "{value}"
            );
        }
    }

    #[test]
    fn retry_after_of_a_past_date_is_zero() {
        assert_eq!(
            parse_retry_after_at("Sun, 06 Nov 1994 08:49:37 GMT", at(EXAMPLE + 5)),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn malformed_retry_after_is_none() {
        for value in [
            "",
            "  ",
            "-1",
            "soon",
            "1e3",
            "1.2.3",
            "Sun, 32 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(value), None, "{value:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn local_window_admits_max_per_window_and_says_when_the_oldest_leaves() {
        let mut w = LocalWindow::default();
        let window = Duration::from_secs(1);
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(w.wait_for(Instant::now(), window, 3, 1), None);
            w.push(Instant::now(), 1, i);
            tokio::time::advance(Duration::from_millis(100)).await;
        }
        // Now t0 + 300 ms: the first entry leaves at t0 + 1 s.
        assert_eq!(
            w.wait_for(Instant::now(), window, 3, 1),
            Some(Duration::from_millis(700))
        );
        // Two units need the two oldest gone: t0 + 1.1 s.
        assert_eq!(
            w.wait_for(Instant::now(), window, 3, 2),
            Some(Duration::from_millis(800))
        );
        tokio::time::advance(Duration::from_millis(700)).await;
        assert_eq!(Instant::now() - t0, window);
        assert_eq!(w.wait_for(Instant::now(), window, 3, 1), None);
        assert_eq!(w.used, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn local_window_admits_a_cost_above_its_share_only_when_empty() {
        let mut w = LocalWindow::default();
        let window = Duration::from_secs(60);
        assert_eq!(w.wait_for(Instant::now(), window, 100, 250), None);
        w.push(Instant::now(), 250, 1);
        assert_eq!(
            w.wait_for(Instant::now(), window, 100, 1),
            Some(Duration::from_secs(60))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn local_window_adjust_changes_the_cost_in_the_window() {
        let mut w = LocalWindow::default();
        let window = Duration::from_secs(60);
        w.push(Instant::now(), 300, 7);
        assert!(w.adjust(Instant::now(), window, 7, 100));
        assert_eq!(w.used, 100);
        assert_eq!(w.wait_for(Instant::now(), window, 1000, 900), None);
        assert!(w.adjust(Instant::now(), window, 7, 0));
        assert_eq!(w.used, 0);
        assert!(!w.adjust(Instant::now(), window, 7, 5), "entry is gone");
    }

    fn limiter(cfg: RateLimitConfig) -> RateLimiter {
        RateLimiter::new(None, KeyBuilder::new("unit"), cfg)
    }

    #[tokio::test(start_paused = true)]
    async fn without_redis_a_process_allows_itself_its_share_per_window() {
        let rl = limiter(RateLimitConfig {
            textract_get: Limit::per_second(40),
            ..RateLimitConfig::default()
        });
        let mut stamps = Vec::new();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            let g = rl.acquire(Api::TextractGet, 1).await.unwrap();
            assert_eq!(g.via, Via::Local);
            stamps.push(g.granted_at_us);
        }
        // 10 per second (a quarter of 40): bursts at 0, 1 s, 2 s and 3 s.
        assert!(stamps.len() >= 30 && stamps.len() <= 40, "{}", stamps.len());
        for (i, s) in stamps.iter().enumerate() {
            let in_window = stamps[i..]
                .iter()
                .take_while(|t| **t < s + 1_000_000)
                .count();
            assert!(in_window <= 10, "{in_window} grants in one second");
        }
        let stats = &rl.stats()[Api::TextractGet.idx()];
        assert_eq!(stats.grants as usize, stamps.len());
        assert_eq!(stats.local_grants, stats.grants);
        assert!(stats.waits > 0);
    }

    #[tokio::test(start_paused = true)]
    async fn without_redis_a_throttle_pauses_this_process() {
        let rl = limiter(RateLimitConfig::default());
        let start = Instant::now();
        assert_eq!(
            rl.throttled(Api::LlmTokens, Some(Duration::from_secs(2)))
                .await,
            Duration::from_secs(2)
        );
        let g = rl.acquire_llm(10).await.unwrap();
        assert!(start.elapsed() >= Duration::from_secs(2));
        assert!(g.waited >= Duration::from_secs(2));
        // Other APIs are not paused.
        let g = rl.acquire(Api::TextractStart, 1).await.unwrap();
        assert_eq!(g.waited, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_shorter_than_the_wait_fails_without_sleeping_towards_it() {
        let rl = limiter(RateLimitConfig {
            textract_start: Limit::per_second(4),
            ..RateLimitConfig::default()
        });
        rl.acquire(Api::TextractStart, 1).await.unwrap();
        let err = rl
            .acquire_with_deadline(Api::TextractStart, 1, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            RateLimitError::DeadlineExceeded {
                api: Api::TextractStart,
                waited: Duration::ZERO
            }
        );
        assert!(err.is_retryable());
    }
}
