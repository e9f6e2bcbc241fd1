//! Synthetic legal documents shipped in `samples/`, and small PDFs for tests.
//!
//! The demo and the end-to-end tests need realistic legal PDFs that the project may publish:
//! every person, firm, address, e-mail address and telephone number here is invented (phone
//! numbers use the reserved 555-01xx range, e-mail domains `example.com`, `example.org` and
//! `.test`). Real courts, statutes and published case citations appear as they would in any
//! filing.
//!
//! ## How the documents are written
//!
//! Each [`SampleDoc`] is a list of [`Block`]s whose text carries inline entity markup:
//! `[[PERSON:Maria Delgado]]`, or with a normalised value `[[DATE:March 4, 2024|2024-03-04]]`.
//! The PDF shows the plain text; [`SampleDoc::entities`] and `samples/expected_entities.json`
//! are derived from the markup, so the expected entities cannot drift from the documents.
//! The line wrapper never breaks inside a marked entity, so each one appears verbatim in the
//! extracted text.
//!
//! ## How the PDFs are written
//!
//! By hand with `lopdf`: standard-14 fonts (Helvetica, Helvetica-Bold) with
//! `/WinAnsiEncoding` (so `§` is byte `0xA7`), one `Tj` per line, `T*` between the lines of a
//! paragraph and a two-line `Td` between paragraphs, which `pdf-extract` reads back as a blank
//! line. Nothing time- or randomness-dependent is written, so the bytes are reproducible:
//! regenerate with `cargo run -p lexpipe --example generate_samples -- samples`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use lopdf::content::{Content, Operation};
use lopdf::{Dictionary, Document, Object, Stream, StringFormat, dictionary};

use crate::model::EntityKind;

/// Files in `samples/` that are byte-identical copies of another sample, `(copy, original)`:
/// the pipeline must notice the same content under a second name and read it once.
pub const DUPLICATES: &[(&str, &str)] = &[("complaint_copy.pdf", "complaint.pdf")];

/// Name of the file listing, for every sample, the entities a careful reader finds in it.
pub const EXPECTED_ENTITIES_FILE: &str = "expected_entities.json";

/// The most characters put on one line before wrapping.
pub const WRAP_COLUMNS: usize = 90;

const PAGE_WIDTH: i64 = 612;
const PAGE_HEIGHT: i64 = 792;
const MARGIN_LEFT: i64 = 72;
/// Baseline of the first line on a page.
const FIRST_BASELINE: i64 = 720;
/// Lowest baseline allowed for body text.
const LAST_BASELINE: i64 = 72;
const FOOTER_BASELINE: i64 = 40;
/// Line spacing. `pdf-extract` starts a new line when the baseline moves by more than half
/// the font size and inserts a blank line when it moves by more than 1.5 times the font size:
/// 13pt stays under 15 (1.5 x 10pt body text) and a paragraph gap of 26pt is well over it.
const LEADING: i64 = 13;
const BODY_SIZE: i64 = 10;
const HEADING_SIZE: i64 = 11;
const FOOTER_SIZE: i64 = 8;
/// Lines that fit between the first and the last baseline.
const LINES_PER_PAGE: usize = ((FIRST_BASELINE - LAST_BASELINE) / LEADING) as usize + 1;

/// A piece of a sample document. Text may contain entity markup (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// Bold text; `\n` separates lines (a court caption, a section title).
    Heading(&'static str),
    /// Body text, wrapped at [`WRAP_COLUMNS`].
    Para(&'static str),
    /// One paragraph whose lines are kept as written (an address, a signature block, a
    /// transcript's speaker turns); a line longer than [`WRAP_COLUMNS`] is still wrapped.
    Lines(&'static [&'static str]),
    /// Start a new page here.
    PageBreak,
}

/// One synthetic document of the sample set.
///
/// The content is a list of [`Block`]s rather than fixed pages: pages are cut when full, as a
/// word processor would, and [`SampleDoc::page_texts`] says where the cuts fall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleDoc {
    /// File name in `samples/`.
    pub file_name: &'static str,
    /// What kind of legal document it is (`complaint`, `lease`, ...), as the structured
    /// extraction stage should classify it.
    pub document_type: &'static str,
    /// Document title, written to the PDF's Info dictionary.
    pub title: &'static str,
    /// One line for `samples/README.md`.
    pub description: &'static str,
    /// Running footer, followed by "- Page N of M" on every page, as court filings have.
    pub footer: Option<&'static str>,
    /// The content in reading order, with entity markup.
    pub blocks: Vec<Block>,
}

/// An entity a careful human reader sees in a sample, as listed in `expected_entities.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedEntity {
    pub kind: EntityKind,
    /// Exactly as it appears in the document text.
    pub text: String,
    /// The normalised value the model defines for DATE, MONEY, PHONE and EMAIL
    /// (see [`crate::model::RawMention::normalized`]); `None` for other kinds.
    pub normalized: Option<String>,
}

impl SampleDoc {
    /// Distinct entities (by kind and text) in order of first appearance.
    pub fn entities(&self) -> Vec<ExpectedEntity> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for block in &self.blocks {
            for source in block_sources(block) {
                let marked = parse_markup(source);
                for span in marked.spans {
                    let text = marked.plain[span.range].to_string();
                    if seen.insert((span.kind, text.clone())) {
                        let normalized = normalized_value(span.kind, &text, span.normalized);
                        out.push(ExpectedEntity {
                            kind: span.kind,
                            text,
                            normalized,
                        });
                    }
                }
            }
        }
        out
    }

    /// The text each page of [`render_pdf`]'s output should yield, normalised as
    /// [`crate::ocr::normalize_page_text`] does: lines joined by `\n`, paragraphs by a blank
    /// line, the footer last. Tests compare extraction against it.
    pub fn page_texts(&self) -> Vec<String> {
        let pages = self.layout();
        pages.iter().map(|page| page.expected_text()).collect()
    }

    /// Number of pages [`render_pdf`] produces.
    pub fn page_count(&self) -> usize {
        self.layout().len()
    }

    fn layout(&self) -> Vec<PageSpec> {
        let mut paragraphs = Vec::new();
        let mut break_before = false;
        for block in &self.blocks {
            let (style, sources): (Style, Vec<&str>) = match block {
                Block::PageBreak => {
                    break_before = true;
                    continue;
                }
                Block::Heading(text) => (Style::Heading, text.split('\n').collect()),
                Block::Para(text) => (Style::Body, vec![*text]),
                Block::Lines(lines) => (Style::Body, lines.to_vec()),
            };
            let lines = sources
                .into_iter()
                .flat_map(|source| {
                    let marked = parse_markup(source);
                    let protected: Vec<Range<usize>> =
                        marked.spans.iter().map(|s| s.range.clone()).collect();
                    wrap(&marked.plain, &protected, WRAP_COLUMNS)
                })
                .collect();
            paragraphs.push(Paragraph {
                lines,
                style,
                break_before,
            });
            break_before = false;
        }
        let mut pages: Vec<PageSpec> = paginate(&paragraphs)
            .into_iter()
            .map(|lines| PageSpec {
                lines,
                footer: None,
                rectangle: false,
                scan: None,
            })
            .collect();
        if let Some(footer) = self.footer {
            let total = pages.len();
            for (i, page) in pages.iter_mut().enumerate() {
                page.footer = Some(format!("{footer} - Page {} of {total}", i + 1));
            }
        }
        pages
    }
}

/// Renders a sample to PDF bytes. Deterministic: the same document gives the same bytes.
///
/// # Panics
/// On malformed entity markup in the document (an unclosed `[[`, an unknown kind): the
/// documents are static data checked by this module's tests.
pub fn render_pdf(doc: &SampleDoc) -> Vec<u8> {
    write_pdf(&doc.layout(), doc.title)
}

/// A PDF whose pages hold the given texts, for tests elsewhere that need a real PDF with
/// known content. Each string is one page: blank lines separate paragraphs, `\n` separates
/// lines, long lines are wrapped at [`WRAP_COLUMNS`]; an empty string gives a page with no
/// text layer. A page too long for one sheet (about 45 lines) continues on the next.
/// Characters outside Windows-1252 are written as `?`.
pub fn text_only_pdf(pages: &[&str]) -> Vec<u8> {
    write_pdf(&plain_pages(pages), "Test document")
}

/// A three-page PDF whose second page has no text layer, only a drawn rectangle (what a
/// scanned page looks like to a text extractor). Pages 1 and 3 read
/// `"Page one has a text layer."` and `"Page three has a text layer."`.
pub fn pdf_with_blank_page() -> Vec<u8> {
    let mut pages = plain_pages(&[
        "Page one has a text layer.",
        "",
        "Page three has a text layer.",
    ]);
    pages[1].rectangle = true;
    write_pdf(&pages, "Document with a blank page")
}

/// Width and height in pixels of a scanned page of [`long_filing_pdf`]: a Letter page at
/// about 72 dpi, 8-bit grey, so about 480 KB of image data per scan.
pub const SCAN_PIXELS: (u32, u32) = (612, 792);

/// A long court filing for benchmarks and memory measurements: `text_pages` pages of the
/// sample documents' text (headings, paragraphs and entities as in [`documents`], taken in
/// turn from a point that depends on `seed`), with `scanned_pages` image-only pages spread
/// evenly through it — full-page greyscale images of [`SCAN_PIXELS`] with noise-like
/// content and no text layer, what a scanned exhibit looks like to a text extractor.
/// Every text page carries a footer naming `seed` and the page, so different seeds give
/// different content (and content hashes). Deterministic: the same arguments give the
/// same bytes.
///
/// With 40 text pages and 2 scans the file is about 1 MB.
pub fn long_filing_pdf(seed: u64, text_pages: usize, scanned_pages: usize) -> Vec<u8> {
    let source: Vec<PageSpec> = documents().iter().flat_map(SampleDoc::layout).collect();
    let total = text_pages + scanned_pages;
    // Distinct positions, since total ≥ scans: k·total/(scans+1) grows with k.
    let scan_at: Vec<usize> = (1..=scanned_pages)
        .map(|k| k * total / (scanned_pages + 1))
        .collect();
    let mut next_text = usize::try_from(seed).unwrap_or(0) % source.len().max(1);
    let mut pages = Vec::with_capacity(total);
    for index in 0..total {
        if scan_at.contains(&index) {
            let (width, height) = SCAN_PIXELS;
            pages.push(PageSpec {
                lines: Vec::new(),
                footer: None,
                rectangle: false,
                scan: Some(Scan {
                    width,
                    height,
                    seed: seed.wrapping_mul(1_000_003).wrapping_add(index as u64),
                }),
            });
        } else {
            let mut page = source[next_text % source.len()].clone();
            next_text += 1;
            page.footer = Some(format!(
                "Case No. 3:24-cv-{:05}-JST - Exhibit bundle {seed} - Page {} of {total}",
                10_000 + seed % 90_000,
                index + 1
            ));
            pages.push(page);
        }
    }
    write_pdf(&pages, &format!("Exhibit bundle {seed}"))
}

/// User password of [`encrypted_pdf`], for tests that want to show it is really encrypted.
pub const ENCRYPTED_PDF_USER_PASSWORD: &str = "lexpipe-user-secret";

