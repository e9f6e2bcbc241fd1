//! Fail open: with Redis gone or hanging, work completes without the cache, and the
//! circuit breaker keeps the cost of the dead Redis to a bounded number of attempts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lexpipe::app::App;
use lexpipe::model::DocumentStatus;
use lexpipe::redis::{CacheSpec, KeyPart, RedisStatus, Source};
use lexpipe::runner::{self, RunOptions};
use lexpipe_tests::{CLOSED_PORT_URL, config_with, redis_cache, samples_dir, unique_env};

fn spec(cache: &lexpipe::redis::Cache, id: &str) -> CacheSpec {
    CacheSpec {
        namespace: "itest",
        key: cache.keys().key("itest", 1, &[KeyPart::Id(id)]),
        schema: 1,
        ttl: Duration::from_secs(60),
    }
}

#[tokio::test]
async fn with_redis_on_a_closed_port_every_call_computes_and_connection_attempts_stay_bounded() {
    // Arrange: breaker opens after 3 failures and stays open for a minute.
    let cfg = config_with(
        &unique_env("down"),
        &[
            ("REDIS_URL", CLOSED_PORT_URL),
            ("LEXPIPE_BREAKER_FAILURES", "3"),
            ("LEXPIPE_BREAKER_COOLDOWN_MS", "60000"),
        ],
    );
    let (cache, handle) = redis_cache(&cfg);
    let calls = AtomicUsize::new(0);
    // Act
    for i in 0..500 {
        let r = cache
            .get_or_compute(&spec(&cache, &format!("k{i}")), || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>(i)
            })
            .await
            .unwrap();
        assert_eq!(r.value, i);
        assert_eq!(r.source, Source::Computed);
    }
    // Assert
    assert_eq!(calls.load(Ordering::SeqCst), 500);
    assert!(
        handle.connect_attempts() <= 3,
        "breaker should stop connection attempts, saw {}",
        handle.connect_attempts()
    );
    assert!(handle.breaker().is_open());
    let errors: i64 = cache.local_stats().iter().map(|s| s.errors).sum();
    assert_eq!(errors, 500, "each call counted as a cache error");
}

/// A server that accepts connections and never answers: Redis hung, not dead.
async fn black_hole() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    (format!("redis://{addr}"), task)
}

#[tokio::test]
async fn with_redis_hanging_calls_time_out_then_the_breaker_skips_it() {
    let (url, server) = black_hole().await;
    let cfg = config_with(
        &unique_env("hang"),
        &[
            ("REDIS_URL", url.as_str()),
            ("REDIS_CONNECT_TIMEOUT_MS", "100"),
            ("REDIS_RESPONSE_TIMEOUT_MS", "100"),
            ("LEXPIPE_BREAKER_FAILURES", "2"),
            ("LEXPIPE_BREAKER_COOLDOWN_MS", "60000"),
        ],
    );
    let (cache, handle) = redis_cache(&cfg);
    for i in 0..200u32 {
        let r = cache
            .get_or_compute(&spec(&cache, "k"), || async move { Ok::<_, String>(i) })
            .await
            .unwrap();
        assert_eq!(r.value, i);
    }
    assert!(handle.breaker().is_open());
    assert!(
        handle.connect_attempts() <= 2,
        "attempts {}",
        handle.connect_attempts()
    );
    server.abort();
}

#[tokio::test]
async fn the_pipeline_completes_every_sample_with_redis_down() {
    // Arrange: a Redis-backed cache pointing at nothing (as in hybrid/cloud, no fallback).
    let cfg = config_with(
        &unique_env("pipe-down"),
        &[
            ("REDIS_URL", CLOSED_PORT_URL),
            ("LEXPIPE_BREAKER_FAILURES", "3"),
        ],
    );
    let (cache, handle) = redis_cache(&cfg);
    let out = tempfile::tempdir().unwrap();
    let deps = App::with_folder(Arc::new(cfg), cache, out.path());
    let inputs = runner::collect_inputs(&[samples_dir()]).unwrap();
    let opts = RunOptions {
        out_dir: out.path().to_path_buf(),
        ..RunOptions::default()
    };
    // Act
    let summary = runner::process(&deps, &inputs, &opts, &|_| {})
        .await
        .unwrap();
    // Assert
    assert!(summary.documents.len() >= 9);
    for d in &summary.documents {
        assert_eq!(
            d.status,
            DocumentStatus::Completed,
            "{}: {:?}",
            d.source,
            d.error
        );
        assert!(d.entities > 0, "{} found no entities", d.source);
    }
    assert_eq!(summary.cache.hits, 0);
    assert!(summary.cache.errors > 0, "{:?}", summary.cache);
    // Hundreds of cache operations, yet only the attempts made before the breaker opened:
    // at most its threshold plus the callers already past it (one per concurrent document).
    let bound = 3 + opts.concurrency as u64;
    assert!(
        handle.connect_attempts() <= bound,
        "attempts {} > {bound}",
        handle.connect_attempts()
    );
    let operations = summary.cache.errors;
    assert!(
        operations > 5 * bound as i64,
        "only {operations} operations"
    );
}

