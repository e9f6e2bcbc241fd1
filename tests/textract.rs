//! Textract behind the caches and the shared rate limit, against a fake Textract HTTP
//! server the SDK talks to ([`lexpipe::testing::fake_textract`]), moto's S3 and the real
//! Redis: one job per content whatever the number of runs and pollers, throttling that
//! pauses every worker, a failed job that fails its document and caches nothing, hybrid
//! sending only the pages that need OCR, and a cost ledger that counts exactly what the
//! endpoint received.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lexpipe::app::App;
use lexpipe::config::DeploymentStage;
use lexpipe::model::{DocumentOutput, DocumentStatus};
use lexpipe::redis::ratelimit::Api;
use lexpipe::runner::{self, RunOptions, Summary};
use lexpipe::stages::{DocumentRef, ocr};
use lexpipe::store::blob::{BlobStore, S3Store};
use lexpipe::store::source::SourceReader;
use lexpipe::testing::fake_textract::{self, FakeConfig, FakeTextract, GET, START};
use lexpipe::testing::scans::{self, TextLayer};
use lexpipe_tests::moto::MotoServer;
use lexpipe_tests::{cleanup, config_with, keys_of, raw_connection, require_redis, unique_env};

/// The poll interval the tests configure: the state machine waits it between polls, and a
/// running job's status is cached for it.
const POLL: Duration = Duration::from_secs(1);

/// An app of `stage` whose artefacts go to `s3://{bucket}/artefacts`, whose sources are read
/// from `bucket`, and whose Textract is `fake`.
async fn app(
    env: &str,
    stage: DeploymentStage,
    moto: &MotoServer,
    bucket: &str,
    fake: &FakeTextract,
    overrides: &[(&str, &str)],
) -> App {
    let mut vars = vec![("LEXPIPE_TEXTRACT_POLL_SECS", "1")];
    vars.extend_from_slice(overrides);
    let mut config = config_with(env, &vars);
    // The cloud stage's checks (TLS to Redis) are not under test here.
    config.stage = stage;
    let mut app = lexpipe_tests::app_for(&config).await;
    let artefacts = S3Store::from_client(moto.client(), bucket, "artefacts").unwrap();
    let inputs = S3Store::from_client(moto.client(), bucket, "").unwrap();
    app.artefacts = Arc::new(artefacts);
    app.sources = Arc::new(SourceReader::new().with_bucket(bucket, Arc::new(inputs)));
    app.textract = Some(fake.client());
    app
}

async fn upload(moto: &MotoServer, bucket: &str, key: &str, bytes: &[u8]) -> String {
    let store = S3Store::from_client(moto.client(), bucket, "").unwrap();
    store.put(key, bytes.to_vec()).await.unwrap();
    format!("s3://{bucket}/{key}")
}

async fn run(app: &App, sources: &[String], out: &Path) -> Summary {
    // Real time: the state machine waits the poll interval between polls.
    let opts = RunOptions {
        out_dir: out.to_path_buf(),
        time_scale: 1.0,
        ..RunOptions::default()
    };
    runner::process_sources(app, sources, &opts, &|_| {})
        .await
        .expect("the run starts")
}

fn output(summary: &Summary, i: usize) -> DocumentOutput {
    let path = summary.documents[i]
        .output
        .as_ref()
        .expect("an output file");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A two-page scanned filing with an ECF header in its text layer.
fn scan() -> Vec<u8> {
    let source = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/corpus/ca3_003112692106.pdf"
    ));
    scans::rasterise(source, 40, TextLayer::EcfHeader).unwrap()
}

#[tokio::test]
async fn a_cached_textract_result_whose_artefact_is_gone_is_written_again_not_a_missing_artefact() {
    // Arrange: a scan read once; then its artefacts are gone (a purged `processed/`, or
    // another artefact store) while Redis still has the OCR result.
    require_redis().await;
    let env = unique_env("tx-purged");
    let moto = MotoServer::start();
    let bucket = moto.bucket("tx-purged").await;
    let fake = FakeTextract::start(FakeConfig::default()).await;
    let app = app(&env, DeploymentStage::Cloud, &moto, &bucket, &fake, &[]).await;
    let source = upload(&moto, &bucket, "in/filing.pdf", &scan()).await;
    let out = tempfile::tempdir().unwrap();
    let first = run(&app, std::slice::from_ref(&source), out.path()).await;
    let calls = fake.calls().len();
    let mut purged = app.clone();
    purged.artefacts =
        Arc::new(S3Store::from_client(moto.client(), &bucket, "artefacts-after-purge").unwrap());

    // Act
    let again = run(&purged, &[source], out.path()).await;

    // Assert: completed from the cache, the artefact written anew, Textract not asked.
    assert_eq!(first.documents[0].status, DocumentStatus::Completed);
    assert_eq!(
        again.documents[0].status,
        DocumentStatus::Completed,
        "{:?}",
        again.documents[0].error
    );
    assert_eq!(fake.calls().len(), calls, "{:#?}", fake.calls());
    let page = &output(&again, 0).pages[0];
    assert!(
        page.text.starts_with(&fake_textract::line_text(1, 2, 1)),
        "{}",
        page.text
    );
    cleanup(&env).await;
}