/// An RC4-encrypted one-page PDF with a non-empty user password
/// ([`ENCRYPTED_PDF_USER_PASSWORD`]): it cannot be opened without it, so OCR must report
/// [`crate::ocr::OcrError::Encrypted`].
pub fn encrypted_pdf() -> Vec<u8> {
    encrypted_with(
        "This text is only readable with the password.",
        ENCRYPTED_PDF_USER_PASSWORD,
    )
}

/// An encrypted one-page PDF with an empty user password and only an owner password (the
/// "no copying / no editing" restrictions many court PDFs carry). Every reader opens it
/// without asking, so OCR must read its text: `"Restricted but readable."`.
pub fn restricted_pdf() -> Vec<u8> {
    encrypted_with("Restricted but readable.", "")
}

/// Writes every sample PDF, the byte-identical copies in [`DUPLICATES`],
/// `expected_entities.json` and `README.md` into `dir` (created if missing), returning the
/// paths written.
///
/// # Errors
/// When the directory or a file cannot be written.
pub fn write_samples(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let docs = documents();
    let mut rendered: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    let mut written = Vec::new();
    let mut write = |name: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    for doc in &docs {
        let bytes = render_pdf(doc);
        write(doc.file_name, &bytes)?;
        rendered.insert(doc.file_name, bytes);
    }
    for (copy, original) in DUPLICATES {
        let bytes = rendered
            .get(original)
            .with_context(|| format!("{copy} copies {original}, which is not a sample"))?;
        write(copy, bytes)?;
    }
    write(
        EXPECTED_ENTITIES_FILE,
        expected_entities_json(&docs).as_bytes(),
    )?;
    write("README.md", readme(&docs).as_bytes())?;
    Ok(written)
}

/// The content of `expected_entities.json`, pretty-printed with a final newline: per file,
/// its document type, page count and entities (`kind`, `text`, and `normalized` where the
/// model defines one); copies are listed as `{"duplicate_of": original}`. Files are sorted
/// by name and fields keep a fixed order, so the output is stable and diffs stay readable.
pub fn expected_entities_json(docs: &[SampleDoc]) -> String {
    #[derive(serde::Serialize)]
    struct EntityJson {
        kind: EntityKind,
        text: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        normalized: Option<String>,
    }
    #[derive(serde::Serialize)]
    #[serde(untagged)]
    enum FileJson {
        Sample {
            document_type: &'static str,
            pages: usize,
            entities: Vec<EntityJson>,
        },
        Copy {
            duplicate_of: &'static str,
        },
    }
    let mut files: BTreeMap<&str, FileJson> = BTreeMap::new();
    for doc in docs {
        let entities = doc
            .entities()
            .into_iter()
            .map(|e| EntityJson {
                kind: e.kind,
                text: e.text,
                normalized: e.normalized,
            })
            .collect();
        files.insert(
            doc.file_name,
            FileJson::Sample {
                document_type: doc.document_type,
                pages: doc.page_count(),
                entities,
            },
        );
    }
    for (copy, original) in DUPLICATES {
        files.insert(
            copy,
            FileJson::Copy {
                duplicate_of: original,
            },
        );
    }
    // Serialising strings, numbers and a derived enum into a String cannot fail.
    let mut json = serde_json::to_string_pretty(&files).unwrap_or_default();
    json.push('\n');
    json
}

fn readme(docs: &[SampleDoc]) -> String {
    let mut out = String::from(
        "# Sample documents\n\
         \n\
         Synthetic legal documents for the demo and the end-to-end tests.\n\
         \n\
         **Everything in them is fictitious**: people, law firms, companies, street addresses,\n\
         e-mail addresses (`example.com`, `example.org` and `.test` domains) and telephone\n\
         numbers (the reserved 555-01xx range). Courts, statutes and published case citations\n\
         are real, as in any filing.\n\
         \n\
         | file | pages | document type | what it is |\n\
         |---|---|---|---|\n",
    );
    for doc in docs {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            doc.file_name,
            doc.page_count(),
            doc.document_type,
            doc.description
        ));
    }
    for (copy, original) in DUPLICATES {
        out.push_str(&format!(
            "| `{copy}` | | | a byte-identical copy of `{original}`: the pipeline must read it once |\n"
        ));
    }
    out.push_str(&format!(
        "\n\
         ## `{EXPECTED_ENTITIES_FILE}`\n\
         \n\
         For every file: its document type, its page count and the entities a careful reader\n\
         finds in its text, each exactly as written (every `text` occurs verbatim in the\n\
         extracted text), with `normalized` for dates (`2024-03-04`), amounts\n\
         (`USD 250000.00`), phone numbers (`+14155550142`) and e-mail addresses (lower case).\n\
         Kinds: PERSON, ORG, LOCATION, ADDRESS (street addresses), DATE, MONEY, COURT,\n\
         CASE_NUMBER, CASE_NAME, STATUTE, CITATION (published decisions), EMAIL, PHONE. Each\n\
         distinct surface form is listed once per file, in order of first appearance, so\n\
         `MARIA DELGADO` in a caption and `Maria Delgado` in the body are both listed. Not\n\
         listed: short back-references (`Ms. Delgado`, `Officer Kessler`), transcript speaker\n\
         labels (`MS. PARK:`) and state names used as adjectives (`a Delaware corporation`). Copies are listed as `{{\"duplicate_of\": \"...\"}}`.\n\
         \n\
         ## Regenerating\n\
         \n\
         The files are generated, byte for byte reproducibly, from `shared/src/samples.rs`,\n\
         where each document's text carries its entity markup (`[[PERSON:Maria Delgado]]`), so\n\
         the PDFs and the expected entities cannot drift apart. Do not edit them by hand; after\n\
         changing the generator run:\n\
         \n\
         ```sh\n\
         cargo run -p lexpipe --example generate_samples -- samples\n\
         ```\n\
         \n\
         (`cargo test -p lexpipe --lib samples` fails while the files here are stale.)\n\
         \n\
         The PDFs use the standard Helvetica fonts with WinAnsiEncoding (so `§` is one byte),\n\
         uncompressed content streams with one `Tj` per line, and a two-line gap between\n\
         paragraphs, so the text layer reads back page by page with blank lines between\n\
         paragraphs.\n"
    ));
    out
}

// ---------------------------------------------------------------------------------------
// Markup

struct Marked {
    plain: String,
    spans: Vec<Span>,
}

struct Span {
    kind: EntityKind,
    /// Byte range in `Marked::plain`.
    range: Range<usize>,
    normalized: Option<String>,
}

fn block_sources(block: &Block) -> Vec<&'static str> {
    match *block {
        Block::Heading(text) => text.split('\n').collect(),
        Block::Para(text) => vec![text],
        Block::Lines(lines) => lines.to_vec(),
        Block::PageBreak => Vec::new(),
    }
}

fn parse_markup(source: &str) -> Marked {
    let mut plain = String::with_capacity(source.len());
    let mut spans = Vec::new();
    let mut rest = source;
    while let Some(open) = rest.find("[[") {
        plain.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after
            .find("]]")
            .unwrap_or_else(|| panic!("unclosed [[ in sample text {source:?}"));
        let inner = &after[..close];
        let (kind, body) = inner
            .split_once(':')
            .unwrap_or_else(|| panic!("entity markup without KIND: in {inner:?}"));
        let kind = EntityKind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind)
            .unwrap_or_else(|| panic!("unknown entity kind {kind:?} in sample text"));
        let (text, normalized) = match body.split_once('|') {
            Some((text, normalized)) => (text, Some(normalized.to_string())),
            None => (body, None),
        };
        let start = plain.len();
        plain.push_str(text);
        spans.push(Span {
            kind,
            range: start..plain.len(),
            normalized,
        });
        rest = &after[close + 2..];
    }
    plain.push_str(rest);
    Marked { plain, spans }
}

/// The normalised value as the model defines it: given in the markup for DATE and MONEY,
/// derived for EMAIL (lower case) and PHONE (`+1` and the ten digits of a NANP number).
fn normalized_value(kind: EntityKind, text: &str, given: Option<String>) -> Option<String> {
    match kind {
        EntityKind::Email => Some(given.unwrap_or_else(|| text.to_lowercase())),
        EntityKind::Phone => given.or_else(|| {
            let digits: String = text.chars().filter(char::is_ascii_digit).collect();
            match digits.len() {
                10 => Some(format!("+1{digits}")),
                11 if digits.starts_with('1') => Some(format!("+{digits}")),
                _ => None,
            }
        }),
        _ => given,
    }
}

// ---------------------------------------------------------------------------------------
// Layout

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Body,
    Heading,
}

struct Paragraph {
    lines: Vec<String>,
    style: Style,
    break_before: bool,
}

#[derive(Debug, Clone)]
struct Line {
    text: String,
    style: Style,
    /// A blank line separates this line from the previous one (a new paragraph).
    gap_before: bool,
}

#[derive(Debug, Clone)]
struct PageSpec {
    lines: Vec<Line>,
    footer: Option<String>,
    /// Draw a frame: a page with graphics but no text.
    rectangle: bool,
    /// Draw a full-page greyscale image: a scanned page, with no text layer.
    scan: Option<Scan>,
}

/// The image of a scanned page: noise-like grey pixels (paper grain, toner speckle), so
/// that it is as large in the file as a real scan and does not compress to nothing.
#[derive(Debug, Clone, Copy)]
struct Scan {
    width: u32,
    height: u32,
    /// Seeds the pixels: the same seed gives the same bytes.
    seed: u64,
}

impl Scan {
    /// One byte per pixel, row by row (`/DeviceGray`, 8 bits per component).
    fn pixels(&self) -> Vec<u8> {
        let n = self.width as usize * self.height as usize;
        let mut out = Vec::with_capacity(n);
        // xorshift64 (never seeded with 0): reproducible without a dependency.
        let mut x = self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        while out.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Light paper (0xC0..=0xFF) with grain: 6 bits of noise per pixel.
            out.extend(x.to_le_bytes().map(|b| 0xC0 | (b & 0x3F)));
        }
        out.truncate(n);
        out
    }
}

impl PageSpec {
    fn expected_text(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            if !out.is_empty() {
                out.push_str(if line.gap_before { "\n\n" } else { "\n" });
            }
            out.push_str(&line.text);
        }
        if let Some(footer) = &self.footer {
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            out.push_str(footer);
        }
        out
    }
}

/// Greedy word wrap at `width` characters that never breaks inside a `protected` byte range.
fn wrap(text: &str, protected: &[Range<usize>], width: usize) -> Vec<String> {
    let mut words = Vec::new();
    let mut start = 0;
    for (at, c) in text.char_indices() {
        if c == ' ' && !protected.iter().any(|r| r.contains(&at)) {
            words.push(&text[start..at]);
            start = at + 1;
        }
    }
    words.push(&text[start..]);

    let mut lines = Vec::new();
    let mut line = String::new();
    let mut line_chars = 0;
    for (i, word) in words.into_iter().enumerate() {
        let word_chars = word.chars().count();
        if i == 0 {
            line.push_str(word);
            line_chars = word_chars;
        } else if line_chars + 1 + word_chars <= width {
            line.push(' ');
            line.push_str(word);
            line_chars += 1 + word_chars;
        } else {
            lines.push(std::mem::take(&mut line));
            line.push_str(word);
            line_chars = word_chars;
        }
    }
    lines.push(line);
    lines.retain(|l| !l.trim().is_empty());
    lines
}

