//! `lexpipe bench workload`: paid API calls and dollars of three workloads, with the
//! caches on and off, against the fake endpoints (`lexpipe::testing`).
//!
//! - **W1**: process the corpus (the shipped sample documents, rendered into a temporary
//!   folder).
//! - **W2**: the same files uploaded again under new names, each event delivered twice
//!   (the two deliveries run at once).
//! - **W3**: the corpus again after bumping the resolution version. A version bump makes
//!   every `resolution` key and every artefact from resolution on miss; the bench does
//!   exactly that to a copy of the state (deletes the `resolution` cache entries and runs
//!   with a fresh artefact folder) instead of recompiling.
//!
//! **Caches on**: one app with the Redis caches and one artefact folder for the three
//! workloads, as a deployment has. **Caches off**: every document delivery runs in a
//! fresh app with no Redis cache and a fresh artefact folder, so nothing is shared
//! between deliveries — what the system without the caches paid.
//!
//! Paid calls are the requests the fake LLM received (`LEXPIPE_LLM_*` point at it, with
//! `--llm-latency-ms` of simulated model time per call, 300 by default); dollars are the
//! steps' cost ledgers at `LEXPIPE_PRICE_LLM_*`. The extractor is the LLM
//! (`LEXPIPE_EXTRACTOR=llm`) whatever the environment says, and the LLM rate limits are
//! lifted (the fake has none; the limiter is tested in `tests/llm.rs`).
//!
//! Textract: the corpus also holds scanned filings (samples rasterised without a text
//! layer, and with only an ECF stamp in it), uploaded to a local S3 (moto's server,
//! [`lexpipe::testing::local_s3`]; Textract reads S3 only) and delivered as `s3://`
//! sources. Their pages go to the fake Textract ([`lexpipe::testing::fake_textract`]),
//! whose jobs stay `IN_PROGRESS` for `--textract-polls` polls of 1 s each (2 s of job
//! time by default). Paid calls count what both fakes received; Textract jobs and pages
//! are reported beside them.
//!
//! Prints figures; never fails on them. The keys and folders it made are removed.

use std::collections::HashSet;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use lexpipe::app::{App, AppOptions};
use lexpipe::config::{BlobLocation, Config, ExtractorChoice, LlmConfig};
use lexpipe::pipeline::{self, StageTally};
use lexpipe::stages::DocumentRef;
use lexpipe::testing::fake_llm::FakeLlm;
use lexpipe::testing::fake_textract::{FakeConfig, FakeTextract};
use lexpipe::testing::local_s3::LocalS3;

/// The bucket the scanned part of the corpus is uploaded to.
const BUCKET: &str = "lexpipe-bench-workload";
/// Samples rasterised into scans (the first ones, by file name).
const SCANS: usize = 3;

/// Targets the issue sets for the caches.
const TARGET_W2_W3_REDUCTION: f64 = 0.95;
const TARGET_ALL_REDUCTION: f64 = 0.60;

/// One workload under one cache setting.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Figures {
    pub workload: &'static str,
    pub caches: &'static str,
    /// Document deliveries processed.
    pub deliveries: usize,
    /// Requests the paid endpoints received: the LLM's and Textract's.
    pub paid_calls: u64,
    /// Requests the LLM endpoint received (entities and structured).
    pub llm_calls: u64,
    /// Requests Textract received (starts and polls).
    pub textract_calls: u64,
    /// Textract jobs that ran (what is billed, by page).
    pub textract_jobs: u64,
    /// Pages Textract was sent.
    pub textract_pages: u64,
    /// Of which entity extraction of one chunk.
    pub entity_calls: u64,
    pub usd: f64,
    pub usd_avoided: f64,
    pub failed: usize,
    pub seconds: f64,
}

#[derive(serde::Serialize)]
struct Report {
    llm_latency_ms: u64,
    documents: usize,
    scanned_documents: usize,
    unique_chunks: usize,
    /// Textract jobs of W1–W3 with the caches on per scanned document (1.0 is the target).
    textract_jobs_per_scanned_document: f64,
    runs: Vec<Figures>,
    /// Paid calls with the caches on / off, W2 and W3 together.
    reduction_w2_w3: f64,
    /// The same over W1–W3.
    reduction_all: f64,
    /// Entity calls of W1–W3 with the caches on per unique chunk (1.0 is the target).
    entity_calls_per_unique_chunk: f64,
    targets: serde_json::Value,
}

