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
//! Textract: the local OCR reads the PDF text layer, so no Textract call is made here.
//! When the Textract fake (issue 8) is in `lexpipe::testing`, start it in
//! [`run`] next to the LLM's, point `AWS_ENDPOINT_URL_TEXTRACT` at it and add its request
//! count to [`Figures::paid_calls`]: the workloads and the on/off comparison stay as they
//! are.
//!
//! Prints figures; never fails on them. The keys and folders it made are removed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use lexpipe::app::{App, AppOptions};
use lexpipe::config::{BlobLocation, Config, ExtractorChoice, LlmConfig};
use lexpipe::pipeline::{self, StageTally};
use lexpipe::stages::DocumentRef;
use lexpipe::testing::fake_llm::FakeLlm;

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
    /// Requests the LLM endpoint received (entities and structured).
    pub paid_calls: u64,
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
    unique_chunks: usize,
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
pub async fn run(config: Config, json: bool, llm_latency_ms: u64) -> anyhow::Result<ExitCode> {
    let fake = FakeLlm::start().await;
    fake.set_latency(Duration::from_millis(llm_latency_ms));
    let mut config = config;
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
    let result = measure(&config, &fake, &root, &env, llm_latency_ms).await;
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

async fn measure(
    config: &Config,
    fake: &FakeLlm,
    root: &Path,
    env: &str,
    llm_latency_ms: u64,
) -> anyhow::Result<Report> {
    // The corpus, and the same bytes under new names.
    let corpus_dir = root.join("corpus");
    let renamed_dir = root.join("renamed");
    std::fs::create_dir_all(&corpus_dir)?;
    std::fs::create_dir_all(&renamed_dir)?;
    let mut corpus = Vec::new();
    let mut renamed = Vec::new();
    for doc in lexpipe::samples::documents() {
        let bytes = lexpipe::samples::render_pdf(&doc);
        let a = corpus_dir.join(doc.file_name);
        let b = renamed_dir.join(format!("upload-2-{}", doc.file_name));
        std::fs::write(&a, &bytes)?;
        std::fs::write(&b, &bytes)?;
        corpus.push(a);
        renamed.push(b);
    }
    let w1: Vec<Vec<PathBuf>> = corpus.iter().map(|p| vec![p.clone()]).collect();
    let w2: Vec<Vec<PathBuf>> = renamed.iter().map(|p| vec![p.clone(), p.clone()]).collect();

    let mut runs = Vec::new();
    let mut unique_chunks = HashSet::new();
    // Caches on: one app, one artefact folder, one key prefix for all three workloads.
    let on_app = app(config, env, true, &root.join("on")).await?;
    runs.push(
        workload(
            "W1",
            "on",
            fake,
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
            fake,
            &w2,
            |_| async { Ok(on_app.clone()) },
            &mut HashSet::new(),
        )
        .await?,
    );
    delete_namespace(config, env, lexpipe::stages::resolve::NAMESPACE).await;
    let w3_app = app(config, env, true, &root.join("on-w3")).await?;
    runs.push(
        workload(
            "W3",
            "on",
            fake,
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
        async move { app(config, env, false, &folder).await }
    };
    for (name, deliveries) in [("W1", &w1), ("W2", &w2), ("W3", &w1)] {
        runs.push(workload(name, "off", fake, deliveries, fresh, &mut HashSet::new()).await?);
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
    Ok(Report {
        llm_latency_ms,
        documents: corpus.len(),
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
        }),
    })
}

/// Processes every group of deliveries (the deliveries of one group at once, the groups
/// one after another), each delivery in the app `app_for` gives it.
async fn workload<F, Fut>(
    name: &'static str,
    caches: &'static str,
    fake: &FakeLlm,
    groups: &[Vec<PathBuf>],
    app_for: F,
    unique_chunks: &mut HashSet<String>,
) -> anyhow::Result<Figures>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<App>>,
{
    let before = fake.requests();
    let before_entities = fake.requests_for(lexpipe::extract::llm::ENTITY_SCHEMA_NAME);
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
            .map(|(path, app)| deliver(app, path));
        for result in futures::future::join_all(runs).await {
            figures.deliveries += 1;
            match result {
                Ok((tally, chunks)) => {
                    figures.usd += tally.usage.llm.usd;
                    figures.usd_avoided += tally.usage.llm.usd_avoided;
                    unique_chunks.extend(chunks);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a delivery failed");
                    figures.failed += 1;
                }
            }
        }
    }
    figures.paid_calls = fake.requests() - before;
    figures.entity_calls =
        fake.requests_for(lexpipe::extract::llm::ENTITY_SCHEMA_NAME) - before_entities;
    figures.seconds = started.elapsed().as_secs_f64();
    Ok(figures)
}

/// One delivery of one file: its tally and its chunks' hashes.
async fn deliver(app: &App, path: &Path) -> anyhow::Result<(StageTally, Vec<String>)> {
    let bytes = std::fs::read(path)?;
    let doc = DocumentRef::new(
        &lexpipe::text::sha256_hex(&bytes),
        &path.display().to_string(),
    );
    let mut tally = StageTally::default();
    let out = pipeline::analyse(app, &doc, &mut tally).await?;
    Ok((tally, out.chunks.into_iter().map(|c| c.sha256).collect()))
}

async fn app(config: &Config, env: &str, caches: bool, folder: &Path) -> anyhow::Result<App> {
    let mut config = config.clone();
    config.env = env.to_string();
    config.artefacts = None;
    config.redis.features.cache = caches && config.redis.features.cache;
    // The bench counts calls, not progress; and its limits are the fake's, not a
    // provider's: generous enough that no delivery waits for, or fails on, a grant.
    config.redis.features.state = false;
    config.rate_limit.llm_requests = lexpipe::config::Limit::per_minute(1_000_000);
    config.rate_limit.llm_tokens = lexpipe::config::Limit::per_minute(1_000_000_000);
    Ok(App::build(
        config,
        AppOptions {
            default_artefacts: Some(BlobLocation::Folder(folder.to_path_buf())),
            output_dir: None,
            skip_database: true,
        },
    )
    .await?)
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
    // One key per DEL: a cluster takes no multi-key command across slots.
    for key in &keys {
        let _ = handle
            .run(false, |mut c| async move {
                redis::cmd("DEL").arg(key).query_async::<i64>(&mut c).await
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
        "workloads over {} documents ({} unique chunks), LLM latency {} ms per call",
        r.documents, r.unique_chunks, r.llm_latency_ms
    );
    println!(
        "{:<9} {:<7} {:>10} {:>10} {:>13} {:>10} {:>12} {:>7} {:>8}",
        "workload",
        "caches",
        "deliveries",
        "paid calls",
        "entity calls",
        "usd",
        "usd avoided",
        "failed",
        "seconds"
    );
    for f in &r.runs {
        println!(
            "{:<9} {:<7} {:>10} {:>10} {:>13} {:>10.5} {:>12.5} {:>7} {:>8.1}",
            f.workload,
            f.caches,
            f.deliveries,
            f.paid_calls,
            f.entity_calls,
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
        "entity calls per unique chunk with the caches on: {:.2} (target 1.00)",
        r.entity_calls_per_unique_chunk
    );
}
