//! Result cache with single flight, metrics and fail-open behaviour.
//!
//! [`Cache::get_or_compute`] is the one way stages cache work:
//!
//! 1. Read the key. A decodable value of the expected schema is a hit. A corrupt value or
//!    one of another schema is a miss (logged once per namespace), never an error.
//! 2. On a miss, tasks of this process queue on a per-key async mutex, and processes take
//!    a short lease (`SET {key}:lease token NX PX lease`): the holder computes, writes the
//!    value with its TTL, and releases the lease (compare-and-delete script); the others
//!    poll the key with growing pauses and read the value. A holder that fails releases
//!    the lease and the next waiter takes over; a holder that dies lets it expire.
//! 3. Errors of the computation are returned and never cached.
//! 4. Redis down or slow (or its circuit breaker open): compute and carry on.
//!
//! The backend is a trait so that the same logic runs over Redis or, in `local` without
//! Redis and in unit tests, over an in-process map ([`MemoryBackend`]).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Serialize, de::DeserializeOwned};

use super::codec::{Codec, EncodeError};
use super::conn::{RedisHandle, RedisUnavailable};
use super::keys::KeyBuilder;
use super::metrics::{Counter, Counters, Delta, NamespaceStats};

/// How often counters ride along with a read.
const METRICS_FLUSH_INTERVAL: Duration = Duration::from_millis(250);
/// First and longest pause between polls while another process computes.
const WAIT_FIRST: Duration = Duration::from_millis(2);
const WAIT_MAX: Duration = Duration::from_millis(50);

/// Storage underneath a [`Cache`]: Redis, or a map in this process.
#[async_trait]
pub trait CacheBackend: Send + Sync + 'static {
    /// Reads `key`, sending `flush` (counter deltas) in the same round trip.
    async fn get(&self, key: &str, flush: &[Delta]) -> Result<Option<Vec<u8>>, RedisUnavailable>;
    /// Writes `value` with `ttl` (always set).
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), RedisUnavailable>;
    /// `SET lease token NX PX ttl`: true if taken.
    async fn try_lease(
        &self,
        lease: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, RedisUnavailable>;
    /// Deletes `lease` if it still holds `token`.
    async fn release_lease(&self, lease: &str, token: &str) -> Result<(), RedisUnavailable>;
    /// Sends counter deltas now.
    async fn flush(&self, deltas: &[Delta]) -> Result<(), RedisUnavailable>;
    /// Counters summed over every process, per namespace.
    async fn stats(&self) -> Result<Vec<NamespaceStats>, RedisUnavailable>;
    /// `redis` or `memory`.
    fn kind(&self) -> &'static str;
}

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Read from the cache.
    Hit,
    /// Another task or process computed it while this one waited.
    Waited,
    /// Computed here.
    Computed,
}

impl Source {
    /// True when this call did not compute (a hit or a single-flight wait).
    pub fn is_cached(self) -> bool {
        !matches!(self, Source::Computed)
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Cached<T> {
    pub value: T,
    pub source: Source,
}

/// What to cache and for how long.
#[derive(Debug, Clone)]
pub struct CacheSpec {
    /// Counter namespace, e.g. `ocr`; a constant.
    pub namespace: &'static str,
    /// The full key, from [`KeyBuilder`].
    pub key: String,
    /// Schema version of the payload; another version reads as a miss.
    pub schema: u32,
    /// Time to live of the entry (at least one second).
    pub ttl: Duration,
}

/// The cache of one process; share it behind an `Arc`.
pub struct Cache {
    backend: Arc<dyn CacheBackend>,
    codec: Codec,
    keys: KeyBuilder,
    lease: Duration,
    counters: Counters,
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    warned: Mutex<HashSet<&'static str>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("backend", &self.backend.kind())
            .field("prefix", &self.keys.prefix())
            .finish_non_exhaustive()
    }
}

impl Cache {
    pub fn new(
        backend: Arc<dyn CacheBackend>,
        codec: Codec,
        keys: KeyBuilder,
        lease: Duration,
    ) -> Cache {
        Cache {
            backend,
            codec,
            keys,
            lease: lease.max(Duration::from_millis(100)),
            counters: Counters::new(METRICS_FLUSH_INTERVAL),
            inflight: Mutex::new(HashMap::new()),
            warned: Mutex::new(HashSet::new()),
        }
    }