/// Runs the three workloads with the caches on and off and prints the figures.
///
/// # Errors
/// Redis or a folder could not be set up.
pub async fn run(
    config: Config,
    json: bool,
    llm_latency_ms: u64,
    textract_polls: u32,
) -> anyhow::Result<ExitCode> {
    let s3 = LocalS3::start().await.map_err(|e| {
        anyhow::anyhow!("bench workload needs a local S3 for Textract's input: {e}")
    })?;
    let textract = FakeTextract::start(FakeConfig {
        in_progress_polls: textract_polls,
        s3: Some(s3.client()),
        ..FakeConfig::default()
    })
    .await;
    let paid = Paid {
        llm: FakeLlm::start().await,
        textract,
        s3: s3.client(),
    };
    let fake = &paid.llm;
    fake.set_latency(Duration::from_millis(llm_latency_ms));
    let mut config = config;
    config.ocr.poll_interval = Duration::from_secs(1);
    config.llm = LlmConfig {
        base_url: Some(url::Url::parse(&fake.base_url())?),
        extractor: ExtractorChoice::Llm,
        ..config.llm
    };
    let root = std::env::temp_dir().join(format!(
        "lexpipe-bench-workload-{:08x}",
        crate::bench_locks::random_seed() as u32
    ));
    std::fs::create_dir_all(&root)?;
    let env = format!(
        "{}-wlbench{:08x}",
        config.env,
        crate::bench_locks::random_seed() as u32
    );
    let result = measure(&config, &paid, &root, &env, llm_latency_ms).await;
    remove_keys(&config, &env).await;
    let _ = std::fs::remove_dir_all(&root);
    let report = result?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// The fake paid endpoints and the local S3 the scans live in.
struct Paid {
    llm: FakeLlm,
    textract: FakeTextract,
    s3: aws_sdk_s3::Client,
}

/// One delivery: a source (a path, or `s3://…`) and its content hash.
type Delivery = (String, String);

async fn measure(
    config: &Config,
    paid: &Paid,
    root: &Path,
    env: &str,
    llm_latency_ms: u64,
) -> anyhow::Result<Report> {
    // The corpus, and the same bytes under new names.
    let corpus_dir = root.join("corpus");
    let renamed_dir = root.join("renamed");
    std::fs::create_dir_all(&corpus_dir)?;
    std::fs::create_dir_all(&renamed_dir)?;
    let mut corpus: Vec<Delivery> = Vec::new();
    let mut renamed: Vec<Delivery> = Vec::new();
    let mut documents = lexpipe::samples::documents();
    documents.sort_by_key(|d| d.file_name);
    for doc in &documents {
        let bytes = lexpipe::samples::render_pdf(doc);
        let sha = lexpipe::text::sha256_hex(&bytes);
        let a = corpus_dir.join(doc.file_name);
        let b = renamed_dir.join(format!("upload-2-{}", doc.file_name));
        std::fs::write(&a, &bytes)?;
        std::fs::write(&b, &bytes)?;
        corpus.push((a.display().to_string(), sha.clone()));
        renamed.push((b.display().to_string(), sha));
    }
    // The scanned part: the first samples as scans (no text layer; an ECF stamp only),
    // in S3, and again under new keys.
    paid.s3.create_bucket().bucket(BUCKET).send().await?;
    let mut scanned = 0;
    for (i, doc) in documents.iter().take(SCANS).enumerate() {
        let layer = if i % 2 == 0 {
            lexpipe::testing::scans::TextLayer::None
        } else {
            lexpipe::testing::scans::TextLayer::EcfHeader
        };
        let scan = lexpipe::testing::scans::rasterise(&corpus_dir.join(doc.file_name), 150, layer)
            .map_err(|e| anyhow::anyhow!("making a scan needs pdftoppm (poppler-utils): {e}"))?;
        let sha = lexpipe::text::sha256_hex(&scan);
        for (key, list) in [
            (format!("scans/{}", doc.file_name), &mut corpus),
            (format!("uploads-2/scan-{}", doc.file_name), &mut renamed),
        ] {
            paid.s3
                .put_object()
                .bucket(BUCKET)
                .key(&key)
                .body(scan.clone().into())
                .send()
                .await?;
            list.push((format!("s3://{BUCKET}/{key}"), sha.clone()));
        }
        scanned += 1;
    }
    let w1: Vec<Vec<Delivery>> = corpus.iter().map(|d| vec![d.clone()]).collect();
    let w2: Vec<Vec<Delivery>> = renamed.iter().map(|d| vec![d.clone(), d.clone()]).collect();

    let mut runs = Vec::new();
    let mut unique_chunks = HashSet::new();
    // Caches on: one app, one artefact folder, one key prefix for all three workloads.
    let on_app = app(config, paid, env, true, &root.join("on")).await?;
    runs.push(
        workload(
            "W1",
            "on",
            paid,
            &w1,
            |_| async { Ok(on_app.clone()) },
            &mut unique_chunks,
        )
        .await?,
    );
    runs.push(
        workload(
            "W2",
            "on",
            paid,
            &w2,
            |_| async { Ok(on_app.clone()) },
            &mut HashSet::new(),
        )
        .await?,
    );
    delete_namespace(config, env, lexpipe::stages::resolve::NAMESPACE).await;
    // A resolution version bump leaves the OCR artefacts valid (their names carry the OCR
    // version, not the resolver's): the new folder starts with them.
    copy_ocr_artefacts(&root.join("on"), &root.join("on-w3"))?;
    let w3_app = app(config, paid, env, true, &root.join("on-w3")).await?;
    runs.push(
        workload(
            "W3",
            "on",
            paid,
            &w1,
            |_| async { Ok(w3_app.clone()) },
            &mut HashSet::new(),
        )
        .await?,
    );
    // Caches off: a fresh app and artefact folder per delivery.
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let fresh = |_: usize| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let folder = root.join(format!("off-{n}"));
        async move { app(config, paid, env, false, &folder).await }
    };
    for (name, deliveries) in [("W1", &w1), ("W2", &w2), ("W3", &w1)] {
        runs.push(workload(name, "off", paid, deliveries, fresh, &mut HashSet::new()).await?);
    }

    let calls = |caches: &str, names: &[&str]| -> u64 {
        runs.iter()
            .filter(|r| r.caches == caches && names.contains(&r.workload))
            .map(|r| r.paid_calls)
            .sum()
    };
    let reduction = |names: &[&str]| {
        let off = calls("off", names) as f64;
        if off == 0.0 {
            0.0
        } else {
            1.0 - calls("on", names) as f64 / off
        }
    };
    let entity_on: u64 = runs
        .iter()
        .filter(|r| r.caches == "on")
        .map(|r| r.entity_calls)
        .sum();
    let jobs_on: u64 = runs
        .iter()
        .filter(|r| r.caches == "on")
        .map(|r| r.textract_jobs)
        .sum();
    Ok(Report {
        llm_latency_ms,
        documents: corpus.len(),
        scanned_documents: scanned,
        textract_jobs_per_scanned_document: if scanned == 0 {
            0.0
        } else {
            jobs_on as f64 / scanned as f64
        },
        unique_chunks: unique_chunks.len(),
        reduction_w2_w3: reduction(&["W2", "W3"]),
        reduction_all: reduction(&["W1", "W2", "W3"]),
        entity_calls_per_unique_chunk: if unique_chunks.is_empty() {
            0.0
        } else {
            entity_on as f64 / unique_chunks.len() as f64
        },
        runs,
        targets: serde_json::json!({
            "reduction_w2_w3": TARGET_W2_W3_REDUCTION,
            "reduction_all": TARGET_ALL_REDUCTION,
            "entity_calls_per_unique_chunk": 1.0,
            "textract_jobs_per_scanned_document": 1.0,
        }),
    })
}

