//! `lexpipe bench ratelimit`: what one decision of the shared rate limiter costs on one
//! connection, and whether the limit holds (and is used) under contention.
//!
//! For 1, 16 and 64 tasks sharing one connection, each task calls the non-blocking
//! [`RateLimiter::try_acquire`] in a loop for a few seconds against a limit far below what
//! the script can decide, so most decisions are refusals, as under real overload. Reported:
//! decisions per second, latency of one decision, *violations* (grants that start a
//! one-second window, measured on the Redis server's grant timestamps, holding more than
//! the limit: must be 0) and *utilisation* (grants in the first run length of server time
//! after the first grant, over what the limit allowed in it).
//!
//! A second scenario is the one the integration test runs for the limit itself: 64 tasks
//! each *waiting* in [`RateLimiter::acquire_with_deadline`] against a limit of 50/s for 5 s.
//! It reports the same violations and the utilisation (grants over 50 × 5): how much of a
//! small limit waiting callers really use, which depends on how promptly they wake, so a
//! figure to watch rather than something a test could assert. Prints figures; never fails
//! on them.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lexpipe::config::Config;
use lexpipe::redis::ratelimit::{
    Api, Attempt, Limit, RateLimitConfig, RateLimitError, RateLimiter, Via,
};
use lexpipe::redis::{KeyBuilder, RedisHandle};

/// The limit under test: low enough that every run saturates it, high enough that a
/// window holds many grants.
const LIMIT_PER_SEC: u64 = 1000;
/// Length of each run.
const RUN: Duration = Duration::from_secs(3);
const TASKS: [usize; 3] = [1, 16, 64];
/// The script's rate on one connection measured when the limiter was written.
const ANCHOR_DECISIONS_PER_SEC: f64 = 13_200.0;
/// The waiting scenario: tasks, limit and length (those of the integration test).
const WAITING_TASKS: usize = 64;
const WAITING_LIMIT_PER_SEC: u64 = 50;
const WAITING_RUN: Duration = Duration::from_secs(5);

#[derive(serde::Serialize)]
struct Row {
    tasks: usize,
    seconds: f64,
    limit_per_sec: u64,
    decisions: u64,
    decisions_per_sec: f64,
    decision_p50_us: f64,
    decision_p99_us: f64,
    granted: usize,
    allowed: u64,
    utilisation: f64,
    /// Grants starting a one-second window that holds more than the limit.
    violations: usize,
    max_in_one_second: usize,
    /// Decisions taken by the in-process fallback (Redis unreachable): should be 0.
    local_decisions: u64,
}

/// The waiting scenario's figures.
#[derive(serde::Serialize)]
struct WaitingRow {
    tasks: usize,
    /// Until the last task stopped: a task stops as soon as its next grant would come
    /// after the run's end, so this can be under the run's length.
    seconds: f64,
    limit_per_sec: u64,
    granted: usize,
    /// The limit times the run length.
    allowed: u64,
    /// `granted / allowed`.
    utilisation: f64,
    violations: usize,
    max_in_one_second: usize,
    local_grants: usize,
}

#[derive(serde::Serialize)]
struct Figures {
    runs: Vec<Row>,
    waiting: WaitingRow,
    anchor_decisions_per_sec: f64,
}

/// Runs the benchmark against the configured Redis and prints a table (or JSON).
///
/// # Errors
/// Redis cannot be reached, or a task fails; never because of a figure.
pub async fn run(config: Config, json: bool) -> anyhow::Result<ExitCode> {
    let handle = RedisHandle::new(&config)?;
    handle.connect().await?;
    let mut runs = Vec::new();
    for tasks in TASKS {
        runs.push(one_run(&config, &handle, tasks).await?);
    }
    let waiting = waiting_run(&config, &handle).await?;
    let figures = Figures {
        runs,
        waiting,
        anchor_decisions_per_sec: ANCHOR_DECISIONS_PER_SEC,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        print_table(&figures);
    }
    Ok(ExitCode::SUCCESS)
}

