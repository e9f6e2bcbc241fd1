//! OCR stage engines. Locally: the PDF text layer, page by page.
//!
//! [`extract_pdf_text`] reads the text a PDF already carries (what a born-digital court filing
//! or contract has) with `pdf-extract`, one page at a time, so that a page the extractor cannot
//! read costs that page only and a scanned page is reported as having no text layer (for image
//! OCR to fill in) instead of failing the document.
//!
//! `pdf-extract` panics on some malformed input and recurses without limit on a few kinds of
//! broken structure. This module therefore parses the file with `lopdf` itself, checks and
//! repairs what would send the extractor into unbounded recursion, and runs every call into
//! third-party parsing code under [`std::panic::catch_unwind`]; see `quiet.rs` for how the
//! panic output is kept out of the logs without touching other threads.

pub mod decide;
mod quiet;
pub mod subset;
pub mod tesseract;
pub mod textract;

use std::collections::HashSet;

use lopdf::content::Content;
use lopdf::{Dictionary, Document, Object, ObjectId};

use crate::model::{OcrResult, Page};

/// Method name of the text-layer engine, part of the OCR cache key.
pub const PDF_TEXT_METHOD: &str = "pdf_text";

/// Version of what [`extract_pdf_text`] produces for a given file. Bump it whenever the text
/// or the per-page OCR decision can change for the same bytes (extractor upgrade,
/// normalisation rules, [`decide`] rules), and put it in the OCR cache key so that old
/// cached text is not served as if it were current. 2: pages carry `ocr_reason`.
pub const PDF_TEXT_VERSION: u32 = 2;

/// How far into the file the `%PDF-` header may start. Acrobat and most readers accept junk
/// (a BOM, whitespace, a mail gateway's banner) before the header within the first 1024 bytes.
pub const PDF_HEADER_SEARCH_LIMIT: usize = 1024;

/// Page size used when a page declares no usable `/MediaBox` (US Letter, as most readers do).
const DEFAULT_MEDIA_BOX: [i64; 4] = [0, 0, 612, 792];

/// Deepest `/Parent` chain accepted from a page to the root of the page tree.
const MAX_PAGE_TREE_DEPTH: usize = 64;

/// Deepest nesting of form XObjects accepted (a form drawing a form drawing a form...).
const MAX_FORM_DEPTH: usize = 32;

/// Most form XObject invocations examined per page: bounds the work on a file whose forms
/// form a wide DAG (each drawing the next one many times), which would take exponential time.
const MAX_FORM_VISITS: usize = 4096;

/// Why a document's text could not be read. Each is terminal for that document only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcrError {
    #[error("empty file (0 bytes)")]
    Empty,
    #[error("not a PDF: the file does not start with %PDF- ({0})")]
    NotPdf(String),
    #[error("encrypted PDF: cannot read it without its password")]
    Encrypted,
    #[error("corrupt PDF: {0}")]
    Corrupt(String),
}

/// Stable names of [`OcrError`] variants, for status output and Step Functions
/// `ErrorEquals`.
pub mod error_types {
    pub const EMPTY: &str = "EmptyDocument";
    pub const NOT_PDF: &str = "NotPdf";
    pub const ENCRYPTED: &str = "EncryptedPdf";
    pub const CORRUPT: &str = "CorruptPdf";
    /// Every name above.
    pub const ALL: [&str; 4] = [EMPTY, NOT_PDF, ENCRYPTED, CORRUPT];
}

impl OcrError {
    /// Stable name, one of [`error_types::ALL`].
    pub fn error_type(&self) -> &'static str {
        match self {
            OcrError::Empty => error_types::EMPTY,
            OcrError::NotPdf(_) => error_types::NOT_PDF,
            OcrError::Encrypted => error_types::ENCRYPTED,
            OcrError::Corrupt(_) => error_types::CORRUPT,
        }
    }
}