    /// The key builder of this deployment.
    pub fn keys(&self) -> &KeyBuilder {
        &self.keys
    }

    /// `redis` or `memory`.
    pub fn backend_kind(&self) -> &'static str {
        self.backend.kind()
    }

    /// Returns the cached value of `spec.key`, or runs `compute` once (across the tasks of
    /// this process and across processes sharing the Redis) and caches its success.
    ///
    /// # Errors
    /// Only `compute`'s own error; cache trouble is never an error.
    pub async fn get_or_compute<T, E, F, Fut>(
        &self,
        spec: &CacheSpec,
        compute: F,
    ) -> Result<Cached<T>, E>
    where
        T: Serialize + DeserializeOwned + Send,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        match self.read::<T>(spec).await {
            Read::Hit(value) => {
                self.counters.incr(spec.namespace, Counter::Hit);
                return Ok(Cached {
                    value,
                    source: Source::Hit,
                });
            }
            Read::Unavailable => return self.compute_uncached(spec, compute).await,
            Read::Miss => self.counters.incr(spec.namespace, Counter::Miss),
        }

        // In-process single flight: one task per key goes further at a time. A task that
        // had to queue reads again first: the one before it has probably filled the key.
        let slot = self.inflight_slot(&spec.key);
        let result = {
            let (_turn, queued) = match slot.try_lock() {
                Ok(guard) => (guard, false),
                Err(_) => (slot.lock().await, true),
            };
            self.miss_path(spec, compute, queued).await
        };
        self.release_slot(&spec.key, slot);
        result
    }

    async fn miss_path<T, E, F, Fut>(
        &self,
        spec: &CacheSpec,
        compute: F,
        read_first: bool,
    ) -> Result<Cached<T>, E>
    where
        T: Serialize + DeserializeOwned + Send,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let lease_key = format!("{}:lease", spec.key);
        let token = format!("{:032x}", rand::random::<u128>());
        let deadline = tokio::time::Instant::now() + self.lease + self.lease / 2;
        let mut pause = WAIT_FIRST;
        let mut read = read_first;
        loop {
            if read {
                // Someone may have filled it while we queued or slept.
                match self.read::<T>(spec).await {
                    Read::Hit(value) => {
                        self.counters.incr(spec.namespace, Counter::Wait);
                        return Ok(Cached {
                            value,
                            source: Source::Waited,
                        });
                    }
                    Read::Unavailable => return self.compute_uncached(spec, compute).await,
                    Read::Miss => {}
                }
            }
            read = true;
            match self.backend.try_lease(&lease_key, &token, self.lease).await {
                Ok(true) => {
                    // Another process may have filled the key and released its lease
                    // between our read and our lease: check once more before computing.
                    if let Read::Hit(value) = self.read::<T>(spec).await {
                        let _ = self.backend.release_lease(&lease_key, &token).await;
                        self.counters.incr(spec.namespace, Counter::Wait);
                        return Ok(Cached {
                            value,
                            source: Source::Waited,
                        });
                    }
                    return self
                        .compute_and_fill(spec, &lease_key, &token, compute)
                        .await;
                }
                Ok(false) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(jittered(pause)).await;
                    pause = (pause * 2).min(WAIT_MAX);
                }
                Ok(false) => {
                    // The holder has overrun its lease by half again: compute ourselves.
                    tracing::warn!(
                        namespace = spec.namespace,
                        "single-flight wait timed out; computing"
                    );
                    return self
                        .compute_and_fill(spec, &lease_key, &token, compute)
                        .await;
                }
                Err(_) => return self.compute_uncached(spec, compute).await,
            }
        }
    }

    async fn compute_uncached<T, E, F, Fut>(
        &self,
        spec: &CacheSpec,
        compute: F,
    ) -> Result<Cached<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.counters.incr(spec.namespace, Counter::Error);
        let value = compute().await?;
        Ok(Cached {
            value,
            source: Source::Computed,
        })
    }

    async fn compute_and_fill<T, E, F, Fut>(
        &self,
        spec: &CacheSpec,
        lease_key: &str,
        token: &str,
        compute: F,
    ) -> Result<Cached<T>, E>
    where
        T: Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let value = match compute().await {
            Ok(v) => v,
            Err(e) => {
                let _ = self.backend.release_lease(lease_key, token).await;
                return Err(e);
            }
        };
        match self.codec.encode(spec.schema, &value) {
            Ok(bytes) => {
                let ttl = spec.ttl.max(Duration::from_secs(1));
                match self.backend.set(&spec.key, &bytes, ttl).await {
                    Ok(()) => self.counters.incr(spec.namespace, Counter::Fill),
                    Err(_) => self.counters.incr(spec.namespace, Counter::Error),
                }
            }
            Err(EncodeError::TooLarge { size, cap }) => {
                self.counters.incr(spec.namespace, Counter::Oversize);
                tracing::debug!(
                    namespace = spec.namespace,
                    size,
                    cap,
                    "value too large to cache"
                );
            }
            Err(EncodeError::Serialize(e)) => {
                self.counters.incr(spec.namespace, Counter::Error);
                tracing::warn!(namespace = spec.namespace, error = %e, "value does not serialise; not cached");
            }
        }
        let _ = self.backend.release_lease(lease_key, token).await;
        Ok(Cached {
            value,
            source: Source::Computed,
        })
    }

    /// Writes `value` under `spec` with `spec.ttl`, outside single flight: for a value
    /// whose lifetime is known only once it is computed (a Textract job's status lives
    /// seconds while it runs and hours once it is done). Best effort: cache trouble is
    /// counted, never an error.
    pub async fn put<T: Serialize>(&self, spec: &CacheSpec, value: &T) {
        let Ok(bytes) = self.codec.encode(spec.schema, value) else {
            self.counters.incr(spec.namespace, Counter::Oversize);
            return;
        };
        let ttl = spec.ttl.max(Duration::from_millis(1));
        match self.backend.set(&spec.key, &bytes, ttl).await {
            Ok(()) => self.counters.incr(spec.namespace, Counter::Fill),
            Err(_) => self.counters.incr(spec.namespace, Counter::Error),
        }
    }

    /// Reads and decodes without computing. A hit counts as a hit; anything else as a miss.
    pub async fn get<T: DeserializeOwned>(&self, spec: &CacheSpec) -> Option<T> {
        match self.read::<T>(spec).await {
            Read::Hit(v) => {
                self.counters.incr(spec.namespace, Counter::Hit);
                Some(v)
            }
            Read::Miss => {
                self.counters.incr(spec.namespace, Counter::Miss);
                None
            }
            Read::Unavailable => {
                self.counters.incr(spec.namespace, Counter::Error);
                None
            }
        }
    }

    async fn read<T: DeserializeOwned>(&self, spec: &CacheSpec) -> Read<T> {
        let flush = self.counters.take_due();
        match self.backend.get(&spec.key, &flush).await {
            Ok(Some(bytes)) => match self.codec.decode::<T>(spec.schema, &bytes) {
                Ok(v) => Read::Hit(v),
                Err(e) => {
                    self.counters.incr(spec.namespace, Counter::Corrupt);
                    if self.warned.lock().expect("poisoned").insert(spec.namespace) {
                        tracing::warn!(
                            namespace = spec.namespace,
                            error = %e,
                            "unreadable cache value treated as a miss (further ones are counted, not logged)"
                        );
                    }
                    Read::Miss
                }
            },
            Ok(None) => Read::Miss,
            Err(_) => {
                if !flush.is_empty() {
                    self.counters.restore(flush);
                }
                Read::Unavailable
            }
        }
    }

    fn inflight_slot(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.inflight.lock().expect("poisoned");
        map.entry(key.to_string()).or_default().clone()
    }

    fn release_slot(&self, key: &str, slot: Arc<tokio::sync::Mutex<()>>) {
        let mut map = self.inflight.lock().expect("poisoned");
        // Under the map lock nobody can clone the slot, so a count of 2 (the map and us)
        // means no other task is queued on it.
        if Arc::strong_count(&slot) == 2 {
            map.remove(key);
        }
    }

    /// Sends the counters accumulated so far (call at the end of a run).
    pub async fn flush_metrics(&self) {
        let deltas = self.counters.take_all();
        if deltas.is_empty() {
            return;
        }
        if self.backend.flush(&deltas).await.is_err() {
            self.counters.restore(deltas);
        }
    }

    /// Counters over every process (from Redis, or this process for the memory backend).
    ///
    /// # Errors
    /// Redis unreachable.
    pub async fn stats(&self) -> Result<Vec<NamespaceStats>, RedisUnavailable> {
        self.flush_metrics().await;
        self.backend.stats().await
    }

    /// What this process counted since it started.
    pub fn local_stats(&self) -> Vec<NamespaceStats> {
        self.counters.totals()
    }
}

