//! `lexpipe`: process documents locally, inspect the cache, check health, benchmark.

mod bench;
mod bench_extract;
mod bench_locks;
mod bench_ocr;
mod bench_pipeline;
mod bench_ratelimit;
mod bench_workload;
mod html;
mod queue_cmds;
mod report;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use lexpipe::app::{App, AppOptions};
use lexpipe::config::{BlobLocation, Config};
use lexpipe::redis::{self as lredis, RedisHandle};
use lexpipe::runner::{self, RunOptions};

#[derive(Parser)]
#[command(
    name = "lexpipe",
    version,
    about = "Legal-document processing pipeline"
)]
struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every stage on PDFs: files, folders (searched for *.pdf), or
    /// s3://bucket/folder/ (every *.pdf object in it, recursively, except the
    /// pipeline's own processed/) or s3://bucket/key.pdf.
    Process {
        #[arg(required = true)]
        paths: Vec<String>,
        /// Folder for the per-document JSON files.
        #[arg(long, default_value = "out")]
        out: PathBuf,
        /// Print one machine-readable summary on stdout.
        #[arg(long)]
        json: bool,
        /// Documents processed at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Also write an HTML report (index.html, one page per document) into the folder.
        #[arg(long)]
        html: bool,
    },
    /// Write the HTML report of an output folder (index.html and one page per document)
    /// from its JSON files and the run summary, when there is one.
    Report {
        /// The folder `lexpipe process --out` wrote.
        #[arg(default_value = "out")]
        output_dir: PathBuf,
    },
    /// Inspect the result caches.
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// Check Redis: reachable, latency, memory, eviction policy, hit rates.
    /// Exit 0 healthy, 1 degraded, 2 unhealthy.
    Health {
        #[arg(long)]
        json: bool,
    },
    /// Apply the database migrations (DATABASE_URL).
    Migrate,
    /// Add documents to the work queue (the same content twice is one document).
    Enqueue {
        #[arg(required = true)]
        paths: Vec<String>,
        /// Higher is claimed first.
        #[arg(long, default_value_t = 0)]
        priority: i32,
        #[arg(long)]
        json: bool,
    },
    /// Claim and process queued documents; run as many as you like, anywhere.
    Worker {
        /// Items processed at once by this process.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Exit when nothing is queued or being processed.
        #[arg(long)]
        until_empty: bool,
        /// Lock and lease duration in seconds (renewed while an item is worked on).
        #[arg(long, default_value_t = 60)]
        lease_secs: u64,
        #[arg(long)]
        json: bool,
    },
    /// Process failed documents again (uuid or file, or --failed for all), once whatever
    /// failed them is fixed. They go back to the queue for `lexpipe worker`; with
    /// LEXPIPE_STATE_MACHINE_ARN set, the execution of each one's next attempt is started.
    /// Completed documents are never redone. Exit 1 when a named document could not be
    /// retried (unknown, or not failed).
    Retry {
        documents: Vec<String>,
        /// Every failed document.
        #[arg(
            long,
            conflicts_with = "documents",
            required_unless_present = "documents"
        )]
        failed: bool,
        /// With --failed: only those whose error is of this type (as `lexpipe status`
        /// shows it, e.g. LlmUnavailable).
        #[arg(long, requires = "failed")]
        error_type: Option<String>,
        /// Attempts each document gets.
        #[arg(long, default_value_t = 3)]
        attempts: i32,
        #[arg(long)]
        json: bool,
    },
    /// Progress of a document (uuid or file), or of all documents.
    Status {
        target: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        watch: bool,
    },
    /// Precision and recall of the entities in OUTPUT_DIR's document JSON files against a
    /// hand-labelled expected-entities file, per kind and overall, with misses and false
    /// positives. Reports only: exits 0 whatever the scores.
    Eval {
        /// The expected-entities file (e.g. tests/corpus/expected_entities.json).
        expected: PathBuf,
        /// The folder `lexpipe process --out` wrote.
        output_dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks that print figures.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum CacheCommand {
    /// Hits, misses and hit rate per namespace, summed over every process.
    Stats {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Raw redis-rs GET vs a lexpipe cache hit (decode included).
    Cache {
        #[arg(long)]
        json: bool,
        /// Sequential operations per measurement.
        #[arg(long, default_value_t = 20_000)]
        ops: usize,
        /// Concurrent tasks for the throughput measurement.
        #[arg(long, default_value_t = 64)]
        tasks: usize,
        /// Hits/s on the configured single node next to a Redis Cluster: the cluster at
        /// this URL, or with no URL one started with scripts/redis-cluster.sh (ports
        /// 7300-7305; run from the repository root).
        #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "URL")]
        cluster: Option<String>,
    },
    /// Claims per second and double-claims with 1, 16 and 64 workers on 10,000 items.
    Locks {
        #[arg(long)]
        json: bool,
        /// The same on the configured single node and on a Redis Cluster (as for `bench
        /// cache --cluster`).
        #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "URL")]
        cluster: Option<String>,
    },
    /// Rate-limit decisions per second, violations and utilisation.
    Ratelimit {
        #[arg(long)]
        json: bool,
    },
    /// Documents and pages per second through the ASL runner and direct step calls, cold
    /// and warm, the runner's overhead per document, and the peak RSS of `lexpipe process`
    /// on a generated batch of ~1 MB filings with scanned pages.
    Pipeline {
        #[arg(long)]
        json: bool,
        /// Documents processed at once by both paths.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Warm runs of each path (the median is reported).
        #[arg(long, default_value_t = 5)]
        warm_runs: usize,
        /// Write the generated batch into this folder and keep it (default: a temporary
        /// folder, removed afterwards).
        #[arg(long)]
        keep_batch: Option<PathBuf>,
    },
    /// Textract calls per job with 1, 4 and 16 pollers over a fake Textract, and local
    /// OCR pages/s serial vs parallel on rasterised corpus filings.
    Ocr {
        #[arg(long)]
        json: bool,
        /// Folder of the corpus filings to rasterise.
        #[arg(long, default_value = "tests/corpus")]
        corpus: PathBuf,
    },
    /// Paid LLM calls and dollars of three workloads (W1 a corpus, W2 the same files under
    /// new names delivered twice, W3 a re-run after a resolution version bump), with the
    /// caches on and off, against a fake OpenAI-compatible endpoint.
    Workload {
        #[arg(long)]
        json: bool,
        /// Simulated model time per LLM call.
        #[arg(long, default_value_t = 300)]
        llm_latency_ms: u64,
        /// Polls a Textract job answers IN_PROGRESS (1 s apart) before it succeeds: with
        /// the default 2, a job takes about 2 s.
        #[arg(long, default_value_t = 2)]
        textract_polls: u32,
    },
    /// Chunks/s and MB/s of text for the rule extractor, one thread, on a folder of PDFs.
    Extract {
        /// Folder of PDFs to read (the labelled corpus by default).
        #[arg(long, default_value = "tests/corpus")]
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lexpipe: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    tracing::info!("config: {}", config.describe());
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lexpipe: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli.command, config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lexpipe: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,lexpipe=info",
        _ => "debug,lexpipe=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Process {
            paths,
            out,
            json,
            concurrency,
            html,
        } => process(config, paths, out, json, concurrency, html).await,
        Command::Report { output_dir } => write_report(&output_dir),
        Command::Cache {
            command: CacheCommand::Stats { json },
        } => cache_stats(config, json).await,
        Command::Health { json } => health(config, json).await,
        Command::Bench {
            command:
                BenchCommand::Cache {
                    json,
                    ops,
                    tasks,
                    cluster: None,
                },
        } => bench::cache(config, json, ops, tasks).await,
        Command::Bench {
            command:
                BenchCommand::Cache {
                    json,
                    ops,
                    tasks,
                    cluster: Some(url),
                },
        } => bench::cache_cluster(config, json, ops, tasks, &url).await,
        Command::Bench {
            command:
                BenchCommand::Locks {
                    json,
                    cluster: None,
                },
        } => bench_locks::run(config, json).await,
        Command::Bench {
            command:
                BenchCommand::Locks {
                    json,
                    cluster: Some(url),
                },
        } => bench_locks::run_cluster(config, json, &url).await,
        Command::Bench {
            command: BenchCommand::Ratelimit { json },
        } => bench_ratelimit::run(config, json).await,
        Command::Bench {
            command:
                BenchCommand::Pipeline {
                    json,
                    concurrency,
                    warm_runs,
                    keep_batch,
                },
        } => bench_pipeline::run(config, json, concurrency, warm_runs, keep_batch).await,
        Command::Bench {
            command: BenchCommand::Ocr { json, corpus },
        } => bench_ocr::run(config, json, &corpus).await,
        Command::Bench {
            command:
                BenchCommand::Workload {
                    json,
                    llm_latency_ms,
                    textract_polls,
                },
        } => bench_workload::run(config, json, llm_latency_ms, textract_polls).await,
        Command::Bench {
            command: BenchCommand::Extract { dir, json },
        } => bench_extract::run(&config, &dir, json),
        Command::Status {
            target,
            all,
            json,
            watch,
        } => status::run(config, target, all, json, watch).await,
        Command::Eval {
            expected,
            output_dir,
            json,
        } => eval(&expected, &output_dir, json),
        Command::Retry {
            documents,
            failed: _,
            error_type,
            attempts,
            json,
        } => queue_cmds::retry(config, documents, error_type, attempts, json).await,
        Command::Migrate => queue_cmds::migrate(config).await,
        Command::Enqueue {
            paths,
            priority,
            json,
        } => queue_cmds::enqueue(config, paths, priority, json).await,
        Command::Worker {
            concurrency,
            until_empty,
            lease_secs,
            json,
        } => queue_cmds::worker(config, concurrency, until_empty, lease_secs, json).await,
    }
}

async fn process(
    config: Config,
    paths: Vec<String>,
    out: PathBuf,
    json: bool,
    concurrency: usize,
    html: bool,
) -> anyhow::Result<ExitCode> {
    // Fail fast on a missing local path, before connecting to anything.
    for p in paths.iter().filter(|p| !p.starts_with("s3://")) {
        runner::collect_inputs(std::slice::from_ref(&PathBuf::from(p)))?;
    }
    // Artefacts go beside the input bucket's `processed/` prefix for S3 input, else into
    // the output folder (LEXPIPE_ARTEFACTS overrides both).
    let default_artefacts = paths
        .iter()
        .find_map(|p| match BlobLocation::parse(p) {
            Ok(BlobLocation::S3 { bucket, .. }) => Some(BlobLocation::S3 {
                bucket,
                prefix: String::new(),
            }),
            _ => None,
        })
        .unwrap_or_else(|| BlobLocation::Folder(out.clone()));
    let app = App::build(
        config,
        AppOptions {
            default_artefacts: Some(default_artefacts),
            output_dir: Some(out.clone()),
            skip_database: false,
        },
    )
    .await?;
    let sources = runner::collect_sources(&app, &paths).await?;
    let opts = RunOptions {
        out_dir: out,
        concurrency,
        ..RunOptions::default()
    };
    let bar = report::progress_bar(sources.len());
    let on_progress = |p: runner::Progress<'_>| report::on_progress(&bar, p);
    let summary = runner::process_sources(&app, &sources, &opts, &on_progress).await?;
    bar.finish_and_clear();
    // Beside the document files, for `lexpipe report` to read back later.
    let summary_file = opts.out_dir.join(runner::SUMMARY_FILE);
    std::fs::write(&summary_file, serde_json::to_vec_pretty(&summary)?)
        .with_context(|| format!("writing {}", summary_file.display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        report::print_summary(&summary, &opts.out_dir);
    }
    if html {
        let index = html::write(&opts.out_dir, &html::load(&opts.out_dir)?)?;
        // stdout may carry the JSON summary: the report's path goes to stderr.
        eprintln!("report: {}", index.display());
    }
    Ok(if summary.all_failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `lexpipe report`: renders the folder's JSON files; needs neither Redis nor a database.
fn write_report(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let input = html::load(dir)?;
    for w in &input.warnings {
        eprintln!("lexpipe report: skipped {w}");
    }
    if input.documents.is_empty() && input.summary.is_none() {
        anyhow::bail!(
            "no document outputs or {} in {}",
            runner::SUMMARY_FILE,
            dir.display()
        );
    }
    let index = html::write(dir, &input)?;
    println!("{}", index.display());
    Ok(ExitCode::SUCCESS)
}

fn eval(
    expected: &std::path::Path,
    output_dir: &std::path::Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let report = lexpipe::eval::evaluate_paths(expected, output_dir)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(ExitCode::SUCCESS)
}

async fn connect_redis(config: &Config) -> anyhow::Result<RedisHandle> {
    if !config.redis.enabled {
        anyhow::bail!("Redis is disabled by configuration (LEXPIPE_REDIS_ENABLED=false)");
    }
    let handle = RedisHandle::new(config)?;
    handle.connect().await?;
    Ok(handle)
}

async fn cache_stats(config: Config, json: bool) -> anyhow::Result<ExitCode> {
    let handle = connect_redis(&config).await?;
    let backend = lredis::RedisBackend::new(handle, lredis::KeyBuilder::new(&config.env));
    let stats = lredis::CacheBackend::stats(&backend).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report::stats_json(&config, &stats))?
        );
    } else {
        report::print_stats(&config, &stats);
    }
    Ok(ExitCode::SUCCESS)
}

async fn health(config: Config, json: bool) -> anyhow::Result<ExitCode> {
    // The same check as the `health` Lambda function: Redis (even where the configuration
    // switched every Redis feature off), and the database when one is configured.
    let (app, database_problem) = lexpipe::health::app_for(config, AppOptions::default()).await?;
    let report = lexpipe::health::check(&app, database_problem).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report::print_health(&report);
    }
    Ok(ExitCode::from(report.status() as u8))
}
