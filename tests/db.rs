//! PostgreSQL persistence and the work queue's database side, against a real server: each
//! test gets its own database (see `support::pg`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lexpipe::config::Secret;
use lexpipe::model::{CanonicalEntity, EntityKind, Mention, Page};
use lexpipe::model::{ChunkOutput, DocumentOutput, document_uuid};
use lexpipe::store::db::{self, DatabaseConfig, DbError};
use lexpipe::store::persist::{self, RowCounts};
use lexpipe::store::queue::{self, AttemptOutcome, FailOutcome, Status};
use lexpipe::text::sha256_hex;
use lexpipe_tests::pg::{self, count, expire_leases, one_copy_of, test_database};
use sqlx::PgPool;
use tokio::sync::Barrier;
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(60);

/// A document identity for `seed`: its content hash and uuid.
fn doc(seed: &str) -> (Uuid, String) {
    let sha = sha256_hex(seed.as_bytes());
    (document_uuid(&sha), sha)
}

/// A distributed lock in memory, standing in for the Redis lock: a set of held item ids and
/// one counter for fencing tokens, shared by every worker of a test.
#[derive(Clone, Default)]
struct MemoryLocks {
    held: Arc<Mutex<HashSet<i64>>>,
    fences: Arc<AtomicU64>,
}

impl MemoryLocks {
    /// The lock step for `queue::claim`. It yields first, as a network call would, so
    /// that concurrent claimers interleave.
    fn step(
        &self,
    ) -> impl FnMut(i64) -> std::pin::Pin<Box<dyn Future<Output = Option<u64>> + Send>> + Send + use<>
    {
        let locks = self.clone();
        move |id| {
            let locks = locks.clone();
            Box::pin(async move {
                tokio::task::yield_now().await;
                let got = locks.held.lock().unwrap().insert(id);
                got.then(|| locks.fences.fetch_add(1, Ordering::SeqCst) + 1)
            })
        }
    }

    fn release(&self, id: i64) {
        self.held.lock().unwrap().remove(&id);
    }
}

/// How each attempt at item `item` ended, oldest first.
async fn outcomes(pool: &PgPool, item: i64) -> Vec<AttemptOutcome> {
    queue::attempts(pool, item)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.outcome)
        .collect()
}

/// A lock step that always grants `fence`.
fn grant(fence: u64) -> impl FnMut(i64) -> std::future::Ready<Option<u64>> {
    move |_| std::future::ready(Some(fence))
}

/// A processed document: two pages, `chunks` chunks with `per_chunk` mentions each, and
/// one canonical entity per mention position (`e{j}` gathers mention `j` of every chunk).
fn output(seed: &str, source: &str, chunks: usize, per_chunk: usize) -> DocumentOutput {
    let (id, sha) = doc(seed);
    let mut out = DocumentOutput {
        document_uuid: id.to_string(),
        source: source.to_string(),
        content_sha256: sha.clone(),
        ocr_method: "pdf_text".to_string(),
        pages: vec![
            Page {
                number: 1,
                text: format!("{seed} page one"),
                has_text_layer: true,
                ..Page::default()
            },
            Page {
                number: 2,
                text: String::new(),
                has_text_layer: false,
                ..Page::default()
            },
        ],
        chunks: Vec::new(),
        mentions: Vec::new(),
        entities: Vec::new(),
        structured: None,
        producer: "lexpipe/test".to_string(),
    };
    for i in 0..chunks {
        let chunk_sha = sha256_hex(format!("{seed}/{i}").as_bytes());
        out.chunks.push(ChunkOutput {
            id: format!("c{i}-{}", &chunk_sha[..16]),
            index: i,
            start: i * 100,
            end: i * 100 + 120,
            sha256: chunk_sha,
        });
    }
    for j in 0..per_chunk {
        let kind = if j % 2 == 0 {
            EntityKind::Person
        } else {
            EntityKind::Org
        };
        let mut entity = CanonicalEntity {
            id: format!("e{j}"),
            kind,
            name: format!("Party {j}"),
            aliases: vec![format!("P{j}"), format!("Party {j}")],
            mention_ids: Vec::new(),
        };
        for i in 0..chunks {
            let m = out.mentions.len();
            out.mentions.push(Mention {
                id: format!("m{m}"),
                kind,
                text: format!("Party {j}"),
                normalized: format!("party {j}"),
                start: i * 100 + j * 10,
                end: i * 100 + j * 10 + 7,
                confidence: 0.75,
                chunk_id: out.chunks[i].id.clone(),
            });
            entity.mention_ids.push(format!("m{m}"));
        }
        out.entities.push(entity);
    }
    out
}

/// Every row of a document, one digest per table: equal snapshots mean identical rows.
async fn snapshot(pool: &PgPool, id: Uuid) -> Vec<(String, i64, Option<String>)> {
    let mut out = Vec::new();
    for table in [
        "documents",
        "document_sources",
        "pages",
        "chunks",
        "canonical_entities",
        "entity_mentions",
        "relationships",
    ] {
        let key = if table == "documents" {
            "id"
        } else {
            "document_id"
        };
        let (n, digest): (i64, Option<String>) = sqlx::query_as(&format!(
            "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) \
             FROM {table} t WHERE {key} = $1"
        ))
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap();
        out.push((table.to_string(), n, digest));
    }
    out
}

