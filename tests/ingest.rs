//! `ingest` against the real thing: moto's S3 and Step Functions, PostgreSQL and Redis.
//! Notifications are `events/ingest.json` with each test's bucket, key and version, run
//! through the function's handler (not the Lambda runtime).

use lambda_runtime::{Context, LambdaEvent};
use lexpipe::ingest::{ObjectOutcome, RetryOutcome, SkipReason};
use lexpipe::model::{DocumentStatus, document_uuid};
use lexpipe::text::sha256_hex;
use lexpipe_tests::aws::{World, unique_pdf};
use lexpipe_tests::pg::count;

async fn ingest(
    world: &World,
    app: &lexpipe::app::App,
    event: aws_lambda_events::s3::S3Event,
) -> Result<lexpipe::ingest::Report, lambda_runtime::Diagnostic> {
    let machine = world.machine();
    lexpipe_functions::ingest(app, &machine, LambdaEvent::new(event, Context::default())).await
}

fn outcome(r: &lexpipe::ingest::Report) -> &ObjectOutcome {
    assert_eq!(r.objects.len(), 1, "{r:?}");
    &r.objects[0].outcome
}

#[tokio::test]
async fn the_same_object_uploaded_five_times_concurrently_starts_one_execution_with_one_set_of_rows()
 {
    // Arrange: five uploads of the same bytes to a versioned bucket: five versions, five
    // notifications, handled by five function instances at once.
    let world = World::start("five", true).await;
    let bytes = unique_pdf("five uploads");
    let sha = sha256_hex(&bytes);
    let key = "incoming/Five Times.pdf";
    let mut events = Vec::new();
    for _ in 0..5 {
        let (version, etag) = world.put(key, bytes.clone()).await;
        assert!(version.is_some(), "moto versions the bucket");
        events.push(world.notification(key, version.as_deref(), etag.as_deref()));
    }
    let mut apps = Vec::new();
    for _ in 0..5 {
        apps.push(world.app(&[]).await);
    }

    // Act
    let world = std::sync::Arc::new(world);
    let tasks: Vec<_> = apps
        .into_iter()
        .zip(events)
        .map(|(app, event)| {
            let world = world.clone();
            tokio::spawn(async move { ingest(&world, &app, event).await })
        })
        .collect();
    let mut started = 0;
    for t in tasks {
        match outcome(&t.await.unwrap().expect("every notification succeeds")) {
            ObjectOutcome::Started { .. } => started += 1,
            ObjectOutcome::AlreadyStarted { .. } => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    // Assert
    assert_eq!(started, 1);
    let executions = world.moto.executions(&world.machine_arn).await;
    assert_eq!(executions.len(), 1, "{executions:?}");
    let (name, input) = &executions[0];
    assert_eq!(name, &lexpipe::ingest::execution_name(&sha));
    assert_eq!(input["document"]["content_sha256"], sha.as_str());
    assert_eq!(
        input["document"]["source"],
        format!("s3://{}/{key}", world.bucket)
    );
    assert_eq!(input["queue"]["settles_row"], true);
    let pool = &world.db.pool;
    assert_eq!(count(pool, "TABLE documents").await, 1);
    assert_eq!(count(pool, "TABLE document_sources").await, 1);
    assert_eq!(count(pool, "TABLE processing_queue").await, 1);
    assert_eq!(count(pool, "TABLE queue_attempts").await, 1);
    let item = lexpipe::store::queue::item(pool, input["queue"]["item_id"].as_i64().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item.status, DocumentStatus::Running);
    assert_eq!(item.worker_id.as_deref(), Some(name.as_str()));
    assert_eq!(
        item.fencing_token,
        input["queue"]["fencing_token"].as_u64().unwrap()
    );
    assert_eq!(item.document_id, document_uuid(&sha));
    std::sync::Arc::into_inner(world).unwrap().cleanup().await;
}

#[tokio::test]
async fn a_notification_delivered_five_times_at_once_is_handled_once_and_the_rest_are_no_ops() {
    // Arrange: one upload to an unversioned bucket; S3 delivers its notification five
    // times (at-least-once delivery), to five instances at once.
    let world = World::start("dup", false).await;
    let key = "incoming/Duplicate Delivery.pdf";
    let (version, etag) = world.put(key, unique_pdf("duplicates")).await;
    assert!(version.is_none());
    let event = world.notification(key, None, etag.as_deref());
    let mut apps = Vec::new();
    for _ in 0..5 {
        apps.push(world.app(&[]).await);
    }

    // Act
    let results =
        futures::future::join_all(apps.iter().map(|app| ingest(&world, app, event.clone()))).await;
    let again = ingest(&world, &apps[0], event.clone()).await.unwrap();

    // Assert
    let outcomes: Vec<ObjectOutcome> = results
        .into_iter()
        .map(|r| outcome(&r.expect("no notification fails")).clone())
        .collect();
    let started = outcomes
        .iter()
        .filter(|o| matches!(o, ObjectOutcome::Started { .. }))
        .count();
    let duplicates = outcomes
        .iter()
        .filter(|o| matches!(o, ObjectOutcome::Duplicate { first } if matches!(**first, ObjectOutcome::Started { .. })))
        .count();
    assert_eq!((started, duplicates), (1, 4), "{outcomes:?}");
    assert!(
        matches!(outcome(&again), ObjectOutcome::Duplicate { .. }),
        "a later redelivery is a no-op too"
    );
    assert_eq!(world.moto.executions(&world.machine_arn).await.len(), 1);
    assert_eq!(count(&world.db.pool, "TABLE processing_queue").await, 1);
    assert_eq!(count(&world.db.pool, "TABLE queue_attempts").await, 1);
    world.cleanup().await;
}

#[tokio::test]
async fn keys_with_spaces_non_ascii_and_plus_signs_are_decoded_to_the_uploaded_objects() {
    // Arrange
    let world = World::start("keys", false).await;
    let app = world.app(&[]).await;
    let keys = [
        "incoming/Court Order – Müller v. État.pdf",
        "incoming/Smith+Jones 50%.pdf",
        "incoming/判决书.pdf",
    ];

    for key in keys {
        let (_, etag) = world.put(key, unique_pdf(key)).await;
        let event = world.notification(key, None, etag.as_deref());
        assert_ne!(
            event.records[0].s3.object.key.as_deref(),
            Some(key),
            "the notification carries the key encoded"
        );

        // Act
        let report = ingest(&world, &app, event).await.expect("ingested");

        // Assert
        assert_eq!(report.objects[0].key, key);
        assert!(
            matches!(outcome(&report), ObjectOutcome::Started { .. }),
            "{key}: {report:?}"
        );
    }
    let sources: Vec<String> = world
        .moto
        .executions(&world.machine_arn)
        .await
        .into_iter()
        .map(|(_, input)| input["document"]["source"].as_str().unwrap().to_string())
        .collect();
    for key in keys {
        assert!(
            sources.contains(&format!("s3://{}/{key}", world.bucket)),
            "{key} in {sources:?}"
        );
    }
    world.cleanup().await;
}

#[tokio::test]
async fn folder_markers_other_files_the_pipelines_own_output_and_undecodable_keys_start_nothing() {
    // Arrange
    let world = World::start("ignored", false).await;
    let app = world.app(&[]).await;
    let cases = [
        ("incoming/", SkipReason::FolderMarker),
        ("incoming/notes.txt", SkipReason::NotPdf),
        ("incoming/scan.pdf.zip", SkipReason::NotPdf),
        ("processed/ab/result.pdf", SkipReason::Processed),
    ];

    for (key, reason) in cases {
        world.put(key, unique_pdf(key)).await;
        let event = world.notification(key, None, Some("e"));

        // Act
        let report = ingest(&world, &app, event).await.expect("not an error");

        // Assert
        assert_eq!(
            outcome(&report),
            &ObjectOutcome::Skipped { reason },
            "{key}"
        );
    }
    let mut bad = world.notification("incoming/x.pdf", None, Some("e"));
    bad.records[0].s3.object.key = Some("incoming/broken%E2%28.pdf".into());
    let report = ingest(&world, &app, bad).await.expect("not an error");
    assert_eq!(
        outcome(&report),
        &ObjectOutcome::Skipped {
            reason: SkipReason::BadKey
        }
    );
    assert!(world.moto.executions(&world.machine_arn).await.is_empty());
    assert_eq!(count(&world.db.pool, "TABLE documents").await, 0);
    world.cleanup().await;
}

#[tokio::test]
async fn an_object_deleted_before_it_is_ingested_is_reported_missing_and_can_be_ingested_once_back()
{
    // Arrange: the notification of an upload that was deleted before ingest ran.
    let world = World::start("missing", false).await;
    let app = world.app(&[]).await;
    let key = "incoming/Gone.pdf";
    let bytes = unique_pdf("gone");
    let (_, etag) = world.put(key, bytes.clone()).await;
    world
        .moto
        .client()
        .delete_object()
        .bucket(&world.bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let event = world.notification(key, None, etag.as_deref());

    // Act
    let gone = ingest(&world, &app, event.clone())
        .await
        .expect("not an error");
    world.put(key, bytes).await;
    let back = ingest(&world, &app, event).await.expect("ingested");

    // Assert
    assert_eq!(outcome(&gone), &ObjectOutcome::Missing);
    assert!(
        matches!(outcome(&back), ObjectOutcome::Started { .. }),
        "a missing object is not remembered as done: {back:?}"
    );
    assert_eq!(world.moto.executions(&world.machine_arn).await.len(), 1);
    world.cleanup().await;
}

#[tokio::test]
async fn a_state_machine_that_does_not_exist_fails_the_notification_retryably_and_remembers_nothing()
 {
    // Arrange
    let world = World::start("nomachine", false).await;
    let app = world.app(&[]).await;
    let key = "incoming/Retry Me.pdf";
    let (_, etag) = world.put(key, unique_pdf("retry")).await;
    let event = world.notification(key, None, etag.as_deref());
    let wrong = lexpipe::ingest::StateMachine::new(
        world.moto.sfn(),
        "arn:aws:states:us-east-1:123456789012:stateMachine:nope",
    );

    // Act
    let failed = lexpipe_functions::ingest(
        &app,
        &wrong,
        LambdaEvent::new(event.clone(), Context::default()),
    )
    .await;
    let retried = ingest(&world, &app, event).await;

    // Assert
    let d = failed.expect_err("no such state machine");
    assert_eq!(
        d.error_type,
        lexpipe::ingest::error_types::START_EXECUTION_FAILED
    );
    // The failed attempt left no idempotency record behind, and its claim on the queue
    // row is adopted by the retry, which starts the execution.
    let retried = retried.expect("the retry succeeds");
    assert!(
        matches!(
            outcome(&retried),
            ObjectOutcome::Started { .. } | ObjectOutcome::AlreadyStarted { .. }
        ),
        "{retried:?}"
    );
    assert_eq!(world.moto.executions(&world.machine_arn).await.len(), 1);
    assert_eq!(count(&world.db.pool, "TABLE queue_attempts").await, 1);
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_document_is_not_restarted_by_a_re_upload_but_a_retry_starts_its_next_attempt_once()
 {
    // Arrange: an upload whose execution failed and reached mark-failed, which failed the
    // queue row it owns.
    let world = World::start("retry", true).await;
    let app = world.app(&[]).await;
    let key = "incoming/Retry Me.pdf";
    let bytes = unique_pdf("retry");
    let sha = sha256_hex(&bytes);
    let (version, etag) = world.put(key, bytes.clone()).await;
    let first = ingest(
        &world,
        &app,
        world.notification(key, version.as_deref(), etag.as_deref()),
    )
    .await
    .unwrap();
    assert!(matches!(outcome(&first), ObjectOutcome::Started { .. }));
    let (_, input) = world.moto.executions(&world.machine_arn).await.remove(0);
    let failed = lexpipe_functions::step(
        &app,
        lexpipe::stages::tasks::MARK_FAILED,
        LambdaEvent::new(
            serde_json::json!({
                "document": input["document"],
                "queue": input["queue"],
                "error": {"Error": "LlmUnavailable", "Cause": "the provider answered 503"},
            }),
            Context::default(),
        ),
    )
    .await
    .expect("mark-failed succeeds");
    assert_eq!(failed["queue"], "failed");

    // Act 1: the same bytes uploaded again (a new version, a new notification).
    let (version, etag) = world.put(key, bytes).await;
    let reupload = ingest(
        &world,
        &app,
        world.notification(key, version.as_deref(), etag.as_deref()),
    )
    .await
    .unwrap();

    // Assert 1: nothing starts; the reason says how to retry.
    let uuid = document_uuid(&sha);
    match outcome(&reupload) {
        ObjectOutcome::NotStarted {
            document_uuid,
            reason,
        } => {
            assert_eq!(*document_uuid, uuid);
            assert!(reason.contains("already failed"), "{reason}");
            assert!(
                reason.contains(&format!("lexpipe retry {uuid}")),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(world.moto.executions(&world.machine_arn).await.len(), 1);

    // Act 2: five operators retry it at once, each from their own process.
    let mut apps = Vec::new();
    for _ in 0..5 {
        apps.push(world.app(&[]).await);
    }
    let machine = world.machine();
    let retries = futures::future::join_all(
        apps.iter()
            .map(|a| lexpipe::ingest::retry(a, Some(&machine), uuid, 3)),
    )
    .await;

    // Assert 2: one requeue, one new execution named for attempt 2, the row running
    // under it; the other four found the document no longer failed.
    let mut started = Vec::new();
    for r in retries {
        match r.expect("no retry fails") {
            RetryOutcome::Requeued {
                attempt, execution, ..
            } => started.push((attempt, execution)),
            RetryOutcome::NotFailed { status, .. } => {
                assert!(
                    matches!(status, DocumentStatus::Queued | DocumentStatus::Running),
                    "{status}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(started.len(), 1, "{started:?}");
    let name = lexpipe::ingest::execution_name_for(&sha, 2);
    assert_eq!(name, format!("doc-{sha}-a2"));
    match &started[0] {
        (2, Some(ObjectOutcome::Started { execution_name, .. })) => {
            assert_eq!(execution_name, &name);
        }
        other => panic!("{other:?}"),
    }
    let executions = world.moto.executions(&world.machine_arn).await;
    assert_eq!(executions.len(), 2, "{executions:?}");
    let (_, retried) = executions
        .iter()
        .find(|(n, _)| *n == name)
        .expect("the retry's execution");
    assert_eq!(retried["queue"]["attempt"], 2);
    assert_eq!(retried["document"], input["document"]);
    let pool = &world.db.pool;
    let item = lexpipe::store::queue::item(pool, retried["queue"]["item_id"].as_i64().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item.status, DocumentStatus::Running);
    assert_eq!(item.worker_id.as_deref(), Some(name.as_str()));
    assert_eq!(
        item.fencing_token,
        retried["queue"]["fencing_token"].as_u64().unwrap()
    );
    assert_eq!(count(pool, "TABLE documents").await, 1);
    assert_eq!(count(pool, "TABLE processing_queue").await, 1);
    assert_eq!(count(pool, "TABLE queue_attempts").await, 2);
    world.cleanup().await;
}