/// Cuts paragraphs into pages of at most [`LINES_PER_PAGE`] line slots (a paragraph gap takes
/// one). Always returns at least one page, possibly empty.
fn paginate(paragraphs: &[Paragraph]) -> Vec<Vec<Line>> {
    let mut pages: Vec<Vec<Line>> = vec![Vec::new()];
    let mut used = 0;
    for paragraph in paragraphs {
        let page_has_text = pages.last().is_some_and(|p| !p.is_empty());
        let mut new_page = paragraph.break_before && page_has_text;
        // Keep a heading with at least two lines of what follows it.
        if paragraph.style == Style::Heading && page_has_text {
            let needed = 1 + paragraph.lines.len() + 1 + 2;
            new_page |= used + needed > LINES_PER_PAGE;
        }
        if new_page {
            pages.push(Vec::new());
            used = 0;
        }
        for (i, text) in paragraph.lines.iter().enumerate() {
            let mut gap_before = i == 0 && used > 0;
            let cost = 1 + usize::from(gap_before);
            if used + cost > LINES_PER_PAGE {
                pages.push(Vec::new());
                used = 0;
                gap_before = false;
            }
            used += 1 + usize::from(gap_before);
            if let Some(page) = pages.last_mut() {
                page.push(Line {
                    text: text.clone(),
                    style: paragraph.style,
                    gap_before,
                });
            }
        }
    }
    pages
}

/// Pages for [`text_only_pdf`]: each input string laid out on its own page(s).
fn plain_pages(pages: &[&str]) -> Vec<PageSpec> {
    let mut out = Vec::new();
    for page in pages {
        let mut paragraphs = Vec::new();
        let mut current: Vec<String> = Vec::new();
        for line in page.lines() {
            if line.trim().is_empty() {
                if !current.is_empty() {
                    paragraphs.push(std::mem::take(&mut current));
                }
            } else {
                current.extend(wrap(line, &[], WRAP_COLUMNS));
            }
        }
        if !current.is_empty() {
            paragraphs.push(current);
        }
        let paragraphs: Vec<Paragraph> = paragraphs
            .into_iter()
            .map(|lines| Paragraph {
                lines,
                style: Style::Body,
                break_before: false,
            })
            .collect();
        out.extend(paginate(&paragraphs).into_iter().map(|lines| PageSpec {
            lines,
            footer: None,
            rectangle: false,
            scan: None,
        }));
    }
    out
}

// ---------------------------------------------------------------------------------------
// PDF writing

/// Windows-1252 (PDF's WinAnsiEncoding) byte for a character, if it has one.
fn win_ansi(c: char) -> Option<u8> {
    let byte = match c {
        ' '..='~' => c as u8,
        '\u{A0}'..='\u{FF}' => c as u8,
        '€' => 0x80,
        '‚' => 0x82,
        'ƒ' => 0x83,
        '„' => 0x84,
        '…' => 0x85,
        '†' => 0x86,
        '‡' => 0x87,
        'ˆ' => 0x88,
        '‰' => 0x89,
        'Š' => 0x8A,
        '‹' => 0x8B,
        'Œ' => 0x8C,
        'Ž' => 0x8E,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '•' => 0x95,
        '–' => 0x96,
        '—' => 0x97,
        '˜' => 0x98,
        '™' => 0x99,
        'š' => 0x9A,
        '›' => 0x9B,
        'œ' => 0x9C,
        'ž' => 0x9E,
        'Ÿ' => 0x9F,
        _ => return None,
    };
    Some(byte)
}

fn encode_win_ansi(text: &str) -> Vec<u8> {
    text.chars().map(|c| win_ansi(c).unwrap_or(b'?')).collect()
}

fn op(operator: &str, operands: Vec<Object>) -> Operation {
    Operation::new(operator, operands)
}

fn font_op(style: Style) -> Operation {
    match style {
        Style::Body => op("Tf", vec![Object::Name(b"F1".to_vec()), BODY_SIZE.into()]),
        Style::Heading => op(
            "Tf",
            vec![Object::Name(b"F2".to_vec()), HEADING_SIZE.into()],
        ),
    }
}

fn show(text: &str) -> Operation {
    op(
        "Tj",
        vec![Object::String(encode_win_ansi(text), StringFormat::Literal)],
    )
}

/// Name of a scanned page's image in its resources.
const SCAN_XOBJECT: &[u8] = b"Scan";

fn page_content(page: &PageSpec) -> Vec<u8> {
    let mut ops = Vec::new();
    if page.scan.is_some() {
        ops.extend([
            op("q", vec![]),
            op(
                "cm",
                vec![
                    PAGE_WIDTH.into(),
                    0.into(),
                    0.into(),
                    PAGE_HEIGHT.into(),
                    0.into(),
                    0.into(),
                ],
            ),
            op("Do", vec![Object::Name(SCAN_XOBJECT.to_vec())]),
            op("Q", vec![]),
        ]);
    }
    if page.rectangle {
        ops.extend([
            op("q", vec![]),
            op("w", vec![Object::Real(0.75)]),
            op(
                "re",
                vec![
                    MARGIN_LEFT.into(),
                    LAST_BASELINE.into(),
                    (PAGE_WIDTH - 2 * MARGIN_LEFT).into(),
                    (FIRST_BASELINE - LAST_BASELINE).into(),
                ],
            ),
            op("S", vec![]),
            op("Q", vec![]),
        ]);
    }
    if !page.lines.is_empty() {
        ops.push(op("BT", vec![]));
        ops.push(op("TL", vec![LEADING.into()]));
        let mut style = None;
        for (i, line) in page.lines.iter().enumerate() {
            if style != Some(line.style) {
                ops.push(font_op(line.style));
                style = Some(line.style);
            }
            if i == 0 {
                ops.push(op("Td", vec![MARGIN_LEFT.into(), FIRST_BASELINE.into()]));
            } else if line.gap_before {
                ops.push(op("Td", vec![0.into(), (-2 * LEADING).into()]));
            } else {
                ops.push(op("T*", vec![]));
            }
            ops.push(show(&line.text));
        }
        ops.push(op("ET", vec![]));
    }
    if let Some(footer) = &page.footer {
        ops.extend([
            op("BT", vec![]),
            op("Tf", vec![Object::Name(b"F1".to_vec()), FOOTER_SIZE.into()]),
            op("Td", vec![MARGIN_LEFT.into(), FOOTER_BASELINE.into()]),
            show(footer),
            op("ET", vec![]),
        ]);
    }
    // Encoding a list of operations we built only fails on I/O to a Vec, which cannot fail.
    Content { operations: ops }.encode().unwrap_or_default()
}

fn font(base: &str) -> Dictionary {
    dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => base,
        "Encoding" => "WinAnsiEncoding",
    }
}

fn build_document(pages: &[PageSpec], title: &str) -> Document {
    let mut doc = Document::with_version("1.7");
    // A classic cross-reference table rather than a stream: readable by every tool, old
    // ones included, and easy to inspect.
    doc.reference_table.cross_reference_type = lopdf::xref::XrefType::CrossReferenceTable;
    let pages_id = doc.new_object_id();
    let regular = doc.add_object(font("Helvetica"));
    let bold = doc.add_object(font("Helvetica-Bold"));
    let fonts = dictionary! { "F1" => regular, "F2" => bold };
    let resources = doc.add_object(dictionary! { "Font" => fonts.clone() });
    let media_box: Vec<Object> = vec![0.into(), 0.into(), PAGE_WIDTH.into(), PAGE_HEIGHT.into()];
    let mut kids: Vec<Object> = Vec::new();
    for page in pages {
        // Uncompressed: the bytes then depend on nothing but this code (not on a deflate
        // implementation's version), and the text operators stay readable with `less`.
        let content = doc.add_object(Stream::new(Dictionary::new(), page_content(page)));
        let page_resources = match &page.scan {
            None => resources,
            Some(scan) => {
                let image = doc.add_object(Stream::new(
                    dictionary! {
                        "Type" => "XObject",
                        "Subtype" => "Image",
                        "Width" => i64::from(scan.width),
                        "Height" => i64::from(scan.height),
                        "ColorSpace" => "DeviceGray",
                        "BitsPerComponent" => 8,
                    },
                    scan.pixels(),
                ));
                let mut xobjects = Dictionary::new();
                xobjects.set(SCAN_XOBJECT, image);
                doc.add_object(dictionary! { "Font" => fonts.clone(), "XObject" => xobjects })
            }
        };
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "MediaBox" => media_box.clone(),
            "Resources" => page_resources,
            "Contents" => content,
        });
        kids.push(page_id.into());
    }
    let count = i64::try_from(kids.len()).unwrap_or(i64::MAX);
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => count,
        }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    let info = doc.add_object(dictionary! {
        "Title" => Object::string_literal(encode_win_ansi(title)),
        "Producer" => Object::string_literal("lexpipe sample generator"),
    });
    doc.trailer.set("Root", catalog);
    doc.trailer.set("Info", info);
    doc
}

fn save(doc: &mut Document) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = doc.save_to(&mut out);
    out
}

fn write_pdf(pages: &[PageSpec], title: &str) -> Vec<u8> {
    save(&mut build_document(pages, title))
}

fn encrypted_with(text: &str, user_password: &str) -> Vec<u8> {
    let mut doc = build_document(&plain_pages(&[text]), "Encrypted test document");
    // A fixed file identifier keeps the output deterministic (RC4 has no random IV).
    let id = Object::String(b"lexpipe-sample-0".to_vec(), StringFormat::Hexadecimal);
    doc.trailer.set("ID", vec![id.clone(), id]);
    // Revision 2 (40-bit RC4) rather than 3: lopdf pads the revision-3 /U value with random
    // bytes, and test fixtures are easier to reason about when they are byte-stable.
    let version = lopdf::EncryptionVersion::V1 {
        document: &doc,
        owner_password: "lexpipe-owner-secret",
        user_password,
        permissions: lopdf::Permissions::PRINTABLE,
    };
    // Both steps only fail on a malformed document or parameters, and these are fixed: a
    // failure is a bug here, and returning an unencrypted file instead would hide it.
    let state = lopdf::EncryptionState::try_from(version).expect("RC4 parameters are valid");
    doc.encrypt(&state)
        .expect("a freshly built document can be encrypted");
    save(&mut doc)
}

// ---------------------------------------------------------------------------------------
// The documents

/// Every sample document, in a stable order. Copies listed in [`DUPLICATES`] are not
/// included: [`write_samples`] writes them from the original's bytes.
pub fn documents() -> Vec<SampleDoc> {
    vec![
        complaint(),
        motion_to_dismiss(),
        court_order(),
        services_agreement(),
        nda(),
        lease(),
        demand_letter(),
        deposition_excerpt(),
        settlement_agreement(),
    ]
}