#[tokio::test]
async fn migrations_create_every_table_and_running_them_again_changes_nothing() {
    let db = pg::empty_database().await;
    let cfg = DatabaseConfig {
        url: Some(Secret::new(db.url.clone())),
        auto_migrate: true,
        max_connections: 2,
    };

    let pool = db::open(&cfg).await.expect("open with auto_migrate");
    db::migrate(&pool).await.expect("second run");

    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "canonical_entities",
            "chunks",
            "document_sources",
            "documents",
            "entity_mentions",
            "pages",
            "processing_queue",
            "queue_attempts",
            "relationships",
            "structured_extractions",
            "textract_jobs",
        ]
    );
    let applied = count(&pool, "SELECT 1 FROM _sqlx_migrations WHERE success").await;
    // 0001_documents, 0002_queue, 0003_one_status_vocabulary, 0004_entity_kinds,
    // 0005_textract_jobs, 0006_entity_relationships: each applied once.
    assert_eq!(applied, 6);
    pool.close().await;
    db.drop_database().await;
}

#[tokio::test]
async fn the_same_content_under_two_names_is_one_document_with_two_sources() {
    let db = test_database().await;
    let (id, sha) = doc("contract");

    let first = queue::enqueue(&db.pool, id, &sha, "inbox/contract.pdf", 0)
        .await
        .unwrap();
    let second = queue::enqueue(&db.pool, id, &sha, "archive/copy of contract.pdf", 0)
        .await
        .unwrap();

    assert!(first.created && !second.created);
    assert_eq!(first.item_id, second.item_id);
    assert_eq!(count(&db.pool, "SELECT 1 FROM documents").await, 1);
    assert_eq!(count(&db.pool, "SELECT 1 FROM processing_queue").await, 1);
    let stored = persist::load_document(&db.pool, id).await.unwrap().unwrap();
    assert_eq!(
        stored.sources,
        ["archive/copy of contract.pdf", "inbox/contract.pdf"]
    );
    assert_eq!(stored.status, Status::Queued);
    db.drop_database().await;
}

#[tokio::test]
async fn a_second_documents_row_for_the_same_content_is_refused_by_the_database() {
    let db = test_database().await;
    let (id, sha) = doc("contract");
    queue::enqueue(&db.pool, id, &sha, "a.pdf", 0)
        .await
        .unwrap();

    let err = sqlx::query("INSERT INTO documents (id, content_sha256) VALUES ($1, $2)")
        .bind(Uuid::new_v4())
        .bind(&sha)
        .execute(&db.pool)
        .await
        .map_err(DbError::from)
        .unwrap_err();

    match &err {
        DbError::ConstraintViolation { constraint, .. } => {
            assert_eq!(constraint.as_deref(), Some("documents_content_sha256_key"));
        }
        other => panic!("expected a constraint violation, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(err.error_type(), "ConstraintViolation");
    db.drop_database().await;
}

#[tokio::test]
async fn enqueue_refuses_a_document_id_that_is_not_the_contents() {
    let db = test_database().await;
    let (_, sha) = doc("contract");

    let err = queue::enqueue(&db.pool, Uuid::new_v4(), &sha, "a.pdf", 0)
        .await
        .unwrap_err();

    assert!(matches!(err, DbError::InvalidData(_)), "{err:?}");
    assert_eq!(count(&db.pool, "SELECT 1 FROM documents").await, 0);
    db.drop_database().await;
}

#[tokio::test]
async fn relationships_the_llm_found_between_entities_are_stored_once_with_their_verb() {
    // Arrange: a description relating e0 to e1 twice, once to a name no entity has.
    let db = test_database().await;
    let mut out = output("lease", "lease.pdf", 2, 2);
    let rel = |predicate: &str, object: Option<&str>| lexpipe::model::EntityRelation {
        subject: "Party 0".into(),
        predicate: predicate.into(),
        object: "Party 1".into(),
        subject_entity: Some("e0".into()),
        object_entity: object.map(String::from),
    };
    out.structured = Some(lexpipe::model::StructuredData {
        document_type: "lease".into(),
        model_version: "llm-p1-gpt-4o-mini-00000000".into(),
        relationships: vec![
            rel("leases to", Some("e1")),
            rel("leases to", Some("e1")),
            rel("sued", Some("e1")),
            rel("knows", None),
        ],
        ..Default::default()
    });

    // Act: written twice, as a retry would.
    let first = persist::persist_document(&db.pool, &out, None)
        .await
        .unwrap();
    persist::persist_document(&db.pool, &out, None)
        .await
        .unwrap();

    // Assert
    let id = document_uuid(&out.content_sha256);
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT from_ref, to_ref, label FROM relationships \
         WHERE document_id = $1 AND kind = 'entity_relation' ORDER BY label",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            ("e0".into(), "e1".into(), "leases to".into()),
            ("e0".into(), "e1".into(), "sued".into()),
        ]
    );
    assert_eq!(
        first.stored.relationships,
        one_copy_of(&out).relationships + 2
    );
    let graph_labels = count(
        &db.pool,
        "SELECT 1 FROM relationships WHERE kind <> 'entity_relation' AND label <> ''",
    )
    .await;
    assert_eq!(graph_labels, 0);
    db.drop_database().await;
}

