//! `lexpipe bench ocr`: what OCR costs.
//!
//! 1. **Textract calls per job with 1, 4 and 16 pollers**, over the fake Textract
//!    ([`lexpipe::testing::fake_textract`], a real HTTP server the SDK talks to) and the
//!    configured Redis: one job that stays `IN_PROGRESS` for a few polls, N tasks polling
//!    it every interval from random offsets (what retried Lambdas and duplicate executions
//!    do), then each fetching its text through the result cache. Target: the calls do not
//!    grow with the pollers (one start, one status check per interval, one result fetch).
//! 2. **Local OCR pages/s**, Tesseract over pages rendered from rasterised corpus filings,
//!    one page at a time and then one page per core.
//! 3. **OCR's share of `lexpipe process` wall time** on those scans: the same batch run with
//!    Tesseract and with `LEXPIPE_OCR_ENGINE=none` (in-process cache, fresh artefacts).
//!
//! Prints figures; never fails on them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lexpipe::app::{App, AppOptions};
use lexpipe::config::{BlobLocation, Config, OcrEngineChoice};
use lexpipe::cost::Meter;
use lexpipe::ocr::subset::PageMap;
use lexpipe::ocr::tesseract::Tools;
use lexpipe::ocr::textract::{Engine, JobRequest};
use lexpipe::redis::{CacheSpec, KeyPart};
use lexpipe::runner::{self, RunOptions};
use lexpipe::testing::fake_textract::{FakeConfig, FakeTextract, GET, START};
use lexpipe::testing::scans::{self, TextLayer};

const POLLERS: [usize; 3] = [1, 4, 16];
/// Polls a job stays `IN_PROGRESS`.
const IN_PROGRESS_POLLS: u32 = 3;
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Corpus filings rasterised for the local OCR figures (6 pages).
const SCANS: [&str; 3] = ["ca7_3.pdf", "ca3_003112692106.pdf", "ca6_1-3.pdf"];
const SCAN_DPI: u32 = 150;

#[derive(serde::Serialize)]
struct PollerRow {
    pollers: usize,
    starts: usize,
    status_checks: usize,
    result_fetches: usize,
    calls_per_job: usize,
    seconds: f64,
}

#[derive(serde::Serialize)]
struct LocalOcr {
    pages: usize,
    serial_pages_per_sec: f64,
    parallel_pages_per_sec: f64,
    parallel_tasks: usize,
    speedup: f64,
    process_wall_s_with_ocr: f64,
    process_wall_s_without_ocr: f64,
    ocr_share_of_process_wall: f64,
}

#[derive(serde::Serialize)]
struct Figures {
    poll_interval_ms: u64,
    in_progress_polls: u32,
    textract: Vec<PollerRow>,
    local_ocr: Option<LocalOcr>,
    local_ocr_skipped: Option<String>,
}