fn complaint() -> SampleDoc {
    use Block::*;
    SampleDoc {
        file_name: "complaint.pdf",
        document_type: "complaint",
        title: "Complaint - Delgado v. City of Alder Bay",
        description: "federal civil-rights complaint (42 U.S.C. § 1983) for wrongful arrest and \
                      excessive force, N.D. Cal.",
        footer: Some("COMPLAINT - Case No. 3:24-cv-01234-JST"),
        blocks: vec![
            Lines(&[
                "[[PERSON:Elena Park]] (SBN 298114)",
                "[[ORG:Park & Whitfield LLP]]",
                "[[ADDRESS:1200 Mission Vista Avenue, Suite 400, San Francisco, CA 94105]]",
                "Telephone: [[PHONE:(415) 555-0142]]",
                "Email: [[EMAIL:epark@parkwhitfield.test]]",
                "Attorneys for Plaintiff Maria Delgado",
            ]),
            Heading("UNITED STATES DISTRICT COURT\nNORTHERN DISTRICT OF CALIFORNIA"),
            Lines(&[
                "Maria Delgado, an individual,",
                "Plaintiff,",
                "v.",
                "City of Alder Bay, a municipal corporation; Officer Daniel Kessler; and Does 1-10,",
                "Defendants.",
            ]),
            Lines(&[
                "Case No. [[CASE_NUMBER:3:24-cv-01234-JST]]",
                "COMPLAINT FOR VIOLATION OF CIVIL RIGHTS",
                "DEMAND FOR JURY TRIAL",
            ]),
            Heading("INTRODUCTION"),
            Para(
                "1. Plaintiff [[PERSON:Maria Delgado]] brings this civil-rights action against the \
                 [[ORG:City of Alder Bay]] and Officer [[PERSON:Daniel Kessler]] of the \
                 [[ORG:Alder Bay Police Department]] for the unlawful arrest and excessive force \
                 she suffered on [[DATE:March 4, 2024|2024-03-04]], in the driveway of her own home.",
            ),
            Heading("JURISDICTION AND VENUE"),
            Para(
                "2. This action arises under [[STATUTE:42 U.S.C. § 1983]] and the Fourth and \
                 Fourteenth Amendments to the United States Constitution. This Court has \
                 subject-matter jurisdiction under [[STATUTE:28 U.S.C. § 1331]].",
            ),
            Para(
                "3. Venue is proper in the [[COURT:United States District Court for the Northern \
                 District of California]] because the events giving rise to these claims \
                 occurred in [[LOCATION:San Mateo County]].",
            ),
            Heading("PARTIES"),
            Para(
                "4. Plaintiff Maria Delgado is a 41-year-old registered nurse. She has lived at \
                 [[ADDRESS:418 Calder Street, Alder Bay, California]] since 2009.",
            ),
            Para(
                "5. Defendant City of Alder Bay is a municipal corporation organized under California \
                 law. It operates the Alder Bay Police Department and is \
                 responsible for the Department's policies, training and supervision.",
            ),
            Para(
                "6. Defendant Daniel Kessler is, and at all relevant times was, a police officer \
                 employed by the City of Alder Bay and acting under color of state law. He is sued \
                 in his individual capacity.",
            ),
            Para(
                "7. Plaintiff does not know the true names of the defendants sued as Does 1 through \
                 10 and will amend this complaint when they are ascertained. Each of them caused or \
                 contributed to the injuries alleged below.",
            ),
            Heading("FACTUAL ALLEGATIONS"),
            Para(
                "8. At approximately 9:40 p.m. on March 4, 2024, Ms. Delgado drove home after a \
                 twelve-hour shift at the hospital where she works. She parked in her driveway \
                 and was walking to her front door, still wearing her scrubs, when a patrol car \
                 stopped at the curb behind her.",
            ),
            Para(
                "9. Officer Kessler got out of the car and ordered her to stop. He said that a \
                 neighbor had reported a prowler. Ms. Delgado told him that she lived in the house, \
                 pointed to her name on the mailbox and offered to show him her hospital badge.",
            ),
            Para(
                "10. As Ms. Delgado reached slowly toward the badge clipped to her waistband, Officer \
                 Kessler grabbed her arm, swept her legs from under her and forced her face down onto \
                 the concrete. He pressed his knee into her back for more than a minute while she \
                 cried out that she could not breathe, and then handcuffed her.",
            ),
            Para(
                "11. Ms. Delgado did not resist, did not threaten anyone and was not suspected of any \
                 crime other than standing in front of her own home. A neighbor, [[PERSON:Thomas \
                 Whitaker]], recorded the encounter on his phone from across the street.",
            ),
            Para(
                "12. A sergeant arrived at 9:52 p.m. Although Ms. Delgado's neighbors confirmed that \
                 she lived at the house, the sergeant approved her arrest for resisting an officer. \
                 Ms. Delgado was taken to the police station, held for six hours and released \
                 without charge at 3:55 the next morning.",
            ),
            Para(
                "13. Ms. Delgado suffered a fractured left wrist, abrasions to her face and knees, \
                 and bruising across her back. She still has pain in her wrist and has been treated \
                 for anxiety and sleeplessness since the arrest.",
            ),
            Para(
                "14. She incurred medical expenses of [[MONEY:$18,460.72|USD 18460.72]] and lost \
                 two weeks of wages while she was unable to work.",
            ),
            Para(
                "15. On [[DATE:April 22, 2024|2024-04-22]], Ms. Delgado presented a claim to the City \
                 under the Government Claims Act. The City rejected the claim.",
            ),
            Para(
                "16. The City has long known that its officers detain residents of color in their \
                 own neighborhoods on thin reports of suspicious activity and use takedowns on people \
                 who are not resisting. At least four complaints of this kind were made to the \
                 Department between 2021 and 2023. The City did not retrain or discipline the \
                 officers involved, and did not change its policies.",
            ),
            Heading(
                "FIRST CLAIM FOR RELIEF\nUnreasonable Seizure and Excessive Force - Against Officer Kessler",
            ),
            Para("17. Plaintiff incorporates the preceding paragraphs."),
            Para(
                "18. Officer Kessler seized Ms. Delgado without reasonable suspicion or probable \
                 cause, and used force that no reasonable officer would have used against a person \
                 who posed no threat and was not resisting, in violation of the Fourth Amendment as \
                 applied to the States by the Fourteenth Amendment. See [[CITATION:Graham v. Connor, \
                 490 U.S. 386 (1989)]].",
            ),
            Para(
                "19. As a direct result, Ms. Delgado suffered physical injury, pain, emotional \
                 distress, medical expenses and lost wages. Officer Kessler acted with reckless \
                 disregard for her rights, which warrants punitive damages.",
            ),
            Heading("SECOND CLAIM FOR RELIEF\nMunicipal Liability - Against the City of Alder Bay"),
            Para("20. Plaintiff incorporates the preceding paragraphs."),
            Para(
                "21. The City's custom of tolerating unjustified detentions and takedowns, and its \
                 failure to train and discipline its officers despite notice of the problem, were \
                 the moving force behind the violation of Ms. Delgado's rights. The City is \
                 therefore liable under [[CITATION:Monell v. Department of Social Services, 436 U.S. \
                 658 (1978)]].",
            ),
            Heading("PRAYER FOR RELIEF"),
            Para(
                "Plaintiff asks the Court to enter judgment in her favor and to award: (a) \
                 compensatory damages of not less than [[MONEY:$250,000|USD 250000.00]]; (b) \
                 punitive damages against Officer Kessler; (c) reasonable attorneys' fees and costs \
                 under [[STATUTE:42 U.S.C. § 1988]]; and (d) any further relief the Court finds \
                 just.",
            ),
            Heading("DEMAND FOR JURY TRIAL"),
            Para("Plaintiff demands a trial by jury on all issues so triable."),
            Lines(&[
                "Dated: [[DATE:June 12, 2024|2024-06-12]]",
                "Respectfully submitted,",
                "Park & Whitfield LLP",
                "/s/ Elena Park",
                "Elena Park",
                "Attorneys for Plaintiff Maria Delgado",
            ]),
        ],
    }
}

fn motion_to_dismiss() -> SampleDoc {
    use Block::*;
    SampleDoc {
        file_name: "motion_to_dismiss.pdf",
        document_type: "motion_to_dismiss",
        title: "Motion to Dismiss - Delgado v. City of Alder Bay",
        description: "the defendants' notice of motion and motion to dismiss under Rule 12(b)(6)",
        footer: Some("DEFENDANTS' MOTION TO DISMISS - Case No. 3:24-cv-01234-JST"),
        blocks: vec![
            Lines(&[
                "[[PERSON:Gregory Lindqvist]] (SBN 241905)",
                "Deputy City Attorney",
                "[[ORG:Office of the City Attorney, City of Alder Bay]]",
                "[[ADDRESS:500 Harbor Civic Plaza, Alder Bay, CA 94071]]",
                "Telephone: [[PHONE:(650) 555-0117]]",
                "Email: [[EMAIL:GLindqvist@alderbay.example.org]]",
                "Attorneys for Defendants [[ORG:City of Alder Bay]] and [[PERSON:Daniel Kessler]]",
            ]),
            Heading("UNITED STATES DISTRICT COURT\nNORTHERN DISTRICT OF CALIFORNIA"),
            Lines(&[
                "[[PERSON:MARIA DELGADO]], Plaintiff,",
                "v.",
                "[[ORG:CITY OF ALDER BAY]], et al., Defendants.",
                "Case No. [[CASE_NUMBER:3:24-cv-01234-JST]]",
                "DEFENDANTS' NOTICE OF MOTION AND MOTION TO DISMISS",
                "Hearing: [[DATE:September 19, 2024|2024-09-19]], 2:00 p.m.",
                "Judge: Hon. [[PERSON:Judith S. Thornton]]",
            ]),
            Heading("NOTICE OF MOTION"),
            Para(
                "TO PLAINTIFF AND HER ATTORNEYS OF RECORD: PLEASE TAKE NOTICE that on September 19, \
                 2024, at 2:00 p.m., or as soon thereafter as the matter may be heard, in Courtroom \
                 6 of the [[COURT:United States District Court for the Northern District of \
                 California]], Defendants City of Alder Bay and Daniel Kessler will and hereby do \
                 move to dismiss the Complaint under [[STATUTE:Fed. R. Civ. P. 12(b)(6)]].",
            ),
            Heading("MEMORANDUM OF POINTS AND AUTHORITIES"),
            Heading("I. INTRODUCTION"),
            Para(
                "Plaintiff [[PERSON:Maria Delgado]] alleges that she was detained and arrested outside her home \
                 on [[DATE:March 4, 2024|2024-03-04]]. Her second claim seeks to hold the City liable \
                 for that encounter, but the Complaint pleads no facts about any City policy, custom \
                 or training program. It relies instead on conclusions that the Supreme Court has held \
                 insufficient.",
            ),
            Heading("II. LEGAL STANDARD"),
            Para(
                "To survive a motion to dismiss, a complaint must contain sufficient factual matter, \
                 accepted as true, to state a claim to relief that is plausible on its face. \
                 [[CITATION:Bell Atlantic Corp. v. Twombly, 550 U.S. 544 (2007)]]; \
                 [[CITATION:Ashcroft v. Iqbal, 556 U.S. 662 (2009)]]. Threadbare recitals of the \
                 elements of a cause of action, supported by mere conclusory statements, do not \
                 suffice. [[CITATION:Iqbal, 556 U.S. at 678]].",
            ),
            Heading("III. ARGUMENT"),
            Para(
                "A municipality cannot be held liable under [[STATUTE:42 U.S.C. § 1983]] on a \
                 respondeat superior theory. [[CITATION:Monell v. Department of Social Services, 436 \
                 U.S. 658 (1978)]]. A plaintiff must identify a policy or custom that caused the \
                 violation. The Complaint alleges only that four complaints were made between 2021 \
                 and 2023, without saying what they concerned, whether they were sustained, or how \
                 the City responded to them.",
            ),
            Para(
                "A failure-to-train theory requires deliberate indifference, a stringent standard of \
                 fault. [[CITATION:Connick v. Thompson, 563 U.S. 51 (2011)]]. Plaintiff does not \
                 allege a pattern of similar constitutional violations by untrained employees, and \
                 the second claim should be dismissed.",
            ),
            Heading("IV. CONCLUSION"),
            Para(
                "Defendants respectfully ask the Court to dismiss the second claim for relief. \
                 Because Plaintiff has already presented her claim to the City and has had every \
                 opportunity to investigate it, dismissal should be without leave to amend.",
            ),
            Lines(&[
                "Dated: [[DATE:August 8, 2024|2024-08-08]]",
                "[[ORG:OFFICE OF THE CITY ATTORNEY]]",
                "/s/ Gregory Lindqvist",
                "Gregory Lindqvist, Deputy City Attorney",
            ]),
        ],
    }
}

