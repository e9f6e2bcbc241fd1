//! Per-document progress against the real Redis: transitions, resume points, the status
//! index, TTLs, atomicity under concurrent writers, and errors (never made-up states) when
//! Redis is gone.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lexpipe::redis::state::{
    DocumentState, DocumentStates, MemoryStateStore, OverallStatus, StageStatus, StateConfig,
    StateError, StateStore,
};
use lexpipe::redis::{KeyBuilder, RedisHandle};
use lexpipe::stages::names;

/// The stage list these tests run documents through: four stages, so that each one is a
/// quarter of the progress. (The pipeline's own list, `names::ALL`, is longer; the state
/// store takes whatever list a caller gives it.)
const STAGES: [&str; 4] = [names::OCR, names::CHUNK, names::ENTITIES, names::RESOLVE];
use lexpipe::text::sha256_hex;
use lexpipe_tests::{
    CLOSED_PORT_URL, cleanup, config_with, keys_of, raw_connection, require_redis, unique_env,
};
use uuid::Uuid;

const HOUR: Duration = Duration::from_secs(3600);

fn store_at(env: &str, overrides: &[(&str, &str)], ttl: Duration) -> StateStore {
    let cfg = config_with(env, overrides);
    let handle = RedisHandle::new(&cfg).expect("redis handle");
    StateStore::new(handle, KeyBuilder::new(&cfg.env), StateConfig { ttl })
}

async fn redis_store(tag: &str) -> (StateStore, String) {
    require_redis().await;
    let env = unique_env(tag);
    (store_at(&env, &[], HOUR), env)
}

fn sha(seed: &str) -> String {
    sha256_hex(seed)
}

async fn hgetall(key: &str) -> HashMap<String, String> {
    let mut c = raw_connection().await;
    redis::cmd("HGETALL")
        .arg(key)
        .query_async(&mut c)
        .await
        .expect("hgetall")
}

async fn zscore(key: &str, member: Uuid) -> Option<f64> {
    let mut c = raw_connection().await;
    redis::cmd("ZSCORE")
        .arg(key)
        .arg(member.to_string())
        .query_async(&mut c)
        .await
        .expect("zscore")
}

async fn pttl(key: &str) -> i64 {
    let mut c = raw_connection().await;
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut c)
        .await
        .expect("pttl")
}

/// The part of a state that does not depend on the clock.
fn shape(s: &DocumentState) -> impl PartialEq + std::fmt::Debug {
    let stages: Vec<_> = s
        .stages
        .iter()
        .map(|st| {
            (
                st.name.clone(),
                st.status,
                st.attempts,
                st.count,
                st.error_type.clone(),
                st.error.clone(),
                st.started_ms.is_some(),
                st.finished_ms.is_some(),
            )
        })
        .collect();
    (
        s.status,
        s.progress,
        s.current_stage.clone(),
        s.source.clone(),
        s.content_sha256.clone(),
        stages,
    )
}

