//! Every function's handler on its sample event from `events/` (the files `sam local
//! invoke -e` takes), against moto, PostgreSQL and Redis: the upload notification starts
//! an execution, each step event runs its step, and the health event checks health.
//!
//! The step events are one document's real inputs (`samples/court_order.pdf`, uploaded
//! under the notification's key with a space and non-ASCII characters), each built from
//! the previous steps' outputs as the state machine's `Parameters` build it. The test
//! checks that they still are; after a change to the steps' outputs (an artefact version
//! bump), regenerate them with `LEXPIPE_UPDATE_EVENTS=1 cargo test -p lexpipe-tests --test
//! handlers`.

use lambda_runtime::{Context, LambdaEvent};
use lexpipe::ingest::ObjectOutcome;
use lexpipe::model::DocumentStatus;
use lexpipe::stages::tasks;
use lexpipe_tests::aws::{SAMPLE_BUCKET, World, event_file, events_dir};
use serde_json::{Value, json};

/// The key of `events/ingest.json`, decoded.
const SAMPLE_KEY: &str = "uploads/Court Order – Müller v. État.pdf";

fn updating() -> bool {
    std::env::var("LEXPIPE_UPDATE_EVENTS").is_ok_and(|v| v == "1")
}

/// `value` with the sample bucket's name replaced by `bucket` (and back).
fn rebucket(value: &Value, from: &str, to: &str) -> Value {
    serde_json::from_str(&value.to_string().replace(from, to)).unwrap()
}

/// The event of `task`: the file, checked against (or, when updating, replaced by) the
/// input the state machine would build, `expected`.
fn step_event(world: &World, task: &str, expected: &Value) -> Value {
    let file = format!("{task}.json");
    if updating() {
        let text = serde_json::to_string_pretty(&rebucket(expected, &world.bucket, SAMPLE_BUCKET))
            .unwrap();
        std::fs::write(events_dir().join(&file), text + "\n").unwrap();
    }
    let event = rebucket(&event_file(&file), SAMPLE_BUCKET, &world.bucket);
    assert_eq!(
        &event, expected,
        "events/{file} is not the input the state machine builds any more; regenerate the \
         events with LEXPIPE_UPDATE_EVENTS=1 cargo test -p lexpipe-tests --test handlers"
    );
    event
}

async fn run(app: &lexpipe::app::App, task: &'static str, event: Value) -> Value {
    lexpipe_functions::step(app, task, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap_or_else(|d| panic!("{task}: {} {}", d.error_type, d.error_message))
}

#[tokio::test]
async fn every_sample_event_runs_through_its_functions_handler() {
    // Arrange: the sample document uploaded under the notification's key.
    let world = World::start("events", false).await;
    let app = world.app(&[]).await;
    let bytes = std::fs::read(lexpipe_tests::samples_dir().join("court_order.pdf")).unwrap();
    world.put(SAMPLE_KEY, bytes).await;
    let notification: aws_lambda_events::s3::S3Event = serde_json::from_value(rebucket(
        &event_file("ingest.json"),
        SAMPLE_BUCKET,
        &world.bucket,
    ))
    .expect("events/ingest.json is an S3 event");

    // Act + Assert: ingest.
    let report = lexpipe_functions::ingest(
        &app,
        &world.machine(),
        LambdaEvent::new(notification, Context::default()),
    )
    .await
    .expect("ingest succeeds");
    assert_eq!(report.objects[0].key, SAMPLE_KEY);
    assert!(
        matches!(report.objects[0].outcome, ObjectOutcome::Started { .. }),
        "{report:?}"
    );
    let executions = world.moto.executions(&world.machine_arn).await;
    assert_eq!(executions.len(), 1);
    let execution_input = &executions[0].1;
    let document = execution_input["document"].clone();
    let claim = execution_input["queue"].clone();

    // Each step, on its event, in the state machine's order.
    let ocr = run(
        &app,
        tasks::OCR_START,
        step_event(&world, tasks::OCR_START, &json!({ "document": document })),
    )
    .await;
    assert_eq!(ocr["ready"], true, "the sample has a text layer");
    let poll = run(
        &app,
        tasks::OCR_POLL,
        step_event(
            &world,
            tasks::OCR_POLL,
            &json!({"document": document, "ocr": ocr}),
        ),
    )
    .await;
    assert_eq!(poll["ready"], true);
    let chunks = run(
        &app,
        tasks::CHUNK,
        step_event(
            &world,
            tasks::CHUNK,
            &json!({"document": document, "ocr": ocr}),
        ),
    )
    .await;
    let batches = chunks["batches"].as_array().unwrap().clone();
    assert!(!batches.is_empty());
    let mut entities = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        let input = json!({"document": document, "chunks": chunks["artefact"], "batch": batch});
        let event = if i == 0 {
            step_event(&world, tasks::EXTRACT_ENTITIES, &input)
        } else {
            input
        };
        entities.push(run(&app, tasks::EXTRACT_ENTITIES, event).await);
    }
    let resolution = run(
        &app,
        tasks::RESOLVE_ENTITIES,
        step_event(
            &world,
            tasks::RESOLVE_ENTITIES,
            &json!({"document": document, "chunks": chunks, "entities": entities}),
        ),
    )
    .await;
    let structured = run(
        &app,
        tasks::EXTRACT_STRUCTURED,
        step_event(
            &world,
            tasks::EXTRACT_STRUCTURED,
            &json!({"document": document, "ocr": ocr, "resolution": resolution}),
        ),
    )
    .await;
    // The sample persist event carries no queue claim (as under `sam local invoke`); the
    // execution's claim is put in, so that persist completes the row ingest claimed.
    let mut persist_event = step_event(
        &world,
        tasks::PERSIST,
        &json!({"document": document, "ocr": ocr, "chunks": chunks,
                "resolution": resolution, "structured": structured, "queue": null}),
    );
    persist_event["queue"] = claim.clone();
    let persisted = run(&app, tasks::PERSIST, persist_event).await;
    assert_eq!(persisted["persisted"], "written");
    let failure = run(
        &app,
        tasks::MARK_FAILED,
        step_event(
            &world,
            tasks::MARK_FAILED,
            &json!({"document": document,
                    "error": {"Error": "OcrTimeout", "Cause": "OCR was not ready after 120 polls"},
                    "queue": null}),
        ),
    )
    .await;
    assert_eq!(failure["error_type"], "OcrTimeout");
    assert_eq!(
        failure["queue"],
        Value::Null,
        "no claim: the row is left alone"
    );

    // The rows ingest registered are settled by the steps.
    let item_id = claim["item_id"].as_i64().unwrap();
    let item = lexpipe::store::queue::item(&world.db.pool, item_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item.status, DocumentStatus::Completed);
    let uuid: uuid::Uuid = serde_json::from_value(document["document_uuid"].clone()).unwrap();
    let stored = lexpipe::store::persist::load_document(&world.db.pool, uuid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, DocumentStatus::Completed);

    // Health, on its scheduled event.
    let health = lexpipe_functions::health(
        &app,
        None,
        LambdaEvent::new(event_file("health.json"), Context::default()),
    )
    .await
    .expect("health answers");
    assert!(health.redis.reachable);
    let db = health.database.expect("the function has a database");
    assert!(db.reachable);
    assert_eq!(db.stuck_documents, Some(0));
    world.cleanup().await;
}
