//! The same definition on a third-party engine.
//!
//! `statemachine/pipeline.asl.json` runs on moto's Step Functions engine, its Lambda tasks
//! reaching this crate's real function binaries unchanged (through the local Lambda Runtime
//! API of `tests/support/moto_sfn.py`), against moto's S3, the real Redis and a real
//! PostgreSQL database. The documents enter as they do on AWS: an S3 notification invokes
//! `ingest`, which starts one named execution per document. The samples then come out of
//! that run exactly as they come out of the local runner (`lexpipe process`, our own ASL
//! interpreter) on the same objects: every row of every result table is compared. Entities
//! come from the rules and from an LLM (the fake OpenAI-compatible server of
//! `lexpipe::testing`), and both engines make the same LLM calls. A scanned filing (no
//! text layer) goes through `ocr-start` and `ocr-poll` to Textract (the fake Textract
//! server of `lexpipe::testing`, which both engines reach), the state machine's Wait
//! between polls included. A file that is not a PDF reaches `mark-failed`, with its error
//! recorded in PostgreSQL.
//!
//! The test starts and stops everything it needs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use lexpipe::app::App;
use lexpipe::config::BlobLocation;
use lexpipe::runner::{self, RunOptions};
use lexpipe::store::blob::S3Store;
use lexpipe::store::source::SourceReader;
use lexpipe_tests::moto::{ACCESS_KEY_ID, MotoServer, SECRET_ACCESS_KEY};
use lexpipe_tests::pg::{TestDb, test_database};
use lexpipe_tests::{cleanup, config_with, redis_url, require_redis, samples_dir, unique_env};
use serde_json::{Value, json};
use sqlx::Row;

/// Every function of the state machine, plus `ingest`, with the binary cargo built.
fn functions() -> Vec<(&'static str, PathBuf)> {
    vec![
        ("ingest", env!("CARGO_BIN_EXE_ingest").into()),
        ("ocr-start", env!("CARGO_BIN_EXE_ocr-start").into()),
        ("ocr-poll", env!("CARGO_BIN_EXE_ocr-poll").into()),
        ("chunk", env!("CARGO_BIN_EXE_chunk").into()),
        (
            "extract-entities",
            env!("CARGO_BIN_EXE_extract-entities").into(),
        ),
        (
            "resolve-entities",
            env!("CARGO_BIN_EXE_resolve-entities").into(),
        ),
        (
            "extract-structured",
            env!("CARGO_BIN_EXE_extract-structured").into(),
        ),
        ("persist", env!("CARGO_BIN_EXE_persist").into()),
        ("mark-failed", env!("CARGO_BIN_EXE_mark-failed").into()),
    ]
}

const ACCOUNT: &str = "123456789012";
const UPLOAD_PREFIX: &str = "uploads/";
/// Not a PDF: fails at OCR with `NotPdf`, which the state machine catches.
const BROKEN_KEY: &str = "uploads/broken exhibit.pdf";
/// A one-page scan without a text layer: its page goes to Textract.
const SCAN_KEY: &str = "uploads/scanned order.pdf";
/// How long every execution may take (debug binaries, a shared machine).
const EXECUTIONS_TIMEOUT: Duration = Duration::from_secs(300);