#[tokio::test]
async fn stage_transitions_update_the_stage_fields_progress_and_overall_status() {
    // Arrange
    let (store, env) = redis_store("st-trans").await;
    let doc = Uuid::new_v4();
    let content = sha("transitions");

    // Act + Assert, one transition at a time.
    let s = store
        .init(doc, "Émile – contrat.pdf", &content, &STAGES)
        .await
        .unwrap();
    assert_eq!((s.status, s.progress), (OverallStatus::Queued, 0));
    assert_eq!(s.current_stage.as_deref(), Some(names::OCR));
    assert_eq!(s.source, "Émile – contrat.pdf");
    assert!(s.stages.iter().all(|st| st.status == StageStatus::Pending));
    assert_eq!(
        s.stages
            .iter()
            .map(|st| st.name.as_str())
            .collect::<Vec<_>>(),
        STAGES
    );

    let s = store.start_stage(doc, names::OCR).await.unwrap();
    let ocr = s.stage(names::OCR).unwrap();
    assert_eq!((s.status, s.progress), (OverallStatus::Running, 0));
    assert_eq!((ocr.status, ocr.attempts), (StageStatus::Running, 1));
    assert!(ocr.started_ms.is_some() && ocr.finished_ms.is_none());
    assert_eq!(s.current_stage.as_deref(), Some(names::OCR));

    let s = store.complete_stage(doc, names::OCR, 12).await.unwrap();
    let ocr = s.stage(names::OCR).unwrap();
    assert_eq!((s.status, s.progress), (OverallStatus::Running, 25));
    assert_eq!((ocr.status, ocr.count), (StageStatus::Completed, Some(12)));
    assert!(ocr.finished_ms.unwrap() >= ocr.started_ms.unwrap());
    assert_eq!(s.current_stage.as_deref(), Some(names::CHUNK));

    store.start_stage(doc, names::CHUNK).await.unwrap();
    let s = store.complete_stage(doc, names::CHUNK, 48).await.unwrap();
    assert_eq!(s.progress, 50);
    let s = store.skip_stage(doc, names::ENTITIES).await.unwrap();
    assert_eq!(s.progress, 75);
    assert_eq!(
        s.stage(names::ENTITIES).unwrap().status,
        StageStatus::Skipped
    );
    store.start_stage(doc, names::RESOLVE).await.unwrap();
    let s = store.complete_stage(doc, names::RESOLVE, 7).await.unwrap();
    assert_eq!((s.status, s.progress), (OverallStatus::Completed, 100));
    assert_eq!(s.current_stage, None);
    assert!(s.updated_ms >= s.created_ms);

    // What `get` reads is what the last transition returned, and the hash carries the
    // documented field names for anyone reading it with redis-cli.
    assert_eq!(store.get(doc).await.unwrap().as_ref(), Some(&s));
    let raw = hgetall(&store.state_key(doc)).await;
    for field in [
        "status",
        "progress",
        "source",
        "content_sha256",
        "created_ms",
        "updated_ms",
        "ocr.status",
        "ocr.started_ms",
        "ocr.finished_ms",
        "ocr.count",
        "ocr.attempts",
    ] {
        assert!(raw.contains_key(field), "field {field} missing: {raw:?}");
    }
    assert_eq!(raw["ocr.status"], "completed");
    assert_eq!(raw["progress"], "100");
    assert!(!raw.contains_key("current_stage"));
    cleanup(&env).await;
}

#[tokio::test]
async fn a_failed_stage_fails_the_document_and_resume_point_starts_at_that_stage() {
    // Arrange
    let (store, env) = redis_store("st-fail").await;
    let doc = Uuid::new_v4();
    store
        .init(doc, "scan.pdf", &sha("fail"), &STAGES)
        .await
        .unwrap();
    store.start_stage(doc, names::OCR).await.unwrap();
    store.complete_stage(doc, names::OCR, 3).await.unwrap();
    store.start_stage(doc, names::CHUNK).await.unwrap();

    // Act
    let s = store
        .fail_stage(
            doc,
            names::CHUNK,
            "ReadError",
            "cannot read page 2: truncated",
        )
        .await
        .unwrap();

    // Assert
    assert_eq!((s.status, s.progress), (OverallStatus::Failed, 25));
    assert_eq!(s.current_stage.as_deref(), Some(names::CHUNK));
    let chunk = s.stage(names::CHUNK).unwrap();
    assert_eq!(chunk.status, StageStatus::Failed);
    assert_eq!(chunk.error_type.as_deref(), Some("ReadError"));
    assert_eq!(
        chunk.error.as_deref(),
        Some("cannot read page 2: truncated")
    );
    let resume = store.resume_point(doc, &STAGES).await.unwrap();
    assert_eq!(resume.start_at.as_deref(), Some(names::CHUNK));
    assert_eq!(resume.done, vec![names::OCR.to_string()]);
    assert!(resume.can_skip(names::OCR));

    // The re-run starts the failed stage again: running, second attempt, error cleared.
    let s = store.start_stage(doc, names::CHUNK).await.unwrap();
    let chunk = s.stage(names::CHUNK).unwrap();
    assert_eq!(s.status, OverallStatus::Running);
    assert_eq!((chunk.status, chunk.attempts), (StageStatus::Running, 2));
    assert_eq!(
        (chunk.error.as_ref(), chunk.error_type.as_ref()),
        (None, None)
    );
    cleanup(&env).await;
}

#[tokio::test]
async fn resume_point_of_an_unknown_document_is_the_first_stage() {
    let (store, env) = redis_store("st-fresh").await;
    let resume = store.resume_point(Uuid::new_v4(), &STAGES).await.unwrap();
    assert_eq!(resume.start_at.as_deref(), Some(names::OCR));
    assert!(resume.done.is_empty());
    assert!(keys_of(&env).await.is_empty(), "reading wrote nothing");
}

