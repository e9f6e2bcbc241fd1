//! `lexpipe bench cache`: what a cache hit costs over a raw GET on the same connection.
//!
//! Prints figures; never fails on them. The payload is a realistic one: the entity result
//! of one chunk of a shipped-style document, encoded by the cache's own codec.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lexpipe::config::Config;
use lexpipe::extract::RuleExtractor;
use lexpipe::model::RawMention;
use lexpipe::redis::{
    Cache, CacheBackend, CacheSpec, Codec, KeyBuilder, KeyPart, RedisBackend, RedisHandle,
};

const TEXT: &str = "Plaintiff Maria Delgado, represented by Whitfield & Crane LLP, brings this action \
against Northwind Logistics, Inc. under 42 U.S.C. § 1983 in the United States District Court for the \
Northern District of California, Case No. 3:24-cv-01234-JST. On March 4, 2024, Defendant paid \
$250,000.00 to Acme Holdings LLC. Contact counsel at jdoe@example.com or (415) 555-0142.";

#[derive(serde::Serialize)]
struct Figures {
    payload_bytes: usize,
    ops: usize,
    tasks: usize,
    raw_get_p50_us: f64,
    raw_get_p99_us: f64,
    cache_hit_p50_us: f64,
    cache_hit_p99_us: f64,
    hit_over_raw_p50: f64,
    raw_get_per_sec_concurrent: f64,
    /// GET through lexpipe's handle (breaker, retry) without decoding: isolates the codec.
    handle_get_per_sec_concurrent: f64,
    cache_hit_per_sec_concurrent: f64,
    /// Decoding the stored value alone (zstd when compressed, then JSON), one thread.
    decode_us: f64,
    target_hit_over_raw_p50: f64,
    target_hits_per_sec: f64,
}

/// The Redis Cluster a `--cluster` benchmark runs on: the URL given, or one started here
/// with `scripts/redis-cluster.sh` (3 primaries, 3 replicas on 127.0.0.1:7300-7305) and
/// stopped when this is dropped.
pub(crate) struct BenchCluster {
    pub(crate) config: Config,
    started: Option<std::path::PathBuf>,
}

impl BenchCluster {
    /// `url` empty: start a local cluster (run from the repository, which has the script).
    pub(crate) fn new(config: &Config, url: &str) -> anyhow::Result<BenchCluster> {
        let (url, started) = if url.is_empty() {
            let script = std::path::PathBuf::from("scripts/redis-cluster.sh");
            anyhow::ensure!(
                script.exists(),
                "--cluster without a URL starts a local cluster with scripts/redis-cluster.sh: run from the repository root, or pass --cluster redis://host:port"
            );
            let out = std::process::Command::new(&script)
                .args(["start", "7300"])
                .output()?;
            anyhow::ensure!(
                out.status.success(),
                "scripts/redis-cluster.sh start 7300 failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            (
                String::from_utf8_lossy(&out.stdout).trim().to_string(),
                Some(script),
            )
        } else {
            (url.to_string(), None)
        };
        let mut config = config.clone();
        config.redis.url = lexpipe::config::Secret::new(url);
        config.redis.cluster = true;
        config.redis.db = None;
        Ok(BenchCluster { config, started })
    }
}

impl Drop for BenchCluster {
    fn drop(&mut self) {
        if let Some(script) = &self.started {
            let _ = std::process::Command::new(script)
                .args(["stop", "7300"])
                .output();
        }
    }
}

/// The cache as a stage sees it, over its own connection to the Redis of `config`.
struct BenchCache {
    handle: RedisHandle,
    keys: KeyBuilder,
    codec: Codec,
    backend: Arc<RedisBackend>,
    cache: Arc<Cache>,
}

impl BenchCache {
    async fn connect(config: &Config) -> anyhow::Result<BenchCache> {
        let handle = RedisHandle::new(config)?;
        handle.connect().await?;
        let keys = KeyBuilder::new(&config.env);
        let codec = Codec::new(
            config.cache.compress_threshold,
            config.cache.max_value_bytes,
        );
        let backend = Arc::new(RedisBackend::new(handle.clone(), keys.clone()));
        let cache = Arc::new(Cache::new(
            backend.clone(),
            codec.clone(),
            keys.clone(),
            config.cache.lease,
        ));
        Ok(BenchCache {
            handle,
            keys,
            codec,
            backend,
            cache,
        })
    }

