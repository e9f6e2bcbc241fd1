//! The result cache against the real Redis: codec, TTLs, corrupt values, errors, single
//! flight within a process, across connections and across processes, metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use lexpipe::redis::metrics::Delta;
use lexpipe::redis::{
    Cache, CacheBackend, CacheSpec, KeyBuilder, KeyPart, NamespaceStats, RedisBackend, RedisHandle,
    RedisUnavailable, Source,
};
use lexpipe_tests::{
    cache_over, cleanup, config_with, keys_of, raw_connection, redis_cache, require_redis,
    unique_env, wait_until,
};
use tokio::sync::{Notify, oneshot};

fn spec(cache: &Cache, id: &str) -> CacheSpec {
    CacheSpec {
        namespace: "itest",
        key: cache.keys().key("itest", 1, &[KeyPart::Id(id)]),
        schema: 1,
        ttl: Duration::from_secs(120),
    }
}

#[tokio::test]
async fn a_computed_value_is_served_from_redis_the_second_time() {
    require_redis().await;
    let env = unique_env("hit");
    let (cache, _) = redis_cache(&config_with(&env, &[]));
    let s = spec(&cache, "k");
    let calls = AtomicUsize::new(0);
    let compute = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok::<_, String>(vec!["Acme Corp.".to_string(), "§ 1983".to_string()])
    };
    let first = cache.get_or_compute(&s, compute).await.unwrap();
    let second = cache.get_or_compute(&s, compute).await.unwrap();
    assert_eq!(first.source, Source::Computed);
    assert_eq!(second.source, Source::Hit);
    assert_eq!(first.value, second.value);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    cleanup(&env).await;
}

#[tokio::test]
async fn large_values_are_stored_compressed_and_read_back_whole() {
    require_redis().await;
    let env = unique_env("zstd");
    let (cache, _) = redis_cache(&config_with(
        &env,
        &[("LEXPIPE_CACHE_COMPRESS_BYTES", "256")],
    ));
    let s = spec(&cache, "big");
    let text = "WHEREAS the Parties wish to set forth their agreement; ".repeat(200);
    let t = text.clone();
    cache
        .get_or_compute(&s, || async move { Ok::<_, String>(t) })
        .await
        .unwrap();
    let mut c = raw_connection().await;
    let raw: Vec<u8> = redis::cmd("GET")
        .arg(&s.key)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(&raw[..4], b"LXZ1", "stored compressed");
    assert!(raw.len() < text.len() / 5);
    let back = cache.get::<String>(&s).await;
    assert_eq!(back.as_deref(), Some(text.as_str()));
    cleanup(&env).await;
}

#[tokio::test]
async fn a_corrupt_value_is_a_miss_that_gets_recomputed_and_replaced() {
    require_redis().await;
    let env = unique_env("corrupt");
    let (cache, _) = redis_cache(&config_with(&env, &[]));
    let s = spec(&cache, "bad");
    let mut c = raw_connection().await;
    for garbage in [
        &b"not an envelope"[..],
        b"LXZ1\x00\x01\x02",
        b"LXJ1{\"v\":1,",
        b"",
    ] {
        let _: () = redis::cmd("SET")
            .arg(&s.key)
            .arg(garbage)
            .arg("EX")
            .arg(60)
            .query_async(&mut c)
            .await
            .unwrap();
        let got = cache
            .get_or_compute(&s, || async { Ok::<_, String>(7u32) })
            .await
            .unwrap();
        assert_eq!(got.value, 7);
        assert_eq!(
            got.source,
            Source::Computed,
            "garbage {garbage:?} must read as a miss"
        );
        let again = cache
            .get_or_compute(&s, || async { Ok::<_, String>(8u32) })
            .await
            .unwrap();
        assert_eq!(
            (again.value, again.source),
            (7, Source::Hit),
            "replaced by a good value"
        );
    }
    let stats = cache.local_stats();
    assert!(
        stats
            .iter()
            .any(|s| s.namespace == "itest" && s.corrupt >= 4),
        "{stats:?}"
    );
    cleanup(&env).await;
}

#[tokio::test]
async fn a_value_of_another_schema_version_is_a_miss() {
    require_redis().await;
    let env = unique_env("schema");
    let (cache, _) = redis_cache(&config_with(&env, &[]));
    let old = spec(&cache, "v");
    cache
        .get_or_compute(&old, || async { Ok::<_, String>("old shape".to_string()) })
        .await
        .unwrap();
    let new = CacheSpec {
        schema: 2,
        ..old.clone()
    };
    let got = cache
        .get_or_compute(&new, || async { Ok::<_, String>(vec![1u8, 2]) })
        .await
        .unwrap();
    assert_eq!(got.source, Source::Computed);
    assert_eq!(got.value, vec![1, 2]);
    cleanup(&env).await;
}