#[tokio::test]
async fn a_document_processed_twice_and_its_copy_under_another_name_start_one_textract_job() {
    // Arrange
    require_redis().await;
    let env = unique_env("tx-once");
    let moto = MotoServer::start();
    let bucket = moto.bucket("tx-once").await;
    let fake = FakeTextract::start(FakeConfig::default()).await;
    let mut app = app(&env, DeploymentStage::Cloud, &moto, &bucket, &fake, &[]).await;
    let db = lexpipe_tests::pg::test_database().await;
    app.db = Some(db.pool.clone());
    let bytes = scan();
    let original = upload(&moto, &bucket, "in/filing.pdf", &bytes).await;
    let copy = upload(&moto, &bucket, "in/renamed copy.pdf", &bytes).await;
    let out = tempfile::tempdir().unwrap();

    // Act
    let first = run(&app, std::slice::from_ref(&original), out.path()).await;
    let calls_after_first = fake.calls().len() as u64;
    let second = run(&app, &[original], out.path()).await;
    let third = run(&app, &[copy], out.path()).await;

    // Assert
    for s in [&first, &second, &third] {
        assert_eq!(
            s.documents[0].status,
            DocumentStatus::Completed,
            "{:?}",
            s.documents[0].error
        );
    }
    assert_eq!(fake.calls_of(START).len(), 1, "{:#?}", fake.calls());
    assert_eq!(fake.jobs(), 1);
    assert_eq!(
        fake.calls().len() as u64,
        calls_after_first,
        "no call after the first run"
    );
    // The ledger counts exactly what the endpoint received, and bills the pages once.
    assert_eq!(first.api_calls.textract.made, calls_after_first);
    assert_eq!(first.usage.textract.units_in, 2);
    assert!((first.cost_usd.spent - 2.0 * 0.0015).abs() < 1e-9);
    for later in [&second, &third] {
        assert_eq!(later.api_calls.textract.made, 0);
        assert!(later.api_calls.textract.avoided > 0);
        assert_eq!(later.usage.textract.units_avoided, 2);
    }
    // Every page is Textract's text, in page order.
    let doc = output(&first, 0);
    assert_eq!(doc.pages.len(), 2);
    for page in &doc.pages {
        assert_eq!(page.ocr_engine.as_deref(), Some("textract"));
        assert!(
            page.text
                .starts_with(&fake_textract::line_text(page.number, 2, 1)),
            "{}",
            page.text
        );
    }
    let start = &fake.calls_of(START)[0];
    assert_eq!(
        start.client_request_token.as_ref().map(String::len),
        Some(64)
    );
    assert_eq!(
        start.job_tag.as_deref(),
        Some(format!("lexpipe-{}", doc.document_uuid).as_str())
    );
    assert_eq!(
        start.object.as_ref().map(|o| o.1.as_str()),
        Some("in/filing.pdf"),
        "in the cloud the source object itself is read"
    );
    // The job is recorded, with its token and outcome.
    let jobs: Vec<(String, String, Option<i32>, Option<String>)> = sqlx::query_as(
        "SELECT job_id, status, pages_sent, client_request_token FROM textract_jobs",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(Some(&jobs[0].0), start.job_id.as_ref());
    assert_eq!(jobs[0].1, "SUCCEEDED");
    assert_eq!(jobs[0].2, Some(2));
    assert_eq!(jobs[0].3, start.client_request_token);
    db.drop_database().await;
    cleanup(&env).await;
}

#[tokio::test]
async fn sixteen_concurrent_runs_of_a_new_document_start_one_job_and_poll_at_most_once_per_interval()
 {
    // Arrange: 16 workers (each its own app, as separate processes would be), a job that
    // stays IN_PROGRESS for 2 polls, results over many NextToken pages, and a Get limit
    // low enough to be reached.
    require_redis().await;
    let env = unique_env("tx-16");
    let moto = MotoServer::start();
    let bucket = moto.bucket("tx-16").await;
    let fake = FakeTextract::start(FakeConfig {
        in_progress_polls: 2,
        blocks_per_response: 6,
        ..FakeConfig::default()
    })
    .await;
    let get_limit = 4;
    let limit = get_limit.to_string();
    let overrides = [("LEXPIPE_RL_TEXTRACT_GET_PER_SEC", limit.as_str())];
    let source = upload(&moto, &bucket, "in/new.pdf", &scan()).await;
    let out = tempfile::tempdir().unwrap();
    let mut apps = Vec::new();
    for _ in 0..16 {
        apps.push(
            app(
                &env,
                DeploymentStage::Cloud,
                &moto,
                &bucket,
                &fake,
                &overrides,
            )
            .await,
        );
    }

    // Act
    let summaries = futures::future::join_all(
        apps.iter()
            .map(|app| run(app, std::slice::from_ref(&source), out.path())),
    )
    .await;

    // Assert
    for s in &summaries {
        assert_eq!(
            s.documents[0].status,
            DocumentStatus::Completed,
            "{:?}",
            s.documents[0].error
        );
    }
    assert_eq!(fake.calls_of(START).len(), 1, "one start for 16 runs");
    assert_eq!(fake.jobs(), 1);
    let status_checks: Vec<_> = fake
        .calls_of(GET)
        .into_iter()
        .filter(|c| c.max_results == Some(1))
        .collect();
    assert!(status_checks.len() >= 3, "{status_checks:#?}");
    for pair in status_checks.windows(2) {
        // The status is cached for the interval once a poll returns: the next poll of the
        // job comes at least an interval later, whatever the number of pollers.
        assert!(
            pair[1].at - pair[0].at >= POLL - Duration::from_millis(20),
            "two status checks {:?} apart",
            pair[1].at - pair[0].at
        );
    }
    let gets = fake.calls_of(GET);
    let busiest = fake_textract::max_in_window(&gets, Duration::from_millis(950));
    assert!(
        busiest <= get_limit,
        "{busiest} Gets within one window, over the limit of {get_limit}"
    );
    let made: u64 = summaries.iter().map(|s| s.api_calls.textract.made).sum();
    assert_eq!(
        made,
        fake.calls().len() as u64,
        "the ledger counts every call"
    );
    let billed: u64 = summaries.iter().map(|s| s.usage.textract.units_in).sum();
    assert_eq!(billed, 2, "the job's pages are billed once");
    cleanup(&env).await;
}

#[tokio::test]
async fn a_throttled_start_pauses_every_worker_and_then_succeeds() {
    // Arrange: the first start is refused with ProvisionedThroughputExceededException; a
    // second worker with another document starts while the pause is on.
    require_redis().await;
    let env = unique_env("tx-throttle");
    let moto = MotoServer::start();
    let bucket = moto.bucket("tx-throttle").await;
    let fake = FakeTextract::start(FakeConfig {
        throttle_starts: 1,
        in_progress_polls: 0,
        ..FakeConfig::default()
    })
    .await;
    let first = upload(&moto, &bucket, "in/a.pdf", &scan()).await;
    let other_scan = scans::rasterise(
        Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/corpus/ca10_010110462922.pdf"
        )),
        40,
        TextLayer::None,
    )
    .unwrap();
    let second = upload(&moto, &bucket, "in/b.pdf", &other_scan).await;
    let out = tempfile::tempdir().unwrap();
    let a = app(&env, DeploymentStage::Cloud, &moto, &bucket, &fake, &[]).await;
    let b = app(&env, DeploymentStage::Cloud, &moto, &bucket, &fake, &[]).await;

    // Act: the second worker starts once the first was throttled and the pause is set.
    let pause_key = a.limiter.pause_key(Api::TextractStart).to_string();
    let first_run = run(&a, std::slice::from_ref(&first), out.path());
    let second_run = async {
        let mut redis = raw_connection().await;
        let give_up = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let paused: bool = redis::cmd("EXISTS")
                .arg(&pause_key)
                .query_async(&mut redis)
                .await
                .unwrap();
            if paused {
                break;
            }
            assert!(tokio::time::Instant::now() < give_up, "no throttle seen");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        run(&b, std::slice::from_ref(&second), out.path()).await
    };
    let (sa, sb) = tokio::join!(first_run, second_run);

    // Assert
    for s in [&sa, &sb] {
        assert_eq!(
            s.documents[0].status,
            DocumentStatus::Completed,
            "{:?}",
            s.documents[0].error
        );
    }
    let starts = fake.calls_of(START);
    let throttled = starts
        .iter()
        .position(|c| c.outcome == "throttled")
        .expect("a throttled start");
    assert_eq!(fake.jobs(), 2, "both documents got their job");
    for later in &starts[throttled + 1..] {
        // The default pause is one second; every worker waited it out.
        assert!(
            later.at - starts[throttled].at >= Duration::from_millis(950),
            "a start {:?} after the throttled one",
            later.at - starts[throttled].at
        );
    }
    let throttles: u64 = [&a, &b]
        .iter()
        .flat_map(|app| app.limiter.stats())
        .map(|s| s.throttled)
        .sum();
    assert_eq!(throttles, 1);
    let made = sa.api_calls.textract.made + sb.api_calls.textract.made;
    assert_eq!(
        made,
        fake.calls().len() as u64,
        "the throttled call is counted too"
    );
    cleanup(&env).await;
}