#[tokio::test]
async fn a_duplicate_mention_id_is_refused_by_the_database() {
    let db = test_database().await;
    let out = output("brief", "brief.pdf", 2, 2);
    persist::persist_document(&db.pool, &out, None)
        .await
        .unwrap();
    let id = document_uuid(&out.content_sha256);
    let before = snapshot(&db.pool, id).await;

    let err = sqlx::query(
        "INSERT INTO entity_mentions (document_id, mention_id, kind, text, normalized, \
             start_offset, end_offset, confidence, chunk_id, canonical_entity_id) \
         VALUES ($1, 'm0', 'PERSON', 'x', 'x', 0, 1, 0.5, $2, 'e0')",
    )
    .bind(id)
    .bind(&out.chunks[0].id)
    .execute(&db.pool)
    .await
    .map_err(DbError::from)
    .unwrap_err();

    match &err {
        DbError::ConstraintViolation { constraint, .. } => {
            assert_eq!(constraint.as_deref(), Some("entity_mentions_pkey"));
        }
        other => panic!("expected a constraint violation, got {other:?}"),
    }
    assert_eq!(snapshot(&db.pool, id).await, before);
    db.drop_database().await;
}

#[tokio::test]
async fn a_mention_must_point_at_a_canonical_entity_of_its_own_document() {
    let db = test_database().await;
    let brief = output("brief", "brief.pdf", 1, 1);
    let other = output("other", "other.pdf", 1, 3);
    persist::persist_document(&db.pool, &brief, None)
        .await
        .unwrap();
    persist::persist_document(&db.pool, &other, None)
        .await
        .unwrap();

    // `e2` exists, but only in the other document.
    let err = sqlx::query(
        "INSERT INTO entity_mentions (document_id, mention_id, kind, text, normalized, \
             start_offset, end_offset, confidence, chunk_id, canonical_entity_id) \
         VALUES ($1, 'm99', 'PERSON', 'x', 'x', 0, 1, 0.5, $2, 'e2')",
    )
    .bind(document_uuid(&brief.content_sha256))
    .bind(&brief.chunks[0].id)
    .execute(&db.pool)
    .await
    .map_err(DbError::from)
    .unwrap_err();

    match &err {
        DbError::ConstraintViolation { constraint, .. } => {
            assert_eq!(constraint.as_deref(), Some("entity_mentions_canonical_fk"));
        }
        other => panic!("expected a foreign-key violation, got {other:?}"),
    }
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_enqueues_of_one_document_create_one_document_and_one_queue_item() {
    let db = test_database().await;
    let (id, sha) = doc("settlement");
    let start = Arc::new(Barrier::new(10));

    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let pool = db.pool.clone();
            let sha = sha.clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                queue::enqueue(&pool, id, &sha, &format!("uploads/copy-{i}.pdf"), 0).await
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap().expect("enqueue"));
    }

    assert_eq!(results.iter().filter(|r| r.created).count(), 1);
    let item_ids: HashSet<i64> = results.iter().map(|r| r.item_id).collect();
    assert_eq!(item_ids.len(), 1);
    assert_eq!(count(&db.pool, "SELECT 1 FROM documents").await, 1);
    assert_eq!(count(&db.pool, "SELECT 1 FROM processing_queue").await, 1);
    assert_eq!(count(&db.pool, "SELECT 1 FROM document_sources").await, 10);
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_workers_claim_each_of_two_hundred_items_exactly_once() {
    let db = test_database().await;
    let mut item_ids = HashSet::new();
    for n in 0..200 {
        let (id, sha) = doc(&format!("filing-{n}"));
        let e = queue::enqueue(&db.pool, id, &sha, &format!("filing-{n}.pdf"), n % 3)
            .await
            .unwrap();
        item_ids.insert(e.item_id);
    }
    let locks = MemoryLocks::default();
    let start = Arc::new(Barrier::new(16));

    let workers: Vec<_> = (0..16)
        .map(|w| {
            let pool = db.pool.clone();
            let locks = locks.clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                let worker = format!("worker-{w}");
                let mut claimed = Vec::new();
                while let Some(claim) = queue::claim(&pool, &worker, LEASE, locks.step())
                    .await
                    .expect("claim")
                {
                    assert!(queue::complete(&pool, &claim).await.expect("complete"));
                    locks.release(claim.item_id);
                    claimed.push(claim);
                }
                claimed
            })
        })
        .collect();
    let mut claims = Vec::new();
    let mut busy_workers = 0;
    for w in workers {
        let mine = w.await.unwrap();
        busy_workers += usize::from(!mine.is_empty());
        claims.extend(mine);
    }

    let claimed_ids: HashSet<i64> = claims.iter().map(|c| c.item_id).collect();
    assert_eq!(claims.len(), 200, "every claim is of a different item");
    assert_eq!(claimed_ids, item_ids);
    assert!(
        busy_workers > 1,
        "the claims were spread over several workers"
    );
    let history: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT count(*), count(DISTINCT item_id), \
                count(*) FILTER (WHERE attempt = 1 AND outcome = 'completed') \
         FROM queue_attempts",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(history, [(200, 200, 200)]);
    let stats = queue::stats(&db.pool).await.unwrap();
    assert_eq!((stats.completed, stats.queued, stats.running), (200, 0, 0));
    assert_eq!(
        count(
            &db.pool,
            "SELECT 1 FROM documents WHERE status = 'completed'"
        )
        .await,
        200
    );
    db.drop_database().await;
}

