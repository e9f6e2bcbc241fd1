//! `lexpipe bench locks`: how fast workers can claim queue items through the distributed
//! lock, and whether any item is ever claimed twice.
//!
//! 10,000 items; for 1, 16 and 64 workers (tasks sharing the process's one connection),
//! each worker loops: pick an unclaimed item at random (scanning on from a random point,
//! so workers collide on the same items as the queue drains), [`Locks::acquire`] its lock
//! with a short lease, and if the item is still unclaimed, claim it (count it, yield as if
//! working, mark it done), then [`Locks::release`]. Reported per worker count: claims per
//! second, lock calls per second, contended acquisitions (someone else held the lock),
//! stale ones (the item was done by the time the lock was ours), and *double claims*
//! (items claimed more than once: must be 0). A raw `SET NX PX` loop over the same
//! connection and worker count gives the baseline. Prints figures; never fails on them.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lexpipe::config::Config;
use lexpipe::redis::lock::{LockName, Locks};
use lexpipe::redis::{KeyBuilder, RedisHandle};

const ITEMS: usize = 10_000;
const WORKERS: [usize; 3] = [1, 16, 64];
/// Lease of one claim: short, as a real claim renews its lease while it works.
const LEASE: Duration = Duration::from_secs(10);
/// `SET NX` on one connection, measured when the lock was written.
const ANCHOR_SET_NX_PER_SEC: f64 = 23_600.0;

#[derive(serde::Serialize)]
struct Row {
    workers: usize,
    items: usize,
    seconds: f64,
    claims_per_sec: f64,
    /// Acquire and release calls (one script each) per second.
    lock_calls_per_sec: f64,
    acquire_attempts: u64,
    /// The lock was held by another worker.
    contended: u64,
    /// The lock was ours, but the item had been claimed meanwhile.
    stale: u64,
    /// Items claimed more than once: must be 0.
    double_claims: usize,
    /// Items never claimed: must be 0.
    unclaimed: usize,
    /// Raw `SET key token NX PX` on the same connection and worker count.
    set_nx_per_sec: f64,
}

#[derive(serde::Serialize)]
struct Figures {
    items: usize,
    lease_ms: u64,
    runs: Vec<Row>,
    anchor_set_nx_per_sec: f64,
}

/// Runs the benchmark against the configured Redis and prints a table (or JSON).
///
/// # Errors
/// Redis cannot be reached, or a lock call fails; never because of a figure.
pub async fn run(config: Config, json: bool) -> anyhow::Result<ExitCode> {
    let figures = measure(&config).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        print_table(&figures);
    }
    Ok(ExitCode::SUCCESS)
}

