//! `lexpipe process s3://bucket/prefix/` as a user runs it: the binary as a child process
//! against moto (a local S3, one per test) and the real Redis, configured only through
//! the `AWS_*` variables, exactly as on a developer's machine or in CI.
//!
//! One test drives the runner in-process instead: an object that vanishes between listing
//! and reading needs the test to act between the two, which a child process gives it no
//! point to do.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output};
use std::sync::Arc;

use lexpipe::model::DocumentStatus;
use lexpipe::store::blob::{BlobStore, S3Store};
use lexpipe::store::source::SourceReader;
use lexpipe::text::sha256_hex;
use lexpipe_tests::moto::{self, MotoServer};
use lexpipe_tests::{cleanup, require_redis, samples_dir, unique_env};

/// Runs `lexpipe` with `LEXPIPE_ENV=env`, the test Redis, moto's endpoint and dummy
/// credentials, and `extra` variables; no AWS setting of this process leaks in.
fn lexpipe(moto: &MotoServer, env: &str, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lexpipe"));
    cmd.args(args);
    moto::isolate_aws_env(&mut cmd)
        .envs(moto.child_env())
        .env("LEXPIPE_ENV", env)
        .env("REDIS_URL", lexpipe_tests::redis_url())
        .env_remove("LEXPIPE_ARTEFACTS")
        .env_remove("DATABASE_URL")
        .envs(extra.iter().copied())
        .output()
        .expect("lexpipe runs")
}

/// The `--json` summary of a successful run.
fn summary(o: &Output) -> serde_json::Value {
    lexpipe_tests::json_stdout(o)
}

/// Documents of a summary by source.
fn by_source(summary: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    summary["documents"]
        .as_array()
        .expect("documents[]")
        .iter()
        .map(|d| (d["source"].as_str().unwrap().to_string(), d.clone()))
        .collect()
}

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(samples_dir().join(name)).unwrap_or_else(|e| panic!("sample {name}: {e}"))
}

/// Puts `bytes` at `key` with the raw client: keys the blob store refuses to write
/// (folder markers, `//`) can be arranged too.
async fn upload(moto: &MotoServer, bucket: &str, key: &str, bytes: Vec<u8>) {
    moto.client()
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(bytes.into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("uploading {key:?}: {e:?}"));
}

/// Every key of the bucket.
async fn keys(moto: &MotoServer, bucket: &str) -> Vec<String> {
    S3Store::from_client(moto.client(), bucket, "")
        .unwrap()
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect()
}

/// Input documents under `in/`, with names S3 allows and URLs and paths trip on.
const INPUTS: [(&str, &str); 10] = [
    ("in/Smith v. Jones + Co — é.pdf", "complaint.pdf"),
    ("in/complaint copy.pdf", "complaint_copy.pdf"),
    ("in/court_order.pdf", "court_order.pdf"),
    ("in/letters/demand+letter (2).pdf", "demand_letter.pdf"),
    (
        "in/nested/deeper/deposition excerpt.pdf",
        "deposition_excerpt.pdf",
    ),
    ("in/LEASE.PDF", "lease.pdf"),
    ("in/motion_to_dismiss.pdf", "motion_to_dismiss.pdf"),
    ("in/nda%20final.pdf", "nda.pdf"),
    ("in/services_agreement.pdf", "services_agreement.pdf"),
    ("in/和解 settlement.pdf", "settlement_agreement.pdf"),
];

/// Objects in the same bucket that `s3://bucket/in/` must not take: a folder marker, a
/// non-PDF, the pipeline's own `processed/` prefixes, and neighbours whose names merely
/// start with `in`.
const NOT_INPUTS: [&str; 6] = [
    "in/empty/",
    "in/notes.txt",
    "in/processed/0000/stale.pdf",
    "processed/0000/stray.pdf",
    "inbox/not-mine.pdf",
    "in-2023.pdf",
];