/// Processes every group of deliveries (the deliveries of one group at once, the groups
/// one after another), each delivery in the app `app_for` gives it.
async fn workload<F, Fut>(
    name: &'static str,
    caches: &'static str,
    paid: &Paid,
    groups: &[Vec<Delivery>],
    app_for: F,
    unique_chunks: &mut HashSet<String>,
) -> anyhow::Result<Figures>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<App>>,
{
    let fake = &paid.llm;
    let before = fake.requests();
    let before_entities = fake.requests_for(lexpipe::extract::llm::ENTITY_SCHEMA_NAME);
    let before_textract = paid.textract.calls().len() as u64;
    let before_jobs = paid.textract.jobs() as u64;
    let started = Instant::now();
    let mut figures = Figures {
        workload: name,
        caches,
        ..Figures::default()
    };
    for (i, group) in groups.iter().enumerate() {
        let mut apps = Vec::new();
        for _ in group {
            apps.push(app_for(i).await?);
        }
        let runs = group
            .iter()
            .zip(&apps)
            .map(|(delivery, app)| deliver(app, delivery));
        for result in futures::future::join_all(runs).await {
            figures.deliveries += 1;
            match result {
                Ok((tally, chunks)) => {
                    figures.usd += tally.usage.llm.usd + tally.usage.textract.usd;
                    figures.usd_avoided +=
                        tally.usage.llm.usd_avoided + tally.usage.textract.usd_avoided;
                    figures.textract_pages += tally.usage.textract.units_in;
                    unique_chunks.extend(chunks);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a delivery failed");
                    figures.failed += 1;
                }
            }
        }
    }
    figures.llm_calls = fake.requests() - before;
    figures.textract_calls = paid.textract.calls().len() as u64 - before_textract;
    figures.textract_jobs = paid.textract.jobs() as u64 - before_jobs;
    figures.paid_calls = figures.llm_calls + figures.textract_calls;
    figures.entity_calls =
        fake.requests_for(lexpipe::extract::llm::ENTITY_SCHEMA_NAME) - before_entities;
    figures.seconds = started.elapsed().as_secs_f64();
    Ok(figures)
}

