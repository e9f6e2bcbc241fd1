//! The Lambda functions' handlers, called directly (not through the Lambda runtime):
//! errors as Step Functions sees them, the invocation deadline, and `mark-failed`'s
//! record in PostgreSQL.

use std::time::Duration;

use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use lexpipe::redis::idempotency::Outcome;
use lexpipe::redis::lock::LockName;
use lexpipe::stages::persist::QueueClaim;
use lexpipe::stages::{DocumentRef, StageError, errors, tasks};
use lexpipe::store::queue::{self, ItemClaim};
use lexpipe::testing::fake_llm::{FakeLlm, Fault};
use lexpipe::text::sha256_hex;
use lexpipe_tests::aws::context_with_deadline_in;
use lexpipe_tests::pg::test_database;
use lexpipe_tests::{app_for, cleanup, config_with, require_redis, unique_env};
use serde_json::{Value, json};

/// Every Task state of the definition (the Map's inner ones too), by name; an inner
/// one carries its Map's `Catch`.
fn task_states() -> Vec<(String, Value)> {
    fn walk(states: &Value, catch: Option<&Value>, out: &mut Vec<(String, Value)>) {
        for (name, s) in states.as_object().expect("States") {
            if s["Type"] == "Task" {
                let mut s = s.clone();
                if let Some(c) = catch {
                    s["Catch"] = c.clone();
                }
                out.push((name.clone(), s));
            }
            if let Some(inner) = s.pointer("/ItemProcessor/States") {
                walk(inner, s.get("Catch"), out);
            }
        }
    }
    let def: Value = serde_json::from_str(lexpipe::pipeline::DEFINITION).unwrap();
    let mut out = Vec::new();
    walk(&def["States"], None, &mut out);
    out
}