fn court_order() -> SampleDoc {
    use Block::*;
    SampleDoc {
        file_name: "court_order.pdf",
        document_type: "court_order",
        title: "Order on Motion to Dismiss - Delgado v. City of Alder Bay",
        description: "the court's order granting in part and denying in part the motion to \
                      dismiss, with leave to amend",
        footer: None,
        blocks: vec![
            Heading("UNITED STATES DISTRICT COURT\nNORTHERN DISTRICT OF CALIFORNIA"),
            Lines(&[
                "[[PERSON:MARIA DELGADO]], Plaintiff,",
                "v.",
                "[[ORG:CITY OF ALDER BAY]], et al., Defendants.",
                "Case No. [[CASE_NUMBER:3:24-cv-01234-JST]]",
            ]),
            Heading(
                "ORDER GRANTING IN PART AND DENYING IN PART DEFENDANTS' MOTION TO DISMISS\n\
                 Re: ECF No. 18",
            ),
            Para(
                "Plaintiff [[PERSON:Maria Delgado]] sues the [[ORG:City of Alder Bay]] and Officer \
                 [[PERSON:Daniel Kessler]] under [[STATUTE:42 U.S.C. § 1983]] for an arrest outside \
                 her home on [[DATE:March 4, 2024|2024-03-04]]. Defendants move to dismiss the \
                 second claim, for municipal liability, under [[STATUTE:Fed. R. Civ. P. \
                 12(b)(6)]]. The Court heard argument on [[DATE:September 19, 2024|2024-09-19]]. \
                 [[PERSON:Elena Park]] appeared for Plaintiff; [[PERSON:Gregory Lindqvist]] \
                 appeared for Defendants.",
            ),
            Heading("I. LEGAL STANDARD"),
            Para(
                "A complaint survives a motion to dismiss when it pleads facts that allow the court \
                 to draw the reasonable inference that the defendant is liable for the misconduct \
                 alleged. [[CITATION:Ashcroft v. Iqbal, 556 U.S. 662 (2009)]]. The Court accepts \
                 the factual allegations as true but not legal conclusions couched as facts. \
                 [[CITATION:Bell Atlantic Corp. v. Twombly, 550 U.S. 544 (2007)]].",
            ),
            Heading("II. DISCUSSION"),
            Para(
                "The Complaint's allegations about the City's custom are thin. It alleges four prior \
                 complaints but not their substance or outcome, and it does not connect them to the \
                 conduct alleged here. Under [[CITATION:Monell v. Department of Social Services, 436 \
                 U.S. 658 (1978)]], that is not enough to plead that a policy or custom was the moving \
                 force behind the violation.",
            ),
            Para(
                "Defendants have not shown, however, that amendment would be futile. Leave to amend \
                 is freely given when justice so requires, [[STATUTE:Fed. R. Civ. P. 15(a)(2)]], and \
                 Plaintiff represented at the hearing that she has since obtained records of the prior \
                 complaints through a public records request.",
            ),
            Heading("III. CONCLUSION"),
            Para(
                "The motion is GRANTED as to the second claim, with leave to amend, and otherwise \
                 DENIED. Plaintiff may file an amended complaint by [[DATE:October 24, 2024|2024-10-24]]. \
                 The case management conference set for [[DATE:November 14, 2024|2024-11-14]] at \
                 2:00 p.m. remains on calendar.",
            ),
            Lines(&[
                "IT IS SO ORDERED.",
                "Dated: [[DATE:October 3, 2024|2024-10-03]]",
                "[[PERSON:JUDITH S. THORNTON]]",
                "United States District Judge",
            ]),
        ],
    }
}

fn services_agreement() -> SampleDoc {
    use Block::*;
    SampleDoc {
        file_name: "services_agreement.pdf",
        document_type: "services_agreement",
        title: "Master Services Agreement - Northwind Analytics and Bluefin Logistics",
        description: "master services agreement for a data-analytics platform between two \
                      companies, with fees, term, liability cap and governing law",
        footer: None,
        blocks: vec![
            Heading("MASTER SERVICES AGREEMENT"),
            Para(
                "This Master Services Agreement (the \"Agreement\") is entered into as of \
                 [[DATE:January 15, 2025|2025-01-15]] (the \"Effective Date\") by and between \
                 [[ORG:Northwind Analytics, Inc.]], a Delaware corporation with its principal office \
                 at [[ADDRESS:2250 Harbor Point Drive, Suite 300, Oakland, CA 94607]] \
                 (\"Provider\"), and [[ORG:Bluefin Logistics LLC]], a California limited liability \
                 company with its principal office at [[ADDRESS:88 Quarry Lane, Fremont, CA 94538]] \
                 (\"Client\").",
            ),
            Heading("1. Services"),
            Para(
                "Provider will give Client access to its Tidewater freight-analytics platform and \
                 will perform the implementation, training and support services described in each \
                 statement of work signed by both parties (each, an \"SOW\"). If an SOW conflicts \
                 with this Agreement, this Agreement controls unless the SOW expressly says \
                 otherwise.",
            ),
            Heading("2. Fees and Payment"),
            Para(
                "2.1 Client will pay Provider an annual platform fee of \
                 [[MONEY:$125,000.00|USD 125000.00]], invoiced in advance on the Effective Date and \
                 on each anniversary of it.",
            ),
            Para(
                "2.2 Support and maintenance are billed monthly at [[MONEY:USD 4,500|USD 4500.00]] \
                 per month. Additional services under an SOW are billed at the rates stated in that \
                 SOW.",
            ),
            Para(
                "2.3 Invoices are due within thirty (30) days of receipt. Amounts not paid when due \
                 bear interest at 1.5% per month or the highest rate permitted by law, whichever is \
                 lower.",
            ),
            Heading("3. Term and Termination"),
            Para(
                "3.1 This Agreement begins on the Effective Date and continues until \
                 [[DATE:January 14, 2027|2027-01-14]], unless terminated earlier under this \
                 Section. It renews for successive one-year terms unless either party gives notice \
                 of non-renewal at least sixty (60) days before the end of the current term.",
            ),
            Para(
                "3.2 Either party may terminate this Agreement if the other materially breaches it \
                 and does not cure the breach within thirty (30) days after written notice.",
            ),
            Heading("4. Confidentiality and Data"),
            Para(
                "Each party will protect the other's Confidential Information with at least the care \
                 it uses for its own, and in no event less than reasonable care. Client owns all \
                 shipment data it uploads to the platform; Provider may use it only to provide the \
                 services.",
            ),
            Heading("5. Limitation of Liability"),
            Para(
                "Except for breaches of Section 4 and a party's indemnity obligations, neither \
                 party's total liability under this Agreement will exceed \
                 [[MONEY:$500,000|USD 500000.00]], and neither party will be liable for lost \
                 profits or indirect, incidental or consequential damages.",
            ),
            Heading("6. Governing Law"),
            Para(
                "This Agreement is governed by the laws of the [[LOCATION:State of California]], \
                 without regard to its conflict-of-laws rules. The state and federal courts located \
                 in [[LOCATION:Alameda County]] have exclusive jurisdiction over any dispute arising \
                 out of it.",
            ),
            Heading("7. Notices"),
            Para(
                "Notices must be in writing and are effective on receipt. Notices to Provider go to \
                 [[EMAIL:legal@northwind-analytics.example.com]]; notices to Client go to \
                 [[EMAIL:contracts@bluefinlogistics.example.org]], with a copy by mail to the \
                 addresses above.",
            ),
            Para(
                "IN WITNESS WHEREOF, the parties have signed this Agreement as of the Effective Date.",
            ),
            Lines(&[
                "[[ORG:NORTHWIND ANALYTICS, INC.]]",
                "By: /s/ [[PERSON:Sofia Brennan]]",
                "Name: Sofia Brennan, Chief Executive Officer",
            ]),
            Lines(&[
                "[[ORG:BLUEFIN LOGISTICS LLC]]",
                "By: /s/ [[PERSON:Marcus Oyelaran]]",
                "Name: Marcus Oyelaran, Managing Member",
            ]),
        ],
    }
}

fn nda() -> SampleDoc {
    use Block::*;
    SampleDoc {
        file_name: "nda.pdf",
        document_type: "nda",
        title: "Mutual Nondisclosure Agreement - Helios Biotech and Verdant Ridge Capital",
        description: "mutual nondisclosure agreement between a biotech company and an investor",
        footer: None,
        blocks: vec![
            Heading("MUTUAL NONDISCLOSURE AGREEMENT"),
            Para(
                "This Mutual Nondisclosure Agreement is made on [[DATE:February 3, 2025|2025-02-03]] \
                 between [[ORG:Helios Biotech Corp.]], a Massachusetts corporation located at \
                 [[ADDRESS:75 Kendall Row, Cambridge, MA 02142]], and [[ORG:Verdant Ridge Capital \
                 LLC]], a Delaware limited liability company located at [[ADDRESS:410 Pine \
                 Terrace, Boston, MA 02110]] (each a \"Party\").",
            ),
            Heading("1. Purpose"),
            Para(
                "The Parties wish to evaluate a possible investment by Verdant Ridge Capital LLC in \
                 Helios Biotech Corp. (the \"Purpose\") and will for that Purpose disclose to each \
                 other information that is not public.",
            ),
            Heading("2. Confidential Information"),
            Para(
                "\"Confidential Information\" means any information disclosed by one Party to the \
                 other, in any form, that is marked confidential or that a reasonable person would \
                 understand to be confidential, including clinical data, manufacturing processes, \
                 financial statements and the terms of any proposed investment.",
            ),
            Para(
                "Confidential Information does not include information that is or becomes public \
                 through no fault of the receiving Party, was known to it before disclosure, is \
                 independently developed without use of the disclosing Party's information, or is \
                 rightfully received from a third party without a duty of confidentiality.",
            ),
            Heading("3. Obligations"),
            Para(
                "The receiving Party will use Confidential Information only for the Purpose, will \
                 disclose it only to its employees and advisers who need to know it and are bound by \
                 duties of confidentiality at least as strict as these, and will protect it with \
                 reasonable care.",
            ),
            Heading("4. Term"),
            Para(
                "This Agreement lasts for three (3) years from the date above. The obligations in \
                 Section 3 survive for five (5) years after disclosure, and for trade secrets for as \
                 long as they remain trade secrets under the [[STATUTE:Defend Trade Secrets Act, 18 \
                 U.S.C. § 1836]] and applicable state law.",
            ),
            Heading("5. Remedies and Governing Law"),
            Para(
                "Each Party agrees that a breach would cause irreparable harm for which damages would \
                 be inadequate, and that the other Party may seek injunctive relief without posting \
                 a bond. This Agreement is governed by the laws of the [[LOCATION:Commonwealth of \
                 Massachusetts]].",
            ),
            Heading("6. Contacts"),
            Para(
                "Questions about this Agreement go to [[PERSON:Naomi Feld]], General Counsel of \
                 Helios Biotech Corp. ([[EMAIL:nfeld@heliosbio.example.com]], \
                 [[PHONE:617-555-0163]]), and to [[PERSON:Arjun Mehta]], Partner at Verdant Ridge \
                 Capital LLC ([[EMAIL:amehta@verdantridge.example.org]]).",
            ),
            Lines(&[
                "[[ORG:HELIOS BIOTECH CORP.]]",
                "By: /s/ Naomi Feld",
                "Title: General Counsel",
            ]),
            Lines(&[
                "[[ORG:VERDANT RIDGE CAPITAL LLC]]",
                "By: /s/ Arjun Mehta",
                "Title: Partner",
            ]),
        ],
    }
}

