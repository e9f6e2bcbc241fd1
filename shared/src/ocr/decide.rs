//! Which pages need image OCR, and why.
//!
//! A page's text layer is trusted unless it is not the page's content. Four cases are
//! told apart, each recorded as an [`OcrReason`] on the page:
//!
//! 1. **no text layer** — nothing to read at all (a scan, a page drawn as an image);
//! 2. **stamp only** — the text is an ECF header line and nothing else, on a page that
//!    carries an image: what PACER adds to every page of a scanned filing
//!    (`Case 1:19-cv-01234-ABC Document 12 Filed 03/04/2019 Page 1 of 9`, or the appellate
//!    forms `Case: 20-16276, 08/05/2020, ID: 11778722, DktEntry: 19, Page 1 of 15`);
//! 3. **mostly non-words** — most tokens are not words (a font without a usable encoding,
//!    or two overlapping copies of a stamp extracted as `CCaassee 11::1199`);
//! 4. **little text on an image page** — an image covers most of the page and the text
//!    layer holds less than [`LITTLE_TEXT_CHARS`] characters of content.
//!
//! A page without images whose text layer holds only a stamp is a blank page with a
//! header: image OCR would find the same header, so it is not sent.
//!
//! The rules are deliberately simple and tested on the corpus: no page of a born-digital
//! filing, nor of a scan that already carries a real OCR text layer, needs OCR.

use lopdf::content::Content;
use lopdf::{Dictionary, Document, Object, ObjectId};

use crate::model::OcrReason;

/// Share of the page an image must cover for the page to count as a scan.
pub const IMAGE_PAGE_COVERAGE: f32 = 0.5;
/// Share of the page an image must cover for a stamp-only text layer to mean "scan".
pub const STAMP_IMAGE_COVERAGE: f32 = 0.25;
/// Below this many characters of content (stamp words left out), an image page's text
/// layer is not its content.
pub const LITTLE_TEXT_CHARS: usize = 200;
/// A stamp-only page has fewer content words than this besides the stamp.
const STAMP_ONLY_MAX_WORDS: usize = 8;
/// Below this share of word-like tokens (with at least [`MIN_TOKENS_FOR_RATIO`] tokens
/// with letters), the text layer is mostly non-words.
const MIN_WORD_SHARE: f32 = 0.5;
const MIN_TOKENS_FOR_RATIO: usize = 4;
/// How deep form XObjects are followed when looking for images.
const MAX_FORM_DEPTH: usize = 4;

/// Words of ECF headers and other court stamps (lower case, punctuation stripped).
const STAMP_WORDS: [&str; 15] = [
    "case",
    "document",
    "filed",
    "page",
    "pages",
    "of",
    "pageid",
    "dktentry",
    "id",
    "date",
    "appellate",
    "entered",
    "on",
    "docket",
    "no",
];

/// Whether a page with this (normalised) text, on which images cover `image_coverage`
/// of the area (0 to 1), needs image OCR, and why. `None`: the text layer is the page's
/// content.
pub fn needs_ocr(text: &str, image_coverage: f32) -> Option<OcrReason> {
    if text.trim().is_empty() {
        return Some(OcrReason::NoTextLayer);
    }
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let content: Vec<&str> = tokens
        .iter()
        .copied()
        .filter(|t| !is_stamp_token(t))
        .collect();
    if has_stamp(&tokens)
        && content.len() < STAMP_ONLY_MAX_WORDS
        && image_coverage >= STAMP_IMAGE_COVERAGE
    {
        return Some(OcrReason::StampOnly);
    }
    let lettered: Vec<&str> = tokens
        .iter()
        .copied()
        .filter(|t| t.chars().any(char::is_alphabetic) || has_junk(t))
        .collect();
    if lettered.len() >= MIN_TOKENS_FOR_RATIO {
        let words = lettered.iter().filter(|t| is_word_like(t)).count();
        if (words as f32) < MIN_WORD_SHARE * lettered.len() as f32 {
            return Some(OcrReason::MostlyNonWords);
        }
    }
    let content_chars: usize = content.iter().map(|t| t.chars().count()).sum();
    if image_coverage >= IMAGE_PAGE_COVERAGE && content_chars < LITTLE_TEXT_CHARS {
        return Some(OcrReason::LittleTextOnImage);
    }
    None
}