#[tokio::test]
async fn in_the_local_stage_an_unreachable_redis_falls_back_to_the_in_process_cache() {
    let cfg = config_with(&unique_env("fallback"), &[("REDIS_URL", CLOSED_PORT_URL)]);
    let setup = lexpipe_tests::app_for(&cfg).await;
    assert_eq!(setup.redis_status, RedisStatus::Unavailable);
    assert_eq!(setup.cache.backend_kind(), "memory");
    // And the in-process cache really caches.
    let s = spec(&setup.cache, "k");
    let first = setup
        .cache
        .get_or_compute(&s, || async { Ok::<_, String>(1) })
        .await
        .unwrap();
    let second = setup
        .cache
        .get_or_compute(&s, || async { Ok::<_, String>(2) })
        .await
        .unwrap();
    assert_eq!(
        (first.source, second.source, second.value),
        (Source::Computed, Source::Hit, 1)
    );
}

#[tokio::test]
async fn in_the_hybrid_stage_an_unreachable_redis_keeps_the_redis_cache_failing_open() {
    let cfg = config_with(
        &unique_env("hybrid"),
        &[("REDIS_URL", CLOSED_PORT_URL), ("LEXPIPE_STAGE", "hybrid")],
    );
    let setup = lexpipe_tests::app_for(&cfg).await;
    assert_eq!(setup.redis_status, RedisStatus::Unavailable);
    assert_eq!(setup.cache.backend_kind(), "redis");
}

/// A TCP proxy to the real Redis that can be frozen: connections stay open but nothing
/// is forwarded, as when a Redis host stalls.
async fn freezable_proxy() -> (String, Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::AtomicBool;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let frozen = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = lexpipe_tests::redis_url()
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_string();
    let f = frozen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            let f1 = f.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = cr.read(&mut buf).await {
                    if n == 0 || f1.load(Ordering::SeqCst) {
                        // Frozen: swallow requests and hold the socket open.
                        if n == 0 {
                            break;
                        }
                        continue;
                    }
                    if sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = sr.read(&mut buf).await {
                    if n == 0 || cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (format!("redis://{addr}"), frozen)
}

#[tokio::test]
async fn after_repeated_timeouts_the_connection_is_rebuilt_and_recovers() {
    // Arrange: a connection through a proxy that we can stall; a breaker that stays
    // closed, so that the rebuild is what recovers.
    lexpipe_tests::require_redis().await;
    let (url, frozen) = freezable_proxy().await;
    let env = unique_env("rebuild");
    let cfg = config_with(
        &env,
        &[
            ("REDIS_URL", url.as_str()),
            ("REDIS_RESPONSE_TIMEOUT_MS", "100"),
            ("REDIS_CONNECT_TIMEOUT_MS", "200"),
            ("LEXPIPE_BREAKER_FAILURES", "1000"),
        ],
    );
    let (cache, handle) = redis_cache(&cfg);
    let s = spec(&cache, "k");
    cache
        .get_or_compute(&s, || async { Ok::<_, String>(1u32) })
        .await
        .unwrap();
    assert_eq!(handle.connect_attempts(), 1);

    // Act: Redis stalls; every call times out, computes, and carries on.
    frozen.store(true, Ordering::SeqCst);
    for _ in 0..4 {
        let r = cache
            .get_or_compute(&s, || async { Ok::<_, String>(2u32) })
            .await
            .unwrap();
        assert_eq!(r.source, Source::Computed);
    }
    assert!(handle.rebuilds() >= 1, "the stalled connection is dropped");

    // Redis answers again: the next call connects anew and is served from the cache.
    frozen.store(false, Ordering::SeqCst);
    let r = cache
        .get_or_compute(&s, || async { Ok::<_, String>(3u32) })
        .await
        .unwrap();
    assert_eq!((r.source, r.value), (Source::Hit, 1));
    assert!(handle.connect_attempts() >= 2, "a new connection was made");
    lexpipe_tests::cleanup(&env).await;
}