#[tokio::test]
async fn errors_are_returned_and_never_cached() {
    require_redis().await;
    let env = unique_env("err");
    let (cache, _) = redis_cache(&config_with(&env, &[]));
    let s = spec(&cache, "e");
    let r = cache
        .get_or_compute(&s, || async { Err::<u32, _>("textract said no") })
        .await;
    assert_eq!(r.unwrap_err(), "textract said no");
    let keys = keys_of(&env).await;
    assert!(
        keys.iter().all(|k| k.contains(":metrics:")),
        "nothing but counters written: {keys:?}"
    );
    let ok = cache
        .get_or_compute(&s, || async { Ok::<_, String>(1u32) })
        .await
        .unwrap();
    assert_eq!(ok.source, Source::Computed);
    cleanup(&env).await;
}

#[tokio::test]
async fn every_key_written_has_a_ttl_except_the_metrics_hashes() {
    require_redis().await;
    let env = unique_env("ttl");
    let (cache, _) = redis_cache(&config_with(&env, &[]));
    for i in 0..20 {
        let s = spec(&cache, &format!("k{i}"));
        cache
            .get_or_compute(&s, || async move { Ok::<_, String>(i) })
            .await
            .unwrap();
    }
    cache.flush_metrics().await;
    let mut c = raw_connection().await;
    let keys = keys_of(&env).await;
    assert!(keys.len() >= 21);
    for k in keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&k)
            .query_async(&mut c)
            .await
            .unwrap();
        if k.contains(":metrics:") {
            assert_eq!(ttl, -1, "metrics hashes are permanent: {k}");
        } else {
            assert!(ttl > 0, "{k} has no TTL ({ttl})");
        }
    }
    cleanup(&env).await;
}

/// `per_cache` callers on each cache ask for `id` at once. The computation finishes only
/// once every caller has missed (a caller counts its first miss before it queues or polls),
/// so all of them are concurrent misses however the tasks happen to be scheduled.
async fn concurrent_callers(
    caches: Vec<Arc<Cache>>,
    per_cache: usize,
    id: &str,
) -> (usize, Vec<Source>) {
    let callers = (caches.len() * per_cache) as i64;
    let all = Arc::new(caches.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for cache in caches {
        for _ in 0..per_cache {
            let (cache, calls, all) = (cache.clone(), calls.clone(), all.clone());
            let s = spec(&cache, id);
            set.spawn(async move {
                let r = cache
                    .get_or_compute(&s, || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        wait_until("every caller has missed", || misses(&all) == callers).await;
                        Ok::<_, String>("extracted".to_string())
                    })
                    .await
                    .unwrap();
                assert_eq!(r.value, "extracted");
                r.source
            });
        }
    }
    let mut sources = Vec::new();
    while let Some(r) = set.join_next().await {
        sources.push(r.unwrap());
    }
    (calls.load(Ordering::SeqCst), sources)
}

/// Misses of the test namespace counted by these caches (their own process's counters).
fn misses(caches: &[Arc<Cache>]) -> i64 {
    caches
        .iter()
        .flat_map(|c| c.local_stats())
        .filter(|s| s.namespace == "itest")
        .map(|s| s.misses)
        .sum()
}

/// The real Redis backend, reporting each lease it asks for and finds held by another
/// caller: that caller is then queued behind the holder, which a test can wait for.
struct ReportsHeldLeases {
    inner: RedisBackend,
    held: Arc<Notify>,
}