/// One delivery of one file: its tally and its chunks' hashes.
async fn deliver(app: &App, delivery: &Delivery) -> anyhow::Result<(StageTally, Vec<String>)> {
    let (source, sha) = delivery;
    let doc = DocumentRef::new(sha, source);
    let mut tally = StageTally::default();
    let out = pipeline::analyse(app, &doc, &mut tally).await?;
    Ok((tally, out.chunks.into_iter().map(|c| c.sha256).collect()))
}

async fn app(
    config: &Config,
    paid: &Paid,
    env: &str,
    caches: bool,
    folder: &Path,
) -> anyhow::Result<App> {
    let mut config = config.clone();
    config.env = env.to_string();
    config.artefacts = None;
    config.redis.features.cache = caches && config.redis.features.cache;
    // The bench counts calls, not progress; and its limits are the fake's, not a
    // provider's: generous enough that no delivery waits for, or fails on, a grant.
    config.redis.features.state = false;
    config.rate_limit.llm_requests = lexpipe::config::Limit::per_minute(1_000_000);
    config.rate_limit.llm_tokens = lexpipe::config::Limit::per_minute(1_000_000_000);
    let mut app = App::build(
        config,
        AppOptions {
            default_artefacts: Some(BlobLocation::Folder(folder.to_path_buf())),
            output_dir: None,
            skip_database: true,
        },
    )
    .await?;
    // Textract for the pages that need OCR, through the fake (set after the build, which
    // would otherwise make a client from the environment's AWS settings).
    let mut config = (*app.config).clone();
    config.ocr.engine = Some(lexpipe::config::OcrEngineChoice::Textract);
    app.config = std::sync::Arc::new(config);
    app.textract = Some(paid.textract.client());
    let bucket = lexpipe::store::blob::S3Store::from_client(paid.s3.clone(), BUCKET, "")?;
    app.sources = std::sync::Arc::new(
        lexpipe::store::source::SourceReader::new()
            .with_bucket(BUCKET, std::sync::Arc::new(bucket)),
    );
    Ok(app)
}

