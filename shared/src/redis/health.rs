//! `lexpipe health`: is Redis reachable, fast, and not about to evict or refuse writes?

use serde::Serialize;

use super::conn::{RedisHandle, RedisUnavailable};
use super::metrics::NamespaceStats;

/// Overall verdict; the CLI exits 0, 1 or 2 accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Healthy = 0,
    Degraded = 1,
    Unhealthy = 2,
}

/// Round-trip latency above which Redis is reported degraded.
pub const SLOW_PING_MS: f64 = 20.0;
/// Memory use (of maxmemory) above which Redis is reported degraded.
pub const MEMORY_HIGH: f64 = 0.90;

#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub status: Status,
    pub reachable: bool,
    /// `host:port`, never credentials.
    pub address: String,
    pub redis_version: Option<String>,
    pub ping_ms_p50: Option<f64>,
    pub ping_ms_max: Option<f64>,
    pub used_memory_bytes: Option<u64>,
    /// 0 means no limit.
    pub maxmemory_bytes: Option<u64>,
    pub memory_used_ratio: Option<f64>,
    pub eviction_policy: Option<String>,
    pub evicted_keys: Option<u64>,
    /// Server-wide keyspace hit rate (every client of this Redis).
    pub server_hit_rate: Option<f64>,
    /// lexpipe's own cache counters per namespace.
    pub cache: Vec<NamespaceStats>,
    /// True in cluster mode; the memory figures above are then sums over the primaries
    /// (the ratio is the fullest primary's), and `primaries` has each one.
    pub cluster: bool,
    /// Every primary read (the one server in standalone mode).
    pub primaries: Vec<NodeHealth>,
    /// `CLUSTER INFO`'s `cluster_state` (`ok` or `fail`) in cluster mode.
    pub cluster_state: Option<String>,
    /// Why the status is not healthy.
    pub problems: Vec<String>,
}

/// What `INFO` says of one primary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeHealth {
    /// `host:port`.
    pub address: String,
    pub used_memory_bytes: Option<u64>,
    /// 0 means no limit.
    pub maxmemory_bytes: Option<u64>,
    pub memory_used_ratio: Option<f64>,
    pub eviction_policy: Option<String>,
    pub evicted_keys: Option<u64>,
    pub keyspace_hits: Option<u64>,
    pub keyspace_misses: Option<u64>,
    pub redis_version: Option<String>,
}

impl NodeHealth {
    /// Parses an `INFO` reply.
    pub fn from_info(address: String, info: &str) -> NodeHealth {
        let field = |name: &str| -> Option<String> {
            info.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
                .map(|v| v.trim().to_string())
        };
        let num = |name: &str| field(name).and_then(|v| v.parse::<u64>().ok());
        let used_memory_bytes = num("used_memory");
        let maxmemory_bytes = num("maxmemory");
        NodeHealth {
            address,
            used_memory_bytes,
            maxmemory_bytes,
            memory_used_ratio: match (used_memory_bytes, maxmemory_bytes) {
                (Some(used), Some(max)) if max > 0 => Some(used as f64 / max as f64),
                _ => None,
            },
            eviction_policy: field("maxmemory_policy"),
            evicted_keys: num("evicted_keys"),
            keyspace_hits: num("keyspace_hits"),
            keyspace_misses: num("keyspace_misses"),
            redis_version: field("redis_version"),
        }
    }
}

/// Sums of the primaries' figures into the report's top-level fields: memory and
/// evictions add up, the ratio is the fullest primary's (one full shard refuses the writes
/// of its slots whatever the others hold), the policy is the first that is not
/// `noeviction`, if any.
fn aggregate(report: &mut HealthReport) {
    let nodes = &report.primaries;
    let sum = |f: fn(&NodeHealth) -> Option<u64>| -> Option<u64> {
        nodes
            .iter()
            .map(f)
            .try_fold(0u64, |acc, v| v.map(|v| acc + v))
    };
    report.redis_version = nodes.iter().find_map(|n| n.redis_version.clone());
    report.used_memory_bytes = sum(|n| n.used_memory_bytes);
    // One unlimited primary makes the sum meaningless: 0 (no limit) wins.
    report.maxmemory_bytes = if nodes.iter().any(|n| n.maxmemory_bytes == Some(0)) {
        Some(0)
    } else {
        sum(|n| n.maxmemory_bytes)
    };
    report.memory_used_ratio = nodes
        .iter()
        .filter_map(|n| n.memory_used_ratio)
        .max_by(f64::total_cmp);
    report.eviction_policy = nodes
        .iter()
        .filter_map(|n| n.eviction_policy.clone())
        .find(|p| p != "noeviction")
        .or_else(|| nodes.iter().find_map(|n| n.eviction_policy.clone()));
    report.evicted_keys = sum(|n| n.evicted_keys);
    if let (Some(h), Some(m)) = (sum(|n| n.keyspace_hits), sum(|n| n.keyspace_misses))
        && h + m > 0
    {
        report.server_hit_rate = Some(h as f64 / (h + m) as f64);
    }
}

