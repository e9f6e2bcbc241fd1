//! `lexpipe bench pipeline`: throughput of a batch through the ASL runner and through
//! direct step calls, cold and warm, the runner's overhead per document, and the peak
//! memory of `lexpipe process` on a batch of large filings.
//!
//! The batch is generated at bench time in a temporary folder (nothing is committed):
//! [`DOCUMENTS`] filings of [`TEXT_PAGES`] pages of legal text each with [`SCANNED_PAGES`]
//! image-only "scanned" pages spread through them ([`samples::long_filing_pdf`]), about
//! 1 MB each.
//!
//! - **ASL runner**: [`runner::process_sources`], what `lexpipe process` runs: every
//!   document through `statemachine/pipeline.asl.json`.
//! - **Direct**: [`runner::identify`] then [`pipeline::process_direct`]: the same steps
//!   (document state, analysis, persist) called in order without the interpreter, at the
//!   same concurrency.
//!
//! Each path gets its own Redis key prefix (a fresh `LEXPIPE_ENV`) and its own artefact and
//! output folders, so its first run is **cold** (everything computed) and the following
//! runs are **warm** (every step reused: Redis cache hits, artefacts found, JSON output
//! unchanged). Warm runs alternate between the paths and the median of each is reported;
//! the runner's overhead is `(ASL warm − direct warm) / documents`. Neither path opens the
//! database: results go to JSON files only.
//!
//! **Peak RSS** is that of a separate `lexpipe process <batch> --out <tmp>` child (this
//! executable, cold, with a fresh prefix and no database): its `VmHWM`, polled from
//! `/proc/<pid>/status` until it exits (see `run_measured` for why not `ru_maxrss`), once
//! at `process`'s default concurrency and once at 1. Prints figures; never fails on them. The keys and files it made are removed.

use std::path::{Path, PathBuf};

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use lexpipe::app::{App, AppOptions};
use lexpipe::config::{BlobLocation, Config};
use lexpipe::pipeline::{self, StageTally};
use lexpipe::redis::{KeyBuilder, RedisHandle};
use lexpipe::runner::{self, RunOptions};
use lexpipe::samples;

/// Documents in the batch.
pub const DOCUMENTS: usize = 12;
/// Pages of text per document.
pub const TEXT_PAGES: usize = 40;
/// Image-only pages per document.
pub const SCANNED_PAGES: usize = 2;
/// What the runner may add per warm document.
const TARGET_OVERHEAD_MS: f64 = 2.0;
/// Peak RSS allowed for the batch.
const TARGET_PEAK_RSS_MB: f64 = 200.0;
/// Measured with the earlier pipeline that held every stage's data in memory.
const ANCHOR_PEAK_RSS_MB: f64 = 300.0;

#[derive(serde::Serialize)]
struct Batch {
    documents: usize,
    bytes: u64,
    pages: usize,
    scanned_pages: usize,
    largest_document_bytes: u64,
}

/// One path, cold or warm.
#[derive(serde::Serialize)]
struct Run {
    /// `asl` or `direct`.
    path: &'static str,
    /// `cold` or `warm` (warm: the median of the warm runs).
    phase: &'static str,
    seconds: f64,
    documents_per_sec: f64,
    pages_per_sec: f64,
    /// Step calls that computed their result (0 when warm).
    steps_computed: u64,
    /// Step calls that reused one.
    steps_reused: u64,
    /// Documents that failed (should be 0).
    failed: usize,
}

#[derive(serde::Serialize)]
struct Rss {
    concurrency: usize,
    /// The child's own peak (`VmHWM`, polled every 2 ms).
    peak_rss_mb: f64,
    seconds: f64,
    documents_completed: usize,
    exit_code: Option<i32>,
}

#[derive(serde::Serialize)]
struct Figures {
    cores: usize,
    concurrency: usize,
    warm_runs: usize,
    batch: Batch,
    runs: Vec<Run>,
    /// Every warm run of each path, in seconds, in order.
    warm_seconds_asl: Vec<f64>,
    warm_seconds_direct: Vec<f64>,
    asl_overhead_ms_per_document: f64,
    target_overhead_ms_per_document: f64,
    peak_rss: Vec<Rss>,
    target_peak_rss_mb: f64,
    anchor_peak_rss_mb: f64,
}

