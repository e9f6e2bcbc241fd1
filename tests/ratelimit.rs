//! The shared rate limiter against the real Redis: many tasks and two "processes" never
//! exceed a limit in any window (checked from the server's grant timestamps); how much of
//! the limit they use is a figure `lexpipe bench ratelimit` prints, not asserted here; a
//! provider's 429 pauses every limiter; costs, deadlines, LLM token
//! corrections, the in-process fallback on a dead Redis, and TTLs on every key.

use std::sync::Arc;
use std::time::Duration;

use lexpipe::config::Config;
use lexpipe::redis::ratelimit::{
    Api, Grant, Limit, RateLimitConfig, RateLimitError, RateLimiter, Via,
};
use lexpipe::redis::{KeyBuilder, RedisHandle};
use lexpipe_tests::{
    CLOSED_PORT_URL, cleanup, config_with, keys_of, raw_connection, require_redis, unique_env,
    wait_until,
};

const SECOND_US: u64 = 1_000_000;

/// A limiter with its own connection (its own "process").
fn limiter(cfg: &Config, limits: RateLimitConfig) -> Arc<RateLimiter> {
    let handle = RedisHandle::new(cfg).expect("redis handle");
    Arc::new(RateLimiter::new(
        Some(handle),
        KeyBuilder::new(&cfg.env),
        limits,
    ))
}

fn textract_get(per_second: u64) -> RateLimitConfig {
    RateLimitConfig {
        textract_get: Limit::per_second(per_second),
        ..RateLimitConfig::default()
    }
}

/// `tasks` tasks each acquiring one unit of `api` in a loop for `run_for`.
async fn hammer(rl: Arc<RateLimiter>, api: Api, tasks: usize, run_for: Duration) -> Vec<Grant> {
    let end = tokio::time::Instant::now() + run_for;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let rl = rl.clone();
        set.spawn(async move {
            let mut grants = Vec::new();
            loop {
                let left = end.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                match rl.acquire_with_deadline(api, 1, left).await {
                    Ok(g) => grants.push(g),
                    Err(RateLimitError::DeadlineExceeded { .. }) => break,
                    Err(e) => panic!("unexpected error: {e}"),
                }
            }
            grants
        });
    }
    let mut all = Vec::new();
    while let Some(r) = set.join_next().await {
        all.extend(r.expect("task"));
    }
    all
}

/// The most grants in any window of `window_us` starting at a grant (every window that can
/// hold the most starts at one).
fn most_in_any_window(grants: &[Grant], window_us: u64) -> usize {
    let mut stamps: Vec<u64> = grants.iter().map(|g| g.granted_at_us).collect();
    stamps.sort_unstable();
    let mut most = 0;
    let mut end = 0;
    for (start, &t) in stamps.iter().enumerate() {
        while end < stamps.len() && stamps[end] < t + window_us {
            end += 1;
        }
        most = most.max(end - start);
    }
    most
}

async fn server_time_us() -> u64 {
    let mut c = raw_connection().await;
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut c).await.unwrap();
    secs * SECOND_US + micros
}

