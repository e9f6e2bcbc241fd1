//! Idempotency records against the real Redis: one winner among concurrent calls, stored
//! results, retries after failure, payload validation, take-over of a dead call's record,
//! TTLs on every record, corrupt records, and failing closed when Redis is gone.

use std::time::Duration;

use lexpipe::redis::idempotency::{Idempotency, IdempotencyConfig, IdempotencyError, Outcome};
use lexpipe::redis::{KeyBuilder, RedisHandle};
use lexpipe_tests::{
    CLOSED_PORT_URL, cleanup, config_with, keys_of, raw_connection, require_redis, unique_env,
};
use serde::{Deserialize, Serialize};

const OP: &str = "persist";
/// Bound on any wait for something that should happen soon (a hang guard, not a timing claim).
const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Persisted {
    document_id: String,
    chunks: u32,
}

fn persisted() -> Persisted {
    Persisted {
        document_id: "2f1c".into(),
        chunks: 12,
    }
}

fn idem_for(env: &str, overrides: &[(&str, &str)]) -> (Idempotency, RedisHandle) {
    let cfg = config_with(env, overrides);
    let handle = RedisHandle::new(&cfg).expect("redis handle");
    let idem = Idempotency::new(
        handle.clone(),
        KeyBuilder::new(&cfg.env),
        IdempotencyConfig {
            record_ttl: Duration::from_secs(3600),
            in_progress_expiry: Duration::from_secs(600),
        },
    );
    (idem, handle)
}

async fn proceed(
    idem: &Idempotency,
    key: &str,
    payload: &str,
) -> lexpipe::redis::idempotency::Guard {
    match idem
        .begin(OP, key, payload, None)
        .await
        .expect("redis answers")
    {
        Outcome::Proceed(guard) => guard,
        other => panic!("expected Proceed, got {other:?}"),
    }
}

async fn pttl(key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut raw_connection().await)
        .await
        .expect("PTTL")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_16_concurrent_begins_on_one_key_exactly_one_proceeds_and_15_see_in_progress() {
    // Arrange: 16 tasks over 4 connections, released together.
    require_redis().await;
    let env = unique_env("idem-race");
    let idems: Vec<Idempotency> = (0..4).map(|_| idem_for(&env, &[]).0).collect();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(16));
    // Act
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (idem, start) = (idems[i % 4].clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                idem.begin(OP, "doc-1:sha-a", "payload-a", None).await
            })
        })
        .collect();
    let (mut proceeds, mut in_progress) = (Vec::new(), 0);
    for t in tasks {
        match t.await.unwrap().expect("redis answers") {
            Outcome::Proceed(guard) => proceeds.push(guard),
            Outcome::InProgress => in_progress += 1,
            Outcome::AlreadyDone(v) => panic!("nothing completed yet, got {v}"),
        }
    }
    // Assert
    assert_eq!((proceeds.len(), in_progress), (1, 15));
    assert!(!proceeds[0].took_over());
    cleanup(&env).await;
}

#[tokio::test]
async fn after_complete_a_begin_returns_already_done_with_the_stored_result() {
    require_redis().await;
    let env = unique_env("idem-done");
    let (idem, _) = idem_for(&env, &[]);
    let guard = proceed(&idem, "doc-2", "p").await;
    // Act
    guard.complete(&persisted()).await.unwrap();
    let again = idem.begin(OP, "doc-2", "p", None).await.unwrap();
    let typed = idem
        .begin_typed::<Persisted>(OP, "doc-2", "p", None)
        .await
        .unwrap();
    // Assert
    match again {
        Outcome::AlreadyDone(v) => {
            assert_eq!(v, serde_json::json!({"document_id": "2f1c", "chunks": 12}))
        }
        other => panic!("expected AlreadyDone, got {other:?}"),
    }
    match typed {
        Outcome::AlreadyDone(p) => assert_eq!(p, persisted()),
        other => panic!("expected AlreadyDone, got {other:?}"),
    }
    cleanup(&env).await;
}

#[tokio::test]
async fn after_fail_the_next_begin_proceeds() {
    require_redis().await;
    let env = unique_env("idem-fail");
    let (idem, _) = idem_for(&env, &[]);
    let guard = proceed(&idem, "doc-3", "p").await;
    assert!(matches!(
        idem.begin(OP, "doc-3", "p", None).await.unwrap(),
        Outcome::InProgress
    ));
    // Act
    guard.fail().await.unwrap();
    // Assert
    let retry = proceed(&idem, "doc-3", "p").await;
    assert!(!retry.took_over());
    cleanup(&env).await;
}

