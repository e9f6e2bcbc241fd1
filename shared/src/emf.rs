//! CloudWatch embedded metric format (EMF): metrics as JSON log lines, which CloudWatch
//! Logs turns into metrics without an API call (and without a metrics agent in Lambda).
//!
//! Every Lambda function prints, at the end of each invocation:
//! - one line per cache namespace the invocation used: `CacheHits`, `CacheMisses` and
//!   `CacheHitRate` (percent), dimensions `Function` + `CacheNamespace`;
//! - one line per paid API it used: `ApiCalls`, `ApiCallsAvoided`, `CostUSD` and
//!   `CostAvoidedUSD`, dimensions `Function` + `Api` (from the step's reported
//!   [`Ledger`]).
//!
//! The `health` function adds one line of the check's figures ([`health_line`]).
//!
//! A line is `{"_aws": {"Timestamp": ms, "CloudWatchMetrics": [{"Namespace", "Dimensions":
//! [[names]], "Metrics": [{"Name", "Unit"}]}]}, "<dimension>": "value", "<metric>": number}`
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>).

use serde_json::{Map, Value, json};

use crate::cost::{ApiUsage, Ledger};
use crate::health::Report;
use crate::redis::NamespaceStats;

/// A CloudWatch unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Percent,
    Milliseconds,
    Bytes,
    /// No unit (dollars have none in CloudWatch).
    None,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Percent => "Percent",
            Unit::Milliseconds => "Milliseconds",
            Unit::Bytes => "Bytes",
            Unit::None => "None",
        }
    }
}

/// One EMF line: `metrics` with `dimensions` (name, value) in `namespace`, at
/// `timestamp_ms`. Non-finite values are left out (CloudWatch refuses them).
pub fn line(
    namespace: &str,
    dimensions: &[(&str, &str)],
    metrics: &[(&str, Unit, f64)],
    timestamp_ms: u64,
) -> Value {
    let metrics: Vec<&(&str, Unit, f64)> = metrics.iter().filter(|m| m.2.is_finite()).collect();
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dimensions.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
                "Metrics": metrics
                    .iter()
                    .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
                    .collect::<Vec<_>>(),
            }],
        }),
    );
    for (k, v) in dimensions {
        root.insert((*k).into(), json!(v));
    }
    for (name, _, v) in metrics {
        root.insert((*name).into(), json!(v));
    }
    Value::Object(root)
}

/// What one invocation did to the caches: `after` − `before` per namespace (the process's
/// own counters, [`crate::redis::Cache::local_stats`]), namespaces without lookups left
/// out. A single-flight wait counts as a hit, as in the run summary.
pub fn cache_delta(before: &[NamespaceStats], after: &[NamespaceStats]) -> Vec<NamespaceStats> {
    after
        .iter()
        .filter_map(|a| {
            let b = before
                .iter()
                .find(|b| b.namespace == a.namespace)
                .cloned()
                .unwrap_or_default();
            let waits = a.waits - b.waits;
            let counts = [
                a.hits - b.hits + waits,
                (a.misses - b.misses - waits).max(0),
                a.fills - b.fills,
                a.errors - b.errors,
                a.corrupt - b.corrupt,
                waits,
                a.oversize - b.oversize,
            ];
            (counts[0] + counts[1] > 0).then(|| NamespaceStats::from_counts(&a.namespace, &counts))
        })
        .collect()
}

/// The lines a function prints at the end of an invocation: one per cache namespace in
/// `cache` and one per API in `usage` that was used.
pub fn invocation_lines(
    namespace: &str,
    function: &str,
    cache: &[NamespaceStats],
    usage: &Ledger,
    timestamp_ms: u64,
) -> Vec<Value> {
    let mut out = Vec::new();
    for s in cache {
        out.push(line(
            namespace,
            &[("Function", function), ("CacheNamespace", &s.namespace)],
            &[
                ("CacheHits", Unit::Count, s.hits as f64),
                ("CacheMisses", Unit::Count, s.misses as f64),
                ("CacheHitRate", Unit::Percent, s.hit_rate * 100.0),
            ],
            timestamp_ms,
        ));
    }
    for (api, u) in [("textract", &usage.textract), ("llm", &usage.llm)] {
        if !u.is_empty() {
            out.push(api_line(namespace, function, api, u, timestamp_ms));
        }
    }
    out
}

fn api_line(namespace: &str, function: &str, api: &str, u: &ApiUsage, ts: u64) -> Value {
    line(
        namespace,
        &[("Function", function), ("Api", api)],
        &[
            ("ApiCalls", Unit::Count, u.calls as f64),
            ("ApiCallsAvoided", Unit::Count, u.calls_avoided as f64),
            ("CostUSD", Unit::None, u.usd),
            ("CostAvoidedUSD", Unit::None, u.usd_avoided),
        ],
        ts,
    )
}