/// Text layer of every page. Blocking and CPU-bound: call it from `spawn_blocking`.
/// Never panics, whatever the bytes.
///
/// Pages come back numbered from 1 in document order, their text normalised by
/// [`normalize_page_text`]. A page without text (a scan, a blank page) has empty text and
/// `has_text_layer: false`; so has a page the extractor fails on, with a warning logged, so
/// that one bad page does not cost the whole document (image OCR can still read it). A
/// document in which no page has text is still `Ok`: the caller decides what that means.
///
/// # Errors
/// - [`OcrError::Empty`] for 0 bytes;
/// - [`OcrError::NotPdf`] when no `%PDF-` header starts within the first
///   [`PDF_HEADER_SEARCH_LIMIT`] bytes, saying what the file looks like instead;
/// - [`OcrError::Encrypted`] when the file is encrypted and the empty user password does not
///   open it (files with only an owner password, common for court filings, are read);
/// - [`OcrError::Corrupt`] when the file cannot be parsed, has no pages, or no page at all
///   could be read.
pub fn extract_pdf_text(bytes: &[u8]) -> Result<OcrResult, OcrError> {
    let header_at = find_pdf_header(bytes)?;
    let pdf = &bytes[header_at..];

    let (doc, page_ids) = quiet::catch(|| load_document(pdf))
        .map_err(|panic| OcrError::Corrupt(format!("the PDF parser crashed: {panic}")))??;

    let mut pages = Vec::with_capacity(page_ids.len());
    let mut failures = Vec::new();
    for (index, &page_id) in page_ids.iter().enumerate() {
        let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let coverage =
            quiet::catch(|| decide::image_coverage(&doc, page_id, media_box(&doc, page_id)))
                .unwrap_or(0.0);
        match read_page(&doc, number, page_id) {
            Ok(text) => {
                let mut page = Page::from_text_layer(number, text);
                page.ocr_reason = decide::needs_ocr(&page.text, coverage);
                pages.push(page);
            }
            Err(reason) => {
                tracing::warn!(page = number, %reason, "could not read the text layer of a page");
                failures.push(format!("page {number}: {reason}"));
                let mut page = Page::from_text_layer(number, String::new());
                page.ocr_reason = Some(crate::model::OcrReason::NoTextLayer);
                pages.push(page);
            }
        }
    }

    if failures.len() == pages.len() {
        let first = failures.first().map(String::as_str).unwrap_or("no pages");
        return Err(OcrError::Corrupt(format!(
            "no page could be read ({} of {} failed; first: {first})",
            failures.len(),
            pages.len()
        )));
    }

    Ok(OcrResult {
        method: PDF_TEXT_METHOD.to_string(),
        pages,
    })
}

/// Number of pages the file declares, read from its cross-reference table and page tree
/// without parsing the pages: enough to size work or pick an OCR strategy up front.
///
/// `None` when the file is not a PDF or its structure cannot be read. A hint only: a
/// broken page tree can declare more or fewer pages than [`extract_pdf_text`] finds.
pub fn page_count_hint(bytes: &[u8]) -> Option<usize> {
    let header_at = find_pdf_header(bytes).ok()?;
    let metadata = quiet::catch(|| Document::load_metadata_mem(&bytes[header_at..]))
        .ok()?
        .ok()?;
    usize::try_from(metadata.page_count).ok()
}

/// The text of one page as the rest of the pipeline wants it: line endings unified to `\n`,
/// trailing whitespace removed from every line, any run of blank lines collapsed to a single
/// blank line (paragraph breaks are kept: the chunker splits on them), and the page trimmed.
///
/// Public so that every OCR engine (text layer, Textract) hands the chunker text of the same
/// shape, and cached results do not depend on which engine produced them.
pub fn normalize_page_text(raw: &str) -> String {
    let unified = raw.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(unified.len());
    let mut blank_lines_pending = false;
    for line in unified.split('\n') {
        let line = line.trim_end();
        if line.is_empty() {
            blank_lines_pending = true;
            continue;
        }
        if out.is_empty() {
            out.push_str(line.trim_start());
        } else {
            out.push_str(if blank_lines_pending { "\n\n" } else { "\n" });
            out.push_str(line);
        }
        blank_lines_pending = false;
    }
    out
}

