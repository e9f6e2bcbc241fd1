//! Cache counters per namespace, summed across processes in Redis.
//!
//! Counting must not cost a round trip: each process accumulates counts in memory and the
//! cache appends them (`HINCRBY`) to the pipeline of its next read once the flush interval
//! has passed, and flushes what is left at the end of a run. Redis therefore holds the sum
//! over every process, at most one interval behind.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

/// What is counted, per namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Served from the cache.
    Hit = 0,
    /// Not in the cache (or unreadable): computed here or waited for.
    Miss,
    /// A computed value was written.
    Fill,
    /// Redis failed or was skipped; the value was computed without the cache.
    Error,
    /// A stored value could not be decoded (corrupt or another schema): read as a miss.
    Corrupt,
    /// A miss served by another task's or process's computation (single flight).
    Wait,
    /// A value too large to cache.
    Oversize,
}

/// Field names in the Redis hash, in [`Counter`] order.
pub const FIELDS: [&str; 7] = [
    "hits", "misses", "fills", "errors", "corrupt", "waits", "oversize",
];

/// One `HINCRBY` to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    pub namespace: &'static str,
    pub field: &'static str,
    pub by: i64,
}

/// In-process accumulator. Lock-free on the hot path: counting is an atomic add on a
/// per-namespace array found under a read lock that writers take only the first time a
/// namespace is seen (a mutex here made concurrent cache hits park threads on futexes).
#[derive(Debug)]
pub struct Counters {
    namespaces: RwLock<Vec<(&'static str, Arc<NsCounters>)>>,
    base: Instant,
    interval_ms: u64,
    last_flush_ms: AtomicU64,
}

#[derive(Debug, Default)]
struct NsCounters {
    pending: [AtomicI64; 7],
    totals: [AtomicI64; 7],
}

impl Counters {
    pub fn new(flush_interval: Duration) -> Counters {
        Counters {
            namespaces: RwLock::new(Vec::new()),
            base: Instant::now(),
            interval_ms: flush_interval.as_millis() as u64,
            last_flush_ms: AtomicU64::new(0),
        }
    }

    fn of(&self, namespace: &'static str) -> Arc<NsCounters> {
        if let Some((_, c)) = self
            .namespaces
            .read()
            .expect("poisoned")
            .iter()
            .find(|(n, _)| *n == namespace)
        {
            return c.clone();
        }
        let mut all = self.namespaces.write().expect("poisoned");
        if let Some((_, c)) = all.iter().find(|(n, _)| *n == namespace) {
            return c.clone();
        }
        let c = Arc::new(NsCounters::default());
        all.push((namespace, c.clone()));
        c
    }

    pub fn incr(&self, namespace: &'static str, counter: Counter) {
        let i = counter as usize;
        let c = self.of(namespace);
        c.pending[i].fetch_add(1, Ordering::Relaxed);
        c.totals[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The pending deltas if the flush interval has passed (one caller wins), else none.
    pub fn take_due(&self) -> Vec<Delta> {
        let now = self.base.elapsed().as_millis() as u64;
        let last = self.last_flush_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < self.interval_ms {
            return Vec::new();
        }
        if self
            .last_flush_ms
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return Vec::new();
        }
        self.take_all()
    }

    /// Every pending delta, now.
    pub fn take_all(&self) -> Vec<Delta> {
        let all = self.namespaces.read().expect("poisoned");
        let mut out = Vec::new();
        for (ns, c) in all.iter() {
            for (i, n) in c.pending.iter().enumerate() {
                let by = n.swap(0, Ordering::AcqRel);
                if by != 0 {
                    out.push(Delta {
                        namespace: ns,
                        field: FIELDS[i],
                        by,
                    });
                }
            }
        }
        out
    }

    /// Puts back deltas whose flush failed, so they go with a later one.
    pub fn restore(&self, deltas: Vec<Delta>) {
        for d in deltas {
            if let Some(i) = FIELDS.iter().position(|f| *f == d.field) {
                self.of(d.namespace).pending[i].fetch_add(d.by, Ordering::AcqRel);
            }
        }
    }

    /// What this process counted since start (not reset by flushes).
    pub fn totals(&self) -> Vec<NamespaceStats> {
        let all = self.namespaces.read().expect("poisoned");
        let mut out: Vec<NamespaceStats> = all
            .iter()
            .map(|(ns, c)| {
                let counts: [i64; 7] = std::array::from_fn(|i| c.totals[i].load(Ordering::Relaxed));
                NamespaceStats::from_counts(ns, &counts)
            })
            .collect();
        out.sort_by(|a, b| a.namespace.cmp(&b.namespace));
        out
    }
}

/// Counters of one namespace, and its hit rate.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NamespaceStats {
    pub namespace: String,
    pub hits: i64,
    pub misses: i64,
    pub fills: i64,
    pub errors: i64,
    pub corrupt: i64,
    pub waits: i64,
    pub oversize: i64,
    /// hits / (hits + misses), 0 when there were no lookups.
    pub hit_rate: f64,
}

impl NamespaceStats {
    pub fn from_counts(namespace: &str, c: &[i64; 7]) -> NamespaceStats {
        let lookups = c[0] + c[1];
        NamespaceStats {
            namespace: namespace.to_string(),
            hits: c[0],
            misses: c[1],
            fills: c[2],
            errors: c[3],
            corrupt: c[4],
            waits: c[5],
            oversize: c[6],
            hit_rate: if lookups > 0 {
                c[0] as f64 / lookups as f64
            } else {
                0.0
            },
        }
    }

    /// From a Redis hash (`HGETALL`); unknown fields are ignored.
    pub fn from_hash(namespace: &str, hash: &HashMap<String, i64>) -> NamespaceStats {
        let mut c = [0i64; 7];
        for (i, f) in FIELDS.iter().enumerate() {
            c[i] = hash.get(*f).copied().unwrap_or(0);
        }
        NamespaceStats::from_counts(namespace, &c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn deltas_are_released_once_per_interval_and_restorable() {
        let c = Counters::new(Duration::from_millis(100));
        c.incr("ocr", Counter::Hit);
        c.incr("ocr", Counter::Hit);
        c.incr("ocr", Counter::Miss);
        assert!(c.take_due().is_empty(), "interval not passed yet");
        tokio::time::advance(Duration::from_millis(150)).await;
        let d = c.take_due();
        assert_eq!(d.len(), 2);
        assert!(c.take_due().is_empty(), "just flushed");
        c.restore(d);
        let all = c.take_all();
        let hits: i64 = all.iter().filter(|d| d.field == "hits").map(|d| d.by).sum();
        assert_eq!(hits, 2);
        assert_eq!(c.totals()[0].hit_rate, 2.0 / 3.0);
    }
}
