//! Distributed locks with fencing tokens, against the real Redis: mutual exclusion under
//! many concurrent tasks, fencing tokens that only grow, owner-only release and extend,
//! TTLs on every key, renewal and its loss, and failing closed when Redis is gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lexpipe::redis::lock::{FENCE_TTL, Lease, LeaseLost, LockName, Locks};
use lexpipe::redis::{KeyBuilder, RedisHandle};
use lexpipe_tests::{
    CLOSED_PORT_URL, cleanup, config_with, keys_of, raw_connection, require_redis, unique_env,
};

/// Long enough never to run out during a test that does not wait for it.
const LONG: Duration = Duration::from_secs(60);
/// Short enough to wait out.
const SHORT: Duration = Duration::from_millis(50);
/// Bound on any wait for something that should happen soon (a hang guard, not a timing claim).
const PATIENCE: Duration = Duration::from_secs(20);

fn locks_for(env: &str, overrides: &[(&str, &str)]) -> (Locks, RedisHandle) {
    let cfg = config_with(env, overrides);
    let handle = RedisHandle::new(&cfg).expect("redis handle");
    (
        Locks::new(handle.clone(), KeyBuilder::new(&cfg.env)),
        handle,
    )
}

async fn acquired(locks: &Locks, name: &LockName, ttl: Duration) -> Lease {
    locks
        .acquire(name, ttl)
        .await
        .expect("redis answers")
        .expect("the lock is free")
}

async fn pttl(key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut raw_connection().await)
        .await
        .expect("PTTL")
}

