//! The pipeline as the state machine runs it, against the real Redis: the definition
//! matches the code, Retry and Catch behave, artefacts survive a Redis flush, payloads
//! stay small, and each Redis feature switch turns off exactly its feature.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use lexpipe::app::App;
use lexpipe::model::{DocumentOutput, DocumentStatus};
use lexpipe::pipeline::{self, StageTally};
use lexpipe::redis::RedisStatus;
use lexpipe::redis::state::{OverallStatus, StageStatus};
use lexpipe::runner::{self, RunOptions, Summary};
use lexpipe::stages::{DocumentRef, errors, names, tasks};
use lexpipe_tests::{FailStage, cleanup, config_with, require_redis, samples_dir, unique_env};

async fn app(env: &str, artefacts: &Path, overrides: &[(&str, &str)]) -> App {
    lexpipe_tests::app_with_artefacts(config_with(env, overrides), artefacts).await
}

/// No waiting on Retry delays: behaviour, not timing, is under test.
fn opts(out: &Path) -> RunOptions {
    RunOptions {
        out_dir: out.to_path_buf(),
        time_scale: 0.0,
        ..RunOptions::default()
    }
}

async fn run(app: &App, inputs: &[PathBuf], out: &Path) -> Summary {
    runner::process(app, inputs, &opts(out), &|_| {})
        .await
        .expect("the run starts")
}

fn sample(name: &str) -> PathBuf {
    samples_dir().join(name)
}

#[test]
fn every_error_the_state_machine_matches_is_one_a_step_can_raise() {
    // Arrange
    let def = pipeline::definition().expect("the committed definition loads");
    let raisable: BTreeSet<String> = errors::all().into_iter().map(String::from).collect();
    // Act
    let matched: BTreeSet<String> = def.error_names().into_iter().collect();
    // Assert
    for name in &matched {
        assert!(
            name == "States.ALL" || raisable.contains(name),
            "the definition matches {name}, which no step raises"
        );
    }
    // And the other direction: every retryable error is retried by the definition.
    for name in raisable.iter().filter(|n| errors::is_retryable(n)) {
        assert!(matched.contains(name), "retryable {name} is never retried");
    }
}

#[tokio::test]
async fn every_task_of_the_definition_is_a_step_and_refuses_malformed_input_by_name() {
    let def = pipeline::definition().unwrap();
    let resources: BTreeSet<String> = def.task_resources().into_iter().collect();
    let expected: BTreeSet<String> = tasks::ALL.iter().map(|t| t.to_string()).collect();
    assert_eq!(resources, expected);

    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(&unique_env("tasks"), &[("LEXPIPE_REDIS_ENABLED", "false")]);
    let app = App::new(
        Arc::new(cfg.clone()),
        lexpipe::app::build_cache(&cfg, None),
        Arc::new(lexpipe::store::blob::FolderStore::new(dir.path())),
    );
    for task in tasks::ALL {
        let err = pipeline::invoke(&app, task, serde_json::json!({"nonsense": true}))
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), errors::INVALID_INPUT, "{task}: {err}");
        assert!(err.to_string().contains(task), "{err}");
    }
}

#[tokio::test]
async fn a_retryable_failure_is_retried_by_the_state_machine_and_the_document_completes() {
    // Arrange: the chunk step's blob store "times out" once.
    require_redis().await;
    let env = unique_env("retry");
    let dir = tempfile::tempdir().unwrap();
    let mut app = app(&env, dir.path(), &[]).await;
    app.hooks = FailStage::new(names::CHUNK, 1, true);
    let states = app.states.clone().unwrap();

    // Act
    let summary = run(&app, &[sample("nda.pdf")], dir.path()).await;

    // Assert: completed in this run; the chunk stage took two attempts.
    let doc = &summary.documents[0];
    assert_eq!(doc.status, DocumentStatus::Completed, "{:?}", doc.error);
    let id = doc.document_uuid.as_deref().unwrap().parse().unwrap();
    let state = states.get(id).await.unwrap().unwrap();
    assert_eq!(state.status, OverallStatus::Completed);
    assert_eq!(state.stage(names::CHUNK).unwrap().attempts, 2);
    assert_eq!(state.stage(names::OCR).unwrap().attempts, 1);
    cleanup(&env).await;
}