    /// Stores `bytes` under the bench key `id`, and the spec that reads it.
    async fn put(&self, id: &[KeyPart<'_>], bytes: &[u8]) -> anyhow::Result<CacheSpec> {
        let key = self.keys.key("bench", 1, id);
        self.backend
            .set(&key, bytes, Duration::from_secs(600))
            .await?;
        Ok(CacheSpec {
            namespace: "bench",
            key,
            schema: 1,
            ttl: Duration::from_secs(600),
        })
    }

    /// Cache hits per second with one task per spec, each reading its spec `per_task`
    /// times.
    async fn hits_per_sec(&self, specs: Vec<CacheSpec>, per_task: usize) -> anyhow::Result<f64> {
        let n = specs.len();
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for spec in specs {
            let cache = self.cache.clone();
            set.spawn(async move {
                for _ in 0..per_task {
                    std::hint::black_box(cache.get::<Vec<RawMention>>(&spec).await);
                }
            });
        }
        while let Some(r) = set.join_next().await {
            r?;
        }
        Ok((per_task * n) as f64 / start.elapsed().as_secs_f64())
    }
}

/// Concurrent cache hits per second with each of `tasks` tasks reading its own key, so
/// that on a cluster the reads spread over the slots (and so the primaries).
async fn spread_hits_per_sec(config: &Config, tasks: usize, ops: usize) -> anyhow::Result<f64> {
    let bench = BenchCache::connect(config).await?;
    let payload: Vec<RawMention> = RuleExtractor::new().extract(TEXT);
    let bytes = bench.codec.encode(1, &payload)?;
    let mut specs = Vec::new();
    for t in 0..tasks.max(1) {
        specs.push(
            bench
                .put(&[KeyPart::Id("spread"), KeyPart::Num(t as u64)], &bytes)
                .await?,
        );
    }
    let rate = bench
        .hits_per_sec(specs, (ops / tasks.max(1)).max(1))
        .await?;
    bench.cache.flush_metrics().await;
    Ok(rate)
}

/// `lexpipe bench cache --cluster`: hits per second on the configured single node and on
/// a 3-primary cluster, same run, same payload, same tasks.
pub async fn cache_cluster(
    config: Config,
    json: bool,
    ops: usize,
    tasks: usize,
    cluster_url: &str,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !config.redis.cluster,
        "--cluster compares the configured single node with a cluster: REDIS_URL must be a single node"
    );
    let cluster = BenchCluster::new(&config, cluster_url)?;
    let single = spread_hits_per_sec(&config, tasks, ops).await?;
    let on_cluster = spread_hits_per_sec(&cluster.config, tasks, ops).await?;
    let primaries = RedisHandle::new(&cluster.config)?.primaries().await?.len();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "tasks": tasks,
                "ops": ops,
                "single_node_hits_per_sec": single,
                "cluster_hits_per_sec": on_cluster,
                "cluster_primaries": primaries,
                "cluster_over_single": on_cluster / single,
            })
        );
    } else {
        println!(
            "lexpipe bench cache --cluster  ({tasks} tasks, each on its own key, {ops} hits in all)"
        );
        println!("{:<34} {:>12}", "", "hits/s");
        println!("{:<34} {:>12.0}", "single node", single);
        println!(
            "{:<34} {:>12.0}",
            format!("cluster ({primaries} primaries)"),
            on_cluster
        );
        println!("cluster / single = {:.2}", on_cluster / single);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn cache(
    config: Config,
    json: bool,
    ops: usize,
    tasks: usize,
) -> anyhow::Result<ExitCode> {
    let bench = BenchCache::connect(&config).await?;
    let (handle, codec, cache) = (&bench.handle, &bench.codec, &bench.cache);
    let payload: Vec<RawMention> = RuleExtractor::new().extract(TEXT);
    let bytes = codec.encode(1, &payload)?;
    let spec = bench.put(&[KeyPart::Id("hit")], &bytes).await?;
    let key = spec.key.clone();
    let conn = handle.connection().await?;

    // Warm up both paths.
    for _ in 0..1000 {
        let _: Option<Vec<u8>> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn.clone())
            .await?;
        let _ = cache.get::<Vec<RawMention>>(&spec).await;
    }

    let mut raw = Vec::with_capacity(ops);
    for _ in 0..ops {
        let t = Instant::now();
        let v: Option<Vec<u8>> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn.clone())
            .await?;
        raw.push(t.elapsed());
        std::hint::black_box(v);
    }
    let mut hit = Vec::with_capacity(ops);
    for _ in 0..ops {
        let t = Instant::now();
        let v = cache.get::<Vec<RawMention>>(&spec).await;
        hit.push(t.elapsed());
        anyhow::ensure!(
            v.as_ref() == Some(&payload),
            "cache hit returned a different value"
        );
    }

    let per_task = (ops / tasks.max(1)).max(1);
    let raw_rate = {
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..tasks {
            let mut c = conn.clone();
            let key = key.clone();
            set.spawn(async move {
                for _ in 0..per_task {
                    let _: Option<Vec<u8>> =
                        redis::cmd("GET").arg(&key).query_async(&mut c).await?;
                }
                Ok::<_, redis::RedisError>(())
            });
        }
        while let Some(r) = set.join_next().await {
            r??;
        }
        (per_task * tasks) as f64 / start.elapsed().as_secs_f64()
    };
    let hit_rate = bench
        .hits_per_sec(vec![spec.clone(); tasks], per_task)
        .await?;
    let handle_rate = {
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..tasks {
            let handle = handle.clone();
            let key = key.clone();
            set.spawn(async move {
                for _ in 0..per_task {
                    let k = &key;
                    let _: Option<Vec<u8>> = handle
                        .run(true, |mut c| async move {
                            redis::cmd("GET").arg(k).query_async(&mut c).await
                        })
                        .await
                        .unwrap();
                }
            });
        }
        while let Some(r) = set.join_next().await {
            r?;
        }
        (per_task * tasks) as f64 / start.elapsed().as_secs_f64()
    };
    let decode_us = {
        let n = 20_000;
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(codec.decode::<Vec<RawMention>>(1, &bytes)?);
        }
        start.elapsed().as_secs_f64() * 1e6 / n as f64
    };
    cache.flush_metrics().await;

    let f = Figures {
        payload_bytes: bytes.len(),
        ops,
        tasks,
        raw_get_p50_us: pct(&mut raw, 0.50),
        raw_get_p99_us: pct(&mut raw, 0.99),
        cache_hit_p50_us: pct(&mut hit, 0.50),
        cache_hit_p99_us: pct(&mut hit, 0.99),
        hit_over_raw_p50: pct(&mut hit, 0.50) / pct(&mut raw, 0.50),
        raw_get_per_sec_concurrent: raw_rate,
        handle_get_per_sec_concurrent: handle_rate,
        decode_us,
        cache_hit_per_sec_concurrent: hit_rate,
        target_hit_over_raw_p50: 1.3,
        target_hits_per_sec: 150_000.0,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&f)?);
    } else {
        println!(
            "lexpipe bench cache  (payload {} bytes, {} sequential ops, {} tasks)",
            f.payload_bytes, ops, tasks
        );
        println!(
            "{:<28} {:>10} {:>10} {:>14}",
            "", "p50 µs", "p99 µs", "ops/s (tasks)"
        );
        println!(
            "{:<28} {:>10.1} {:>10.1} {:>14.0}",
            "raw GET (redis-rs)", f.raw_get_p50_us, f.raw_get_p99_us, f.raw_get_per_sec_concurrent
        );
        println!(
            "{:<28} {:>10.1} {:>10.1} {:>14.0}",
            "cache hit (lexpipe, decoded)",
            f.cache_hit_p50_us,
            f.cache_hit_p99_us,
            f.cache_hit_per_sec_concurrent
        );
        println!(
            "{:<28} {:>10} {:>10} {:>14.0}",
            "GET via lexpipe handle", "", "", f.handle_get_per_sec_concurrent
        );
        println!(
            "decode alone (envelope + payload): {:.2} µs per value",
            f.decode_us
        );
        println!(
            "hit p50 / raw p50 = {:.2} (target ≤ {:.1});  hits/s with {} tasks = {:.0} (target ≥ {:.0})",
            f.hit_over_raw_p50,
            f.target_hit_over_raw_p50,
            tasks,
            f.cache_hit_per_sec_concurrent,
            f.target_hits_per_sec
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e6
}