#[tokio::test]
async fn claims_take_the_highest_priority_first_then_the_oldest() {
    let db = test_database().await;
    let mut by_name = HashMap::new();
    for (name, priority) in [
        ("low-a", 0),
        ("high-a", 5),
        ("low-b", 0),
        ("high-b", 5),
        ("urgent", 9),
    ] {
        let (id, sha) = doc(name);
        let e = queue::enqueue(&db.pool, id, &sha, name, priority)
            .await
            .unwrap();
        by_name.insert(e.item_id, name);
    }
    let locks = MemoryLocks::default();

    let mut order = Vec::new();
    while let Some(c) = queue::claim(&db.pool, "w", LEASE, locks.step())
        .await
        .unwrap()
    {
        order.push(by_name[&c.item_id]);
    }

    assert_eq!(order, ["urgent", "high-a", "high-b", "low-a", "low-b"]);
    db.drop_database().await;
}

#[tokio::test]
async fn claim_returns_nothing_when_the_queue_is_empty_or_every_item_is_taken() {
    let db = test_database().await;
    let locks = MemoryLocks::default();
    assert!(
        queue::claim(&db.pool, "w1", LEASE, locks.step())
            .await
            .unwrap()
            .is_none()
    );
    let (id, sha) = doc("only");
    queue::enqueue(&db.pool, id, &sha, "only.pdf", 0)
        .await
        .unwrap();

    let first = queue::claim(&db.pool, "w1", LEASE, locks.step())
        .await
        .unwrap();
    let second = queue::claim(&db.pool, "w2", LEASE, grant(1_000))
        .await
        .unwrap();

    assert!(first.is_some());
    assert!(second.is_none(), "a running lease is not claimable");
    let stats = queue::stats(&db.pool).await.unwrap();
    assert_eq!((stats.running, stats.expired_leases), (1, 0));
    expire_leases(&db.pool).await;
    assert_eq!(queue::stats(&db.pool).await.unwrap().expired_leases, 1);
    db.drop_database().await;
}

#[tokio::test]
async fn a_claimed_item_and_its_document_are_stored_as_running_like_the_redis_state() {
    let db = test_database().await;
    let (id, sha) = doc("claimed");
    let queued = queue::enqueue(&db.pool, id, &sha, "claimed.pdf", 0)
        .await
        .unwrap();

    queue::claim(&db.pool, "w", LEASE, grant(1))
        .await
        .unwrap()
        .expect("the item is claimed");

    let item: String = sqlx::query_scalar("SELECT status FROM processing_queue WHERE id = $1")
        .bind(queued.item_id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let document: String = sqlx::query_scalar("SELECT status FROM documents WHERE id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!((item.as_str(), document.as_str()), ("running", "running"));
    for table in ["processing_queue", "documents"] {
        let retired = sqlx::query(&format!("UPDATE {table} SET status = 'processing'"))
            .execute(&db.pool)
            .await;
        assert!(retired.is_err(), "{table} still accepts 'processing'");
    }
    db.drop_database().await;
}

#[tokio::test]
async fn an_item_whose_lock_is_held_elsewhere_is_passed_over_for_the_next() {
    let db = test_database().await;
    let (a, a_sha) = doc("a");
    let (b, b_sha) = doc("b");
    let first = queue::enqueue(&db.pool, a, &a_sha, "a.pdf", 5)
        .await
        .unwrap();
    let second = queue::enqueue(&db.pool, b, &b_sha, "b.pdf", 0)
        .await
        .unwrap();

    let claim = queue::claim(&db.pool, "w", LEASE, |id| {
        std::future::ready((id != first.item_id).then_some(7))
    })
    .await
    .unwrap()
    .expect("the second item is claimed");

    assert_eq!(claim.item_id, second.item_id);
    let passed = queue::item(&db.pool, first.item_id).await.unwrap().unwrap();
    assert_eq!((passed.status, passed.attempts), (Status::Queued, 0));
    db.drop_database().await;
}

#[tokio::test]
async fn an_expired_lease_is_reclaimed_with_a_higher_fencing_token_and_the_old_claim_is_refused() {
    let db = test_database().await;
    let (id, sha) = doc("motion");
    let item = queue::enqueue(&db.pool, id, &sha, "motion.pdf", 0)
        .await
        .unwrap()
        .item_id;
    let locks = MemoryLocks::default();
    let old = queue::claim(&db.pool, "crashed", LEASE, locks.step())
        .await
        .unwrap()
        .unwrap();
    locks.release(item); // the Redis lock expired along with the lease
    expire_leases(&db.pool).await;

    let new = queue::claim(&db.pool, "healthy", LEASE, locks.step())
        .await
        .unwrap()
        .unwrap();

    assert_eq!(new.item_id, old.item_id);
    assert_eq!(new.attempt, 2);
    assert!(new.fencing_token > old.fencing_token);
    assert!(!queue::heartbeat(&db.pool, &old, LEASE).await.unwrap());
    assert!(!queue::complete(&db.pool, &old).await.unwrap());
    assert_eq!(
        queue::fail(&db.pool, &old, "late", true).await.unwrap(),
        FailOutcome::Stale
    );
    let late_write = persist::persist_document(
        &db.pool,
        &output("motion", "motion.pdf", 1, 1),
        Some(old.fencing_token),
    )
    .await;
    assert!(
        matches!(late_write, Err(DbError::StaleFencingToken { .. })),
        "{late_write:?}"
    );
    assert!(queue::heartbeat(&db.pool, &new, LEASE).await.unwrap());
    assert!(queue::complete(&db.pool, &new).await.unwrap());
    let history: Vec<_> = queue::attempts(&db.pool, item)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.attempt, a.worker_id, a.outcome))
        .collect();
    assert_eq!(
        history,
        [
            (1, "crashed".to_string(), AttemptOutcome::Stale),
            (2, "healthy".to_string(), AttemptOutcome::Completed),
        ]
    );
    let stored = queue::item(&db.pool, item).await.unwrap().unwrap();
    assert_eq!(stored.status, Status::Completed);
    assert_eq!(stored.fencing_token, new.fencing_token);
    db.drop_database().await;
}

