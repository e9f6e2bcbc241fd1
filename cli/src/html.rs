//! The HTML report behind `lexpipe process --html` and `lexpipe report OUTPUT_DIR`:
//! `index.html` (one row per document, reuse per stage as an inline SVG chart) and one
//! page per document (its text with every mention highlighted by kind, the canonical
//! entities, the structured data, the pages that need OCR).
//!
//! ## Layout
//!
//! - [`load`] reads what the output folder holds: the per-document JSON files and, when
//!   present, the run summary ([`SUMMARY_FILE`]).
//! - [`write`] renders and writes the files; [`render_index`] and [`render_document`] are
//!   the pure renderers the tests call.
//! - [`highlight`] turns a text and its mentions (character offsets) into escaped HTML.
//!
//! Every file is self-contained (inline CSS, no script, no network) so it opens from a
//! file system, an e-mail attachment or an S3 bucket alike. Everything that comes from a
//! document is escaped: a filing's text may well contain `<script>`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use lexpipe::model::{DocumentOutput, EntityKind, Mention, PAGE_SEPARATOR};
use lexpipe::runner::{DocumentSummary, SUMMARY_FILE, Summary};
use lexpipe::stages::names;

/// Name of the overview page in the output folder.
pub const INDEX_FILE: &str = "index.html";

/// What the report is made from.
#[derive(Debug, Default)]
pub struct ReportInput {
    /// The run summary, when the folder has one (`lexpipe process` writes it).
    pub summary: Option<Summary>,
    /// Each document output with the name of its JSON file, sorted by file name.
    pub documents: Vec<(String, DocumentOutput)>,
    /// Files that were skipped, and why (another JSON file in the folder, a broken one).
    pub warnings: Vec<String>,
}

/// Reads the output folder: every `*.json` file that is a document output, and the run
/// summary when there is one.
///
/// # Errors
/// The folder cannot be listed. Unreadable or foreign files are warnings, not errors.
pub fn load(dir: &Path) -> anyhow::Result<ReportInput> {
    let mut input = ReportInput::default();
    let listing = std::fs::read_dir(dir)
        .with_context(|| format!("listing output folder {}", dir.display()))?;
    let mut files: Vec<PathBuf> = listing
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                input.warnings.push(format!("{name}: {e}"));
                continue;
            }
        };
        if name == SUMMARY_FILE {
            match serde_json::from_slice(&bytes) {
                Ok(s) => input.summary = Some(s),
                Err(e) => input
                    .warnings
                    .push(format!("{name}: not a run summary ({e})")),
            }
            continue;
        }
        match serde_json::from_slice::<DocumentOutput>(&bytes) {
            Ok(doc) => input.documents.push((name, doc)),
            Err(e) => input
                .warnings
                .push(format!("{name}: not a document output ({e})")),
        }
    }
    Ok(input)
}

/// Renders the report into `dir`: [`INDEX_FILE`] and one page per document. Returns the
/// path of the index.
///
/// # Errors
/// A file cannot be written.
pub fn write(dir: &Path, input: &ReportInput) -> anyhow::Result<PathBuf> {
    for (file, doc) in &input.documents {
        let row = input
            .summary
            .as_ref()
            .and_then(|s| summary_row(&s.documents, doc));
        let path = dir.join(page_name(file));
        std::fs::write(&path, render_document(doc, row))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let index = dir.join(INDEX_FILE);
    std::fs::write(&index, render_index(input))
        .with_context(|| format!("writing {}", index.display()))?;
    Ok(index)
}

/// The page of the document whose output file is `json_file`: `nda-1234abcd.json` →
/// `nda-1234abcd.html` (never the index's name).
pub fn page_name(json_file: &str) -> String {
    let stem = json_file.strip_suffix(".json").unwrap_or(json_file);
    if format!("{stem}.html") == INDEX_FILE {
        "index-document.html".to_string()
    } else {
        format!("{stem}.html")
    }
}

/// The summary row of a document: same UUID and source, else the same UUID.
fn summary_row<'a>(
    rows: &'a [DocumentSummary],
    doc: &DocumentOutput,
) -> Option<&'a DocumentSummary> {
    let uuid = |r: &&DocumentSummary| r.document_uuid.as_deref() == Some(&doc.document_uuid);
    rows.iter()
        .filter(uuid)
        .find(|r| r.source == doc.source)
        .or_else(|| rows.iter().find(uuid))
}