/// Sum of the costs in a window log (members are `{time}-{token}:{cost}`).
async fn window_sum(key: &str) -> u64 {
    let mut c = raw_connection().await;
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .query_async(&mut c)
        .await
        .unwrap();
    members
        .iter()
        .map(|m| m.rsplit(':').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

async fn window_len(key: &str) -> usize {
    let mut c = raw_connection().await;
    redis::cmd("ZCARD")
        .arg(key)
        .query_async(&mut c)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_never_get_more_than_fifty_grants_in_any_second() {
    require_redis().await;
    let env = unique_env("rl-64");
    let rl = limiter(&config_with(&env, &[]), textract_get(50));

    let grants = hammer(rl.clone(), Api::TextractGet, 64, Duration::from_secs(5)).await;

    assert!(grants.iter().all(|g| g.via == Via::Redis));
    let most = most_in_any_window(&grants, SECOND_US);
    assert!(most <= 50, "{most} grants in one second");
    let stats = &rl.stats()[1];
    assert_eq!(stats.api, Api::TextractGet);
    assert_eq!(stats.grants as usize, grants.len());
    assert!(stats.waits > 0 && stats.refusals > 0);
    cleanup(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_limiters_with_separate_connections_share_one_limit() {
    require_redis().await;
    let env = unique_env("rl-two");
    let cfg = config_with(&env, &[]);
    let (a, b) = (
        limiter(&cfg, textract_get(40)),
        limiter(&cfg, textract_get(40)),
    );

    let run_for = Duration::from_secs(2);
    let (from_a, from_b) = tokio::join!(
        hammer(a, Api::TextractGet, 16, run_for),
        hammer(b, Api::TextractGet, 16, run_for)
    );

    assert!(!from_a.is_empty() && !from_b.is_empty());
    let all: Vec<Grant> = from_a.into_iter().chain(from_b).collect();
    let most = most_in_any_window(&all, SECOND_US);
    assert!(most <= 40, "{most} grants in one second across both");
    assert!(
        all.len() as f64 >= 0.9 * 40.0 * 2.0,
        "only {} grants",
        all.len()
    );
    cleanup(&env).await;
}

#[tokio::test]
async fn a_429_seen_by_one_limiter_makes_another_limiter_wait_until_the_pause_ends() {
    require_redis().await;
    let env = unique_env("rl-429");
    let cfg = config_with(&env, &[]);
    let (refused, other) = (
        limiter(&cfg, RateLimitConfig::default()),
        limiter(&cfg, RateLimitConfig::default()),
    );
    let retry_after = lexpipe::redis::ratelimit::parse_retry_after("2").unwrap();

    let before = server_time_us().await;
    let pause = refused
        .throttled(Api::TextractStart, Some(retry_after))
        .await;
    let unpaused = other.acquire(Api::TextractGet, 1).await.unwrap();
    let grant = other.acquire(Api::TextractStart, 1).await.unwrap();

    assert_eq!(pause, Duration::from_secs(2));
    assert!(
        grant.granted_at_us + 5_000 >= before + 2 * SECOND_US,
        "granted {} µs after the pause started",
        grant.granted_at_us - before
    );
    assert!(grant.waited > Duration::ZERO);
    assert_eq!(grant.via, Via::Redis);
    assert!(
        unpaused.granted_at_us < before + 2 * SECOND_US,
        "another API is not paused"
    );
    cleanup(&env).await;
}

#[tokio::test]
async fn a_shorter_retry_after_never_shortens_a_pause() {
    require_redis().await;
    let env = unique_env("rl-extend");
    let rl = limiter(&config_with(&env, &[]), RateLimitConfig::default());

    rl.throttled(Api::LlmRequests, Some(Duration::from_secs(10)))
        .await;
    let in_effect = rl
        .throttled(Api::LlmTokens, Some(Duration::from_secs(1)))
        .await;
    let capped = rl
        .throttled(Api::TextractGet, Some(Duration::from_secs(3600)))
        .await;

    assert!(in_effect > Duration::from_secs(9), "{in_effect:?}");
    let mut c = raw_connection().await;
    let pttl: i64 = redis::cmd("PTTL")
        .arg(rl.pause_key(Api::LlmRequests))
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(pttl > 9_000, "{pttl}");
    assert_eq!(capped, Duration::from_secs(60));
    cleanup(&env).await;
}

#[tokio::test]
async fn a_cost_above_the_whole_limit_fails_at_once_and_writes_nothing() {
    require_redis().await;
    let env = unique_env("rl-cost");
    let rl = limiter(&config_with(&env, &[]), textract_get(50));

    let err = rl.acquire(Api::TextractGet, 51).await.unwrap_err();
    let llm = rl.acquire_llm(200_001).await.unwrap_err();

    assert_eq!(
        err,
        RateLimitError::CostAboveLimit {
            api: Api::TextractGet,
            cost: 51,
            limit: 50
        }
    );
    assert!(!err.is_retryable());
    assert!(matches!(
        llm,
        RateLimitError::CostAboveLimit {
            api: Api::LlmTokens,
            ..
        }
    ));
    assert!(keys_of(&env).await.is_empty());
    cleanup(&env).await;
}

#[tokio::test]
async fn an_acquire_that_cannot_be_granted_in_time_fails_saying_how_long_it_waited() {
    require_redis().await;
    let env = unique_env("rl-deadline");
    let rl = limiter(&config_with(&env, &[]), textract_get(5));
    for _ in 0..5 {
        rl.acquire(Api::TextractGet, 1).await.unwrap();
    }
    let deadline = Duration::from_millis(1500);

    // Capacity frees in about a second, so the waiter is refused and sleeps; a 429 arriving
    // once it was refused pauses the API past its deadline, so it gives up when it wakes.
    let waiter = {
        let rl = rl.clone();
        tokio::spawn(async move {
            rl.acquire_with_deadline(Api::TextractGet, 1, deadline)
                .await
        })
    };
    wait_until("the waiter has been refused", || {
        rl.stats()[1].refusals >= 1
    })
    .await;
    rl.throttled(Api::TextractGet, Some(Duration::from_secs(2)))
        .await;
    let err = waiter.await.unwrap().unwrap_err();

    let RateLimitError::DeadlineExceeded { api, waited } = err else {
        panic!("expected DeadlineExceeded, got {err:?}");
    };
    assert_eq!(api, Api::TextractGet);
    assert!(waited > Duration::ZERO && waited <= deadline, "{waited:?}");
    let stats = &rl.stats()[1];
    assert_eq!(stats.deadline_exceeded, 1);
    assert_eq!(stats.throttled, 1);
    assert_eq!(stats.grants, 5);
    cleanup(&env).await;
}

#[tokio::test]
async fn a_saturated_limit_grants_again_once_the_oldest_grant_leaves_the_window() {
    require_redis().await;
    let env = unique_env("rl-slide");
    let rl = limiter(&config_with(&env, &[]), textract_get(5));
    let mut first = Vec::new();
    for _ in 0..5 {
        first.push(rl.acquire(Api::TextractGet, 1).await.unwrap());
    }

    let refused = rl
        .acquire_with_deadline(Api::TextractGet, 1, Duration::ZERO)
        .await;
    let later = rl.acquire(Api::TextractGet, 1).await.unwrap();

    assert!(matches!(
        refused,
        Err(RateLimitError::DeadlineExceeded { .. })
    ));
    assert!(later.granted_at_us >= first[0].granted_at_us + SECOND_US);
    assert!(later.waited > Duration::ZERO);
    cleanup(&env).await;
}

#[tokio::test]
async fn llm_tokens_reserved_as_an_estimate_are_corrected_to_the_actual_usage() {
    require_redis().await;
    let env = unique_env("rl-llm");
    let rl = limiter(
        &config_with(&env, &[]),
        RateLimitConfig {
            llm_requests: Limit::per_minute(10),
            llm_tokens: Limit::per_minute(1000),
            ..RateLimitConfig::default()
        },
    );
    let (tokens, requests) = (
        rl.window_key(Api::LlmTokens).to_string(),
        rl.window_key(Api::LlmRequests).to_string(),
    );

    let mut grant = rl.acquire_llm(300).await.unwrap();
    assert_eq!(window_sum(&tokens).await, 300);
    assert_eq!(window_len(&requests).await, 1);

    assert!(rl.correct_llm_tokens(&mut grant, 450).await);
    assert_eq!(window_sum(&tokens).await, 450);
    assert_eq!(grant.llm_tokens(), Some(450));
    let too_many = rl.acquire_llm_with_deadline(600, Duration::ZERO).await;
    assert!(matches!(
        too_many,
        Err(RateLimitError::DeadlineExceeded {
            api: Api::LlmTokens,
            ..
        })
    ));
    assert_eq!(
        window_len(&requests).await,
        1,
        "a call refused for tokens holds no request"
    );

    assert!(rl.correct_llm_tokens(&mut grant, 100).await);
    assert_eq!(window_sum(&tokens).await, 100);
    let fits = rl
        .acquire_llm_with_deadline(900, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(fits.via, Via::Redis);
    assert_eq!(window_sum(&tokens).await, 1000);
    assert_eq!(window_len(&requests).await, 2);
    cleanup(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_on_a_closed_port_acquires_use_the_local_share_of_the_limit() {
    require_redis().await;
    let env = unique_env("rl-down");
    let cfg = config_with(&env, &[("REDIS_URL", CLOSED_PORT_URL)]);
    let rl = limiter(&cfg, textract_get(40));

    let grants = hammer(rl.clone(), Api::TextractGet, 8, Duration::from_secs(2)).await;

    assert!(grants.iter().all(|g| g.via == Via::Local));
    let most = most_in_any_window(&grants, SECOND_US);
    assert!(
        most <= 10,
        "{most} grants in one second; the local share is 10"
    );
    assert!(grants.len() >= 18, "only {} grants", grants.len());
    let stats = &rl.stats()[1];
    assert_eq!(stats.local_grants as usize, grants.len());
    assert!(keys_of(&env).await.is_empty());
}

#[tokio::test]
async fn every_rate_limit_key_has_a_ttl_and_its_api_hash_tag() {
    require_redis().await;
    let env = unique_env("rl-ttl");
    let rl = limiter(&config_with(&env, &[]), RateLimitConfig::default());

    rl.acquire(Api::TextractStart, 1).await.unwrap();
    rl.acquire(Api::TextractGet, 3).await.unwrap();
    let mut grant = rl.acquire_llm(500).await.unwrap();
    rl.correct_llm_tokens(&mut grant, 700).await;
    rl.throttled(Api::LlmRequests, None).await;

    let keys = keys_of(&env).await;
    assert_eq!(keys.len(), 9, "{keys:#?}");
    let mut c = raw_connection().await;
    for key in &keys {
        let pttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(pttl > 0, "{key} has no TTL ({pttl})");
        let rest = key
            .strip_prefix(&format!("lexpipe:{env}:rl:v1:"))
            .expect(key);
        assert!(
            ["{textract_start}:", "{textract_get}:", "{llm}:"]
                .iter()
                .any(|tag| rest.starts_with(tag)),
            "{key}"
        );
    }
    cleanup(&env).await;
}