impl HealthReport {
    /// A report of `address` with nothing measured yet: healthy until judged, not reached.
    pub fn new(address: String) -> HealthReport {
        HealthReport {
            status: Status::Healthy,
            reachable: false,
            address,
            redis_version: None,
            ping_ms_p50: None,
            ping_ms_max: None,
            used_memory_bytes: None,
            maxmemory_bytes: None,
            memory_used_ratio: None,
            eviction_policy: None,
            evicted_keys: None,
            server_hit_rate: None,
            cache: Vec::new(),
            cluster: false,
            primaries: Vec::new(),
            cluster_state: None,
            problems: Vec::new(),
        }
    }
}

/// Pings a few times, reads `INFO`, and judges.
pub async fn check(handle: &RedisHandle, cache: Vec<NamespaceStats>) -> HealthReport {
    let mut report = HealthReport {
        cache,
        ..HealthReport::new(handle.address().to_string())
    };
    let mut pings = Vec::new();
    for _ in 0..5 {
        let t = std::time::Instant::now();
        let r: Result<String, RedisUnavailable> = handle
            .run(false, |mut c| async move {
                redis::cmd("PING").query_async(&mut c).await
            })
            .await;
        match r {
            Ok(_) => pings.push(t.elapsed().as_secs_f64() * 1000.0),
            Err(e) => {
                report.status = Status::Unhealthy;
                report.problems.push(format!("redis unreachable: {e}"));
                return report;
            }
        }
    }
    report.reachable = true;
    pings.sort_by(|a, b| a.total_cmp(b));
    report.ping_ms_p50 = Some(pings[pings.len() / 2]);
    report.ping_ms_max = pings.last().copied();

    report.cluster = handle.is_cluster();
    if report.cluster {
        let info: Result<String, RedisUnavailable> = handle
            .run(true, |mut c| async move {
                redis::cmd("CLUSTER").arg("INFO").query_async(&mut c).await
            })
            .await;
        report.cluster_state = info.ok().and_then(|i| {
            i.lines()
                .find_map(|l| l.strip_prefix("cluster_state:"))
                .map(|v| v.trim().to_string())
        });
        match report.cluster_state.as_deref() {
            Some("ok") => {}
            other => {
                report.status = Status::Unhealthy;
                report.problems.push(format!(
                    "cluster_state {}: some slots have no reachable primary",
                    other.unwrap_or("unknown")
                ));
            }
        }
    }
    match handle.on_each_primary::<String>(&redis::cmd("INFO")).await {
        Ok(infos) => {
            report.primaries = infos
                .into_iter()
                .map(|(addr, info)| NodeHealth::from_info(addr, &info))
                .collect();
            aggregate(&mut report);
        }
        Err(e) => report.problems.push(format!("INFO failed: {e}")),
    }
    judge(&mut report);
    report
}