/// Waits until Redis has dropped `key` (its TTL ran out).
async fn until_gone(key: &str) {
    let mut c = raw_connection().await;
    tokio::time::timeout(PATIENCE, async {
        loop {
            let n: i64 = redis::cmd("EXISTS")
                .arg(key)
                .query_async(&mut c)
                .await
                .unwrap();
            if n == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the key expires");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_64_tasks_racing_for_one_lock_exactly_one_wins() {
    // Arrange: 64 tasks over 8 connections, released together.
    require_redis().await;
    let env = unique_env("lock-race");
    let handles: Vec<Locks> = (0..8).map(|_| locks_for(&env, &[]).0).collect();
    let name = LockName::queue_item(1);
    let start = Arc::new(tokio::sync::Barrier::new(64));
    // Act
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let locks = handles[i % 8].clone();
            let (name, start) = (name.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                locks.acquire(&name, LONG).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        if let Some(lease) = t.await.unwrap().expect("redis answers") {
            winners.push(lease);
        }
    }
    // Assert
    assert_eq!(winners.len(), 1, "exactly one of 64 tasks holds the lock");
    cleanup(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_workers_taking_turns_never_overlap_and_see_ever_growing_fencing_tokens() {
    // Arrange: each worker takes the lock 25 times; inside, it checks nobody else is
    // inside and records its token.
    require_redis().await;
    let env = unique_env("lock-turns");
    let (locks, _) = locks_for(&env, &[]);
    let name = LockName::queue_item(2);
    let inside = Arc::new(AtomicBool::new(false));
    let tokens = Arc::new(std::sync::Mutex::new(Vec::new()));
    // Act
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (locks, name) = (locks.clone(), name.clone());
            let (inside, tokens) = (inside.clone(), tokens.clone());
            tokio::spawn(async move {
                let mut turns = 0;
                while turns < 25 {
                    let Some(lease) = locks.acquire(&name, LONG).await.expect("redis answers")
                    else {
                        tokio::task::yield_now().await;
                        continue;
                    };
                    assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                    tokens.lock().unwrap().push(lease.fencing_token());
                    tokio::task::yield_now().await;
                    inside.store(false, Ordering::SeqCst);
                    assert!(locks.release(&lease).await.expect("redis answers"));
                    turns += 1;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    // Assert
    let tokens = std::mem::take(&mut *tokens.lock().unwrap());
    assert_eq!(tokens.len(), 16 * 25);
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "fencing tokens grow with every acquisition"
    );
    cleanup(&env).await;
}

#[tokio::test]
async fn fencing_tokens_strictly_increase_across_release_and_expiry() {
    require_redis().await;
    let env = unique_env("lock-fence");
    let (locks, _) = locks_for(&env, &[]);
    let name = LockName::queue_item(3);
    // Act: acquire and release; acquire and let it expire; acquire again.
    let first = acquired(&locks, &name, LONG).await;
    assert!(locks.release(&first).await.unwrap());
    let second = acquired(&locks, &name, SHORT).await;
    until_gone(second.key()).await;
    let third = acquired(&locks, &name, LONG).await;
    // Assert
    assert!(first.fencing_token() < second.fencing_token());
    assert!(second.fencing_token() < third.fencing_token());
    cleanup(&env).await;
}

#[tokio::test]
async fn a_lost_fence_counter_restarts_above_every_token_already_issued() {
    // Arrange: a few tokens issued, then the counter is gone (eviction, a restart
    // without persistence).
    require_redis().await;
    let env = unique_env("lock-fence-lost");
    let (locks, _) = locks_for(&env, &[]);
    let name = LockName::queue_item(4);
    let mut last = 0;
    for _ in 0..5 {
        let lease = acquired(&locks, &name, LONG).await;
        last = lease.fencing_token();
        assert!(locks.release(&lease).await.unwrap());
    }
    let _: i64 = redis::cmd("DEL")
        .arg(locks.fence_key(&name))
        .query_async(&mut raw_connection().await)
        .await
        .unwrap();
    // Act
    let next = acquired(&locks, &name, LONG).await;
    // Assert
    assert!(
        next.fencing_token() > last,
        "{} after {last}",
        next.fencing_token()
    );
    assert!(
        i64::try_from(next.fencing_token()).is_ok(),
        "fits PostgreSQL bigint"
    );
    cleanup(&env).await;
}

#[tokio::test]
async fn a_release_by_a_non_owner_does_nothing() {
    // Arrange: the first owner's lease expires and a second owner takes the lock.
    require_redis().await;
    let env = unique_env("lock-release");
    let (locks, _) = locks_for(&env, &[]);
    let name = LockName::queue_item(5);
    let stale = acquired(&locks, &name, SHORT).await;
    until_gone(stale.key()).await;
    let current = acquired(&locks, &name, LONG).await;
    // Act
    let released = locks.release(&stale).await.unwrap();
    // Assert: nothing released; the second owner still holds it.
    assert!(!released);
    assert!(locks.acquire(&name, LONG).await.unwrap().is_none());
    assert!(locks.release(&current).await.unwrap());
    assert!(locks.acquire(&name, LONG).await.unwrap().is_some());
    cleanup(&env).await;
}

#[tokio::test]
async fn extending_a_held_lease_moves_its_expiry() {
    require_redis().await;
    let env = unique_env("lock-extend");
    let (locks, _) = locks_for(&env, &[]);
    let name = LockName::queue_item(6);
    let mut lease = acquired(&locks, &name, Duration::from_secs(5)).await;
    let before = lease.valid_until();
    // Act
    let extended = locks.extend(&mut lease, LONG).await.unwrap();
    // Assert
    assert!(extended);
    assert!(pttl(lease.key()).await > 5_000);
    assert_eq!(lease.ttl(), LONG);
    assert!(lease.valid_until() > before);
    cleanup(&env).await;
}

#[tokio::test]
async fn extending_after_expiry_or_after_another_owner_took_the_lock_fails() {
    require_redis().await;
    let env = unique_env("lock-extend-late");
    let (locks, _) = locks_for(&env, &[]);
    let name = LockName::queue_item(7);
    // Act + Assert: expired, nobody holds it.
    let mut lease = acquired(&locks, &name, SHORT).await;
    until_gone(lease.key()).await;
    assert!(!locks.extend(&mut lease, LONG).await.unwrap());
    assert_eq!(
        pttl(lease.key()).await,
        -2,
        "an expired lock is not revived"
    );
    // Act + Assert: someone else holds it now.
    let other = acquired(&locks, &name, Duration::from_secs(5)).await;
    assert!(!locks.extend(&mut lease, LONG).await.unwrap());
    assert!(
        pttl(other.key()).await <= 5_000,
        "the other owner's expiry is untouched"
    );
    cleanup(&env).await;
}

#[tokio::test]
async fn lock_and_fence_keys_always_carry_a_ttl() {
    require_redis().await;
    let env = unique_env("lock-ttl");
    let (locks, _) = locks_for(&env, &[]);
    let fence_ms = FENCE_TTL.as_millis() as i64;
    for id in 0..5 {
        let name = LockName::queue_item(id);
        let mut lease = acquired(&locks, &name, Duration::from_secs(10)).await;
        let lock_ttl = pttl(&locks.lock_key(&name)).await;
        assert!(lock_ttl > 0 && lock_ttl <= 10_000, "lock ttl {lock_ttl}");
        let fence_ttl = pttl(&locks.fence_key(&name)).await;
        assert!(
            fence_ttl > 0 && fence_ttl <= fence_ms,
            "fence ttl {fence_ttl}"
        );
        assert!(locks.extend(&mut lease, LONG).await.unwrap());
        if id % 2 == 0 {
            assert!(locks.release(&lease).await.unwrap());
        }
    }
    let keys = keys_of(&env).await;
    assert_eq!(keys.len(), 5 + 2, "5 fence counters and 2 unreleased locks");
    for key in keys {
        let ttl = pttl(&key).await;
        assert!(ttl > 0, "{key} has no ttl ({ttl})");
    }
    cleanup(&env).await;
}

#[tokio::test]
async fn a_lock_on_a_hostile_id_stays_inside_its_own_key_and_slot() {
    require_redis().await;
    let env = unique_env("lock-hostile");
    let (locks, _) = locks_for(&env, &[]);
    let name = LockName::new("document", "a}{b:*\nc d/../../x");
    let lease = acquired(&locks, &name, LONG).await;
    for key in [lease.key().to_string(), locks.fence_key(&name)] {
        assert!(key.starts_with(&format!("lexpipe:{env}:")));
        assert_eq!(key.matches('{').count(), 1, "{key}");
        assert_eq!(key.matches('}').count(), 1, "{key}");
        assert!(!key.contains('*') && !key.contains('\n') && !key.contains(' '));
    }
    cleanup(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_holds_a_lock_past_its_ttl() {
    // Arrange
    require_redis().await;
    let env = unique_env("lock-keep");
    let (locks, _) = locks_for(&env, &[]);
    let name = LockName::queue_item(8);
    let ttl = Duration::from_secs(1);
    let lease = acquired(&locks, &name, ttl).await;
    let token = lease.fencing_token();
    // Act: three lease lengths pass.
    let renewal = locks.keep_alive(lease);
    tokio::time::sleep(ttl * 3).await;
    // Assert: still ours.
    assert_eq!(renewal.is_lost(), None);
    assert_eq!(renewal.fencing_token(), token);
    assert!(pttl(&locks.lock_key(&name)).await > 0);
    assert!(locks.acquire(&name, LONG).await.unwrap().is_none());
    let lease = renewal.stop().await;
    assert!(
        locks.release(&lease).await.unwrap(),
        "still held after renewal stops"
    );
    cleanup(&env).await;
}

#[tokio::test]
async fn keep_alive_reports_loss_when_the_lock_is_deleted() {
    require_redis().await;
    let env = unique_env("lock-deleted");
    let (locks, _) = locks_for(&env, &[]);
    let name = LockName::queue_item(9);
    let renewal = locks.keep_alive(acquired(&locks, &name, Duration::from_millis(300)).await);
    // Act
    let _: i64 = redis::cmd("DEL")
        .arg(locks.lock_key(&name))
        .query_async(&mut raw_connection().await)
        .await
        .unwrap();
    let lost = tokio::time::timeout(PATIENCE, renewal.lost()).await;
    // Assert
    assert_eq!(lost, Ok(LeaseLost::NotHeld));
    assert_eq!(renewal.is_lost(), Some(LeaseLost::NotHeld));
    let lease = renewal.stop().await;
    assert!(!locks.release(&lease).await.unwrap());
    cleanup(&env).await;
}

#[tokio::test]
async fn keep_alive_reports_loss_when_another_owner_takes_the_lock() {
    require_redis().await;
    let env = unique_env("lock-stolen");
    let (locks, _) = locks_for(&env, &[]);
    let name = LockName::queue_item(10);
    let renewal = locks.keep_alive(acquired(&locks, &name, Duration::from_millis(300)).await);
    // Act: the lock is overwritten by someone else's token (as after a lost, expired lease).
    let _: () = redis::cmd("SET")
        .arg(locks.lock_key(&name))
        .arg("someone-else")
        .arg("PX")
        .arg(60_000)
        .query_async(&mut raw_connection().await)
        .await
        .unwrap();
    let lost = tokio::time::timeout(PATIENCE, renewal.lost()).await;
    // Assert: lost, and the other owner's lock is untouched.
    assert_eq!(lost, Ok(LeaseLost::NotHeld));
    let holder: String = redis::cmd("GET")
        .arg(locks.lock_key(&name))
        .query_async(&mut raw_connection().await)
        .await
        .unwrap();
    assert_eq!(holder, "someone-else");
    cleanup(&env).await;
}

#[tokio::test]
async fn keep_alive_reports_loss_when_redis_stays_unreachable_until_the_lease_runs_out() {
    // Arrange: a breaker that opens on one failure and stays open.
    require_redis().await;
    let env = unique_env("lock-unreach");
    let (locks, handle) = locks_for(
        &env,
        &[
            ("LEXPIPE_BREAKER_FAILURES", "1"),
            ("LEXPIPE_BREAKER_COOLDOWN_MS", "600000"),
        ],
    );
    let name = LockName::queue_item(11);
    let renewal = locks.keep_alive(acquired(&locks, &name, Duration::from_millis(500)).await);
    // Act: Redis becomes unreachable (the breaker is held open, as after failures).
    let lost = tokio::time::timeout(PATIENCE, async {
        let mut trip = tokio::time::interval(Duration::from_millis(20));
        loop {
            tokio::select! {
                reason = renewal.lost() => return reason,
                _ = trip.tick() => handle.breaker().on_failure(),
            }
        }
    })
    .await;
    // Assert
    assert_eq!(lost, Ok(LeaseLost::Unreachable));
    cleanup(&env).await;
}

#[tokio::test]
async fn dropping_a_renewal_stops_renewing_and_the_lock_expires() {
    require_redis().await;
    let env = unique_env("lock-drop");
    let (locks, _) = locks_for(&env, &[]);
    let name = LockName::queue_item(12);
    let renewal = locks.keep_alive(acquired(&locks, &name, Duration::from_millis(300)).await);
    // Act
    drop(renewal);
    // Assert: the lock runs out and can be taken again.
    until_gone(&locks.lock_key(&name)).await;
    assert!(locks.acquire(&name, LONG).await.unwrap().is_some());
    cleanup(&env).await;
}

#[tokio::test]
async fn with_redis_on_a_closed_port_acquire_is_an_error_never_a_lease() {
    let env = unique_env("lock-down");
    let (locks, _) = locks_for(
        &env,
        &[
            ("REDIS_URL", CLOSED_PORT_URL),
            ("LEXPIPE_BREAKER_FAILURES", "3"),
        ],
    );
    // Before and after the breaker opens, every call is an error.
    for id in 0..10 {
        let result = locks
            .acquire(&LockName::queue_item(id), Duration::from_secs(5))
            .await;
        let err = result.expect_err("no lease without redis");
        assert_eq!(err.error_type(), "LockUnavailable");
        assert!(err.is_retryable());
    }
}
