//! The local run end to end against the real Redis, on the shipped samples.

use std::path::PathBuf;

use lexpipe::app::{App, AppOptions};
use lexpipe::config::BlobLocation;
use lexpipe::model::{DocumentOutput, DocumentStatus};
use lexpipe::redis::RedisStatus;
use lexpipe::runner::{self, RunOptions, Summary};
use lexpipe::stages::names;
use lexpipe_tests::{cleanup, config_with, require_redis, samples_dir, unique_env};

async fn run(env: &str, inputs: &[PathBuf], out: &std::path::Path) -> Summary {
    let cfg = config_with(env, &[]);
    let app = App::build(
        cfg,
        AppOptions {
            default_artefacts: Some(BlobLocation::Folder(out.to_path_buf())),
            ..AppOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(app.redis_status, RedisStatus::Connected);
    let opts = RunOptions {
        out_dir: out.to_path_buf(),
        ..RunOptions::default()
    };
    runner::process(&app, inputs, &opts, &|_| {}).await.unwrap()
}

fn unique_contents(inputs: &[PathBuf]) -> usize {
    let mut hashes = std::collections::HashSet::new();
    for p in inputs {
        hashes.insert(lexpipe::text::sha256_hex(std::fs::read(p).unwrap()));
    }
    hashes.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_the_samples_twice_recomputes_nothing_the_second_time() {
    // Arrange
    require_redis().await;
    let env = unique_env("e2e");
    let inputs = runner::collect_inputs(&[samples_dir()]).unwrap();
    let unique = unique_contents(&inputs);
    assert!(
        unique < inputs.len(),
        "the samples include a byte-identical copy"
    );
    let out = tempfile::tempdir().unwrap();

    // Act
    let first = run(&env, &inputs, out.path()).await;
    let second = run(&env, &inputs, out.path()).await;

    // Assert: first run — every document completes, the duplicate is served from the
    // first file's OCR result.
    assert!(
        first
            .documents
            .iter()
            .all(|d| d.status == DocumentStatus::Completed),
        "{:#?}",
        first.documents
    );
    let ocr = first.stages[names::OCR];
    assert_eq!(
        ocr.computed as usize, unique,
        "one OCR per distinct content"
    );
    assert_eq!(
        ocr.cached as usize,
        inputs.len() - unique,
        "the copy is not read again"
    );
    assert!(first.stages[names::ENTITIES].computed > 0);

    // Second run — nothing recomputed.
    assert_eq!(second.stages[names::OCR].computed, 0);
    assert_eq!(second.stages[names::OCR].cached as usize, inputs.len());
    assert_eq!(second.stages[names::ENTITIES].computed, 0);
    assert!(second.stages[names::ENTITIES].cached > 0);
    assert_eq!(second.stages[names::RESOLVE].computed, 0);
    assert_eq!(second.cache.misses, 0);
    assert!(second.cache.hits > 0);
    // Same answers both times.
    for (a, b) in first.documents.iter().zip(&second.documents) {
        assert_eq!(
            (a.entities, a.canonical_entities, a.chunks),
            (b.entities, b.canonical_entities, b.chunks)
        );
    }
    cleanup(&env).await;
}

#[tokio::test]
async fn output_files_hold_offsets_that_point_at_the_text() {
    require_redis().await;
    let env = unique_env("out");
    let inputs = runner::collect_inputs(&[samples_dir()]).unwrap();
    let out = tempfile::tempdir().unwrap();
    let summary = run(&env, &inputs, out.path()).await;
    for d in &summary.documents {
        let file = d.output.as_ref().expect("output written");
        let doc: DocumentOutput = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        assert_eq!(Some(&doc.document_uuid), d.document_uuid.as_ref());
        let text: Vec<char> = lexpipe::model::OcrResult {
            method: doc.ocr_method.clone(),
            pages: doc.pages.clone(),
        }
        .full_text()
        .chars()
        .collect();
        for m in &doc.mentions {
            let at: String = text[m.start..m.end].iter().collect();
            assert_eq!(at, m.text, "mention {} of {}", m.id, d.source);
        }
        let mention_ids: std::collections::HashSet<_> =
            doc.mentions.iter().map(|m| m.id.clone()).collect();
        let mut linked = 0;
        for e in &doc.entities {
            for id in &e.mention_ids {
                assert!(
                    mention_ids.contains(id),
                    "entity {} links unknown mention {id}",
                    e.id
                );
                linked += 1;
            }
        }
        assert_eq!(
            linked,
            doc.mentions.len(),
            "every mention belongs to one entity"
        );
        for c in &doc.chunks {
            assert!(c.start < c.end && c.end <= text.len());
        }
    }
    cleanup(&env).await;
}

#[tokio::test]
async fn a_bad_file_fails_only_that_document_with_a_clear_error() {
    require_redis().await;
    let env = unique_env("bad");
    let dir = tempfile::tempdir().unwrap();
    let good = samples_dir().join("nda.pdf");
    let complaint = std::fs::read(samples_dir().join("complaint.pdf")).unwrap();
    let files = [
        ("empty.pdf", Vec::new()),
        ("notes.pdf", b"these are my notes, not a PDF".to_vec()),
        ("truncated.pdf", complaint[..complaint.len() / 3].to_vec()),
        ("encrypted.pdf", lexpipe::samples::encrypted_pdf()),
    ];
    let mut inputs = vec![good];
    for (name, bytes) in &files {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        inputs.push(p);
    }
    let out = tempfile::tempdir().unwrap();
    let summary = run(&env, &inputs, out.path()).await;
    let by_name = |n: &str| {
        summary
            .documents
            .iter()
            .find(|d| d.source.ends_with(n))
            .unwrap()
    };
    assert_eq!(by_name("nda.pdf").status, DocumentStatus::Completed);
    for (name, expected_type) in [
        ("empty.pdf", "EmptyDocument"),
        ("notes.pdf", "NotPdf"),
        ("truncated.pdf", "CorruptPdf"),
        ("encrypted.pdf", "EncryptedPdf"),
    ] {
        let d = by_name(name);
        assert_eq!(d.status, DocumentStatus::Failed, "{name}");
        assert_eq!(
            d.error_type.as_deref(),
            Some(expected_type),
            "{name}: {:?}",
            d.error
        );
        assert!(!d.error.as_deref().unwrap_or("").is_empty());
    }
    assert!(!summary.all_failed());
    cleanup(&env).await;
}

#[tokio::test]
async fn a_batch_of_only_bad_files_reports_all_failed() {
    require_redis().await;
    let env = unique_env("allbad");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("broken.pdf");
    std::fs::write(&p, b"%PDF-1.7\n garbage").unwrap();
    let out = tempfile::tempdir().unwrap();
    let summary = run(&env, &[p], out.path()).await;
    assert!(summary.all_failed());
    cleanup(&env).await;
}