/// Escapes text for HTML content and (double- or single-quoted) attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a file name for a relative link.
fn url_path(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// CSS class of a kind: `kind-case_number`.
pub fn kind_class(kind: EntityKind) -> String {
    format!("kind-{}", kind.as_str().to_ascii_lowercase())
}

/// Background colour of each kind's highlight (light enough for black text).
fn kind_colour(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Person => "#ffd6a5",
        EntityKind::Org => "#caffbf",
        EntityKind::Location => "#9bf6ff",
        EntityKind::Date => "#bdb2ff",
        EntityKind::Money => "#fdffb6",
        EntityKind::Court => "#ffc6ff",
        EntityKind::CaseNumber => "#ffadad",
        EntityKind::Statute => "#a0c4ff",
        EntityKind::Email => "#d0f4de",
        EntityKind::Phone => "#e4c1f9",
        EntityKind::Citation => "#b9fbc0",
        EntityKind::CaseName => "#f1c0e8",
        EntityKind::Address => "#8eecf5",
    }
}

const COMPUTED_COLOUR: &str = "#e76f51";
const REUSED_COLOUR: &str = "#2a9d8f";

fn css() -> String {
    let mut css = String::from(
        "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2rem;color:#222;max-width:1200px}\
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}\
table{border-collapse:collapse;font-size:.9rem}\
th,td{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left;vertical-align:top}\
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\
.status-completed{color:#1b7a3a}.status-failed{color:#b00020;font-weight:bold}\
.error{color:#b00020;font-size:.8rem}.muted{color:#777}\
.page{border:1px solid #ccc;border-radius:4px;margin:1rem 0;padding:.5rem 1rem}\
.page h3{font-size:.95rem;margin:.2rem 0 .5rem;color:#555}\
.page.needs-ocr{border-color:#b00020;background:#fff5f5}\
.ocr-badge{background:#b00020;color:#fff;border-radius:3px;padding:0 .4rem;font-size:.8rem;margin-left:.5rem}\
.text{white-space:pre-wrap;font-family:Georgia,serif;line-height:1.6}\
mark{border-radius:2px;padding:0 1px;cursor:help}\
mark.overlap{outline:1px dashed #555}\
.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.5rem}\
.legend li{font-size:.85rem}\
dl.structured{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}\
dl.structured dt{font-weight:bold}dl.structured dd{margin:0}\n",
    );
    for kind in EntityKind::ALL {
        let _ = writeln!(
            css,
            "mark.{}{{background:{}}}",
            kind_class(kind),
            kind_colour(kind)
        );
    }
    css
}

fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>{}</title>\n<style>\n{}</style>\n</head>\n<body>\n",
        escape(title),
        css()
    )
}

const TAIL: &str = "</body>\n</html>\n";