#[tokio::test]
async fn a_different_payload_hash_for_the_same_key_is_a_payload_mismatch() {
    require_redis().await;
    let env = unique_env("idem-mismatch");
    let (idem, _) = idem_for(&env, &[]);
    let guard = proceed(&idem, "doc-4", "payload-a").await;
    // Act + Assert: while in progress…
    let err = idem
        .begin(OP, "doc-4", "payload-b", None)
        .await
        .expect_err("another payload is refused");
    assert!(
        matches!(err, IdempotencyError::PayloadMismatch { operation: OP, .. }),
        "{err:?}"
    );
    assert_eq!(err.error_type(), "IdempotencyPayloadMismatch");
    assert!(!err.is_retryable());
    // …and once completed.
    guard.complete(&persisted()).await.unwrap();
    let err = idem
        .begin(OP, "doc-4", "payload-b", None)
        .await
        .expect_err("another payload is refused");
    assert!(
        matches!(err, IdempotencyError::PayloadMismatch { .. }),
        "{err:?}"
    );
    // The same payload still gets the result.
    assert!(matches!(
        idem.begin(OP, "doc-4", "payload-a", None).await.unwrap(),
        Outcome::AlreadyDone(_)
    ));
    cleanup(&env).await;
}

#[tokio::test]
async fn an_expired_in_progress_record_is_taken_over_and_the_old_guard_cannot_complete_it() {
    // Arrange: a call with a short deadline that overruns it (as a caller that died).
    require_redis().await;
    let env = unique_env("idem-takeover");
    let (idem, _) = idem_for(&env, &[]);
    let old = match idem
        .begin(OP, "doc-5", "p", Some(Duration::from_millis(50)))
        .await
        .unwrap()
    {
        Outcome::Proceed(g) => g,
        other => panic!("expected Proceed, got {other:?}"),
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Act
    let new = proceed(&idem, "doc-5", "p").await;
    // Assert: taken over; the old guard is refused and cannot delete the new owner's record.
    assert!(new.took_over());
    let err = old.complete(&persisted()).await.expect_err("superseded");
    assert!(
        matches!(err, IdempotencyError::Superseded { .. }),
        "{err:?}"
    );
    assert_eq!(err.error_type(), "IdempotencySuperseded");
    assert!(matches!(
        idem.begin(OP, "doc-5", "p", None).await.unwrap(),
        Outcome::InProgress
    ));
    new.complete(&Persisted {
        document_id: "new".into(),
        chunks: 1,
    })
    .await
    .unwrap();
    match idem
        .begin_typed::<Persisted>(OP, "doc-5", "p", None)
        .await
        .unwrap()
    {
        Outcome::AlreadyDone(p) => assert_eq!(p.document_id, "new"),
        other => panic!("expected AlreadyDone, got {other:?}"),
    }
    cleanup(&env).await;
}

#[tokio::test]
async fn a_late_fail_of_a_superseded_guard_leaves_the_new_owners_record_alone() {
    require_redis().await;
    let env = unique_env("idem-late-fail");
    let (idem, _) = idem_for(&env, &[]);
    let old = match idem
        .begin(OP, "doc-6", "p", Some(Duration::from_millis(50)))
        .await
        .unwrap()
    {
        Outcome::Proceed(g) => g,
        other => panic!("expected Proceed, got {other:?}"),
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let new = proceed(&idem, "doc-6", "p").await;
    // Act
    old.fail().await.unwrap();
    // Assert
    assert!(matches!(
        idem.begin(OP, "doc-6", "p", None).await.unwrap(),
        Outcome::InProgress
    ));
    new.complete(&persisted()).await.unwrap();
    cleanup(&env).await;
}

#[tokio::test]
async fn every_idempotency_record_carries_a_ttl() {
    require_redis().await;
    let env = unique_env("idem-ttl");
    let (idem, _) = idem_for(&env, &[]);
    let record_ms = 3_600_000;
    // In progress, then completed.
    let guard = proceed(&idem, "doc-7", "p").await;
    let ttl = pttl(guard.key()).await;
    assert!(ttl > 0 && ttl <= record_ms, "in progress: {ttl}");
    let key = guard.key().to_string();
    guard.complete(&persisted()).await.unwrap();
    let ttl = pttl(&key).await;
    assert!(ttl > 0 && ttl <= record_ms, "completed: {ttl}");
    // A deadline longer than the record ttl keeps the record until the deadline.
    let long = match idem
        .begin(OP, "doc-8", "p", Some(Duration::from_secs(7200)))
        .await
        .unwrap()
    {
        Outcome::Proceed(g) => g,
        other => panic!("expected Proceed, got {other:?}"),
    };
    let ttl = pttl(long.key()).await;
    assert!(ttl > record_ms && ttl <= 7_200_000, "long deadline: {ttl}");
    long.fail().await.unwrap();
    // Nothing without a TTL anywhere under the prefix.
    for key in keys_of(&env).await {
        assert!(pttl(&key).await > 0, "{key} has no ttl");
    }
    cleanup(&env).await;
}

#[tokio::test]
async fn the_callers_key_never_appears_raw_in_redis() {
    require_redis().await;
    let env = unique_env("idem-key");
    let (idem, _) = idem_for(&env, &[]);
    let guard = proceed(&idem, "s3://bucket/Contract *final*.pdf", "p").await;
    guard.fail().await.unwrap();
    let guard = proceed(&idem, "s3://bucket/Contract *final*.pdf", "p").await;
    let keys = keys_of(&env).await;
    assert_eq!(keys.len(), 1);
    assert!(keys[0].starts_with(&format!("lexpipe:{env}:idem:v1:persist:")));
    assert!(!keys[0].contains("Contract") && !keys[0].contains('*'));
    guard.fail().await.unwrap();
    cleanup(&env).await;
}

#[tokio::test]
async fn a_record_this_module_did_not_write_is_corrupt_not_a_proceed() {
    require_redis().await;
    let env = unique_env("idem-corrupt");
    let (idem, _) = idem_for(&env, &[]);
    let mut c = raw_connection().await;
    let cases: [(&str, Vec<(&str, &str)>); 3] = [
        ("doc-9", vec![("status", "BOGUS"), ("payload_hash", "p")]),
        (
            "doc-10",
            vec![
                ("status", "COMPLETED"),
                ("payload_hash", "p"),
                ("result", "{not json"),
            ],
        ),
        (
            "doc-11",
            vec![
                ("status", "IN_PROGRESS"),
                ("payload_hash", "p"),
                ("token", "x"),
            ],
        ),
    ];
    for (key, fields) in cases {
        let record = idem.record_key(OP, key);
        let _: () = redis::cmd("HSET")
            .arg(&record)
            .arg(&fields)
            .query_async(&mut c)
            .await
            .unwrap();
        let _: () = redis::cmd("PEXPIRE")
            .arg(&record)
            .arg(60_000)
            .query_async(&mut c)
            .await
            .unwrap();
        let err = idem.begin(OP, key, "p", None).await.expect_err("corrupt");
        assert!(
            matches!(err, IdempotencyError::Corrupt { .. }),
            "{key}: {err:?}"
        );
        assert_eq!(err.error_type(), "IdempotencyCorrupt");
    }
    // A plain string under the record's key.
    let record = idem.record_key(OP, "doc-12");
    let _: () = redis::cmd("SET")
        .arg(&record)
        .arg("x")
        .arg("PX")
        .arg(60_000)
        .query_async(&mut c)
        .await
        .unwrap();
    let err = idem
        .begin(OP, "doc-12", "p", None)
        .await
        .expect_err("corrupt");
    assert!(matches!(err, IdempotencyError::Corrupt { .. }), "{err:?}");
    cleanup(&env).await;
}

#[tokio::test]
async fn a_stored_result_of_another_shape_is_corrupt_for_begin_typed() {
    require_redis().await;
    let env = unique_env("idem-shape");
    let (idem, _) = idem_for(&env, &[]);
    proceed(&idem, "doc-13", "p")
        .await
        .complete(&vec![1, 2, 3])
        .await
        .unwrap();
    let err = idem
        .begin_typed::<Persisted>(OP, "doc-13", "p", None)
        .await
        .expect_err("not a Persisted");
    assert!(matches!(err, IdempotencyError::Corrupt { .. }), "{err:?}");
    cleanup(&env).await;
}

#[tokio::test]
async fn with_redis_on_a_closed_port_begin_is_unavailable_never_proceed() {
    let env = unique_env("idem-down");
    let (idem, _) = idem_for(
        &env,
        &[
            ("REDIS_URL", CLOSED_PORT_URL),
            ("LEXPIPE_BREAKER_FAILURES", "3"),
        ],
    );
    // Before and after the breaker opens.
    for i in 0..10 {
        let err = idem
            .begin(OP, &format!("doc-{i}"), "p", None)
            .await
            .expect_err("no proceed without redis");
        assert!(matches!(err, IdempotencyError::Unavailable(_)), "{err:?}");
        assert_eq!(err.error_type(), "IdempotencyUnavailable");
        assert!(err.is_retryable());
    }
}

#[tokio::test]
async fn completing_while_redis_is_unavailable_is_an_error_and_the_record_stays_in_progress() {
    // Arrange: a breaker that opens on one failure.
    require_redis().await;
    let env = unique_env("idem-complete-down");
    let (idem, handle) = idem_for(
        &env,
        &[
            ("LEXPIPE_BREAKER_FAILURES", "1"),
            ("LEXPIPE_BREAKER_COOLDOWN_MS", "600000"),
        ],
    );
    let guard = proceed(&idem, "doc-14", "p").await;
    // Act: Redis is unreachable when the work is done.
    handle.breaker().on_failure();
    let err = guard.complete(&persisted()).await.expect_err("not stored");
    // Assert
    assert!(matches!(err, IdempotencyError::Unavailable(_)), "{err:?}");
    handle.breaker().on_success();
    let outcome = tokio::time::timeout(PATIENCE, idem.begin(OP, "doc-14", "p", None))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(outcome, Outcome::InProgress), "{outcome:?}");
    cleanup(&env).await;
}
