//! Circuit breaker: after a few consecutive Redis failures, stop trying for a cool-down so
//! that a dead Redis costs an atomic load per call instead of a timeout per call.
//!
//! Closed → (N consecutive failures) → Open → (cool-down elapsed) one probe let through
//! → success closes it, failure opens it for another cool-down. Lock-free: the hot path
//! (closed) is one atomic load. Time comes from `tokio::time` so tests can pause it.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Shared by every Redis operation of one process.
#[derive(Debug)]
pub struct Breaker {
    base: Instant,
    threshold: u32,
    cooldown_ms: u64,
    consecutive_failures: AtomicU32,
    /// 0 = closed; otherwise the ms (since `base`, +1) until which the circuit is open.
    open_until: AtomicU64,
    opened_total: AtomicU64,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Breaker {
        Breaker {
            base: Instant::now(),
            threshold: threshold.max(1),
            cooldown_ms: cooldown.as_millis().max(1) as u64,
            consecutive_failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            opened_total: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        // +1 so that 0 always means "closed".
        self.base.elapsed().as_millis() as u64 + 1
    }

    /// May an operation go to Redis now? While open, false, except once per cool-down
    /// (the probe), which moves the deadline so concurrent callers do not all probe.
    pub fn allow(&self) -> bool {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        let now = self.now_ms();
        if now < until {
            return false;
        }
        self.open_until
            .compare_exchange(
                until,
                now + self.cooldown_ms,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    pub fn on_success(&self) {
        if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.consecutive_failures.store(0, Ordering::Relaxed);
        }
        if self.open_until.load(Ordering::Relaxed) != 0 {
            self.open_until.store(0, Ordering::Release);
        }
    }

    pub fn on_failure(&self) {
        let n = self.consecutive_failures.fetch_add(1, Ordering::AcqRel) + 1;
        if n >= self.threshold {
            let prev = self
                .open_until
                .swap(self.now_ms() + self.cooldown_ms, Ordering::AcqRel);
            if prev == 0 {
                self.opened_total.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    failures = n,
                    cooldown_ms = self.cooldown_ms,
                    "redis circuit breaker opened: skipping Redis until the cool-down ends"
                );
            }
        }
    }

    /// Is the circuit open (Redis being skipped) right now?
    pub fn is_open(&self) -> bool {
        let until = self.open_until.load(Ordering::Acquire);
        until != 0 && self.now_ms() < until
    }

    /// How many times it opened since start.
    pub fn times_opened(&self) -> u64 {
        self.opened_total.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_threshold_and_lets_one_probe_through_after_cooldown() {
        let b = Breaker::new(3, Duration::from_secs(10));
        for _ in 0..2 {
            assert!(b.allow());
            b.on_failure();
        }
        assert!(b.allow());
        b.on_failure();
        assert!(!b.allow(), "open after 3 failures");
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(!b.allow(), "still open before the cool-down ends");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(b.allow(), "one probe after the cool-down");
        assert!(!b.allow(), "only one probe");
        b.on_success();
        assert!(
            b.allow() && b.allow(),
            "closed again after a successful probe"
        );
        assert_eq!(b.times_opened(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_for_another_cooldown() {
        let b = Breaker::new(1, Duration::from_secs(5));
        b.on_failure();
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(b.allow());
        b.on_failure();
        assert!(!b.allow());
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(b.allow());
    }

    #[test]
    fn success_resets_the_failure_count() {
        let b = Breaker::new(3, Duration::from_secs(5));
        b.on_failure();
        b.on_failure();
        b.on_success();
        b.on_failure();
        b.on_failure();
        assert!(b.allow());
    }
}