/// A token is part of a stamp: a stamp word, or anything with a digit (case numbers,
/// dates, document ids, page numbers), or bare punctuation.
fn is_stamp_token(token: &str) -> bool {
    let bare = bare(token).to_lowercase();
    bare.is_empty() || bare.chars().any(|c| c.is_ascii_digit()) || STAMP_WORDS.contains(&&*bare)
}

/// The text holds an ECF-style header (`Case 1:19-cv-01234-ABC Document 12 Filed
/// 03/04/2019 Page 1 of 9`, or an appellate form): what PACER stamps on every page of a
/// filing.
pub fn has_ecf_stamp(text: &str) -> bool {
    has_stamp(&text.split_whitespace().collect::<Vec<_>>())
}

/// The tokens hold an ECF-style header: "case", a document or docket-entry word, and a
/// "filed" or "page" word.
fn has_stamp(tokens: &[&str]) -> bool {
    let has = |words: &[&str]| {
        tokens
            .iter()
            .any(|t| words.contains(&bare(t).to_lowercase().as_str()))
    };
    has(&["case"]) && has(&["document", "dktentry", "id"]) && has(&["filed", "page", "pages"])
}

/// The token without leading and trailing punctuation.
fn bare(token: &str) -> &str {
    token.trim_matches(|c: char| !c.is_alphanumeric())
}

/// Characters no word of a legal text contains: control characters, the replacement
/// character, private-use code points (what a font without a usable encoding produces).
fn has_junk(token: &str) -> bool {
    token.chars().any(|c| {
        c.is_control()
            || c == '\u{FFFD}'
            || ('\u{E000}'..='\u{F8FF}').contains(&c)
            || ('\u{F0000}'..).contains(&c)
    })
}

/// Looks like a word: letters (with inner apostrophes, hyphens, periods or digits, as in
/// `don't`, `third-party`, `U.S.C.`, `12th`), a vowel unless it is a short abbreviation, and
/// not every letter doubled (`CCaassee`, what two overlapping copies of a stamp give).
fn is_word_like(token: &str) -> bool {
    if has_junk(token) {
        return false;
    }
    let core = bare(token);
    if core.is_empty() {
        return false;
    }
    if !core
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '\'' | '’' | '-' | '.' | '/' | '&'))
    {
        return false;
    }
    let letters: Vec<char> = core.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.is_empty() {
        return true;
    }
    if is_doubled(core) {
        return false;
    }
    let has_vowel = letters
        .iter()
        .any(|c| "aeiouyAEIOUYàáâäèéêëìíîïòóôöùúûü".contains(*c));
    has_vowel || letters.len() <= 5
}

/// Every character written twice in a row: `CCaassee`, `11::1199`.
fn is_doubled(core: &str) -> bool {
    let chars: Vec<char> = core.chars().collect();
    chars.len() >= 4
        && chars.len().is_multiple_of(2)
        && chars.chunks(2).all(|pair| pair[0] == pair[1])
}

/// The share of the page's area (its `/MediaBox`) that images drawn by its content cover,
/// from 0 to 1: each image's drawn area is the unit square under the current
/// transformation matrix. Images drawn through form XObjects count (a few levels deep);
/// inline images do not. 0 when the content cannot be read.
pub(crate) fn image_coverage(doc: &Document, page_id: ObjectId, media_box: [f32; 4]) -> f32 {
    let page_area = ((media_box[2] - media_box[0]) * (media_box[3] - media_box[1])).abs();
    if page_area <= 0.0 {
        return 0.0;
    }
    let Ok(content) = doc.get_page_content(page_id) else {
        return 0.0;
    };
    let resources = page_resources(doc, page_id);
    let mut area = 0.0;
    draw(
        doc,
        &content,
        resources,
        IDENTITY,
        &mut area,
        MAX_FORM_DEPTH,
    );
    (area / page_area).clamp(0.0, 1.0)
}