/// Offset of the `%PDF-` header, or why the bytes are not a PDF.
fn find_pdf_header(bytes: &[u8]) -> Result<usize, OcrError> {
    if bytes.is_empty() {
        return Err(OcrError::Empty);
    }
    let window = &bytes[..bytes.len().min(PDF_HEADER_SEARCH_LIMIT + 5)];
    window
        .windows(5)
        .position(|w| w == b"%PDF-")
        .filter(|&at| at <= PDF_HEADER_SEARCH_LIMIT)
        .ok_or_else(|| OcrError::NotPdf(describe_non_pdf(bytes)))
}

/// A short guess at what a non-PDF file is, from its first bytes, for the error message
/// (users upload Word files, images and HTML error pages to PDF pipelines).
fn describe_non_pdf(bytes: &[u8]) -> String {
    let start = bytes
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(bytes);
    let trimmed = start.trim_ascii_start();
    let lower: Vec<u8> = trimmed
        .iter()
        .take(16)
        .map(u8::to_ascii_lowercase)
        .collect();
    let guess = if start.starts_with(b"PK\x03\x04") || start.starts_with(b"PK\x05\x06") {
        Some("starts with PK: a ZIP archive or an Office document such as .docx?")
    } else if start.starts_with(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        Some("an OLE2 compound file: a legacy .doc or .xls?")
    } else if start.starts_with(b"\xFF\xD8\xFF") {
        Some("a JPEG image")
    } else if start.starts_with(b"\x89PNG\r\n\x1A\n") {
        Some("a PNG image")
    } else if start.starts_with(b"II*\x00") || start.starts_with(b"MM\x00*") {
        Some("a TIFF image")
    } else if start.starts_with(b"GIF8") {
        Some("a GIF image")
    } else if start.starts_with(b"\x1F\x8B") {
        Some("gzip-compressed data")
    } else if start.starts_with(b"{\\rtf") {
        Some("an RTF document")
    } else if start.starts_with(b"%!PS") {
        Some("a PostScript file")
    } else if lower.starts_with(b"<!doctype html") || lower.starts_with(b"<html") {
        Some("an HTML page")
    } else if lower.starts_with(b"<?xml") {
        Some("an XML document")
    } else if trimmed.starts_with(b"{") {
        Some("JSON?")
    } else {
        None
    };
    let head = &bytes[..bytes.len().min(16)];
    let escaped = head.escape_ascii().to_string();
    match guess {
        Some(guess) => format!("{guess}; first bytes \"{escaped}\""),
        None if head
            .iter()
            .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace()) =>
        {
            format!("looks like plain text starting \"{escaped}\"")
        }
        None => format!("first bytes \"{escaped}\""),
    }
}

/// Parses the file and returns it, ready for the extractor, with its pages in order.
fn load_document(pdf: &[u8]) -> Result<(Document, Vec<ObjectId>), OcrError> {
    let mut doc = Document::load_mem(pdf).map_err(classify_load_error)?;
    // lopdf opens files whose user password is empty and removes /Encrypt from the trailer;
    // when it is still there, the password is needed and the objects were not loaded.
    if doc.trailer.get(b"Encrypt").is_ok() {
        return Err(OcrError::Encrypted);
    }
    let page_ids: Vec<ObjectId> = doc.get_pages().into_values().collect();
    if page_ids.is_empty() {
        return Err(OcrError::Corrupt(
            "no pages found: the page tree is missing or broken".to_string(),
        ));
    }
    blank_images(&mut doc);
    for &page_id in &page_ids {
        ensure_media_box(&mut doc, page_id);
    }
    Ok((doc, page_ids))
}

fn classify_load_error(error: lopdf::Error) -> OcrError {
    match error {
        lopdf::Error::Decryption(_)
        | lopdf::Error::InvalidPassword
        | lopdf::Error::UnsupportedSecurityHandler(_) => OcrError::Encrypted,
        other => OcrError::Corrupt(format!("cannot parse the file: {other}")),
    }
}

/// Empties every image stream. Images carry no text layer, but `pdf-extract` interprets the
/// data of every XObject a page draws as a content stream, images included: bytes of a scan
/// that happen to look like operators would come out as text or make it panic, and parsing
/// megabytes of pixels that way is wasted work.
fn blank_images(doc: &mut Document) {
    for object in doc.objects.values_mut() {
        if let Object::Stream(stream) = object
            && matches!(stream.dict.get(b"Subtype"), Ok(Object::Name(name)) if name == b"Image")
        {
            stream.content.clear();
            stream.dict.remove(b"Filter");
            stream.dict.remove(b"DecodeParms");
            stream.dict.set("Length", 0);
        }
    }
}

