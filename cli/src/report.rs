//! Human-readable output: progress bar, summary tables, stats and health.

use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use lexpipe::config::Config;
use lexpipe::model::DocumentStatus;
use lexpipe::redis::NamespaceStats;
use lexpipe::redis::health::Status;
use lexpipe::runner::{Progress, Summary};

/// A bar on stderr (hidden when stderr is not a terminal).
pub fn progress_bar(total: usize) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} documents  {wide_msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

pub fn on_progress(bar: &ProgressBar, p: Progress<'_>) {
    match p {
        Progress::Started { documents } => bar.set_length(documents as u64),
        Progress::Finished { source, ok } => {
            bar.set_message(format!("{} {}", if ok { "done" } else { "FAILED" }, source));
            bar.inc(1);
        }
    }
}

pub fn print_summary(s: &Summary, out_dir: &Path) {
    let failed = s
        .documents
        .iter()
        .filter(|d| d.status == DocumentStatus::Failed)
        .count();
    println!(
        "{} documents: {} completed, {} failed   (redis: {})",
        s.documents.len(),
        s.documents.len() - failed,
        failed,
        serde_json::to_value(s.redis)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    );
    println!();
    println!(
        "{:<36} {:<10} {:>5} {:>6} {:>8} {:>9}",
        "document", "status", "pages", "chunks", "entities", "canonical"
    );
    for d in &s.documents {
        let name = Path::new(&d.source)
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| d.source.clone());
        println!(
            "{:<36} {:<10} {:>5} {:>6} {:>8} {:>9}",
            truncate(&name, 36),
            d.status,
            d.pages,
            d.chunks,
            d.entities,
            d.canonical_entities
        );
        if let Some(e) = &d.error {
            println!("    error: {e}");
        }
        if !d.pages_without_text.is_empty() {
            println!("    pages without a text layer: {:?}", d.pages_without_text);
        }
        if !d.pages_needing_ocr.is_empty() {
            println!(
                "    pages read by OCR: {:?}{}",
                d.pages_needing_ocr,
                if d.pages_unread.is_empty() {
                    String::new()
                } else {
                    format!(" (not read: {:?})", d.pages_unread)
                }
            );
        }
        if d.usage.textract.calls > 0 || d.usage.textract.units_avoided > 0 {
            println!(
                "    textract: {} calls, {} pages sent, {} pages avoided, ${:.4}",
                d.usage.textract.calls,
                d.usage.textract.units_in,
                d.usage.textract.units_avoided,
                d.usage.textract.usd
            );
        }
        for w in &d.warnings {
            println!("    warning: {w}");
        }
    }
    let total = |f: fn(&lexpipe::runner::DocumentSummary) -> usize| -> usize {
        s.documents.iter().map(f).sum()
    };
    println!(
        "{:<36} {:<10} {:>5} {:>6} {:>8} {:>9}",
        "total",
        "",
        total(|d| d.pages),
        total(|d| d.chunks),
        total(|d| d.entities),
        total(|d| d.canonical_entities)
    );
    println!();
    println!("{:<20} {:>9} {:>9}", "stage", "computed", "cached");
    // Pipeline order first, then any stage this table does not know yet.
    let known = lexpipe::stages::names::ALL;
    let ordered = known
        .iter()
        .filter_map(|n| s.stages.get_key_value(*n))
        .chain(
            s.stages
                .iter()
                .filter(|(n, _)| !known.contains(&n.as_str())),
        );
    for (stage, c) in ordered {
        println!("{:<20} {:>9} {:>9}", stage, c.computed, c.cached);
    }
    let lookups = s.cache.hits + s.cache.misses;
    println!();
    println!(
        "cache: {} hits, {} misses ({:.0}% hit rate), {} errors",
        s.cache.hits,
        s.cache.misses,
        if lookups > 0 {
            100.0 * s.cache.hits as f64 / lookups as f64
        } else {
            0.0
        },
        s.cache.errors
    );
    println!(
        "api calls: textract {} made / {} avoided, llm {} made / {} avoided; cost ${:.4} spent, ${:.4} avoided",
        s.api_calls.textract.made,
        s.api_calls.textract.avoided,
        s.api_calls.llm.made,
        s.api_calls.llm.avoided,
        s.cost_usd.spent,
        s.cost_usd.avoided
    );
    println!(
        "textract pages: {} sent, {} avoided (cache hits, text-layer pages, duplicates)",
        s.usage.textract.units_in, s.usage.textract.units_avoided
    );
    if s.documents_with_warnings > 0 {
        println!(
            "warnings: {} document(s) completed with warnings (see above)",
            s.documents_with_warnings
        );
    }
    if s.usage.llm.calls + s.usage.llm.calls_avoided > 0 {
        println!(
            "llm tokens: {} in, {} out (${:.4}); {} not sent thanks to the caches (${:.4})",
            s.usage.llm.units_in,
            s.usage.llm.units_out,
            s.usage.llm.usd,
            s.usage.llm.units_avoided,
            s.usage.llm.usd_avoided
        );
    }
    println!("output: {}", out_dir.display());
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

pub fn stats_json(config: &Config, stats: &[NamespaceStats]) -> serde_json::Value {
    serde_json::json!({
        "prefix": config.key_prefix(),
        "namespaces": stats,
        "total": total(stats),
    })
}

fn total(stats: &[NamespaceStats]) -> NamespaceStats {
    let mut c = [0i64; 7];
    for s in stats {
        for (i, v) in [
            s.hits, s.misses, s.fills, s.errors, s.corrupt, s.waits, s.oversize,
        ]
        .into_iter()
        .enumerate()
        {
            c[i] += v;
        }
    }
    NamespaceStats::from_counts("total", &c)
}

pub fn print_stats(config: &Config, stats: &[NamespaceStats]) {
    println!(
        "cache counters under {} (all processes)",
        config.key_prefix()
    );
    println!(
        "{:<14} {:>9} {:>9} {:>8} {:>9} {:>7} {:>8} {:>7}",
        "namespace", "hits", "misses", "hit rate", "fills", "waits", "corrupt", "errors"
    );
    let mut rows = stats.to_vec();
    rows.push(total(stats));
    for s in &rows {
        println!(
            "{:<14} {:>9} {:>9} {:>7.1}% {:>9} {:>7} {:>8} {:>7}",
            s.namespace,
            s.hits,
            s.misses,
            s.hit_rate * 100.0,
            s.fills,
            s.waits,
            s.corrupt,
            s.errors
        );
    }
    if stats.is_empty() {
        println!("(no counters yet: run `lexpipe process` first)");
    }
}

pub fn print_health(report: &lexpipe::health::Report) {
    let r = &report.redis;
    let verdict = match r.status {
        Status::Healthy => "healthy",
        Status::Degraded => "DEGRADED",
        Status::Unhealthy => "UNHEALTHY",
    };
    println!("redis {}: {}", r.address, verdict);
    if let Some(v) = &r.redis_version {
        println!("  version          {v}");
    }
    if let (Some(p50), Some(max)) = (r.ping_ms_p50, r.ping_ms_max) {
        println!("  ping             p50 {p50:.3} ms, max {max:.3} ms");
    }
    if let Some(used) = r.used_memory_bytes {
        let max = r.maxmemory_bytes.unwrap_or(0);
        if max > 0 {
            println!(
                "  memory           {} of {} ({:.1}%)",
                mib(used),
                mib(max),
                100.0 * used as f64 / max as f64
            );
        } else {
            println!("  memory           {} (no maxmemory set)", mib(used));
        }
    }
    if let Some(p) = &r.eviction_policy {
        println!(
            "  eviction policy  {p} ({} keys evicted)",
            r.evicted_keys.unwrap_or(0)
        );
    }
    if let Some(h) = r.server_hit_rate {
        println!("  server hit rate  {:.1}%", h * 100.0);
    }
    if r.cluster {
        println!(
            "  cluster          state {}, {} primaries (memory above is their sum)",
            r.cluster_state.as_deref().unwrap_or("unknown"),
            r.primaries.len()
        );
        for n in &r.primaries {
            let memory = match (n.used_memory_bytes, n.maxmemory_bytes) {
                (Some(used), Some(max)) if max > 0 => format!(
                    "{} of {} ({:.1}%)",
                    mib(used),
                    mib(max),
                    100.0 * used as f64 / max as f64
                ),
                (Some(used), _) => mib(used),
                _ => "?".into(),
            };
            println!(
                "    primary {:<21} {memory}, {} keys evicted",
                n.address,
                n.evicted_keys.unwrap_or(0)
            );
        }
    }
    for s in &r.cache {
        println!(
            "  cache {:<10} {:.1}% hits ({} hits, {} misses)",
            s.namespace,
            s.hit_rate * 100.0,
            s.hits,
            s.misses
        );
    }
    for p in &r.problems {
        println!("  problem: {p}");
    }
    if let Some(d) = &report.database {
        let n = |v: Option<u64>| v.map_or("?".to_string(), |n| n.to_string());
        println!(
            "database: {}",
            if d.reachable {
                "reachable"
            } else {
                "UNREACHABLE"
            }
        );
        println!(
            "  stuck documents  {} (running for more than {} s)",
            n(d.stuck_documents),
            d.stuck_after_secs
        );
        println!("  expired leases   {}", n(d.expired_leases));
        println!(
            "  failed Textract  {} in the last 24 h",
            d.failed_textract_jobs
                .map_or("(no textract_jobs table)".to_string(), |v| v.to_string())
        );
    }
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}