fn lease() -> SampleDoc {
    use Block::*;
    SampleDoc {
        file_name: "lease.pdf",
        document_type: "lease",
        title: "Commercial Lease - Granite Row Properties and Little Fern Bakery",
        description: "commercial lease of a bakery storefront: premises, term, rent, deposit, \
                      charges and a personal guaranty",
        footer: Some("Commercial Lease - 1450 Willow Commons Boulevard, Unit 2B"),
        blocks: vec![
            Heading("COMMERCIAL LEASE AGREEMENT"),
            Para(
                "This Commercial Lease Agreement (the \"Lease\") is made on \
                 [[DATE:March 10, 2025|2025-03-10]] between [[ORG:Granite Row Properties LLC]], a \
                 California limited liability company (\"Landlord\"), and [[ORG:Little Fern Bakery, \
                 Inc.]], a California corporation (\"Tenant\").",
            ),
            Heading("1. Premises"),
            Para(
                "Landlord leases to Tenant the ground-floor retail unit known as \
                 [[ADDRESS:1450 Willow Commons Boulevard, Unit 2B, Sacramento, California 95814]] \
                 (the \"Premises\"), containing approximately 2,150 rentable square feet, together \
                 with the non-exclusive right to use the common areas of the Willow Commons shopping \
                 center, including its parking lot and loading dock.",
            ),
            Heading("2. Term"),
            Para(
                "The term of this Lease begins on [[DATE:April 1, 2025|2025-04-01]] (the \
                 \"Commencement Date\") and ends on [[DATE:March 31, 2030|2030-03-31]], unless \
                 terminated earlier as provided in this Lease. Tenant has one option to extend the \
                 term for five (5) years on written notice given at least nine (9) months before the \
                 term ends, at the fair market rent then prevailing.",
            ),
            Heading("3. Rent"),
            Para(
                "3.1 Base Rent. Tenant will pay Landlord base rent of [[MONEY:$6,850.00|USD 6850.00]] \
                 per month, in advance, on the first day of each month, without deduction or \
                 offset. Base rent increases by three percent (3%) on each anniversary of the \
                 Commencement Date.",
            ),
            Para(
                "3.2 Common Area Charges. In addition to base rent, Tenant will pay its share of the \
                 costs of operating and maintaining the common areas, estimated at \
                 [[MONEY:$1,120.00|USD 1120.00]] per month for the first lease year and reconciled \
                 annually against actual costs.",
            ),
            Para(
                "3.3 Late Charge. Any installment of rent not received within five (5) days after \
                 its due date incurs a late charge of [[MONEY:$250|USD 250.00]], which the parties \
                 agree is a reasonable estimate of the costs Landlord will incur because of the late \
                 payment.",
            ),
            Heading("4. Security Deposit"),
            Para(
                "On signing this Lease, Tenant will deposit [[MONEY:$13,700.00|USD 13700.00]] with \
                 Landlord as security for its performance. Landlord may apply the deposit to any \
                 amount Tenant fails to pay, and will return any balance within thirty (30) days \
                 after the Lease ends, as required by [[STATUTE:Cal. Civ. Code § 1950.7]].",
            ),
            Heading("5. Use"),
            Para(
                "Tenant will use the Premises only as a retail bakery and cafe, including the baking \
                 of goods on site for sale on the Premises and by wholesale delivery, and for no \
                 other purpose without Landlord's prior written consent. Tenant will comply with all \
                 laws, permits and health regulations that apply to its business.",
            ),
            Heading("6. Improvements and Alterations"),
            Para(
                "Landlord will deliver the Premises with the existing plumbing, electrical and \
                 ventilation systems in good working order. Tenant may install ovens, a walk-in \
                 cooler and related equipment at its own cost, using licensed contractors approved \
                 by Landlord, and will obtain all required building permits before starting work.",
            ),
            Para(
                "Tenant may not make structural alterations, or any alteration costing more than \
                 ten thousand dollars, without Landlord's prior written consent, which Landlord will \
                 not unreasonably withhold. At the end of the term Tenant will remove its trade \
                 fixtures and repair any damage their removal causes.",
            ),
            Heading("7. Maintenance and Repairs"),
            Para(
                "Tenant will keep the interior of the Premises, including its doors, windows and \
                 fixtures, clean and in good repair. Landlord will maintain the roof, foundation, \
                 exterior walls and the building systems serving more than one unit, the cost of \
                 which is included in common area charges.",
            ),
            Heading("8. Insurance and Indemnity"),
            Para(
                "Tenant will carry commercial general liability insurance with limits of at least \
                 one million dollars per occurrence, naming Landlord as an additional insured, and \
                 property insurance covering its equipment and improvements for their full \
                 replacement cost. Tenant will deliver certificates of insurance before the \
                 Commencement Date.",
            ),
            Para(
                "Each party will indemnify the other against claims arising from its own negligence \
                 or willful misconduct, or from its breach of this Lease.",
            ),
            Heading("9. Assignment and Subletting"),
            Para(
                "Tenant may not assign this Lease or sublet any part of the Premises without \
                 Landlord's prior written consent. A change in control of Tenant is treated as an \
                 assignment.",
            ),
            Heading("10. Default"),
            Para(
                "Tenant is in default if it fails to pay rent within ten (10) days after written \
                 notice that it is past due, or fails to cure any other breach within thirty (30) \
                 days after written notice. On a default, Landlord may exercise every remedy \
                 available under California law, including termination of this Lease.",
            ),
            Heading("11. Guaranty"),
            Para(
                "As a condition of this Lease, [[PERSON:Hannah Okafor]], Tenant's founder, will sign a \
                 personal guaranty of Tenant's obligations for the first two (2) lease years.",
            ),
            Heading("12. Notices"),
            Para(
                "Notices to Landlord go to its property manager, [[PERSON:Victor Salazar]], at \
                 [[ADDRESS:900 Capitol Gate Drive, Sacramento, CA 95811]], \
                 [[EMAIL:vsalazar@graniterow.example.com]], [[PHONE:(916) 555-0134]]. Notices to \
                 Tenant go to Hannah Okafor at the Premises and at \
                 [[EMAIL:hannah@littlefernbakery.example.org]].",
            ),
            Heading("13. Governing Law"),
            Para(
                "This Lease is governed by the laws of the [[LOCATION:State of California]]. If any \
                 provision is held invalid, the rest of the Lease remains in effect.",
            ),
            PageBreak,
            Para("The parties have signed this Lease on the date first written above."),
            Lines(&[
                "LANDLORD: [[ORG:GRANITE ROW PROPERTIES LLC]]",
                "By: /s/ Victor Salazar, Authorized Agent",
            ]),
            Lines(&[
                "TENANT: [[ORG:LITTLE FERN BAKERY, INC.]]",
                "By: /s/ Hannah Okafor, President",
            ]),
        ],
    }
}

fn demand_letter() -> SampleDoc {
    use Block::*;
    SampleDoc {
        file_name: "demand_letter.pdf",
        document_type: "demand_letter",
        title: "Demand Letter - Thompson v. Summit Crest Home Builders",
        description: "a lawyer's demand letter to a home builder over a defective roof, with a \
                      payment deadline",
        footer: None,
        blocks: vec![
            Lines(&[
                "[[ORG:Rivera Castellano Law Group, P.C.]]",
                "[[ADDRESS:1600 J Street, Suite 210, Sacramento, CA 95814]]",
                "Tel. [[PHONE:916.555.0188]] | [[EMAIL:lcastellano@rclawgroup.example.com]]",
            ]),
            Lines(&["[[DATE:July 1, 2025|2025-07-01]]"]),
            Lines(&[
                "VIA EMAIL AND CERTIFIED MAIL",
                "Mr. [[PERSON:Robert Haines]]",
                "President",
                "[[ORG:Summit Crest Home Builders, Inc.]]",
                "[[ADDRESS:7720 Foothill Ridge Road, Roseville, CA 95678]]",
                "[[EMAIL:rhaines@summitcrest.example.org]]",
            ]),
            Lines(&[
                "Re: Defective roof at [[ADDRESS:52 Oak Hollow Court, Folsom]] - Demand for Payment",
            ]),
            Para("Dear Mr. Haines:"),
            Para(
                "This firm represents [[PERSON:Aisha Thompson]] and [[PERSON:Kevin Thompson]], who \
                 bought the newly built home at [[ADDRESS:52 Oak Hollow Court, Folsom, CA 95630]] \
                 from Summit Crest Home Builders, Inc. in 2022. Please direct all further \
                 communication about this matter to me.",
            ),
            Para(
                "Since the first heavy rains of last winter, water has come through the ceiling of \
                 the upstairs bedrooms. An independent roofing inspection on \
                 [[DATE:October 8, 2024|2024-10-08]] found that the underlayment was never lapped \
                 correctly and that the flashing around both skylights was missing. Your company \
                 sent a crew twice, but the leaks continue.",
            ),
            Para(
                "Under the Right to Repair Act, [[STATUTE:Cal. Civ. Code § 895]] et seq., a builder \
                 is liable for water intrusion through the roof of a home it built. My clients have \
                 paid [[MONEY:$11,250.00|USD 11250.00]] for emergency repairs and interior damage, \
                 and the roofing contractor's estimate for replacing the roof is \
                 [[MONEY:$36,000.00|USD 36000.00]].",
            ),
            Para(
                "My clients demand payment of [[MONEY:$47,250.00|USD 47250.00]] no later than \
                 [[DATE:July 31, 2025|2025-07-31]]. If we have not received payment or a written \
                 offer to repair on acceptable terms by then, my clients will file suit without \
                 further notice and will seek their full damages, costs and fees.",
            ),
            Para(
                "Please preserve all documents about the construction of the home, including roofing \
                 subcontracts, inspection reports and warranty correspondence. You can reach me at \
                 the telephone number above or at my direct line, [[PHONE:(916) 555-0196]].",
            ),
            Lines(&[
                "Sincerely,",
                "/s/ [[PERSON:Lucia Castellano]]",
                "Lucia Castellano",
                "cc: Aisha and Kevin Thompson",
            ]),
        ],
    }
}