/// Generates the batch, runs both paths cold and warm and the memory measurement, and
/// prints a table (or JSON).
///
/// # Errors
/// The batch cannot be written, Redis or the artefact folder cannot be set up, or the
/// child process cannot be started; never because of a figure.
pub async fn run(
    config: Config,
    json: bool,
    concurrency: usize,
    warm_runs: usize,
    keep_batch: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let concurrency = concurrency.max(1);
    let warm_runs = warm_runs.max(1);
    let root = std::env::temp_dir().join(format!(
        "lexpipe-bench-pipeline-{:016x}",
        crate::bench_locks::random_seed()
    ));
    let batch_dir = keep_batch.unwrap_or_else(|| root.join("batch"));
    let result = measure(&config, &root, &batch_dir, concurrency, warm_runs).await;
    let _ = std::fs::remove_dir_all(&root);
    let figures = result?;
    if json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        print_table(&figures);
    }
    Ok(ExitCode::SUCCESS)
}

async fn measure(
    config: &Config,
    root: &Path,
    batch_dir: &Path,
    concurrency: usize,
    warm_runs: usize,
) -> anyhow::Result<Figures> {
    let batch = write_batch(batch_dir)?;
    let sources = runner::collect_inputs(&[batch_dir.to_path_buf()])?
        .into_iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>();

    let asl_env = fresh_env(config, "asl");
    let direct_env = fresh_env(config, "dir");
    let rss_envs = [fresh_env(config, "rss"), fresh_env(config, "rs1")];
    let outcome = async {
        let asl = bench_app(config, &asl_env, &root.join("asl")).await?;
        let direct = bench_app(config, &direct_env, &root.join("direct")).await?;
        let opts = RunOptions {
            out_dir: root.join("asl"),
            concurrency,
            ..RunOptions::default()
        };

        let mut runs = Vec::new();
        let cold_asl = asl_run(&asl, &sources, &opts).await?;
        runs.push(cold_asl.row("asl", "cold", &batch));
        let cold_direct = direct_run(&direct, &sources, concurrency).await?;
        runs.push(cold_direct.row("direct", "cold", &batch));

        let mut warm_asl = Vec::new();
        let mut warm_direct = Vec::new();
        for _ in 0..warm_runs {
            warm_asl.push(asl_run(&asl, &sources, &opts).await?);
            warm_direct.push(direct_run(&direct, &sources, concurrency).await?);
        }
        let asl_median = median_timing(&warm_asl);
        let direct_median = median_timing(&warm_direct);
        runs.push(asl_median.row("asl", "warm", &batch));
        runs.push(direct_median.row("direct", "warm", &batch));
        let overhead_ms = (asl_median.elapsed.as_secs_f64() - direct_median.elapsed.as_secs_f64())
            * 1000.0
            / batch.documents as f64;

        let mut peak_rss = Vec::new();
        for (env, c) in rss_envs.iter().zip([RunOptions::default().concurrency, 1]) {
            peak_rss.push(child_rss(batch_dir, &root.join(format!("rss-{c}")), env, c).await?);
        }
        anyhow::Ok(Figures {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            concurrency,
            warm_runs,
            warm_seconds_asl: warm_asl.iter().map(|t| t.elapsed.as_secs_f64()).collect(),
            warm_seconds_direct: warm_direct
                .iter()
                .map(|t| t.elapsed.as_secs_f64())
                .collect(),
            batch,
            runs,
            asl_overhead_ms_per_document: overhead_ms,
            target_overhead_ms_per_document: TARGET_OVERHEAD_MS,
            peak_rss,
            target_peak_rss_mb: TARGET_PEAK_RSS_MB,
            anchor_peak_rss_mb: ANCHOR_PEAK_RSS_MB,
        })
    }
    .await;
    for env in [&asl_env, &direct_env].into_iter().chain(&rss_envs) {
        if let Err(e) = delete_env_keys(config, env).await {
            eprintln!("lexpipe: could not remove the bench keys of {env}: {e:#}");
        }
    }
    outcome
}

/// Writes the batch into `dir`: [`DOCUMENTS`] long filings with scans.
fn write_batch(dir: &Path) -> anyhow::Result<Batch> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut batch = Batch {
        documents: DOCUMENTS,
        bytes: 0,
        pages: 0,
        scanned_pages: DOCUMENTS * SCANNED_PAGES,
        largest_document_bytes: 0,
    };
    for i in 0..DOCUMENTS {
        let bytes = samples::long_filing_pdf(i as u64 + 1, TEXT_PAGES, SCANNED_PAGES);
        batch.pages += lexpipe::ocr::page_count_hint(&bytes).unwrap_or(0);
        batch.bytes += bytes.len() as u64;
        batch.largest_document_bytes = batch.largest_document_bytes.max(bytes.len() as u64);
        let path = dir.join(format!("filing-{:02}.pdf", i + 1));
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(batch)
}