#[tokio::test]
async fn completing_again_after_a_lost_reply_is_still_success() {
    let db = test_database().await;
    let (id, sha) = doc("stipulation");
    let item = queue::enqueue(&db.pool, id, &sha, "stipulation.pdf", 0)
        .await
        .unwrap()
        .item_id;
    let claim = queue::claim(&db.pool, "w", LEASE, grant(1))
        .await
        .unwrap()
        .unwrap();

    let first = queue::complete(&db.pool, &claim).await.unwrap();
    let retry = queue::complete(&db.pool, &claim).await.unwrap();

    assert!(first && retry);
    let outcomes = outcomes(&db.pool, item).await;
    assert_eq!(outcomes, [AttemptOutcome::Completed]);
    db.drop_database().await;
}

#[tokio::test]
async fn a_lock_token_that_is_not_newer_than_the_items_is_refused() {
    let db = test_database().await;
    let (id, sha) = doc("order");
    let item = queue::enqueue(&db.pool, id, &sha, "order.pdf", 0)
        .await
        .unwrap()
        .item_id;
    queue::claim(&db.pool, "w1", LEASE, grant(5))
        .await
        .unwrap()
        .unwrap();
    expire_leases(&db.pool).await;

    let same = queue::claim(&db.pool, "w2", LEASE, grant(5)).await.unwrap();
    let older = queue::claim(&db.pool, "w2", LEASE, grant(4)).await.unwrap();
    let newer = queue::claim(&db.pool, "w2", LEASE, grant(6)).await.unwrap();

    assert!(same.is_none() && older.is_none());
    assert_eq!(
        newer.map(|c| (c.item_id, c.fencing_token, c.attempt)),
        Some((item, 6, 2))
    );
    db.drop_database().await;
}

#[tokio::test]
async fn an_item_whose_lease_expires_max_attempts_times_fails_with_the_reason() {
    let db = test_database().await;
    let (id, sha) = doc("exhibit");
    let item = queue::enqueue(&db.pool, id, &sha, "exhibit.pdf", 0)
        .await
        .unwrap()
        .item_id;
    for fence in 1..=3 {
        queue::claim(&db.pool, "dies", LEASE, grant(fence))
            .await
            .unwrap()
            .unwrap();
        expire_leases(&db.pool).await;
    }

    let fourth = queue::claim(&db.pool, "w", LEASE, grant(4)).await.unwrap();

    assert!(fourth.is_none());
    let stored = queue::item(&db.pool, item).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.attempts), (Status::Failed, 3));
    let reason = stored.last_error.unwrap();
    assert!(reason.contains("lease expired 3 times"), "{reason}");
    let outcomes = outcomes(&db.pool, item).await;
    assert_eq!(outcomes, [AttemptOutcome::Abandoned; 3]);
    let document = persist::load_document(&db.pool, id).await.unwrap().unwrap();
    assert_eq!(document.status, Status::Failed);
    assert_eq!(
        document.error_type.as_deref(),
        Some(queue::LEASE_EXPIRED_ERROR_TYPE)
    );
    db.drop_database().await;
}

