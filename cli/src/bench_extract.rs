//! `lexpipe bench extract`: throughput of the rule extractor on real text, one thread.
//!
//! Reads every PDF of a folder (the labelled corpus, `tests/corpus`, by default) through the
//! text-layer OCR, cuts the text into chunks with the configured chunker, then runs
//! [`RuleExtractor::extract`] over every chunk, again and again for about two seconds, on
//! the calling thread. Prints chunks per second and megabytes of text per second (the
//! figure the extractor is held to: at least 5 MB/s per core). Never fails on timing.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use lexpipe::chunk::chunk_text;
use lexpipe::config::Config;
use lexpipe::extract::RuleExtractor;
use lexpipe::ocr::extract_pdf_text;
use lexpipe::runner;

/// How long the measurement runs (after one warm-up pass).
const MEASURE_FOR: Duration = Duration::from_secs(2);
/// The throughput the extractor is expected to reach on one core.
const TARGET_MB_PER_SEC: f64 = 5.0;

#[derive(serde::Serialize)]
struct Figures {
    extractor: String,
    documents: usize,
    chunks: usize,
    text_bytes: usize,
    passes: usize,
    seconds: f64,
    chunks_per_sec: f64,
    mb_per_sec: f64,
    mentions_per_pass: usize,
    target_mb_per_sec: f64,
}

/// Runs the benchmark over the PDFs in `dir` and prints the figures.
///
/// # Errors
/// When the folder cannot be listed, or holds no PDF with a text layer.
pub fn run(config: &Config, dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let inputs = runner::collect_inputs(&[dir.to_path_buf()])?;
    let mut chunks = Vec::new();
    let mut documents = 0;
    for path in &inputs {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let Ok(ocr) = extract_pdf_text(&bytes) else {
            continue; // An unreadable PDF has no text to measure.
        };
        documents += 1;
        chunks.extend(
            chunk_text(&ocr.full_text(), &config.chunk)
                .into_iter()
                .map(|c| c.text),
        );
    }
    let text_bytes: usize = chunks.iter().map(String::len).sum();
    anyhow::ensure!(text_bytes > 0, "no text in the PDFs of {}", dir.display());

    let extractor = RuleExtractor::new();
    // Warm-up: compiles every regex once, outside the measurement.
    let mentions_per_pass: usize = chunks.iter().map(|c| extractor.extract(c).len()).sum();
    let start = Instant::now();
    let mut passes = 0;
    while start.elapsed() < MEASURE_FOR {
        for c in &chunks {
            std::hint::black_box(extractor.extract(std::hint::black_box(c)));
        }
        passes += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    let figures = Figures {
        extractor: format!("{}-{}", RuleExtractor::NAME, RuleExtractor::VERSION),
        documents,
        chunks: chunks.len(),
        text_bytes,
        passes,
        seconds,
        chunks_per_sec: (chunks.len() * passes) as f64 / seconds,
        mb_per_sec: (text_bytes * passes) as f64 / seconds / 1e6,
        mentions_per_pass,
        target_mb_per_sec: TARGET_MB_PER_SEC,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        println!(
            "rule extractor {} on {} documents ({} chunks, {:.1} kB of text), one thread:",
            figures.extractor,
            figures.documents,
            figures.chunks,
            figures.text_bytes as f64 / 1e3
        );
        println!(
            "  {:.0} chunks/s, {:.2} MB/s of text (target >= {TARGET_MB_PER_SEC} MB/s), {} mentions per pass, {} passes in {:.2} s",
            figures.chunks_per_sec,
            figures.mb_per_sec,
            figures.mentions_per_pass,
            figures.passes,
            figures.seconds
        );
    }
    Ok(ExitCode::SUCCESS)
}