#[tokio::test]
async fn init_again_keeps_the_results_of_stages_already_run() {
    // Arrange
    let (store, env) = redis_store("st-reinit").await;
    let doc = Uuid::new_v4();
    let content = sha("reinit");
    let first = store.init(doc, "a.pdf", &content, &STAGES).await.unwrap();
    store.start_stage(doc, names::OCR).await.unwrap();
    store.complete_stage(doc, names::OCR, 5).await.unwrap();

    // Act: the same document again, under another name, with a stage added to the pipeline.
    let mut stages = STAGES.to_vec();
    stages.push("persist");
    let s = store.init(doc, "b.pdf", &content, &stages).await.unwrap();

    // Assert
    assert_eq!(s.source, "b.pdf");
    assert_eq!(s.created_ms, first.created_ms);
    let ocr = s.stage(names::OCR).unwrap();
    assert_eq!(
        (ocr.status, ocr.count, ocr.attempts),
        (StageStatus::Completed, Some(5), 1)
    );
    assert_eq!(s.stage("persist").unwrap().status, StageStatus::Pending);
    assert_eq!((s.status, s.progress), (OverallStatus::Running, 20));
    let resume = store.resume_point(doc, &stages).await.unwrap();
    assert_eq!(resume.start_at.as_deref(), Some(names::CHUNK));
    cleanup(&env).await;
}

#[tokio::test]
async fn init_of_the_same_document_with_another_content_hash_is_refused() {
    let (store, env) = redis_store("st-mismatch").await;
    let doc = Uuid::new_v4();
    store
        .init(doc, "a.pdf", &sha("one"), &STAGES)
        .await
        .unwrap();
    let err = store
        .init(doc, "a.pdf", &sha("two"), &STAGES)
        .await
        .unwrap_err();
    assert!(matches!(err, StateError::ContentMismatch { .. }), "{err}");
    assert_eq!(
        store.get(doc).await.unwrap().unwrap().content_sha256,
        sha("one")
    );
    cleanup(&env).await;
}

#[tokio::test]
async fn transitions_of_an_unknown_document_or_stage_are_refused_and_write_nothing() {
    // Arrange
    let (store, env) = redis_store("st-unknown").await;
    let doc = Uuid::new_v4();

    // Act + Assert: nothing initialised.
    for result in [
        store.start_stage(doc, names::OCR).await,
        store.complete_stage(doc, names::OCR, 1).await,
        store.fail_stage(doc, names::OCR, "X", "y").await,
        store.skip_stage(doc, names::OCR).await,
    ] {
        assert!(matches!(result, Err(StateError::NotFound(d)) if d == doc));
    }
    assert!(
        keys_of(&env).await.is_empty(),
        "no partial hash was created"
    );
    assert_eq!(store.get(doc).await.unwrap(), None);

    // A stage the document was not initialised with.
    let before = store
        .init(doc, "a.pdf", &sha("unknown"), &[names::OCR])
        .await
        .unwrap();
    let err = store.complete_stage(doc, "persist", 1).await.unwrap_err();
    assert!(
        matches!(&err, StateError::UnknownStage { stage, .. } if stage == "persist"),
        "{err}"
    );
    assert_eq!(store.get(doc).await.unwrap().unwrap(), before);
    assert!(
        !hgetall(&store.state_key(doc))
            .await
            .contains_key("persist.status")
    );
    cleanup(&env).await;
}