fn deposition_excerpt() -> SampleDoc {
    use Block::*;
    SampleDoc {
        file_name: "deposition_excerpt.pdf",
        document_type: "deposition_transcript",
        title: "Deposition of Jose Ramirez (excerpt) - Delgado v. City of Alder Bay",
        description: "excerpt of the deposition of a neighbor who saw the arrest: appearances and \
                      question-and-answer testimony",
        footer: Some("Ramírez Deposition - Case No. 3:24-cv-01234-JST"),
        blocks: vec![
            Heading("UNITED STATES DISTRICT COURT\nNORTHERN DISTRICT OF CALIFORNIA"),
            Lines(&[
                "[[PERSON:MARIA DELGADO]], Plaintiff, v. [[ORG:CITY OF ALDER BAY]], et al., Defendants.",
                "Case No. [[CASE_NUMBER:3:24-cv-01234-JST]]",
            ]),
            Heading("VIDEOTAPED DEPOSITION OF [[PERSON:JOSÉ RAMÍREZ]]"),
            Lines(&[
                "Taken on [[DATE:Tuesday, January 28, 2025|2025-01-28]], at 10:02 a.m.",
                "At the offices of [[ORG:Park & Whitfield LLP]]",
                "[[ADDRESS:1200 Mission Vista Avenue, Suite 400, San Francisco, CA 94105]]",
                "Reported by: [[PERSON:Linda Cho]], CSR No. 14872",
            ]),
            Heading("APPEARANCES"),
            Lines(&[
                "For Plaintiff: [[PERSON:Elena Park]], Park & Whitfield LLP",
                "For Defendants: [[PERSON:Gregory Lindqvist]], Deputy City Attorney, \
                 [[ORG:Office of the City Attorney, City of Alder Bay]]",
            ]),
            Heading("EXAMINATION"),
            Lines(&["BY MS. PARK:"]),
            Lines(&[
                "Q. Good morning. Please state your full name for the record.",
                "A. [[PERSON:José Ramírez]].",
                "Q. Where do you live, Mr. Ramírez?",
                "A. [[ADDRESS:421 Calder Street]] in [[LOCATION:Alder Bay]]. I've lived there about \
                 eleven years.",
                "Q. Do you know the plaintiff, [[PERSON:Maria Delgado]]?",
                "A. Yes. She lives across the street, a little to the left of my house.",
            ]),
            Lines(&[
                "Q. I want to direct your attention to the evening of [[DATE:March 4, 2024|2024-03-04]]. \
                 Were you at home that night?",
                "A. I was. I was taking the trash cans out to the curb.",
                "Q. What did you see?",
                "A. I saw Maria get out of her car in her driveway. She was in her hospital scrubs, the \
                 blue ones. A police car pulled up behind her and an officer got out.",
                "Q. Do you know who that officer was?",
                "A. I learned later it was Officer [[PERSON:Daniel Kessler]].",
            ]),
            Lines(&[
                "Q. What happened next?",
                "A. He was shouting at her to stop. She had her hands out like this, open, and she \
                 was saying that she lived there. Then she reached down to her waist, slowly, and he \
                 grabbed her and took her down onto the concrete.",
                "MR. LINDQVIST: Objection. Calls for speculation as to what she was reaching for.",
                "BY MS. PARK:",
                "Q. You can answer.",
                "A. I could see her badge. It was on a clip at her waist. That's what she was reaching \
                 for.",
            ]),
            Lines(&[
                "Q. How long was the officer on top of her?",
                "A. A long time. More than a minute. She kept saying she couldn't breathe.",
                "Q. Did you say anything to the officer?",
                "A. I yelled that she lived there. He told me to go back inside.",
                "Q. Did anyone else see this?",
                "A. [[PERSON:Tom Whitaker]] from next door was filming on his phone. I saw him on his \
                 porch.",
            ]),
            Lines(&[
                "MS. PARK: Let's go off the record.",
                "THE VIDEOGRAPHER: We are going off the record at 10:41 a.m.",
                "(Recess taken.)",
            ]),
        ],
    }
}