/// `{env}-pipebench-{tag}{random}`: a key prefix no other run uses.
fn fresh_env(config: &Config, tag: &str) -> String {
    format!(
        "{}-pipebench-{tag}{:08x}",
        config.env,
        crate::bench_locks::random_seed() as u32
    )
}

/// An app like `lexpipe process`'s under its own key prefix, with artefacts and output
/// files in `folder` (whatever `LEXPIPE_ARTEFACTS` says) and no database.
async fn bench_app(config: &Config, env: &str, folder: &Path) -> anyhow::Result<App> {
    let mut config = config.clone();
    config.env = env.to_string();
    config.artefacts = None;
    let app = App::build(
        config,
        AppOptions {
            default_artefacts: Some(BlobLocation::Folder(folder.to_path_buf())),
            output_dir: Some(folder.to_path_buf()),
            skip_database: true,
        },
    )
    .await?;
    Ok(app)
}

/// One run of one path.
struct Timing {
    elapsed: Duration,
    computed: u64,
    reused: u64,
    failed: usize,
}

impl Timing {
    fn row(&self, path: &'static str, phase: &'static str, batch: &Batch) -> Run {
        let secs = self.elapsed.as_secs_f64().max(f64::EPSILON);
        Run {
            path,
            phase,
            seconds: secs,
            documents_per_sec: batch.documents as f64 / secs,
            pages_per_sec: batch.pages as f64 / secs,
            steps_computed: self.computed,
            steps_reused: self.reused,
            failed: self.failed,
        }
    }
}

/// The run of median duration (the upper one of an even count).
fn median_timing(runs: &[Timing]) -> &Timing {
    let mut sorted: Vec<&Timing> = runs.iter().collect();
    sorted.sort_by_key(|t| t.elapsed);
    sorted[sorted.len() / 2]
}

async fn asl_run(app: &App, sources: &[String], opts: &RunOptions) -> anyhow::Result<Timing> {
    let start = Instant::now();
    let summary = runner::process_sources(app, sources, opts, &|_| {}).await?;
    let elapsed = start.elapsed();
    Ok(Timing {
        elapsed,
        computed: summary.stages.values().map(|s| s.computed).sum(),
        reused: summary.stages.values().map(|s| s.cached).sum(),
        failed: summary
            .documents
            .iter()
            .filter(|d| d.status != lexpipe::model::DocumentStatus::Completed)
            .count(),
    })
}

async fn direct_run(app: &App, sources: &[String], concurrency: usize) -> anyhow::Result<Timing> {
    let start = Instant::now();
    let results: Vec<Option<StageTally>> = futures::stream::iter(sources)
        .map(|source| async move {
            let document = match runner::identify(app, source).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(source, "document failed: {e}");
                    return None;
                }
            };
            let mut tally = StageTally::default();
            match pipeline::process_direct(app, &document, &mut tally).await {
                Ok(_) => Some(tally),
                Err(e) => {
                    tracing::warn!(source, "document failed: {e}");
                    None
                }
            }
        })
        .buffered(concurrency)
        .collect()
        .await;
    let elapsed = start.elapsed();
    app.cache.flush_metrics().await;
    let mut total = StageTally::default();
    for t in results.iter().flatten() {
        total.merge(t);
    }
    Ok(Timing {
        elapsed,
        computed: total.stages.values().map(|w| w.computed).sum(),
        reused: total.stages.values().map(|w| w.reused).sum(),
        failed: results.iter().filter(|r| r.is_none()).count(),
    })
}

/// Runs `lexpipe process <batch> --out <out> --json --concurrency <c>` as a child of this
/// executable and reads its peak RSS.
async fn child_rss(batch: &Path, out: &Path, env: &str, concurrency: usize) -> anyhow::Result<Rss> {
    let exe = std::env::current_exe().context("finding this executable")?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("process")
        .arg(batch)
        .arg("--out")
        .arg(out)
        .arg("--json")
        .arg("--concurrency")
        .arg(concurrency.to_string())
        .env("LEXPIPE_ENV", env)
        .env_remove("LEXPIPE_ARTEFACTS")
        .env_remove("DATABASE_URL")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped());
    let Measured {
        elapsed,
        stdout,
        exit_code,
        hwm_kb,
    } = tokio::task::spawn_blocking(move || run_measured(command)).await??;
    let completed = serde_json::from_slice::<serde_json::Value>(&stdout)
        .ok()
        .and_then(|v| {
            v.get("documents").and_then(|d| d.as_array()).map(|docs| {
                docs.iter()
                    .filter(|d| d.get("status").and_then(|s| s.as_str()) == Some("completed"))
                    .count()
            })
        })
        .unwrap_or(0);
    Ok(Rss {
        concurrency,
        peak_rss_mb: hwm_kb as f64 / 1024.0,
        seconds: elapsed.as_secs_f64(),
        documents_completed: completed,
        exit_code,
    })
}