#[tokio::test]
async fn a_retryable_failure_requeues_until_max_attempts_then_fails_with_the_last_error() {
    let db = test_database().await;
    let (id, sha) = doc("deposition");
    let item = queue::enqueue(&db.pool, id, &sha, "deposition.pdf", 0)
        .await
        .unwrap()
        .item_id;
    let mut outcomes = Vec::new();

    for fence in 1..=3 {
        let claim = queue::claim(&db.pool, "w", LEASE, grant(fence))
            .await
            .unwrap()
            .unwrap();
        let error = format!("Textract throttled (attempt {fence})");
        outcomes.push(queue::fail(&db.pool, &claim, &error, true).await.unwrap());
    }

    assert_eq!(
        outcomes,
        [
            FailOutcome::Requeued {
                attempts: 1,
                max_attempts: 3
            },
            FailOutcome::Requeued {
                attempts: 2,
                max_attempts: 3
            },
            FailOutcome::Failed { attempts: 3 },
        ]
    );
    let stored = queue::item(&db.pool, item).await.unwrap().unwrap();
    assert_eq!(stored.status, Status::Failed);
    assert_eq!(
        stored.last_error.as_deref(),
        Some("Textract throttled (attempt 3)")
    );
    let document = persist::load_document(&db.pool, id).await.unwrap().unwrap();
    assert_eq!(document.status, Status::Failed);
    assert_eq!(
        document.error.as_deref(),
        Some("Textract throttled (attempt 3)")
    );
    assert!(
        queue::claim(&db.pool, "w", LEASE, grant(9))
            .await
            .unwrap()
            .is_none()
    );
    db.drop_database().await;
}

#[tokio::test]
async fn a_terminal_failure_fails_the_item_and_its_document_at_once() {
    let db = test_database().await;
    let (id, sha) = doc("encrypted");
    let item = queue::enqueue(&db.pool, id, &sha, "encrypted.pdf", 0)
        .await
        .unwrap()
        .item_id;
    let claim = queue::claim(&db.pool, "w", LEASE, grant(1))
        .await
        .unwrap()
        .unwrap();

    let outcome = queue::fail(&db.pool, &claim, "PDF is encrypted", false)
        .await
        .unwrap();

    assert_eq!(outcome, FailOutcome::Failed { attempts: 1 });
    let outcomes = outcomes(&db.pool, item).await;
    assert_eq!(outcomes, [AttemptOutcome::Failed]);
    let document = persist::load_document(&db.pool, id).await.unwrap().unwrap();
    assert_eq!(
        (document.status, document.error.as_deref()),
        (Status::Failed, Some("PDF is encrypted"))
    );
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_document_requeued_by_eight_callers_at_once_goes_back_once_and_is_claimed_as_its_next_attempt()
 {
    // Arrange: a document failed for good (a terminal error) after one attempt.
    let db = test_database().await;
    let (id, sha) = doc("source missing for a while");
    let item = queue::enqueue(&db.pool, id, &sha, "/in/late.pdf", 0)
        .await
        .unwrap()
        .item_id;
    let claim = queue::claim(&db.pool, "w1", LEASE, grant(1))
        .await
        .unwrap()
        .unwrap();
    queue::fail_typed(
        &db.pool,
        &claim,
        Some("SourceMissing"),
        "no such file",
        false,
    )
    .await
    .unwrap();

    // Act: eight operators (or scripts) retry it at the same moment.
    let barrier = Arc::new(Barrier::new(8));
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let (pool, barrier) = (db.pool.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                queue::requeue_failed(&pool, id, 2).await.unwrap()
            })
        })
        .collect();
    let mut requeues = Vec::new();
    for c in calls {
        requeues.push(c.await.unwrap());
    }

    // Assert: one requeue; the rest found it queued already.
    let requeued: Vec<_> = requeues
        .iter()
        .filter(|o| matches!(o, queue::Requeue::Requeued { .. }))
        .collect();
    assert_eq!(requeued.len(), 1, "{requeues:?}");
    assert_eq!(
        requeued[0],
        &queue::Requeue::Requeued {
            item_id: item,
            document_id: id,
            content_sha256: sha.clone(),
            source_path: "/in/late.pdf".into(),
            attempts: 1,
            attempts_left: 2,
        }
    );
    assert!(
        requeues
            .iter()
            .filter(|o| !matches!(o, queue::Requeue::Requeued { .. }))
            .all(|o| *o == queue::Requeue::NotFailed(Status::Queued)),
        "{requeues:?}"
    );
    let row = queue::item(&db.pool, item).await.unwrap().unwrap();
    assert_eq!(
        (row.status, row.attempts, row.max_attempts),
        (Status::Queued, 1, 3)
    );
    let document = persist::load_document(&db.pool, id).await.unwrap().unwrap();
    assert_eq!(
        (document.status, document.error.as_deref()),
        (Status::Queued, None)
    );

    // The next claim is attempt 2, with a newer token; the failed attempt keeps its row.
    let again = queue::claim(&db.pool, "w2", LEASE, grant(2))
        .await
        .unwrap()
        .expect("the requeued item is claimable");
    assert_eq!((again.item_id, again.attempt), (item, 2));
    assert!(queue::complete(&db.pool, &again).await.unwrap());
    assert_eq!(
        outcomes(&db.pool, item).await,
        [AttemptOutcome::Failed, AttemptOutcome::Completed]
    );
    db.drop_database().await;
}