/// Gives a page a Letter-sized `/MediaBox` when neither it nor its ancestors declare a usable
/// one: `pdf-extract` panics without one, while readers assume Letter and show the text.
fn ensure_media_box(doc: &mut Document, page_id: ObjectId) {
    if inherited(doc, page_id, b"MediaBox").is_some_and(|value| is_usable_box(doc, value)) {
        return;
    }
    if let Ok(page) = doc.get_object_mut(page_id).and_then(Object::as_dict_mut) {
        page.set(
            "MediaBox",
            DEFAULT_MEDIA_BOX
                .iter()
                .map(|&v| Object::Integer(v))
                .collect::<Vec<_>>(),
        );
    }
}

/// The page's `/MediaBox` as four numbers (Letter when unusable).
fn media_box(doc: &Document, page_id: ObjectId) -> [f32; 4] {
    let fallback = DEFAULT_MEDIA_BOX.map(|v| v as f32);
    let Some(value) = inherited(doc, page_id, b"MediaBox") else {
        return fallback;
    };
    let value = doc.dereference(value).map(|(_, v)| v).unwrap_or(value);
    let Ok(items) = value.as_array() else {
        return fallback;
    };
    let numbers: Vec<f32> = items
        .iter()
        .filter_map(|item| match item {
            Object::Integer(i) => Some(*i as f32),
            Object::Real(r) => Some(*r),
            _ => None,
        })
        .collect();
    match numbers[..] {
        [a, b, c, d, ..] => [a, b, c, d],
        _ => fallback,
    }
}

fn is_usable_box(doc: &Document, value: &Object) -> bool {
    let value = doc.dereference(value).map(|(_, v)| v).unwrap_or(value);
    value.as_array().is_ok_and(|items| {
        items.len() >= 4
            && items
                .iter()
                .all(|item| matches!(item, Object::Integer(_) | Object::Real(_)))
    })
}

/// A page attribute looked up the way PDF inheritance works (the page, then its `/Parent`
/// chain), with a bound on the chain so that a cycle cannot loop.
fn inherited<'a>(doc: &'a Document, page_id: ObjectId, key: &[u8]) -> Option<&'a Object> {
    let mut current = page_id;
    for _ in 0..MAX_PAGE_TREE_DEPTH {
        let dict = doc.get_dictionary(current).ok()?;
        if let Ok(value) = dict.get(key) {
            return Some(value);
        }
        current = dict.get(b"Parent").and_then(Object::as_reference).ok()?;
    }
    None
}

/// Text of one page, or why it could not be read.
fn read_page(doc: &Document, number: u32, page_id: ObjectId) -> Result<String, String> {
    check_parent_chain(doc, page_id)?;
    check_forms(doc, page_id)?;
    let mut raw = String::new();
    let outcome = quiet::catch(|| {
        let mut output = pdf_extract::PlainTextOutput::new(&mut raw);
        pdf_extract::output_doc_page(doc, &mut output, number)
    });
    match outcome {
        Ok(Ok(())) => Ok(normalize_page_text(&raw)),
        Ok(Err(error)) => Err(format!("the text extractor failed: {error}")),
        Err(panic) => Err(format!("the text extractor crashed: {panic}")),
    }
}

/// `pdf-extract` follows `/Parent` recursively looking for inherited attributes: a cycle
/// would overflow the stack, which aborts the process rather than panicking.
fn check_parent_chain(doc: &Document, page_id: ObjectId) -> Result<(), String> {
    let mut seen = HashSet::new();
    let mut current = page_id;
    for _ in 0..MAX_PAGE_TREE_DEPTH {
        if !seen.insert(current) {
            return Err("the page tree loops back on itself (a /Parent cycle)".to_string());
        }
        let Ok(dict) = doc.get_dictionary(current) else {
            return Ok(());
        };
        match dict.get(b"Parent").and_then(Object::as_reference) {
            Ok(parent) => current = parent,
            Err(_) => return Ok(()),
        }
    }
    Err(format!(
        "the page tree is more than {MAX_PAGE_TREE_DEPTH} levels deep"
    ))
}