/// Runs the benchmark and prints a table (or JSON).
///
/// # Errors
/// The app cannot be built, or Textract calls to the fake fail; never because of a figure.
pub async fn run(mut config: Config, json: bool, corpus: &Path) -> anyhow::Result<ExitCode> {
    config.ocr.poll_interval = POLL_INTERVAL;
    let mut textract = Vec::new();
    for pollers in POLLERS {
        textract.push(pollers_run(&config, pollers).await?);
    }
    let (local_ocr, local_ocr_skipped) = match local_ocr(&config, corpus).await {
        Ok(figures) => (Some(figures), None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    let figures = Figures {
        poll_interval_ms: POLL_INTERVAL.as_millis() as u64,
        in_progress_polls: IN_PROGRESS_POLLS,
        textract,
        local_ocr,
        local_ocr_skipped,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        print_table(&figures);
    }
    Ok(ExitCode::SUCCESS)
}

async fn pollers_run(config: &Config, pollers: usize) -> anyhow::Result<PollerRow> {
    let fake = FakeTextract::start(FakeConfig {
        in_progress_polls: IN_PROGRESS_POLLS,
        ..FakeConfig::default()
    })
    .await;
    let mut app = App::build(
        config.clone(),
        AppOptions {
            default_artefacts: Some(BlobLocation::Folder(std::env::temp_dir())),
            skip_database: true,
            ..AppOptions::default()
        },
    )
    .await?;
    app.textract = Some(fake.client());
    let sha = lexpipe::text::sha256_hex(format!("bench-{}", rand_u64()));
    let request = JobRequest {
        version: None,
        bucket: "bench-bucket".into(),
        key: "in/scan.pdf".into(),
        content_sha256: sha.clone(),
        document_uuid: lexpipe::model::document_uuid(&sha),
        pages: PageMap::new(&[1, 2]),
    };
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..pollers {
        let (app, request) = (app.clone(), request.clone());
        tasks.spawn(async move { poller(&app, &request).await });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let gets = fake.calls_of(GET);
    let status_checks = gets.iter().filter(|c| c.max_results == Some(1)).count();
    Ok(PollerRow {
        pollers,
        starts: fake.calls_of(START).len(),
        status_checks,
        result_fetches: gets.len() - status_checks,
        calls_per_job: fake.calls().len(),
        seconds,
    })
}

/// One poller: joins the job, polls it every interval from a random offset until it is
/// done, then fetches the text through the result cache (single flight).
async fn poller(app: &App, request: &JobRequest) -> anyhow::Result<()> {
    let meter = Meter::new(app.config.prices);
    let client = app.textract.as_ref().expect("set above");
    let engine = Engine {
        app,
        client,
        meter: &meter,
    };
    let offset = rand_u64() % POLL_INTERVAL.as_millis() as u64;
    tokio::time::sleep(Duration::from_millis(offset)).await;
    let job = engine.start(request).await?;
    loop {
        let status = engine.status(&job).await?;
        if !status.is_running() {
            break;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let spec = CacheSpec {
        namespace: "bench",
        key: app.cache.keys().key(
            "bench",
            1,
            &[KeyPart::Id("ocr"), KeyPart::Digest(&request.content_sha256)],
        ),
        schema: 1,
        ttl: Duration::from_secs(60),
    };
    app.cache
        .get_or_compute(&spec, || async {
            let pages = engine.fetch_text(&job, &request.pages).await?;
            Ok::<_, anyhow::Error>(pages.into_iter().map(|p| p.text).collect::<Vec<_>>())
        })
        .await?;
    Ok(())
}

async fn local_ocr(config: &Config, corpus: &Path) -> anyhow::Result<LocalOcr> {
    let tools = Tools::from_config(&config.ocr);
    tools.check()?;
    let dir = tempfile_dir()?;
    let mut files = Vec::new();
    for name in SCANS {
        let bytes = scans::rasterise(&corpus.join(name), SCAN_DPI, TextLayer::EcfHeader)
            .map_err(anyhow::Error::msg)?;
        let path = dir.join(name);
        std::fs::write(&path, bytes)?;
        files.push(path);
    }
    let pages: Vec<(PathBuf, u32)> = files
        .iter()
        .flat_map(|f| {
            let n = lexpipe::ocr::page_count_hint(&std::fs::read(f).unwrap_or_default())
                .unwrap_or(0) as u32;
            (1..=n).map(move |p| (f.clone(), p))
        })
        .collect();

    let serial = Instant::now();
    for (file, page) in &pages {
        tools.read_page(file, *page)?;
    }
    let serial = serial.elapsed().as_secs_f64();

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let semaphore = Arc::new(tokio::sync::Semaphore::new(cores));
    let parallel = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (file, page) in pages.clone() {
        let (tools, semaphore) = (tools.clone(), semaphore.clone());
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            tokio::task::spawn_blocking(move || tools.read_page(&file, page)).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??.map_err(anyhow::Error::from)?;
    }
    let parallel = parallel.elapsed().as_secs_f64();

    let with_ocr = process_wall(config, &files, &dir.join("with"), None).await?;
    let without_ocr = process_wall(
        config,
        &files,
        &dir.join("without"),
        Some(OcrEngineChoice::None),
    )
    .await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(LocalOcr {
        pages: pages.len(),
        serial_pages_per_sec: pages.len() as f64 / serial,
        parallel_pages_per_sec: pages.len() as f64 / parallel,
        parallel_tasks: cores,
        speedup: serial / parallel,
        process_wall_s_with_ocr: with_ocr,
        process_wall_s_without_ocr: without_ocr,
        ocr_share_of_process_wall: ((with_ocr - without_ocr) / with_ocr).max(0.0),
    })
}

/// Wall time of `lexpipe process` on `files`, with an in-process cache and fresh artefacts.
async fn process_wall(
    config: &Config,
    files: &[PathBuf],
    out: &Path,
    engine: Option<OcrEngineChoice>,
) -> anyhow::Result<f64> {
    let mut config = config.clone();
    config.redis.enabled = false;
    config.ocr.engine = engine.or(Some(OcrEngineChoice::Tesseract));
    config.artefacts = None;
    let app = App::build(
        config,
        AppOptions {
            default_artefacts: Some(BlobLocation::Folder(out.to_path_buf())),
            skip_database: true,
            ..AppOptions::default()
        },
    )
    .await?;
    let opts = RunOptions {
        out_dir: out.to_path_buf(),
        time_scale: 0.0,
        ..RunOptions::default()
    };
    let started = Instant::now();
    runner::process(&app, files, &opts, &|_| {}).await?;
    Ok(started.elapsed().as_secs_f64())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("lexpipe-bench-ocr-{:016x}", rand_u64()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

fn print_table(f: &Figures) {
    println!(
        "Textract calls per job (fake Textract; job IN_PROGRESS for {} polls; poll interval {} ms)",
        f.in_progress_polls, f.poll_interval_ms
    );
    println!(
        "{:>8} {:>7} {:>14} {:>15} {:>14} {:>8}",
        "pollers", "starts", "status checks", "result fetches", "calls per job", "seconds"
    );
    for r in &f.textract {
        println!(
            "{:>8} {:>7} {:>14} {:>15} {:>14} {:>8.1}",
            r.pollers, r.starts, r.status_checks, r.result_fetches, r.calls_per_job, r.seconds
        );
    }
    println!("target: calls per job independent of the number of pollers");
    println!();
    match (&f.local_ocr, &f.local_ocr_skipped) {
        (Some(l), _) => {
            println!(
                "local OCR (Tesseract) on {} rasterised corpus pages: {:.2} pages/s serial, \
                 {:.2} pages/s with {} in parallel (x{:.2})",
                l.pages,
                l.serial_pages_per_sec,
                l.parallel_pages_per_sec,
                l.parallel_tasks,
                l.speedup
            );
            println!(
                "lexpipe process on those scans: {:.2} s with OCR, {:.2} s without: OCR is {:.0}% \
                 of the wall time",
                l.process_wall_s_with_ocr,
                l.process_wall_s_without_ocr,
                100.0 * l.ocr_share_of_process_wall
            );
        }
        (None, Some(why)) => println!("local OCR skipped: {why}"),
        (None, None) => {}
    }
}