fn settlement_agreement() -> SampleDoc {
    use Block::*;
    SampleDoc {
        file_name: "settlement_agreement.pdf",
        document_type: "settlement_agreement",
        title: "Settlement Agreement and Release - Delgado v. City of Alder Bay",
        description: "settlement agreement and general release ending the Delgado case: payment, \
                      dismissal, release and a Civil Code section 1542 waiver",
        footer: Some("Settlement Agreement and Release - Delgado v. City of Alder Bay"),
        blocks: vec![
            Heading("SETTLEMENT AGREEMENT AND GENERAL RELEASE"),
            Para(
                "This Settlement Agreement and General Release (the \"Agreement\") is entered into \
                 between [[PERSON:Maria Delgado]] (\"Plaintiff\") and the [[ORG:City of Alder Bay]] \
                 and [[PERSON:Daniel Kessler]] (together, \"Defendants\"). Plaintiff and Defendants \
                 are the \"Parties\".",
            ),
            Heading("RECITALS"),
            Para(
                "A. On [[DATE:June 12, 2024|2024-06-12]], Plaintiff filed an action against \
                 Defendants in the [[COURT:United States District Court for the Northern District of \
                 California]], entitled [[CASE_NAME:Delgado v. City of Alder Bay]], Case No. \
                 [[CASE_NUMBER:3:24-cv-01234-JST]] (the \"Action\"), alleging claims under \
                 [[STATUTE:42 U.S.C. § 1983]] arising from her detention and arrest on \
                 [[DATE:March 4, 2024|2024-03-04]].",
            ),
            Para(
                "B. Defendants deny all of Plaintiff's allegations and deny any liability. The \
                 Parties nonetheless wish to resolve the Action and every claim related to it, to \
                 avoid the expense, burden and uncertainty of further litigation.",
            ),
            Para(
                "C. The Parties attended a settlement conference before Magistrate Judge \
                 [[PERSON:Rebecca Antonelli]] on [[DATE:April 9, 2025|2025-04-09]], at which they \
                 agreed to the principal terms set out below.",
            ),
            Heading("TERMS"),
            Para(
                "1. Settlement Payment. The City will pay Plaintiff the total sum of \
                 [[MONEY:$185,000.00|USD 185000.00]] (the \"Settlement Payment\"), inclusive of all \
                 damages, attorneys' fees and costs. The City will make the Settlement Payment by \
                 check payable to \"Park & Whitfield LLP Client Trust Account\" within thirty (30) \
                 days after the City Council approves this Agreement.",
            ),
            Para(
                "2. Allocation and Taxes. The Parties make no representation about the tax treatment \
                 of the Settlement Payment. Plaintiff is solely responsible for any taxes owed on it, \
                 and will receive a Form 1099 for the portion not allocated to physical injury.",
            ),
            Para(
                "3. Dismissal. Within five (5) court days after her counsel receives the Settlement \
                 Payment, Plaintiff will file a stipulation dismissing the Action with prejudice under \
                 [[STATUTE:Fed. R. Civ. P. 41(a)(1)(A)(ii)]], each Party to bear its own fees and \
                 costs except as provided in this Agreement.",
            ),
            Para(
                "4. Release by Plaintiff. Plaintiff releases Defendants, and the City's officers, \
                 employees, agents and insurers, from all claims, known or unknown, that arise from or \
                 relate to the events alleged in the Action, including claims for damages, fees and \
                 costs.",
            ),
            Para(
                "5. Waiver of Civil Code Section 1542. Plaintiff understands and expressly waives the \
                 protection of [[STATUTE:Cal. Civ. Code § 1542]], which provides: \"A general release \
                 does not extend to claims that the creditor or releasing party does not know or \
                 suspect to exist in his or her favor at the time of executing the release and that, \
                 if known by him or her, would have materially affected his or her settlement with \
                 the debtor or released party.\"",
            ),
            Para(
                "6. No Admission. This Agreement is a compromise of disputed claims. Nothing in it is \
                 an admission of liability or wrongdoing by any Party.",
            ),
            Para(
                "7. Policy Review. Within one hundred twenty (120) days after the Effective Date, the \
                 [[ORG:Alder Bay Police Department]] will complete a review of its policy on \
                 investigative detentions in response to reports of suspicious persons and will \
                 provide a summary of any changes to Plaintiff's counsel.",
            ),
            Para(
                "8. Entire Agreement. This Agreement is the entire agreement between the Parties \
                 about its subject matter and supersedes all prior negotiations and agreements. It \
                 may be changed only in a writing signed by all Parties.",
            ),
            Para(
                "9. Governing Law. This Agreement is governed by the laws of the [[LOCATION:State \
                 of California]] and by federal law where applicable. The Court will retain \
                 jurisdiction to enforce it.",
            ),
            Para(
                "10. Counterparts; Effective Date. This Agreement may be signed in counterparts, \
                 including by electronic signature, each of which is an original. It takes effect on \
                 the date of the last signature below (the \"Effective Date\").",
            ),
            Para(
                "11. Advice of Counsel. Each Party has read this Agreement, has had the opportunity \
                 to consult counsel of its choice about it, and signs it voluntarily.",
            ),
            PageBreak,
            Para("The Parties have signed this Agreement on the dates below."),
            Lines(&[
                "PLAINTIFF",
                "/s/ Maria Delgado",
                "Maria Delgado",
                "Date: [[DATE:May 2, 2025|2025-05-02]]",
            ]),
            Lines(&[
                "[[ORG:CITY OF ALDER BAY]]",
                "By: /s/ [[PERSON:Caroline Whitford]], City Manager",
                "Date: [[DATE:May 6, 2025|2025-05-06]]",
            ]),
            Lines(&[
                "DEFENDANT [[PERSON:DANIEL KESSLER]]",
                "/s/ Daniel Kessler",
                "Date: May 2, 2025",
            ]),
            Lines(&[
                "APPROVED AS TO FORM:",
                "/s/ [[PERSON:Elena Park]], [[ORG:Park & Whitfield LLP]], Attorneys for Plaintiff",
                "/s/ [[PERSON:Gregory Lindqvist]], Deputy City Attorney, Attorneys for Defendants",
            ]),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocr::{OcrError, extract_pdf_text};

    fn extracted_pages(doc: &SampleDoc) -> Vec<String> {
        let result =
            extract_pdf_text(&render_pdf(doc)).unwrap_or_else(|e| panic!("{}: {e}", doc.file_name));
        result.pages.into_iter().map(|p| p.text).collect()
    }

    #[test]
    fn every_sample_renders_to_the_same_bytes_every_time() {
        for (a, b) in documents().iter().zip(documents().iter()) {
            assert_eq!(render_pdf(a), render_pdf(b), "{}", a.file_name);
        }
    }

    #[test]
    fn every_sample_is_a_small_pdf() {
        for doc in documents() {
            let bytes = render_pdf(&doc);

            assert!(bytes.starts_with(b"%PDF-1.7"), "{}", doc.file_name);
            assert!(
                bytes.len() < 20_000,
                "{} is {} bytes",
                doc.file_name,
                bytes.len()
            );
        }
    }

    #[test]
    fn extracted_text_matches_the_layout_page_by_page() {
        for doc in documents() {
            let extracted = extracted_pages(&doc);
            let expected = doc.page_texts();

            assert_eq!(extracted.len(), expected.len(), "{}", doc.file_name);
            for (i, (got, want)) in extracted.iter().zip(&expected).enumerate() {
                assert_eq!(got, want, "{} page {}", doc.file_name, i + 1);
            }
        }
    }

    #[test]
    fn paragraphs_come_back_separated_by_blank_lines() {
        let doc = complaint();
        let first_page = &extracted_pages(&doc)[0];

        assert!(
            first_page.contains("Defendants.\n\nCase No. 3:24-cv-01234-JST\n"),
            "{first_page}"
        );
        assert!(first_page.contains("\n\nINTRODUCTION\n\n1. Plaintiff Maria Delgado"));
        assert!(!first_page.contains("\n\n\n"));
    }

    #[test]
    fn every_expected_entity_appears_verbatim_in_the_extracted_text() {
        for doc in documents() {
            let text = extracted_pages(&doc).join("\n\n");
            for entity in doc.entities() {
                assert!(
                    text.contains(&entity.text),
                    "{}: {} {:?} is not in the extracted text",
                    doc.file_name,
                    entity.kind,
                    entity.text
                );
            }
        }
    }

    #[test]
    fn statute_citations_round_trip_with_the_section_sign() {
        let text = extracted_pages(&complaint()).join("\n\n");

        for citation in ["42 U.S.C. § 1983", "28 U.S.C. § 1331", "42 U.S.C. § 1988"] {
            assert!(text.contains(citation), "{citation}");
        }
    }

    #[test]
    fn non_ascii_names_round_trip() {
        let doc = deposition_excerpt();
        let text = extracted_pages(&doc).join("\n\n");

        assert!(text.contains("JOSÉ RAMÍREZ"));
        assert!(text.contains("A. José Ramírez."));
    }

    #[test]
    fn every_document_lists_a_reasonable_number_of_entities_of_several_kinds() {
        for doc in documents() {
            let entities = doc.entities();
            let kinds: std::collections::BTreeSet<_> = entities.iter().map(|e| e.kind).collect();

            assert!(
                (8..=26).contains(&entities.len()),
                "{} has {} entities",
                doc.file_name,
                entities.len()
            );
            assert!(kinds.len() >= 5, "{} has kinds {kinds:?}", doc.file_name);
        }
    }

    #[test]
    fn the_corpus_covers_every_entity_kind() {
        let kinds: std::collections::BTreeSet<_> = documents()
            .iter()
            .flat_map(|d| d.entities())
            .map(|e| e.kind)
            .collect();

        assert_eq!(kinds.len(), EntityKind::ALL.len(), "{kinds:?}");
    }

    #[test]
    fn dates_amounts_phones_and_emails_carry_normalised_values_in_the_model_format() {
        let date = regex::Regex::new(r"^\d{4}-\d{2}-\d{2}$").unwrap();
        let money = regex::Regex::new(r"^USD \d+\.\d{2}$").unwrap();
        let phone = regex::Regex::new(r"^\+1\d{10}$").unwrap();
        for doc in documents() {
            for e in doc.entities() {
                let normalized = e.normalized.as_deref();
                let ok = match e.kind {
                    EntityKind::Date => normalized.is_some_and(|n| date.is_match(n)),
                    EntityKind::Money => normalized.is_some_and(|n| money.is_match(n)),
                    EntityKind::Phone => normalized.is_some_and(|n| phone.is_match(n)),
                    EntityKind::Email => normalized == Some(e.text.to_lowercase().as_str()),
                    _ => normalized.is_none(),
                };
                assert!(ok, "{}: {e:?}", doc.file_name);
            }
        }
    }

    #[test]
    fn contact_details_are_fictitious_by_construction() {
        let reserved_phone = regex::Regex::new(r"555\D?01\d\d$").unwrap();
        for doc in documents() {
            for e in doc.entities() {
                match e.kind {
                    EntityKind::Phone => assert!(reserved_phone.is_match(&e.text), "{e:?}"),
                    EntityKind::Email => {
                        let domain = e.text.rsplit('@').next().unwrap_or_default();
                        assert!(
                            domain.ends_with(".test")
                                || domain.ends_with("example.com")
                                || domain.ends_with("example.org"),
                            "{e:?}"
                        );
                    }
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn at_least_one_sample_runs_to_three_pages_or_more() {
        let complaint = complaint();

        assert!(complaint.page_count() >= 3, "{}", complaint.page_count());
        assert_eq!(extracted_pages(&complaint).len(), complaint.page_count());
    }

    #[test]
    fn every_character_in_the_samples_has_a_win_ansi_code() {
        for doc in documents() {
            for text in doc.page_texts() {
                let missing: Vec<char> = text
                    .chars()
                    .filter(|&c| c != '\n' && win_ansi(c).is_none())
                    .collect();
                assert!(missing.is_empty(), "{}: {missing:?}", doc.file_name);
            }
        }
    }

    #[test]
    fn sample_names_are_unique_and_copies_point_at_real_samples() {
        let docs = documents();
        let names: std::collections::BTreeSet<_> = docs.iter().map(|d| d.file_name).collect();

        assert_eq!(names.len(), docs.len());
        for (copy, original) in DUPLICATES {
            assert!(names.contains(original), "{original}");
            assert!(!names.contains(copy), "{copy}");
        }
    }

    #[test]
    fn write_samples_writes_every_file_and_a_byte_identical_copy() {
        let dir = tempfile::tempdir().unwrap();

        let written = write_samples(dir.path()).unwrap();

        assert_eq!(written.len(), documents().len() + DUPLICATES.len() + 2);
        let original = std::fs::read(dir.path().join("complaint.pdf")).unwrap();
        let copy = std::fs::read(dir.path().join("complaint_copy.pdf")).unwrap();
        assert_eq!(original, copy);
        assert!(dir.path().join("README.md").exists());
    }

    #[test]
    fn expected_entities_json_lists_every_file_and_marks_the_copy_as_a_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        write_samples(dir.path()).unwrap();

        let text = std::fs::read_to_string(dir.path().join(EXPECTED_ENTITIES_FILE)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();

        assert_eq!(
            json["complaint_copy.pdf"],
            serde_json::json!({ "duplicate_of": "complaint.pdf" })
        );
        assert_eq!(json["complaint.pdf"]["document_type"], "complaint");
        let entities = json["complaint.pdf"]["entities"].as_array().unwrap();
        assert!(entities.contains(&serde_json::json!(
            { "kind": "PERSON", "text": "Maria Delgado" }
        )));
        assert!(entities.contains(&serde_json::json!(
            { "kind": "DATE", "text": "March 4, 2024", "normalized": "2024-03-04" }
        )));
        assert!(entities.contains(&serde_json::json!(
            { "kind": "MONEY", "text": "$250,000", "normalized": "USD 250000.00" }
        )));
        assert!(entities.contains(&serde_json::json!(
            { "kind": "STATUTE", "text": "42 U.S.C. § 1983" }
        )));
        for doc in documents() {
            assert_eq!(
                json[doc.file_name]["entities"].as_array().map(Vec::len),
                Some(doc.entities().len())
            );
        }
    }

    #[test]
    fn checked_in_samples_match_the_generator() {
        let checked_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples");
        let fresh = tempfile::tempdir().unwrap();

        for path in write_samples(fresh.path()).unwrap() {
            let name = path.file_name().unwrap();
            let committed = std::fs::read(checked_in.join(name)).unwrap_or_default();
            assert!(
                committed == std::fs::read(&path).unwrap(),
                "samples/{} is missing or stale: run \
                 `cargo run -p lexpipe --example generate_samples -- samples`",
                name.to_string_lossy()
            );
        }
    }

    #[test]
    fn text_only_pdf_round_trips_each_page() {
        let pages = ["One.\n\nTwo.", "", "Three § four."];

        let result = extract_pdf_text(&text_only_pdf(&pages)).unwrap();

        let texts: Vec<&str> = result.pages.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, pages);
        assert_eq!(result.pages_without_text(), [2]);
    }

    #[test]
    fn text_only_pdf_wraps_long_lines_and_replaces_unencodable_characters() {
        let long = "word ".repeat(40);

        let result = extract_pdf_text(&text_only_pdf(&[long.trim_end(), "日本 ok"])).unwrap();

        assert!(
            result.pages[0]
                .text
                .lines()
                .all(|l| l.len() <= WRAP_COLUMNS)
        );
        assert_eq!(result.pages[0].text.replace('\n', " "), long.trim_end());
        assert_eq!(result.pages[1].text, "?? ok");
    }

    #[test]
    fn a_long_filing_is_about_a_megabyte_with_its_scans_read_as_pages_without_text() {
        let bytes = long_filing_pdf(7, 40, 2);

        assert!(
            (900_000..1_300_000).contains(&bytes.len()),
            "{} bytes",
            bytes.len()
        );
        let result = extract_pdf_text(&bytes).unwrap();
        assert_eq!(result.pages.len(), 42);
        assert_eq!(result.pages_without_text(), vec![15, 29]);
        assert!(
            result.pages[0]
                .text
                .contains("Exhibit bundle 7 - Page 1 of 42")
        );
    }

    #[test]
    fn a_long_filing_depends_only_on_its_arguments() {
        assert_eq!(long_filing_pdf(3, 2, 1), long_filing_pdf(3, 2, 1));
        assert_ne!(long_filing_pdf(3, 2, 1), long_filing_pdf(4, 2, 1));
    }

    #[test]
    fn pdf_with_blank_page_has_no_text_layer_on_page_two() {
        let result = extract_pdf_text(&pdf_with_blank_page()).unwrap();

        assert_eq!(result.pages.len(), 3);
        assert_eq!(result.pages_without_text(), [2]);
    }

    #[test]
    fn encrypted_pdf_is_refused_without_its_password_and_readable_with_it() {
        let bytes = encrypted_pdf();

        assert_eq!(extract_pdf_text(&bytes), Err(OcrError::Encrypted));
        let doc = Document::load_mem_with_options(
            &bytes,
            lopdf::LoadOptions::with_password(ENCRYPTED_PDF_USER_PASSWORD),
        )
        .unwrap();
        let mut text = String::new();
        pdf_extract::output_doc(&doc, &mut pdf_extract::PlainTextOutput::new(&mut text)).unwrap();
        assert!(text.contains("only readable with the password"), "{text:?}");
        assert_eq!(encrypted_pdf(), bytes, "deterministic");
    }

    #[test]
    fn markup_gives_plain_text_and_entities_with_normalised_values() {
        let marked = parse_markup("On [[DATE:May 2, 2025|2025-05-02]] [[PERSON:Ann Lee]] paid.");

        assert_eq!(marked.plain, "On May 2, 2025 Ann Lee paid.");
        let spans: Vec<_> = marked
            .spans
            .iter()
            .map(|s| {
                (
                    s.kind,
                    &marked.plain[s.range.clone()],
                    s.normalized.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            spans,
            [
                (EntityKind::Date, "May 2, 2025", Some("2025-05-02")),
                (EntityKind::Person, "Ann Lee", None),
            ]
        );
    }

    #[test]
    fn wrapping_never_breaks_inside_a_protected_entity() {
        let text = "aaaa bbbb cccc dddd";
        let protected = vec![Range { start: 5, end: 14 }]; // "bbbb cccc"

        assert_eq!(wrap(text, &protected, 12), ["aaaa", "bbbb cccc", "dddd"]);
        assert_eq!(wrap(text, &[], 12), ["aaaa bbbb", "cccc dddd"]);
    }
}