/// `pdf-extract` draws form XObjects by recursing into their content with no depth limit:
/// a form that (directly or through others) draws itself would overflow the stack, and a
/// wide DAG of forms would take exponential time. Walk the forms the page can reach the way
/// the extractor resolves them and refuse the page if either can happen.
fn check_forms(doc: &Document, page_id: ObjectId) -> Result<(), String> {
    let Some(resources) = inherited(doc, page_id, b"Resources").and_then(|r| as_dict(doc, r))
    else {
        return Ok(());
    };
    // Which forms the page content draws is not known without parsing it: start from every
    // form the page's resources name (over-approximating is harmless here).
    let names: Vec<Vec<u8>> = xobjects(doc, resources)
        .map(|dict| dict.iter().map(|(name, _)| name.clone()).collect())
        .unwrap_or_default();
    let mut walk = FormWalk {
        doc,
        stack: Vec::new(),
        visits: 0,
    };
    walk.draw(&names, resources)
}

struct FormWalk<'a> {
    doc: &'a Document,
    /// Forms being drawn, each with the resources it resolves names in (a form without its
    /// own `/Resources` uses its caller's, so the same form can mean different things).
    stack: Vec<(ObjectId, *const Dictionary)>,
    visits: usize,
}

impl<'a> FormWalk<'a> {
    fn draw(&mut self, names: &[Vec<u8>], resources: &'a Dictionary) -> Result<(), String> {
        let Some(xobjects) = xobjects(self.doc, resources) else {
            return Ok(());
        };
        for name in names {
            let Ok(id) = xobjects.get(name).and_then(Object::as_reference) else {
                continue;
            };
            let Ok(Object::Stream(form)) = self.doc.get_object(id) else {
                continue;
            };
            if !matches!(form.dict.get(b"Subtype"), Ok(Object::Name(s)) if s == b"Form") {
                continue;
            }
            self.visits += 1;
            if self.visits > MAX_FORM_VISITS {
                return Err(format!(
                    "the page draws more than {MAX_FORM_VISITS} nested form XObjects"
                ));
            }
            let inner = form
                .dict
                .get(b"Resources")
                .ok()
                .and_then(|r| as_dict(self.doc, r))
                .unwrap_or(resources);
            let key = (id, std::ptr::from_ref(inner));
            if self.stack.contains(&key) {
                return Err(format!(
                    "form XObject {} {} draws itself (a cycle)",
                    id.0, id.1
                ));
            }
            if self.stack.len() >= MAX_FORM_DEPTH {
                return Err(format!(
                    "form XObjects are nested more than {MAX_FORM_DEPTH} deep"
                ));
            }
            let content = form
                .decompressed_content()
                .unwrap_or_else(|_| form.content.clone());
            let drawn = drawn_xobject_names(&content);
            self.stack.push(key);
            self.draw(&drawn, inner)?;
            self.stack.pop();
        }
        Ok(())
    }
}

/// Names passed to `Do` in a content stream (none when it does not parse: the extractor
/// fails on that stream before drawing anything from it).
fn drawn_xobject_names(content: &[u8]) -> Vec<Vec<u8>> {
    let Ok(content) = Content::decode(content) else {
        return Vec::new();
    };
    content
        .operations
        .into_iter()
        .filter(|op| op.operator == "Do")
        .filter_map(|op| match op.operands.into_iter().next() {
            Some(Object::Name(name)) => Some(name),
            _ => None,
        })
        .collect()
}

fn xobjects<'a>(doc: &'a Document, resources: &'a Dictionary) -> Option<&'a Dictionary> {
    resources.get(b"XObject").ok().and_then(|x| as_dict(doc, x))
}

fn as_dict<'a>(doc: &'a Document, object: &'a Object) -> Option<&'a Dictionary> {
    match object {
        Object::Dictionary(dict) => Some(dict),
        Object::Reference(id) => doc.get_dictionary(*id).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
