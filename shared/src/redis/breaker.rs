//! Circuit breaker: after a few consecutive Redis failures, stop trying for a while so
//! that a dead Redis costs an atomic load per call instead of a timeout per call.
//!
//! Closed → (N consecutive failures) → Open → (open time elapsed) one probe let through
//! → success closes it, failure keeps it open. The open time starts short (a sixteenth
//! of the cool-down, at least 100 ms) and doubles with every probe up to the cool-down,
//! so that a Redis back after a restart or a failover (seconds) is used again within
//! about a second, while a long outage costs one probe per cool-down. Lock-free: the hot
//! path (closed) is one atomic load. Time comes from `tokio::time` so tests can pause it.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Shared by every Redis operation of one process.
#[derive(Debug)]
pub struct Breaker {
    base: Instant,
    threshold: u32,
    /// The longest open time (`LEXPIPE_BREAKER_COOLDOWN_MS`).
    cooldown_ms: u64,
    /// The first open time after the circuit opens.
    first_ms: u64,
    /// The open time in force: `first_ms`, doubled by each probe, at most `cooldown_ms`.
    current_ms: AtomicU64,
    consecutive_failures: AtomicU32,
    /// 0 = closed; otherwise the ms (since `base`, +1) until which the circuit is open.
    open_until: AtomicU64,
    opened_total: AtomicU64,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Breaker {
        let cooldown_ms = cooldown.as_millis().max(1) as u64;
        let first_ms = (cooldown_ms / 16).max(100).min(cooldown_ms);
        Breaker {
            base: Instant::now(),
            threshold: threshold.max(1),
            cooldown_ms,
            first_ms,
            current_ms: AtomicU64::new(first_ms),
            consecutive_failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            opened_total: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        // +1 so that 0 always means "closed".
        self.base.elapsed().as_millis() as u64 + 1
    }

    /// May an operation go to Redis now? While open, false, except once per open time
    /// (the probe), which doubles the open time and moves the deadline by it, so that
    /// concurrent callers do not all probe and a failed probe waits longer.
    pub fn allow(&self) -> bool {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        let now = self.now_ms();
        if now < until {
            return false;
        }
        let next = (self.current_ms.load(Ordering::Relaxed) * 2).min(self.cooldown_ms);
        let probe = self
            .open_until
            .compare_exchange(until, now + next, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if probe {
            self.current_ms.store(next, Ordering::Relaxed);
            tracing::debug!(next_ms = next, "redis circuit breaker: probing");
        }
        probe
    }

    pub fn on_success(&self) {
        if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.consecutive_failures.store(0, Ordering::Relaxed);
        }
        if self.open_until.load(Ordering::Relaxed) != 0 {
            self.open_until.store(0, Ordering::Release);
            self.current_ms.store(self.first_ms, Ordering::Relaxed);
            tracing::info!("redis circuit breaker closed: Redis answers again");
        }
    }

    pub fn on_failure(&self) {
        let n = self.consecutive_failures.fetch_add(1, Ordering::AcqRel) + 1;
        if n >= self.threshold {
            let open_for = self.current_ms.load(Ordering::Relaxed);
            let prev = self
                .open_until
                .swap(self.now_ms() + open_for, Ordering::AcqRel);
            if prev == 0 {
                self.opened_total.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    failures = n,
                    open_ms = open_for,
                    max_open_ms = self.cooldown_ms,
                    "redis circuit breaker opened: skipping Redis, probing again after a pause \
                     that doubles up to the cool-down"
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
    async fn opens_after_threshold_and_lets_one_probe_through_after_the_first_pause() {
        // 16 s cool-down: the first pause is 1 s.
        let b = Breaker::new(3, Duration::from_secs(16));
        for _ in 0..2 {
            assert!(b.allow());
            b.on_failure();
        }
        assert!(b.allow());
        b.on_failure();
        assert!(!b.allow(), "open after 3 failures");
        tokio::time::advance(Duration::from_millis(900)).await;
        assert!(!b.allow(), "still open before the first pause ends");
        tokio::time::advance(Duration::from_millis(200)).await;
        assert!(b.allow(), "one probe after the first pause");
        assert!(!b.allow(), "only one probe");
        b.on_success();
        assert!(
            b.allow() && b.allow(),
            "closed again after a successful probe"
        );
        assert_eq!(b.times_opened(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_probes_double_the_pause_up_to_the_cooldown_and_success_resets_it() {
        let b = Breaker::new(1, Duration::from_secs(16));
        b.on_failure();
        // Pauses of 1, 2, 4, 8, 16, 16 s: each probe fails.
        for pause in [1, 2, 4, 8, 16, 16] {
            let pause = Duration::from_secs(pause);
            tokio::time::advance(pause - Duration::from_millis(10)).await;
            assert!(!b.allow(), "still open {pause:?} in");
            tokio::time::advance(Duration::from_millis(20)).await;
            assert!(b.allow(), "the probe after {pause:?}");
            b.on_failure();
        }
        tokio::time::advance(Duration::from_secs(17)).await;
        assert!(b.allow());
        b.on_success();
        // Open again later: the pause starts short again.
        b.on_failure();
        tokio::time::advance(Duration::from_millis(1100)).await;
        assert!(b.allow(), "back to the first pause after a success");
        assert_eq!(b.times_opened(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_cooldown_keeps_a_first_pause_of_at_least_100_ms_and_at_most_itself() {
        let b = Breaker::new(1, Duration::from_millis(50));
        b.on_failure();
        tokio::time::advance(Duration::from_millis(40)).await;
        assert!(!b.allow());
        tokio::time::advance(Duration::from_millis(20)).await;
        assert!(b.allow(), "the cool-down caps the first pause");
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