type Matrix = [f32; 6];
const IDENTITY: Matrix = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];

/// `m` then `n` (PDF row-vector convention: `m × n`).
fn multiply(m: &Matrix, n: &Matrix) -> Matrix {
    [
        m[0] * n[0] + m[1] * n[2],
        m[0] * n[1] + m[1] * n[3],
        m[2] * n[0] + m[3] * n[2],
        m[2] * n[1] + m[3] * n[3],
        m[4] * n[0] + m[5] * n[2] + n[4],
        m[4] * n[1] + m[5] * n[3] + n[5],
    ]
}

fn number(o: &Object) -> Option<f32> {
    match o {
        Object::Integer(i) => Some(*i as f32),
        Object::Real(r) => Some(*r),
        _ => None,
    }
}

fn matrix_of(operands: &[Object]) -> Option<Matrix> {
    if operands.len() != 6 {
        return None;
    }
    let mut m = [0.0; 6];
    for (slot, o) in m.iter_mut().zip(operands) {
        *slot = number(o)?;
    }
    Some(m)
}

fn draw(
    doc: &Document,
    content: &[u8],
    resources: Option<&Dictionary>,
    base: Matrix,
    area: &mut f32,
    depth: usize,
) {
    let Ok(content) = Content::decode(content) else {
        return;
    };
    let mut stack: Vec<Matrix> = Vec::new();
    let mut ctm = base;
    for op in &content.operations {
        match op.operator.as_str() {
            "q" => stack.push(ctm),
            "Q" => ctm = stack.pop().unwrap_or(base),
            "cm" => {
                if let Some(m) = matrix_of(&op.operands) {
                    ctm = multiply(&m, &ctm);
                }
            }
            "Do" => {
                let Some(Object::Name(name)) = op.operands.first() else {
                    continue;
                };
                let Some(xobject) = resources
                    .and_then(|r| dict_of(doc, r.get(b"XObject").ok()?))
                    .and_then(|x| x.get(name).ok())
                    .and_then(|o| o.as_reference().ok())
                    .and_then(|id| doc.get_object(id).ok())
                    .and_then(|o| o.as_stream().ok())
                else {
                    continue;
                };
                match xobject.dict.get(b"Subtype") {
                    Ok(Object::Name(s)) if s == b"Image" => {
                        *area += (ctm[0] * ctm[3] - ctm[1] * ctm[2]).abs();
                    }
                    Ok(Object::Name(s)) if s == b"Form" && depth > 0 => {
                        let form_matrix = xobject
                            .dict
                            .get(b"Matrix")
                            .ok()
                            .and_then(|m| m.as_array().ok())
                            .and_then(|m| matrix_of(m))
                            .unwrap_or(IDENTITY);
                        let inner = xobject
                            .dict
                            .get(b"Resources")
                            .ok()
                            .and_then(|r| dict_of(doc, r))
                            .or(resources);
                        let bytes = xobject
                            .decompressed_content()
                            .unwrap_or_else(|_| xobject.content.clone());
                        draw(
                            doc,
                            &bytes,
                            inner,
                            multiply(&form_matrix, &ctm),
                            area,
                            depth - 1,
                        );
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

fn dict_of<'a>(doc: &'a Document, o: &'a Object) -> Option<&'a Dictionary> {
    match o {
        Object::Dictionary(d) => Some(d),
        Object::Reference(id) => doc.get_dictionary(*id).ok(),
        _ => None,
    }
}

/// The page's `/Resources`, inherited from its ancestors when it has none.
fn page_resources(doc: &Document, page_id: ObjectId) -> Option<&Dictionary> {
    let mut current = page_id;
    for _ in 0..64 {
        let dict = doc.get_dictionary(current).ok()?;
        if let Ok(r) = dict.get(b"Resources") {
            return dict_of(doc, r);
        }
        current = dict.get(b"Parent").and_then(Object::as_reference).ok()?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_text_layer_needs_ocr() {
        assert_eq!(needs_ocr("", 0.0), Some(OcrReason::NoTextLayer));
        assert_eq!(needs_ocr("  \n ", 1.0), Some(OcrReason::NoTextLayer));
    }

    #[test]
    fn an_ecf_header_alone_on_a_scanned_page_is_a_stamp_not_content() {
        for stamp in [
            "Case 1:19-cv-01234-ABC Document 12 Filed 03/04/2019 Page 1 of 9",
            "Case 1:19-cv-01234-ABC Document 12 Filed 03/04/2019 Page 3 of 9 PageID #: 117",
            "Case: 20-16276, 08/05/2020, ID: 11778722, DktEntry: 19, Page 1 of 15",
            "Case: 17-2400\n\nDocument: 3\n\nFiled: 07/13/2017\n\nPages: 1",
            "Appellate Case: 21-800 Document: 010110462922 Date Filed: 01/11/2021 Page: 1",
        ] {
            assert_eq!(needs_ocr(stamp, 1.0), Some(OcrReason::StampOnly), "{stamp}");
            // Without an image, the page is a blank page with a header: nothing to OCR.
            assert_eq!(needs_ocr(stamp, 0.0), None, "{stamp}");
        }
    }

    #[test]
    fn garbled_overlapping_stamps_and_broken_encodings_are_mostly_non_words() {
        let garbled = "CCaassee 11::1199--ccvv--0011223344 DDooccuummeenntt 1122 FFiilleedd 0033//0044//22001199 PPaaggee 11 ooff 99";
        assert_eq!(needs_ocr(garbled, 0.0), Some(OcrReason::MostlyNonWords));
        let broken = "\u{E001}\u{E002}\u{E003} \u{E004}\u{E005} \u{E006}\u{E007}\u{E008} \u{E009}\u{E00A} xq";
        assert_eq!(needs_ocr(broken, 0.0), Some(OcrReason::MostlyNonWords));
    }

    #[test]
    fn a_mostly_image_page_with_a_few_words_needs_ocr_but_a_scan_with_a_real_ocr_layer_does_not() {
        assert_eq!(
            needs_ocr("Exhibit A", 0.95),
            Some(OcrReason::LittleTextOnImage)
        );
        let real = "United States Court of Appeals for the Eighth Circuit. ".repeat(10);
        assert_eq!(needs_ocr(&real, 0.95), None);
        assert_eq!(
            needs_ocr("Exhibit A", 0.1),
            None,
            "a short born-digital page"
        );
    }

    #[test]
    fn ordinary_legal_prose_is_words() {
        let prose = "Plaintiff's third-party claims under 42 U.S.C. § 1983 (see Iqbal, 556 U.S. at 678) \
                     were dismissed on the 12th of March; the Court of Appeals affirmed.";
        assert_eq!(needs_ocr(prose, 0.0), None);
        assert!(is_doubled("CCaassee"));
        assert!(!is_doubled("Mississippi"));
    }

    #[test]
    fn matrices_compose_in_pdf_order() {
        let scale = [612.0, 0.0, 0.0, 792.0, 0.0, 0.0];
        let shift = [1.0, 0.0, 0.0, 1.0, 10.0, 20.0];
        let m = multiply(&scale, &shift);
        assert_eq!(m, [612.0, 0.0, 0.0, 792.0, 10.0, 20.0]);
        assert_eq!(matrix_of(&[Object::Integer(1)]), None);
    }
}