/// The `health` function's line: `HealthStatus` (0 healthy, 1 degraded, 2 unhealthy),
/// Redis latency, memory use, evictions, and the database's stuck documents and failed
/// Textract jobs when known.
pub fn health_line(namespace: &str, function: &str, r: &Report, timestamp_ms: u64) -> Value {
    let redis = &r.redis;
    let mut metrics = vec![
        ("HealthStatus", Unit::None, r.status() as u8 as f64),
        (
            "RedisReachable",
            Unit::Count,
            if redis.reachable { 1.0 } else { 0.0 },
        ),
    ];
    let opt = |v: Option<f64>| v.unwrap_or(f64::NAN);
    metrics.push(("RedisPingMs", Unit::Milliseconds, opt(redis.ping_ms_p50)));
    metrics.push((
        "RedisMemoryUsed",
        Unit::Percent,
        opt(redis.memory_used_ratio.map(|m| m * 100.0)),
    ));
    metrics.push((
        "RedisEvictedKeys",
        Unit::Count,
        opt(redis.evicted_keys.map(|n| n as f64)),
    ));
    if let Some(d) = &r.database {
        metrics.push((
            "StuckDocuments",
            Unit::Count,
            opt(d.stuck_documents.map(|n| n as f64)),
        ));
        metrics.push((
            "FailedTextractJobs",
            Unit::Count,
            opt(d.failed_textract_jobs.map(|n| n as f64)),
        ));
    }
    line(namespace, &[("Function", function)], &metrics, timestamp_ms)
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks `v` against the EMF specification's rules: `_aws` with a millisecond
    /// timestamp, directives naming a namespace, dimension sets whose every name is a
    /// string member of the root, and metrics whose every name is a number at the root.
    fn assert_valid_emf(v: &Value) {
        let aws = &v["_aws"];
        assert!(aws["Timestamp"].is_u64(), "Timestamp: {v}");
        let directives = aws["CloudWatchMetrics"].as_array().expect("directives");
        assert!(!directives.is_empty());
        for d in directives {
            let ns = d["Namespace"].as_str().expect("Namespace");
            assert!(!ns.is_empty() && ns.len() <= 255);
            for set in d["Dimensions"].as_array().expect("Dimensions") {
                let set = set.as_array().expect("a dimension set");
                assert!(set.len() <= 30);
                for name in set {
                    let name = name.as_str().expect("dimension name");
                    assert!(
                        v[name].is_string(),
                        "dimension {name} missing at the root: {v}"
                    );
                }
            }
            let metrics = d["Metrics"].as_array().expect("Metrics");
            assert!(metrics.len() <= 100);
            for m in metrics {
                let name = m["Name"].as_str().expect("metric name");
                assert!(
                    v[name].is_number(),
                    "metric {name} missing at the root: {v}"
                );
                let unit = m["Unit"].as_str().expect("Unit");
                assert!(["Count", "Percent", "Milliseconds", "Bytes", "None"].contains(&unit));
            }
        }
    }

    #[test]
    fn an_invocation_prints_one_valid_line_per_cache_namespace_and_per_api_used() {
        let before = vec![NamespaceStats::from_counts("ocr", &[1, 1, 0, 0, 0, 0, 0])];
        let after = vec![
            NamespaceStats::from_counts("ocr", &[4, 2, 1, 0, 0, 1, 0]),
            NamespaceStats::from_counts("llm", &[0, 0, 0, 0, 0, 0, 0]),
        ];
        let delta = cache_delta(&before, &after);
        assert_eq!(delta.len(), 1, "namespaces without lookups are left out");
        let mut usage = Ledger::default();
        usage.llm.calls = 3;
        usage.llm.calls_avoided = 1;
        usage.llm.usd = 0.25;
        let lines = invocation_lines(
            "lexpipe",
            "extract-entities",
            &delta,
            &usage,
            1_700_000_000_000,
        );
        assert_eq!(lines.len(), 2);
        for l in &lines {
            assert_valid_emf(l);
            // One JSON object per log line.
            assert!(!serde_json::to_string(l).unwrap().contains('\n'));
        }
        let ocr = &lines[0];
        assert_eq!(ocr["CacheNamespace"], "ocr");
        // 3 hits + 1 wait served by another task = 4 hits; 1 miss - 1 wait = 0 misses.
        assert_eq!(
            (ocr["CacheHits"].as_f64(), ocr["CacheMisses"].as_f64()),
            (Some(4.0), Some(0.0))
        );
        assert_eq!(ocr["CacheHitRate"].as_f64(), Some(100.0));
        let llm = &lines[1];
        assert_eq!(llm["Api"], "llm");
        assert_eq!(llm["ApiCalls"].as_f64(), Some(3.0));
        assert_eq!(llm["ApiCallsAvoided"].as_f64(), Some(1.0));
        assert_eq!(llm["CostUSD"].as_f64(), Some(0.25));
        assert_eq!(llm["_aws"]["CloudWatchMetrics"][0]["Namespace"], "lexpipe");
    }

    #[test]
    fn metrics_without_a_value_are_left_out_rather_than_sent_as_null() {
        let l = line(
            "ns",
            &[("Function", "health")],
            &[("A", Unit::Count, 1.0), ("B", Unit::Count, f64::NAN)],
            1,
        );
        assert_valid_emf(&l);
        assert!(l.get("B").is_none());
        assert_eq!(
            l["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
}