#[tokio::test]
async fn sixteen_tasks_completing_different_stages_at_once_leave_every_stage_completed_and_progress_100()
 {
    // Arrange: one document with 16 stages, one task per stage, released together.
    let (store, env) = redis_store("st-conc").await;
    let doc = Uuid::new_v4();
    let stage_names: Vec<String> = (0..16).map(|i| format!("s{i:02}")).collect();
    let stages: Vec<&str> = stage_names.iter().map(String::as_str).collect();
    store
        .init(doc, "many.pdf", &sha("concurrent"), &stages)
        .await
        .unwrap();
    let store = Arc::new(store);
    let barrier = Arc::new(tokio::sync::Barrier::new(stage_names.len()));

    // Act
    let tasks: Vec<_> = stage_names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let (store, barrier, name) = (store.clone(), barrier.clone(), name.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.start_stage(doc, &name).await.unwrap();
                store.complete_stage(doc, &name, i as u64).await.unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }

    // Assert: every stage's own fields, and the overall fields computed from all of them.
    let s = store.get(doc).await.unwrap().unwrap();
    assert_eq!((s.status, s.progress), (OverallStatus::Completed, 100));
    assert_eq!(s.current_stage, None);
    for (i, st) in s.stages.iter().enumerate() {
        assert_eq!(st.name, stage_names[i]);
        assert_eq!(
            (st.status, st.attempts, st.count),
            (StageStatus::Completed, 1, Some(i as u64)),
            "{st:?}"
        );
    }
    // The document is in the completed index, and only there.
    for status in OverallStatus::ALL {
        let score = zscore(&store.index_key_of(doc, status), doc).await;
        assert_eq!(
            score.is_some(),
            status == OverallStatus::Completed,
            "{status}: {score:?}"
        );
    }
    assert_eq!(
        zscore(&store.index_key_of(doc, OverallStatus::Completed), doc).await,
        Some(s.updated_ms as f64)
    );
    cleanup(&env).await;
}