/// Renders `index.html`: the run's totals, one row per document, reuse per stage.
pub fn render_index(input: &ReportInput) -> String {
    let mut h = head("lexpipe report");
    h.push_str("<h1>lexpipe report</h1>\n");
    let by_file: Vec<(&str, &DocumentOutput)> = input
        .documents
        .iter()
        .map(|(f, d)| (f.as_str(), d))
        .collect();
    match &input.summary {
        Some(s) => {
            let failed = s.documents.iter().filter(|d| d.status == lexpipe::model::DocumentStatus::Failed).count();
            let lookups = s.cache.hits + s.cache.misses;
            let _ = writeln!(
                h,
                "<p>{} documents: {} completed, {} failed. Redis: {}. Cache: {} hits, {} misses ({}), {} errors. \
API calls: Textract {} made / {} avoided, LLM {} made / {} avoided. Cost: ${:.4} spent, ${:.4} avoided.</p>",
                s.documents.len(),
                s.documents.len() - failed,
                failed,
                escape(
                    serde_json::to_value(s.redis)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .as_deref()
                        .unwrap_or("?")
                ),
                s.cache.hits,
                s.cache.misses,
                percent(s.cache.hits as u64, lookups.max(0) as u64),
                s.cache.errors,
                s.api_calls.textract.made,
                s.api_calls.textract.avoided,
                s.api_calls.llm.made,
                s.api_calls.llm.avoided,
                s.cost_usd.spent,
                s.cost_usd.avoided,
            );
        }
        None => h.push_str(
            "<p class=\"muted\">No run summary in this folder (it is written by <code>lexpipe process</code>): \
showing what the document files hold; status, cache reuse, API calls and cost are unknown.</p>\n",
        ),
    }
    h.push_str("<h2>Documents</h2>\n<table class=\"documents\">\n<thead><tr><th>document</th><th>type</th><th>status</th>\
<th class=\"n\">pages</th><th>pages needing OCR</th><th class=\"n\">mentions</th><th class=\"n\">entities</th>\
<th class=\"n\">cache reuse</th><th class=\"n\">API calls</th><th class=\"n\">cost (USD)</th></tr></thead>\n<tbody>\n");
    let mut shown = vec![false; by_file.len()];
    if let Some(s) = &input.summary {
        for row in &s.documents {
            let file = by_file.iter().position(|(_, d)| {
                row.document_uuid.as_deref() == Some(&d.document_uuid) && row.source == d.source
            });
            if let Some(i) = file {
                shown[i] = true;
            }
            index_row(&mut h, Some(row), file.map(|i| by_file[i]));
        }
    }
    for (i, f) in by_file.iter().enumerate() {
        if !shown[i] {
            index_row(&mut h, None, Some(*f));
        }
    }
    if input.documents.is_empty()
        && input
            .summary
            .as_ref()
            .is_none_or(|s| s.documents.is_empty())
    {
        h.push_str("<tr><td colspan=\"10\" class=\"muted\">no documents</td></tr>\n");
    }
    h.push_str("</tbody>\n</table>\n");
    h.push_str("<h2>Reuse per stage</h2>\n");
    match &input.summary {
        Some(s) => h.push_str(&stage_chart(s)),
        None => h.push_str("<p class=\"muted\">Needs the run summary.</p>\n"),
    }
    if !input.warnings.is_empty() {
        h.push_str("<h2>Files skipped</h2>\n<ul>\n");
        for w in &input.warnings {
            let _ = writeln!(h, "<li>{}</li>", escape(w));
        }
        h.push_str("</ul>\n");
    }
    h.push_str(TAIL);
    h
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "–".to_string()
    } else {
        format!("{:.0}%", 100.0 * part as f64 / whole as f64)
    }
}

fn file_label(source: &str) -> &str {
    source.rsplit(['/', '\\']).next().unwrap_or(source)
}