/// A limiter of `textract_get` at `per_sec`, under a fresh key prefix so runs do not see
/// each other's grants; the keys expire a second after the run.
fn fresh_limiter(config: &Config, handle: &RedisHandle, per_sec: u64) -> Arc<RateLimiter> {
    let env = format!("{}-rlbench-{:08x}", config.env, rand_suffix());
    Arc::new(RateLimiter::new(
        Some(handle.clone()),
        KeyBuilder::new(&env),
        RateLimitConfig {
            textract_get: Limit::per_second(per_sec),
            ..RateLimitConfig::default()
        },
    ))
}

async fn one_run(config: &Config, handle: &RedisHandle, tasks: usize) -> anyhow::Result<Row> {
    let limiter = fresh_limiter(config, handle, LIMIT_PER_SEC);
    // Load the script and warm the connection outside the measurement.
    let _ = limiter.try_acquire(Api::TextractStart, 1).await?;

    let start = Instant::now();
    let end = start + RUN;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let limiter = limiter.clone();
        set.spawn(async move {
            let mut stamps = Vec::new();
            let mut latencies = Vec::new();
            let mut local = 0u64;
            while Instant::now() < end {
                let t = Instant::now();
                let attempt = limiter.try_acquire(Api::TextractGet, 1).await?;
                latencies.push(t.elapsed());
                let via = match attempt {
                    Attempt::Granted(g) => {
                        stamps.push(g.granted_at_us);
                        g.via
                    }
                    Attempt::Refused { via, .. } => via,
                };
                if via == Via::Local {
                    local += 1;
                }
            }
            Ok::<_, anyhow::Error>((stamps, latencies, local))
        });
    }
    let mut stamps = Vec::new();
    let mut latencies = Vec::new();
    let mut local_decisions = 0;
    while let Some(r) = set.join_next().await {
        let (s, l, local) = r??;
        stamps.extend(s);
        latencies.extend(l);
        local_decisions += local;
    }
    let seconds = start.elapsed().as_secs_f64();

    stamps.sort_unstable();
    latencies.sort_unstable();
    let (violations, max_in_one_second) = window_check(&stamps, 1_000_000, LIMIT_PER_SEC);
    // What the limit allowed in `RUN` from the first grant; later grants belong to a
    // window the run did not wait out, so they are left out of the utilisation.
    let allowed = LIMIT_PER_SEC * RUN.as_secs();
    let run_end_us = stamps.first().map_or(0, |f| f + RUN.as_micros() as u64);
    let granted_in_run = stamps.iter().take_while(|&&t| t < run_end_us).count();
    let decisions = latencies.len() as u64;
    Ok(Row {
        tasks,
        seconds,
        limit_per_sec: LIMIT_PER_SEC,
        decisions,
        decisions_per_sec: decisions as f64 / seconds,
        decision_p50_us: percentile_us(&latencies, 0.50),
        decision_p99_us: percentile_us(&latencies, 0.99),
        granted: stamps.len(),
        allowed,
        utilisation: granted_in_run as f64 / allowed as f64,
        violations,
        max_in_one_second,
        local_decisions,
    })
}