#[tokio::test]
async fn only_failed_documents_are_requeued_and_the_failed_can_be_listed_by_error_type() {
    let db = test_database().await;
    let mut ids = HashMap::new();
    for (seed, fate) in [
        ("done", "completed"),
        ("llm down", "LlmUnavailable"),
        ("encrypted", "EncryptedPdf"),
        ("queued", "queued"),
    ] {
        let (id, sha) = doc(seed);
        queue::enqueue(&db.pool, id, &sha, &format!("{seed}.pdf"), 0)
            .await
            .unwrap();
        ids.insert(seed, id);
        if fate == "queued" {
            continue;
        }
        let claim = queue::claim(&db.pool, "w", LEASE, grant(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claim.document_id, id);
        if fate == "completed" {
            assert!(queue::complete(&db.pool, &claim).await.unwrap());
        } else {
            queue::fail_typed(&db.pool, &claim, Some(fate), "failed", false)
                .await
                .unwrap();
        }
    }

    let all = queue::failed_documents(&db.pool, None).await.unwrap();
    let llm = queue::failed_documents(&db.pool, Some("LlmUnavailable"))
        .await
        .unwrap();

    assert_eq!(all, [ids["llm down"], ids["encrypted"]]);
    assert_eq!(llm, [ids["llm down"]]);
    assert_eq!(
        queue::requeue_failed(&db.pool, ids["done"], 3)
            .await
            .unwrap(),
        queue::Requeue::NotFailed(Status::Completed)
    );
    assert_eq!(
        queue::requeue_failed(&db.pool, ids["queued"], 3)
            .await
            .unwrap(),
        queue::Requeue::NotFailed(Status::Queued)
    );
    assert_eq!(
        queue::requeue_failed(&db.pool, doc("never seen").0, 3)
            .await
            .unwrap(),
        queue::Requeue::NotQueued
    );
    assert!(matches!(
        queue::requeue_failed(&db.pool, ids["llm down"], 3)
            .await
            .unwrap(),
        queue::Requeue::Requeued { .. }
    ));
    assert_eq!(
        queue::failed_documents(&db.pool, None).await.unwrap(),
        [ids["encrypted"]]
    );
    db.drop_database().await;
}

#[tokio::test]
async fn persisting_the_same_output_twice_leaves_identical_rows_and_writes_nothing_new() {
    let db = test_database().await;
    let out = output("judgment", "judgment.pdf", 4, 3);
    let id = document_uuid(&out.content_sha256);

    let first = persist::persist_document(&db.pool, &out, Some(1))
        .await
        .unwrap();
    let after_first = snapshot(&db.pool, id).await;
    let second = persist::persist_document(&db.pool, &out, Some(1))
        .await
        .unwrap();

    assert_eq!(first.stored, one_copy_of(&out));
    assert_eq!(first.written, one_copy_of(&out));
    assert_eq!(second.written, RowCounts::default());
    assert_eq!(second.deleted, RowCounts::default());
    let stored = persist::load_document(&db.pool, id).await.unwrap().unwrap();
    assert_eq!(stored.rows, one_copy_of(&out));
    assert_eq!(stored.status, Status::Completed);
    assert_eq!(stored.page_count, Some(2));
    // Only the update time of the documents row may differ.
    let tables = |s: &[(String, i64, Option<String>)]| s[1..].to_vec();
    assert_eq!(tables(&snapshot(&db.pool, id).await), tables(&after_first));
    let mention_entity: String = sqlx::query_scalar(
        "SELECT canonical_entity_id FROM entity_mentions WHERE document_id = $1 AND mention_id = $2",
    )
    .bind(id)
    .bind(&out.entities[2].mention_ids[1])
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(mention_entity, "e2");
    db.drop_database().await;
}

#[tokio::test]
async fn persisting_with_an_older_fencing_token_is_refused_and_changes_nothing() {
    let db = test_database().await;
    let current = output("appeal", "appeal.pdf", 3, 2);
    let id = document_uuid(&current.content_sha256);
    persist::persist_document(&db.pool, &current, Some(5))
        .await
        .unwrap();
    let before = snapshot(&db.pool, id).await;
    let mut late = output("appeal", "late-worker/appeal.pdf", 1, 1);
    late.ocr_method = "textract".to_string();

    let refused = persist::persist_document(&db.pool, &late, Some(4))
        .await
        .unwrap_err();

    match &refused {
        DbError::StaleFencingToken {
            document_id,
            presented,
            current,
        } => assert_eq!((*document_id, *presented, *current), (id, 4, 5)),
        other => panic!("expected StaleFencingToken, got {other:?}"),
    }
    assert!(!refused.is_retryable());
    assert_eq!(refused.error_type(), "StaleFencingToken");
    assert_eq!(snapshot(&db.pool, id).await, before);
    // The holder of the current token may write again.
    persist::persist_document(&db.pool, &current, Some(5))
        .await
        .unwrap();
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_persists_of_one_document_leave_exactly_one_set_of_rows() {
    let db = test_database().await;
    let out = Arc::new(output("complaint", "complaint.pdf", 6, 4));
    let id = document_uuid(&out.content_sha256);
    let start = Arc::new(Barrier::new(16));

    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let pool = db.pool.clone();
            let out = out.clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                persist::persist_document(&pool, &out, None).await
            })
        })
        .collect();
    let mut reports = Vec::new();
    for t in tasks {
        reports.push(t.await.unwrap().expect("every unfenced persist succeeds"));
    }

    let stored = persist::load_document(&db.pool, id).await.unwrap().unwrap();
    assert_eq!(stored.rows, one_copy_of(&out));
    assert_eq!(count(&db.pool, "SELECT 1 FROM documents").await, 1);
    let inserted_mentions: u64 = reports.iter().map(|r| r.written.mentions).sum();
    assert_eq!(
        inserted_mentions,
        out.mentions.len() as u64,
        "one call inserted them"
    );
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_fenced_persists_keep_the_newest_token_and_refuse_only_older_ones() {
    let db = test_database().await;
    let out = Arc::new(output("order", "order.pdf", 5, 2));
    let id = document_uuid(&out.content_sha256);
    let start = Arc::new(Barrier::new(16));

    let tasks: Vec<_> = (1..=16u64)
        .map(|token| {
            let pool = db.pool.clone();
            let out = out.clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                (
                    token,
                    persist::persist_document(&pool, &out, Some(token)).await,
                )
            })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        match t.await.unwrap() {
            (_, Ok(_)) => accepted += 1,
            (
                token,
                Err(DbError::StaleFencingToken {
                    presented, current, ..
                }),
            ) => {
                assert_eq!(presented, token);
                assert!(current > presented);
            }
            (token, Err(e)) => panic!("token {token}: {e:?}"),
        }
    }

    assert!(accepted >= 1);
    let stored = persist::load_document(&db.pool, id).await.unwrap().unwrap();
    assert_eq!(stored.fencing_token, 16, "token 16 is never stale");
    assert_eq!(stored.rows, one_copy_of(&out));
    db.drop_database().await;
}