#[tokio::test]
async fn a_failed_job_fails_the_document_with_textracts_message_and_caches_nothing() {
    // Arrange
    require_redis().await;
    let env = unique_env("tx-fail");
    let moto = MotoServer::start();
    let bucket = moto.bucket("tx-fail").await;
    let message = "Request has unsupported document format on page 2";
    let fake = FakeTextract::start(FakeConfig {
        fail_jobs: Some(message.to_string()),
        in_progress_polls: 0,
        ..FakeConfig::default()
    })
    .await;
    let app = app(&env, DeploymentStage::Cloud, &moto, &bucket, &fake, &[]).await;
    let source = upload(&moto, &bucket, "in/bad.pdf", &scan()).await;
    let out = tempfile::tempdir().unwrap();

    // Act
    let summary = run(&app, &[source], out.path()).await;

    // Assert
    let d = &summary.documents[0];
    assert_eq!(d.status, DocumentStatus::Failed);
    assert_eq!(d.error_type.as_deref(), Some("TextractJobFailed"));
    assert!(
        d.error.as_deref().unwrap_or("").contains(message),
        "{:?}",
        d.error
    );
    let ocr_results: Vec<String> = keys_of(&env)
        .await
        .into_iter()
        .filter(|k| k.contains(":ocr:") && k.contains("textract"))
        .collect();
    assert!(ocr_results.is_empty(), "cached: {ocr_results:?}");
    let sha = d.content_sha256.as_deref().unwrap();
    let written = app
        .artefacts
        .list(&format!("processed/{sha}/"))
        .await
        .unwrap();
    assert!(
        written.iter().all(|o| !o.key.contains("ocr-textract")),
        "{written:?}"
    );
    cleanup(&env).await;
}