/// Copies the OCR step artefacts (`processed/<sha>/ocr-*`) of the folder `from` into `to`.
fn copy_ocr_artefacts(from: &Path, to: &Path) -> std::io::Result<()> {
    let processed = from.join("processed");
    if !processed.exists() {
        return Ok(());
    }
    for doc in std::fs::read_dir(&processed)? {
        let doc = doc?;
        for file in std::fs::read_dir(doc.path())? {
            let file = file?;
            if file.file_name().to_string_lossy().starts_with("ocr-") {
                let target = to.join("processed").join(doc.file_name());
                std::fs::create_dir_all(&target)?;
                std::fs::copy(file.path(), target.join(file.file_name()))?;
            }
        }
    }
    Ok(())
}

/// The keys of `env` matching `pattern` (every primary of a cluster).
async fn scan(config: &Config, pattern: &str) -> Vec<String> {
    let Ok(handle) = lexpipe::redis::RedisHandle::new(config) else {
        return Vec::new();
    };
    handle.scan_keys(pattern).await.unwrap_or_default()
}

async fn delete(config: &Config, keys: Vec<String>) {
    if keys.is_empty() {
        return;
    }
    let Ok(handle) = lexpipe::redis::RedisHandle::new(config) else {
        return;
    };
    // On a cluster the client splits a multi-key DEL by slot.
    for batch in keys.chunks(500) {
        let _ = handle
            .run(false, |mut c| async move {
                redis::cmd("DEL")
                    .arg(batch)
                    .query_async::<i64>(&mut c)
                    .await
            })
            .await;
    }
}

/// Deletes the cache entries of `namespace` under `env` (what a version bump makes miss).
async fn delete_namespace(config: &Config, env: &str, namespace: &str) {
    let keys = scan(config, &format!("lexpipe:{env}:{namespace}:*")).await;
    delete(config, keys).await;
}

/// Deletes every key under `env`.
async fn remove_keys(config: &Config, env: &str) {
    let keys = scan(config, &format!("lexpipe:{env}:*")).await;
    delete(config, keys).await;
}

fn print_table(r: &Report) {
    println!(
        "workloads over {} documents ({} of them scanned, read by Textract; {} unique chunks), LLM latency {} ms per call",
        r.documents, r.scanned_documents, r.unique_chunks, r.llm_latency_ms
    );
    println!(
        "{:<9} {:<7} {:>10} {:>10} {:>9} {:>13} {:>9} {:>7} {:>7} {:>10} {:>12} {:>7} {:>8}",
        "workload",
        "caches",
        "deliveries",
        "paid calls",
        "LLM",
        "entity calls",
        "Textract",
        "jobs",
        "pages",
        "usd",
        "usd avoided",
        "failed",
        "seconds"
    );
    for f in &r.runs {
        println!(
            "{:<9} {:<7} {:>10} {:>10} {:>9} {:>13} {:>9} {:>7} {:>7} {:>10.5} {:>12.5} {:>7} {:>8.1}",
            f.workload,
            f.caches,
            f.deliveries,
            f.paid_calls,
            f.llm_calls,
            f.entity_calls,
            f.textract_calls,
            f.textract_jobs,
            f.textract_pages,
            f.usd,
            f.usd_avoided,
            f.failed,
            f.seconds
        );
    }
    println!();
    println!(
        "paid calls saved by the caches: W2+W3 {:.1}% (target ≥ {:.0}%), W1–W3 {:.1}% (target ≥ {:.0}%)",
        100.0 * r.reduction_w2_w3,
        100.0 * TARGET_W2_W3_REDUCTION,
        100.0 * r.reduction_all,
        100.0 * TARGET_ALL_REDUCTION
    );
    println!(
        "with the caches on: entity calls per unique chunk {:.2} (target 1.00); Textract jobs per scanned document {:.2} (target 1.00)",
        r.entity_calls_per_unique_chunk, r.textract_jobs_per_scanned_document
    );
}