/// What one measured child run gave.
struct Measured {
    elapsed: Duration,
    stdout: Vec<u8>,
    exit_code: Option<i32>,
    /// The child's own peak resident set (`VmHWM`), KiB.
    hwm_kb: i64,
}

/// Runs `command` to its end, polling its `/proc/<pid>/status` every 2 ms for the largest
/// `VmHWM` (the child's own peak resident set). `ru_maxrss` from `wait4` is not used: an
/// exec'd child inherits the high-water mark of the address space it had before `exec`
/// (this process's), so it would report this bench's peak, not the child's.
fn run_measured(mut command: std::process::Command) -> anyhow::Result<Measured> {
    use std::io::Read as _;
    let start = Instant::now();
    let mut child = command.spawn().context("starting lexpipe process")?;
    let reader = child.stdout.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = pipe.read_to_end(&mut out);
            out
        })
    });
    let status_file = format!("/proc/{}/status", child.id());
    let mut hwm_kb = 0i64;
    let status = loop {
        // Read before reaping: once reaped, the status file is gone.
        if let Some(kb) = std::fs::read_to_string(&status_file)
            .ok()
            .as_deref()
            .and_then(vm_hwm_kb)
        {
            hwm_kb = hwm_kb.max(kb);
        }
        if let Some(status) = child.try_wait().context("waiting for lexpipe process")? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let stdout = reader
        .map(|r| r.join().unwrap_or_default())
        .unwrap_or_default();
    Ok(Measured {
        elapsed: start.elapsed(),
        stdout,
        exit_code: status.code(),
        hwm_kb,
    })
}

/// `VmHWM` in KiB from the text of `/proc/<pid>/status`.
fn vm_hwm_kb(status: &str) -> Option<i64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Removes every key under `lexpipe:{env}:`.
async fn delete_env_keys(config: &Config, env: &str) -> anyhow::Result<()> {
    if !config.redis.enabled {
        return Ok(());
    }
    let handle = RedisHandle::new(config)?;
    handle.connect().await?;
    crate::bench_locks::delete_prefix(&handle, &KeyBuilder::new(env)).await
}

fn print_table(f: &Figures) {
    let b = &f.batch;
    println!(
        "batch: {} generated filings, {:.1} MB ({:.2} MB largest), {} pages of which {} scanned \
         (image-only); concurrency {}, {} cores; warm = median of {} runs",
        b.documents,
        b.bytes as f64 / 1e6,
        b.largest_document_bytes as f64 / 1e6,
        b.pages,
        b.scanned_pages,
        f.concurrency,
        f.cores,
        f.warm_runs
    );
    println!(
        "{:<7} {:<5} {:>9} {:>8} {:>9} {:>9} {:>8} {:>7}",
        "path", "run", "seconds", "docs/s", "pages/s", "computed", "reused", "failed"
    );
    for r in &f.runs {
        println!(
            "{:<7} {:<5} {:>9.3} {:>8.1} {:>9.0} {:>9} {:>8} {:>7}",
            r.path,
            r.phase,
            r.seconds,
            r.documents_per_sec,
            r.pages_per_sec,
            r.steps_computed,
            r.steps_reused,
            r.failed
        );
    }
    println!(
        "ASL runner overhead when warm: {:.2} ms/document (target < {:.0} ms); \
         direct = identify + document state + every step incl. persist, no interpreter",
        f.asl_overhead_ms_per_document, f.target_overhead_ms_per_document
    );
    let secs = |v: &[f64]| {
        v.iter()
            .map(|s| format!("{:.3}", s))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!("  warm runs (s): asl {}", secs(&f.warm_seconds_asl));
    println!("              direct {}", secs(&f.warm_seconds_direct));
    println!(
        "peak RSS of `lexpipe process` on the batch (cold, separate process; target ≤ {:.0} MB, \
         ~{:.0} MB with the in-memory pipeline):",
        f.target_peak_rss_mb, f.anchor_peak_rss_mb
    );
    for r in &f.peak_rss {
        println!(
            "  concurrency {:>2}: {:>6.1} MB (VmHWM)  in {:.1} s, {}/{} documents completed{}",
            r.concurrency,
            r.peak_rss_mb,
            r.seconds,
            r.documents_completed,
            b.documents,
            match r.exit_code {
                Some(0) => String::new(),
                Some(c) => format!(", exit code {c}"),
                None => ", killed by a signal".to_string(),
            }
        );
    }
}