#[tokio::test]
async fn a_terminal_failure_is_caught_marked_failed_and_ends_with_its_own_error() {
    // Arrange: structured extraction crashes (terminal: never retried).
    require_redis().await;
    let env = unique_env("catch");
    let dir = tempfile::tempdir().unwrap();
    let mut app = app(&env, dir.path(), &[]).await;
    let hook = FailStage::new(names::STRUCTURED, 5, false);
    app.hooks = hook.clone();
    let states = app.states.clone().unwrap();

    // Act
    let summary = run(&app, &[sample("court_order.pdf")], dir.path()).await;

    // Assert: one attempt, the document failed with the step's own error, and the state
    // says where and why.
    let doc = &summary.documents[0];
    assert_eq!(doc.status, DocumentStatus::Failed);
    assert_eq!(doc.error_type.as_deref(), Some(errors::INJECTED_FAILURE));
    assert!(doc.error.as_deref().unwrap().contains("simulated crash"));
    assert_eq!(hook.remaining.load(Ordering::SeqCst), 4, "not retried");
    let id = doc.document_uuid.as_deref().unwrap().parse().unwrap();
    let state = states.get(id).await.unwrap().unwrap();
    assert_eq!(state.status, OverallStatus::Failed);
    let st = state.stage(names::STRUCTURED).unwrap();
    assert_eq!(st.status, StageStatus::Failed);
    assert_eq!(st.error_type.as_deref(), Some(errors::INJECTED_FAILURE));
    assert_eq!(
        state.stage(names::RESOLVE).unwrap().status,
        StageStatus::Completed
    );
    assert_eq!(
        state.stage(names::PERSIST).unwrap().status,
        StageStatus::Pending
    );
    cleanup(&env).await;
}

#[tokio::test]
async fn a_failure_inside_the_entity_map_fails_the_document_through_the_catch() {
    require_redis().await;
    let env = unique_env("mapfail");
    let dir = tempfile::tempdir().unwrap();
    let mut app = app(&env, dir.path(), &[]).await;
    app.hooks = FailStage::new(names::ENTITIES, 1, false);
    let states = app.states.clone().unwrap();

    let summary = run(&app, &[sample("complaint.pdf")], dir.path()).await;

    let doc = &summary.documents[0];
    assert_eq!(doc.status, DocumentStatus::Failed);
    assert_eq!(doc.error_type.as_deref(), Some(errors::INJECTED_FAILURE));
    let id = doc.document_uuid.as_deref().unwrap().parse().unwrap();
    let state = states.get(id).await.unwrap().unwrap();
    assert_eq!(
        state.stage(names::ENTITIES).unwrap().status,
        StageStatus::Failed
    );
    // The next run resumes: OCR and chunks are reused, entities computed now.
    let again = run(&app, &[sample("complaint.pdf")], dir.path()).await;
    assert_eq!(again.documents[0].status, DocumentStatus::Completed);
    assert_eq!(again.stages[names::OCR].computed, 0);
    assert_eq!(again.stages[names::CHUNK].computed, 0);
    assert!(again.stages[names::ENTITIES].computed > 0);
    cleanup(&env).await;
}

#[tokio::test]
async fn after_redis_is_flushed_every_step_is_served_from_its_artefact() {
    // Arrange: a full run, then every Redis key of the run deleted.
    require_redis().await;
    let env = unique_env("flush");
    let dir = tempfile::tempdir().unwrap();
    let inputs = runner::collect_inputs(&[samples_dir()]).unwrap();
    let app = app(&env, dir.path(), &[]).await;
    let first = run(&app, &inputs, dir.path()).await;
    assert!(
        first
            .documents
            .iter()
            .all(|d| d.status == DocumentStatus::Completed)
    );
    cleanup(&env).await;
    assert!(lexpipe_tests::keys_of(&env).await.is_empty());

    // Act
    let app = self::app(&env, dir.path(), &[]).await;
    let second = run(&app, &inputs, dir.path()).await;

    // Assert: nothing computed, every stage reused, same answers.
    for stage in names::ALL {
        let c = second.stages[stage];
        assert_eq!(c.computed, 0, "{stage} computed again: {c:?}");
        assert!(c.cached > 0, "{stage}: {c:?}");
    }
    for (a, b) in first.documents.iter().zip(&second.documents) {
        assert_eq!(
            (a.entities, a.canonical_entities, a.chunks, &a.output),
            (b.entities, b.canonical_entities, b.chunks, &b.output)
        );
    }
    cleanup(&env).await;
}

#[tokio::test]
async fn the_same_bytes_under_another_name_reuse_every_artefact_without_redis() {
    // Arrange: Redis off entirely; only the artefact folder is shared.
    let dir = tempfile::tempdir().unwrap();
    let off = [("LEXPIPE_REDIS_ENABLED", "false")];
    let app = app(&unique_env("rename"), dir.path(), &off).await;
    assert_eq!(app.redis_status, RedisStatus::Disabled);
    let renamed = dir.path().join("Renamed copy + é.pdf");
    std::fs::copy(sample("lease.pdf"), &renamed).unwrap();
    run(&app, &[sample("lease.pdf")], dir.path()).await;

    // Act
    let app = self::app(&unique_env("rename2"), dir.path(), &off).await;
    let second = run(&app, &[renamed], dir.path()).await;

    // Assert
    assert_eq!(second.documents[0].status, DocumentStatus::Completed);
    for stage in names::ANALYSIS {
        assert_eq!(second.stages[stage].computed, 0, "{stage}");
    }
    assert_eq!(
        second.stages[names::PERSIST].computed,
        1,
        "a new output file"
    );
}