#[tokio::test]
async fn reprocessing_with_fewer_chunks_removes_the_rows_that_are_gone() {
    let db = test_database().await;
    let before = output("memo", "memo.pdf", 4, 2);
    let id = document_uuid(&before.content_sha256);
    persist::persist_document(&db.pool, &before, None)
        .await
        .unwrap();
    // Re-chunked into two chunks, and resolution now merges everything into e0: e1 goes
    // away while its surviving mentions move to e0.
    let mut after = output("memo", "memo.pdf", 2, 2);
    let all: Vec<String> = after.mentions.iter().map(|m| m.id.clone()).collect();
    after.entities.truncate(1);
    after.entities[0].mention_ids = all;

    let report = persist::persist_document(&db.pool, &after, None)
        .await
        .unwrap();

    let stored = persist::load_document(&db.pool, id).await.unwrap().unwrap();
    assert_eq!(stored.rows, one_copy_of(&after));
    assert_eq!(report.stored, one_copy_of(&after));
    assert_eq!(report.deleted.chunks, 2);
    assert_eq!(report.deleted.canonical_entities, 1);
    let entities: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT canonical_entity_id FROM entity_mentions WHERE document_id = $1",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(entities, ["e0"]);
    db.drop_database().await;
}

#[tokio::test]
async fn an_inconsistent_output_is_refused_before_anything_is_written() {
    let db = test_database().await;
    let mut orphan = output("notice", "notice.pdf", 2, 2);
    orphan.entities[0].mention_ids.pop();
    let mut duplicate = output("notice", "notice.pdf", 2, 2);
    duplicate.mentions[1].id = duplicate.mentions[0].id.clone();
    let mut foreign = output("notice", "notice.pdf", 2, 2);
    foreign.document_uuid = Uuid::new_v4().to_string();

    for out in [orphan, duplicate, foreign] {
        let err = persist::persist_document(&db.pool, &out, None)
            .await
            .unwrap_err();
        assert!(matches!(err, DbError::InvalidData(_)), "{err:?}");
        assert!(!err.is_retryable());
    }

    assert_eq!(count(&db.pool, "SELECT 1 FROM documents").await, 0);
    db.drop_database().await;
}

#[tokio::test]
async fn connecting_to_a_closed_port_is_a_retryable_unavailable_error() {
    let cfg = DatabaseConfig {
        url: Some(Secret::new(
            "postgres://postgres:s3cret@127.0.0.1:1/postgres",
        )),
        auto_migrate: false,
        max_connections: 1,
    };

    let err = db::connect(&cfg).await.unwrap_err();

    assert!(matches!(err, DbError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

#[tokio::test]
async fn connecting_without_a_database_url_is_a_terminal_not_configured_error() {
    let cfg = DatabaseConfig {
        url: None,
        auto_migrate: false,
        max_connections: 1,
    };

    let err = db::connect(&cfg).await.unwrap_err();

    assert!(matches!(err, DbError::NotConfigured));
    assert!(!err.is_retryable());
}