enum Read<T> {
    Hit(T),
    Miss,
    Unavailable,
}

fn jittered(d: Duration) -> Duration {
    let ms = d.as_micros() as u64;
    Duration::from_micros(ms / 2 + rand::random_range(0..=ms))
}

/// The Redis backend.
#[derive(Debug, Clone)]
pub struct RedisBackend {
    handle: RedisHandle,
    keys: KeyBuilder,
    release: Arc<redis::Script>,
}

impl RedisBackend {
    pub fn new(handle: RedisHandle, keys: KeyBuilder) -> RedisBackend {
        RedisBackend {
            handle,
            keys,
            release: Arc::new(redis::Script::new(include_str!("release_lease.lua"))),
        }
    }

    pub fn handle(&self) -> &RedisHandle {
        &self.handle
    }

    fn add_deltas(&self, pipe: &mut redis::Pipeline, deltas: &[Delta]) {
        for d in deltas {
            pipe.cmd("HINCRBY")
                .arg(self.keys.metrics(d.namespace))
                .arg(d.field)
                .arg(d.by)
                .ignore();
        }
    }
}

#[async_trait]
impl CacheBackend for RedisBackend {
    async fn get(&self, key: &str, flush: &[Delta]) -> Result<Option<Vec<u8>>, RedisUnavailable> {
        if !flush.is_empty() && self.handle.is_cluster() {
            // The value and the counters live in different slots: a cluster takes no
            // pipeline across slots, so the counters go on their own, at the same time.
            let (value, _) = tokio::join!(self.get(key, &[]), self.flush(flush));
            return value;
        }
        if flush.is_empty() {
            return self
                .handle
                .run(true, |mut c| async move {
                    redis::cmd("GET")
                        .arg(key)
                        .query_async::<Option<Vec<u8>>>(&mut c)
                        .await
                })
                .await;
        }
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(key);
        self.add_deltas(&mut pipe, flush);
        let pipe = &pipe;
        // Not retried: a retry could count the deltas twice.
        self.handle
            .run(false, |mut c| async move {
                let (v,): (Option<Vec<u8>>,) = pipe.query_async(&mut c).await?;
                Ok(v)
            })
            .await
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), RedisUnavailable> {
        let ms = ttl.as_millis().max(1) as u64;
        self.handle
            .run(true, |mut c| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("PX")
                    .arg(ms)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await
    }

    async fn try_lease(
        &self,
        lease: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, RedisUnavailable> {
        let ms = ttl.as_millis().max(1) as u64;
        self.handle
            .run(false, |mut c| async move {
                let r: Option<String> = redis::cmd("SET")
                    .arg(lease)
                    .arg(token)
                    .arg("NX")
                    .arg("PX")
                    .arg(ms)
                    .query_async(&mut c)
                    .await?;
                Ok(r.is_some())
            })
            .await
    }

    async fn release_lease(&self, lease: &str, token: &str) -> Result<(), RedisUnavailable> {
        let script = &self.release;
        self.handle
            .run(true, |mut c| async move {
                script
                    .key(lease)
                    .arg(token)
                    .invoke_async::<i64>(&mut c)
                    .await
                    .map(|_| ())
            })
            .await
    }

    async fn flush(&self, deltas: &[Delta]) -> Result<(), RedisUnavailable> {
        // One pipeline per counters hash: in a cluster each hash is in its own slot, and a
        // pipeline must stay in one (standalone Redis takes them all at once).
        let groups: Vec<Vec<Delta>> = if self.handle.is_cluster() {
            let mut by_ns: Vec<Vec<Delta>> = Vec::new();
            for d in deltas {
                match by_ns.iter_mut().find(|g| g[0].namespace == d.namespace) {
                    Some(g) => g.push(d.clone()),
                    None => by_ns.push(vec![d.clone()]),
                }
            }
            by_ns
        } else {
            vec![deltas.to_vec()]
        };
        let sends = groups.iter().map(|group| async move {
            let mut pipe = redis::pipe();
            self.add_deltas(&mut pipe, group);
            let pipe = &pipe;
            self.handle
                .run(false, |mut c| async move {
                    pipe.query_async::<()>(&mut c).await
                })
                .await
        });
        futures::future::join_all(sends)
            .await
            .into_iter()
            .collect::<Result<Vec<()>, _>>()
            .map(|_| ())
    }

    async fn stats(&self) -> Result<Vec<NamespaceStats>, RedisUnavailable> {
        let keys = self.handle.scan_keys(&self.keys.pattern("metrics")).await?;
        let prefix = self.keys.metrics_prefix();
        let mut out = Vec::new();
        for key in keys {
            let hash: HashMap<String, i64> = self
                .handle
                .run(true, |mut c| {
                    let key = key.clone();
                    async move { redis::cmd("HGETALL").arg(key).query_async(&mut c).await }
                })
                .await?;
            let ns = key.strip_prefix(&prefix).unwrap_or(&key);
            out.push(NamespaceStats::from_hash(ns, &hash));
        }
        out.sort_by(|a, b| a.namespace.cmp(&b.namespace));
        Ok(out)
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

/// In-process backend: for `local` without Redis, and for unit tests. Expiry follows
/// `tokio::time`, so tests can pause and advance it.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    entries: Mutex<HashMap<String, (Vec<u8>, tokio::time::Instant)>>,
    counters: Mutex<HashMap<String, HashMap<String, i64>>>,
}

impl MemoryBackend {
    pub fn new() -> MemoryBackend {
        MemoryBackend::default()
    }

    /// Remaining time to live of a key, if present (tests check every write has one).
    pub fn ttl(&self, key: &str) -> Option<Duration> {
        let entries = self.entries.lock().expect("poisoned");
        entries
            .get(key)
            .map(|(_, exp)| exp.saturating_duration_since(tokio::time::Instant::now()))
    }

    fn live_get(&self, key: &str) -> Option<Vec<u8>> {
        let mut entries = self.entries.lock().expect("poisoned");
        match entries.get(key) {
            Some((v, exp)) if *exp > tokio::time::Instant::now() => Some(v.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }
}

#[async_trait]
impl CacheBackend for MemoryBackend {
    async fn get(&self, key: &str, flush: &[Delta]) -> Result<Option<Vec<u8>>, RedisUnavailable> {
        if !flush.is_empty() {
            self.flush(flush).await?;
        }
        Ok(self.live_get(key))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), RedisUnavailable> {
        let exp = tokio::time::Instant::now() + ttl;
        self.entries
            .lock()
            .expect("poisoned")
            .insert(key.to_string(), (value.to_vec(), exp));
        Ok(())
    }

    async fn try_lease(
        &self,
        lease: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, RedisUnavailable> {
        if self.live_get(lease).is_some() {
            return Ok(false);
        }
        self.set(lease, token.as_bytes(), ttl).await?;
        Ok(true)
    }

    async fn release_lease(&self, lease: &str, token: &str) -> Result<(), RedisUnavailable> {
        let mut entries = self.entries.lock().expect("poisoned");
        if entries
            .get(lease)
            .is_some_and(|(v, _)| v == token.as_bytes())
        {
            entries.remove(lease);
        }
        Ok(())
    }

    async fn flush(&self, deltas: &[Delta]) -> Result<(), RedisUnavailable> {
        let mut counters = self.counters.lock().expect("poisoned");
        for d in deltas {
            *counters
                .entry(d.namespace.to_string())
                .or_default()
                .entry(d.field.to_string())
                .or_default() += d.by;
        }
        Ok(())
    }

    async fn stats(&self) -> Result<Vec<NamespaceStats>, RedisUnavailable> {
        let counters = self.counters.lock().expect("poisoned");
        let mut out: Vec<NamespaceStats> = counters
            .iter()
            .map(|(ns, h)| NamespaceStats::from_hash(ns, h))
            .collect();
        out.sort_by(|a, b| a.namespace.cmp(&b.namespace));
        Ok(out)
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