#[tokio::test]
async fn the_status_index_follows_each_document_and_list_finds_documents_by_status() {
    // Arrange: one document in each status.
    let (store, env) = redis_store("st-index").await;
    let [queued, running, failed, completed] = [(); 4].map(|_| Uuid::new_v4());
    for (i, d) in [queued, running, failed, completed].iter().enumerate() {
        store
            .init(*d, &format!("{i}.pdf"), &sha(&d.to_string()), &[names::OCR])
            .await
            .unwrap();
    }
    store.start_stage(running, names::OCR).await.unwrap();
    store
        .fail_stage(failed, names::OCR, "OcrError", "encrypted")
        .await
        .unwrap();
    store
        .complete_stage(completed, names::OCR, 1)
        .await
        .unwrap();

    // Act + Assert
    let ids =
        |docs: Vec<DocumentState>| -> Vec<Uuid> { docs.iter().map(|d| d.document_uuid).collect() };
    for (status, doc) in [
        (OverallStatus::Queued, queued),
        (OverallStatus::Running, running),
        (OverallStatus::Failed, failed),
        (OverallStatus::Completed, completed),
    ] {
        assert_eq!(
            ids(store.list(Some(status), 10).await.unwrap()),
            vec![doc],
            "{status}"
        );
    }
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (
            counts.queued,
            counts.running,
            counts.failed,
            counts.completed
        ),
        (1, 1, 1, 1)
    );
    let all = store.list(None, 10).await.unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].updated_ms >= w[1].updated_ms));
    assert_eq!(store.list(None, 2).await.unwrap().len(), 2);

    // The failed document is retried: it leaves the failed index for the running one.
    store.start_stage(failed, names::OCR).await.unwrap();
    assert!(
        store
            .list(Some(OverallStatus::Failed), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let mut now_running = ids(store.list(Some(OverallStatus::Running), 10).await.unwrap());
    now_running.sort();
    let mut expected = vec![running, failed];
    expected.sort();
    assert_eq!(now_running, expected);
    assert_eq!(
        zscore(&store.index_key_of(failed, OverallStatus::Failed), failed).await,
        None
    );
    cleanup(&env).await;
}

#[tokio::test]
async fn list_skips_and_prunes_a_document_whose_state_expired() {
    // Arrange: two queued documents; one hash disappears as if it had expired.
    let (store, env) = redis_store("st-prune").await;
    let (gone, kept) = (Uuid::new_v4(), Uuid::new_v4());
    for d in [gone, kept] {
        store
            .init(d, "x.pdf", &sha(&d.to_string()), &STAGES)
            .await
            .unwrap();
    }
    let mut c = raw_connection().await;
    let _: i64 = redis::cmd("DEL")
        .arg(store.state_key(gone))
        .query_async(&mut c)
        .await
        .unwrap();

    // Act
    let listed = store.list(Some(OverallStatus::Queued), 10).await.unwrap();

    // Assert
    assert_eq!(
        listed.iter().map(|d| d.document_uuid).collect::<Vec<_>>(),
        vec![kept]
    );
    let index = |d: Uuid| store.index_key_of(d, OverallStatus::Queued);
    assert_eq!(
        zscore(&index(gone), gone).await,
        None,
        "stale member removed"
    );
    assert!(zscore(&index(kept), kept).await.is_some());
    cleanup(&env).await;
}

#[tokio::test]
async fn counts_leave_out_documents_whose_state_expired_but_keep_old_live_ones() {
    // Arrange: three queued documents, all last indexed "long ago" (score 0); the hash of
    // one is gone. The other two are alive (say, written with a longer TTL).
    let (store, env) = redis_store("st-counts").await;
    let docs = [(); 3].map(|_| Uuid::new_v4());
    for d in docs {
        store
            .init(d, "x.pdf", &sha(&d.to_string()), &STAGES)
            .await
            .unwrap();
    }
    let index = |d: Uuid| store.index_key_of(d, OverallStatus::Queued);
    let mut c = raw_connection().await;
    for d in docs {
        let _: i64 = redis::cmd("ZADD")
            .arg(index(d))
            .arg(0)
            .arg(d.to_string())
            .query_async(&mut c)
            .await
            .unwrap();
    }
    let _: i64 = redis::cmd("DEL")
        .arg(store.state_key(docs[0]))
        .query_async(&mut c)
        .await
        .unwrap();

    // Act
    let counts = store.counts().await.unwrap();

    // Assert
    assert_eq!((counts.queued, counts.total()), (2, 2));
    assert_eq!(zscore(&index(docs[0]), docs[0]).await, None);
    assert!(zscore(&index(docs[1]), docs[1]).await.is_some());
    assert!(zscore(&index(docs[2]), docs[2]).await.is_some());
    cleanup(&env).await;
}

#[tokio::test]
async fn every_state_key_has_a_ttl_within_the_configured_one_and_each_write_refreshes_it() {
    // Arrange
    require_redis().await;
    let env = unique_env("st-ttl");
    let store = store_at(&env, &[], HOUR);
    let doc = Uuid::new_v4();
    store
        .init(doc, "a.pdf", &sha("ttl"), &STAGES)
        .await
        .unwrap();
    store.start_stage(doc, names::OCR).await.unwrap();
    store
        .fail_stage(doc, names::OCR, "OcrError", "x")
        .await
        .unwrap();
    store.start_stage(doc, names::OCR).await.unwrap();

    // Assert: every key of the prefix (hash and indexes) expires, within the TTL.
    let keys = keys_of(&env).await;
    assert!(keys.len() >= 2, "{keys:?}");
    for key in &keys {
        let ms = pttl(key).await;
        assert!(ms > 0 && ms <= 3_600_000, "{key}: PTTL {ms}");
    }

    // Act: shorten the hash's TTL behind the store's back, then write.
    let key = store.state_key(doc);
    let mut c = raw_connection().await;
    let _: i64 = redis::cmd("PEXPIRE")
        .arg(&key)
        .arg(5_000)
        .query_async(&mut c)
        .await
        .unwrap();
    store.complete_stage(doc, names::OCR, 1).await.unwrap();

    // Assert: the write gave it the full TTL again.
    assert!(pttl(&key).await > 5_000);
    cleanup(&env).await;
}

#[tokio::test]
async fn hostile_source_and_stage_names_cannot_shape_a_key() {
    // Arrange
    let (store, env) = redis_store("st-keys").await;
    let doc = Uuid::new_v4();

    // Act: a source full of key syntax is stored as a value only; a hostile stage name is
    // refused before anything is written.
    store
        .init(
            doc,
            "../../x:*{tag}\n\u{0}lexpipe:prod:doc_state",
            &sha("keys"),
            &STAGES,
        )
        .await
        .unwrap();
    let err = store.start_stage(doc, "ocr:*\nFLUSHALL").await.unwrap_err();
    let bad_list = store
        .init(Uuid::new_v4(), "b.pdf", &sha("b"), &["ocr,chunk"])
        .await
        .unwrap_err();

    // Assert: the only keys are the document's hash (named by its UUID) and indexes.
    assert!(matches!(err, StateError::Invalid { .. }), "{err}");
    assert!(matches!(bad_list, StateError::Invalid { .. }), "{bad_list}");
    let prefix = format!("lexpipe:{env}:");
    // The document's shard hash tag, `{dsNN}`, from its UUID's last byte.
    let tag = format!("{{ds{:02}}}", doc.as_bytes()[15] % 16);
    let expected_hash = format!("{prefix}doc_state:v2:{tag}:{doc}");
    for key in keys_of(&env).await {
        let index = OverallStatus::ALL
            .iter()
            .any(|s| key == format!("{prefix}doc_index:v2:{tag}:{s}"));
        assert!(key == expected_hash || index, "unexpected key {key:?}");
    }
    assert_eq!(store.state_key(doc), expected_hash);
    let s = store.get(doc).await.unwrap().unwrap();
    assert_eq!(s.source, "../../x:*{tag}\n\u{0}lexpipe:prod:doc_state");
    assert_eq!(s.stage(names::OCR).unwrap().attempts, 0);
    cleanup(&env).await;
}

#[tokio::test]
async fn a_state_hash_written_by_something_else_is_an_error_not_a_guess() {
    // Arrange
    let (store, env) = redis_store("st-corrupt").await;
    let doc = Uuid::new_v4();
    let mut c = raw_connection().await;
    let _: i64 = redis::cmd("HSET")
        .arg(store.state_key(doc))
        .arg("status")
        .arg("exploded")
        .query_async(&mut c)
        .await
        .unwrap();

    // Act
    let err = store.get(doc).await.unwrap_err();

    // Assert
    assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
    cleanup(&env).await;
}

#[tokio::test]
async fn with_redis_on_a_closed_port_every_operation_is_an_error_and_no_state_is_made_up() {
    // Arrange
    let env = unique_env("st-down");
    let store = store_at(&env, &[("REDIS_URL", CLOSED_PORT_URL)], HOUR);
    let doc = Uuid::new_v4();
    let content = sha("down");
    let unavailable = |r: Result<(), StateError>| {
        assert!(
            matches!(&r, Err(e @ StateError::Unavailable(_)) if e.is_retryable()),
            "{r:?}"
        );
    };

    // Act + Assert
    unavailable(store.init(doc, "a.pdf", &content, &STAGES).await.map(drop));
    unavailable(store.start_stage(doc, names::OCR).await.map(drop));
    unavailable(store.complete_stage(doc, names::OCR, 1).await.map(drop));
    unavailable(store.fail_stage(doc, names::OCR, "X", "y").await.map(drop));
    unavailable(store.skip_stage(doc, names::OCR).await.map(drop));
    unavailable(store.get(doc).await.map(drop));
    unavailable(store.resume_point(doc, &STAGES).await.map(drop));
    unavailable(store.list(None, 10).await.map(drop));
    unavailable(store.counts().await.map(drop));
}

#[tokio::test]
async fn the_memory_store_and_the_redis_store_agree_on_the_same_run() {
    // Arrange: the same run against both implementations.
    let (redis_store, env) = redis_store("st-parity").await;
    let memory = MemoryStateStore::new(StateConfig { ttl: HOUR });
    let stores: [&dyn DocumentStates; 2] = [&redis_store, &memory];
    let doc = Uuid::new_v4();
    let content = sha("parity");

    // Act: after every step, both must hold the same state (apart from times).
    let mut steps: Vec<[DocumentState; 2]> = Vec::new();
    macro_rules! both {
        ($op:ident ( $($arg:expr),* )) => {{
            let a = stores[0].$op($($arg),*).await.unwrap();
            let b = stores[1].$op($($arg),*).await.unwrap();
            steps.push([a, b]);
        }};
    }
    both!(init(doc, "p.pdf", &content, &STAGES));
    both!(start_stage(doc, names::OCR));
    both!(complete_stage(doc, names::OCR, 9));
    both!(start_stage(doc, names::CHUNK));
    both!(fail_stage(doc, names::CHUNK, "ReadError", "gone"));
    both!(init(doc, "p2.pdf", &content, &STAGES));
    both!(start_stage(doc, names::CHUNK));
    both!(complete_stage(doc, names::CHUNK, 4));
    both!(skip_stage(doc, names::ENTITIES));
    both!(start_stage(doc, names::RESOLVE));
    both!(complete_stage(doc, names::RESOLVE, 2));

    // Assert
    for (i, [a, b]) in steps.iter().enumerate() {
        assert_eq!(shape(a), shape(b), "step {i}");
    }
    for store in stores {
        let counts = store.counts().await.unwrap();
        assert_eq!((counts.completed, counts.total()), (1, 1));
        let resume = store.resume_point(doc, &STAGES).await.unwrap();
        assert!(resume.is_complete());
    }
    cleanup(&env).await;
}