#[tokio::test]
async fn hybrid_sends_textract_only_the_pages_that_need_ocr_and_maps_them_back() {
    // Arrange: pages 2 and 4 have no text layer; pages 1 and 3 are born digital.
    require_redis().await;
    let env = unique_env("tx-hybrid");
    let moto = MotoServer::start();
    let bucket = moto.bucket("tx-hybrid").await;
    let fake = FakeTextract::start(FakeConfig {
        s3: Some(moto.client()),
        in_progress_polls: 0,
        ..FakeConfig::default()
    })
    .await;
    let app = app(&env, DeploymentStage::Hybrid, &moto, &bucket, &fake, &[]).await;
    let bytes = lexpipe::samples::text_only_pdf(&[
        "Page one of the motion has a text layer.",
        "",
        "Page three of the motion has a text layer too.",
        "",
    ]);
    let source = upload(&moto, &bucket, "in/mixed.pdf", &bytes).await;
    let out = tempfile::tempdir().unwrap();

    // Act
    let summary = run(&app, &[source], out.path()).await;

    // Assert
    let d = &summary.documents[0];
    assert_eq!(d.status, DocumentStatus::Completed, "{:?}", d.error);
    assert_eq!(d.pages_needing_ocr, vec![2, 4]);
    let start = &fake.calls_of(START)[0];
    let job = start.job_id.as_deref().unwrap();
    assert_eq!(fake.job_pages(job), Some(2), "only the two pages were sent");
    let (_, key) = fake.job_object(job).unwrap();
    assert!(
        key.starts_with("artefacts/processed/") && key.contains("textract-input-"),
        "{key}"
    );
    let doc = output(&summary, 0);
    assert_eq!(
        doc.pages[0].text,
        "Page one of the motion has a text layer."
    );
    assert_eq!(doc.pages[0].ocr_engine, None);
    assert!(
        doc.pages[1]
            .text
            .starts_with(&fake_textract::line_text(1, 2, 1))
    );
    assert!(
        doc.pages[3]
            .text
            .starts_with(&fake_textract::line_text(2, 2, 1))
    );
    assert_eq!(doc.pages[3].ocr_engine.as_deref(), Some("textract"));
    assert_eq!(summary.usage.textract.units_in, 2, "two pages paid for");
    assert_eq!(
        summary.usage.textract.units_avoided, 2,
        "two text-layer pages not sent"
    );
    assert_eq!(summary.api_calls.textract.made, fake.calls().len() as u64);
    cleanup(&env).await;
}

