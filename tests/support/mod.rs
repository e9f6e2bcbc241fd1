//! Shared helpers for the integration tests: a real Redis (required, never skipped), one
//! key prefix per test, configurations, the shipped samples, and a child process binary
//! for the cross-process tests. [`moto`] runs a local S3.

pub mod aws;
pub mod cluster;
pub mod moto;
pub mod pg;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lexpipe::config::Config;
use lexpipe::redis::{Cache, CacheBackend, Codec, KeyBuilder, RedisBackend, RedisHandle};

/// The Redis the tests use: `LEXPIPE_TEST_REDIS_URL`, else `REDIS_URL`, else local.
pub fn redis_url() -> String {
    std::env::var("LEXPIPE_TEST_REDIS_URL")
        .or_else(|_| std::env::var("REDIS_URL"))
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string())
}

/// A URL where nothing listens (port 1 is reserved and closed on test machines).
pub const CLOSED_PORT_URL: &str = "redis://127.0.0.1:1";

/// True when the tests run against a Redis Cluster: `LEXPIPE_TEST_REDIS_CLUSTER`, set by
/// the cluster pass of `scripts/test.sh` together with `LEXPIPE_TEST_REDIS_URL`. Every
/// configuration the tests build then has `LEXPIPE_REDIS_CLUSTER=true`.
pub fn redis_cluster() -> bool {
    std::env::var("LEXPIPE_TEST_REDIS_CLUSTER")
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// The Redis variables a child process needs to reach the tests' Redis (cluster mode
/// included), for tests that start `lexpipe` or the functions as processes.
pub fn redis_env() -> Vec<(&'static str, String)> {
    vec![
        ("REDIS_URL", redis_url()),
        ("LEXPIPE_REDIS_CLUSTER", redis_cluster().to_string()),
    ]
}

/// Fails the test loudly if Redis is not there: integration tests never skip silently.
pub async fn require_redis() {
    let url = redis_url();
    let ok = tokio::time::timeout(Duration::from_secs(5), async {
        let mut c = raw_connection_result().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    match ok {
        Ok(Ok(_)) => {}
        other if redis_cluster() => panic!(
            "the cluster pass needs a Redis Cluster at {url} ({other:?}): scripts/test.sh starts \
             one with scripts/redis-cluster.sh start"
        ),
        other => panic!(
            "integration tests need a Redis server at {url} ({other:?}). Start one with \
             `redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no` \
             (Debian: apt-get install redis-server), or run ./scripts/test.sh, which does."
        ),
    }
}

/// A unique environment name, so each test has its own key prefix.
pub fn unique_env(tag: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("t-{}-{}", tag, &id[..10])
}

/// Configuration of the `local` stage with overrides (variable → value).
pub fn config_with(env: &str, overrides: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("LEXPIPE_ENV".into(), env.into());
    for (k, v) in redis_env() {
        vars.insert(k.into(), v);
    }
    for (k, v) in overrides {
        vars.insert((*k).into(), (*v).into());
    }
    Config::from_vars(|k| vars.get(k).cloned()).expect("test configuration is valid")
}

/// A Redis-backed cache with its own connection.
pub fn redis_cache(cfg: &Config) -> (Arc<Cache>, RedisHandle) {
    let handle = RedisHandle::new(cfg).expect("redis handle");
    let backend = RedisBackend::new(handle.clone(), KeyBuilder::new(&cfg.env));
    (cache_over(cfg, Arc::new(backend)), handle)
}

/// A cache configured from `cfg` over a given backend (for a test that wraps the real
/// Redis backend to observe what the cache does with it).
pub fn cache_over(cfg: &Config, backend: Arc<dyn CacheBackend>) -> Arc<Cache> {
    let codec = Codec::new(cfg.cache.compress_threshold, cfg.cache.max_value_bytes);
    Arc::new(Cache::new(
        backend,
        codec,
        KeyBuilder::new(&cfg.env),
        cfg.cache.lease,
    ))
}

/// Waits until `done` holds, checking every millisecond; panics naming `what` after ten
/// seconds.
///
/// For ordering a test on a state that another task reaches (a counter of the code under
/// test) when that code has no hook to signal it: the wait ends when the state is reached,
/// not after a guess of how long reaching it takes.
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(
            tokio::time::Instant::now() < give_up,
            "gave up after 10 s waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The tests' Redis as lexpipe connects to it (standalone or cluster), without the
/// breaker's opinion: for arranging and inspecting keys directly.
fn raw_handle() -> RedisHandle {
    RedisHandle::new(&config_with("t-raw", &[])).expect("redis handle")
}

async fn raw_connection_result() -> Result<lexpipe::redis::Conn, String> {
    raw_handle().connection().await.map_err(|e| e.to_string())
}

/// A plain connection for arranging and inspecting Redis directly: a cluster connection
/// in the cluster pass, so a test's own multi-key command across slots fails there too.
pub async fn raw_connection() -> lexpipe::redis::Conn {
    raw_connection_result().await.expect("redis connection")
}

/// Every key under `lexpipe:{env}:`, from every primary.
pub async fn keys_of(env: &str) -> Vec<String> {
    let mut out = raw_handle()
        .scan_keys(&format!("lexpipe:{env}:*"))
        .await
        .expect("scan");
    out.sort();
    out
}

/// Deletes every key of a test's prefix.
pub async fn cleanup(env: &str) {
    let keys = keys_of(env).await;
    if keys.is_empty() {
        return;
    }
    let mut c = raw_connection().await;
    // On a cluster the client splits a multi-key DEL by slot.
    let _: Result<i64, _> = redis::cmd("DEL").arg(&keys).query_async(&mut c).await;
}

/// The shipped samples folder.
pub fn samples_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../samples"))
}

/// The app a process with `cfg` builds (no database), artefacts in a scratch folder:
/// for tests of how the configuration turns into connections and caches.
pub async fn app_for(cfg: &Config) -> lexpipe::app::App {
    app_with_artefacts(
        cfg.clone(),
        &std::env::temp_dir().join("lexpipe-test-artefacts"),
    )
    .await
}

/// The app of `cfg` as `lexpipe process` builds it, step artefacts in the folder
/// `artefacts`, without a database.
pub async fn app_with_artefacts(cfg: Config, artefacts: &std::path::Path) -> lexpipe::app::App {
    lexpipe::app::App::build(
        cfg,
        lexpipe::app::AppOptions {
            default_artefacts: Some(lexpipe::config::BlobLocation::Folder(
                artefacts.to_path_buf(),
            )),
            skip_database: true,
            ..Default::default()
        },
    )
    .await
    .expect("the app builds")
}

/// A fault-injection hook: fails `stage` the first `times` times it is reached, with a
/// retryable error (what a blob store timeout looks like) or a terminal one (an injected
/// crash, which the state machine does not retry).
#[derive(Debug)]
pub struct FailStage {
    pub stage: &'static str,
    /// Failures still to inject.
    pub remaining: std::sync::atomic::AtomicUsize,
    pub retryable: bool,
}

impl FailStage {
    pub fn new(stage: &'static str, times: usize, retryable: bool) -> Arc<FailStage> {
        Arc::new(FailStage {
            stage,
            remaining: std::sync::atomic::AtomicUsize::new(times),
            retryable,
        })
    }
}

impl lexpipe::stages::StageHooks for FailStage {
    fn before_stage(
        &self,
        _doc: &str,
        stage: &'static str,
    ) -> Result<(), lexpipe::stages::StageError> {
        use std::sync::atomic::Ordering;
        if stage == self.stage
            && self
                .remaining
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(if self.retryable {
                lexpipe::stages::StageError::Blob(lexpipe::store::blob::BlobError::Unavailable {
                    location: "s3://bucket/processed/x".into(),
                    message: "simulated timeout".into(),
                })
            } else {
                lexpipe::stages::StageError::Injected {
                    stage,
                    message: "simulated crash".into(),
                }
            });
        }
        Ok(())
    }
}

/// The stdout of a successful command, parsed as JSON; a failure shows the exit status,
/// stdout and stderr.
pub fn json_stdout(o: &std::process::Output) -> serde_json::Value {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

/// [`cleanup`] for tests that are not async.
pub fn cleanup_blocking(env: &str) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(cleanup(env));
}