#[tokio::test]
async fn every_pdf_under_an_s3_prefix_is_processed_and_a_second_run_reuses_the_bucket_artefacts_without_redis_keys()
 {
    // Arrange
    require_redis().await;
    let moto = MotoServer::start();
    let bucket = moto.bucket("process").await;
    for (key, file) in INPUTS {
        upload(&moto, &bucket, key, sample(file)).await;
    }
    for key in NOT_INPUTS {
        let bytes = if key.ends_with('/') {
            Vec::new()
        } else {
            sample("nda.pdf")
        };
        upload(&moto, &bucket, key, bytes).await;
    }
    let env = unique_env("s3proc");
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().to_str().unwrap();
    let input = format!("s3://{bucket}/in/");
    let args = ["process", &input, "--json", "--out", out_dir];

    // Act
    let first = summary(&lexpipe(&moto, &env, &args, &[]));
    let from_redis = summary(&lexpipe(&moto, &env, &args, &[]));
    cleanup(&env).await;
    let from_bucket = summary(&lexpipe(&moto, &env, &args, &[]));
    cleanup(&env).await;

    // Assert: exactly the expected sources, each complete, with the uploaded bytes' hash.
    let expected: BTreeMap<String, String> = INPUTS
        .iter()
        .map(|(key, file)| (format!("s3://{bucket}/{key}"), sha256_hex(sample(file))))
        .collect();
    let docs = by_source(&first);
    assert_eq!(
        docs.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (source, sha) in &expected {
        let d = &docs[source];
        assert_eq!(d["status"], "completed", "{d}");
        assert_eq!(d["content_sha256"].as_str(), Some(sha.as_str()), "{d}");
        assert!(d["pages"].as_u64().unwrap() > 0, "{d}");
        let output = d["output"].as_str().expect("an output file");
        assert!(std::path::Path::new(output).starts_with(out.path()), "{d}");
        assert!(std::path::Path::new(output).exists(), "{d}");
    }
    // Artefacts are in the input bucket, under processed/{sha}/, for every document.
    let after = keys(&moto, &bucket).await;
    let artefact_shas: BTreeSet<&str> = after
        .iter()
        .filter_map(|k| k.strip_prefix("processed/"))
        .filter_map(|rest| rest.split_once('/'))
        .filter(|(_, name)| name.ends_with(".json.zst"))
        .map(|(sha, _)| sha)
        .collect();
    for sha in expected.values() {
        assert!(
            artefact_shas.contains(sha.as_str()),
            "no artefact under processed/{sha}/ in {after:#?}"
        );
        assert!(
            after
                .iter()
                .any(|k| k.starts_with(&format!("processed/{sha}/ocr-"))),
            "no OCR artefact for {sha}"
        );
    }
    assert!(
        !out.path().join("processed").exists(),
        "artefacts went to the output folder"
    );
    // The later runs reused every step: from Redis (checking that each artefact is still
    // in the bucket), then, with none of the Redis keys left, from the bucket alone.
    for (run, name) in [
        (&from_redis, "from Redis"),
        (&from_bucket, "from the bucket"),
    ] {
        let later = by_source(run);
        assert_eq!(
            later.keys().collect::<Vec<_>>(),
            docs.keys().collect::<Vec<_>>()
        );
        for d in later.values() {
            assert_eq!(d["status"], "completed", "{name}: {d}");
        }
        for (stage, counts) in run["stages"].as_object().unwrap() {
            assert_eq!(
                counts["computed"], 0,
                "{name}: stage {stage} recomputed: {counts}"
            );
        }
        assert!(run["stages"]["ocr"]["cached"].as_u64().unwrap() > 0);
    }
    assert!(
        from_redis["cache"]["hits"].as_i64().unwrap() > 0,
        "{from_redis}"
    );
    assert_eq!(
        keys(&moto, &bucket).await,
        after,
        "a later run wrote to the bucket"
    );
}

#[tokio::test]
async fn lexpipe_artefacts_sends_the_artefacts_of_s3_input_to_the_bucket_and_prefix_it_names() {
    // Arrange
    require_redis().await;
    let moto = MotoServer::start();
    let input_bucket = moto.bucket("in").await;
    let artefact_bucket = moto.bucket("arte").await;
    upload(&moto, &input_bucket, "in/nda.pdf", sample("nda.pdf")).await;
    upload(&moto, &input_bucket, "in/b/lease.pdf", sample("lease.pdf")).await;
    let env = unique_env("s3arte");
    let out = tempfile::tempdir().unwrap();
    let input = format!("s3://{input_bucket}/in/");
    let artefacts = format!("s3://{artefact_bucket}/arte");

    // Act
    let run = summary(&lexpipe(
        &moto,
        &env,
        &[
            "process",
            &input,
            "--json",
            "--out",
            out.path().to_str().unwrap(),
        ],
        &[("LEXPIPE_ARTEFACTS", &artefacts)],
    ));
    cleanup(&env).await;

    // Assert
    let docs = by_source(&run);
    assert_eq!(docs.len(), 2, "{run}");
    let stored = keys(&moto, &artefact_bucket).await;
    for d in docs.values() {
        assert_eq!(d["status"], "completed", "{d}");
        let sha = d["content_sha256"].as_str().unwrap();
        assert!(
            stored
                .iter()
                .any(|k| k.starts_with(&format!("arte/processed/{sha}/"))),
            "nothing under arte/processed/{sha}/ in {stored:#?}"
        );
    }
    assert!(
        stored.iter().all(|k| k.starts_with("arte/processed/")),
        "{stored:#?}"
    );
    assert_eq!(
        keys(&moto, &input_bucket).await,
        ["in/b/lease.pdf", "in/nda.pdf"],
        "artefacts were written to the input bucket"
    );
}

#[tokio::test]
async fn a_listed_key_the_blob_store_refuses_fails_that_document_alone_with_blob_store_error() {
    // Arrange: S3 allows `//` in a key; the blob store refuses keys with empty segments.
    require_redis().await;
    let moto = MotoServer::start();
    let bucket = moto.bucket("oddkey").await;
    upload(&moto, &bucket, "in/nda.pdf", sample("nda.pdf")).await;
    upload(
        &moto,
        &bucket,
        "in/odd//double slash.pdf",
        sample("lease.pdf"),
    )
    .await;
    let env = unique_env("s3odd");
    let out = tempfile::tempdir().unwrap();
    let input = format!("s3://{bucket}/in/");

    // Act
    let run = summary(&lexpipe(
        &moto,
        &env,
        &[
            "process",
            &input,
            "--json",
            "--out",
            out.path().to_str().unwrap(),
        ],
        &[],
    ));
    cleanup(&env).await;

    // Assert
    let docs = by_source(&run);
    let good = &docs[&format!("s3://{bucket}/in/nda.pdf")];
    let odd = &docs[&format!("s3://{bucket}/in/odd//double slash.pdf")];
    assert_eq!(good["status"], "completed", "{good}");
    assert_eq!(odd["status"], "failed", "{odd}");
    assert_eq!(odd["error_type"], "BlobStoreError", "{odd}");
    assert!(
        odd["error"]
            .as_str()
            .unwrap()
            .contains("in/odd//double slash.pdf"),
        "{odd}"
    );
}

#[tokio::test]
async fn an_s3_source_that_vanished_after_listing_fails_that_document_alone_with_read_error() {
    // Arrange: the runner in-process, reading the bucket through a client configured in
    // code; two listed documents, one deleted before the run reads it.
    let moto = MotoServer::start();
    let bucket = moto.bucket("vanish").await;
    upload(&moto, &bucket, "in/nda.pdf", sample("nda.pdf")).await;
    upload(&moto, &bucket, "in/gone.pdf", sample("lease.pdf")).await;
    let env = unique_env("s3gone");
    let cfg = lexpipe_tests::config_with(&env, &[("LEXPIPE_REDIS_ENABLED", "false")]);
    let store: Arc<dyn BlobStore> =
        Arc::new(S3Store::from_client(moto.client(), &bucket, "").unwrap());
    let mut app = lexpipe::app::App::new(
        Arc::new(cfg.clone()),
        lexpipe::app::build_cache(&cfg, None),
        store.clone(),
    );
    app.sources = Arc::new(SourceReader::new().with_bucket(&bucket, store));
    let sources = lexpipe::runner::collect_sources(&app, &[format!("s3://{bucket}/in/")])
        .await
        .unwrap();
    moto.client()
        .delete_object()
        .bucket(&bucket)
        .key("in/gone.pdf")
        .send()
        .await
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let opts = lexpipe::runner::RunOptions {
        out_dir: out.path().to_path_buf(),
        concurrency: 2,
        time_scale: 0.0,
    };

    // Act
    let run = lexpipe::runner::process_sources(&app, &sources, &opts, &|_| {})
        .await
        .unwrap();

    // Assert
    assert_eq!(
        sources,
        [
            format!("s3://{bucket}/in/gone.pdf"),
            format!("s3://{bucket}/in/nda.pdf")
        ]
    );
    let gone = &run.documents[0];
    let kept = &run.documents[1];
    assert_eq!(kept.status, DocumentStatus::Completed, "{kept:?}");
    assert_eq!(gone.status, DocumentStatus::Failed, "{gone:?}");
    assert_eq!(gone.error_type.as_deref(), Some("ReadError"), "{gone:?}");
    let error = gone.error.as_deref().unwrap();
    assert!(
        error.contains(&format!("s3://{bucket}/in/gone.pdf")) && error.contains("no such object"),
        "{error}"
    );
    assert!(!run.all_failed());
}