#[tokio::test]
async fn a_partially_successful_job_completes_the_document_naming_the_unread_page_and_caches_nothing()
 {
    // Arrange: Textract cannot read page 2 of the scan.
    require_redis().await;
    let env = unique_env("tx-partial");
    let moto = MotoServer::start();
    let bucket = moto.bucket("tx-partial").await;
    let fake = FakeTextract::start(FakeConfig {
        unreadable_pages: vec![2],
        in_progress_polls: 0,
        ..FakeConfig::default()
    })
    .await;
    let app = app(&env, DeploymentStage::Cloud, &moto, &bucket, &fake, &[]).await;
    let source = upload(&moto, &bucket, "in/partial.pdf", &scan()).await;
    let out = tempfile::tempdir().unwrap();

    // Act
    let summary = run(&app, &[source], out.path()).await;

    // Assert
    let d = &summary.documents[0];
    assert_eq!(d.status, DocumentStatus::Completed, "{:?}", d.error);
    assert_eq!(d.pages_unread, vec![2]);
    let warning = d.warnings.join("\n");
    assert!(
        warning.contains("page 2 could not be read by OCR: Textract: UNSUPPORTED_PAGE"),
        "{warning}"
    );
    assert_eq!(summary.documents_with_warnings, 1);
    let doc = output(&summary, 0);
    assert_eq!(doc.pages[0].ocr_engine.as_deref(), Some("textract"));
    assert!(doc.pages[1].ocr_error.is_some());
    let ocr_results: Vec<String> = keys_of(&env)
        .await
        .into_iter()
        .filter(|k| k.contains(":ocr:") && k.contains("textract"))
        .collect();
    assert!(ocr_results.is_empty(), "cached: {ocr_results:?}");
    cleanup(&env).await;
}

#[tokio::test]
async fn a_scanned_filing_read_by_textract_is_cached_as_long_as_filings_are() {
    // Arrange: Textract's text of a scan says nothing of its kind; its ECF header (the
    // text layer) says it is a filing.
    require_redis().await;
    let env = unique_env("tx-ttl");
    let moto = MotoServer::start();
    let bucket = moto.bucket("tx-ttl").await;
    let fake = FakeTextract::start(FakeConfig::default()).await;
    let filing = 90 * 86_400;
    let app = app(
        &env,
        DeploymentStage::Cloud,
        &moto,
        &bucket,
        &fake,
        &[("LEXPIPE_CACHE_TTL_OCR_FILING_SECS", &filing.to_string())],
    )
    .await;
    let source = upload(&moto, &bucket, "in/filing.pdf", &scan()).await;
    let out = tempfile::tempdir().unwrap();

    // Act
    let summary = run(&app, &[source], out.path()).await;

    // Assert
    assert_eq!(
        summary.documents[0].status,
        DocumentStatus::Completed,
        "{:?}",
        summary.documents[0].error
    );
    let ocr_keys: Vec<String> = keys_of(&env)
        .await
        .into_iter()
        .filter(|k| k.contains(":ocr:"))
        .collect();
    assert_eq!(ocr_keys.len(), 2, "text layer and Textract: {ocr_keys:?}");
    let mut redis = raw_connection().await;
    for key in &ocr_keys {
        let pttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut redis)
            .await
            .unwrap();
        assert!(
            pttl <= filing * 1000 && pttl > (filing - 120) * 1000,
            "{key}: PTTL {pttl} ms"
        );
    }
    cleanup(&env).await;
}