fn index_row(h: &mut String, row: Option<&DocumentSummary>, file: Option<(&str, &DocumentOutput)>) {
    let source = row
        .map(|r| r.source.as_str())
        .or(file.map(|(_, d)| d.source.as_str()))
        .unwrap_or("?");
    let name = match file {
        Some((f, _)) => format!(
            "<a href=\"{}\" title=\"{}\">{}</a>",
            escape(&url_path(&page_name(f))),
            escape(source),
            escape(file_label(source))
        ),
        None => format!(
            "<span title=\"{}\">{}</span>",
            escape(source),
            escape(file_label(source))
        ),
    };
    let doc = file.map(|(_, d)| d);
    let doc_type = doc
        .and_then(|d| d.structured.as_ref().map(|s| s.document_type.clone()))
        .or(row.and_then(|r| r.document_type.clone()))
        .unwrap_or_default();
    let status = match row {
        Some(r) => {
            let mut s = format!(
                "<span class=\"status-{0}\">{0}</span>",
                escape(r.status.as_str())
            );
            if let Some(e) = &r.error {
                let _ = write!(s, "<div class=\"error\">{}</div>", escape(e));
            }
            s
        }
        None => "<span class=\"muted\">output file</span>".to_string(),
    };
    let pages = doc
        .map(|d| d.pages.len())
        .or(row.map(|r| r.pages))
        .unwrap_or(0);
    let no_text: Vec<u32> = match doc {
        Some(d) => d
            .pages
            .iter()
            .filter(|p| !p.has_text_layer || p.ocr_reason.is_some())
            .map(|p| p.number)
            .collect(),
        None => row
            .map(|r| r.pages_without_text.clone())
            .unwrap_or_default(),
    };
    let ocr = if no_text.is_empty() {
        "0".to_string()
    } else {
        format!(
            "{} (p. {})",
            no_text.len(),
            no_text
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mentions = doc
        .map(|d| d.mentions.len())
        .or(row.map(|r| r.entities))
        .unwrap_or(0);
    let entities = doc
        .map(|d| d.entities.len())
        .or(row.map(|r| r.canonical_entities))
        .unwrap_or(0);
    let (reuse, calls, cost) = match row {
        Some(r) => {
            let total = r.work.computed + r.work.cached;
            (
                format!(
                    "<span title=\"{} of {} units of work reused\">{}</span>",
                    r.work.cached,
                    total,
                    percent(r.work.cached, total)
                ),
                (r.api_calls.textract.made + r.api_calls.llm.made).to_string(),
                format!("{:.4}", r.cost_usd.spent),
            )
        }
        None => ("–".into(), "–".into(), "–".into()),
    };
    let _ = writeln!(
        h,
        "<tr><td>{name}</td><td>{}</td><td>{status}</td><td class=\"n\">{pages}</td><td>{ocr}</td>\
<td class=\"n\">{mentions}</td><td class=\"n\">{entities}</td><td class=\"n\">{reuse}</td>\
<td class=\"n\">{calls}</td><td class=\"n\">{cost}</td></tr>",
        escape(&doc_type)
    );
}

/// Horizontal stacked bars, one per stage in pipeline order: computed vs reused.
fn stage_chart(s: &Summary) -> String {
    let known = names::ALL;
    let stages: Vec<(&str, u64, u64)> = known
        .iter()
        .filter_map(|n| s.stages.get(*n).map(|c| (*n, c.computed, c.cached)))
        .chain(
            s.stages
                .iter()
                .filter(|(n, _)| !known.contains(&n.as_str()))
                .map(|(n, c)| (n.as_str(), c.computed, c.cached)),
        )
        .collect();
    let max = stages
        .iter()
        .map(|(_, c, r)| c + r)
        .max()
        .unwrap_or(0)
        .max(1);
    let (label_w, bar_w, row_h) = (150.0, 560.0, 28.0);
    let height = 40.0 + row_h * stages.len() as f64;
    let mut svg = format!(
        "<svg class=\"stage-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" \
role=\"img\" aria-label=\"computed and reused work per stage\" font-family=\"system-ui,sans-serif\" font-size=\"13\">\n\
<rect x=\"{label_w}\" y=\"4\" width=\"12\" height=\"12\" fill=\"{COMPUTED_COLOUR}\"/><text x=\"{t1}\" y=\"15\">computed</text>\n\
<rect x=\"{r2}\" y=\"4\" width=\"12\" height=\"12\" fill=\"{REUSED_COLOUR}\"/><text x=\"{t2}\" y=\"15\">reused (cache or artefact)</text>\n",
        w = label_w + bar_w + 120.0,
        t1 = label_w + 16.0,
        r2 = label_w + 100.0,
        t2 = label_w + 116.0,
    );
    for (i, (name, computed, reused)) in stages.iter().enumerate() {
        let y = 30.0 + row_h * i as f64;
        let cw = bar_w * *computed as f64 / max as f64;
        let rw = bar_w * *reused as f64 / max as f64;
        let _ = writeln!(
            svg,
            "<g class=\"stage\" data-stage=\"{n}\"><title>{n}: {computed} computed, {reused} reused</title>\
<text x=\"{tx}\" y=\"{ty}\" text-anchor=\"end\">{n}</text>\
<rect class=\"computed\" x=\"{label_w}\" y=\"{y}\" width=\"{cw:.1}\" height=\"18\" fill=\"{COMPUTED_COLOUR}\"/>\
<rect class=\"reused\" x=\"{rx:.1}\" y=\"{y}\" width=\"{rw:.1}\" height=\"18\" fill=\"{REUSED_COLOUR}\"/>\
<text x=\"{vx:.1}\" y=\"{ty}\">{computed} / {reused}</text></g>",
            n = escape(name),
            tx = label_w - 8.0,
            ty = y + 14.0,
            rx = label_w + cw,
            vx = label_w + cw + rw + 6.0,
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Renders one document's page. `row` is its line of the run summary, when known.
pub fn render_document(doc: &DocumentOutput, row: Option<&DocumentSummary>) -> String {
    let title = file_label(&doc.source);
    let mut h = head(&format!("{title} — lexpipe report"));
    let _ = writeln!(
        h,
        "<p><a href=\"{INDEX_FILE}\">← all documents</a></p>\n<h1>{}</h1>\n<p class=\"muted\">{} · document {} · text by {} · {}</p>",
        escape(title),
        escape(&doc.source),
        escape(&doc.document_uuid),
        escape(&doc.ocr_method),
        escape(&doc.producer)
    );
    if let Some(r) = row {
        let _ = writeln!(
            h,
            "<p>Status: <span class=\"status-{0}\">{0}</span>; {1} of {2} units of work reused; {3} API calls; ${4:.4}.</p>",
            escape(r.status.as_str()),
            r.work.cached,
            r.work.computed + r.work.cached,
            r.api_calls.textract.made + r.api_calls.llm.made,
            r.cost_usd.spent
        );
    }
    let no_text: Vec<u32> = doc
        .pages
        .iter()
        .filter(|p| !p.has_text_layer || p.ocr_reason.is_some())
        .map(|p| p.number)
        .collect();
    if !no_text.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"needs-ocr-note\">Pages whose text layer is not their content (they need OCR): {}.</p>",
            no_text
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    // Legend: every kind, with how many mentions of it the document has.
    let mut counts: BTreeMap<EntityKind, usize> = BTreeMap::new();
    for m in &doc.mentions {
        *counts.entry(m.kind).or_default() += 1;
    }
    h.push_str("<h2>Mentions by kind</h2>\n<ul class=\"legend\">\n");
    for kind in EntityKind::ALL {
        let _ = writeln!(
            h,
            "<li><mark class=\"{}\">{}</mark> {}</li>",
            kind_class(kind),
            kind.as_str(),
            counts.get(&kind).copied().unwrap_or(0)
        );
    }
    h.push_str("</ul>\n<p class=\"muted\">Hover a highlight for its normalised value and confidence.</p>\n");

    if let Some(s) = &doc.structured {
        h.push_str("<h2>Structured data</h2>\n<dl class=\"structured\">\n");
        let list = |v: &[String]| {
            if v.is_empty() {
                "<span class=\"muted\">none</span>".to_string()
            } else {
                v.iter().map(|x| escape(x)).collect::<Vec<_>>().join("; ")
            }
        };
        let fields: [(&str, String); 8] = [
            ("document type", escape(&s.document_type)),
            (
                "court",
                s.court
                    .as_deref()
                    .map(escape)
                    .unwrap_or_else(|| "<span class=\"muted\">none</span>".into()),
            ),
            ("case numbers", list(&s.case_numbers)),
            ("parties", list(&s.parties)),
            ("dates", list(&s.dates)),
            ("amounts", list(&s.amounts)),
            ("statutes", list(&s.statutes)),
            ("produced by", escape(&s.model_version)),
        ];
        for (k, v) in fields {
            let _ = writeln!(h, "<dt>{k}</dt><dd>{v}</dd>");
        }
        h.push_str("</dl>\n");
    }

    h.push_str("<h2>Entities</h2>\n");
    if doc.entities.is_empty() {
        h.push_str("<p class=\"muted\">none</p>\n");
    } else {
        h.push_str("<table class=\"entities\">\n<thead><tr><th>kind</th><th>name</th><th>aliases</th><th class=\"n\">mentions</th></tr></thead>\n<tbody>\n");
        for e in &doc.entities {
            let _ = writeln!(
                h,
                "<tr id=\"{}\"><td><mark class=\"{}\">{}</mark></td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                escape(&e.id),
                kind_class(e.kind),
                e.kind.as_str(),
                escape(&e.name),
                e.aliases
                    .iter()
                    .map(|a| escape(a))
                    .collect::<Vec<_>>()
                    .join("; "),
                e.mention_ids.len()
            );
        }
        h.push_str("</tbody>\n</table>\n");
    }

    h.push_str("<h2>Text</h2>\n");
    let separator = PAGE_SEPARATOR.chars().count();
    let mut page_start = 0usize;
    for page in &doc.pages {
        let len = page.text.chars().count();
        let page_end = page_start + len;
        // Mentions that touch this page, clipped to it, in page-relative offsets.
        let local: Vec<Mention> = doc
            .mentions
            .iter()
            .filter(|m| m.start < page_end && m.end > page_start)
            .map(|m| Mention {
                start: m.start.max(page_start) - page_start,
                end: m.end.min(page_end) - page_start,
                ..m.clone()
            })
            .collect();
        let ocr = !page.has_text_layer || page.ocr_reason.is_some();
        let badge = match (page.ocr_reason, &page.ocr_engine, &page.ocr_error) {
            (_, _, Some(error)) => format!(
                "<span class=\"ocr-badge\" title=\"{}\">needs OCR: not read</span>",
                escape(error)
            ),
            (Some(reason), Some(engine), None) => format!(
                "<span class=\"ocr-badge\">read by OCR ({}): {}{}</span>",
                escape(engine),
                reason.describe(),
                page.ocr_confidence
                    .map(|c| format!(", confidence {c:.0}%"))
                    .unwrap_or_default()
            ),
            (Some(reason), None, None) => {
                format!(
                    "<span class=\"ocr-badge\">{}: needs OCR</span>",
                    reason.describe()
                )
            }
            (None, _, None) if ocr => {
                "<span class=\"ocr-badge\">no text layer: needs OCR</span>".to_string()
            }
            (None, _, None) => String::new(),
        };
        let _ = writeln!(
            h,
            "<section class=\"page{}\" id=\"page-{n}\"><h3>Page {n}{}</h3>\n<div class=\"text\">{}</div></section>",
            if ocr { " needs-ocr" } else { "" },
            badge,
            highlight(&page.text, &local),
            n = page.number,
        );
        page_start = page_end + separator;
    }
    h.push_str(TAIL);
    h
}

/// The text as escaped HTML with each mention in a `<mark>` of its kind's class, its
/// `title` naming kind, normalised value and confidence. Offsets are character offsets
/// into `text`, end-exclusive; a mention out of range is clipped, an empty one ignored.
///
/// Overlapping mentions: the text is cut at every mention boundary, and each piece that
/// any mention covers becomes one `<mark>` coloured by the shortest (most specific)
/// mention covering it, titled with all of them and classed `overlap`. Marks never nest,
/// and no character is highlighted twice or lost.
pub fn highlight(text: &str, mentions: &[Mention]) -> String {
    // Byte offset of every character boundary, so character offsets index the &str.
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(text.len()))
        .collect();
    let n_chars = bounds.len() - 1;
    let spans: Vec<&Mention> = mentions
        .iter()
        .filter(|m| m.start < m.end.min(n_chars))
        .collect();
    let mut cuts: Vec<usize> = vec![0, n_chars];
    for m in &spans {
        cuts.push(m.start);
        cuts.push(m.end.min(n_chars));
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = String::with_capacity(text.len() * 2);
    for w in cuts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let piece = escape(&text[bounds[a]..bounds[b]]);
        let mut covering: Vec<&Mention> = spans
            .iter()
            .copied()
            .filter(|m| m.start <= a && m.end.min(n_chars) >= b)
            .collect();
        if covering.is_empty() {
            out.push_str(&piece);
            continue;
        }
        covering.sort_by_key(|m| (m.end - m.start, m.start));
        let primary = covering[0];
        let title = covering
            .iter()
            .map(|m| {
                format!(
                    "{} {}: {} (confidence {:.2})",
                    m.kind.as_str(),
                    m.id,
                    m.normalized,
                    m.confidence
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        let ids = covering
            .iter()
            .map(|m| m.id.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let _ = write!(
            out,
            "<mark class=\"{}{}\" data-mentions=\"{}\" title=\"{}\">{}</mark>",
            kind_class(primary.kind),
            if covering.len() > 1 { " overlap" } else { "" },
            escape(&ids),
            escape(&title).replace('\n', "&#10;"),
            piece
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lexpipe::model::{CanonicalEntity, Page, StructuredData};

    fn mention(id: &str, kind: EntityKind, start: usize, end: usize, text: &str) -> Mention {
        Mention {
            id: id.into(),
            kind,
            text: text.into(),
            normalized: text.to_lowercase(),
            start,
            end,
            confidence: 0.9,
            chunk_id: "c0".into(),
        }
    }

    fn doc(pages: &[(&str, bool)], mentions: Vec<Mention>) -> DocumentOutput {
        DocumentOutput {
            document_uuid: "00000000-0000-0000-0000-000000000001".into(),
            source: "samples/x.pdf".into(),
            content_sha256: "ab".into(),
            ocr_method: "pdf_text".into(),
            pages: pages
                .iter()
                .enumerate()
                .map(|(i, (t, layer))| Page {
                    number: i as u32 + 1,
                    text: t.to_string(),
                    has_text_layer: *layer,
                    ..Page::default()
                })
                .collect(),
            chunks: vec![],
            mentions,
            entities: vec![],
            structured: None,
            producer: "test".into(),
        }
    }

    #[test]
    fn escape_turns_every_markup_character_into_an_entity() {
        assert_eq!(
            escape(r#"<script>alert(1)</script> & "q" 'a'"#),
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot; &#39;a&#39;"
        );
    }

    #[test]
    fn highlight_uses_character_offsets_after_multibyte_characters() {
        // "Zoë Müller 🎉 paid €5": é-like and emoji characters are more than one byte.
        let text = "Zoë Müller 🎉 paid €5";
        let m = vec![
            mention("m0", EntityKind::Person, 0, 10, "Zoë Müller"),
            mention("m1", EntityKind::Money, 18, 20, "€5"),
        ];
        let html = highlight(text, &m);
        assert!(html.contains(">Zoë Müller</mark>"), "{html}");
        assert!(html.contains(">€5</mark>"), "{html}");
        assert!(html.contains(" 🎉 paid "), "{html}");
    }

    #[test]
    fn highlight_escapes_text_inside_and_outside_marks() {
        let text = "<script>alert(1)</script> & \"Acme <Corp>\"";
        let m = vec![mention("m0", EntityKind::Org, 29, 40, "Acme <Corp>")];
        let html = highlight(text, &m);
        assert!(!html.contains("<script"), "{html}");
        assert!(html.starts_with("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;"));
        assert!(html.contains(">Acme &lt;Corp&gt;</mark>&quot;"), "{html}");
    }

    #[test]
    fn overlapping_mentions_never_nest_and_lose_no_text() {
        // ORG "Acme Holdings LLC" contains LOCATION "Holdings" (made up, for the overlap).
        let text = "see Acme Holdings LLC now";
        let m = vec![
            mention("m0", EntityKind::Org, 4, 21, "Acme Holdings LLC"),
            mention("m1", EntityKind::Location, 9, 17, "Holdings"),
            mention("m2", EntityKind::Person, 4, 21, "Acme Holdings LLC"),
        ];
        let html = highlight(text, &m);
        assert_eq!(html.matches("<mark").count(), 3, "{html}");
        assert!(!html.contains("<mark class=\"kind-org\"><mark"), "{html}");
        assert!(
            html.contains("<mark class=\"kind-location overlap\" data-mentions=\"m1 m0 m2\""),
            "{html}"
        );
        let stripped: String = {
            let mut s = String::new();
            let mut in_tag = false;
            for c in html.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => s.push(c),
                    _ => {}
                }
            }
            s
        };
        assert_eq!(stripped, text);
    }

    #[test]
    fn mentions_out_of_range_or_empty_are_clipped_or_ignored() {
        let m = vec![
            mention("m0", EntityKind::Date, 3, 3, ""),
            mention("m1", EntityKind::Date, 2, 99, "cd"),
            mention("m2", EntityKind::Date, 50, 60, "zz"),
        ];
        assert_eq!(
            highlight("abcd", &m),
            "ab<mark class=\"kind-date\" data-mentions=\"m1\" title=\"DATE m1: cd (confidence 0.90)\">cd</mark>"
        );
    }

    #[test]
    fn each_page_says_why_it_needed_ocr_and_whether_an_engine_read_it() {
        let mut d = doc(&[("Order text", true), ("Case 1 Document 2", true)], vec![]);
        d.pages[0].ocr_reason = Some(lexpipe::model::OcrReason::StampOnly);
        d.pages[0].ocr_engine = Some("tesseract".into());
        d.pages[0].ocr_confidence = Some(91.2);
        d.pages[1].ocr_reason = Some(lexpipe::model::OcrReason::StampOnly);
        d.pages[1].ocr_error = Some("tesseract is not installed <install it>".into());
        let html = render_document(&d, None);
        let page2 = html.split("id=\"page-2\"").nth(1).unwrap();
        let page1 = html.split("id=\"page-2\"").next().unwrap();
        assert!(
            page1.contains(
                "read by OCR (tesseract): only a stamp in the text layer, confidence 91%"
            ),
            "{html}"
        );
        assert!(page2.contains("needs OCR: not read"));
        assert!(page2.contains("title=\"tesseract is not installed &lt;install it&gt;\""));
        assert!(html.contains("they need OCR): 1, 2."));
    }

    #[test]
    fn a_mention_on_the_second_page_is_placed_by_offsets_into_the_joined_text() {
        // Full text "Page one\n\nJane Roe": Jane starts at char 10.
        let d = doc(
            &[("Page one", true), ("Jane Roe", false)],
            vec![mention("m0", EntityKind::Person, 10, 18, "Jane Roe")],
        );
        let html = render_document(&d, None);
        let page2 = html.split("id=\"page-2\"").nth(1).unwrap();
        assert!(page2.contains(">Jane Roe</mark>"), "{html}");
        assert!(page2.contains("needs OCR"));
        assert!(html.contains("class=\"page needs-ocr\" id=\"page-2\""));
        assert!(
            !html
                .split("id=\"page-2\"")
                .next()
                .unwrap()
                .contains("<mark class=\"kind-person\" data")
        );
    }

    #[test]
    fn document_page_lists_entities_aliases_and_structured_data_escaped() {
        let mut d = doc(&[("Acme & Co. v. <Roe>", true)], vec![]);
        d.entities = vec![CanonicalEntity {
            id: "e0".into(),
            kind: EntityKind::Org,
            name: "Acme & Co.".into(),
            aliases: vec!["Acme".into(), "Acme & Co.".into()],
            mention_ids: vec!["m0".into()],
        }];
        d.structured = Some(StructuredData {
            document_type: "complaint".into(),
            court: Some("Court of <Nowhere>".into()),
            ..StructuredData::default()
        });
        let html = render_document(&d, None);
        assert!(
            html.contains("<td>Acme &amp; Co.</td><td>Acme; Acme &amp; Co.</td>"),
            "{html}"
        );
        assert!(html.contains("Court of &lt;Nowhere&gt;"));
        assert!(html.contains("Acme &amp; Co. v. &lt;Roe&gt;"));
        assert!(
            !html.contains("<script") && !html.contains("http"),
            "self-contained"
        );
    }

    #[test]
    fn index_without_a_summary_shows_the_document_files_and_says_what_is_missing() {
        let input = ReportInput {
            summary: None,
            documents: vec![(
                "x-00000000.json".into(),
                doc(&[("a", true), ("", false)], vec![]),
            )],
            warnings: vec!["other.json: not a document output".into()],
        };
        let html = render_index(&input);
        assert!(html.contains("href=\"x-00000000.html\""), "{html}");
        assert!(html.contains("No run summary"));
        assert!(html.contains("1 (p. 2)"));
        assert!(html.contains("other.json"));
    }

    #[test]
    fn index_with_a_summary_has_a_row_per_document_and_a_bar_per_stage() {
        let json = serde_json::json!({
            "documents": [
                {"source": "samples/x.pdf", "document_uuid": "00000000-0000-0000-0000-000000000001",
                 "content_sha256": "ab", "status": "completed", "error": null, "error_type": null,
                 "pages": 2, "pages_without_text": [2], "chunks": 1, "entities": 0,
                 "canonical_entities": 0, "output": null, "persisted": null,
                 "document_type": "complaint", "largest_payload_bytes": 10,
                 "work": {"computed": 1, "cached": 3}},
                {"source": "bad <b>.pdf", "document_uuid": null, "content_sha256": null,
                 "status": "failed", "error": "not a PDF <x>", "error_type": "NotPdf",
                 "pages": 0, "pages_without_text": [], "chunks": 0, "entities": 0,
                 "canonical_entities": 0, "output": null, "persisted": null,
                 "document_type": null, "largest_payload_bytes": 0}
            ],
            "stages": {"ocr": {"computed": 1, "cached": 2}, "persist": {"computed": 0, "cached": 0}},
            "api_calls": {"textract": {"made": 0, "avoided": 0}, "llm": {"made": 0, "avoided": 0}},
            "cost_usd": {"spent": 0.0, "avoided": 0.0},
            "cache": {"hits": 1, "misses": 1, "errors": 0},
            "redis": "connected"
        });
        let input = ReportInput {
            summary: Some(serde_json::from_value(json).unwrap()),
            documents: vec![(
                "x-00000000.json".into(),
                doc(&[("a", true), ("", false)], vec![]),
            )],
            warnings: vec![],
        };
        let html = render_index(&input);
        assert_eq!(html.matches("<tr><td>").count(), 2, "{html}");
        assert!(html.contains("not a PDF &lt;x&gt;"));
        assert!(html.contains("bad &lt;b&gt;.pdf"));
        assert!(html.contains("75%"), "reuse of the first document");
        assert_eq!(html.matches("<g class=\"stage\"").count(), 2);
        assert!(html.contains("data-stage=\"ocr\""));
    }

    #[test]
    fn page_names_follow_the_output_files_and_never_replace_the_index() {
        assert_eq!(page_name("nda-1234abcd.json"), "nda-1234abcd.html");
        assert_eq!(page_name("index.json"), "index-document.html");
        assert_eq!(url_path("a b&.html"), "a%20b%26.html");
    }
}
