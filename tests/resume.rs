//! Resume: a document whose stage failed is picked up at that stage by the next run,
//! without recomputing the stages before it, and its state says where it stopped.

use lexpipe::app::{App, AppOptions};
use lexpipe::config::BlobLocation;
use lexpipe::model::DocumentStatus;
use lexpipe::redis::RedisStatus;
use lexpipe::runner::{self, RunOptions};
use lexpipe::stages::names;
use lexpipe_tests::{FailStage, cleanup, config_with, require_redis, samples_dir, unique_env};

#[tokio::test]
async fn a_stage_that_failed_once_is_resumed_without_recomputing_the_stages_before_it() {
    // Arrange: Redis cache and document state; resolution fails the first time.
    require_redis().await;
    let env = unique_env("resume");
    let cfg = config_with(&env, &[]);
    let out = tempfile::tempdir().unwrap();
    let mut deps = App::build(
        cfg,
        AppOptions {
            default_artefacts: Some(BlobLocation::Folder(out.path().to_path_buf())),
            ..AppOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(deps.redis_status, RedisStatus::Connected);
    let states = deps.states.clone().unwrap();
    deps.hooks = FailStage::new(names::RESOLVE, 1, false);
    let input = samples_dir().join("court_order.pdf");
    let opts = RunOptions {
        out_dir: out.path().to_path_buf(),
        ..RunOptions::default()
    };

    // Act 1: the run fails at resolution.
    let first = runner::process(&deps, std::slice::from_ref(&input), &opts, &|_| {})
        .await
        .unwrap();

    // Assert 1: failed at that stage, earlier stages recorded as completed.
    let doc = &first.documents[0];
    assert_eq!(doc.status, DocumentStatus::Failed);
    assert_eq!(doc.error_type.as_deref(), Some("InjectedFailure"));
    let id: uuid::Uuid = doc.document_uuid.as_deref().unwrap().parse().unwrap();
    let state = states.get(id).await.unwrap().unwrap();
    assert_eq!(state.status, DocumentStatus::Failed);
    let resume = states.resume_point(id, &names::ALL).await.unwrap();
    assert_eq!(resume.start_at.as_deref(), Some(names::RESOLVE));
    assert_eq!(resume.done, vec![names::OCR, names::CHUNK, names::ENTITIES]);
    assert_eq!(first.stages[names::OCR].computed, 1);

    // Act 2: run again.
    let second = runner::process(&deps, &[input], &opts, &|_| {})
        .await
        .unwrap();

    // Assert 2: completed; OCR and entity results reused, resolution computed now.
    assert_eq!(second.documents[0].status, DocumentStatus::Completed);
    assert_eq!(second.stages[names::OCR].computed, 0);
    assert_eq!(second.stages[names::OCR].cached, 1);
    assert_eq!(second.stages[names::ENTITIES].computed, 0);
    assert!(second.stages[names::ENTITIES].cached > 0);
    assert_eq!(second.stages[names::RESOLVE].computed, 1);
    let state = states.get(id).await.unwrap().unwrap();
    assert_eq!(state.status, DocumentStatus::Completed);
    assert_eq!(state.progress, 100);
    let resolve = state
        .stages
        .iter()
        .find(|s| s.name == names::RESOLVE)
        .unwrap();
    assert_eq!(
        resolve.attempts, 2,
        "resolution ran twice: failed, then resumed"
    );
    cleanup(&env).await;
}