/// `lexpipe bench locks --cluster`: the same runs on the configured single node and on a
/// 3-primary cluster, one after the other.
///
/// # Errors
/// As [`run`], or the cluster cannot be started or reached.
pub async fn run_cluster(
    config: Config,
    json: bool,
    cluster_url: &str,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !config.redis.cluster,
        "--cluster compares the configured single node with a cluster: REDIS_URL must be a single node"
    );
    let cluster = crate::bench::BenchCluster::new(&config, cluster_url)?;
    let single = measure(&config).await?;
    let on_cluster = measure(&cluster.config).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "single_node": single,
                "cluster": on_cluster,
            }))?
        );
    } else {
        println!("== single node");
        print_table(&single);
        println!("== cluster (3 primaries, 3 replicas)");
        print_table(&on_cluster);
        println!("claims/s, cluster / single:");
        for (s, c) in single.runs.iter().zip(&on_cluster.runs) {
            println!(
                "  {:>3} workers: {:>8.0} / {:>8.0} = {:.2}",
                s.workers,
                c.claims_per_sec,
                s.claims_per_sec,
                c.claims_per_sec / s.claims_per_sec
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn measure(config: &Config) -> anyhow::Result<Figures> {
    let handle = RedisHandle::new(config)?;
    handle.connect().await?;
    let mut runs = Vec::new();
    for workers in WORKERS {
        // A fresh prefix per run, deleted afterwards (each item leaves a fencing counter).
        let keys = KeyBuilder::new(&format!(
            "{}-lockbench-{:08x}",
            config.env,
            random_seed() as u32
        ));
        let result = one_run(&handle, &keys, workers).await;
        let cleaned = delete_prefix(&handle, &keys).await;
        runs.push(result?);
        cleaned?;
    }
    Ok(Figures {
        items: ITEMS,
        lease_ms: LEASE.as_millis() as u64,
        runs,
        anchor_set_nx_per_sec: ANCHOR_SET_NX_PER_SEC,
    })
}

#[derive(Default)]
struct Tally {
    attempts: u64,
    contended: u64,
    stale: u64,
    calls: u64,
}

async fn one_run(handle: &RedisHandle, keys: &KeyBuilder, workers: usize) -> anyhow::Result<Row> {
    let locks = Locks::new(handle.clone(), keys.clone());
    let names: Arc<Vec<LockName>> = Arc::new(
        (0..ITEMS)
            .map(|n| LockName::new("bench_item", &n.to_string()))
            .collect(),
    );
    let claims: Arc<Vec<AtomicU32>> = Arc::new((0..ITEMS).map(|_| AtomicU32::new(0)).collect());
    let done: Arc<Vec<AtomicBool>> = Arc::new((0..ITEMS).map(|_| AtomicBool::new(false)).collect());
    let remaining = Arc::new(AtomicUsize::new(ITEMS));

    // Load the scripts and warm the connection outside the measurement.
    let warm = LockName::new("bench_warmup", "0");
    if let Some(lease) = locks.acquire(&warm, LEASE).await? {
        locks.release(&lease).await?;
    }

    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (locks, names, claims, done, remaining) = (
            locks.clone(),
            names.clone(),
            claims.clone(),
            done.clone(),
            remaining.clone(),
        );
        set.spawn(async move {
            let mut t = Tally::default();
            let mut rng = XorShift(random_seed() | 1);
            while remaining.load(Ordering::Acquire) > 0 {
                let from = rng.below(ITEMS);
                let Some(n) = (0..ITEMS)
                    .map(|k| (from + k) % ITEMS)
                    .find(|&i| !done[i].load(Ordering::Acquire))
                else {
                    break;
                };
                t.attempts += 1;
                t.calls += 1;
                let Some(lease) = locks.acquire(&names[n], LEASE).await? else {
                    t.contended += 1;
                    continue;
                };
                if done[n].load(Ordering::Acquire) {
                    t.stale += 1;
                } else {
                    claims[n].fetch_add(1, Ordering::AcqRel);
                    // The work: gives any other holder of this lock, were there one, the
                    // chance to claim the item too.
                    tokio::task::yield_now().await;
                    done[n].store(true, Ordering::Release);
                    remaining.fetch_sub(1, Ordering::AcqRel);
                }
                t.calls += 1;
                locks.release(&lease).await?;
            }
            Ok::<_, anyhow::Error>(t)
        });
    }
    let mut total = Tally::default();
    while let Some(r) = set.join_next().await {
        let t = r??;
        total.attempts += t.attempts;
        total.contended += t.contended;
        total.stale += t.stale;
        total.calls += t.calls;
    }
    let seconds = start.elapsed().as_secs_f64();
    let counts: Vec<u32> = claims.iter().map(|c| c.load(Ordering::Acquire)).collect();

    Ok(Row {
        workers,
        items: ITEMS,
        seconds,
        claims_per_sec: ITEMS as f64 / seconds,
        lock_calls_per_sec: total.calls as f64 / seconds,
        acquire_attempts: total.attempts,
        contended: total.contended,
        stale: total.stale,
        double_claims: counts.iter().filter(|&&c| c > 1).count(),
        unclaimed: counts.iter().filter(|&&c| c == 0).count(),
        set_nx_per_sec: set_nx_rate(handle, keys, workers).await?,
    })
}

/// Raw `SET key token NX PX` over the same connection: what one lock call could cost at
/// best.
async fn set_nx_rate(
    handle: &RedisHandle,
    keys: &KeyBuilder,
    workers: usize,
) -> anyhow::Result<f64> {
    let conn = handle.connection().await?;
    let prefix = keys.key("bench_setnx", 1, &[]);
    let per_worker = ITEMS.div_ceil(workers);
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for w in 0..workers {
        let mut c = conn.clone();
        let prefix = prefix.clone();
        set.spawn(async move {
            for i in 0..per_worker {
                let _: Option<String> = redis::cmd("SET")
                    .arg(format!("{prefix}:{w}:{i}"))
                    .arg("token")
                    .arg("NX")
                    .arg("PX")
                    .arg(LEASE.as_millis() as u64)
                    .query_async(&mut c)
                    .await?;
            }
            Ok::<_, redis::RedisError>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok((per_worker * workers) as f64 / start.elapsed().as_secs_f64())
}

/// Deletes every key under the run's prefix.
pub(crate) async fn delete_prefix(handle: &RedisHandle, keys: &KeyBuilder) -> anyhow::Result<()> {
    let found = handle.scan_keys(&format!("{}*", keys.prefix())).await?;
    let mut c = handle.connection().await?;
    for batch in found.chunks(1000) {
        let _: i64 = redis::cmd("UNLINK").arg(batch).query_async(&mut c).await?;
    }
    Ok(())
}

/// A random 64-bit seed from the standard library (the CLI has no `rand`).
pub(crate) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// xorshift64: plenty for picking items; one per worker, so no shared state.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x % n as u64) as usize
    }
}

fn print_table(f: &Figures) {
    println!(
        "locks: {} queue items, lease {} ms, workers sharing one connection",
        f.items, f.lease_ms
    );
    println!(
        "{:>7}  {:>8}  {:>10}  {:>12}  {:>9}  {:>9}  {:>6}  {:>13}  {:>10}",
        "workers",
        "seconds",
        "claims/s",
        "lock calls/s",
        "attempts",
        "contended",
        "stale",
        "double claims",
        "SET NX/s"
    );
    for r in &f.runs {
        println!(
            "{:>7}  {:>8.2}  {:>10.0}  {:>12.0}  {:>9}  {:>9}  {:>6}  {:>13}  {:>10.0}",
            r.workers,
            r.seconds,
            r.claims_per_sec,
            r.lock_calls_per_sec,
            r.acquire_attempts,
            r.contended,
            r.stale,
            r.double_claims,
            r.set_nx_per_sec
        );
        if r.unclaimed > 0 {
            println!("         ({} items were never claimed)", r.unclaimed);
        }
    }
    println!(
        "a claim is two scripts (acquire + release); anchor: ~{:.1}k SET NX/s measured earlier on one connection",
        f.anchor_set_nx_per_sec / 1000.0
    );
}