#[async_trait]
impl CacheBackend for ReportsHeldLeases {
    async fn get(&self, key: &str, flush: &[Delta]) -> Result<Option<Vec<u8>>, RedisUnavailable> {
        self.inner.get(key, flush).await
    }
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), RedisUnavailable> {
        self.inner.set(key, value, ttl).await
    }
    async fn try_lease(
        &self,
        lease: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, RedisUnavailable> {
        let taken = self.inner.try_lease(lease, token, ttl).await;
        if matches!(taken, Ok(false)) {
            self.held.notify_one();
        }
        taken
    }
    async fn release_lease(&self, lease: &str, token: &str) -> Result<(), RedisUnavailable> {
        self.inner.release_lease(lease, token).await
    }
    async fn flush(&self, deltas: &[Delta]) -> Result<(), RedisUnavailable> {
        self.inner.flush(deltas).await
    }
    async fn stats(&self) -> Result<Vec<NamespaceStats>, RedisUnavailable> {
        self.inner.stats().await
    }
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_misses_in_one_process_compute_once() {
    require_redis().await;
    let env = unique_env("sf1");
    let (cache, _) = redis_cache(&config_with(&env, &[]));
    let (calls, sources) = concurrent_callers(vec![cache], 32, "one").await;
    assert_eq!(calls, 1);
    assert_eq!(
        sources.iter().filter(|s| **s == Source::Computed).count(),
        1
    );
    assert_eq!(sources.len(), 32);
    cleanup(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_misses_over_two_connections_compute_once() {
    require_redis().await;
    let env = unique_env("sf2");
    let cfg = config_with(&env, &[]);
    let (a, _) = redis_cache(&cfg);
    let (b, _) = redis_cache(&cfg);
    let (calls, sources) = concurrent_callers(vec![a, b], 16, "two").await;
    assert_eq!(calls, 1);
    assert_eq!(sources.len(), 32);
    cleanup(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_the_lease_holder_fails_a_waiter_takes_over() {
    require_redis().await;
    let env = unique_env("sf3");
    let cfg = config_with(&env, &[]);
    let (a, _) = redis_cache(&cfg);
    let held = Arc::new(Notify::new());
    let b = cache_over(
        &cfg,
        Arc::new(ReportsHeldLeases {
            inner: RedisBackend::new(RedisHandle::new(&cfg).unwrap(), KeyBuilder::new(&env)),
            held: held.clone(),
        }),
    );
    let s = spec(&a, "handover");
    let (computing, a_holds_the_lease) = oneshot::channel();
    let failing = {
        let (a, s) = (a.clone(), s.clone());
        tokio::spawn(async move {
            a.get_or_compute(&s, || async move {
                computing.send(()).unwrap();
                // Fail only once the other caller is queued behind this lease.
                held.notified().await;
                Err::<String, _>("OCR engine crashed".to_string())
            })
            .await
        })
    };
    a_holds_the_lease.await.unwrap();
    let waiter = b
        .get_or_compute(&s, || async { Ok::<_, String>("second try".to_string()) })
        .await
        .unwrap();
    assert!(failing.await.unwrap().is_err());
    assert_eq!(waiter.value, "second try");
    assert_eq!(waiter.source, Source::Computed);
    cleanup(&env).await;
}

fn child() -> &'static str {
    env!("CARGO_BIN_EXE_lexpipe-test-child")
}

#[tokio::test]
async fn single_flight_holds_across_separate_processes() {
    require_redis().await;
    let env = unique_env("sfp");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("computations.log");
    let spawn = || {
        tokio::process::Command::new(child())
            .args([
                "single-flight",
                &env,
                "shared-key",
                "8",
                log.to_str().unwrap(),
            ])
            .env("REDIS_URL", lexpipe_tests::redis_url())
            .status()
    };
    let (a, b) = tokio::join!(spawn(), spawn());
    assert!(a.unwrap().success() && b.unwrap().success());
    let lines = std::fs::read_to_string(&log).unwrap();
    assert_eq!(lines.lines().count(), 1, "computed more than once: {lines}");
    cleanup(&env).await;
}

#[tokio::test]
async fn metrics_from_two_processes_add_up_in_redis() {
    require_redis().await;
    let env = unique_env("metrics");
    let spawn = |hits: &str, misses: &str| {
        tokio::process::Command::new(child())
            .args(["metrics", &env, hits, misses])
            .env("REDIS_URL", lexpipe_tests::redis_url())
            .status()
    };
    let (a, b) = tokio::join!(spawn("50", "10"), spawn("30", "5"));
    assert!(a.unwrap().success() && b.unwrap().success());
    let (cache, _) = redis_cache(&config_with(&env, &[]));
    let stats = cache.stats().await.unwrap();
    let it = stats
        .iter()
        .find(|s| s.namespace == "itest")
        .expect("itest counters");
    // Each process also looks up "present" once (a miss for the first, a hit or a wait
    // for the second), then makes its own hits and misses.
    assert_eq!(it.hits + it.misses, 50 + 10 + 30 + 5 + 2);
    assert!(it.hits >= 80 && it.hits <= 81, "hits {}", it.hits);
    assert!(it.misses >= 16 && it.misses <= 17, "misses {}", it.misses);
    assert_eq!(
        it.fills, 16,
        "15 distinct misses and one shared key, each computed once"
    );
    assert_eq!(it.waits, it.misses - 16);
    cleanup(&env).await;
}