fn names_in(state: &Value, field: &str) -> Vec<String> {
    state[field]
        .as_array()
        .map(|rules| {
            rules
                .iter()
                .flat_map(|r| r["ErrorEquals"].as_array().cloned().unwrap_or_default())
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_error_name_reaches_step_functions_as_the_error_type_its_retry_and_catch_match() {
    let tasks = task_states();
    assert_eq!(tasks.len(), tasks::ALL.len(), "one Task state per task");
    for name in errors::all() {
        // Arrange: an error of that name, as a step returns it.
        let e = StageError::Execution {
            error: name.to_string(),
            cause: "cause".into(),
        };

        // Act: what the Lambda runtime sends back to Step Functions.
        let d = lexpipe_functions::diagnostic(&e);
        let wire = serde_json::to_value(&d).unwrap();

        // Assert
        assert_eq!(wire["errorType"], name, "{wire}");
        let retried_by: Vec<&String> = tasks
            .iter()
            .filter(|(_, s)| names_in(s, "Retry").iter().any(|n| n == name))
            .map(|(state, _)| state)
            .collect();
        assert_eq!(
            !retried_by.is_empty(),
            errors::is_retryable(name),
            "{name}: retryable errors are retried somewhere, terminal ones nowhere ({retried_by:?})"
        );
        for (state, s) in &tasks {
            let caught = names_in(s, "Catch")
                .iter()
                .any(|n| n == name || n == "States.ALL");
            assert!(
                caught || s["Resource"] == "${MarkFailedFunctionArn}",
                "{state} lets {name} escape without mark-failed"
            );
        }
    }
    // The other direction: every name a rule matches is one a step can raise (or the
    // state machine's own).
    for (state, s) in &tasks {
        for n in names_in(s, "Retry").iter().chain(&names_in(s, "Catch")) {
            assert!(
                n.starts_with("States.") || errors::all().contains(&n.as_str()),
                "{state} matches {n}, which no step raises"
            );
        }
    }
}

#[test]
fn real_stage_errors_keep_their_stable_names_through_the_diagnostic() {
    let samples = [
        StageError::InvalidInput {
            message: "x".into(),
        },
        StageError::Read {
            what: "s3://b/k.pdf".into(),
            message: "timeout".into(),
        },
        StageError::TooLarge { size: 2, limit: 1 },
        StageError::ArtefactMissing { key: "k".into() },
        StageError::Ocr(lexpipe::ocr::OcrError::Empty),
        StageError::Blob(lexpipe::store::blob::BlobError::Unavailable {
            location: "s3://b/k".into(),
            message: "slow down".into(),
        }),
    ];
    for e in &samples {
        let d: Diagnostic = lexpipe_functions::diagnostic(e);
        assert_eq!(d.error_type, e.error_type());
        assert!(errors::all().contains(&d.error_type.as_str()));
        assert_eq!(d.error_message, e.to_string());
    }
}

#[tokio::test]
async fn a_failing_step_answers_the_name_that_its_state_retries_or_catches() {
    // Arrange
    require_redis().await;
    let env = unique_env("lambda-err");
    let app = app_for(&config_with(&env, &[])).await;
    let missing = DocumentRef::new(&sha256_hex(b"nothing"), "/nonexistent/lexpipe/none.pdf");

    // Act
    let malformed = lexpipe_functions::step(
        &app,
        tasks::CHUNK,
        LambdaEvent::new(json!({"document": 7}), Context::default()),
    )
    .await;
    let unreadable = lexpipe_functions::step(
        &app,
        tasks::OCR_START,
        LambdaEvent::new(json!({ "document": missing }), Context::default()),
    )
    .await;

    // Assert
    let d = malformed.expect_err("malformed input");
    assert_eq!(d.error_type, errors::INVALID_INPUT);
    assert!(!errors::is_retryable(&d.error_type), "caught, not retried");
    let d = unreadable.expect_err("missing file");
    assert_eq!(d.error_type, errors::READ_ERROR);
    assert!(errors::is_retryable(&d.error_type), "retried by OcrStart");
    cleanup(&env).await;
}

#[tokio::test]
async fn an_invocation_bounds_its_idempotency_records_and_lock_leases_by_its_deadline() {
    // Arrange: an invocation with 1.5 s left, whose caller would like 60 s.
    require_redis().await;
    let env = unique_env("lambda-deadline");
    let app = app_for(&config_with(&env, &[])).await;
    let ctx = context_with_deadline_in(1500);
    let inv = lexpipe_functions::Invocation::start(&app, tasks::PERSIST, &ctx);
    let wanted = Some(Duration::from_secs(60));
    let bounded = inv.app.bound(wanted).expect("a bound");
    assert!(bounded <= Duration::from_millis(1500), "{bounded:?}");
    assert_eq!(
        app.bound(wanted),
        wanted,
        "outside an invocation nothing is cut"
    );
    let idem = inv.app.idempotency.clone().expect("idempotency on");
    let locks = inv.app.locks.clone().expect("locks on");

    // Act: the invocation takes a record and a lock, then dies (times out) holding both.
    let guard = match idem
        .begin("persist", "doc", "h", Some(bounded))
        .await
        .unwrap()
    {
        Outcome::Proceed(g) => g,
        other => panic!("{other:?}"),
    };
    drop(guard);
    let lease = locks
        .acquire(&LockName::queue_item(1), bounded)
        .await
        .unwrap()
        .expect("lock taken");
    let during = idem.begin("persist", "doc", "h", None).await.unwrap();
    let lock_during = locks
        .acquire(&LockName::queue_item(1), Duration::from_secs(60))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let after = idem.begin("persist", "doc", "h", None).await.unwrap();
    let lock_after = locks
        .acquire(&LockName::queue_item(1), Duration::from_secs(60))
        .await
        .unwrap();

    // Assert: the retry waits for the deadline and no longer.
    assert!(matches!(during, Outcome::InProgress), "{during:?}");
    assert!(lock_during.is_none());
    match after {
        Outcome::Proceed(g) => {
            assert!(g.took_over(), "the dead invocation's record was taken over");
            g.fail().await.unwrap();
        }
        other => panic!("{other:?}"),
    }
    let newer = lock_after.expect("the dead invocation's lease lapsed");
    assert!(newer.fencing_token() > lease.fencing_token());
    cleanup(&env).await;
}

/// A document claimed for an execution the way `ingest` claims it, and the app of a
/// function with that database.
async fn claimed_document(
    db: &lexpipe_tests::pg::TestDb,
    env: &str,
    seed: &str,
) -> (lexpipe::app::App, DocumentRef, queue::Claim) {
    let config = config_with(env, &[("DATABASE_URL", db.url.as_str())]);
    let app = lexpipe::app::App::build(config, lexpipe_functions::app_options())
        .await
        .unwrap();
    let sha = sha256_hex(seed.as_bytes());
    let document = DocumentRef::new(&sha, "s3://uploads/incoming/a.pdf");
    let item = queue::enqueue(&db.pool, document.document_uuid, &sha, &document.source, 0)
        .await
        .unwrap();
    let claim = match queue::claim_item(
        &db.pool,
        item.item_id,
        |_| "doc-test".to_string(),
        Duration::from_secs(600),
        |_| std::future::ready(Some(5)),
    )
    .await
    .unwrap()
    {
        ItemClaim::Claimed(c) => c,
        other => panic!("{other:?}"),
    };
    (app, document, claim)
}

fn queue_claim(c: &queue::Claim, settles_row: bool) -> QueueClaim {
    QueueClaim {
        item_id: c.item_id,
        fencing_token: c.fencing_token,
        lease_ms: 600_000,
        attempt: c.attempt,
        settles_row,
    }
}

async fn mark_failed(app: &lexpipe::app::App, input: Value) -> Value {
    lexpipe_functions::step(
        app,
        tasks::MARK_FAILED,
        LambdaEvent::new(input, Context::default()),
    )
    .await
    .expect("mark-failed succeeds")
}

#[tokio::test]
async fn mark_failed_fails_the_queue_row_and_the_document_that_its_execution_owns() {
    // Arrange
    require_redis().await;
    let db = test_database().await;
    let env = unique_env("lambda-markfailed");
    let (app, document, claim) = claimed_document(&db, &env, "mark failed").await;

    // Act
    let out = mark_failed(
        &app,
        json!({
            "document": document,
            "error": {"Error": "DocumentTooLarge", "Cause": "file is 9 bytes, over the limit of 1 bytes"},
            "queue": queue_claim(&claim, true),
        }),
    )
    .await;

    // Assert
    assert_eq!(out["queue"], "failed");
    let item = queue::item(&db.pool, claim.item_id).await.unwrap().unwrap();
    assert_eq!(item.status, lexpipe::model::DocumentStatus::Failed);
    assert!(
        item.last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("DocumentTooLarge: file is 9 bytes")),
        "{:?}",
        item.last_error
    );
    let doc = lexpipe::store::persist::load_document(&db.pool, document.document_uuid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(doc.status, lexpipe::model::DocumentStatus::Failed);
    assert_eq!(doc.error_type.as_deref(), Some("DocumentTooLarge"));
    let attempts = queue::attempts(&db.pool, claim.item_id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, queue::AttemptOutcome::Failed);
    cleanup(&env).await;
    db.drop_database().await;
}

#[tokio::test]
async fn mark_failed_leaves_a_queue_workers_row_to_the_worker_and_a_newer_owners_row_alone() {
    // Arrange
    require_redis().await;
    let db = test_database().await;
    let env = unique_env("lambda-markfailed2");
    let (app, document, claim) = claimed_document(&db, &env, "worker owned").await;
    let error = json!({"Error": "InjectedFailure", "Cause": "boom"});

    // Act: a worker's claim; then a claim older than the row's.
    let worker = mark_failed(
        &app,
        json!({"document": document, "error": error, "queue": queue_claim(&claim, false)}),
    )
    .await;
    let mut stale = queue_claim(&claim, true);
    stale.fencing_token -= 1;
    let stale = mark_failed(
        &app,
        json!({"document": document, "error": error, "queue": stale}),
    )
    .await;
    let without = mark_failed(&app, json!({"document": document, "error": error})).await;

    // Assert
    assert_eq!(worker["queue"], Value::Null);
    assert_eq!(stale["queue"], "stale");
    assert_eq!(without["queue"], Value::Null);
    let item = queue::item(&db.pool, claim.item_id).await.unwrap().unwrap();
    assert_eq!(item.status, lexpipe::model::DocumentStatus::Running);
    cleanup(&env).await;
    db.drop_database().await;
}

#[tokio::test]
async fn a_step_that_fails_after_paid_calls_counts_them_in_its_invocations_metric_lines() {
    // Arrange: a document chunked by the functions, and an LLM that answers every request
    // of the next batch with broken JSON (each chunk is asked, repaired, and fails).
    require_redis().await;
    let env = unique_env("lambda-usage");
    let fake = FakeLlm::start().await;
    let base = fake.base_url();
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(
        &env,
        &[
            ("LEXPIPE_LLM_BASE_URL", base.as_str()),
            ("LEXPIPE_EXTRACTOR", "llm"),
            ("LEXPIPE_LLM_RETRY_BASE_MS", "10"),
        ],
    );
    let app = lexpipe_tests::app_with_artefacts(config, dir.path()).await;
    let file = lexpipe_tests::samples_dir().join("nda.pdf");
    let source = file.display().to_string();
    let doc = DocumentRef::new(&sha256_hex(std::fs::read(&file).unwrap()), &source);
    let step = |task: &'static str, input: Value| {
        lexpipe_functions::step(&app, task, LambdaEvent::new(input, Context::default()))
    };
    let ocr = step(tasks::OCR_START, json!({ "document": doc }))
        .await
        .unwrap();
    let chunks = step(tasks::CHUNK, json!({"document": doc, "ocr": ocr}))
        .await
        .unwrap();
    let batch = &chunks["batches"][0];
    let count = batch["count"].as_u64().unwrap();
    fake.push_faults((0..2 * count).map(|_| Fault::Malformed));
    let input = json!({"document": doc, "chunks": chunks["artefact"], "batch": batch});

    // Act
    let result = lexpipe::pipeline::invoke(&app, tasks::EXTRACT_ENTITIES, input).await;

    // Assert: the failed step carries the calls the endpoint received, and its
    // invocation's metric lines count them.
    let error = result.as_ref().expect_err("every chunk fails");
    assert_eq!(error.error_type(), "LlmInvalidResponse", "{error}");
    assert_eq!(fake.requests(), 2 * count);
    let usage = lexpipe_functions::step_usage(&result);
    assert_eq!(usage.llm.calls, fake.requests());
    let invocation =
        lexpipe_functions::Invocation::start(&app, tasks::EXTRACT_ENTITIES, &Context::default());
    let lines = invocation.metric_lines(&usage);
    let llm = lines
        .iter()
        .find(|l| l["Api"] == "llm")
        .expect("an LLM line");
    assert_eq!(llm["ApiCalls"], json!(fake.requests() as f64));
    cleanup(&env).await;
}