#[tokio::test]
async fn payloads_between_steps_stay_far_below_the_step_functions_limit() {
    require_redis().await;
    let env = unique_env("payload");
    let dir = tempfile::tempdir().unwrap();
    let app = app(&env, dir.path(), &[]).await;
    let inputs = runner::collect_inputs(&[samples_dir()]).unwrap();
    let biggest = inputs
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap()
        .clone();

    let summary = run(&app, &[biggest], dir.path()).await;

    let d = &summary.documents[0];
    assert_eq!(d.status, DocumentStatus::Completed);
    assert!(d.largest_payload_bytes > 0);
    // Step Functions allows 256 KiB; pointers only should need a few KiB.
    assert!(
        d.largest_payload_bytes < 16 * 1024,
        "largest payload {} bytes",
        d.largest_payload_bytes
    );
    cleanup(&env).await;
}

#[tokio::test]
async fn the_state_machine_and_direct_calls_produce_the_same_document() {
    require_redis().await;
    let env = unique_env("same");
    let dir = tempfile::tempdir().unwrap();
    let app = app(&env, dir.path(), &[]).await;
    let input = sample("motion_to_dismiss.pdf");
    let summary = run(&app, std::slice::from_ref(&input), dir.path()).await;
    let via_asl: DocumentOutput = serde_json::from_slice(
        &std::fs::read(summary.documents[0].output.as_ref().unwrap()).unwrap(),
    )
    .unwrap();

    let bytes = std::fs::read(&input).unwrap();
    let doc = DocumentRef::new(
        &lexpipe::text::sha256_hex(&bytes),
        &input.display().to_string(),
    );
    let direct = pipeline::analyse(&app, &doc, &mut StageTally::default())
        .await
        .unwrap();

    assert_eq!(direct.mentions, via_asl.mentions);
    assert_eq!(direct.entities, via_asl.entities);
    assert_eq!(direct.chunks, via_asl.chunks);
    assert_eq!(direct.structured, via_asl.structured);
    assert!(via_asl.structured.is_some());
    cleanup(&env).await;
}

/// Each switch turns off exactly its feature.
#[tokio::test]
async fn each_redis_feature_switch_turns_off_only_its_feature() {
    require_redis().await;
    let dir = tempfile::tempdir().unwrap();
    type Probe = fn(&App) -> bool;
    let features: [(&str, Probe); 5] = [
        ("LEXPIPE_REDIS_CACHE", |a| a.cache.backend_kind() == "redis"),
        ("LEXPIPE_REDIS_LOCKS", |a| a.locks.is_some()),
        ("LEXPIPE_REDIS_STATE", |a| a.states.is_some()),
        ("LEXPIPE_REDIS_IDEMPOTENCY", |a| a.idempotency.is_some()),
        ("LEXPIPE_REDIS_RATE_LIMIT", |a| a.limiter.is_shared()),
    ];
    for (switch, _) in &features {
        let app = app(&unique_env("switch"), dir.path(), &[(switch, "false")]).await;
        assert_eq!(app.redis_status, RedisStatus::Connected, "{switch}");
        for (other, on) in &features {
            assert_eq!(on(&app), other != switch, "{switch}=false: {other}");
        }
    }
}

#[tokio::test]
async fn with_the_redis_cache_off_document_state_is_still_recorded() {
    require_redis().await;
    let env = unique_env("nocache");
    let dir = tempfile::tempdir().unwrap();
    let app = app(&env, dir.path(), &[("LEXPIPE_REDIS_CACHE", "false")]).await;
    let states = app.states.clone().expect("state tracking stays on");

    let summary = run(&app, &[sample("demand_letter.pdf")], dir.path()).await;

    let id = summary.documents[0]
        .document_uuid
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    let state = states.get(id).await.unwrap().unwrap();
    assert_eq!(state.status, OverallStatus::Completed);
    assert_eq!(state.progress, 100);
    assert!(
        lexpipe_tests::keys_of(&env)
            .await
            .iter()
            .all(|k| !k.contains(":ocr:")),
        "no cache entries"
    );
    cleanup(&env).await;
}

#[tokio::test]
async fn a_document_without_any_text_runs_through_an_empty_map_without_failing() {
    // Arrange: one page, nothing on it (what a scan looks like before image OCR).
    require_redis().await;
    let env = unique_env("empty");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scan.pdf");
    std::fs::write(&file, lexpipe::samples::text_only_pdf(&[""])).unwrap();
    let app = app(&env, dir.path(), &[]).await;

    // Act
    let summary = run(&app, &[file], dir.path()).await;

    // Assert
    let d = &summary.documents[0];
    assert_eq!(d.status, DocumentStatus::Completed, "{:?}", d.error);
    assert_eq!((d.chunks, d.entities), (0, 0));
    assert_eq!(d.pages_without_text, vec![1]);
    cleanup(&env).await;
}