/// The result tables, compared row by row (without the columns that record when or by
/// which claim a row was written).
const TABLES: [&str; 6] = [
    "pages",
    "chunks",
    "canonical_entities",
    "entity_mentions",
    "relationships",
    "structured_extractions",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_samples_come_out_of_moto_step_functions_exactly_as_out_of_the_local_runner() {
    // Arrange: moto running the binaries, configured as a deployment would configure them.
    require_redis().await;
    let cloud_env = unique_env("conf-sfn");
    let local_env = unique_env("conf-local");
    let cloud_db = test_database().await;
    let local_db = test_database().await;
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let bucket = format!("lexpipe-conformance-{suffix}");
    let machine_name = format!("lexpipe-conformance-{suffix}");
    let machine_arn = format!("arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:{machine_name}");
    let logs = tempfile::tempdir().unwrap();
    // Entities from the rules and from the LLM (a fake OpenAI-compatible endpoint): the
    // paid path runs through the functions too.
    let llm = lexpipe::testing::fake_llm::FakeLlm::start().await;
    let llm_url = llm.base_url();
    // Pages that need OCR go to Textract: the fake, one page per job (the scan's), still
    // in progress at the first poll so that the state machine waits and polls again.
    let textract = lexpipe::testing::fake_textract::FakeTextract::start(
        lexpipe::testing::fake_textract::FakeConfig {
            default_pages: 1,
            ..Default::default()
        },
    )
    .await;
    let llm_settings: [(&str, &str); 5] = [
        ("LEXPIPE_LLM_BASE_URL", llm_url.as_str()),
        ("LEXPIPE_EXTRACTOR", "both"),
        ("OPENAI_API_KEY", "sk-conformance-test-key"),
        ("LEXPIPE_OCR_ENGINE", "textract"),
        ("LEXPIPE_TEXTRACT_POLL_SECS", "1"),
    ];
    let function_env: Vec<(String, String)> = [
        ("REDIS_URL", redis_url()),
        ("LEXPIPE_ENV", cloud_env.clone()),
        ("DATABASE_URL", cloud_db.url.clone()),
        ("DATABASE_MAX_CONNECTIONS", "3".into()),
        ("LEXPIPE_ARTEFACTS", format!("s3://{bucket}")),
        ("LEXPIPE_UPLOAD_PREFIX", UPLOAD_PREFIX.into()),
        ("LEXPIPE_STATE_MACHINE_ARN", machine_arn.clone()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.into()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.into()),
        ("RUST_LOG", "info".into()),
        ("AWS_ENDPOINT_URL_TEXTRACT", textract.endpoint()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .chain(
        llm_settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .collect();
    let moto = MotoServer::start_running_functions(&functions(), &function_env, logs.path());
    let s3 = moto.client();
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    assert_eq!(moto.state_machine_named(&machine_name).await, machine_arn);

    let mut samples: Vec<PathBuf> = std::fs::read_dir(samples_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pdf"))
        .collect();
    samples.sort();
    assert!(samples.len() >= 5, "the shipped samples: {samples:?}");
    let mut keys = Vec::new();
    let mut contents = std::collections::BTreeSet::new();
    for path in &samples {
        let key = format!(
            "{UPLOAD_PREFIX}{}",
            path.file_name().unwrap().to_string_lossy()
        );
        let bytes = std::fs::read(path).unwrap();
        contents.insert(lexpipe::text::sha256_hex(&bytes));
        put(&s3, &bucket, &key, bytes).await;
        keys.push(key);
    }
    let scan = scanned_filing();
    contents.insert(lexpipe::text::sha256_hex(&scan));
    put(&s3, &bucket, SCAN_KEY, scan).await;
    keys.push(SCAN_KEY.to_string());
    let uploads = samples.len() + 1;
    // The samples include a byte-identical copy: one document, one execution.
    let documents = contents.len();
    assert!(documents < uploads, "the samples' duplicate is still there");
    put(
        &s3,
        &bucket,
        BROKEN_KEY,
        b"this upload is not a PDF".to_vec(),
    )
    .await;
    keys.push(BROKEN_KEY.to_string());

    // Act 1: one S3 notification for every upload invokes ingest, which starts the
    // executions; wait for all of them.
    let event = s3_event(&s3, &bucket, &keys).await;
    let answer = invoke(&moto, "ingest", &event).await;
    let executions = wait_for_executions(&moto, &machine_arn, documents + 1, &logs).await;

    // Act 2: the local runner over the same objects, with its own Redis prefix, artefact
    // folder and database, so that it shares nothing with the first run.
    let artefacts = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let calls_on_step_functions = llm.requests();
    let app = local_app(
        &moto,
        &bucket,
        &local_env,
        &local_db,
        artefacts.path(),
        &llm_settings,
        textract.client(),
    )
    .await;
    let sources: Vec<String> = keys.iter().map(|k| format!("s3://{bucket}/{k}")).collect();
    let opts = RunOptions {
        out_dir: out.path().to_path_buf(),
        ..RunOptions::default()
    };
    let summary = runner::process_sources(&app, &sources, &opts, &|_| {})
        .await
        .unwrap();

    // Assert: every execution ran to its end, named as ingest names them.
    let failed_reason = |name: &str| format!("{name}: {:?}\n{}", executions[name], logs_of(&logs));
    assert_eq!(executions.len(), documents + 1, "{answer}\n{executions:?}");
    for (name, (status, _)) in &executions {
        assert!(name.len() <= 80, "{name}");
        assert!(
            status == "SUCCEEDED" || status == "FAILED",
            "{}",
            failed_reason(name)
        );
    }
    let succeeded = executions
        .values()
        .filter(|(s, _)| s == "SUCCEEDED")
        .count();
    assert_eq!(succeeded, documents, "{executions:#?}\n{}", logs_of(&logs));

    // The broken upload failed through mark-failed, its error recorded.
    let broken =
        sqlx::query("SELECT status, error_type, error FROM documents WHERE status = 'failed'")
            .fetch_all(&cloud_db.pool)
            .await
            .unwrap();
    assert_eq!(broken.len(), 1, "{}", logs_of(&logs));
    let error_type: Option<String> = broken[0].get("error_type");
    assert_eq!(error_type.as_deref(), Some("NotPdf"));
    let error: Option<String> = broken[0].get("error");
    assert!(error.unwrap_or_default().contains("not a PDF"));
    let (failed_status, failed_output) = executions
        .values()
        .find(|(s, _)| s == "FAILED")
        .expect("the broken upload's execution");
    assert_eq!(failed_status, "FAILED");
    assert!(
        failed_output.contains("NotPdf"),
        "the execution's error carries the original name: {failed_output}"
    );

    // Both engines asked the LLM the same questions (they share no cache).
    assert!(calls_on_step_functions > 0, "the functions called the LLM");
    assert_eq!(summary.api_calls.llm.made, calls_on_step_functions);
    assert_eq!(llm.requests(), 2 * calls_on_step_functions);

    // The samples are identical, row for row, to the local runner's.
    assert_eq!(
        summary
            .documents
            .iter()
            .filter(|d| d.status == lexpipe::model::DocumentStatus::Completed)
            .count(),
        uploads,
        "the local runner reports every source"
    );
    // The scan was read by Textract, through ocr-start and ocr-poll: one job, which the
    // local runner's start found again by its ClientRequestToken, polled until done.
    let scanned: i64 = sqlx::query_scalar("SELECT count(*) FROM pages WHERE text LIKE $1")
        .bind(format!(
            "{}%",
            lexpipe::testing::fake_textract::line_text(1, 1, 1)
        ))
        .fetch_one(&cloud_db.pool)
        .await
        .unwrap();
    assert_eq!(scanned, 1, "the scan's page comes from Textract");
    assert_eq!(textract.jobs(), 1, "{:?}", textract.calls());
    let gets = textract
        .calls_of(lexpipe::testing::fake_textract::GET)
        .len();
    assert!(gets >= 2, "polled past IN_PROGRESS: {:?}", textract.calls());
    let completed = "SELECT id FROM documents WHERE status = 'completed'";
    let cloud_docs = rows(&cloud_db, "documents", completed).await;
    let local_docs = rows(&local_db, "documents", completed).await;
    assert_eq!(cloud_docs.len(), documents);
    assert_eq!(cloud_docs, local_docs, "documents differ");
    for table in TABLES {
        let cloud = rows(&cloud_db, table, completed).await;
        let local = rows(&local_db, table, completed).await;
        assert!(
            !cloud.is_empty() || table == "structured_extractions",
            "{table} is empty"
        );
        if cloud != local {
            let only_cloud: Vec<_> = cloud
                .iter()
                .filter(|r| !local.contains(r))
                .take(5)
                .collect();
            let only_local: Vec<_> = local
                .iter()
                .filter(|r| !cloud.contains(r))
                .take(5)
                .collect();
            panic!(
                "{table}: {} rows on Step Functions, {} locally\nonly on Step Functions: {only_cloud:#?}\nonly locally: {only_local:#?}",
                cloud.len(),
                local.len()
            );
        }
    }

    drop(moto);
    cleanup(&cloud_env).await;
    cleanup(&local_env).await;
    cloud_db.drop_database().await;
    local_db.drop_database().await;
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, bytes: Vec<u8>) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .unwrap();
}

/// The notification S3 sends for `keys` (keys form-encoded as S3 encodes them).
async fn s3_event(s3: &aws_sdk_s3::Client, bucket: &str, keys: &[String]) -> Value {
    let mut records = Vec::new();
    for key in keys {
        let head = s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        let encoded: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
        // S3 leaves `/` as it is in notification keys.
        let encoded = encoded.replace("%2F", "/");
        records.push(json!({
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": "2026-11-28T06:00:00.000Z",
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:AIDAEXAMPLEUPLOADER"},
            "requestParameters": {"sourceIPAddress": "203.0.113.10"},
            "responseElements": {
                "x-amz-request-id": "C3D13FE58DE4C810",
                "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"
            },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "lexpipe-ingest-pdf",
                "bucket": {
                    "name": bucket,
                    "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                    "arn": format!("arn:aws:s3:::{bucket}")
                },
                "object": {
                    "key": encoded,
                    "size": head.content_length().unwrap_or(0),
                    "eTag": head.e_tag().unwrap_or_default().trim_matches('"'),
                    "sequencer": "0A1B2C3D4E5F678901"
                }
            }
        }));
    }
    json!({ "Records": records })
}

/// Invokes a function through moto's Lambda API, as S3 invokes `ingest`.
async fn invoke(moto: &MotoServer, function: &str, payload: &Value) -> String {
    let url = format!(
        "{}/2015-03-31/functions/{function}/invocations",
        moto.endpoint()
    );
    // moto routes a request to a service by its SigV4 credential scope (it does not check
    // the signature): an unsigned request would reach its S3.
    let response = reqwest::Client::new()
        .post(url)
        .header("X-Amz-Date", "20261128T060000Z")
        .header(
            "Authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20261128/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"
            ),
        )
        .json(payload)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let error = response.headers().get("x-amz-function-error").is_some();
    let body = response.text().await.unwrap();
    assert!(
        status.is_success() && !error,
        "{function} failed ({status}): {body}\nmoto:\n{}",
        moto.log()
            .lines()
            .filter(|l| !l.contains("HTTP/1.1\" 200"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    body
}

/// Name → (status, output or error) of every execution, once `expected` exist and none
/// runs any more.
async fn wait_for_executions(
    moto: &MotoServer,
    machine_arn: &str,
    expected: usize,
    logs: &tempfile::TempDir,
) -> BTreeMap<String, (String, String)> {
    let sfn = moto.sfn();
    let deadline = Instant::now() + EXECUTIONS_TIMEOUT;
    loop {
        let list = sfn
            .list_executions()
            .state_machine_arn(machine_arn)
            .send()
            .await
            .unwrap();
        let mut out = BTreeMap::new();
        let mut running = 0;
        for e in list.executions() {
            let d = sfn
                .describe_execution()
                .execution_arn(e.execution_arn())
                .send()
                .await
                .unwrap();
            let status = d.status().as_str().to_string();
            running += usize::from(status == "RUNNING");
            let detail = d
                .output()
                .map(str::to_string)
                .or_else(|| {
                    d.error()
                        .map(|err| format!("{err}: {}", d.cause().unwrap_or_default()))
                })
                .unwrap_or_default();
            out.insert(e.name().to_string(), (status, detail));
        }
        if out.len() >= expected && running == 0 {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "executions still running after {EXECUTIONS_TIMEOUT:?}: {out:#?}\n{}\n{}",
            logs_of(logs),
            moto.log()
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The app `lexpipe process` builds, reading the uploads from moto.
async fn local_app(
    moto: &MotoServer,
    bucket: &str,
    env: &str,
    db: &TestDb,
    artefacts: &std::path::Path,
    settings: &[(&str, &str)],
    textract: aws_sdk_textract::Client,
) -> App {
    let mut vars = vec![
        ("DATABASE_URL", db.url.as_str()),
        ("DATABASE_MAX_CONNECTIONS", "3"),
    ];
    vars.extend_from_slice(settings);
    let config = config_with(env, &vars);
    let mut app = App::build(
        config,
        lexpipe::app::AppOptions {
            default_artefacts: Some(BlobLocation::Folder(artefacts.to_path_buf())),
            ..lexpipe::app::AppOptions::default()
        },
    )
    .await
    .unwrap();
    let store = S3Store::from_client(moto.client(), bucket, "").unwrap();
    app.sources =
        std::sync::Arc::new(SourceReader::new().with_bucket(bucket, std::sync::Arc::new(store)));
    app.textract = Some(textract);
    app
}

/// A one-page filing, rasterised and wrapped back into a PDF of its image: no text layer.
fn scanned_filing() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let born_digital = dir.path().join("order.pdf");
    std::fs::write(
        &born_digital,
        lexpipe::samples::text_only_pdf(&[
            "UNITED STATES DISTRICT COURT. ORDER granting the motion of Jane Roe to compel \
             discovery from Acme Holdings LLC, entered on May 2, 2024.",
        ]),
    )
    .unwrap();
    lexpipe::testing::scans::rasterise(&born_digital, 100, lexpipe::testing::scans::TextLayer::None)
        .expect("pdftoppm rasterises the filing (Debian: poppler-utils)")
}

/// Every row of `table` for the documents `ids_query` selects, as sorted JSON text, with
/// the document's content hash in place of its id and without the columns that say when
/// or under which claim it was written.
async fn rows(db: &TestDb, table: &str, ids_query: &str) -> Vec<String> {
    let id_column = if table == "documents" {
        "id"
    } else {
        "document_id"
    };
    let sql = format!(
        "SELECT (to_jsonb(t) - 'created_at' - 'updated_at' - 'fencing_token' - 'first_seen_at')::text AS row
           FROM {table} t WHERE t.{id_column} IN ({ids_query}) ORDER BY 1"
    );
    sqlx::query(&sql)
        .fetch_all(&db.pool)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.get::<String, _>("row"))
        .collect()
}

/// The functions' logs, for a failing assertion's message.
fn logs_of(logs: &tempfile::TempDir) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(logs.path()).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        out.push_str(&format!(
            "--- {}\n{}\n",
            entry.file_name().to_string_lossy(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    out
}