#[tokio::test]
async fn an_object_overwritten_after_ingest_gets_neither_a_textract_job_nor_the_text_of_its_old_bytes()
 {
    // Arrange: a document identified (its hash computed) and its text layer read, then
    // its object overwritten before OCR went on.
    require_redis().await;
    let env = unique_env("tx-etag");
    let moto = MotoServer::start();
    let bucket = moto.bucket("tx-etag").await;
    let fake = FakeTextract::start(FakeConfig::default()).await;
    let app = app(&env, DeploymentStage::Cloud, &moto, &bucket, &fake, &[]).await;
    let old = scan();
    let mut new = old.clone();
    new.extend_from_slice(b"\n% a later version\n");
    let source = upload(&moto, &bucket, "in/filing.pdf", &old).await;
    let sha = lexpipe::text::sha256_hex(&old);
    let doc = DocumentRef::new(&sha, &source);
    ocr::text_layer(&app, &doc).await.unwrap();
    upload(&moto, &bucket, "in/filing.pdf", &new).await;
    let start = |document: DocumentRef| ocr::start(&app, ocr::StartInput { document });

    // Act and Assert: no job reads the new bytes for the old hash.
    let err = start(doc.clone()).await.unwrap_err();
    assert_eq!(err.error_type(), "ContentChanged", "{err}");
    assert!(fake.calls_of(START).is_empty(), "{:#?}", fake.calls());

    // Arrange: the old bytes, processed under another name, have their text cached.
    let copy = upload(&moto, &bucket, "in/copy.pdf", &old).await;
    let out = tempfile::tempdir().unwrap();
    let summary = run(&app, std::slice::from_ref(&copy), out.path()).await;
    assert_eq!(
        summary.documents[0].status,
        DocumentStatus::Completed,
        "{:?}",
        summary.documents[0].error
    );
    assert_eq!(fake.calls_of(START).len(), 1);

    // Act and Assert: the overwritten object is not given that text; the copy still is.
    let err = start(doc).await.unwrap_err();
    assert_eq!(err.error_type(), "ContentChanged", "{err}");
    let reused = start(DocumentRef::new(&sha, &copy)).await.unwrap();
    assert!(reused.ready && reused.work.reused == 1, "{reused:?}");
    assert_eq!(fake.calls_of(START).len(), 1, "no other job");
    cleanup(&env).await;
}

#[tokio::test]
async fn a_failed_job_is_not_handed_to_the_next_attempt_which_starts_a_new_one() {
    // Arrange: Textract fails the first job only (a transient fault on its side).
    require_redis().await;
    let env = unique_env("tx-refail");
    let moto = MotoServer::start();
    let bucket = moto.bucket("tx-refail").await;
    let fake = FakeTextract::start(FakeConfig {
        fail_jobs: Some("Internal failure while processing the document".into()),
        failing_jobs: 1,
        in_progress_polls: 0,
        ..FakeConfig::default()
    })
    .await;
    let app = app(&env, DeploymentStage::Cloud, &moto, &bucket, &fake, &[]).await;
    let source = upload(&moto, &bucket, "in/filing.pdf", &scan()).await;
    let out = tempfile::tempdir().unwrap();
    let first = run(&app, std::slice::from_ref(&source), out.path()).await;
    assert_eq!(
        first.documents[0].error_type.as_deref(),
        Some("TextractJobFailed")
    );

    // Act: the document is processed again within the day the start is remembered.
    let second = run(&app, &[source], out.path()).await;

    // Assert: a second job, under another token, read the document.
    assert_eq!(
        second.documents[0].status,
        DocumentStatus::Completed,
        "{:?}",
        second.documents[0].error
    );
    let starts = fake.calls_of(START);
    assert_eq!(starts.len(), 2, "{starts:#?}");
    assert_eq!(fake.jobs(), 2);
    assert_ne!(
        starts[0].client_request_token,
        starts[1].client_request_token
    );
    assert_ne!(starts[0].job_id, starts[1].job_id);
    let doc = output(&second, 0);
    assert!(
        doc.pages
            .iter()
            .all(|p| p.ocr_engine.as_deref() == Some("textract")),
        "{:?}",
        doc.pages
    );
    cleanup(&env).await;
}