fn judge(r: &mut HealthReport) {
    if let Some(p) = r.ping_ms_p50
        && p > SLOW_PING_MS
    {
        r.problems
            .push(format!("slow: ping p50 {p:.1} ms > {SLOW_PING_MS} ms"));
    }
    if let Some(ratio) = r.memory_used_ratio
        && ratio > MEMORY_HIGH
    {
        let fullest = r
            .primaries
            .iter()
            .filter(|_| r.cluster)
            .find(|n| n.memory_used_ratio == Some(ratio))
            .map(|n| format!(" on {}", n.address))
            .unwrap_or_default();
        r.problems.push(format!(
            "memory {:.0}% of maxmemory{fullest} (policy {})",
            ratio * 100.0,
            r.eviction_policy.as_deref().unwrap_or("?")
        ));
    }
    // Locks, fencing counters, idempotency records and document state all carry TTLs, so
    // any evicting policy may drop them; `noeviction` (what infra/template.yaml sets) only
    // makes cache writes fail when memory is full, which the memory check above reports
    // first. See docs/redis_integration.md §7.
    if r.maxmemory_bytes.unwrap_or(0) > 0
        && let Some(policy) = r.eviction_policy.as_deref()
        && policy != "noeviction"
    {
        r.problems.push(format!(
            "maxmemory-policy {policy}: locks, idempotency records and document state may be evicted (use noeviction)"
        ));
    }
    if !r.problems.is_empty() && r.status == Status::Healthy {
        r.status = Status::Degraded;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(policy: &str, maxmemory: u64, used: u64) -> HealthReport {
        let mut r = HealthReport {
            reachable: true,
            redis_version: Some("7.0.15".into()),
            ping_ms_p50: Some(0.2),
            ping_ms_max: Some(0.5),
            used_memory_bytes: Some(used),
            maxmemory_bytes: Some(maxmemory),
            memory_used_ratio: (maxmemory > 0).then(|| used as f64 / maxmemory as f64),
            eviction_policy: Some(policy.into()),
            evicted_keys: Some(0),
            ..HealthReport::new("127.0.0.1:6379".into())
        };
        judge(&mut r);
        r
    }

    #[test]
    fn noeviction_with_room_to_spare_is_healthy() {
        let r = judged("noeviction", 1 << 30, 1 << 20);
        assert_eq!(r.status, Status::Healthy, "{:?}", r.problems);
    }

    #[test]
    fn an_evicting_policy_is_degraded_because_it_may_evict_locks_and_state() {
        for policy in [
            "volatile-lru",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-random",
        ] {
            let r = judged(policy, 1 << 30, 1 << 20);
            assert_eq!(r.status, Status::Degraded, "{policy}");
            assert!(r.problems[0].contains(policy), "{:?}", r.problems);
            assert!(r.problems[0].contains("use noeviction"), "{:?}", r.problems);
        }
    }

    #[test]
    fn without_a_memory_limit_the_policy_does_not_matter() {
        assert_eq!(judged("allkeys-lru", 0, 1 << 20).status, Status::Healthy);
    }

    #[test]
    fn a_cluster_is_judged_by_its_fullest_primary_and_sums_the_rest() {
        let info = |used: u64, max: u64, evicted: u64, policy: &str| {
            format!(
                "# Server\r\nredis_version:7.0.15\r\n# Memory\r\nused_memory:{used}\r\nmaxmemory:{max}\r\nmaxmemory_policy:{policy}\r\n# Stats\r\nevicted_keys:{evicted}\r\nkeyspace_hits:30\r\nkeyspace_misses:10\r\n"
            )
        };
        let mut r = HealthReport {
            reachable: true,
            cluster: true,
            cluster_state: Some("ok".into()),
            primaries: vec![
                NodeHealth::from_info("a:7000".into(), &info(10, 100, 0, "noeviction")),
                NodeHealth::from_info("b:7001".into(), &info(95, 100, 2, "noeviction")),
                NodeHealth::from_info("c:7002".into(), &info(5, 100, 1, "noeviction")),
            ],
            ..HealthReport::new("a:7000".into())
        };
        aggregate(&mut r);
        judge(&mut r);
        assert_eq!(r.used_memory_bytes, Some(110));
        assert_eq!(r.maxmemory_bytes, Some(300));
        assert_eq!(r.evicted_keys, Some(3));
        assert_eq!(r.server_hit_rate, Some(0.75));
        assert_eq!(r.memory_used_ratio, Some(0.95));
        assert_eq!(r.status, Status::Degraded);
        assert!(r.problems[0].contains("on b:7001"), "{:?}", r.problems);
    }

    #[test]
    fn a_nearly_full_noeviction_redis_is_degraded_by_its_memory() {
        let r = judged("noeviction", 100, 95);
        assert_eq!(r.status, Status::Degraded);
        assert!(r.problems[0].starts_with("memory 95%"), "{:?}", r.problems);
    }
}