/// [`WAITING_TASKS`] tasks each acquiring one unit in a loop, waiting as long as the run
/// has left, for [`WAITING_RUN`].
async fn waiting_run(config: &Config, handle: &RedisHandle) -> anyhow::Result<WaitingRow> {
    let limiter = fresh_limiter(config, handle, WAITING_LIMIT_PER_SEC);
    let _ = limiter.try_acquire(Api::TextractStart, 1).await?;

    let start = tokio::time::Instant::now();
    let end = start + WAITING_RUN;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..WAITING_TASKS {
        let limiter = limiter.clone();
        set.spawn(async move {
            let mut stamps = Vec::new();
            let mut local = 0;
            loop {
                let left = end.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                match limiter
                    .acquire_with_deadline(Api::TextractGet, 1, left)
                    .await
                {
                    Ok(g) => {
                        stamps.push(g.granted_at_us);
                        local += usize::from(g.via == Via::Local);
                    }
                    // The run ends before this task's next turn.
                    Err(RateLimitError::DeadlineExceeded { .. }) => break,
                    Err(e) => return Err(anyhow::Error::from(e)),
                }
            }
            Ok((stamps, local))
        });
    }
    let mut stamps = Vec::new();
    let mut local_grants = 0;
    while let Some(r) = set.join_next().await {
        let (s, local) = r??;
        stamps.extend(s);
        local_grants += local;
    }
    let seconds = start.elapsed().as_secs_f64();

    stamps.sort_unstable();
    let (violations, max_in_one_second) = window_check(&stamps, 1_000_000, WAITING_LIMIT_PER_SEC);
    let allowed = WAITING_LIMIT_PER_SEC * WAITING_RUN.as_secs();
    Ok(WaitingRow {
        tasks: WAITING_TASKS,
        seconds,
        limit_per_sec: WAITING_LIMIT_PER_SEC,
        granted: stamps.len(),
        allowed,
        utilisation: stamps.len() as f64 / allowed as f64,
        violations,
        max_in_one_second,
        local_grants,
    })
}

/// Over sorted grant timestamps: how many grants start a window of `window_us` holding
/// more than `limit` grants, and the most any such window holds.
fn window_check(sorted: &[u64], window_us: u64, limit: u64) -> (usize, usize) {
    let mut violations = 0;
    let mut most = 0;
    let mut end = 0;
    for (start, &t) in sorted.iter().enumerate() {
        while end < sorted.len() && sorted[end] < t + window_us {
            end += 1;
        }
        let n = end - start;
        most = most.max(n);
        if n as u64 > limit {
            violations += 1;
        }
    }
    (violations, most)
}

fn percentile_us(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

fn print_table(f: &Figures) {
    println!(
        "rate limiter: sliding-window script on one connection, limit {LIMIT_PER_SEC}/s, {} s per run",
        RUN.as_secs()
    );
    println!(
        "{:>5}  {:>10}  {:>9}  {:>8}  {:>8}  {:>8}  {:>8}  {:>10}  {:>7}",
        "tasks",
        "decisions",
        "per sec",
        "p50 µs",
        "p99 µs",
        "granted",
        "allowed",
        "violations",
        "used"
    );
    for r in &f.runs {
        println!(
            "{:>5}  {:>10}  {:>9.0}  {:>8.0}  {:>8.0}  {:>8}  {:>8}  {:>10}  {:>6.1}%",
            r.tasks,
            r.decisions,
            r.decisions_per_sec,
            r.decision_p50_us,
            r.decision_p99_us,
            r.granted,
            r.allowed,
            r.violations,
            r.utilisation * 100.0
        );
        if r.local_decisions > 0 {
            println!(
                "       ({} decisions fell back to the in-process limiter)",
                r.local_decisions
            );
        }
    }
    let w = &f.waiting;
    println!(
        "waiting acquires: {} tasks against {}/s for {} s: {} of {} allowed grants, \
         {:.1}% used; violations {}, most in one second {}",
        w.tasks,
        w.limit_per_sec,
        WAITING_RUN.as_secs(),
        w.granted,
        w.allowed,
        w.utilisation * 100.0,
        w.violations,
        w.max_in_one_second
    );
    if w.local_grants > 0 {
        println!(
            "       ({} grants fell back to the in-process limiter)",
            w.local_grants
        );
    }
    println!(
        "anchor: ~{:.1}k decisions/s measured earlier on one connection",
        f.anchor_decisions_per_sec / 1000.0
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_holding_more_than_the_limit_is_a_violation() {
        let stamps = [0, 10, 20, 1_000_005, 1_000_015];
        assert_eq!(window_check(&stamps, 1_000_000, 3), (0, 3));
        assert_eq!(window_check(&stamps, 1_000_000, 2), (3, 3));
    }
}
